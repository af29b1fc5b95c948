//! "Is the working tree dirty, and how many untracked entries are there?" answered the way
//! `git status --porcelain [PATH]` would, faster than libgit2's full status (which builds both
//! diffs in full and re-reads the HEAD tree object by object).
//!
//! - **HEAD vs index**: the index's trees are hashed (git's tree format, SHA-1) and compared
//!   with HEAD's tree ids; only tree objects are hashed, never file contents.
//! - **index vs working tree**: each entry's stat data is compared with the file, as git does
//!   (mtime, ctime, size, inode, uid/gid, mode); a mismatch, or a racily clean entry, is settled
//!   by hashing the file as a blob, or by libgit2 for that one path when checkout filters could
//!   apply. Work is split over the available cores.
//! - **untracked**: a walk of the working tree; names not in the index are checked against the
//!   ignore rules (libgit2's); an untracked folder counts once, and only when it holds a file
//!   that is not ignored (as `git status` shows `?? dir/`).
//!
//! Anything this does not handle (a conflict being resolved is simply dirty; a SHA-256
//! repository, a split index, submodule contents) returns `Err(Unsupported)` or defers to
//! libgit2 for that path, so the answer is never a guess. The index is never written.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha1::{Digest, Sha1};

/// The scan cannot answer. If the index is damaged (truncated, or claiming more entries than
/// it holds), git refuses it too and the caller reports that; otherwise the caller uses
/// libgit2's status (which would size its allocations by a damaged header).
#[derive(Debug)]
pub struct Unsupported {
    pub reason: String,
    pub damaged: bool,
}

fn unsupported(reason: String) -> Unsupported {
    Unsupported {
        reason,
        damaged: false,
    }
}

fn damaged(reason: String) -> Unsupported {
    Unsupported {
        reason,
        damaged: true,
    }
}

impl<E: std::fmt::Display> From<E> for Unsupported {
    fn from(e: E) -> Self {
        unsupported(e.to_string())
    }
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dirty {
    pub dirty: bool,
    /// `??` entries of `git status --porcelain` (an untracked folder counts once).
    pub untracked: usize,
}

const MODE_DIR: u32 = 0o040000;
const MODE_LINK: u32 = 0o120000;
const MODE_GITLINK: u32 = 0o160000;
const EXT_INTENT_TO_ADD: u16 = 1 << 13;
const EXT_SKIP_WORKTREE: u16 = 1 << 14;
const STAGE_MASK: u16 = 0x3000;

struct Entry {
    path: Vec<u8>,
    mode: u32,
    id: [u8; 20],
    mtime: (i64, u32),
    ctime: (i64, u32),
    size: u32,
    ino: u32,
    uid: u32,
    gid: u32,
    flags: u16,
    ext: u16,
}

const FLAG_ASSUME_VALID: u16 = 0x8000;
const FLAG_EXTENDED: u16 = 0x4000;

fn be32(b: &[u8], at: usize) -> Result<u32, Unsupported> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| damaged("truncated index".into()))
}

/// Git's offset varint (index v4 path compression).
fn varint(b: &[u8], at: &mut usize) -> Result<usize, Unsupported> {
    let mut c = *b
        .get(*at)
        .ok_or_else(|| damaged("truncated index".into()))?;
    *at += 1;
    let mut val = usize::from(c & 0x7f);
    while c & 0x80 != 0 {
        c = *b
            .get(*at)
            .ok_or_else(|| damaged("truncated index".into()))?;
        *at += 1;
        val = ((val + 1) << 7) | usize::from(c & 0x7f);
    }
    Ok(val)
}

/// The smallest entry of any index version: 62 bytes of stat data, id and flags, before the
/// path. Bounds the entry count a file of a given size can hold.
const MIN_ENTRY: usize = 62;

