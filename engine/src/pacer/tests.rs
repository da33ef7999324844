use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn the_declared_cap_on_calls_in_flight_holds_until_one_ends() {
    let t0 = Instant::now();
    let mut core = Core::new(Limits {
        in_flight: Some(4),
        ..Limits::default()
    });
    for _ in 0..4 {
        assert_eq!(core.admit(t0, 0), Admit::Go);
    }
    assert_eq!(core.admit(t0, 0), Admit::Release);
    core.release(true);
    assert_eq!(core.admit(t0, 0), Admit::Go);
    assert_eq!(core.cap(), Some(4), "never above what the store declared");
}

#[test]
fn without_declared_limits_nothing_waits() {
    let t0 = Instant::now();
    let mut core = Core::new(Limits::default());
    for _ in 0..1_000 {
        assert_eq!(core.admit(t0, 1 << 20), Admit::Go);
    }
    assert_eq!(core.cap(), None);
}

#[test]
fn requests_per_window_slide() {
    let t0 = Instant::now();
    let mut core = Core::new(Limits {
        requests: Some(Window {
            max: 3,
            per: secs(10),
        }),
        ..Limits::default()
    });
    // A request counts for its window and 2% more (the server's window starts when the
    // request reaches it): 10.2 s.
    let span = ms(10_200);
    assert_eq!(core.admit(t0, 0), Admit::Go);
    assert_eq!(core.admit(t0 + secs(4), 0), Admit::Go);
    assert_eq!(core.admit(t0 + secs(5), 0), Admit::Go);
    assert_eq!(
        core.admit(t0 + secs(6), 0),
        Admit::Until(t0 + span, Limit::Requests)
    );
    assert_eq!(
        core.admit(t0 + secs(10), 0),
        Admit::Until(t0 + span, Limit::Requests)
    );
    // The first request leaves the window at 10.2 s; the second at 14.2 s.
    assert_eq!(core.admit(t0 + span, 0), Admit::Go);
    assert_eq!(
        core.admit(t0 + secs(11), 0),
        Admit::Until(t0 + secs(4) + span, Limit::Requests)
    );
}

#[test]
fn bytes_per_window_hold_and_a_call_larger_than_the_budget_goes_alone() {
    let t0 = Instant::now();
    let mut core = Core::new(Limits {
        bytes: Some(Window {
            max: 100,
            per: secs(5),
        }),
        ..Limits::default()
    });
    let span = ms(5_100);
    assert_eq!(core.admit(t0, 60), Admit::Go);
    assert_eq!(
        core.admit(t0 + secs(1), 50),
        Admit::Until(t0 + span, Limit::Bytes)
    );
    assert_eq!(core.admit(t0 + secs(1), 40), Admit::Go, "60 + 40 fits");
    // Calls without bytes (reads, listings) are not held by the upload budget.
    assert_eq!(core.admit(t0 + secs(1), 0), Admit::Go);
    assert_eq!(
        core.admit(t0 + secs(2), 150),
        Admit::Until(t0 + span, Limit::Bytes)
    );
    assert_eq!(
        core.admit(t0 + span, 150),
        Admit::Until(t0 + secs(1) + span, Limit::Bytes)
    );
    assert_eq!(
        core.admit(t0 + secs(1) + span, 150),
        Admit::Go,
        "alone in the window"
    );
}

#[test]
fn waits_for_declared_windows_count_as_their_union() {
    let t0 = Instant::now();
    let mut core = Core::new(Limits {
        requests: Some(Window {
            max: 1,
            per: secs(10),
        }),
        ..Limits::default()
    });
    assert_eq!(core.admit(t0, 0), Admit::Go);
    // Two calls told to wait until 10.2 s, from 0 s and from 5 s: 10.2 s of waiting, not 15.4.
    assert!(matches!(
        core.admit(t0, 0),
        Admit::Until(_, Limit::Requests)
    ));
    assert!(matches!(
        core.admit(t0 + secs(5), 0),
        Admit::Until(_, Limit::Requests)
    ));
    assert_eq!(core.waited(), vec![(Limit::Requests, ms(10_200))]);
}

#[test]
fn a_throttle_pauses_the_whole_side_and_pauses_count_as_their_union() {
    let t0 = Instant::now();
    let mut core = Core::new(Limits::default());
    assert_eq!(core.throttled(t0, secs(2)), secs(2));
    assert_eq!(
        core.admit(t0 + secs(1), 0),
        Admit::Until(t0 + secs(2), Limit::Server)
    );
    // Overlapping answers of the same throttling add only what they reach beyond it.
    assert_eq!(core.throttled(t0 + secs(1), secs(2)), secs(1));
    assert_eq!(core.throttled(t0 + ms(1_500), ms(500)), Duration::ZERO);
    assert_eq!(
        core.admit(t0 + ms(2_500), 0),
        Admit::Until(t0 + secs(3), Limit::Server),
        "a shorter answer never shortens the pause"
    );
    assert_eq!(core.admit(t0 + secs(3), 0), Admit::Go);
    // A later, separate throttling adds its whole length.
    assert_eq!(core.throttled(t0 + secs(10), secs(1)), secs(1));
    assert_eq!(core.paused(), secs(4));
}

