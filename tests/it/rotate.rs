//! `keyclone rotate` against the real sshd: the switch happens only once the new key works,
//! a kill -9 at any step leaves a working key and a re-run completes; the real `ssh`,
//! `ssh-keygen` and `ssh-agent` are the oracles.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::init::{Agent, PASS, World};
use crate::support::{Out, Sandbox, ssh_keygen};

/// `SHA256:...` of a public key, as `ssh-keygen -l` prints it; a failure fails the test (an
/// empty fingerprint would be "contained" in any listing).
fn fingerprint_of(public: &Path) -> String {
    let out = ssh_keygen(&["-lf", public.to_str().unwrap()]);
    out.ok();
    let fp = out.stdout.split_whitespace().nth(1).unwrap_or_default();
    assert!(
        fp.starts_with("SHA256:") && fp.len() > 20,
        "ssh-keygen -lf gave no fingerprint: {}",
        out.stdout
    );
    fp.to_owned()
}

/// A world whose key is authorized, with keyclone's config block and the key in ssh-agent.
fn set_up() -> (World, Agent, PathBuf) {
    let w = World::new();
    let agent = Agent::start();
    w.sb.run(&["keygen", "--passphrase-file", w.pass_file.to_str().unwrap()])
        .ok();
    let key = w.sb.ssh_dir().join("id_ed25519");
    w.authorize(&key);
    let url = w.port_url();
    w.init(
        &[
            "--non-interactive",
            "--repo",
            &url,
            "--passphrase-file",
            w.pass_file.to_str().unwrap(),
            "--cache",
            "agent",
            "--yes",
            "--no-clone",
        ],
        Some(&agent),
    )
    .ok();
    (w, agent, key)
}

fn rotate(w: &World, agent: &Agent, extra: &[&str], kill_at: Option<&str>) -> Out {
    let mut cmd = w.sb.cmd();
    cmd.args(["rotate", "--non-interactive", "--test-url", &w.port_url()])
        .args(["--passphrase-file", w.pass_file.to_str().unwrap()])
        .args(extra)
        .env("SSH_AUTH_SOCK", &agent.sock);
    if let Some(step) = kill_at {
        cmd.env("KEYCLONE_TEST_KILL_AT", step);
    }
    w.sb.run_cmd(cmd)
}

fn staging(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.rotating", key.display()))
}

/// The key at `key` logs in with the real ssh client, and keyclone's block names a key file
/// that exists.
fn some_key_works(w: &World, key: &Path) {
    w.sshd.ssh_login(key, Some(PASS)).ok();
    let cfg = std::fs::read_to_string(w.ssh_config()).unwrap();
    let ident = cfg
        .lines()
        .find_map(|l| l.trim().strip_prefix("IdentityFile "))
        .unwrap();
    assert!(
        Path::new(ident).is_file(),
        "the config names a missing key: {ident}"
    );
}

#[test]
fn rotation_switches_only_after_the_new_key_works_then_moves_every_reference() {
    let (w, agent, key) = set_up();
    let old_fp = fingerprint_of(&key.with_extension("pub"));
    assert!(agent.list().contains(&old_fp));

    // Only the old key is authorized: the new one is created, shown, and nothing is switched.
    let first = rotate(&w, &agent, &[], None);
    first
        .code(8)
        .stderr_has("nothing was switched")
        .stderr_has("run `keyclone rotate` again")
        .never_shows(PASS);
    assert_eq!(fingerprint_of(&key.with_extension("pub")), old_fp);
    let new_pub = PathBuf::from(format!("{}.pub", staging(&key).display()));
    let new_fp = fingerprint_of(&new_pub);
    assert_ne!(new_fp, old_fp);
    assert!(
        first.stdout.contains("ssh-ed25519 "),
        "the new public key is printed"
    );

    // Once it is authorized, the rotation completes.
    w.authorize(&staging(&key));
    let done = rotate(&w, &agent, &[], None);
    done.ok()
        .stderr_has("Continuing the rotation")
        .stderr_has("remove the OLD key")
        .stderr_has(&old_fp)
        .never_shows(PASS);
    assert_eq!(fingerprint_of(&key.with_extension("pub")), new_fp);
    assert!(!staging(&key).exists() && !new_pub.exists());
    let archive = w.sb.ssh_dir().join("keyclone-archive");
    assert_eq!(crate::support::mode(&archive), 0o700);
    let archived: Vec<String> = Sandbox::ls(&archive);
    assert_eq!(archived.len(), 2, "{archived:?}");
    let old_copy = archive.join(archived.iter().find(|n| !n.ends_with(".pub")).unwrap());
    assert_eq!(
        fingerprint_of(&PathBuf::from(format!("{}.pub", old_copy.display()))),
        old_fp
    );
    assert_eq!(crate::support::mode(&old_copy), 0o600);
    // ssh-agent holds the new key, not the old one.
    let held = agent.list();
    assert!(held.contains(&new_fp) && !held.contains(&old_fp), "{held}");
    // The new key logs in with the real ssh; keyclone and plain git clone with it.
    some_key_works(&w, &key);
    let dest = w.sb.root.path().join("after");
    let mut cmd = w.sb.cmd();
    cmd.args(["clone", &w.port_url(), dest.to_str().unwrap()])
        .args(["--passphrase-file", w.pass_file.to_str().unwrap()]);
    w.sb.run_cmd(cmd).ok();
    let scp = format!("{}@127.0.0.1:{}", w.sshd.user, w.bare.display());
    w.git_clone_plain(&scp, &w.sb.root.path().join("plain"), Some(&agent))
        .ok();
    assert!(
        !w.sb
            .ssh_dir()
            .join(".keyclone-rotate-id_ed25519.json")
            .exists()
    );
}

