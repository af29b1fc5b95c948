//! Access: the SSH remote for what the user gave, and the access check ("is the key
//! accepted?") that `test`, `init` and `rotate` share: list the repository's refs (like
//! `git ls-remote`, [`list_refs`]), or log in (like `ssh -T`, [`login`]) when there is no
//! repository. `test` reports what they found; `init` and `rotate` ask [`accepted`].

use std::time::Duration;

use ssh_key::PublicKey;

use crate::context::Ctx;
use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::git::clone::{self as gitclone, Auth, HostCheck, RemoteRef};
use crate::git::remote::{RemoteUrl, redact};
use crate::providers::Provider;
use crate::ssh::known_hosts::KnownHosts;
use crate::ssh::probe;

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

/// A remote as `clone` and `lfs pull` connect to it: the SSH URL ([`ssh_remote`]) with the
/// user's `~/.ssh/config` route applied (said when it changes the host), its provider and org.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    /// The URL connected to (`HostName`, `Port`, `User` of the route applied).
    pub url: RemoteUrl,
    /// Whether a `Host` alias of `~/.ssh/config` routed it.
    pub routed: bool,
    /// The route's `IdentityFile`, used when no `--key` is given.
    pub route_key: Option<std::path::PathBuf>,
    pub provider: Option<Provider>,
    pub org: Option<String>,
}

/// The remote for `input` (a URL the user gave, or a clone's `origin`).
pub(crate) fn connect_remote(ctx: &mut Ctx, input: &str) -> Result<Remote> {
    let url = ssh_remote(ctx, input)?;
    let (url, routed, route_key) = match crate::ops::route::route_url(ctx, &url)? {
        Some((connect, route)) => {
            ctx.ui
                .info(&crate::ops::route::describe(&url.host, &connect, &route));
            (connect, true, route.key)
        }
        None => (url, false, None),
    };
    let provider = url.provider(&ctx.registry).cloned();
    let org = provider.as_ref().and_then(|p| url.org_for(p));
    Ok(Remote {
        url,
        routed,
        route_key,
        provider,
        org,
    })
}

impl Remote {
    /// The key to log in with: `key` (`--key`), else the route's, else the provider's default;
    /// unlocked as `unlock` says.
    pub(crate) fn auth(
        &self,
        ctx: &mut Ctx,
        key: Option<&std::path::Path>,
        unlock: &crate::secrets::UnlockArgs,
    ) -> Result<Auth> {
        crate::ops::key::auth_for(
            ctx,
            key.or(self.route_key.as_deref()),
            unlock,
            self.provider.as_ref(),
            "git",
        )
    }

    /// [`explain_auth`] for this remote's provider.
    pub(crate) fn explain(&self, e: Error, auth: &Auth) -> Error {
        explain_auth(e, self.provider.as_ref(), &auth.key, self.org.as_deref())
    }
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

/// Where the access check connects: a repository, or a host to log in to.
#[derive(Debug, Clone)]
pub(crate) enum Access<'a> {
    /// List the refs of this repository (connecting to `endpoint`, the approved one).
    Repo {
        url: &'a RemoteUrl,
        endpoint: &'a Endpoint,
    },
    /// Log in as `user`.
    Login {
        endpoint: &'a Endpoint,
        user: &'a str,
        timeout: Duration,
    },
}

/// Lists the repository's refs (like `git ls-remote`) through the approved endpoint `ep`,
/// whose key is `host_key` (`files`: the known_hosts files, for other hosts).
/// A key the server does not accept is an `Auth` error.
pub(crate) fn list_refs(
    ctx: &Ctx,
    url: &RemoteUrl,
    ep: &Endpoint,
    auth: &Auth,
    host_key: &PublicKey,
    files: &[KnownHosts],
) -> Result<Vec<RemoteRef>> {
    let check = HostCheck {
        approved: (ep.clone(), host_key.clone()),
        files,
        registry: ctx.approved_host_keys()?,
    };
    gitclone::list_refs(url, auth, &check)
}

/// Logs in as `user` (like `ssh -T`) to `ep`, which must present `host_key`. Returns
/// whether the server accepted the key.
pub(crate) fn login(
    ep: &Endpoint,
    user: &str,
    timeout: Duration,
    auth: &Auth,
    host_key: &PublicKey,
) -> Result<bool> {
    probe::check_login(ep, timeout, host_key, user, auth.login_key())
}

/// Whether the server accepts the key, the host already approved (`host_key`, `files`): an
/// authentication failure is `false`, other failures are errors.
pub(crate) fn accepted(
    ctx: &Ctx,
    to: &Access<'_>,
    auth: &Auth,
    host_key: &PublicKey,
    files: &[KnownHosts],
) -> Result<bool> {
    let r = match to {
        Access::Repo { url, endpoint } => {
            list_refs(ctx, url, endpoint, auth, host_key, files).map(|_| true)
        }
        Access::Login {
            endpoint,
            user,
            timeout,
        } => login(endpoint, user, *timeout, auth, host_key),
    };
    match r {
        Ok(ok) => Ok(ok),
        Err(e) if e.kind() == ErrorKind::Auth => Ok(false),
        Err(e) => Err(e),
    }
}
