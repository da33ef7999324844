//! The journal: create, open, append with group commit, replay, verify, rekey.

use std::fs::File;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use serde::de::DeserializeOwned;

use crate::error::{Error, Problem, Result};
use crate::header::Header;
use crate::key::{self, ContentKey, DataKey, KdfParams, KeySource};
use crate::record::{GENESIS, Head, OpenCache, RECORD_OVERHEAD, RecordCodec, chain_hash};
use crate::witness::{self, Witness};

mod append;
mod checkpoint;
pub use checkpoint::CheckpointReader;
mod create;
mod recovery;
mod replay;
#[cfg(feature = "tamper")]
mod tamper;

use append::CommitThread;
use create::exists;
use recovery::{Background, check_tail, decode_key, open_store, refine};
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
/// A keyspace's memtable before it is written out as a table (64 MiB by default, which an
/// initial copy of 100,000 messages fills halfway: a third of the run's memory). 1 MiB, below
/// fjall's recommended 8–64 MiB: the records are on disk in the write-ahead file either way,
/// so this only decides how much of them is also held in memory (one active and one being
/// written out, per keyspace), and a journal is appended in order, which small tables suit
/// (4 MiB against 1 MiB: 2–4 MB more at the peak of a 100,000-message copy, no faster). (fjall
/// keeps a keyspace's options from its creation: journals made before keep theirs.)
const MEMTABLE_BYTES: u64 = 1024 * 1024;

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
    /// Off for a journal opened to be checked, which refuses to be written.
    background: Background,
}

impl Inner {
    /// The directory errors name: for a journal opened read-only, the one it was copied from.
    fn shown(&self) -> &Path {
        self.origin.as_deref().unwrap_or(&self.path)
    }

    /// Refuses a write to a journal opened to be checked.
    fn writable(&self) -> Result<()> {
        match self.background {
            Background::On => Ok(()),
            Background::Off => Err(Error::CheckOnly {
                path: self.shown().to_path_buf(),
            }),
        }
    }

    /// See [`Journal::flush_to_tables`].
    fn flush_to_tables(&self) -> Result<()> {
        self.writable()?;
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

pub(super) struct Durability {
    /// Every record up to this one is on disk.
    pub(super) durable_seq: u64,
    /// A thread is flushing right now; others wait for it instead of flushing too.
    pub(super) flushing: bool,
    /// A flush failed: nothing after `durable_seq` can be trusted to be on disk.
    pub(super) poisoned: bool,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    // A panic while holding one of these locks leaves the chain state unknown: refuse to go on.
    mutex.lock().map_err(|_| Error::Poisoned)
}

/// The parts of the store that commits and the checks at open work on.
pub(super) struct Store {
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

impl<E> Journal<E> {
    /// Opens an existing journal. Checks the header, the key, and that the stored tail is the
    /// one the head vouches for; a damaged tail is refused here. Costs two record reads (plus
    /// Argon2id for a passphrase): the middle of the journal is checked as it is replayed, or
    /// all at once by [`Journal::verify`].
    pub fn open(path: &Path, key: &KeySource) -> Result<Journal<E>> {
        Self::open_with(path, key, Background::On)
    }

    /// Opens an existing journal to check it before anything is written to it: as
    /// [`Journal::open`], but the store does no work in the background (it neither flushes nor
    /// compacts), so a journal found damaged by [`Journal::verify`] is left exactly as it was.
    /// Such a journal is read, not written: appending to it is refused. [`Journal::writable`]
    /// opens it for appending once it has passed.
    pub fn open_to_check(path: &Path, key: &KeySource) -> Result<Journal<E>> {
        Self::open_with(path, key, Background::Off)
    }

    /// The journal opened by [`Journal::open_to_check`], opened again for appending, with the
    /// keys already unwrapped (no second Argon2id). The store's head must be the one the check
    /// read. Fails when clones of the journal are still held (the store cannot be closed).
    pub fn writable(self) -> Result<Journal<E>> {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => {
                return Err(Error::Storage {
                    path: shared.shown().to_path_buf(),
                    message: "the journal opened for checking is still in use; it cannot be \
                              opened for appending"
                        .into(),
                });
            }
        };
        if inner.background == Background::On {
            return Ok(Journal {
                inner: Arc::new(inner),
                _event: PhantomData,
            });
        }
        let path = inner.path.clone();
        let header = lock(&inner.header)?.clone();
        let data_key = inner.data_key.duplicate();
        let codec = RecordCodec::new(&data_key.record_key(), header.journal_id);
        let head = *lock(&inner.tail)?;
        let discarded = inner.discarded_at_open.load(Ordering::Relaxed);
        // The store is closed before it is opened again (it holds the directory's lock).
        drop(inner);
        let (db, records, meta) = open_store(&path, Background::On)?;
        let stored = meta
            .get(HEAD_KEY)
            .map_err(|e| Error::storage(&path, e))?
            .and_then(|stored| codec.open_head(&stored));
        if stored != Some(head) {
            return Err(Error::HeadCorrupt {
                reason: "the head changed between the check and the opening for appending \
                         (did another process write to the journal?)"
                    .into(),
            });
        }
        let journal = Journal::assemble(&path, db, records, meta, header, data_key, codec, head);
        journal
            .inner
            .discarded_at_open
            .store(discarded, Ordering::Relaxed);
        Ok(journal)
    }

    fn open_with(path: &Path, key: &KeySource, background: Background) -> Result<Journal<E>> {
        if !exists(path) {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
            });
        }
        let (db, records, meta) = open_store(path, background)?;
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
        let mut journal = Journal::assemble(path, db, records, meta, header, data_key, codec, head);
        if let Some(inner) = Arc::get_mut(&mut journal.inner) {
            inner.background = background;
        }
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
                background: Background::On,
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

    /// The keyed hasher for content hashes in this journal's events.
    pub fn content_key(&self) -> &ContentKey {
        &self.inner.content_key
    }

    /// Protects the data key with a new passphrase or key file. Records are not rewritten: only
    /// the header changes, atomically and durably.
    pub fn change_key(&self, new_key: &KeySource, options: CreateOptions) -> Result<()> {
        let inner = &*self.inner;
        inner.writable()?;
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
