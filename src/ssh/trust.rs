//! The one decision about a host key: given a host, a port and the key the server presented,
//! what do known_hosts files and the providers' pins say? Pure: no I/O, unit-tested. The same
//! function serves `keyclone trust` (through `ops::host`) and libgit2's certificate check
//! (`git::clone`).

use std::path::PathBuf;

use serde::Serialize;
use ssh_key::PublicKey;

use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind};
use crate::providers::Registry;
use crate::ssh::key::{fingerprint, type_label};
use crate::ssh::known_hosts::{KnownHosts, Marker};

/// A key as people compare it: type and SHA256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub algorithm: String,
    pub fingerprint: String,
}

impl KeyInfo {
    pub fn of(key: &PublicKey) -> KeyInfo {
        KeyInfo {
            algorithm: key.algorithm().as_str().to_owned(),
            fingerprint: fingerprint(key),
        }
    }

    /// `ED25519 SHA256:...`
    pub fn show(&self) -> String {
        let label = ssh_key::Algorithm::new(&self.algorithm)
            .map(|a| type_label(&a))
            .unwrap_or("KEY");
        format!("{label} {}", self.fingerprint)
    }
}

/// A line of a known_hosts file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnownLine {
    pub path: PathBuf,
    pub line: usize,
    pub key: KeyInfo,
    /// Set when the key on this line is one a provider revoked (e.g. GitHub's 2023 RSA key).
    pub revoked: Option<String>,
}

impl KnownLine {
    pub fn show(&self) -> String {
        format!(
            "{} (`{}` line {})",
            self.key.show(),
            self.path.display(),
            self.line
        )
    }
}

/// What to do with the presented key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// A known_hosts line already trusts this key for this host.
    Known { line: KnownLine },
    /// The provider publishes this key for this host and port.
    Pinned { provider: String },
    /// Nothing says anything about this key for this host.
    Unknown,
    /// known_hosts holds another key for this host: refuse.
    Changed { expected: Vec<KnownLine> },
    /// The key is revoked (a `@revoked` line, or a key the provider retired): refuse.
    Revoked {
        reason: String,
        line: Option<KnownLine>,
    },
    /// The provider publishes other keys for this host: refuse.
    PinMismatch {
        provider: String,
        expected: Vec<String>,
    },
}

impl Decision {
    pub fn trusted(&self) -> bool {
        matches!(self, Decision::Known { .. } | Decision::Pinned { .. })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Decision::Known { .. } => "known",
            Decision::Pinned { .. } => "pinned",
            Decision::Unknown => "unknown",
            Decision::Changed { .. } => "changed",
            Decision::Revoked { .. } => "revoked",
            Decision::PinMismatch { .. } => "pin-mismatch",
        }
    }
}

/// The decision with what led to it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The host (lower case) and port; serialized as its `host` and `port` fields.
    #[serde(flatten)]
    pub endpoint: Endpoint,
    pub presented: KeyInfo,
    #[serde(flatten)]
    pub decision: Decision,
    /// known_hosts lines for this host holding other keys (stale, or revoked by the provider):
    /// `--replace` removes them.
    pub other_lines: Vec<KnownLine>,
    /// The provider that serves this host, if any (its id).
    pub provider: Option<String>,
    /// The key matches a pin that only one source confirms: shown, never trusted by itself.
    pub unconfirmed_pin: bool,
    /// The host has pins that no first-party source confirms, and the key matches none of
    /// them: said plainly, and `--accept-new` does not trust it.
    pub matches_no_unconfirmed_pin: bool,
}

