//! How keyclone writes the files that matter (keys now; known_hosts and ssh config later) and
//! which directories it trusts to hold them.
//!
//! Writes are atomic: a temporary file in the same directory, the final mode set on it, data
//! synced, then renamed into place without replacing anything that exists, then the directory
//! synced. A group of files is created all together or not at all. The permission policy is a
//! pure function ([`dir_problem`]) with unit tests.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{AccessFlags, Uid, access};

use crate::error::{Error, ErrorKind, Result};
use crate::interrupt::{self, CriticalSection};

/// The current user's numeric id.
pub fn my_uid() -> u32 {
    Uid::effective().as_raw()
}

/// Why a directory that holds private keys is unsafe, if it is (OpenSSH's StrictModes rule):
/// it must belong to the user or to root, and nobody else may write to it.
pub fn dir_problem(mode: u32, owner: u32, me: u32) -> Option<String> {
    if owner != me && owner != 0 {
        return Some(format!("it belongs to another user (uid {owner})"));
    }
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (_, true) => Some(format!(
            "every user can write to it (mode {:o})",
            mode & 0o7777
        )),
        (true, false) => Some(format!(
            "its group can write to it (mode {:o})",
            mode & 0o7777
        )),
        _ => None,
    }
}

/// The state of the directory that should hold keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    Exists,
    /// Missing; [`ensure_private_dir`] will create it with mode 0700.
    Missing,
}

/// Checks a key directory before anything is asked or written: it must be safe (see
/// [`dir_problem`]) and writable; if missing, its parent must exist and be writable.
pub fn check_private_dir(dir: &Path) -> Result<DirState> {
    match fs::metadata(dir) {
        Ok(meta) => {
            if !meta.is_dir() {
                return Err(
                    Error::refused(format!("`{}` is not a directory", dir.display())).hint(
                        "move that file away, or choose another directory with `--ssh-dir DIR`",
                    ),
                );
            }
            if let Some(problem) = dir_problem(meta.mode(), meta.uid(), my_uid()) {
                return Err(Error::refused(format!(
                    "refusing to keep keys in `{}`: {problem}; OpenSSH would refuse it too",
                    dir.display()
                ))
                .hint(format!(
                    "run `chmod 700 {}` (and check its owner), then try again",
                    dir.display()
                )));
            }
            writable(dir)?;
            Ok(DirState::Exists)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("cannot create `{}`: its parent directory `{}` does not exist", dir.display(), parent.display()),
                )
                .hint("create it first, or choose another place with `--ssh-dir DIR` or `--path FILE`"));
            }
            writable(parent)?;
            Ok(DirState::Missing)
        }
        Err(e) => Err(Error::io("inspect the key directory", dir, e)),
    }
}

fn writable(dir: &Path) -> Result<()> {
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK)
        .map_err(|errno| Error::io("write in the directory", dir, std::io::Error::from(errno)))
}

/// Creates `dir` with mode 0700 if it is missing (only `dir` itself, not its parents).
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            // The umask may have removed bits we need; set the mode exactly.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io("set the mode of the directory", dir, e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(Error::io("create the directory", dir, e)),
    }
}

/// What is at `path`, without following a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occupant {
    Nothing,
    File,
    Symlink,
    Other,
}

pub fn occupant(path: &Path) -> Result<Occupant> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Ok(Occupant::Symlink),
        Ok(m) if m.is_file() => Ok(Occupant::File),
        Ok(_) => Ok(Occupant::Other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Occupant::Nothing),
        Err(e) => Err(Error::io("inspect", path, e)),
    }
}

/// One file to create.
#[derive(Debug)]
pub struct NewFile<'a> {
    pub path: PathBuf,
    pub mode: u32,
    pub contents: &'a [u8],
}

/// Files written to temporary names, ready to be renamed into place by [`Staged::commit`].
/// Dropping it without committing deletes the temporary files.
#[derive(Debug)]
pub struct Staged {
    files: Vec<(tempfile::TempPath, PathBuf)>,
}

