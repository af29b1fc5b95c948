//! Cloning and listing refs through libgit2 over SSH, with keyclone's own credentials and host
//! check. The host key was approved before (see `commands::trust::approve_host`); libgit2's
//! certificate check accepts exactly that key for that host, and uses the same decision function
//! for any other host (submodules). A clone is made in a temporary folder beside its
//! destination and renamed into place, so a failure or Ctrl-C leaves nothing behind.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use git2::{CertificateCheckStatus, Cred, CredentialType, ErrorClass, RemoteCallbacks};
use serde::Serialize;
use ssh_key::PublicKey;

use crate::error::{Error, ErrorKind, Result};
use crate::git::remote::RemoteUrl;
use crate::interrupt;
use crate::providers::Registry;
use crate::secrets::Unlock;
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
    /// The host and port approved before the transfer, with the key that was approved.
    pub approved: (String, u16, PublicKey),
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
    /// Threads the checkout ran on (1: the plain libgit2 checkout).
    pub checkout_threads: usize,
}

fn who(host: &str, port: u16) -> String {
    crate::ssh::known_hosts::display_host(host, port)
}

/// Callbacks for one connection to `url`.
fn callbacks<'a>(
    url: &'a RemoteUrl,
    auth: &'a Auth,
    check: &'a HostCheck<'a>,
    state: &'a RefCell<State>,
    progress: &'a dyn CloneProgress,
) -> RemoteCallbacks<'a> {
    let port = url.port.unwrap_or(22);
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
                format!("{} did not present an SSH host key", who(&url.host, port)),
            ));
        };
        let key = match PublicKey::from_bytes(blob) {
            Ok(k) => k,
            Err(e) => {
                return refuse(
                    Error::new(
                        ErrorKind::HostKey,
                        format!(
                            "{} presented a host key keyclone cannot read",
                            who(&url.host, port)
                        ),
                    )
                    .with_source(e),
                );
            }
        };
        let (ahost, aport, akey) = &check.approved;
        if *ahost == url.host && *aport == port && key.key_data() == akey.key_data() {
            return Ok(CertificateCheckStatus::CertificateOk);
        }
        // Another host (a submodule's), or another key than the one approved a moment ago for
        // this host: decide again; for the approved host anything else is refused below.
        let verdict = trust::decide(&url.host, port, &key, check.files, check.registry);
        match &verdict.decision {
            Decision::Known { .. } | Decision::Pinned { .. }
                if *ahost != url.host || *aport != port =>
            {
                Ok(CertificateCheckStatus::CertificateOk)
            }
            Decision::Unknown => refuse(
                Error::new(
                    ErrorKind::HostKey,
                    format!(
                        "{} presented {}, which keyclone cannot verify",
                        who(&url.host, port),
                        verdict.presented.show()
                    ),
                )
                .hint(format!(
                    "check and record it first: `keyclone trust {}`",
                    crate::ssh::known_hosts::host_name(&url.host, port)
                )),
            ),
            _ => refuse(trust::refusal(&verdict, check.registry).unwrap_or_else(|| {
                Error::new(
                    ErrorKind::HostKey,
                    format!(
                        "{} changed its host key during the connection ({})",
                        who(&url.host, port),
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
    let port = url.port.unwrap_or(22);
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
                who(&url.host, port)
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
            format!("{} has no repository at `{}`, or your key has no access to it", who(&url.host, port), url.path),
        )
        .with_source(e)
        .hint("check the URL (copy it from the repository's Clone button) and that your account can read the repository");
    }
    match e.class() {
        ErrorClass::Net | ErrorClass::Ssh | ErrorClass::Http | ErrorClass::Os => Error::new(
            ErrorKind::Network,
            format!("the connection to {} failed: {msg}", who(&url.host, port)),
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
    // Objects are hashed once, when the pack is indexed during the fetch; like git, do not hash
    // them again each time checkout reads them (that alone made checkout ~25% slower).
    git2::opts::strict_hash_verification(false);
    let repo = builder
        .clone(&req.url.original, &tmp)
        .map_err(|e| failure(e, &state, &req.url, auth))?;
    let filter_all = req.global_attributes || config_needs_filters(&repo);
    let mut checkout_threads = 0;
    if repo.head().is_ok() {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4);
        checkout_threads = checkout_head(&repo, &tmp, filter_all, threads, progress)?;
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
        update_submodules(&repo, auth, check, progress, &mut submodules)?;
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
        checkout_threads,
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

/// A file of the checked-out tree: path, mode, blob.
type TreeFile = (String, u32, git2::Oid);

/// Checks out HEAD into the (empty) work tree, on `threads` threads when the tree splits well.
///
/// libgit2's checkout is single-threaded and its delta-base cache is small, so reading the
/// blobs dominates a large checkout. The tree's folders are split into `threads` groups of
/// about equal file counts; each group is written by its own libgit2 checkout (its own
/// repository handle and caches); then the index is written from the tree and the files' stat
/// data, exactly the entries a single checkout would write.
///
/// Attribute lookups (per file, the other large cost) are made only where an attribute could
/// apply: everywhere when `filter_all` (autocrlf, a user-wide or `info/attributes` file) or
/// when the root holds a `.gitattributes`; else only below the folders that hold one.
fn checkout_head(
    repo: &git2::Repository,
    workdir: &Path,
    filter_all: bool,
    threads: usize,
    progress: &dyn CloneProgress,
) -> Result<usize> {
    let fail = |what: &str, e: git2::Error| {
        Error::new(ErrorKind::Io, format!("could not {what}: {}", e.message()))
    };
    let tree = repo
        .head()
        .and_then(|h| h.peel_to_tree())
        .map_err(|e| fail("read the checked-out tree", e))?;
    let mut files: Vec<(String, u32, git2::Oid)> = Vec::new();
    let mut plain_names = true;
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        match entry.name().ok() {
            None => plain_names = false,
            Some(name) if entry.kind() != Some(git2::ObjectType::Tree) => {
                files.push((format!("{dir}{name}"), entry.filemode() as u32, entry.id()));
            }
            Some(_) => {}
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(|e| fail("read the checked-out tree", e))?;
    let total = files.len();
    // Attribute files are written first, on their own (below); the workers never touch them, so
    // no worker can read a folder's attributes while another rewrites them.
    let is_attr = |p: &str| p == ".gitattributes" || p.ends_with("/.gitattributes");
    let content: Vec<(String, u32, git2::Oid)> = files
        .iter()
        .filter(|(p, _, _)| !is_attr(p))
        .cloned()
        .collect();
    let attr_dirs: Vec<&str> = files
        .iter()
        .filter(|(p, _, _)| is_attr(p))
        .map(|(p, _, _)| &p[..p.len() - ".gitattributes".len()])
        .collect();
    let filter_all = filter_all || attr_dirs.contains(&"");
    let filters = filter_all || !attr_dirs.is_empty();
    let filtered = |spec: &str| filter_all || attr_dirs.iter().any(|d| spec.starts_with(d));
    let groups = if plain_names {
        split_paths(&content, &attr_dirs, threads)
    } else {
        None
    };
    let single = |co: &mut git2::build::CheckoutBuilder<'_>| {
        co.force();
        if !filters {
            co.disable_filters(true);
        }
    };
    let Some(groups) = groups.filter(|g| g.len() > 1 && total >= 2000) else {
        let mut co = git2::build::CheckoutBuilder::new();
        single(&mut co);
        co.progress(|_, done, total| progress.checkout(done, total));
        return repo
            .checkout_head(Some(&mut co))
            .map(|()| 1)
            .map_err(|e| fail("check out the files", e));
    };
    {
        // Attribute files first: every worker reads them from the work tree while it writes.
        let attrs: Vec<&str> = files
            .iter()
            .map(|(p, _, _)| p.as_str())
            .filter(|p| is_attr(p))
            .collect();
        if !attrs.is_empty() {
            let mut co = git2::build::CheckoutBuilder::new();
            co.force().update_index(false);
            for a in attrs {
                co.path(a);
            }
            repo.checkout_head(Some(&mut co))
                .map_err(|e| fail("check out the attribute files", e))?;
        }
    }
    let done = std::sync::atomic::AtomicUsize::new(0);
    let mut known: std::collections::HashMap<&str, Stat> = std::collections::HashMap::new();
    let results: Vec<std::result::Result<(), git2::Error>> = if filter_all {
        checkout_groups(workdir, &groups, &filtered, &done, total, progress)
    } else {
        // Files where an attribute may apply go through libgit2's checkout (filters); the
        // rest are written directly from their blobs, read in pack order.
        let (with, without): (Vec<&TreeFile>, Vec<&TreeFile>) =
            content.iter().partition(|(p, _, _)| filtered(p));
        let mut first = Ok(());
        if !with.is_empty() {
            let mut co = git2::build::CheckoutBuilder::new();
            co.force().update_index(false).disable_pathspec_match(true);
            for (p, _, _) in &with {
                co.path(p.as_str());
            }
            first = repo.checkout_head(Some(&mut co));
            done.fetch_add(with.len(), std::sync::atomic::Ordering::Relaxed);
        }
        let mut results = vec![first];
        for r in write_blobs(repo, workdir, &without, threads, &done, total, progress) {
            match r {
                Ok(w) => {
                    known.extend(w);
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        results
    };
    progress.checkout(total, total);
    if results.iter().all(Result::is_ok) && write_index(repo, workdir, &files, &known).is_ok() {
        // Threads that wrote files (the attribute checkout before them is not one).
        return Ok(if filter_all {
            results.len()
        } else {
            results.len() - 1
        });
    }
    // Anything unexpected in the split checkout: do it again the plain way, which rewrites
    // every file and the index.
    let mut co = git2::build::CheckoutBuilder::new();
    single(&mut co);
    repo.checkout_head(Some(&mut co))
        .map(|()| 1)
        .map_err(|e| fail("check out the files", e))
}

/// The group checkout: each group of pathspecs by its own libgit2 checkout on its own thread.
fn checkout_groups(
    workdir: &Path,
    groups: &[Vec<String>],
    filtered: &(dyn Fn(&str) -> bool + Sync),
    done: &std::sync::atomic::AtomicUsize,
    total: usize,
    progress: &dyn CloneProgress,
) -> Vec<std::result::Result<(), git2::Error>> {
    let finished = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .iter()
            .map(|specs| {
                let finished = &finished;
                scope.spawn(move || {
                    let r = (|| {
                        let repo = git2::Repository::open(workdir)?;
                        // Pieces where attributes may apply, then the others without lookups.
                        let (with, without): (Vec<&String>, Vec<&String>) =
                            specs.iter().partition(|s| filtered(s));
                        for (part, apply) in [(with, true), (without, false)] {
                            if part.is_empty() {
                                continue;
                            }
                            let mut co = git2::build::CheckoutBuilder::new();
                            co.force().update_index(false).disable_pathspec_match(true);
                            co.disable_filters(!apply);
                            for spec in part {
                                co.path(spec.as_str());
                            }
                            let mut last = 0;
                            co.progress(move |_, d, _| {
                                done.fetch_add(
                                    d.saturating_sub(last),
                                    std::sync::atomic::Ordering::Relaxed,
                                );
                                last = d;
                            });
                            repo.checkout_head(Some(&mut co))?;
                        }
                        Ok(())
                    })();
                    finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    r
                })
            })
            .collect();
        join_with_progress(handles, &finished, done, total, progress)
    })
}

/// Waits for the checkout threads, drawing the progress of `done` files meanwhile.
fn join_with_progress<T>(
    handles: Vec<std::thread::ScopedJoinHandle<'_, T>>,
    finished: &std::sync::atomic::AtomicUsize,
    done: &std::sync::atomic::AtomicUsize,
    total: usize,
    progress: &dyn CloneProgress,
) -> Vec<T> {
    use std::sync::atomic::Ordering::Relaxed;
    while finished.load(Relaxed) < handles.len() {
        progress.checkout(done.load(Relaxed).min(total), total);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    handles
        .into_iter()
        .map(|h| h.join().expect("a checkout thread does not panic"))
        .collect()
}

/// Writes files that need no filters straight from their blobs, as libgit2's checkout would
/// (mode 644 or 755, symbolic links, an empty folder for a submodule). The blobs are read in
/// pack order and the list is cut into contiguous runs, one per thread: a delta's base is then
/// usually the object just read, still in libgit2's (small) delta-base cache, instead of a
/// chain to resolve again.
fn write_blobs<'f>(
    repo: &git2::Repository,
    workdir: &Path,
    files: &[&'f TreeFile],
    threads: usize,
    done: &std::sync::atomic::AtomicUsize,
    total: usize,
    progress: &dyn CloneProgress,
) -> Vec<std::result::Result<Written<'f>, git2::Error>> {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |p: &str, e: std::io::Error| git2::Error::from_str(&format!("{p}: {e}"));
    let offsets = pack_offsets(repo.path());
    let mut order: Vec<&TreeFile> = files.to_vec();
    order.sort_by_key(|(_, _, id)| offsets.get(id).copied().unwrap_or(u64::MAX));
    drop(offsets);
    let mut dirs: Vec<&str> = files
        .iter()
        .filter_map(|(p, _, _)| p.rfind('/').map(|i| &p[..i]))
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    for d in dirs {
        if let Err(e) = std::fs::create_dir_all(workdir.join(d)) {
            return vec![Err(io(d, e))];
        }
    }
    // Contiguous batches of the pack order, taken by whichever thread is free: the threads
    // finish together, and within a batch each delta's base was usually just read.
    const BATCH: usize = 512;
    let batches: Vec<&[&'f TreeFile]> = order.chunks(BATCH).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let finished = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let (finished, next, batches) = (&finished, &next, &batches);
                scope.spawn(move || {
                    let r = (|| {
                        let repo = git2::Repository::open(workdir)?;
                        // The stat data of each file, for the index (read from the open file).
                        let mut written: Written<'f> = Vec::new();
                        while let Some(part) =
                            batches.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                        {
                            for (path, mode, id) in part.iter() {
                                let dest = workdir.join(path);
                                let meta = if *mode == 0o160000 {
                                    std::fs::create_dir_all(&dest).map_err(|e| io(path, e))?;
                                    std::fs::symlink_metadata(&dest)
                                } else {
                                    let blob = repo.find_blob(*id)?;
                                    if *mode == 0o120000 {
                                        let target = std::ffi::OsStr::from_bytes(blob.content());
                                        std::os::unix::fs::symlink(target, &dest)
                                            .map_err(|e| io(path, e))?;
                                        std::fs::symlink_metadata(&dest)
                                    } else {
                                        let mut f = std::fs::OpenOptions::new()
                                            .write(true)
                                            .create_new(true)
                                            .mode(if *mode == 0o100755 { 0o755 } else { 0o644 })
                                            .open(&dest)
                                            .map_err(|e| io(path, e))?;
                                        f.write_all(blob.content()).map_err(|e| io(path, e))?;
                                        f.metadata()
                                    }
                                }
                                .map_err(|e| io(path, e))?;
                                written.push((path.as_str(), Stat::of(&meta)));
                                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                        Ok(written)
                    })();
                    finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    r
                })
            })
            .collect();
        join_with_progress(handles, &finished, done, total, progress)
    })
}

/// Where each object sits in the packs (offset, packs in directory order after each other),
/// from the pack index files (version 2). Anything unreadable gives an empty map: the order
/// then stays as given.
fn pack_offsets(git_dir: &Path) -> std::collections::HashMap<git2::Oid, u64> {
    let mut out = std::collections::HashMap::new();
    let Ok(rd) = std::fs::read_dir(git_dir.join("objects/pack")) else {
        return out;
    };
    let mut idx: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    idx.sort();
    for (n, path) in idx.iter().enumerate() {
        let Ok(b) = crate::files::read_bounded(path, crate::files::INDEX_LIMIT, "pack index")
        else {
            continue;
        };
        let be32 = |at: usize| {
            b.get(at..at + 4)
                .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        };
        if b.get(0..4) != Some(&[0xff, b't', b'O', b'c']) || be32(4) != Some(2) {
            continue;
        }
        let Some(count) = be32(8 + 255 * 4).map(|c| c as usize) else {
            continue;
        };
        let names = 8 + 256 * 4;
        let offs = names + count * 20 + count * 4;
        let large = offs + count * 4;
        let base = (n as u64) << 48;
        for i in 0..count {
            let (Some(name), Some(off)) = (
                b.get(names + i * 20..names + i * 20 + 20),
                be32(offs + i * 4),
            ) else {
                break;
            };
            let off = if off & 0x8000_0000 != 0 {
                let at = large + (off & 0x7fff_ffff) as usize * 8;
                match b.get(at..at + 8) {
                    Some(s) => u64::from_be_bytes(s.try_into().unwrap_or([0; 8])),
                    None => continue,
                }
            } else {
                u64::from(off)
            };
            if let Ok(oid) = git2::Oid::from_bytes(name) {
                out.insert(oid, base | off);
            }
        }
    }
    out
}

/// Splits the files into `n` groups of pathspecs (folders, or single files) with about equal
/// file counts: large folders are split into their subfolders until no piece holds more than
/// an eighth of a group. `None` when a name holds pathspec wildcards (it could then not be
/// matched exactly).
fn split_paths(
    files: &[(String, u32, git2::Oid)],
    attr_dirs: &[&str],
    n: usize,
) -> Option<Vec<Vec<String>>> {
    if n < 2 {
        return None;
    }
    let limit = (files.len() / (n * 8)).max(100);
    let paths: Vec<&str> = files.iter().map(|(p, _, _)| p.as_str()).collect();
    let mut pieces: Vec<(String, usize)> = Vec::new();
    split_under("", &paths, attr_dirs, limit, &mut pieces);
    if pieces
        .iter()
        .any(|(k, _)| k.starts_with('!') || k.contains(['*', '?', '[', '\\']))
    {
        return None;
    }
    pieces.sort_by_key(|p| std::cmp::Reverse(p.1));
    let mut groups: Vec<(usize, Vec<String>)> = vec![(0, Vec::new()); n];
    for (spec, count) in pieces {
        let g = groups
            .iter_mut()
            .min_by_key(|g| g.0)
            .expect("n >= 2 groups");
        g.0 += count;
        g.1.push(spec);
    }
    Some(
        groups
            .into_iter()
            .map(|g| g.1)
            .filter(|g| !g.is_empty())
            .collect(),
    )
}

/// Appends the pieces of folder `prefix` (whose files are `paths`, relative to the root): the
/// folder itself when small enough, else each subfolder (recursively) and each file. A folder
/// that holds an attribute file (`attr_dirs`, with a trailing `/`) somewhere below is always
/// split down to single files, so that no piece names an attribute file.
fn split_under(
    prefix: &str,
    paths: &[&str],
    attr_dirs: &[&str],
    limit: usize,
    out: &mut Vec<(String, usize)>,
) {
    let holds_attributes = attr_dirs.iter().any(|d| d.starts_with(prefix));
    if !prefix.is_empty() && paths.len() <= limit && !holds_attributes {
        // A folder piece keeps its trailing `/`: libgit2's exact path lists sort and match
        // folders that way (`a/` after `a.txt`), as its tree iterator visits them.
        out.push((prefix.to_owned(), paths.len()));
        return;
    }
    let mut children: std::collections::BTreeMap<&str, Vec<&str>> =
        std::collections::BTreeMap::new();
    for p in paths {
        let rest = &p[prefix.len()..];
        match rest.find('/') {
            Some(i) => children
                .entry(&p[..prefix.len() + i + 1])
                .or_default()
                .push(p),
            None => out.push(((*p).to_owned(), 1)),
        }
    }
    for (child, sub) in children {
        split_under(child, &sub, attr_dirs, limit, out);
    }
}

/// The stat fields the index records, as git stores them (32 bits each).
#[derive(Debug, Clone, Copy)]
struct Stat([u32; 9]);

impl Stat {
    fn of(m: &std::fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat([
            m.ctime() as u32,
            m.ctime_nsec() as u32,
            m.mtime() as u32,
            m.mtime_nsec() as u32,
            m.dev() as u32,
            m.ino() as u32,
            m.uid(),
            m.gid(),
            m.len() as u32,
        ])
    }
}

/// The stat data of the files a worker wrote.
type Written<'f> = Vec<(&'f str, Stat)>;

/// Writes the index (version 2) for a work tree checked out from `files`, with each file's
/// stat data (`known` for the files written here, else read from the file), exactly as git
/// would write it after a checkout: entries sorted by path, no extensions, SHA-1 trailer. It
/// is written to `index.lock` and renamed into place, as git does.
fn write_index(
    repo: &git2::Repository,
    workdir: &Path,
    files: &[TreeFile],
    known: &std::collections::HashMap<&str, Stat>,
) -> std::result::Result<(), git2::Error> {
    use sha1::Digest;
    use std::io::Write;
    let err = |what: &str, e: std::io::Error| git2::Error::from_str(&format!("{what}: {e}"));
    let mut sorted: Vec<&TreeFile> = files.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let count = u32::try_from(sorted.len()).map_err(|_| git2::Error::from_str("too many files"))?;
    let mut out: Vec<u8> = Vec::with_capacity(sorted.len() * 96 + 32);
    out.extend_from_slice(b"DIRC");
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    for (path, mode, id) in sorted {
        let st = match known.get(path.as_str()) {
            Some(st) => *st,
            None => {
                Stat::of(&std::fs::symlink_metadata(workdir.join(path)).map_err(|e| err(path, e))?)
            }
        };
        let [c, cn, m, mn, dev, ino, uid, gid, len] = st.0;
        let size = if *mode == 0o160000 { 0 } else { len };
        let start = out.len();
        for v in [c, cn, m, mn, dev, ino, *mode, uid, gid, size] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&(path.len().min(0xfff) as u16).to_be_bytes());
        out.extend_from_slice(path.as_bytes());
        // NUL-padded to a multiple of 8 bytes, at least one NUL.
        let len = out.len() - start;
        out.resize(start + (len + 8) / 8 * 8, 0);
    }
    let digest = sha1::Sha1::digest(&out);
    out.extend_from_slice(&digest);
    let lock = repo.path().join("index.lock");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&lock)
        .map_err(|e| err("index.lock", e))?;
    f.write_all(&out).map_err(|e| err("index.lock", e))?;
    drop(f);
    std::fs::rename(&lock, repo.path().join("index")).map_err(|e| err("index", e))
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
) -> Result<()> {
    let subs = repo
        .submodules()
        .map_err(|e| Error::internal("could not read .gitmodules").with_source(e))?;
    for mut sm in subs {
        let raw_url = sm.url().ok().flatten().unwrap_or_default().to_owned();
        let name = sm.path().display().to_string();
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
        sm.update(true, Some(&mut opts))
            .map_err(|e| failure(e, &state, &url, auth))?;
        done.push(name);
        if let Ok(sub_repo) = sm.open() {
            update_submodules(&sub_repo, auth, check, progress, done)?;
        }
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
