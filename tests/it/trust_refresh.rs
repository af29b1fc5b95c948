//! `keyclone trust --refresh` against a local HTTPS stand-in for a provider's published host
//! keys (GitHub's `/meta` shape, as a GitHub Enterprise Server serves it at `/api/v3/meta`),
//! verified through a CA made at run time, with the real sshd as the host whose key rotated and
//! the real `ssh-keygen -F` as the oracle for what known_hosts ends up with.

use crate::support::meta_https::MetaServer;
use crate::support::sshd::Sshd;
use crate::support::{Out, Sandbox, key_material, mode, ssh_keygen};

/// A key the server does not have: the pin "before the rotation".
const OLD: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIVIC02vnjFyL+I4RHfvIGNtOgJMe769VTF1VR4EB3ZB";
const OLD_FP: &str = "SHA256:mIlxA9k46MmM6qdJOdMnAQpzGxF4WIVVL+fj+wZbw0g";

struct World {
    sshd: Sshd,
    meta: MetaServer,
    sb: Sandbox,
}

impl World {
    fn new() -> World {
        let sshd = Sshd::start();
        let meta = MetaServer::start();
        let sb = Sandbox::new();
        let dir = sb.home.join(".config/keyclone");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "[provider.corp]\nkind = \"github\"\nhost = \"127.0.0.1\"\nport = {}\nfingerprints = [\"{OLD_FP}\"]\npublished-url = \"{}\"\n",
                sshd.port,
                meta.url("/api/v3/meta")
            ),
        )
        .unwrap();
        World { sshd, meta, sb }
    }

    fn host_key(&self) -> String {
        let line = self.sshd.known_hosts_line();
        key_material(line.split_once(' ').unwrap().1)
    }

    fn meta_lists(&self, keys: &[&str]) {
        let body = serde_json::json!({ "ssh_keys": keys, "hooks": ["192.0.2.0/24"] }).to_string();
        self.meta.routes(
            &[(
                "/api/v3/meta",
                200,
                "application/json; charset=utf-8",
                &body,
            )],
            &[],
        );
    }

    /// `trust --refresh --provider corp`, trusting the test CA (`with_ca`) or only the system's
    /// roots.
    fn refresh(&self, with_ca: bool) -> Out {
        let mut cmd = self.sb.cmd();
        cmd.args(["trust", "--refresh", "--provider", "corp"]);
        if with_ca {
            cmd.env("SSL_CERT_FILE", &self.meta.ca);
        }
        self.sb.run_cmd(cmd)
    }

    fn trust(&self) -> Out {
        self.sb
            .run(&["trust", &format!("127.0.0.1:{}", self.sshd.port)])
    }

    fn store(&self) -> std::path::PathBuf {
        self.sb.home.join(".local/state/keyclone/host-keys.json")
    }
}

#[test]
fn a_rotation_published_over_verified_tls_is_reported_and_then_trusted() {
    let w = World::new();
    // The pin is the old key: the server's new key is refused.
    w.trust().code(9);
    let new = w.host_key();
    w.meta_lists(&[&new]);
    let new_fp = {
        let kh = w.sb.root.path().join("one.pub");
        std::fs::write(&kh, format!("{new}\n")).unwrap();
        ssh_keygen(&["-lf", kh.to_str().unwrap()])
            .stdout
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    };
    w.refresh(true)
        .ok()
        .stderr_has("TLS verified")
        .stderr_has(&format!("added {new_fp}"))
        .stderr_has(&format!("removed {OLD_FP}"));
    let store = std::fs::read_to_string(w.store()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&store).unwrap();
    let r = &v["refreshes"][0];
    assert_eq!(r["source"], w.meta.url("/api/v3/meta"));
    assert_eq!(r["keys"][0], new);
    assert!(r["fetched_at"].as_str().unwrap().starts_with("20"));
    assert_eq!(mode(&w.store()), 0o600);

    // Now the published key is trusted, and written where plain ssh finds it.
    w.trust().ok().stderr_has("verified");
    let kh = w.sb.ssh_dir().join("known_hosts");
    let found = ssh_keygen(&[
        "-F",
        &format!("[127.0.0.1]:{}", w.sshd.port),
        "-f",
        kh.to_str().unwrap(),
    ]);
    assert!(
        found.stdout.contains(new.split(' ').nth(1).unwrap()),
        "{}",
        found.stdout
    );

    // The same answer again: nothing rotated since the last refresh (still since the pin).
    w.refresh(true)
        .ok()
        .stderr_has(&format!("added {new_fp}"))
        .stderr_has("`fingerprints` of [provider.corp]")
        .never_shows("Since the last refresh");
}

