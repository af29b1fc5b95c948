//! known_hosts files: a reader as tolerant as OpenSSH's (tabs, repeated spaces, comments, CRLF;
//! a malformed line is skipped and reported with its number, never fatal), host matching as
//! OpenSSH does it (`host`, `[host]:port` for other ports, comma lists, `*`/`?` wildcards,
//! `!` negation, hashed `|1|salt|hash` names, `@revoked`, `@cert-authority`), and the writer:
//! atomic, under a lock, keeping every byte it does not change and the file's mode.
//!
//! `pattern` holds OpenSSH's host-pattern matching and name hashing, `edit` the writer; this
//! file the reader and the lookups.

mod edit;
mod pattern;

use std::fs;
use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use ssh_key::PublicKey;

use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::files;

pub use edit::{edit_bytes, format_line, update};
use pattern::hmac_sha1;
pub use pattern::{PatternMatch, hash_name, match_pattern_list, wildcard_match};

/// Lines longer than this are reported as malformed (OpenSSH's own limit is similar).
pub const MAX_LINE: usize = 16 * 1024;

/// The marker at the start of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    /// `@revoked`: this key must never be accepted for these hosts.
    Revoked,
    /// `@cert-authority`: a CA key for host certificates, never a host key itself.
    CertAuthority,
}

/// The host field of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostField {
    /// A comma-separated list of patterns, as written.
    Patterns(String),
    /// `|1|salt|hash`: HMAC-SHA1 of the host name under the salt.
    Hashed { salt: [u8; 20], hash: [u8; 20] },
}

/// A line as read: its key is checked (known type, valid base64, matching type name inside) but
/// parsed only when the line is looked up, so that scanning a large file stays fast.
#[derive(Debug, Clone)]
struct Raw {
    line: usize,
    marker: Marker,
    hosts: HostField,
    /// The key type and the base64 blob, as byte ranges of the file's text.
    key_type: std::ops::Range<usize>,
    blob: std::ops::Range<usize>,
}

/// One usable line, with its key parsed.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based line number.
    pub line: usize,
    pub marker: Marker,
    pub hosts: HostField,
    pub key: PublicKey,
}

/// A line that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub reason: String,
}

/// A parsed known_hosts file.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    text: Vec<u8>,
    raw: Vec<Raw>,
    pub problems: Vec<Problem>,
}

impl HostField {
    /// Whether this field names `ep`.
    pub fn matches(&self, ep: &Endpoint) -> bool {
        let name = ep.known_hosts_name();
        match self {
            HostField::Patterns(list) => match_pattern_list(&name, list) == PatternMatch::Yes,
            HostField::Hashed { salt, hash } => hmac_sha1(salt, &name) == hash[..],
        }
    }
}

/// What a line holds: marker, host field, and the ranges (within the line) of type and blob.
type ParsedLine = (
    Marker,
    HostField,
    std::ops::Range<usize>,
    std::ops::Range<usize>,
);

/// The fields of a line, separated by runs of spaces and tabs (a byte scan: lines can be long).
struct Fields<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let b = self.s.as_bytes();
        let sep = |c: u8| c == b' ' || c == b'\t';
        while self.pos < b.len() && sep(b[self.pos]) {
            self.pos += 1;
        }
        if self.pos >= b.len() {
            return None;
        }
        let start = self.pos;
        while self.pos < b.len() && !sep(b[self.pos]) {
            self.pos += 1;
        }
        // Separators are ASCII, so both ends are character boundaries.
        self.s.get(start..self.pos)
    }
}

