//! Reading the work tree: the folders that hold tracked files, from the top of the scope
//! down, each opened beside its parent without following a link (so no folder on the way can
//! be a link: git does not follow one in a tracked path, and the files below it are deleted);
//! one folder's tracked files against their index entries (the decisions are in `decide`), the
//! untracked names, and the ignore checks. The folders are shared by the available cores
//! through one queue.

use std::ffi::{CStr, OsStr};
use std::io::Read;
use std::ops::Range;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use sha1::{Digest, Sha1};

use super::decide::{self, Hashed, Stat, Step};
use super::index::{Entry, MODE_GITLINK, blob_id};
use super::{Unsupported, unsupported};

/// What one worker found.
#[derive(Default)]
pub(super) struct Walked {
    pub changed: bool,
    /// Names not in the index (path, is a folder), for the ignore check.
    pub candidates: Vec<(Vec<u8>, bool)>,
    /// In collect mode, the tracked paths that differ from the index.
    pub changes: Vec<Vec<u8>>,
}

impl Walked {
    /// Every tracked file of `range` is gone (its folder is, or is not a folder any more):
    /// each one git compares is a change.
    fn all_gone(&mut self, entries: &[Entry], range: Range<usize>, collect: bool) {
        for e in &entries[range] {
            if !decide::not_compared(e) {
                self.change(e, collect);
                if !collect {
                    return;
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

/// What the walk needs to know, the same for every folder.
pub(super) struct Walk<'a> {
    pub entries: &'a [Entry],
    pub git_dir: &'a Path,
    pub index_mtime: (i64, u32),
    pub filters: bool,
    pub collect: bool,
}

/// A folder to read: the folder holding it (open), its name there, its path from the top of
/// the work tree (empty at the top) and the index entries below it (a contiguous range: the
/// index is sorted by path bytes).
struct Folder {
    parent: Arc<OwnedFd>,
    dir: Vec<u8>,
    range: Range<usize>,
}

impl Folder {
    /// Its name in the folder holding it (`.` at the top).
    fn name(&self) -> &[u8] {
        if self.dir.is_empty() {
            return b".";
        }
        &self.dir[self
            .dir
            .iter()
            .rposition(|&c| c == b'/')
            .map_or(0, |k| k + 1)..]
    }
}

/// A worker's buffers, reused from folder to folder.
struct Scratch<'a> {
    repo: Option<git2::Repository>,
    listing: Vec<u8>,
    children: decide::Children<'a>,
    found: Vec<bool>,
    found_dir: Vec<bool>,
}

/// `dir/name` (`name` at the top).
fn child_path(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut child = Vec::with_capacity(dir.len() + 1 + name.len());
    child.extend_from_slice(dir);
    if !child.is_empty() {
        child.push(b'/');
    }
    child.extend_from_slice(name);
    child
}

/// The folders still to read, how many are being read, and whether a worker failed.
struct Queue {
    state: Mutex<(Vec<Folder>, usize, bool)>,
    ready: Condvar,
}

/// A folder, opened without following a link and without blocking (a FIFO where a folder was
/// is refused by `O_DIRECTORY` before any open could wait on it; `O_NONBLOCK` in case).
const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_CLOEXEC);

/// Walks the folders of `range` (the entries below `scope`, the empty path for the whole
/// tree) on `threads` workers.
pub(super) fn walk(
    walk: &Walk<'_>,
    workdir: &Path,
    scope: &[u8],
    range: Range<usize>,
    threads: usize,
) -> Result<Walked, Unsupported> {
    let top = nix::fcntl::open(
        workdir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| unsupported(format!("cannot open the work tree: {e}")))?;
    // The scope's own folders, one at a time, never through a link.
    let mut parent = Arc::new(top);
    let parts: Vec<&[u8]> = if scope.is_empty() {
        Vec::new()
    } else {
        scope.split(|&c| c == b'/').collect()
    };
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        match nix::fcntl::openat(&*parent, OsStr::from_bytes(part), DIR_FLAGS, Mode::empty()) {
            Ok(fd) => parent = Arc::new(fd),
            Err(_) => {
                // Gone, or not a folder: its tracked files are deleted.
                let mut w = Walked::default();
                w.all_gone(walk.entries, range, walk.collect);
                return Ok(w);
            }
        }
    }
    let queue = Queue {
        state: Mutex::new((
            vec![Folder {
                parent,
                dir: scope.to_vec(),
                range,
            }],
            0,
            false,
        )),
        ready: Condvar::new(),
    };
    let results: Vec<Result<Walked, Unsupported>> = std::thread::scope(|s| {
        let job = || worker(walk, &queue);
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(job)).collect();
        let mut all = vec![job()];
        for h in handles {
            all.push(
                h.join()
                    .unwrap_or_else(|_| Err(unsupported("a worker panicked".into()))),
            );
        }
        all
    });
    let mut w = Walked::default();
    for r in results {
        let one = r?;
        w.changed |= one.changed;
        w.candidates.extend(one.candidates);
        w.changes.extend(one.changes);
    }
    Ok(w)
}

