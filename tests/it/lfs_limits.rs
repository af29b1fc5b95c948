//! Git LFS downloads at the edges: a server that stops sending mid-body, an object far larger
//! than keyclone's memory should ever hold, a disk that fills mid-object. Each ends with the
//! file left as its pointer and named, nothing half-written in the work tree or the object store.

use std::path::Path;

use crate::lfs::Lfs;
use crate::support::git::ssh_url;
use crate::support::lfs::{
    Store, assert_left_as_pointers, files_under, is_pointer, make_lfs_repo, said,
};

/// The clone's work tree holds only what git checked out: no temporary file beside a pointer.
fn work_tree_names(dest: &Path) -> Vec<String> {
    let mut names: Vec<String> = files_under(dest)
        .into_iter()
        .filter(|p| !p.starts_with(dest.join(".git")))
        .map(|p| p.strip_prefix(dest).unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const CHECKED_OUT: [&str; 5] = [
    ".gitattributes",
    "README.md",
    "data/set.bin",
    "model.bin",
    "notes.txt",
];

#[test]
fn a_server_that_stalls_mid_body_fails_the_file_by_name_and_leaves_its_pointer() {
    let lfs = Lfs::new("stall");
    let dest = lfs.setup.dest("models");
    // --stall-timeout: the longest silence keyclone waits for, on the clone and the downloads.
    let out = lfs.clone(&dest, &["--stall-timeout", "3"]);
    assert_left_as_pointers(
        &out,
        &dest,
        "the server stopped sending: nothing came for 3 s",
    );
    assert_eq!(work_tree_names(&dest), CHECKED_OUT);
    // Both downloads were begun: the stall came mid-body, not before it.
    let log = lfs.server().requests();
    assert_eq!(
        log.lines().filter(|l| l.starts_with("GET ")).count(),
        2,
        "{log}"
    );
}

#[test]
fn a_full_disk_mid_object_leaves_the_pointers_named_and_nothing_half_written() {
    let lfs = Lfs::new("none");
    let dest = lfs.setup.dest("models");
    // A file-size limit of 100 KiB (200 blocks of 512 bytes) on keyclone alone: the 300 KiB
    // objects cannot be written whole, as on a full disk. SIGXFSZ ignored, so the write fails
    // with EFBIG instead of killing the process, as ENOSPC would.
    let mut cmd = lfs.setup.sb.cmd_of(Path::new("/bin/sh"));
    cmd.env("SSL_CERT_FILE", lfs.server().ca()).args([
        "-c",
        "trap '' XFSZ; ulimit -f 200 && exec \"$0\" \"$@\"",
        crate::support::keyclone_bin().to_str().unwrap(),
        "clone",
        &lfs.url,
        dest.to_str().unwrap(),
        "--passphrase-file",
        lfs.setup.pass_file.to_str().unwrap(),
    ]);
    let out = lfs.setup.sb.run_cmd(cmd);
    assert_left_as_pointers(&out, &dest, "no room left");
    assert_eq!(work_tree_names(&dest), CHECKED_OUT);
    // With room again, the same clone completes.
    let pulled = lfs.pull(&dest, &[]);
    pulled.ok();
    assert!(!is_pointer(&dest.join("model.bin")));
    lfs.git(&dest, &["lfs", "fsck"]).ok();
}

/// `size` bytes that are not all one value, made a MiB at a time.
fn big(size: usize) -> Vec<u8> {
    let block: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut out = Vec::with_capacity(size);
    let mut n: u8 = 0;
    while out.len() < size {
        let take = (size - out.len()).min(block.len());
        out.extend(block[..take].iter().map(|b| b ^ n));
        n = n.wrapping_add(1);
    }
    out
}

#[test]
fn a_large_object_is_streamed_never_held_in_memory() {
    // 192 MiB: big enough that holding it would show, small enough for CI's time and disk.
    const SIZE: usize = 192 * 1024 * 1024;
    let lfs = Lfs::new("none");
    let content = big(SIZE);
    let (bare, _) = make_lfs_repo(
        lfs.setup.repos.path(),
        "weights",
        &[("big.bin", &content)],
        Store::Giftless(lfs.server()),
    );
    // The work copy the repository was made from is no longer needed: disk for the clone.
    std::fs::remove_dir_all(lfs.setup.repos.path().join("weights-work")).unwrap();
    let url = ssh_url(&lfs.setup.sshd, &bare);
    let dest = lfs.setup.dest("weights");
    let peak_file = lfs.setup.repos.path().join("peak-rss-kib");
    let time = crate::support::require("time", "time");
    let mut cmd = lfs.setup.sb.cmd_of(&time);
    cmd.env("SSL_CERT_FILE", lfs.server().ca())
        .args(["-f", "%M", "-o"])
        .arg(&peak_file)
        .arg(crate::support::keyclone_bin())
        .args(["clone", &url])
        .arg(&dest)
        .arg("--passphrase-file")
        .arg(&lfs.setup.pass_file);
    let out = lfs.setup.sb.run_cmd(cmd);
    out.ok();
    assert!(
        said(&out).contains("1 LFS file (192.0 MiB) fetched"),
        "{}",
        said(&out)
    );
    let peak_kib: u64 = std::fs::read_to_string(&peak_file)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eprintln!(
        "keyclone's peak RSS: {peak_kib} KiB for a {} KiB object",
        SIZE / 1024
    );
    // Far below the object: a quarter of it would already mean a copy in memory somewhere.
    assert!(
        peak_kib < (SIZE as u64 / 1024) / 4,
        "keyclone's peak RSS was {peak_kib} KiB for a {} KiB object",
        SIZE / 1024
    );
    let got = std::fs::read(dest.join("big.bin")).unwrap();
    assert!(got == content, "big.bin is not the object's content");
    drop(got);
    lfs.git(&dest, &["lfs", "fsck"]).ok();
    let status = lfs.git(&dest, &["status", "--porcelain"]);
    assert_eq!(status.stdout, "", "git status is not clean");
}
