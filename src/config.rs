//! The config file (`$XDG_CONFIG_HOME/keyclone/config.toml` or `--config FILE`): self-hosted
//! providers for now. Unknown keys are errors, so a typo does not silently do nothing.
//!
//! ```toml
//! [provider.corp]
//! kind = "gitlab"                  # github | gitlab | gitea | forgejo | bitbucket | plain
//! host = "git.corp.example"
//! port = 2222                      # default 22
//! name = "Corp GitLab"             # shown to people; default: the table name
//! upload-url = "https://git.corp.example/-/user_settings/ssh_keys"   # default from kind
//! key-types = ["ed25519", "rsa"]   # default: ed25519, ecdsa, rsa
//! fingerprints = ["SHA256:..."]    # the host keys to trust (from your administrator)
//!
//! api-base = "https://git.corp.example/api/v4"   # the key API [default from kind and web host]
//! token-env = "CORP_TOKEN"         # its token's variable, ends in _TOKEN [default: KEYCLONE_TOKEN_CORP]
//! oauth-client-id = "..."          # an OAuth app with the device flow, registered by you
//!
//! [api.github]
//! oauth-client-id = "Ov23li..."    # your organisation's OAuth app (device flow enabled)
//!
//! [clone]
//! root = "/data/code"              # clones go to ROOT/Users/USER/REPO
//! user = "ada"                     # default: the login name
//! key = "/home/ada/.ssh/id_work"   # default: the provider's default key
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::key_type::KeyType;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Self-hosted providers, by the name used with `--provider`.
    #[serde(default)]
    pub provider: BTreeMap<String, ProviderConfig>,
    /// Defaults for `keyclone clone`.
    #[serde(default)]
    pub clone: CloneConfig,
    /// Key policy (`doctor`, `rotate`).
    #[serde(default)]
    pub keys: KeysConfig,
    /// `[api.NAME]`: a provider's API settings (the OAuth client id an organisation registered).
    #[serde(default)]
    pub api: BTreeMap<String, ApiConfig>,
}

/// `[api.NAME]`, for a built-in or self-hosted provider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ApiConfig {
    /// The client id of an OAuth application with the device flow enabled.
    pub oauth_client_id: Option<String>,
}

/// `[keys]`: how old a key may get before `doctor` asks for `keyclone rotate`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeysConfig {
    pub max_age_days: Option<u32>,
}

/// `[clone]`: where repositories go and which key clones them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CloneConfig {
    /// The workspace root; clones go to `ROOT/Users/USER/REPO`.
    pub root: Option<std::path::PathBuf>,
    /// The per-user folder name under `ROOT/Users/`.
    pub user: Option<String>,
    /// The private key to clone with.
    pub key: Option<std::path::PathBuf>,
}

/// What software a self-hosted provider runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelfHostedKind {
    /// GitHub Enterprise Server.
    #[serde(alias = "github-enterprise")]
    Github,
    Gitlab,
    Gitea,
    Forgejo,
    /// A service speaking Bitbucket Cloud's API 2.0 (`api-base`, default
    /// `https://api.WEB-HOST/2.0`); Bitbucket Cloud itself is the built-in `bitbucket`.
    Bitbucket,
    /// A plain OpenSSH server.
    Plain,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProviderConfig {
    pub kind: SelfHostedKind,
    pub host: String,
    pub port: Option<u16>,
    pub name: Option<String>,
    /// Host of the web UI when it differs from the SSH host.
    pub web_host: Option<String>,
    pub upload_url: Option<String>,
    pub key_types: Option<Vec<KeyType>>,
    #[serde(default)]
    pub fingerprints: Vec<String>,
    /// A second SSH endpoint for networks that block the first port (as `ssh.github.com:443`);
    /// `fallback-host` defaults to `host`. The fingerprints cover it too.
    pub fallback_host: Option<String>,
    pub fallback_port: Option<u16>,
    /// The SSH user of the Git service [default: git].
    pub user: Option<String>,
    /// The key API's address [default: `https://WEB-HOST/api/v3` (github), `/api/v4` (gitlab),
    /// `/api/v1` (gitea, forgejo), `https://api.WEB-HOST/2.0` (bitbucket)]; https only.
    pub api_base: Option<String>,
    /// The environment variable the API token is read from [default: `KEYCLONE_TOKEN_NAME`].
    pub token_env: Option<String>,
    /// The client id of an OAuth application with the device flow enabled.
    pub oauth_client_id: Option<String>,
    /// Where the server publishes its SSH host keys over https (a GitHub Enterprise Server's
    /// `https://HOST/api/v3/meta`): `keyclone trust --refresh` fetches them for this
    /// provider's own endpoints only.
    pub published_url: Option<String>,
    /// The format of `published-url` [default: `github-meta` for `kind = "github"`, else
    /// `known-hosts`].
    pub published_format: Option<PublishedFormat>,
}

