//! The pacer end to end: a migration into a memory target that enforces a server's limits
//! (calls in flight, requests and bytes per window) with a latency per call, on Tokio's paused
//! clock (the latencies and pauses cost no real time). Declared limits are never passed; limits
//! learned from throttling cost one pause per throttling, journaled as the wall time it took.

use std::time::Duration;

use ferry_engine::journal::ContentKey;
use ferry_engine::pacer::Window;
use ferry_engine::{
    Config, Event, Flags, MemoryLog, Pacers, Quiet, Run, RunContext, RunOptions, State, StopSignal,
    SystemClock,
};
use ferry_memory::{CallFigures, MemoryStore, ServerLimits};

const MESSAGES: usize = 300;

struct Ran {
    copied: u64,
    figures: CallFigures,
    journaled_pause: Duration,
    /// What the journal says the target's calls waited for its declared limits.
    paced: Vec<(String, u64)>,
    target: MemoryStore,
    source: MemoryStore,
}

fn migrate(limits: ServerLimits, paced: bool) -> Ran {
    let source = MemoryStore::new("source", 1);
    let mut rng = fastrand::Rng::with_seed(7);
    for n in 0..MESSAGES {
        let mut message = format!("Message-ID: <{n}@pacing>\r\n\r\n").into_bytes();
        let size = rng.usize(1_000..8_000);
        message.extend((0..size).map(|_| rng.alphanumeric() as u8));
        source.deliver(["INBOX", "Sent"][n % 2], message, Flags::new(), None);
    }
    let target = MemoryStore::new("target", 2);
    target.set_limits(limits);
    let log = MemoryLog::new(ContentKey::from_secret([3; 32]), Vec::new());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let summary = runtime.block_on(async {
        let mut run = Run::new(RunContext {
            source: &source,
            target: &target,
            log: &log,
            state: State::default(),
            options: RunOptions::default(),
            config: Config {
                jobs: 16,
                throttle_count_max: 10_000,
                ..Config::default()
            },
            clock: &SystemClock,
            watcher: &Quiet,
            stop: StopSignal::new(),
            pacers: (!paced).then(Pacers::unpaced),
        });
        run.execute(None).await.expect("run")
    });
    let journaled_ms: u64 = log
        .events()
        .into_iter()
        .flat_map(Event::flatten)
        .filter_map(|event| match event {
            Event::ServerThrottled { wait_ms, .. } => Some(wait_ms),
            _ => None,
        })
        .sum();
    let paced = log
        .events()
        .into_iter()
        .flat_map(Event::flatten)
        .filter_map(|event| match event {
            Event::Paced {
                side: ferry_engine::Side::Target,
                limit,
                wait_ms,
            } => Some((limit, wait_ms)),
            _ => None,
        })
        .collect();
    Ran {
        paced,
        copied: summary.counts.copied,
        figures: target.call_figures(),
        journaled_pause: Duration::from_millis(journaled_ms),
        target,
        source,
    }
}

fn limits(declared: bool) -> ServerLimits {
    ServerLimits {
        latency: Duration::from_millis(5),
        in_flight: Some(3),
        requests: Some(Window {
            max: 60,
            per: Duration::from_secs(1),
        }),
        bytes: Some(Window {
            max: 300_000,
            per: Duration::from_secs(1),
        }),
        declared,
    }
}

/// Every source message is on the target once.
fn complete(ran: &Ran) {
    assert_eq!(ran.copied, MESSAGES as u64);
    let count = |store: &MemoryStore| store.contents().values().map(Vec::len).sum::<usize>();
    assert_eq!(count(&ran.target), count(&ran.source));
}

