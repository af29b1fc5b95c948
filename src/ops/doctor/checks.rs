//! doctor's decisions: each check is a function of the facts [`super::gather`] read, pushing
//! what is fine and what is wrong (with the command that fixes it). Nothing here reads the
//! machine.

use std::path::Path;

use super::{
    Check, ConfigFacts, ConfigState, DoctorSurvey, KnownHostsFacts, KnownHostsState, Reach, Status,
};
use crate::ops::survey::{FoundKey, Survey};
use crate::providers::{Endpoint, ProviderKind, Registry};
use crate::ssh::known_hosts::Marker;
use crate::ssh::trust::{self, Decision};

/// Azure DevOps SSH keys stop working one year after they are added.
const AZURE_KEY_DAYS: u64 = 365;

/// The checklist, in the order it is shown.
pub fn checks(s: &DoctorSurvey, registry: &Registry) -> Vec<Check> {
    let mut r = Report::default();
    ssh_dir(&mut r, &s.machine);
    config(&mut r, &s.config);
    keys(&mut r, s, registry);
    known_hosts(&mut r, &s.known_hosts, registry);
    agent(
        &mut r,
        s.machine.agent_socket.as_deref(),
        s.machine.agent,
        s.machine.own_agent,
    );
    keyring(&mut r, &s.machine.keyring);
    for reach in &s.network {
        network(&mut r, reach);
    }
    r.0.extend(super::pins::checks(&s.pins));
    if let Some(l) = &s.lfs {
        lfs(&mut r, l);
    }
    r.0.extend(s.logins.iter().map(super::login::check));
    r.0
}

/// The clone doctor runs in: LFS files left as pointers are a warning with the command.
fn lfs(r: &mut Report, l: &super::LfsFacts) {
    if l.pointers == 0 {
        return;
    }
    r.warn(
        "lfs",
        format!(
            "{} Git LFS file{} in `{}` {} still a pointer ({:.1} MiB not fetched)",
            l.pointers,
            if l.pointers == 1 { "" } else { "s" },
            l.clone.display(),
            if l.pointers == 1 { "is" } else { "are" },
            l.bytes as f64 / (1024.0 * 1024.0)
        ),
        format!("`cd {} && keyclone lfs pull`", l.clone.display()),
    );
}

#[derive(Default)]
struct Report(Vec<Check>);

impl Report {
    fn add(&mut self, area: &'static str, status: Status, what: String, fix: Option<String>) {
        self.0.push(Check {
            area,
            status,
            what,
            fix,
        });
    }
    fn ok(&mut self, area: &'static str, what: String) {
        self.add(area, Status::Ok, what, None);
    }
    fn warn(&mut self, area: &'static str, what: String, fix: String) {
        self.add(area, Status::Warn, what, Some(fix));
    }
    fn fail(&mut self, area: &'static str, what: String, fix: String) {
        self.add(area, Status::Fail, what, Some(fix));
    }
}

fn ssh_dir(r: &mut Report, m: &Survey) {
    let dir = m.ssh_dir.display();
    if let Some(problem) = &m.ssh_dir_problem {
        r.fail("ssh-dir", problem.clone(), format!("chmod 700 {dir}"));
    } else if m.ssh_dir_missing {
        r.warn(
            "ssh-dir",
            format!("`{dir}` does not exist yet"),
            "run `keyclone init`".into(),
        );
    } else {
        r.ok("ssh-dir", format!("`{dir}` is private"));
    }
}

