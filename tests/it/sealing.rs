//! The sandbox is sealed for real: keyclone reads the system files it is pointed at (never
//! `/etc/ssh/ssh_known_hosts` nor `/etc/gitconfig`), touches no kernel keyring outside
//! `keyctl session`, runs with umask 022, and a port held closed stays closed.

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};

use crate::init::World;
use crate::support::sshd::Sshd;
use crate::support::{Sandbox, closed_port, require};

/// A line in the file named by `KEYCLONE_SYSTEM_KNOWN_HOSTS` makes the host known (so that is
/// the file read): without it the same run is refused.
#[test]
fn the_system_known_hosts_file_is_the_one_keyclone_is_told() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let target = format!("127.0.0.1:{}", sshd.port);
    sb.run(&["trust", &target]).code(4);
    std::fs::write(
        sb.system_known_hosts(),
        format!("[127.0.0.1]:{} {}\n", sshd.port, sshd.host_key),
    )
    .unwrap();
    sb.run(&["trust", &target]).ok();
    let user = std::fs::read_to_string(sb.ssh_dir().join("known_hosts")).unwrap_or_default();
    assert!(
        !user.contains(&sshd.host_key),
        "the key was known already, nothing to record: {user}"
    );
}

/// Under strace, a clone (host decision, libgit2 clone and checkout) opens the sandbox's
/// system known_hosts file and neither `/etc/ssh/ssh_known_hosts` nor `/etc/gitconfig`.
#[test]
fn a_sealed_clone_opens_no_system_file() {
    let strace = require("strace", "strace");
    let w = World::new();
    w.sb.run(&["keygen", "--passphrase-file", w.pass_file.to_str().unwrap()])
        .ok();
    w.authorize(&w.sb.ssh_dir().join("id_ed25519"));
    let trace = w.sb.root.path().join("strace.log");
    let dest = w.sb.root.path().join("dest");
    let mut cmd = w.sb.cmd_of(&strace);
    cmd.args(["-f", "-qq", "-e", "trace=%file", "-o"])
        .arg(&trace)
        .arg(crate::support::keyclone_bin())
        .args(["clone", &w.port_url()])
        .arg(&dest)
        .args(["--passphrase-file", w.pass_file.to_str().unwrap()]);
    w.sb.run_cmd(cmd).ok();
    assert!(dest.join(".git").is_dir());
    let log = std::fs::read_to_string(&trace).unwrap();
    let skh = w.sb.system_known_hosts();
    assert!(
        log.contains(skh.to_str().unwrap()),
        "the trace shows the sandbox's system known_hosts being read"
    );
    for leak in ["/etc/ssh/ssh_known_hosts", "/etc/gitconfig"] {
        let hits: Vec<&str> = log.lines().filter(|l| l.contains(leak)).collect();
        assert!(hits.is_empty(), "keyclone looked at `{leak}`: {hits:#?}");
    }
}

fn keyring_check(out: &crate::support::Out) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["area"] == "keyring")
        .cloned()
        .expect("doctor checks the keyring")
}

/// Outside `keyctl session` the guard refuses the keyring, for the binary and for `init`'s
/// survey run in this test process; inside a session the same doctor finds a working one.
#[test]
fn no_run_outside_keyctl_session_touches_the_keyring() {
    let sb = Sandbox::new();
    let outside = keyring_check(&sb.run(&["doctor", "--offline", "--json"]));
    assert!(
        outside["what"].as_str().unwrap().contains("off limits"),
        "{outside}"
    );

    let env = sb.env();
    let cli = <keyclone::cli::Cli as clap::Parser>::try_parse_from(["keyclone", "doctor"]).unwrap();
    let settings = keyclone::context::Settings::resolve(&cli.global, &env).unwrap();
    let ui = keyclone::ui::Ui::captured(
        Box::new(keyclone::ui::prompt::ScriptedPrompter::new(vec![])),
        false,
    );
    let ctx = keyclone::context::Ctx::new(settings, env, ui, Box::new(std::io::empty()), false);
    let survey = keyclone::ops::survey::survey(&ctx);
    let why = survey
        .keyring
        .expect_err("the in-process survey is refused the keyring");
    assert!(why.contains("off limits"), "{why}");

    let keyctl = require("keyctl", "keyutils");
    let mut cmd = sb.cmd_of(&keyctl);
    cmd.args(["session", "-"])
        .arg(crate::support::keyclone_bin())
        .args(["doctor", "--offline", "--json"]);
    let inside = keyring_check(&sb.run_cmd(cmd));
    assert_eq!(inside["status"], "ok", "{inside}");
}

/// Inside `keyctl session`, a cached passphrase is an entry of that session keyring only: not
/// linked into the user's persistent keyring, which outlives the session by days.
#[test]
fn a_cached_passphrase_stays_in_the_test_session_keyring() {
    let keyctl = require("keyctl", "keyutils");
    let w = World::new();
    w.sb.run(&["keygen", "--passphrase-file", w.pass_file.to_str().unwrap()])
        .ok();
    let key = w.sb.ssh_dir().join("id_ed25519");
    w.authorize(&key);
    let script = format!(
        "set -e; '{kc}' init --non-interactive --repo '{url}' --passphrase-file '{pf}' --cache keyring --no-ssh-config --no-clone; \
         d='keyring-rs:{key}@keyclone'; \
         keyctl search @s user \"$d\" >/dev/null || {{ echo 'not in the session keyring'; exit 1; }}; \
         p=$(keyctl get_persistent @s); \
         if keyctl search \"$p\" user \"$d\" >/dev/null 2>&1; then echo 'linked into the persistent keyring'; exit 1; fi",
        kc = crate::support::keyclone_bin().display(),
        url = w.port_url(),
        pf = w.pass_file.display(),
        key = key.display(),
    );
    let mut cmd = w.sb.cmd_of(&keyctl);
    cmd.args(["session", "-", "sh", "-c", &script]);
    let out = w.sb.run_cmd(cmd);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("The passphrase is in the keyring"),
        "{}",
        out.stderr
    );
}

/// Every spawned program gets umask 022 from the harness.
#[test]
fn the_harness_sets_umask_022() {
    let sb = Sandbox::new();
    let mut cmd = sb.cmd_of(std::path::Path::new("/bin/sh"));
    cmd.args(["-c", "umask"]);
    let out = sb.run_cmd(cmd);
    out.ok();
    assert_eq!(out.stdout.trim(), "0022");
}

/// A held closed port refuses connections and cannot be taken by another listener.
#[test]
fn a_held_closed_port_refuses_and_cannot_be_taken() {
    let held = closed_port();
    let err = TcpStream::connect(("127.0.0.1", held.port)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    let taken = TcpListener::bind(("127.0.0.1", held.port));
    assert!(taken.is_err(), "another listener took the held port");
}
