//! The working-tree fingerprint: a hash that tells two different dirty states at the same
//! commit apart (MLflow's branch + commit + dirty lumps them together).
//!
//! What it covers (`provenance.git.fingerprint`, `sha256:` + hex): the HEAD commit id; then,
//! within the dirty scope, every path `git status` lists (changed tracked files, staged or not;
//! untracked files that are not ignored, each file inside an untracked folder), sorted by path
//! bytes, each as: the path, libgit2's status bits, the staged blob id and mode when the index
//! differs from HEAD, and the working-tree file's mode and the SHA-256 of its content (of the
//! link target for a symbolic link; `-` when deleted; a submodule by its checked-out commit).
//! Contents enter only as hashes, secret-looking files included: nothing of them is printed.
//! A clean tree's fingerprint covers the commit alone. Ignored files and the unchanged tracked
//! files are not read (they are what the commit says).

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
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
            match inside(workdir, &c.path) {
                Some(full) => h.update(entry_hash(repo, &full, &c.path, deadline)?),
                None => h.update(b"refused"),
            }
            h.update(b"\n");
        }
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

/// The file for `rel` when git's path rules accept every component of it and no folder on the
/// way is a symbolic link: a hostile index never makes keyclone read outside the work tree.
fn inside(workdir: &Path, rel: &[u8]) -> Option<std::path::PathBuf> {
    let rel = rel.strip_suffix(b"/").unwrap_or(rel);
    let parts: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
    let mut full = workdir.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        crate::git::paths::check_entry(part, 0o100644).ok()?;
        full.push(std::ffi::OsStr::from_bytes(part));
        if i + 1 < parts.len() && !std::fs::symlink_metadata(&full).ok()?.is_dir() {
            return None;
        }
    }
    Some(full)
}

/// Mode and content hash of one working-tree entry, or `-` when it is gone.
fn entry_hash(
    repo: &git2::Repository,
    full: &Path,
    rel: &[u8],
    deadline: &Deadline,
) -> Result<Vec<u8>, String> {
    let meta = match std::fs::symlink_metadata(full) {
        Ok(m) => m,
        Err(_) => return Ok(b"-".to_vec()),
    };
    // git's modes: only the executable bit of a file counts.
    let mode = if meta.file_type().is_symlink() {
        "120000"
    } else if meta.is_dir() {
        "160000"
    } else if meta.permissions().mode() & 0o111 != 0 {
        "100755"
    } else {
        "100644"
    };
    let mut out = format!("{mode} ").into_bytes();
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(full).map_err(|e| e.to_string())?;
        out.extend_from_slice(&Sha256::digest(target.as_os_str().as_bytes()));
    } else if meta.is_dir() {
        // A submodule (or a nested repository): its checked-out commit.
        let rel = String::from_utf8_lossy(rel);
        let id = repo
            .find_submodule(rel.trim_end_matches('/'))
            .ok()
            .and_then(|s| s.workdir_id());
        out.extend_from_slice(id.map(|i| i.to_string()).unwrap_or_default().as_bytes());
    } else {
        let mut f = std::fs::File::open(full).map_err(|e| e.to_string())?;
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
