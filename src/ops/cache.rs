//! Where the wizard keeps the passphrase between runs: the system keyring, the running
//! ssh-agent (it holds the decrypted key), keyclone's own ssh-agent when none runs (see
//! `ops::agent`), or nowhere; asked through the prompter unless `--cache` says, and checked
//! before anything changes.

use std::path::PathBuf;

use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::ops::agent::{self as own_agent, DEFAULT_CACHE_FOR};
use crate::ops::key_choice::Chosen;
use crate::ops::survey::Survey;
use crate::secrets;
use crate::ssh::agent;
use crate::ssh::agent_process::{self, State};

/// Where to keep the passphrase between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cache {
    /// The system keyring (kernel keyutils on Linux: until logout or reboot)
    Keyring,
    /// The running ssh-agent (this login session)
    Agent,
    /// keyclone's own ssh-agent, started for you: later shells, ssh and git use it too
    KeycloneAgent,
    /// Do not cache: keyclone and git ask each time
    None,
}

/// What caching did: the summary, and keyclone's agent socket when the key is there (the
/// `~/.ssh/config` block then names it as `IdentityAgent`).
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    pub summary: String,
    pub identity_agent: Option<PathBuf>,
}

impl From<&str> for Cached {
    fn from(summary: &str) -> Cached {
        Cached {
            summary: summary.to_owned(),
            identity_agent: None,
        }
    }
}

/// `--cache`, or what `--cache-for` alone means: the running agent, else keyclone's own.
pub(crate) fn effective_cache(
    cache: Option<Cache>,
    cache_for: Option<u32>,
    s: &Survey,
) -> Option<Cache> {
    cache.or_else(|| {
        cache_for.map(|_| {
            if s.agent {
                Cache::Agent
            } else {
                Cache::KeycloneAgent
            }
        })
    })
}

/// Refuses a `--cache` this machine cannot honour (no keyring, no agent), and a `--cache-for`
/// with a cache that has no lifetime, before anything changes.
pub(crate) fn check_cache(cache: Option<Cache>, cache_for: Option<u32>, s: &Survey) -> Result<()> {
    match cache {
        Some(Cache::Keyring) => {
            if cache_for.is_some() {
                return Err(Error::usage("`--cache-for` sets how long an ssh-agent keeps the key; the keyring keeps it until logout")
                    .hint("pass `--cache keyclone-agent --cache-for DURATION`, or leave out `--cache-for`"));
            }
            if let Err(why) = &s.keyring {
                return Err(Error::refused(format!(
                    "`--cache keyring`: no keyring works here ({why})"
                ))
                .hint("on a headless Linux machine run keyclone inside `keyctl session -` (package keyutils), or use `--cache agent`"));
            }
        }
        Some(Cache::Agent) if !s.agent => {
            return Err(Error::refused(
                "`--cache agent`: no ssh-agent answers here (`SSH_AUTH_SOCK` is unset or stale)",
            )
            .hint("start one with `eval \"$(ssh-agent)\"`, then run the same command again"));
        }
        Some(Cache::None) if cache_for.is_some() => {
            return Err(Error::usage(
                "`--cache none` caches nothing, so `--cache-for` has nothing to time",
            )
            .hint("leave out one of the two"));
        }
        _ => {}
    }
    Ok(())
}

