//! The dirty scan on the states where git reads a file's content, or converts it, before it
//! says "changed": racily clean and never-refreshed entries, checkout conversions named by
//! `.gitattributes` for some paths only, and submodules never populated. Each compared with
//! `git status --porcelain` (through `provenance::agrees`, which also checks that the fast
//! scan answered).

use std::time::SystemTime;

use crate::provenance::{Repo, add_submodule, agrees, same, theirs, write};
use crate::support::git::git;

fn touch(p: &std::path::Path) {
    std::fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
}

#[test]
fn entries_whose_stat_data_proves_nothing_are_settled_by_content() {
    let r = Repo::new();
    // `git read-tree` leaves every entry's stat data zero: git reads the files, finds them
    // equal to their blobs, and says clean.
    r.git(&["read-tree", "HEAD"]).ok();
    assert!(!theirs(&r.dir).dirty);
    r.git(&["read-tree", "HEAD"]).ok();
    agrees(&r, "", same);
    // The same, with one file changed at the same size: dirty.
    r.git(&["read-tree", "HEAD"]).ok();
    write(&r.dir.join("src/model.py"), "m = 9\n");
    agrees(&r, "", same);
    r.git(&["checkout", "--", "."]).ok();

    // Racily clean: rewritten at the same size right after `git add`, so mtime, ctime and size
    // may all still match the index, which is not older than the file.
    for round in 0..5 {
        let p = r.dir.join("src/train.py");
        write(&p, &format!("print({round})\n"));
        r.git(&["add", "src/train.py"]).ok();
        write(&p, &format!("print({})\n", round + 1));
        agrees(&r, "", same);
        r.git(&["add", "src/train.py"]).ok();
        agrees(&r, "", same);
    }
}

#[test]
fn conversions_named_for_some_paths_only() {
    let r = Repo::new();
    write(
        &r.dir.join(".gitattributes"),
        "*.bat eol=crlf\n*.auto text=auto\n*.id ident\n",
    );
    write(&r.dir.join("run.bat"), "echo 1\n");
    write(&r.dir.join("notes.auto"), "a\r\nb\r\n");
    write(&r.dir.join("v.id"), "$Id$\n");
    r.git(&["add", "-A"]).ok();
    r.git(&["commit", "-q", "-m", "attributes"]).ok();
    // Checked out again, so the conversions are applied to the files.
    for f in ["run.bat", "notes.auto", "v.id"] {
        std::fs::remove_file(r.dir.join(f)).unwrap();
    }
    r.git(&["checkout", "--", "."]).ok();
    assert_eq!(std::fs::read(r.dir.join("run.bat")).unwrap(), b"echo 1\r\n");
    agrees(&r, "", same);
    // Touched: the bytes differ from the blob only by the conversion: clean.
    for f in ["run.bat", "notes.auto", "v.id", "README.md"] {
        touch(&r.dir.join(f));
        agrees(&r, "", same);
    }
    // A file no attribute converts, changed at the same size: dirty.
    write(&r.dir.join("README.md"), "# s\n");
    agrees(&r, "", same);
    r.git(&["checkout", "--", "README.md"]).ok();
    // The CRLF file written back with LF: another size, which git calls a change unread.
    write(&r.dir.join("run.bat"), "echo 1\n");
    agrees(&r, "", same);
    r.git(&["checkout", "--", "run.bat"]).ok();
    agrees(&r, "", same);
}

#[test]
fn a_clean_filter_driver_is_left_to_libgit2_and_agrees() {
    let r = Repo::new();
    r.git(&["config", "filter.upper.clean", "tr a-z A-Z"]).ok();
    r.git(&["config", "filter.upper.smudge", "cat"]).ok();
    write(&r.dir.join(".gitattributes"), "*.up filter=upper\n");
    write(&r.dir.join("a.up"), "ABC\n");
    r.git(&["add", "-A"]).ok();
    r.git(&["commit", "-q", "-m", "filter"]).ok();
    touch(&r.dir.join("a.up"));
    agrees(&r, "", same);
}

#[test]
fn a_submodule_never_populated_is_clean() {
    let r = Repo::new();
    add_submodule(&r);
    // A clone that does not recurse: `lib` is an empty folder.
    let copy = r.sb.root.path().join("copy");
    git(
        r.sb.root.path(),
        &[
            "clone",
            "-q",
            r.dir.to_str().unwrap(),
            copy.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(copy.join("lib").is_dir() && !copy.join("lib/.git").exists());
    git(
        &copy,
        &[
            "remote",
            "set-url",
            "origin",
            "https://github.com/example/r.git",
        ],
    )
    .ok();
    std::fs::remove_dir_all(&r.dir).unwrap();
    std::fs::rename(&copy, &r.dir).unwrap();
    agrees(&r, "", same);
    // The folder gone: deleted, for both.
    std::fs::remove_dir(r.dir.join("lib")).unwrap();
    agrees(&r, "", same);
}
