//! The received pack, mapped for delta resolution, with a bound on how much of it counts in the
//! clone's resident set.
//!
//! gix-pack's resolver threads read each entry's bytes from the mapping. Every page they touch
//! stays mapped, and so resident (as file or, on tmpfs, shared memory), until it is dropped:
//! left alone, the whole pack ends up in the clone's peak (rust-lang/cargo: 78 MB). git's
//! index-pack reads with `pread` and holds none of it. Giving the pages back every 200 ms, as
//! this module's caller once did, bounded them by time: a fast resolution on a quiet machine
//! touched more pages per period than a slow one (cargo: 15.8 MB of the pack resident at the
//! peak under load, more when quiet), so the peak moved with scheduling.
//!
//! Here the bound is in bytes: the mapping is cut into 64 KiB windows, the kernel's fault-around
//! unit (a read fault maps the resident pages of the aligned 64 KiB around it, `fault_around_bytes`),
//! so a read can make at most the windows it overlaps resident. Each read marks its windows in
//! a bitmap; when [`BUDGET`] worth of windows were marked since the last time, the reading
//! thread drops the mapping's pages (`MADV_DONTNEED`) and clears the bitmap. The bytes stay in
//! the page cache, so a later read faults them back without I/O. A file system that caches a
//! file in folios larger than a window (ext4 on recent kernels, after large writes) can map a
//! whole folio on one fault; the pack is written 64 KiB at a time (the Tee), which keeps its
//! folios small, and the benchmark's clones (tmpfs) use small pages: there the bound holds.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use memmap2::Mmap;

/// The kernel's fault-around window (Linux's default `fault_around_bytes`).
const WINDOW: usize = 64 << 10;

/// How much of the mapped pack delta resolution may make resident before its pages are given
/// back (measured: README.md, "Benchmarks"; `bench/rss.py` shows the pack's share of the peak).
/// 1 MiB against 4 MiB: BurntSushi/ripgrep's peak 20.2 -> 18.7 MB, rust-lang/cargo's 43.6 ->
/// 42.3 MB, the same minor faults and CPU time; 256 KiB faulted 40 % more on cargo for nothing.
pub(super) const BUDGET: usize = 1 << 20;

/// The pack, mapped read-only, and which windows of it were read since the last trim.
#[derive(Debug)]
pub(super) struct Mapped {
    map: Mmap,
    /// One bit per window of the mapping's address range.
    touched: Vec<AtomicU64>,
    /// Windows marked since the last trim.
    marked: AtomicUsize,
    budget: usize,
    /// How many times the pages were given back.
    trims: AtomicUsize,
}

