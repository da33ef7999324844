//! Opening the store and checking its tail: what a killed appender left beyond the head is
//! removed (it was never acknowledged), anything else is named.

use super::*;

/// Whether the store may work in the background (flush memtables, compact tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Background {
    /// For appending.
    On,
    /// For checking and reading: without its worker threads the store never flushes or compacts,
    /// so nothing in the directory changes (an open otherwise lets it move a table left in its
    /// first level by the last run into a lower one, rewriting its version files).
    Off,
}

pub(super) fn open_store(
    path: &Path,
    background: Background,
) -> Result<(Database, Keyspace, Keyspace)> {
    // The journal flushes by itself at the durability point (`append_batch`), so the store
    // must not flush on every batch commit.
    let builder = Database::builder(path)
        .cache_size(BLOCK_CACHE_BYTES)
        .manual_journal_persist(true)
        .max_journaling_size(WRITE_AHEAD_BYTES_MAX);
    let builder = match background {
        Background::On => builder,
        // fjall's own way to open a store with no workers (what its tests use).
        Background::Off => builder.worker_threads_unchecked(0),
    };
    let db = builder.open().map_err(|e| Error::storage(path, e))?;
    let records = db
        .keyspace(RECORDS, || {
            KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
        })
        .map_err(|e| Error::storage(path, e))?;
    let meta = db
        .keyspace(META, || {
            KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
        })
        .map_err(|e| Error::storage(path, e))?;
    Ok((db, records, meta))
}

pub(super) fn decode_key(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

/// Checks that the stored tail is exactly what the head vouches for.
pub(super) fn check_tail(store: &Store, codec: &RecordCodec, head: &Head) -> Result<u64> {
    let Store { path, records, .. } = store;
    let mut discarded = 0;
    let last = match records.last_key_value() {
        None => None,
        Some(guard) => {
            let (key, value) = guard.into_inner().map_err(|e| Error::storage(path, e))?;
            let seq = decode_key(&key).ok_or(Error::Corrupt {
                seq: head.seq,
                problem: Problem::BadKey,
            })?;
            Some((seq, value))
        }
    };
    let last_seq = last.as_ref().map_or(0, |(seq, _)| *seq);
    if last_seq < head.seq {
        return Err(Error::Truncated {
            missing: head.seq - last_seq,
            last_present: last_seq,
            head: head.seq,
        });
    }
    let last = if last_seq > head.seq {
        discarded = discard_unacknowledged(store, codec, head)?;
        if head.seq == 0 {
            None
        } else {
            let stored = records
                .get(head.seq.to_be_bytes())
                .map_err(|e| Error::storage(path, e))?
                .ok_or(Error::Corrupt {
                    seq: head.seq,
                    problem: Problem::Missing,
                })?;
            Some((head.seq, stored))
        }
    } else {
        last
    };
    let Some((seq, stored)) = last else {
        return Ok(discarded);
    };
    let prev = if seq == 1 {
        GENESIS
    } else {
        match records
            .get((seq - 1).to_be_bytes())
            .map_err(|e| Error::storage(path, e))?
        {
            Some(before) => chain_hash(&before),
            None => {
                return Err(Error::Corrupt {
                    seq: seq - 1,
                    problem: Problem::Missing,
                });
            }
        }
    };
    if let Err(problem) = codec.open(seq, &prev, &stored) {
        return Err(Error::Corrupt {
            seq,
            problem: refine(records, problem, &stored),
        });
    }
    if chain_hash(&stored) != head.hash {
        return Err(Error::Corrupt {
            seq,
            problem: Problem::HeadMismatch,
        });
    }
    Ok(discarded)
}

/// Removes the records stored after the head, which a process killed in the middle of a large
/// batch leaves behind (see `seal_and_commit_pipelined`): that batch was never acknowledged,
/// and it lands whole or not at all. Each of those records must still authenticate at its
/// position and chain to the one before, starting from the head: anything else stored after
/// the head was not written by this journal's appender and is reported, not removed.
pub(super) fn discard_unacknowledged(
    store: &Store,
    codec: &RecordCodec,
    head: &Head,
) -> Result<u64> {
    let Store {
        path, db, records, ..
    } = store;
    let beyond = Error::Corrupt {
        seq: head.seq + 1,
        problem: Problem::BeyondHead { head: head.seq },
    };
    let mut prev = head.hash;
    let mut expected = head.seq + 1;
    let mut batch = db.batch();
    for guard in records.range(expected.to_be_bytes()..) {
        let (key, stored) = guard.into_inner().map_err(|e| Error::storage(path, e))?;
        let problem = |problem| Error::Corrupt {
            seq: expected,
            problem,
        };
        if decode_key(&key) != Some(expected) {
            return Err(problem(Problem::BeyondHead { head: head.seq }));
        }
        if codec.open(expected, &prev, &stored).is_err() {
            return Err(problem(Problem::BeyondHead { head: head.seq }));
        }
        prev = chain_hash(&stored);
        batch.remove(records, key);
        expected += 1;
    }
    if expected == head.seq + 1 {
        return Err(beyond);
    }
    batch.commit().map_err(|e| Error::storage(path, e))?;
    db.persist(PersistMode::SyncAll)
        .map_err(|e| Error::storage(path, e))?;
    Ok(expected - head.seq - 1)
}

/// Tells a duplicated record from a moved one by looking where it was sealed for.
pub(super) fn refine(records: &Keyspace, problem: Problem, stored: &[u8]) -> Problem {
    match problem {
        Problem::Misplaced { sealed_for } => match records.get(sealed_for.to_be_bytes()) {
            Ok(Some(original)) if *original == *stored => Problem::Duplicate { of: sealed_for },
            _ => problem,
        },
        other => other,
    }
}
