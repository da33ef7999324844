//! Replay and verification: a reader thread walks the store and hashes the chain, the
//! caller opens and decodes; the first bad record ends the walk with its name.

use super::*;

impl<E> Journal<E> {
    /// Replays events from `from` (1 for all) up to the last record at the time of the call, in
    /// order, checking the chain as it goes. The first damaged record ends the replay with an
    /// error naming it.
    ///
    /// Starting in the middle chains to the stored bytes of record `from - 1` without
    /// authenticating it; a damaged record there shows up as record `from` not authenticating.
    pub fn replay(&self, from: u64) -> Replay<E>
    where
        E: DeserializeOwned,
    {
        Replay {
            walk: self.walk(from.max(1)),
            _event: PhantomData,
        }
    }

    fn walk(&self, from: u64) -> Walk {
        let end = self.last_seq();
        let inner = Arc::clone(&self.inner);
        let prev = if from <= 1 {
            Ok(GENESIS)
        } else {
            match inner.records.get((from - 1).to_be_bytes()) {
                Ok(Some(stored)) => Ok(chain_hash(&stored)),
                Ok(None) => Err(Error::Corrupt {
                    seq: from - 1,
                    problem: Problem::Missing,
                }),
                Err(e) => Err(Error::storage(inner.shown(), e)),
            }
        };
        let (prev, mut pending_error) = match prev {
            Ok(prev) => (prev, None),
            Err(error) => (GENESIS, Some(error)),
        };
        let (chunks_tx, chunks) = mpsc::sync_channel(REPLAY_CHUNKS_IN_FLIGHT);
        let queued = Arc::new(AtomicUsize::new(0));
        let reader_queued = Arc::clone(&queued);
        let mut reader_thread = None;
        if from <= end && pending_error.is_none() {
            let iter = inner.records.range(from.to_be_bytes()..=end.to_be_bytes());
            let reader = Arc::clone(&inner);
            let spawned = std::thread::Builder::new()
                .name("ferry-journal-replay".into())
                .spawn(move || read_ahead(iter, &reader, prev, &chunks_tx, &reader_queued));
            match spawned {
                Ok(handle) => reader_thread = Some(handle),
                Err(source) => {
                    pending_error = Some(Error::Io {
                        context: "starting the journal's replay reader thread".into(),
                        source,
                    });
                }
            }
        }
        Walk {
            inner,
            reader: reader_thread,
            chunks,
            queued,
            cache: OpenCache::default(),
            current: Vec::new().into_iter(),
            next_seq: from,
            end,
            prev,
            pending_error,
            done: from > end,
            stored_bytes: 0,
        }
    }

    /// Walks the whole journal and checks every record's authenticity, position and chain, and
    /// that the last one is the one the head vouches for. Names the first bad record.
    /// Does not decode events, so a journal written by a newer ferry still verifies.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut walk = self.walk(1);
        let mut records = 0;
        for item in walk.by_ref() {
            item?;
            records += 1;
        }
        Ok(VerifyReport {
            records,
            stored_bytes: walk.stored_bytes,
        })
    }
}

/// Stored records handed from the reader thread to the replaying thread at a time.
pub(super) const REPLAY_CHUNK_RECORDS: usize = 256;
/// Chunks the reader may run ahead: bounds replay memory to about 4 × 512 records.
pub(super) const REPLAY_CHUNKS_IN_FLIGHT: usize = 8;
/// The reader opens a chunk's records itself when at least this many chunks wait for the
/// replaying thread.
pub(super) const REPLAY_OPEN_HERE_WHEN_QUEUED: usize = 2;

/// One stored record as read, with its chain hash already computed.
pub(super) struct RawRecord {
    /// The sequence number in its key; `None` for a malformed key.
    seq: Option<u64>,
    /// Length of the stored record.
    len: usize,
    hash: [u8; 32],
    content: Content,
}

pub(super) enum Content {
    Stored(fjall::UserValue),
    /// The plaintext, when the reader opened the record itself (see `queue`). The stored
    /// bytes are released on the reader's side.
    Opened(Vec<u8>),
}

