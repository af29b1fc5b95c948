//! `keyclone init`: the guided path from a fresh machine to a working clone. It composes the
//! operations of [`crate::ops`] that the single-step commands (keygen, pubkey, trust, test,
//! clone) are made of, and adds what only a wizard does: reusing
//! what is there, caching the passphrase, waiting for the upload, the `~/.ssh/config` block and
//! the git identity. Every question has a flag, so provisioning scripts run the same steps.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh_key::{PrivateKey, PublicKey};

use crate::commands::{NetArgs, WorkspaceArgs};
use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::git::clone::{self as gitclone, Auth};
use crate::git::remote::RemoteUrl;
use crate::ops::access::{self, Access, explain_auth, ssh_remote};
use crate::ops::host;
use crate::ops::key::{self as keyops, NewKey, auth_for};
use crate::ops::login_name;
use crate::ops::pubkey::{self, ShowPublic};
use crate::ops::ssh_config;
use crate::ops::survey::{FoundKey, Survey, agent_socket, survey};
use crate::ops::workspace::{CloneOptions, clone_into};
use crate::providers::Provider;
use crate::secrets::{self, NewPassphraseArgs, Passphrase, Unlock, UnlockArgs};
use crate::ssh::agent;
use crate::ssh::config::{self as sshconfig, HostEntry};
use crate::ssh::key::{self, DEFAULT_KDF_ROUNDS, KeyType};
use crate::ssh::known_hosts::{self, KnownHosts};
use crate::workspace::{self, Choice};

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

/// Set up SSH access to a repository, step by step, and clone it.
///
/// Looks at the machine, creates (or reuses) a passphrase-protected key of a type the provider
/// accepts, verifies the host against the provider's published keys, shows where to add the
/// public key and waits until it works, clones into your per-user folder, and writes a block
/// into `~/.ssh/config` so plain `ssh` and `git` work afterwards. Safe to run again: what is
/// done is skipped. Without a terminal every answer comes from a flag.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone init\n  \
    keyclone init --repo git@github.com:owner/repo.git\n  \
    keyclone init --repo git@github.com:work-org/app.git --account work\n  \
    keyclone init --non-interactive --repo git@github.com:owner/repo.git \\\n    \
    --passphrase-file ~/.config/keyclone/pass --cache agent --yes")]
pub struct InitArgs {
    /// The repository to clone (SSH or https URL)
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,

    /// The provider, when there is no repository yet (`github`, `gitlab`, ... or a config name)
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// The Azure DevOps organization (for its upload page) [default: from the URL]
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,

    /// Use this existing key instead of creating one
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,

    /// A second account on the same host: its own key and a `Host HOST-NAME` alias
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,

    #[command(flatten)]
    pub passphrase: NewPassphraseArgs,

    /// Where to keep the passphrase [asked; without a terminal: none]
    #[arg(long, value_enum, value_name = "WHERE")]
    pub cache: Option<Cache>,

    /// Also copy the public key to the clipboard of your terminal (OSC 52)
    #[arg(long)]
    pub copy: bool,

    /// The host's key fingerprint (SHA256:...), for a host without published keys
    #[arg(long, value_name = "SHA256", conflicts_with = "accept_new")]
    pub fingerprint: Option<String>,

    /// Trust a host without published keys on first use (not verified)
    #[arg(long)]
    pub accept_new: bool,

    /// Use the provider's port-443 endpoint when port 22 is blocked, without asking
    #[arg(long)]
    pub port_443: bool,

    #[command(flatten)]
    pub workspace: WorkspaceArgs,

    /// Stop before cloning
    #[arg(long)]
    pub no_clone: bool,

    /// Write the `~/.ssh/config` block without asking
    #[arg(long, conflicts_with = "no_ssh_config")]
    pub yes: bool,

    /// Leave `~/.ssh/config` alone
    #[arg(long)]
    pub no_ssh_config: bool,

    /// git `user.name` to set when none is set
    #[arg(long, value_name = "NAME")]
    pub git_name: Option<String>,

    /// git `user.email` to set when none is set
    #[arg(long, value_name = "EMAIL")]
    pub git_email: Option<String>,

    #[command(flatten)]
    pub net: NetArgs,
}

