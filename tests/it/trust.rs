//! `keyclone trust` against a real sshd, with OpenSSH's `ssh`, `ssh-keygen -F` and
//! `ssh-keyscan` as the oracles for what is written and read.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::sshd::Sshd;
use crate::support::{Sandbox, ssh_keygen};

fn kh(sb: &Sandbox) -> PathBuf {
    sb.ssh_dir().join("known_hosts")
}

fn target(sshd: &Sshd) -> String {
    format!("127.0.0.1:{}", sshd.port)
}

/// A login key authorised on `sshd`, without passphrase (the test is about host keys).
fn login_key(sb: &Sandbox, sshd: &Sshd) -> PathBuf {
    sb.run(&["keygen", "--no-passphrase", "--path", ".ssh/login"])
        .ok();
    sshd.authorize(&std::fs::read_to_string(sb.ssh_dir().join("login.pub")).unwrap());
    sb.ssh_dir().join("login")
}

fn ssh_keygen_find(name: &str, file: &Path) -> Vec<String> {
    let out = ssh_keygen(&["-F", name, "-f", file.to_str().unwrap()]);
    out.stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect()
}

const OTHER_FP: &str = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU";

#[test]
fn unknown_host_is_refused_without_a_terminal_and_nothing_is_written() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let out = sb.run(&["trust", &target(&sshd)]);
    out.code(4)
        .stderr_has(&sshd.fingerprint())
        .stderr_has("--fingerprint")
        .stderr_has("--accept-new")
        .stderr_has("nothing was written");
    assert!(!kh(&sb).exists());
}

#[test]
fn right_fingerprint_is_accepted_and_the_line_works_for_openssh() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let key = login_key(&sb, &sshd);
    let out = sb.run(&[
        "trust",
        &target(&sshd),
        "--fingerprint",
        &sshd.fingerprint(),
    ]);
    out.ok().stderr_has("the fingerprint you gave: verified");
    assert!(!out.stderr.contains("NOT verified"), "{}", out.stderr);
    let text = std::fs::read_to_string(kh(&sb)).unwrap();
    assert_eq!(
        text,
        format!("[127.0.0.1]:{} {}\n", sshd.port, sshd.host_key),
        "the non-22 port is written as [host]:port"
    );
    let login = sshd.ssh_login_with(&key, None, &kh(&sb));
    assert_eq!(
        login.code, 0,
        "ssh refused the line keyclone wrote: {}",
        login.stderr
    );

    // Again: already trusted, no second line.
    sb.run(&["trust", &target(&sshd)])
        .ok()
        .stderr_has("already trusted");
    assert_eq!(std::fs::read_to_string(kh(&sb)).unwrap(), text);
}

#[test]
fn wrong_fingerprint_is_refused_and_nothing_is_written() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let out = sb.run(&["trust", &target(&sshd), "--fingerprint", OTHER_FP]);
    out.code(9)
        .stderr_has(OTHER_FP)
        .stderr_has(&sshd.fingerprint())
        .stderr_has("nothing was written");
    assert!(!kh(&sb).exists());
}

#[test]
fn changed_host_key_is_refused_and_known_hosts_stays_byte_identical() {
    let mut sshd = Sshd::start();
    let sb = Sandbox::new();
    let key = login_key(&sb, &sshd);
    std::fs::write(kh(&sb), "# my notes\r\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n").unwrap();
    sb.run(&[
        "trust",
        &target(&sshd),
        "--fingerprint",
        &sshd.fingerprint(),
    ])
    .ok();
    let old_fp = sshd.fingerprint();
    let before = std::fs::read(kh(&sb)).unwrap();

    sshd.restart_with_new_host_key();
    let new_fp = sshd.fingerprint();
    let out = sb.run(&["trust", &target(&sshd)]);
    out.code(9)
        .stderr_has("CHANGED")
        .stderr_has(&old_fp)
        .stderr_has(&new_fp)
        .stderr_has("line 3")
        .stderr_has("--replace");
    assert_eq!(std::fs::read(kh(&sb)).unwrap(), before);
    // Trust on first use does not apply to a changed key.
    sb.run(&["trust", &target(&sshd), "--accept-new"]).code(9);
    assert_eq!(std::fs::read(kh(&sb)).unwrap(), before);
    // OpenSSH agrees that the key changed.
    assert_ne!(sshd.ssh_login_with(&key, None, &kh(&sb)).code, 0);

    // --replace with the new fingerprint: the old line goes, every other byte stays.
    let out = sb.run(&[
        "trust",
        &target(&sshd),
        "--replace",
        "--fingerprint",
        &new_fp,
    ]);
    out.ok();
    let after = std::fs::read_to_string(kh(&sb)).unwrap();
    assert_eq!(
        after,
        format!(
            "# my notes\r\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n[127.0.0.1]:{} {}\n",
            sshd.port, sshd.host_key
        )
    );
    assert_eq!(sshd.ssh_login_with(&key, None, &kh(&sb)).code, 0);
}

