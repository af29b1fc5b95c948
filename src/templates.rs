//! Text rendered from `templates/`: the per-provider key-upload steps (the `~/.ssh/config`
//! block is rendered by `ssh::config`). Templates are compiled into the binary; a variable missing at render time is an
//! error, never an empty gap or a leftover placeholder.

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::{Error, Result};

/// Every template, by name: (name, source).
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "upload/github",
        include_str!("../templates/upload/github.txt"),
    ),
    (
        "upload/gitlab",
        include_str!("../templates/upload/gitlab.txt"),
    ),
    (
        "upload/bitbucket",
        include_str!("../templates/upload/bitbucket.txt"),
    ),
    (
        "upload/azure-devops",
        include_str!("../templates/upload/azure-devops.txt"),
    ),
    (
        "upload/gitea",
        include_str!("../templates/upload/gitea.txt"),
    ),
    (
        "upload/plain",
        include_str!("../templates/upload/plain.txt"),
    ),
];

fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(false);
    for (name, source) in TEMPLATES {
        env.add_template(name, source).map_err(|e| {
            Error::internal(format!("template `{name}` does not compile")).with_source(e)
        })?;
    }
    Ok(env)
}

/// The values the upload templates use.
#[derive(Debug, Clone, Serialize)]
pub struct UploadVars {
    pub provider: String,
    pub host: String,
    pub upload_url: Option<String>,
    pub org: Option<String>,
    pub key_title: String,
    pub key_type: String,
    pub fingerprint: String,
}

/// Renders `templates/<name>.txt` with `vars`.
pub fn render(name: &str, vars: &impl Serialize) -> Result<String> {
    let env = environment()?;
    let tmpl = env
        .get_template(name)
        .map_err(|e| Error::internal(format!("no template `{name}`")).with_source(e))?;
    tmpl.render(vars).map_err(|e| {
        Error::internal(format!("template `{name}` could not be rendered")).with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Registry;

    fn vars(p: &crate::providers::Provider, org: Option<&str>) -> UploadVars {
        UploadVars {
            provider: p.name.clone(),
            host: p.ssh[0].host.clone(),
            upload_url: p.upload_url(org),
            org: org.map(str::to_owned),
            key_title: "me@box (2026-11-26)".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:abc".into(),
        }
    }

    #[test]
    fn every_upload_template_renders_for_every_provider_without_placeholders() {
        let config = crate::config::parse(
            "[provider.corp]\nkind = \"plain\"\nhost = \"git.corp\"\n[provider.tea]\nkind = \"forgejo\"\nhost = \"tea.example\"\n",
        )
        .unwrap();
        let reg = Registry::with_config(&config).unwrap();
        for p in reg.all() {
            for org in [None, Some("fabrikam")] {
                for (name, _) in TEMPLATES {
                    let text = render(name, &vars(p, org)).unwrap();
                    for leftover in ["{{", "}}", "{%", "%}", "none", "None", "undefined"] {
                        assert!(
                            !text.contains(leftover),
                            "{name} for {} has {leftover:?}:\n{text}",
                            p.id
                        );
                    }
                    assert!(text.contains("me@box (2026-11-26)"), "{name}: no title");
                }
                let own = render(&format!("upload/{}", p.kind.template()), &vars(p, org)).unwrap();
                if let Some(u) = p.upload_url(org) {
                    assert!(own.contains(&u), "{}: upload link missing:\n{own}", p.id);
                }
                assert!(own.contains(&p.name), "{}", p.id);
            }
        }
    }

    #[test]
    fn missing_variable_is_an_error_not_a_gap() {
        #[derive(Serialize)]
        struct Partial {
            provider: &'static str,
        }
        assert!(render("upload/github", &Partial { provider: "GitHub" }).is_err());
    }
}
