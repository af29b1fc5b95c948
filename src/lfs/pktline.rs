//! Git's pkt-line framing (`gitprotocol-common`), as git-lfs's pure SSH protocol uses it: four
//! hex digits giving the length (the four included), then the payload; `0000` is a flush,
//! `0001` a delimiter. The server is hostile input: the length must be four hex digits and at
//! most [`MAX_PKT`] (git's `LARGE_PACKET_MAX`), so no read allocates more than that, whatever
//! the server says; the reader's one buffer is allocated once.
//!
//! (gix-packetline would do the framing, but it is not among the crates keyclone already
//! builds and the subset needed here is this small reader, tested below.)

use std::io::{self, Read, Write};

/// The longest pkt-line, its four length digits included.
pub const MAX_PKT: usize = 65520;
/// The most payload one pkt-line carries.
pub const MAX_DATA: usize = MAX_PKT - 4;

/// One pkt-line as read.
#[derive(Debug, PartialEq, Eq)]
pub enum Pkt<'a> {
    Flush,
    Delim,
    Data(&'a [u8]),
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads pkt-lines from `inner` into one buffer of [`MAX_PKT`] bytes.
pub struct Reader<S> {
    inner: S,
    buf: Vec<u8>,
    /// The payload length of the last data pkt-line read (it stays in `buf` until the next).
    last: usize,
}

impl<S> std::fmt::Debug for Reader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl<S: Read> Reader<S> {
    pub fn new(inner: S) -> Reader<S> {
        Reader {
            inner,
            buf: vec![0; MAX_DATA],
            last: 0,
        }
    }

    /// The payload of the last data pkt-line read.
    pub fn last(&self) -> &[u8] {
        &self.buf[..self.last]
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The next pkt-line. `Ok(None)`: the stream ended cleanly before a new pkt-line began.
    pub fn read(&mut self) -> io::Result<Option<Pkt<'_>>> {
        self.last = 0;
        let mut head = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.inner.read(&mut head[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection in the middle of a pkt-line",
                    ));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let len = parse_len(&head)?;
        match len {
            0 => return Ok(Some(Pkt::Flush)),
            1 => return Ok(Some(Pkt::Delim)),
            2 | 3 => {
                return Err(invalid(format!(
                    "the server sent a pkt-line of length {len:04x}, which this protocol does not have"
                )));
            }
            _ => {}
        }
        self.last = len - 4;
        let data = &mut self.buf[..len - 4];
        self.inner.read_exact(data).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection in the middle of a pkt-line",
                )
            } else {
                e
            }
        })?;
        Ok(Some(Pkt::Data(data)))
    }
}

/// The length a pkt-line's four hex digits give, refused when they are not hex or say more
/// than [`MAX_PKT`].
fn parse_len(head: &[u8; 4]) -> io::Result<usize> {
    let mut len = 0usize;
    for &b in head {
        let digit = (b as char).to_digit(16).ok_or_else(|| {
            invalid(format!(
                "the server sent a pkt-line whose length is not four hex digits ({:?})",
                String::from_utf8_lossy(head)
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect::<String>()
            ))
        })?;
        len = len * 16 + digit as usize;
    }
    if len > MAX_PKT {
        return Err(invalid(format!(
            "the server sent a pkt-line of {len} bytes, longer than the {MAX_PKT} allowed"
        )));
    }
    Ok(len)
}

/// A message being framed: text lines, delimiters and a flush, sent in one write.
#[derive(Debug, Default)]
pub struct Message {
    bytes: Vec<u8>,
}

impl Message {
    /// A text pkt-line: `line` and a newline (`line` is keyclone's own, short).
    pub fn text(mut self, line: &str) -> Message {
        let len = line.len() + 5;
        debug_assert!(len <= MAX_PKT);
        self.bytes
            .extend_from_slice(format!("{len:04x}").as_bytes());
        self.bytes.extend_from_slice(line.as_bytes());
        self.bytes.push(b'\n');
        self
    }

    pub fn delim(mut self) -> Message {
        self.bytes.extend_from_slice(b"0001");
        self
    }

    /// Ends the message with a flush and writes it.
    pub fn send(mut self, to: &mut dyn Write) -> io::Result<()> {
        self.bytes.extend_from_slice(b"0000");
        to.write_all(&self.bytes)?;
        to.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<Result<String, String>> {
        let mut r = Reader::new(input);
        let mut out = Vec::new();
        loop {
            match r.read() {
                Ok(None) => break,
                Ok(Some(Pkt::Flush)) => out.push(Ok("FLUSH".into())),
                Ok(Some(Pkt::Delim)) => out.push(Ok("DELIM".into())),
                Ok(Some(Pkt::Data(d))) => out.push(Ok(String::from_utf8_lossy(d).into_owned())),
                Err(e) => {
                    out.push(Err(e.to_string()));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn lines_delimiters_and_flushes_are_read_as_git_frames_them() {
        let got = all(b"000cversion\n00010009abcd\n0004000000");
        let want: Vec<Result<String, String>> = ["version\n", "DELIM", "abcd\n", "", "FLUSH"]
            .into_iter()
            .map(|s| Ok(s.to_owned()))
            .collect();
        assert_eq!(got[..5], want[..]);
        assert!(
            got[5].as_ref().is_err_and(|e| e.contains("middle")),
            "{got:?}"
        );
    }

    #[test]
    fn a_bad_hex_length_or_one_beyond_the_limit_is_refused_before_reading_more() {
        let e = all(b"00g1xxxx").remove(0).unwrap_err();
        assert!(e.contains("not four hex digits"), "{e}");
        let e = all(b"fff1").remove(0).unwrap_err();
        assert!(e.contains("longer than the 65520 allowed"), "{e}");
        let e = all(b"0002").remove(0).unwrap_err();
        assert!(e.contains("length 0002"), "{e}");
        // The longest allowed one is read whole; upper-case hex as git accepts it.
        let mut max = b"FFF0".to_vec();
        max.extend(std::iter::repeat_n(b'x', MAX_DATA));
        assert_eq!(all(&max)[0].as_ref().unwrap().len(), MAX_DATA);
    }

    #[test]
    fn a_stream_that_ends_inside_a_pkt_line_is_an_error_not_an_end() {
        assert!(all(b"").is_empty());
        assert!(all(b"00").remove(0).is_err());
        assert!(all(b"0010abc").remove(0).is_err());
    }

    #[test]
    fn a_message_is_framed_with_its_lengths_and_a_flush() {
        let mut out = Vec::new();
        Message::default()
            .text("batch")
            .text("hash-algo=sha256")
            .delim()
            .send(&mut out)
            .unwrap();
        assert_eq!(out, b"000abatch\n0015hash-algo=sha256\n00010000");
    }
}
