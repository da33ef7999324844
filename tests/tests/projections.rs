//! Snapshot tests of every projection over one recorded migration journal.
//!
//! Goal: projections are pure, deterministic folds (invariant 3) and their output is reviewed
//! like code. Method: a fixed scenario against the in-memory store (fixed seeds, a ticking clock,
//! a fixed content key) records a journal: a first run that crashes part-way (the log refuses
//! appends), its resumption, user changes (new, deleted, re-flagged and moved messages, a renamed
//! folder, a recreated folder), a run with `--delete-removed`, and one with `--verify-target`.
//! Each projection, folded from the recorded events, is compared with its snapshot in
//! `snapshots/`.

use ferry_engine::journal::ContentKey;
use ferry_engine::projection::audit::Audit;
use ferry_engine::projection::deletions::Deletions;
use ferry_engine::projection::delta::delta;
use ferry_engine::projection::fold;
use ferry_engine::projection::report::Report;
use ferry_engine::projection::verify::Verification;
use ferry_engine::{
    Clock, Config, Event, Flags, MemoryLog, Quiet, Run, RunOptions, State, StopSignal, SystemFlag,
};
use ferry_memory::MemoryStore;

struct TickClock(std::sync::atomic::AtomicI64);

impl Clock for TickClock {
    fn now_ms(&self) -> i64 {
        self.0.fetch_add(1_000, std::sync::atomic::Ordering::SeqCst)
    }
}

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

