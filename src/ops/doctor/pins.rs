//! doctor's look at the refreshed host keys (`keyclone trust --refresh`): whether a refresh
//! newer than the pins built into keyclone found other keys (a rotation keyclone's release does
//! not know yet), and for a config provider whether its `fingerprints` still match what it
//! publishes. [`gather`] reads the store; [`checks`] is pure.

use super::{Check, Status};
use crate::context::Ctx;
use crate::providers::Registry;
use crate::providers::published::{self, Diff, EMBEDDED_PINS_DATE};

/// One provider's last refresh, set against the pins it would replace.
#[derive(Debug, Clone)]
pub struct RefreshFact {
    pub id: String,
    pub name: String,
    pub builtin: bool,
    pub source: String,
    pub fetched_at: String,
    /// Whether `trust` takes it (same source, not older than the pins built in).
    pub applies: bool,
    /// The refreshed keys against the pins built in (or the config's fingerprints).
    pub diff: Diff,
}

/// The store's refreshes, each against the pins without any refresh; a store that cannot be
/// trusted is what is wrong with it and the fix.
pub fn gather(ctx: &Ctx) -> std::result::Result<Vec<RefreshFact>, (String, String)> {
    let Some(path) = published::store_path(&ctx.env) else {
        return Ok(Vec::new());
    };
    let store =
        published::load(&path).map_err(|e| (e.message().to_owned(), e.hints().join("; ")))?;
    let Ok(embedded) = Registry::with_config(&ctx.config) else {
        return Ok(Vec::new());
    };
    Ok(store
        .refreshes
        .iter()
        .filter_map(|r| {
            let p = embedded.find(&r.provider)?;
            let src = embedded.published(&p.id)?;
            Some(RefreshFact {
                id: p.id.clone(),
                name: p.name.clone(),
                builtin: p.builtin,
                source: r.source.clone(),
                fetched_at: r.fetched_at.clone(),
                applies: published::applies(p, src, r),
                diff: published::diff(&p.pins, &src.endpoints, &r.keys),
            })
        })
        .collect())
}

fn listed(d: &Diff) -> String {
    let mut v = Vec::new();
    if !d.added.is_empty() {
        let a: Vec<&str> = d.added.iter().map(|(f, _)| f.as_str()).collect();
        v.push(format!("added {}", a.join(", ")));
    }
    if !d.removed.is_empty() {
        v.push(format!("removed {}", d.removed.join(", ")));
    }
    v.join("; ")
}

/// The checks over the refreshes (none without a refresh); a store that cannot be trusted
/// fails: `trust`, `test`, `clone` and `init` refuse to decide on host keys until it is fixed.
pub fn checks(facts: &std::result::Result<Vec<RefreshFact>, (String, String)>) -> Vec<Check> {
    let facts = match facts {
        Ok(f) => f,
        Err((what, fix)) => {
            return vec![Check {
                area: "host keys",
                status: Status::Fail,
                what: format!(
                    "{what}: keyclone trusts no host until it is fixed (doctor's known_hosts checks use the built-in pins)"
                ),
                fix: Some(fix.clone()),
            }];
        }
    };
    let mut out = Vec::new();
    let day = |at: &str| at.get(..10).unwrap_or(at).to_owned();
    for f in facts {
        let (status, what, fix) = match (f.applies, f.diff.is_empty(), f.builtin) {
            (false, _, true) => (
                Status::Ok,
                format!(
                    "{}'s refresh of {} is older than the pins built into keyclone ({EMBEDDED_PINS_DATE}): the pins decide",
                    f.name,
                    day(&f.fetched_at)
                ),
                None,
            ),
            (false, _, false) => (
                Status::Ok,
                format!(
                    "{}'s refresh came from {}, not its current published-url: not used",
                    f.name, f.source
                ),
                None,
            ),
            (true, true, _) => (
                Status::Ok,
                format!(
                    "{}'s published host keys (refreshed {}) are the keys keyclone pins",
                    f.name,
                    day(&f.fetched_at)
                ),
                None,
            ),
            (true, false, true) => (
                Status::Warn,
                format!(
                    "the host keys built into keyclone for {} ({EMBEDDED_PINS_DATE}) are older than the refresh of {} from {}, which differs ({}): keyclone trusts the refreshed keys",
                    f.name,
                    day(&f.fetched_at),
                    f.source,
                    listed(&f.diff)
                ),
                Some(format!(
                    "update keyclone (a newer release carries the new pins); until then keep them current with `keyclone trust --refresh --provider {}`",
                    f.id
                )),
            ),
            (true, false, false) => (
                Status::Warn,
                format!(
                    "the config's fingerprints for {} differ from the keys it published (refreshed {}: {}): keyclone trusts the published keys",
                    f.name,
                    day(&f.fetched_at),
                    listed(&f.diff)
                ),
                Some(format!(
                    "update `fingerprints` of [provider.{}] in keyclone's config with your administrator's list",
                    f.id
                )),
            ),
        };
        out.push(Check {
            area: "host keys",
            status,
            what,
            fix,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(applies: bool, builtin: bool, changed: bool) -> RefreshFact {
        RefreshFact {
            id: "github".into(),
            name: "GitHub".into(),
            builtin,
            source: "https://api.github.com/meta".into(),
            fetched_at: "2026-12-01T10:00:00Z".into(),
            applies,
            diff: Diff {
                added: if changed {
                    vec![("SHA256:new".into(), "ssh-ed25519 AAAA".into())]
                } else {
                    vec![]
                },
                removed: if changed {
                    vec!["SHA256:old".into()]
                } else {
                    vec![]
                },
            },
        }
    }

    #[test]
    fn a_newer_refresh_that_differs_from_the_built_in_pins_is_a_warning_with_the_fix() {
        let c = checks(&Ok(vec![fact(true, true, true)]));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].status, Status::Warn);
        assert!(
            c[0].what.contains("older than the refresh of 2026-12-01"),
            "{}",
            c[0].what
        );
        assert!(c[0].what.contains("added SHA256:new; removed SHA256:old"));
        assert!(c[0].fix.as_deref().unwrap().contains("update keyclone"));
        let c = checks(&Ok(vec![fact(true, false, true)]));
        assert!(c[0].fix.as_deref().unwrap().contains("[provider.github]"));
    }

    #[test]
    fn an_equal_an_old_or_no_refresh_is_fine() {
        assert!(checks(&Ok(vec![])).is_empty());
        let broken = checks(&Err((
            "the host-key store `s` is writable by its group".into(),
            "remove it".into(),
        )));
        assert_eq!(broken[0].status, Status::Fail);
        assert!(broken[0].what.contains("trusts no host"));
        for f in [
            fact(true, true, false),
            fact(false, true, true),
            fact(false, false, true),
        ] {
            let c = checks(&Ok(vec![f]));
            assert_eq!(c[0].status, Status::Ok, "{}", c[0].what);
        }
    }
}
