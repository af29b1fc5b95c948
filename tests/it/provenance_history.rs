//! `keyclone provenance` on histories made to be hard: git's `describe` as the oracle on
//! crafted tag layouts, the bad input of issue 14 (100k tags, a HEAD 10k commits from any tag,
//! a shallow clone that ends before any tag, a huge untracked folder, split and sparse
//! indexes), the deadline (what is printed is right or `unknown`), and the extras
//! (fingerprint, HEAD metadata, superproject).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::provenance::{Repo, agrees, get, same, write};
use crate::support::git::git;
use crate::support::{Out, Sandbox, require};

type Props = serde_json::Map<String, serde_json::Value>;

/// `git` as in `support::git`, with `input` on its standard input.
fn git_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Out {
    let mut child = Command::new(require("git", "git"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let o = child.wait_with_output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A `fast-import` stream: commits as marks, each touching `f.txt`.
#[derive(Default)]
struct Stream(String);

impl Stream {
    fn commit(&mut self, branch: &str, mark: usize, date: i64, from: &[usize]) {
        let body = format!("c{mark}\n");
        let _ = write!(
            self.0,
            "commit refs/heads/{branch}\nmark :{mark}\ncommitter T <t@example.com> {date} +0000\ndata 3\nc{}\n",
            mark % 10
        );
        for (i, f) in from.iter().enumerate() {
            let _ = writeln!(self.0, "{} :{f}", if i == 0 { "from" } else { "merge" });
        }
        let _ = write!(self.0, "M 644 inline f.txt\ndata {}\n{body}\n", body.len());
    }
    fn lightweight(&mut self, name: &str, mark: usize) {
        let _ = write!(self.0, "reset refs/tags/{name}\nfrom :{mark}\n\n");
    }
    fn annotated(&mut self, name: &str, mark: usize, date: i64) {
        let _ = write!(
            self.0,
            "tag {name}\nfrom :{mark}\ntagger T <t@example.com> {date} +0000\ndata 2\nt\n"
        );
    }
    fn import(&self, dir: &Path) {
        git_stdin(dir, &["fast-import", "--quiet"], self.0.as_bytes()).ok();
    }
}

fn empty_repo(sb: &Sandbox, name: &str) -> std::path::PathBuf {
    let dir = sb.root.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]).ok();
    dir
}

fn ours(sb: &Sandbox, dir: &Path, extra: &[&str]) -> (Props, Out) {
    let mut cmd = sb.cmd();
    // Every check here is of describe, which is computed only when asked for.
    cmd.arg("provenance")
        .arg(dir)
        .arg("--describe")
        .args(extra)
        .env("GIT_CEILING_DIRECTORIES", sb.root.path());
    let out = sb.run_cmd(cmd);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    (v.as_object().unwrap().clone(), out)
}

fn git_describe(dir: &Path) -> String {
    let d = git(dir, &["describe", "--tags", "--always", "--dirty"]);
    d.ok();
    d.stdout.trim().to_owned()
}

#[track_caller]
fn describe_agrees(sb: &Sandbox, dir: &Path, at: &str) {
    let (m, _) = ours(sb, dir, &[]);
    assert_eq!(
        get(&m, "provenance.git.describe"),
        Some(git_describe(dir).as_str()),
        "HEAD at {at}"
    );
}

/// A main line with a skewed date, a merged side branch, 18 tags (lightweight and annotated,
/// two on one commit, two annotated on one commit with different tagger dates): git's
/// describe at many commits, with real dates and with every date equal (ties).
#[test]
fn describe_equals_git_on_crafted_histories() {
    for equal_dates in [false, true] {
        let sb = Sandbox::new();
        let dir = empty_repo(&sb, "crafted");
        let t0 = 1_700_000_000i64;
        let date = |x: i64| if equal_dates { t0 } else { t0 + x };
        let mut s = Stream::default();
        for i in 1..=10 {
            let from: Vec<usize> = if i == 1 { vec![] } else { vec![i - 1] };
            s.commit("main", i, date(i as i64 * 100), &from);
        }
        // The side branch: marks 101..=108, off commit 10, dates between main's.
        for j in 101..=108 {
            let from = if j == 101 { 10 } else { j - 1 };
            s.commit("side", j, date(1000 + (j as i64 - 100) * 150), &[from]);
        }
        for i in 11..=40 {
            // Commit 25 is dated before its parent (clock skew); 30 merges the side branch.
            let d = if i == 25 {
                date(100)
            } else {
                date(i as i64 * 100)
            };
            let from = if i == 30 { vec![29, 108] } else { vec![i - 1] };
            s.commit("main", i, d, &from);
        }
        for (name, mark) in [
            ("l3", 3),
            ("l7", 7),
            ("l15", 15),
            ("l18", 18),
            ("l21", 21),
            ("l24", 24),
            ("l27", 27),
            ("side-l2", 102),
            ("a-lw16", 16),
        ] {
            s.lightweight(name, mark);
        }
        for (name, mark, d) in [
            ("v5", 5, 10),
            ("v9", 9, 20),
            ("v14", 14, 30),
            ("v20", 20, 40),
            ("v26", 26, 50),
            ("v33", 33, 60),
            ("side-v5", 105, 70),
            ("z-an16", 16, 80),
            ("old22", 22, 90),
            ("new22", 22, 95),
        ] {
            s.annotated(name, mark, t0 + d);
        }
        s.import(&dir);
        git(&dir, &["checkout", "-q", "-f", "main"]).ok();
        describe_agrees(&sb, &dir, "main");
        let revs = git(&dir, &["rev-list", "--all"]);
        for rev in revs.stdout.lines() {
            git(&dir, &["checkout", "-q", "-f", "--detach", rev]).ok();
            describe_agrees(&sb, &dir, rev);
        }
        // Dirty, and `--dirty`.
        write(&dir.join("f.txt"), "changed\n");
        describe_agrees(&sb, &dir, "dirty");
    }
    // No tag at all: `--always`, the abbreviated commit.
    let r = Repo::new();
    describe_agrees(&r.sb, &r.dir, "untagged");
}

/// `n` linear commits on `main` (dates increasing), in a new repository.
fn linear(sb: &Sandbox, name: &str, n: usize, tag_root: bool) -> std::path::PathBuf {
    let dir = empty_repo(sb, name);
    let mut s = Stream::default();
    for i in 1..=n {
        let from: Vec<usize> = if i == 1 { vec![] } else { vec![i - 1] };
        s.commit("main", i, 1_700_000_000 + i as i64 * 60, &from);
    }
    if tag_root {
        s.annotated("root", 1, 1_700_000_000);
    }
    s.import(&dir);
    git(&dir, &["checkout", "-q", "-f", "main"]).ok();
    dir
}

#[test]
fn a_hundred_thousand_tags() {
    let sb = Sandbox::new();
    let dir = linear(&sb, "tags", 2000, false);
    let revs = git(&dir, &["rev-list", "--reverse", "main"]);
    let revs: Vec<&str> = revs.stdout.lines().collect();
    let mut packed = String::from("# pack-refs with: peeled fully-peeled sorted \n");
    let mut refs: Vec<String> = (0..100_000)
        .map(|i| format!("{} refs/tags/t{i:06}\n", revs[i % 1990]))
        .collect();
    refs.sort_by(|a, b| a[41..].cmp(&b[41..]));
    refs.iter().for_each(|r| packed.push_str(r));
    std::fs::write(dir.join(".git/packed-refs"), packed).unwrap();
    assert_eq!(git(&dir, &["tag"]).stdout.lines().count(), 100_000);
    describe_agrees(&sb, &dir, "main");
    // A 1 ms deadline: right or unknown. On a loaded machine even opening the repository (5 MB
    // of packed-refs) can outlast the capture worker's one second past the deadline: then the
    // documented give-up, exit 7 with no property at all, never a guess.
    let mut cmd = sb.cmd();
    cmd.args(["provenance", "--describe", "--deadline", "0.001"])
        .arg(&dir)
        .env("GIT_CEILING_DIRECTORIES", sb.root.path());
    let out = sb.run_cmd(cmd);
    if out.code == 0 {
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let d = v["provenance.git.describe"].as_str().unwrap();
        assert!(d == "unknown" || d == git_describe(&dir), "{d}");
    } else {
        assert_eq!(out.code, 7, "{}", out.stderr);
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        out.stderr_has("did not finish within the deadline");
    }
}

#[test]
fn a_detached_head_ten_thousand_commits_from_a_tag_and_a_shallow_clone() {
    let sb = Sandbox::new();
    let dir = linear(&sb, "deep", 10_000, true);
    git(&dir, &["checkout", "-q", "--detach", "main"]).ok();
    describe_agrees(&sb, &dir, "tip");
    assert!(git_describe(&dir).starts_with("root-9999-g"));
    let (m, _) = ours(&sb, &dir, &[]);
    assert_eq!(get(&m, "provenance.git.head_detached"), Some("true"));
    assert!(
        m.get("provenance.git.ahead").is_none(),
        "no branch, no walk"
    );

    // A shallow clone whose history ends before the tag: the abbreviated commit, as git.
    let shallow = sb.root.path().join("shallow");
    git(
        sb.root.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "50",
            &format!("file://{}", dir.display()),
            shallow.to_str().unwrap(),
        ],
    )
    .ok();
    describe_agrees(&sb, &shallow, "shallow");
    assert!(!git_describe(&shallow).contains("root"));
    assert_eq!(
        get(&ours(&sb, &shallow, &[]).0, "provenance.git.shallow"),
        Some("true")
    );
}

