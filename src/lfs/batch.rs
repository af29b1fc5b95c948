//! git-lfs's HTTPS batch API (`docs/api/batch.md`) as reached over SSH: the JSON that
//! `git-lfs-authenticate PATH download` prints (the API's address and the header to send), the
//! batch request, and the pure judgement of the server's answer: each object gets a download
//! (an `https` URL and the headers for it) or the reason it gets none.
//!
//! The answer is hostile input: its size must be the pointer's; an `href` must be `https`; the
//! header `git-lfs-authenticate` gave (derived from the SSH login) goes only to the origin it
//! was given for, never to another host an answer points to (that host gets only the headers
//! the answer names for it), and not even there when the answer says its own headers suffice
//! (`authenticated`), as git-lfs does.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::http::{Credential, same_origin};
use crate::lfs::pointer::Pointer;

/// The most of a server's text (an error message) that is shown, control characters removed.
const SHOWN: usize = 200;

/// Server text made safe to show: no control characters, bounded.
pub fn shown(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(SHOWN)
        .collect();
    clean
}

/// Headers to send: the `Authorization` one as a [`Credential`], the others as they are.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    pub auth: Option<Credential>,
    pub other: Vec<(String, String)>,
}

impl Headers {
    fn from_map(map: &BTreeMap<String, String>) -> Result<Headers> {
        let mut h = Headers::default();
        for (name, value) in map {
            let ok_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok_name || value.chars().any(|c| c.is_control()) {
                return Err(Error::refused(format!(
                    "the LFS server gave a header keyclone will not send (`{}`)",
                    shown(name)
                )));
            }
            if name.eq_ignore_ascii_case("authorization") {
                h.auth = Some(Credential::raw(value));
            } else {
                h.other.push((name.clone(), value.clone()));
            }
        }
        Ok(h)
    }
}

/// The batch API's address and the header for it, from `git-lfs-authenticate`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub href: Url,
    pub headers: Headers,
}

#[derive(Deserialize)]
struct AuthAnswer {
    href: String,
    #[serde(default)]
    header: BTreeMap<String, String>,
}

/// Reads `git-lfs-authenticate`'s output.
pub fn parse_authenticate(stdout: &[u8], who: &str) -> Result<Endpoint> {
    let answer: AuthAnswer = serde_json::from_slice(stdout).map_err(|e| {
        Error::new(
            ErrorKind::Network,
            format!("`git-lfs-authenticate` on {who} answered something that is not its JSON"),
        )
        .with_source(e)
    })?;
    let href = Url::parse(&answer.href).map_err(|_| {
        Error::refused(format!(
            "`git-lfs-authenticate` on {who} gave an LFS address that is not a URL"
        ))
    })?;
    crate::http::check_url(&href)?;
    Ok(Endpoint {
        href,
        headers: Headers::from_map(&answer.header)?,
    })
}

/// The batch API's URL: the endpoint and `/objects/batch`.
pub fn batch_url(endpoint: &Endpoint) -> Result<Url> {
    let base = endpoint.href.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}/objects/batch"))
        .map_err(|_| Error::internal("could not form the LFS batch URL"))
}

/// The body of a download batch request for `objects`.
pub fn request_body(objects: &[Pointer]) -> Vec<u8> {
    let objects: Vec<_> = objects
        .iter()
        .map(|p| serde_json::json!({"oid": p.oid, "size": p.size}))
        .collect();
    serde_json::json!({
        "operation": "download",
        "transfers": ["basic"],
        "objects": objects,
        "hash_algo": "sha256",
    })
    .to_string()
    .into_bytes()
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    transfer: Option<String>,
    #[serde(default)]
    objects: Vec<ObjectAnswer>,
}

#[derive(Deserialize)]
struct ObjectAnswer {
    oid: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    actions: Option<Actions>,
    #[serde(default)]
    error: Option<ObjectError>,
    /// The action's own headers suffice (git-lfs then adds no credentials of its own).
    #[serde(default)]
    authenticated: bool,
}

#[derive(Deserialize)]
struct Actions {
    download: Option<Action>,
}

#[derive(Deserialize)]
struct Action {
    href: String,
    #[serde(default)]
    header: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct ObjectError {
    code: i64,
    #[serde(default)]
    message: String,
}

/// One object's download.
#[derive(Debug, Clone)]
pub struct Fetch {
    pub url: Url,
    pub headers: Headers,
}

/// Judges the batch answer `body` for the objects `wanted`: for each (same order) a download or
/// why there is none. An answer that is not the API's JSON at all is an error.
pub fn judge(
    endpoint: &Endpoint,
    wanted: &[Pointer],
    body: &[u8],
) -> Result<Vec<std::result::Result<Fetch, String>>> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::Network,
            format!(
                "the LFS server {} answered the batch request with JSON keyclone cannot read",
                crate::http::origin_of(&endpoint.href)
            ),
        )
        .with_source(e)
    })?;
    if let Some(t) = answer.transfer.as_deref().filter(|t| *t != "basic") {
        return Err(Error::new(
            ErrorKind::Network,
            format!(
                "the LFS server chose the transfer `{}`; keyclone speaks only `basic`",
                shown(t)
            ),
        ));
    }
    let mut by_oid: HashMap<String, ObjectAnswer> = HashMap::new();
    for o in answer.objects {
        by_oid.entry(o.oid.clone()).or_insert(o);
    }
    Ok(wanted
        .iter()
        .map(|p| match by_oid.remove(&p.oid) {
            None => Err("the server's answer does not mention it".to_owned()),
            Some(o) => judge_one(endpoint, p, o),
        })
        .collect())
}

