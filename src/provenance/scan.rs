//! The dirty scan, in a worker thread so the deadline holds (libgit2's status cannot be
//! cancelled), started early so the history work of the extras runs beside it.

use std::path::Path;
use std::sync::mpsc;

use super::Deadline;
use crate::git::status::Change;

pub(super) enum Scan {
    Done {
        dirty: bool,
        untracked: usize,
        /// What `git status -uall` lists, when asked for and the fast scan could answer.
        changes: Option<Vec<Change>>,
    },
    TimedOut,
    /// The index is damaged (git refuses it too): dirty is left out.
    Failed(String),
    /// Neither scan can read this repository (e.g. libgit2 and a sparse index): unknown.
    Unreadable(String),
}

/// A scan under way.
type Answer = std::result::Result<(bool, usize, Option<Vec<Change>>), (bool, String)>;

pub(super) struct Pending(Option<mpsc::Receiver<Answer>>);

impl Pending {
    /// The answer, or `TimedOut` once the deadline has passed.
    pub(super) fn wait(self, deadline: &Deadline) -> Scan {
        let Some(rx) = self.0 else {
            return Scan::Failed("could not start a thread".into());
        };
        match rx.recv_timeout(deadline.remaining()) {
            Ok(Ok((dirty, untracked, changes))) => Scan::Done {
                dirty,
                untracked,
                changes,
            },
            Ok(Err((true, e))) => Scan::Failed(e),
            Ok(Err((false, e))) => Scan::Unreadable(e),
            Err(_) => Scan::TimedOut,
        }
    }
}

/// The code directory relative to the working tree (`None` when it is the working tree).
pub(super) fn relative_code_dir(workdir: &Path, code: &Path) -> Option<String> {
    let wd = workdir.canonicalize().ok()?;
    let code = code.canonicalize().ok()?;
    let rel = code.strip_prefix(&wd).ok()?;
    if rel.as_os_str().is_empty() {
        None
    } else {
        Some(rel.to_string_lossy().into_owned())
    }
}

/// Starts the status scan: untracked files counted (not recursing into untracked folders),
/// ignored files not, submodules included; the index is never written. `collect`: also list
/// the changed paths for the fingerprint (`status::collect`; left to the fingerprint's own
/// libgit2 status when the fast scan cannot answer).
pub(super) fn start(
    git_dir: &Path,
    scope: Option<String>,
    global_attributes: bool,
    collect: bool,
) -> Pending {
    let (tx, rx) = mpsc::channel();
    let git_dir = git_dir.to_owned();
    let spawned = std::thread::Builder::new()
        .name("keyclone-status".into())
        .spawn(move || {
            let r = (|| -> Answer {
                let unreadable = |e: git2::Error| (false, e.message().to_owned());
                let repo = git2::Repository::open(&git_dir).map_err(unreadable)?;
                // The fast scan; what it does not handle goes to libgit2's full status.
                // Collect mode declines a conflict or a refused path: the plain scan still
                // answers dirty, and the fingerprint asks libgit2 for the paths.
                let plain = || {
                    crate::git::status::scan(&repo, scope.as_deref(), global_attributes)
                        .map(|d| (d, None))
                };
                let fast = if collect {
                    crate::git::status::collect(&repo, scope.as_deref(), global_attributes)
                        .map(|(d, c)| (d, Some(c)))
                        .or_else(|u| if u.damaged { Err(u) } else { plain() })
                } else {
                    plain()
                };
                match fast {
                    Ok((d, c)) => return Ok((d.dirty, d.untracked, c)),
                    Err(u) if u.damaged => {
                        return Err((true, format!(
                            "the git index `{}` is damaged: {}; `git status` refuses it too (rebuild it from HEAD with `rm .git/index && git reset`, which drops what was staged)",
                            git_dir.join("index").display(),
                            u.reason
                        )));
                    }
                    Err(_) => {}
                }
                let mut o = git2::StatusOptions::new();
                o.include_untracked(true)
                    .recurse_untracked_dirs(false)
                    .include_ignored(false)
                    .exclude_submodules(false)
                    .update_index(false)
                    .renames_head_to_index(false)
                    .renames_index_to_workdir(false);
                if let Some(s) = &scope {
                    o.pathspec(s).disable_pathspec_match(true);
                }
                let st = repo.statuses(Some(&mut o)).map_err(unreadable)?;
                let untracked = st
                    .iter()
                    .filter(|e| e.status().contains(git2::Status::WT_NEW))
                    .count();
                Ok((!st.is_empty(), untracked, None))
            })();
            let _ = tx.send(r);
        });
    Pending(spawned.ok().map(|_| rx))
}
