//! Remote URLs, parsed with git's own grammar (gix-url): scp-like `git@host:path`, `ssh://`
//! with a port, and the https URLs people paste from a browser. The original string is what
//! git/libgit2 get; host and port come from the parse. Passwords are never kept for display.

use crate::endpoint::{DEFAULT_PORT, Endpoint};
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
    /// The string as given (what git and libgit2 get for SSH URLs).
    pub original: String,
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
        // git's remote-helper form `TRANSPORT::ADDRESS` (`ext::` runs a local command): a
        // helper name before the first `::`. An IPv6 address (`git@[::1]:o/r`) is not one.
        if input.split_once("::").is_some_and(|(helper, _)| {
            !helper.is_empty()
                && helper
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }) {
            return Err(bad(
                "remote helpers such as `ext::` run local commands; keyclone clones over SSH only",
            ));
        }
        if !input.contains("://")
            && let Some((user_at, rest)) = input.split_once('[')
            && !user_at.contains([':', '/'])
            && let Some((addr, path)) = rest.split_once("]:")
        {
            // git accepts `git@[::1]:o/r.git`; gix-url and libgit2 do not: name the ssh:// form.
            return Err(
                bad("an IPv6 address in the `user@[addr]:path` form is not supported")
                    .hint(format!("use `ssh://{user_at}[{addr}]/{path}`")),
            );
        }
        let url = gix_url::parse(input.as_bytes()).map_err(|e| bad(&e.to_string()))?;
        let scheme = match url.scheme {
            gix_url::Scheme::Ssh => Scheme::Ssh,
            gix_url::Scheme::Https => Scheme::Https,
            gix_url::Scheme::Http => Scheme::Http,
            gix_url::Scheme::Git => Scheme::Git,
            gix_url::Scheme::File => {
                return Err(bad(
                    "a local path or `file://` URL is not a remote repository; keyclone clones over SSH",
                ));
            }
            _ => return Err(bad("only ssh, https, http and git URLs name a remote host")),
        };
        let host = url
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("it has no host"))?;
        // For http(s) keep the path as written (percent-encoding and all): Azure DevOps project
        // names like `My%20Project` must reach the SSH form unchanged.
        let path = match (scheme, url::Url::parse(input)) {
            (Scheme::Https | Scheme::Http, Ok(u)) => u.path().trim_start_matches('/').to_owned(),
            _ => String::from_utf8_lossy(&url.path)
                .trim_start_matches('/')
                .to_owned(),
        };
        if path.trim_matches('/').is_empty() {
            return Err(bad(
                "it names no repository (the path after the host is empty)",
            ));
        }
        // The one rule for names (`names`), on the decoded values: `%0a` in a user is a
        // newline by now, and a user or host ends up in `~/.ssh/config` and known_hosts.
        let host = host.to_ascii_lowercase();
        let bare_host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&host);
        crate::names::host(bare_host).map_err(|why| {
            bad(&format!(
                "its host `{}` is not a host name: {why}",
                crate::names::shown(bare_host)
            ))
        })?;
        let user = url.user().map(str::to_owned);
        if let Some(u) = &user {
            crate::names::user(u).map_err(|why| {
                bad(&format!(
                    "its user `{}` is not an SSH user name: {why}",
                    crate::names::shown(u)
                ))
            })?;
        }
        let decoded_path = String::from_utf8_lossy(&url.path);
        if decoded_path.chars().any(char::is_control) {
            return Err(bad("its path holds control characters"));
        }
        Ok(RemoteUrl {
            original: input.to_owned(),
            scheme,
            user,
            host: bare_host.to_owned(),
            port: url.port,
            path,
        })
    }

    /// The repository's name: the last path segment without `.git`.
    pub fn repo_name(&self) -> String {
        let last = self
            .path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        last.strip_suffix(".git").unwrap_or(last).to_owned()
    }

    /// The SSH form of this remote. An SSH URL is kept as written; an https URL of a known
    /// provider is mapped to the provider's SSH form (the second value says so). Anything else
    /// is an error that asks for the SSH URL.
    pub fn to_ssh(&self, registry: &Registry) -> Result<(RemoteUrl, bool)> {
        match self.scheme {
            Scheme::Ssh => return Ok((self.clone(), false)),
            Scheme::Git => {
                return Err(Error::usage(format!(
                    "`{}` uses the git:// protocol, which has no authentication; keyclone clones over SSH",
                    redact(&self.original)
                ))
                .hint("use the repository's SSH URL (`git@HOST:OWNER/REPO.git`)"));
            }
            Scheme::Https | Scheme::Http => {}
        }
        let unknown = || {
            Error::usage(format!(
                "keyclone does not know the SSH address of `{}`, so it cannot turn this https URL into an SSH one",
                self.host
            ))
            .hint("copy the SSH URL from the repository's Clone button (it looks like `git@HOST:OWNER/REPO.git`)")
            .hint("or declare the server in the config file as `[provider.NAME]` (see the README)")
        };
        let p = self.provider(registry).ok_or_else(unknown)?;
        let ssh = p.ssh.first().ok_or_else(unknown)?;
        let segments: Vec<&str> = self.path.split('/').filter(|s| !s.is_empty()).collect();
        let strip_git = |s: &str| s.strip_suffix(".git").unwrap_or(s).to_owned();
        let incomplete = || {
            Error::usage(format!("`{}` does not name a repository of {}", redact(&self.original), p.name))
                .hint("copy the repository's URL from its main page, or its SSH URL from the Clone button")
        };
        let path = match p.kind {
            ProviderKind::AzureDevops => {
                // dev.azure.com/ORG/PROJECT/_git/REPO, ORG.visualstudio.com/[DefaultCollection/]PROJECT/_git/REPO
                let org = self.azure_org().ok_or_else(incomplete)?;
                let rest: Vec<&str> = if self.host == "dev.azure.com" {
                    segments[1..].to_vec()
                } else {
                    segments.clone()
                };
                let rest: Vec<&str> = rest
                    .into_iter()
                    .filter(|s| !s.eq_ignore_ascii_case("DefaultCollection"))
                    .collect();
                match rest.as_slice() {
                    [project, "_git", repo, ..] => {
                        format!("v3/{org}/{project}/{}", strip_git(repo))
                    }
                    _ => return Err(incomplete()),
                }
            }
            ProviderKind::Gitlab => {
                let end = segments
                    .iter()
                    .position(|s| *s == "-")
                    .unwrap_or(segments.len());
                if end < 2 {
                    return Err(incomplete());
                }
                let mut parts: Vec<String> =
                    segments[..end].iter().map(|s| (*s).to_owned()).collect();
                let last = parts.pop().expect("two or more segments");
                format!("{}/{}.git", parts.join("/"), strip_git(&last))
            }
            ProviderKind::Plain => return Err(unknown()),
            ProviderKind::Github | ProviderKind::Bitbucket | ProviderKind::Gitea => {
                match segments.as_slice() {
                    [owner, repo, ..] => format!("{owner}/{}.git", strip_git(repo)),
                    _ => return Err(incomplete()),
                }
            }
        };
        let url = if ssh.port == DEFAULT_PORT {
            format!("git@{}:{path}", ssh.host)
        } else {
            format!("ssh://git@{ssh}/{path}")
        };
        Ok((RemoteUrl::parse(&url)?, true))
    }

    /// Where the SSH server of this URL listens: its host, and its port or 22.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.host.clone(), self.port.unwrap_or(DEFAULT_PORT))
    }

    /// The path as the server's commands get it (`git-upload-pack PATH`,
    /// `git-lfs-authenticate PATH`): absolute for `ssh://` URLs, as written after `host:` for
    /// scp-like ones (a leading `/` kept).
    pub fn server_path(&self) -> String {
        if self.original.contains("://") {
            format!("/{}", self.path)
        } else {
            let after_at = self
                .original
                .split_once('@')
                .map_or(self.original.as_str(), |(_, r)| r);
            after_at
                .split_once(':')
                .map_or(self.path.clone(), |(_, p)| p.to_owned())
        }
    }

    /// The same repository at another SSH endpoint: an `~/.ssh/config` alias resolved (its
    /// host the alias or its `HostName`), or a provider's port-443 endpoint. Port 22 gives the
    /// scp-like form (`ssh://h/p` becomes `h:/p`, the same absolute path), so `~/.ssh/config`
    /// may decide the port.
    pub fn at(&self, to: &Endpoint, user: Option<&str>) -> Result<RemoteUrl> {
        let user = user.or(self.user.as_deref()).unwrap_or("git");
        let raw = self.server_path();
        let url = if to.port == DEFAULT_PORT {
            format!("{user}@{}:{raw}", to.host)
        } else {
            let raw = if raw.starts_with('/') {
                raw
            } else {
                format!("/{raw}")
            };
            format!("ssh://{user}@{to}{raw}")
        };
        RemoteUrl::parse(&url)
    }

    /// The provider that serves this URL's host, if any.
    pub fn provider<'r>(&self, registry: &'r Registry) -> Option<&'r Provider> {
        let port = match self.scheme {
            Scheme::Ssh => Some(self.port.unwrap_or(DEFAULT_PORT)),
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
    fn https_urls_map_to_the_providers_ssh_form() {
        let reg = Registry::builtin();
        for (https, ssh) in [
            (
                "https://github.com/owner/repo",
                "git@github.com:owner/repo.git",
            ),
            (
                "https://github.com/owner/repo.git",
                "git@github.com:owner/repo.git",
            ),
            (
                "https://github.com/owner/repo/tree/main/src",
                "git@github.com:owner/repo.git",
            ),
            (
                "https://gitlab.com/group/sub/deeper/project.git",
                "git@gitlab.com:group/sub/deeper/project.git",
            ),
            (
                "https://gitlab.com/group/sub/project/-/tree/main",
                "git@gitlab.com:group/sub/project.git",
            ),
            (
                "https://user@bitbucket.org/workspace/repo.git",
                "git@ssh.bitbucket.org:workspace/repo.git",
            ),
            (
                "https://bitbucket.org/workspace/repo/src/main/",
                "git@ssh.bitbucket.org:workspace/repo.git",
            ),
            (
                "https://dev.azure.com/fabrikam/Fabrikam%20Fiber/_git/Repo",
                "git@ssh.dev.azure.com:v3/fabrikam/Fabrikam%20Fiber/Repo",
            ),
            (
                "https://fabrikam@dev.azure.com/fabrikam/Proj/_git/Repo",
                "git@ssh.dev.azure.com:v3/fabrikam/Proj/Repo",
            ),
            (
                "https://fabrikam.visualstudio.com/Proj/_git/Repo",
                "git@ssh.dev.azure.com:v3/fabrikam/Proj/Repo",
            ),
            (
                "https://fabrikam.visualstudio.com/DefaultCollection/Proj/_git/Repo",
                "git@ssh.dev.azure.com:v3/fabrikam/Proj/Repo",
            ),
            (
                "https://codeberg.org/owner/repo",
                "git@codeberg.org:owner/repo.git",
            ),
            (
                "git@github.com:owner/repo.git",
                "git@github.com:owner/repo.git",
            ),
        ] {
            let (mapped, was_mapped) = RemoteUrl::parse(https).unwrap().to_ssh(&reg).unwrap();
            assert_eq!(mapped.original, ssh, "{https}");
            assert_eq!(was_mapped, !https.starts_with("git@"));
        }
        let cfg = crate::config::parse("[provider.corp]\nkind = \"gitlab\"\nhost = \"ssh.corp.example\"\nport = 2222\nweb-host = \"git.corp.example\"\n").unwrap();
        let reg = Registry::with_config(&cfg).unwrap();
        let (m, _) = RemoteUrl::parse("https://git.corp.example/team/app")
            .unwrap()
            .to_ssh(&reg)
            .unwrap();
        assert_eq!(m.original, "ssh://git@ssh.corp.example:2222/team/app.git");
        assert_eq!((m.host.as_str(), m.port), ("ssh.corp.example", Some(2222)));
    }

    #[test]
    fn unmappable_urls_explain_what_to_do() {
        let reg = Registry::builtin();
        let e = RemoteUrl::parse("https://git.example.org/a/b")
            .unwrap()
            .to_ssh(&reg)
            .unwrap_err();
        assert!(e.hints()[0].contains("Clone button"));
        assert!(
            RemoteUrl::parse("https://github.com/owner")
                .unwrap()
                .to_ssh(&reg)
                .is_err()
        );
        assert!(
            RemoteUrl::parse("https://dev.azure.com/org/proj")
                .unwrap()
                .to_ssh(&reg)
                .is_err()
        );
        assert!(
            RemoteUrl::parse("git://github.com/o/r.git")
                .unwrap()
                .to_ssh(&reg)
                .is_err()
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        for bad in [
            "github.com:",
            "git@github.com:",
            "ssh://git@host:99999/r.git",
            "ssh://git@host:abc/r.git",
            "git@host:my repo.git",
            "file:///srv/r.git",
            "/srv/r.git",
            "ext::sh -c touch% /tmp/pwned",
            "https://github.com/",
            "ssh://host",
        ] {
            assert!(RemoteUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(
            RemoteUrl::parse("ext::ssh x")
                .unwrap_err()
                .message()
                .contains("ext::")
        );
        assert!(
            RemoteUrl::parse("file:///srv/r.git")
                .unwrap_err()
                .message()
                .contains("local path")
        );
    }

    #[test]
    fn the_same_repository_at_another_endpoint() {
        let u = RemoteUrl::parse("git@github.com:owner/repo.git").unwrap();
        assert_eq!(
            u.at(&Endpoint::new("ssh.github.com", 443), None)
                .unwrap()
                .original,
            "ssh://git@ssh.github.com:443/owner/repo.git"
        );
        assert_eq!(
            u.at(&Endpoint::new("github.com-work", 22), None)
                .unwrap()
                .original,
            "git@github.com-work:owner/repo.git"
        );
        let abs = RemoteUrl::parse("ssh://me@127.0.0.1:2222/srv/r.git").unwrap();
        assert_eq!(
            abs.at(&Endpoint::new("localhost", 22), None)
                .unwrap()
                .original,
            "me@localhost:/srv/r.git"
        );
        let server = |u: &str| RemoteUrl::parse(u).unwrap().server_path();
        assert_eq!(server("ssh://git@h:2222/srv/r.git"), "/srv/r.git");
        assert_eq!(server("git@h:owner/r.git"), "owner/r.git");
        assert_eq!(server("git@h:/srv/r.git"), "/srv/r.git");
        let scp_abs = RemoteUrl::parse("me@host:/srv/r.git").unwrap();
        assert_eq!(
            scp_abs
                .at(&Endpoint::new("h2", 2200), Some("git"))
                .unwrap()
                .original,
            "ssh://git@h2:2200/srv/r.git"
        );
    }

    #[test]
    fn repo_names() {
        assert_eq!(
            RemoteUrl::parse("git@github.com:o/repo.git")
                .unwrap()
                .repo_name(),
            "repo"
        );
        assert_eq!(
            RemoteUrl::parse("git@ssh.dev.azure.com:v3/o/p/Repo")
                .unwrap()
                .repo_name(),
            "Repo"
        );
        assert_eq!(
            RemoteUrl::parse("ssh://git@h:2222/srv/x.git/")
                .unwrap()
                .repo_name(),
            "x"
        );
    }

    #[test]
    fn redact_hides_credentials() {
        assert_eq!(redact("https://u:secret@h/x"), "https://***@h/x");
        assert_eq!(redact("https://tok@h/x"), "https://***@h/x");
        assert_eq!(redact("ssh://git:pw@h/x"), "ssh://git:***@h/x");
        assert_eq!(redact("git@h:x"), "git@h:x");
    }
}
#[cfg(test)]
mod names_tests {
    use super::*;

    #[test]
    fn decoded_users_and_hosts_follow_the_names_rule() {
        // Hole 1 of the review: `%0a` decodes to a newline that would start a `Host *` section.
        let e = RemoteUrl::parse(
            "ssh://git%0aHost%20*%0a%20%20ProxyCommand%20touch%20%2ftmp%2fx@host:2222/o/r.git",
        )
        .unwrap_err();
        assert!(
            e.message().contains("is not an SSH user name"),
            "{}",
            e.message()
        );
        assert!(!e.message().contains('\n'), "{}", e.message());
        for bad in [
            "git@x,github.com:o/r.git",
            "git@git?ub.com:o/r.git",
            "ssh://git@gith*b.com/o/r.git",
            "ssh://git@-oProxyCommand=x/o/r.git",
            "ssh://git;id@host/o/r.git",
        ] {
            assert!(RemoteUrl::parse(bad).is_err(), "{bad}");
        }
        let v6 = RemoteUrl::parse("ssh://git@[::1]:2222/o/r.git").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", Some(2222)));
    }

    #[test]
    fn an_ipv6_scp_url_is_not_called_a_remote_helper() {
        let r = RemoteUrl::parse("git@[::1]:o/r.git");
        let e = r.unwrap_err();
        assert!(!e.message().contains("ext::"), "{}", e.message());
        assert!(
            e.hints()
                .iter()
                .any(|h| h.contains("ssh://git@[::1]/o/r.git")),
            "{:?}",
            e.hints()
        );
        assert!(
            RemoteUrl::parse("ext::sh -c touch% /tmp/x").is_err()
                && RemoteUrl::parse("ext::ssh")
                    .unwrap_err()
                    .message()
                    .contains("remote helpers")
        );
    }
}
