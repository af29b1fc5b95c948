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
