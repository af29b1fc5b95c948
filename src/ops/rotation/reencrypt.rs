//! `keyclone rotate --passphrase-only`: the same key re-encrypted with a new passphrase,
//! atomically (like `ssh-keygen -p`), and the keyring cache moved to the new passphrase.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ssh_key::PrivateKey;

use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::files;
use crate::secrets::{self, NewPassphraseArgs, Unlock, UnlockArgs};
use crate::ssh::key::{self, DEFAULT_KDF_ROUNDS};

/// What [`reencrypt`] did, for the report.
#[derive(Debug, Clone)]
pub(crate) struct Reencrypted {
    pub fingerprint: String,
    /// Whether the key has a passphrase now (`--no-passphrase` removes it).
    pub encrypted: bool,
}

/// Re-encrypts the key with a new passphrase, atomically (like `ssh-keygen -p`): the current
/// one from `old` (`--old-passphrase-file`, else asked), the new one from `new`.
pub(crate) fn reencrypt(
    ctx: &mut Ctx,
    key_path: &Path,
    old: &UnlockArgs,
    new: &NewPassphraseArgs,
) -> Result<Reencrypted> {
    let text =
        files::read_bounded_text(key_path, files::KEY_LIMIT, "private key").map_err(|e| {
            e.hint("name the key with `--key PATH`, or create one with `keyclone init`")
        })?;
    let private = PrivateKey::from_openssh(&text).map_err(|e| {
        Error::usage(format!(
            "`{}` is not an OpenSSH private key",
            key_path.display()
        ))
        .with_source(e)
    })?;
    let unlock =
        crate::ops::passphrase::unlock_key(key_path, &private, false, old, &ctx.env, &mut ctx.ui)?;
    let decrypted = match &unlock {
        Unlock::Passphrase(p) => private.decrypt(p.expose().as_bytes()).map_err(|e| {
            Error::new(ErrorKind::Auth, "the passphrase does not decrypt the key").with_source(e)
        })?,
        _ => private.clone(),
    };
    let new =
        crate::ops::passphrase::new_passphrase(new, &ctx.env, &mut ctx.ui, ctx.stdin.as_mut())?;
    let pair = key::encode(&decrypted, new.as_ref(), DEFAULT_KDF_ROUNDS)?;
    let mode =
        std::fs::metadata(key_path).map_or(0o600, |m| m.permissions().mode() & 0o777) & 0o700;
    files::replace(key_path, pair.private.as_bytes(), mode)?;
    if secrets::keyring_passphrase(&ctx.env, key_path).is_some() {
        match &new {
            Some(p) if secrets::keyring_store(&ctx.env, key_path, p).is_ok() => {
                ctx.ui.info("The keyring now caches the new passphrase.");
            }
            _ => {
                secrets::keyring_forget(&ctx.env, key_path);
            }
        }
    }
    Ok(Reencrypted {
        fingerprint: key::fingerprint(private.public_key()),
        encrypted: new.is_some(),
    })
}
