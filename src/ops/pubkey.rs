//! The public key shown for upload: the line on stdout, on stderr the provider's steps to add
//! it (for the organization), and optionally the line on the terminal's clipboard (OSC 52).
//! `keyclone pubkey`, and the keys `init` and `rotate` wait for.

use std::path::PathBuf;

use super::key::default_key;
use crate::context::Ctx;
use crate::env::TMUX;
use crate::error::{Error, Result};
use crate::providers::Provider;
use crate::ssh::key::{self, PublicSource};
use crate::templates::{self, UploadVars};
use crate::ui::clipboard;

/// What [`show_public`] shows: the key (else the default for the provider), the provider's
/// upload steps (for the organization), and whether to copy the line to the clipboard.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShowPublic {
    pub key: Option<PathBuf>,
    pub provider: Option<Provider>,
    pub org: Option<String>,
    pub copy: bool,
}

/// The public key on stdout, and on stderr where and how to add it (`keyclone pubkey`; `init`
/// and `rotate` show the key they wait for with it).
pub(crate) fn show_public(ctx: &mut Ctx, req: &ShowPublic) -> Result<()> {
    let provider = &req.provider;
    let org = &req.org;
    let path = match &req.key {
        Some(k) => k.clone(),
        None => default_key(ctx, req.provider.as_ref())?,
    };
    let (pk, source) = key::read_public(&path)?;
    if let PublicSource::PrivateFile(p) = &source {
        ctx.ui.warn(&format!(
            "`{}.pub` is missing; the public key was read from the private key `{}`",
            p.display(),
            p.display()
        ));
    }
    if let Some(p) = provider {
        p.check_key_type(&pk.algorithm(), &key::pair_paths(&path).0)?;
    }

    let line = pk
        .to_openssh()
        .map_err(|e| Error::internal("could not encode the public key").with_source(e))?;
    let fingerprint = key::fingerprint(&pk);
    let title = title_of(ctx, &pk);

    let steps = match provider {
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
        match (provider, &steps) {
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
    if req.copy {
        copy_to_clipboard(ctx, &line);
    }
    Ok(())
}

/// The title a key is shown (and uploaded) with: its comment (else `user@host`) and today.
pub(crate) fn title_of(ctx: &Ctx, pk: &ssh_key::PublicKey) -> String {
    let (_, date) = super::now_stamps();
    let who = if pk.comment().is_empty() {
        super::default_comment(&ctx.env)
    } else {
        pk.comment().to_owned()
    };
    format!("{who} ({date})")
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
