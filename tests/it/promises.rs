//! Promises of README.md and SECURITY.md that had no test of their own: the modes of
//! `~/.ssh/config`, a damaged managed block refused through `init`, a real Ctrl-C at the
//! question before the config is written, and no passphrase in `-v` or `--json` output.

use std::process::Stdio;

use rexpect::process::WaitStatus;
use rexpect::session::spawn_command;

use crate::init::{PASS, World};
use crate::support::{Sandbox, mode};

fn key_ready(w: &World) {
    w.sb.run(&["keygen", "--passphrase-file", w.pass_file.to_str().unwrap()])
        .ok();
    w.authorize(&w.sb.ssh_dir().join("id_ed25519"));
}

fn init_args<'a>(w: &'a World, url: &'a str) -> Vec<&'a str> {
    vec![
        "init",
        "--non-interactive",
        "--repo",
        url,
        "--yes",
        "--no-clone",
        "--cache",
        "none",
        "--passphrase-file",
        w.pass_file.to_str().unwrap(),
    ]
}

#[test]
fn a_new_ssh_config_is_600_and_an_existing_one_keeps_its_mode_never_group_writable() {
    let w = World::new();
    key_ready(&w);
    let url = w.port_url();
    w.sb.run(&init_args(&w, &url)).ok();
    assert_eq!(mode(&w.ssh_config()), 0o600, "a new config is 600");

    for (before, after) in [
        (0o644, 0o644),
        (0o640, 0o640),
        (0o664, 0o644),
        (0o666, 0o644),
    ] {
        let w = World::new();
        key_ready(&w);
        std::fs::write(w.ssh_config(), "Host build\n    HostName 10.0.0.5\n").unwrap();
        std::fs::set_permissions(
            w.ssh_config(),
            std::os::unix::fs::PermissionsExt::from_mode(before),
        )
        .unwrap();
        let url = w.port_url();
        w.sb.run(&init_args(&w, &url)).ok();
        // The user's mode is kept, without group or world write (OpenSSH refuses those).
        assert_eq!(mode(&w.ssh_config()), after, "mode {before:o}");
    }
}

#[test]
fn init_refuses_a_damaged_managed_block_and_changes_nothing() {
    let begin =
        "# >>> keyclone managed block: `keyclone init` rewrites the lines up to the end marker >>>";
    for damaged in [
        format!("Host a\n{begin}\nHost x\n    HostName x\n"),
        format!(
            "{begin}\nHost x\n    ProxyCommand touch /tmp/x\n# <<< keyclone managed block <<<\n"
        ),
        format!(
            "{begin}\n# <<< keyclone managed block <<<\n{begin}\n# <<< keyclone managed block <<<\n"
        ),
    ] {
        let w = World::new();
        key_ready(&w);
        std::fs::write(w.ssh_config(), &damaged).unwrap();
        let url = w.port_url();
        let out = w.sb.run(&init_args(&w, &url));
        out.code(3).stderr_has("managed block is damaged");
        assert_eq!(std::fs::read_to_string(w.ssh_config()).unwrap(), damaged);
    }
}

#[test]
fn ctrl_c_at_the_config_question_in_a_terminal_exits_130_and_writes_no_config() {
    let w = World::new();
    key_ready(&w);
    let url = w.port_url();
    let mut cmd = w.sb.cmd();
    cmd.args(["init", "--repo", &url, "--no-clone", "--cache", "none"])
        .args(["--passphrase-file", w.pass_file.to_str().unwrap()])
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut p = spawn_command(cmd, Some(30_000)).expect("spawn keyclone in a pty");
    p.exp_string("Write this to").unwrap();
    p.send_control('c').unwrap();
    let rest = p.exp_eof().unwrap();
    let code = match p.process().wait().unwrap() {
        WaitStatus::Exited(_, code) => code,
        other => panic!("keyclone did not exit normally: {other:?}"),
    };
    assert_eq!(code, 130, "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(!w.ssh_config().exists(), "the config was written");
    let left: Vec<String> = Sandbox::ls(&w.sb.ssh_dir())
        .into_iter()
        .filter(|n| n.starts_with(".keyclone-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn no_passphrase_in_verbose_or_json_output() {
    let w = World::new();
    key_ready(&w);
    let url = w.port_url();
    for extra in [&["-vv"][..], &["--json"][..]] {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(init_args(&w, &url));
        let out = w.sb.run(&args);
        out.ok().never_shows(PASS);
        assert!(
            !out.stderr.is_empty() || !out.stdout.is_empty(),
            "{extra:?} printed nothing"
        );
        if extra == ["--json"] {
            let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
            assert!(!v.to_string().contains(PASS));
        }
        let dest = w.sb.root.path().join(format!("c{}", extra[0].len()));
        let mut args: Vec<&str> = extra.to_vec();
        args.extend([
            "clone",
            &url,
            dest.to_str().unwrap(),
            "--passphrase-file",
            w.pass_file.to_str().unwrap(),
        ]);
        w.sb.run(&args).ok().never_shows(PASS);
    }
}
