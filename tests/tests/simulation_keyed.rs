//! Deterministic simulation of migrations of items that change in place (events, tasks,
//! contacts) beside mail, against the in-memory store.
//!
//! Goal: the promises for keyed items hold whatever users do on either side between runs and
//! whatever goes wrong during them. Method: each seed builds a source with a calendar, a task
//! list, an address book and an INBOX, and a target that holds events and contacts (and, for
//! half the seeds, tasks). Between runs users create, edit (a third of the edits at the same
//! size, as 10:00 → 11:00) and delete items on the source, and edit, delete or create items
//! on the target behind ferry's back; runs meet injected faults (errors, throttling, replies
//! lost after the write committed, timeouts) and crash at random steps (a store dying, the
//! log refusing appends), each crash resumed by a new run replaying the log. Checked:
//! 1. after every run, no target item that changed behind ferry's back was overwritten or
//!    deleted, and no target collection holds two items with one key;
//! 2. after a final clean run, every keyed item's target content equals the source's latest
//!    version, unless the final run reported it as a conflict (exactly those whose target
//!    item changed behind ferry's back), or the target cannot hold its kind (reported as
//!    skipped); with `--delete-removed`, no item ferry wrote whose source is gone remains,
//!    unless it changed on the target; every message is on the target;
//! 3. the run's state equals a replay of its log.
//!
//! `FERRY_SIM_SEEDS=N` runs N seeds (default 2,000); `FERRY_SIM_SEED=S` runs one seed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_engine::event::RunOutcome;
use ferry_engine::journal::ContentKey;
use ferry_engine::{
    Clock, Config, Event, Flags, FolderKind, FolderSpec, Kind, MemoryLog, Quiet, Run, RunOptions,
    State, StopSignal,
};
use ferry_memory::{ChangeListings, Faults, MemoryStore};

/// What the seeds exercised, over all of them: (updates done, conflicts reported, keyed writes
/// settled after an interruption, conditional deletions done).
static EXERCISED: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

struct TickClock(std::sync::atomic::AtomicI64);

impl Clock for TickClock {
    fn now_ms(&self) -> i64 {
        self.0.fetch_add(1_000, std::sync::atomic::Ordering::SeqCst)
    }
}

/// The collections, their kinds and the kind of item each holds.
const COLLECTIONS: [(&str, FolderKind, Kind); 3] = [
    ("Calendars/Work", FolderKind::Calendar, Kind::Event),
    ("Tasks", FolderKind::TaskList, Kind::Task),
    ("Contacts", FolderKind::AddressBook, Kind::Contact),
];

struct World {
    rng: fastrand::Rng,
    key: ContentKey,
    source: MemoryStore,
    target: MemoryStore,
    log: MemoryLog,
    clock: TickClock,
    /// Target items changed (or put there) behind ferry's back: (folder, key) → their bytes.
    behind: BTreeMap<(String, String), Arc<Vec<u8>>>,
    /// Whether the target holds tasks.
    tasks: bool,
    next: u64,
}

impl World {
    fn new(seed: u64) -> World {
        let key = ContentKey::from_secret([9; 32]);
        World {
            rng: fastrand::Rng::with_seed(seed),
            log: MemoryLog::new(key.clone(), Vec::new()),
            key,
            source: MemoryStore::new("source", seed ^ 0x33),
            target: MemoryStore::new("target", seed ^ 0x44),
            clock: TickClock(std::sync::atomic::AtomicI64::new(1_767_225_600_000)),
            behind: BTreeMap::new(),
            tasks: false,
            next: 0,
        }
    }

    /// A document of `kind` with key `key`: `start` is the hour it says, so two versions may
    /// have the same size.
    fn document(&mut self, kind: Kind, key: &str, start: u8) -> Vec<u8> {
        self.next += 1;
        let filler = self.rng.usize(0..200);
        let mut text = match kind {
            Kind::Contact => format!("BEGIN:VCARD\r\nUID:{key}\r\nFN:Person {start:02}\r\n"),
            _ => format!(
                "BEGIN:VCALENDAR\r\nUID:{key}\r\nDTSTART:2026120{}T{start:02}0000Z\r\n",
                start % 10
            ),
        };
        text.extend(std::iter::repeat_n('x', filler));
        text.push_str("\r\nEND\r\n");
        text.into_bytes()
    }

