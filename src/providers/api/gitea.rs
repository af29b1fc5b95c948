//! Gitea's, Forgejo's and Codeberg's key API (the Gitea swagger, `userCurrentPostKey`):
//! `POST /api/v1/user/keys` with `{key, title, read_only}`, answered 201; 422 `Key content has
//! been used as non-deploy key` when the key is taken; 401 for a bad token; 403 `token does not
//! have at least one of required scope(s): [write:user]` when the token lacks the scope.
//! Gitea has no separate signing keys: it verifies SSH signatures against the same keys.

use super::{Failure, NewKey, Uploaded, common_failure, endpoint, message_of};
use crate::error::Result;
use crate::http::{Credential, Method, Request, Response};

pub const SCOPE: &str = "write:user";

pub fn add_key(base: &str, auth: &Credential, key: &NewKey<'_>) -> Result<Request> {
    let body = serde_json::json!({ "title": key.title, "key": key.key, "read_only": false });
    Ok(Request::new(Method::Post, endpoint(base, "user/keys")?)
        .header("Accept", "application/json")
        .auth(auth.clone())
        .json(&body))
}

pub fn list_keys(base: &str, auth: &Credential) -> Result<Request> {
    let mut url = endpoint(base, "user/keys")?;
    url.set_query(Some("limit=50"));
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
        422 if msg.contains("has been used") || msg.contains("already exist") => {
            Err(Failure::Taken)
        }
        403 => Err(Failure::MissingScope(msg)),
        s => Err(Failure::Other(s, msg)),
    }
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
