//! keyclone's provenance in the real MLflow (`mlflow-skinny`, in the virtualenv `scripts/test`
//! makes) with a local file store, and the Azure ML job properties from the Python helper, with
//! the real git as the oracle. A missing virtualenv fails the test (run `bash scripts/test`;
//! `KEYCLONE_PY_VENV` names another virtualenv).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::git::git;
use crate::support::{Out, Sandbox, keyclone_bin};

/// In the clone's remote URL: it must never reach a tag, a property or a log line.
const TOKEN: &str = "ghp_mlflowTestToken0123456789";

/// The virtualenv's python, or a failed test saying how to make it.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("KEYCLONE_PY_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py-venv"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "the Python virtualenv with mlflow-skinny and keyclone-mlflow is missing at `{}`: run `bash scripts/test` (it makes the virtualenv, then runs every test)",
        venv.display()
    );
    python
}

/// The run script, committed in the clone: starts and ends an MLflow run, prints its tags.
const TRAIN: &str = "import json, shutil\nimport mlflow\n\
with mlflow.start_run() as run:\n    pass\n\
tags = mlflow.get_run(run.info.run_id).data.tags\n\
print(json.dumps({'tags': tags, 'git': shutil.which('git')}))\n";

const AZURE: &str = "import json, sys\nimport keyclone_mlflow\n\
print(json.dumps(keyclone_mlflow.azureml_job_properties(sys.argv[1], strict=True)))\n";

struct Setup {
    sb: Sandbox,
    clone: PathBuf,
    /// Holds only `keyclone` and `python` (a wrapper that runs the venv's): a PATH without git.
    bin: PathBuf,
    python: PathBuf,
}

fn setup() -> Setup {
    let python = venv_python();
    let sb = Sandbox::new();
    let root = sb.root.path().to_owned();
    let work = root.join("origin");
    std::fs::create_dir_all(work.join("src")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]).ok();
    std::fs::write(work.join("train.py"), TRAIN).unwrap();
    std::fs::write(work.join("src/model.py"), "m = 1\n").unwrap();
    git(&work, &["add", "-A"]).ok();
    git(&work, &["commit", "-q", "-m", "one"]).ok();
    let clone = root.join("clone");
    git(&root, &["clone", "-q", work.to_str().unwrap(), "clone"]).ok();
    let url = format!("https://{TOKEN}@github.com/example/r.git");
    git(&clone, &["remote", "set-url", "origin", &url]).ok();
    let bin = root.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(keyclone_bin(), bin.join("keyclone")).unwrap();
    // A wrapper, not a link: a linked python would not find its virtualenv.
    let wrapper = format!("#!/bin/sh\nexec '{}' \"$@\"\n", python.display());
    std::fs::write(bin.join("python"), wrapper).unwrap();
    std::fs::set_permissions(bin.join("python"), std::fs::Permissions::from_mode(0o755)).unwrap();
    Setup {
        sb,
        clone,
        bin,
        python,
    }
}

impl Setup {
    /// The venv's python with the sandbox's environment, a file store outside the clone, and
    /// PATH holding only `keyclone` and `python` (no git).
    fn python(&self, cwd: &Path) -> Command {
        let root = self.sb.root.path();
        let mut c = self.sb.cmd_of(&self.python);
        c.current_dir(cwd)
            .env("PATH", &self.bin)
            .env("GIT_CEILING_DIRECTORIES", root)
            .env(
                "MLFLOW_TRACKING_URI",
                format!("file://{}", root.join("mlruns").display()),
            )
            .env("MLFLOW_ALLOW_FILE_STORE", "true");
        c
    }

    /// Runs `train.py` of `dir` and returns the run's tags.
    fn run_tags(&self, mut c: Command) -> (serde_json::Map<String, serde_json::Value>, Out) {
        c.arg("train.py");
        let out = self.sb.run_cmd(c);
        out.ok().never_shows(TOKEN);
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", out.stdout, out.stderr));
        assert_eq!(v["git"], serde_json::Value::Null, "git was on PATH");
        (v["tags"].as_object().unwrap().clone(), out)
    }
}

fn tag<'a>(m: &'a serde_json::Map<String, serde_json::Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(|v| v.as_str())
}

