//! The record codec: how one event's bytes are sealed into a stored value and opened again.
//! Pure functions, no storage.
//!
//! A stored record is
//!
//! ```text
//! ┌──────────┬──────────────────────────────────┬─────────────────────┬──────────┐
//! │ envelope │ nonce: 16 random bytes ‖ seq BE8 │ ciphertext (postcard)│ tag (16) │
//! │ 1 byte   │ 24 bytes                         │ n bytes             │          │
//! └──────────┴──────────────────────────────────┴─────────────────────┴──────────┘
//! ```
//!
//! sealed with XChaCha20-Poly1305 under the record key and the associated data
//! `"ferry-rec1" ‖ journal id ‖ seq ‖ chain hash of the previous stored record`. The chain hash
//! of a record is blake3 over its stored bytes; the first record chains to [`GENESIS`]. So a
//! record authenticates only in its own journal, at its own position, after its own
//! predecessor: a flipped bit, a swap, a copy or a splice all fail to open.
//!
//! The nonce is unique per record: 128 random bits drawn once per appended batch, followed by
//! the sequence number the record was sealed for. Within a batch the sequence numbers differ;
//! between batches the random prefixes do (a collision is negligible), which also covers a
//! sequence number sealed again after a crash. Carrying the sequence number in the nonce lets
//! a check name a record found at the wrong position ("sealed for 17, found at 12") instead of
//! only saying that it does not authenticate. Sharing the prefix within a batch is what makes
//! XChaCha20's extended nonce cheap: XChaCha20-Poly1305 is ChaCha20-Poly1305 under a subkey
//! that HChaCha20 derives from the key and the nonce's first 16 bytes, so records that share
//! them share the subkey, derived once (see [`PrefixCipher`]); libsodium's secretstream uses
//! its nonces the same way. The stored bytes are XChaCha20-Poly1305's exactly, so records
//! written with a fresh prefix each (by earlier versions) open alike.
//! The overhead per record is 1 + 24 + 16 = 41 bytes.

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use poly1305::Poly1305;
use poly1305::universal_hash::UniversalHash;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Problem, Result};
use crate::key::{KEY_LEN, NONCE_LEN, TAG_LEN, random_fill};

mod stream;
pub use stream::{StreamOpener, StreamSealer};

/// The envelope version written by this code.
pub const ENVELOPE_V1: u8 = 1;

/// A checkpoint file's clear head: envelope version, the record it was taken at, nonce.
pub const CHECKPOINT_HEAD_LEN: usize = 1 + 8 + NONCE_LEN;
/// Bytes a sealed record adds to the event's encoding.
pub const RECORD_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;
const _: () = assert!(RECORD_OVERHEAD == 41);
/// Where the plaintext starts in a record being sealed in place.
pub const PLAIN_OFFSET: usize = 1 + NONCE_LEN;
/// Random bytes at the start of each nonce.
const NONCE_RANDOM_LEN: usize = 16;
const _: () = assert!(NONCE_RANDOM_LEN + 8 == NONCE_LEN);

/// What the first record chains to.
pub const GENESIS: [u8; 32] = [0; 32];

const RECORD_AAD_TAG: &[u8; 10] = b"ferry-rec1";
const HEAD_AAD_TAG: &[u8; 10] = b"ferry-hed1";
const CHECKPOINT_AAD_TAG: &[u8; 10] = b"ferry-ckp1";

/// The chain hash of a stored record.
pub fn chain_hash(stored: &[u8]) -> [u8; 32] {
    *blake3::hash(stored).as_bytes()
}

/// The journal's head: the last record it vouches for. Written atomically with every append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Sequence number of the last record (0 when empty).
    pub seq: u64,
    /// Chain hash of the last record ([`GENESIS`] when empty).
    pub hash: [u8; 32],
}

impl Head {
    /// The head of an empty journal.
    pub const EMPTY: Head = Head {
        seq: 0,
        hash: GENESIS,
    };
}

/// Seals and opens records of one journal.
pub struct RecordCodec {
    /// For the head and checkpoints, each sealed under a fresh random nonce.
    cipher: XChaCha20Poly1305,
    /// The record key, from which [`PrefixCipher`]s derive their subkeys.
    record_key: Zeroizing<[u8; KEY_LEN]>,
    journal_id: [u8; 16],
}

impl std::fmt::Debug for RecordCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCodec")
            .field("journal_id", &self.journal_id)
            .finish_non_exhaustive()
    }
}

