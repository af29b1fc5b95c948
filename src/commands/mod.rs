//! One module per subcommand: its `Args` (the doc comment is the `--help` text) and
//! `run(ctx, args)`, which parses its flags into the typed options of [`crate::ops`] and
//! reports the result. A command never imports another command; this module builds the
//! context, dispatches, reports errors, and holds the flag groups several commands share.

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
use crate::env::Env;
use std::path::PathBuf;

use crate::error::Result;
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
    let settings = crate::git::clone::apply_config_env(&env)
        .and_then(|()| Settings::resolve(&cli.global, &env));
    let (result, mut ui) = match settings {
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
