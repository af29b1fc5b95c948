//! The host keys providers publish over https (GitHub's `api.github.com/meta`, Bitbucket's
//! `bitbucket.org/site/ssh`, a self-hosted server's `published-url`), and what a refresh of
//! them (`keyclone trust --refresh`) changes in the pins.
//!
//! The rule (SECURITY.md, "Keeping the pins current"): a refresh fetched over https verified
//! against the system roots, and not older than the pins built into this keyclone, *replaces*
//! the pins of the endpoints it covers: a key added upstream is trusted, a key removed upstream
//! is no longer trusted. A revoked key stays revoked whatever a refresh says. Pure, except for
//! the store file ([`store`]).

use ssh_key::PublicKey;

use super::{Endpoint, Pin, Provider};
use crate::config::PublishedFormat;
use crate::error::{Error, ErrorKind, Result};

mod store;
pub use store::{Refresh, Store, load, store_path};

/// The day the pins in `builtin.rs` were last checked against the providers' documentation. A
/// refresh older than this is ignored (a newer keyclone knows better); one newer is reported by
/// `doctor` when it changed something.
pub const EMBEDDED_PINS_DATE: &str = "2026-11-26";

/// The most keys one answer may list (GitHub lists 3; rotations add a few).
pub const MAX_KEYS: usize = 32;
/// The most bytes of an answer read (GitHub's `/meta` is about 30 KB, mostly IP ranges).
pub const ANSWER_LIMIT: u64 = 512 * 1024;

/// Where a provider publishes its host keys, and which endpoints they are for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Published {
    pub url: String,
    pub format: PublishedFormat,
    pub endpoints: Vec<Endpoint>,
}

/// The built-in providers' published sources. GitHub's `/meta` names no host: its keys are
/// taken for `github.com` only (`ssh.github.com:443` keeps its pins: GitHub documents only
/// its Ed25519 key there). Bitbucket's list names `bitbucket.org`; `ssh.bitbucket.org` has no
/// published keys, so it is not covered and keeps needing the user's confirmation.
pub(super) fn builtin_sources() -> Vec<(String, Published)> {
    vec![
        (
            "github".into(),
            Published {
                url: "https://api.github.com/meta".into(),
                format: PublishedFormat::GithubMeta,
                endpoints: vec![Endpoint::new("github.com", 22)],
            },
        ),
        (
            "bitbucket".into(),
            Published {
                url: "https://bitbucket.org/site/ssh".into(),
                format: PublishedFormat::KnownHosts,
                endpoints: vec![Endpoint::new("bitbucket.org", 22)],
            },
        ),
    ]
}

/// The keys an answer publishes for `endpoints`, and what was left out (lines for other hosts,
/// markers, keys keyclone cannot read), for the report. An answer with no key is an error:
/// taking it would remove every pin.
pub fn parse(
    format: PublishedFormat,
    body: &[u8],
    endpoints: &[Endpoint],
) -> Result<(Vec<PublicKey>, Vec<String>)> {
    let text = std::str::from_utf8(body).map_err(|_| {
        Error::new(
            ErrorKind::Network,
            "the published host keys are not UTF-8 text",
        )
    })?;
    let mut keys: Vec<PublicKey> = Vec::new();
    let mut skipped = Vec::new();
    let take = |line: &str, keys: &mut Vec<PublicKey>, skipped: &mut Vec<String>| {
        match PublicKey::from_openssh(line) {
            Ok(k) if !keys.iter().any(|o| o.key_data() == k.key_data()) => keys.push(k),
            Ok(_) => {}
            Err(_) => skipped.push(format!("a key keyclone cannot read: {}", shown(line))),
        }
    };
    match format {
        PublishedFormat::GithubMeta => {
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                Error::new(
                    ErrorKind::Network,
                    format!("the published host keys are not JSON: {e}"),
                )
            })?;
            let list = v
                .get("ssh_keys")
                .and_then(|k| k.as_array())
                .ok_or_else(|| {
                    Error::new(ErrorKind::Network, "the answer has no `ssh_keys` list")
                })?;
            for item in list.iter().take(MAX_KEYS + 1) {
                match item.as_str() {
                    Some(s) => take(s.trim(), &mut keys, &mut skipped),
                    None => skipped.push("an entry that is not a string".into()),
                }
            }
        }
        PublishedFormat::KnownHosts => {
            let names: Vec<String> = endpoints.iter().map(Endpoint::known_hosts_name).collect();
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if line.starts_with('@') {
                    skipped.push(format!("a marker line: {}", shown(line)));
                    continue;
                }
                let (hosts, key) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                if hosts
                    .split(',')
                    .any(|h| names.iter().any(|n| n.eq_ignore_ascii_case(h)))
                {
                    take(key.trim(), &mut keys, &mut skipped);
                } else {
                    skipped.push(format!("a line for another host: {}", shown(hosts)));
                }
            }
        }
    }
    if keys.len() > MAX_KEYS {
        return Err(Error::new(
            ErrorKind::Network,
            format!("the answer lists more than {MAX_KEYS} host keys: not a provider's list"),
        ));
    }
    if keys.is_empty() {
        return Err(Error::new(
            ErrorKind::Network,
            "the answer lists no host key keyclone can read; nothing was changed",
        ));
    }
    Ok((keys, skipped))
}

