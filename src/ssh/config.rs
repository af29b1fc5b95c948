//! The block keyclone manages in `~/.ssh/config`, so plain `ssh` and `git` use the right key,
//! host and port after `keyclone init`.
//!
//! Only the lines between the two marker lines are ours; every other byte of the file is kept
//! as it was (comments, `Include`, `Match`, odd indentation, CRLF). A new block is appended at
//! the end of the file: OpenSSH takes the first value it finds for most options, so appending
//! never overrides what the user wrote, and a `Host` line ends any `Match`/`Host` section the
//! file ended in. Paths are written absolute (OpenSSH expands `~` from the password database,
//! not `$HOME`).

use std::path::{Path, PathBuf};

use crate::endpoint::{DEFAULT_PORT, Endpoint};
use crate::error::{Error, ErrorKind, Result};

pub const BEGIN: &str =
    "# >>> keyclone managed block: `keyclone init` rewrites the lines up to the end marker >>>";
pub const END: &str = "# <<< keyclone managed block <<<";

/// One `Host` entry of the managed block.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostEntry {
    /// The name after `Host` (`github.com`, or `github.com-work` for a second account).
    pub alias: String,
    pub hostname: String,
    /// Written only when not 22.
    pub port: u16,
    pub user: String,
    pub identity_file: PathBuf,
    /// Written when the SSH directory is not OpenSSH's default (`~/.ssh` of the password
    /// database), so `ssh` reads the known_hosts keyclone wrote.
    pub known_hosts: Option<PathBuf>,
    /// keyclone's own ssh-agent socket, written when `init` cached the key there (no agent of
    /// the user's answered): `IdentityAgent` makes plain `ssh` use it from any shell.
    pub identity_agent: Option<PathBuf>,
}

impl HostEntry {
    /// Where `ssh` connects for this alias: `HostName` and `Port`.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.hostname.as_str(), self.port)
    }

    fn render(&self, out: &mut String) {
        out.push_str(&format!("Host {}\n", self.alias));
        out.push_str(&format!("    HostName {}\n", self.hostname));
        if self.port != DEFAULT_PORT {
            out.push_str(&format!("    Port {}\n", self.port));
        }
        out.push_str(&format!("    User {}\n", self.user));
        out.push_str(&format!(
            "    IdentityFile {}\n",
            quote(&self.identity_file)
        ));
        out.push_str("    IdentitiesOnly yes\n");
        out.push_str("    AddKeysToAgent yes\n");
        if let Some(kh) = &self.known_hosts {
            out.push_str(&format!("    UserKnownHostsFile {}\n", quote(kh)));
        }
        if let Some(sock) = &self.identity_agent {
            out.push_str(&format!("    IdentityAgent {}\n", quote(sock)));
        }
    }
}

fn quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.contains(' ') {
        format!("\"{s}\"")
    } else {
        s
    }
}

fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
        .to_owned()
}

/// Checks a name for `Host`: one token, no pattern characters (see [`crate::names`]).
pub fn valid_token(s: &str) -> bool {
    crate::names::alias(s).is_ok()
}

impl HostEntry {
    /// Every value of the entry against the names rule: nothing that could end the line,
    /// start another section, or expand in OpenSSH's config grammar reaches the file.
    pub fn check(&self) -> std::result::Result<(), String> {
        let field = |what: &str, r: std::result::Result<(), String>| {
            r.map_err(|why| format!("its {what} is refused: {why}"))
        };
        field("`Host` alias", crate::names::alias(&self.alias))?;
        field("`HostName`", crate::names::host(&self.hostname))?;
        field("`Port`", crate::names::port(self.port))?;
        field("`User`", crate::names::user(&self.user))?;
        field(
            "`IdentityFile`",
            crate::names::config_path(&self.identity_file),
        )?;
        if let Some(kh) = &self.known_hosts {
            field("`UserKnownHostsFile`", crate::names::config_path(kh))?;
        }
        if let Some(sock) = &self.identity_agent {
            field("`IdentityAgent`", crate::names::config_path(sock))?;
        }
        Ok(())
    }
}

/// The file split around the managed block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfig {
    before: String,
    /// `None` when the file has no block yet.
    block: Option<Vec<HostEntry>>,
    after: String,
    /// The block was read from the file (it keeps its place) rather than created now.
    placed: bool,
}