/// One worker: folders from the queue until none is left (or another worker failed).
fn worker(walk: &Walk<'_>, queue: &Queue) -> Result<Walked, Unsupported> {
    let mut w = Walked::default();
    let mut scratch = Scratch {
        repo: None,
        listing: Vec::with_capacity(32 * 1024),
        children: decide::Children::default(),
        found: Vec::new(),
        found_dir: Vec::new(),
    };
    loop {
        let folder = {
            let mut st = queue.state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if st.2 {
                    break None;
                }
                if let Some(f) = st.0.pop() {
                    st.1 += 1;
                    break Some(f);
                }
                if st.1 == 0 {
                    break None;
                }
                st = queue.ready.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        let Some(folder) = folder else {
            queue.ready.notify_all();
            return Ok(w);
        };
        let mut more = Vec::new();
        let r = read_folder(walk, folder, &mut w, &mut scratch, &mut more);
        {
            let mut st = queue.state.lock().unwrap_or_else(|p| p.into_inner());
            st.0.extend(more);
            st.1 -= 1;
            st.2 |= r.is_err();
        }
        queue.ready.notify_all();
        r?;
    }
}

/// The libgit2 repository a worker asks about single paths (submodules, filters), opened once.
fn repo_of<'r>(
    repo: &'r mut Option<git2::Repository>,
    git_dir: &Path,
) -> Result<&'r mut git2::Repository, Unsupported> {
    if repo.is_none() {
        *repo = Some(git2::Repository::open(git_dir)?);
    }
    repo.as_mut()
        .ok_or_else(|| unsupported("no repository".into()))
}

/// Reads one folder: compares each tracked file with its index entry, queues the subfolders
/// that hold tracked files, collects the other names.
fn read_folder<'a>(
    walk: &Walk<'a>,
    folder: Folder,
    w: &mut Walked,
    scratch: &mut Scratch<'a>,
    more: &mut Vec<Folder>,
) -> Result<(), Unsupported> {
    let entries = walk.entries;
    let collect = walk.collect;
    let fd = nix::fcntl::openat(
        &*folder.parent,
        OsStr::from_bytes(folder.name()),
        DIR_FLAGS,
        Mode::empty(),
    );
    let Folder { dir, range, .. } = folder;
    let fd = match fd {
        Ok(fd) => fd,
        // Gone, a link, or no folder any more: its tracked files are deleted.
        Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => {
            w.all_gone(entries, range, collect);
            return Ok(());
        }
        Err(e) => return Err(unsupported(e.to_string())),
    };
    let skip = if dir.is_empty() { 0 } else { dir.len() + 1 };
    let Scratch {
        repo,
        listing: buf,
        children,
        found,
        found_dir,
    } = scratch;
    decide::children_into(entries, range, skip, children);
    let (files, dirs) = (&children.files, &children.dirs);
    let fd = Arc::new(fd);
    // Which tracked files and folders were found (the others are deleted).
    found.clear();
    found.resize(files.len(), false);
    found_dir.clear();
    found_dir.resize(dirs.len(), false);
    let mut listing = rustix::fs::RawDir::new(&*fd, buf.spare_capacity_mut());
    while let Some(de) = listing.next() {
        let de = de.map_err(|e| unsupported(e.to_string()))?;
        let cname: &CStr = de.file_name();
        let name = cname.to_bytes();
        if name == b"." || name == b".." || name == b".git" {
            continue;
        }
        let file = files.binary_search_by(|(n, _)| n.cmp(&name)).ok();
        let sub = dirs.binary_search_by(|(n, _)| n.cmp(&name)).ok();
        let mut kind = de.file_type();
        if kind == rustix::fs::FileType::Unknown && (sub.is_some() || file.is_none()) {
            kind = nix::sys::stat::fstatat(&*fd, cname, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode))
                .unwrap_or(rustix::fs::FileType::Unknown);
        }
        let is_dir = kind == rustix::fs::FileType::Directory;
        if let Some(k) = sub {
            found_dir[k] = true;
            let (_, r) = &dirs[k];
            if is_dir {
                more.push(Folder {
                    parent: Arc::clone(&fd),
                    dir: child_path(&dir, name),
                    range: r.clone(),
                });
            } else {
                // A file or a link where a tracked folder was (itself untracked, below).
                w.all_gone(entries, r.clone(), collect);
            }
        }
        let Some(k) = file else {
            if decide::untracked_candidate(is_dir, sub.is_some()) {
                w.candidates.push((child_path(&dir, name), is_dir));
            }
            continue;
        };
        found[k] = true;
        let e = &entries[files[k].1];
        if (w.changed && !collect) || decide::not_compared(e) {
            continue;
        }
        compare(walk, e, &fd, cname, w, repo)?;
    }
    // A tracked file or folder that is not in the listing is deleted.
    for (k, &f) in found.iter().enumerate() {
        let e = &entries[files[k].1];
        if !f && !decide::not_compared(e) {
            w.change(e, collect);
        }
    }
    for (k, &f) in found_dir.iter().enumerate() {
        if !f {
            w.all_gone(entries, dirs[k].1.clone(), collect);
        }
    }
    Ok(())
}

