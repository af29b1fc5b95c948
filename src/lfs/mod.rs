//! Git LFS: large files that git stores as small pointers (`pointer`), the `filter=lfs`
//! attribute and include/exclude patterns (`attributes`), git-lfs's object store (`store`), the
//! pure SSH protocol of `git-lfs-transfer` (`transfer`, framed by `pktline`), the HTTPS batch
//! API reached through `git-lfs-authenticate` (`batch`), and putting the content
//! into the work tree and the index (`checkout`). libgit2 runs no LFS filter, so a clone holds
//! the pointers; [`scan`] finds them.
//!
//! Domain code: no printing, no prompting.

pub mod attributes;
pub mod batch;
pub mod checkout;
pub mod pktline;
pub mod pointer;
pub mod store;
pub mod transfer;

use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use pointer::{Parsed, Pointer};

/// A file of the work tree whose content is in LFS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfsFile {
    /// Relative, slash-separated.
    pub path: String,
    pub pointer: Pointer,
    pub executable: bool,
}

/// What the work tree holds.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// LFS files whose work-tree file is still the pointer.
    pub pointers: Vec<LfsFile>,
    /// LFS files with their content in place.
    pub present: usize,
    /// Files with `filter=lfs` that start like a pointer and are not a valid one: left as they
    /// are (git-lfs does the same), with the reason.
    pub invalid: Vec<(String, String)>,
}

impl Scan {
    /// The bytes the pointers stand for.
    pub fn missing_bytes(&self) -> u64 {
        self.pointers.iter().map(|f| f.pointer.size).sum()
    }
}

/// Reads at most a pointer's worth of a work-tree file (a regular file only, not followed).
fn small_file(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let m = std::fs::symlink_metadata(path).ok()?;
    if !m.is_file() || m.len() >= pointer::MAX_SIZE {
        return None;
    }
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(pointer::MAX_SIZE)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

/// Finds the LFS files of `repo`'s index (stage 0 regular files with `filter=lfs` whose blob
/// is a pointer) and whether the work tree holds their pointer or their content.
pub fn scan(repo: &git2::Repository) -> Result<Scan> {
    let fail = |e: git2::Error| {
        Error::new(
            ErrorKind::Io,
            format!("could not read the clone's index: {}", e.message()),
        )
    };
    let Some(workdir) = repo.workdir() else {
        return Ok(Scan::default());
    };
    let index = repo.index().map_err(fail)?;
    let odb = repo.odb().map_err(fail)?;
    let mut scan = Scan::default();
    for entry in index.iter() {
        let mode = entry.mode & 0o170000;
        let stage = (entry.flags >> 12) & 0x3;
        if mode != 0o100000 || stage != 0 {
            continue;
        }
        let Ok(path) = std::str::from_utf8(&entry.path) else {
            continue;
        };
        if !attributes::is_lfs(repo, Path::new(path)) {
            continue;
        }
        let small = odb
            .read_header(entry.id)
            .is_ok_and(|(size, _)| (size as u64) < pointer::MAX_SIZE);
        if !small {
            continue;
        }
        let Ok(blob) = repo.find_blob(entry.id) else {
            continue;
        };
        let p = match pointer::parse(blob.content()) {
            Parsed::Pointer(p) => p,
            Parsed::Invalid(why) => {
                scan.invalid.push((path.to_owned(), why));
                continue;
            }
            Parsed::NotPointer => continue,
        };
        let in_tree = small_file(&workdir.join(path));
        if in_tree.is_some_and(|b| pointer::parse(&b) == Parsed::Pointer(p.clone())) {
            scan.pointers.push(LfsFile {
                path: path.to_owned(),
                pointer: p,
                executable: entry.mode & 0o111 != 0,
            });
        } else {
            scan.present += 1;
        }
    }
    Ok(scan)
}

/// Progress of LFS downloads (drawn by `ui::progress`); called from several threads.
pub trait LfsProgress: Sync {
    fn start(&self, files: usize, bytes: u64);
    fn bytes(&self, n: u64);
    fn file_done(&self);
    fn finish(&self);
}

/// Reports nothing.
#[derive(Debug, Default)]
pub struct Quiet;

impl LfsProgress for Quiet {
    fn start(&self, _: usize, _: u64) {}
    fn bytes(&self, _: u64) {}
    fn file_done(&self) {}
    fn finish(&self) {}
}