/// git's own answers for the clone: commit, branch, dirty (`status --porcelain .`).
fn oracle(dir: &Path) -> (String, String, bool) {
    let commit = git(dir, &["rev-parse", "HEAD"]).stdout.trim().to_owned();
    let branch = git(dir, &["symbolic-ref", "--short", "HEAD"])
        .stdout
        .trim()
        .to_owned();
    let status = git(dir, &["status", "--porcelain", "."]);
    status.ok();
    (commit, branch, !status.stdout.trim().is_empty())
}

const URL: &str = "https://github.com/example/r.git";

#[track_caller]
fn has_git_tags(tags: &serde_json::Map<String, serde_json::Value>, dir: &Path) {
    let (commit, branch, dirty) = oracle(dir);
    assert_eq!(
        tag(tags, "mlflow.source.git.commit"),
        Some(commit.as_str()),
        "{tags:?}"
    );
    assert_eq!(tag(tags, "mlflow.source.git.branch"), Some(branch.as_str()));
    assert_eq!(tag(tags, "mlflow.source.git.repoURL"), Some(URL));
    let want = if dirty { "true" } else { "false" };
    assert_eq!(tag(tags, "mlflow.source.git.dirty"), Some(want));
}

#[test]
fn the_plugin_tags_a_run_in_a_clone_without_git_on_path() {
    let s = setup();
    let (tags, _) = s.run_tags(s.python(&s.clone));
    has_git_tags(&tags, &s.clone);
    assert_eq!(tag(&tags, "mlflow.source.git.dirty"), Some("false"));
    // Dirty: a changed tracked file.
    std::fs::write(s.clone.join("src/model.py"), "m = 2\n").unwrap();
    let (tags, _) = s.run_tags(s.python(&s.clone));
    has_git_tags(&tags, &s.clone);
    assert_eq!(tag(&tags, "mlflow.source.git.dirty"), Some("true"));
}

#[test]
fn the_plugin_wins_over_mlflows_git_context_when_git_is_there() {
    let s = setup();
    // MLflow takes the first remote in config order, keyclone the one git uses (`origin`).
    let mirror = "https://mirror.example/r.git";
    git(&s.clone, &["remote", "rename", "origin", "mirror"]).ok();
    git(&s.clone, &["remote", "set-url", "mirror", mirror]).ok();
    let url = format!("https://{TOKEN}@github.com/example/r.git");
    git(&s.clone, &["remote", "add", "origin", &url]).ok();
    // A detached HEAD: no branch from either (never guessed).
    let head = git(&s.clone, &["rev-parse", "HEAD"])
        .stdout
        .trim()
        .to_owned();
    git(&s.clone, &["checkout", "-q", "--detach", &head]).ok();
    let run = |plugin: bool| {
        let mut c = s.python(&s.clone);
        c.env("PATH", format!("{}:/usr/bin:/bin", s.bin.display()));
        if !plugin {
            c.env("KEYCLONE_PROVENANCE", "off");
        }
        c.arg("train.py");
        let out = s.sb.run_cmd(c);
        out.ok().never_shows(TOKEN);
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert!(v["git"].is_string(), "git should be on PATH here: {v}");
        v["tags"].as_object().unwrap().clone()
    };
    // MLflow alone (the oracle that this setup tells the two apart).
    let theirs = run(false);
    assert_eq!(
        tag(&theirs, "mlflow.source.git.repoURL"),
        Some(mirror),
        "{theirs:?}"
    );
    assert_eq!(
        tag(&theirs, "mlflow.source.git.commit"),
        Some(head.as_str())
    );
    let tags = run(true);
    assert_eq!(
        tag(&tags, "mlflow.source.git.repoURL"),
        Some(URL),
        "{tags:?}"
    );
    assert_eq!(tag(&tags, "mlflow.source.git.commit"), Some(head.as_str()));
    assert_eq!(tag(&tags, "mlflow.source.git.dirty"), Some("false"));
    assert_eq!(tag(&tags, "mlflow.source.git.branch"), None, "{tags:?}");
}

