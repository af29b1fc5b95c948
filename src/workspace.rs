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

/// What is at a destination before a clone goes there. A symbolic link is followed, as git
/// follows it: a link to an empty folder is cloned into (see [`clone_target`]); a dangling
/// link is in the way (git cannot create the folder there either).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occupant {
    Nothing,
    EmptyDir,
    NonEmptyDir,
    /// A file (or anything else that is not a folder).
    NotAFolder,
    /// A folder whose listing cannot be read.
    Unreadable,
    /// A symbolic link that points at nothing.
    DanglingLink,
}

impl Occupant {
    /// What is at `path` now.
    pub fn of(path: &Path) -> Occupant {
        if !path.exists() {
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                Occupant::DanglingLink
            } else {
                Occupant::Nothing
            }
        } else if !path.is_dir() {
            Occupant::NotAFolder
        } else {
            match std::fs::read_dir(path).map(|mut d| d.next().is_none()) {
                Ok(true) => Occupant::EmptyDir,
                Ok(false) => Occupant::NonEmptyDir,
                Err(_) => Occupant::Unreadable,
            }
        }
    }

    /// A clone may go only where nothing is, or into an empty folder.
    pub fn in_the_way(self) -> bool {
        !matches!(self, Occupant::Nothing | Occupant::EmptyDir)
    }

    /// What is in the way, for a message: "`X` already exists and {this}".
    pub fn why(self) -> &'static str {
        match self {
            Occupant::Nothing | Occupant::EmptyDir => "is free",
            Occupant::NonEmptyDir => "is not empty",
            Occupant::NotAFolder => "is not a folder",
            Occupant::Unreadable => "cannot be listed",
            Occupant::DanglingLink => "is a symbolic link to nothing",
        }
    }
}

