//! `keyclone init` and `keyclone doctor` against the real sshd (declared as a self-hosted
//! provider with its fingerprint), with the real `ssh`, `ssh-add` and `git` as oracles for what
//! the wizard leaves behind.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::git::{git, make_repo, state};
use crate::support::sshd::Sshd;
use crate::support::{Out, Sandbox, require};

pub const PASS: &str = "init test passphrase";

pub use crate::support::agent::Agent;

/// A sandbox, an sshd serving one repository, and a config declaring the sshd as provider
/// `local` with its host key fingerprint.
pub struct World {
    pub sshd: Sshd,
    pub sb: Sandbox,
    pub _repos: tempfile::TempDir,
    pub bare: PathBuf,
    pub url: String,
    pub pass_file: PathBuf,
}

impl World {
    pub fn new() -> World {
        World::with_config_extra("")
    }

    pub fn with_config_extra(extra: &str) -> World {
        let sshd = Sshd::start();
        let repos = tempfile::Builder::new()
            .prefix("keyclone-repos-")
            .tempdir()
            .unwrap();
        let bare = make_repo(repos.path(), "project");
        let sb = Sandbox::new();
        let pass_file = sb.secret_file("pass", PASS);
        let url = format!("{}@127.0.0.1:{}", sshd.user, bare.display());
        let w = World {
            sshd,
            sb,
            _repos: repos,
            bare,
            url,
            pass_file,
        };
        w.write_config(&format!(
            "[provider.local]\nkind = \"plain\"\nhost = \"127.0.0.1\"\nport = {}\nfingerprints = [\"{}\"]\n{extra}",
            w.sshd.port,
            w.sshd.fingerprint()
        ));
        w
    }

    pub fn write_config(&self, text: &str) {
        let dir = self.sb.home.join(".config/keyclone");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), text).unwrap();
    }

    /// The repository's URL with the sshd's port (`ssh://user@127.0.0.1:PORT/path`).
    pub fn port_url(&self) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.sshd.user,
            self.sshd.port,
            self.bare.display()
        )
    }

    pub fn init(&self, args: &[&str], agent: Option<&Agent>) -> Out {
        let mut cmd = self.sb.cmd();
        cmd.arg("init").args(args);
        if let Some(a) = agent {
            cmd.env("SSH_AUTH_SOCK", &a.sock);
        }
        self.sb.run_cmd(cmd)
    }

    pub fn authorize(&self, key: &Path) {
        self.sshd
            .authorize(&std::fs::read_to_string(format!("{}.pub", key.display())).unwrap());
    }

    /// A function that authorizes a key on this sshd (for prompter hooks on other threads).
    pub fn sshd_authorize_handle(&self) -> impl Fn(&Path) + Send + 'static {
        let file = self.sshd.authorized_keys_path();
        move |key: &Path| {
            use std::io::Write;
            let line = std::fs::read_to_string(format!("{}.pub", key.display())).unwrap();
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&file)
                .unwrap();
            writeln!(f, "{}", line.trim()).unwrap();
        }
    }

    pub fn ssh_config(&self) -> PathBuf {
        self.sb.ssh_dir().join("config")
    }

    /// The plain `ssh` client with the written config (OpenSSH reads `~/.ssh/config` from the
    /// password database's home, not `$HOME`, so it is named with `-F`), batch mode: no
    /// questions, strict host checking.
    pub fn openssh_env(&self, cmd: &mut Command, agent: Option<&Agent>) {
        let batch = if agent.is_some() { "yes" } else { "no" };
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &self.sb.home)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env(
                "GIT_SSH_COMMAND",
                format!(
                    "ssh -F {} -o BatchMode={batch} -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null",
                    self.ssh_config().display()
                ),
            )
            .stdin(Stdio::null());
        match agent {
            Some(a) => {
                cmd.env("SSH_AUTH_SOCK", &a.sock);
            }
            None => {
                // No agent: the passphrase through SSH_ASKPASS (never on a command line).
                let askpass = self.sb.root.path().join("askpass.sh");
                std::fs::write(
                    &askpass,
                    format!("#!/bin/sh\ncat '{}'\n", self.pass_file.display()),
                )
                .unwrap();
                std::fs::set_permissions(
                    &askpass,
                    std::os::unix::fs::PermissionsExt::from_mode(0o700),
                )
                .unwrap();
                cmd.env("SSH_ASKPASS", &askpass)
                    .env("SSH_ASKPASS_REQUIRE", "force")
                    .env("DISPLAY", ":0");
            }
        }
    }

    pub fn git_clone_plain(&self, url: &str, dest: &Path, agent: Option<&Agent>) -> Out {
        let mut cmd = Command::new(require("git", "git"));
        self.openssh_env(&mut cmd, agent);
        cmd.args(["clone", "-q", url]).arg(dest);
        let o = cmd.output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

fn pass_args(w: &World) -> Vec<String> {
    vec![
        "--passphrase-file".into(),
        w.pass_file.to_str().unwrap().into(),
    ]
}

fn args<'a>(v: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    v.iter()
        .map(String::as_str)
        .chain(more.iter().copied())
        .collect()
}

