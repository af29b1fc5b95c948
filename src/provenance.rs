//! The Git state of a training job, as Azure ML and MLflow record it, through libgit2 (no git
//! binary): repository URL (credentials removed), branch, commit, dirty, plus what the peers
//! miss (`provenance.git.*`). The contract (README, "`keyclone provenance`"): flat string
//! properties, a key left out rather than emitted empty, `AZUREML_GIT_*` overrides honoured
//! field by field, `KEYCLONE_PROVENANCE=off` turns capture off.
//!
//! Library use: [`capture`] with [`Options`]; the result's `properties` are ready to attach to
//! a job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};

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
    /// The longest the status scan may take; past it, dirty is "unknown".
    pub deadline: Duration,
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
            trust_repo_owner: false,
            patch: false,
            patch_cap: 10 * 1024 * 1024,
            global_attributes: false,
        }
    }
}

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

/// A remote URL with credentials removed, or `None` when it cannot be parsed (never printed
/// raw): user-info dropped for http(s)/git/ftp(s) (tokens sit in the user slot), the password
/// dropped for ssh, query and fragment dropped; scp-like `user@host:path` and local paths kept.
pub fn sanitize_url(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.chars().any(char::is_control) {
        return None;
    }
    if let Some((scheme, _)) = raw.split_once("://") {
        let mut u = url::Url::parse(raw).ok()?;
        match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" | "git" | "ftp" | "ftps" => {
                u.set_username("").ok()?;
                u.set_password(None).ok()?;
            }
            "ssh" | "git+ssh" | "ssh+git" => {
                u.set_password(None).ok()?;
            }
            "file" => {}
            _ => return None,
        }
        u.set_query(None);
        u.set_fragment(None);
        return Some(u.to_string());
    }
    // scp-like (`user@host:path`) has no password slot; a local path has no credentials.
    // A `user:secret@host:path` is not valid scp syntax, but drop the secret if someone wrote it.
    match raw.split_once('@') {
        Some((userinfo, rest)) if userinfo.contains(':') && !userinfo.contains('/') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            Some(format!("{user}@{rest}"))
        }
        _ => Some(raw.to_owned()),
    }
}

/// Captures the Git state of `opts.path`. Errors are for what the caller must fix (a path that
/// does not exist, a repository owned by another user, a damaged repository); "not a
/// repository" is not an error: no keys, and a note.
pub fn capture(opts: &Options, env: &Env) -> Result<Provenance> {
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
    match open(opts, env)? {
        Some(repo) => {
            p.in_repo = true;
            from_repo(&repo, opts, &mut p)?;
        }
        None => p.notes.push(format!(
            "`{}` is not in a Git repository: no Git properties",
            opts.path.display()
        )),
    }
    overrides(env, &mut p);
    Ok(p)
}

