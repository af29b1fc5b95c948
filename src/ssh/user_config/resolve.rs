//! The walk over the config files for one host, as `readconf.c` does it: `Host` and `Match`
//! decide which lines apply, the first value of an option wins (`IdentityFile` accumulates),
//! `Include` reads its glob's files in order (relative to the SSH directory, 16 levels deep at
//! most), and `Match final`/`CanonicalizeHostname` ask for a second pass.

use std::path::{Path, PathBuf};

use super::parse::{self, Line};
use super::{Inputs, expand};
use crate::error::{Error, ErrorKind, Result};

/// OpenSSH's `READCONF_MAX_DEPTH`.
pub const MAX_DEPTH: usize = 16;
/// One config file is never larger than this.
pub const FILE_LIMIT: u64 = 1024 * 1024;
/// Files read in one walk (an `Include` glob over a large folder stops here).
pub const MAX_FILES: usize = 512;
/// OpenSSH's `SSH_MAX_IDENTITY_FILES`.
const MAX_IDENTITY_FILES: usize = 100;

/// The options keyclone honours, as the walk sets them (the first value wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub hostname: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_files: Vec<String>,
    pub identities_only: Option<bool>,
    pub user_known_hosts: Option<Vec<String>>,
    pub proxy_jump: Option<String>,
    pub proxy_command: Option<String>,
    pub host_key_alias: Option<String>,
    pub canonicalize: Option<String>,
}

/// Options that change how OpenSSH connects or authenticates and that keyclone does not do:
/// named in a warning when they apply to the host.
const NOT_HONOURED: &[&str] = &[
    "certificatefile",
    "pkcs11provider",
    "securitykeyprovider",
    "bindaddress",
    "bindinterface",
    "proxyusefdpass",
    "knownhostscommand",
    "canonicaldomains",
];

pub struct Walk<'a> {
    inp: &'a Inputs<'a>,
    /// What `Host` patterns are matched against (lowered; the expanded `HostName` in the
    /// final pass).
    host: String,
    original: String,
    final_pass: bool,
    pub want_final: bool,
    pub set: Settings,
    pub warnings: Vec<String>,
    files: usize,
}

fn config_error(path: &Path, line: usize, why: &str) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("`{}` line {line}: {why}", path.display()),
    )
    .hint(format!(
        "fix line {line} of `{}` (`ssh -G HOST` shows what OpenSSH makes of it), then run the same command again",
        path.display()
    ))
}

