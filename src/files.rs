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

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

/// The most keyclone reads of a key file (private or public): the largest OpenSSH keys (RSA
/// 16384 with a certificate) are a few KiB.
pub const KEY_LIMIT: u64 = 64 * 1024;
/// The most keyclone reads of a passphrase file.
pub const PASSPHRASE_LIMIT: u64 = 64 * 1024;
/// The most keyclone reads of a config file: its own, `~/.ssh/config`, a rotation state.
pub const CONFIG_LIMIT: u64 = 1024 * 1024;
/// The most keyclone reads of a known_hosts file (about 100 000 lines of hashed entries).
pub const KNOWN_HOSTS_LIMIT: u64 = 64 * 1024 * 1024;
/// The most keyclone reads of a git index (git's own for a tree of millions of files).
pub const INDEX_LIMIT: u64 = 1024 * 1024 * 1024;

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn kind_of(t: fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Reads the file at `path` (a `what`: "private key", "known_hosts file") of at most `limit`
/// bytes, with the metadata of the file that was read. The file is opened without blocking (a
/// FIFO does not hang the open) and checked on the open descriptor (no race between the check
/// and the read): it must be a regular file of at most `limit` bytes, and at most `limit + 1`
/// bytes are ever read. Symbolic links are followed, as OpenSSH does for these files.
pub fn read_bounded_meta(path: &Path, limit: u64, what: &str) -> Result<(Vec<u8>, fs::Metadata)> {
    let p = path.display();
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(&format!("read the {what}"), path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(&format!("read the {what}"), path, e))?;
    if !meta.is_file() {
        let kind = kind_of(meta.file_type());
        let e = if meta.is_dir() {
            Error::new(
                ErrorKind::Io,
                format!("could not read the {what}: `{p}` is a directory, not a regular file"),
            )
        } else {
            Error::refused(format!(
                "refusing to read the {what} `{p}`: it is {kind}, not a regular file (reading it might never end)"
            ))
        };
        return Err(e.hint(format!(
            "point keyclone at the {what} itself (a regular file)"
        )));
    }
    let too_big = || {
        Error::refused(format!(
            "refusing to read the {what} `{p}`: it is larger than {}, the most keyclone reads of a {what}, so it cannot be one",
            human(limit)
        ))
        .hint(format!(
            "check that `{p}` is the right file (`ls -l {p}`); keyclone's limits are in SECURITY.md"
        ))
    };
    if meta.len() > limit {
        return Err(too_big());
    }
    // Capacity from the size already checked, so the buffer is not reallocated (and copied)
    // while reading unless the file grows.
    let mut buf = Vec::with_capacity(meta.len() as usize + 1);
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(&format!("read the {what}"), path, e))?;
    if buf.len() as u64 > limit {
        return Err(too_big());
    }
    Ok((buf, meta))
}

/// [`read_bounded_meta`] without the metadata.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    read_bounded_meta(path, limit, what).map(|(b, _)| b)
}

