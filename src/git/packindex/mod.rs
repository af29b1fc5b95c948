//! The clone's pack indexer: gix-pack's, which resolves deltas on every core, in place of
//! libgit2's, which resolves them on one (measured on real histories: README.md, "Benchmarks").
//!
//! libgit2's fetch hands the received pack to the first object-database backend that can write
//! packs; [`backend`] registers one for the clone's repository, above libgit2's own pack
//! backend, that feeds the bytes to an [`Indexing`]. The pack is parsed while it arrives (on a
//! thread of its own: whole objects hashed, every entry's CRC-32 and inflated size checked, the
//! trailer verified), written to a temporary file beside the final one, and at the end the
//! deltas are resolved on every core and the version 2 index written; both files get git's
//! final mode (0444) and are renamed into place as `pack-<checksum>.pack` / `.idx`, pack first.
//! When the backend cannot start (no temporary file in `objects/pack`), libgit2's own indexer
//! takes the pack: the same checks, on one core.
//!
//! The clone's submodules are cloned through the same backend (`git::clone`'s
//! `clone_submodule`), so every pack a clone receives is indexed here.
//!
//! Memory: received chunks wait in a queue of [`QUEUE`] (1 MiB); delta resolution reads the
//! pack through [`mapped`], which keeps at most 1 MiB of it resident (the pages the resolver
//! threads touched used to stay mapped until a timed trim: the peak then moved with
//! scheduling); no single allocation may exceed the machine's memory ([`alloc_limit`]); and
//! malloc is told to give gix-pack's large blocks back when freed (`git::tuning`). Where the rest
//! of a clone's peak is, phase by phase: `bench/rss.py` and README.md, "Benchmarks".
//!
//! The checks libgit2's indexer (indexer.c, as run by a fetch: `verify` off) makes, and where
//! this path makes each one (the pack is hostile input: an attacker's server writes it):
//! - signature `PACK` and version 2 or 3 ("wrong pack signature" / "wrong pack version"):
//!   `BytesToEntriesIter::new_from_header`;
//! - the object count (`nr_objects`; "too many objects" above `u32::MAX`): the header's count
//!   is a `u32`; exactly that many entries are read, then the trailer;
//! - each entry's type (commit, tree, blob, tag, ofs-delta, ref-delta; others refused) and its
//!   inflated size equal to the size in its header (a short stream is "early EOF"):
//!   `data::Entry::from_read` and the iterator's inflate measure;
//! - an offset delta's base inside the pack, before the delta, at an entry's start; a ref delta's
//!   base in the pack (a clone's object database is empty, so a thin pack is refused as libgit2
//!   refuses one it cannot fix): gix-pack's delta tree;
//! - every delta applied to a base of the size the delta names, its result of the size it names,
//!   and every object hashed from its resolved bytes (duplicates refused): gix-pack's resolution;
//! - the trailer: the SHA-1 of all bytes before it ("packfile trailer mismatch"), nothing after
//!   it ("unexpected data at the end of the pack"): the iterator, and [`trailing_bytes`].
//! - (how the pack is read back, which libgit2 does through its own windows) every byte delta
//!   resolution reads is the pack file's own: mapped read-only once every entry was parsed and
//!   written, a range outside the file is no entry (`Mapped::get`, and gix-pack then fails),
//!   and pages given back are faulted in again from the same, unchanged file.
//!
//! libgit2 runs no connectivity check (`verify`) and no fsck-like object check during a fetch;
//! the clone checks every path of the tree it checks out (`git::paths`), on both paths.

mod backend;
mod mapped;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mapped::Mapped;

pub(in crate::git) use backend::register;

/// How many received chunks (libgit2 hands over one side-band packet, up to 64 KiB, at a time)
/// may wait for the parsing thread: a bound on the memory a slow parse can hold (1 MiB). It was
/// 64 (4 MiB, the receive phase's heap on BurntSushi/ripgrep); 16 measured the same wall time
/// on rust-lang/cargo and git/git and ~0.2-1.6 MB less peak (README.md, "Benchmarks").
const QUEUE: usize = 16;

/// Set by [`refuse_start_for_test`].
static REFUSE_START: AtomicBool = AtomicBool::new(false);

