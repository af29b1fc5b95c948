//! What the wizard (`keyclone init`) sets up access to: the repository or provider (given, or
//! asked through the prompter), the host users write and the endpoint keyclone connects to
//! (the port-443 one when port 22 is blocked), the alias of a second account, and the `origin`
//! a clone records so plain git goes through `~/.ssh/config`.

use std::time::Duration;

use ssh_key::PublicKey;

use crate::context::Ctx;
use crate::endpoint::{DEFAULT_PORT, Endpoint};
use crate::error::{Error, ErrorKind, Result};
use crate::git::remote::RemoteUrl;
use crate::ops::access::ssh_remote;
use crate::ops::host;
use crate::providers::Provider;
use crate::ssh::config as sshconfig;
use crate::ssh::known_hosts::KnownHosts;
use crate::workspace;

/// What the wizard is setting up access to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub url: Option<RemoteUrl>,
    /// The URL as the user gave it (before a fallback endpoint replaced the host and port).
    pub user_url: Option<RemoteUrl>,
    /// The port the user's URL or the provider names.
    pub port: u16,
    pub provider: Option<Provider>,
    pub org: Option<String>,
    /// The host name users write (URL host, or the provider's SSH host).
    pub host: String,
    /// Where keyclone actually connects (the port-443 endpoint when 22 is blocked); messages
    /// name the endpoint by it.
    pub connect: Endpoint,
    pub ssh_user: String,
    /// The key the user's `~/.ssh/config` names for the URL's host (its first `IdentityFile`
    /// that exists), the wizard's key unless `--key` says otherwise.
    pub route_key: Option<std::path::PathBuf>,
}

impl Target {
    /// The provider's name, else the host.
    pub(crate) fn provider_name(&self) -> String {
        self.provider
            .as_ref()
            .map_or_else(|| self.host.clone(), |p| p.name.clone())
    }

    /// `HOST-ACCOUNT` for a second account.
    pub(crate) fn alias_for(&self, account: Option<&str>) -> Option<String> {
        account.map(|a| format!("{}-{a}", self.host))
    }

    /// The `origin` a clone records instead of the URL it cloned from: the account's alias, or
    /// (when keyclone connects to a fallback endpoint) the host name users write, whose port
    /// `~/.ssh/config` decides. `None`: the URL itself.
    pub(crate) fn origin_url(
        &self,
        url: &RemoteUrl,
        alias: Option<&str>,
    ) -> Result<Option<String>> {
        Ok(match alias {
            Some(a) => Some(
                url.at(&Endpoint::new(a, DEFAULT_PORT), Some(&self.ssh_user))?
                    .original,
            ),
            // Port 443 (or another fallback) is in `~/.ssh/config` under the usual host name:
            // record the remote by that name, in the scp-like form whose port the config decides.
            None if self.connect != Endpoint::new(self.host.as_str(), self.port) => {
                match &self.user_url {
                    Some(u) if u.port.is_some() => Some(
                        u.at(
                            &Endpoint::new(self.host.as_str(), DEFAULT_PORT),
                            Some(&self.ssh_user),
                        )?
                        .original,
                    ),
                    Some(u) => Some(u.original.clone()),
                    None => None,
                }
            }
            None => None,
        })
    }
}

/// An account name (`--account`) that can be a folder and an `~/.ssh/config` host alias.
pub(crate) fn check_account(a: &str) -> Result<()> {
    workspace::check_component(a, "account name", "--account")?;
    if !sshconfig::valid_token(a) {
        return Err(Error::usage(format!(
            "the account name {a:?} may only hold letters, digits, `-`, `_` and `.`"
        ))
        .hint("pass another `--account NAME`"));
    }
    Ok(())
}

/// What to set up, as `keyclone init`'s flags give it: `repo` (`--repo`), else `provider`
/// (`--provider`), else asked; `org` (`--org`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TargetOptions<'a> {
    pub repo: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub org: Option<&'a str>,
}

