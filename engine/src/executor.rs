//! The executor: one run. It settles writes left in doubt by an earlier crash, observes the
//! source (reading only items it has not seen), looks at target folders it has not seen, plans
//! the delta, and carries it out in batches: a batch's intents are group-committed before any of
//! its writes start, the writes run with bounded concurrency and retries, the target is flushed,
//! and the outcomes are group-committed. Every event is recorded before the state depends on it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use futures::StreamExt as _;
use tokio::sync::Semaphore;

use crate::body::{Body, read_back, resident_bytes};
use crate::event::{
    Action, ContentHash, Event, FailureClass, Millis, NativeId, OpId, RunId, RunOptions,
    RunOutcome, Side,
};
use crate::log::{EventLog, LogError};
use crate::projection::Projection;
use crate::projection::delta::{self, Delta};
use crate::projection::source::SourceState;
use crate::projection::target::TargetState;
use crate::store::{AppendProbe, FolderInfo, Listing, Store, StoreError};

mod folders;
mod halt;
mod observe;

/// The two projections the planner needs, folded together. Serializable only for checkpoints
/// (see [`crate::checkpoint`]), which are caches, never records.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// The source as last seen.
    pub source: SourceState,
    /// The target as ferry knows it.
    pub target: TargetState,
}

impl State {
    /// Folds a journal's events.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> State {
        let mut state = State::default();
        for event in events {
            state.apply(event);
        }
        state
    }
}

impl Projection for State {
    fn apply(&mut self, event: &Event) {
        self.source.apply(event);
        self.target.apply(event);
    }
}

/// The executor's clock; projections never read one.
pub trait Clock: Send + Sync {
    /// Now, in ms since the Unix epoch.
    fn now_ms(&self) -> Millis;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// What the executor tells whoever watches (the CLI's progress display).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Settling writes left in doubt.
    Resolving(usize),
    /// Listing a folder on one side.
    Listing(Side, String),
    /// The plan is made.
    Planned {
        /// Messages to copy.
        copies: usize,
        /// Their bytes.
        bytes: u64,
        /// Other writes.
        other: usize,
    },
    /// A message was copied.
    Copied(u64),
    /// A write other than a copy finished.
    Wrote,
    /// A side throttled; ferry waits.
    Throttled(Side, u64),
    /// An item failed; the run goes on.
    ItemFailed(String),
}

/// Receives [`Note`]s.
pub trait Watcher: Send + Sync {
    /// Called as the run goes.
    fn note(&self, note: Note);
}

/// A watcher that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Watcher for Quiet {
    fn note(&self, _note: Note) {}
}

/// Bounds and knobs of a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Writes (and reads) in flight at once.
    pub jobs: usize,
    /// Writes per batch: one group commit of intents and one of outcomes per batch, and the
    /// items of a chunk read ahead of its copies (within half the in-flight byte budget). A
    /// batch waits for its last reply before the next one's writes go out, so over a slow link
    /// each batch costs a round trip: 512 copies the 5,000-message sample over 25 ms of delay
    /// in 4.1 s where 256 took 4.5–4.6 s, for 6 MB more peak memory (35 MB). The two fsyncs stay
    /// far under 1% of a batch's time, and a crash loses at most one batch of work.
    pub batch_max: usize,
    /// Attempts of one store call before it counts as failed.
    pub retry_count_max: u32,
    /// Waits after being throttled before giving up on one call.
    pub throttle_count_max: u32,
    /// First backoff; doubles per attempt, with full jitter.
    pub backoff_base_ms: u64,
    /// Longest backoff.
    pub backoff_max_ms: u64,
    /// Longest a single store call may take before it counts as a transient failure.
    pub call_timeout_ms: u64,
    /// Message bytes held in memory at once across all in-flight copies. A large message
    /// counts what it holds: the stores spool it and pass it in pieces
    /// ([`crate::body::resident_bytes`]).
    pub inflight_bytes_max: u64,
    /// Seed for backoff jitter.
    pub seed: u64,
    /// Carry out deletions even when they are more than the mass-deletion guard allows
    /// (`--confirm-deletions`). Not a [`RunOptions`] field: those are journaled with every run.
    pub confirm_deletions: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            jobs: 4,
            batch_max: 512,
            retry_count_max: 5,
            throttle_count_max: 20,
            backoff_base_ms: 200,
            backoff_max_ms: 10_000,
            call_timeout_ms: 120_000,
            inflight_bytes_max: 16 << 20,
            seed: 0x5eed,
            confirm_deletions: false,
        }
    }
}

/// Asks a run to pause: no new work starts, in-flight writes finish and are journaled.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// A signal not raised.
    pub fn new() -> StopSignal {
        StopSignal::default()
    }

    /// Raises it.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether it is raised.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The journal refused an append: nothing more may happen.
    #[error("recording to the journal failed")]
    Log(#[from] LogError),
    /// One side is unreachable or unusable.
    #[error("the {side:?} store failed: {error}")]
    Store {
        /// Which side.
        side: Side,
        /// What happened.
        error: StoreError,
    },
    /// The journal belongs to another migration.
    #[error(
        "this journal belongs to the migration {source_uri} → {target_uri}; use another --journal for {given_source} → {given_target}"
    )]
    OtherPair {
        /// The journal's source.
        source_uri: String,
        /// The journal's target.
        target_uri: String,
        /// The source given.
        given_source: String,
        /// The target given.
        given_target: String,
    },
}

impl RunError {
    /// The error for a store failure on `side` that ends the run.
    fn on(side: Side) -> impl Fn(StoreError) -> RunError + Copy {
        move |error| RunError::Store { side, error }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// Its number (`None` for a dry run, which records nothing).
    pub run: Option<RunId>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// The plan it carried out (or would have, for a dry run).
    pub delta: Delta,
    /// In-doubt writes found on the target.
    pub resolved_done: usize,
    /// In-doubt writes found never to have landed.
    pub resolved_not_applied: usize,
    /// Writes that failed.
    pub failed: usize,
    /// What the run wrote.
    pub counts: Counts,
    /// Source items that were on the target already before this run (copied by an earlier run
    /// or put there by someone else).
    pub already: u64,
    /// Deletions held back by the mass-deletion guard, waiting for `--confirm-deletions`.
    pub held: Option<crate::projection::guard::Held>,
}

/// What a run wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages copied.
    pub copied: u64,
    /// Their bytes.
    pub copied_bytes: u64,
    /// Flag updates.
    pub flags_updated: u64,
    /// Deletions.
    pub deleted: u64,
    /// Items moved between target folders on the target.
    pub moved: u64,
    /// Folders created or renamed.
    pub folders: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.copied += other.copied;
        self.copied_bytes += other.copied_bytes;
        self.flags_updated += other.flags_updated;
        self.deleted += other.deleted;
        self.moved += other.moved;
        self.folders += other.folders;
    }
}

/// Bytes of source items read while observing, kept so the copy that follows at once does not
/// read them again, by (source folder, id).
type Prefetched = Mutex<BTreeMap<(String, NativeId), Body>>;

/// An item's id and bytes, kept after reading.
type Kept = (NativeId, Body);

/// How one write ended: the target id it made, if any, or how and why it failed.
type WriteResult = Result<Option<NativeId>, (FailureClass, String)>;

/// One run of a migration.
pub struct Run<'a> {
    source: &'a dyn Store,
    target: &'a dyn Store,
    log: &'a dyn EventLog,
    state: State,
    options: RunOptions,
    config: Config,
    clock: &'a dyn Clock,
    watcher: &'a dyn Watcher,
    stop: StopSignal,
    rng: Mutex<fastrand::Rng>,
    /// Folders that could not be listed in this run.
    folder_problems: usize,
    /// See [`Prefetched`].
    prefetched: Prefetched,
    /// What copies made while observing wrote: (failed, paused, counts). Paused is also set
    /// when a stop left folders unlisted or items unread.
    ahead: (usize, bool, Counts),
    /// Observations folded into the state, to be journaled with the next record.
    deferred: Vec<Event>,
    /// Contents the plan deletes from some target folder, when the target can move items:
    /// a copy of one of them waits for the plan, which may move the old copy instead.
    movable: BTreeSet<ContentHash>,
    /// Target folders this run wrote to: listed again at its end, so their change tokens
    /// include ferry's own writes (see `observe`).
    touched: BTreeSet<String>,
    /// Whether the run must end before its plan is done (see `halt`).
    halt: halt::Halt,
}

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("source", &self.source.describe())
            .field("target", &self.target.describe())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The parts of a run that in-flight writes share.
struct Worker<'a> {
    source: &'a dyn Store,
    target: &'a dyn Store,
    config: &'a Config,
    clock: &'a dyn Clock,
    watcher: &'a dyn Watcher,
    rng: &'a Mutex<fastrand::Rng>,
    key: &'a ferry_journal::ContentKey,
    bytes: Semaphore,
    /// What ferry knows is on the target: an in-doubt lookup never takes one of these ids.
    known: &'a TargetState,
    /// Target ids claimed by writes of this batch.
    claimed: Mutex<BTreeSet<(String, NativeId)>>,
    prefetched: &'a Prefetched,
    /// Whether the run is ending (see `halt`).
    halt: &'a halt::Halt,
}

