//! The steps of a rotation that touch keys, hosts and caches: create the new pair beside the old
//! one, verify it authenticates, switch it into the key's path, move the keyring and ssh-agent
//! over, and clean up. `keyclone rotate` runs them in the order of [`super::Step`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh_key::{PrivateKey, PublicKey};

use super::locate::TestTarget;
use super::{RotateOptions, State, Step, checkpoint, staging_path, state_path, write_state};
use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::files;
use crate::git::clone::{self as gitclone, Auth};
use crate::interrupt;
use crate::ops::access::{self, Access};
use crate::ops::host::approve_host;
use crate::ops::key::{self as keyops, NewKey};
use crate::ops::now_stamps;
use crate::ops::pubkey::{self, ShowPublic};
use crate::ops::upload::{self, ApiUpload};
use crate::providers::Provider;
use crate::providers::api::KeyUse;
use crate::secrets::{self, Passphrase, Unlock, UnlockArgs};
use crate::ssh::agent;
use crate::ssh::key::{self, DEFAULT_KDF_ROUNDS, KeyType};

/// Writes the new pair at the staging path and the state file.
pub(crate) fn start(
    ctx: &mut Ctx,
    opts: &RotateOptions<'_>,
    key_path: &Path,
    provider: Option<&Provider>,
) -> Result<State> {
    let (old_public, _) = key::read_public(key_path)?;
    let old_line = old_public
        .to_openssh()
        .map_err(|e| Error::internal("could not encode the public key").with_source(e))?;
    let kind = match (provider, KeyType::of_algorithm(&old_public.algorithm())) {
        (Some(p), _) if p.rsa_only() => KeyType::Rsa,
        (_, Some(k)) => k,
        (_, None) => KeyType::Ed25519,
    };
    let staging = staging_path(key_path);
    // Leftovers of a run killed while writing (before the state file): never a usable key.
    for p in [staging.clone(), key::pair_paths(&staging).1] {
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| Error::io("remove a leftover", &p, e))?;
        }
    }
    let comment =
        files::read_bounded_text(&key::pair_paths(key_path).1, files::KEY_LIMIT, "public key")
            .ok()
            .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned));
    let created = keyops::create(
        ctx,
        &NewKey {
            kind: Some(kind),
            path: Some(staging.clone()),
            comment,
            provider: provider.cloned(),
            passphrase: opts.passphrase,
            force: false,
            kdf_rounds: DEFAULT_KDF_ROUNDS,
        },
    )?;
    if let Some(p) = &created.passphrase {
        ctx.remember(&staging, p.clone());
    }
    let (stamp, _) = now_stamps();
    let state = State {
        version: 1,
        key: key_path.to_owned(),
        staging,
        old_fingerprint: key::fingerprint(&old_public),
        old_public: old_line,
        new_fingerprint: key::fingerprint(&created.public_key),
        archive: None,
        step: Step::Generated,
        started: stamp,
    };
    write_state(&state)?;
    ctx.ui.info(&format!(
        "Created the new {} key `{}` ({}). The old key `{}` ({}) stays in place until the new one works.",
        created.kind.label(),
        state.staging.display(),
        state.new_fingerprint,
        key_path.display(),
        state.old_fingerprint
    ));
    checkpoint("generated");
    Ok(state)
}

