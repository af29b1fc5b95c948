//! keyclone's own ssh-agent: OpenSSH's `ssh-agent -D -a SOCKET [-t SECS]`, started detached
//! (its own session, so closing the terminal does not stop it) at one fixed socket per user,
//! `SSH_DIR/keyclone-agent/agent.sock`, so later shells, plain `ssh` and `git` (through
//! `IdentityAgent` in keyclone's `~/.ssh/config` block) and keyclone find the same agent.
//!
//! The path is fixed rather than under `$XDG_RUNTIME_DIR`, which is set in some sessions of a
//! machine and not in others (`su`, cron, a VS Code server): the managed block needs one path.
//! The folder must be a real directory (not a link) of this user with mode 0700, the socket a
//! socket of this user that group and others cannot use, and the process answering on it must
//! run as this user (the peer credentials of the connection); anything else is refused, never
//! repaired. A socket where nothing answers (the agent died, the machine rebooted) is stale: it
//! is removed and a new agent started.
//!
//! The agent runs in the foreground (`-D`) of its own session, so the process that answers on
//! the socket is the one keyclone started: `stop` finds it by the socket's peer credentials
//! (no pid file to go stale) and sends it SIGTERM; OpenSSH's agent removes its socket then.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::files::{ensure_private_dir, my_uid};

/// How long a new agent may take to answer on its socket, and a stopped one to go away.
const SETTLE: Duration = Duration::from_secs(10);

/// The folder of keyclone's agent socket, in the SSH directory.
pub fn folder(ssh_dir: &Path) -> PathBuf {
    ssh_dir.join("keyclone-agent")
}

/// keyclone's agent socket.
pub fn socket(ssh_dir: &Path) -> PathBuf {
    folder(ssh_dir).join("agent.sock")
}

/// What is at the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No socket.
    Stopped,
    /// A socket of this user where nothing answers.
    Stale,
    /// An agent of this user answers; its process id.
    Running { pid: i32 },
}

/// Why a path's owner or mode is refused, if it is: it must belong to `me` and give group and
/// others nothing.
pub fn owner_problem(mode: u32, owner: u32, me: u32) -> Option<String> {
    if owner != me {
        return Some(format!("it belongs to another user (uid {owner})"));
    }
    if mode & 0o077 != 0 {
        return Some(format!(
            "other users may use it (mode {:o}, keyclone needs 700 for the folder, 600 for the socket)",
            mode & 0o7777
        ));
    }
    None
}

fn refuse(path: &Path, why: &str) -> Error {
    Error::refused(format!(
        "refusing keyclone's ssh-agent at `{}`: {why}",
        path.display()
    ))
    .hint(format!(
        "nothing was changed; check who made it (`ls -ld {}`), remove it if it is not yours to keep, then run the same command again",
        path.display()
    ))
}

/// Checks the folder (None: it does not exist yet).
fn check_folder(dir: &Path) -> Result<Option<()>> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("inspect the agent folder", dir, e)),
        Ok(m) if !m.file_type().is_dir() => Err(refuse(dir, "it is not a directory")),
        Ok(m) => match owner_problem(m.mode(), m.uid(), my_uid()) {
            Some(why) => Err(refuse(dir, &why)),
            None => Ok(Some(())),
        },
    }
}

/// Checks the socket file (false: there is none).
fn check_socket(sock: &Path) -> Result<bool> {
    match fs::symlink_metadata(sock) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("inspect the agent socket", sock, e)),
        Ok(m) if !m.file_type().is_socket() => Err(refuse(sock, "it is not a socket")),
        Ok(m) => match owner_problem(m.mode(), m.uid(), my_uid()) {
            Some(why) => Err(refuse(sock, &why)),
            None => Ok(true),
        },
    }
}

/// What is at `sock`, its folder and socket checked first.
pub fn state(sock: &Path) -> Result<State> {
    let dir = sock.parent().unwrap_or(Path::new("."));
    if check_folder(dir)?.is_none() || !check_socket(sock)? {
        return Ok(State::Stopped);
    }
    let Ok(stream) = UnixStream::connect(sock) else {
        return Ok(State::Stale);
    };
    let cred =
        nix::sys::socket::getsockopt(&stream.as_fd(), nix::sys::socket::sockopt::PeerCredentials)
            .map_err(|e| Error::io("read who runs the agent", sock, std::io::Error::from(e)))?;
    if cred.uid() != my_uid() {
        return Err(refuse(
            sock,
            &format!(
                "the agent answering there runs as another user (uid {})",
                cred.uid()
            ),
        ));
    }
    Ok(State::Running { pid: cred.pid() })
}

