//! GitLab's (and self-managed GitLab's) key API (docs.gitlab.com/api/user_keys):
//! `POST /api/v4/user/keys` with `{title, key, usage_type}` (`auth`, `signing` or
//! `auth_and_signing`, GitLab 15.7+), answered 201; 400
//! `{"message":{"key":["has already been taken"]}}` (or `fingerprint`, or `fingerprint_sha256`)
//! when the key is taken, by this account too: GitLab keeps one list, a key is in it once; 401
//! for a bad, expired or revoked token; 403 `insufficient_scope` when the token lacks `api`; 429
//! when rate limited.
//!
//! A signing key is uploaded as `auth_and_signing`: keyclone signs with the key it logs in with,
//! and a key uploaded as `signing` alone would stop logging in. A key already on the account for
//! the other use alone is told apart ([`Failure::OtherUsage`]): GitLab cannot change a key's
//! usage, it is removed and added again.

use super::{
    ApiKind, Failure, KeyUse, NewKey, Uploaded, classify_upload, endpoint_of, json_get, json_post,
};
use crate::error::Result;
use crate::http::{Credential, Request, Response};

pub const SCOPE: &str = "api";

pub fn add_key(base: &str, auth: &Credential, key: &NewKey<'_>) -> Result<Request> {
    let usage = match key.usage {
        KeyUse::Auth => "auth",
        KeyUse::Signing => "auth_and_signing",
    };
    let body = serde_json::json!({ "title": key.title, "key": key.key, "usage_type": usage });
    let url = endpoint_of(base, &["user", "keys"], None)?;
    Ok(json_post(ApiKind::Gitlab, url, auth, &body))
}

pub fn list_keys(base: &str, auth: &Credential) -> Result<Request> {
    let url = endpoint_of(base, &["user", "keys"], Some("per_page=100"))?;
    Ok(json_get(ApiKind::Gitlab, url, auth))
}

pub fn classify_add(resp: &Response, now: u64) -> std::result::Result<Uploaded, Failure> {
    classify_upload(resp, now, |status, msg, _| match status {
        400 if msg.contains("has already been taken") => Failure::Taken,
        403 => Failure::MissingScope(msg),
        s => Failure::Other(s, msg),
    })
}

/// Whether the key already on the account (an entry of `GET /user/keys`) serves `usage`: its
/// `usage_type` is `auth_and_signing` or the one asked (absent before GitLab 15.7, when every
/// key served both).
pub fn usage_fits(
    entry: &serde_json::Value,
    usage: KeyUse,
) -> std::result::Result<Uploaded, Failure> {
    let has = entry
        .get("usage_type")
        .and_then(|u| u.as_str())
        .unwrap_or("auth_and_signing");
    let fits = match usage {
        KeyUse::Auth => has != "signing",
        KeyUse::Signing => has != "auth",
    };
    if fits {
        Ok(Uploaded::AlreadyThere)
    } else {
        Err(Failure::OtherUsage(super::sanitized(has)))
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
        assert_eq!(body["usage_type"], "auth_and_signing");
    }

    #[test]
    fn a_key_on_the_account_fits_when_its_usage_covers_the_one_asked() {
        let entry = |u: &str| serde_json::json!({"id": 1, "key": "k", "usage_type": u});
        assert_eq!(
            usage_fits(&entry("auth_and_signing"), KeyUse::Signing),
            Ok(Uploaded::AlreadyThere)
        );
        assert_eq!(
            usage_fits(&entry("auth"), KeyUse::Signing),
            Err(Failure::OtherUsage("auth".into()))
        );
        assert_eq!(
            usage_fits(&entry("signing"), KeyUse::Auth),
            Err(Failure::OtherUsage("signing".into()))
        );
        assert_eq!(
            usage_fits(&serde_json::json!({"key": "k"}), KeyUse::Auth),
            Ok(Uploaded::AlreadyThere)
        );
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
