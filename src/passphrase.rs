//! The passphrase type: a secret string, zeroized when dropped and never printed (its `Debug`
//! is redacted), and how an existing key will be unlocked. A leaf: it depends on nothing else
//! in keyclone, so the key code, the UI and the keyring cache can all name it.

use std::fmt;

use zeroize::Zeroizing;

/// A secret string, wiped from memory on drop.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    pub fn new(s: String) -> Self {
        Passphrase(Zeroizing::new(s))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// How an existing key will be used.
#[derive(Debug, Clone)]
pub enum Unlock {
    /// ssh-agent holds the key: no passphrase needed.
    Agent,
    /// The key file is not encrypted.
    Plain,
    /// The passphrase that decrypts the key (checked).
    Passphrase(Passphrase),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let p = Passphrase::new("hunter2".into());
        assert_eq!(format!("{p:?}"), "Passphrase(<redacted>)");
    }
}
