//! HTTPS, for the providers' APIs and LFS servers: one client with keyclone's rules, so no
//! caller can forget one.
//!
//! - **HTTPS only**, verified against this machine's roots (OpenSSL's, through native-tls:
//!   `SSL_CERT_FILE`/`SSL_CERT_DIR` are honoured as OpenSSL honours them). A URL with a user or
//!   password in it is refused: credentials travel in a header only.
//! - **No redirect is followed by the library.** [`Client::send`] follows at most
//!   [`MAX_REDIRECTS`] redirects to the *same origin* (scheme, host and port); a redirect to
//!   another origin is refused, so a token never leaves the host it was meant for.
//! - **Bounded**: every answer read into memory is limited ([`Request::limit`], 1 MiB by
//!   default); headers by ureq's limit; connect and whole-request timeouts, and a stall timeout
//!   on every read (a download's body too: a server that stops sending mid-body fails after
//!   [`Timeouts::stall`], never hangs); a download is a reader the caller bounds by the size it
//!   expects ([`Client::open`]).
//! - **Secrets**: a credential is a [`Credential`], whose `Debug` shows no byte of it; keyclone's
//!   errors name the method and the URL, never a header.
//!
//! Domain code: no printing, no prompting.

use std::fmt;
use std::io::Read;
use std::time::Duration;

use url::Url;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// How many same-origin redirects [`Client::send`] follows.
pub const MAX_REDIRECTS: usize = 3;
/// What [`Client::send`] reads into memory unless the request says otherwise.
pub const DEFAULT_LIMIT: u64 = 1024 * 1024;

/// The client's waits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Opening the connection, TLS included.
    pub connect: Duration,
    /// A whole request of [`Client::send`], answer read. `open` uses it for the headers only.
    pub request: Duration,
    /// The longest wait for any one read from the connection: a server that stops sending
    /// mid-answer (a download's body included) fails after this, however long the body.
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(15),
            request: Duration::from_secs(60),
            stall: Duration::from_secs(30),
        }
    }
}

/// The value of an `Authorization` header (`Bearer …`, `token …`, `Basic …`): zeroed when
/// dropped, shown as `Credential(<redacted>)`.
#[derive(Clone)]
pub struct Credential(Zeroizing<String>);

impl Credential {
    /// `Authorization: Bearer TOKEN` (GitHub, GitLab, Gitea, Bitbucket API tokens, OAuth).
    pub fn bearer(token: &str) -> Credential {
        Credential(Zeroizing::new(format!("Bearer {token}")))
    }
    /// `Authorization: token TOKEN` (Gitea's and GitHub's older form).
    pub fn token(token: &str) -> Credential {
        Credential(Zeroizing::new(format!("token {token}")))
    }
    /// `Authorization: Basic base64(USER:SECRET)` (Bitbucket with an e-mail and API token).
    pub fn basic(user: &str, secret: &str) -> Credential {
        use base64ct::Encoding;
        let pair = Zeroizing::new(format!("{user}:{secret}"));
        let encoded = Zeroizing::new(base64ct::Base64::encode_string(pair.as_bytes()));
        Credential(Zeroizing::new(format!("Basic {}", encoded.as_str())))
    }
    /// A header value handed over whole (an LFS server's `Authorization` from
    /// `git-lfs-authenticate`).
    pub fn raw(value: &str) -> Credential {
        Credential(Zeroizing::new(value.to_string()))
    }
    fn value(&self) -> &str {
        &self.0
    }
    /// Whether the header value starts with this scheme (`Bearer`, `token`, `Basic`).
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.0.split(' ').next() == Some(scheme)
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// The methods keyclone uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// One request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    /// The `Authorization` header, if any.
    pub auth: Option<Credential>,
    /// Other headers (`Accept`, `X-GitHub-Api-Version`, …): never secrets.
    pub headers: Vec<(String, String)>,
    /// A body and its content type.
    pub body: Option<(String, Vec<u8>)>,
    /// The most [`Client::send`] reads of the answer.
    pub limit: u64,
}

