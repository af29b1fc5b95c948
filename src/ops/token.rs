//! Where a provider API token comes from, and nowhere else: `--token-file FILE`, the provider's
//! environment variable (`GH_TOKEN`/`GITHUB_TOKEN`, `GITLAB_TOKEN`, ..., for a self-hosted
//! provider `token-env` or `KEYCLONE_TOKEN_NAME`), then on a terminal the OAuth device flow
//! (when an OAuth client id is configured for the provider) or a masked prompt that first shows
//! the provider's token page with the scope pre-selected.
//!
//! A [`Token`] is zeroed when dropped and shows as `Token(<redacted>)`; it is used for the
//! requests of this run only: never written to a file, a log, a message or a command line.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{Client, Credential};
use crate::providers::Provider;
use crate::providers::api::device::{self, Poll};
use crate::providers::api::{self, ApiInfo, ApiKind, KeyUse};

use crate::env::BITBUCKET_EMAIL;

/// Where a token came from (for messages: never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Env(String),
    Prompt,
    DeviceFlow,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "the token file `{}`", p.display()),
            Source::Env(v) => write!(f, "`{v}`"),
            Source::Prompt => f.write_str("the token you typed"),
            Source::DeviceFlow => f.write_str("the token of the device login"),
        }
    }
}

/// An API token for one provider, with the user Bitbucket's Basic authentication needs.
pub struct Token {
    secret: Zeroizing<String>,
    pub source: Source,
    /// Bitbucket: the account's e-mail.
    pub user: Option<String>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(<redacted>, from {})", self.source)
    }
}

impl Token {
    /// `e` with every copy of the token in its message and hints masked: an API may echo the
    /// token in the text keyclone quotes from it.
    pub fn redact(&self, e: Error) -> Error {
        let secret: &str = &self.secret;
        if secret.len() < 4
            || (!e.message().contains(secret) && !e.hints().iter().any(|h| h.contains(secret)))
        {
            return e;
        }
        let mask = |t: &str| t.replace(secret, "<token>");
        let mut out = Error::new(e.kind(), mask(e.message()));
        for h in e.hints() {
            out = out.hint(mask(h));
        }
        out
    }

    /// The `Authorization` header for this provider's API.
    pub fn credential(&self, kind: ApiKind) -> Credential {
        api::credential(kind, &self.secret, self.user.as_deref())
    }
}

/// What [`obtain`] may use.
#[derive(Debug, Clone, Default)]
pub struct TokenOptions {
    pub file: Option<PathBuf>,
}

/// The provider's API, or the error saying it has none (Azure DevOps, a plain sshd).
pub fn api_of(p: &Provider) -> Result<&ApiInfo> {
    p.api.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::Refused,
            format!(
                "{} has no public API to add SSH keys: keyclone cannot upload the key for you",
                p.name
            ),
        )
        .hint(format!(
            "add it on the web page: `keyclone pubkey --provider {}` shows the key and the steps",
            p.id
        ))
    })
}

/// The page where a token with `scope` is made.
pub fn token_page(api: &ApiInfo, scope: &str) -> Option<String> {
    api.token_page.as_ref().map(|p| p.replace("{scope}", scope))
}

/// The scope an upload of this kind needs.
pub fn scope_for(api: &ApiInfo, usage: KeyUse) -> String {
    match api.kind {
        ApiKind::Github => api::github::scope(usage).to_string(),
        _ => api.scope.clone(),
    }
}

fn clean(secret: Zeroizing<String>, what: &str) -> Result<Zeroizing<String>> {
    let t = Zeroizing::new(secret.trim().to_string());
    if t.is_empty() {
        return Err(Error::new(
            ErrorKind::Auth,
            format!("{what} holds no token"),
        ));
    }
    // A header value: printable ASCII only (a token with a newline could add a header).
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::new(
            ErrorKind::Auth,
            format!(
                "{what} holds characters no API token has (spaces, control or non-ASCII characters)"
            ),
        )
        .hint("put the token alone on the first line"));
    }
    Ok(t)
}

fn read_file(path: &Path) -> Result<Zeroizing<String>> {
    let (bytes, meta) =
        crate::files::read_bounded_meta(path, crate::files::PASSPHRASE_LIMIT, "token file")
            .map_err(|e| e.hint("check the path given to `--token-file`"))?;
    let bytes = Zeroizing::new(bytes);
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o044 != 0 {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "the token file `{}` can be read by other users (mode {:o}): refused, a token is a password",
                path.display(),
                meta.permissions().mode() & 0o777
            ),
        )
        .hint(format!("run `chmod 600 {}`, then the same command again", path.display())));
    }
    let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
    let first = Zeroizing::new(text.lines().next().unwrap_or("").to_string());
    clean(first, &format!("the token file `{}`", path.display()))
}

