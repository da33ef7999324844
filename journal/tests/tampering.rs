//! Damage done to a real journal on disk is detected and named: flipped bits, dropped,
//! swapped, duplicated and spliced records, a truncated tail, a damaged head or header.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestEvent, event, journal_with, key_file};
use ferry_journal::{Error, Journal, Problem};

const RECORDS: u64 = 20;

fn corrupt_at(result: Result<impl std::fmt::Debug, Error>) -> (u64, Problem) {
    match result {
        Err(Error::Corrupt { seq, problem }) => (seq, problem),
        other => panic!("expected a corrupt record, got {other:?}"),
    }
}

fn first_replay_error(journal: &Journal<TestEvent>) -> Error {
    journal
        .replay(1)
        .find_map(Result::err)
        .expect("replay should fail")
}

// Goal: every single-bit flip in every byte of every stored record of a 20-record journal is
// detected, by verify and by replay, and blamed on exactly the record that was flipped.
// Method: flip one bit through the raw store, check, flip it back; 20 × ~100 × 8 trials.
#[test]
fn every_bit_flip_in_every_record_is_detected_and_located() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with(dir.path(), RECORDS);
    let tamper = journal.tamper();
    let mut trials = 0;
    for seq in 1..=RECORDS {
        let original = tamper.get(seq).unwrap();
        for bit in 0..original.len() * 8 {
            let mut damaged = original.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            tamper.put(seq, &damaged);
            let (found, problem) = corrupt_at(journal.verify());
            assert_eq!(found, seq, "bit {bit} of record {seq}: {problem}");
            assert!(
                matches!(first_replay_error(&journal), Error::Corrupt { seq: s, .. } if s == seq),
                "replay, bit {bit} of record {seq}"
            );
            trials += 1;
        }
        tamper.put(seq, &original);
    }
    assert!(trials > 20 * 60 * 8, "{trials} trials");
    assert_eq!(journal.verify().unwrap().records, RECORDS);
}

// Goal: a flip in the last record is caught when the journal is opened, before anything
// replays it.
#[test]
fn a_damaged_last_record_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = journal_with(dir.path(), RECORDS);
        let mut last = journal.tamper().get(RECORDS).unwrap();
        last[30] ^= 0x10;
        journal.tamper().put(RECORDS, &last);
        journal.tamper().persist();
    }
    let (seq, problem) = corrupt_at(Journal::<TestEvent>::open(dir.path(), &key_file()));
    assert_eq!((seq, problem), (RECORDS, Problem::Unauthentic));
}

// Goal: every single-bit flip in the stored head is named as a damaged head by verify, and a
// damaged head is refused when the journal is opened.
#[test]
fn every_bit_flip_in_the_head_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = journal_with(dir.path(), 3);
        let tamper = journal.tamper();
        let original = tamper.get_meta(b"head").unwrap();
        for bit in 0..original.len() * 8 {
            let mut damaged = original.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            tamper.put_meta(b"head", &damaged);
            let verified = journal.verify();
            assert!(
                matches!(verified, Err(Error::HeadCorrupt { .. })),
                "bit {bit}: {verified:?}"
            );
        }
        let mut damaged = original.clone();
        damaged[40] ^= 0x04;
        tamper.put_meta(b"head", &damaged);
        tamper.persist();
    }
    let opened = Journal::<TestEvent>::open(dir.path(), &key_file());
    assert!(
        matches!(opened, Err(Error::HeadCorrupt { .. })),
        "{opened:?}"
    );
}

// Goal: a damaged header is told apart from a wrong key: checksum failure names the header.
#[test]
fn a_damaged_header_is_named_not_mistaken_for_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = journal_with(dir.path(), 2);
        let mut header = journal.tamper().get_meta(b"header").unwrap();
        let middle = header.len() / 2;
        header[middle] ^= 0x01;
        journal.tamper().put_meta(b"header", &header);
        journal.tamper().persist();
    }
    let opened = Journal::<TestEvent>::open(dir.path(), &key_file());
    assert!(
        matches!(opened, Err(Error::HeaderCorrupt { .. })),
        "{opened:?}"
    );
}

// Goal: a record dropped from the middle is named as missing at its sequence number.
#[test]
fn a_dropped_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with(dir.path(), RECORDS);
    journal.tamper().remove(7);
    assert_eq!(corrupt_at(journal.verify()), (7, Problem::Missing));
    assert!(matches!(
        first_replay_error(&journal),
        Error::Corrupt { seq: 7, .. }
    ));
}

// Goal: swapped records are named at the first position, with where the record belongs.
#[test]
fn swapped_records_are_named() {
    for (a, b) in [(3, 9), (4, 5), (19, 20)] {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal_with(dir.path(), RECORDS);
        let tamper = journal.tamper();
        let (record_a, record_b) = (tamper.get(a).unwrap(), tamper.get(b).unwrap());
        tamper.put(a, &record_b);
        tamper.put(b, &record_a);
        assert_eq!(
            corrupt_at(journal.verify()),
            (a, Problem::Misplaced { sealed_for: b }),
            "swap {a} and {b}"
        );
    }
}

// Goal: a record copied over its neighbour is named as a duplicate of the original.
#[test]
fn a_duplicated_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with(dir.path(), RECORDS);
    let fifth = journal.tamper().get(5).unwrap();
    journal.tamper().put(6, &fifth);
    assert_eq!(
        corrupt_at(journal.verify()),
        (6, Problem::Duplicate { of: 5 })
    );
}

