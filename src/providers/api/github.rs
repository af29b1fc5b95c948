//! GitHub's and GitHub Enterprise Server's key API (docs.github.com/rest/users/keys and
//! /rest/users/ssh-signing-keys): `POST /user/keys` and `POST /user/ssh_signing_keys` with
//! `{title, key}`, answered 201; 422 `key is already in use` when the key is taken (by this or
//! another account: the list decides); 404 when the token lacks `write:public_key` (or
//! `write:ssh_signing_key`); 401 for a bad, expired or revoked token; 403 with
//! `x-ratelimit-remaining: 0` when rate limited.

use super::{
    ApiKind, Failure, KeyUse, NewKey, Uploaded, classify_upload, endpoint_of, json_get, json_post,
};
use crate::error::Result;
use crate::http::{Credential, Request, Response};

fn path(usage: KeyUse) -> [&'static str; 2] {
    match usage {
        KeyUse::Auth => ["user", "keys"],
        KeyUse::Signing => ["user", "ssh_signing_keys"],
    }
}

/// The classic scope an upload of this kind needs.
pub fn scope(usage: KeyUse) -> &'static str {
    match usage {
        KeyUse::Auth => "write:public_key",
        KeyUse::Signing => "write:ssh_signing_key",
    }
}

pub fn add_key(base: &str, auth: &Credential, key: &NewKey<'_>) -> Result<Request> {
    let body = serde_json::json!({ "title": key.title, "key": key.key });
    let url = endpoint_of(base, &path(key.usage), None)?;
    Ok(json_post(ApiKind::Github, url, auth, &body))
}

pub fn list_keys(base: &str, auth: &Credential, usage: KeyUse) -> Result<Request> {
    let url = endpoint_of(base, &path(usage), Some("per_page=100"))?;
    Ok(json_get(ApiKind::Github, url, auth))
}

pub fn classify_add(resp: &Response, now: u64) -> std::result::Result<Uploaded, Failure> {
    classify_upload(resp, now, |status, msg, body| match status {
        422 if taken(body) => Failure::Taken,
        404 | 403 => Failure::MissingScope(msg),
        s => Failure::Other(s, msg),
    })
}

/// Whether a 422 says the key is in use (`errors[].message == "key is already in use"`).
fn taken(body: &[u8]) -> bool {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    v.get("errors")
        .and_then(|e| e.as_array())
        .is_some_and(|errors| {
            errors.iter().any(|e| {
                e.get("message")
                    .and_then(|m| m.as_str())
                    .is_some_and(|m| m.contains("already in use"))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{answer, json};
    use super::*;

    #[test]
    fn the_request_goes_to_user_keys_with_title_and_key() {
        let auth = Credential::bearer("t");
        let k = NewKey {
            key: "ssh-ed25519 AAAA",
            title: "me (2026-12-01)",
            usage: KeyUse::Auth,
        };
        let r = add_key("https://ghe.corp/api/v3", &auth, &k).unwrap();
        assert_eq!(r.url.as_str(), "https://ghe.corp/api/v3/user/keys");
        assert_eq!(r.method, crate::http::Method::Post);
        let body: serde_json::Value = serde_json::from_slice(&r.body.unwrap().1).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"title": "me (2026-12-01)", "key": "ssh-ed25519 AAAA"})
        );
        let k = NewKey {
            usage: KeyUse::Signing,
            ..k
        };
        let r = add_key("https://api.github.com", &auth, &k).unwrap();
        assert_eq!(
            r.url.as_str(),
            "https://api.github.com/user/ssh_signing_keys"
        );
        assert_eq!(scope(KeyUse::Signing), "write:ssh_signing_key");
    }

    #[test]
    fn each_documented_answer_is_classified() {
        assert_eq!(
            classify_add(&json(201, r#"{"id":1}"#), 0),
            Ok(Uploaded::Added)
        );
        let in_use = r#"{"message":"Validation Failed","errors":[{"resource":"PublicKey","code":"custom","field":"key","message":"key is already in use"}]}"#;
        assert_eq!(classify_add(&json(422, in_use), 0), Err(Failure::Taken));
        let invalid = r#"{"message":"Validation Failed","errors":[{"field":"key","message":"key is invalid"}]}"#;
        assert!(matches!(
            classify_add(&json(422, invalid), 0),
            Err(Failure::Other(422, _))
        ));
        assert!(matches!(
            classify_add(&json(404, r#"{"message":"Not Found"}"#), 0),
            Err(Failure::MissingScope(_))
        ));
        assert!(matches!(
            classify_add(&json(401, r#"{"message":"Bad credentials"}"#), 0),
            Err(Failure::BadToken(_))
        ));
        let limited = answer(
            403,
            "application/json",
            r#"{"message":"API rate limit exceeded"}"#,
            &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "100")],
        );
        assert_eq!(
            classify_add(&limited, 40),
            Err(Failure::RateLimited(Some(60)))
        );
        assert_eq!(classify_add(&json(500, "{}"), 0), Err(Failure::Server(500)));
    }
}