    fn populate(&mut self) {
        self.tasks = self.rng.bool();
        let mut kinds = vec![Kind::Event, Kind::Contact];
        if self.tasks {
            kinds.push(Kind::Task);
        }
        self.source
            .set_kinds(vec![Kind::Event, Kind::Task, Kind::Contact]);
        self.target.set_kinds(kinds);
        for (path, folder_kind, kind) in COLLECTIONS {
            self.source.user_create_collection(
                path,
                FolderSpec {
                    display_name: Some(format!("{path} (shown)")),
                    color: Some("#336699".into()),
                    ..FolderSpec::of(folder_kind)
                },
            );
            for _ in 0..self.rng.usize(0..8) {
                self.create_on_source(path, kind);
            }
        }
        for _ in 0..self.rng.usize(0..6) {
            self.deliver_mail();
        }
    }

    fn create_on_source(&mut self, path: &str, kind: Kind) {
        let key = format!("uid-{}", self.rng.u32(..));
        let start = self.rng.u8(8..18);
        let bytes = self.document(kind, &key, start);
        self.source.user_put(path, &key, kind, bytes);
    }

    fn deliver_mail(&mut self) {
        self.next += 1;
        let bytes = format!("Message-ID: <{}@keyed-sim>\r\n\r\nhello", self.next).into_bytes();
        self.source.deliver("INBOX", bytes, Flags::new(), None);
    }

    /// What users do between runs, on both sides.
    fn mutate(&mut self) {
        for _ in 0..self.rng.usize(0..8) {
            let (path, _, kind) = COLLECTIONS[self.rng.usize(0..COLLECTIONS.len())];
            let on_source = self.source.keyed_contents(path);
            let on_target = self.target.keyed_contents(path);
            match self.rng.u8(0..10) {
                0 | 1 => self.create_on_source(path, kind),
                2..=4 => {
                    // An edit on the source; a third at the same size.
                    if let Some((key, old, _)) = pick(&mut self.rng, &on_source) {
                        let start = self.rng.u8(8..18);
                        let mut bytes = self.document(kind, &key, start);
                        if self.rng.u8(0..3) == 0 {
                            bytes = same_size_edit(&old);
                        }
                        self.source.user_put(path, &key, kind, bytes);
                    }
                }
                5 => {
                    if let Some((key, ..)) = pick(&mut self.rng, &on_source) {
                        self.source.user_delete_key(path, &key);
                    }
                }
                6 => {
                    // Someone edits the target item behind ferry's back.
                    if let Some((key, old, _)) = pick(&mut self.rng, &on_target) {
                        self.next += 1;
                        let bytes = target_edit(&old, self.next);
                        self.target.user_put(path, &key, kind, bytes.clone());
                        self.behind.insert((path.to_owned(), key), Arc::new(bytes));
                    }
                }
                7 => {
                    // Someone deletes a target item (resolving a conflict, or not).
                    if let Some((key, ..)) = pick(&mut self.rng, &on_target) {
                        self.target.user_delete_key(path, &key);
                        self.behind.remove(&(path.to_owned(), key));
                    }
                }
                8 => {
                    // Someone puts an item on the target under a key the source has.
                    let absent: Vec<_> = on_source
                        .iter()
                        .filter(|(key, ..)| on_target.iter().all(|(k, ..)| k != key))
                        .cloned()
                        .collect();
                    let present = self.target.contents().contains_key(path);
                    if let (Some((key, ..)), true) = (pick(&mut self.rng, &absent), present) {
                        let bytes = self.document(kind, &key, 7);
                        self.target.user_put(path, &key, kind, bytes.clone());
                        self.behind.insert((path.to_owned(), key), Arc::new(bytes));
                    }
                }
                _ => self.deliver_mail(),
            }
        }
    }

    fn faults(&mut self, crash: bool) -> Faults {
        let rate = |rng: &mut fastrand::Rng| {
            if rng.bool() {
                0.0
            } else {
                f64::from(rng.u8(0..10)) / 100.0
            }
        };
        Faults {
            error: rate(&mut self.rng),
            throttle: rate(&mut self.rng) / 2.0,
            timeout: rate(&mut self.rng) / 2.0,
            partial_write: rate(&mut self.rng),
            lost_reply: rate(&mut self.rng) * 2.0,
            crash_at_step: crash.then(|| 1 + self.rng.u64(0..60)),
            inner_throttle: rate(&mut self.rng),
        }
    }