/// What the wizard is setting up access to.
#[derive(Debug, Clone)]
struct Target {
    url: Option<RemoteUrl>,
    /// The URL as the user gave it (before a fallback endpoint replaced the host and port).
    user_url: Option<RemoteUrl>,
    /// The port the user's URL or the provider names.
    port: u16,
    provider: Option<Provider>,
    org: Option<String>,
    /// The host name users write (URL host, or the provider's SSH host).
    host: String,
    /// Where keyclone actually connects (the port-443 endpoint when 22 is blocked).
    connect_host: String,
    connect_port: u16,
    ssh_user: String,
}

impl Target {
    fn who(&self) -> String {
        known_hosts::display_host(&self.connect_host, self.connect_port)
    }
    fn provider_name(&self) -> String {
        self.provider
            .as_ref()
            .map_or_else(|| self.host.clone(), |p| p.name.clone())
    }
}

/// What each step did, for the summary.
#[derive(Debug, Default, serde::Serialize)]
struct Steps(Vec<(String, String)>);

impl Steps {
    fn push(&mut self, step: &str, what: impl Into<String>) {
        self.0.push((step.to_owned(), what.into()));
    }
}

fn need_flag(what: &str, flag: &str) -> Error {
    Error::new(
        ErrorKind::NeedsInput,
        format!("keyclone init needs {what}, and there is no terminal to ask on"),
    )
    .hint(format!("pass {flag}"))
}