/// Decides about `key` presented by `ep`.
pub fn decide(
    ep: &Endpoint,
    key: &PublicKey,
    files: &[KnownHosts],
    registry: &Registry,
) -> Verdict {
    let presented = KeyInfo::of(key);
    let port = ep.port;
    let provider = registry.for_endpoint(ep);
    let revoked_reason = |fp: &str| -> Option<String> {
        registry
            .all()
            .iter()
            .flat_map(|p| p.revoked.iter())
            .find(|r| r.fingerprint == fp)
            .map(|r| r.reason.clone())
    };
    let mut verdict = Verdict {
        endpoint: Endpoint::new(ep.host.to_ascii_lowercase(), port),
        presented: presented.clone(),
        decision: Decision::Unknown,
        other_lines: Vec::new(),
        provider: provider.map(|p| p.id.clone()),
        unconfirmed_pin: false,
        matches_no_unconfirmed_pin: false,
    };

    let mut matching: Vec<KnownLine> = Vec::new();
    for file in files {
        for e in file.lookup(ep) {
            let info = KeyInfo::of(&e.key);
            let line = KnownLine {
                path: file.path.clone(),
                line: e.line,
                revoked: revoked_reason(&info.fingerprint),
                key: info,
            };
            let same = e.key.key_data() == key.key_data();
            match e.marker {
                Marker::Revoked if same => {
                    verdict.decision = Decision::Revoked {
                        reason: format!(
                            "`{}` line {} marks this key @revoked",
                            file.path.display(),
                            e.line
                        ),
                        line: Some(line),
                    };
                    return verdict;
                }
                // A CA key signs host certificates; it is never a host key itself.
                Marker::Revoked | Marker::CertAuthority => {}
                Marker::None if same => matching.push(line),
                Marker::None => verdict.other_lines.push(line),
            }
        }
    }
    if let Some(reason) = revoked_reason(&presented.fingerprint) {
        verdict.decision = Decision::Revoked { reason, line: None };
        return verdict;
    }

    // A host that a built-in provider pins is decided by the built-in pins alone, whichever
    // provider claims it (a config entry can neither unpin it nor add a key of its own), and
    // on every port: the pins of the same host on another port apply when this port has none
    // (`ssh.github.com` serves port 22 with its port-443 keys).
    let builtin_pins = |exact: bool| -> Vec<&crate::providers::Pin> {
        registry
            .all()
            .iter()
            .filter(|p| p.builtin)
            .flat_map(|p| p.pins.iter())
            .filter(|pin| {
                pin.endpoint.host == verdict.endpoint.host && (!exact || pin.endpoint.port == port)
            })
            .collect()
    };
    let mut pins = builtin_pins(true);
    if pins.is_empty() {
        pins = builtin_pins(false);
    }
    let pinned_by = (!pins.is_empty())
        .then(|| {
            registry
                .all()
                .iter()
                .find(|p| p.builtin && p.pins.iter().any(|pin| pins.contains(&pin)))
        })
        .flatten();
    if pins.is_empty()
        && let Some(p) = provider
    {
        pins = p
            .pins
            .iter()
            .filter(|pin| pin.endpoint.host == verdict.endpoint.host && pin.endpoint.port == port)
            .collect();
    }
    if let Some(p) = pinned_by.or(provider) {
        let matched = pins
            .iter()
            .find(|pin| pin.fingerprint == presented.fingerprint);
        match matched {
            Some(pin) if pin.confirmed => {
                verdict.decision = match matching.into_iter().next() {
                    Some(line) => Decision::Known { line },
                    None => Decision::Pinned {
                        provider: p.id.clone(),
                    },
                };
                return verdict;
            }
            Some(_) => verdict.unconfirmed_pin = true,
            None if !pins.is_empty() && pins.iter().all(|pin| !pin.confirmed) => {
                verdict.matches_no_unconfirmed_pin = true;
            }
            None if pins.iter().any(|pin| pin.confirmed) => {
                verdict.decision = Decision::PinMismatch {
                    provider: p.id.clone(),
                    expected: pins
                        .iter()
                        .filter(|pin| pin.confirmed)
                        .map(|pin| pin.fingerprint.clone())
                        .collect(),
                };
                return verdict;
            }
            None => {}
        }
    }

    verdict.decision = match matching.into_iter().next() {
        Some(line) => Decision::Known { line },
        None if !verdict.other_lines.is_empty() => Decision::Changed {
            expected: verdict.other_lines.clone(),
        },
        None => Decision::Unknown,
    };
    verdict
}

