//! Clone into the workspace: the clone request (branch, depth, submodules, git's attributes),
//! progress bars on a terminal, `origin` set to an `~/.ssh/config` alias; the wizard's clone
//! (where it goes, asked on a terminal; not again when it is there); and the aliases of
//! keyclone's block that `clone` resolves.

use std::path::PathBuf;

use ssh_key::PublicKey;

use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::git::clone::{self, Auth, CloneProgress, CloneRequest, HostCheck, Silent};
use crate::git::remote::RemoteUrl;
use crate::ops::access::explain_auth;
use crate::ops::login_name;
use crate::ops::target::Target;
use crate::ssh::known_hosts::KnownHosts;
use crate::ui::Verbosity;
use crate::ui::progress::Bars;
use crate::workspace::{self, Choice};

/// Whether git's user-wide attributes file exists (`$XDG_CONFIG_HOME/git/attributes`, else
/// `~/.config/git/attributes`): then checkout must apply attributes to every file.
pub(crate) fn global_git_attributes(env: &crate::env::Env) -> bool {
    let base = env
        .get_nonempty(crate::env::XDG_CONFIG_HOME)
        .map(PathBuf::from)
        .or_else(|| env.home().map(|h| h.join(".config")));
    base.is_some_and(|b| b.join("git/attributes").exists())
}

/// What to fetch besides the default branch.
#[derive(Debug, Clone, Default)]
pub(crate) struct CloneOptions {
    pub branch: Option<String>,
    pub depth: Option<u32>,
    pub recurse_submodules: bool,
    /// Which Git LFS files to fetch after the clone.
    pub lfs: crate::ops::lfs::LfsOptions,
}

/// Clones `url` into `dest` with an unlocked key, the host approved before; `origin` replaces
/// the URL recorded for `origin` (an `~/.ssh/config` alias, so plain git picks the same key).
/// Then fetches the clone's Git LFS content over the same host and key (what it did is the
/// second value: see `ops::lfs::report`).
pub(crate) fn clone_into(
    ctx: &mut Ctx,
    url: &RemoteUrl,
    dest: &std::path::Path,
    auth: &Auth,
    approved: (ssh_key::PublicKey, Vec<crate::ssh::known_hosts::KnownHosts>),
    opts: &CloneOptions,
    origin: Option<&str>,
) -> Result<(clone::CloneSummary, crate::ops::lfs::Pulled)> {
    let (host_key, files) = approved;
    ctx.approved_host_keys()?;
    let check = HostCheck {
        approved: (url.endpoint(), host_key),
        files: &files,
        registry: &ctx.registry,
    };
    let req = CloneRequest {
        url: url.clone(),
        // A link to an empty folder is cloned into where it points, as git does.
        dest: crate::workspace::clone_target(dest),
        branch: opts.branch.clone(),
        depth: opts.depth,
        recurse_submodules: opts.recurse_submodules,
        global_attributes: global_git_attributes(&ctx.env),
    };
    let show_bars = ctx.ui.interactive() && !ctx.ui.json() && ctx.ui.verbosity() > Verbosity::Quiet;
    let bars;
    let silent = Silent;
    let progress: &dyn CloneProgress = if show_bars {
        bars = Bars::new();
        &bars
    } else {
        &silent
    };
    ctx.ui.info(&format!(
        "Cloning {} into `{}`...",
        origin.unwrap_or(&url.original),
        dest.display()
    ));
    let summary = clone::clone(&req, auth, &check, progress)?;
    let lfs_bar;
    let quiet = crate::lfs::Quiet;
    let lfs_progress: &dyn crate::lfs::LfsProgress = if show_bars {
        lfs_bar = crate::ui::progress::LfsBar::new();
        &lfs_bar
    } else {
        &quiet
    };
    let pulled = crate::ops::lfs::pull(
        &summary.path,
        url,
        auth,
        &check.approved.1,
        &opts.lfs,
        lfs_progress,
    )?;
    if let Some(o) = origin {
        let set = git2::Repository::open(&summary.path).and_then(|r| r.remote_set_url("origin", o));
        if let Err(e) = set {
            ctx.ui.warn(&format!(
                "the clone worked, but its `origin` could not be set to `{o}`: {}; run `git -C {} remote set-url origin {o}`",
                e.message(),
                summary.path.display()
            ));
        }
    }
    Ok((summary, pulled))
}

/// Login names that many people share, so the folder under `Users/` cannot be named after
/// them: `azureuser` (Azure ML compute instances and Azure VMs), `root` (containers, fresh
/// servers), the default users of the big clouds' images (`ubuntu`, `ec2-user`, `admin` on
/// Debian's, `cloud-user` on RHEL's, `opc` on Oracle's), `jovyan` (the Jupyter images), `vscode`
/// and `codespace` (dev containers and GitHub Codespaces), and `user` (keyclone's own fallback
/// when the login is unknown).
const SHARED_LOGINS: &[&str] = &[
    "azureuser",
    "root",
    "ubuntu",
    "ec2-user",
    "admin",
    "cloud-user",
    "opc",
    "jovyan",
    "vscode",
    "codespace",
    "user",
];

/// Whether `login` is one many people log in as.
pub(crate) fn shared_login(login: &str) -> bool {
    SHARED_LOGINS.contains(&login)
}

