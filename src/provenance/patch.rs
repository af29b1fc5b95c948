//! The uncommitted diff as a patch artifact (never a property), and the rule for which paths
//! look like secrets.

use crate::error::{Error, Result};

/// Paths whose content looks like a secret: never put into a patch.
pub fn secret_looking(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    name == ".env"
        || name.starts_with(".env.")
        || name == ".netrc"
        || name == ".pgpass"
        || name == "credentials"
        || name.starts_with("id_rsa")
        || name.starts_with("id_ed25519")
        || name.starts_with("id_ecdsa")
        || [".pem", ".key", ".p12", ".pfx", ".jks", ".keystore"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// `git diff HEAD` (staged and unstaged changes to tracked files), in patch form, without
/// binary files and secret-looking paths, cut at `cap` bytes.
pub(super) fn patch(
    repo: &git2::Repository,
    cap: usize,
    notes: &mut Vec<String>,
) -> Result<Vec<u8>> {
    let head = repo
        .head()
        .and_then(|h| h.peel_to_tree())
        .map_err(|e| Error::internal("HEAD has no tree").with_source(e))?;
    let mut o = git2::DiffOptions::new();
    o.include_untracked(false).ignore_submodules(true);
    let diff = repo
        .diff_tree_to_workdir_with_index(Some(&head), Some(&mut o))
        .map_err(|e| Error::internal("could not compute the diff").with_source(e))?;
    let mut out = Vec::new();
    let mut skipped_secret = Vec::new();
    let mut skipped_binary = 0usize;
    let mut truncated = false;
    for (i, delta) in diff.deltas().enumerate() {
        let path = delta
            .new_file()
            .path()
            .or_else(|| delta.old_file().path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if secret_looking(&path) {
            skipped_secret.push(path);
            continue;
        }
        let Ok(Some(mut pp)) = git2::Patch::from_diff(&diff, i) else {
            continue;
        };
        if pp.delta().flags().is_binary() || delta.flags().is_binary() {
            skipped_binary += 1;
            continue;
        }
        let Ok(buf) = pp.to_buf() else { continue };
        if out.len() + buf.len() > cap {
            truncated = true;
            break;
        }
        out.extend_from_slice(&buf);
    }
    if !skipped_secret.is_empty() {
        notes.push(format!(
            "the patch leaves out {} secret-looking file(s): {}",
            skipped_secret.len(),
            skipped_secret.join(", ")
        ));
    }
    if skipped_binary > 0 {
        notes.push(format!(
            "the patch leaves out {skipped_binary} binary file(s)"
        ));
    }
    if truncated {
        notes.push(format!("the patch stops at the size cap ({cap} bytes)"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_paths() {
        for p in [
            ".env",
            "conf/.env.local",
            "certs/server.pem",
            "id_rsa",
            "a/b.key",
            ".netrc",
        ] {
            assert!(secret_looking(p), "{p}");
        }
        for p in ["train.py", "environment.yml", "keys.md", "README"] {
            assert!(!secret_looking(p), "{p}");
        }
    }
}
