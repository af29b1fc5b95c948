//! Bitbucket Cloud's key API (developer.atlassian.com/cloud/bitbucket/rest/api-group-ssh):
//! `GET /2.0/user` for the account's `uuid`, then `POST /2.0/users/{uuid}/ssh-keys` with
//! `{key, label}`, answered 201; 400 with an error naming the key as already added when it is
//! taken; 401 for a bad token; 403 when the API token lacks `write:ssh-key:bitbucket`.
//! Authentication: the Atlassian account's e-mail and an API token, HTTP Basic (app passwords
//! were removed in 2026). Bitbucket has no signing-key API.

use super::{
    ApiKind, Failure, NewKey, Uploaded, classify_upload, common_failure, endpoint_of, json_get,
    json_post, message_of, sanitized,
};
use crate::error::Result;
use crate::http::{Credential, Request, Response};

pub const SCOPE: &str = "write:ssh-key:bitbucket, read:ssh-key:bitbucket and read:user:bitbucket";

pub fn whoami(base: &str, auth: &Credential) -> Result<Request> {
    let url = endpoint_of(base, &["user"], None)?;
    Ok(json_get(ApiKind::Bitbucket, url, auth))
}

/// The `uuid` of `GET /user` (`{…}` form; braces and hex digits only, or it is refused).
pub fn classify_whoami(resp: &Response, now: u64) -> std::result::Result<String, Failure> {
    if let Some(f) = common_failure(resp, now) {
        return Err(f);
    }
    if resp.status == 403 {
        return Err(Failure::MissingScope(message_of(&resp.body)));
    }
    if resp.status != 200 {
        return Err(Failure::Other(resp.status, message_of(&resp.body)));
    }
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
    let uuid = v.get("uuid").and_then(|u| u.as_str()).unwrap_or("");
    let ok = uuid.len() <= 64
        && uuid.starts_with('{')
        && uuid.ends_with('}')
        && uuid[1..uuid.len().saturating_sub(1).max(1)]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '-');
    if ok && uuid.len() > 2 {
        Ok(uuid.to_string())
    } else {
        Err(Failure::NotApi(
            resp.status,
            format!("no account uuid ({})", sanitized(uuid)),
        ))
    }
}

pub fn add_key(base: &str, auth: &Credential, uuid: &str, key: &NewKey<'_>) -> Result<Request> {
    let body = serde_json::json!({ "key": key.key, "label": key.title });
    let url = endpoint_of(base, &["users", uuid, "ssh-keys"], None)?;
    Ok(json_post(ApiKind::Bitbucket, url, auth, &body))
}

pub fn list_keys(base: &str, auth: &Credential, uuid: &str) -> Result<Request> {
    let url = endpoint_of(base, &["users", uuid, "ssh-keys"], Some("pagelen=100"))?;
    Ok(json_get(ApiKind::Bitbucket, url, auth))
}

pub fn classify_add(resp: &Response, now: u64) -> std::result::Result<Uploaded, Failure> {
    classify_upload(resp, now, |status, msg, _| match status {
        400 if msg.to_ascii_lowercase().contains("already") => Failure::Taken,
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
    fn the_key_goes_to_the_account_of_the_uuid() {
        let me = json(
            200,
            r#"{"uuid":"{ed08f5e1-605b-4f4a-aee4-6c97628a673e}","display_name":"Ada"}"#,
        );
        let uuid = classify_whoami(&me, 0).unwrap();
        let k = NewKey {
            key: "ssh-ed25519 AAAA",
            title: "t",
            usage: KeyUse::Auth,
        };
        let r = add_key(
            "https://api.bitbucket.org/2.0",
            &Credential::basic("a@b", "t"),
            &uuid,
            &k,
        )
        .unwrap();
        assert_eq!(
            r.url.as_str(),
            "https://api.bitbucket.org/2.0/users/%7Bed08f5e1-605b-4f4a-aee4-6c97628a673e%7D/ssh-keys"
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body.unwrap().1).unwrap();
        assert_eq!(body["label"], "t");
    }

    #[test]
    fn a_uuid_that_is_not_one_is_refused() {
        for bad in [r#"{"uuid":"../../admin"}"#, r#"{"uuid":"{}"}"#, r#"{}"#] {
            assert!(
                matches!(
                    classify_whoami(&json(200, bad), 0),
                    Err(Failure::NotApi(..))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn each_answer_is_classified() {
        assert_eq!(classify_add(&json(201, "{}"), 0), Ok(Uploaded::Added));
        let taken = r#"{"type":"error","error":{"message":"Someone has already added that SSH key to another account."}}"#;
        assert_eq!(classify_add(&json(400, taken), 0), Err(Failure::Taken));
        assert!(matches!(
            classify_add(
                &json(
                    403,
                    r#"{"type":"error","error":{"message":"missing scope"}}"#
                ),
                0
            ),
            Err(Failure::MissingScope(_))
        ));
        assert!(matches!(
            classify_whoami(
                &json(
                    401,
                    r#"{"type":"error","error":{"message":"Unauthorized"}}"#
                ),
                0
            ),
            Err(Failure::BadToken(_))
        ));
    }
}