#[test]
fn non_interactive_init_stops_at_the_upload_then_completes_and_plain_git_works() {
    let w = World::new();
    let agent = Agent::start();
    let p = pass_args(&w);
    let url = w.port_url();
    let a = args(
        &p,
        &[
            "--non-interactive",
            "--repo",
            &url,
            "--cache",
            "agent",
            "--yes",
        ],
    );

    // First run: the key is new, so the server refuses it: stop with the upload steps.
    let first = w.init(&a, Some(&agent));
    first
        .code(8)
        .stderr_has("not on your account")
        .stderr_has("run `keyclone init` again")
        .never_shows(PASS);
    let key = w.sb.ssh_dir().join("id_ed25519");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    assert!(
        first.stdout.contains(public.trim()),
        "the public key is printed on stdout"
    );
    assert!(
        !w.ssh_config().exists(),
        "no config block before the key works"
    );
    assert!(!w.sb.home.join("code").exists(), "nothing cloned");
    // With --json, the error object carries the public key for a script to upload.
    let mut j = a.clone();
    j.push("--json");
    let out = w.init(&j, Some(&agent));
    out.code(8);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "auth");
    assert!(
        v["error"]["hints"].as_array().unwrap().iter().any(|h| h
            .as_str()
            .unwrap()
            .contains(public.trim().split(' ').nth(1).unwrap())),
        "{v}"
    );
    // The agent got the key (cached before the test).
    let fp = crate::support::ssh_keygen(&["-lf", key.with_extension("pub").to_str().unwrap()]);
    let fp = fp.stdout.split_whitespace().nth(1).unwrap().to_owned();
    assert!(agent.list().contains(&fp), "agent: {}", agent.list());

    // The user adds the key; the second run continues: reuses the key, clones, writes config.
    w.authorize(&key);
    let second = w.init(&a, Some(&agent));
    second
        .ok()
        .stderr_has("not accepted by Azure DevOps")
        .stderr_has("Using the existing key")
        .stderr_has("Cloned into")
        .never_shows(PASS);
    let dest = w.sb.home.join("code/Users/tester/project");
    let (head, files, fsck) = state(&dest);
    assert!(fsck);
    assert_eq!(head, git(&w.bare, &["rev-parse", "main"]).stdout.trim());
    let config = std::fs::read_to_string(w.ssh_config()).unwrap();
    assert!(
        config.contains(&format!("Port {}", w.sshd.port)),
        "{config}"
    );
    assert!(
        config.contains(&format!("IdentityFile {}", key.display())),
        "{config}"
    );

    // The plain clients, without keyclone: ssh and git use the block, known_hosts and agent.
    let theirs = w.sb.root.path().join("plain-clone");
    w.git_clone_plain(&w.url, &theirs, Some(&agent)).ok();
    let (h2, f2, _) = state(&theirs);
    assert_eq!((h2, f2), (head, files));

    // A third run changes nothing and says so.
    let before = std::fs::read(w.ssh_config()).unwrap();
    let kh_before = std::fs::read(w.sb.ssh_dir().join("known_hosts")).unwrap();
    let third = w.init(&a, Some(&agent));
    third
        .ok()
        .stderr_has("already accepts")
        .stderr_has("not cloning again");
    assert_eq!(std::fs::read(w.ssh_config()).unwrap(), before);
    assert_eq!(
        std::fs::read(w.sb.ssh_dir().join("known_hosts")).unwrap(),
        kh_before
    );

    // `--json`: the summary as one object on stdout.
    let mut j = a.clone();
    j.push("--json");
    let out = w.init(&j, Some(&agent));
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["provider"], "local");
    assert_eq!(v["key"]["path"], key.to_str().unwrap());
    assert_eq!(v["key"]["created"], false);
    assert_eq!(v["clone"]["path"], dest.to_str().unwrap());
    assert_eq!(v["clone"]["cloned"], false);
    assert_eq!(v["steps"]["ssh_config"], "already up to date");
}

