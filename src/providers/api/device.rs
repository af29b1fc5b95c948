//! The OAuth 2.0 device authorization grant (RFC 8628), as GitHub (`login/device/code`,
//! `login/oauth/access_token`) and GitLab 17.2+ (`oauth/authorize_device`, `oauth/token`) serve
//! it: ask for a device code, show the user the code and the page, poll for the token.
//! The poll answers (RFC 8628 §3.5): `authorization_pending` (poll again), `slow_down` (wait 5 s
//! more, or the interval the answer gives), `expired_token`, `access_denied`.
//! Pure builders and classifiers; the loop (and its waits) is `ops::token`'s.

use serde::Deserialize;
use zeroize::Zeroizing;

use super::{DeviceFlow, Failure, common_failure, sanitized};
use crate::error::{Error, Result};
use crate::http::{Method, Request, Response};

/// RFC 8628's grant type.
pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What the user is shown, and what keyclone polls with.
#[derive(Clone)]
pub struct Code {
    pub device_code: Zeroizing<String>,
    pub user_code: String,
    pub verification_uri: String,
    /// GitLab's page with the code filled in.
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    pub interval: u64,
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Code")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .finish_non_exhaustive()
    }
}

/// One poll's answer.
#[derive(PartialEq, Eq)]
pub enum Poll {
    /// The token (zeroed when dropped).
    Token(Zeroizing<String>),
    Pending,
    /// Wait this many seconds between polls from now on.
    SlowDown(u64),
    Expired,
    Denied,
    /// Any other error (`device_flow_disabled`, `incorrect_client_credentials`, ...).
    Failed(String),
}

impl std::fmt::Debug for Poll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Poll::Token(_) => f.write_str("Token(<redacted>)"),
            Poll::Pending => f.write_str("Pending"),
            Poll::SlowDown(s) => write!(f, "SlowDown({s})"),
            Poll::Expired => f.write_str("Expired"),
            Poll::Denied => f.write_str("Denied"),
            Poll::Failed(e) => write!(f, "Failed({e})"),
        }
    }
}

fn url_of(s: &str) -> Result<url::Url> {
    url::Url::parse(s).map_err(|e| {
        Error::new(
            crate::error::ErrorKind::Config,
            format!("the device-flow address `{s}` is not a URL: {e}"),
        )
    })
}

pub fn start(flow: &DeviceFlow, client_id: &str, scope: &str) -> Result<Request> {
    Ok(Request::new(Method::Post, url_of(&flow.code_url)?)
        .header("Accept", "application/json")
        .form(&[("client_id", client_id), ("scope", scope)]))
}

#[derive(Deserialize)]
struct CodeAnswer {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: Option<u64>,
    interval: Option<u64>,
}

/// The device code, or why there is none. The pages shown must be https.
pub fn classify_start(resp: &Response, now: u64) -> std::result::Result<Code, Failure> {
    if let Some(f) = common_failure(resp, now) {
        return Err(f);
    }
    if resp.status != 200 {
        return Err(Failure::Other(resp.status, super::message_of(&resp.body)));
    }
    let a: CodeAnswer = serde_json::from_slice(&resp.body)
        .map_err(|_| Failure::NotApi(resp.status, "no device code in the answer".into()))?;
    // The page the user is sent to: https, on the host that answered (a code from github.com
    // names github.com/login/device), so an answer cannot send the user to another site.
    let host = resp.url.host_str().map(str::to_ascii_lowercase);
    let https = |u: &str| {
        u.len() < 512
            && url::Url::parse(u).is_ok_and(|p| {
                p.scheme() == "https" && p.host_str().map(str::to_ascii_lowercase) == host
            })
    };
    if !https(&a.verification_uri) || a.user_code.len() > 64 || a.device_code.len() > 1024 {
        return Err(Failure::NotApi(
            resp.status,
            "a device code keyclone will not show".into(),
        ));
    }
    Ok(Code {
        device_code: Zeroizing::new(a.device_code),
        user_code: sanitized(&a.user_code),
        verification_uri: sanitized(&a.verification_uri),
        verification_uri_complete: a
            .verification_uri_complete
            .filter(|u| https(u))
            .map(|u| sanitized(&u)),
        expires_in: a.expires_in.unwrap_or(900).min(3600),
        interval: a.interval.unwrap_or(5).clamp(1, 60),
    })
}

pub fn poll(flow: &DeviceFlow, client_id: &str, code: &Code) -> Result<Request> {
    Ok(Request::new(Method::Post, url_of(&flow.token_url)?)
        .header("Accept", "application/json")
        .form(&[
            ("client_id", client_id),
            ("device_code", code.device_code.as_str()),
            ("grant_type", GRANT),
        ]))
}

