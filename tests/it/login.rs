//! `keyclone keygen`: the keys it makes (ed25519, RSA, with and without a passphrase) log in to
//! a real OpenSSH server through the real `ssh` client, and are refused before they are
//! authorised.

use crate::support::Sandbox;
use crate::support::sshd::Sshd;

const PASS: &str = "login test passphrase";

fn keygen_and_login(extra: &[&str], file: &str) {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", PASS);
    let mut args = vec!["keygen", "--passphrase-file", pf.to_str().unwrap()];
    args.extend_from_slice(extra);
    sb.run(&args).ok();
    let key = sb.ssh_dir().join(file);

    // Before the key is authorised, the server refuses it: the login check can fail.
    let refused = sshd.ssh_login(&key, Some(PASS));
    assert_ne!(refused.code, 0, "login succeeded with an unauthorised key");

    let public = std::fs::read_to_string(sb.ssh_dir().join(format!("{file}.pub"))).unwrap();
    sshd.authorize(&public);
    let ok = sshd.ssh_login(&key, Some(PASS));
    assert_eq!(
        ok.code,
        0,
        "ssh login failed: {}\nsshd log:\n{}",
        ok.stderr,
        sshd.log()
    );
    assert_eq!(ok.stdout.trim(), "keyclone-login-ok");

    let wrong = sshd.ssh_login(&key, Some("wrong passphrase"));
    assert_ne!(wrong.code, 0, "login succeeded with a wrong passphrase");
}

#[test]
fn encrypted_ed25519_key_logs_in_to_a_real_sshd() {
    keygen_and_login(&[], "id_ed25519");
}

#[test]
fn encrypted_rsa_key_logs_in_to_a_real_sshd() {
    keygen_and_login(&["--type", "rsa"], "id_rsa");
}
