//! Atomic, crash-safe writes: locked temporary files beside their destination, renamed into
//! place, and the sweep that removes those of a dead writer.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::interrupt::{self, CriticalSection};

use super::hooks::{kill_after_temp, kill_before_rename};
use super::my_uid;
use super::read::{KEY_LIMIT, read_bounded_text};

const TEMP_PREFIX: &str = ".keyclone-";
const TEMP_SUFFIX: &str = ".tmp";
/// The most of the final name kept in a temporary file's name.
const MAX_NAME_IN_TEMP: usize = 200;
/// An empty temporary file may belong to a writer that has created it and not yet locked it;
/// only one older than this is removed.
const EMPTY_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// The final name a temporary file was written for: `.keyclone-NAME.RANDOM.tmp` → `NAME`.
fn temp_dest_name(temp: &str) -> Option<&str> {
    let inner = temp.strip_prefix(TEMP_PREFIX)?.strip_suffix(TEMP_SUFFIX)?;
    let (dest, random) = inner.rsplit_once('.')?;
    (!dest.is_empty() && !random.is_empty()).then_some(dest)
}

/// Cleans up after a keyclone killed while writing in `dir` (`kill -9`, power loss): every
/// `.keyclone-*.tmp` file whose writer is dead (its lock can be taken at once) is removed, so
/// no copy of a private key stays behind; a file being written by a live keyclone is locked
/// and left alone. One case is completed instead: the public half of a key pair whose private
/// key was already renamed into place (see [`Staged::commit`]), when it belongs to that key.
pub fn sweep(dir: &Path) {
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    for de in listing.flatten() {
        let name = de.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(dest_name) = temp_dest_name(name) else {
            continue;
        };
        let path = de.path();
        let Ok(file) = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(&path)
        else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        if !meta.is_file() || meta.uid() != my_uid() {
            continue;
        }
        let Ok(mut locked) =
            nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        else {
            continue; // its writer is alive
        };
        // Still the same file under that name (not renamed into place meanwhile)?
        let same = fs::symlink_metadata(&path)
            .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
        if !same {
            continue;
        }
        let size = locked.metadata().map_or(0, |m| m.len());
        if size == 0 {
            let old = meta
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > EMPTY_TEMP_AGE);
            if !old {
                continue;
            }
        }
        let dest = dir.join(dest_name);
        if completes_pair(&mut locked, size, &dest) && fs::hard_link(&path, &dest).is_ok() {
            sync_dir(dir);
        }
        let _ = fs::remove_file(&path);
    }
}

/// Whether the dead temporary file is the missing `.pub` of a key pair whose private key is in
/// place, and holds that key's public key.
fn completes_pair(file: &mut fs::File, size: u64, dest: &Path) -> bool {
    let Some(private) = dest
        .to_str()
        .and_then(|d| d.strip_suffix(".pub"))
        .map(PathBuf::from)
    else {
        return false;
    };
    if size > KEY_LIMIT || fs::symlink_metadata(dest).is_ok() {
        return false;
    }
    let mut text = String::new();
    if (&*file).take(KEY_LIMIT).read_to_string(&mut text).is_err() {
        return false;
    }
    let Ok(public) = ssh_key::PublicKey::from_openssh(text.trim()) else {
        return false;
    };
    let Ok(private_text) = read_bounded_text(&private, KEY_LIMIT, "private key") else {
        return false;
    };
    ssh_key::PrivateKey::from_openssh(&private_text)
        .is_ok_and(|k| k.public_key().key_data() == public.key_data())
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
    files: Vec<(Temp, PathBuf)>,
}

/// A temporary file, complete and synced, locked by this process until it is renamed or
/// deleted (the lock tells [`sweep`] in another process that its writer is alive).
#[derive(Debug)]
struct Temp {
    path: tempfile::TempPath,
    _lock: nix::fcntl::Flock<fs::File>,
}

/// Writes `contents` to a new temporary file in `dir` with exactly `mode`, synced. The file is
/// locked before its first byte is written, registered for removal on interrupt, and deleted
/// when the returned value is dropped. Dead temporary files in `dir` are swept first.
fn write_temp(dir: &Path, dest: &Path, contents: &[u8], mode: u32) -> Result<Temp> {
    write_temp_with(dir, dest, mode, &mut |f| {
        f.write_all(contents)
            .map_err(|e| Error::io(&format!("write `{}`", dest.display()), dest, e))
    })
}

