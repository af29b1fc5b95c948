//! doctor's facts and checks. [`gather`] reads the machine once (the shared [`Survey`], the SSH
//! config, known_hosts, the network, the refreshed host keys of `pins`, a login to each host of
//! keyclone's block); [`checks`] turns those facts into the checklist, each
//! problem with its fix, without touching the file system, the network or the environment.

mod checks;
mod login;
mod pins;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::context::Ctx;
use crate::error::Result;
use crate::ops::survey::{Survey, survey};
use crate::providers::Endpoint;
use crate::ssh::config::{self as sshconfig, HostEntry};
use crate::ssh::known_hosts::KnownHosts;

pub use checks::checks;
pub use login::{Login, Outcome};
pub use pins::RefreshFact;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One line of the checklist.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub area: &'static str,
    pub status: Status,
    pub what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// What doctor looks at.
#[derive(Debug, Clone)]
pub struct DoctorSurvey {
    /// What `init` sees too: the SSH directory, its keys, ssh-agent, the keyring.
    pub machine: Survey,
    /// The config file's `keys.max_age_days`.
    pub max_key_age_days: Option<u32>,
    pub config: ConfigFacts,
    pub known_hosts: KnownHostsFacts,
    /// Per provider checked, whether each of its endpoints answers (empty with `--offline`).
    pub network: Vec<Reach>,
    /// Per entry of keyclone's block, the login check (empty with `--offline`).
    pub logins: Vec<Login>,
    /// The refreshed host keys (`trust --refresh`) against the pins they replace, or why their
    /// store cannot be trusted (what and the fix).
    pub pins: std::result::Result<Vec<pins::RefreshFact>, (String, String)>,
    /// The clone doctor runs in, if any: its Git LFS files still pointers.
    pub lfs: Option<LfsFacts>,
}

/// The Git LFS files of the clone around the current folder that are still pointers.
#[derive(Debug, Clone)]
pub struct LfsFacts {
    pub clone: PathBuf,
    pub pointers: usize,
    pub bytes: u64,
}

/// The clone around the current folder and its LFS pointers (none outside a clone).
fn lfs_facts() -> Option<LfsFacts> {
    let cwd = std::env::current_dir().ok()?;
    let repo = git2::Repository::discover(&cwd).ok()?;
    let clone = repo.workdir()?.to_path_buf();
    let scan = crate::lfs::scan(&repo).ok()?;
    Some(LfsFacts {
        clone,
        pointers: scan.pointers.len(),
        bytes: scan.missing_bytes(),
    })
}

/// `~/.ssh/config` and keyclone's block in it.
#[derive(Debug, Clone)]
pub struct ConfigFacts {
    pub path: PathBuf,
    pub state: ConfigState,
}

#[derive(Debug, Clone)]
pub enum ConfigState {
    /// It cannot be read: the error's message and first hint.
    Unreadable { message: String, hint: String },
    /// It has no keyclone block (or does not exist).
    NoBlock,
    Block {
        /// Group or others may write it (OpenSSH then refuses it).
        writable_by_others: bool,
        entries: Vec<BlockEntry>,
    },
}

/// A `Host` entry of keyclone's block, and whether its `IdentityFile` exists.
#[derive(Debug, Clone)]
pub struct BlockEntry {
    pub entry: HostEntry,
    pub identity_exists: bool,
}

/// The SSH directory's known_hosts.
#[derive(Debug, Clone)]
pub struct KnownHostsFacts {
    pub path: PathBuf,
    pub state: KnownHostsState,
}

#[derive(Debug, Clone)]
pub enum KnownHostsState {
    Missing,
    /// It exists but cannot be read: why.
    Unreadable(String),
    Read(KnownHosts),
}

/// Whether a provider's endpoints answer.
#[derive(Debug, Clone)]
pub struct Reach {
    pub id: String,
    pub name: String,
    pub results: Vec<(Endpoint, std::result::Result<(), String>)>,
}

