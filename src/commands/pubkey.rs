//! `keyclone pubkey`: the public key on stdout, and on stderr where and how to add it.

use std::path::PathBuf;

use crate::context::Ctx;
use crate::error::Result;
use crate::ops::pubkey::{self, ShowPublic};
use crate::ops::resolve_provider;

/// Print a public key, with your provider's upload link and steps.
///
/// stdout is exactly the public key line, so it can be piped; the steps go to stderr. A key
/// type the provider refuses is an error that names the fix.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone pubkey --provider github\n  \
    keyclone pubkey --repo git@ssh.dev.azure.com:v3/fabrikam/Proj/Repo\n  \
    keyclone pubkey --key ~/.ssh/id_work --copy")]
pub struct PubkeyArgs {
    /// The key (private or `.pub` path) [default: the first of SSH_DIR/id_ed25519, id_ecdsa,
    /// id_rsa that exists and that the provider accepts]
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,

    /// The provider to add the key to (github, gitlab, bitbucket, azure-devops, codeberg, or a
    /// name from the config file)
    #[arg(long, value_name = "NAME", conflicts_with = "repo")]
    pub provider: Option<String>,

    /// The repository the key is for: its provider (and Azure DevOps organization) is used
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,

    /// The Azure DevOps organization (keys are added per organization)
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,

    /// Also copy the key to the clipboard through the terminal (OSC 52; works over SSH)
    #[arg(long)]
    pub copy: bool,
}

pub fn run(ctx: &mut Ctx, args: PubkeyArgs) -> Result<()> {
    let resolved = resolve_provider(
        &ctx.registry,
        args.provider.as_deref(),
        args.repo.as_deref(),
        args.org.as_deref(),
    )?;
    let (provider, org) = match resolved {
        Some((p, org)) => (Some(p.clone()), org),
        None => (None, args.org.clone()),
    };
    pubkey::show_public(
        ctx,
        &ShowPublic {
            key: args.key.clone(),
            provider,
            org,
            copy: args.copy,
        },
    )
}
