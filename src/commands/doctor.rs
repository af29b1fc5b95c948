//! `keyclone doctor`: a checklist of everything keyclone set up, with the fix for each problem.
//! The facts and the checks over them are in `ops::doctor`; this file holds the flags and the
//! report.

use std::time::Duration;

use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::ops::doctor::{self, Check, Status};

/// Check the SSH setup and say how to fix what is wrong.
///
/// Checks the SSH directory and key permissions, the keys (type against the providers that use
/// them, passphrase, age), known_hosts against the providers' published keys (GitHub's revoked
/// 2023 RSA key included), keyclone's block in `~/.ssh/config`, ssh-agent, the keyring, and
/// whether each configured provider answers on port 22 and 443, and logs in to every host of
/// the block as `keyclone test HOST` does (through an agent that holds the key, a passphrase
/// from `KEYCLONE_PASSPHRASE` or the keyring; it never asks); inside a clone, Git LFS files left
/// as pointers. Exits with 1 when something is wrong.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone doctor\n  keyclone doctor --provider github --json")]
pub struct DoctorArgs {
    /// Also check that this provider can be reached (repeatable)
    #[arg(long, value_name = "NAME")]
    pub provider: Vec<String>,

    /// Skip the network checks (the providers' ports and the logins)
    #[arg(long)]
    pub offline: bool,

    /// Seconds to wait for each network check
    #[arg(long, value_name = "SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub timeout: u64,
}

pub fn run(ctx: &mut Ctx, args: DoctorArgs) -> Result<()> {
    let opts = doctor::Options {
        providers: args.provider,
        offline: args.offline,
        timeout: Duration::from_secs(args.timeout),
    };
    // The known_hosts checks judge with the refreshed host keys; a store that cannot be
    // trusted is doctor's failing "host keys" check (the built-in pins judge meanwhile).
    let _reported_by_the_pins_check = ctx.host_keys().is_err();
    let facts = doctor::gather(ctx, &opts)?;
    let checks = doctor::checks(&facts, &ctx.registry);
    report(ctx, &checks)
}

fn report(ctx: &mut Ctx, checks: &[Check]) -> Result<()> {
    let fails = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warns = checks.iter().filter(|c| c.status == Status::Warn).count();
    if ctx.ui.json() {
        ctx.ui.json_value(&serde_json::json!({
            "ok": fails == 0, "failures": fails, "warnings": warns, "checks": checks,
        }))?;
    } else {
        let mut out = String::new();
        for c in checks {
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