/// Writes `contents` to a new temporary file in `dir` with exactly `mode`, synced. The file is
/// registered for removal on interrupt and deleted when the returned path is dropped.
fn write_temp(dir: &Path, dest: &Path, contents: &[u8], mode: u32) -> Result<tempfile::TempPath> {
    let tmp = tempfile::Builder::new()
        .prefix(".keyclone-")
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    interrupt::track(tmp.path());
    let (mut file, tmp_path) = tmp.into_parts();
    let mut write = || -> std::io::Result<()> {
        file.write_all(contents)?;
        // fchmod is not subject to the umask: the file gets exactly its final mode.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()
    };
    if let Err(e) = write() {
        interrupt::untrack(&tmp_path);
        drop(tmp_path); // deletes the temporary file
        return Err(Error::io(&format!("write `{}`", dest.display()), dest, e)
            .hint("nothing was written; fix the cause and run the same command again"));
    }
    Ok(tmp_path)
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes each file to a temporary file beside its final path, with its final mode, synced.
/// Nothing is visible at the final paths yet.
pub fn stage(files: &[NewFile<'_>]) -> Result<Staged> {
    let mut staged = Staged { files: Vec::new() };
    for f in files {
        let tmp = write_temp(parent_dir(&f.path), &f.path, f.contents, f.mode)?;
        staged.files.push((tmp, f.path.clone()));
    }
    Ok(staged)
}

/// Replaces `path` (or creates it) atomically with `contents` and `mode`: readers see the old
/// file or the new one, never a mix.
pub fn replace(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let tmp = write_temp(parent_dir(path), path, contents, mode)?;
    let tmp_name = tmp.to_path_buf();
    let _section = interrupt::critical();
    let result = tmp.persist(path);
    interrupt::untrack(&tmp_name);
    result.map_err(|e| Error::io("replace", path, e.error))?;
    sync_dir(parent_dir(path));
    Ok(())
}

impl Staged {
    /// Renames every file into place, refusing to replace an existing file. If one rename
    /// fails, the files already placed are removed again: all or nothing. The caller holds the
    /// critical section, so an interrupt cannot fall between the renames.
    pub fn commit(mut self, _section: &CriticalSection) -> Result<()> {
        let mut placed: Vec<PathBuf> = Vec::new();
        let files = std::mem::take(&mut self.files);
        let mut iter = files.into_iter();
        while let Some((tmp, dest)) = iter.next() {
            let tmp_name = tmp.to_path_buf();
            match tmp.persist_noclobber(&dest) {
                Ok(()) => {
                    interrupt::untrack(&tmp_name);
                    placed.push(dest);
                }
                Err(e) => {
                    interrupt::untrack(&tmp_name);
                    drop(e.path); // deletes the temporary file
                    for p in &placed {
                        let _ = fs::remove_file(p);
                    }
                    for (rest, _) in iter.by_ref() {
                        interrupt::untrack(&rest);
                    }
                    return Err(Error::io("put the file in place", &dest, e.error)
                        .hint("nothing was changed; run the same command again"));
                }
            }
        }
        let mut dirs: Vec<&Path> = placed.iter().filter_map(|p| p.parent()).collect();
        dirs.dedup();
        for dir in dirs {
            sync_dir(dir);
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            interrupt::untrack(tmp);
        }
    }
}

/// Makes a rename durable. Failure is ignored: the rename itself has happened.
fn sync_dir(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A name beside `path` for its backup: `NAME.bak-STAMP`, with `-2`, `-3`, ... if taken.
pub fn backup_path(path: &Path, stamp: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut candidate = path.with_file_name(format!("{name}.bak-{stamp}"));
    let mut n = 2;
    while fs::symlink_metadata(&candidate).is_ok() {
        candidate = path.with_file_name(format!("{name}.bak-{stamp}-{n}"));
        n += 1;
    }
    candidate
}

/// Moves `from` to `to`, never replacing an existing `to`.
pub fn move_noclobber(from: &Path, to: &Path) -> Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from).map_err(|e| Error::io("move the old file away", from, e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(Error::io("move the old file away", to, e))
        }
        Err(_) => {
            // File systems without hard links: check, then rename.
            if fs::symlink_metadata(to).is_ok() {
                return Err(Error::refused(format!("`{}` already exists", to.display())));
            }
            fs::rename(from, to).map_err(|e| Error::io("move the old file away", from, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_policy_matches_openssh_strict_modes() {
        assert_eq!(dir_problem(0o40700, 1000, 1000), None);
        assert_eq!(dir_problem(0o40755, 1000, 1000), None);
        assert_eq!(dir_problem(0o40700, 0, 1000), None, "root-owned is fine");
        assert!(dir_problem(0o40770, 1000, 1000).unwrap().contains("group"));
        assert!(
            dir_problem(0o40777, 1000, 1000)
                .unwrap()
                .contains("every user")
        );
        assert!(
            dir_problem(0o41777, 1000, 1000)
                .unwrap()
                .contains("every user")
        );
        assert!(
            dir_problem(0o40700, 1001, 1000)
                .unwrap()
                .contains("another user")
        );
    }

    #[test]
    fn staged_files_appear_together_with_their_modes_and_never_replace() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let staged = stage(&[
            NewFile {
                path: a.clone(),
                mode: 0o600,
                contents: b"A",
            },
            NewFile {
                path: b.clone(),
                mode: 0o644,
                contents: b"B",
            },
        ])
        .unwrap();
        assert!(!a.exists() && !b.exists(), "nothing visible before commit");
        staged.commit(&crate::interrupt::critical()).unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"A");
        assert_eq!(fs::metadata(&a).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&b).unwrap().mode() & 0o777, 0o644);

        // b exists now: a second group must fail as a whole and leave no new file.
        let c = dir.path().join("c");
        let staged = stage(&[
            NewFile {
                path: c.clone(),
                mode: 0o600,
                contents: b"C",
            },
            NewFile {
                path: b.clone(),
                mode: 0o644,
                contents: b"X",
            },
        ])
        .unwrap();
        let e = staged.commit(&crate::interrupt::critical()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(
            !c.exists(),
            "the first file of a failed group is removed again"
        );
        assert_eq!(fs::read(&b).unwrap(), b"B");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }

    #[test]
    fn dropped_stage_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        drop(
            stage(&[NewFile {
                path: dir.path().join("k"),
                mode: 0o600,
                contents: b"k",
            }])
            .unwrap(),
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn backup_names_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("id_ed25519");
        let first = backup_path(&p, "20260101T000000Z");
        assert!(first.ends_with("id_ed25519.bak-20260101T000000Z"));
        fs::write(&first, "x").unwrap();
        let second = backup_path(&p, "20260101T000000Z");
        assert!(second.ends_with("id_ed25519.bak-20260101T000000Z-2"));
    }
}
