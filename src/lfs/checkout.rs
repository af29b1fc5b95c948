//! Putting an object's content into the work tree in place of its pointer, atomically (a
//! temporary file beside it, renamed: a failure leaves the pointer), and refreshing the index's
//! stat data so `git status` stays clean: the index keeps the pointer's blob id, which git-lfs's
//! clean filter gives back for the content.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::lfs::LfsFile;
use crate::lfs::store;

/// Refuses a path whose folders are not plain folders inside the work tree (a link put there
/// since the checkout would make the write land elsewhere).
fn check_folders(workdir: &Path, rel: &str) -> Result<()> {
    let mut at = workdir.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        let plain = std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir());
        if !plain {
            return Err(Error::refused(format!(
                "`{rel}` is not written: `{}` is not a folder of the work tree (a link?)",
                at.display()
            )));
        }
    }
    Ok(())
}

/// Writes the stored object of `f` over its pointer in `workdir`, checking its size and SHA-256
/// once more on the way.
pub fn place(workdir: &Path, git_dir: &Path, f: &LfsFile) -> Result<()> {
    check_folders(workdir, &f.path)?;
    let src = store::object_path(git_dir, &f.pointer.oid);
    let mut from = std::fs::File::open(&src).map_err(|e| Error::io("open", &src, e))?;
    let dest = workdir.join(&f.path);
    let what = format!("the stored LFS object of `{}`", f.path);
    let mode = if f.executable { 0o755 } else { 0o644 };
    crate::files::replace_with(&dest, mode, &mut |out| {
        store::copy_verified(&mut from, out, &f.pointer, &what, &mut |_| {})
    })
}

/// Updates the index entries of `paths` with their files' stat data, keeping their blob ids.
pub fn refresh_index(repo: &git2::Repository, paths: &[String]) -> Result<()> {
    let fail = |e: git2::Error| {
        Error::new(
            ErrorKind::Io,
            format!("could not update the index: {}", e.message()),
        )
        .hint("run `git status` in the clone (with git-lfs installed) to refresh it")
    };
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::internal("the clone has no work tree"))?;
    let mut index = repo.index().map_err(fail)?;
    for path in paths {
        let Some(mut entry) = index.get_path(Path::new(path), 0) else {
            continue;
        };
        let full = workdir.join(path);
        let m = std::fs::symlink_metadata(&full).map_err(|e| Error::io("read", &full, e))?;
        let t = |s: i64, ns: i64| {
            git2::IndexTime::new(
                i32::try_from(s).unwrap_or(i32::MAX),
                u32::try_from(ns).unwrap_or(0),
            )
        };
        entry.mtime = t(m.mtime(), m.mtime_nsec());
        entry.ctime = t(m.ctime(), m.ctime_nsec());
        entry.dev = m.dev() as u32;
        entry.ino = m.ino() as u32;
        entry.uid = m.uid();
        entry.gid = m.gid();
        // git keeps the size's low 32 bits (`(unsigned int)st_size`): the same here.
        entry.file_size = (m.len() & 0xffff_ffff) as u32;
        index.add(&entry).map_err(fail)?;
    }
    index.write().map_err(fail)
}