/// Starts keyclone's agent at `sock` unless one runs there; `lifetime`: the most seconds it
/// keeps a key (`ssh-agent -t`, also for keys `ssh` adds itself). Returns the agent's pid and
/// whether it was started now.
pub fn start(sock: &Path, lifetime: Option<u32>) -> Result<(i32, bool)> {
    match state(sock)? {
        State::Running { pid } => return Ok((pid, false)),
        State::Stale => fs::remove_file(sock)
            .map_err(|e| Error::io("remove the stale agent socket", sock, e))?,
        State::Stopped => {}
    }
    let dir = sock.parent().unwrap_or(Path::new("."));
    // The SSH directory itself may not exist yet on a fresh machine.
    if let Some(ssh_dir) = dir.parent().filter(|p| !p.exists()) {
        ensure_private_dir(ssh_dir)?;
    }
    ensure_private_dir(dir)?;
    check_folder(dir)?;
    let mut cmd = Command::new("ssh-agent");
    cmd.arg("-D").arg("-a").arg(sock);
    if let Some(secs) = lifetime {
        cmd.arg("-t").arg(secs.to_string());
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("SSH_AUTH_SOCK");
    detach(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        Error::new(ErrorKind::NotFound, "could not start `ssh-agent`")
            .with_source(e)
            .hint("install OpenSSH's client (`apt-get install openssh-client`), then run the same command again")
    })?;
    // The socket appears at bind(), before listen(): wait until a connection is taken.
    let until = Instant::now() + SETTLE;
    while UnixStream::connect(sock).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "`ssh-agent` stopped at once ({status}) instead of listening at `{}`",
                    sock.display()
                ),
            )
            .hint(
                "run `ssh-agent -D -a SOCKET` by hand to see why, then run the same command again",
            ));
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::new(
                ErrorKind::Io,
                format!("`ssh-agent` did not answer at `{}` within {}s", sock.display(), SETTLE.as_secs()),
            )
            .hint("run the same command again; if it fails again, run `ssh-agent -D -a SOCKET` by hand to see why"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    check_socket(sock)?;
    Ok((i32::try_from(child.id()).unwrap_or(0), true))
}

/// Puts the agent in a session of its own: no controlling terminal, so the terminal's hang-up
/// and Ctrl-C do not reach it.
fn detach(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    #[allow(unsafe_code)]
    // SAFETY: the hook runs in the forked child before exec and calls only setsid(2), which is
    // async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
}

/// Stops keyclone's agent at `sock` (a stale socket is removed). Returns the state it was in.
pub fn stop(sock: &Path) -> Result<State> {
    let was = state(sock)?;
    match was {
        State::Stopped => {}
        State::Stale => fs::remove_file(sock)
            .map_err(|e| Error::io("remove the stale agent socket", sock, e))?,
        State::Running { pid } => {
            use nix::sys::signal::{Signal, kill};
            kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM)
                .map_err(|e| Error::io("stop the agent", sock, std::io::Error::from(e)))?;
            let until = Instant::now() + SETTLE;
            while UnixStream::connect(sock).is_ok() {
                if Instant::now() > until {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "the agent at `{}` (pid {pid}) did not stop within {}s",
                            sock.display(),
                            SETTLE.as_secs()
                        ),
                    )
                    .hint(format!("stop it by hand: `kill {pid}`")));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            // OpenSSH's agent removes its socket on SIGTERM; one left behind is stale.
            match fs::remove_file(sock) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io("remove the agent socket", sock, e));
                }
                _ => {}
            }
        }
    }
    Ok(was)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_this_user_s_private_folder_and_socket_are_accepted() {
        assert_eq!(owner_problem(0o40700, 1000, 1000), None);
        assert_eq!(owner_problem(0o140600, 1000, 1000), None);
        let other = owner_problem(0o700, 0, 1000).unwrap();
        assert!(other.contains("another user (uid 0)"), "{other}");
        for open in [0o755, 0o710, 0o701, 0o660, 0o606] {
            let why = owner_problem(open, 1000, 1000).unwrap();
            assert!(why.contains("other users may use it"), "{open:o}: {why}");
        }
    }

    #[test]
    fn the_socket_is_in_its_own_folder_of_the_ssh_directory() {
        let s = socket(Path::new("/h/.ssh"));
        assert_eq!(s, Path::new("/h/.ssh/keyclone-agent/agent.sock"));
        assert_eq!(s.parent(), Some(folder(Path::new("/h/.ssh")).as_path()));
    }

    #[test]
    fn no_folder_is_stopped_and_an_open_folder_or_a_file_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let sock = socket(t.path());
        assert_eq!(state(&sock).unwrap(), State::Stopped);
        fs::create_dir(folder(t.path())).unwrap();
        fs::set_permissions(folder(t.path()), fs::Permissions::from_mode(0o755)).unwrap();
        let e = state(&sock).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.message().contains("mode 755"), "{e}");
        fs::set_permissions(folder(t.path()), fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(state(&sock).unwrap(), State::Stopped);
        fs::write(&sock, "").unwrap();
        let e = state(&sock).unwrap_err();
        assert!(e.message().contains("not a socket"), "{e}");
    }

    #[test]
    fn a_link_in_place_of_the_folder_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("elsewhere");
        fs::create_dir(&real).unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&real, folder(t.path())).unwrap();
        let e = state(&socket(t.path())).unwrap_err();
        assert!(e.message().contains("not a directory"), "{e}");
    }
}
