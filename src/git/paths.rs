//! git's path rules for what a clone writes, checked on every tree entry and gitlink of the
//! commit to check out *before* any file is written, whichever checkout runs.
//!
//! The rules for one name come from gitoxide's kept implementation (`gix-validate`, the port of
//! git's `verify_path`): no empty name, no `/`, no `.` or `..`, `.git` in no spelling (case,
//! NTFS `git~1`, `.git.`, `.git ` and `.git::$INDEX_ALLOCATION`, HFS ignorable code points), no
//! symlinked `.gitmodules`. keyclone adds the rules for a tree as a whole that git enforces at
//! checkout time or that a case-insensitive share (an Azure ML `~/cloudfiles/code` is SMB) needs:
//! no name twice in a tree, and no link whose name differs from another entry only in case
//! (the other entry's files would be written through the link); plus no symlinked
//! `.gitattributes`/`.gitignore` (git stopped following those in 2.32) and only the file modes
//! git writes.
//!
//! The rules are pure functions over names and modes ([`check_entries`]); [`check_tree`] walks a
//! tree without recursion (depth is chosen by whoever wrote the tree) and checks each distinct
//! tree object once.

use std::collections::{HashMap, HashSet};

use gix_validate::path::component;

/// A tree entry's mode, as git stores it.
pub const MODE_TREE: u32 = 0o040000;
pub const MODE_FILE: u32 = 0o100644;
pub const MODE_EXEC: u32 = 0o100755;
/// Old git wrote group-writable blobs; git still checks them out as plain files.
pub const MODE_FILE_GROUP: u32 = 0o100664;
pub const MODE_SYMLINK: u32 = 0o120000;
pub const MODE_GITLINK: u32 = 0o160000;

/// Which rule a name broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Empty,
    Separator,
    Relative,
    DotGit,
    SymlinkedDotfile(&'static str),
    /// A name that git refuses for another reason gix-validate gives.
    Other(String),
    Duplicate,
    CaseFoldLink,
    Mode(u32),
    /// A submodule whose name or path leaves its folder.
    SubmoduleName,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Empty => f.write_str("an empty name"),
            Rule::Separator => f.write_str("a name holding `/` (or an absolute path)"),
            Rule::Relative => f.write_str("`.` or `..`, which would leave the folder"),
            Rule::DotGit => f.write_str(
                "a spelling of `.git` (checking it out would write into the repository's own folder: hooks, config)",
            ),
            Rule::SymlinkedDotfile(name) => write!(f, "`{name}` as a symbolic link"),
            Rule::Other(why) => f.write_str(why),
            Rule::Duplicate => f.write_str("a name that stands twice in the same folder"),
            Rule::CaseFoldLink => f.write_str(
                "a link whose name differs from another entry's only in case (on a case-insensitive file system the other entry would be written through the link)",
            ),
            Rule::Mode(m) => write!(f, "an unknown file mode {m:o}"),
            Rule::SubmoduleName => {
                f.write_str("a submodule name or path that leaves its folder (`..` or absolute)")
            }
        }
    }
}

/// A path the checkout would refuse, with the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The path from the work tree's root, with control characters escaped for display.
    pub path: String,
    pub rule: Rule,
}

/// What the walk learnt about the tree, for the checkout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeFacts {
    /// Whether any folder holds a `.gitattributes` (checkout filters may then apply).
    pub has_attributes: bool,
    /// Entries that are files, links or gitlinks.
    pub files: usize,
}

const OPTIONS: component::Options = component::Options {
    // git on Linux refuses NTFS spellings of `.git` (core.protectNTFS defaults to true) and the
    // clone may land on a share that is read from Windows or macOS: both protections on. The
    // Windows name rules (`aux.c`, `:`) stay off: git accepts those names on Linux.
    protect_windows: false,
    protect_hfs: true,
    protect_ntfs: true,
};

