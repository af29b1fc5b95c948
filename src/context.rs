//! What every command gets: the UI, the environment snapshot, the SSH directory, the config
//! and the provider table, and standard input (for `--passphrase-stdin`).

use std::io::Read;
use std::path::PathBuf;

use crate::cli::GlobalArgs;
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
    pub registry: Registry,
    pub stdin: Box<dyn Read + Send>,
    /// Standard input is a terminal (typing a passphrase there would echo it).
    pub stdin_is_terminal: bool,
    /// Passphrases given earlier in this run (`init` asks once, then tests and clones).
    pub unlocked: Vec<(PathBuf, crate::secrets::Passphrase)>,
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
        } = settings;
        Ctx {
            ui,
            env,
            ssh_dir,
            config,
            registry,
            stdin,
            stdin_is_terminal,
            unlocked: Vec::new(),
        }
    }
}

impl Ctx {
    /// Remembers the passphrase of a key for the rest of this run.
    pub fn remember(&mut self, key: &std::path::Path, p: crate::secrets::Passphrase) {
        self.unlocked.retain(|(k, _)| k != key);
        self.unlocked.push((key.to_owned(), p));
    }

    pub fn remembered(&self, key: &std::path::Path) -> Option<&crate::secrets::Passphrase> {
        self.unlocked.iter().find(|(k, _)| k == key).map(|(_, p)| p)
    }
}

/// The global flags resolved against the environment, with the config loaded.
#[derive(Debug)]
pub struct Settings {
    pub ssh_dir: PathBuf,
    pub config: Config,
    pub registry: Registry,
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
        })
    }
}
