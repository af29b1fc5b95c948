//! The wizard's upload step: test whether the server accepts the key; if not, show the public
//! key with the provider's steps and wait (through the prompter) until it does. Without a
//! terminal it is one test, and the error names what to do (with `--json`, the key line).
//! Where the provider has a key API and a token is at hand, [`upload`] adds the key through it
//! instead (`keyclone pubkey --upload`, and `init`/`rotate`).

use std::time::Duration;

use ssh_key::PublicKey;

use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::git::clone::Auth;
use crate::ops::access::{self, Access, explain_auth};
use crate::ops::pubkey::{self, ShowPublic};
use crate::ops::target::Target;
use crate::ops::token::{self, Token, TokenOptions};
use crate::providers::Provider;
use crate::providers::api::{self, Failure, KeyUse, NewKey, Uploaded};
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

/// What the upload step did.
#[derive(Debug, Clone, Default)]
pub(crate) struct UploadDone {
    /// The key had to be added (by hand or through the API).
    pub added: bool,
    /// Added through the provider's API.
    pub through_api: bool,
    /// The account's name and e-mail, when the API gave them (offered for git's identity).
    pub account: Option<api::Account>,
}

/// Tests the key; when it is not accepted, adds it through the provider's API when a token is
/// at hand (`--token-file`, the provider's variable) or the user chooses it on a terminal;
/// else shows it with the upload steps and waits.
/// `copy` (`--copy`) also puts the shown key on the terminal's clipboard. With `sign` (`init
/// --sign`), where the provider keeps one list of keys for both uses (GitLab), the key is added
/// for logging in and signing at once.
#[allow(clippy::too_many_arguments)]
pub(crate) fn upload_and_test(
    ctx: &mut Ctx,
    t: &Target,
    copy: bool,
    auth: &Auth,
    host_key: &PublicKey,
    files: &[KnownHosts],
    tokens: &TokenOptions,
    sign: bool,
) -> Result<UploadDone> {
    if accepted(ctx, t, auth, host_key, files)? {
        ctx.ui.info(&format!(
            "{} already accepts `{}`: nothing to upload.",
            t.connect,
            auth.key.display()
        ));
        return Ok(UploadDone::default());
    }
    if let Some(p) = t.provider.as_ref().filter(|p| p.api.is_some())
        && wants_api(ctx, p, tokens)?
    {
        let both = sign && p.api.as_ref().is_some_and(|a| api::one_key_list(a.kind));
        let req = ApiUpload {
            key: auth.key.clone(),
            usage: if both { KeyUse::Signing } else { KeyUse::Auth },
            token: tokens.clone(),
        };
        let (_, account) = upload_with_account(ctx, p, &req)?;
        // The provider may take a moment to hand the key to its SSH servers.
        for _ in 0..10 {
            if accepted(ctx, t, auth, host_key, files)? {
                ctx.ui
                    .info(&format!("{} accepted `{}`.", t.connect, auth.key.display()));
                return Ok(UploadDone {
                    added: true,
                    through_api: true,
                    account,
                });
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        return Err(Error::new(
            ErrorKind::Auth,
            format!(
                "{} does not accept `{}` although {} took it",
                t.connect,
                auth.key.display(),
                p.name
            ),
        )
        .hint("the SSH host may not be the one of this account: check the repository URL, then run `keyclone init` again"));
    }
    upload_by_hand(ctx, t, copy, auth, host_key, files).map(|added| UploadDone {
        added,
        ..UploadDone::default()
    })
}

/// Whether to add the key through the API: yes with a token at hand; on a terminal, when the
/// user picks it; no otherwise (the steps are shown, as before).
pub(crate) fn wants_api(ctx: &mut Ctx, p: &Provider, tokens: &TokenOptions) -> Result<bool> {
    if token::at_hand(ctx, p, tokens) {
        return Ok(true);
    }
    if !ctx.ui.interactive() || ctx.ui.json() {
        return Ok(false);
    }
    let login = if token::device_configured(p) {
        "log in with a code, or give a token"
    } else {
        "give a token"
    };
    let items = vec![
        format!("keyclone adds it through the {} API ({login})", p.name),
        "I add it myself on the web page (keyclone shows the key and the steps)".to_owned(),
    ];
    Ok(ctx.ui.prompter().select(
        &format!(
            "The key is not on your {} account yet. How should it get there?",
            p.name
        ),
        &items,
        0,
    )? == 0)
}

fn upload_by_hand(
    ctx: &mut Ctx,
    t: &Target,
    copy: bool,
    auth: &Auth,
    host_key: &PublicKey,
    files: &[KnownHosts],
) -> Result<bool> {
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

/// What [`upload`] adds: the key (private or `.pub` path), what for, where the token comes from.
#[derive(Debug, Clone)]
pub(crate) struct ApiUpload {
    pub key: std::path::PathBuf,
    pub usage: KeyUse,
    pub token: TokenOptions,
}

/// Adds the public key to the account through the provider's API (for authentication or for
/// signing: `usage`), with a token from [`token::obtain`]. A key already on this account is
/// done; every refusal is an error that says why and the next command.
pub(crate) fn upload(ctx: &mut Ctx, p: &Provider, req: &ApiUpload) -> Result<Uploaded> {
    upload_with_account(ctx, p, req).map(|(u, _)| u)
}

/// [`upload`], and the account's name and e-mail when the API gives them (one more request
/// with the same token; its failure only means no identity is offered).
pub(crate) fn upload_with_account(
    ctx: &mut Ctx,
    p: &Provider,
    req: &ApiUpload,
) -> Result<(Uploaded, Option<api::Account>)> {
    let info = token::api_of(p)?.clone();
    if req.usage == KeyUse::Signing && info.kind == api::ApiKind::Bitbucket {
        return Err(Error::new(
            ErrorKind::Refused,
            format!("{} has no API for signing keys", p.name),
        ));
    }
    let (pk, _) = crate::ssh::key::read_public(&req.key)?;
    p.check_key_type(&pk.algorithm(), &crate::ssh::key::pair_paths(&req.key).0)?;
    let line = pk
        .to_openssh()
        .map_err(|e| Error::internal("could not encode the public key").with_source(e))?;
    let material = api::material(&line);
    let title = pubkey::title_of(ctx, &pk);
    let tok = token::obtain(ctx, p, req.usage, &req.token)?;
    let client = crate::http::Client::new(crate::http::Timeouts::default());
    let new = NewKey {
        key: &material,
        title: &title,
        usage: req.usage,
    };
    let credential = tok.credential(info.kind);
    let outcome = api::upload(&client, &info, &credential, &new).map_err(|e| tok.redact(e))?;
    let account = || {
        api::identity(&client, &info, &credential)
            .ok()
            .and_then(std::result::Result::ok)
    };
    match outcome {
        Ok(u) => {
            let what = api::usage_label(info.kind, req.usage);
            ctx.ui.info(&match u {
                Uploaded::Added => format!(
                    "Added `{}` to your {} account as {what} (title \"{title}\").",
                    req.key.display(),
                    p.name
                ),
                Uploaded::AlreadyThere => format!(
                    "Your {} account already has `{}` as {what}: nothing to upload.",
                    p.name,
                    req.key.display()
                ),
            });
            Ok((u, account()))
        }
        Err(f) => Err(tok.redact(upload_error(p, &info, &tok, req, &f))),
    }
}

/// The error for a refused upload: what happened, why, and the next command.
fn upload_error(
    p: &Provider,
    info: &api::ApiInfo,
    tok: &Token,
    req: &ApiUpload,
    f: &Failure,
) -> Error {
    let scope = token::scope_for(info, req.usage);
    let retry = format!(
        "then run `keyclone pubkey --upload --provider {} --token-file FILE` (the token alone in FILE, mode 0600)",
        p.id
    );
    let new_token = match token::token_page(info, &scope) {
        Some(page) => format!("make a token with the `{scope}` scope at {page}, {retry}"),
        None => format!("make a token with the `{scope}` scope, {retry}"),
    };
    let key = req.key.display();
    match f {
        Failure::BadToken(m) => Error::new(
            ErrorKind::Auth,
            format!(
                "{} refused {} ({}): the token is wrong, expired or revoked, or it is a token of another host",
                p.name,
                tok.source,
                if m.is_empty() { "401" } else { m }
            ),
        )
        .hint(new_token),
        Failure::MissingScope(_) => Error::new(
            ErrorKind::Auth,
            format!(
                "{} did not let {} add keys: the token lacks the `{scope}` scope",
                p.name, tok.source
            ),
        )
        .hint(new_token),
        Failure::Taken => Error::new(
            ErrorKind::Refused,
            format!(
                "{} refused `{key}`: the key is already in use on another account (a key belongs to one account only)",
                p.name
            ),
        )
        .hint(format!(
            "remove it from the other account, or make a key of its own for this one: `keyclone keygen --provider {} --key ~/.ssh/id_{}`",
            p.id, p.id
        )),
        Failure::OtherUsage(has) => Error::new(
            ErrorKind::Refused,
            format!(
                "your {} account has `{key}` already, but for `{has}` only, and {} cannot change what a key is for",
                p.name, p.name
            ),
        )
        .hint(format!(
            "remove the key on {}'s SSH keys page, then run `keyclone pubkey --upload{} --provider {}`: it is added again for {}",
            p.name,
            if req.usage == KeyUse::Signing { " --sign" } else { "" },
            p.id,
            if req.usage == KeyUse::Signing { "logging in and signing" } else { "logging in" }
        )),
        Failure::Other(s, m) => Error::new(
            ErrorKind::Refused,
            format!("{} refused `{key}` ({s}: {m})", p.name),
        )
        .hint(format!(
            "add it on the web page instead: `keyclone pubkey --provider {}` shows the key and the steps",
            p.id
        )),
        other => token::failure_error(p, "add the key", other),
    }
}