/// [`write_temp`] with the contents written by `fill` (a stream); an error of `fill` deletes
/// the temporary file and is returned as it is.
fn write_temp_with(
    dir: &Path,
    dest: &Path,
    mode: u32,
    fill: &mut dyn FnMut(&mut fs::File) -> Result<()>,
) -> Result<Temp> {
    sweep(dir);
    let mut dest_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().replace(['/', '\0'], "_"))
        .unwrap_or_default();
    // The temporary name must fit NAME_MAX (255) with the prefix, random part and suffix; a
    // shortened name only means that [`sweep`] removes the file instead of completing a pair.
    while dest_name.len() > MAX_NAME_IN_TEMP {
        dest_name.pop();
    }
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{dest_name}."))
        .suffix(TEMP_SUFFIX)
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    interrupt::track(tmp.path());
    let (file, tmp_path) = tmp.into_parts();
    let fail = |tmp_path: tempfile::TempPath, e: std::io::Error| {
        interrupt::untrack(&tmp_path);
        drop(tmp_path); // deletes the temporary file
        Error::io(&format!("write `{}`", dest.display()), dest, e)
            .hint("nothing was written; fix the cause and run the same command again")
    };
    let mut lock = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive) {
        Ok(l) => l,
        Err((_, errno)) => return Err(fail(tmp_path, std::io::Error::from(errno))),
    };
    if let Err(e) = fill(&mut lock) {
        interrupt::untrack(&tmp_path);
        drop(tmp_path);
        return Err(e.hint("nothing was written; fix the cause and run the same command again"));
    }
    let write = || -> std::io::Result<()> {
        // fchmod is not subject to the umask: the file gets exactly its final mode.
        lock.set_permissions(fs::Permissions::from_mode(mode))?;
        lock.sync_all()
    };
    if let Err(e) = write() {
        return Err(fail(tmp_path, e));
    }
    kill_after_temp(dest);
    Ok(Temp {
        path: tmp_path,
        _lock: lock,
    })
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
    replace_with(path, mode, &mut |f| {
        f.write_all(contents)
            .map_err(|e| Error::io(&format!("write `{}`", path.display()), path, e))
    })
}

/// [`replace`] with the contents streamed by `fill` into the temporary file (a download, a
/// large file never held in memory): if `fill` fails, nothing is renamed and the temporary file
/// is gone.
pub fn replace_with(
    path: &Path,
    mode: u32,
    fill: &mut dyn FnMut(&mut fs::File) -> Result<()>,
) -> Result<()> {
    let tmp = write_temp_with(parent_dir(path), path, mode, fill)?;
    let tmp_name = tmp.path.to_path_buf();
    let _section = interrupt::critical();
    kill_before_rename(path);
    let result = tmp.path.persist(path);
    interrupt::untrack(&tmp_name);
    result.map_err(|e| Error::io("replace", path, e.error))?;
    sync_dir(parent_dir(path));
    Ok(())
}