impl<'a> Worker<'a> {
    /// A worker with its own in-flight byte budget and no target ids claimed yet.
    #[allow(clippy::too_many_arguments)]
    fn new(
        (source, target): (&'a dyn Store, &'a dyn Store),
        config: &'a Config,
        (clock, watcher): (&'a dyn Clock, &'a dyn Watcher),
        rng: &'a Mutex<fastrand::Rng>,
        key: &'a ferry_journal::ContentKey,
        known: &'a TargetState,
        prefetched: &'a Prefetched,
        halt: &'a halt::Halt,
    ) -> Worker<'a> {
        Worker {
            source,
            target,
            config,
            clock,
            watcher,
            rng,
            key,
            bytes: Semaphore::new(permits_for(config)),
            known,
            claimed: Mutex::new(BTreeSet::new()),
            prefetched,
            halt,
        }
    }
}

impl<'a> Run<'a> {
    /// Prepares a run over `events` already replayed into `state`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: &'a dyn Store,
        target: &'a dyn Store,
        log: &'a dyn EventLog,
        state: State,
        options: RunOptions,
        config: Config,
        clock: &'a dyn Clock,
        watcher: &'a dyn Watcher,
        stop: StopSignal,
    ) -> Run<'a> {
        let rng = Mutex::new(fastrand::Rng::with_seed(config.seed));
        let halt = halt::Halt::new(stop.clone(), config.jobs);
        Run {
            source,
            target,
            log,
            state,
            options,
            config,
            clock,
            watcher,
            stop,
            rng,
            folder_problems: 0,
            prefetched: Mutex::new(BTreeMap::new()),
            ahead: (0, false, Counts::default()),
            deferred: Vec::new(),
            movable: BTreeSet::new(),
            touched: BTreeSet::new(),
            halt,
        }
    }

    /// The state as of the last recorded event.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Records events (unless this is a dry run) and folds them into the state.
    fn record(&mut self, events: Vec<Event>) -> Result<(), RunError> {
        if events.is_empty() && self.deferred.is_empty() {
            return Ok(());
        }
        if !self.options.dry_run {
            if self.deferred.is_empty() {
                self.log.append(&events)?;
            } else {
                let mut all = std::mem::take(&mut self.deferred);
                all.extend(events.iter().cloned());
                self.log.append(&all)?;
            }
        }
        for event in &events {
            observe::touch(&mut self.touched, event);
            self.state.apply(event);
        }
        Ok(())
    }

    /// Folds observations into the state now and journals them with the next [`Run::record`],
    /// in the same durable append: observations need no flush of their own, and a write that
    /// depends on them is journaled after them.
    fn defer(&mut self, events: Vec<Event>) {
        for event in &events {
            self.state.apply(event);
        }
        if !self.options.dry_run {
            self.deferred.extend(events);
        }
    }

    /// An independent random generator for another worker's retry jitter.
    fn rng_fork(&self) -> fastrand::Rng {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).fork()
    }

    fn worker(&self) -> Worker<'_> {
        Worker::new(
            (self.source, self.target),
            &self.config,
            (self.clock, self.watcher),
            &self.rng,
            self.log.content_key(),
            &self.state.target,
            &self.prefetched,
            &self.halt,
        )
    }

    /// Runs to the end, or until stopped. `history` is the journal's first run check: the
    /// source and target of its earlier runs, if any.
    pub async fn execute(&mut self, history: Option<(&str, &str)>) -> Result<RunSummary, RunError> {
        let started = self.state.target.run;
        let result = self.execute_run(history).await;
        if let Err(RunError::Store { side, error }) = &result
            && self.state.target.run > started
            && !self.options.dry_run
        {
            // The run ends here: say how and why (best effort; the error is what counts).
            let side = match side {
                Side::Source => "source",
                Side::Target => "target",
            };
            let _ = self.record(vec![Event::RunStopped {
                run: self.state.target.run,
                at: self.clock.now_ms(),
                outcome: RunOutcome::Aborted,
                reason: format!("the {side} failed: {error}"),
            }]);
        }
        result
    }

    async fn execute_run(&mut self, history: Option<(&str, &str)>) -> Result<RunSummary, RunError> {
        let source_uri = self.source.describe();
        let target_uri = self.target.describe();
        if let Some((source, target)) = history
            && (source != source_uri || target != target_uri)
        {
            return Err(RunError::OtherPair {
                source_uri: source.to_owned(),
                target_uri: target.to_owned(),
                given_source: source_uri,
                given_target: target_uri,
            });
        }
        let run = self.state.target.run + 1;
        if !self.options.dry_run {
            self.record(vec![Event::RunStarted {
                run,
                at: self.clock.now_ms(),
                source: source_uri,
                target: target_uri,
                options: self.options,
            }])?;
        }

        let (resolved_done, resolved_not_applied) = self.resolve_in_doubt().await?;
        let folders = self.observe_source_folders().await?;
        self.observe_target().await?;
        self.observe_source_items(&folders).await?;
        let mut plan = delta::delta(&self.state.source, &self.state.target, &self.options);
        if self.moves() {
            plan.pair_moves(&BTreeSet::new());
        }
        // Too many deletions at once (a source folder deleted, or listed empty by a faulty
        // server): everything else is done, the deletions wait for a confirmation.
        let held = if self.options.delete_removed && !self.config.confirm_deletions {
            crate::projection::guard::held_deletions(&plan, &self.state.target)
        } else {
            None
        };
        if held.is_some() && !self.options.dry_run {
            plan.deletions.clear();
        }
        // Copies made while observing count as planned (and done).
        self.watcher.note(Note::Planned {
            copies: plan.copies.len() + usize::try_from(self.ahead.2.copied).unwrap_or(0),
            bytes: plan.copies.iter().map(|c| c.size).sum::<u64>() + self.ahead.2.copied_bytes,
            other: plan.renames.len()
                + plan.create_folders.len()
                + plan.flag_updates.len()
                + plan.deletions.len()
                + plan.moves.len(),
        });
        if self.options.dry_run {
            let in_place = plan.in_place;
            return Ok(RunSummary {
                run: None,
                outcome: RunOutcome::Completed,
                delta: plan,
                resolved_done,
                resolved_not_applied,
                failed: 0,
                counts: Counts::default(),
                already: in_place,
                held,
            });
        }

        let (mut failed, mut paused, mut counts) = (0, false, Counts::default());
        if !self.ahead.1 {
            (failed, paused, counts) = self.carry_out(&plan).await?;
            if !plan.moves.is_empty() && !paused {
                let after = self.after_moves(&plan.moves);
                let (more_failed, more_paused, more) = self.carry_out(&after).await?;
                failed += more_failed;
                paused |= more_paused;
                counts += more;
            }
        }
        // The plan counts what this run copied while reading as in place already.
        let already = plan.in_place.saturating_sub(self.ahead.2.copied);
        failed += self.ahead.0;
        paused |= self.ahead.1;
        counts += self.ahead.2;
        // Target folders whose source folder is gone and that ferry emptied: deleted, unless
        // they hold mail ferry did not write (then kept and reported).
        if self.options.delete_removed && !paused && !self.stop.is_stopped() && held.is_none() {
            let folders = self.delete_emptied_folders().await?;
            failed += folders.failed;
            counts.folders += folders.deleted;
            let kept: Vec<Event> = folders
                .kept
                .into_iter()
                .map(|(folder, why)| Event::StoreNotice {
                    side: Side::Target,
                    text: format!("folder {folder} kept although its source folder is gone: {why}"),
                })
                .collect();
            self.record(kept)?;
        }
        if !paused {
            self.relist_touched().await?;
        }
        let notices: Vec<Event> = [(Side::Source, self.source), (Side::Target, self.target)]
            .into_iter()
            .flat_map(|(side, store)| {
                store
                    .notices()
                    .into_iter()
                    .take(100)
                    .map(move |text| Event::StoreNotice { side, text })
            })
            .collect();
        self.record(notices)?;
        let unreadable = self
            .state
            .source
            .folders
            .values()
            .any(|f| !f.unreadable.is_empty());
        // A stop asked for during the run cut its retries short: it is paused, not done.
        let outcome = if paused || self.stop.is_stopped() {
            RunOutcome::Paused
        } else if held.is_some() {
            RunOutcome::DeletionsHeld
        } else if failed > 0 || unreadable || self.folder_problems > 0 || !plan.skipped.is_empty() {
            // A source item left off the target (refused for good, unreadable) is never a
            // clean run.
            RunOutcome::CompletedWithFailures
        } else {
            RunOutcome::Completed
        };
        self.record(vec![Event::RunEnded {
            run,
            at: self.clock.now_ms(),
            outcome,
        }])?;
        Ok(RunSummary {
            run: Some(run),
            outcome,
            delta: plan,
            resolved_done,
            resolved_not_applied,
            failed,
            counts,
            already,
            held,
        })
    }

    /// Settles every write that has an intent and no outcome: looks on the target before
    /// anything is written again.
    async fn resolve_in_doubt(&mut self) -> Result<(usize, usize), RunError> {
        let pending: Vec<(OpId, Action)> = self
            .state
            .target
            .pending
            .iter()
            .map(|(op, action)| (*op, action.clone()))
            .collect();
        if pending.is_empty() {
            return Ok((0, 0));
        }
        self.watcher.note(Note::Resolving(pending.len()));
        let (mut done, mut not_applied) = (0, 0);
        let mut events = Vec::new();
        {
            let worker = self.worker();
            for (op, action) in pending {
                let event = match &action {
                    Action::Append {
                        folder,
                        content,
                        probe,
                        ..
                    } => {
                        let probe = crate::store::AppendProbe(probe.clone());
                        let found = worker
                            .retry(Side::Target, &mut events, || {
                                worker
                                    .target
                                    .find_appended(folder, &probe, content, worker.key)
                            })
                            .await;
                        let found = match found {
                            Ok(found) => found,
                            // The folder is gone from the target: the write cannot be there.
                            Err(StoreError::NotFound(_)) => Vec::new(),
                            Err(error) => {
                                return Err(RunError::on(Side::Target)(error));
                            }
                        };
                        match worker.claim_first(folder, found) {
                            Some(id) => {
                                done += 1;
                                Event::WriteDone {
                                    op,
                                    id: Some(id),
                                    at: self.clock.now_ms(),
                                }
                            }
                            None => {
                                not_applied += 1;
                                Event::WriteFailed {
                                    op,
                                    class: FailureClass::NotApplied,
                                    reason: "in doubt after an interruption and not on the target: copied again".into(),
                                }
                            }
                        }
                    }
                    // Every other write is idempotent: do it again.
                    other => {
                        let mut throttles = Vec::new();
                        let outcome = worker.write(op, other, &mut throttles).await;
                        events.extend(throttles);
                        done += usize::from(matches!(outcome, Event::WriteDone { .. }));
                        outcome
                    }
                };
                events.push(event);
            }
            worker
                .retry(Side::Target, &mut events, || worker.target.flush())
                .await
                .map_err(RunError::on(Side::Target))?;
        }
        self.record(events)?;
        Ok((done, not_applied))
    }

    /// Lists the source and records what changed: new folders and items (read once, to hash
    /// them), flag changes, items and folders gone.
    /// Lists the source's folders; records new, changed and vanished ones.
    ///
    /// A folder the source lists but cannot read now ([`FolderInfo::unreadable`]: Dovecot's
    /// `NO [SERVERBUG]` to its STATUS, or `\Noselect` from then on) is neither changed nor
    /// gone: its UIDVALIDITY is unknown, not new, so what is known of it stays, and
    /// [`Run::list_source_folders`] reports it. While one cannot be read, no folder that
    /// vanished is taken as deleted either (its messages may be in the one that cannot be
    /// read, renamed or moved there): nothing ferry copied from it is deleted on the target
    /// until every folder can be read.
    async fn observe_source_folders(&mut self) -> Result<Vec<FolderInfo>, RunError> {
        let mut throttles = Vec::new();
        let folders = {
            let worker = self.worker();
            worker
                .retry(Side::Source, &mut throttles, || {
                    worker.source.list_folders()
                })
                .await
                .map_err(RunError::on(Side::Source))?
        };
        let mut events = throttles;
        let listed: BTreeSet<&str> = folders.iter().map(|f| f.path.as_str()).collect();
        for folder in &folders {
            if folder.unreadable.is_some() {
                continue;
            }
            let known = self.state.source.folders.get(&folder.path);
            if known.is_none_or(|k| {
                k.validity != folder.validity || k.special_use != folder.special_use
            }) {
                events.push(Event::FolderSeen {
                    side: Side::Source,
                    folder: folder.path.clone(),
                    special_use: folder.special_use,
                    validity: folder.validity,
                });
            }
        }
        let blocked = folders.iter().find(|f| f.unreadable.is_some());
        for path in self.state.source.folders.keys() {
            if listed.contains(path.as_str()) {
                continue;
            }
            match blocked {
                None => events.push(Event::FolderGone {
                    side: Side::Source,
                    folder: path.clone(),
                }),
                Some(unreadable) => self.watcher.note(Note::ItemFailed(format!(
                    "source folder {path} is gone: not taken as deleted while {} cannot be read",
                    unreadable.path
                ))),
            }
        }
        self.record(events)?;
        Ok(folders)
    }

    /// Lists the items of every source folder (or the changes since its token) and reads the
    /// items not seen before. When no vanished folder can make a rename, what must be copied
    /// is copied chunk by chunk as it is read, so each message crosses the wire once.
    ///
    /// Over a slow link the round trips of each folder (select, list, create on the target,
    /// select there) would add up folder after folder, so the work is laid out to overlap
    /// them: the listings go out several at a time, the target folders the copies need are
    /// created together before the first copy, and the chunks of all folders form one
    /// sequence in which the next chunk is read while the one before is written, across
    /// folder boundaries.
    async fn observe_source_items(&mut self, folders: &[FolderInfo]) -> Result<(), RunError> {
        let copy_ahead = !self.options.dry_run && self.state.source.vanished.is_empty();
        let work = self.list_source_folders(folders).await?;
        // Only copies made while reading need their folders now (a run with nothing new to
        // read skips the plan this takes).
        let reading = work.iter().any(|folder| !folder.to_read.is_empty());
        if copy_ahead && reading {
            // Once every folder is listed, the plan knows the folders to create and what it
            // would delete: new items with one of those contents are copied with the plan,
            // which moves the old copy instead.
            let plan = delta::delta(&self.state.source, &self.state.target, &self.options);
            if self.moves() {
                self.movable = plan.deletions.iter().map(|d| d.content).collect();
            }
            if !self.stop.is_stopped() {
                self.create_folders_ahead(plan.create_folders).await?;
            }
        }
        self.read_source_items(&work, copy_ahead).await
    }

    /// Lists every source folder, [`LISTINGS_PER_REQUEST`] at a time, and notes what each
    /// listing changes (items gone, flags changed). Returns, per folder listed, the items to
    /// read and the event that records the listing once they are read.
    async fn list_source_folders(
        &mut self,
        folders: &[FolderInfo],
    ) -> Result<Vec<FolderWork>, RunError> {
        /// What says that a source folder is not listed this run, and why: the run goes on
        /// with the other folders, ends with failures (exit 1), and infers nothing from it
        /// (no item gone, nothing deleted on the target) until it is listed again.
        fn not_listed(path: &str, reason: &str) -> (Note, Event) {
            (
                Note::ItemFailed(format!("source folder {path} skipped: {reason}")),
                Event::FolderUnreadable {
                    side: Side::Source,
                    folder: path.to_owned(),
                    reason: reason.to_owned(),
                },
            )
        }
        let tokens = self.source.capabilities().change_tokens && !self.options.full;
        let no_folder = crate::projection::source::SourceFolder::default();
        // A folder the source lists but says it cannot read is not asked again this run.
        let mut events = Vec::new();
        for folder in folders {
            if let Some(reason) = &folder.unreadable {
                let (note, event) = not_listed(&folder.path, reason);
                self.watcher.note(note);
                self.folder_problems += 1;
                events.push(event);
            }
        }
        self.record(events)?;
        // What to ask of each folder, decided before the first listing goes out. Items that
        // could not be read last time are read again: list in full.
        let asks: Vec<(&str, Option<String>)> = folders
            .iter()
            .filter(|folder| folder.unreadable.is_none())
            .map(|folder| {
                let known = self
                    .state
                    .source
                    .folders
                    .get(&folder.path)
                    .unwrap_or(&no_folder);
                let since = (tokens && known.listed && known.unreadable.is_empty())
                    .then(|| known.token.clone())
                    .flatten();
                (folder.path.as_str(), since)
            })
            .collect();
        // Folders are listed in groups, each in one exchange where the store can (IMAP sends
        // every EXAMINE and FETCH of a group at once on one connection).
        let mut listings = Vec::with_capacity(asks.len());
        for group in asks.chunks(LISTINGS_PER_REQUEST) {
            if self.stop.is_stopped() {
                break;
            }
            let mut events = Vec::new();
            let asked: Vec<(&str, Option<&str>)> = group
                .iter()
                .map(|(path, since)| (*path, since.as_deref()))
                .collect();
            let listed = {
                let worker = self.worker();
                worker
                    .retry(Side::Source, &mut events, || {
                        worker.source.list_items_many(&asked)
                    })
                    .await
            };
            self.defer(events);
            match listed {
                Ok(group_listings) if group_listings.len() == group.len() => {
                    listings.extend(group_listings);
                }
                Ok(_) => {
                    return Err(RunError::on(Side::Source)(StoreError::Transient(
                        "the source gave a listing count other than the folders asked".into(),
                    )));
                }
                Err(error) => return Err(RunError::on(Side::Source)(error)),
            }
        }
        let mut work = Vec::new();
        for ((path, since), listing) in asks.iter().zip(listings) {
            if self.stop.is_stopped() {
                // Folders are left unlisted: the run is paused, whatever the plan says.
                self.ahead.1 = true;
                break;
            }
            let mut events = Vec::new();
            let path = *path;
            self.watcher
                .note(Note::Listing(Side::Source, path.to_owned()));
            let listing = match listing {
                Ok(listing) => listing,
                // This folder cannot be listed as it is (the server refused it, whatever it
                // said): report it in the server's words and go on with the others.
                Err(
                    error @ (StoreError::Permanent(_)
                    | StoreError::NotFound(_)
                    | StoreError::Transient(_)),
                ) => {
                    let (note, event) = not_listed(path, &error.to_string());
                    self.watcher.note(note);
                    self.folder_problems += 1;
                    events.push(event);
                    self.record(events)?;
                    continue;
                }
                Err(error) => return Err(RunError::on(Side::Source)(error)),
            };
            // A change listing that tells flags of an item this journal does not know cannot
            // be used (its size and date are missing): the folder is listed in full.
            let known_items = &self
                .state
                .source
                .folders
                .get(path)
                .unwrap_or(&no_folder)
                .items;
            let unknown_flags = matches!(&listing, Listing::Changes { flags, .. }
                if flags.iter().any(|(id, _)| !known_items.contains_key(id)));
            let listing = if unknown_flags {
                let relisted = {
                    let worker = self.worker();
                    worker
                        .retry(Side::Source, &mut events, || {
                            worker.source.list_items(path, None)
                        })
                        .await
                };
                match relisted {
                    Ok(listing) => listing,
                    // Refused now: as above.
                    Err(error @ (StoreError::Permanent(_) | StoreError::NotFound(_))) => {
                        let (note, event) = not_listed(path, &error.to_string());
                        self.watcher.note(note);
                        self.folder_problems += 1;
                        events.push(event);
                        self.record(events)?;
                        continue;
                    }
                    Err(error) => return Err(RunError::on(Side::Source)(error)),
                }
            } else {
                listing
            };
            // What is known of the folder is borrowed, never copied: a no-op run would
            // otherwise copy every folder's items.
            let known = self.state.source.folders.get(path).unwrap_or(&no_folder);
            let (changed, flag_changes, gone, token) = match listing {
                Listing::Full { items, token } => {
                    let present: BTreeSet<&NativeId> = items.iter().map(|i| &i.id).collect();
                    let gone: Vec<NativeId> = known
                        .items
                        .keys()
                        .chain(known.unreadable.keys())
                        .filter(|id| !present.contains(id))
                        .cloned()
                        .collect();
                    (items, Vec::new(), gone, token)
                }
                Listing::Changes {
                    changed,
                    flags,
                    gone,
                    token,
                } => (changed, flags, gone, token),
            };
            for (id, flags) in flag_changes {
                if known.items.get(&id).is_some_and(|k| k.flags != flags) {
                    events.push(Event::FlagsSeen {
                        side: Side::Source,
                        folder: path.to_owned(),
                        id,
                        flags,
                    });
                }
            }
            for id in gone {
                // A change listing may name items this journal never saw.
                if !known.items.contains_key(&id) && !known.unreadable.contains_key(&id) {
                    continue;
                }
                events.push(Event::ItemGone {
                    side: Side::Source,
                    folder: path.to_owned(),
                    id,
                });
            }
            let mut to_read = Vec::new();
            for item in changed {
                match known.items.get(&item.id) {
                    Some(k)
                        if !self.options.full
                            && k.size == item.size
                            && !known.unreadable.contains_key(&item.id) =>
                    {
                        if k.flags != item.flags {
                            events.push(Event::FlagsSeen {
                                side: Side::Source,
                                folder: path.to_owned(),
                                id: item.id.clone(),
                                flags: item.flags.clone(),
                            });
                        }
                    }
                    _ => to_read.push(item),
                }
            }
            let listed = (since.is_none() || token != known.token || !known.listed).then(|| {
                Event::FolderListed {
                    side: Side::Source,
                    folder: path.to_owned(),
                    token,
                }
            });
            self.defer(events);
            work.push(FolderWork {
                path: path.to_owned(),
                to_read,
                listed,
            });
        }
        Ok(work)
    }

    /// Creates, all at once, the target folders the plan lacks, before the first copy: copies
    /// made while reading would otherwise create each in turn, between one folder's reads and
    /// the next.
    async fn create_folders_ahead(&mut self, create_folders: Vec<String>) -> Result<(), RunError> {
        if create_folders.is_empty() {
            return Ok(());
        }
        let ahead = Delta {
            create_folders,
            ..Delta::default()
        };
        let done = self.carry_out(&ahead).await?;
        self.add_ahead(done);
        // The new folders receive the copies that follow. A hint only: when it fails, each
        // folder is prepared with its first batch instead, where a failure is retried and
        // reported.
        let created: Vec<&str> = ahead.create_folders.iter().map(String::as_str).collect();
        let _ = self.target.prepare_folders(&created).await;
        Ok(())
    }

    /// Reads the items the listings found new, in chunks; with `copy_ahead`, copies each chunk
    /// while the next one (of the same folder or the next) is read. A folder's listing is
    /// recorded once its last chunk is read: a run stopped before that lists the folder from
    /// its previous token next time and reads the rest.
    async fn read_source_items(
        &mut self,
        work: &[FolderWork],
        copy_ahead: bool,
    ) -> Result<(), RunError> {
        // With copy-ahead, the next chunk is read while the one just read is written (the
        // source and the target work at once; over a slow link that halves the waits), so
        // each chunk is half the in-flight byte budget.
        let chunk_bytes = if copy_ahead {
            (self.config.inflight_bytes_max / 2).max(1)
        } else {
            self.config.inflight_bytes_max
        };
        // Between two local stores there is no round trip to spread: chunks stay at
        // `LOCAL_CHUNK_ITEMS`, which bounds memory (Maildir's target: 64 MB at 20,000).
        let remote = self.source.capabilities().remote || self.target.capabilities().remote;
        let chunk_items = if remote {
            self.config.batch_max
        } else {
            self.config.batch_max.min(LOCAL_CHUNK_ITEMS)
        };
        let mut sequence: Vec<(usize, &[crate::store::ItemInfo])> = Vec::new();
        let mut chunks_left = vec![0_usize; work.len()];
        let mut listed: Vec<Option<Event>> = work.iter().map(|w| w.listed.clone()).collect();
        for (index, folder) in work.iter().enumerate() {
            let folder_chunks = chunks(&folder.to_read, chunk_items, chunk_bytes);
            chunks_left[index] = folder_chunks.len();
            if folder_chunks.is_empty() {
                self.defer(listed[index].take().into_iter().collect());
            }
            sequence.extend(folder_chunks.into_iter().map(|chunk| (index, chunk)));
        }
        // A reader that borrows nothing of `self`, so it can run beside `copy_ahead`.
        let (reader_config, reader_rng) = (self.config.clone(), Mutex::new(self.rng_fork()));
        let (no_target, no_prefetched) = (TargetState::default(), Prefetched::default());
        let reader_halt = halt::Halt::new(self.stop.clone(), reader_config.jobs);
        let reader = Worker::new(
            (self.source, self.target),
            &reader_config,
            (self.clock, self.watcher),
            &reader_rng,
            self.log.content_key(),
            &no_target,
            &no_prefetched,
            &reader_halt,
        );
        let read_chunk = |position: usize| {
            let (index, chunk) = sequence[position];
            reader
                .hash_items(Side::Source, &work[index].path, chunk, copy_ahead)
                .boxed_local()
        };
        let mut next = (!sequence.is_empty()).then(|| read_chunk(0));
        for (position, &(index, _)) in sequence.iter().enumerate() {
            if self.stop.is_stopped() {
                // Items are left unread, so the plan cannot show them: the run is paused.
                self.ahead.1 = true;
                return self.record(Vec::new());
            }
            if let Some((side, error)) = self.halt.fatal().or_else(|| reader_halt.fatal()) {
                // No room (the spool, the target), or a store that cannot be used: end now.
                self.record(Vec::new())?;
                return Err(RunError::Store { side, error });
            }
            let Some(reading) = next.take() else { break };
            let (read, kept) = reading.await;
            let following = (position + 1 < sequence.len()).then(|| read_chunk(position + 1));
            self.defer(read);
            chunks_left[index] -= 1;
            if chunks_left[index] == 0 {
                self.defer(listed[index].take().into_iter().collect());
            }
            let path = work[index].path.as_str();
            if copy_ahead {
                match following {
                    Some(following) => {
                        let (copied, read_next) =
                            futures::future::join(self.copy_ahead(path, kept), following).await;
                        copied?;
                        next = Some(futures::future::ready(read_next).boxed_local());
                    }
                    None => self.copy_ahead(path, kept).await?,
                }
            } else {
                next = following;
            }
        }
        self.record(Vec::new())
    }

    /// Copies the items of `folder` just read (`kept`) that the plan copies, using their bytes.
    async fn copy_ahead(&mut self, folder: &str, kept: Vec<Kept>) -> Result<(), RunError> {
        if kept.is_empty() || self.ahead.1 {
            return Ok(());
        }
        let read: BTreeSet<&NativeId> = kept.iter().map(|(id, _)| id).collect();
        // Planned for the contents just read alone: planning the whole state for every chunk
        // would grow with the mailbox, chunk after chunk.
        let contents: BTreeSet<ContentHash> = self
            .state
            .source
            .folders
            .get(folder)
            .map(|known| {
                read.iter()
                    .filter_map(|id| known.items.get(*id).map(|item| item.content))
                    .collect()
            })
            .unwrap_or_default();
        let plan = delta::delta_of(&self.state.source, &self.state.target, folder, &contents);
        let copies: Vec<delta::Copy> = plan
            .copies
            .into_iter()
            .filter(|c| c.source_folder == folder && read.contains(&c.source_id))
            .filter(|c| !self.movable.contains(&c.content))
            .collect();
        if copies.is_empty() {
            return Ok(());
        }
        let targets: BTreeSet<&str> = copies.iter().map(|c| c.folder.as_str()).collect();
        let ahead = Delta {
            create_folders: plan
                .create_folders
                .into_iter()
                .filter(|f| targets.contains(f.as_str()))
                .collect(),
            copies,
            ..Delta::default()
        };
        {
            let mut prefetched = self.prefetched.lock().unwrap_or_else(|e| e.into_inner());
            for (id, bytes) in kept {
                prefetched.insert((folder.to_owned(), id), bytes);
            }
        }
        let result = self.carry_out(&ahead).await;
        self.prefetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.add_ahead(result?);
        Ok(())
    }

    /// What is left of the plan's `moves` once they were carried out: a moved item keeps the
    /// flags it had, so where the source's differ they are set; a move that failed (refused,
    /// or its item gone) is copied and its old item deleted, as without moves. Nothing else:
    /// other writes that failed wait for the next run, as always.
    fn after_moves(&self, moves: &[delta::Move]) -> Delta {
        let tried: BTreeSet<(&str, &NativeId)> = moves
            .iter()
            .map(|m| (m.from.folder.as_str(), &m.from.id))
            .collect();
        let contents: BTreeSet<ContentHash> = moves.iter().map(|m| m.copy.content).collect();
        let after = delta::delta(&self.state.source, &self.state.target, &self.options);
        let content_of = |folder: &str, id: &NativeId| {
            let item = self.state.target.folders.get(folder)?.items.get(id)?;
            Some(item.content)
        };
        Delta {
            copies: after
                .copies
                .into_iter()
                .filter(|c| contents.contains(&c.content))
                .collect(),
            deletions: after
                .deletions
                .into_iter()
                .filter(|d| tried.contains(&(d.folder.as_str(), &d.id)))
                .collect(),
            flag_updates: after
                .flag_updates
                .into_iter()
                .filter(|u| content_of(&u.folder, &u.id).is_some_and(|c| contents.contains(&c)))
                .collect(),
            ..Delta::default()
        }
    }

    /// Whether deletions paired with copies of the same content become moves on the target.
    fn moves(&self) -> bool {
        self.options.delete_removed && self.target.capabilities().moves
    }

    /// Counts what a carry-out made while observing wrote into [`Run::ahead`].
    fn add_ahead(&mut self, (failed, paused, counts): (usize, bool, Counts)) {
        self.ahead.0 += failed;
        self.ahead.1 |= paused;
        self.ahead.2 += counts;
    }

    /// Carries out the plan in batches. Returns (failed writes, paused, what was written).
    async fn carry_out(&mut self, plan: &Delta) -> Result<(usize, bool, Counts), RunError> {
        let mut queue: VecDeque<Action> = VecDeque::new();
        for (from, to) in &plan.renames {
            queue.push_back(Action::RenameFolder {
                from: from.clone(),
                to: to.clone(),
            });
        }
        for folder in &plan.create_folders {
            queue.push_back(Action::CreateFolder {
                folder: folder.clone(),
            });
        }
        let folder_actions = queue.len();
        for copy in &plan.copies {
            queue.push_back(Action::Append {
                source_folder: copy.source_folder.clone(),
                source_id: copy.source_id.clone(),
                folder: copy.folder.clone(),
                content: copy.content,
                size: copy.size,
                flags: copy.flags.clone(),
                date: copy.date,
                probe: String::new(),
            });
        }
        for planned in &plan.moves {
            queue.push_back(Action::Move {
                source_folder: planned.copy.source_folder.clone(),
                source_id: planned.copy.source_id.clone(),
                from: planned.from.folder.clone(),
                id: planned.from.id.clone(),
                folder: planned.copy.folder.clone(),
                content: planned.copy.content,
                size: planned.copy.size,
                probe: String::new(),
            });
        }
        for update in &plan.flag_updates {
            queue.push_back(Action::SetFlags {
                folder: update.folder.clone(),
                id: update.id.clone(),
                flags: update.to.clone(),
            });
        }
        for deletion in &plan.deletions {
            queue.push_back(Action::Delete {
                folder: deletion.folder.clone(),
                id: deletion.id.clone(),
                content: deletion.content,
            });
        }

        let mut failed = 0;
        let mut counts = Counts::default();
        let mut first = true;
        while !queue.is_empty() {
            if let Some((side, error)) = self.halt.fatal() {
                return Err(RunError::Store { side, error });
            }
            if self.stop.is_stopped() {
                return Ok((failed, true, counts));
            }
            // Folder writes go first and alone: items need their folders.
            let limit = if first && folder_actions > 0 {
                folder_actions
            } else {
                self.config.batch_max.max(1)
            };
            first = false;
            let batch = take_batch(&mut queue, limit);
            let mut intents = Vec::with_capacity(batch.len());
            {
                let worker = self.worker();
                let mut throttles = Vec::new();
                // One probe request per target folder of the batch, not one per message.
                let mut appends: BTreeMap<String, usize> = BTreeMap::new();
                for action in &batch {
                    if let Action::Append { folder, .. } | Action::Move { folder, .. } = action {
                        *appends.entry(folder.clone()).or_default() += 1;
                    }
                }
                let mut probes: BTreeMap<String, std::vec::IntoIter<AppendProbe>> = BTreeMap::new();
                for (folder, count) in appends {
                    let prepared = worker
                        .retry(Side::Target, &mut throttles, || {
                            worker.target.prepare_appends(&folder, count)
                        })
                        .await
                        .map_err(RunError::on(Side::Target))?;
                    probes.insert(folder, prepared.into_iter());
                }
                for mut action in batch {
                    if let Action::Append { folder, probe, .. }
                    | Action::Move { folder, probe, .. } = &mut action
                    {
                        let prepared = probes.get_mut(folder.as_str()).and_then(Iterator::next);
                        let Some(prepared) = prepared else {
                            return Err(RunError::on(Side::Target)(StoreError::Transient(
                                format!("the target gave too few append probes for {folder}"),
                            )));
                        };
                        *probe = prepared.0;
                    }
                    intents.push(action);
                }
                self.record(throttles)?;
            }
            let first_op = self.state.target.next_op.max(1);
            let intent_events: Vec<Event> = intents
                .iter()
                .enumerate()
                .map(|(index, action)| Event::WriteIntent {
                    op: first_op + index as u64,
                    action: action.clone(),
                })
                .collect();
            self.record(intent_events)?;

            let capabilities = self.target.capabilities();
            let units = units(&intents, capabilities.append_many, capabilities.update_many);
            let outcomes = {
                let worker = self.worker();
                let jobs = self.config.jobs.max(1);
                let run_unit = |unit: &[usize]| {
                    let worker = &worker;
                    let intents = &intents;
                    let unit = unit.to_vec();
                    async move {
                        let mut events = Vec::new();
                        if worker.halt.halted() {
                            // The run is ending: not attempted, so never applied; the next run
                            // plans these again.
                            let reason = worker.halt.why();
                            for &index in &unit {
                                events.push(Event::WriteFailed {
                                    op: first_op + index as u64,
                                    class: FailureClass::NotApplied,
                                    reason: reason.clone(),
                                });
                            }
                            return events;
                        }
                        if let [index] = unit.as_slice() {
                            let outcome = worker
                                .write(first_op + *index as u64, &intents[*index], &mut events)
                                .await;
                            events.push(outcome);
                        } else {
                            let items: Vec<(OpId, &Action)> = unit
                                .iter()
                                .map(|&index| (first_op + index as u64, &intents[index]))
                                .collect();
                            let outcomes = match items.first() {
                                Some((_, Action::Append { .. })) => {
                                    worker.write_appends(&items, &mut events).await
                                }
                                Some((_, Action::Move { .. })) => {
                                    worker.write_moves(&items, &mut events).await
                                }
                                _ => worker.write_updates(&items, &mut events).await,
                            };
                            events.extend(outcomes);
                        }
                        events
                    }
                };
                // Flag changes and deletions go one folder after the other: a store that must
                // select a folder for them (IMAP) then selects each once, where units taking
                // turns on a connection would select them again and again.
                let (updates, others): (Vec<&Vec<usize>>, Vec<&Vec<usize>>) =
                    units.iter().partition(|unit| {
                        unit.first().is_some_and(|&index| {
                            matches!(
                                intents[index],
                                Action::SetFlags { .. } | Action::Delete { .. }
                            )
                        })
                    });
                let mut work: Vec<futures::future::LocalBoxFuture<'_, Vec<Event>>> = others
                    .into_iter()
                    .map(|unit| run_unit(unit).boxed_local())
                    .collect();
                if !updates.is_empty() {
                    let run_unit = &run_unit;
                    work.push(
                        async move {
                            let mut events = Vec::new();
                            for unit in updates {
                                events.extend(run_unit(unit).await);
                            }
                            events
                        }
                        .boxed_local(),
                    );
                }
                let results: Vec<Vec<Event>> = futures::stream::iter(work)
                    .buffer_unordered(jobs)
                    .collect()
                    .await;
                let mut flush_events = Vec::new();
                worker
                    .retry(Side::Target, &mut flush_events, || worker.target.flush())
                    .await
                    .map_err(RunError::on(Side::Target))?;
                let mut outcomes: Vec<Event> = results.into_iter().flatten().collect();
                outcomes.extend(flush_events);
                outcomes
            };
            let intent_of = |op: &OpId| {
                op.checked_sub(first_op)
                    .and_then(|index| intents.get(usize::try_from(index).ok()?))
            };
            // A failed move is not a failure of the run: the item is copied instead.
            let moved = |op: &OpId| {
                intent_of(op).is_some_and(|action| matches!(action, Action::Move { .. }))
            };
            failed += outcomes
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        Event::WriteFailed {
                            op,
                            class: FailureClass::Transient | FailureClass::Permanent,
                            ..
                        } if !moved(op)
                    )
                })
                .count();
            for outcome in &outcomes {
                if let Event::WriteDone { op, .. } = outcome
                    && let Some(action) = intent_of(op)
                {
                    match action {
                        Action::Append { size, .. } => {
                            counts.copied += 1;
                            counts.copied_bytes += size;
                        }
                        Action::SetFlags { .. } => counts.flags_updated += 1,
                        Action::Delete { .. } => counts.deleted += 1,
                        Action::Move { .. } => counts.moved += 1,
                        Action::CreateFolder { .. } | Action::RenameFolder { .. } => {
                            counts.folders += 1;
                        }
                        // Never planned here: counted by `delete_emptied_folders`.
                        Action::DeleteFolder { .. } => {}
                    }
                }
            }
            self.record(outcomes)?;
        }
        if let Some((side, error)) = self.halt.fatal() {
            return Err(RunError::Store { side, error });
        }
        Ok((failed, false, counts))
    }
}

