//! When a run must end before its plan is done: a stop asked for (SIGINT/SIGTERM), a store
//! with no room or that cannot be used at all, or a target that refuses write after write.
//! Writes not yet started are then not attempted (journaled as never applied, so the next run
//! plans them again), waits between retries end early, and the run returns at once instead of
//! failing item after item for hours.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::event::Side;
use crate::store::StoreError;

use super::StopSignal;

/// Target writes failing in a row that end the run, at least (more with more jobs: twice as
/// many as are in flight at once).
const FAILING_IN_A_ROW_MIN: usize = 8;

/// A wait between retries looks this often whether the run is ending.
const PAUSE_SLICE_MS: u64 = 100;

/// Shared by a run and its workers.
#[derive(Debug)]
pub(super) struct Halt {
    stop: StopSignal,
    fatal: Mutex<Option<(Side, StoreError)>>,
    /// Target writes that failed in a row, after their retries, with none landing between.
    failing: AtomicUsize,
    /// How many such failures end the run.
    limit: usize,
}

impl Halt {
    pub(super) fn new(stop: StopSignal, jobs: usize) -> Halt {
        Halt {
            stop,
            fatal: Mutex::new(None),
            failing: AtomicUsize::new(0),
            limit: (2 * jobs).max(FAILING_IN_A_ROW_MIN),
        }
    }

    /// Whether the run is ending: nothing new is started.
    pub(super) fn halted(&self) -> bool {
        self.stop.is_stopped() || self.fatal().is_some()
    }

    /// The error that ends the run, if one does.
    pub(super) fn fatal(&self) -> Option<(Side, StoreError)> {
        self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Why writes are not attempted any more, in words.
    pub(super) fn why(&self) -> String {
        match self.fatal() {
            Some((side, error)) => {
                format!("not attempted: the {} failed: {error}", side_name(side))
            }
            None => "not attempted: the run was stopped".into(),
        }
    }

    /// Records a store error that ends the run (the first one wins).
    pub(super) fn end(&self, side: Side, error: StoreError) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
        if fatal.is_none() {
            *fatal = Some((side, error));
        }
    }

    /// Looks at a store error: one that no later call can get past ends the run.
    pub(super) fn check(&self, side: Side, error: &StoreError) {
        if matches!(error, StoreError::Full(_) | StoreError::Unusable(_)) {
            self.end(side, error.clone());
        }
    }

    /// Counts a target write's outcome: after `limit` failures in a row (refused access on
    /// every folder, a server refusing everything), the run ends instead of trying the rest.
    pub(super) fn write_outcome(&self, landed: bool, reason: &str) {
        if landed {
            self.failing.store(0, Ordering::Relaxed);
            return;
        }
        let failing = self.failing.fetch_add(1, Ordering::Relaxed) + 1;
        if failing >= self.limit {
            self.end(
                Side::Target,
                StoreError::Unusable(format!(
                    "{failing} writes in a row failed, none landed (the last: {reason}); fix \
                     the target, then run the same command again"
                )),
            );
        }
    }

    /// Waits `ms`, or less if the run is ending meanwhile.
    pub(super) async fn pause(&self, ms: u64) {
        let mut left = ms;
        while left > 0 && !self.halted() {
            let slice = left.min(PAUSE_SLICE_MS);
            tokio::time::sleep(Duration::from_millis(slice)).await;
            left -= slice;
        }
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Source => "source",
        Side::Target => "target",
    }
}