/// The passphrase cache in a real kernel keyring: inside one `keyctl session`, `init --cache
/// keyring` stores it, and a later `keyclone test` with no passphrase source and no terminal
/// reads it from there.
#[test]
fn keyring_cache_works_inside_a_keyutils_session() {
    let w = World::new();
    let keyctl = require("keyctl", "keyutils");
    // The key exists and is authorized before: this test is about the cache.
    w.sb.run(&["keygen", "--passphrase-file", w.pass_file.to_str().unwrap()])
        .ok();
    let key = w.sb.ssh_dir().join("id_ed25519");
    w.authorize(&key);
    let kc = crate::support::keyclone_bin();
    let script = format!(
        "'{kc}' init --non-interactive --repo '{url}' --passphrase-file '{pf}' --cache keyring --no-ssh-config --no-clone && \
         '{kc}' test '{url}' --non-interactive",
        kc = kc.display(),
        url = w.port_url(),
        pf = w.pass_file.display()
    );
    let mut cmd = w.sb.cmd_of(&keyctl);
    cmd.args(["session", "-", "sh", "-c", &script]);
    let out = w.sb.run_cmd(cmd);
    out.ok()
        .stderr_has("The passphrase is in the keyring")
        .stderr_has("accepted")
        .never_shows(PASS);
    // Outside the session the cache is gone: the same test needs a passphrase again.
    w.sb.run(&["test", &w.port_url(), "--non-interactive"])
        .code(4)
        .stderr_has("protected by a passphrase");
}

