//! Checkpoints: a sealed cache of a fold, bound to the record it was taken at. It opens only over
//! the very records it summarises; anything else makes the caller replay from the start.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestEvent, event, journal_with, key_file};
use ferry_journal::Journal;

// Goal: a checkpoint survives reopening and later appends, and names the record it was taken at.
#[test]
fn checkpoint_round_trips_across_reopen_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with(dir.path(), 10);
    assert_eq!(journal.checkpoint().unwrap(), None);
    assert_eq!(
        journal.put_checkpoint(b"state after ten".to_vec()).unwrap(),
        10
    );
    journal.append_batch(&[event(10), event(11)]).unwrap();
    drop(journal);
    let journal = Journal::<TestEvent>::open(dir.path(), &key_file()).unwrap();
    assert_eq!(
        journal.checkpoint().unwrap(),
        Some((10, b"state after ten".to_vec()))
    );
    assert_eq!(
        journal
            .put_checkpoint(b"state after twelve".to_vec())
            .unwrap(),
        12
    );
    assert_eq!(
        journal.checkpoint().unwrap(),
        Some((12, b"state after twelve".to_vec()))
    );
}

// Goal: a flipped bit in the checkpoint, or a changed record under it, makes it unusable
// (never trusted), while the journal itself still reports the record's damage.
#[test]
fn tampered_checkpoint_or_records_under_it_are_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with(dir.path(), 5);
    journal.put_checkpoint(b"five".to_vec()).unwrap();
    let tamper = journal.tamper();
    let file = dir.path().join("checkpoint");
    let stored = std::fs::read(&file).unwrap();
    for bit in 0..stored.len() * 8 {
        let mut flipped = stored.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        std::fs::write(&file, &flipped).unwrap();
        assert_eq!(journal.checkpoint().unwrap(), None, "bit {bit}");
    }
    std::fs::write(&file, &stored).unwrap();
    assert_eq!(journal.checkpoint().unwrap(), Some((5, b"five".to_vec())));
    // The record the checkpoint is bound to changes: the checkpoint no longer opens.
    let mut record = tamper.get(5).unwrap();
    record[30] ^= 1;
    tamper.put(5, &record);
    assert_eq!(journal.checkpoint().unwrap(), None);
    assert!(journal.verify().is_err());
}

// Goal: a checkpoint written piece by piece, over several of the 64 KiB chunks it is sealed in
// and in pieces of odd sizes, reads back whole; one whose writer fails leaves the previous
// checkpoint in place and no staging file.
#[test]
fn a_checkpoint_written_in_pieces_reads_back_and_a_failed_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with(dir.path(), 3);
    let bytes: Vec<u8> = (0..200_003_u32).map(|i| (i * 7 % 251) as u8).collect();
    let seq = journal
        .put_checkpoint_with(|out| {
            for piece in bytes.chunks(1_000) {
                out.write_all(piece)?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(seq, 3);
    let read = journal.checkpoint().unwrap();
    assert!(
        read == Some((3, bytes.clone())),
        "the checkpoint read back differs"
    );
    journal.append(&event(3)).unwrap();
    let failed = journal.put_checkpoint_with(|out| {
        out.write_all(&[1; 100_000])?;
        Err(std::io::Error::other("the encoder failed"))
    });
    assert!(failed.is_err());
    let read = journal.checkpoint().unwrap();
    assert!(
        read == Some((3, bytes)),
        "the previous checkpoint is not intact"
    );
    assert!(!dir.path().join("checkpoint.new").exists());
    drop(journal);
    let journal = Journal::<TestEvent>::open(dir.path(), &key_file()).unwrap();
    assert_eq!(journal.verify().unwrap().records, 4);
}

// Goal: a checkpoint of several chunks is read whole, in reads of any size, by its reader;
// what a decoder made of a damaged checkpoint is not handed back, even if it read only part
// of it.
#[test]
fn a_checkpoint_is_read_in_chunks_and_kept_only_if_it_all_authenticates() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with(dir.path(), 3);
    let plain: Vec<u8> = (0..200_000_u32).map(|i| (i * 7 % 251) as u8).collect();
    journal.put_checkpoint(plain.clone()).unwrap();
    for step in [1_usize, 10, 65_535, 65_536, 100_000, 300_000] {
        let read = journal
            .checkpoint_with(|reader| {
                let mut all = Vec::new();
                let mut buffer = vec![0; step];
                loop {
                    let n = reader.read(&mut buffer).ok()?;
                    if n == 0 {
                        break;
                    }
                    all.extend_from_slice(&buffer[..n]);
                }
                Some(all)
            })
            .unwrap();
        assert_eq!(read, Some((3, plain.clone())), "reads of {step}");
    }
    // One bit flipped past what the decoder read: nothing of it handed back.
    let path = dir.path().join("checkpoint");
    let mut stored = std::fs::read(&path).unwrap();
    let last = stored.len() - 20;
    stored[last] ^= 1;
    std::fs::write(&path, stored).unwrap();
    let read = journal
        .checkpoint_with(|reader| {
            let mut head = vec![0; 10];
            reader.read_exact(&mut head).ok()?;
            Some(head)
        })
        .unwrap();
    assert_eq!(read, None);
}
