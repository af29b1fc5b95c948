//! The Git state of a training job, as Azure ML and MLflow record it, through libgit2 (no git
//! binary): repository URL (credentials removed), branch, commit, dirty, plus what the peers
//! miss (`provenance.git.*`). The contract (README, "`keyclone provenance`"): flat string
//! properties, a key left out rather than emitted empty, `AZUREML_GIT_*` overrides honoured
//! field by field, `KEYCLONE_PROVENANCE=off` turns capture off.
//!
//! Library use: [`capture`] with [`Options`]; the result's `properties` are ready to attach to
//! a job.
//!
//! Cost: only what is asked for is computed ([`Options::extras`]: the `provenance.git.*`
//! history work is skipped for the formats that do not print it), and one [`Deadline`] bounds
//! every part: the status scan and each history walk check it, and what did not finish is
//! reported as `unknown`, never guessed. The modules: `open` (repository, remote, URL
//! sanitizing), `guard` (the checks before libgit2 reads an attacker's files: no FIFO or
//! device where git expects a file, no index or commit too large), `scan` (dirty, in a worker
//! thread), `describe` and `abbrev` (git's describe, bounded), `extras` (upstream, HEAD metadata, superproject, submodules), `fingerprint`,
//! `patch`.

mod abbrev;
mod describe;
mod extras;
mod fingerprint;
mod guard;
mod open;
mod patch;
mod scan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};

pub use open::sanitize_url;
pub use patch::secret_looking;

pub use crate::env::{
    AZUREML_GIT_BRANCH, AZUREML_GIT_BUILD_ID, AZUREML_GIT_BUILD_URI, AZUREML_GIT_COMMIT,
    AZUREML_GIT_DIRTY, AZUREML_GIT_REPOSITORY_URI,
};

/// Which changes make the job dirty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// Only changes below the code directory (what Azure's `git status --porcelain .` sees)
    Code,
    /// Any change in the repository
    Repo,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Code => "code",
            Scope::Repo => "repo",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The job's code directory (a repository is searched upward from it).
    pub path: PathBuf,
    pub scope: Scope,
    /// The longest the whole capture may take (status scan and history walks); what is not
    /// known by then is "unknown".
    pub deadline: Duration,
    /// Compute the `provenance.git.*` extras that cost history walks (upstream,
    /// fingerprint, HEAD metadata, superproject, submodules, remotes). Off for formats that
    /// print only the Azure ML or MLflow keys.
    pub extras: bool,
    /// Also compute `provenance.git.describe` (with `extras`): git's describe walks the history
    /// from HEAD back past ten tags, which costs what `git describe` costs (a quarter of a
    /// second of CPU on git/git's 82k commits), so it is asked for, not done by default.
    pub describe: bool,
    /// Open a repository owned by another user (git's `safe.directory` rule bypassed).
    pub trust_repo_owner: bool,
    /// Also compute the uncommitted diff (returned in [`Provenance::patch`]).
    pub patch: bool,
    /// The patch's size cap in bytes.
    pub patch_cap: usize,
    /// A user-wide git attributes file exists (`~/.config/git/attributes`).
    pub global_attributes: bool,
}

impl Options {
    pub fn new(path: impl Into<PathBuf>) -> Options {
        Options {
            path: path.into(),
            scope: Scope::Code,
            deadline: Duration::from_secs(10),
            extras: true,
            describe: false,
            trust_repo_owner: false,
            patch: false,
            patch_cap: 10 * 1024 * 1024,
            global_attributes: false,
        }
    }
}

