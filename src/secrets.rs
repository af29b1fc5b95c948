//! Where a passphrase may come from, and nowhere else: an interactive prompt (with
//! confirmation for new keys), a file (`--passphrase-file`), standard input
//! (`--passphrase-stdin`) or the `KEYCLONE_PASSPHRASE` variable. Never the command line.
//!
//! A [`Passphrase`] is zeroized when dropped and never printed: its `Debug` is redacted.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::env::{Env, KEYCLONE_PASSPHRASE};
use crate::error::{Error, ErrorKind, Result};
use crate::ui::Ui;

/// Keeps the secrets this process may hold (passphrases, decrypted keys) out of core dumps and
/// away from other processes of the same user: the process is made non-dumpable
/// (`PR_SET_DUMPABLE` 0: no core file, no `ptrace` attach, `/proc/PID/mem` closed) and its core
/// size limit set to 0. Called first thing by the binary; returns what could not be done.
pub fn protect_process() -> std::result::Result<(), String> {
    use nix::sys::resource::{Resource, setrlimit};
    let dumpable = nix::sys::prctl::set_dumpable(false)
        .map_err(|e| format!("could not make the process non-dumpable: {e}"));
    let core = setrlimit(Resource::RLIMIT_CORE, 0, 0)
        .map_err(|e| format!("could not turn core dumps off: {e}"));
    dumpable.and(core)
}

/// A secret string, wiped from memory on drop.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    pub fn new(s: String) -> Self {
        Passphrase(Zeroizing::new(s))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// The flags that say where a new key's passphrase comes from (shared by keygen, rotate, init).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NewPassphraseArgs {
    /// Read the passphrase from FILE (first line; the file should be readable only by you)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["passphrase_stdin", "no_passphrase"])]
    pub passphrase_file: Option<PathBuf>,

    /// Read the passphrase from standard input (everything up to the first newline)
    #[arg(long, conflicts_with = "no_passphrase")]
    pub passphrase_stdin: bool,

    /// Create the key WITHOUT a passphrase: anyone who copies the file can use it
    #[arg(long)]
    pub no_passphrase: bool,
}

/// The flag names, for messages that must tell a script what to pass.
pub const NEW_PASSPHRASE_FLAGS: &str =
    "`--passphrase-file FILE`, `--passphrase-stdin`, `KEYCLONE_PASSPHRASE`, or `--no-passphrase`";

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

