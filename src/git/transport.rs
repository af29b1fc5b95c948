//! The connection to a remote through libgit2: the key (`Auth`), the host check during the
//! transfer (`HostCheck`: exactly the approved key for the approved host, the same decision
//! function for any other host), the callbacks that apply both, libgit2's network timeouts,
//! turning libgit2's failures into keyclone's errors, and listing a remote's refs
//! (`git ls-remote`). `clone` uses the same callbacks.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Instant;

use git2::{CertificateCheckStatus, Cred, CredentialType, ErrorClass, RemoteCallbacks};
use serde::Serialize;
use ssh_key::PublicKey;

use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::git::remote::RemoteUrl;
use crate::passphrase::Unlock;
use crate::providers::Registry;
use crate::ssh::known_hosts::KnownHosts;
use crate::ssh::trust::{self, Decision};

/// The key and how it is unlocked.
#[derive(Debug)]
pub struct Auth {
    /// The SSH user when the URL has none (`git`).
    pub default_user: String,
    pub key: PathBuf,
    /// The key's SHA256 fingerprint, for messages.
    pub fingerprint: String,
    pub unlock: Unlock,
}

impl Auth {
    /// The key as `keyclone test HOST`'s login check presents it.
    pub fn login_key(&self) -> crate::ssh::probe::LoginKey<'_> {
        use crate::ssh::probe::LoginKey;
        match &self.unlock {
            Unlock::Agent => LoginKey::Agent,
            Unlock::Plain => LoginKey::File {
                path: &self.key,
                passphrase: None,
            },
            Unlock::Passphrase(p) => LoginKey::File {
                path: &self.key,
                passphrase: Some(p.expose()),
            },
        }
    }
}

/// What decides about host keys during the transfer.
#[derive(Debug)]
pub struct HostCheck<'a> {
    /// The endpoint approved before the transfer, with the key that was approved.
    pub approved: (Endpoint, PublicKey),
    pub files: &'a [KnownHosts],
    pub registry: &'a Registry,
}

/// Progress reports during a clone (drawn by `ui::progress`).
pub trait CloneProgress {
    fn transfer(
        &self,
        received_objects: usize,
        total_objects: usize,
        indexed_deltas: usize,
        total_deltas: usize,
        received_bytes: usize,
    );
    fn checkout(&self, done: usize, total: usize);
    fn finish(&self);
}

/// Reports nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl CloneProgress for Silent {
    fn transfer(&self, _: usize, _: usize, _: usize, _: usize, _: usize) {}
    fn checkout(&self, _: usize, _: usize) {}
    fn finish(&self) {}
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) host_error: Option<Error>,
    pub(super) key_attempts: u32,
    pub(super) key_rejected: bool,
    pub(super) received_bytes: usize,
    pub(super) received_objects: usize,
    /// When all objects had arrived, and when all deltas were resolved.
    pub(super) received_at: Option<Instant>,
    pub(super) indexed_at: Option<Instant>,
}