impl Staged {
    /// Renames every file into place, in order, refusing to replace an existing file. If one
    /// rename fails, the files already placed are removed again: all or nothing. The caller
    /// holds the critical section, so an interrupt cannot fall between the renames.
    ///
    /// A `kill -9` can. For a key pair the private key comes first, on purpose: a private key
    /// without its `.pub` still works (OpenSSH reads the public half from it) and the missing
    /// `.pub` is completed by the next run's [`sweep`] from its dead temporary file, checked
    /// against the private key (the OpenSSH format stores the public key unencrypted). A `.pub`
    /// without its private key would be useless, and would make the next `keygen` refuse.
    pub fn commit(mut self, _section: &CriticalSection) -> Result<()> {
        let mut placed: Vec<PathBuf> = Vec::new();
        let files = std::mem::take(&mut self.files);
        let mut iter = files.into_iter();
        while let Some((tmp, dest)) = iter.next() {
            let tmp_name = tmp.path.to_path_buf();
            kill_before_rename(&dest);
            let Temp { path, _lock } = tmp;
            match path.persist_noclobber(&dest) {
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
                        interrupt::untrack(&rest.path);
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
            interrupt::untrack(&tmp.path);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn a_temporary_name_needs_both_a_final_name_and_a_random_part() {
        assert_eq!(temp_dest_name(".keyclone-.aB3dE9.tmp"), None);
        assert_eq!(temp_dest_name(".keyclone-config..tmp"), None);
        assert_eq!(
            temp_dest_name(".keyclone-config.aB3dE9.tmp"),
            Some("config")
        );
    }

    #[test]
    fn sweep_leaves_another_users_dead_temporary_file_alone() {
        assert!(
            nix::unistd::Uid::effective().is_root(),
            "this test makes a file owned by `nobody`: run it as root (CI does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join(".keyclone-id_ed25519.aB3dE9.tmp");
        fs::write(&theirs, "their bytes").unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        sweep(dir.path());
        assert!(theirs.exists(), "another user's file was removed");
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
    fn sweep_removes_only_temporary_files_whose_writer_is_dead() {
        let dir = tempfile::tempdir().unwrap();
        let put = |name: &str, data: &[u8]| {
            let p = dir.path().join(name);
            fs::write(&p, data).unwrap();
            p
        };
        // Stands for a private key (any bytes: the sweep does not read them).
        let dead = put(".keyclone-id_ed25519.aB3dE9.tmp", b"secret key bytes");
        let alive = put(".keyclone-known_hosts.Zz0000.tmp", b"line");
        let empty = put(".keyclone-config.Yy1111.tmp", b"");
        let other = put(".keyclone-rotate-id.json", b"{}");
        let holder = fs::File::open(&alive).unwrap();
        let _lock = nix::fcntl::Flock::lock(holder, nix::fcntl::FlockArg::LockExclusive).unwrap();
        sweep(dir.path());
        assert!(!dead.exists(), "a dead writer's temporary file is removed");
        assert!(alive.exists(), "a live writer's file is left alone");
        assert!(
            empty.exists(),
            "a fresh empty file may be a writer that has not locked yet"
        );
        assert!(other.exists(), "not a temporary file");
        assert_eq!(
            temp_dest_name(".keyclone-id_ed25519.pub.aB3dE9.tmp"),
            Some("id_ed25519.pub")
        );
        assert_eq!(temp_dest_name(".keyclone-x.tmp"), None);
    }

    #[test]
    fn sweep_completes_a_half_placed_pair_only_with_its_own_public_key() {
        use crate::ssh::key::{self, KeyType};
        let dir = tempfile::tempdir().unwrap();
        let k = key::generate(KeyType::Ed25519, "me@box").unwrap();
        let pair = key::encode(&k, None, 16).unwrap();
        let other = key::generate(KeyType::Ed25519, "other").unwrap();
        let other_pair = key::encode(&other, None, 16).unwrap();
        let private = dir.path().join("id_ed25519");
        fs::write(&private, pair.private.as_bytes()).unwrap();

        // Another key's public half is never put beside this private key.
        let wrong = dir.path().join(".keyclone-id_ed25519.pub.Ab12Cd.tmp");
        fs::write(&wrong, other_pair.public_line.as_bytes()).unwrap();
        sweep(dir.path());
        assert!(!wrong.exists() && !dir.path().join("id_ed25519.pub").exists());

        let right = dir.path().join(".keyclone-id_ed25519.pub.Ef34Gh.tmp");
        fs::write(&right, pair.public_line.as_bytes()).unwrap();
        fs::set_permissions(&right, fs::Permissions::from_mode(0o644)).unwrap();
        sweep(dir.path());
        assert!(!right.exists());
        let public = dir.path().join("id_ed25519.pub");
        assert_eq!(fs::read_to_string(&public).unwrap(), pair.public_line);
        assert_eq!(fs::metadata(&public).unwrap().mode() & 0o777, 0o644);
    }

    #[test]
    fn a_file_with_a_long_name_is_still_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("k".repeat(250));
        replace(&long, b"x", 0o600).unwrap();
        assert_eq!(fs::read(&long).unwrap(), b"x");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_old_empty_temporary_file_of_a_dead_writer_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join(".keyclone-config.Yy1111.tmp");
        fs::write(&empty, b"").unwrap();
        let old = std::time::SystemTime::now() - EMPTY_TEMP_AGE * 2;
        fs::File::options()
            .write(true)
            .open(&empty)
            .unwrap()
            .set_modified(old)
            .unwrap();
        sweep(dir.path());
        assert!(!empty.exists());
    }

    #[test]
    fn replace_writes_the_new_bytes_with_the_given_mode() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config");
        fs::write(&f, "old").unwrap();
        replace(&f, b"new", 0o640).unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"new");
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
