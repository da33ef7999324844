//! Keys: the operator's secret (a passphrase or a key file), the random per-journal data key it
//! wraps, and the sub-keys derived from the data key.
//!
//! ```text
//! passphrase ──Argon2id(salt, costs)──┐
//!                                     ├─► wrap key ──XChaCha20-Poly1305──► wrapped data key (header)
//! key file (256 random bits) ─blake3──┘
//! data key (256 random bits) ──blake3 derive_key──► record key   (seals records and the head)
//!                                              └──► content key  (keyed blake3 content hashes)
//! ```
//!
//! Changing the operator's secret rewraps the data key; records are never rewritten.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Length of every symmetric key here, in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the XChaCha20 nonce, in bytes.
pub const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag, in bytes.
pub const TAG_LEN: usize = 16;
const _: () = assert!(NONCE_LEN == 24);
const _: () = assert!(TAG_LEN == 16);

// blake3 `derive_key` contexts: globally unique, hard-coded, never reused for another purpose.
const CONTEXT_KEY_FILE_WRAP: &str = "ferry 2026-11 journal key-file wrap key v1";
const CONTEXT_RECORD: &str = "ferry 2026-11 journal record sealing key v1";
const CONTEXT_CONTENT: &str = "ferry 2026-11 journal content hash key v1";
const CONTEXT_KEY_FILE_ID: &str = "ferry 2026-11 journal key-file identifier v1";

/// An operator's passphrase. Its `Debug` never shows it; it is wiped from memory on drop.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase. Trailing line breaks (from a file written by `echo`) are removed.
    pub fn new(mut text: String) -> Result<Passphrase> {
        while text.ends_with('\n') || text.ends_with('\r') {
            text.pop();
        }
        if text.is_empty() {
            text.zeroize();
            return Err(Error::InvalidKey {
                reason: "the passphrase is empty".into(),
            });
        }
        Ok(Passphrase(Zeroizing::new(text)))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// The 256-bit random secret kept in a key file when no passphrase is given. Its `Debug` never
/// shows it; it is wiped from memory on drop.
#[derive(Clone)]
pub struct KeyFileSecret(Zeroizing<[u8; KEY_LEN]>);

impl KeyFileSecret {
    /// A fresh random secret, for a new key file.
    pub fn generate() -> Result<KeyFileSecret> {
        let mut bytes = Zeroizing::new([0_u8; KEY_LEN]);
        random_fill(bytes.as_mut_slice())?;
        Ok(KeyFileSecret(bytes))
    }

    /// The secret read back from a key file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<KeyFileSecret> {
        let array: [u8; KEY_LEN] = bytes.try_into().map_err(|_| Error::InvalidKey {
            reason: format!(
                "a key file holds exactly {KEY_LEN} bytes, this one holds {}",
                bytes.len()
            ),
        })?;
        Ok(KeyFileSecret(Zeroizing::new(array)))
    }

    /// The bytes to write into the key file.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn identifier(&self) -> [u8; 16] {
        let full = blake3::derive_key(CONTEXT_KEY_FILE_ID, self.0.as_slice());
        let mut id = [0_u8; 16];
        id.copy_from_slice(&full[..16]);
        id
    }
}

impl std::fmt::Debug for KeyFileSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyFileSecret(<redacted>)")
    }
}

/// What unlocks a journal.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A passphrase, stretched with Argon2id.
    Passphrase(Passphrase),
    /// A random secret from a key file; no stretching is needed, so opening costs microseconds.
    KeyFile(KeyFileSecret),
}

/// Argon2id cost parameters, stored in the journal header so they can be raised later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// The costs new passphrase journals get: 128 MiB, 6 passes, 1 lane. Measured at about half
    /// a second on the project's 2-core reference machine (`cargo bench -p ferry-journal`
    /// prints it), which is what one open of a passphrase journal may cost; an attacker pays
    /// the same for every guess. 64 MiB with 4 passes measured 0.17 s.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 128 * 1024,
        iterations: 6,
        parallelism: 1,
    };

    /// The smallest costs Argon2 accepts. Only for tests, where a hundred journals are opened.
    pub const MINIMUM_FOR_TESTS: KdfParams = KdfParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    fn argon2(&self) -> Result<Argon2<'static>> {
        let params = Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|e| Error::InvalidKey {
            reason: format!("Argon2id parameters {self:?}: {e}"),
        })?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// How the data key is protected, as recorded in the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Protection {
    Passphrase { salt: [u8; 16], kdf: KdfParams },
    KeyFile { key_id: [u8; 16] },
}

