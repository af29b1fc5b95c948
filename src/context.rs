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
    /// Resolves the global flags against the environment and loads the config.
    /// On error the UI is handed back, to report it.
    pub fn new(
        global: &GlobalArgs,
        env: Env,
        ui: Ui,
        stdin: Box<dyn Read + Send>,
    ) -> std::result::Result<Ctx, (Error, Ui)> {
        match Self::settings(global, &env) {
            Ok((ssh_dir, config, registry)) => Ok(Ctx {
                ui,
                env,
                ssh_dir,
                config,
                registry,
                stdin,
            }),
            Err(e) => Err((e, ui)),
        }
    }

    fn settings(global: &GlobalArgs, env: &Env) -> Result<(PathBuf, Config, Registry)> {
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
        Ok((ssh_dir, config, registry))
    }
}