impl SshConfig {
    /// Splits `text` around the markers. A begin marker without an end marker (or two blocks)
    /// is an error: keyclone will not guess where its block ends.
    pub fn parse(text: &str, path: &Path) -> Result<SshConfig> {
        let begins: Vec<usize> = line_starts(text)
            .filter(|&i| line_at(text, i).trim_end() == BEGIN)
            .collect();
        if begins.is_empty() {
            return Ok(SshConfig {
                before: text.to_owned(),
                block: None,
                after: String::new(),
                placed: false,
            });
        }
        let broken = |why: &str| {
            Error::new(
                ErrorKind::Config,
                format!("`{}`: keyclone's managed block is damaged: {why}", path.display()),
            )
            .hint(format!(
                "open `{}` and remove the lines from `{BEGIN}` to `{END}` (keyclone writes them again), then run the same command again",
                path.display()
            ))
        };
        if begins.len() > 1 {
            return Err(broken("the begin marker appears more than once"));
        }
        let start = begins[0];
        let body_start = start + line_at(text, start).len();
        let Some(end_rel) = line_starts(&text[body_start..])
            .find(|&i| line_at(&text[body_start..], i).trim_end() == END)
        else {
            return Err(broken("the end marker is missing"));
        };
        let end = body_start + end_rel;
        let after_start = end + line_at(text, end).len();
        let entries = parse_entries(&text[body_start..end]).map_err(|why| broken(&why))?;
        Ok(SshConfig {
            before: text[..start].to_owned(),
            block: Some(entries),
            after: text[after_start..].to_owned(),
            placed: true,
        })
    }

    pub fn entries(&self) -> &[HostEntry] {
        self.block.as_deref().unwrap_or_default()
    }

    pub fn has_block(&self) -> bool {
        self.block.is_some()
    }

    pub fn find(&self, alias: &str) -> Option<&HostEntry> {
        self.entries()
            .iter()
            .find(|e| e.alias.eq_ignore_ascii_case(alias))
    }

    /// Adds or replaces the entry with the same alias (its place in the block is kept). An
    /// entry whose values break the names rule is refused and the block stays as it was.
    pub fn upsert(&mut self, entry: HostEntry) -> Result<()> {
        entry.check().map_err(|why| {
            Error::usage(format!(
                "keyclone will not write `Host {}` into `~/.ssh/config`: {why}",
                crate::names::shown(&entry.alias)
            ))
            .hint("nothing was written; check the repository URL, `--account` and the `[provider.*]` settings in keyclone's config")
        })?;
        let block = self.block.get_or_insert_with(Vec::new);
        match block
            .iter_mut()
            .find(|e| e.alias.eq_ignore_ascii_case(&entry.alias))
        {
            Some(e) => *e = entry,
            None => block.push(entry),
        }
        Ok(())
    }

    /// Takes the block out (markers included); the bytes before and after it are kept as they
    /// are. Returns whether there was a block.
    pub fn remove_block(&mut self) -> bool {
        if self.block.take().is_none() {
            return false;
        }
        self.before.push_str(&self.after);
        self.after.clear();
        self.placed = false;
        true
    }

    /// The block alone, markers included.
    pub fn block_text(&self) -> String {
        let mut out = format!("{BEGIN}\n");
        for (i, e) in self.entries().iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            e.render(&mut out);
        }
        out.push_str(END);
        out.push('\n');
        out
    }

    /// The whole file: the user's bytes as they were, with the block in its place (or
    /// appended, after a blank line, when new).
    pub fn render(&self) -> String {
        if self.block.is_none() {
            return self.before.clone();
        }
        let mut out = self.before.clone();
        if !self.placed {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            if !out.is_empty() && !out.ends_with("\n\n") {
                out.push('\n');
            }
        }
        out.push_str(&self.block_text());
        out.push_str(&self.after);
        out
    }
}

fn line_starts(text: &str) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .filter(move |&i| i < text.len())
}

/// The line starting at `i`, with its newline.
fn line_at(text: &str, i: usize) -> &str {
    match text[i..].find('\n') {
        Some(n) => &text[i..i + n + 1],
        None => &text[i..],
    }
}

