//! The real `git` as a tool and as the oracle: making bare repositories to serve over the test
//! sshd, and cloning them with OpenSSH to compare with what keyclone produced.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::sshd::Sshd;
use super::{Out, require};

/// `git` with a sealed configuration and a fixed identity.
pub fn git(dir: &Path, args: &[&str]) -> Out {
    let bin = require("git", "git");
    let out = Command::new(bin)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out::from(out)
}

/// Makes `base/NAME.git`: commits on `main` (files in folders, an executable), a `dev` branch
/// one commit ahead, a tag `v1`. Returns the bare repository's path.
pub fn make_repo(base: &Path, name: &str) -> PathBuf {
    let work = base.join(format!("{name}-work"));
    std::fs::create_dir_all(work.join("src/nested")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]).ok();
    for i in 0..3 {
        std::fs::write(work.join("README.md"), format!("# {name}\nrevision {i}\n")).unwrap();
        std::fs::write(
            work.join(format!("src/nested/file{i}.txt")),
            "x".repeat(1000 * (i + 1)),
        )
        .unwrap();
        git(&work, &["add", "-A"]).ok();
        git(&work, &["commit", "-q", "-m", &format!("commit {i}")]).ok();
    }
    std::fs::write(work.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(work.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    git(&work, &["add", "-A"]).ok();
    git(&work, &["commit", "-q", "-m", "script"]).ok();
    git(&work, &["tag", "v1"]).ok();
    git(&work, &["checkout", "-q", "-b", "dev"]).ok();
    std::fs::write(work.join("DEV.md"), "dev only\n").unwrap();
    git(&work, &["add", "-A"]).ok();
    git(&work, &["commit", "-q", "-m", "dev work"]).ok();
    git(&work, &["checkout", "-q", "main"]).ok();
    let bare = base.join(format!("{name}.git"));
    git(
        base,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    )
    .ok();
    bare
}

/// The SSH URL of a repository served by the test sshd.
pub fn ssh_url(sshd: &Sshd, bare: &Path) -> String {
    format!(
        "ssh://{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        bare.display()
    )
}

/// `git clone` of `url` with OpenSSH, strict host checking against `known_hosts`, the key's
/// passphrase through SSH_ASKPASS.
pub fn git_clone_with_openssh(
    url: &str,
    dest: &Path,
    key: &Path,
    passphrase: &str,
    known_hosts: &Path,
    extra: &[&str],
) -> Out {
    let tmp = tempfile::tempdir().unwrap();
    let askpass = tmp.path().join("askpass.sh");
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, passphrase).unwrap();
    std::fs::write(&askpass, format!("#!/bin/sh\ncat '{}'\n", secret.display())).unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ssh = format!(
        "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null",
        key.display(),
        known_hosts.display()
    );
    let bin = require("git", "git");
    let out = Command::new(bin)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", tmp.path())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_SSH_COMMAND", ssh)
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .arg("clone")
        .arg("-q")
        .args(extra)
        .arg(url)
        .arg(dest)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out::from(out)
}

/// HEAD, the index (`git ls-files -s`) and whether `git fsck` is clean.
pub fn state(repo: &Path) -> (String, String, bool) {
    let head = git(repo, &["rev-parse", "HEAD"]).stdout.trim().to_owned();
    let files = git(repo, &["ls-files", "-s"]).stdout;
    let fsck = git(repo, &["fsck", "--no-progress"]);
    (head, files, fsck.code == 0)
}