impl Request {
    pub fn new(method: Method, url: Url) -> Request {
        Request {
            method,
            url,
            auth: None,
            headers: Vec::new(),
            body: None,
            limit: DEFAULT_LIMIT,
        }
    }
    pub fn get(url: Url) -> Request {
        Request::new(Method::Get, url)
    }
    pub fn auth(mut self, credential: Credential) -> Request {
        self.auth = Some(credential);
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    /// A JSON body (`Content-Type: application/json`).
    pub fn json(mut self, value: &serde_json::Value) -> Request {
        self.body = Some((
            "application/json".to_string(),
            value.to_string().into_bytes(),
        ));
        self
    }
    /// A form body (`application/x-www-form-urlencoded`), for OAuth's device flow.
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Request {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.body = Some((
            "application/x-www-form-urlencoded".to_string(),
            body.into_bytes(),
        ));
        self
    }
    pub fn limit(mut self, limit: u64) -> Request {
        self.limit = limit;
        self
    }
}

/// An answer read whole.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// The URL that answered (after same-origin redirects).
    pub url: Url,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// An answer made up by a test.
    #[cfg(test)]
    pub(crate) fn for_tests(
        status: u16,
        url: Url,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Response {
        Response {
            status,
            url,
            headers,
            body,
        }
    }
    /// A header's value (the first one, name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
    /// Whether the body says it is JSON (`application/json`, `application/vnd.git-lfs+json`,
    /// any `+json`).
    pub fn is_json(&self) -> bool {
        is_json_type(self.header("content-type").unwrap_or(""))
    }
    /// The body parsed as JSON; an error that says what came instead (an HTML login page, a
    /// proxy's error page) when it is not.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        if !self.is_json() {
            let kind = self.header("content-type").unwrap_or("no content type");
            return Err(Error::new(
                ErrorKind::Network,
                format!(
                    "{} answered {} with {kind}, not JSON: it is not the API keyclone expected",
                    origin_of(&self.url),
                    self.status
                ),
            )
            .hint("check the provider's API address (`api_base` in keyclone's config), or a proxy between you and it"));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::new(
                ErrorKind::Network,
                format!(
                    "{} answered {} with JSON keyclone cannot read: {e}",
                    origin_of(&self.url),
                    self.status
                ),
            )
        })
    }
}

/// An answer whose body is read by the caller (a download).
pub struct Download {
    pub status: u16,
    headers: Vec<(String, String)>,
    /// The body, at most the limit given to [`Client::open`]; reading past it is an error.
    pub body: Box<dyn Read + Send>,
}

impl Download {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A download's body whose stall (no byte for [`Timeouts::stall`]) is an
/// `io::ErrorKind::TimedOut` error that says so, not ureq's inner error.
struct Stalls<R> {
    inner: R,
    stall: Duration,
}

impl<R: Read> Read for Stalls<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let timed_out = e.kind() == std::io::ErrorKind::TimedOut
                || e.get_ref()
                    .and_then(|inner| inner.downcast_ref::<ureq::Error>())
                    .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)));
            if timed_out {
                crate::error::stalled(self.stall)
            } else {
                e
            }
        })
    }
}

/// The HTTPS client.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    timeouts: Timeouts,
}

impl Client {
    pub fn new(timeouts: Timeouts) -> Client {
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .https_only(true)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .timeout_connect(Some(timeouts.connect))
            .timeout_per_read(Some(timeouts.stall))
            .user_agent(concat!("keyclone/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent: config.into(),
            timeouts,
        }
    }

    /// Sends the request and reads the answer (at most `req.limit` bytes), following up to
    /// [`MAX_REDIRECTS`] redirects to the same origin. Any status is an `Ok`: the caller
    /// decides what 404 or 422 means for its API.
    pub fn send(&self, req: &Request) -> Result<Response> {
        check_url(&req.url)?;
        let mut req = req.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut answer = self.call(&req, Some(self.timeouts.request))?;
            let status = answer.status().as_u16();
            if let Some(next) = redirect_target(&req.url, status, &answer) {
                let next = next?;
                if status == 303 {
                    req.method = Method::Get;
                    req.body = None;
                }
                req.url = next;
                continue;
            }
            let headers = headers_of(&answer);
            let body = answer
                .body_mut()
                .with_config()
                .limit(req.limit)
                .read_to_vec()
                .map_err(|e| transport_error(&req, e))?;
            return Ok(Response {
                status,
                url: req.url,
                headers,
                body,
            });
        }
        Err(Error::new(
            ErrorKind::Network,
            format!(
                "{} {} redirected more than {MAX_REDIRECTS} times",
                req.method.as_str(),
                origin_of(&req.url)
            ),
        ))
    }

    /// Sends the request and hands back the body as a reader of at most `limit` bytes (reading
    /// more is an error). No redirect is followed: a 3xx is returned as it came.
    pub fn open(&self, req: &Request, limit: u64) -> Result<Download> {
        check_url(&req.url)?;
        let answer = self.call(req, None)?;
        let status = answer.status().as_u16();
        let headers = headers_of(&answer);
        let body = answer.into_body().into_with_config().limit(limit).reader();
        Ok(Download {
            status,
            headers,
            body: Box::new(Stalls {
                inner: body,
                stall: self.timeouts.stall,
            }),
        })
    }