/// How a provider publishes its SSH host keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublishedFormat {
    /// JSON with `ssh_keys: ["TYPE BASE64", ...]` (GitHub's `/meta`).
    GithubMeta,
    /// known_hosts lines `HOST TYPE BASE64` (Bitbucket's `/site/ssh`).
    KnownHosts,
}

/// Loads the config. A missing file is an empty config unless it was named explicitly.
pub fn load(path: &Path, explicit: bool) -> Result<Config> {
    let text =
        match crate::files::read_bounded_text(path, crate::files::CONFIG_LIMIT, "config file") {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound && !explicit => {
                return Ok(Config::default());
            }
            Err(e) => return Err(e.hint("check the path given to `--config`")),
        };
    parse(&text).map_err(|e| {
        Error::new(ErrorKind::Config, format!("the config file `{}` is invalid: {}", path.display(), e.message()))
            .hint("fix the file (its format is in the README, section \"Configuration\"), then run the same command again")
    })
}

/// Parses and validates config text.
pub fn parse(text: &str) -> Result<Config> {
    let config: Config = toml::from_str(text)
        .map_err(|e| Error::new(ErrorKind::Config, e.to_string().trim_end().to_string()))?;
    for (id, p) in &config.provider {
        let bad = |what: String| Error::new(ErrorKind::Config, format!("[provider.{id}]: {what}"));
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad(
                "the name may only hold letters, digits, `-` and `_`".into()
            ));
        }
        // The names rule: these values reach known_hosts, `~/.ssh/config` and messages.
        let hosts = [
            ("host", Some(&p.host)),
            ("web-host", p.web_host.as_ref()),
            ("fallback-host", p.fallback_host.as_ref()),
        ];
        for (key, value) in hosts {
            if let Some(v) = value {
                crate::names::host(v).map_err(|why| {
                    bad(format!(
                        "`{key} = {:?}` is not a host name: {why}",
                        crate::names::shown(v)
                    ))
                })?;
            }
        }
        // Shown to the user as they are: no control or invisible characters.
        for (key, value) in [
            ("name", p.name.as_ref()),
            ("upload-url", p.upload_url.as_ref()),
        ] {
            if let Some(v) = value
                && crate::names::shown(v) != *v
            {
                return Err(bad(format!(
                    "`{key} = {:?}` holds control or invisible characters",
                    crate::names::shown(v)
                )));
            }
        }
        if let Some(u) = &p.user {
            crate::names::user(u).map_err(|why| {
                bad(format!(
                    "`user = {:?}` is not an SSH user name: {why}",
                    crate::names::shown(u)
                ))
            })?;
        }
        if p.fallback_port == Some(0) {
            return Err(bad("`fallback-port` must be between 1 and 65535".into()));
        }
        if p.port == Some(0) {
            return Err(bad("`port` must be between 1 and 65535".into()));
        }
        if let Some(u) = &p.upload_url {
            match url::Url::parse(u) {
                Ok(parsed) if parsed.scheme() == "https" || parsed.scheme() == "http" => {}
                _ => return Err(bad(format!("`upload-url = {u:?}` is not an http(s) URL"))),
            }
        }
        if let Some(u) = &p.api_base {
            match url::Url::parse(u) {
                Ok(parsed)
                    if parsed.scheme() == "https"
                        && parsed.username().is_empty()
                        && parsed.password().is_none()
                        && parsed.query().is_none() => {}
                _ => {
                    return Err(bad(format!(
                        "`api-base = {:?}` is not an https URL without user, password or query (keyclone sends tokens over https only)",
                        crate::names::shown(u)
                    )));
                }
            }
        }
        if let Some(u) = &p.published_url {
            match url::Url::parse(u) {
                Ok(parsed) if parsed.scheme() == "https" && crate::names::shown(u) == *u => {}
                _ => {
                    return Err(bad(format!(
                        "`published-url = {:?}` is not an https URL (host keys are fetched over verified https only)",
                        crate::names::shown(u)
                    )));
                }
            }
        }
        if let Some(v) = &p.token_env
            && crate::env::HOSTED_TOKEN_VARS.contains(&v.as_str())
        {
            return Err(bad(format!(
                "`token-env = {v:?}` is a hosted provider's token variable: keyclone never sends it to another host"
            ))
            .hint("name a variable of this provider's own, like `KEYCLONE_TOKEN_NAME` or `CORP_GIT_TOKEN`"));
        }
        if let Some(v) = &p.token_env
            && !crate::env::is_token_var(v)
        {
            return Err(bad(format!(
                "`token-env = {:?}` is not a token variable's name (upper-case letters, digits and `_`, ending in `_TOKEN`)",
                crate::names::shown(v)
            )));
        }
        for fp in &p.fingerprints {
            if !is_sha256_fingerprint(fp) {
                return Err(bad(format!(
                    "`{fp}` is not a SHA256 fingerprint (like `SHA256:` followed by 43 base64 characters, as `ssh-keygen -lf` prints)"
                )));
            }
        }
    }
    Ok(config)
}

