//! The scan's decisions, as pure functions of the index entries and the stat data read: what
//! is a change by itself, which folders to read, what a file's stat data settles and what must
//! be hashed (or left to libgit2).

use std::ops::Range;

use super::index::{
    EXT_INTENT_TO_ADD, EXT_SKIP_WORKTREE, Entry, FLAG_ASSUME_VALID, MODE_LINK, STAGE_MASK,
};

/// Whether `path` is `scope` or below it (an empty scope is the whole tree). `scope` has no
/// trailing `/`.
pub(super) fn in_scope(scope: &[u8], path: &[u8]) -> bool {
    scope.is_empty() || (path.starts_with(scope) && path.get(scope.len()) == Some(&b'/'))
}

/// A conflict being resolved (a stage other than 0) or an intent-to-add entry: a change by
/// itself, whatever the files hold.
pub(super) fn changed_by_itself(e: &Entry) -> bool {
    e.flags & STAGE_MASK != 0 || e.ext & EXT_INTENT_TO_ADD != 0
}

/// HEAD vs index below a scope: the index's tree id there against HEAD's (`None`: no tree
/// there). Only present on one side, or different, is a change.
pub(super) fn scope_tree_differs(ours: Option<[u8; 20]>, theirs: Option<[u8; 20]>) -> bool {
    match (ours, theirs) {
        (None, None) => false,
        (Some(a), Some(b)) => a != b,
        _ => true,
    }
}

/// A folder's direct contents in the index: its files (name, entry) and its subfolders (name,
/// the range of entries below it), each sorted by name bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Children<'a> {
    pub files: Vec<(&'a [u8], usize)>,
    pub dirs: Vec<(&'a [u8], Range<usize>)>,
}

/// The files and subfolders of the folder whose entries are `range` (all below it, sorted by
/// path bytes, as git writes the index and `index::parse_index` checks), `skip` the length of
/// its path with the `/` (0 at the top). All entries below one subfolder are contiguous:
/// paths sharing a prefix are.
#[cfg(test)]
pub(super) fn children(entries: &[Entry], range: Range<usize>, skip: usize) -> Children<'_> {
    let mut c = Children::default();
    children_into(entries, range, skip, &mut c);
    c
}

/// [`children`] into `out` (its vectors reused).
pub(super) fn children_into<'a>(
    entries: &'a [Entry],
    range: Range<usize>,
    skip: usize,
    out: &mut Children<'a>,
) {
    out.files.clear();
    out.dirs.clear();
    for i in range {
        let rest = &entries[i].path[skip..];
        match rest.iter().position(|&c| c == b'/') {
            None => out.files.push((rest, i)),
            Some(k) => match out.dirs.last_mut() {
                Some((name, r)) if *name == &rest[..k] => r.end = i + 1,
                _ => out.dirs.push((&rest[..k], i..i + 1)),
            },
        }
    }
    // By name (a folder's entries sort by `name/`, which is not always the names' order).
    out.dirs.sort_by(|a, b| a.0.cmp(b.0));
}

/// The entries below folder `dir` (the empty path: all of them): those starting `dir/`,
/// contiguous in the sorted index.
pub(super) fn below(entries: &[Entry], dir: &[u8]) -> Range<usize> {
    if dir.is_empty() {
        return 0..entries.len();
    }
    let mut key = dir.to_vec();
    key.push(b'/');
    let start = entries.partition_point(|e| e.path.as_slice() < key.as_slice());
    let len = entries[start..]
        .iter()
        .take_while(|e| e.path.starts_with(&key))
        .count();
    start..start + len
}

/// A name of a folder's listing that is not a tracked file: an untracked candidate, unless it
/// is a folder that holds tracked files (that one is read by itself).
pub(super) fn untracked_candidate(is_dir: bool, holds_tracked: bool) -> bool {
    !(is_dir && holds_tracked)
}

