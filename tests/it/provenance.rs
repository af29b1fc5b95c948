//! `keyclone provenance` with the real git as the oracle: for each state of the edge-case
//! table, keyclone's values equal what `git ls-remote --get-url`, `git symbolic-ref --short
//! HEAD`, `git rev-parse HEAD` and `git status --porcelain` say (after sanitising).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::support::git::git;
use crate::support::{Out, Sandbox};

pub struct Repo {
    pub sb: Sandbox,
    pub dir: PathBuf,
}

/// Adds a submodule `lib` (a repository `libsrc` beside, over file://) and commits it.
pub fn add_submodule(r: &Repo) {
    let sub_src = r.sb.root.path().join("libsrc");
    std::fs::create_dir(&sub_src).unwrap();
    git(&sub_src, &["init", "-q", "-b", "main"]).ok();
    write(&sub_src.join("lib.py"), "l = 1\n");
    git(&sub_src, &["add", "-A"]).ok();
    git(&sub_src, &["commit", "-q", "-m", "lib"]).ok();
    r.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        sub_src.to_str().unwrap(),
        "lib",
    ])
    .ok();
    r.git(&["commit", "-q", "-m", "sub"]).ok();
}

pub fn write(p: &Path, text: &str) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(p, text).unwrap();
}

impl Repo {
    /// A repository with two commits, files in folders and a remote `origin`.
    pub fn new() -> Repo {
        let sb = Sandbox::new();
        let dir = sb.root.path().join("work");
        std::fs::create_dir(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "main"]).ok();
        write(&dir.join("README.md"), "# r\n");
        write(&dir.join("src/train.py"), "print('x')\n");
        write(&dir.join("src/data/load.py"), "x = 1\n");
        write(&dir.join(".gitignore"), "*.log\nbuild/\n");
        git(&dir, &["add", "-A"]).ok();
        git(&dir, &["commit", "-q", "-m", "one"]).ok();
        write(&dir.join("src/model.py"), "m = 2\n");
        git(&dir, &["add", "-A"]).ok();
        git(&dir, &["commit", "-q", "-m", "two"]).ok();
        git(
            &dir,
            &[
                "remote",
                "add",
                "origin",
                "https://github.com/example/r.git",
            ],
        )
        .ok();
        Repo { sb, dir }
    }

    pub fn git(&self, args: &[&str]) -> Out {
        git(&self.dir, args)
    }

    /// keyclone's properties for `path` (relative to the repository).
    pub fn ours(&self, path: &str, extra: &[&str]) -> serde_json::Map<String, serde_json::Value> {
        let out = self.run(path, extra);
        out.ok();
        serde_json::from_str::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_object()
            .unwrap()
            .clone()
    }

    pub fn run(&self, path: &str, extra: &[&str]) -> Out {
        let mut cmd = self.sb.cmd();
        cmd.arg("provenance")
            .arg(self.dir.join(path))
            .args(extra)
            .env("GIT_CEILING_DIRECTORIES", self.sb.root.path());
        self.sb.run_cmd(cmd)
    }
}

/// What Azure's five git commands say, run in `dir`.
pub struct Theirs {
    pub url: Option<String>,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub dirty: bool,
    pub untracked: usize,
}

pub fn theirs(dir: &Path) -> Theirs {
    let opt = |o: Out| (o.code == 0).then(|| o.stdout.trim().to_owned());
    let status = git(dir, &["status", "--porcelain", "."]);
    status.ok();
    Theirs {
        url: opt(git(dir, &["ls-remote", "--get-url"])).filter(|u| u != "origin"),
        branch: opt(git(dir, &["symbolic-ref", "--short", "HEAD"])),
        commit: opt(git(dir, &["rev-parse", "--verify", "-q", "HEAD"])),
        dirty: !status.stdout.trim().is_empty(),
        untracked: status
            .stdout
            .lines()
            .filter(|l| l.starts_with("??"))
            .count(),
    }
}

pub fn get<'a>(m: &'a serde_json::Map<String, serde_json::Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(|v| v.as_str())
}

