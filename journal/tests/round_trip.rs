//! Round trips through a real journal on disk: many events, reopen, partial replay, concurrent
//! appenders sharing flushes.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{TestEvent, event, journal_with, key_file, replay_all};
use ferry_journal::{Error, Journal};

// Goal: 100,000 events written in batches of mixed size come back identical, in order, with
// consecutive sequence numbers, after the journal is closed and reopened.
#[test]
fn hundred_thousand_events_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let total = 100_000_u64;
    {
        let journal = journal_with(dir.path(), 0);
        let mut next = 0_u64;
        let mut batch_len = 1_u64;
        while next < total {
            let end = (next + batch_len).min(total);
            let events: Vec<_> = (next..end).map(event).collect();
            let range = journal.append_batch(&events).unwrap();
            assert_eq!(*range.start(), next + 1);
            assert_eq!(*range.end(), end);
            next = end;
            batch_len = batch_len % 700 + 97;
        }
        assert_eq!(journal.last_seq(), total);
    }
    let journal: Journal<TestEvent> = Journal::open(dir.path(), &key_file()).unwrap();
    assert_eq!(journal.last_seq(), total);
    let mut expected_seq = 1;
    for entry in journal.replay(1) {
        let entry = entry.unwrap();
        assert_eq!(entry.seq, expected_seq);
        assert_eq!(entry.event, event(entry.seq - 1));
        expected_seq += 1;
    }
    assert_eq!(expected_seq, total + 1);
    let report = journal.verify().unwrap();
    assert_eq!(report.records, total);
}

// Goal: replay can start anywhere and still checks the chain from there.
#[test]
fn replay_from_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with(dir.path(), 50);
    let tail: Vec<_> = journal.replay(41).map(|e| e.unwrap()).collect();
    assert_eq!(tail.len(), 10);
    assert_eq!(tail[0].seq, 41);
    assert_eq!(tail[0].event, event(40));
    assert_eq!(journal.replay(51).count(), 0);
    assert_eq!(journal.replay(0).count(), 50);
}

// Goal: appending after a reopen continues the same chain.
#[test]
fn append_after_reopen_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    drop(journal_with(dir.path(), 10));
    let journal: Journal<TestEvent> = Journal::open(dir.path(), &key_file()).unwrap();
    assert_eq!(journal.append(&event(10)).unwrap(), 11);
    drop(journal);
    let journal: Journal<TestEvent> = Journal::open(dir.path(), &key_file()).unwrap();
    assert_eq!(replay_all(&journal), (0..11).map(event).collect::<Vec<_>>());
    assert_eq!(journal.verify().unwrap().records, 11);
}

// Goal: eight threads appending at once get distinct, gap-free sequence numbers, and every
// acknowledged event is in the journal under the number it was given.
#[test]
fn concurrent_appenders_share_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with(dir.path(), 0);
    let handles: Vec<_> = (0..8_u64)
        .map(|thread| {
            let journal = journal.clone();
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                for round in 0..50_u64 {
                    let events: Vec<_> = (0..=(round % 5))
                        .map(|k| TestEvent::RunEnded {
                            run: thread,
                            copied: round * 10 + k,
                        })
                        .collect();
                    let range = journal.append_batch(&events).unwrap();
                    acknowledged.extend(range.zip(events));
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for handle in handles {
        acknowledged.extend(handle.join().unwrap());
    }
    let seqs: BTreeSet<u64> = acknowledged.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs.len(), acknowledged.len());
    assert_eq!(seqs.first(), Some(&1));
    assert_eq!(seqs.last(), Some(&(acknowledged.len() as u64)));
    let stored = replay_all(&journal);
    for (seq, event) in acknowledged {
        assert_eq!(stored[(seq - 1) as usize], event);
    }
}

// Goal: a second opener of the same journal is refused with a clear error, not let in.
#[test]
fn a_journal_is_opened_by_one_owner_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let _journal = journal_with(dir.path(), 1);
    let second = Journal::<TestEvent>::open(dir.path(), &key_file());
    assert!(matches!(second, Err(Error::Locked { .. })), "{second:?}");
}

// Goal: creating over an existing journal is refused; opening nothing says so.
#[test]
fn create_and_open_refuse_the_wrong_directory() {
    let dir = tempfile::tempdir().unwrap();
    drop(journal_with(dir.path(), 1));
    let again = Journal::<TestEvent>::create(dir.path(), &key_file(), common::cheap());
    assert!(
        matches!(again, Err(Error::AlreadyExists { .. })),
        "{again:?}"
    );
    let missing = Journal::<TestEvent>::open(&dir.path().join("nothing"), &key_file());
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
}

// Goal: an event type that does not match what was written is a decode error naming the
// record, not a panic or garbage.
#[test]
fn a_foreign_event_type_is_a_decode_error() {
    let dir = tempfile::tempdir().unwrap();
    drop(journal_with(dir.path(), 3));
    let journal: Journal<u8> = Journal::open(dir.path(), &key_file()).unwrap();
    let first = journal.replay(1).next().unwrap();
    assert!(
        matches!(first, Err(Error::Decode { seq: 1, .. })),
        "{first:?}"
    );
    assert_eq!(journal.verify().unwrap().records, 3);
}
