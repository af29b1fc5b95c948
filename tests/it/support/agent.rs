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
        for _ in 0..200 {
            if sock.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(sock.exists(), "ssh-agent did not create its socket");
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
