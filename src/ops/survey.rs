//! The machine survey: what is on the machine before anything is changed (the SSH directory,
//! its keys, ssh-agent, the keyring, the Azure ML share, git's identity). `init` shows it and
//! decides from it; `doctor` gathers it with the rest of its facts (`ops::doctor`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ssh_key::PrivateKey;

use crate::context::Ctx;
use crate::files;
use crate::secrets;
use crate::ssh::agent;
use crate::ssh::key;
use crate::workspace;

/// A key found in the SSH directory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FoundKey {
    pub path: PathBuf,
    pub algorithm: String,
    pub fingerprint: String,
    pub encrypted: bool,
    /// Ids of the providers that accept its type.
    pub accepted_by: Vec<String>,
    /// Its permission bits (0 when they cannot be read).
    pub mode: u32,
    /// Days since the file was last written, when the clock and the file say.
    pub age_days: Option<u64>,
}

/// What is on the machine before anything is changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Survey {
    pub ssh_dir: PathBuf,
    /// The SSH directory does not exist yet (and can be created).
    pub ssh_dir_missing: bool,
    pub ssh_dir_problem: Option<String>,
    pub keys: Vec<FoundKey>,
    /// `SSH_AUTH_SOCK`.
    pub agent_socket: Option<PathBuf>,
    /// Whether an agent answers there.
    pub agent: bool,
    /// keyclone's own agent (`keyclone agent start`) answers at its socket.
    pub own_agent: bool,
    pub keyring: std::result::Result<(), String>,
    pub code_share: bool,
    pub git_name: Option<String>,
    pub git_email: Option<String>,
}

/// The private keys of the SSH directory: the files that parse as OpenSSH private keys.
pub fn find_keys(ctx: &Ctx) -> Vec<FoundKey> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(&ctx.ssh_dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.extension().is_some_and(|e| e == "pub") || !p.is_file() {
            continue;
        }
        // Private keys are small; known_hosts and other files can be large.
        if std::fs::metadata(&p).map_or(true, |m| m.len() > 64 * 1024) {
            continue;
        }
        let Ok(text) = files::read_bounded_text(&p, files::KEY_LIMIT, "private key") else {
            continue;
        };
        let Ok(private) = PrivateKey::from_openssh(&text) else {
            continue;
        };
        let public = private.public_key();
        let mode = std::fs::metadata(&p).map_or(0, |m| m.permissions().mode() & 0o777);
        out.push(FoundKey {
            algorithm: key::type_label(&public.algorithm()).to_owned(),
            fingerprint: key::fingerprint(public),
            encrypted: private.is_encrypted(),
            accepted_by: ctx
                .registry
                .all()
                .iter()
                .filter(|pr| pr.accepts(&public.algorithm()))
                .map(|pr| pr.id.clone())
                .collect(),
            mode,
            age_days: age_days(&p),
            path: p,
        });
    }
    out
}

fn age_days(path: &Path) -> Option<u64> {
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    SystemTime::now()
        .duration_since(m)
        .ok()
        .map(|d| d.as_secs() / 86_400)
}

/// git's `user.name` and `user.email` from the files git reads for them outside a repository:
/// `$HOME/.gitconfig`, `$XDG_CONFIG_HOME/git/config` (else `~/.config/git/config`) and
/// `/etc/gitconfig` (unless `GIT_CONFIG_NOSYSTEM` says not to).
pub fn git_identity(env: &crate::env::Env) -> (Option<String>, Option<String>) {
    let Ok(mut cfg) = git2::Config::new() else {
        return (None, None);
    };
    if !env.git_config_nosystem() {
        let _ = cfg.add_file(
            Path::new("/etc/gitconfig"),
            git2::ConfigLevel::System,
            false,
        );
    }
    if let Some(home) = env.home() {
        let xdg = env
            .get_nonempty(crate::env::XDG_CONFIG_HOME)
            .map_or_else(|| home.join(".config"), PathBuf::from);
        let _ = cfg.add_file(&xdg.join("git/config"), git2::ConfigLevel::XDG, false);
        let _ = cfg.add_file(&home.join(".gitconfig"), git2::ConfigLevel::Global, false);
    }
    let get = |k: &str| cfg.get_string(k).ok().filter(|v| !v.trim().is_empty());
    (get("user.name"), get("user.email"))
}

pub fn survey(ctx: &Ctx) -> Survey {
    let (git_name, git_email) = git_identity(&ctx.env);
    let home = ctx.env.home().unwrap_or_default();
    let dir = files::check_private_dir(&ctx.ssh_dir);
    let agent = agent::Agent::from_env(&ctx.env);
    Survey {
        ssh_dir: ctx.ssh_dir.clone(),
        ssh_dir_missing: matches!(dir, Ok(files::DirState::Missing)),
        ssh_dir_problem: dir.err().map(|e| e.message().to_owned()),
        keys: find_keys(ctx),
        agent_socket: agent.as_ref().map(|a| a.socket().to_path_buf()),
        agent: agent.as_ref().is_some_and(agent::Agent::reachable),
        own_agent: matches!(
            crate::ssh::agent_process::state(&crate::ssh::agent_process::socket(&ctx.ssh_dir)),
            Ok(crate::ssh::agent_process::State::Running { .. })
        ),
        keyring: secrets::keyring_works(&ctx.env),
        code_share: home.join(workspace::AZUREML_CODE_SHARE).is_dir(),
        git_name,
        git_email,
    }
}
