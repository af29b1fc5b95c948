//! The user's whole `~/.ssh/config` (keyclone's managed block is part of it) read as OpenSSH
//! reads it for one host: what `ssh -G HOST` says for `HostName`, `Port`, `User`,
//! `IdentityFile`, `IdentitiesOnly`, `UserKnownHostsFile`, `HostKeyAlias`, `ProxyJump` and
//! `ProxyCommand`, and warnings that name what applies but keyclone does not do (`Match exec`
//! is never run).
//!
//! Written here rather than taken from a crate: none of those looked at (`ssh2-config`,
//! `ssh_config`, `ssh_cfg`) documents OpenSSH's `Match` as `readconf.c` evaluates it (`host`
//! against the `HostName` so far, `final`'s second pass), its `%`/`${}` expansion, the numeric
//! address normalisation, or `Include` relative to the SSH directory with its depth limit. The
//! tests hold this resolver against `ssh -G` itself (`tests/it/user_ssh_config.rs`).

mod expand;
mod parse;
mod resolve;

use std::path::{Path, PathBuf};

use crate::endpoint::{DEFAULT_PORT, Endpoint};
use crate::error::{Error, ErrorKind, Result};

pub use expand::Tokens;
pub use resolve::{FILE_LIMIT, MAX_DEPTH};

/// What OpenSSH would take from the machine: the password database's home and name.
pub struct Inputs<'a> {
    /// `~` and `%d`.
    pub home: &'a Path,
    /// Where a relative `Include` is looked up (`~/.ssh`).
    pub ssh_dir: &'a Path,
    pub local_user: &'a str,
    pub local_host: &'a str,
    pub uid: u32,
    /// `${VAR}`.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl std::fmt::Debug for Inputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("home", &self.home)
            .field("ssh_dir", &self.ssh_dir)
            .finish_non_exhaustive()
    }
}

/// How the connection leaves this machine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Proxy {
    /// `ProxyCommand`, as written (tokens not expanded).
    Command(String),
    /// `ProxyJump`, as written: `[user@]host[:port]` hops separated by commas.
    Jump(String),
}

/// One host as the config resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The name asked for, lowered (`%n`).
    pub original: String,
    /// `HostName` with `%h` expanded, lowered; the name asked for without one.
    pub hostname: String,
    pub port: u16,
    /// `User`; `None` means the local login name (as for `ssh`).
    pub user: Option<String>,
    /// `IdentityFile`s as written (tokens not expanded), in order, without duplicates.
    pub identity_files: Vec<String>,
    pub identities_only: bool,
    /// `UserKnownHostsFile`, expanded; `None` when the config names none.
    pub user_known_hosts: Option<Vec<String>>,
    pub host_key_alias: Option<String>,
    pub proxy: Option<Proxy>,
    /// What applies to this host but keyclone does not do, one sentence each.
    pub warnings: Vec<String>,
}

impl Resolved {
    /// Where OpenSSH connects (through the proxy, when there is one).
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.hostname.as_str(), self.port)
    }

    /// The `%` tokens for this host.
    pub fn tokens(&self, inp: &Inputs<'_>) -> Tokens {
        Tokens {
            host: self.hostname.clone(),
            original: self.original.clone(),
            port: self.port,
            remote_user: self
                .user
                .clone()
                .unwrap_or_else(|| inp.local_user.to_owned()),
            local_user: inp.local_user.to_owned(),
            home: inp.home.display().to_string(),
            local_host: inp.local_host.to_owned(),
            uid: inp.uid,
            key_alias: self
                .host_key_alias
                .clone()
                .unwrap_or_else(|| self.original.clone()),
        }
    }

    /// The `IdentityFile`s expanded as `ssh` expands them when it loads them.
    pub fn identity_paths(&self, inp: &Inputs<'_>) -> Result<Vec<PathBuf>> {
        let t = self.tokens(inp);
        self.identity_files
            .iter()
            .map(|f| {
                expand::file(f, &t, inp.home, inp.env)
                    .map(PathBuf::from)
                    .map_err(|why| bad_value("IdentityFile", &why))
            })
            .collect()
    }

    /// The `ProxyCommand` with its tokens expanded.
    pub fn proxy_command(&self, inp: &Inputs<'_>) -> Result<Option<String>> {
        match &self.proxy {
            Some(Proxy::Command(c)) => expand::command(c, &self.tokens(inp))
                .map(Some)
                .map_err(|why| bad_value("ProxyCommand", &why)),
            _ => Ok(None),
        }
    }
}

