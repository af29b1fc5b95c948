//! doctor's login check: for every host of keyclone's `~/.ssh/config` block, the check
//! `keyclone test HOST` makes (verify the host against known_hosts, log in like `ssh -T`,
//! nothing cloned), skipped with `--offline`. doctor never asks for a passphrase: the key is
//! presented through an agent that holds it (yours at `SSH_AUTH_SOCK`, or keyclone's own), the
//! passphrase from `KEYCLONE_PASSPHRASE` or the keyring, or as is when it has none; a key none
//! of those unlocks is reported, with the `keyclone test` command that asks.

use std::path::PathBuf;
use std::time::Duration;

use ssh_key::{PrivateKey, PublicKey};

use super::{Check, Status};
use crate::context::Ctx;
use crate::endpoint::Endpoint;
use crate::env::KEYCLONE_PASSPHRASE;
use crate::passphrase::Passphrase;
use crate::ssh::agent::Agent;
use crate::ssh::agent_process::{self, State};
use crate::ssh::config::HostEntry;
use crate::ssh::known_hosts::{KnownHosts, Marker};
use crate::ssh::probe::{self, LoginKey};

/// How one login went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server accepted the key; how it was presented.
    Accepted(&'static str),
    /// The server refused the key.
    Refused,
    /// The check could not be made (network, host key): why.
    Failed(String),
    /// known_hosts has no usable key for the host.
    Unverified,
    /// No agent holds the key and no passphrase source unlocks it.
    Locked,
    /// The key file cannot be used: why.
    NoKey(String),
}

/// The login check of one `Host` entry.
#[derive(Debug, Clone)]
pub struct Login {
    pub alias: String,
    pub endpoint: Endpoint,
    pub user: String,
    pub key: PathBuf,
    pub outcome: Outcome,
}

/// Logs in to every entry's host.
pub(super) fn gather<'a>(
    ctx: &Ctx,
    entries: impl Iterator<Item = &'a HostEntry>,
    timeout: Duration,
) -> Vec<Login> {
    entries
        .map(|e| Login {
            alias: e.alias.clone(),
            endpoint: e.endpoint(),
            user: e.user.clone(),
            key: e.identity_file.clone(),
            outcome: login(ctx, e, timeout),
        })
        .collect()
}

/// How the key is presented without a prompt.
enum How {
    Agent(PathBuf),
    File(Option<Passphrase>),
}

fn login(ctx: &Ctx, e: &HostEntry, timeout: Duration) -> Outcome {
    let ep = e.endpoint();
    let Some(host_key) = known_key(ctx, e, &ep) else {
        return Outcome::Unverified;
    };
    let private = match crate::files::read_bounded_text(
        &e.identity_file,
        crate::files::KEY_LIMIT,
        "private key",
    )
    .map_err(|err| err.message().to_owned())
    .and_then(|t| {
        PrivateKey::from_openssh(&t).map_err(|_| "it is not an OpenSSH private key".to_owned())
    }) {
        Ok(k) => k,
        Err(why) => return Outcome::NoKey(why),
    };
    let Some(how) = how(ctx, e, &private) else {
        return Outcome::Locked;
    };
    let (key, via) = match &how {
        How::Agent(socket) => (
            LoginKey::AgentAt {
                socket,
                key: private.public_key(),
            },
            "through ssh-agent",
        ),
        How::File(p) => (
            LoginKey::File {
                path: &e.identity_file,
                passphrase: p.as_ref().map(Passphrase::expose),
            },
            "with the key file",
        ),
    };
    match probe::check_login(&ep, timeout, &host_key, &e.user, key) {
        Ok(true) => Outcome::Accepted(via),
        Ok(false) => Outcome::Refused,
        Err(err) => Outcome::Failed(err.causes().into_iter().next().map_or_else(
            || err.message().to_owned(),
            |c| format!("{}: {c}", err.message()),
        )),
    }
}

/// The first key known_hosts (the entry's own file, else the SSH directory's) holds for `ep`
/// that no `@revoked` line revokes.
fn known_key(ctx: &Ctx, e: &HostEntry, ep: &Endpoint) -> Option<PublicKey> {
    let path = e
        .known_hosts
        .clone()
        .unwrap_or_else(|| ctx.ssh_dir.join("known_hosts"));
    let kh = KnownHosts::read(&path).ok()?;
    let lines: Vec<_> = kh.lookup(ep).collect();
    let revoked = |k: &PublicKey| {
        lines
            .iter()
            .any(|l| l.marker == Marker::Revoked && l.key.key_data() == k.key_data())
    };
    lines
        .iter()
        .filter(|l| l.marker == Marker::None && !revoked(&l.key))
        .map(|l| l.key.clone())
        .next()
}

