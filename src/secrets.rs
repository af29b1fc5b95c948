//! Secrets without a user interface: the flags that say where a passphrase comes from, reading
//! one from a stream, the keyring cache, and keeping the process's memory out of core dumps.
//! Asking for a passphrase (and reading `--passphrase-file`, which may warn) is
//! the operations layer's (`ops/passphrase.rs`); the [`Passphrase`] type itself is the leaf
//! module `passphrase.rs`.

use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
pub use crate::passphrase::{Passphrase, Unlock};

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

/// The flags that unlock an existing key (clone, test, rotate).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UnlockArgs {
    /// Read the key's passphrase from FILE (first line)
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// The service name of keyclone's entries in the system keyring.
pub const KEYRING_SERVICE: &str = "keyclone";

/// The keyring account name for a key: its absolute path.
pub fn keyring_account(key_path: &Path) -> String {
    key_path.display().to_string()
}

/// A passphrase cached in the system keyring for this key, if any backend works here and holds
/// one. The keyring is a convenience: every failure means "no cached passphrase".
pub fn keyring_passphrase(env: &Env, key_path: &Path) -> Option<Passphrase> {
    keyring_allowed(env).ok()?;
    let entry = keyring_entry(env, key_path).ok()?;
    entry.get_password().ok().map(Passphrase::new)
}

/// Finds what unlocks `key` (at `path`): the agent, no encryption, `--passphrase-file`,
/// Stores the passphrase of `key_path` in the system keyring and reads it back: `Err` says
/// why nothing usable was stored (no session keyring, no D-Bus service, ...).
pub fn keyring_store(
    env: &Env,
    key_path: &Path,
    p: &Passphrase,
) -> std::result::Result<(), String> {
    keyring_allowed(env)?;
    let entry = keyring_entry(env, key_path).map_err(|e| e.to_string())?;
    entry.set_password(p.expose()).map_err(|e| e.to_string())?;
    match entry.get_password() {
        Ok(back) if back == p.expose() => Ok(()),
        Ok(_) => Err("the keyring returned a different value than was stored".into()),
        Err(e) => Err(format!("the keyring did not keep the value: {e}")),
    }
}

/// Removes a cached passphrase; `true` if one was there.
pub fn keyring_forget(env: &Env, key_path: &Path) -> bool {
    if keyring_allowed(env).is_err() {
        return false;
    }
    keyring_entry(env, key_path)
        .and_then(|e| e.delete_credential())
        .is_ok()
}

/// Whether a keyring backend works here: stores, reads and deletes a probe entry.
pub fn keyring_works(env: &Env) -> std::result::Result<(), String> {
    keyring_allowed(env)?;
    let probe = Path::new("keyclone-probe");
    let p = Passphrase::new("probe".into());
    let r = keyring_store(env, probe, &p);
    keyring_forget(env, probe);
    r
}

/// keyclone's keyring entry for a key. Debug builds under `KEYCLONE_TEST_USER_KEYRING` (tests):
/// an entry of this session keyring only; the keyutils store otherwise also links every entry
/// into the user's persistent keyring, which outlives any `keyctl session` (days).
fn keyring_entry(env: &Env, key_path: &Path) -> keyring::Result<keyring::Entry> {
    let account = keyring_account(key_path);
    #[cfg(debug_assertions)]
    if env.is_set(crate::env::KEYCLONE_TEST_USER_KEYRING) {
        let mut c = keyring::keyutils::KeyutilsCredential::new_with_target(
            None,
            KEYRING_SERVICE,
            &account,
        )?;
        c.persistent = None;
        return Ok(keyring::Entry::new_with_credential(Box::new(c)));
    }
    let _ = env;
    keyring::Entry::new(KEYRING_SERVICE, &account)
}

/// Debug builds: `Err` when `KEYCLONE_TEST_USER_KEYRING` names this process's session keyring
/// (a test outside `keyctl session` would touch the developer's keyring). Always `Ok` in
/// release builds.
fn keyring_allowed(env: &Env) -> std::result::Result<(), String> {
    #[cfg(debug_assertions)]
    if let Some(forbidden) = env.get_str(crate::env::KEYCLONE_TEST_USER_KEYRING) {
        let ours = session_keyring_serial();
        if ours.is_none_or(|s| s.to_string() == forbidden.trim()) {
            return Err(format!(
                "the keyring is off limits: this run is outside `keyctl session` (`{}`)",
                crate::env::KEYCLONE_TEST_USER_KEYRING
            ));
        }
    }
    let _ = env;
    Ok(())
}

/// The serial number of this process's session keyring (the user session keyring when it has
/// none of its own), without creating one. Tests use it to fill `KEYCLONE_TEST_USER_KEYRING`.
#[allow(unsafe_code)]
pub fn session_keyring_serial() -> Option<i64> {
    const KEYCTL_GET_KEYRING_ID: nix::libc::c_long = 0;
    const KEY_SPEC_SESSION_KEYRING: nix::libc::c_long = -3;
    // SAFETY: keyctl(KEYCTL_GET_KEYRING_ID, id, create = 0) takes integers only and writes no
    // memory of ours.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_SESSION_KEYRING,
            0 as nix::libc::c_long,
        )
    };
    (r > 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
