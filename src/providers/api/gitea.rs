//! Gitea's, Forgejo's and Codeberg's key API (the Gitea swagger, `userCurrentPostKey`):
//! `POST /api/v1/user/keys` with `{key, title, read_only}`, answered 201; 422 `Key content has
//! been used as non-deploy key` when the key is taken; 401 for a bad token; 403 `token does not
//! have at least one of required scope(s): [write:user]` when the token lacks the scope.
//! Gitea has no separate signing keys: it verifies SSH signatures against the same keys.

use super::{
    ApiKind, Failure, NewKey, Uploaded, classify_upload, endpoint_of, json_get, json_post,
};
use crate::error::Result;
use crate::http::{Credential, Request, Response};

pub const SCOPE: &str = "write:user";

pub fn add_key(base: &str, auth: &Credential, key: &NewKey<'_>) -> Result<Request> {
    let body = serde_json::json!({ "title": key.title, "key": key.key, "read_only": false });
    let url = endpoint_of(base, &["user", "keys"], None)?;
    Ok(json_post(ApiKind::Gitea, url, auth, &body))
}

pub fn list_keys(base: &str, auth: &Credential) -> Result<Request> {
    let url = endpoint_of(base, &["user", "keys"], Some("limit=50"))?;
    Ok(json_get(ApiKind::Gitea, url, auth))
}

pub fn classify_add(resp: &Response, now: u64) -> std::result::Result<Uploaded, Failure> {
    classify_upload(resp, now, |status, msg, _| match status {
        422 if msg.contains("has been used") || msg.contains("already exist") => Failure::Taken,
        403 => Failure::MissingScope(msg),
        s => Failure::Other(s, msg),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::json;
    use super::*;
    use crate::providers::api::KeyUse;

    #[test]
    fn each_documented_answer_is_classified() {
        let k = NewKey {
            key: "ssh-ed25519 AAAA",
            title: "t",
            usage: KeyUse::Auth,
        };
        let r = add_key("https://codeberg.org/api/v1", &Credential::token("x"), &k).unwrap();
        assert_eq!(r.url.as_str(), "https://codeberg.org/api/v1/user/keys");
        assert_eq!(classify_add(&json(201, "{}"), 0), Ok(Uploaded::Added));
        let taken = r#"{"message":"Key content has been used as non-deploy key","url":"https://codeberg.org/api/swagger"}"#;
        assert_eq!(classify_add(&json(422, taken), 0), Err(Failure::Taken));
        let scope = r#"{"message":"token does not have at least one of required scope(s): [write:user]","url":"x"}"#;
        assert!(matches!(
            classify_add(&json(403, scope), 0),
            Err(Failure::MissingScope(_))
        ));
        assert!(matches!(
            classify_add(&json(401, r#"{"message":"user does not exist"}"#), 0),
            Err(Failure::BadToken(_))
        ));
    }
}