fn flag(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

impl<'a> Walk<'a> {
    pub fn new(inp: &'a Inputs<'a>, host: &str, original: &str, final_pass: bool) -> Self {
        Walk {
            inp,
            host: host.to_owned(),
            original: original.to_owned(),
            final_pass,
            want_final: false,
            set: Settings::default(),
            warnings: Vec::new(),
            files: 0,
        }
    }

    fn warn(&mut self, w: String) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    /// Reads one file; a missing file is no file (as OpenSSH skips it).
    pub fn file(
        &mut self,
        path: &Path,
        depth: usize,
        active: &mut bool,
        never: bool,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "`{}`: too many nested `Include`s (more than {MAX_DEPTH}): an `Include` loop",
                    path.display()
                ),
            )
            .hint("remove the `Include` line that includes a file that includes it again (`ssh -G HOST` refuses it too), then run the same command again"));
        }
        self.files += 1;
        if self.files > MAX_FILES {
            return Err(Error::new(
                ErrorKind::Config,
                format!("more than {MAX_FILES} files are included from the SSH config (`{}` is one too many)", path.display()),
            )
            .hint("narrow the `Include` patterns of your SSH config, then run the same command again"));
        }
        let Some((bytes, meta)) =
            crate::files::read_bounded_if_exists(path, FILE_LIMIT, "SSH config file")?
        else {
            return Ok(());
        };
        if let Some(why) = crate::files::file_problem(&meta) {
            return Err(Error::refused(format!(
                "`{}` is not safe to read as SSH config: {why} (OpenSSH refuses it too: \"Bad owner or permissions\")",
                path.display()
            ))
            .hint(format!("run `chmod go-w {}`, then the same command again", path.display())));
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        for (n, raw) in text.split('\n').enumerate() {
            let line = parse::split_line(raw).map_err(|why| config_error(path, n + 1, &why))?;
            if let Some(line) = line {
                self.line(path, n + 1, line, depth, active, never)?;
            }
        }
        Ok(())
    }

    fn line(
        &mut self,
        path: &Path,
        n: usize,
        l: Line,
        depth: usize,
        active: &mut bool,
        never: bool,
    ) -> Result<()> {
        let err = |why: String| config_error(path, n, &why);
        let first = l.args.first().cloned().unwrap_or_default();
        match l.keyword.as_str() {
            "host" => {
                *active = !never && parse::host_line_matches(&self.host, &l.args);
                return Ok(());
            }
            "match" => {
                let at = format!("`{}` line {n}", path.display());
                let m = self.match_line(&l.args, !never, &at).map_err(err)?;
                *active = !never && m;
                return Ok(());
            }
            "include" => return self.include(&l.args, depth, active, never),
            "port" => {
                let port: u16 = first
                    .parse()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| err(format!("bad port number `{first}`")))?;
                if *active && self.set.port.is_none() {
                    self.set.port = Some(port);
                }
                return Ok(());
            }
            "identitiesonly" => {
                let v = flag(&first)
                    .ok_or_else(|| err(format!("IdentitiesOnly takes yes or no, not `{first}`")))?;
                if *active && self.set.identities_only.is_none() {
                    self.set.identities_only = Some(v);
                }
                return Ok(());
            }
            _ => {}
        }
        if !*active {
            return Ok(());
        }
        let s = &mut self.set;
        match l.keyword.as_str() {
            "hostname" => {
                s.hostname.get_or_insert(first);
            }
            "user" => {
                s.user.get_or_insert(first);
            }
            "hostkeyalias" => {
                s.host_key_alias.get_or_insert(first);
            }
            "canonicalizehostname" => {
                s.canonicalize.get_or_insert(first.to_ascii_lowercase());
            }
            "identityfile" if !s.identity_files.contains(&first) => {
                if s.identity_files.len() >= MAX_IDENTITY_FILES {
                    return Err(err(format!("more than {MAX_IDENTITY_FILES} IdentityFiles")));
                }
                s.identity_files.push(first);
            }
            "userknownhostsfile" => {
                s.user_known_hosts.get_or_insert(l.args);
            }
            "proxycommand" => {
                let jump = s.proxy_jump.as_deref().filter(|j| *j != "none");
                if s.proxy_command.is_none() && jump.is_none() {
                    s.proxy_command = Some(l.rest);
                }
            }
            "proxyjump" if s.proxy_command.is_none() && s.proxy_jump.is_none() => {
                s.proxy_jump = Some(first);
            }
            k if NOT_HONOURED.contains(&k) => {
                let w = format!(
                    "`{}` line {n}: keyclone does not do `{k}` (it connects without it; plain `ssh` may behave differently)",
                    path.display()
                );
                self.warn(w);
            }
            _ => {}
        }
        Ok(())
    }

    fn match_line(
        &mut self,
        args: &[String],
        active: bool,
        at: &str,
    ) -> std::result::Result<bool, String> {
        let mut result = true;
        let mut i = 0;
        let mut seen = 0;
        while i < args.len() {
            let raw = &args[i];
            i += 1;
            seen += 1;
            let (negate, attr) = match raw.strip_prefix('!') {
                Some(a) => (true, a.to_ascii_lowercase()),
                None => (false, raw.to_ascii_lowercase()),
            };
            if attr == "all" {
                let others = args.iter().filter(|a| {
                    !matches!(
                        a.to_ascii_lowercase().as_str(),
                        "all" | "canonical" | "final"
                    )
                });
                if others.count() > 0 {
                    return Err("`Match all` cannot be combined with other criteria".into());
                }
                if negate {
                    result = false;
                }
                continue;
            }
            if attr == "canonical" || attr == "final" {
                if attr == "final" {
                    self.want_final = true;
                }
                if self.final_pass == negate {
                    result = false;
                }
                continue;
            }
            let Some(arg) = args.get(i).filter(|a| !a.is_empty() && !a.starts_with('#')) else {
                return Err(format!("`Match {attr}` has no argument"));
            };
            i += 1;
            let r = match attr.as_str() {
                "host" => parse::list_matches(&self.criteria_host(), arg),
                "originalhost" => parse::list_matches(&self.original, arg),
                "user" => {
                    let ruser = self.set.user.as_deref().unwrap_or(self.inp.local_user);
                    parse::list_matches_exact(ruser, arg)
                }
                "localuser" => parse::list_matches_exact(self.inp.local_user, arg),
                "exec" | "localnetwork" | "tagged" => {
                    if result && active {
                        self.warn(format!(
                            "{at}: `Match … {raw} \"{arg}\"` was skipped: keyclone never runs or evaluates it, so the lines under that `Match` do not apply here (they may for plain `ssh`)"
                        ));
                    }
                    result = false;
                    continue;
                }
                _ => return Err(format!("unsupported `Match` criterion `{raw}`")),
            };
            if r == negate {
                result = false;
            }
        }
        if seen == 0 {
            return Err("`Match` without criteria".into());
        }
        Ok(result)
    }

    fn criteria_host(&self) -> String {
        match (&self.set.hostname, self.final_pass) {
            (_, true) => self.host.clone(),
            (Some(h), false) => expand::hostname(h, &self.original).unwrap_or_else(|_| h.clone()),
            (None, false) => self.original.clone(),
        }
    }

    fn include(
        &mut self,
        args: &[String],
        depth: usize,
        active: &mut bool,
        never: bool,
    ) -> Result<()> {
        let outer = *active;
        for arg in args {
            let pattern: PathBuf = if let Some(rest) = arg.strip_prefix("~/") {
                self.inp.home.join(rest)
            } else if arg == "~" {
                self.inp.home.to_path_buf()
            } else if arg.starts_with('/') {
                PathBuf::from(arg)
            } else {
                self.inp.ssh_dir.join(arg)
            };
            let opts = glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: true,
            };
            let mut paths: Vec<PathBuf> = match glob::glob_with(&pattern.to_string_lossy(), opts) {
                Ok(p) => p.filter_map(|p| p.ok()).collect(),
                Err(_) => Vec::new(),
            };
            paths.sort();
            for p in paths {
                self.file(&p, depth + 1, active, never || !outer)?;
                *active = outer;
            }
        }
        Ok(())
    }
}
