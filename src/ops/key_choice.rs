//! The wizard's key: the one named, the default file for the provider and account when it
//! exists, one of the machine's keys the provider accepts (asked through the prompter), else a
//! new one; unlocked once (unless ssh-agent holds it) so the passphrase can be cached.

use std::path::{Path, PathBuf};

use ssh_key::{PrivateKey, PublicKey};

use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::ops::key::{self as keyops, NewKey};
use crate::ops::survey::{FoundKey, Survey};
use crate::providers::Provider;
use crate::secrets::{NewPassphraseArgs, Passphrase, Unlock, UnlockArgs};
use crate::ssh::agent;
use crate::ssh::key::{self, DEFAULT_KDF_ROUNDS, KeyType};

/// The key the wizard uses.
pub(crate) struct Chosen {
    pub path: PathBuf,
    pub public: PublicKey,
    pub created: bool,
    pub encrypted: bool,
    /// The decrypted key and its passphrase, when keyclone has them (for the cache).
    pub unlocked: Option<(PrivateKey, Option<Passphrase>)>,
}

/// Which key `init` uses, from its flags: `key` (`--key`), `account` (`--account`), the
/// provider it must suit, and the passphrase flags (for a new key, or to unlock one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyChoice<'a> {
    pub key: Option<&'a Path>,
    pub account: Option<&'a str>,
    pub provider: Option<&'a Provider>,
    pub passphrase: &'a NewPassphraseArgs,
}

/// The default key file for a provider and account: `id_ed25519`, `id_rsa` (RSA-only
/// providers), or `id_ed25519_ACCOUNT`.
pub(crate) fn default_key_path(
    ssh_dir: &Path,
    provider: Option<&Provider>,
    account: Option<&str>,
) -> PathBuf {
    let kind = if provider.is_some_and(Provider::rsa_only) {
        KeyType::Rsa
    } else {
        KeyType::Ed25519
    };
    let base = kind.default_file_name();
    match account {
        Some(a) => ssh_dir.join(format!("{base}_{a}")),
        None => ssh_dir.join(base),
    }
}

/// Reuses or creates the key (see the module doc); a reused encrypted key is unlocked unless
/// ssh-agent holds it.
pub(crate) fn choose_key(ctx: &mut Ctx, opts: &KeyChoice<'_>, s: &Survey) -> Result<Chosen> {
    let default = default_key_path(&ctx.ssh_dir, opts.provider, opts.account);
    let existing = match opts.key {
        Some(k) => Some(std::path::absolute(k).unwrap_or_else(|_| k.to_owned())),
        None if default.exists() => Some(default.clone()),
        None if ctx.ui.interactive() && opts.account.is_none() => {
            let usable: Vec<&FoundKey> = s
                .keys
                .iter()
                .filter(|k| opts.provider.is_none_or(|p| k.accepted_by.contains(&p.id)))
                .collect();
            if usable.is_empty() {
                None
            } else {
                let mut items = vec![format!("Create a new key at {}", default.display())];
                items.extend(usable.iter().map(|k| {
                    format!(
                        "Use {} ({}, {}{})",
                        k.path.display(),
                        k.algorithm,
                        k.fingerprint,
                        if k.encrypted { "" } else { ", NO passphrase" }
                    )
                }));
                let i = ctx.ui.prompter().select("Which key?", &items, 0)?;
                (i > 0).then(|| usable[i - 1].path.clone())
            }
        }
        None => None,
    };
    if let Some(path) = existing {
        return reuse_key(ctx, opts, &path);
    }
    let created = keyops::create(
        ctx,
        &NewKey {
            kind: None,
            path: Some(default.clone()),
            comment: None,
            provider: opts.provider.cloned(),
            passphrase: opts.passphrase,
            force: false,
            kdf_rounds: DEFAULT_KDF_ROUNDS,
        },
    )?;
    ctx.ui.info(&format!(
        "Created {} key `{}` ({}){}.",
        created.kind.label(),
        created.private.display(),
        key::fingerprint(&created.public_key),
        if created.passphrase.is_some() {
            ", protected by your passphrase"
        } else {
            ", WITHOUT a passphrase"
        }
    ));
    if let Some(p) = &created.passphrase {
        ctx.remember(&created.private, p.clone());
    }
    Ok(Chosen {
        path: created.private.clone(),
        encrypted: created.passphrase.is_some(),
        public: created.public_key.clone(),
        created: true,
        unlocked: Some((created.key.clone(), created.passphrase.clone())),
    })
}

fn reuse_key(ctx: &mut Ctx, opts: &KeyChoice<'_>, path: &Path) -> Result<Chosen> {
    let (path, private) = keyops::load_key(ctx, Some(path), opts.provider)?;
    let public = private.public_key().clone();
    ctx.ui.info(&format!(
        "Using the existing key `{}` ({}).",
        path.display(),
        key::fingerprint(&public)
    ));
    let in_agent = agent::Agent::from_env(&ctx.env).is_some_and(|a| a.holds(&public));
    let encrypted = private.is_encrypted();
    let unlocked = if !encrypted {
        Some((private.clone(), None))
    } else if in_agent {
        None
    } else {
        let unlock = keyops::unlock(
            ctx,
            &path,
            &path,
            &private,
            &UnlockArgs {
                passphrase_file: opts.passphrase.passphrase_file.clone(),
            },
        )?;
        match unlock {
            Unlock::Passphrase(p) => {
                ctx.remember(&path, p.clone());
                let dec = private.decrypt(p.expose().as_bytes()).map_err(|e| {
                    Error::new(ErrorKind::Auth, "the passphrase does not decrypt the key")
                        .with_source(e)
                })?;
                Some((dec, Some(p)))
            }
            _ => None,
        }
    };
    Ok(Chosen {
        path,
        public,
        created: false,
        encrypted,
        unlocked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Registry;

    #[test]
    fn the_default_key_suits_the_provider_and_the_account() {
        let reg = Registry::builtin();
        let gh = reg.get("github").unwrap();
        let az = reg.get("azure-devops").unwrap();
        let dir = Path::new("/h/.ssh");
        let cases = [
            (None, None, "/h/.ssh/id_ed25519"),
            (Some(gh), None, "/h/.ssh/id_ed25519"),
            (Some(gh), Some("work"), "/h/.ssh/id_ed25519_work"),
            (Some(az), None, "/h/.ssh/id_rsa"),
            (Some(az), Some("work"), "/h/.ssh/id_rsa_work"),
        ];
        for (provider, account, want) in cases {
            assert_eq!(
                default_key_path(dir, provider, account),
                Path::new(want),
                "{:?} {account:?}",
                provider.map(|p| &p.id)
            );
        }
    }
}
