//! git-lfs's object store, `.git/lfs/objects/OID[0:2]/OID[2:4]/OID`: an object is written
//! there only once its size and SHA-256 are those of its pointer, streamed (never held in
//! memory) to a temporary file that is renamed into place, so an interrupted or refused
//! download leaves no object.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::lfs::pointer::Pointer;

/// Where git-lfs keeps the object `oid` (a valid oid, see `pointer::valid_oid`).
pub fn object_path(git_dir: &Path, oid: &str) -> PathBuf {
    git_dir
        .join("lfs/objects")
        .join(&oid[0..2])
        .join(&oid[2..4])
        .join(oid)
}

/// Whether the store holds the object with its pointer's size (its content was checked when it
/// was stored, and is again when it is checked out).
pub fn has(git_dir: &Path, p: &Pointer) -> bool {
    std::fs::symlink_metadata(object_path(git_dir, &p.oid))
        .is_ok_and(|m| m.is_file() && m.len() == p.size)
}

/// Copies `from` to `to`, refusing unless exactly `p.size` bytes come with the SHA-256 `p.oid`;
/// `on_bytes` hears of each chunk. `what` names the source in errors.
pub fn copy_verified(
    from: &mut dyn Read,
    to: &mut dyn std::io::Write,
    p: &Pointer,
    what: &str,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<()> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Network,
                    format!(
                        "reading {what} failed after {total} of {} bytes: {e}",
                        p.size
                    ),
                )
                .with_source(e));
            }
        };
        total += n as u64;
        if total > p.size {
            return Err(Error::refused(format!(
                "{what} is larger than the {} bytes its pointer says: refused",
                p.size
            )));
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])
            .map_err(|e| write_error(what, total - n as u64, p.size, e))?;
        on_bytes(n as u64);
    }
    if total != p.size {
        return Err(Error::new(
            ErrorKind::Network,
            format!("{what} ended after {total} of its {} bytes", p.size),
        ));
    }
    let got = hex(&hasher.finalize());
    if got != p.oid {
        return Err(Error::refused(format!(
            "{what} does not match its pointer: its SHA-256 is {got}, not {}: refused",
            p.oid
        )));
    }
    Ok(())
}

/// A failed write, saying so plainly when there is no room (a full disk, a file-size limit).
fn write_error(what: &str, at: u64, size: u64, e: std::io::Error) -> Error {
    use std::io::ErrorKind as K;
    let full = matches!(
        e.kind(),
        K::StorageFull | K::FileTooLarge | K::QuotaExceeded
    );
    let why = if full {
        format!("no room left ({e}): the disk is full or a file-size limit was reached")
    } else {
        e.to_string()
    };
    Error::new(
        ErrorKind::Io,
        format!("could not write {what} after {at} of its {size} bytes: {why}"),
    )
    .with_source(e)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stores the object `p` read from `body`, verified (see [`copy_verified`]).
pub fn receive(
    git_dir: &Path,
    p: &Pointer,
    body: &mut dyn Read,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<()> {
    let dest = object_path(git_dir, &p.oid);
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create the folder", dir, e))?;
    }
    let what = format!("the LFS object {}", &p.oid[..12]);
    crate::files::replace_with(&dest, 0o644, &mut |f| {
        copy_verified(body, f, p, &what, on_bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer_of(data: &[u8]) -> Pointer {
        Pointer {
            oid: hex(&Sha256::digest(data)),
            size: data.len() as u64,
        }
    }

    #[test]
    fn a_verified_object_lands_where_git_lfs_keeps_it() {
        let d = tempfile::tempdir().unwrap();
        let p = pointer_of(b"weights");
        receive(d.path(), &p, &mut &b"weights"[..], &mut |_| {}).unwrap();
        let at = d
            .path()
            .join("lfs/objects")
            .join(&p.oid[..2])
            .join(&p.oid[2..4])
            .join(&p.oid);
        assert_eq!(std::fs::read(&at).unwrap(), b"weights");
        assert!(has(d.path(), &p));
    }

    #[test]
    fn wrong_content_wrong_size_and_short_bodies_store_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = pointer_of(b"weights");
        for (body, says) in [
            (&b"WEIGHTS"[..], "does not match"),
            (&b"weights and more"[..], "larger than"),
            (&b"weig"[..], "ended after 4"),
        ] {
            let e = receive(d.path(), &p, &mut &body[..], &mut |_| {}).unwrap_err();
            assert!(e.message().contains(says), "{e}");
            assert!(!has(d.path(), &p));
            let dir = object_path(d.path(), &p.oid);
            let left: Vec<_> = std::fs::read_dir(dir.parent().unwrap()).unwrap().collect();
            assert!(left.is_empty(), "{left:?}");
        }
    }

    #[test]
    fn a_full_disk_or_a_size_limit_is_named_as_no_room() {
        for errno in [28, 27] {
            let e = write_error(
                "the LFS object abc",
                10,
                20,
                std::io::Error::from_raw_os_error(errno),
            );
            assert!(e.message().contains("no room left"), "{errno}: {e}");
            assert!(e.message().contains("after 10 of its 20 bytes"), "{e}");
        }
        let e = write_error("x", 0, 1, std::io::Error::other("broken pipe"));
        assert!(!e.message().contains("no room"), "{e}");
    }
}
