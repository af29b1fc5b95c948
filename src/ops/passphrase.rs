//! Where a passphrase may come from, and nowhere else: an interactive prompt (with
//! confirmation for new keys, through the UI's prompter), a file (`--passphrase-file`),
//! standard input (`--passphrase-stdin`), the `KEYCLONE_PASSPHRASE` variable, or (to unlock) the
//! keyring cache. Never the command line.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::env::{Env, KEYCLONE_PASSPHRASE};
use crate::error::{Error, ErrorKind, Result};
use crate::passphrase::{Passphrase, Unlock};
use crate::secrets::{
    NEW_PASSPHRASE_FLAGS, NewPassphraseArgs, UnlockArgs, keyring_passphrase, read_passphrase_stream,
};
use crate::ui::Ui;

/// How many times the interactive prompt lets the user retry a mismatch or an empty answer.
const PROMPT_TRIES: usize = 3;

/// Gets the passphrase for a new key. `None` means the user explicitly chose no passphrase
/// (`--no-passphrase`); a warning is printed for that.
pub fn new_passphrase(
    args: &NewPassphraseArgs,
    env: &Env,
    ui: &mut Ui,
    stdin: &mut dyn Read,
) -> Result<Option<Passphrase>> {
    if args.no_passphrase {
        ui.warn(
            "creating the key WITHOUT a passphrase (`--no-passphrase`): anyone who can read the \
             file can use it. On a shared machine, prefer a passphrase.",
        );
        return Ok(None);
    }
    let from = |p: Passphrase, source: &str| -> Result<Option<Passphrase>> {
        if p.is_empty() {
            return Err(Error::usage(format!("the passphrase from {source} is empty"))
                .hint("give a non-empty passphrase, or pass `--no-passphrase` to create a key without one (not recommended)"));
        }
        Ok(Some(p))
    };
    if let Some(path) = &args.passphrase_file {
        let p = read_passphrase_file(path, ui)?;
        return from(p, &format!("`{}`", path.display()));
    }
    if args.passphrase_stdin {
        let p = read_passphrase_stream(stdin, "standard input")?;
        return from(p, "standard input");
    }
    if let Some(v) = env.get(KEYCLONE_PASSPHRASE) {
        let s = v
            .to_str()
            .ok_or_else(|| Error::usage(format!("`{KEYCLONE_PASSPHRASE}` is not valid UTF-8")))?;
        return from(
            Passphrase::new(s.to_owned()),
            &format!("`{KEYCLONE_PASSPHRASE}`"),
        );
    }
    if !ui.interactive() {
        return Err(Error::new(
            ErrorKind::NeedsInput,
            "a passphrase for the new key is needed, and there is no terminal to ask on",
        )
        .hint(format!("pass one of {NEW_PASSPHRASE_FLAGS}")));
    }
    prompt_new_passphrase(ui).map(Some)
}

/// Asks twice; retries on an empty answer or a mismatch, then gives up with an error.
pub fn prompt_new_passphrase(ui: &mut Ui) -> Result<Passphrase> {
    for attempt in 1..=PROMPT_TRIES {
        let first = ui.prompter().password("Passphrase for the new key")?;
        if first.is_empty() {
            ui.warn("the passphrase is empty. Type one (it protects the key if the file is copied), or press Ctrl-C and use `--no-passphrase`.");
            continue;
        }
        let second = ui.prompter().password("Same passphrase again")?;
        if first.expose() == second.expose() {
            return Ok(first);
        }
        if attempt < PROMPT_TRIES {
            ui.warn("the two passphrases differ; try again.");
        }
    }
    Err(Error::usage(format!(
        "no passphrase was set: the answers were empty or did not match {PROMPT_TRIES} times; nothing was written"
    ))
    .hint("run the same command again"))
}

