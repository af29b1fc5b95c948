//! `keyclone rotate`: replace a key with no moment where no key works.
//!
//! The new pair is written beside the old one (`KEY.rotating`), shown with the upload steps, and
//! must authenticate before anything is switched. The switch keeps the key's path: the old pair
//! is first linked into the archive, then the new pair is renamed over it (each rename atomic),
//! so every reference by path — keyclone's `~/.ssh/config` block, a hand-written `IdentityFile`,
//! `[clone] key`, scripts — names a working key before, during and after. The keyring cache and
//! ssh-agent are then switched. A state file beside the key records the step reached; running
//! `rotate` again continues from there.

use std::path::PathBuf;
use std::time::Duration;

use crate::commands::NetArgs;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::ops::rotation::archive::{ARCHIVE_DIR, archive_old, check_archive};
use crate::ops::rotation::locate::{find_key, test_target};
use crate::ops::rotation::reencrypt::reencrypt;
use crate::ops::rotation::steps::{finish, references, start, switch, verify};
use crate::ops::rotation::{RotateOptions, State, Step, checkpoint, read_state, write_state};
use crate::providers::Provider;
use crate::secrets::{NewPassphraseArgs, UnlockArgs};

/// Replace a key (or only its passphrase) without ever being left without a working key.
///
/// Creates the new key beside the old one, shows where to add it, and switches only after the
/// new key authenticates (against the provider, or `--test-url`). The new key takes the old
/// key's path, so every reference keeps working; the old pair is archived under
/// `SSH_DIR/keyclone-archive/` (or deleted with `--delete-old`), and the keyring cache and
/// ssh-agent are switched. If interrupted, run it again: it continues where it stopped.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone rotate\n  \
    keyclone rotate --provider azure-devops\n  \
    keyclone rotate --key ~/.ssh/id_work --test-url git@github.com:org/app.git\n  \
    keyclone rotate --passphrase-only")]
pub struct RotateArgs {
    /// The key to replace [default: the provider's key, else SSH_DIR/id_ed25519, id_ecdsa, id_rsa]
    #[arg(long, value_name = "PATH", conflicts_with = "provider")]
    pub key: Option<PathBuf>,

    /// The provider the key is for (its host is where the new key is tested)
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// A repository to test the new key against (like `keyclone test URL`)
    #[arg(long, value_name = "URL")]
    pub test_url: Option<String>,

    /// Only change the passphrase: re-encrypt the same key (like `ssh-keygen -p`)
    #[arg(long)]
    pub passphrase_only: bool,

    /// The current passphrase (`--passphrase-only`) from a file
    #[arg(long, value_name = "FILE")]
    pub old_passphrase_file: Option<PathBuf>,

    #[command(flatten)]
    pub passphrase: NewPassphraseArgs,

    /// Delete the old pair instead of archiving it
    #[arg(long)]
    pub delete_old: bool,

    /// Switch without asking once the new key works
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub net: NetArgs,