    fn call(
        &self,
        req: &Request,
        whole: Option<Duration>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let mut builder = ureq::http::Request::builder()
            .method(req.method.as_str())
            .uri(req.url.as_str());
        if let Some(auth) = &req.auth {
            builder = builder.header("Authorization", auth.value());
        }
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let (content_type, body) = match &req.body {
            Some((t, b)) => (Some(t.clone()), b.clone()),
            None => (None, Vec::new()),
        };
        if let Some(t) = content_type {
            builder = builder.header("Content-Type", t);
        }
        let request = builder.body(body).map_err(|e| {
            Error::internal(format!(
                "could not build the request {} {}",
                req.method.as_str(),
                origin_of(&req.url)
            ))
            .with_source(e)
        })?;
        let configured = self
            .agent
            .configure_request(request)
            .timeout_global(whole)
            .build();
        self.agent
            .run(configured)
            .map_err(|e| transport_error(req, e))
    }
}

/// Refuses what keyclone never sends a request to: anything but `https`, no host, a user or
/// password in the URL.
pub fn check_url(url: &Url) -> Result<()> {
    if url.scheme() != "https" {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "refused {}: keyclone talks to APIs over https only",
                origin_of(url)
            ),
        )
        .hint("use the https:// address of the API"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::new(
            ErrorKind::Refused,
            "refused a URL without a host".to_string(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "refused {}: the URL carries a user or password; keyclone sends credentials in a header only",
                origin_of(url)
            ),
        )
        .hint("remove the user and password from the address"));
    }
    Ok(())
}

/// `https://host[:port]`: what keyclone names in messages (never a path, query or user).
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Whether two URLs share scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

fn redirect_target(
    from: &Url,
    status: u16,
    answer: &ureq::http::Response<ureq::Body>,
) -> Option<Result<Url>> {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())?;
    Some(follow(from, location))
}

/// Where a redirect from `from` to `location` leads, or why it is refused.
pub fn follow(from: &Url, location: &str) -> Result<Url> {
    let next = from.join(location).map_err(|_| {
        Error::new(
            ErrorKind::Network,
            format!(
                "{} redirected to an address keyclone cannot read",
                origin_of(from)
            ),
        )
    })?;
    if !same_origin(from, &next) {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "{} redirected to {}: refused, keyclone sends a request with its credentials only to the host it was meant for",
                origin_of(from),
                origin_of(&next)
            ),
        )
        .hint("check the API address in keyclone's config; if the provider moved, configure the new address"));
    }
    check_url(&next)?;
    Ok(next)
}

fn headers_of(answer: &ureq::http::Response<ureq::Body>) -> Vec<(String, String)> {
    answer
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect()
}

fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn is_json_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