/// An entry git does not compare with the work tree: skip-worktree (sparse checkout) or
/// assume-valid (`git update-index --assume-unchanged`).
pub(super) fn not_compared(e: &Entry) -> bool {
    e.ext & EXT_SKIP_WORKTREE != 0 || e.flags & FLAG_ASSUME_VALID != 0
}

/// The stat data of a file, as the index records it (git keeps the low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stat {
    /// `st_mode`: the file type and permission bits.
    pub mode: u32,
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    pub size: u32,
    pub ino: u32,
    pub uid: u32,
    pub gid: u32,
}

impl From<&nix::sys::stat::FileStat> for Stat {
    fn from(st: &nix::sys::stat::FileStat) -> Self {
        Stat {
            mode: st.st_mode,
            mtime: (st.st_mtime, st.st_mtime_nsec as u32),
            ctime: (st.st_ctime, st.st_ctime_nsec as u32),
            size: st.st_size as u32,
            ino: st.st_ino as u32,
            uid: st.st_uid,
            gid: st.st_gid,
        }
    }
}

/// What a tracked file's stat data says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Unchanged: the stat data matches and was recorded after the file last changed.
    Clean,
    /// Changed, without reading it.
    Changed,
    /// A symbolic link to compare by its target's blob id.
    HashLink,
    /// A file to compare by its blob id.
    HashFile,
}

/// Decides from the stat data. A file of another type (a link for a file, a folder), or whose
/// executable bit differs from the entry's mode, is changed. Matching stat data settles it,
/// unless the file changed in the same instant as the index was written or later ("racily
/// clean", git's rule): then it is hashed. A different size is a change, unless the recorded
/// size proves nothing (`size_unsure`; see [`step`], which is what the scan calls).
pub(super) fn after_stat(e: &Entry, st: &Stat, index_mtime: (i64, u32), size_unsure: bool) -> Step {
    let fmt = st.mode & nix::libc::S_IFMT;
    let link = e.mode == MODE_LINK;
    let kind_ok = if link {
        fmt == nix::libc::S_IFLNK
    } else {
        fmt == nix::libc::S_IFREG
    };
    if !kind_ok || (!link && (st.mode & 0o100 != 0) != (e.mode == 0o100755)) {
        return Step::Changed;
    }
    let stat_same = st.mtime == e.mtime
        && st.ctime == e.ctime
        && st.size == e.size
        && st.ino == e.ino
        && st.uid == e.uid
        && st.gid == e.gid;
    let racy = st.mtime >= index_mtime;
    if stat_same && !racy {
        Step::Clean
    } else if link {
        Step::HashLink
    } else if st.size != e.size && !size_unsure {
        Step::Changed
    } else {
        Step::HashFile
    }
}

/// The blob id of the empty file.
pub(super) const EMPTY_BLOB: [u8; 20] = [
    0xe6, 0x9d, 0xe2, 0x9b, 0xb2, 0xd1, 0xd6, 0x43, 0x4b, 0x8b, 0x29, 0xae, 0x77, 0x5a, 0xd8, 0xc2,
    0xe4, 0x8c, 0x53, 0x91,
];

/// What `git status` makes of a file's stat data (git's `ie_match_stat`, then `ie_modified`
/// while it refreshes the index): a size other than the recorded one is a change without
/// reading the file, whatever the checkout filters (the index records the size of the file as
/// checked out, not the blob's); other stat data that differs, or a racily clean entry, is
/// settled by the content. A zero size recorded for a blob that is not empty (git's smudged
/// racily clean entry, or an entry not refreshed since `git read-tree`) settles nothing: the
/// content decides, as in git.
pub(super) fn step(e: &Entry, st: &Stat, index_mtime: (i64, u32)) -> Step {
    if e.size == 0 && e.id != EMPTY_BLOB {
        // Racy whatever the times say, and the size proves nothing.
        after_stat(e, st, (i64::MIN, 0), true)
    } else {
        after_stat(e, st, index_mtime, false)
    }
}

