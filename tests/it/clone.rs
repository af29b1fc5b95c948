//! `keyclone clone` and `keyclone test` against a real sshd serving real repositories, with
//! `git clone` over OpenSSH as the oracle.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::Sandbox;
use crate::support::git::{git, git_clone_with_openssh, make_repo, ssh_url, state};
use crate::support::sshd::Sshd;

pub(crate) const PASS: &str = "clone test passphrase";

pub(crate) struct Setup {
    pub(crate) sshd: Sshd,
    pub(crate) sb: Sandbox,
    pub(crate) repos: tempfile::TempDir,
    pub(crate) pass_file: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) bare: PathBuf,
    pub(crate) url: String,
}

impl Setup {
    pub(crate) fn new(key_type: &str) -> Setup {
        Setup::with_sshd(Sshd::start(), key_type)
    }

    pub(crate) fn with_sshd(sshd: Sshd, key_type: &str) -> Setup {
        let repos = tempfile::Builder::new()
            .prefix("keyclone-repos-")
            .tempdir()
            .unwrap();
        let bare = make_repo(repos.path(), "project");
        let sb = Sandbox::new();
        let pass_file = sb.secret_file("pass", PASS);
        sb.run(&[
            "keygen",
            "--type",
            key_type,
            "--passphrase-file",
            pass_file.to_str().unwrap(),
        ])
        .ok();
        let key = sb.ssh_dir().join(if key_type == "rsa" {
            "id_rsa"
        } else {
            "id_ed25519"
        });
        sshd.authorize(&std::fs::read_to_string(format!("{}.pub", key.display())).unwrap());
        sb.run(&[
            "trust",
            &format!("127.0.0.1:{}", sshd.port),
            "--fingerprint",
            &sshd.fingerprint(),
        ])
        .ok();
        let url = ssh_url(&sshd, &bare);
        Setup {
            sshd,
            sb,
            repos,
            pass_file,
            key,
            bare,
            url,
        }
    }

    pub(crate) fn dest(&self, name: &str) -> PathBuf {
        self.sb.root.path().join(name)
    }

