//! A real OpenSSH server on 127.0.0.1: random port, its own host key, a temporary
//! AuthorizedKeysFile; stopped when dropped. And the real `ssh` client to log in to it.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Out, require};

pub struct Sshd {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// `ssh-ed25519 AAAA...` of the server's host key.
    pub host_key: String,
    pub user: String,
    log: PathBuf,
}

fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the current user has a passwd entry")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    pub fn start() -> Sshd {
        let sshd = require("sshd", "openssh-server");
        let dir = tempfile::Builder::new()
            .prefix("keyclone-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let host_key = d.join("host_ed25519");
        let out = super::ssh_keygen(&[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "test-host",
            "-f",
            host_key.to_str().unwrap(),
        ]);
        out.ok();
        let host_key_line =
            super::key_material(&std::fs::read_to_string(d.join("host_ed25519.pub")).unwrap());
        std::fs::write(d.join("authorized_keys"), "").unwrap();
        std::fs::set_permissions(
            d.join("authorized_keys"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        if nix::unistd::Uid::effective().is_root() && !Path::new("/run/sshd").exists() {
            std::fs::create_dir_all("/run/sshd")
                .expect("create sshd's privilege separation directory /run/sshd");
            std::fs::set_permissions("/run/sshd", std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let log = d.join("sshd.log");
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = d.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1\nPort {port}\nHostKey {hk}\nPidFile {pid}\nAuthorizedKeysFile {ak}\n\
                     StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                     PermitRootLogin prohibit-password\nPubkeyAuthentication yes\nLogLevel VERBOSE\n",
                    hk = host_key.display(),
                    pid = d.join("sshd.pid").display(),
                    ak = d.join("authorized_keys").display(),
                ),
            )
            .unwrap();
            let mut child = Command::new(&sshd)
                .arg("-D")
                .arg("-f")
                .arg(&config)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start sshd");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd {
                        child,
                        port,
                        dir,
                        host_key: host_key_line,
                        user: current_user(),
                        log,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    last_err = std::fs::read_to_string(&log).unwrap_or_default();
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    last_err = "sshd did not listen within 10 s".into();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start sshd on 127.0.0.1: {last_err}");
    }

    /// Adds a public key line to the server's AuthorizedKeysFile.
    pub fn authorize(&self, public_line: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("authorized_keys"))
            .unwrap();
        writeln!(f, "{}", public_line.trim()).unwrap();
    }

    /// The known_hosts line for this server, as OpenSSH writes it for a non-22 port.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_key)
    }

    /// Logs in with the real `ssh` client and this key (its passphrase given through
    /// SSH_ASKPASS, never on a command line); the host key is checked strictly.
    pub fn ssh_login(&self, key: &Path, passphrase: Option<&str>) -> Out {
        let ssh = require("ssh", "openssh-client");
        let d = self.dir.path();
        let kh = d.join("client_known_hosts");
        std::fs::write(&kh, format!("{}\n", self.known_hosts_line())).unwrap();
        let askpass = d.join("askpass.sh");
        let passfile = d.join("askpass.secret");
        std::fs::write(&passfile, passphrase.unwrap_or("")).unwrap();
        std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(
            &askpass,
            format!("#!/bin/sh\ncat '{}'\n", passfile.display()),
        )
        .unwrap();
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
        let out = Command::new(ssh)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", d)
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .args(["-F", "/dev/null", "-p", &self.port.to_string()])
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "PreferredAuthentications=publickey",
            ])
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", kh.display()))
            .arg("-i")
            .arg(key)
            .arg(format!("{}@127.0.0.1", self.user))
            .arg("echo keyclone-login-ok")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&passfile);
        Out::from(out)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