/// Where a user can check the presented key: the provider's fingerprint page, or the server's
/// administrator.
pub fn where_to_check(v: &Verdict, registry: &Registry) -> String {
    let page = v
        .provider
        .as_deref()
        .and_then(|id| registry.find(id))
        .and_then(|p| p.fingerprints_page.clone());
    match page {
        Some(url) => format!("compare with the fingerprints the provider publishes: {url}"),
        None => format!(
            "ask the administrator of {} for the server's fingerprint (`ssh-keygen -lf` of its host key)",
            v.endpoint
        ),
    }
}

/// The error for a refused key (changed, revoked, pin mismatch), or `None` if not refused.
/// Worded like OpenSSH's "REMOTE HOST IDENTIFICATION HAS CHANGED": what was expected, what was
/// presented, where the old entry is, and what to do.
pub fn refusal(v: &Verdict, registry: &Registry) -> Option<Error> {
    let who = &v.endpoint;
    let target = v.endpoint.known_hosts_name();
    let check = where_to_check(v, registry);
    let e = match &v.decision {
        Decision::Changed { expected } => {
            let mut msg = format!(
                "the host key of {who} has CHANGED, so keyclone refuses to connect: someone may be intercepting the connection (a man-in-the-middle attack), or the server's key was replaced\n  presented: {}",
                v.presented.show()
            );
            for line in expected {
                msg.push_str(&format!("\n  expected:  {}", line.show()));
                if let Some(r) = &line.revoked {
                    msg.push_str(&format!("\n             that key is revoked: {r}"));
                }
            }
            let mut e = Error::new(ErrorKind::HostKey, msg).hint(check);
            if expected.iter().all(|l| l.revoked.is_some()) {
                e = e.hint(format!(
                    "the old key was retired by the provider: remove it with `keyclone trust {target} --replace` (like `ssh-keygen -R {target}`)"
                ));
            } else {
                e = e.hint(format!(
                    "only if the new key is genuine: `keyclone trust {target} --replace --fingerprint {}` removes the old line and trusts the new key",
                    v.presented.fingerprint
                ));
            }
            e
        }
        Decision::Revoked { reason, line } => {
            let mut msg = format!(
                "{who} presented a REVOKED host key ({}), so keyclone refuses to connect: {reason}",
                v.presented.show()
            );
            if let Some(l) = line {
                msg.push_str(&format!(
                    "\n  revoked by: `{}` line {}",
                    l.path.display(),
                    l.line
                ));
            }
            Error::new(ErrorKind::HostKey, msg)
                .hint("a server presenting a revoked key is being impersonated, or is badly out of date: do not connect")
                .hint(check)
        }
        Decision::PinMismatch { provider, expected } => {
            let name = registry
                .find(provider)
                .map_or(provider.as_str(), |p| p.name.as_str());
            let mut msg = format!(
                "{who} presented a host key that {name} does not publish, so keyclone refuses to connect: someone may be intercepting the connection\n  presented: {}",
                v.presented.show()
            );
            for fp in expected {
                msg.push_str(&format!("\n  published: {fp}"));
            }
            Error::new(ErrorKind::HostKey, msg)
                .hint(check)
                .hint(format!("if {name} has announced new host keys, a newer keyclone knows them; until then, do not connect"))
        }
        _ => return None,
    };
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::key::{KeyType, generate};
    use std::path::Path;

    const GITHUB_ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const GITHUB_OLD_RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEAq2A7hRGmdnm9tUDbO9IDSwBK6TbQa+PXYPCPy6rbTrTtw7PHkccKrpp0yVhp5HdEIcKr6pLlVDBfOLX9QUsyCOV0wzfjIJNlGEYsdlLJizHhbn2mUjvSAHQqZETYP81eFzLQNnPHt4EVVUh7VfDESU84KezmD5QlWpXLmvU31/yMf+Se8xhHTvKSCZIFImWwoG6mbUoWf9nzpIoaSjB+weqqUUmpaaasXVal72J+UX2B+2RPW3RcT0eOzQgqlJL3RKrTJvdsjE3JEAvGq3lGHSZXy28G3skua2SmVi/w4yCE6gbODqnTWlg7+wC604ydGXA8VJiS5ap43JXiUFFAaQ==";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).unwrap()
    }

    fn random_key() -> PublicKey {
        generate(KeyType::Ed25519, "").unwrap().public_key().clone()
    }

    fn files(text: &str) -> Vec<KnownHosts> {
        vec![KnownHosts::parse(
            Path::new("/h/.ssh/known_hosts"),
            text.as_bytes(),
        )]
    }

    #[test]
    fn unknown_known_changed() {
        let reg = Registry::builtin();
        let k = random_key();
        let other = random_key();
        let line = |kk: &PublicKey| format!("[git.example]:2222 {}\n", kk.to_openssh().unwrap());
        assert_eq!(
            decide(&Endpoint::new("git.example", 2222), &k, &files(""), &reg).decision,
            Decision::Unknown
        );
        let v = decide(
            &Endpoint::new("git.example", 2222),
            &k,
            &files(&format!("# c\n{}", line(&k))),
            &reg,
        );
        assert!(matches!(v.decision, Decision::Known { ref line } if line.line == 2));
        let v = decide(
            &Endpoint::new("git.example", 2222),
            &k,
            &files(&line(&other)),
            &reg,
        );
        assert!(matches!(v.decision, Decision::Changed { ref expected } if expected.len() == 1));
        assert!(refusal(&v, &reg).unwrap().message().contains("CHANGED"));
        // A bare host entry does not speak for another port.
        let bare = format!("git.example {}\n", other.to_openssh().unwrap());
        assert_eq!(
            decide(&Endpoint::new("git.example", 2222), &k, &files(&bare), &reg).decision,
            Decision::Unknown
        );
    }

    #[test]
    fn revoked_line_wins_over_a_trusting_line() {
        let reg = Registry::builtin();
        let k = random_key();
        let text = format!("h {0}\n@revoked h {0}\n", k.to_openssh().unwrap());
        let v = decide(&Endpoint::new("h", 22), &k, &files(&text), &reg);
        assert!(matches!(v.decision, Decision::Revoked { line: Some(ref l), .. } if l.line == 2));
        assert!(refusal(&v, &reg).unwrap().message().contains("REVOKED"));
    }

    #[test]
    fn cert_authority_line_is_not_a_host_key() {
        let reg = Registry::builtin();
        let k = random_key();
        let text = format!("@cert-authority h {}\n", k.to_openssh().unwrap());
        assert_eq!(
            decide(&Endpoint::new("h", 22), &k, &files(&text), &reg).decision,
            Decision::Unknown
        );
    }

    #[test]
    fn pinned_provider_key_is_trusted_and_another_is_a_mismatch() {
        let reg = Registry::builtin();
        let v = decide(
            &Endpoint::new("github.com", 22),
            &key(GITHUB_ED),
            &files(""),
            &reg,
        );
        assert_eq!(
            v.decision,
            Decision::Pinned {
                provider: "github".into()
            }
        );
        let v = decide(
            &Endpoint::new("github.com", 22),
            &random_key(),
            &files(""),
            &reg,
        );
        assert!(
            matches!(v.decision, Decision::PinMismatch { ref expected, .. } if expected.len() == 3)
        );
        // Even a known_hosts line cannot make an unpublished key trusted for a pinned host.
        let k = random_key();
        let v = decide(
            &Endpoint::new("github.com", 22),
            &k,
            &files(&format!("github.com {}\n", k.to_openssh().unwrap())),
            &reg,
        );
        assert!(matches!(v.decision, Decision::PinMismatch { .. }));
    }

    #[test]
    fn github_2023_rsa_key_is_revoked_with_the_story() {
        let reg = Registry::builtin();
        let v = decide(
            &Endpoint::new("github.com", 22),
            &key(GITHUB_OLD_RSA),
            &files(""),
            &reg,
        );
        let Decision::Revoked { ref reason, .. } = v.decision else {
            panic!("{:?}", v.decision)
        };
        assert!(
            reason.contains("2023-03-24") && reason.contains("ssh-keygen -R github.com"),
            "{reason}"
        );
        // The stale line in known_hosts is reported while the new key is trusted by its pin.
        let text = format!("github.com {GITHUB_OLD_RSA}\n");
        let v = decide(
            &Endpoint::new("github.com", 22),
            &key(GITHUB_ED),
            &files(&text),
            &reg,
        );
        assert_eq!(
            v.decision,
            Decision::Pinned {
                provider: "github".into()
            }
        );
        assert!(
            v.other_lines[0]
                .revoked
                .as_deref()
                .unwrap()
                .contains("GitHub replaced")
        );
    }

    #[test]
    fn unconfirmed_pin_is_flagged_but_not_trusted() {
        let reg = Registry::builtin();
        let gitlab_ed = reg.get("gitlab").unwrap().pins[0].key.clone().unwrap();
        let v = decide(
            &Endpoint::new("altssh.gitlab.com", 443),
            &key(&gitlab_ed),
            &files(""),
            &reg,
        );
        assert_eq!(v.decision, Decision::Unknown);
        assert!(v.unconfirmed_pin);
    }

    #[test]
    fn a_key_matching_none_of_the_unconfirmed_pins_says_so() {
        let reg = Registry::builtin();
        let v = decide(
            &Endpoint::new("altssh.gitlab.com", 443),
            &random_key(),
            &files(""),
            &reg,
        );
        assert_eq!(v.decision, Decision::Unknown);
        assert!(!v.unconfirmed_pin);
        assert!(v.matches_no_unconfirmed_pin);
        // A host with no pins at all is merely unknown.
        let v = decide(
            &Endpoint::new("git.example.org", 22),
            &random_key(),
            &files(""),
            &reg,
        );
        assert!(!v.matches_no_unconfirmed_pin);
    }

    #[test]
    fn a_config_provider_claiming_a_pinned_host_does_not_unpin_it() {
        // Even if a registry were built around the config check (which refuses such an
        // entry), the decision takes the pins of every provider for the endpoint.
        let mut reg = Registry::builtin();
        let cfg = crate::config::parse(
            "[provider.corp]\nkind = \"plain\"\nhost = \"github.com\"\nfingerprints = [\"SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU\"]\n",
        )
        .unwrap();
        assert!(
            Registry::with_config(&cfg).is_err(),
            "the config check refuses it"
        );
        // Built around the check: the config's own pin for github.com counts for nothing.
        let mut corp = reg.get("github").unwrap().clone();
        corp.id = "corp".into();
        corp.builtin = false;
        let fake = random_key();
        corp.pins = vec![crate::providers::Pin {
            endpoint: corp.pins[0].endpoint.clone(),
            key: None,
            fingerprint: fingerprint(&fake),
            confirmed: true,
        }];
        reg = Registry::from_providers(reg.all().iter().cloned().chain([corp]).collect());
        let v = decide(&Endpoint::new("github.com", 22), &fake, &files(""), &reg);
        assert!(
            matches!(v.decision, Decision::PinMismatch { .. }),
            "{:?}",
            v.decision
        );
    }

    #[test]
    fn a_pinned_host_on_another_port_is_still_pinned() {
        let reg = Registry::builtin();
        let v = decide(
            &Endpoint::new("ssh.github.com", 22),
            &random_key(),
            &files(""),
            &reg,
        );
        assert!(
            matches!(v.decision, Decision::PinMismatch { .. }),
            "{:?}",
            v.decision
        );
        let gh = reg.get("github").unwrap().pins[0].key.clone().unwrap();
        let v = decide(
            &Endpoint::new("ssh.github.com", 22),
            &key(&gh),
            &files(""),
            &reg,
        );
        assert!(
            matches!(v.decision, Decision::Pinned { .. }),
            "{:?}",
            v.decision
        );
    }

    #[test]
    fn self_hosted_fingerprint_pins_from_the_config() {
        let k = random_key();
        let cfg = crate::config::parse(&format!(
            "[provider.corp]\nkind = \"plain\"\nhost = \"git.corp\"\nport = 2222\nfingerprints = [\"{}\"]\n",
            fingerprint(&k)
        ))
        .unwrap();
        let reg = Registry::with_config(&cfg).unwrap();
        assert_eq!(
            decide(&Endpoint::new("git.corp", 2222), &k, &files(""), &reg).decision,
            Decision::Pinned {
                provider: "corp".into()
            }
        );
        assert!(matches!(
            decide(
                &Endpoint::new("git.corp", 2222),
                &random_key(),
                &files(""),
                &reg
            )
            .decision,
            Decision::PinMismatch { .. }
        ));
    }

    #[test]
    fn only_known_and_pinned_keys_are_trusted_and_each_decision_has_its_name() {
        let line = KnownLine {
            path: PathBuf::from("/h/.ssh/known_hosts"),
            line: 1,
            key: KeyInfo::of(&key(GITHUB_ED)),
            revoked: None,
        };
        let cases = [
            (Decision::Known { line: line.clone() }, true, "known"),
            (
                Decision::Pinned {
                    provider: "github".into(),
                },
                true,
                "pinned",
            ),
            (Decision::Unknown, false, "unknown"),
            (
                Decision::Changed {
                    expected: vec![line.clone()],
                },
                false,
                "changed",
            ),
            (
                Decision::Revoked {
                    reason: "r".into(),
                    line: None,
                },
                false,
                "revoked",
            ),
            (
                Decision::PinMismatch {
                    provider: "github".into(),
                    expected: vec![],
                },
                false,
                "pin-mismatch",
            ),
        ];
        for (d, trusted, name) in cases {
            assert_eq!(d.trusted(), trusted, "{d:?}");
            assert_eq!(d.name(), name, "{d:?}");
        }
    }

    #[test]
    fn a_revoked_line_for_another_key_does_not_revoke_this_one() {
        let reg = Registry::builtin();
        let k = random_key();
        let other = random_key();
        let text = format!(
            "@revoked h {}\nh {}\n",
            other.to_openssh().unwrap(),
            k.to_openssh().unwrap()
        );
        let v = decide(&Endpoint::new("h", 22), &k, &files(&text), &reg);
        assert!(
            matches!(v.decision, Decision::Known { ref line } if line.line == 2),
            "{:?}",
            v.decision
        );
    }

    #[test]
    fn a_pinned_key_is_pinned_by_its_own_provider() {
        let reg = Registry::builtin();
        let gitlab_ed = reg.get("gitlab").unwrap().pins[0].key.clone().unwrap();
        let v = decide(
            &Endpoint::new("gitlab.com", 22),
            &key(&gitlab_ed),
            &files(""),
            &reg,
        );
        assert_eq!(
            v.decision,
            Decision::Pinned {
                provider: "gitlab".into()
            }
        );
    }

    #[test]
    fn a_port_with_pins_of_its_own_is_decided_by_them_alone() {
        // A built-in provider pinning one host on two ports: the key published for 2222 is no
        // key for 22, and 22's keys are none for 2222.
        let mut reg = Registry::builtin();
        let mut gh = reg.get("github").unwrap().clone();
        let other_port = random_key();
        gh.id = "github-2222".into();
        gh.pins = vec![crate::providers::Pin {
            endpoint: crate::providers::Endpoint {
                host: "github.com".into(),
                port: 2222,
            },
            key: None,
            fingerprint: fingerprint(&other_port),
            confirmed: true,
        }];
        reg = Registry::from_providers(reg.all().iter().cloned().chain([gh]).collect());
        let v = decide(
            &Endpoint::new("github.com", 22),
            &other_port,
            &files(""),
            &reg,
        );
        assert!(
            matches!(v.decision, Decision::PinMismatch { ref expected, .. } if expected.len() == 3),
            "{:?}",
            v.decision
        );
        let v = decide(
            &Endpoint::new("github.com", 2222),
            &key(GITHUB_ED),
            &files(""),
            &reg,
        );
        assert!(
            matches!(v.decision, Decision::PinMismatch { ref expected, .. } if expected.len() == 1),
            "{:?}",
            v.decision
        );
        let v = decide(
            &Endpoint::new("github.com", 2222),
            &other_port,
            &files(""),
            &reg,
        );
        assert!(v.decision.trusted(), "{:?}", v.decision);
    }

    #[test]
    fn config_fingerprints_speak_for_their_port_and_no_fingerprints_refuse_nothing() {
        let k = random_key();
        let cfg = crate::config::parse(&format!(
            "[provider.corp]\nkind = \"gitea\"\nhost = \"git.corp\"\nport = 2222\nfingerprints = [\"{}\"]\n\n[provider.open]\nkind = \"gitea\"\nhost = \"git.open\"\n",
            fingerprint(&k)
        ))
        .unwrap();
        let reg = Registry::with_config(&cfg).unwrap();
        // The web host names the provider on any port, but its pins are for port 2222.
        let v = decide(
            &Endpoint::new("git.corp", 22),
            &random_key(),
            &files(""),
            &reg,
        );
        assert_eq!(v.provider.as_deref(), Some("corp"));
        assert_eq!(v.decision, Decision::Unknown);
        // A provider without fingerprints leaves the decision to known_hosts.
        let v = decide(
            &Endpoint::new("git.open", 22),
            &random_key(),
            &files(""),
            &reg,
        );
        assert_eq!(v.provider.as_deref(), Some("open"));
        assert_eq!(v.decision, Decision::Unknown);
        assert!(!v.matches_no_unconfirmed_pin);
    }

    #[test]
    fn every_refused_key_is_an_error_that_shows_both_keys_and_where_to_check() {
        let reg = Registry::builtin();
        let presented = random_key();
        let fp = fingerprint(&presented);

        let v = decide(
            &Endpoint::new("github.com", 22),
            &presented,
            &files(""),
            &reg,
        );
        let e = refusal(&v, &reg).expect("a pin mismatch is refused");
        assert_eq!(e.kind(), ErrorKind::HostKey);
        assert!(
            e.message().contains(&format!("ED25519 {fp}")),
            "{}",
            e.message()
        );
        let published = fingerprint(&key(GITHUB_ED));
        assert!(e.message().contains(&published), "{}", e.message());
        let page = reg
            .get("github")
            .unwrap()
            .fingerprints_page
            .clone()
            .unwrap();
        assert!(
            e.hints().iter().any(|h| h.contains(&page)),
            "{:?}",
            e.hints()
        );

        let old = random_key();
        let text = format!("# c\n[git.example]:2222 {}\n", old.to_openssh().unwrap());
        let v = decide(
            &Endpoint::new("git.example", 2222),
            &presented,
            &files(&text),
            &reg,
        );
        let e = refusal(&v, &reg).expect("a changed key is refused");
        assert_eq!(e.kind(), ErrorKind::HostKey);
        assert!(e.message().contains(&fp), "{}", e.message());
        assert!(
            e.message().contains(&format!(
                "ED25519 {} (`/h/.ssh/known_hosts` line 2)",
                fingerprint(&old)
            )),
            "{}",
            e.message()
        );
        assert!(
            e.hints().iter().any(|h| h.contains("git.example:2222")),
            "{:?}",
            e.hints()
        );
        assert!(
            e.hints().iter().any(|h| h.contains(&format!(
                "keyclone trust [git.example]:2222 --replace --fingerprint {fp}"
            ))),
            "{:?}",
            e.hints()
        );

        for d in [
            Decision::Unknown,
            Decision::Pinned {
                provider: "github".into(),
            },
        ] {
            let v = Verdict {
                decision: d,
                ..v.clone()
            };
            assert!(refusal(&v, &reg).is_none());
        }
    }
}