/// With `--deadline 0.001` on a long history with an upstream far behind, every value printed
/// equals git's or is `unknown`, and something is unknown.
#[test]
fn a_one_millisecond_deadline_gives_unknowns_not_wrong_values() {
    let sb = Sandbox::new();
    let dir = linear(&sb, "deadline", 10_000, true);
    git(
        &dir,
        &["update-ref", "refs/remotes/origin/main", "main~5000"],
    )
    .ok();
    git(&dir, &["config", "branch.main.remote", "origin"]).ok();
    git(&dir, &["config", "branch.main.merge", "refs/heads/main"]).ok();
    git(
        &dir,
        &["remote", "add", "origin", "https://example.com/r.git"],
    )
    .ok();
    write(&dir.join("f.txt"), "dirty\n");
    let (full, _) = ours(&sb, &dir, &[]);
    assert_eq!(get(&full, "provenance.git.ahead"), Some("5000"));
    assert_eq!(get(&full, "provenance.git.behind"), Some("0"));
    assert_eq!(get(&full, "azureml.git.dirty"), Some("True"));
    let (m, out) = ours(&sb, &dir, &["--deadline", "0.001"]);
    let mut unknown = 0;
    for (k, v) in &m {
        let v = v.as_str().unwrap();
        if v == "unknown" {
            unknown += 1;
            continue;
        }
        assert_eq!(Some(v), get(&full, k), "{k}: {}", out.stderr);
    }
    assert!(unknown > 0, "{m:?}");
    assert!(
        m.get("azureml.git.dirty").is_some() || get(&m, "provenance.git.dirty") == Some("unknown")
    );
}