#[test]
fn mlflow_run_context_alone_tags_a_run_outside_the_clone() {
    let s = setup();
    std::fs::write(s.clone.join("untracked.txt"), "u\n").unwrap();
    // The run starts outside any repository, with the plugin off: only the variable can tag it.
    let elsewhere = s.sb.root.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("train.py"), TRAIN).unwrap();
    let mut c = s.python(&elsewhere);
    let sh = format!(
        "eval \"$(keyclone provenance '{}' --format mlflow-env)\" && KEYCLONE_PROVENANCE=off exec python \"$0\"",
        s.clone.display()
    );
    c.env("PATH", &s.bin);
    let mut sh_cmd = s.sb.cmd_of(Path::new("/bin/sh"));
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            sh_cmd.env(k, v);
        }
    }
    sh_cmd.current_dir(&elsewhere).arg("-c").arg(sh);
    let (tags, _) = s.run_tags(sh_cmd);
    has_git_tags(&tags, &s.clone);
    assert_eq!(tag(&tags, "mlflow.source.git.dirty"), Some("true"));
    // Without the variable the same run has no Git tags: they came from it.
    let mut c = s.python(&elsewhere);
    c.env("KEYCLONE_PROVENANCE", "off");
    let (tags, _) = s.run_tags(c);
    assert!(
        !tags.keys().any(|k| k.starts_with("mlflow.source.git.")),
        "{tags:?}"
    );
}

#[test]
fn a_failing_keyclone_is_a_warning_and_the_run_goes_on() {
    let s = setup();
    let mut c = s.python(&s.clone);
    c.env("KEYCLONE_BIN", s.sb.root.path().join("no-such-keyclone"));
    let (tags, out) = s.run_tags(c);
    out.stderr_has("keyclone_mlflow").stderr_has("KEYCLONE_BIN");
    assert!(
        !tags.keys().any(|k| k.starts_with("mlflow.source.git.")),
        "{tags:?}"
    );
    // Past the deadline: a binary that hangs is abandoned, the run still finishes.
    let slow = s.sb.root.path().join("slow-keyclone");
    std::fs::write(&slow, "#!/bin/sh\nexec /bin/sleep 30\n").unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = s.python(&s.clone);
    c.env("KEYCLONE_BIN", &slow)
        .env("KEYCLONE_MLFLOW_TIMEOUT", "0.5");
    let started = std::time::Instant::now();
    let (tags, out) = s.run_tags(c);
    out.stderr_has("took longer than 0.5 s");
    assert!(started.elapsed() < std::time::Duration::from_secs(25));
    assert!(tags.get("mlflow.source.git.dirty").is_none(), "{tags:?}");
}

/// The helper's dict for the clone, parsed.
fn azure(s: &Setup, extra: &[(&str, &str)]) -> serde_json::Map<String, serde_json::Value> {
    std::fs::write(s.sb.root.path().join("azure.py"), AZURE).unwrap();
    let mut c = s.python(s.sb.root.path());
    c.arg("azure.py").arg(&s.clone);
    for (k, v) in extra {
        c.env(k, v);
    }
    let out = s.sb.run_cmd(c);
    out.ok().never_shows(TOKEN);
    serde_json::from_str::<serde_json::Value>(out.stdout.trim())
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

#[test]
fn the_azure_helper_gives_both_sdks_keys_for_a_clean_and_a_dirty_clone() {
    let s = setup();
    let seven = [
        "azureml.git.branch",
        "azureml.git.commit",
        "azureml.git.dirty",
        "azureml.git.repository_uri",
        "mlflow.source.git.branch",
        "mlflow.source.git.commit",
        "mlflow.source.git.repoURL",
    ];
    for dirty_it in [false, true] {
        if dirty_it {
            std::fs::write(s.clone.join("new.txt"), "n\n").unwrap();
        }
        let m = azure(&s, &[]);
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, seven, "{m:?}");
        let (commit, branch, dirty) = oracle(&s.clone);
        assert_eq!(dirty, dirty_it);
        for k in ["azureml.git.commit", "mlflow.source.git.commit"] {
            assert_eq!(tag(&m, k), Some(commit.as_str()));
        }
        for k in ["azureml.git.branch", "mlflow.source.git.branch"] {
            assert_eq!(tag(&m, k), Some(branch.as_str()));
        }
        for k in ["azureml.git.repository_uri", "mlflow.source.git.repoURL"] {
            assert_eq!(tag(&m, k), Some(URL));
        }
        let want = if dirty { "True" } else { "False" };
        assert_eq!(tag(&m, "azureml.git.dirty"), Some(want));
    }
    // The build keys come from Azure's variables only.
    let m = azure(
        &s,
        &[
            ("AZUREML_GIT_BUILD_ID", "42"),
            ("AZUREML_GIT_BUILD_URI", "https://ci.example/42"),
        ],
    );
    assert_eq!(m.len(), 9, "{m:?}");
    assert_eq!(tag(&m, "azureml.git.build_id"), Some("42"));
    assert_eq!(
        tag(&m, "azureml.git.build_uri"),
        Some("https://ci.example/42")
    );
}
