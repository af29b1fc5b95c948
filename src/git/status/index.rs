//! git's index file (versions 2 to 4) as the scan reads it, and the tree and blob ids git
//! would compute: pure functions of bytes.

use sha1::{Digest, Sha1};

use super::{Unsupported, damaged, unsupported};

pub(super) const MODE_DIR: u32 = 0o040000;
pub(super) const MODE_LINK: u32 = 0o120000;
pub(super) const MODE_GITLINK: u32 = 0o160000;
pub(super) const EXT_INTENT_TO_ADD: u16 = 1 << 13;
pub(super) const EXT_SKIP_WORKTREE: u16 = 1 << 14;
pub(super) const STAGE_MASK: u16 = 0x3000;

pub(super) struct Entry {
    pub path: Vec<u8>,
    pub mode: u32,
    pub id: [u8; 20],
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    pub size: u32,
    pub ino: u32,
    pub uid: u32,
    pub gid: u32,
    pub flags: u16,
    pub ext: u16,
}

pub(super) const FLAG_ASSUME_VALID: u16 = 0x8000;
pub(super) const FLAG_EXTENDED: u16 = 0x4000;

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
    if plain_path(path) {
        return true;
    }
    if path.is_empty() {
        return false;
    }
    let mut parts = path.split(|&c| c == b'/').peekable();
    while let Some(part) = parts.next() {
        if plain_component(part) {
            continue;
        }
        let leaf = parts.peek().is_none();
        let m = (leaf && mode == MODE_LINK).then_some(gix_validate::path::component::Mode::Symlink);
        if gix_validate::path::component(part.into(), m, opts).is_err() {
            return false;
        }
    }
    true
}

/// A component every rule of [`valid_path`] accepts, told without the full check (most
/// names): not empty, not starting with `.` (so not `.`, `..`, `.git` in any spelling, nor
/// `.gitmodules`), ASCII (so no HFS+ ignorable code point) and without `~` (so no NTFS short
/// name such as `git~1` or `gitmod~1`). Everything else goes through `gix_validate`.
fn plain_component(part: &[u8]) -> bool {
    part.first().is_some_and(|&c| c != b'.') && part.iter().all(|&c| c < 0x80 && c != b'~')
}

/// Where the first NUL is (a word at a time, as `memchr`).
fn nul_in(b: &[u8]) -> Option<usize> {
    std::ffi::CStr::from_bytes_until_nul(b)
        .ok()
        .map(|c| c.to_bytes().len())
}

/// A whole path every rule of [`valid_path`] accepts, in one pass: each component
/// [`plain_component`] (not empty, no leading `.`, ASCII without `~`).
fn plain_path(path: &[u8]) -> bool {
    let mut start = true;
    for &c in path {
        if c >= 0x80 || c == b'~' || (start && (c == b'.' || c == b'/')) {
            return false;
        }
        start = c == b'/';
    }
    !start
}

/// What the index holds: its entries, how many were left out because git's rules refuse their
/// path (see [`valid_path`]), and its cache-tree extension ("TREE"), empty if it has none (read
/// by `cache_tree::parse`).
pub(super) struct Parsed {
    pub entries: Vec<Entry>,
    pub refused: usize,
    pub tree_ext: Vec<u8>,
}

