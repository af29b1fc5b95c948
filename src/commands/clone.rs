//! `keyclone clone`: a private repository onto this machine over SSH, with your key, after the
//! host is verified, into your per-user folder, with progress; nothing left behind on failure.

use std::path::PathBuf;
use std::time::Duration;

use crate::commands::{NetArgs, WorkspaceArgs};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::git::clone;
use crate::ops::access::connect_remote;
use crate::ops::host::approve_host;
use crate::ops::login_name;
use crate::ops::workspace::{CloneOptions, clone_into};
use crate::secrets::UnlockArgs;
use crate::workspace::{self, Choice};

/// Clone a private repository over SSH into your per-user folder.
///
/// The URL may be SSH (`git@host:owner/repo.git`, `ssh://git@host:port/...`) or the https URL
/// of a known provider, which is turned into its SSH form. The host key is verified first (as
/// `keyclone trust` does), the clone goes to ROOT/Users/USER/REPO unless DEST is given, and a
/// failed or interrupted clone leaves nothing behind.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  keyclone clone git@github.com:owner/repo.git\n  \
    keyclone clone https://dev.azure.com/fabrikam/Proj/_git/Repo\n  \
    keyclone clone git@gitlab.com:group/app.git --branch dev --depth 1\n  \
    keyclone clone git@github.com:owner/repo.git ~/scratch/repo --local"
)]
pub struct CloneArgs {
    /// The repository: an SSH URL, or the https URL of a known provider
    pub url: String,

    /// Where to clone to [default: ROOT/Users/USER/REPO]
    pub dest: Option<PathBuf>,

    #[command(flatten)]
    pub workspace: WorkspaceArgs,

    /// The private key [default: the provider's default key in the SSH directory]
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,

    #[command(flatten)]
    pub unlock: UnlockArgs,

    /// Check out this branch instead of the remote's default
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,

    /// A shallow clone with this many commits
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub depth: Option<u32>,

    /// Also clone the submodules (same key, same host checks)
    #[arg(long)]
    pub recurse_submodules: bool,

    /// Leave Git LFS files as pointers (fetch them later with `keyclone lfs pull`)
    #[arg(long)]
    pub no_lfs: bool,

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

pub fn run(ctx: &mut Ctx, args: CloneArgs) -> Result<()> {
    let remote = connect_remote(ctx, &args.url)?;
    let url = remote.url.clone();

    let home = ctx.env.home().unwrap_or_else(|| PathBuf::from("/"));
    let login = login_name(&ctx.env);
    let (root, user) = args.workspace.resolve(ctx);
    let dest_arg = args
        .dest
        .as_ref()
        .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()));
    let choice = Choice {
        dest: dest_arg.as_deref(),
        root: root.as_deref(),
        user: user.as_deref(),
        local: args.workspace.local,
    };
    let dest = workspace::destination(&choice, &home, &login, &url.repo_name())?;
    let occupant = workspace::Occupant::of(&dest.path);
    if occupant.in_the_way() {
        return Err(Error::refused(format!(
            "`{}` already exists and {}",
            dest.path.display(),
            occupant.why()
        ))
        .hint("give another destination as DEST, or move that folder away")
        .hint(format!(
            "to update an existing clone: `git -C {} pull`",
            dest.path.display()
        )));
    }

    clone::set_timeouts(
        Duration::from_secs(args.net.timeout),
        Duration::from_secs(args.net.stall_timeout),
    )?;
    let auth = remote.auth(ctx, args.key.as_deref(), &args.unlock)?;
    let (host_key, files) =
        approve_host(ctx, &url.endpoint(), Duration::from_secs(args.net.timeout))?;
    let opts = CloneOptions {
        branch: args.branch.clone(),
        depth: args.depth,
        recurse_submodules: args.recurse_submodules,
        lfs: crate::ops::lfs::LfsOptions {
            skip: args.no_lfs,
            filter: crate::lfs::attributes::Filter::new(&args.lfs_include, &args.lfs_exclude),
            timeout: Some(Duration::from_secs(args.net.timeout)),
            stall: Some(Duration::from_secs(args.net.stall_timeout)),
        },
    };
    let origin = remote.routed.then_some(args.url.as_str());
    let (summary, pulled) = clone_into(
        ctx,
        &url,
        &dest.path,
        &auth,
        (host_key, files),
        &opts,
        origin,
    )
    .map_err(|e| remote.explain(e, &auth))?;

    if ctx.ui.json() {
        // One JSON object: the error naming the LFS files left as pointers, or the result.
        if !pulled.failed.is_empty() {
            return crate::ops::lfs::report(ctx, &summary.path, &pulled);
        }
        return ctx.ui.json_value(&serde_json::json!({
            "url": url.original,
            "path": summary.path,
            "head": summary.head,
            "branch": summary.branch,
            "bytes": summary.bytes,
            "objects": summary.objects,
            "seconds": (summary.seconds * 1000.0).round() / 1000.0,
            "submodules": summary.submodules,
            "phases": summary.phases,
            "persistent_share": dest.persistent_share,
            "lfs": pulled,
        }));
    }
    let mut msg = format!(
        "Cloned {} into `{}`\n  branch {}, HEAD {}\n  {} received in {:.1} s",
        url.original,
        summary.path.display(),
        summary.branch.as_deref().unwrap_or("(detached)"),
        &summary.head.get(..12).unwrap_or(&summary.head),
        indicatif::HumanBytes(summary.bytes as u64),
        summary.seconds
    );
    ctx.ui.detail(&format!(
        "  receiving {:.1} s, resolving deltas {:.1} s, checkout {:.1} s",
        summary.phases.receive, summary.phases.resolve, summary.phases.checkout
    ));
    if !summary.submodules.is_empty() {
        msg.push_str(&format!(
            "\n  submodules: {}",
            summary.submodules.join(", ")
        ));
    }
    if dest.persistent_share {
        msg.push_str("\n  on the workspace's shared, persistent file system (kept when this compute instance is deleted)");
    } else if args.workspace.local && home.join(workspace::AZUREML_CODE_SHARE).is_dir() {
        msg.push_str(
            "\n  on this machine's local disk: fast, but lost when the compute instance is deleted",
        );
    }
    msg.push_str(&format!("\n\nNext: `cd {}`", summary.path.display()));
    ctx.ui.info(&msg);
    crate::ops::lfs::report(ctx, &summary.path, &pulled)
}