fn how(ctx: &Ctx, e: &HostEntry, private: &PrivateKey) -> Option<How> {
    let public = private.public_key();
    if let Some(a) = Agent::from_env(&ctx.env).filter(|a| a.holds(public)) {
        return Some(How::Agent(a.socket().to_owned()));
    }
    let ours = e
        .identity_agent
        .clone()
        .unwrap_or_else(|| agent_process::socket(&ctx.ssh_dir));
    if matches!(agent_process::state(&ours), Ok(State::Running { .. }))
        && Agent::at(&ours).holds(public)
    {
        return Some(How::Agent(ours));
    }
    if !private.is_encrypted() {
        return Some(How::File(None));
    }
    let from_env = ctx
        .env
        .get(KEYCLONE_PASSPHRASE)
        .map(|v| Passphrase::new(v.to_string_lossy().into_owned()));
    from_env
        .into_iter()
        .chain(crate::secrets::keyring_passphrase(
            &ctx.env,
            &e.identity_file,
        ))
        .find(|p| private.decrypt(p.expose().as_bytes()).is_ok())
        .map(|p| How::File(Some(p)))
}

/// The checklist line of one login.
pub fn check(l: &Login) -> Check {
    let who = format!("`{}` ({}, user `{}`)", l.alias, l.endpoint, l.user);
    let key = l.key.display();
    let test = format!("keyclone test {} --user {} --key {key}", l.endpoint, l.user);
    let (status, what, fix) = match &l.outcome {
        Outcome::Accepted(via) => (Status::Ok, format!("{who} accepts `{key}` {via}"), None),
        Outcome::Refused => (
            Status::Fail,
            format!("{who} refuses `{key}`: the key is not on the account"),
            Some(format!(
                "add the public key to your account (`keyclone pubkey --key {key}` shows it and where), then `{test}`"
            )),
        ),
        Outcome::Failed(why) => (
            Status::Fail,
            format!("{who}: the login could not be checked ({why})"),
            Some(format!("run `{test}` for the details")),
        ),
        Outcome::Unverified => (
            Status::Warn,
            format!("{who} is not checked: known_hosts has no key for it"),
            Some(format!("keyclone trust {}", l.endpoint)),
        ),
        Outcome::Locked => (
            Status::Warn,
            format!(
                "{who} is not checked: `{key}` is locked and no agent holds it (doctor does not ask for passphrases)"
            ),
            Some(format!(
                "`{test}` asks for it, or `keyclone agent start --key {key}` caches it"
            )),
        ),
        Outcome::NoKey(why) => (
            Status::Fail,
            format!("{who} is not checked: `{key}` cannot be used ({why})"),
            Some("run `keyclone init` again, or fix the `IdentityFile` line".to_owned()),
        ),
    };
    Check {
        area: "login",
        status,
        what,
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(outcome: Outcome) -> Login {
        Login {
            alias: "github.com".into(),
            endpoint: Endpoint::new("github.com", 22),
            user: "git".into(),
            key: PathBuf::from("/h/.ssh/id_ed25519"),
            outcome,
        }
    }

    #[test]
    fn an_accepted_login_is_ok_and_says_how() {
        let c = check(&login(Outcome::Accepted("through ssh-agent")));
        assert_eq!((c.area, c.status), ("login", Status::Ok));
        assert!(
            c.what
                .contains("accepts `/h/.ssh/id_ed25519` through ssh-agent"),
            "{}",
            c.what
        );
        assert!(c.fix.is_none());
    }

    #[test]
    fn a_refused_or_failed_login_fails_with_the_test_command() {
        let c = check(&login(Outcome::Refused));
        assert_eq!(c.status, Status::Fail);
        let fix = c.fix.unwrap();
        assert!(
            fix.contains("keyclone pubkey --key /h/.ssh/id_ed25519"),
            "{fix}"
        );
        assert!(fix.contains("keyclone test github.com --user git"), "{fix}");
        let c = check(&login(Outcome::Failed("timed out".into())));
        assert_eq!(c.status, Status::Fail);
        assert!(c.what.contains("timed out"));
    }

    #[test]
    fn what_doctor_cannot_check_without_asking_is_a_warning_with_the_way_to_check() {
        let c = check(&login(Outcome::Locked));
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.unwrap().contains("keyclone agent start --key"));
        let c = check(&login(Outcome::Unverified));
        assert_eq!(c.status, Status::Warn);
        assert_eq!(c.fix.as_deref(), Some("keyclone trust github.com"));
        let c = check(&login(Outcome::NoKey("gone".into())));
        assert_eq!(c.status, Status::Fail);
    }
}