#[test]
fn a_kill_at_any_step_leaves_a_working_key_and_a_rerun_completes() {
    for step in [
        "generated",
        "verified",
        "archived",
        "switched-private",
        "switched",
        "references",
    ] {
        let (w, agent, key) = set_up();
        if step == "generated" {
            let killed = rotate(&w, &agent, &[], Some(step));
            assert_eq!(killed.code, -1, "{step}: not killed:\n{}", killed.stderr);
        } else {
            rotate(&w, &agent, &[], None).code(8);
        }
        w.authorize(&staging(&key));
        let new_fp = fingerprint_of(&PathBuf::from(format!("{}.pub", staging(&key).display())));
        if step != "generated" {
            let killed = rotate(&w, &agent, &[], Some(step));
            assert_eq!(killed.code, -1, "{step}: not killed:\n{}", killed.stderr);
        }
        some_key_works(&w, &key);
        rotate(&w, &agent, &[], None).ok();
        assert_eq!(fingerprint_of(&key.with_extension("pub")), new_fp, "{step}");
        some_key_works(&w, &key);
        assert!(agent.list().contains(&new_fp), "{step}: {}", agent.list());
    }
}

#[test]
fn passphrase_only_reencrypts_the_same_key() {
    let sb = Sandbox::new();
    let old = sb.secret_file("old", "0ld secret value");
    let new = sb.secret_file("new", "N3w secret value");
    sb.run(&["keygen", "--passphrase-file", old.to_str().unwrap()])
        .ok();
    let key = sb.ssh_dir().join("id_ed25519");
    let fp = fingerprint_of(&key.with_extension("pub"));
    sb.run(&[
        "rotate",
        "--passphrase-only",
        "--old-passphrase-file",
        old.to_str().unwrap(),
        "--passphrase-file",
        new.to_str().unwrap(),
    ])
    .ok()
    .stderr_has("re-encrypted")
    .never_shows("N3w secret value");
    let k = key.to_str().unwrap();
    ssh_keygen(&["-y", "-P", "N3w secret value", "-f", k]).ok();
    assert_ne!(
        ssh_keygen(&["-y", "-P", "0ld secret value", "-f", k]).code,
        0
    );
    assert_eq!(fingerprint_of(&key.with_extension("pub")), fp);
    assert_eq!(crate::support::mode(&key), 0o600);
    // A wrong old passphrase changes nothing.
    let before = std::fs::read(&key).unwrap();
    sb.run(&[
        "rotate",
        "--passphrase-only",
        "--old-passphrase-file",
        old.to_str().unwrap(),
        "--passphrase-file",
        new.to_str().unwrap(),
    ])
    .code(8);
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn bad_inputs_stop_before_anything_is_switched() {
    // No key at all.
    let sb = Sandbox::new();
    sb.run(&[
        "rotate",
        "--non-interactive",
        "--test-url",
        "git@github.com:o/r.git",
    ])
    .code(6)
    .stderr_has("no key to rotate");

    // An archive folder others can write: refused before a key is created.
    let (w, agent, key) = set_up();
    let archive = w.sb.ssh_dir().join("keyclone-archive");
    std::fs::create_dir(&archive).unwrap();
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o777)).unwrap();
    rotate(&w, &agent, &[], None)
        .code(5)
        .stderr_has("chmod 700");
    assert!(!staging(&key).exists());
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o700)).unwrap();

    // The host unreachable at verification: stop, keep the state, resume later.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down = format!(
        "ssh://{}@127.0.0.1:{closed}{}",
        w.sshd.user,
        w.bare.display()
    );
    let mut cmd = w.sb.cmd();
    cmd.args(["rotate", "--non-interactive", "--test-url", &down])
        .args(["--passphrase-file", w.pass_file.to_str().unwrap()]);
    w.sb.run_cmd(cmd).code(10).stderr_has("continues from here");
    assert!(staging(&key).exists());
    some_key_works(&w, &key);
    w.authorize(&staging(&key));
    rotate(&w, &agent, &[], None).ok();

    // A key keyclone does not manage (no block entry): rotatable by path with --test-url.
    let custom = w.sb.ssh_dir().join("id_custom");
    w.sb.run(&[
        "keygen",
        "--path",
        custom.to_str().unwrap(),
        "--passphrase-file",
        w.pass_file.to_str().unwrap(),
    ])
    .ok();
    w.authorize(&custom);
    let c = custom.to_str().unwrap();
    rotate(&w, &agent, &["--key", c], None).code(8);
    w.authorize(&staging(&custom));
    let old_fp = fingerprint_of(&custom.with_extension("pub"));
    let out = rotate(&w, &agent, &["--key", c, "--delete-old", "--json"], None);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["key"], c);
    assert_eq!(v["old_fingerprint"], old_fp.as_str());
    assert_eq!(
        v["new_fingerprint"],
        fingerprint_of(&custom.with_extension("pub")).as_str()
    );
    assert!(v["archived"].is_null(), "--delete-old keeps no copy: {v}");
    w.sshd.ssh_login(&custom, Some(PASS)).ok();
}

