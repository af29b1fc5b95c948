//! Where `pubkey --upload`'s token comes from: `--token-file`, the provider's variable, a hidden
//! prompt (with the token page first), the OAuth device flow (each of its states), and nowhere
//! else; against the stand-in for the providers' APIs.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use rexpect::process::WaitStatus;
use rexpect::session::{PtySession, spawn_command};
use serde_json::json;

use crate::api_upload::{TOKEN, World, tokens, world};

fn upload_cmd(w: &World, extra: &[&str]) -> std::process::Command {
    let mut c = w.sb.cmd();
    c.args(["pubkey", "--upload", "--provider", "corp"])
        .args(extra)
        .env("SSL_CERT_FILE", &w.api.ca.ca_cert);
    c
}

fn pty(w: &World, extra: &[&str]) -> PtySession {
    let mut c = upload_cmd(w, extra);
    c.stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    spawn_command(c, Some(30_000)).expect("spawn keyclone in a pty")
}

fn exit_code(p: &PtySession) -> i32 {
    match p.process().wait().unwrap() {
        WaitStatus::Exited(_, code) => code,
        other => panic!("keyclone did not exit normally: {other:?}"),
    }
}

#[test]
fn a_token_file_is_read_and_one_others_can_read_is_refused() {
    let w = world("github", json!({ "tokens": tokens(&["write:public_key"]) }));
    let file = w.sb.secret_file("token", &format!("{TOKEN}\n"));
    let out =
        w.sb.run_cmd(upload_cmd(&w, &["--token-file", file.to_str().unwrap()]));
    out.ok().stderr_has("Added").never_shows(TOKEN);
    assert!(w.authorized().contains(&w.public()));

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out =
        w.sb.run_cmd(upload_cmd(&w, &["--token-file", file.to_str().unwrap()]));
    out.code(5)
        .stderr_has("can be read by other users")
        .stderr_has("chmod 600");
}

#[test]
fn without_a_token_and_a_terminal_the_error_names_the_variable_and_the_page() {
    let w = world("github", json!({ "tokens": tokens(&["write:public_key"]) }));
    // github.com's variable is set: it is not sent to this other host.
    let mut c = upload_cmd(&w, &[]);
    c.env("GH_TOKEN", TOKEN);
    let out = w.sb.run_cmd(c);
    out.code(4)
        .stderr_has("`KEYCLONE_TOKEN_CORP`")
        .stderr_has("--token-file FILE")
        .stderr_has("https://localhost/settings/tokens/new?scopes=write:public_key")
        .stderr_has("GH_TOKEN is set, but it holds a token of a hosted provider")
        .never_shows(TOKEN);
    assert!(
        w.api.requests().is_empty(),
        "no request without a token of this host"
    );
}

#[test]
fn azure_devops_says_it_has_no_api_and_shows_the_steps_command() {
    let sb = crate::support::Sandbox::new();
    sb.run(&["keygen", "--no-passphrase", "--type", "rsa"]).ok();
    let out = sb.run(&["pubkey", "--upload", "--provider", "azure-devops"]);
    out.code(5)
        .stderr_has("Azure DevOps has no public API to add SSH keys")
        .stderr_has("keyclone pubkey --provider azure-devops");
}

#[test]
fn the_prompt_shows_the_token_page_first_and_hides_the_token() {
    let w = world("gitlab", json!({ "tokens": tokens(&["api"]) }));
    let mut p = pty(&w, &[]);
    let shown = p.exp_string("corp token (input hidden)").unwrap();
    assert!(
        shown.contains("/-/user_settings/personal_access_tokens?name=keyclone&scopes=api"),
        "{shown}"
    );
    assert!(shown.contains("`api` scope"), "{shown}");
    p.send_line(TOKEN).unwrap();
    let rest = p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 0, "{rest}");
    assert!(rest.contains("Added"), "{rest}");
    assert!(
        !rest.contains(TOKEN) && !shown.contains(TOKEN),
        "the token was echoed"
    );
    assert!(w.authorized().contains(&w.public()));
}

fn device_world(states: &[&str]) -> World {
    let w = world(
        "github",
        json!({
            "tokens": tokens(&["write:public_key"]),
            "device": { "client_id": "Ov23-test-client", "states": states, "token": TOKEN },
        }),
    );
    let cfg = w.sb.home.join(".config/keyclone/config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("oauth-client-id = \"Ov23-test-client\"\n");
    std::fs::write(&cfg, text).unwrap();
    w
}

#[test]
fn the_device_flow_waits_through_pending_and_slow_down_then_uploads() {
    let w = device_world(&[
        "authorization_pending",
        "slow_down",
        "authorization_pending",
    ]);
    let mut p = pty(&w, &[]);
    let shown = p.exp_string("WDJB-MJHT").unwrap();
    assert!(shown.contains("/login/device"), "{shown}");
    let rest = p.exp_eof().unwrap();
    assert_eq!(exit_code(&p), 0, "{rest}");
    assert!(rest.contains("Added"), "{rest}");
    let reqs = w.api.requests();
    let polls = reqs
        .iter()
        .filter(|r| r["path"] == "/login/oauth/access_token")
        .count();
    assert_eq!(polls, 4, "three waits, then the token");
    let code = reqs
        .iter()
        .find(|r| r["path"] == "/login/device/code")
        .unwrap();
    assert_eq!(code["body"]["scope"], "write:public_key");
    assert_eq!(code["body"]["client_id"], "Ov23-test-client");
    assert!(w.authorized().contains(&w.public()));
}

#[test]
fn a_denied_or_expired_device_login_ends_with_the_next_step() {
    for (state, says) in [
        ("access_denied", "was denied"),
        ("expired_token", "expired before it was entered"),
    ] {
        let w = device_world(&[state]);
        let mut p = pty(&w, &[]);
        let rest = p.exp_eof().unwrap();
        assert_eq!(exit_code(&p), 8, "{rest}");
        assert!(
            rest.contains(says) && rest.contains("run the same command again"),
            "{rest}"
        );
        assert!(!w.authorized().contains(&w.public()));
    }
}