#[test]
fn a_hand_written_ssh_config_is_kept_byte_for_byte_around_the_block() {
    let w = World::new();
    let hand = "Include ~/.ssh/config.d/*\n\
                # work machines\n\
                Host build\r\n\
                \tHostName 10.0.0.5\n\
                \t  User  me  \n\
                Match host *.corp exec \"true\"\n\
                   ProxyJump build\n\
                Host *\n\
                  ServerAliveInterval=30";
    std::fs::create_dir_all(w.sb.ssh_dir()).unwrap();
    std::fs::set_permissions(
        w.sb.ssh_dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    std::fs::write(w.ssh_config(), hand).unwrap();
    w.sb.run(&["keygen", "--passphrase-file", w.pass_file.to_str().unwrap()])
        .ok();
    w.authorize(&w.sb.ssh_dir().join("id_ed25519"));
    let url = w.port_url();
    let p = pass_args(&w);
    w.init(
        &args(
            &p,
            &["--non-interactive", "--repo", &url, "--yes", "--no-clone"],
        ),
        None,
    )
    .ok();
    let after = std::fs::read_to_string(w.ssh_config()).unwrap();
    assert!(after.starts_with(hand), "{after}");
    assert!(after[hand.len()..].starts_with("\n\n# >>> keyclone managed block"));
    // OpenSSH reads the whole file and resolves the host through the block.
    let g = Command::new(require("ssh", "openssh-client"))
        .args(["-G", "-F"])
        .arg(w.ssh_config())
        .arg("127.0.0.1")
        .env_clear()
        .env("HOME", &w.sb.home)
        .output()
        .unwrap();
    let g = String::from_utf8_lossy(&g.stdout);
    assert!(g.contains(&format!("port {}", w.sshd.port)), "{g}");
    assert!(g.contains("identitiesonly yes"), "{g}");
    assert!(
        g.contains("serveraliveinterval 30"),
        "the user's options still apply: {g}"
    );
}

#[test]
fn port_22_blocked_uses_the_fallback_endpoint_only_when_allowed() {
    // The provider's main port is closed; its fallback endpoint is the real sshd.
    let held = crate::support::closed_port();
    let closed = held.port;
    let w = World::new();
    w.write_config(&format!(
        "[provider.local]\nkind = \"plain\"\nhost = \"localhost\"\nport = {closed}\nfallback-host = \"127.0.0.1\"\nfallback-port = {}\nfingerprints = [\"{}\"]\n",
        w.sshd.port,
        w.sshd.fingerprint()
    ));
    let url = format!(
        "ssh://{}@localhost:{closed}{}",
        w.sshd.user,
        w.bare.display()
    );
    let p = pass_args(&w);
    let base = args(&p, &["--non-interactive", "--repo", &url, "--yes"]);
    let refused = w.init(&base, None);
    refused
        .code(10)
        .stderr_has("cannot be reached")
        .stderr_has("--port-443");
    assert!(
        !w.sb.ssh_dir().join("id_ed25519").exists(),
        "no key before the host works"
    );

    let mut with = base.clone();
    with.push("--port-443");
    let first = w.init(&with, None);
    first.code(8);
    w.authorize(&w.sb.ssh_dir().join("id_ed25519"));
    w.init(&with, None).ok().stderr_has("Cloned into");
    let config = std::fs::read_to_string(w.ssh_config()).unwrap();
    assert!(
        config.contains("Host localhost\n    HostName 127.0.0.1\n"),
        "{config}"
    );
    assert!(
        config.contains(&format!("Port {}", w.sshd.port)),
        "{config}"
    );
    // The clone's origin is the scp-like form, which plain git resolves through the block.
    let dest = w.sb.home.join("code/Users/tester/project");
    let origin = git(&dest, &["remote", "get-url", "origin"]);
    assert_eq!(
        origin.stdout.trim(),
        format!("{}@localhost:{}", w.sshd.user, w.bare.display())
    );
}

#[test]
fn a_provider_unreachable_on_both_ports_is_a_clear_error_and_nothing_is_done() {
    let held = [crate::support::closed_port(), crate::support::closed_port()];
    let closed: Vec<u16> = held.iter().map(|h| h.port).collect();
    let w = World::new();
    w.write_config(&format!(
        "[provider.down]\nkind = \"plain\"\nhost = \"127.0.0.1\"\nport = {}\nfallback-port = {}\n",
        closed[0], closed[1]
    ));
    let p = pass_args(&w);
    let out = w.init(
        &args(
            &p,
            &[
                "--non-interactive",
                "--provider",
                "down",
                "--yes",
                "--port-443",
            ],
        ),
        None,
    );
    out.code(10)
        .stderr_has("cannot be reached on port")
        .stderr_has("nothing was changed");
    assert!(
        !w.sb.ssh_dir().exists(),
        "left: {:?}",
        Sandbox::ls(&w.sb.ssh_dir())
    );
}

#[test]
fn a_second_account_gets_its_own_key_and_alias_and_clone_understands_the_alias() {
    let w = World::new();
    let agent = Agent::start();
    let p = pass_args(&w);
    let url = w.port_url();
    let a = args(
        &p,
        &[
            "--non-interactive",
            "--repo",
            &url,
            "--account",
            "work",
            "--cache",
            "agent",
            "--yes",
            "--no-clone",
        ],
    );
    w.init(&a, Some(&agent)).code(8);
    let key = w.sb.ssh_dir().join("id_ed25519_work");
    assert!(key.exists());
    assert!(!w.sb.ssh_dir().join("id_ed25519").exists());
    w.authorize(&key);
    w.init(&a, Some(&agent)).ok();
    let config = std::fs::read_to_string(w.ssh_config()).unwrap();
    assert!(
        config.contains("Host 127.0.0.1-work\n    HostName 127.0.0.1\n"),
        "{config}"
    );

    // `keyclone clone` with the alias: the account's key, the real host, origin kept.
    let alias_url = format!("{}@127.0.0.1-work:{}", w.sshd.user, w.bare.display());
    let dest = w.sb.root.path().join("via-alias");
    let mut cmd = w.sb.cmd();
    cmd.args(["clone", &alias_url, dest.to_str().unwrap()])
        .args(["--passphrase-file", w.pass_file.to_str().unwrap()]);
    w.sb.run_cmd(cmd).ok().stderr_has("id_ed25519_work");
    assert_eq!(
        git(&dest, &["remote", "get-url", "origin"]).stdout.trim(),
        alias_url
    );
    // Plain git with the alias, through the block and the agent.
    let theirs = w.sb.root.path().join("plain");
    w.git_clone_plain(&alias_url, &theirs, Some(&agent)).ok();
}

#[test]
fn refusals_before_anything_is_written() {
    let w = World::with_config_extra(
        "[provider.rsaonly]\nkind = \"plain\"\nhost = \"localhost\"\nkey-types = [\"rsa\"]\n",
    );
    let p = pass_args(&w);
    // No terminal and no repository/provider: names the flag.
    w.init(&args(&p, &["--non-interactive", "--yes"]), None)
        .code(4)
        .stderr_has("--repo URL");
    // No consent for ~/.ssh/config: names both flags.
    let url = w.port_url();
    w.init(&args(&p, &["--non-interactive", "--repo", &url]), None)
        .code(4)
        .stderr_has("--yes")
        .stderr_has("--no-ssh-config");
    // An https URL of an unknown host: explains and asks for the SSH URL.
    w.init(
        &args(
            &p,
            &[
                "--non-interactive",
                "--repo",
                "https://git.unknown.example/o/r",
                "--yes",
            ],
        ),
        None,
    )
    .code(2)
    .stderr_has("SSH URL");
    // A malformed URL.
    w.init(
        &args(&p, &["--non-interactive", "--repo", "github.com:", "--yes"]),
        None,
    )
    .code(2);
    // A bad account name.
    w.init(
        &args(
            &p,
            &[
                "--non-interactive",
                "--repo",
                &url,
                "--yes",
                "--account",
                "../x",
            ],
        ),
        None,
    )
    .code(2);
    assert!(
        !w.sb.ssh_dir().exists(),
        "left: {:?}",
        Sandbox::ls(&w.sb.ssh_dir())
    );

    // A key type the provider refuses (`--key` an ed25519 key for an RSA-only provider).
    w.sb.run(&["keygen", "--passphrase-file", w.pass_file.to_str().unwrap()])
        .ok();
    let key = w.sb.ssh_dir().join("id_ed25519");
    let rsa_url = format!("{}@localhost:{}", w.sshd.user, w.bare.display());
    let _ = rsa_url;
    w.write_config(&format!(
        "[provider.rsaonly]\nkind = \"plain\"\nhost = \"127.0.0.1\"\nport = {}\nkey-types = [\"rsa\"]\nfingerprints = [\"{}\"]\n",
        w.sshd.port,
        w.sshd.fingerprint()
    ));
    w.init(
        &args(
            &p,
            &[
                "--non-interactive",
                "--repo",
                &url,
                "--yes",
                "--key",
                key.to_str().unwrap(),
            ],
        ),
        None,
    )
    .code(5)
    .stderr_has("does not accept")
    .stderr_has("keyclone keygen --provider rsaonly");
    assert!(!w.ssh_config().exists());
}

#[test]
fn a_read_only_home_fails_clearly_and_leaves_nothing() {
    let w = World::new();
    let url = w.port_url();
    let mut cmd = w.sb.cmd();
    cmd.args(["init", "--non-interactive", "--repo", &url, "--yes"])
        .args(["--passphrase-file", w.pass_file.to_str().unwrap()]);
    if nix::unistd::Uid::effective().is_root() {
        // As root (CI), run as `nobody`: HOME belongs to root (mode 755), so `nobody` can read
        // it but not create `~/.ssh`; the files it must read are handed to it.
        let nobody = nix::unistd::User::from_name("nobody")
            .unwrap()
            .expect("user `nobody` exists");
        let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
        for f in [
            w.pass_file.clone(),
            w.sb.home.join(".config/keyclone/config.toml"),
        ] {
            std::os::unix::fs::chown(&f, Some(uid), Some(gid)).unwrap();
        }
        cmd.uid(uid).gid(gid);
    } else {
        std::fs::set_permissions(
            &w.sb.home,
            std::os::unix::fs::PermissionsExt::from_mode(0o555),
        )
        .unwrap();
    }
    let out = w.sb.run_cmd(cmd);
    out.code(7).stderr_has("permission denied");
    assert!(!w.sb.ssh_dir().exists());
}

#[test]
fn doctor_reports_problems_with_fixes_and_exits_non_zero() {
    let w = World::new();
    let agent = Agent::start();
    let p = pass_args(&w);
    let url = w.port_url();
    w.sb.run(&["keygen", "--passphrase-file", w.pass_file.to_str().unwrap()])
        .ok();
    let key = w.sb.ssh_dir().join("id_ed25519");
    w.authorize(&key);
    w.init(
        &args(
            &p,
            &[
                "--non-interactive",
                "--repo",
                &url,
                "--yes",
                "--no-clone",
                "--cache",
                "agent",
            ],
        ),
        Some(&agent),
    )
    .ok();
    let mut cmd = w.sb.cmd();
    cmd.args(["doctor", "--json"])
        .env("SSH_AUTH_SOCK", &agent.sock);
    let healthy = w.sb.run_cmd(cmd);
    healthy.ok();
    let v: serde_json::Value = serde_json::from_str(&healthy.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let areas: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["area"].as_str().unwrap())
        .collect();
    for a in [
        "ssh-dir",
        "ssh-config",
        "keys",
        "known_hosts",
        "agent",
        "keyring",
        "network",
    ] {
        assert!(areas.contains(&a), "{a} missing: {areas:?}");
    }

    // A provider that answers on neither port: a failing network check.
    let held = [crate::support::closed_port(), crate::support::closed_port()];
    let closed: Vec<u16> = held.iter().map(|h| h.port).collect();
    let cfg_path = w.sb.home.join(".config/keyclone/config.toml");
    let conf = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        format!(
            "{conf}[provider.down]\nkind = \"plain\"\nhost = \"127.0.0.1\"\nport = {}\nfallback-port = {}\n",
            closed[0], closed[1]
        ),
    )
    .unwrap();
    let mut cmd = w.sb.cmd();
    cmd.args(["doctor", "--provider", "down", "--timeout", "2"])
        .env("SSH_AUTH_SOCK", &agent.sock);
    let down = w.sb.run_cmd(cmd);
    down.code(1);
    assert!(
        down.stdout.contains("FAIL network")
            && down
                .stdout
                .contains(&format!("127.0.0.1:{} cannot be reached", closed[1])),
        "{}",
        down.stdout
    );
    std::fs::write(&cfg_path, conf).unwrap();

    // Break things: a readable key, GitHub's revoked RSA host key, a block entry whose key
    // is gone.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let revoked = "github.com ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEAq2A7hRGmdnm9tUDbO9IDSwBK6TbQa+PXYPCPy6rbTrTtw7PHkccKrpp0yVhp5HdEIcKr6pLlVDBfOLX9QUsyCOV0wzfjIJNlGEYsdlLJizHhbn2mUjvSAHQqZETYP81eFzLQNnPHt4EVVUh7VfDESU84KezmD5QlWpXLmvU31/yMf+Se8xhHTvKSCZIFImWwoG6mbUoWf9nzpIoaSjB+weqqUUmpaaasXVal72J+UX2B+2RPW3RcT0eOzQgqlJL3RKrTJvdsjE3JEAvGq3lGHSZXy28G3skua2SmVi/w4yCE6gbODqnTWlg7+wC604ydGXA8VJiS5ap43JXiUFFAaQ==";
    std::fs::write(
        w.sb.ssh_dir().join("known_hosts"),
        format!(
            "{}{revoked}\n",
            std::fs::read_to_string(w.sb.ssh_dir().join("known_hosts")).unwrap()
        ),
    )
    .unwrap();
    let cfg = std::fs::read_to_string(w.ssh_config()).unwrap();
    std::fs::write(
        w.ssh_config(),
        cfg.replace(key.to_str().unwrap(), "/nonexistent/id_gone"),
    )
    .unwrap();
    // A policy on key age: the key file is made 400 days old.
    let cfg_path = w.sb.home.join(".config/keyclone/config.toml");
    let mut conf = std::fs::read_to_string(&cfg_path).unwrap();
    conf.push_str("[keys]\nmax-age-days = 365\n");
    std::fs::write(&cfg_path, conf).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(400 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&key)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let sick = w.sb.run(&["doctor", "--offline"]);
    assert!(
        sick.stdout.contains("400 days old; your config allows 365"),
        "{}",
        sick.stdout
    );
    assert!(
        sick.stdout.contains("keyclone rotate --key"),
        "{}",
        sick.stdout
    );
    sick.code(1).stderr_has("check(s) failed");
    for needle in [
        "chmod 600",
        "REVOKED",
        "keyclone trust github.com --replace",
        "/nonexistent/id_gone",
    ] {
        assert!(
            sick.stdout.contains(needle),
            "doctor lacks {needle:?}:\n{}",
            sick.stdout
        );
    }
}

