//! Writes the committed fixture journal: `cargo run -p ferry-journal --example make_fixture --
//! journal/tests/fixtures/format-1`. Run it only when adding a fixture for a new format; the
//! fixture of every earlier format stays committed and must keep replaying.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{TestEvent, event};
use ferry_journal::{CreateOptions, Journal, KeySource, Passphrase};

/// The fixed passphrase of the committed fixture journals. Not a secret.
const FIXTURE_PASSPHRASE: &str = "ferry fixture passphrase, not a secret";

fn main() {
    let target = std::env::args().nth(1).expect("usage: make_fixture DIR");
    let key = KeySource::Passphrase(Passphrase::new(FIXTURE_PASSPHRASE.into()).unwrap());
    let journal: Journal<TestEvent> = Journal::create(
        std::path::Path::new(&target),
        &key,
        CreateOptions::default(),
    )
    .unwrap();
    journal
        .append_batch(&(0..40).map(event).collect::<Vec<_>>())
        .unwrap();
    for i in 40..48 {
        journal.append(&event(i)).unwrap();
    }
    journal.tamper().flush_tables();
    journal
        .append_batch(&(48..64).map(event).collect::<Vec<_>>())
        .unwrap();
    let records = journal.last_seq();
    drop(journal);
    trim_preallocation(std::path::Path::new(&target));
    println!("wrote {records} records to {target}");
}

/// The store preallocates 64 MiB write-ahead files. Cut the zeros at the end, keeping a few
/// (the store reads zeros as the end of its log), so the fixture is a few kilobytes.
fn trim_preallocation(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "jnl") {
            let bytes = std::fs::read(&path).unwrap();
            let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            let keep = (used + 64).min(bytes.len());
            std::fs::write(&path, &bytes[..keep]).unwrap();
        }
    }
}
