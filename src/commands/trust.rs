//! `keyclone trust`: verify a host's SSH key (provider pins, known_hosts, or your confirmation)
//! and record it in known_hosts so that keyclone, `ssh` and `git` all trust it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh_key::PublicKey;

use crate::context::Ctx;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::ops::host::{confirm_replace, confirm_unknown, normalize_fingerprint, parse_target};
use crate::ops::known_hosts_files::{
    fetch, other_keys, pinned_lines, read_known_hosts, write_known_hosts,
};
use crate::ops::refresh::Level;
use crate::ssh::known_hosts::{KnownHosts, Marker};
use crate::ssh::trust::{self, Decision, KeyInfo, Verdict};

/// Verify a host's SSH key and record it in known_hosts.
///
/// keyclone connects (SSH key exchange only, no login), and decides: a key the provider
/// publishes is trusted and the provider's keys are written to known_hosts; a key already in
/// known_hosts is fine; an unknown host's key is shown with where to check it, and trusted only
/// after you confirm (or with `--fingerprint`, or `--accept-new`); a changed, revoked or
/// unpublished key is refused.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone trust github.com\n  \
    keyclone trust git@ssh.dev.azure.com:v3/fabrikam/Proj/Repo\n  \
    keyclone trust git.example.org:2222 --fingerprint SHA256:abc...\n  \
    keyclone trust --offline --provider gitlab\n  keyclone trust github.com --show\n  \
    keyclone trust --refresh")]
pub struct TrustArgs {
    /// HOST, HOST:PORT, [HOST]:PORT, or an SSH repository URL
    #[arg(value_name = "HOST|URL", required_unless_present_any = ["offline", "refresh"])]
    pub target: Option<String>,

    /// The SHA256 fingerprint you expect (from the provider or the server's administrator)
    #[arg(long, value_name = "SHA256:...")]
    pub fingerprint: Option<String>,

    /// Trust an unknown host's key on first use, without verifying it (said in the output)
    #[arg(long, conflicts_with = "fingerprint")]
    pub accept_new: bool,

    /// Write a provider's published host keys without connecting (needs --provider)
    #[arg(long, requires = "provider", conflicts_with_all = ["fingerprint", "accept_new", "show"])]
    pub offline: bool,

    /// The provider whose published keys `--offline` writes (or `--refresh` fetches)
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// Fetch the host keys the providers publish (GitHub's api.github.com/meta, Bitbucket's
    /// bitbucket.org/site/ssh, a config's `published-url`) over verified https, report what
    /// rotated, and trust them from now on instead of the pins built in; no SSH connection
    #[arg(long, conflicts_with_all = ["target", "fingerprint", "accept_new", "offline", "show", "replace"])]
    pub refresh: bool,

    /// Remove the known_hosts lines that hold another key for this host (like `ssh-keygen -R`;
    /// asks first on a terminal)
    #[arg(long)]
    pub replace: bool,

    /// Write hashed host names, like `ssh-keygen -H`
    #[arg(long)]
    pub hash: bool,

    /// Only show what known_hosts and the published keys say about the host; no connection
    #[arg(long)]
    pub show: bool,

    /// Seconds to wait for the server
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,
}