#[test]
fn declared_limits_are_kept_without_a_single_throttled_call() {
    let ran = migrate(limits(true), true);
    complete(&ran);
    let figures = ran.figures;
    assert_eq!(figures.throttled, 0, "{figures:?}");
    assert!(figures.in_flight_most <= 3, "{figures:?}");
    assert!(figures.bytes_in_window_most <= 300_000, "{figures:?}");
    assert!(figures.calls >= MESSAGES as u64);
    assert_eq!(ran.journaled_pause, Duration::ZERO);
    // The journal says which declared limits held the calls back, and for how long.
    let limits: Vec<&str> = ran.paced.iter().map(|(limit, _)| limit.as_str()).collect();
    assert!(limits.contains(&"requests per window"), "{:?}", ran.paced);
    assert!(ran.paced.iter().all(|(_, ms)| *ms > 0));
}

#[test]
fn learned_limits_cost_few_throttles_and_the_journal_says_how_long_the_side_was_paused() {
    let unpaced = migrate(limits(false), false);
    let learned = migrate(limits(false), true);
    complete(&unpaced);
    complete(&learned);
    let share = |figures: CallFigures| figures.throttled as f64 / figures.calls as f64;
    // Without a pacer most calls are refused; with it, a few.
    assert!(share(unpaced.figures) > 0.5, "{:?}", unpaced.figures);
    assert!(share(learned.figures) < 0.3, "{:?}", learned.figures);
    assert!(learned.figures.calls * 3 < unpaced.figures.calls);
    // One pause per throttling, journaled as the wall time it took (the union of the waits the
    // server asked for), not as a sum of every throttled call's wait.
    let asked = learned.figures.paused_asked.as_secs_f64();
    let journaled = learned.journaled_pause.as_secs_f64();
    assert!(asked > 0.0);
    assert!(
        (journaled - asked).abs() <= 0.1 * asked,
        "journaled {journaled} s, asked {asked} s"
    );
    assert!(
        unpaced.journaled_pause > 3 * unpaced.figures.paused_asked,
        "without a pacer every call's wait is summed: {:?} against {:?}",
        unpaced.journaled_pause,
        unpaced.figures.paused_asked
    );
}

#[test]
fn items_of_a_batch_throttled_on_their_own_are_sent_again_together_not_one_by_one() {
    let source = MemoryStore::new("source", 1);
    let mut ids = Vec::new();
    for n in 0..120 {
        let message = format!("Message-ID: <{n}@batch>\r\n\r\nbody {n}\r\n").into_bytes();
        ids.push(source.deliver("INBOX", message, Flags::new(), None));
    }
    let target = MemoryStore::new("target", 2);
    target.set_append_many(true);
    let log = MemoryLog::new(ContentKey::from_secret([5; 32]), Vec::new());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let run = |target: &MemoryStore| {
        runtime.block_on(async {
            let mut run = Run::new(RunContext {
                source: &source,
                target,
                log: &log,
                state: State::replay(&log.events()),
                options: RunOptions::default(),
                config: Config::default(),
                clock: &SystemClock,
                watcher: &Quiet,
                stop: StopSignal::new(),
                pacers: None,
            });
            run.execute(Some(("memory:source", "memory:target")))
                .await
                .expect("run")
        })
    };
    assert_eq!(run(&target).counts.copied, 120);
    // Every message flagged on the source; the target answers 30% of a batch's items
    // "throttled" on their own.
    let mut seen = Flags::new();
    seen.set(ferry_engine::SystemFlag::Seen, true);
    for id in &ids {
        assert!(source.user_set_flags("INBOX", id, seen.clone()));
    }
    target.set_faults(ferry_memory::Faults {
        inner_throttle: 0.3,
        ..ferry_memory::Faults::default()
    });
    let (batches_before, singles_before) = target.update_calls();
    let summary = run(&target);
    assert_eq!(summary.counts.flags_updated, 120, "{summary:?}");
    let (batches, singles) = target.update_calls();
    assert_eq!(singles, singles_before, "no change was sent one by one");
    assert!(
        batches - batches_before >= 2,
        "the throttled ones went again in a batch"
    );
    assert!(
        target
            .contents()
            .values()
            .flatten()
            .all(|(_, _, flags)| *flags == seen),
        "every message is flagged on the target"
    );
}
