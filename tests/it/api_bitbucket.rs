//! Bitbucket Cloud's key API end to end, against the stand-in (`support/provider_api.py`
//! speaks Bitbucket's `GET /2.0/user` and `/2.0/users/{uuid}/ssh-keys` with its documented
//! status codes and error objects): HTTP Basic with the account's e-mail and an API token, the
//! account's uuid first, then the key; the key it adds goes to the test sshd, and real
//! OpenSSH/git and keyclone's own `init` log in and clone with it. Each error answer is a test.

use serde_json::json;

use crate::api_upload::{TOKEN, World, world};

/// The stand-in's Bitbucket scopes an API token for keyclone needs.
const SCOPES: &[&str] = &[
    "read:user:bitbucket",
    "read:ssh-key:bitbucket",
    "write:ssh-key:bitbucket",
];

fn bitbucket(extra: serde_json::Value) -> World {
    bitbucket_with(SCOPES, extra)
}

fn bitbucket_with(scopes: &[&str], extra: serde_json::Value) -> World {
    let mut config = json!({ "tokens": crate::api_upload::tokens(scopes) });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    world("bitbucket", config)
}

const UUID_PATH: &str = "/2.0/users/%7Bed08f5e1-605b-4f4a-aee4-6c97628a673e%7D/ssh-keys";

#[test]
fn bitbucket_upload_asks_the_uuid_adds_the_key_and_git_clones_with_it() {
    let w = bitbucket(json!({}));
    assert!(
        w.sshd.ssh_login(&w.key, None).code != 0,
        "not authorized before the upload"
    );
    w.upload()
        .ok()
        .stderr_has("Added")
        .stderr_has("corp account")
        .never_shows(TOKEN);
    let reqs = w.api.requests();
    assert_eq!(
        (reqs[0]["method"].as_str(), reqs[0]["path"].as_str()),
        (Some("GET"), Some("/2.0/user")),
        "{reqs:?}"
    );
    w.assert_posted(UUID_PATH, "Basic", "label");
    w.real_clients_get_in();
}

/// upload -> test -> clone in one run: `init --non-interactive` with the token adds the key,
/// keyclone's own access test passes against the sshd, and it clones.
#[test]
fn bitbucket_init_with_a_token_uploads_tests_and_clones_in_one_run() {
    let w = bitbucket(json!({}));
    w.init_in_one_run(&w.repo_url("project"), &[])
        .ok()
        .stderr_has("Added")
        .stderr_has("accepted")
        .never_shows(TOKEN);
    assert!(
        w.sb.home
            .join("code/Users/tester/project/README.md")
            .is_file()
    );
}

#[test]
fn a_bitbucket_key_already_on_this_account_counts_as_done() {
    let w = bitbucket(json!({ "keys": { "ada": ["$KEY"] } }));
    w.upload().ok().stderr_has("already has").never_shows(TOKEN);
    let reqs = w.api.requests();
    let seen: Vec<_> = reqs
        .iter()
        .map(|r| (r["method"].as_str().unwrap(), r["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen[..3],
        [
            ("GET", "/2.0/user"),
            ("POST", UUID_PATH),
            ("GET", UUID_PATH)
        ],
        "the uuid, the upload (answered 400), then the account's keys"
    );
}

#[test]
fn a_bitbucket_key_in_use_on_another_account_is_refused_with_the_fix() {
    let w = bitbucket(json!({ "keys": { "mallory": ["$KEY"] } }));
    w.upload()
        .code(5)
        .stderr_has("already in use on another account")
        .stderr_has("keyclone keygen --provider corp");
    assert!(!w.authorized().contains(&w.public()));
}

#[test]
fn a_bad_bitbucket_token_or_another_accounts_email_is_a_bad_token() {
    let w = bitbucket(json!({}));
    let mut c = w.cmd(&["pubkey", "--upload", "--provider", "corp"]);
    c.env("BITBUCKET_EMAIL", "someone@else.example");
    w.sb.run_cmd(c)
        .code(8)
        .stderr_has("Token is invalid, expired")
        .stderr_has("expired or revoked, or it is a token of another host")
        .stderr_has("https://id.atlassian.com/manage-profile/security/api-tokens")
        .never_shows(TOKEN);
    let expired = world(
        "bitbucket",
        json!({ "tokens": { TOKEN: { "user": "ada", "email": "ada@example.org", "scopes": SCOPES, "expired": true } } }),
    );
    expired.upload().code(8).stderr_has("expired or revoked");
}

#[test]
fn a_bitbucket_token_without_the_key_scope_names_the_scopes() {
    let w = bitbucket_with(
        &["read:user:bitbucket", "read:ssh-key:bitbucket"],
        json!({}),
    );
    w.upload()
        .code(8)
        .stderr_has("lacks the `write:ssh-key:bitbucket")
        .stderr_has("--token-file FILE")
        .never_shows(TOKEN);
    // Without read:user the account's uuid cannot be read: the same refusal, before any POST.
    let w = bitbucket_with(&["write:ssh-key:bitbucket"], json!({}));
    w.upload().code(8).stderr_has("lacks the `write:ssh-key");
    assert!(w.api.requests().iter().all(|r| r["method"] == "GET"));
}

#[test]
fn a_rate_limited_bitbucket_says_to_wait() {
    let w = bitbucket(json!({ "mode": "ratelimit" }));
    w.upload()
        .code(10)
        .stderr_has("rate limiting")
        .stderr_has("wait a few minutes, then run the same command again");
}

#[test]
fn bitbucket_has_no_signing_key_api_and_says_so() {
    let w = bitbucket(json!({}));
    w.sb.run_cmd(w.cmd(&["pubkey", "--upload", "--sign", "--provider", "corp"]))
        .code(5)
        .stderr_has("has no API for signing keys");
    assert!(w.api.requests().is_empty(), "nothing was sent");
}
