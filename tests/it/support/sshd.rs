//! A real OpenSSH server on loopback: random port, its own host key, a temporary
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

/// Makes a new ed25519 host key in `d`; returns its `type base64`.
fn new_host_key(d: &Path) -> String {
    let host_key = d.join("host_ed25519");
    let _ = std::fs::remove_file(&host_key);
    let _ = std::fs::remove_file(d.join("host_ed25519.pub"));
    let path = host_key.to_str().unwrap();
    super::ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        "test-host",
        "-f",
        path,
    ])
    .ok();
    super::key_material(&std::fs::read_to_string(d.join("host_ed25519.pub")).unwrap())
}

/// Starts sshd from the files in `d` on `addresses`, on `fixed_port` or a free one.
fn launch(d: &Path, addresses: &[&str], fixed_port: Option<u16>, extra: &str) -> (Child, u16) {
    let sshd = require("sshd", "openssh-server");
    if nix::unistd::Uid::effective().is_root() && !Path::new("/run/sshd").exists() {
        std::fs::create_dir_all("/run/sshd")
            .expect("create sshd's privilege separation directory /run/sshd");
        std::fs::set_permissions("/run/sshd", std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let log = d.join("sshd.log");
    let mut last_err = String::new();
    for _ in 0..10 {
        let port = fixed_port.unwrap_or_else(free_port);
        let config = d.join("sshd_config");
        let listen: String = addresses
            .iter()
            .map(|a| format!("ListenAddress {a}\n"))
            .collect();
        std::fs::write(
            &config,
            format!(
                "{listen}Port {port}\nHostKey {hk}\nPidFile {pid}\nAuthorizedKeysFile {ak}\n\
                 StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 SetEnv GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null\n\
                 PermitRootLogin prohibit-password\nPubkeyAuthentication yes\nLogLevel VERBOSE\nMaxStartups 100\n{extra}",
                hk = d.join("host_ed25519").display(),
                pid = d.join("sshd.pid").display(),
                ak = d.join("authorized_keys").display(),
            ),
        )
        .unwrap();
        // `-E` appends: start each attempt with an empty log, so only this server's lines count.
        let _ = std::fs::remove_file(&log);
        let mut child = Command::new(&sshd)
            .arg("-D")
            .arg("-f")
            .arg(&config)
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Our sshd says it listens (a connect alone could reach another test's server that
            // took the port between `free_port` and this sshd's bind).
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            if addresses
                .iter()
                .all(|a| said.contains(&format!("Server listening on {a} port {port}.")))
                && addresses
                    .iter()
                    .all(|a| TcpStream::connect((*a, port)).is_ok())
                && matches!(child.try_wait(), Ok(None))
            {
                return (child, port);
            }
            if let Ok(Some(_)) = child.try_wait() {
                last_err = std::fs::read_to_string(&log).unwrap_or_default();
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                last_err = "sshd did not listen within 10 s".into();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The port was taken (by another test, or the previous server still closing): retry.
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("could not start sshd on {addresses:?}: {last_err}");
}

impl Sshd {
    /// An sshd on 127.0.0.1 and a random free port.
    pub fn start() -> Sshd {
        Sshd::start_on(&["127.0.0.1"])
    }

    /// An sshd listening on each of `addresses` (loopback addresses), one random port.
    pub fn start_on(addresses: &[&str]) -> Sshd {
        Sshd::start_with(addresses, "")
    }

    /// An sshd with extra configuration lines (e.g. `ForceCommand ...`).
    pub fn start_with(addresses: &[&str], extra: &str) -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("keyclone-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let host_key = new_host_key(d);
        std::fs::write(d.join("authorized_keys"), "").unwrap();
        std::fs::set_permissions(
            d.join("authorized_keys"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let (child, port) = launch(d, addresses, None, extra);
        Sshd {
            child,
            port,
            log: d.join("sshd.log"),
            dir,
            host_key,
            user: current_user(),
        }
    }

    /// Stops the server and starts another on the same port with a new host key: what a
    /// man-in-the-middle (or a reinstalled server) looks like to a client.
    pub fn restart_with_new_host_key(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.host_key = new_host_key(self.dir.path());
        let (child, _) = launch(self.dir.path(), &["127.0.0.1"], Some(self.port), "");
        self.child = child;
    }

    /// `SHA256:...` of the host key.
    pub fn fingerprint(&self) -> String {
        let out = super::ssh_keygen(&[
            "-lf",
            self.dir.path().join("host_ed25519.pub").to_str().unwrap(),
        ]);
        out.stdout.split_whitespace().nth(1).unwrap().to_owned()
    }

    /// The server's AuthorizedKeysFile.
    pub fn authorized_keys_path(&self) -> PathBuf {
        self.dir.path().join("authorized_keys")
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
    /// SSH_ASKPASS, never on a command line); the host key is checked strictly against a
    /// known_hosts file holding this server's line.
    pub fn ssh_login(&self, key: &Path, passphrase: Option<&str>) -> Out {
        let kh = self.dir.path().join("client_known_hosts");
        std::fs::write(&kh, format!("{}\n", self.known_hosts_line())).unwrap();
        self.ssh_login_with(key, passphrase, &kh)
    }

    /// Like [`Sshd::ssh_login`], with the client's known_hosts file given (strict checking).
    pub fn ssh_login_with(&self, key: &Path, passphrase: Option<&str>, known_hosts: &Path) -> Out {
        let ssh = require("ssh", "openssh-client");
        let d = self.dir.path();
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
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .arg("-o")
            .arg("GlobalKnownHostsFile=/dev/null")
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

/// Another server listening on the chosen port (a parallel test's) is not mistaken for ours:
/// a connect alone would succeed there, so `launch` waits for its own sshd to say it listens.
#[test]
fn a_port_another_server_holds_is_not_taken_for_ours() {
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = other.local_addr().unwrap().port();
    let d = tempfile::Builder::new()
        .prefix("keyclone-sshd-")
        .tempdir()
        .unwrap();
    new_host_key(d.path());
    std::fs::write(d.path().join("authorized_keys"), "").unwrap();
    let started = std::panic::catch_unwind(|| launch(d.path(), &["127.0.0.1"], Some(port), ""));
    if let Ok((mut child, _)) = started {
        let _ = child.kill();
        let _ = child.wait();
        panic!("an sshd that could not bind port {port} was taken as started");
    }
    drop(other);
}
