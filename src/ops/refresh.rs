//! `keyclone trust --refresh`: fetch the host keys the providers publish, over https verified
//! against the system roots (through [`crate::http::Client`]: same-origin redirects only,
//! bounded answers), compare them with the pins built into keyclone, the previous refresh and
//! known_hosts, and keep them in the store (`providers::published`), written atomically. The
//! next `trust` of those hosts then decides by the refreshed keys.

use std::path::PathBuf;

use crate::context::Ctx;
use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{Client, Request, Timeouts, origin_of};
use crate::ops::known_hosts_files::read_known_hosts;
use crate::providers::published::{self, Diff, Published, Refresh, Store};
use crate::providers::{Provider, Registry};
use crate::ssh::known_hosts::Marker;

/// What one provider's refresh found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refreshed {
    pub provider: String,
    pub name: String,
    pub source: String,
    pub fetched_at: String,
    /// The endpoints the keys are for.
    pub endpoints: Vec<String>,
    pub keys: Vec<String>,
    /// Against the pins built into keyclone (or the config's fingerprints).
    pub against_pins: Diff,
    /// Against the previous refresh, when there was one.
    pub against_previous: Option<Diff>,
    /// What the answer held that was not taken.
    pub skipped: Vec<String>,
    /// known_hosts lines (`FILE:LINE fingerprint`) holding a key no longer published.
    pub stale_known_hosts: Vec<String>,
    /// The provider's endpoints no published list covers (they keep needing a confirmation).
    pub uncovered: Vec<String>,
}

/// The providers to refresh: `only`, else every provider that publishes its keys.
pub fn sources(reg: &Registry, only: Option<&str>) -> Result<Vec<(Provider, Published)>> {
    if let Some(name) = only {
        let p = reg.get(name)?;
        let src = reg.published(&p.id).ok_or_else(|| {
            Error::usage(format!(
                "{} publishes no host keys keyclone can fetch",
                p.name
            ))
            .hint(format!(
                "check its fingerprints by hand: `keyclone trust HOST --show` and {}",
                p.fingerprints_page
                    .as_deref()
                    .unwrap_or("the server's administrator")
            ))
        })?;
        return Ok(vec![(p.clone(), src.clone())]);
    }
    Ok(reg
        .published_all()
        .map(|(p, s)| (p.clone(), s.clone()))
        .collect())
}

fn store_path(ctx: &Ctx) -> Result<PathBuf> {
    published::store_path(&ctx.env).ok_or_else(|| {
        Error::usage("`HOME` is not set, so keyclone has nowhere to keep refreshed host keys")
            .hint("set `HOME` (or `XDG_STATE_HOME`)")
    })
}

/// Fetches one provider's published keys: an error for anything but a 200 answer of the
/// expected kind (an HTML page, a 500, a redirect elsewhere, a certificate not trusted).
fn fetch(client: &Client, p: &Provider, src: &Published) -> Result<(Vec<String>, Vec<String>)> {
    let url = url::Url::parse(&src.url)
        .map_err(|e| Error::usage(format!("`{}` is not a URL: {e}", src.url)))?;
    let req = Request::get(url.clone())
        .header("Accept", "application/json, text/plain")
        .limit(published::ANSWER_LIMIT);
    let answer = client.send(&req).map_err(|e| {
        e.hint(format!(
            "nothing was changed: {}'s pins stay as they were",
            p.name
        ))
    })?;
    let fail = |what: String| {
        Error::new(
            ErrorKind::Network,
            format!("{} {what}", origin_of(&answer.url)),
        )
        .hint(format!(
            "nothing was changed: {}'s pins stay as they were; try again later",
            p.name
        ))
    };
    if answer.status != 200 {
        return Err(fail(format!(
            "answered {} for {}'s host keys",
            answer.status, p.name
        )));
    }
    let ctype = answer
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let expected = match src.format {
        crate::config::PublishedFormat::GithubMeta => answer.is_json(),
        crate::config::PublishedFormat::KnownHosts => {
            ctype.is_empty() || ctype.starts_with("text/plain")
        }
    };
    if !expected {
        return Err(fail(format!(
            "answered with {}, not {}'s list of host keys",
            if ctype.is_empty() {
                "no content type".to_owned()
            } else {
                ctype.clone()
            },
            p.name
        )));
    }
    let (keys, skipped) = published::parse(src.format, &answer.body, &src.endpoints)
        .map_err(|e| fail(e.message().to_owned()))?;
    let lines = keys
        .iter()
        .filter_map(|k| k.to_openssh().ok())
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    Ok((lines, skipped))
}

