//! The journal header: format version, journal id, how the data key is protected, and the
//! wrapped data key. Stored in the clear (it holds nothing secret) with a blake3 checksum, so a
//! damaged header is told apart from a wrong passphrase.
//!
//! ```text
//! "FERRYJNL" ‖ format u16 BE ‖ postcard(HeaderBody) ‖ blake3(everything before)
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::key::Protection;

const MAGIC: &[u8; 8] = b"FERRYJNL";
/// The journal format this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
const CHECKSUM_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    pub(crate) journal_id: [u8; 16],
    pub(crate) protection: Protection,
    /// nonce ‖ sealed data key ‖ tag.
    pub(crate) wrapped_key: Vec<u8>,
}

impl Header {
    /// Associated data for wrapping the data key: binds it to this journal.
    pub(crate) fn wrap_aad(journal_id: &[u8; 16]) -> [u8; 26] {
        let mut aad = [0_u8; 26];
        aad[..10].copy_from_slice(b"ferry-key1");
        aad[10..].copy_from_slice(journal_id);
        aad
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        let body = postcard::to_stdvec(self).map_err(|e| Error::Encode {
            reason: format!("journal header: {e}"),
        })?;
        out.extend_from_slice(&body);
        let checksum = blake3::hash(&out);
        out.extend_from_slice(checksum.as_bytes());
        Ok(out)
    }

    pub(crate) fn decode(path: &std::path::Path, stored: &[u8]) -> Result<Header> {
        if stored.len() < MAGIC.len() + 2 + CHECKSUM_LEN {
            return Err(Error::HeaderCorrupt {
                reason: format!("only {} bytes long", stored.len()),
            });
        }
        let (content, checksum) = stored.split_at(stored.len() - CHECKSUM_LEN);
        if blake3::hash(content).as_bytes() != checksum {
            if !content.starts_with(MAGIC) {
                return Err(Error::NotAJournal {
                    path: path.to_path_buf(),
                });
            }
            return Err(Error::HeaderCorrupt {
                reason: "checksum mismatch".into(),
            });
        }
        if !content.starts_with(MAGIC) {
            return Err(Error::NotAJournal {
                path: path.to_path_buf(),
            });
        }
        let format = u16::from_be_bytes([content[8], content[9]]);
        if format != FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                found: format,
                supported: FORMAT_VERSION,
            });
        }
        let (header, rest) = postcard::take_from_bytes::<Header>(&content[10..]).map_err(|e| {
            Error::HeaderCorrupt {
                reason: format!("does not decode: {e}"),
            }
        })?;
        if !rest.is_empty() {
            return Err(Error::HeaderCorrupt {
                reason: format!("{} unexpected trailing bytes", rest.len()),
            });
        }
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KdfParams;
    use std::path::Path;

    fn sample() -> Header {
        Header {
            journal_id: [9; 16],
            protection: Protection::Passphrase {
                salt: [3; 16],
                kdf: KdfParams::DEFAULT,
            },
            wrapped_key: vec![5; 72],
        }
    }

    #[test]
    fn round_trip() {
        let header = sample();
        let bytes = header.encode().unwrap();
        assert_eq!(Header::decode(Path::new("j"), &bytes).unwrap(), header);
    }

    #[test]
    fn every_bit_flip_is_named_not_misread() {
        let bytes = sample().encode().unwrap();
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            let error = Header::decode(Path::new("j"), &damaged).unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::HeaderCorrupt { .. } | Error::NotAJournal { .. }
                ),
                "bit {bit}: {error:?}"
            );
        }
    }
}
