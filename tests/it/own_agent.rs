//! keyclone's own ssh-agent (`keyclone agent`, `init --cache-for`) with the real `ssh-agent`,
//! `ssh-add`, `ssh` and `git` as oracles: a fresh shell with no `SSH_AUTH_SOCK` fetches
//! without a prompt (driven in a pty, so a prompt would show), the socket's modes, `stop`, a
//! stale socket, and sockets keyclone must refuse.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rexpect::session::spawn_command;

use crate::init::{PASS, World};
use crate::support::git::git;
use crate::support::{Out, Sandbox, mode, require, ssh_keygen};

fn socket(sb: &Sandbox) -> PathBuf {
    sb.ssh_dir().join("keyclone-agent/agent.sock")
}

/// Stops keyclone's agent of a sandbox when the test ends, passed or failed.
struct StopAgent<'a>(&'a Sandbox);

impl Drop for StopAgent<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["agent", "stop"]);
    }
}

/// `ssh-add -l` against `sock`.
fn ssh_add_list(sock: &Path) -> Out {
    let o = Command::new(require("ssh-add", "openssh-client"))
        .arg("-l")
        .env_clear()
        .env("SSH_AUTH_SOCK", sock)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn fingerprint_of(key: &Path) -> String {
    let out = ssh_keygen(&["-lf", key.with_extension("pub").to_str().unwrap()]);
    out.stdout.split_whitespace().nth(1).unwrap().to_owned()
}

/// A passphrase-protected default key in the sandbox.
fn keygen(sb: &Sandbox, pass_file: &Path) -> PathBuf {
    sb.run(&["keygen", "--passphrase-file", pass_file.to_str().unwrap()])
        .ok();
    sb.ssh_dir().join("id_ed25519")
}

/// doctor's one login check (the block has one host).
fn doctor_login(sb: &Sandbox) -> serde_json::Value {
    let out = sb.run(&["doctor", "--json", "--timeout", "10"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let logins: Vec<_> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["area"] == "login")
        .cloned()
        .collect();
    assert_eq!(logins.len(), 1, "{v}");
    logins[0].clone()
}

#[test]
fn after_init_caches_the_key_a_fresh_shell_fetches_with_no_prompt_until_agent_stop() {
    let w = World::new();
    let key = keygen(&w.sb, &w.pass_file);
    w.authorize(&key);
    let _stop = StopAgent(&w.sb);
    let url = w.port_url();
    let pass = w.pass_file.to_str().unwrap();
    let out = w.init(
        &[
            "--non-interactive",
            "--repo",
            &url,
            "--passphrase-file",
            pass,
            "--cache-for",
            "1h",
            "--yes",
        ],
        None,
    );
    out.ok()
        .stderr_has("keyclone's ssh-agent")
        .never_shows(PASS);
    let sock = socket(&w.sb);
    assert_eq!(mode(sock.parent().unwrap()), 0o700);
    assert_eq!(mode(&sock), 0o600);
    assert!(
        std::fs::symlink_metadata(&sock)
            .unwrap()
            .file_type()
            .is_socket()
    );
    let config = std::fs::read_to_string(w.ssh_config()).unwrap();
    assert!(
        config.contains(&format!("    IdentityAgent {}\n", sock.display())),
        "{config}"
    );
    let held = ssh_add_list(&sock);
    held.ok();
    assert!(
        held.stdout.contains(&fingerprint_of(&key)),
        "{}",
        held.stdout
    );

    // A new commit on the server, then plain git in a fresh shell: no SSH_AUTH_SOCK, no
    // askpass, a terminal on which ssh would ask for the passphrase if it had to.
    let work = w.bare.parent().unwrap().join("project-work");
    std::fs::write(work.join("NEW.md"), "new\n").unwrap();
    git(&work, &["add", "-A"]).ok();
    git(&work, &["commit", "-q", "-m", "new"]).ok();
    git(&work, &["push", "-q", w.bare.to_str().unwrap(), "main"]).ok();
    let want = git(&w.bare, &["rev-parse", "main"])
        .stdout
        .trim()
        .to_owned();
    let dest = w.sb.home.join("code/Users/tester/project");
    let mut sh = Command::new("/bin/sh");
    sh.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &w.sb.home)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env(
            "GIT_SSH_COMMAND",
            format!(
                "ssh -F {} -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null",
                w.ssh_config().display()
            ),
        )
        .current_dir(&dest)
        .args([
            "-c",
            "git fetch -q origin && echo \"fetched $(git rev-parse origin/main)\"",
        ]);
    let mut p = spawn_command(sh, Some(20_000)).expect("spawn a shell in a pty");
    let shown = p
        .exp_string(&format!("fetched {want}"))
        .unwrap_or_else(|e| panic!("git fetch did not finish without a prompt: {e}"));
    assert!(!shown.to_lowercase().contains("passphrase"), "{shown}");
    p.exp_eof().unwrap();

    let status = w.sb.run(&["agent", "status"]);
    status.ok();
    assert!(
        status.stdout.contains("holds 1 key(s)"),
        "{}",
        status.stdout
    );
    // doctor logs in through keyclone's agent, which no SSH_AUTH_SOCK names.
    let login = doctor_login(&w.sb);
    assert_eq!(login["status"], "ok", "{login}");
    assert!(
        login["what"]
            .as_str()
            .unwrap()
            .contains("through ssh-agent"),
        "{login}"
    );

    w.sb.run(&["agent", "stop"])
        .ok()
        .stderr_has("Stopped keyclone's ssh-agent");
    assert!(!sock.exists(), "the socket is gone");
    assert_ne!(ssh_add_list(&sock).code, 0);
    w.sb.run(&["agent", "stop"])
        .ok()
        .stderr_has("was not running");
    // With the agent gone and no passphrase source, doctor says it could not check, and how.
    let login = doctor_login(&w.sb);
    assert_eq!(login["status"], "warn", "{login}");
    assert!(
        login["fix"]
            .as_str()
            .unwrap()
            .contains("keyclone agent start --key"),
        "{login}"
    );
    let status = w.sb.run(&["agent", "status"]);
    assert!(status.stdout.contains("not running"), "{}", status.stdout);
}

#[test]
fn a_stale_socket_is_replaced_and_env_keeps_the_user_s_own_agent_first() {
    let sb = Sandbox::new();
    let pass = sb.secret_file("pass", PASS);
    let key = keygen(&sb, &pass);
    let sock = socket(&sb);
    std::fs::create_dir(sock.parent().unwrap()).unwrap();
    std::fs::set_permissions(sock.parent().unwrap(), PermissionsExt::from_mode(0o700)).unwrap();
    // A socket nothing listens on any more (a crashed agent, a reboot).
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    std::fs::set_permissions(&sock, PermissionsExt::from_mode(0o600)).unwrap();
    let _stop = StopAgent(&sb);
    let status = sb.run(&["agent", "status"]);
    assert!(
        status.stdout.contains("left from one that stopped"),
        "{}",
        status.stdout
    );

    let out = sb.run(&[
        "agent",
        "start",
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--cache-for",
        "10m",
    ]);
    out.ok().stderr_has("for 10m").never_shows(PASS);
    assert!(ssh_add_list(&sock).stdout.contains(&fingerprint_of(&key)));

    // `agent env`: the line for this shell, unless the user's own agent answers.
    let env = sb.run(&["agent", "env"]);
    env.ok();
    assert_eq!(
        env.stdout,
        format!(
            "SSH_AUTH_SOCK='{}'; export SSH_AUTH_SOCK;\n",
            sock.display()
        )
    );
    let theirs = crate::support::agent::Agent::start();
    let mut cmd = sb.cmd();
    cmd.args(["agent", "env"])
        .env("SSH_AUTH_SOCK", &theirs.sock);
    let kept = sb.run_cmd(cmd);
    kept.ok();
    assert_eq!(kept.stdout, "", "the user's own agent stays first");
}

/// Gives `path` to the user `nobody`: directly as root (CI), else through passwordless sudo.
fn give_to_nobody(path: &Path) {
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user `nobody` exists");
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    if nix::unistd::Uid::effective().is_root() {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    } else {
        let ok = Command::new("sudo")
            .args(["-n", "chown", "-h", &format!("{uid}:{gid}")])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "this test gives a socket to another user: run the tests as root (CI does) or with passwordless sudo"
        );
    }
}

