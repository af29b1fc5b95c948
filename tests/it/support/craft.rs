//! Writes raw git objects into a bare repository, exactly as given: `git hash-object --literally`
//! stores a tree without checking its names, so nothing on the way repairs a hostile tree (a
//! name `..`, `.git`, `/abs`, a duplicate entry). The served repository then holds what an
//! attacker's server would send.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::require;

/// A tree entry's mode as git writes it in a tree object.
pub const TREE: &str = "40000";
pub const FILE: &str = "100644";
pub const EXEC: &str = "100755";
pub const LINK: &str = "120000";
pub const GITLINK: &str = "160000";

/// The crafting helper for one bare repository.
pub struct Craft {
    pub repo: PathBuf,
}

impl Craft {
    pub fn new(repo: &Path) -> Craft {
        Craft {
            repo: repo.to_path_buf(),
        }
    }

    fn git(&self, args: &[&str], input: &[u8]) -> String {
        let mut child = Command::new(require("git", "git"))
            .current_dir(&self.repo)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &self.repo)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Mallory")
            .env("GIT_AUTHOR_EMAIL", "mallory@example.com")
            .env("GIT_COMMITTER_NAME", "Mallory")
            .env("GIT_COMMITTER_EMAIL", "mallory@example.com")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// A blob with these bytes.
    pub fn blob(&self, data: &[u8]) -> String {
        self.git(&["hash-object", "-w", "--stdin"], data)
    }

    /// A tree with exactly these entries (mode, name, object id), in the order given.
    pub fn tree(&self, entries: &[(&str, &[u8], &str)]) -> String {
        let mut raw = Vec::new();
        for (mode, name, id) in entries {
            raw.extend_from_slice(mode.as_bytes());
            raw.push(b' ');
            raw.extend_from_slice(name);
            raw.push(0);
            raw.extend_from_slice(&hex(id));
        }
        self.git(
            &["hash-object", "--literally", "-t", "tree", "-w", "--stdin"],
            &raw,
        )
    }

    /// A commit of `tree`, made the tip of `main` (the served default branch).
    pub fn publish(&self, tree: &str) -> String {
        let commit = self.git(&["commit-tree", tree, "-m", "crafted"], b"");
        self.git(&["update-ref", "refs/heads/main", &commit], b"");
        commit
    }
}

impl Craft {
    /// Keeps `commit` reachable from `refs/heads/NAME` (a submodule's commit must be served).
    pub fn branch(&self, name: &str, commit: &str) {
        self.git(&["update-ref", &format!("refs/heads/{name}"), commit], b"");
    }
}

fn hex(id: &str) -> Vec<u8> {
    (0..id.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&id[i..i + 2], 16).unwrap())
        .collect()
}