impl Protection {
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Protection::Passphrase { .. } => "a passphrase (--passphrase-file or FERRY_PASSPHRASE)",
            Protection::KeyFile { .. } => "a key file (run without a passphrase)",
        }
    }
}

/// A fresh protection for `source`: a new salt for a passphrase.
pub(crate) fn new_protection(source: &KeySource, kdf: KdfParams) -> Result<Protection> {
    Ok(match source {
        KeySource::Passphrase(_) => {
            let mut salt = [0_u8; 16];
            random_fill(&mut salt)?;
            Protection::Passphrase { salt, kdf }
        }
        KeySource::KeyFile(secret) => Protection::KeyFile {
            key_id: secret.identifier(),
        },
    })
}

/// Derives the key that wraps the data key.
pub(crate) fn wrap_key(
    source: &KeySource,
    protection: &Protection,
) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let mut out = Zeroizing::new([0_u8; KEY_LEN]);
    match (source, protection) {
        (KeySource::Passphrase(passphrase), Protection::Passphrase { salt, kdf }) => {
            kdf.argon2()?
                .hash_password_into(passphrase.bytes(), salt, out.as_mut_slice())
                .map_err(|e| Error::InvalidKey {
                    reason: format!("Argon2id: {e}"),
                })?;
        }
        (KeySource::KeyFile(secret), Protection::KeyFile { key_id }) => {
            if secret.identifier() != *key_id {
                return Err(Error::WrongKey);
            }
            *out = blake3::derive_key(CONTEXT_KEY_FILE_WRAP, secret.0.as_slice());
        }
        (_, other) => {
            return Err(Error::KeyKindMismatch {
                expected: other.describe(),
            });
        }
    }
    Ok(out)
}

/// The random per-journal key everything else derives from.
pub(crate) struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    pub(crate) fn generate() -> Result<DataKey> {
        let mut bytes = Zeroizing::new([0_u8; KEY_LEN]);
        random_fill(bytes.as_mut_slice())?;
        Ok(DataKey(bytes))
    }

    /// Seals the data key under `wrap_key`: nonce ‖ ciphertext ‖ tag.
    pub(crate) fn wrap(&self, wrap_key: &[u8; KEY_LEN], aad: &[u8]) -> Result<Vec<u8>> {
        seal(wrap_key, aad, self.0.as_slice())
    }

    pub(crate) fn unwrap(wrap_key: &[u8; KEY_LEN], aad: &[u8], wrapped: &[u8]) -> Result<DataKey> {
        let plain = Zeroizing::new(open(wrap_key, aad, wrapped).ok_or(Error::WrongKey)?);
        let bytes: [u8; KEY_LEN] =
            plain
                .as_slice()
                .try_into()
                .map_err(|_| Error::HeaderCorrupt {
                    reason: "the wrapped data key has the wrong length".into(),
                })?;
        Ok(DataKey(Zeroizing::new(bytes)))
    }

    /// The same key, for a journal's store opened again.
    pub(crate) fn duplicate(&self) -> DataKey {
        DataKey(self.0.clone())
    }

    pub(crate) fn record_key(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(blake3::derive_key(CONTEXT_RECORD, self.0.as_slice()))
    }

    pub(crate) fn content_key(&self) -> ContentKey {
        ContentKey(Zeroizing::new(blake3::derive_key(
            CONTEXT_CONTENT,
            self.0.as_slice(),
        )))
    }
}

/// Keyed content hashing: blake3 in keyed mode under a key derived from the journal's data key,
/// so a hash in the journal tells nothing to someone without the key (nobody can test whether a
/// known message is in it). Hashes from different journals are unrelated.
#[derive(Clone)]
pub struct ContentKey(Zeroizing<[u8; KEY_LEN]>);

