//! GitLab's (and self-managed GitLab's) key API (docs.gitlab.com/api/user_keys):
//! `POST /api/v4/user/keys` with `{title, key, usage_type}` (`auth` or `signing`, GitLab 15.7+),
//! answered 201; 400 `{"message":{"key":["has already been taken"]}}` (or `fingerprint`, or
//! `fingerprint_sha256`) when the key is taken; 401 for a bad, expired or revoked token; 403
//! `insufficient_scope` when the token lacks `api`; 429 when rate limited.

use super::{Failure, KeyUse, NewKey, Uploaded, common_failure, endpoint, message_of};
use crate::error::Result;
use crate::http::{Credential, Method, Request, Response};

pub const SCOPE: &str = "api";

pub fn add_key(base: &str, auth: &Credential, key: &NewKey<'_>) -> Result<Request> {
    let usage = match key.usage {
        KeyUse::Auth => "auth",
        KeyUse::Signing => "signing",
    };
    let body = serde_json::json!({ "title": key.title, "key": key.key, "usage_type": usage });
    Ok(Request::new(Method::Post, endpoint(base, "user/keys")?)
        .header("Accept", "application/json")
        .auth(auth.clone())
        .json(&body))
}

pub fn list_keys(base: &str, auth: &Credential) -> Result<Request> {
    let mut url = endpoint(base, "user/keys")?;
    url.set_query(Some("per_page=100"));
    Ok(Request::get(url)
        .header("Accept", "application/json")
        .auth(auth.clone()))
}

pub fn classify_add(resp: &Response, now: u64) -> std::result::Result<Uploaded, Failure> {
    if let Some(f) = common_failure(resp, now) {
        return Err(f);
    }
    let msg = message_of(&resp.body);
    match resp.status {
        201 | 200 => Ok(Uploaded::Added),
        400 if msg.contains("has already been taken") => Err(Failure::Taken),
        403 => Err(Failure::MissingScope(msg)),
        s => Err(Failure::Other(s, msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::json;
    use super::*;

    #[test]
    fn the_request_names_the_usage_type() {
        let k = NewKey {
            key: "ssh-ed25519 AAAA",
            title: "t",
            usage: KeyUse::Signing,
        };
        let r = add_key("https://gitlab.com/api/v4", &Credential::bearer("x"), &k).unwrap();
        assert_eq!(r.url.as_str(), "https://gitlab.com/api/v4/user/keys");
        let body: serde_json::Value = serde_json::from_slice(&r.body.unwrap().1).unwrap();
        assert_eq!(body["usage_type"], "signing");
    }

    #[test]
    fn each_documented_answer_is_classified() {
        assert_eq!(
            classify_add(&json(201, r#"{"id":1}"#), 0),
            Ok(Uploaded::Added)
        );
        let taken = r#"{"message":{"fingerprint_sha256":["has already been taken"]}}"#;
        assert_eq!(classify_add(&json(400, taken), 0), Err(Failure::Taken));
        let bad = r#"{"message":{"key":["is invalid"]}}"#;
        assert!(matches!(
            classify_add(&json(400, bad), 0),
            Err(Failure::Other(400, _))
        ));
        let scope = r#"{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api"}"#;
        assert!(matches!(
            classify_add(&json(403, scope), 0),
            Err(Failure::MissingScope(_))
        ));
        let expired = r#"{"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}"#;
        assert!(
            matches!(classify_add(&json(401, expired), 0), Err(Failure::BadToken(m)) if m.contains("expired"))
        );
        assert!(matches!(
            classify_add(&json(429, "{}"), 0),
            Err(Failure::RateLimited(None))
        ));
    }
}
