//! The wizard's upload step: test whether the server accepts the key; if not, show the public
//! key with the provider's steps and wait (through the prompter) until it does. Without a
//! terminal it is one test, and the error names what to do (with `--json`, the key line).

use std::time::Duration;

use ssh_key::PublicKey;

use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::git::clone::Auth;
use crate::ops::access::{self, Access, explain_auth};
use crate::ops::pubkey::{self, ShowPublic};
use crate::ops::target::Target;
use crate::ssh::known_hosts::KnownHosts;

/// Whether the server accepts the key: lists the refs of the repository (like
/// `git ls-remote`), or logs in (like `ssh -T`) when there is no repository.
fn accepted(
    ctx: &mut Ctx,
    t: &Target,
    auth: &Auth,
    host_key: &PublicKey,
    files: &[KnownHosts],
) -> Result<bool> {
    let to = match &t.url {
        Some(url) => Access::Repo {
            url,
            endpoint: &t.connect,
        },
        None => Access::Login {
            endpoint: &t.connect,
            user: &t.ssh_user,
            timeout: Duration::from_secs(10),
        },
    };
    access::accepted(ctx, &to, auth, host_key, files)
}

/// Tests the key; when it is not accepted, shows it with the upload steps and waits. Returns
/// whether the key had to be shown.
/// `copy` (`--copy`) also puts the shown key on the terminal's clipboard.
pub(crate) fn upload_and_test(
    ctx: &mut Ctx,
    t: &Target,
    copy: bool,
    auth: &Auth,
    host_key: &PublicKey,
    files: &[KnownHosts],
) -> Result<bool> {
    if accepted(ctx, t, auth, host_key, files)? {
        ctx.ui.info(&format!(
            "{} already accepts `{}`: nothing to upload.",
            t.connect,
            auth.key.display()
        ));
        return Ok(false);
    }
    let show = |ctx: &mut Ctx| -> Result<()> {
        if ctx.ui.json() {
            return Ok(());
        }
        pubkey::show_public(
            ctx,
            &ShowPublic {
                key: Some(auth.key.clone()),
                provider: t.provider.clone(),
                org: t.org.clone(),
                copy,
            },
        )
    };
    show(ctx)?;
    let not_accepted = || {
        explain_auth(
            Error::new(
                ErrorKind::Auth,
                format!(
                    "{} does not accept `{}` ({}) yet: the key is not on your account",
                    t.connect,
                    auth.key.display(),
                    auth.fingerprint
                ),
            ),
            t.provider.as_ref(),
            &auth.key,
            t.org.as_deref(),
        )
        .hint("once it is added, run `keyclone init` again: it continues from here")
    };
    if !ctx.ui.interactive() {
        let mut e = not_accepted();
        if ctx.ui.json() {
            // A provisioning script uploads the key itself: give it the line.
            let line = crate::ssh::key::read_public(&auth.key)
                .ok()
                .and_then(|(k, _)| k.to_openssh().ok());
            if let Some(l) = line {
                e = e.hint(format!("public key: {l}"));
            }
        }
        return Err(e);
    }
    ctx.ui
        .prompter()
        .input("Press Enter once the key is added", Some(""))?;
    loop {
        if accepted(ctx, t, auth, host_key, files)? {
            ctx.ui
                .info(&format!("{} accepted `{}`.", t.connect, auth.key.display()));
            return Ok(true);
        }
        ctx.ui.warn(&format!(
            "{} does not accept the key yet (uploads can take a few seconds to apply).",
            t.connect
        ));
        let items = vec![
            "Test again".to_owned(),
            "Show the key and the steps again".to_owned(),
            "Quit (run `keyclone init` again later: it continues from here)".to_owned(),
        ];
        match ctx.ui.prompter().select("What now?", &items, 0)? {
            0 => {}
            1 => {
                show(ctx)?;
                ctx.ui
                    .prompter()
                    .input("Press Enter once the key is added", Some(""))?;
            }
            _ => return Err(not_accepted()),
        }
    }
}
