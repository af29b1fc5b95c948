//! `keyclone ssh-config show|write|remove`: the block `init` writes, written by the same code,
//! shown alone, and removed with every other byte of the file kept; OpenSSH still reads the
//! file after each edit.

use std::path::Path;
use std::process::Command;

use crate::init::World;
use crate::support::{Sandbox, require};

const HAND: &str = "Include ~/.ssh/config.d/*\n\
                    # my hosts\n\
                    Host build\n  HostName build.internal\n  User me\n";
const AFTER: &str = "Host *\n  ServerAliveInterval=30\n";

/// `ssh -G -F FILE HOST`: what OpenSSH makes of the file for a host (panics if it cannot
/// parse the file).
fn ssh_g(home: &Path, file: &Path, host: &str) -> String {
    let g = Command::new(require("ssh", "openssh-client"))
        .args(["-G", "-F"])
        .arg(file)
        .arg(host)
        .env_clear()
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(
        g.status.success(),
        "ssh -G: {}",
        String::from_utf8_lossy(&g.stderr)
    );
    String::from_utf8_lossy(&g.stdout).into_owned()
}

fn private_ssh_dir(sb: &Sandbox) {
    std::fs::create_dir_all(sb.ssh_dir()).unwrap();
    std::fs::set_permissions(
        sb.ssh_dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
}

#[test]
fn write_writes_what_init_writes_and_show_prints_the_block() {
    let w = World::new();
    let pass = w.pass_file.to_str().unwrap().to_owned();
    w.sb.run(&["keygen", "--passphrase-file", &pass]).ok();
    let key = w.sb.ssh_dir().join("id_ed25519");
    w.authorize(&key);
    let url = w.port_url();
    w.init(
        &[
            "--passphrase-file",
            &pass,
            "--non-interactive",
            "--repo",
            &url,
            "--yes",
            "--no-clone",
        ],
        None,
    )
    .ok();
    let by_init = std::fs::read_to_string(w.ssh_config()).unwrap();
    assert!(
        by_init.contains("# >>> keyclone managed block"),
        "{by_init}"
    );

    // `show`: the block alone on stdout.
    let shown = w.sb.run(&["ssh-config", "show"]);
    shown.ok();
    assert!(shown.stdout.starts_with("# >>> keyclone managed block"));
    assert_eq!(shown.stdout, by_init, "the file is the block alone");

    // `write` for the same host, user and key: the same bytes.
    std::fs::remove_file(w.ssh_config()).unwrap();
    let target = format!("127.0.0.1:{}", w.sshd.port);
    let write = [
        "ssh-config",
        "write",
        &target,
        "--user",
        &w.sshd.user,
        "--key",
        key.to_str().unwrap(),
        "--yes",
    ];
    w.sb.run(&write).ok().stderr_has("Updated");
    assert_eq!(std::fs::read_to_string(w.ssh_config()).unwrap(), by_init);
    let g = ssh_g(&w.sb.home, &w.ssh_config(), "127.0.0.1");
    assert!(g.contains(&format!("port {}", w.sshd.port)), "{g}");
    assert!(g.contains("identitiesonly yes"), "{g}");

    // Again: nothing to write.
    w.sb.run(&write).ok().stderr_has("nothing to write");
    assert_eq!(std::fs::read_to_string(w.ssh_config()).unwrap(), by_init);
}

#[test]
fn remove_deletes_exactly_the_block_and_keeps_every_other_byte() {
    let sb = Sandbox::new();
    private_ssh_dir(&sb);
    let config = sb.ssh_dir().join("config");
    let key = sb.ssh_dir().join("id_work");
    std::fs::write(&config, format!("{HAND}\n{AFTER}")).unwrap();
    sb.run(&[
        "ssh-config",
        "write",
        "git.example.org:2222",
        "--alias",
        "work",
        "--key",
        key.to_str().unwrap(),
        "--yes",
    ])
    .ok();
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.starts_with(&format!("{HAND}\n{AFTER}")),
        "{written}"
    );
    let g = ssh_g(&sb.home, &config, "work");
    assert!(g.contains("hostname git.example.org"), "{g}");
    assert!(g.contains("port 2222"), "{g}");

    // The block in the middle of the user's lines: taken out, the rest byte for byte.
    let block_start = written.find("# >>> keyclone managed block").unwrap();
    let block = written[block_start..].to_owned();
    let middle = format!("{HAND}{block}{AFTER}");
    std::fs::write(&config, &middle).unwrap();
    let shown = sb.run(&["ssh-config", "show"]);
    shown.ok();
    assert_eq!(shown.stdout, block);

    sb.run(&["ssh-config", "remove"])
        .ok()
        .stderr_has("Removed keyclone's block");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        format!("{HAND}{AFTER}")
    );
    let g = ssh_g(&sb.home, &config, "build");
    assert!(g.contains("hostname build.internal"), "{g}");
    assert!(g.contains("serveraliveinterval 30"), "{g}");
    let g = ssh_g(&sb.home, &config, "work");
    assert!(!g.contains("port 2222"), "the block is gone: {g}");

    // Nothing left to remove: said, and the file is untouched.
    sb.run(&["ssh-config", "remove"])
        .ok()
        .stderr_has("nothing to remove");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        format!("{HAND}{AFTER}")
    );
    sb.run(&["ssh-config", "show"])
        .ok()
        .stderr_has("has no keyclone block");
}

/// `init` names keyclone's own agent as `IdentityAgent`; `ssh-config write` for the same host
/// and key keeps it (plain git would otherwise ask the passphrase again), another key drops it.
#[test]
fn write_keeps_the_identity_agent_init_wrote_for_the_same_key() {
    let w = World::new();
    let pass = w.pass_file.to_str().unwrap().to_owned();
    w.sb.run(&["keygen", "--passphrase-file", &pass]).ok();
    let key = w.sb.ssh_dir().join("id_ed25519");
    let target = format!("127.0.0.1:{}", w.sshd.port);
    let write = |key: &Path| {
        w.sb.run(&[
            "ssh-config",
            "write",
            &target,
            "--user",
            &w.sshd.user,
            "--key",
            key.to_str().unwrap(),
            "--yes",
        ])
    };
    write(&key).ok();
    let sock = w.sb.ssh_dir().join("keyclone-agent/agent.sock");
    let with_agent = std::fs::read_to_string(w.ssh_config()).unwrap().replace(
        "    IdentitiesOnly yes\n",
        &format!(
            "    IdentitiesOnly yes\n    IdentityAgent {}\n",
            sock.display()
        ),
    );
    assert!(with_agent.contains("IdentityAgent"), "{with_agent}");
    std::fs::write(w.ssh_config(), &with_agent).unwrap();
    // Written again for the same host and key: its IdentityAgent kept.
    write(&key).ok();
    let after = std::fs::read_to_string(w.ssh_config()).unwrap();
    assert!(
        after.contains(&format!("IdentityAgent {}", sock.display())),
        "{after}"
    );
    // Another key: the agent socket of the old one is not carried over.
    let other_key = w.sb.ssh_dir().join("id_other");
    w.sb.run(&[
        "keygen",
        "--passphrase-file",
        &pass,
        "--path",
        other_key.to_str().unwrap(),
    ])
    .ok();
    write(&other_key).ok();
    let other = std::fs::read_to_string(w.ssh_config()).unwrap();
    assert!(!other.contains("IdentityAgent"), "{other}");
    assert!(other.contains("id_other"), "{other}");
}
