//! The command line, the top layer: the parsed flags ([`Cli`]: the global flags and one
//! subcommand per step of the wizard) and [`run`], which builds the UI and the context in this
//! process's terminal and environment, dispatches, and reports errors. The subcommands live in
//! [`crate::commands`]; the global flags in [`crate::context`], which resolves them.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

pub use crate::commands::Command;
use crate::commands::dispatch;
pub use crate::context::GlobalArgs;
use crate::context::{Ctx, Settings};
use crate::env::Env;
use crate::ui::prompt::{DialoguerPrompter, NoPrompter, Prompter};
use crate::ui::{Ui, Verbosity};

/// The version `--version` prints: the package's, and the commit it was built from (`build.rs`:
/// `unknown` when the source carried no commit).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KEYCLONE_COMMIT"),
    ")"
);

/// From a fresh machine to a verified clone of a private Git repository over SSH.
///
/// `keyclone init` walks through every step. Each step is also a command: `keygen` creates a
/// passphrase-protected key, `pubkey` prints it with your provider's upload link and steps,
/// `trust` verifies a host's key and records it, `test` checks that your key is accepted,
/// `clone` brings the repository into your per-user folder, `rotate` replaces a key safely,
/// `doctor` checks it all later, `provenance` records a training job's Git state, `ssh-config`
/// shows, writes or removes keyclone's block of `~/.ssh/config`; `completions` and `man` print
/// the shell completions and the manual page.
#[derive(Debug, Parser)]
#[command(
    name = "keyclone",
    version = VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
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
    crate::git::clone::refuse_pack_indexer_for_test(
        env.get_str(crate::env::KEYCLONE_TEST_NO_PACK_INDEXER)
            .is_some(),
    );
    let settings = crate::git::clone::apply_config_env(&env)
        .and_then(|()| Settings::resolve(&cli.global, &env));
    let (result, mut ui) = match settings {
        Ok(settings) => {
            let stdin_tty = std::io::stdin().is_terminal();
            let mut ctx = Ctx::new(settings, env, ui, Box::new(std::io::stdin()), stdin_tty);
            ctx.command_line = <Cli as clap::CommandFactory>::command;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
