//! `keyclone lfs pull`: fetches the Git LFS content of an existing clone (one whose clone left
//! pointers, or was made with `--no-lfs`), over the same verified host and key as `clone`.

use std::path::PathBuf;
use std::time::Duration;

use crate::commands::NetArgs;
use crate::context::Ctx;
use crate::error::Result;
use crate::lfs::attributes::Filter;
use crate::ops::access::connect_remote;
use crate::ops::host::approve_host;
use crate::ops::lfs::{LfsOptions, origin_of, pull, report};
use crate::secrets::UnlockArgs;

/// Git LFS content for a clone.
#[derive(Debug, Clone, clap::Args)]
pub struct LfsArgs {
    #[command(subcommand)]
    pub action: LfsAction,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum LfsAction {
    Pull(PullArgs),
}

/// Fetch the Git LFS files of a clone that are still pointers.
///
/// Reads `origin` of the clone, verifies its host as `keyclone clone` does, asks the server's
/// LFS service over SSH (the pure SSH protocol, `git-lfs-transfer`, when the server offers
/// it, else `git-lfs-authenticate` and HTTPS), and downloads what is missing: objects already
/// in `.git/lfs/objects` (an interrupted run) are not fetched again.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone lfs pull\n  \
    keyclone lfs pull ~/code/Users/ada/models --lfs-include 'weights/*.bin'")]
pub struct PullArgs {
    /// The clone [default: the current folder]
    pub path: Option<PathBuf>,

    /// The private key [default: the provider's default key in the SSH directory]
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,

    #[command(flatten)]
    pub unlock: UnlockArgs,

    /// Fetch only the LFS files matching these patterns (comma-separated, like
    /// `lfs.fetchinclude`)
    #[arg(long, value_name = "PATTERNS")]
    pub lfs_include: Vec<String>,

    /// Do not fetch the LFS files matching these patterns (like `lfs.fetchexclude`)
    #[arg(long, value_name = "PATTERNS")]
    pub lfs_exclude: Vec<String>,

    #[command(flatten)]
    pub net: NetArgs,
}

pub fn run(ctx: &mut Ctx, args: LfsArgs) -> Result<()> {
    let LfsAction::Pull(args) = args.action;
    let start = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let (workdir, origin) = origin_of(&start)?;
    let remote = connect_remote(ctx, &origin)?;
    let auth = remote.auth(ctx, args.key.as_deref(), &args.unlock)?;
    let url = &remote.url;
    let timeout = Duration::from_secs(args.net.timeout);
    let (host_key, _files) = approve_host(ctx, &url.endpoint(), timeout)?;
    let opts = LfsOptions {
        skip: false,
        filter: Filter::new(&args.lfs_include, &args.lfs_exclude),
        timeout: Some(timeout),
        stall: Some(Duration::from_secs(args.net.stall_timeout)),
    };
    let bar;
    let quiet = crate::lfs::Quiet;
    let show = ctx.ui.interactive() && !ctx.ui.json();
    let progress: &dyn crate::lfs::LfsProgress = if show {
        bar = crate::ui::progress::LfsBar::new();
        &bar
    } else {
        &quiet
    };
    let pulled = pull(&workdir, url, &auth, &host_key, &opts, progress)
        .map_err(|e| remote.explain(e, &auth))?;
    if ctx.ui.json() {
        // One JSON object: the error naming the files left as pointers, or the result.
        if pulled.failed.is_empty() {
            ctx.ui.json_value(&serde_json::json!({
                "path": workdir,
                "lfs": pulled,
            }))?;
        }
    } else if pulled.fetched == 0 && pulled.failed.is_empty() && pulled.skipped.is_empty() {
        ctx.ui.info(&format!(
            "Nothing to fetch: {} LFS file{} already in place.",
            pulled.present,
            if pulled.present == 1 { " is" } else { "s are" }
        ));
    }
    report(ctx, &workdir, &pulled)
}
