//! `init` with the provider's API: with a token, `init --non-interactive` adds the key itself and
//! finishes in one run (no exit 8); in a terminal the account's name and e-mail are offered for
//! git's identity, and the answers are counted.

use std::process::Stdio;

use rexpect::process::WaitStatus;
use rexpect::session::spawn_command;
use serde_json::json;

use crate::api_upload::{TOKEN, tokens, world};
use crate::support::git::{make_repo, ssh_url};
use crate::support::{keyclone_bin, require};

#[test]
fn non_interactive_init_with_a_token_finishes_in_one_run() {
    let w = world("github", json!({ "tokens": tokens(&["write:public_key"]) }));
    let out = w.init_in_one_run(&w.repo_url("project"), &[]);
    out.ok()
        .stderr_has("Added")
        .stderr_has("accepted")
        .never_shows(TOKEN);
    assert!(w.authorized().contains(&w.public()));
    let dest = w.sb.home.join("code/Users/tester/project");
    assert!(dest.join("README.md").is_file(), "cloned in the same run");

    // Without a token it stops as before, with the key and the steps (exit 8).
    let w = world("github", json!({ "tokens": tokens(&["write:public_key"]) }));
    let bare = make_repo(w.sb.root.path(), "project");
    let url = ssh_url(&w.sshd, &bare);
    let mut c = w.sb.cmd();
    c.args([
        "init",
        "--non-interactive",
        "--repo",
        &url,
        "--cache",
        "none",
        "--yes",
    ])
    .env("SSL_CERT_FILE", &w.api.ca.ca_cert);
    w.sb.run_cmd(c).code(8).stderr_has("not on your account");
    assert!(w.api.requests().is_empty());
}

/// Where the wizard runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Machine {
    /// A machine of one's own (login `tester`).
    Own,
    /// The same inside a kernel keyring session (`keyctl session`, as
    /// `pty::the_whole_init_wizard_in_a_terminal` runs).
    KeyringSession,
    /// An Azure ML compute instance: the sealed HOME holds `cloudfiles/code`, the workspace's
    /// shared file system where every user's folder sits side by side.
    AzureMlShare,
    /// A machine where people log in under one generic name (`azureuser`), without the share.
    SharedLogin,
}