/// XChaCha20-Poly1305 for the nonces that start with one 16-byte prefix: ChaCha20-Poly1305
/// under the subkey HChaCha20 derives from the key and that prefix, with four zero bytes and
/// the nonce's last eight bytes as its nonce (the construction of
/// draft-irtf-cfrg-xchacha-03, section 2.3). Sealing and opening through it give the bytes
/// `XChaCha20Poly1305` gives; the module's tests compare them.
///
/// Most records are short, and for them ChaCha20-Poly1305 (RFC 8439, section 2.8) is computed
/// from its parts in one keystream pass: block 0 of the keystream is the Poly1305 key and
/// blocks 1 to 3 encrypt up to [`ONE_PASS_MAX`] bytes. The `chacha20poly1305` crate asks the
/// stream cipher for block 0, then for each further block on its own, and its SIMD backends
/// compute four blocks for every request: three passes where one does. Longer records go
/// through the crate.
pub struct PrefixCipher {
    prefix: [u8; NONCE_RANDOM_LEN],
    subkey: Zeroizing<[u8; KEY_LEN]>,
    cipher: ChaCha20Poly1305,
}

/// The longest ciphertext sealed and opened in one keystream pass: the four blocks a SIMD
/// backend computes at once, less the Poly1305 key's block.
const ONE_PASS_MAX: usize = 3 * 64;

impl std::fmt::Debug for PrefixCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixCipher").finish_non_exhaustive()
    }
}

impl PrefixCipher {
    fn new(key: &[u8; KEY_LEN], prefix: [u8; NONCE_RANDOM_LEN]) -> PrefixCipher {
        let mut derived = chacha20::hchacha::<chacha20::R20>(&(*key).into(), &prefix.into());
        let subkey: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(derived.into());
        derived.as_mut_slice().zeroize();
        let cipher = ChaCha20Poly1305::new(&(*subkey).into());
        PrefixCipher {
            prefix,
            subkey,
            cipher,
        }
    }

    fn inner_nonce(seq: u64) -> [u8; 12] {
        let mut nonce = [0_u8; 12];
        nonce[4..].copy_from_slice(&seq.to_be_bytes());
        nonce
    }

    /// Keystream blocks 0 to 3 for record `seq`.
    fn one_pass_keystream(&self, seq: u64) -> [u8; 4 * 64] {
        let mut stream = ChaCha20::new(&(*self.subkey).into(), &Self::inner_nonce(seq).into());
        let mut keystream = [0_u8; 4 * 64];
        stream.apply_keystream(&mut keystream);
        keystream
    }

    /// The Poly1305 state over `aad` and `ciphertext` (RFC 8439's layout: each padded to 16
    /// bytes, then both lengths), keyed by the first half of keystream block 0, which is then
    /// wiped. What remains of the keystream is worth no more than the plaintext it covers.
    fn one_pass_mac(keystream: &mut [u8; 4 * 64], aad: &[u8], ciphertext: &[u8]) -> Poly1305 {
        let mut key = poly1305::Key::default();
        key.copy_from_slice(&keystream[..32]);
        let mut mac = Poly1305::new(&key);
        key.as_mut_slice().zeroize();
        keystream[..32].zeroize();
        mac.update_padded(aad);
        mac.update_padded(ciphertext);
        let mut lengths = poly1305::Block::default();
        lengths[..8].copy_from_slice(&(aad.len() as u64).to_le_bytes());
        lengths[8..].copy_from_slice(&(ciphertext.len() as u64).to_le_bytes());
        mac.update(&[lengths]);
        mac
    }

    /// Encrypts `buffer` in place for record `seq`; returns the tag.
    fn seal(&self, seq: u64, aad: &[u8], buffer: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        if buffer.len() <= ONE_PASS_MAX {
            let mut keystream = self.one_pass_keystream(seq);
            for (byte, key) in buffer.iter_mut().zip(&keystream[64..]) {
                *byte ^= key;
            }
            let tag = Self::one_pass_mac(&mut keystream, aad, buffer).finalize();
            return Ok(tag.into());
        }
        let tag = self
            .cipher
            .encrypt_inout_detached(&Self::inner_nonce(seq).into(), aad, buffer.into())
            .map_err(|_| Error::Encode {
                reason: "sealing failed (record too long)".into(),
            })?;
        Ok(tag.into())
    }

