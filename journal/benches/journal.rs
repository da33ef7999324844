//! `cargo bench -p ferry-journal`: the journal's throughput, size and memory, beside plain
//! postcard-into-fjall without sealing (the ceiling). Prints one table; no timing is asserted.
//!
//! Set FERRY_BENCH_EVENTS to change the replay corpus size (default 1,000,000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use ferry_journal::{CreateOptions, Journal, KdfParams, KeyFileSecret, KeySource, Passphrase};
use fjall::{Database, KeyspaceCreateOptions, PersistMode};
use serde::{Deserialize, Serialize};

/// About 100 bytes encoded, shaped like an "item seen" event: ids, a hash, sizes, flags, a date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BenchEvent {
    folder: u32,
    native_id: u64,
    validity: u32,
    hash: [u8; 32],
    size: u64,
    flags: Vec<u8>,
    date: i64,
    modseq: u64,
    note: String,
}

fn event(i: u64) -> BenchEvent {
    BenchEvent {
        folder: (i % 17) as u32,
        native_id: i * 3 + 1,
        validity: 1_700_000_000,
        hash: *blake3::hash(&i.to_le_bytes()).as_bytes(),
        size: 2_000 + i % 90_000,
        flags: vec![1, 4],
        date: 1_760_000_000 + i as i64,
        modseq: 90_000 + i,
        note: format!("item {i:>10} of folder seen"),
    }
}

const SINGLE_APPENDS: u64 = 2_000;
/// Runs of the corpus write and replay; the median is reported.
const REPEATS: usize = 3;
const BATCH: usize = 256;
const THREADS: u64 = 4;
const THREAD_APPENDS: u64 = 2_000;

/// The two things compared: the sealed journal and the unsealed ceiling.
trait Store: Send + Sync {
    fn append_one(&self, event: &BenchEvent);
    fn append_batch(&self, events: &[BenchEvent]);
    fn replay(&self) -> u64;
}

impl Store for Journal<BenchEvent> {
    fn append_one(&self, event: &BenchEvent) {
        self.append(event).unwrap();
    }
    fn append_batch(&self, events: &[BenchEvent]) {
        Journal::append_batch(self, events).unwrap();
    }
    fn replay(&self) -> u64 {
        let mut count = 0;
        for entry in Journal::replay(self, 1) {
            std::hint::black_box(entry.unwrap());
            count += 1;
        }
        count
    }
}

/// Plain postcard bytes in fjall, keyed by big-endian sequence number, flushed the same way.
struct Plain {
    db: Database,
    records: fjall::Keyspace,
    next: std::sync::Mutex<u64>,
}

impl Plain {
    fn open(path: &Path) -> Plain {
        let db = Database::builder(path)
            .manual_journal_persist(true)
            .open()
            .unwrap();
        let records = db
            .keyspace("records", KeyspaceCreateOptions::default)
            .unwrap();
        let next = records
            .last_key_value()
            .map(|g| u64::from_be_bytes(g.key().unwrap().as_ref().try_into().unwrap()))
            .unwrap_or(0);
        Plain {
            db,
            records,
            next: std::sync::Mutex::new(next),
        }
    }
}

impl Store for Plain {
    fn append_one(&self, event: &BenchEvent) {
        self.append_batch(std::slice::from_ref(event));
    }
    fn append_batch(&self, events: &[BenchEvent]) {
        {
            let mut next = self.next.lock().unwrap();
            let mut batch = self.db.batch();
            for event in events {
                *next += 1;
                batch.insert(
                    &self.records,
                    next.to_be_bytes(),
                    postcard::to_stdvec(event).unwrap(),
                );
            }
            batch.commit().unwrap();
        }
        self.db.persist(PersistMode::SyncAll).unwrap();
    }
    fn replay(&self) -> u64 {
        let mut count = 0;
        for guard in self.records.iter() {
            let (_, value) = guard.into_inner().unwrap();
            let event: BenchEvent = postcard::from_bytes(&value).unwrap();
            std::hint::black_box(event);
            count += 1;
        }
        count
    }
}

#[derive(Default)]
struct Figures {
    single_per_s: f64,
    batch_per_s: f64,
    threads_per_s: f64,
    replay_per_s: f64,
    replay_s: f64,
    disk_bytes_per_event: f64,
    table_bytes_per_event: f64,
    replay_peak_rss_mb: f64,
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// Single and concurrent one-at-a-time appends.
fn measure_small<S: Store + 'static>(dir: &Path, open: &dyn Fn(&Path) -> S) -> Figures {
    let mut figures = Figures::default();