fn config(r: &mut Report, c: &ConfigFacts) {
    let path = c.path.display();
    match &c.state {
        ConfigState::Unreadable { message, hint } => {
            r.fail("ssh-config", message.clone(), hint.clone());
        }
        ConfigState::NoBlock => r.warn(
            "ssh-config",
            format!("`{path}` has no keyclone block: plain `ssh`/`git` may not pick your key"),
            "run `keyclone init` (it shows the block and asks before writing)".into(),
        ),
        ConfigState::Block {
            writable_by_others,
            entries,
        } => {
            if *writable_by_others {
                r.fail(
                    "ssh-config",
                    format!("`{path}` is writable by others: OpenSSH refuses to use it"),
                    format!("chmod 600 {path}"),
                );
            }
            for b in entries {
                let e = &b.entry;
                let id = e.identity_file.display();
                if b.identity_exists {
                    r.ok(
                        "ssh-config",
                        format!("Host {} -> {} with `{id}`", e.alias, e.endpoint()),
                    );
                } else {
                    r.fail(
                        "ssh-config",
                        format!("Host {} uses `{id}`, which does not exist", e.alias),
                        format!(
                            "run `keyclone init --repo URL` again for {}, or `keyclone rotate`",
                            e.alias
                        ),
                    );
                }
            }
        }
    }
}

fn keys(r: &mut Report, s: &DoctorSurvey, registry: &Registry) {
    if s.machine.keys.is_empty() {
        r.warn(
            "keys",
            format!("no private key in `{}`", s.machine.ssh_dir.display()),
            "create one with `keyclone init` (or `keyclone keygen`)".into(),
        );
    }
    for k in &s.machine.keys {
        key(r, k, s, registry);
    }
}

fn key(r: &mut Report, k: &FoundKey, s: &DoctorSurvey, registry: &Registry) {
    let p = k.path.display();
    let mode = k.mode;
    if mode & 0o077 != 0 {
        r.fail(
            "keys",
            format!("`{p}` can be read by others (mode {mode:o}): OpenSSH refuses it"),
            format!("chmod 600 {p}"),
        );
    }
    if !k.encrypted {
        r.warn(
            "keys",
            format!("`{p}` has no passphrase: anyone who copies the file can use it"),
            format!("add one with `ssh-keygen -p -f {p}` (or `keyclone rotate --key {p}`)"),
        );
    }
    let age = k.age_days.unwrap_or(0);
    if let Some(max) = s.max_key_age_days
        && age > u64::from(max)
    {
        r.warn(
            "keys",
            format!("`{p}` is {age} days old; your config allows {max}"),
            format!("replace it: `keyclone rotate --key {p}`"),
        );
    }
    for e in s.config.entries().filter(|e| e.identity_file == k.path) {
        let Some(prov) = registry.for_host(&e.hostname, Some(e.port)) else {
            continue;
        };
        if !k.accepted_by.contains(&prov.id) {
            r.fail(
                "keys",
                format!(
                    "`{p}` is a {} key, and {} (Host {}) accepts only {}",
                    k.algorithm,
                    prov.name,
                    e.alias,
                    prov.accepted_list()
                ),
                format!(
                    "create a key it accepts: `keyclone rotate --key {p} --provider {}`",
                    prov.id
                ),
            );
        }
        if prov.kind == ProviderKind::AzureDevops && age + 30 >= AZURE_KEY_DAYS {
            r.warn(
                "keys",
                format!(
                    "`{p}` was created {age} days ago; Azure DevOps SSH keys expire one year after they are added"
                ),
                format!("rotate it before it expires: `keyclone rotate --key {p}`"),
            );
        }
    }
    if mode & 0o077 == 0 && k.encrypted {
        r.ok(
            "keys",
            format!("`{p}` ({}, {}, {age} days old)", k.algorithm, k.fingerprint),
        );
    }
}

