//! Maildir → Maildir with the real binary and a key file, killed with SIGKILL at 65 random
//! moments and resumed each time by running the same command again.
//!
//! Goal: invariants 1 and 2 under real crashes. Method: a 5,000-message sample mailbox is
//! migrated by `ferry migrate`; the process is killed 65 times: 5 times within the first 150 ms
//! of the very first start (journal and key file creation, first listing: a kill there once
//! left a journal no later run could open), 10 more in resumed runs' first 150 ms, and 30 times
//! once a random number
//! of further messages has landed on the target (so the kill falls inside the copy whatever the
//! machine's speed), 20 times after a random delay (startup, listing, planning, or a finished
//! run); a last run finishes. Then an independent walk of both directory trees (plain blake3 of every file's
//! bytes, flags read from the file names and keyword files, not ferry's journal) must find 0
//! missing, 0 duplicates and equal flags. `journal verify` must pass as well.

use std::path::Path;
use std::process::Stdio;

use ferry_sample::{SampleSpec, generate};
use ferry_tests::{differences, ferry, kill_from_the_start, maildir_pair, maildir_tree as walk};

/// Messages delivered into the target tree so far (files in every folder's cur/).
fn landed(target: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(target) else {
        return 0;
    };
    let mut dirs = vec![target.join("cur")];
    dirs.extend(entries.filter_map(Result::ok).map(|e| e.path().join("cur")));
    dirs.iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .map(Iterator::count)
        .sum()
}

#[test]
fn killed_sixty_five_times_from_the_start_on_then_resumed_nothing_missing_nothing_twice() {
    let home = tempfile::tempdir().expect("temp dir");
    let source = home.path().join("source");
    let target = home.path().join("target");
    let journal = home.path().join("journal");
    let summary = generate(
        &source,
        &SampleSpec {
            messages: 5_000,
            seed: 77,
        },
    )
    .expect("generate the sample mailbox");
    assert_eq!(summary.messages, 5_000);

    let migrate = || {
        let mut command = maildir_pair(home.path(), "migrate", &source, &target, &journal);
        command.stdout(Stdio::null()).stderr(Stdio::null());
        command
    };
    let mut rng = fastrand::Rng::with_seed(
        std::env::var("FERRY_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20261125),
    );
    // Five kills within the very first start's first 150 ms (key file and journal creation,
    // first listing), then 50 as before, then ten more within a resumed run's first 150 ms:
    // the copy is quick enough that early kills alone would leave little of it to interrupt.
    let first = kill_from_the_start(
        &mut rng,
        (5, 150),
        50,
        30,
        60,
        5_000,
        || landed(&target),
        || migrate().spawn().expect("start ferry migrate"),
    );
    let later = kill_from_the_start(
        &mut rng,
        (10, 150),
        0,
        0,
        60,
        5_000,
        || landed(&target),
        || migrate().spawn().expect("start ferry migrate"),
    );
    let (killed_mid_copy, finished_before_kill) =
        (first.mid_copy, first.finished_first + later.finished_first);
    let status = migrate().status().expect("final run");
    assert_eq!(
        status.code(),
        Some(0),
        "the final run must complete cleanly"
    );
    eprintln!(
        "{killed_mid_copy} kills interrupted the copy, {finished_before_kill} runs finished first"
    );
    assert!(
        killed_mid_copy >= 10,
        "at least 10 kills must interrupt the copy itself ({killed_mid_copy} did)"
    );
    assert!(
        finished_before_kill < 55,
        "most kills must land in the middle of a run ({finished_before_kill} runs finished first)"
    );

    let source_tree = walk(&source);
    let target_tree = walk(&target);
    let (missing, duplicates, flag_differences) = differences(&source_tree, &target_tree);
    let source_total: usize = source_tree.values().map(Vec::len).sum();
    let target_total: usize = target_tree.values().map(Vec::len).sum();
    assert_eq!(source_total, 5_000);
    assert_eq!(
        (missing, duplicates, flag_differences),
        (0, 0, 0),
        "missing, duplicates, flag differences"
    );
    assert_eq!(target_total, source_total);
    assert_eq!(
        source_tree.keys().collect::<Vec<_>>(),
        target_tree.keys().collect::<Vec<_>>()
    );

    let verify = ferry(home.path())
        .args(["journal", "verify", "--journal"])
        .arg(&journal)
        .output()
        .expect("journal verify");
    assert_eq!(verify.status.code(), Some(0), "{verify:?}");
}
