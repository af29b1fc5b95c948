//! `keyclone provenance` on hostile repositories (issue 11's standard) within its `--deadline`
//! promise (issue 14): FIFOs, devices and huge objects where git expects small regular files.
//! Every run is bounded here too, so a regression fails instead of hanging the suite.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::provenance::{Repo, add_submodule, get, write};
use crate::support::Out;

type Props = serde_json::Map<String, serde_json::Value>;

/// Runs `cmd`, killed after `limit`: `None` if it had to be killed.
fn within(mut cmd: Command, limit: Duration) -> Option<Out> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    Some(Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    })
}

/// `keyclone provenance DIR ARGS`, which must end within 20 s.
fn bounded(r: &Repo, dir: &Path, args: &[&str]) -> Out {
    let mut cmd = r.sb.cmd();
    cmd.arg("provenance")
        .arg(dir)
        .args(args)
        .env("GIT_CEILING_DIRECTORIES", r.sb.root.path());
    within(cmd, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("`keyclone provenance {args:?}` did not end within 20 s"))
}

fn props(out: &Out) -> Props {
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v.as_object().unwrap().clone()
}

fn mkfifo(p: &Path) {
    let _ = std::fs::remove_file(p);
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

#[test]
fn a_fifo_in_the_work_tree_is_fingerprinted_by_its_type_not_read() {
    let r = Repo::new();
    write(&r.dir.join("src/train.py"), "changed\n");
    mkfifo(&r.dir.join("src/model.py"));
    let m = props(&bounded(&r, &r.dir, &["--deadline", "1"]));
    let fp = get(&m, "provenance.git.fingerprint").unwrap().to_owned();
    assert!(fp.starts_with("sha256:"), "{fp}");
    assert_eq!(get(&m, "azureml.git.dirty"), Some("True"));
    // Another kind of file at the same path is another state.
    std::fs::remove_file(r.dir.join("src/model.py")).unwrap();
    write(&r.dir.join("src/model.py"), "");
    let m = props(&bounded(&r, &r.dir, &["--deadline", "1"]));
    assert_ne!(get(&m, "provenance.git.fingerprint"), Some(fp.as_str()));
}

#[test]
fn a_fifo_pack_index_does_not_hang_describe() {
    let r = Repo::new();
    let idx = r.dir.join(".git/objects/pack");
    std::fs::create_dir_all(&idx).unwrap();
    mkfifo(&idx.join(format!("pack-{}.idx", "0".repeat(40))));
    let m = props(&bounded(&r, &r.dir, &["--deadline", "2", "--describe"]));
    let head = r.git(&["rev-parse", "--short", "HEAD"]);
    assert_eq!(get(&m, "provenance.git.describe"), Some(head.stdout.trim()));
}

#[test]
fn a_shallow_file_that_is_not_a_file_is_refused_before_libgit2_opens_it() {
    let r = Repo::new();
    let shallow = r.dir.join(".git/shallow");
    for (kind, make) in [
        ("a FIFO", (|p: &Path| mkfifo(p)) as fn(&Path)),
        ("a character device", |p: &Path| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap()
        }),
    ] {
        let _ = std::fs::remove_file(&shallow);
        make(&shallow);
        for format in ["json", "mlflow"] {
            let out = bounded(&r, &r.dir, &["--format", format, "--deadline", "1"]);
            assert_eq!(out.code, 11, "{kind}, {format}: {out:?}");
            assert!(
                out.stderr.contains(".git/shallow") && out.stderr.contains(kind),
                "{kind}, {format}: {}",
                out.stderr
            );
        }
    }
}