/// Everything a run without a terminal needs, checked before anything changes.
fn check_flags(ctx: &Ctx, args: &InitArgs, s: &Survey) -> Result<()> {
    if let Some(a) = &args.account {
        workspace::check_component(a, "account name", "--account")?;
        if !sshconfig::valid_token(a) {
            return Err(Error::usage(format!(
                "the account name {a:?} may only hold letters, digits, `-`, `_` and `.`"
            ))
            .hint("pass another `--account NAME`"));
        }
    }
    if let Some(fp) = &args.fingerprint {
        host::normalize_fingerprint(fp)?;
    }
    // The paths the `~/.ssh/config` block will name, checked before anything is written
    // (the block itself is checked again when it is written).
    if !args.no_ssh_config {
        let key = args
            .key
            .as_ref()
            .map(|k| std::path::absolute(k).unwrap_or(k.clone()));
        let known_hosts = ctx.ssh_dir.join("known_hosts");
        for (what, path) in [
            ("`--key`", key.as_ref()),
            ("the SSH directory", Some(&known_hosts)),
        ] {
            if let Some(p) = path {
                crate::names::config_path(p).map_err(|why| {
                    Error::usage(format!(
                        "{what} `{}` cannot be written into `~/.ssh/config`: {why}",
                        crate::names::shown(&p.display().to_string())
                    ))
                    .hint(
                        "nothing was written; rename the file or folder, or pass `--no-ssh-config`",
                    )
                })?;
            }
        }
    }
    match args.cache {
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
    if ctx.ui.interactive() {
        return Ok(());
    }
    if args.repo.is_none() && args.provider.is_none() {
        return Err(need_flag(
            "the repository or the provider",
            "`--repo URL` (or `--provider NAME` with no repository yet)",
        ));
    }
    if !args.yes && !args.no_ssh_config {
        return Err(need_flag(
            "your consent to add a block to `~/.ssh/config`",
            "`--yes` to write it, or `--no-ssh-config` to leave the file alone",
        ));
    }
    Ok(())
}

pub fn run(ctx: &mut Ctx, args: InitArgs) -> Result<()> {
    let timeout = Duration::from_secs(args.net.timeout);
    gitclone::set_timeouts(timeout, Duration::from_secs(args.net.stall_timeout))?;
    let mut steps = Steps::default();

    // 1. Look at the machine.
    let survey = survey(ctx);
    check_flags(ctx, &args, &survey)?;
    show_survey(ctx, &survey);

    // 2. What to set up.
    let mut target = choose_target(ctx, &args)?;
    if let Some(p) = &target.provider {
        steps.push("provider", p.name.clone());
    }

    // 3. Verify the host before anything is created (port 443 if 22 is blocked).
    let (host_key, kh_files, decision) = verify_host(ctx, &args, &mut target)?;
    steps.push("host", format!("{} ({decision})", target.who()));

    // 4. The key: reuse or create; unlock once; cache.
    let chosen = choose_key(ctx, &args, &target, &survey)?;
    steps.push(
        "key",
        format!(
            "{} {}",
            if chosen.created { "created" } else { "reused" },
            chosen.path.display()
        ),
    );
    let cached = cache_passphrase(ctx, &args, &chosen, &survey)?;
    steps.push("cache", cached.clone());

    // 5. Upload and test until the key works.
    let auth = auth_for(
        ctx,
        Some(&chosen.path),
        &UnlockArgs {
            passphrase_file: args.passphrase.passphrase_file.clone(),
        },
        target.provider.as_ref(),
        &target.ssh_user,
    )?;
    let shown = upload_and_test(ctx, &args, &target, &auth, &host_key, &kh_files)?;
    steps.push(
        "access",
        if shown {
            "key added and accepted"
        } else {
            "already accepted"
        },
    );

    // 6. Clone.
    let alias = alias_for(&target, args.account.as_deref());
    let cloned = match (&target.url, args.no_clone) {
        (Some(url), false) => Some(clone_step(
            ctx,
            &args,
            &target,
            url,
            &auth,
            (host_key.clone(), kh_files.clone()),
            alias.as_deref(),
        )?),
        (Some(_), true) => None,
        (None, _) => None,
    };
    match &cloned {
        Some((path, true)) => steps.push("clone", format!("cloned into {}", path.display())),
        Some((path, false)) => steps.push("clone", format!("already cloned at {}", path.display())),
        None => steps.push("clone", "skipped"),
    }

    // 7. ~/.ssh/config.
    let entry = ssh_config::host_entry(
        ctx,
        alias.clone().unwrap_or_else(|| target.host.clone()),
        target.connect_host.clone(),
        target.connect_port,
        target.ssh_user.clone(),
        chosen.path.clone(),
    );
    let config_done = ssh_config_step(ctx, &args, &entry)?;
    steps.push("ssh_config", config_done);

    // 8. git identity.
    let identity = identity_step(ctx, &args, &survey)?;
    steps.push("git_identity", identity);

    // 9. Summary.
    summary(ctx, &target, &chosen, &entry, cloned.as_ref(), &steps)
}

fn show_survey(ctx: &mut Ctx, s: &Survey) {
    let mut msg = format!(
        "Looking at this machine:\n  SSH directory   {}",
        s.ssh_dir.display()
    );
    if let Some(p) = &s.ssh_dir_problem {
        msg.push_str(&format!(" (problem: {p})"));
    } else if !s.ssh_dir.exists() {
        msg.push_str(" (not created yet)");
    }
    if s.keys.is_empty() {
        msg.push_str("\n  keys            none yet");
    }
    for k in &s.keys {
        let refusing: Vec<&str> = ctx
            .registry
            .all()
            .iter()
            .filter(|p| !k.accepted_by.contains(&p.id))
            .map(|p| p.name.as_str())
            .collect();
        let accepted = if refusing.is_empty() {
            "every provider accepts it".to_owned()
        } else {
            format!("not accepted by {}", refusing.join(", "))
        };
        let protection = if k.encrypted {
            "passphrase"
        } else {
            "NO passphrase"
        };
        msg.push_str(&format!(
            "\n  key             {} ({}, {}, {protection}; {accepted})",
            k.path.display(),
            k.algorithm,
            k.fingerprint,
        ));
    }
    msg.push_str(&format!(
        "\n  ssh-agent       {}\n  keyring         {}",
        if s.agent { "running" } else { "none" },
        match &s.keyring {
            Ok(()) => "works".to_owned(),
            Err(_) => "none usable here".to_owned(),
        }
    ));
    if s.code_share {
        msg.push_str("\n  Azure ML        code share ~/cloudfiles/code found (persistent, shared)");
    }
    msg.push_str(&format!(
        "\n  git identity    {}",
        match (&s.git_name, &s.git_email) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            _ => "not set".to_owned(),
        }
    ));
    ctx.ui.info(&msg);
}

