//! Ctrl-C, SIGTERM and SIGHUP *during* the writes that matter (a key pair, known_hosts,
//! `~/.ssh/config`): real signals, delivered at the exact step by the debug-build test hook
//! (`KEYCLONE_TEST_KILL_AT=write:FILE@TERM` after the temporary file is written,
//! `rename:FILE@TERM` inside the critical section of the rename), answered by keyclone's own
//! handler. Each must exit 128 + the signal, leave no temporary file, and leave the target
//! either as it was or complete, never half-written; a key pair together or not at all.

use std::path::Path;

use crate::init::World;
use crate::support::sshd::Sshd;
use crate::support::{Out, Sandbox, openssh_public_of};

const PASS: &str = "signal test passphrase";

const SIGNALS: [(&str, i32); 3] = [("INT", 130), ("TERM", 143), ("HUP", 129)];

fn temps(dir: &Path) -> Vec<String> {
    Sandbox::ls(dir)
        .into_iter()
        .filter(|n| n.starts_with(".keyclone-"))
        .collect()
}

fn with_point(sb: &Sandbox, args: &[&str], point: &str) -> Out {
    let mut cmd = sb.cmd();
    cmd.args(args).env("KEYCLONE_TEST_KILL_AT", point);
    sb.run_cmd(cmd)
}

#[test]
fn a_signal_while_the_key_pair_is_written_leaves_both_files_or_neither() {
    for (sig, code) in SIGNALS {
        for (point, complete) in [
            ("write:id_ed25519", false),
            ("write:id_ed25519.pub", false),
            // Inside the critical section: the pair's renames finish, then the signal.
            ("rename:id_ed25519", true),
            ("rename:id_ed25519.pub", true),
        ] {
            let sb = Sandbox::new();
            let pf = sb.secret_file("pass", PASS);
            let out = with_point(
                &sb,
                &["keygen", "--passphrase-file", pf.to_str().unwrap()],
                &format!("{point}@{sig}"),
            );
            assert_eq!(out.code, code, "{point}@{sig}: {}", out.stderr);
            out.stderr_has("interrupted").never_shows(PASS);
            let ssh = sb.ssh_dir();
            assert_eq!(temps(&ssh), Vec::<String>::new(), "{point}@{sig}");
            let (private, public) = (ssh.join("id_ed25519"), ssh.join("id_ed25519.pub"));
            if complete {
                let derived = openssh_public_of(&private, PASS);
                derived.ok();
                let line = std::fs::read_to_string(&public).unwrap();
                assert_eq!(
                    crate::support::key_material(&derived.stdout),
                    crate::support::key_material(&line),
                    "{point}@{sig}: the pair does not match"
                );
            } else {
                assert!(
                    !private.exists() && !public.exists(),
                    "{point}@{sig}: left {:?}",
                    Sandbox::ls(&ssh)
                );
            }
        }
    }
}

#[test]
fn a_signal_while_known_hosts_is_written_keeps_it_old_or_new_byte_for_byte() {
    let first = Sshd::start();
    let second = Sshd::start();
    for (sig, code) in SIGNALS {
        for (point, updated) in [("write:known_hosts", false), ("rename:known_hosts", true)] {
            let sb = Sandbox::new();
            sb.run(&[
                "trust",
                &format!("127.0.0.1:{}", first.port),
                "--fingerprint",
                &first.fingerprint(),
            ])
            .ok();
            let kh = sb.ssh_dir().join("known_hosts");
            let before = std::fs::read(&kh).unwrap();
            let out = with_point(
                &sb,
                &[
                    "trust",
                    &format!("127.0.0.1:{}", second.port),
                    "--fingerprint",
                    &second.fingerprint(),
                ],
                &format!("{point}@{sig}"),
            );
            assert_eq!(out.code, code, "{point}@{sig}: {}", out.stderr);
            assert_eq!(temps(&sb.ssh_dir()), Vec::<String>::new(), "{point}@{sig}");
            let after = std::fs::read(&kh).unwrap();
            if updated {
                let mut expected = before.clone();
                expected.extend_from_slice(format!("{}\n", second.known_hosts_line()).as_bytes());
                assert_eq!(after, expected, "{point}@{sig}");
            } else {
                assert_eq!(after, before, "{point}@{sig}: known_hosts changed");
            }
        }
    }
}

#[test]
fn a_signal_while_the_ssh_config_is_written_keeps_it_old_or_new() {
    let hand = "Host build\n    HostName 10.0.0.5\n";
    for (sig, code) in SIGNALS {
        for (point, updated) in [("write:config", false), ("rename:config", true)] {
            let w = World::new();
            w.sb.run(&["keygen", "--passphrase-file", w.pass_file.to_str().unwrap()])
                .ok();
            w.authorize(&w.sb.ssh_dir().join("id_ed25519"));
            std::fs::write(w.ssh_config(), hand).unwrap();
            let url = w.port_url();
            let mut cmd = w.sb.cmd();
            cmd.args(["init", "--non-interactive", "--repo", &url, "--yes"])
                .args(["--no-clone", "--cache", "none"])
                .args(["--passphrase-file", w.pass_file.to_str().unwrap()])
                .env("KEYCLONE_TEST_KILL_AT", format!("{point}@{sig}"));
            let out = w.sb.run_cmd(cmd);
            assert_eq!(out.code, code, "{point}@{sig}: {}", out.stderr);
            out.never_shows(crate::init::PASS);
            assert_eq!(
                temps(&w.sb.ssh_dir()),
                Vec::<String>::new(),
                "{point}@{sig}"
            );
            let text = std::fs::read_to_string(w.ssh_config()).unwrap();
            if updated {
                assert!(
                    text.starts_with(hand) && text.contains("keyclone managed block <<<"),
                    "{point}@{sig}: {text}"
                );
            } else {
                assert_eq!(text, hand, "{point}@{sig}: the config changed");
            }
        }
    }
}
