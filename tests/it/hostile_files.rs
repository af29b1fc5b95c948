//! Hostile files: a git index that lies (paths outside the work tree, absurd entry counts),
//! files that never end (`/dev/zero`, a FIFO) where keyclone expects a key or a config, unsafe
//! archive folders, and kill -9 at every rename. git, OpenSSH and strace are the oracles.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha1::{Digest, Sha1};

use crate::support::git::git;
use crate::support::sshd::Sshd;
use crate::support::{Out, Sandbox};

const PASS: &str = "test pass phrase 1";

/// A command whose address space is capped at 2 GiB: a read without limit fails fast here
/// instead of eating the machine's memory.
fn capped(mut cmd: Command) -> Command {
    use std::os::unix::process::CommandExt;
    #[allow(unsafe_code)]
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            let cap = 2u64 << 30;
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_AS, cap, cap)
                .map_err(std::io::Error::from)
        });
    }
    cmd
}

/// keyclone with these arguments under the 2 GiB cap.
fn run_capped(sb: &Sandbox, args: &[&str]) -> Out {
    let mut c = sb.cmd();
    c.args(args);
    sb.run_cmd(capped(c))
}

/// A repository with one commit, and the sandbox it lives in.
fn repo() -> (Sandbox, PathBuf) {
    let sb = Sandbox::new();
    let dir = sb.root.path().join("work");
    std::fs::create_dir(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]).ok();
    std::fs::write(dir.join("README.md"), "# r\n").unwrap();
    git(&dir, &["add", "-A"]).ok();
    git(&dir, &["commit", "-q", "-m", "one"]).ok();
    // The empty blob the crafted entries name, so that git can compare them.
    git(&dir, &["hash-object", "-w", "/dev/null"]).ok();
    (sb, dir)
}

/// A version 2 index with these paths (sorted by git's rules: bytes), each an empty blob, and
/// `count` in the header (the real count when `None`); with git's trailing checksum.
fn index_with(paths: &[&[u8]], count: Option<u32>) -> Vec<u8> {
    let mut paths: Vec<&[u8]> = paths.to_vec();
    paths.sort();
    let mut b = Vec::new();
    b.extend_from_slice(b"DIRC");
    b.extend_from_slice(&2u32.to_be_bytes());
    b.extend_from_slice(&count.unwrap_or(paths.len() as u32).to_be_bytes());
    let empty_blob: [u8; 20] = Sha1::digest(b"blob 0\0").into();
    for p in paths {
        let start = b.len();
        for field in [0u32, 0, 0, 0, 0, 0, 0o100644, 0, 0, 0] {
            b.extend_from_slice(&field.to_be_bytes());
        }
        b.extend_from_slice(&empty_blob);
        b.extend_from_slice(&(p.len().min(0xfff) as u16).to_be_bytes());
        b.extend_from_slice(p);
        let len = 62 + p.len();
        let padded = (len + 8) & !7;
        b.resize(start + padded, 0);
    }
    let sum: [u8; 20] = Sha1::digest(&b).into();
    b.extend_from_slice(&sum);
    b
}

fn provenance(sb: &Sandbox, dir: &Path) -> Command {
    let mut cmd = sb.cmd();
    cmd.arg("provenance")
        .arg(dir)
        .env("GIT_CEILING_DIRECTORIES", sb.root.path());
    cmd
}

/// `git status --porcelain`: (dirty, untracked entries).
fn git_status(dir: &Path) -> (String, String) {
    let st = git(dir, &["status", "--porcelain"]);
    st.ok();
    let untracked = st.stdout.lines().filter(|l| l.starts_with("??")).count();
    (
        (!st.stdout.trim().is_empty()).to_string(),
        untracked.to_string(),
    )
}

/// keyclone's (dirty, untracked), "" when left out.
fn status_of(out: &Out) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "provenance printed no JSON:\n{}\n{}",
            out.stdout, out.stderr
        )
    });
    let get = |k: &str| v[k].as_str().unwrap_or_default().to_lowercase();
    (get("azureml.git.dirty"), get("provenance.git.untracked"))
}