/// At most 80 characters, control characters escaped: hostile text in a message.
fn shown(s: &str) -> String {
    let s: String = s.chars().take(80).collect();
    crate::names::shown(&s)
}

/// The fingerprints added and removed by a refresh, against `pins` of `endpoints`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diff {
    /// `(fingerprint, TYPE BASE64)` published but not pinned.
    pub added: Vec<(String, String)>,
    /// Fingerprints pinned but no longer published.
    pub removed: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

pub fn diff(pins: &[Pin], endpoints: &[Endpoint], keys: &[String]) -> Diff {
    let fps: Vec<(String, String)> = keys
        .iter()
        .filter_map(|k| {
            PublicKey::from_openssh(k)
                .ok()
                .map(|p| (crate::ssh::key::fingerprint(&p), k.clone()))
        })
        .collect();
    let mine: Vec<&Pin> = pins
        .iter()
        .filter(|p| endpoints.contains(&p.endpoint))
        .collect();
    let mut d = Diff::default();
    for (fp, k) in &fps {
        if !mine.iter().any(|p| &p.fingerprint == fp) && !d.added.iter().any(|(f, _)| f == fp) {
            d.added.push((fp.clone(), k.clone()));
        }
    }
    for p in mine {
        if !fps.iter().any(|(fp, _)| *fp == p.fingerprint) && !d.removed.contains(&p.fingerprint) {
            d.removed.push(p.fingerprint.clone());
        }
    }
    d
}

/// Whether `r` applies to provider `p` with source `src`: same provider and URL, and (for a
/// built-in provider) not older than the pins built in.
pub fn applies(p: &Provider, src: &Published, r: &Refresh) -> bool {
    r.provider == p.id
        && r.source == src.url
        && (!p.builtin || r.fetched_at.as_str() >= EMBEDDED_PINS_DATE)
}

/// Replaces the pins of the refresh's endpoints with its keys (revoked keys left out).
pub fn apply(p: &mut Provider, src: &Published, r: &Refresh) {
    if !applies(p, src, r) {
        return;
    }
    let keys: Vec<(String, String)> = r
        .keys
        .iter()
        .filter_map(|k| {
            PublicKey::from_openssh(k)
                .ok()
                .map(|pk| (crate::ssh::key::fingerprint(&pk), k.clone()))
        })
        .filter(|(fp, _)| !p.revoked.iter().any(|rv| &rv.fingerprint == fp))
        .collect();
    if keys.is_empty() {
        return;
    }
    for ep in &src.endpoints {
        if !r.endpoints.contains(&ep.known_hosts_name()) {
            continue;
        }
        p.pins.retain(|pin| pin.endpoint != *ep);
        for (fp, k) in &keys {
            p.pins.push(Pin {
                endpoint: ep.clone(),
                key: Some(k.clone()),
                fingerprint: fp.clone(),
                confirmed: true,
            });
        }
    }
}

