//! `keyclone init`: the guided path from a fresh machine to a working clone. It composes the
//! operations of [`crate::ops`] that the single-step commands (keygen, pubkey, trust, test,
//! clone) are made of, and adds what only a wizard does: reusing
//! what is there, caching the passphrase, waiting for the upload, the `~/.ssh/config` block and
//! the git identity. Every question has a flag, so provisioning scripts run the same steps.

use std::path::PathBuf;
use std::time::Duration;

use crate::commands::{NetArgs, WorkspaceArgs};
use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::git::clone as gitclone;
use crate::ops::agent::parse_cache_for;
use crate::ops::cache::{Cache, cache_passphrase, check_cache, effective_cache};
use crate::ops::host;
use crate::ops::identity::set_identity;
use crate::ops::key::auth_for;
use crate::ops::key_choice::{Chosen, KeyChoice, choose_key};
use crate::ops::signing::{self, SignOptions};
use crate::ops::ssh_config;
use crate::ops::survey::{Survey, survey};
use crate::ops::target::{
    HostOptions, Target, TargetOptions, check_account, choose_target, verify_host,
};
use crate::ops::token::TokenOptions;
use crate::ops::upload::upload_and_test;
use crate::ops::workspace::{Place, setup_clone};
use crate::secrets::{NewPassphraseArgs, UnlockArgs};
use crate::ssh::config::HostEntry;
use crate::ssh::key::{self, KeyType};

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

    /// How long an ssh-agent keeps the key (`8h`, `2d`); alone: keyclone's own agent when
    /// none runs [default: 8h for keyclone's agent, none for yours]
    #[arg(long, value_name = "DURATION", value_parser = parse_cache_for)]
    pub cache_for: Option<u32>,

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

    /// The file holding a provider API token (mode 0600; read, never stored): keyclone adds the
    /// key to your account through the API instead of waiting for you to paste it. The
    /// provider's variable (GH_TOKEN, GITLAB_TOKEN, ...) does the same
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Also sign commits with the key (as `keyclone sign`: git's config and allowed_signers)
    #[arg(long)]
    pub sign: bool,

    #[command(flatten)]
    pub net: NetArgs,
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
        check_account(a)?;
    }
    if let Some(fp) = &args.fingerprint {
        host::normalize_fingerprint(fp)?;
    }
    if !args.no_ssh_config {
        ssh_config::check_paths(args.key.as_deref(), &ctx.ssh_dir)?;
    }
    let cache = effective_cache(args.cache, args.cache_for, s);
    check_cache(cache, args.cache_for, s)?;
    if cache == Some(Cache::KeycloneAgent) {
        crate::ops::agent::check_usable(ctx)?;
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
    let mut target = choose_target(
        ctx,
        &TargetOptions {
            repo: args.repo.as_deref(),
            provider: args.provider.as_deref(),
            org: args.org.as_deref(),
        },
    )?;
    if let Some(p) = &target.provider {
        steps.push("provider", p.name.clone());
    }

    // 3. Verify the host before anything is created (port 443 if 22 is blocked).
    let (host_key, kh_files, decision) = verify_host(
        ctx,
        &HostOptions {
            fingerprint: args.fingerprint.as_deref(),
            accept_new: args.accept_new,
            port_443: args.port_443,
            timeout,
        },
        &mut target,
    )?;
    steps.push("host", format!("{} ({decision})", target.connect));

    // 4. The key: reuse or create; unlock once; cache.
    let chosen = choose_key(
        ctx,
        &KeyChoice {
            key: args.key.as_deref().or(target.route_key.as_deref()),
            account: args.account.as_deref(),
            provider: target.provider.as_ref(),
            passphrase: &args.passphrase,
        },
        &survey,
    )?;
    steps.push(
        "key",
        format!(
            "{} {}",
            if chosen.created { "created" } else { "reused" },
            chosen.path.display()
        ),
    );
    let cache = effective_cache(args.cache, args.cache_for, &survey);
    let cached = cache_passphrase(ctx, cache, args.cache_for, &chosen, &survey)?;
    steps.push("cache", cached.summary.clone());

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
    let tokens = TokenOptions {
        file: args.token_file.clone(),
    };
    let done = upload_and_test(
        ctx, &target, args.copy, &auth, &host_key, &kh_files, &tokens, args.sign,
    )?;
    steps.push(
        "access",
        match (done.added, done.through_api) {
            (true, true) => "key added through the API and accepted",
            (true, false) => "key added and accepted",
            _ => "already accepted",
        },
    );

    // 6. Clone.
    let alias = target.alias_for(args.account.as_deref());
    let cloned = match (&target.url, args.no_clone) {
        (Some(url), false) => {
            let (root, user) = args.workspace.resolve(ctx);
            let place = Place {
                root,
                user,
                local: args.workspace.local,
                repo: args.repo.as_deref(),
            };
            Some(setup_clone(
                ctx,
                &target,
                url,
                &auth,
                (host_key.clone(), kh_files.clone()),
                alias.as_deref(),
                &place,
            )?)
        }
        (Some(_), true) => None,
        (None, _) => None,
    };
    match &cloned {
        Some((path, true)) => steps.push("clone", format!("cloned into {}", path.display())),
        Some((path, false)) => steps.push("clone", format!("already cloned at {}", path.display())),
        None => steps.push("clone", "skipped"),
    }

    // 7. ~/.ssh/config.
    let mut entry = ssh_config::host_entry(
        ctx,
        alias.clone().unwrap_or_else(|| target.host.clone()),
        target.connect.clone(),
        target.ssh_user.clone(),
        chosen.path.clone(),
    );
    entry.identity_agent = cached.identity_agent;
    let config_done = if args.no_ssh_config {
        "left alone (--no-ssh-config)".into()
    } else {
        ssh_config::write_entry(ctx, &entry, args.yes)?
    };
    steps.push("ssh_config", config_done);

    // 8. git identity.
    let identity = set_identity(
        ctx,
        args.git_name.clone(),
        args.git_email.clone(),
        &survey,
        done.account.as_ref().map(|a| (a, target.provider_name())),
    )?;
    steps.push("git_identity", identity);

    // 9. Commit signing with the same key (its `SigningSetup` names the key to register as a
    //    signing key). A failure here leaves the working setup alone: warn, say the command.
    if args.sign {
        let signing = SignOptions {
            key: Some(chosen.path.clone()),
            ..SignOptions::default()
        };
        let done = match signing::setup(ctx, &signing) {
            Ok(s) => {
                let registered = register_signing_key(ctx, &target, &s, &tokens);
                format!(
                    "signing commits with {} for {}{registered}",
                    s.fingerprint, s.email
                )
            }
            Err(e) => {
                let hints = e.hints().join("; ");
                ctx.ui.warn(&format!(
                    "commit signing was not set up: {} ({hints}); the rest is done, set it up later with `keyclone sign --key {}`",
                    e.message(),
                    chosen.path.display()
                ));
                format!("not set up: {}", e.message())
            }
        };
        steps.push("signing", done);
    }

    // 10. Summary.
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
            "connect": t.connect,
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

/// The signing key registered with the provider through its API when a token is at hand (the
/// same token the key upload used; nothing is asked for this alone), so the provider shows the
/// commits as verified. What it did, for the summary line; a refusal is a warning with the
/// command, never a failure of `init`.
fn register_signing_key(
    ctx: &mut Ctx,
    target: &crate::ops::target::Target,
    s: &signing::SigningSetup,
    tokens: &TokenOptions,
) -> String {
    use crate::ops::upload::{ApiUpload, upload};
    use crate::providers::api::KeyUse;
    let Some(p) = target.provider.as_ref().filter(|p| p.api.is_some()) else {
        return String::new();
    };
    if !crate::ops::token::at_hand(ctx, p, tokens) {
        return format!(
            "; add it to {} as a signing key too: `keyclone pubkey --upload --sign`",
            p.name
        );
    }
    let req = ApiUpload {
        key: s.key.clone(),
        usage: KeyUse::Signing,
        token: tokens.clone(),
    };
    match upload(ctx, p, &req) {
        Ok(_) => format!("; registered with {} as a signing key", p.name),
        Err(e) => {
            ctx.ui.warn(&format!(
                "the key was not registered with {} as a signing key: {} (commits are signed; {} shows them as unverified until it is)",
                p.name,
                e.message(),
                p.name
            ));
            "; not registered as a signing key".to_string()
        }
    }
}