#[test]
fn upstream_less_branches_and_core_formats_do_no_history_work() {
    let r = Repo::new();
    let (m, out) = ours(&r.sb, &r.dir, &[]);
    out.stderr_has("no upstream");
    assert_eq!(get(&m, "provenance.git.unpushed"), Some("unknown"));
    for k in ["ahead", "behind", "upstream"] {
        assert!(
            m.get(&format!("provenance.git.{k}")).is_none(),
            "{k}: {m:?}"
        );
    }
    // The Azure ML and MLflow formats compute none of the extras (no upstream lookup, so no
    // note about it), and still agree with git.
    for f in ["azureml", "mlflow", "env"] {
        let out = r.run("", &["--format", f]);
        out.ok();
        assert!(!out.stderr.contains("upstream"), "{f}: {}", out.stderr);
    }
    agrees(&r, "", same);
}

#[test]
fn huge_untracked_folders_and_newer_index_formats() {
    let r = Repo::new();
    for i in 0..20_000 {
        write(&r.dir.join(format!("junk/d{}/f{i}.txt", i % 100)), "x\n");
    }
    agrees(&r, "", same);
    let (m, _) = ours(&r.sb, &r.dir, &["--deadline", "0.001"]);
    if let Some(f) = get(&m, "provenance.git.fingerprint") {
        assert!(f == "unknown" || f.starts_with("sha256:"), "{f}");
    }
    std::fs::remove_dir_all(r.dir.join("junk")).unwrap();

    // A split index, clean then dirty.
    r.git(&["update-index", "--split-index"]).ok();
    assert!(has_shared_index(&r.dir));
    right_or_unknown(&r);
    write(&r.dir.join("src/train.py"), "print('split')\n");
    right_or_unknown(&r);
    r.git(&["commit", "-q", "-am", "split"]).ok();
    right_or_unknown(&r);

    // A sparse index.
    r.git(&["update-index", "--no-split-index"]).ok();
    r.git(&["sparse-checkout", "init", "--cone", "--sparse-index"])
        .ok();
    r.git(&["sparse-checkout", "set", "src"]).ok();
    r.git(&["config", "index.sparse", "true"]).ok();
    right_or_unknown(&r);
    write(&r.dir.join("src/train.py"), "print('sparse')\n");
    right_or_unknown(&r);
}