/// A submodule's folder that holds no `.git` was never populated: git compares nothing in it
/// (`ce_compare_gitlink` finds no HEAD, `is_submodule_modified` nothing checked out), so it is
/// clean. Anything else (not a folder, or populated) is left to libgit2.
pub(super) fn unpopulated_submodule(is_dir: bool, holds_dot_git: bool) -> bool {
    is_dir && !holds_dot_git
}

/// What hashing a file said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hashed {
    Clean,
    Changed,
    /// Its bytes differ from the blob, but checkout filters may explain it: libgit2 decides.
    AskLibgit2,
}

/// `is_file`: what was opened is still a regular file; `same`: its blob id is the entry's;
/// `filters`: git's conversion to a blob could change this file's bytes (see
/// `walk::converts`).
pub(super) fn after_hash(is_file: bool, same: bool, filters: bool) -> Hashed {
    if !is_file {
        Hashed::Changed
    } else if same {
        Hashed::Clean
    } else if filters {
        Hashed::AskLibgit2
    } else {
        Hashed::Changed
    }
}

/// A submodule is changed when libgit2 reports its path (`status_clean`: it does not), or
/// its work tree differs from its commit, holds changes, or untracked files.
pub(super) fn submodule_changed(status_clean: bool, sub: Option<git2::SubmoduleStatus>) -> bool {
    let sub = sub.is_some_and(|s| {
        s.is_wd_modified()
            || s.is_wd_wd_modified()
            || s.is_wd_untracked()
            || s.contains(git2::SubmoduleStatus::WD_INDEX_MODIFIED)
    });
    !status_clean || sub
}

#[cfg(test)]
mod tests {
    use git2::SubmoduleStatus as S;

    use super::*;
    use crate::git::status::index::MODE_GITLINK;

