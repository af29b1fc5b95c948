//! The clone's own pack indexer (`src/git/packindex`) against damaged packs: a real sshd whose
//! ForceCommand (`support/damage_pack.py`) runs the real `git-upload-pack` and damages the pack
//! on the way, as a hostile server would. keyclone must refuse each one as `git clone` does,
//! with the error class libgit2's indexer gives (`io`, exit code 7), and leave nothing.

use std::path::Path;

use crate::clone::{PASS, Setup};
use crate::support::git::{git, git_clone_with_openssh, make_repo, ssh_url, state};
use crate::support::require;
use crate::support::sshd::Sshd;

/// What is in `dir` besides the sandbox's own folders, by name.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".keyclone-clone-") || n.starts_with("dest"))
        .collect()
}

/// The test sshd with `support/damage_pack.py` as its ForceCommand, and the file that names
/// the damage (`none` to begin with).
fn damaging_setup() -> (Setup, tempfile::NamedTempFile) {
    let python = require("python3", "python3");
    let mode = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(mode.path(), "none").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/damage_pack.py");
    let force = format!(
        "ForceCommand {} {} {}",
        python.display(),
        script.display(),
        mode.path().display()
    );
    let s = Setup::with_sshd(Sshd::start_with(&["127.0.0.1"], &force), "ed25519");
    (s, mode)
}

#[test]
fn damaged_packs_are_refused_like_git_and_leave_nothing() {
    let (s, mode) = damaging_setup();
    let set = |m: &str| std::fs::write(mode.path(), m).unwrap();

    // The filter itself passes an undamaged pack through: the clone works and matches git's.
    set("none");
    let dest = s.dest("dest-none");
    s.clone(&[dest.to_str().unwrap()]).ok();
    assert!(dest.join("README.md").is_file());
    std::fs::remove_dir_all(&dest).unwrap();

    // mode, what keyclone's message must name (the indexer that refused it)
    let cases = [
        ("object", "invalid pack"),
        ("count", "invalid pack"),
        ("trailer", "invalid pack"),
        ("extra", "unexpected data at the end of the pack"),
    ];
    for (m, says) in cases {
        set(m);
        let dest = s.dest(&format!("dest-{m}"));
        let out = s.clone(&[dest.to_str().unwrap()]);
        assert_eq!(
            out.code, 7,
            "{m}: expected the io error; stderr:\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("the clone failed") && out.stderr.contains(says),
            "{m}: stderr:\n{}",
            out.stderr
        );
        assert!(!dest.exists(), "{m}: the destination was left behind");
        assert_eq!(leftovers(s.sb.root.path()), Vec::<String>::new(), "{m}");
        let theirs = s.dest(&format!("git-{m}"));
        let git = git_clone_with_openssh(&s.url, &theirs, &s.key, PASS, &s.known_hosts(), &[]);
        assert_ne!(
            git.code, 0,
            "{m}: git accepted the damaged pack: {}",
            git.stderr
        );
        let _ = std::fs::remove_dir_all(&theirs);
    }
}

/// The `.pack` and `.idx` a clone's repository (or a submodule's, in `.git/modules/NAME`) holds.
fn pack_pair(git_dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = git_dir.join("objects/pack");
    let find = |ext: &str| {
        let found: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        assert_eq!(found.len(), 1, "one .{ext} in {}: {found:?}", dir.display());
        found[0].clone()
    };
    (find("pack"), find("idx"))
}

