//! `keyclone keygen`, checked with OpenSSH's own `ssh-keygen` as the oracle.

use std::os::unix::fs::PermissionsExt;

use crate::support::{Sandbox, key_material, mode, openssh_public_of, ssh_keygen};

const PASS: &str = "test pass phrase 1";

#[test]
fn ed25519_key_is_read_by_openssh_with_the_passphrase_and_not_without() {
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", &format!("{PASS}\n"));
    let out = sb.run(&["keygen", "--passphrase-file", pf.to_str().unwrap()]);
    out.ok().never_shows(PASS);
    let key = sb.ssh_dir().join("id_ed25519");
    let public = std::fs::read_to_string(sb.ssh_dir().join("id_ed25519.pub")).unwrap();
    assert!(public.starts_with("ssh-ed25519 AAAA"));

    let derived = openssh_public_of(&key, PASS);
    derived.ok();
    assert_eq!(key_material(&derived.stdout), key_material(&public));

    let wrong = openssh_public_of(&key, "not the passphrase");
    assert_ne!(wrong.code, 0, "ssh-keygen must reject a wrong passphrase");
    let none = openssh_public_of(&key, "");
    assert_ne!(none.code, 0, "the key must be encrypted");
}

#[test]
fn files_and_directory_get_their_final_modes() {
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", PASS);
    sb.run(&["keygen", "--passphrase-file", pf.to_str().unwrap()])
        .ok();
    assert_eq!(mode(&sb.ssh_dir()), 0o700);
    assert_eq!(mode(&sb.ssh_dir().join("id_ed25519")), 0o600);
    assert_eq!(mode(&sb.ssh_dir().join("id_ed25519.pub")), 0o644);
    assert_eq!(
        Sandbox::ls(&sb.ssh_dir()),
        ["id_ed25519", "id_ed25519.pub"],
        "no temporary file left"
    );
}

#[test]
fn modes_do_not_depend_on_the_umask() {
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", PASS);
    let mut cmd = sb.cmd();
    cmd.args(["keygen", "--passphrase-file", pf.to_str().unwrap()]);
    let out = sb.run_cmd(with_umask(cmd, 0o077));
    out.ok();
    assert_eq!(mode(&sb.ssh_dir().join("id_ed25519.pub")), 0o644);
}

fn with_umask(mut cmd: std::process::Command, mask: u32) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    #[allow(unsafe_code)]
    // SAFETY: umask is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
            Ok(())
        });
    }
    cmd
}

#[test]
fn fingerprint_on_stdout_equals_ssh_keygen_l() {
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", PASS);
    let out = sb.run(&[
        "keygen",
        "--passphrase-file",
        pf.to_str().unwrap(),
        "--comment",
        "me@my-box",
    ]);
    out.ok();
    let oracle = ssh_keygen(&["-lf", sb.ssh_dir().join("id_ed25519.pub").to_str().unwrap()]);
    oracle.ok();
    assert_eq!(out.stdout, oracle.stdout);
    assert!(out.stdout.ends_with(" me@my-box (ED25519)\n"));
    // The private file's fingerprint is the same (ssh-keygen reads the public half).
    let oracle_priv = ssh_keygen(&["-lf", sb.ssh_dir().join("id_ed25519").to_str().unwrap()]);
    assert_eq!(key_material(&oracle_priv.stdout), key_material(&out.stdout));
    out.stderr_has("private key").stderr_has("keyclone pubkey");
}

#[test]
fn default_comment_is_user_at_host() {
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", PASS);
    sb.run(&["keygen", "--passphrase-file", pf.to_str().unwrap()])
        .ok();
    let public = std::fs::read_to_string(sb.ssh_dir().join("id_ed25519.pub")).unwrap();
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(
        public.split_whitespace().nth(2).unwrap(),
        format!("tester@{host}")
    );
}

#[test]
fn rsa_key_is_4096_bits_and_openssh_reads_it() {
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", PASS);
    let out = sb.run(&[
        "keygen",
        "--type",
        "rsa",
        "--passphrase-file",
        pf.to_str().unwrap(),
    ]);
    out.ok();
    let key = sb.ssh_dir().join("id_rsa");
    let oracle = ssh_keygen(&["-lf", sb.ssh_dir().join("id_rsa.pub").to_str().unwrap()]);
    assert_eq!(out.stdout, oracle.stdout);
    assert!(out.stdout.starts_with("4096 SHA256:") && out.stdout.ends_with("(RSA)\n"));
    let derived = openssh_public_of(&key, PASS);
    derived.ok();
    let public = std::fs::read_to_string(sb.ssh_dir().join("id_rsa.pub")).unwrap();
    assert_eq!(key_material(&derived.stdout), key_material(&public));
    assert_ne!(openssh_public_of(&key, "wrong").code, 0);
}

