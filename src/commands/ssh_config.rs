//! `keyclone ssh-config`: show, write or remove keyclone's managed block of `~/.ssh/config`
//! (the block `init` writes, written by the same code).

use std::path::PathBuf;

use crate::context::Ctx;
use crate::error::Result;
use crate::ops::host::parse_target;
use crate::ops::key::default_key;
use crate::ops::ssh_config;
use crate::ssh::config as sshconfig;

/// Show, write or remove keyclone's block of `~/.ssh/config`.
///
/// The block sits between `# >>> keyclone managed block >>>` and its end marker; keyclone never
/// edits the rest of the file. `write` adds (or updates) the entry `init` writes for a host, so
/// that plain `ssh` and `git` use the key; `remove` takes the block out and keeps every other
/// byte of the file.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone ssh-config show\n  \
    keyclone ssh-config write github.com --key ~/.ssh/id_ed25519\n  \
    keyclone ssh-config write git.example.org:2222 --alias work --yes\n  \
    keyclone ssh-config remove")]
pub struct SshConfigArgs {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// Print keyclone's block (stdout); nothing else of the file
    Show,
    /// Add or update the entry for a host in keyclone's block (what `init` writes)
    Write(WriteArgs),
    /// Remove keyclone's block; every other byte of the file is kept
    Remove,
}

#[derive(Debug, Clone, clap::Args)]
pub struct WriteArgs {
    /// HOST, HOST:PORT, [HOST]:PORT, or an SSH repository URL
    #[arg(value_name = "HOST|URL")]
    pub target: String,

    /// The private key the host gets [default: the provider's default key in the SSH directory]
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,

    /// The name after `Host` [default: the host]
    #[arg(long, value_name = "NAME")]
    pub alias: Option<String>,

    /// The SSH user [default: the provider's, else `git`]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Write without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
}

pub fn run(ctx: &mut Ctx, args: SshConfigArgs) -> Result<()> {
    match args.action {
        Action::Show => show(ctx),
        Action::Write(w) => write(ctx, &w),
        Action::Remove => remove(ctx),
    }
}

fn show(ctx: &mut Ctx) -> Result<()> {
    let path = sshconfig::path_in(&ctx.ssh_dir);
    let cfg = sshconfig::read(&path)?;
    if ctx.ui.json() {
        return ctx.ui.json_value(&serde_json::json!({
            "path": path,
            "block": cfg.has_block().then(|| cfg.block_text()),
            "entries": cfg.entries(),
        }));
    }
    if !cfg.has_block() {
        ctx.ui.info(&format!(
            "`{}` has no keyclone block; `keyclone ssh-config write HOST` (or `keyclone init`) adds one.",
            path.display()
        ));
        return Ok(());
    }
    for line in cfg.block_text().lines() {
        ctx.ui.data(line)?;
    }
    Ok(())
}

fn write(ctx: &mut Ctx, args: &WriteArgs) -> Result<()> {
    let ep = parse_target(&args.target)?;
    let provider = ctx.registry.for_endpoint(&ep).cloned();
    let key = match &args.key {
        Some(k) => {
            crate::ssh::key::pair_paths(&std::path::absolute(k).unwrap_or_else(|_| k.clone())).0
        }
        None => default_key(ctx, provider.as_ref())?,
    };
    let user = args
        .user
        .clone()
        .or_else(|| provider.as_ref().map(|p| p.ssh_user.clone()))
        .unwrap_or_else(|| "git".to_owned());
    let mut entry = ssh_config::host_entry(
        ctx,
        args.alias.clone().unwrap_or_else(|| ep.host.clone()),
        ep,
        user,
        key,
    );
    entry.identity_agent = ssh_config::kept_identity_agent(ctx, &entry);
    let done = ssh_config::write_entry(ctx, &entry, args.yes)?;
    if ctx.ui.json() {
        return ctx.ui.json_value(&serde_json::json!({
            "path": sshconfig::path_in(&ctx.ssh_dir),
            "entry": entry,
            "result": done,
        }));
    }
    if done == "already up to date" {
        ctx.ui.info(&format!(
            "`{}` already has this entry in keyclone's block; nothing to write.",
            sshconfig::path_in(&ctx.ssh_dir).display()
        ));
    }
    Ok(())
}

fn remove(ctx: &mut Ctx) -> Result<()> {
    let path = sshconfig::path_in(&ctx.ssh_dir);
    let removed = ssh_config::remove_block(ctx)?;
    if ctx.ui.json() {
        return ctx
            .ui
            .json_value(&serde_json::json!({ "path": path, "removed": removed }));
    }
    if removed {
        ctx.ui.info(&format!(
            "Removed keyclone's block from `{}`; the rest of the file is as it was.",
            path.display()
        ));
    } else {
        ctx.ui.info(&format!(
            "`{}` has no keyclone block; nothing to remove.",
            path.display()
        ));
    }
    Ok(())
}
