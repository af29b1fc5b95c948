//! What every command gets: the UI, the environment snapshot, the SSH directory, the config
//! and the provider table, and standard input (for `--passphrase-stdin`).
//!
//! The store of refreshed host keys (`keyclone trust --refresh`) is read at the run's first
//! host-key decision ([`Ctx::host_keys`]), not here: a broken store stops those decisions, with
//! the fix, and no other command (`provenance`, `keygen`, ...).

use std::io::Read;
use std::path::PathBuf;

use crate::config::{self, Config};
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::providers::Registry;
use crate::ui::Ui;

pub struct Ctx {
    pub ui: Ui,
    pub env: Env,
    pub ssh_dir: PathBuf,
    pub config: Config,
    /// The provider table. Its pins are the built-in ones (and the config's) until
    /// [`Ctx::host_keys`] applied the refreshed host keys: host-key decisions take it from there.
    pub registry: Registry,
    /// Whether the refreshed host keys are applied to `registry`, else the store to read.
    refreshes: Refreshes,
    pub stdin: Box<dyn Read + Send>,
    /// Standard input is a terminal (typing a passphrase there would echo it).
    pub stdin_is_terminal: bool,
    /// Passphrases given earlier in this run (`init` asks once, then tests and clones).
    pub unlocked: Vec<(PathBuf, crate::passphrase::Passphrase)>,
    /// The command line's definition, for the commands that describe it (`completions`, `man`):
    /// `cli::run` sets it to `Cli`'s, which this layer cannot name.
    pub command_line: fn() -> clap::Command,
}

/// The store of refreshed host keys, read once, at the first host-key decision.
#[derive(Debug, Clone)]
enum Refreshes {
    /// Not read yet: the store's path (none without `HOME` or `XDG_STATE_HOME`).
    Unread(Option<PathBuf>),
    /// Read and applied to the registry.
    Applied,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("ssh_dir", &self.ssh_dir)
            .field("ui", &self.ui)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    pub fn new(
        settings: Settings,
        env: Env,
        ui: Ui,
        stdin: Box<dyn Read + Send>,
        stdin_is_terminal: bool,
    ) -> Ctx {
        let Settings {
            ssh_dir,
            config,
            registry,
            refresh_store,
        } = settings;
        Ctx {
            ui,
            env,
            ssh_dir,
            config,
            registry,
            refreshes: Refreshes::Unread(refresh_store),
            stdin,
            stdin_is_terminal,
            unlocked: Vec::new(),
            command_line: || clap::Command::new("keyclone"),
        }
    }
}

impl Ctx {
    /// The provider table with the refreshed host keys applied, for a host-key decision (trust,
    /// test, clone, init, doctor's pins). The store is read at the first call; one that cannot
    /// be trusted (others may write it, it is not the store, it is too large) is an error with
    /// the fix at every call, never ignored: ignoring it could bring back a key a refresh
    /// removed.
    pub fn host_keys(&mut self) -> Result<&Registry> {
        if let Refreshes::Unread(path) = &self.refreshes {
            if let Some(path) = path {
                let store = crate::providers::published::load(path).map_err(|e| {
                    let mut refused = Error::new(
                        e.kind(),
                        format!(
                            "{}; keyclone checks host keys against it, so it trusts no host until it is fixed",
                            e.message()
                        ),
                    );
                    for h in e.hints() {
                        refused = refused.hint(h.clone());
                    }
                    refused
                })?;
                self.registry.apply_refreshes(&store);
            }
            self.refreshes = Refreshes::Applied;
        }
        Ok(&self.registry)
    }

    /// The provider table for a host-key decision after [`Ctx::host_keys`] ran (the host was
    /// approved: `clone`'s and the access test's connections). Fails closed, as an internal
    /// error, where it did not: no decision is made without the refreshed keys.
    pub fn approved_host_keys(&self) -> Result<&Registry> {
        match &self.refreshes {
            Refreshes::Applied | Refreshes::Unread(None) => Ok(&self.registry),
            Refreshes::Unread(Some(_)) => Err(Error::internal(
                "a host-key decision before the refreshed host keys were read",
            )),
        }
    }

    /// Remembers the passphrase of a key for the rest of this run.
    pub fn remember(&mut self, key: &std::path::Path, p: crate::passphrase::Passphrase) {
        self.unlocked.retain(|(k, _)| k != key);
        self.unlocked.push((key.to_owned(), p));
    }

    pub fn remembered(&self, key: &std::path::Path) -> Option<&crate::passphrase::Passphrase> {
        self.unlocked.iter().find(|(k, _)| k == key).map(|(_, p)| p)
    }
}

/// Flags every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// The SSH directory to use [default: $HOME/.ssh]
    #[arg(long, global = true, value_name = "DIR")]
    pub ssh_dir: Option<PathBuf>,

    /// The config file [default: $XDG_CONFIG_HOME/keyclone/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print results as JSON on stdout (messages stay on stderr)
    #[arg(long, global = true)]
    pub json: bool,

    /// Never ask: a missing answer is an error naming its flag (implied without a terminal)
    #[arg(long, global = true)]
    pub non_interactive: bool,

    /// Print only warnings and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The global flags resolved against the environment, with the config loaded.
#[derive(Debug)]
pub struct Settings {
    pub ssh_dir: PathBuf,
    pub config: Config,
    pub registry: Registry,
    /// Where the refreshed host keys are kept (read by [`Ctx::host_keys`], not here).
    pub refresh_store: Option<PathBuf>,
}

impl Settings {
    pub fn resolve(global: &GlobalArgs, env: &Env) -> Result<Settings> {
        let cwd_abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
        let ssh_dir = match (&global.ssh_dir, env.home()) {
            (Some(d), _) => cwd_abs(d),
            (None, Some(home)) => home.join(".ssh"),
            (None, None) => {
                return Err(Error::new(
                    ErrorKind::Usage,
                    "`HOME` is not set, so keyclone cannot find `~/.ssh`",
                )
                .hint("set `HOME`, or name the directory with `--ssh-dir DIR`"));
            }
        };
        let config = match (&global.config, env.default_config_path()) {
            (Some(p), _) => config::load(&cwd_abs(p), true)?,
            (None, Some(p)) => config::load(&p, false)?,
            (None, None) => Config::default(),
        };
        let registry = Registry::with_config(&config)?;
        Ok(Settings {
            ssh_dir,
            config,
            registry,
            refresh_store: crate::providers::published::store_path(env),
        })
    }
}
