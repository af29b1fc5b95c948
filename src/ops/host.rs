//! Host approval: the decision of `keyclone trust` (provider pins, known_hosts, or the user's
//! confirmation through the prompter) and the port-443 fallback of the wizard; the host and
//! fingerprint as users write them. `trust`, `test`, `clone`, `init` and `rotate` all approve
//! hosts here; the known_hosts files themselves are [`super::known_hosts_files`].

use std::time::Duration;

use ssh_key::PublicKey;

use super::known_hosts_files::{fetch, pinned_lines, read_known_hosts, write_known_hosts};
use crate::context::Ctx;
use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::git::remote::{RemoteUrl, Scheme};
use crate::ssh::known_hosts::{self, KnownHosts};
use crate::ssh::trust::{self, Decision, Verdict};

/// `HOST`, `HOST:PORT`, `[HOST]:PORT` or an SSH URL, as the endpoint to check (host in lower
/// case, checked by the names rule).
pub fn parse_target(target: &str) -> Result<Endpoint> {
    let ep = if Endpoint::is_host_form(target) {
        target.parse::<Endpoint>().map_err(|bad| {
            let e = Error::usage(bad.message);
            match bad.hint {
                Some(h) => e.hint(h),
                None => e,
            }
        })?
    } else {
        let url = RemoteUrl::parse(target)?;
        if url.scheme != Scheme::Ssh {
            return Err(Error::usage(format!(
                "`{}` is not an SSH URL: keyclone trust checks SSH host keys",
                crate::git::remote::redact(target)
            ))
            .hint("give the SSH form (`git@HOST:OWNER/REPO.git` or `ssh://git@HOST:PORT/...`) or just the host"));
        }
        url.endpoint()
    };
    known_hosts::valid_host(&ep.host)?;
    Ok(Endpoint::new(ep.host.to_ascii_lowercase(), ep.port))
}

/// `SHA256:...` in canonical form (no padding), from what a user pasted.
pub fn normalize_fingerprint(s: &str) -> Result<String> {
    let t = s.trim();
    if t.starts_with("MD5:") || t.split(':').count() > 2 {
        return Err(Error::usage(format!(
            "`{t}` is an MD5 fingerprint; keyclone compares SHA256 fingerprints"
        ))
        .hint("get the SHA256 form with `ssh-keygen -lf KEY.pub` (or from the provider's page)"));
    }
    let b64 = t.strip_prefix("SHA256:").unwrap_or(t).trim_end_matches('=');
    let candidate = format!("SHA256:{b64}");
    if !crate::config::is_sha256_fingerprint(&candidate) {
        return Err(
            Error::usage(format!("`{t}` is not a SHA256 fingerprint")).hint(
                "it looks like `SHA256:` followed by 43 characters, as `ssh-keygen -lf` prints",
            ),
        );
    }
    Ok(candidate)
}

/// Makes sure `ep` is trusted before keyclone connects for real (`clone`, `test`):
/// the decision of `keyclone trust`, with its question on a terminal; refusals and an unknown
/// host without a terminal are errors naming the `keyclone trust` command to run. What is
/// trusted is recorded in known_hosts so plain `git` works too. Returns the approved key and
/// the known_hosts files as they are afterwards.
pub(crate) fn approve_host(
    ctx: &mut Ctx,
    ep: &Endpoint,
    timeout: Duration,
) -> Result<(PublicKey, Vec<KnownHosts>)> {
    approve_host_with(ctx, ep, timeout, None, false).map(|(k, f, _)| (k, f))
}

/// [`approve_host`] with the answers of `keyclone trust` for a host without pins
/// (`--fingerprint`, `--accept-new`). Also returns the decision's name.
pub(crate) fn approve_host_with(
    ctx: &mut Ctx,
    ep: &Endpoint,
    timeout: Duration,
    fingerprint: Option<&str>,
    accept_new: bool,
) -> Result<(PublicKey, Vec<KnownHosts>, &'static str)> {
    // The refreshed host keys decide too: a store that cannot be trusted stops here, before
    // connecting.
    ctx.host_keys()?;
    let kh_path = ctx.ssh_dir.join("known_hosts");
    let files = read_known_hosts(ctx, &kh_path)?;
    let key = fetch(ctx, &files, ep, timeout)?;
    let verdict = trust::decide(ep, &key, &files, &ctx.registry);
    let who = ep;
    let add = match &verdict.decision {
        Decision::Known { .. } => {
            ctx.ui.detail(&format!(
                "{who}: host key {} is in known_hosts",
                verdict.presented.show()
            ));
            Vec::new()
        }
        Decision::Pinned { provider } => {
            let p = ctx.registry.get(provider)?.clone();
            ctx.ui.info(&format!(
                "{who}: host key {} verified against {}'s published keys.",
                verdict.presented.show(),
                p.name
            ));
            pinned_lines(&p, ep, &key)
        }
        Decision::Unknown => {
            confirm_unknown(ctx, &verdict, fingerprint, accept_new)?;
            vec![(ep.clone(), key.clone())]
        }
        _ => {
            return Err(
                trust::refusal(&verdict, &ctx.registry).expect("the other decisions are refusals")
            );
        }
    };
    if !add.is_empty() {
        let (written, _) = write_known_hosts(&kh_path, &add, None, false)?;
        if !written.is_empty() {
            ctx.ui.detail(&format!(
                "recorded {} line(s) for {who} in `{}`",
                written.len(),
                kh_path.display()
            ));
        }
    }
    let mut files = vec![KnownHosts::read(&kh_path)?];
    if let Ok(g) = KnownHosts::read(&ctx.env.system_known_hosts()) {
        files.push(g);
    }
    Ok((key, files, verdict.decision.name()))
}

