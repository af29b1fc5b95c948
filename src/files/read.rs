//! Bounded reads: every file keyclone reads is opened without blocking, checked on the open
//! descriptor to be a regular file, and read up to the limit of its kind.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
