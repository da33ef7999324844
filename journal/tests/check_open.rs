//! A journal opened to be checked (`Journal::open_to_check`) is not written to, not even by the
//! store's own background work, and refuses appends; `Journal::writable` then appends.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{TestEvent, event, journal_with, key_file};
use ferry_journal::{Error, Journal};

/// Every file under `root` with a hash of its bytes.
fn snapshot(root: &Path) -> BTreeMap<String, blake3::Hash> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(name, blake3::hash(&std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// What differs, leaving out the removal of version files the store had already superseded
/// (its housekeeping at every open, which changes no live file).
fn changes(
    before: &BTreeMap<String, blake3::Hash>,
    after: &BTreeMap<String, blake3::Hash>,
) -> Vec<String> {
    let superseded = |path: &str| {
        let name = path.rsplit('/').next().unwrap_or_default();
        path.starts_with("keyspaces/")
            && name.len() > 1
            && name.starts_with('v')
            && name[1..].chars().all(|c| c.is_ascii_digit())
    };
    let mut out = Vec::new();
    for (path, hash) in before {
        match after.get(path) {
            None if superseded(path) => {}
            None => out.push(format!("{path}: removed")),
            Some(now) if now != hash => out.push(format!("{path}: changed")),
            Some(_) => {}
        }
    }
    out.extend(
        after
            .keys()
            .filter(|path| !before.contains_key(*path))
            .map(|path| format!("{path}: added")),
    );
    out
}

/// Tables left in the first level of the journal's keyspaces: what an open with background work
/// may move down at once (rewriting the store's version files). Read with no workers.
fn first_level_tables(dir: &Path) -> usize {
    let db = fjall::Database::builder(dir)
        .worker_threads_unchecked(0)
        .open()
        .unwrap();
    ["records", "meta"]
        .into_iter()
        .map(|name| {
            db.keyspace(name, fjall::KeyspaceCreateOptions::default)
                .unwrap()
                .l0_table_count()
        })
        .sum()
}

// Goal: a journal whose store has background work pending (a table the last run flushed and
// had no time to move) is left byte for byte as it was by an open to check, a full check, a
// replay and refused appends; opened for appending afterwards, it appends on the same chain.
// Method: runs that append and flush their tables are repeated on one journal until one ends
// with a table still in the store's first level (at most 40 runs; the move takes
// milliseconds and the run closes the store at once); the directory is compared before and
// after the check.
#[test]
fn a_journal_opened_to_check_is_left_as_it_was_and_then_opens_for_appending() {
    let dir = tempfile::tempdir().unwrap();
    let mut next = 0_u64;
    drop(journal_with(dir.path(), 0));
    let mut pending = 0;
    for _ in 0..40 {
        let journal: Journal<TestEvent> = Journal::open(dir.path(), &key_file()).unwrap();
        let events: Vec<_> = (next..next + 500).map(event).collect();
        journal.append_batch(&events).unwrap();
        next += 500;
        journal.flush_to_tables().unwrap();
        drop(journal);
        pending = first_level_tables(dir.path());
        if pending > 0 {
            break;
        }
    }
    assert!(pending > 0, "no run left a table in the first level");

    let before = snapshot(dir.path());
    {
        let journal: Journal<TestEvent> = Journal::open_to_check(dir.path(), &key_file()).unwrap();
        let report = journal.verify().unwrap();
        assert_eq!(report.records, next);
        assert_eq!(journal.replay(1).count() as u64, next);
        // Time for background work, if there were any.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(
            changes(&before, &snapshot(dir.path())),
            Vec::<String>::new()
        );
        assert!(matches!(
            journal.append(&event(next)),
            Err(Error::CheckOnly { .. })
        ));
        assert!(matches!(
            journal.put_checkpoint(vec![1, 2, 3]),
            Err(Error::CheckOnly { .. })
        ));
        assert!(matches!(
            journal.flush_to_tables(),
            Err(Error::CheckOnly { .. })
        ));

        let journal = journal.writable().unwrap();
        assert_eq!(journal.append(&event(next)).unwrap(), next + 1);
        next += 1;
    }
    let journal: Journal<TestEvent> = Journal::open(dir.path(), &key_file()).unwrap();
    assert_eq!(journal.verify().unwrap().records, next);
    let replayed: Vec<_> = journal
        .replay(1)
        .map(|entry| entry.unwrap().event)
        .collect();
    assert_eq!(replayed, (0..next).map(event).collect::<Vec<_>>());
}

// Goal: a journal opened to check cannot be opened for appending while a clone of it is held
// (its store would stay open beside the new one); the clone still reads.
#[test]
fn a_journal_still_shared_is_not_opened_for_appending() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with(dir.path(), 3);
    drop(journal);
    let journal: Journal<TestEvent> = Journal::open_to_check(dir.path(), &key_file()).unwrap();
    let clone = journal.clone();
    assert!(matches!(journal.writable(), Err(Error::Storage { .. })));
    assert_eq!(clone.verify().unwrap().records, 3);
}
