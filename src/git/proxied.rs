//! libgit2 through a proxy: libgit2 opens its own TCP connection for `ssh://`, so for an
//! endpoint `~/.ssh/config` sends through a `ProxyCommand`/`ProxyJump`, the URL given to
//! libgit2 uses a private scheme whose transport (a smart subtransport) runs the SSH session
//! over the proxy ([`crate::ssh::probe::login_through_proxy`]: the host key must be the one
//! approved a moment before, the same key and unlock as the direct path) and execs
//! `git-upload-pack 'PATH'` quoted as git quotes it. One transfer at a time per process.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream, Transport};
use ssh_key::PublicKey;
use zeroize::Zeroizing;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::git::remote::RemoteUrl;
use crate::git::transport::Auth;
use crate::passphrase::Unlock;

const SCHEME: &str = "keyclone-proxy";

/// What the transport needs for the one transfer under way.
struct Job {
    ep: Endpoint,
    host_key: PublicKey,
    user: String,
    path: String,
    key: std::path::PathBuf,
    agent: bool,
    passphrase: Option<Zeroizing<String>>,
    timeout: Duration,
}

static JOB: Mutex<Option<Job>> = Mutex::new(None);
/// keyclone's own error for the last failed transfer (libgit2 keeps only a string).
static FAILED: Mutex<Option<Error>> = Mutex::new(None);

/// Clears the job when the transfer is over.
#[derive(Debug)]
pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        *JOB.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The URL libgit2 gets for `url`, and the guard of the job, when `url`'s endpoint goes
/// through a proxy; `None` for a direct connection.
pub fn prepare(
    url: &RemoteUrl,
    auth: &Auth,
    host_key: &PublicKey,
) -> Result<Option<(String, Guard)>> {
    let ep = url.endpoint();
    if crate::ssh::proxy::command_for(&ep).is_none() {
        return Ok(None);
    }
    register_once()?;
    let path = if url.original.contains("://") {
        format!("/{}", url.path.trim_start_matches('/'))
    } else {
        url.path.clone()
    };
    let (agent, passphrase) = match &auth.unlock {
        Unlock::Agent => (true, None),
        Unlock::Plain => (false, None),
        Unlock::Passphrase(p) => (false, Some(Zeroizing::new(p.expose().to_owned()))),
    };
    *JOB.lock().unwrap_or_else(|p| p.into_inner()) = Some(Job {
        ep: ep.clone(),
        host_key: host_key.clone(),
        user: url
            .user
            .clone()
            .unwrap_or_else(|| auth.default_user.clone()),
        path,
        key: auth.key.clone(),
        agent,
        passphrase,
        timeout: Duration::from_secs(30),
    });
    *FAILED.lock().unwrap_or_else(|p| p.into_inner()) = None;
    Ok(Some((
        format!("{SCHEME}://{}/", ep.known_hosts_name()),
        Guard,
    )))
}

/// keyclone's error for a transfer through the proxy that failed, if it recorded one.
pub fn take_error() -> Option<Error> {
    FAILED.lock().unwrap_or_else(|p| p.into_inner()).take()
}

fn register_once() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        #[allow(unsafe_code)]
        // SAFETY: `git_transport_register` is called once per process (under `Once`) for a
        // scheme no other code registers, before any transfer on it; the factory is 'static.
        let r = unsafe {
            git2::transport::register(SCHEME, |remote| {
                Transport::smart(remote, false, Sub(Arc::new(Mutex::new(None))))
            })
        };
        if let Err(e) = r {
            result = Err(Error::internal(format!(
                "could not register the proxy transport: {}",
                e.message()
            )));
        }
    });
    result
}

/// `'path'` as git's `sq_quote_buf`: `'` and `!` closed, escaped, reopened.
fn sq_quote(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\'' | '!' => {
                out.push_str("'\\");
                out.push(c);
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

struct Session {
    channel: ssh2::Channel,
    _session: ssh2::Session,
    _proxy: crate::ssh::proxy::ProxyStream,
}

type Shared = Arc<Mutex<Option<Session>>>;

struct Sub(Shared);

fn open() -> Result<Session> {
    let guard = JOB.lock().unwrap_or_else(|p| p.into_inner());
    let job = guard
        .as_ref()
        .ok_or_else(|| Error::internal("a proxied transfer without its job"))?;
    let key = if job.agent {
        crate::ssh::probe::LoginKey::Agent
    } else {
        crate::ssh::probe::LoginKey::File {
            path: &job.key,
            passphrase: job.passphrase.as_ref().map(|p| p.as_str()),
        }
    };
    let (session, proxy) = crate::ssh::probe::login_through_proxy(
        &job.ep,
        job.timeout,
        &job.host_key,
        &job.user,
        key,
    )?;
    let what = |e: ssh2::Error| {
        Error::new(
            crate::error::ErrorKind::Network,
            format!("{} refused to run git-upload-pack: {e}", job.ep),
        )
    };
    let mut channel = session.channel_session().map_err(what)?;
    channel
        .exec(&format!("git-upload-pack {}", sq_quote(&job.path)))
        .map_err(what)?;
    // A transfer may pause longer than the handshake may take.
    session.set_timeout(120_000);
    Ok(Session {
        channel,
        _session: session,
        _proxy: proxy,
    })
}

impl SmartSubtransport for Sub {
    fn action(
        &self,
        _url: &str,
        action: Service,
    ) -> std::result::Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        if !matches!(action, Service::UploadPackLs | Service::UploadPack) {
            return Err(git2::Error::from_str(
                "keyclone only fetches through a proxy",
            ));
        }
        let mut shared = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if shared.is_none() {
            match open() {
                Ok(s) => *shared = Some(s),
                Err(e) => {
                    let msg = e.to_string();
                    *FAILED.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    return Err(git2::Error::from_str(&msg));
                }
            }
        }
        Ok(Box::new(Stream(Arc::clone(&self.0))))
    }

    fn close(&self) -> std::result::Result<(), git2::Error> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }
}

struct Stream(Shared);

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(s) => s.channel.read(buf),
            None => Ok(0),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(s) => s.channel.write(buf),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(s) => s.channel.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_as_git_quotes_them() {
        assert_eq!(sq_quote("/srv/repo.git"), "'/srv/repo.git'");
        assert_eq!(sq_quote("a'b!c"), "'a'\\''b'\\!'c'");
    }
}