/// Tells OpenSSL, before libgit2 starts it, to skip reading its configuration file and loading
/// its error strings: 2.6M instructions, a tenth of what a capture costs on git/git, for
/// nothing a capture uses (it makes no TLS connection; libgit2 hashes with its own SHA-1).
/// Process-wide and for good: only for a process that does nothing else with OpenSSL (the
/// `provenance` command); a library caller that does leaves OpenSSL as it is by not calling it.
#[allow(unsafe_code)]
pub fn skip_openssl_setup() {
    // `OPENSSL_INIT_*` (openssl/crypto.h and ssl.h, OpenSSL 1.1 and 3): each marks its stage
    // done without running it, so the `OPENSSL_init_ssl` calls of openssl-sys and libgit2
    // that follow find it done.
    const NO_LOAD_CRYPTO_STRINGS: u64 = 0x0000_0001;
    const NO_LOAD_CONFIG: u64 = 0x0000_0080;
    const NO_ATEXIT: u64 = 0x0008_0000;
    const NO_LOAD_SSL_STRINGS: u64 = 0x0010_0000;
    // SAFETY: OPENSSL_init_ssl may be called from any thread any number of times (its stages
    // run once per process, under OpenSSL's own locks); a null settings pointer is allowed.
    unsafe {
        openssl_sys::OPENSSL_init_ssl(
            NO_LOAD_CRYPTO_STRINGS | NO_LOAD_CONFIG | NO_ATEXIT | NO_LOAD_SSL_STRINGS,
            std::ptr::null(),
        );
    }
}

/// The one point in time every part of a capture must finish by.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(d: Duration) -> Deadline {
        Deadline(Instant::now() + d)
    }
    pub fn passed(&self) -> bool {
        Instant::now() >= self.0
    }
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

/// The largest commit object read (1 MiB; git's own are a few hundred bytes, a long message
/// a few KiB). Above it the commit id is still known (HEAD's target, a commit by its object
/// header) but its metadata and describe are `unknown`: nothing is inflated to find out.
pub(crate) const COMMIT_LIMIT: usize = 1024 * 1024;

/// What was captured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Provenance {
    /// The flat properties (Azure ML, MLflow and `provenance.git.*` names).
    pub properties: BTreeMap<String, String>,
    /// Why keys were left out, for the user (never secrets).
    pub notes: Vec<String>,
    /// A repository was found.
    pub in_repo: bool,
    /// The uncommitted diff (`git diff HEAD` without binary files and secret-looking paths).
    #[serde(skip)]
    pub patch: Option<Vec<u8>>,
}

impl Provenance {
    fn set(&mut self, k: &str, v: impl Into<String>) {
        let v = v.into();
        if !v.is_empty() {
            self.properties.insert(k.to_owned(), v);
        }
    }
}

/// `"True"`/`"False"` as Azure's `str(bool)`.
fn azure_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

fn mlflow_bool(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Captures the Git state of `opts.path`. Errors are for what the caller must fix (a path that
/// does not exist, a repository owned by another user, a damaged repository); "not a
/// repository" is not an error: no keys, and a note.
/// [`capture`] in a worker thread, given up `grace` after the deadline: the last line of the
/// deadline promise. Every walk checks the deadline itself, but a read keyclone cannot see
/// coming can still block inside libgit2 (a loose object or a ref file that is a FIFO, a file
/// on a hung network share). Then nothing is reported as known: an error, and the worker is
/// left blocked until the process exits.
pub fn capture_within(opts: &Options, env: &Env, grace: Duration) -> Result<Provenance> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (o, e) = (opts.clone(), env.clone());
    std::thread::Builder::new()
        .name("provenance".into())
        .spawn(move || {
            let _ = tx.send(capture(&o, &e));
        })
        .map_err(|e| Error::internal("could not start the provenance worker").with_source(e))?;
    match rx.recv_timeout(opts.deadline + grace) {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            ErrorKind::Io,
            format!(
                "reading the repository at `{}` did not finish within the deadline ({:.1} s): a file in it blocks reading (a FIFO or device where git expects a file?) or the disk hangs; no Git properties are reported",
                opts.path.display(),
                opts.deadline.as_secs_f64()
            ),
        )
        .hint("check the repository's `.git` folder with `git fsck`, or give a longer `--deadline`")),
    }
}

