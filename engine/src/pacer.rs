//! One pacer per side of a run: every store call is admitted by it before it is sent.
//!
//! Servers state their limits in two ways. Some are declared up front (Microsoft 365: 4
//! requests in flight per mailbox, 10,000 requests per 10 minutes, 150 MB of upload per
//! 5 minutes); the store says them in [`Limits`] and the pacer keeps every call inside them,
//! so they are not hit at all. The rest are learned from throttling answers (HTTP 429 with
//! Retry-After, IMAP `[UNAVAILABLE]`): then the whole side pauses together, once, for as long
//! as the server asked (no call hammers a throttling server while another waits), and the cap
//! on calls in flight halves and recovers slowly as calls succeed (additive increase,
//! multiplicative decrease). Stores classify and declare; they never sleep themselves.
//!
//! The policy is [`Core`], a value driven by calls with the current instant, tested without a
//! clock; [`Pacer`] is the thin async side (Tokio's clock, so paused-time tests cost nothing).
//! A pacer can be shared by several runs (`Arc<Pacer>`), for budgets that span mailboxes;
//! or a run's own pacer can sit [`Pacer::under`] a shared one (a tenant's, an app's): a call
//! then goes out only when both let it, and a throttling answer teaches both, so every
//! mailbox of the tenant slows down when one finds a limit they share.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A budget over a sliding window: at most `max` (requests, or bytes) in any `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The most the window may hold.
    pub max: u64,
    /// Its length.
    pub per: Duration,
}

/// The limits a store declares for one mailbox (`None`: no such limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Calls in flight at once.
    pub in_flight: Option<usize>,
    /// Requests per window.
    pub requests: Option<Window>,
    /// Bytes uploaded per window.
    pub bytes: Option<Window>,
}

/// Which limit made a call wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Limit {
    /// The server said to wait (Retry-After or its like).
    Server,
    /// Calls in flight (declared, or lowered after throttling).
    InFlight,
    /// Requests per window.
    Requests,
    /// Bytes per window.
    Bytes,
}

impl Limit {
    /// The limit in words, for events and reports.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Server => "server's retry-after",
            Limit::InFlight => "calls in flight",
            Limit::Requests => "requests per window",
            Limit::Bytes => "bytes per window",
        }
    }
}

/// How much longer than its window an admitted call counts in it: the server starts its own
/// window when the call reaches it, a little after the pacer let it go.
fn slack(per: Duration) -> Duration {
    per / 50
}

/// What [`Core::admit`] decides for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Send it now (it is counted in flight until [`Core::release`]).
    Go,
    /// Ask again at this instant.
    Until(Instant, Limit),
    /// Ask again when a call in flight ends.
    Release,
}

/// A union of waits: how much wall time they cover together, and until when the latest runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Union {
    /// The wall time covered so far.
    pub total: Duration,
    /// When the latest wait ends (`None`: none yet).
    pub until: Option<Instant>,
}

impl Union {
    /// Adds a wait from `now` to `until`; returns the wall time it adds (zero when a wait
    /// counted before already covers it).
    pub fn add(&mut self, now: Instant, until: Instant) -> Duration {
        let from = self.until.map_or(now, |latest| latest.max(now));
        let added = until.saturating_duration_since(from);
        self.total += added;
        self.until = Some(self.until.map_or(until, |latest| latest.max(until)));
        added
    }

    /// Whether a wait runs at `now`, and until when.
    pub fn ongoing(&self, now: Instant) -> Option<Instant> {
        self.until.filter(|until| *until > now)
    }
}

/// What a sliding window holds: each admitted amount (1 per request, or bytes) with when it
/// was admitted, for as long as it counts.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    entries: VecDeque<(Instant, u64)>,
    total: u64,
}

impl Ledger {
    /// Forgets what was admitted `span` or more before `now`; then, when `amount` more would
    /// pass `max`, the instant the oldest entry leaves. An amount larger than `max` goes
    /// alone, into an empty window.
    pub fn full_until(
        &mut self,
        now: Instant,
        span: Duration,
        amount: u64,
        max: u64,
    ) -> Option<Instant> {
        while let Some((at, size)) = self.entries.front().copied()
            && now.saturating_duration_since(at) >= span
        {
            self.entries.pop_front();
            self.total -= size;
        }
        let (oldest, _) = self.entries.front()?;
        (self.total + amount > max).then_some(*oldest + span)
    }

    /// Counts `amount` admitted at `now`.
    pub fn add(&mut self, now: Instant, amount: u64) {
        self.entries.push_back((now, amount));
        self.total += amount;
    }

