//! The one table of Git hosting providers: SSH endpoints (22 and the 443 alternates), the web
//! hosts users paste https URLs from, the key types each accepts, the key-upload page, the
//! template with the upload steps, and the host keys pinned from the providers' own
//! documentation (plus revoked keys). Self-hosted providers come from the config file and take
//! the same shape. The pinned keys and where each comes from: SECURITY.md ("What is pinned,
//! and why some pins are marked unconfirmed"); each entry below names its sources.

use serde::Serialize;
use ssh_key::Algorithm;

use crate::config::{Config, ProviderConfig, SelfHostedKind};
use crate::error::{Error, ErrorKind, Result};
use crate::key_type::KeyType;

pub mod api;
mod builtin;
pub mod published;

use builtin::{ALIASES, COMMON, builtin};

/// The family a provider belongs to: decides the upload steps template and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    Github,
    Gitlab,
    Bitbucket,
    AzureDevops,
    /// Gitea and Forgejo (Codeberg runs Forgejo).
    Gitea,
    /// A plain sshd: keys go into `~/.ssh/authorized_keys` on the server.
    Plain,
}

impl ProviderKind {
    /// The template under `templates/upload/` with this kind's upload steps.
    pub fn template(self) -> &'static str {
        match self {
            ProviderKind::Github => "github",
            ProviderKind::Gitlab => "gitlab",
            ProviderKind::Bitbucket => "bitbucket",
            ProviderKind::AzureDevops => "azure-devops",
            ProviderKind::Gitea => "gitea",
            ProviderKind::Plain => "plain",
        }
    }
}

/// Where an SSH server listens (the one host-and-port type).
pub use crate::endpoint::Endpoint;

/// A host key pinned from the provider's documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    /// The endpoint this key is published for.
    pub endpoint: Endpoint,
    /// `type base64` as in a known_hosts line; `None` for self-hosted pins given by fingerprint.
    pub key: Option<String>,
    /// `SHA256:...` as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// `false` when only one source (or none first-party) confirms it: never trusted silently.
    pub confirmed: bool,
}

/// A host key that must never be trusted again, whatever else says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revoked {
    pub fingerprint: String,
    /// `type base64`, when the blob is known.
    pub key: Option<String>,
    pub reason: String,
}

/// Where the user adds a public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "url")]
pub enum Upload {
    /// One page for everyone.
    Page(String),
    /// A page per organization; `{org}` in the pattern is replaced (percent-encoded).
    PerOrganization(String),
    /// No web page (a plain sshd).
    None,
}

/// One provider, built in or from the config file.
#[derive(Debug, Clone, Serialize)]
pub struct Provider {
    /// The name used on the command line: `github`, `azure-devops`, or a config table name.
    pub id: String,
    /// The name shown to people.
    pub name: String,
    pub kind: ProviderKind,
    /// SSH endpoints, the primary first; all serve the same repositories.
    pub ssh: Vec<Endpoint>,
    /// The endpoint on port 443 for networks that block port 22.
    pub ssh_443: Option<Endpoint>,
    /// Hosts of the web UI (https clone URLs).
    pub web_hosts: Vec<String>,
    pub key_types: Vec<KeyType>,
    pub upload: Upload,
    /// The provider's page that lists its host key fingerprints.
    pub fingerprints_page: Option<String>,
    pub pins: Vec<Pin>,
    pub revoked: Vec<Revoked>,
    pub builtin: bool,
    /// The SSH user of the Git service (`git` for the hosted providers).
    pub ssh_user: String,
    /// Facts a user should know (shown with the upload steps).
    pub notes: Vec<String>,
    /// The key API (`keyclone pubkey --upload`); `None` where the provider has none.
    pub api: Option<api::ApiInfo>,
}

impl Provider {
    pub fn accepts(&self, alg: &Algorithm) -> bool {
        KeyType::of(alg).is_some_and(|t| self.key_types.contains(&t))
    }

    /// An error naming the fix when this provider refuses keys of `alg` (the key at `path`).
    pub fn check_key_type(&self, alg: &Algorithm, path: &std::path::Path) -> Result<()> {
        if self.accepts(alg) {
            return Ok(());
        }
        Err(Error::refused(format!(
            "{} does not accept {} keys like `{}` (it accepts: {})",
            self.name,
            alg.as_str(),
            path.display(),
            self.accepted_list()
        ))
        .hint(format!(
            "create a key it accepts: `keyclone keygen --provider {}`",
            self.id
        )))
    }

    /// True when RSA is the only type this provider takes (Azure DevOps).
    pub fn rsa_only(&self) -> bool {
        self.key_types == [KeyType::Rsa]
    }

