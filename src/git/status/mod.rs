//! "Is the working tree dirty, and how many untracked entries are there?" answered the way
//! `git status --porcelain [PATH]` would, faster than libgit2's full status (which builds both
//! diffs in full and re-reads the HEAD tree object by object).
//!
//! - **HEAD vs index**: the scope's own entries and the ids the index's cache-tree records
//!   for its subfolders are compared with HEAD's tree, as git's `diff-index --cached` skips a
//!   folder whose cache-tree id is HEAD's; otherwise the index's trees are hashed (git's tree
//!   format, SHA-1). Only tree objects are hashed, never file contents.
//! - **index vs working tree**: each entry's stat data is compared with the file as `git
//!   status` does (`decide::step`): another size is a change unread; other stat data that
//!   differs, a racily clean entry, or a zero size recorded for a non-empty blob is settled by
//!   hashing the file as a blob; a blob id that differs is asked of libgit2 for that one path
//!   only when its attributes (or `core.autocrlf`) name a conversion. A submodule folder without
//!   `.git` was never populated and is clean, as in git; a populated one is libgit2's. Each
//!   folder is opened beside its parent without following a link (a link where a tracked
//!   folder was is not entered: its files are deleted, as git sees them) and listed with
//!   `getdents` into one buffer per worker; the folders are shared by the available cores
//!   through one queue.
//! - **untracked**: a walk of the working tree; names not in the index are checked against the
//!   ignore rules (libgit2's); an untracked folder counts once, and only when it holds a file
//!   that is not ignored (as `git status` shows `?? dir/`).
//! - **collect mode** (`collect`, for the provenance fingerprint): the same scan, not stopping
//!   at the first change, listing each changed tracked path, each staged difference (libgit2's
//!   HEAD-vs-index diff, asked only when the trees differ) and each untracked file, as
//!   `git status --porcelain -uall` lists them.
//!
//! Anything this does not handle (a conflict being resolved is simply dirty; a SHA-256
//! repository, a split index, submodule contents) returns `Err(Unsupported)` or defers to
//! libgit2 for that path, so the answer is never a guess. The index is never written.
//!
//! `index` reads the index file and computes tree and blob ids; `cache_tree` its cache-tree; `decide` holds the decisions
//! (pure, unit-tested); `walk` reads the work tree; `collect` the paths listed in collect mode
//! (for the provenance fingerprint); `scan` below puts them together.

mod cache_tree;
mod collect;
mod decide;
mod index;
mod walk;

#[cfg(test)]
pub(crate) use collect::tests as test_repos;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cache_tree::tree_from_cache;
use collect::{list_unignored, merge, staged_changes};
use index::{MODE_DIR, hash_tree, parse_index};
use walk::{Walk, filters_may_apply, holds_unignored};

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

/// One path `git status --porcelain -uall` lists (see `collect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: Vec<u8>,
    /// The index differs from HEAD here: the index entry's blob id and mode (zeros and 0 when
    /// the index no longer holds it).
    pub staged: Option<([u8; 20], u32)>,
}

/// Whether the index file at `index_path` records `rel` as a gitlink (a submodule's commit),
/// read as the scan reads an index (bounded, git's path rules, no allocation sized by its
/// header); `Ok(false)` when there is no index. For the superproject check of provenance,
/// where libgit2's whole index load costs five times as much.
pub fn gitlink_in_index(index_path: &Path, rel: &[u8]) -> Result<bool, Unsupported> {
    let Some((bytes, _)) =
        crate::files::read_bounded_if_exists(index_path, crate::files::INDEX_LIMIT, "git index")?
    else {
        return Ok(false);
    };
    let entries = parse_index(&bytes)?.entries;
    let at = entries.partition_point(|e| e.path.as_slice() < rel);
    Ok(entries
        .get(at)
        .is_some_and(|e| e.path == rel && e.mode == index::MODE_GITLINK))
}

/// Scans `workdir` (or the part below `scope`, relative to it). `global_attributes`: a
/// user-wide attributes file exists (checkout filters may apply).
pub fn scan(
    repo: &git2::Repository,
    scope: Option<&str>,
    global_attributes: bool,
) -> Result<Dirty, Unsupported> {
    scan_with(repo, scope, global_attributes, false).map(|(d, _)| d)
}

/// The scan, also listing every path `git status --porcelain=v1 -uall` lists within the
/// scope, sorted by path bytes, each once: tracked files modified, deleted or type-changed
/// against the index, differences of the index against HEAD (with the index's blob id and
/// mode), and every untracked file that is not ignored (each file inside an untracked folder;
/// a nested repository as `dir/`). A conflict, an intent-to-add entry or a refused path is
/// `Unsupported` here (the caller asks libgit2).
pub fn collect(
    repo: &git2::Repository,
    scope: Option<&str>,
    global_attributes: bool,
) -> Result<(Dirty, Vec<Change>), Unsupported> {
    scan_with(repo, scope, global_attributes, true).map(|(d, c)| (d, c.unwrap_or_default()))
}