/// Whether git would accept `path` in its index (git's `verify_path`, with the NTFS and HFS+
/// protections on): components separated by single `/`, none empty, `.` or `..`, no `.git` in
/// any spelling (`.GIT`, `git~1`, `.git.`, HFS+ ignorable code points), no symlinked
/// `.gitmodules`, shorter than PATH_MAX. Only such paths are ever joined to the work tree, so no entry can make the
/// scan read or hash anything outside it.
fn valid_path(path: &[u8], mode: u32) -> bool {
    // Longer than PATH_MAX, the file cannot exist in the work tree here: it is a change (git
    // shows it deleted), and it is not worth a walk.
    if path.len() >= nix::libc::PATH_MAX as usize {
        return false;
    }
    let opts = gix_validate::path::component::Options {
        protect_windows: false,
        protect_hfs: true,
        protect_ntfs: true,
    };
    if path.is_empty() {
        return false;
    }
    let mut parts = path.split(|&c| c == b'/').peekable();
    while let Some(part) = parts.next() {
        let leaf = parts.peek().is_none();
        let m = (leaf && mode == MODE_LINK).then_some(gix_validate::path::component::Mode::Symlink);
        if gix_validate::path::component(part.into(), m, opts).is_err() {
            return false;
        }
    }
    true
}

/// Reads git's index file (versions 2, 3 and 4): the entries, and how many were left out
/// because git's rules refuse their path (see [`valid_path`]). The trailing checksum is not
/// verified, as git does not verify it on reads either; a split or sparse index is left to
/// libgit2. Nothing is sized by the header alone: the entry count is capped by what the
/// file's size can hold.
fn parse_index(b: &[u8]) -> Result<(Vec<Entry>, usize), Unsupported> {
    if b.get(0..4) != Some(b"DIRC") {
        return Err(unsupported("not an index file".into()));
    }
    let version = be32(b, 4)?;
    if !(2..=4).contains(&version) {
        return Err(unsupported(format!("index version {version}")));
    }
    let count = be32(b, 8)? as usize;
    if count > b.len().saturating_sub(12) / MIN_ENTRY {
        return Err(damaged(format!(
            "the index claims {count} entries, more than its {} bytes can hold",
            b.len()
        )));
    }
    let mut out: Vec<Entry> = Vec::with_capacity(count);
    let mut refused = 0;
    let mut at = 12;
    let mut prev: Vec<u8> = Vec::new();
    for _ in 0..count {
        let start = at;
        let f = |i: usize| be32(b, start + 4 * i);
        let id: [u8; 20] = b
            .get(start + 40..start + 60)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| damaged("truncated index".into()))?;
        let flags = b
            .get(start + 60..start + 62)
            .map(|s| u16::from_be_bytes([s[0], s[1]]))
            .ok_or_else(|| damaged("truncated index".into()))?;
        at = start + 62;
        let mut ext = 0u16;
        if flags & FLAG_EXTENDED != 0 {
            if version < 3 {
                return Err(unsupported("extended flag in a v2 index".into()));
            }
            ext = b
                .get(at..at + 2)
                .map(|s| u16::from_be_bytes([s[0], s[1]]))
                .ok_or_else(|| damaged("truncated index".into()))?;
            at += 2;
        }
        let path = if version == 4 {
            let strip = varint(b, &mut at)?;
            let end = b[at..]
                .iter()
                .position(|&c| c == 0)
                .ok_or_else(|| damaged("truncated index".into()))?;
            let keep = prev
                .len()
                .checked_sub(strip)
                .ok_or_else(|| damaged("bad path compression".into()))?;
            let mut p = prev[..keep].to_vec();
            p.extend_from_slice(&b[at..at + end]);
            at += end + 1;
            p
        } else {
            let end = b
                .get(at..)
                .and_then(|r| r.iter().position(|&c| c == 0))
                .ok_or_else(|| damaged("truncated index".into()))?;
            let p = b[at..at + end].to_vec();
            // Entries are padded with 1 to 8 NULs to a multiple of 8 bytes.
            at = start + ((at - start + end + 8) & !7);
            p
        };
        prev.clone_from(&path);
        let mode = f(6)?;
        if !valid_path(&path, mode) {
            refused += 1;
            continue;
        }
        out.push(Entry {
            ctime: (i64::from(f(0)?), f(1)?),
            mtime: (i64::from(f(2)?), f(3)?),
            ino: f(5)?,
            mode,
            uid: f(7)?,
            gid: f(8)?,
            size: f(9)?,
            id,
            flags,
            ext,
            path,
        });
    }
    // Extensions: a split index ("link") or a sparse index ("sdir") is not read here.
    while at + 8 <= b.len().saturating_sub(20) {
        let sig = &b[at..at + 4];
        if sig == b"link" || sig == b"sdir" {
            return Err(unsupported("split or sparse index".into()));
        }
        at += 8 + be32(b, at + 4)? as usize;
    }
    Ok((out, refused))
}

