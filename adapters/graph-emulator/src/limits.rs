//! Throttling as Microsoft documents it for Outlook resources
//! (https://learn.microsoft.com/en-us/graph/throttling, and
//! https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits):
//! per app and mailbox, 4 concurrent requests (MailboxConcurrency), 10,000 requests per
//! 10 minutes, 150 MB uploaded (PATCH, POST, PUT) per 5 minutes; a request past a limit is
//! answered `429 Too Many Requests` with `Retry-After` in seconds. Occasional 503/504 on demand.
//! Every budget is a setting, so tests can make them bite, and each mailbox keeps counters
//! of what clients did: requests in flight, bytes uploaded per window, downloads, pauses asked.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The limits of one emulated service.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Requests of one mailbox in flight at once.
    pub concurrency: Option<usize>,
    /// Requests of the app in flight at once over every mailbox: "Outlook can execute up to 4
    /// concurrent requests" under the limits per app ID, "regardless of whether the requests
    /// all access the same mailbox, or access different mailboxes"
    /// (https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits).
    /// Off in the documented profile (older versions of the page, and the field, count it per
    /// mailbox); on where a test asks.
    pub app_concurrency: Option<usize>,
    /// Requests per mailbox per window.
    pub requests: Option<(u64, Duration)>,
    /// Bytes uploaded per mailbox per window.
    pub upload: Option<(u64, Duration)>,
    /// Share of requests answered 429 besides the limits (a storm).
    pub throttle_rate: f64,
    /// Share of requests answered 503 or 504.
    pub fail_rate: f64,
    /// What a 429 or 503 asks to wait.
    pub retry_after: Duration,
    /// Time each request takes.
    pub latency: Duration,
}

impl Limits {
    /// No limit at all.
    pub fn none() -> Limits {
        Limits {
            concurrency: None,
            app_concurrency: None,
            requests: None,
            upload: None,
            throttle_rate: 0.0,
            fail_rate: 0.0,
            retry_after: Duration::from_secs(1),
            latency: Duration::ZERO,
        }
    }

    /// The documented limits.
    pub fn documented() -> Limits {
        Limits {
            concurrency: Some(4),
            requests: Some((10_000, Duration::from_secs(600))),
            upload: Some((150 * 1024 * 1024, Duration::from_secs(300))),
            ..Limits::none()
        }
    }

    /// The limits of the app's meter: its concurrency alone.
    pub fn of_app(&self) -> Option<Limits> {
        self.app_concurrency.map(|most| Limits {
            concurrency: Some(most),
            retry_after: self.retry_after,
            ..Limits::none()
        })
    }

    /// A named profile: `none`, `documented`, `storm` (the documented limits and 35% of
    /// requests answered 429), `flaky` (the documented limits and 2% answered 503/504).
    pub fn profile(name: &str) -> Option<Limits> {
        Some(match name {
            "none" => Limits::none(),
            "documented" => Limits::documented(),
            "storm" => Limits {
                throttle_rate: 0.35,
                ..Limits::documented()
            },
            "flaky" => Limits {
                fail_rate: 0.02,
                ..Limits::documented()
            },
            _ => return None,
        })
    }
}

/// What the emulator saw of one mailbox's clients.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counters {
    pub requests: u64,
    pub throttled: u64,
    pub failed: u64,
    /// `$value` downloads answered.
    pub downloads: u64,
    /// Messages created (JSON, MIME or copies).
    pub creates: u64,
    /// Items exported (`exportItems`, each item given).
    #[serde(default)]
    pub exports: u64,
    /// Items imported through an import session.
    #[serde(default)]
    pub imports: u64,
    pub uploaded_bytes: u64,
    /// The most bytes uploaded within one upload window.
    pub max_window_upload_bytes: u64,
    pub max_in_flight: usize,
    /// The most in flight after the first 429.
    pub max_in_flight_after_throttle: usize,
    /// Time during which the emulator had asked clients to wait (the union of the pauses
    /// asked, not their sum), in milliseconds.
    pub pause_ms: u64,
}

/// Why a request was not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub retry_after: Duration,
    pub reason: &'static str,
}

/// One mailbox's meter.
#[derive(Debug, Default)]
pub struct Meter {
    in_flight: usize,
    throttled_once: bool,
    requests: VecDeque<Instant>,
    uploads: VecDeque<(Instant, u64)>,
    pause_until: Option<Instant>,
    pub counters: Counters,
}

impl Meter {
    /// A request arrives with `upload` bytes: let in (then [`Meter::done`] when answered) or
    /// refused.
    pub fn admit(&mut self, limits: &Limits, now: Instant, upload: u64) -> Result<(), Refusal> {
        self.in_flight += 1;
        self.counters.requests += 1;
        self.counters.max_in_flight = self.counters.max_in_flight.max(self.in_flight);
        if self.throttled_once {
            self.counters.max_in_flight_after_throttle = self
                .counters
                .max_in_flight_after_throttle
                .max(self.in_flight);
        }
        let refusal = self.check(limits, now, upload);
        match &refusal {
            Err(refusal) => {
                self.in_flight -= 1;
                if refusal.status == 429 {
                    self.counters.throttled += 1;
                    self.throttled_once = true;
                } else {
                    self.counters.failed += 1;
                }
                self.asked_pause(now, refusal.retry_after);
            }
            Ok(()) => {
                self.requests.push_back(now);
                if upload > 0 {
                    self.uploads.push_back((now, upload));
                    self.counters.uploaded_bytes += upload;
                    let window: u64 = self.uploads.iter().map(|(_, b)| b).sum();
                    self.counters.max_window_upload_bytes =
                        self.counters.max_window_upload_bytes.max(window);
                }
            }
        }
        refusal
    }

