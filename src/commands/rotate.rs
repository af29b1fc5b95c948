//! `keyclone rotate`: replace a key with no moment where no key works.
//!
//! The new pair is written beside the old one (`KEY.rotating`), shown with the upload steps, and
//! must authenticate before anything is switched. The switch keeps the key's path: the old pair
//! is first linked into the archive, then the new pair is renamed over it (each rename atomic),
//! so every reference by path — keyclone's `~/.ssh/config` block, a hand-written `IdentityFile`,
//! `[clone] key`, scripts — names a working key before, during and after. The keyring cache and
//! ssh-agent are then switched. A state file beside the key records the step reached; running
//! `rotate` again continues from there.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh_key::{PrivateKey, PublicKey};

use crate::commands::NetArgs;
use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::files;
use crate::git::clone::{self as gitclone, Auth};
use crate::git::remote::RemoteUrl;
use crate::interrupt;
use crate::ops::access::{self, Access};
use crate::ops::host::approve_host;
use crate::ops::key::{self as keyops, NewKey};
use crate::ops::now_stamps;
use crate::ops::pubkey::{self, ShowPublic};
use crate::ops::rotation::{State, Step, read_state, staging_path, state_path, write_state};
use crate::ops::survey::agent_socket;
use crate::providers::Provider;
use crate::secrets::{self, NewPassphraseArgs, Passphrase, Unlock, UnlockArgs};
use crate::ssh::agent;
use crate::ssh::config as sshconfig;
use crate::ssh::key::{self, DEFAULT_KDF_ROUNDS, KeyType};
use crate::ssh::known_hosts;

/// The folder under the SSH directory where replaced keys are kept.
pub const ARCHIVE_DIR: &str = "keyclone-archive";

/// Replace a key (or only its passphrase) without ever being left without a working key.
///
/// Creates the new key beside the old one, shows where to add it, and switches only after the
/// new key authenticates (against the provider, or `--test-url`). The new key takes the old
/// key's path, so every reference keeps working; the old pair is archived under
/// `SSH_DIR/keyclone-archive/` (or deleted with `--delete-old`), and the keyring cache and
/// ssh-agent are switched. If interrupted, run it again: it continues where it stopped.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone rotate\n  \
    keyclone rotate --provider azure-devops\n  \
    keyclone rotate --key ~/.ssh/id_work --test-url git@github.com:org/app.git\n  \
    keyclone rotate --passphrase-only")]
pub struct RotateArgs {
    /// The key to replace [default: the provider's key, else SSH_DIR/id_ed25519, id_ecdsa, id_rsa]
    #[arg(long, value_name = "PATH", conflicts_with = "provider")]
    pub key: Option<PathBuf>,

    /// The provider the key is for (its host is where the new key is tested)
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// A repository to test the new key against (like `keyclone test URL`)
    #[arg(long, value_name = "URL")]
    pub test_url: Option<String>,

    /// Only change the passphrase: re-encrypt the same key (like `ssh-keygen -p`)
    #[arg(long)]
    pub passphrase_only: bool,

    /// The current passphrase (`--passphrase-only`) from a file
    #[arg(long, value_name = "FILE")]
    pub old_passphrase_file: Option<PathBuf>,

    #[command(flatten)]
    pub passphrase: NewPassphraseArgs,

    /// Delete the old pair instead of archiving it
    #[arg(long)]
    pub delete_old: bool,

    /// Switch without asking once the new key works
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub net: NetArgs,
}

/// For tests: a debug build dies with SIGKILL right after `step` when `KEYCLONE_TEST_KILL_AT`
/// names it, to prove that a re-run completes. Release builds ignore the variable.
fn checkpoint(_ctx: &Ctx, step: &str) {
    files::kill_point(step);
}

/// Refuses an archive folder that would let the old private key leave the SSH directory or be
/// read by others, before anything is created (and again right before the old key goes in):
/// it must be a real folder (not a symbolic link), belong to the user or root, and have no
/// permission for group or others (700). A missing folder is created with mode 700.
fn check_archive(archive_dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let shown = archive_dir.display();
    let meta = match std::fs::symlink_metadata(archive_dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return files::check_private_dir(archive_dir).map(|_| ());
        }
        Err(e) => return Err(Error::io("inspect the archive folder", archive_dir, e)),
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(archive_dir)
            .map(|t| format!(" (to `{}`)", t.display()))
            .unwrap_or_default();
        return Err(Error::refused(format!(
            "the archive folder `{shown}` is a symbolic link{target}: the old private key would be moved wherever it points, outside the SSH directory"
        ))
        .hint(format!(
            "remove the link with `rm {shown}` (keyclone then creates a private folder, mode 700), then run `keyclone rotate` again"
        ))
        .hint("or delete the old pair instead of archiving it with `--delete-old`"));
    }
    if !meta.is_dir() {
        return Err(Error::refused(format!(
            "the archive folder `{shown}` exists and is not a folder"
        ))
        .hint(format!(
            "move `{shown}` away, then run `keyclone rotate` again"
        )));
    }
    let mode = meta.mode() & 0o7777;
    let problem = files::dir_problem(meta.mode(), meta.uid(), files::my_uid()).or_else(|| {
        (mode & 0o077 != 0).then(|| {
            format!("others can read or enter it (mode {mode:o}), and an archived private key must be readable by you only")
        })
    });
    if let Some(problem) = problem {
        return Err(Error::refused(format!(
            "the archive folder `{shown}` is not safe for old private keys: {problem}"
        ))
        .hint(format!(
            "run `chmod 700 {shown}` (and check its owner), then `keyclone rotate` again"
        )));
    }
    files::check_private_dir(archive_dir).map(|_| ())
}

