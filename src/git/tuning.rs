//! libgit2's and malloc's process-wide settings for a clone, and the memory fixes libgit2 and
//! glibc need from outside, in one place (measured on real histories: README.md, "Benchmarks";
//! `bench/rss.py` shows where a clone's peak is, phase by phase).
//!
//! What was measured and left at libgit2's defaults:
//! - `set_mwindow_size` / `set_mwindow_mapped_limit` (1 GiB / 8 GiB on 64-bit): no effect on
//!   peak memory. During delta resolution libgit2 1.9's `pack_dependency_chain` (pack.c) keeps
//!   the window cursor of each chain's base object open, so those windows stay "in use" and the
//!   limit can never close them: with 8 MiB windows and a 1 MiB limit a rust-lang/cargo clone
//!   still held 16 windows (120 MiB mapped, 68 MiB resident) at its peak, the same as with the
//!   defaults. [`trim_pack_maps`] is what brings that memory down (libgit2's indexer, now the
//!   fallback, and checkout; the parallel indexer bounds its own map, `packindex::mapped`).
//! - `set_mwindow_file_limit`: a clone has one pack.
//! - The object cache (`enable_caching`, `set_cache_max_size`): not where the peak is.
//!
//! malloc ([`tune_for_clone`], [`release_freed_memory`]): before the parallel indexer, glibc's
//! tunables changed nothing that mattered (ripgrep, peak 32.2 MB: `arena_max=1` no change,
//! `mmap_threshold=65536` 31.4 MB), because one thread did all the work. With gix-pack's
//! threads they do: its delta tree and the threads' buffers were left resident in arenas after
//! use (below). The fixed cost no setting changes: keyclone's code and read-only data, 10.5-11
//! MB resident from the first second (`binary r-x`/`r--` in `bench/rss.py`, libgit2, libssh2
//! and OpenSSL linked in; fault-around maps 64 KiB of code per fault), and 2.2 MB of glibc;
//! git's `git clone` process has 2.4 MB of code and 2 MB of libraries.

use std::time::Duration;

/// How often, at most, [`trim_pack_maps`] gives back the pages of the pack being indexed.
pub const TRIM_EVERY: Duration = Duration::from_millis(200);

/// The same during checkout, which is short (ripgrep: 0.05 s) and reads the pack again.
pub const TRIM_EVERY_CHECKOUT: Duration = Duration::from_millis(20);

/// Blocks at least this large get a mapping of their own from malloc, returned when freed.
const MMAP_THRESHOLD: usize = 1 << 20;

/// Sets libgit2's (and malloc's) process-wide options for a clone. Call before the clone starts.
pub fn tune_for_clone() {
    // Objects are hashed once, when the pack is indexed during the fetch; like git, do not hash
    // them again each time checkout reads them (that alone made checkout ~25% slower).
    git2::opts::strict_hash_verification(false);
    tune_malloc();
}

/// Keeps glibc's malloc from moving large blocks into its arenas.
///
/// glibc maps blocks above its mmap threshold (128 KiB at first) one by one and unmaps them on
/// free; but the first time such a block is freed it raises the threshold to that block's size
/// (up to 32 MiB), and the trim threshold to twice that. gix-pack's delta tree is two vectors of
/// ~6-13 MB (rust-lang/cargo) that grow and are freed while the pack is indexed, so after the
/// first of them the next ones came from the indexing thread's arena, and when freed stayed
/// resident there, above what `malloc_trim` returns (it does not shrink the top of a thread's
/// arena): `bench/rss.py` on cargo showed 10-16 MB of dead arena memory through checkout. A
/// fixed threshold (setting it turns the adjustment off) keeps every block of 1 MiB or more in
/// a mapping of its own: freed means returned (and a growing vector is moved by `mremap`, not
/// copied). Measured on cargo (bench/rss.py, one run each, load 7-8; `GLIBC_TUNABLES` set the
/// same value): peak 48-51 -> 44-45 MB; checkout's arenas 10.6-11.2 -> 0.3 MB; 128 KiB
/// measured the same.
///
/// And one arena for every thread (`M_ARENA_MAX`): the indexing and resolver threads would
/// each get an arena of their own, whose freed memory no other thread reuses. Their
/// allocations are few (gix-pack reuses its buffers), so sharing the main arena costs nothing
/// measurable: git/git, user CPU 10.55 vs 10.56 s; peak 69.5 -> 68.2 MB, cargo 40.7 -> 39.1
/// MB, ripgrep 18.7 -> 18.3 MB (medians of 2-5, under load).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_malloc() {
    let value = libc::c_int::try_from(MMAP_THRESHOLD).expect("1 MiB fits in a C int");
    // SAFETY: mallopt only sets parameters of the allocator (under its lock): M_MMAP_THRESHOLD
    // takes any value up to 32 MiB (1 MiB is below), M_ARENA_MAX any positive count; both
    // apply to later allocations and new threads only.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, value);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

