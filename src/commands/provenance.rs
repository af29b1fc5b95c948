//! `keyclone provenance`: the Git properties of a training job, for Azure ML and MLflow.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use sha2::Digest;

use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
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
    /// The Azure ML job properties both SDKs send (v1's `azureml.git.*`, v2's
    /// `mlflow.source.git.{repoURL,branch,commit}`), as JSON to set as `job.properties`
    AzuremlJob,
    /// `export MLFLOW_RUN_CONTEXT='{...}'`: the `mlflow.source.git.*` tags as MLflow reads them
    /// from its environment; `eval` it before the run starts
    MlflowEnv,
}

/// The keys of `--format azureml-job`: everything Azure ML SDK v1 (`azureml-core`) and v2
/// (`azure-ai-ml`) send as job properties, so the job carries both families whichever SDK (or
/// studio page) reads it.
pub const AZUREML_JOB_KEYS: [&str; 9] = [
    "azureml.git.repository_uri",
    "azureml.git.branch",
    "azureml.git.commit",
    "azureml.git.dirty",
    "azureml.git.build_id",
    "azureml.git.build_uri",
    "mlflow.source.git.repoURL",
    "mlflow.source.git.branch",
    "mlflow.source.git.commit",
];

/// MLflow refuses a tag value longer than this (`MAX_TAG_VAL_LENGTH`).
pub const MLFLOW_TAG_CAP: usize = 8000;

/// The environment variable MLflow reads a JSON object of run tags from.
const MLFLOW_RUN_CONTEXT: &str = "MLFLOW_RUN_CONTEXT";

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
    keyclone provenance --format azureml-job     # job.properties for Azure ML SDK v1 and v2\n  \
    eval \"$(keyclone provenance --format mlflow-env)\"   # then start the MLflow run\n  \
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
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = seconds, allow_negative_numbers = true)]
    pub deadline: f64,

    /// Read a repository owned by another user (bypasses git's safe.directory check)
    #[arg(long)]
    pub trust_repo_owner: bool,

    /// Write the uncommitted diff (tracked files; binary files and secret-looking paths left
    /// out) to FILE and record its sha256
    #[arg(long, value_name = "FILE")]
    pub patch: Option<PathBuf>,

    /// Also record `provenance.git.describe` (`git describe --tags --always --dirty`): a walk
    /// of the history back past ten tags, as costly as `git describe` itself (0.25 s of CPU on
    /// git/git), so it is off unless asked for. `--format json` only
    #[arg(long)]
    pub describe: bool,

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

/// The properties named in `keys`, as JSON strings.
fn pick_keys(
    props: &BTreeMap<String, String>,
    keys: &[&str],
) -> serde_json::Map<String, serde_json::Value> {
    keys.iter()
        .filter_map(|k| {
            props
                .get(*k)
                .map(|v| ((*k).to_owned(), serde_json::Value::String(v.clone())))
        })
        .collect()
}