    /// The plaintext of `ciphertext` sealed for record `seq`, if `tag` authenticates it.
    fn open(
        &self,
        seq: u64,
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
    ) -> Option<Vec<u8>> {
        if ciphertext.len() <= ONE_PASS_MAX {
            let mut keystream = self.one_pass_keystream(seq);
            // Constant-time comparison (`subtle`), before anything is decrypted.
            Self::one_pass_mac(&mut keystream, aad, ciphertext)
                .verify(&(*tag).into())
                .ok()?;
            return Some(
                ciphertext
                    .iter()
                    .zip(&keystream[64..])
                    .map(|(byte, key)| byte ^ key)
                    .collect(),
            );
        }
        let mut buffer = ciphertext.to_vec();
        self.cipher
            .decrypt_inout_detached(
                &Self::inner_nonce(seq).into(),
                aad,
                buffer.as_mut_slice().into(),
                &(*tag).into(),
            )
            .ok()?;
        Some(buffer)
    }
}

/// The nonce prefix and derived cipher for the records of one batch, drawn by
/// [`RecordCodec::batch_key`].
#[derive(Debug)]
pub struct BatchKey(PrefixCipher);

/// The subkey of the last nonce prefix a replay met: consecutive records of one batch reuse it.
#[derive(Debug, Default)]
pub struct OpenCache(Option<PrefixCipher>);

impl RecordCodec {
    /// A codec for the journal `journal_id` under `record_key`.
    pub fn new(record_key: &[u8; KEY_LEN], journal_id: [u8; 16]) -> RecordCodec {
        RecordCodec {
            cipher: XChaCha20Poly1305::new(&(*record_key).into()),
            record_key: Zeroizing::new(*record_key),
            journal_id,
        }
    }

    /// A fresh random nonce prefix, and its cipher, for the records of one batch.
    pub fn batch_key(&self) -> Result<BatchKey> {
        let mut prefix = [0_u8; NONCE_RANDOM_LEN];
        random_fill(&mut prefix)?;
        Ok(BatchKey(PrefixCipher::new(&self.record_key, prefix)))
    }

    fn record_aad(&self, seq: u64, prev: &[u8; 32]) -> [u8; 66] {
        let mut aad = [0_u8; 66];
        aad[..10].copy_from_slice(RECORD_AAD_TAG);
        aad[10..26].copy_from_slice(&self.journal_id);
        aad[26..34].copy_from_slice(&seq.to_be_bytes());
        aad[34..].copy_from_slice(prev);
        aad
    }

    /// Seals `plain` as record `seq` following a record whose chain hash is `prev`.
    pub fn seal(
        &self,
        seq: u64,
        prev: &[u8; 32],
        plain: &[u8],
        batch: &BatchKey,
    ) -> Result<Vec<u8>> {
        let mut record = Vec::with_capacity(RECORD_OVERHEAD + plain.len());
        record.resize(PLAIN_OFFSET, 0);
        record.extend_from_slice(plain);
        self.seal_in_place(seq, prev, &mut record, batch)?;
        Ok(record)
    }

    /// Seals in place: `record` holds [`PLAIN_OFFSET`] bytes of room followed by the plaintext,
    /// and becomes the stored record. Lets an event be encoded straight into its record.
    pub fn seal_in_place(
        &self,
        seq: u64,
        prev: &[u8; 32],
        record: &mut Vec<u8>,
        batch: &BatchKey,
    ) -> Result<()> {
        assert!(record.len() >= PLAIN_OFFSET, "no room for the envelope");
        let BatchKey(key) = batch;
        record[0] = ENVELOPE_V1;
        record[1..1 + NONCE_RANDOM_LEN].copy_from_slice(&key.prefix);
        record[1 + NONCE_RANDOM_LEN..PLAIN_OFFSET].copy_from_slice(&seq.to_be_bytes());
        let aad = self.record_aad(seq, prev);
        let tag = key.seal(seq, &aad, &mut record[PLAIN_OFFSET..])?;
        record.extend_from_slice(&tag);
        Ok(())
    }

    /// Opens record `seq` whose predecessor's chain hash is `prev`. On failure says what is
    /// wrong as far as this one record tells; [`Problem::Misplaced`] may be refined into
    /// [`Problem::Duplicate`] by a caller that can look at the other position.
    pub fn open(&self, seq: u64, prev: &[u8; 32], stored: &[u8]) -> Result<Vec<u8>, Problem> {
        self.open_cached(seq, prev, stored, &mut OpenCache::default())
    }