pub fn capture(opts: &Options, env: &Env) -> Result<Provenance> {
    // libgit2 re-hashes (SHA-1DC) every object it reads unless told not to: a third of the
    // describe walk, and of the fingerprint's status (the trees of HEAD). git does not re-hash
    // on reads either; the ids come from the object database's own index. Process-wide, as
    // for a clone (`git::tuning`): keyclone runs one command a process.
    git2::opts::strict_hash_verification(false);
    let mut p = Provenance::default();
    if env
        .get_str(crate::env::KEYCLONE_PROVENANCE)
        .is_some_and(|v| {
            v.eq_ignore_ascii_case("off") || v == "0" || v.eq_ignore_ascii_case("false")
        })
    {
        p.notes.push(format!(
            "capture is off (`{}`)",
            crate::env::KEYCLONE_PROVENANCE
        ));
        return Ok(p);
    }
    let meta = std::fs::metadata(&opts.path).map_err(|e| {
        Error::io("look at the code directory", &opts.path, e)
            .hint("pass the job's code directory as PATH")
    })?;
    if !meta.is_dir() {
        return Err(
            Error::usage(format!("`{}` is not a directory", opts.path.display()))
                .hint("pass the job's code directory (the folder holding its scripts)"),
        );
    }
    let deadline = Deadline::after(opts.deadline);
    let ceilings = open::ceilings(env);
    match open::open(opts, &ceilings)? {
        Some(repo) => {
            p.in_repo = true;
            from_repo(&repo, opts, &ceilings, &deadline, &mut p)?;
        }
        None => p.notes.push(format!(
            "`{}` is not in a Git repository: no Git properties",
            opts.path.display()
        )),
    }
    overrides(env, &mut p);
    Ok(p)
}

