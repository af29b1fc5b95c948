//! keyclone's managed block of `~/.ssh/config`: the entry for a host (the same for `init` and
//! `keyclone ssh-config write`), writing it after showing it (and asking through the prompter
//! unless told yes), and removing the block with every other byte of the file kept.

use std::path::{Path, PathBuf};

use crate::context::Ctx;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::ssh::config::{self as sshconfig, HostEntry};

/// The user's home in the password database: where OpenSSH looks for `~/.ssh`.
fn passwd_home() -> Option<PathBuf> {
    nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .map(|u| u.dir)
}

/// The block's entry for `alias`: connect to `connect` as `user` with `identity_file`.
/// When the SSH directory is not OpenSSH's default, the entry names keyclone's known_hosts.
pub(crate) fn host_entry(
    ctx: &Ctx,
    alias: String,
    connect: Endpoint,
    user: String,
    identity_file: PathBuf,
) -> HostEntry {
    HostEntry {
        alias,
        hostname: connect.host,
        port: connect.port,
        user,
        identity_file,
        known_hosts: (passwd_home().map(|h| h.join(".ssh")) != Some(ctx.ssh_dir.clone()))
            .then(|| ctx.ssh_dir.join("known_hosts")),
        identity_agent: None,
    }
}

/// The `IdentityAgent` the block already names for this host and key (the socket of keyclone's
/// own agent, which `init` wrote), so rewriting the entry with `keyclone ssh-config write` does
/// not drop it; `None` for another key or a new host.
pub(crate) fn kept_identity_agent(ctx: &Ctx, entry: &HostEntry) -> Option<PathBuf> {
    let cfg = sshconfig::read(&sshconfig::path_in(&ctx.ssh_dir)).ok()?;
    let old = cfg.find(&entry.alias)?;
    (old.identity_file == entry.identity_file)
        .then(|| old.identity_agent.clone())
        .flatten()
}

/// Adds (or updates) `entry` in the block: shows what is added, asks unless `yes`, writes the
/// file with the rest of it as it was. Returns what was done, for a summary.
pub(crate) fn write_entry(ctx: &mut Ctx, entry: &HostEntry, yes: bool) -> Result<String> {
    let path = sshconfig::path_in(&ctx.ssh_dir);
    let mut cfg = sshconfig::read(&path)?;
    if cfg.find(&entry.alias) == Some(entry) {
        ctx.ui.detail(&format!(
            "`{}` already has this host in keyclone's block",
            path.display()
        ));
        return Ok("already up to date".into());
    }
    cfg.upsert(entry.clone())?;
    let mut one = sshconfig::SshConfig::parse("", &path)?;
    one.upsert(entry.clone())?;
    ctx.ui.info(&format!(
        "So that plain `ssh` and `git` use this key for {}, keyclone adds this to `{}` (the rest of the file stays as it is):\n\n{}",
        entry.alias,
        path.display(),
        one.block_text()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    ));
    let ok = yes
        || ctx
            .ui
            .prompter()
            .confirm(&format!("Write this to {}?", path.display()), true)?;
    if !ok {
        return Ok("declined".into());
    }
    sshconfig::write(&path, &cfg.render())?;
    ctx.ui.info(&format!("Updated `{}`.", path.display()));
    Ok("written".into())
}

/// The paths the block will name for `key` (`--key`) and the SSH directory's known_hosts,
/// checked before anything is written (the block itself is checked again when it is written).
pub(crate) fn check_paths(key: Option<&Path>, ssh_dir: &Path) -> Result<()> {
    let key = key.map(|k| std::path::absolute(k).unwrap_or(k.to_owned()));
    let known_hosts = ssh_dir.join("known_hosts");
    for (what, path) in [
        ("`--key`", key.as_ref()),
        ("the SSH directory", Some(&known_hosts)),
    ] {
        if let Some(p) = path {
            crate::names::config_path(p).map_err(|why| {
                Error::usage(format!(
                    "{what} `{}` cannot be written into `~/.ssh/config`: {why}",
                    crate::names::shown(&p.display().to_string())
                ))
                .hint("nothing was written; rename the file or folder, or pass `--no-ssh-config`")
            })?;
        }
    }
    Ok(())
}

/// Removes keyclone's block (its markers and everything between them) and keeps every other
/// byte of the file. Returns whether there was a block.
pub(crate) fn remove_block(ctx: &mut Ctx) -> Result<bool> {
    let path = sshconfig::path_in(&ctx.ssh_dir);
    let mut cfg = sshconfig::read(&path)?;
    if !cfg.remove_block() {
        return Ok(false);
    }
    sshconfig::write(&path, &cfg.render())?;
    Ok(true)
}
