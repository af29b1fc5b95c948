//! Git LFS content that cannot or must not be fetched: no LFS server, `--no-lfs`, an object whose
//! content is not its OID, a server that lies about a size, an `http://` link, a link to another
//! host, a broken pointer. The clone stays in place; the files left as pointers are named, with
//! the command that fetches them, and the exit code is 12.

use crate::clone::Setup;
use crate::lfs::Lfs;
use crate::support::lfs::{assert_left_as_pointers, is_pointer, said};

#[test]
fn a_server_without_lfs_leaves_the_pointers_named_and_exits_12() {
    let lfs = Lfs::new("none");
    std::fs::remove_file(lfs.cmds.path().join("git-lfs-authenticate")).unwrap();
    let dest = lfs.setup.dest("models");
    let out = lfs.clone(&dest, &[]);
    // It asked for both protocols and neither is there: both named.
    assert_left_as_pointers(
        &out,
        &dest,
        "offers no LFS server over SSH (`git-lfs-authenticate` exited 127: git-lfs-authenticate: command not found); and `git-lfs-transfer`: it exited 127: git-lfs-transfer: command not found",
    );
    // The clone is there, its LFS files are pointers.
    assert_eq!(
        std::fs::read(dest.join("notes.txt")).unwrap(),
        b"not in LFS\n"
    );
}

#[test]
fn no_lfs_leaves_the_pointers_as_asked_without_asking_the_server() {
    let lfs = Lfs::new("none");
    let dest = lfs.setup.dest("models");
    let out = lfs.clone(&dest, &["--no-lfs"]);
    out.ok();
    assert!(
        said(&out).contains("2 LFS files are left as pointers, as asked"),
        "{}",
        said(&out)
    );
    assert!(is_pointer(&dest.join("model.bin")));
    assert!(!lfs.cmds.path().join("lfs-commands.log").exists());
    // doctor, run in the clone, notes the pointers and the command.
    let mut cmd = lfs.setup.sb.cmd();
    cmd.current_dir(&dest).args(["doctor", "--offline"]);
    let doc = lfs.setup.sb.run_cmd(cmd);
    let text = said(&doc);
    assert!(
        text.contains("WARN lfs")
            && text.contains("2 Git LFS files in")
            && text.contains("keyclone lfs pull"),
        "{text}"
    );
}

#[test]
fn include_and_exclude_choose_the_files() {
    let lfs = Lfs::new("none");
    let dest = lfs.setup.dest("models");
    lfs.clone(&dest, &["--lfs-include", "data/"]).ok();
    assert!(!is_pointer(&dest.join("data/set.bin")));
    assert!(is_pointer(&dest.join("model.bin")));
    let dest = lfs.setup.dest("models2");
    lfs.clone(&dest, &["--lfs-exclude", "*.bin"]).ok();
    assert!(is_pointer(&dest.join("data/set.bin")));
}

#[test]
fn an_object_that_does_not_match_its_oid_is_refused_and_named() {
    let lfs = Lfs::new("none");
    // `git lfs ls-files` lists by path: the first oid is data/set.bin's. Same size, other bytes.
    let stored = lfs.server().object("models", &lfs.oids[0]);
    let len = std::fs::metadata(&stored).unwrap().len() as usize;
    std::fs::write(&stored, vec![b'x'; len]).unwrap();
    let dest = lfs.setup.dest("models");
    let out = lfs.clone(&dest, &[]);
    out.code(12);
    let text = said(&out);
    assert!(
        text.contains("data/set.bin") && text.contains("does not match its pointer"),
        "{text}"
    );
    assert!(is_pointer(&dest.join("data/set.bin")));
    assert!(!is_pointer(&dest.join("model.bin")));
    let oid = &lfs.oids[0];
    let object = dest
        .join(".git/lfs/objects")
        .join(&oid[..2])
        .join(&oid[2..4])
        .join(oid);
    assert!(!object.exists());
    let left: Vec<_> = std::fs::read_dir(object.parent().unwrap())
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_server_that_lies_about_the_size_is_refused() {
    let lfs = Lfs::new("size");
    let dest = lfs.setup.dest("models");
    let out = lfs.clone(&dest, &[]);
    out.code(12);
    assert!(said(&out).contains("its pointer says"), "{}", said(&out));
    assert!(is_pointer(&dest.join("model.bin")));
}

#[test]
fn an_http_link_is_refused_and_never_fetched() {
    let lfs = Lfs::new("http");
    let dest = lfs.setup.dest("models");
    let out = lfs.clone(&dest, &[]);
    out.code(12);
    assert!(said(&out).contains("HTTPS only"), "{}", said(&out));
    assert!(is_pointer(&dest.join("model.bin")));
    assert!(
        !lfs.server().requests().contains("GET "),
        "{}",
        lfs.server().requests()
    );
}

#[test]
fn a_link_to_another_host_gets_no_ssh_derived_header() {
    let lfs = Lfs::new("other-host");
    let dest = lfs.setup.dest("models");
    lfs.clone(&dest, &[]).ok();
    assert!(!is_pointer(&dest.join("model.bin")));
    let log = lfs.server().requests();
    let gets: Vec<&str> = log.lines().filter(|l| l.starts_with("GET ")).collect();
    assert_eq!(gets.len(), 2, "{log}");
    assert!(
        gets.iter()
            .all(|l| l.contains(" localhost:") && l.ends_with("auth=no")),
        "{log}"
    );
    assert!(log.contains("/objects/batch auth=yes"), "{log}");
}

#[test]
fn a_broken_pointer_is_left_as_it_is_and_named() {
    let s = Setup::new("ed25519");
    let work = s.work("broken");
    std::fs::write(work.join(".gitattributes"), "*.bin filter=lfs -text\n").unwrap();
    let broken = "version https://git-lfs.github.com/spec/v1\noid sha256:not-hex\nsize 5\n";
    std::fs::write(work.join("model.bin"), broken).unwrap();
    s.push(&work, "a broken pointer");
    let dest = s.dest("ours");
    let out = s.clone(&[dest.to_str().unwrap()]);
    out.ok();
    assert!(
        said(&out).contains("`model.bin` is marked as an LFS file but is not a valid LFS pointer"),
        "{}",
        said(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("model.bin")).unwrap(),
        broken
    );
}

#[test]
fn json_output_is_one_object_with_or_without_lfs_content() {
    let lfs = Lfs::new("none");
    let dest = lfs.setup.dest("models");
    let out = lfs.clone(&dest, &["--json"]);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["lfs"]["fetched"], 2, "{v}");
    assert_eq!(v["lfs"]["bytes"], 2 * 300 * 1024, "{v}");
    std::fs::remove_file(lfs.cmds.path().join("git-lfs-authenticate")).unwrap();
    let dest = lfs.setup.dest("models2");
    let out = lfs.clone(&dest, &["--json"]);
    out.code(12);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "incomplete", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model.bin"),
        "{v}"
    );
}