/// Compares one tracked file (`name` in the open folder `fd`) with its index entry.
fn compare(
    walk: &Walk<'_>,
    e: &Entry,
    fd: &OwnedFd,
    name: &CStr,
    w: &mut Walked,
    repo: &mut Option<git2::Repository>,
) -> Result<(), Unsupported> {
    let collect = walk.collect;
    let rel = Path::new(OsStr::from_bytes(&e.path));
    if e.mode == MODE_GITLINK {
        let is_dir = nix::sys::stat::fstatat(fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR);
        let mut dot_git = name.to_bytes().to_vec();
        dot_git.extend_from_slice(b"/.git");
        let holds_dot_git = !matches!(
            nix::sys::stat::fstatat(
                fd,
                OsStr::from_bytes(&dot_git),
                AtFlags::AT_SYMLINK_NOFOLLOW
            ),
            Err(Errno::ENOENT)
        );
        if decide::unpopulated_submodule(is_dir, holds_dot_git) {
            return Ok(());
        }
        // A submodule: its commit and its own changes, by libgit2.
        let r = repo_of(repo, walk.git_dir)?;
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
        return Ok(());
    }
    let st = nix::sys::stat::fstatat(fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| unsupported(e.to_string()))?;
    match decide::step(e, &Stat::from(&st), walk.index_mtime) {
        Step::Clean => return Ok(()),
        Step::Changed => {
            w.change(e, collect);
            return Ok(());
        }
        Step::HashLink => {
            let target =
                nix::fcntl::readlinkat(fd, name).map_err(|e| unsupported(e.to_string()))?;
            if blob_id(target.as_bytes()) != e.id {
                w.change(e, collect);
            }
            return Ok(());
        }
        Step::HashFile => {}
    }
    // Opened beside the listing, never through a link, and hashed as it is read.
    let file = nix::fcntl::openat(
        fd,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| unsupported(e.to_string()))?;
    let file = std::fs::File::from(file);
    let meta = file.metadata()?;
    let same = meta.is_file() && blob_id_of(file, meta.len())? == Some(e.id);
    let converts = walk.filters && !same && converts(repo_of(repo, walk.git_dir)?, rel)?;
    match decide::after_hash(meta.is_file(), same, converts) {
        Hashed::Clean => {}
        Hashed::Changed => w.change(e, collect),
        Hashed::AskLibgit2 => {
            let st = repo_of(repo, walk.git_dir)?.status_file(rel)?;
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
