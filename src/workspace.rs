//! Where a clone goes: `ROOT/Users/USER/REPO`, the per-user layout of an Azure ML workspace.
//! ROOT is `--root`, the config, or detected: the persistent code share of an Azure ML compute
//! instance (`~/cloudfiles/code`, shared and kept when the instance is deleted) when it exists,
//! else `~/code` on local disk. `--local` picks local disk even on Azure ML (faster, lost with
//! the machine). Names that could escape the root are refused.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The Azure ML compute instance's persistent, shared code folder under HOME.
pub const AZUREML_CODE_SHARE: &str = "cloudfiles/code";
/// The local-disk root under HOME.
pub const LOCAL_ROOT: &str = "code";

/// Where a clone goes and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Destination {
    pub path: PathBuf,
    /// `Some` when the path came from ROOT/Users/USER/REPO.
    pub root: Option<PathBuf>,
    /// On a shared, persistent file system (Azure ML code share).
    pub persistent_share: bool,
}

/// Refuses a name that would escape its parent or hide: empty, `.`/`..`, a leading `.`, a `/`
/// or `\\`, control characters.
pub fn check_component(name: &str, what: &str, flag: &str) -> Result<()> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.starts_with('.') {
        Some("it starts with `.`")
    } else if name.contains('/') || name.contains('\\') {
        Some("it contains a path separator")
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::usage(format!(
            "the {what} {name:?} cannot be used as a folder name: {why}"
        ))
        .hint(format!(
            "give another one with `{flag}`, or give the destination folder itself as DEST"
        ))),
        None => Ok(()),
    }
}

/// The inputs that decide the destination.
#[derive(Debug, Clone, Default)]
pub struct Choice<'a> {
    pub dest: Option<&'a Path>,
    pub root: Option<&'a Path>,
    pub user: Option<&'a str>,
    pub local: bool,
}

/// Decides where `repo` goes. `home` is the user's home; `login` the login name.
pub fn destination(
    choice: &Choice<'_>,
    home: &Path,
    login: &str,
    repo: &str,
) -> Result<Destination> {
    if let Some(d) = choice.dest {
        return Ok(Destination {
            path: d.to_owned(),
            root: None,
            persistent_share: false,
        });
    }
    let share = home.join(AZUREML_CODE_SHARE);
    let (root, persistent_share) = match (choice.root, choice.local) {
        (Some(r), _) => (r.to_owned(), false),
        (None, false) if share.is_dir() => (share, true),
        (None, _) => (home.join(LOCAL_ROOT), false),
    };
    let user = choice.user.unwrap_or(login);
    check_component(user, "user name", "--user NAME")?;
    check_component(repo, "repository name", "DEST")?;
    Ok(Destination {
        path: root.join("Users").join(user).join(repo),
        root: Some(root),
        persistent_share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_ml_share_is_preferred_and_local_overrides_it() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let d = destination(&Choice::default(), h, "ada", "repo").unwrap();
        assert_eq!(d.path, h.join("code/Users/ada/repo"));
        assert!(!d.persistent_share);
        std::fs::create_dir_all(h.join("cloudfiles/code")).unwrap();
        let d = destination(&Choice::default(), h, "ada", "repo").unwrap();
        assert_eq!(d.path, h.join("cloudfiles/code/Users/ada/repo"));
        assert!(d.persistent_share);
        let d = destination(
            &Choice {
                local: true,
                ..Default::default()
            },
            h,
            "ada",
            "repo",
        )
        .unwrap();
        assert_eq!(d.path, h.join("code/Users/ada/repo"));
        let d = destination(
            &Choice {
                root: Some(Path::new("/data")),
                user: Some("bo"),
                ..Default::default()
            },
            h,
            "ada",
            "r",
        )
        .unwrap();
        assert_eq!(d.path, PathBuf::from("/data/Users/bo/r"));
        let d = destination(
            &Choice {
                dest: Some(Path::new("/x/y")),
                user: Some(".."),
                ..Default::default()
            },
            h,
            "ada",
            "r",
        )
        .unwrap();
        assert_eq!(d.path, PathBuf::from("/x/y"));
    }

    #[test]
    fn names_that_escape_the_root_are_refused() {
        let h = Path::new("/home/ada");
        for bad in ["", ".", "..", ".hidden", "a/b", "a\\b", "a\nb", "../../etc"] {
            assert!(
                destination(
                    &Choice {
                        user: Some(bad),
                        ..Default::default()
                    },
                    h,
                    "ada",
                    "r"
                )
                .is_err(),
                "user {bad:?}"
            );
            assert!(
                destination(&Choice::default(), h, "ada", bad).is_err(),
                "repo {bad:?}"
            );
        }
    }
}