fn bad_value(option: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("the SSH config's `{option}` for this host cannot be used: {why}"),
    )
    .hint("fix that line of `~/.ssh/config` (`ssh -G HOST` shows what OpenSSH makes of it), then run the same command again")
}

/// A numeric address in the form the resolver gives it back (`ssh` does this whether or not
/// canonicalization is asked for): `1` is `0.0.0.1`, `10.1` is `10.0.0.1`, `0x7f.1` is
/// `127.0.0.1`, IPv6 in its short form.
pub fn normalise_address(h: &str) -> String {
    if let Ok(v6) = h.parse::<std::net::Ipv6Addr>() {
        return v6.to_string();
    }
    inet_aton(h).map_or_else(|| h.to_owned(), |a| a.to_string())
}

/// glibc's `inet_aton`: one to four parts, decimal, octal (`0`) or hex (`0x`); the last part
/// fills the remaining bytes.
fn inet_aton(s: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<u64> = s
        .split('.')
        .map(|p| {
            if let Some(hex) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
                u64::from_str_radix(hex, 16)
                    .ok()
                    .filter(|_| !hex.is_empty())
            } else if p.len() > 1 && p.starts_with('0') {
                u64::from_str_radix(&p[1..], 8).ok()
            } else if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                p.parse().ok()
            } else {
                None
            }
        })
        .collect::<Option<_>>()?;
    let (last, head) = parts.split_last()?;
    if head.len() > 3 || head.iter().any(|&p| p > 255) {
        return None;
    }
    let room = 8 * (4 - head.len() as u32);
    if room < 64 && *last >= 1u64 << room {
        return None;
    }
    let mut v: u64 = 0;
    for (i, p) in head.iter().enumerate() {
        v |= p << (24 - 8 * i as u32);
    }
    Some(std::net::Ipv4Addr::from((v | last) as u32))
}

