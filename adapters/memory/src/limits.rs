//! A server's limits, as the memory store enforces them: a latency per call, a cap on calls in
//! flight, and request and byte budgets over sliding windows (Microsoft 365 has all three per
//! mailbox). A call over a limit is answered "throttled, retry after" the time until the limit
//! frees, as such a server answers (HTTP 429 with Retry-After); the store never sleeps to
//! spare its caller. What it saw is counted, for the tests and the pacing benchmark.

use std::time::Duration;

use ferry_engine::pacer::{Ledger, Limits, Union, Window};
use ferry_engine::store::StoreError;
use tokio::time::Instant;

/// The limits a memory store enforces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerLimits {
    /// Each call takes this long.
    pub latency: Duration,
    /// Calls in flight at once; one more is throttled.
    pub in_flight: Option<usize>,
    /// Requests per window; one more is throttled until the oldest leaves the window.
    pub requests: Option<Window>,
    /// Bytes written per window; a write that would pass it is throttled.
    pub bytes: Option<Window>,
    /// Whether the store declares these limits in its capabilities (as a Graph adapter does
    /// for Microsoft's documented ones), or leaves them to be learned from throttling.
    pub declared: bool,
}

impl ServerLimits {
    /// What the store declares to its caller.
    pub fn declared_limits(&self) -> Limits {
        if !self.declared {
            return Limits::default();
        }
        Limits {
            in_flight: self.in_flight,
            requests: self.requests,
            bytes: self.bytes,
        }
    }
}

/// What the store saw of the calls made to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallFigures {
    /// Calls received.
    pub calls: u64,
    /// Calls answered "throttled".
    pub throttled: u64,
    /// The most calls in flight at once (throttled ones not counted: they are answered at once).
    pub in_flight_most: usize,
    /// After the first throttled answer, the most calls in flight at once counting each call
    /// as it arrives, throttled or not: what the caller sent at once once it had been told.
    pub in_flight_most_after_throttle: usize,
    /// The most bytes accepted within any one byte window.
    pub bytes_in_window_most: u64,
    /// Bytes accepted in all.
    pub bytes: u64,
    /// The union of the pauses asked for (each Retry-After from the moment it was given).
    pub paused_asked: Duration,
}

impl super::MemoryStore {
    /// Makes the store enforce these limits (and count the calls afresh).
    pub fn set_limits(&self, limits: ServerLimits) {
        self.lock().gate = Gate {
            limits,
            ..Gate::default()
        };
    }

    /// What the store saw of the calls since its limits were set.
    pub fn call_figures(&self) -> CallFigures {
        self.lock().gate.figures
    }

    /// Lets a call carrying `bytes` in, or answers "throttled"; the call takes the store's
    /// latency and is in flight until the returned value is dropped.
    pub(crate) async fn enter(&self, bytes: u64) -> Result<Option<InFlight>, StoreError> {
        let latency = {
            let mut inner = self.lock();
            if inner.gate.limits == ServerLimits::default() {
                return Ok(None);
            }
            inner.gate.enter(Instant::now(), bytes)?;
            inner.gate.limits.latency
        };
        let call = InFlight(self.inner.clone());
        tokio::time::sleep(latency).await;
        Ok(Some(call))
    }
}

/// A call in flight in a memory store with limits; leaves when dropped.
pub(crate) struct InFlight(std::sync::Arc<std::sync::Mutex<super::Inner>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .gate
            .leave();
    }
}

/// The enforcing state.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    pub(crate) limits: ServerLimits,
    in_flight: usize,
    requests: Ledger,
    bytes: Ledger,
    throttled_once: bool,
    /// The pauses asked for.
    paused: Union,
    pub(crate) figures: CallFigures,
}

