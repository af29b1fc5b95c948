//! `keyclone completions SHELL`: the shell's completion script, generated from the command
//! line's own definition (clap_complete), on stdout.

use crate::context::Ctx;
use crate::error::{Error, Result};

/// Print the completion script for a shell.
///
/// Load it for this shell: `source <(keyclone completions bash)`. Install it for every new
/// bash: `keyclone completions bash > ~/.local/share/bash-completion/completions/keyclone`
/// (zsh: a file `_keyclone` in a folder of your `fpath`; fish:
/// `~/.config/fish/completions/keyclone.fish`).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  source <(keyclone completions bash)\n  \
    keyclone completions zsh > ~/.zfunc/_keyclone")]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(ctx: &mut Ctx, args: CompletionsArgs) -> Result<()> {
    let mut cmd = (ctx.command_line)();
    let name = cmd.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name, &mut script);
    let script = String::from_utf8(script)
        .map_err(|e| Error::internal("the completion script is not UTF-8").with_source(e))?;
    ctx.ui.data(script.trim_end_matches('\n'))
}
