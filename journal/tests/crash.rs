//! kill -9 of a real process that is appending: every acknowledged record survives.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{TestEvent, cheap, key_file};
use ferry_journal::Journal;

const CHILD_ENV: &str = "FERRY_JOURNAL_CRASH_CHILD";
const TEST_NAME: &str = "kill_9_never_loses_an_acknowledged_record";
const KILLS: u64 = 50;
const APPENDER_THREADS: u64 = 3;
/// Bounds one round: a child that does not report ready within this is a failure, not a hang.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// One acknowledged batch, as the child printed it.
#[derive(Debug)]
struct Ack {
    first: u64,
    last: u64,
    run: u64,
    copied_first: u64,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut fields = line.strip_prefix("ack ")?.split(' ').map(str::parse::<u64>);
    let ack = Ack {
        first: fields.next()?.ok()?,
        last: fields.next()?.ok()?,
        run: fields.next()?.ok()?,
        copied_first: fields.next()?.ok()?,
    };
    fields.next().is_none().then_some(ack)
}

/// Tiny deterministic generator, so a failing seed reproduces the kill times.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The length of a thread's next batch: mostly small, sometimes longer than the journal's
/// pipelining threshold (64), so that kills also land between the slices of one batch.
fn batch_len(rng: &mut SplitMix) -> u64 {
    if rng.next().is_multiple_of(4) {
        rng.next() % 200 + 65
    } else {
        rng.next() % 32 + 1
    }
}

/// Where the batches of appender run `run` end, in the order the child appends them: the
/// `copied` count after each batch.
fn batch_ends(run: u64) -> impl Iterator<Item = u64> {
    let mut rng = SplitMix(run);
    let mut copied = 0;
    std::iter::from_fn(move || {
        copied += batch_len(&mut rng);
        rng.next(); // the pause after the batch
        Some(copied)
    })
}

/// Every batch in the journal is whole: each appender run's events are exactly its first
/// batches, never part of one.
fn check_batches_whole(journal: &Journal<TestEvent>, context: &str) {
    let mut copied_by_run = std::collections::BTreeMap::<u64, Vec<u64>>::new();
    for entry in journal.replay(1) {
        if let TestEvent::RunEnded { run, copied } = entry.unwrap().event {
            copied_by_run.entry(run).or_default().push(copied);
        }
    }
    for (run, copied) in copied_by_run {
        let count = copied.len() as u64;
        assert!(
            copied.iter().copied().eq(0..count),
            "{context}: run {run} holds {copied:?}, not a prefix"
        );
        assert!(
            batch_ends(run)
                .take_while(|end| *end <= count)
                .any(|end| end == count),
            "{context}: run {run} holds {count} events, which ends inside a batch"
        );
    }
}

/// The child: appends group-committed batches from several threads until it is killed,
/// printing each batch once `append_batch` has returned (the durability point).
fn child(dir: &Path, round: u64) {
    let journal = Journal::<TestEvent>::open(dir, &key_file()).unwrap();
    println!("ready");
    let threads: Vec<_> = (0..APPENDER_THREADS)
        .map(|thread| {
            let journal = journal.clone();
            std::thread::spawn(move || {
                let run = round * 100 + thread;
                let mut rng = SplitMix(run);
                let mut copied = 0_u64;
                loop {
                    let len = batch_len(&mut rng);
                    let events: Vec<_> = (0..len)
                        .map(|i| TestEvent::RunEnded {
                            run,
                            copied: copied + i,
                        })
                        .collect();
                    let range = journal.append_batch(&events).unwrap();
                    println!("ack {} {} {run} {copied}", range.start(), range.end());
                    copied += len;
                    // A short, random pause keeps the journal small enough to verify after
                    // every kill while appends from the threads still overlap.
                    std::thread::sleep(Duration::from_micros(rng.next() % 1_500));
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}

// Goal: a process appending in group-committed batches is killed with SIGKILL at 50 random
// moments; after each kill the journal opens, holds every record whose batch was acknowledged
// (with its exact content), and its whole chain verifies.
// Method: the test re-runs its own binary as the child (selected by an environment variable),
// reads its acknowledgements from a pipe, kills it after a random delay, then checks.
// A failure prints the seed; rerun with FERRY_CRASH_SEED=<seed> to repeat the kill times.
#[test]
fn kill_9_never_loses_an_acknowledged_record() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let round = std::env::var("FERRY_CRASH_ROUND").unwrap().parse().unwrap();
        child(Path::new(&dir), round);
        return;
    }
    let seed = std::env::var("FERRY_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("seed {seed} (rerun with FERRY_CRASH_SEED={seed})");
    let mut rng = SplitMix(seed);
    let dir = tempfile::tempdir().unwrap();
    drop(Journal::<TestEvent>::create(dir.path(), &key_file(), cheap()).unwrap());
    let mut total_acknowledged = 0;
    let mut total_discarded = 0;

    for round in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("FERRY_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let mut lines = Vec::new();
        loop {
            let line = lines_rx
                .recv_timeout(READY_TIMEOUT.saturating_sub(started.elapsed()))
                .unwrap_or_else(|_| panic!("seed {seed} round {round}: child never got ready"));
            // libtest prints "test NAME ... " without a line break before the test runs.
            let ready = line.ends_with("ready");
            lines.push(line);
            if ready {
                break;
            }
        }
        std::thread::sleep(Duration::from_micros(rng.next() % 60_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(lines_rx.try_iter());

        let acks: Vec<Ack> = lines.iter().filter_map(|l| parse_ack(l)).collect();
        total_acknowledged += acks.iter().map(|a| a.last - a.first + 1).sum::<u64>();
        let journal = Journal::<TestEvent>::open(dir.path(), &key_file())
            .unwrap_or_else(|e| panic!("seed {seed} round {round}: reopen failed: {e}"));
        let report = journal
            .verify()
            .unwrap_or_else(|e| panic!("seed {seed} round {round}: verify failed: {e}"));
        total_discarded += journal.discarded_at_open();
        check_batches_whole(&journal, &format!("seed {seed} round {round}"));
        let Some(lowest) = acks.iter().map(|a| a.first).min() else {
            continue;
        };
        let highest = acks.iter().map(|a| a.last).max().unwrap();
        assert!(
            report.records >= highest,
            "seed {seed} round {round}: acknowledged {highest}, have {}",
            report.records
        );
        let stored: Vec<TestEvent> = journal
            .replay(lowest)
            .take((highest - lowest + 1) as usize)
            .map(|e| e.unwrap().event)
            .collect();
        for ack in &acks {
            for seq in ack.first..=ack.last {
                let expected = TestEvent::RunEnded {
                    run: ack.run,
                    copied: ack.copied_first + seq - ack.first,
                };
                assert_eq!(
                    stored[(seq - lowest) as usize],
                    expected,
                    "seed {seed} round {round} seq {seq}"
                );
            }
        }
    }
    println!(
        "{total_acknowledged} records acknowledged over {KILLS} kills; \
         {total_discarded} records of interrupted batches discarded at reopen"
    );
    assert!(
        total_acknowledged > KILLS * 100,
        "only {total_acknowledged} records acknowledged: the kills came too early to test anything"
    );
}