/// What [`approve_with_fallback`] needs to know about the endpoint and its alternative.
#[derive(Debug, Clone)]
pub(crate) struct Approval<'a> {
    pub endpoint: &'a Endpoint,
    pub timeout: Duration,
    /// The fingerprint the user gave (`--fingerprint`), normalized.
    pub fingerprint: Option<&'a str>,
    pub accept_new: bool,
    /// The provider's port-443 endpoint, offered when `endpoint` cannot be reached.
    pub fallback: Option<crate::providers::Endpoint>,
    /// Use the fallback without asking (`--port-443`).
    pub use_fallback: bool,
    /// The provider's name (else the host) for the messages.
    pub provider_name: &'a str,
}

/// [`approve_host_with`]; when the host cannot be reached, offers the provider's port-443
/// endpoint (asked through the prompter, or `use_fallback`). Returns the approval and the
/// endpoint used when it is the fallback.
#[allow(clippy::type_complexity)]
pub(crate) fn approve_with_fallback(
    ctx: &mut Ctx,
    a: &Approval<'_>,
) -> Result<((PublicKey, Vec<KnownHosts>, &'static str), Option<Endpoint>)> {
    let first = approve_host_with(ctx, a.endpoint, a.timeout, a.fingerprint, a.accept_new);
    let err = match first {
        Ok(r) => return Ok((r, None)),
        Err(e) if e.kind() == ErrorKind::Network => e,
        Err(e) => return Err(e),
    };
    let Some(alt) = a.fallback.clone() else {
        return Err(
            err.hint("nothing was changed; run `keyclone init` again once the host can be reached")
        );
    };
    ctx.ui.warn(&format!(
        "{} cannot be reached ({}). {} also answers on {}.",
        a.endpoint,
        err.message(),
        a.provider_name,
        alt
    ));
    let use_alt = if a.use_fallback {
        true
    } else if ctx.ui.interactive() {
        ctx.ui.prompter().confirm(
            &format!("Use {alt} instead (written into ~/.ssh/config)?"),
            true,
        )?
    } else {
        return Err(err.hint(format!("pass `--port-443` to use {alt} instead")));
    };
    if !use_alt {
        return Err(err.hint(
            "nothing was changed; run `keyclone init` again on a network that allows port 22",
        ));
    }
    let r = approve_host_with(ctx, &alt, a.timeout, a.fingerprint, a.accept_new)
        .map_err(|e| {
            if e.kind() == ErrorKind::Network {
                Error::new(
                    ErrorKind::Network,
                    format!(
                        "{} cannot be reached on port {} nor on {}: {}",
                        a.provider_name,
                        a.endpoint.port,
                        alt,
                        e.message()
                    ),
                )
                .hint("nothing was changed; check this machine's network or proxy (`keyclone doctor` tests both ports), then run `keyclone init` again")
            } else {
                e
            }
        })?;
    Ok((r, Some(alt)))
}

pub(crate) fn confirm_replace(ctx: &mut Ctx, v: &Verdict) -> Result<bool> {
    if !ctx.ui.interactive() {
        return Ok(true); // `--replace` on the command line is the confirmation.
    }
    let n = v.other_lines.len();
    ctx.ui.prompter().confirm(
        &format!(
            "Remove {n} old known_hosts line(s) for {}?",
            v.endpoint.known_hosts_name()
        ),
        false,
    )
}

/// Decides whether to trust an unknown key; returns whether it is trust on first use.
pub(crate) fn confirm_unknown(
    ctx: &mut Ctx,
    v: &Verdict,
    fingerprint: Option<&str>,
    accept_new: bool,
) -> Result<bool> {
    let who = &v.endpoint;
    let provider = v
        .provider
        .as_deref()
        .and_then(|id| ctx.registry.find(id))
        .cloned();
    let check = trust::where_to_check(v, &ctx.registry);
    if let Some(expected) = fingerprint {
        if expected == v.presented.fingerprint {
            ctx.ui.info(&format!(
                "{who} presented {}, the fingerprint you gave: verified.",
                v.presented.show()
            ));
            return Ok(false);
        }
        return Err(Error::new(
            ErrorKind::HostKey,
            format!(
                "{who} presented {}, not the fingerprint you gave ({expected}); nothing was written",
                v.presented.show()
            ),
        )
        .hint("check the fingerprint and the host: a mismatch can mean someone is intercepting the connection")
        .hint(check));
    }
    let mut intro = format!(
        "keyclone cannot verify {who} on its own: no known_hosts line and no published key covers it.\n  presented: {}\n  {check}",
        v.presented.show()
    );
    if let Some(p) = &provider
        && let Some(src) = ctx.registry.published(&p.id)
        && let Some(note) = crate::providers::published::uncovered_note(p, src, &v.endpoint)
    {
        intro.push_str(&format!("\n  {note}."));
    }
    if v.unconfirmed_pin
        && let Some(p) = &provider
    {
        intro.push_str(&format!(
            "\n  This key is one {} is believed to use for this host, but no first-party source confirms it.",
            p.name
        ));
    }
    if v.matches_no_unconfirmed_pin {
        let name = provider
            .as_ref()
            .map_or("its provider", |p| p.name.as_str());
        intro.push_str(&format!(
            "\n  This key matches NONE of the keys {name} is believed to use for this host."
        ));
        if accept_new {
            return Err(Error::new(
                ErrorKind::HostKey,
                format!(
                    "{who} presented {}, which matches none of the keys {name} is believed to use for this host; `--accept-new` does not trust it; nothing was written",
                    v.presented.show()
                ),
            )
            .hint(check)
            .hint(format!(
                "if the provider's page lists this key, run `keyclone trust {} --fingerprint {}`",
                v.endpoint.known_hosts_name(),
                v.presented.fingerprint
            )));
        }
    }
    if accept_new {
        ctx.ui.info(&intro);
        ctx.ui.warn(&format!(
            "trusting {who} on first use (`--accept-new`): this key was NOT verified"
        ));
        return Ok(true);
    }
    if !ctx.ui.interactive() {
        return Err(Error::new(
            ErrorKind::NeedsInput,
            format!(
                "{who} presented {}, which keyclone cannot verify, and there is no terminal to ask on; nothing was written",
                v.presented.show()
            ),
        )
        .hint(check)
        .hint(format!("then run `keyclone trust {} --fingerprint {}`", v.endpoint.known_hosts_name(), v.presented.fingerprint))
        .hint("or pass `--accept-new` to trust it without verification"));
    }
    ctx.ui.info(&intro);
    if ctx.ui.prompter().confirm(
        &format!("Is {} the fingerprint of {who}?", v.presented.fingerprint),
        false,
    )? {
        Ok(false)
    } else {
        Err(Error::refused(format!("{who} was not trusted; nothing was written"))
            .hint("once you have the right fingerprint: `keyclone trust HOST --fingerprint SHA256:...`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_to_host_and_port() {
        assert_eq!(
            parse_target("github.com").unwrap(),
            Endpoint::new("github.com", 22)
        );
        assert_eq!(
            parse_target("Git.Example.org:2222").unwrap(),
            Endpoint::new("git.example.org", 2222)
        );
        assert_eq!(
            parse_target("[127.0.0.1]:2200").unwrap(),
            Endpoint::new("127.0.0.1", 2200)
        );
        assert_eq!(
            parse_target("[::1]:2200").unwrap(),
            Endpoint::new("::1", 2200)
        );
        assert_eq!(
            parse_target("git@github.com:o/r.git").unwrap(),
            Endpoint::new("github.com", 22)
        );
        assert_eq!(
            parse_target("ssh://git@ssh.github.com:443/o/r.git").unwrap(),
            Endpoint::new("ssh.github.com", 443)
        );
        assert_eq!(
            parse_target("git@ssh.dev.azure.com:v3/o/p/r").unwrap(),
            Endpoint::new("ssh.dev.azure.com", 22)
        );
    }

    #[test]
    fn bad_targets_are_refused() {
        for bad in [
            "h:0",
            "h:65536",
            "h:99999999",
            "[h]:0",
            "bad host",
            "h\u{7}x",
            "https://github.com/o/r",
            "[h",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
        assert!(
            parse_target("https://github.com/o/r")
                .unwrap_err()
                .message()
                .contains("not an SSH URL")
        );
    }

    #[test]
    fn fingerprints_are_normalized() {
        let fp = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU";
        assert_eq!(normalize_fingerprint(fp).unwrap(), fp);
        assert_eq!(
            normalize_fingerprint(&format!(" {}= ", &fp[7..])).unwrap(),
            fp
        );
        assert!(
            normalize_fingerprint("MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48").is_err()
        );
        assert!(normalize_fingerprint("SHA256:short").is_err());
    }
}
