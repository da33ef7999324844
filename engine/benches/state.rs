//! What a run's state costs per known item, and how it grows with the mailbox: folds the
//! journal of a migration of N messages (each seen on the source, written to the target with
//! an intent and an outcome) into `State`, counting the bytes the allocator holds for it, and
//! times the fold, the plan of a no-op run and the checkpoint encoding.
//!
//! `cargo bench -p ferry-engine --bench state` prints a table (N = 20,000, 100,000, 300,000).
//! Ids are shaped like Maildir's (`cur/1740001820.S20000I43172.sample`, 34–38 characters), 20
//! folders, a third of the messages flagged \Seen, one in ten with a keyword.

use std::alloc::System;
use std::time::Instant;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

use ferry_engine::event::{Action, NativeId, RunOptions, Side};
use ferry_engine::journal::ContentHash;
use ferry_engine::projection::delta::delta;
use ferry_engine::{Event, Flags, State, SystemFlag};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes the allocator holds now.
fn held() -> isize {
    let stats = ALLOCATOR.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize + stats.bytes_reallocated
}

const FOLDERS: usize = 20;

fn journal(messages: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(messages * 3 + FOLDERS * 4);
    let mut rng = fastrand::Rng::with_seed(7);
    events.push(Event::RunStarted {
        run: 1,
        at: 0,
        source: "maildir:/source".into(),
        target: "maildir:/target".into(),
        options: RunOptions::default(),
    });
    for f in 0..FOLDERS {
        let folder = if f == 0 {
            "INBOX".to_owned()
        } else {
            format!("Archive/{}", 2000 + f)
        };
        for side in [Side::Source, Side::Target] {
            events.push(Event::FolderSeen {
                side,
                folder: folder.clone(),
                special_use: None,
                validity: None,
            });
        }
        events.push(Event::FolderListed {
            side: Side::Source,
            folder: folder.clone(),
            token: Some("1740001820.123:1740001820.456".into()),
        });
    }
    for n in 0..messages {
        let f = n % FOLDERS;
        let folder = if f == 0 {
            "INBOX".to_owned()
        } else {
            format!("Archive/{}", 2000 + f)
        };
        let mut flags = Flags::new();
        if n % 3 == 0 {
            flags.set(SystemFlag::Seen, true);
        }
        if n % 10 == 0 {
            flags.add_keyword("$Forwarded");
        }
        let mut content = [0_u8; 32];
        rng.fill(&mut content);
        let content = ContentHash(content);
        let source_id = NativeId(format!(
            "cur/17400{:05}.S20000I{n}.sample",
            rng.u32(0..100_000)
        ));
        let target_id = NativeId(format!("cur/1796396070.M{n}P10378Q{n}.vm"));
        let size = 2_000 + rng.u64(0..40_000);
        events.push(Event::ItemSeen {
            side: Side::Source,
            folder: folder.clone(),
            id: source_id.clone(),
            content,
            size,
            flags: flags.clone(),
            date: Some(1_740_001_820_000 + n as i64),
        });
        let op = n as u64 + 1;
        events.push(Event::WriteIntent {
            op,
            action: Action::Append {
                source_folder: folder.clone(),
                source_id,
                folder: folder.clone(),
                content,
                size,
                flags,
                date: Some(1_740_001_820_000 + n as i64),
                probe: String::new(),
            },
        });
        events.push(Event::WriteDone {
            op,
            id: Some(target_id),
            at: 0,
        });
    }
    events
}

fn main() {
    println!(
        "| messages | state bytes | bytes per message | fold s | plan of a no-op run s | checkpoint bytes per message | checkpoint s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for messages in [20_000, 100_000, 300_000] {
        let events = journal(messages);
        let before = held();
        let started = Instant::now();
        let state = State::replay(&events);
        let fold = started.elapsed();
        let held = held() - before;
        let started = Instant::now();
        let plan = delta(&state.source, &state.target, &RunOptions::default());
        let planned = started.elapsed();
        assert!(plan.is_empty(), "a no-op run plans nothing");
        drop(plan);
        let started = Instant::now();
        let checkpoint = ferry_engine::checkpoint::encode(None, &state).expect("the state encodes");
        let encoded = started.elapsed();
        println!(
            "| {messages} | {held} | {} | {:.2} | {:.3} | {} | {:.2} |",
            held / messages as isize,
            fold.as_secs_f64(),
            planned.as_secs_f64(),
            checkpoint.len() / messages,
            encoded.as_secs_f64(),
        );
    }
}
