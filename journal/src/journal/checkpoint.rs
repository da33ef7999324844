//! Checkpoints: a sealed summary of every record up to a tail, in a file of its own beside
//! the store, bound to that tail record so it only ever opens over the records it summarises.

use std::io::{Read, Write};

use super::{CHECKPOINT_FILE, CHECKPOINT_STAGING_FILE, Journal, lock};
use crate::error::{Error, Result};
use crate::key::TAG_LEN;
use crate::record::{
    CHECKPOINT_HEAD_LEN, Head, RecordCodec, StreamOpener, StreamSealer, chain_hash,
};

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

/// A checkpoint's plaintext as it is read and opened, [`SEAL_CHUNK`] bytes at a time (see
/// [`Journal::checkpoint_with`]). Not authentic until the whole was read and its tag checked.
pub struct CheckpointReader {
    file: std::fs::File,
    opener: StreamOpener,
    /// Ciphertext bytes not read yet.
    left: u64,
    chunk: Vec<u8>,
    /// Bytes of `chunk` handed out.
    at: usize,
    /// The first read error: the checkpoint is then not used, and the error reported.
    failed: Option<std::io::Error>,
}

impl std::fmt::Debug for CheckpointReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointReader")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl CheckpointReader {
    /// Reads and opens the next chunk; `false` at the end.
    fn next_chunk(&mut self) -> std::io::Result<bool> {
        if self.left == 0 {
            return Ok(false);
        }
        let len = usize::try_from(self.left).map_or(SEAL_CHUNK, |left| left.min(SEAL_CHUNK));
        self.chunk.resize(len, 0);
        self.file.read_exact(&mut self.chunk)?;
        self.opener.open(&mut self.chunk);
        self.left -= len as u64;
        self.at = 0;
        Ok(true)
    }

    /// Reads what the decoder left, then the tag: whether the whole is authentic.
    fn finish(mut self) -> std::io::Result<bool> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        while self.next_chunk()? {}
        let mut tag = [0_u8; TAG_LEN];
        self.file.read_exact(&mut tag)?;
        Ok(self.opener.verify(&tag))
    }
}

impl Read for CheckpointReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.chunk.len()
            && let Err(error) = self.next_chunk()
        {
            let kind = error.kind();
            self.failed.get_or_insert(error);
            return Err(kind.into());
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
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

    /// The latest checkpoint as `decode` makes it of the plaintext, read and opened 64 KiB at a
    /// time (at 100,000 messages a checkpoint is 17 MB, which a run would otherwise hold beside
    /// the state decoded from it), and the sequence number it was taken at. What `decode`
    /// returns is handed back only once the whole checkpoint authenticated over the records now
    /// in the journal; `None` otherwise (none stored, stored over records that are no longer
    /// there, damaged, or `decode` gave nothing): then replay from the start.
    pub fn checkpoint_with<T>(
        &self,
        decode: impl FnOnce(&mut CheckpointReader) -> Option<T>,
    ) -> Result<Option<(u64, T)>> {
        let inner = &*self.inner;
        let path = inner.path.join(CHECKPOINT_FILE);
        let io_error = |source| Error::Io {
            context: format!("reading the checkpoint {}", path.display()),
            source,
        };
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(error)),
        };
        let len = file.metadata().map_err(io_error)?.len();
        let Some(sealed) = len.checked_sub((CHECKPOINT_HEAD_LEN + TAG_LEN) as u64) else {
            return Ok(None);
        };
        let mut head = [0_u8; CHECKPOINT_HEAD_LEN];
        file.read_exact(&mut head).map_err(io_error)?;
        let Some((seq, nonce)) = RecordCodec::checkpoint_head(&head) else {
            return Ok(None);
        };
        let Some(at) = self.checkpoint_taken_at(seq)? else {
            return Ok(None);
        };
        let mut reader = CheckpointReader {
            file,
            opener: inner.codec.checkpoint_opener(&at, &nonce),
            left: sealed,
            chunk: Vec::with_capacity(SEAL_CHUNK),
            at: 0,
            failed: None,
        };
        let decoded = decode(&mut reader);
        let authentic = reader.finish().map_err(io_error)?;
        Ok(decoded.filter(|_| authentic).map(|decoded| (seq, decoded)))
    }

    /// The record a checkpoint claims to be taken at, if the journal holds it (then the
    /// checkpoint opens only if it was taken over that very record).
    fn checkpoint_taken_at(&self, seq: u64) -> Result<Option<Head>> {
        let inner = &*self.inner;
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
        Ok(Some(Head { seq, hash }))
    }

    /// The latest checkpoint and the sequence number it was taken at, when there is one that
    /// authenticates over the records now in the journal. `None` otherwise (none stored, or
    /// stored over records that are no longer there): then replay from the start. (Read whole:
    /// [`Journal::checkpoint_with`] decodes it as it is read.)
    pub fn checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>> {
        self.checkpoint_with(|reader| {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).ok()?;
            Some(bytes)
        })
    }
}