    /// [`RecordCodec::open`], reusing the subkey in `cache` when the record's nonce prefix is
    /// the one met last (records of one batch share it) and keeping this record's otherwise.
    pub fn open_cached(
        &self,
        seq: u64,
        prev: &[u8; 32],
        stored: &[u8],
        cache: &mut OpenCache,
    ) -> Result<Vec<u8>, Problem> {
        if stored.len() < RECORD_OVERHEAD {
            return Err(Problem::Short { len: stored.len() });
        }
        let (envelope, rest) = stored.split_at(1);
        if envelope[0] != ENVELOPE_V1 {
            return Err(Problem::UnknownEnvelope {
                version: envelope[0],
            });
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let (prefix, sealed_for) = nonce.split_at(NONCE_RANDOM_LEN);
        let sealed_for =
            u64::from_be_bytes(sealed_for.try_into().map_err(|_| Problem::Unauthentic)?);
        if sealed_for != seq {
            return Err(Problem::Misplaced { sealed_for });
        }
        let prefix: [u8; NONCE_RANDOM_LEN] = prefix.try_into().map_err(|_| Problem::Unauthentic)?;
        let key = match &mut cache.0 {
            Some(key) if key.prefix == prefix => key,
            slot => slot.insert(PrefixCipher::new(&self.record_key, prefix)),
        };
        let (ciphertext, tag) = body.split_at(body.len() - TAG_LEN);
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Problem::Unauthentic)?;
        key.open(seq, &self.record_aad(seq, prev), ciphertext, &tag)
            .ok_or(Problem::Unauthentic)
    }

    fn head_aad(&self) -> [u8; 26] {
        let mut aad = [0_u8; 26];
        aad[..10].copy_from_slice(HEAD_AAD_TAG);
        aad[10..].copy_from_slice(&self.journal_id);
        aad
    }