fn known_hosts(r: &mut Report, f: &KnownHostsFacts, registry: &Registry) {
    let path = f.path.display();
    let kh = match &f.state {
        KnownHostsState::Missing => {
            r.warn(
                "known_hosts",
                format!("`{path}` does not exist: no host is trusted yet"),
                "run `keyclone init` or `keyclone trust HOST`".into(),
            );
            return;
        }
        KnownHostsState::Unreadable(why) => {
            r.fail("known_hosts", why.clone(), "fix or remove the file".into());
            return;
        }
        KnownHostsState::Read(kh) => kh,
    };
    for pr in &kh.problems {
        r.warn(
            "known_hosts",
            format!("`{path}` line {}: {}", pr.line, pr.reason),
            format!("fix or delete line {} (OpenSSH ignores it)", pr.line),
        );
    }
    let files = std::slice::from_ref(kh);
    let mut bad = 0;
    for p in registry.all() {
        let endpoints: Vec<&Endpoint> = p.ssh.iter().chain(p.ssh_443.iter()).collect();
        for ep in endpoints {
            for e in kh.lookup(ep) {
                if e.marker != Marker::None {
                    continue;
                }
                let v = trust::decide(ep, &e.key, files, registry);
                if !matches!(
                    v.decision,
                    Decision::Revoked { .. } | Decision::PinMismatch { .. }
                ) {
                    continue;
                }
                bad += 1;
                let who = ep;
                let why = trust::refusal(&v, registry)
                    .map(|e| e.message().to_owned())
                    .unwrap_or_default();
                r.fail(
                    "known_hosts",
                    format!("line {} for {who}: {why}", e.line),
                    format!(
                        "remove it and record the published keys: `keyclone trust {} --replace`",
                        ep.known_hosts_name()
                    ),
                );
            }
        }
    }
    if bad == 0 {
        r.ok(
            "known_hosts",
            format!("`{path}`: no revoked or unpublished keys for known providers"),
        );
    }
}

/// ssh-agent: `socket` is `SSH_AUTH_SOCK`, `reachable` whether an agent answers there; `own`:
/// keyclone's own agent answers at its socket (what `IdentityAgent` in the block names).
fn agent(r: &mut Report, socket: Option<&Path>, reachable: bool, own: bool) {
    match socket {
        None if own => r.ok(
            "agent",
            "keyclone's ssh-agent answers (`keyclone agent status`); `SSH_AUTH_SOCK` is unset, so ssh and git find it through `IdentityAgent` in keyclone's block".into(),
        ),
        None => r.warn(
            "agent",
            "no ssh-agent (`SSH_AUTH_SOCK` is unset): the passphrase is asked at each use".into(),
            "optional: `keyclone agent start --cache-for 8h` runs an ssh-agent that outlives this shell (`keyclone init` offers it too), or `eval \"$(ssh-agent)\"` for this shell only".into(),
        ),
        Some(s) if !reachable => r.warn(
            "agent",
            format!(
                "`SSH_AUTH_SOCK` points at `{}`, where no agent answers",
                s.display()
            ),
            "start a new one: `eval \"$(ssh-agent)\"`".into(),
        ),
        Some(_) => r.ok("agent", "ssh-agent answers".into()),
    }
}

/// The keyring, from whether a backend works here.
fn keyring(r: &mut Report, works: &std::result::Result<(), String>) {
    match works {
        Ok(()) => r.ok("keyring", "a keyring backend works here".into()),
        Err(why) => r.warn(
            "keyring",
            format!("no keyring can cache passphrases here ({why})"),
            "optional: run keyclone inside `keyctl session -` (package keyutils), or use ssh-agent"
                .into(),
        ),
    }
}