/// Takes up to `limit` actions, never two appends of the same content to the same folder in
/// one batch: their in-doubt lookups could not tell them apart while both are in flight.
fn take_batch(queue: &mut VecDeque<Action>, limit: usize) -> Vec<Action> {
    let mut batch = Vec::new();
    let mut keys: BTreeSet<(String, ContentHash)> = BTreeSet::new();
    let mut deferred = Vec::new();
    while batch.len() < limit {
        let Some(action) = queue.pop_front() else {
            break;
        };
        if let Action::Append {
            folder, content, ..
        }
        | Action::Move {
            folder, content, ..
        } = &action
            && !keys.insert((folder.clone(), *content))
        {
            deferred.push(action);
            continue;
        }
        batch.push(action);
    }
    for action in deferred.into_iter().rev() {
        queue.push_front(action);
    }
    batch
}

impl Worker<'_> {
    fn backoff_ms(&self, attempt: u32) -> u64 {
        let ceiling = self
            .config
            .backoff_base_ms
            .saturating_mul(1 << attempt.min(20))
            .min(self.config.backoff_max_ms);
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        ceiling / 2 + rng.u64(0..=ceiling / 2)
    }

    /// Calls `call` until it succeeds, fails for good, or runs out of attempts; waits out
    /// throttling (recording each wait as an event in `events`).
    async fn retry<T, F, Fut>(
        &self,
        side: Side,
        events: &mut Vec<Event>,
        call: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.retry_with(side, events, self.config.retry_count_max, call)
            .await
    }

    /// Like [`Worker::retry`] with `attempts` tries on transient errors (1: none repeated, for
    /// writes that may have landed although they failed).
    async fn retry_with<T, F, Fut>(
        &self,
        side: Side,
        events: &mut Vec<Event>,
        attempts: u32,
        mut call: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut attempt = 0;
        let mut throttled = 0;
        loop {
            let result = match tokio::time::timeout(
                Duration::from_millis(self.config.call_timeout_ms),
                call(),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(StoreError::Transient(format!(
                    "no answer within {} ms",
                    self.config.call_timeout_ms
                ))),
            };
            match result {
                Ok(value) => return Ok(value),
                Err(StoreError::Throttled {
                    retry_after_ms,
                    reason,
                }) => {
                    throttled += 1;
                    if throttled > self.config.throttle_count_max {
                        return Err(StoreError::Throttled {
                            retry_after_ms,
                            reason,
                        });
                    }
                    let wait_ms =
                        retry_after_ms.unwrap_or_else(|| self.backoff_ms(throttled.min(6)));
                    self.watcher.note(Note::Throttled(side, wait_ms));
                    events.push(Event::Throttled { side, wait_ms });
                    self.halt.pause(wait_ms).await;
                }
                Err(StoreError::Transient(reason)) => {
                    attempt += 1;
                    if attempt >= attempts || self.halt.halted() {
                        return Err(StoreError::Transient(reason));
                    }
                    self.halt.pause(self.backoff_ms(attempt)).await;
                }
                Err(other) => {
                    self.halt.check(side, &other);
                    return Err(other);
                }
            }
        }
    }

    /// Reads and hashes items; returns `ItemSeen` or `ItemUnreadable` events (and throttling).
    async fn hash_items(
        &self,
        side: Side,
        folder: &str,
        items: &[crate::store::ItemInfo],
        keep: bool,
    ) -> (Vec<Event>, Vec<Kept>) {
        let store = match side {
            Side::Source => self.source,
            Side::Target => self.target,
        };
        let results: Vec<Vec<(Vec<Event>, Option<Kept>)>> = if store.capabilities().fetch_many {
            // Several items per request (one IMAP UID FETCH), a few requests in flight.
            let groups = chunks(items, 64, 4 << 20);
            futures::stream::iter(groups.into_iter().map(|group| async move {
                let total: u64 = group.iter().map(|item| resident_bytes(item.size)).sum();
                let _permit = self.bytes_permit(total).await;
                let mut events = Vec::new();
                let ids: Vec<NativeId> = group.iter().map(|item| item.id.clone()).collect();
                let read = self
                    .retry(side, &mut events, || store.fetch_many(folder, &ids))
                    .await;
                let mut out = Vec::with_capacity(group.len());
                match read {
                    Ok(reads) if reads.len() == group.len() => {
                        for (item, read) in group.iter().zip(reads) {
                            out.push(self.seen(side, folder, item, read, keep));
                        }
                    }
                    Ok(_) | Err(_) => {
                        // The request as a whole failed: one item at a time.
                        for item in group {
                            let mut item_events = Vec::new();
                            let read = self
                                .retry(side, &mut item_events, || store.fetch(folder, &item.id))
                                .await;
                            let (seen, kept) = self.seen(side, folder, item, read, keep);
                            item_events.extend(seen);
                            out.push((item_events, kept));
                        }
                    }
                }
                if let Some(first) = out.first_mut() {
                    first.0.splice(0..0, events);
                }
                out
            }))
            .buffered(self.config.jobs.clamp(1, 4))
            .collect()
            .await
        } else {
            futures::stream::iter(items.iter().map(|item| async move {
                let mut events = Vec::new();
                let _permit = self.bytes_permit(resident_bytes(item.size)).await;
                let read = self
                    .retry(side, &mut events, || store.fetch(folder, &item.id))
                    .await;
                let (seen, kept) = self.seen(side, folder, item, read, keep);
                events.extend(seen);
                vec![(events, kept)]
            }))
            .buffered(self.config.jobs.max(1))
            .collect()
            .await
        };
        let mut events = Vec::new();
        let mut kept = Vec::new();
        for (item_events, item_bytes) in results.into_iter().flatten() {
            events.extend(item_events);
            kept.extend(item_bytes);
        }
        (events, kept)
    }

    /// The event for one item read (or not), and its bytes when they are to be kept.
    fn seen(
        &self,
        side: Side,
        folder: &str,
        item: &crate::store::ItemInfo,
        read: Result<Body, StoreError>,
        keep: bool,
    ) -> (Vec<Event>, Option<Kept>) {
        // A spooled body is read back to be hashed: a failure there is a local one (the
        // spool's disk), told as the item's.
        let read = read.and_then(|body| match body.hash(self.key) {
            Ok(content) => Ok((body, content)),
            Err(error) => Err(StoreError::Transient(read_back(&error))),
        });
        match read {
            Ok((bytes, content)) => {
                let event = Event::ItemSeen {
                    side,
                    folder: folder.to_owned(),
                    id: item.id.clone(),
                    content,
                    size: bytes.len(),
                    flags: item.flags.clone(),
                    date: item.date,
                };
                (vec![event], keep.then(|| (item.id.clone(), bytes)))
            }
            // Gone between listing and reading: the next listing says so.
            Err(StoreError::NotFound(_)) => (Vec::new(), None),
            Err(error) => (
                vec![Event::ItemUnreadable {
                    side,
                    folder: folder.to_owned(),
                    id: item.id.clone(),
                    reason: error.to_string(),
                }],
                None,
            ),
        }
    }

    async fn bytes_permit(&self, size: u64) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let wanted = u32::try_from((size >> 10).max(1))
            .unwrap_or(u32::MAX)
            .min(u32::try_from(self.bytes.available_permits().max(1)).unwrap_or(u32::MAX))
            .min(u32::try_from((self.config.inflight_bytes_max >> 10).max(1)).unwrap_or(u32::MAX));
        self.bytes.acquire_many(wanted).await.ok()
    }

    /// Picks the first candidate id not known to belong to another write, and claims it.
    fn claim_first(&self, folder: &str, candidates: Vec<NativeId>) -> Option<NativeId> {
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        let known = self.known.folders.get(folder);
        candidates.into_iter().find(|id| {
            !known.is_some_and(|f| f.items.contains_key(id))
                && claimed.insert((folder.to_owned(), id.clone()))
        })
    }

    /// Carries out one write; returns its outcome event. Throttling goes to `events`.
    async fn write(&self, op: OpId, action: &Action, events: &mut Vec<Event>) -> Event {
        let result = match action {
            Action::CreateFolder { folder } => self
                .retry(Side::Target, events, || self.target.create_folder(folder))
                .await
                .map(|()| None)
                .map_err(|e| (class_of(&e), e.to_string())),
            Action::RenameFolder { from, to } => self
                .retry(Side::Target, events, || self.target.rename_folder(from, to))
                .await
                .map(|()| None)
                .map_err(|e| (class_of(&e), e.to_string())),
            // The target deletes it only if it holds nothing now, and a folder already gone
            // is deleted (a repeated write).
            Action::DeleteFolder { folder } => {
                match self
                    .retry(Side::Target, events, || self.target.delete_folder(folder))
                    .await
                {
                    Ok(()) | Err(StoreError::NotFound(_)) => Ok(None),
                    Err(e) => Err((class_of(&e), e.to_string())),
                }
            }
            Action::SetFlags { folder, id, flags } => self
                .retry(Side::Target, events, || {
                    self.target.set_flags(folder, id, flags)
                })
                .await
                .map(|()| None)
                .map_err(|e| (class_of(&e), e.to_string())),
            Action::Delete { folder, id, .. } => {
                match self
                    .retry(Side::Target, events, || self.target.delete(folder, id))
                    .await
                {
                    Ok(()) | Err(StoreError::NotFound(_)) => Ok(None),
                    Err(e) => Err((class_of(&e), e.to_string())),
                }
            }
            Action::Move {
                from,
                id,
                folder,
                content,
                probe,
                ..
            } => {
                self.move_item(from, id, folder, content, probe, events)
                    .await
            }
            Action::Append {
                source_folder,
                source_id,
                folder,
                content,
                size,
                flags,
                date,
                probe,
            } => {
                self.copy(
                    source_folder,
                    source_id,
                    folder,
                    content,
                    *size,
                    flags,
                    *date,
                    probe,
                    events,
                )
                .await
            }
        };
        self.finish(op, action, result)
    }

    /// The outcome event of a write (and the note for the progress display).
    fn finish(&self, op: OpId, action: &Action, result: WriteResult) -> Event {
        match result {
            Ok(id) => {
                self.halt.write_outcome(true, "");
                match action {
                    Action::Append { size, .. } => self.watcher.note(Note::Copied(*size)),
                    _ => self.watcher.note(Note::Wrote),
                }
                Event::WriteDone {
                    op,
                    id,
                    at: self.clock.now_ms(),
                }
            }
            Err((class, reason)) => {
                if class == FailureClass::Transient {
                    self.halt.write_outcome(false, &reason);
                }
                if class != FailureClass::NotApplied {
                    self.watcher.note(Note::ItemFailed(reason.clone()));
                }
                Event::WriteFailed { op, class, reason }
            }
        }
    }

    /// Flag updates, or deletions, of one folder made with one [`Store::set_flags_many`] or
    /// [`Store::delete_many`]; their outcome events. Both are idempotent, so a failed call is
    /// simply made again (with the usual retries).
    async fn write_updates(
        &self,
        items: &[(OpId, &Action)],
        events: &mut Vec<Event>,
    ) -> Vec<Event> {
        let mut folder = "";
        let mut flags = Vec::new();
        let mut deletions = Vec::new();
        for (_, action) in items {
            match action {
                Action::SetFlags {
                    folder: f,
                    id,
                    flags: set,
                } => {
                    folder = f;
                    flags.push((id, set));
                }
                Action::Delete { folder: f, id, .. } => {
                    folder = f;
                    deletions.push(id);
                }
                _ => {}
            }
        }
        // Flags and deletions at once: one selection of the folder serves both, and their
        // requests share round trips (they touch different items).
        let (mut flag_events, mut deletion_events) = (Vec::new(), Vec::new());
        let flagging = async {
            if flags.is_empty() {
                return Ok(Vec::new());
            }
            let called = self
                .retry(Side::Target, &mut flag_events, || {
                    self.target.set_flags_many(folder, &flags)
                })
                .await;
            update_results(called, flags.len(), folder, false)
        };
        let deleting = async {
            if deletions.is_empty() {
                return Ok(Vec::new());
            }
            let called = self
                .retry(Side::Target, &mut deletion_events, || {
                    self.target.delete_many(folder, &deletions)
                })
                .await;
            update_results(called, deletions.len(), folder, true)
        };
        let (flagged, deleted) = futures::future::join(flagging, deleting).await;
        events.append(&mut flag_events);
        events.append(&mut deletion_events);
        let mut outcomes = Vec::with_capacity(items.len());
        let (mut flagged, mut deleted) = (flagged.map(Vec::into_iter), deleted.map(Vec::into_iter));
        for &(op, action) in items {
            let results = match action {
                Action::Delete { .. } => &mut deleted,
                _ => &mut flagged,
            };
            outcomes.push(match results {
                // The call as a whole failed, after its retries: so does each change.
                Err(failure) => self.finish(op, action, Err(failure.clone())),
                Ok(results) => match results.next() {
                    Some(Err((FailureClass::Transient, _))) | None => {
                        // Its reply may be what was lost: written again alone, with retries
                        // (a deletion that already happened then finds nothing, and is done).
                        self.write(op, action, events).await
                    }
                    Some(result) => self.finish(op, action, result),
                },
            });
        }
        outcomes
    }

    /// Appends of one folder stored with one [`Store::append_many`]; their outcome events.
    /// If it fails, some may have landed: each is looked for, then written alone.
    async fn write_appends(
        &self,
        items: &[(OpId, &Action)],
        events: &mut Vec<Event>,
    ) -> Vec<Event> {
        let mut outcomes = Vec::with_capacity(items.len());
        let total: u64 = items
            .iter()
            .map(|(_, action)| match action {
                Action::Append { size, .. } => resident_bytes(*size),
                _ => 0,
            })
            .sum();
        let _permit = self.bytes_permit(total).await;
        let mut ready = Vec::with_capacity(items.len());
        for &(op, action) in items {
            let Action::Append {
                source_folder,
                source_id,
                content,
                size,
                ..
            } = action
            else {
                outcomes.push(self.write(op, action, events).await);
                continue;
            };
            match self
                .read_source(source_folder, source_id, content, *size, events)
                .await
            {
                Ok(bytes) => ready.push((op, action, bytes)),
                Err(failure) => outcomes.push(self.finish(op, action, Err(failure))),
            }
        }
        let Some(&(_, Action::Append { folder, probe, .. }, _)) = ready.first() else {
            return outcomes;
        };
        let probe = crate::store::AppendProbe(probe.clone());
        let messages: Vec<crate::store::NewMessage<'_>> = ready
            .iter()
            .filter_map(|(_, action, bytes)| match action {
                Action::Append { flags, date, .. } => Some(crate::store::NewMessage {
                    bytes,
                    flags,
                    date: *date,
                }),
                _ => None,
            })
            .collect();
        // Not retried, not even when throttled: part of it may be stored. A failure falls back
        // to one message at a time, each looked for first and retried on its own.
        let stored = self.target.append_many(folder, &messages, &probe).await;
        match stored {
            Ok(ids) if ids.len() == ready.len() => {
                for ((op, action, _), id) in ready.iter().zip(ids) {
                    let Action::Append { content, .. } = action else {
                        continue;
                    };
                    let id = match id {
                        Some(id) => {
                            self.claim_first(folder, vec![id.clone()]);
                            Some(id)
                        }
                        None => self.look_for(folder, &probe, content, events).await,
                    };
                    outcomes.push(self.finish(*op, action, Ok(id)));
                }
            }
            _ => {
                // Any of them may be there (a lost reply) or none (refused as a whole, e.g.
                // for one message too large): look for each, then write it alone. After a lost
                // connection, bytes may still be on their way: wait first.
                if matches!(stored, Err(StoreError::Transient(_))) {
                    tokio::time::sleep(Duration::from_millis(self.backoff_ms(1))).await;
                }
                for (op, action, bytes) in &ready {
                    let Action::Append {
                        content,
                        flags,
                        date,
                        ..
                    } = action
                    else {
                        continue;
                    };
                    let result = match self.look_for(folder, &probe, content, events).await {
                        Some(id) => Ok(Some(id)),
                        None => {
                            self.store_bytes(folder, bytes, flags, *date, &probe, content, events)
                                .await
                        }
                    };
                    outcomes.push(self.finish(*op, action, result));
                }
            }
        }
        outcomes
    }

    /// Moves of one folder into another made with one [`Store::move_many`]; their outcome
    /// events. A move whose own result is unknown, or all of them when the call failed as a
    /// whole, are settled one by one as [`Worker::move_item`] settles one.
    async fn write_moves(&self, items: &[(OpId, &Action)], events: &mut Vec<Event>) -> Vec<Event> {
        let mut moves = Vec::with_capacity(items.len());
        for &(op, action) in items {
            if let Action::Move {
                from,
                id,
                folder,
                content,
                probe,
                ..
            } = action
            {
                moves.push((op, action, from, id, folder, content, probe));
            }
        }
        let Some(&(_, _, from, _, folder, _, probe)) = moves.first() else {
            return Vec::new();
        };
        let ids: Vec<&NativeId> = moves.iter().map(|m| m.3).collect();
        let probe = crate::store::AppendProbe(probe.clone());
        let called = self
            .retry_with(Side::Target, events, 1, || {
                self.target.move_many(from, &ids, folder, &probe)
            })
            .await;
        let mut results = match called {
            Ok(results) if results.len() == moves.len() => results.into_iter().map(Some).collect(),
            _ => vec![None; moves.len()],
        };
        let mut outcomes = Vec::with_capacity(moves.len());
        for ((op, action, from, id, folder, content, _), result) in
            moves.into_iter().zip(results.drain(..))
        {
            let result = match result {
                Some(Ok(Some(new))) => {
                    self.claim_first(folder, vec![new.clone()]);
                    Ok(Some(new))
                }
                Some(Err(error @ (StoreError::Permanent(_) | StoreError::Unusable(_)))) => {
                    Err((class_of(&error), format!("moving {from} {id}: {error}")))
                }
                _ => match self.look_for(folder, &probe, content, events).await {
                    Some(new) => Ok(Some(new)),
                    // Not there: moved alone (a move of an item already gone fails).
                    None => {
                        self.move_item(from, id, folder, content, &probe.0, events)
                            .await
                    }
                },
            };
            outcomes.push(self.finish(op, action, result));
        }
        outcomes
    }

    /// Moves a target item into another folder on the target. A move whose outcome is
    /// unknown (a lost reply, or the item already gone from `from`) is looked for in `folder`
    /// from the probe on; one not found there fails, and the next run copies the source item.
    async fn move_item(
        &self,
        from: &str,
        id: &NativeId,
        folder: &str,
        content: &ContentHash,
        probe: &str,
        events: &mut Vec<Event>,
    ) -> WriteResult {
        let probe = crate::store::AppendProbe(probe.to_owned());
        let result = self
            .retry_with(Side::Target, events, 1, || {
                self.target.move_item(from, id, folder, &probe)
            })
            .await;
        match result {
            Ok(Some(new)) => {
                self.claim_first(folder, vec![new.clone()]);
                Ok(Some(new))
            }
            Ok(None) | Err(StoreError::Transient(_) | StoreError::NotFound(_)) => {
                match self.look_for(folder, &probe, content, events).await {
                    Some(new) => Ok(Some(new)),
                    None => Err((
                        FailureClass::Transient,
                        format!("moving {from} {id} to {folder}: not found there afterwards"),
                    )),
                }
            }
            Err(error) => Err((class_of(&error), format!("moving {from} {id}: {error}"))),
        }
    }

    /// A message an append may have stored: looked for on the target and claimed.
    async fn look_for(
        &self,
        folder: &str,
        probe: &crate::store::AppendProbe,
        content: &ContentHash,
        events: &mut Vec<Event>,
    ) -> Option<NativeId> {
        let found = self
            .retry(Side::Target, events, || {
                self.target.find_appended(folder, probe, content, self.key)
            })
            .await
            .unwrap_or_default();
        self.claim_first(folder, found)
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy(
        &self,
        source_folder: &str,
        source_id: &NativeId,
        folder: &str,
        content: &ContentHash,
        size: u64,
        flags: &crate::flags::Flags,
        date: Option<Millis>,
        probe: &str,
        events: &mut Vec<Event>,
    ) -> WriteResult {
        let _permit = self.bytes_permit(resident_bytes(size)).await;
        let bytes = self
            .read_source(source_folder, source_id, content, size, events)
            .await?;
        let probe = crate::store::AppendProbe(probe.to_owned());
        self.store_bytes(folder, &bytes, flags, date, &probe, content, events)
            .await
    }

    /// The bytes of a source item to copy: kept from observing, or read again; checked
    /// against the content hash the plan was made with and the target's size limit.
    async fn read_source(
        &self,
        source_folder: &str,
        source_id: &NativeId,
        content: &ContentHash,
        size: u64,
        events: &mut Vec<Event>,
    ) -> Result<Body, (FailureClass, String)> {
        if let Some(max) = self.target.capabilities().max_message_bytes
            && size > max
        {
            return Err((
                FailureClass::Permanent,
                format!("{size} bytes is more than the target accepts ({max} bytes)"),
            ));
        }
        let prefetched = self
            .prefetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(source_folder.to_owned(), source_id.clone()));
        let read = match prefetched {
            Some(bytes) => Ok(bytes),
            None => {
                self.retry(Side::Source, events, || {
                    self.source.fetch(source_folder, source_id)
                })
                .await
            }
        };
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(StoreError::NotFound(_)) => {
                return Err((
                    FailureClass::Transient,
                    "the source item vanished before it was copied".into(),
                ));
            }
            Err(error) => return Err((class_of(&error), format!("reading the source: {error}"))),
        };
        let hash = bytes
            .hash(self.key)
            .map_err(|error| (FailureClass::Transient, read_back(&error)))?;
        if hash != *content {
            return Err((
                FailureClass::Transient,
                "the source item changed after it was listed; the next run copies it".into(),
            ));
        }
        Ok(bytes)
    }

    /// Appends one message, retrying; a failed append is looked for before it is retried.
    #[allow(clippy::too_many_arguments)]
    async fn store_bytes(
        &self,
        folder: &str,
        bytes: &Body,
        flags: &crate::flags::Flags,
        date: Option<Millis>,
        probe: &crate::store::AppendProbe,
        content: &ContentHash,
        events: &mut Vec<Event>,
    ) -> WriteResult {
        let mut attempt = 0;
        loop {
            // Throttling is retried inside (nothing was written); a transient failure is not,
            // because the message may have landed: look first.
            let result = self
                .retry_with(Side::Target, events, 1, || {
                    self.target.append(folder, bytes, flags, date, probe)
                })
                .await;
            match result {
                Ok(Some(id)) => {
                    self.claim_first(folder, vec![id.clone()]);
                    return Ok(Some(id));
                }
                Ok(None) => {
                    // Stored, but the store did not say under which id (IMAP without UIDPLUS):
                    // find it the way a write in doubt is found.
                    return Ok(self.look_for(folder, probe, content, events).await);
                }
                Err(StoreError::Transient(reason)) => {
                    // The append may have landed with its reply lost, or its bytes may still be
                    // on their way (a connection's buffers, a proxy): wait, then look, before
                    // writing again.
                    attempt += 1;
                    self.halt.pause(self.backoff_ms(attempt)).await;
                    if let Some(id) = self.look_for(folder, probe, content, events).await {
                        return Ok(Some(id));
                    }
                    if attempt >= self.config.retry_count_max || self.halt.halted() {
                        return Err((FailureClass::Transient, format!("writing: {reason}")));
                    }
                }
                Err(error @ StoreError::Full(_)) => {
                    // Nothing was stored: the next run writes it again.
                    return Err((FailureClass::NotApplied, format!("writing: {error}")));
                }
                Err(error) => {
                    return Err((class_of(&error), format!("writing: {error}")));
                }
            }
        }
    }
}

