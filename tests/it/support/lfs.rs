//! Git LFS servers on loopback, and the real `git-lfs` client as the oracle.
//!
//! - [`LfsServer`]: giftless (a kept Git LFS server from PyPI, in the virtualenv `scripts/test`
//!   makes: `target/lfs-venv`, or `KEYCLONE_LFS_VENV`) serving the HTTPS batch API behind TLS
//!   with a CA made at run time by `openssl`; `lfs_server.py` beside this file starts it, and
//!   can make it a lying server for the bad-input tests.
//! - [`authenticate_on`]: the test sshd's sessions go through a `ForceCommand` wrapper that
//!   answers `git-lfs-authenticate PATH download` with the JSON git-lfs expects (the server's
//!   address and an `Authorization` header) and runs every other command as it came.
//!   `git-lfs-transfer PATH download` runs `git-lfs-transfer` in the same folder when
//!   [`transfer_on`] put one there (scutiger-lfs's, [`transfer_program`], the pure SSH protocol;
//!   or a hostile stand-in), else fails with 127 as a shell does for a missing command.
//! - [`make_lfs_repo`]: a repository whose `*.bin` files are committed through git-lfs's clean
//!   filter, their objects copied into the server's storage ([`Store`]).
//! - What the LFS tests check on a clone: [`said`], [`is_pointer`], [`assert_says`],
//!   [`files_under`].

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Out, require, wait_until};

/// The token the test `git-lfs-authenticate` hands out and the server wants.
pub const TOKEN: &str = "lfs-test-token-5b1d";

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("KEYCLONE_LFS_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lfs-venv"),
        PathBuf::from,
    );
    let py = venv.join("bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import giftless, werkzeug"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the LFS tests need giftless in the virtualenv {}: run `bash scripts/test` (it makes it), or `python3 -m venv {v} && {v}/bin/pip install giftless==0.6.2`",
        venv.display(),
        v = venv.display()
    );
    py
}

/// giftless on 127.0.0.1 behind TLS; stopped when dropped.
pub struct LfsServer {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl LfsServer {
    /// `tamper`: `none`, `http`, `other-host`, `size` (see `lfs_server.py`).
    pub fn start(tamper: &str) -> LfsServer {
        let py = venv_python();
        let dir = tempfile::Builder::new()
            .prefix("keyclone-lfs-")
            .tempdir()
            .unwrap();
        super::https::make_in(dir.path(), "lfs");
        std::fs::create_dir_all(dir.path().join("storage")).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/lfs_server.py");
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut child = Command::new(py)
            .arg(script)
            .arg(dir.path())
            .arg(TOKEN)
            .arg(tamper)
            .env("GIFTLESS_DEBUG", "")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let port_file = dir.path().join("port");
        wait_until("the LFS server listens", Duration::from_secs(30), || {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "the LFS server exited ({st}): {}",
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
                );
            }
            port_file.exists()
        });
        let port = std::fs::read_to_string(&port_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        LfsServer { child, port, dir }
    }

    /// The CA that signed the server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Where giftless keeps the object `oid` of repository `test/NAME`.
    pub fn object(&self, name: &str, oid: &str) -> PathBuf {
        self.dir.path().join("storage/test").join(name).join(oid)
    }

    /// The requests it answered: `METHOD HOST PATH auth=yes|no` a line.
    pub fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default()
    }
}