/// Reads git's index file (versions 2, 3 and 4). The trailing checksum is not
/// verified, as git does not verify it on reads either; a split or sparse index is left to
/// libgit2. Nothing is sized by the header alone: the entry count is capped by what the
/// file's size can hold.
pub(super) fn parse_index(b: &[u8]) -> Result<Parsed, Unsupported> {
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
    let (mut at_start, mut prev_stage) = (0usize, 0u16);
    for _ in 0..count {
        let start = at;
        // The fixed part: ten 32-bit stat fields, the id, the flags.
        let head: &[u8; 62] = b
            .get(start..start + 62)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| damaged("truncated index".into()))?;
        let f = |i: usize| {
            u32::from_be_bytes([
                head[4 * i],
                head[4 * i + 1],
                head[4 * i + 2],
                head[4 * i + 3],
            ])
        };
        let id: [u8; 20] = head[40..60].try_into().unwrap_or([0; 20]);
        let flags = u16::from_be_bytes([head[60], head[61]]);
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
            let end = nul_in(&b[at..]).ok_or_else(|| damaged("truncated index".into()))?;
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
                .and_then(nul_in)
                .ok_or_else(|| damaged("truncated index".into()))?;
            let p = b[at..at + end].to_vec();
            // Entries are padded with 1 to 8 NULs to a multiple of 8 bytes.
            at = start + ((at - start + end + 8) & !7);
            p
        };
        // git refuses an index whose entries are not sorted by path, then stage
        // (`check_ce_order`: "unordered stage entries in index"); the scan relies on it.
        let stage = flags & STAGE_MASK;
        if at_start > 0 {
            match path.as_slice().cmp(prev.as_slice()) {
                std::cmp::Ordering::Greater => {}
                std::cmp::Ordering::Equal if prev_stage != 0 && stage > prev_stage => {}
                _ => return Err(damaged("unordered stage entries in index".into())),
            }
        }
        at_start += 1;
        prev_stage = stage;
        prev.clone_from(&path);
        let mode = f(6);
        if !valid_path(&path, mode) {
            refused += 1;
            continue;
        }
        out.push(Entry {
            ctime: (i64::from(f(0)), f(1)),
            mtime: (i64::from(f(2)), f(3)),
            ino: f(5),
            mode,
            uid: f(7),
            gid: f(8),
            size: f(9),
            id,
            flags,
            ext,
            path,
        });
    }
    // Extensions: a split index ("link") or a sparse index ("sdir") is not read here.
    let mut tree_ext = Vec::new();
    while at + 8 <= b.len().saturating_sub(20) {
        let sig = &b[at..at + 4];
        if sig == b"link" || sig == b"sdir" {
            return Err(unsupported("split or sparse index".into()));
        }
        let len = be32(b, at + 4)? as usize;
        if sig == b"TREE"
            && let Some(data) = b.get(at + 8..(at + 8).saturating_add(len))
        {
            tree_ext = data.to_vec();
        }
        at += 8 + len;
    }
    Ok(Parsed {
        entries: out,
        refused,
        tree_ext,
    })
}

/// Hashes the tree of the sorted entries, recording every folder's tree id (path, id), the
/// root's (empty path) last. Iterative: a folder open per depth on an explicit stack, so a deep
/// path cannot exhaust the thread's stack.
pub(super) fn hash_tree(
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

pub(super) fn blob_id(data: &[u8]) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    h.finalize().into()
}

/// Index entries for tests here and in `cache_tree`.
#[cfg(test)]
pub(super) mod fixtures {
    use super::{Entry, MODE_LINK};

    /// The 20 bytes of a hex object id.
    pub fn raw(h: &str) -> [u8; 20] {
        let mut id = [0u8; 20];
        for (i, b) in id.iter_mut().enumerate() {
            *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
        }
        id
    }

