//! libgit2's process-wide settings for a clone, and the one memory fix libgit2 needs from
//! outside, in one place (measured on real histories: README.md, "Benchmarks").
//!
//! What was measured and left at libgit2's defaults:
//! - `set_mwindow_size` / `set_mwindow_mapped_limit` (1 GiB / 8 GiB on 64-bit): no effect on
//!   peak memory. During delta resolution libgit2 1.9's `pack_dependency_chain` (pack.c) keeps
//!   the window cursor of each chain's base object open, so those windows stay "in use" and the
//!   limit can never close them: with 8 MiB windows and a 1 MiB limit a rust-lang/cargo clone
//!   still held 16 windows (120 MiB mapped, 68 MiB resident) at its peak, the same as with the
//!   defaults. [`trim_pack_maps`] is what brings that memory down.
//! - `set_mwindow_file_limit`: a clone has one pack.
//! - The object cache (`enable_caching`, `set_cache_max_size`): not where the peak is.

use std::time::Duration;

/// How often, at most, [`trim_pack_maps`] gives back the pages of the pack being indexed.
const TRIM_EVERY: Duration = Duration::from_millis(200);

/// Sets libgit2's process-wide options for a clone. Call before the clone starts.
pub fn tune_for_clone() {
    // Objects are hashed once, when the pack is indexed during the fetch; like git, do not hash
    // them again each time checkout reads them (that alone made checkout ~25% slower).
    git2::opts::strict_hash_verification(false);
}

/// True for the pack a libgit2 indexer is writing (`objects/pack/pack_git2_*`).
fn is_indexer_pack(path: &str) -> bool {
    path.rsplit_once('/')
        .is_some_and(|(dir, name)| dir.ends_with("/objects/pack") && name.starts_with("pack_git2_"))
}

/// Drops the pages of the pack being indexed from this process's resident set (Linux), at most
/// every [`TRIM_EVERY`].
///
/// libgit2's indexer reads the pack it writes through mmap'ed windows it never closes (see the
/// module notes), so every page it touched while hashing objects and resolving deltas stayed
/// resident: the whole pack counted in the clone's peak memory (rust-lang/cargo: 123 MiB peak,
/// 68 of it the pack). git's index-pack reads with pread, its pages stay in the page cache.
/// Dropping our mappings' pages does the same: the bytes stay in the page cache and a later
/// read maps them again (a minor fault, often for 16 pages at once). Measured on the same build
/// with and without it, rust-lang/cargo (median of 5): peak 121 -> 66 MiB for 23,650 instead of
/// 23,102 minor faults; git/git (median of 3): 392 -> 120 MiB.
///
/// Call only from libgit2's transfer-progress callback (the indexer's own thread).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn trim_pack_maps() {
    use std::sync::Mutex;
    use std::time::Instant;
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let now = Instant::now();
    {
        let mut last = LAST
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| now.duration_since(t) < TRIM_EVERY) {
            return;
        }
        *last = Some(now);
    }
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        // start-end perms offset dev inode path
        let mut f = line.splitn(6, ' ');
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let path = f.nth(3).unwrap_or("").trim_start();
        if !perms.starts_with("r--") || !is_indexer_pack(path) {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        let Some(addr) = std::ptr::NonNull::new(a as *mut std::ffi::c_void) else {
            continue;
        };
        // SAFETY: the range is a read-only mapping (libgit2 maps pack windows PROT_READ,
        // MAP_SHARED) of the pack file libgit2's indexer is writing: nothing writes through it,
        // so MADV_DONTNEED only drops page-table entries and the next read faults the same bytes
        // back in from the file (page cache). We run inside the indexer's progress callback on its
        // own thread, so the mapping cannot be unmapped or replaced between reading
        // /proc/self/maps and this call.
        let _ = unsafe {
            nix::sys::mman::madvise(
                addr,
                b.saturating_sub(a),
                nix::sys::mman::MmapAdvise::MADV_DONTNEED,
            )
        };
    }
}

/// Elsewhere the pages stay mapped (no cheap, safe way to find the mappings).
#[cfg(not(target_os = "linux"))]
pub fn trim_pack_maps() {}

#[cfg(test)]
mod tests {
    use super::is_indexer_pack;

    #[test]
    fn only_the_indexers_pack_is_trimmed() {
        assert!(is_indexer_pack(
            "/tmp/c/.git/objects/pack/pack_git2_69614c4f2ad787e7"
        ));
        assert!(is_indexer_pack("/a b/.git/objects/pack/pack_git2_x"));
        assert!(!is_indexer_pack("/tmp/c/.git/objects/pack/pack-0123.pack"));
        assert!(!is_indexer_pack(
            "/tmp/c/.git/objects/pack/pack_git2_x/other"
        ));
        assert!(!is_indexer_pack("/tmp/pack_git2_x"));
        assert!(!is_indexer_pack(""));
    }
}
