//! How keyclone reads and writes the files that matter (keys, known_hosts, ssh config, its own
//! config, the git index) and which directories it trusts to hold them.
//!
//! Reads are bounded: every file keyclone reads goes through [`read_bounded`], which opens the
//! file, checks on the open descriptor that it is a regular file, and reads at most the limit of
//! its kind (see the `*_LIMIT` constants), so `/dev/zero`, a FIFO or a huge file is refused
//! with a clear error instead of exhausting memory or hanging.
//!
//! Writes are atomic and crash-safe: a temporary file `.keyclone-NAME.RANDOM.tmp` in the same
//! directory, locked (`flock`) by its writer for its whole life, the final mode set on it, data
//! synced, then renamed into place, then the directory synced. A group of files is created all
//! together or not at all; after a `kill -9`, the next keyclone run that writes in the
//! directory removes the temporary files whose writer is dead (see [`sweep`]). The permission
//! policy is a pure function ([`dir_problem`]) with unit tests.
//!
//! `read` holds the bounded reads, `write` the temporary files, the staging and the sweep,
//! `hooks` the test kill points; this file the directory and file policy.

mod hooks;
mod read;
mod write;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{AccessFlags, Uid, access};

use crate::error::{Error, ErrorKind, Result};

pub use hooks::{kill_point, set_test_kill_point};
pub use read::*;
pub use write::*;

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

/// Why a file keyclone trusts (known_hosts) is unsafe, if it is: as [`dir_problem`], it must
/// belong to the user or root, and nobody else may write to it.
pub fn file_problem(meta: &fs::Metadata) -> Option<String> {
    dir_problem(meta.mode(), meta.uid(), my_uid())
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
    fn only_a_missing_file_counts_as_missing() {
        // A path through a regular file (ENOTDIR) is an error, not "nothing there": a
        // known_hosts that cannot be read must not be taken for an empty one.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, "x").unwrap();
        let through = file.join("known_hosts");
        assert!(read_bounded_if_exists(&through, 1024, "known_hosts file").is_err());
        assert!(occupant(&through).is_err());
        assert!(matches!(
            read_bounded_if_exists(&dir.path().join("absent"), 1024, "known_hosts file"),
            Ok(None)
        ));
        assert_eq!(
            occupant(&dir.path().join("absent")).unwrap(),
            Occupant::Nothing
        );
    }

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
    fn a_key_directory_is_checked_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("ssh");
        assert_eq!(check_private_dir(&keys).unwrap(), DirState::Missing);
        assert_eq!(
            check_private_dir(&keys.join("deeper")).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        ensure_private_dir(&keys).unwrap();
        assert_eq!(fs::metadata(&keys).unwrap().mode() & 0o7777, 0o700);
        ensure_private_dir(&keys).unwrap();
        assert_eq!(check_private_dir(&keys).unwrap(), DirState::Exists);
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_private_dir(&keys).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.message().contains("every user"), "{}", e.message());
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        assert_eq!(
            check_private_dir(&file).unwrap_err().kind(),
            ErrorKind::Refused
        );
        // A path through a file is an I/O error, not a directory still to be created.
        let e = check_private_dir(&file.join("ssh")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io, "{}", e.message());
        assert!(ensure_private_dir(&file).is_err());
    }

    #[test]
    fn occupants_are_told_apart_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(occupant(&file).unwrap(), Occupant::File);
        assert_eq!(occupant(&link).unwrap(), Occupant::Symlink);
        assert_eq!(occupant(dir.path()).unwrap(), Occupant::Other);
        assert_eq!(
            occupant(&dir.path().join("none")).unwrap(),
            Occupant::Nothing
        );
    }

    #[test]
    fn a_move_never_replaces_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, "A").unwrap();
        fs::write(&b, "B").unwrap();
        assert!(move_noclobber(&a, &b).is_err());
        assert_eq!(fs::read(&a).unwrap(), b"A");
        assert_eq!(fs::read(&b).unwrap(), b"B");
        let c = dir.path().join("c");
        move_noclobber(&a, &c).unwrap();
        assert!(!a.exists());
        assert_eq!(fs::read(&c).unwrap(), b"A");
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
