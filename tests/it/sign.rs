//! `keyclone sign`: the real `git` signs a commit with the key held by a real `ssh-agent`, and
//! the real `git verify-commit` and `git log --show-signature` accept it through the
//! `allowed_signers` file keyclone wrote (and refuse it once that file is tampered with).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::agent::Agent;
use crate::support::{Out, Sandbox, require, ssh_keygen};

const PASS: &str = "sign test passphrase";
const EMAIL: &str = "ada@example.org";

/// A sandbox with a passphrase-protected ed25519 key in `~/.ssh`.
fn with_key() -> (Sandbox, PathBuf) {
    let sb = Sandbox::new();
    let ssh = sb.ssh_dir();
    std::fs::create_dir(&ssh).unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = ssh.join("id_ed25519");
    ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        PASS,
        "-C",
        "ada",
        "-f",
        key.to_str().unwrap(),
    ])
    .ok();
    (sb, key)
}

/// Loads the key into the agent (passphrase through SSH_ASKPASS, never on a command line).
fn add_to_agent(sb: &Sandbox, agent: &Agent, key: &Path) {
    let pass = sb.secret_file("pass", PASS);
    let askpass = sb.root.path().join("askpass.sh");
    std::fs::write(&askpass, format!("#!/bin/sh\ncat '{}'\n", pass.display())).unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = Command::new(require("ssh-add", "openssh-client"))
        .env_clear()
        .env("SSH_AUTH_SOCK", &agent.sock)
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .arg(key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The real `git` with the sandbox's `~/.gitconfig` as its global config and the agent; no
/// askpass, so a signature can only come from the agent.
fn user_git(sb: &Sandbox, dir: &Path, agent: &Agent, args: &[&str]) -> Out {
    let out = Command::new(require("git", "git"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &sb.home)
        .env("XDG_CONFIG_HOME", sb.home.join(".config"))
        .env("GIT_CONFIG_GLOBAL", sb.home.join(".gitconfig"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("SSH_AUTH_SOCK", &agent.sock)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", EMAIL)
        .env("GIT_COMMITTER_EMAIL", EMAIL)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn global(sb: &Sandbox, name: &str) -> String {
    let out = Command::new(require("git", "git"))
        .env_clear()
        .args(["config", "--file"])
        .arg(sb.home.join(".gitconfig"))
        .args(["--get", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_commit_signed_through_the_agent_is_verified_by_git_and_tampering_breaks_it() {
    let (sb, key) = with_key();
    sb.run(&["sign", "--email", EMAIL])
        .ok()
        .stderr_has("signing key");
    let public = format!("{}.pub", key.display());
    assert_eq!(global(&sb, "gpg.format"), "ssh");
    assert_eq!(global(&sb, "user.signingkey"), public);
    assert_eq!(global(&sb, "commit.gpgsign"), "true");
    let signers = sb.home.join(".config/git/allowed_signers");
    assert_eq!(
        global(&sb, "gpg.ssh.allowedSignersFile"),
        signers.to_str().unwrap()
    );
    let material = crate::support::key_material(&std::fs::read_to_string(&public).unwrap());
    assert_eq!(
        std::fs::read_to_string(&signers).unwrap(),
        format!("{EMAIL} namespaces=\"git\" {material}\n")
    );
    // Run again: nothing changes, nothing is added twice.
    sb.run(&["sign", "--email", EMAIL])
        .ok()
        .stderr_has("already lists it");
    assert_eq!(
        std::fs::read_to_string(&signers).unwrap().lines().count(),
        1
    );

    let agent = Agent::start();
    add_to_agent(&sb, &agent, &key);
    let repo = sb.root.path().join("work");
    std::fs::create_dir(&repo).unwrap();
    user_git(&sb, &repo, &agent, &["init", "-q", "-b", "main"]).ok();
    user_git(
        &sb,
        &repo,
        &agent,
        &["commit", "-q", "-S", "--allow-empty", "-m", "signed"],
    )
    .ok();
    // commit.gpgsign: a plain commit is signed too.
    user_git(
        &sb,
        &repo,
        &agent,
        &["commit", "-q", "--allow-empty", "-m", "also signed"],
    )
    .ok();
    user_git(&sb, &repo, &agent, &["verify-commit", "HEAD"]).ok();
    user_git(&sb, &repo, &agent, &["verify-commit", "HEAD~1"]).ok();
    let log = user_git(&sb, &repo, &agent, &["log", "--show-signature", "-1"]);
    log.ok();
    assert!(
        log.stdout
            .contains(&format!("Good \"git\" signature for {EMAIL}")),
        "{}",
        log.stdout
    );

    // Another key under the same email: the signature no longer verifies.
    let other = sb.root.path().join("other");
    ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        other.to_str().unwrap(),
    ])
    .ok();
    let other_material = crate::support::key_material(
        &std::fs::read_to_string(format!("{}.pub", other.display())).unwrap(),
    );
    std::fs::write(
        &signers,
        format!("{EMAIL} namespaces=\"git\" {other_material}\n"),
    )
    .unwrap();
    let bad = user_git(&sb, &repo, &agent, &["verify-commit", "HEAD"]);
    assert_ne!(bad.code, 0, "a tampered allowed_signers must not verify");
}

#[test]
fn another_signing_setup_is_kept_unless_forced() {
    let (sb, key) = with_key();
    std::fs::write(
        sb.home.join(".gitconfig"),
        "[user]\n\temail = ada@example.org\n\tsigningkey = ABCDEF0123456789\n[gpg]\n\tformat = openpgp\n",
    )
    .unwrap();
    sb.run(&["sign"])
        .code(5)
        .stderr_has("user.signingkey is `ABCDEF0123456789`")
        .stderr_has("keyclone sign --force");
    assert_eq!(global(&sb, "gpg.format"), "openpgp");
    assert_eq!(global(&sb, "user.signingkey"), "ABCDEF0123456789");
    assert!(!sb.home.join(".config/git/allowed_signers").exists());

    sb.run(&["sign", "--force"]).ok();
    assert_eq!(global(&sb, "gpg.format"), "ssh");
    assert_eq!(
        global(&sb, "user.signingkey"),
        format!("{}.pub", key.display())
    );
    // The email came from git's user.email.
    assert!(
        std::fs::read_to_string(sb.home.join(".config/git/allowed_signers"))
            .unwrap()
            .starts_with("ada@example.org ")
    );
}

#[test]
fn without_an_email_or_with_a_bad_one_nothing_is_written() {
    let (sb, _key) = with_key();
    sb.run(&["sign"]).code(4).stderr_has("--email");
    sb.run(&["sign", "--email", "a b@example.org"]).code(2);
    sb.run(&["sign", "--email", "*@example.org"]).code(2);
    assert!(!sb.home.join(".gitconfig").exists());
    assert!(!sb.home.join(".config/git/allowed_signers").exists());
}

#[test]
fn repo_configures_only_that_repository() {
    let (sb, key) = with_key();
    let repo = sb.root.path().join("work");
    std::fs::create_dir(&repo).unwrap();
    crate::support::git::git(&repo, &["init", "-q"]).ok();
    sb.run(&["sign", "--email", EMAIL, "--repo", repo.to_str().unwrap()])
        .ok();
    assert!(!sb.home.join(".gitconfig").exists());
    let local = crate::support::git::git(&repo, &["config", "--local", "--get", "user.signingkey"]);
    assert_eq!(local.stdout.trim(), format!("{}.pub", key.display()));
}

#[test]
fn init_sign_signs_with_the_key_it_set_up_and_cached_in_the_agent() {
    let w = crate::init::World::new();
    let agent = Agent::start();
    let ssh = w.sb.ssh_dir();
    std::fs::create_dir(&ssh).unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = ssh.join("id_ed25519");
    let pass = crate::init::PASS;
    ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        pass,
        "-f",
        key.to_str().unwrap(),
    ])
    .ok();
    w.authorize(&key);
    let url = w.port_url();
    let out = w.init(
        &[
            "--non-interactive",
            "--repo",
            &url,
            "--key",
            key.to_str().unwrap(),
            "--passphrase-file",
            w.pass_file.to_str().unwrap(),
            "--cache",
            "agent",
            "--yes",
            "--no-clone",
            "--git-name",
            "Ada",
            "--git-email",
            EMAIL,
            "--sign",
        ],
        Some(&agent),
    );
    out.ok()
        .stderr_has("signing commits with")
        .never_shows(pass);
    assert_eq!(
        global(&w.sb, "user.signingkey"),
        format!("{}.pub", key.display())
    );
    assert_eq!(global(&w.sb, "user.email"), EMAIL);

    // The agent holds the key because init cached it there: git signs with it, git verifies.
    let repo = w.sb.root.path().join("work");
    std::fs::create_dir(&repo).unwrap();
    user_git(&w.sb, &repo, &agent, &["init", "-q"]).ok();
    user_git(
        &w.sb,
        &repo,
        &agent,
        &["commit", "-q", "--allow-empty", "-m", "x"],
    )
    .ok();
    let log = user_git(&w.sb, &repo, &agent, &["log", "--show-signature", "-1"]);
    assert!(
        log.stdout
            .contains(&format!("Good \"git\" signature for {EMAIL}")),
        "{}{}",
        log.stdout,
        log.stderr
    );
}

/// A dotfiles link at `allowed_signers` is not replaced by a file of keyclone's (its target
/// stays as it was); `commit.gpgsign = false` set on purpose is the user's setup too.
#[test]
fn a_linked_allowed_signers_and_signing_turned_off_are_left_alone() {
    let (sb, _key) = with_key();
    std::fs::write(
        sb.home.join(".gitconfig"),
        "[user]\n\temail = ada@example.org\n",
    )
    .unwrap();
    let target = sb.root.path().join("dotfiles-allowed_signers");
    std::fs::write(&target, "other@example.org ssh-ed25519 AAAA\n").unwrap();
    let dir = sb.home.join(".config/git");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("allowed_signers")).unwrap();
    sb.run(&["sign"])
        .code(5)
        .stderr_has("is a link or not a regular file")
        .stderr_has("namespaces=\"git\"");
    assert!(
        std::fs::symlink_metadata(dir.join("allowed_signers"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "other@example.org ssh-ed25519 AAAA\n"
    );
    std::fs::remove_file(dir.join("allowed_signers")).unwrap();
    std::fs::write(
        sb.home.join(".gitconfig"),
        "[user]\n\temail = ada@example.org\n[commit]\n\tgpgsign = false\n",
    )
    .unwrap();
    sb.run(&["sign"]).code(5).stderr_has("commit.gpgsign");
    assert_eq!(global(&sb, "commit.gpgsign"), "false");
}
