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
    for (label, entry) in [
        ("slashes", format!("../../{}", canary(&s, "slashes"))),
        ("deep", format!("d/../../../{}", canary(&s, "deep"))),
        ("absolute", format!("/tmp/{}", canary(&s, "absolute"))),
        ("hook-name", ".git/hooks/post-checkout".to_owned()),
    ] {
        let root = c.tree(&[
            (FILE, b"README.md", &readme),
            (EXEC, entry.as_bytes(), &data),
            (TREE, b"pad", &pad),
        ]);
        c.publish(&root);
        assert_refused(
            &s,
            &Refused {
                rule: "holding `/`",
                path: &entry,
                git_says: Some("invalid path"),
                absent: vec![
                    parent.join(canary(&s, label)),
                    Path::new("/tmp").join(canary(&s, label)),
                ],
                extra: &[],
            },
        );
    }

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
    let pad = padding(&c);
    let any_commit = c.publish(&c.tree(&[(FILE, b"README.md", &readme)]));
    for (label, entry) in [
        ("gitlink-up", format!("../../{}", canary(&s, "gitlink-up"))),
        ("gitlink-abs", format!("/tmp/{}", canary(&s, "gitlink-abs"))),
    ] {
        let root = c.tree(&[
            (FILE, b"README.md", &readme),
            (GITLINK, entry.as_bytes(), &any_commit),
            (TREE, b"pad", &pad),
        ]);
        c.publish(&root);
        assert_refused(
            &s,
            &Refused {
                rule: "holding `/`",
                path: &entry,
                git_says: Some("invalid path"),
                absent: vec![
                    s.sb.root.path().parent().unwrap().join(canary(&s, label)),
                    Path::new("/tmp").join(canary(&s, label)),
                ],
                extra: &[],
            },
        );
    }
}
