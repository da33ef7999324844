//! Shared by the journal's integration tests and the fixture generator. The event type is
//! frozen: the committed fixture journal was written with it.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use ferry_journal::{CreateOptions, Journal, KdfParams, KeyFileSecret, KeySource, Passphrase};
use serde::{Deserialize, Serialize};

/// A stand-in for ferry's event vocabulary: the journal is generic and must not care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestEvent {
    RunStarted {
        run: u64,
        label: String,
    },
    ItemSeen {
        folder: u32,
        hash: [u8; 32],
        size: u64,
        flags: Vec<String>,
    },
    Payload {
        bytes: Vec<u8>,
    },
    RunEnded {
        run: u64,
        copied: u64,
    },
}

/// A deterministic event for index `i`, about 100 bytes encoded.
pub fn event(i: u64) -> TestEvent {
    match i % 4 {
        0 => TestEvent::RunStarted {
            run: i,
            label: format!("run number {i} of the test suite"),
        },
        1 => TestEvent::ItemSeen {
            folder: (i % 13) as u32,
            hash: *blake3::hash(&i.to_le_bytes()).as_bytes(),
            size: i * 37,
            flags: vec!["\\Seen".into(), "$Label1".into()],
        },
        2 => TestEvent::Payload {
            bytes: (0..(i % 90) as u8).collect(),
        },
        _ => TestEvent::RunEnded {
            run: i,
            copied: i / 2,
        },
    }
}

/// A fixed key-file secret for tests.
pub fn key_file() -> KeySource {
    KeySource::KeyFile(KeyFileSecret::from_bytes(&[0x5a; 32]).unwrap())
}

/// A passphrase key with the cheapest Argon2 costs, so tests can open journals often.
pub fn passphrase(text: &str) -> KeySource {
    KeySource::Passphrase(Passphrase::new(text.to_string()).unwrap())
}

pub fn cheap() -> CreateOptions {
    CreateOptions::with_kdf(KdfParams::MINIMUM_FOR_TESTS)
}

/// A journal of `count` deterministic events under the test key file.
pub fn journal_with(dir: &Path, count: u64) -> Journal<TestEvent> {
    let journal = Journal::create(dir, &key_file(), cheap()).unwrap();
    let events: Vec<_> = (0..count).map(event).collect();
    journal.append_batch(&events).unwrap();
    journal
}

pub fn replay_all(journal: &Journal<TestEvent>) -> Vec<TestEvent> {
    journal
        .replay(1)
        .map(|entry| entry.unwrap().event)
        .collect()
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// insta settings that put snapshots in the workspace's top-level `snapshots/`.
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}
