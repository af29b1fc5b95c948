//! The known_hosts writer: lines for a key, and the atomic, locked rewrite that keeps every
//! byte it does not change and the file's mode.

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ssh_key::PublicKey;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::files;

use super::{hash_name, untrusted};

/// A known_hosts line for `key` on `ep`, hashed if asked (no trailing newline).
pub fn format_line(ep: &Endpoint, key: &PublicKey, hash: bool) -> String {
    let name = ep.known_hosts_name();
    let shown = if hash { hash_name(&name) } else { name };
    let mut k = key.clone();
    k.set_comment("");
    let text = k.to_openssh().unwrap_or_default();
    format!("{shown} {}", text.trim_end())
}

/// Rewrites a known_hosts file under an exclusive lock: `edit` gets the current bytes (empty for
/// a missing file) and returns the new bytes, or `None` to leave the file alone. The new file
/// replaces the old one atomically with the old file's mode (0600 for a new file). Returns
/// whether the file changed.
pub fn update(path: &Path, edit: impl FnOnce(&[u8]) -> Result<Option<Vec<u8>>>) -> Result<bool> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if files::occupant(path)? == files::Occupant::Symlink {
        return Err(Error::refused(format!(
            "`{}` is a symbolic link; keyclone does not replace files through links",
            path.display()
        ))
        .hint("point `--ssh-dir` at the directory that holds the real file, or replace the link with the file"));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lock_path = dir.join(format!(".{name}.keyclone-lock"));
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| Error::io("create the lock file", &lock_path, e))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| Error::io("lock", &lock_path, std::io::Error::from(errno)))?;
    let (current, mode) =
        match files::read_bounded_if_exists(path, files::KNOWN_HOSTS_LIMIT, "known_hosts file")? {
            Some((b, meta)) => {
                untrusted(path, &meta)?;
                (b, meta.permissions().mode() & 0o7777)
            }
            None => (Vec::new(), 0o600),
        };
    let Some(new) = edit(&current)? else {
        return Ok(false);
    };
    if new == current {
        return Ok(false);
    }
    files::replace(path, &new, mode)?;
    Ok(true)
}

/// `current` with the given 1-based lines removed and `lines` appended; every other byte kept.
pub fn edit_bytes(current: &[u8], remove: &[usize], lines: &[String]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(current.len() + lines.iter().map(|l| l.len() + 1).sum::<usize>());
    let mut start = 0;
    let mut line_no = 1;
    while start < current.len() {
        let end = current[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(current.len(), |i| start + i + 1);
        if !remove.contains(&line_no) {
            out.extend_from_slice(&current[start..end]);
        }
        start = end;
        line_no += 1;
    }
    if !lines.is_empty() && !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    for l in lines {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{ED, kh};
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn format_line_uses_brackets_for_other_ports_and_can_hash() {
        let key = PublicKey::from_openssh(ED).unwrap();
        assert_eq!(
            format_line(&Endpoint::new("Host.Example", 22), &key, false),
            format!("host.example {ED}")
        );
        assert_eq!(
            format_line(&Endpoint::new("h", 2222), &key, false),
            format!("[h]:2222 {ED}")
        );
        let hashed = format_line(&Endpoint::new("h", 2222), &key, true);
        assert!(hashed.starts_with("|1|"));
        assert_eq!(kh(&hashed).lookup(&Endpoint::new("h", 2222)).count(), 1);
    }

    #[test]
    fn edit_keeps_every_other_byte() {
        let cur = b"# keep me\r\nbad line\nold line\nlast-no-newline";
        let out = edit_bytes(cur, &[3], &["new line".into()]);
        assert_eq!(out, b"# keep me\r\nbad line\nlast-no-newline\nnew line\n");
        assert_eq!(edit_bytes(b"", &[], &["x".into()]), b"x\n");
    }

    #[test]
    fn removing_a_line_without_adding_one_keeps_the_end_as_it_was() {
        assert_eq!(edit_bytes(b"a\nb", &[1], &[]), b"b");
        assert_eq!(edit_bytes(b"a\nb\n", &[2], &[]), b"a\n");
        assert_eq!(edit_bytes(b"a\nb", &[], &[]), b"a\nb");
    }

    #[test]
    fn update_writes_only_a_change_keeps_the_mode_and_locks_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let line = format!("h {ED}");
        // A new file: mode 0600.
        let changed = update(&path, |cur| {
            assert!(cur.is_empty());
            Ok(Some(edit_bytes(cur, &[], std::slice::from_ref(&line))))
        })
        .unwrap();
        assert!(changed);
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{line}\n"));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        assert!(dir.path().join(".known_hosts.keyclone-lock").exists());

        // The same bytes, or no answer, change nothing.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!update(&path, |cur| Ok(Some(cur.to_vec()))).unwrap());
        assert!(!update(&path, |_| Ok(None)).unwrap());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o644
        );

        // A change keeps the existing file's mode.
        assert!(update(&path, |cur| Ok(Some(edit_bytes(cur, &[1], &["x".into()])))).unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "x\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o644
        );

        // Not through a link, and not a file others can write.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = update(&link, |_| Ok(Some(b"y\n".to_vec()))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o646)).unwrap();
        let e = update(&path, |_| Ok(Some(b"y\n".to_vec()))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert_eq!(fs::read_to_string(&path).unwrap(), "x\n");
    }
}