/// Callbacks for one connection to `url`.
pub(super) fn callbacks<'a>(
    url: &'a RemoteUrl,
    auth: &'a Auth,
    check: &'a HostCheck<'a>,
    state: &'a RefCell<State>,
    progress: &'a dyn CloneProgress,
) -> RemoteCallbacks<'a> {
    let ep = url.endpoint();
    let mut cb = RemoteCallbacks::new();
    cb.credentials(move |_url, user_from_url, allowed| {
        let user = user_from_url
            .or(url.user.as_deref())
            .unwrap_or(&auth.default_user);
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(user);
        }
        if !allowed.contains(CredentialType::SSH_KEY) {
            return Err(git2::Error::from_str(
                "keyclone authenticates with SSH keys only",
            ));
        }
        let mut st = state.borrow_mut();
        st.key_attempts += 1;
        if st.key_attempts > 1 {
            // libgit2 asks again after the server refused the key: stop here.
            st.key_rejected = true;
            return Err(git2::Error::from_str("the server did not accept the key"));
        }
        match &auth.unlock {
            Unlock::Agent => Cred::ssh_key_from_agent(user),
            Unlock::Plain => Cred::ssh_key(user, None, &auth.key, None),
            Unlock::Passphrase(p) => Cred::ssh_key(user, None, &auth.key, Some(p.expose())),
        }
    });
    cb.certificate_check(move |cert, _host| {
        let refuse = |e: Error| {
            state.borrow_mut().host_error = Some(e);
            Err(git2::Error::from_str("keyclone refused the host key"))
        };
        let Some(blob) = cert.as_hostkey().and_then(|h| h.hostkey()) else {
            return refuse(Error::new(
                ErrorKind::HostKey,
                format!("{ep} did not present an SSH host key"),
            ));
        };
        let key = match PublicKey::from_bytes(blob) {
            Ok(k) => k,
            Err(e) => {
                return refuse(
                    Error::new(
                        ErrorKind::HostKey,
                        format!("{ep} presented a host key keyclone cannot read"),
                    )
                    .with_source(e),
                );
            }
        };
        let (approved, akey) = &check.approved;
        if *approved == ep && key.key_data() == akey.key_data() {
            return Ok(CertificateCheckStatus::CertificateOk);
        }
        // Another host (a submodule's), or another key than the one approved a moment ago for
        // this host: decide again; for the approved host anything else is refused below.
        let verdict = trust::decide(&ep, &key, check.files, check.registry);
        match &verdict.decision {
            Decision::Known { .. } | Decision::Pinned { .. } if *approved != ep => {
                Ok(CertificateCheckStatus::CertificateOk)
            }
            Decision::Unknown => refuse(
                Error::new(
                    ErrorKind::HostKey,
                    format!(
                        "{} presented {}, which keyclone cannot verify",
                        ep,
                        verdict.presented.show()
                    ),
                )
                .hint(format!(
                    "check and record it first: `keyclone trust {}`",
                    ep.known_hosts_name()
                )),
            ),
            _ => refuse(trust::refusal(&verdict, check.registry).unwrap_or_else(|| {
                Error::new(
                    ErrorKind::HostKey,
                    format!(
                        "{} changed its host key during the connection ({})",
                        ep,
                        verdict.presented.show()
                    ),
                )
                .hint(
                    "someone may be intercepting the connection: do not continue; try again later",
                )
            })),
        }
    });
    cb.transfer_progress(move |stats| {
        super::tuning::trim_pack_maps(super::tuning::TRIM_EVERY);
        let mut st = state.borrow_mut();
        st.received_bytes = stats.received_bytes();
        st.received_objects = stats.received_objects();
        if st.received_at.is_none()
            && stats.total_objects() > 0
            && stats.received_objects() == stats.total_objects()
        {
            st.received_at = Some(Instant::now());
        }
        // libgit2 counts the deltas when it starts resolving them, after the last object.
        if st.indexed_at.is_none()
            && st.received_at.is_some()
            && stats.total_deltas() > 0
            && stats.indexed_deltas() == stats.total_deltas()
        {
            st.indexed_at = Some(Instant::now());
        }
        progress.transfer(
            stats.received_objects(),
            stats.total_objects(),
            stats.indexed_deltas(),
            stats.total_deltas(),
            stats.received_bytes(),
        );
        true
    });
    cb
}