#[test]
fn index_paths_git_would_refuse_never_crash_provenance_or_reach_outside_the_work_tree() {
    let (sb, dir) = repo();
    // A file outside the work tree that a path in the index names.
    let outside = sb.root.path().join("outside-secret");
    std::fs::write(&outside, "").unwrap();
    let abs = outside.to_str().unwrap().as_bytes().to_vec();
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![b"/x"],
        vec![b"/"],
        vec![b"////x"],
        vec![b"../outside-secret"],
        vec![b"a/../../outside-secret"],
        vec![&abs],
        vec![b".git/config"],
        vec![b".GIT/config"],
        vec![b"a//b"],
        vec![b"./README.md"],
        vec![b"README.md", b"git~1/x"],
    ];
    for paths in &cases {
        std::fs::write(dir.join(".git/index"), index_with(paths, None)).unwrap();
        let trace = sb.root.path().join("trace");
        let mut cmd = sb.cmd_of(&crate::support::require("strace", "strace"));
        cmd.args(["-f", "-qq", "-e", "trace=%file,%desc", "-o"])
            .arg(&trace)
            .arg(crate::support::keyclone_bin())
            .arg("provenance")
            .arg(&dir)
            .env("GIT_CEILING_DIRECTORIES", sb.root.path());
        let out = sb.run_cmd(cmd);
        let shown: Vec<String> = paths
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        assert_eq!(
            out.code, 0,
            "provenance failed on an index with {shown:?}:\n{}",
            out.stderr
        );
        assert_eq!(
            status_of(&out),
            git_status(&dir),
            "(dirty, untracked) differ from git status for {shown:?}: {}",
            out.stderr
        );
        let calls = std::fs::read_to_string(&trace).unwrap();
        let reached: Vec<&str> = calls
            .lines()
            .filter(|l| l.contains("outside-secret") || l.contains("\"/x\""))
            .collect();
        assert!(
            reached.is_empty(),
            "keyclone looked outside the work tree for {shown:?}: {reached:?}"
        );
    }
}

#[test]
fn a_deep_index_path_does_not_exhaust_the_stack() {
    let (sb, dir) = repo();
    let deep: Vec<u8> = b"a/".repeat(200_000).into_iter().chain(*b"f").collect();
    std::fs::write(dir.join(".git/index"), index_with(&[&deep], None)).unwrap();
    let out = sb.run_cmd(provenance(&sb, &dir));
    out.ok();
    assert_eq!(
        status_of(&out),
        ("true".into(), "1".into()),
        "the file is missing and README.md untracked, as git says: {}",
        out.stderr
    );
}

#[test]
fn an_index_header_claiming_billions_of_entries_allocates_nothing_of_that_size() {
    let (sb, dir) = repo();
    for count in [1u32 << 28, 1 << 30, u32::MAX] {
        std::fs::write(dir.join(".git/index"), index_with(&[], Some(count))).unwrap();
        let out = sb.run_cmd(capped(provenance(&sb, &dir)));
        assert!(
            out.code != 134 && !out.stderr.contains("alloc"),
            "count {count}: exit {}: {}",
            out.code,
            out.stderr
        );
        // git calls such an index corrupt; keyclone reports the damage (dirty is left out with
        // a note naming the index) and records the rest, never a guess.
        assert_ne!(git(&dir, &["status"]).code, 0);
        out.ok().stderr_has("index").stderr_has("dirty is left out");
        assert_eq!(status_of(&out).0, "", "no dirty value: {}", out.stdout);
    }
}

#[test]
fn a_key_or_config_that_never_ends_is_refused_with_what_and_why() {
    let sb = Sandbox::new();
    // --key /dev/zero: a character device, not a key file.
    let out = run_capped(&sb, &["pubkey", "--key", "/dev/zero"]);
    out.code(5)
        .stderr_has("/dev/zero")
        .stderr_has("not a regular file");

    // A FIFO nobody writes to: refused at once, not waited on.
    let fifo = sb.root.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let started = std::time::Instant::now();
    sb.run(&["pubkey", "--key", fifo.to_str().unwrap()])
        .code(5)
        .stderr_has("not a regular file");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    // A key file far larger than any key.
    let big = sb.root.path().join("big");
    std::fs::write(&big, vec![b'A'; 200 * 1024]).unwrap();
    sb.run(&["pubkey", "--key", big.to_str().unwrap()])
        .code(5)
        .stderr_has("larger than")
        .stderr_has("64 KiB");

    // keyclone's config naming /dev/zero as the clone key.
    let cfg = sb.secret_file("config.toml", "[clone]\nkey = \"/dev/zero\"\n");
    let out = run_capped(
        &sb,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "clone",
            "ssh://git@127.0.0.1:1/r.git",
            "--non-interactive",
        ],
    );
    out.code(5).stderr_has("/dev/zero");

    // The config file itself is /dev/zero.
    let out = run_capped(&sb, &["--config", "/dev/zero", "pubkey"]);
    out.code(5)
        .stderr_has("/dev/zero")
        .stderr_has("not a regular file");

    // ~/.ssh/config and known_hosts linked to /dev/zero.
    std::fs::create_dir_all(sb.ssh_dir()).unwrap();
    std::fs::set_permissions(sb.ssh_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", sb.ssh_dir().join("known_hosts")).unwrap();
    let out = run_capped(&sb, &["trust", "127.0.0.1:1", "--accept-new"]);
    out.code(5)
        .stderr_has("known_hosts")
        .stderr_has("not a regular file");
}

