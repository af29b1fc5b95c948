//! The providers' key APIs: adding a public key to the account a token belongs to (for
//! authentication or for commit signing), and the account's name and e-mail for git's identity.
//!
//! Each provider's module holds pure request builders and answer classifiers (unit tested over
//! constructed answers); [`upload`] and [`identity`] drive them through [`crate::http::Client`]
//! (https only, same-origin redirects only, bounded answers). The answers are hostile input:
//! only the fields named here are read, and a message quotes at most a short, sanitized piece of
//! what the server said. The token travels in the `Authorization` header of a request to the
//! provider's API host and nowhere else.
//!
//! Domain code: no printing, no prompting. This module reaches nothing of `providers` above it:
//! the provider table holds an [`ApiInfo`].

pub mod bitbucket;
pub mod device;
pub mod gitea;
pub mod github;
pub mod gitlab;

use serde::Serialize;
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::http::{Client, Credential, Method, Request, Response};

/// Which API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiKind {
    Github,
    Gitlab,
    Gitea,
    Bitbucket,
}

/// What an uploaded key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyUse {
    /// Logging in over SSH (clone, fetch, push).
    Auth,
    /// Verifying commit and tag signatures.
    Signing,
}

/// The OAuth device flow's endpoints (RFC 8628) and the client id an organisation registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceFlow {
    /// Where the device code is asked for (GitHub `login/device/code`, GitLab
    /// `oauth/authorize_device`).
    pub code_url: String,
    /// Where the token is polled for (GitHub `login/oauth/access_token`, GitLab `oauth/token`).
    pub token_url: String,
    /// The OAuth application's client id; keyclone ships none.
    pub client_id: Option<String>,
}

/// A provider's key API, as the provider table holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiInfo {
    pub kind: ApiKind,
    /// `https://api.github.com`, `https://HOST/api/v3`, `https://gitlab.com/api/v4`, ...
    pub base: String,
    /// The environment variables a token is read from, the first set one wins.
    pub token_env: Vec<String>,
    /// The page where a token is made (with the scope pre-selected where the provider can).
    pub token_page: Option<String>,
    /// The scope (or permission) the token needs, as the provider names it.
    pub scope: String,
    /// The device flow, where the provider has one.
    pub device: Option<DeviceFlow>,
}

/// What became of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Uploaded {
    /// The key is now on the account.
    Added,
    /// The key was already on this account: nothing to do.
    AlreadyThere,
}

/// The account's name and e-mail, for git's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Account {
    pub login: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// Why a request to the API failed, decided from the status, the headers and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 401: the token is wrong, expired or revoked, or is a token of another host.
    BadToken(String),
    /// The token lacks the scope (GitHub answers 404, GitLab and Gitea 403).
    MissingScope(String),
    /// The key is taken, by this or another account (decided by listing the account's keys).
    Taken,
    /// The key is on this account, but for another use than asked (GitLab's `usage_type`,
    /// named here: `auth` when a signing key was asked, `signing` when a login key was).
    OtherUsage(String),
    /// Rate limited; the seconds to wait when the server said.
    RateLimited(Option<u64>),
    /// 5xx.
    Server(u16),
    /// Not the API: HTML, no JSON, or a status the API does not answer.
    NotApi(u16, String),
    /// Any other refusal, with what the server said.
    Other(u16, String),
}

/// Whether the provider keeps login and signing keys in one list, a key in it once (GitLab with
/// `usage_type`, Gitea): there a key for both uses is added once, for both.
pub fn one_key_list(kind: ApiKind) -> bool {
    matches!(kind, ApiKind::Gitlab | ApiKind::Gitea)
}

/// What an upload of `usage` makes the key, for a message: "an SSH key", "a signing key", or
/// where one list serves both, "an SSH key for logging in and signing".
pub fn usage_label(kind: ApiKind, usage: KeyUse) -> &'static str {
    match (usage, one_key_list(kind)) {
        (KeyUse::Auth, _) => "an SSH key",
        (KeyUse::Signing, false) => "a signing key",
        (KeyUse::Signing, true) => "an SSH key for logging in and signing",
    }
}

