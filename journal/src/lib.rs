//! ferry's journal: an encrypted, hash-chained, append-only log of events.
//!
//! Everything ferry knows is a replay of this log, so it is built to detect, name and refuse
//! damage rather than to work around it. It knows nothing of mail: it is generic over any
//! serde event type.
//!
//! - **Storage**: fjall, one store per journal, records keyed by big-endian `u64` sequence
//!   numbers starting at 1, in a `records` keyspace; the header and the head in `meta`.
//! - **Records**: the event's postcard bytes sealed with XChaCha20-Poly1305, associated data
//!   binding journal id, sequence number and the previous record's chain hash (see [`record`]).
//! - **Head**: a sealed `(last seq, last chain hash)` written in the same atomic batch as every
//!   append. It is what makes a truncated tail detectable: "N records missing at the end".
//! - **Keys**: a random data key per journal, wrapped by a key from the operator's passphrase
//!   (Argon2id) or key file (see [`key`]). Content hashes are blake3 keyed with a sub-key.
//! - **Durability**: [`Journal::append_batch`] returns once its records are on disk; concurrent
//!   appenders share one flush (group commit).
//!
//! Invariants: this crate never logs, prints, reads the environment or a home directory; it
//! never skips a record it cannot authenticate; it never retries a failed flush.
//!
//! ```
//! use ferry_journal::{CreateOptions, Journal, KeyFileSecret, KeySource};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let key = KeySource::KeyFile(KeyFileSecret::generate()?);
//! let journal: Journal<String> = Journal::create(dir.path(), &key, CreateOptions::default())?;
//! journal.append_batch(&["first".to_string(), "second".to_string()])?;
//! let events: Vec<String> = journal
//!     .replay(1)
//!     .map(|entry| entry.map(|entry| entry.event))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(events, ["first", "second"]);
//! assert_eq!(journal.verify()?.records, 2);
//! # Ok(())
//! # }
//! ```

mod copy;
mod error;
mod header;
mod journal;
pub mod key;
pub mod record;
mod witness;

pub use error::{Error, Problem, Result};
pub use header::FORMAT_VERSION;
#[cfg(feature = "tamper")]
pub use journal::Tamper;
pub use journal::{CheckpointReader, CreateOptions, Entry, Journal, Replay, VerifyReport};
pub use key::{
    ContentHash, ContentHasher, ContentKey, KdfParams, KeyFileSecret, KeySource, Passphrase,
};