impl Mapped {
    /// Maps `file`, all of which has been written, for reading with a resident budget of
    /// `budget` bytes.
    #[allow(unsafe_code)]
    pub fn new(file: &File, budget: usize) -> io::Result<Mapped> {
        // SAFETY: the file is this clone's own temporary pack (created 0600 in the clone's
        // temporary folder, which nothing else writes); every byte the parser read has been
        // written and nothing writes to it while it is mapped: the only writer is the Tee,
        // which is read again only after the mapping is dropped (the trailing-bytes check).
        let map = unsafe { Mmap::map(file)? };
        let windows = Self::window(map.as_ptr() as usize + map.len()) + 1
            - Self::window(map.as_ptr() as usize);
        Ok(Mapped {
            touched: (0..windows.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            map,
            marked: AtomicUsize::new(0),
            budget: (budget / WINDOW).max(1),
            trims: AtomicUsize::new(0),
        })
    }

    fn window(addr: usize) -> usize {
        addr / WINDOW
    }

    /// The bytes of `start..end`, after giving back the mapping's pages if this read takes the
    /// windows read since the last trim over the budget (so the bytes returned are faulted in
    /// again only as the caller reads them).
    pub fn get(&self, start: u64, end: u64) -> Option<&[u8]> {
        let (start, end) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
        let bytes = self.map.get(start..end)?;
        if !bytes.is_empty() {
            self.mark(bytes.as_ptr() as usize, bytes.len());
        }
        Some(bytes)
    }

    /// Marks the windows `len > 0` bytes at `addr` overlap; trims once the budget is reached.
    fn mark(&self, addr: usize, len: usize) {
        let base = Self::window(self.map.as_ptr() as usize);
        let first = Self::window(addr) - base;
        let last = Self::window(addr + len - 1) - base;
        let mut new = 0;
        for w in first..=last {
            let bit = 1u64 << (w % 64);
            if self.touched[w / 64].fetch_or(bit, Ordering::Relaxed) & bit == 0 {
                new += 1;
            }
        }
        if new > 0 && self.marked.fetch_add(new, Ordering::Relaxed) + new >= self.budget {
            self.trim();
        }
    }

    /// Drops the mapping's pages from this process's resident set and starts counting again.
    /// Two threads trimming at once only drop the pages twice.
    #[allow(unsafe_code)]
    fn trim(&self) {
        self.marked.store(0, Ordering::Relaxed);
        for word in &self.touched {
            word.store(0, Ordering::Relaxed);
        }
        self.trims.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `map` is a read-only shared mapping (PROT_READ, MAP_SHARED) of a file nothing
        // writes while it is mapped (see `new`). MADV_DONTNEED on such a mapping only drops
        // page-table entries: a concurrent read by another resolver thread, or by the caller of
        // `get` that triggered this, faults the same bytes back in from the page cache, so no
        // reader sees anything else.
        let _ = unsafe {
            self.map
                .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
        };
    }

    /// How many times the pages were given back so far.
    #[cfg(test)]
    pub fn trims(&self) -> usize {
        self.trims.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The resident KiB of this process's mapping that starts at `addr` (`Rss:` in
    /// /proc/self/smaps).
    fn resident_kib(addr: usize) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut lines = smaps.lines();
        while let Some(line) = lines.next() {
            let start = line.split('-').next().unwrap_or("");
            if usize::from_str_radix(start, 16).ok() == Some(addr) {
                for l in lines.by_ref() {
                    if let Some(v) = l.strip_prefix("Rss:") {
                        return v.trim().trim_end_matches("kB").trim().parse().unwrap();
                    }
                }
            }
        }
        panic!("no mapping at {addr:#x}")
    }

    /// A file of `len` bytes, written 64 KiB at a time as the indexer's Tee writes the pack (one
    /// large write lets a file system such as ext4 cache it in large folios, which a fault maps
    /// whole).
    fn pack_file(len: usize) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        for chunk in bytes.chunks(64 << 10) {
            f.write_all(chunk).unwrap();
        }
        f.flush().unwrap();
        f
    }

    #[test]
    fn reads_return_the_file_bytes_and_out_of_range_is_none() {
        let f = pack_file(300_000);
        let m = Mapped::new(f.as_file(), 64 << 10).unwrap();
        let want: Vec<u8> = (1000..1100).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(m.get(1000, 1100), Some(&want[..]));
        assert_eq!(m.get(0, 0), Some(&[][..]));
        assert_eq!(m.get(299_000, 300_001), None);
        assert_eq!(m.get(u64::MAX - 1, u64::MAX), None);
    }

    #[test]
    fn the_pack_resident_stays_within_the_budget() {
        // 8 MiB read in 4 KiB steps, 1 MiB budget: without trims all of it would be resident.
        let len = 8 << 20;
        let f = pack_file(len);
        let m = Mapped::new(f.as_file(), 1 << 20).unwrap();
        let addr = m.map.as_ptr() as usize;
        let mut most = 0;
        let mut sum = 0u64;
        for start in (0..len).step_by(4096) {
            let b = m.get(start as u64, (start + 4096) as u64).unwrap();
            sum += b.iter().map(|&x| u64::from(x)).sum::<u64>();
            if start % (256 << 10) == 0 {
                most = most.max(resident_kib(addr));
            }
        }
        assert!(sum > 0);
        // The budget, plus the window a read may fault in on top of it.
        assert!(most <= 1024 + 64, "{most} KiB of the mapping resident");
        assert!(m.trims() >= 7, "trimmed {} times", m.trims());
    }

    #[test]
    fn reading_the_same_windows_again_does_not_trim() {
        let f = pack_file(1 << 20);
        let m = Mapped::new(f.as_file(), 256 << 10).unwrap();
        for _ in 0..100 {
            m.get(0, 100_000).unwrap();
        }
        assert_eq!(m.trims(), 0);
        // One read larger than the budget gives back the pages before it returns.
        m.get(0, 600_000).unwrap();
        assert_eq!(m.trims(), 1);
    }
}