fn transport_error(req: &Request, e: ureq::Error) -> Error {
    let what = format!("{} {}", req.method.as_str(), origin_of(&req.url));
    let host = req.url.host_str().unwrap_or("the host").to_string();
    match e {
        ureq::Error::Timeout(_) => Error::new(ErrorKind::Network, format!("{what}: timed out"))
            .hint("check the network (a proxy? HTTPS_PROXY), then run the same command again"),
        ureq::Error::HostNotFound => {
            Error::new(ErrorKind::Network, format!("{what}: {host} was not found (DNS)"))
                .hint("check the host name and this machine's DNS")
        }
        ureq::Error::ConnectionFailed | ureq::Error::Io(_) => Error::new(
            ErrorKind::Network,
            format!("{what}: the connection failed"),
        )
        .hint("check the network (a proxy? HTTPS_PROXY), then run the same command again"),
        ureq::Error::Tls(_) | ureq::Error::NativeTls(_) | ureq::Error::Der(_) => Error::new(
            ErrorKind::Network,
            format!("{what}: the TLS certificate of {host} is not trusted by this machine's roots, or the TLS handshake failed: nothing was sent"),
        )
        .hint("if your network inspects TLS, point SSL_CERT_FILE at its CA bundle; otherwise the server is not who it claims to be"),
        ureq::Error::BodyExceedsLimit(n) => Error::new(
            ErrorKind::Network,
            format!("{what}: the answer is larger than {n} bytes; keyclone stopped reading"),
        ),
        ureq::Error::RequireHttpsOnly(_) => Error::new(
            ErrorKind::Refused,
            format!("{what}: refused a non-https address"),
        ),
        ureq::Error::LargeResponseHeader(..) => Error::new(
            ErrorKind::Network,
            format!("{what}: the answer's headers are too large"),
        ),
        other => Error::new(ErrorKind::Network, format!("{what}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    #[test]
    fn only_https_urls_without_credentials_are_sent() {
        assert!(check_url(&url("https://api.github.com/user/keys")).is_ok());
        for bad in [
            "http://api.github.com/user/keys",
            "ftp://api.github.com/",
            "https://user:pw@api.github.com/",
            "https://user@api.github.com/",
            "file:///etc/passwd",
        ] {
            let e = check_url(&url(bad)).expect_err(bad);
            assert_eq!(e.kind(), ErrorKind::Refused, "{bad}");
            assert!(!e.message().contains("pw"), "{bad}: {}", e.message());
        }
    }

    #[test]
    fn redirects_are_followed_to_the_same_origin_only() {
        let from = url("https://api.example.com/v1/user/keys");
        assert_eq!(
            follow(&from, "/v2/user/keys")
                .expect("same origin")
                .as_str(),
            "https://api.example.com/v2/user/keys"
        );
        assert!(follow(&from, "https://api.example.com/x").is_ok());
        for bad in [
            "https://evil.example.net/steal",
            "https://api.example.com:8443/x",
            "http://api.example.com/x",
            "//evil.example.net/x",
        ] {
            let e = follow(&from, bad).expect_err(bad);
            assert_eq!(e.kind(), ErrorKind::Refused, "{bad}");
        }
    }

    #[test]
    fn messages_name_the_origin_never_the_path_or_user() {
        let u = url("https://api.example.com/user/keys?access_token=SECRET");
        assert_eq!(origin_of(&u), "https://api.example.com");
    }

    #[test]
    fn a_credential_never_shows_in_debug_output() {
        for c in [
            Credential::bearer("ghp_SECRET"),
            Credential::token("SECRET"),
            Credential::basic("me@example.com", "SECRET"),
            Credential::raw("RemoteAuth SECRET"),
        ] {
            let shown = format!("{c:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
            let req = Request::get(url("https://a.example/")).auth(c);
            assert!(!format!("{req:?}").contains("SECRET"));
        }
        assert_eq!(
            Credential::basic("u", "p").value(),
            "Basic dTpw",
            "Basic is base64 of user:secret"
        );
    }

    #[test]
    fn json_content_types_are_recognised() {
        for t in [
            "application/json",
            "application/json; charset=utf-8",
            "application/vnd.git-lfs+json",
            "Application/JSON",
        ] {
            assert!(is_json_type(t), "{t}");
        }
        for t in [
            "text/html",
            "text/html; charset=utf-8",
            "",
            "application/jsonp",
        ] {
            assert!(!is_json_type(t), "{t}");
        }
    }

    #[test]
    fn an_html_answer_is_an_error_that_says_so() {
        let r = Response {
            status: 200,
            url: url("https://api.example.com/user"),
            headers: vec![("content-type".into(), "text/html".into())],
            body: b"<html>login</html>".to_vec(),
        };
        let e = r.json::<serde_json::Value>().expect_err("HTML is not JSON");
        assert!(e.message().contains("text/html"), "{}", e.message());
        assert!(e.message().contains("https://api.example.com"));
    }

    #[test]
    fn a_form_body_is_url_encoded() {
        let r = Request::new(Method::Post, url("https://a.example/login/device/code")).form(&[
            ("client_id", "abc"),
            ("scope", "write:public_key read:user"),
        ]);
        let (t, b) = r.body.expect("a body");
        assert_eq!(t, "application/x-www-form-urlencoded");
        assert_eq!(
            String::from_utf8(b).expect("utf-8"),
            "client_id=abc&scope=write%3Apublic_key+read%3Auser"
        );
    }

    #[test]
    fn a_stalled_download_says_the_server_stopped_sending() {
        struct Stalled;
        impl Read for Stalled {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other(ureq::Error::Timeout(
                    ureq::Timeout::PerRead,
                )))
            }
        }
        let mut r = Stalls {
            inner: Stalled,
            stall: Duration::from_secs(7),
        };
        let e = r.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(
            e.to_string(),
            "the server stopped sending: nothing came for 7 s"
        );
        let mut fine = Stalls {
            inner: &b"ok"[..],
            stall: Duration::from_secs(7),
        };
        let mut buf = [0u8; 4];
        assert_eq!(fine.read(&mut buf).unwrap(), 2);
    }
}
