//! `keyclone agent`: keyclone's own ssh-agent (start with a key, status, stop, the shell line).

use std::path::PathBuf;

use crate::context::Ctx;
use crate::error::Result;
use crate::ops::agent::{self, DEFAULT_CACHE_FOR, parse_cache_for};
use crate::secrets::UnlockArgs;
use crate::ssh::agent_process::State;

/// Run an ssh-agent that outlives the shell, for machines without one.
///
/// keyclone runs OpenSSH's `ssh-agent` at a fixed socket of yours (`~/.ssh/keyclone-agent/
/// agent.sock`, mode 0600 in a 0700 folder), detached from the terminal, so later shells,
/// plain `ssh` and `git` use the key without asking until its lifetime ends, you run
/// `keyclone agent stop`, or the machine restarts. The passphrase is read by keyclone (masked)
/// and the decrypted key handed to the agent over its socket.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone agent start --cache-for 8h\n  \
    eval \"$(keyclone agent env)\"   # in ~/.bashrc: this shell's ssh-add and tools find it\n  \
    keyclone agent status\n  keyclone agent stop")]
pub struct AgentArgs {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// Start the agent (unless it runs) and add your key for a lifetime
    Start {
        /// The private key [default: the default key in the SSH directory]
        #[arg(long, value_name = "PATH")]
        key: Option<PathBuf>,

        #[command(flatten)]
        unlock: UnlockArgs,

        /// How long the agent keeps the key: `8h`, `90m`, `2d` or seconds [default: 8h]
        #[arg(long, value_name = "DURATION", value_parser = parse_cache_for)]
        cache_for: Option<u32>,
    },
    /// Say whether the agent runs and which keys it holds
    Status,
    /// Stop the agent; the keys it held are forgotten
    Stop,
    /// Print the shell line that points `SSH_AUTH_SOCK` at the agent (started if needed);
    /// nothing when your own agent answers
    Env {
        /// The lifetime of keys `ssh` adds to a new agent [default: 8h]
        #[arg(long, value_name = "DURATION", value_parser = parse_cache_for)]
        cache_for: Option<u32>,
    },
}

pub fn run(ctx: &mut Ctx, args: AgentArgs) -> Result<()> {
    match args.action {
        Action::Start {
            key,
            unlock,
            cache_for,
        } => {
            let life = cache_for.unwrap_or(DEFAULT_CACHE_FOR);
            let (path, fingerprint) = agent::add_key_file(ctx, key.as_deref(), &unlock, life)?;
            let sock = agent::socket(ctx);
            if ctx.ui.json() {
                return ctx.ui.json_value(&serde_json::json!({
                    "socket": sock, "key": path, "fingerprint": fingerprint, "lifetime_secs": life,
                }));
            }
            ctx.ui.info(&format!(
                "keyclone's ssh-agent at `{}` holds `{}` ({fingerprint}) for {}.\n\nNext: plain `ssh` and `git` use it through keyclone's `~/.ssh/config` block (`keyclone init` writes it); for other tools in this shell: eval \"$(keyclone agent env)\"",
                sock.display(),
                path.display(),
                humantime::format_duration(std::time::Duration::from_secs(life.into()))
            ));
            Ok(())
        }
        Action::Status => {
            let s = agent::status(ctx)?;
            if ctx.ui.json() {
                return ctx
                    .ui
                    .json_value(&serde_json::to_value(&s).unwrap_or_default());
            }
            let mut msg = match (s.state, s.pid) {
                ("running", Some(pid)) => format!(
                    "keyclone's ssh-agent runs (pid {pid}) at `{}` and holds {} key(s){}",
                    s.socket.display(),
                    s.keys.len(),
                    if s.keys.is_empty() {
                        ": add yours with `keyclone agent start`".to_owned()
                    } else {
                        format!(": {}", s.keys.join(", "))
                    }
                ),
                ("stale", _) => format!(
                    "keyclone's ssh-agent is not running; `{}` is left from one that stopped. `keyclone agent start` replaces it",
                    s.socket.display()
                ),
                _ => "keyclone's ssh-agent is not running. Start it with `keyclone agent start`"
                    .to_owned(),
            };
            if let Some(u) = &s.users_agent {
                msg.push_str(&format!(
                    "\nThis shell's own ssh-agent (`{}`) answers and comes first.",
                    u.display()
                ));
            }
            ctx.ui.data(&msg)
        }
        Action::Stop => {
            let was = agent::stop(ctx)?;
            let what = match was {
                State::Running { pid } => format!(
                    "Stopped keyclone's ssh-agent (pid {pid}); the keys it held are forgotten."
                ),
                State::Stale => {
                    "keyclone's ssh-agent was not running; removed its stale socket.".to_owned()
                }
                State::Stopped => "keyclone's ssh-agent was not running.".to_owned(),
            };
            ctx.ui.info(&what);
            Ok(())
        }
        Action::Env { cache_for } => {
            let life = Some(cache_for.unwrap_or(DEFAULT_CACHE_FOR));
            if let Some(line) = agent::env_lines(ctx, life)? {
                ctx.ui.data(&line)?;
            }
            Ok(())
        }
    }
}
