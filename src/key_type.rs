//! The one key-type enum: what providers accept (`[provider.X] key_types`, the built-in table)
//! and what `keygen --type` creates. A leaf, so the config, the provider table and the key code
//! can all name it.

use ssh_key::Algorithm;

/// A user key type: the types providers list, of which keyclone creates two (ed25519 and RSA,
/// the only values of `keygen --type`). One enum for both: what a provider accepts and what
/// keyclone writes are compared without a conversion.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// Ed25519: small, fast, the default
    Ed25519,
    #[value(skip)]
    Ecdsa,
    /// RSA 4096 (signs with rsa-sha2-512): for providers that accept nothing else (Azure DevOps)
    Rsa,
    #[value(skip)]
    SkEd25519,
    #[value(skip)]
    SkEcdsa,
}

impl KeyType {
    /// The type of a key's algorithm, if it is a user key type.
    pub fn of(alg: &Algorithm) -> Option<KeyType> {
        match alg {
            Algorithm::Ed25519 => Some(KeyType::Ed25519),
            Algorithm::Ecdsa { .. } => Some(KeyType::Ecdsa),
            Algorithm::Rsa { .. } => Some(KeyType::Rsa),
            Algorithm::SkEd25519 => Some(KeyType::SkEd25519),
            Algorithm::SkEcdsaSha2NistP256 => Some(KeyType::SkEcdsa),
            _ => None,
        }
    }

    /// Whether keyclone creates keys of this type (`ssh::key::generate`).
    pub fn creatable(self) -> bool {
        matches!(self, KeyType::Ed25519 | KeyType::Rsa)
    }

    /// The type of an existing key, if keyclone creates that type.
    pub fn of_algorithm(alg: &Algorithm) -> Option<KeyType> {
        KeyType::of(alg).filter(|t| t.creatable())
    }

    /// The name as it appears at the start of a public key line.
    pub fn ssh_name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ssh-ed25519",
            KeyType::Ecdsa => "ecdsa-sha2-nistp256/384/521",
            KeyType::Rsa => "ssh-rsa",
            KeyType::SkEd25519 => "sk-ssh-ed25519@openssh.com",
            KeyType::SkEcdsa => "sk-ecdsa-sha2-nistp256@openssh.com",
        }
    }

    /// A short name for messages: `ed25519`, `rsa`, ...
    pub fn short(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::Ecdsa => "ecdsa",
            KeyType::Rsa => "rsa",
            KeyType::SkEd25519 => "ed25519-sk",
            KeyType::SkEcdsa => "ecdsa-sk",
        }
    }

    /// OpenSSH's default file name for this type.
    pub fn default_file_name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "id_ed25519",
            KeyType::Ecdsa => "id_ecdsa",
            KeyType::Rsa => "id_rsa",
            KeyType::SkEd25519 => "id_ed25519_sk",
            KeyType::SkEcdsa => "id_ecdsa_sk",
        }
    }

    /// For messages: `ed25519`, `RSA 4096`.
    pub fn label(self) -> &'static str {
        match self {
            KeyType::Rsa => "RSA 4096",
            other => other.short(),
        }
    }
}
