//! The one error type of keyclone: a kind (which maps to an exit code), a message that says what
//! happened and why, and hints that say what to run next.
//!
//! Library code builds these errors; only `ui` prints them. Messages never contain secrets: no
//! passphrase, no private key material, no credential from a URL.

use std::fmt;
use std::io;
use std::path::Path;

/// What went wrong, coarsely: decides the exit code and lets scripts react without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command line itself is wrong (clap uses the same code).
    Usage,
    /// The configuration file is missing, unreadable or invalid.
    Config,
    /// An answer is needed and there is no terminal to ask on: the message names the flag.
    NeedsInput,
    /// keyclone refuses to do something unsafe (overwrite a key, follow a symlink, use an
    /// insecure directory, use a key type the provider refuses).
    Refused,
    /// Something named on the command line or in the config does not exist.
    NotFound,
    /// Reading or writing a file failed (permissions, disk full, I/O error).
    Io,
    /// A passphrase was wrong or a key was not accepted.
    Auth,
    /// A host key could not be verified.
    HostKey,
    /// The network failed (timeout, refused, DNS).
    Network,
    /// What a server sent would write outside the clone, into `.git`, or through a link
    /// (git's path rules): nothing was written.
    UnsafeRepository,
    /// The clone is in place but incomplete: Git LFS files are still pointers (the message
    /// names them and the command that fetches them).
    Incomplete,
    /// The user pressed Ctrl-C or the process was told to stop.
    Interrupted,
    /// `keyclone doctor` found something wrong.
    Unhealthy,
    /// A bug in keyclone.
    Internal,
}

impl ErrorKind {
    /// The process exit code for this kind; documented in the README.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Usage => 2,
            ErrorKind::Config => 3,
            ErrorKind::NeedsInput => 4,
            ErrorKind::Refused => 5,
            ErrorKind::NotFound => 6,
            ErrorKind::Io => 7,
            ErrorKind::Auth => 8,
            ErrorKind::HostKey => 9,
            ErrorKind::Network => 10,
            ErrorKind::UnsafeRepository => 11,
            ErrorKind::Incomplete => 12,
            ErrorKind::Interrupted => 130,
            ErrorKind::Unhealthy => 1,
            ErrorKind::Internal => 70,
        }
    }

    /// A stable lowercase name, used in `--json` error objects.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::Config => "config",
            ErrorKind::NeedsInput => "needs-input",
            ErrorKind::Refused => "refused",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Io => "io",
            ErrorKind::Auth => "auth",
            ErrorKind::HostKey => "host-key",
            ErrorKind::Network => "network",
            ErrorKind::UnsafeRepository => "unsafe-repository",
            ErrorKind::Incomplete => "incomplete",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Unhealthy => "unhealthy",
            ErrorKind::Internal => "internal",
        }
    }
}