/// One poll's answer; `interval` is the current wait, for `slow_down` without one.
pub fn classify_poll(
    resp: &Response,
    interval: u64,
    now: u64,
) -> std::result::Result<Poll, Failure> {
    if resp.status >= 500 || !resp.is_json() {
        return Err(common_failure(resp, now).unwrap_or(Failure::Server(resp.status)));
    }
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
    if let Some(t) = v.get("access_token").and_then(|t| t.as_str())
        && !t.is_empty()
        && t.len() <= 4096
    {
        return Ok(Poll::Token(Zeroizing::new(t.to_string())));
    }
    let error = v.get("error").and_then(|e| e.as_str()).unwrap_or("");
    Ok(match error {
        "authorization_pending" => Poll::Pending,
        "slow_down" => Poll::SlowDown(
            v.get("interval")
                .and_then(|i| i.as_u64())
                .unwrap_or(interval + 5)
                .clamp(1, 120),
        ),
        "expired_token" => Poll::Expired,
        "access_denied" => Poll::Denied,
        "" => Poll::Failed(format!("answer {} without a token", resp.status)),
        other => Poll::Failed(sanitized(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::json;
    use super::*;

    fn flow() -> DeviceFlow {
        DeviceFlow {
            code_url: "https://github.com/login/device/code".into(),
            token_url: "https://github.com/login/oauth/access_token".into(),
            client_id: Some("Iv1.abc".into()),
        }
    }

    #[test]
    fn the_code_request_is_a_form_with_client_id_and_scope() {
        let r = start(&flow(), "Iv1.abc", "write:public_key").unwrap();
        let (t, body) = r.body.unwrap();
        assert_eq!(t, "application/x-www-form-urlencoded");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "client_id=Iv1.abc&scope=write%3Apublic_key"
        );
    }

    /// An answer from github.com's device-code endpoint.
    fn from_github(status: u16, body: &str) -> Response {
        Response::for_tests(
            status,
            url::Url::parse("https://github.com/login/device/code").unwrap(),
            vec![("content-type".into(), "application/json".into())],
            body.as_bytes().to_vec(),
        )
    }

    #[test]
    fn the_page_shown_must_be_on_the_host_that_answered() {
        for bad in [
            "https://evil.example/login/device",
            "https://github.com\u{2044}login\u{2044}device.evil.example/",
            "https://github.com.evil.example/",
        ] {
            let body =
                format!(r#"{{"device_code":"dc","user_code":"X","verification_uri":"{bad}"}}"#);
            assert!(
                classify_start(&from_github(200, &body), 0).is_err(),
                "{bad}"
            );
        }
        let body = r#"{"device_code":"dc","user_code":"WD\u202eJB","verification_uri":"https://GitHub.com/login/device"}"#;
        let c = classify_start(&from_github(200, body), 0).unwrap();
        assert!(!c.user_code.contains('\u{202e}'), "{:?}", c.user_code);
    }

    #[test]
    fn a_code_is_read_and_bounded() {
        let ok = from_github(
            200,
            r#"{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"https://github.com/login/device","expires_in":900,"interval":5}"#,
        );
        let c = classify_start(&ok, 0).unwrap();
        assert_eq!((c.user_code.as_str(), c.interval), ("WDJB-MJHT", 5));
        assert!(
            !format!("{c:?}").contains("dc\""),
            "the device code is not shown"
        );
        let http = json(
            200,
            r#"{"device_code":"dc","user_code":"X","verification_uri":"http://evil/"}"#,
        );
        assert!(classify_start(&http, 0).is_err());
        let disabled = json(400, r#"{"error":"device_flow_disabled"}"#);
        assert!(matches!(
            classify_start(&disabled, 0),
            Err(Failure::Other(400, _))
        ));
    }

    #[test]
    fn every_poll_state_is_told_apart() {
        let c = |b: &str| classify_poll(&json(200, b), 5, 0).unwrap();
        assert_eq!(c(r#"{"error":"authorization_pending"}"#), Poll::Pending);
        assert_eq!(
            c(r#"{"error":"slow_down","interval":10}"#),
            Poll::SlowDown(10)
        );
        assert_eq!(c(r#"{"error":"slow_down"}"#), Poll::SlowDown(10));
        assert_eq!(c(r#"{"error":"expired_token"}"#), Poll::Expired);
        assert_eq!(c(r#"{"error":"access_denied"}"#), Poll::Denied);
        assert_eq!(
            c(r#"{"error":"device_flow_disabled"}"#),
            Poll::Failed("device_flow_disabled".into())
        );
        assert_eq!(
            c(r#"{"access_token":"gho_x","token_type":"bearer"}"#),
            Poll::Token(Zeroizing::new("gho_x".into()))
        );
        assert_eq!(
            format!("{:?}", c(r#"{"access_token":"gho_x"}"#)),
            "Token(<redacted>)"
        );
        // GitLab answers the pending states with 400.
        assert_eq!(
            classify_poll(&json(400, r#"{"error":"authorization_pending"}"#), 5, 0).unwrap(),
            Poll::Pending
        );
        assert!(classify_poll(&json(502, "{}"), 5, 0).is_err());
    }
}