fn judge_one(
    endpoint: &Endpoint,
    p: &Pointer,
    o: ObjectAnswer,
) -> std::result::Result<Fetch, String> {
    if let Some(e) = o.error {
        let what = match e.code {
            404 => "the server does not have it",
            410 => "the server removed it",
            403 | 401 => "the server refused access to it",
            507 | 509 => "the server's storage or bandwidth quota is exhausted",
            _ => "the server could not give it",
        };
        return Err(format!("{what} ({}: {})", e.code, shown(&e.message)));
    }
    if o.size.is_some_and(|s| s != p.size) {
        return Err(format!(
            "the server says it has {} bytes, its pointer says {}: refused",
            o.size.unwrap_or(0),
            p.size
        ));
    }
    let Some(action) = o.actions.and_then(|a| a.download) else {
        return Err("the server offered no download for it".to_owned());
    };
    let url = Url::parse(&action.href)
        .map_err(|_| "the server's download address is not a URL".to_owned())?;
    if url.scheme() != "https" {
        return Err(format!(
            "the server's download address is `{}:`, not `https:`: keyclone downloads over HTTPS only",
            shown(url.scheme())
        ));
    }
    crate::http::check_url(&url).map_err(|e| e.message().to_owned())?;
    let mut headers = Headers::from_map(&action.header).map_err(|e| e.message().to_owned())?;
    if same_origin(&url, &endpoint.href) && !o.authenticated {
        if headers.auth.is_none() {
            headers.auth = endpoint.headers.auth.clone();
        }
        for (n, v) in &endpoint.headers.other {
            if !headers.other.iter().any(|(m, _)| m.eq_ignore_ascii_case(n)) {
                headers.other.push((n.clone(), v.clone()));
            }
        }
    }
    Ok(Fetch { url, headers })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    fn endpoint() -> Endpoint {
        parse_authenticate(
            br#"{"href":"https://lfs.example/o/r.git/info/lfs","header":{"Authorization":"RemoteAuth s3cret"},"expires_in":60}"#,
            "h",
        )
        .unwrap()
    }

    fn one(answer: serde_json::Value) -> std::result::Result<Fetch, String> {
        let p = Pointer {
            oid: OID.into(),
            size: 5,
        };
        let body = answer.to_string();
        judge(&endpoint(), &[p], body.as_bytes()).unwrap().remove(0)
    }

    fn download(href: &str, header: serde_json::Value, size: u64) -> serde_json::Value {
        serde_json::json!({"transfer":"basic","objects":[{"oid":OID,"size":size,
            "actions":{"download":{"href":href,"header":header}}}]})
    }

    #[test]
    fn the_authenticate_header_goes_to_its_own_origin_only() {
        let same = one(download(
            "https://lfs.example/o/r/objects/x",
            serde_json::json!({}),
            5,
        ))
        .unwrap();
        assert!(same.headers.auth.is_some());
        let mut preauth = download(
            "https://lfs.example/o/r/objects/x",
            serde_json::json!({}),
            5,
        );
        preauth["objects"][0]["authenticated"] = true.into();
        assert!(one(preauth).unwrap().headers.auth.is_none());
        let other = one(download(
            "https://cdn.example/x",
            serde_json::json!({"X-Sig":"abc"}),
            5,
        ))
        .unwrap();
        assert!(other.headers.auth.is_none());
        assert_eq!(other.headers.other, vec![("X-Sig".into(), "abc".into())]);
    }

    #[test]
    fn http_hrefs_lying_sizes_and_errors_are_refused_with_a_reason() {
        let e = one(download("http://lfs.example/x", serde_json::json!({}), 5)).unwrap_err();
        assert!(e.contains("HTTPS only"), "{e}");
        let e = one(download("https://lfs.example/x", serde_json::json!({}), 6)).unwrap_err();
        assert!(e.contains("6 bytes"), "{e}");
        let e = one(serde_json::json!({"objects":[{"oid":OID,"size":5,
            "error":{"code":404,"message":"Object does not exist\u{1b}[31m"}}]}))
        .unwrap_err();
        assert!(
            e.contains("does not have it") && !e.contains('\u{1b}'),
            "{e}"
        );
        let e = one(serde_json::json!({"objects":[]})).unwrap_err();
        assert!(e.contains("does not mention"), "{e}");
    }

    #[test]
    fn an_authenticate_answer_must_be_https_json() {
        assert!(parse_authenticate(b"not json", "h").is_err());
        assert!(parse_authenticate(br#"{"href":"http://lfs.example/x"}"#, "h").is_err());
        let e = endpoint();
        assert_eq!(
            batch_url(&e).unwrap().as_str(),
            "https://lfs.example/o/r.git/info/lfs/objects/batch"
        );
        assert!(!format!("{e:?}").contains("s3cret"));
    }
}
