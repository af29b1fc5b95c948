//! The `keyclone` wheel (pyproject.toml, `bash scripts/wheel --dev`, which scripts/test runs
//! before `cargo test`): installed by pip into a fresh virtualenv, its binary needs only glibc
//! (`ldd`), names this commit, makes a key OpenSSH reads and clones from the test sshd; its
//! manylinux tag is the one `auditwheel show` finds. No wheel, or a stale one, fails saying how
//! to build it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::packaging::{linked_libraries, only_libc};
use crate::support::git::{git_clone_with_openssh, make_repo, ssh_url, state};
use crate::support::sshd::Sshd;
use crate::support::{Sandbox, key_material, openssh_public_of, require};

const BUILD: &str = "build it with `bash scripts/wheel --dev` (it installs maturin and \
    auditwheel into target/pkg-venv; needs python3-venv), or run `bash scripts/test`, which does";

/// The wheel of this version in target/wheels (`KEYCLONE_WHEEL` names another).
fn wheel() -> PathBuf {
    if let Some(w) = std::env::var_os("KEYCLONE_WHEEL") {
        return PathBuf::from(w);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/wheels");
    let prefix = format!("keyclone-{}-", env!("CARGO_PKG_VERSION"));
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
                })
                .collect()
        })
        .unwrap_or_default();
    match found.as_slice() {
        [one] => one.clone(),
        [] => panic!("no {prefix}*.whl in {}: {BUILD}", dir.display()),
        many => panic!("several wheels in {}: {many:?}; {BUILD}", dir.display()),
    }
}

/// A tool of the packaging virtualenv (`KEYCLONE_PKG_VENV`, else target/pkg-venv).
fn pkg_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("KEYCLONE_PKG_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pkg-venv"),
        PathBuf::from,
    );
    let tool = venv.join("bin").join(name);
    assert!(tool.is_file(), "{} is missing: {BUILD}", tool.display());
    tool
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A fresh virtualenv with the wheel installed by pip (from the file: no index, no network).
fn install_wheel(base: &Path) -> PathBuf {
    let python = require("python3", "python3-venv");
    let venv = base.join("venv");
    run(Command::new(python).args(["-m", "venv"]).arg(&venv));
    run(Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--disable-pip-version-check",
        ])
        .arg(wheel()));
    venv
}

#[test]
fn the_wheel_installs_with_pip_and_its_binary_keygens_and_clones() {
    let sb = Sandbox::new();
    let venv = install_wheel(sb.root.path());
    // pip puts the binary in the virtualenv's scripts folder, the one `sysconfig` names (what
    // the README says to run when that folder is not on PATH).
    let scripts = run(Command::new(venv.join("bin/python")).args([
        "-c",
        "import sysconfig; print(sysconfig.get_path('scripts'))",
    ]));
    let bin = PathBuf::from(scripts.trim()).join("keyclone");
    assert_eq!(bin, venv.join("bin/keyclone"));
    assert!(bin.is_file(), "pip did not install {}", bin.display());

    let libs = linked_libraries(&bin);
    assert!(only_libc(&libs), "the wheel's keyclone needs {libs:?}");

    // Built from this commit: a wheel left from an older build fails here.
    let version = sb.run_cmd({
        let mut c = sb.cmd_of(&bin);
        c.arg("--version");
        c
    });
    version.ok();
    let ours = sb.run(&["--version"]);
    assert_eq!(version.stdout, ours.stdout, "the wheel is stale: {BUILD}");

    // keygen: a key OpenSSH reads with the passphrase.
    let pass = "wheel test passphrase";
    let pass_file = sb.secret_file("pass", pass);
    let wheel_run = |args: &[&str]| {
        let mut c = sb.cmd_of(&bin);
        c.args(args);
        sb.run_cmd(c)
    };
    wheel_run(&["keygen", "--passphrase-file", pass_file.to_str().unwrap()])
        .ok()
        .never_shows(pass);
    let key = sb.ssh_dir().join("id_ed25519");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let derived = openssh_public_of(&key, pass);
    derived.ok();
    assert_eq!(key_material(&derived.stdout), key_material(&public));

    // trust and clone from the test sshd, the same tree as git's clone over OpenSSH.
    let sshd = Sshd::start();
    sshd.authorize(&public);
    let repos = tempfile::tempdir().unwrap();
    let bare = make_repo(repos.path(), "project");
    let url = ssh_url(&sshd, &bare);
    let host = format!("127.0.0.1:{}", sshd.port);
    wheel_run(&["trust", &host, "--fingerprint", &sshd.fingerprint()]).ok();
    let ours = sb.root.path().join("ours");
    wheel_run(&[
        "clone",
        &url,
        ours.to_str().unwrap(),
        "--passphrase-file",
        pass_file.to_str().unwrap(),
    ])
    .ok()
    .never_shows(pass)
    .stderr_has("Cloned");
    let theirs = sb.root.path().join("theirs");
    let known_hosts = sb.ssh_dir().join("known_hosts");
    git_clone_with_openssh(&url, &theirs, &key, pass, &known_hosts, &[]).ok();
    let (our_head, our_files, our_fsck) = state(&ours);
    let (their_head, their_files, _) = state(&theirs);
    assert_eq!(our_head, their_head);
    assert_eq!(our_files, their_files);
    assert!(
        our_fsck,
        "git fsck found problems in the wheel binary's clone"
    );
}

#[test]
fn the_wheel_tag_is_the_manylinux_tag_auditwheel_finds() {
    let wheel = wheel();
    let name = wheel.file_name().unwrap().to_str().unwrap().to_string();
    let shown = run(Command::new(pkg_tool("auditwheel")).arg("show").arg(&wheel));
    let shown = shown.split_whitespace().collect::<Vec<_>>().join(" ");
    let marker = "is consistent with the following platform tag: \"";
    let at = shown
        .find(marker)
        .unwrap_or_else(|| panic!("auditwheel found no platform tag: {shown}"));
    let tag = &shown[at + marker.len()..];
    let tag = &tag[..tag.find('"').unwrap()];
    assert!(tag.starts_with("manylinux_2_"), "{tag}");
    assert!(
        name.ends_with(&format!("-py3-none-{tag}.whl")),
        "{name} is not tagged {tag}"
    );
    // Nothing but glibc and libgcc_s from the system: no OpenSSL, libssh2 or zlib.
    for lib in ["libssl", "libcrypto", "libssh2", "libz."] {
        assert!(!shown.contains(lib), "the wheel needs {lib}: {shown}");
    }
}

#[test]
fn the_release_workflow_passes_the_github_workflow_schema() {
    let workflow = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows/release.yml");
    // actionlint installs from no registry here (its PyPI package downloads a binary); the
    // schema GitHub's workflows follow, as check-jsonschema ships it, checks the structure.
    run(Command::new(pkg_tool("check-jsonschema"))
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(&workflow));
    let text = std::fs::read_to_string(&workflow).unwrap();
    for needed in [
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
        "bash scripts/test",
        "secrets.PYPI_API_TOKEN",
        "KEYCLONE_BUILD_COMMIT",
    ] {
        assert!(text.contains(needed), "release.yml lacks {needed}");
    }
}