/// Whether a token is there without asking: `--token-file`, or the provider's variable.
pub fn at_hand(ctx: &Ctx, p: &Provider, opts: &TokenOptions) -> bool {
    let Some(api) = &p.api else { return false };
    opts.file.is_some()
        || api
            .token_env
            .iter()
            .any(|v| ctx.env.get_str(v).is_some_and(|t| !t.trim().is_empty()))
}

/// Whether the provider's OAuth device flow has a client id.
pub fn device_configured(p: &Provider) -> bool {
    p.api
        .as_ref()
        .and_then(|a| a.device.as_ref())
        .is_some_and(|d| d.client_id.is_some())
}

/// The token for `p`'s API, from the first source that has one.
pub fn obtain(ctx: &mut Ctx, p: &Provider, usage: KeyUse, opts: &TokenOptions) -> Result<Token> {
    let api = api_of(p)?.clone();
    let user = bitbucket_user(ctx, &api)?;
    if let Some(path) = &opts.file {
        return Ok(Token {
            secret: read_file(path)?,
            source: Source::File(path.clone()),
            user,
        });
    }
    for var in &api.token_env {
        if let Some(v) = ctx.env.get_str(var).filter(|v| !v.trim().is_empty()) {
            let secret = clean(Zeroizing::new(v.to_string()), &format!("`{var}`"))?;
            return Ok(Token {
                secret,
                source: Source::Env(var.clone()),
                user,
            });
        }
    }
    let scope = scope_for(&api, usage);
    if !ctx.ui.interactive() {
        return Err(no_token(ctx, p, &api, &scope));
    }
    if let Some(flow) = api.device.clone()
        && let Some(client_id) = flow.client_id.clone()
    {
        let secret = device_login(ctx, p, &flow, &client_id, &scope)?;
        return Ok(Token {
            secret,
            source: Source::DeviceFlow,
            user,
        });
    }
    let page = token_page(&api, &scope);
    ctx.ui.info(&format!(
        "keyclone can add the key to your {} account through its API, with a token that has the `{scope}` scope{}.\nThe token is used for this upload only: it is not saved.",
        p.name,
        page.as_ref().map_or(String::new(), |u| format!(": make one at\n  {u}"))
    ));
    let typed = ctx
        .ui
        .prompter()
        .password(&format!("{} token (input hidden)", p.name))?;
    let secret = clean(Zeroizing::new(typed.expose().to_string()), "the answer")?;
    Ok(Token {
        secret,
        source: Source::Prompt,
        user,
    })
}

fn bitbucket_user(ctx: &mut Ctx, api: &ApiInfo) -> Result<Option<String>> {
    if api.kind != ApiKind::Bitbucket {
        return Ok(None);
    }
    if let Some(e) = ctx.env.get_str(BITBUCKET_EMAIL).filter(|e| !e.is_empty()) {
        return Ok(Some(e.to_string()));
    }
    if !ctx.ui.interactive() {
        return Err(Error::new(
            ErrorKind::NeedsInput,
            "a Bitbucket API token is used with the e-mail of its Atlassian account, and none was given".to_string(),
        )
        .hint(format!("set `{BITBUCKET_EMAIL}` to your account's e-mail")));
    }
    let e = ctx
        .ui
        .prompter()
        .input("E-mail of your Atlassian account", None)?;
    Ok(Some(e.trim().to_string()))
}

fn no_token(ctx: &Ctx, p: &Provider, api: &ApiInfo, scope: &str) -> Error {
    let mut e = Error::new(
        ErrorKind::NeedsInput,
        format!(
            "no {} API token was given, and there is no terminal to ask for one",
            p.name
        ),
    )
    .hint(format!(
        "set {} (a token with the `{scope}` scope), or pass `--token-file FILE` (mode 0600)",
        api.token_env
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    ));
    if let Some(page) = token_page(api, scope) {
        e = e.hint(format!("make a token at {page}"));
    }
    // A hosted provider's token is not sent to another host: say so when one is set.
    if !p.builtin {
        let others: Vec<&str> = ["GH_TOKEN", "GITHUB_TOKEN", "GITLAB_TOKEN", "CODEBERG_TOKEN"]
            .into_iter()
            .filter(|v| ctx.env.is_set(v) && !api.token_env.iter().any(|t| t == v))
            .collect();
        if !others.is_empty() {
            e = e.hint(format!(
                "{} is set, but it holds a token of a hosted provider: keyclone does not send it to {}",
                others.join(", "),
                p.name
            ));
        }
    }
    e
}