/// The writes of a batch as units of work: each write alone, except that with `append_many`
/// appends into one folder go together, up to 64 messages or 8 MiB a unit.
fn units(intents: &[Action], append_many: bool, update_many: bool) -> Vec<Vec<usize>> {
    const COUNT: usize = 64;
    const BYTES: u64 = 8 << 20;
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut open: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    // Flag updates and deletions of one folder: one unit (a batch holds ≤ 256 actions), so
    // the folder is selected once for both.
    let mut updates: BTreeMap<&str, usize> = BTreeMap::new();
    // Moves from one folder to another: one unit, one request.
    let mut moves: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (index, action) in intents.iter().enumerate() {
        match action {
            Action::Move { from, folder, .. } if update_many => {
                match moves.get(&(from.as_str(), folder.as_str())) {
                    Some(&unit) if units[unit].len() < COUNT => units[unit].push(index),
                    _ => {
                        moves.insert((from, folder), units.len());
                        units.push(vec![index]);
                    }
                }
            }
            Action::SetFlags { folder, .. } | Action::Delete { folder, .. } if update_many => {
                match updates.get(folder.as_str()) {
                    Some(&unit) => units[unit].push(index),
                    None => {
                        updates.insert(folder, units.len());
                        units.push(vec![index]);
                    }
                }
            }
            Action::Append { folder, size, .. } if append_many => {
                let slot = open.get(folder.as_str()).copied();
                match slot {
                    Some((unit, bytes)) if units[unit].len() < COUNT && bytes + size <= BYTES => {
                        units[unit].push(index);
                        open.insert(folder, (unit, bytes + size));
                    }
                    _ => {
                        open.insert(folder, (units.len(), *size));
                        units.push(vec![index]);
                    }
                }
            }
            _ => units.push(vec![index]),
        }
    }
    units
}

