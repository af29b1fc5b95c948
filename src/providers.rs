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

fn pins(hosts: &[(&str, u16, bool)], keys: &[(&str, &str, bool)]) -> Vec<Pin> {
    let mut out = Vec::new();
    for &(host, port, host_confirmed) in hosts {
        for &(key, fp, key_confirmed) in keys {
            out.push(Pin {
                endpoint: Endpoint::new(host, port),
                key: Some(key.to_owned()),
                fingerprint: fp.to_owned(),
                confirmed: host_confirmed && key_confirmed,
            });
        }
    }
    out
}

const GITHUB_ED25519: (&str, &str) = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
);
const GITHUB_ECDSA: (&str, &str) = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
    "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
);
const GITHUB_RSA: (&str, &str) = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnGLVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+EjqoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk=",
    "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
);
const GITLAB_ED25519: (&str, &str) = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf",
    "SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8",
);
const GITLAB_ECDSA: (&str, &str) = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFSMqzJeV9rUzU4kWitGjeR4PWSa29SPqJ1fVkhtj3Hw9xjLVXVYrU9QlYWrOLXBpQ6KWjbjTDTdDkoohFzgbEY=",
    "SHA256:HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw",
);
const GITLAB_RSA: (&str, &str) = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCsj2bNKTBSpIYDEGk9KxsGh3mySTRgMtXL583qmBpzeQ+jqCMRgBqB98u3z++J1sKlXHWfM9dyhSevkMwSbhoR8XIq/U0tCNyokEi/ueaBMCvbcTHhO7FcwzY92WK4Yt0aGROY5qX2UKSeOvuP4D6TPqKF1onrSzH9bx9XUf2lEdWT/ia1NEKjunUqu1xOB/StKDHMoX4/OKyIzuS0q/T1zOATthvasJFoPrAjkohTyaDUz2LN5JoH839hViyEG82yB+MjcFV5MU3N1l1QL3cVUCh93xSaua1N85qivl+siMkPGbO5xR/En4iEY6K2XPASUEMaieWVNTRCtJ4S8H+9",
    "SHA256:ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ",
);
const BITBUCKET_ED25519: (&str, &str) = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIazEu89wgQZ4bqs3d63QSMzYVa0MuJ2e2gKTKqu+UUO",
    "SHA256:ybgmFkzwOSotHTHLJgHO0QN8L0xErw6vd0VhFA9m3SM",
);
const BITBUCKET_ECDSA: (&str, &str) = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPIQmuzMBuKdWeF4+a2sjSSpBK0iqitSQ+5BM9KhpexuGt20JpTVM7u5BDZngncgrqDMbWdxMWWOGtZ9UgbqgZE=",
    "SHA256:FC73VB6C4OQLSCrjEayhMp9UMxS97caD/Yyi2bhW/J0",
);
const BITBUCKET_RSA: (&str, &str) = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDQeJzhupRu0u0cdegZIa8e86EG2qOCsIsD1Xw0xSeiPDlCr7kq97NLmMbpKTX6Esc30NuoqEEHCuc7yWtwp8dI76EEEB1VqY9QJq6vk+aySyboD5QF61I/1WeTwu+deCbgKMGbUijeXhtfbxSxm6JwGrXrhBdofTsbKRUsrN1WoNgUa8uqN1Vx6WAJw1JHPhglEGGHea6QICwJOAr/6mrui/oB7pkaWKHj3z7d1IC4KWLtY47elvjbaTlkN04Kc/5LFEirorGYVbt15kAUlqGM65pk6ZBxtaO3+30LVlORZkxOh+LKL/BvbZ/iRNhItLqNyieoQj/uh/7Iv4uyH/cV/0b4WDSd3DptigWq84lJubb9t/DnZlrJazxyDCulTmKdOR7vs9gMTo+uoIrPSb8ScTtvw65+odKAlBj59dhnVp9zd7QUojOpXlL62Aw56U4oO+FALuevvMjiWeavKhJqlR7i5n9srYcrNV7ttmDw7kf/97P5zauIhxcjX+xHv4M=",
    "SHA256:46OSHA1Rmj8E8ERTC6xkNcmGOw9oFxYr0WF6zWW8l1E",
);
const AZURE_RSA: (&str, &str) = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7Hr1oTWqNqOlzGJOfGJ4NakVyIzf1rXYd4d7wo6jBlkLvCA4odBlL0mDUyZ0/QUfTTqeu+tm22gOsv+VrVTMk6vwRU75gY/y9ut5Mb3bR5BV58dKXyq9A9UeB5Cakehn5Zgm6x1mKoVyf+FFn26iYqXJRgzIZZcZ5V6hrE0Qg39kZm4az48o0AUbf6Sp4SLdvnuMa2sVNwHBboS7EJkm57XQPVU3/QpyNLHbWDdzwtrlS+ez30S3AdYhLKEOxAG8weOnyrtLJAUen9mTkol8oII1edf7mWWbWVf0nBmly21+nZcmCTISQBtdcyPaEno7fFQMDD26/s0lfKob4Kw8H",
    "SHA256:ohD8VZEXGWo6Ez8GSEJQ9WpafgLFsOfLOtGGQCQo6Og",
);
const CODEBERG_ED25519: (&str, &str) = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIVIC02vnjFyL+I4RHfvIGNtOgJMe769VTF1VR4EB3ZB",
    "SHA256:mIlxA9k46MmM6qdJOdMnAQpzGxF4WIVVL+fj+wZbw0g",
);
const CODEBERG_ECDSA: (&str, &str) = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBL2pDxWr18SoiDJCGZ5LmxPygTlPu+cCKSkpqkvCyQzl5xmIMeKNdfdBpfbCGDPoZQghePzFZkKJNR/v9Win3Sc=",
    "SHA256:T9FYDEHELhVkulEKKwge5aVhVTbqCW0MIRwAfpARs/E",
);
const CODEBERG_RSA: (&str, &str) = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC8hZi7K1/2E2uBX8gwPRJAHvRAob+3Sn+y2hxiEhN0buv1igjYFTgFO2qQD8vLfU/HT/P/rqvEeTvaDfY1y/vcvQ8+YuUYyTwE2UaVU5aJv89y6PEZBYycaJCPdGIfZlLMmjilh/Sk8IWSEK6dQr+g686lu5cSWrFW60ixWpHpEVB26eRWin3lKYWSQGMwwKv4LwmW3ouqqs4Z4vsqRFqXJ/eCi3yhpT+nOjljXvZKiYTpYajqUC48IHAxTWugrKe1vXWOPxVXXMQEPsaIRc2hpK+v1LmfB7GnEGvF1UAKnEZbUuiD9PBEeD5a1MZQIzcoPWCrTxipEpuXQ5Tni4mN",
    "SHA256:6QQmYi4ppFS4/+zSZ5S4IU+4sa6rwvQ4PbhCtPEBekQ",
);