/// A submodule's pack goes to the parallel indexer too (it was libgit2's single-threaded one):
/// the clone with `--recurse-submodules` equals `git clone --recurse-submodules` (HEADs, index,
/// refs, `git submodule status`, fsck), the submodule's index is byte for byte the one
/// `git index-pack` writes for the same pack, and a submodule pack with a damaged trailer is
/// refused in gix-pack's words ("invalid pack"), where libgit2's indexer says "packfile trailer
/// mismatch": the observable proof of which indexer took it.
#[test]
fn a_submodule_is_indexed_by_the_parallel_indexer_and_equals_git_clone() {
    let (s, mode) = damaging_setup();
    let set = |m: &str| std::fs::write(mode.path(), m).unwrap();
    set("none");
    let lib = make_repo(s.repos.path(), "lib");
    let lib_head = git(&lib, &["rev-parse", "main"]).stdout.trim().to_owned();
    let work = s.work("super-work");
    std::fs::write(
        work.join(".gitmodules"),
        format!(
            "[submodule \"lib\"]\n\tpath = lib\n\turl = {}\n",
            ssh_url(&s.sshd, &lib)
        ),
    )
    .unwrap();
    let cacheinfo = format!("160000,{lib_head},lib");
    git(&work, &["update-index", "--add", "--cacheinfo", &cacheinfo]).ok();
    git(&work, &["add", ".gitmodules"]).ok();
    git(&work, &["commit", "-q", "-m", "add lib"]).ok();
    git(&work, &["push", "-q", "origin", "main"]).ok();

    let (ours, theirs) = s.clone_both(&["--recurse-submodules"]);
    for dir in [ours.clone(), ours.join("lib")] {
        let rel = dir.strip_prefix(&ours).unwrap();
        let (head, files, fsck) = state(&dir);
        let (their_head, their_files, _) = state(&theirs.join(rel));
        assert_eq!((&head, &files), (&their_head, &their_files), "{rel:?}");
        assert!(fsck, "{rel:?}: git fsck failed");
        assert_eq!(git(&dir, &["status", "--porcelain"]).stdout, "", "{rel:?}");
    }
    let refs = |d: &Path| {
        git(
            d,
            &[
                "for-each-ref",
                "--format=%(refname) %(objectname) %(upstream)",
            ],
        )
        .stdout
    };
    assert_eq!(refs(&ours.join("lib")), refs(&theirs.join("lib")));
    assert_eq!(
        git(&ours, &["submodule", "status"]).stdout,
        git(&theirs, &["submodule", "status"]).stdout
    );
    let (pack, idx) = pack_pair(&ours.join(".git/modules/lib"));
    let git_idx = s.repos.path().join("git-index-pack.idx");
    git(
        s.repos.path(),
        &[
            "index-pack",
            "-o",
            git_idx.to_str().unwrap(),
            pack.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read(&idx).unwrap(),
        std::fs::read(&git_idx).unwrap()
    );

    // Only the submodule's pack damaged: the superproject is cloned, the submodule refused by
    // gix-pack, and nothing is left.
    set("trailer lib.git");
    let dest = s.dest("dest-damaged-sub");
    let out = s.clone(&[dest.to_str().unwrap(), "--recurse-submodules"]);
    assert_eq!(out.code, 7, "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains("invalid pack") && !out.stderr.contains("trailer mismatch"),
        "stderr:\n{}",
        out.stderr
    );
    assert!(!dest.exists(), "the destination was left behind");
    let theirs_damaged = s.dest("git-damaged-sub");
    let git = git_clone_with_openssh(
        &s.url,
        &theirs_damaged,
        &s.key,
        PASS,
        &s.known_hosts(),
        &["--recurse-submodules"],
    );
    assert_ne!(git.code, 0, "git accepted the damaged pack: {}", git.stderr);
}

/// When the parallel indexer cannot start (debug builds: `KEYCLONE_TEST_NO_PACK_INDEXER`, which
/// fails its start as a `objects/pack` without room for its temporary files would), libgit2's
/// own indexer takes the pack: the clone equals git's, its index is git index-pack's, and a
/// damaged trailer is refused in libgit2's words ("packfile trailer mismatch"), proof that it
/// was libgit2's indexer, and leaves nothing.
#[test]
fn without_the_parallel_indexer_libgit2s_clones_what_git_clones() {
    let (s, mode) = damaging_setup();
    let clone = |dest: &Path| {
        let mut cmd = s.sb.cmd();
        cmd.args(["clone", s.url.as_str(), "--passphrase-file"])
            .arg(&s.pass_file)
            .arg(dest)
            .env("KEYCLONE_TEST_NO_PACK_INDEXER", "1");
        s.sb.run_cmd(cmd)
    };
    let ours = s.dest("ours");
    clone(&ours).ok();
    let theirs = s.dest("theirs");
    git_clone_with_openssh(&s.url, &theirs, &s.key, PASS, &s.known_hosts(), &[]).ok();
    let (head, files, fsck) = state(&ours);
    let (their_head, their_files, _) = state(&theirs);
    assert_eq!((head, files), (their_head, their_files));
    assert!(fsck, "git fsck failed on the clone");
    let (pack, idx) = pack_pair(&ours.join(".git"));
    let git_idx = s.repos.path().join("git-index-pack.idx");
    git(
        s.repos.path(),
        &[
            "index-pack",
            "-o",
            git_idx.to_str().unwrap(),
            pack.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read(&idx).unwrap(),
        std::fs::read(&git_idx).unwrap()
    );

    std::fs::write(mode.path(), "trailer").unwrap();
    let dest = s.dest("dest-trailer");
    let out = clone(&dest);
    assert_eq!(out.code, 7, "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains("packfile trailer mismatch"),
        "stderr:\n{}",
        out.stderr
    );
    assert!(!dest.exists(), "the destination was left behind");
    assert_eq!(leftovers(s.sb.root.path()), Vec::<String>::new());
}