fn choose_target(ctx: &mut Ctx, args: &InitArgs) -> Result<Target> {
    let url = match (&args.repo, &args.provider) {
        (Some(r), _) => Some(ssh_remote(ctx, r)?),
        (None, Some(_)) => None,
        (None, None) => ask_repo(ctx)?,
    };
    let provider = match (&url, &args.provider) {
        (_, Some(name)) => Some(ctx.registry.get(name)?.clone()),
        (Some(u), None) => u.provider(&ctx.registry).cloned(),
        (None, None) => Some(ask_provider(ctx)?),
    };
    let (host, port, ssh_user) = match (&url, &provider) {
        (Some(u), _) => (
            u.host.clone(),
            u.port.unwrap_or(22),
            u.user.clone().unwrap_or_else(|| "git".to_owned()),
        ),
        (None, p) => {
            let e = p.as_ref().and_then(|p| p.ssh.first()).ok_or_else(|| {
                Error::usage("keyclone does not know the SSH address to set up")
                    .hint("pass the repository's SSH URL with `--repo URL`")
            })?;
            let user = p
                .as_ref()
                .map_or_else(|| "git".to_owned(), |p| p.ssh_user.clone());
            (e.host.clone(), e.port, user)
        }
    };
    let mut org = args.org.clone().or_else(|| {
        url.as_ref()
            .zip(provider.as_ref())
            .and_then(|(u, p)| u.org_for(p))
    });
    if org.is_none()
        && let Some(p) = provider.as_ref().filter(|p| p.needs_org())
        && ctx.ui.interactive()
    {
        let o = ctx.ui.prompter().input(
            &format!("Your {} organization (for its key page)", p.name),
            None,
        )?;
        org = Some(o.trim().to_owned()).filter(|o| !o.is_empty());
    }
    if url.is_none() {
        ctx.ui.info(&format!(
            "No repository yet: setting up {} ({host}); clone later with `keyclone clone URL`.",
            provider.as_ref().map_or("the host", |p| p.name.as_str())
        ));
    } else if provider.is_none() {
        ctx.ui.info(&format!(
            "`{host}` is not a provider keyclone knows: treating it as a self-hosted SSH server."
        ));
    }
    Ok(Target {
        connect_host: host.clone(),
        connect_port: port,
        user_url: url.clone(),
        port,
        url,
        provider,
        org,
        host,
        ssh_user,
    })
}

/// Asks for the repository URL until one parses; empty means "no repository yet".
fn ask_repo(ctx: &mut Ctx) -> Result<Option<RemoteUrl>> {
    loop {
        let answer = ctx.ui.prompter().input(
            "Repository URL (git@HOST:OWNER/REPO.git or its https URL; empty if you have none yet)",
            Some(""),
        )?;
        let answer = answer.trim();
        if answer.is_empty() {
            return Ok(None);
        }
        match RemoteUrl::parse(answer) {
            Ok(_) => match ssh_remote(ctx, answer) {
                Ok(u) => return Ok(Some(u)),
                Err(e) if e.kind() == ErrorKind::Interrupted => return Err(e),
                Err(e) => ctx.ui.warn(&format!("{} Try again.", e.message())),
            },
            Err(e) => ctx.ui.warn(&format!("{} Try again.", e.message())),
        }
    }
}

fn ask_provider(ctx: &mut Ctx) -> Result<Provider> {
    let all: Vec<Provider> = ctx.registry.all().to_vec();
    let items: Vec<String> = all
        .iter()
        .map(|p| {
            format!(
                "{} ({})",
                p.name,
                p.ssh.first().map_or("", |e| e.host.as_str())
            )
        })
        .collect();
    let i = ctx.ui.prompter().select("Your Git provider", &items, 0)?;
    Ok(all[i].clone())
}

/// Verifies the host (pins, known_hosts, or the user's fingerprint); when port 22 cannot be
/// reached, offers the provider's port-443 endpoint.
fn verify_host(
    ctx: &mut Ctx,
    args: &InitArgs,
    t: &mut Target,
) -> Result<(PublicKey, Vec<KnownHosts>, &'static str)> {
    let fp = args
        .fingerprint
        .as_deref()
        .map(host::normalize_fingerprint)
        .transpose()?;
    let provider_name = t.provider_name();
    let (r, fallback) = host::approve_with_fallback(
        ctx,
        &host::Approval {
            host: &t.connect_host,
            port: t.connect_port,
            timeout: Duration::from_secs(args.net.timeout),
            fingerprint: fp.as_deref(),
            accept_new: args.accept_new,
            fallback: t.provider.as_ref().and_then(|p| p.ssh_443.clone()),
            use_fallback: args.port_443,
            provider_name: &provider_name,
        },
    )?;
    if let Some((alt_host, alt_port)) = fallback {
        if let Some(u) = &t.url {
            t.url = Some(u.at(&alt_host, alt_port, Some(&t.ssh_user))?);
        }
        t.connect_host = alt_host;
        t.connect_port = alt_port;
    }
    Ok(r)
}