#[test]
fn the_cap_halves_once_per_pause_and_grows_back_slowly() {
    let t0 = Instant::now();
    let mut core = Core::new(Limits {
        in_flight: Some(8),
        ..Limits::default()
    });
    for _ in 0..8 {
        assert_eq!(core.admit(t0, 0), Admit::Go);
    }
    core.throttled(t0, secs(1));
    assert_eq!(core.cap(), Some(4));
    core.throttled(t0 + ms(10), secs(1));
    assert_eq!(
        core.cap(),
        Some(4),
        "the same throttling, answered to other calls"
    );
    // The eight calls end; after the pause only four go at once.
    for _ in 0..8 {
        core.release(false);
    }
    let after = t0 + secs(2);
    for _ in 0..4 {
        assert_eq!(core.admit(after, 0), Admit::Go);
    }
    assert_eq!(core.admit(after, 0), Admit::Release);
    // Four successes at a cap of 4 raise it by one.
    for _ in 0..4 {
        core.release(true);
    }
    assert_eq!(core.cap(), Some(5));
    assert_eq!(core.peak_after_throttle(), Some(4));
    // Back to the declared cap at most.
    for _ in 0..200 {
        assert_eq!(core.admit(after, 0), Admit::Go);
        core.release(true);
    }
    assert_eq!(core.cap(), Some(8));
}

#[test]
fn an_unpaced_core_lets_every_call_go_and_pauses_nothing() {
    let t0 = Instant::now();
    let mut core = Core::unpaced();
    for _ in 0..100 {
        assert_eq!(core.admit(t0, 1_000), Admit::Go);
    }
    assert_eq!(
        core.throttled(t0, secs(3)),
        secs(3),
        "each call waits its own"
    );
    assert_eq!(core.admit(t0, 0), Admit::Go);
    assert_eq!(core.cap(), None);
}

#[test]
fn an_undeclared_limit_learned_from_throttling_caps_at_half_of_what_was_in_flight() {
    let t0 = Instant::now();
    let mut core = Core::new(Limits::default());
    for _ in 0..10 {
        core.admit(t0, 0);
    }
    core.throttled(t0, ms(100));
    assert_eq!(core.cap(), Some(5));
}

/// A runtime whose clock moves only when every task waits.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

#[test]
fn calls_wait_for_the_pacer_and_one_throttle_pauses_them_all_once() {
    paused_runtime().block_on(async {
        let pacer = Arc::new(Pacer::new(Limits {
            in_flight: Some(3),
            ..Limits::default()
        }));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let started = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for n in 0..12_u64 {
            let (pacer, in_flight, most) = (pacer.clone(), in_flight.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let permit = pacer.admit(0).await;
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(ms(100)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                if n == 0 {
                    // The server answers the first call: wait 5 s.
                    pacer.throttled(secs(5));
                } else {
                    permit.done();
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        assert!(most.load(Ordering::SeqCst) <= 3);
        let elapsed = started.elapsed();
        // One shared 5 s pause, not one per waiting call; the cap halved to 1 for the rest.
        assert_eq!(pacer.look(Core::paused), secs(5));
        assert!(elapsed >= secs(5) && elapsed < secs(7), "{elapsed:?}");
    });
}

#[test]
fn after_a_throttling_the_cap_never_grows_past_what_the_server_took() {
    // No declared limit; the server takes 4 calls at once and throttles the fifth.
    let t0 = Instant::now();
    let mut core = Core::new(Limits::default());
    for _ in 0..5 {
        assert_eq!(core.admit(t0, 0), Admit::Go);
    }
    core.release(false);
    core.throttled(t0, ms(100));
    let cap = core.cap().expect("a cap once throttled");
    assert!(cap <= 4, "halved from what was in flight: {cap}");
    for _ in 0..4 {
        core.release(true);
    }
    // A long quiet stretch of successes: the cap grows back to 4, not beyond.
    let later = t0 + secs(1);
    for _ in 0..10_000 {
        while core.admit(later, 0) == Admit::Go {}
        assert!(core.in_flight() <= 4, "{} in flight", core.in_flight());
        while core.in_flight() > 0 {
            core.release(true);
        }
    }
    assert_eq!(core.cap(), Some(4));
    assert_eq!(core.peak_after_throttle(), Some(4));
}

#[test]
fn mailboxes_under_one_tenant_share_its_cap_and_its_pauses() {
    paused_runtime().block_on(async {
        // Each mailbox may have 4 calls in flight; the tenant 3 over all of them.
        let tenant = Arc::new(Pacer::new(Limits {
            in_flight: Some(3),
            ..Limits::default()
        }));
        let mailbox = |_: usize| {
            Arc::new(Pacer::under(
                Limits {
                    in_flight: Some(4),
                    ..Limits::default()
                },
                tenant.clone(),
            ))
        };
        let mailboxes: Vec<Arc<Pacer>> = (0..3).map(mailbox).collect();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for n in 0..24_usize {
            let pacer = mailboxes[n % 3].clone();
            let (in_flight, most) = (in_flight.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let permit = pacer.admit(0).await;
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(ms(100)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                permit.done();
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(
            most.load(Ordering::SeqCst),
            3,
            "the tenant's cap holds over mailboxes"
        );
        assert_eq!(
            tenant.look(Core::in_flight),
            0,
            "every shared permit released"
        );

        // One mailbox throttled: the tenant pauses, so another mailbox's next call waits too.
        let started = tokio::time::Instant::now();
        mailboxes[0].throttled(secs(4));
        let permit = mailboxes[2].admit(0).await;
        permit.done();
        assert!(started.elapsed() >= secs(4), "{:?}", started.elapsed());
        assert_eq!(mailboxes[2].look(Core::paused), Duration::ZERO);
        assert_eq!(tenant.look(Core::paused), secs(4));
    });
}