/// Resolves `host` through the config file `config` (and what it includes). A missing file
/// resolves every host to itself.
pub fn resolve(config: &Path, host: &str, inp: &Inputs<'_>) -> Result<Resolved> {
    let original = host.to_ascii_lowercase();
    let mut first = resolve::Walk::new(inp, &original, &original, false);
    first.file(config, 0, &mut true, false)?;
    let expand_host = |h: &str| {
        expand::hostname(h, &original)
            .map(|h| h.to_ascii_lowercase())
            .map_err(|why| bad_value("HostName", &why))
    };
    let hostname = normalise_address(&match &first.set.hostname {
        Some(h) => expand_host(h)?,
        None => original.clone(),
    });
    let canonicalize = first
        .set
        .canonicalize
        .clone()
        .filter(|c| c != "no" && c != "false");
    let (set, mut warnings) = if canonicalize.is_some() || first.want_final {
        let mut again = resolve::Walk::new(inp, &hostname, &original, true);
        again.set = first.set.clone();
        again.set.hostname = Some(hostname.clone());
        again.warnings = first.warnings.clone();
        again.file(config, 0, &mut true, false)?;
        (again.set, again.warnings)
    } else {
        (first.set, first.warnings)
    };
    if canonicalize.is_some() {
        warnings.push(format!(
            "`CanonicalizeHostname` applies to `{host}`, but keyclone does not look names up in DNS to canonicalize them: it connects to `{hostname}` as written"
        ));
    }
    let port = set.port.unwrap_or(DEFAULT_PORT);
    let proxy = match (&set.proxy_command, &set.proxy_jump) {
        (Some(c), _) if c != "none" => Some(Proxy::Command(c.clone())),
        (None, Some(j)) if j != "none" => Some(Proxy::Jump(j.clone())),
        _ => None,
    };
    let mut r = Resolved {
        original,
        hostname,
        port,
        user: set.user,
        identity_files: set.identity_files,
        identities_only: set.identities_only.unwrap_or(false),
        user_known_hosts: None,
        host_key_alias: set.host_key_alias,
        proxy,
        warnings,
    };
    if let Some(files) = set.user_known_hosts {
        let t = r.tokens(inp);
        let expanded = files
            .iter()
            .map(|f| expand::file(f, &t, inp.home, inp.env))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|why| bad_value("UserKnownHostsFile", &why))?;
        r.user_known_hosts = Some(expanded);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(files: &[(&str, &str)], host: &str) -> Result<Resolved> {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join(".ssh");
        std::fs::create_dir(&ssh).unwrap();
        for (name, text) in files {
            let p = ssh.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text.replace("SSH", &ssh.display().to_string())).unwrap();
        }
        let env = |_: &str| None;
        let inp = Inputs {
            home: dir.path(),
            ssh_dir: &ssh,
            local_user: "me",
            local_host: "box",
            uid: 1000,
            env: &env,
        };
        resolve(&ssh.join("config"), host, &inp)
    }

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let cfg = "Host git-work\n HostName github.com\n IdentityFile ~/a\nHost *\n HostName other\n Port 2222\n IdentityFile ~/b\n IdentityFile ~/a\n";
        let r = with(&[("config", cfg)], "Git-Work").unwrap();
        assert_eq!((r.hostname.as_str(), r.port), ("github.com", 2222));
        assert_eq!(r.identity_files, vec!["~/a", "~/b"]);
        assert_eq!(r.user, None);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn relative_include_globs_read_in_order_from_the_ssh_dir() {
        let r = with(
            &[
                ("config", "Include conf.d/*\nHost x\n User late\n"),
                ("conf.d/b", "Host x\n User b\n"),
                ("conf.d/a", "Host x\n User a\n Port 22022\n"),
                ("conf.d/.hidden", "Host x\n HostName hidden\n"),
            ],
            "x",
        )
        .unwrap();
        assert_eq!((r.user.as_deref(), r.port), (Some("a"), 22022));
        assert_eq!(r.hostname, "x", "a dot file is not matched by `*`");
    }

    #[test]
    fn an_include_loop_is_refused_by_name() {
        let e = with(&[("config", "Include SSH/config\n")], "x").unwrap_err();
        assert!(e.to_string().contains("`Include` loop"), "{e}");
    }

    #[test]
    fn match_exec_is_never_run_and_is_named_in_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let cfg = format!(
            "Match host x exec \"touch {}\"\n User fromexec\nMatch host y !exec \"touch {}\"\n User y\n",
            marker.display(),
            marker.display()
        );
        let r = with(&[("config", &cfg)], "x").unwrap();
        assert_eq!(r.user, None);
        assert!(
            r.warnings.iter().any(|w| w.contains("was skipped")),
            "{:?}",
            r.warnings
        );
        let r = with(&[("config", &cfg)], "z").unwrap();
        assert!(
            r.warnings.is_empty(),
            "not evaluated when `host` fails first: {:?}",
            r.warnings
        );
        assert!(!marker.exists(), "keyclone ran the command of `Match exec`");
    }

    #[test]
    fn match_criteria_and_final_pass() {
        let cfg = "Host gh\n HostName github.com\nMatch final host github.com\n User git\nMatch originalhost gh user me localuser me\n Port 443\nMatch all\n IdentityFile ~/k\n";
        let r = with(&[("config", cfg)], "gh").unwrap();
        assert_eq!((r.user.as_deref(), r.port), (Some("git"), 443));
        assert_eq!(r.identity_files, vec!["~/k"]);
        assert!(with(&[("config", "Match nosuch x\n")], "gh").is_err());
        assert!(with(&[("config", "Match all host x\n")], "gh").is_err());
    }

    #[test]
    fn proxies_and_what_keyclone_does_not_do() {
        let cfg = "Host a\n ProxyJump j1\n ProxyCommand nc %h %p\nHost b\n ProxyCommand nc %h %p\nHost c\n ProxyCommand none\n ProxyJump j\n CertificateFile ~/c\n";
        assert_eq!(
            with(&[("config", cfg)], "a").unwrap().proxy,
            Some(Proxy::Jump("j1".into()))
        );
        assert_eq!(
            with(&[("config", cfg)], "b").unwrap().proxy,
            Some(Proxy::Command("nc %h %p".into()))
        );
        let c = with(&[("config", cfg)], "c").unwrap();
        assert_eq!(c.proxy, None);
        assert!(
            c.warnings.iter().any(|w| w.contains("certificatefile")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn numeric_host_names_are_normalised_as_the_resolver_does() {
        for (i, o) in [
            ("1", "0.0.0.1"),
            ("10.1", "10.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("010.0.0.1", "8.0.0.1"),
            ("1.2.3.4", "1.2.3.4"),
            ("0:0::1", "::1"),
        ] {
            assert_eq!(normalise_address(i), o, "{i}");
        }
        for keep in ["host", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "1e3", "x.1"] {
            assert_eq!(normalise_address(keep), keep);
        }
    }

    #[test]
    fn a_missing_config_resolves_to_the_host_itself() {
        let r = with(&[], "Example.org").unwrap();
        assert_eq!(r.endpoint(), Endpoint::new("example.org", 22));
    }
}