    async fn run_once(&mut self, options: RunOptions) -> Result<(RunOutcome, Vec<Event>), String> {
        let before = self.log.events();
        let state = State::replay(&before);
        let history = before.iter().find_map(|event| match event {
            Event::RunStarted { source, target, .. } => Some((source.clone(), target.clone())),
            _ => None,
        });
        let config = Config {
            jobs: 1 + self.rng.usize(0..4),
            batch_max: 1 + self.rng.usize(0..20),
            seed: self.rng.u64(..),
            confirm_deletions: true,
            ..Config::default()
        };
        let mut run = Run::new(ferry_engine::RunContext {
            source: &self.source,
            target: &self.target,
            log: &self.log,
            state,
            options,
            config,
            clock: &self.clock,
            watcher: &Quiet,
            stop: StopSignal::new(),
            pacers: None,
        });
        let result = run
            .execute(history.as_ref().map(|(s, t)| (s.as_str(), t.as_str())))
            .await;
        let after = self.log.events();
        let new_events: Vec<Event> = after[before.len().min(after.len())..]
            .iter()
            .cloned()
            .flat_map(Event::flatten)
            .collect();
        tally(&before, &new_events);
        let summary = result.map_err(|error| error.to_string())?;
        if *run.state() != State::replay(&after) {
            return Err("the run's state differs from a replay of its log".into());
        }
        Ok((summary.outcome, new_events))
    }

    /// Invariant 1, after any run.
    fn check_untouched(&self) -> Result<(), String> {
        for ((path, key), bytes) in &self.behind {
            let there = self.target.keyed_contents(path);
            match there.iter().find(|(k, ..)| k == key) {
                Some((_, now, _)) if now == bytes => {}
                Some(_) => {
                    return Err(format!(
                        "{path}/{key}: changed behind ferry's back, then overwritten"
                    ));
                }
                None => {
                    return Err(format!(
                        "{path}/{key}: changed behind ferry's back, then deleted"
                    ));
                }
            }
        }
        for (path, ..) in COLLECTIONS {
            let mut keys = BTreeSet::new();
            for (key, ..) in self.target.keyed_contents(path) {
                if !keys.insert(key.clone()) {
                    return Err(format!("{path}: two items with key {key} on the target"));
                }
            }
        }
        Ok(())
    }
}

