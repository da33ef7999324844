//! The executor: one run. It settles writes left in doubt by an earlier crash, observes the
//! source (reading only items it has not seen), looks at target folders it has not seen, plans
//! the delta, and carries it out in batches: a batch's intents are group-committed before any of
//! its writes start, the writes run with bounded concurrency and retries, the target is flushed,
//! and the outcomes are group-committed. Every event is recorded before the state depends on it.
//!
//! The executor decides nothing the planner can: what to copy, move, delete or look at comes
//! from pure functions in [`crate::projection::delta`]; the executor carries it out. Its parts:
//! - `types` — the public types of a run: [`Config`], [`Clock`], [`Watcher`], [`Note`],
//!   [`StopSignal`], [`RunContext`], [`RunError`], [`RunSummary`], [`Counts`];
//! - `lifecycle` — [`Run::new`], [`Run::execute`]: the steps of a run, in order;
//! - `in_doubt` — settling writes an earlier run left in doubt;
//! - `source` — observing the source (folders, listings);
//! - `observe` — observing the target;
//! - `read` — reading source items (and copying them while the next are read);
//! - `carry` — carrying out a plan, batch by batch;
//! - `write` — one write, or one request of several, and its outcome;
//! - `retry` — retries and backoff; `halt` — when a run must end early;
//! - `folders` — deleting target folders ferry emptied.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use tokio::sync::Semaphore;

use crate::body::Body;
use crate::event::{ContentHash, Event, FailureClass, NativeId, OpId, RunOptions};
use crate::log::EventLog;
use crate::projection::Projection;
use crate::projection::source::SourceState;
use crate::projection::target::TargetState;
use crate::store::{Store, StoreError};

mod carry;
mod folders;
mod halt;
mod in_doubt;
mod keyed;
mod lifecycle;
mod observe;
mod read;
mod retry;
mod source;
mod types;
mod write;

pub use types::{
    Clock, Config, Counts, Note, Pacers, Quiet, RunContext, RunError, RunSummary, StopSignal,
    SystemClock, Watcher,
};

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
        crate::projection::fold(events)
    }
}

impl Projection for State {
    fn apply(&mut self, event: &Event) {
        self.source.apply(event);
        self.target.apply(event);
    }
}

// Limits. Each bounds memory, requests or waits; none depends on what a server sends.

/// Items per chunk read ahead of its copies between two local stores.
const LOCAL_CHUNK_ITEMS: usize = 256;

/// Source folders listed in one request ([`Store::list_items_many`]).
const LISTINGS_PER_REQUEST: usize = 64;

/// Items read in one request from a store that reads several at once ([`Store::fetch_many`]).
const FETCH_GROUP_ITEMS: usize = 64;

/// Bytes held in memory by one such request (unless one item alone is larger).
const FETCH_GROUP_BYTES: u64 = 4 << 20;

/// Such requests in flight at once (fewer with fewer jobs).
const FETCH_GROUPS_IN_FLIGHT_MAX: usize = 4;

/// Appends into one folder (with `append_many`), or moves between two folders, in one unit of
/// work: one request.
const UNIT_MESSAGES_MAX: usize = 64;

/// Bytes of the appends in one unit of work.
const UNIT_BYTES_MAX: u64 = 8 << 20;

/// Store notices recorded per side at the end of a run.
const NOTICES_PER_SIDE_MAX: usize = 100;

/// Doublings of the backoff base at most (`backoff_max_ms` caps the wait anyway).
const BACKOFF_DOUBLINGS_MAX: u32 = 20;

/// The attempt a wait after throttling backs off as, at most, when the store names no wait.
const THROTTLE_BACKOFF_ATTEMPT_MAX: u32 = 6;

const _: () = assert!(
    LOCAL_CHUNK_ITEMS > 0
        && LISTINGS_PER_REQUEST > 0
        && FETCH_GROUP_ITEMS > 0
        && FETCH_GROUP_BYTES > 0
        && FETCH_GROUPS_IN_FLIGHT_MAX > 0
        && UNIT_MESSAGES_MAX > 0
        && UNIT_BYTES_MAX > 0
        && BACKOFF_DOUBLINGS_MAX < 32
);

/// Bytes of source items read while observing, kept so the copy that follows at once does not
/// read them again, by (source folder, id).
type Prefetched = Mutex<BTreeMap<(String, NativeId), Body>>;

/// An item's id and bytes, kept after reading.
type Kept = (NativeId, Body);

/// How one write ended: the target id it made, if any, or how and why it failed.
type WriteResult = Result<Option<NativeId>, (FailureClass, String)>;

/// What carrying out (part of) a plan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Progress {
    /// Writes that failed.
    failed: usize,
    /// Whether it stopped before its end (a stop asked for; or, for `Run::ahead`, folders
    /// left unlisted or items unread).
    paused: bool,
    /// What it wrote.
    counts: Counts,
}

impl std::ops::AddAssign for Progress {
    fn add_assign(&mut self, other: Progress) {
        self.failed += other.failed;
        self.paused |= other.paused;
        self.counts += other.counts;
    }
}

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
    /// What copies made while observing wrote. Paused is also set when a stop left folders
    /// unlisted or items unread.
    ahead: Progress,
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
    /// Every store call goes through its side's pacer.
    pacers: Pacers,
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
    /// What ferry knows is on the target: an in-doubt lookup never takes one of these ids,
    /// and every write sent is among its pending intents.
    known: &'a TargetState,
    /// Target ids claimed by writes of this batch.
    claimed: Mutex<BTreeSet<(String, NativeId)>>,
    /// Writes given their outcome by this worker: never two outcomes for one write.
    finished: Mutex<BTreeSet<OpId>>,
    prefetched: &'a Prefetched,
    /// Whether the run is ending (see `halt`).
    halt: &'a halt::Halt,
    /// The pacers store calls go through (see [`crate::pacer`]).
    pacers: &'a Pacers,
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
        pacers: &'a Pacers,
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
            finished: Mutex::new(BTreeSet::new()),
            prefetched,
            halt,
            pacers,
        }
    }
}

/// A worker's in-flight byte budget, in permits of 1 KiB.
fn permits_for(config: &Config) -> usize {
    usize::try_from((config.inflight_bytes_max >> 10).max(1))
        .unwrap_or(usize::MAX >> 4)
        .min(Semaphore::MAX_PERMITS)
}

fn class_of(error: &StoreError) -> FailureClass {
    match error {
        StoreError::Permanent(_) => FailureClass::Permanent,
        StoreError::Conflict(_) => FailureClass::Conflict,
        _ => FailureClass::Transient,
    }
}

/// A failed write's class and reason as the journal keeps them: a conflict's own words (its
/// class says it is one), any other error as it displays.
fn failure(error: StoreError) -> (FailureClass, String) {
    match error {
        StoreError::Conflict(words) => (FailureClass::Conflict, words),
        other => (class_of(&other), other.to_string()),
    }
}