#[test]
fn a_key_removed_upstream_stops_being_trusted() {
    let w = World::new();
    let new = w.host_key();
    w.meta_lists(&[&new]);
    w.refresh(true).ok();
    w.trust().ok();
    // The provider drops the server's key and publishes another one only.
    w.meta_lists(&[OLD]);
    w.refresh(true)
        .ok()
        .stderr_has("Since the last refresh")
        .stderr_has("no longer publishes");
    let kh = w.sb.ssh_dir().join("known_hosts");
    std::fs::remove_file(&kh).unwrap();
    w.trust().code(9);
}

#[test]
fn an_untrusted_certificate_html_a_500_or_a_redirect_elsewhere_change_nothing() {
    let w = World::new();
    let new = w.host_key();
    w.meta_lists(&[&new]);
    // The stand-in's CA is not among the system's roots.
    w.refresh(false)
        .code(10)
        .stderr_has("not trusted")
        .stderr_has("SSL_CERT_FILE");
    assert!(!w.store().exists());

    let html = "<!DOCTYPE html><html><body>Sign in</body></html>";
    w.meta.routes(
        &[("/api/v3/meta", 200, "text/html; charset=utf-8", html)],
        &[],
    );
    w.refresh(true).code(10).stderr_has("text/html");
    let body = serde_json::json!({ "ssh_keys": [new] }).to_string();
    w.meta
        .routes(&[("/api/v3/meta", 500, "application/json", &body)], &[]);
    w.refresh(true).code(10).stderr_has("answered 500");
    let elsewhere = format!("https://localhost:{}/meta", w.meta.port);
    w.meta.routes(
        &[("/meta", 200, "application/json", &body)],
        &[("/api/v3/meta", 302, &elsewhere)],
    );
    w.refresh(true)
        .code(5)
        .stderr_has("redirected to https://localhost");
    let missing = r#"{"hooks": []}"#;
    w.meta
        .routes(&[("/api/v3/meta", 200, "application/json", missing)], &[]);
    w.refresh(true).code(10).stderr_has("no `ssh_keys`");
    assert!(!w.store().exists(), "nothing was kept");
    w.trust().code(9);
}

#[test]
fn a_published_url_must_be_https_and_a_provider_without_one_says_so() {
    let sb = Sandbox::new();
    let dir = sb.home.join(".config/keyclone");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "[provider.corp]\nkind = \"github\"\nhost = \"git.corp.example\"\npublished-url = \"http://git.corp.example/api/v3/meta\"\n",
    )
    .unwrap();
    sb.run(&["trust", "--refresh", "--provider", "corp"])
        .code(3)
        .stderr_has("not an https URL");
    std::fs::remove_file(dir.join("config.toml")).unwrap();
    sb.run(&["trust", "--refresh", "--provider", "gitlab"])
        .code(2)
        .stderr_has("publishes no host keys");
}

