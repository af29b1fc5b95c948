//! The archive of replaced keys (`SSH_DIR/keyclone-archive/`): checked before anything is
//! created and again right before the old pair goes in; the old pair is linked (or copied) there
//! under `NAME-STARTED`, so a re-run finds what an interrupted one did.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::State;
use crate::error::{Error, Result};
use crate::files;
use crate::ssh::key;

/// The folder under the SSH directory where replaced keys are kept.
pub const ARCHIVE_DIR: &str = "keyclone-archive";

/// Refuses an archive folder that would let the old private key leave the SSH directory or be
/// read by others, before anything is created (and again right before the old key goes in):
/// it must be a real folder (not a symbolic link), belong to the user or root, and have no
/// permission for group or others (700). A missing folder is created with mode 700.
pub(crate) fn check_archive(archive_dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let shown = archive_dir.display();
    let meta = match std::fs::symlink_metadata(archive_dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return files::check_private_dir(archive_dir).map(|_| ());
        }
        Err(e) => return Err(Error::io("inspect the archive folder", archive_dir, e)),
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(archive_dir)
            .map(|t| format!(" (to `{}`)", t.display()))
            .unwrap_or_default();
        return Err(Error::refused(format!(
            "the archive folder `{shown}` is a symbolic link{target}: the old private key would be moved wherever it points, outside the SSH directory"
        ))
        .hint(format!(
            "remove the link with `rm {shown}` (keyclone then creates a private folder, mode 700), then run `keyclone rotate` again"
        ))
        .hint("or delete the old pair instead of archiving it with `--delete-old`"));
    }
    if !meta.is_dir() {
        return Err(Error::refused(format!(
            "the archive folder `{shown}` exists and is not a folder"
        ))
        .hint(format!(
            "move `{shown}` away, then run `keyclone rotate` again"
        )));
    }
    let mode = meta.mode() & 0o7777;
    let problem = files::dir_problem(meta.mode(), meta.uid(), files::my_uid()).or_else(|| {
        (mode & 0o077 != 0).then(|| {
            format!("others can read or enter it (mode {mode:o}), and an archived private key must be readable by you only")
        })
    });
    if let Some(problem) = problem {
        return Err(Error::refused(format!(
            "the archive folder `{shown}` is not safe for old private keys: {problem}"
        ))
        .hint(format!(
            "run `chmod 700 {shown}` (and check its owner), then `keyclone rotate` again"
        )));
    }
    files::check_private_dir(archive_dir).map(|_| ())
}

/// Links (or copies) the old pair into the archive; the old key stays in place.
pub(crate) fn archive_old(state: &State, archive_dir: &Path) -> Result<PathBuf> {
    check_archive(archive_dir)?;
    files::ensure_private_dir(archive_dir)?;
    check_archive(archive_dir)?;
    let name = state
        .key
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".into());
    let dest = archive_dir.join(format!("{name}-{}", state.started));
    let (old_priv, old_pub) = key::pair_paths(&state.key);
    let (dest_priv, dest_pub) = key::pair_paths(&dest);
    for (from, to) in [(&old_priv, &dest_priv), (&old_pub, &dest_pub)] {
        if to.exists() || !from.exists() {
            continue; // done by an earlier, interrupted run (or no .pub to keep)
        }
        if std::fs::hard_link(from, to).is_err() {
            let bytes = files::read_bounded(from, files::KEY_LIMIT, "old key")?;
            let mode = std::fs::metadata(from).map_or(0o600, |m| m.permissions().mode() & 0o777);
            files::replace(to, &bytes, mode)?;
        }
    }
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::error::ErrorKind;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_missing_or_private_archive_folder_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join(ARCHIVE_DIR);
        check_archive(&archive).unwrap();
        assert!(!archive.exists(), "checking creates nothing");
        std::fs::create_dir(&archive).unwrap();
        chmod(&archive, 0o700);
        check_archive(&archive).unwrap();
    }

    #[test]
    fn an_archive_folder_others_can_enter_is_refused_with_chmod() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join(ARCHIVE_DIR);
        std::fs::create_dir(&archive).unwrap();
        for mode in [0o755, 0o750, 0o701, 0o770] {
            chmod(&archive, mode);
            let e = check_archive(&archive).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Refused, "{mode:o}");
            assert!(
                e.message().contains("not safe for old private keys"),
                "{mode:o}"
            );
            assert!(e.hints()[0].contains("chmod 700"), "{mode:o}");
        }
    }

    #[test]
    fn an_archive_that_is_a_link_or_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        chmod(&elsewhere, 0o700);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let e = check_archive(&link).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.message().contains("symbolic link"), "{}", e.message());
        assert!(e.message().contains("elsewhere"), "{}", e.message());
        assert!(e.hints().iter().any(|h| h.contains("--delete-old")));

        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let e = check_archive(&file).unwrap_err();
        assert!(e.message().contains("is not a folder"), "{}", e.message());
    }

    #[test]
    fn the_old_pair_is_archived_under_its_name_and_start_and_a_rerun_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o700);
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, "old private").unwrap();
        chmod(&key, 0o600);
        std::fs::write(key.with_file_name("id_ed25519.pub"), "old public").unwrap();
        let state = State::sample(&key);
        let archive = dir.path().join(ARCHIVE_DIR);
        let dest = archive_old(&state, &archive).unwrap();
        assert_eq!(dest, archive.join("id_ed25519-20261201T000000Z"));
        let mode = std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old private");
        let pubp = archive.join("id_ed25519-20261201T000000Z.pub");
        assert_eq!(std::fs::read_to_string(&pubp).unwrap(), "old public");
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "old private");
        // A re-run (after the switch put the new key in place) keeps what was archived.
        let new = dir.path().join("new");
        std::fs::write(&new, "new private").unwrap();
        std::fs::rename(&new, &key).unwrap();
        assert_eq!(archive_old(&state, &archive).unwrap(), dest);
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old private");
    }
}