#[test]
fn hashed_entries_from_ssh_keyscan_and_ssh_keygen_are_recognised() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.ssh_dir()).unwrap();
    let scan = Command::new(crate::support::require("ssh-keyscan", "openssh-client"))
        .args([
            "-H",
            "-t",
            "ed25519",
            "-p",
            &sshd.port.to_string(),
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(scan.stdout).unwrap();
    assert!(text.starts_with("|1|"), "ssh-keyscan -H output: {text:?}");
    std::fs::write(kh(&sb), &text).unwrap();
    sb.run(&["trust", &target(&sshd)])
        .ok()
        .stderr_has("already trusted");
    assert_eq!(std::fs::read_to_string(kh(&sb)).unwrap(), text);

    // A plain line hashed by `ssh-keygen -H`.
    std::fs::write(kh(&sb), format!("{}\n", sshd.known_hosts_line())).unwrap();
    ssh_keygen(&["-H", "-f", kh(&sb).to_str().unwrap()]).ok();
    assert!(std::fs::read_to_string(kh(&sb)).unwrap().starts_with("|1|"));
    sb.run(&["trust", &target(&sshd)])
        .ok()
        .stderr_has("already trusted");
}

#[test]
fn revoked_line_wins_over_a_trusting_line() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.ssh_dir()).unwrap();
    let text = format!(
        "{0}\n@revoked [127.0.0.1]:{1} {2}\n",
        sshd.known_hosts_line(),
        sshd.port,
        sshd.host_key
    );
    std::fs::write(kh(&sb), &text).unwrap();
    sb.run(&["trust", &target(&sshd)])
        .code(9)
        .stderr_has("REVOKED")
        .stderr_has("line 2");
    sb.run(&[
        "trust",
        &target(&sshd),
        "--replace",
        "--fingerprint",
        &sshd.fingerprint(),
    ])
    .code(9);
    assert_eq!(std::fs::read_to_string(kh(&sb)).unwrap(), text);
}

#[test]
fn hash_writes_a_hashed_name_that_openssh_accepts() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let key = login_key(&sb, &sshd);
    sb.run(&["trust", &target(&sshd), "--accept-new", "--hash"])
        .ok()
        .stderr_has("NOT verified");
    let text = std::fs::read_to_string(kh(&sb)).unwrap();
    assert!(
        text.starts_with("|1|") && !text.contains("127.0.0.1"),
        "{text}"
    );
    assert_eq!(
        ssh_keygen_find(&format!("[127.0.0.1]:{}", sshd.port), &kh(&sb)).len(),
        1
    );
    assert_eq!(sshd.ssh_login_with(&key, None, &kh(&sb)).code, 0);
}

#[test]
fn twenty_concurrent_processes_write_every_line_exactly_once() {
    // Two servers (sshd listens on at most 16 addresses), ten loopback addresses each: twenty
    // distinct hosts.
    let addrs: Vec<String> = (1..=20).map(|i| format!("127.0.0.{i}")).collect();
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let servers = [Sshd::start_on(&refs[..10]), Sshd::start_on(&refs[10..])];
    let server_of = |i: usize| &servers[i / 10];
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.ssh_dir()).unwrap();
    std::fs::write(kh(&sb), "# kept\n").unwrap();
    for round in 0..2 {
        let children: Vec<_> = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut c = sb.cmd();
                c.args([
                    "trust",
                    &format!("{a}:{}", server_of(i).port),
                    "--accept-new",
                ]);
                c.stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let text = std::fs::read_to_string(kh(&sb)).unwrap();
    assert!(text.starts_with("# kept\n"));
    for (i, a) in addrs.iter().enumerate() {
        let line = format!("[{a}]:{} {}", server_of(i).port, server_of(i).host_key);
        assert_eq!(
            text.lines().filter(|l| *l == line).count(),
            1,
            "{line} in:\n{text}"
        );
    }
    assert_eq!(text.lines().count(), 21);
}

#[test]
fn self_hosted_pin_from_the_config_is_trusted_and_a_different_key_refused() {
    let mut sshd = Sshd::start();
    let sb = Sandbox::new();
    let cfg = sb.root.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[provider.lab]\nkind = \"plain\"\nname = \"Lab server\"\nhost = \"127.0.0.1\"\nport = {}\nfingerprints = [\"{}\"]\n",
            sshd.port,
            sshd.fingerprint()
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    sb.run(&["--config", c, "trust", &target(&sshd)])
        .ok()
        .stderr_has("Lab server publishes");
    assert_eq!(
        ssh_keygen_find(&format!("[127.0.0.1]:{}", sshd.port), &kh(&sb)).len(),
        1
    );

    let before = std::fs::read(kh(&sb)).unwrap();
    sshd.restart_with_new_host_key();
    sb.run(&["--config", c, "trust", &target(&sshd), "--accept-new"])
        .code(9)
        .stderr_has("does not publish");
    assert_eq!(std::fs::read(kh(&sb)).unwrap(), before);
}

