//! The committed fixture journals keep replaying: a format, once released, is a promise.
#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::{TestEvent, copy_tree, event, passphrase, snapshot_settings};
use ferry_journal::{CreateOptions, Error, Journal};

const FIXTURE_PASSPHRASE: &str = "ferry fixture passphrase, not a secret";

fn fixture(name: &str) -> tempfile::TempDir {
    // Opening recovers and may write, so work on a copy.
    let copy = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    copy_tree(&source, copy.path());
    copy
}

// Goal: the format-1 fixture (written by examples/make_fixture.rs with the production Argon2id
// costs) opens with its passphrase, verifies, replays the exact events it was written with, and
// accepts new appends.
#[test]
fn format_1_fixture_replays() {
    let dir = fixture("format-1");
    let journal = Journal::<TestEvent>::open(dir.path(), &passphrase(FIXTURE_PASSPHRASE)).unwrap();
    assert_eq!(journal.verify().unwrap().records, 64);
    let entries: Vec<_> = journal.replay(1).map(|e| e.unwrap()).collect();
    for entry in &entries {
        assert_eq!(entry.event, event(entry.seq - 1));
    }
    let mut listing = String::new();
    for entry in &entries {
        writeln!(listing, "{:>3} {:?}", entry.seq, entry.event).unwrap();
    }
    snapshot_settings().bind(|| insta::assert_snapshot!("journal_fixture_format_1", listing));

    assert_eq!(journal.append(&event(64)).unwrap(), 65);
    drop(journal);
    let journal = Journal::<TestEvent>::open(dir.path(), &passphrase(FIXTURE_PASSPHRASE)).unwrap();
    assert_eq!(journal.verify().unwrap().records, 65);
}

// Goal: the fixture refuses a wrong passphrase with the dedicated error.
#[test]
fn format_1_fixture_refuses_a_wrong_passphrase() {
    let dir = fixture("format-1");
    let opened = Journal::<TestEvent>::open(dir.path(), &passphrase("not the fixture passphrase"));
    assert!(matches!(opened, Err(Error::WrongKey)), "{opened:?}");
}

// Goal: a journal claiming a newer format is refused with a message naming both versions.
#[test]
fn a_newer_format_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    {
        let journal: Journal<TestEvent> =
            Journal::create(dir.path(), &common::key_file(), CreateOptions::default()).unwrap();
        let mut header = journal.tamper().get_meta(b"header").unwrap();
        header[9] = 2; // format u16 BE at bytes 8..10
        let body_len = header.len() - 32;
        let checksum = *blake3::hash(&header[..body_len]).as_bytes();
        header[body_len..].copy_from_slice(&checksum);
        journal.tamper().put_meta(b"header", &header);
        journal.tamper().persist();
    }
    let opened = Journal::<TestEvent>::open(dir.path(), &common::key_file());
    assert!(
        matches!(
            opened,
            Err(Error::UnsupportedFormat {
                found: 2,
                supported: 1
            })
        ),
        "{opened:?}"
    );
}
