//! What the memory store can be told to do wrong, how every call meets its faults and the
//! server's limits, and how it lists changed folders.

use std::time::Duration;

use ferry_engine::store::{StoreError, StoreResult};

use super::{Inner, MemoryStore};

/// Probabilities (0.0–1.0) and limits of injected faults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// A call fails with a transient error before doing anything.
    pub error: f64,
    /// A call answers "throttled, retry after 1–5 s" before doing anything.
    pub throttle: f64,
    /// A call never answers (the caller's timeout fires); a write may or may not have landed.
    pub timeout: f64,
    /// A write fails part-way: nothing lands, the caller sees a transient error.
    pub partial_write: f64,
    /// A write lands but its reply is lost: the caller sees a transient error.
    pub lost_reply: f64,
    /// From this call on (counting from 1), every call fails as if the server died.
    pub crash_at_step: Option<u64>,
    /// An item of a batch of flag changes or deletions is answered "throttled" on its own, the
    /// others done (as Microsoft Graph's JSON batches answer 429 per request).
    pub inner_throttle: f64,
}

/// How a folder the store cannot read shows ([`MemoryStore::set_unreadable`]); each holds the
/// store's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// The folder listing says so (as Dovecot, whose LIST-STATUS or STATUS refuses the folder
    /// with `NO [SERVERBUG] Internal error occurred`), and its items cannot be listed or read.
    Listed(String),
    /// The folder listing shows it as usual, but its items cannot be listed or read (as a
    /// STATUS that succeeds and an EXAMINE that is refused).
    Items(String),
}

impl Unreadable {
    pub(super) fn words(&self) -> &str {
        match self {
            Unreadable::Listed(words) | Unreadable::Items(words) => words,
        }
    }
}

/// How a memory store lists a folder that changed since the token given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChangeListings {
    /// In full.
    #[default]
    Full,
    /// Items from the token's next UID on in full, the flags of those before, and every UID
    /// before that is gone (whether or not it ever existed), as QRESYNC's VANISHED (EARLIER).
    Changes,
    /// As `Changes`, except that a new item is told among the flags of items seen before:
    /// a listing the caller cannot use, for testing that it lists the folder in full.
    ChangesWithPhantom,
}

/// What a faulty call does.
pub(super) enum Fate {
    Proceed,
    Fail(StoreError),
    /// Do the write, then lose the reply.
    LoseReply,
    /// Hang; when `land` the write happens first.
    Hang {
        land: bool,
    },
}

impl MemoryStore {
    pub(super) fn fate(&self, write: bool) -> Fate {
        let mut inner = self.lock();
        inner.steps += 1;
        let faults = inner.faults.clone();
        if faults.crash_at_step.is_some_and(|at| inner.steps >= at) {
            return Fate::Fail(StoreError::Unusable(
                "the server is gone (simulated crash)".into(),
            ));
        }
        let rng = &mut inner.rng;
        if rng.f64() < faults.error {
            return Fate::Fail(StoreError::Transient("connection reset (simulated)".into()));
        }
        if rng.f64() < faults.throttle {
            let retry_after_ms = rng.u64(1_000..=5_000);
            return Fate::Fail(StoreError::Throttled {
                retry_after_ms: Some(retry_after_ms),
                reason: "too many requests (simulated)".into(),
            });
        }
        if rng.f64() < faults.timeout {
            return Fate::Hang {
                land: write && rng.bool(),
            };
        }
        if write && rng.f64() < faults.partial_write {
            return Fate::Fail(StoreError::Transient(
                "connection dropped during the write (simulated)".into(),
            ));
        }
        if write && rng.f64() < faults.lost_reply {
            return Fate::LoseReply;
        }
        Fate::Proceed
    }

    /// Applies the fault plan around a read.
    pub(super) async fn read<T>(
        &self,
        op: impl FnOnce(&mut Inner) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let _call = self.enter(0).await?;
        match self.fate(false) {
            Fate::Fail(error) => Err(error),
            Fate::Hang { .. } => hang().await,
            Fate::Proceed | Fate::LoseReply => op(&mut self.lock()),
        }
    }

    /// Applies the fault plan around a write.
    pub(super) async fn write<T>(
        &self,
        op: impl FnOnce(&mut Inner) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.write_sized(0, op).await
    }

    /// Applies the server's limits and the fault plan around a write of `bytes`.
    pub(super) async fn write_sized<T>(
        &self,
        bytes: u64,
        op: impl FnOnce(&mut Inner) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let _call = self.enter(bytes).await?;
        match self.fate(true) {
            Fate::Fail(error) => Err(error),
            Fate::Hang { land } => {
                if land {
                    let _ = op(&mut self.lock());
                }
                hang().await
            }
            Fate::LoseReply => {
                op(&mut self.lock())?;
                Err(StoreError::Transient(
                    "connection reset before the reply (simulated)".into(),
                ))
            }
            Fate::Proceed => op(&mut self.lock()),
        }
    }
}

async fn hang<T>() -> StoreResult<T> {
    // Longer than any caller's timeout; with tokio's paused clock this costs no real time.
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    Err(StoreError::Transient("no answer (simulated)".into()))
}