/// The new key, unlocked (remembered, ssh-agent is not used: it holds the old key).
fn new_auth(
    ctx: &mut Ctx,
    opts: &RotateOptions<'_>,
    state: &State,
    user: &str,
) -> Result<(Auth, PrivateKey, Option<Passphrase>)> {
    let text = files::read_bounded_text(&state.staging, files::KEY_LIMIT, "new private key")
        .or_else(|_| files::read_bounded_text(&state.key, files::KEY_LIMIT, "new private key"))?;
    let private = PrivateKey::from_openssh(&text)
        .map_err(|e| Error::internal("the new key cannot be read").with_source(e))?;
    if key::fingerprint(private.public_key()) != state.new_fingerprint {
        return Err(Error::new(
            ErrorKind::Config,
            "the new key on disk is not the one this rotation created",
        )
        .hint(format!(
            "delete `{}` to start over",
            state_path(&state.key).display()
        )));
    }
    let path = if state.staging.exists() {
        state.staging.clone()
    } else {
        state.key.clone()
    };
    let unlock = keyops::unlock(
        ctx,
        &path,
        &state.staging,
        &private,
        &UnlockArgs {
            passphrase_file: opts.passphrase.passphrase_file.clone(),
        },
    )?;
    let (decrypted, pass) = match &unlock {
        Unlock::Passphrase(p) => (
            private.decrypt(p.expose().as_bytes()).map_err(|e| {
                Error::new(
                    ErrorKind::Auth,
                    "the passphrase does not decrypt the new key",
                )
                .with_source(e)
            })?,
            Some(p.clone()),
        ),
        _ => (private.clone(), None),
    };
    if let Some(p) = &pass {
        ctx.remember(&state.staging, p.clone());
    }
    Ok((
        Auth {
            default_user: user.to_owned(),
            fingerprint: state.new_fingerprint.clone(),
            key: path,
            unlock,
        },
        decrypted,
        pass,
    ))
}

fn accepted(ctx: &mut Ctx, auth: &Auth, target: &TestTarget, timeout: Duration) -> Result<bool> {
    match target {
        TestTarget::Url(url) => {
            let endpoint = url.endpoint();
            let (host_key, files) = approve_host(ctx, &endpoint, timeout)?;
            let to = Access::Repo {
                url,
                endpoint: &endpoint,
            };
            access::accepted(ctx, &to, auth, &host_key, &files)
        }
        TestTarget::Host { endpoint, user } => {
            let (host_key, files) = approve_host(ctx, endpoint, timeout)?;
            let to = Access::Login {
                endpoint,
                user,
                timeout,
            };
            access::accepted(ctx, &to, auth, &host_key, &files)
        }
    }
}

