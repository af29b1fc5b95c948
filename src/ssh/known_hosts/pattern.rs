//! OpenSSH's host patterns: `*`/`?` wildcards, comma lists with `!` negation, and hashed
//! `|1|salt|hash` names.

use base64ct::{Base64, Encoding};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha1::Sha1;

/// OpenSSH's wildcard match: `*` any run of characters, `?` exactly one.
pub fn wildcard_match(name: &str, pattern: &str) -> bool {
    let (n, p): (Vec<char>, Vec<char>) = (name.chars().collect(), pattern.chars().collect());
    let (mut ni, mut pi) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            ni += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ni));
            pi += 1;
        } else if let Some((bp, bn)) = backtrack {
            pi = bp + 1;
            ni = bn + 1;
            backtrack = Some((bp, bn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// How a pattern list matches a name: OpenSSH's `match_hostname`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternMatch {
    No,
    Yes,
    /// A `!pattern` matched: the entry does not apply, whatever else matches.
    Negated,
}

pub fn match_pattern_list(name: &str, list: &str) -> PatternMatch {
    let name = name.to_ascii_lowercase();
    let mut got = PatternMatch::No;
    for pat in list.split(',').filter(|p| !p.is_empty()) {
        let pat = pat.to_ascii_lowercase();
        match pat.strip_prefix('!') {
            Some(neg) if wildcard_match(&name, neg) => return PatternMatch::Negated,
            Some(_) => {}
            None if wildcard_match(&name, &pat) => got = PatternMatch::Yes,
            None => {}
        }
    }
    got
}

pub(super) fn hmac_sha1(salt: &[u8], name: &str) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(salt).expect("HMAC accepts a key of any length");
    mac.update(name.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))` with a fresh 20-byte salt, as `ssh-keygen -H`.
pub fn hash_name(name: &str) -> String {
    let mut salt = [0u8; 20];
    OsRng.fill_bytes(&mut salt);
    format!(
        "|1|{}|{}",
        Base64::encode_string(&salt),
        Base64::encode_string(&hmac_sha1(&salt, name))
    )
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{ED, kh};
    use super::*;
    use crate::endpoint::Endpoint;

    #[test]
    fn wildcards_match_like_openssh() {
        assert!(wildcard_match("github.com", "*.com"));
        assert!(wildcard_match("github.com", "git?ub.com"));
        assert!(wildcard_match("a.b.c", "*"));
        assert!(!wildcard_match("github.com", "*.org"));
        assert!(wildcard_match("[h]:2222", "[h]:*"));
        assert!(!wildcard_match("abc", "a?"));
        assert!(wildcard_match("aXbXc", "a*b*c"));
    }

    #[test]
    fn lists_wildcards_and_negation() {
        let k = kh(&format!(
            "a.example,*.corp.example,!bad.corp.example {ED}\n"
        ));
        assert_eq!(k.lookup(&Endpoint::new("a.example", 22)).count(), 1);
        assert_eq!(k.lookup(&Endpoint::new("git.corp.example", 22)).count(), 1);
        assert_eq!(k.lookup(&Endpoint::new("bad.corp.example", 22)).count(), 0);
        assert_eq!(
            k.lookup(&Endpoint::new("GIT.CORP.EXAMPLE", 22)).count(),
            1,
            "case-insensitive"
        );
    }

    #[test]
    fn a_trailing_star_matches_nothing_more_and_a_longer_pattern_does_not_match() {
        assert!(wildcard_match("abc", "abc*"));
        assert!(wildcard_match("abc", "a**"));
        assert!(!wildcard_match("ab", "abc"));
        assert!(!wildcard_match("ab", "ab?"));
        assert!(wildcard_match("a.b.example", "a*.example"));
        assert!(!wildcard_match("a.b.example", "*b.c*"));
        assert!(wildcard_match("xaab", "*ab"));
    }
}
