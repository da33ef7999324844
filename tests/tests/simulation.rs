//! Deterministic simulation of whole migrations against the in-memory store.
//!
//! Goal: invariants 1–3 of the design hold whatever happens between and during runs. Method:
//! each seed builds a random source mailbox (folders with non-ASCII names, identical copies of
//! messages) and a target holding some foreign messages, then runs ferry several times with
//! random options while users deliver, delete, re-flag, move, rename and recreate folders
//! between runs. Runs are hit by injected faults (errors, timeouts, throttling, partial writes,
//! lost replies) and crash at random steps (the log refusing appends, or a store dying); each
//! crash is resumed by replaying the log into a new run. A final clean run must leave:
//! 1. every source message on the target, in its folder, with its flags;
//! 2. no content in any target folder more often than the source ever had it there (no
//!    duplicate), foreign messages untouched, and `--delete-removed` never deleting anything
//!    ferry did not write;
//! 3. the run's own state equal to a fresh replay of the log.
//!
//! `FERRY_SIM_SEEDS=N` runs N seeds (default 2,000); `FERRY_SIM_SEED=S` runs one seed.

use std::collections::{BTreeMap, BTreeSet};

use ferry_engine::event::{Action, RunOutcome};
use ferry_engine::journal::{ContentHash, ContentKey};
use ferry_engine::projection::deletions::Deletions;
use ferry_engine::projection::{Projection, fold};
use ferry_engine::{
    Clock, Config, Event, Flags, MemoryLog, Quiet, Run, RunOptions, State, StopSignal, SystemFlag,
};
use ferry_memory::{ChangeListings, Faults, MemoryStore};

/// A clock that ticks one second per reading, from a fixed start.
struct TickClock(std::sync::atomic::AtomicI64);

impl Clock for TickClock {
    fn now_ms(&self) -> i64 {
        self.0.fetch_add(1_000, std::sync::atomic::Ordering::SeqCst)
    }
}

const FOLDER_NAMES: [&str; 8] = [
    "INBOX",
    "Sent",
    "Archive/2025",
    "Entwürfe",
    "Проекты",
    "Work/Ærø",
    "Lists",
    "Archive",
];

struct World {
    rng: fastrand::Rng,
    key: ContentKey,
    source: MemoryStore,
    target: MemoryStore,
    log: MemoryLog,
    clock: TickClock,
    /// Most copies of each content each folder had at any run start.
    history: BTreeMap<String, BTreeMap<ContentHash, usize>>,
    foreign: BTreeSet<ContentHash>,
    next_message: u64,
    /// Deletions past the mass-deletion guard are confirmed (the final clean run's, and a
    /// random half of the others).
    confirm_deletions: bool,
}

impl World {
    fn new(seed: u64) -> World {
        let key = ContentKey::from_secret([7; 32]);
        World {
            rng: fastrand::Rng::with_seed(seed),
            log: MemoryLog::new(key.clone(), Vec::new()),
            key,
            source: MemoryStore::new("source", seed ^ 0x51),
            target: MemoryStore::new("target", seed ^ 0x7a),
            clock: TickClock(std::sync::atomic::AtomicI64::new(1_767_225_600_000)),
            history: BTreeMap::new(),
            foreign: BTreeSet::new(),
            next_message: 0,
            confirm_deletions: false,
        }
    }

    fn message(&mut self) -> Vec<u8> {
        self.next_message += 1;
        let body_len = self.rng.usize(0..400);
        let mut bytes = format!(
            "Message-ID: <{}@sim>\r\nSubject: message {}\r\n\r\n",
            self.next_message, self.next_message
        )
        .into_bytes();
        bytes.extend((0..body_len).map(|_| self.rng.alphanumeric() as u8));
        bytes
    }

    fn flags(&mut self) -> Flags {
        let mut flags = Flags::new();
        for flag in SystemFlag::ALL {
            if flag != SystemFlag::Deleted && self.rng.u8(0..4) == 0 {
                flags.set(flag, true);
            }
        }
        if self.rng.u8(0..6) == 0 {
            flags.add_keyword("$Forwarded");
        }
        if self.rng.u8(0..8) == 0 {
            flags.add_keyword("Projekt-α");
        }
        flags
    }

    fn random_folder(&mut self) -> String {
        let folders: Vec<String> = self.source.contents().into_keys().collect();
        folders[self.rng.usize(0..folders.len())].clone()
    }