impl Gate {
    /// Admits a call carrying `bytes` at `now`, or says how long to wait.
    pub(crate) fn enter(&mut self, now: Instant, bytes: u64) -> Result<(), StoreError> {
        let now = now.into_std();
        self.figures.calls += 1;
        if self.throttled_once {
            self.figures.in_flight_most_after_throttle = self
                .figures
                .in_flight_most_after_throttle
                .max(self.in_flight + 1);
        }
        let limits = self.limits;
        if let Some(wait) = self.over(now, bytes) {
            self.figures.throttled += 1;
            self.throttled_once = true;
            self.paused.add(now, now + wait);
            self.figures.paused_asked = self.paused.total;
            return Err(StoreError::Throttled {
                retry_after_ms: Some((wait.as_millis() as u64).max(1)),
                reason: "too many requests (simulated server limits)".into(),
            });
        }
        self.in_flight += 1;
        self.figures.in_flight_most = self.figures.in_flight_most.max(self.in_flight);
        if limits.requests.is_some() {
            self.requests.add(now, 1);
        }
        if limits.bytes.is_some() && bytes > 0 {
            self.bytes.add(now, bytes);
            self.figures.bytes_in_window_most =
                self.figures.bytes_in_window_most.max(self.bytes.total());
        }
        self.figures.bytes += bytes;
        Ok(())
    }

    /// A call admitted by [`Gate::enter`] is answered.
    pub(crate) fn leave(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// How long a call at `now` must wait, when it is over a limit.
    fn over(&mut self, now: std::time::Instant, bytes: u64) -> Option<Duration> {
        let limits = self.limits;
        if limits.in_flight.is_some_and(|max| self.in_flight >= max) {
            // No way to know when one ends: ask for a latency's worth.
            return Some(limits.latency.max(Duration::from_millis(1)));
        }
        let full = |ledger: &mut Ledger, window: Option<Window>, amount: u64| {
            let Window { max, per } = window?;
            ledger.full_until(now, per, amount, max)
        };
        let until = full(&mut self.requests, limits.requests, 1).or_else(|| {
            (bytes > 0)
                .then(|| full(&mut self.bytes, limits.bytes, bytes))
                .flatten()
        })?;
        Some(until.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(limits: ServerLimits) -> Gate {
        Gate {
            limits,
            ..Gate::default()
        }
    }

    fn retry_after(result: Result<(), StoreError>) -> Option<u64> {
        match result {
            Err(StoreError::Throttled { retry_after_ms, .. }) => retry_after_ms,
            Err(other) => panic!("{other}"),
            Ok(()) => None,
        }
    }

    #[test]
    fn calls_over_the_limits_are_throttled_with_the_time_until_the_limit_frees() {
        let t0 = Instant::now();
        let mut gate = gate(ServerLimits {
            latency: Duration::from_millis(20),
            in_flight: Some(2),
            requests: Some(Window {
                max: 3,
                per: Duration::from_secs(10),
            }),
            bytes: Some(Window {
                max: 1_000,
                per: Duration::from_secs(5),
            }),
            declared: false,
        });
        assert_eq!(retry_after(gate.enter(t0, 600)), None);
        assert_eq!(retry_after(gate.enter(t0, 0)), None);
        assert_eq!(retry_after(gate.enter(t0, 0)), Some(20), "two in flight");
        gate.leave();
        gate.leave();
        assert_eq!(
            retry_after(gate.enter(t0 + Duration::from_secs(1), 500)),
            Some(4_000),
            "600 + 500 bytes pass 1,000 until 5 s"
        );
        assert_eq!(
            retry_after(gate.enter(t0 + Duration::from_secs(1), 0)),
            None
        );
        assert_eq!(
            retry_after(gate.enter(t0 + Duration::from_secs(2), 0)),
            Some(8_000),
            "three requests in the window until 10 s"
        );
        assert_eq!(gate.figures.calls, 6);
        assert_eq!(gate.figures.throttled, 3);
        assert_eq!(gate.figures.in_flight_most, 2);
        assert_eq!(gate.figures.bytes_in_window_most, 600);
        // Pauses asked: 20 ms, then 4 s from 1 s (to 5 s), then 8 s from 2 s (to 10 s: 5 s more).
        assert_eq!(gate.figures.paused_asked, Duration::from_millis(9_020));
    }

    #[test]
    fn undeclared_limits_are_not_told_to_the_caller() {
        let limits = ServerLimits {
            in_flight: Some(4),
            ..ServerLimits::default()
        };
        assert_eq!(limits.declared_limits(), Limits::default());
        let declared = ServerLimits {
            declared: true,
            ..limits
        };
        assert_eq!(declared.declared_limits().in_flight, Some(4));
    }
}
