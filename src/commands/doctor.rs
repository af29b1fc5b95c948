//! `keyclone doctor`: a checklist of everything keyclone set up, with the fix for each problem.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::files;
use crate::ops::survey::find_keys;
use crate::providers::{Endpoint, ProviderKind};
use crate::secrets;
use crate::ssh::agent;
use crate::ssh::config as sshconfig;
use crate::ssh::known_hosts::{self, KnownHosts, Marker};
use crate::ssh::trust::{self, Decision};

/// Azure DevOps SSH keys stop working one year after they are added.
const AZURE_KEY_DAYS: u64 = 365;

/// Check the SSH setup and say how to fix what is wrong.
///
/// Checks the SSH directory and key permissions, the keys (type against the providers that use
/// them, passphrase, age), known_hosts against the providers' published keys (GitHub's revoked
/// 2023 RSA key included), keyclone's block in `~/.ssh/config`, ssh-agent, the keyring, and
/// whether each configured provider answers on port 22 and 443. Exits with 1 when something
/// is wrong.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone doctor\n  keyclone doctor --provider github --json")]
pub struct DoctorArgs {
    /// Also check that this provider can be reached (repeatable)
    #[arg(long, value_name = "NAME")]
    pub provider: Vec<String>,

    /// Skip the network checks
    #[arg(long)]
    pub offline: bool,

    /// Seconds to wait for each network check
    #[arg(long, value_name = "SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub area: &'static str,
    pub status: Status,
    pub what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Default)]
struct Report(Vec<Check>);

impl Report {
    fn add(&mut self, area: &'static str, status: Status, what: String, fix: Option<String>) {
        self.0.push(Check {
            area,
            status,
            what,
            fix,
        });
    }
    fn ok(&mut self, area: &'static str, what: String) {
        self.add(area, Status::Ok, what, None);
    }
    fn warn(&mut self, area: &'static str, what: String, fix: String) {
        self.add(area, Status::Warn, what, Some(fix));
    }
    fn fail(&mut self, area: &'static str, what: String, fix: String) {
        self.add(area, Status::Fail, what, Some(fix));
    }
}

pub fn run(ctx: &mut Ctx, args: DoctorArgs) -> Result<()> {
    let mut r = Report::default();
    check_ssh_dir(ctx, &mut r);
    let block = check_config(ctx, &mut r);
    check_keys(ctx, &mut r, &block);
    check_known_hosts(ctx, &mut r);
    let agent = agent::Agent::from_env(&ctx.env);
    let reachable = agent.as_ref().is_some_and(agent::Agent::reachable);
    check_agent(&mut r, agent.as_ref().map(agent::Agent::socket), reachable);
    check_keyring(&mut r, &secrets::keyring_works(&ctx.env));
    if !args.offline {
        check_network(ctx, &args, &mut r, &block)?;
    }
    report(ctx, &r)
}

fn check_ssh_dir(ctx: &Ctx, r: &mut Report) {
    let dir = &ctx.ssh_dir;
    match files::check_private_dir(dir) {
        Ok(files::DirState::Missing) => r.warn(
            "ssh-dir",
            format!("`{}` does not exist yet", dir.display()),
            "run `keyclone init`".into(),
        ),
        Ok(_) => r.ok("ssh-dir", format!("`{}` is private", dir.display())),
        Err(e) => r.fail(
            "ssh-dir",
            e.message().to_owned(),
            format!("chmod 700 {}", dir.display()),
        ),
    }
}

