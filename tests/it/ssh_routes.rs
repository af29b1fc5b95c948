//! `clone` and `test` go where the user's `~/.ssh/config` sends them (as `ssh` would): a
//! `Host` alias with `HostName`, `Port`, `User` and `IdentityFile`, and warnings for what keyclone
//! does not do.

use crate::clone::Setup;

/// Moves the Setup's key out of the default place, so only the config's `IdentityFile` finds it.
fn config_alias(s: &Setup, extra: &str) -> String {
    let ssh = s.sb.ssh_dir();
    std::fs::rename(&s.key, ssh.join("work_key")).unwrap();
    std::fs::rename(ssh.join("id_ed25519.pub"), ssh.join("work_key.pub")).unwrap();
    std::fs::write(
        ssh.join("config"),
        format!(
            "Host work-git\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile ~/.ssh/work_key\n{extra}",
            s.sshd.port, s.sshd.user
        ),
    )
    .unwrap();
    format!("work-git:{}", s.bare.display())
}

#[test]
fn clone_and_test_follow_a_host_alias_of_the_users_ssh_config() {
    let s = Setup::new("ed25519");
    let url = config_alias(&s, "Match exec \"touch /nonexistent/ran\"\n  Port 1\n");
    let dest = s.dest("aliased");
    let pass = s.pass_file.to_str().unwrap();
    let out = s.sb.run(&[
        "clone",
        &url,
        dest.to_str().unwrap(),
        "--passphrase-file",
        pass,
    ]);
    out.ok()
        .stderr_has(&format!(
            "`work-git` is `127.0.0.1` port {} in `~/.ssh/config`; using key `{}`",
            s.sshd.port,
            s.sb.ssh_dir().join("work_key").display()
        ))
        .stderr_has("`Match … exec \"touch /nonexistent/ran\"` was skipped");
    assert!(dest.join("README.md").is_file());
    s.sb.run(&["test", &url, "--passphrase-file", pass])
        .ok()
        .stderr_has("refs listed");
}

#[test]
fn an_include_loop_in_the_users_ssh_config_is_refused_with_the_file_named() {
    let s = Setup::new("ed25519");
    let cfg = s.sb.ssh_dir().join("config");
    let url = config_alias(&s, &format!("Include {}\n", cfg.display()));
    let dest = s.dest("never");
    let out = s.sb.run(&[
        "clone",
        &url,
        dest.to_str().unwrap(),
        "--passphrase-file",
        s.pass_file.to_str().unwrap(),
    ]);
    out.code(3).stderr_has("`Include` loop");
    assert!(!dest.exists());
}

#[test]
fn trust_of_an_alias_records_the_host_and_port_it_resolves_to() {
    let sshd = crate::support::sshd::Sshd::start();
    let sb = crate::support::Sandbox::new();
    std::fs::create_dir_all(sb.ssh_dir()).unwrap();
    std::fs::write(
        sb.ssh_dir().join("config"),
        format!("Host box\n  HostName 127.0.0.1\n  Port {}\n", sshd.port),
    )
    .unwrap();
    sb.run(&["trust", "box", "--fingerprint", &sshd.fingerprint()])
        .ok()
        .stderr_has(&format!(
            "`box` is `127.0.0.1:{}` in `~/.ssh/config`",
            sshd.port
        ));
    let kh = sb.ssh_dir().join("known_hosts");
    let found = crate::support::ssh_keygen(&[
        "-F",
        &format!("[127.0.0.1]:{}", sshd.port),
        "-f",
        kh.to_str().unwrap(),
    ]);
    assert!(found.stdout.contains(&sshd.host_key), "{}", found.stdout);
}