/// `SHA256:` + 43 characters of unpadded standard base64.
pub fn is_sha256_fingerprint(s: &str) -> bool {
    s.strip_prefix("SHA256:").is_some_and(|b| {
        b.len() == 43
            && b.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[provider.corp]
kind = "gitlab"
host = "git.corp.example"
port = 2222
fingerprints = ["SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"]
"#;

    #[test]
    fn self_hosted_provider_parses() {
        let c = parse(GOOD).unwrap();
        let p = &c.provider["corp"];
        assert_eq!(p.kind, SelfHostedKind::Gitlab);
        assert_eq!(p.port, Some(2222));
    }

    #[test]
    fn unknown_keys_are_errors_with_a_location() {
        let e = parse("[provider.x]\nkind = \"gitlab\"\nhost = \"h\"\nprot = 22\n").unwrap_err();
        assert!(e.message().contains("prot"), "{}", e.message());
        assert!(e.message().contains("line 4"), "{}", e.message());
    }

    #[test]
    fn bad_values_are_named() {
        let e =
            parse("[provider.x]\nkind = \"gitlab\"\nhost = \"h\"\nfingerprints = [\"MD5:aa\"]\n")
                .unwrap_err();
        assert!(e.message().contains("MD5:aa"));
        let e = parse("[provider.x]\nkind = \"svn\"\nhost = \"h\"\n").unwrap_err();
        assert!(e.message().contains("svn"));
        let e = parse("[provider.x]\nkind = \"plain\"\nhost = \"a b\"\n").unwrap_err();
        assert!(e.message().contains("not a host name"));
    }

    /// A self-hosted provider cannot name a hosted provider's token variable: the user's
    /// github.com token would go to its API host.
    #[test]
    fn a_hosted_providers_token_variable_is_refused_for_another_provider() {
        for v in crate::env::HOSTED_TOKEN_VARS {
            let text = format!(
                "[provider.x]\nkind = \"github\"\nhost = \"git.corp.example\"\ntoken-env = \"{v}\"\n"
            );
            let e = parse(&text).unwrap_err();
            assert!(
                e.message().contains("hosted provider's token variable"),
                "{v}: {}",
                e.message()
            );
        }
        let ok = "[provider.x]\nkind = \"github\"\nhost = \"git.corp.example\"\ntoken-env = \"CORP_GIT_TOKEN\"\n";
        assert!(parse(ok).is_ok());
    }

    #[test]
    fn missing_default_file_is_empty_but_missing_explicit_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("none.toml");
        assert!(load(&p, false).unwrap().provider.is_empty());
        assert_eq!(load(&p, true).unwrap_err().kind(), ErrorKind::NotFound);
    }
}
