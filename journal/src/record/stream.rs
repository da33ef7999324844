//! Sealing a checkpoint as it is written. The bytes are XChaCha20-Poly1305's for the whole
//! checkpoint (RFC 8439's construction over the XChaCha20 keystream), produced a chunk at a
//! time, so a checkpoint of tens of megabytes is never held in memory whole.

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

impl StreamSealer {
    pub(crate) fn new(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8]) -> StreamSealer {
        let mut stream = XChaCha20::new(&(*key).into(), &(*nonce).into());
        // Keystream block 0 keys Poly1305; the plaintext is encrypted from block 1 on.
        let mut mac_key = poly1305::Key::default();
        stream.apply_keystream(&mut mac_key);
        let mut mac = Poly1305::new(&mac_key);
        mac_key.as_mut_slice().zeroize();
        stream.seek(64_u64);
        mac.update_padded(aad);
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
        let mut lengths = poly1305::Block::default();
        lengths[..8].copy_from_slice(&self.aad_len.to_le_bytes());
        lengths[8..].copy_from_slice(&self.sealed.to_le_bytes());
        self.mac.update(&[lengths]);
        self.mac.finalize().into()
    }
}