/// Reads a passphrase file: must exist and be a regular file (checked on the open file, like
/// every file keyclone reads: `/dev/zero` or a FIFO is refused); a file readable by others
/// gives a warning.
pub fn read_passphrase_file(path: &Path, ui: &mut Ui) -> Result<Passphrase> {
    let (bytes, meta) =
        crate::files::read_bounded_meta(path, crate::files::PASSPHRASE_LIMIT, "passphrase file")
            .map_err(|e| e.hint("check the path given to `--passphrase-file`"))?;
    let bytes = Zeroizing::new(bytes);
    if meta.permissions().mode() & 0o044 != 0 {
        ui.warn(&format!(
            "the passphrase file `{}` can be read by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        ));
    }
    read_passphrase_stream(&mut bytes.as_slice(), &format!("`{}`", path.display()))
}

/// `KEYCLONE_PASSPHRASE`, the keyring cache, or a prompt (three tries). Every passphrase is
/// checked by decrypting the key, so a wrong one is caught before any connection.
pub fn unlock_key(
    path: &Path,
    key: &ssh_key::PrivateKey,
    agent_holds_key: bool,
    args: &UnlockArgs,
    env: &Env,
    ui: &mut Ui,
) -> Result<Unlock> {
    if agent_holds_key {
        ui.detail("ssh-agent holds the key: no passphrase needed");
        return Ok(Unlock::Agent);
    }
    if !key.is_encrypted() {
        return Ok(Unlock::Plain);
    }
    let works = |p: &Passphrase| key.decrypt(p.expose().as_bytes()).is_ok();
    let wrong = |source: &str| {
        Error::new(
            ErrorKind::Auth,
            format!(
                "the passphrase from {source} does not decrypt `{}`",
                path.display()
            ),
        )
        .hint("check which key the passphrase belongs to (`--key PATH`), or fix the passphrase")
    };
    if let Some(file) = &args.passphrase_file {
        let p = read_passphrase_file(file, ui)?;
        return if works(&p) {
            Ok(Unlock::Passphrase(p))
        } else {
            Err(wrong(&format!("`{}`", file.display())))
        };
    }
    if let Some(v) = env.get(KEYCLONE_PASSPHRASE) {
        let p = Passphrase::new(v.to_string_lossy().into_owned());
        return if works(&p) {
            Ok(Unlock::Passphrase(p))
        } else {
            Err(wrong(&format!("`{KEYCLONE_PASSPHRASE}`")))
        };
    }
    if let Some(p) = keyring_passphrase(env, path) {
        if works(&p) {
            ui.detail("using the passphrase cached in the keyring");
            return Ok(Unlock::Passphrase(p));
        }
        ui.warn("the passphrase cached in the keyring no longer decrypts the key; ignoring it");
    }
    if !ui.interactive() {
        return Err(Error::new(
            ErrorKind::NeedsInput,
            format!("`{}` is protected by a passphrase, and there is no terminal to ask for it", path.display()),
        )
        .hint(format!("pass `--passphrase-file FILE` or set `{KEYCLONE_PASSPHRASE}`, or add the key to ssh-agent (`ssh-add {}`)", path.display())));
    }
    for attempt in 1..=PROMPT_TRIES {
        let p = ui
            .prompter()
            .password(&format!("Passphrase for {}", path.display()))?;
        if works(&p) {
            return Ok(Unlock::Passphrase(p));
        }
        if attempt < PROMPT_TRIES {
            ui.warn("wrong passphrase; try again");
        }
    }
    Err(Error::new(
        ErrorKind::Auth,
        format!("wrong passphrase for `{}` ({PROMPT_TRIES} tries); nothing was changed", path.display()),
    )
    .hint("if you forgot it, the key cannot be recovered: create a new one with `keyclone keygen` and add it to your provider"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::ui::prompt::{Answer, ScriptedPrompter};

    fn ui_with(answers: Vec<Answer>) -> Ui {
        Ui::captured(Box::new(ScriptedPrompter::new(answers)), true)
    }

    #[test]
    fn mismatch_then_match_succeeds_after_a_warning() {
        let mut ui = ui_with(vec![
            Answer::Password("one".into()),
            Answer::Password("two".into()),
            Answer::Password("good pass".into()),
            Answer::Password("good pass".into()),
        ]);
        let p = prompt_new_passphrase(&mut ui).unwrap();
        assert_eq!(p.expose(), "good pass");
        assert!(ui.captured_stderr().contains("differ"));
        assert!(!ui.captured_stderr().contains("good pass"));
    }

    #[test]
    fn three_mismatches_give_up_with_an_error() {
        let mut answers = Vec::new();
        for i in 0..3 {
            answers.push(Answer::Password(format!("a{i}")));
            answers.push(Answer::Password(format!("b{i}")));
        }
        let mut ui = ui_with(answers);
        let e = prompt_new_passphrase(&mut ui).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(e.message().contains("did not match"));
    }

    #[test]
    fn empty_answer_is_asked_again() {
        let mut ui = ui_with(vec![
            Answer::Password(String::new()),
            Answer::Password("x1".into()),
            Answer::Password("x1".into()),
        ]);
        assert_eq!(prompt_new_passphrase(&mut ui).unwrap().expose(), "x1");
        assert!(ui.captured_stderr().contains("empty"));
    }

    #[test]
    fn non_interactive_without_source_names_the_flags() {
        let mut ui = Ui::captured(Box::new(ScriptedPrompter::new(vec![])), false);
        let e = new_passphrase(
            &NewPassphraseArgs::default(),
            &Env::default(),
            &mut ui,
            &mut &b""[..],
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NeedsInput);
        assert!(e.hints()[0].contains("--passphrase-file"));
        assert!(e.hints()[0].contains("--no-passphrase"));
    }

    #[test]
    fn env_source_is_used_and_empty_env_is_refused() {
        let mut ui = Ui::captured(Box::new(ScriptedPrompter::new(vec![])), false);
        let env = Env::from_pairs([(KEYCLONE_PASSPHRASE, "from env")]);
        let p =
            new_passphrase(&NewPassphraseArgs::default(), &env, &mut ui, &mut &b""[..]).unwrap();
        assert_eq!(p.unwrap().expose(), "from env");

        let args = NewPassphraseArgs {
            passphrase_stdin: true,
            ..Default::default()
        };
        let e = new_passphrase(&args, &Env::default(), &mut ui, &mut &b"\n"[..]).unwrap_err();
        assert!(e.message().contains("empty"));
    }
}
