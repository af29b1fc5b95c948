//! An ssh-agent that stalls inside libssh2's own login (it lists the key, then never answers
//! the signature request, like an agent waiting for a confirmation nobody sees): `keyclone test
//! HOST` gives up after its timeout with an error, instead of hanging.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};

use crate::support::Sandbox;
use crate::support::sshd::Sshd;

/// Serves `sock`: answers every key-list request with `public_line`'s key and keeps every
/// other request (the signature) unanswered, its connection held open.
fn stalling_agent(sock: &Path, public_line: &str) {
    let blob = Base64::decode_vec(public_line.split_whitespace().nth(1).unwrap()).unwrap();
    let mut answer = vec![12u8, 0, 0, 0, 1];
    answer.extend_from_slice(&u32::try_from(blob.len()).unwrap().to_be_bytes());
    answer.extend_from_slice(&blob);
    answer.extend_from_slice(&[0, 0, 0, 0]);
    let mut framed = u32::try_from(answer.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&answer);
    let listener = UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let framed = framed.clone();
            std::thread::spawn(move || {
                loop {
                    let mut head = [0u8; 4];
                    if c.read_exact(&mut head).is_err() {
                        return;
                    }
                    let mut body = vec![0u8; u32::from_be_bytes(head) as usize];
                    if c.read_exact(&mut body).is_err() {
                        return;
                    }
                    if body.first() == Some(&11) {
                        let _ = c.write_all(&framed);
                    } else {
                        // Never answer; this thread holds the connection open meanwhile.
                        std::thread::sleep(Duration::from_secs(3600));
                    }
                }
            });
        }
    });
}

#[test]
fn test_host_gives_up_on_an_agent_that_never_signs() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    sb.run(&["keygen", "--no-passphrase"]).ok();
    let public = std::fs::read_to_string(sb.ssh_dir().join("id_ed25519.pub")).unwrap();
    sshd.authorize(&public);
    std::fs::write(
        sb.ssh_dir().join("known_hosts"),
        format!("{}\n", sshd.known_hosts_line()),
    )
    .unwrap();
    let sock = sb.root.path().join("stalling-agent.sock");
    stalling_agent(&sock, &public);

    let mut cmd = sb.cmd();
    cmd.args([
        "test",
        &format!("127.0.0.1:{}", sshd.port),
        "--user",
        &sshd.user,
        "--timeout",
        "2",
    ])
    .env("SSH_AUTH_SOCK", &sock)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // A liveness guard, not a timing assert: a keyclone that hangs fails the test here.
    let give_up = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > give_up {
            let _ = child.kill();
            panic!("keyclone test hung on an agent that never answers");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("did not answer within 2s while logging in to 127.0.0.1"),
        "{stderr}"
    );
    assert!(stderr.contains("SSH_AUTH_SOCK"), "{stderr}");
}