/// Shows the new key and waits until it authenticates; without a terminal, one test.
pub(crate) fn verify(
    ctx: &mut Ctx,
    opts: &RotateOptions<'_>,
    state: &State,
    target: &TestTarget,
    provider: Option<&Provider>,
) -> Result<()> {
    let timeout = opts.timeout;
    gitclone::set_timeouts(timeout, opts.stall_timeout)?;
    let user = target.user();
    let (auth, _, _) = new_auth(ctx, opts, state, &user)?;
    let unreachable = |e: Error| {
        if e.kind() == ErrorKind::Network {
            e.hint("nothing was switched: the old key still works. Run `keyclone rotate` again when the host can be reached; it continues from here")
        } else {
            e
        }
    };
    if accepted(ctx, &auth, target, timeout).map_err(unreachable)? {
        ctx.ui
            .info(&format!("{} accepts the new key.", target.describe()));
        return Ok(());
    }
    // The provider of the test target (as the report names it) may take the key by its API.
    let api_provider = provider
        .cloned()
        .or_else(|| ctx.registry.for_endpoint(&target.endpoint()).cloned());
    if let Some(p) = api_provider.as_ref().filter(|p| p.api.is_some())
        && upload::wants_api(ctx, p, &opts.tokens)?
    {
        let req = ApiUpload {
            key: state.staging.clone(),
            usage: KeyUse::Auth,
            token: opts.tokens.clone(),
        };
        upload::upload(ctx, p, &req)?;
        for _ in 0..10 {
            if accepted(ctx, &auth, target, timeout).map_err(unreachable)? {
                ctx.ui
                    .info(&format!("{} accepts the new key.", target.describe()));
                return Ok(());
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    if !ctx.ui.json() {
        pubkey::show_public(
            ctx,
            &ShowPublic {
                key: Some(state.staging.clone()),
                provider: provider.cloned(),
                org: None,
                copy: false,
            },
        )?;
    }
    let not_yet = || {
        Error::new(
            ErrorKind::Auth,
            format!(
                "{} does not accept the new key ({}) yet, so nothing was switched: the old key still works",
                target.describe(),
                state.new_fingerprint
            ),
        )
        .hint(format!("add the public key `{}.pub` to your account (steps above)", state.staging.display()))
        .hint("then run `keyclone rotate` again: it continues from here")
    };
    if !ctx.ui.interactive() {
        return Err(not_yet());
    }
    loop {
        let a = ctx.ui.prompter().input(
            "Press Enter once the new key is added (q to stop; `keyclone rotate` continues later)",
            Some(""),
        )?;
        if a.trim().eq_ignore_ascii_case("q") {
            return Err(not_yet());
        }
        if accepted(ctx, &auth, target, timeout).map_err(unreachable)? {
            ctx.ui
                .info(&format!("{} accepts the new key.", target.describe()));
            return Ok(());
        }
        ctx.ui.warn(&format!(
            "{} does not accept the new key yet.",
            target.describe()
        ));
    }
}

/// Puts the new pair at the key's path. The old `.pub` goes first (it is archived), so a key
/// file never sits beside a public key of the other pair: OpenSSH would offer the public key
/// and then refuse to sign with a private key that does not match it.
pub(crate) fn switch(ctx: &mut Ctx, state: &State) -> Result<()> {
    let (new_priv, new_pub) = key::pair_paths(&state.staging);
    let (priv_path, pub_path) = key::pair_paths(&state.key);
    let _section = interrupt::critical();
    if new_pub.exists() && pub_path.exists() {
        std::fs::remove_file(&pub_path)
            .map_err(|e| Error::io("remove the old public key", &pub_path, e))?;
    }
    if new_priv.exists() {
        std::fs::rename(&new_priv, &priv_path)
            .map_err(|e| Error::io("put the new key in place", &priv_path, e))?;
    }
    checkpoint("switched-private");
    if new_pub.exists() {
        std::fs::rename(&new_pub, &pub_path)
            .map_err(|e| Error::io("put the new public key in place", &pub_path, e))?;
    }
    if let Some(dir) = priv_path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    ctx.ui.info(&format!(
        "`{}` is now the new key ({}).",
        state.key.display(),
        state.new_fingerprint
    ));
    Ok(())
}

/// Keyring and ssh-agent: the new key in, the old one out. Returns what was done.
pub(crate) fn references(
    ctx: &mut Ctx,
    opts: &RotateOptions<'_>,
    state: &State,
) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let old_public = PublicKey::from_openssh(&state.old_public)
        .map_err(|e| Error::internal("the recorded old key cannot be read").with_source(e))?;
    let keyring_had = secrets::keyring_passphrase(&ctx.env, &state.key).is_some();
    let agent = agent::Agent::from_env(&ctx.env).filter(agent::Agent::reachable);
    let agent_had = agent.as_ref().is_some_and(|a| a.holds(&old_public));
    if !keyring_had && !agent_had {
        return Ok(done);
    }
    let (_, decrypted, pass) = new_auth(ctx, opts, state, "git")?;
    if keyring_had {
        match &pass {
            Some(p) => match secrets::keyring_store(&ctx.env, &state.key, p) {
                Ok(()) => done.push("The keyring now caches the new key's passphrase.".to_owned()),
                Err(why) => {
                    secrets::keyring_forget(&ctx.env, &state.key);
                    done.push(format!(
                        "The keyring could not take the new passphrase ({why}); the old one was removed from it."
                    ));
                }
            },
            None => {
                secrets::keyring_forget(&ctx.env, &state.key);
                done.push("The old passphrase was removed from the keyring.".to_owned());
            }
        }
    }
    if let Some(agent) = &agent
        && agent_had
    {
        agent.add(&decrypted, None)?;
        agent.remove(&old_public)?;
        done.push("ssh-agent now holds the new key instead of the old one.".to_owned());
    }
    Ok(done)
}

/// The end of a rotation: the archived pair deleted when `delete_old` (`--delete-old`), and the
/// state file removed. Returns where the old pair is kept, if it is.
pub(crate) fn finish(state: &State, delete_old: bool) -> Result<Option<PathBuf>> {
    let mut archived = state.archive.clone();
    if delete_old && let Some(a) = &state.archive {
        let (p, q) = key::pair_paths(a);
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(&q);
        archived = None;
    }
    let sp = state_path(&state.key);
    std::fs::remove_file(&sp).map_err(|e| Error::io("remove the rotation state", &sp, e))?;
    Ok(archived)
}
