//! `keyclone pubkey --upload`: the key added through the provider's API, against the stand-in
//! for the providers' APIs (`support/provider_api.py`) over HTTPS with a CA made at run time;
//! the key it adds goes to the test sshd's AuthorizedKeysFile, and real `git`/`ssh` clone with it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::support::git::{git_clone_with_openssh, make_repo, ssh_url};
use crate::support::https::ProviderApi;
use crate::support::sshd::Sshd;
use crate::support::{Out, Sandbox, key_material};

pub const TOKEN: &str = "kc-test-token-9f2c41";

pub struct World {
    pub sb: Sandbox,
    pub sshd: Sshd,
    pub api: ProviderApi,
    pub key: PathBuf,
}

/// A sandbox with a key, a sshd, the stand-in (`config` + its AuthorizedKeysFile) and a config
/// file declaring provider `corp` of `kind` with the stand-in as its API.
pub fn world(kind: &str, config: serde_json::Value) -> World {
    let sb = Sandbox::new();
    sb.run(&["keygen", "--no-passphrase", "--comment", "ada@box"])
        .ok();
    let public =
        key_material(&std::fs::read_to_string(sb.ssh_dir().join("id_ed25519.pub")).unwrap());
    let seeded = config.to_string().replace("$KEY", &public);
    let mut config: serde_json::Value = serde_json::from_str(&seeded).unwrap();
    let sshd = Sshd::start();
    config["authorized_keys"] = sshd.authorized_keys_path().to_str().unwrap().into();
    let api = ProviderApi::start(config);
    let path = match kind {
        "github" => "/api/v3",
        "gitlab" => "/api/v4",
        "bitbucket" => "/2.0",
        _ => "/api/v1",
    };
    let dir = sb.home.join(".config/keyclone");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[provider.corp]\nkind = \"{kind}\"\nhost = \"127.0.0.1\"\nport = {}\nweb-host = \"localhost\"\napi-base = \"{}{path}\"\nuser = \"{}\"\nfingerprints = [\"{}\"]\n",
            sshd.port,
            api.origin(),
            sshd.user,
            sshd.fingerprint()
        ),
    )
    .unwrap();
    let key = sb.ssh_dir().join("id_ed25519");
    World { sb, sshd, api, key }
}

/// The tokens the stand-in knows: ada's with `scopes`.
pub fn tokens(scopes: &[&str]) -> serde_json::Value {
    json!({ TOKEN: { "user": "ada", "name": "Ada Lovelace", "email": "ada@example.org", "scopes": scopes } })
}

