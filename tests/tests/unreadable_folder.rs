//! One source folder the server cannot open (issue 12, point 8) against the in-memory store.
//!
//! Goal: a folder the source lists but cannot read (Dovecot: `STATUS Sent: Internal error
//! occurred`, then `\Noselect`) stops nothing else: the other folders migrate, the run ends with
//! failures (exit 1) naming the folder in the store's words, and nothing that belongs to the
//! folder is deleted on the target, run after run, even with `--delete-removed`; once it can be
//! read again, one run makes the target equal to the source, without duplicates.
//! Method: [`MemoryStore::set_unreadable`] in both of its shapes (the folder listing says so;
//! only its items are refused), with and without change tokens, with a target that can move
//! items; what each run journaled is checked (no `FolderGone`, no `FolderSeen` of an unknown
//! UIDVALIDITY, no deletion or move out of the folder) and the target's contents are compared
//! with the source's by an independent walk of both stores.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ferry_engine::event::RunOutcome;
use ferry_engine::journal::ContentKey;
use ferry_engine::{
    Action, Clock, Config, Event, Flags, MemoryLog, NativeId, Note, Run, RunOptions, Side, State,
    StopSignal, SystemFlag, Watcher,
};
use ferry_memory::{MemoryStore, Unreadable};

/// What the server says of the folder it cannot open.
const WORDS: &str = "Internal error occurred. Refer to server log for more information.";

struct TickClock(std::sync::atomic::AtomicI64);

impl Clock for TickClock {
    fn now_ms(&self) -> i64 {
        self.0.fetch_add(1_000, std::sync::atomic::Ordering::SeqCst)
    }
}

/// Keeps what the run says went wrong (what the CLI prints on stderr).
#[derive(Default)]
struct Failures(Mutex<Vec<String>>);

impl Watcher for Failures {
    fn note(&self, note: Note) {
        if let Note::ItemFailed(text) = note {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(text);
        }
    }
}

/// Folder → its messages (bytes, flags), sorted; empty folders left out.
type Shape = BTreeMap<String, Vec<(Vec<u8>, Flags)>>;

fn shape(store: &MemoryStore) -> Shape {
    store
        .contents()
        .into_iter()
        .filter(|(_, items)| !items.is_empty())
        .map(|(folder, items)| {
            let mut items: Vec<(Vec<u8>, Flags)> = items
                .into_iter()
                .map(|(_, bytes, flags)| (bytes.as_ref().clone(), flags))
                .collect();
            items.sort();
            (folder, items)
        })
        .collect()
}

fn flatten(events: &[Event], into: &mut Vec<Event>) {
    for event in events {
        match event {
            Event::Batch(inner) => flatten(inner, into),
            other => into.push(other.clone()),
        }
    }
}

struct Pair {
    source: MemoryStore,
    target: MemoryStore,
    log: MemoryLog,
    clock: TickClock,
    next: u32,
}

/// What one run did.
struct Ran {
    outcome: RunOutcome,
    /// The events it journaled, batches flattened.
    events: Vec<Event>,
    /// What it reported as failed.
    failures: Vec<String>,
}

impl Pair {
    fn new(tokens: bool, moves: bool) -> Pair {
        let source = MemoryStore::new("source", 11);
        let target = MemoryStore::new("target", 12);
        source.set_change_tokens(tokens);
        target.set_moves(moves);
        Pair {
            source,
            target,
            log: MemoryLog::new(ContentKey::from_secret([9; 32]), Vec::new()),
            clock: TickClock(std::sync::atomic::AtomicI64::new(1_767_225_600_000)),
            next: 0,
        }
    }

    fn deliver(&mut self, folder: &str) -> NativeId {
        self.next += 1;
        let n = self.next;
        let mut flags = Flags::new();
        flags.set(SystemFlag::Seen, n.is_multiple_of(2));
        self.source.deliver(
            folder,
            format!("Message-ID: <{n}@unreadable>\r\nSubject: message {n}\r\n\r\nbody {n}\r\n")
                .into_bytes(),
            flags,
            Some(1_700_000_000_000),
        )
    }