/// The first-time wizard for a GitHub-kind provider with the token in its variable: the key is
/// added through the API and the account's name and e-mail are offered. The folder under
/// `Users/` is the login name, said with `--user NAME`, except on the Azure ML share, where it
/// is asked (after where the clone should go). Returns the number of answers and keystrokes.
#[allow(clippy::print_stderr)] // the measurement is this test's report
fn wizard(machine: Machine) -> (usize, usize) {
    let in_keyring_session = machine == Machine::KeyringSession;
    let w = world("github", json!({ "tokens": tokens(&["write:public_key"]) }));
    if machine == Machine::AzureMlShare {
        std::fs::create_dir_all(w.sb.home.join("cloudfiles/code")).unwrap();
    }
    // A fresh machine: no key yet.
    std::fs::remove_file(&w.key).unwrap();
    std::fs::remove_file(w.key.with_extension("pub")).unwrap();
    let bare = make_repo(w.sb.root.path(), "project");
    let url = ssh_url(&w.sshd, &bare);
    let mut cmd = if in_keyring_session {
        let mut c = w.sb.cmd_of(&require("keyctl", "keyutils"));
        c.args(["session", "-"])
            .arg(keyclone_bin())
            .arg("init")
            .env("SSL_CERT_FILE", &w.api.ca.ca_cert)
            .env("KEYCLONE_TOKEN_CORP", TOKEN);
        c
    } else {
        w.cmd(&["init"])
    };
    if machine == Machine::SharedLogin {
        cmd.env("USER", "azureuser");
    }
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut p = spawn_command(cmd, Some(30_000)).expect("spawn keyclone in a pty");
    let (mut answers, mut keys) = (0, 0);
    let mut transcript = String::new();
    let pass = "correct horse battery";
    let mut answer =
        |p: &mut rexpect::session::PtySession, t: &mut String, prompt: &str, text: &str| {
            t.push_str(
                &p.exp_string(prompt)
                    .unwrap_or_else(|e| panic!("waiting for {prompt:?}: {e}")),
            );
            p.send_line(text).unwrap();
            answers += 1;
            keys += text.chars().count() + 1;
        };
    let t = &mut transcript;
    answer(&mut p, t, "Repository URL", &url);
    answer(&mut p, t, "Passphrase for the new key", pass);
    answer(&mut p, t, "Same passphrase again", pass);
    // Where to keep the passphrase: the keyring in a keyring session, keyclone's own ssh-agent
    // (issue 17) where there is no agent: asked in both.
    answer(&mut p, t, "Keep the passphrase for this session?", "");
    t.push_str(&p.exp_string("Added").unwrap());
    let folder = if machine == Machine::AzureMlShare {
        answer(&mut p, t, "Where should the clone go?", "");
        answer(&mut p, t, "Your folder name under Users/", "ada");
        w.sb.home.join("cloudfiles/code/Users/ada/project")
    } else if machine == Machine::SharedLogin {
        answer(&mut p, t, "Your folder name under Users/", "ada");
        w.sb.home.join("code/Users/ada/project")
    } else {
        let dest = w.sb.home.join("code/Users/tester/project");
        t.push_str(
            &p.exp_string("(the folder `Users/tester` is your login name; `keyclone init --user NAME` chooses another)")
                .unwrap_or_else(|e| panic!("where the clone goes was not said: {e}")),
        );
        dest
    };
    answer(&mut p, t, "Write this to", "");
    answer(
        &mut p,
        t,
        "Use Ada Lovelace <ada@example.org> from your corp account?",
        "",
    );
    let rest = p.exp_eof().unwrap();
    let code = match p.process().wait().unwrap() {
        WaitStatus::Exited(_, c) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(code, 0, "{rest}");
    transcript.push_str(&rest);
    assert!(
        !transcript.contains(TOKEN) && !transcript.contains(pass),
        "a secret was shown"
    );
    eprintln!(
        "first-time wizard with a token{}: {answers} answers, {keys} keystrokes (URL {} characters)",
        match machine {
            Machine::Own => "",
            Machine::KeyringSession => ", in a keyring session",
            Machine::AzureMlShare => ", on the Azure ML share",
            Machine::SharedLogin => ", logged in as azureuser",
        },
        url.len()
    );
    let gc = std::fs::read_to_string(w.sb.home.join(".gitconfig")).unwrap();
    assert!(
        gc.contains("Ada Lovelace") && gc.contains("ada@example.org"),
        "{gc}"
    );
    assert!(folder.join("README.md").is_file(), "{}", folder.display());
    (answers, keys)
}

#[test]
fn the_wizard_with_a_token_asks_fewer_questions_and_offers_the_account_identity() {
    // 10 answers without a token; 7 with one (URL, passphrase twice, where to keep it, the
    // folder under Users/, writing ~/.ssh/config, the identity); the folder is the login name
    // now where that tells people apart: 6.
    let (answers, _) = wizard(Machine::Own);
    assert_eq!(answers, 6);
}

#[test]
fn the_wizard_with_a_token_in_a_keyring_session() {
    // The same count: the question where to keep the passphrase names the keyring first.
    let (answers, _) = wizard(Machine::KeyringSession);
    assert_eq!(answers, 6);
}

#[test]
fn on_the_azure_ml_share_the_wizard_still_asks_the_folder_under_users() {
    // Everyone logs in as `azureuser` there and the folders sit side by side on the share:
    // where the clone goes (share or local disk) and the folder name are asked, 8 answers.
    let (answers, _) = wizard(Machine::AzureMlShare);
    assert_eq!(answers, 8);
}

#[test]
fn rotate_with_a_token_adds_the_new_key_through_the_api_and_switches() {
    let w = world("github", json!({ "tokens": tokens(&["write:public_key"]) }));
    w.upload().ok();
    let old = w.public();
    let url = w.repo_url("project");
    let out = w.sb.run_cmd(w.cmd(&[
        "rotate",
        "--non-interactive",
        "--test-url",
        &url,
        "--no-passphrase",
    ]));
    out.ok()
        .stderr_has("Added")
        .stderr_has("accepts the new key")
        .never_shows(TOKEN);
    let new = w.public();
    assert_ne!(new, old, "the key was replaced");
    assert!(
        w.authorized().contains(&new),
        "the new key went through the API"
    );
    w.sshd.ssh_login(&w.key, None).ok();
}

#[test]
fn under_a_login_many_people_share_the_wizard_asks_the_folder() {
    // `azureuser` does not tell people apart: the folder under Users/ is asked, 7 answers.
    let (answers, _) = wizard(Machine::SharedLogin);
    assert_eq!(answers, 7);
}
