//! The append pipeline: encoding outside the lock, sealing each record chained to the one
//! before, committing to the store (large batches in slices on a long-lived commit thread, so
//! sealing overlaps the store's work), and group commit: one fsync covers every appender that
//! arrived while the previous one ran.

use std::ops::RangeInclusive;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use fjall::PersistMode;
use serde::Serialize;

use super::{
    ENCODED_GUESS_BYTES, FLUSH_GATHER_MAX, HEAD_KEY, Inner, Journal, PIPELINE_SLICE_RECORDS,
    PIPELINE_SLICES_IN_FLIGHT, Store, lock,
};
use crate::error::{Error, Result};
use crate::record::{BatchKey, Head, PLAIN_OFFSET, RecordCodec, chain_hash};

/// Commits sealed records, and the sealed head when given, in one atomic store batch.
fn commit_to_store(
    store: &Store,
    records: Vec<(u64, Vec<u8>)>,
    head: Option<Vec<u8>>,
) -> Result<()> {
    // Records reach the store in order, each one after the other.
    debug_assert!(
        records.windows(2).all(|pair| pair[1].0 == pair[0].0 + 1),
        "records committed out of sequence"
    );
    let mut batch = store.db.batch();
    for (seq, record) in records {
        batch.insert(&store.records, seq.to_be_bytes(), record);
    }
    if let Some(head) = head {
        batch.insert(&store.meta, HEAD_KEY, head);
    }
    batch
        .commit()
        .map_err(|error| Error::storage(&store.path, error))
}

/// Sealed records on their way to the commit thread.
pub(super) struct Slice {
    records: Vec<(u64, Vec<u8>)>,
    /// The sealed head, on a batch's last slice.
    head: Option<Vec<u8>>,
    /// Where the batch's outcome goes, on its last slice.
    reply: Option<mpsc::SyncSender<Result<()>>>,
}

/// A long-lived thread that commits the slices of large batches in order. Long-lived, not
/// started per batch: a new thread starts on its parent's core and would rarely run beside it
/// before the batch is over.
pub(super) struct CommitThread {
    pub(super) slices: mpsc::SyncSender<Slice>,
    pub(super) thread: std::thread::JoinHandle<()>,
}

impl CommitThread {
    fn start(inner: &Inner) -> Result<CommitThread> {
        let store = Store::of(inner);
        let (slices, received) = mpsc::sync_channel::<Slice>(PIPELINE_SLICES_IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("ferry-journal-commit".into())
            .spawn(move || {
                // After a failed slice, the rest of its batch is not committed; the failure
                // is the batch's outcome.
                let mut failed = None;
                for slice in received {
                    if failed.is_none()
                        && let Err(error) = commit_to_store(&store, slice.records, slice.head)
                    {
                        failed = Some(error);
                    }
                    if let Some(reply) = slice.reply {
                        let _ = reply.send(failed.take().map_or(Ok(()), Err));
                    }
                }
            })
            .map_err(|source| Error::Io {
                context: "starting the journal's commit thread".into(),
                source,
            })?;
        Ok(CommitThread { slices, thread })
    }
}

/// Seals a batch's records in order, each chained to the one before.
struct Sealer<'a> {
    codec: &'a RecordCodec,
    /// The last record sealed so far.
    next: Head,
    key: BatchKey,
}

impl Sealer<'_> {
    /// Seals the next record (encoded after [`PLAIN_OFFSET`] bytes of room); returns its
    /// sequence number and stored bytes.
    fn seal(&mut self, mut record: Vec<u8>) -> Result<(u64, Vec<u8>)> {
        let seq = self.next.seq + 1;
        self.codec
            .seal_in_place(seq, &self.next.hash, &mut record, &self.key)?;
        self.next = Head {
            seq,
            hash: chain_hash(&record),
        };
        Ok((seq, record))
    }
}

impl<E> Journal<E> {
    /// Appends one event; returns its sequence number once it is durable.
    pub fn append(&self, event: &E) -> Result<u64>
    where
        E: Serialize,
    {
        let range = self.append_batch(std::slice::from_ref(event))?;
        Ok(*range.end())
    }