pub fn run(ctx: &mut Ctx, args: TrustArgs) -> Result<()> {
    let kh_path = ctx.ssh_dir.join("known_hosts");
    if args.refresh {
        return refresh(ctx, args.provider.as_deref());
    }
    // Every other use of `trust` decides on or shows host keys: with the refreshed ones, and
    // not at all when their store cannot be trusted.
    ctx.host_keys()?;
    if args.offline {
        return offline(ctx, &args, &kh_path);
    }
    let target = args
        .target
        .as_deref()
        .expect("clap requires a target unless --offline");
    let (ep, _) = crate::ops::route::endpoint_for(ctx, parse_target(target)?)?;
    let fingerprint = args
        .fingerprint
        .as_deref()
        .map(normalize_fingerprint)
        .transpose()?;
    let files = read_known_hosts(ctx, &kh_path)?;
    if args.show {
        return show(ctx, &ep, &files);
    }

    let key = fetch(ctx, &files, &ep, Duration::from_secs(args.timeout))?;
    let verdict = trust::decide(&ep, &key, &files, &ctx.registry);
    let who = &ep;

    let (to_add, tofu): (Vec<(Endpoint, PublicKey)>, bool) = match &verdict.decision {
        Decision::Known { line } => {
            ctx.ui.info(&format!(
                "{who} is already trusted: {} matches {}.",
                verdict.presented.show(),
                line.show()
            ));
            (Vec::new(), false)
        }
        Decision::Pinned { provider } => {
            let p = ctx.registry.get(provider)?.clone();
            let lines = pinned_lines(&p, &ep, &key);
            ctx.ui.info(&format!(
                "{who} presented {}, a key {} publishes for this host: verified.",
                verdict.presented.show(),
                p.name
            ));
            (lines, false)
        }
        Decision::Unknown => (
            vec![(ep.clone(), key.clone())],
            confirm_unknown(ctx, &verdict, fingerprint.as_deref(), args.accept_new)?,
        ),
        Decision::Changed { .. } if args.replace => {
            let err = trust::refusal(&verdict, &ctx.registry).expect("a changed key is refused");
            ctx.ui.warn(err.message());
            if !confirm_replace(ctx, &verdict)? {
                return Err(
                    Error::refused("nothing was changed: the old known_hosts lines stay")
                        .hint("run again and answer yes to replace them"),
                );
            }
            (
                vec![(ep.clone(), key.clone())],
                confirm_unknown(ctx, &verdict, fingerprint.as_deref(), args.accept_new)?,
            )
        }
        Decision::Changed { .. } | Decision::Revoked { .. } | Decision::PinMismatch { .. } => {
            return Err(
                trust::refusal(&verdict, &ctx.registry).expect("these decisions are refusals")
            );
        }
    };

    if verdict.decision.trusted() && !verdict.other_lines.is_empty() && !args.replace {
        for l in &verdict.other_lines {
            let why = l
                .revoked
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            ctx.ui.warn(&format!(
                "{who}: known_hosts also holds another key, {}{why}",
                l.show()
            ));
        }
        ctx.ui.warn(&format!(
            "plain `ssh` and `git` may refuse {who} because of that line; remove it with `keyclone trust {} --replace`",
            ep.known_hosts_name()
        ));
    }
    let remove_keys: Vec<PublicKey> =
        if args.replace && verdict.decision.trusted() && !verdict.other_lines.is_empty() {
            if confirm_replace(ctx, &verdict)? {
                other_keys(&files, &ep, &key)
            } else {
                Vec::new()
            }
        } else if args.replace && matches!(verdict.decision, Decision::Changed { .. }) {
            other_keys(&files, &ep, &key)
        } else {
            Vec::new()
        };
    let (written, removed) = if to_add.is_empty() && remove_keys.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        write_known_hosts(&kh_path, &to_add, Some((&ep, &remove_keys)), args.hash)?
    };
    report(ctx, &verdict, &kh_path, &written, &removed, tofu)
}

fn report(
    ctx: &mut Ctx,
    v: &Verdict,
    path: &Path,
    written: &[String],
    removed: &[usize],
    tofu: bool,
) -> Result<()> {
    if ctx.ui.json() {
        return ctx.ui.json_value(&serde_json::json!({
            "verdict": v,
            "known_hosts": path,
            "written": written,
            "removed_lines": removed,
            "trust_on_first_use": tofu,
        }));
    }
    let who = &v.endpoint;
    let mut msg = String::new();
    if !removed.is_empty() {
        msg.push_str(&format!(
            "Removed line(s) {removed:?} for {who} from `{}`.\n",
            path.display()
        ));
    }
    if !written.is_empty() {
        msg.push_str(&format!(
            "Added {} line(s) for {who} to `{}`.\n",
            written.len(),
            path.display()
        ));
    } else if v.decision.trusted() {
        msg.push_str(&format!(
            "`{}` already has every key for {who}; nothing to write.\n",
            path.display()
        ));
    }
    msg.push_str(&format!(
        "The plain `ssh` and `git` clients now trust {who} too."
    ));
    ctx.ui.info(&msg);
    Ok(())
}

fn show(ctx: &mut Ctx, ep: &Endpoint, files: &[KnownHosts]) -> Result<()> {
    let mut rows = Vec::new();
    for f in files {
        for e in f.lookup(ep) {
            let marker = match e.marker {
                Marker::None => "",
                Marker::Revoked => "@revoked ",
                Marker::CertAuthority => "@cert-authority ",
            };
            rows.push((
                format!("{}:{}", f.path.display(), e.line),
                format!("{marker}{}", KeyInfo::of(&e.key).show()),
            ));
        }
    }
    if let Some(p) = ctx.registry.for_endpoint(ep) {
        for pin in p.pins.iter().filter(|pin| pin.endpoint == *ep) {
            let alg = pin
                .key
                .as_deref()
                .and_then(|k| k.split(' ').next())
                .unwrap_or("key");
            let state = if pin.confirmed {
                "published"
            } else {
                "unconfirmed"
            };
            rows.push((
                format!("{} ({state})", p.name),
                format!("{alg} {}", pin.fingerprint),
            ));
        }
    }
    if ctx.ui.json() {
        let v: Vec<_> = rows
            .iter()
            .map(|(w, k)| serde_json::json!({"source": w, "key": k}))
            .collect();
        return ctx
            .ui
            .json_value(&serde_json::json!({ "host": ep.host, "port": ep.port, "entries": v }));
    }
    for (w, k) in &rows {
        ctx.ui.data(&format!("{w} {k}"))?;
    }
    if rows.is_empty() {
        ctx.ui
            .info(&format!("nothing is known about {}", ep.known_hosts_name()));
    }
    Ok(())
}

