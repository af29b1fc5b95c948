//! Reading the work tree: one folder's tracked files against their index entries (the
//! decisions are in `decide`), the untracked names, and the ignore checks.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sha1::{Digest, Sha1};

use super::decide::{self, Hashed, Stat, Step};
use super::index::{EXT_SKIP_WORKTREE, Entry, MODE_GITLINK, blob_id};
use super::{Unsupported, unsupported};

/// What one worker found.
#[derive(Default)]
pub(super) struct Walked {
    pub changed: bool,
    /// Tracked files found on disk.
    pub seen: usize,
    /// Names not in the index (path, is a folder), for the ignore check.
    pub candidates: Vec<(Vec<u8>, bool)>,
    /// In collect mode, the tracked paths that differ from the index.
    pub changes: Vec<Vec<u8>>,
}

impl Walked {
    /// Every tracked file of the folder is gone (or behind something that is not a folder).
    fn all_gone(&mut self, files: &[usize], entries: &[Entry], collect: bool) {
        if !files.is_empty() {
            self.changed = true;
        }
        if collect {
            for &i in files {
                if !decide::not_compared(&entries[i]) {
                    self.changes.push(entries[i].path.clone());
                }
            }
        }
    }

    fn change(&mut self, e: &Entry, collect: bool) {
        self.changed = true;
        if collect {
            self.changes.push(e.path.clone());
        }
    }
}

/// Reads one folder: compares each tracked file with its index entry, collects the others.
#[allow(clippy::too_many_arguments)]
pub(super) fn walk_dir(
    dir: &[u8],
    files: &[usize],
    entries: &[Entry],
    tracked_dirs: &HashSet<&[u8], decide::FastBuild>,
    workdir: &Path,
    git_dir: &Path,
    index_mtime: (i64, u32),
    filters: bool,
    collect: bool,
    w: &mut Walked,
) -> Result<(), Unsupported> {
    use std::os::unix::fs::OpenOptionsExt;
    // Every folder on the way must be a real folder: git does not follow a symbolic link in a
    // tracked path (the files below it are deleted), and neither does the scan.
    // One buffer for every prefix checked (joining a path per component costs more than the
    // system calls).
    let mut buf = workdir.as_os_str().as_bytes().to_vec();
    buf.push(b'/');
    let base = buf.len();
    buf.extend_from_slice(dir);
    let mut at = 0;
    while at < dir.len() {
        let end = dir[at..]
            .iter()
            .position(|&c| c == b'/')
            .map_or(dir.len(), |k| at + k);
        match std::fs::symlink_metadata(Path::new(OsStr::from_bytes(&buf[..base + end]))) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                w.changed = true;
                w.all_gone(files, entries, collect);
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                w.all_gone(files, entries, collect);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        at = end + 1;
    }
    let full = if dir.is_empty() {
        workdir
    } else {
        Path::new(OsStr::from_bytes(&buf))
    };
    let listing = match std::fs::read_dir(full) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            w.all_gone(files, entries, collect);
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            w.changed = true;
            w.all_gone(files, entries, collect);
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let dirfd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_PATH | nix::libc::O_DIRECTORY)
        .open(full)?;
    // The tracked files' names, once (sorted, as `files` is).
    let names: Vec<&[u8]> = files
        .iter()
        .map(|&i| {
            let p = &entries[i].path;
            &p[p.iter().rposition(|&c| c == b'/').map_or(0, |k| k + 1)..]
        })
        .collect();
    let mut repo: Option<git2::Repository> = None;
    // In collect mode, which tracked files were found (the others are deleted).
    let mut found_at = if collect {
        vec![false; files.len()]
    } else {
        Vec::new()
    };
    for de in listing {
        let de = de?;
        let os_name = de.file_name();
        let name = os_name.as_bytes();
        if name == b".git" {
            continue;
        }
        let k = names.binary_search(&name).ok();
        if let (Some(k), true) = (k, collect) {
            found_at[k] = true;
        }
        let Some(i) = k.map(|k| files[k]) else {
            let mut child = dir.to_vec();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(name);
            let is_dir = de.file_type()?.is_dir();
            if decide::untracked_candidate(is_dir, tracked_dirs.contains(child.as_slice())) {
                w.candidates.push((child, is_dir));
            }
            continue;
        };
        let e = &entries[i];
        if e.ext & EXT_SKIP_WORKTREE == 0 {
            w.seen += 1;
        }
        if (w.changed && !collect) || decide::not_compared(e) {
            continue;
        }
        let rel = Path::new(OsStr::from_bytes(&e.path));
        if e.mode == MODE_GITLINK {
            let at = |name: &OsStr| {
                nix::sys::stat::fstatat(&dirfd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            };
            let is_dir = at(os_name.as_os_str())
                .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR);
            let mut dot_git = os_name.clone();
            dot_git.push("/.git");
            let holds_dot_git = !matches!(at(&dot_git), Err(nix::errno::Errno::ENOENT));
            if decide::unpopulated_submodule(is_dir, holds_dot_git) {
                continue;
            }
            // A submodule: its commit and its own changes, by libgit2.
            let r = repo.get_or_insert(git2::Repository::open(git_dir)?);
            let st = r.status_file(rel).unwrap_or(git2::Status::WT_MODIFIED);
            let sub = r
                .submodule_status(&rel.to_string_lossy(), git2::SubmoduleIgnore::None)
                .ok();
            if collect {
                let wt = git2::Status::WT_MODIFIED
                    | git2::Status::WT_DELETED
                    | git2::Status::WT_TYPECHANGE
                    | git2::Status::WT_NEW;
                if decide::submodule_changed(!st.intersects(wt), sub) {
                    w.change(e, collect);
                }
            } else {
                w.changed |= decide::submodule_changed(st.is_empty(), sub);
            }
            continue;
        }
        let st = nix::sys::stat::fstatat(
            &dirfd,
            os_name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| unsupported(e.to_string()))?;
        match decide::step(e, &Stat::from(&st), index_mtime) {
            Step::Clean => continue,
            Step::Changed => {
                w.change(e, collect);
                continue;
            }
            Step::HashLink => {
                let target = nix::fcntl::readlinkat(&dirfd, os_name.as_os_str())
                    .map_err(|e| unsupported(e.to_string()))?;
                if blob_id(target.as_bytes()) != e.id {
                    w.change(e, collect);
                }
                continue;
            }
            Step::HashFile => {}
        }
        // Opened beside the listing, never through a link, and hashed as it is read.
        let fd = nix::fcntl::openat(
            &dirfd,
            os_name.as_os_str(),
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_NONBLOCK
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| unsupported(e.to_string()))?;
        let file = std::fs::File::from(fd);
        let meta = file.metadata()?;
        let same = meta.is_file() && blob_id_of(file, meta.len())? == Some(e.id);
        let converts = filters && !same && {
            let r = match &mut repo {
                Some(r) => r,
                None => repo.insert(git2::Repository::open(git_dir)?),
            };
            converts(r, rel)?
        };
        match decide::after_hash(meta.is_file(), same, converts) {
            Hashed::Clean => {}
            Hashed::Changed => w.change(e, collect),
            Hashed::AskLibgit2 => {
                let r = repo.get_or_insert(git2::Repository::open(git_dir)?);
                let st = r.status_file(rel)?;
                if collect {
                    let wt = git2::Status::WT_MODIFIED
                        | git2::Status::WT_DELETED
                        | git2::Status::WT_TYPECHANGE;
                    if st.intersects(wt) {
                        w.change(e, collect);
                    }
                } else {
                    w.changed |= !st.is_empty();
                }
            }
        }
    }
    // A tracked file that is not in the listing is deleted.
    for (k, found) in found_at.into_iter().enumerate() {
        let e = &entries[files[k]];
        if !found && !decide::not_compared(e) {
            w.change(e, collect);
        }
    }
    Ok(())
}

