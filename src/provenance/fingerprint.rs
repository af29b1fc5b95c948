//! The working-tree fingerprint: a hash that tells two different dirty states at the same
//! commit apart (MLflow's branch + commit + dirty lumps them together).
//!
//! What it covers (`provenance.git.fingerprint`, `sha256:` + hex): the HEAD commit id; then,
//! within the dirty scope, every path `git status` lists (changed tracked files, staged or not;
//! untracked files that are not ignored, each file inside an untracked folder), sorted by path
//! bytes, each as: the path, the staged blob id and mode when the index differs from HEAD
//! (which with the commit and the working-tree entry says whether it is tracked, staged or
//! untracked), and the working-tree file's mode and the SHA-256 of its content (of the
//! link target for a symbolic link; `-` when deleted; a submodule by its checked-out commit; a
//! FIFO, socket or device by its kind alone, never opened).
//! Contents enter only as hashes, secret-looking files included: nothing of them is printed.
//! A clean tree's fingerprint covers the commit alone. Ignored files and the unchanged tracked
//! files are not read (they are what the commit says).
//!
//! The paths come from the status scan's collect mode (`git::status::collect`, run once for
//! dirty and the fingerprint); where it cannot answer (a split index, SHA-256, a conflict),
//! from libgit2's full status, which lists the same paths (tested below).

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use std::sync::mpsc;

use sha2::{Digest, Sha256};

use super::Deadline;
use crate::git::status::Change;