/// Refreshes each provider of `sources`, one result each; the store is written after each
/// success, so one provider's failure loses no other's refresh.
pub fn refresh(ctx: &mut Ctx, sources: &[(Provider, Published)]) -> Result<Vec<Result<Refreshed>>> {
    let path = store_path(ctx)?;
    // The pins without any refresh: what keyclone (or the config) was built with.
    let embedded = Registry::with_config(&ctx.config)?;
    let client = Client::new(Timeouts::default());
    let kh_path = ctx.ssh_dir.join("known_hosts");
    let mut out = Vec::new();
    for (p, src) in sources {
        let one = (|| -> Result<Refreshed> {
            let (keys, skipped) = fetch(&client, p, src)?;
            let mut store: Store = published::load(&path)?;
            let pins = embedded
                .get(&p.id)
                .map(|e| e.pins.clone())
                .unwrap_or_default();
            let against_pins = published::diff(&pins, &src.endpoints, &keys);
            let against_previous = store.get(&p.id).filter(|r| r.source == src.url).map(|r| {
                let prev: Vec<crate::providers::Pin> = r
                    .keys
                    .iter()
                    .filter_map(|k| ssh_key::PublicKey::from_openssh(k).ok().map(|pk| (k, pk)))
                    .flat_map(|(k, pk)| {
                        src.endpoints.iter().map(move |ep| crate::providers::Pin {
                            endpoint: ep.clone(),
                            key: Some(k.clone()),
                            fingerprint: crate::ssh::key::fingerprint(&pk),
                            confirmed: true,
                        })
                    })
                    .collect();
                published::diff(&prev, &src.endpoints, &keys)
            });
            let fetched_at = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let record = Refresh {
                provider: p.id.clone(),
                source: src.url.clone(),
                fetched_at: fetched_at.clone(),
                endpoints: src
                    .endpoints
                    .iter()
                    .map(Endpoint::known_hosts_name)
                    .collect(),
                keys: keys.clone(),
            };
            store.put(record);
            let json = serde_json::to_vec_pretty(&store)
                .map_err(|e| Error::internal(format!("cannot encode the host-key store: {e}")))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
            }
            crate::files::replace(&path, &json, 0o600)?;

            let files = read_known_hosts(ctx, &kh_path)?;
            let fps: Vec<String> = keys
                .iter()
                .filter_map(|k| ssh_key::PublicKey::from_openssh(k).ok())
                .map(|k| crate::ssh::key::fingerprint(&k))
                .collect();
            let mut stale = Vec::new();
            for ep in &src.endpoints {
                for f in &files {
                    for e in f.lookup(ep).filter(|e| e.marker == Marker::None) {
                        let fp = crate::ssh::key::fingerprint(&e.key);
                        if !fps.contains(&fp) {
                            stale.push(format!("{}:{} {fp}", f.path.display(), e.line));
                        }
                    }
                }
            }
            let uncovered = p
                .ssh
                .iter()
                .chain(p.ssh_443.iter())
                .filter(|ep| !src.endpoints.contains(ep))
                .filter(|ep| !p.pins.iter().any(|pin| pin.endpoint == **ep))
                .map(Endpoint::known_hosts_name)
                .collect();
            Ok(Refreshed {
                provider: p.id.clone(),
                name: p.name.clone(),
                source: src.url.clone(),
                fetched_at,
                endpoints: src
                    .endpoints
                    .iter()
                    .map(Endpoint::known_hosts_name)
                    .collect(),
                keys,
                against_pins,
                against_previous,
                skipped,
                stale_known_hosts: stale,
                uncovered,
            })
        })();
        out.push(one);
    }
    Ok(out)
}

/// How a message of the report is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
}