fn parse_line(line: &str) -> std::result::Result<Option<ParsedLine>, String> {
    let text = line.trim_start_matches([' ', '\t']);
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let mut fields = Fields { s: text, pos: 0 };
    let mut first = fields.next().ok_or("empty line")?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return Err(format!("unknown marker `{m}`")),
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next().ok_or("a marker but no host names")?;
    }
    let hosts = if let Some(rest) = first.strip_prefix("|1|") {
        let (salt, hash) = rest
            .split_once('|')
            .ok_or("a hashed host name without its hash")?;
        let decode20 = |t: &str| -> std::result::Result<[u8; 20], String> {
            let mut buf = [0u8; 21];
            match Base64::decode(t, &mut buf) {
                Ok(d) if d.len() == 20 => Ok(buf[..20].try_into().expect("20 bytes")),
                Ok(_) => Err("a hashed host name of the wrong length".into()),
                Err(_) => Err("a hashed host name with bad base64".into()),
            }
        };
        HostField::Hashed {
            salt: decode20(salt)?,
            hash: decode20(hash)?,
        }
    } else if first.starts_with('|') {
        return Err("an unknown hashed host name format".into());
    } else {
        HostField::Patterns(first.to_owned())
    };
    let key_type = fields.next().ok_or("no key type")?;
    let blob = fields.next().ok_or("no key")?;
    if ssh_key::Algorithm::new(key_type).is_err() {
        return Err(format!("unknown key type `{key_type}`"));
    }
    // Cheap checks now (the key itself is decoded when its line is looked up): base64 shape,
    // and the type name the blob starts with.
    let body = blob.trim_end_matches('=');
    if blob.len() % 4 != 0
        || blob.len() - body.len() > 2
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return Err(format!("a `{key_type}` key with bad base64"));
    }
    let head_len = (4 + key_type.len()).div_ceil(3) * 4;
    let mut head_buf = [0u8; 64];
    let head: &[u8] = match blob.get(..head_len) {
        Some(h) if head_len <= 84 => Base64::decode(h, &mut head_buf)
            .map_err(|_| format!("a `{key_type}` key with bad base64"))?,
        _ => {
            &Base64::decode_vec(blob).map_err(|_| format!("a `{key_type}` key with bad base64"))?
        }
    };
    let inner = head
        .get(..4)
        .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize)
        .and_then(|len| head.get(4..4 + len))
        .ok_or_else(|| format!("a `{key_type}` key that is cut short"))?;
    if inner != key_type.as_bytes() {
        return Err(format!(
            "the key type `{key_type}` does not match the key (`{}`)",
            String::from_utf8_lossy(inner)
        ));
    }
    // Where the type and the blob are, as offsets into the line.
    let range = |f: &str| {
        let start = f.as_ptr() as usize - line.as_ptr() as usize;
        start..start + f.len()
    };
    Ok(Some((marker, hosts, range(key_type), range(blob))))
}

impl Raw {
    fn entry(&self, text: &[u8]) -> Option<Entry> {
        let key_type = std::str::from_utf8(text.get(self.key_type.clone())?).ok()?;
        let blob = std::str::from_utf8(text.get(self.blob.clone())?).ok()?;
        let key = PublicKey::from_openssh(&format!("{key_type} {blob}")).ok()?;
        Some(Entry {
            line: self.line,
            marker: self.marker,
            hosts: self.hosts.clone(),
            key,
        })
    }
}

impl KnownHosts {
    /// Parses file contents; never fails: bad lines become [`Problem`]s.
    pub fn parse(path: &Path, bytes: &[u8]) -> KnownHosts {
        KnownHosts::parse_owned(path, bytes.to_vec())
    }

    /// Like [`KnownHosts::parse`], keeping the buffer (keys are decoded from it on lookup).
    pub fn parse_owned(path: &Path, bytes: Vec<u8>) -> KnownHosts {
        let mut kh = KnownHosts {
            path: path.to_owned(),
            ..Default::default()
        };
        let mut offset = 0;
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            let line_start = offset;
            offset += raw.len() + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.len() > MAX_LINE {
                kh.problems.push(Problem {
                    line,
                    reason: format!("the line is longer than {MAX_LINE} bytes"),
                });
                continue;
            }
            if raw.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                kh.problems.push(Problem {
                    line,
                    reason: "the line holds control characters or binary data".into(),
                });
                continue;
            }
            let Ok(text) = std::str::from_utf8(raw) else {
                kh.problems.push(Problem {
                    line,
                    reason: "the line is not text (binary data)".into(),
                });
                continue;
            };
            match parse_line(text) {
                Ok(Some((marker, hosts, key_type, blob))) => kh.raw.push(Raw {
                    line,
                    marker,
                    hosts,
                    key_type: line_start + key_type.start..line_start + key_type.end,
                    blob: line_start + blob.start..line_start + blob.end,
                }),
                Ok(None) => {}
                Err(reason) => kh.problems.push(Problem { line, reason }),
            }
        }
        kh.text = bytes;
        kh
    }

    /// Reads a file; a missing file is empty, an unreadable one is an error, and so is one
    /// that another user could write (see [`untrusted`]).
    pub fn read(path: &Path) -> Result<KnownHosts> {
        match files::read_bounded_if_exists(path, files::KNOWN_HOSTS_LIMIT, "known_hosts file")? {
            Some((bytes, meta)) => {
                untrusted(path, &meta)?;
                Ok(KnownHosts::parse_owned(path, bytes))
            }
            None => Ok(KnownHosts {
                path: path.to_owned(),
                ..Default::default()
            }),
        }
    }

    /// The entries that apply to `ep`, in file order, keys parsed. (A line whose key passes
    /// the read-time checks but does not parse is left out.)
    pub fn lookup(&self, ep: &Endpoint) -> impl Iterator<Item = Entry> + '_ {
        let name = ep.known_hosts_name();
        self.raw
            .iter()
            .filter(move |r| match &r.hosts {
                HostField::Patterns(list) => match_pattern_list(&name, list) == PatternMatch::Yes,
                HostField::Hashed { salt, hash } => hmac_sha1(salt, &name) == hash[..],
            })
            .filter_map(|r| r.entry(&self.text))
    }

    /// Every usable line, keys parsed.
    pub fn entries(&self) -> Vec<Entry> {
        self.raw
            .iter()
            .filter_map(|r| r.entry(&self.text))
            .collect()
    }
}

