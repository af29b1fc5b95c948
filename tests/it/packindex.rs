//! The clone's own pack indexer (`src/git/packindex`) against damaged packs: a real sshd whose
//! ForceCommand (`support/damage_pack.py`) runs the real `git-upload-pack` and damages the pack
//! on the way, as a hostile server would. keyclone must refuse each one as `git clone` does,
//! with the error class libgit2's indexer gives (`io`, exit code 7), and leave nothing.

use std::path::Path;

use crate::clone::{PASS, Setup};
use crate::support::git::git_clone_with_openssh;
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

#[test]
fn damaged_packs_are_refused_like_git_and_leave_nothing() {
    let python = require("python3", "python3");
    let mode = tempfile::NamedTempFile::new().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/damage_pack.py");
    let force = format!(
        "ForceCommand {} {} {}",
        python.display(),
        script.display(),
        mode.path().display()
    );
    let s = Setup::with_sshd(Sshd::start_with(&["127.0.0.1"], &force), "ed25519");
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
