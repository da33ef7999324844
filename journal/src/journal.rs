//! The journal: create, open, append with group commit, replay, verify, rekey.

use std::fs::File;
use std::marker::PhantomData;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Problem, Result};
use crate::header::Header;
use crate::key::{self, ContentKey, DataKey, KdfParams, KeySource};
use crate::record::{
    BatchKey, GENESIS, Head, OpenCache, PLAIN_OFFSET, RECORD_OVERHEAD, RecordCodec, chain_hash,
};
use crate::witness::{self, Witness};

mod create;
mod recovery;
mod replay;
#[cfg(feature = "tamper")]
mod tamper;

use create::exists;
use recovery::{check_tail, decode_key, open_store, refine};
pub use replay::Replay;
#[cfg(feature = "tamper")]
pub use tamper::Tamper;

const RECORDS: &str = "records";
const META: &str = "meta";
const HEADER_KEY: &[u8] = b"header";
const HEAD_KEY: &[u8] = b"head";
/// The checkpoint's file in the journal directory, and the name it is written under first.
const CHECKPOINT_FILE: &str = "checkpoint";
const CHECKPOINT_STAGING_FILE: &str = "checkpoint.new";
/// Between a journal directory's name and the random suffix of the directory it is made in.
const STAGING_MARK: &str = ".creating-";
/// How long a flushing appender waits for appenders already in the middle of committing, so
/// that one flush covers them all. A commit takes microseconds; this only bounds a stall.
const FLUSH_GATHER_MAX: std::time::Duration = std::time::Duration::from_millis(2);
/// How long moving memtables into tables may take before it is given up (see
/// `Inner::flush_to_tables`: only an optimisation of the next open).
const FLUSH_TO_TABLES_MAX: std::time::Duration = std::time::Duration::from_secs(30);
/// Initial capacity of a record buffer: most events encode to under 100 bytes.
const ENCODED_GUESS_BYTES: usize = RECORD_OVERHEAD + 128;
/// Batches longer than this are sealed and committed in slices of this many records, on two
/// threads (see `seal_and_commit_pipelined`). Shorter ones are not worth a thread.
const PIPELINE_SLICE_RECORDS: usize = 64;
/// Sealed slices waiting for the committing thread.
const PIPELINE_SLICES_IN_FLIGHT: usize = 2;
/// The store keeps write-ahead files until every keyspace has flushed what they hold. The
/// head, rewritten with every batch, would pin them up to fjall's default of 512 MiB; 64 MiB
/// (fjall's minimum) bounds that.
const WRITE_AHEAD_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// fjall's block cache (32 MiB by default). A journal is appended and replayed front to back,
/// so cached blocks are rarely read twice; a small cache keeps ferry's memory bounded.
const BLOCK_CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// Options for a new journal.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CreateOptions {
    /// Argon2id costs, used when the key source is a passphrase.
    pub kdf: KdfParams,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            kdf: KdfParams::DEFAULT,
        }
    }
}

impl CreateOptions {
    /// Options with the given Argon2id costs.
    pub fn with_kdf(kdf: KdfParams) -> CreateOptions {
        CreateOptions { kdf }
    }
}

/// One replayed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<E> {
    /// Its sequence number (the first record is 1).
    pub seq: u64,
    /// The event.
    pub event: E,
}

/// What a full check of the journal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked (all of them).
    pub records: u64,
    /// Stored bytes of those records.
    pub stored_bytes: u64,
}

/// An encrypted, hash-chained, append-only journal of events of type `E`.
///
/// Cloning is cheap and shares the journal: clones may append from several threads at once, and
/// their appends share flushes to disk (group commit).
pub struct Journal<E> {
    inner: Arc<Inner>,
    _event: PhantomData<fn(E) -> E>,
}

impl<E> Clone for Journal<E> {
    fn clone(&self) -> Self {
        Journal {
            inner: Arc::clone(&self.inner),
            _event: PhantomData,
        }
    }
}

impl<E> std::fmt::Debug for Journal<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    db: Database,
    records: Keyspace,
    meta: Keyspace,
    header: Mutex<Header>,
    data_key: DataKey,
    codec: RecordCodec,
    content_key: ContentKey,
    /// The tail of the chain. Held while sealing and committing a batch, so sequence numbers
    /// and chain hashes are handed out in the order records reach the store.
    tail: Mutex<Head>,
    /// The highest sequence number committed to the store (not necessarily durable yet).
    written_seq: AtomicU64,
    /// Appenders between entering `write` and having committed their batch.
    writers_in_progress: AtomicUsize,
    durable: Mutex<Durability>,
    durable_changed: Condvar,
    /// The thread committing slices of large batches, started by the first one. Locked only
    /// while holding `tail`.
    committer: Mutex<Option<CommitThread>>,
    /// Records of an unacknowledged batch removed when the journal was opened.
    discarded_at_open: AtomicU64,
    /// The head, kept outside the store too (see `witness`).
    witness: Witness,
    /// For a journal opened read-only: the private copy it was opened from, removed when the
    /// journal is dropped (after the store: fields drop in order).
    copy: Option<tempfile::TempDir>,
    /// For a journal opened read-only: the directory it was copied from, which `path` names.
    origin: Option<PathBuf>,
}