    /// The key-upload page; for per-organization pages, `None` until the organization is known.
    pub fn upload_url(&self, org: Option<&str>) -> Option<String> {
        match &self.upload {
            Upload::Page(u) => Some(u.clone()),
            Upload::PerOrganization(pattern) => org.map(|o| {
                let enc: String = url::form_urlencoded::byte_serialize(o.as_bytes()).collect();
                pattern.replace("{org}", &enc.replace('+', "%20"))
            }),
            Upload::None => None,
        }
    }

    pub fn needs_org(&self) -> bool {
        matches!(self.upload, Upload::PerOrganization(_))
    }

    /// The accepted key types, for messages: `ed25519, ecdsa, rsa`.
    pub fn accepted_list(&self) -> String {
        self.key_types
            .iter()
            .map(|t| t.short())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether `host:port` is one of this provider's SSH endpoints (or web hosts, port ignored).
    pub fn serves(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        let mut ssh = self.ssh.iter().chain(self.ssh_443.iter());
        ssh.any(|e| e.host == host && port.is_none_or(|p| p == e.port))
            || self.web_hosts.contains(&host)
            || (self.kind == ProviderKind::AzureDevops
                && self.builtin
                && host.ends_with(".visualstudio.com"))
    }
}

/// All providers keyclone knows: the built-in ones and those of the config file.
#[derive(Debug, Clone)]
pub struct Registry {
    providers: Vec<Provider>,
    /// Where providers publish their host keys (`published::builtin_sources`, `published-url`).
    published: Vec<(String, published::Published)>,
}

impl Registry {
    pub fn builtin() -> Self {
        Registry {
            providers: builtin(),
            published: published::builtin_sources(),
        }
    }

    /// The built-in providers plus the self-hosted ones declared in the config.
    pub fn with_config(config: &Config) -> Result<Self> {
        let mut reg = Registry::builtin();
        for (id, pc) in &config.provider {
            if reg.find(id).is_some() {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("the config file declares a provider `{id}`, which is a built-in provider's name"),
                )
                .hint(format!("rename `[provider.{id}]` in the config file")));
            }
            let p = from_config(id, pc);
            // Pinned hosts stay pinned: a config entry may not claim a host that a built-in
            // provider pins (as its SSH host, web host or fallback host) without pinning keys
            // of its own, or `trust --accept-new` would trust a fake github.com on first use.
            // Not even with fingerprints of its own: a config file (which a team may hand
            // around) could otherwise pin a fake key for github.com.
            if let Some((host, owner)) = claims_pinned_host(&reg, &p) {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "the config file's `[provider.{id}]` claims `{host}`, a host whose keys {owner} publishes; only the keys {owner} publishes are trusted for it"
                    ),
                )
                .hint(format!(
                    "remove `{host}` from `[provider.{id}]`: the built-in provider `{}` already serves it",
                    reg.for_host(&host, None).map_or(owner.clone(), |b| b.id.clone())
                )));
            }
            if let Some(url) = &pc.published_url {
                let format = pc.published_format.unwrap_or(match pc.kind {
                    SelfHostedKind::Github => crate::config::PublishedFormat::GithubMeta,
                    _ => crate::config::PublishedFormat::KnownHosts,
                });
                let endpoints = p.ssh.iter().chain(p.ssh_443.iter()).cloned().collect();
                reg.published.push((
                    p.id.clone(),
                    published::Published {
                        url: url.clone(),
                        format,
                        endpoints,
                    },
                ));
            }
            reg.providers.push(p);
        }
        for (id, over) in &config.api {
            let Some(p) = reg
                .providers
                .iter_mut()
                .find(|p| p.id.eq_ignore_ascii_case(id))
            else {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("the config file's `[api.{id}]` names no provider"),
                )
                .hint(format!(
                    "known providers: {}",
                    Registry::builtin().ids().join(", ")
                )));
            };
            let device = p.api.as_mut().and_then(|a| a.device.as_mut());
            match (device, &over.oauth_client_id) {
                (Some(d), Some(cid)) => d.client_id = Some(cid.clone()),
                (None, Some(_)) => {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "`[api.{id}] oauth-client-id`: {} has no OAuth device flow",
                            p.name
                        ),
                    )
                    .hint(format!(
                        "remove it; give a token instead (`--token-file FILE`, or {})",
                        p.api
                            .as_ref()
                            .map_or("a token".into(), |a| a.token_env.join(" or "))
                    )));
                }
                _ => {}
            }
        }
        Ok(reg)
    }

    /// A registry of exactly these providers (for tests of decisions built around the
    /// config check).
    #[cfg(test)]
    pub(crate) fn from_providers(providers: Vec<Provider>) -> Self {
        Registry {
            providers,
            published: Vec::new(),
        }
    }

    /// Where provider `id` publishes its host keys over https, if it does.
    pub fn published(&self, id: &str) -> Option<&published::Published> {
        self.published.iter().find(|(p, _)| p == id).map(|(_, s)| s)
    }

    /// The providers that publish their host keys, with where.
    pub fn published_all(&self) -> impl Iterator<Item = (&Provider, &published::Published)> {
        self.published
            .iter()
            .filter_map(|(id, s)| self.find(id).map(|p| (p, s)))
    }

    /// Takes the refreshed keys of the store in place of the pins they replace (see
    /// [`published::apply`]).
    pub fn apply_refreshes(&mut self, store: &published::Store) {
        for (id, src) in &self.published {
            if let (Some(p), Some(r)) = (
                self.providers.iter_mut().find(|p| &p.id == id),
                store.get(id),
            ) {
                published::apply(p, src, r);
            }
        }
    }

    pub fn all(&self) -> &[Provider] {
        &self.providers
    }

    /// Finds a provider by id (case-insensitive) or alias.
    pub fn find(&self, name: &str) -> Option<&Provider> {
        let lower = name.to_ascii_lowercase();
        let id = ALIASES
            .iter()
            .find(|(a, _)| *a == lower)
            .map_or(lower.as_str(), |(_, id)| id);
        self.providers
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(id))
    }

    /// Like [`Registry::find`], with an error listing the known names.
    pub fn get(&self, name: &str) -> Result<&Provider> {
        self.find(name).ok_or_else(|| {
            Error::usage(format!("unknown provider `{name}`"))
                .hint(format!("known providers: {}", self.ids().join(", ")))
                .hint("declare a self-hosted one in the config file: see `[provider.NAME]` in the README")
        })
    }

    /// The provider serving `host` (and `port`, when given). Config entries win over built-ins.
    pub fn for_host(&self, host: &str, port: Option<u16>) -> Option<&Provider> {
        self.providers.iter().rev().find(|p| p.serves(host, port))
    }

    /// The provider serving this host on this port.
    pub fn for_endpoint(&self, ep: &Endpoint) -> Option<&Provider> {
        self.for_host(&ep.host, Some(ep.port))
    }

    pub fn ids(&self) -> Vec<&str> {
        self.providers.iter().map(|p| p.id.as_str()).collect()
    }
}

