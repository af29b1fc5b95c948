//! How keyclone is shipped: `--version` with its commit, the shell completions (bash's run
//! through bash itself), the manual pages, and the binary's dynamic libraries (`ldd`).

use std::path::Path;
use std::process::Command;

use crate::support::{Sandbox, keyclone_bin, require};

/// The commit of this checkout, as `build.rs` shortens it (12 hex digits).
fn head_commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(require("git", "git"))
        .args(["-C", dir, "rev-parse", "HEAD"])
        .output()
        .unwrap();
    assert!(out.status.success(), "git rev-parse HEAD failed");
    String::from_utf8(out.stdout).unwrap().trim()[..12].to_string()
}

#[test]
fn version_names_the_package_version_and_the_commit() {
    let sb = Sandbox::new();
    let out = sb.run(&["--version"]);
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        format!(
            "keyclone {} (commit {})",
            env!("CARGO_PKG_VERSION"),
            head_commit()
        )
    );
    // Every subcommand says the same (`propagate_version`).
    let sub = sb.run(&["clone", "--version"]);
    sub.ok();
    assert!(sub.stdout.contains(&head_commit()), "{}", sub.stdout);
}

/// What bash's completion of `keyclone WORDS<TAB>` offers, run through bash with the script
/// `keyclone completions bash` printed.
fn bash_complete(sb: &Sandbox, words: &[&str]) -> Vec<String> {
    let bash = require("bash", "bash");
    let script = sb.run(&["completions", "bash"]);
    script.ok();
    let file = sb.root.path().join("keyclone.bash");
    std::fs::write(&file, &script.stdout).unwrap();
    let line = words.join(" ");
    // The function `complete -p` names, called as readline would: COMP_WORDS, COMP_CWORD,
    // COMP_LINE, COMP_POINT, then the words it offers, one a line.
    let driver = format!(
        r#"source "$1" || exit 9
spec=$(complete -p keyclone) || exit 8
func=$(printf '%s\n' "$spec" | sed -n 's/.*-F \([^ ]*\).*/\1/p')
[ -n "$func" ] || exit 7
COMP_WORDS=(keyclone {line})
COMP_CWORD={cword}
COMP_LINE="keyclone {line}"
COMP_POINT=${{#COMP_LINE}}
COMP_TYPE=9
"$func" keyclone "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        cword = words.len(),
    );
    let out = Command::new(bash)
        .args(["--norc", "--noprofile", "-c", &driver, "bash"])
        .arg(&file)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash could not run the completion (exit {:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completion_of_c_offers_clone() {
    let sb = Sandbox::new();
    let offered = bash_complete(&sb, &["c"]);
    assert!(offered.contains(&"clone".to_string()), "{offered:?}");
    assert!(offered.contains(&"completions".to_string()), "{offered:?}");
    assert!(
        offered.iter().all(|w| w.starts_with('c')),
        "only words starting with c: {offered:?}"
    );
    // And a subcommand's flags: `keyclone clone --ti<TAB>` offers `--timeout`.
    let flags = bash_complete(&sb, &["clone", "--ti"]);
    assert_eq!(flags, vec!["--timeout".to_string()]);
}

#[test]
fn completions_exist_for_zsh_fish_and_powershell() {
    let sb = Sandbox::new();
    for (shell, marker) in [
        ("zsh", "#compdef keyclone"),
        ("fish", "complete -c keyclone"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = sb.run(&["completions", shell]);
        out.ok();
        assert!(out.stdout.contains(marker), "{shell}: {}", out.stdout);
        assert!(out.stdout.contains("clone"), "{shell} lacks clone");
    }
    sb.run(&["completions", "tcsh"]).code(2);
}

#[test]
fn man_prints_the_page_and_writes_one_per_command() {
    let sb = Sandbox::new();
    let out = sb.run(&["man"]);
    out.ok();
    assert!(out.stdout.starts_with(".ie"), "{}", &out.stdout[..80]);
    assert!(out.stdout.contains(".TH keyclone 1"), "no title header");
    assert!(
        out.stdout.contains("keyclone\\-clone(1)"),
        "no SEE ALSO clone"
    );
    assert!(out.stdout.contains(&head_commit()), "no version line");

    let dir = sb.root.path().join("man1");
    sb.run(&["man", "--dir", dir.to_str().unwrap()])
        .code(2)
        .stderr_has("mkdir -p");
    std::fs::create_dir(&dir).unwrap();
    sb.run(&["man", "--dir", dir.to_str().unwrap()]).ok();
    let clone = std::fs::read_to_string(dir.join("keyclone-clone.1")).unwrap();
    assert!(clone.contains(".TH keyclone-clone 1"), "{clone}");
    assert!(
        clone.contains("\\-\\-timeout"),
        "clone's page lacks --timeout"
    );
    assert!(
        !dir.join("keyclone-help.1").exists(),
        "a page for clap's help"
    );
    for page in ["keyclone.1", "keyclone-init.1", "keyclone-man.1"] {
        assert!(dir.join(page).is_file(), "{page} missing");
        assert_eq!(crate::support::mode(&dir.join(page)), 0o644, "{page}");
    }
}

/// The libraries `ldd` lists for a binary, by name.
pub fn linked_libraries(binary: &Path) -> Vec<String> {
    let out = Command::new(require("ldd", "libc-bin"))
        .arg(binary)
        .output()
        .unwrap();
    assert!(out.status.success(), "ldd failed on {}", binary.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// What a manylinux binary may need from the system: glibc's own libraries and libgcc_s.
pub fn only_libc(libs: &[String]) -> bool {
    libs.iter().all(|l| {
        l.starts_with("linux-vdso")
            || l.starts_with("/lib64/ld-linux")
            || l.starts_with("ld-linux")
            || [
                "libc.so.6",
                "libm.so.6",
                "libgcc_s.so.1",
                "libpthread.so.0",
                "libdl.so.2",
                "librt.so.1",
            ]
            .contains(&l.as_str())
    })
}

#[test]
fn the_binary_links_openssl_libssh2_and_zlib_statically() {
    let libs = linked_libraries(&keyclone_bin());
    assert!(
        only_libc(&libs),
        "keyclone needs more than libc from the system: {libs:?}"
    );
    assert!(libs.iter().any(|l| l == "libc.so.6"), "{libs:?}");
}