/// True for the pack a libgit2 indexer is writing (`objects/pack/pack_git2_*`) and for a
/// finished pack and its index (`objects/pack/pack-*.pack`, `pack-*.idx`), which checkout reads.
fn is_pack_file(path: &str) -> bool {
    path.rsplit_once('/').is_some_and(|(dir, name)| {
        dir.ends_with("/objects/pack")
            && (name.starts_with("pack_git2_")
                || (name.starts_with("pack-")
                    && (name.ends_with(".pack") || name.ends_with(".idx"))))
    })
}

/// Drops the pages of the pack being indexed, or read by checkout, from this process's resident
/// set (Linux), at most once per `every`.
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
/// Checkout maps the renamed pack (`pack-<sha>.pack`) and its index again, through the odb's
/// windows, which stay open until the repository is dropped; trimming them from the checkout
/// progress callback too moves ripgrep's peak, which was at the end of checkout (pack and index
/// 2.1 MB resident), back to delta resolution: 32.2 -> 31.4 MB (median of 6 and of 5 runs).
///
/// Call only from libgit2's transfer-progress or checkout-progress callback: the thread that
/// is inside libgit2, the only one using it during a clone.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn trim_pack_maps(every: Duration) {
    use std::sync::Mutex;
    use std::time::Instant;
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let now = Instant::now();
    {
        let mut last = LAST
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| now.duration_since(t) < every) {
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
        if !perms.starts_with("r--") || !is_pack_file(path) {
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
        // SAFETY: the range is a read-only mapping (libgit2 maps pack windows and pack indexes
        // PROT_READ, MAP_SHARED) of a pack file or pack index: nothing writes through it, so
        // MADV_DONTNEED only drops page-table entries and the next read faults the same bytes
        // back in from the file (page cache). We run inside libgit2's progress callback on the
        // one thread using libgit2, so the mapping cannot be unmapped or replaced between
        // reading /proc/self/maps and this call.
        let _ = unsafe {
            nix::sys::mman::madvise(
                addr,
                b.saturating_sub(a),
                nix::sys::mman::MmapAdvise::MADV_DONTNEED,
            )
        };
    }
}

/// Gives the memory the clone's threads freed back to the system (glibc's `malloc_trim`).
///
/// gix-pack's delta tree (rust-lang/cargo: two vectors of ~6-13 MB, copied into one sorted by
/// id at the end) and the resolver threads' buffers are freed when indexing ends; what malloc
/// keeps of them stays resident while checkout runs, which never reuses most of it. Alone (with
/// per-thread arenas and glibc's sliding mmap threshold) this call took checkout's dead arena
/// memory on cargo from 15.4 to 10.6-11.2 MB: most of it was the top of a thread's arena,
/// which `malloc_trim` does not shrink; [`tune_for_clone`]'s fixed threshold and single arena
/// took the rest (0.1-0.3 MB). Kept for the small blocks freed in the middle of the heap
/// (the delta tree's per-base child lists). Call it once the indexing threads have ended.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_freed_memory() {
    // SAFETY: malloc_trim only returns free memory to the system; it takes each arena's lock
    // and touches no block in use.
    unsafe { libc::malloc_trim(0) };
}

/// Other allocators (musl's gives memory back on free) need no call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed_memory() {}

/// Elsewhere the pages stay mapped (no cheap, safe way to find the mappings).
#[cfg(not(target_os = "linux"))]
pub fn trim_pack_maps(_every: Duration) {}

#[cfg(test)]
mod tests {
    use super::is_pack_file;

    #[test]
    fn only_pack_files_are_trimmed() {
        assert!(is_pack_file(
            "/tmp/c/.git/objects/pack/pack_git2_69614c4f2ad787e7"
        ));
        assert!(is_pack_file("/a b/.git/objects/pack/pack_git2_x"));
        assert!(is_pack_file("/tmp/c/.git/objects/pack/pack-0123.pack"));
        assert!(is_pack_file("/tmp/c/.git/objects/pack/pack-0123.idx"));
        assert!(!is_pack_file("/tmp/c/.git/objects/pack/pack-0123.keep"));
        assert!(!is_pack_file("/tmp/c/.git/objects/pack/other.pack"));
        assert!(!is_pack_file("/tmp/c/.git/objects/pack/pack_git2_x/other"));
        assert!(!is_pack_file("/tmp/pack_git2_x"));
        assert!(!is_pack_file("/tmp/pack-0123.pack"));
        assert!(!is_pack_file(""));
    }
}