impl World {
    /// keyclone with the test CA trusted and the token in `KEYCLONE_TOKEN_CORP` (and, for
    /// Bitbucket's Basic authentication, the account's e-mail in `BITBUCKET_EMAIL`).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.sb.cmd();
        c.args(args)
            .env("SSL_CERT_FILE", &self.api.ca.ca_cert)
            .env("KEYCLONE_TOKEN_CORP", TOKEN)
            .env("BITBUCKET_EMAIL", "ada@example.org");
        c
    }
    /// A repository `name` (one commit) served by the test sshd, and its ssh URL.
    pub fn repo_url(&self, name: &str) -> String {
        ssh_url(&self.sshd, &make_repo(self.sb.root.path(), name))
    }
    /// `init --non-interactive --repo URL --cache none --yes` and `extra`, with the token.
    pub fn init_in_one_run(&self, url: &str, extra: &[&str]) -> Out {
        let mut args = vec![
            "init",
            "--non-interactive",
            "--repo",
            url,
            "--cache",
            "none",
            "--yes",
        ];
        args.extend_from_slice(extra);
        self.sb.run_cmd(self.cmd(&args))
    }
    /// The upload the stand-in received: a POST to `path` with the known token in `auth`'s
    /// scheme, this key, and the title `pubkey` suggests in `title_field`.
    pub fn assert_posted(&self, path: &str, auth: &str, title_field: &str) {
        let reqs = self.api.requests();
        let post = reqs.iter().find(|r| r["method"] == "POST").unwrap();
        assert_eq!(post["path"], path);
        assert_eq!(post["auth"], auth);
        assert_eq!(post["known_token"], true);
        assert_eq!(post["body"]["key"], self.public());
        assert!(
            post["body"][title_field]
                .as_str()
                .unwrap()
                .starts_with("ada@box ("),
            "{post}"
        );
        assert!(self.authorized().contains(&self.public()));
    }
    /// The real clients with the key: OpenSSH logs in, git clones over the test sshd.
    pub fn real_clients_get_in(&self) {
        self.sshd.ssh_login(&self.key, None).ok();
        let bare = make_repo(self.sb.root.path(), "proj");
        let kh = self.sb.root.path().join("kh");
        std::fs::write(&kh, format!("{}\n", self.sshd.known_hosts_line())).unwrap();
        let dest = self.sb.root.path().join("clone");
        git_clone_with_openssh(&ssh_url(&self.sshd, &bare), &dest, &self.key, "", &kh, &[]).ok();
        assert!(dest.join("README.md").is_file());
    }
    pub fn upload(&self) -> Out {
        self.sb
            .run_cmd(self.cmd(&["pubkey", "--upload", "--provider", "corp"]))
    }
    pub fn public(&self) -> String {
        key_material(&std::fs::read_to_string(self.key.with_extension("pub")).unwrap())
    }
    pub fn authorized(&self) -> String {
        std::fs::read_to_string(self.sshd.authorized_keys_path()).unwrap()
    }
}

#[test]
fn github_upload_adds_the_key_and_git_clones_with_it() {
    let w = world("github", json!({ "tokens": tokens(&["write:public_key"]) }));
    assert!(
        w.sshd.ssh_login(&w.key, None).code != 0,
        "not authorized before the upload"
    );
    let out = w.upload();
    out.ok()
        .stderr_has("Added")
        .stderr_has("corp account")
        .never_shows(TOKEN);
    w.assert_posted("/api/v3/user/keys", "Bearer", "title");
    w.real_clients_get_in();
}

#[test]
fn a_key_already_on_this_account_counts_as_done() {
    let w = world(
        "github",
        json!({ "tokens": tokens(&["write:public_key"]), "keys": { "ada": ["$KEY"] } }),
    );
    w.upload().ok().stderr_has("already has").never_shows(TOKEN);
    let reqs = w.api.requests();
    assert_eq!(
        reqs[0]["method"], "POST",
        "the upload was tried (and answered 422)"
    );
    assert_eq!(
        reqs[1]["path"], "/api/v3/user/keys",
        "then the account's keys were listed"
    );
}

#[test]
fn a_key_in_use_on_another_account_is_refused_with_the_fix() {
    let w = world(
        "github",
        json!({ "tokens": tokens(&["write:public_key"]), "keys": { "mallory": ["$KEY"] } }),
    );
    let out = w.upload();
    out.code(5)
        .stderr_has("already in use on another account")
        .stderr_has("keyclone keygen --provider corp");
    assert!(!w.authorized().contains(&w.public()));
}

#[test]
fn a_missing_scope_names_the_scope_and_the_token_page() {
    let w = world("github", json!({ "tokens": tokens(&["repo"]) }));
    let out = w.upload();
    out.code(8)
        .stderr_has("lacks the `write:public_key` scope")
        .stderr_has("https://localhost/settings/tokens/new?scopes=write:public_key")
        .stderr_has("--token-file FILE")
        .never_shows(TOKEN);
}

#[test]
fn an_expired_or_unknown_token_is_told_apart_from_the_rest() {
    let w = world(
        "gitlab",
        json!({ "tokens": { TOKEN: { "user": "ada", "scopes": ["api"], "expired": true } } }),
    );
    let out = w.upload();
    out.code(8)
        .stderr_has("refused `KEYCLONE_TOKEN_CORP` (Token is expired")
        .stderr_has("expired or revoked, or it is a token of another host")
        .never_shows(TOKEN);
}