    let single = dir.join("single");
    let store = open(&single);
    let started = Instant::now();
    for i in 0..SINGLE_APPENDS {
        store.append_one(&event(i));
    }
    figures.single_per_s = per_second(SINGLE_APPENDS, started.elapsed());
    drop(store);

    let threads = dir.join("threads");
    let store = std::sync::Arc::new(open(&threads));
    let started = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..THREAD_APPENDS {
                    store.append_one(&event(t * THREAD_APPENDS + i));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    figures.threads_per_s = per_second(THREADS * THREAD_APPENDS, started.elapsed());
    drop(store);

    figures
}

/// Writes `events` in group-committed batches into a fresh store; returns events per second.
fn write_corpus<S: Store>(
    corpus: &Path,
    events: &[BenchEvent],
    open: &dyn Fn(&Path) -> S,
    flush: &dyn Fn(&S),
) -> f64 {
    if corpus.exists() {
        std::fs::remove_dir_all(corpus).unwrap();
    }
    let store = open(corpus);
    let started = Instant::now();
    for chunk in events.chunks(BATCH) {
        store.append_batch(chunk);
    }
    let per_s = per_second(events.len() as u64, started.elapsed());
    flush(&store);
    per_s
}

/// Replays a corpus in a fresh process, so its peak RSS is the replay's alone and not memory
/// the allocator kept from writing the corpus. Returns (seconds, peak RSS in MB).
fn replay_in_child(kind: &str, corpus: &Path, events: u64) -> (f64, f64) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env("FERRY_BENCH_REPLAY", corpus)
        .env("FERRY_BENCH_KIND", kind)
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<f64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    assert_eq!(
        fields.len(),
        3,
        "replay child said: {line} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(fields[0] as u64, events);
    (fields[1], fields[2] / 1024.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Bytes actually allocated on disk under `dir` (preallocated, unwritten space excluded).
fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            disk_usage(&entry.path())
        } else {
            meta.blocks() * 512
        };
    }
    total
}

fn reset_peak_rss() {
    // Writing 5 to clear_refs resets the peak resident set size (Linux ≥ 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn key_file() -> KeySource {
    KeySource::KeyFile(KeyFileSecret::from_bytes(&[7; 32]).unwrap())
}

fn open_journal(path: &Path) -> Journal<BenchEvent> {
    if path.exists() {
        Journal::open(path, &key_file()).unwrap()
    } else {
        Journal::create(path, &key_file(), CreateOptions::default()).unwrap()
    }
}

/// The replay child: open, replay everything, print `count seconds peak_rss_kib`.
fn replay_child(dir: &Path, kind: &str) {
    let store: Box<dyn Store> = match kind {
        "sealed" => Box::new(open_journal(dir)),
        _ => Box::new(Plain::open(dir)),
    };
    reset_peak_rss();
    let started = Instant::now();
    let count = store.replay();
    let elapsed = started.elapsed().as_secs_f64();
    println!("{count} {elapsed} {}", peak_rss_kib());
}

