//! `keyclone provenance`: the Git properties of a training job, for Azure ML and MLflow.

use std::path::PathBuf;
use std::time::Duration;

use sha2::Digest;

use crate::context::Ctx;
use crate::error::Result;
use crate::files;
use crate::provenance::{self, Options, Scope};

/// How to print the properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Every property as one flat JSON object (Azure ML, MLflow and `provenance.git.*` names)
    Json,
    /// `export AZUREML_GIT_*=...` lines: `eval` them before submitting with the Azure ML SDK
    Env,
    /// Only the `azureml.git.*` properties (JSON)
    Azureml,
    /// Only the `mlflow.source.git.*` tags (JSON)
    Mlflow,
}

/// Record the Git state of a training job (repository URL, branch, commit, dirty).
///
/// The properties Azure ML records (`azureml.git.*`) and MLflow's tags
/// (`mlflow.source.git.*`), read through libgit2 without the git binary, plus what they miss
/// (`provenance.git.*`: describe, upstream and unpushed commits, untracked count, submodules).
/// Credentials in the remote URL are removed; a value that cannot be known is left out, never
/// printed empty. `AZUREML_GIT_*` variables override field by field, as in Azure ML;
/// `KEYCLONE_PROVENANCE=off` turns capture off.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  keyclone provenance\n  \
    keyclone provenance src/ --format mlflow\n  \
    eval \"$(keyclone provenance --format env)\"   # then submit with the Azure ML SDK\n  \
    keyclone provenance --patch outputs/diff.patch")]
pub struct ProvenanceArgs {
    /// The job's code directory [default: the current directory]
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,

    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,

    /// Which changes count as dirty: below the code directory, or anywhere in the repository
    #[arg(long, value_enum, default_value = "code")]
    pub scope: Scope,

    /// Seconds the whole capture may take (status scan, history walks); what is not known by
    /// then is reported as unknown
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub deadline: f64,

    /// Read a repository owned by another user (bypasses git's safe.directory check)
    #[arg(long)]
    pub trust_repo_owner: bool,

    /// Write the uncommitted diff (tracked files; binary files and secret-looking paths left
    /// out) to FILE and record its sha256
    #[arg(long, value_name = "FILE")]
    pub patch: Option<PathBuf>,

    /// The patch's size cap in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 10 * 1024 * 1024)]
    pub patch_cap: usize,
}

impl Format {
    /// The format prints the `provenance.git.*` extras (describe, upstream, fingerprint, ...).
    fn prints_extras(self) -> bool {
        matches!(self, Format::Json)
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub fn run(ctx: &mut Ctx, args: ProvenanceArgs) -> Result<()> {
    let path = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let mut opts = Options::new(std::path::absolute(&path).unwrap_or(path));
    opts.scope = args.scope;
    opts.deadline = Duration::from_secs_f64(args.deadline.clamp(0.001, 3600.0));
    opts.trust_repo_owner = args.trust_repo_owner;
    opts.patch = args.patch.is_some();
    opts.patch_cap = args.patch_cap;
    opts.global_attributes = crate::ops::workspace::global_git_attributes(&ctx.env);
    let format = if ctx.ui.json() {
        Format::Json
    } else {
        args.format
    };
    // Only the formats that print `provenance.git.*` pay for its history walks.
    opts.extras = format.prints_extras();
    let mut p = provenance::capture(&opts, &ctx.env)?;
    if let (Some(file), Some(bytes)) = (&args.patch, p.patch.take()) {
        files::replace(file, &bytes, 0o600)?;
        let digest = sha2::Sha256::digest(&bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        p.properties
            .insert("provenance.git.patch_sha256".into(), hex);
        p.properties
            .insert("provenance.git.patch_bytes".into(), bytes.len().to_string());
        p.notes.push(format!(
            "wrote the uncommitted diff to `{}`",
            file.display()
        ));
    }
    for n in &p.notes {
        ctx.ui.info(&format!("provenance: {n}"));
    }
    let pick = |prefix: &str| -> serde_json::Map<String, serde_json::Value> {
        p.properties
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect()
    };
    match format {
        Format::Json => ctx.ui.json_value(&serde_json::Value::Object(pick(""))),
        Format::Azureml => ctx
            .ui
            .json_value(&serde_json::Value::Object(pick("azureml.git."))),
        Format::Mlflow => ctx
            .ui
            .json_value(&serde_json::Value::Object(pick("mlflow.source.git."))),
        Format::Env => {
            let map = [
                (
                    "azureml.git.repository_uri",
                    provenance::AZUREML_GIT_REPOSITORY_URI,
                ),
                ("azureml.git.branch", provenance::AZUREML_GIT_BRANCH),
                ("azureml.git.commit", provenance::AZUREML_GIT_COMMIT),
                ("azureml.git.dirty", provenance::AZUREML_GIT_DIRTY),
                ("azureml.git.build_id", provenance::AZUREML_GIT_BUILD_ID),
                ("azureml.git.build_uri", provenance::AZUREML_GIT_BUILD_URI),
            ];
            for (key, var) in map {
                if let Some(v) = p.properties.get(key) {
                    let v = if key == "azureml.git.dirty" {
                        v.to_ascii_lowercase()
                    } else {
                        v.clone()
                    };
                    ctx.ui.data(&format!("export {var}={}", shell_quote(&v)))?;
                }
            }
            Ok(())
        }
    }
}
