//! `keyclone test`: is the host verified, and does it accept your key? With a repository URL,
//! also lists its refs (like `git ls-remote`); with a host, checks the login (like `ssh -T`).

use std::path::PathBuf;
use std::time::Duration;

use crate::commands::NetArgs;
use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::git::clone;
use crate::ops::access::{self, explain_auth, ssh_remote};
use crate::ops::host::{approve_host, parse_target};
use crate::ops::key::auth_for;
use crate::ops::route::{describe, endpoint_for, route_url};
use crate::secrets::{Unlock, UnlockArgs};

/// Check that a host is verified and accepts your key; list a repository's refs.
///
/// With a repository URL, keyclone verifies the host, logs in with your key and lists the
/// remote's branches and tags without cloning (like `git ls-remote`). With HOST[:PORT], it
/// verifies the host and checks that your key is accepted (like `ssh -T`).
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  keyclone test git@github.com:owner/repo.git\n  \
    keyclone test github.com\n  keyclone test git.example.org:2222 --user git --key ~/.ssh/id_work"
)]
pub struct TestArgs {
    /// A repository URL, or HOST[:PORT]
    #[arg(value_name = "URL|HOST")]
    pub target: String,

    /// The private key [default: the provider's default key in the SSH directory]
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,

    #[command(flatten)]
    pub unlock: UnlockArgs,

    /// The SSH user for the HOST form (URLs carry their own)
    #[arg(long, value_name = "NAME", default_value = "git")]
    pub user: String,

    #[command(flatten)]
    pub net: NetArgs,
}

fn is_url(target: &str) -> bool {
    target.contains("://")
        || target.contains('@')
        || (!target.starts_with('[')
            && target
                .split_once(':')
                .is_some_and(|(_, rest)| !rest.chars().all(|c| c.is_ascii_digit())))
}

pub fn run(ctx: &mut Ctx, args: TestArgs) -> Result<()> {
    let timeout = Duration::from_secs(args.net.timeout);
    clone::set_timeouts(timeout, Duration::from_secs(args.net.stall_timeout))?;
    if is_url(&args.target) {
        let url = ssh_remote(ctx, &args.target)?;
        let (url, route_key) = match route_url(ctx, &url)? {
            Some((connect, route)) => {
                ctx.ui.info(&describe(&url.host, &connect, &route));
                (connect, route.key)
            }
            None => (url, None),
        };
        let ep = url.endpoint();
        let provider = url.provider(&ctx.registry).cloned();
        let org = provider.as_ref().and_then(|p| url.org_for(p));
        let auth = auth_for(
            ctx,
            args.key.as_deref().or(route_key.as_deref()),
            &args.unlock,
            provider.as_ref(),
            &args.user,
        )?;
        let (host_key, files) = approve_host(ctx, &ep, timeout)?;
        let refs = access::list_refs(ctx, &url, &ep, &auth, &host_key, &files)
            .map_err(|e| explain_auth(e, provider.as_ref(), &auth.key, org.as_deref()))?;
        if ctx.ui.json() {
            return ctx.ui.json_value(&serde_json::json!({
                "url": url.original, "key": auth.key, "authenticated": true, "refs": refs,
            }));
        }
        for r in &refs {
            ctx.ui.data(&format!("{}\t{}", r.oid, r.name))?;
        }
        ctx.ui.info(&format!(
            "{} accepted `{}`{}; {} refs listed.\n\nNext: `keyclone clone {}`",
            ep,
            auth.key.display(),
            if matches!(auth.unlock, Unlock::Agent) {
                " (through ssh-agent)"
            } else {
                ""
            },
            refs.len(),
            url.original
        ));
        return Ok(());
    }

    let ep = parse_target(&args.target)?;
    let (ep, route) = endpoint_for(ctx, ep)?;
    let route_key = route.key;
    let provider = ctx.registry.for_endpoint(&ep).cloned();
    let auth = auth_for(
        ctx,
        args.key.as_deref().or(route_key.as_deref()),
        &args.unlock,
        provider.as_ref(),
        &args.user,
    )?;
    let (host_key, _) = approve_host(ctx, &ep, timeout)?;
    let who = &ep;
    let accepted = access::login(&ep, &args.user, timeout, &auth, &host_key)?;
    let public = &auth.fingerprint;
    if !accepted {
        let e = Error::new(
            ErrorKind::Auth,
            format!(
                "{who} did not accept `{}` ({public}) for user `{}`: the key is not on your account yet",
                auth.key.display(),
                args.user
            ),
        );
        return Err(explain_auth(e, provider.as_ref(), &auth.key, None));
    }
    if ctx.ui.json() {
        return ctx.ui.json_value(&serde_json::json!({
            "host": ep.host, "port": ep.port, "user": args.user, "key": auth.key, "fingerprint": public, "authenticated": true,
        }));
    }
    ctx.ui.info(&format!(
        "{who} accepted `{}` ({public}) for user `{}`.",
        auth.key.display(),
        args.user
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_hosts_are_told_apart() {
        for url in [
            "git@github.com:o/r.git",
            "ssh://git@h:2222/r.git",
            "https://github.com/o/r",
            "github.com:o/r.git",
        ] {
            assert!(is_url(url), "{url}");
        }
        for host in ["github.com", "h:2222", "[h]:2222"] {
            assert!(!is_url(host), "{host}");
        }
    }
}