/// keyclone agrees with git on branch, commit, dirty (both formats), untracked count; the URL
/// is compared after `sanitize`.
#[track_caller]
pub fn agrees(r: &Repo, path: &str, sanitize: impl Fn(&str) -> String) {
    let ours = r.ours(path, &[]);
    let t = theirs(&r.dir.join(path));
    assert_eq!(
        get(&ours, "azureml.git.branch"),
        t.branch.as_deref(),
        "{ours:?}"
    );
    assert_eq!(get(&ours, "mlflow.source.git.branch"), t.branch.as_deref());
    assert_eq!(get(&ours, "azureml.git.commit"), t.commit.as_deref());
    assert_eq!(get(&ours, "mlflow.source.git.commit"), t.commit.as_deref());
    let url = t.url.as_deref().map(&sanitize);
    assert_eq!(get(&ours, "azureml.git.repository_uri"), url.as_deref());
    assert_eq!(get(&ours, "mlflow.source.git.repoURL"), url.as_deref());
    let (az, ml) = if t.dirty {
        ("True", "true")
    } else {
        ("False", "false")
    };
    assert_eq!(get(&ours, "azureml.git.dirty"), Some(az), "{ours:?}");
    assert_eq!(get(&ours, "mlflow.source.git.dirty"), Some(ml));
    assert_eq!(
        get(&ours, "provenance.git.untracked"),
        Some(t.untracked.to_string().as_str())
    );
    // A key is left out rather than emitted empty.
    assert!(
        ours.values()
            .all(|v| v.as_str().is_some_and(|s| !s.is_empty()))
    );
    // The answer came from the fast scan (not libgit2's fallback), and the scan agrees.
    let repo = git2::Repository::discover(r.dir.join(path)).unwrap();
    let scope = (!path.is_empty()).then_some(path);
    let fast = keyclone::git::status::scan(&repo, scope, false).expect("the fast scan answers");
    assert_eq!((fast.dirty, fast.untracked), (t.dirty, t.untracked));
}

pub fn same(u: &str) -> String {
    u.to_owned()
}

#[test]
fn working_tree_states_agree_with_git_status() {
    let r = Repo::new();
    agrees(&r, "", same); // clean

    // Modified, then the same size with the old mtime restored (only ctime tells).
    let p = r.dir.join("src/train.py");
    let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
    write(&p, "print('y')\n");
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert!(theirs(&r.dir).dirty);
    agrees(&r, "", same);
    r.git(&["checkout", "--", "src/train.py"]).ok();
    agrees(&r, "", same);
    // Touched but unchanged: stat differs, content is the same: clean.
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    agrees(&r, "", same);

    // Staged: a change, then a new file.
    write(&r.dir.join("src/model.py"), "m = 3\n");
    r.git(&["add", "src/model.py"]).ok();
    agrees(&r, "", same);
    r.git(&["reset", "-q", "--hard"]).ok();
    write(&r.dir.join("src/new.py"), "n = 1\n");
    r.git(&["add", "src/new.py"]).ok();
    agrees(&r, "", same);
    r.git(&["reset", "-q", "--hard"]).ok();
    agrees(&r, "", same);

    // Deleted.
    std::fs::remove_file(r.dir.join("src/data/load.py")).unwrap();
    agrees(&r, "", same);
    r.git(&["checkout", "--", "."]).ok();

    // Untracked only: a file, and a folder (counted once).
    write(&r.dir.join("notes.txt"), "n\n");
    write(&r.dir.join("scratch/a.py"), "a\n");
    write(&r.dir.join("scratch/deep/b.py"), "b\n");
    agrees(&r, "", same);
    std::fs::remove_file(r.dir.join("notes.txt")).unwrap();
    std::fs::remove_dir_all(r.dir.join("scratch")).unwrap();

    // Ignored only: clean.
    write(&r.dir.join("train.log"), "l\n");
    write(&r.dir.join("build/out.bin"), "b\n");
    write(&r.dir.join("src/data/run.log"), "l\n");
    agrees(&r, "", same);
    // A folder holding only ignored files is not shown by git.
    write(&r.dir.join("logs/a.log"), "l\n");
    agrees(&r, "", same);

    // A mode change.
    let p = r.dir.join("src/train.py");
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    agrees(&r, "", same);
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();

    // A symbolic link, tracked, then retargeted.
    std::os::unix::fs::symlink("train.py", r.dir.join("src/link.py")).unwrap();
    r.git(&["add", "-A"]).ok();
    r.git(&["commit", "-q", "-m", "link"]).ok();
    agrees(&r, "", same);
    std::fs::remove_file(r.dir.join("src/link.py")).unwrap();
    std::os::unix::fs::symlink("model.py", r.dir.join("src/link.py")).unwrap();
    agrees(&r, "", same);
}