/// The key the wizard uses.
struct Chosen {
    path: PathBuf,
    public: PublicKey,
    created: bool,
    encrypted: bool,
    /// The decrypted key and its passphrase, when keyclone has them (for the cache).
    unlocked: Option<(PrivateKey, Option<Passphrase>)>,
}

/// The default key file for a provider and account: `id_ed25519`, `id_rsa` (RSA-only
/// providers), or `id_ed25519_ACCOUNT`.
fn default_key_path(ctx: &Ctx, t: &Target, account: Option<&str>) -> PathBuf {
    let kind = if t.provider.as_ref().is_some_and(Provider::rsa_only) {
        KeyType::Rsa
    } else {
        KeyType::Ed25519
    };
    let base = kind.default_file_name();
    match account {
        Some(a) => ctx.ssh_dir.join(format!("{base}_{a}")),
        None => ctx.ssh_dir.join(base),
    }
}

fn choose_key(ctx: &mut Ctx, args: &InitArgs, t: &Target, s: &Survey) -> Result<Chosen> {
    let default = default_key_path(ctx, t, args.account.as_deref());
    let existing = match &args.key {
        Some(k) => Some(std::path::absolute(k).unwrap_or_else(|_| k.clone())),
        None if default.exists() => Some(default.clone()),
        None if ctx.ui.interactive() && args.account.is_none() => {
            let usable: Vec<&FoundKey> = s
                .keys
                .iter()
                .filter(|k| {
                    t.provider
                        .as_ref()
                        .is_none_or(|p| k.accepted_by.contains(&p.id))
                })
                .collect();
            if usable.is_empty() {
                None
            } else {
                let mut items = vec![format!("Create a new key at {}", default.display())];
                items.extend(usable.iter().map(|k| {
                    format!(
                        "Use {} ({}, {}{})",
                        k.path.display(),
                        k.algorithm,
                        k.fingerprint,
                        if k.encrypted { "" } else { ", NO passphrase" }
                    )
                }));
                let i = ctx.ui.prompter().select("Which key?", &items, 0)?;
                (i > 0).then(|| usable[i - 1].path.clone())
            }
        }
        None => None,
    };
    if let Some(path) = existing {
        return reuse_key(ctx, args, t, &path);
    }
    let created = keyops::create(
        ctx,
        &NewKey {
            kind: None,
            path: Some(default.clone()),
            comment: None,
            provider: t.provider.clone(),
            passphrase: &args.passphrase,
            force: false,
            kdf_rounds: DEFAULT_KDF_ROUNDS,
        },
    )?;
    ctx.ui.info(&format!(
        "Created {} key `{}` ({}){}.",
        created.kind.label(),
        created.private.display(),
        key::fingerprint(&created.public_key),
        if created.passphrase.is_some() {
            ", protected by your passphrase"
        } else {
            ", WITHOUT a passphrase"
        }
    ));
    if let Some(p) = &created.passphrase {
        ctx.remember(&created.private, p.clone());
    }
    Ok(Chosen {
        path: created.private.clone(),
        encrypted: created.passphrase.is_some(),
        public: created.public_key.clone(),
        created: true,
        unlocked: Some((created.key.clone(), created.passphrase.clone())),
    })
}

fn reuse_key(ctx: &mut Ctx, args: &InitArgs, t: &Target, path: &Path) -> Result<Chosen> {
    let (path, private) = keyops::load_key(ctx, Some(path), t.provider.as_ref())?;
    let public = private.public_key().clone();
    ctx.ui.info(&format!(
        "Using the existing key `{}` ({}).",
        path.display(),
        key::fingerprint(&public)
    ));
    let in_agent = agent_socket(ctx).is_some() && agent::holds(&public);
    let encrypted = private.is_encrypted();
    let unlocked = if !encrypted {
        Some((private.clone(), None))
    } else if in_agent {
        None
    } else {
        let unlock = keyops::unlock(
            ctx,
            &path,
            &path,
            &private,
            &UnlockArgs {
                passphrase_file: args.passphrase.passphrase_file.clone(),
            },
        )?;
        match unlock {
            Unlock::Passphrase(p) => {
                ctx.remember(&path, p.clone());
                let dec = private.decrypt(p.expose().as_bytes()).map_err(|e| {
                    Error::new(ErrorKind::Auth, "the passphrase does not decrypt the key")
                        .with_source(e)
                })?;
                Some((dec, Some(p)))
            }
            _ => None,
        }
    };
    Ok(Chosen {
        path,
        public,
        created: false,
        encrypted,
        unlocked,
    })
}

