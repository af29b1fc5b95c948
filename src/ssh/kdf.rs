//! OpenSSH's key derivation for passphrase-protected keys (bcrypt-pbkdf), computed with its
//! independent output blocks in parallel, and the encrypted `openssh-key-v1` container.
//!
//! bcrypt-pbkdf is PBKDF2 with a bcrypt-based PRF; a 48-byte aes256-ctr key+IV takes two
//! 32-byte blocks, each costing `rounds` bcrypt hashes and each independent of the other.
//! OpenSSH computes them one after the other; on a machine with two cores keyclone computes
//! them at the same time. The result is bit-for-bit the same (unit-tested against the
//! `bcrypt-pbkdf` crate, and decrypted by ssh-keygen in the integration tests): an attacker's
//! cost is unchanged, the user waits half as long.

use blowfish::Blowfish;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha512};
use ssh_encoding::Encode;
use ssh_key::{Cipher, LineEnding, PrivateKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const BHASH_WORDS: usize = 8;
const BHASH_OUTPUT: usize = BHASH_WORDS * 4;
const BHASH_SEED: &[u8; BHASH_OUTPUT] = b"OxychromaticBlowfishSwatDynamite";

/// bcrypt's hash of a SHA-512'd passphrase and salt (OpenSSH `bcrypt_hash`).
fn bhash(sha2_pass: &[u8], sha2_salt: &[u8]) -> [u8; BHASH_OUTPUT] {
    let mut bf = Blowfish::bc_init_state();
    bf.salted_expand_key(sha2_salt, sha2_pass);
    for _ in 0..64 {
        bf.bc_expand_key(sha2_salt);
        bf.bc_expand_key(sha2_pass);
    }
    let mut cdata = [0u32; BHASH_WORDS];
    for (i, word) in cdata.iter_mut().enumerate() {
        *word = u32::from_be_bytes([
            BHASH_SEED[i * 4],
            BHASH_SEED[i * 4 + 1],
            BHASH_SEED[i * 4 + 2],
            BHASH_SEED[i * 4 + 3],
        ]);
    }
    for _ in 0..64 {
        for i in (0..BHASH_WORDS).step_by(2) {
            let [l, r] = bf.bc_encrypt([cdata[i], cdata[i + 1]]);
            cdata[i] = l;
            cdata[i + 1] = r;
        }
    }
    let mut out = [0u8; BHASH_OUTPUT];
    for (i, word) in cdata.iter().enumerate() {
        out[i * 4..(i + 1) * 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

/// One PBKDF2 block (1-based `index`) with bhash as the PRF.
fn block(sha2_pass: &[u8], salt: &[u8], rounds: u32, index: u32) -> Zeroizing<[u8; BHASH_OUTPUT]> {
    let mut h = Sha512::new();
    h.update(salt);
    h.update(index.to_be_bytes());
    let mut u = Zeroizing::new(bhash(sha2_pass, &h.finalize()));
    let mut t = u.clone();
    for _ in 1..rounds {
        *u = bhash(sha2_pass, &Sha512::digest(*u));
        for (a, b) in t.iter_mut().zip(u.iter()) {
            *a ^= b;
        }
    }
    t
}

/// bcrypt-pbkdf as OpenSSH defines it, blocks computed on up to `threads` threads.
pub fn bcrypt_pbkdf(
    passphrase: &[u8],
    salt: &[u8],
    rounds: u32,
    output: &mut [u8],
    threads: usize,
) -> Result<()> {
    if passphrase.is_empty()
        || salt.is_empty()
        || rounds == 0
        || output.is_empty()
        || output.len() > BHASH_OUTPUT * BHASH_OUTPUT
    {
        return Err(Error::internal("bcrypt-pbkdf: invalid parameters"));
    }
    let sha2_pass: Zeroizing<[u8; 64]> = Zeroizing::new(Sha512::digest(passphrase).into());
    let stride = output.len().div_ceil(BHASH_OUTPUT);
    let indices: Vec<u32> = (1..=stride as u32).collect();
    let blocks: Vec<Zeroizing<[u8; BHASH_OUTPUT]>> = if threads > 1 && stride > 1 {
        let per = stride.div_ceil(threads.min(stride));
        std::thread::scope(|s| {
            let handles: Vec<_> = indices
                .chunks(per)
                .map(|chunk| {
                    let sha2_pass = &sha2_pass;
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|&i| block(sha2_pass.as_slice(), salt, rounds, i))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join()
                        .expect("a bcrypt-pbkdf thread does not panic: it only hashes")
                })
                .collect()
        })
    } else {
        indices
            .iter()
            .map(|&i| block(sha2_pass.as_slice(), salt, rounds, i))
            .collect()
    };
    // OpenSSH's non-linear spread of the blocks over the output.
    for (i, out) in output.iter_mut().enumerate() {
        *out = blocks[i % stride][i / stride];
    }
    Ok(())
}

/// Encodes `key` (unencrypted, with its comment) as an OpenSSH private key file encrypted with
/// aes256-ctr under a bcrypt-pbkdf key: the format `ssh-keygen -N` writes.
pub fn encrypt_openssh(
    key: &PrivateKey,
    passphrase: &[u8],
    rounds: u32,
) -> Result<Zeroizing<String>> {
    let enc_err =
        |e: ssh_encoding::Error| Error::internal("could not encode the private key").with_source(e);
    let cipher = Cipher::Aes256Ctr;
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let mut kdf_out = Zeroizing::new([0u8; 48]);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    bcrypt_pbkdf(passphrase, &salt, rounds, kdf_out.as_mut(), threads)?;

    // The private section: two equal check integers, the key, its comment, padding 1, 2, 3...
    let checkint = OsRng.next_u32();
    let mut section = Zeroizing::new(Vec::new());
    checkint.encode(&mut *section).map_err(enc_err)?;
    checkint.encode(&mut *section).map_err(enc_err)?;
    key.key_data().encode(&mut *section).map_err(enc_err)?;
    key.comment().encode(&mut *section).map_err(enc_err)?;
    let pad = cipher.padding_len(section.len());
    section.extend((1..=pad).map(|b| b as u8));
    cipher
        .encrypt(&kdf_out[..32], &kdf_out[32..48], &mut section)
        .map_err(|e| Error::internal(format!("could not encrypt the private key: {e}")))?;

    let mut kdf_options = Vec::new();
    salt.as_slice().encode(&mut kdf_options).map_err(enc_err)?;
    rounds.encode(&mut kdf_options).map_err(enc_err)?;
    let mut public_blob = Vec::new();
    key.public_key()
        .key_data()
        .encode(&mut public_blob)
        .map_err(enc_err)?;

    let mut file = Vec::new();
    file.extend_from_slice(b"openssh-key-v1\0");
    "aes256-ctr".encode(&mut file).map_err(enc_err)?;
    "bcrypt".encode(&mut file).map_err(enc_err)?;
    kdf_options.as_slice().encode(&mut file).map_err(enc_err)?;
    1u32.encode(&mut file).map_err(enc_err)?;
    public_blob.as_slice().encode(&mut file).map_err(enc_err)?;
    section.as_slice().encode(&mut file).map_err(enc_err)?;

    // Parsing it back validates the structure; ssh-key then writes the PEM armour.
    PrivateKey::from_bytes(&file)
        .and_then(|k| k.to_openssh(LineEnding::LF))
        .map_err(|e| Error::internal("the encrypted key did not parse back").with_source(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::key::{KeyType, generate};

    #[test]
    fn parallel_bcrypt_pbkdf_equals_the_reference_crate() {
        for (pass, salt, rounds, len) in [
            (&b"password"[..], &b"salt"[..], 4u32, 32usize),
            (b"password", b"salt", 8, 48),
            (b"x", b"0123456789abcdef", 16, 48),
            (b"correct horse battery staple", b"s", 3, 100),
            (b"p", b"q", 1, 1),
        ] {
            let mut want = vec![0u8; len];
            bcrypt_pbkdf::bcrypt_pbkdf(pass, salt, rounds, &mut want).unwrap();
            for threads in [1, 2, 3, 8] {
                let mut got = vec![0u8; len];
                bcrypt_pbkdf(pass, salt, rounds, &mut got, threads).unwrap();
                assert_eq!(got, want, "rounds {rounds} len {len} threads {threads}");
            }
        }
    }

    #[test]
    fn encrypted_key_decrypts_with_ssh_key_and_keeps_the_comment() {
        for kind in [KeyType::Ed25519, KeyType::Rsa] {
            let key = generate(kind, "me@box").unwrap();
            let pem = encrypt_openssh(&key, b"pass phrase", 16).unwrap();
            let parsed = PrivateKey::from_openssh(pem.as_str()).unwrap();
            assert!(parsed.is_encrypted());
            let dec = parsed.decrypt("pass phrase").unwrap();
            assert_eq!(dec.key_data(), key.key_data());
            assert_eq!(dec.comment(), "me@box");
            assert!(parsed.decrypt("wrong").is_err());
        }
    }

    #[test]
    fn empty_inputs_are_refused() {
        let mut out = [0u8; 48];
        assert!(bcrypt_pbkdf(b"", b"s", 16, &mut out, 2).is_err());
        assert!(bcrypt_pbkdf(b"p", b"s", 0, &mut out, 2).is_err());
    }
}