    /// A request let in was answered.
    pub fn done(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    fn asked_pause(&mut self, now: Instant, wait: Duration) {
        let end = now + wait;
        let counted_from = match self.pause_until {
            Some(until) if until > now => until,
            _ => now,
        };
        if end > counted_from {
            self.counters.pause_ms += (end - counted_from).as_millis() as u64;
            self.pause_until = Some(end);
        }
    }

    fn check(&mut self, limits: &Limits, now: Instant, upload: u64) -> Result<(), Refusal> {
        let throttle = |retry_after, reason| Refusal {
            status: 429,
            retry_after,
            reason,
        };
        if limits
            .concurrency
            .is_some_and(|concurrency| self.in_flight > concurrency)
        {
            return Err(throttle(limits.retry_after, "MailboxConcurrency"));
        }
        if let Some((count, window)) = limits.requests {
            while self
                .requests
                .front()
                .is_some_and(|at| now.duration_since(*at) >= window)
            {
                self.requests.pop_front();
            }
            if self.requests.len() as u64 >= count {
                let wait = self
                    .requests
                    .front()
                    .map_or(window, |at| window.saturating_sub(now.duration_since(*at)));
                return Err(throttle(round_up(wait), "ApplicationMailboxRequests"));
            }
        }
        if let Some((bytes, window)) = limits.upload {
            while self
                .uploads
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) >= window)
            {
                self.uploads.pop_front();
            }
            let mut used: u64 = self.uploads.iter().map(|(_, b)| b).sum();
            if upload > 0 && used + upload > bytes {
                // Wait until enough of the window has passed for this upload to fit.
                let mut wait = Duration::ZERO;
                for (at, size) in &self.uploads {
                    used -= size;
                    wait = window.saturating_sub(now.duration_since(*at));
                    if used + upload <= bytes {
                        break;
                    }
                }
                return Err(throttle(round_up(wait), "MailboxUploadBytes"));
            }
        }
        if limits.throttle_rate > 0.0 && fastrand::f64() < limits.throttle_rate {
            return Err(throttle(limits.retry_after, "ApplicationThrottled"));
        }
        if limits.fail_rate > 0.0 && fastrand::f64() < limits.fail_rate {
            return Err(Refusal {
                status: if fastrand::bool() { 503 } else { 504 },
                retry_after: limits.retry_after,
                reason: "ServiceUnavailable",
            });
        }
        Ok(())
    }
}

/// `Retry-After` is in whole seconds: a wait rounds up.
fn round_up(wait: Duration) -> Duration {
    Duration::from_secs(wait.as_millis().div_ceil(1000).max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_concurrent_request_is_throttled_and_counted() {
        let limits = Limits::documented();
        let mut meter = Meter::default();
        let now = Instant::now();
        for _ in 0..4 {
            meter.admit(&limits, now, 0).expect("within the limit");
        }
        let refusal = meter.admit(&limits, now, 0).expect_err("fifth");
        assert_eq!(
            (refusal.status, refusal.reason),
            (429, "MailboxConcurrency")
        );
        assert_eq!(meter.counters.max_in_flight, 5);
        meter.done();
        meter.admit(&limits, now, 0).expect("room again");
        assert_eq!(meter.counters.max_in_flight_after_throttle, 4);
        assert_eq!(meter.counters.pause_ms, 1000);
    }

    #[test]
    fn uploads_past_the_window_budget_wait_for_it_to_pass() {
        let limits = Limits {
            upload: Some((1000, Duration::from_secs(300))),
            ..Limits::none()
        };
        let mut meter = Meter::default();
        let start = Instant::now();
        meter.admit(&limits, start, 600).expect("fits");
        meter.done();
        let later = start + Duration::from_secs(100);
        let refusal = meter
            .admit(&limits, later, 600)
            .expect_err("over the budget");
        assert_eq!(refusal.retry_after, Duration::from_secs(200));
        assert_eq!(meter.counters.max_window_upload_bytes, 600);
        meter
            .admit(&limits, start + Duration::from_secs(300), 600)
            .expect("the first upload left the window");
        assert_eq!(meter.counters.uploaded_bytes, 1200);
    }

    #[test]
    fn pauses_asked_at_once_count_as_one() {
        let limits = Limits {
            concurrency: Some(1),
            ..Limits::none()
        };
        let mut meter = Meter::default();
        let now = Instant::now();
        meter.admit(&limits, now, 0).expect("first");
        for _ in 0..3 {
            meter.admit(&limits, now, 0).expect_err("busy");
        }
        assert_eq!(meter.counters.pause_ms, 1000);
        assert_eq!(meter.counters.throttled, 3);
    }
}
