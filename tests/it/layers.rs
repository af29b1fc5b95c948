//! The layers of ARCHITECTURE.md, checked on the source: every `crate::` path in `src/` points
//! down (cli -> commands -> ops -> domain -> leaves; ui beside, reached by commands and ops
//! through the context), no command names another command, and the modules have no import
//! cycle. A new file in an unknown place fails here until ARCHITECTURE.md and this map say where
//! it belongs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Leaf,
    Domain,
    Ui,
    Ops,
    Commands,
    Top,
}

const LEAVES: &[&str] = &[
    "error",
    "env",
    "passphrase",
    "key_type",
    "interrupt",
    "endpoint",
];
const DOMAIN: &[&str] = &[
    "ssh",
    "git",
    "provenance",
    "providers",
    "config",
    "files",
    "workspace",
    "names",
    "secrets",
    "templates",
    "http",
    "lfs",
];

fn layer_of(top: &str) -> Option<Layer> {
    match top {
        _ if LEAVES.contains(&top) => Some(Layer::Leaf),
        _ if DOMAIN.contains(&top) => Some(Layer::Domain),
        "ui" | "context" => Some(Layer::Ui),
        "ops" => Some(Layer::Ops),
        "commands" => Some(Layer::Commands),
        "cli" | "main" | "lib" => Some(Layer::Top),
        _ => None,
    }
}

/// May code in layer `from` name something in layer `to`?
fn allowed(from: Layer, to: Layer) -> bool {
    use Layer::*;
    match from {
        Leaf => to == Leaf,
        Domain => matches!(to, Leaf | Domain),
        // The UI draws the domain's progress and errors; the context carries config and registry.
        Ui => matches!(to, Leaf | Domain | Ui),
        Ops => matches!(to, Leaf | Domain | Ui | Ops),
        Commands => to != Top,
        Top => true,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/ops/rotation/steps.rs` -> ["ops", "rotation", "steps"]; `mod.rs` names its folder.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The `crate::a::b` paths a file names outside comments, as [a, b] (b only when it is a
/// lower-case module name).
fn imports(text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let path: Vec<String> = rest
                .split("::")
                .take(2)
                .map(|s| {
                    s.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|s| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
                })
                .collect();
            if !path.is_empty() {
                found.push(path);
            }
        }
    }
    found
}

struct Tree {
    /// module path of each file -> its text
    files: BTreeMap<Vec<String>, String>,
}

fn tree() -> Tree {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let files = paths
        .iter()
        .map(|p| (module_of(&src, p), std::fs::read_to_string(p).unwrap()))
        .collect();
    Tree { files }
}

/// The node an import lands on: the file module it names (`ssh::probe`), else its top module.
fn node(t: &Tree, path: &[String]) -> Vec<String> {
    let two = path.to_vec();
    if path.len() == 2 && t.files.contains_key(&two) {
        two
    } else {
        path[..1].to_vec()
    }
}

#[test]
fn every_file_is_in_a_layer_and_every_import_points_down() {
    let t = tree();
    let mut wrong = Vec::new();
    for (module, text) in &t.files {
        let from = layer_of(&module[0]).unwrap_or_else(|| {
            panic!(
                "src/{} is in no layer: add it to ARCHITECTURE.md and tests/it/layers.rs",
                module.join("/")
            )
        });
        for path in imports(text) {
            let to = layer_of(&path[0]).unwrap_or_else(|| {
                panic!(
                    "`crate::{}` (in {}) is in no layer",
                    path[0],
                    module.join("::")
                )
            });
            if !allowed(from, to) {
                wrong.push(format!(
                    "{} ({from:?}) -> crate::{} ({to:?})",
                    module.join("::"),
                    path.join("::")
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up or sideways:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_command_names_another_command() {
    let t = tree();
    let commands: BTreeSet<&str> = t
        .files
        .keys()
        .filter(|m| m.len() == 2 && m[0] == "commands")
        .map(|m| m[1].as_str())
        .collect();
    assert!(
        commands.contains("init") && commands.contains("rotate"),
        "{commands:?}"
    );
    let mut wrong = Vec::new();
    for (module, text) in &t.files {
        if module.first().is_none_or(|m| m != "commands") {
            continue;
        }
        for path in imports(text) {
            if path[0] == "commands" && path.get(1).is_some_and(|c| commands.contains(c.as_str())) {
                wrong.push(format!(
                    "{} -> crate::{}",
                    module.join("::"),
                    path.join("::")
                ));
            }
        }
        // `super::other_command` is the same arrow.
        for c in &commands {
            if module.len() == 2 && module[1] != *c && text.contains(&format!("super::{c}::")) {
                wrong.push(format!("{} -> super::{c}", module.join("::")));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "commands importing commands:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_modules_have_no_import_cycle() {
    let t = tree();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, text) in &t.files {
        // A file's node is its top module, or its file module when it is one level down
        // (`ssh::probe`), so cycles inside a folder show up too.
        let from = if module.len() >= 2 {
            module[..2].to_vec()
        } else {
            module.clone()
        };
        for path in imports(text) {
            let to = node(&t, &path);
            if to != from && !(to.len() == 1 && from.starts_with(&to)) {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let i = stack.iter().position(|s| s == n).unwrap();
                let mut cycle: Vec<String> = stack[i..].iter().map(|m| m.join("::")).collect();
                cycle.push(n.join("::"));
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if let Some(cycle) = visit(n, &edges, &mut state, &mut Vec::new()) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
    assert!(
        edges.len() > 20,
        "the graph was not read: {} nodes",
        edges.len()
    );
}

#[test]
fn the_import_reader_sees_paths_and_skips_comments() {
    let got = imports(
        "use crate::ssh::probe;\n// crate::ui is only named here\nlet x = crate::files::replace(p);\nuse crate::error::{Error, Result};",
    );
    assert_eq!(
        got,
        vec![
            vec!["ssh".to_owned(), "probe".to_owned()],
            vec!["files".to_owned(), "replace".to_owned()],
            vec!["error".to_owned()],
        ]
    );
}
