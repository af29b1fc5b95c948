//! Commit signing with the SSH key (`keyclone sign`, `init --sign`): git's config
//! (`gpg.format=ssh`, `user.signingkey`, `commit.gpgsign`, `gpg.ssh.allowedSignersFile`) in
//! `~/.gitconfig` (or one repository's `.git/config`), and the `allowed_signers` file that lets
//! `git verify-commit` and `git log --show-signature` check the signatures, written atomically.
//!
//! A signing setup the user already has (another `user.signingkey`, `gpg.format=openpgp`) is
//! replaced only after a yes on the terminal or with `force`. The result, [`SigningSetup`],
//! names the public key to register as a *signing* key where the provider keeps them apart
//! (GitHub's `POST /user/ssh_signing_keys`; GitLab's `usage_type = auth_and_signing`): the seam
//! the API upload is wired to.

use std::path::{Path, PathBuf};

use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::files;
use crate::ssh::key::{self, PublicSource};

/// What `keyclone sign` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// The key (private or `.pub` path) [default: the first default key in the SSH directory].
    pub key: Option<PathBuf>,
    /// The email the signatures are for [default: git's `user.email`].
    pub email: Option<String>,
    /// Configure only this repository (its `.git/config`) instead of `~/.gitconfig`.
    pub repo: Option<PathBuf>,
    /// Replace a signing setup the user already has without asking.
    pub force: bool,
}

/// What was set up: also what the API upload registers as the signing key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SigningSetup {
    /// The key pair's private key path.
    pub key: PathBuf,
    /// `user.signingkey` as written (the `.pub` path, or `key::TYPE BASE64` without one).
    pub signing_key: String,
    /// The public key line to upload **as a signing key** (no comment).
    pub public_key: String,
    pub fingerprint: String,
    pub email: String,
    /// The git config file written.
    pub git_config: PathBuf,
    pub allowed_signers: PathBuf,
    /// `allowed_signers` already had this email and key.
    pub allowed_signers_unchanged: bool,
    /// The settings changed (`name = value`); empty when all were already so.
    pub changed: Vec<String>,
}

/// The settings git needs, in the order they are written.
fn wanted(signing_key: &str, allowed: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("gpg.format", "ssh".to_owned()),
        ("user.signingkey", signing_key.to_owned()),
        ("commit.gpgsign", "true".to_owned()),
        (
            "gpg.ssh.allowedSignersFile",
            allowed.to_string_lossy().into_owned(),
        ),
    ]
}

/// The settings that would replace a signing setup the user made: `(name, theirs, ours)`.
/// Pure, so the rule is tested alone: an unset value or the same value is no conflict; only
/// the format, the key, the allowed-signers file and a `commit.gpgsign` the user turned off
/// are a setup of the user's (turning an unset `commit.gpgsign` on is what was asked).
pub fn conflicts(
    current: &dyn Fn(&str) -> Option<String>,
    want: &[(&'static str, String)],
) -> Vec<(String, String, String)> {
    want.iter()
        .filter(|(k, _)| {
            matches!(
                *k,
                "gpg.format" | "user.signingkey" | "commit.gpgsign" | "gpg.ssh.allowedSignersFile"
            )
        })
        .filter_map(|(k, v)| {
            let have = current(k)?;
            let same = match *k {
                "gpg.format" => have.eq_ignore_ascii_case(v),
                "commit.gpgsign" => !matches!(
                    have.to_ascii_lowercase().as_str(),
                    "false" | "no" | "off" | "0"
                ),
                _ => have == *v,
            };
            (!same).then(|| ((*k).to_owned(), have, v.clone()))
        })
        .collect()
}

/// Refuses an email that would not be one principal in `allowed_signers` (its patterns are
/// comma-separated, `*`/`?` are wildcards, `!` negates, a space ends the field) or in git's
/// config.
pub fn check_email(email: &str) -> Result<()> {
    let bad = email.is_empty()
        || !email.contains('@')
        || email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || ",*?!\"'#".contains(c));
    if bad {
        return Err(Error::usage(format!(
            "`{}` cannot be the email of a signer: it needs an `@` and no spaces, quotes, commas, `*`, `?`, `!` or `#`",
            email.escape_debug()
        ))
        .hint("pass the email your provider account has: `keyclone sign --email you@example.org`"));
    }
    Ok(())
}

/// `allowed_signers` with `email namespaces="git" TYPE BASE64` added, or `None` when a line
/// already names this email for this key. Other lines are kept byte for byte.
pub fn merge_allowed_signers(existing: &str, email: &str, material: &str) -> Option<String> {
    let present = existing.lines().any(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return false;
        }
        let principals = line.split_whitespace().next().unwrap_or("");
        principals.split(',').any(|p| p == email) && line.contains(material)
    });
    if present {
        return None;
    }
    let mut out = existing.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("{email} namespaces=\"git\" {material}\n"));
    Some(out)
}

