//! The tail witness: a copy of the head kept outside the store, in the file `tail` of the
//! journal directory, rewritten after every durable append.
//!
//! The head inside the store vouches for the last record, and both are written in one atomic
//! batch: a store that lost its tail (a truncated or torn write-ahead file, a lost disk cache)
//! recovers to an older head that vouches for the older last record, and looks intact. The
//! witness lives in another file, so losing the store's tail does not lose it: a witness ahead
//! of the store's head names the records that are missing ("3 records missing at the end").
//!
//! It is written only once the records it names are durable, so it may lag behind the head
//! (a process killed between the flush and the witness, a power cut before the page reached
//! the disk) but never runs ahead of what was acknowledged. It is not flushed on its own: a
//! lagging witness is harmless, and the flush it would cost per batch is the whole price of a
//! durable append. A journal directory restored whole from an older copy brings its old
//! witness along and cannot be told from the original: that case is the engine's (the target
//! is observed, not trusted from the journal).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::record::{Head, RecordCodec};

/// The witness's file in the journal directory.
pub(crate) const WITNESS_FILE: &str = "tail";

/// The open witness file and the last sequence number written to it.
#[derive(Debug)]
pub(crate) struct Witness {
    file: Mutex<Option<(File, u64)>>,
}

impl Witness {
    /// A witness whose file is opened on the first write.
    pub(crate) fn new() -> Witness {
        Witness {
            file: Mutex::new(None),
        }
    }

    /// Records that every record up to `head` is durable. Never moves the witness backwards
    /// (concurrent appenders may report out of order). A failure to write it is returned: the
    /// records are durable, but the caller should know the witness lags.
    pub(crate) fn advance(&self, dir: &Path, codec: &RecordCodec, head: &Head) -> Result<()> {
        let mut guard = self.file.lock().map_err(|_| Error::Poisoned)?;
        if let Some((_, written)) = guard.as_ref()
            && *written >= head.seq
        {
            return Ok(());
        }
        let sealed = codec.seal_head(head)?;
        if guard.is_none() {
            let path = dir.join(WITNESS_FILE);
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|source| Error::Io {
                    context: format!("opening the journal's tail witness {}", path.display()),
                    source,
                })?;
            *guard = Some((file, 0));
        }
        if let Some((file, written)) = guard.as_mut() {
            // One write of a few dozen bytes at the start of the file: it lands whole.
            file.write_all_at(&sealed, 0).map_err(|source| Error::Io {
                context: format!("writing the journal's tail witness in {}", dir.display()),
                source,
            })?;
            *written = head.seq;
        }
        Ok(())
    }
}

/// Reads the witness of the journal at `dir`: `None` when there is none (a journal made before
/// witnesses, or one that never appended), or when it is empty (a process killed between
/// creating the file and its first write).
pub(crate) fn read(dir: &Path, codec: &RecordCodec) -> Result<Option<Head>> {
    let path = dir.join(WITNESS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                context: format!("reading the journal's tail witness {}", path.display()),
                source,
            });
        }
    };
    if bytes.is_empty() {
        return Ok(None);
    }
    codec
        .open_head(&bytes)
        .map(Some)
        .ok_or_else(|| Error::HeadCorrupt {
            reason: format!(
                "the tail witness {} does not authenticate (altered, or from another journal)",
                path.display()
            ),
        })
}

/// Checks the store's head against the witness: a witness ahead of the head means records that
/// were acknowledged are gone from the end of the store.
pub(crate) fn check(dir: &Path, codec: &RecordCodec, head: &Head) -> Result<()> {
    match read(dir, codec)? {
        Some(witness) if witness.seq > head.seq => Err(Error::Truncated {
            missing: witness.seq - head.seq,
            last_present: head.seq,
            head: witness.seq,
        }),
        _ => Ok(()),
    }
}
