//! Every environment variable keyclone reads, as a documented constant, and a snapshot of them
//! taken once at start-up. Nothing else in keyclone calls `std::env::var`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// The user's home directory; `~/.ssh` is under it.
pub const HOME: &str = "HOME";
/// Base of the default config file: `$XDG_CONFIG_HOME/keyclone/config.toml` (else `~/.config`).
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
/// A passphrase for a new key or for decrypting one. For scripts; never logged.
pub const KEYCLONE_PASSPHRASE: &str = "KEYCLONE_PASSPHRASE";
/// Login name, used for the default key comment `user@host`.
pub const USER: &str = "USER";
/// Fallback for `USER`.
pub const LOGNAME: &str = "LOGNAME";
/// Set inside tmux: OSC 52 must be wrapped in a tmux passthrough sequence.
pub const TMUX: &str = "TMUX";
/// The ssh-agent socket: a key the agent holds needs no passphrase. keyclone's own agent client
/// (`ssh::agent::Agent::from_env`) takes it from this snapshot; libssh2 and libgit2 read the
/// process's copy of the same variable.
pub const SSH_AUTH_SOCK: &str = "SSH_AUTH_SOCK";
/// Any value turns colour off (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
/// `off` (or `0`, `false`) turns `keyclone provenance` off: it prints no properties.
pub const KEYCLONE_PROVENANCE: &str = "KEYCLONE_PROVENANCE";
/// Folders where the search for a repository stops (git's own variable, `:`-separated).
pub const GIT_CEILING_DIRECTORIES: &str = "GIT_CEILING_DIRECTORIES";
/// Azure ML's overrides of the Git properties, honoured field by field by `provenance`.
pub const AZUREML_GIT_REPOSITORY_URI: &str = "AZUREML_GIT_REPOSITORY_URI";
pub const AZUREML_GIT_BRANCH: &str = "AZUREML_GIT_BRANCH";
pub const AZUREML_GIT_COMMIT: &str = "AZUREML_GIT_COMMIT";
pub const AZUREML_GIT_DIRTY: &str = "AZUREML_GIT_DIRTY";
pub const AZUREML_GIT_BUILD_ID: &str = "AZUREML_GIT_BUILD_ID";
pub const AZUREML_GIT_BUILD_URI: &str = "AZUREML_GIT_BUILD_URI";
/// Tests only, debug builds only: keyclone kills itself (SIGKILL) right after the named `rotate`
/// step, or just before a temporary file is renamed to `FILE` (`rename:FILE`), to prove a re-run
/// completes. Release builds ignore it.
pub const KEYCLONE_TEST_KILL_AT: &str = "KEYCLONE_TEST_KILL_AT";
/// The system-wide known_hosts file read beside `~/.ssh/known_hosts` (never written), default
/// [`DEFAULT_SYSTEM_KNOWN_HOSTS`]. Tests point it at an empty file.
pub const KEYCLONE_SYSTEM_KNOWN_HOSTS: &str = "KEYCLONE_SYSTEM_KNOWN_HOSTS";
/// Where OpenSSH keeps the system-wide known_hosts file.
pub const DEFAULT_SYSTEM_KNOWN_HOSTS: &str = "/etc/ssh/ssh_known_hosts";
/// git's own variable: a true value (`1`, `true`, `yes`, `on`) makes keyclone (libgit2 and the
/// `user.name` lookup) skip the system git config `/etc/gitconfig`, as git does.
pub const GIT_CONFIG_NOSYSTEM: &str = "GIT_CONFIG_NOSYSTEM";
/// Tests only, debug builds only: the serial number of the test runner's session keyring.
/// keyclone then refuses to touch the kernel keyring while its session keyring is that one
/// (only a run inside `keyctl session` may use a keyring), and keeps its entries in that session
/// keyring only (not linked into the user's persistent keyring). Release builds ignore it.
pub const KEYCLONE_TEST_USER_KEYRING: &str = "KEYCLONE_TEST_USER_KEYRING";

/// Tests only, debug builds only: any value makes the clone's parallel pack indexer fail to start
/// as it does when `objects/pack` takes no temporary file, so libgit2's own indexer takes the
/// pack (the fallback `git::packindex` documents). Release builds ignore it.
pub const KEYCLONE_TEST_NO_PACK_INDEXER: &str = "KEYCLONE_TEST_NO_PACK_INDEXER";

const KNOWN: &[&str] = &[
    HOME,
    XDG_CONFIG_HOME,
    KEYCLONE_PASSPHRASE,
    USER,
    LOGNAME,
    TMUX,
    SSH_AUTH_SOCK,
    NO_COLOR,
    KEYCLONE_TEST_KILL_AT,
    KEYCLONE_SYSTEM_KNOWN_HOSTS,
    GIT_CONFIG_NOSYSTEM,
    KEYCLONE_TEST_USER_KEYRING,
    KEYCLONE_TEST_NO_PACK_INDEXER,
    BITBUCKET_EMAIL,
    KEYCLONE_PROVENANCE,
    GIT_CEILING_DIRECTORIES,
    AZUREML_GIT_REPOSITORY_URI,
    AZUREML_GIT_BRANCH,
    AZUREML_GIT_COMMIT,
    AZUREML_GIT_DIRTY,
    AZUREML_GIT_BUILD_ID,
    AZUREML_GIT_BUILD_URI,
];

