//! Which key a rotation replaces (`--key`, the key of keyclone's `~/.ssh/config` block for the
//! provider, else the default files) and where the new key is tested before the switch
//! (`--test-url`, the block's host for that key, else the provider's SSH endpoint).

use std::path::{Path, PathBuf};

use crate::context::Ctx;
use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::git::remote::RemoteUrl;
use crate::ops::key as keyops;
use crate::providers::Provider;
use crate::ssh::config as sshconfig;
use crate::ssh::key;

/// Where the new key is tested.
pub(crate) enum TestTarget {
    Url(RemoteUrl),
    Host { endpoint: Endpoint, user: String },
}

impl TestTarget {
    pub(crate) fn describe(&self) -> String {
        match self {
            TestTarget::Url(u) => u.original.clone(),
            TestTarget::Host { endpoint, .. } => endpoint.to_string(),
        }
    }

    /// The endpoint the new key is tested on.
    pub(crate) fn endpoint(&self) -> Endpoint {
        match self {
            TestTarget::Url(u) => u.endpoint(),
            TestTarget::Host { endpoint, .. } => endpoint.clone(),
        }
    }

    /// The SSH user the new key logs in as.
    pub(crate) fn user(&self) -> String {
        match self {
            TestTarget::Host { user, .. } => user.clone(),
            TestTarget::Url(u) => u.user.clone().unwrap_or_else(|| "git".into()),
        }
    }
}

/// The key to rotate: `key` (`--key`), else the one keyclone's block uses for the provider,
/// else the default key for it.
pub(crate) fn find_key(
    ctx: &Ctx,
    key: Option<&Path>,
    provider: Option<&Provider>,
) -> Result<PathBuf> {
    if let Some(k) = key {
        return Ok(key::pair_paths(&std::path::absolute(k).unwrap_or_else(|_| k.to_owned())).0);
    }
    // The key keyclone's block uses for this provider.
    if let Some(p) = provider
        && let Ok(cfg) = sshconfig::read(&sshconfig::path_in(&ctx.ssh_dir))
        && let Some(e) = cfg
            .entries()
            .iter()
            .find(|e| p.serves(&e.hostname, Some(e.port)))
    {
        return Ok(e.identity_file.clone());
    }
    keyops::default_key(ctx, provider).map_err(|e| {
        Error::new(
            ErrorKind::NotFound,
            format!("there is no key to rotate: {}", e.message()),
        )
        .hint("create one with `keyclone init` (or `keyclone keygen`)")
        .hint("or name the key with `--key PATH`")
    })
}

/// Where the new key is tested: `test_url` (`--test-url`), else the host keyclone's block names
/// for the key, else the provider's SSH endpoint.
pub(crate) fn test_target(
    ctx: &Ctx,
    test_url: Option<&str>,
    key: &Path,
    provider: Option<&Provider>,
) -> Result<TestTarget> {
    if let Some(u) = test_url {
        let url = RemoteUrl::parse(u)?.to_ssh(&ctx.registry)?.0;
        return Ok(TestTarget::Url(url));
    }
    if let Ok(cfg) = sshconfig::read(&sshconfig::path_in(&ctx.ssh_dir))
        && let Some(e) = cfg.entries().iter().find(|e| {
            e.identity_file == key && provider.is_none_or(|p| p.serves(&e.hostname, Some(e.port)))
        })
    {
        return Ok(TestTarget::Host {
            endpoint: Endpoint::new(e.hostname.clone(), e.port),
            user: e.user.clone(),
        });
    }
    if let Some(p) = provider
        && let Some(ep) = p.ssh.first()
    {
        return Ok(TestTarget::Host {
            endpoint: ep.clone(),
            user: p.ssh_user.clone(),
        });
    }
    Err(Error::usage(format!(
        "keyclone does not know where `{}` is used, so it cannot test the new key before switching",
        key.display()
    ))
    .hint("name a repository with `--test-url URL`, or the provider with `--provider NAME`"))
}