    async fn run(&self, delete_removed: bool) -> Ran {
        let before = self.log.events();
        let failures = Failures::default();
        let mut run = Run::new(ferry_engine::RunContext {
            source: &self.source,
            target: &self.target,
            log: &self.log,
            state: State::replay(&before),
            options: RunOptions {
                delete_removed,
                ..RunOptions::default()
            },
            config: Config {
                jobs: 2,
                batch_max: 3,
                ..Config::default()
            },
            clock: &self.clock,
            watcher: &failures,
            stop: StopSignal::new(),
            pacers: None,
        });
        let summary = run
            .execute(Some(("memory:source", "memory:target")))
            .await
            .unwrap_or_else(|error| panic!("the run stopped: {error}"));
        let after = self.log.events();
        let mut events = Vec::new();
        flatten(&after[before.len()..], &mut events);
        Ran {
            outcome: summary.outcome,
            events,
            failures: std::mem::take(&mut *failures.0.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }
}

/// What a run with `folder` unreadable must not have done, and must have said.
fn assert_held(ran: &Ran, folder: &str) {
    assert_eq!(ran.outcome, RunOutcome::CompletedWithFailures);
    assert!(
        ran.failures
            .iter()
            .any(|f| f.contains(&format!("source folder {folder} skipped")) && f.contains(WORDS)),
        "the folder and the store's words are reported: {:?}",
        ran.failures
    );
    let mut reported = false;
    for event in &ran.events {
        match event {
            Event::FolderUnreadable {
                side: Side::Source,
                folder: f,
                reason,
            } if f == folder => {
                assert!(reason.contains(WORDS), "{reason}");
                reported = true;
            }
            Event::FolderGone {
                side: Side::Source,
                folder: f,
            } if f == folder => panic!("{folder} was taken as deleted"),
            Event::FolderSeen {
                side: Side::Source,
                folder: f,
                validity: None,
                ..
            } if f == folder => panic!("{folder} was seen with no UIDVALIDITY (a change)"),
            Event::ItemGone {
                side: Side::Source,
                folder: f,
                ..
            } if f == folder => panic!("an item of {folder} was taken as gone"),
            Event::WriteIntent {
                action: Action::Delete { folder: f, .. },
                ..
            } if f == folder => panic!("a target item of {folder} was to be deleted"),
            Event::WriteIntent {
                action: Action::Move { from, .. },
                ..
            } if from == folder => panic!("a target item of {folder} was to be moved"),
            _ => {}
        }
    }
    assert!(reported, "FolderUnreadable journaled for {folder}");
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

/// Both shapes of the fault, with and without change tokens, with a target that can move.
#[test]
fn an_unreadable_folder_stops_nothing_else_and_loses_nothing() {
    for (how, tokens, moves) in [
        (Unreadable::Listed(WORDS.to_owned()), false, false),
        (Unreadable::Listed(WORDS.to_owned()), true, true),
        (Unreadable::Items(WORDS.to_owned()), false, true),
        (Unreadable::Items(WORDS.to_owned()), true, false),
    ] {
        let case = format!("{how:?}, tokens {tokens}, moves {moves}");
        paused_runtime().block_on(async {
            let mut pair = Pair::new(tokens, moves);
            let mut inbox = Vec::new();
            for _ in 0..5 {
                inbox.push(pair.deliver("INBOX"));
            }
            let mut sent = Vec::new();
            for _ in 0..6 {
                sent.push(pair.deliver("Sent"));
            }
            for _ in 0..4 {
                pair.deliver("Work");
            }
            let first = pair.run(true).await;
            assert_eq!(first.outcome, RunOutcome::Completed, "{case}");
            assert_eq!(shape(&pair.target), shape(&pair.source), "{case}");
            let sent_before = shape(&pair.target)["Sent"].clone();

            // Users go on: new mail in Work and Sent, a deletion in INBOX and in Sent, a
            // message moved from Sent to Work. Then the server cannot open Sent.
            pair.deliver("Work");
            pair.deliver("Sent");
            assert!(pair.source.user_delete("INBOX", &inbox[0]));
            assert!(pair.source.user_delete("Sent", &sent[0]));
            assert!(pair.source.user_move("Sent", &sent[1], "Work").is_some());
            pair.source.set_unreadable("Sent", Some(how.clone()));

            for attempt in 0..2 {
                let ran = pair.run(true).await;
                assert_held(&ran, "Sent");
                let (source, target) = (shape(&pair.source), shape(&pair.target));
                assert_eq!(
                    target["Sent"], sent_before,
                    "{case}, run {attempt}: the target's Sent is untouched"
                );
                for folder in ["INBOX", "Work"] {
                    assert_eq!(
                        target[folder], source[folder],
                        "{case}, run {attempt}: {folder} migrated"
                    );
                }
            }

            // The server can open it again: one run makes the target the source.
            pair.source.set_unreadable("Sent", None);
            let healed = pair.run(true).await;
            assert_eq!(
                healed.outcome,
                RunOutcome::Completed,
                "{case}: {:?}",
                healed.failures
            );
            assert_eq!(shape(&pair.target), shape(&pair.source), "{case}");
            let again = pair.run(true).await;
            assert_eq!(again.outcome, RunOutcome::Completed, "{case}");
            assert!(
                !again
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::WriteIntent { .. })),
                "{case}: nothing left to write"
            );
        });
    }
}

/// While one folder cannot be read, a folder that vanished from the source may be in it
/// (renamed): it is not taken as deleted, so what ferry copied from it stays on the target;
/// once every folder can be read, it is renamed on the target, not copied again.
#[test]
fn a_vanished_folder_is_not_deleted_while_another_cannot_be_read() {
    paused_runtime().block_on(async {
        let mut pair = Pair::new(false, false);
        for _ in 0..3 {
            pair.deliver("INBOX");
        }
        for _ in 0..5 {
            pair.deliver("Projects");
        }
        let first = pair.run(true).await;
        assert_eq!(first.outcome, RunOutcome::Completed);
        let before = shape(&pair.target);

        assert!(pair.source.user_rename("Projects", "Projects 2026"));
        pair.source
            .set_unreadable("Projects 2026", Some(Unreadable::Listed(WORDS.to_owned())));
        let ran = pair.run(true).await;
        assert_held(&ran, "Projects 2026");
        assert!(
            !ran.events.iter().any(|e| matches!(
                e,
                Event::FolderGone {
                    side: Side::Source,
                    ..
                } | Event::WriteIntent {
                    action: Action::Delete { .. } | Action::Move { .. },
                    ..
                }
            )),
            "nothing taken as deleted: {:?}",
            ran.events
        );
        assert!(
            ran.failures
                .iter()
                .any(|f| f.contains("Projects is gone") && f.contains("Projects 2026")),
            "{:?}",
            ran.failures
        );
        assert_eq!(shape(&pair.target), before);

        pair.source.set_unreadable("Projects 2026", None);
        let healed = pair.run(true).await;
        assert_eq!(
            healed.outcome,
            RunOutcome::Completed,
            "{:?}",
            healed.failures
        );
        assert!(
            healed.events.iter().any(|e| matches!(
                e,
                Event::WriteIntent { action: Action::RenameFolder { from, to }, .. }
                    if from == "Projects" && to == "Projects 2026"
            )),
            "renamed on the target"
        );
        assert!(
            !healed.events.iter().any(|e| matches!(
                e,
                Event::WriteIntent {
                    action: Action::Append { .. },
                    ..
                }
            )),
            "nothing copied again"
        );
        assert_eq!(shape(&pair.target), shape(&pair.source));
    });
}