/// Reads a passphrase from a stream: the text up to the first newline (`\n` or `\r\n`).
/// Anything after that first line must be empty, so a wrong file is not silently truncated; a
/// stream longer than 64 KiB is refused, not cut. The buffer is allocated once (never
/// reallocated, so no copy of the secret is left in freed memory) and wiped when dropped.
pub fn read_passphrase_stream(r: &mut dyn Read, source: &str) -> Result<Passphrase> {
    let limit = crate::files::PASSPHRASE_LIMIT;
    let mut buf = Zeroizing::new(Vec::with_capacity(limit as usize + 1));
    r.take(limit + 1).read_to_end(&mut buf).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("could not read the passphrase from {source}"),
        )
        .with_source(e)
    })?;
    if buf.len() as u64 > limit {
        return Err(Error::usage(format!(
            "the passphrase from {source} is more than 64 KiB long, so it is not a passphrase"
        ))
        .hint("put only the passphrase on the first line"));
    }
    let text = std::str::from_utf8(&buf)
        .map_err(|_| Error::usage(format!("the passphrase from {source} is not valid UTF-8")))?;
    let (line, rest) = match text.find('\n') {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    if !rest.trim().is_empty() {
        return Err(Error::usage(format!(
            "the passphrase from {source} has more than one line"
        ))
        .hint("put only the passphrase on the first line"));
    }
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(Passphrase::new(line.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::prompt::{Answer, ScriptedPrompter};

    fn ui_with(answers: Vec<Answer>) -> Ui {
        Ui::captured(Box::new(ScriptedPrompter::new(answers)), true)
    }

    #[test]
    fn the_process_is_not_dumpable_and_has_no_core_limit_after_protection() {
        protect_process().unwrap();
        assert!(!nix::sys::prctl::get_dumpable().unwrap());
        assert_eq!(
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE).unwrap(),
            (0, 0)
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let p = Passphrase::new("hunter2".into());
        assert_eq!(format!("{p:?}"), "Passphrase(<redacted>)");
    }

    #[test]
    fn stream_takes_first_line_and_strips_crlf() {
        let p = read_passphrase_stream(&mut &b"s3cret pass\r\n"[..], "x").unwrap();
        assert_eq!(p.expose(), "s3cret pass");
        let p = read_passphrase_stream(&mut &b"nonl"[..], "x").unwrap();
        assert_eq!(p.expose(), "nonl");
    }

    #[test]
    fn a_stream_longer_than_the_limit_is_refused_not_cut() {
        let long = vec![b'a'; 70 * 1024];
        let e = read_passphrase_stream(&mut &long[..], "standard input").unwrap_err();
        assert!(e.message().contains("more than 64 KiB"), "{}", e.message());
        let e = read_passphrase_stream(&mut std::io::repeat(b'a'), "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
    }

    #[test]
    fn stream_with_two_lines_is_refused() {
        let e = read_passphrase_stream(&mut &b"a\nb\n"[..], "x").unwrap_err();
        assert!(e.message().contains("more than one line"));
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

/// The flags that unlock an existing key (clone, test, rotate).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UnlockArgs {
    /// Read the key's passphrase from FILE (first line)
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// How an existing key will be used.
#[derive(Debug, Clone)]
pub enum Unlock {
    /// ssh-agent holds the key: no passphrase needed.
    Agent,
    /// The key file is not encrypted.
    Plain,
    /// The passphrase that decrypts the key (checked).
    Passphrase(Passphrase),
}

/// The service name of keyclone's entries in the system keyring.
pub const KEYRING_SERVICE: &str = "keyclone";

/// The keyring account name for a key: its absolute path.
pub fn keyring_account(key_path: &Path) -> String {
    key_path.display().to_string()
}

/// A passphrase cached in the system keyring for this key, if any backend works here and holds
/// one. The keyring is a convenience: every failure means "no cached passphrase".
pub fn keyring_passphrase(key_path: &Path) -> Option<Passphrase> {
    let entry = keyring::Entry::new(KEYRING_SERVICE, &keyring_account(key_path)).ok()?;
    entry.get_password().ok().map(Passphrase::new)
}

/// Finds what unlocks `key` (at `path`): the agent, no encryption, `--passphrase-file`,
/// Stores the passphrase of `key_path` in the system keyring and reads it back: `Err` says
/// why nothing usable was stored (no session keyring, no D-Bus service, ...).
pub fn keyring_store(key_path: &Path, p: &Passphrase) -> std::result::Result<(), String> {
    let entry = keyring::Entry::new(KEYRING_SERVICE, &keyring_account(key_path))
        .map_err(|e| e.to_string())?;
    entry.set_password(p.expose()).map_err(|e| e.to_string())?;
    match entry.get_password() {
        Ok(back) if back == p.expose() => Ok(()),
        Ok(_) => Err("the keyring returned a different value than was stored".into()),
        Err(e) => Err(format!("the keyring did not keep the value: {e}")),
    }
}

/// Removes a cached passphrase; `true` if one was there.
pub fn keyring_forget(key_path: &Path) -> bool {
    keyring::Entry::new(KEYRING_SERVICE, &keyring_account(key_path))
        .and_then(|e| e.delete_credential())
        .is_ok()
}

/// Whether a keyring backend works here: stores, reads and deletes a probe entry.
pub fn keyring_works() -> std::result::Result<(), String> {
    let probe = Path::new("keyclone-probe");
    let p = Passphrase::new("probe".into());
    let r = keyring_store(probe, &p);
    keyring_forget(probe);
    r
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
    if let Some(p) = keyring_passphrase(path) {
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
