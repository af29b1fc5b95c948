//! Hostile input, as an attacker writes it: repositories whose trees break git's path rules
//! (crafted with raw objects, served by the real sshd), URLs and config values that try to
//! inject into `~/.ssh/config` or known_hosts. git and OpenSSH are the oracles: where they
//! refuse, keyclone refuses too, with exit code 11 (or the documented code), the path and the
//! rule, and nothing written at the destination, beside it or outside.

use std::path::{Path, PathBuf};

use crate::clone::{PASS, Setup, only};
use crate::support::craft::{Craft, EXEC, FILE, GITLINK, LINK, TREE};
use crate::support::git::git_clone_with_openssh;

/// A name no other test or run uses, for files that must never appear.
fn canary(s: &Setup, what: &str) -> String {
    let root = s.sb.root.path().file_name().unwrap().to_string_lossy();
    format!("keyclone-canary-{root}-{what}")
}

/// What a refused clone must leave: nothing new in the sandbox, none of the `absent` paths.
struct Refused<'a> {
    /// Words of the rule that keyclone names.
    rule: &'a str,
    /// The path keyclone names.
    path: &'a str,
    /// What git says when it refuses the same tree (None: git on Linux checks it out; keyclone
    /// is stricter there on purpose, see SECURITY.md).
    git_says: Option<&'a str>,
    absent: Vec<PathBuf>,
    extra: &'a [&'a str],
}

/// A folder of 2,100 files, so the tree is as large as a real project's (keyclone once took a
/// hand-written checkout for trees over 2,000 files, and that path wrote what libgit2 refuses).
fn padding(c: &Craft) -> String {
    let blob = c.blob(b"padding\n");
    let names: Vec<String> = (0..2100).map(|i| format!("f{i:04}")).collect();
    let entries: Vec<(&str, &[u8], &str)> = names
        .iter()
        .map(|n| (FILE, n.as_bytes(), blob.as_str()))
        .collect();
    c.tree(&entries)
}

fn assert_refused(s: &Setup, case: &Refused<'_>) {
    let dest = s.dest("ours");
    let mut args = vec![dest.to_str().unwrap()];
    args.extend_from_slice(case.extra);
    let out = s.clone(&args);
    out.code(11)
        .stderr_has(case.path)
        .stderr_has(case.rule)
        .stderr_has("nothing was written");
    only(s.sb.root.path(), &["home", "pass"]);
    for p in &case.absent {
        assert!(
            std::fs::symlink_metadata(p).is_err(),
            "`{}` was written",
            p.display()
        );
    }
    if let Some(says) = case.git_says {
        let theirs = s.dest("theirs");
        let git =
            git_clone_with_openssh(&s.url, &theirs, &s.key, PASS, &s.known_hosts(), case.extra);
        assert!(
            git.code != 0 && git.stderr.contains(says),
            "git did not refuse ({}): {}",
            git.code,
            git.stderr
        );
        for p in &case.absent {
            assert!(
                std::fs::symlink_metadata(p).is_err(),
                "git wrote `{}`",
                p.display()
            );
        }
        let _ = std::fs::remove_dir_all(&theirs);
    }
}

#[test]
fn trees_with_names_that_leave_the_clone_are_refused_like_git() {
    let s = Setup::new("ed25519");
    let c = Craft::new(&s.bare);
    let data = c.blob(b"planted\n");
    let readme = c.blob(b"# readme\n");
    let pad = padding(&c);

    // `..` as a tree name, twice: root/../../NAME lands in the sandbox's parent.
    let name = canary(&s, "dotdot");
    let leaf = c.tree(&[(FILE, name.as_bytes(), &data)]);
    let up = c.tree(&[(TREE, b"..", &leaf)]);
    let root = c.tree(&[
        (FILE, b"README.md", &readme),
        (TREE, b"..", &up),
        (TREE, b"pad", &pad),
    ]);
    c.publish(&root);
    let parent = s.sb.root.path().parent().unwrap().to_path_buf();
    assert_refused(
        &s,
        &Refused {
            rule: "`.` or `..`",
            path: "`..`",
            git_says: Some("invalid path"),
            absent: vec![parent.join(&name), s.sb.root.path().join(&name)],
            extra: &[],
        },
    );

    // One name holding slashes: `../../x`, `d/../../../x`, an absolute name, `.git/hooks/...`.
    refuses_names_with_slashes(
        &s,
        (EXEC, &data),
        &[
            ("slashes", format!("../../{}", canary(&s, "slashes"))),
            ("deep", format!("d/../../../{}", canary(&s, "deep"))),
            ("absolute", format!("/tmp/{}", canary(&s, "absolute"))),
            ("hook-name", ".git/hooks/post-checkout".to_owned()),
        ],
    );

    // `.` as a tree name, then a path through it.
    let name = canary(&s, "dot");
    let leaf = c.tree(&[(FILE, name.as_bytes(), &data)]);
    let root = c.tree(&[(FILE, b"README.md", &readme), (TREE, b".", &leaf)]);
    c.publish(&root);
    assert_refused(
        &s,
        &Refused {
            rule: "`.` or `..`",
            path: "`.`",
            git_says: Some("invalid path"),
            absent: vec![],
            extra: &[],
        },
    );
}