/// The managed block's entries, after checking it.
fn check_config(ctx: &Ctx, r: &mut Report) -> Vec<sshconfig::HostEntry> {
    let path = sshconfig::path_in(&ctx.ssh_dir);
    match sshconfig::read(&path) {
        Err(e) => {
            r.fail(
                "ssh-config",
                e.message().to_owned(),
                e.hints().first().cloned().unwrap_or_default(),
            );
            Vec::new()
        }
        Ok(cfg) if !cfg.has_block() => {
            r.warn(
                "ssh-config",
                format!(
                    "`{}` has no keyclone block: plain `ssh`/`git` may not pick your key",
                    path.display()
                ),
                "run `keyclone init` (it shows the block and asks before writing)".into(),
            );
            Vec::new()
        }
        Ok(cfg) => {
            if let Ok(meta) = std::fs::metadata(&path)
                && meta.permissions().mode() & 0o022 != 0
            {
                r.fail(
                    "ssh-config",
                    format!(
                        "`{}` is writable by others: OpenSSH refuses to use it",
                        path.display()
                    ),
                    format!("chmod 600 {}", path.display()),
                );
            }
            for e in cfg.entries() {
                if e.identity_file.is_file() {
                    r.ok(
                        "ssh-config",
                        format!(
                            "Host {} -> {}:{} with `{}`",
                            e.alias,
                            e.hostname,
                            e.port,
                            e.identity_file.display()
                        ),
                    );
                } else {
                    r.fail(
                        "ssh-config",
                        format!(
                            "Host {} uses `{}`, which does not exist",
                            e.alias,
                            e.identity_file.display()
                        ),
                        format!(
                            "run `keyclone init --repo URL` again for {}, or `keyclone rotate`",
                            e.alias
                        ),
                    );
                }
            }
            cfg.entries().to_vec()
        }
    }
}

fn age_days(path: &Path) -> Option<u64> {
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    SystemTime::now()
        .duration_since(m)
        .ok()
        .map(|d| d.as_secs() / 86_400)
}

fn check_keys(ctx: &Ctx, r: &mut Report, block: &[sshconfig::HostEntry]) {
    let keys = find_keys(ctx);
    if keys.is_empty() {
        r.warn(
            "keys",
            format!("no private key in `{}`", ctx.ssh_dir.display()),
            "create one with `keyclone init` (or `keyclone keygen`)".into(),
        );
    }
    for k in &keys {
        let p = k.path.display();
        let mode = std::fs::metadata(&k.path).map_or(0, |m| m.permissions().mode() & 0o777);
        if mode & 0o077 != 0 {
            r.fail(
                "keys",
                format!("`{p}` can be read by others (mode {mode:o}): OpenSSH refuses it"),
                format!("chmod 600 {p}"),
            );
        }
        if !k.encrypted {
            r.warn(
                "keys",
                format!("`{p}` has no passphrase: anyone who copies the file can use it"),
                format!("add one with `ssh-keygen -p -f {p}` (or `keyclone rotate --key {p}`)"),
            );
        }
        let age = age_days(&k.path).unwrap_or(0);
        if let Some(max) = ctx.config.keys.max_age_days
            && age > u64::from(max)
        {
            r.warn(
                "keys",
                format!("`{p}` is {age} days old; your config allows {max}"),
                format!("replace it: `keyclone rotate --key {p}`"),
            );
        }
        let users: Vec<&sshconfig::HostEntry> =
            block.iter().filter(|e| e.identity_file == k.path).collect();
        for e in &users {
            let Some(prov) = ctx.registry.for_host(&e.hostname, Some(e.port)) else {
                continue;
            };
            if !k.accepted_by.contains(&prov.id) {
                r.fail(
                    "keys",
                    format!(
                        "`{p}` is a {} key, and {} (Host {}) accepts only {}",
                        k.algorithm,
                        prov.name,
                        e.alias,
                        prov.accepted_list()
                    ),
                    format!(
                        "create a key it accepts: `keyclone rotate --key {p} --provider {}`",
                        prov.id
                    ),
                );
            }
            if prov.kind == ProviderKind::AzureDevops && age + 30 >= AZURE_KEY_DAYS {
                r.warn(
                    "keys",
                    format!(
                        "`{p}` was created {age} days ago; Azure DevOps SSH keys expire one year after they are added"
                    ),
                    format!("rotate it before it expires: `keyclone rotate --key {p}`"),
                );
            }
        }
        if mode & 0o077 == 0 && k.encrypted {
            r.ok(
                "keys",
                format!("`{p}` ({}, {}, {age} days old)", k.algorithm, k.fingerprint),
            );
        }
    }
}

