//! OpenSSH's `%` tokens, `${VAR}` and `~` in config values (`percent_expand`,
//! `dollar_expand`, `tilde_expand_filename`): a token OpenSSH does not know is an error there,
//! and here.

use std::path::Path;

/// The values of the `%` tokens of one connection.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// `%h`: the host connected to (`HostName`).
    pub host: String,
    /// `%n`: the name as given.
    pub original: String,
    pub port: u16,
    /// `%r`: the remote user.
    pub remote_user: String,
    /// `%u`: the local user.
    pub local_user: String,
    /// `%d`: the local home.
    pub home: String,
    /// `%l`: the local host name.
    pub local_host: String,
    pub uid: u32,
    /// `%k`: `HostKeyAlias`, or the name as given.
    pub key_alias: String,
}

impl Tokens {
    fn value(&self, c: char) -> Option<String> {
        Some(match c {
            'h' => self.host.clone(),
            'n' => self.original.clone(),
            'p' => self.port.to_string(),
            'r' => self.remote_user.clone(),
            'u' => self.local_user.clone(),
            'd' => self.home.clone(),
            'l' => self.local_host.clone(),
            'L' => self
                .local_host
                .split('.')
                .next()
                .unwrap_or_default()
                .to_owned(),
            'i' => self.uid.to_string(),
            'k' => self.key_alias.clone(),
            'C' => {
                use sha1::{Digest, Sha1};
                let d = Sha1::digest(
                    format!(
                        "{}{}{}{}",
                        self.local_host, self.host, self.port, self.remote_user
                    )
                    .as_bytes(),
                );
                d.iter().map(|b| format!("{b:02x}")).collect()
            }
            _ => return None,
        })
    }
}

/// `%` expansion with a value for each known token.
pub fn percent(s: &str, value: impl Fn(char) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('%') => out.push('%'),
            Some(t) => {
                out.push_str(&value(t).ok_or_else(|| format!("unknown token `%{t}` in `{s}`"))?)
            }
            None => return Err(format!("`{s}` ends with a lone `%`")),
        }
    }
    Ok(out)
}

/// `HostName`: only `%h` (the name as given) and `%%`.
pub fn hostname(s: &str, original: &str) -> Result<String, String> {
    percent(s, |t| (t == 'h').then(|| original.to_owned()))
}

/// `${VAR}`: an unset variable is an error (as in OpenSSH).
pub fn dollar(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated `${{` in `{s}`"))?;
        let name = &after[..end];
        let v = env(name).filter(|v| !v.is_empty());
        out.push_str(&v.ok_or_else(|| format!("the variable `{name}` of `{s}` has no value"))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `~/x` and `~` against the home.
pub fn tilde(s: &str, home: &Path) -> String {
    if s == "~" {
        return home.display().to_string();
    }
    match s.strip_prefix("~/") {
        Some(rest) => home.join(rest).display().to_string(),
        None => s.to_owned(),
    }
}

/// A file option as OpenSSH expands it when it uses it: `~`, then `${VAR}`, then `%` tokens.
pub fn file(
    s: &str,
    t: &Tokens,
    home: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    percent(&dollar(&tilde(s, home), env)?, |c| t.value(c))
}

/// A `ProxyCommand`: the `%` tokens only (OpenSSH's `%h %n %p %r %%`, and the rest).
pub fn command(s: &str, t: &Tokens) -> Result<String, String> {
    percent(s, |c| t.value(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks() -> Tokens {
        Tokens {
            host: "h.example".into(),
            original: "alias".into(),
            port: 2222,
            remote_user: "git".into(),
            local_user: "me".into(),
            home: "/home/me".into(),
            local_host: "box.lan".into(),
            uid: 1000,
            key_alias: "alias".into(),
        }
    }

    #[test]
    fn tokens_expand_as_openssh_does() {
        let t = toks();
        let env = |v: &str| (v == "X").then(|| "/x".to_owned());
        let home = Path::new("/home/me");
        assert_eq!(
            file("~/kh/%h-%p-%r-%n-%u-%d-%L-%l-%i-%%", &t, home, &env).unwrap(),
            "/home/me/kh/h.example-2222-git-alias-me-/home/me-box-box.lan-1000-%"
        );
        assert_eq!(file("${X}/k", &t, home, &env).unwrap(), "/x/k");
        assert!(file("${Y}/k", &t, home, &env).is_err());
        assert!(file("%z", &t, home, &env).is_err());
        assert_eq!(hostname("%h.corp", "db").unwrap(), "db.corp");
        assert!(hostname("%p", "db").is_err());
        assert_eq!(command("nc %h %p", &t).unwrap(), "nc h.example 2222");
    }
}
