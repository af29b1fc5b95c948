//! The command line: global flags and one subcommand per step of the wizard.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands::clone::CloneArgs;
use crate::commands::doctor::DoctorArgs;
use crate::commands::init::InitArgs;
use crate::commands::keygen::KeygenArgs;
use crate::commands::provenance::ProvenanceArgs;
use crate::commands::pubkey::PubkeyArgs;
use crate::commands::rotate::RotateArgs;
use crate::commands::test::TestArgs;
use crate::commands::trust::TrustArgs;

/// From a fresh machine to a verified clone of a private Git repository over SSH.
///
/// `keyclone init` walks through every step. Each step is also a command: `keygen` creates a
/// passphrase-protected key, `pubkey` prints it with your provider's upload link and steps,
/// `trust` verifies a host's key and records it, `test` checks that your key is accepted,
/// `clone` brings the repository into your per-user folder, `rotate` replaces a key safely,
/// `doctor` checks it all later, `provenance` records a training job's Git state.
#[derive(Debug, Parser)]
#[command(
    name = "keyclone",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The SSH directory to use [default: $HOME/.ssh]
    #[arg(long, global = true, value_name = "DIR")]
    pub ssh_dir: Option<PathBuf>,

    /// The config file [default: $XDG_CONFIG_HOME/keyclone/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print results as JSON on stdout (messages stay on stderr)
    #[arg(long, global = true)]
    pub json: bool,

    /// Never ask: a missing answer is an error naming its flag (implied without a terminal)
    #[arg(long, global = true)]
    pub non_interactive: bool,

    /// Print only warnings and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(InitArgs),
    Keygen(KeygenArgs),
    Pubkey(PubkeyArgs),
    Trust(TrustArgs),
    Test(TestArgs),
    Clone(CloneArgs),
    Rotate(RotateArgs),
    Provenance(ProvenanceArgs),
    Doctor(DoctorArgs),
}
