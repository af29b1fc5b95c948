//! One module per subcommand: its `Args` (the doc comment is the `--help` text) and
//! `run(ctx, args)`, which parses its flags into the typed options of [`crate::ops`] and
//! reports the result. A command never imports another command; this module holds the
//! [`Command`] enum, [`dispatch`], and the flag groups several commands share. The process
//! entry (terminal, UI, error report) is `cli::run`, one layer up.

pub mod agent;
pub mod clone;
pub mod completions;
pub mod doctor;
pub mod init;
pub mod keygen;
pub mod lfs;
pub mod man;
pub mod provenance;
pub mod pubkey;
pub mod rotate;
pub mod sign;
pub mod ssh_config;
pub mod test;
pub mod trust;

use std::path::PathBuf;

use crate::context::Ctx;
use crate::error::Result;

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

/// The subcommands, one per step of the wizard (the doc comment of each `Args` is its `--help`).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Init(init::InitArgs),
    Keygen(keygen::KeygenArgs),
    Pubkey(pubkey::PubkeyArgs),
    Trust(trust::TrustArgs),
    Test(test::TestArgs),
    Clone(clone::CloneArgs),
    Lfs(lfs::LfsArgs),
    Rotate(rotate::RotateArgs),
    Provenance(provenance::ProvenanceArgs),
    Doctor(doctor::DoctorArgs),
    SshConfig(ssh_config::SshConfigArgs),
    Completions(completions::CompletionsArgs),
    Man(man::ManArgs),
    Sign(sign::SignArgs),
    Agent(agent::AgentArgs),
}

/// Runs one command with a ready context (tests call this with a scripted prompter).
pub fn dispatch(ctx: &mut Ctx, command: Command) -> Result<()> {
    match command {
        Command::Keygen(args) => keygen::run(ctx, args),
        Command::Pubkey(args) => pubkey::run(ctx, args),
        Command::Trust(args) => trust::run(ctx, args),
        Command::Test(args) => test::run(ctx, args),
        Command::Clone(args) => clone::run(ctx, args),
        Command::Lfs(args) => lfs::run(ctx, args),
        Command::Init(args) => init::run(ctx, args),
        Command::Doctor(args) => doctor::run(ctx, args),
        Command::Rotate(args) => rotate::run(ctx, args),
        Command::Provenance(args) => provenance::run(ctx, args),
        Command::SshConfig(args) => ssh_config::run(ctx, args),
        Command::Completions(args) => completions::run(ctx, args),
        Command::Man(args) => man::run(ctx, args),
        Command::Sign(args) => sign::run(ctx, args),
        Command::Agent(args) => agent::run(ctx, args),
    }
}
