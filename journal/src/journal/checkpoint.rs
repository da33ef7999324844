//! Checkpoints: a sealed summary of every record up to a tail, in a file of its own beside
//! the store, bound to that tail record so it only ever opens over the records it summarises.

use std::io::Write;

use super::{CHECKPOINT_FILE, CHECKPOINT_STAGING_FILE, Journal, lock};
use crate::error::{Error, Result};
use crate::key::TAG_LEN;
use crate::record::{Head, RecordCodec, StreamSealer, chain_hash};

/// Plaintext gathered before it is sealed and written (a multiple of 64 bytes, see
/// [`StreamSealer::seal`]).
const SEAL_CHUNK: usize = 64 * 1024;

/// Seals what is written to it a chunk at a time, into the checkpoint file being written.
struct SealingWriter<'a> {
    file: &'a mut std::fs::File,
    sealer: StreamSealer,
    chunk: Vec<u8>,
}

impl SealingWriter<'_> {
    fn seal_chunk(&mut self) -> std::io::Result<()> {
        self.sealer.seal(&mut self.chunk);
        self.file.write_all(&self.chunk)?;
        self.chunk.clear();
        Ok(())
    }

    /// Seals what is left; returns the tag.
    fn finish(mut self) -> std::io::Result<[u8; TAG_LEN]> {
        self.seal_chunk()?;
        Ok(self.sealer.finish())
    }
}

impl Write for SealingWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let take = (SEAL_CHUNK - self.chunk.len()).min(rest.len());
            self.chunk.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.chunk.len() == SEAL_CHUNK {
                self.seal_chunk()?;
            }
        }
        Ok(data.len())
    }

    /// Whole chunks are written as they fill; the last one by `finish`.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<E> Journal<E> {
    /// Stores a checkpoint: opaque bytes that summarise every record up to the current tail
    /// (a fold the caller can rebuild by replaying), sealed and bound to that tail record, so it
    /// can only ever be opened over the records it summarises. Replaces the previous one;
    /// durable when this returns. Returns the sequence number it was taken at.
    ///
    /// A checkpoint is a cache, never a source of truth: the records stay, and a caller that
    /// cannot use a checkpoint replays from the start.
    pub fn put_checkpoint(&self, bytes: Vec<u8>) -> Result<u64> {
        self.put_checkpoint_with(|out| out.write_all(&bytes))
    }

    /// As [`Journal::put_checkpoint`], the bytes written by `write` as they are made: they are
    /// sealed and written to the file 64 KiB at a time, so a checkpoint of tens of megabytes
    /// is never held in memory. The tail stays locked meanwhile (nothing is appended).
    pub fn put_checkpoint_with(
        &self,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<u64> {
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
        let (head, sealer) = inner.codec.checkpoint_sealer(&tail)?;
        // A file of its own beside the store, replaced atomically: a checkpoint is rewritten
        // whole after every run, and keeping it out of the store keeps the store's log short.
        let path = inner.path.join(CHECKPOINT_FILE);
        let staging = inner.path.join(CHECKPOINT_STAGING_FILE);
        let written = (|| {
            let mut file = std::fs::File::create(&staging)?;
            file.write_all(&head)?;
            let mut sealing = SealingWriter {
                file: &mut file,
                sealer,
                chunk: Vec::with_capacity(SEAL_CHUNK),
            };
            write(&mut sealing)?;
            let tag = sealing.finish()?;
            file.write_all(&tag)?;
            file.sync_all()?;
            std::fs::rename(&staging, &path)?;
            std::fs::File::open(&inner.path).and_then(|dir| dir.sync_all())
        })();
        if let Err(source) = written {
            let _ = std::fs::remove_file(&staging);
            return Err(Error::Io {
                context: format!("writing the checkpoint {}", path.display()),
                source,
            });
        }
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