    fn entry(path: &str, mode: u32) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            mode,
            id: [0; 20],
            mtime: (100, 5),
            ctime: (100, 5),
            size: 7,
            ino: 42,
            uid: 1000,
            gid: 1000,
            flags: 0,
            ext: 0,
        }
    }

    /// The stat data `entry` recorded, of a regular file with these permission bits.
    fn stat_of(e: &Entry, kind: u32, perm: u32) -> Stat {
        Stat {
            mode: kind | perm,
            mtime: e.mtime,
            ctime: e.ctime,
            size: e.size,
            ino: e.ino,
            uid: e.uid,
            gid: e.gid,
        }
    }

    const REG: u32 = nix::libc::S_IFREG;
    const LNK: u32 = nix::libc::S_IFLNK;
    const DIR: u32 = nix::libc::S_IFDIR;
    /// The index was written well after the files changed.
    const LATER: (i64, u32) = (200, 0);

    #[test]
    fn a_scope_holds_the_paths_below_it_only() {
        assert!(in_scope(b"", b"anything"));
        assert!(in_scope(b"src", b"src/a"));
        assert!(in_scope(b"src", b"src/a/b"));
        assert!(!in_scope(b"src", b"src"));
        assert!(!in_scope(b"src", b"srcx/a"));
        assert!(!in_scope(b"src", b"a"));
    }

    #[test]
    fn conflicts_and_intent_to_add_are_changes_by_themselves() {
        let mut e = entry("a", 0o100644);
        assert!(!changed_by_itself(&e));
        e.flags = 0x1000; // stage 1
        assert!(changed_by_itself(&e));
        e.flags = 0;
        e.ext = EXT_INTENT_TO_ADD;
        assert!(changed_by_itself(&e));
        e.ext = EXT_SKIP_WORKTREE;
        assert!(!changed_by_itself(&e));
    }

    #[test]
    fn a_scope_tree_differs_when_it_is_on_one_side_only_or_not_the_same() {
        assert!(!scope_tree_differs(None, None));
        assert!(!scope_tree_differs(Some([1; 20]), Some([1; 20])));
        assert!(scope_tree_differs(Some([1; 20]), Some([2; 20])));
        assert!(scope_tree_differs(Some([1; 20]), None));
        assert!(scope_tree_differs(None, Some([1; 20])));
    }

    #[test]
    fn a_folder_lists_its_files_and_the_ranges_of_its_subfolders() {
        let entries = vec![
            entry("a", 0o100644),
            entry("d-x/y", 0o100644),
            entry("d/e/f/g", 0o100644),
            entry("d/h", 0o100644),
            entry("d/i", 0o100644),
            entry("d.txt", 0o100644),
            entry("x/y", 0o100644),
        ];
        let top = children(&entries, below(&entries, b""), 0);
        assert_eq!(top.files, [(&b"a"[..], 0), (b"d.txt", 5)]);
        assert_eq!(
            top.dirs,
            [(&b"d"[..], 2..5), (b"d-x", 1..2), (b"x", 6..7)],
            "by name, each with all the entries below it"
        );
        assert_eq!(below(&entries, b"d"), 2..5, "not d-x, d.txt");
        let d = children(&entries, below(&entries, b"d"), 2);
        assert_eq!(d.files, [(&b"h"[..], 3), (b"i", 4)]);
        assert_eq!(d.dirs, [(&b"e"[..], 2..3)]);
        let e = children(&entries, below(&entries, b"d/e"), 4);
        assert_eq!(e.files, []);
        assert_eq!(e.dirs, [(&b"f"[..], 2..3)]);
        assert!(below(&entries, b"nowhere").is_empty());
        assert_eq!(below(&entries, b"x"), 6..7);
    }

    #[test]
    fn a_folder_with_tracked_files_is_read_not_counted_untracked() {
        assert!(untracked_candidate(false, false));
        assert!(
            untracked_candidate(false, true),
            "a file named like a folder"
        );
        assert!(untracked_candidate(true, false));
        assert!(!untracked_candidate(true, true));
    }

    #[test]
    fn skip_worktree_and_assume_valid_entries_are_not_compared() {
        let mut e = entry("a", 0o100644);
        assert!(!not_compared(&e));
        e.ext = EXT_SKIP_WORKTREE;
        assert!(not_compared(&e));
        e.ext = 0;
        e.flags = FLAG_ASSUME_VALID;
        assert!(not_compared(&e));
    }

    #[test]
    fn matching_stat_data_settles_a_file_unless_it_is_racy() {
        let e = entry("a", 0o100644);
        let st = stat_of(&e, REG, 0o644);
        assert_eq!(after_stat(&e, &st, LATER, false), Step::Clean);
        // Written in the same instant as the index, or after: racily clean, so hashed.
        assert_eq!(after_stat(&e, &st, e.mtime, false), Step::HashFile);
        assert_eq!(after_stat(&e, &st, (100, 4), false), Step::HashFile);
        assert_eq!(after_stat(&e, &st, (100, 6), false), Step::Clean);
    }

    #[test]
    fn other_stat_data_is_hashed_and_another_size_is_a_change_without_filters() {
        let e = entry("a", 0o100644);
        for change in [
            |s: &mut Stat| s.mtime.1 += 1,
            |s: &mut Stat| s.ctime.0 += 1,
            |s: &mut Stat| s.ino += 1,
            |s: &mut Stat| s.uid += 1,
            |s: &mut Stat| s.gid += 1,
        ] {
            let mut st = stat_of(&e, REG, 0o644);
            change(&mut st);
            assert_eq!(after_stat(&e, &st, LATER, false), Step::HashFile, "{st:?}");
        }
        let mut st = stat_of(&e, REG, 0o644);
        st.size += 1;
        assert_eq!(after_stat(&e, &st, LATER, false), Step::Changed);
        assert_eq!(after_stat(&e, &st, LATER, true), Step::HashFile);
    }

    #[test]
    fn another_file_type_or_executable_bit_is_a_change() {
        let file = entry("a", 0o100644);
        let exe = entry("a", 0o100755);
        let link = entry("a", MODE_LINK);
        let c = Step::Changed;
        assert_eq!(
            after_stat(&file, &stat_of(&file, LNK, 0o777), LATER, true),
            c
        );
        assert_eq!(
            after_stat(&file, &stat_of(&file, DIR, 0o755), LATER, true),
            c
        );
        assert_eq!(
            after_stat(&file, &stat_of(&file, REG, 0o744), LATER, true),
            c
        );
        assert_eq!(after_stat(&exe, &stat_of(&exe, REG, 0o644), LATER, true), c);
        assert_eq!(
            after_stat(&exe, &stat_of(&exe, REG, 0o700), LATER, true),
            Step::Clean
        );
        assert_eq!(
            after_stat(&link, &stat_of(&link, REG, 0o644), LATER, true),
            c
        );
        // A link's permission bits mean nothing.
        let st = stat_of(&link, LNK, 0o777);
        assert_eq!(after_stat(&link, &st, LATER, false), Step::Clean);
        assert_eq!(after_stat(&link, &st, link.mtime, false), Step::HashLink);
        let mut bigger = st;
        bigger.size += 3;
        assert_eq!(after_stat(&link, &bigger, LATER, false), Step::HashLink);
        let gitlink = entry("sub", MODE_GITLINK);
        assert_eq!(
            after_stat(&gitlink, &stat_of(&gitlink, REG, 0o644), LATER, false),
            Step::Clean,
            "only the mode bits decide; submodules never reach this"
        );
    }

    #[test]
    fn a_hash_that_differs_goes_to_libgit2_only_when_filters_may_apply() {
        assert_eq!(after_hash(true, true, false), Hashed::Clean);
        assert_eq!(after_hash(true, true, true), Hashed::Clean);
        assert_eq!(after_hash(true, false, false), Hashed::Changed);
        assert_eq!(after_hash(true, false, true), Hashed::AskLibgit2);
        assert_eq!(after_hash(false, false, true), Hashed::Changed);
    }

    #[test]
    fn a_submodule_is_changed_by_its_status_or_its_work_tree() {
        let clean = S::IN_HEAD | S::IN_INDEX | S::IN_CONFIG | S::IN_WD;
        assert!(!submodule_changed(true, None));
        assert!(!submodule_changed(true, Some(clean)));
        assert!(submodule_changed(false, Some(clean)));
        for wd in [
            S::WD_MODIFIED,
            S::WD_WD_MODIFIED,
            S::WD_UNTRACKED,
            S::WD_INDEX_MODIFIED,
        ] {
            assert!(submodule_changed(true, Some(clean | wd)), "{wd:?}");
        }
    }

    #[test]
    fn another_size_is_a_change_unless_the_recorded_size_is_a_smudged_zero() {
        let e = entry("a", 0o100644);
        let mut st = stat_of(&e, REG, 0o644);
        st.size += 1;
        assert_eq!(step(&e, &st, LATER), Step::Changed, "filters or not");
        // Zero recorded for a blob that is not empty: the content decides, even when every
        // stat field matches.
        let mut z = entry("a", 0o100644);
        z.size = 0;
        let st = stat_of(&z, REG, 0o644);
        assert_eq!(step(&z, &st, LATER), Step::HashFile);
        let mut bigger = st;
        bigger.size = 9;
        assert_eq!(step(&z, &bigger, LATER), Step::HashFile);
        assert_eq!(step(&z, &stat_of(&z, LNK, 0o777), LATER), Step::Changed);
        // The empty blob's zero size is a real one.
        z.id = EMPTY_BLOB;
        assert_eq!(step(&z, &st, LATER), Step::Clean);
        assert_eq!(step(&z, &bigger, LATER), Step::Changed);
        assert_eq!(step(&z, &st, z.mtime), Step::HashFile, "racy");
    }

    #[test]
    fn only_a_submodule_folder_without_git_is_settled_clean() {
        assert!(unpopulated_submodule(true, false));
        assert!(!unpopulated_submodule(true, true));
        assert!(!unpopulated_submodule(false, false));
        assert!(!unpopulated_submodule(false, true));
    }
}
