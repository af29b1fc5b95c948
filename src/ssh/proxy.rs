//! Connections through a `ProxyCommand`, as OpenSSH makes them: the command runs under
//! `sh -c` (its tokens already expanded) with one end of a socket pair as its standard input
//! and output; libssh2 speaks SSH on the other end, so the host key check and the login are
//! the same as for a direct connection. The child is killed and reaped when the stream is
//! dropped; when it exits before the SSH server answers, the error says so with the last lines
//! of its standard error (bounded).
//!
//! Which endpoints go through a proxy is decided once per run from `~/.ssh/config`
//! (`ops::route`) and recorded here ([`register`]), so every connection to that endpoint (the
//! probe's key fetch and login, and the git transfer of `git::proxied`) takes the same way.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};

/// The most of the proxy's standard error kept for a message.
const STDERR_TAIL: usize = 2048;

static ROUTES: Mutex<Vec<(Endpoint, String)>> = Mutex::new(Vec::new());

/// Records that connections to `ep` go through `command` (tokens expanded).
pub fn register(ep: &Endpoint, command: &str) {
    let mut routes = ROUTES.lock().unwrap_or_else(|p| p.into_inner());
    routes.retain(|(e, _)| e != ep);
    routes.push((ep.clone(), command.to_owned()));
}

/// The proxy command for `ep`, if [`register`] gave one.
pub fn command_for(ep: &Endpoint) -> Option<String> {
    let routes = ROUTES.lock().unwrap_or_else(|p| p.into_inner());
    routes.iter().find(|(e, _)| e == ep).map(|(_, c)| c.clone())
}

/// A running proxy and keyclone's end of its socket.
#[derive(Debug)]
pub struct ProxyStream {
    pub sock: UnixStream,
    child: Child,
    command: String,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// Starts `command` under `sh -c`, its standard input and output a socket to keyclone.
pub fn spawn(command: &str, timeout: Duration) -> Result<ProxyStream> {
    let (ours, theirs) = UnixStream::pair()
        .map_err(|e| Error::internal("could not make a socket pair").with_source(e))?;
    let _ = ours.set_read_timeout(Some(timeout));
    let _ = ours.set_write_timeout(Some(timeout));
    let theirs_out = theirs
        .try_clone()
        .map_err(|e| Error::internal("could not duplicate a socket").with_source(e))?;
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("exec {command}"))
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs_out)))
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::new(
                ErrorKind::Network,
                format!("could not start the ProxyCommand `{command}`"),
            )
            .with_source(e)
        })?;
    let stderr = Arc::new(Mutex::new(Vec::new()));
    if let Some(mut err) = child.stderr.take() {
        let tail = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                t.extend_from_slice(&buf[..n]);
                let extra = t.len().saturating_sub(STDERR_TAIL);
                t.drain(..extra);
            }
        });
    }
    Ok(ProxyStream {
        sock: ours,
        child,
        command: command.to_owned(),
        stderr,
    })
}

impl ProxyStream {
    /// Why the connection through the proxy failed: its exit, if it exited (waited for
    /// briefly), and the last lines of its standard error. `base` is the SSH-level error.
    pub fn explain(&mut self, base: Error) -> Error {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut status = None;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(s)) => {
                    status = Some(s);
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        // Let the reader thread take what the child wrote before it exited.
        std::thread::sleep(Duration::from_millis(50));
        let tail = self.stderr.lock().map(|t| t.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&tail);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let last = lines[lines.len().saturating_sub(3)..].join(" | ");
        let what = match status {
            Some(s) => format!("the ProxyCommand `{}` exited ({s})", self.command),
            None => format!("through the ProxyCommand `{}`", self.command),
        };
        let mut e = Error::new(ErrorKind::Network, format!("{what}: {}", base.message()));
        if !last.is_empty() {
            e = e.hint(format!("its last words: {}", crate::names::shown(&last)));
        }
        e.hint("run the same `ssh` command by hand to see the proxy's own error, or fix `ProxyCommand` in `~/.ssh/config`")
    }
}

impl Drop for ProxyStream {
    fn drop(&mut self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_command_speaks_on_its_standard_input_and_output() {
        let mut p = spawn("cat", Duration::from_secs(5)).unwrap();
        p.sock.write_all(b"SSH-2.0-x\r\n").unwrap();
        let mut got = [0u8; 11];
        p.sock.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"SSH-2.0-x\r\n");
    }

    #[test]
    fn a_command_that_exits_at_once_is_explained_with_its_stderr_and_reaped() {
        let mut p = spawn(
            "sh -c 'echo no route to bastion >&2; exit 7'",
            Duration::from_secs(5),
        )
        .unwrap();
        let pid = nix::unistd::Pid::from_raw(p.child.id() as i32);
        let e = p.explain(Error::new(ErrorKind::Network, "no SSH banner"));
        assert!(e.message().contains("exited (exit status: 7)"), "{e}");
        assert!(
            e.hints().iter().any(|h| h.contains("no route to bastion")),
            "{:?}",
            e.hints()
        );
        drop(p);
        assert!(
            nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)).is_err(),
            "the child was not reaped"
        );
    }

    #[test]
    fn routes_are_per_endpoint() {
        let ep = Endpoint::new("proxied.test", 2222);
        register(&ep, "nc proxied.test 2222");
        assert_eq!(command_for(&ep).as_deref(), Some("nc proxied.test 2222"));
        assert_eq!(command_for(&Endpoint::new("proxied.test", 22)), None);
    }
}
