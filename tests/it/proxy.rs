//! Connections through the proxy `~/.ssh/config` names: a `ProxyCommand` (`nc`, Debian
//! `netcat-openbsd`) to a target whose `HostName` does not resolve (so only the proxy can
//! reach it), a second sshd as the `ProxyJump` host, and a `ProxyCommand` that exits at once.
//! `trust` and `test HOST` go through them with the same host check and login as direct.

use crate::clone::{PASS, Setup};
use crate::support::sshd::Sshd;
use crate::support::{require, ssh_keygen};

fn write_config(s: &Setup, text: &str) {
    std::fs::write(s.sb.ssh_dir().join("config"), text).unwrap();
}

fn known(s: &Setup, name: &str) -> String {
    let kh = s.known_hosts();
    ssh_keygen(&["-F", name, "-f", kh.to_str().unwrap()]).stdout
}

#[test]
fn proxy_command_nc_reaches_a_target_only_it_can_reach() {
    require("nc", "netcat-openbsd");
    let s = Setup::new("ed25519");
    write_config(
        &s,
        &format!(
            "Host tgt\n  HostName target.invalid\n  Port {}\n  User {}\n  ProxyCommand nc 127.0.0.1 %p\n",
            s.sshd.port, s.sshd.user
        ),
    );
    s.sb.run(&["trust", "tgt", "--fingerprint", &s.sshd.fingerprint()])
        .ok()
        .stderr_has(&format!("`tgt` is `target.invalid:{}`", s.sshd.port));
    let name = format!("[target.invalid]:{}", s.sshd.port);
    assert!(
        known(&s, &name).contains(&s.sshd.host_key),
        "no line for {name}"
    );
    s.sb.run(&[
        "test",
        "tgt",
        "--user",
        &s.sshd.user,
        "--passphrase-file",
        s.pass_file.to_str().unwrap(),
    ])
    .ok()
    .stderr_has("accepted");
    clone_and_list_through(&s, "tgt");
}

/// `clone` and `test URL` of the served repository through alias `host`'s proxy: the
/// clone's files are there, its `origin` is the URL as given (never the private scheme).
fn clone_and_list_through(s: &Setup, host: &str) {
    let url = format!("{host}:{}", s.bare.display());
    let dest = s.dest("through-proxy");
    let pass = s.pass_file.to_str().unwrap();
    s.sb.run(&[
        "clone",
        &url,
        dest.to_str().unwrap(),
        "--passphrase-file",
        pass,
    ])
    .ok()
    .stderr_has("through `Proxy");
    assert!(dest.join("README.md").is_file());
    let origin = crate::support::git::git(&dest, &["remote", "get-url", "origin"]);
    assert_eq!(origin.stdout.trim(), url);
    s.sb.run(&["test", &url, "--passphrase-file", pass])
        .ok()
        .stderr_has("refs listed");
}

#[test]
fn a_proxy_command_that_exits_at_once_is_a_clear_error_and_nothing_is_trusted() {
    let s = Setup::new("ed25519");
    write_config(
        &s,
        "Host tgt\n  HostName target.invalid\n  ProxyCommand sh -c 'echo bastion is down >&2; exit 3'\n",
    );
    let before = std::fs::read_to_string(s.known_hosts()).unwrap();
    s.sb.run(&["trust", "tgt", "--fingerprint", &s.sshd.fingerprint()])
        .code(10)
        .stderr_has("exited (exit status: 3)")
        .stderr_has("bastion is down");
    assert_eq!(std::fs::read_to_string(s.known_hosts()).unwrap(), before);
    let dest = s.dest("never");
    let url = format!("tgt:{}", s.bare.display());
    s.sb.run(&[
        "clone",
        &url,
        dest.to_str().unwrap(),
        "--passphrase-file",
        s.pass_file.to_str().unwrap(),
    ])
    .code(10)
    .stderr_has("bastion is down");
    crate::clone::only(s.sb.root.path(), &["home", "pass"]);
}

#[test]
fn proxy_jump_goes_through_a_second_sshd() {
    require("ssh", "openssh-client");
    let s = Setup::new("ed25519");
    let jump = Sshd::start();
    // The jump host is logged in to by OpenSSH in batch mode: a key without a passphrase.
    let jump_key = s.sb.ssh_dir().join("jump_key");
    ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        jump_key.to_str().unwrap(),
    ])
    .ok();
    let jump_pub = std::fs::read_to_string(format!("{}.pub", jump_key.display())).unwrap();
    jump.authorize(&jump_pub);
    s.sb.run(&[
        "trust",
        &format!("127.0.0.1:{}", jump.port),
        "--fingerprint",
        &jump.fingerprint(),
    ])
    .ok();
    write_config(
        &s,
        &format!(
            "Host jumpbox\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  IdentitiesOnly yes\n\
             Host tgt\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  ProxyJump jumpbox\n",
            jump.port,
            jump.user,
            jump_key.display(),
            s.sshd.port,
            s.sshd.user
        ),
    );
    s.sb.run(&[
        "test",
        "tgt",
        "--user",
        &s.sshd.user,
        "--passphrase-file",
        s.pass_file.to_str().unwrap(),
    ])
    .ok()
    .stderr_has("accepted");
    let fp = ssh_keygen(&["-lf", &format!("{}.pub", jump_key.display())]).stdout;
    let fp = fp.split_whitespace().nth(1).unwrap().to_owned();
    let log = jump.log();
    assert!(
        log.contains(&format!("Accepted publickey for {}", jump.user)) && log.contains(&fp),
        "the jump host saw no login with the jump key, so the target was not reached through it:\n{log}"
    );
    clone_and_list_through(&s, "tgt");
    let _ = PASS;
}

/// A port in the URL wins over the config's `Port` (as `ssh -p`), and the proxy still carries
/// the connection, with `%p` the URL's port: `Host target.invalid` without a `Port` line.
#[test]
fn a_port_in_the_url_still_goes_through_the_proxy() {
    require("nc", "netcat-openbsd");
    let s = Setup::new("ed25519");
    let log = s.sb.root.path().join("proxy.log");
    write_config(
        &s,
        &format!(
            "Host target.invalid\n  User {}\n  ProxyCommand sh -c 'echo %p >> {}; exec nc 127.0.0.1 %p'\n",
            s.sshd.user,
            log.display()
        ),
    );
    s.sb.run(&[
        "trust",
        &format!("target.invalid:{}", s.sshd.port),
        "--fingerprint",
        &s.sshd.fingerprint(),
    ])
    .ok();
    let url = format!(
        "ssh://{}@target.invalid:{}{}",
        s.sshd.user,
        s.sshd.port,
        s.bare.display()
    );
    let dest = s.dest("port-in-url");
    s.sb.run(&[
        "clone",
        &url,
        dest.to_str().unwrap(),
        "--passphrase-file",
        s.pass_file.to_str().unwrap(),
    ])
    .ok();
    assert!(dest.join("README.md").is_file());
    let used = std::fs::read_to_string(&log).unwrap_or_default();
    let port = s.sshd.port.to_string();
    assert!(
        used.lines().count() >= 2 && used.lines().all(|l| l == port),
        "the proxy ran with the URL's port for trust and clone: {used:?}"
    );
}
