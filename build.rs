//! Names the commit keyclone is built from, for `keyclone --version` (`KEYCLONE_COMMIT`).
//!
//! In order: `KEYCLONE_BUILD_COMMIT` from the environment (a release build from a tarball sets
//! it); `git rev-parse HEAD` when the source is a Git checkout; the `git.sha1` that
//! `cargo package` writes into `.cargo_vcs_info.json`; else `unknown`. Never fails the build:
//! a missing `git`, a broken checkout or an unreadable file all give `unknown`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=KEYCLONE_BUILD_COMMIT");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = std::env::var("KEYCLONE_BUILD_COMMIT")
        .ok()
        .and_then(|c| hex_commit(&c))
        .or_else(|| from_git(&dir))
        .or_else(|| from_vcs_info(&dir))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=KEYCLONE_COMMIT={commit}");
}

/// A commit id as 7 to 40 hex digits, shortened to 12; anything else is no commit.
fn hex_commit(text: &str) -> Option<String> {
    let t = text.trim();
    let ok = (7..=40).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| t[..t.len().min(12)].to_ascii_lowercase())
}

/// `git rev-parse HEAD` when `dir` has its own `.git` (a folder, or a worktree's file), so a
/// tarball unpacked inside some other repository does not take that repository's commit.
fn from_git(dir: &Path) -> Option<String> {
    if !dir.join(".git").exists() {
        return None;
    }
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = hex_commit(&git(&["rev-parse", "--verify", "-q", "HEAD"])?)?;
    // Rebuild the version when HEAD moves: HEAD itself (a checkout) and the branch it names (a
    // commit), both in the worktree's own git directory or the common one.
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let git_dir = PathBuf::from(git_dir);
        println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let common = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
                .map_or_else(|| git_dir.clone(), PathBuf::from);
            for base in [&git_dir, &common] {
                let r = base.join(&branch);
                if r.exists() {
                    println!("cargo:rerun-if-changed={}", r.display());
                }
            }
            let packed = common.join("packed-refs");
            if packed.exists() {
                println!("cargo:rerun-if-changed={}", packed.display());
            }
        }
    }
    Some(commit)
}

/// The `"sha1": "..."` of `.cargo_vcs_info.json` (a crate from `cargo package`).
fn from_vcs_info(dir: &Path) -> Option<String> {
    let path = dir.join(".cargo_vcs_info.json");
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let text = std::fs::read_to_string(path).ok()?;
    let after = &text[text.find("\"sha1\"")? + "\"sha1\"".len()..];
    let start = after.find('"')? + 1;
    let len = after[start..].find('"')?;
    hex_commit(&after[start..start + len])
}