/// Refuses a known_hosts file that another user could write (or that belongs to another user
/// than root or us): anyone able to add a line could make keyclone trust their server, so it
/// is no trust anchor.
fn untrusted(path: &Path, meta: &fs::Metadata) -> Result<()> {
    match files::file_problem(meta) {
        None => Ok(()),
        Some(problem) => Err(Error::refused(format!(
            "refusing to trust or write the known_hosts file `{}`: {problem}, so anyone who can write it could make keyclone trust their server",
            path.display()
        ))
        .hint(format!(
            "run `chmod 600 {}` (and check its owner and its lines), then run the same command again",
            path.display()
        ))),
    }
}

/// Checks a host name given by a user: no spaces, control characters or pattern characters.
pub fn valid_host(host: &str) -> Result<()> {
    crate::names::host(host).map_err(|why| {
        Error::new(
            ErrorKind::Usage,
            format!("`{}` is not a host name: {why}", crate::names::shown(host)),
        )
        .hint("give a host like `github.com`, `git.example.org:2222` or `[::1]:2222`, or a repository URL")
    })
}

/// Keys and a parser for the tests of this module and its parts.
#[cfg(test)]
pub(super) mod testdata {
    use super::KnownHosts;
    use std::path::Path;

    pub const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    pub const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf";

