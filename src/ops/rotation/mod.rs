//! Rotation's state machine: the steps of `keyclone rotate` in order, the state file beside the
//! key that records the last one finished, and where the new pair is staged. `rotate` runs the
//! steps after the recorded one; a killed run continues from there. What each step does is in
//! [`steps`]; which key and where it is tested, [`locate`]; the archive of old keys,
//! [`archive`]; `--passphrase-only`, [`reencrypt`].

pub mod archive;
pub mod locate;
pub mod reencrypt;
pub mod steps;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::files;
use crate::secrets::NewPassphraseArgs;

/// What the steps take from `keyclone rotate`'s flags.
#[derive(Debug, Clone)]
pub(crate) struct RotateOptions<'a> {
    /// The new key's passphrase (its `--passphrase-file` also unlocks the new key on a re-run).
    pub passphrase: &'a NewPassphraseArgs,
    /// Seconds to wait for the server to answer, and without data before giving up.
    pub timeout: Duration,
    pub stall_timeout: Duration,
    /// Where a provider API token may come from, to add the new key through the API.
    pub tokens: crate::ops::token::TokenOptions,
}

/// For tests: a debug build dies with SIGKILL right after `step` when `KEYCLONE_TEST_KILL_AT`
/// names it, to prove that a re-run completes. Release builds ignore the variable.
pub(crate) fn checkpoint(step: &str) {
    files::kill_point(step);
}

/// The steps of a rotation, in order; the state file holds the last one finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The new pair is at the staging path.
    Generated,
    /// The new key authenticated.
    Verified,
    /// The old pair is linked into the archive.
    Archived,
    /// The new pair is at the key's path.
    Switched,
    /// The keyring and ssh-agent hold the new key.
    References,
}

impl Step {
    /// The step after this one; `None` after the last. A re-run starts from the step after the
    /// one the state file records.
    pub fn next(self) -> Option<Step> {
        match self {
            Step::Generated => Some(Step::Verified),
            Step::Verified => Some(Step::Archived),
            Step::Archived => Some(Step::Switched),
            Step::Switched => Some(Step::References),
            Step::References => None,
        }
    }

    /// The steps a run does after this one was recorded, in order (none after the last).
    pub fn remaining(self) -> Vec<Step> {
        std::iter::successors(self.next(), |s| s.next()).collect()
    }

    /// As the state file and the messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Step::Generated => "generated",
            Step::Verified => "verified",
            Step::Archived => "archived",
            Step::Switched => "switched",
            Step::References => "references",
        }
    }
}

/// What the state file records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) version: u32,
    pub(crate) key: PathBuf,
    pub(crate) staging: PathBuf,
    pub(crate) old_fingerprint: String,
    /// The old public key (to remove it from ssh-agent, and to tell the user which one to delete
    /// at the provider).
    pub(crate) old_public: String,
    pub(crate) new_fingerprint: String,
    pub(crate) archive: Option<PathBuf>,
    pub(crate) step: Step,
    pub(crate) started: String,
}

pub(crate) fn state_path(key: &Path) -> PathBuf {
    let name = key
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    key.with_file_name(format!(".keyclone-rotate-{name}.json"))
}

pub(crate) fn staging_path(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.rotating", key.display()))
}

pub(crate) fn read_state(key: &Path) -> Result<Option<State>> {
    let p = state_path(key);
    match files::read_bounded(&p, files::CONFIG_LIMIT, "rotation state") {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            Error::new(ErrorKind::Config, format!("the rotation state `{}` is damaged", p.display()))
                .with_source(e)
                .hint(format!("look at `{}` and `{}.rotating*`; delete the state file to start over (the key at `{}` is untouched until the switch)", p.display(), key.display(), key.display()))
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn write_state(s: &State) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(s)
        .map_err(|e| Error::internal("could not encode the rotation state").with_source(e))?;
    files::replace(&state_path(&s.key), &bytes, 0o600)
}

#[cfg(test)]
impl State {
    /// A rotation of `key` at the `Verified` step, for tests.
    pub(crate) fn sample(key: &Path) -> State {
        State {
            version: 1,
            key: key.to_path_buf(),
            staging: staging_path(key),
            old_fingerprint: "SHA256:old".into(),
            old_public: "ssh-ed25519 AAAA old".into(),
            new_fingerprint: "SHA256:new".into(),
            archive: None,
            step: Step::Verified,
            started: "20261201T000000Z".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Step; 5] = [
        Step::Generated,
        Step::Verified,
        Step::Archived,
        Step::Switched,
        Step::References,
    ];

    #[test]
    fn the_steps_follow_each_other_in_order_and_end() {
        let mut seen = vec![Step::Generated];
        while let Some(n) = seen.last().and_then(|s| s.next()) {
            assert!(n > *seen.last().unwrap(), "{n:?}");
            seen.push(n);
        }
        assert_eq!(seen, ALL);
        assert_eq!(Step::References.next(), None);
    }

    #[test]
    fn every_step_has_its_own_next() {
        assert_eq!(Step::Generated.next(), Some(Step::Verified));
        assert_eq!(Step::Verified.next(), Some(Step::Archived));
        assert_eq!(Step::Archived.next(), Some(Step::Switched));
        assert_eq!(Step::Switched.next(), Some(Step::References));
        assert_eq!(Step::References.next(), None);
    }

    #[test]
    fn a_rerun_does_exactly_the_steps_after_the_recorded_one() {
        for (i, recorded) in ALL.iter().enumerate() {
            assert_eq!(recorded.remaining(), ALL[i + 1..].to_vec(), "{recorded:?}");
        }
        assert!(Step::References.remaining().is_empty());
    }

    #[test]
    fn a_step_is_named_as_the_state_file_writes_it() {
        for s in ALL {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
            let back: Step = serde_json::from_str(&format!("\"{}\"", s.name())).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn the_state_and_staging_files_sit_beside_the_key() {
        let key = Path::new("/h/.ssh/id_ed25519");
        assert_eq!(
            state_path(key),
            Path::new("/h/.ssh/.keyclone-rotate-id_ed25519.json")
        );
        assert_eq!(staging_path(key), Path::new("/h/.ssh/id_ed25519.rotating"));
    }

    #[test]
    fn a_state_file_round_trips_and_a_damaged_one_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        assert!(read_state(&key).unwrap().is_none());
        let s = State::sample(&key);
        write_state(&s).unwrap();
        let back = read_state(&key).unwrap().unwrap();
        assert_eq!(back.step, Step::Verified);
        assert_eq!(back.new_fingerprint, "SHA256:new");
        std::fs::write(state_path(&key), "{").unwrap();
        assert_eq!(read_state(&key).unwrap_err().kind(), ErrorKind::Config);
    }
}
