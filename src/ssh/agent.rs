//! ssh-agent: does it hold a given key? (libssh2's agent client; the socket comes from
//! `SSH_AUTH_SOCK`.)

use ssh_encoding::Encode;
use ssh_key::PublicKey;

/// Whether the running agent holds `key`. Any failure (no agent, locked agent) means no.
pub fn holds(key: &PublicKey) -> bool {
    let mut blob = Vec::new();
    if key.key_data().encode(&mut blob).is_err() {
        return false;
    }
    let Ok(session) = ssh2::Session::new() else {
        return false;
    };
    let Ok(mut agent) = session.agent() else {
        return false;
    };
    if agent.connect().is_err() || agent.list_identities().is_err() {
        return false;
    }
    let found = agent
        .identities()
        .map(|ids| ids.iter().any(|id| id.blob() == blob.as_slice()))
        .unwrap_or(false);
    let _ = agent.disconnect();
    found
}

/// Talks to ssh-agent over its socket (the protocol of draft-miller-ssh-agent) to add or
/// remove a key: OpenSSH's `ssh-add` would need the passphrase on a terminal or through
/// `SSH_ASKPASS`; keyclone already holds the decrypted key.
pub mod client {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::path::Path;
    use std::time::Duration;

    use ssh_encoding::Encode;
    use ssh_key::{PrivateKey, PublicKey};
    use zeroize::Zeroizing;

    use crate::error::{Error, ErrorKind, Result};

    const ADD_IDENTITY: u8 = 17;
    const REMOVE_IDENTITY: u8 = 18;
    const ADD_ID_CONSTRAINED: u8 = 25;
    const CONSTRAIN_LIFETIME: u8 = 1;
    const SUCCESS: u8 = 6;

    fn agent_error(
        what: &str,
        socket: &Path,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::new(
            ErrorKind::Io,
            format!("could not {what} ssh-agent at `{}`", socket.display()),
        )
        .with_source(e)
        .hint("start an agent with `eval \"$(ssh-agent)\"` in this shell, then run the same command again")
    }

    fn request(socket: &Path, body: &[u8]) -> Result<u8> {
        let mut s = UnixStream::connect(socket).map_err(|e| agent_error("reach", socket, e))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
        let len =
            u32::try_from(body.len()).map_err(|_| Error::internal("agent message too long"))?;
        let mut msg = Zeroizing::new(Vec::with_capacity(body.len() + 4));
        msg.extend_from_slice(&len.to_be_bytes());
        msg.extend_from_slice(body);
        s.write_all(&msg)
            .map_err(|e| agent_error("talk to", socket, e))?;
        let mut head = [0u8; 5];
        s.read_exact(&mut head)
            .map_err(|e| agent_error("read the answer of", socket, e))?;
        Ok(head[4])
    }

    /// Adds a decrypted key, kept for `lifetime` (None: until the agent stops).
    pub fn add(socket: &Path, key: &PrivateKey, lifetime: Option<u32>) -> Result<()> {
        if key.is_encrypted() {
            return Err(Error::internal("ssh-agent needs the decrypted key"));
        }
        let mut body = Zeroizing::new(Vec::new());
        body.push(if lifetime.is_some() {
            ADD_ID_CONSTRAINED
        } else {
            ADD_IDENTITY
        });
        key.key_data()
            .encode(&mut *body)
            .and_then(|()| key.comment().encode(&mut *body))
            .map_err(|e| {
                Error::internal("could not encode the key for ssh-agent").with_source(e)
            })?;
        if let Some(secs) = lifetime {
            body.push(CONSTRAIN_LIFETIME);
            body.extend_from_slice(&secs.to_be_bytes());
        }
        match request(socket, &body)? {
            SUCCESS => Ok(()),
            _ => Err(
                Error::new(ErrorKind::Refused, "ssh-agent refused to add the key").hint(
                    "the agent may be locked (`ssh-add -X` unlocks it) or not accept this key type",
                ),
            ),
        }
    }

    /// Removes a key; a key the agent does not hold is not an error.
    pub fn remove(socket: &Path, key: &PublicKey) -> Result<bool> {
        let mut blob = Vec::new();
        key.key_data()
            .encode(&mut blob)
            .map_err(|e| Error::internal("could not encode the key").with_source(e))?;
        let mut body = vec![REMOVE_IDENTITY];
        blob.encode(&mut body)
            .map_err(|e| Error::internal("could not encode the key").with_source(e))?;
        Ok(request(socket, &body)? == SUCCESS)
    }

    /// Whether something answers on the socket.
    pub fn reachable(socket: &Path) -> bool {
        UnixStream::connect(socket).is_ok()
    }
}
