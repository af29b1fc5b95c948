//! git's identity for commits (`user.name`, `user.email` in `~/.gitconfig`): set by the wizard
//! when none is set, from `--git-name`/`--git-email` or asked through the prompter.

use crate::context::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::ops::survey::Survey;

/// Sets what git lacks (`s` says what it has): `name` and `email` as given, else asked (without
/// a terminal: left unset, with the command to set them). Returns what was done.
pub(crate) fn set_identity(
    ctx: &mut Ctx,
    name: Option<String>,
    email: Option<String>,
    s: &Survey,
    offered: Option<(&crate::providers::api::Account, String)>,
) -> Result<String> {
    if s.git_name.is_some() && s.git_email.is_some() {
        return Ok("already set".into());
    }
    let (mut name, mut email) = (name, email);
    // The provider's API gave the account's name and e-mail: one question instead of three.
    if name.is_none()
        && email.is_none()
        && ctx.ui.interactive()
        && let Some((account, provider)) = offered
    {
        let want_name = s.git_name.is_none().then(|| account.name.clone()).flatten();
        let want_email = s
            .git_email
            .is_none()
            .then(|| account.email.clone())
            .flatten();
        let usable = (s.git_name.is_some() || want_name.is_some())
            && (s.git_email.is_some() || want_email.is_some());
        let shown = |v: &Option<String>| v.as_deref().map(crate::names::shown);
        if usable
            && ctx.ui.prompter().confirm(
                &format!(
                    "git has no name and email for your commits yet. Use {} from your {provider} account?",
                    [shown(&want_name), shown(&want_email).map(|e| format!("<{e}>"))]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                true,
            )?
        {
            name = want_name;
            email = want_email;
        }
    }
    if name.is_none() && email.is_none() {
        if !ctx.ui.interactive() {
            ctx.ui.info("git has no user.name/user.email yet: commits will ask for them (`git config --global user.name \"Your Name\"`, or pass `--git-name` and `--git-email`).");
            return Ok("not set".into());
        }
        if !ctx.ui.prompter().confirm(
            "git has no name and email for your commits yet. Set them now?",
            true,
        )? {
            return Ok("not set".into());
        }
        if s.git_name.is_none() {
            name = Some(ctx.ui.prompter().input("Your name for commits", None)?);
        }
        if s.git_email.is_none() {
            email = Some(ctx.ui.prompter().input("Your email for commits", None)?);
        }
    }
    let Some(home) = ctx.env.home() else {
        return Ok("not set (no HOME)".into());
    };
    let path = home.join(".gitconfig");
    let mut cfg = git2::Config::open(&path).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("could not open `{}`", path.display()),
        )
        .hint(e.message().to_owned())
    })?;
    let mut set = Vec::new();
    for (k, v) in [("user.name", name), ("user.email", email)] {
        if let Some(v) = v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            if v.chars().any(char::is_control) {
                return Err(Error::usage(format!(
                    "the {k} may not contain control characters"
                )));
            }
            cfg.set_str(k, &v).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("could not write `{k}` to `{}`", path.display()),
                )
                .hint(e.message().to_owned())
            })?;
            set.push(k);
        }
    }
    if set.is_empty() {
        return Ok("not set".into());
    }
    ctx.ui.info(&format!(
        "Set {} in `{}`.",
        set.join(" and "),
        path.display()
    ));
    Ok(format!("set {}", set.join(", ")))
}