/// A worker's in-flight byte budget, in permits of 1 KiB.
fn permits_for(config: &Config) -> usize {
    usize::try_from((config.inflight_bytes_max >> 10).max(1))
        .unwrap_or(usize::MAX >> 4)
        .min(Semaphore::MAX_PERMITS)
}

/// Items per chunk read ahead of its copies between two local stores.
const LOCAL_CHUNK_ITEMS: usize = 256;

/// Source folders listed in one request ([`Store::list_items_many`]).
const LISTINGS_PER_REQUEST: usize = 64;

/// One source folder's listing, turned into work: the items to read, and the event that
/// records the listing once they are read (`None` when the listing changed nothing).
struct FolderWork {
    path: String,
    to_read: Vec<crate::store::ItemInfo>,
    listed: Option<Event>,
}

/// `items` in runs of at most `count` items and, unless one item alone is larger, `bytes` bytes
/// held in memory ([`resident_bytes`]: a large message is spooled, not held).
fn chunks(
    items: &[crate::store::ItemInfo],
    count: usize,
    bytes: u64,
) -> Vec<&[crate::store::ItemInfo]> {
    let mut out = Vec::new();
    let (mut start, mut total) = (0, 0u64);
    for (index, item) in items.iter().enumerate() {
        let size = resident_bytes(item.size);
        let full = index - start >= count.max(1) || (index > start && total + size > bytes);
        if full {
            out.push(&items[start..index]);
            start = index;
            total = 0;
        }
        total += size;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// Each change's result from a `*_many` update call of `count` changes in `folder` (a
/// deletion of something already gone counts as done), or the failure of the call as a whole.
fn update_results(
    called: Result<Vec<Result<(), StoreError>>, StoreError>,
    count: usize,
    folder: &str,
    deletions: bool,
) -> Result<Vec<WriteResult>, (FailureClass, String)> {
    match called {
        Ok(results) if results.len() == count => Ok(results
            .into_iter()
            .map(|result| match result {
                Ok(()) => Ok(None),
                Err(StoreError::NotFound(_)) if deletions => Ok(None),
                Err(error) => Err((class_of(&error), error.to_string())),
            })
            .collect()),
        Ok(results) => Err((
            FailureClass::Transient,
            format!(
                "the target answered {} results for {count} changes in {folder}",
                results.len()
            ),
        )),
        Err(error) => Err((class_of(&error), error.to_string())),
    }
}

fn class_of(error: &StoreError) -> FailureClass {
    match error {
        StoreError::Permanent(_) => FailureClass::Permanent,
        _ => FailureClass::Transient,
    }
}