fn sweep_leftovers(dir: &Path) -> Vec<String> {
    Sandbox::ls(dir)
        .into_iter()
        .filter(|n| n.starts_with(".keyclone-") && n.ends_with(".tmp"))
        .collect()
}

fn keygen_killed_at(sb: &Sandbox, point: &str) -> Out {
    let pf = sb.secret_file("pass", PASS);
    let mut cmd = sb.cmd();
    cmd.args(["keygen", "--passphrase-file", pf.to_str().unwrap()])
        .env("KEYCLONE_TEST_KILL_AT", point);
    sb.run_cmd(cmd)
}

#[test]
fn kill_before_the_private_key_rename_leaves_no_key_and_the_next_run_removes_the_secret_temp() {
    let sb = Sandbox::new();
    let out = keygen_killed_at(&sb, "rename:id_ed25519");
    assert_eq!(out.code, -1, "killed by SIGKILL: {}", out.stderr);
    let ssh = sb.ssh_dir();
    assert!(!ssh.join("id_ed25519").exists() && !ssh.join("id_ed25519.pub").exists());
    let left = sweep_leftovers(&ssh);
    assert_eq!(left.len(), 2, "the two temporary files: {left:?}");

    // The next run that writes there removes them (their writer is dead), then works.
    let pf = sb.secret_file("pass", PASS);
    sb.run(&["keygen", "--passphrase-file", pf.to_str().unwrap()])
        .ok();
    assert_eq!(
        Sandbox::ls(&ssh),
        ["id_ed25519", "id_ed25519.pub"],
        "no temporary file left"
    );
}

#[test]
fn kill_between_the_two_renames_leaves_a_pair_that_the_next_run_completes() {
    let sb = Sandbox::new();
    let out = keygen_killed_at(&sb, "rename:id_ed25519.pub");
    assert_eq!(out.code, -1, "killed by SIGKILL: {}", out.stderr);
    let ssh = sb.ssh_dir();
    assert!(ssh.join("id_ed25519").exists());
    let private = std::fs::read(ssh.join("id_ed25519")).unwrap();

    // Any later run writing in the folder completes the pair (here: a second key).
    let pf = sb.secret_file("pass", PASS);
    sb.run(&[
        "keygen",
        "--path",
        ssh.join("id_other").to_str().unwrap(),
        "--passphrase-file",
        pf.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        Sandbox::ls(&ssh),
        ["id_ed25519", "id_ed25519.pub", "id_other", "id_other.pub"]
    );
    assert_eq!(std::fs::read(ssh.join("id_ed25519")).unwrap(), private);
    let derived = crate::support::openssh_public_of(&ssh.join("id_ed25519"), PASS);
    derived.ok();
    let public = std::fs::read_to_string(ssh.join("id_ed25519.pub")).unwrap();
    assert_eq!(
        crate::support::key_material(&derived.stdout),
        crate::support::key_material(&public),
        "the public key belongs to the private key"
    );
    assert_eq!(crate::support::mode(&ssh.join("id_ed25519.pub")), 0o644);

    // And a keygen at the same path completes it too before refusing to overwrite.
    let sb = Sandbox::new();
    keygen_killed_at(&sb, "rename:id_ed25519.pub");
    let pf = sb.secret_file("pass", PASS);
    sb.run(&["keygen", "--passphrase-file", pf.to_str().unwrap()])
        .code(5)
        .stderr_has("already exists");
    assert_eq!(Sandbox::ls(&sb.ssh_dir()), ["id_ed25519", "id_ed25519.pub"]);
}

#[test]
fn kill_at_the_known_hosts_rename_keeps_the_old_file_byte_for_byte() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let ssh = sb.ssh_dir();
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
    let kh = ssh.join("known_hosts");
    let old = b"# mine\nexample.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n";
    std::fs::write(&kh, old).unwrap();
    std::fs::set_permissions(&kh, std::fs::Permissions::from_mode(0o600)).unwrap();
    let target = format!("127.0.0.1:{}", sshd.port);
    let mut cmd = sb.cmd();
    cmd.args(["trust", &target, "--accept-new"])
        .env("KEYCLONE_TEST_KILL_AT", "rename:known_hosts");
    let out = sb.run_cmd(cmd);
    assert_eq!(out.code, -1, "killed by SIGKILL: {}", out.stderr);
    assert_eq!(std::fs::read(&kh).unwrap(), old, "the old file, unchanged");
    assert_eq!(sweep_leftovers(&ssh).len(), 1);

    sb.run(&["trust", &target, "--accept-new"]).ok();
    let new = std::fs::read(&kh).unwrap();
    assert!(new.starts_with(old), "the new file keeps every old byte");
    assert_eq!(
        &new[old.len()..],
        format!("{}\n", sshd.known_hosts_line()).as_bytes()
    );
    assert!(sweep_leftovers(&ssh).is_empty());
}

