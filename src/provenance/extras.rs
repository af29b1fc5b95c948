//! The `provenance.git.*` extras beside describe and the fingerprint: the upstream and how far
//! the commit is from it, HEAD's commit metadata, the superproject when the code is inside a
//! submodule, the submodules, and the shallow/worktree flags. Each is bounded by the deadline.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use git2::Oid;

use super::{Deadline, Provenance};

/// The branch's upstream and ahead/behind. No upstream, no walk (`unpushed=unknown`); the
/// upstream at the commit itself, no walk either; otherwise libgit2's count (which cannot be
/// cancelled) runs in a worker thread and is `unknown` if it does not finish by the deadline.
pub(super) fn upstream(
    repo: &git2::Repository,
    branch: &str,
    commit: Oid,
    deadline: &Deadline,
    p: &mut Provenance,
) {
    let Ok(local) = repo.find_branch(branch, git2::BranchType::Local) else {
        return;
    };
    let up = match local.upstream() {
        Ok(up) => up,
        Err(_) => {
            p.set("provenance.git.unpushed", "unknown");
            p.notes.push("the branch has no upstream: keyclone cannot tell whether the commit is on the remote".into());
            return;
        }
    };
    if let Ok(Some(name)) = up.name() {
        p.set("provenance.git.upstream", name);
    }
    let Some(uid) = up.get().target() else {
        return;
    };
    let counted = if uid == commit {
        Some((0, 0))
    } else {
        ahead_behind(repo.path(), commit, uid, deadline)
    };
    match counted {
        Some((ahead, behind)) => {
            p.set("provenance.git.ahead", ahead.to_string());
            p.set("provenance.git.behind", behind.to_string());
            if ahead > 0 {
                p.set("provenance.git.unpushed", "true");
                p.notes.push(format!(
                    "{ahead} commit(s) are not pushed: the commit may not exist on the remote yet"
                ));
            } else {
                p.set("provenance.git.unpushed", "false");
            }
        }
        None => {
            for k in ["ahead", "behind", "unpushed"] {
                p.set(&format!("provenance.git.{k}"), "unknown");
            }
            p.notes.push(
                "counting the commits between HEAD and its upstream did not finish by the deadline: ahead/behind are unknown".into(),
            );
        }
    }
}

fn ahead_behind(
    git_dir: &Path,
    local: Oid,
    up: Oid,
    deadline: &Deadline,
) -> Option<(usize, usize)> {
    if deadline.passed() {
        return None;
    }
    let (tx, rx) = mpsc::channel();
    let git_dir = git_dir.to_owned();
    std::thread::Builder::new()
        .name("keyclone-ahead-behind".into())
        .spawn(move || {
            let r = git2::Repository::open(&git_dir)
                .and_then(|r| r.graph_ahead_behind(local, up))
                .ok();
            let _ = tx.send(r);
        })
        .ok()?;
    rx.recv_timeout(deadline.remaining()).ok().flatten()
}

/// The HEAD metadata keys ([`head_commit`]'s), `unknown` when the commit is too large to read.
pub(super) const HEAD_KEYS: [&str; 5] = [
    "commit.author",
    "commit.author_email",
    "commit.time",
    "commit.subject",
    "commit.has_signature",
];

/// HEAD's author, committer time (ISO 8601, as `git log --format=%cI`), subject (as `%s`) and
/// whether it carries a signature (a `gpgsig` header: GPG, SSH or X.509 alike; keyclone does
/// not verify it, so a garbage signature counts too). One object read, of at most
/// [`super::COMMIT_LIMIT`] bytes (the caller checked its header).
pub(super) fn head_commit(repo: &git2::Repository, commit: Oid, p: &mut Provenance) {
    let Ok(c) = repo.find_commit(commit) else {
        return;
    };
    let author = c.author();
    if let Ok(n) = author.name() {
        p.set("provenance.git.commit.author", n);
    }
    if let Ok(e) = author.email() {
        p.set("provenance.git.commit.author_email", e);
    }
    if let Some(t) = iso_time(c.committer().when()) {
        p.set("provenance.git.commit.time", t);
    }
    p.set(
        "provenance.git.commit.subject",
        subject(&String::from_utf8_lossy(c.message_bytes())),
    );
    let signed = ["gpgsig", "gpgsig-sha256"]
        .iter()
        .any(|h| c.header_field_bytes(h).is_ok());
    p.set(
        "provenance.git.commit.has_signature",
        if signed { "true" } else { "false" },
    );
}

/// `git log --format=%cI`: `2026-12-01T20:53:18+01:00`.
fn iso_time(t: git2::Time) -> Option<String> {
    let offset = time::UtcOffset::from_whole_seconds(t.offset_minutes() * 60).ok()?;
    let at = time::OffsetDateTime::from_unix_timestamp(t.seconds())
        .ok()?
        .to_offset(offset);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
    );
    at.format(&f).ok()
}

