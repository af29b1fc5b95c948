//! One line of an OpenSSH client config as `readconf.c` splits it: the keyword (before
//! whitespace or one `=`), the rest of the line as written (what `ProxyCommand` keeps), and the
//! arguments (`argv_split`: double or single quotes, `\` before a quote, a backslash or a
//! space, a word starting with `#` ends the line).

/// A line with a keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Lower case.
    pub keyword: String,
    /// The text after the keyword and its separator, trailing whitespace removed.
    pub rest: String,
    pub args: Vec<String>,
}

const WHITESPACE: &[char] = &[' ', '\t', '\r', '\n'];

/// Splits a line; `Ok(None)` for blank and comment lines. The error says what is wrong.
pub fn split_line(raw: &str) -> Result<Option<Line>, String> {
    let line = raw.trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
    let line = line.trim_start_matches(WHITESPACE);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line
        .find([' ', '\t', '\r', '\n', '='])
        .unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let mut rest = line[end..].trim_start_matches(WHITESPACE);
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start_matches(WHITESPACE);
    }
    if rest.is_empty() {
        return Err(format!("no argument after keyword \"{keyword}\""));
    }
    let args = argv_split(rest)?;
    Ok(Some(Line {
        keyword,
        rest: rest.to_owned(),
        args,
    }))
}

/// OpenSSH's `argv_split(s, .., terminate_on_comment = 1)`.
pub fn argv_split(s: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && WHITESPACE.contains(&chars[i]) {
            i += 1;
        }
        if i >= chars.len() || chars[i] == '#' {
            return Ok(out);
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i];
            if quote.is_none() && WHITESPACE.contains(&c) {
                break;
            }
            let next = chars.get(i + 1).copied();
            if c == '\\'
                && (matches!(next, Some('\'' | '"' | '\\'))
                    || (quote.is_none() && next == Some(' ')))
            {
                i += 1;
                arg.push(chars[i]);
            } else if quote.is_none() && (c == '"' || c == '\'') {
                quote = Some(c);
            } else if quote == Some(c) {
                quote = None;
            } else {
                arg.push(c);
            }
            i += 1;
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        out.push(arg);
    }
}

/// OpenSSH's `match_pattern`: `*` and `?`.
pub fn pattern(name: &str, pat: &str) -> bool {
    crate::ssh::known_hosts::wildcard_match(name, pat)
}

/// A `Host` pattern: the host is lowered, and so is the pattern (`Host Mimosa.local` selects
/// `mimosa.local`, as `ssh -G` shows).
fn host_pattern(host: &str, pat: &str) -> bool {
    pattern(host, &pat.to_ascii_lowercase())
}

/// Does a `Host` line's pattern list select `host`? Any `!pattern` that matches wins.
pub fn host_line_matches(host: &str, patterns: &[String]) -> bool {
    let mut hit = false;
    for p in patterns {
        match p.strip_prefix('!') {
            Some(neg) if host_pattern(host, neg) => return false,
            Some(_) => {}
            None if host_pattern(host, p) => hit = true,
            None => {}
        }
    }
    hit
}

/// `Match host a,b,!c`: OpenSSH's `match_pattern_list(.., 1) == 1` (case-insensitive).
pub fn list_matches(name: &str, list: &str) -> bool {
    use crate::ssh::known_hosts::{PatternMatch, match_pattern_list};
    match_pattern_list(name, list) == PatternMatch::Yes
}

/// `Match user a,b`: the same list without lowering the name (`match_pattern_list(.., 0)`).
pub fn list_matches_exact(name: &str, list: &str) -> bool {
    let mut got = false;
    for pat in list.split(',').filter(|p| !p.is_empty()) {
        match pat.strip_prefix('!') {
            Some(neg) if pattern(name, neg) => return false,
            Some(_) => {}
            None if pattern(name, pat) => got = true,
            None => {}
        }
    }
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Line {
        split_line(s).unwrap().unwrap()
    }

    #[test]
    fn keyword_separators_are_space_or_one_equals() {
        for s in [
            "Port 22",
            "Port=22",
            "  port = 22",
            "\tPORT\t22  ",
            "Port =22",
        ] {
            let l = line(s);
            assert_eq!(
                (l.keyword.as_str(), l.args.as_slice()),
                ("port", &["22".to_owned()][..]),
                "{s}"
            );
        }
        assert_eq!(split_line("   # comment").unwrap(), None);
        assert_eq!(split_line(" \t\t  ").unwrap(), None);
        assert!(split_line("HostName").is_err());
    }

    #[test]
    fn arguments_follow_argv_split() {
        let l = line(r#"IdentityAgent "~/Library/Group Containers/x.sock" # trailing"#);
        assert_eq!(l.args, vec!["~/Library/Group Containers/x.sock"]);
        assert_eq!(line(r"IdentityFile a\ b").args, vec!["a b"]);
        assert_eq!(line(r#"X 'a"b' c"#).args, vec!["a\"b", "c"]);
        assert_eq!(line("Host pi  # Raspberry Pi").args, vec!["pi"]);
        assert_eq!(
            line("ProxyCommand nc  %h %p # c").rest,
            "nc  %h %p # c",
            "ProxyCommand keeps the line as written"
        );
        assert!(split_line(r#"X "open"#).is_err());
    }

    #[test]
    fn host_lines_negate_and_ignore_case() {
        let pats: Vec<String> = ["*", "!*.github.com", "!github.com"]
            .map(String::from)
            .into();
        assert!(host_line_matches("example.org", &pats));
        assert!(!host_line_matches("github.com", &pats));
        assert!(!host_line_matches("gist.github.com", &pats));
        assert!(host_line_matches("a", &["A".into()]));
        assert!(host_line_matches(
            "10.1.50.3",
            &["10.?.50.*".into(), "!10.?.50.2".into()]
        ));
        assert!(!host_line_matches(
            "10.1.50.2",
            &["10.?.50.*".into(), "!10.?.50.2".into()]
        ));
        assert!(list_matches("Host.Example", "x,host.*"));
        assert!(!list_matches("a.b", "*.b,!a.*"));
        assert!(!list_matches_exact("Root", "root"));
    }
}