/// Scripted answers, in-process, through the `Prompter` trait; `on_enter` runs when the
/// wizard waits for the upload ("Press Enter once the key is added"), with the count so far.
pub mod scripted {
    use std::sync::{Arc, Mutex};

    use clap::Parser;
    use keyclone::error::{ErrorKind, Result};
    use keyclone::secrets::Passphrase;
    use keyclone::ui::prompt::{Answer, Prompter, ScriptedPrompter};

    use super::*;

    pub type Hook = Box<dyn FnMut(usize) + Send>;

    struct Hooked {
        inner: ScriptedPrompter,
        asked: Arc<Mutex<Vec<String>>>,
        enters: usize,
        on_enter: Hook,
    }

    impl Prompter for Hooked {
        fn input(&mut self, prompt: &str, default: Option<&str>) -> Result<String> {
            self.asked.lock().unwrap().push(prompt.to_owned());
            if prompt.starts_with("Press Enter") {
                self.enters += 1;
                (self.on_enter)(self.enters);
            }
            self.inner.input(prompt, default)
        }
        fn password(&mut self, prompt: &str) -> Result<Passphrase> {
            self.asked.lock().unwrap().push(prompt.to_owned());
            self.inner.password(prompt)
        }
        fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool> {
            self.asked.lock().unwrap().push(prompt.to_owned());
            self.inner.confirm(prompt, default)
        }
        fn select(&mut self, prompt: &str, items: &[String], default: usize) -> Result<usize> {
            self.asked.lock().unwrap().push(prompt.to_owned());
            self.inner.select(prompt, items, default)
        }
    }