/// Offers to keep the passphrase in the keyring or ssh-agent; returns what was done.
fn cache_passphrase(ctx: &mut Ctx, args: &InitArgs, c: &Chosen, s: &Survey) -> Result<String> {
    if !c.encrypted {
        return Ok("not needed (no passphrase)".into());
    }
    if s.agent && agent::holds(&c.public) {
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
    if options.is_empty() && args.cache.is_none() {
        ctx.ui.info("Neither a keyring nor ssh-agent can hold the passphrase here: keyclone and git will ask for it each time. To cache it, start an agent (`eval \"$(ssh-agent)\"`) and run `keyclone init` again.");
        return Ok("none available".into());
    }
    options.push((
        Cache::None,
        "Don't cache: ask for the passphrase each time".into(),
    ));
    let choice = match args.cache {
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
            let sock = agent_socket(ctx).ok_or_else(|| Error::internal("agent socket vanished"))?;
            agent::client::add(&sock, decrypted, None)?;
            ctx.ui.info("ssh-agent holds the key now (until it stops).");
            Ok("ssh-agent".into())
        }
    }
}

/// Whether the server accepts the key: lists the refs of the repository (like
/// `git ls-remote`), or logs in (like `ssh -T`) when there is no repository.
fn accepted(
    ctx: &mut Ctx,
    t: &Target,
    auth: &Auth,
    host_key: &PublicKey,
    files: &[KnownHosts],
) -> Result<bool> {
    let to = match &t.url {
        Some(url) => Access::Repo {
            url,
            host: &t.connect_host,
            port: t.connect_port,
        },
        None => Access::Login {
            host: &t.connect_host,
            port: t.connect_port,
            user: &t.ssh_user,
            timeout: Duration::from_secs(10),
        },
    };
    access::accepted(ctx, &to, auth, host_key, files)
}

/// Tests the key; when it is not accepted, shows it with the upload steps and waits. Returns
/// whether the key had to be shown.
fn upload_and_test(
    ctx: &mut Ctx,
    args: &InitArgs,
    t: &Target,
    auth: &Auth,
    host_key: &PublicKey,
    files: &[KnownHosts],
) -> Result<bool> {
    if accepted(ctx, t, auth, host_key, files)? {
        ctx.ui.info(&format!(
            "{} already accepts `{}`: nothing to upload.",
            t.who(),
            auth.key.display()
        ));
        return Ok(false);
    }
    let show = |ctx: &mut Ctx| -> Result<()> {
        if ctx.ui.json() {
            return Ok(());
        }
        pubkey::show_public(
            ctx,
            &ShowPublic {
                key: Some(auth.key.clone()),
                provider: t.provider.clone(),
                org: t.org.clone(),
                copy: args.copy,
            },
        )
    };
    show(ctx)?;
    let not_accepted = || {
        explain_auth(
            Error::new(
                ErrorKind::Auth,
                format!(
                    "{} does not accept `{}` ({}) yet: the key is not on your account",
                    t.who(),
                    auth.key.display(),
                    auth.fingerprint
                ),
            ),
            t.provider.as_ref(),
            &auth.key,
            t.org.as_deref(),
        )
        .hint("once it is added, run `keyclone init` again: it continues from here")
    };
    if !ctx.ui.interactive() {
        let mut e = not_accepted();
        if ctx.ui.json() {
            // A provisioning script uploads the key itself: give it the line.
            let line = crate::ssh::key::read_public(&auth.key)
                .ok()
                .and_then(|(k, _)| k.to_openssh().ok());
            if let Some(l) = line {
                e = e.hint(format!("public key: {l}"));
            }
        }
        return Err(e);
    }
    ctx.ui
        .prompter()
        .input("Press Enter once the key is added", Some(""))?;
    loop {
        if accepted(ctx, t, auth, host_key, files)? {
            ctx.ui
                .info(&format!("{} accepted `{}`.", t.who(), auth.key.display()));
            return Ok(true);
        }
        ctx.ui.warn(&format!(
            "{} does not accept the key yet (uploads can take a few seconds to apply).",
            t.who()
        ));
        let items = vec![
            "Test again".to_owned(),
            "Show the key and the steps again".to_owned(),
            "Quit (run `keyclone init` again later: it continues from here)".to_owned(),
        ];
        match ctx.ui.prompter().select("What now?", &items, 0)? {
            0 => {}
            1 => {
                show(ctx)?;
                ctx.ui
                    .prompter()
                    .input("Press Enter once the key is added", Some(""))?;
            }
            _ => return Err(not_accepted()),
        }
    }
}

