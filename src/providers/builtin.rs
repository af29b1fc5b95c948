//! The built-in providers: GitHub, GitLab, Bitbucket, Azure DevOps, Codeberg, with their
//! endpoints, web hosts, key types, upload pages and the host keys pinned from their own
//! documentation (each entry names its sources; SECURITY.md explains them), and the other
//! names accepted for them.

use super::api::{ApiInfo, ApiKind, DeviceFlow};
use super::{Endpoint, Pin, Provider, ProviderKind, Revoked, Upload};
use crate::config::ProviderConfig;
use crate::key_type::KeyType;

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

pub(super) const COMMON: [KeyType; 3] = [KeyType::Ed25519, KeyType::Ecdsa, KeyType::Rsa];

/// The built-in providers.
pub(super) fn builtin() -> Vec<Provider> {
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
            api: Some(ApiInfo {
                kind: ApiKind::Github,
                base: "https://api.github.com".into(),
                token_env: vec!["GH_TOKEN".into(), "GITHUB_TOKEN".into()],
                token_page: Some("https://github.com/settings/tokens/new?scopes={scope}&description=keyclone".into()),
                scope: "write:public_key".into(),
                device: Some(DeviceFlow {
                    code_url: "https://github.com/login/device/code".into(),
                    token_url: "https://github.com/login/oauth/access_token".into(),
                    client_id: None,
                }),
            }),
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
            api: Some(ApiInfo {
                kind: ApiKind::Gitlab,
                base: "https://gitlab.com/api/v4".into(),
                token_env: vec!["GITLAB_TOKEN".into()],
                token_page: Some("https://gitlab.com/-/user_settings/personal_access_tokens?name=keyclone&scopes=api".into()),
                scope: "api".into(),
                device: Some(DeviceFlow {
                    code_url: "https://gitlab.com/oauth/authorize_device".into(),
                    token_url: "https://gitlab.com/oauth/token".into(),
                    client_id: None,
                }),
            }),
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
            api: Some(ApiInfo {
                kind: ApiKind::Bitbucket,
                base: "https://api.bitbucket.org/2.0".into(),
                token_env: vec!["BITBUCKET_API_TOKEN".into()],
                token_page: Some("https://id.atlassian.com/manage-profile/security/api-tokens".into()),
                scope: super::api::bitbucket::SCOPE.into(),
                device: None,
            }),
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
            api: None,
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
            api: Some(ApiInfo {
                kind: ApiKind::Gitea,
                base: "https://codeberg.org/api/v1".into(),
                token_env: vec!["CODEBERG_TOKEN".into()],
                token_page: Some("https://codeberg.org/user/settings/applications".into()),
                scope: super::api::gitea::SCOPE.into(),
                device: None,
            }),
        },
    ]
}

/// A self-hosted provider's API: `api-base` (default the web host's `/api/v3`, `/api/v4`,
/// `/api/v1`), its token from `token-env` or `KEYCLONE_TOKEN_<NAME>` (never the hosted
/// providers' `GH_TOKEN`, `GITLAB_TOKEN`: a github.com token is not sent to another host), and
/// the device flow on the API's origin when `oauth-client-id` is set.
pub(super) fn self_hosted_api(
    id: &str,
    pc: &ProviderConfig,
    kind: ProviderKind,
) -> Option<ApiInfo> {
    let web = pc
        .web_host
        .clone()
        .unwrap_or_else(|| pc.host.clone())
        .to_ascii_lowercase();
    let (api_kind, path, scope, page, device) = match kind {
        ProviderKind::Github => (
            ApiKind::Github,
            "/api/v3",
            "write:public_key",
            format!("https://{web}/settings/tokens/new?scopes={{scope}}&description=keyclone"),
            Some(("login/device/code", "login/oauth/access_token")),
        ),
        ProviderKind::Gitlab => (
            ApiKind::Gitlab,
            "/api/v4",
            "api",
            format!(
                "https://{web}/-/user_settings/personal_access_tokens?name=keyclone&scopes=api"
            ),
            Some(("oauth/authorize_device", "oauth/token")),
        ),
        ProviderKind::Gitea => (
            ApiKind::Gitea,
            "/api/v1",
            super::api::gitea::SCOPE,
            format!("https://{web}/user/settings/applications"),
            None,
        ),
        ProviderKind::Bitbucket => (
            ApiKind::Bitbucket,
            "/2.0",
            super::api::bitbucket::SCOPE,
            "https://id.atlassian.com/manage-profile/security/api-tokens".to_string(),
            None,
        ),
        _ => return None,
    };
    let base = pc.api_base.clone().unwrap_or_else(|| {
        if api_kind == ApiKind::Bitbucket {
            format!("https://api.{web}{path}")
        } else {
            format!("https://{web}{path}")
        }
    });
    let origin = url::Url::parse(&base)
        .ok()
        .map(|u| u.origin().ascii_serialization());
    let env = pc.token_env.clone().unwrap_or_else(|| {
        format!(
            "KEYCLONE_TOKEN_{}",
            id.to_ascii_uppercase().replace('-', "_")
        )
    });
    Some(ApiInfo {
        kind: api_kind,
        base,
        token_env: vec![env],
        token_page: Some(page),
        scope: scope.into(),
        device: match (device, origin) {
            (Some((code, token)), Some(o)) => Some(DeviceFlow {
                code_url: format!("{o}/{code}"),
                token_url: format!("{o}/{token}"),
                client_id: pc.oauth_client_id.clone(),
            }),
            _ => None,
        },
    })
}

/// Names accepted for the built-in providers besides their ids.
pub(super) const ALIASES: &[(&str, &str)] = &[
    ("azure", "azure-devops"),
    ("azuredevops", "azure-devops"),
    ("ado", "azure-devops"),
    ("visualstudio", "azure-devops"),
    ("github.com", "github"),
    ("gitlab.com", "gitlab"),
    ("bitbucket.org", "bitbucket"),
    ("codeberg.org", "codeberg"),
];
