//! One module per subcommand: its `Args` (the doc comment is the `--help` text) and
//! `run(ctx, args)`. This module builds the context, dispatches, and reports errors.

pub mod clone;
pub mod doctor;
pub mod init;
pub mod keygen;
pub mod provenance;
pub mod pubkey;
pub mod rotate;
pub mod test;
pub mod trust;

use std::io::IsTerminal;
use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::context::{Ctx, Settings};
use crate::env::{Env, LOGNAME, USER};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::git::remote::RemoteUrl;
use crate::providers::{KeyType, Provider, Registry};
use crate::ui::prompt::{DialoguerPrompter, NoPrompter, Prompter};
use crate::ui::{Ui, Verbosity};

/// Network time limits (`clone`, `test`).
#[derive(Debug, Clone, clap::Args)]
pub struct NetArgs {
    /// Seconds to wait for the server to answer a connection
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,

    /// Seconds without any data from the server before the transfer is given up
    #[arg(long, value_name = "SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub stall_timeout: u64,
}

/// Where a clone goes (`clone`, `init`): ROOT/Users/USER/REPO.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WorkspaceArgs {
    /// The workspace root [default: ~/cloudfiles/code on an Azure ML compute instance, else ~/code]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// The folder name under ROOT/Users/ [default: your login name]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Clone to local disk even on Azure ML: faster, but lost when the machine is deleted
    #[arg(long)]
    pub local: bool,
}

impl WorkspaceArgs {
    /// The root and user from the flags, else from the config file's `[clone]`.
    pub fn resolve(&self, ctx: &Ctx) -> (Option<PathBuf>, Option<String>) {
        (
            self.root.clone().or_else(|| ctx.config.clone.root.clone()),
            self.user.clone().or_else(|| ctx.config.clone.user.clone()),
        )
    }
}

/// Runs the parsed command line in this process's terminal and environment.
pub fn run(cli: Cli, env: Env) -> ExitCode {
    let interactive = !cli.global.non_interactive
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    let prompter: Box<dyn Prompter> = if interactive {
        Box::new(DialoguerPrompter)
    } else {
        Box::new(NoPrompter)
    };
    let verbosity = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        _ => Verbosity::Verbose,
    };
    let json = cli.global.json;
    let ui = Ui::new(
        Box::new(std::io::stdout()),
        Box::new(std::io::stderr()),
        prompter,
        interactive,
        json,
        verbosity,
    );
    crate::files::set_test_kill_point(env.get_str(crate::env::KEYCLONE_TEST_KILL_AT));
    let (result, mut ui) = match Settings::resolve(&cli.global, &env) {
        Ok(settings) => {
            let stdin_tty = std::io::stdin().is_terminal();
            let mut ctx = Ctx::new(settings, env, ui, Box::new(std::io::stdin()), stdin_tty);
            let r = dispatch(&mut ctx, cli.command);
            (r, ctx.ui)
        }
        Err(e) => (Err(e), ui),
    };
    if ui.broken_pipe() {
        // The reader of stdout went away (`| head`): not an error worth reporting.
        return ExitCode::SUCCESS;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            ui.error(&e);
            if json {
                let _ = ui.json_value(&serde_json::json!({
                    "error": { "kind": e.kind().name(), "message": e.message(), "hints": e.hints() }
                }));
            }
            ExitCode::from(e.kind().exit_code())
        }
    }
}

/// Runs one command with a ready context (tests call this with a scripted prompter).
pub fn dispatch(ctx: &mut Ctx, command: Command) -> Result<()> {
    match command {
        Command::Keygen(args) => keygen::run(ctx, args),
        Command::Pubkey(args) => pubkey::run(ctx, args),
        Command::Trust(args) => trust::run(ctx, args),
        Command::Test(args) => test::run(ctx, args),
        Command::Clone(args) => clone::run(ctx, args),
        Command::Init(args) => init::run(ctx, args),
        Command::Doctor(args) => doctor::run(ctx, args),
        Command::Rotate(args) => rotate::run(ctx, args),
        Command::Provenance(args) => provenance::run(ctx, args),
    }
}

/// The provider named by `--provider`, or found from `--repo URL`, with the organization
/// (`--org`, else from the URL) for providers that need one.
pub(crate) fn resolve_provider<'r>(
    registry: &'r Registry,
    provider: Option<&str>,
    repo: Option<&str>,
    org: Option<&str>,
) -> Result<Option<(&'r Provider, Option<String>)>> {
    if let Some(name) = provider {
        return Ok(Some((registry.get(name)?, org.map(str::to_owned))));
    }
    let Some(repo) = repo else { return Ok(None) };
    let url = RemoteUrl::parse(repo)?;
    match url.provider(registry) {
        Some(p) => {
            let org = org.map(str::to_owned).or_else(|| url.org_for(p));
            Ok(Some((p, org)))
        }
        None => Err(Error::usage(format!("keyclone does not know which provider serves `{}`", url.host))
            .hint("name it with `--provider NAME`, or declare the host in the config file as `[provider.NAME]` (see the README)")),
    }
}

