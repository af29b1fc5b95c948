//! Where the wizard keeps the passphrase between runs: the system keyring, the running
//! ssh-agent (it holds the decrypted key), or nowhere; asked through the prompter unless
//! `--cache` says, and checked before anything changes.

use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::ops::key_choice::Chosen;
use crate::ops::survey::Survey;
use crate::secrets;
use crate::ssh::agent;

/// Where to keep the passphrase between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cache {
    /// The system keyring (kernel keyutils on Linux: until logout or reboot)
    Keyring,
    /// The running ssh-agent (this login session)
    Agent,
    /// Do not cache: keyclone and git ask each time
    None,
}

/// Refuses a `--cache` this machine cannot honour (no keyring, no agent), before anything
/// changes.
pub(crate) fn check_cache(cache: Option<Cache>, s: &Survey) -> Result<()> {
    match cache {
        Some(Cache::Keyring) => {
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
        _ => {}
    }
    Ok(())
}

/// Offers to keep the passphrase in the keyring or ssh-agent; returns what was done.
/// `cache` is `--cache`; without it the choice is asked (without a terminal: none).
pub(crate) fn cache_passphrase(
    ctx: &mut Ctx,
    cache: Option<Cache>,
    c: &Chosen,
    s: &Survey,
) -> Result<String> {
    if !c.encrypted {
        return Ok("not needed (no passphrase)".into());
    }
    if s.agent && agent::Agent::from_env(&ctx.env).is_some_and(|a| a.holds(&c.public)) {
        return Ok("ssh-agent already holds the key".into());
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
    if s.agent {
        options.push((
            Cache::Agent,
            "ssh-agent: ssh, git and keyclone use the key without asking (this login session)"
                .into(),
        ));
    }
    if options.is_empty() && cache.is_none() {
        ctx.ui.info("Neither a keyring nor ssh-agent can hold the passphrase here: keyclone and git will ask for it each time. To cache it, start an agent (`eval \"$(ssh-agent)\"`) and run `keyclone init` again.");
        return Ok("none available".into());
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
            agent.add(decrypted, None)?;
            ctx.ui.info("ssh-agent holds the key now (until it stops).");
            Ok("ssh-agent".into())
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
            check_cache(c, &both).unwrap();
        }
        check_cache(None, &neither).unwrap();
        check_cache(Some(Cache::None), &neither).unwrap();
    }

    #[test]
    fn a_keyring_that_does_not_work_is_refused_with_why_and_what_instead() {
        let e = check_cache(
            Some(Cache::Keyring),
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
        let e = check_cache(Some(Cache::Agent), &machine(false, Ok(()))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.message().contains("no ssh-agent"), "{}", e.message());
        assert!(e.hints()[0].contains("eval \"$(ssh-agent)\""));
    }
}