fn open(opts: &Options, env: &Env) -> Result<Option<git2::Repository>> {
    let ceilings: Vec<PathBuf> = env
        .get(crate::env::GIT_CEILING_DIRECTORIES)
        .map(|v| {
            std::env::split_paths(v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if opts.trust_repo_owner {
        set_owner_validation(false)?;
    }
    let r = git2::Repository::open_ext(&opts.path, git2::RepositoryOpenFlags::empty(), &ceilings);
    if opts.trust_repo_owner {
        set_owner_validation(true)?;
    }
    match r {
        Ok(repo) => Ok(Some(repo)),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) if e.code() == git2::ErrorCode::Owner => {
            let dir = git2::Repository::discover(&opts.path)
                .ok()
                .and_then(|r| r.workdir().map(Path::to_path_buf))
                .unwrap_or_else(|| opts.path.clone());
            Err(Error::refused(format!(
                "the repository at `{}` belongs to another user, so git (and keyclone) do not trust its configuration (CVE-2022-24765)",
                opts.path.display()
            ))
            .hint(format!(
                "if you trust that user: `git config --global --add safe.directory {}`",
                dir.display()
            ))
            .hint("or pass `--trust-repo-owner` for this run only (its hooks and config could run code when git is used there)"))
        }
        Err(e) => Err(Error::new(
            ErrorKind::Config,
            format!("the Git repository at or above `{}` cannot be read: {}", opts.path.display(), e.message()),
        )
        .hint("check it with `git status` there; a damaged `.git` may need `git fsck` or a fresh clone")),
    }
}

#[allow(unsafe_code)]
fn set_owner_validation(on: bool) -> Result<()> {
    // SAFETY: libgit2's global option; keyclone's provenance runs single-threaded at this
    // point (no other libgit2 call in flight), as the option requires.
    unsafe { git2::opts::set_verify_owner_validation(on) }
        .map_err(|e| Error::internal("could not set libgit2's owner check").with_source(e))
}

fn from_repo(repo: &git2::Repository, opts: &Options, p: &mut Provenance) -> Result<()> {
    // Branch and commit.
    let mut branch: Option<String> = None;
    let mut commit: Option<git2::Oid> = None;
    match repo.head() {
        Ok(head) => {
            commit = head.peel_to_commit().ok().map(|c| c.id());
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
    if let Some(b) = &branch {
        p.set("azureml.git.branch", b.clone());
        p.set("mlflow.source.git.branch", b.clone());
    }
    if let Some(c) = commit {
        p.set("azureml.git.commit", c.to_string());
        p.set("mlflow.source.git.commit", c.to_string());
    }

    // The remote, chosen as git chooses it.
    let names: Vec<String> = repo
        .remotes()
        .map(|r| r.iter().flatten().flatten().map(str::to_owned).collect())
        .unwrap_or_default();
    let cfg = repo.config().ok();
    let from_branch = branch.as_ref().and_then(|b| {
        cfg.as_ref()
            .and_then(|c| c.get_string(&format!("branch.{b}.remote")).ok())
            .filter(|r| names.contains(r))
    });
    let chosen = from_branch
        .or_else(|| names.iter().find(|n| *n == "origin").cloned())
        .or_else(|| (names.len() == 1).then(|| names[0].clone()));
    let mut all = Vec::new();
    for n in &names {
        if let Ok(r) = repo.find_remote(n)
            && let Ok(u) = r.url()
            && let Some(s) = sanitize_url(u)
        {
            all.push(format!("{n}={s}"));
        }
    }
    match chosen {
        Some(name) => match repo
            .find_remote(&name)
            .ok()
            .and_then(|r| r.url().ok().map(str::to_owned))
        {
            Some(raw) => match sanitize_url(&raw) {
                Some(u) => {
                    p.set("azureml.git.repository_uri", u.clone());
                    p.set("mlflow.source.git.repoURL", u);
                }
                None => p.notes.push(format!(
                    "the URL of remote `{name}` cannot be parsed: left out (not printed)"
                )),
            },
            None => p
                .notes
                .push(format!("remote `{name}` has no usable URL: left out")),
        },
        None if names.is_empty() => p
            .notes
            .push("the repository has no remote: the URL is left out".into()),
        None => p.notes.push(
            "several remotes and none is `origin` or the branch's: the URL is left out".into(),
        ),
    }
    if names.len() > 1 {
        p.set("provenance.git.remotes", all.join(" "));
    }

    // Dirty, within the deadline.
    let workdir = repo.workdir().map(Path::to_path_buf);
    let dirty = match &workdir {
        Some(wd) => {
            let scope_path = match opts.scope {
                Scope::Repo => None,
                Scope::Code => relative_code_dir(wd, &opts.path),
            };
            p.set("provenance.git.dirty_scope", opts.scope.name());
            scan(
                repo.path(),
                scope_path,
                opts.deadline,
                opts.global_attributes,
            )
        }
        None => {
            p.notes
                .push("a bare repository has no working tree: dirty is left out".into());
            Scan::NoWorkdir
        }
    };
    let is_dirty = match dirty {
        Scan::Done { dirty, untracked } => {
            p.set("azureml.git.dirty", azure_bool(dirty));
            p.set("mlflow.source.git.dirty", mlflow_bool(dirty));
            p.set("provenance.git.untracked", untracked.to_string());
            Some(dirty)
        }
        Scan::TimedOut => {
            p.set("provenance.git.dirty", "unknown");
            p.notes.push(format!(
                "the status scan took longer than {} s: dirty is unknown (raise `--deadline`)",
                opts.deadline.as_secs_f32()
            ));
            None
        }
        Scan::Failed(why) => {
            p.notes
                .push(format!("the status scan failed ({why}): dirty is left out"));
            None
        }
        Scan::NoWorkdir => None,
    };

    // Beyond the peers.
    if let Some(c) = commit {
        let mut dopts = git2::DescribeOptions::new();
        dopts.describe_tags().show_commit_oid_as_fallback(true);
        // The commit's description (`Repository::describe` would scan the working tree again).
        if let Ok(obj) = repo.find_object(c, None)
            && let Ok(d) = obj.describe(&dopts)
            && let Ok(s) = d.format(None)
        {
            let suffix = if is_dirty == Some(true) { "-dirty" } else { "" };
            p.set("provenance.git.describe", format!("{s}{suffix}"));
        }
        if let Some(b) = &branch
            && let Ok(local) = repo.find_branch(b, git2::BranchType::Local)
        {
            match local.upstream() {
                Ok(up) => {
                    if let Ok(Some(name)) = up.name() {
                        p.set("provenance.git.upstream", name);
                    }
                    if let Some(uid) = up.get().target()
                        && let Ok((ahead, behind)) = repo.graph_ahead_behind(c, uid)
                    {
                        p.set("provenance.git.ahead", ahead.to_string());
                        p.set("provenance.git.behind", behind.to_string());
                        if ahead > 0 {
                            p.set("provenance.git.unpushed", "true");
                            p.notes.push(format!(
                                "{ahead} commit(s) are not pushed: the commit may not exist on the remote yet"
                            ));
                        } else {
                            p.set("provenance.git.unpushed", "false");
                        }
                    }
                }
                Err(_) => {
                    p.set("provenance.git.unpushed", "unknown");
                    p.notes.push("the branch has no upstream: keyclone cannot tell whether the commit is on the remote".into());
                }
            }
        }
    }
    if repo.is_shallow() {
        p.set("provenance.git.shallow", "true");
    }
    if repo.is_worktree() {
        p.set("provenance.git.worktree", "true");
    }
    // (`submodules()` reads the whole index and HEAD tree: only when there are submodules.)
    let has_modules = workdir
        .as_ref()
        .is_some_and(|w| w.join(".gitmodules").exists());
    if has_modules && let Ok(subs) = repo.submodules() {
        for s in subs {
            if let (Some(path), Some(id)) = (s.path().to_str(), s.workdir_id().or(s.head_id())) {
                p.set(&format!("provenance.git.submodule.{path}"), id.to_string());
            }
        }
    }
    if opts.patch && commit.is_some() {
        p.patch = Some(patch(repo, opts.patch_cap, &mut p.notes)?);
    }
    Ok(())
}

/// The code directory relative to the working tree (`None` when it is the working tree).
fn relative_code_dir(workdir: &Path, code: &Path) -> Option<String> {
    let wd = workdir.canonicalize().ok()?;
    let code = code.canonicalize().ok()?;
    let rel = code.strip_prefix(&wd).ok()?;
    if rel.as_os_str().is_empty() {
        None
    } else {
        Some(rel.to_string_lossy().into_owned())
    }
}

enum Scan {
    Done { dirty: bool, untracked: usize },
    TimedOut,
    Failed(String),
    NoWorkdir,
}

/// The status scan in a worker thread (libgit2's status cannot be cancelled): untracked files
/// counted (not recursing into untracked folders), ignored files not, submodules included; the
/// index is never written.
fn scan(
    git_dir: &Path,
    scope: Option<String>,
    deadline: Duration,
    global_attributes: bool,
) -> Scan {
    let (tx, rx) = mpsc::channel();
    let git_dir = git_dir.to_owned();
    let spawned = std::thread::Builder::new()
        .name("keyclone-status".into())
        .spawn(move || {
            let r = (|| -> std::result::Result<(bool, usize), git2::Error> {
                let repo = git2::Repository::open(&git_dir)?;
                // The fast scan; what it does not handle goes to libgit2's full status.
                match crate::git::status::scan(&repo, scope.as_deref(), global_attributes) {
                    Ok(d) => return Ok((d.dirty, d.untracked)),
                    Err(u) if u.damaged => {
                        return Err(git2::Error::from_str(&format!(
                            "the git index `{}` is damaged: {}; `git status` refuses it too (rebuild it from HEAD with `rm .git/index && git reset`, which drops what was staged)",
                            git_dir.join("index").display(),
                            u.reason
                        )));
                    }
                    Err(_) => {}
                }
                let mut o = git2::StatusOptions::new();
                o.include_untracked(true)
                    .recurse_untracked_dirs(false)
                    .include_ignored(false)
                    .exclude_submodules(false)
                    .update_index(false)
                    .renames_head_to_index(false)
                    .renames_index_to_workdir(false);
                if let Some(s) = &scope {
                    o.pathspec(s).disable_pathspec_match(true);
                }
                let st = repo.statuses(Some(&mut o))?;
                let untracked = st
                    .iter()
                    .filter(|e| e.status().contains(git2::Status::WT_NEW))
                    .count();
                Ok((!st.is_empty(), untracked))
            })();
            let _ = tx.send(r);
        });
    if spawned.is_err() {
        return Scan::Failed("could not start a thread".into());
    }
    match rx.recv_timeout(deadline) {
        Ok(Ok((dirty, untracked))) => Scan::Done { dirty, untracked },
        Ok(Err(e)) => Scan::Failed(e.message().to_owned()),
        Err(_) => Scan::TimedOut,
    }
}

/// Paths whose content looks like a secret: never put into a patch.
pub fn secret_looking(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    name == ".env"
        || name.starts_with(".env.")
        || name == ".netrc"
        || name == ".pgpass"
        || name == "credentials"
        || name.starts_with("id_rsa")
        || name.starts_with("id_ed25519")
        || name.starts_with("id_ecdsa")
        || [".pem", ".key", ".p12", ".pfx", ".jks", ".keystore"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// `git diff HEAD` (staged and unstaged changes to tracked files), in patch form, without
/// binary files and secret-looking paths, cut at `cap` bytes.
fn patch(repo: &git2::Repository, cap: usize, notes: &mut Vec<String>) -> Result<Vec<u8>> {
    let head = repo
        .head()
        .and_then(|h| h.peel_to_tree())
        .map_err(|e| Error::internal("HEAD has no tree").with_source(e))?;
    let mut o = git2::DiffOptions::new();
    o.include_untracked(false).ignore_submodules(true);
    let diff = repo
        .diff_tree_to_workdir_with_index(Some(&head), Some(&mut o))
        .map_err(|e| Error::internal("could not compute the diff").with_source(e))?;
    let mut out = Vec::new();
    let mut skipped_secret = Vec::new();
    let mut skipped_binary = 0usize;
    let mut truncated = false;
    for (i, delta) in diff.deltas().enumerate() {
        let path = delta
            .new_file()
            .path()
            .or_else(|| delta.old_file().path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if secret_looking(&path) {
            skipped_secret.push(path);
            continue;
        }
        let Ok(Some(mut pp)) = git2::Patch::from_diff(&diff, i) else {
            continue;
        };
        if pp.delta().flags().is_binary() || delta.flags().is_binary() {
            skipped_binary += 1;
            continue;
        }
        let Ok(buf) = pp.to_buf() else { continue };
        if out.len() + buf.len() > cap {
            truncated = true;
            break;
        }
        out.extend_from_slice(&buf);
    }
    if !skipped_secret.is_empty() {
        notes.push(format!(
            "the patch leaves out {} secret-looking file(s): {}",
            skipped_secret.len(),
            skipped_secret.join(", ")
        ));
    }
    if skipped_binary > 0 {
        notes.push(format!(
            "the patch leaves out {skipped_binary} binary file(s)"
        ));
    }
    if truncated {
        notes.push(format!("the patch stops at the size cap ({cap} bytes)"));
    }
    Ok(out)
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
    fn credentials_never_survive_sanitizing() {
        let cases = [
            (
                "https://ghp_TOKEN@github.com/o/r.git",
                Some("https://github.com/o/r.git"),
            ),
            (
                "https://oauth2:glpat-x@gitlab.com/g/r.git?x=1#f",
                Some("https://gitlab.com/g/r.git"),
            ),
            ("http://user:pw@host/r", Some("http://host/r")),
            (
                "ssh://git:secret@host:2222/r.git",
                Some("ssh://git@host:2222/r.git"),
            ),
            ("git@github.com:o/r.git", Some("git@github.com:o/r.git")),
            ("/srv/git/r.git", Some("/srv/git/r.git")),
            ("https://host/r\nevil", None),
            ("", None),
            ("weird://x", None),
        ];
        for (raw, want) in cases {
            assert_eq!(sanitize_url(raw).as_deref(), want, "{raw:?}");
        }
    }

    #[test]
    fn secret_looking_paths() {
        for p in [
            ".env",
            "conf/.env.local",
            "certs/server.pem",
            "id_rsa",
            "a/b.key",
            ".netrc",
        ] {
            assert!(secret_looking(p), "{p}");
        }
        for p in ["train.py", "environment.yml", "keys.md", "README"] {
            assert!(!secret_looking(p), "{p}");
        }
    }

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
