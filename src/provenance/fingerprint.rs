//! The working-tree fingerprint: a hash that tells two different dirty states at the same
//! commit apart (MLflow's branch + commit + dirty lumps them together).
//!
//! What it covers (`provenance.git.fingerprint`, `sha256:` + hex): the HEAD commit id; then,
//! within the dirty scope, every path `git status` lists (changed tracked files, staged or not;
//! untracked files that are not ignored, each file inside an untracked folder), sorted by path
//! bytes, each as: the path, libgit2's status bits, the staged blob id and mode when the index
//! differs from HEAD, and the working-tree file's mode and the SHA-256 of its content (of the
//! link target for a symbolic link; `-` when deleted; a submodule by its checked-out commit; a
//! FIFO, socket or device by its kind alone, never opened).
//! Contents enter only as hashes, secret-looking files included: nothing of them is printed.
//! A clean tree's fingerprint covers the commit alone. Ignored files and the unchanged tracked
//! files are not read (they are what the commit says).

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

struct Changed {
    path: Vec<u8>,
    bits: u32,
    staged: Option<(git2::Oid, u32)>,
}

pub(super) fn fingerprint(
    repo: &git2::Repository,
    workdir: &Path,
    commit: Option<git2::Oid>,
    dirty: bool,
    scope: Option<&str>,
    deadline: &Deadline,
) -> Result<String, String> {
    let mut h = Sha256::new();
    h.update(b"keyclone-fingerprint-v1\0");
    h.update(commit.map(|c| c.to_string()).unwrap_or_default());
    h.update(b"\0");
    if dirty {
        let changed = changed_paths(repo.path(), scope, deadline)?;
        for c in changed {
            if deadline.passed() {
                return Err("it took longer than the deadline (raise `--deadline`)".into());
            }
            h.update(&c.path);
            h.update(b"\0");
            h.update(c.bits.to_be_bytes());
            if let Some((id, mode)) = c.staged {
                h.update(id.as_bytes());
                h.update(mode.to_be_bytes());
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

/// `git status` with untracked folders opened, in a worker thread bounded by the deadline.
fn changed_paths(
    git_dir: &Path,
    scope: Option<&str>,
    deadline: &Deadline,
) -> Result<Vec<Changed>, String> {
    let (tx, rx) = mpsc::channel();
    let git_dir = git_dir.to_owned();
    let scope = scope.map(str::to_owned);
    std::thread::Builder::new()
        .name("keyclone-fingerprint".into())
        .spawn(move || {
            let r = (|| -> Result<Vec<Changed>, git2::Error> {
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
                let mut out: Vec<Changed> = st
                    .iter()
                    .map(|e| Changed {
                        path: e.path_bytes().to_vec(),
                        bits: e.status().bits(),
                        staged: e
                            .head_to_index()
                            .map(|d| (d.new_file().id(), u32::from(d.new_file().mode()))),
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
