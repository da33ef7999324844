//! The public types of a run: how it is set up ([`RunContext`], [`Config`], [`Clock`],
//! [`Watcher`], [`StopSignal`]), what it tells as it goes ([`Note`]) and how it ends
//! ([`RunSummary`], [`Counts`], [`RunError`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::event::{Millis, RunId, RunOptions, RunOutcome, Side};
use crate::log::{EventLog, LogError};
use crate::pacer::Pacer;
use crate::projection::delta::Delta;
use crate::store::{Store, StoreError};

use super::State;

/// Everything a run is made of: the two stores, the journal, the state replayed from it, how
/// to work, and who reads the clock, watches and may stop it. Given to [`super::Run::new`].
pub struct RunContext<'a> {
    /// Where mail is read.
    pub source: &'a dyn Store,
    /// Where mail is written.
    pub target: &'a dyn Store,
    /// Where every event is recorded.
    pub log: &'a dyn EventLog,
    /// The journal's events, already replayed.
    pub state: State,
    /// How the run was asked to work (journaled with it).
    pub options: RunOptions,
    /// Bounds and knobs (not journaled).
    pub config: Config,
    /// The clock.
    pub clock: &'a dyn Clock,
    /// Who hears the run's [`Note`]s.
    pub watcher: &'a dyn Watcher,
    /// Raised to pause the run.
    pub stop: StopSignal,
    /// The pacers every store call goes through, when the caller shares them across runs
    /// (a budget per tenant); `None` makes one per side from the stores' declared limits.
    pub pacers: Option<Pacers>,
}

/// The pacers of a run's two sides ([`crate::pacer`]).
#[derive(Debug, Clone)]
pub struct Pacers {
    /// Paces the calls to the source.
    pub source: Arc<Pacer>,
    /// Paces the calls to the target.
    pub target: Arc<Pacer>,
}

impl Pacers {
    /// One pacer per store, from the limits it declares.
    pub fn for_stores(source: &dyn Store, target: &dyn Store) -> Pacers {
        Pacers {
            source: Arc::new(Pacer::new(source.capabilities().limits)),
            target: Arc::new(Pacer::new(target.capabilities().limits)),
        }
    }

    /// Pacers that pace nothing: each throttled call waits out its own answer and no more
    /// (a client without a pacer; for comparison in tests and benchmarks).
    pub fn unpaced() -> Pacers {
        Pacers {
            source: Arc::new(Pacer::with_core(crate::pacer::Core::unpaced())),
            target: Arc::new(Pacer::with_core(crate::pacer::Core::unpaced())),
        }
    }

    /// The pacer of one side.
    pub fn side(&self, side: Side) -> &Pacer {
        match side {
            Side::Source => &self.source,
            Side::Target => &self.target,
        }
    }
}

impl std::fmt::Debug for RunContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("source", &self.source.describe())
            .field("target", &self.target.describe())
            .field("options", &self.options)
            .field("config", &self.config)
            .finish_non_exhaustive()
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
    pub(super) fn on(side: Side) -> impl Fn(StoreError) -> RunError + Copy {
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
    /// Keyed items (events, contacts) updated in place.
    pub updated: u64,
    /// Items left alone because their target item changed behind ferry's back.
    pub conflicts: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.copied += other.copied;
        self.copied_bytes += other.copied_bytes;
        self.flags_updated += other.flags_updated;
        self.deleted += other.deleted;
        self.moved += other.moved;
        self.folders += other.folders;
        self.updated += other.updated;
        self.conflicts += other.conflicts;
    }
}