/// Counts what a run's events (`new`, after the log `before`) exercised into [`EXERCISED`].
fn tally(before: &[Event], new: &[Event]) {
    let pending: BTreeMap<u64, &ferry_engine::Action> = before
        .iter()
        .chain(new)
        .flat_map(|event| match event {
            Event::Batch(events) => events.iter().collect::<Vec<_>>(),
            single => vec![single],
        })
        .filter_map(|event| match event {
            Event::WriteIntent { op, action } => Some((*op, action)),
            _ => None,
        })
        .collect();
    let intended: BTreeSet<u64> = new
        .iter()
        .filter_map(|event| match event {
            Event::WriteIntent { op, .. } => Some(*op),
            _ => None,
        })
        .collect();
    for event in new {
        let slot = match event {
            Event::WriteStored { op, .. } if !intended.contains(op) => Some(2),
            Event::WriteStored { op, .. }
                if matches!(pending.get(op), Some(ferry_engine::Action::Update { .. })) =>
            {
                Some(0)
            }
            Event::Conflict { .. } => Some(1),
            Event::WriteDone { op, .. }
                if matches!(pending.get(op), Some(ferry_engine::Action::DeleteIf { .. })) =>
            {
                Some(3)
            }
            _ => None,
        };
        if let Some(slot) = slot {
            EXERCISED[slot].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Another text of the same size: one hour digit changed.
fn same_size_edit(old: &[u8]) -> Vec<u8> {
    let mut bytes = old.to_vec();
    let at = bytes
        .windows(2)
        .position(|w| w == b"T1" || w == b"T0" || w == b"on")
        .map_or(0, |at| at + 1);
    if let Some(byte) = bytes.get_mut(at) {
        *byte = if *byte == b'1' { b'0' } else { b'1' };
    }
    bytes
}

/// A user's edit on the target, of the same size: a lowercase letter where the source writes
/// digits, capitals or a space, so it never restores a version the source had (an edit that
/// restored ferry's content would leave nothing changed behind ferry's back).
fn target_edit(old: &[u8], n: u64) -> Vec<u8> {
    let mut bytes = old.to_vec();
    let at = bytes
        .windows(2)
        .position(|w| w[0] == b'T' && (w[1].is_ascii_digit() || w[1].is_ascii_uppercase()))
        .or_else(|| bytes.windows(2).position(|w| w == b"on"))
        .map_or(0, |at| at + 1);
    if let Some(byte) = bytes.get_mut(at) {
        let mut letter = b'a' + u8::try_from(n % 26).unwrap_or(0);
        if letter == *byte {
            letter = if letter == b'z' { b'a' } else { letter + 1 };
        }
        *byte = letter;
    }
    bytes
}

fn pick<T: Clone>(rng: &mut fastrand::Rng, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[rng.usize(0..items.len())].clone())
}

fn simulate(seed: u64) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let mut world = World::new(seed);
        let tokens = world.rng.bool();
        world.source.set_change_tokens(tokens);
        world.target.set_change_tokens(world.rng.bool());
        world.source.set_change_listings(if world.rng.bool() {
            ChangeListings::Changes
        } else {
            ChangeListings::Full
        });
        // A sixth of the seeds migrate between stores without versions (no ETags): every item
        // is read again on every run, and a write is preceded by a look.
        world.source.set_versions(world.rng.u8(0..6) != 0);
        world.target.set_versions(world.rng.u8(0..6) != 0);
        world.populate();
        let runs = 1 + world.rng.usize(0..4);
        for run in 0..runs {
            if run > 0 {
                world.mutate();
            }
            let options = RunOptions {
                delete_removed: world.rng.bool(),
                full: world.rng.u8(0..6) == 0,
                verify_target: world.rng.u8(0..6) == 0,
                dry_run: false,
            };
            for attempt in 0..4 {
                let crash = attempt < 3 && world.rng.u8(0..3) == 0;
                let log_crash = crash && world.rng.bool();
                let source_crash = crash && !log_crash && world.rng.bool();
                let source_faults = world.faults(source_crash);
                let target_faults = world.faults(crash && !log_crash);
                world.source.set_faults(source_faults);
                world.target.set_faults(target_faults);
                if log_crash {
                    let at = world.log.events().len() + 1 + world.rng.usize(0..40);
                    world.log.crash_at(at);
                }
                let result = world.run_once(options).await;
                world.log.crash_at(usize::MAX);
                world.source.set_faults(Faults::default());
                world.target.set_faults(Faults::default());
                if let Err(problem) = world.check_untouched() {
                    trace(&world);
                    return Err(problem);
                }
                match result {
                    Ok(_) => break,
                    Err(_) if crash || attempt < 3 => {}
                    // A run may end on a store that keeps failing (a write in doubt that cannot
                    // be looked at is never written again blind); the next run resumes it.
                    Err(error) if error.contains("temporary failure") => {}
                    Err(error) => return Err(format!("run {run} failed without a crash: {error}")),
                }
            }
        }

        // The final clean run (twice: the second must find nothing new to do).
        let delete_removed = world.rng.bool();
        let options = RunOptions {
            delete_removed,
            ..RunOptions::default()
        };
        let (_, _) = world
            .run_once(options)
            .await
            .map_err(|error| format!("final clean run failed: {error}"))?;
        let (outcome, events) = world
            .run_once(options)
            .await
            .map_err(|error| format!("second clean run failed: {error}"))?;
        let result = world
            .check_untouched()
            .and_then(|()| check_final(&world, delete_removed, outcome, &events));
        if result.is_err() {
            trace(&world);
        }
        result
    })
}

/// With `FERRY_SIM_TRACE`, the log and both sides, for a failing seed.
fn trace(world: &World) {
    if std::env::var_os("FERRY_SIM_TRACE").is_none() {
        return;
    }
    for event in world.log.events().into_iter().flat_map(Event::flatten) {
        eprintln!("{event:?}");
    }
    for (path, ..) in COLLECTIONS {
        for (key, bytes, version) in world.source.keyed_contents(path) {
            eprintln!("source {path} {key} {version} {}", world.key.hash(&bytes));
        }
        for (key, bytes, version) in world.target.keyed_contents(path) {
            eprintln!("target {path} {key} {version} {}", world.key.hash(&bytes));
        }
    }
}