/// [`read_bounded_meta`], with `None` for a missing file.
pub fn read_bounded_if_exists(
    path: &Path,
    limit: u64,
    what: &str,
) -> Result<Option<(Vec<u8>, fs::Metadata)>> {
    match read_bounded_meta(path, limit, what) {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`read_bounded`] as UTF-8 text.
pub fn read_bounded_text(path: &Path, limit: u64, what: &str) -> Result<String> {
    String::from_utf8(read_bounded(path, limit, what)?).map_err(|_| {
        Error::usage(format!("the {what} `{}` is not UTF-8 text", path.display()))
            .hint(format!("check that `{}` is a {what}", path.display()))
    })
}

/// Why a file keyclone trusts (known_hosts) is unsafe, if it is: as [`dir_problem`], it must
/// belong to the user or root, and nobody else may write to it.
pub fn file_problem(meta: &fs::Metadata) -> Option<String> {
    dir_problem(meta.mode(), meta.uid(), my_uid())
}

static KILL_AT: OnceLock<String> = OnceLock::new();

/// Tests only, debug builds only: names the point (`rename:FILE NAME`) where the process kills
/// itself with SIGKILL, as `KEYCLONE_TEST_KILL_AT` says. Release builds ignore it.
pub fn set_test_kill_point(point: Option<&str>) {
    if cfg!(debug_assertions)
        && let Some(p) = point
    {
        let _ = KILL_AT.set(p.to_owned());
    }
}

/// Dies with SIGKILL if the test kill point is `point` (debug builds only).
pub fn kill_point(point: &str) {
    signal_point(point, false);
}

/// The test hook at `point` (debug builds only): `KEYCLONE_TEST_KILL_AT=POINT` dies with
/// SIGKILL there; `POINT@INT`, `POINT@TERM` or `POINT@HUP` delivers that signal there, as a
/// Ctrl-C, `kill` or a closed terminal would, and lets keyclone's handler answer it.
fn signal_point(point: &str, inside_critical: bool) {
    use nix::sys::signal::Signal;
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(spec) = KILL_AT.get() else { return };
    let Some(rest) = spec.strip_prefix(point) else {
        return;
    };
    let signal = match rest {
        "" => Signal::SIGKILL,
        "@INT" => Signal::SIGINT,
        "@TERM" => Signal::SIGTERM,
        "@HUP" => Signal::SIGHUP,
        _ => return,
    };
    if signal == Signal::SIGKILL {
        let _ = nix::sys::signal::raise(signal);
    } else {
        interrupt::raise_for_test(signal, inside_critical);
    }
}

fn file_name_of(dest: &Path) -> String {
    dest.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Test points around a rename (inside the critical section).
fn kill_before_rename(dest: &Path) {
    if cfg!(debug_assertions) && KILL_AT.get().is_some() {
        signal_point(&format!("rename:{}", file_name_of(dest)), true);
    }
}

/// Test point after a temporary file is written, before the critical section.
fn kill_after_temp(dest: &Path) {
    if cfg!(debug_assertions) && KILL_AT.get().is_some() {
        signal_point(&format!("write:{}", file_name_of(dest)), false);
    }
}

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
    let mut write = || -> std::io::Result<()> {
        lock.write_all(contents)?;
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
    let tmp = write_temp(parent_dir(path), path, contents, mode)?;
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
    fn bounded_reads_take_regular_files_up_to_the_limit_and_refuse_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, vec![b'x'; 1024]).unwrap();
        assert_eq!(read_bounded(&f, 1024, "key").unwrap().len(), 1024);
        let e = read_bounded(&f, 1023, "key").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(
            e.message().contains("larger than 1023 bytes"),
            "{}",
            e.message()
        );
        assert!(e.hints()[0].contains("SECURITY.md"));

        let e = read_bounded(Path::new("/dev/zero"), KEY_LIMIT, "private key").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(
            e.message()
                .contains("a character device, not a regular file")
        );

        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_bounded(&fifo, KEY_LIMIT, "private key").unwrap_err();
        assert!(e.message().contains("FIFO"), "{}", e.message());

        let e = read_bounded(dir.path(), KEY_LIMIT, "known_hosts file").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.message().contains("is a directory"));

        let missing = dir.path().join("missing");
        assert_eq!(
            read_bounded(&missing, 1, "key").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert!(
            read_bounded_if_exists(&missing, 1, "key")
                .unwrap()
                .is_none()
        );
        assert_eq!(human(64 * 1024), "64 KiB");
        assert_eq!(human(1 << 30), "1 GiB");
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
    fn backup_names_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("id_ed25519");
        let first = backup_path(&p, "20260101T000000Z");
        assert!(first.ends_with("id_ed25519.bak-20260101T000000Z"));
        fs::write(&first, "x").unwrap();
        let second = backup_path(&p, "20260101T000000Z");
        assert!(second.ends_with("id_ed25519.bak-20260101T000000Z-2"));
    }

    #[test]
    fn the_read_limits_are_the_ones_security_md_documents() {
        // SECURITY.md's table: keys and passphrases 64 KiB, configs 1 MiB, known_hosts 64 MiB,
        // the git index 1 GiB.
        let shown: Vec<String> = [
            KEY_LIMIT,
            PASSPHRASE_LIMIT,
            CONFIG_LIMIT,
            KNOWN_HOSTS_LIMIT,
            INDEX_LIMIT,
        ]
        .into_iter()
        .map(human)
        .collect();
        assert_eq!(shown, ["64 KiB", "64 KiB", "1 MiB", "64 MiB", "1 GiB"]);
        assert_eq!(human(1536), "1536 bytes");
        assert_eq!(human(0), "0 bytes");
        assert_eq!(human(3 << 20), "3 MiB");
        assert_eq!(human((1 << 30) + (1 << 20)), "1025 MiB");
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