/// The target from the options; what they leave open is asked through the prompter.
pub(crate) fn choose_target(ctx: &mut Ctx, opts: &TargetOptions<'_>) -> Result<Target> {
    let given = match (opts.repo, opts.provider) {
        (Some(r), _) => Some(ssh_remote(ctx, r)?),
        (None, Some(_)) => None,
        (None, None) => ask_repo(ctx)?,
    };
    // The URL's host through the user's `~/.ssh/config` (`Host work` / `HostName github.com`):
    // keyclone connects where `ssh` would, the pins of the real host apply, and the alias the
    // user wrote stays the host of `origin` and of keyclone's block.
    let mut route_key = None;
    let mut alias = None;
    // A config others can write is not read (OpenSSH refuses it); the wizard goes on without
    // it and drops the group and world write bits when it writes its block.
    let config = sshconfig::path_in(&ctx.ssh_dir);
    let unsafe_config = std::fs::symlink_metadata(&config)
        .ok()
        .and_then(|m| crate::files::file_problem(&m));
    if let (Some(why), Some(_)) = (&unsafe_config, &given) {
        ctx.ui.warn(&format!(
            "`{}` is not read for the repository's host: {why}; keyclone fixes its mode when it writes its block",
            config.display()
        ));
    }
    let url = match given {
        Some(u) if unsafe_config.is_some() => Some(u),
        Some(u) => match crate::ops::route::route_url(ctx, &u)? {
            Some((connect, route)) => {
                ctx.ui
                    .info(&crate::ops::route::describe(&u.host, &connect, &route));
                route_key = route.key;
                alias = Some(u);
                Some(connect)
            }
            None => Some(u),
        },
        None => None,
    };
    let provider = match (&url, opts.provider) {
        (_, Some(name)) => Some(ctx.registry.get(name)?.clone()),
        (Some(u), None) => u.provider(&ctx.registry).cloned(),
        (None, None) => Some(ask_provider(ctx)?),
    };
    let (host, port, ssh_user) = match (&url, &provider) {
        (Some(u), _) => (
            u.host.clone(),
            u.port.unwrap_or(22),
            u.user.clone().unwrap_or_else(|| "git".to_owned()),
        ),
        (None, p) => {
            let e = p.as_ref().and_then(|p| p.ssh.first()).ok_or_else(|| {
                Error::usage("keyclone does not know the SSH address to set up")
                    .hint("pass the repository's SSH URL with `--repo URL`")
            })?;
            let user = p
                .as_ref()
                .map_or_else(|| "git".to_owned(), |p| p.ssh_user.clone());
            (e.host.clone(), e.port, user)
        }
    };
    let mut org = opts.org.map(str::to_owned).or_else(|| {
        url.as_ref()
            .zip(provider.as_ref())
            .and_then(|(u, p)| u.org_for(p))
    });
    if org.is_none()
        && let Some(p) = provider.as_ref().filter(|p| p.needs_org())
        && ctx.ui.interactive()
    {
        let o = ctx.ui.prompter().input(
            &format!("Your {} organization (for its key page)", p.name),
            None,
        )?;
        org = Some(o.trim().to_owned()).filter(|o| !o.is_empty());
    }
    if url.is_none() {
        ctx.ui.info(&format!(
            "No repository yet: setting up {} ({host}); clone later with `keyclone clone URL`.",
            provider.as_ref().map_or("the host", |p| p.name.as_str())
        ));
    } else if provider.is_none() {
        ctx.ui.info(&format!(
            "`{host}` is not a provider keyclone knows: treating it as a self-hosted SSH server."
        ));
    }
    let connect = Endpoint::new(host.as_str(), port);
    let (host, user_url) = match alias {
        Some(a) => (a.host.clone(), Some(a)),
        None => (host, url.clone()),
    };
    Ok(Target {
        connect,
        user_url,
        port,
        url,
        provider,
        org,
        host,
        ssh_user,
        route_key,
    })
}

/// Asks for the repository URL until one parses; empty means "no repository yet".
fn ask_repo(ctx: &mut Ctx) -> Result<Option<RemoteUrl>> {
    loop {
        let answer = ctx.ui.prompter().input(
            "Repository URL (git@HOST:OWNER/REPO.git or its https URL; empty if you have none yet)",
            Some(""),
        )?;
        let answer = answer.trim();
        if answer.is_empty() {
            return Ok(None);
        }
        match RemoteUrl::parse(answer) {
            Ok(_) => match ssh_remote(ctx, answer) {
                Ok(u) => return Ok(Some(u)),
                Err(e) if e.kind() == ErrorKind::Interrupted => return Err(e),
                Err(e) => ctx.ui.warn(&format!("{} Try again.", e.message())),
            },
            Err(e) => ctx.ui.warn(&format!("{} Try again.", e.message())),
        }
    }
}

fn ask_provider(ctx: &mut Ctx) -> Result<Provider> {
    let all: Vec<Provider> = ctx.registry.all().to_vec();
    let items: Vec<String> = all
        .iter()
        .map(|p| {
            format!(
                "{} ({})",
                p.name,
                p.ssh.first().map_or("", |e| e.host.as_str())
            )
        })
        .collect();
    let i = ctx.ui.prompter().select("Your Git provider", &items, 0)?;
    Ok(all[i].clone())
}

/// How the wizard approves the host (`--fingerprint`, `--accept-new`, `--port-443`, `--timeout`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostOptions<'a> {
    pub fingerprint: Option<&'a str>,
    pub accept_new: bool,
    pub port_443: bool,
    pub timeout: Duration,
}

