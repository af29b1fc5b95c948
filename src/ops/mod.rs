//! Operations: the steps the commands are made of, each with typed options and the context
//! (its UI and prompter) passed in. The single-step commands and the wizard (`init`) both call
//! these; an operation never calls a command, and never fills in a command's flags.
//!
//! - [`host`]: host approval (pins, known_hosts, confirmation; the port-443 fallback)
//! - [`known_hosts_files`]: read and write known_hosts, the lines pins give, fetch a host key
//! - [`key`]: locate, load, create and unlock keys
//! - [`pubkey`]: show the public key with the upload steps (and copy it)
//! - [`passphrase`]: where a passphrase comes from (flags, file, stdin, keyring, prompt)
//! - [`access`]: the URL to connect to, and "is the key accepted?"
//! - [`agent`]: keyclone's own ssh-agent (start on demand, add a key for a lifetime, stop)
//! - [`doctor`]: doctor's facts (gathered once) and the pure checks over them
//! - [`rotation`]: rotation's state machine (the steps, the state file) and what each step does
//!   (create, verify, archive, switch, move the caches; `--passphrase-only`)
//! - [`refresh`]: `trust --refresh`: the providers' published host keys over verified https
//! - [`signing`]: commit signing with the SSH key (git's config, `allowed_signers`)
//! - [`ssh_config`]: keyclone's block of `~/.ssh/config` (write, remove, check its paths)
//! - [`workspace`]: clone into the workspace (and the wizard's clone: where, not twice)
//! - [`survey`]: what is on the machine (for `init` and `doctor`)
//! - [`token`]: where a provider API token comes from (file, environment, device flow, prompt)
//!
//! The wizard's own steps: [`target`] (what to set up, the host approved with its fallback),
//! [`key_choice`] (reuse or create the key), [`cache`] (keep the passphrase in the keyring or
//! ssh-agent), [`upload`] (show the key and wait until it is accepted), [`identity`] (git's
//! `user.name` and `user.email`).

pub mod access;
pub mod agent;
pub mod cache;
pub mod doctor;
pub mod host;
pub mod identity;
pub mod key;
pub mod key_choice;
pub mod known_hosts_files;
pub mod lfs;
pub mod passphrase;
pub mod pubkey;
pub mod refresh;
pub mod rotation;
pub mod route;
pub mod signing;
pub mod ssh_config;
pub mod survey;
pub mod target;
pub mod token;
pub mod upload;
pub mod workspace;

use crate::env::{Env, LOGNAME, USER};
use crate::error::{Error, Result};
use crate::git::remote::RemoteUrl;
use crate::providers::{Provider, Registry};

/// The provider named by `--provider`, or found from `--repo URL`, with the organization
/// (`--org`, else from the URL) for providers that need one.
pub(crate) fn resolve_provider<'r>(
    registry: &'r Registry,
    provider: Option<&str>,
    repo: Option<&str>,
    org: Option<&str>,
) -> Result<Option<(&'r Provider, Option<String>)>> {
    if let Some(name) = provider {
        return Ok(Some((registry.get(name)?, org.map(str::to_owned))));
    }
    let Some(repo) = repo else { return Ok(None) };
    let url = RemoteUrl::parse(repo)?;
    match url.provider(registry) {
        Some(p) => {
            let org = org.map(str::to_owned).or_else(|| url.org_for(p));
            Ok(Some((p, org)))
        }
        None => Err(Error::usage(format!("keyclone does not know which provider serves `{}`", url.host))
            .hint("name it with `--provider NAME`, or declare the host in the config file as `[provider.NAME]` (see the README)")),
    }
}

/// The login name: `USER`, `LOGNAME`, or the password database.
pub(crate) fn login_name(env: &Env) -> String {
    env.get_str(USER)
        .or_else(|| env.get_str(LOGNAME))
        .map(str::to_owned)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::Uid::effective())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "user".to_owned())
}

/// `user@host`, as ssh-keygen's default comment.
pub(crate) fn default_comment(env: &Env) -> String {
    let user = login_name(env);
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{user}@{host}")
}

/// The current UTC time as `20261126T121109Z` (for backup names) and `2026-11-26` (titles).
pub(crate) fn now_stamps() -> (String, String) {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "backup".to_owned());
    let date = now
        .format(time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap_or_default();
    (stamp, date)
}