#[test]
fn interactive_rotation_waits_for_the_upload_and_asks_before_switching() {
    use keyclone::ui::prompt::Answer;
    let (w, _agent, key) = set_up();
    let new_key = staging(&key);
    let authorize = w.sshd_authorize_handle();
    let url = w.port_url();
    let r = crate::init::scripted::run(
        &w,
        &["rotate", "--test-url", &url],
        vec![
            Answer::Password("a new passphrase".into()),
            Answer::Password("a new passphrase".into()),
            Answer::Text(String::new()), // Enter: not added yet
            Answer::Text(String::new()), // Enter: added now
            Answer::Confirm(true),       // switch
        ],
        Box::new(move |n| {
            if n == 2 {
                authorize(&new_key);
            }
        }),
    );
    assert!(r.result.is_ok(), "{:?}\n{}", r.result.err(), r.stderr);
    assert!(
        r.stderr.contains("does not accept the new key yet"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.asked.last().unwrap(),
        &format!("Switch `{}` to the new key now?", key.display())
    );
    ssh_keygen(&["-y", "-P", "a new passphrase", "-f", key.to_str().unwrap()]).ok();
    assert!(r.stderr.contains("remove the OLD key"));
}

#[test]
fn an_archive_that_is_a_link_or_readable_by_others_is_refused_before_anything_is_created() {
    let (w, agent, key) = set_up();
    let ssh = w.sb.ssh_dir();
    let archive = ssh.join("keyclone-archive");
    let private = std::fs::read(&key).unwrap();

    // A link to a folder outside ~/.ssh: the old private key would leave ~/.ssh.
    let elsewhere = w.sb.root.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &archive).unwrap();
    let before = Sandbox::ls(&ssh);
    rotate(&w, &agent, &["--yes"], None)
        .code(5)
        .stderr_has("symbolic link")
        .stderr_has(&format!("rm {}", archive.display()));
    assert_eq!(Sandbox::ls(&ssh), before, "nothing was created");
    assert!(Sandbox::ls(&elsewhere).is_empty());
    std::fs::remove_file(&archive).unwrap();

    // A real folder others can read (755): an archived private key must be yours only.
    std::fs::create_dir(&archive).unwrap();
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = Sandbox::ls(&ssh);
    rotate(&w, &agent, &["--yes"], None)
        .code(5)
        .stderr_has("mode 755")
        .stderr_has(&format!("chmod 700 {}", archive.display()));
    assert_eq!(Sandbox::ls(&ssh), before, "nothing was created");
    assert_eq!(std::fs::read(&key).unwrap(), private);

    // Fixed as told: the rotation runs and the archive is what the output says.
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o700)).unwrap();
    rotate(&w, &agent, &[], None).code(8); // the new key is not authorized yet
    w.authorize(&staging(&key));
    rotate(&w, &agent, &["--yes"], None)
        .ok()
        .stderr_has("folder 700");
    assert_eq!(crate::support::mode(&archive), 0o700);
}
