//! The one rule for names that reach a file: every host, user, port, alias and path that
//! keyclone writes into `~/.ssh/config`, a known_hosts line, a folder name or a log line is
//! checked here, *after* any decoding (a URL's `%0a` is a newline by the time it is checked),
//! against the grammar of the file it goes into. Pure functions; the callers turn the reason
//! into their error.
//!
//! - A host keyclone writes is a DNS name (letters, digits, `-`, `_`, `.`: no pattern
//!   character `*?!`, no comma, no whitespace, no control character, not starting with `-`
//!   or `.`), or an IP address. known_hosts reads `,` as a list and `*?!` as patterns, and
//!   `ssh` reads a leading `-` as an option, so none of them may reach either file.
//! - A user is what OpenSSH's `valid_ruser` allows and more strictly: letters, digits,
//!   `.`, `_`, `-`, `+`, not starting with `-`.
//! - An alias (`Host` line) follows the host rule.
//! - A path written into `~/.ssh/config` holds no control character, no quote (`"`, `'`:
//!   OpenSSH's tokenizer ends or refuses on them), no `\\` (it is an escape there), no `%` and
//!   no `$` (OpenSSH expands `%` tokens and `${VAR}` in `IdentityFile` and
//!   `UserKnownHostsFile`).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Longest DNS name.
const MAX_HOST: usize = 253;
/// Longer than any login name (Linux allows 32) or Git service user.
const MAX_USER: usize = 64;

/// Checks a host name or IP address (IPv6 without brackets).
pub fn host(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.contains(':') {
        return s
            .parse::<Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| "it holds `:` but is not an IPv6 address".into());
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if s.len() > MAX_HOST {
        return Err(format!("it is longer than {MAX_HOST} characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "it holds {}, which no host name holds",
            describe(c)
        ));
    }
    if s.starts_with(['-', '.']) {
        return Err("it starts with `-` or `.`".into());
    }
    if s.ends_with('.') {
        // `github.com.` is github.com to DNS but not to known_hosts or the provider table.
        return Err("it ends with `.` (write the name without the final dot)".into());
    }
    if s.contains("..") {
        return Err("it holds an empty label (`..`)".into());
    }
    Ok(())
}

/// Checks an SSH user name.
pub fn user(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.len() > MAX_USER {
        return Err(format!("it is longer than {MAX_USER} characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+')))
    {
        return Err(format!(
            "it holds {}, which an SSH user name may not hold",
            describe(c)
        ));
    }
    if s.starts_with('-') {
        return Err("it starts with `-`".into());
    }
    Ok(())
}

/// Checks the name after `Host` in the managed block.
pub fn alias(s: &str) -> Result<(), String> {
    if s.contains(':') {
        return Err("it holds `:`".into());
    }
    host(s)
}

/// Checks a port (0 is no port).
pub fn port(p: u16) -> Result<(), String> {
    if p == 0 {
        return Err("ports are 1 to 65535".into());
    }
    Ok(())
}

/// Checks a path that goes into `~/.ssh/config`.
pub fn config_path(p: &Path) -> Result<(), String> {
    let Some(s) = p.to_str() else {
        return Err("it is not valid UTF-8".into());
    };
    if !p.is_absolute() {
        return Err("it is not absolute".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| c.is_control() || matches!(c, '"' | '\'' | '\\' | '%' | '$' | '`'))
    {
        return Err(format!(
            "it holds {}, which `~/.ssh/config` cannot carry",
            describe(c)
        ));
    }
    Ok(())
}

/// A character as a message shows it (control characters escaped).
fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("the character {}", c.escape_default())
    } else {
        format!("`{c}`")
    }
}

/// A value for messages: control characters escaped, so a crafted value cannot draw on the
/// terminal or forge a log line.
pub fn shown(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            // Control characters, and the invisible ones that reorder or hide text (bidi
            // overrides and isolates, zero-width marks).
            let invisible = matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}');
            if c.is_control() || invisible {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_keyclone_writes_are_plain_names_or_addresses() {
        for ok in [
            "github.com",
            "ssh.dev.azure.com",
            "git_host.corp-1.example",
            "127.0.0.1",
            "::1",
            "fe80::1",
            "localhost",
        ] {
            assert_eq!(host(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "x,github.com",
            "git?ub.com",
            "*.github.com",
            "!github.com",
            "github.com\nHost *",
            "github .com",
            "-oProxyCommand=x",
            ".github.com",
            "a..b",
            "github.com.",
            "[::1]",
            "host:22",
            "h%0a",
            "h\u{0}",
            "hé.example",
            "a|b",
            "a/b",
            "user@host",
        ] {
            assert!(host(bad).is_err(), "{bad:?}");
        }
        assert!(host(&"a".repeat(254)).is_err());
    }

    #[test]
    fn users_hold_no_newline_space_or_shell_characters() {
        for ok in ["git", "john.doe", "svc-ci_1", "ORG", "a+b"] {
            assert_eq!(user(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "git\nHost *\n  ProxyCommand touch /tmp/x",
            "git Host",
            "-oProxyCommand",
            "a;b",
            "a$(x)",
            "a`x`",
            "a'b",
            "a@b",
            "a%b",
            "a\tb",
        ] {
            assert!(user(bad).is_err(), "{bad:?}");
        }
        assert!(user(&"u".repeat(65)).is_err());
    }

    #[test]
    fn aliases_ports_and_paths() {
        assert_eq!(alias("github.com-work"), Ok(()));
        assert!(alias("github.com work").is_err());
        assert!(alias("*").is_err());
        assert!(alias("::1").is_err());
        assert_eq!(port(22), Ok(()));
        assert!(port(0).is_err());
        assert_eq!(config_path(Path::new("/home/a b/.ssh/id_ed25519")), Ok(()));
        assert!(config_path(Path::new("/home/a\nHost */id")).is_err());
        assert!(config_path(Path::new("/home/a\"b/id")).is_err());
        assert!(config_path(Path::new("/home/%d/id")).is_err());
        for bad in ["/h/id_o'k", "/h/a\\b", "/h/${NOPE}/kh", "/h/`x`"] {
            assert!(config_path(Path::new(bad)).is_err(), "{bad}");
        }
        assert!(config_path(Path::new("relative/id")).is_err());
    }

    #[test]
    fn shown_values_escape_control_characters() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert_eq!(shown("ok"), "ok");
        assert_eq!(shown("a\u{202e}b"), "a\\u{202e}b");
    }

    #[test]
    fn the_longest_names_allowed_pass_and_one_more_character_does_not() {
        // 253 characters is the longest DNS name, 64 the longest user keyclone writes.
        let longest_host = format!("{}.example", "a".repeat(MAX_HOST - ".example".len()));
        assert_eq!(longest_host.len(), 253);
        assert_eq!(host(&longest_host), Ok(()));
        assert!(host(&format!("a{longest_host}")).is_err());
        assert_eq!(user(&"u".repeat(MAX_USER)), Ok(()));
        assert!(user(&"u".repeat(MAX_USER + 1)).is_err());
    }

    #[test]
    fn a_refused_character_is_named_and_a_control_character_escaped() {
        let e = host("a\u{1b}[2Jb").unwrap_err();
        assert!(e.contains("\\u{1b}") && !e.contains('\u{1b}'), "{e:?}");
        let e = user("a\tb").unwrap_err();
        assert!(e.contains("\\t") && !e.contains('\t'), "{e:?}");
        assert!(host("a|b").unwrap_err().contains("`|`"));
        assert!(
            config_path(Path::new("/h/a$b"))
                .unwrap_err()
                .contains("`$`")
        );
    }
}