#[test]
fn azure_devops_gets_rsa_automatically_and_says_why() {
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", PASS);
    let out = sb.run(&[
        "keygen",
        "--provider",
        "azure-devops",
        "--passphrase-file",
        pf.to_str().unwrap(),
    ]);
    out.ok()
        .stderr_has("accepts only RSA")
        .stderr_has("keyclone pubkey --provider azure-devops");
    assert!(sb.ssh_dir().join("id_rsa").exists());
    assert!(!sb.ssh_dir().join("id_ed25519").exists());

    let sb = Sandbox::new();
    let out = sb.run(&[
        "keygen",
        "--repo",
        "git@ssh.dev.azure.com:v3/fabrikam/Proj/Repo",
        "--passphrase-file",
        pf.to_str().unwrap(),
    ]);
    out.ok();
    assert!(out.stdout.starts_with("4096 "));
}

#[test]
fn ed25519_for_azure_devops_is_refused_with_the_fix() {
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", PASS);
    let out = sb.run(&[
        "keygen",
        "--provider",
        "azure",
        "--type",
        "ed25519",
        "--passphrase-file",
        pf.to_str().unwrap(),
    ]);
    out.code(5)
        .stderr_has("accepts only RSA")
        .stderr_has("--type rsa");
    assert!(!sb.ssh_dir().exists());
}

#[test]
fn passphrase_from_stdin_and_from_the_environment() {
    let sb = Sandbox::new();
    let out = sb.run_with_stdin(
        &["keygen", "--passphrase-stdin"],
        format!("{PASS}\n").as_bytes(),
    );
    out.ok().never_shows(PASS);
    openssh_public_of(&sb.ssh_dir().join("id_ed25519"), PASS).ok();

    let sb = Sandbox::new();
    let mut cmd = sb.cmd();
    cmd.args(["keygen"])
        .env("KEYCLONE_PASSPHRASE", "env pass 2");
    sb.run_cmd(cmd).ok().never_shows("env pass 2");
    openssh_public_of(&sb.ssh_dir().join("id_ed25519"), "env pass 2").ok();
}

#[test]
fn no_passphrase_is_explicit_and_warns() {
    let sb = Sandbox::new();
    let out = sb.run(&["keygen", "--no-passphrase"]);
    out.ok().stderr_has("WITHOUT a passphrase");
    openssh_public_of(&sb.ssh_dir().join("id_ed25519"), "").ok();
}

#[test]
fn empty_passphrase_without_opt_out_is_refused_and_writes_nothing() {
    let sb = Sandbox::new();
    let out = sb.run_with_stdin(&["keygen", "--passphrase-stdin"], b"\n");
    out.code(2)
        .stderr_has("empty")
        .stderr_has("--no-passphrase");
    assert!(!sb.ssh_dir().exists());

    let mut cmd = sb.cmd();
    cmd.args(["keygen"]).env("KEYCLONE_PASSPHRASE", "");
    sb.run_cmd(cmd).code(2).stderr_has("empty");
    assert!(!sb.ssh_dir().exists());
}

#[test]
fn non_interactive_without_a_passphrase_source_names_the_flags() {
    let sb = Sandbox::new();
    let out = sb.run(&["keygen", "--non-interactive"]);
    out.code(4)
        .stderr_has("--passphrase-file")
        .stderr_has("--passphrase-stdin")
        .stderr_has("KEYCLONE_PASSPHRASE")
        .stderr_has("--no-passphrase");
    assert!(!sb.ssh_dir().exists());
}