    /// An entry with zero stat data.
    pub fn entry(path: &str, mode: u32, id: &str) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            mode,
            id: raw(id),
            mtime: (0, 0),
            ctime: (0, 0),
            size: 0,
            ino: 0,
            uid: 0,
            gid: 0,
            flags: 0,
            ext: 0,
        }
    }

    /// Files, an executable, a link and nested folders: `git write-tree` gives 1956e18d for
    /// them, 94b21c04 for `d` and eb419bb6 for `d/e`.
    pub fn small_tree() -> [Entry; 4] {
        let empty = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";
        [
            entry("a", 0o100644, empty),
            entry("d/b", 0o100755, empty),
            entry(
                "d/e/c",
                0o100644,
                "c1b0730e0133447badcfd47fd144e254807b06e1",
            ),
            entry("l", MODE_LINK, "2e65efe2a145dda7ee51d1741299f848e5bf752e"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::entry;
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

    /// The shortcut never accepts a component the full rules refuse: every component of up
    /// to four characters from an alphabet of the characters the rules look at.
    #[test]
    fn plain_components_are_ones_gits_rules_accept() {
        let alphabet: [&[u8]; 14] = [
            b"g",
            b"G",
            b"i",
            b"t",
            b"m",
            b"o",
            b".",
            b"~",
            b"1",
            b" ",
            b":",
            b"a",
            "\u{200c}".as_bytes(),
            b"\\",
        ];
        let mut words: Vec<Vec<u8>> = vec![Vec::new()];
        let mut all = Vec::new();
        for _ in 0..4 {
            words = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| [w.as_slice(), c].concat()))
                .collect();
            all.extend(words.iter().cloned());
        }
        all.extend([
            b"git~1".to_vec(),
            b"GIT~1".to_vec(),
            b"gitmod~1".to_vec(),
            b"gi7eba~9".to_vec(),
            b".gitmodules".to_vec(),
            b"main.rs".to_vec(),
        ]);
        let mut plain = 0;
        for w in &all {
            assert_eq!(
                plain_path(w),
                plain_component(w),
                "{:?}",
                String::from_utf8_lossy(w)
            );
            if plain_component(w) {
                plain += 1;
                for mode in [0o100644, MODE_LINK] {
                    assert!(
                        valid_path(w, mode) && valid_path(&[b"d/", w.as_slice()].concat(), mode),
                        "{:?}",
                        String::from_utf8_lossy(w)
                    );
                }
            }
        }
        assert!(
            plain > 1000,
            "the shortcut takes the common names ({plain})"
        );
        assert!(!plain_component(b"git~1") && !plain_component(b".git"));
    }

    /// A v2 index of `paths` (stage 0 unless `path:N`), zero stat data and ids.
    fn index_of(paths: &[&str]) -> Vec<u8> {
        let mut b = b"DIRC".to_vec();
        b.extend_from_slice(&2u32.to_be_bytes());
        b.extend_from_slice(&(paths.len() as u32).to_be_bytes());
        for p in paths {
            let (path, stage) = p
                .split_once(':')
                .map_or((*p, 0u16), |(p, s)| (p, s.parse().unwrap()));
            let start = b.len();
            b.extend_from_slice(&[0u8; 24]);
            b.extend_from_slice(&0o100644u32.to_be_bytes());
            b.extend_from_slice(&[0u8; 12]);
            b.extend_from_slice(&[0u8; 20]);
            b.extend_from_slice(&((stage << 12) | path.len() as u16).to_be_bytes());
            b.extend_from_slice(path.as_bytes());
            let len = b.len() - start;
            b.resize(start + ((len + 8) & !7), 0);
        }
        b.extend_from_slice(&[0u8; 20]);
        b
    }

    #[test]
    fn an_index_out_of_order_is_damaged_as_git_finds_it() {
        assert_eq!(
            parse_index(&index_of(&["a", "b/c", "b0"]))
                .unwrap()
                .entries
                .len(),
            3
        );
        assert_eq!(
            parse_index(&index_of(&["a:1", "a:2", "a:3"]))
                .unwrap()
                .entries
                .len(),
            3
        );
        for bad in [
            &["b", "a"][..],
            &["a", "a"],
            &["a:2", "a:1"],
            &["b/c", "b/c/d", "b/a"],
        ] {
            let e = parse_index(&index_of(bad)).err().unwrap();
            assert!(
                e.damaged && e.reason.contains("unordered"),
                "{bad:?}: {e:?}"
            );
        }
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

    fn hex(id: &[u8; 20]) -> String {
        id.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn blob_ids_are_gits() {
        assert_eq!(
            hex(&blob_id(b"")),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        assert_eq!(
            hex(&blob_id(b"x")),
            "c1b0730e0133447badcfd47fd144e254807b06e1"
        );
    }

    /// The ids `git write-tree` gives for the same index (files, an executable, a link,
    /// nested folders).
    #[test]
    fn tree_ids_are_the_ones_git_writes() {
        let entries = fixtures::small_tree();
        let mut trees = Vec::new();
        let root = hash_tree(&entries, &mut trees).unwrap();
        assert_eq!(hex(&root), "1956e18db1433f721cfab59c8a12eadb5a046fa8");
        let id_of = |p: &str| {
            trees
                .iter()
                .find(|(t, _)| t == p.as_bytes())
                .map(|(_, id)| hex(id))
        };
        assert_eq!(
            id_of("d").as_deref(),
            Some("94b21c040409acd7d4bc4936cecdc780140e488b")
        );
        assert_eq!(
            id_of("d/e").as_deref(),
            Some("eb419bb6d84a1cb33305c7398c075ebc821e7c41")
        );
        assert_eq!(
            trees.last().map(|(p, _)| p.len()),
            Some(0),
            "the root comes last"
        );
        let mut none = Vec::new();
        assert_eq!(
            hex(&hash_tree(&[], &mut none).unwrap()),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
    }

    #[test]
    fn a_mode_git_never_writes_is_unsupported() {
        let e = entry("a", 0o100600, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
        let err = hash_tree(&[e], &mut Vec::new()).err().unwrap();
        assert!(!err.damaged && err.reason == "index mode 100600", "{err:?}");
    }
}
