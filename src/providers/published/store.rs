//! The store of refreshed host keys: the last refresh of each provider, with its time and
//! source URL, in `$XDG_STATE_HOME/keyclone/host-keys.json` (written by `ops::refresh`).

use std::path::{Path, PathBuf};

use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};

/// The most bytes of the store file read.
const STORE_LIMIT: u64 = 256 * 1024;

/// One refresh, as kept in the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refresh {
    pub provider: String,
    /// The URL the keys came from (a refresh applies only while the source is the same).
    pub source: String,
    /// RFC 3339, UTC (`2026-12-01T10:00:00Z`).
    pub fetched_at: String,
    /// known_hosts names of the endpoints covered.
    pub endpoints: Vec<String>,
    /// `TYPE BASE64`, each.
    pub keys: Vec<String>,
}

/// The store: the last refresh of each provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Store {
    pub version: u32,
    pub refreshes: Vec<Refresh>,
}

impl Store {
    pub fn get(&self, provider: &str) -> Option<&Refresh> {
        self.refreshes.iter().find(|r| r.provider == provider)
    }

    /// Puts `r` in place of the provider's previous refresh.
    pub fn put(&mut self, r: Refresh) {
        self.version = 1;
        self.refreshes.retain(|o| o.provider != r.provider);
        self.refreshes.push(r);
    }
}

/// `$XDG_STATE_HOME/keyclone/host-keys.json`, else `~/.local/state/keyclone/host-keys.json`.
pub fn store_path(env: &Env) -> Option<PathBuf> {
    env.get_nonempty("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| env.home().map(|h| h.join(".local/state")))
        .map(|b| b.join("keyclone").join("host-keys.json"))
}

/// Reads the store (empty when there is none). A file others may write, or one that is not
/// the store, is an error: ignoring it could bring back a key a refresh removed.
pub fn load(path: &Path) -> Result<Store> {
    let Some((bytes, meta)) =
        crate::files::read_bounded_if_exists(path, STORE_LIMIT, "host-key store")?
    else {
        return Ok(Store::default());
    };
    let fix = format!(
        "remove `{}` and fetch the keys again: `keyclone trust --refresh`",
        path.display()
    );
    if let Some(problem) = crate::files::file_problem(&meta) {
        return Err(Error::new(
            ErrorKind::Config,
            format!("the host-key store `{}` {problem}", path.display()),
        )
        .hint(fix));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!(
                "the host-key store `{}` is not readable: {e}",
                path.display()
            ),
        )
        .hint(fix)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refresh(at: &str) -> Refresh {
        Refresh {
            provider: "github".into(),
            source: "https://api.github.com/meta".into(),
            fetched_at: at.into(),
            endpoints: vec!["github.com".into()],
            keys: vec![],
        }
    }

    #[test]
    fn the_store_keeps_one_refresh_per_provider() {
        let mut s = Store::default();
        s.put(refresh("a"));
        s.put(refresh("b"));
        assert_eq!(s.refreshes.len(), 1);
        assert_eq!(s.get("github").unwrap().fetched_at, "b");
        let env = Env::from_pairs([("HOME", "/h")]);
        assert_eq!(
            store_path(&env).unwrap(),
            PathBuf::from("/h/.local/state/keyclone/host-keys.json")
        );
    }
}
