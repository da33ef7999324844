//! Keys: a wrong passphrase is its own error, distinct from corruption; a key file opens fast;
//! changing the passphrase rewraps the data key without touching a record.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestEvent, cheap, event, journal_with, key_file, passphrase, replay_all};
use ferry_journal::{Error, Journal, KeyFileSecret, KeySource};

fn with_passphrase(dir: &std::path::Path, text: &str, count: u64) {
    let journal: Journal<TestEvent> = Journal::create(dir, &passphrase(text), cheap()).unwrap();
    let events: Vec<_> = (0..count).map(event).collect();
    journal.append_batch(&events).unwrap();
}

// Goal: the wrong passphrase is reported as such, and the journal stays intact for the right one.
#[test]
fn wrong_passphrase_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    with_passphrase(dir.path(), "right passphrase", 5);
    let wrong = Journal::<TestEvent>::open(dir.path(), &passphrase("wrong passphrase"));
    assert!(matches!(wrong, Err(Error::WrongKey)), "{wrong:?}");
    let message = wrong.unwrap_err().to_string();
    assert!(message.contains("wrong passphrase"), "{message}");
    assert!(message.contains("intact"), "{message}");
    let right = Journal::<TestEvent>::open(dir.path(), &passphrase("right passphrase")).unwrap();
    assert_eq!(right.verify().unwrap().records, 5);
}

// Goal: another key file does not open the journal, and says "wrong key", not "corrupt".
#[test]
fn wrong_key_file_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    drop(journal_with(dir.path(), 2));
    let other = KeySource::KeyFile(KeyFileSecret::from_bytes(&[0x11; 32]).unwrap());
    let opened = Journal::<TestEvent>::open(dir.path(), &other);
    assert!(matches!(opened, Err(Error::WrongKey)), "{opened:?}");
}

// Goal: giving a key file to a passphrase journal (and the reverse) says which kind it needs.
#[test]
fn the_wrong_kind_of_key_says_which_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    with_passphrase(dir.path(), "pass", 1);
    let opened = Journal::<TestEvent>::open(dir.path(), &key_file());
    match opened {
        Err(Error::KeyKindMismatch { expected }) => assert!(expected.contains("passphrase")),
        other => panic!("{other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    drop(journal_with(dir.path(), 1));
    let opened = Journal::<TestEvent>::open(dir.path(), &passphrase("pass"));
    match opened {
        Err(Error::KeyKindMismatch { expected }) => assert!(expected.contains("key file")),
        other => panic!("{other:?}"),
    }
}

// Goal: changing the passphrase rewrites the header only: every stored record keeps its exact
// bytes, the old passphrase stops working, the new one replays everything.
#[test]
fn changing_the_passphrase_rewraps_without_rewriting_records() {
    let dir = tempfile::tempdir().unwrap();
    with_passphrase(dir.path(), "old passphrase", 30);
    let before: Vec<Vec<u8>> = {
        let journal =
            Journal::<TestEvent>::open(dir.path(), &passphrase("old passphrase")).unwrap();
        let stored = (1..=30)
            .map(|seq| journal.tamper().get(seq).unwrap())
            .collect();
        journal
            .change_key(&passphrase("new passphrase"), cheap())
            .unwrap();
        stored
    };
    let old = Journal::<TestEvent>::open(dir.path(), &passphrase("old passphrase"));
    assert!(matches!(old, Err(Error::WrongKey)), "{old:?}");
    let journal = Journal::<TestEvent>::open(dir.path(), &passphrase("new passphrase")).unwrap();
    let after: Vec<Vec<u8>> = (1..=30)
        .map(|seq| journal.tamper().get(seq).unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(replay_all(&journal), (0..30).map(event).collect::<Vec<_>>());
    // The same data key still hashes content the same way.
    let hash = journal.content_key().hash(b"message");
    journal.change_key(&key_file(), cheap()).unwrap();
    drop(journal);
    let journal = Journal::<TestEvent>::open(dir.path(), &key_file()).unwrap();
    assert_eq!(journal.content_key().hash(b"message"), hash);
}

// Goal: two journals hash the same content differently (the hash key is per journal).
#[test]
fn content_hashes_differ_between_journals() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (journal_with(a.path(), 0), journal_with(b.path(), 0));
    assert_ne!(
        a.content_key().hash(b"same bytes"),
        b.content_key().hash(b"same bytes")
    );
    assert_eq!(
        a.content_key().hash(b"same bytes"),
        a.content_key().hash(b"same bytes")
    );
}