    /// What the window holds now (as of the last [`Ledger::full_until`]).
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// The pacing policy, without a clock.
#[derive(Debug)]
pub struct Core {
    limits: Limits,
    /// The cap on calls in flight, adaptive: starts at the declared limit (unbounded when none),
    /// halves on throttling, grows by one per `cap` successes, never past `ceiling`.
    cap: f64,
    /// What the cap may grow back to: the declared limit, and below it the calls that were in
    /// flight beside one the server throttled when that many had never succeeded together
    /// (one more was too many): the cap never probes again past what the server refused.
    ceiling: f64,
    /// The most calls that were in flight together when one of them succeeded: a throttling
    /// at or below it is a budget over time, not the number in flight.
    proven: usize,
    in_flight: usize,
    /// The pauses the server asked for (their union, not a sum of parallel waits); no call
    /// goes out before the latest ends.
    pause: Union,
    requests: Ledger,
    bytes: Ledger,
    /// The most calls ever in flight after the first throttling (`None` before one).
    peak_after_throttle: Option<usize>,
    /// Per declared window limit (requests, bytes): the waits for it.
    waited: [Union; 2],
    /// Whether throttling is learned from at all (off: each call waits out its own answer, as
    /// a client without a pacer does; for comparison in the benchmark).
    learns: bool,
}

impl Core {
    /// A pacer for a store with these limits.
    pub fn new(limits: Limits) -> Core {
        Core {
            limits,
            cap: limits.in_flight.map_or(f64::INFINITY, |n| n.max(1) as f64),
            ceiling: limits.in_flight.map_or(f64::INFINITY, |n| n.max(1) as f64),
            proven: 0,
            in_flight: 0,
            pause: Union::default(),
            requests: Ledger::default(),
            bytes: Ledger::default(),
            peak_after_throttle: None,
            waited: [Union::default(); 2],
            learns: true,
        }
    }

    /// A pacer that paces nothing: no declared limit, and a throttled call pauses only itself
    /// (what a client without one does; the benchmark's baseline).
    pub fn unpaced() -> Core {
        Core {
            learns: false,
            ..Core::new(Limits::default())
        }
    }

    /// Whether a call carrying `bytes` may go out at `now`; when it may, it is counted.
    pub fn admit(&mut self, now: Instant, bytes: u64) -> Admit {
        if let Some(until) = self.pause.ongoing(now) {
            return Admit::Until(until, Limit::Server);
        }
        if self.in_flight as f64 >= self.cap.floor().max(1.0) {
            return Admit::Release;
        }
        if let Some(window) = self.limits.requests {
            let span = window.per + slack(window.per);
            if let Some(until) = self.requests.full_until(now, span, 1, window.max) {
                self.waited[0].add(now, until);
                return Admit::Until(until, Limit::Requests);
            }
        }
        if let Some(window) = self.limits.bytes
            && bytes > 0
        {
            let span = window.per + slack(window.per);
            if let Some(until) = self.bytes.full_until(now, span, bytes, window.max) {
                self.waited[1].add(now, until);
                return Admit::Until(until, Limit::Bytes);
            }
        }
        self.in_flight += 1;
        if let Some(peak) = &mut self.peak_after_throttle {
            *peak = (*peak).max(self.in_flight);
        }
        if self.limits.requests.is_some() {
            self.requests.add(now, 1);
        }
        if self.limits.bytes.is_some() && bytes > 0 {
            self.bytes.add(now, bytes);
        }
        Admit::Go
    }

    /// Wall time calls waited for each declared window limit (only those waited for).
    pub fn waited(&self) -> Vec<(Limit, Duration)> {
        [Limit::Requests, Limit::Bytes]
            .into_iter()
            .zip(self.waited.iter().map(|waits| waits.total))
            .filter(|(_, total)| !total.is_zero())
            .collect()
    }