fn scan_with(
    repo: &git2::Repository,
    scope: Option<&str>,
    global_attributes: bool,
    collect: bool,
) -> Result<(Dirty, Option<Vec<Change>>), Unsupported> {
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
    let (parsed, index_mtime) = match crate::files::read_bounded_if_exists(
        &index_path,
        crate::files::INDEX_LIMIT,
        "git index",
    )? {
        Some((bytes, m)) => (parse_index(&bytes)?, (m.mtime(), m.mtime_nsec() as u32)),
        None => (
            index::Parsed {
                entries: Vec::new(),
                refused: 0,
                tree_ext: Vec::new(),
            },
            (0, 0),
        ),
    };
    let index::Parsed {
        entries,
        refused,
        tree_ext,
    } = parsed;
    let scope_dir: Vec<u8> = scope
        .map(|s| s.trim_end_matches('/').as_bytes().to_vec())
        .unwrap_or_default();
    let in_scope = |p: &[u8]| decide::in_scope(&scope_dir, p);
    if collect
        && (refused > 0
            || entries
                .iter()
                .filter(|e| in_scope(&e.path))
                .any(decide::changed_by_itself))
    {
        return Err(unsupported(
            "a conflict, an intent-to-add entry or a refused path".into(),
        ));
    }

    // Conflicts and intent-to-add entries are changes by themselves.
    let mut dirty = refused > 0
        || entries
            .iter()
            .filter(|e| in_scope(&e.path))
            .any(decide::changed_by_itself);

    // HEAD vs index: the index's trees against HEAD's.
    if !dirty {
        dirty = match repo.head().ok().and_then(|h| h.peel_to_tree().ok()) {
            None => entries.iter().any(|e| in_scope(&e.path)),
            Some(head_tree) if same_by_cache_tree(&entries, &scope_dir, &tree_ext, &head_tree) => {
                false
            }
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
                        .and_then(|t| t.id().as_bytes().try_into().ok());
                    decide::scope_tree_differs(ours, theirs)
                }
            }
        };
    }

    let dirty_by_index = dirty;

    let filters = global_attributes
        || filters_may_apply(repo, &workdir)
        || entries.iter().any(|e| e.path.ends_with(b".gitattributes"));
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let git_dir = repo.path().to_path_buf();
    let walked = walk::walk(
        &Walk {
            entries: &entries,
            git_dir: &git_dir,
            index_mtime,
            filters,
            collect,
        },
        &workdir,
        &scope_dir,
        decide::below(&entries, &scope_dir),
        threads,
    )?;
    dirty |= walked.changed;
    let candidates = walked.candidates;
    let mut changes = walked.changes;
    let mut untracked = 0;
    for (rel, is_dir) in candidates {
        let rel_path = Path::new(OsStr::from_bytes(&rel));
        if repo.is_path_ignored(rel_path)? {
            continue;
        }
        if collect {
            let before = changes.len();
            if is_dir {
                list_unignored(repo, &workdir.join(rel_path), &rel, &mut changes)?;
            } else {
                changes.push(rel);
            }
            untracked += usize::from(changes.len() > before);
        } else if !is_dir || holds_unignored(repo, &workdir.join(rel_path), &rel)? {
            untracked += 1;
        }
    }
    let listed = if collect {
        let staged = if dirty_by_index {
            staged_changes(repo, scope)?
        } else {
            Vec::new()
        };
        Some(merge(changes, staged))
    } else {
        None
    };
    Ok((
        Dirty {
            dirty: dirty || untracked > 0,
            untracked,
        },
        listed,
    ))
}

/// HEAD vs index, settled without hashing every tree: the scope's own files against HEAD's,
/// its subfolders by the ids the index's cache-tree records, as git's `diff-index --cached`
/// skips a folder whose cache-tree id is HEAD's. Equal settles it (no change); otherwise, or
/// when a subfolder's cache-tree entry was invalidated, every tree is hashed.
fn same_by_cache_tree(
    entries: &[index::Entry],
    scope_dir: &[u8],
    tree_ext: &[u8],
    head_tree: &git2::Tree<'_>,
) -> bool {
    let theirs = if scope_dir.is_empty() {
        Some(head_tree.id())
    } else {
        head_tree
            .get_path(Path::new(OsStr::from_bytes(scope_dir)))
            .ok()
            .filter(|t| t.filemode() as u32 == MODE_DIR)
            .map(|t| t.id())
    };
    let cached_trees = cache_tree::parse(tree_ext, scope_dir).unwrap_or_default();
    let cached: HashMap<&[u8], [u8; 20]> = cached_trees
        .iter()
        .map(|(p, id)| (p.as_slice(), *id))
        .collect();
    theirs.is_some_and(|t| {
        tree_from_cache(entries, scope_dir, &cached).is_some_and(|ours| ours == t.as_bytes())
    })
}