/// An error with a kind, a message, hints (next steps) and an optional cause.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hints: Vec<String>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hints: Vec::new(),
            source: None,
        }
    }

    /// Adds a next step. Hints are printed after a blank line, in order.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Attaches the underlying cause (printed as "caused by").
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn hints(&self) -> &[String] {
        &self.hints
    }

    /// The chain of causes, outermost first, as text.
    pub fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(self);
        while let Some(e) = cur {
            out.push(e.to_string());
            cur = e.source();
        }
        out
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Usage, message)
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Refused, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    pub fn interrupted() -> Self {
        Error::new(ErrorKind::Interrupted, "interrupted: nothing was changed")
    }

    /// An I/O failure on `path` while doing `what` ("write the private key"), worded by cause.
    pub fn io(what: &str, path: &Path, err: io::Error) -> Self {
        let p = path.display();
        let (kind, message, hint) = match err.kind() {
            io::ErrorKind::NotFound => (
                ErrorKind::NotFound,
                format!("could not {what}: `{p}` does not exist"),
                None,
            ),
            io::ErrorKind::PermissionDenied => (
                ErrorKind::Io,
                format!("could not {what}: permission denied on `{p}`"),
                Some(format!(
                    "check the owner and mode of `{p}` and its directory (`ls -ld`), or choose another place"
                )),
            ),
            io::ErrorKind::StorageFull
            | io::ErrorKind::QuotaExceeded
            | io::ErrorKind::FileTooLarge => (
                ErrorKind::Io,
                format!(
                    "could not {what}: no space left for `{p}` (disk full, quota or file size limit)"
                ),
                Some("free some space (`df -h`), then run the same command again".to_string()),
            ),
            io::ErrorKind::ReadOnlyFilesystem => (
                ErrorKind::Io,
                format!("could not {what}: `{p}` is on a read-only file system"),
                Some("choose a writable place, e.g. with `--ssh-dir DIR`".to_string()),
            ),
            io::ErrorKind::AlreadyExists => (
                ErrorKind::Refused,
                format!("could not {what}: `{p}` already exists"),
                None,
            ),
            _ => (ErrorKind::Io, format!("could not {what}: `{p}`"), None),
        };
        let mut e = Error::new(kind, message).with_source(err);
        if let Some(h) = hint {
            e = e.hint(h);
        }
        e
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The I/O error for a read or write that waited `stall` (`--stall-timeout`) for a server in
/// vain: the HTTPS client's and the SSH channel's, worded the same.
pub fn stalled(stall: std::time::Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the server stopped sending: nothing came for {} s",
            stall.as_secs()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind, in declaration order.
    const ALL: [ErrorKind; 14] = [
        ErrorKind::Usage,
        ErrorKind::Config,
        ErrorKind::NeedsInput,
        ErrorKind::Refused,
        ErrorKind::NotFound,
        ErrorKind::Io,
        ErrorKind::Auth,
        ErrorKind::HostKey,
        ErrorKind::Network,
        ErrorKind::UnsafeRepository,
        ErrorKind::Interrupted,
        ErrorKind::Unhealthy,
        ErrorKind::Internal,
        ErrorKind::Incomplete,
    ];

    /// A kind's place in [`ALL`]. The match has no wildcard: a new kind does not compile until
    /// it is listed here, and the test below then fails until it is in `ALL` too.
    fn position(k: ErrorKind) -> usize {
        match k {
            ErrorKind::Usage => 0,
            ErrorKind::Config => 1,
            ErrorKind::NeedsInput => 2,
            ErrorKind::Refused => 3,
            ErrorKind::NotFound => 4,
            ErrorKind::Io => 5,
            ErrorKind::Auth => 6,
            ErrorKind::HostKey => 7,
            ErrorKind::Network => 8,
            ErrorKind::UnsafeRepository => 9,
            ErrorKind::Interrupted => 10,
            ErrorKind::Unhealthy => 11,
            ErrorKind::Internal => 12,
            ErrorKind::Incomplete => 13,
        }
    }

    #[test]
    fn the_list_of_kinds_is_exhaustive() {
        for (i, k) in ALL.iter().enumerate() {
            assert_eq!(position(*k), i, "{k:?}");
        }
    }

    #[test]
    fn exit_codes_are_distinct_per_kind() {
        let mut codes: Vec<u8> = ALL.iter().map(|k| k.exit_code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
        assert!(!codes.contains(&0));
        // 1 is `doctor`'s "a check failed"; no error kind shares it.
        for k in ALL {
            assert_eq!(k.exit_code() == 1, k == ErrorKind::Unhealthy, "{k:?}");
        }
    }

    #[test]
    fn kind_names_are_distinct_and_kebab_case() {
        let mut names: Vec<&str> = ALL.iter().map(|k| k.name()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }

    #[test]
    fn disk_full_is_worded_as_disk_full_with_a_next_step() {
        let e = Error::io(
            "write the private key",
            Path::new("/x/id_ed25519"),
            io::Error::from(io::ErrorKind::StorageFull),
        );
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.message().contains("no space left"), "{}", e.message());
        assert!(e.hints()[0].contains("df -h"));
        assert_eq!(e.causes().len(), 1);
    }
}
