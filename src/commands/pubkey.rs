//! `keyclone pubkey`: the public key on stdout, and on stderr where and how to add it.

use std::path::PathBuf;

use crate::commands::{default_comment, default_key, now_stamps, resolve_provider};
use crate::context::Ctx;
use crate::env::TMUX;
use crate::error::{Error, Result};
use crate::ssh::key::{self, PublicSource};
use crate::templates::{self, UploadVars};
use crate::ui::clipboard;

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
    let path = match &args.key {
        Some(k) => k.clone(),
        None => default_key(ctx, provider.as_ref())?,
    };
    let (pk, source) = key::read_public(&path)?;
    if let PublicSource::PrivateFile(p) = &source {
        ctx.ui.warn(&format!(
            "`{}.pub` is missing; the public key was read from the private key `{}`",
            p.display(),
            p.display()
        ));
    }
    if let Some(p) = &provider {
        p.check_key_type(&pk.algorithm(), &key::pair_paths(&path).0)?;
    }

    let line = pk
        .to_openssh()
        .map_err(|e| Error::internal("could not encode the public key").with_source(e))?;
    let fingerprint = key::fingerprint(&pk);
    let (_, date) = now_stamps();
    let who = if pk.comment().is_empty() {
        default_comment(&ctx.env)
    } else {
        pk.comment().to_owned()
    };
    let title = format!("{who} ({date})");

    let steps = match &provider {
        Some(p) => Some(templates::render(
            &format!("upload/{}", p.kind.template()),
            &UploadVars {
                provider: p.name.clone(),
                host: p.ssh.first().map(|e| e.host.clone()).unwrap_or_default(),
                upload_url: p.upload_url(org.as_deref()),
                org: org.clone(),
                key_title: title.clone(),
                key_type: pk.algorithm().as_str().to_owned(),
                fingerprint: fingerprint.clone(),
            },
        )?),
        None => None,
    };

    if ctx.ui.json() {
        ctx.ui.json_value(&serde_json::json!({
            "public_key": line,
            "path": key::pair_paths(&path).1,
            "algorithm": pk.algorithm().as_str(),
            "fingerprint": fingerprint,
            "fingerprint_line": key::fingerprint_line(&pk),
            "title": title,
            "provider": provider.as_ref().map(|p| serde_json::json!({
                "id": p.id,
                "name": p.name,
                "upload_url": p.upload_url(org.as_deref()),
                "organization": org,
                "accepted_key_types": p.key_types,
                "steps": steps,
            })),
        }))?;
    } else {
        ctx.ui.data(&line)?;
        match (&provider, &steps) {
            (Some(p), Some(steps)) => {
                let mut msg = format!("\n{steps}\n\n{} accepts these key types: {}.", p.name, p.accepted_list());
                for note in &p.notes {
                    msg.push_str(&format!("\nNote: {note}"));
                }
                if p.needs_org() && org.is_none() {
                    msg.push_str("\nhint: add `--org ORG` (or `--repo URL`) for the direct link to your organization's page");
                }
                ctx.ui.info(&msg);
            }
            _ => ctx.ui.info(&format!(
                "\nAdd this public key where your Git host asks for SSH keys. For the exact link and steps, name the provider:\n  keyclone pubkey --provider NAME   ({})",
                ctx.registry.ids().join(", ")
            )),
        }
    }
    if args.copy {
        copy_to_clipboard(ctx, &line);
    }
    Ok(())
}

fn copy_to_clipboard(ctx: &mut Ctx, line: &str) {
    let seq = clipboard::osc52(line, ctx.env.is_set(TMUX));
    match clipboard::write_to_terminal(&seq) {
        Ok(()) => ctx.ui.info(
            "Copied the key to your terminal's clipboard (OSC 52). If pasting gives something else, your terminal does not allow OSC 52: copy the line above instead.",
        ),
        Err(_) => ctx.ui.warn("`--copy` needs a terminal (none is attached); copy the key line from standard output instead"),
    }
}