#[test]
fn offline_provider_keys_are_found_by_openssh_and_never_duplicated() {
    let sb = Sandbox::new();
    let out = sb.run(&["trust", "--offline", "--provider", "github"]);
    out.ok().stderr_has("No connection was made");
    assert_eq!(ssh_keygen_find("github.com", &kh(&sb)).len(), 3);
    assert_eq!(
        ssh_keygen_find("[ssh.github.com]:443", &kh(&sb)).len(),
        1,
        "only the confirmed port-443 key"
    );
    let first = std::fs::read(kh(&sb)).unwrap();
    sb.run(&["trust", "--offline", "--provider", "github"])
        .ok()
        .stderr_has("(4 already there)");
    assert_eq!(std::fs::read(kh(&sb)).unwrap(), first);
}

#[test]
fn github_retired_rsa_key_in_known_hosts_is_explained_and_replaced() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.ssh_dir()).unwrap();
    let old = "github.com ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEAq2A7hRGmdnm9tUDbO9IDSwBK6TbQa+PXYPCPy6rbTrTtw7PHkccKrpp0yVhp5HdEIcKr6pLlVDBfOLX9QUsyCOV0wzfjIJNlGEYsdlLJizHhbn2mUjvSAHQqZETYP81eFzLQNnPHt4EVVUh7VfDESU84KezmD5QlWpXLmvU31/yMf+Se8xhHTvKSCZIFImWwoG6mbUoWf9nzpIoaSjB+weqqUUmpaaasXVal72J+UX2B+2RPW3RcT0eOzQgqlJL3RKrTJvdsjE3JEAvGq3lGHSZXy28G3skua2SmVi/w4yCE6gbODqnTWlg7+wC604ydGXA8VJiS5ap43JXiUFFAaQ==";
    std::fs::write(kh(&sb), format!("{old}\n")).unwrap();
    let out = sb.run(&["trust", "--offline", "--provider", "github"]);
    out.ok()
        .stderr_has("GitHub replaced this RSA host key on 2023-03-24")
        .stderr_has("--replace");
    assert!(std::fs::read_to_string(kh(&sb)).unwrap().contains(old));
    sb.run(&["trust", "--offline", "--provider", "github", "--replace"])
        .ok();
    let text = std::fs::read_to_string(kh(&sb)).unwrap();
    assert!(
        !text.contains("AAAAB3NzaC1yc2EAAAABIwAAAQEAq2A7hRGmdnm9"),
        "{text}"
    );
    assert_eq!(ssh_keygen_find("github.com", &kh(&sb)).len(), 3);
}

#[test]
fn malformed_lines_are_reported_by_number_and_kept() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.ssh_dir()).unwrap();
    let mut bad: Vec<u8> = Vec::new();
    bad.extend_from_slice(b"h ssh-ed25519 !!!notbase64\r\n");
    bad.extend_from_slice(b"onlyhost\n");
    bad.extend_from_slice(
        b"h ssh-unknown AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
    );
    bad.extend_from_slice(b"\x00\xff binary \x01\n");
    bad.extend_from_slice(format!("h ssh-ed25519 {}\n", "A".repeat(20_000)).as_bytes());
    bad.extend_from_slice(
        format!(
            "\t{}\t\tcomment\r\n",
            sshd.known_hosts_line().replace(' ', "  ")
        )
        .as_bytes(),
    );
    std::fs::write(kh(&sb), &bad).unwrap();
    let out = sb.run(&["trust", &target(&sshd)]);
    out.ok().stderr_has("already trusted").stderr_has("line 6");
    for n in 1..=5 {
        out.stderr_has(&format!("line {n} was skipped"));
    }
    assert_eq!(std::fs::read(kh(&sb)).unwrap(), bad);

    // Adding a line keeps every existing byte.
    let sshd2 = Sshd::start();
    sb.run(&["trust", &target(&sshd2), "--accept-new"]).ok();
    let after = std::fs::read(kh(&sb)).unwrap();
    assert!(after.starts_with(&bad));
    assert_eq!(
        &after[bad.len()..],
        format!("{}\n", sshd2.known_hosts_line()).as_bytes()
    );
}

#[test]
fn unreadable_known_hosts_is_a_clear_error() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    std::fs::create_dir_all(kh(&sb)).unwrap();
    sb.run(&["trust", &target(&sshd), "--accept-new"])
        .code(7)
        .stderr_has("is a directory");
}