fn offline(ctx: &mut Ctx, args: &TrustArgs, path: &PathBuf) -> Result<()> {
    let p = ctx
        .registry
        .get(
            args.provider
                .as_deref()
                .expect("clap requires --provider with --offline"),
        )?
        .clone();
    let lines: Vec<(Endpoint, PublicKey)> = p
        .pins
        .iter()
        .filter(|pin| pin.confirmed)
        .filter_map(|pin| {
            pin.key
                .as_deref()
                .and_then(|k| PublicKey::from_openssh(k).ok())
                .map(|k| (pin.endpoint.clone(), k))
        })
        .collect();
    if lines.is_empty() {
        return Err(Error::usage(format!(
            "{} has no published host keys keyclone can write without connecting",
            p.name
        ))
        .hint("connect instead: `keyclone trust HOST` (pinned fingerprints are checked then)"));
    }
    let files = read_known_hosts(ctx, path)?;
    let mut stale: Vec<(Endpoint, PublicKey)> = Vec::new();
    for (ep, _) in &lines {
        for f in &files {
            for e in f.lookup(ep).filter(|e| e.marker == Marker::None) {
                let fp = crate::ssh::key::fingerprint(&e.key);
                if !p.pins.iter().any(|pin| pin.fingerprint == fp)
                    && !stale
                        .iter()
                        .any(|(s, k)| s == ep && k.key_data() == e.key.key_data())
                {
                    let why = p
                        .revoked
                        .iter()
                        .find(|r| r.fingerprint == fp)
                        .map(|r| format!(": {}", r.reason))
                        .unwrap_or_default();
                    ctx.ui.warn(&format!(
                        "`{}` line {} holds a key {} does not publish for {} ({}){why}",
                        f.path.display(),
                        e.line,
                        p.name,
                        ep.known_hosts_name(),
                        KeyInfo::of(&e.key).show()
                    ));
                    stale.push((ep.clone(), e.key.clone()));
                }
            }
        }
    }
    let mut written = Vec::new();
    let mut removed = Vec::new();
    let mut endpoints: Vec<Endpoint> = lines.iter().map(|(ep, _)| ep.clone()).collect();
    endpoints.dedup();
    for ep in &endpoints {
        let add: Vec<_> = lines.iter().filter(|(e, _)| e == ep).cloned().collect();
        let rm: Vec<PublicKey> = if args.replace {
            stale
                .iter()
                .filter(|(e, _)| e == ep)
                .map(|(_, k)| k.clone())
                .collect()
        } else {
            Vec::new()
        };
        let (w, r) = write_known_hosts(path, &add, Some((ep, &rm)), args.hash)?;
        written.extend(w);
        removed.extend(r);
    }
    if !stale.is_empty() && !args.replace {
        ctx.ui.warn(&format!(
            "remove those lines with `keyclone trust --offline --provider {} --replace`",
            p.id
        ));
    }
    if ctx.ui.json() {
        return ctx.ui.json_value(&serde_json::json!({
            "provider": p.id, "known_hosts": path, "written": written, "removed_lines": removed,
        }));
    }
    let hosts: Vec<String> = endpoints.iter().map(Endpoint::known_hosts_name).collect();
    ctx.ui.info(&format!(
        "Wrote {} of {}'s published host keys to `{}` ({} already there){} for {}. No connection was made.",
        written.len(),
        p.name,
        path.display(),
        lines.len() - written.len(),
        if removed.is_empty() { String::new() } else { format!(", removed {} old line(s)", removed.len()) },
        hosts.join(", ")
    ));
    Ok(())
}

fn refresh(ctx: &mut Ctx, only: Option<&str>) -> Result<()> {
    let sources = crate::ops::refresh::sources(&ctx.registry, only)?;
    let results = crate::ops::refresh::refresh(ctx, &sources)?;
    let mut first_error = None;
    let mut done = Vec::new();
    for r in results {
        match r {
            Ok(r) => {
                if !ctx.ui.json() {
                    let p = ctx.registry.find(&r.provider).cloned();
                    for (level, msg) in r.messages(p.as_ref()) {
                        match level {
                            Level::Info => ctx.ui.info(&msg),
                            Level::Warn => ctx.ui.warn(&msg),
                        }
                    }
                }
                done.push(r);
            }
            Err(e) if first_error.is_none() => first_error = Some(e),
            Err(e) => ctx.ui.error(&e),
        }
    }
    // On an error, the error object is the JSON on stdout (one object, as always).
    if ctx.ui.json() && first_error.is_none() {
        ctx.ui
            .json_value(&serde_json::json!({ "refreshed": done }))?;
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
