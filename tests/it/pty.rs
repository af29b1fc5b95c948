//! The real terminal path: dialoguer prompts, Ctrl-C and OSC 52, driven through a pty.

use std::process::{Command, Stdio};

use rexpect::process::WaitStatus;
use rexpect::session::{PtySession, spawn_command};

use crate::support::{Sandbox, key_material, openssh_public_of};

fn spawn(sb: &Sandbox, args: &[&str]) -> PtySession {
    let mut cmd: Command = sb.cmd();
    cmd.args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    spawn_command(cmd, Some(20_000)).expect("spawn keyclone in a pty")
}

fn exit_code(p: &PtySession) -> i32 {
    match p.process().wait().unwrap() {
        WaitStatus::Exited(_, code) => code,
        other => panic!("keyclone did not exit normally: {other:?}"),
    }
}

#[test]
fn interactive_passphrase_is_asked_twice_and_a_mismatch_is_asked_again() {
    let sb = Sandbox::new();
    let mut p = spawn(&sb, &["keygen"]);
    p.exp_string("Passphrase for the new key").unwrap();
    p.send_line("first try 1").unwrap();
    p.exp_string("Same passphrase again").unwrap();
    p.send_line("first try 2").unwrap();
    p.exp_string("differ").unwrap();
    p.exp_string("Passphrase for the new key").unwrap();
    p.send_line("pty pass word").unwrap();
    p.exp_string("Same passphrase again").unwrap();
    p.send_line("pty pass word").unwrap();
    let rest = p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 0, "{rest}");
    assert!(!rest.contains("pty pass word"), "the passphrase was echoed");
    let derived = openssh_public_of(&sb.ssh_dir().join("id_ed25519"), "pty pass word");
    derived.ok();
    let public = std::fs::read_to_string(sb.ssh_dir().join("id_ed25519.pub")).unwrap();
    assert_eq!(key_material(&derived.stdout), key_material(&public));
}

#[test]
fn ctrl_c_at_the_passphrase_prompt_exits_130_and_writes_nothing() {
    let sb = Sandbox::new();
    let mut p = spawn(&sb, &["keygen"]);
    p.exp_string("Passphrase for the new key").unwrap();
    p.send("half typed").unwrap();
    p.flush().unwrap();
    p.send_control('c').unwrap();
    let rest = p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 130, "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(
        !sb.ssh_dir().exists(),
        "left: {:?}",
        Sandbox::ls(&sb.ssh_dir())
    );
}

#[test]
fn copy_sends_the_key_to_the_terminal_clipboard_with_osc52() {
    use base64ct::{Base64, Encoding};
    let sb = Sandbox::new();
    sb.run(&["keygen", "--no-passphrase"]).ok();
    let line = std::fs::read_to_string(sb.ssh_dir().join("id_ed25519.pub")).unwrap();
    let expected = format!(
        "\x1b]52;c;{}\x07",
        Base64::encode_string(line.trim_end().as_bytes())
    );
    let mut p = spawn(&sb, &["pubkey", "--copy", "--provider", "github"]);
    let rest = p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 0, "{rest}");
    assert!(
        rest.contains(&expected),
        "no OSC 52 sequence with the key in:\n{rest:?}"
    );
    assert!(rest.contains("Copied the key"));
}

#[test]
fn passphrase_stdin_on_a_terminal_is_refused() {
    let sb = Sandbox::new();
    let mut p = spawn(&sb, &["keygen", "--passphrase-stdin"]);
    let rest = p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 2, "{rest}");
    assert!(rest.contains("standard input is a terminal"), "{rest}");
    assert!(!sb.ssh_dir().exists());
}

#[test]
fn interactive_trust_shows_the_fingerprint_and_asks_before_writing() {
    use crate::support::sshd::Sshd;
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let target = format!("127.0.0.1:{}", sshd.port);
    let kh = sb.ssh_dir().join("known_hosts");

    let mut p = spawn(&sb, &["trust", &target]);
    p.exp_string(&sshd.fingerprint()).unwrap();
    p.exp_string("the fingerprint of").unwrap();
    p.send("n").unwrap();
    p.flush().unwrap();
    let rest = p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 5, "{rest}");
    assert!(!kh.exists());

    let mut p = spawn(&sb, &["trust", &target]);
    p.exp_string("the fingerprint of").unwrap();
    p.send("y").unwrap();
    p.flush().unwrap();
    let rest = p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 0, "{rest}");
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        format!("{}\n", sshd.known_hosts_line())
    );
}
