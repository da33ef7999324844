//! Checkpoints: a sealed summary of every record up to a tail, in a file of its own beside
//! the store, bound to that tail record so it only ever opens over the records it summarises.

use super::{CHECKPOINT_FILE, CHECKPOINT_STAGING_FILE, Journal, lock};
use crate::error::{Error, Result};
use crate::record::{Head, RecordCodec, chain_hash};

impl<E> Journal<E> {
    /// Stores a checkpoint: opaque bytes that summarise every record up to the current tail
    /// (a fold the caller can rebuild by replaying), sealed and bound to that tail record, so it
    /// can only ever be opened over the records it summarises. Replaces the previous one;
    /// durable when this returns. Returns the sequence number it was taken at.
    ///
    /// A checkpoint is a cache, never a source of truth: the records stay, and a caller that
    /// cannot use a checkpoint replays from the start.
    ///
    /// The bytes are sealed where they are (hence taken by value), so a checkpoint of tens of
    /// megabytes is never held twice.
    pub fn put_checkpoint(&self, mut bytes: Vec<u8>) -> Result<u64> {
        let inner = &*self.inner;
        inner.writable()?;
        let tail = lock(&inner.tail)?;
        if lock(&inner.durable)?.poisoned {
            return Err(Error::Poisoned);
        }
        // The tail must be durable before a checkpoint that covers it.
        drop(tail);
        let seq = self.last_seq();
        self.wait_durable(seq)?;
        let tail = lock(&inner.tail)?;
        let (head, tag) = inner.codec.seal_checkpoint(&tail, &mut bytes)?;
        // A file of its own beside the store, replaced atomically: a checkpoint is rewritten
        // whole after every run, and keeping it out of the store keeps the store's log short.
        let path = inner.path.join(CHECKPOINT_FILE);
        let staging = inner.path.join(CHECKPOINT_STAGING_FILE);
        let io = |error| Error::Io {
            context: format!("writing the checkpoint {}", path.display()),
            source: error,
        };
        let mut file = std::fs::File::create(&staging).map_err(io)?;
        for part in [&head[..], &bytes, &tag] {
            std::io::Write::write_all(&mut file, part).map_err(io)?;
        }
        file.sync_all().map_err(io)?;
        std::fs::rename(&staging, &path).map_err(io)?;
        std::fs::File::open(&inner.path)
            .and_then(|dir| dir.sync_all())
            .map_err(io)?;
        Ok(tail.seq)
    }

    /// The latest checkpoint and the sequence number it was taken at, when there is one that
    /// authenticates over the records now in the journal. `None` otherwise (none stored, or
    /// stored over records that are no longer there): then replay from the start.
    pub fn checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>> {
        let inner = &*self.inner;
        let path = inner.path.join(CHECKPOINT_FILE);
        let stored = match std::fs::read(&path) {
            Ok(stored) => stored,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(Error::Io {
                    context: format!("reading the checkpoint {}", path.display()),
                    source: error,
                });
            }
        };
        let Some(seq) = RecordCodec::checkpoint_seq(&stored) else {
            return Ok(None);
        };
        if seq > self.last_seq() {
            return Ok(None);
        }
        let hash = if seq == 0 {
            Head::EMPTY.hash
        } else {
            match inner
                .records
                .get(seq.to_be_bytes())
                .map_err(|e| Error::storage(inner.shown(), e))?
            {
                Some(record) => chain_hash(&record),
                None => return Ok(None),
            }
        };
        Ok(inner
            .codec
            .open_checkpoint(&Head { seq, hash }, stored)
            .map(|plain| (seq, plain)))
    }
}
