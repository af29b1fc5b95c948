//! One module per subcommand: its `Args` (the doc comment is the `--help` text) and
//! `run(ctx, args)`. This module builds the context, dispatches, and reports errors.

pub mod keygen;
pub mod pubkey;
pub mod trust;

use std::io::IsTerminal;
use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::context::{Ctx, Settings};
use crate::env::{Env, LOGNAME, USER};
use crate::error::{Error, Result};
use crate::git::remote::RemoteUrl;
use crate::providers::{Provider, Registry};
use crate::ui::prompt::{DialoguerPrompter, NoPrompter, Prompter};
use crate::ui::{Ui, Verbosity};

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

/// `user@host`, as ssh-keygen's default comment.
pub(crate) fn default_comment(env: &Env) -> String {
    let user = env
        .get_str(USER)
        .or_else(|| env.get_str(LOGNAME))
        .map(str::to_owned)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::Uid::effective())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "user".to_owned());
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
