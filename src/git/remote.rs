//! Remote URLs, parsed with git's own grammar (gix-url): scp-like `git@host:path`, `ssh://`
//! with a port, and the https URLs people paste from a browser. The original string is what
//! git/libgit2 get; host and port come from the parse. Passwords are never kept for display.

use crate::error::{Error, Result};
use crate::providers::{Provider, ProviderKind, Registry};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Ssh,
    Https,
    Http,
    Git,
}

/// A parsed remote URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    pub scheme: Scheme,
    pub user: Option<String>,
    pub host: String,
    /// The explicit port, if the URL has one.
    pub port: Option<u16>,
    /// The path without a leading `/` for scp-like URLs, as written otherwise.
    pub path: String,
}

impl RemoteUrl {
    pub fn parse(input: &str) -> Result<RemoteUrl> {
        let bad = |why: &str| {
            Error::usage(format!("`{}` is not a Git remote URL: {why}", redact(input)))
                .hint("use the form `git@HOST:OWNER/REPO.git`, `ssh://git@HOST[:PORT]/OWNER/REPO.git` or the https URL of the repository")
        };
        if input.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad("it contains spaces or control characters"));
        }
        let url = gix_url::parse(input.as_bytes()).map_err(|e| bad(&e.to_string()))?;
        let scheme = match url.scheme {
            gix_url::Scheme::Ssh => Scheme::Ssh,
            gix_url::Scheme::Https => Scheme::Https,
            gix_url::Scheme::Http => Scheme::Http,
            gix_url::Scheme::Git => Scheme::Git,
            _ => return Err(bad("only ssh, https, http and git URLs name a remote host")),
        };
        let host = url
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("it has no host"))?;
        Ok(RemoteUrl {
            scheme,
            user: url.user().map(str::to_owned),
            host: host.to_ascii_lowercase(),
            port: url.port,
            path: String::from_utf8_lossy(&url.path)
                .trim_start_matches('/')
                .to_owned(),
        })
    }

    /// The provider that serves this URL's host, if any.
    pub fn provider<'r>(&self, registry: &'r Registry) -> Option<&'r Provider> {
        let port = match self.scheme {
            Scheme::Ssh => Some(self.port.unwrap_or(22)),
            _ => None,
        };
        registry.for_host(&self.host, port)
    }

    /// The Azure DevOps organization named by the URL, in any of its SSH or https forms.
    pub fn azure_org(&self) -> Option<String> {
        let mut parts = self.path.split('/').filter(|s| !s.is_empty());
        let org = match self.host.as_str() {
            "ssh.dev.azure.com" | "vs-ssh.visualstudio.com" => {
                if parts.next()? != "v3" {
                    return None;
                }
                parts.next()?
            }
            "dev.azure.com" => parts.next()?,
            h => {
                return h
                    .strip_suffix(".visualstudio.com")
                    .filter(|o| !o.contains('.'))
                    .map(str::to_owned);
            }
        };
        Some(org.to_owned())
    }

    /// The organization for providers whose upload page is per organization.
    pub fn org_for(&self, provider: &Provider) -> Option<String> {
        match provider.kind {
            ProviderKind::AzureDevops => self.azure_org(),
            _ => None,
        }
    }
}

/// `input` without credentials, for messages: an http(s) URL loses its whole user-info (tokens
/// sit in the user slot), any other URL loses a password.
pub fn redact(input: &str) -> String {
    if let Some(scheme_end) = input.find("://") {
        let scheme = input[..scheme_end].to_ascii_lowercase();
        let rest = &input[scheme_end + 3..];
        let auth_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@') {
            let userinfo = &rest[..at];
            let shown = if scheme == "http" || scheme == "https" {
                "***".to_owned()
            } else {
                match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***"),
                    None => userinfo.to_owned(),
                }
            };
            return format!("{}{shown}{}", &input[..scheme_end + 3], &rest[at..]);
        }
    }
    input.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scp_like_ssh_and_https_forms_parse() {
        let u = RemoteUrl::parse("git@github.com:owner/repo.git").unwrap();
        assert_eq!(
            (
                u.scheme,
                u.user.as_deref(),
                u.host.as_str(),
                u.port,
                u.path.as_str()
            ),
            (
                Scheme::Ssh,
                Some("git"),
                "github.com",
                None,
                "owner/repo.git"
            )
        );
        let u = RemoteUrl::parse("ssh://git@127.0.0.1:2222/srv/r.git").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", Some(2222), "srv/r.git")
        );
        let u = RemoteUrl::parse("https://gitlab.com/group/sub/project.git").unwrap();
        assert_eq!(
            (u.scheme, u.path.as_str()),
            (Scheme::Https, "group/sub/project.git")
        );
    }

    #[test]
    fn host_without_user_is_scp_like_not_a_scheme() {
        let u = RemoteUrl::parse("github.com:owner/repo.git").unwrap();
        assert_eq!((u.scheme, u.host.as_str()), (Scheme::Ssh, "github.com"));
    }

    #[test]
    fn malformed_urls_are_refused_without_echoing_a_password() {
        assert!(RemoteUrl::parse("").is_err());
        assert!(RemoteUrl::parse("/local/path").is_err());
        assert!(RemoteUrl::parse("git@host:repo\nmore").is_err());
        let e = RemoteUrl::parse("https://user:tok3n@host/a b").unwrap_err();
        assert!(!e.message().contains("tok3n"), "{}", e.message());
    }

    #[test]
    fn azure_org_from_every_form() {
        for (url, org) in [
            ("git@ssh.dev.azure.com:v3/fabrikam/Proj/Repo", "fabrikam"),
            (
                "fabrikam@vs-ssh.visualstudio.com:v3/fabrikam/Proj/Repo",
                "fabrikam",
            ),
            ("https://dev.azure.com/fabrikam/Proj/_git/Repo", "fabrikam"),
            (
                "https://fabrikam@dev.azure.com/fabrikam/My%20Proj/_git/Repo",
                "fabrikam",
            ),
            (
                "https://fabrikam.visualstudio.com/Proj/_git/Repo",
                "fabrikam",
            ),
        ] {
            assert_eq!(
                RemoteUrl::parse(url).unwrap().azure_org().as_deref(),
                Some(org),
                "{url}"
            );
        }
    }

    #[test]
    fn provider_detection() {
        let reg = Registry::builtin();
        let id = |u: &str| {
            RemoteUrl::parse(u)
                .unwrap()
                .provider(&reg)
                .map(|p| p.id.clone())
        };
        assert_eq!(
            id("git@ssh.dev.azure.com:v3/o/p/r").as_deref(),
            Some("azure-devops")
        );
        assert_eq!(
            id("https://o.visualstudio.com/p/_git/r").as_deref(),
            Some("azure-devops")
        );
        assert_eq!(
            id("ssh://git@ssh.github.com:443/o/r.git").as_deref(),
            Some("github")
        );
        assert_eq!(id("git@git.example.org:o/r.git"), None);
    }

    #[test]
    fn redact_hides_credentials() {
        assert_eq!(redact("https://u:secret@h/x"), "https://***@h/x");
        assert_eq!(redact("https://tok@h/x"), "https://***@h/x");
        assert_eq!(redact("ssh://git:pw@h/x"), "ssh://git:***@h/x");
        assert_eq!(redact("git@h:x"), "git@h:x");
    }
}