impl Inner {
    /// The directory errors name: for a journal opened read-only, the one it was copied from.
    fn shown(&self) -> &Path {
        self.origin.as_deref().unwrap_or(&self.path)
    }

    /// See [`Journal::flush_to_tables`].
    fn flush_to_tables(&self) -> Result<()> {
        // fjall's own wait (`rotate_memtable_and_wait`) loops forever when its flush worker
        // died (a full disk): wait here, boundedly, and notice a poisoned store.
        let started = std::time::Instant::now();
        for keyspace in [&self.records, &self.meta] {
            keyspace
                .rotate_memtable()
                .map_err(|e| Error::storage(self.shown(), e))?;
            while keyspace.sealed_memtable_count() > 0 {
                self.db
                    .persist(PersistMode::Buffer)
                    .map_err(|e| Error::storage(self.shown(), e))?;
                if started.elapsed() > FLUSH_TO_TABLES_MAX {
                    return Err(Error::Storage {
                        path: self.shown().to_path_buf(),
                        message: "moving records into the store's tables did not finish (is its \
                                  disk full?); the records themselves are durable"
                            .into(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Let the commit thread finish and release its handles on the store before the store
        // closes, so the journal can be opened again as soon as it is dropped.
        if let Ok(committer) = self.committer.get_mut()
            && let Some(running) = committer.take()
        {
            drop(running.slices);
            let _ = running.thread.join();
        }
    }
}

/// The parts of the store that commits and the checks at open work on.
struct Store {
    path: PathBuf,
    db: Database,
    records: Keyspace,
    meta: Keyspace,
}

impl Store {
    fn of(inner: &Inner) -> Store {
        Store {
            path: inner.shown().to_path_buf(),
            db: inner.db.clone(),
            records: inner.records.clone(),
            meta: inner.meta.clone(),
        }
    }
}

/// Commits sealed records, and the sealed head when given, in one atomic store batch.
fn commit_to_store(
    store: &Store,
    records: Vec<(u64, Vec<u8>)>,
    head: Option<Vec<u8>>,
) -> Result<()> {
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
struct Slice {
    records: Vec<(u64, Vec<u8>)>,
    /// The sealed head, on a batch's last slice.
    head: Option<Vec<u8>>,
    /// Where the batch's outcome goes, on its last slice.
    reply: Option<mpsc::SyncSender<Result<()>>>,
}

/// A long-lived thread that commits the slices of large batches in order. Long-lived, not
/// started per batch: a new thread starts on its parent's core and would rarely run beside it
/// before the batch is over.
struct CommitThread {
    slices: mpsc::SyncSender<Slice>,
    thread: std::thread::JoinHandle<()>,
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

struct Durability {
    /// Every record up to this one is on disk.
    durable_seq: u64,
    /// A thread is flushing right now; others wait for it instead of flushing too.
    flushing: bool,
    /// A flush failed: nothing after `durable_seq` can be trusted to be on disk.
    poisoned: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    // A panic while holding one of these locks leaves the chain state unknown: refuse to go on.
    mutex.lock().map_err(|_| Error::Poisoned)
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
    /// Opens an existing journal. Checks the header, the key, and that the stored tail is the
    /// one the head vouches for; a damaged tail is refused here. Costs two record reads (plus
    /// Argon2id for a passphrase): the middle of the journal is checked as it is replayed, or
    /// all at once by [`Journal::verify`].
    pub fn open(path: &Path, key: &KeySource) -> Result<Journal<E>> {
        if !exists(path) {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
            });
        }
        let (db, records, meta) = open_store(path)?;
        let stored_header = meta
            .get(HEADER_KEY)
            .map_err(|e| Error::storage(path, e))?
            .ok_or_else(|| Error::NotAJournal {
                path: path.to_path_buf(),
            })?;
        let header = Header::decode(path, &stored_header)?;
        let wrap_key = key::wrap_key(key, &header.protection)?;
        let data_key = DataKey::unwrap(
            &wrap_key,
            &Header::wrap_aad(&header.journal_id),
            &header.wrapped_key,
        )?;
        let codec = RecordCodec::new(&data_key.record_key(), header.journal_id);
        let stored_head = meta
            .get(HEAD_KEY)
            .map_err(|e| Error::storage(path, e))?
            .ok_or_else(|| Error::HeadCorrupt {
                reason: "the head record is missing".into(),
            })?;
        let head = codec
            .open_head(&stored_head)
            .ok_or_else(|| Error::HeadCorrupt {
                reason: "the head record does not authenticate".into(),
            })?;
        let store = Store {
            path: path.to_path_buf(),
            db: db.clone(),
            records: records.clone(),
            meta: meta.clone(),
        };
        let discarded = check_tail(&store, &codec, &head)?;
        witness::check(path, &codec, &head)?;
        let journal = Journal::assemble(path, db, records, meta, header, data_key, codec, head);
        journal
            .inner
            .discarded_at_open
            .store(discarded, Ordering::Relaxed);
        Ok(journal)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        path: &Path,
        db: Database,
        records: Keyspace,
        meta: Keyspace,
        header: Header,
        data_key: DataKey,
        codec: RecordCodec,
        head: Head,
    ) -> Journal<E> {
        let content_key = data_key.content_key();
        Journal {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                db,
                records,
                meta,
                header: Mutex::new(header),
                data_key,
                codec,
                content_key,
                tail: Mutex::new(head),
                written_seq: AtomicU64::new(head.seq),
                writers_in_progress: AtomicUsize::new(0),
                durable: Mutex::new(Durability {
                    durable_seq: head.seq,
                    flushing: false,
                    poisoned: false,
                }),
                durable_changed: Condvar::new(),
                committer: Mutex::new(None),
                discarded_at_open: AtomicU64::new(0),
                witness: Witness::new(),
                copy: None,
                origin: None,
            }),
            _event: PhantomData,
        }
    }

    /// How many records opening the journal removed from after its head: the part of a large
    /// batch that a killed process had committed without the head that would vouch for it.
    /// That batch was never acknowledged, so nothing acknowledged is lost.
    pub fn discarded_at_open(&self) -> u64 {
        self.inner.discarded_at_open.load(Ordering::Relaxed)
    }

    /// Moves what the store holds only in memory and in its write-ahead file into its sorted
    /// tables, so that the next open has no write-ahead data to read back: opening a journal
    /// otherwise rebuilds the store's in-memory tables from that file, about 10 ms per MB. Costs
    /// about as much once, now; worth it at the end of a run that wrote many records.
    pub fn flush_to_tables(&self) -> Result<()> {
        self.inner.flush_to_tables()
    }

    /// The journal's directory (for a journal opened read-only, the one it was copied from).
    pub fn path(&self) -> &Path {
        self.inner.shown()
    }

    /// The sequence number of the last record (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.inner.written_seq.load(Ordering::Acquire)
    }

    /// Stores a checkpoint: opaque bytes that summarise every record up to the current tail
    /// (a fold the caller can rebuild by replaying), sealed and bound to that tail record, so it
    /// can only ever be opened over the records it summarises. Replaces the previous one;
    /// durable when this returns. Returns the sequence number it was taken at.
    ///
    /// A checkpoint is a cache, never a source of truth: the records stay, and a caller that
    /// cannot use a checkpoint replays from the start.
    pub fn put_checkpoint(&self, bytes: &[u8]) -> Result<u64> {
        let inner = &*self.inner;
        let tail = lock(&inner.tail)?;
        if lock(&inner.durable)?.poisoned {
            return Err(Error::Poisoned);
        }
        // The tail must be durable before a checkpoint that covers it.
        drop(tail);
        let seq = self.last_seq();
        self.wait_durable(seq)?;
        let tail = lock(&inner.tail)?;
        let sealed = inner.codec.seal_checkpoint(&tail, bytes)?;
        // A file of its own beside the store, replaced atomically: a checkpoint is rewritten
        // whole after every run, and keeping it out of the store keeps the store's log short.
        let path = inner.path.join(CHECKPOINT_FILE);
        let staging = inner.path.join(CHECKPOINT_STAGING_FILE);
        let io = |error| Error::Io {
            context: format!("writing the checkpoint {}", path.display()),
            source: error,
        };
        let mut file = std::fs::File::create(&staging).map_err(io)?;
        std::io::Write::write_all(&mut file, &sealed).map_err(io)?;
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

    /// The keyed hasher for content hashes in this journal's events.
    pub fn content_key(&self) -> &ContentKey {
        &self.inner.content_key
    }

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
        if lock(&inner.durable)?.poisoned {
            return Err(Error::Poisoned);
        }
        let key = inner.codec.batch_key()?;
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
    fn wait_durable(&self, seq: u64) -> Result<()> {
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

    /// Protects the data key with a new passphrase or key file. Records are not rewritten: only
    /// the header changes, atomically and durably.
    pub fn change_key(&self, new_key: &KeySource, options: CreateOptions) -> Result<()> {
        let inner = &*self.inner;
        let mut header = lock(&inner.header)?;
        let protection = key::new_protection(new_key, options.kdf)?;
        let wrap_key = key::wrap_key(new_key, &protection)?;
        let wrapped_key = inner
            .data_key
            .wrap(&wrap_key, &Header::wrap_aad(&header.journal_id))?;
        let updated = Header {
            journal_id: header.journal_id,
            protection,
            wrapped_key,
        };
        inner
            .meta
            .insert(HEADER_KEY, updated.encode()?)
            .map_err(|e| Error::storage(inner.shown(), e))?;
        inner
            .db
            .persist(PersistMode::SyncAll)
            .map_err(|e| Error::storage(inner.shown(), e))?;
        *header = updated;
        Ok(())
    }
}