    /// Seals the head.
    pub fn seal_head(&self, head: &Head) -> Result<Vec<u8>> {
        let mut plain = [0_u8; 40];
        plain[..8].copy_from_slice(&head.seq.to_be_bytes());
        plain[8..].copy_from_slice(&head.hash);
        let mut nonce = [0_u8; NONCE_LEN];
        random_fill(&mut nonce)?;
        let mut body = plain.to_vec();
        self.cipher
            .encrypt_in_place(&nonce.into(), &self.head_aad(), &mut body)
            .map_err(|_| Error::Encode {
                reason: "sealing the head failed".into(),
            })?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(ENVELOPE_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn checkpoint_aad(&self, at: &Head) -> [u8; 66] {
        let mut aad = [0_u8; 66];
        aad[..10].copy_from_slice(CHECKPOINT_AAD_TAG);
        aad[10..26].copy_from_slice(&self.journal_id);
        aad[26..34].copy_from_slice(&at.seq.to_be_bytes());
        aad[34..].copy_from_slice(&at.hash);
        aad
    }

    /// Starts sealing a checkpoint taken at record `at`: returns the envelope ‖ seq (clear) ‖
    /// nonce that goes before the sealed bytes, and the sealer whose tag goes after them. Bound
    /// to that record's chain hash, so it opens only over the very records it summarises.
    pub fn checkpoint_sealer(
        &self,
        at: &Head,
    ) -> Result<([u8; CHECKPOINT_HEAD_LEN], StreamSealer)> {
        let mut nonce = [0_u8; NONCE_LEN];
        random_fill(&mut nonce)?;
        Ok(self.checkpoint_sealer_with(at, nonce))
    }

    fn checkpoint_sealer_with(
        &self,
        at: &Head,
        nonce: [u8; NONCE_LEN],
    ) -> ([u8; CHECKPOINT_HEAD_LEN], StreamSealer) {
        let mut head = [0_u8; CHECKPOINT_HEAD_LEN];
        head[0] = ENVELOPE_V1;
        head[1..9].copy_from_slice(&at.seq.to_be_bytes());
        head[9..].copy_from_slice(&nonce);
        let sealer = StreamSealer::new(&self.record_key, &nonce, &self.checkpoint_aad(at));
        (head, sealer)
    }

    /// An opener for the checkpoint taken at `at` under `nonce` (read from its head).
    pub fn checkpoint_opener(&self, at: &Head, nonce: &[u8; NONCE_LEN]) -> StreamOpener {
        StreamOpener::new(&self.record_key, nonce, &self.checkpoint_aad(at))
    }

    /// The record a checkpoint whose file begins with `head` claims to be taken at, and the
    /// nonce it was sealed under (unauthenticated until the whole is opened).
    pub fn checkpoint_head(head: &[u8; CHECKPOINT_HEAD_LEN]) -> Option<(u64, [u8; NONCE_LEN])> {
        if head[0] != ENVELOPE_V1 {
            return None;
        }
        let seq = u64::from_be_bytes(head[1..9].try_into().ok()?);
        Some((seq, head[9..].try_into().ok()?))
    }

    /// Opens the head; `None` if it does not authenticate.
    pub fn open_head(&self, stored: &[u8]) -> Option<Head> {
        if stored.len() != 1 + NONCE_LEN + 40 + TAG_LEN || stored[0] != ENVELOPE_V1 {
            return None;
        }
        let nonce: [u8; NONCE_LEN] = stored[1..1 + NONCE_LEN].try_into().ok()?;
        let mut body = stored[1 + NONCE_LEN..].to_vec();
        self.cipher
            .decrypt_in_place(&nonce.into(), &self.head_aad(), &mut body)
            .ok()?;
        let seq = u64::from_be_bytes(body[..8].try_into().ok()?);
        let hash: [u8; 32] = body[8..40].try_into().ok()?;
        Some(Head { seq, hash })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codec(id: u8) -> RecordCodec {
        RecordCodec::new(&[id; KEY_LEN], [id; 16])
    }

    proptest! {
        // Goal: a checkpoint sealed in chunks is XChaCha20-Poly1305's sealing of the whole (the
        // layout every stored checkpoint has), whatever the chunks, and opens to its bytes.
        #[test]
        fn a_checkpoint_sealed_in_chunks_is_the_one_shot_sealing(
            plain in proptest::collection::vec(any::<u8>(), 0..3000),
            chunk_blocks in 1_usize..8,
            nonce in any::<[u8; NONCE_LEN]>(),
        ) {
            let codec = codec(7);
            let at = Head { seq: 42, hash: [9; 32] };
            let (head, mut sealer) = codec.checkpoint_sealer_with(&at, nonce);
            let mut sealed = plain.clone();
            for chunk in sealed.chunks_mut(chunk_blocks * 16) {
                sealer.seal(chunk);
            }
            let tag = sealer.finish();
            let mut whole = plain.clone();
            let one_shot = codec
                .cipher
                .encrypt_inout_detached(
                    &nonce.into(),
                    &codec.checkpoint_aad(&at),
                    whole.as_mut_slice().into(),
                )
                .unwrap();
            prop_assert_eq!(&sealed, &whole);
            prop_assert_eq!(tag, <[u8; TAG_LEN]>::from(one_shot));
            prop_assert_eq!(RecordCodec::checkpoint_head(&head), Some((at.seq, nonce)));
            let mut opened = sealed.clone();
            let authentic = codec.cipher.decrypt_inout_detached(
                &nonce.into(),
                &codec.checkpoint_aad(&at),
                opened.as_mut_slice().into(),
                &tag.into(),
            );
            prop_assert!(authentic.is_ok());
            prop_assert_eq!(opened, plain);
        }

        // Goal: opening in chunks gives the plaintext and accepts the one-shot tag, whatever
        // the chunks; one flipped bit anywhere, or another record bound, is refused.
        #[test]
        fn a_checkpoint_opened_in_chunks_is_the_one_shot_opening(
            plain in proptest::collection::vec(any::<u8>(), 1..3000),
            chunk_blocks in 1_usize..8,
            nonce in any::<[u8; NONCE_LEN]>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let codec = codec(7);
            let at = Head { seq: 42, hash: [9; 32] };
            let mut sealed = plain.clone();
            let tag = codec
                .cipher
                .encrypt_inout_detached(
                    &nonce.into(),
                    &codec.checkpoint_aad(&at),
                    sealed.as_mut_slice().into(),
                )
                .unwrap();
            let tag = <[u8; TAG_LEN]>::from(tag);
            let open = |at: &Head, mut bytes: Vec<u8>| {
                let mut opener = codec.checkpoint_opener(at, &nonce);
                for chunk in bytes.chunks_mut(chunk_blocks * 16) {
                    opener.open(chunk);
                }
                (opener.verify(&tag), bytes)
            };
            let (authentic, opened) = open(&at, sealed.clone());
            prop_assert!(authentic);
            prop_assert_eq!(opened, plain);
            let mut flipped = sealed.clone();
            flipped[flip.index(sealed.len())] ^= 1;
            prop_assert!(!open(&at, flipped).0);
            let other = Head { seq: 43, hash: [9; 32] };
            prop_assert!(!open(&other, sealed).0);
        }
    }

    fn seal_one(codec: &RecordCodec, seq: u64, prev: &[u8; 32], plain: &[u8]) -> Vec<u8> {
        codec
            .seal(seq, prev, plain, &codec.batch_key().unwrap())
            .unwrap()
    }

    /// Opens a stored record with the `chacha20poly1305` crate's own XChaCha20-Poly1305.
    fn open_with_xchacha(
        key: &[u8; KEY_LEN],
        seq: u64,
        aad: &[u8],
        stored: &[u8],
    ) -> Option<Vec<u8>> {
        use chacha20poly1305::aead::Aead;
        let nonce: [u8; NONCE_LEN] = stored[1..PLAIN_OFFSET].try_into().ok()?;
        assert_eq!(nonce[NONCE_RANDOM_LEN..], seq.to_be_bytes());
        XChaCha20Poly1305::new(&(*key).into())
            .decrypt(
                &nonce.into(),
                chacha20poly1305::aead::Payload {
                    msg: &stored[PLAIN_OFFSET..],
                    aad,
                },
            )
            .ok()
    }

    /// Goal: both ways of computing ChaCha20-Poly1305 (one keystream pass up to ONE_PASS_MAX
    /// bytes, the crate beyond) give XChaCha20-Poly1305's bytes at every length around the
    /// switch, and both reject a record whose tag or ciphertext was changed.
    #[test]
    fn one_pass_and_crate_paths_agree_at_every_length_around_the_switch() {
        let key = [5_u8; KEY_LEN];
        let codec = RecordCodec::new(&key, [5; 16]);
        let batch = codec.batch_key().unwrap();
        let prev = [3_u8; 32];
        for len in 0..=ONE_PASS_MAX + 70 {
            let seq = 1000 + len as u64;
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let stored = codec.seal(seq, &prev, &plain, &batch).unwrap();
            let aad = codec.record_aad(seq, &prev);
            assert_eq!(
                open_with_xchacha(&key, seq, &aad, &stored),
                Some(plain.clone()),
                "{len}"
            );
            assert_eq!(codec.open(seq, &prev, &stored), Ok(plain.clone()), "{len}");
            for at in [PLAIN_OFFSET, stored.len() - 1] {
                if at >= stored.len() - TAG_LEN || len > 0 {
                    let mut damaged = stored.clone();
                    damaged[at] ^= 0x20;
                    assert_eq!(
                        codec.open(seq, &prev, &damaged),
                        Err(Problem::Unauthentic),
                        "{len} {at}"
                    );
                }
            }
        }
    }

    proptest! {
        // Goal: whatever is sealed opens to the same bytes at its own position, and at no other
        // position, chain or journal; the envelope costs exactly RECORD_OVERHEAD bytes.
        #[test]
        fn round_trip_and_binding(
            plain in proptest::collection::vec(any::<u8>(), 0..600),
            seq in 1_u64..u64::MAX,
            prev in any::<[u8; 32]>(),
            other_prev in any::<[u8; 32]>(),
        ) {
            let codec = codec(1);
            let stored = seal_one(&codec, seq, &prev, &plain);
            prop_assert_eq!(stored.len(), plain.len() + RECORD_OVERHEAD);
            prop_assert_eq!(codec.open(seq, &prev, &stored), Ok(plain.clone()));
            prop_assert_eq!(
                codec.open(seq.wrapping_add(1), &prev, &stored),
                Err(Problem::Misplaced { sealed_for: seq })
            );
            if other_prev != prev {
                prop_assert_eq!(codec.open(seq, &other_prev, &stored), Err(Problem::Unauthentic));
            }
            prop_assert_eq!(self::codec(2).open(seq, &prev, &stored), Err(Problem::Unauthentic));
        }

        // Goal: the records sealed through a batch's cached subkey are XChaCha20-Poly1305
        // exactly: the crate's own XChaCha20Poly1305 opens them, and records it seals (each
        // with its own random nonce, as earlier versions wrote them) open here, with or
        // without a cache holding another prefix.
        #[test]
        fn records_are_plain_xchacha20_poly1305(
            plains in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..300), 1..6),
            first in 1_u64..u64::MAX / 2,
            prev in any::<[u8; 32]>(),
        ) {
            let key = [9_u8; KEY_LEN];
            let codec = RecordCodec::new(&key, [9; 16]);
            let batch = codec.batch_key().unwrap();
            let mut cache = OpenCache::default();
            for (seq, plain) in (first..).zip(&plains) {
                let stored = codec.seal(seq, &prev, plain, &batch).unwrap();
                let aad = codec.record_aad(seq, &prev);
                prop_assert_eq!(open_with_xchacha(&key, seq, &aad, &stored), Some(plain.clone()));
                prop_assert_eq!(
                    codec.open_cached(seq, &prev, &stored, &mut cache),
                    Ok(plain.clone())
                );

                let mut nonce = [0_u8; NONCE_LEN];
                random_fill(&mut nonce[..NONCE_RANDOM_LEN]).unwrap();
                nonce[NONCE_RANDOM_LEN..].copy_from_slice(&seq.to_be_bytes());
                let mut theirs = vec![ENVELOPE_V1];
                theirs.extend_from_slice(&nonce);
                let mut body = plain.clone();
                let tag = XChaCha20Poly1305::new(&key.into())
                    .encrypt_inout_detached(&nonce.into(), &aad, body.as_mut_slice().into())
                    .unwrap();
                theirs.extend_from_slice(&body);
                theirs.extend_from_slice(&tag);
                prop_assert_eq!(
                    codec.open_cached(seq, &prev, &theirs, &mut cache),
                    Ok(plain.clone())
                );
                prop_assert_eq!(codec.open(seq, &prev, &theirs), Ok(plain.clone()));
            }
        }

        // Goal: a single flipped bit anywhere in a stored record never opens.
        #[test]
        fn any_bit_flip_is_rejected(
            plain in proptest::collection::vec(any::<u8>(), 0..200),
            bit in any::<prop::sample::Index>(),
        ) {
            let codec = codec(3);
            let mut stored = seal_one(&codec, 5, &GENESIS, &plain);
            let bit = bit.index(stored.len() * 8);
            stored[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(codec.open(5, &GENESIS, &stored).is_err());
        }

        // Goal: truncated or arbitrary bytes are reported, never a panic.
        #[test]
        fn garbage_is_rejected(stored in proptest::collection::vec(any::<u8>(), 0..120)) {
            prop_assert!(codec(4).open(1, &GENESIS, &stored).is_err());
        }

        #[test]
        fn head_round_trip(seq in any::<u64>(), hash in any::<[u8; 32]>()) {
            let codec = codec(5);
            let head = Head { seq, hash };
            let stored = codec.seal_head(&head).unwrap();
            prop_assert_eq!(codec.open_head(&stored), Some(head));
            prop_assert_eq!(self::codec(6).open_head(&stored), None);
        }
    }

    #[test]
    fn short_and_unknown_envelopes_are_named() {
        let codec = codec(7);
        assert_eq!(
            codec.open(1, &GENESIS, &[1; 10]),
            Err(Problem::Short { len: 10 })
        );
        let mut stored = seal_one(&codec, 1, &GENESIS, b"x");
        stored[0] = 9;
        assert_eq!(
            codec.open(1, &GENESIS, &stored),
            Err(Problem::UnknownEnvelope { version: 9 })
        );
    }

    // Goal: no two records share a nonce: the records of one batch differ in their sequence
    // numbers, and two batches (even sealing the same sequence number again, as after a
    // crash) in their random prefixes.
    #[test]
    fn nonces_differ_between_records() {
        let codec = codec(8);
        let batch = codec.batch_key().unwrap();
        let a = codec.seal(1, &GENESIS, b"same", &batch).unwrap();
        let b = codec.seal(2, &GENESIS, b"same", &batch).unwrap();
        assert_eq!(a[1..17], b[1..17]);
        assert_ne!(a[1..PLAIN_OFFSET], b[1..PLAIN_OFFSET]);
        let again = seal_one(&codec, 1, &GENESIS, b"same");
        assert_ne!(a[1..17], again[1..17]);
        assert_ne!(a, again);
    }
}
