//! The `provenance.git.*` extras beside describe and the fingerprint: the upstream and how far
//! the commit is from it, HEAD's commit metadata, the superproject when the code is inside a
//! submodule, the submodules, and the shallow/worktree flags. Each is bounded by the deadline.

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

/// The submodules' checked-out commits. `submodules()` reads the whole index and HEAD tree:
/// only when there are submodules, and never when the status scan found the index damaged
/// (libgit2 would allocate by its header's claim): then `submodules=unknown`.
pub(super) fn submodules(
    repo: &git2::Repository,
    damaged: bool,
    deadline: &Deadline,
    p: &mut Provenance,
) {
    let Some(workdir) = repo.workdir() else {
        return;
    };
    if workdir.join(".gitmodules").exists() {
        if damaged || deadline.passed() {
            p.set("provenance.git.submodules", "unknown");
            return;
        }
        if let Ok(subs) = repo.submodules() {
            for s in subs {
                if let (Some(path), Some(id)) = (s.path().to_str(), s.workdir_id().or(s.head_id()))
                {
                    p.set(&format!("provenance.git.submodule.{path}"), id.to_string());
                }
            }
        }
    }
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
    let in_index = in_tree
        || super::guard::index_readable(&sup.path().join("index"))
            && sup
                .index()
                .ok()
                .and_then(|i| i.get_path(&rel, 0))
                .is_some_and(|e| e.mode == GITLINK as u32);
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