impl Drop for LfsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `ForceCommand` wrapper for the test sshd: its configuration line. Until
/// [`authenticate_on`] writes its target, `git-lfs-authenticate` fails as on a server without
/// LFS.
pub fn wrapper_config(dir: &Path) -> String {
    let wrapper = dir.join("lfs-wrapper.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             case \"$SSH_ORIGINAL_COMMAND\" in\n\
             \"git-lfs-authenticate \"*) echo \"$SSH_ORIGINAL_COMMAND\" >> '{log}'; \
             if [ -x '{auth}' ]; then eval \"'{auth}' ${{SSH_ORIGINAL_COMMAND#git-lfs-authenticate }}\"; \
             else echo 'git-lfs-authenticate: command not found' >&2; exit 127; fi ;;\n\
             \"git-lfs-transfer \"*) echo \"$SSH_ORIGINAL_COMMAND\" >> '{log}'; \
             if [ -x '{transfer}' ]; then eval \"exec '{transfer}' ${{SSH_ORIGINAL_COMMAND#git-lfs-transfer }}\"; \
             else echo 'git-lfs-transfer: command not found' >&2; exit 127; fi ;;\n\
             *) exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\" ;;\n\
             esac\n",
            log = dir.join("lfs-commands.log").display(),
            auth = dir.join("git-lfs-authenticate").display(),
            transfer = dir.join("git-lfs-transfer").display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("ForceCommand {}\n", wrapper.display())
}

/// Makes `git-lfs-authenticate` in `dir` (the wrapper's folder) answer with `server`'s address
/// for the repository `test/NAME` (NAME: the path's last part without `.git`).
pub fn authenticate_on(dir: &Path, server: &LfsServer) {
    let script = dir.join("git-lfs-authenticate");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             [ \"$2\" = download ] || [ \"$2\" = upload ] || {{ echo \"bad operation $2\" >&2; exit 2; }}\n\
             name=$(basename \"$1\" .git)\n\
             printf '{{\"href\":\"https://127.0.0.1:{port}/test/%s.git/info/lfs\",\"header\":{{\"Authorization\":\"RemoteAuth {TOKEN}\"}},\"expires_in\":3600}}\\n' \"$name\"\n",
            port = server.port
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// scutiger-lfs's `git-lfs-transfer` (a kept server of git-lfs's pure SSH protocol), which
/// `scripts/test` builds into `target/tools` (or `KEYCLONE_LFS_TRANSFER`).
pub fn transfer_program() -> PathBuf {
    let program = std::env::var_os("KEYCLONE_LFS_TRANSFER").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin/git-lfs-transfer"),
        PathBuf::from,
    );
    assert!(
        program.is_file(),
        "the pure SSH LFS tests need scutiger-lfs's git-lfs-transfer at {}: run `bash scripts/test` (it builds it), or `cargo install --locked scutiger-lfs --version =0.3.0 --root target/tools`",
        program.display()
    );
    program
}

/// Makes the wrapper in `dir` run `program` for `git-lfs-transfer PATH OPERATION` (its
/// arguments as the client sent them), with `env` set. With `log`, what clients send it is
/// appended to `dir/transfer-requests.log` (through `tee`, which holds the channel open until
/// the client closes its end: only for a server that ends on `quit`).
pub fn transfer_on(dir: &Path, program: &Path, env: &[(&str, &str)], log: bool) {
    let script = dir.join("git-lfs-transfer");
    let mut text = String::from("#!/bin/sh\n");
    for (k, v) in env {
        text.push_str(&format!("export {k}='{v}'\n"));
    }
    if log {
        text.push_str(&format!(
            "tee -a '{}' | ",
            dir.join("transfer-requests.log").display()
        ));
    } else {
        text.push_str("exec ");
    }
    text.push_str(&format!("'{}' \"$@\"\n", program.display()));
    std::fs::write(&script, text).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Where [`make_lfs_repo`] puts the LFS objects for a server.
#[derive(Clone, Copy)]
pub enum Store<'a> {
    /// giftless's storage.
    Giftless(&'a LfsServer),
    /// The bare repository's own `lfs/objects`, where `git-lfs-transfer` serves them from.
    Bare,
}

/// A git configuration file with git-lfs's filters (what `git lfs install` writes) and the
/// test CA.
pub fn lfs_gitconfig(dir: &Path, ca: Option<&Path>) -> PathBuf {
    let path = dir.join("lfs.gitconfig");
    let mut text = String::from(
        "[filter \"lfs\"]\n\tclean = git-lfs clean -- %f\n\tsmudge = git-lfs smudge -- %f\n\
         \tprocess = git-lfs filter-process\n\trequired = true\n",
    );
    if let Some(ca) = ca {
        text.push_str(&format!("[http]\n\tsslCAInfo = {}\n", ca.display()));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// `git` with git-lfs's filters configured (`gitconfig`), extra environment in `env`.
pub fn git_lfs(dir: &Path, gitconfig: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    require("git-lfs", "git-lfs");
    let out = Command::new(require("git", "git"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .env("GIT_CONFIG_GLOBAL", gitconfig)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out::from(out)
}

/// `base/NAME.git`: a README, `.gitattributes` with `*.bin filter=lfs`, and `files` (path,
/// content) committed through git-lfs's clean filter. Each `.bin` file's object is copied to
/// `store`. Returns the bare repository and the oids.
pub fn make_lfs_repo(
    base: &Path,
    name: &str,
    files: &[(&str, &[u8])],
    store: Store<'_>,
) -> (PathBuf, Vec<String>) {
    let work = base.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    let cfg = lfs_gitconfig(base, None);
    git_lfs(&work, &cfg, &["init", "-q", "-b", "main"], &[]).ok();
    std::fs::write(work.join("README.md"), "# models\n").unwrap();
    std::fs::write(
        work.join(".gitattributes"),
        "*.bin filter=lfs diff=lfs merge=lfs -text\n",
    )
    .unwrap();
    for (path, content) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    git_lfs(&work, &cfg, &["add", "-A"], &[]).ok();
    git_lfs(&work, &cfg, &["commit", "-q", "-m", "models"], &[]).ok();
    let ls = git_lfs(&work, &cfg, &["lfs", "ls-files", "-l"], &[]);
    ls.ok();
    let oids: Vec<String> = ls
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(
        oids.len(),
        files.iter().filter(|(p, _)| p.ends_with(".bin")).count()
    );
    let bare = base.join(format!("{name}.git"));
    git_lfs(
        base,
        &cfg,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
        &[],
    )
    .ok();
    for oid in &oids {
        let from = work
            .join(".git/lfs/objects")
            .join(&oid[..2])
            .join(&oid[2..4])
            .join(oid);
        let to = match store {
            Store::Giftless(server) => server.object(name, oid),
            Store::Bare => bare
                .join("lfs/objects")
                .join(&oid[..2])
                .join(&oid[2..4])
                .join(oid),
        };
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
    (bare, oids)
}

const POINTER_START: &[u8] = b"version https://git-lfs.github.com/spec/v1\n";

/// A run's standard output and error together.
pub fn said(out: &Out) -> String {
    format!("{}{}", out.stdout, out.stderr)
}

/// Whether the file holds an LFS pointer.
pub fn is_pointer(path: &Path) -> bool {
    std::fs::read(path).unwrap().starts_with(POINTER_START)
}

/// Asserts that `text` contains each of `needles`.
pub fn assert_says(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "no `{needle}` in:\n{text}");
    }
}

/// The clone at `dest` of the `models` repository (`model.bin`, `data/set.bin`) ended as one
/// whose LFS content could not be fetched: exit 12, both files named with `why` and the command
/// that fetches them later, both left pointers, and no object (not even half of one) stored.
pub fn assert_left_as_pointers(out: &Out, dest: &Path, why: &str) {
    out.code(12);
    assert_says(
        &said(out),
        &[
            "2 LFS files could not be fetched",
            "model.bin: ",
            "data/set.bin: ",
            why,
            "keyclone lfs pull",
            "git lfs pull",
        ],
    );
    assert!(is_pointer(&dest.join("model.bin")));
    assert!(is_pointer(&dest.join("data/set.bin")));
    let stored = files_under(&dest.join(".git/lfs/objects"));
    assert!(
        stored.is_empty(),
        "an object (or half of one) was stored: {stored:?}"
    );
}

/// Every file under `dir` (recursively), for "nothing left behind" checks.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