#[test]
fn bad_targets_are_usage_errors() {
    let sb = Sandbox::new();
    for (t, needle) in [
        ("bad host", "not a host name"),
        ("h\u{1b}x", "not a host name"),
        ("h:0", "not a port"),
        ("h:65536", "not a port"),
        ("https://github.com/o/r.git", "not an SSH URL"),
    ] {
        sb.run(&["trust", t]).code(2).stderr_has(needle);
    }
    assert!(!sb.ssh_dir().exists());
}

fn serve_once(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = s.write_all(reply);
            // Closing the socket ends the conversation.
        }
    });
    port
}

#[test]
fn a_server_that_hangs_up_or_is_not_ssh_is_a_network_error_and_nothing_is_written() {
    let sb = Sandbox::new();
    for reply in [
        &b""[..],
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        b"SSH-2.0-fake\r\n\x00\x00\x00\x01garbage",
    ] {
        let port = serve_once(reply);
        let out = sb.run(&[
            "trust",
            &format!("127.0.0.1:{port}"),
            "--accept-new",
            "--timeout",
            "5",
        ]);
        out.code(10).stderr_has("did not complete an SSH handshake");
    }
    // Nothing listening at all.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    sb.run(&["trust", &format!("127.0.0.1:{port}"), "--accept-new"])
        .code(10)
        .stderr_has("could not connect");
    assert!(!kh(&sb).exists());
}

#[test]
fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The server accepts and says nothing; it hangs up only when the client does, or after
    // 60 s. A client that ends well before that was ended by its own timeout.
    let hold = std::thread::spawn(move || {
        use std::io::Read;
        if let Ok((mut conn, _)) = listener.accept() {
            conn.set_read_timeout(Some(std::time::Duration::from_secs(60)))
                .unwrap();
            let mut sink = Vec::new();
            let _ = conn.read_to_end(&mut sink);
        }
    });
    let sb = Sandbox::new();
    let started = std::time::Instant::now();
    sb.run(&[
        "trust",
        &format!("127.0.0.1:{port}"),
        "--accept-new",
        "--timeout",
        "1",
    ])
    .code(10);
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(30),
        "the timeout did not fire: trust waited {took:?}"
    );
    assert!(!kh(&sb).exists());
    hold.join().unwrap();
}

#[test]
fn json_output_carries_the_verdict() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    let out = sb.run(&[
        "--json",
        "trust",
        &target(&sshd),
        "--fingerprint",
        &sshd.fingerprint(),
    ]);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["verdict"]["decision"], "unknown");
    assert_eq!(v["verdict"]["presented"]["fingerprint"], sshd.fingerprint());
    assert_eq!(v["written"].as_array().unwrap().len(), 1);
    assert_eq!(v["trust_on_first_use"], false);
}

#[test]
fn show_lists_known_lines_and_published_keys_without_connecting() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    sb.run(&["trust", &target(&sshd), "--accept-new"]).ok();
    let out = sb.run(&["trust", "--show", &target(&sshd)]);
    out.ok();
    assert!(
        out.stdout
            .contains(&format!("known_hosts:1 ED25519 {}", sshd.fingerprint())),
        "{}",
        out.stdout
    );
    let out = sb.run(&["trust", "--show", "github.com"]);
    assert!(
        out.ok().stdout.contains(
            "GitHub (published) ssh-ed25519 SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn writing_keeps_the_file_mode_and_a_new_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    sb.run(&["trust", &target(&sshd), "--accept-new"]).ok();
    assert_eq!(crate::support::mode(&kh(&sb)), 0o600);
    assert_eq!(crate::support::mode(&sb.ssh_dir()), 0o700);

    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.ssh_dir()).unwrap();
    std::fs::write(kh(&sb), "# shared with my team\n").unwrap();
    std::fs::set_permissions(kh(&sb), std::fs::Permissions::from_mode(0o644)).unwrap();
    sb.run(&["trust", &target(&sshd), "--accept-new"]).ok();
    assert_eq!(crate::support::mode(&kh(&sb)), 0o644);
    let names = Sandbox::ls(&sb.ssh_dir());
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "temporary file left: {names:?}"
    );
}

#[test]
fn a_symlinked_known_hosts_is_refused_and_left_alone() {
    let sshd = Sshd::start();
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.ssh_dir()).unwrap();
    let real = sb.root.path().join("real_known_hosts");
    std::fs::write(&real, "# real\n").unwrap();
    std::os::unix::fs::symlink(&real, kh(&sb)).unwrap();
    sb.run(&["trust", &target(&sshd), "--accept-new"])
        .code(5)
        .stderr_has("symbolic link");
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "# real\n");
}