/// Tests only, debug builds only (`KEYCLONE_TEST_NO_PACK_INDEXER`, set by `cli`): makes
/// [`Indexing::start`] fail as it does when `objects/pack` takes no temporary file, so the
/// fallback to libgit2's indexer can be tested (see the module notes for why no real condition
/// serves). Release builds ignore it.
pub fn refuse_start_for_test(on: bool) {
    if cfg!(debug_assertions) {
        REFUSE_START.store(on, Ordering::Relaxed);
    }
}

/// What the fetch thread and the indexing thread share.
#[derive(Debug, Default)]
struct Shared {
    /// The pack's object count, from its header.
    total: AtomicU32,
    /// Entries parsed so far, and how many of them are deltas.
    received: AtomicU32,
    deltas: AtomicU32,
    /// True once the deltas are resolved and the index written.
    resolved: AtomicBool,
    /// Asks gix-pack to stop (set when the fetch gives up).
    stop: AtomicBool,
}

/// The counts libgit2's progress callback is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::git) struct Counts {
    pub total: u32,
    pub received: u32,
    pub deltas: u32,
    pub resolved: bool,
}

/// One pack being received and indexed into `objects/pack`.
#[derive(Debug)]
pub(in crate::git) struct Indexing {
    tx: Option<SyncSender<Vec<u8>>>,
    worker: Option<JoinHandle<Result<(), String>>>,
    shared: Arc<Shared>,
}

impl Indexing {
    /// Creates the temporary pack and index files in `pack_dir` and starts the parsing thread.
    pub fn start(pack_dir: &Path) -> io::Result<Indexing> {
        if cfg!(debug_assertions) && REFUSE_START.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "no temporary file (KEYCLONE_TEST_NO_PACK_INDEXER)",
            ));
        }
        let temp = |prefix: &str| {
            tempfile::Builder::new()
                .prefix(prefix)
                .tempfile_in(pack_dir)
        };
        let pack = temp("tmp_pack_keyclone_")?;
        let idx = temp("tmp_idx_keyclone_")?;
        let shared = Arc::new(Shared::default());
        let (tx, rx) = sync_channel(QUEUE);
        let dir = pack_dir.to_path_buf();
        let s = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("keyclone-index-pack".into())
            .spawn(move || index(rx, pack, idx, &dir, &s))?;
        Ok(Indexing {
            tx: Some(tx),
            worker: Some(worker),
            shared,
        })
    }

    /// Hands over the next bytes of the pack. Fails with the parser's error once it has
    /// refused the pack.
    pub fn append(&mut self, data: &[u8]) -> Result<(), String> {
        let sent = self.tx.as_ref().map(|tx| tx.send(data.to_vec()));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(self.finish()),
        }
    }

    pub fn counts(&self) -> Counts {
        let s = &self.shared;
        Counts {
            total: s.total.load(Ordering::Relaxed),
            received: s.received.load(Ordering::Relaxed),
            deltas: s.deltas.load(Ordering::Relaxed),
            resolved: s.resolved.load(Ordering::Relaxed),
        }
    }

    /// The pack is complete: waits for the deltas to be resolved and the files renamed into
    /// place, calling `tick` about every `every` meanwhile (libgit2's progress callback).
    /// The resolver threads bound the mapped pack's resident pages themselves ([`mapped`]);
    /// once they and the indexing thread have ended, the memory they freed is given back
    /// ([`crate::git::tuning::release_freed_memory`]) before checkout starts.
    pub fn commit(
        mut self,
        every: Duration,
        mut tick: impl FnMut(Counts) -> Result<(), String>,
    ) -> Result<(), String> {
        self.tx = None;
        let mut last = Instant::now();
        while self.worker.as_ref().is_some_and(|w| !w.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
            if last.elapsed() >= every {
                last = Instant::now();
                if let Err(e) = tick(self.counts()) {
                    self.shared.stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        let joined = self.worker.take().map(JoinHandle::join);
        crate::git::tuning::release_freed_memory();
        match joined {
            Some(Ok(Ok(()))) => tick(self.counts()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err("the pack indexer stopped unexpectedly".into()),
            None => Err("the pack was already indexed".into()),
        }
    }

    /// Stops the worker and returns its error (or a generic one).
    fn finish(&mut self) -> String {
        self.tx = None;
        self.shared.stop.store(true, Ordering::Relaxed);
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => "the pack indexer stopped unexpectedly".into(),
        }
    }
}

impl Drop for Indexing {
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.finish();
        }
    }
}