fn parse_entries(body: &str) -> std::result::Result<Vec<HostEntry>, String> {
    let mut out: Vec<HostEntry> = Vec::new();
    for (n, raw) in body.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(|c: char| c.is_whitespace() || c == '=')
            .map(|(k, v)| {
                (
                    k,
                    v.trim_start_matches(|c: char| c.is_whitespace() || c == '=')
                        .trim(),
                )
            })
            .ok_or_else(|| format!("line {} of the block has no value: {line:?}", n + 1))?;
        let key = key.to_ascii_lowercase();
        if key == "host" {
            out.push(HostEntry {
                alias: value.to_owned(),
                hostname: value.to_owned(),
                port: 22,
                user: "git".to_owned(),
                identity_file: PathBuf::new(),
                known_hosts: None,
                identity_agent: None,
            });
            continue;
        }
        let Some(e) = out.last_mut() else {
            return Err(format!("line {} comes before any `Host` line", n + 1));
        };
        match key.as_str() {
            "hostname" => e.hostname = value.to_owned(),
            "port" => {
                e.port = value
                    .parse()
                    .map_err(|_| format!("`Port {value}` is not a port number"))?;
            }
            "user" => e.user = value.to_owned(),
            "identityfile" => e.identity_file = PathBuf::from(unquote(value)),
            "userknownhostsfile" => e.known_hosts = Some(PathBuf::from(unquote(value))),
            "identityagent" => e.identity_agent = Some(PathBuf::from(unquote(value))),
            "identitiesonly" | "addkeystoagent" => {}
            other => return Err(format!("unexpected option `{other}` on line {}", n + 1)),
        }
    }
    for e in &out {
        e.check()
            .map_err(|why| format!("`Host {}`: {why}", crate::names::shown(&e.alias)))?;
    }
    Ok(out)
}

/// The config file of an SSH directory.
pub fn path_in(ssh_dir: &Path) -> PathBuf {
    ssh_dir.join("config")
}

/// Reads the config (a missing file is an empty one).
pub fn read(path: &Path) -> Result<SshConfig> {
    match crate::files::read_bounded(path, crate::files::CONFIG_LIMIT, "SSH config") {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "`{}` is not valid UTF-8; keyclone will not edit it",
                        path.display()
                    ),
                )
                .hint("add the printed block by hand, or fix the file's encoding")
            })?;
            SshConfig::parse(&text, path)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => SshConfig::parse("", path),
        Err(e) => Err(e),
    }
}