/// The first host `p` claims (SSH endpoints, fallback, web hosts) that a built-in provider
/// pins or serves, with that provider's name.
fn claims_pinned_host(reg: &Registry, p: &Provider) -> Option<(String, String)> {
    let claimed = p
        .ssh
        .iter()
        .chain(p.ssh_443.iter())
        .map(|e| e.host.clone())
        .chain(p.web_hosts.iter().cloned());
    for host in claimed {
        let owner =
            reg.providers.iter().filter(|b| b.builtin).find(|b| {
                b.pins.iter().any(|pin| pin.endpoint.host == host) || b.serves(&host, None)
            });
        if let Some(b) = owner {
            return Some((host, b.name.clone()));
        }
    }
    None
}

fn from_config(id: &str, pc: &ProviderConfig) -> Provider {
    let host = pc.host.to_ascii_lowercase();
    let port = pc.port.unwrap_or(crate::endpoint::DEFAULT_PORT);
    let endpoint = Endpoint::new(&host, port);
    let fallback = pc.fallback_port.map(|fp| {
        Endpoint::new(
            pc.fallback_host
                .as_deref()
                .unwrap_or(&host)
                .to_ascii_lowercase(),
            fp,
        )
    });
    let web = pc.web_host.clone().unwrap_or_else(|| host.clone());
    let (kind, default_upload) = match pc.kind {
        SelfHostedKind::Github => (
            ProviderKind::Github,
            Some(format!("https://{web}/settings/ssh/new")),
        ),
        SelfHostedKind::Gitlab => (
            ProviderKind::Gitlab,
            Some(format!("https://{web}/-/user_settings/ssh_keys")),
        ),
        SelfHostedKind::Gitea | SelfHostedKind::Forgejo => (
            ProviderKind::Gitea,
            Some(format!("https://{web}/user/settings/keys")),
        ),
        SelfHostedKind::Bitbucket => (
            ProviderKind::Bitbucket,
            Some(format!("https://{web}/account/settings/ssh-keys/")),
        ),
        SelfHostedKind::Plain => (ProviderKind::Plain, None),
    };
    let upload = match pc.upload_url.clone().or(default_upload) {
        Some(u) => Upload::Page(u),
        None => Upload::None,
    };
    Provider {
        id: id.to_owned(),
        name: pc.name.clone().unwrap_or_else(|| id.to_owned()),
        kind,
        ssh: vec![endpoint.clone()],
        ssh_443: fallback.clone(),
        web_hosts: if kind == ProviderKind::Plain {
            vec![]
        } else {
            vec![web]
        },
        key_types: pc.key_types.clone().unwrap_or_else(|| COMMON.to_vec()),
        upload,
        fingerprints_page: None,
        pins: std::iter::once(&endpoint)
            .chain(fallback.iter())
            .flat_map(|e| {
                pc.fingerprints.iter().map(move |fp| Pin {
                    endpoint: e.clone(),
                    key: None,
                    fingerprint: fp.clone(),
                    confirmed: true,
                })
            })
            .collect(),
        revoked: vec![],
        builtin: false,
        ssh_user: pc.user.clone().unwrap_or_else(|| "git".into()),
        notes: vec![],
        api: builtin::self_hosted_api(id, pc, kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::{HashAlg, PublicKey};

    #[test]
    fn a_config_provider_of_kind_bitbucket_speaks_bitbucket_s_api() {
        let toml = "[provider.corp]\nkind = \"bitbucket\"\nhost = \"git.corp.example\"\n";
        let reg = Registry::with_config(&crate::config::parse(toml).unwrap()).unwrap();
        let p = reg.get("corp").unwrap();
        assert_eq!(p.kind, ProviderKind::Bitbucket);
        let api = p.api.as_ref().unwrap();
        assert_eq!(api.kind, api::ApiKind::Bitbucket);
        assert_eq!(api.base, "https://api.git.corp.example/2.0");
        assert_eq!(api.token_env, ["KEYCLONE_TOKEN_CORP"]);
        assert!(api.device.is_none());
    }

    #[test]
    fn every_pinned_and_revoked_key_matches_its_documented_fingerprint() {
        let mut checked = 0;
        for p in builtin() {
            let keys = p
                .pins
                .iter()
                .filter_map(|pin| pin.key.as_ref().map(|k| (k, &pin.fingerprint)))
                .chain(
                    p.revoked
                        .iter()
                        .filter_map(|r| r.key.as_ref().map(|k| (k, &r.fingerprint))),
                );
            for (key, fp) in keys {
                let pk = PublicKey::from_openssh(key).unwrap();
                assert_eq!(
                    &pk.fingerprint(HashAlg::Sha256).to_string(),
                    fp,
                    "{} {}",
                    p.id,
                    key
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 22);
    }

    #[test]
    fn unverified_pins_are_marked_unconfirmed() {
        let reg = Registry::builtin();
        let gh = reg.get("github").unwrap();
        let at443: Vec<_> = gh.pins.iter().filter(|p| p.endpoint.port == 443).collect();
        assert!(
            at443
                .iter()
                .any(|p| p.confirmed && p.key.as_deref().unwrap().starts_with("ssh-ed25519"))
        );
        assert!(
            at443
                .iter()
                .filter(|p| !p.key.as_deref().unwrap().starts_with("ssh-ed25519"))
                .all(|p| !p.confirmed)
        );
        let gl = reg.get("gitlab").unwrap();
        assert!(
            gl.pins
                .iter()
                .filter(|p| p.endpoint.host == "altssh.gitlab.com")
                .all(|p| !p.confirmed)
        );
        let bb = reg.get("bitbucket").unwrap();
        assert!(
            bb.pins.iter().all(|p| p.endpoint.host == "bitbucket.org"),
            "ssh.bitbucket.org has no published keys"
        );
    }

    #[test]
    fn lookup_by_alias_and_host() {
        let reg = Registry::builtin();
        assert_eq!(reg.get("Azure").unwrap().id, "azure-devops");
        assert_eq!(
            reg.for_host("ssh.dev.azure.com", Some(22)).unwrap().id,
            "azure-devops"
        );
        assert_eq!(
            reg.for_host("myorg.visualstudio.com", None).unwrap().id,
            "azure-devops"
        );
        assert_eq!(
            reg.for_host("ssh.github.com", Some(443)).unwrap().id,
            "github"
        );
        assert_eq!(
            reg.for_host("ssh.bitbucket.org", Some(22)).unwrap().id,
            "bitbucket"
        );
        assert!(reg.for_host("example.com", None).is_none());
        let e = reg.get("sourceforge").unwrap_err();
        assert!(e.hints()[0].contains("github") && e.hints()[0].contains("azure-devops"));
    }

    #[test]
    fn azure_devops_is_rsa_only_and_its_upload_page_needs_the_org() {
        let reg = Registry::builtin();
        let az = reg.get("azure-devops").unwrap();
        assert!(az.rsa_only());
        assert!(!az.accepts(&Algorithm::Ed25519));
        assert_eq!(az.upload_url(None), None);
        assert_eq!(
            az.upload_url(Some("my org")).unwrap(),
            "https://dev.azure.com/my%20org/_usersSettings/keys"
        );
    }
}
