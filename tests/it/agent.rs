//! keyclone's ssh-agent client against a real `ssh-agent`: what it holds, what it adds and
//! removes, as `ssh-add` sees it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use keyclone::env::{Env, SSH_AUTH_SOCK};
use keyclone::ssh::agent::Agent;
use ssh_key::{PrivateKey, PublicKey};

use crate::support::agent::Agent as RealAgent;
use crate::support::{require, ssh_keygen};

/// A new unencrypted ed25519 key at `dir/name`, with its comment.
fn new_key(dir: &Path, name: &str) -> (PathBuf, PrivateKey) {
    let path = dir.join(name);
    let comment = format!("{name}@test");
    ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        &comment,
        "-f",
        path.to_str().unwrap(),
    ])
    .ok();
    let key = PrivateKey::read_openssh_file(&path).unwrap();
    (path, key)
}

fn client(agent: &RealAgent) -> Agent {
    Agent::from_env(&Env::from_pairs([(
        SSH_AUTH_SOCK,
        agent.sock.to_str().unwrap(),
    )]))
    .unwrap()
}

fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(ssh_key::HashAlg::Sha256).to_string()
}

#[test]
fn holds_sees_the_key_ssh_add_added_and_not_another() {
    let dir = tempfile::tempdir().unwrap();
    let (added_path, added) = new_key(dir.path(), "added");
    let (_, other) = new_key(dir.path(), "other");
    let real = RealAgent::start();
    let out = Command::new(require("ssh-add", "openssh-client"))
        .arg(&added_path)
        .env_clear()
        .env("SSH_AUTH_SOCK", &real.sock)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-add: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let agent = client(&real);
    assert!(agent.reachable());
    assert!(agent.holds(added.public_key()));
    assert!(!agent.holds(other.public_key()));
    let ids = agent.identities().unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].comment, "added@test");
}

#[test]
fn add_and_remove_are_what_ssh_add_lists() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key) = new_key(dir.path(), "mine");
    let real = RealAgent::start();
    let agent = client(&real);
    let fp = fingerprint(key.public_key());
    assert!(!real.list().contains(&fp));

    agent.add(&key, None).unwrap();
    assert!(real.list().contains(&fp), "ssh-add -l: {}", real.list());
    assert!(agent.holds(key.public_key()));

    assert!(agent.remove(key.public_key()).unwrap());
    assert!(!real.list().contains(&fp), "ssh-add -l: {}", real.list());
    assert!(!agent.holds(key.public_key()));
    // A key the agent does not hold: no error, nothing removed.
    assert!(!agent.remove(key.public_key()).unwrap());
}

#[test]
fn a_key_added_for_a_lifetime_is_accepted_and_held() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key) = new_key(dir.path(), "brief");
    let real = RealAgent::start();
    let agent = client(&real);
    agent.add(&key, Some(600)).unwrap();
    assert!(agent.holds(key.public_key()));
    assert!(real.list().contains(&fingerprint(key.public_key())));
}

#[test]
fn a_stopped_agent_is_unreachable_and_holds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key) = new_key(dir.path(), "gone");
    let real = RealAgent::start();
    let agent = client(&real);
    agent.add(&key, None).unwrap();
    drop(real);
    assert!(!agent.reachable());
    assert!(!agent.holds(key.public_key()));
    let e = agent.add(&key, None).unwrap_err();
    assert!(e.message().contains("ssh-agent at"), "{e}");
    assert!(
        e.hints()
            .iter()
            .any(|h| h.contains("eval \"$(ssh-agent)\""))
    );
}