    fn populate(&mut self) {
        let folders = 1 + self.rng.usize(0..4);
        for name in FOLDER_NAMES.iter().take(folders) {
            self.source.user_create_folder(name);
            for _ in 0..self.rng.usize(0..25) {
                self.deliver_new(name);
            }
        }
        // Foreign messages on the target: someone else put them there.
        for _ in 0..self.rng.usize(0..4) {
            let folder = FOLDER_NAMES[self.rng.usize(0..3)];
            let mut bytes = self.message();
            bytes.extend_from_slice(b"\r\nforeign");
            self.foreign.insert(self.key.hash(&bytes));
            self.target.deliver(folder, bytes, Flags::new(), None);
        }
    }

    fn deliver_new(&mut self, folder: &str) {
        let bytes = self.message();
        let flags = self.flags();
        let copies = if self.rng.u8(0..10) == 0 { 2 } else { 1 };
        for _ in 0..copies {
            self.source.deliver(
                folder,
                bytes.clone(),
                flags.clone(),
                Some(1_700_000_000_000),
            );
        }
    }

    /// What users do between runs.
    fn mutate(&mut self) {
        for _ in 0..self.rng.usize(0..8) {
            let folder = self.random_folder();
            let items = self.source.contents().remove(&folder).unwrap_or_default();
            match self.rng.u8(0..10) {
                0..=2 => self.deliver_new(&folder),
                3 => {
                    if let Some((id, ..)) = pick(&mut self.rng, &items) {
                        self.source.user_delete(&folder, &id);
                    }
                }
                4 | 5 => {
                    if let Some((id, ..)) = pick(&mut self.rng, &items) {
                        let flags = self.flags();
                        self.source.user_set_flags(&folder, &id, flags);
                    }
                }
                6 => {
                    if let Some((id, ..)) = pick(&mut self.rng, &items) {
                        let to = FOLDER_NAMES[self.rng.usize(0..FOLDER_NAMES.len())];
                        self.source.user_move(&folder, &id, to);
                    }
                }
                7 => {
                    let to = format!("{folder}-renamed{}", self.rng.u8(0..3));
                    if self.source.user_rename(&folder, &to) {
                        // What the target folder held travels with it when ferry renames it.
                        let old = self.history.get(&folder).cloned().unwrap_or_default();
                        let history = self.history.entry(to).or_default();
                        for (content, count) in old {
                            let entry = history.entry(content).or_default();
                            *entry = (*entry).max(count);
                        }
                    }
                }
                8 => {
                    if self.rng.bool() {
                        self.source.user_recreate(&folder);
                    } else {
                        // Someone deletes a folder on the target behind ferry's back.
                        let on_target: Vec<String> = self.target.contents().into_keys().collect();
                        if let Some(victim) = pick(&mut self.rng, &on_target) {
                            let foreign_inside = self.target.contents()[&victim]
                                .iter()
                                .any(|(_, bytes, _)| self.foreign.contains(&self.key.hash(bytes)));
                            if !foreign_inside {
                                self.target.user_delete_folder(&victim);
                            }
                        }
                    }
                }
                _ => {
                    // A second copy of an existing message.
                    if let Some((_, bytes, flags)) = pick(&mut self.rng, &items) {
                        self.source
                            .deliver(&folder, bytes.as_ref().clone(), flags, None);
                    }
                }
            }
        }
    }

    fn remember_source(&mut self) {
        for (folder, items) in self.source.contents() {
            let mut counts: BTreeMap<ContentHash, usize> = BTreeMap::new();
            for (_, bytes, _) in &items {
                *counts.entry(self.key.hash(bytes)).or_default() += 1;
            }
            let history = self.history.entry(folder).or_default();
            for (content, count) in counts {
                let entry = history.entry(content).or_default();
                *entry = (*entry).max(count);
            }
        }
    }

    fn faults(&mut self, crash: bool) -> Faults {
        let rate = |rng: &mut fastrand::Rng| {
            if rng.bool() {
                0.0
            } else {
                f64::from(rng.u8(0..8)) / 100.0
            }
        };
        Faults {
            error: rate(&mut self.rng),
            throttle: rate(&mut self.rng) / 2.0,
            timeout: rate(&mut self.rng) / 2.0,
            partial_write: rate(&mut self.rng),
            lost_reply: rate(&mut self.rng),
            crash_at_step: crash.then(|| 1 + self.rng.u64(0..120)),
            inner_throttle: rate(&mut self.rng),
        }
    }