/// Where the new key is tested.
enum TestTarget {
    Url(RemoteUrl),
    Host {
        host: String,
        port: u16,
        user: String,
    },
}

impl TestTarget {
    fn describe(&self) -> String {
        match self {
            TestTarget::Url(u) => u.original.clone(),
            TestTarget::Host { host, port, .. } => known_hosts::display_host(host, *port),
        }
    }
}

fn find_key(ctx: &Ctx, args: &RotateArgs, provider: Option<&Provider>) -> Result<PathBuf> {
    if let Some(k) = &args.key {
        return Ok(key::pair_paths(&std::path::absolute(k).unwrap_or_else(|_| k.clone())).0);
    }
    // The key keyclone's block uses for this provider.
    if let Some(p) = provider
        && let Ok(cfg) = sshconfig::read(&sshconfig::path_in(&ctx.ssh_dir))
        && let Some(e) = cfg
            .entries()
            .iter()
            .find(|e| p.serves(&e.hostname, Some(e.port)))
    {
        return Ok(e.identity_file.clone());
    }
    keyops::default_key(ctx, provider).map_err(|e| {
        Error::new(
            ErrorKind::NotFound,
            format!("there is no key to rotate: {}", e.message()),
        )
        .hint("create one with `keyclone init` (or `keyclone keygen`)")
        .hint("or name the key with `--key PATH`")
    })
}

fn test_target(
    ctx: &Ctx,
    args: &RotateArgs,
    key: &Path,
    provider: Option<&Provider>,
) -> Result<TestTarget> {
    if let Some(u) = &args.test_url {
        let url = RemoteUrl::parse(u)?.to_ssh(&ctx.registry)?.0;
        return Ok(TestTarget::Url(url));
    }
    if let Ok(cfg) = sshconfig::read(&sshconfig::path_in(&ctx.ssh_dir))
        && let Some(e) = cfg.entries().iter().find(|e| {
            e.identity_file == key && provider.is_none_or(|p| p.serves(&e.hostname, Some(e.port)))
        })
    {
        return Ok(TestTarget::Host {
            host: e.hostname.clone(),
            port: e.port,
            user: e.user.clone(),
        });
    }
    if let Some(p) = provider
        && let Some(ep) = p.ssh.first()
    {
        return Ok(TestTarget::Host {
            host: ep.host.clone(),
            port: ep.port,
            user: p.ssh_user.clone(),
        });
    }
    Err(Error::usage(format!(
        "keyclone does not know where `{}` is used, so it cannot test the new key before switching",
        key.display()
    ))
    .hint("name a repository with `--test-url URL`, or the provider with `--provider NAME`"))
}

