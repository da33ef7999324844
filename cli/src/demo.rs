//! `ferry demo`: the self-check that needs no server. Until the engine can migrate the shipped
//! sample mailbox, it exercises the journal end to end: a run of events is group-committed to
//! a journal under the state directory, the journal is reopened, verified and replayed.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use ferry_journal::{ContentHash, CreateOptions, Error, Journal};
use serde::{Deserialize, Serialize};

use crate::keys::{self, KeyArgs, Missing};

/// The demo's own events. The engine's real vocabulary replaces them with the engine issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum DemoEvent {
    RunStarted {
        run: u64,
    },
    ItemSeen {
        folder: u16,
        content: ContentHash,
        size: u32,
    },
    RunEnded {
        run: u64,
        items: u64,
    },
}

/// Messages in the embedded sample run.
const SAMPLE_ITEMS: u64 = 500;
/// Events per group commit.
const BATCH_EVENTS: usize = 128;
const FOLDERS: [&str; 5] = [
    "INBOX",
    "Sent",
    "Archive/2025",
    "Drafts",
    "Projekte/Übersicht",
];

/// A deterministic sample message: headers and a body, 1–20 KB.
fn sample_message(i: u64) -> Vec<u8> {
    let folder = FOLDERS[(i % FOLDERS.len() as u64) as usize];
    let mut message = format!(
        "From: sender{}@example.org\r\nTo: admin@example.net\r\nSubject: sample {i} in {folder}\r\n\
         Message-ID: <sample-{i}@ferry.invalid>\r\nDate: Mon, 3 Nov 2025 10:{:02}:00 +0000\r\n\r\n",
        i % 17,
        i % 60
    )
    .into_bytes();
    let body_len = 1_000 + (i * 7_919) % 19_000;
    message
        .extend((0..body_len).map(|k| b"abcdefghijklmnopqrstuvwxyz \r\n"[((i + k) % 29) as usize]));
    message
}

pub fn run(
    state: &Path,
    key: &KeyArgs,
    out: &mut dyn Write,
    notices: &mut dyn Write,
) -> anyhow::Result<()> {
    let dir = state.join("demo-journal");
    let key = keys::resolve(key, Missing::Create, notices)?;
    let journal = match Journal::<DemoEvent>::open(&dir, &key) {
        Ok(journal) => journal,
        Err(Error::NotFound { .. }) => Journal::create(&dir, &key, CreateOptions::default())
            .with_context(|| format!("creating the demo journal at {}", dir.display()))?,
        Err(error) => {
            return Err(error)
                .with_context(|| format!("opening the demo journal at {}", dir.display()));
        }
    };
    let run = journal
        .replay(1)
        .filter(|entry| matches!(entry, Ok(e) if matches!(e.event, DemoEvent::RunStarted { .. })))
        .count() as u64
        + 1;

    let started = Instant::now();
    let mut events = vec![DemoEvent::RunStarted { run }];
    for i in 0..SAMPLE_ITEMS {
        let message = sample_message(i);
        events.push(DemoEvent::ItemSeen {
            folder: (i % FOLDERS.len() as u64) as u16,
            content: journal.content_key().hash(&message),
            size: message.len() as u32,
        });
    }
    events.push(DemoEvent::RunEnded {
        run,
        items: SAMPLE_ITEMS,
    });
    let mut batches = 0;
    for chunk in events.chunks(BATCH_EVENTS) {
        journal
            .append_batch(chunk)
            .context("appending to the demo journal")?;
        batches += 1;
    }
    let append_ms = started.elapsed().as_secs_f64() * 1e3;
    drop(journal);

    let started = Instant::now();
    let journal = Journal::<DemoEvent>::open(&dir, &key)
        .with_context(|| format!("reopening the demo journal at {}", dir.display()))?;
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let report = journal.verify().context("verifying the demo journal")?;
    let verify_ms = started.elapsed().as_secs_f64() * 1e3;
    let (mut runs, mut items, mut bytes) = (0_u64, 0_u64, 0_u64);
    for entry in journal.replay(1) {
        match entry.context("replaying the demo journal")?.event {
            DemoEvent::RunStarted { .. } => runs += 1,
            DemoEvent::ItemSeen { size, .. } => {
                items += 1;
                bytes += u64::from(size);
            }
            DemoEvent::RunEnded { .. } => {}
        }
    }

    writeln!(out, "ferry demo: journal at {}", dir.display())?;
    writeln!(
        out,
        "  run {run}: {} events appended in {batches} group commits, {append_ms:.1} ms",
        events.len()
    )?;
    writeln!(
        out,
        "  reopen: {open_ms:.1} ms (tail checked against the sealed head)"
    )?;
    writeln!(
        out,
        "  verify: {} records authentic and in place, chain intact, {:.1} ms",
        report.records, verify_ms
    )?;
    writeln!(
        out,
        "  replay: {runs} runs, {items} items seen, {:.1} MB of sample mail described, no content stored",
        bytes as f64 / 1e6
    )?;
    writeln!(
        out,
        "  run again to append another run; `ferry journal verify --journal {}` checks it",
        dir.display()
    )?;
    Ok(())
}
