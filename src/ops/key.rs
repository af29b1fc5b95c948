//! Keys: locate (the default files, `--key`, the config's `[clone] key`), load and check,
//! create (`keyclone keygen`'s work), and unlock with the passphrase this run already has (else
//! ask through the UI). Showing the public key for upload is [`super::pubkey`].

use std::path::{Path, PathBuf};

use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::files::{self, DirState, NewFile, Occupant};
use crate::git::clone::Auth;
use crate::interrupt;
use crate::providers::Provider;
use crate::secrets::{self, NewPassphraseArgs, UnlockArgs};
use crate::ssh::agent;
use crate::ssh::key::{self, KeyType};

/// The default key files, in order of preference.
const DEFAULT_KEYS: &[(&str, KeyType)] = &[
    ("id_ed25519", KeyType::Ed25519),
    ("id_ecdsa", KeyType::Ecdsa),
    ("id_rsa", KeyType::Rsa),
];

pub(crate) fn default_key(ctx: &Ctx, provider: Option<&Provider>) -> Result<PathBuf> {
    let present: Vec<(PathBuf, KeyType)> = DEFAULT_KEYS
        .iter()
        .map(|(name, t)| (ctx.ssh_dir.join(name), *t))
        .filter(|(p, _)| p.exists() || crate::ssh::key::pair_paths(p).1.exists())
        .collect();
    let usable = present
        .iter()
        .find(|(_, t)| provider.is_none_or(|p| p.key_types.contains(t)));
    match (usable, provider) {
        (Some((p, _)), _) => Ok(p.clone()),
        (None, Some(prov)) if !present.is_empty() => Err(Error::refused(format!(
            "{} accepts only {} keys, and the keys in `{}` are {}",
            prov.name,
            prov.accepted_list(),
            ctx.ssh_dir.display(),
            present
                .iter()
                .map(|(_, t)| t.short())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .hint(format!(
            "create a key {} accepts: `keyclone keygen --provider {}`",
            prov.name, prov.id
        ))),
        (None, _) => Err(Error::new(
            ErrorKind::NotFound,
            format!("there is no key in `{}`", ctx.ssh_dir.display()),
        )
        .hint(match provider {
            Some(p) => format!("create one: `keyclone keygen --provider {}`", p.id),
            None => "create one: `keyclone keygen`".to_owned(),
        })
        .hint("or name an existing key with `--key PATH`")),
    }
}

/// The private key to use (`--key`, the config's `[clone] key`, or the provider's default),
/// read and checked: a key readable by others gets OpenSSH's warning; a key type the provider
/// refuses is an error naming the fix.
pub(crate) fn load_key(
    ctx: &mut Ctx,
    key: Option<&Path>,
    provider: Option<&Provider>,
) -> Result<(PathBuf, ssh_key::PrivateKey)> {
    use std::os::unix::fs::PermissionsExt;
    let path = match key
        .map(Path::to_path_buf)
        .or_else(|| ctx.config.clone.key.clone())
    {
        Some(p) => crate::ssh::key::pair_paths(&p).0,
        None => default_key(ctx, provider)?,
    };
    let meta = std::fs::metadata(&path).map_err(|e| {
        Error::io("read the private key", &path, e)
            .hint("name the key with `--key PATH`, or create one with `keyclone keygen`")
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        ctx.ui.warn(&format!(
            "UNPROTECTED PRIVATE KEY FILE: `{}` can be read by other users (mode {mode:o}); OpenSSH refuses such keys. Run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    let text = crate::files::read_bounded_text(&path, crate::files::KEY_LIMIT, "private key")?;
    let private = ssh_key::PrivateKey::from_openssh(&text).map_err(|e| {
        Error::usage(format!("`{}` is not an OpenSSH private key keyclone can use", path.display()))
            .with_source(e)
            .hint(format!("convert it with `ssh-keygen -p -f {}` (rewrites it in OpenSSH's format), or create a new one with `keyclone keygen`", path.display()))
    })?;
    if let Some(p) = provider {
        p.check_key_type(&private.algorithm(), &path)?;
    }
    Ok((path, private))
}

/// The key, unlocked, for `provider`.
pub(crate) fn auth_for(
    ctx: &mut Ctx,
    key: Option<&std::path::Path>,
    unlock: &UnlockArgs,
    provider: Option<&Provider>,
    default_user: &str,
) -> Result<Auth> {
    let (path, private) = load_key(ctx, key, provider)?;
    let agent_has = agent::Agent::from_env(&ctx.env).is_some_and(|a| a.holds(private.public_key()));
    let unlock = match ctx.remembered(&path) {
        Some(p) if !agent_has && private.decrypt(p.expose().as_bytes()).is_ok() => {
            secrets::Unlock::Passphrase(p.clone())
        }
        _ => crate::ops::passphrase::unlock_key(
            &path,
            &private,
            agent_has,
            unlock,
            &ctx.env,
            &mut ctx.ui,
        )?,
    };
    if let secrets::Unlock::Passphrase(p) = &unlock {
        ctx.remember(&path, p.clone());
    }
    Ok(Auth {
        default_user: default_user.to_owned(),
        fingerprint: crate::ssh::key::fingerprint(private.public_key()),
        key: path,
        unlock,
    })
}

/// Unlocks `private` (read from `path`) with the passphrase this run already has for
/// `remembered_as`, else asks (`--passphrase-file`, `KEYCLONE_PASSPHRASE`, the keyring, the
/// prompt); ssh-agent is not used.
pub(crate) fn unlock(
    ctx: &mut Ctx,
    path: &Path,
    remembered_as: &Path,
    private: &ssh_key::PrivateKey,
    args: &UnlockArgs,
) -> Result<secrets::Unlock> {
    match ctx.remembered(remembered_as).cloned() {
        Some(p) => Ok(secrets::Unlock::Passphrase(p)),
        None => {
            crate::ops::passphrase::unlock_key(path, private, false, args, &ctx.env, &mut ctx.ui)
        }
    }
}

/// The key type to create: the one asked for, unless the provider refuses it.
fn choose_kind(asked: Option<KeyType>, provider: Option<&Provider>) -> Result<(KeyType, bool)> {
    match (asked, provider) {
        (Some(KeyType::Ed25519), Some(p)) if p.rsa_only() => Err(Error::refused(format!(
            "{} accepts only RSA keys, so an ed25519 key would not work there",
            p.name
        ))
        .hint(format!(
            "run `keyclone keygen --provider {} --type rsa` (or leave out `--type`)",
            p.id
        ))),
        (Some(k), _) => Ok((k, false)),
        (None, Some(p)) if p.rsa_only() => Ok((KeyType::Rsa, true)),
        (None, _) => Ok((KeyType::Ed25519, false)),
    }
}

fn valid_comment(c: &str) -> Result<()> {
    if c.chars().any(char::is_control) {
        return Err(
            Error::usage("the key comment may not contain newlines or control characters")
                .hint("pass a one-line `--comment TEXT`"),
        );
    }
    Ok(())
}

/// A key `create` wrote.
pub struct Created {
    pub private: PathBuf,
    pub public: PathBuf,
    pub kind: KeyType,
    /// The new key, decrypted (for ssh-agent).
    pub key: ssh_key::PrivateKey,
    pub public_key: ssh_key::PublicKey,
    pub passphrase: Option<secrets::Passphrase>,
    pub comment: String,
    pub backups: Vec<(PathBuf, PathBuf)>,
    pub provider: Option<Provider>,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("private", &self.private)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What [`create`] writes: `keyclone keygen`'s choices, typed.
#[derive(Debug, Clone)]
pub(crate) struct NewKey<'a> {
    /// The key type [default: ed25519, or RSA for a provider that accepts only RSA].
    pub kind: Option<KeyType>,
    /// The private key's path [default: SSH_DIR/id_ed25519 or id_rsa].
    pub path: Option<PathBuf>,
    /// [default: user@host]
    pub comment: Option<String>,
    /// The provider the key is for: picks a type it accepts.
    pub provider: Option<Provider>,
    pub passphrase: &'a NewPassphraseArgs,
    /// Move an existing pair to `PATH.bak-TIMESTAMP` first.
    pub force: bool,
    pub kdf_rounds: u32,
}

/// Creates the key pair (the whole of `keyclone keygen` but the report); `init` and `rotate`
/// use it too.
pub(crate) fn create(ctx: &mut Ctx, args: &NewKey<'_>) -> Result<Created> {
    let provider = args.provider.clone();
    let (kind, auto_rsa) = choose_kind(args.kind, provider.as_ref())?;
    if let (true, Some(p)) = (auto_rsa, &provider) {
        ctx.ui.info(&format!(
            "{} accepts only RSA keys: creating an RSA {} key.",
            p.name,
            key::RSA_BITS
        ));
    }

    let private = match &args.path {
        Some(p) => std::path::absolute(p).map_err(|e| Error::io("resolve the key path", p, e))?,
        None => ctx.ssh_dir.join(kind.default_file_name()),
    };
    if private.extension().is_some_and(|e| e == "pub") {
        return Err(Error::usage(format!(
            "`{}` ends in `.pub`: `--path` names the private key",
            private.display()
        ))
        .hint("leave out the `.pub`; the public key is written beside it"));
    }
    let (private, public) = key::pair_paths(&private);
    let dir = private.parent().unwrap_or(Path::new("/")).to_owned();

    // Everything that can be refused is refused before the passphrase is asked.
    let dir_state = files::check_private_dir(&dir)?;
    if dir_state == DirState::Exists {
        // What a keyclone killed while writing here left behind: a pair it had half placed is
        // completed, the temporary files are removed (before the pair is looked at).
        files::sweep(&dir);
    }
    let mut existing = Vec::new();
    for p in [&private, &public] {
        match files::occupant(p)? {
            Occupant::Nothing => {}
            Occupant::File => existing.push(p.clone()),
            Occupant::Symlink => {
                return Err(Error::refused(format!(
                    "`{}` is a symbolic link; keyclone does not write keys through links",
                    p.display()
                ))
                .hint("remove the link, or choose another file with `--path FILE`"));
            }
            Occupant::Other => {
                return Err(Error::refused(format!(
                    "`{}` exists and is not a regular file",
                    p.display()
                ))
                .hint("choose another file with `--path FILE`"));
            }
        }
    }
    if !existing.is_empty() && !args.force {
        let shown: Vec<String> = existing
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect();
        return Err(Error::refused(format!(
            "a key already exists at {}; keyclone never overwrites a key",
            shown.join(" and ")
        ))
        .hint(format!(
            "to use it: `keyclone pubkey --key {}`",
            private.display()
        ))
        .hint("to create another key beside it: add `--path FILE`")
        .hint("to replace it: add `--force` (the old pair is kept as `…bak-TIMESTAMP`)"));
    }
    let comment = args
        .comment
        .clone()
        .unwrap_or_else(|| super::default_comment(&ctx.env));
    valid_comment(&comment)?;

    if args.passphrase.passphrase_stdin && ctx.stdin_is_terminal {
        return Err(Error::usage(
            "`--passphrase-stdin` reads a pipe, but standard input is a terminal (what you type would be shown)",
        )
        .hint("leave out `--passphrase-stdin`: keyclone then asks without showing what you type"));
    }
    let passphrase = crate::ops::passphrase::new_passphrase(
        args.passphrase,
        &ctx.env,
        &mut ctx.ui,
        ctx.stdin.as_mut(),
    )?;
    if kind == KeyType::Rsa {
        ctx.ui.detail("generating RSA 4096 (OpenSSL)...");
    }
    let generated = key::generate(kind, &comment)?;
    let pair = key::encode(&generated, passphrase.as_ref(), args.kdf_rounds)?;

    if dir_state == DirState::Missing {
        files::ensure_private_dir(&dir)?;
    }
    let staged = files::stage(&[
        NewFile {
            path: private.clone(),
            mode: 0o600,
            contents: pair.private.as_bytes(),
        },
        NewFile {
            path: public.clone(),
            mode: 0o644,
            contents: pair.public_line.as_bytes(),
        },
    ])?;
    let (stamp, _) = super::now_stamps();
    let section = interrupt::critical();
    let mut backups: Vec<(PathBuf, PathBuf)> = Vec::new();
    let restore = |backups: &[(PathBuf, PathBuf)]| {
        for (orig, bak) in backups {
            let _ = files::move_noclobber(bak, orig);
        }
    };
    for p in &existing {
        let bak = files::backup_path(p, &stamp);
        if let Err(e) = files::move_noclobber(p, &bak) {
            restore(&backups);
            return Err(e);
        }
        backups.push((p.clone(), bak));
    }
    if let Err(e) = staged.commit(&section) {
        restore(&backups);
        return Err(e);
    }
    drop(section);
    Ok(Created {
        private,
        public,
        kind,
        key: generated,
        public_key: pair.public,
        passphrase,
        comment,
        backups,
        provider,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::providers::Registry;

    #[test]
    fn type_choice_follows_the_provider() {
        let reg = Registry::builtin();
        let az = reg.get("azure-devops").unwrap();
        let gh = reg.get("github").unwrap();
        assert_eq!(choose_kind(None, Some(az)).unwrap(), (KeyType::Rsa, true));
        assert_eq!(
            choose_kind(None, Some(gh)).unwrap(),
            (KeyType::Ed25519, false)
        );
        assert_eq!(
            choose_kind(Some(KeyType::Rsa), Some(gh)).unwrap(),
            (KeyType::Rsa, false)
        );
        let e = choose_kind(Some(KeyType::Ed25519), Some(az)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.hints()[0].contains("--type rsa"));
    }

    #[test]
    fn comment_with_newline_is_refused() {
        assert!(valid_comment("a\nb").is_err());
        assert!(valid_comment("me@box").is_ok());
    }
}
