//! Git LFS over SSH: `keyclone clone` of a repository with LFS files, against giftless (a real
//! LFS server) reached through `git-lfs-authenticate` on the test sshd, with the real `git-lfs`
//! client as the oracle; and the servers and files that lie.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::clone::{PASS, Setup};
use crate::support::Out;
use crate::support::git::ssh_url;
use crate::support::lfs::{
    LfsServer, Store, authenticate_on, git_lfs, lfs_gitconfig, make_lfs_repo, said, transfer_on,
    transfer_program, wrapper_config,
};
use crate::support::sshd::Sshd;

pub(crate) struct Lfs {
    pub(crate) setup: Setup,
    /// giftless, behind `git-lfs-authenticate` ([`Lfs::new`]); none for the pure protocol.
    server: Option<LfsServer>,
    /// The wrapper's folder on the sshd side (`lfs-commands.log`).
    pub(crate) cmds: tempfile::TempDir,
    pub(crate) url: String,
    pub(crate) bare: PathBuf,
    pub(crate) oids: Vec<String>,
}

/// A 300 KiB file that is not all one byte.
fn weights(seed: u8) -> Vec<u8> {
    (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

/// How the test sshd serves LFS.
enum Serve<'a> {
    /// giftless behind `git-lfs-authenticate` (`tamper`: see `lfs_server.py`).
    Https(&'a str),
    /// This `git-lfs-transfer` (with this environment; its requests logged or not) and no
    /// `git-lfs-authenticate`.
    Pure(&'a Path, &'a [(&'a str, &'a str)], bool),
}

impl Lfs {
    /// An sshd whose `git-lfs-authenticate` points at giftless (`tamper`: see
    /// `lfs_server.py`), and a repository `models` with `model.bin` and `data/set.bin` in LFS.
    pub(crate) fn new(tamper: &str) -> Lfs {
        Lfs::serving(Serve::Https(tamper))
    }

    /// The same repository served only over the pure SSH protocol, by scutiger-lfs's
    /// `git-lfs-transfer` from the bare repository's `lfs/objects`.
    pub(crate) fn pure() -> Lfs {
        Lfs::serving(Serve::Pure(&transfer_program(), &[], true))
    }

    /// The same, served by `program` as `git-lfs-transfer` (a hostile stand-in).
    pub(crate) fn pure_by(program: &Path, env: &[(&str, &str)]) -> Lfs {
        Lfs::serving(Serve::Pure(program, env, false))
    }

    fn serving(serve: Serve<'_>) -> Lfs {
        let cmds = tempfile::Builder::new()
            .prefix("keyclone-lfs-cmds-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(cmds.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let sshd = Sshd::start_with(&["127.0.0.1"], &wrapper_config(cmds.path()));
        let server = match serve {
            Serve::Https(tamper) => {
                let server = LfsServer::start(tamper);
                authenticate_on(cmds.path(), &server);
                Some(server)
            }
            Serve::Pure(program, env, log) => {
                transfer_on(cmds.path(), program, env, log);
                None
            }
        };
        let setup = Setup::with_sshd(sshd, "ed25519");
        let store = server.as_ref().map_or(Store::Bare, Store::Giftless);
        let (bare, oids) = make_lfs_repo(
            setup.repos.path(),
            "models",
            &[
                ("model.bin", &weights(1)),
                ("data/set.bin", &weights(2)),
                ("notes.txt", b"not in LFS\n"),
            ],
            store,
        );
        let url = ssh_url(&setup.sshd, &bare);
        Lfs {
            setup,
            server,
            cmds,
            url,
            bare,
            oids,
        }
    }

    /// giftless (only in the set-ups of [`Lfs::new`]).
    pub(crate) fn server(&self) -> &LfsServer {
        self.server
            .as_ref()
            .expect("this set-up has no HTTPS LFS server")
    }

    /// The LFS commands the sshd ran, a line each.
    pub(crate) fn commands(&self) -> String {
        std::fs::read_to_string(self.cmds.path().join("lfs-commands.log")).unwrap_or_default()
    }

    /// keyclone with `args`, the key's passphrase file, and the server's CA for this child
    /// only.
    fn keyclone<I: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = I>, extra: &[&str]) -> Out {
        let mut cmd = self.setup.sb.cmd();
        if let Some(server) = &self.server {
            cmd.env("SSL_CERT_FILE", server.ca());
        }
        cmd.args(args)
            .arg("--passphrase-file")
            .arg(&self.setup.pass_file)
            .args(extra);
        self.setup.sb.run_cmd(cmd)
    }

    /// `keyclone clone URL DEST`.
    pub(crate) fn clone(&self, dest: &Path, extra: &[&str]) -> Out {
        self.keyclone(
            [OsStr::new("clone"), self.url.as_ref(), dest.as_os_str()],
            extra,
        )
    }

    /// `keyclone lfs pull PATH`.
    pub(crate) fn pull(&self, path: &Path, extra: &[&str]) -> Out {
        self.keyclone(
            [OsStr::new("lfs"), "pull".as_ref(), path.as_os_str()],
            extra,
        )
    }

    /// `git` in `repo` with git-lfs installed and the test CA.
    pub(crate) fn git(&self, repo: &Path, args: &[&str]) -> Out {
        let ca = self.server.as_ref().map(LfsServer::ca);
        let cfg = lfs_gitconfig(self.setup.repos.path(), ca.as_deref());
        git_lfs(repo, &cfg, args, &[])
    }

    /// The oracle: `git clone` with git-lfs over OpenSSH (strict host checking, the key's
    /// passphrase through SSH_ASKPASS), traced (`GIT_TRACE`: which LFS protocol it used).
    pub(crate) fn git_clone(&self, dest: &Path) -> Out {
        let tmp = tempfile::tempdir().unwrap();
        let askpass = tmp.path().join("askpass.sh");
        let secret = tmp.path().join("secret");
        std::fs::write(&secret, PASS).unwrap();
        std::fs::write(&askpass, format!("#!/bin/sh\ncat '{}'\n", secret.display())).unwrap();
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
        let ssh = format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null",
            self.setup.key.display(),
            self.setup.known_hosts().display()
        );
        let ca = self.server.as_ref().map(LfsServer::ca);
        let cfg = lfs_gitconfig(tmp.path(), ca.as_deref());
        let askpass = askpass.to_str().unwrap().to_owned();
        git_lfs(
            tmp.path(),
            &cfg,
            &["clone", "-q", &self.url, dest.to_str().unwrap()],
            &[
                ("GIT_SSH_COMMAND", &ssh),
                ("SSH_ASKPASS", &askpass),
                ("SSH_ASKPASS_REQUIRE", "force"),
                ("DISPLAY", ":0"),
                ("GIT_TRACE", "1"),
            ],
        )
    }
}

impl Lfs {
    /// The clone at `dest` of `models` is whole: the content in place, git-lfs's own checks
    /// pass (every object stored and sound, every file present), `git status` is clean, and the
    /// work tree is the one git + git-lfs make. The oracle's clone, traced.
    pub(crate) fn assert_whole(&self, dest: &Path) -> Out {
        assert_eq!(std::fs::read(dest.join("model.bin")).unwrap(), weights(1));
        assert_eq!(
            std::fs::read(dest.join("data/set.bin")).unwrap(),
            weights(2)
        );
        self.git(dest, &["lfs", "fsck"]).ok();
        let ls = self.git(dest, &["lfs", "ls-files"]);
        ls.ok();
        assert_eq!(ls.stdout.lines().count(), 2, "{}", ls.stdout);
        assert!(
            ls.stdout.lines().all(|l| l.contains(" * ")),
            "not all present: {}",
            ls.stdout
        );
        let status = self.git(dest, &["status", "--porcelain"]);
        status.ok();
        assert_eq!(status.stdout, "", "git status is not clean");
        let oracle = self.setup.dest("oracle");
        let out = self.git_clone(&oracle);
        out.ok();
        assert_eq!(tree(dest), tree(&oracle));
        out
    }
}

/// Every file of a work tree (not `.git`), relative path and content.
fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn a_clone_fetches_lfs_content_as_git_lfs_does() {
    let lfs = Lfs::new("none");
    let dest = lfs.setup.dest("models");
    let out = lfs.clone(&dest, &[]);
    out.ok();
    assert!(
        said(&out).contains("2 LFS files (0.6 MiB) fetched"),
        "{}",
        said(&out)
    );
    lfs.assert_whole(&dest);
    // Over SSH with the clone's key, then the batch API with the header it gave.
    // keyclone tried the pure protocol first and, as the server has no `git-lfs-transfer`
    // (exit 127), fell back to `git-lfs-authenticate`, as git-lfs does.
    let cmds = lfs.commands();
    let mine: Vec<&str> = cmds.lines().take(2).collect();
    let path = lfs.bare.display();
    assert_eq!(
        mine,
        [
            format!("git-lfs-transfer '{path}' download"),
            format!("git-lfs-authenticate '{path}' download")
        ],
        "{cmds}"
    );
    assert!(
        lfs.server().requests().contains("/objects/batch auth=yes"),
        "{}",
        lfs.server().requests()
    );
}

#[test]
fn lfs_pull_fetches_only_what_is_missing() {
    let lfs = Lfs::new("none");
    let dest = lfs.setup.dest("models");
    lfs.clone(&dest, &["--no-lfs"]).ok();
    // As after an interrupted run: model.bin's object (the second oid) is already stored.
    let oid = &lfs.oids[1];
    let stored = dest
        .join(".git/lfs/objects")
        .join(&oid[..2])
        .join(&oid[2..4]);
    std::fs::create_dir_all(&stored).unwrap();
    std::fs::copy(lfs.server().object("models", oid), stored.join(oid)).unwrap();
    let out = lfs.pull(&dest, &[]);
    out.ok();
    assert!(
        said(&out).contains("2 LFS files (0.6 MiB) fetched"),
        "{}",
        said(&out)
    );
    assert_eq!(std::fs::read(dest.join("model.bin")).unwrap(), weights(1));
    assert_eq!(
        std::fs::read(dest.join("data/set.bin")).unwrap(),
        weights(2)
    );
    let log = lfs.server().requests();
    let gets: Vec<&str> = log.lines().filter(|l| l.starts_with("GET ")).collect();
    assert_eq!(gets.len(), 1, "{log}");
    assert!(gets[0].contains(&lfs.oids[0]), "{log}");
    lfs.git(&dest, &["lfs", "fsck"]).ok();
    let status = lfs.git(&dest, &["status", "--porcelain"]);
    assert_eq!(status.stdout, "", "git status is not clean");
    // A second run has nothing to do.
    let again = lfs.pull(&dest, &[]);
    again.ok();
    assert!(
        said(&again).contains("Nothing to fetch: 2 LFS files are already in place"),
        "{}",
        said(&again)
    );
}