/// The key line and title of an upload.
#[derive(Debug, Clone)]
pub struct NewKey<'a> {
    /// `type base64` (no comment).
    pub key: &'a str,
    pub title: &'a str,
    pub usage: KeyUse,
}

/// `base/path`, `path` relative to the API base (which may carry a path, `/api/v4`).
pub fn endpoint(base: &str, path: &str) -> Result<Url> {
    let base = base.trim_end_matches('/');
    Url::parse(&format!("{base}/{}", path.trim_start_matches('/'))).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("the API address `{base}` is not a URL: {e}"),
        )
        .hint("fix `api-base` in keyclone's config file")
    })
}

/// At most 200 printable characters of what a server said, for a message.
/// Unicode's invisible format characters that reorder or hide text on a terminal (bidi
/// overrides and isolates, zero-width characters, the BOM).
fn is_format(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

pub fn sanitized(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_control() || is_format(c) {
                ' '
            } else {
                c
            }
        })
        .take(200)
        .collect();
    clean.trim().to_string()
}

/// The seconds a rate-limited answer asks to wait (`Retry-After`, or GitHub's
/// `x-ratelimit-reset` as a Unix time against `now`).
pub fn retry_after(resp: &Response, now: u64) -> Option<u64> {
    if let Some(s) = resp
        .header("retry-after")
        .and_then(|v| v.trim().parse().ok())
    {
        return Some(s);
    }
    resp.header("x-ratelimit-reset")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|reset| reset.saturating_sub(now))
}

/// Whether the answer says the rate limit is spent.
pub fn rate_limited(resp: &Response) -> bool {
    resp.status == 429
        || (resp.status == 403
            && (resp.header("x-ratelimit-remaining") == Some("0")
                || resp.header("retry-after").is_some()))
}

/// What every provider's answer shares: rate limits, 5xx, non-JSON bodies, 401.
pub fn common_failure(resp: &Response, now: u64) -> Option<Failure> {
    if rate_limited(resp) {
        return Some(Failure::RateLimited(retry_after(resp, now)));
    }
    if resp.status >= 500 {
        return Some(Failure::Server(resp.status));
    }
    if !resp.is_json() {
        let kind = resp.header("content-type").unwrap_or("no content type");
        return Some(Failure::NotApi(resp.status, sanitized(kind)));
    }
    if resp.status == 401 {
        return Some(Failure::BadToken(message_of(&resp.body)));
    }
    None
}

/// The `message` (or `error_description`, `error.message`, `error`) of a JSON error body.
pub fn message_of(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let pick = |v: &serde_json::Value| -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    let found = v
        .get("message")
        .and_then(pick)
        .or_else(|| v.get("error_description").and_then(pick))
        .or_else(|| v.pointer("/error/message").and_then(pick))
        .or_else(|| v.get("error").and_then(pick));
    sanitized(&found.unwrap_or_default())
}