#[test]
fn every_spelling_of_dot_git_is_refused_like_git_and_no_hook_lands() {
    let s = Setup::new("ed25519");
    let c = Craft::new(&s.bare);
    let readme = c.blob(b"# readme\n");
    let hook_ran = Path::new("/tmp").join(canary(&s, "hook-ran"));
    let hook = c.blob(format!("#!/bin/sh\ntouch {}\n", hook_ran.display()).as_bytes());
    let hooks = c.tree(&[(EXEC, b"post-checkout", &hook)]);
    let dotgit = c.tree(&[(TREE, b"hooks", &hooks)]);
    let pad = padding(&c);
    for spelling in [
        ".git",
        ".GIT",
        ".Git",
        ".git.",
        ".git ",
        "git~1",
        ".git::$INDEX_ALLOCATION",
    ] {
        let root = c.tree(&[
            (FILE, b"README.md", &readme),
            (TREE, spelling.as_bytes(), &dotgit),
            (TREE, b"pad", &pad),
        ]);
        c.publish(&root);
        assert_refused(
            &s,
            &Refused {
                rule: "a spelling of `.git`",
                path: &format!("`{spelling}`"),
                git_says: Some("invalid path"),
                absent: vec![hook_ran.clone()],
                extra: &[],
            },
        );
    }
}

#[test]
fn paths_through_a_link_and_links_that_fold_onto_folders_are_refused() {
    let s = Setup::new("ed25519");
    let c = Craft::new(&s.bare);
    let readme = c.blob(b"# readme\n");
    let data = c.blob(b"planted\n");
    let outside = tempfile::tempdir().unwrap();
    let target = c.blob(outside.path().to_str().unwrap().as_bytes());
    let attrs = c.blob(b"* text\n");
    let evil = c.tree(&[(FILE, b"evil", &data)]);

    // `s/l` a link to outside and `s/l/evil` a file through it (the same name twice in `s`).
    let sdir = c.tree(&[
        (FILE, b".gitattributes", &attrs),
        (LINK, b"l", &target),
        (TREE, b"l", &evil),
    ]);
    let pad = padding(&c);
    let root = c.tree(&[
        (FILE, b"README.md", &readme),
        (TREE, b"pad", &pad),
        (TREE, b"s", &sdir),
    ]);
    c.publish(&root);
    assert_refused(
        &s,
        &Refused {
            rule: "stands twice",
            path: "`s/l`",
            git_says: None,
            absent: vec![outside.path().join("evil")],
            extra: &[],
        },
    );

    // `L` a link and `l/evil`: one folder on a case-insensitive share (Azure ML's code share).
    let root = c.tree(&[
        (LINK, b"L", &target),
        (FILE, b"README.md", &readme),
        (TREE, b"l", &evil),
        (TREE, b"pad", &pad),
    ]);
    c.publish(&root);
    assert_refused(
        &s,
        &Refused {
            rule: "only in case",
            path: "`l`",
            git_says: None,
            absent: vec![outside.path().join("evil")],
            extra: &[],
        },
    );
}

