//! `keyclone pubkey`: the key line on stdout, the provider's steps on stderr.

use crate::support::{Sandbox, key_material, ssh_keygen};

fn with_key(sb: &Sandbox, extra: &[&str]) {
    let mut args = vec!["keygen", "--no-passphrase"];
    args.extend_from_slice(extra);
    sb.run(&args).ok();
}

#[test]
fn stdout_is_exactly_the_public_key_line() {
    let sb = Sandbox::new();
    with_key(&sb, &["--comment", "me@box"]);
    let out = sb.run(&["pubkey", "--provider", "github"]);
    out.ok();
    let file = std::fs::read_to_string(sb.ssh_dir().join("id_ed25519.pub")).unwrap();
    assert_eq!(out.stdout, file);
    out.stderr_has("https://github.com/settings/ssh/new")
        .stderr_has("Title: me@box (")
        .stderr_has("GitHub accepts these key types: ed25519");
    assert!(!out.stdout.contains("http"), "steps must not go to stdout");
}

#[test]
fn every_builtin_provider_shows_its_upload_page() {
    let sb = Sandbox::new();
    with_key(&sb, &["--type", "rsa"]);
    for (provider, url) in [
        ("github", "https://github.com/settings/ssh/new"),
        ("gitlab", "https://gitlab.com/-/user_settings/ssh_keys"),
        (
            "bitbucket",
            "https://bitbucket.org/account/settings/ssh-keys/",
        ),
        ("codeberg", "https://codeberg.org/user/settings/keys"),
        (
            "azure-devops",
            "https://dev.azure.com/fabrikam/_usersSettings/keys",
        ),
    ] {
        let out = sb.run(&["pubkey", "--provider", provider, "--org", "fabrikam"]);
        out.ok().stderr_has(url);
        assert!(
            !out.stderr.contains("{{"),
            "{provider}: placeholder left:\n{}",
            out.stderr
        );
    }
}

#[test]
fn ed25519_key_for_azure_devops_is_refused_with_the_fix() {
    let sb = Sandbox::new();
    with_key(&sb, &[]);
    let out = sb.run(&[
        "pubkey",
        "--repo",
        "git@ssh.dev.azure.com:v3/fabrikam/Proj/Repo",
    ]);
    out.code(5)
        .stderr_has("accepts only rsa")
        .stderr_has("keyclone keygen --provider azure-devops");
    assert!(out.stdout.is_empty());

    let out = sb.run(&[
        "pubkey",
        "--key",
        sb.ssh_dir().join("id_ed25519").to_str().unwrap(),
        "--provider",
        "azure",
    ]);
    out.code(5)
        .stderr_has("does not accept ssh-ed25519")
        .stderr_has("keyclone keygen --provider azure-devops");
}

#[test]
fn azure_devops_organization_comes_from_the_url() {
    let sb = Sandbox::new();
    with_key(&sb, &["--type", "rsa"]);
    let out = sb.run(&[
        "pubkey",
        "--repo",
        "https://dev.azure.com/fabrikam/My%20Proj/_git/Repo",
    ]);
    out.ok()
        .stderr_has("https://dev.azure.com/fabrikam/_usersSettings/keys")
        .stderr_has("organization `fabrikam`")
        .stderr_has("accepts only RSA");
    assert!(out.stdout.starts_with("ssh-rsa "));

    // Without the organization: the steps say how to find the page, and how to get the link.
    let out = sb.run(&["pubkey", "--provider", "azure-devops"]);
    out.ok().stderr_has("User settings").stderr_has("--org ORG");
}

#[test]
fn default_key_prefers_one_the_provider_accepts() {
    let sb = Sandbox::new();
    with_key(&sb, &[]);
    with_key(&sb, &["--type", "rsa"]);
    let gh = sb.run(&["pubkey", "--provider", "github"]);
    assert!(gh.ok().stdout.starts_with("ssh-ed25519 "));
    let az = sb.run(&["pubkey", "--provider", "azure-devops"]);
    assert!(az.ok().stdout.starts_with("ssh-rsa "));
}

#[test]
fn no_key_is_an_error_pointing_at_keygen() {
    let sb = Sandbox::new();
    sb.run(&["pubkey", "--provider", "gitlab"])
        .code(6)
        .stderr_has("keyclone keygen --provider gitlab");
    sb.run(&["pubkey", "--key", "/nonexistent/id"])
        .code(6)
        .stderr_has("keyclone keygen");
}

#[test]
fn mismatched_pub_file_is_refused() {
    let sb = Sandbox::new();
    with_key(&sb, &[]);
    with_key(&sb, &["--path", ".ssh/other"]);
    std::fs::copy(
        sb.ssh_dir().join("other.pub"),
        sb.ssh_dir().join("id_ed25519.pub"),
    )
    .unwrap();
    sb.run(&["pubkey"])
        .code(5)
        .stderr_has("does not belong")
        .stderr_has("ssh-keygen -y -f");
}

