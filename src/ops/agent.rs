//! keyclone's own ssh-agent, for machines without one (an Azure ML compute instance): started
//! on demand at the fixed socket of `ssh::agent_process`, the key added through keyclone's
//! agent client (the passphrase read by keyclone, the decrypted key sent over the socket, never
//! on a command line) for a lifetime, and stopped. The user's own agent, when one answers at
//! `SSH_AUTH_SOCK`, comes first: `env` then prints nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh_key::PrivateKey;

use crate::context::Ctx;
use crate::env::SSH_AUTH_SOCK;
use crate::error::{Error, Result};
use crate::secrets::{Unlock, UnlockArgs};
use crate::ssh::agent::Agent;
use crate::ssh::agent_process::{self, State};

/// How long keyclone's agent keeps a key unless told (`--cache-for`): a working day.
pub const DEFAULT_CACHE_FOR: u32 = 8 * 3600;
/// The longest `--cache-for`.
const MAX_CACHE_FOR: u64 = 30 * 24 * 3600;

/// `--cache-for`: seconds (`3600`) or a duration (`8h`, `90m`, `1h 30m`, `2d`), 1 second to
/// 30 days.
pub fn parse_cache_for(s: &str) -> std::result::Result<u32, String> {
    let s = s.trim();
    let d = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(s.parse().map_err(|_| "too long".to_owned())?)
    } else {
        humantime::parse_duration(s)
            .map_err(|e| format!("{e}: give seconds or a duration such as `8h`, `90m`, `2d`"))?
    };
    let secs = d.as_secs();
    if secs == 0 || secs > MAX_CACHE_FOR {
        return Err("give a lifetime from 1 second to 30 days (`8h`, `2d`)".into());
    }
    u32::try_from(secs).map_err(|_| "too long".into())
}

/// keyclone's agent socket for this SSH directory.
pub(crate) fn socket(ctx: &Ctx) -> PathBuf {
    agent_process::socket(&ctx.ssh_dir)
}

/// The user's own agent: `SSH_AUTH_SOCK` names a socket other than keyclone's and an agent
/// answers there.
pub(crate) fn users_agent(ctx: &Ctx) -> Option<Agent> {
    let ours = socket(ctx);
    Agent::from_env(&ctx.env).filter(|a| a.socket() != ours && a.reachable())
}

/// Refuses keyclone's agent folder or socket when they are not this user's alone (checked
/// before `init` changes anything).
pub(crate) fn check_usable(ctx: &Ctx) -> Result<()> {
    agent_process::state(&socket(ctx)).map(|_| ())
}

/// keyclone's agent, started now unless it runs (`lifetime`: `ssh-agent -t` of a new one).
pub(crate) fn ensure(ctx: &mut Ctx, lifetime: Option<u32>) -> Result<Agent> {
    let sock = socket(ctx);
    let (pid, started) = agent_process::start(&sock, lifetime)?;
    if started {
        ctx.ui.detail(&format!(
            "started keyclone's ssh-agent (pid {pid}) at `{}`",
            sock.display()
        ));
    }
    Ok(Agent::at(&sock))
}

/// Adds a decrypted key to keyclone's agent (started if needed) for `lifetime` seconds;
/// returns the socket.
pub(crate) fn cache_key(ctx: &mut Ctx, decrypted: &PrivateKey, lifetime: u32) -> Result<PathBuf> {
    let agent = ensure(ctx, Some(lifetime))?;
    agent.add(decrypted, Some(lifetime))?;
    Ok(agent.socket().to_owned())
}