fn check_known_hosts(ctx: &Ctx, r: &mut Report) {
    let path = ctx.ssh_dir.join("known_hosts");
    if !path.exists() {
        r.warn(
            "known_hosts",
            format!(
                "`{}` does not exist: no host is trusted yet",
                path.display()
            ),
            "run `keyclone init` or `keyclone trust HOST`".into(),
        );
        return;
    }
    let kh = match KnownHosts::read(&path) {
        Ok(k) => k,
        Err(e) => {
            r.fail(
                "known_hosts",
                e.message().to_owned(),
                "fix or remove the file".into(),
            );
            return;
        }
    };
    for pr in &kh.problems {
        r.warn(
            "known_hosts",
            format!("`{}` line {}: {}", path.display(), pr.line, pr.reason),
            format!("fix or delete line {} (OpenSSH ignores it)", pr.line),
        );
    }
    let files = std::slice::from_ref(&kh);
    let mut bad = 0;
    for p in ctx.registry.all() {
        let endpoints: Vec<&Endpoint> = p.ssh.iter().chain(p.ssh_443.iter()).collect();
        for ep in endpoints {
            for e in kh.lookup(&ep.host, ep.port) {
                if e.marker != Marker::None {
                    continue;
                }
                let v = trust::decide(&ep.host, ep.port, &e.key, files, &ctx.registry);
                let who = known_hosts::display_host(&ep.host, ep.port);
                match &v.decision {
                    Decision::Revoked { .. } | Decision::PinMismatch { .. } => {
                        bad += 1;
                        let why = trust::refusal(&v, &ctx.registry)
                            .map(|e| e.message().to_owned())
                            .unwrap_or_default();
                        r.fail(
                            "known_hosts",
                            format!("line {} for {who}: {why}", e.line),
                            format!(
                                "remove it and record the published keys: `keyclone trust {} --replace`",
                                known_hosts::host_name(&ep.host, ep.port)
                            ),
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    if bad == 0 {
        r.ok(
            "known_hosts",
            format!(
                "`{}`: no revoked or unpublished keys for known providers",
                path.display()
            ),
        );
    }
}

/// ssh-agent: `socket` is `SSH_AUTH_SOCK`, `reachable` whether an agent answers there.
fn check_agent(r: &mut Report, socket: Option<&Path>, reachable: bool) {
    match socket {
        None => r.warn(
            "agent",
            "no ssh-agent (`SSH_AUTH_SOCK` is unset): the passphrase is asked at each use".into(),
            "optional: `eval \"$(ssh-agent)\"`, then `keyclone init` offers to add the key".into(),
        ),
        Some(s) if !reachable => r.warn(
            "agent",
            format!(
                "`SSH_AUTH_SOCK` points at `{}`, where no agent answers",
                s.display()
            ),
            "start a new one: `eval \"$(ssh-agent)\"`".into(),
        ),
        Some(_) => r.ok("agent", "ssh-agent answers".into()),
    }
}

/// The keyring, from whether a backend works here.
fn check_keyring(r: &mut Report, works: &std::result::Result<(), String>) {
    match works {
        Ok(()) => r.ok("keyring", "a keyring backend works here".into()),
        Err(why) => r.warn(
            "keyring",
            format!("no keyring can cache passphrases here ({why})"),
            "optional: run keyclone inside `keyctl session -` (package keyutils), or use ssh-agent"
                .into(),
        ),
    }
}

/// Connects and reads the SSH banner.
fn answers(ep: &Endpoint, timeout: Duration) -> std::result::Result<(), String> {
    let addrs: Vec<_> = (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| format!("name lookup failed: {e}"))?
        .collect();
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(timeout));
                let mut buf = [0u8; 4];
                return match s.read_exact(&mut buf) {
                    Ok(()) if &buf == b"SSH-" => Ok(()),
                    Ok(()) => Err("something answered that is not an SSH server".into()),
                    Err(e) => Err(format!("connected, but no SSH banner ({e})")),
                };
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

fn check_network(
    ctx: &mut Ctx,
    args: &DoctorArgs,
    r: &mut Report,
    block: &[sshconfig::HostEntry],
) -> Result<()> {
    let timeout = Duration::from_secs(args.timeout);
    let mut ids: Vec<String> = Vec::new();
    for name in &args.provider {
        ids.push(ctx.registry.get(name)?.id.clone());
    }
    for e in block {
        if let Some(p) = ctx.registry.for_host(&e.hostname, Some(e.port))
            && !ids.contains(&p.id)
        {
            ids.push(p.id.clone());
        }
    }
    for id in ids {
        let p = ctx.registry.get(&id)?.clone();
        let mut results = Vec::new();
        for ep in p.ssh.iter().take(1).chain(p.ssh_443.iter()) {
            results.push((ep.clone(), answers(ep, timeout)));
        }
        let any = results.iter().any(|(_, r)| r.is_ok());
        for (ep, res) in results {
            let who = known_hosts::display_host(&ep.host, ep.port);
            match res {
                Ok(()) => r.ok("network", format!("{}: {who} answers", p.name)),
                Err(why) if any => r.warn(
                    "network",
                    format!("{}: {who} cannot be reached ({why})", p.name),
                    format!(
                        "use the endpoint that answers: `keyclone init --provider {} --port-443`",
                        p.id
                    ),
                ),
                Err(why) => r.fail(
                    "network",
                    format!("{}: {who} cannot be reached ({why})", p.name),
                    "check this machine's network, firewall or proxy".into(),
                ),
            }
        }
    }
    Ok(())
}

fn report(ctx: &mut Ctx, r: &Report) -> Result<()> {
    let fails = r.0.iter().filter(|c| c.status == Status::Fail).count();
    let warns = r.0.iter().filter(|c| c.status == Status::Warn).count();
    if ctx.ui.json() {
        ctx.ui.json_value(&serde_json::json!({
            "ok": fails == 0, "failures": fails, "warnings": warns, "checks": r.0,
        }))?;
    } else {
        let mut out = String::new();
        for c in &r.0 {
            let tag = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            out.push_str(&format!("{tag} {:<11} {}\n", c.area, c.what));
            if let Some(f) = &c.fix {
                out.push_str(&format!("     {:<11} fix: {f}\n", ""));
            }
        }
        ctx.ui.data(out.trim_end())?;
    }
    if fails > 0 {
        return Err(Error::new(
            ErrorKind::Unhealthy,
            format!("{fails} check(s) failed, {warns} warning(s)"),
        )
        .hint("apply the fixes shown, then run `keyclone doctor` again"));
    }
    if !ctx.ui.json() {
        ctx.ui.info(&format!("No failures ({warns} warning(s))."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(f: impl FnOnce(&mut Report)) -> Check {
        let mut r = Report::default();
        f(&mut r);
        assert_eq!(r.0.len(), 1);
        r.0.remove(0)
    }

    #[test]
    fn the_agent_check_tells_unset_dead_and_answering_apart() {
        let unset = one(|r| check_agent(r, None, false));
        assert_eq!(unset.status, Status::Warn);
        assert!(unset.what.contains("unset"));
        let sock = Path::new("/tmp/agent.sock");
        let dead = one(|r| check_agent(r, Some(sock), false));
        assert_eq!(dead.status, Status::Warn);
        assert!(dead.what.contains("/tmp/agent.sock"));
        assert!(dead.fix.as_deref().unwrap().contains("ssh-agent"));
        assert_eq!(one(|r| check_agent(r, Some(sock), true)).status, Status::Ok);
    }

    #[test]
    fn a_keyring_that_does_not_work_is_a_warning_with_the_reason() {
        assert_eq!(one(|r| check_keyring(r, &Ok(()))).status, Status::Ok);
        let c = one(|r| check_keyring(r, &Err("no backend".into())));
        assert_eq!(c.status, Status::Warn);
        assert!(c.what.contains("no backend"));
    }
}