/// What to gather beyond the machine itself.
#[derive(Debug, Clone)]
pub struct Options {
    /// Providers to probe besides those keyclone's block uses.
    pub providers: Vec<String>,
    pub offline: bool,
    pub timeout: Duration,
}

impl ConfigFacts {
    /// The block's entries (none without a block).
    pub fn entries(&self) -> impl Iterator<Item = &HostEntry> {
        let all: &[BlockEntry] = match &self.state {
            ConfigState::Block { entries, .. } => entries,
            _ => &[],
        };
        all.iter().map(|b| &b.entry)
    }
}

/// Reads everything doctor checks. Fails only for an unknown `--provider` name.
pub fn gather(ctx: &Ctx, opts: &Options) -> Result<DoctorSurvey> {
    let machine = survey(ctx);
    let config = config_facts(ctx);
    let known_hosts = known_hosts_facts(ctx);
    let (network, logins) = if opts.offline {
        (Vec::new(), Vec::new())
    } else {
        (
            network_facts(ctx, opts, &config)?,
            login::gather(ctx, config.entries(), opts.timeout),
        )
    };
    Ok(DoctorSurvey {
        machine,
        max_key_age_days: ctx.config.keys.max_age_days,
        config,
        known_hosts,
        network,
        pins: pins::gather(ctx),
        lfs: lfs_facts(),
        logins,
    })
}

fn config_facts(ctx: &Ctx) -> ConfigFacts {
    let path = sshconfig::path_in(&ctx.ssh_dir);
    let state = match sshconfig::read(&path) {
        Err(e) => ConfigState::Unreadable {
            message: e.message().to_owned(),
            hint: e.hints().first().cloned().unwrap_or_default(),
        },
        Ok(cfg) if !cfg.has_block() => ConfigState::NoBlock,
        Ok(cfg) => ConfigState::Block {
            writable_by_others: std::fs::metadata(&path)
                .is_ok_and(|m| m.permissions().mode() & 0o022 != 0),
            entries: cfg
                .entries()
                .iter()
                .map(|e| BlockEntry {
                    identity_exists: e.identity_file.is_file(),
                    entry: e.clone(),
                })
                .collect(),
        },
    };
    ConfigFacts { path, state }
}

fn known_hosts_facts(ctx: &Ctx) -> KnownHostsFacts {
    let path = ctx.ssh_dir.join("known_hosts");
    let state = if !path.exists() {
        KnownHostsState::Missing
    } else {
        match KnownHosts::read(&path) {
            Ok(kh) => KnownHostsState::Read(kh),
            Err(e) => KnownHostsState::Unreadable(e.message().to_owned()),
        }
    };
    KnownHostsFacts { path, state }
}

/// The providers named by `--provider`, then those keyclone's block uses: whether the first
/// SSH endpoint and the port-443 ones answer.
fn network_facts(ctx: &Ctx, opts: &Options, config: &ConfigFacts) -> Result<Vec<Reach>> {
    let mut ids: Vec<String> = Vec::new();
    for name in &opts.providers {
        ids.push(ctx.registry.get(name)?.id.clone());
    }
    for e in config.entries() {
        if let Some(p) = ctx.registry.for_host(&e.hostname, Some(e.port))
            && !ids.contains(&p.id)
        {
            ids.push(p.id.clone());
        }
    }
    let mut out = Vec::new();
    for id in ids {
        let p = ctx.registry.get(&id)?;
        let results = p
            .ssh
            .iter()
            .take(1)
            .chain(p.ssh_443.iter())
            .map(|ep| (ep.clone(), answers(ep, opts.timeout)))
            .collect();
        out.push(Reach {
            id: p.id.clone(),
            name: p.name.clone(),
            results,
        });
    }
    Ok(out)
}

/// Whether an SSH server answers at `ep`: the one connection probe (`ssh::probe::reachable`),
/// its first cause as the reason.
fn answers(ep: &Endpoint, timeout: Duration) -> std::result::Result<(), String> {
    crate::ssh::probe::reachable(ep, timeout).map_err(|e| {
        e.causes()
            .into_iter()
            .next()
            .unwrap_or_else(|| e.message().to_owned())
    })
}