#[test]
fn existing_key_is_never_overwritten() {
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", PASS);
    sb.run(&["keygen", "--passphrase-file", pf.to_str().unwrap()])
        .ok();
    let before = std::fs::read(sb.ssh_dir().join("id_ed25519")).unwrap();
    let before_pub = std::fs::read(sb.ssh_dir().join("id_ed25519.pub")).unwrap();
    let out = sb.run(&["keygen", "--passphrase-file", pf.to_str().unwrap()]);
    out.code(5)
        .stderr_has("never overwrites")
        .stderr_has("--force")
        .stderr_has("keyclone pubkey --key");
    assert_eq!(
        std::fs::read(sb.ssh_dir().join("id_ed25519")).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read(sb.ssh_dir().join("id_ed25519.pub")).unwrap(),
        before_pub
    );

    // A lone .pub counts as a key too.
    let sb2 = Sandbox::new();
    std::fs::create_dir(sb2.ssh_dir()).unwrap();
    std::fs::set_permissions(sb2.ssh_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(sb2.ssh_dir().join("id_ed25519.pub"), "ssh-ed25519 AAAA x\n").unwrap();
    sb2.run(&["keygen", "--passphrase-file", pf.to_str().unwrap()])
        .code(5);
    assert!(!sb2.ssh_dir().join("id_ed25519").exists());
}

#[test]
fn force_moves_the_old_pair_to_a_timestamped_backup() {
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", PASS);
    sb.run(&["keygen", "--passphrase-file", pf.to_str().unwrap()])
        .ok();
    let old = std::fs::read(sb.ssh_dir().join("id_ed25519")).unwrap();
    let old_pub = std::fs::read_to_string(sb.ssh_dir().join("id_ed25519.pub")).unwrap();
    let out = sb.run(&[
        "keygen",
        "--force",
        "--passphrase-file",
        pf.to_str().unwrap(),
    ]);
    out.ok().stderr_has(".bak-");
    let names = Sandbox::ls(&sb.ssh_dir());
    assert_eq!(names.len(), 4, "{names:?}");
    let bak = names
        .iter()
        .find(|n| n.starts_with("id_ed25519.bak-"))
        .unwrap();
    let bak_pub = names
        .iter()
        .find(|n| n.starts_with("id_ed25519.pub.bak-"))
        .unwrap();
    assert_eq!(std::fs::read(sb.ssh_dir().join(bak)).unwrap(), old);
    assert_eq!(
        std::fs::read_to_string(sb.ssh_dir().join(bak_pub)).unwrap(),
        old_pub
    );
    assert_eq!(mode(&sb.ssh_dir().join(bak)), 0o600);
    let new_pub = std::fs::read_to_string(sb.ssh_dir().join("id_ed25519.pub")).unwrap();
    assert_ne!(key_material(&new_pub), key_material(&old_pub));
}

#[test]
fn unknown_provider_is_an_error_listing_the_known_ones() {
    let sb = Sandbox::new();
    let out = sb.run(&["keygen", "--provider", "sourceforge", "--no-passphrase"]);
    out.code(2)
        .stderr_has("unknown provider `sourceforge`")
        .stderr_has("github, gitlab, bitbucket, azure-devops, codeberg");
    assert!(!sb.ssh_dir().exists());
}

#[test]
fn group_writable_ssh_dir_is_refused() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.ssh_dir()).unwrap();
    std::fs::set_permissions(sb.ssh_dir(), std::fs::Permissions::from_mode(0o770)).unwrap();
    let out = sb.run(&["keygen", "--no-passphrase"]);
    out.code(5)
        .stderr_has("group can write")
        .stderr_has("chmod 700");
    assert!(Sandbox::ls(&sb.ssh_dir()).is_empty());
}

#[test]
fn unwritable_ssh_dir_is_an_error_and_leaves_nothing() {
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    std::fs::create_dir(sb.ssh_dir()).unwrap();
    std::fs::set_permissions(sb.ssh_dir(), std::fs::Permissions::from_mode(0o500)).unwrap();
    let mut cmd = sb.cmd();
    cmd.args(["keygen", "--no-passphrase"]);
    if nix::unistd::Uid::effective().is_root() {
        // Root ignores permission bits: run keyclone as an unprivileged user who owns HOME.
        let nobody = nix::unistd::User::from_name("nobody")
            .unwrap()
            .expect("user `nobody` exists");
        for p in [&sb.home, &sb.ssh_dir()] {
            std::os::unix::fs::chown(p, Some(nobody.uid.as_raw()), Some(nobody.gid.as_raw()))
                .unwrap();
        }
        cmd.uid(nobody.uid.as_raw()).gid(nobody.gid.as_raw());
    }
    let out = sb.run_cmd(cmd);
    out.code(7)
        .stderr_has("permission denied")
        .stderr_has(&sb.ssh_dir().display().to_string());
    assert!(Sandbox::ls(&sb.ssh_dir()).is_empty());
}

#[test]
fn symlinked_key_path_is_refused_and_its_target_untouched() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.ssh_dir()).unwrap();
    std::fs::set_permissions(sb.ssh_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let target = sb.root.path().join("elsewhere");
    std::fs::write(&target, "precious").unwrap();
    std::os::unix::fs::symlink(&target, sb.ssh_dir().join("id_ed25519")).unwrap();
    let out = sb.run(&["keygen", "--no-passphrase", "--force"]);
    out.code(5).stderr_has("symbolic link");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");

    // A dangling link is refused too (writing through it would create a file elsewhere).
    std::fs::remove_file(sb.ssh_dir().join("id_ed25519")).unwrap();
    std::os::unix::fs::symlink(
        sb.root.path().join("missing"),
        sb.ssh_dir().join("id_ed25519.pub"),
    )
    .unwrap();
    sb.run(&["keygen", "--no-passphrase"])
        .code(5)
        .stderr_has("symbolic link");
    assert!(!sb.root.path().join("missing").exists());
}