/// The e-mail of the Atlassian account a Bitbucket API token belongs to.
pub const BITBUCKET_EMAIL: &str = "BITBUCKET_EMAIL";

/// Whether `name` is a provider API token's variable (`GH_TOKEN`, `GITLAB_TOKEN`,
/// `KEYCLONE_TOKEN_CORP`, a config's `token-env`): names ending in `_TOKEN`, and
/// `KEYCLONE_TOKEN_*`. Their values are secrets: never shown (see `Debug`).
pub fn is_token_var(name: &str) -> bool {
    name.len() <= 64
        && (name.ends_with("_TOKEN") || name.starts_with("KEYCLONE_TOKEN_"))
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The token variables of the hosted providers (github.com, gitlab.com, bitbucket.org,
/// codeberg.org): never the `token-env` of a self-hosted provider, so a config handed around
/// cannot route a user's github.com token to another host.
pub const HOSTED_TOKEN_VARS: &[&str] = &[
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "BITBUCKET_API_TOKEN",
    "CODEBERG_TOKEN",
];

/// The environment variables keyclone uses, captured once. Tests build their own.
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<&'static str, OsString>,
    /// The API token variables ([`is_token_var`]).
    tokens: BTreeMap<String, OsString>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: values may be secrets.
        f.debug_struct("Env")
            .field("set", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Env {
    /// Reads the known variables from the process environment.
    pub fn from_process() -> Self {
        let vars = KNOWN
            .iter()
            .filter_map(|&name| std::env::var_os(name).map(|v| (name, v)))
            .collect();
        let tokens = std::env::vars_os()
            .filter_map(|(k, v)| k.into_string().ok().map(|k| (k, v)))
            .filter(|(k, _)| is_token_var(k))
            .collect();
        Env { vars, tokens }
    }

    /// An environment with exactly these variables (unknown names are ignored).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut vars = BTreeMap::new();
        let mut tokens = BTreeMap::new();
        for (k, v) in pairs {
            if let Some(&name) = KNOWN.iter().find(|&&n| n == k) {
                vars.insert(name, OsString::from(v));
            } else if is_token_var(k) {
                tokens.insert(k.to_string(), OsString::from(v));
            }
        }
        Env { vars, tokens }
    }

    /// The raw value, empty strings included.
    pub fn get(&self, name: &str) -> Option<&OsString> {
        self.vars.get(name).or_else(|| self.tokens.get(name))
    }

    /// The value, unless unset or empty.
    pub fn get_nonempty(&self, name: &str) -> Option<&OsString> {
        self.get(name).filter(|v| !v.is_empty())
    }

    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get_nonempty(name).and_then(|v| v.to_str())
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.vars.contains_key(name) || self.tokens.contains_key(name)
    }

    pub fn home(&self) -> Option<PathBuf> {
        self.get_nonempty(HOME).map(PathBuf::from)
    }

    /// The system-wide known_hosts file: `KEYCLONE_SYSTEM_KNOWN_HOSTS`, else
    /// `/etc/ssh/ssh_known_hosts`.
    pub fn system_known_hosts(&self) -> PathBuf {
        self.get_nonempty(KEYCLONE_SYSTEM_KNOWN_HOSTS)
            .map_or_else(|| PathBuf::from(DEFAULT_SYSTEM_KNOWN_HOSTS), PathBuf::from)
    }

    /// Whether `GIT_CONFIG_NOSYSTEM` says to skip the system git config (git's boolean rule).
    pub fn git_config_nosystem(&self) -> bool {
        self.get_str(GIT_CONFIG_NOSYSTEM).is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            matches!(v.as_str(), "true" | "yes" | "on") || v.parse::<i64>().is_ok_and(|n| n != 0)
        })
    }

    /// `$XDG_CONFIG_HOME/keyclone/config.toml`, else `$HOME/.config/keyclone/config.toml`.
    pub fn default_config_path(&self) -> Option<PathBuf> {
        let base = self
            .get_nonempty(XDG_CONFIG_HOME)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| self.home().map(|h| h.join(".config")))?;
        Some(base.join("keyclone").join("config.toml"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_config_nosystem_follows_gits_boolean_rule() {
        for v in ["1", "true", "Yes", "on", "2", " true "] {
            let env = Env::from_pairs([(GIT_CONFIG_NOSYSTEM, v)]);
            assert!(env.git_config_nosystem(), "{v:?} is true");
        }
        for v in ["0", "false", "no", "off", ""] {
            let env = Env::from_pairs([(GIT_CONFIG_NOSYSTEM, v)]);
            assert!(!env.git_config_nosystem(), "{v:?} is false");
        }
        assert!(!Env::default().git_config_nosystem());
    }

    #[test]
    fn the_system_known_hosts_file_defaults_to_openssh_s() {
        assert_eq!(
            Env::default().system_known_hosts(),
            PathBuf::from("/etc/ssh/ssh_known_hosts")
        );
        let env = Env::from_pairs([(KEYCLONE_SYSTEM_KNOWN_HOSTS, "/x/kh")]);
        assert_eq!(env.system_known_hosts(), PathBuf::from("/x/kh"));
    }
}
