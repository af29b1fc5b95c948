//! Git LFS over the pure SSH protocol (`git-lfs-transfer PATH download`): against scutiger-lfs's
//! `git-lfs-transfer` (a kept server) on the test sshd with no `git-lfs-authenticate` at all,
//! the real `git-lfs` client as the oracle (it uses the same protocol: its trace says so); and a
//! hostile stand-in server (`support/lfs_transfer_hostile.py`) whose objects lie, whose
//! pkt-lines break the framing, that stalls or hangs up mid-object.

use std::path::Path;

use crate::lfs::Lfs;
use crate::support::lfs::{assert_left_as_pointers, assert_says, said};

/// What a client sent to `git-lfs-transfer`, the `get-object` lines.
fn get_objects(lfs: &Lfs) -> Vec<String> {
    let log = std::fs::read(lfs.cmds.path().join("transfer-requests.log")).unwrap_or_default();
    String::from_utf8_lossy(&log)
        .split("get-object ")
        .skip(1)
        .map(|rest| rest.chars().take(64).collect())
        .collect()
}

#[test]
fn a_clone_over_the_pure_ssh_protocol_is_whole_as_git_lfs_makes_it() {
    let lfs = Lfs::pure();
    let dest = lfs.setup.dest("models");
    let out = lfs.clone(&dest, &[]);
    out.ok();
    assert_says(&said(&out), &["2 LFS files (0.6 MiB) fetched over SSH"]);
    // Only the pure protocol was asked: the server has no `git-lfs-authenticate`.
    let cmds = lfs.commands();
    let expected = format!("git-lfs-transfer '{}' download", lfs.bare.display());
    assert!(cmds.lines().all(|l| l == expected), "{cmds}");
    let mut got = get_objects(&lfs);
    got.sort();
    let mut want = lfs.oids.clone();
    want.sort();
    assert_eq!(got, want);
    // Whole, and as git + git-lfs make it; git-lfs used the pure protocol too (its trace).
    let o = lfs.assert_whole(&dest);
    assert!(
        o.stderr.contains("attempting pure SSH protocol connection")
            && o.stderr.contains(r#"starting transfer adapter "ssh""#),
        "git-lfs did not use the pure protocol:\n{}",
        o.stderr
    );
}

#[test]
fn lfs_pull_over_the_pure_protocol_fetches_only_what_is_missing() {
    let lfs = Lfs::pure();
    let dest = lfs.setup.dest("models");
    lfs.clone(&dest, &["--no-lfs"]).ok();
    // As after an interrupted run: model.bin's object is already stored.
    let oid = &lfs.oids[1];
    let rel = Path::new(&oid[..2]).join(&oid[2..4]).join(oid);
    let stored = dest.join(".git/lfs/objects").join(&rel);
    std::fs::create_dir_all(stored.parent().unwrap()).unwrap();
    std::fs::copy(lfs.bare.join("lfs/objects").join(&rel), &stored).unwrap();
    let out = lfs.pull(&dest, &["--json"]);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["lfs"]["fetched"], 2, "{v}");
    assert_eq!(v["lfs"]["protocol"], "ssh", "{v}");
    assert_eq!(get_objects(&lfs), [lfs.oids[0].clone()]);
    lfs.git(&dest, &["lfs", "fsck"]).ok();
    let status = lfs.git(&dest, &["status", "--porcelain"]);
    assert_eq!(status.stdout, "", "git status is not clean");
}

/// A clone from the hostile stand-in in `mode`: it exits 12 naming both files with `why`,
/// leaves them pointers and stores nothing.
fn refused(mode: &str, extra: &[&str], why: &str) {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/lfs_transfer_hostile.py");
    let lfs = Lfs::pure_by(&script, &[("HOSTILE_MODE", mode)]);
    let dest = lfs.setup.dest("models");
    let out = lfs.clone(&dest, extra);
    assert_left_as_pointers(&out, &dest, why);
    // It was asked over the pure protocol only.
    assert!(!lfs.commands().contains("git-lfs-authenticate"));
}

#[test]
fn an_object_whose_bytes_are_not_its_oid_is_refused() {
    refused("bad-oid", &[], "does not match its pointer: its SHA-256 is");
}

#[test]
fn a_server_that_lies_about_the_size_is_refused() {
    refused(
        "size",
        &[],
        "says the object has 307201 bytes, its pointer says 307200: refused",
    );
}

#[test]
fn a_pkt_line_longer_than_allowed_is_refused() {
    refused("long-pkt", &[], "longer than the 65520 allowed");
}

#[test]
fn a_pkt_line_with_a_bad_hex_length_is_refused() {
    refused("bad-hex", &[], "whose length is not four hex digits");
}

#[test]
fn a_server_that_stalls_mid_object_is_given_up_after_the_stall_timeout() {
    refused(
        "stall",
        &["--stall-timeout", "3"],
        "the server stopped sending: nothing came for 3 s",
    );
}

#[test]
fn a_server_that_hangs_up_mid_object_is_named() {
    refused(
        "close",
        &[],
        "closed the connection in the middle of the object",
    );
}