    pub(crate) fn clone(&self, extra: &[&str]) -> crate::support::Out {
        let mut args = vec![
            "clone",
            self.url.as_str(),
            "--passphrase-file",
            self.pass_file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.sb.run(&args)
    }

    pub(crate) fn known_hosts(&self) -> PathBuf {
        self.sb.ssh_dir().join("known_hosts")
    }

    /// A work tree of the served repository, to change and then [`Setup::push`].
    pub(crate) fn work(&self, name: &str) -> PathBuf {
        let work = self.repos.path().join(name);
        git(
            self.repos.path(),
            &[
                "clone",
                "-q",
                self.bare.to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        )
        .ok();
        work
    }

    /// Commits everything in `work` and pushes it to the served repository.
    pub(crate) fn push(&self, work: &Path, message: &str) {
        git(work, &["add", "-A"]).ok();
        git(work, &["commit", "-q", "-m", message]).ok();
        git(work, &["push", "-q", "origin", "main"]).ok();
    }

    /// keyclone's clone and git's clone (over OpenSSH) of the served repository, side by side.
    pub(crate) fn clone_both(&self, extra: &[&str]) -> (PathBuf, PathBuf) {
        let ours = self.dest("ours");
        let mut args = vec![ours.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.clone(&args).ok();
        let theirs = self.dest("theirs");
        git_clone_with_openssh(
            &self.url,
            &theirs,
            &self.key,
            PASS,
            &self.known_hosts(),
            extra,
        )
        .ok();
        (ours, theirs)
    }
}

/// Nothing but `expected` in `dir` (no temporary clone folders left behind).
pub(crate) fn only(dir: &Path, expected: &[&str]) {
    let names = Sandbox::ls(dir);
    assert_eq!(names, expected, "left in {}: {names:?}", dir.display());
}

#[test]
fn clone_with_an_encrypted_ed25519_key_equals_git_clone() {
    let s = Setup::new("ed25519");
    let dest = s.dest("ours");
    let out = s.clone(&[dest.to_str().unwrap()]);
    out.ok()
        .never_shows(PASS)
        .stderr_has("Cloned")
        .stderr_has("branch main");
    let theirs = s.dest("theirs");
    git_clone_with_openssh(&s.url, &theirs, &s.key, PASS, &s.known_hosts(), &[]).ok();
    let (ours_head, ours_files, ours_fsck) = state(&dest);
    let (their_head, their_files, _) = state(&theirs);
    assert_eq!(ours_head, their_head);
    assert_eq!(ours_files, their_files);
    assert!(
        ours_files.contains("100755") && ours_files.contains("src/nested/file2.txt"),
        "{ours_files}"
    );
    assert!(ours_fsck, "git fsck found problems in keyclone's clone");
    assert_eq!(
        git(&dest, &["status", "--porcelain"]).stdout,
        "",
        "git sees changes in keyclone's checkout"
    );
    assert_eq!(
        git(&dest, &["remote", "get-url", "origin"]).stdout.trim(),
        s.url
    );
    only(s.sb.root.path(), &["home", "ours", "pass", "theirs"]);
}

#[test]
fn a_large_tree_with_nested_attributes_links_and_modes_equals_git_clone() {
    let s = Setup::new("ed25519");
    let work = s.work("large-work");
    for d in 0..25 {
        for sub in 0..4 {
            let dir = work.join(format!("pkg{d}/mod{sub}"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..30 {
                std::fs::write(
                    dir.join(format!("f{f}.txt")),
                    format!("package {d} module {sub} file {f}\n"),
                )
                .unwrap();
            }
        }
    }
    std::fs::write(work.join("pkg3/.gitattributes"), "*.txt text eol=crlf\n").unwrap();
    std::os::unix::fs::symlink("pkg1/mod1/f1.txt", work.join("link-to-f1")).unwrap();
    std::fs::set_permissions(
        work.join("pkg2/mod0/f0.txt"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    s.push(&work, "large tree");

    let (dest, theirs) = s.clone_both(&[]);
    let (oh, of, ofsck) = state(&dest);
    let (th, tf, _) = state(&theirs);
    assert_eq!((oh, of), (th, tf));
    assert!(ofsck);
    assert_eq!(
        git(&dest, &["status", "--porcelain"]).stdout,
        "",
        "git sees changes in keyclone's checkout"
    );
    let diff = std::process::Command::new("diff")
        .args(["-r", "-q", "--no-dereference", "--exclude=.git"])
        .arg(&dest)
        .arg(&theirs)
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "work trees differ:\n{}",
        String::from_utf8_lossy(&diff.stdout)
    );
    assert!(
        std::fs::read(dest.join("pkg3/mod2/f7.txt"))
            .unwrap()
            .ends_with(b"\r\n")
    );
    assert_eq!(
        std::fs::read_link(dest.join("link-to-f1")).unwrap(),
        Path::new("pkg1/mod1/f1.txt")
    );
    assert_eq!(
        crate::support::mode(&dest.join("pkg2/mod0/f0.txt")) & 0o111,
        0o111
    );
}

#[test]
fn gitattributes_conversions_match_git() {
    let s = Setup::new("ed25519");
    let work = s.work("attr-work");
    std::fs::write(
        work.join(".gitattributes"),
        "*.txt text eol=crlf\n*.bin binary\n",
    )
    .unwrap();
    std::fs::write(work.join("notes.txt"), "one\ntwo\n").unwrap();
    s.push(&work, "attributes");

    let (dest, theirs) = s.clone_both(&[]);
    assert_eq!(
        std::fs::read(dest.join("notes.txt")).unwrap(),
        b"one\r\ntwo\r\n"
    );
    for f in ["notes.txt", "src/nested/file1.txt", "README.md"] {
        assert_eq!(
            std::fs::read(dest.join(f)).unwrap(),
            std::fs::read(theirs.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(git(&dest, &["status", "--porcelain"]).stdout, "");
}

#[test]
fn clone_with_an_rsa_key_works_too() {
    let s = Setup::new("rsa");
    let dest = s.dest("rsa-clone");
    s.clone(&[dest.to_str().unwrap()]).ok();
    assert_eq!(
        state(&dest).0,
        git(&s.bare, &["rev-parse", "main"]).stdout.trim()
    );
}

#[test]
fn default_destination_is_the_per_user_folder_and_json_summarises() {
    let s = Setup::new("ed25519");
    let out = s.sb.run(&[
        "--json",
        "clone",
        &s.url,
        "--passphrase-file",
        s.pass_file.to_str().unwrap(),
        "--user",
        "ada",
    ]);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let expected = s.sb.home.join("code/Users/ada/project");
    assert_eq!(v["path"].as_str().unwrap(), expected.to_str().unwrap());
    assert_eq!(v["branch"], "main");
    assert_eq!(
        v["head"].as_str().unwrap(),
        git(&s.bare, &["rev-parse", "main"]).stdout.trim()
    );
    assert!(v["bytes"].as_u64().unwrap() > 0);
    assert!(expected.join("README.md").exists());

    // On an Azure ML compute instance the persistent code share is the root.
    std::fs::create_dir_all(s.sb.home.join("cloudfiles/code")).unwrap();
    let out = s.sb.run(&[
        "--json",
        "clone",
        &s.url,
        "--passphrase-file",
        s.pass_file.to_str().unwrap(),
    ]);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v["path"].as_str().unwrap(),
        s.sb.home
            .join("cloudfiles/code/Users/tester/project")
            .to_str()
            .unwrap()
    );
    assert_eq!(v["persistent_share"], true);
}

#[test]
fn wrong_passphrase_fails_before_connecting_and_leaves_nothing() {
    let s = Setup::new("ed25519");
    let wrong = s.sb.secret_file("wrong", "not it");
    let dest = s.dest("d");
    let out = s.sb.run(&[
        "clone",
        &s.url,
        dest.to_str().unwrap(),
        "--passphrase-file",
        wrong.to_str().unwrap(),
    ]);
    out.code(8)
        .stderr_has("does not decrypt")
        .never_shows("not it");
    assert!(!dest.exists());
    only(s.sb.root.path(), &["home", "pass", "wrong"]);
}

#[test]
fn unauthorised_key_says_it_is_not_on_the_account_yet() {
    let s = Setup::new("ed25519");
    let other =
        s.sb.run(&["keygen", "--no-passphrase", "--path", ".ssh/other"]);
    other.ok();
    let dest = s.dest("d");
    let key = s.sb.ssh_dir().join("other");
    let out = s.sb.run(&[
        "clone",
        &s.url,
        dest.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    out.code(8)
        .stderr_has("not on your account yet")
        .stderr_has("keyclone pubkey --key");
    assert!(!dest.exists());
    only(s.sb.root.path(), &["home", "pass"]);
}

#[test]
fn unknown_host_without_a_terminal_names_the_trust_command_and_leaves_nothing() {
    let sshd = Sshd::start();
    let repos = tempfile::tempdir().unwrap();
    let bare = make_repo(repos.path(), "p");
    let sb = Sandbox::new();
    sb.run(&["keygen", "--no-passphrase"]).ok();
    let dest = sb.root.path().join("d");
    let out = sb.run(&["clone", &ssh_url(&sshd, &bare), dest.to_str().unwrap()]);
    out.code(4)
        .stderr_has("keyclone trust")
        .stderr_has(&sshd.fingerprint());
    assert!(!dest.exists());
}

#[test]
fn changed_host_key_is_refused_and_leaves_no_directory() {
    let mut s = Setup::new("ed25519");
    s.sshd.restart_with_new_host_key();
    let dest = s.dest("d");
    s.clone(&[dest.to_str().unwrap()])
        .code(9)
        .stderr_has("CHANGED");
    assert!(!dest.exists());
    only(s.sb.root.path(), &["home", "pass"]);
}

#[test]
fn a_connection_dropped_mid_transfer_leaves_nothing_and_a_second_attempt_succeeds() {
    // The server cuts the pack stream after 3000 bytes while the flag file exists.
    let flag = tempfile::NamedTempFile::new().unwrap();
    let script_dir = tempfile::tempdir().unwrap();
    let script = script_dir.path().join("cut.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ -e '{0}' ]; then sh -c \"$SSH_ORIGINAL_COMMAND\" | dd bs=1 count=3000 2>/dev/null; exit 1; fi\n\
             if [ -e '{0}.stall' ]; then sh -c \"$SSH_ORIGINAL_COMMAND\" | (dd bs=1 count=3000 2>/dev/null; sleep 120); exit 1; fi\n\
             exec sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
            flag.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sshd = Sshd::start_with(
        &["127.0.0.1"],
        &format!("ForceCommand {}\n", script.display()),
    );
    let s = Setup::with_sshd(sshd, "ed25519");
    // Enough incompressible data that the pack is larger than the cut.
    let work = s.work("big-work");
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(work.join("blob.bin"), noise).unwrap();
    s.push(&work, "big");

    let dest = s.dest("d");
    let out = s.clone(&[dest.to_str().unwrap()]);
    out.code(10)
        .stderr_has("connection")
        .stderr_has("run the same command again");
    assert!(!dest.exists());
    only(s.sb.root.path(), &["home", "pass"]);

    // A server that stops sending without closing: the stall timeout ends the wait.
    let stall = PathBuf::from(format!("{}.stall", flag.path().display()));
    std::fs::write(&stall, "").unwrap();
    let flag_path = flag.path().to_owned();
    drop(flag);
    assert!(!flag_path.exists());
    // The server would hold the connection for 120 s: a clone that ends well before that
    // was ended by its own stall timer.
    let started = std::time::Instant::now();
    s.clone(&[dest.to_str().unwrap(), "--stall-timeout", "2"])
        .code(10)
        .stderr_has("run the same command again");
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(60),
        "the stall timeout did not fire: the clone waited {took:?}"
    );
    assert!(!dest.exists());
    only(s.sb.root.path(), &["home", "pass"]);
    std::fs::remove_file(&stall).unwrap();

    s.clone(&[dest.to_str().unwrap()]).ok();
    assert!(dest.join("blob.bin").exists());
}

#[test]
fn shallow_and_branch_clones() {
    let s = Setup::new("ed25519");
    let shallow = s.dest("shallow");
    s.clone(&[shallow.to_str().unwrap(), "--depth", "1"]).ok();
    assert_eq!(
        git(&shallow, &["rev-list", "--count", "HEAD"])
            .stdout
            .trim(),
        "1"
    );
    assert!(shallow.join(".git/shallow").exists());

    let dev = s.dest("dev");
    s.clone(&[dev.to_str().unwrap(), "--branch", "dev"])
        .ok()
        .stderr_has("branch dev");
    assert!(dev.join("DEV.md").exists());
    assert_eq!(
        git(&dev, &["rev-parse", "HEAD"]).stdout,
        git(&s.bare, &["rev-parse", "dev"]).stdout
    );

    let none = s.dest("none");
    s.clone(&[none.to_str().unwrap(), "--branch", "no-such-branch"])
        .code(2);
    assert!(!none.exists());
}

#[test]
fn a_submodule_over_ssh_is_cloned_with_the_same_key_and_checks() {
    let s = Setup::new("ed25519");
    let lib = make_repo(s.repos.path(), "lib");
    let lib_head = git(&lib, &["rev-parse", "main"]).stdout.trim().to_owned();
    let work = s.work("super-work");
    std::fs::write(
        work.join(".gitmodules"),
        format!(
            "[submodule \"lib\"]\n\tpath = lib\n\turl = {}\n",
            ssh_url(&s.sshd, &lib)
        ),
    )
    .unwrap();
    git(
        &work,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{lib_head},lib"),
        ],
    )
    .ok();
    git(&work, &["add", ".gitmodules"]).ok();
    git(&work, &["commit", "-q", "-m", "add lib"]).ok();
    git(&work, &["push", "-q", "origin", "main"]).ok();

    let dest = s.dest("with-sub");
    s.clone(&[dest.to_str().unwrap(), "--recurse-submodules"])
        .ok()
        .stderr_has("submodules: lib");
    assert!(dest.join("lib/README.md").exists());
    assert_eq!(
        git(&dest.join("lib"), &["rev-parse", "HEAD"]).stdout.trim(),
        lib_head
    );
    assert_eq!(git(&dest, &["submodule", "status"]).code, 0);
}

#[test]
fn names_that_escape_the_root_are_refused() {
    let s = Setup::new("ed25519");
    for user in ["..", "../x", "a/b", ".hidden"] {
        s.clone(&["--user", user])
            .code(2)
            .stderr_has("cannot be used as a folder name");
    }
    assert!(!s.sb.home.join("code").exists());
}

#[test]
fn an_existing_non_empty_destination_is_refused() {
    let s = Setup::new("ed25519");
    let dest = s.dest("busy");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("mine.txt"), "keep").unwrap();
    s.clone(&[dest.to_str().unwrap()])
        .code(5)
        .stderr_has("not empty");
    assert_eq!(
        std::fs::read_to_string(dest.join("mine.txt")).unwrap(),
        "keep"
    );
    // An empty folder is fine.
    let empty = s.dest("empty");
    std::fs::create_dir_all(&empty).unwrap();
    s.clone(&[empty.to_str().unwrap()]).ok();
    assert!(empty.join("README.md").exists());
}

#[test]
fn a_destination_that_is_a_link_is_cloned_through_as_git_does_or_refused_when_dangling() {
    let s = Setup::new("ed25519");
    // A link to an empty folder: the clone lands in the folder (git follows the link too),
    // and the link stays a link.
    let real = s.dest("real");
    std::fs::create_dir_all(&real).unwrap();
    let link = s.dest("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    s.clone(&[link.to_str().unwrap()]).ok();
    assert!(real.join("README.md").exists());
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // A dangling link: refused before anything is fetched, the link left as it was.
    let dangling = s.dest("dangling");
    std::os::unix::fs::symlink(s.dest("nowhere"), &dangling).unwrap();
    s.clone(&[dangling.to_str().unwrap()])
        .code(5)
        .stderr_has("is a symbolic link to nothing");
    assert!(!s.dest("nowhere").exists());
    assert!(
        std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn key_problems_are_clear() {
    let s = Setup::new("ed25519");
    s.clone(&["--key", "/nonexistent/id_x"])
        .code(6)
        .stderr_has("/nonexistent/id_x")
        .stderr_has("--key");
    std::fs::set_permissions(&s.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let dest = s.dest("d");
    s.clone(&[dest.to_str().unwrap()])
        .ok()
        .stderr_has("UNPROTECTED PRIVATE KEY FILE")
        .stderr_has("chmod 600");
}

#[test]
fn malformed_urls_are_refused() {
    let sb = Sandbox::new();
    for (url, needle) in [
        ("github.com:", "not a Git remote URL"),
        ("ssh://git@host:99999/r.git", "not a Git remote URL"),
        ("git@host:my repo.git", "spaces"),
        ("file:///srv/r.git", "local path"),
        ("ext::sh -c id", "ext::"),
        ("https://git.unknown.example/o/r", "Clone button"),
    ] {
        sb.run(&["clone", url]).code(2).stderr_has(needle);
    }
}

#[test]
fn destination_on_a_read_only_path_is_an_error() {
    use std::os::unix::process::CommandExt;
    let s = Setup::new("ed25519");
    let locked = s.sb.root.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let dest = locked.join("d");
    let mut cmd = s.sb.cmd();
    cmd.args([
        "clone",
        &s.url,
        dest.to_str().unwrap(),
        "--passphrase-file",
        s.pass_file.to_str().unwrap(),
    ]);
    if nix::unistd::Uid::effective().is_root() {
        // Root ignores permission bits: run keyclone as `nobody`, who owns the sandbox HOME.
        let nobody = nix::unistd::User::from_name("nobody")
            .unwrap()
            .expect("user `nobody` exists");
        let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
        for entry in walk(&s.sb.home).into_iter().chain([s.pass_file.clone()]) {
            std::os::unix::fs::chown(&entry, Some(uid), Some(gid)).unwrap();
        }
        cmd.uid(uid).gid(gid);
    }
    let out = s.sb.run_cmd(cmd);
    out.code(7)
        .stderr_has("permission denied")
        .stderr_has(locked.to_str().unwrap());
    assert!(!dest.exists());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_owned()];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn test_lists_the_same_refs_as_git_ls_remote() {
    let s = Setup::new("ed25519");
    let out = s.sb.run(&[
        "test",
        &s.url,
        "--passphrase-file",
        s.pass_file.to_str().unwrap(),
    ]);
    out.ok().stderr_has("accepted").stderr_has("keyclone clone");
    let mut ours: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    let mut theirs: Vec<String> = git(&s.bare, &["ls-remote", "."])
        .stdout
        .lines()
        .map(str::to_owned)
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
}

#[test]
fn test_of_a_host_checks_the_login() {
    let s = Setup::new("ed25519");
    let target = format!("127.0.0.1:{}", s.sshd.port);
    s.sb.run(&[
        "test",
        &target,
        "--user",
        &s.sshd.user,
        "--passphrase-file",
        s.pass_file.to_str().unwrap(),
    ])
    .ok()
    .stderr_has("accepted");
    s.sb.run(&["keygen", "--no-passphrase", "--path", ".ssh/other"])
        .ok();
    let other = s.sb.ssh_dir().join("other");
    s.sb.run(&[
        "test",
        &target,
        "--user",
        &s.sshd.user,
        "--key",
        other.to_str().unwrap(),
    ])
    .code(8)
    .stderr_has("not on your account yet");
}

#[test]
fn a_key_held_by_ssh_agent_needs_no_passphrase() {
    let s = Setup::new("ed25519");
    let add_bin = crate::support::require("ssh-add", "openssh-client");
    let agent = crate::support::agent::Agent::start();
    let sock = agent.sock.clone();
    let askpass = s.sb.root.path().join("askpass.sh");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\ncat '{}'\n", s.pass_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let added = std::process::Command::new(add_bin)
        .env("SSH_AUTH_SOCK", &sock)
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .arg(&s.key)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "ssh-add: {}",
        String::from_utf8_lossy(&added.stderr)
    );

    let dest = s.dest("via-agent");
    let mut cmd = s.sb.cmd();
    cmd.args(["test", &s.url]).env("SSH_AUTH_SOCK", &sock);
    s.sb.run_cmd(cmd).ok().stderr_has("through ssh-agent");
    let mut cmd = s.sb.cmd();
    cmd.args(["clone", &s.url, dest.to_str().unwrap(), "--non-interactive"])
        .env("SSH_AUTH_SOCK", &sock);
    s.sb.run_cmd(cmd).ok();
    assert!(dest.join("README.md").exists());
    drop(agent);
}

#[test]
fn ctrl_c_mid_clone_exits_130_and_leaves_no_directory() {
    use rexpect::process::WaitStatus;
    let script_dir = tempfile::tempdir().unwrap();
    let script = script_dir.path().join("slow.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nsleep 30\nexec sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sshd = Sshd::start_with(
        &["127.0.0.1"],
        &format!("ForceCommand {}\n", script.display()),
    );
    let s = Setup::with_sshd(sshd, "ed25519");
    let dest = s.dest("d");
    let mut cmd = s.sb.cmd();
    cmd.args([
        "clone",
        &s.url,
        dest.to_str().unwrap(),
        "--passphrase-file",
        s.pass_file.to_str().unwrap(),
    ])
    .stdin(std::process::Stdio::inherit())
    .stdout(std::process::Stdio::inherit())
    .stderr(std::process::Stdio::inherit());
    let mut p = rexpect::session::spawn_command(cmd, Some(20_000)).unwrap();
    p.exp_string("Cloning").unwrap();
    crate::support::wait_until(
        "the clone is under way (a `.keyclone-clone-*` folder)",
        std::time::Duration::from_secs(15),
        || {
            Sandbox::ls(s.sb.root.path())
                .iter()
                .any(|n| n.starts_with(".keyclone-clone-"))
        },
    );
    p.send_control('c').unwrap();
    let rest = p.exp_eof().unwrap();
    match p.process().wait().unwrap() {
        WaitStatus::Exited(_, code) => assert_eq!(code, 130, "{rest}"),
        other => panic!("{other:?}"),
    }
    assert!(!dest.exists());
    only(s.sb.root.path(), &["home", "pass"]);
}
