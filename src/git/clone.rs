//! Cloning and listing refs through libgit2 over SSH, with keyclone's own credentials and host
//! check. The host key was approved before (see `ops::host::approve_host`); libgit2's
//! certificate check accepts exactly that key for that host, and uses the same decision function
//! for any other host (submodules). A clone is made in a temporary folder beside its
//! destination and renamed into place, so a failure or Ctrl-C leaves nothing behind.
//!
//! The connection itself (credentials, host check, error mapping, ls-remote) is `transport`;
//! its types are re-exported here for the clone's callers.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::git::paths;
use crate::git::remote::RemoteUrl;
use crate::interrupt;

pub use super::packindex::refuse_start_for_test as refuse_pack_indexer_for_test;
pub use super::transport::{
    Auth, CloneProgress, HostCheck, RemoteRef, Silent, apply_config_env, list_refs, set_timeouts,
};
use super::transport::{State, callbacks, failure};

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
    // The received pack goes to the parallel indexer (`packindex`); if it cannot be registered,
    // libgit2's own indexer takes it.
    builder.remote_create(|repo, name, url| {
        let _ = super::packindex::register(repo);
        repo.remote(name, url)
    });
    if let Some(b) = &req.branch {
        builder.branch(b);
    }
    let proxied = super::proxied::prepare(&req.url, auth, &check.approved.1)?;
    let lib_url = proxied
        .as_ref()
        .map_or(req.url.original.as_str(), |(u, _)| u.as_str());
    let repo = builder.clone(lib_url, &tmp).map_err(|e| {
        super::proxied::take_error().unwrap_or_else(|| failure(e, &state, &req.url, auth))
    })?;
    if proxied.is_some() {
        // The clone's `origin` is the URL as given, never the private scheme.
        repo.remote_set_url("origin", &req.url.original)
            .map_err(|e| Error::internal(format!("could not set `origin`: {}", e.message())))?;
    }
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

/// Clones one submodule as libgit2's `git_submodule_update` (init) does, writing no file of its
/// work tree yet: its repository in `.git/modules/NAME` with a `.git` file in its folder
/// (`git_submodule_repo_init`, the step `update` takes), every branch and tag of `url`, the
/// remote's default branch as a local branch that tracks it, HEAD detached at the commit the
/// superproject records. Done here rather than by `update` so that the received pack goes to
/// the parallel indexer ([`super::packindex`]) as the superproject's does: `update` clones
/// through a repository it creates itself, with no place to register the backend.
fn clone_submodule(
    sm: &mut git2::Submodule<'_>,
    url: &str,
    mut fetch: git2::FetchOptions<'_>,
) -> std::result::Result<git2::Repository, git2::Error> {
    let id = sm
        .index_id()
        .ok_or_else(|| git2::Error::from_str("the submodule has no commit in the index"))?;
    sm.init(false)?;
    let repo = sm.repo_init(true)?;
    // As for the clone itself: if the backend cannot be registered, libgit2's indexer takes it.
    let _ = super::packindex::register(&repo);
    // `repo_init` made `origin` (with the URL `init` copied); the URL keyclone checked is used.
    let mut remote = match repo.find_remote("origin") {
        Ok(_) => {
            repo.remote_set_url("origin", url)?;
            repo.find_remote("origin")?
        }
        Err(_) => repo.remote("origin", url)?,
    };
    // What git_clone asks for: every tag, no FETCH_HEAD.
    fetch.download_tags(git2::AutotagOption::All);
    fetch.update_fetchhead(false);
    remote.fetch(&[] as &[&str], Some(&mut fetch), None)?;
    let default = remote
        .default_branch()
        .ok()
        .and_then(|b| b.as_str().ok().map(str::to_owned));
    drop(remote);
    if let Some(name) = default
        .as_deref()
        .and_then(|r| r.strip_prefix("refs/heads/"))
    {
        let tracking = format!("refs/remotes/origin/{name}");
        if let Ok(commit) = repo
            .find_reference(&tracking)
            .and_then(|r| r.peel_to_commit())
        {
            let mut branch = repo.branch(name, &commit, false)?;
            branch.set_upstream(Some(&format!("origin/{name}")))?;
            repo.reference_symbolic("refs/remotes/origin/HEAD", &tracking, true, "clone")?;
        }
    }
    repo.set_head_detached(id)?;
    Ok(repo)
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
        // Fetch without writing files; the submodule's tree is checked like the clone's own.
        let sub_repo = clone_submodule(&mut sm, &raw_url, fetch)
            .map_err(|e| failure(e, &state, &url, auth))?;
        let filter_all = config_needs_filters(&sub_repo);
        checkout_head(&sub_repo, filter_all, progress)?;
        done.push(name);
        update_submodules(&sub_repo, auth, check, progress, done, depth + 1)?;
    }
    Ok(())
}