#[test]
fn code_dir_below_the_root_and_the_scope_flag() {
    let r = Repo::new();
    write(&r.dir.join("README.md"), "changed outside src\n");
    agrees(&r, "src", same); // Azure's `git status --porcelain .` in src: clean
    let ours = r.ours("src", &[]);
    assert_eq!(get(&ours, "azureml.git.dirty"), Some("False"));
    assert_eq!(get(&ours, "provenance.git.dirty_scope"), Some("code"));
    let repo = r.ours("src", &["--scope", "repo"]);
    assert_eq!(get(&repo, "azureml.git.dirty"), Some("True"));
    write(&r.dir.join("src/data/new.csv"), "1\n");
    agrees(&r, "src", same);
    agrees(&r, "src/data", same);
}

#[test]
fn head_states_detached_unborn_and_branch_remotes() {
    let r = Repo::new();
    r.git(&["checkout", "-q", "--detach", "HEAD~1"]).ok();
    agrees(&r, "", same);
    let ours = r.ours("", &[]);
    assert_eq!(get(&ours, "provenance.git.head_detached"), Some("true"));
    assert!(!ours.contains_key("azureml.git.branch"));
    r.git(&["checkout", "-q", "main"]).ok();

    // Several remotes: the branch's remote wins over origin.
    r.git(&["remote", "add", "upstream", "git@github.com:up/r.git"])
        .ok();
    r.git(&["config", "branch.main.remote", "upstream"]).ok();
    agrees(&r, "", same);
    assert!(
        r.ours("", &[])["provenance.git.remotes"]
            .as_str()
            .unwrap()
            .contains("origin=https://github.com/example/r.git")
    );
    // No branch remote, no origin, two remotes: git gives no URL; neither do we.
    r.git(&["config", "--unset", "branch.main.remote"]).ok();
    r.git(&["remote", "rename", "origin", "other"]).ok();
    agrees(&r, "", same);
    // The only remote.
    r.git(&["remote", "remove", "upstream"]).ok();
    agrees(&r, "", same);
    // No remote.
    r.git(&["remote", "remove", "other"]).ok();
    agrees(&r, "", same);

    // insteadOf is applied, as git applies it.
    r.git(&["remote", "add", "origin", "gh:example/r.git"]).ok();
    r.git(&["config", "url.https://github.com/.insteadOf", "gh:"])
        .ok();
    agrees(&r, "", same);
    assert_eq!(
        get(&r.ours("", &[]), "azureml.git.repository_uri"),
        Some("https://github.com/example/r.git")
    );

    // Unborn: the branch is known, the commit is not.
    let sb = Sandbox::new();
    let fresh = sb.root.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    git(&fresh, &["init", "-q", "-b", "trunk"]).ok();
    write(&fresh.join("a.py"), "a\n");
    let u = Repo { sb, dir: fresh };
    agrees(&u, "", same);
    let ours = u.ours("", &[]);
    assert_eq!(get(&ours, "azureml.git.branch"), Some("trunk"));
    assert!(!ours.contains_key("azureml.git.commit"));
}

#[test]
fn credentials_never_leak_from_remote_urls() {
    let r = Repo::new();
    for (raw, clean) in [
        (
            "https://ghp_SECRETTOKEN@github.com/example/r.git",
            Some("https://github.com/example/r.git"),
        ),
        (
            "https://oauth2:glpat-SECRETTOKEN@gitlab.com/g/r.git?private_token=SECRETTOKEN#x",
            Some("https://gitlab.com/g/r.git"),
        ),
        (
            "http://user:SECRETTOKEN@git.corp/r.git",
            Some("http://git.corp/r.git"),
        ),
        (
            "ssh://git:SECRETTOKEN@host:2222/r.git",
            Some("ssh://git@host:2222/r.git"),
        ),
        ("https://host/r.git\nSECRETTOKEN", None),
    ] {
        r.git(&["config", "remote.origin.url", raw]).ok();
        let out = r.run("", &[]);
        out.ok();
        assert!(
            !out.stdout.contains("SECRETTOKEN") && !out.stderr.contains("SECRETTOKEN"),
            "a credential leaked for {raw:?}"
        );
        let m: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(m["azureml.git.repository_uri"].as_str(), clean, "{raw:?}");
        assert_eq!(m["mlflow.source.git.repoURL"].as_str(), clean, "{raw:?}");
        if clean.is_some() {
            // git says the same URL, before sanitising.
            assert_eq!(
                theirs(&r.dir)
                    .url
                    .as_deref()
                    .map(|u| u.contains("SECRETTOKEN")),
                Some(true)
            );
        }
    }
}