/// git's `%s`: the first paragraph (leading blank lines skipped), its lines joined by spaces,
/// cut at 1,000 characters.
fn subject(message: &str) -> String {
    let para: Vec<&str> = message
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim_end)
        .collect();
    para.join(" ").chars().take(1000).collect()
}

/// The shallow and worktree flags and the superproject (when this working tree is a submodule
/// of the repository above it).
pub(super) fn flags_and_neighbours(
    repo: &git2::Repository,
    ceilings: &[PathBuf],
    p: &mut Provenance,
) {
    if repo.is_shallow() {
        p.set("provenance.git.shallow", "true");
    }
    if repo.is_worktree() {
        p.set("provenance.git.worktree", "true");
    }
    let Some(workdir) = repo.workdir() else {
        return;
    };
    superproject(workdir, ceilings, p);
}

/// The submodules' commits: for each `.gitmodules` entry whose path git accepts, the commit
/// checked out in it, else the gitlink in HEAD's tree (libgit2's `workdir_id`, then `head_id`).
/// Not libgit2's `submodules()`, which reads the whole index and walks the whole HEAD tree
/// (50M instructions on git/git, more than everything else `--format json` does); nothing
/// when the status scan found the index damaged: then `submodules=unknown`, as before.
pub(super) fn submodules(
    repo: &git2::Repository,
    damaged: bool,
    deadline: &Deadline,
    p: &mut Provenance,
) {
    let Some(workdir) = repo.workdir() else {
        return;
    };
    let file = workdir.join(".gitmodules");
    let Ok(meta) = std::fs::symlink_metadata(&file) else {
        return;
    };
    if damaged || deadline.passed() {
        p.set("provenance.git.submodules", "unknown");
        return;
    }
    let Some(listed) = gitmodules(&file, &meta) else {
        p.set("provenance.git.submodules", "unknown");
        p.notes.push(format!(
            "`.gitmodules` is not a regular file of at most {} KiB that git can read: submodules are unknown",
            GITMODULES_LIMIT / 1024
        ));
        return;
    };
    let tree = repo
        .head()
        .ok()
        .and_then(|h| h.target())
        .and_then(|t| super::guard::commit_of(repo, t))
        .filter(|&(_, small)| small)
        .and_then(|(c, _)| repo.find_commit(c).ok())
        .and_then(|c| c.tree().ok());
    for (name, path) in listed {
        if deadline.passed() {
            p.set("provenance.git.submodules", "unknown");
            return;
        }
        if crate::git::paths::check_submodule(&name, &path).is_err() {
            p.notes.push(format!(
                "submodule {name:?} has a path git refuses ({path:?}): left out"
            ));
            continue;
        }
        // A submodule is a gitlink of HEAD's tree, as `git submodule status` lists them; its
        // commit the one checked out there, else the gitlink's.
        let Some(link) = gitlink(tree.as_ref(), &path) else {
            continue;
        };
        let id = checked_out(workdir, &path).unwrap_or(link);
        p.set(&format!("provenance.git.submodule.{path}"), id.to_string());
    }
}

/// The most of `.gitmodules` read.
const GITMODULES_LIMIT: u64 = 1024 * 1024;

/// `.gitmodules`' submodules, `(name, path)`, as git lists them (`submodule.NAME.path`); `None`
/// when it is not a regular file (git ignores a `.gitmodules` that is a link), too large, holds
/// an `[include]`, or is not a config git reads.
fn gitmodules(file: &Path, meta: &std::fs::Metadata) -> Option<Vec<(String, String)>> {
    if !meta.is_file() || meta.len() > GITMODULES_LIMIT {
        return None;
    }
    // Opened without blocking or following a link (a FIFO swapped in is not handed on) and
    // read bounded. git reads `.gitmodules` without its `[include]`s; libgit2 would follow
    // them (to a FIFO, or a huge file): a `.gitmodules` with one is not handed to it.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(super::guard::open_regular(file)?, GITMODULES_LIMIT + 1),
        &mut bytes,
    )
    .ok()?;
    if bytes.len() as u64 > GITMODULES_LIMIT || has_include(&bytes) {
        return None;
    }
    let config = git2::Config::open(file).ok()?;
    let mut out = Vec::new();
    let mut entries = config.entries(Some(r"^submodule\..*\.path$")).ok()?;
    while let Some(Ok(e)) = entries.next() {
        let (Ok(key), Ok(path)) = (e.name(), e.value()) else {
            continue;
        };
        let name = key
            .strip_prefix("submodule.")
            .and_then(|k| k.strip_suffix(".path"))
            .unwrap_or(key);
        out.push((name.to_owned(), path.to_owned()));
    }
    Some(out)
}

/// A config section `[include]` or `[includeIf "..."]` (any case, any subsection): what would
/// make libgit2 read another file.
fn has_include(bytes: &[u8]) -> bool {
    bytes.split(|&b| b == b'\n').any(|line| {
        let t = line.trim_ascii_start();
        t.strip_prefix(b"[").is_some_and(|rest| {
            let name: Vec<u8> = rest
                .trim_ascii_start()
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b'.')
                .map(u8::to_ascii_lowercase)
                .collect();
            name.starts_with(b"include")
        })
    })
}

