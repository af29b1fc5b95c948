//! User keys: generate (ed25519 with ssh-key; RSA with OpenSSL, which is as fast as
//! ssh-keygen), encrypt in OpenSSH's format (aes256-ctr + bcrypt-pbkdf), read back, and print
//! fingerprints exactly as `ssh-keygen -l` does.

use std::path::{Path, PathBuf};

use openssl::rsa::Rsa;
use rand_core::OsRng;
use ssh_key::private::{KeypairData, RsaKeypair, RsaPrivateKey};
use ssh_key::public::{KeyData, RsaPublicKey};
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, LineEnding, Mpint, PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::files;
pub use crate::key_type::KeyType;
use crate::passphrase::Passphrase;

/// RSA modulus size keyclone generates.
pub const RSA_BITS: u32 = 4096;

/// bcrypt-pbkdf rounds for new keys: OpenSSH's default since 9.4 (ssh-keygen 9.2 and older use
/// 16). More rounds make a stolen key file slower to brute-force.
pub const DEFAULT_KDF_ROUNDS: u32 = 24;

/// Creates a new unencrypted key in memory.
pub fn generate(kind: KeyType, comment: &str) -> Result<PrivateKey> {
    let key = match kind {
        KeyType::Ecdsa | KeyType::SkEd25519 | KeyType::SkEcdsa => {
            return Err(Error::internal(format!(
                "keyclone creates only ed25519 and RSA keys, not {}",
                kind.short()
            )));
        }
        KeyType::Ed25519 => {
            let mut k = PrivateKey::random(&mut OsRng, Algorithm::Ed25519)
                .map_err(|e| Error::internal("could not generate an ed25519 key").with_source(e))?;
            k.set_comment(comment);
            k
        }
        KeyType::Rsa => {
            let rsa = Rsa::generate(RSA_BITS).map_err(|e| {
                Error::internal("OpenSSL could not generate an RSA key").with_source(e)
            })?;
            let mp = |n: &openssl::bn::BigNumRef| Mpint::from_positive_bytes(&n.to_vec());
            let pair = (|| -> ssh_key::Result<RsaKeypair> {
                Ok(RsaKeypair {
                    public: RsaPublicKey {
                        e: mp(rsa.e())?,
                        n: mp(rsa.n())?,
                    },
                    private: RsaPrivateKey {
                        d: mp(rsa.d())?,
                        iqmp: mp(rsa.iqmp().ok_or(ssh_key::Error::Crypto)?)?,
                        p: mp(rsa.p().ok_or(ssh_key::Error::Crypto)?)?,
                        q: mp(rsa.q().ok_or(ssh_key::Error::Crypto)?)?,
                    },
                })
            })()
            .map_err(|e| {
                Error::internal("could not convert the RSA key to OpenSSH's format").with_source(e)
            })?;
            PrivateKey::new(KeypairData::Rsa(pair), comment)
                .map_err(|e| Error::internal("could not build the RSA key").with_source(e))?
        }
    };
    Ok(key)
}

/// A key pair encoded as OpenSSH writes it.
#[derive(Debug)]
pub struct EncodedPair {
    /// The private key file in OpenSSH's own PEM armour, encrypted if a passphrase
    /// was given. Zeroized on drop.
    pub private: Zeroizing<String>,
    /// The `.pub` line, comment included, with a trailing newline.
    pub public_line: String,
    pub public: PublicKey,
}

/// Encodes `key`, encrypting it with `passphrase` (aes256-ctr, bcrypt-pbkdf with `rounds`;
/// see [`super::kdf`]).
pub fn encode(
    key: &PrivateKey,
    passphrase: Option<&Passphrase>,
    rounds: u32,
) -> Result<EncodedPair> {
    // The comment lives in the encrypted part: take the public line before encrypting.
    let public = key.public_key().clone();
    let public_line = public
        .to_openssh()
        .map_err(|e| Error::internal("could not encode the public key").with_source(e))?;
    let private = match passphrase {
        Some(p) => super::kdf::encrypt_openssh(key, p.expose().as_bytes(), rounds)?,
        None => key
            .to_openssh(LineEnding::LF)
            .map_err(|e| Error::internal("could not encode the private key").with_source(e))?,
    };
    Ok(EncodedPair {
        private,
        public_line: format!("{public_line}\n"),
        public,
    })
}

/// Size in bits, as `ssh-keygen -l` prints it.
pub fn key_bits(key: &KeyData) -> u32 {
    fn mpint_bits(m: &Mpint) -> u32 {
        let bytes = m.as_positive_bytes().unwrap_or(&[]);
        match bytes.iter().position(|&b| b != 0) {
            Some(i) => (bytes.len() - i) as u32 * 8 - bytes[i].leading_zeros(),
            None => 0,
        }
    }
    match key {
        KeyData::Rsa(rsa) => mpint_bits(&rsa.n),
        KeyData::Dsa(dsa) => mpint_bits(&dsa.p),
        KeyData::Ecdsa(e) => match e.curve() {
            EcdsaCurve::NistP256 => 256,
            EcdsaCurve::NistP384 => 384,
            EcdsaCurve::NistP521 => 521,
        },
        // ed25519, sk-ed25519 and sk-ecdsa (nistp256) are all 256-bit.
        _ => 256,
    }
}

/// The type label in `ssh-keygen -l` output: `ED25519`, `RSA`, `ECDSA`, ...
pub fn type_label(alg: &Algorithm) -> &'static str {
    match alg {
        Algorithm::Ed25519 => "ED25519",
        Algorithm::Rsa { .. } => "RSA",
        Algorithm::Ecdsa { .. } => "ECDSA",
        Algorithm::Dsa => "DSA",
        Algorithm::SkEd25519 => "ED25519-SK",
        Algorithm::SkEcdsaSha2NistP256 => "ECDSA-SK",
        _ => "UNKNOWN",
    }
}

