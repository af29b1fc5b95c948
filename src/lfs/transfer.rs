//! git-lfs's pure SSH protocol (`docs/proposals/ssh_adapter.md`, git-lfs >= 3.0; GitLab,
//! Gitea and scutiger's `git-lfs-transfer` serve it), the download side, over any byte stream
//! (the SSH exec channel of `git-lfs-transfer PATH download`): the capability advertisement
//! (`version=1` required), `version 1`, `batch`, `get-object` and `quit`.
//!
//! The server is hostile input: every pkt-line is bounded ([`pktline`]), a response has at most
//! [`MAX_LINES`] lines, an object's `size` must be its pointer's, and its bytes go through the
//! store's verification (`store::receive`) as over HTTPS. Domain code: no printing.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use crate::error::{Error, ErrorKind, Result};
use crate::lfs::batch::shown;
use crate::lfs::pktline::{self, Message, Pkt};
use crate::lfs::pointer::Pointer;

/// The most lines (arguments or data lines) one response may have: a batch of
/// [`BATCH_SIZE`] objects with a few actions each, and a margin.
pub const MAX_LINES: usize = 4 * BATCH_SIZE + 64;
/// Objects asked for in one `batch` (git-lfs asks for 100).
pub const BATCH_SIZE: usize = 100;

/// The server's answer to a request: its status, its arguments and its lines (after the delim).
#[derive(Debug, Default)]
struct Status {
    code: u16,
    args: Vec<String>,
    lines: Vec<String>,
}

impl Status {
    fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find_map(|a| a.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }

    /// The server's message, made safe to show.
    fn said(&self) -> String {
        let text = self.lines.join(" ");
        let text = shown(text.trim());
        if text.is_empty() {
            "no message".to_owned()
        } else {
            text
        }
    }
}

/// One object the server offers to download: the arguments `get-object` must repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub args: Vec<String>,
}

/// A connection speaking the protocol over `S`.
pub struct Conn<S> {
    r: pktline::Reader<S>,
    /// Whether the stream is at a message boundary (false after a response was cut short):
    /// only then can another request follow.
    in_step: bool,
    who: String,
}

fn protocol(who: &str, what: &str) -> Error {
    Error::new(
        ErrorKind::Network,
        format!("`git-lfs-transfer` on {who} broke the LFS protocol: {what}"),
    )
}

/// An I/O error on the connection, as an error that names the server.
fn broke(who: &str, e: io::Error) -> Error {
    let what = e.to_string();
    Error::new(
        ErrorKind::Network,
        format!("talking to `git-lfs-transfer` on {who} failed: {what}"),
    )
    .with_source(e)
}

/// Whether `s` is a `value` of the protocol's grammar (no spaces, printable ASCII).
fn is_value(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.,?\\/{}[]()<>!@#$%^&*+=:;".contains(&b))
}

impl<S: Read + Write> Conn<S> {
    /// A connection over `stream`, not yet negotiated ([`Conn::negotiate`]).
    pub fn new(stream: S, who: &str) -> Conn<S> {
        Conn {
            r: pktline::Reader::new(stream),
            in_step: true,
            who: who.to_owned(),
        }
    }

    /// [`Conn::new`] and [`Conn::negotiate`].
    pub fn start(stream: S, who: &str) -> Result<Conn<S>> {
        let mut conn = Conn::new(stream, who);
        conn.negotiate()?;
        Ok(conn)
    }

    /// The stream back (to learn how the command ended).
    pub fn into_inner(self) -> S {
        self.r.into_inner()
    }