#[test]
fn a_symlinked_gitmodules_and_gitlinks_that_leave_the_clone_are_refused() {
    let s = Setup::new("ed25519");
    let c = Craft::new(&s.bare);
    let readme = c.blob(b"# readme\n");
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        secret.path(),
        "[submodule \"x\"]\n\tpath = x\n\turl = ssh://git@127.0.0.1:1/never.git\n",
    )
    .unwrap();
    let target = c.blob(secret.path().to_str().unwrap().as_bytes());
    let root = c.tree(&[
        (LINK, b".gitmodules", &target),
        (FILE, b"README.md", &readme),
    ]);
    c.publish(&root);
    assert_refused(
        &s,
        &Refused {
            rule: "`.gitmodules` as a symbolic link",
            path: "`.gitmodules`",
            git_says: Some("invalid path"),
            absent: vec![],
            extra: &["--recurse-submodules"],
        },
    );

    // Gitlink entries named `../../x` and `/abs/x`.
    let any_commit = c.publish(&c.tree(&[(FILE, b"README.md", &readme)]));
    refuses_names_with_slashes(
        &s,
        (GITLINK, &any_commit),
        &[
            ("gitlink-up", format!("../../{}", canary(&s, "gitlink-up"))),
            ("gitlink-abs", format!("/tmp/{}", canary(&s, "gitlink-abs"))),
        ],
    );
}

/// Serves, for each `(label, name)`, a tree holding one entry of `mode` and `id` under a name
/// with slashes (beside a README and the padding), and asserts the clone is refused like git's
/// and that the canary `label` appeared neither beside the sandbox nor in `/tmp`.
fn refuses_names_with_slashes(s: &Setup, (mode, id): (&str, &str), names: &[(&str, String)]) {
    let c = Craft::new(&s.bare);
    let readme = c.blob(b"# readme\n");
    let pad = padding(&c);
    let parent = s.sb.root.path().parent().unwrap();
    for (label, entry) in names {
        let root = c.tree(&[
            (FILE, b"README.md", &readme),
            (mode, entry.as_bytes(), id),
            (TREE, b"pad", &pad),
        ]);
        c.publish(&root);
        assert_refused(
            s,
            &Refused {
                rule: "holding `/`",
                path: entry,
                git_says: Some("invalid path"),
                absent: vec![
                    parent.join(canary(s, label)),
                    Path::new("/tmp").join(canary(s, label)),
                ],
                extra: &[],
            },
        );
    }
}