/// Checks one entry's name and mode.
pub fn check_entry(name: &[u8], mode: u32) -> Result<(), Rule> {
    if !matches!(
        mode,
        MODE_TREE | MODE_FILE | MODE_EXEC | MODE_FILE_GROUP | MODE_SYMLINK | MODE_GITLINK
    ) {
        return Err(Rule::Mode(mode));
    }
    let link = (mode == MODE_SYMLINK).then_some(component::Mode::Symlink);
    if let Err(e) = component(name.into(), link, OPTIONS) {
        return Err(match e {
            component::Error::Empty => Rule::Empty,
            component::Error::PathSeparator => Rule::Separator,
            component::Error::Relative => Rule::Relative,
            component::Error::DotGitDir => Rule::DotGit,
            component::Error::SymlinkedGitModules => Rule::SymlinkedDotfile(".gitmodules"),
            other => Rule::Other(other.to_string()),
        });
    }
    if name.contains(&0) {
        return Err(Rule::Other("a name holding a NUL byte".into()));
    }
    if mode == MODE_SYMLINK {
        for dotfile in [".gitattributes", ".gitignore"] {
            if name.eq_ignore_ascii_case(dotfile.as_bytes()) {
                return Err(Rule::SymlinkedDotfile(dotfile));
            }
        }
    }
    Ok(())
}

fn is_link(mode: u32) -> bool {
    mode == MODE_SYMLINK || mode == MODE_GITLINK
}

/// Checks the entries of one tree: each name, no name twice, and no link whose name folds to
/// another entry's. Gives the index of the offending entry.
pub fn check_entries(entries: &[(&[u8], u32)]) -> Result<(), (usize, Rule)> {
    let mut exact: HashSet<&[u8]> = HashSet::with_capacity(entries.len());
    // Folded name -> whether an entry with it is a link, and the first entry's index.
    let mut folded: HashMap<String, (bool, usize)> = HashMap::with_capacity(entries.len());
    for (i, (name, mode)) in entries.iter().enumerate() {
        check_entry(name, *mode).map_err(|r| (i, r))?;
        if !exact.insert(name) {
            return Err((i, Rule::Duplicate));
        }
        // Case folding as a case-insensitive share does it, for non-ASCII names too (`Ä`/`ä`).
        let key = String::from_utf8_lossy(name).to_lowercase();
        match folded.get_mut(&key) {
            Some((linked, _)) if *linked || is_link(*mode) => return Err((i, Rule::CaseFoldLink)),
            Some(_) => {}
            None => {
                folded.insert(key, (is_link(*mode), i));
            }
        }
    }
    Ok(())
}

/// A path for messages: lossy UTF-8 with control characters escaped, so a crafted name cannot
/// draw on the terminal.
pub fn display_path(bytes: &[u8]) -> String {
    crate::names::shown(&String::from_utf8_lossy(bytes))
}

/// Walks `tree` and everything below it, checking every entry before anything is written.
/// Each distinct tree object is checked once (the rules do not depend on where it stands).
pub fn check_tree(repo: &git2::Repository, tree: git2::Oid) -> Result<TreeFacts, TreeError> {
    let mut facts = TreeFacts::default();
    let mut seen: HashSet<git2::Oid> = HashSet::new();
    let mut stack: Vec<(git2::Oid, Vec<u8>)> = vec![(tree, Vec::new())];
    while let Some((id, prefix)) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let t = repo.find_tree(id).map_err(TreeError::Git)?;
        let owned: Vec<(Vec<u8>, u32, git2::Oid)> = t
            .iter()
            .map(|e| (e.name_bytes().to_vec(), e.filemode_raw() as u32, e.id()))
            .collect();
        let entries: Vec<(&[u8], u32)> = owned.iter().map(|(n, m, _)| (&n[..], *m)).collect();
        let path_of = |name: &[u8]| {
            let mut p = prefix.clone();
            p.extend_from_slice(name);
            p
        };
        check_entries(&entries).map_err(|(i, rule)| {
            TreeError::Refused(Refusal {
                path: display_path(&path_of(entries[i].0)),
                rule,
            })
        })?;
        for (name, mode, id) in &owned {
            if *mode == MODE_TREE {
                let mut p = path_of(name);
                p.push(b'/');
                stack.push((*id, p));
            } else {
                facts.files += 1;
                if name == b".gitattributes" {
                    facts.has_attributes = true;
                }
            }
        }
    }
    Ok(facts)
}