/// The default key files, in order of preference.
const DEFAULT_KEYS: &[(&str, KeyType)] = &[
    ("id_ed25519", KeyType::Ed25519),
    ("id_ecdsa", KeyType::Ecdsa),
    ("id_rsa", KeyType::Rsa),
];

pub(crate) fn default_key(ctx: &Ctx, provider: Option<&Provider>) -> Result<PathBuf> {
    let present: Vec<(PathBuf, KeyType)> = DEFAULT_KEYS
        .iter()
        .map(|(name, t)| (ctx.ssh_dir.join(name), *t))
        .filter(|(p, _)| p.exists() || crate::ssh::key::pair_paths(p).1.exists())
        .collect();
    let usable = present
        .iter()
        .find(|(_, t)| provider.is_none_or(|p| p.key_types.contains(t)));
    match (usable, provider) {
        (Some((p, _)), _) => Ok(p.clone()),
        (None, Some(prov)) if !present.is_empty() => Err(Error::refused(format!(
            "{} accepts only {} keys, and the keys in `{}` are {}",
            prov.name,
            prov.accepted_list(),
            ctx.ssh_dir.display(),
            present
                .iter()
                .map(|(_, t)| t.short())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .hint(format!(
            "create a key {} accepts: `keyclone keygen --provider {}`",
            prov.name, prov.id
        ))),
        (None, _) => Err(Error::new(
            ErrorKind::NotFound,
            format!("there is no key in `{}`", ctx.ssh_dir.display()),
        )
        .hint(match provider {
            Some(p) => format!("create one: `keyclone keygen --provider {}`", p.id),
            None => "create one: `keyclone keygen`".to_owned(),
        })
        .hint("or name an existing key with `--key PATH`")),
    }
}

/// The private key to use (`--key`, the config's `[clone] key`, or the provider's default),
/// read and checked: a key readable by others gets OpenSSH's warning; a key type the provider
/// refuses is an error naming the fix.
pub(crate) fn load_key(
    ctx: &mut Ctx,
    key: Option<&Path>,
    provider: Option<&Provider>,
) -> Result<(PathBuf, ssh_key::PrivateKey)> {
    use std::os::unix::fs::PermissionsExt;
    let path = match key
        .map(Path::to_path_buf)
        .or_else(|| ctx.config.clone.key.clone())
    {
        Some(p) => crate::ssh::key::pair_paths(&p).0,
        None => default_key(ctx, provider)?,
    };
    let meta = std::fs::metadata(&path).map_err(|e| {
        Error::io("read the private key", &path, e)
            .hint("name the key with `--key PATH`, or create one with `keyclone keygen`")
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        ctx.ui.warn(&format!(
            "UNPROTECTED PRIVATE KEY FILE: `{}` can be read by other users (mode {mode:o}); OpenSSH refuses such keys. Run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    let text = crate::files::read_bounded_text(&path, crate::files::KEY_LIMIT, "private key")?;
    let private = ssh_key::PrivateKey::from_openssh(&text).map_err(|e| {
        Error::usage(format!("`{}` is not an OpenSSH private key keyclone can use", path.display()))
            .with_source(e)
            .hint(format!("convert it with `ssh-keygen -p -f {}` (rewrites it in OpenSSH's format), or create a new one with `keyclone keygen`", path.display()))
    })?;
    if let Some(p) = provider {
        p.check_key_type(&private.algorithm(), &path)?;
    }
    Ok((path, private))
}

/// The login name: `USER`, `LOGNAME`, or the password database.
pub(crate) fn login_name(env: &Env) -> String {
    env.get_str(USER)
        .or_else(|| env.get_str(LOGNAME))
        .map(str::to_owned)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::Uid::effective())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "user".to_owned())
}

/// `user@host`, as ssh-keygen's default comment.
pub(crate) fn default_comment(env: &Env) -> String {
    let user = login_name(env);
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{user}@{host}")
}

/// The current UTC time as `20261126T121109Z` (for backup names) and `2026-11-26` (titles).
pub(crate) fn now_stamps() -> (String, String) {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "backup".to_owned());
    let date = now
        .format(time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap_or_default();
    (stamp, date)
}