#[test]
fn an_open_folder_or_another_user_s_socket_is_refused_and_left_alone() {
    let sb = Sandbox::new();
    let pass = sb.secret_file("pass", PASS);
    keygen(&sb, &pass);
    let sock = socket(&sb);
    let dir = sock.parent().unwrap();
    std::fs::create_dir(dir).unwrap();
    std::fs::set_permissions(dir, PermissionsExt::from_mode(0o755)).unwrap();
    let _stop = StopAgent(&sb);
    let start = [
        "agent",
        "start",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ];
    sb.run(&start)
        .code(5)
        .stderr_has("other users may use it (mode 755")
        .never_shows(PASS);
    assert!(!sock.exists(), "no agent was started");
    // init refuses it too, before it changes anything.
    sb.run(&[
        "init",
        "--non-interactive",
        "--provider",
        "github",
        "--cache",
        "keyclone-agent",
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--yes",
    ])
    .code(5)
    .stderr_has("other users may use it");
    assert!(!sb.ssh_dir().join("config").exists(), "nothing was written");

    std::fs::set_permissions(dir, PermissionsExt::from_mode(0o700)).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::fs::set_permissions(&sock, PermissionsExt::from_mode(0o600)).unwrap();
    give_to_nobody(&sock);
    sb.run(&start).code(5).stderr_has("belongs to another user");
    sb.run(&["agent", "stop"])
        .code(5)
        .stderr_has("belongs to another user");
    assert!(sock.exists(), "another user's socket is left alone");
    drop(listener);
}