fn main() {
    if let Ok(dir) = std::env::var("FERRY_BENCH_REPLAY") {
        replay_child(
            Path::new(&dir),
            &std::env::var("FERRY_BENCH_KIND").unwrap_or_default(),
        );
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this as a quick smoke test.
    let quick = !std::env::args().any(|a| a == "--bench");
    let events: u64 = std::env::var("FERRY_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 5_000 } else { 1_000_000 });
    let scratch = tempfile::tempdir_in(
        std::env::var("FERRY_BENCH_DIR").map_or_else(|_| std::env::temp_dir(), Into::into),
    )
    .expect("scratch directory");
    let encoded = postcard::to_stdvec(&event(events / 2)).unwrap().len();

    let mut sealed = measure_small(&scratch.path().join("sealed"), &open_journal);
    let mut plain = measure_small(&scratch.path().join("plain"), &Plain::open);

    // The corpus is written REPEATS times, sealed and plain alternating so that noise from the
    // machine falls on both alike; the median counts.
    let all: Vec<BenchEvent> = (0..events).map(event).collect();
    let sealed_corpus = scratch.path().join("sealed-corpus");
    let plain_corpus = scratch.path().join("plain-corpus");
    let (mut sealed_rates, mut plain_rates) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        sealed_rates.push(write_corpus(
            &sealed_corpus,
            &all,
            &open_journal,
            &|journal| {
                journal.tamper().flush_tables();
            },
        ));
        plain_rates.push(write_corpus(&plain_corpus, &all, &Plain::open, &|plain| {
            plain.records.rotate_memtable_and_wait().unwrap();
        }));
    }
    drop(all);
    sealed.batch_per_s = median(sealed_rates);
    plain.batch_per_s = median(plain_rates);
    let (mut sealed_replays, mut plain_replays) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        sealed_replays.push(replay_in_child("sealed", &sealed_corpus, events));
        plain_replays.push(replay_in_child("plain", &plain_corpus, events));
    }
    for (figures, replays, corpus) in [
        (&mut sealed, sealed_replays, &sealed_corpus),
        (&mut plain, plain_replays, &plain_corpus),
    ] {
        figures.replay_s = median(replays.iter().map(|r| r.0).collect());
        figures.replay_per_s = events as f64 / figures.replay_s;
        figures.replay_peak_rss_mb = replays.iter().map(|r| r.1).fold(0.0, f64::max);
        // Measured after the reopens, which let the store drop write-ahead files whose
        // contents are already in its sorted tables.
        figures.disk_bytes_per_event = disk_usage(corpus) as f64 / events as f64;
        figures.table_bytes_per_event =
            disk_usage(&corpus.join("keyspaces")) as f64 / events as f64;
    }

    // Opening costs: key file (must be milliseconds) and passphrase (Argon2id defaults).
    let key_dir = scratch.path().join("open-keyfile");
    drop(open_journal(&key_dir));
    let started = Instant::now();
    drop(Journal::<BenchEvent>::open(&key_dir, &key_file()).unwrap());
    let open_keyfile_ms = started.elapsed().as_secs_f64() * 1e3;
    let pass_dir = scratch.path().join("open-passphrase");
    let passphrase = KeySource::Passphrase(Passphrase::new("bench passphrase".into()).unwrap());
    drop(Journal::<BenchEvent>::create(&pass_dir, &passphrase, CreateOptions::default()).unwrap());
    let started = Instant::now();
    drop(Journal::<BenchEvent>::open(&pass_dir, &passphrase).unwrap());
    let open_passphrase_ms = started.elapsed().as_secs_f64() * 1e3;

    let ratio = |a: f64, b: f64| a / b;
    println!();
    println!(
        "ferry-journal benchmark: {events} events of {encoded} bytes encoded, batches of {BATCH}, median of {REPEATS} runs, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| figure | sealed journal | plain postcard+fjall (ceiling) | sealed/plain | target |"
    );
    println!("|---|---:|---:|---:|---|");
    println!(
        "| durable appends/s, one at a time ({SINGLE_APPENDS}) | {:.0} | {:.0} | {:.2} | |",
        sealed.single_per_s,
        plain.single_per_s,
        ratio(sealed.single_per_s, plain.single_per_s)
    );
    println!(
        "| durable appends/s, {THREADS} threads one at a time (shared flushes) | {:.0} | {:.0} | {:.2} | |",
        sealed.threads_per_s,
        plain.threads_per_s,
        ratio(sealed.threads_per_s, plain.threads_per_s)
    );
    println!(
        "| durable appends/s, group commit (batches of {BATCH}) | {:.0} | {:.0} | {:.2} | ≥ 100,000/s; ≥ 0.7× plain |",
        sealed.batch_per_s,
        plain.batch_per_s,
        ratio(sealed.batch_per_s, plain.batch_per_s)
    );
    println!(
        "| replay events/s | {:.0} | {:.0} | {:.2} | ≥ 0.7× plain |",
        sealed.replay_per_s,
        plain.replay_per_s,
        ratio(sealed.replay_per_s, plain.replay_per_s)
    );
    println!(
        "| replay of all events, s | {:.3} | {:.3} | | ≤ 1 s for 1,000,000 |",
        sealed.replay_s, plain.replay_s
    );
    println!(
        "| bytes on disk per event, sorted tables (steady state) | {:.1} | {:.1} | +{:.1} | overhead ≤ 48 |",
        sealed.table_bytes_per_event,
        plain.table_bytes_per_event,
        sealed.table_bytes_per_event - plain.table_bytes_per_event
    );
    println!(
        "| bytes on disk per event, all files incl. write-ahead not yet reclaimed | {:.1} | {:.1} | +{:.1} | |",
        sealed.disk_bytes_per_event,
        plain.disk_bytes_per_event,
        sealed.disk_bytes_per_event - plain.disk_bytes_per_event
    );
    println!(
        "| peak RSS while replaying, MB | {:.1} | {:.1} | | |",
        sealed.replay_peak_rss_mb, plain.replay_peak_rss_mb
    );
    println!("| open with key file, ms | {open_keyfile_ms:.2} | | | milliseconds |");
    println!(
        "| open with passphrase (Argon2id {} KiB, {} passes), ms | {open_passphrase_ms:.0} | | | about 500 |",
        KdfParams::DEFAULT.memory_kib,
        KdfParams::DEFAULT.iterations
    );
}