    async fn run_once(&mut self, options: RunOptions) -> Result<RunOutcome, String> {
        let events = self.log.events();
        let state = State::replay(&events);
        let history = events.iter().find_map(|event| match event {
            Event::RunStarted { source, target, .. } => Some((source.clone(), target.clone())),
            _ => None,
        });
        let config = Config {
            jobs: 1 + self.rng.usize(0..4),
            batch_max: 1 + self.rng.usize(0..40),
            seed: self.rng.u64(..),
            confirm_deletions: self.confirm_deletions || self.rng.bool(),
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
        // A folder ferry renamed on the target carries what it held: the source history of
        // the old name counts for the new one (as for a rename made by the user). Without
        // --delete-removed, copies whose source was deleted meanwhile stay in it.
        let new_events = self.log.events();
        let mut renames = BTreeMap::new();
        for event in &new_events[events.len().min(new_events.len())..] {
            match event {
                Event::WriteIntent {
                    op,
                    action: Action::RenameFolder { from, to },
                } => {
                    renames.insert(*op, (from.clone(), to.clone()));
                }
                Event::WriteDone { op, .. } => {
                    if let Some((from, to)) = renames.remove(op) {
                        let old = self.history.get(&from).cloned().unwrap_or_default();
                        let history = self.history.entry(to).or_default();
                        for (content, count) in old {
                            let entry = history.entry(content).or_default();
                            *entry = (*entry).max(count);
                        }
                    }
                }
                _ => {}
            }
        }
        let summary = result.map_err(|error| error.to_string())?;
        // Invariant 3: the run's state is exactly what replaying its log gives.
        let replayed = State::replay(&self.log.events());
        assert!(
            *run.state() == replayed,
            "the run's state differs from a replay of its log"
        );
        Ok(summary.outcome)
    }

    fn random_options(&mut self) -> RunOptions {
        RunOptions {
            verify_target: self.rng.u8(0..4) == 0,
            full: self.rng.u8(0..5) == 0,
            delete_removed: self.rng.bool(),
            dry_run: false,
        }
    }
}

fn pick<T: Clone>(rng: &mut fastrand::Rng, items: &[T]) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        Some(items[rng.usize(0..items.len())].clone())
    }
}

fn simulate(seed: u64) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let mut world = World::new(seed);
        // Half the seeds list with change tokens (as CONDSTORE, Graph delta or Maildir stamps).
        let tokens = world.rng.bool();
        world.source.set_change_tokens(tokens);
        // Of those, two thirds list a changed folder as changes (as QRESYNC), and a third of
        // these with an unusable one (flags of an item never seen) that must be relisted.
        world
            .source
            .set_change_listings(match world.rng.usize(0..6) {
                0 | 1 => ChangeListings::Full,
                2..=4 => ChangeListings::Changes,
                _ => ChangeListings::ChangesWithPhantom,
            });
        // Half the seeds store several messages per call (as IMAP MULTIAPPEND).
        world.target.set_append_many(world.rng.bool());
        // Half the seeds move items on the target itself (as IMAP MOVE) under --delete-removed.
        world.target.set_moves(world.rng.bool());
        world.populate();
        let runs = 1 + world.rng.usize(0..4);
        let mut delete_removed_ever = false;
        for run in 0..runs {
            if run > 0 {
                world.mutate();
            }
            let options = world.random_options();
            delete_removed_ever |= options.delete_removed;
            // A run may crash several times; each time the next attempt resumes from the log.
            for attempt in 0..4 {
                world.remember_source();
                let crash = attempt < 3 && world.rng.u8(0..3) == 0;
                let log_crash = crash && world.rng.bool();
                let source_crash = crash && !log_crash && world.rng.bool();
                let source_faults = world.faults(source_crash);
                let target_faults = world.faults(crash && !log_crash);
                world.source.set_faults(source_faults);
                world.target.set_faults(target_faults);
                if log_crash {
                    let at = world.log.events().len() + 1 + world.rng.usize(0..80);
                    world.log.crash_at(at);
                }
                let result = world.run_once(options).await;
                world.log.crash_at(usize::MAX);
                match result {
                    Ok(_) => break,
                    Err(_) if crash || attempt < 3 => {
                        if world.rng.u8(0..3) == 0 {
                            world.mutate();
                        }
                    }
                    Err(error) => return Err(format!("run {run} failed without a crash: {error}")),
                }
            }
        }

        // The final clean run.
        world.confirm_deletions = true;
        world.source.set_faults(Faults::default());
        world.target.set_faults(Faults::default());
        world.remember_source();
        let delete_removed = world.rng.bool();
        let options = RunOptions {
            delete_removed,
            ..world.random_options()
        };
        let outcome = world
            .run_once(options)
            .await
            .map_err(|error| format!("final clean run failed: {error}"))?;
        if outcome != RunOutcome::Completed {
            return Err(format!("final clean run ended {outcome:?}"));
        }
        let result = check(&world, delete_removed, delete_removed_ever);
        if result.is_err() && std::env::var_os("FERRY_SIM_TRACE").is_some() {
            for event in world.log.events() {
                eprintln!("{event:?}");
            }
            eprintln!(
                "source: {:#?}",
                world
                    .source
                    .contents()
                    .iter()
                    .map(|(f, items)| (
                        f.clone(),
                        items
                            .iter()
                            .map(|(id, b, _)| (id.clone(), world.key.hash(b).to_string()))
                            .collect::<Vec<_>>()
                    ))
                    .collect::<Vec<_>>()
            );
        }
        result
    })
}