/// Verifies the host (pins, known_hosts, or the user's fingerprint); when port 22 cannot be
/// reached, offers the provider's port-443 endpoint.
/// `fingerprint` (`--fingerprint`) and `accept_new` (`--accept-new`) answer for a host without
/// pins; `port_443` (`--port-443`) takes the fallback without asking. Points the target at the
/// fallback when it is taken.
pub(crate) fn verify_host(
    ctx: &mut Ctx,
    opts: &HostOptions<'_>,
    t: &mut Target,
) -> Result<(PublicKey, Vec<KnownHosts>, &'static str)> {
    let fp = opts
        .fingerprint
        .map(host::normalize_fingerprint)
        .transpose()?;
    let provider_name = t.provider_name();
    let (r, fallback) = host::approve_with_fallback(
        ctx,
        &host::Approval {
            endpoint: &t.connect,
            timeout: opts.timeout,
            fingerprint: fp.as_deref(),
            accept_new: opts.accept_new,
            fallback: t.provider.as_ref().and_then(|p| p.ssh_443.clone()),
            use_fallback: opts.port_443,
            provider_name: &provider_name,
        },
    )?;
    if let Some(alt) = fallback {
        if let Some(u) = &t.url {
            t.url = Some(u.at(&alt, Some(&t.ssh_user))?);
        }
        t.connect = alt;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        let u = RemoteUrl::parse(url).unwrap();
        Target {
            url: Some(u.clone()),
            user_url: Some(u.clone()),
            port: u.port.unwrap_or(22),
            provider: None,
            org: None,
            host: u.host.clone(),
            connect: u.endpoint(),
            ssh_user: "git".into(),
            route_key: None,
        }
    }

    /// The target after the wizard took the fallback endpoint `host`:`port`.
    fn behind_fallback(url: &str, host: &str, port: u16) -> (Target, RemoteUrl) {
        let mut t = target(url);
        let connect = t
            .url
            .as_ref()
            .unwrap()
            .at(&Endpoint::new(host, port), Some("git"))
            .unwrap();
        t.url = Some(connect.clone());
        t.connect = Endpoint::new(host, port);
        (t, connect)
    }

    #[test]
    fn a_second_account_is_named_host_dash_account() {
        let t = target("git@github.com:o/r.git");
        assert_eq!(
            t.alias_for(Some("work")).as_deref(),
            Some("github.com-work")
        );
        assert_eq!(t.alias_for(None), None);
    }

    #[test]
    fn without_alias_or_fallback_origin_is_the_url_itself() {
        let t = target("git@github.com:o/r.git");
        assert_eq!(t.origin_url(t.url.as_ref().unwrap(), None).unwrap(), None);
    }

    #[test]
    fn a_second_account_records_its_alias_as_origin() {
        let t = target("git@github.com:o/r.git");
        let origin = t.origin_url(t.url.as_ref().unwrap(), Some("github.com-work"));
        assert_eq!(
            origin.unwrap().as_deref(),
            Some("git@github.com-work:o/r.git")
        );
    }

    #[test]
    fn behind_the_fallback_origin_names_the_usual_host_and_leaves_the_port_to_the_config() {
        let (t, connect) = behind_fallback("git@github.com:o/r.git", "ssh.github.com", 443);
        assert!(
            connect.original.contains("ssh.github.com:443"),
            "{}",
            connect.original
        );
        assert_eq!(
            t.origin_url(&connect, None).unwrap().as_deref(),
            Some("git@github.com:o/r.git")
        );
        // A URL that names a port: the scp-like form (port from `~/.ssh/config`).
        let (t, connect) = behind_fallback(
            "ssh://git@git.example.org:2222/o/r.git",
            "alt.example.org",
            443,
        );
        assert_eq!(
            t.origin_url(&connect, None).unwrap().as_deref(),
            Some("git@git.example.org:/o/r.git")
        );
        // An alias wins over the fallback.
        assert_eq!(
            t.origin_url(&connect, Some("git.example.org-w"))
                .unwrap()
                .as_deref(),
            Some("git@git.example.org-w:/o/r.git")
        );
    }

    #[test]
    fn an_account_name_must_suit_a_folder_and_a_host_alias() {
        for good in ["work", "w.o-r_k", "Team2"] {
            check_account(good).unwrap();
        }
        for bad in ["a b", "a/b", "a*", "a,b", ""] {
            assert!(check_account(bad).is_err(), "{bad:?}");
        }
        assert!(
            check_account("a*")
                .unwrap_err()
                .message()
                .contains("may only hold letters")
        );
    }
}