#[test]
fn submodules_worktrees_and_shallow_clones() {
    let r = Repo::new();
    // A submodule over file://, then a new commit checked out inside it.
    add_submodule(&r);
    agrees(&r, "", same);
    let ours = r.ours("", &[]);
    let sub_commit = git(&r.dir.join("lib"), &["rev-parse", "HEAD"]);
    assert_eq!(
        get(&ours, "provenance.git.submodule.lib"),
        Some(sub_commit.stdout.trim())
    );
    write(&r.dir.join("lib/lib.py"), "l = 2\n");
    agrees(&r, "", same);
    git(&r.dir.join("lib"), &["commit", "-q", "-am", "moved"]).ok();
    agrees(&r, "", same);

    // A worktree.
    let wt = r.sb.root.path().join("wt");
    r.git(&["worktree", "add", "-q", "-b", "side", wt.to_str().unwrap()])
        .ok();
    let w = Repo {
        sb: Sandbox::new(),
        dir: wt.clone(),
    };
    agrees(&w, "", same);
    assert_eq!(
        get(&w.ours("", &[]), "provenance.git.worktree"),
        Some("true")
    );

    // A shallow clone.
    let shallow = r.sb.root.path().join("shallow");
    git(
        r.sb.root.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            &format!("file://{}", r.dir.display()),
            shallow.to_str().unwrap(),
        ],
    )
    .ok();
    let s = Repo {
        sb: Sandbox::new(),
        dir: shallow,
    };
    agrees(&s, "", |u| u.to_owned());
    assert_eq!(
        get(&s.ours("", &[]), "provenance.git.shallow"),
        Some("true")
    );
}

/// describe walks the history (what `git describe` costs): done only with `--describe`, which
/// only `--format json` prints.
#[test]
fn describe_is_computed_only_when_asked_for() {
    let r = Repo::new();
    r.git(&["tag", "v1.0", "HEAD"]).ok();
    let plain = r.run("", &[]);
    let m: serde_json::Value = serde_json::from_str(&plain.ok().stdout).unwrap();
    assert!(m.get("provenance.git.describe").is_none(), "{m}");
    assert!(m.get("provenance.git.commit.subject").is_some(), "{m}");
    let asked = r.run("", &["--describe"]);
    let m: serde_json::Value = serde_json::from_str(&asked.ok().stdout).unwrap();
    assert_eq!(m["provenance.git.describe"], "v1.0");
    for format in ["azureml", "mlflow", "env", "azureml-job", "mlflow-env"] {
        let out = r.run("", &["--format", format, "--describe"]);
        assert_eq!(out.code, 2, "{format}: {}", out.stderr);
        out.stderr_has("--format json --describe");
        assert!(out.stdout.is_empty(), "{format}: {}", out.stdout);
    }
}