pub fn run(ctx: &mut Ctx, args: RotateArgs) -> Result<()> {
    let provider = args
        .provider
        .as_deref()
        .map(|n| ctx.registry.get(n).cloned())
        .transpose()?;
    let key_path = find_key(ctx, &args, provider.as_ref())?;
    if args.passphrase_only {
        return passphrase_only(ctx, &args, &key_path);
    }
    let archive_dir = ctx.ssh_dir.join(ARCHIVE_DIR);
    if !args.delete_old {
        // Refused before anything is written: an archive that is a link, or that others can
        // read or write.
        check_archive(&archive_dir)?;
    }
    let mut state = match read_state(&key_path)? {
        Some(s) => {
            ctx.ui.info(&format!(
                "Continuing the rotation of `{}` started {} (last step done: {}).",
                key_path.display(),
                s.started,
                s.step.name()
            ));
            s
        }
        None => start(ctx, &args, &key_path, provider.as_ref())?,
    };
    let target = test_target(ctx, &args, &key_path, provider.as_ref())?;

    while let Some(next) = state.step.next() {
        match next {
            Step::Generated => {}
            Step::Verified => verify(ctx, &args, &state, &target, provider.as_ref())?,
            Step::Archived => {
                if !args.yes
                    && ctx.ui.interactive()
                    && !ctx.ui.prompter().confirm(
                        &format!("Switch `{}` to the new key now?", key_path.display()),
                        true,
                    )?
                {
                    return Err(Error::refused(
                        "nothing was switched: the old key is still in place",
                    )
                    .hint("run `keyclone rotate` again to continue"));
                }
                state.archive = Some(archive_old(&state, &archive_dir)?);
            }
            Step::Switched => switch(ctx, &state)?,
            Step::References => {
                let done = references(ctx, &args, &state)?;
                for d in done {
                    ctx.ui.info(&d);
                }
            }
        }
        state.step = next;
        write_state(&state)?;
        checkpoint(ctx, next.name());
    }
    let provider = provider.or_else(|| {
        let (host, port) = match &target {
            TestTarget::Url(u) => (u.host.clone(), u.port.unwrap_or(22)),
            TestTarget::Host { host, port, .. } => (host.clone(), *port),
        };
        ctx.registry.for_host(&host, Some(port)).cloned()
    });
    finish(ctx, &args, &state, provider.as_ref())
}

/// Writes the new pair at the staging path and the state file.
fn start(
    ctx: &mut Ctx,
    args: &RotateArgs,
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
            passphrase: &args.passphrase,
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
    checkpoint(ctx, "generated");
    Ok(state)
}

/// The new key, unlocked (remembered, ssh-agent is not used: it holds the old key).
fn new_auth(
    ctx: &mut Ctx,
    args: &RotateArgs,
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
            passphrase_file: args.passphrase.passphrase_file.clone(),
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
            let port = url.port.unwrap_or(22);
            let (host_key, files) = approve_host(ctx, &url.host, port, timeout)?;
            let to = Access::Repo {
                url,
                host: &url.host,
                port,
            };
            access::accepted(ctx, &to, auth, &host_key, &files)
        }
        TestTarget::Host { host, port, user } => {
            let (host_key, files) = approve_host(ctx, host, *port, timeout)?;
            let to = Access::Login {
                host,
                port: *port,
                user,
                timeout,
            };
            access::accepted(ctx, &to, auth, &host_key, &files)
        }
    }
}

