//! Where an SSH server listens: a host and a port, with the one way people read it
//! ([`Display`](std::fmt::Display): `host`, or `host:port` when the port is not 22) and the one
//! way known_hosts names it ([`Endpoint::known_hosts_name`]: `host`, or `[host]:port`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// SSH's default port: the one port neither form writes.
pub const DEFAULT_PORT: u16 = 22;

/// A host and a port. Serialized as `{"host": ..., "port": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Endpoint {
            host: host.into(),
            port,
        }
    }

    /// The name known_hosts knows it by: `host` on port 22, `[host]:port` otherwise, in lower
    /// case (OpenSSH compares host names case-insensitively).
    pub fn known_hosts_name(&self) -> String {
        let host = self.host.to_ascii_lowercase();
        if self.port == DEFAULT_PORT {
            host
        } else {
            format!("[{host}]:{}", self.port)
        }
    }

    /// Whether `s` is written as a host (`HOST`, `HOST:PORT`, `[HOST]:PORT`, a bare IPv6
    /// address) rather than as a URL: what [`FromStr`] accepts the shape of.
    pub fn is_host_form(s: &str) -> bool {
        let looks_like_url = s.contains("://") || s.contains('@');
        let colons = s.matches(':').count();
        s.starts_with('[')
            || (!looks_like_url
                && colons == 1
                && s.split_once(':')
                    .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit())))
            || (!looks_like_url && colons == 0)
            || (!looks_like_url && colons > 1 && !s.contains('/'))
    }
}

/// How people read it: `host`, or `host:port` when the port is not 22 (`[host]:port` for an
/// IPv6 address, whose own colons would make `host:port` ambiguous).
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port == DEFAULT_PORT {
            f.write_str(&self.host)
        } else if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a string is no endpoint: the message, and what to write instead when there is a rule to
/// name. (Its own type so this module depends on nothing in keyclone; `ops::host::parse_target`
/// makes it a usage error.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEndpoint {
    pub message: String,
    pub hint: Option<&'static str>,
}

impl BadEndpoint {
    fn new(message: String) -> Self {
        BadEndpoint {
            message,
            hint: None,
        }
    }
}

impl fmt::Display for BadEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BadEndpoint {}

/// `HOST`, `HOST:PORT`, `[HOST]:PORT` or a bare IPv6 address (port 22 when none is given).
/// The host is taken as written: checking and lower-casing it is the caller's
/// (`ops::host::parse_target`, which also takes SSH URLs).
impl FromStr for Endpoint {
    type Err = BadEndpoint;

    fn from_str(target: &str) -> Result<Self, BadEndpoint> {
        let bad_port = |p: &str| BadEndpoint {
            message: format!("`{p}` is not a port: ports are 1 to 65535"),
            hint: Some("give the port as `HOST:PORT`, e.g. `git.example.org:2222`"),
        };
        let port_of = |p: &str| -> Result<u16, BadEndpoint> {
            match p.parse::<u32>() {
                Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
                _ => Err(bad_port(p)),
            }
        };
        if !Self::is_host_form(target) {
            return Err(BadEndpoint::new(format!(
                "`{target}` is not HOST, HOST:PORT or [HOST]:PORT"
            )));
        }
        if let Some(rest) = target.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| BadEndpoint::new(format!("`{target}`: `[` without `]`")))?;
            let port = match after.strip_prefix(':') {
                Some(p) => port_of(p)?,
                None if after.is_empty() => DEFAULT_PORT,
                None => {
                    return Err(BadEndpoint::new(format!(
                        "`{target}` is not HOST or [HOST]:PORT"
                    )));
                }
            };
            return Ok(Endpoint::new(host, port));
        }
        match target.split_once(':') {
            Some((h, p)) if target.matches(':').count() == 1 => Ok(Endpoint::new(h, port_of(p)?)),
            // No colon, or a bare IPv6 address.
            _ => Ok(Endpoint::new(target, DEFAULT_PORT)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_omits_port_22_only() {
        assert_eq!(Endpoint::new("h.example", 22).to_string(), "h.example");
        assert_eq!(
            Endpoint::new("h.example", 2222).to_string(),
            "h.example:2222"
        );
        assert_eq!(Endpoint::new("H.Example", 443).to_string(), "H.Example:443");
    }

    #[test]
    fn ipv6_literals_are_bracketed_with_a_port() {
        assert_eq!(Endpoint::new("::1", 22).to_string(), "::1");
        assert_eq!(Endpoint::new("::1", 2222).to_string(), "[::1]:2222");
        assert_eq!(Endpoint::new("::1", 22).known_hosts_name(), "::1");
        assert_eq!(Endpoint::new("::1", 2222).known_hosts_name(), "[::1]:2222");
    }

    #[test]
    fn known_hosts_name_brackets_other_ports_in_lower_case() {
        assert_eq!(
            Endpoint::new("H.example", 22).known_hosts_name(),
            "h.example"
        );
        assert_eq!(
            Endpoint::new("SSH.GitHub.com", 443).known_hosts_name(),
            "[ssh.github.com]:443"
        );
    }

    #[test]
    fn parse_reads_what_display_and_known_hosts_write() {
        for ep in [
            Endpoint::new("h.example", 22),
            Endpoint::new("h.example", 2222),
            Endpoint::new("127.0.0.1", 2200),
            Endpoint::new("::1", 22),
            Endpoint::new("::1", 2222),
        ] {
            assert_eq!(ep.to_string().parse::<Endpoint>().unwrap(), ep, "{ep}");
            assert_eq!(ep.known_hosts_name().parse::<Endpoint>().unwrap(), ep);
        }
        assert_eq!("[h]".parse::<Endpoint>().unwrap(), Endpoint::new("h", 22));
    }

    #[test]
    fn parse_refuses_bad_ports_and_urls() {
        for bad in [
            "h:0",
            "h:65536",
            "[h]:0",
            "[h]x",
            "[h",
            "git@h:o/r",
            "ssh://h/r",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
        assert!(
            "h:0"
                .parse::<Endpoint>()
                .unwrap_err()
                .message
                .contains("ports are 1 to 65535")
        );
        assert!(!Endpoint::is_host_form("git@github.com:o/r.git"));
        assert!(!Endpoint::is_host_form("host:o/r"));
        assert!(Endpoint::is_host_form("fe80::1"));
    }
}
