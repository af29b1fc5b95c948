//! git's cache-tree index extension ("TREE"): the tree ids git recorded for the folders it has
//! not invalidated since, and a folder's tree id built from them, as `diff-index --cached`
//! uses them to skip folders that are HEAD's.

use sha1::{Digest, Sha1};

use super::index::{Entry, MODE_GITLINK, MODE_LINK};

/// git's cache-tree extension: folders in pre-order, each `name NUL entry_count SP
/// subtree_count LF` then, unless `entry_count` is -1 (invalidated), its tree id. Returns the
/// valid ids of the folders directly inside `dir` (the empty path: the top), with their full
/// paths (no other path is built); `None` when it is not well-formed.
pub(super) fn parse(mut d: &[u8], dir: &[u8]) -> Option<Vec<(Vec<u8>, [u8; 20])>> {
    fn upto<'a>(d: &mut &'a [u8], end: u8) -> Option<&'a [u8]> {
        let k = d.iter().position(|&c| c == end)?;
        let (head, rest) = d.split_at(k);
        *d = &rest[1..];
        Some(head)
    }
    let number = |s: &[u8]| std::str::from_utf8(s).ok()?.parse::<i64>().ok();
    let parts: Vec<&[u8]> = if dir.is_empty() {
        Vec::new()
    } else {
        dir.split(|&c| c == b'/').collect()
    };
    let mut out = Vec::new();
    // The open folders: (depth, whether its path is a leading part of `dir`, children still
    // to come).
    let mut open: Vec<(usize, bool, i64)> = Vec::new();
    loop {
        let name = upto(&mut d, 0)?;
        let count = number(upto(&mut d, b' ')?)?;
        let subtrees = number(upto(&mut d, b'\n')?)?;
        // Whether this folder is directly inside `dir` (then its id is kept).
        let (depth, on_path, inside) = match open.last_mut() {
            None if name.is_empty() => (0, true, false),
            None => return None,
            Some((depth, on_path, left)) => {
                *left -= 1;
                let inside = *on_path && *depth == parts.len();
                let here = *on_path && parts.get(*depth) == Some(&name);
                (*depth + 1, here, inside)
            }
        };
        if count >= 0 {
            let id: [u8; 20] = d.get(..20)?.try_into().ok()?;
            d = &d[20..];
            if inside {
                let mut p = dir.to_vec();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(name);
                out.push((p, id));
            }
        }
        open.push((depth, on_path, subtrees));
        while open.last().is_some_and(|(_, _, left)| *left <= 0) {
            open.pop();
        }
        if open.is_empty() {
            return Some(out);
        }
    }
}

/// The tree id of folder `dir` (empty: the root) built as git's `diff-index --cached` sees it:
/// its own files from the entries, each subfolder by the id the cache-tree records for it.
/// `None` when a subfolder has no valid cache-tree id (then the whole tree is hashed).
pub(super) fn tree_from_cache(
    entries: &[Entry],
    dir: &[u8],
    cached: &std::collections::HashMap<&[u8], [u8; 20]>,
) -> Option<[u8; 20]> {
    let skip = if dir.is_empty() { 0 } else { dir.len() + 1 };
    let start = entries.partition_point(|e| e.path.as_slice() < dir);
    let mut body = Vec::new();
    let mut last_dir: &[u8] = &[];
    for e in &entries[start..] {
        let below = e.path.starts_with(dir) && e.path.get(dir.len()) == Some(&b'/');
        if !(dir.is_empty() || below) {
            if e.path.starts_with(dir) {
                continue; // `dir.x` or `dir-x` sorts between `dir` and `dir/`
            }
            break;
        }
        let rest = &e.path[skip..];
        match rest.iter().position(|&c| c == b'/') {
            None => {
                let mode: &[u8] = match e.mode {
                    0o100644 => b"100644",
                    0o100755 => b"100755",
                    MODE_LINK => b"120000",
                    MODE_GITLINK => b"160000",
                    _ => return None,
                };
                body.extend_from_slice(mode);
                body.push(b' ');
                body.extend_from_slice(rest);
                body.push(0);
                body.extend_from_slice(&e.id);
            }
            Some(k) => {
                let sub = &rest[..k];
                if sub == last_dir && !last_dir.is_empty() {
                    continue;
                }
                last_dir = sub;
                let id = cached.get(&e.path[..skip + k])?;
                body.extend_from_slice(b"40000 ");
                body.extend_from_slice(sub);
                body.push(0);
                body.extend_from_slice(id);
            }
        }
    }
    let mut h = Sha1::new();
    h.update(format!("tree {}\0", body.len()).as_bytes());
    h.update(&body);
    Some(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::super::index::fixtures::{raw, small_tree};
    use super::*;

    fn hex(id: &[u8; 20]) -> String {
        id.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_folder_from_its_files_and_its_subfolders_cache_tree_ids() {
        let entries = small_tree();
        let d = raw("94b21c040409acd7d4bc4936cecdc780140e488b");
        let de = raw("eb419bb6d84a1cb33305c7398c075ebc821e7c41");
        let mut cached = std::collections::HashMap::new();
        assert_eq!(tree_from_cache(&entries, b"", &cached), None, "d unknown");
        cached.insert(&b"d"[..], d);
        let root = tree_from_cache(&entries, b"", &cached).unwrap();
        assert_eq!(hex(&root), "1956e18db1433f721cfab59c8a12eadb5a046fa8");
        assert_eq!(
            tree_from_cache(&entries, b"d", &cached),
            None,
            "d/e unknown"
        );
        cached.insert(&b"d/e"[..], de);
        assert_eq!(tree_from_cache(&entries, b"d", &cached), Some(d));
        // A wrong id recorded for a subfolder gives another tree (then all is hashed).
        cached.insert(&b"d"[..], de);
        assert_ne!(tree_from_cache(&entries, b"", &cached), Some(root));

        // The extension: root (4 entries, 1 subtree) > d (2, 1) > e (1, 0); e invalidated.
        let mut ext = b"\x004 1\n".to_vec();
        ext.extend_from_slice(&root);
        ext.extend_from_slice(b"d\x002 1\n");
        ext.extend_from_slice(&d);
        ext.extend_from_slice(b"e\x00-1 0\n");
        assert_eq!(parse(&ext, b""), Some(vec![(b"d".to_vec(), d)]));
        assert_eq!(parse(&ext, b"d"), Some(vec![]), "d/e is invalidated");
        assert_eq!(parse(&ext, b"x"), Some(vec![]));
        assert_eq!(parse(&ext[..ext.len() - 3], b""), None, "truncated");
        assert_eq!(parse(b"x\x001 0\n", b""), None, "the root has no name");
    }
}