    /// Reads the capability advertisement, requires `version=1` and agrees on it. `Err`: the
    /// server does not speak the protocol (the caller may fall back, as git-lfs does); of kind
    /// `NotFound` when it sent nothing at all (no `git-lfs-transfer` there).
    pub fn negotiate(&mut self) -> Result<()> {
        let who = self.who.clone();
        let who = who.as_str();
        let conn = self;
        let mut caps = Vec::new();
        loop {
            match conn.r.read().map_err(|e| broke(who, e))? {
                None if caps.is_empty() => {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        format!("{who} sent no `git-lfs-transfer` capabilities"),
                    ));
                }
                None => return Err(protocol(who, "the capabilities did not end")),
                Some(Pkt::Flush) => break,
                Some(Pkt::Delim) => return Err(protocol(who, "a delimiter among capabilities")),
                Some(Pkt::Data(d)) => {
                    if caps.len() >= MAX_LINES {
                        return Err(protocol(who, "too many capabilities"));
                    }
                    caps.push(text_of(d));
                }
            }
        }
        if !caps.iter().any(|c| c == "version=1") {
            return Err(protocol(
                who,
                "it does not offer protocol version 1 (`version=1`)",
            ));
        }
        Message::default()
            .text("version 1")
            .send(conn.r.get_mut())
            .map_err(|e| broke(who, e))?;
        let st = conn.status()?;
        if st.code != 200 {
            return Err(protocol(
                who,
                &format!("it refused version 1 (status {}: {})", st.code, st.said()),
            ));
        }
        Ok(())
    }

    /// Reads a status response: `status NNN`, arguments, and after a delimiter the lines, up to
    /// the flush.
    fn status(&mut self) -> Result<Status> {
        let who = self.who.clone();
        let first = self.first_line()?;
        let code = first
            .strip_prefix("status ")
            .filter(|c| c.len() == 3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| protocol(&who, &format!("`{}` is not a status", shown(&first))))?;
        let mut st = self.status_rest()?;
        st.code = code;
        Ok(st)
    }

    /// The first line of an answer (its status), after which the stream is mid-answer.
    fn first_line(&mut self) -> Result<String> {
        let who = self.who.clone();
        self.in_step = false;
        match self.r.read().map_err(|e| broke(&who, e))? {
            Some(Pkt::Data(d)) => Ok(text_of(d)),
            None => Err(protocol(
                &who,
                "it closed the connection instead of answering",
            )),
            Some(_) => Err(protocol(&who, "an answer without a status")),
        }
    }

    /// Whether another request can be made.
    pub fn usable(&self) -> bool {
        self.in_step
    }

    /// `batch` for the download of `wanted` (at most [`BATCH_SIZE`]): for each (same order) the
    /// offer, or why there is none; `Err` for the whole batch.
    pub fn batch(&mut self, wanted: &[Pointer]) -> Result<Vec<std::result::Result<Offer, String>>> {
        let who = self.who.clone();
        let mut msg = Message::default()
            .text("batch")
            .text("transfer=ssh")
            .text("hash-algo=sha256")
            .delim();
        for p in wanted {
            msg = msg.text(&format!("{} {}", p.oid, p.size));
        }
        msg.send(self.r.get_mut()).map_err(|e| broke(&who, e))?;
        let st = self.status()?;
        if st.code != 200 {
            return Err(Error::new(
                ErrorKind::Network,
                format!(
                    "`git-lfs-transfer` on {who} refused the batch (status {}: {})",
                    st.code,
                    st.said()
                ),
            ));
        }
        if let Some(algo) = st.arg("hash-algo").filter(|a| *a != "sha256") {
            return Err(protocol(
                &who,
                &format!("it chose the hash `{}`, not sha256", shown(algo)),
            ));
        }
        let mut by_oid: HashMap<&str, (bool, std::result::Result<Offer, String>)> = HashMap::new();
        for line in &st.lines {
            let mut parts = line.split(' ');
            let (Some(oid), Some(size), Some(action)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(protocol(
                    &who,
                    &format!("`{}` is not an object line", shown(line)),
                ));
            };
            let Some(p) = wanted.iter().find(|p| p.oid == oid) else {
                continue;
            };
            let refused = size.parse::<u64>() != Ok(p.size);
            let judged = match size.parse::<u64>() {
                Err(_) => Err(format!(
                    "the server gave it the size `{}`: refused",
                    shown(size)
                )),
                Ok(s) if s != p.size => Err(format!(
                    "the server says it has {s} bytes, its pointer says {}: refused",
                    p.size
                )),
                Ok(_) if action == "download" => {
                    let mut args = vec![format!("size={}", p.size)];
                    for kv in parts {
                        let keep = ["id=", "token="].iter().any(|k| kv.starts_with(k));
                        if keep && is_value(kv) {
                            args.push(kv.to_owned());
                        }
                    }
                    Ok(Offer { args })
                }
                Ok(_) => Err("the server offered no download for it".to_owned()),
            };
            // One answer per object: a refusal (a lying size) beats a download, which beats
            // anything else (a `noop` listed beside it).
            let rank = |r: &(bool, std::result::Result<Offer, String>)| match r {
                (true, _) => 2,
                (false, Ok(_)) => 1,
                (false, Err(_)) => 0,
            };
            let judged = (refused, judged);
            match by_oid.get(p.oid.as_str()) {
                Some(have) if rank(have) >= rank(&judged) => {}
                _ => {
                    by_oid.insert(p.oid.as_str(), judged);
                }
            }
        }
        Ok(wanted
            .iter()
            .map(|p| {
                by_oid.remove(p.oid.as_str()).map_or_else(
                    || Err("the server's answer does not mention it".to_owned()),
                    |(_, r)| r,
                )
            })
            .collect())
    }

    /// `get-object` for `p`: after a `status 200` whose `size` is the pointer's, the object's
    /// bytes as a reader that ends at the response's flush. An error status is `Err` naming it.
    pub fn get_object(&mut self, p: &Pointer, offer: &Offer) -> Result<ObjectReader<'_, S>> {
        let who = self.who.clone();
        let mut msg = Message::default().text(&format!("get-object {}", p.oid));
        for a in &offer.args {
            msg = msg.text(a);
        }
        msg.send(self.r.get_mut()).map_err(|e| broke(&who, e))?;
        let first = self.first_line()?;
        if first != "status 200" {
            // An error: its arguments and message follow, as any status response.
            let code = first.strip_prefix("status ").unwrap_or("").to_owned();
            let mut st = self.status_rest()?;
            st.code = code.parse().unwrap_or(0);
            let what = match st.code {
                404 => "the server does not have it",
                410 => "the server removed it",
                401 | 403 => "the server refused access to it",
                0 => {
                    return Err(protocol(
                        &who,
                        &format!("`{}` is not a status", shown(&first)),
                    ));
                }
                _ => "the server could not give it",
            };
            return Err(Error::new(
                ErrorKind::Network,
                format!("{what} (status {}: {})", st.code, st.said()),
            ));
        }
        let mut size = None;
        loop {
            match self.r.read().map_err(|e| broke(&who, e))? {
                Some(Pkt::Delim) => break,
                Some(Pkt::Data(d)) => {
                    let arg = text_of(d);
                    if let Some(s) = arg.strip_prefix("size=") {
                        if size.is_some() {
                            return Err(protocol(&who, "two sizes for one object"));
                        }
                        size = Some(s.parse::<u64>().map_err(|_| {
                            protocol(&who, &format!("the size `{}` is not a number", shown(s)))
                        })?);
                    }
                }
                Some(Pkt::Flush) => return Err(protocol(&who, "an object without its data")),
                None => return Err(protocol(&who, "it closed the connection before the data")),
            }
        }
        match size {
            None => return Err(protocol(&who, "no size for the object")),
            Some(s) if s != p.size => {
                return Err(Error::refused(format!(
                    "`git-lfs-transfer` on {who} says the object has {s} bytes, its pointer says {}: refused",
                    p.size
                )));
            }
            Some(_) => {}
        }
        Ok(ObjectReader {
            conn: self,
            at: 0,
            len: 0,
            ended: false,
        })
    }

    /// The rest of a status response after its first line.
    fn status_rest(&mut self) -> Result<Status> {
        let who = self.who.clone();
        let mut st = Status::default();
        let mut after_delim = false;
        loop {
            match self.r.read().map_err(|e| broke(&who, e))? {
                None => return Err(protocol(&who, "the answer did not end")),
                Some(Pkt::Flush) => break,
                Some(Pkt::Delim) if !after_delim => after_delim = true,
                Some(Pkt::Delim) => return Err(protocol(&who, "two delimiters in an answer")),
                Some(Pkt::Data(d)) => {
                    let list = if after_delim {
                        &mut st.lines
                    } else {
                        &mut st.args
                    };
                    if list.len() >= MAX_LINES {
                        return Err(protocol(&who, "an answer with too many lines"));
                    }
                    list.push(text_of(d));
                }
            }
        }
        self.in_step = true;
        Ok(st)
    }

    /// `quit`, and the server's `status 200`.
    pub fn quit(mut self) -> Result<S> {
        let who = self.who.clone();
        Message::default()
            .text("quit")
            .send(self.r.get_mut())
            .map_err(|e| broke(&who, e))?;
        let st = self.status()?;
        if st.code != 200 {
            return Err(protocol(
                &who,
                &format!("`quit` answered status {}", st.code),
            ));
        }
        Ok(self.r.into_inner())
    }
}

