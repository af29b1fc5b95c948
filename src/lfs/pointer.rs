//! Git LFS pointer files (git-lfs's `docs/spec.md`): what git stores in place of a large file.
//!
//! ```text
//! version https://git-lfs.github.com/spec/v1
//! oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393
//! size 12345
//! ```
//!
//! Parsed as git-lfs parses them: `key value` lines ending in `\n`, `version` first, the other
//! keys in sorted order, an `oid` of 64 lower-case hex digits, a decimal `size`. A file that
//! starts like a pointer and breaks a rule is [`Parsed::Invalid`]: git-lfs leaves such a file
//! as it is, and so does keyclone.

/// The only pointer version git-lfs writes.
pub const VERSION: &str = "https://git-lfs.github.com/spec/v1";
/// A pointer is smaller than this (git-lfs's own limit): larger files are never read as one.
pub const MAX_SIZE: u64 = 1024;

/// A valid pointer: the object's SHA-256 (hex) and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pointer {
    pub oid: String,
    pub size: u64,
}

/// What a small file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Pointer(Pointer),
    /// Starts with a pointer's `version` line but is not a valid pointer: why.
    Invalid(String),
    /// Not a pointer at all (real content).
    NotPointer,
}

impl Pointer {
    /// The pointer's text, as git-lfs writes it.
    pub fn text(&self) -> String {
        format!(
            "version {VERSION}\noid sha256:{}\nsize {}\n",
            self.oid, self.size
        )
    }
}

/// Whether `oid` is 64 lower-case hex digits.
pub fn valid_oid(oid: &str) -> bool {
    oid.len() == 64
        && oid
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Reads `bytes` as a pointer.
pub fn parse(bytes: &[u8]) -> Parsed {
    let head = b"version https://git-lfs.github.com/spec/";
    if !bytes.starts_with(head) {
        return Parsed::NotPointer;
    }
    let bad = |why: &str| Parsed::Invalid(why.to_owned());
    if bytes.len() as u64 >= MAX_SIZE {
        return bad("it is larger than a pointer can be");
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return bad("it is not UTF-8 text");
    };
    let Some(body) = text.strip_suffix('\n') else {
        return bad("its last line does not end with a newline");
    };
    let mut lines = body.split('\n');
    if lines.next() != Some(&format!("version {VERSION}")[..]) {
        return bad("its version is not https://git-lfs.github.com/spec/v1");
    }
    let (mut oid, mut size, mut last_key) = (None, None, String::new());
    for line in lines {
        let Some((key, value)) = line.split_once(' ') else {
            return bad("a line is not `key value`");
        };
        let key_ok = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !key_ok || key <= last_key.as_str() || key == "version" {
            return bad("its keys are not sorted, repeated, or malformed");
        }
        last_key = key.to_owned();
        match key {
            "oid" => match value.strip_prefix("sha256:") {
                Some(hex) if valid_oid(hex) => oid = Some(hex.to_owned()),
                _ => return bad("its oid is not `sha256:` and 64 lower-case hex digits"),
            },
            "size" => {
                let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                match value.parse::<u64>() {
                    Ok(n) if digits && (value == "0" || !value.starts_with('0')) => size = Some(n),
                    _ => return bad("its size is not a decimal number"),
                }
            }
            _ => {}
        }
    }
    match (oid, size) {
        (Some(oid), Some(size)) => Parsed::Pointer(Pointer { oid, size }),
        _ => bad("it lacks its oid or its size"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    #[test]
    fn a_pointer_parses_and_prints_back_the_same() {
        let text = format!("version {VERSION}\noid sha256:{OID}\nsize 12345\n");
        let Parsed::Pointer(p) = parse(text.as_bytes()) else {
            panic!("not parsed");
        };
        assert_eq!((p.oid.as_str(), p.size), (OID, 12345));
        assert_eq!(p.text(), text);
    }

    #[test]
    fn extension_keys_in_order_are_allowed() {
        let text = format!("version {VERSION}\next-0-foo sha256:{OID}\noid sha256:{OID}\nsize 1\n");
        assert!(matches!(parse(text.as_bytes()), Parsed::Pointer(_)));
    }

    #[test]
    fn content_is_not_a_pointer() {
        assert_eq!(parse(b"\x00\x01binary"), Parsed::NotPointer);
        assert_eq!(parse(b""), Parsed::NotPointer);
    }

    #[test]
    fn broken_pointers_are_invalid_with_a_reason() {
        let cases = [
            format!("version {VERSION}\noid sha256:{}\nsize 1\n", &OID[..63]),
            format!(
                "version {VERSION}\noid sha256:{}\nsize 1\n",
                OID.to_uppercase()
            ),
            format!("version {VERSION}\nsize 1\noid sha256:{OID}\n"),
            format!("version {VERSION}\noid sha256:{OID}\nsize -1\n"),
            format!("version {VERSION}\noid sha256:{OID}\nsize 01\n"),
            format!("version {VERSION}\noid sha256:{OID}\nsize 1"),
            format!("version {VERSION}\noid sha256:{OID}\n"),
            format!("version https://git-lfs.github.com/spec/v2\noid sha256:{OID}\nsize 1\n"),
            format!("version {VERSION}\noid sha256:{OID}\noid sha256:{OID}\nsize 1\n"),
            format!(
                "version {VERSION}\noid sha256:{OID}\nsize 1\n{}",
                "x".repeat(1024)
            ),
        ];
        for c in cases {
            assert!(matches!(parse(c.as_bytes()), Parsed::Invalid(_)), "{c:?}");
        }
    }
}