#[test]
fn beyond_the_peers_describe_upstream_and_patch() {
    let r = Repo::new();
    r.git(&["tag", "v1.0", "HEAD~1"]).ok();
    // An upstream one commit behind: one unpushed commit.
    r.git(&["update-ref", "refs/remotes/origin/main", "HEAD~1"])
        .ok();
    r.git(&["config", "branch.main.remote", "origin"]).ok();
    r.git(&["config", "branch.main.merge", "refs/heads/main"])
        .ok();
    write(&r.dir.join("src/train.py"), "print('changed')\n");
    write(&r.dir.join(".env"), "TOKEN=SECRETVALUE\n");
    r.git(&["add", "-f", ".env"]).ok();
    r.git(&["commit", "-q", "-m", "env"]).ok();
    write(&r.dir.join(".env"), "TOKEN=OTHERSECRET\n");
    std::fs::write(r.dir.join("blob.bin"), [0u8, 1, 2, 0, 255]).unwrap();
    r.git(&["add", "blob.bin"]).ok();
    let patch = r.sb.root.path().join("out/diff.patch");
    std::fs::create_dir_all(patch.parent().unwrap()).unwrap();
    let out = r.run("", &["--describe", "--patch", patch.to_str().unwrap()]);
    out.ok().stderr_has("secret-looking");
    let m: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let desc = git(&r.dir, &["describe", "--tags", "--always", "--dirty"]);
    assert_eq!(
        m["provenance.git.describe"].as_str(),
        Some(desc.stdout.trim())
    );
    assert_eq!(m["provenance.git.upstream"], "origin/main");
    assert_eq!(m["provenance.git.ahead"], "2");
    assert_eq!(m["provenance.git.unpushed"], "true");
    let text = std::fs::read_to_string(&patch).unwrap();
    assert!(text.contains("+print('changed')"), "{text}");
    assert!(!text.contains("SECRET") && !text.contains(".env"), "{text}");
    assert!(
        !text.contains("blob.bin") || text.contains("Binary"),
        "{text}"
    );
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(m["provenance.git.patch_sha256"], hex.as_str());
    // git applies it in reverse to the working tree (it is `git diff HEAD` minus exclusions).
    git(&r.dir, &["apply", "--check", "-R", patch.to_str().unwrap()]).ok();
    // The size cap: nothing beyond it, and a note.
    let out = r.run(
        "",
        &["--patch", patch.to_str().unwrap(), "--patch-cap", "10"],
    );
    out.ok().stderr_has("size cap");
    assert_eq!(std::fs::read(&patch).unwrap().len(), 0);
}

#[test]
fn formats_overrides_kill_switch_and_deadline() {
    let r = Repo::new();
    let az = r.ours("", &["--format", "azureml"]);
    assert!(az.keys().all(|k| k.starts_with("azureml.git.")), "{az:?}");
    let ml = r.ours("", &["--format", "mlflow"]);
    assert!(
        ml.keys().all(|k| k.starts_with("mlflow.source.git.")),
        "{ml:?}"
    );
    let env = r.run("", &["--format", "env"]);
    env.ok();
    assert!(
        env.stdout.contains("export AZUREML_GIT_BRANCH='main'"),
        "{}",
        env.stdout
    );
    assert!(env.stdout.contains("export AZUREML_GIT_DIRTY='false'"));

    // Azure's variables win field by field.
    let mut cmd = r.sb.cmd();
    cmd.args(["provenance", r.dir.to_str().unwrap()])
        .env("AZUREML_GIT_BRANCH", "release")
        .env("AZUREML_GIT_COMMIT", "");
    let out = r.sb.run_cmd(cmd);
    out.ok();
    let m: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(m["azureml.git.branch"], "release");
    assert_eq!(
        m["azureml.git.commit"].as_str(),
        Some(git(&r.dir, &["rev-parse", "HEAD"]).stdout.trim())
    );
    // Off.
    let mut cmd = r.sb.cmd();
    cmd.args(["provenance", r.dir.to_str().unwrap()])
        .env("KEYCLONE_PROVENANCE", "off");
    let out = r.sb.run_cmd(cmd);
    out.ok().stderr_has("off");
    assert_eq!(out.stdout.trim(), "{}");

    // A deadline the scan cannot meet: dirty is unknown, nothing blocks.
    for i in 0..3000 {
        write(&r.dir.join(format!("many/f{i}.txt")), "x\n");
    }
    r.git(&["add", "-A"]).ok();
    r.git(&["commit", "-q", "-m", "many"]).ok();
    let out = r.run("", &["--deadline", "0.000001"]);
    out.ok().stderr_has("dirty is unknown");
    let m: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(m["provenance.git.dirty"], "unknown");
    assert!(m.get("azureml.git.dirty").is_none());
}