/// Commit and branch as git says; dirty as git says or `unknown` (never a guess), and then
/// describe and the fingerprint `unknown` too.
#[track_caller]
fn right_or_unknown(r: &Repo) {
    let (m, out) = ours(&r.sb, &r.dir, &[]);
    let t = crate::provenance::theirs(&r.dir);
    assert_eq!(get(&m, "azureml.git.commit"), t.commit.as_deref());
    assert_eq!(get(&m, "azureml.git.branch"), t.branch.as_deref());
    match get(&m, "azureml.git.dirty") {
        Some(d) => {
            assert_eq!(d, if t.dirty { "True" } else { "False" });
            assert_eq!(
                get(&m, "provenance.git.describe"),
                Some(git_describe(&r.dir).as_str())
            );
        }
        None => {
            assert_eq!(
                get(&m, "provenance.git.dirty"),
                Some("unknown"),
                "dirty neither right nor unknown: {m:?}\n{}",
                out.stderr
            );
            out.stderr_has("dirty is unknown");
            assert_eq!(get(&m, "provenance.git.describe"), Some("unknown"));
            assert_eq!(get(&m, "provenance.git.fingerprint"), Some("unknown"));
        }
    }
}

fn has_shared_index(dir: &Path) -> bool {
    std::fs::read_dir(dir.join(".git"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("sharedindex."))
}

#[test]
fn the_fingerprint_tells_dirty_states_apart() {
    let r = Repo::new();
    let fp = |r: &Repo| {
        let (m, _) = ours(&r.sb, &r.dir, &[]);
        get(&m, "provenance.git.fingerprint").unwrap().to_owned()
    };
    let clean = fp(&r);
    assert!(
        clean.starts_with("sha256:") && clean.len() == 7 + 64,
        "{clean}"
    );
    assert_eq!(fp(&r), clean, "the same state twice");
    write(&r.dir.join("src/train.py"), "a\n");
    let a = fp(&r);
    assert_ne!(a, clean);
    assert_eq!(fp(&r), a);
    write(&r.dir.join("src/train.py"), "b\n");
    let b = fp(&r);
    assert_ne!(b, a, "same commit, different content");
    write(&r.dir.join("src/train.py"), "a\n");
    assert_eq!(fp(&r), a, "back to the same state");
    r.git(&["add", "src/train.py"]).ok();
    assert_ne!(fp(&r), a, "staged is another state");
    write(&r.dir.join("new/u.txt"), "u1\n");
    let u1 = fp(&r);
    write(&r.dir.join("new/u.txt"), "u2\n");
    assert_ne!(fp(&r), u1, "a file inside an untracked folder counts");
    write(&r.dir.join("x.log"), "ignored\n");
    write(&r.dir.join("new/u.txt"), "u1\n");
    assert_eq!(fp(&r), u1, "ignored files do not count");
}

/// Each kind of change is its own state (another fingerprint), and one state gives one
/// fingerprint however often it is asked; an ignored file changes nothing.
#[test]
fn the_fingerprint_tells_each_kind_of_change_apart() {
    let r = Repo::new();
    let fp = |r: &Repo, extra: &[&str]| {
        let (m, _) = ours(&r.sb, &r.dir, extra);
        get(&m, "provenance.git.fingerprint").unwrap().to_owned()
    };
    type Apply = fn(&Repo);
    let states: &[(&str, Apply)] = &[
        ("clean", |_| {}),
        ("modified", |r| write(&r.dir.join("src/train.py"), "y\n")),
        ("deleted", |r| {
            std::fs::remove_file(r.dir.join("src/train.py")).unwrap()
        }),
        ("file to symlink", |r| {
            std::fs::remove_file(r.dir.join("src/train.py")).unwrap();
            std::os::unix::fs::symlink("model.py", r.dir.join("src/train.py")).unwrap();
        }),
        ("staged deletion", |r| {
            r.git(&["rm", "-q", "--cached", "src/train.py"]).ok();
        }),
        ("staged", |r| {
            write(&r.dir.join("src/train.py"), "y\n");
            r.git(&["add", "src/train.py"]).ok();
        }),
        ("untracked file", |r| write(&r.dir.join("src/u.py"), "y\n")),
        ("untracked folder", |r| {
            write(&r.dir.join("src/u/v.py"), "y\n")
        }),
        ("another file in the untracked folder", |r| {
            write(&r.dir.join("src/u/w.py"), "y\n")
        }),
    ];
    let mut seen: Vec<(&str, String)> = Vec::new();
    for (name, apply) in states {
        r.git(&["reset", "-q", "--hard"]).ok();
        r.git(&["clean", "-qfd"]).ok();
        apply(&r);
        let a = fp(&r, &[]);
        assert_eq!(fp(&r, &[]), a, "{name}: the same state twice");
        write(&r.dir.join("ignored.log"), name);
        assert_eq!(fp(&r, &[]), a, "{name}: an ignored file does not count");
        if let Some((other, _)) = seen.iter().find(|(_, f)| *f == a) {
            panic!("{name} and {other} have one fingerprint {a}");
        }
        seen.push((name, a));
    }
}

#[test]
fn head_commit_metadata_and_the_superproject() {
    let r = Repo::new();
    r.git(&[
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "line one\nline two\n\nbody",
    ])
    .ok();
    let (m, _) = ours(&r.sb, &r.dir, &[]);
    let log = r.git(&["log", "-1", "--format=%an|%ae|%cI|%s"]);
    let want: Vec<&str> = log.stdout.trim().split('|').collect();
    assert_eq!(get(&m, "provenance.git.commit.author"), Some(want[0]));
    assert_eq!(get(&m, "provenance.git.commit.author_email"), Some(want[1]));
    assert_eq!(get(&m, "provenance.git.commit.time"), Some(want[2]));
    assert_eq!(get(&m, "provenance.git.commit.subject"), Some(want[3]));
    assert_eq!(want[3], "line one line two");
    assert_eq!(
        get(&m, "provenance.git.commit.has_signature"),
        Some("false")
    );
    // A commit with a signature header (git does not check it to store it).
    let tree = r
        .git(&["rev-parse", "HEAD^{tree}"])
        .stdout
        .trim()
        .to_owned();
    let head = r.git(&["rev-parse", "HEAD"]).stdout.trim().to_owned();
    let raw = format!(
        "tree {tree}\nparent {head}\nauthor A <a@example.com> 1767225600 +0100\ncommitter A <a@example.com> 1767225600 +0100\ngpgsig -----BEGIN SSH SIGNATURE-----\n U1NIU0lH\n -----END SSH SIGNATURE-----\n\nsigned\n"
    );
    let id = git_stdin(
        &r.dir,
        &["hash-object", "-t", "commit", "-w", "--stdin"],
        raw.as_bytes(),
    );
    id.ok();
    r.git(&["update-ref", "refs/heads/main", id.stdout.trim()])
        .ok();
    let (m, _) = ours(&r.sb, &r.dir, &[]);
    assert_eq!(get(&m, "provenance.git.commit.has_signature"), Some("true"));
    assert_eq!(
        get(&m, "provenance.git.commit.time"),
        Some("2026-01-01T01:00:00+01:00")
    );
    assert!(m.get("provenance.git.superproject.commit").is_none());

    // The code inside a submodule: the superproject's commit and the submodule's path.
    let sup = empty_repo(&r.sb, "super");
    write(&sup.join("a.txt"), "a\n");
    git(&sup, &["add", "-A"]).ok();
    git(&sup, &["commit", "-q", "-m", "super"]).ok();
    git(
        &sup,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            r.dir.to_str().unwrap(),
            "libs/code",
        ],
    )
    .ok();
    // Staged, not committed: git finds it in the superproject's index (read by the status
    // scan's index reader, not libgit2's), and so does keyclone.
    let code = sup.join("libs/code");
    let git_shows_the_superproject = || {
        let shown = git(&code, &["rev-parse", "--show-superproject-working-tree"]);
        assert_eq!(
            Path::new(shown.stdout.trim()).canonicalize().unwrap(),
            sup.canonicalize().unwrap()
        );
    };
    git_shows_the_superproject();
    let (m, _) = ours(&r.sb, &code, &[]);
    assert_eq!(
        get(&m, "provenance.git.superproject.path"),
        Some("libs/code")
    );
    assert_eq!(
        get(&m, "provenance.git.superproject.commit"),
        Some(git(&sup, &["rev-parse", "HEAD"]).stdout.trim())
    );
    git(&sup, &["commit", "-q", "-m", "add the submodule"]).ok();
    git_shows_the_superproject();
    let (m, _) = ours(&r.sb, &code, &[]);
    let sup_head = git(&sup, &["rev-parse", "HEAD"]);
    assert_eq!(
        get(&m, "provenance.git.superproject.commit"),
        Some(sup_head.stdout.trim())
    );
    assert_eq!(
        get(&m, "provenance.git.superproject.path"),
        Some("libs/code")
    );
    assert_eq!(
        get(&m, "azureml.git.commit"),
        Some(git(&code, &["rev-parse", "HEAD"]).stdout.trim())
    );
}
