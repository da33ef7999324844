//! Sealing a checkpoint as it is written, and opening it as it is read. The bytes are
//! XChaCha20-Poly1305's for the whole checkpoint (RFC 8439's construction over the XChaCha20
//! keystream), produced and checked a chunk at a time, so a checkpoint of tens of megabytes is
//! never held in memory whole.

use chacha20::XChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20poly1305::aead::KeyInit;
use poly1305::Poly1305;
use poly1305::universal_hash::UniversalHash;
use zeroize::Zeroize;

use crate::key::{KEY_LEN, NONCE_LEN, TAG_LEN};

/// Seals the chunks of one checkpoint in order. Every chunk but the last must be a multiple of
/// 16 bytes long (Poly1305 pads each chunk it is given to its block size, as the one-shot
/// construction pads only the end).
pub struct StreamSealer {
    stream: XChaCha20,
    mac: Poly1305,
    aad_len: u64,
    sealed: u64,
    /// Set once a chunk that is not a multiple of 16 bytes was sealed: it must be the last.
    ended: bool,
}

impl std::fmt::Debug for StreamSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSealer")
            .field("sealed", &self.sealed)
            .finish_non_exhaustive()
    }
}

/// The keystream positioned at the plaintext's first byte, and Poly1305 keyed and given the
/// associated data.
fn keyed(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8]) -> (XChaCha20, Poly1305) {
    let mut stream = XChaCha20::new(&(*key).into(), &(*nonce).into());
    // Keystream block 0 keys Poly1305; the plaintext is encrypted from block 1 on.
    let mut mac_key = poly1305::Key::default();
    stream.apply_keystream(&mut mac_key);
    let mut mac = Poly1305::new(&mac_key);
    mac_key.as_mut_slice().zeroize();
    stream.seek(64_u64);
    mac.update_padded(aad);
    (stream, mac)
}

/// Poly1305's last block: the lengths of the associated data and of the ciphertext.
fn lengths(aad_len: u64, text_len: u64) -> poly1305::Block {
    let mut lengths = poly1305::Block::default();
    lengths[..8].copy_from_slice(&aad_len.to_le_bytes());
    lengths[8..].copy_from_slice(&text_len.to_le_bytes());
    lengths
}

impl StreamSealer {
    pub(crate) fn new(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8]) -> StreamSealer {
        let (stream, mac) = keyed(key, nonce, aad);
        StreamSealer {
            stream,
            mac,
            aad_len: aad.len() as u64,
            sealed: 0,
            ended: false,
        }
    }

    /// Encrypts `chunk` in place and authenticates it.
    ///
    /// # Panics
    ///
    /// When a chunk follows one whose length is not a multiple of 16 (a misuse that would seal
    /// bytes no reader opens).
    pub fn seal(&mut self, chunk: &mut [u8]) {
        assert!(!self.ended, "a chunk after the last one");
        self.stream.apply_keystream(chunk);
        self.mac.update_padded(chunk);
        self.sealed += chunk.len() as u64;
        self.ended = !chunk.len().is_multiple_of(16);
    }

    /// The tag over everything sealed.
    pub fn finish(mut self) -> [u8; TAG_LEN] {
        self.mac.update(&[lengths(self.aad_len, self.sealed)]);
        self.mac.finalize().into()
    }
}

/// Opens the chunks of one checkpoint in order, under the same rule as [`StreamSealer`]: every
/// chunk but the last a multiple of 16 bytes long. What it decrypts is not authentic until
/// [`StreamOpener::verify`] says so: a reader keeps nothing it made of it before then.
pub struct StreamOpener {
    stream: XChaCha20,
    mac: Poly1305,
    aad_len: u64,
    opened: u64,
    ended: bool,
}

impl std::fmt::Debug for StreamOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamOpener")
            .field("opened", &self.opened)
            .finish_non_exhaustive()
    }
}

impl StreamOpener {
    pub(crate) fn new(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8]) -> StreamOpener {
        let (stream, mac) = keyed(key, nonce, aad);
        StreamOpener {
            stream,
            mac,
            aad_len: aad.len() as u64,
            opened: 0,
            ended: false,
        }
    }

    /// Authenticates `chunk` and decrypts it in place.
    ///
    /// # Panics
    ///
    /// When a chunk follows one whose length is not a multiple of 16.
    pub fn open(&mut self, chunk: &mut [u8]) {
        assert!(!self.ended, "a chunk after the last one");
        self.mac.update_padded(chunk);
        self.stream.apply_keystream(chunk);
        self.opened += chunk.len() as u64;
        self.ended = !chunk.len().is_multiple_of(16);
    }

    /// Whether everything opened is authentic under `tag` (compared in constant time).
    pub fn verify(mut self, tag: &[u8; TAG_LEN]) -> bool {
        self.mac.update(&[lengths(self.aad_len, self.opened)]);
        self.mac.verify(tag.into()).is_ok()
    }
}
