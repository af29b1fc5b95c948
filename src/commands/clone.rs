//! `keyclone clone`: a private repository onto this machine over SSH, with your key, after the
//! host is verified, into your per-user folder, with progress; nothing left behind on failure.

use std::path::PathBuf;
use std::time::Duration;

use crate::commands::trust::approve_host;
use crate::commands::{NetArgs, WorkspaceArgs};
use crate::commands::{load_key, login_name};
use crate::context::Ctx;
use crate::env::SSH_AUTH_SOCK;
use crate::error::{Error, ErrorKind, Result};
use crate::git::clone::{self, Auth, CloneProgress, CloneRequest, HostCheck, Silent};
use crate::git::remote::{RemoteUrl, redact};
use crate::providers::Provider;
use crate::secrets::{self, UnlockArgs};
use crate::ssh::agent;
use crate::ui::Verbosity;
use crate::ui::progress::Bars;
use crate::workspace::{self, Choice};

/// Clone a private repository over SSH into your per-user folder.
///
/// The URL may be SSH (`git@host:owner/repo.git`, `ssh://git@host:port/...`) or the https URL
/// of a known provider, which is turned into its SSH form. The host key is verified first (as
/// `keyclone trust` does), the clone goes to ROOT/Users/USER/REPO unless DEST is given, and a
/// failed or interrupted clone leaves nothing behind.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  keyclone clone git@github.com:owner/repo.git\n  \
    keyclone clone https://dev.azure.com/fabrikam/Proj/_git/Repo\n  \
    keyclone clone git@gitlab.com:group/app.git --branch dev --depth 1\n  \
    keyclone clone git@github.com:owner/repo.git ~/scratch/repo --local"
)]
pub struct CloneArgs {
    /// The repository: an SSH URL, or the https URL of a known provider
    pub url: String,

    /// Where to clone to [default: ROOT/Users/USER/REPO]
    pub dest: Option<PathBuf>,

    #[command(flatten)]
    pub workspace: WorkspaceArgs,

    /// The private key [default: the provider's default key in the SSH directory]
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,

    #[command(flatten)]
    pub unlock: UnlockArgs,

    /// Check out this branch instead of the remote's default
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,

    /// A shallow clone with this many commits
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub depth: Option<u32>,

    /// Also clone the submodules (same key, same host checks)
    #[arg(long)]
    pub recurse_submodules: bool,

    #[command(flatten)]
    pub net: NetArgs,
}