/// Everything under `dir`, recursively (empty when it does not exist).
fn tree_of(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// `keyclone init` as a provisioning script runs it: every answer a flag, first use accepted.
fn init_unattended(w: &crate::init::World, url: &str, extra: &[&str]) -> crate::support::Out {
    let mut args = vec![
        "--non-interactive",
        "--repo",
        url,
        "--yes",
        "--accept-new",
        "--passphrase-file",
        w.pass_file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    w.init(&args, None)
}

#[test]
fn a_url_user_with_encoded_newlines_writes_no_ssh_config() {
    let w = crate::init::World::new();
    let ran = Path::new("/tmp").join(format!(
        "keyclone-canary-{}-proxycommand",
        w.sb.root.path().file_name().unwrap().to_string_lossy()
    ));
    let before = tree_of(&w.sb.home);
    for user in [
        format!(
            "git%0aHost%20*%0a%20%20ProxyCommand%20touch%20{}",
            ran.display().to_string().replace('/', "%2f")
        ),
        format!(
            "git%0aMatch%20exec%20%22touch%20{}%22",
            ran.display().to_string().replace('/', "%2f")
        ),
        "git%20x".to_owned(),
        "-oProxyCommand=x".to_owned(),
    ] {
        let url = format!("ssh://{user}@127.0.0.1:{}{}", w.sshd.port, w.bare.display());
        let out = init_unattended(&w, &url, &[]);
        out.code(2).stderr_has("is not an SSH user name");
        assert!(
            !out.stderr.lines().any(|l| {
                let l = l.trim_start();
                l.starts_with("ProxyCommand") || l.starts_with("Host *") || l.starts_with("Match")
            }),
            "a decoded newline reached the message unescaped: {}",
            out.stderr
        );
        assert!(!w.ssh_config().exists(), "~/.ssh/config was written");
        assert_eq!(tree_of(&w.sb.home), before, "init wrote files");
    }
    assert!(std::fs::symlink_metadata(&ran).is_err());
}

#[test]
fn hosts_with_commas_or_patterns_never_reach_known_hosts() {
    let w = crate::init::World::new();
    let before = tree_of(&w.sb.home);
    for host in ["x,127.0.0.1", "127.0.0.?", "127.0.0.*", "!x", "localhost."] {
        let url = format!("git@{host}:{}", w.bare.display());
        let out = init_unattended(&w, &url, &[]);
        assert_eq!(out.code, 2, "{host}: {}", out.stderr);
        assert!(out.stderr.contains("is not a host name"), "{}", out.stderr);
        let out = w.sb.run(&["trust", host, "--accept-new"]);
        assert_eq!(out.code, 2, "trust {host}: {}", out.stderr);
        assert_eq!(tree_of(&w.sb.home), before, "{host}: files were written");
    }
    assert!(!w.sb.ssh_dir().join("known_hosts").exists());
}

#[test]
fn a_config_entry_cannot_claim_a_pinned_host_without_pins() {
    let sb = crate::support::Sandbox::new();
    let cfg = sb.root.path().join("config.toml");
    // With or without fingerprints of its own: a config handed around by a team could
    // otherwise pin an attacker's key for github.com (found by the attack review).
    let own_pin = "fingerprints = [\"SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU\"]\n";
    for (field, value, pins) in [
        ("host", "github.com", ""),
        ("host", "github.com", own_pin),
        ("host", "ssh.github.com", own_pin),
        ("web-host", "github.com", ""),
        ("fallback-host", "gitlab.com", own_pin),
        ("host", "ssh.dev.azure.com", ""),
        ("host", "bitbucket.org", own_pin),
    ] {
        let mut text = format!("[provider.corp]\nkind = \"gitlab\"\n{pins}");
        if field != "host" {
            text.push_str("host = \"git.corp.example\"\nfallback-port = 443\n");
        }
        text.push_str(&format!("{field} = \"{value}\"\n"));
        std::fs::write(&cfg, &text).unwrap();
        let out = sb.run(&[
            "--config",
            cfg.to_str().unwrap(),
            "trust",
            "github.com",
            "--accept-new",
        ]);
        assert_eq!(out.code, 3, "{field} = {value}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("claims `{value}`")),
            "{}",
            out.stderr
        );
    }
    assert!(!sb.ssh_dir().join("known_hosts").exists());
    // Names in the config follow the same rule as names in URLs.
    for bad in [
        "host = \"x,github.com\"",
        "host = \"git.corp\\nHost *\"",
        "host = \"git.corp\"\nuser = \"git\\nProxyCommand x\"",
        "host = \"git.corp\"\nweb-host = \"a b\"",
        "host = \"github.com.\"",
        "host = \"git.corp\"\nname = \"Evil\\u001b]0;pwned\\u0007\\nFAKE LINE\"",
        "host = \"git.corp\"\nupload-url = \"https://x.example/\\u001b[2J\"",
        "host = \"git.corp\"\nname = \"Corp\\u202egnp.exe\"",
    ] {
        std::fs::write(&cfg, format!("[provider.corp]\nkind = \"plain\"\n{bad}\n")).unwrap();
        let out = sb.run(&[
            "--config",
            cfg.to_str().unwrap(),
            "trust",
            "github.com",
            "--show",
        ]);
        assert_eq!(out.code, 3, "{bad}: {}", out.stderr);
    }
}

/// Serves a tree with this `.gitmodules` and a gitlink `sub` to a commit of the served
/// repository itself (kept reachable on `refs/heads/inner`), so the submodule can be fetched.
fn publish_with_submodule(s: &Setup, gitmodules: &str) {
    let c = Craft::new(&s.bare);
    let readme = c.blob(b"# readme\n");
    let inner = c.publish(&c.tree(&[(FILE, b"README.md", &readme)]));
    c.branch("inner", &inner);
    let gitmodules = c.blob(gitmodules.as_bytes());
    let root = c.tree(&[
        (FILE, b".gitmodules", &gitmodules),
        (FILE, b"README.md", &readme),
        (GITLINK, b"sub", &inner),
    ]);
    c.publish(&root);
}

#[test]
fn a_submodule_name_that_leaves_git_modules_is_refused() {
    let s = Setup::new("ed25519");
    let evil = canary(&s, "modules");
    publish_with_submodule(
        &s,
        &format!(
            "[submodule \"../../../{evil}\"]\n\tpath = sub\n\turl = {}\n",
            s.url
        ),
    );
    let dest = s.dest("ours");
    let out = s.clone(&[dest.to_str().unwrap(), "--recurse-submodules"]);
    let parent = s.sb.root.path().parent().unwrap();
    assert!(
        std::fs::symlink_metadata(parent.join(&evil)).is_err()
            && std::fs::symlink_metadata(s.sb.root.path().join(&evil)).is_err(),
        "the submodule's git folder was written outside"
    );
    // libgit2 drops the entry as git does ("ignoring suspicious submodule name"), so the
    // gitlink has no URL; keyclone refuses the clone rather than leave a half-made one.
    out.code(11).stderr_has("leaves its folder");
    only(s.sb.root.path(), &["home", "pass"]);
    let theirs = s.dest("theirs");
    let git = git_clone_with_openssh(
        &s.url,
        &theirs,
        &s.key,
        PASS,
        &s.known_hosts(),
        &["--recurse-submodules"],
    );
    assert!(
        git.stderr.contains("suspicious submodule name") || git.code != 0,
        "git accepted the name: {}",
        git.stderr
    );
    assert!(std::fs::symlink_metadata(parent.join(&evil)).is_err());
}

#[test]
fn a_host_key_swapped_between_the_probe_and_the_transfer_is_refused() {
    use crate::support::switch::Switch;
    use std::sync::atomic::Ordering;
    let s = Setup::new("ed25519");
    // A second server with another host key, serving the same repositories to the same key.
    let other = crate::support::sshd::Sshd::start();
    other.authorize(&std::fs::read_to_string(format!("{}.pub", s.key.display())).unwrap());
    // Connection 1: `keyclone trust`; 2: clone's own approval probe; 3 on: libgit2 -> other key.
    let sw = Switch::start(s.sshd.port, 2, other.port);
    s.sb.run(&[
        "trust",
        &format!("127.0.0.1:{}", sw.port),
        "--fingerprint",
        &s.sshd.fingerprint(),
    ])
    .ok();
    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        s.sshd.user,
        sw.port,
        s.bare.display()
    );
    let dest = s.dest("ours");
    let out = s.sb.run(&[
        "clone",
        &url,
        dest.to_str().unwrap(),
        "--passphrase-file",
        s.pass_file.to_str().unwrap(),
    ]);
    out.code(9).stderr_has(&other.fingerprint());
    assert_eq!(
        sw.accepted.load(Ordering::SeqCst),
        3,
        "the refusal must come from libgit2's connection (the third): {}",
        out.stderr
    );
    only(s.sb.root.path(), &["home", "pass"]);
    let kh = std::fs::read_to_string(s.known_hosts()).unwrap();
    assert!(
        !kh.contains(other.known_hosts_line().split_whitespace().nth(2).unwrap()),
        "the swapped key was recorded"
    );
}

#[test]
fn a_trailing_dot_does_not_take_a_host_out_of_its_pins() {
    let sb = crate::support::Sandbox::new();
    for url in [
        "git@github.com.:o/r.git",
        "ssh://git@GITHUB.COM.:22/o/r.git",
        "git@gitlab.com.:g/p.git",
    ] {
        let out = sb.run(&["clone", url, "--non-interactive"]);
        assert_eq!(out.code, 2, "{url}: {}", out.stderr);
        assert!(out.stderr.contains("ends with `.`"), "{}", out.stderr);
    }
    assert!(!sb.ssh_dir().join("known_hosts").exists());
}

#[test]
fn paths_that_openssh_would_read_differently_never_reach_the_ssh_config() {
    let w = crate::init::World::new();
    for name in ["id_o'k", "id_a\\b", "id_${HOME}", "id_%d"] {
        let key = w.sb.ssh_dir().join(name);
        let url = w.port_url();
        let out = init_unattended(
            &w,
            &url,
            &[
                "--no-clone",
                "--cache",
                "none",
                "--key",
                key.to_str().unwrap(),
            ],
        );
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("cannot be written into `~/.ssh/config`"),
            "{}",
            out.stderr
        );
        assert!(!w.ssh_config().exists());
    }
}

#[test]
fn a_stale_gitmodules_entry_without_a_gitlink_is_ignored_as_git_does() {
    let s = Setup::new("ed25519");
    publish_with_submodule(
        &s,
        &format!(
            "[submodule \"real\"]\n\tpath = sub\n\turl = {0}\n[submodule \"old\"]\n\tpath = removed\n\turl = {0}\n",
            s.url
        ),
    );
    let dest = s.dest("ours");
    s.clone(&[dest.to_str().unwrap(), "--recurse-submodules"])
        .ok();
    assert!(dest.join("sub/README.md").exists());
    assert!(!dest.join("removed").exists());
}