/// Loads and unlocks a key (`--key`, else the default one; the passphrase from
/// `--passphrase-file`, `KEYCLONE_PASSPHRASE`, the keyring or the masked prompt) and adds it
/// to keyclone's agent. Returns the key's path and fingerprint.
pub(crate) fn add_key_file(
    ctx: &mut Ctx,
    key: Option<&Path>,
    unlock: &UnlockArgs,
    lifetime: u32,
) -> Result<(PathBuf, String)> {
    let (path, private) = crate::ops::key::load_key(ctx, key, None)?;
    let decrypted = match crate::ops::key::unlock(ctx, &path, &path, &private, unlock)? {
        Unlock::Plain => private.clone(),
        Unlock::Passphrase(p) => private.decrypt(p.expose().as_bytes()).map_err(|e| {
            Error::internal("the passphrase that was checked did not decrypt the key")
                .with_source(e)
        })?,
        Unlock::Agent => return Err(Error::internal("unlock without ssh-agent gave the agent")),
    };
    cache_key(ctx, &decrypted, lifetime)?;
    Ok((path, crate::ssh::key::fingerprint(private.public_key())))
}

/// What `keyclone agent status` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Status {
    pub socket: PathBuf,
    /// `stopped`, `stale` or `running`.
    pub state: &'static str,
    pub pid: Option<i32>,
    /// The comments of the keys it holds (when it runs).
    pub keys: Vec<String>,
    /// `SSH_AUTH_SOCK` names another agent that answers (it comes first in this shell).
    pub users_agent: Option<PathBuf>,
}

pub(crate) fn status(ctx: &Ctx) -> Result<Status> {
    let sock = socket(ctx);
    let (state, pid, keys) = match agent_process::state(&sock)? {
        State::Stopped => ("stopped", None, Vec::new()),
        State::Stale => ("stale", None, Vec::new()),
        State::Running { pid } => {
            let ids = Agent::at(&sock).identities()?;
            (
                "running",
                Some(pid),
                ids.into_iter().map(|i| i.comment).collect(),
            )
        }
    };
    Ok(Status {
        socket: sock,
        state,
        pid,
        keys,
        users_agent: users_agent(ctx).map(|a| a.socket().to_owned()),
    })
}

/// Stops keyclone's agent (its keys go with it). Returns what it was.
pub(crate) fn stop(ctx: &Ctx) -> Result<State> {
    agent_process::stop(&socket(ctx))
}

/// The shell lines that point `SSH_AUTH_SOCK` at keyclone's agent (started now if it does not
/// run), for `eval "$(keyclone agent env)"`; `None` when the user's own agent answers.
pub(crate) fn env_lines(ctx: &mut Ctx, lifetime: Option<u32>) -> Result<Option<String>> {
    if let Some(a) = users_agent(ctx) {
        ctx.ui.detail(&format!(
            "`{SSH_AUTH_SOCK}` already names an agent that answers (`{}`): this shell keeps it",
            a.socket().display()
        ));
        return Ok(None);
    }
    let agent = ensure(ctx, lifetime)?;
    let quoted = shell_quote(&agent.socket().display().to_string());
    Ok(Some(format!(
        "{SSH_AUTH_SOCK}={quoted}; export {SSH_AUTH_SOCK};"
    )))
}

/// `s` in single quotes for a POSIX shell (a `'` inside as `'\''`).
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_for_takes_seconds_or_a_duration_within_30_days() {
        assert_eq!(parse_cache_for("8h"), Ok(8 * 3600));
        assert_eq!(parse_cache_for("90m"), Ok(5400));
        assert_eq!(parse_cache_for("1h 30m"), Ok(5400));
        assert_eq!(parse_cache_for("3600"), Ok(3600));
        assert_eq!(parse_cache_for("30d"), Ok(30 * 24 * 3600));
        for bad in ["0", "0s", "31d", "", "soon", "-1h", "99999999999999999999"] {
            assert!(parse_cache_for(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_socket_is_quoted_for_any_shell() {
        assert_eq!(shell_quote("/h/.ssh/a.sock"), "'/h/.ssh/a.sock'");
        assert_eq!(shell_quote("/h/it's $x"), r"'/h/it'\''s $x'");
    }
}