/// RFC 8628: ask for a code, show it with the page, poll until the user approves (or denies,
/// or the code expires).
fn device_login(
    ctx: &mut Ctx,
    p: &Provider,
    flow: &api::DeviceFlow,
    client_id: &str,
    scope: &str,
) -> Result<Zeroizing<String>> {
    let client = Client::new(crate::http::Timeouts::default());
    let resp = client.send(&device::start(flow, client_id, scope)?)?;
    let code = device::classify_start(&resp, api::now())
        .map_err(|f| failure_error(p, "start the device login", &f))?;
    ctx.ui.info(&format!(
        "To let keyclone add the key, open\n  {}\nand enter the code {}  (it expires in {} minutes).",
        code.verification_uri_complete.as_deref().unwrap_or(&code.verification_uri),
        code.user_code,
        code.expires_in.div_ceil(60)
    ));
    let deadline = Instant::now() + Duration::from_secs(code.expires_in);
    let mut interval = code.interval;
    loop {
        std::thread::sleep(Duration::from_secs(interval));
        let resp = client.send(&device::poll(flow, client_id, &code)?)?;
        let poll = device::classify_poll(&resp, interval, api::now())
            .map_err(|f| failure_error(p, "finish the device login", &f))?;
        match poll {
            Poll::Token(t) => return Ok(t),
            Poll::Pending if Instant::now() < deadline => {}
            Poll::SlowDown(s) if Instant::now() < deadline => interval = s,
            Poll::Pending | Poll::SlowDown(_) | Poll::Expired => {
                return Err(Error::new(
                    ErrorKind::Auth,
                    format!("the {} device code expired before it was entered", p.name),
                )
                .hint("run the same command again for a new code"));
            }
            Poll::Denied => {
                return Err(Error::new(
                    ErrorKind::Auth,
                    format!("the device login was denied on {}", p.name),
                )
                .hint("run the same command again and approve the request, or give a token (`--token-file FILE`)"));
            }
            Poll::Failed(why) => {
                return Err(Error::new(
                    ErrorKind::Auth,
                    format!("{} refused the device login: {why}", p.name),
                )
                .hint("check the OAuth application (its client id in keyclone's config, and that its device flow is enabled), or give a token (`--token-file FILE`)"));
            }
        }
    }
}

/// A failure of a request that is not the upload itself (device flow), as an error.
pub fn failure_error(p: &Provider, doing: &str, f: &api::Failure) -> Error {
    use api::Failure as F;
    match f {
        F::RateLimited(s) => Error::new(
            ErrorKind::Network,
            format!("{} is rate limiting keyclone: could not {doing}", p.name),
        )
        .hint(match s {
            Some(s) => format!("wait {s} seconds, then run the same command again"),
            None => "wait a few minutes, then run the same command again".into(),
        }),
        F::Server(s) => Error::new(
            ErrorKind::Network,
            format!("{} answered {s} (a server error): could not {doing}", p.name),
        )
        .hint("try again in a few minutes"),
        F::NotApi(s, what) => Error::new(
            ErrorKind::Network,
            format!("{} answered {s} with {what}: not the answer of its API, could not {doing}", p.name),
        )
        .hint("check the provider's API address (`api-base` in keyclone's config), or a proxy between you and it"),
        F::BadToken(m) | F::MissingScope(m) | F::Other(_, m) => Error::new(
            ErrorKind::Auth,
            format!("{} refused to {doing}: {m}", p.name),
        ),
        F::Taken | F::OtherUsage(_) => {
            Error::new(ErrorKind::Refused, format!("{} refused to {doing}", p.name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let t = Token {
            secret: Zeroizing::new("ghp_secret123".into()),
            source: Source::Env("GH_TOKEN".into()),
            user: None,
        };
        let shown = format!("{t:?} {:?}", t.credential(ApiKind::Github));
        assert!(!shown.contains("secret123"), "{shown}");
        assert!(shown.contains("GH_TOKEN"));
    }

    #[test]
    fn a_token_an_api_echoes_is_masked_in_the_error() {
        let t = Token {
            secret: Zeroizing::new("ghp_secret123".into()),
            source: Source::Env("GH_TOKEN".into()),
            user: None,
        };
        let e = Error::new(ErrorKind::Auth, "GitHub said: bad token ghp_secret123")
            .hint("ghp_secret123 is wrong");
        let r = t.redact(e);
        assert_eq!(r.message(), "GitHub said: bad token <token>");
        assert_eq!(r.hints(), ["<token> is wrong"]);
        assert_eq!(r.kind(), ErrorKind::Auth);
    }

    #[test]
    fn a_token_is_one_printable_word() {
        assert_eq!(
            clean(Zeroizing::new("  tok \n".into()), "x")
                .unwrap()
                .as_str(),
            "tok"
        );
        assert!(clean(Zeroizing::new("   ".into()), "x").is_err());
        assert!(clean(Zeroizing::new("a\r\nX-Evil: 1".into()), "x").is_err());
        assert!(clean(Zeroizing::new("tökén".into()), "x").is_err());
    }

    #[test]
    fn the_token_page_has_the_scope_preselected() {
        let reg = crate::providers::Registry::builtin();
        let gh = reg.get("github").unwrap().api.clone().unwrap();
        assert_eq!(
            token_page(&gh, &scope_for(&gh, KeyUse::Signing)).unwrap(),
            "https://github.com/settings/tokens/new?scopes=write:ssh_signing_key&description=keyclone"
        );
        assert!(
            api_of(reg.get("azure-devops").unwrap())
                .unwrap_err()
                .message()
                .contains("no public API")
        );
    }
}