impl<S> std::fmt::Debug for Conn<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("who", &self.who)
            .finish_non_exhaustive()
    }
}

impl<S> std::fmt::Debug for ObjectReader<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader").finish_non_exhaustive()
    }
}

/// A pkt-line's text: up to its newline, lossily decoded.
fn text_of(d: &[u8]) -> String {
    let d = d.strip_suffix(b"\n").unwrap_or(d);
    String::from_utf8_lossy(d).into_owned()
}

/// An object's bytes: the data pkt-lines of a `get-object` response, ending at its flush.
pub struct ObjectReader<'a, S> {
    conn: &'a mut Conn<S>,
    /// The unread part of the last pkt-line read: `at..len` of the reader's buffer.
    at: usize,
    len: usize,
    ended: bool,
}

impl<S: Read + Write> Read for ObjectReader<'_, S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.ended || out.is_empty() {
            return Ok(0);
        }
        while self.at == self.len {
            match self.conn.r.read()? {
                Some(Pkt::Data(d)) => {
                    self.at = 0;
                    self.len = d.len();
                }
                Some(Pkt::Flush) => {
                    self.ended = true;
                    self.conn.in_step = true;
                    return Ok(0);
                }
                Some(Pkt::Delim) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the server sent a delimiter inside an object",
                    ));
                }
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection in the middle of the object",
                    ));
                }
            }
        }
        let rest = &self.conn.r.last()[self.at..self.len];
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted server: what it says, and what the client wrote.
    struct Scripted {
        says: io::Cursor<Vec<u8>>,
        heard: Vec<u8>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.says.read(buf)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.heard.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn pkt(s: &str) -> String {
        format!("{:04x}{s}", s.len() + 4)
    }

    fn server(parts: &[&str]) -> Scripted {
        Scripted {
            says: io::Cursor::new(parts.concat().into_bytes()),
            heard: Vec::new(),
        }
    }

    const OID: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn hello() -> Pointer {
        Pointer {
            oid: OID.into(),
            size: 5,
        }
    }

    fn greeting() -> Vec<String> {
        vec![
            pkt("version=1\n"),
            pkt("locking\n"),
            "0000".into(),
            pkt("status 200\n"),
            "0000".into(),
        ]
    }

    fn with(parts: &[String]) -> Scripted {
        let mut all = greeting();
        all.extend(parts.iter().cloned());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        server(&refs)
    }

    fn fetch(conn: &mut Conn<Scripted>, offer: &Offer) -> Result<Vec<u8>> {
        let mut r = conn.get_object(&hello(), offer)?;
        let mut buf = vec![0; 256 * 1024];
        let mut out = Vec::new();
        loop {
            let n = r.read(&mut buf).map_err(|e| broke("h", e))?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        Ok(out)
    }

    #[test]
    fn version_batch_get_object_and_quit_as_the_proposal_frames_them() {
        let s = with(&[
            pkt("status 200\n"),
            pkt("hash-algo=sha256\n"),
            "0001".into(),
            pkt(&format!("{OID} 5 download id=7 token=abc\n")),
            "0000".into(),
            pkt("status 200\n"),
            pkt("size=5\n"),
            "0001".into(),
            pkt("hel"),
            pkt("lo"),
            "0000".into(),
            pkt("status 200\n"),
            "0000".into(),
        ]);
        let mut conn = Conn::start(s, "h").unwrap();
        let offers = conn.batch(&[hello()]).unwrap();
        let offer = offers[0].clone().unwrap();
        assert_eq!(offer.args, ["size=5", "id=7", "token=abc"]);
        assert_eq!(fetch(&mut conn, &offer).unwrap(), b"hello");
        assert!(conn.usable());
        let s = conn.quit().unwrap();
        let heard = String::from_utf8(s.heard).unwrap();
        let want = [
            pkt("version 1\n"),
            "0000".into(),
            pkt("batch\n"),
            pkt("transfer=ssh\n"),
            pkt("hash-algo=sha256\n"),
            "0001".into(),
            pkt(&format!("{OID} 5\n")),
            "0000".into(),
            pkt(&format!("get-object {OID}\n")),
            pkt("size=5\n"),
            pkt("id=7\n"),
            pkt("token=abc\n"),
            "0000".into(),
            pkt("quit\n"),
            "0000".into(),
        ]
        .concat();
        assert_eq!(heard, want);
    }

    #[test]
    fn a_server_that_says_nothing_or_lacks_version_1_is_not_spoken_to() {
        let e = Conn::start(server(&[]), "h").err().unwrap();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = Conn::start(server(&[&pkt("version=2\n"), "0000"]), "h")
            .err()
            .unwrap();
        assert!(e.message().contains("version 1"), "{e}");
    }

    #[test]
    fn lying_sizes_missing_objects_and_error_statuses_are_named() {
        let s = with(&[
            pkt("status 200\n"),
            "0001".into(),
            pkt(&format!("{OID} 6 download\n")),
            "0000".into(),
        ]);
        let mut conn = Conn::start(s, "h").unwrap();
        let e = conn.batch(&[hello()]).unwrap().remove(0).unwrap_err();
        assert!(e.contains("6 bytes") && e.contains("refused"), "{e}");

        let s = with(&[
            pkt("status 200\n"),
            "0001".into(),
            pkt(&format!("{OID} 5 noop\n")),
            "0000".into(),
            pkt("status 200\n"),
            pkt("size=9\n"),
            "0001".into(),
            pkt("hello"),
            "0000".into(),
        ]);
        let mut conn = Conn::start(s, "h").unwrap();
        let e = conn.batch(&[hello()]).unwrap().remove(0).unwrap_err();
        assert!(e.contains("no download"), "{e}");
        let offer = Offer {
            args: vec!["size=5".into()],
        };
        let e = fetch(&mut conn, &offer).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.message().contains("9 bytes"), "{e}");

        let s = with(&[
            pkt("status 404\n"),
            "0001".into(),
            pkt("not found \u{1b}[31m\n"),
            "0000".into(),
        ]);
        let mut conn = Conn::start(s, "h").unwrap();
        let e = fetch(&mut conn, &offer).unwrap_err();
        assert!(
            e.message()
                .contains("does not have it (status 404: not found"),
            "{e}"
        );
        assert!(!e.message().contains('\u{1b}'));
        assert!(conn.usable());
    }

    #[test]
    fn an_object_is_read_whole_through_a_buffer_smaller_than_its_pkt_lines() {
        let s = with(&[
            pkt("status 200\n"),
            pkt("size=5\n"),
            "0001".into(),
            pkt("hello"),
            "0000".into(),
        ]);
        let mut conn = Conn::start(s, "h").unwrap();
        let offer = Offer {
            args: vec!["size=5".into()],
        };
        let mut r = conn.get_object(&hello(), &offer).unwrap();
        let mut two = [0u8; 2];
        let mut out = Vec::new();
        loop {
            let n = r.read(&mut two).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&two[..n]);
        }
        assert_eq!(out, b"hello");
        assert!(conn.usable());
    }

    #[test]
    fn an_object_cut_short_leaves_the_connection_unusable() {
        let s = with(&[
            pkt("status 200\n"),
            pkt("size=5\n"),
            "0001".into(),
            pkt("he"),
        ]);
        let mut conn = Conn::start(s, "h").unwrap();
        let offer = Offer {
            args: vec!["size=5".into()],
        };
        let e = fetch(&mut conn, &offer).unwrap_err();
        assert!(e.message().contains("middle of the object"), "{e}");
        assert!(!conn.usable());
    }

    #[test]
    fn a_response_cannot_grow_without_bound() {
        let mut parts = vec![pkt("status 200\n"), "0001".into()];
        parts.extend(std::iter::repeat_n(pkt("x 1 noop\n"), MAX_LINES + 1));
        let mut conn = Conn::start(with(&parts), "h").unwrap();
        let e = conn.batch(&[hello()]).err().unwrap();
        assert!(e.message().contains("too many lines"), "{e}");
    }
}