/// `HOST-ACCOUNT` for a second account.
fn alias_for(t: &Target, account: Option<&str>) -> Option<String> {
    account.map(|a| format!("{}-{a}", t.host))
}

/// Clones, unless the destination already holds this repository. Returns the path and
/// whether a clone happened.
fn clone_step(
    ctx: &mut Ctx,
    args: &InitArgs,
    t: &Target,
    url: &RemoteUrl,
    auth: &Auth,
    approved: (PublicKey, Vec<KnownHosts>),
    alias: Option<&str>,
) -> Result<(PathBuf, bool)> {
    let home = ctx.env.home().unwrap_or_else(|| PathBuf::from("/"));
    let login = login_name(&ctx.env);
    let mut local = args.workspace.local;
    let (root, mut user) = args.workspace.resolve(ctx);
    let share = home.join(workspace::AZUREML_CODE_SHARE).is_dir();
    if ctx.ui.interactive() && root.is_none() && !local {
        if share {
            let items = vec![
                format!(
                    "Persistent: ~/{}/Users/... on the workspace's shared file system (kept when this machine is deleted)",
                    workspace::AZUREML_CODE_SHARE
                ),
                format!(
                    "Local disk: ~/{}/Users/... (faster, lost when this machine is deleted)",
                    workspace::LOCAL_ROOT
                ),
            ];
            local = ctx
                .ui
                .prompter()
                .select("Where should the clone go?", &items, 0)?
                == 1;
        }
        if user.is_none() {
            loop {
                let u = ctx
                    .ui
                    .prompter()
                    .input("Your folder name under Users/", Some(&login))?;
                match workspace::check_component(u.trim(), "folder name", "--user") {
                    Ok(()) => {
                        user = Some(u.trim().to_owned());
                        break;
                    }
                    Err(e) => ctx.ui.warn(&format!("{} Try again.", e.message())),
                }
            }
        }
    }
    let choice = Choice {
        dest: None,
        root: root.as_deref(),
        user: user.as_deref(),
        local,
    };
    let origin_url = match alias {
        Some(a) => Some(url.at(a, 22, Some(&t.ssh_user))?.original),
        // Port 443 (or another fallback) is in `~/.ssh/config` under the usual host name: record
        // the remote by that name, in the scp-like form whose port the config decides.
        None if t.connect_host != t.host || t.connect_port != t.port => match &t.user_url {
            Some(u) if u.port.is_some() => Some(u.at(&t.host, 22, Some(&t.ssh_user))?.original),
            Some(u) => Some(u.original.clone()),
            None => None,
        },
        None => None,
    };
    let repo_name = url.repo_name();
    let dest = workspace::destination(&choice, &home, &login, &repo_name)?;
    if let Ok(repo) = git2::Repository::open(&dest.path) {
        let origin = repo
            .find_remote("origin")
            .ok()
            .and_then(|r| r.url().ok().map(str::to_owned));
        let same = origin.as_deref().is_some_and(|o| {
            o == url.original || origin_url.as_deref() == Some(o) || args.repo.as_deref() == Some(o)
        });
        if same {
            ctx.ui.info(&format!(
                "`{}` already holds this repository: not cloning again (update it with `git -C {} pull`).",
                dest.path.display(),
                dest.path.display()
            ));
            return Ok((dest.path, false));
        }
    }
    if dest.path.exists() && std::fs::read_dir(&dest.path).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::refused(format!(
            "`{}` already exists, is not empty, and is not a clone of this repository",
            dest.path.display()
        ))
        .hint("move that folder away, or choose another folder with `--user NAME` or `--root DIR`, then run `keyclone init` again"));
    }
    let summary = clone_into(
        ctx,
        url,
        &dest.path,
        auth,
        approved,
        &CloneOptions::default(),
        origin_url.as_deref(),
    )
    .map_err(|e| explain_auth(e, t.provider.as_ref(), &auth.key, t.org.as_deref()))?;
    ctx.ui.info(&format!(
        "Cloned into `{}` (branch {}, HEAD {}).",
        summary.path.display(),
        summary.branch.as_deref().unwrap_or("(detached)"),
        summary.head.get(..12).unwrap_or(&summary.head)
    ));
    Ok((summary.path, true))
}

