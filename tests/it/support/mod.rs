//! Test helpers: a sealed HOME per test (the real `~/.ssh` is never touched), running the
//! keyclone binary in it, the real OpenSSH tools as oracles, and a real sshd (see `sshd`).

pub mod agent;
pub mod craft;
pub mod git;
pub mod https;
pub mod lfs;
pub mod meta_https;
pub mod sshd;
pub mod switch;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The keyclone binary under test.
pub fn keyclone_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keyclone"))
}

/// Finds a required program or fails the test saying what to install.
pub fn require(program: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{program}` is needed by this test and was not found: install it with `apt-get install {package}` (or run `bash scripts/test`, which installs what is missing)"
    );
}

/// The umask every test runs with unless it sets another: 022, whatever the developer's shell
/// has (set for this process once, and again for every spawned keyclone).
pub const UMASK: u32 = 0o022;

/// Seals this test process once: the umask, and libgit2's config search paths (global, XDG,
/// system) pointed at an empty folder, so the in-process tests (and the tests' own libgit2
/// calls) never read the developer's `~/.gitconfig` nor `/etc/gitconfig`.
pub fn seal_process() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(UMASK));
        let empty = tempfile::Builder::new()
            .prefix("keyclone-test-gitconfig-")
            .tempdir()
            .expect("temp dir")
            .keep();
        for level in [
            git2::ConfigLevel::Global,
            git2::ConfigLevel::XDG,
            git2::ConfigLevel::System,
            git2::ConfigLevel::ProgramData,
        ] {
            #[allow(unsafe_code)]
            // SAFETY: process-wide libgit2 options, set once (under `Once`) before this process
            // makes any libgit2 call: every test creates its sandbox first.
            unsafe {
                git2::opts::set_search_path(level, &empty).expect("set libgit2's search path");
            }
        }
    });
}

/// The serial number of the test runner's own session keyring: keyclone (debug builds) refuses
/// to touch it (`KEYCLONE_TEST_USER_KEYRING`); only runs inside `keyctl session` get a keyring.
pub fn user_keyring() -> String {
    static SERIAL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SERIAL
        .get_or_init(|| {
            // No session keyring at all (keyctl forbidden here): a serial no keyring has, so
            // keyclone's guard refuses for want of one.
            keyclone::secrets::session_keyring_serial()
                .map_or_else(|| "0".into(), |s| s.to_string())
        })
        .clone()
}

/// A temporary HOME with nothing in it.
pub struct Sandbox {
    pub root: tempfile::TempDir,
    pub home: PathBuf,
    /// Beside `root`, so tests that list `root` see only what keyclone made: the files keyclone
    /// is pointed at instead of system-wide ones.
    system: tempfile::TempDir,
}

/// What a finished command printed and returned.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success; stderr:\n{}\nstdout:\n{}",
            self.stderr, self.stdout
        );
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code; stderr:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    /// The secret appears nowhere in what the command printed (the secret itself is not shown).
    #[track_caller]
    pub fn never_shows(&self, secret: &str) -> &Self {
        assert!(
            !self.stdout.contains(secret) && !self.stderr.contains(secret),
            "a secret was printed by keyclone (not shown here)"
        );
        self
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        seal_process();
        let root = tempfile::Builder::new()
            .prefix("keyclone-test-")
            .tempdir()
            .expect("temp dir");
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = root.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        let system = tempfile::Builder::new()
            .prefix("keyclone-test-system-")
            .tempdir()
            .expect("temp dir");
        let sb = Sandbox { root, home, system };
        std::fs::write(sb.system_known_hosts(), "").unwrap();
        sb
    }

    /// The empty file keyclone reads as the system-wide known_hosts (instead of
    /// `/etc/ssh/ssh_known_hosts`); a test may write lines to it.
    pub fn system_known_hosts(&self) -> PathBuf {
        self.system.path().join("ssh_known_hosts")
    }

    /// The sealed environment for a test that runs keyclone in-process: the same variables
    /// `cmd_of` gives the binary.
    pub fn env(&self) -> keyclone::env::Env {
        let home = self.home.to_str().unwrap();
        let xdg = self.home.join(".config");
        let skh = self.system_known_hosts();
        let keyring = user_keyring();
        keyclone::env::Env::from_pairs([
            ("HOME", home),
            ("USER", "tester"),
            ("XDG_CONFIG_HOME", xdg.to_str().unwrap()),
            ("GIT_CONFIG_NOSYSTEM", "1"),
            ("KEYCLONE_SYSTEM_KNOWN_HOSTS", skh.to_str().unwrap()),
            ("KEYCLONE_TEST_USER_KEYRING", keyring.as_str()),
        ])
    }

    pub fn ssh_dir(&self) -> PathBuf {
        self.home.join(".ssh")
    }

    /// The keyclone command with a sealed environment: only what a test gives it.
    pub fn cmd(&self) -> Command {
        self.cmd_of(&keyclone_bin())
    }

    /// Another program with the same sealed environment (`keyctl session - keyclone ...`):
    /// HOME, an empty system known_hosts file, no system or global git config, the keyring
    /// guard (no keyring outside `keyctl session`), and umask 022 (a test may set another).
    pub fn cmd_of(&self, program: &Path) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(program);
        #[allow(unsafe_code)]
        // SAFETY: umask is async-signal-safe and touches no memory.
        unsafe {
            c.pre_exec(|| {
                nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(UMASK));
                Ok(())
            });
        }
        c.env_clear()
            .env("HOME", &self.home)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("USER", "tester")
            .env("LANG", "C.UTF-8")
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("KEYCLONE_SYSTEM_KNOWN_HOSTS", self.system_known_hosts())
            .env("KEYCLONE_TEST_USER_KEYRING", user_keyring())
            .current_dir(&self.home)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        Out::from(self.cmd().args(args).output().expect("run keyclone"))
    }

    pub fn run_cmd(&self, mut cmd: Command) -> Out {
        Out::from(cmd.output().expect("run keyclone"))
    }

    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Out {
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keyclone");
        child.stdin.take().unwrap().write_all(input).unwrap();
        Out::from(child.wait_with_output().unwrap())
    }

    /// Writes a file (mode 0600) in the sandbox, outside HOME.
    pub fn secret_file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.root.path().join(name);
        std::fs::write(&p, contents).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// Names of the entries in a directory, sorted.
    pub fn ls(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => vec![],
        };
        v.sort();
        v
    }
}

/// Runs `ssh-keygen` with arguments.
pub fn ssh_keygen(args: &[&str]) -> Out {
    let bin = require("ssh-keygen", "openssh-client");
    Out::from(
        Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

/// The public key OpenSSH derives from a private key file with this passphrase.
pub fn openssh_public_of(key: &Path, passphrase: &str) -> Out {
    ssh_keygen(&["-y", "-P", passphrase, "-f", key.to_str().unwrap()])
}

/// `type base64` of a public key line (drops the comment).
pub fn key_material(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// A loopback TCP port that refuses connections for as long as this value lives: a socket
/// bound to it that never listens (a connection gets RST, and no other socket can bind the
/// port, so no parallel test's server can take it). Dropping a `TcpListener` instead frees the
/// port for anyone.
#[derive(Debug)]
pub struct ClosedPort {
    _socket: std::os::fd::OwnedFd,
    pub port: u16,
}

#[allow(unsafe_code)]
pub fn closed_port() -> ClosedPort {
    use nix::libc;
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: plain socket calls on a descriptor this function owns (wrapped in `OwnedFd` at
    // once); `addr` and `len` are live, correctly sized locals for bind/getsockname.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let socket = OwnedFd::from_raw_fd(fd);
        // No SO_REUSEADDR: Linux then lets no other socket bind this port while it is held.
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        addr.sin_port = 0;
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::bind(fd, (&raw const addr).cast(), len);
        assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
        let rc = libc::getsockname(fd, (&raw mut addr).cast(), &mut len);
        assert_eq!(rc, 0, "getsockname: {}", std::io::Error::last_os_error());
        ClosedPort {
            _socket: socket,
            port: u16::from_be(addr.sin_port),
        }
    }
}

/// Waits until `cond` holds, checking every 10 ms, for at most `limit`; panics naming `what`.
#[track_caller]
pub fn wait_until(what: &str, limit: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up after {limit:?} waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