#[test]
fn missing_pub_file_is_read_from_the_private_key_with_a_warning() {
    let sb = Sandbox::new();
    let pf = sb.secret_file("pass", "pubkey pass");
    sb.run(&["keygen", "--passphrase-file", pf.to_str().unwrap()])
        .ok();
    let original = std::fs::read_to_string(sb.ssh_dir().join("id_ed25519.pub")).unwrap();
    std::fs::remove_file(sb.ssh_dir().join("id_ed25519.pub")).unwrap();
    let out = sb.run(&["pubkey"]);
    out.ok().stderr_has("is missing");
    assert_eq!(key_material(&out.stdout), key_material(&original));
}

#[test]
fn self_hosted_provider_from_the_config_file() {
    let sb = Sandbox::new();
    with_key(&sb, &[]);
    let cfg = sb.home.join(".config/keyclone");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        "[provider.corp]\nkind = \"gitlab\"\nname = \"Corp GitLab\"\nhost = \"git.corp.example\"\nport = 2222\n",
    )
    .unwrap();
    let out = sb.run(&["pubkey", "--provider", "corp"]);
    out.ok()
        .stderr_has("Corp GitLab")
        .stderr_has("https://git.corp.example/-/user_settings/ssh_keys");
    let out = sb.run(&[
        "pubkey",
        "--repo",
        "ssh://git@git.corp.example:2222/team/app.git",
    ]);
    out.ok().stderr_has("Corp GitLab");
}

#[test]
fn invalid_config_file_is_a_clear_error() {
    let sb = Sandbox::new();
    with_key(&sb, &[]);
    let cfg = sb.root.path().join("bad.toml");
    std::fs::write(&cfg, "[provider.corp]\nkind = \"gitlab\"\nhots = \"x\"\n").unwrap();
    sb.run(&["--config", cfg.to_str().unwrap(), "pubkey"])
        .code(3)
        .stderr_has("hots")
        .stderr_has(cfg.to_str().unwrap());
    sb.run(&["--config", "/nonexistent.toml", "pubkey"])
        .code(6)
        .stderr_has("--config");
}

#[test]
fn json_output_has_key_and_provider() {
    let sb = Sandbox::new();
    with_key(&sb, &[]);
    let out = sb.run(&["--json", "pubkey", "--provider", "gitlab"]);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let file = std::fs::read_to_string(sb.ssh_dir().join("id_ed25519.pub")).unwrap();
    assert_eq!(v["public_key"].as_str().unwrap(), file.trim_end());
    assert_eq!(
        v["provider"]["upload_url"],
        "https://gitlab.com/-/user_settings/ssh_keys"
    );
    let oracle = ssh_keygen(&["-lf", sb.ssh_dir().join("id_ed25519.pub").to_str().unwrap()]);
    assert_eq!(
        v["fingerprint"].as_str().unwrap(),
        oracle.stdout.split_whitespace().nth(1).unwrap()
    );
    assert!(v["provider"]["steps"].as_str().unwrap().contains("Add key"));
}

#[test]
fn unknown_host_in_repo_url_names_the_way_out() {
    let sb = Sandbox::new();
    with_key(&sb, &[]);
    sb.run(&["pubkey", "--repo", "git@git.unknown.example:a/b.git"])
        .code(2)
        .stderr_has("--provider NAME");
    sb.run(&["pubkey", "--repo", "not a url"])
        .code(2)
        .stderr_has("is not a Git remote URL");
}

#[test]
fn copy_without_a_terminal_warns_and_still_prints_the_key() {
    let sb = Sandbox::new();
    with_key(&sb, &[]);
    let mut cmd = sb.cmd();
    cmd.args(["pubkey", "--copy"]);
    // Detach from any controlling terminal so /dev/tty cannot be opened.
    use std::os::unix::process::CommandExt;
    #[allow(unsafe_code)]
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let out = sb.run_cmd(cmd);
    out.ok().stderr_has("`--copy` needs a terminal");
    assert!(out.stdout.starts_with("ssh-ed25519 "));
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let sb = Sandbox::new();
    with_key(&sb, &[]);
    // The reading end is closed before keyclone starts, so its write of the key meets a
    // broken pipe every time (not by the luck of scheduling).
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    drop(read_end);
    let child = sb
        .cmd()
        .args(["pubkey", "--provider", "github"])
        .stdout(std::process::Stdio::from(write_end))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("error") && !stderr.to_lowercase().contains("broken pipe"),
        "a closed stdout was reported as an error: {stderr}"
    );
}

#[test]
fn unreadable_private_key_without_pub_names_the_fix() {
    let sb = Sandbox::new();
    let key = sb.root.path().join("legacy");
    // A legacy PEM header (built at run time: no key-like text in the repository) over garbage.
    let kind = "RSA";
    std::fs::write(
        &key,
        format!(
            "-----BEGIN {kind} PRIVATE KEY-----\nnot a key\n-----END {kind} PRIVATE KEY-----\n"
        ),
    )
    .unwrap();
    sb.run(&["pubkey", "--key", key.to_str().unwrap()])
        .code(6)
        .stderr_has("ssh-keygen -y -f");
}
