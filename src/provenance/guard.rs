//! What must hold before libgit2 reads a file an attacker controls: libgit2 opens `.git`'s
//! files blocking and reads them whole, so a FIFO there hangs it (the deadline cannot stop a
//! read in the main thread) and a link to `/dev/zero` never ends. Checked first: the files it
//! reads when it opens a repository and resolves HEAD are each a regular file (or a folder, or
//! absent); anything else refuses the repository with the path and its kind.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// The most read of `.git`'s small text files (a gitlink `.git`, `commondir`, `HEAD`).
const SMALL: u64 = 64 * 1024;

/// What a file that is neither a regular file nor a folder is, or `None`.
fn odd_kind(t: std::fs::FileType) -> Option<&'static str> {
    if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        None
    }
}

/// `path` (links followed, as libgit2 follows them) is absent, a regular file or a folder.
fn plain(path: &Path) -> Result<()> {
    let Ok(m) = std::fs::metadata(path) else {
        return Ok(());
    };
    match odd_kind(m.file_type()) {
        None => Ok(()),
        Some(kind) => Err(Error::new(
            ErrorKind::UnsafeRepository,
            format!(
                "refusing to read the repository: `{}` is {kind}, not a regular file (git and libgit2 would wait on it, or read it, forever)",
                path.display()
            ),
        )
        .hint(format!(
            "look at it with `ls -l {}`; remove it if nothing of yours made it, or check where this repository came from",
            path.display()
        ))),
    }
}

/// A small text file's first line, if it is a regular file that holds one.
fn first_line(path: &Path) -> Option<String> {
    let b = crate::files::read_bounded(path, SMALL, "git file").ok()?;
    let s = String::from_utf8(b).ok()?;
    Some(s.lines().next()?.trim().to_owned())
}

/// Checks what libgit2 would read to open the repository at or above `start` and resolve its
/// HEAD: the `.git` file or folder, `commondir`, `gitdir`, `HEAD` and the ref it names,
/// `config`, `index`, `shallow`, `info/grafts`, `packed-refs`, `objects/info/alternates`.
pub(super) fn before_open(start: &Path) -> Result<()> {
    let Ok(start) = start.canonicalize() else {
        return Ok(());
    };
    for dir in start.ancestors() {
        let dotgit = dir.join(".git");
        plain(&dotgit)?;
        let gitdir = if dotgit.is_dir() {
            dotgit
        } else if dotgit.is_file() {
            match first_line(&dotgit).and_then(|l| l.strip_prefix("gitdir:").map(str::to_owned)) {
                Some(p) => dir.join(p.trim()),
                None => return Ok(()),
            }
        } else if dir.join("HEAD").is_file() && dir.join("objects").is_dir() {
            dir.to_path_buf()
        } else {
            continue;
        };
        return git_dir(&gitdir);
    }
    Ok(())
}

fn git_dir(gitdir: &Path) -> Result<()> {
    for f in ["commondir", "gitdir", "HEAD", "config.worktree", "index"] {
        plain(&gitdir.join(f))?;
    }
    let common: PathBuf = match first_line(&gitdir.join("commondir")) {
        Some(c) => gitdir.join(c),
        None => gitdir.to_path_buf(),
    };
    let mut dirs = vec![gitdir.to_path_buf()];
    if common != gitdir {
        dirs.push(common);
    }
    let head_ref = first_line(&gitdir.join("HEAD"))
        .and_then(|l| l.strip_prefix("ref:").map(|r| r.trim().to_owned()))
        .filter(|r| r.starts_with("refs/") && !r.split('/').any(|c| c == ".." || c.is_empty()));
    for d in &dirs {
        for f in [
            "config",
            "shallow",
            "info/grafts",
            "packed-refs",
            "objects/info/alternates",
        ] {
            plain(&d.join(f))?;
        }
        if let Some(r) = &head_ref {
            plain(&d.join(r))?;
        }
    }
    Ok(())
}