    pub fn kh(text: &str) -> KnownHosts {
        KnownHosts::parse(Path::new("kh"), text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::testdata::{ED, ED2, kh};
    use super::*;

    #[test]
    fn tolerant_whitespace_comments_crlf() {
        let k = kh(&format!(
            "# comment\n\n\tgithub.com\t\t{}  a comment\r\n",
            ED.replace(' ', "   ")
        ));
        assert_eq!(k.entries().len(), 1, "{:?}", k.problems);
        assert_eq!(k.entries()[0].line, 3);
        assert!(k.problems.is_empty());
    }

    #[test]
    fn port_matters_and_bare_host_does_not_match_another_port() {
        let k = kh(&format!("h.example {ED}\n[h.example]:2222 {ED2}\n"));
        assert_eq!(k.lookup(&Endpoint::new("h.example", 22)).count(), 1);
        assert_eq!(
            k.lookup(&Endpoint::new("h.example", 2222))
                .next()
                .unwrap()
                .line,
            2
        );
        assert_eq!(k.lookup(&Endpoint::new("h.example", 2200)).count(), 0);
    }

    #[test]
    fn hashed_names_match_only_their_host_and_port() {
        let line = format!("{} {ED}\n", hash_name("[127.0.0.1]:2222"));
        let k = kh(&line);
        assert_eq!(k.lookup(&Endpoint::new("127.0.0.1", 2222)).count(), 1);
        assert_eq!(k.lookup(&Endpoint::new("127.0.0.1", 22)).count(), 0);
        assert_eq!(k.lookup(&Endpoint::new("127.0.0.2", 2222)).count(), 0);
    }

    #[test]
    fn markers_are_recognised() {
        let k = kh(&format!(
            "@revoked * {ED}\n@cert-authority *.example {ED2}\n@bogus h {ED}\n"
        ));
        assert_eq!(k.entries()[0].marker, Marker::Revoked);
        assert_eq!(k.entries()[1].marker, Marker::CertAuthority);
        assert_eq!(
            k.problems,
            vec![Problem {
                line: 3,
                reason: "unknown marker `@bogus`".into()
            }]
        );
    }

    #[test]
    fn malformed_lines_are_reported_with_numbers_never_fatal() {
        let long = format!("h ssh-ed25519 {}", "A".repeat(MAX_LINE));
        let text = [
            format!("good {ED}"),
            "h ssh-ed25519 !!!notbase64!!!".into(),
            format!(
                "h ssh-foo {}",
                Base64::encode_string(b"\0\0\0\x07ssh-foo\0\0\0\x01x")
            ),
            "h".into(),
            "h ssh-ed25519".into(),
            long,
            "|1|abc h ssh-ed25519 AAAA".into(),
            format!("h2 {}", ED.replace("ssh-ed25519", "ssh-rsa")),
            format!("last {ED}"),
        ]
        .join("\n");
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"\n\xff\xfe\x00garbage\n");
        let k = KnownHosts::parse(Path::new("kh"), &bytes);
        assert_eq!(
            k.entries().iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![1, 9]
        );
        let lines: Vec<usize> = k.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8, 10]);
        assert!(
            k.problems[1].reason.contains("unknown key type `ssh-foo`"),
            "{:?}",
            k.problems[1]
        );
        assert!(k.problems[4].reason.contains("longer than"));
        assert!(
            k.problems[7].reason.contains("binary") || k.problems[7].reason.contains("control")
        );
    }

    #[test]
    fn host_names_with_spaces_or_controls_are_refused() {
        assert!(valid_host("git hub.com").is_err());
        assert!(valid_host("a\nb").is_err());
        assert!(valid_host("*.com").is_err());
        assert!(valid_host("").is_err());
        assert!(valid_host("github.com").is_ok());
        assert!(valid_host("::1").is_ok());
    }

    #[test]
    fn a_line_of_the_longest_length_is_read_and_one_byte_more_is_not() {
        let line = |len: usize| {
            let start = format!("h {ED} ");
            format!("{start}{}", "c".repeat(len - start.len()))
        };
        let k = kh(&format!("{}\n{}\n", line(MAX_LINE), line(MAX_LINE + 1)));
        assert_eq!(
            k.entries().iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(k.problems.len(), 1, "{:?}", k.problems);
        assert_eq!(k.problems[0].line, 2);
        assert!(k.problems[0].reason.contains("longer than 16384 bytes"));
    }

    #[test]
    fn control_characters_in_valid_text_are_reported() {
        let k = kh(&format!("h\u{1b}[2J {ED}\nh\u{7f} {ED}\nh {ED}\n"));
        assert_eq!(
            k.entries().iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![3]
        );
        assert_eq!(
            k.problems
                .iter()
                .map(|p| (p.line, p.reason.contains("control characters")))
                .collect::<Vec<_>>(),
            vec![(1, true), (2, true)]
        );
    }

    #[test]
    fn bad_base64_and_bad_hashes_are_reported_when_read_not_dropped_later() {
        let blob = ED.split_once(' ').unwrap().1;
        let salt = Base64::encode_string(&[1u8; 20]);
        let short = Base64::encode_string(&[1u8; 10]);
        let lines = [
            format!("h ssh-ed25519 {}", &blob[..blob.len() - 1]),
            format!("h ssh-ed25519 {}A===", &blob[..blob.len() - 4]),
            format!("h ssh-ed25519 {}!AAA", &blob[..blob.len() - 4]),
            format!("|1|{short}|{salt} {ED}"),
            format!("|1|{salt}|{short} {ED}"),
            format!("|2|{salt}|{salt} {ED}"),
            format!("h {ED}"),
        ];
        let k = kh(&lines.join("\n"));
        assert_eq!(
            k.entries().iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![7]
        );
        let reasons: Vec<(usize, &str)> = k
            .problems
            .iter()
            .map(|p| (p.line, p.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (1, "a `ssh-ed25519` key with bad base64"),
                (2, "a `ssh-ed25519` key with bad base64"),
                (3, "a `ssh-ed25519` key with bad base64"),
                (4, "a hashed host name of the wrong length"),
                (5, "a hashed host name of the wrong length"),
                (6, "an unknown hashed host name format"),
            ]
        );
    }

    #[test]
    fn host_fields_match_their_host_and_port_only() {
        let plain = HostField::Patterns("h.example,[h.example]:2222,!bad.example".into());
        assert!(plain.matches(&Endpoint::new("H.Example", 22)));
        assert!(plain.matches(&Endpoint::new("h.example", 2222)));
        assert!(!plain.matches(&Endpoint::new("h.example", 2200)));
        assert!(!plain.matches(&Endpoint::new("bad.example", 22)));
        let KnownHosts { raw, .. } = kh(&format!("{} {ED}\n", hash_name("[h.example]:2222")));
        let hashed = &raw[0].hosts;
        assert!(hashed.matches(&Endpoint::new("h.example", 2222)));
        assert!(!hashed.matches(&Endpoint::new("h.example", 22)));
        assert!(!hashed.matches(&Endpoint::new("g.example", 2222)));
    }

    #[test]
    fn read_takes_a_private_file_and_refuses_one_others_can_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let k = KnownHosts::read(&path).unwrap();
        assert_eq!(k.path, path);
        assert!(k.entries().is_empty());

        fs::write(&path, format!("h {ED}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let k = KnownHosts::read(&path).unwrap();
        assert_eq!(k.path, path);
        assert_eq!(k.lookup(&Endpoint::new("h", 22)).count(), 1);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
        let e = KnownHosts::read(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.message().contains("group can write"), "{}", e.message());
    }
}
