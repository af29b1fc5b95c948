//! Finding the repository (ceilings, the owner check) and its remote, chosen as git chooses it,
//! with credentials removed from every URL.

use std::path::{Path, PathBuf};

use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};

use super::{Options, Provenance};

/// `$GIT_CEILING_DIRECTORIES`: the folders above which no repository is searched for.
pub(super) fn ceilings(env: &Env) -> Vec<PathBuf> {
    env.get(crate::env::GIT_CEILING_DIRECTORIES)
        .map(|v| {
            std::env::split_paths(v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn open(opts: &Options, ceilings: &[PathBuf]) -> Result<Option<git2::Repository>> {
    super::guard::before_open(&opts.path)?;
    if opts.trust_repo_owner {
        set_owner_validation(false)?;
    }
    let r = git2::Repository::open_ext(&opts.path, git2::RepositoryOpenFlags::empty(), ceilings);
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

/// The remote URL (`branch.<b>.remote`, else `origin`, else the only one) and, when there are
/// several, all of them (`provenance.git.remotes`, extras only).
pub(super) fn remote(
    repo: &git2::Repository,
    branch: Option<&str>,
    extras: bool,
    p: &mut Provenance,
) {
    let names: Vec<String> = repo
        .remotes()
        .map(|r| r.iter().flatten().flatten().map(str::to_owned).collect())
        .unwrap_or_default();
    let from_branch = branch.and_then(|b| {
        repo.config()
            .ok()
            .and_then(|c| c.get_string(&format!("branch.{b}.remote")).ok())
            .filter(|r| names.contains(r))
    });
    let chosen = from_branch
        .or_else(|| names.iter().find(|n| *n == "origin").cloned())
        .or_else(|| (names.len() == 1).then(|| names[0].clone()));
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
    if extras && names.len() > 1 {
        let all: Vec<String> = names
            .iter()
            .filter_map(|n| {
                let r = repo.find_remote(n).ok()?;
                let s = sanitize_url(r.url().ok()?)?;
                Some(format!("{n}={s}"))
            })
            .collect();
        p.set("provenance.git.remotes", all.join(" "));
    }
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
}