/// Opens `path` without blocking (a FIFO does not hang the open) and without following a
/// link; `None` unless the descriptor is a regular file.
pub(super) fn open_regular(path: &Path) -> Option<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(
            nix::libc::O_NONBLOCK
                | nix::libc::O_NOFOLLOW
                | nix::libc::O_NOCTTY
                | nix::libc::O_CLOEXEC,
        )
        .open(path)
        .ok()?;
    f.metadata().ok()?.is_file().then_some(f)
}

/// The smallest index entry (stat data, id, flags), as the status scan counts it.
const MIN_ENTRY: u64 = 62;

/// Whether the index at `path` may be handed to libgit2: absent, or a regular file of at most
/// [`crate::files::INDEX_LIMIT`] whose header claims no more entries than its size can hold
/// (the status scan's test for a damaged index; libgit2 allocates by the claim).
pub(super) fn index_readable(path: &Path) -> bool {
    if std::fs::symlink_metadata(path).is_err() {
        return true;
    }
    let Some(f) = open_regular(path) else {
        return false;
    };
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return false;
    };
    let mut head = [0u8; 12];
    if len > crate::files::INDEX_LIMIT || f.take(12).read_exact(&mut head).is_err() {
        return false;
    }
    header_fits(&head, len)
}

fn header_fits(head: &[u8; 12], len: u64) -> bool {
    let count = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as u64;
    &head[..4] != b"DIRC" || count <= len.saturating_sub(12) / MIN_ENTRY
}

/// HEAD's commit and whether it is small enough to read ([`super::COMMIT_LIMIT`]), from the
/// ref's target by object headers alone (nothing inflated): a tag is followed to its commit
/// (eight levels at most), anything else is no commit.
pub(super) fn commit_of(repo: &git2::Repository, target: git2::Oid) -> Option<(git2::Oid, bool)> {
    let odb = repo.odb().ok()?;
    let mut id = target;
    for _ in 0..8 {
        let (size, kind) = odb.read_header(id).ok()?;
        match kind {
            git2::ObjectType::Commit => return Some((id, size <= super::COMMIT_LIMIT)),
            git2::ObjectType::Tag if size <= super::COMMIT_LIMIT => {
                id = repo.find_tag(id).ok()?.target_id();
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(count: u32) -> [u8; 12] {
        let mut h = [0u8; 12];
        h[..4].copy_from_slice(b"DIRC");
        h[4..8].copy_from_slice(&2u32.to_be_bytes());
        h[8..].copy_from_slice(&count.to_be_bytes());
        h
    }

    #[test]
    fn an_index_claiming_more_entries_than_its_size_holds_is_not_handed_on() {
        assert!(header_fits(&header(0), 32));
        assert!(header_fits(&header(2), 12 + 2 * 62 + 20));
        assert!(!header_fits(&header(3), 12 + 2 * 62 + 20));
        assert!(!header_fits(&header(0x7fff_ffff), 18 * 1024 * 1024));
    }

    #[test]
    fn fifos_and_devices_in_git_dir_are_refused_and_regular_files_are_not() {
        let d = tempfile::tempdir().unwrap();
        let g = d.path().join(".git");
        std::fs::create_dir_all(g.join("objects")).unwrap();
        std::fs::write(g.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        assert!(before_open(d.path()).is_ok());
        std::fs::create_dir_all(g.join("refs/heads")).unwrap();
        nix::unistd::mkfifo(&g.join("refs/heads/main"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = before_open(d.path()).unwrap_err();
        assert!(e.to_string().contains("refs/heads/main"), "{e}");
        std::fs::remove_file(g.join("refs/heads/main")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", g.join("packed-refs")).unwrap();
        let e = before_open(d.path()).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        let f = g.join("index");
        std::fs::write(&f, [&header(0x7fff_ffff)[..], &[0u8; 100]].concat()).unwrap();
        assert!(!index_readable(&f));
        std::fs::write(&f, [&header(1)[..], &[0u8; 100]].concat()).unwrap();
        assert!(index_readable(&f));
    }
}