    /// A call admitted earlier ended; `succeeded` lets the cap grow back.
    pub fn release(&mut self, succeeded: bool) {
        debug_assert!(self.in_flight > 0, "a release without a call in flight");
        if succeeded {
            self.proven = self.proven.max(self.in_flight);
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        if succeeded && self.cap.is_finite() {
            self.cap = (self.cap + 1.0 / self.cap.floor().max(1.0)).min(self.ceiling);
        }
    }

    /// The server throttled a call at `now` and asked for `wait`: the whole side pauses until
    /// then, and the cap halves (once per pause: the other calls throttled by the same limit
    /// do not halve it again). Returns the wall time this adds to the pauses so far.
    pub fn throttled(&mut self, now: Instant, wait: Duration) -> Duration {
        if !self.learns {
            return wait;
        }
        if self.pause.ongoing(now).is_none() {
            // The throttled call has ended: with it, more were in flight than ever succeeded
            // together, so those still in flight are as many as the server takes at once. (A
            // call throttled alone says nothing about calls in flight.)
            if self.in_flight > 0 && self.in_flight + 1 > self.proven {
                self.ceiling = self.ceiling.min(self.in_flight.max(1) as f64);
            }
            let base = self.cap.min(self.in_flight.max(1) as f64);
            self.cap = (base / 2.0).max(1.0);
            self.peak_after_throttle.get_or_insert(0);
        }
        self.pause.add(now, now + wait)
    }

    /// The cap on calls in flight now (`None`: unbounded).
    pub fn cap(&self) -> Option<usize> {
        self.cap
            .is_finite()
            .then(|| self.cap.floor().max(1.0) as usize)
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Wall time spent paused so far.
    pub fn paused(&self) -> Duration {
        self.pause.total
    }

    /// The most calls in flight at once since the first throttling (`None`: never throttled).
    pub fn peak_after_throttle(&self) -> Option<usize> {
        self.peak_after_throttle
    }
}

/// The async side of a [`Core`]: calls wait in [`Pacer::admit`] until it lets them go.
#[derive(Debug)]
pub struct Pacer {
    core: Mutex<Core>,
    changed: Notify,
    /// The shared pacer a call must also pass ([`Pacer::under`]).
    parent: Option<Arc<Pacer>>,
}

/// A call admitted by a [`Pacer`]; its end is told by [`Permit::done`] or by dropping it.
#[derive(Debug)]
pub struct Permit<'a> {
    pacer: &'a Pacer,
    succeeded: bool,
    /// The shared pacer's permit, when there is one.
    parent: Option<Box<Permit<'a>>>,
}

impl Permit<'_> {
    /// The call succeeded (the cap may grow back).
    pub fn done(mut self) {
        self.succeeded = true;
        if let Some(parent) = self.parent.take() {
            parent.done();
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.pacer.lock().release(self.succeeded);
        self.pacer.changed.notify_waiters();
    }
}

impl Pacer {
    /// A pacer for a store with these limits.
    pub fn new(limits: Limits) -> Pacer {
        Pacer::with_core(Core::new(limits))
    }

    /// A pacer with this policy (e.g. [`Core::unpaced`]).
    pub fn with_core(core: Core) -> Pacer {
        Pacer {
            core: Mutex::new(core),
            changed: Notify::new(),
            parent: None,
        }
    }

    /// A pacer for one mailbox with these limits, whose calls also pass `parent` (a budget
    /// shared with other mailboxes); throttling answers teach both.
    pub fn under(limits: Limits, parent: Arc<Pacer>) -> Pacer {
        Pacer {
            parent: Some(parent),
            ..Pacer::new(limits)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until a call carrying `bytes` may go out; the call is in flight until the permit
    /// is dropped.
    pub async fn admit(&self, bytes: u64) -> Permit<'_> {
        // Its own turn first, then the shared one: a mailbox waiting on its own limits holds
        // none of the shared budget.
        let mut permit = self.admit_own(bytes).await;
        if let Some(parent) = &self.parent {
            permit.parent = Some(Box::new(Box::pin(parent.admit(bytes)).await));
        }
        permit
    }

    async fn admit_own(&self, bytes: u64) -> Permit<'_> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let decision = self.lock().admit(now(), bytes);
            match decision {
                Admit::Go => {
                    return Permit {
                        pacer: self,
                        succeeded: false,
                        parent: None,
                    };
                }
                Admit::Until(at, _) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = &mut changed => {}
                    }
                }
                Admit::Release => changed.await,
            }
        }
    }

    /// The server throttled a call and asked for `wait`; returns the wall time this adds to
    /// the side's pauses (zero when an ongoing pause already covers it).
    pub fn throttled(&self, wait: Duration) -> Duration {
        let added = self.lock().throttled(now(), wait);
        self.changed.notify_waiters();
        if let Some(parent) = &self.parent {
            parent.throttled(wait);
        }
        added
    }

    /// A look at the policy's figures (cap, calls in flight, time paused).
    pub fn look<T>(&self, look: impl FnOnce(&Core) -> T) -> T {
        look(&self.lock())
    }
}

/// Tokio's clock, so that tests on a paused runtime advance it without waiting.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[cfg(test)]
mod tests;