/// Checks a submodule's name and path as git's `check_submodule_name` and `verify_path` do:
/// relative, and no component that is empty, `.`, `..` or a `.git`.
pub fn check_submodule(name: &str, path: &str) -> Result<(), Rule> {
    for value in [name, path] {
        if value.is_empty() || value.starts_with('/') {
            return Err(Rule::SubmoduleName);
        }
        for part in value.split(['/', '\\']) {
            match part {
                "" | "." | ".." => return Err(Rule::SubmoduleName),
                _ => check_entry(part.as_bytes(), MODE_TREE)?,
            }
        }
    }
    Ok(())
}

/// Why a tree could not be checked.
#[derive(Debug)]
pub enum TreeError {
    Refused(Refusal),
    Git(git2::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, mode: u32) -> Option<Rule> {
        check_entry(name.as_bytes(), mode).err()
    }

    #[test]
    fn plain_names_pass() {
        for n in [
            "README.md",
            "aux.c",
            "a:b",
            "trailing.",
            "con",
            ".github",
            ".gitignore",
            "git",
            ".gitx",
            "über",
        ] {
            assert_eq!(rule(n, MODE_FILE), None, "{n}");
        }
        assert_eq!(rule(".gitmodules", MODE_FILE), None);
        assert_eq!(rule("link", MODE_SYMLINK), None);
        assert_eq!(rule("sub", MODE_GITLINK), None);
    }

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        assert_eq!(rule("", MODE_FILE), Some(Rule::Empty));
        assert_eq!(rule(".", MODE_TREE), Some(Rule::Relative));
        assert_eq!(rule("..", MODE_TREE), Some(Rule::Relative));
        assert_eq!(rule("../../x", MODE_FILE), Some(Rule::Separator));
        assert_eq!(rule("/tmp/x", MODE_FILE), Some(Rule::Separator));
        assert_eq!(rule("d/../../../x", MODE_GITLINK), Some(Rule::Separator));
        assert_eq!(
            rule(".git/hooks/post-checkout", MODE_FILE),
            Some(Rule::Separator)
        );
    }

    #[test]
    fn every_spelling_of_dot_git_is_refused() {
        for n in [
            ".git",
            ".GIT",
            ".Git",
            ".git.",
            ".git ",
            "git~1",
            "GIT~1",
            ".git::$INDEX_ALLOCATION",
            ".g\u{200c}it",
        ] {
            assert_eq!(rule(n, MODE_TREE), Some(Rule::DotGit), "{n:?}");
            assert_eq!(rule(n, MODE_FILE), Some(Rule::DotGit), "{n:?}");
        }
    }

    #[test]
    fn symlinked_dotfiles_are_refused_files_are_not() {
        assert_eq!(
            rule(".gitmodules", MODE_SYMLINK),
            Some(Rule::SymlinkedDotfile(".gitmodules"))
        );
        assert_eq!(
            rule(".GITMODULES", MODE_SYMLINK),
            Some(Rule::SymlinkedDotfile(".gitmodules"))
        );
        assert_eq!(
            rule("gitmod~1", MODE_SYMLINK),
            Some(Rule::SymlinkedDotfile(".gitmodules"))
        );
        assert_eq!(
            rule(".gitattributes", MODE_SYMLINK),
            Some(Rule::SymlinkedDotfile(".gitattributes"))
        );
        assert_eq!(
            rule(".gitignore", MODE_SYMLINK),
            Some(Rule::SymlinkedDotfile(".gitignore"))
        );
    }

    #[test]
    fn unknown_modes_are_refused() {
        assert_eq!(rule("x", 0o100600), Some(Rule::Mode(0o100600)));
        assert_eq!(rule("x", 0o170000), Some(Rule::Mode(0o170000)));
        assert_eq!(rule("x", MODE_FILE_GROUP), None);
    }

    /// [`check_entries`] over `(name, mode)` pairs.
    fn entries(v: &[(&'static str, u32)]) -> Result<(), (usize, Rule)> {
        check_entries(
            &v.iter()
                .map(|(n, m)| (n.as_bytes(), *m))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn duplicates_and_case_folded_links_are_refused() {
        assert_eq!(
            entries(&[("l", MODE_SYMLINK), ("l", MODE_TREE)]),
            Err((1, Rule::Duplicate))
        );
        assert_eq!(
            entries(&[("L", MODE_SYMLINK), ("l", MODE_TREE)]),
            Err((1, Rule::CaseFoldLink))
        );
        assert_eq!(
            entries(&[("Dir", MODE_TREE), ("dir", MODE_GITLINK)]),
            Err((1, Rule::CaseFoldLink))
        );
        // Two plain files differing in case: git checks them out (one wins on a
        // case-insensitive disk), nothing is written through a link.
        assert_eq!(
            entries(&[("README", MODE_FILE), ("readme", MODE_FILE)]),
            Ok(())
        );
        assert_eq!(entries(&[("a", MODE_FILE), ("b", MODE_SYMLINK)]), Ok(()));
        assert_eq!(
            entries(&[("Ä", MODE_SYMLINK), ("ä", MODE_TREE)]),
            Err((1, Rule::CaseFoldLink))
        );
    }

    #[test]
    fn a_nul_byte_in_a_name_is_refused() {
        assert_eq!(
            check_entry(b"a\0b", MODE_FILE),
            Err(Rule::Other("a name holding a NUL byte".into()))
        );
    }

    #[test]
    fn the_first_offending_entry_is_named_whichever_comes_first() {
        // The link after the file it would fold onto, as well as before it.
        assert_eq!(
            entries(&[("dir", MODE_TREE), ("DIR", MODE_SYMLINK)]),
            Err((1, Rule::CaseFoldLink))
        );
        assert_eq!(
            entries(&[("ok", MODE_FILE), ("..", MODE_TREE), (".git", MODE_TREE)]),
            Err((1, Rule::Relative))
        );
        assert_eq!(
            entries(&[("x", 0o100600), ("x", MODE_FILE)]),
            Err((0, Rule::Mode(0o100600)))
        );
        assert_eq!(entries(&[]), Ok(()));
    }

    #[test]
    fn a_submodule_needs_a_name_and_a_path_and_no_dot_git_in_either() {
        assert_eq!(check_submodule("x", ""), Err(Rule::SubmoduleName));
        assert_eq!(check_submodule("", "x"), Err(Rule::SubmoduleName));
        assert_eq!(check_submodule("a/.git", "x"), Err(Rule::DotGit));
        assert_eq!(check_submodule("x", "lib/GIT~1/y"), Err(Rule::DotGit));
        assert_eq!(check_submodule("x", "a/"), Err(Rule::SubmoduleName));
        assert_eq!(check_submodule("a.b/c", "vendor/a.b"), Ok(()));
    }

    #[test]
    fn submodule_names_stay_inside() {
        assert_eq!(check_submodule("lib", "vendor/lib"), Ok(()));
        for (n, p) in [
            ("../../modules/x", "x"),
            ("x", "../x"),
            ("x", "/abs/x"),
            ("/abs", "x"),
            ("a/./b", "x"),
            ("x", ".git/hooks"),
            ("", "x"),
        ] {
            assert!(check_submodule(n, p).is_err(), "{n} {p}");
        }
    }

    #[test]
    fn displayed_paths_escape_control_characters() {
        assert_eq!(display_path(b"a\nb\x1b[31m"), "a\\nb\\u{1b}[31m");
    }

    #[test]
    fn a_submodule_leaving_its_folder_is_named_as_such() {
        for (n, p) in [
            ("x/../../y", "x"),
            ("x", "a/./b"),
            ("x", "a//b"),
            ("x", "a\\..\\b"),
        ] {
            assert_eq!(check_submodule(n, p), Err(Rule::SubmoduleName), "{n} {p}");
        }
        assert_eq!(check_submodule("x", "a/.git"), Err(Rule::DotGit));
    }

    #[test]
    fn every_rule_says_what_was_wrong() {
        let rules = [
            Rule::Empty,
            Rule::Separator,
            Rule::Relative,
            Rule::DotGit,
            Rule::SymlinkedDotfile(".gitignore"),
            Rule::Other("a name holding a NUL byte".into()),
            Rule::Duplicate,
            Rule::CaseFoldLink,
            Rule::Mode(0o100600),
            Rule::SubmoduleName,
        ];
        let shown: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
        for (r, s) in rules.iter().zip(&shown) {
            assert!(!s.is_empty(), "{r:?}");
        }
        assert!(shown[4].contains(".gitignore"));
        assert!(shown[5].contains("NUL"));
        assert!(shown[8].contains("100600"), "{}", shown[8]);
        let distinct: HashSet<&String> = shown.iter().collect();
        assert_eq!(distinct.len(), rules.len(), "{shown:?}");
    }

    /// A tree object written byte by byte, so that names git itself refuses can be stored.
    fn raw_tree(repo: &git2::Repository, entries: &[(&[u8], u32, git2::Oid)]) -> git2::Oid {
        let mut buf = Vec::new();
        for (name, mode, id) in entries {
            buf.extend_from_slice(format!("{mode:o} ").as_bytes());
            buf.extend_from_slice(name);
            buf.push(0);
            buf.extend_from_slice(id.as_bytes());
        }
        repo.odb()
            .unwrap()
            .write(git2::ObjectType::Tree, &buf)
            .unwrap()
    }

    #[test]
    fn the_walk_counts_what_is_written_below_every_folder() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let commit = git2::Oid::from_bytes(&[7; 20]).unwrap();
        let sub = raw_tree(
            &repo,
            &[
                (b"a", MODE_FILE, blob),
                (b"l", MODE_SYMLINK, blob),
                (b"m", MODE_GITLINK, commit),
            ],
        );
        let deeper = raw_tree(&repo, &[(b"d", MODE_TREE, sub)]);
        let root = raw_tree(
            &repo,
            &[
                (b".gitattributes", MODE_FILE, blob),
                (b"README", MODE_FILE, blob),
                (b"s", MODE_TREE, deeper),
            ],
        );
        assert_eq!(
            check_tree(&repo, root).unwrap(),
            TreeFacts {
                has_attributes: true,
                files: 5
            }
        );
        let plain = raw_tree(
            &repo,
            &[(b"README", MODE_FILE, blob), (b"s", MODE_TREE, deeper)],
        );
        assert_eq!(
            check_tree(&repo, plain).unwrap(),
            TreeFacts {
                has_attributes: false,
                files: 4
            }
        );
    }

    #[test]
    fn the_walk_refuses_a_bad_name_at_any_depth_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let blob = repo.blob(b"#!/bin/sh\n").unwrap();
        let hooks = raw_tree(&repo, &[(b"post-checkout", MODE_EXEC, blob)]);
        let dot_git = raw_tree(&repo, &[(b"hooks", MODE_TREE, hooks)]);
        let inner = raw_tree(&repo, &[(b".GIT", MODE_TREE, dot_git)]);
        let root = raw_tree(
            &repo,
            &[(b"README", MODE_FILE, blob), (b"d\n", MODE_TREE, inner)],
        );
        match check_tree(&repo, root) {
            Err(TreeError::Refused(r)) => assert_eq!(
                r,
                Refusal {
                    path: "d\\n/.GIT".into(),
                    rule: Rule::DotGit
                }
            ),
            other => panic!("{other:?}"),
        }
    }
}
