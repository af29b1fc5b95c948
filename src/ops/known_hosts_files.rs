//! The known_hosts files keyclone reads and writes: the user's file and the system one (with
//! their skipped lines reported), additions and removals under the file's lock, the lines a
//! provider's pins give, and fetching a host key with the algorithms already known first.
//! `trust` and the host approval of [`super::host`] use them.

use std::path::Path;
use std::time::Duration;

use ssh_key::PublicKey;

use crate::context::Ctx;
use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::files;
use crate::ssh::known_hosts::{self, KnownHosts, Marker};
use crate::ssh::probe;

pub(crate) fn read_known_hosts(ctx: &mut Ctx, user_file: &Path) -> Result<Vec<KnownHosts>> {
    if user_file.is_dir() {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "`{}` is a directory, not a known_hosts file",
                user_file.display()
            ),
        )
        .hint("move it away; keyclone (and ssh) then create the file"));
    }
    let mut out = vec![
        KnownHosts::read(user_file)
            .map_err(|e| e.hint("check the file's owner and mode (`ls -l`)"))?,
    ];
    let global = ctx.env.system_known_hosts();
    match KnownHosts::read(&global) {
        Ok(g) => out.push(g),
        Err(e) => ctx.ui.warn(&format!(
            "`{}` is ignored: {}",
            global.display(),
            e.message()
        )),
    }
    for kh in &out {
        for p in kh.problems.iter().take(10) {
            ctx.ui.warn(&format!(
                "`{}` line {} was skipped: {}",
                kh.path.display(),
                p.line,
                p.reason
            ));
        }
        if kh.problems.len() > 10 {
            ctx.ui.warn(&format!(
                "`{}`: {} more lines were skipped",
                kh.path.display(),
                kh.problems.len() - 10
            ));
        }
    }
    Ok(out)
}

/// Adds `add` lines (skipping keys the file already holds for that host) and removes the lines
/// for the endpoint whose key is in `remove_keys`, under the lock, on the file as it is then.
/// Returns (lines written, line numbers removed).
pub(crate) fn write_known_hosts(
    path: &Path,
    add: &[(Endpoint, PublicKey)],
    remove: Option<(&Endpoint, &[PublicKey])>,
    hash: bool,
) -> Result<(Vec<String>, Vec<usize>)> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    if files::check_private_dir(dir)? == files::DirState::Missing {
        files::ensure_private_dir(dir)?;
    }
    // Every host that reaches the file passes the names rule here, whoever asked for it
    // (`trust`, `init`, `clone`): a comma or pattern would make the line match other hosts.
    for (ep, _) in add {
        known_hosts::valid_host(&ep.host)?;
        crate::names::port(ep.port).map_err(Error::usage)?;
    }
    let mut written = Vec::new();
    let mut removed = Vec::new();
    known_hosts::update(path, |current| {
        let kh = KnownHosts::parse(path, current);
        if let Some((ep, keys)) = remove {
            removed = kh
                .lookup(ep)
                .filter(|e| {
                    e.marker == Marker::None
                        && keys.iter().any(|k| k.key_data() == e.key.key_data())
                })
                .map(|e| e.line)
                .collect();
        }
        for (ep, key) in add {
            let present = kh.lookup(ep).any(|e| {
                e.marker == Marker::None
                    && e.key.key_data() == key.key_data()
                    && !removed.contains(&e.line)
            });
            if !present {
                written.push(known_hosts::format_line(ep, key, hash));
            }
        }
        if written.is_empty() && removed.is_empty() {
            return Ok(None);
        }
        Ok(Some(known_hosts::edit_bytes(current, &removed, &written)))
    })?;
    Ok((written, removed))
}

/// Fetches the host key, asking first for the algorithms already known for this host.
pub(crate) fn fetch(
    ctx: &Ctx,
    files: &[KnownHosts],
    ep: &Endpoint,
    timeout: Duration,
) -> Result<PublicKey> {
    let mut known_algs: Vec<String> = files
        .iter()
        .flat_map(|f| f.lookup(ep))
        .filter(|e| e.marker == Marker::None)
        .map(|e| e.key.algorithm().as_str().to_owned())
        .collect();
    if let Some(p) = ctx.registry.for_endpoint(ep) {
        for pin in p
            .pins
            .iter()
            .filter(|pin| pin.endpoint == *ep && pin.confirmed)
        {
            if let Some(k) = &pin.key {
                known_algs.push(k.split(' ').next().unwrap_or_default().to_owned());
            }
        }
    }
    probe::fetch_host_key(ep, timeout, &probe::host_key_preference(&known_algs))
}

/// The known_hosts lines to write for a pinned host: the provider's confirmed keys for this
/// endpoint, or (self-hosted pins are fingerprints) the presented key that matched one.
pub(crate) fn pinned_lines(
    p: &crate::providers::Provider,
    ep: &Endpoint,
    presented: &PublicKey,
) -> Vec<(Endpoint, PublicKey)> {
    let mut lines: Vec<(Endpoint, PublicKey)> = p
        .pins
        .iter()
        .filter(|pin| pin.endpoint == *ep && pin.confirmed)
        .filter_map(|pin| {
            pin.key
                .as_deref()
                .and_then(|k| PublicKey::from_openssh(k).ok())
        })
        .map(|k| (ep.clone(), k))
        .collect();
    if lines.is_empty() {
        lines.push((ep.clone(), presented.clone()));
    }
    lines
}

/// The keys of the known_hosts lines for this host other than `key`.
pub(crate) fn other_keys(files: &[KnownHosts], ep: &Endpoint, key: &PublicKey) -> Vec<PublicKey> {
    files
        .iter()
        .flat_map(|f| f.lookup(ep))
        .filter(|e| e.marker == Marker::None && e.key.key_data() != key.key_data())
        .map(|e| e.key.clone())
        .collect()
}