/// Turns a libgit2 failure into keyclone's error, using what the callbacks saw.
pub(super) fn failure(
    e: git2::Error,
    state: &RefCell<State>,
    url: &RemoteUrl,
    auth: &Auth,
) -> Error {
    let mut st = state.borrow_mut();
    if let Some(he) = st.host_error.take() {
        return he;
    }
    let msg = e.message().to_owned();
    if st.key_rejected
        || (e.class() == ErrorClass::Ssh && msg.to_ascii_lowercase().contains("authentication"))
    {
        let how = match &auth.unlock {
            Unlock::Agent => "through ssh-agent".to_owned(),
            _ => format!("`{}`", auth.key.display()),
        };
        return Error::new(
            ErrorKind::Auth,
            format!(
                "{} did not accept the key {how}: the key is not on your account yet (or not for this repository)",
                url.endpoint()
            ),
        );
    }
    let lower = msg.to_ascii_lowercase();
    if e.class() == ErrorClass::Reference && e.code() == git2::ErrorCode::NotFound {
        return Error::usage(format!("the remote has no such branch: {msg}")).hint(
            "check the name given to `--branch` (`keyclone test URL` lists the remote's branches)",
        );
    }
    if lower.contains("does not appear to be a git repository")
        || lower.contains("repository not found")
    {
        return Error::new(
            ErrorKind::NotFound,
            format!("{} has no repository at `{}`, or your key has no access to it", url.endpoint(), url.path),
        )
        .with_source(e)
        .hint("check the URL (copy it from the repository's Clone button) and that your account can read the repository");
    }
    match e.class() {
        ErrorClass::Net | ErrorClass::Ssh | ErrorClass::Http | ErrorClass::Os => Error::new(
            ErrorKind::Network,
            format!("the connection to {} failed: {msg}", url.endpoint()),
        )
        .hint("nothing was kept; run the same command again (a clone starts over)"),
        _ => Error::new(ErrorKind::Io, format!("the clone failed: {msg}"))
            .hint("nothing was kept; fix the cause and run the same command again"),
    }
}

/// Bounds libgit2's network waits: `connect` for opening the connection, `stall` for any
/// single read or write (libgit2 hands it to libssh2). Without it a server that stops sending
/// mid-transfer would hang the clone forever.
#[allow(unsafe_code)]
pub fn set_timeouts(connect: std::time::Duration, stall: std::time::Duration) -> Result<()> {
    let ms = |d: std::time::Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: these set process-wide libgit2 options; keyclone sets them once, before any
    // libgit2 network operation starts, from the main thread.
    unsafe {
        git2::opts::set_server_connect_timeout_in_milliseconds(ms(connect))
            .and_then(|()| git2::opts::set_server_timeout_in_milliseconds(ms(stall)))
            .map_err(|e| Error::internal("could not set libgit2's network timeouts").with_source(e))
    }
}

/// Honours `GIT_CONFIG_NOSYSTEM` as git does: libgit2 then finds no system config (it would
/// otherwise read `/etc/gitconfig` on every repository it opens or creates). libgit2 ignores the
/// variable itself.
#[allow(unsafe_code)]
pub fn apply_config_env(env: &crate::env::Env) -> Result<()> {
    if !env.git_config_nosystem() {
        return Ok(());
    }
    // SAFETY: a process-wide libgit2 option; keyclone sets it once at start-up, from the main
    // thread, before any libgit2 call (tests that run keyclone in-process set the same value).
    unsafe {
        git2::opts::set_search_path(git2::ConfigLevel::System, "").map_err(|e| {
            Error::internal("could not turn off libgit2's system config").with_source(e)
        })
    }
}

/// One ref of a remote, as `git ls-remote` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteRef {
    pub oid: String,
    pub name: String,
}