/// The `type base64` of a key line, for comparing keys.
pub fn material(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The entry of a JSON list of keys (a list, or Bitbucket's page with `values`) whose `field`
/// holds `key`'s material.
pub fn list_entry(body: &[u8], field: &str, key: &str) -> Option<serde_json::Value> {
    let want = material(key);
    let v = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    let items = match v {
        serde_json::Value::Array(items) => items,
        mut page => match page.get_mut("values").map(serde_json::Value::take) {
            Some(serde_json::Value::Array(items)) => items,
            _ => return None,
        },
    };
    items.into_iter().find(|item| {
        item.get(field)
            .and_then(|k| k.as_str())
            .is_some_and(|k| material(k) == want)
    })
}

/// The header a token travels in, per API.
pub fn credential(kind: ApiKind, token: &str, user: Option<&str>) -> Credential {
    match (kind, user) {
        (ApiKind::Bitbucket, Some(email)) => Credential::basic(email, token),
        (ApiKind::Gitea, _) => Credential::token(token),
        _ => Credential::bearer(token),
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn send(client: &Client, req: Request) -> Result<Response> {
    client.send(&req.limit(256 * 1024))
}

/// `base` and the path `segments`, each escaped as one segment (an account uuid's braces), with
/// `query`.
pub fn endpoint_of(base: &str, segments: &[&str], query: Option<&str>) -> Result<Url> {
    let mut url = endpoint(base, "")?;
    url.path_segments_mut()
        .map_err(|()| {
            Error::new(
                ErrorKind::Config,
                format!("the API address `{base}` cannot take a path"),
            )
            .hint("fix `api-base` in keyclone's config file")
        })?
        .pop_if_empty()
        .extend(segments);
    url.set_query(query);
    Ok(url)
}

/// The one request shape of every key API: `method` on `url` with the token, asking for JSON
/// (GitHub's media type and API version for GitHub), with `body` as JSON when there is one.
pub fn json_request(
    kind: ApiKind,
    method: Method,
    url: Url,
    auth: &Credential,
    body: Option<&serde_json::Value>,
) -> Request {
    let req = Request::new(method, url).auth(auth.clone());
    let req = match kind {
        ApiKind::Github => req
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28"),
        ApiKind::Gitlab | ApiKind::Gitea | ApiKind::Bitbucket => {
            req.header("Accept", "application/json")
        }
    };
    match body {
        Some(b) => req.json(b),
        None => req,
    }
}

/// [`json_request`] for a `POST` of `body`.
pub fn json_post(kind: ApiKind, url: Url, auth: &Credential, body: &serde_json::Value) -> Request {
    json_request(kind, Method::Post, url, auth, Some(body))
}

/// [`json_request`] for a `GET` without a body.
pub fn json_get(kind: ApiKind, url: Url, auth: &Credential) -> Request {
    json_request(kind, Method::Get, url, auth, None)
}

/// The answer to an upload: what every API shares ([`common_failure`], 200/201 added), then the
/// provider's own reading of a refusal: `refusal(status, the server's message, the body)`.
pub fn classify_upload(
    resp: &Response,
    now: u64,
    refusal: impl FnOnce(u16, String, &[u8]) -> Failure,
) -> std::result::Result<Uploaded, Failure> {
    if let Some(f) = common_failure(resp, now) {
        return Err(f);
    }
    match resp.status {
        200 | 201 => Ok(Uploaded::Added),
        s => Err(refusal(s, message_of(&resp.body), &resp.body)),
    }
}

/// How a provider's answer to an upload is read.
type Classify = fn(&Response, u64) -> std::result::Result<Uploaded, Failure>;

/// Adds the key to the account `auth` belongs to. A key already on this account is
/// [`Uploaded::AlreadyThere`]; every refusal is a [`Failure`] (turned into an error by the
/// caller, who knows the provider's name, token page and the next command).
pub fn upload(
    client: &Client,
    api: &ApiInfo,
    auth: &Credential,
    key: &NewKey<'_>,
) -> Result<std::result::Result<Uploaded, Failure>> {
    let now = now();
    let base = &api.base;
    let (add, list, classify): (Request, Request, Classify) = match api.kind {
        ApiKind::Github => (
            github::add_key(base, auth, key)?,
            github::list_keys(base, auth, key.usage)?,
            github::classify_add,
        ),
        ApiKind::Gitlab => (
            gitlab::add_key(base, auth, key)?,
            gitlab::list_keys(base, auth)?,
            gitlab::classify_add,
        ),
        ApiKind::Gitea => (
            gitea::add_key(base, auth, key)?,
            gitea::list_keys(base, auth)?,
            gitea::classify_add,
        ),
        ApiKind::Bitbucket => {
            let me = send(client, bitbucket::whoami(base, auth)?)?;
            let uuid = match bitbucket::classify_whoami(&me, now) {
                Ok(u) => u,
                Err(f) => return Ok(Err(f)),
            };
            (
                bitbucket::add_key(base, auth, &uuid, key)?,
                bitbucket::list_keys(base, auth, &uuid)?,
                bitbucket::classify_add,
            )
        }
    };
    match classify(&send(client, add)?, now) {
        Err(Failure::Taken) => Ok(taken(api.kind, &send(client, list)?, key, now)),
        other => Ok(other),
    }
}

/// After a "taken" answer: on this account (for this use) is done, elsewhere is a refusal.
fn taken(
    kind: ApiKind,
    list: &Response,
    key: &NewKey<'_>,
    now: u64,
) -> std::result::Result<Uploaded, Failure> {
    if let Some(f) = common_failure(list, now) {
        return Err(f);
    }
    let found = (200..300)
        .contains(&list.status)
        .then(|| list_entry(&list.body, "key", key.key))
        .flatten();
    match found {
        None => Err(Failure::Taken),
        Some(entry) => match kind {
            ApiKind::Gitlab => gitlab::usage_fits(&entry, key.usage),
            ApiKind::Github | ApiKind::Gitea | ApiKind::Bitbucket => Ok(Uploaded::AlreadyThere),
        },
    }
}

/// The account's login, name and e-mail (what the API shows the token's owner).
pub fn identity(
    client: &Client,
    api: &ApiInfo,
    auth: &Credential,
) -> Result<std::result::Result<Account, Failure>> {
    let req = json_get(api.kind, endpoint(&api.base, "user")?, auth);
    let resp = send(client, req)?;
    if let Some(f) = common_failure(&resp, now()) {
        return Ok(Err(f));
    }
    if resp.status != 200 {
        return Ok(Err(Failure::Other(resp.status, message_of(&resp.body))));
    }
    Ok(Ok(account_of(api.kind, &resp.body)))
}

/// The account fields of a `GET /user` answer, per API.
pub fn account_of(kind: ApiKind, body: &[u8]) -> Account {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(sanitized)
            .filter(|x| !x.is_empty())
    };
    match kind {
        ApiKind::Github => Account {
            login: s("login"),
            name: s("name"),
            email: s("email"),
        },
        ApiKind::Gitlab => Account {
            login: s("username"),
            name: s("name"),
            email: s("commit_email")
                .or_else(|| s("public_email"))
                .or_else(|| s("email")),
        },
        ApiKind::Gitea => Account {
            login: s("login"),
            name: s("full_name"),
            email: s("email"),
        },
        ApiKind::Bitbucket => Account {
            login: s("nickname"),
            name: s("display_name"),
            email: None,
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An answer as a server would send it.
    pub(crate) fn answer(
        status: u16,
        content_type: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut h: Vec<(String, String)> = vec![("content-type".into(), content_type.into())];
        h.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Response::for_tests(
            status,
            Url::parse("https://api.example/x").unwrap(),
            h,
            body.as_bytes().to_vec(),
        )
    }

    pub(crate) fn json(status: u16, body: &str) -> Response {
        answer(status, "application/json; charset=utf-8", body, &[])
    }

    #[test]
    fn endpoints_keep_the_base_path() {
        assert_eq!(
            endpoint("https://h/api/v4/", "/user/keys")
                .unwrap()
                .as_str(),
            "https://h/api/v4/user/keys"
        );
        assert!(endpoint("not a url", "x").is_err());
        assert_eq!(
            endpoint_of(
                "https://h/2.0",
                &["users", "{a-1}", "ssh-keys"],
                Some("pagelen=100")
            )
            .unwrap()
            .as_str(),
            "https://h/2.0/users/%7Ba-1%7D/ssh-keys?pagelen=100"
        );
        assert_eq!(
            endpoint_of("https://h/api/v4/", &["user", "keys"], None)
                .unwrap()
                .as_str(),
            "https://h/api/v4/user/keys"
        );
    }

    #[test]
    fn rate_limits_5xx_html_and_401_are_told_apart() {
        let limited = answer(
            403,
            "application/json",
            "{}",
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1060"),
            ],
        );
        assert_eq!(
            common_failure(&limited, 1000),
            Some(Failure::RateLimited(Some(60)))
        );
        let retry = answer(429, "application/json", "{}", &[("retry-after", "7")]);
        assert_eq!(
            common_failure(&retry, 0),
            Some(Failure::RateLimited(Some(7)))
        );
        assert_eq!(
            common_failure(&json(502, "{}"), 0),
            Some(Failure::Server(502))
        );
        let html = answer(200, "text/html", "<html>login</html>", &[]);
        assert!(
            matches!(common_failure(&html, 0), Some(Failure::NotApi(200, t)) if t == "text/html")
        );
        assert_eq!(
            common_failure(&json(401, r#"{"message":"Bad credentials"}"#), 0),
            Some(Failure::BadToken("Bad credentials".into()))
        );
        assert_eq!(common_failure(&json(201, "{}"), 0), None);
    }

    #[test]
    fn messages_from_servers_are_short_and_printable() {
        let long = format!(r#"{{"message":"a\u001b[31mb{}"}}"#, "x".repeat(500));
        let m = message_of(long.as_bytes());
        assert!(m.len() <= 200 && !m.contains('\u{1b}'), "{m}");
        assert_eq!(message_of(br#"{"error":{"message":"nope"}}"#), "nope");
        assert_eq!(
            message_of(br#"{"error":"invalid_token","error_description":"Token is expired"}"#),
            "Token is expired"
        );
        assert_eq!(message_of(b"<html>"), "");
    }

    #[test]
    fn key_lists_are_compared_by_material_not_comment() {
        let body =
            br#"[{"id":1,"key":"ssh-ed25519 AAAAone"},{"id":2,"key":"ssh-ed25519 AAAAtwo title"}]"#;
        let two = list_entry(body, "key", "ssh-ed25519 AAAAtwo me@box").unwrap();
        assert_eq!(two["id"], 2);
        assert!(list_entry(body, "key", "ssh-ed25519 AAAAthree").is_none());
        let paged = br#"{"values":[{"key":"ssh-rsa AAAAr"}]}"#;
        assert!(list_entry(paged, "key", "ssh-rsa AAAAr").is_some());
        assert!(list_entry(br#"{"values":"x"}"#, "key", "ssh-rsa AAAAr").is_none());
    }

    #[test]
    fn accounts_give_name_and_email_per_api() {
        let gh = account_of(
            ApiKind::Github,
            br#"{"login":"ada","name":"Ada L","email":null}"#,
        );
        assert_eq!((gh.name.as_deref(), gh.email), (Some("Ada L"), None));
        let gl = account_of(
            ApiKind::Gitlab,
            br#"{"username":"ada","name":"Ada","public_email":"","commit_email":"ada@x"}"#,
        );
        assert_eq!(gl.email.as_deref(), Some("ada@x"));
        let gt = account_of(
            ApiKind::Gitea,
            br#"{"login":"ada","full_name":"Ada G","email":"a@g"}"#,
        );
        assert_eq!(gt.name.as_deref(), Some("Ada G"));
    }

    #[test]
    fn each_api_sends_the_token_its_way() {
        assert_eq!(
            format!("{:?}", credential(ApiKind::Github, "t", None)),
            "Credential(<redacted>)"
        );
        assert!(credential(ApiKind::Gitea, "t", None).is_scheme("token"));
        assert!(credential(ApiKind::Gitlab, "t", None).is_scheme("Bearer"));
        assert!(credential(ApiKind::Bitbucket, "t", Some("a@b")).is_scheme("Basic"));
    }
}
