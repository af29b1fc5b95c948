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
    let mut shown = String::new();
    for (prompt, answer) in [
        ("Passphrase for the new key", Some("first try 1")),
        ("Same passphrase again", Some("first try 2")),
        ("differ", None),
        ("Passphrase for the new key", Some("pty pass word")),
        ("Same passphrase again", Some("pty pass word")),
    ] {
        shown.push_str(&p.exp_string(prompt).unwrap());
        if let Some(a) = answer {
            p.send_line(a).unwrap();
        }
    }
    let rest = p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 0, "{rest}");
    shown.push_str(&rest);
    for secret in ["first try 1", "first try 2", "pty pass word"] {
        assert!(!shown.contains(secret), "a passphrase was echoed");
    }
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

/// The whole wizard in a real terminal, against the real sshd declared as a self-hosted
/// provider, inside a fresh kernel keyring session (`keyctl session`). Afterwards the plain
/// `git` (OpenSSH, no keyclone) clones with the written `~/.ssh/config` and known_hosts.
/// Prints the number of answers and keystrokes of this first-time run.
#[test]
fn the_whole_init_wizard_in_a_terminal() {
    use crate::init::{PASS, World};
    use crate::support::git::state;
    use crate::support::require;

    let w = World::new();
    let keyctl = require("keyctl", "keyutils");
    let mut cmd = w.sb.cmd_of(&keyctl);
    cmd.args(["session", "-"])
        .arg(crate::support::keyclone_bin())
        .arg("init")
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut p = spawn_command(cmd, Some(30_000)).expect("spawn keyclone in a pty");
    let url = w.port_url();
    let mut answers = 0;
    let mut keys = 0;
    // Everything the terminal showed, so the passphrase is looked for in all of it.
    let mut transcript = String::new();
    let mut answer = |p: &mut PtySession, transcript: &mut String, prompt: &str, text: &str| {
        let before = p
            .exp_string(prompt)
            .unwrap_or_else(|e| panic!("waiting for {prompt:?}: {e}"));
        transcript.push_str(&before);
        transcript.push_str(prompt);
        p.send_line(text).unwrap();
        answers += 1;
        keys += text.chars().count() + 1;
    };
    let t = &mut transcript;
    answer(&mut p, t, "Repository URL", &url);
    answer(&mut p, t, "Passphrase for the new key", PASS);
    answer(&mut p, t, "Same passphrase again", PASS);
    answer(&mut p, t, "Keep the passphrase for this session?", "");
    t.push_str(&p.exp_string("The passphrase is in the keyring").unwrap());
    t.push_str(&p.exp_string("ssh-ed25519 ").unwrap());
    w.authorize(&w.sb.ssh_dir().join("id_ed25519"));
    answer(&mut p, t, "Press Enter once the key is added", "");
    t.push_str(&p.exp_string("accepted").unwrap());
    t.push_str(
        &p.exp_string("`keyclone init --user NAME` chooses another")
            .unwrap(),
    );
    answer(&mut p, t, "Write this to", "");
    answer(&mut p, t, "Set them now?", "");
    answer(&mut p, t, "Your name for commits", "Ada Lovelace");
    answer(&mut p, t, "Your email for commits", "ada@example.com");
    let rest = p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 0, "{rest}");
    assert!(rest.contains("Done."), "{rest}");
    transcript.push_str(&rest);
    assert!(
        transcript.contains("Repository URL") && transcript.contains("Ada Lovelace"),
        "the transcript misses parts of the session"
    );
    assert!(
        !transcript.contains(PASS),
        "the passphrase was shown somewhere in the session"
    );
    // URL, passphrase twice, where to keep it, "key added", writing ~/.ssh/config, "set the
    // identity now", name, e-mail; the folder under Users/ is the login name (`tester`).
    assert_eq!(
        answers, 9,
        "answers of the first-time wizard without a token"
    );
    eprintln!(
        "first-time wizard: {answers} answers, {keys} keystrokes (URL {} characters, passphrase {} twice)",
        url.len(),
        PASS.len()
    );

    let dest = w.sb.home.join("code/Users/tester/project");
    let (head, files, fsck) = state(&dest);
    assert!(fsck);
    let plain = w.sb.root.path().join("plain-git");
    let scp = format!("{}@127.0.0.1:{}", w.sshd.user, w.bare.display());
    w.git_clone_plain(&scp, &plain, None).ok();
    assert_eq!(state(&plain).0, head);
    assert_eq!(state(&plain).1, files);
    let gc = std::fs::read_to_string(w.sb.home.join(".gitconfig")).unwrap();
    assert!(gc.contains("Ada Lovelace"), "{gc}");
}

#[test]
fn ctrl_c_in_the_wizard_exits_130_and_writes_nothing() {
    let sb = Sandbox::new();
    let mut p = spawn(&sb, &["init"]);
    p.exp_string("Repository URL").unwrap();
    p.send("git@github.com:o/r").unwrap();
    p.flush().unwrap();
    p.send_control('c').unwrap();
    let rest = p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 130, "{rest}");
    assert!(
        !sb.ssh_dir().exists(),
        "left: {:?}",
        Sandbox::ls(&sb.ssh_dir())
    );
}
