//! Retries and backoff: every store call goes through [`Worker::retry`] (or
//! [`Worker::retry_with`]): bounded in time, retried with jittered, doubling waits on transient
//! failures, waiting out throttling (each pause of a side journaled once), and cut short when
//! the run is ending (see `halt`). Every attempt is admitted by its side's pacer first
//! (`crate::pacer`).

use std::time::Duration;

use crate::event::{Event, Side};
use crate::store::StoreError;

use super::{BACKOFF_DOUBLINGS_MAX, Note, THROTTLE_BACKOFF_ATTEMPT_MAX, Worker};

/// Characters of a server's reason for throttling kept in the journal.
const THROTTLE_REASON_CHARS_MAX: usize = 200;

impl Worker<'_> {
    /// The wait before attempt `attempt`: half the doubled base (capped), plus up to as much
    /// again at random.
    pub(super) fn backoff_ms(&self, attempt: u32) -> u64 {
        let ceiling = self
            .config
            .backoff_base_ms
            .saturating_mul(1 << attempt.min(BACKOFF_DOUBLINGS_MAX))
            .min(self.config.backoff_max_ms);
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        ceiling / 2 + rng.u64(0..=ceiling / 2)
    }

    /// The server asked one side to wait `wait_ms`, for the limit it names (`limit`, its
    /// words): the side pauses, and the wall time this adds is what the journal says (calls
    /// answered by the same throttling add nothing more).
    pub(super) fn throttled(&self, side: Side, wait_ms: u64, limit: &str, events: &mut Vec<Event>) {
        let added = self
            .pacers
            .side(side)
            .throttled(Duration::from_millis(wait_ms));
        if !added.is_zero() {
            let added_ms = u64::try_from(added.as_millis()).unwrap_or(u64::MAX);
            self.watcher.note(Note::Throttled(side, added_ms));
            events.push(Event::ServerThrottled {
                side,
                limit: limit.chars().take(THROTTLE_REASON_CHARS_MAX).collect(),
                wait_ms: added_ms,
            });
        }
    }

    /// Calls `call` until it succeeds, fails for good, or runs out of attempts; waits out
    /// throttling (recording each wait as an event in `events`).
    pub(super) async fn retry<T, F, Fut>(
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
    pub(super) async fn retry_with<T, F, Fut>(
        &self,
        side: Side,
        events: &mut Vec<Event>,
        attempts: u32,
        call: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        self.retry_sized(side, events, attempts, 0, call).await
    }

    /// Like [`Worker::retry_with`] for a call that uploads `bytes` (paced against the store's
    /// byte budget). Every attempt waits for the side's pacer first; a throttled answer pauses
    /// the whole side (one pause, journaled once, however many calls it answered).
    pub(super) async fn retry_sized<T, F, Fut>(
        &self,
        side: Side,
        events: &mut Vec<Event>,
        attempts: u32,
        bytes: u64,
        mut call: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let pacer = self.pacers.side(side);
        let mut attempt = 0;
        let mut throttled = 0;
        loop {
            let permit = pacer.admit(bytes).await;
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
            if result.is_ok() {
                permit.done();
            } else {
                drop(permit);
            }
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
                    let wait_ms = retry_after_ms.unwrap_or_else(|| {
                        self.backoff_ms(throttled.min(THROTTLE_BACKOFF_ATTEMPT_MAX))
                    });
                    self.throttled(side, wait_ms, &reason, events);
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
}