#[test]
fn doctor_says_when_a_refresh_is_newer_than_the_built_in_pins_and_differs() {
    let sb = Sandbox::new();
    let gh_ed25519 =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    let store = sb.home.join(".local/state/keyclone/host-keys.json");
    std::fs::create_dir_all(store.parent().unwrap()).unwrap();
    let write = |at: &str, keys: &[&str]| {
        let v = serde_json::json!({"version": 1, "refreshes": [{
            "provider": "github", "source": "https://api.github.com/meta", "fetched_at": at,
            "endpoints": ["github.com"], "keys": keys,
        }]});
        std::fs::write(&store, v.to_string()).unwrap();
        std::fs::set_permissions(&store, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    };
    // GitHub rotated: its ECDSA and RSA keys are gone, another key came.
    write("2030-01-02T03:04:05Z", &[gh_ed25519, OLD]);
    let out = sb.run(&["doctor", "--offline"]);
    out.ok();
    assert!(
        out.stdout.contains("older than the refresh of 2030-01-02")
            && out.stdout.contains(&format!("added {OLD_FP}"))
            && out.stdout.contains("update keyclone"),
        "{}",
        out.stdout
    );
    // `trust --show` now lists the refreshed keys for github.com, not the ECDSA pin.
    let show = sb.run(&["trust", "github.com", "--show"]);
    assert!(show.stdout.contains(OLD_FP), "{}", show.stdout);
    assert!(
        !show
            .stdout
            .contains("SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM"),
        "{}",
        show.stdout
    );
    // A refresh older than the pins built in is not used.
    write("2020-01-01T00:00:00Z", &[OLD]);
    let out = sb.run(&["doctor", "--offline"]);
    assert!(out.stdout.contains("the pins decide"), "{}", out.stdout);
    let show = sb.run(&["trust", "github.com", "--show"]);
    assert!(!show.stdout.contains(OLD_FP), "{}", show.stdout);
    // A store others may write stops keyclone instead of being ignored.
    std::fs::set_permissions(&store, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    sb.run(&["trust", "github.com", "--show"])
        .code(3)
        .stderr_has("keyclone trust --refresh");
}

#[test]
fn known_hosts_lines_are_taken_for_the_provider_s_own_host_only() {
    let w = World::new();
    let cfg = w.sb.home.join(".config/keyclone/config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}published-format = \"known-hosts\"\n")).unwrap();
    let new = w.host_key();
    // Bitbucket's /site/ssh shape; a line for another host must not become a pin of this one.
    let body = format!(
        "[127.0.0.1]:{} {new}\ngithub.com {OLD}\n@revoked [127.0.0.1]:{} {OLD}\n",
        w.sshd.port, w.sshd.port
    );
    w.meta
        .routes(&[("/api/v3/meta", 200, "text/plain", &body)], &[]);
    w.refresh(true)
        .ok()
        .stderr_has("1 key(s)")
        .stderr_has("a line for another host: github.com")
        .stderr_has("a marker line");
    w.trust().ok().stderr_has("verified");
}

/// A corrupt or group-writable store of refreshed host keys stops the host-key decisions only:
/// `keygen` and `provenance` work; `trust`, `test` and `clone` refuse before connecting, with
/// the message and the fix; `doctor` fails its "host keys" check and still reports the rest.
#[test]
fn a_broken_store_stops_host_decisions_and_nothing_else() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let store = w.store();
    std::fs::create_dir_all(store.parent().unwrap()).unwrap();
    let valid = r#"{"version":1,"refreshes":[]}"#;
    let breakages: [(&str, u32, &str); 2] = [
        ("{ not json", 0o600, "is not readable"),
        (valid, 0o660, "host-key store"),
    ];
    for (i, (text, mode, says)) in breakages.into_iter().enumerate() {
        std::fs::write(&store, text).unwrap();
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(mode)).unwrap();

        // Commands that decide nothing about host keys are not stopped.
        w.sb.run(&[
            "keygen",
            "--no-passphrase",
            "--path",
            &format!(".ssh/id_{i}"),
        ])
        .ok();
        let repo = crate::support::git::make_repo(w.sb.root.path(), &format!("repo{i}"));
        let work = w.sb.root.path().join(format!("work{i}"));
        crate::support::git::git(
            w.sb.root.path(),
            &[
                "clone",
                "-q",
                repo.to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        )
        .ok();
        let mut prov = w.sb.cmd();
        prov.args(["provenance", work.to_str().unwrap()])
            .env("GIT_CEILING_DIRECTORIES", w.sb.root.path());
        w.sb.run_cmd(prov).ok();

        // Those that do refuse, naming the store, why, and the fix; nothing is connected to.
        let key = w.sb.ssh_dir().join(format!("id_{i}"));
        let url = crate::support::git::ssh_url(&w.sshd, &repo);
        let dest = w.sb.root.path().join(format!("clone{i}"));
        for out in [
            w.trust(),
            w.sb.run(&["test", &url, "--key", key.to_str().unwrap()]),
            w.sb.run(&[
                "clone",
                &url,
                dest.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ]),
        ] {
            out.code(3)
                .stderr_has(says)
                .stderr_has("trusts no host until it is fixed")
                .stderr_has("keyclone trust --refresh");
        }
        assert!(!dest.exists(), "nothing was cloned");
        assert!(
            !w.sb.ssh_dir().join("known_hosts").exists(),
            "no host was recorded"
        );
        let doctor = w.sb.run(&["doctor", "--offline"]);
        assert!(
            doctor.stdout.contains("trusts no host until it is fixed")
                && doctor.stdout.contains("keyclone trust --refresh"),
            "{}",
            doctor.stdout
        );
    }
}