#[test]
fn rate_limits_say_how_long_to_wait() {
    for kind in ["github", "gitlab"] {
        let w = world(
            kind,
            json!({ "tokens": tokens(&["write:public_key", "api"]), "mode": "ratelimit" }),
        );
        let out = w.upload();
        out.code(10)
            .stderr_has("rate limiting")
            .stderr_has("seconds, then run the same command again");
    }
}

#[test]
fn an_html_answer_or_a_500_is_not_taken_for_the_api() {
    let w = world(
        "github",
        json!({ "tokens": tokens(&["write:public_key"]), "mode": "html" }),
    );
    w.upload()
        .code(10)
        .stderr_has("text/html")
        .stderr_has("not the answer of its API")
        .stderr_has("api-base");
    let w = world(
        "github",
        json!({ "tokens": tokens(&["write:public_key"]), "mode": "500" }),
    );
    w.upload().code(10).stderr_has("answered 500");
}

#[test]
fn a_redirect_to_another_host_is_refused_and_the_token_never_leaves() {
    let other = ProviderApi::start(json!({ "tokens": tokens(&["write:public_key"]) }));
    let target = format!("https://127.0.0.1:{}", other.port);
    let w = world(
        "github",
        json!({ "tokens": tokens(&["write:public_key"]), "mode": "redirect", "redirect_to": target }),
    );
    let out = w.upload();
    out.code(5)
        .stderr_has("redirected to")
        .stderr_has("refused");
    assert!(other.requests().is_empty(), "the other host got a request");
    assert!(!w.authorized().contains(&w.public()));
}

#[test]
fn an_untrusted_certificate_is_refused_with_nothing_sent() {
    let w = world("github", json!({ "tokens": tokens(&["write:public_key"]) }));
    let mut c = w.sb.cmd();
    c.args(["pubkey", "--upload", "--provider", "corp"])
        .env("KEYCLONE_TOKEN_CORP", TOKEN);
    let out = w.sb.run_cmd(c);
    assert_ne!(out.code, 0);
    out.never_shows(TOKEN);
    // Another CA's certificate is not trusted either.
    let stranger = crate::support::https::TestCa::new("stranger");
    let mut c = w.sb.cmd();
    c.args(["pubkey", "--upload", "--provider", "corp"])
        .env("KEYCLONE_TOKEN_CORP", TOKEN)
        .env("SSL_CERT_FILE", &stranger.ca_cert);
    let out = w.sb.run_cmd(c);
    out.code(10);
    assert!(
        w.api.requests().is_empty(),
        "a request was sent over an untrusted connection"
    );
}

#[test]
fn gitlab_and_gitea_get_their_own_request_shapes() {
    let w = world("gitlab", json!({ "tokens": tokens(&["api"]) }));
    w.upload().ok();
    let post = w
        .api
        .requests()
        .into_iter()
        .find(|r| r["method"] == "POST")
        .unwrap();
    assert_eq!(
        (post["path"].as_str(), post["body"]["usage_type"].as_str()),
        (Some("/api/v4/user/keys"), Some("auth"))
    );
    let again = w.upload();
    again.ok().stderr_has("already has");

    let w = world("gitea", json!({ "tokens": tokens(&["write:user"]) }));
    w.upload().ok();
    let post = w
        .api
        .requests()
        .into_iter()
        .find(|r| r["method"] == "POST")
        .unwrap();
    assert_eq!(
        (post["path"].as_str(), post["auth"].as_str()),
        (Some("/api/v1/user/keys"), Some("token"))
    );
    assert_eq!(post["body"]["read_only"], false);
    w.sshd.ssh_login(&w.key, None).ok();
}

