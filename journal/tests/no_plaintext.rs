//! The journal's files on disk reveal no event content.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestEvent, event, files_under, journal_with, key_file};
use ferry_journal::Journal;

const MARKER: &[u8; 32] = b"FERRY-CANARY-7c1e-do-not-leak-!!";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

// Goal: a distinctive 32-byte marker carried in events appears nowhere in the journal's raw
// bytes, in the write-ahead files or in the sorted tables written when memory is flushed.
// Method: write the marker (and its label) in many events, reopen so the store recovers and
// flushes, then scan every file under the journal directory. A control scan of the same bytes
// written in the clear proves the scan would see it.
#[test]
fn no_event_plaintext_reaches_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = journal_with(dir.path(), 0);
        for round in 0..200_u64 {
            let events = vec![
                TestEvent::Payload {
                    bytes: MARKER.to_vec(),
                },
                TestEvent::RunStarted {
                    run: round,
                    label: String::from_utf8(MARKER.to_vec()).unwrap(),
                },
                event(round),
            ];
            journal.append_batch(&events).unwrap();
        }
    }
    // Reopen (replays the store's write-ahead log) and append more.
    {
        let journal = Journal::<TestEvent>::open(dir.path(), &key_file()).unwrap();
        journal
            .append(&TestEvent::Payload {
                bytes: MARKER.to_vec(),
            })
            .unwrap();
        assert_eq!(journal.verify().unwrap().records, 601);
        journal.tamper().flush_tables();
    }
    let files = files_under(dir.path());
    let tables = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("tables"))
        .count();
    assert!(tables >= 1, "no sorted table was written: {files:?}");
    let mut scanned = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        scanned += bytes.len();
        assert!(
            !contains(&bytes, MARKER),
            "marker found in {}",
            file.display()
        );
        assert!(
            !contains(&bytes, &MARKER[..16]),
            "half marker in {}",
            file.display()
        );
    }
    assert!(scanned > 600 * 41, "only {scanned} bytes scanned");

    // Control: the scan finds the marker when it is there.
    let control = dir.path().join("control");
    std::fs::write(&control, [&b"xx"[..], MARKER, b"yy"].concat()).unwrap();
    assert!(contains(&std::fs::read(&control).unwrap(), MARKER));
}