/// Writes the config atomically, keeping its mode (0600 for a new file; never group- or
/// world-writable, which OpenSSH refuses). A symbolic link is refused, as for known_hosts:
/// replacing it would silently turn a linked dotfile into a copy.
pub fn write(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match crate::files::occupant(path)? {
        crate::files::Occupant::Symlink => {
            let target = std::fs::read_link(path)
                .map(|t| format!(" (to `{}`)", t.display()))
                .unwrap_or_default();
            return Err(Error::refused(format!(
                "`{}` is a symbolic link{target}; keyclone does not replace files through links, so it left it alone",
                path.display()
            ))
            .hint("add the printed block to the file the link points to by hand, or replace the link with the file, then run the same command again")
            .hint("or leave the SSH config alone with `--no-ssh-config`"));
        }
        crate::files::Occupant::Other => {
            return Err(Error::refused(format!(
                "`{}` exists and is not a regular file",
                path.display()
            ))
            .hint("move it away, or leave the SSH config alone with `--no-ssh-config`"));
        }
        _ => {}
    }
    let mode = std::fs::symlink_metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o777);
    crate::files::replace(path, text.as_bytes(), mode & !0o022)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(alias: &str, key: &str) -> HostEntry {
        HostEntry {
            alias: alias.into(),
            hostname: "github.com".into(),
            port: 22,
            user: "git".into(),
            identity_file: PathBuf::from(key),
            known_hosts: None,
            identity_agent: None,
        }
    }

    const HAND_WRITTEN: &str = "Include ~/.ssh/config.d/*\r\n\
        # my hosts\n\
        Host build\n\
        \tHostName 10.0.0.5\n\
        \t  User  me  \n\
        Match host *.corp exec \"true\"\n\
           ProxyJump build\n\
        Host *\n\
          ServerAliveInterval=30";

    #[test]
    fn a_new_block_is_appended_and_every_other_byte_is_kept() {
        let p = Path::new("config");
        let mut c = SshConfig::parse(HAND_WRITTEN, p).unwrap();
        assert!(!c.has_block());
        c.upsert(entry("github.com", "/h/.ssh/id_ed25519")).unwrap();
        let out = c.render();
        assert!(out.starts_with(HAND_WRITTEN), "{out}");
        let tail = &out[HAND_WRITTEN.len()..];
        assert!(tail.starts_with("\n\n# >>> keyclone"), "{tail:?}");
        assert!(tail.ends_with(&format!("{END}\n")));
        assert!(tail.contains("    IdentityFile /h/.ssh/id_ed25519\n"));
        assert!(tail.contains("    IdentitiesOnly yes\n    AddKeysToAgent yes\n"));
        // Reading it back and writing again changes nothing (a second run is a no-op).
        let again = SshConfig::parse(&out, p).unwrap();
        assert_eq!(again.entries(), c.entries());
        assert_eq!(again.render(), out);
    }

    #[test]
    fn an_existing_block_is_replaced_in_place() {
        let p = Path::new("config");
        let mut c = SshConfig::parse("", p).unwrap();
        c.upsert(entry("github.com", "/k1")).unwrap();
        let text = format!("Host a\n  User x\n\n{}Host b\n  User y\n", c.render());
        let mut c = SshConfig::parse(&text, p).unwrap();
        c.upsert(entry("github.com", "/k2")).unwrap();
        c.upsert(entry("github.com-work", "/k3")).unwrap();
        let out = c.render();
        assert!(out.starts_with("Host a\n  User x\n\n# >>> keyclone"));
        assert!(out.ends_with(&format!("{END}\nHost b\n  User y\n")));
        assert!(out.contains("IdentityFile /k2") && !out.contains("/k1"));
        assert_eq!(SshConfig::parse(&out, p).unwrap().entries().len(), 2);
        assert_eq!(
            SshConfig::parse(&out, p)
                .unwrap()
                .find("GITHUB.COM-work")
                .unwrap()
                .identity_file,
            PathBuf::from("/k3")
        );
    }

    #[test]
    fn ports_spaces_and_known_hosts_round_trip() {
        let p = Path::new("config");
        let mut c = SshConfig::parse("", p).unwrap();
        let mut e = entry("github.com", "/home/a b/.ssh/id");
        e.hostname = "ssh.github.com".into();
        e.port = 443;
        e.known_hosts = Some(PathBuf::from("/home/a b/.ssh/known_hosts"));
        c.upsert(e.clone()).unwrap();
        let out = c.render();
        assert!(out.contains("    Port 443\n"));
        assert!(out.contains("IdentityFile \"/home/a b/.ssh/id\""));
        assert_eq!(SshConfig::parse(&out, p).unwrap().entries(), &[e]);
        assert!(
            out.starts_with(BEGIN),
            "no blank line before a block in an empty file"
        );
    }

    #[test]
    fn keyclone_s_agent_socket_is_written_as_identity_agent_and_read_back() {
        let p = Path::new("config");
        let mut c = SshConfig::parse("", p).unwrap();
        let mut e = entry("github.com", "/h/.ssh/id");
        e.identity_agent = Some(PathBuf::from("/h/.ssh/keyclone-agent/agent.sock"));
        c.upsert(e.clone()).unwrap();
        let out = c.render();
        assert!(out.contains("    IdentityAgent /h/.ssh/keyclone-agent/agent.sock\n"));
        assert_eq!(SshConfig::parse(&out, p).unwrap().entries(), &[e.clone()]);
        e.identity_agent = Some(PathBuf::from("/h/%d/agent.sock"));
        assert!(e.check().unwrap_err().contains("`IdentityAgent`"));
    }

    #[test]
    fn a_damaged_block_is_refused_not_guessed() {
        let p = Path::new("config");
        let e = SshConfig::parse(&format!("{BEGIN}\nHost x\n"), p).unwrap_err();
        assert!(e.message().contains("end marker is missing"));
        let e = SshConfig::parse(&format!("{BEGIN}\nHost x\n  Bogus 1\n{END}\n"), p).unwrap_err();
        assert!(e.message().contains("unexpected option"));
        let two = format!("{BEGIN}\n{END}\n{BEGIN}\n{END}\n");
        assert!(SshConfig::parse(&two, p).is_err());
    }

    #[test]
    fn removing_the_block_keeps_every_other_byte() {
        let p = Path::new("/x/config");
        let before = "Host a\r\n  User x\n\n";
        let after = "Host b\n  User y";
        let block = "Host h\n    HostName h\n    User git\n    IdentityFile /k/id\n";
        let text = format!("{before}{BEGIN}\n{block}{END}\n{after}");
        let mut cfg = SshConfig::parse(&text, p).unwrap();
        assert!(cfg.remove_block());
        assert_eq!(cfg.render(), format!("{before}{after}"));
        assert!(!cfg.has_block());
        assert!(!cfg.remove_block(), "nothing left to remove");
        let mut none = SshConfig::parse(before, p).unwrap();
        assert!(!none.remove_block());
        assert_eq!(none.render(), before);
    }
}