#[test]
fn doctor_logs_in_to_the_block_s_host_and_offline_skips_it() {
    let w = World::new();
    w.sb.run(&["keygen", "--no-passphrase"]).ok();
    let key = w.sb.ssh_dir().join("id_ed25519");
    w.authorize(&key);
    let url = w.port_url();
    w.init(
        &["--non-interactive", "--repo", &url, "--yes", "--no-clone"],
        None,
    )
    .ok();
    let login = doctor_login(&w.sb);
    assert_eq!(login["status"], "ok", "{login}");
    assert!(
        login["what"]
            .as_str()
            .unwrap()
            .contains("with the key file"),
        "{login}"
    );
    let offline = w.sb.run(&["doctor", "--offline", "--json"]);
    assert!(!offline.stdout.contains("\"login\""), "{}", offline.stdout);

    // The key taken off the server: the login fails, with the commands that fix it.
    std::fs::write(w.sshd.authorized_keys_path(), "").unwrap();
    let out = w.sb.run(&["doctor", "--timeout", "10"]);
    out.code(1);
    assert!(out.stdout.contains("FAIL login"), "{}", out.stdout);
    assert!(out.stdout.contains("refuses"), "{}", out.stdout);
    assert!(
        out.stdout.contains("keyclone pubkey --key"),
        "{}",
        out.stdout
    );
}

#[test]
fn agent_env_on_a_fresh_machine_starts_the_agent_on_demand_and_reuses_it() {
    let sb = Sandbox::new();
    let _stop = StopAgent(&sb);
    let first = sb.run(&["agent", "env"]);
    first.ok();
    let sock = socket(&sb);
    assert_eq!(
        first.stdout,
        format!(
            "SSH_AUTH_SOCK='{}'; export SSH_AUTH_SOCK;\n",
            sock.display()
        )
    );
    assert_eq!(mode(&sb.ssh_dir()), 0o700);
    // ssh-add: 1 = an agent answers and holds no key (2 would be: no agent there).
    assert_eq!(ssh_add_list(&sock).code, 1);
    let pid = |out: &Out| {
        out.stdout
            .split("(pid ")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .unwrap()
            .to_owned()
    };
    let before = pid(&sb.run(&["agent", "status"]));
    sb.run(&["agent", "env"]).ok();
    assert_eq!(pid(&sb.run(&["agent", "status"])), before, "the same agent");
}