    /// The file holding a provider API token (mode 0600; read, never stored): the new key is
    /// added to your account through the API. The provider's variable (GH_TOKEN, ...) does the
    /// same
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

pub fn run(ctx: &mut Ctx, args: RotateArgs) -> Result<()> {
    let provider = args
        .provider
        .as_deref()
        .map(|n| ctx.registry.get(n).cloned())
        .transpose()?;
    let key_path = find_key(ctx, args.key.as_deref(), provider.as_ref())?;
    if args.passphrase_only {
        return passphrase_only(ctx, &args, &key_path);
    }
    let opts = RotateOptions {
        passphrase: &args.passphrase,
        timeout: Duration::from_secs(args.net.timeout),
        stall_timeout: Duration::from_secs(args.net.stall_timeout),
        tokens: crate::ops::token::TokenOptions {
            file: args.token_file.clone(),
        },
    };
    let archive_dir = ctx.ssh_dir.join(ARCHIVE_DIR);
    if !args.delete_old {
        // Refused before anything is written: an archive that is a link, or that others can
        // read or write.
        check_archive(&archive_dir)?;
    }
    let mut state = match read_state(&key_path)? {
        Some(s) => {
            ctx.ui.info(&format!(
                "Continuing the rotation of `{}` started {} (last step done: {}).",
                key_path.display(),
                s.started,
                s.step.name()
            ));
            s
        }
        None => start(ctx, &opts, &key_path, provider.as_ref())?,
    };
    let target = test_target(ctx, args.test_url.as_deref(), &key_path, provider.as_ref())?;

    for next in state.step.remaining() {
        match next {
            Step::Generated => {}
            Step::Verified => verify(ctx, &opts, &state, &target, provider.as_ref())?,
            Step::Archived => {
                if !args.yes
                    && ctx.ui.interactive()
                    && !ctx.ui.prompter().confirm(
                        &format!("Switch `{}` to the new key now?", key_path.display()),
                        true,
                    )?
                {
                    return Err(Error::refused(
                        "nothing was switched: the old key is still in place",
                    )
                    .hint("run `keyclone rotate` again to continue"));
                }
                state.archive = Some(archive_old(&state, &archive_dir)?);
            }
            Step::Switched => switch(ctx, &state)?,
            Step::References => {
                let done = references(ctx, &opts, &state)?;
                for d in done {
                    ctx.ui.info(&d);
                }
            }
        }
        state.step = next;
        write_state(&state)?;
        checkpoint(next.name());
    }
    let provider = provider.or_else(|| {
        let ep = target.endpoint();
        ctx.registry.for_endpoint(&ep).cloned()
    });
    let archived = finish(&state, args.delete_old)?;
    report(ctx, &state, archived, provider.as_ref())
}

/// What the rotation did, and the one step left to the user: removing the old key at the
/// provider.
fn report(
    ctx: &mut Ctx,
    state: &State,
    archived: Option<PathBuf>,
    provider: Option<&Provider>,
) -> Result<()> {
    let page = provider.and_then(|p| p.upload_url(None));
    if ctx.ui.json() {
        return ctx.ui.json_value(&serde_json::json!({
            "key": state.key,
            "old_fingerprint": state.old_fingerprint,
            "new_fingerprint": state.new_fingerprint,
            "archived": archived,
            "remove_old_at": page,
        }));
    }
    let mut msg = format!(
        "Rotated `{}`: {} replaces {}.",
        state.key.display(),
        state.new_fingerprint,
        state.old_fingerprint
    );
    match &archived {
        Some(a) => msg.push_str(&format!(
            "\n  the old pair is archived as `{}` (mode 600, folder 700)",
            a.display()
        )),
        None => msg.push_str("\n  the old pair is deleted"),
    }
    msg.push_str(&format!(
        "\n\nNext: remove the OLD key ({}) from your account{}, so a copy of it cannot be used.",
        state.old_fingerprint,
        page.map(|p| format!(" at {p}")).unwrap_or_default()
    ));
    ctx.ui.info(&msg);
    Ok(())
}

/// `--passphrase-only`: the same key, re-encrypted; nothing changes at the provider.
fn passphrase_only(ctx: &mut Ctx, args: &RotateArgs, key_path: &std::path::Path) -> Result<()> {
    let done = reencrypt(
        ctx,
        key_path,
        &UnlockArgs {
            passphrase_file: args.old_passphrase_file.clone(),
        },
        &args.passphrase,
    )?;
    if ctx.ui.json() {
        return ctx.ui.json_value(&serde_json::json!({
            "key": key_path, "fingerprint": done.fingerprint, "encrypted": done.encrypted,
        }));
    }
    ctx.ui.info(&format!(
        "`{}` is re-encrypted: the new passphrase works, the old one no longer does. The key itself ({}) is unchanged, so nothing changes at your provider.",
        key_path.display(),
        done.fingerprint
    ));
    Ok(())
}
