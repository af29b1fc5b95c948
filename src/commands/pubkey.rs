//! `keyclone pubkey`: the public key on stdout, and on stderr where and how to add it.

use std::path::PathBuf;

use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::ops::key::default_key;
use crate::ops::pubkey::{self, ShowPublic};
use crate::ops::resolve_provider;
use crate::ops::token::TokenOptions;
use crate::ops::upload::{self, ApiUpload};
use crate::providers::api::KeyUse;

/// Print a public key, with your provider's upload link and steps.
///
/// stdout is exactly the public key line, so it can be piped; the steps go to stderr. A key
/// type the provider refuses is an error that names the fix.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone pubkey --provider github\n  \
    keyclone pubkey --repo git@ssh.dev.azure.com:v3/fabrikam/Proj/Repo\n  \
    keyclone pubkey --key ~/.ssh/id_work --copy\n  \
    GH_TOKEN=... keyclone pubkey --provider github --upload   (the token from the environment)\n  \
    keyclone pubkey --provider gitlab --upload --token-file ~/.gitlab-token")]
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

    /// Add the key to your account through the provider's API (GitHub, GitLab, Gitea/Forgejo,
    /// Bitbucket), with a token from --token-file, the provider's variable (GH_TOKEN,
    /// GITLAB_TOKEN, ...), the OAuth device flow or a hidden prompt
    #[arg(long)]
    pub upload: bool,

    /// The file holding the API token (mode 0600; read, never stored) [requires --upload]
    #[arg(long, value_name = "FILE", requires = "upload")]
    pub token_file: Option<PathBuf>,

    /// Add it as a signing key (for commits signed with `keyclone sign`) instead of an
    /// authentication key: GitHub `POST /user/ssh_signing_keys`, GitLab `usage_type = signing`
    /// [requires --upload]
    #[arg(long, requires = "upload")]
    pub sign: bool,
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
    if args.upload {
        let Some(p) = provider else {
            return Err(Error::usage(
                "`--upload` needs the provider: add `--provider NAME` or `--repo URL`",
            ));
        };
        let key = match &args.key {
            Some(k) => k.clone(),
            None => default_key(ctx, Some(&p))?,
        };
        let done = upload::upload(
            ctx,
            &p,
            &ApiUpload {
                key: key.clone(),
                usage: if args.sign {
                    KeyUse::Signing
                } else {
                    KeyUse::Auth
                },
                token: TokenOptions {
                    file: args.token_file.clone(),
                },
            },
        )?;
        if ctx.ui.json() {
            ctx.ui.json_value(&serde_json::json!({
                "provider": p.id,
                "key": key,
                "uploaded": done,
                "usage": if args.sign { "signing" } else { "auth" },
            }))?;
        }
        return Ok(());
    }
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