#[test]
fn a_commit_too_large_to_read_keeps_its_id_and_its_metadata_is_unknown() {
    let r = Repo::new();
    let tree = r
        .git(&["rev-parse", "HEAD^{tree}"])
        .stdout
        .trim()
        .to_owned();
    let head = r.git(&["rev-parse", "HEAD"]).stdout.trim().to_owned();
    let mut raw = format!(
        "tree {tree}\nparent {head}\nauthor A <a@example.com> 1767225600 +0100\ncommitter A <a@example.com> 1767225600 +0100\n\nhuge\n"
    )
    .into_bytes();
    raw.resize(raw.len() + 3 * 1024 * 1024, b'x');
    let tmp = r.sb.root.path().join("commit.raw");
    std::fs::write(&tmp, &raw).unwrap();
    let id = r.git(&["hash-object", "-t", "commit", "-w", tmp.to_str().unwrap()]);
    id.ok();
    let id = id.stdout.trim().to_owned();
    r.git(&["update-ref", "refs/heads/main", &id]).ok();
    let m = props(&bounded(&r, &r.dir, &["--deadline", "5", "--describe"]));
    assert_eq!(get(&m, "azureml.git.commit"), Some(id.as_str()));
    assert_eq!(get(&m, "mlflow.source.git.commit"), Some(id.as_str()));
    for k in ["describe", "commit.subject", "commit.author", "commit.time"] {
        assert_eq!(
            get(&m, &format!("provenance.git.{k}")),
            Some("unknown"),
            "{k}"
        );
    }
    let out = bounded(&r, &r.dir, &["--format", "mlflow", "--deadline", "5"]);
    assert_eq!(
        get(&props(&out), "mlflow.source.git.commit"),
        Some(id.as_str())
    );
}

#[test]
fn submodules_are_unknown_when_the_index_is_damaged() {
    let r = Repo::new();
    write(
        &r.dir.join(".gitmodules"),
        "[submodule \"x\"]\n\tpath = x\n\turl = ../x\n",
    );
    r.git(&["add", ".gitmodules"]).ok();
    r.git(&["commit", "-q", "-m", "modules"]).ok();
    let index = r.dir.join(".git/index");
    let mut b = std::fs::read(&index).unwrap();
    b[8..12].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    std::fs::write(&index, &b).unwrap();
    let m = props(&bounded(&r, &r.dir, &["--deadline", "5"]));
    assert_eq!(get(&m, "provenance.git.submodules"), Some("unknown"));
}

#[test]
fn a_deadline_that_is_not_a_finite_number_of_seconds_is_a_usage_error() {
    let r = Repo::new();
    for bad in ["nan", "NaN", "inf", "-1", "-0.5"] {
        let out = bounded(&r, &r.dir, &["--deadline", bad]);
        assert_eq!(out.code, 2, "--deadline {bad}: {out:?}");
        assert!(out.stderr.contains("--deadline"), "{bad}: {}", out.stderr);
    }
    props(&bounded(&r, &r.dir, &["--deadline", "0"]));
}