/// The SSH remote for what the user gave: an SSH URL as is, a known https URL mapped (and
/// said), an unknown https URL asked again on a terminal.
pub(crate) fn ssh_remote(ctx: &mut Ctx, input: &str) -> Result<RemoteUrl> {
    let parsed = RemoteUrl::parse(input)?;
    match parsed.to_ssh(&ctx.registry) {
        Ok((url, mapped)) => {
            if mapped {
                ctx.ui.info(&format!(
                    "Using the SSH form of {}: {}",
                    redact(input),
                    url.original
                ));
            }
            Ok(url)
        }
        Err(e) if ctx.ui.interactive() && parsed.scheme != crate::git::remote::Scheme::Ssh => {
            ctx.ui.warn(e.message());
            for _ in 0..3 {
                let answer = ctx
                    .ui
                    .prompter()
                    .input("SSH URL of the repository (git@HOST:OWNER/REPO.git)", None)?;
                match RemoteUrl::parse(answer.trim()).and_then(|u| u.to_ssh(&ctx.registry)) {
                    Ok((url, _)) => return Ok(url),
                    Err(e) => ctx.ui.warn(e.message()),
                }
            }
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// The key, unlocked, for `provider`.
pub(crate) fn auth_for(
    ctx: &mut Ctx,
    key: Option<&std::path::Path>,
    unlock: &UnlockArgs,
    provider: Option<&Provider>,
    default_user: &str,
) -> Result<Auth> {
    let (path, private) = load_key(ctx, key, provider)?;
    let agent_has =
        ctx.env.get_nonempty(SSH_AUTH_SOCK).is_some() && agent::holds(private.public_key());
    let unlock = match ctx.remembered(&path) {
        Some(p) if !agent_has && private.decrypt(p.expose().as_bytes()).is_ok() => {
            secrets::Unlock::Passphrase(p.clone())
        }
        _ => secrets::unlock_key(&path, &private, agent_has, unlock, &ctx.env, &mut ctx.ui)?,
    };
    if let secrets::Unlock::Passphrase(p) = &unlock {
        ctx.remember(&path, p.clone());
    }
    Ok(Auth {
        default_user: default_user.to_owned(),
        fingerprint: crate::ssh::key::fingerprint(private.public_key()),
        key: path,
        unlock,
    })
}

/// Adds the provider's upload link and the `pubkey` command to an "key not accepted" error.
pub(crate) fn explain_auth(
    e: Error,
    provider: Option<&Provider>,
    key: &std::path::Path,
    org: Option<&str>,
) -> Error {
    if e.kind() != ErrorKind::Auth {
        return e;
    }
    match provider {
        Some(p) => {
            let e = match p.upload_url(org) {
                Some(u) => e.hint(format!("add the public key to your {} account: {u}", p.name)),
                None => e,
            };
            e.hint(format!("show the key and the steps: `keyclone pubkey --key {} --provider {}`", key.display(), p.id))
        }
        None => e.hint(format!("show the public key: `keyclone pubkey --key {}`; add it where your server expects SSH keys", key.display())),
    }
}

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

pub fn run(ctx: &mut Ctx, args: CloneArgs) -> Result<()> {
    let url = ssh_remote(ctx, &args.url)?;
    let alias = resolve_alias(ctx, &url)?;
    let (url, alias_key) = match alias.clone() {
        Some((connect, entry)) => {
            ctx.ui.info(&format!(
                "`{}` is `{}` port {} in keyclone's block of `~/.ssh/config`; using key `{}`",
                entry.alias,
                entry.hostname,
                connect.port.unwrap_or(22),
                entry.identity_file.display()
            ));
            (connect, Some(entry.identity_file))
        }
        None => (url, None),
    };
    let port = url.port.unwrap_or(22);
    let provider = url.provider(&ctx.registry).cloned();
    let org = provider.as_ref().and_then(|p| url.org_for(p));

    let home = ctx.env.home().unwrap_or_else(|| PathBuf::from("/"));
    let login = login_name(&ctx.env);
    let (root, user) = args.workspace.resolve(ctx);
    let dest_arg = args
        .dest
        .as_ref()
        .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()));
    let choice = Choice {
        dest: dest_arg.as_deref(),
        root: root.as_deref(),
        user: user.as_deref(),
        local: args.workspace.local,
    };
    let dest = workspace::destination(&choice, &home, &login, &url.repo_name())?;
    if dest.path.exists() {
        let empty = dest.path.is_dir()
            && std::fs::read_dir(&dest.path)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !empty {
            return Err(Error::refused(format!(
                "`{}` already exists and is not empty",
                dest.path.display()
            ))
            .hint("give another destination as DEST, or move that folder away")
            .hint(format!(
                "to update an existing clone: `git -C {} pull`",
                dest.path.display()
            )));
        }
    }

    clone::set_timeouts(
        Duration::from_secs(args.net.timeout),
        Duration::from_secs(args.net.stall_timeout),
    )?;
    let auth = auth_for(
        ctx,
        args.key.as_deref().or(alias_key.as_deref()),
        &args.unlock,
        provider.as_ref(),
        "git",
    )?;
    let (host_key, files) =
        approve_host(ctx, &url.host, port, Duration::from_secs(args.net.timeout))?;
    let opts = CloneOptions {
        branch: args.branch.clone(),
        depth: args.depth,
        recurse_submodules: args.recurse_submodules,
    };
    let origin = alias.as_ref().map(|_| args.url.as_str());
    let summary = clone_into(
        ctx,
        &url,
        &dest.path,
        &auth,
        (host_key, files),
        &opts,
        origin,
    )
    .map_err(|e| explain_auth(e, provider.as_ref(), &auth.key, org.as_deref()))?;

    if ctx.ui.json() {
        return ctx.ui.json_value(&serde_json::json!({
            "url": url.original,
            "path": summary.path,
            "head": summary.head,
            "branch": summary.branch,
            "bytes": summary.bytes,
            "objects": summary.objects,
            "seconds": (summary.seconds * 1000.0).round() / 1000.0,
            "submodules": summary.submodules,
            "phases": summary.phases,
            "persistent_share": dest.persistent_share,
        }));
    }
    let mut msg = format!(
        "Cloned {} into `{}`\n  branch {}, HEAD {}\n  {} received in {:.1} s",
        url.original,
        summary.path.display(),
        summary.branch.as_deref().unwrap_or("(detached)"),
        &summary.head.get(..12).unwrap_or(&summary.head),
        indicatif::HumanBytes(summary.bytes as u64),
        summary.seconds
    );
    ctx.ui.detail(&format!(
        "  receiving {:.1} s, resolving deltas {:.1} s, checkout {:.1} s",
        summary.phases.receive, summary.phases.resolve, summary.phases.checkout
    ));
    if !summary.submodules.is_empty() {
        msg.push_str(&format!(
            "\n  submodules: {}",
            summary.submodules.join(", ")
        ));
    }
    if dest.persistent_share {
        msg.push_str("\n  on the workspace's shared, persistent file system (kept when this compute instance is deleted)");
    } else if args.workspace.local && home.join(workspace::AZUREML_CODE_SHARE).is_dir() {
        msg.push_str(
            "\n  on this machine's local disk: fast, but lost when the compute instance is deleted",
        );
    }
    msg.push_str(&format!("\n\nNext: `cd {}`", summary.path.display()));
    ctx.ui.info(&msg);
    Ok(())
}