#[test]
fn passphrase_file_missing_is_an_error_and_world_readable_warns() {
    let sb = Sandbox::new();
    let out = sb.run(&["keygen", "--passphrase-file", "/nonexistent/pass"]);
    out.code(6)
        .stderr_has("/nonexistent/pass")
        .stderr_has("--passphrase-file");
    assert!(!sb.ssh_dir().exists());

    let pf = sb.secret_file("pass", PASS);
    std::fs::set_permissions(&pf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = sb.run(&["keygen", "--passphrase-file", pf.to_str().unwrap()]);
    out.ok()
        .stderr_has("warning:")
        .stderr_has("chmod 600")
        .never_shows(PASS);
}

#[test]
fn write_failure_leaves_no_partial_key_file() {
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", PASS);
    let mut cmd = sb.cmd();
    cmd.args(["keygen", "--passphrase-file", pf.to_str().unwrap()]);
    #[allow(unsafe_code)]
    // SAFETY: setrlimit is async-signal-safe. A 64-byte file size limit makes every key write
    // fail the way a full disk does (EFBIG), without needing a real full file system.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_FSIZE, 64, 64)
                .map_err(std::io::Error::from)
        });
    }
    let out = sb.run_cmd(cmd);
    out.code(7)
        .stderr_has("no space left")
        .stderr_has("nothing was written")
        .never_shows(PASS);
    assert!(
        Sandbox::ls(&sb.ssh_dir()).is_empty(),
        "left: {:?}",
        Sandbox::ls(&sb.ssh_dir())
    );
}

#[test]
fn json_output_describes_the_key() {
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", PASS);
    let out = sb.run(&[
        "--json",
        "keygen",
        "--passphrase-file",
        pf.to_str().unwrap(),
    ]);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let oracle = ssh_keygen(&["-lf", sb.ssh_dir().join("id_ed25519.pub").to_str().unwrap()]);
    assert_eq!(
        v["fingerprint_line"].as_str().unwrap(),
        oracle.stdout.trim_end()
    );
    assert_eq!(
        v["fingerprint"].as_str().unwrap(),
        oracle.stdout.split_whitespace().nth(1).unwrap()
    );
    assert_eq!(v["type"], "ed25519");
    assert_eq!(v["algorithm"], "ssh-ed25519");
    assert_eq!(v["bits"], 256);
    assert_eq!(v["encrypted"], true);
    assert_eq!(v["kdf_rounds"], 24);
    assert_eq!(
        v["path"].as_str().unwrap(),
        sb.ssh_dir().join("id_ed25519").to_str().unwrap()
    );

    let err = sb.run(&[
        "--json",
        "keygen",
        "--passphrase-file",
        pf.to_str().unwrap(),
    ]);
    err.code(5);
    let v: serde_json::Value = serde_json::from_str(&err.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "refused");
}

#[test]
fn custom_path_and_pub_suffix_refusal() {
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", PASS);
    let out = sb.run(&[
        "keygen",
        "--path",
        ".ssh/id_work",
        "--passphrase-file",
        pf.to_str().unwrap(),
    ]);
    out.ok().stderr_has("keyclone pubkey --key");
    assert!(sb.ssh_dir().join("id_work").exists() && sb.ssh_dir().join("id_work.pub").exists());
    sb.run(&["keygen", "--path", ".ssh/x.pub", "--no-passphrase"])
        .code(2)
        .stderr_has("ends in `.pub`");
}

#[test]
fn passphrase_never_on_the_command_line() {
    let sb = Sandbox::new();
    let out = sb.run(&["keygen", "--passphrase", "x"]);
    out.code(2).stderr_has("unexpected argument '--passphrase'");
    assert!(!sb.ssh_dir().exists());
    // No flag of any command takes the passphrase itself.
    for cmd in ["keygen", "init", "clone", "rotate", "pubkey", "test"] {
        let help = sb.run(&[cmd, "--help"]);
        help.ok();
        for line in help.stdout.lines() {
            let flag = line.trim_start();
            assert!(
                !(flag.starts_with("--passphrase ") || flag.starts_with("--passphrase=")),
                "`{cmd}` takes a passphrase on the command line: {line}"
            );
        }
    }
}