fn git_err(what: String, e: &git2::Error) -> Error {
    Error::new(ErrorKind::Io, what).hint(e.message().to_owned())
}

/// The file to write and the view of git's settings that `git` itself would see there.
fn open_config(ctx: &Ctx, repo: Option<&Path>) -> Result<(PathBuf, git2::Config)> {
    let home = ctx.env.home().ok_or_else(|| {
        Error::usage("`HOME` is not set, so keyclone cannot find git's config")
            .hint("set `HOME`, or configure one repository with `--repo DIR`")
    })?;
    let mut view = git2::Config::new().map_err(|e| git_err("libgit2 config".into(), &e))?;
    let xdg = ctx
        .env
        .get_nonempty(crate::env::XDG_CONFIG_HOME)
        .map_or_else(|| home.join(".config"), PathBuf::from);
    let _ = view.add_file(&xdg.join("git/config"), git2::ConfigLevel::XDG, false);
    let global = home.join(".gitconfig");
    let _ = view.add_file(&global, git2::ConfigLevel::Global, false);
    let file = match repo {
        None => global,
        Some(dir) => {
            let r = git2::Repository::open(dir).map_err(|e| {
                git_err(format!("`{}` is not a git repository", dir.display()), &e)
                    .hint("name the folder of a clone: `keyclone sign --repo ~/code/REPO`")
            })?;
            let local = r.path().join("config");
            let _ = view.add_file(&local, git2::ConfigLevel::Local, false);
            local
        }
    };
    Ok((file, view))
}

/// Where the signers' file goes: the one git is already told about, else
/// `$XDG_CONFIG_HOME/git/allowed_signers`.
fn allowed_signers_path(ctx: &Ctx, view: &git2::Config) -> Option<PathBuf> {
    let home = ctx.env.home()?;
    if let Ok(p) = view.get_string("gpg.ssh.allowedSignersFile") {
        let p = p.trim();
        if let Some(rest) = p.strip_prefix("~/") {
            return Some(home.join(rest));
        }
        if Path::new(p).is_absolute() {
            return Some(PathBuf::from(p));
        }
    }
    let xdg = ctx
        .env
        .get_nonempty(crate::env::XDG_CONFIG_HOME)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| home.join(".config"));
    Some(xdg.join("git").join("allowed_signers"))
}