/// The `export MLFLOW_RUN_CONTEXT=...` line: the `mlflow.source.git.*` tags as one JSON object
/// (values are strings; a value over MLflow's tag cap is left out, with a note, since MLflow
/// would refuse the whole run).
fn mlflow_env_line(props: &BTreeMap<String, String>, notes: &mut Vec<String>) -> String {
    let mut tags = serde_json::Map::new();
    for (k, v) in props.range("mlflow.source.git.".to_owned()..) {
        if !k.starts_with("mlflow.source.git.") {
            break;
        }
        if v.chars().count() > MLFLOW_TAG_CAP {
            notes.push(format!(
                "`{k}` is longer than MLflow's {MLFLOW_TAG_CAP}-character tag cap: left out"
            ));
            continue;
        }
        tags.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    let json = serde_json::Value::Object(tags).to_string();
    format!("export {MLFLOW_RUN_CONTEXT}={}", shell_quote(&json))
}

pub fn run(ctx: &mut Ctx, args: ProvenanceArgs) -> Result<()> {
    let path = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let mut opts = Options::new(std::path::absolute(&path).unwrap_or(path));
    opts.scope = args.scope;
    // `seconds` let only finite, non-negative values through: `from_secs_f64` cannot panic.
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
    if args.describe && !opts.extras {
        return Err(Error::new(
            ErrorKind::Usage,
            "--describe adds `provenance.git.describe`, which only `--format json` prints",
        )
        .hint("run `keyclone provenance --format json --describe`, or drop --describe"));
    }
    opts.describe = args.describe;
    // This process makes no TLS connection: OpenSSL's configuration and error strings are
    // not read (a tenth of the capture's instructions).
    provenance::skip_openssl_setup();
    let mut p = provenance::capture_within(&opts, &ctx.env, Duration::from_secs(1))?;
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
    let mlflow_env =
        (format == Format::MlflowEnv).then(|| mlflow_env_line(&p.properties, &mut p.notes));
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
        Format::AzuremlJob => ctx.ui.json_value(&serde_json::Value::Object(pick_keys(
            &p.properties,
            &AZUREML_JOB_KEYS,
        ))),
        Format::MlflowEnv => ctx.ui.data(mlflow_env.as_deref().unwrap_or_default()),
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

/// `--deadline`'s parser: a finite number of seconds, zero or more (`nan`, `inf` and negative
/// values are usage errors, not a panic or a silent clamp).
fn seconds(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(_) => Err(format!(
            "`{s}` is not a finite number of seconds, zero or more (e.g. 10)"
        )),
        Err(_) => Err(format!("`{s}` is not a number of seconds (e.g. 10)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// What a POSIX shell makes of the line's single-quoted value.
    fn unquote(line: &str) -> String {
        let v = line
            .strip_prefix("export MLFLOW_RUN_CONTEXT=")
            .unwrap_or_else(|| panic!("not an export line: {line}"));
        v.strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap()
            .replace("'\\''", "'")
    }

    #[test]
    fn mlflow_env_holds_only_mlflow_tags_as_strings_and_quotes_for_the_shell() {
        let p = props(&[
            ("azureml.git.branch", "it's"),
            ("mlflow.source.git.branch", "it's"),
            ("mlflow.source.git.commit", "abc"),
            ("mlflow.source.git.dirty", "false"),
            ("provenance.git.untracked", "0"),
        ]);
        let mut notes = Vec::new();
        let line = mlflow_env_line(&p, &mut notes);
        let v: serde_json::Value = serde_json::from_str(&unquote(&line)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "mlflow.source.git.branch": "it's",
                "mlflow.source.git.commit": "abc",
                "mlflow.source.git.dirty": "false",
            })
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn mlflow_env_leaves_out_a_value_over_the_tag_cap_with_a_note() {
        let at_cap = "u".repeat(MLFLOW_TAG_CAP);
        let over = "b".repeat(MLFLOW_TAG_CAP + 1);
        let p = props(&[
            ("mlflow.source.git.repoURL", &at_cap),
            ("mlflow.source.git.branch", &over),
        ]);
        let mut notes = Vec::new();
        let v: serde_json::Value =
            serde_json::from_str(&unquote(&mlflow_env_line(&p, &mut notes))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({ "mlflow.source.git.repoURL": at_cap })
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("mlflow.source.git.branch") && notes[0].contains("8000"));
        // Nothing known: an empty object, still valid for MLflow.
        let line = mlflow_env_line(&BTreeMap::new(), &mut notes);
        assert_eq!(line, "export MLFLOW_RUN_CONTEXT='{}'");
    }

    #[test]
    fn azureml_job_keys_are_both_sdks_families_and_nothing_else() {
        let mut pairs: Vec<(&str, &str)> = AZUREML_JOB_KEYS.iter().map(|k| (*k, "v")).collect();
        pairs.push(("mlflow.source.git.dirty", "true"));
        pairs.push(("provenance.git.describe", "v1"));
        let picked = pick_keys(&props(&pairs), &AZUREML_JOB_KEYS);
        let mut keys: Vec<&str> = picked.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = AZUREML_JOB_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want);
        // A key that is not known is left out, not emitted empty.
        let picked = pick_keys(&props(&[("azureml.git.dirty", "True")]), &AZUREML_JOB_KEYS);
        assert_eq!(picked.len(), 1);
    }
}