#[test]
fn a_world_writable_known_hosts_is_no_trust_anchor() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let ssh = sb.ssh_dir();
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
    let kh = ssh.join("known_hosts");
    std::fs::write(&kh, format!("{}\n", sshd.known_hosts_line())).unwrap();
    std::fs::set_permissions(&kh, std::fs::Permissions::from_mode(0o666)).unwrap();
    let target = format!("127.0.0.1:{}", sshd.port);
    let before = std::fs::read(&kh).unwrap();
    sb.run(&["trust", &target])
        .code(5)
        .stderr_has("every user can write")
        .stderr_has(&format!("chmod 600 {}", kh.display()));
    sb.run(&["trust", "127.0.0.1:1", "--accept-new"])
        .code(5)
        .stderr_has("chmod 600");
    assert_eq!(std::fs::read(&kh).unwrap(), before);
    std::fs::set_permissions(&kh, std::fs::Permissions::from_mode(0o600)).unwrap();
    sb.run(&["trust", &target])
        .ok()
        .stderr_has("already trusted");
}

#[test]
fn the_process_gets_no_core_dump_while_it_may_hold_a_passphrase() {
    let sb = Sandbox::new();
    // keygen waits for the passphrase on standard input, which stays open and empty.
    let mut cmd = sb.cmd();
    {
        use std::os::unix::process::CommandExt;
        #[allow(unsafe_code)]
        // SAFETY: getrlimit/setrlimit are async-signal-safe and touch no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                use nix::sys::resource::{Resource, getrlimit, setrlimit};
                // Core dumps allowed as far as the hard limit goes, so the test can fail.
                let (_, hard) = getrlimit(Resource::RLIMIT_CORE)?;
                setrlimit(Resource::RLIMIT_CORE, hard, hard).map_err(std::io::Error::from)
            });
        }
    }
    let mut child = cmd
        .args(["keygen", "--passphrase-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let limits = format!("/proc/{}/limits", child.id());
    let mut line = String::new();
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let text = std::fs::read_to_string(&limits).unwrap_or_default();
        line = text
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap_or_default()
            .to_owned();
        if line.split_whitespace().nth(4) == Some("0") {
            break;
        }
    }
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{line}");
}

fn init_args(w: &crate::init::World) -> Vec<String> {
    [
        "--non-interactive",
        "--repo",
        &w.port_url(),
        "--passphrase-file",
        w.pass_file.to_str().unwrap(),
        "--cache",
        "none",
        "--yes",
        "--no-clone",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn ssh_config_kill_at_its_rename_and_a_linked_config() {
    let w = crate::init::World::new();
    let ssh = w.sb.ssh_dir();
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
    w.sb.run(&["keygen", "--passphrase-file", w.pass_file.to_str().unwrap()])
        .ok();
    w.authorize(&ssh.join("id_ed25519"));
    let cfg = w.ssh_config();
    let old = b"Host build\n  HostName 10.0.0.5\n";
    std::fs::write(&cfg, old).unwrap();
    let args = init_args(&w);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = w.sb.cmd();
    cmd.arg("init")
        .args(&args)
        .env("KEYCLONE_TEST_KILL_AT", "rename:config");
    let out = w.sb.run_cmd(cmd);
    assert_eq!(out.code, -1, "killed by SIGKILL: {}", out.stderr);
    assert_eq!(std::fs::read(&cfg).unwrap(), old, "the old file, unchanged");
    assert_eq!(sweep_leftovers(&ssh).len(), 1, "{:?}", Sandbox::ls(&ssh));
    w.init(&args, None).ok();
    let new = std::fs::read_to_string(&cfg).unwrap();
    assert!(new.starts_with(std::str::from_utf8(old).unwrap()) && new.contains("# >>> keyclone"));
    assert!(sweep_leftovers(&ssh).is_empty(), "{:?}", Sandbox::ls(&ssh));

    // A linked config: refused, the link and its target untouched.
    let real = w.sb.root.path().join("dotfiles-ssh-config");
    std::fs::write(&real, old).unwrap();
    std::fs::remove_file(&cfg).unwrap();
    std::os::unix::fs::symlink(&real, &cfg).unwrap();
    w.init(&args, None)
        .code(5)
        .stderr_has("symbolic link")
        .stderr_has(&real.display().to_string());
    assert!(
        std::fs::symlink_metadata(&cfg)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&real).unwrap(), old);
}