/// Scans `workdir` (or the part below `scope`, relative to it). `global_attributes`: a
/// user-wide attributes file exists (checkout filters may apply).
pub fn scan(
    repo: &git2::Repository,
    scope: Option<&str>,
    global_attributes: bool,
) -> Result<Dirty, Unsupported> {
    let workdir = repo
        .workdir()
        .ok_or_else(|| unsupported("bare repository".into()))?
        .to_path_buf();
    if repo
        .config()
        .and_then(|c| c.get_string("extensions.objectformat"))
        .is_ok_and(|f| !f.eq_ignore_ascii_case("sha1"))
    {
        return Err(unsupported("object format is not SHA-1".into()));
    }
    let index_path = repo.path().join("index");
    // An entry whose path git's rules refuse (`/x`, `../f`, `.git/config`) is never joined
    // to the work tree: it is left out of the scan, and makes the tree dirty by itself, as
    // `git status` shows it (no checkout of a commit produces such an entry).
    let ((entries, refused), index_mtime) = match crate::files::read_bounded_if_exists(
        &index_path,
        crate::files::INDEX_LIMIT,
        "git index",
    )? {
        Some((bytes, m)) => (parse_index(&bytes)?, (m.mtime(), m.mtime_nsec() as u32)),
        None => ((Vec::new(), 0), (0, 0)),
    };
    let scope_dir: Vec<u8> = scope
        .map(|s| s.trim_end_matches('/').as_bytes().to_vec())
        .unwrap_or_default();
    let in_scope = |p: &[u8]| {
        scope_dir.is_empty() || (p.starts_with(&scope_dir) && p.get(scope_dir.len()) == Some(&b'/'))
    };

    // Conflicts and intent-to-add entries are changes by themselves.
    let mut dirty = refused > 0
        || entries
            .iter()
            .filter(|e| in_scope(&e.path))
            .any(|e| e.flags & STAGE_MASK != 0 || e.ext & EXT_INTENT_TO_ADD != 0);

    // HEAD vs index: the index's trees against HEAD's.
    if !dirty {
        dirty = match repo.head().ok().and_then(|h| h.peel_to_tree().ok()) {
            None => entries.iter().any(|e| in_scope(&e.path)),
            Some(head_tree) => {
                let mut trees: Vec<(Vec<u8>, [u8; 20])> = Vec::new();
                let root = hash_tree(&entries, &mut trees)?;
                if scope_dir.is_empty() {
                    root != head_tree.id().as_bytes()
                } else {
                    let ours = trees
                        .iter()
                        .find(|(p, _)| *p == scope_dir)
                        .map(|(_, id)| *id);
                    let theirs = head_tree
                        .get_path(Path::new(OsStr::from_bytes(&scope_dir)))
                        .ok()
                        .filter(|t| t.filemode() as u32 == MODE_DIR)
                        .map(|t| t.id());
                    match (ours, theirs) {
                        (None, None) => false,
                        (Some(a), Some(b)) => a != b.as_bytes(),
                        _ => true,
                    }
                }
            }
        };
    }

    // The folders to read, each with its tracked files (sorted by name).
    let filters = global_attributes
        || filters_may_apply(repo, &workdir)
        || entries.iter().any(|e| e.path.ends_with(b".gitattributes"));
    let mut dirs: HashMap<&[u8], Vec<usize>> = HashMap::new();
    dirs.insert(&scope_dir, Vec::new());
    let mut expected = 0usize;
    for (i, e) in entries.iter().enumerate() {
        if !in_scope(&e.path) {
            continue;
        }
        if e.ext & EXT_SKIP_WORKTREE == 0 {
            expected += 1;
        }
        let parent = e
            .path
            .iter()
            .rposition(|&c| c == b'/')
            .map_or(&e.path[..0], |i| &e.path[..i]);
        dirs.entry(parent).or_default().push(i);
        // Every folder between the scope and this one is walked too.
        let mut p = parent;
        while p.len() > scope_dir.len() {
            let up = p
                .iter()
                .rposition(|&c| c == b'/')
                .map_or(&p[..0], |i| &p[..i]);
            if dirs.contains_key(up) && up.len() >= scope_dir.len() {
                dirs.entry(p).or_default();
                break;
            }
            dirs.entry(p).or_default();
            p = up;
        }
    }
    let mut work: Vec<(&[u8], Vec<usize>)> = dirs.into_iter().collect();
    // Big folders first, so the threads finish together.
    work.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    let tracked_dirs: HashSet<&[u8]> = work.iter().map(|(d, _)| *d).collect();

    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let git_dir = repo.path().to_path_buf();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Walked, Unsupported>> = std::thread::scope(|s| {
        let job = || {
            let mut w = Walked::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((dir, files)) = work.get(i) else {
                    break;
                };
                walk_dir(
                    dir,
                    files,
                    &entries,
                    &tracked_dirs,
                    &workdir,
                    &git_dir,
                    index_mtime,
                    filters,
                    &mut w,
                )?;
            }
            Ok(w)
        };
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
    let mut seen = 0;
    let mut candidates = Vec::new();
    for r in results {
        let w = r?;
        dirty |= w.changed;
        seen += w.seen;
        candidates.extend(w.candidates);
    }
    if seen < expected {
        dirty = true; // a tracked file is gone
    }
    let mut untracked = 0;
    for (rel, is_dir) in candidates {
        let rel_path = Path::new(OsStr::from_bytes(&rel));
        if repo.is_path_ignored(rel_path)? {
            continue;
        }
        if !is_dir || holds_unignored(repo, &workdir.join(rel_path), &rel)? {
            untracked += 1;
        }
    }
    Ok(Dirty {
        dirty: dirty || untracked > 0,
        untracked,
    })
}

/// What one worker found.
#[derive(Default)]
struct Walked {
    changed: bool,
    /// Tracked files found on disk.
    seen: usize,
    /// Names not in the index (path, is a folder), for the ignore check.
    candidates: Vec<(Vec<u8>, bool)>,
}

/// Reads one folder: compares each tracked file with its index entry, collects the others.
#[allow(clippy::too_many_arguments)]
fn walk_dir(
    dir: &[u8],
    files: &[usize],
    entries: &[Entry],
    tracked_dirs: &HashSet<&[u8]>,
    workdir: &Path,
    git_dir: &Path,
    index_mtime: (i64, u32),
    filters: bool,
    w: &mut Walked,
) -> Result<(), Unsupported> {
    use std::os::unix::fs::OpenOptionsExt;
    // Every folder on the way must be a real folder: git does not follow a symbolic link in a
    // tracked path (the files below it are deleted), and neither does the scan.
    let mut at = 0;
    while at < dir.len() {
        let end = dir[at..]
            .iter()
            .position(|&c| c == b'/')
            .map_or(dir.len(), |k| at + k);
        match std::fs::symlink_metadata(workdir.join(OsStr::from_bytes(&dir[..end]))) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                w.changed = true;
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !files.is_empty() {
                    w.changed = true;
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        at = end + 1;
    }
    let full = if dir.is_empty() {
        workdir.to_path_buf()
    } else {
        workdir.join(OsStr::from_bytes(dir))
    };
    let listing = match std::fs::read_dir(&full) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !files.is_empty() {
                w.changed = true;
            }
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            w.changed = true;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let dirfd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_PATH | nix::libc::O_DIRECTORY)
        .open(&full)?;
    let name_of = |i: usize| {
        let p = &entries[i].path;
        &p[p.iter().rposition(|&c| c == b'/').map_or(0, |k| k + 1)..]
    };
    let mut repo: Option<git2::Repository> = None;
    for de in listing {
        let de = de?;
        let os_name = de.file_name();
        let name = os_name.as_bytes();
        if name == b".git" {
            continue;
        }
        let found = files
            .binary_search_by(|&i| name_of(i).cmp(name))
            .ok()
            .map(|k| files[k]);
        let Some(i) = found else {
            let mut child = dir.to_vec();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(name);
            let is_dir = de.file_type()?.is_dir();
            if !(is_dir && tracked_dirs.contains(child.as_slice())) {
                w.candidates.push((child, is_dir));
            }
            continue;
        };
        let e = &entries[i];
        if e.ext & EXT_SKIP_WORKTREE == 0 {
            w.seen += 1;
        }
        if w.changed || e.ext & EXT_SKIP_WORKTREE != 0 || e.flags & FLAG_ASSUME_VALID != 0 {
            continue;
        }
        let rel = Path::new(OsStr::from_bytes(&e.path));
        if e.mode == MODE_GITLINK {
            // A submodule: its commit and its own changes, by libgit2.
            let r = repo.get_or_insert(git2::Repository::open(git_dir)?);
            let st = r.status_file(rel).unwrap_or(git2::Status::WT_MODIFIED);
            let sub = r
                .submodule_status(&rel.to_string_lossy(), git2::SubmoduleIgnore::None)
                .map(|s| {
                    s.is_wd_modified()
                        || s.is_wd_wd_modified()
                        || s.is_wd_untracked()
                        || s.contains(git2::SubmoduleStatus::WD_INDEX_MODIFIED)
                })
                .unwrap_or(false);
            w.changed |= !st.is_empty() || sub;
            continue;
        }
        let st = nix::sys::stat::fstatat(
            &dirfd,
            os_name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| unsupported(e.to_string()))?;
        let fmt = st.st_mode & nix::libc::S_IFMT;
        let kind_ok = if e.mode == MODE_LINK {
            fmt == nix::libc::S_IFLNK
        } else {
            fmt == nix::libc::S_IFREG
        };
        if !kind_ok || (e.mode != MODE_LINK && (st.st_mode & 0o100 != 0) != (e.mode == 0o100755)) {
            w.changed = true;
            continue;
        }
        let stat_same = st.st_mtime == e.mtime.0
            && st.st_mtime_nsec as u32 == e.mtime.1
            && st.st_ctime == e.ctime.0
            && st.st_ctime_nsec as u32 == e.ctime.1
            && st.st_size as u32 == e.size
            && st.st_ino as u32 == e.ino
            && st.st_uid == e.uid
            && st.st_gid == e.gid;
        let racy = (st.st_mtime, st.st_mtime_nsec as u32) >= index_mtime;
        if stat_same && !racy {
            continue;
        }
        if e.mode == MODE_LINK {
            let target = nix::fcntl::readlinkat(&dirfd, os_name.as_os_str())
                .map_err(|e| unsupported(e.to_string()))?;
            w.changed |= blob_id(target.as_bytes()) != e.id;
            continue;
        }
        if st.st_size as u32 != e.size && !filters {
            w.changed = true;
            continue;
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
        if !meta.is_file() || blob_id_of(file, meta.len())? == Some(e.id) {
            if !meta.is_file() {
                w.changed = true;
            }
            continue;
        }
        if !filters {
            w.changed = true;
            continue;
        }
        let r = repo.get_or_insert(git2::Repository::open(git_dir)?);
        w.changed |= !r.status_file(rel)?.is_empty();
    }
    Ok(())
}

/// Hashes the tree of the sorted entries, recording every folder's tree id (path, id), the
/// root's (empty path) last. Iterative: a folder open per depth on an explicit stack, so a deep
/// path cannot exhaust the thread's stack.
fn hash_tree(
    entries: &[Entry],
    trees: &mut Vec<(Vec<u8>, [u8; 20])>,
) -> Result<[u8; 20], Unsupported> {
    // The open folders, root first: (path, tree body so far).
    let mut open: Vec<(Vec<u8>, Vec<u8>)> = vec![(Vec::new(), Vec::new())];
    fn close(open: &mut Vec<(Vec<u8>, Vec<u8>)>, trees: &mut Vec<(Vec<u8>, [u8; 20])>) -> [u8; 20] {
        let (path, body) = open.pop().unwrap_or_default();
        let mut h = Sha1::new();
        h.update(format!("tree {}\0", body.len()).as_bytes());
        h.update(&body);
        let id: [u8; 20] = h.finalize().into();
        if let Some((_, parent)) = open.last_mut() {
            let name = &path[path.iter().rposition(|&c| c == b'/').map_or(0, |k| k + 1)..];
            parent.extend_from_slice(b"40000 ");
            parent.extend_from_slice(name);
            parent.push(0);
            parent.extend_from_slice(&id);
        }
        trees.push((path, id));
        id
    }
    for e in entries {
        let dir_len = e.path.iter().rposition(|&c| c == b'/');
        let dir = dir_len.map_or(&e.path[..0], |k| &e.path[..k]);
        // Close the folders this entry is not in.
        while open.len() > 1 {
            let top = &open[open.len() - 1].0;
            let inside = dir == top.as_slice()
                || (dir.starts_with(top) && dir.get(top.len()) == Some(&b'/'));
            if inside {
                break;
            }
            close(&mut open, trees);
        }
        // Open the folders between the innermost open one and the entry's own.
        loop {
            let top_len = open[open.len() - 1].0.len();
            if top_len == dir.len() {
                break;
            }
            let from = if top_len == 0 { 0 } else { top_len + 1 };
            let next = dir[from..]
                .iter()
                .position(|&c| c == b'/')
                .map_or(dir.len(), |k| from + k);
            open.push((dir[..next].to_vec(), Vec::new()));
        }
        let mode: &[u8] = match e.mode {
            0o100644 => b"100644",
            0o100755 => b"100755",
            MODE_LINK => b"120000",
            MODE_GITLINK => b"160000",
            m => return Err(unsupported(format!("index mode {m:o}"))),
        };
        let name = &e.path[dir_len.map_or(0, |k| k + 1)..];
        let body = &mut open
            .last_mut()
            .ok_or_else(|| unsupported("no open tree".into()))?
            .1;
        body.extend_from_slice(mode);
        body.push(b' ');
        body.extend_from_slice(name);
        body.push(0);
        body.extend_from_slice(&e.id);
    }
    let mut root = [0u8; 20];
    while !open.is_empty() {
        root = close(&mut open, trees);
    }
    Ok(root)
}

/// Whether checkout filters (line endings, `filter=`, `ident`, `working-tree-encoding`) could
/// make a file's bytes differ from its blob: then a stat mismatch is settled by libgit2. (A
/// `.gitattributes` that is not in the index is untracked, which makes the tree dirty anyway.)
fn filters_may_apply(repo: &git2::Repository, workdir: &Path) -> bool {
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

fn blob_id(data: &[u8]) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    h.finalize().into()
}

/// Whether an untracked folder holds a file that is not ignored (else git does not show it).
fn holds_unignored(repo: &git2::Repository, dir: &Path, rel: &[u8]) -> Result<bool, Unsupported> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_follow_gits_rules() {
        for ok in [
            &b"a"[..],
            b"src/main.rs",
            b".gitignore",
            b"a/.github/x",
            b"x.git",
        ] {
            assert!(
                valid_path(ok, 0o100644),
                "{:?}",
                String::from_utf8_lossy(ok)
            );
        }
        for bad in [
            &b""[..],
            b"/x",
            b"/",
            b"////x",
            b"a//b",
            b"a/",
            b"..",
            b"../x",
            b"a/../../x",
            b"./x",
            b".git",
            b".git/config",
            b".GIT/config",
            b"a/.Git/hooks/x",
            b"git~1/x",
            b".git /x",
            b".git./x",
            "a/.g\u{200c}it/x".as_bytes(),
        ] {
            assert!(
                !valid_path(bad, 0o100644),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(valid_path(b".gitmodules", 0o100644));
        assert!(
            !valid_path(b".gitmodules", MODE_LINK),
            "a symlinked .gitmodules"
        );
        assert!(
            !valid_path(&b"a/".repeat(4096), 0o100644),
            "longer than PATH_MAX"
        );
    }

    #[test]
    fn the_entry_count_is_capped_by_the_file_size() {
        let mut b = b"DIRC".to_vec();
        b.extend_from_slice(&2u32.to_be_bytes());
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        b.extend_from_slice(&[0u8; 100]);
        let e = parse_index(&b).err().unwrap();
        assert!(e.damaged && e.reason.contains("more than its"), "{e:?}");
    }
}
