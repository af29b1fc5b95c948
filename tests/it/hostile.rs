//! Hostile files: a git index that lies (paths outside the work tree, absurd entry counts),
//! files that never end (`/dev/zero`, a FIFO) where keyclone expects a key or a config, unsafe
//! archive folders, and kill -9 at every rename. git, OpenSSH and strace are the oracles.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

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

#[test]
fn a_key_or_config_that_never_ends_is_refused_with_what_and_why() {
    let sb = Sandbox::new();
    // --key /dev/zero: a character device, not a key file.
    let out = sb.run_cmd(capped({
        let mut c = sb.cmd();
        c.args(["pubkey", "--key", "/dev/zero"]);
        c
    }));
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
    let out = sb.run_cmd(capped({
        let mut c = sb.cmd();
        c.args([
            "--config",
            cfg.to_str().unwrap(),
            "clone",
            "ssh://git@127.0.0.1:1/r.git",
            "--non-interactive",
        ]);
        c
    }));
    out.code(5).stderr_has("/dev/zero");

    // The config file itself is /dev/zero.
    let out = sb.run_cmd(capped({
        let mut c = sb.cmd();
        c.args(["--config", "/dev/zero", "pubkey"]);
        c
    }));
    out.code(5)
        .stderr_has("/dev/zero")
        .stderr_has("not a regular file");

    // ~/.ssh/config and known_hosts linked to /dev/zero.
    std::fs::create_dir_all(sb.ssh_dir()).unwrap();
    std::fs::set_permissions(sb.ssh_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", sb.ssh_dir().join("known_hosts")).unwrap();
    let out = sb.run_cmd(capped({
        let mut c = sb.cmd();
        c.args(["trust", "127.0.0.1:1", "--accept-new"]);
        c
    }));
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