    /// Appends events as one atomic batch; returns their sequence numbers once all are durable.
    ///
    /// **This is the durability point.** When it returns `Ok`, every record of the batch has
    /// been flushed to disk (fsync) together with the head that vouches for it, and survives a
    /// crash or power loss. Concurrent callers share one flush (group commit): whoever arrives
    /// while a flush is running waits for the next one, which covers everybody's records.
    /// After a failed flush the journal is poisoned and refuses further appends.
    ///
    /// An empty batch writes nothing and returns an empty range.
    pub fn append_batch(&self, events: &[E]) -> Result<RangeInclusive<u64>>
    where
        E: Serialize,
    {
        // Encoded outside the lock (concurrent appenders encode in parallel), each straight
        // into the buffer that becomes its sealed record.
        let encoded = events
            .iter()
            .map(|event| {
                let mut record = Vec::with_capacity(ENCODED_GUESS_BYTES);
                record.resize(PLAIN_OFFSET, 0);
                postcard::to_extend(event, record).map_err(|e| Error::Encode {
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let count = encoded.len() as u64;
        let head = self.write(encoded)?;
        let last = head.seq;
        let first = last + 1 - count;
        if count == 0 {
            #[allow(clippy::reversed_empty_ranges)]
            return Ok(1..=0);
        }
        self.wait_durable(last)?;
        // The records are durable whatever happens here: a witness that could not be written
        // only lags, which weakens the detection of a lost tail and harms nothing else.
        let _ = self
            .inner
            .witness
            .advance(&self.inner.path, &self.inner.codec, &head);
        Ok(first..=last)
    }

    /// Seals and commits records to the store (not yet durable). Returns the new tail.
    fn write(&self, encoded: Vec<Vec<u8>>) -> Result<Head> {
        let inner = &*self.inner;
        inner.writers_in_progress.fetch_add(1, Ordering::AcqRel);
        let written = self.write_locked(encoded);
        inner.writers_in_progress.fetch_sub(1, Ordering::AcqRel);
        written
    }

    fn write_locked(&self, encoded: Vec<Vec<u8>>) -> Result<Head> {
        let inner = &*self.inner;
        let mut tail = lock(&inner.tail)?;
        if encoded.is_empty() {
            return Ok(*tail);
        }
        inner.writable()?;
        if lock(&inner.durable)?.poisoned {
            return Err(Error::Poisoned);
        }
        let key = inner.codec.batch_key()?;
        let count = encoded.len() as u64;
        let committed = if encoded.len() > PIPELINE_SLICE_RECORDS {
            self.seal_and_commit_pipelined(*tail, encoded, key)
        } else {
            let mut sealer = Sealer {
                codec: &inner.codec,
                next: *tail,
                key,
            };
            let mut records = Vec::with_capacity(encoded.len());
            for record in encoded {
                records.push(sealer.seal(record)?);
            }
            self.commit(records, Some(sealer.next))
                .map(|()| sealer.next)
        };
        let next = match committed {
            Ok(next) => next,
            Err(error) => {
                // The store may hold part of the batch in its buffers: the chain state on disk
                // is unknown, so nothing more may be appended.
                lock(&inner.durable)?.poisoned = true;
                return Err(error);
            }
        };
        // The chain grows by exactly the batch: sequence numbers rise by one per record.
        assert_eq!(
            next.seq,
            tail.seq + count,
            "a batch of {count} records moved the journal's tail from {} to {}",
            tail.seq,
            next.seq
        );
        *tail = next;
        inner.written_seq.store(next.seq, Ordering::Release);
        Ok(next)
    }

    /// Seals a large batch on this thread while the journal's commit thread commits the
    /// slices already sealed, so sealing (sequential: each record chains to the one before)
    /// overlaps the store's work instead of adding to it. Only the last slice carries the
    /// head; if the process dies between slices, the records stored beyond the head were
    /// never acknowledged and opening the journal discards them (see
    /// `discard_unacknowledged`), so a batch still lands whole or not at all.
    fn seal_and_commit_pipelined(
        &self,
        tail: Head,
        encoded: Vec<Vec<u8>>,
        key: BatchKey,
    ) -> Result<Head> {
        let inner = &*self.inner;
        let mut committer = lock(&inner.committer)?;
        let slices = match &mut *committer {
            Some(running) => running.slices.clone(),
            None => {
                let running = CommitThread::start(inner)?;
                let slices = running.slices.clone();
                *committer = Some(running);
                slices
            }
        };
        drop(committer);
        let mut sealer = Sealer {
            codec: &inner.codec,
            next: tail,
            key,
        };
        let total = encoded.len();
        let mut slice = Vec::with_capacity(PIPELINE_SLICE_RECORDS);
        let mut sealing = Ok(());
        for (index, record) in encoded.into_iter().enumerate() {
            match sealer.seal(record) {
                Ok(sealed) => slice.push(sealed),
                Err(error) => {
                    sealing = Err(error);
                    break;
                }
            }
            if slice.len() == PIPELINE_SLICE_RECORDS && index + 1 < total {
                let records =
                    std::mem::replace(&mut slice, Vec::with_capacity(PIPELINE_SLICE_RECORDS));
                slices
                    .send(Slice {
                        records,
                        head: None,
                        reply: None,
                    })
                    .map_err(|_| Error::Poisoned)?;
            }
        }
        // Without the head, a slice's records stay beyond the head: harmless if sealing failed.
        let head = match &sealing {
            Ok(()) => Some(inner.codec.seal_head(&sealer.next)?),
            Err(_) => None,
        };
        let (reply, outcome) = mpsc::sync_channel(1);
        slices
            .send(Slice {
                records: slice,
                head,
                reply: Some(reply),
            })
            .map_err(|_| Error::Poisoned)?;
        let committed = outcome.recv().map_err(|_| Error::Poisoned)?;
        sealing.and(committed).map(|()| sealer.next)
    }

    /// Commits sealed records to the store in one atomic batch, with the head when given.
    fn commit(&self, records: Vec<(u64, Vec<u8>)>, head: Option<Head>) -> Result<()> {
        let inner = &*self.inner;
        let head = match head {
            Some(head) => Some(inner.codec.seal_head(&head)?),
            None => None,
        };
        commit_to_store(&Store::of(inner), records, head)
    }

    /// Blocks until every record up to `seq` is durable, flushing if nobody else is.
    pub(super) fn wait_durable(&self, seq: u64) -> Result<()> {
        let inner = &*self.inner;
        let mut state = lock(&inner.durable)?;
        loop {
            if state.durable_seq >= seq {
                return Ok(());
            }
            if state.poisoned {
                return Err(Error::Poisoned);
            }
            if state.flushing {
                state = inner
                    .durable_changed
                    .wait(state)
                    .map_err(|_| Error::Poisoned)?;
                continue;
            }
            state.flushing = true;
            drop(state);
            // Writers that are already sealing or committing (typically queued behind the
            // previous flush, which holds the store's log lock) finish in microseconds: let
            // them, so this one flush covers them too instead of each paying its own.
            let gather_started = std::time::Instant::now();
            while inner.writers_in_progress.load(Ordering::Acquire) > 0
                && gather_started.elapsed() < FLUSH_GATHER_MAX
            {
                std::thread::yield_now();
            }
            // Everything committed before the flush starts is covered by it.
            let target = inner.written_seq.load(Ordering::Acquire);
            let flushed = inner.db.persist(PersistMode::SyncAll);
            state = lock(&inner.durable)?;
            state.flushing = false;
            match flushed {
                Ok(()) => state.durable_seq = state.durable_seq.max(target),
                // Never retry a failed fsync: the kernel may have dropped the dirty pages and a
                // second fsync would report success for data that is gone.
                Err(_) => state.poisoned = true,
            }
            inner.durable_changed.notify_all();
        }
    }
}
