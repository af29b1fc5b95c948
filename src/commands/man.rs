//! `keyclone man`: the manual pages, generated from the command line's own definition
//! (clap_mangen): keyclone(1) on stdout, or one page per command written into a folder.

use std::path::PathBuf;

use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};

/// Print the manual page, or write one page per command.
///
/// Without `--dir`: keyclone(1) on stdout (`keyclone man | man -l -`). With `--dir`:
/// keyclone.1 and keyclone-COMMAND.1 for each command, written into DIR (which must exist),
/// for example `~/.local/share/man/man1`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone man | man -l -\n  \
    mkdir -p ~/.local/share/man/man1 && keyclone man --dir ~/.local/share/man/man1")]
pub struct ManArgs {
    /// Write keyclone.1 and keyclone-COMMAND.1 into this folder instead of printing keyclone(1)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(ctx: &mut Ctx, args: ManArgs) -> Result<()> {
    let mut cmd = (ctx.command_line)();
    cmd.build();
    let Some(dir) = args.dir else {
        let page = render(&cmd)?;
        return ctx.ui.data(page.trim_end_matches('\n'));
    };
    if !dir.is_dir() {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("{} is not a folder", dir.display()),
        )
        .hint(format!("create it first: mkdir -p {}", dir.display())));
    }
    let mut pages = vec![(format!("{}.1", cmd.get_name()), render(&cmd)?)];
    // clap's own `help` subcommand has nothing to say that keyclone(1) does not.
    let commands = cmd.get_subcommands();
    for sub in commands.filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        // Once the tree is built, a subcommand's display name is `keyclone-sub`: its page's.
        let name = sub.get_display_name().unwrap_or_else(|| sub.get_name());
        pages.push((format!("{name}.1"), render(sub)?));
    }
    for (name, page) in &pages {
        let path = dir.join(name);
        crate::files::replace(&path, page.as_bytes(), 0o644)?;
        ctx.ui.detail(&format!("wrote {}", path.display()));
    }
    ctx.ui.info(&format!(
        "wrote {} manual pages into {}: read them with `man -l {}/keyclone.1` (or `man keyclone` when the folder is on your MANPATH)",
        pages.len(),
        dir.display(),
        dir.display()
    ));
    Ok(())
}

fn render(cmd: &clap::Command) -> Result<String> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .map_err(|e| Error::internal("could not render the manual page").with_source(e))?;
    String::from_utf8(page)
        .map_err(|e| Error::internal("the manual page is not UTF-8").with_source(e))
}