#[test]
fn a_loose_object_that_is_a_fifo_ends_at_the_deadline_with_an_error_not_a_hang() {
    // HEAD's commit object replaced by a FIFO: libgit2 would block opening it (so does
    // `git status`). The deadline is kept anyway, and nothing is reported as known.
    let r = Repo::new();
    let head = r.git(&["rev-parse", "HEAD"]).stdout.trim().to_owned();
    let object = r.dir.join(".git/objects").join(&head[..2]).join(&head[2..]);
    assert!(object.is_file(), "HEAD's commit is a loose object");
    mkfifo(&object);
    let started = Instant::now();
    let out = bounded(&r, &r.dir, &["--format", "mlflow", "--deadline", "1"]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.contains("did not finish within the deadline"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("mlflow.source.git.commit"),
        "{}",
        out.stdout
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

/// Submodules come from `.gitmodules` and HEAD's tree, as git lists them: an unpopulated one by
/// its gitlink; a path git refuses is left out with a note; a `.gitmodules` that is a link (git
/// ignores it) or a FIFO makes them `unknown`, without blocking.
#[test]
fn submodules_are_read_as_git_lists_them_and_a_hostile_gitmodules_is_not_followed() {
    let r = Repo::new();
    add_submodule(&r);
    let gitlink = r.git(&["rev-parse", "HEAD:lib"]);
    // Unpopulated, as a plain clone leaves it: the gitlink of HEAD's tree.
    std::fs::remove_dir_all(r.dir.join("lib")).unwrap();
    std::fs::create_dir(r.dir.join("lib")).unwrap();
    let m = props(&bounded(&r, &r.dir, &[]));
    assert_eq!(
        get(&m, "provenance.git.submodule.lib"),
        Some(gitlink.stdout.trim())
    );

    // A path outside the work tree: git refuses it, so does keyclone.
    let modules = std::fs::read_to_string(r.dir.join(".gitmodules")).unwrap();
    write(
        &r.dir.join(".gitmodules"),
        &format!("{modules}[submodule \"evil\"]\n\tpath = ../outside\n\turl = ../x\n"),
    );
    let out = bounded(&r, &r.dir, &[]);
    let m = props(&out);
    assert_eq!(
        get(&m, "provenance.git.submodule.lib"),
        Some(gitlink.stdout.trim())
    );
    assert!(!m.keys().any(|k| k.contains("outside")), "{m:?}");
    assert!(out.stderr.contains("a path git refuses"), "{}", out.stderr);

    // A link, then a FIFO, in place of `.gitmodules`.
    let real = r.sb.root.path().join("real-gitmodules");
    std::fs::rename(r.dir.join(".gitmodules"), &real).unwrap();
    std::os::unix::fs::symlink(&real, r.dir.join(".gitmodules")).unwrap();
    let m = props(&bounded(&r, &r.dir, &[]));
    assert_eq!(get(&m, "provenance.git.submodules"), Some("unknown"));
    assert_eq!(get(&m, "provenance.git.submodule.lib"), None);
    std::fs::remove_file(r.dir.join(".gitmodules")).unwrap();
    mkfifo(&r.dir.join(".gitmodules"));
    let m = props(&bounded(&r, &r.dir, &["--deadline", "5"]));
    assert_eq!(get(&m, "provenance.git.submodules"), Some("unknown"));
}

/// A `.gitmodules` that includes another file (git ignores `[include]` there; libgit2 would
/// follow it to a FIFO) makes submodules `unknown` at once; a `.gitmodules` path through a
/// tracked link to a repository outside, with no gitlink in HEAD, is not a submodule.
#[test]
fn a_gitmodules_include_or_a_path_through_a_link_reports_nothing_false() {
    let r = Repo::new();
    let fifo = r.sb.root.path().join("fifo");
    mkfifo(&fifo);
    write(
        &r.dir.join(".gitmodules"),
        &format!(
            "[submodule \"x\"]\n\tpath = x\n\turl = ../x\n[include]\n\tpath = {}\n",
            fifo.display()
        ),
    );
    r.git(&["add", ".gitmodules"]).ok();
    r.git(&["commit", "-q", "-m", "include"]).ok();
    let m = props(&bounded(&r, &r.dir, &["--deadline", "5"]));
    assert_eq!(get(&m, "provenance.git.submodules"), Some("unknown"));
    assert!(get(&m, "azureml.git.commit").is_some(), "{m:?}");

    // `a` -> a folder outside holding a repository at `sub`; `.gitmodules` names `a/sub`.
    let outside = r.sb.root.path().join("outside");
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    crate::support::git::git(&outside.join("sub"), &["init", "-q"]).ok();
    crate::support::git::git(
        &outside.join("sub"),
        &[
            "-c",
            "user.name=o",
            "-c",
            "user.email=o@x",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "o",
        ],
    )
    .ok();
    std::os::unix::fs::symlink(&outside, r.dir.join("a")).unwrap();
    write(
        &r.dir.join(".gitmodules"),
        "[submodule \"s\"]\n\tpath = a/sub\n\turl = ../s\n",
    );
    r.git(&["add", "a", ".gitmodules"]).ok();
    r.git(&["commit", "-q", "-m", "link"]).ok();
    let m = props(&bounded(&r, &r.dir, &[]));
    assert!(
        !m.keys().any(|k| k.starts_with("provenance.git.submodule.")),
        "{m:?}"
    );
    let status = r.git(&["submodule", "status"]);
    assert!(
        status.stdout.trim().is_empty(),
        "git lists none either: {}",
        status.stdout
    );
}
