//! Clone into the workspace: the clone request (branch, depth, submodules, git's attributes),
//! progress bars on a terminal, `origin` set to an `~/.ssh/config` alias; and the aliases of
//! keyclone's block that `clone` resolves.

use std::path::PathBuf;

use crate::context::Ctx;
use crate::error::Result;
use crate::git::clone::{self, Auth, CloneProgress, CloneRequest, HostCheck, Silent};
use crate::git::remote::RemoteUrl;
use crate::ui::Verbosity;
use crate::ui::progress::Bars;

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
}

/// Clones `url` into `dest` with an unlocked key, the host approved before; `origin` replaces
/// the URL recorded for `origin` (an `~/.ssh/config` alias, so plain git picks the same key).
pub(crate) fn clone_into(
    ctx: &mut Ctx,
    url: &RemoteUrl,
    dest: &std::path::Path,
    auth: &Auth,
    approved: (ssh_key::PublicKey, Vec<crate::ssh::known_hosts::KnownHosts>),
    opts: &CloneOptions,
    origin: Option<&str>,
) -> Result<clone::CloneSummary> {
    let (host_key, files) = approved;
    let check = HostCheck {
        approved: (url.host.clone(), url.port.unwrap_or(22), host_key),
        files: &files,
        registry: &ctx.registry,
    };
    let req = CloneRequest {
        url: url.clone(),
        dest: dest.to_owned(),
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
    Ok(summary)
}

/// A host of keyclone's block in `~/.ssh/config` (`github.com-work`): the URL to connect to
/// and the entry (its key is the default key).
pub(crate) fn resolve_alias(
    ctx: &Ctx,
    url: &RemoteUrl,
) -> Result<Option<(RemoteUrl, crate::ssh::config::HostEntry)>> {
    if url.scheme != crate::git::remote::Scheme::Ssh || url.provider(&ctx.registry).is_some() {
        return Ok(None);
    }
    let path = crate::ssh::config::path_in(&ctx.ssh_dir);
    let Ok(cfg) = crate::ssh::config::read(&path) else {
        return Ok(None);
    };
    let Some(entry) = cfg.find(&url.host).cloned() else {
        return Ok(None);
    };
    if entry.hostname.eq_ignore_ascii_case(&entry.alias) && url.port.is_some() {
        return Ok(None);
    }
    let port = url.port.unwrap_or(entry.port);
    let user = url.user.clone().unwrap_or_else(|| entry.user.clone());
    let connect = url.at(&entry.hostname, port, Some(&user))?;
    Ok(Some((connect, entry)))
}