fn ssh_config_step(ctx: &mut Ctx, args: &InitArgs, entry: &HostEntry) -> Result<String> {
    if args.no_ssh_config {
        return Ok("left alone (--no-ssh-config)".into());
    }
    ssh_config::write_entry(ctx, entry, args.yes)
}

fn identity_step(ctx: &mut Ctx, args: &InitArgs, s: &Survey) -> Result<String> {
    if s.git_name.is_some() && s.git_email.is_some() {
        return Ok("already set".into());
    }
    let (mut name, mut email) = (args.git_name.clone(), args.git_email.clone());
    if name.is_none() && email.is_none() {
        if !ctx.ui.interactive() {
            ctx.ui.info("git has no user.name/user.email yet: commits will ask for them (`git config --global user.name \"Your Name\"`, or pass `--git-name` and `--git-email`).");
            return Ok("not set".into());
        }
        if !ctx.ui.prompter().confirm(
            "git has no name and email for your commits yet. Set them now?",
            true,
        )? {
            return Ok("not set".into());
        }
        if s.git_name.is_none() {
            name = Some(ctx.ui.prompter().input("Your name for commits", None)?);
        }
        if s.git_email.is_none() {
            email = Some(ctx.ui.prompter().input("Your email for commits", None)?);
        }
    }
    let Some(home) = ctx.env.home() else {
        return Ok("not set (no HOME)".into());
    };
    let path = home.join(".gitconfig");
    let mut cfg = git2::Config::open(&path).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("could not open `{}`", path.display()),
        )
        .hint(e.message().to_owned())
    })?;
    let mut set = Vec::new();
    for (k, v) in [("user.name", name), ("user.email", email)] {
        if let Some(v) = v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            if v.chars().any(char::is_control) {
                return Err(Error::usage(format!(
                    "the {k} may not contain control characters"
                )));
            }
            cfg.set_str(k, &v).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("could not write `{k}` to `{}`", path.display()),
                )
                .hint(e.message().to_owned())
            })?;
            set.push(k);
        }
    }
    if set.is_empty() {
        return Ok("not set".into());
    }
    ctx.ui.info(&format!(
        "Set {} in `{}`.",
        set.join(" and "),
        path.display()
    ));
    Ok(format!("set {}", set.join(", ")))
}

fn summary(
    ctx: &mut Ctx,
    t: &Target,
    c: &Chosen,
    entry: &HostEntry,
    cloned: Option<&(PathBuf, bool)>,
    steps: &Steps,
) -> Result<()> {
    let public_line = c.public.to_openssh().unwrap_or_default();
    if ctx.ui.json() {
        let steps: serde_json::Map<String, serde_json::Value> = steps
            .0
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        return ctx.ui.json_value(&serde_json::json!({
            "provider": t.provider.as_ref().map(|p| &p.id),
            "host": t.host,
            "connect": { "host": t.connect_host, "port": t.connect_port },
            "key": {
                "path": c.path,
                "created": c.created,
                "encrypted": c.encrypted,
                "fingerprint": key::fingerprint(&c.public),
                "type": KeyType::of(&c.public.algorithm()).map(KeyType::short),
                "public_key": public_line,
            },
            "clone": cloned.map(|(p, done)| serde_json::json!({"path": p, "cloned": done})),
            "ssh_alias": entry.alias,
            "steps": steps,
        }));
    }
    let mut msg = String::from("\nDone. What keyclone set up:\n");
    for (k, v) in &steps.0 {
        msg.push_str(&format!("  {k:<13} {v}\n"));
    }
    msg.push_str("\nNext:\n");
    if let Some((p, _)) = cloned {
        msg.push_str(&format!("  cd {}\n", p.display()));
    }
    msg.push_str(&format!(
        "  ssh -T {}@{}        # plain ssh uses the key too\n  keyclone doctor      # checks everything again later",
        entry.user, entry.alias
    ));
    ctx.ui.info(&msg);
    Ok(())
}
