//! The one ssh-agent client: the socket comes from `SSH_AUTH_SOCK` in the [`Env`] snapshot, and
//! keyclone speaks the agent protocol (draft-miller-ssh-agent) over it to ask which keys the
//! agent holds, to add a decrypted key and to remove one. (OpenSSH's `ssh-add` would need the
//! passphrase on a terminal or through `SSH_ASKPASS`; keyclone already holds the decrypted key.)
//!
//! The agent's answers are untrusted input: a message is at most 256 KiB (OpenSSH's limit), a
//! key list at most 2048 keys, and a string that runs past the end of its message is refused.
//!
//! libssh2 (`userauth_agent`, the login check) and libgit2 (`Cred::ssh_key_from_agent`, clones
//! and ref listings) find the agent themselves through the process's own `SSH_AUTH_SOCK`; `Env`
//! is a snapshot of that variable taken at start-up, so both reach the same agent.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ssh_encoding::Encode;
use ssh_key::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::env::{Env, SSH_AUTH_SOCK};
use crate::error::{Error, ErrorKind, Result};

const FAILURE: u8 = 5;
const SUCCESS: u8 = 6;
const REQUEST_IDENTITIES: u8 = 11;
const IDENTITIES_ANSWER: u8 = 12;
const ADD_IDENTITY: u8 = 17;
const REMOVE_IDENTITY: u8 = 18;
const ADD_ID_CONSTRAINED: u8 = 25;
const CONSTRAIN_LIFETIME: u8 = 1;

/// The longest message keyclone reads from an agent (OpenSSH's `AGENT_MAX_LEN`).
const MAX_MESSAGE: u32 = 256 * 1024;
/// The most keys keyclone accepts in one list (OpenSSH's `MAX_AGENT_IDENTITIES`).
const MAX_IDENTITIES: u32 = 2048;
/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One key the agent holds: its public key blob (the SSH wire encoding) and its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub blob: Vec<u8>,
    pub comment: String,
}

/// An ssh-agent at a socket.
#[derive(Debug, Clone)]
pub struct Agent {
    socket: PathBuf,
}

/// Why a request failed: the socket, or what the agent sent.
enum Failure {
    Io(&'static str, std::io::Error),
    Malformed(&'static str),
}

impl Agent {
    /// The agent `SSH_AUTH_SOCK` names; `None` when it is unset or empty.
    pub fn from_env(env: &Env) -> Option<Agent> {
        env.get_nonempty(SSH_AUTH_SOCK).map(|s| Agent {
            socket: PathBuf::from(s),
        })
    }

    /// The agent at `socket` (keyclone's own, `ssh::agent_process::socket`).
    pub fn at(socket: &Path) -> Agent {
        Agent {
            socket: socket.to_owned(),
        }
    }

    /// The socket path, for messages.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Whether something answers on the socket.
    pub fn reachable(&self) -> bool {
        UnixStream::connect(&self.socket).is_ok()
    }

    /// The keys the agent holds.
    pub fn identities(&self) -> Result<Vec<Identity>> {
        let answer = self
            .request(&[REQUEST_IDENTITIES])
            .map_err(|f| self.error(f))?;
        parse_identities(&answer).map_err(|why| self.error(Failure::Malformed(why)))
    }

    /// Whether the agent holds `key`. Any failure (no agent, a broken answer) means no.
    pub fn holds(&self, key: &PublicKey) -> bool {
        let mut blob = Vec::new();
        if key.key_data().encode(&mut blob).is_err() {
            return false;
        }
        self.identities()
            .is_ok_and(|ids| ids.iter().any(|id| id.blob == blob))
    }

    /// Adds a decrypted key, kept for `lifetime` seconds (None: until the agent stops).
    pub fn add(&self, key: &PrivateKey, lifetime: Option<u32>) -> Result<()> {
        if key.is_encrypted() {
            return Err(Error::internal("ssh-agent needs the decrypted key"));
        }
        let mut body = Zeroizing::new(Vec::new());
        body.push(if lifetime.is_some() {
            ADD_ID_CONSTRAINED
        } else {
            ADD_IDENTITY
        });
        key.key_data()
            .encode(&mut *body)
            .and_then(|()| key.comment().encode(&mut *body))
            .map_err(|e| {
                Error::internal("could not encode the key for ssh-agent").with_source(e)
            })?;
        if let Some(secs) = lifetime {
            body.push(CONSTRAIN_LIFETIME);
            body.extend_from_slice(&secs.to_be_bytes());
        }
        let answer = self.request(&body).map_err(|f| self.error(f))?;
        match answer.first() {
            Some(&SUCCESS) => Ok(()),
            _ => Err(
                Error::new(ErrorKind::Refused, "ssh-agent refused to add the key").hint(
                    "the agent may be locked (`ssh-add -X` unlocks it) or not accept this key type",
                ),
            ),
        }
    }

    /// Removes a key; returns whether the agent removed it (a key it does not hold is no error).
    pub fn remove(&self, key: &PublicKey) -> Result<bool> {
        let mut blob = Vec::new();
        key.key_data()
            .encode(&mut blob)
            .map_err(|e| Error::internal("could not encode the key").with_source(e))?;
        let mut body = vec![REMOVE_IDENTITY];
        blob.encode(&mut body)
            .map_err(|e| Error::internal("could not encode the key").with_source(e))?;
        let answer = self.request(&body).map_err(|f| self.error(f))?;
        Ok(answer.first() == Some(&SUCCESS))
    }

    /// Sends one message and reads the whole answer (its type byte first).
    fn request(&self, body: &[u8]) -> std::result::Result<Vec<u8>, Failure> {
        let until = Instant::now() + TIMEOUT;
        let s = UnixStream::connect(&self.socket).map_err(|e| Failure::Io("reach", e))?;
        let _ = s.set_write_timeout(Some(TIMEOUT));
        let mut s = Bounded { s, until };
        let len = u32::try_from(body.len()).map_err(|_| Failure::Malformed("request too long"))?;
        let mut msg = Zeroizing::new(Vec::with_capacity(body.len() + 4));
        msg.extend_from_slice(&len.to_be_bytes());
        msg.extend_from_slice(body);
        s.write_all(&msg).map_err(|e| Failure::Io("talk to", e))?;
        read_message(&mut s)
    }

    fn error(&self, failure: Failure) -> Error {
        let at = self.socket.display();
        match failure {
            Failure::Io(what, e) => Error::new(
                ErrorKind::Io,
                format!("could not {what} ssh-agent at `{at}`"),
            )
            .with_source(e)
            .hint("start an agent with `eval \"$(ssh-agent)\"` in this shell, then run the same command again"),
            Failure::Malformed(why) => Error::new(
                ErrorKind::Io,
                format!("ssh-agent at `{at}` sent an answer keyclone cannot use ({why})"),
            )
            .hint("start a new agent with `eval \"$(ssh-agent)\"` in this shell, then run the same command again"),
        }
    }
}

/// The socket with one deadline for the whole request: each read may wait only for the time
/// left, so an agent that drips its answer a byte at a time is cut off at the deadline, not
/// after one timeout per byte.
struct Bounded {
    s: UnixStream,
    until: Instant,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the agent did not answer in time",
            ));
        }
        self.s.set_read_timeout(Some(left))?;
        // A read timeout shows as `WouldBlock` on Unix: say what it is.
        self.s.read(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the agent did not answer in time",
            ),
            _ => e,
        })
    }
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.s.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.s.flush()
    }
}