/// The reader half of a replay: reads stored records in order and computes their chain hashes
/// (which need only the stored bytes). Whenever the replaying thread falls behind (the queue of
/// chunks is full), the reader also opens the chunk in hand before queueing it, so the work
/// spreads over two cores in whatever proportion the consumer's own work leaves. A record is
/// opened with the sequence number of its key and the chain hash of the record read before it:
/// the same inputs the other half uses once it has checked that the key is the one expected.
/// Only successful opens are passed on; the other half opens a failing record again, to name
/// what is wrong. Stops when the replay is dropped.
pub(super) fn read_ahead(
    iter: fjall::Iter,
    inner: &Inner,
    mut prev: [u8; 32],
    chunks: &mpsc::SyncSender<Result<Vec<RawRecord>>>,
    queued: &AtomicUsize,
) {
    let path = inner.shown();
    let mut chunk = Vec::with_capacity(REPLAY_CHUNK_RECORDS);
    let mut cache = OpenCache::default();
    // The chain hash before the chunk's first record.
    let mut chunk_prev = prev;
    for guard in iter {
        match guard.into_inner() {
            Ok((key, stored)) => {
                let hash = chain_hash(&stored);
                prev = hash;
                chunk.push(RawRecord {
                    seq: decode_key(&key),
                    len: stored.len(),
                    hash,
                    content: Content::Stored(stored),
                });
                if chunk.len() == REPLAY_CHUNK_RECORDS {
                    let full =
                        std::mem::replace(&mut chunk, Vec::with_capacity(REPLAY_CHUNK_RECORDS));
                    let before = std::mem::replace(&mut chunk_prev, prev);
                    if !queue(chunks, queued, inner, &mut cache, before, full) {
                        return;
                    }
                }
            }
            Err(error) => {
                let _ = chunks.send(Err(Error::storage(path, error)));
                return;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = chunks.send(Ok(chunk));
    }
}

/// Queues a chunk for the replaying thread, first opening its records here when that thread
/// already has enough queued to keep it busy meanwhile. False once the replay is dropped.
pub(super) fn queue(
    chunks: &mpsc::SyncSender<Result<Vec<RawRecord>>>,
    queued: &AtomicUsize,
    inner: &Inner,
    cache: &mut OpenCache,
    mut prev: [u8; 32],
    mut chunk: Vec<RawRecord>,
) -> bool {
    if queued.load(Ordering::Acquire) >= REPLAY_OPEN_HERE_WHEN_QUEUED {
        for raw in &mut chunk {
            if let (Some(seq), Content::Stored(stored)) = (raw.seq, &raw.content)
                && let Ok(plain) = inner.codec.open_cached(seq, &prev, stored, cache)
            {
                raw.content = Content::Opened(plain);
            }
            prev = raw.hash;
        }
    }
    // Counted before sending, so the replaying thread never takes off more than was added.
    queued.fetch_add(1, Ordering::AcqRel);
    chunks.send(Ok(chunk)).is_ok()
}

/// Walks stored records in order, yielding each one's authenticated plaintext.
pub(super) struct Walk {
    inner: Arc<Inner>,
    /// The reader thread, joined when the walk is dropped: it holds the journal, which must be
    /// released (and a read-only copy removed) when its last handle is dropped, not after.
    reader: Option<std::thread::JoinHandle<()>>,
    chunks: mpsc::Receiver<Result<Vec<RawRecord>>>,
    /// Chunks sent by the reader and not yet taken here.
    queued: Arc<AtomicUsize>,
    cache: OpenCache,
    current: std::vec::IntoIter<RawRecord>,
    next_seq: u64,
    end: u64,
    prev: [u8; 32],
    pending_error: Option<Error>,
    done: bool,
    stored_bytes: u64,
}

impl Drop for Walk {
    fn drop(&mut self) {
        // Dropping the receiver makes a reader blocked on a full channel stop.
        drop(std::mem::replace(&mut self.chunks, mpsc::sync_channel(0).1));
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Walk {
    /// At the end of a walk: the stored head must authenticate and vouch for the last record
    /// walked (or for a later one, appended since the walk began).
    fn check_stored_head(&self) -> Result<()> {
        let inner = &*self.inner;
        let stored = inner
            .meta
            .get(HEAD_KEY)
            .map_err(|e| Error::storage(inner.shown(), e))?
            .ok_or_else(|| Error::HeadCorrupt {
                reason: "the head record is missing".into(),
            })?;
        let head = inner
            .codec
            .open_head(&stored)
            .ok_or_else(|| Error::HeadCorrupt {
                reason: "the head record does not authenticate".into(),
            })?;
        if head.seq < self.end {
            return Err(Error::HeadCorrupt {
                reason: format!(
                    "the head vouches for {} records but {} are stored",
                    head.seq, self.end
                ),
            });
        }
        if head.seq == self.end && head.hash != self.prev {
            return Err(Error::Corrupt {
                seq: self.end,
                problem: Problem::HeadMismatch,
            });
        }
        Ok(())
    }

    fn truncated(&self) -> Error {
        Error::Truncated {
            missing: self.end + 1 - self.next_seq,
            last_present: self.next_seq - 1,
            head: self.end,
        }
    }

    fn fail(&mut self, error: Error) -> Option<Result<(u64, Vec<u8>)>> {
        self.done = true;
        Some(Err(error))
    }
}

impl Iterator for Walk {
    type Item = Result<(u64, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.pending_error.take() {
            return self.fail(error);
        }
        if self.done {
            return None;
        }
        let raw = match self.current.next() {
            Some(raw) => raw,
            None => match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    self.queued.fetch_sub(1, Ordering::AcqRel);
                    self.current = chunk.into_iter();
                    match self.current.next() {
                        Some(raw) => raw,
                        None => return self.fail(self.truncated()),
                    }
                }
                Ok(Err(error)) => return self.fail(error),
                // The reader finished: the store ended before the last promised record.
                Err(mpsc::RecvError) => return self.fail(self.truncated()),
            },
        };
        let seq = self.next_seq;
        let RawRecord {
            seq: found,
            len,
            hash,
            content,
        } = raw;
        match found {
            Some(found) if found == seq => {}
            Some(_) => {
                return self.fail(Error::Corrupt {
                    seq,
                    problem: Problem::Missing,
                });
            }
            None => {
                return self.fail(Error::Corrupt {
                    seq,
                    problem: Problem::BadKey,
                });
            }
        }
        // Opened by the reader with this very seq (the key was just checked) and the chain hash
        // of the record before, which is `self.prev`; otherwise opened here.
        let plain = match content {
            Content::Opened(plain) => plain,
            Content::Stored(stored) => {
                match self
                    .inner
                    .codec
                    .open_cached(seq, &self.prev, &stored, &mut self.cache)
                {
                    Ok(plain) => plain,
                    Err(problem) => {
                        let problem = refine(&self.inner.records, problem, &stored);
                        return self.fail(Error::Corrupt { seq, problem });
                    }
                }
            }
        };
        self.prev = hash;
        self.stored_bytes += len as u64;
        self.next_seq += 1;
        if seq == self.end {
            self.done = true;
            if let Err(error) = self.check_stored_head() {
                return Some(Err(error));
            }
        }
        Some(Ok((seq, plain)))
    }
}

/// An iterator over replayed events; see [`Journal::replay`].
pub struct Replay<E> {
    walk: Walk,
    _event: PhantomData<fn() -> E>,
}

impl<E> std::fmt::Debug for Replay<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("next_seq", &self.walk.next_seq)
            .field("end", &self.walk.end)
            .finish()
    }
}

impl<E: DeserializeOwned> Iterator for Replay<E> {
    type Item = Result<Entry<E>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (seq, plain) = match self.walk.next()? {
            Ok(pair) => pair,
            Err(error) => return Some(Err(error)),
        };
        // An event must account for every byte of its record: trailing bytes mean the record
        // was written as another type.
        match postcard::take_from_bytes(&plain) {
            Ok((event, [])) => Some(Ok(Entry { seq, event })),
            Ok((_, rest)) => {
                self.walk.done = true;
                Some(Err(Error::Decode {
                    seq,
                    reason: format!("{} bytes left over", rest.len()),
                }))
            }
            Err(e) => {
                self.walk.done = true;
                Some(Err(Error::Decode {
                    seq,
                    reason: e.to_string(),
                }))
            }
        }
    }
}
