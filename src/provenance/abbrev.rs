//! Abbreviated object ids as git prints them in `describe` (`-g<abbrev>`).

use git2::Oid;

use super::describe::Unknown;

/// git's abbreviation: with `core.abbrev` unset or `auto`, about half the bits of the number
/// of packed objects in hex digits (at least 7), and always long enough to be unique.
pub(super) fn abbreviate(repo: &git2::Repository, id: Oid) -> Result<String, Unknown> {
    let hex = id.to_string();
    let configured = repo
        .config()
        .ok()
        .and_then(|c| c.get_string("core.abbrev").ok())
        .filter(|v| !v.eq_ignore_ascii_case("auto"));
    let unique = repo
        .find_object(id, None)
        .and_then(|o| o.short_id())
        .ok()
        .and_then(|b| b.as_str().ok().map(str::len));
    let unique = match (unique, &configured) {
        (Some(u), _) => u,
        (None, Some(_)) => hex.len(),
        (None, None) => 7,
    };
    let len = if configured.is_some() {
        unique
    } else {
        unique.max(auto_len(repo))
    };
    Ok(hex[..len.min(hex.len())].to_owned())
}

/// `find_unique_abbrev`'s starting length: `ceil((msb(count) + 1) / 2)`, at least 7, where
/// count is the number of objects in the packs (their `.idx` headers).
fn auto_len(repo: &git2::Repository) -> usize {
    let mut count: u64 = 0;
    if let Ok(dir) = std::fs::read_dir(repo.commondir().join("objects/pack")) {
        for e in dir.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "idx") {
                count += idx_objects(&path).unwrap_or(0);
            }
        }
    }
    let bits = if count == 0 {
        1
    } else {
        64 - count.leading_zeros() as usize
    };
    bits.div_ceil(2).max(7)
}

/// The object count of a pack index (v1 or v2): the last entry of its fan-out table. Only a
/// regular file is read (opened without blocking: a FIFO is skipped), and only its first 1,032
/// bytes.
fn idx_objects(path: &std::path::Path) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = super::guard::open_regular(path)?;
    let mut head = [0u8; 8];
    f.read_exact(&mut head).ok()?;
    let fanout_at = if head[..4] == [0xff, b't', b'O', b'c'] {
        8
    } else {
        0
    };
    f.seek(SeekFrom::Start(fanout_at + 255 * 4)).ok()?;
    let mut last = [0u8; 4];
    f.read_exact(&mut last).ok()?;
    Some(u32::from_be_bytes(last) as u64)
}