/// The bytes libgit2 received, as a reader; each byte read is also written to the pack file.
struct Tee {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    out: File,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.out.write_all(&buf[..n])?;
        self.pos += n;
        Ok(n)
    }
}

/// Whether any byte follows the trailer (git and libgit2 refuse such a pack).
fn trailing_bytes(r: &mut impl BufRead) -> io::Result<bool> {
    Ok(!r.fill_buf()?.is_empty())
}

/// How gix-pack reads an entry's bytes back during delta resolution: from the mapped pack.
type Resolver = fn(gix_pack::data::EntryRange, &Mapped) -> Option<&[u8]>;

fn resolve(range: gix_pack::data::EntryRange, map: &Mapped) -> Option<&[u8]> {
    map.get(range.start, range.end)
}

/// The parsing thread: the whole indexing of one pack. Errors are libgit2-style messages.
fn index(
    rx: Receiver<Vec<u8>>,
    pack: tempfile::NamedTempFile,
    idx: tempfile::NamedTempFile,
    dir: &Path,
    shared: &Shared,
) -> Result<(), String> {
    let io_err = |what: &str, e: &dyn std::fmt::Display| format!("could not {what}: {e}");
    let out = pack
        .as_file()
        .try_clone()
        .map_err(|e| io_err("write the pack", &e))?;
    let mut reader = BufReader::with_capacity(
        64 << 10,
        Tee {
            rx,
            chunk: Vec::new(),
            pos: 0,
            out,
        },
    );
    let kind = gix_hash::Kind::Sha1;
    let entries = gix_pack::data::input::BytesToEntriesIter::new_from_header(
        &mut reader,
        gix_pack::data::input::Mode::Verify,
        gix_pack::data::input::EntryDataMode::Crc32,
        kind,
    )
    .map_err(|e| format!("invalid pack: {e}"))?;
    let version = entries.version();
    let total = u32::try_from(entries.size_hint().0).unwrap_or(u32::MAX);
    shared.total.store(total, Ordering::Relaxed);
    let mut entries = entries.inspect(|e| {
        if let Ok(e) = e {
            shared.received.fetch_add(1, Ordering::Relaxed);
            if e.header.is_delta() {
                shared.deltas.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut idx_out = io::BufWriter::new(idx.as_file());
    let outcome = gix_pack::index::write_data_iter_to_stream(
        gix_pack::index::Version::V2,
        || map_pack(pack.as_file()),
        &mut entries,
        Some(threads),
        &mut gix_utils::progress::Discard,
        &mut idx_out,
        &shared.stop,
        kind,
        alloc_limit(),
        version,
    )
    .map_err(|e| format!("invalid pack: {e}"))?;
    idx_out
        .flush()
        .map_err(|e| io_err("write the pack index", &e))?;
    drop(idx_out);
    drop(entries);
    if trailing_bytes(&mut reader).map_err(|e| io_err("read the pack", &e))? {
        return Err("unexpected data at the end of the pack".into());
    }
    let name = format!("pack-{}", outcome.data_hash.to_hex());
    persist(pack, &dir.join(format!("{name}.pack")))?;
    persist(idx, &dir.join(format!("{name}.idx")))?;
    shared.resolved.store(true, Ordering::Relaxed);
    Ok(())
}

/// The largest single buffer the delta tree or a resolved object may take: this machine's
/// memory. A hostile delta can name any result size; without a bound gix-pack would ask for it
/// and the allocation failure would abort the process (leaving the temporary clone behind)
/// where libgit2 and git fail cleanly. An object larger than memory cannot be resolved anyway.
fn alloc_limit() -> Option<usize> {
    use nix::unistd::{SysconfVar, sysconf};
    let pages = sysconf(SysconfVar::_PHYS_PAGES).ok().flatten()?;
    let size = sysconf(SysconfVar::PAGE_SIZE).ok().flatten()?;
    usize::try_from(pages)
        .ok()?
        .checked_mul(usize::try_from(size).ok()?)
}

/// Maps the pack written so far, once every entry was read, for delta resolution.
fn map_pack(file: &File) -> io::Result<(Resolver, Mapped)> {
    Ok((resolve, Mapped::new(file, mapped::BUDGET)?))
}

/// Gives a finished file git's mode for packs (0444) and renames it into place, refusing to
/// replace a file already there.
fn persist(file: tempfile::NamedTempFile, to: &PathBuf) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o444))
        .map_err(|e| format!("could not set the mode of {}: {e}", to.display()))?;
    file.persist_noclobber(to).map(drop).map_err(|e| {
        format!(
            "could not move the pack into place at {}: {}",
            to.display(),
            e.error
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
        let out = Command::new("git")
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .expect("git is needed for these tests (apt-get install git)");
        assert!(out.status.success(), "git {args:?}: {:?}", out.stderr);
        out.stdout
    }

    /// A repository packed by git, with deltas: its pack and git's own index of it.
    fn packed_repo() -> (tempfile::TempDir, Vec<u8>, Vec<u8>) {
        let repo = tempfile::tempdir().unwrap();
        let r = repo.path();
        git(r, &["init", "-q"]);
        for i in 0..20 {
            let text: String = (0..400)
                .map(|n| format!("line {n} {}\n", n * i % 7))
                .collect();
            std::fs::write(r.join("f.txt"), text).unwrap();
            git(r, &["add", "f.txt"]);
            git(r, &["commit", "-q", "-m", &format!("c{i}")]);
        }
        git(r, &["repack", "-a", "-d", "-q"]);
        let pack_dir = r.join(".git/objects/pack");
        let find = |ext: &str| {
            std::fs::read_dir(&pack_dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == ext))
                .unwrap()
        };
        let pack = std::fs::read(find("pack")).unwrap();
        let idx = std::fs::read(find("idx")).unwrap();
        (repo, pack, idx)
    }

    fn feed(dir: &Path, pack: &[u8]) -> Result<Vec<Counts>, String> {
        let mut ix = Indexing::start(dir).map_err(|e| e.to_string())?;
        for chunk in pack.chunks(1000) {
            ix.append(chunk)?;
        }
        let mut seen = Vec::new();
        ix.commit(Duration::from_millis(1), |c| {
            seen.push(c);
            Ok(())
        })?;
        Ok(seen)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_the_index_git_writes_and_reports_the_counts() {
        use std::os::unix::fs::PermissionsExt;
        let (_repo, pack, git_idx) = packed_repo();
        let dir = tempfile::tempdir().unwrap();
        let seen = feed(dir.path(), &pack).unwrap();
        let sum: String = pack[pack.len() - 20..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let name = format!("pack-{sum}");
        assert_eq!(
            names(dir.path()),
            vec![format!("{name}.idx"), format!("{name}.pack")]
        );
        assert_eq!(
            std::fs::read(dir.path().join(format!("{name}.idx"))).unwrap(),
            git_idx
        );
        assert_eq!(
            std::fs::read(dir.path().join(format!("{name}.pack"))).unwrap(),
            pack
        );
        for ext in ["idx", "pack"] {
            let mode = std::fs::metadata(dir.path().join(format!("{name}.{ext}")))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o444, "{ext}");
        }
        // git's index: the object count is the last entry of the fan-out table.
        let count = u32::from_be_bytes(git_idx[8 + 255 * 4..8 + 256 * 4].try_into().unwrap());
        let last = *seen.last().unwrap();
        assert!(last.resolved && last.received == count && last.total == count);
        assert!(last.deltas > 0, "the test pack should hold deltas");
    }

    #[test]
    fn damaged_packs_are_refused_and_leave_no_file() {
        let (_repo, pack, _) = packed_repo();
        let mut bad_trailer = pack.clone();
        *bad_trailer.last_mut().unwrap() ^= 1;
        let mut bad_version = pack.clone();
        bad_version[7] = 9;
        let mut extra = pack.clone();
        extra.extend_from_slice(b"junk");
        let cases: [(&str, &[u8], &str); 5] = [
            ("truncated", &pack[..pack.len() / 2], "invalid pack"),
            ("trailer", &bad_trailer, "invalid pack"),
            ("version", &bad_version, "invalid pack"),
            ("signature", b"PACX\0\0\0\x02\0\0\0\0", "invalid pack"),
            ("extra", &extra, "unexpected data at the end of the pack"),
        ];
        for (what, bytes, says) in cases {
            let dir = tempfile::tempdir().unwrap();
            let err = feed(dir.path(), bytes).unwrap_err();
            assert!(err.contains(says), "{what}: {err}");
            assert_eq!(names(dir.path()), Vec::<String>::new(), "{what}");
        }
    }
}