    pub struct Run {
        pub result: Result<()>,
        pub stderr: String,
        pub asked: Vec<String>,
    }

    /// Runs `keyclone ARGS` in this process with a terminal-like UI answering from `answers`.
    pub fn run(w: &World, argv: &[&str], answers: Vec<Answer>, on_enter: Hook) -> Run {
        let env = w.sb.env();
        let cli = keyclone::cli::Cli::try_parse_from(
            std::iter::once("keyclone").chain(argv.iter().copied()),
        )
        .unwrap();
        let settings = keyclone::context::Settings::resolve(&cli.global, &env).unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let prompter = Hooked {
            inner: ScriptedPrompter::new(answers),
            asked: asked.clone(),
            enters: 0,
            on_enter,
        };
        let ui = keyclone::ui::Ui::captured(Box::new(prompter), true);
        let mut ctx =
            keyclone::context::Ctx::new(settings, env, ui, Box::new(std::io::empty()), false);
        let result = keyclone::commands::dispatch(&mut ctx, cli.command);
        let stderr = ctx.ui.captured_stderr();
        let asked = asked.lock().unwrap().clone();
        Run {
            result,
            stderr,
            asked,
        }
    }

    fn no_hook() -> Hook {
        Box::new(|_| {})
    }

    fn temp_files_in(dir: &Path) -> Vec<String> {
        Sandbox::ls(dir)
            .into_iter()
            // The lock beside known_hosts is kept on purpose (flock needs a stable file).
            .filter(|n| n != ".known_hosts.keyclone-lock")
            .filter(|n| n.starts_with('.') || n.contains("tmp"))
            .collect()
    }