/// Where the wizard's clone goes, from `init`'s flags (and the config file).
#[derive(Debug, Clone, Default)]
pub(crate) struct Place<'a> {
    pub root: Option<PathBuf>,
    pub user: Option<String>,
    pub local: bool,
    /// The repository URL as the user gave it (`--repo`).
    pub repo: Option<&'a str>,
}

/// Clones, unless the destination already holds this repository. Returns the path and
/// whether a clone happened.
/// The clone is `root`/Users/`user` (`--root`, `--user`, else the config's `[clone]`, else asked
/// on a terminal where the login name does not tell people apart (the Azure ML share, a
/// [`shared_login`]), else the login name, said with the flag that changes it) or local disk
/// (`--local`, or chosen on Azure ML); `repo` is the URL as the user gave it (an existing clone
/// with that `origin` counts as this repository).
pub(crate) fn setup_clone(
    ctx: &mut Ctx,
    t: &Target,
    url: &RemoteUrl,
    auth: &Auth,
    approved: (PublicKey, Vec<KnownHosts>),
    alias: Option<&str>,
    place: &Place<'_>,
) -> Result<(PathBuf, bool)> {
    let home = ctx.env.home().unwrap_or_else(|| PathBuf::from("/"));
    let login = login_name(&ctx.env);
    let mut local = place.local;
    let (root, mut user) = (place.root.clone(), place.user.clone());
    let share = home.join(workspace::AZUREML_CODE_SHARE).is_dir();
    if ctx.ui.interactive() && root.is_none() && !local {
        if share {
            let items = vec![
                format!(
                    "Persistent: ~/{}/Users/... on the workspace's shared file system (kept when this machine is deleted)",
                    workspace::AZUREML_CODE_SHARE
                ),
                format!(
                    "Local disk: ~/{}/Users/... (faster, lost when this machine is deleted)",
                    workspace::LOCAL_ROOT
                ),
            ];
            local = ctx
                .ui
                .prompter()
                .select("Where should the clone go?", &items, 0)?
                == 1;
        }
        // The folder under Users/ is asked only where the login name does not tell people
        // apart: on the Azure ML share (every user of the workspace logs in as `azureuser` and
        // the folders sit side by side) or under a login many people share.
        if user.is_none() && (share && !local || shared_login(&login)) {
            loop {
                let u = ctx
                    .ui
                    .prompter()
                    .input("Your folder name under Users/", Some(&login))?;
                match workspace::check_component(u.trim(), "folder name", "--user") {
                    Ok(()) => {
                        user = Some(u.trim().to_owned());
                        break;
                    }
                    Err(e) => ctx.ui.warn(&format!("{} Try again.", e.message())),
                }
            }
        }
    }
    // On a terminal, where the folder came from the login name unasked, say so and how to
    // choose another (told before the clone, with where it goes).
    let from_login = ctx.ui.interactive() && user.is_none();
    let choice = Choice {
        dest: None,
        root: root.as_deref(),
        user: user.as_deref(),
        local,
    };
    let origin_url = t.origin_url(url, alias)?;
    let repo_name = url.repo_name();
    let dest = workspace::destination(&choice, &home, &login, &repo_name)?;
    if let Ok(repo) = git2::Repository::open(&dest.path) {
        let origin = repo
            .find_remote("origin")
            .ok()
            .and_then(|r| r.url().ok().map(str::to_owned));
        let same = origin.as_deref().is_some_and(|o| {
            o == url.original || origin_url.as_deref() == Some(o) || place.repo == Some(o)
        });
        if same {
            ctx.ui.info(&format!(
                "`{}` already holds this repository: not cloning again (update it with `git -C {} pull`).",
                dest.path.display(),
                dest.path.display()
            ));
            return Ok((dest.path, false));
        }
    }
    if from_login {
        ctx.ui.info(&format!(
            "The clone goes to `{}` (the folder `Users/{login}` is your login name; `keyclone init --user NAME` chooses another).",
            dest.path.display()
        ));
    }
    let occupant = crate::workspace::Occupant::of(&dest.path);
    if occupant.in_the_way() {
        return Err(Error::refused(format!(
            "`{}` already exists, {}, and is not a clone of this repository",
            dest.path.display(),
            occupant.why()
        ))
        .hint("move that folder away, or choose another folder with `--user NAME` or `--root DIR`, then run `keyclone init` again"));
    }
    let (summary, pulled) = clone_into(
        ctx,
        url,
        &dest.path,
        auth,
        approved,
        &CloneOptions::default(),
        origin_url.as_deref(),
    )
    .map_err(|e| explain_auth(e, t.provider.as_ref(), &auth.key, t.org.as_deref()))?;
    ctx.ui.info(&format!(
        "Cloned into `{}` (branch {}, HEAD {}).",
        summary.path.display(),
        summary.branch.as_deref().unwrap_or("(detached)"),
        summary.head.get(..12).unwrap_or(&summary.head)
    ));
    crate::ops::lfs::report(ctx, &summary.path, &pulled)?;
    Ok((summary.path, true))
}

#[cfg(test)]
mod tests {
    use super::shared_login;

    #[test]
    fn only_logins_many_people_share_ask_for_the_folder() {
        for shared in ["azureuser", "root", "ubuntu", "ec2-user", "jovyan", "user"] {
            assert!(shared_login(shared), "{shared}");
        }
        for own in ["ada", "tester", "Root", "azureuser2"] {
            assert!(!shared_login(own), "{own}");
        }
    }
}