/// Invariant 2, after the final clean run (whose events are `events`).
fn check_final(
    world: &World,
    delete_removed: bool,
    outcome: RunOutcome,
    events: &[Event],
) -> Result<(), String> {
    let conflicts: BTreeSet<(String, String)> = events
        .iter()
        .filter_map(|event| match event {
            Event::Conflict { folder, id, .. } => Some((folder.clone(), id.0.clone())),
            _ => None,
        })
        .collect();
    let writes = events
        .iter()
        .filter(|event| matches!(event, Event::WriteIntent { .. }))
        .count();
    if writes > 0 {
        return Err(format!("a second clean run still wrote {writes} times"));
    }
    let target_ids = |path: &str| -> BTreeMap<String, String> {
        // key → target id, from the target's own listing order (ids as "validity:uid").
        world
            .target
            .contents()
            .get(path)
            .map(|items| {
                let keyed = world.target.keyed_contents(path);
                items
                    .iter()
                    .zip(keyed)
                    .map(|((id, ..), (key, ..))| (key, id.0.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut skipped_kinds = 0;
    let mut owed = 0;
    for (path, _, kind) in COLLECTIONS {
        let source = world.source.keyed_contents(path);
        let target = world.target.keyed_contents(path);
        let ids = target_ids(path);
        // Every conflict reported is an item changed behind ferry's back.
        for (folder, id) in &conflicts {
            if folder != path {
                continue;
            }
            let key = ids.iter().find(|(_, i)| *i == id).map(|(k, _)| k.clone());
            if !key.is_some_and(|key| world.behind.contains_key(&(path.to_owned(), key))) {
                return Err(format!(
                    "{path}/{id}: reported as a conflict, but nobody changed it behind ferry's back"
                ));
            }
        }
        if kind == Kind::Task && !world.tasks {
            if !target.is_empty() {
                return Err(format!(
                    "{path}: the target cannot hold tasks, yet holds some"
                ));
            }
            skipped_kinds += source.len();
            continue;
        }
        for (key, bytes, _) in &source {
            let on_target = target.iter().find(|(k, ..)| k == key);
            let behind = world.behind.get(&(path.to_owned(), key.clone()));
            match (on_target, behind) {
                (Some((_, there, _)), _) if there == bytes => {}
                (Some(_), Some(_)) => {
                    owed += 1;
                    let id = ids.get(key).cloned().unwrap_or_default();
                    if !conflicts.contains(&(path.to_owned(), id)) {
                        return Err(format!(
                            "{path}/{key}: differs from the source, changed behind ferry's back, but not reported as a conflict"
                        ));
                    }
                }
                (Some(_), None) => {
                    return Err(format!(
                        "{path}/{key}: the target holds another version than the source's latest"
                    ));
                }
                (None, _) => return Err(format!("{path}/{key}: not on the target")),
            }
        }
        if delete_removed {
            for (key, ..) in &target {
                let on_source = source.iter().any(|(k, ..)| k == key);
                let behind = world.behind.contains_key(&(path.to_owned(), key.clone()));
                if !on_source && !behind {
                    return Err(format!(
                        "{path}/{key}: gone from the source, still on the target after --delete-removed"
                    ));
                }
            }
        }
    }
    // Every message is on the target.
    let mail = |store: &MemoryStore| -> BTreeSet<_> {
        store
            .contents()
            .get("INBOX")
            .map(|items| items.iter().map(|(_, b, _)| world.key.hash(b)).collect())
            .unwrap_or_default()
    };
    if !mail(&world.source).is_subset(&mail(&world.target)) {
        return Err("a message is missing on the target".into());
    }
    let clean = owed == 0 && skipped_kinds == 0 && conflicts.is_empty();
    match (clean, outcome) {
        (true, RunOutcome::Completed) | (false, RunOutcome::CompletedWithFailures) => Ok(()),
        _ => Err(format!(
            "final run ended {outcome:?} with {} conflicts reported, {owed} source items owed, {skipped_kinds} items of a kind the target cannot hold",
            conflicts.len()
        )),
    }
}

#[test]
fn simulated_keyed_migrations_keep_the_promises() {
    let (seeds, failures) = ferry_tests::seeds::run("simulation_keyed", simulate);
    let count = |slot: usize| EXERCISED[slot].load(Ordering::Relaxed);
    eprintln!(
        "{} seeds: {} updates in place, {} conflicts reported, {} keyed writes settled after an interruption, {} conditional deletions",
        seeds,
        count(0),
        count(1),
        count(2),
        count(3)
    );
    ferry_tests::seeds::assert_none_failed(seeds, &failures);
}