fn fps(d: &[(String, String)]) -> String {
    d.iter()
        .map(|(f, _)| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Refreshed {
    /// The report's messages, in order.
    pub fn messages(&self, p: Option<&Provider>) -> Vec<(Level, String)> {
        let hosts = self.endpoints.join(", ");
        let mut m = vec![(
            Level::Info,
            format!(
                "Fetched {}'s host keys for {hosts} from {} (TLS verified against the system's roots): {} key(s).",
                self.name,
                self.source,
                self.keys.len()
            ),
        )];
        let d = &self.against_pins;
        if d.is_empty() {
            m.push((
                Level::Info,
                "They are the keys keyclone has pinned: nothing rotated.".into(),
            ));
        } else {
            let mut what = Vec::new();
            if !d.added.is_empty() {
                what.push(format!("added {} (trusted from now on)", fps(&d.added)));
            }
            if !d.removed.is_empty() {
                what.push(format!(
                    "removed {} (no longer trusted)",
                    d.removed.join(", ")
                ));
            }
            m.push((
                Level::Warn,
                format!(
                    "{} published keys other than those keyclone has pinned (a rotation): {}. `keyclone trust {}` now decides by the published keys; {}.",
                    self.name,
                    what.join("; "),
                    self.endpoints.first().map_or("HOST", String::as_str),
                    if p.is_none_or(|p| p.builtin) {
                        "update keyclone for pins that know it (`keyclone doctor` reminds you)".to_owned()
                    } else {
                        format!("update `fingerprints` of [provider.{}] in the config to match", self.provider)
                    }
                ),
            ));
        }
        if let Some(prev) = self.against_previous.as_ref().filter(|d| !d.is_empty()) {
            m.push((
                Level::Warn,
                format!(
                    "Since the last refresh: added [{}], removed [{}].",
                    fps(&prev.added),
                    prev.removed.join(", ")
                ),
            ));
        }
        for s in self.skipped.iter().take(5) {
            m.push((Level::Warn, format!("The answer also held {s}: not taken.")));
        }
        for line in &self.stale_known_hosts {
            m.push((
                Level::Warn,
                format!(
                    "known_hosts line {line} holds a key {} no longer publishes: remove it with `keyclone trust --offline --provider {} --replace`.",
                    self.name, self.provider
                ),
            ));
        }
        for ep in &self.uncovered {
            let page = p
                .and_then(|p| p.fingerprints_page.as_deref())
                .map(|u| format!(" (check it at {u})"))
                .unwrap_or_default();
            m.push((
                Level::Info,
                format!(
                    "{ep}: {} publishes no host keys for it yet, so `keyclone trust {ep}` keeps asking you to confirm its fingerprint{page}.",
                    self.name
                ),
            ));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_the_rotation_and_the_host_without_published_keys() {
        let reg = Registry::builtin();
        let bb = reg.get("bitbucket").unwrap();
        let r = Refreshed {
            provider: "bitbucket".into(),
            name: "Bitbucket".into(),
            source: "https://bitbucket.org/site/ssh".into(),
            fetched_at: "2026-12-01T00:00:00Z".into(),
            endpoints: vec!["bitbucket.org".into()],
            keys: vec!["ssh-ed25519 AAAA".into()],
            against_pins: Diff {
                added: vec![("SHA256:new".into(), "ssh-ed25519 AAAA".into())],
                removed: vec!["SHA256:old".into()],
            },
            against_previous: None,
            skipped: vec![],
            stale_known_hosts: vec!["/h/.ssh/known_hosts:3 SHA256:old".into()],
            uncovered: vec!["ssh.bitbucket.org".into()],
        };
        let m = r.messages(Some(bb));
        let text: Vec<&str> = m.iter().map(|(_, s)| s.as_str()).collect();
        assert!(text[1].contains("added SHA256:new") && text[1].contains("removed SHA256:old"));
        assert!(text[1].contains("update keyclone"));
        assert_eq!(m[1].0, Level::Warn);
        assert!(
            text.iter()
                .any(|t| t.contains("known_hosts:3") && t.contains("--replace"))
        );
        let last = text.last().unwrap();
        assert!(
            last.contains("ssh.bitbucket.org") && last.contains("keeps asking you to confirm"),
            "{last}"
        );
    }
}