/// Shows the new key and waits until it authenticates; without a terminal, one test.
fn verify(
    ctx: &mut Ctx,
    args: &RotateArgs,
    state: &State,
    target: &TestTarget,
    provider: Option<&Provider>,
) -> Result<()> {
    let timeout = Duration::from_secs(args.net.timeout);
    gitclone::set_timeouts(timeout, Duration::from_secs(args.net.stall_timeout))?;
    let user = match target {
        TestTarget::Host { user, .. } => user.clone(),
        TestTarget::Url(u) => u.user.clone().unwrap_or_else(|| "git".into()),
    };
    let (auth, _, _) = new_auth(ctx, args, state, &user)?;
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

/// Links (or copies) the old pair into the archive; the old key stays in place.
fn archive_old(state: &State, archive_dir: &Path) -> Result<PathBuf> {
    check_archive(archive_dir)?;
    files::ensure_private_dir(archive_dir)?;
    check_archive(archive_dir)?;
    let name = state
        .key
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".into());
    let dest = archive_dir.join(format!("{name}-{}", state.started));
    let (old_priv, old_pub) = key::pair_paths(&state.key);
    let (dest_priv, dest_pub) = key::pair_paths(&dest);
    for (from, to) in [(&old_priv, &dest_priv), (&old_pub, &dest_pub)] {
        if to.exists() || !from.exists() {
            continue; // done by an earlier, interrupted run (or no .pub to keep)
        }
        if std::fs::hard_link(from, to).is_err() {
            let bytes = files::read_bounded(from, files::KEY_LIMIT, "old key")?;
            let mode = std::fs::metadata(from).map_or(0o600, |m| m.permissions().mode() & 0o777);
            files::replace(to, &bytes, mode)?;
        }
    }
    Ok(dest)
}

/// Puts the new pair at the key's path. The old `.pub` goes first (it is archived), so a key
/// file never sits beside a public key of the other pair: OpenSSH would offer the public key
/// and then refuse to sign with a private key that does not match it.
fn switch(ctx: &mut Ctx, state: &State) -> Result<()> {
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
    checkpoint(ctx, "switched-private");
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
fn references(ctx: &mut Ctx, args: &RotateArgs, state: &State) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let old_public = PublicKey::from_openssh(&state.old_public)
        .map_err(|e| Error::internal("the recorded old key cannot be read").with_source(e))?;
    let keyring_had = secrets::keyring_passphrase(&ctx.env, &state.key).is_some();
    let agent = agent_socket(ctx).filter(|s| agent::client::reachable(s));
    let agent_had = agent.is_some() && agent::holds(&old_public);
    if !keyring_had && !agent_had {
        return Ok(done);
    }
    let (_, decrypted, pass) = new_auth(ctx, args, state, "git")?;
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
    if let Some(sock) = &agent
        && agent_had
    {
        agent::client::add(sock, &decrypted, None)?;
        agent::client::remove(sock, &old_public)?;
        done.push("ssh-agent now holds the new key instead of the old one.".to_owned());
    }
    Ok(done)
}

fn finish(
    ctx: &mut Ctx,
    args: &RotateArgs,
    state: &State,
    provider: Option<&Provider>,
) -> Result<()> {
    let mut archived = state.archive.clone();
    if args.delete_old
        && let Some(a) = &state.archive
    {
        let (p, q) = key::pair_paths(a);
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(&q);
        archived = None;
    }
    let sp = state_path(&state.key);
    std::fs::remove_file(&sp).map_err(|e| Error::io("remove the rotation state", &sp, e))?;
    let page = provider.and_then(|p| p.upload_url(None));
    if ctx.ui.json() {
        return ctx.ui.json_value(&serde_json::json!({
            "key": state.key,
            "old_fingerprint": state.old_fingerprint,
            "new_fingerprint": state.new_fingerprint,
            "archived": archived,
            "remove_old_at": page,
        }));
    }
    let mut msg = format!(
        "Rotated `{}`: {} replaces {}.",
        state.key.display(),
        state.new_fingerprint,
        state.old_fingerprint
    );
    match &archived {
        Some(a) => msg.push_str(&format!(
            "\n  the old pair is archived as `{}` (mode 600, folder 700)",
            a.display()
        )),
        None => msg.push_str("\n  the old pair is deleted"),
    }
    msg.push_str(&format!(
        "\n\nNext: remove the OLD key ({}) from your account{}, so a copy of it cannot be used.",
        state.old_fingerprint,
        page.map(|p| format!(" at {p}")).unwrap_or_default()
    ));
    ctx.ui.info(&msg);
    Ok(())
}

/// Re-encrypts the key with a new passphrase, atomically (like `ssh-keygen -p`).
fn passphrase_only(ctx: &mut Ctx, args: &RotateArgs, key_path: &Path) -> Result<()> {
    let text =
        files::read_bounded_text(key_path, files::KEY_LIMIT, "private key").map_err(|e| {
            e.hint("name the key with `--key PATH`, or create one with `keyclone init`")
        })?;
    let private = PrivateKey::from_openssh(&text).map_err(|e| {
        Error::usage(format!(
            "`{}` is not an OpenSSH private key",
            key_path.display()
        ))
        .with_source(e)
    })?;
    let unlock = crate::ops::passphrase::unlock_key(
        key_path,
        &private,
        false,
        &UnlockArgs {
            passphrase_file: args.old_passphrase_file.clone(),
        },
        &ctx.env,
        &mut ctx.ui,
    )?;
    let decrypted = match &unlock {
        Unlock::Passphrase(p) => private.decrypt(p.expose().as_bytes()).map_err(|e| {
            Error::new(ErrorKind::Auth, "the passphrase does not decrypt the key").with_source(e)
        })?,
        _ => private.clone(),
    };
    let new = crate::ops::passphrase::new_passphrase(
        &args.passphrase,
        &ctx.env,
        &mut ctx.ui,
        ctx.stdin.as_mut(),
    )?;
    let pair = key::encode(&decrypted, new.as_ref(), DEFAULT_KDF_ROUNDS)?;
    let mode =
        std::fs::metadata(key_path).map_or(0o600, |m| m.permissions().mode() & 0o777) & 0o700;
    files::replace(key_path, pair.private.as_bytes(), mode)?;
    if secrets::keyring_passphrase(&ctx.env, key_path).is_some() {
        match &new {
            Some(p) if secrets::keyring_store(&ctx.env, key_path, p).is_ok() => {
                ctx.ui.info("The keyring now caches the new passphrase.");
            }
            _ => {
                secrets::keyring_forget(&ctx.env, key_path);
            }
        }
    }
    if ctx.ui.json() {
        return ctx.ui.json_value(&serde_json::json!({
            "key": key_path, "fingerprint": key::fingerprint(private.public_key()), "encrypted": new.is_some(),
        }));
    }
    ctx.ui.info(&format!(
        "`{}` is re-encrypted: the new passphrase works, the old one no longer does. The key itself ({}) is unchanged, so nothing changes at your provider.",
        key_path.display(),
        key::fingerprint(private.public_key())
    ));
    Ok(())
}