/// `pubkey --upload --sign` adds the key as a signing key (GitHub's own list, its own scope),
/// beside the same key as an authentication key; the signing key does not log in.
#[test]
fn a_signing_key_goes_to_the_signing_keys_with_its_own_scope() {
    let w = world("github", json!({ "tokens": tokens(&["write:public_key"]) }));
    w.upload().ok();
    let sign = |w: &World| {
        w.sb.run_cmd(w.cmd(&["pubkey", "--upload", "--sign", "--provider", "corp"]))
    };
    let out = sign(&w);
    assert_ne!(out.code, 0, "write:ssh_signing_key is missing");
    out.never_shows(TOKEN).stderr_has("write:ssh_signing_key");
    let w2 = world(
        "github",
        json!({ "tokens": tokens(&["write:public_key", "write:ssh_signing_key"]) }),
    );
    w2.upload().ok();
    let lines_before = w2.authorized().lines().count();
    sign(&w2)
        .ok()
        .stderr_has("as a signing key")
        .never_shows(TOKEN);
    let reqs = w2.api.requests();
    let posts: Vec<_> = reqs.iter().filter(|r| r["method"] == "POST").collect();
    assert_eq!(posts.len(), 2, "{reqs:?}");
    assert_eq!(posts[0]["path"], "/api/v3/user/keys");
    assert_eq!(posts[1]["path"], "/api/v3/user/ssh_signing_keys");
    assert_eq!(posts[1]["body"]["key"], w2.public());
    assert_eq!(
        w2.authorized().lines().count(),
        lines_before,
        "a signing key is not an authentication key"
    );
    // Twice: already there, done.
    sign(&w2).ok().stderr_has("already has");
}

/// GitLab keeps one list of keys: `pubkey --upload --sign` adds the key for logging in and
/// signing (`usage_type = auth_and_signing`, so it still logs in); a key already there for
/// both is done; a key there for logging in alone is told apart, with the fix.
#[test]
fn gitlab_signing_keys_are_auth_and_signing() {
    let w = world("gitlab", json!({ "tokens": tokens(&["api"]) }));
    let sign = |w: &World| {
        w.sb.run_cmd(w.cmd(&["pubkey", "--upload", "--sign", "--provider", "corp"]))
    };
    sign(&w)
        .ok()
        .stderr_has("as an SSH key for logging in and signing")
        .never_shows(TOKEN);
    let reqs = w.api.requests();
    let post = reqs.iter().find(|r| r["method"] == "POST").unwrap();
    assert_eq!(post["path"], "/api/v4/user/keys");
    assert_eq!(post["body"]["usage_type"], "auth_and_signing");
    w.sshd.ssh_login(&w.key, None).ok();
    sign(&w).ok().stderr_has("already has");

    let w = world(
        "gitlab",
        json!({ "tokens": tokens(&["api"]), "keys": { "ada": ["$KEY"] }, "usage": { "$KEY": "auth" } }),
    );
    sign(&w)
        .code(5)
        .stderr_has("but for `auth` only")
        .stderr_has("then run `keyclone pubkey --upload --sign --provider corp`")
        .never_shows(TOKEN);
}

/// `init --sign` on GitLab adds the key once, for both uses: the upload of the login key is
/// already `auth_and_signing`, and registering the signing key finds it there.
#[test]
fn gitlab_init_sign_uploads_the_key_once_for_both_uses() {
    let w = world("gitlab", json!({ "tokens": tokens(&["api"]) }));
    let out = w.init_in_one_run(
        &w.repo_url("project"),
        &[
            "--sign",
            "--git-name",
            "Ada",
            "--git-email",
            "ada@example.org",
        ],
    );
    out.ok()
        .stderr_has("registered with corp as a signing key")
        .never_shows(TOKEN);
    let reqs = w.api.requests();
    let posts: Vec<_> = reqs.iter().filter(|r| r["method"] == "POST").collect();
    assert_eq!(
        posts[0]["body"]["usage_type"], "auth_and_signing",
        "{reqs:?}"
    );
    assert!(
        posts[1..]
            .iter()
            .all(|p| p["body"]["usage_type"] == "auth_and_signing"),
        "{reqs:?}"
    );
    assert!(w.authorized().contains(&w.public()));
}