// Goal: a copy of the last record appended after it is refused at open: the head does not
// vouch for it.
#[test]
fn a_record_appended_behind_the_heads_back_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = journal_with(dir.path(), RECORDS);
        let last = journal.tamper().get(RECORDS).unwrap();
        journal.tamper().put(RECORDS + 1, &last);
        journal.tamper().persist();
    }
    let opened = Journal::<TestEvent>::open(dir.path(), &key_file());
    assert_eq!(
        corrupt_at(opened),
        (RECORDS + 1, Problem::BeyondHead { head: RECORDS })
    );
}

// Goal: a large batch interrupted between its slices (records committed, the head that
// vouches for them not) was never acknowledged and is discarded whole at open; the journal
// then appends and verifies as if the batch had never started.
// Method: write 20 records, keep the head, append a 200-record batch (sealed in slices),
// put the old head back, and reopen.
#[test]
fn an_unacknowledged_batch_beyond_the_head_is_discarded_whole() {
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = journal_with(dir.path(), RECORDS);
        let head = journal.tamper().get_meta(b"head").unwrap();
        // A process killed between slices never acknowledged the batch, so its tail witness
        // (written after acknowledgement) still names the old head.
        let witness = std::fs::read(dir.path().join("tail")).unwrap();
        let batch: Vec<_> = (0..200).map(|i| event(RECORDS + 1 + i)).collect();
        assert_eq!(
            journal.append_batch(&batch).unwrap(),
            RECORDS + 1..=RECORDS + 200
        );
        journal.tamper().put_meta(b"head", &head);
        journal.tamper().persist();
        std::fs::write(dir.path().join("tail"), witness).unwrap();
    }
    let journal = Journal::<TestEvent>::open(dir.path(), &key_file()).unwrap();
    assert_eq!(journal.last_seq(), RECORDS);
    assert_eq!(journal.discarded_at_open(), 200);
    assert!(journal.tamper().get(RECORDS + 1).is_none());
    assert_eq!(journal.verify().unwrap().records, RECORDS);
    assert_eq!(journal.append(&event(99)).unwrap(), RECORDS + 1);
    drop(journal);
    let journal = Journal::<TestEvent>::open(dir.path(), &key_file()).unwrap();
    let replayed: Vec<_> = journal.replay(1).map(|e| e.unwrap().event).collect();
    let mut expected: Vec<_> = (0..RECORDS).map(event).collect();
    expected.push(event(99));
    assert_eq!(replayed, expected);
}

// Goal: records after the head that do not chain from it are reported, never discarded:
// only this journal's own unacknowledged batch may go.
#[test]
fn a_foreign_record_beyond_the_head_is_not_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    {
        let journal = journal_with(dir.path(), RECORDS);
        let other = journal_with(other_dir.path(), RECORDS + 1);
        journal
            .tamper()
            .put(RECORDS + 1, &other.tamper().get(RECORDS + 1).unwrap());
        journal.tamper().persist();
    }
    let opened = Journal::<TestEvent>::open(dir.path(), &key_file());
    assert_eq!(
        corrupt_at(opened),
        (RECORDS + 1, Problem::BeyondHead { head: RECORDS })
    );
    let journal_dir_still_has_it = {
        let reopened = Journal::<TestEvent>::open(dir.path(), &key_file());
        matches!(reopened, Err(Error::Corrupt { .. }))
    };
    assert!(journal_dir_still_has_it);
}

// Goal: a record spliced in from another journal (same key file, same position, same event) does
// not authenticate and is named.
#[test]
fn a_record_spliced_from_another_journal_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let journal = journal_with(dir.path(), RECORDS);
    let other = journal_with(other_dir.path(), RECORDS);
    journal.tamper().put(8, &other.tamper().get(8).unwrap());
    assert_eq!(corrupt_at(journal.verify()), (8, Problem::Unauthentic));
}

// Goal: records missing at the end are reported as a truncated tail with their count, distinct
// from corruption in the middle, both at open and by an open journal's verify.
#[test]
fn a_truncated_tail_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = journal_with(dir.path(), RECORDS);
        for seq in 18..=RECORDS {
            journal.tamper().remove(seq);
        }
        let verified = journal.verify();
        assert!(
            matches!(
                verified,
                Err(Error::Truncated {
                    missing: 3,
                    last_present: 17,
                    head: 20
                })
            ),
            "{verified:?}"
        );
        journal.tamper().persist();
    }
    let opened = Journal::<TestEvent>::open(dir.path(), &key_file());
    let error = opened.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Truncated {
                missing: 3,
                last_present: 17,
                head: 20
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("3 records missing at the end"),
        "{error}"
    );
}

// Goal: a journal whose every record is gone is still reported as truncated, not as empty.
#[test]
fn a_journal_emptied_of_records_is_truncated_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = journal_with(dir.path(), 4);
        for seq in 1..=4 {
            journal.tamper().remove(seq);
        }
        journal.tamper().persist();
    }
    let opened = Journal::<TestEvent>::open(dir.path(), &key_file());
    assert!(
        matches!(
            opened,
            Err(Error::Truncated {
                missing: 4,
                last_present: 0,
                head: 4
            })
        ),
        "{opened:?}"
    );
}
