//! Cloning and listing refs through libgit2 over SSH, with keyclone's own credentials and host
//! check. The host key was approved before (see `ops::host::approve_host`); libgit2's
//! certificate check accepts exactly that key for that host, and uses the same decision function
//! for any other host (submodules). A clone is made in a temporary folder beside its
//! destination and renamed into place, so a failure or Ctrl-C leaves nothing behind.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use git2::{CertificateCheckStatus, Cred, CredentialType, ErrorClass, RemoteCallbacks};
use serde::Serialize;
use ssh_key::PublicKey;

use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::git::paths;
use crate::git::remote::RemoteUrl;
use crate::interrupt;
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
struct State {
    host_error: Option<Error>,
    key_attempts: u32,
    key_rejected: bool,
    received_bytes: usize,
    received_objects: usize,
    /// When all objects had arrived, and when all deltas were resolved.
    received_at: Option<Instant>,
    indexed_at: Option<Instant>,
}

/// A clone to make.
#[derive(Debug, Clone)]
pub struct CloneRequest {
    pub url: RemoteUrl,
    pub dest: PathBuf,
    pub branch: Option<String>,
    pub depth: Option<u32>,
    pub recurse_submodules: bool,
    /// A user-wide attributes file exists (`~/.config/git/attributes`): keep checkout filters.
    pub global_attributes: bool,
}

/// What a clone produced.
#[derive(Debug, Clone, Serialize)]
pub struct CloneSummary {
    pub path: PathBuf,
    pub head: String,
    pub branch: Option<String>,
    pub bytes: usize,
    pub objects: usize,
    pub seconds: f64,
    pub submodules: Vec<String>,
    /// Where the time went: receiving the pack, resolving its deltas, checking out files.
    pub phases: Phases,
}

/// Seconds spent in each phase of a clone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phases {
    pub receive: f64,
    pub resolve: f64,
    pub checkout: f64,
}