    #[test]
    fn reuses_an_existing_key_chosen_from_the_list() {
        let w = World::new();
        let other = w.sb.ssh_dir().join("id_other");
        w.sb.run(&[
            "keygen",
            "--path",
            other.to_str().unwrap(),
            "--passphrase-file",
            w.pass_file.to_str().unwrap(),
        ])
        .ok();
        w.authorize(&other);
        let url = w.port_url();
        let r = run(
            &w,
            &["init", "--cache", "none", "--no-clone", "--yes"],
            vec![
                Answer::Text(url.clone()),
                Answer::Select(1),
                Answer::Password(PASS.into()),
                Answer::Confirm(false),
            ],
            no_hook(),
        );
        assert!(r.result.is_ok(), "{:?}\n{}", r.result.err(), r.stderr);
        assert_eq!(r.asked[1], "Which key?");
        assert!(r.asked[2].starts_with("Passphrase for"), "{:?}", r.asked);
        assert!(!w.sb.ssh_dir().join("id_ed25519").exists(), "no new key");
        let cfg = std::fs::read_to_string(w.ssh_config()).unwrap();
        assert!(
            cfg.contains(&format!("IdentityFile {}", other.display())),
            "{cfg}"
        );
        assert!(!r.stderr.contains(PASS));
    }

    #[test]
    fn passphrase_mismatch_then_auth_failure_then_success() {
        let w = World::new();
        let key = w.sb.ssh_dir().join("id_ed25519");
        let sshd_keys = w.sshd_authorize_handle();
        let url = w.port_url();
        let r = run(
            &w,
            &["init", "--cache", "none"],
            vec![
                Answer::Text(url),
                Answer::Password("first".into()),
                Answer::Password("second".into()),
                Answer::Password(PASS.into()),
                Answer::Password(PASS.into()),
                Answer::Text(String::new()), // Enter: not added yet
                Answer::Select(1),           // show the key and the steps again
                Answer::Text(String::new()), // Enter: added now
                // (the folder under Users/ is the login name, `tester`: not asked)
                Answer::Confirm(true), // write ~/.ssh/config
                Answer::Confirm(true), // set git identity
                Answer::Text("Ada Lovelace".into()),
                Answer::Text("ada@example.com".into()),
            ],
            Box::new(move |n| {
                if n == 2 {
                    sshd_keys(&key);
                }
            }),
        );
        assert!(r.result.is_ok(), "{:?}\n{}", r.result.err(), r.stderr);
        assert!(r.stderr.contains("differ"), "{}", r.stderr);
        assert!(
            r.stderr.contains("does not accept the key yet"),
            "{}",
            r.stderr
        );
        assert_eq!(
            r.asked
                .iter()
                .filter(|a| a.starts_with("Press Enter"))
                .count(),
            2
        );
        let dest = w.sb.home.join("code/Users/tester/project");
        assert!(state(&dest).2, "cloned and fsck clean");
        let gc = std::fs::read_to_string(w.sb.home.join(".gitconfig")).unwrap();
        assert!(
            gc.contains("Ada Lovelace") && gc.contains("ada@example.com"),
            "{gc}"
        );
        assert!(!r.stderr.contains(PASS));
    }

    #[test]
    fn no_repository_yet_asks_for_the_provider() {
        let w = World::with_config_extra(&format!("user = \"{}\"\n", current_user()));
        let key = w.sb.ssh_dir().join("id_ed25519");
        let authorize = w.sshd_authorize_handle();
        let r = run(
            &w,
            &["init", "--cache", "none", "--yes"],
            vec![
                Answer::Text(String::new()), // no repository yet
                Answer::Select(5),           // local (after the five built-in providers)
                Answer::Password(PASS.into()),
                Answer::Password(PASS.into()),
                Answer::Text(String::new()), // Enter once the key is added
                Answer::Confirm(false),      // no git identity
            ],
            Box::new(move |_| authorize(&key)),
        );
        assert!(r.result.is_ok(), "{:?}\n{}", r.result.err(), r.stderr);
        assert_eq!(r.asked[1], "Your Git provider");
        assert!(r.stderr.contains("No repository yet"), "{}", r.stderr);
        let cfg = std::fs::read_to_string(w.ssh_config()).unwrap();
        assert!(cfg.contains(&format!("User {}", current_user())), "{cfg}");
        assert!(!w.sb.home.join("code").exists(), "nothing to clone");
    }

    fn current_user() -> String {
        nix::unistd::User::from_uid(nix::unistd::Uid::effective())
            .unwrap()
            .unwrap()
            .name
    }