/// The SHA256 fingerprint, `SHA256:<base64 without padding>`.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// One line exactly as `ssh-keygen -lf FILE.pub` prints it (without the newline):
/// `256 SHA256:... user@host (ED25519)`.
pub fn fingerprint_line(key: &PublicKey) -> String {
    let comment = if key.comment().is_empty() {
        "no comment"
    } else {
        key.comment()
    };
    format!(
        "{} {} {} ({})",
        key_bits(key.key_data()),
        fingerprint(key),
        comment,
        type_label(&key.algorithm())
    )
}

/// The private key path and the `.pub` path for a path naming either of them.
pub fn pair_paths(path: &Path) -> (PathBuf, PathBuf) {
    let s = path.as_os_str().to_string_lossy();
    match s.strip_suffix(".pub") {
        Some(private) => (PathBuf::from(private), path.to_owned()),
        None => (path.to_owned(), PathBuf::from(format!("{s}.pub"))),
    }
}

/// Where a public key was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicSource {
    /// The `.pub` file (checked against the private key when that exists).
    PubFile(PathBuf),
    /// The public half stored in the private key file (no `.pub` file).
    PrivateFile(PathBuf),
}

/// Reads the public key of the pair at `path` (private or `.pub` path). When both files exist,
/// they must belong together: uploading a `.pub` that does not match the private key would
/// lock the user out.
pub fn read_public(path: &Path) -> Result<(PublicKey, PublicSource)> {
    let (private, public) = pair_paths(path);
    let from_private = || -> Result<Option<PublicKey>> {
        match files::read_bounded_text(&private, files::KEY_LIMIT, "private key") {
            Ok(text) => match PrivateKey::from_openssh(&text) {
                Ok(k) => Ok(Some(k.public_key().clone())),
                // Legacy PEM (PKCS#1) keys cannot be read here; the .pub decides.
                Err(_) => Ok(None),
            },
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    };
    match files::read_bounded_text(&public, files::KEY_LIMIT, "public key") {
        Ok(text) => {
            let line = text
                .lines()
                .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .unwrap_or("");
            let pk = PublicKey::from_openssh(line.trim()).map_err(|e| {
                Error::new(
                    ErrorKind::Usage,
                    format!("`{}` is not an OpenSSH public key", public.display()),
                )
                .with_source(e)
                .hint("point `--key` at a key pair written by ssh-keygen or keyclone")
            })?;
            if let Some(from_priv) = from_private()?
                && from_priv.key_data() != pk.key_data()
            {
                return Err(Error::refused(format!(
                    "`{}` does not belong to the private key `{}`: {} vs {}",
                    public.display(),
                    private.display(),
                    fingerprint(&pk),
                    fingerprint(&from_priv)
                ))
                .hint(format!(
                    "recreate the public file from the private key: `ssh-keygen -y -f {} > {}`",
                    private.display(),
                    public.display()
                )));
            }
            Ok((pk, PublicSource::PubFile(public)))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => match from_private()? {
            Some(pk) => Ok((pk, PublicSource::PrivateFile(private))),
            None if private.exists() => Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "`{}` is missing, and `{}` is not an OpenSSH private key keyclone can read its public half from",
                    public.display(),
                    private.display()
                ),
            )
            .hint(format!(
                "recreate the public file with `ssh-keygen -y -f {} > {}`",
                private.display(),
                public.display()
            ))),
            None => Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "no key at `{}` (neither the private key nor `{}`)",
                    private.display(),
                    public.display()
                ),
            )
            .hint("create one with `keyclone keygen`, or name an existing key with `--key PATH`")),
        },
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_roundtrip_with_passphrase_keeps_comment_and_decrypts() {
        let key = generate(KeyType::Ed25519, "me@box").unwrap();
        let pass = Passphrase::new("correct horse".into());
        let enc = encode(&key, Some(&pass), 16).unwrap();
        assert!(enc.public_line.starts_with("ssh-ed25519 AAAA"));
        assert!(enc.public_line.ends_with(" me@box\n"));
        let parsed = PrivateKey::from_openssh(enc.private.as_str()).unwrap();
        assert!(parsed.is_encrypted());
        let dec = parsed.decrypt("correct horse").unwrap();
        assert_eq!(dec.public_key().key_data(), key.public_key().key_data());
        assert!(parsed.decrypt("wrong").is_err());
    }

    #[test]
    fn rsa_key_is_4096_bits_and_labelled_rsa() {
        let key = generate(KeyType::Rsa, "c").unwrap();
        assert_eq!(key_bits(key.public_key().key_data()), 4096);
        let line = fingerprint_line(key.public_key());
        assert!(
            line.starts_with("4096 SHA256:") && line.ends_with(" c (RSA)"),
            "{line}"
        );
    }

    #[test]
    fn fingerprint_line_without_comment_says_no_comment() {
        let key = generate(KeyType::Ed25519, "").unwrap();
        assert!(fingerprint_line(key.public_key()).ends_with(" no comment (ED25519)"));
    }

    #[test]
    fn pair_paths_accepts_either_name() {
        assert_eq!(
            pair_paths(Path::new("/h/.ssh/id_rsa.pub")),
            (
                PathBuf::from("/h/.ssh/id_rsa"),
                PathBuf::from("/h/.ssh/id_rsa.pub")
            )
        );
        assert_eq!(
            pair_paths(Path::new("k")),
            (PathBuf::from("k"), PathBuf::from("k.pub"))
        );
    }
}