fn from_repo(
    repo: &git2::Repository,
    opts: &Options,
    ceilings: &[PathBuf],
    deadline: &Deadline,
    p: &mut Provenance,
) -> Result<()> {
    let (branch, head_commit) = head(repo, p)?;
    let commit = head_commit.map(|(c, _)| c);
    let readable = head_commit.is_some_and(|(_, r)| r);
    if let Some(b) = &branch {
        p.set("azureml.git.branch", b.clone());
        p.set("mlflow.source.git.branch", b.clone());
    }
    if let Some(c) = commit {
        p.set("azureml.git.commit", c.to_string());
        p.set("mlflow.source.git.commit", c.to_string());
    }
    open::remote(repo, branch.as_deref(), opts.extras, p);

    // Dirty: the scan runs in its own thread while the history work below goes on.
    let workdir = repo.workdir().map(Path::to_path_buf);
    let scope_path = workdir.as_ref().and_then(|wd| match opts.scope {
        Scope::Repo => None,
        Scope::Code => scan::relative_code_dir(wd, &opts.path),
    });
    let pending = workdir.as_ref().map(|_| {
        p.set("provenance.git.dirty_scope", opts.scope.name());
        scan::start(
            repo.path(),
            scope_path.clone(),
            opts.global_attributes,
            opts.extras,
        )
    });

    let mut described = None;
    if opts.extras {
        match commit {
            Some(c) if readable => {
                if opts.describe {
                    described = Some(describe::describe(repo, c, deadline));
                }
                if let Some(b) = &branch {
                    extras::upstream(repo, b, c, deadline, p);
                }
                extras::head_commit(repo, c, p);
            }
            Some(c) => {
                if opts.describe {
                    described = Some(Err(describe::Unknown::Unreadable(format!(
                        "commit {c} is larger than {} KiB, more than any git writes",
                        COMMIT_LIMIT / 1024
                    ))));
                }
                for k in extras::HEAD_KEYS {
                    p.set(&format!("provenance.git.{k}"), "unknown");
                }
                p.notes.push(format!(
                    "HEAD's commit is larger than {} KiB, so keyclone does not read it: its metadata is unknown (`git cat-file -s HEAD` shows its size)",
                    COMMIT_LIMIT / 1024
                ));
            }
            None => {}
        }
        extras::flags_and_neighbours(repo, ceilings, p);
    }

    let scanned = pending.map(|s| s.wait(deadline));
    if opts.extras {
        let damaged = matches!(scanned, Some(scan::Scan::Failed(_)));
        extras::submodules(repo, damaged, deadline, p);
    }
    let mut listed = None;
    let is_dirty = match scanned {
        Some(scan::Scan::Done {
            dirty,
            untracked,
            changes,
        }) => {
            listed = changes;
            p.set("azureml.git.dirty", azure_bool(dirty));
            p.set("mlflow.source.git.dirty", mlflow_bool(dirty));
            p.set("provenance.git.untracked", untracked.to_string());
            Some(dirty)
        }
        Some(scan::Scan::TimedOut) => {
            p.set("provenance.git.dirty", "unknown");
            p.notes.push(format!(
                "the status scan took longer than {} s: dirty is unknown (raise `--deadline`)",
                opts.deadline.as_secs_f32()
            ));
            None
        }
        Some(scan::Scan::Unreadable(why)) => {
            p.set("provenance.git.dirty", "unknown");
            p.notes.push(format!(
                "the status scan cannot read this repository ({why}): dirty is unknown (`git status` there can tell)"
            ));
            None
        }
        Some(scan::Scan::Failed(why)) => {
            p.notes
                .push(format!("the status scan failed ({why}): dirty is left out"));
            None
        }
        None => {
            p.notes
                .push("a bare repository has no working tree: dirty is left out".into());
            None
        }
    };

    match described {
        Some(Ok(d)) => match is_dirty {
            Some(true) => p.set("provenance.git.describe", format!("{d}-dirty")),
            Some(false) => p.set("provenance.git.describe", d),
            // `--dirty` cannot be answered: the description without it would be a guess.
            None if workdir.is_some() => p.set("provenance.git.describe", "unknown"),
            None => p.set("provenance.git.describe", d),
        },
        Some(Err(describe::Unknown::Deadline)) => {
            p.set("provenance.git.describe", "unknown");
            p.notes.push(format!(
                "describing the commit took longer than the deadline ({} s): describe is unknown",
                opts.deadline.as_secs_f32()
            ));
        }
        Some(Err(describe::Unknown::Unreadable(why))) => {
            p.set("provenance.git.describe", "unknown");
            p.notes.push(format!(
                "the history cannot be read ({why}): describe is unknown"
            ));
        }
        None => {}
    }
    if opts.extras
        && let Some(wd) = &workdir
    {
        let f = match is_dirty {
            Some(dirty) => fingerprint::fingerprint(
                repo,
                wd,
                commit,
                dirty.then_some(listed),
                scope_path.as_deref(),
                deadline,
            ),
            None => Err("dirty is not known".into()),
        };
        match f {
            Ok(h) => p.set("provenance.git.fingerprint", h),
            Err(why) => {
                p.set("provenance.git.fingerprint", "unknown");
                p.notes
                    .push(format!("the working-tree fingerprint is unknown: {why}"));
            }
        }
    }
    if opts.patch && commit.is_some() {
        p.patch = Some(patch::patch(repo, opts.patch_cap, &mut p.notes)?);
    }
    Ok(())
}

/// The branch (left out when detached) and the commit (left out when unborn), with whether the
/// commit is small enough to read ([`COMMIT_LIMIT`]).
type Head = (Option<String>, Option<(git2::Oid, bool)>);