/// Offers to keep the passphrase in the keyring or an ssh-agent; returns what was done.
/// `cache` is `--cache` (see [`effective_cache`]); without it the choice is asked (without a
/// terminal: none). `cache_for`: the key's lifetime in an agent.
pub(crate) fn cache_passphrase(
    ctx: &mut Ctx,
    cache: Option<Cache>,
    cache_for: Option<u32>,
    c: &Chosen,
    s: &Survey,
) -> Result<Cached> {
    if !c.encrypted {
        return Ok("not needed (no passphrase)".into());
    }
    let users = own_agent::users_agent(ctx);
    if users.as_ref().is_some_and(|a| a.holds(&c.public)) {
        return Ok("ssh-agent already holds the key".into());
    }
    let ours = own_agent::socket(ctx);
    if matches!(agent_process::state(&ours), Ok(State::Running { .. }))
        && agent::Agent::at(&ours).holds(&c.public)
        && matches!(cache, Option::None | Some(Cache::KeycloneAgent))
    {
        return Ok(Cached {
            summary: "keyclone's ssh-agent already holds the key".into(),
            identity_agent: Some(ours),
        });
    }
    let Some((decrypted, Some(pass))) = &c.unlocked else {
        return Ok("not needed".into());
    };
    if secrets::keyring_passphrase(&ctx.env, &c.path).is_some_and(|p| p.expose() == pass.expose()) {
        return Ok("keyring already holds the passphrase".into());
    }
    let mut options: Vec<(Cache, String)> = Vec::new();
    if s.keyring.is_ok() {
        options.push((
            Cache::Keyring,
            "Keyring: keyclone reads it from the system keyring (until you log out or reboot)"
                .into(),
        ));
    }
    if users.is_some() {
        options.push((
            Cache::Agent,
            "ssh-agent: ssh, git and keyclone use the key without asking (this login session)"
                .into(),
        ));
    }
    if options.is_empty() && cache.is_none() && !ctx.ui.interactive() {
        ctx.ui.info("Neither a keyring nor ssh-agent can hold the passphrase here: keyclone and git will ask for it each time. To cache it, run `keyclone agent start --cache-for 8h` (keyclone runs an ssh-agent for you), or pass `--cache keyclone-agent` to `keyclone init`.");
        return Ok("none available".into());
    }
    if users.is_none() {
        options.push((
            Cache::KeycloneAgent,
            "keyclone's ssh-agent: keyclone runs one for you; later shells, ssh and git use the key without asking for 8 hours".into(),
        ));
    }
    options.push((
        Cache::None,
        "Don't cache: ask for the passphrase each time".into(),
    ));
    let choice = match cache {
        Some(c) => c,
        None if ctx.ui.interactive() => {
            let items: Vec<String> = options.iter().map(|(_, l)| l.clone()).collect();
            let i = ctx
                .ui
                .prompter()
                .select("Keep the passphrase for this session?", &items, 0)?;
            options[i].0
        }
        None => Cache::None,
    };
    match choice {
        Cache::None => Ok("not cached".into()),
        Cache::Keyring => match secrets::keyring_store(&ctx.env, &c.path, pass) {
            Ok(()) => {
                ctx.ui.info("The passphrase is in the keyring (service `keyclone`, account = the key's path).");
                Ok("keyring".into())
            }
            Err(why) => {
                ctx.ui.warn(&format!("the keyring did not keep the passphrase ({why}); nothing was cached, keyclone will ask again"));
                Ok("keyring failed".into())
            }
        },
        Cache::Agent => {
            let agent = agent::Agent::from_env(&ctx.env)
                .ok_or_else(|| Error::internal("agent socket vanished"))?;
            agent.add(decrypted, cache_for)?;
            ctx.ui.info("ssh-agent holds the key now (until it stops).");
            Ok("ssh-agent".into())
        }
        Cache::KeycloneAgent => {
            let life = cache_for.unwrap_or(DEFAULT_CACHE_FOR);
            let sock = own_agent::cache_key(ctx, decrypted, life)?;
            let span = humantime::format_duration(std::time::Duration::from_secs(life.into()));
            ctx.ui.info(&format!("keyclone's ssh-agent at `{}` holds the key for {span} (until then, `keyclone agent stop`, or a restart). Plain ssh and git find it through `IdentityAgent` in the `~/.ssh/config` block; other tools through `eval \"$(keyclone agent env)\"`.", sock.display()));
            Ok(Cached {
                summary: format!("keyclone's ssh-agent ({span})"),
                identity_agent: Some(sock),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn machine(agent: bool, keyring: std::result::Result<(), String>) -> Survey {
        Survey {
            ssh_dir: "/h/.ssh".into(),
            ssh_dir_missing: false,
            ssh_dir_problem: None,
            keys: Vec::new(),
            agent_socket: agent.then(|| "/tmp/agent.sock".into()),
            agent,
            own_agent: false,
            keyring,
            code_share: false,
            git_name: None,
            git_email: None,
        }
    }

    #[test]
    fn a_cache_the_machine_has_or_none_is_accepted() {
        let both = machine(true, Ok(()));
        let neither = machine(false, Err("no keyutils".into()));
        for c in [
            None,
            Some(Cache::Keyring),
            Some(Cache::Agent),
            Some(Cache::None),
        ] {
            check_cache(c, None, &both).unwrap();
        }
        check_cache(None, None, &neither).unwrap();
        check_cache(Some(Cache::None), None, &neither).unwrap();
    }

    #[test]
    fn a_keyring_that_does_not_work_is_refused_with_why_and_what_instead() {
        let e = check_cache(
            Some(Cache::Keyring),
            None,
            &machine(true, Err("no keyutils".into())),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.message().contains("no keyutils"), "{}", e.message());
        assert!(e.hints()[0].contains("keyctl session"));
        assert!(e.hints()[0].contains("--cache agent"));
    }

    #[test]
    fn a_missing_agent_is_refused_with_how_to_start_one() {
        let e = check_cache(Some(Cache::Agent), None, &machine(false, Ok(()))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.message().contains("no ssh-agent"), "{}", e.message());
        assert!(e.hints()[0].contains("eval \"$(ssh-agent)\""));
    }

    #[test]
    fn cache_for_alone_means_the_running_agent_else_keyclone_s() {
        let with = machine(true, Ok(()));
        let without = machine(false, Ok(()));
        assert_eq!(effective_cache(None, Some(60), &with), Some(Cache::Agent));
        assert_eq!(
            effective_cache(None, Some(60), &without),
            Some(Cache::KeycloneAgent)
        );
        assert_eq!(effective_cache(None, None, &without), None);
        assert_eq!(
            effective_cache(Some(Cache::Keyring), None, &with),
            Some(Cache::Keyring)
        );
        check_cache(Some(Cache::KeycloneAgent), Some(60), &without).unwrap();
        for no_lifetime in [Cache::Keyring, Cache::None] {
            let e = check_cache(Some(no_lifetime), Some(60), &with).unwrap_err();
            assert!(e.message().contains("--cache-for"), "{e}");
        }
    }
}