    #[test]
    fn quit_at_the_upload_stops_cleanly_and_says_how_to_continue() {
        let w = World::new();
        let url = w.port_url();
        let r = run(
            &w,
            &["init", "--cache", "none"],
            vec![
                Answer::Text(url),
                Answer::Password(PASS.into()),
                Answer::Password(PASS.into()),
                Answer::Text(String::new()),
                Answer::Select(2),
            ],
            no_hook(),
        );
        let e = r.result.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(
            e.hints()
                .iter()
                .any(|h| h.contains("run `keyclone init` again"))
        );
        assert!(
            w.sb.ssh_dir().join("id_ed25519").exists(),
            "the key is kept"
        );
        assert!(!w.ssh_config().exists());
        assert!(!w.sb.home.join("code").exists());
    }

    /// The prompter's answer "interrupted" (what dialoguer returns on Ctrl-C) stops the wizard
    /// at once; the real signals at the write steps are in `signals.rs` and `promises.rs`.
    #[test]
    fn an_interrupted_answer_stops_init_before_anything_is_written() {
        let w = World::new();
        let url = w.port_url();
        // At the passphrase: no key at all.
        let r = run(
            &w,
            &["init", "--cache", "none"],
            vec![Answer::Text(url.clone()), Answer::Interrupt],
            no_hook(),
        );
        assert_eq!(r.result.unwrap_err().kind(), ErrorKind::Interrupted);
        assert!(!w.sb.ssh_dir().join("id_ed25519").exists());
        assert!(
            temp_files_in(&w.sb.ssh_dir()).is_empty(),
            "{:?}",
            Sandbox::ls(&w.sb.ssh_dir())
        );

        // At the ssh config question: the file is not created.
        let key = w.sb.ssh_dir().join("id_ed25519");
        w.sb.run(&["keygen", "--passphrase-file", w.pass_file.to_str().unwrap()])
            .ok();
        w.authorize(&key);
        let r = run(
            &w,
            &["init", "--cache", "none", "--no-clone", "--repo", &url],
            vec![Answer::Password(PASS.into()), Answer::Interrupt],
            no_hook(),
        );
        assert_eq!(r.result.unwrap_err().kind(), ErrorKind::Interrupted);
        assert!(r.asked.last().unwrap().starts_with("Write this to"));
        assert!(!w.ssh_config().exists());
        assert!(
            temp_files_in(&w.sb.ssh_dir()).is_empty(),
            "{:?}",
            Sandbox::ls(&w.sb.ssh_dir())
        );
    }

    #[test]
    fn an_invalid_url_at_the_prompt_is_asked_again() {
        let w = World::new();
        let url = w.port_url();
        let r = run(
            &w,
            &["init", "--cache", "none"],
            vec![
                Answer::Text("not a url".into()),
                Answer::Text("github.com:".into()),
                Answer::Text(url),
                Answer::Interrupt,
            ],
            no_hook(),
        );
        assert_eq!(r.result.unwrap_err().kind(), ErrorKind::Interrupted);
        assert_eq!(
            r.asked
                .iter()
                .filter(|a| a.starts_with("Repository URL"))
                .count(),
            3
        );
        assert_eq!(r.stderr.matches("Try again").count(), 2, "{}", r.stderr);
    }
}

/// A repository URL through a host alias of the user's own `~/.ssh/config` (`Host work-git`,
/// its `HostName`, `Port`, `User` and `IdentityFile`): `init` connects where `ssh` would,
/// checks the real host's pins, reuses the key the config names, and keeps the alias as the
/// clone's `origin`, so plain git goes through the user's config as before.
#[test]
fn init_follows_a_host_alias_of_the_users_ssh_config() {
    let w = World::new();
    let p = pass_args(&w);
    let key = w.sb.ssh_dir().join("work_key");
    w.sb.run(&[
        "keygen",
        "--passphrase-file",
        w.pass_file.to_str().unwrap(),
        "--path",
        key.to_str().unwrap(),
    ])
    .ok();
    w.authorize(&key);
    let hand = format!(
        "Host work-git\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n",
        w.sshd.port,
        w.sshd.user,
        key.display()
    );
    std::fs::write(w.ssh_config(), &hand).unwrap();
    let url = format!("work-git:{}", w.bare.display());
    let out = w.init(
        &args(&p, &["--non-interactive", "--repo", &url, "--yes"]),
        None,
    );
    out.ok()
        .stderr_has(&format!(
            "`work-git` is `127.0.0.1` port {} in `~/.ssh/config`",
            w.sshd.port
        ))
        .never_shows(PASS);
    assert!(
        !w.sb.ssh_dir().join("id_ed25519").exists(),
        "the key the config names is used, no other is made"
    );
    let dest = w.sb.home.join("code/Users/tester/project");
    assert!(dest.join("README.md").is_file());
    let origin = Command::new("git")
        .args(["-C", dest.to_str().unwrap(), "remote", "get-url", "origin"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&origin.stdout).trim(), url);
    let after = std::fs::read_to_string(w.ssh_config()).unwrap();
    assert!(
        after.starts_with(&hand),
        "the user's lines stay first: {after}"
    );
}