fn counts(
    key: &ContentKey,
    store: &MemoryStore,
) -> BTreeMap<String, BTreeMap<ContentHash, Vec<Flags>>> {
    store
        .contents()
        .into_iter()
        .map(|(folder, items)| {
            let mut by_content: BTreeMap<ContentHash, Vec<Flags>> = BTreeMap::new();
            for (_, bytes, flags) in items {
                by_content.entry(key.hash(&bytes)).or_default().push(flags);
            }
            for flags in by_content.values_mut() {
                flags.sort();
            }
            (folder, by_content)
        })
        .collect()
}

fn check(world: &World, delete_removed: bool, delete_removed_ever: bool) -> Result<(), String> {
    let source = counts(&world.key, &world.source);
    let target = counts(&world.key, &world.target);
    let empty = BTreeMap::new();
    // Invariant 1: nothing missing, flags equal.
    for (folder, contents) in &source {
        let on_target = target.get(folder).unwrap_or(&empty);
        for (content, flags) in contents {
            let there = on_target.get(content).map(Vec::len).unwrap_or(0);
            if there < flags.len() {
                return Err(format!(
                    "{folder}: content {content} has {} copies on the source, {there} on the target",
                    flags.len()
                ));
            }
            if there == flags.len() && on_target.get(content) != Some(flags) {
                return Err(format!(
                    "{folder}: content {content} flags differ: source {flags:?}, target {:?}",
                    on_target.get(content)
                ));
            }
        }
    }
    // Invariant 2: no duplicates, foreign messages untouched.
    for (folder, contents) in &target {
        let history = world.history.get(folder);
        for (content, flags) in contents {
            if world.foreign.contains(content) {
                if flags.len() != 1 {
                    return Err(format!("{folder}: foreign message {content} touched"));
                }
                continue;
            }
            let most = history.and_then(|h| h.get(content)).copied().unwrap_or(0);
            if flags.len() > most {
                return Err(format!(
                    "{folder}: content {content} {} times on the target, at most {most} on the source",
                    flags.len()
                ));
            }
        }
    }
    // Foreign messages may travel with a renamed folder, but stay exactly once.
    for content in &world.foreign {
        let there: usize = target
            .values()
            .filter_map(|c| c.get(content))
            .map(Vec::len)
            .sum();
        if there != 1 {
            return Err(format!(
                "foreign message {content} is on the target {there} times"
            ));
        }
    }
    // --delete-removed: the target holds exactly the source, plus foreign messages.
    if delete_removed {
        for (folder, contents) in &target {
            for (content, flags) in contents {
                if world.foreign.contains(content) {
                    continue;
                }
                let on_source = source
                    .get(folder)
                    .and_then(|c| c.get(content))
                    .map(Vec::len);
                if on_source != Some(flags.len()) {
                    return Err(format!(
                        "{folder}: content {content} {} times on the target after --delete-removed, {on_source:?} on the source",
                        flags.len()
                    ));
                }
            }
        }
    }
    let deletions: Deletions = fold(&world.log.events());
    if let Some(foreign) = deletions.of_foreign_items().next() {
        return Err(format!("deleted an item ferry did not write: {foreign:?}"));
    }
    if !delete_removed_ever && !delete_removed && !deletions.done.is_empty() {
        return Err("deleted items without --delete-removed".into());
    }
    if let Some(foreign) = deletions.of_foreign_folders().next() {
        return Err(format!(
            "deleted a folder ferry did not create: {foreign:?}"
        ));
    }
    if !delete_removed_ever && !delete_removed && !deletions.folders.is_empty() {
        return Err("deleted folders without --delete-removed".into());
    }
    // Invariant 3 again, across two independent replays.
    let events = world.log.events();
    let mut a = State::default();
    for event in &events {
        a.apply(event);
    }
    if a != State::replay(&events) {
        return Err("two replays of the same log differ".into());
    }
    Ok(())
}

#[test]
fn simulated_migrations_keep_the_invariants() {
    let (seeds, failures) = ferry_tests::seeds::run("simulation", simulate);
    ferry_tests::seeds::assert_none_failed(seeds, &failures);
}