/// A provider's endpoints: one that does not answer is a warning when another does (use that
/// one), a failure when none does.
fn network(r: &mut Report, reach: &Reach) {
    let any = reach.results.iter().any(|(_, res)| res.is_ok());
    for (ep, res) in &reach.results {
        let who = ep;
        let name = &reach.name;
        match res {
            Ok(()) => r.ok("network", format!("{name}: {who} answers")),
            Err(why) if any => r.warn(
                "network",
                format!("{name}: {who} cannot be reached ({why})"),
                format!(
                    "use the endpoint that answers: `keyclone init --provider {} --port-443`",
                    reach.id
                ),
            ),
            Err(why) => r.fail(
                "network",
                format!("{name}: {who} cannot be reached ({why})"),
                "check this machine's network, firewall or proxy".into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::BlockEntry;
    use super::*;
    use crate::ssh::config::HostEntry;
    use crate::ssh::known_hosts::KnownHosts;

    const GITHUB_ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    /// A key nobody publishes.
    const OTHER_ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII3ZDHDit+ZLaVhFqn60cbukULs51Ua+zORQF9Y7i4Es";

    fn key(name: &str) -> FoundKey {
        FoundKey {
            path: PathBuf::from(format!("/h/.ssh/{name}")),
            algorithm: "ed25519".into(),
            fingerprint: "SHA256:abc".into(),
            encrypted: true,
            accepted_by: vec!["github".into(), "gitlab".into()],
            mode: 0o600,
            age_days: Some(10),
        }
    }

    fn entry(alias: &str, hostname: &str, identity: &str) -> BlockEntry {
        BlockEntry {
            entry: HostEntry {
                alias: alias.into(),
                hostname: hostname.into(),
                port: 22,
                user: "git".into(),
                identity_file: PathBuf::from(format!("/h/.ssh/{identity}")),
                known_hosts: None,
                identity_agent: None,
            },
            identity_exists: true,
        }
    }

    fn known(lines: &str) -> KnownHostsState {
        KnownHostsState::Read(KnownHosts::parse(
            Path::new("/h/.ssh/known_hosts"),
            lines.as_bytes(),
        ))
    }

    /// A machine where everything is fine: one key used for github.com, GitHub's key trusted.
    fn healthy() -> DoctorSurvey {
        DoctorSurvey {
            machine: Survey {
                ssh_dir: PathBuf::from("/h/.ssh"),
                ssh_dir_missing: false,
                ssh_dir_problem: None,
                keys: vec![key("id_ed25519")],
                agent_socket: Some(PathBuf::from("/tmp/agent.sock")),
                agent: true,
                own_agent: false,
                keyring: Ok(()),
                code_share: false,
                git_name: None,
                git_email: None,
            },
            max_key_age_days: None,
            config: ConfigFacts {
                path: PathBuf::from("/h/.ssh/config"),
                state: ConfigState::Block {
                    writable_by_others: false,
                    entries: vec![entry("github.com", "github.com", "id_ed25519")],
                },
            },
            known_hosts: KnownHostsFacts {
                path: PathBuf::from("/h/.ssh/known_hosts"),
                state: known(&format!("github.com {GITHUB_ED25519}\n")),
            },
            network: vec![reach(&[true, true])],
            pins: Ok(vec![]),
            lfs: None,
            logins: Vec::new(),
        }
    }

    fn reach(answers: &[bool]) -> Reach {
        let eps = [("github.com", 22), ("ssh.github.com", 443)];
        Reach {
            id: "github".into(),
            name: "GitHub".into(),
            results: eps
                .iter()
                .zip(answers)
                .map(|(&(host, port), &ok)| {
                    let ep = Endpoint {
                        host: host.into(),
                        port,
                    };
                    (ep, if ok { Ok(()) } else { Err("timed out".into()) })
                })
                .collect(),
        }
    }

    /// The checks of one area.
    fn area(s: &DoctorSurvey, name: &str) -> Vec<Check> {
        checks(s, &Registry::builtin())
            .into_iter()
            .filter(|c| c.area == name)
            .collect()
    }

    /// The one check of `name` with this status, whose fix names `command`.
    fn the(s: &DoctorSurvey, name: &str, status: Status, command: &str) -> Check {
        let found: Vec<Check> = area(s, name)
            .into_iter()
            .filter(|c| c.status == status)
            .collect();
        assert_eq!(found.len(), 1, "{name} {status:?}: {found:?}");
        let c = found.into_iter().next().unwrap();
        let fix = c.fix.clone().unwrap_or_default();
        assert!(fix.contains(command), "fix `{fix}` lacks `{command}`");
        c
    }

    fn statuses(s: &DoctorSurvey, name: &str) -> Vec<Status> {
        area(s, name).iter().map(|c| c.status).collect()
    }

    #[test]
    fn a_healthy_machine_passes_every_check_in_order() {
        let all = checks(&healthy(), &Registry::builtin());
        let areas: Vec<&str> = all.iter().map(|c| c.area).collect();
        assert_eq!(
            areas,
            [
                "ssh-dir",
                "ssh-config",
                "keys",
                "known_hosts",
                "agent",
                "keyring",
                "network",
                "network"
            ]
        );
        assert!(
            all.iter()
                .all(|c| c.status == Status::Ok && c.fix.is_none())
        );
    }

    #[test]
    fn the_ssh_dir_check_tells_missing_from_unsafe() {
        let mut s = healthy();
        s.machine.ssh_dir_missing = true;
        the(&s, "ssh-dir", Status::Warn, "keyclone init");
        s.machine.ssh_dir_missing = false;
        s.machine.ssh_dir_problem = Some("group can write it".into());
        let c = the(&s, "ssh-dir", Status::Fail, "chmod 700 /h/.ssh");
        assert_eq!(c.what, "group can write it");
    }

    #[test]
    fn the_config_check_names_each_problem_with_its_fix() {
        let mut s = healthy();
        s.config.state = ConfigState::Unreadable {
            message: "not UTF-8".into(),
            hint: "fix the file's encoding".into(),
        };
        the(&s, "ssh-config", Status::Fail, "fix the file's encoding");
        s.config.state = ConfigState::NoBlock;
        the(&s, "ssh-config", Status::Warn, "keyclone init");
        let mut missing = entry("gitlab.com", "gitlab.com", "gone");
        missing.identity_exists = false;
        s.config.state = ConfigState::Block {
            writable_by_others: true,
            entries: vec![entry("github.com", "github.com", "id_ed25519"), missing],
        };
        assert_eq!(
            statuses(&s, "ssh-config"),
            [Status::Fail, Status::Ok, Status::Fail]
        );
        let fails: Vec<Check> = area(&s, "ssh-config")
            .into_iter()
            .filter(|c| c.status == Status::Fail)
            .collect();
        assert_eq!(fails[0].fix.as_deref(), Some("chmod 600 /h/.ssh/config"));
        assert!(fails[1].what.contains("/h/.ssh/gone"));
        assert!(
            fails[1]
                .fix
                .as_deref()
                .unwrap()
                .contains("keyclone init --repo URL")
        );
    }

    #[test]
    fn no_key_is_a_warning_that_says_how_to_make_one() {
        let mut s = healthy();
        s.machine.keys.clear();
        the(&s, "keys", Status::Warn, "keyclone init");
    }

    #[test]
    fn an_unsafe_key_fails_and_an_unprotected_one_warns() {
        let mut s = healthy();
        s.machine.keys[0].mode = 0o644;
        the(&s, "keys", Status::Fail, "chmod 600 /h/.ssh/id_ed25519");
        assert_eq!(statuses(&s, "keys"), [Status::Fail]);
        let mut s = healthy();
        s.machine.keys[0].encrypted = false;
        the(
            &s,
            "keys",
            Status::Warn,
            "ssh-keygen -p -f /h/.ssh/id_ed25519",
        );
        assert_eq!(statuses(&s, "keys"), [Status::Warn]);
    }

    #[test]
    fn a_key_older_than_the_config_allows_warns() {
        let mut s = healthy();
        s.max_key_age_days = Some(10);
        assert_eq!(statuses(&s, "keys"), [Status::Ok]);
        s.max_key_age_days = Some(9);
        let c = the(
            &s,
            "keys",
            Status::Warn,
            "keyclone rotate --key /h/.ssh/id_ed25519",
        );
        assert!(c.what.contains("10 days old; your config allows 9"));
    }

    #[test]
    fn a_key_its_provider_does_not_accept_fails() {
        let mut s = healthy();
        s.machine.keys[0].accepted_by = vec!["gitlab".into()];
        the(&s, "keys", Status::Fail, "--provider github");
        // A key no block entry uses is not judged against any provider.
        s.config.state = ConfigState::NoBlock;
        assert_eq!(statuses(&s, "keys"), [Status::Ok]);
    }

    #[test]
    fn an_azure_key_warns_a_month_before_it_expires() {
        let mut s = healthy();
        s.machine.keys[0].accepted_by = vec!["azure-devops".into()];
        s.config.state = ConfigState::Block {
            writable_by_others: false,
            entries: vec![entry(
                "ssh.dev.azure.com",
                "ssh.dev.azure.com",
                "id_ed25519",
            )],
        };
        s.machine.keys[0].age_days = Some(334);
        assert_eq!(statuses(&s, "keys"), [Status::Ok]);
        s.machine.keys[0].age_days = Some(335);
        the(
            &s,
            "keys",
            Status::Warn,
            "keyclone rotate --key /h/.ssh/id_ed25519",
        );
    }

    #[test]
    fn the_known_hosts_check_finds_missing_bad_lines_and_unpublished_keys() {
        let mut s = healthy();
        s.known_hosts.state = KnownHostsState::Missing;
        the(&s, "known_hosts", Status::Warn, "keyclone trust HOST");
        s.known_hosts.state = KnownHostsState::Unreadable("too large".into());
        the(&s, "known_hosts", Status::Fail, "fix or remove the file");
        s.known_hosts.state = known(&format!("github.com {GITHUB_ED25519}\ngarbage\n"));
        the(&s, "known_hosts", Status::Warn, "delete line 2");
        assert_eq!(statuses(&s, "known_hosts"), [Status::Warn, Status::Ok]);
        s.known_hosts.state = known(&format!("github.com {OTHER_ED25519}\n"));
        let c = the(
            &s,
            "known_hosts",
            Status::Fail,
            "keyclone trust github.com --replace",
        );
        assert!(c.what.starts_with("line 1 for github.com"), "{}", c.what);
        assert_eq!(statuses(&s, "known_hosts"), [Status::Fail]);
    }

    #[test]
    fn the_agent_check_tells_unset_dead_and_answering_apart() {
        let mut s = healthy();
        s.machine.agent_socket = None;
        s.machine.agent = false;
        let unset = the(&s, "agent", Status::Warn, "ssh-agent");
        assert!(unset.what.contains("unset"));
        s.machine.own_agent = true;
        assert_eq!(statuses(&s, "agent"), [Status::Ok]);
        s.machine.own_agent = false;
        s.machine.agent_socket = Some(PathBuf::from("/tmp/agent.sock"));
        let dead = the(&s, "agent", Status::Warn, "eval \"$(ssh-agent)\"");
        assert!(dead.what.contains("/tmp/agent.sock"));
    }

    #[test]
    fn a_keyring_that_does_not_work_is_a_warning_with_the_reason() {
        let mut s = healthy();
        s.machine.keyring = Err("no backend".into());
        let c = the(&s, "keyring", Status::Warn, "keyctl session -");
        assert!(c.what.contains("no backend"));
    }

    #[test]
    fn an_unreachable_endpoint_warns_when_another_answers_and_fails_when_none_does() {
        let mut s = healthy();
        s.network = vec![reach(&[false, true])];
        assert_eq!(statuses(&s, "network"), [Status::Warn, Status::Ok]);
        the(
            &s,
            "network",
            Status::Warn,
            "keyclone init --provider github --port-443",
        );
        s.network = vec![reach(&[false, false])];
        assert_eq!(statuses(&s, "network"), [Status::Fail, Status::Fail]);
        s.network.clear();
        assert!(statuses(&s, "network").is_empty());
    }

    #[test]
    fn lfs_pointers_left_in_the_clone_are_a_warning_with_the_command() {
        let mut s = healthy();
        assert!(statuses(&s, "lfs").is_empty());
        s.lfs = Some(super::super::LfsFacts {
            clone: PathBuf::from("/c/models"),
            pointers: 0,
            bytes: 0,
        });
        assert!(statuses(&s, "lfs").is_empty());
        s.lfs = Some(super::super::LfsFacts {
            clone: PathBuf::from("/c/models"),
            pointers: 2,
            bytes: 3 * 1024 * 1024,
        });
        assert_eq!(statuses(&s, "lfs"), [Status::Warn]);
        let c = checks(&s, &Registry::builtin());
        let c = c.iter().find(|c| c.area == "lfs").unwrap();
        assert!(
            c.what
                .contains("2 Git LFS files in `/c/models` are still a pointer (3.0 MiB"),
            "{}",
            c.what
        );
        assert_eq!(
            c.fix.as_deref(),
            Some("`cd /c/models && keyclone lfs pull`")
        );
    }
}
