//! `keyclone sign`: sign your commits with your SSH key, and let git verify them.

use std::path::PathBuf;

use crate::context::Ctx;
use crate::error::Result;
use crate::ops::signing::{self, SignOptions};

/// Sign your commits with your SSH key.
///
/// Sets git's `gpg.format=ssh`, `user.signingkey` (the key's `.pub`), `commit.gpgsign=true`
/// and `gpg.ssh.allowedSignersFile`, and adds your email and key to that `allowed_signers` file
/// so `git verify-commit` and `git log --show-signature` check the signatures. Writes
/// `~/.gitconfig` (or one repository's config with `--repo`). Another signing setup of yours is
/// replaced only after you confirm, or with `--force`. Add the same public key to your provider
/// as a *signing* key for it to show commits as verified.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone sign\n  \
    keyclone sign --key ~/.ssh/id_work --email ada@example.org\n  \
    keyclone sign --repo ~/code/Users/ada/project")]
pub struct SignArgs {
    /// The key (private or `.pub` path) [default: the first of SSH_DIR/id_ed25519, id_ecdsa,
    /// id_rsa that exists]
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,

    /// The email your signatures are for [default: git's user.email]
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,

    /// Configure only this repository instead of `~/.gitconfig`
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,

    /// Replace another `user.signingkey` or `gpg.format` without asking
    #[arg(long)]
    pub force: bool,
}

pub fn run(ctx: &mut Ctx, args: SignArgs) -> Result<()> {
    let done = signing::setup(
        ctx,
        &SignOptions {
            key: args.key,
            email: args.email,
            repo: args.repo,
            force: args.force,
        },
    )?;
    if ctx.ui.json() {
        return ctx.ui.json_value(&serde_json::json!({ "signing": done }));
    }
    let config = if done.changed.is_empty() {
        format!("`{}` already signs with it", done.git_config.display())
    } else {
        format!(
            "set {} in `{}`",
            done.changed.join(", "),
            done.git_config.display()
        )
    };
    let signers = if done.allowed_signers_unchanged {
        format!("`{}` already lists it", done.allowed_signers.display())
    } else {
        format!("added it to `{}`", done.allowed_signers.display())
    };
    ctx.ui.info(&format!(
        "Commits are now signed with {} for {}: {config}; {signers}.\n\
         Add the same public key to your provider as a signing key (GitHub: Settings > SSH and GPG keys > New SSH key, type \"Signing Key\"; GitLab: usage \"Authentication & Signing\") so it shows them as verified.\n\
         Check one: `git commit -S --allow-empty -m test && git verify-commit HEAD`.",
        done.fingerprint, done.email
    ));
    Ok(())
}