/// Sets git up to sign commits with the key, and to verify them.
pub fn setup(ctx: &mut Ctx, opts: &SignOptions) -> Result<SigningSetup> {
    let key_path = match &opts.key {
        Some(k) => k.clone(),
        None => crate::ops::key::default_key(ctx, None)?,
    };
    let (private, pub_path) = key::pair_paths(&key_path);
    let (public, source) = key::read_public(&key_path)?;
    let material = public
        .to_openssh()
        .map_err(|e| Error::internal(format!("cannot encode the public key: {e}")))?;
    let material = material
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let signing_key = match source {
        PublicSource::PubFile(_) => std::path::absolute(&pub_path)
            .unwrap_or(pub_path)
            .to_string_lossy()
            .into_owned(),
        PublicSource::PrivateFile(_) => format!("key::{material}"),
    };

    let (file, view) = open_config(ctx, opts.repo.as_deref())?;
    let email = match opts
        .email
        .clone()
        .or_else(|| view.get_string("user.email").ok())
    {
        Some(e) => e.trim().to_owned(),
        None => {
            return Err(Error::new(
                ErrorKind::NeedsInput,
                "git has no user.email, and signatures are checked against an email",
            )
            .hint("pass it: `keyclone sign --email you@example.org` (the email of your provider account)"));
        }
    };
    check_email(&email)?;
    let allowed = allowed_signers_path(ctx, &view).ok_or_else(|| {
        Error::usage("`HOME` is not set, so keyclone cannot place the allowed_signers file")
    })?;
    let want = wanted(&signing_key, &allowed);
    let current = |k: &str| view.get_string(k).ok().filter(|v| !v.trim().is_empty());
    let clash = conflicts(&current, &want);
    if !clash.is_empty() && !opts.force {
        let list = clash
            .iter()
            .map(|(k, have, ours)| format!("{k} is `{have}` (keyclone would set `{ours}`)"))
            .collect::<Vec<_>>()
            .join("; ");
        let asked = ctx.ui.interactive()
            && ctx.ui.prompter().confirm(
                &format!("git already signs differently: {list}. Replace it?"),
                false,
            )?;
        if !asked {
            return Err(Error::refused(format!(
                "git already has a signing setup of yours: {list}; nothing was changed"
            ))
            .hint("keep it, or replace it with `keyclone sign --force`"));
        }
    }

    // allowed_signers first: a config naming a file that does not exist yet would make every
    // `git log --show-signature` complain.
    // A link (a dotfiles repository's) is not replaced by a file of keyclone's: refused, with
    // the line to add by hand; an existing file keeps its mode.
    let meta = std::fs::symlink_metadata(&allowed).ok();
    if meta.as_ref().is_some_and(|m| !m.file_type().is_file()) {
        return Err(Error::refused(format!(
            "`{}` is a link or not a regular file: keyclone does not replace it; nothing was changed",
            allowed.display()
        ))
        .hint(format!(
            "add this line to the file it points to: {email} namespaces=\"git\" {material}"
        ))
        .hint("or name another file with `git config --global gpg.ssh.allowedSignersFile PATH`, then run the same command again"));
    }
    let mode = meta.map_or(0o644, |m| {
        std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o755
    });
    let existing =
        match files::read_bounded_if_exists(&allowed, files::CONFIG_LIMIT, "allowed_signers file")?
        {
            Some((bytes, _)) => String::from_utf8(bytes).map_err(|_| {
                Error::usage(format!("`{}` is not UTF-8 text", allowed.display()))
                    .hint("check that it is an allowed_signers file (see `man ssh-keygen`)")
            })?,
            None => String::new(),
        };
    let merged = merge_allowed_signers(&existing, &email, &material);
    if let Some(text) = &merged {
        if let Some(parent) = allowed.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        }
        files::replace(&allowed, text.as_bytes(), mode)?;
    }

    let mut cfg = git2::Config::open(&file)
        .map_err(|e| git_err(format!("could not open `{}`", file.display()), &e))?;
    let mut changed = Vec::new();
    for (k, v) in &want {
        if cfg.get_string(k).ok().as_deref() == Some(v.as_str()) {
            continue;
        }
        cfg.set_str(k, v)
            .map_err(|e| git_err(format!("could not write `{k}` to `{}`", file.display()), &e))?;
        changed.push(format!("{k} = {v}"));
    }
    Ok(SigningSetup {
        key: private,
        signing_key,
        fingerprint: key::fingerprint(&public),
        public_key: material,
        email,
        git_config: file,
        allowed_signers: allowed,
        allowed_signers_unchanged: merged.is_none(),
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn allowed_signers_gets_one_line_once_and_keeps_the_others() {
        let first = merge_allowed_signers("", "a@example.org", K).unwrap();
        assert_eq!(first, format!("a@example.org namespaces=\"git\" {K}\n"));
        assert_eq!(merge_allowed_signers(&first, "a@example.org", K), None);
        let other = "# mine\nb@example.org ssh-rsa AAAAB3";
        let merged = merge_allowed_signers(other, "a@example.org", K).unwrap();
        assert!(merged.starts_with("# mine\nb@example.org ssh-rsa AAAAB3\na@example.org"));
        // The same key for another email, or the email for another key, is not enough.
        let b = format!("b@example.org {K}\n");
        assert!(merge_allowed_signers(&b, "a@example.org", K).is_some());
        let listed = format!("x@example.org,a@example.org {K}\n");
        assert_eq!(merge_allowed_signers(&listed, "a@example.org", K), None);
        let commented = format!("# a@example.org {K}\n");
        assert!(merge_allowed_signers(&commented, "a@example.org", K).is_some());
    }

    #[test]
    fn an_email_must_be_one_principal() {
        check_email("ada@example.org").unwrap();
        for bad in [
            "",
            "ada",
            "a da@example.org",
            "a,b@example.org",
            "*@example.org",
            "a@example.org\n",
            "!a@example.org",
            "\"a\"@example.org",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_another_setup_of_the_users_is_a_conflict() {
        let want = wanted("/h/.ssh/id_ed25519.pub", Path::new("/h/allowed"));
        let none = |_: &str| None;
        assert!(conflicts(&none, &want).is_empty());
        let same = |k: &str| match k {
            "gpg.format" => Some("SSH".to_owned()),
            "user.signingkey" => Some("/h/.ssh/id_ed25519.pub".to_owned()),
            "commit.gpgsign" => Some("true".to_owned()),
            _ => Some("/h/allowed".to_owned()),
        };
        assert!(conflicts(&same, &want).is_empty());
        // Signing turned off on purpose, or another allowed-signers file: the user's.
        let off = |k: &str| match k {
            "commit.gpgsign" => Some("false".to_owned()),
            "gpg.ssh.allowedSignersFile" => Some("signers".to_owned()),
            _ => None,
        };
        let c = conflicts(&off, &want);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].0, "commit.gpgsign");
        let theirs = |k: &str| match k {
            "gpg.format" => Some("openpgp".to_owned()),
            "user.signingkey" => Some("ABCDEF12".to_owned()),
            _ => None,
        };
        let c = conflicts(&theirs, &want);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[1],
            (
                "user.signingkey".into(),
                "ABCDEF12".into(),
                "/h/.ssh/id_ed25519.pub".into()
            )
        );
    }
}
