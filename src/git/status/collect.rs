//! Collect mode's lists: the files inside untracked folders, the staged differences, and
//! the merge of both with the tracked paths the walk found changed.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{Change, Unsupported};

/// The paths found, each once, sorted by path bytes, with what the index holds for the
/// staged ones.
pub(super) fn merge(worktree: Vec<Vec<u8>>, staged: Vec<Change>) -> Vec<Change> {
    let mut all: std::collections::BTreeMap<Vec<u8>, Option<([u8; 20], u32)>> =
        worktree.into_iter().map(|p| (p, None)).collect();
    for c in staged {
        all.insert(c.path, c.staged);
    }
    all.into_iter()
        .map(|(path, staged)| Change { path, staged })
        .collect()
}

/// HEAD vs index, path by path (libgit2's diff of HEAD's tree with the index; asked only
/// when the scan found the index differs from HEAD).
pub(super) fn staged_changes(
    repo: &git2::Repository,
    scope: Option<&str>,
) -> Result<Vec<Change>, Unsupported> {
    let head = repo.head().ok().and_then(|h| h.peel_to_tree().ok());
    let index = repo.index()?;
    let mut o = git2::DiffOptions::new();
    o.include_typechange(true).ignore_submodules(false);
    if let Some(s) = scope {
        o.pathspec(s.trim_end_matches('/'))
            .disable_pathspec_match(true);
    }
    let diff = repo.diff_tree_to_index(head.as_ref(), Some(&index), Some(&mut o))?;
    Ok(diff
        .deltas()
        .map(|d| {
            let (path, id, mode) = match d.status() {
                git2::Delta::Deleted => (d.old_file().path_bytes(), [0u8; 20], 0),
                _ => (
                    d.new_file().path_bytes(),
                    d.new_file().id().as_bytes().try_into().unwrap_or([0u8; 20]),
                    u32::from(d.new_file().mode()),
                ),
            };
            Change {
                path: path.unwrap_or_default().to_vec(),
                staged: Some((id, mode)),
            }
        })
        .collect())
}

