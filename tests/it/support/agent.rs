//! A real `ssh-agent` for tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::require;

/// A real `ssh-agent` on its own socket, stopped on drop.
pub struct Agent {
    child: Child,
    pub sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    pub fn start() -> Agent {
        let bin = require("ssh-agent", "openssh-client");
        let dir = tempfile::Builder::new()
            .prefix("keyclone-agent-")
            .tempdir()
            .unwrap();
        let sock = dir.path().join("agent.sock");
        let child = Command::new(bin)
            .args(["-D", "-a"])
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The socket file appears at bind(), before listen(): wait until the agent answers a
        // connection, not merely until the file exists (a loaded machine shows the gap).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "ssh-agent did not start listening on its socket"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Agent {
            child,
            sock,
            _dir: dir,
        }
    }

    /// `ssh-add -l`: the fingerprints the agent holds.
    pub fn list(&self) -> String {
        let out = Command::new(require("ssh-add", "openssh-client"))
            .arg("-l")
            .env_clear()
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