/// Callbacks for one connection to `url`.
fn callbacks<'a>(
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
fn failure(e: git2::Error, state: &RefCell<State>, url: &RemoteUrl, auth: &Auth) -> Error {
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

/// Removes a directory tree on drop unless disarmed (and while armed, on interrupt too).
struct Cleanup(Option<PathBuf>);

impl Cleanup {
    fn new(path: PathBuf) -> Self {
        interrupt::track(&path);
        Cleanup(Some(path))
    }
    fn disarm(&mut self) {
        if let Some(p) = self.0.take() {
            interrupt::untrack(&p);
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(&p);
            interrupt::untrack(&p);
        }
    }
}

/// Clones `req.url` to `req.dest` (which must not exist, or be an empty directory).
pub fn clone(
    req: &CloneRequest,
    auth: &Auth,
    check: &HostCheck<'_>,
    progress: &dyn CloneProgress,
) -> Result<CloneSummary> {
    super::tuning::tune_for_clone();
    let started = Instant::now();
    let parent = req
        .dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io("create the folder", parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".keyclone-clone-")
        .tempdir_in(parent)
        .map_err(|e| Error::io("create a temporary folder in", parent, e))?
        .keep();
    let mut cleanup = Cleanup::new(tmp.clone());

    let state = RefCell::new(State::default());
    let mut fetch = git2::FetchOptions::new();
    fetch.remote_callbacks(callbacks(&req.url, auth, check, &state, progress));
    if let Some(d) = req.depth {
        fetch.depth(i32::try_from(d).unwrap_or(i32::MAX));
    }
    // Fetch first (no files written), then check out with options chosen for this tree.
    let mut no_files = git2::build::CheckoutBuilder::new();
    no_files.dry_run();
    let mut builder = git2::build::RepoBuilder::new();
    builder.fetch_options(fetch).with_checkout(no_files);
    if let Some(b) = &req.branch {
        builder.branch(b);
    }
    let repo = builder
        .clone(&req.url.original, &tmp)
        .map_err(|e| failure(e, &state, &req.url, auth))?;
    let filter_all = req.global_attributes || config_needs_filters(&repo);
    if repo.head().is_ok() {
        checkout_head(&repo, filter_all, progress)?;
    }
    let cloned_at = Instant::now();
    progress.finish();
    let (head, branch) = head_of(&repo);
    drop(repo);

    // Into place: the destination may exist as an empty folder.
    if req.dest.is_dir() {
        std::fs::remove_dir(&req.dest).map_err(|e| {
            Error::io("replace the empty destination folder", &req.dest, e)
                .hint("the destination must be missing or empty")
        })?;
    }
    {
        let _section = interrupt::critical();
        std::fs::rename(&tmp, &req.dest)
            .map_err(|e| Error::io("move the clone into place at", &req.dest, e))?;
        cleanup.disarm();
    }
    let mut submodules = Vec::new();
    if req.recurse_submodules {
        let mut guard = Cleanup::new(req.dest.clone());
        let repo = git2::Repository::open(&req.dest)
            .map_err(|e| Error::internal("could not open the new clone").with_source(e))?;
        update_submodules(&repo, auth, check, progress, &mut submodules, 0)?;
        guard.disarm();
    }
    let st = state.borrow();
    let secs = |a: Instant, b: Option<Instant>| {
        b.map_or(0.0, |b| b.saturating_duration_since(a).as_secs_f64())
    };
    let received = st.received_at.unwrap_or(cloned_at);
    let indexed = st.indexed_at.unwrap_or(received);
    let phases = Phases {
        receive: secs(started, Some(received)),
        resolve: secs(received, Some(indexed)),
        checkout: secs(indexed, Some(cloned_at)),
    };
    Ok(CloneSummary {
        phases,
        path: req.dest.clone(),
        head,
        branch,
        bytes: st.received_bytes,
        objects: st.received_objects,
        seconds: started.elapsed().as_secs_f64(),
        submodules,
    })
}

/// Checks out HEAD into the (empty) work tree with libgit2's checkout, after every path of the
/// tree passed git's rules ([`paths::check_tree`]): a refused tree writes nothing.
///
/// Attribute lookups are skipped (`disable_filters`) when no attribute can apply: no
/// `.gitattributes` anywhere in the tree and nothing in the configuration (`filter_all`).
fn checkout_head(
    repo: &git2::Repository,
    filter_all: bool,
    progress: &dyn CloneProgress,
) -> Result<()> {
    let fail = |what: &str, e: git2::Error| {
        Error::new(ErrorKind::Io, format!("could not {what}: {}", e.message()))
    };
    let tree = repo
        .head()
        .and_then(|h| h.peel_to_tree())
        .map_err(|e| fail("read the checked-out tree", e))?;
    let facts = check_paths(repo, tree.id())?;
    let mut co = git2::build::CheckoutBuilder::new();
    co.force();
    if !filter_all && !facts.has_attributes {
        co.disable_filters(true);
    }
    co.progress(|_, done, total| {
        super::tuning::trim_pack_maps(super::tuning::TRIM_EVERY_CHECKOUT);
        progress.checkout(done, total);
    });
    repo.checkout_head(Some(&mut co))
        .map_err(|e| fail("check out the files", e))
}

/// [`paths::check_tree`] as keyclone's error: the path, the rule, and that nothing was kept.
fn check_paths(repo: &git2::Repository, tree: git2::Oid) -> Result<paths::TreeFacts> {
    paths::check_tree(repo, tree).map_err(|e| match e {
        paths::TreeError::Refused(r) => unsafe_path(&r.path, &r.rule),
        paths::TreeError::Git(e) => Error::new(
            ErrorKind::Io,
            format!("could not read the tree to check out: {}", e.message()),
        ),
    })
}

fn unsafe_path(path: &str, rule: &paths::Rule) -> Error {
    Error::new(
        ErrorKind::UnsafeRepository,
        format!(
            "refusing to check out `{path}`: it is {rule}; git refuses such paths (`invalid path`) because checking them out could write outside the clone or run code"
        ),
    )
    .hint("nothing was written; the repository's history holds a malicious or damaged tree: tell its owners, and do not clone it with another tool")
}

/// Whether the configuration makes attributes apply to every file: `core.autocrlf=true`,
/// `core.attributesFile`, or `info/attributes`.
pub(crate) fn config_needs_filters(repo: &git2::Repository) -> bool {
    let config = repo.config().is_ok_and(|cfg| {
        cfg.get_bool("core.autocrlf").unwrap_or(false)
            || cfg.get_string("core.attributesFile").is_ok()
    });
    config || repo.path().join("info/attributes").exists()
}

fn head_of(repo: &git2::Repository) -> (String, Option<String>) {
    match repo.head() {
        Ok(h) => (
            h.target().map(|o| o.to_string()).unwrap_or_default(),
            if h.is_branch() {
                h.shorthand().ok().map(str::to_owned)
            } else {
                None
            },
        ),
        Err(_) => (String::new(), None),
    }
}

/// Initialises and updates every submodule, recursively, with the same key and host checks.
fn update_submodules(
    repo: &git2::Repository,
    auth: &Auth,
    check: &HostCheck<'_>,
    progress: &dyn CloneProgress,
    done: &mut Vec<String>,
    depth: usize,
) -> Result<()> {
    // Nesting is chosen by the repositories; git has no limit, keyclone stops at a depth no
    // real project reaches rather than recurse without bound.
    const MAX_DEPTH: usize = 16;
    if depth > MAX_DEPTH {
        return Err(Error::new(
            ErrorKind::UnsafeRepository,
            format!("submodules are nested more than {MAX_DEPTH} levels deep"),
        )
        .hint("clone without `--recurse-submodules` and update the submodules you need with `git submodule update --init PATH`"));
    }
    let subs = repo
        .submodules()
        .map_err(|e| Error::internal("could not read .gitmodules").with_source(e))?;
    for mut sm in subs {
        if sm.index_id().is_none() {
            // An entry of `.gitmodules` with no gitlink in the tree (a removed submodule):
            // git ignores it, and so does keyclone.
            continue;
        }
        let raw_url = sm.url().ok().flatten().unwrap_or_default().to_owned();
        let name = sm.path().display().to_string();
        let sm_name = sm.name().unwrap_or_default().to_owned();
        // git's check_submodule_name and verify_path: the module's folder under .git/modules
        // and its work tree stay inside (a crafted `.gitmodules` names `../../x`).
        paths::check_submodule(&sm_name, &name).map_err(|rule| {
            unsafe_path(
                &paths::display_path(format!("{sm_name} ({name})").as_bytes()),
                &rule,
            )
        })?;
        if raw_url.is_empty() {
            // libgit2, like git, drops a `.gitmodules` entry whose name is suspicious (`..`):
            // the gitlink is then left without a URL.
            return Err(Error::new(
                ErrorKind::UnsafeRepository,
                format!("submodule `{name}` has no usable entry in `.gitmodules` (no URL, or a name that leaves its folder, which git ignores)"),
            )
            .hint("nothing was kept; clone without `--recurse-submodules`, or ask the repository's owners to fix `.gitmodules`"));
        }
        let url = RemoteUrl::parse(&raw_url).map_err(|e| {
            Error::usage(format!(
                "submodule `{name}` has a URL keyclone cannot use: {}",
                e.message()
            ))
        })?;
        if url.scheme != crate::git::remote::Scheme::Ssh {
            return Err(Error::usage(format!(
                "submodule `{name}` is fetched from `{}`, which is not an SSH URL",
                crate::git::remote::redact(&raw_url)
            ))
            .hint(
                "point it at an SSH URL in .gitmodules, or clone without `--recurse-submodules`",
            ));
        }
        let state = RefCell::new(State::default());
        let mut fetch = git2::FetchOptions::new();
        fetch.remote_callbacks(callbacks(&url, auth, check, &state, progress));
        let mut opts = git2::SubmoduleUpdateOptions::new();
        opts.fetch(fetch);
        // Fetch without writing files; the submodule's tree is checked like the clone's own.
        let mut no_files = git2::build::CheckoutBuilder::new();
        no_files.dry_run();
        opts.checkout(no_files);
        sm.update(true, Some(&mut opts))
            .map_err(|e| failure(e, &state, &url, auth))?;
        let sub_repo = sm.open().map_err(|e| {
            Error::internal(format!("could not open the submodule `{name}`")).with_source(e)
        })?;
        let filter_all = config_needs_filters(&sub_repo);
        checkout_head(&sub_repo, filter_all, progress)?;
        done.push(name);
        update_submodules(&sub_repo, auth, check, progress, done, depth + 1)?;
    }
    Ok(())
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
    let mut remote = git2::Remote::create_detached(url.original.as_str()).map_err(|e| {
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
        .map_err(|e| failure(e, &state, url, auth))?;
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
