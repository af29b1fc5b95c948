//! Asks an SSH server for its host key: TCP connect and the SSH key exchange through libssh2,
//! no authentication. Bounded by a timeout; a server that is not SSH, or that hangs up, is a
//! clear error.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use ssh_key::PublicKey;

use crate::error::{Error, ErrorKind, Result};

/// libssh2's host key method names for a key algorithm name.
fn methods_for(algorithm: &str) -> &'static [&'static str] {
    match algorithm {
        "ssh-ed25519" => &["ssh-ed25519"],
        "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
        "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
        "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
        "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        _ => &[],
    }
}

const DEFAULT_ORDER: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
];

/// The host key preference: the algorithms already known for this host first (as OpenSSH
/// orders them, so a server with several keys shows the one we can check), then the rest.
pub fn host_key_preference(known_algorithms: &[String]) -> String {
    let mut order: Vec<&str> = Vec::new();
    for alg in known_algorithms {
        for m in methods_for(alg) {
            if !order.contains(m) {
                order.push(m);
            }
        }
    }
    for m in DEFAULT_ORDER {
        if !order.contains(m) {
            order.push(m);
        }
    }
    order.join(",")
}

/// Connects to `host`:`port` and returns the host key the server presents.
pub fn fetch_host_key(
    host: &str,
    port: u16,
    timeout: Duration,
    preference: &str,
) -> Result<PublicKey> {
    let who = format!("{host}:{port}");
    let net = |what: String| Error::new(ErrorKind::Network, what);
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            net(format!("could not find the address of `{host}`"))
                .with_source(e)
                .hint("check the host name and your network (DNS)")
        })?
        .collect();
    let mut last = None;
    let mut stream = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(stream) = stream else {
        let mut e = net(format!("could not connect to {who}"));
        if let Some(cause) = last {
            e = e.with_source(cause);
        }
        return Err(e
            .hint("check the host and the port; a firewall may block port 22")
            .hint("GitHub and GitLab also answer on port 443: `ssh.github.com:443`, `altssh.gitlab.com:443`"));
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let mut session = ssh2::Session::new()
        .map_err(|e| Error::internal("could not start libssh2").with_source(e))?;
    session.set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
    let _ = session.method_pref(ssh2::MethodType::HostKey, preference);
    session.set_tcp_stream(stream);
    session.handshake().map_err(|e| {
        net(format!("{who} did not complete an SSH handshake (it closed the connection, timed out, or is not an SSH server)"))
            .with_source(e)
            .hint("check that the host and port are those of the Git server's SSH service")
    })?;
    let (blob, _) = session.host_key().ok_or_else(|| {
        net(format!(
            "{who} completed the handshake but showed no host key"
        ))
    })?;
    let key = PublicKey::from_bytes(blob).map_err(|e| {
        Error::new(
            ErrorKind::HostKey,
            format!("{who} presented a host key keyclone cannot read"),
        )
        .with_source(e)
    })?;
    let _ = session.disconnect(None, "keyclone: host key checked", None);
    Ok(key)
}

/// How to present the key when logging in.
#[derive(Debug, Clone, Copy)]
pub enum LoginKey<'a> {
    Agent,
    File {
        path: &'a std::path::Path,
        passphrase: Option<&'a str>,
    },
}

/// Logs in as `user` with a key (like `ssh -T`), after checking that the server presents
/// `expected` as its host key. Returns whether the server accepted the key.
pub fn check_login(
    host: &str,
    port: u16,
    timeout: Duration,
    expected: &PublicKey,
    user: &str,
    key: LoginKey<'_>,
) -> Result<bool> {
    let who = format!("{host}:{port}");
    let stream = TcpStream::connect_timeout(
        &(host, port)
            .to_socket_addrs()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Network,
                    format!("could not find the address of `{host}`"),
                )
                .with_source(e)
            })?
            .next()
            .ok_or_else(|| Error::new(ErrorKind::Network, format!("`{host}` has no address")))?,
        timeout,
    )
    .map_err(|e| {
        Error::new(ErrorKind::Network, format!("could not connect to {who}")).with_source(e)
    })?;
    let mut session = ssh2::Session::new()
        .map_err(|e| Error::internal("could not start libssh2").with_source(e))?;
    session.set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
    let _ = session.method_pref(
        ssh2::MethodType::HostKey,
        &host_key_preference(&[expected.algorithm().as_str().to_owned()]),
    );
    session.set_tcp_stream(stream);
    session.handshake().map_err(|e| {
        Error::new(
            ErrorKind::Network,
            format!("{who} did not complete an SSH handshake"),
        )
        .with_source(e)
    })?;
    let presented = session
        .host_key()
        .and_then(|(b, _)| PublicKey::from_bytes(b).ok());
    if presented.as_ref().map(|k| k.key_data()) != Some(expected.key_data()) {
        return Err(Error::new(
            ErrorKind::HostKey,
            format!("{who} presented another host key than the one verified a moment ago; keyclone stopped"),
        )
        .hint("someone may be intercepting the connection: do not continue; check with `keyclone trust`"));
    }
    let _ = match key {
        LoginKey::Agent => session.userauth_agent(user),
        LoginKey::File { path, passphrase } => {
            session.userauth_pubkey_file(user, None, path, passphrase)
        }
    };
    let ok = session.authenticated();
    let _ = session.disconnect(None, "keyclone: login checked", None);
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_come_first() {
        let p = host_key_preference(&["ssh-rsa".into()]);
        assert!(
            p.starts_with("rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-ed25519"),
            "{p}"
        );
        assert!(host_key_preference(&[]).starts_with("ssh-ed25519,"));
    }
}