/// `dirty`: `None` for a clean tree; `Some(listed)` for a dirty one, with the paths the status
/// scan listed (`status::collect`), or `None` there when it could not (then libgit2's status
/// lists them: the same paths, so the same fingerprint).
pub(super) fn fingerprint(
    repo: &git2::Repository,
    workdir: &Path,
    commit: Option<git2::Oid>,
    dirty: Option<Option<Vec<Change>>>,
    scope: Option<&str>,
    deadline: &Deadline,
) -> Result<String, String> {
    let mut h = Sha256::new();
    h.update(b"keyclone-fingerprint-v2\0");
    h.update(commit.map(|c| c.to_string()).unwrap_or_default());
    h.update(b"\0");
    if let Some(listed) = dirty {
        let changed = match listed {
            Some(l) => l,
            None => changed_paths(repo.path(), scope, deadline)?,
        };
        for c in changed {
            if deadline.passed() {
                return Err("it took longer than the deadline (raise `--deadline`)".into());
            }
            h.update(&c.path);
            h.update(b"\0");
            // What the index holds when it differs from HEAD; the rest of the state (tracked,
            // untracked, deleted) follows from it, the commit and the working-tree entry.
            match c.staged {
                Some((id, mode)) => {
                    h.update(b"s");
                    h.update(id);
                    h.update(mode.to_be_bytes());
                }
                None => h.update(b"-"),
            }
            h.update(entry_hash(repo, workdir, &c.path, deadline)?);
            h.update(b"\n");
        }
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

/// The folder holding `rel` (opened without following a link at any step, so a folder
/// swapped for a link is never followed outside the work tree) and `rel`'s last component,
/// when git's path rules accept every component; `None` when it cannot be reached that way.
fn parent_of(workdir: &Path, rel: &[u8]) -> Option<(OwnedFd, Vec<u8>)> {
    let rel = rel.strip_suffix(b"/").unwrap_or(rel);
    let parts: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
    let (leaf, folders) = parts.split_last()?;
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut dir: OwnedFd = nix::fcntl::open(workdir, flags, Mode::empty()).ok()?;
    for part in folders {
        crate::git::paths::check_entry(part, 0o100644).ok()?;
        dir = nix::fcntl::openat(&dir, OsStr::from_bytes(part), flags, Mode::empty()).ok()?;
    }
    crate::git::paths::check_entry(leaf, 0o100644).ok()?;
    Some((dir, leaf.to_vec()))
}

/// Mode and content hash of one working-tree entry, `-` when it is gone, `refused` when a
/// folder on its way is not a folder. Only a regular file is read, opened beside the folder
/// without following a link and without blocking, and checked on its descriptor; a FIFO, a
/// device or a socket counts by its kind alone.
fn entry_hash(
    repo: &git2::Repository,
    workdir: &Path,
    rel: &[u8],
    deadline: &Deadline,
) -> Result<Vec<u8>, String> {
    let Some((dir, leaf)) = parent_of(workdir, rel) else {
        return Ok(b"refused".to_vec());
    };
    let leaf = OsStr::from_bytes(&leaf);
    let Ok(st) = nix::sys::stat::fstatat(&dir, leaf, AtFlags::AT_SYMLINK_NOFOLLOW) else {
        return Ok(b"-".to_vec());
    };
    let fmt = st.st_mode & nix::libc::S_IFMT;
    // git's modes: only the executable bit of a file counts.
    let mode = match fmt {
        nix::libc::S_IFLNK => "120000",
        nix::libc::S_IFDIR => "160000",
        nix::libc::S_IFREG if st.st_mode & 0o111 != 0 => "100755",
        nix::libc::S_IFREG => "100644",
        nix::libc::S_IFIFO => return Ok(b"fifo".to_vec()),
        nix::libc::S_IFSOCK => return Ok(b"socket".to_vec()),
        nix::libc::S_IFCHR => return Ok(b"character-device".to_vec()),
        nix::libc::S_IFBLK => return Ok(b"block-device".to_vec()),
        _ => return Ok(b"other".to_vec()),
    };
    let mut out = format!("{mode} ").into_bytes();
    if fmt == nix::libc::S_IFLNK {
        let target = nix::fcntl::readlinkat(&dir, leaf).map_err(|e| e.to_string())?;
        out.extend_from_slice(&Sha256::digest(target.as_bytes()));
    } else if fmt == nix::libc::S_IFDIR {
        // A submodule (or a nested repository): its checked-out commit.
        let rel = String::from_utf8_lossy(rel);
        let id = repo
            .find_submodule(rel.trim_end_matches('/'))
            .ok()
            .and_then(|s| s.workdir_id());
        out.extend_from_slice(id.map(|i| i.to_string()).unwrap_or_default().as_bytes());
    } else {
        let changed = || {
            format!(
                "`{}` changed while it was read",
                String::from_utf8_lossy(rel)
            )
        };
        let fd = nix::fcntl::openat(
            &dir,
            leaf,
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|_| changed())?;
        let mut f = std::fs::File::from(fd);
        if !f.metadata().map_err(|e| e.to_string())?.is_file() {
            return Err(changed());
        }
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            if deadline.passed() {
                return Err("it took longer than the deadline (raise `--deadline`)".into());
            }
        }
        out.extend_from_slice(&h.finalize());
    }
    Ok(out)
}

/// `git status` with untracked folders opened, in a worker thread bounded by the deadline
/// (when the status scan could not list the paths itself).
fn changed_paths(
    git_dir: &Path,
    scope: Option<&str>,
    deadline: &Deadline,
) -> Result<Vec<Change>, String> {
    let (tx, rx) = mpsc::channel();
    let git_dir = git_dir.to_owned();
    let scope = scope.map(str::to_owned);
    std::thread::Builder::new()
        .name("keyclone-fingerprint".into())
        .spawn(move || {
            let r = (|| -> Result<Vec<Change>, git2::Error> {
                let repo = git2::Repository::open(&git_dir)?;
                let mut o = git2::StatusOptions::new();
                o.include_untracked(true)
                    .recurse_untracked_dirs(true)
                    .include_ignored(false)
                    .exclude_submodules(false)
                    .update_index(false)
                    .renames_head_to_index(false)
                    .renames_index_to_workdir(false);
                if let Some(s) = &scope {
                    o.pathspec(s).disable_pathspec_match(true);
                }
                let st = repo.statuses(Some(&mut o))?;
                let mut out: Vec<Change> = st
                    .iter()
                    .map(|e| Change {
                        path: e.path_bytes().to_vec(),
                        staged: e.head_to_index().map(|d| {
                            let id = d.new_file().id();
                            (
                                id.as_bytes().try_into().unwrap_or([0u8; 20]),
                                u32::from(d.new_file().mode()),
                            )
                        }),
                    })
                    .collect();
                out.sort_by(|a, b| a.path.cmp(&b.path));
                Ok(out)
            })();
            let _ = tx.send(r.map_err(|e| e.message().to_owned()));
        })
        .map_err(|_| "could not start a thread".to_owned())?;
    match rx.recv_timeout(deadline.remaining()) {
        Ok(r) => r,
        Err(_) => Err(
            "listing the changed files took longer than the deadline (raise `--deadline`)".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::git::status::test_repos::{base, git, write};

    /// The status scan's list and libgit2's (the fallback) are the same, staged entries
    /// included, so the fingerprint does not depend on which one answered.
    #[test]
    fn the_scan_and_the_libgit2_fallback_list_the_same_changes() {
        let (t, dir) = base();
        let h = t.path();
        write(&dir.join("a.txt"), "a2\n");
        write(&dir.join("src/b.py"), "b2\n");
        git(&dir, h, &["add", "src/b.py"]);
        write(&dir.join("src/b.py"), "b3\n");
        git(&dir, h, &["rm", "-q", "--cached", "t.crlf"]);
        std::fs::remove_file(dir.join("src/deep/c.txt")).unwrap();
        write(&dir.join("nu/y/z.txt"), "z\n");
        write(&dir.join("nu/i.log"), "ignored\n");
        write(&dir.join("src/n.py"), "n\n");
        git(&dir, h, &["add", "src/n.py"]);
        git(&dir.join("sub"), h, &["checkout", "-q", "HEAD~1"]);
        let deadline = super::Deadline::after(std::time::Duration::from_secs(60));
        for scope in [None, Some("src")] {
            let repo = git2::Repository::open(&dir).unwrap();
            let (_, fast) = crate::git::status::collect(&repo, scope, false).unwrap();
            let slow = super::changed_paths(repo.path(), scope, &deadline).unwrap();
            assert_eq!(fast, slow, "scope {scope:?}");
            assert!(
                fast.len() >= if scope.is_none() { 7 } else { 3 },
                "{fast:?}"
            );
        }
    }
}