fn head(repo: &git2::Repository, p: &mut Provenance) -> Result<Head> {
    let mut branch: Option<String> = None;
    let mut commit = None;
    match repo.head() {
        Ok(head) => {
            commit = head.target().and_then(|t| guard::commit_of(repo, t));
            if head.is_branch() {
                match head.shorthand() {
                    Ok(b) => branch = Some(b.to_owned()),
                    Err(_) => p
                        .notes
                        .push("the branch name is not valid UTF-8: left out".into()),
                }
            } else {
                p.set("provenance.git.head_detached", "true");
                p.notes
                    .push("HEAD is detached (no branch): the branch is left out".into());
            }
        }
        Err(e) if e.code() == git2::ErrorCode::UnbornBranch => {
            // What `git symbolic-ref --short HEAD` prints for a branch with no commit yet.
            if let Ok(r) = repo.find_reference("HEAD")
                && let Ok(Some(t)) = r.symbolic_target()
            {
                branch = Some(t.strip_prefix("refs/heads/").unwrap_or(t).to_owned());
            }
            p.notes
                .push("the branch has no commit yet: the commit is left out".into());
        }
        Err(e) => {
            return Err(Error::new(
                ErrorKind::Config,
                format!("the repository's HEAD cannot be read: {}", e.message()),
            )
            .hint("check it with `git status`"));
        }
    }
    Ok((branch, commit))
}
/// `AZUREML_GIT_*` win over what Git says, field by field, as Azure ML does (also outside a
/// repository); the repository URL is sanitized like any other.
fn overrides(env: &Env, p: &mut Provenance) {
    let get = |k: &str| {
        env.get_str(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    if let Some(u) = get(AZUREML_GIT_REPOSITORY_URI) {
        match sanitize_url(&u) {
            Some(s) => {
                p.set("azureml.git.repository_uri", s.clone());
                p.set("mlflow.source.git.repoURL", s);
            }
            None => p.notes.push(format!(
                "`{AZUREML_GIT_REPOSITORY_URI}` is not a URL: ignored"
            )),
        }
    }
    if let Some(b) = get(AZUREML_GIT_BRANCH) {
        p.properties.remove("provenance.git.head_detached");
        p.set("azureml.git.branch", b.clone());
        p.set("mlflow.source.git.branch", b);
    }
    if let Some(c) = get(AZUREML_GIT_COMMIT) {
        p.set("azureml.git.commit", c.clone());
        p.set("mlflow.source.git.commit", c);
    }
    if let Some(d) = get(AZUREML_GIT_DIRTY) {
        let dirty = d == "1" || d.eq_ignore_ascii_case("true");
        p.properties.remove("provenance.git.dirty");
        p.set("azureml.git.dirty", azure_bool(dirty));
        p.set("mlflow.source.git.dirty", mlflow_bool(dirty));
    }
    if let Some(v) = get(AZUREML_GIT_BUILD_ID) {
        p.set("azureml.git.build_id", v);
    }
    if let Some(v) = get(AZUREML_GIT_BUILD_URI) {
        p.set("azureml.git.build_uri", v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_overrides_apply_field_by_field_with_azures_parsing() {
        let env = Env::from_pairs([
            (AZUREML_GIT_BRANCH, "release"),
            (AZUREML_GIT_DIRTY, "1"),
            (
                AZUREML_GIT_REPOSITORY_URI,
                "https://tok@dev.azure.com/o/p/_git/r",
            ),
            (AZUREML_GIT_COMMIT, ""),
        ]);
        let mut p = Provenance::default();
        p.set("azureml.git.commit", "abc");
        overrides(&env, &mut p);
        assert_eq!(p.properties["azureml.git.branch"], "release");
        assert_eq!(p.properties["mlflow.source.git.branch"], "release");
        assert_eq!(p.properties["azureml.git.dirty"], "True");
        assert_eq!(p.properties["mlflow.source.git.dirty"], "true");
        assert_eq!(
            p.properties["azureml.git.commit"], "abc",
            "empty means unset"
        );
        assert_eq!(
            p.properties["azureml.git.repository_uri"],
            "https://dev.azure.com/o/p/_git/r"
        );
    }
}