impl ContentKey {
    /// A content key from a fixed secret, for in-memory logs in simulations and for tests. A
    /// journal derives its own from its data key ([`crate::Journal::content_key`]).
    pub fn from_secret(secret: [u8; KEY_LEN]) -> ContentKey {
        ContentKey(Zeroizing::new(secret))
    }

    /// The keyed hash of `bytes`.
    pub fn hash(&self, bytes: &[u8]) -> ContentHash {
        ContentHash(*blake3::keyed_hash(&self.0, bytes).as_bytes())
    }

    /// An incremental hasher, for content that arrives as a stream.
    pub fn hasher(&self) -> ContentHasher {
        ContentHasher(blake3::Hasher::new_keyed(&self.0))
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(<redacted>)")
    }
}

/// An incremental keyed content hasher.
#[derive(Debug, Clone)]
pub struct ContentHasher(blake3::Hasher);

impl ContentHasher {
    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(bytes);
        self
    }

    /// The hash of everything fed so far.
    pub fn finish(&self) -> ContentHash {
        ContentHash(*self.0.finalize().as_bytes())
    }
}

/// A keyed content hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContentHash(pub [u8; 32]);

impl std::fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

impl std::fmt::Display for ContentHash {
    /// The first 8 bytes in hex: enough to tell hashes apart in a report.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Fills `out` from the operating system's random source.
pub(crate) fn random_fill(out: &mut [u8]) -> Result<()> {
    getrandom::fill(out).map_err(|e| Error::Io {
        context: "reading the operating system's random source".into(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Seals `plain` under `key` with a fresh random nonce: nonce ‖ ciphertext ‖ tag.
pub(crate) fn seal(key: &[u8; KEY_LEN], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0_u8; NONCE_LEN];
    random_fill(&mut nonce)?;
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    let mut buffer = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
    buffer.extend_from_slice(plain);
    cipher
        .encrypt_in_place(&nonce.into(), aad, &mut buffer)
        .map_err(|_| Error::Encode {
            reason: "sealing failed (message too long)".into(),
        })?;
    let mut out = Vec::with_capacity(NONCE_LEN + buffer.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buffer);
    Ok(out)
}

/// Opens what [`seal`] made; `None` if it does not authenticate.
pub(crate) fn open(key: &[u8; KEY_LEN], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    let mut buffer = body.to_vec();
    cipher
        .decrypt_in_place(&nonce.into(), aad, &mut buffer)
        .ok()?;
    Some(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let key = [7_u8; KEY_LEN];
        let sealed = seal(&key, b"aad", b"hello").unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 5 + TAG_LEN);
        assert_eq!(open(&key, b"aad", &sealed).as_deref(), Some(&b"hello"[..]));
        assert_eq!(open(&key, b"other", &sealed), None);
        assert_eq!(open(&[8_u8; KEY_LEN], b"aad", &sealed), None);
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let passphrase = Passphrase::new("correct horse\n".into()).unwrap();
        assert_eq!(passphrase.bytes(), b"correct horse");
        assert!(!format!("{passphrase:?}").contains("horse"));
        let secret = KeyFileSecret::from_bytes(&[0xab; 32]).unwrap();
        assert!(!format!("{secret:?}").contains("ab"));
        assert!(Passphrase::new("\n".into()).is_err());
        assert!(KeyFileSecret::from_bytes(&[1; 31]).is_err());
    }

    #[test]
    fn content_hashes_are_keyed() {
        let a = DataKey(Zeroizing::new([1; 32])).content_key();
        let b = DataKey(Zeroizing::new([2; 32])).content_key();
        assert_ne!(a.hash(b"message"), b.hash(b"message"));
        assert_ne!(
            a.hash(b"message"),
            ContentHash(*blake3::hash(b"message").as_bytes())
        );
        let mut streamed = a.hasher();
        streamed.update(b"mess").update(b"age");
        assert_eq!(streamed.finish(), a.hash(b"message"));
    }
}