/// Whether checkout filters (line endings, `filter=`, `ident`, `working-tree-encoding`) could
/// apply anywhere: then a file whose blob id differs is checked against its own attributes
/// (`converts`), and settled by libgit2 when they name a conversion. (A
/// `.gitattributes` that is not in the index is untracked, which makes the tree dirty anyway.)
pub(super) fn filters_may_apply(repo: &git2::Repository, workdir: &Path) -> bool {
    // What checkout applies (clone's rule), plus what only `git add` would convert.
    let cfg = repo.config().ok();
    let set = |k: &str| {
        cfg.as_ref()
            .and_then(|c| c.get_string(k).ok())
            .is_some_and(|v| !v.is_empty() && v != "false")
    };
    crate::git::clone::config_needs_filters(repo)
        || set("core.autocrlf")
        || set("core.eol")
        || workdir.join(".gitattributes").exists()
}

/// Whether git's conversion of a work-tree file to a blob (`convert_to_git`) could change
/// `rel`'s bytes: `core.autocrlf` converts every text file; otherwise only the attributes git's
/// `convert_attrs` reads (`text`, `crlf`, `eol`, `ident`, `filter`, `working-tree-encoding`),
/// set, unset or given a value for this path. Without them git hashes the bytes as they are,
/// so a different blob id is a change.
fn converts(repo: &git2::Repository, rel: &Path) -> Result<bool, Unsupported> {
    let autocrlf = repo
        .config()
        .ok()
        .and_then(|c| c.get_string("core.autocrlf").ok())
        .is_some_and(|v| {
            !["", "false", "no", "off", "0"]
                .iter()
                .any(|f| v.eq_ignore_ascii_case(f))
        });
    if autocrlf {
        return Ok(true);
    }
    for name in [
        "text",
        "crlf",
        "eol",
        "ident",
        "filter",
        "working-tree-encoding",
    ] {
        if repo
            .get_attr_bytes(rel, name, git2::AttrCheckFlags::FILE_THEN_INDEX)?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The blob id of a file of `size` bytes, read in pieces; `None` if it did not hold `size`
/// bytes (it changed while read).
fn blob_id_of(mut file: std::fs::File, size: u64) -> Result<Option<[u8; 20]>, Unsupported> {
    let mut h = Sha1::new();
    h.update(format!("blob {size}\0").as_bytes());
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        seen += n as u64;
        if seen > size {
            return Ok(None);
        }
        h.update(&buf[..n]);
    }
    Ok((seen == size).then(|| h.finalize().into()))
}

/// Whether an untracked folder holds a file that is not ignored (else git does not show it).
pub(super) fn holds_unignored(
    repo: &git2::Repository,
    dir: &Path,
    rel: &[u8],
) -> Result<bool, Unsupported> {
    if dir.join(".git").exists() {
        return Ok(true); // a nested repository is shown as untracked
    }
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let mut child = rel.to_vec();
        child.push(b'/');
        child.extend_from_slice(e.file_name().as_bytes());
        let rel_path = Path::new(OsStr::from_bytes(&child));
        let is_dir = e.file_type()?.is_dir();
        if is_dir {
            if !repo.is_path_ignored(rel_path)? && holds_unignored(repo, &e.path(), &child)? {
                return Ok(true);
            }
        } else if !repo.is_path_ignored(rel_path)? {
            return Ok(true);
        }
    }
    Ok(false)
}