/// Reads one length-prefixed message: at least its type byte, at most [`MAX_MESSAGE`] bytes.
fn read_message(r: &mut impl Read) -> std::result::Result<Vec<u8>, Failure> {
    let read = |e: std::io::Error| Failure::Io("read the answer of", e);
    let mut head = [0u8; 4];
    r.read_exact(&mut head).map_err(read)?;
    let len = u32::from_be_bytes(head);
    if len == 0 {
        return Err(Failure::Malformed("an empty message"));
    }
    if len > MAX_MESSAGE {
        return Err(Failure::Malformed("a message longer than 256 KiB"));
    }
    let mut msg = vec![0u8; len as usize];
    r.read_exact(&mut msg).map_err(read)?;
    Ok(msg)
}

/// A cursor over a message that refuses to read past its end.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], &'static str> {
        if n > self.0.len() {
            return Err("a truncated message");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> std::result::Result<u32, &'static str> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> std::result::Result<&'a [u8], &'static str> {
        let len = self.u32()?;
        self.take(usize::try_from(len).map_err(|_| "a truncated message")?)
    }
}

/// The keys in an answer to `REQUEST_IDENTITIES` (the message, its type byte first).
fn parse_identities(msg: &[u8]) -> std::result::Result<Vec<Identity>, &'static str> {
    let mut c = Cursor(msg);
    match c.take(1)?[0] {
        IDENTITIES_ANSWER => {}
        FAILURE => return Err("it refused to list its keys"),
        _ => return Err("not a list of keys"),
    }
    let count = c.u32()?;
    if count > MAX_IDENTITIES {
        return Err("more than 2048 keys");
    }
    // Each key takes at least two length fields: a count the message cannot hold is a lie.
    if count as usize > c.0.len() / 8 {
        return Err("a truncated message");
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let blob = c.string()?.to_vec();
        let comment = String::from_utf8_lossy(c.string()?).into_owned();
        out.push(Identity { blob, comment });
    }
    if !c.0.is_empty() {
        return Err("bytes after the key list");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&u32::try_from(s.len()).unwrap().to_be_bytes());
        out.extend_from_slice(s);
    }

    fn answer(keys: &[(&[u8], &str)]) -> Vec<u8> {
        let mut m = vec![IDENTITIES_ANSWER];
        m.extend_from_slice(&u32::try_from(keys.len()).unwrap().to_be_bytes());
        for (blob, comment) in keys {
            string(&mut m, blob);
            string(&mut m, comment.as_bytes());
        }
        m
    }

    #[test]
    fn a_good_answer_lists_every_key_with_its_comment() {
        let ids = parse_identities(&answer(&[(b"blob-1", "a@h"), (b"blob-2", "")])).unwrap();
        assert_eq!(
            ids,
            vec![
                Identity {
                    blob: b"blob-1".to_vec(),
                    comment: "a@h".into()
                },
                Identity {
                    blob: b"blob-2".to_vec(),
                    comment: String::new()
                },
            ]
        );
        assert_eq!(parse_identities(&answer(&[])).unwrap(), vec![]);
    }

    #[test]
    fn a_truncated_answer_is_refused_wherever_it_stops() {
        let full = answer(&[(b"blob-1", "a@h")]);
        for cut in 0..full.len() {
            assert!(parse_identities(&full[..cut]).is_err(), "cut at {cut}");
        }
        // A string whose length runs past the end.
        let mut m = vec![IDENTITIES_ANSWER, 0, 0, 0, 1];
        m.extend_from_slice(&u32::MAX.to_be_bytes());
        m.extend_from_slice(&[0; 8]);
        assert_eq!(parse_identities(&m), Err("a truncated message"));
        let mut extra = full.clone();
        extra.push(0);
        assert_eq!(parse_identities(&extra), Err("bytes after the key list"));
    }

    #[test]
    fn an_absurd_count_is_refused_before_anything_is_allocated() {
        let mut m = vec![IDENTITIES_ANSWER];
        m.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse_identities(&m), Err("more than 2048 keys"));
        // Within the cap but more than the message can hold.
        let mut m = vec![IDENTITIES_ANSWER];
        m.extend_from_slice(&2048u32.to_be_bytes());
        m.extend_from_slice(&[0; 16]);
        assert_eq!(parse_identities(&m), Err("a truncated message"));
    }

    #[test]
    fn another_answer_type_is_not_a_key_list() {
        assert_eq!(
            parse_identities(&[FAILURE]),
            Err("it refused to list its keys")
        );
        assert_eq!(
            parse_identities(&[SUCCESS, 0, 0, 0, 0]),
            Err("not a list of keys")
        );
    }

    fn malformed(r: std::result::Result<Vec<u8>, Failure>) -> &'static str {
        match r {
            Err(Failure::Malformed(why)) => why,
            Err(Failure::Io(what, e)) => panic!("io: {what}: {e}"),
            Ok(m) => panic!("read {m:?}"),
        }
    }

    #[test]
    fn a_message_is_read_whole_and_bounded() {
        let mut wire = vec![0, 0, 0, 3, SUCCESS, 1, 2, 0xff];
        let msg = read_message(&mut wire.as_slice()).ok().unwrap();
        assert_eq!(msg, vec![SUCCESS, 1, 2]);
        wire.truncate(6);
        assert!(matches!(
            read_message(&mut wire.as_slice()),
            Err(Failure::Io(..))
        ));
        let oversize = (MAX_MESSAGE + 1).to_be_bytes();
        assert_eq!(
            malformed(read_message(&mut oversize.as_slice())),
            "a message longer than 256 KiB"
        );
        assert_eq!(
            malformed(read_message(&mut [0u8, 0, 0, 0].as_slice())),
            "an empty message"
        );
    }

    #[test]
    fn the_agent_comes_from_a_non_empty_ssh_auth_sock() {
        assert!(Agent::from_env(&Env::default()).is_none());
        assert!(Agent::from_env(&Env::from_pairs([(SSH_AUTH_SOCK, "")])).is_none());
        let a = Agent::from_env(&Env::from_pairs([(SSH_AUTH_SOCK, "/tmp/a.sock")])).unwrap();
        assert_eq!(a.socket(), Path::new("/tmp/a.sock"));
    }

    #[test]
    fn no_agent_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = Agent::from_env(&Env::from_pairs([(
            SSH_AUTH_SOCK,
            dir.path().join("none.sock").to_str().unwrap(),
        )]))
        .unwrap();
        assert!(!a.reachable());
        let e = a.identities().unwrap_err();
        assert!(
            e.message().starts_with("could not reach ssh-agent at"),
            "{e}"
        );
        let key = PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
        assert!(!a.holds(key.public_key()));
    }

    #[test]
    fn an_agent_that_drips_its_answer_is_cut_off_at_the_request_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            // A 1000-byte answer, one byte every 50 ms: 50 s in all, each read well within
            // any per-read timeout.
            let _ = c.write_all(&1000u32.to_be_bytes());
            for _ in 0..1000 {
                if c.write_all(&[IDENTITIES_ANSWER]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let s = UnixStream::connect(&path).unwrap();
        let started = Instant::now();
        let mut b = Bounded {
            s,
            until: started + Duration::from_millis(300),
        };
        match read_message(&mut b) {
            Err(Failure::Io(_, e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
            Err(Failure::Malformed(m)) => panic!("malformed: {m}"),
            Ok(m) => panic!("read {} bytes", m.len()),
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