/// Where a clone into `dest` really goes: a symbolic link (to an empty folder: see
/// [`Occupant`]) is resolved first, since the clone is renamed into place and a rename onto a
/// link would fail after the whole download; anything else is `dest` itself.
pub fn clone_target(dest: &Path) -> PathBuf {
    if std::fs::symlink_metadata(dest).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::canonicalize(dest).unwrap_or_else(|_| dest.to_path_buf())
    } else {
        dest.to_path_buf()
    }
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

    /// The message of the refusal, or `None` when the name is accepted.
    fn refusal(user: &str, repo: &str) -> Option<String> {
        let choice = Choice {
            user: Some(user),
            ..Default::default()
        };
        destination(&choice, Path::new("/home/ada"), "ada", repo)
            .err()
            .map(|e| e.message().to_owned())
    }

    #[test]
    fn each_refused_name_says_why_and_which_flag_gives_another() {
        for (bad, why) in [
            ("", "it is empty"),
            (".", "it starts with `.`"),
            ("..", "it starts with `.`"),
            (".git", "it starts with `.`"),
            ("../../etc", "it starts with `.`"),
            ("a/../../b", "it contains a path separator"),
            ("a\\b", "it contains a path separator"),
            ("a\u{7f}b", "it contains control characters"),
            ("a\tb", "it contains control characters"),
        ] {
            let user = refusal(bad, "r").unwrap_or_else(|| panic!("user {bad:?} accepted"));
            assert_eq!(
                user,
                format!("the user name {bad:?} cannot be used as a folder name: {why}")
            );
            let repo = refusal("ada", bad).unwrap_or_else(|| panic!("repo {bad:?} accepted"));
            assert_eq!(
                repo,
                format!("the repository name {bad:?} cannot be used as a folder name: {why}")
            );
        }
        let e = check_component("..", "user name", "--user NAME").unwrap_err();
        assert!(
            e.hints().iter().any(|h| h.contains("`--user NAME`")),
            "{e:?}"
        );
        // Dots inside a name, spaces and non-ASCII letters stay inside the folder.
        for good in ["my.repo", "repo.git.bak", "a b", "dépôt", "x-y_z"] {
            assert_eq!(refusal(good, good), None, "{good:?}");
        }
    }

    /// The names a remote URL's last segment gives (`RemoteUrl::repo_name`) that could leave
    /// the per-user folder or hide in it are refused before anything is created.
    #[test]
    fn repository_names_from_urls_that_would_escape_are_refused() {
        use crate::git::remote::RemoteUrl;
        for (url, accepted) in [
            ("git@github.com:o/repo.git", true),
            ("git@github.com:o/repo", true),
            ("ssh://git@github.com/o/repo.git/", true),
            ("git@github.com:o/..git", false),
            ("git@github.com:o/.git", false),
            ("git@github.com:o/.hidden.git", false),
            ("ssh://git@github.com/o/../.git", false),
        ] {
            let name = RemoteUrl::parse(url).unwrap().repo_name();
            assert_eq!(
                refusal("ada", &name).is_none(),
                accepted,
                "{url} -> {name:?}"
            );
        }
    }

    #[test]
    fn the_per_user_folder_is_root_users_name_repo() {
        let h = Path::new("/home/ada");
        let at = |c: Choice<'_>| destination(&c, h, "ada", "repo").unwrap();
        let d = at(Choice {
            root: Some(Path::new("/mnt/ws")),
            ..Default::default()
        });
        assert_eq!(d.path, PathBuf::from("/mnt/ws/Users/ada/repo"));
        assert_eq!(d.root, Some(PathBuf::from("/mnt/ws")));
        assert!(
            !d.persistent_share,
            "a given root is not taken for the share"
        );
        let d = at(Choice {
            root: Some(Path::new("/mnt/ws")),
            user: Some("bo"),
            local: true,
            ..Default::default()
        });
        assert_eq!(
            d.path,
            PathBuf::from("/mnt/ws/Users/bo/repo"),
            "--root wins over --local"
        );
        let d = at(Choice {
            dest: Some(Path::new("/srv/../tmp/x")),
            ..Default::default()
        });
        assert_eq!(
            d.path,
            PathBuf::from("/srv/../tmp/x"),
            "DEST is the user's own choice"
        );
        assert_eq!(d.root, None);
    }

    #[test]
    fn only_a_folder_at_the_share_path_is_the_azure_ml_share() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        std::fs::create_dir_all(h.join("cloudfiles")).unwrap();
        std::fs::write(h.join("cloudfiles/code"), b"").unwrap();
        let d = destination(&Choice::default(), h, "ada", "r").unwrap();
        assert_eq!(
            d.path,
            h.join("code/Users/ada/r"),
            "a file in the way is not the share"
        );
        assert!(!d.persistent_share);
        std::fs::remove_file(h.join("cloudfiles/code")).unwrap();
        std::fs::create_dir(h.join("mounted")).unwrap();
        std::os::unix::fs::symlink(h.join("mounted"), h.join("cloudfiles/code")).unwrap();
        let d = destination(&Choice::default(), h, "ada", "r").unwrap();
        assert_eq!(
            d.path,
            h.join("cloudfiles/code/Users/ada/r"),
            "a link to a folder is"
        );
        assert!(d.persistent_share);
    }

    #[test]
    fn what_is_at_the_destination_decides_whether_a_clone_may_go_there() {
        let t = tempfile::tempdir().unwrap();
        let p = |n: &str| t.path().join(n);
        std::fs::create_dir(p("empty")).unwrap();
        std::fs::create_dir(p("full")).unwrap();
        std::fs::write(p("full/f"), b"x").unwrap();
        std::fs::write(p("file"), b"x").unwrap();
        std::os::unix::fs::symlink(p("empty"), p("to-empty")).unwrap();
        std::os::unix::fs::symlink(p("full"), p("to-full")).unwrap();
        std::os::unix::fs::symlink(p("file"), p("to-file")).unwrap();
        std::os::unix::fs::symlink(p("gone"), p("dangling")).unwrap();
        for (name, occupant, in_the_way) in [
            ("missing", Occupant::Nothing, false),
            ("empty", Occupant::EmptyDir, false),
            ("full", Occupant::NonEmptyDir, true),
            ("file", Occupant::NotAFolder, true),
            ("file/below", Occupant::Nothing, false),
            ("to-empty", Occupant::EmptyDir, false),
            ("to-full", Occupant::NonEmptyDir, true),
            ("to-file", Occupant::NotAFolder, true),
            ("dangling", Occupant::DanglingLink, true),
        ] {
            let o = Occupant::of(&p(name));
            assert_eq!(o, occupant, "{name}");
            assert_eq!(o.in_the_way(), in_the_way, "{name}");
        }
        assert!(Occupant::Unreadable.in_the_way());
        assert_eq!(Occupant::NonEmptyDir.why(), "is not empty");
        assert_eq!(Occupant::NotAFolder.why(), "is not a folder");
        assert_eq!(
            clone_target(&p("to-empty")),
            p("empty").canonicalize().unwrap()
        );
        assert_eq!(clone_target(&p("missing")), p("missing"));
        assert_eq!(clone_target(&p("empty")), p("empty"));
    }
}