fn revoked(fp: &str, key: Option<&str>, reason: &str) -> Revoked {
    Revoked {
        fingerprint: fp.to_owned(),
        key: key.map(str::to_owned),
        reason: reason.to_owned(),
    }
}

fn c(k: (&'static str, &'static str)) -> (&'static str, &'static str, bool) {
    (k.0, k.1, true)
}

fn unconfirmed(k: (&'static str, &'static str)) -> (&'static str, &'static str, bool) {
    (k.0, k.1, false)
}

const COMMON: [KeyType; 3] = [KeyType::Ed25519, KeyType::Ecdsa, KeyType::Rsa];

/// The built-in providers.
pub fn builtin() -> Vec<Provider> {
    vec![
        Provider {
            id: "github".into(),
            name: "GitHub".into(),
            kind: ProviderKind::Github,
            ssh: vec![Endpoint::new("github.com", 22)],
            ssh_443: Some(Endpoint::new("ssh.github.com", 443)),
            web_hosts: vec!["github.com".into(), "www.github.com".into()],
            key_types: vec![KeyType::Ed25519, KeyType::Ecdsa, KeyType::Rsa, KeyType::SkEd25519, KeyType::SkEcdsa],
            upload: Upload::Page("https://github.com/settings/ssh/new".into()),
            fingerprints_page: Some(
                "https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/githubs-ssh-key-fingerprints".into(),
            ),
            pins: [
                pins(&[("github.com", 22, true)], &[c(GITHUB_ED25519), c(GITHUB_ECDSA), c(GITHUB_RSA)]),
                // Port 443: GitHub documents the Ed25519 key; ECDSA/RSA there rest on one third-party list.
                pins(&[("ssh.github.com", 443, true)], &[c(GITHUB_ED25519), unconfirmed(GITHUB_ECDSA), unconfirmed(GITHUB_RSA)]),
            ]
            .concat(),
            revoked: vec![
                revoked(
                    "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
                    Some("ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEAq2A7hRGmdnm9tUDbO9IDSwBK6TbQa+PXYPCPy6rbTrTtw7PHkccKrpp0yVhp5HdEIcKr6pLlVDBfOLX9QUsyCOV0wzfjIJNlGEYsdlLJizHhbn2mUjvSAHQqZETYP81eFzLQNnPHt4EVVUh7VfDESU84KezmD5QlWpXLmvU31/yMf+Se8xhHTvKSCZIFImWwoG6mbUoWf9nzpIoaSjB+weqqUUmpaaasXVal72J+UX2B+2RPW3RcT0eOzQgqlJL3RKrTJvdsjE3JEAvGq3lGHSZXy28G3skua2SmVi/w4yCE6gbODqnTWlg7+wC604ydGXA8VJiS5ap43JXiUFFAaQ=="),
                    "GitHub replaced this RSA host key on 2023-03-24 after its private key was exposed; remove it from known_hosts with `ssh-keygen -R github.com`",
                ),
                revoked("SHA256:br9IjFspm1vxR3iA35FWE+4VTyz1hYVLIE2t1/CeyWQ", None, "GitHub's DSA host key is deprecated"),
            ],
            builtin: true,
            ssh_user: "git".into(),
            notes: vec![],
        },
        Provider {
            id: "gitlab".into(),
            name: "GitLab".into(),
            kind: ProviderKind::Gitlab,
            ssh: vec![Endpoint::new("gitlab.com", 22)],
            ssh_443: Some(Endpoint::new("altssh.gitlab.com", 443)),
            web_hosts: vec!["gitlab.com".into(), "www.gitlab.com".into()],
            key_types: vec![KeyType::Ed25519, KeyType::Ecdsa, KeyType::Rsa, KeyType::SkEd25519, KeyType::SkEcdsa],
            upload: Upload::Page("https://gitlab.com/-/user_settings/ssh_keys".into()),
            fingerprints_page: Some("https://docs.gitlab.com/user/gitlab_com/#ssh-host-keys-fingerprints".into()),
            pins: [
                pins(&[("gitlab.com", 22, true)], &[c(GITLAB_ED25519), c(GITLAB_ECDSA), c(GITLAB_RSA)]),
                // GitLab documents altssh.gitlab.com:443 but not its host keys: assumed equal, unconfirmed.
                pins(&[("altssh.gitlab.com", 443, false)], &[c(GITLAB_ED25519), c(GITLAB_ECDSA), c(GITLAB_RSA)]),
            ]
            .concat(),
            revoked: vec![revoked(
                "SHA256:p8vZBUOR0XQz6sYiaWSMLmh0t9i8srqYKool/Xfdfqw",
                None,
                "GitLab dropped its DSA host key",
            )],
            builtin: true,
            ssh_user: "git".into(),
            notes: vec![],
        },
        Provider {
            id: "bitbucket".into(),
            name: "Bitbucket".into(),
            kind: ProviderKind::Bitbucket,
            // Since 2026-11-12 SSH is served by ssh.bitbucket.org; bitbucket.org serves https only.
            ssh: vec![Endpoint::new("ssh.bitbucket.org", 22), Endpoint::new("bitbucket.org", 22)],
            ssh_443: None,
            web_hosts: vec!["bitbucket.org".into(), "www.bitbucket.org".into()],
            key_types: COMMON.to_vec(),
            upload: Upload::Page("https://bitbucket.org/account/settings/ssh-keys/".into()),
            fingerprints_page: Some(
                "https://support.atlassian.com/bitbucket-cloud/docs/configure-ssh-and-two-step-verification/".into(),
            ),
            // No published keys for ssh.bitbucket.org were found: it is not pinned.
            pins: pins(&[("bitbucket.org", 22, true)], &[c(BITBUCKET_ED25519), c(BITBUCKET_ECDSA), c(BITBUCKET_RSA)]),
            revoked: vec![
                revoked(
                    "SHA256:zzXQOXSRBEiUtuE8AikJYKwbHaxvSc0ojez9YXaGp1A",
                    Some("ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEAubiN81eDcafrgMeLzaFPsw2kNvEcqTKl/VqLat/MaB33pZy0y3rJZtnqwR2qOOvbwKZYKiEO1O6VqNEBxKvJJelCq0dTXWT5pbO2gDXC6h6QDXCaHo6pOHGPUy+YBaGQRGuSusMEASYiWunYN0vCAI8QaXnWMXNMdFP3jHAJH0eDsoiGnLPBlBp4TNm6rYI74nMzgz3B9IikW4WVK+dc8KZJZWYjAuORU3jc1c/NPskD2ASinf8v3xnfXeukU0sJ5N6m5E8VLjObPEO+mN2t/FZTMZLiFqPWc/ALSqnMnnhwrNi2rbfg/rd/IpL8Le3pSBne8+seeFVBoGqzHM9yXw=="),
                    "Bitbucket replaced this RSA host key on 2023-06-20 after encrypted copies of its host keys leaked",
                ),
                revoked("SHA256:RezPkAnH1sowiJM0NQXH90IohWdzHc3fAisEp7L3O3o", None, "Bitbucket's DSA host key was retired in 2023"),
            ],
            builtin: true,
            ssh_user: "git".into(),
            notes: vec![
                "Since 12 November 2026 Bitbucket serves SSH at ssh.bitbucket.org (bitbucket.org is https only): use git@ssh.bitbucket.org:WORKSPACE/REPO.git.".into(),
            ],
        },
        Provider {
            id: "azure-devops".into(),
            name: "Azure DevOps".into(),
            kind: ProviderKind::AzureDevops,
            ssh: vec![Endpoint::new("ssh.dev.azure.com", 22), Endpoint::new("vs-ssh.visualstudio.com", 22)],
            ssh_443: None,
            web_hosts: vec!["dev.azure.com".into()],
            key_types: vec![KeyType::Rsa],
            upload: Upload::PerOrganization("https://dev.azure.com/{org}/_usersSettings/keys".into()),
            fingerprints_page: Some(
                "https://learn.microsoft.com/en-us/azure/devops/repos/git/use-ssh-keys-to-authenticate".into(),
            ),
            pins: pins(&[("ssh.dev.azure.com", 22, true), ("vs-ssh.visualstudio.com", 22, true)], &[c(AZURE_RSA)]),
            revoked: vec![],
            builtin: true,
            ssh_user: "git".into(),
            notes: vec![
                "Azure DevOps accepts only RSA keys; SSH keys are per organization and expire (one year by default).".into(),
            ],
        },
        Provider {
            id: "codeberg".into(),
            name: "Codeberg".into(),
            kind: ProviderKind::Gitea,
            ssh: vec![Endpoint::new("codeberg.org", 22)],
            ssh_443: None,
            web_hosts: vec!["codeberg.org".into()],
            key_types: COMMON.to_vec(),
            upload: Upload::Page("https://codeberg.org/user/settings/keys".into()),
            fingerprints_page: Some("https://docs.codeberg.org/security/ssh-fingerprint/".into()),
            // Codeberg's docs do not consistently list the ECDSA key: kept, but unconfirmed.
            pins: pins(&[("codeberg.org", 22, true)], &[c(CODEBERG_ED25519), c(CODEBERG_RSA), unconfirmed(CODEBERG_ECDSA)]),
            revoked: vec![],
            builtin: true,
            ssh_user: "git".into(),
            notes: vec![],
        },
    ]
}

/// Names accepted for the built-in providers besides their ids.
const ALIASES: &[(&str, &str)] = &[
    ("azure", "azure-devops"),
    ("azuredevops", "azure-devops"),
    ("ado", "azure-devops"),
    ("visualstudio", "azure-devops"),
    ("github.com", "github"),
    ("gitlab.com", "gitlab"),
    ("bitbucket.org", "bitbucket"),
    ("codeberg.org", "codeberg"),
];

/// All providers keyclone knows: the built-in ones and those of the config file.
#[derive(Debug, Clone)]
pub struct Registry {
    providers: Vec<Provider>,
}

impl Registry {
    pub fn builtin() -> Self {
        Registry {
            providers: builtin(),
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
            reg.providers.push(p);
        }
        Ok(reg)
    }

    /// A registry of exactly these providers (for tests of decisions built around the
    /// config check).
    #[cfg(test)]
    pub(crate) fn from_providers(providers: Vec<Provider>) -> Self {
        Registry { providers }
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::{HashAlg, PublicKey};

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