/// Why an endpoint of a provider that publishes its keys elsewhere is still not verified on
/// its own (`ssh.bitbucket.org`: Bitbucket's list names `bitbucket.org` only), or `None`.
pub fn uncovered_note(p: &Provider, src: &Published, ep: &Endpoint) -> Option<String> {
    let serves = p.ssh.iter().chain(p.ssh_443.iter()).any(|e| e == ep);
    if !serves || src.endpoints.contains(ep) || p.pins.iter().any(|pin| pin.endpoint == *ep) {
        return None;
    }
    let covered: Vec<String> = src
        .endpoints
        .iter()
        .map(Endpoint::known_hosts_name)
        .collect();
    Some(format!(
        "{} publishes host keys ({}) for {} only, none for {ep} yet: so keyclone asks you to confirm this one, and `keyclone trust --refresh` cannot change that",
        p.name,
        src.url,
        covered.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Registry;

    const NEW: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIVIC02vnjFyL+I4RHfvIGNtOgJMe769VTF1VR4EB3ZB";
    const GH_ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn gh() -> (Provider, Published) {
        let reg = Registry::builtin();
        let p = reg.get("github").unwrap().clone();
        (p, builtin_sources().remove(0).1)
    }

    fn refresh(keys: &[&str], at: &str) -> Refresh {
        Refresh {
            provider: "github".into(),
            source: "https://api.github.com/meta".into(),
            fetched_at: at.into(),
            endpoints: vec!["github.com".into()],
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    #[test]
    fn github_meta_and_known_hosts_lines_are_read_and_other_hosts_left_out() {
        let body =
            format!(r#"{{"ssh_keys":["{GH_ED}","{NEW}","{GH_ED}","ssh-ed25519 !!"],"hooks":[]}}"#);
        let (keys, skipped) = parse(PublishedFormat::GithubMeta, body.as_bytes(), &[]).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(skipped.len(), 1);
        let eps = [Endpoint::new("bitbucket.org", 22)];
        let body =
            format!("bitbucket.org {NEW}\ngithub.com {GH_ED}\n@revoked bitbucket.org {GH_ED}\n");
        let (keys, skipped) = parse(PublishedFormat::KnownHosts, body.as_bytes(), &eps).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(
            crate::ssh::key::fingerprint(&keys[0]),
            "SHA256:mIlxA9k46MmM6qdJOdMnAQpzGxF4WIVVL+fj+wZbw0g"
        );
        assert_eq!(skipped.len(), 2, "{skipped:?}");
    }

    #[test]
    fn an_answer_without_keys_or_with_too_many_is_refused() {
        for body in [
            "<html>login</html>",
            r#"{"hooks":[]}"#,
            r#"{"ssh_keys":[]}"#,
            r#"{"ssh_keys":[1]}"#,
        ] {
            assert!(
                parse(PublishedFormat::GithubMeta, body.as_bytes(), &[]).is_err(),
                "{body}"
            );
        }
        let eps = [Endpoint::new("bitbucket.org", 22)];
        assert!(parse(PublishedFormat::KnownHosts, b"<html></html>", &eps).is_err());
        assert!(
            parse(
                PublishedFormat::KnownHosts,
                format!("evil.example {NEW}").as_bytes(),
                &eps
            )
            .is_err()
        );
    }

    #[test]
    fn ssh_bitbucket_org_is_said_to_have_no_published_keys() {
        let reg = Registry::builtin();
        let bb = reg.get("bitbucket").unwrap();
        let src = reg.published("bitbucket").unwrap();
        let note = uncovered_note(bb, src, &Endpoint::new("ssh.bitbucket.org", 22)).unwrap();
        assert!(note.contains("none for ssh.bitbucket.org yet"), "{note}");
        assert!(note.contains("https://bitbucket.org/site/ssh"), "{note}");
        assert_eq!(
            uncovered_note(bb, src, &Endpoint::new("bitbucket.org", 22)),
            None
        );
        let (gh, gsrc) = gh();
        assert_eq!(
            uncovered_note(&gh, &gsrc, &Endpoint::new("ssh.github.com", 443)),
            None,
            "pinned"
        );
    }

    #[test]
    fn a_refresh_replaces_the_pins_of_its_endpoints_only() {
        let (mut p, src) = gh();
        let before_443 = p.pins.iter().filter(|x| x.endpoint.port == 443).count();
        let d = diff(&p.pins, &src.endpoints, &[GH_ED.into(), NEW.into()]);
        assert_eq!(d.added.len(), 1);
        assert_eq!(
            d.removed.len(),
            2,
            "GitHub's ecdsa and rsa keys are no longer published"
        );
        apply(
            &mut p,
            &src,
            &refresh(&[GH_ED, NEW], "2026-12-01T10:00:00Z"),
        );
        let at22: Vec<_> = p.pins.iter().filter(|x| x.endpoint.port == 22).collect();
        assert_eq!(at22.len(), 2);
        assert!(at22.iter().all(|x| x.confirmed));
        assert!(at22.iter().any(|x| x.key.as_deref() == Some(NEW)));
        assert_eq!(
            p.pins.iter().filter(|x| x.endpoint.port == 443).count(),
            before_443
        );
    }

    #[test]
    fn an_old_refresh_another_source_or_a_revoked_key_changes_nothing() {
        let (p0, src) = gh();
        let mut p = p0.clone();
        apply(&mut p, &src, &refresh(&[NEW], "2026-01-01T00:00:00Z"));
        assert_eq!(p.pins, p0.pins, "older than the embedded pins");
        let mut other = refresh(&[NEW], "2026-12-01T00:00:00Z");
        other.source = "https://evil.example/meta".into();
        apply(&mut p, &src, &other);
        assert_eq!(p.pins, p0.pins, "another source");
        let revoked = p.revoked.iter().find_map(|r| r.key.clone()).unwrap();
        apply(&mut p, &src, &refresh(&[&revoked], "2026-12-01T00:00:00Z"));
        assert_eq!(p.pins, p0.pins, "only a revoked key: nothing taken");
        apply(
            &mut p,
            &src,
            &refresh(&[&revoked, NEW], "2026-12-01T00:00:00Z"),
        );
        assert!(
            !p.pins
                .iter()
                .any(|x| x.key.as_deref() == Some(revoked.as_str()))
        );
    }
}