fn message(n: u32) -> Vec<u8> {
    format!("Message-ID: <{n}@snapshot>\r\nSubject: message {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

async fn run(
    source: &MemoryStore,
    target: &MemoryStore,
    log: &MemoryLog,
    clock: &TickClock,
    options: RunOptions,
) -> Result<(), String> {
    let events = log.events();
    let mut run = Run::new(ferry_engine::RunContext {
        source,
        target,
        log,
        state: State::replay(&events),
        options,
        config: Config {
            jobs: 1,
            batch_max: 4,
            ..Config::default()
        },
        clock,
        watcher: &Quiet,
        stop: StopSignal::new(),
        pacers: None,
    });
    run.execute(Some(("memory:source", "memory:target")))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A single-threaded runtime whose clock only moves when every task waits (backoffs and
/// timeouts cost no real time).
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

/// Records the scenario; returns the events and the delta planned before the second run.
fn record() -> (Vec<Event>, ferry_engine::projection::delta::Delta) {
    paused_runtime().block_on(async {
        let key = ContentKey::from_secret([9; 32]);
        let log = MemoryLog::new(key.clone(), Vec::new());
        let clock = TickClock(std::sync::atomic::AtomicI64::new(1_767_225_600_000));
        let source = MemoryStore::new("source", 1);
        let target = MemoryStore::new("target", 2);
        let seen = Flags::new().with(SystemFlag::Seen);
        let inbox: Vec<_> = (1..=5)
            .map(|n| source.deliver("INBOX", message(n), seen.clone(), Some(1_700_000_000_000)))
            .collect();
        // Two identical copies in one folder.
        source.deliver("INBOX", message(5), Flags::new(), None);
        source.deliver(
            "Archiv/2025",
            message(6),
            Flags::new().with_keyword("$Forwarded"),
            None,
        );
        source.deliver("Archiv/2025", message(7), seen.clone(), None);
        source.deliver(
            "Entwürfe",
            message(8),
            Flags::new().with(SystemFlag::Draft),
            None,
        );
        // Someone else's message, already on the target.
        target.deliver("INBOX", message(99), Flags::new(), None);

        // Run 1 crashes after 20 events; run 2 resumes it.
        log.crash_at(20);
        assert!(
            run(&source, &target, &log, &clock, RunOptions::default())
                .await
                .is_err()
        );
        log.crash_at(usize::MAX);
        run(&source, &target, &log, &clock, RunOptions::default())
            .await
            .expect("resumed run");

        // Users keep working.
        source.user_set_flags("INBOX", &inbox[0], Flags::new().with(SystemFlag::Flagged));
        source.user_delete("INBOX", &inbox[1]);
        source.user_move("INBOX", &inbox[2], "Archiv/2025");
        source.deliver("INBOX", message(10), Flags::new(), None);
        source.user_rename("Entwürfe", "Drafts");
        source.user_recreate("Archiv/2025");

        let options = RunOptions {
            delete_removed: true,
            ..RunOptions::default()
        };
        let mut dry = State::replay(&log.events());
        {
            let dry_log = MemoryLog::new(key.clone(), log.events());
            let mut planning = Run::new(ferry_engine::RunContext {
                source: &source,
                target: &target,
                log: &dry_log,
                state: dry.clone(),
                options: RunOptions {
                    dry_run: true,
                    ..options
                },
                config: Config::default(),
                clock: &clock,
                watcher: &Quiet,
                stop: StopSignal::new(),
                pacers: None,
            });
            planning
                .execute(Some(("memory:source", "memory:target")))
                .await
                .expect("dry run");
            dry = planning.state().clone();
        }
        let planned = delta(&dry.source, &dry.target, &options);
        run(&source, &target, &log, &clock, options)
            .await
            .expect("delete-removed run");
        run(
            &source,
            &target,
            &log,
            &clock,
            RunOptions {
                verify_target: true,
                ..RunOptions::default()
            },
        )
        .await
        .expect("verify run");
        (log.events(), planned)
    })
}

#[test]
fn projections_of_a_recorded_journal() {
    let (events, planned) = record();
    let (again, _) = record();
    assert_eq!(
        events, again,
        "the scenario must record the same journal every time"
    );
    let state = State::replay(&events);
    let settings = settings();
    settings.bind(|| {
        insta::assert_debug_snapshot!("projection_source", state.source);
        insta::assert_debug_snapshot!("projection_target", state.target);
        insta::assert_debug_snapshot!("projection_delta_before_run_3", planned);
        insta::assert_debug_snapshot!("projection_report", fold::<Report>(&events));
        insta::assert_debug_snapshot!("projection_audit", fold::<Audit>(&events));
        insta::assert_debug_snapshot!("projection_verify", fold::<Verification>(&events));
        insta::assert_debug_snapshot!("projection_deletions", fold::<Deletions>(&events));
    });
    // Nothing is left to do after the last run.
    let left = delta(&state.source, &state.target, &RunOptions::default());
    assert!(left.is_empty(), "{left:?}");
}

// Goal: a journal record that holds a batch of events folds exactly like those events one by
// one, in every projection (the journal stores each multi-event append as one `Batch` record).
// Method: regroup the recorded events into batches of 1 to 7 and compare each projection's
// output with the ungrouped fold.
#[test]
fn batched_records_fold_like_their_events() {
    let (events, _) = record();
    let mut batched = Vec::new();
    let mut rest = events.as_slice();
    let mut size = 1;
    while !rest.is_empty() {
        let (head, tail) = rest.split_at(size.min(rest.len()));
        batched.push(match head {
            [one] => one.clone(),
            many => Event::Batch(many.to_vec()),
        });
        rest = tail;
        size = size % 7 + 1;
    }
    assert!(batched.len() < events.len() / 2);
    let flattened: Vec<Event> = batched.iter().cloned().flat_map(Event::flatten).collect();
    assert_eq!(flattened, events);
    assert_eq!(State::replay(&batched), State::replay(&events));
    assert_same_fold::<Report>(&batched, &events);
    assert_same_fold::<Audit>(&batched, &events);
    assert_same_fold::<Verification>(&batched, &events);
    assert_same_fold::<Deletions>(&batched, &events);
}

/// Projection `P` folds `a` and `b` to the same thing (compared as printed).
fn assert_same_fold<P>(a: &[Event], b: &[Event])
where
    P: ferry_engine::projection::Projection + Default + std::fmt::Debug,
{
    assert_eq!(format!("{:?}", fold::<P>(a)), format!("{:?}", fold::<P>(b)));
}

// Goal: planning the items of some contents of one folder (`delta_of`, what copies made while
// reading use) plans exactly what the whole plan does for those items.
// Method: for every source folder of the recorded journal, at every moment of it, and for
// every subset of its contents taken one or two at a time, compare the copies, flag updates
// and folder creations of `delta_of` with `delta`'s, filtered to those items.
#[test]
fn planning_some_contents_of_a_folder_plans_what_the_whole_plan_does() {
    let (events, _) = record();
    let mut checked = 0;
    for end in 1..=events.len() {
        let state = State::replay(&events[..end]);
        let whole = delta(&state.source, &state.target, &RunOptions::default());
        for (folder, known) in &state.source.folders {
            let all: Vec<_> = known.items.values().map(|item| item.content).collect();
            for pick in all.chunks(2) {
                let contents: std::collections::BTreeSet<_> = pick.iter().copied().collect();
                let part = ferry_engine::projection::delta::delta_of(
                    &state.source,
                    &state.target,
                    folder,
                    &contents,
                );
                let ours = |id: &ferry_engine::NativeId| {
                    known
                        .items
                        .get(id)
                        .is_some_and(|i| contents.contains(&i.content))
                };
                let copies: Vec<_> = whole
                    .copies
                    .iter()
                    .filter(|c| &c.source_folder == folder && ours(&c.source_id))
                    .collect();
                assert_eq!(
                    part.copies.iter().collect::<Vec<_>>(),
                    copies,
                    "{folder} at {end}"
                );
                let target_folder = part.copies.first().map(|c| c.folder.clone());
                for update in &part.flag_updates {
                    assert!(whole.flag_updates.contains(update), "{update:?}");
                }
                if let Some(target_folder) = target_folder {
                    assert_eq!(
                        part.create_folders.contains(&target_folder),
                        whole.create_folders.contains(&target_folder)
                    );
                }
                assert!(part.deletions.is_empty());
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "{checked}");
}

// Goal: under --delete-removed, a copy and a deletion of the same content in different target
// folders (a message the user moved) become one move on the target, and nothing else changes.
// Method: the recorded scenario's plan before run 3 has such a pair; pairing turns it into a
// move and keeps every other copy and deletion.
#[test]
fn a_moved_message_is_planned_as_a_move() {
    let (_, planned) = record();
    let mut paired = planned.clone();
    paired.pair_moves(&std::collections::BTreeSet::new());
    assert!(
        !paired.moves.is_empty(),
        "the scenario moves a message: {planned:?}"
    );
    for planned_move in &paired.moves {
        assert_eq!(planned_move.copy.content, planned_move.from.content);
        assert_ne!(planned_move.copy.folder, planned_move.from.folder);
        assert!(planned.copies.contains(&planned_move.copy));
        assert!(planned.deletions.contains(&planned_move.from));
    }
    assert_eq!(
        paired.copies.len() + paired.moves.len(),
        planned.copies.len()
    );
    assert_eq!(
        paired.deletions.len() + paired.moves.len(),
        planned.deletions.len()
    );
    for copy in &paired.copies {
        assert!(
            !paired
                .deletions
                .iter()
                .any(|d| d.content == copy.content && d.folder != copy.folder),
            "a copy left with a deletion it could have been: {copy:?}"
        );
    }
}

/// A folder and its messages' bytes and flags, sorted: what two stores must agree on.
type Shaped = (String, Vec<(Vec<u8>, String)>);

// Goal: under --delete-removed, a message moved on the source is moved on a target that can
// move (no bytes copied again), and a move the target refuses is copied instead, in the same
// run, without counting as a failure.
// Method: memory stores; copy two messages, move one on the source; the next run moves it on
// the target (a Move done, no Append). With moves refused, move the other: the run's Move
// fails, then the message is appended to its new folder and the old copy deleted; the target
// ends as the source, and the report counts no failure.
#[test]
fn a_moved_message_is_moved_on_the_target_or_copied_when_the_move_is_refused() {
    paused_runtime().block_on(async {
        let log = MemoryLog::new(ContentKey::from_secret([7; 32]), Vec::new());
        let clock = TickClock(std::sync::atomic::AtomicI64::new(1_767_225_600_000));
        let source = MemoryStore::new("source", 3);
        let target = MemoryStore::new("target", 4);
        target.set_moves(true);
        let seen = Flags::new().with(SystemFlag::Seen);
        let first = source.deliver("INBOX", message(1), seen.clone(), None);
        let second = source.deliver("INBOX", message(2), seen.clone(), None);
        source.deliver("Archive", message(3), seen.clone(), None);
        let options = RunOptions {
            delete_removed: true,
            ..RunOptions::default()
        };
        run(&source, &target, &log, &clock, options)
            .await
            .expect("first run");
        let same = |source: &MemoryStore, target: &MemoryStore| {
            let shape = |store: &MemoryStore| -> Vec<Shaped> {
                store
                    .contents()
                    .into_iter()
                    .map(|(folder, items)| {
                        let mut items: Vec<(Vec<u8>, String)> = items
                            .into_iter()
                            .map(|(_, bytes, flags)| (bytes.to_vec(), flags.to_string()))
                            .collect();
                        items.sort();
                        (folder, items)
                    })
                    .filter(|(_, items)| !items.is_empty())
                    .collect()
            };
            assert_eq!(shape(source), shape(target));
        };
        same(&source, &target);
        let writes = |events: &[Event]| -> Vec<String> {
            let mut out = Vec::new();
            let mut stack: Vec<&Event> = events.iter().rev().collect();
            while let Some(event) = stack.pop() {
                match event {
                    Event::Batch(inner) => stack.extend(inner.iter().rev()),
                    Event::WriteIntent { action, .. } => {
                        out.push(
                            format!("{action:?}")
                                .split([' ', '{'])
                                .next()
                                .unwrap_or_default()
                                .to_owned(),
                        );
                    }
                    Event::WriteFailed { .. } => out.push("failed".into()),
                    _ => {}
                }
            }
            out
        };

        // Moved, and flagged on the way: moved on the target, its flags set after.
        source.user_move("INBOX", &first, "Archive");
        let flagged = source.contents()["Archive"]
            .iter()
            .find(|(_, bytes, _)| **bytes == message(1))
            .map(|(id, _, _)| id.clone())
            .expect("moved");
        source.user_set_flags("Archive", &flagged, seen.clone().with(SystemFlag::Flagged));
        let before = log.events().len();
        run(&source, &target, &log, &clock, options)
            .await
            .expect("second run");
        same(&source, &target);
        assert_eq!(writes(&log.events()[before..]), ["Move", "SetFlags"]);

        // The target refuses to move: copied and deleted instead, and not a failure.
        target.set_moves_refused(true);
        source.user_move("INBOX", &second, "Archive");
        let before = log.events().len();
        run(&source, &target, &log, &clock, options)
            .await
            .expect("third run");
        same(&source, &target);
        assert_eq!(
            writes(&log.events()[before..]),
            ["Move", "failed", "Append", "Delete"]
        );
        let report = fold::<Report>(&log.events());
        let last = report.runs.last().expect("runs");
        assert_eq!(
            (last.failed, last.copied, last.deleted),
            (0, 1, 1),
            "{last:?}"
        );
        assert_eq!(report.runs.iter().map(|r| r.moved).sum::<u64>(), 1);
    });
}
