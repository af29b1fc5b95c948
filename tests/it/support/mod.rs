//! Test helpers: a sealed HOME per test (the real `~/.ssh` is never touched), running the
//! keyclone binary in it, the real OpenSSH tools as oracles, and a real sshd (see `sshd`).

pub mod agent;
pub mod craft;
pub mod git;
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

/// A temporary HOME with nothing in it.
pub struct Sandbox {
    pub root: tempfile::TempDir,
    pub home: PathBuf,
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
        let root = tempfile::Builder::new()
            .prefix("keyclone-test-")
            .tempdir()
            .expect("temp dir");
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = root.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        Sandbox { root, home }
    }

    pub fn ssh_dir(&self) -> PathBuf {
        self.home.join(".ssh")
    }

    /// The keyclone command with a sealed environment: only what a test gives it.
    pub fn cmd(&self) -> Command {
        self.cmd_of(&keyclone_bin())
    }

    /// Another program with the same sealed environment (`keyctl session - keyclone ...`).
    pub fn cmd_of(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("HOME", &self.home)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("USER", "tester")
            .env("LANG", "C.UTF-8")
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
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
