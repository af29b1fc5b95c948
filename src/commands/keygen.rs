//! `keyclone keygen`: create a passphrase-protected key pair, never replacing an existing one.

use std::path::PathBuf;

use crate::context::Ctx;
use crate::error::Result;
use crate::ops::key::{self as keyops, Created, NewKey};
use crate::ops::resolve_provider;
use crate::secrets::NewPassphraseArgs;
use crate::ssh::key::{self, DEFAULT_KDF_ROUNDS, KeyType};

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
    pub key_type: Option<KeyType>,

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

pub fn run(ctx: &mut Ctx, args: KeygenArgs) -> Result<()> {
    let provider = resolve_provider(
        &ctx.registry,
        args.provider.as_deref(),
        args.repo.as_deref(),
        None,
    )?
    .map(|(p, _)| p.clone());
    let created = keyops::create(
        ctx,
        &NewKey {
            kind: args.key_type,
            path: args.path.clone(),
            comment: args.comment.clone(),
            provider,
            passphrase: &args.passphrase,
            force: args.force,
            kdf_rounds: args.kdf_rounds,
        },
    )?;
    report(ctx, &args, &created)
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