#[test]
fn a_repository_owned_by_another_user() {
    let r = Repo::new();
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user `nobody` exists");
    // Give the repository to `nobody`: directly as root (CI), else through passwordless sudo.
    let give = |uid: u32, gid: u32| {
        if nix::unistd::Uid::effective().is_root() {
            let mut stack = vec![r.dir.clone()];
            while let Some(p) = stack.pop() {
                std::os::unix::fs::lchown(&p, Some(uid), Some(gid)).unwrap();
                if p.is_dir() && !p.is_symlink() {
                    for e in std::fs::read_dir(&p).unwrap() {
                        stack.push(e.unwrap().path());
                    }
                }
            }
        } else {
            let ok = std::process::Command::new("sudo")
                .args(["-n", "chown", "-R", "-h", &format!("{uid}:{gid}")])
                .arg(&r.dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "this test gives the repository to another user: run the tests as root (CI does) or with passwordless sudo"
            );
        }
    };
    give(nobody.uid.as_raw(), nobody.gid.as_raw());
    // git refuses too.
    let g = git(&r.dir, &["status", "--porcelain"]);
    assert_ne!(g.code, 0);
    let out = r.run("", &[]);
    out.code(5)
        .stderr_has("belongs to another user")
        .stderr_has("safe.directory");
    assert!(out.stdout.trim().is_empty() || out.stdout.trim() == "{}");
    // With the explicit flag.
    let m = r.ours("", &["--trust-repo-owner"]);
    assert_eq!(get(&m, "azureml.git.branch"), Some("main"));
    // With git's own safe.directory in the user's config.
    write(
        &r.sb.home.join(".gitconfig"),
        &format!("[safe]\n\tdirectory = {}\n", r.dir.display()),
    );
    let m = r.ours("", &[]);
    assert_eq!(get(&m, "azureml.git.branch"), Some("main"));
    // Back to us, so the temporary folder can be removed.
    give(
        nix::unistd::Uid::effective().as_raw(),
        nix::unistd::Gid::effective().as_raw(),
    );
}

#[test]
fn bad_paths_and_damaged_repositories() {
    let r = Repo::new();
    r.run("does-not-exist", &[]).code(6);
    write(&r.dir.join("file.txt"), "x\n");
    r.run("file.txt", &[]).code(2).stderr_has("not a directory");
    // Not in a repository: no keys, exit 0, says so.
    let outside = r.sb.root.path().join("plain");
    std::fs::create_dir(&outside).unwrap();
    let mut cmd = r.sb.cmd();
    cmd.args(["provenance", outside.to_str().unwrap()])
        .env("GIT_CEILING_DIRECTORIES", r.sb.root.path());
    let out = r.sb.run_cmd(cmd);
    out.ok().stderr_has("not in a Git repository");
    assert_eq!(out.stdout.trim(), "{}");
    // Non-UTF-8 file names are counted; a non-UTF-8 branch name is left out.
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(r.dir.join(odd), "x\n").unwrap();
    agrees(&r, "", same);
    r.git(&["checkout", "-q", "-b", "br\u{e9}"]).ok();
    std::fs::write(r.dir.join(".git/HEAD"), b"ref: refs/heads/x\xff\n").unwrap();
    r.git(&["branch", "-q", "-m", "br\u{e9}", "tmp"]).ok();
    let out = r.run("", &[]);
    // It still succeeds and reports the rest; only the branch is left out.
    out.ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON output");
    assert!(json.get("azureml.git.branch").is_none(), "{}", out.stdout);
    assert!(
        json.get("mlflow.source.git.branch").is_none(),
        "{}",
        out.stdout
    );
    // HEAD names a branch that does not exist (unborn): git has no commit, nor does keyclone.
    assert_ne!(r.git(&["rev-parse", "--verify", "-q", "HEAD"]).code, 0);
    assert!(json.get("azureml.git.commit").is_none(), "{}", out.stdout);
    assert_eq!(
        json.get("azureml.git.repository_uri")
            .and_then(|v| v.as_str()),
        Some("https://github.com/example/r.git"),
        "{}",
        out.stdout
    );
    assert_eq!(
        json.get("azureml.git.dirty").and_then(|v| v.as_str()),
        Some("True"),
        "the non-UTF-8 file is untracked, so the tree is dirty: {}",
        out.stdout
    );
    // A damaged .git: a clear error, not a crash.
    std::fs::write(r.dir.join(".git/HEAD"), "garbage\n").unwrap();
    let out = r.run("", &[]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("error:"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"));
}
