//! Pacing benchmark: one migration into a memory target that answers every call after a
//! latency and enforces a server's limits (calls in flight, requests and bytes per window),
//! throttling what passes them with a Retry-After, as Microsoft 365 does per mailbox. Prints a
//! table: the unthrottled run; the limits with no pacer (each throttled call waits its own
//! Retry-After and no more); the limits left to the pacer to learn from throttling; the limits
//! declared up front. `cargo bench -p ferry-memory --bench pacing [-- MESSAGES]`.

use std::time::{Duration, Instant};

use ferry_engine::journal::ContentKey;
use ferry_engine::pacer::Window;
use ferry_engine::{
    Config, Flags, MemoryLog, Pacers, Quiet, Run, RunContext, RunOptions, State, StopSignal,
    SystemClock,
};
use ferry_memory::{CallFigures, MemoryStore, ServerLimits};

/// What one run measured.
struct Measured {
    wall: Duration,
    copied: u64,
    figures: CallFigures,
    paused_recorded: Duration,
}

fn source(messages: usize) -> (MemoryStore, u64) {
    let store = MemoryStore::new("source", 1);
    let mut rng = fastrand::Rng::with_seed(2026);
    let mut bytes = 0;
    for n in 0..messages {
        let folder = ["INBOX", "Archive", "Sent"][n % 3];
        let mut message =
            format!("Message-ID: <{n}@pacing>\r\nSubject: message {n}\r\n\r\n").into_bytes();
        let body = rng.usize(2_000..30_000);
        message.extend((0..body).map(|_| rng.alphanumeric() as u8));
        bytes += message.len() as u64;
        store.deliver(folder, message, Flags::new(), None);
    }
    (store, bytes)
}

fn migrate(messages: usize, limits: ServerLimits, paced: bool) -> Measured {
    let (source, _) = source(messages);
    let target = MemoryStore::new("target", 2);
    target.set_append_many(false);
    target.set_limits(limits);
    let log = MemoryLog::new(ContentKey::from_secret([7; 32]), Vec::new());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let summary = runtime.block_on(async {
        let mut run = Run::new(RunContext {
            source: &source,
            target: &target,
            log: &log,
            state: State::default(),
            options: RunOptions::default(),
            config: Config {
                jobs: 32,
                throttle_count_max: 1_000,
                ..Config::default()
            },
            clock: &SystemClock,
            watcher: &Quiet,
            stop: StopSignal::new(),
            pacers: (!paced).then(Pacers::unpaced),
        });
        run.execute(None).await.expect("run")
    });
    let wall = started.elapsed();
    let paused_recorded = log
        .events()
        .iter()
        .flat_map(|event| event.clone().flatten())
        .filter_map(|event| match event {
            ferry_engine::Event::ServerThrottled { wait_ms, .. } => Some(wait_ms),
            _ => None,
        })
        .sum();
    Measured {
        wall,
        copied: summary.counts.copied,
        figures: target.call_figures(),
        paused_recorded: Duration::from_millis(paused_recorded),
    }
}

fn main() {
    let messages: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(1_500);
    let (_, total_bytes) = source(messages);
    let latency = Duration::from_millis(3);
    let window = Duration::from_secs(1);
    let free = migrate(
        messages,
        ServerLimits {
            latency,
            ..ServerLimits::default()
        },
        true,
    );
    // A: calls in flight and requests per window bind; B: the byte budget binds too (about a
    // tenth of what the unthrottled run sends per second).
    let requests = ServerLimits {
        latency,
        in_flight: Some(4),
        requests: Some(Window {
            max: 300,
            per: window,
        }),
        bytes: None,
        declared: false,
    };
    let bytes_budget = 2_000_000;
    let bytes = ServerLimits {
        requests: Some(Window {
            max: 400,
            per: window,
        }),
        bytes: Some(Window {
            max: bytes_budget,
            per: window,
        }),
        ..requests
    };
    println!(
        "pacing: {messages} messages, {:.1} MB, a memory target with {} ms per call; A: 4 calls \
         in flight, 300 requests per {} s; B: 4 calls in flight, 400 requests and {:.1} MB per \
         {} s",
        total_bytes as f64 / 1e6,
        latency.as_millis(),
        window.as_secs(),
        bytes_budget as f64 / 1e6,
        window.as_secs()
    );
    println!(
        "| limits | client | wall s | copied | calls | throttled | throttled % | pauses asked \
         (union) s | paused, journaled s | most in flight after 1st throttle | most bytes in a \
         window MB | byte budget used % |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    row("none", "", &free, None, window);
    for (name, limits, budget) in [("A", requests, None), ("B", bytes, Some(bytes_budget))] {
        let unpaced = migrate(messages, limits, false);
        let learned = migrate(messages, limits, true);
        let declared = migrate(
            messages,
            ServerLimits {
                declared: true,
                ..limits
            },
            true,
        );
        row(
            name,
            "no pacer: each call waits its own Retry-After",
            &unpaced,
            budget,
            window,
        );
        row(
            name,
            "pacer, limits learned from throttling",
            &learned,
            budget,
            window,
        );
        row(name, "pacer, limits declared", &declared, budget, window);
        // No client can beat the limits themselves: the calls the store accepted go at most
        // `max` per window, the bytes too; the last window's calls leave at its start.
        let floor = |run: &Measured| {
            let whole = |count: u64, window: Option<Window>| {
                window.map_or(0.0, |w| {
                    (count.saturating_sub(1) / w.max) as f64 * w.per.as_secs_f64()
                })
            };
            let accepted = run.figures.calls - run.figures.throttled;
            free.wall
                .as_secs_f64()
                .max(whole(accepted, limits.requests))
                .max(whole(run.figures.bytes, limits.bytes))
        };
        for (client, run) in [
            ("no pacer", &unpaced),
            ("learned", &learned),
            ("declared", &declared),
        ] {
            let bound = 1.2 * (free.wall + run.figures.paused_asked).as_secs_f64();
            println!(
                "{name}, {client}: wall {:.2} s; 1.2 × (unthrottled {:.2} s + pauses asked {:.2} s) \
                 = {bound:.2} s ({}); floor the limits set for its calls and bytes {:.2} s, wall / \
                 floor {:.2}",
                run.wall.as_secs_f64(),
                free.wall.as_secs_f64(),
                run.figures.paused_asked.as_secs_f64(),
                if run.wall.as_secs_f64() <= bound {
                    "met"
                } else {
                    "not met"
                },
                floor(run),
                run.wall.as_secs_f64() / floor(run),
            );
        }
    }
}

fn row(limits: &str, client: &str, run: &Measured, budget: Option<u64>, window: Duration) {
    let figures = run.figures;
    // Bytes sent against what the budget allowed over the run (one window more than the run's
    // length: the first window is full from the start).
    let used = budget.map_or("-".to_owned(), |budget| {
        let windows = run.wall.as_secs_f64() / window.as_secs_f64() + 1.0;
        format!(
            "{:.0}",
            figures.bytes as f64 / (windows * budget as f64) * 100.0
        )
    });
    println!(
        "| {limits} | {client} | {:.2} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {:.2} | {used} |",
        run.wall.as_secs_f64(),
        run.copied,
        figures.calls,
        figures.throttled,
        figures.throttled as f64 / figures.calls.max(1) as f64 * 100.0,
        figures.paused_asked.as_secs_f64(),
        run.paused_recorded.as_secs_f64(),
        if figures.throttled > 0 {
            figures.in_flight_most_after_throttle.to_string()
        } else {
            "-".to_owned()
        },
        figures.bytes_in_window_most as f64 / 1e6,
    );
}