/// Authenticates and lists the remote's refs, without cloning (`git ls-remote`).
pub fn list_refs(url: &RemoteUrl, auth: &Auth, check: &HostCheck<'_>) -> Result<Vec<RemoteRef>> {
    let state = RefCell::new(State::default());
    let proxied = super::proxied::prepare(url, auth, &check.approved.1)?;
    let lib_url = proxied
        .as_ref()
        .map_or(url.original.as_str(), |(u, _)| u.as_str());
    let mut remote = git2::Remote::create_detached(lib_url).map_err(|e| {
        Error::usage(format!(
            "libgit2 cannot use `{}`: {}",
            url.original,
            e.message()
        ))
    })?;
    let silent = Silent;
    let cb = callbacks(url, auth, check, &state, &silent);
    let conn = remote
        .connect_auth(git2::Direction::Fetch, Some(cb), None)
        .map_err(|e| {
            super::proxied::take_error().unwrap_or_else(|| failure(e, &state, url, auth))
        })?;
    let refs = conn
        .list()
        .map_err(|e| failure(e, &state, url, auth))?
        .iter()
        .map(|h| RemoteRef {
            oid: h.oid().to_string(),
            name: h.name().to_owned(),
        })
        .collect();
    Ok(refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::ErrorCode;

    fn url() -> RemoteUrl {
        RemoteUrl::parse("ssh://git@git.example.org:2222/team/repo.git").unwrap()
    }

    fn auth(unlock: Unlock) -> Auth {
        Auth {
            default_user: "git".into(),
            key: PathBuf::from("/h/.ssh/id_ed25519"),
            fingerprint: "SHA256:x".into(),
            unlock,
        }
    }

    fn map(code: ErrorCode, class: ErrorClass, msg: &str, state: State) -> Error {
        failure(
            git2::Error::new(code, class, msg),
            &RefCell::new(state),
            &url(),
            &auth(Unlock::Plain),
        )
    }

    #[test]
    fn a_host_key_refusal_recorded_by_the_callback_wins_over_libgit2s_message() {
        let state = State {
            host_error: Some(Error::new(ErrorKind::HostKey, "changed host key")),
            key_rejected: true,
            ..State::default()
        };
        let e = map(
            ErrorCode::Certificate,
            ErrorClass::Ssh,
            "user cancelled hostkey check",
            state,
        );
        assert_eq!(e.kind(), ErrorKind::HostKey);
        assert_eq!(e.message(), "changed host key");
    }

    #[test]
    fn a_rejected_key_is_an_auth_error_naming_the_key_or_the_agent() {
        let rejected = State {
            key_rejected: true,
            ..State::default()
        };
        let e = map(
            ErrorCode::Auth,
            ErrorClass::Ssh,
            "callback failed",
            rejected,
        );
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(
            e.message()
                .starts_with("git.example.org:2222 did not accept the key `/h/.ssh/id_ed25519`"),
            "{}",
            e.message()
        );
        // libssh2's own wording, without the callback having seen a rejection.
        let e = failure(
            git2::Error::new(
                ErrorCode::GenericError,
                ErrorClass::Ssh,
                "Authentication failed",
            ),
            &RefCell::new(State::default()),
            &url(),
            &auth(Unlock::Agent),
        );
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(e.message().contains("through ssh-agent"), "{}", e.message());
    }

    #[test]
    fn a_missing_branch_is_a_usage_error_and_a_missing_repository_not_found() {
        let e = map(
            ErrorCode::NotFound,
            ErrorClass::Reference,
            "reference 'refs/remotes/origin/nope' not found",
            State::default(),
        );
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(e.hints().iter().any(|h| h.contains("keyclone test URL")));
        for msg in [
            "ERROR: Repository not found.",
            "fatal: 'x' does not appear to be a git repository",
        ] {
            let e = map(
                ErrorCode::GenericError,
                ErrorClass::Net,
                msg,
                State::default(),
            );
            assert_eq!(e.kind(), ErrorKind::NotFound, "{msg}");
            assert!(
                e.message()
                    .starts_with("git.example.org:2222 has no repository at `")
                    && e.message().contains("team/repo.git`"),
                "{}",
                e.message()
            );
        }
    }

    #[test]
    fn transport_failures_are_network_errors_and_the_rest_io_both_saying_nothing_was_kept() {
        for class in [
            ErrorClass::Net,
            ErrorClass::Ssh,
            ErrorClass::Http,
            ErrorClass::Os,
        ] {
            let e = map(
                ErrorCode::GenericError,
                class,
                "timed out",
                State::default(),
            );
            assert_eq!(e.kind(), ErrorKind::Network, "{class:?}");
            assert_eq!(
                e.message(),
                "the connection to git.example.org:2222 failed: timed out"
            );
        }
        let e = map(
            ErrorCode::GenericError,
            ErrorClass::Odb,
            "object missing",
            State::default(),
        );
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(
            e.hints().iter().all(|h| h.starts_with("nothing was kept")),
            "{:?}",
            e.hints()
        );
    }

    #[test]
    fn the_login_key_follows_how_the_key_is_unlocked() {
        let a = auth(Unlock::Agent);
        assert!(matches!(a.login_key(), crate::ssh::probe::LoginKey::Agent));
        let a = auth(Unlock::Plain);
        assert!(matches!(
            a.login_key(),
            crate::ssh::probe::LoginKey::File {
                passphrase: None,
                ..
            }
        ));
    }
}
