//! `keyclone keygen`: create a passphrase-protected key pair, never replacing an existing one.

use std::path::{Path, PathBuf};

use crate::commands::{default_comment, now_stamps, resolve_provider};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::files::{self, DirState, NewFile, Occupant};
use crate::interrupt;
use crate::providers::Provider;
use crate::secrets::{self, NewPassphraseArgs};
use crate::ssh::key::{self, DEFAULT_KDF_ROUNDS, KeyKind};

/// Create a new SSH key pair, protected by a passphrase.
///
/// ed25519 by default; RSA 4096 with `--type rsa`, or automatically for a provider that accepts
/// only RSA (Azure DevOps). The passphrase comes from a prompt (asked twice), a file, standard
/// input or `KEYCLONE_PASSPHRASE`, never from the command line. An existing key is never
/// replaced; `--force` first moves the old pair to `PATH.bak-TIMESTAMP`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  keyclone keygen\n  keyclone keygen --provider azure-devops\n  \
    keyclone keygen --path ~/.ssh/id_work --passphrase-file ~/.config/keyclone/pass"
)]
pub struct KeygenArgs {
    /// Key type [default: ed25519, or rsa for a provider that accepts only RSA]
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub key_type: Option<KeyKind>,

    /// Where to write the private key (`.pub` is added for the public key) [default:
    /// SSH_DIR/id_ed25519, or SSH_DIR/id_rsa]
    #[arg(long, value_name = "FILE")]
    pub path: Option<PathBuf>,

    /// The comment stored in the key [default: user@host]
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,

    /// The provider the key is for: picks a type it accepts
    #[arg(long, value_name = "NAME", conflicts_with = "repo")]
    pub provider: Option<String>,

    /// The repository the key is for: its provider picks the type
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,

    #[command(flatten)]
    pub passphrase: NewPassphraseArgs,

    /// If a key exists at the path, move it to PATH.bak-TIMESTAMP first
    #[arg(long)]
    pub force: bool,

    /// bcrypt-pbkdf rounds protecting the passphrase (OpenSSH's default is 24; minimum 16)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_KDF_ROUNDS,
          value_parser = clap::value_parser!(u32).range(16..=1000))]
    pub kdf_rounds: u32,
}

/// The key type to create: the one asked for, unless the provider refuses it.
fn choose_kind(asked: Option<KeyKind>, provider: Option<&Provider>) -> Result<(KeyKind, bool)> {
    match (asked, provider) {
        (Some(KeyKind::Ed25519), Some(p)) if p.rsa_only() => Err(Error::refused(format!(
            "{} accepts only RSA keys, so an ed25519 key would not work there",
            p.name
        ))
        .hint(format!(
            "run `keyclone keygen --provider {} --type rsa` (or leave out `--type`)",
            p.id
        ))),
        (Some(k), _) => Ok((k, false)),
        (None, Some(p)) if p.rsa_only() => Ok((KeyKind::Rsa, true)),
        (None, _) => Ok((KeyKind::Ed25519, false)),
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
    pub kind: KeyKind,
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

pub fn run(ctx: &mut Ctx, args: KeygenArgs) -> Result<()> {
    let created = create(ctx, &args)?;
    report(ctx, &args, &created)
}

/// Creates the key pair (the whole of `keyclone keygen` but the report); `init` and `rotate`
/// use it too.
pub fn create(ctx: &mut Ctx, args: &KeygenArgs) -> Result<Created> {
    let provider = resolve_provider(
        &ctx.registry,
        args.provider.as_deref(),
        args.repo.as_deref(),
        None,
    )?;
    let provider = provider.map(|(p, _)| p.clone());
    let (kind, auto_rsa) = choose_kind(args.key_type, provider.as_ref())?;
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
        .unwrap_or_else(|| default_comment(&ctx.env));
    valid_comment(&comment)?;

    if args.passphrase.passphrase_stdin && ctx.stdin_is_terminal {
        return Err(Error::usage(
            "`--passphrase-stdin` reads a pipe, but standard input is a terminal (what you type would be shown)",
        )
        .hint("leave out `--passphrase-stdin`: keyclone then asks without showing what you type"));
    }
    let passphrase =
        secrets::new_passphrase(&args.passphrase, &ctx.env, &mut ctx.ui, ctx.stdin.as_mut())?;
    if kind == KeyKind::Rsa {
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
    let (stamp, _) = now_stamps();
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

fn report(ctx: &mut Ctx, args: &KeygenArgs, c: &Created) -> Result<()> {
    let Created {
        private,
        public,
        kind,
        public_key,
        passphrase,
        comment,
        backups,
        provider,
        ..
    } = c;
    let fp_line = key::fingerprint_line(public_key);
    if ctx.ui.json() {
        ctx.ui.json_value(&serde_json::json!({
            "path": private,
            "public_path": public,
            "type": kind,
            "algorithm": public_key.algorithm().as_str(),
            "bits": key::key_bits(public_key.key_data()),
            "fingerprint": key::fingerprint(public_key),
            "fingerprint_line": fp_line,
            "comment": comment,
            "encrypted": passphrase.is_some(),
            "kdf_rounds": passphrase.as_ref().map(|_| args.kdf_rounds),
            "backups": backups.iter().map(|(_, b)| b).collect::<Vec<_>>(),
        }))?;
        return Ok(());
    }
    ctx.ui.data(&fp_line)?;
    let protection = if passphrase.is_some() {
        "protected by your passphrase"
    } else {
        "WITHOUT a passphrase"
    };
    let mut msg = format!(
        "Created an {} key, {protection}:\n  private key  {}  (mode 600)\n  public key   {}  (mode 644)\n  fingerprint  {fp_line}",
        kind.label(),
        private.display(),
        public.display()
    );
    for (orig, bak) in backups {
        msg.push_str(&format!(
            "\n  the previous `{}` is kept as `{}`",
            orig.display(),
            bak.display()
        ));
    }
    let key_flag = if args.path.is_some() {
        format!(" --key {}", private.display())
    } else {
        String::new()
    };
    let provider_flag = match provider {
        Some(p) => format!(" --provider {}", p.id),
        None => " --provider NAME".to_owned(),
    };
    msg.push_str(&format!(
        "\n\nNext: show the public key and where to add it:\n  keyclone pubkey{key_flag}{provider_flag}"
    ));
    ctx.ui.info(&msg);
    Ok(())
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
        assert_eq!(choose_kind(None, Some(az)).unwrap(), (KeyKind::Rsa, true));
        assert_eq!(
            choose_kind(None, Some(gh)).unwrap(),
            (KeyKind::Ed25519, false)
        );
        assert_eq!(
            choose_kind(Some(KeyKind::Rsa), Some(gh)).unwrap(),
            (KeyKind::Rsa, false)
        );
        let e = choose_kind(Some(KeyKind::Ed25519), Some(az)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.hints()[0].contains("--type rsa"));
    }

    #[test]
    fn comment_with_newline_is_refused() {
        assert!(valid_comment("a\nb").is_err());
        assert!(valid_comment("me@box").is_ok());
    }
}