/// Every file below an untracked folder that is not ignored, as `git status -uall` lists them
/// (a nested repository as `dir/`, not entered).
pub(super) fn list_unignored(
    repo: &git2::Repository,
    dir: &Path,
    rel: &[u8],
    out: &mut Vec<Vec<u8>>,
) -> Result<(), Unsupported> {
    if dir.join(".git").exists() {
        let mut d = rel.to_vec();
        d.push(b'/');
        out.push(d);
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let mut child = rel.to_vec();
        child.push(b'/');
        child.extend_from_slice(e.file_name().as_bytes());
        let rel_path = Path::new(OsStr::from_bytes(&child));
        if repo.is_path_ignored(rel_path)? {
            continue;
        }
        if e.file_type()?.is_dir() {
            list_unignored(repo, &e.path(), &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

/// Real repositories built with git, for the tests here and the fingerprint's.
#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    pub(crate) fn git(dir: &Path, home: &Path, args: &[&str]) -> Vec<u8> {
        let out = Command::new("git")
            .current_dir(dir)
            .env("HOME", home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .args(["-c", "protocol.file.allow=always"])
            .args(args)
            .output()
            .expect("git runs (install git)");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        out.stdout
    }

    pub(crate) fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    /// A repository with nested folders, an ignore file, a file with a line-ending attribute
    /// and a submodule, committed; and the submodule's source.
    pub(crate) fn base() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().to_path_buf();
        let src = home.join("subsrc");
        std::fs::create_dir_all(&src).unwrap();
        git(&src, &home, &["init", "-q"]);
        write(&src.join("s.txt"), "one\n");
        git(&src, &home, &["add", "."]);
        git(&src, &home, &["commit", "-qm", "one"]);
        write(&src.join("s.txt"), "two\n");
        git(&src, &home, &["commit", "-qam", "two"]);
        let dir = home.join("repo");
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &home, &["init", "-q"]);
        write(&dir.join("a.txt"), "a\n");
        write(&dir.join("src/b.py"), "b\n");
        write(&dir.join("src/deep/c.txt"), "c\n");
        write(&dir.join("t.crlf"), "line\n");
        write(&dir.join(".gitattributes"), "*.crlf text eol=crlf\n");
        write(&dir.join(".gitignore"), "*.log\nignored_dir/\n");
        git(&dir, &home, &["add", "."]);
        git(
            &dir,
            &home,
            &["submodule", "add", "-q", src.to_str().unwrap(), "sub"],
        );
        git(&dir, &home, &["commit", "-qm", "base"]);
        (t, dir)
    }

    fn listed_by_git(dir: &Path, home: &Path) -> BTreeSet<Vec<u8>> {
        let out = git(
            dir,
            home,
            &[
                "-c",
                "status.renames=false",
                "status",
                "--porcelain=v1",
                "-uall",
                "-z",
            ],
        );
        out.split(|&b| b == 0)
            .filter(|e| e.len() > 3)
            .map(|e| e[3..].to_vec())
            .collect()
    }

    #[test]
    fn collect_lists_the_paths_git_status_lists() {
        type Change = fn(&Path, &Path);
        let states: &[(&str, Change)] = &[
            ("modified", |d, _| write(&d.join("a.txt"), "a2\n")),
            ("staged", |d, h| {
                write(&d.join("src/b.py"), "b2\n");
                git(d, h, &["add", "src/b.py"]);
            }),
            ("staged and modified again", |d, h| {
                write(&d.join("src/b.py"), "b2\n");
                git(d, h, &["add", "src/b.py"]);
                write(&d.join("src/b.py"), "b3\n");
            }),
            ("deleted", |d, _| {
                std::fs::remove_file(d.join("src/deep/c.txt")).unwrap()
            }),
            ("folder deleted", |d, _| {
                std::fs::remove_dir_all(d.join("src/deep")).unwrap()
            }),
            ("folder replaced by a file", |d, _| {
                std::fs::remove_dir_all(d.join("src/deep")).unwrap();
                write(&d.join("src/deep"), "now a file\n");
            }),
            ("staged deletion, file kept", |d, h| {
                git(d, h, &["rm", "-q", "--cached", "a.txt"]);
            }),
            ("staged new file", |d, h| {
                write(&d.join("src/n.py"), "n\n");
                git(d, h, &["add", "src/n.py"]);
            }),
            ("untracked file", |d, _| write(&d.join("new.txt"), "u\n")),
            ("untracked folder with files", |d, _| {
                write(&d.join("nu/x.txt"), "x\n");
                write(&d.join("nu/y/z.txt"), "z\n");
                write(&d.join("nu/y/i.log"), "ignored\n");
                write(&d.join("src/deep/more/m.txt"), "m\n");
            }),
            ("ignored files only", |d, _| {
                write(&d.join("x.log"), "i\n");
                write(&d.join("ignored_dir/f.txt"), "i\n");
                write(&d.join("only_ignored/g.log"), "i\n");
            }),
            ("folder replaced by a link to a copy of it", |d, _| {
                write(&d.join("elsewhere/c.txt"), "c\n");
                std::fs::remove_dir_all(d.join("src/deep")).unwrap();
                std::os::unix::fs::symlink("../elsewhere", d.join("src/deep")).unwrap();
            }),
            ("file to symlink", |d, _| {
                std::fs::remove_file(d.join("a.txt")).unwrap();
                std::os::unix::fs::symlink("src/b.py", d.join("a.txt")).unwrap();
            }),
            ("submodule moved", |d, h| {
                git(&d.join("sub"), h, &["checkout", "-q", "HEAD~1"]);
            }),
            ("a converted file touched, not changed", |d, _| {
                let f = std::fs::File::options()
                    .write(true)
                    .open(d.join("t.crlf"))
                    .unwrap();
                f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
                    .unwrap();
                write(&d.join("new.txt"), "u\n");
            }),
            ("a converted file changed", |d, _| {
                write(&d.join("t.crlf"), "other\r\n")
            }),
        ];
        for (name, apply) in states {
            let (t, dir) = base();
            apply(&dir, t.path());
            let want = listed_by_git(&dir, t.path());
            let repo = git2::Repository::open(&dir).unwrap();
            let (dirty, got) = super::super::collect(&repo, None, false)
                .unwrap_or_else(|u| panic!("{name}: unsupported: {}", u.reason));
            let got_paths: BTreeSet<Vec<u8>> = got.iter().map(|c| c.path.clone()).collect();
            let show = |s: &BTreeSet<Vec<u8>>| {
                s.iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect::<Vec<_>>()
            };
            assert_eq!(show(&got_paths), show(&want), "{name}");
            assert_eq!(dirty.dirty, !want.is_empty(), "{name}");
            let sorted: Vec<&Vec<u8>> = got.iter().map(|c| &c.path).collect();
            assert!(
                sorted.windows(2).all(|w| w[0] < w[1]),
                "{name}: sorted, once"
            );
            // The plain scan's answer is the same.
            let plain = super::super::scan(&repo, None, false).unwrap();
            assert_eq!(plain, dirty, "{name}");
        }
    }

    #[test]
    fn staged_paths_carry_the_index_entry() {
        let (t, dir) = base();
        write(&dir.join("src/b.py"), "b2\n");
        git(&dir, t.path(), &["add", "src/b.py"]);
        git(&dir, t.path(), &["rm", "-q", "a.txt"]);
        write(&dir.join("src/b.py"), "b3\n");
        let repo = git2::Repository::open(&dir).unwrap();
        let (_, got) = super::super::collect(&repo, None, false).unwrap();
        let id = String::from_utf8(git(&dir, t.path(), &["rev-parse", ":src/b.py"])).unwrap();
        let want = git2::Oid::from_str(id.trim()).unwrap();
        let b = got.iter().find(|c| c.path == b"src/b.py").unwrap();
        assert_eq!(
            b.staged,
            Some((want.as_bytes().try_into().unwrap(), 0o100644))
        );
        let a = got.iter().find(|c| c.path == b"a.txt").unwrap();
        assert_eq!(a.staged, Some(([0u8; 20], 0)));
        // Within a scope, only the paths below it.
        let (_, scoped) = super::super::collect(&repo, Some("src"), false).unwrap();
        let paths: Vec<&[u8]> = scoped.iter().map(|c| c.path.as_slice()).collect();
        assert_eq!(paths, vec![b"src/b.py".as_slice()]);
    }
}