/// The commit checked out in the submodule at `path` (its HEAD), as libgit2's `workdir_id`:
/// only a real folder, reached without following a link at any step, holding a repository that
/// passes the same checks as this one.
fn checked_out(workdir: &Path, path: &str) -> Option<Oid> {
    let mut dir = workdir.to_path_buf();
    for part in path.split('/') {
        dir.push(part);
        if !std::fs::symlink_metadata(&dir).ok()?.is_dir() {
            return None;
        }
    }
    std::fs::symlink_metadata(dir.join(".git")).ok()?;
    super::guard::before_open(&dir).ok()?;
    let sub = git2::Repository::open_ext(
        &dir,
        git2::RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .ok()?;
    sub.head().ok()?.target()
}

/// The commit HEAD's tree records at `path` (a gitlink), reading only the trees on the way.
fn gitlink(tree: Option<&git2::Tree<'_>>, path: &str) -> Option<Oid> {
    const GITLINK: i32 = 0o160000;
    let entry = tree?.get_path(Path::new(path)).ok()?;
    (entry.filemode() == GITLINK).then(|| entry.id())
}

/// The repository above `workdir` that records it as a submodule (a gitlink in its HEAD tree
/// or its index): its commit and the submodule's path in it.
fn superproject(workdir: &Path, ceilings: &[PathBuf], p: &mut Provenance) {
    let Some(parent) = workdir.parent() else {
        return;
    };
    let flags = git2::RepositoryOpenFlags::empty();
    // The parent's files pass the same checks as this repository's before libgit2 reads them.
    if super::guard::before_open(parent).is_err() {
        return;
    }
    let Ok(sup) = git2::Repository::open_ext(parent, flags, ceilings) else {
        return;
    };
    let (Some(swd), Ok(wd)) = (sup.workdir(), workdir.canonicalize()) else {
        return;
    };
    let Some(rel) = swd
        .canonicalize()
        .ok()
        .and_then(|s| wd.strip_prefix(s).ok().map(Path::to_path_buf))
    else {
        return;
    };
    const GITLINK: i32 = 0o160000;
    let head = sup
        .head()
        .ok()
        .and_then(|h| h.target())
        .and_then(|t| super::guard::commit_of(&sup, t))
        .filter(|&(_, small)| small)
        .and_then(|(c, _)| sup.find_commit(c).ok());
    let in_tree = head
        .as_ref()
        .and_then(|c| c.tree().ok())
        .and_then(|t| t.get_path(&rel).ok())
        .is_some_and(|e| e.filemode() == GITLINK);
    // The index as the status scan reads it; libgit2's (a fifth as fast) where that cannot
    // (a split or sparse index).
    let index = sup.path().join("index");
    let in_index = in_tree
        || match crate::git::status::gitlink_in_index(&index, rel.as_os_str().as_bytes()) {
            Ok(found) => found,
            Err(u) if u.damaged => false,
            Err(_) => {
                super::guard::index_readable(&index)
                    && sup
                        .index()
                        .ok()
                        .and_then(|i| i.get_path(&rel, 0))
                        .is_some_and(|e| e.mode == GITLINK as u32)
            }
        };
    if !in_index {
        return;
    }
    if let Some(c) = head {
        p.set("provenance.git.superproject.commit", c.id().to_string());
    }
    p.set(
        "provenance.git.superproject.path",
        rel.to_string_lossy().into_owned(),
    );
}

#[cfg(test)]
mod include_tests {
    use super::has_include;

    #[test]
    fn an_include_section_is_seen_in_any_spelling() {
        for t in [
            "[include]\n\tpath = /dev/zero\n",
            "  [InClUdE]\npath=x\n",
            "[includeIf \"gitdir:/\"]\n path = x\n",
            "[submodule \"a\"]\n path = a\n[ include ] path = x\n",
        ] {
            assert!(has_include(t.as_bytes()), "{t:?}");
        }
        for t in [
            "[submodule \"include\"]\n\tpath = include\n",
            "# [include]\n",
            "[submodule \"a\"]\n\tpath = a/include\n",
        ] {
            assert!(!has_include(t.as_bytes()), "{t:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_is_the_first_paragraph_on_one_line() {
        assert_eq!(subject("\n\nfix: a\nand b  \n\nbody\n"), "fix: a and b");
        assert_eq!(subject("one"), "one");
        assert_eq!(subject(""), "");
    }

    #[test]
    fn iso_time_keeps_the_commit_offset() {
        let t = git2::Time::new(1_700_000_000, 90);
        assert_eq!(iso_time(t).as_deref(), Some("2023-11-14T23:43:20+01:30"));
        let t = git2::Time::new(0, -300);
        assert_eq!(iso_time(t).as_deref(), Some("1969-12-31T19:00:00-05:00"));
    }
}
