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

/// What sealing and opening share: the keystream from the plaintext's first byte, Poly1305
/// over the associated data and then the ciphertext, and the chunk rule. Every chunk but the
/// last must be a multiple of 16 bytes long (Poly1305 pads each chunk it is given to its block
/// size, as the one-shot construction pads only the end).
struct Stream {
    cipher: XChaCha20,
    mac: Poly1305,
    aad_len: u64,
    /// Ciphertext bytes so far.
    len: u64,
    /// Set once a chunk that is not a multiple of 16 bytes went through: it must be the last.
    ended: bool,
}

impl Stream {
    fn new(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8]) -> Stream {
        let mut cipher = XChaCha20::new(&(*key).into(), &(*nonce).into());
        // Keystream block 0 keys Poly1305; the plaintext is encrypted from block 1 on.
        let mut mac_key = poly1305::Key::default();
        cipher.apply_keystream(&mut mac_key);
        let mut mac = Poly1305::new(&mac_key);
        mac_key.as_mut_slice().zeroize();
        cipher.seek(64_u64);
        mac.update_padded(aad);
        Stream {
            cipher,
            mac,
            aad_len: aad.len() as u64,
            len: 0,
            ended: false,
        }
    }

    /// Counts a chunk of `len` bytes in, under the chunk rule.
    ///
    /// # Panics
    ///
    /// When a chunk follows one whose length is not a multiple of 16 (a misuse: the bytes
    /// would not be those of the one-shot construction).
    fn chunk(&mut self, len: usize) {
        assert!(!self.ended, "a chunk after the last one");
        self.len += len as u64;
        self.ended = !len.is_multiple_of(16);
    }

    /// Poly1305 over the associated data and every chunk, ended with their lengths: ready
    /// to give or check the tag.
    fn ended_mac(mut self) -> Poly1305 {
        let mut lengths = poly1305::Block::default();
        lengths[..8].copy_from_slice(&self.aad_len.to_le_bytes());
        lengths[8..].copy_from_slice(&self.len.to_le_bytes());
        self.mac.update(&[lengths]);
        self.mac
    }
}

/// Seals the chunks of one checkpoint in order (see [`Stream`] for the chunk rule).
pub struct StreamSealer(Stream);

impl std::fmt::Debug for StreamSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSealer")
            .field("sealed", &self.0.len)
            .finish_non_exhaustive()
    }
}

impl StreamSealer {
    pub(crate) fn new(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8]) -> StreamSealer {
        StreamSealer(Stream::new(key, nonce, aad))
    }

    /// Encrypts `chunk` in place and authenticates it.
    ///
    /// # Panics
    ///
    /// When a chunk follows one whose length is not a multiple of 16.
    pub fn seal(&mut self, chunk: &mut [u8]) {
        self.0.chunk(chunk.len());
        self.0.cipher.apply_keystream(chunk);
        self.0.mac.update_padded(chunk);
    }

    /// The tag over everything sealed.
    pub fn finish(self) -> [u8; TAG_LEN] {
        self.0.ended_mac().finalize().into()
    }
}

/// Opens the chunks of one checkpoint in order (see [`Stream`] for the chunk rule). What it
/// decrypts is not authentic until [`StreamOpener::verify`] says so: a reader keeps nothing it
/// made of it before then.
pub struct StreamOpener(Stream);

impl std::fmt::Debug for StreamOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamOpener")
            .field("opened", &self.0.len)
            .finish_non_exhaustive()
    }
}

impl StreamOpener {
    pub(crate) fn new(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8]) -> StreamOpener {
        StreamOpener(Stream::new(key, nonce, aad))
    }

    /// Authenticates `chunk` and decrypts it in place.
    ///
    /// # Panics
    ///
    /// When a chunk follows one whose length is not a multiple of 16.
    pub fn open(&mut self, chunk: &mut [u8]) {
        self.0.chunk(chunk.len());
        self.0.mac.update_padded(chunk);
        self.0.cipher.apply_keystream(chunk);
    }

    /// Whether everything opened is authentic under `tag` (compared in constant time).
    pub fn verify(self, tag: &[u8; TAG_LEN]) -> bool {
        self.0.ended_mac().verify(tag.into()).is_ok()
    }
}
