//! Journals under misuse, each a regression test of a point of issue 12: runs killed while the
//! journal is created, damaged and truncated journals (and the way forward), checks that must
//! not write.
//!
//! Every test runs the real binary against real directories; trees are compared by an
//! independent walk (plain blake3 of every file's bytes), never through ferry's journal.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use ferry_tests::scratch::*;
use ferry_tests::{ferry, maildir_pair};

#[test]
fn killed_while_the_journal_is_being_created_the_same_command_completes() {
    // Goal: a kill while the journal is being created (Argon2id stretches the passphrase for
    // about 0.5 s before anything is written) does not leave a directory that later runs call
    // "not a ferry journal". Method: a 300-message Maildir is migrated with --passphrase-file;
    // 10 runs are killed with SIGKILL shortly after their staging directory appears (so the
    // kill falls inside creation whatever the machine's speed), then 20 more at 0, 50, …,
    // 950 ms; the same command then completes, the target equals the source with nothing twice,
    // `journal verify` passes and no staging directory is left.
    let s = scratch();
    let source = s.work.join("source");
    let target = s.work.join("target");
    let journal = s.work.join("journal");
    sample(&source, 300, 3);
    let passphrase = s.config.join("passphrase");
    std::fs::write(&passphrase, "a passphrase for this test only").expect("passphrase file");
    let migrate = || {
        let mut command = maildir_pair(&s.config, "migrate", &source, &target, &journal);
        command.arg("--passphrase-file").arg(&passphrase);
        command
    };
    let mut rng = fastrand::Rng::with_seed(12);
    let mut during_creation = 0;
    for kill in 0..30u64 {
        let staging_before = staging_dirs(&s.work);
        let mut child = migrate()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ferry migrate");
        if kill < 10 {
            let started = Instant::now();
            while staging_dirs(&s.work)
                .iter()
                .all(|name| staging_before.contains(name))
                && !journal.exists()
                && started.elapsed() < Duration::from_secs(10)
                && child.try_wait().expect("poll child").is_none()
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(rng.u64(0..150)));
        } else {
            std::thread::sleep(Duration::from_millis((kill - 10) * 50));
        }
        if child.try_wait().expect("poll child").is_some() {
            continue;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap child");
        let new_staging = staging_dirs(&s.work)
            .into_iter()
            .any(|name| !staging_before.contains(&name));
        if new_staging && !journal.exists() {
            during_creation += 1;
        }
    }
    eprintln!("{during_creation} kills fell while the journal was being created");
    assert!(
        during_creation >= 3,
        "at least 3 kills must fall inside the journal's creation ({during_creation} did)"
    );

    let last = migrate().output().expect("final run");
    let (stdout, stderr) = text(&last);
    assert_eq!(
        last.status.code(),
        Some(0),
        "the same command must complete after kills during creation:\n{stdout}\n{stderr}"
    );
    assert_eq!(missing_and_duplicates(&source, &target), (0, 0));
    assert_eq!(
        staging_dirs(&s.work),
        Vec::<String>::new(),
        "a staging directory was left beside the journal"
    );
    let verify = ferry(&s.config)
        .args(["journal", "verify", "--journal"])
        .arg(&journal)
        .arg("--passphrase-file")
        .arg(&passphrase)
        .output()
        .expect("journal verify");
    assert_eq!(verify.status.code(), Some(0), "{:?}", text(&verify));
}

/// Debug renderings that must never reach the operator.
const DEBUG_TEXT: [&str; 7] = [
    "FjallError",
    "Error {",
    "Err(",
    "Some(",
    "Os {",
    "kind: ",
    "panicked",
];

fn assert_damaged_sentence(what: &str, output: &Output) {
    let (stdout, stderr) = text(output);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{what} on a damaged journal:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("damaged"),
        "{what}: no sentence saying the journal is damaged:\n{stderr}"
    );
    for debug in DEBUG_TEXT {
        assert!(
            !stderr.contains(debug) && !stdout.contains(debug),
            "{what}: debug text {debug:?} shown:\n{stdout}\n{stderr}"
        );
    }
}

#[test]
fn a_damaged_journal_is_refused_untouched_and_set_aside_is_the_way_forward() {
    // Goal: a journal whose store is damaged is never written to as if healthy, every command
    // says so in a sentence (exit 3), and `journal set-aside` lets the next run go on without
    // copying anything twice. Method: 1,500 messages are migrated (enough for the store to
    // flush record tables); one byte in the middle of the largest table file is flipped.
    // verify/status/report/audit exit 3 saying "damaged" and show no debug text; a migrate
    // after a new delivery exits 3 and leaves the target and the journal directory
    // byte-identical. `journal set-aside` renames the directory; the next migrate exits 0,
    // copies only the new message, and the target has nothing missing and nothing twice.
    let s = scratch();
    let source = s.work.join("source");
    let target = s.work.join("target");
    let journal = s.work.join("journal");
    sample(&source, 1_500, 4);
    let migrate = || maildir_pair(&s.config, "migrate", &source, &target, &journal);
    run_ok(&mut migrate());

    let mut tables: Vec<(u64, PathBuf)> = Vec::new();
    for keyspace in std::fs::read_dir(journal.join("keyspaces")).expect("keyspaces") {
        let dir = keyspace.expect("entry").path().join("tables");
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        for table in read {
            let table = table.expect("entry");
            let size = table.metadata().expect("metadata").len();
            tables.push((size, table.path()));
        }
    }
    tables.sort();
    let (size, largest) = tables.pop().expect("the journal has table files");
    assert!(
        size >= 64 * 1024,
        "the largest table file is only {size} bytes: {}",
        largest.display()
    );
    let mut bytes = std::fs::read(&largest).expect("read table");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&largest, &bytes).expect("write table");

    for args in READERS {
        let output = on_journal(&s.config, args, &journal);
        assert_damaged_sentence(&args.join(" "), &output);
    }

    deliver(&source, 1);
    let target_before = snapshot(&target);
    let journal_before = snapshot(&journal);
    let refused = migrate().output().expect("migrate on a damaged journal");
    assert_damaged_sentence("migrate", &refused);
    assert_eq!(
        changes(&target_before, &snapshot(&target)),
        Vec::<String>::new(),
        "migrate on a damaged journal changed the target"
    );
    // Opening a store lets fjall remove version manifests it had already superseded (its own
    // housekeeping, the same at every open): nothing else may change.
    let superseded = |change: &String| {
        let Some(path) = change.strip_suffix(": removed") else {
            return false;
        };
        let mut parts = path.rsplit('/');
        let name = parts.next().unwrap_or_default();
        name.len() > 1
            && name.starts_with('v')
            && name[1..].chars().all(|c| c.is_ascii_digit())
            && path.contains("keyspaces/")
    };
    let journal_changes: Vec<String> = changes(&journal_before, &snapshot(&journal))
        .into_iter()
        .filter(|change| !superseded(change))
        .collect();
    assert_eq!(
        journal_changes,
        Vec::<String>::new(),
        "migrate on a damaged journal changed the journal directory"
    );

    let aside = run_ok(
        ferry(&s.config)
            .args(["journal", "set-aside", "--journal"])
            .arg(&journal),
    );
    assert!(!journal.exists(), "{:?}", text(&aside));
    let set_aside: Vec<String> = entries(&s.work)
        .into_iter()
        .filter(|name| name.starts_with("journal.set-aside-"))
        .collect();
    assert_eq!(set_aside.len(), 1, "{:?}", entries(&s.work));
    let aside_changes: Vec<String> =
        changes(&journal_before, &snapshot(&s.work.join(&set_aside[0])))
            .into_iter()
            .filter(|change| !superseded(change))
            .collect();
    assert_eq!(
        aside_changes,
        Vec::<String>::new(),
        "set-aside must keep the damaged journal as it was"
    );

    let after = run_ok(&mut migrate());
    let (stdout, _) = text(&after);
    assert!(stdout.contains("Copied 1 messages"), "{stdout}");
    assert_eq!(missing_and_duplicates(&source, &target), (0, 0));
}

/// The journal's last write-ahead file (`N.jnl` with the highest N).
fn last_write_ahead_file(journal: &Path) -> PathBuf {
    entries(journal)
        .into_iter()
        .filter_map(|name| {
            let number: u64 = name.strip_suffix(".jnl")?.parse().ok()?;
            Some((number, journal.join(name)))
        })
        .max()
        .expect("the journal has a .jnl file")
        .1
}

#[test]
fn a_journal_missing_records_at_its_end_is_refused_and_a_restored_copy_copies_nothing_twice() {
    // Goal: records lost from the end of the journal (a truncated write-ahead file) are
    // detected instead of verified as "intact"; and a journal restored from an older copy,
    // which cannot be told from a healthy one, still copies nothing twice because the target is
    // observed. Method: 50 messages are migrated, a no-op run follows 2 s later; the journal is
    // copied; 3 messages are delivered and a run copies them. Copies of that journal whose
    // `.jnl` is cut by 3,000 bytes and by 50 bytes make `journal verify` and `migrate` exit 3
    // with "records missing at the end" (the target unchanged). Then the journal is replaced by
    // the copy taken before the run: the next migrate exits 0 and the target has nothing
    // missing and nothing twice.
    let s = scratch();
    let source = s.work.join("source");
    let target = s.work.join("target");
    let journal = s.work.join("journal");
    let before_run = s.work.join("journal-before-run");
    sample(&source, 50, 2);
    let migrate = |journal: &Path| maildir_pair(&s.config, "migrate", &source, &target, journal);
    run_ok(&mut migrate(&journal));
    // Directory stamps are change tokens once 2 s old: this run records mature ones.
    std::thread::sleep(Duration::from_millis(2_100));
    run_ok(&mut migrate(&journal));
    copy_dir(&journal, &before_run);

    for n in 1..=3 {
        deliver(&source, n);
    }
    std::thread::sleep(Duration::from_millis(2_100));
    let third = run_ok(&mut migrate(&journal));
    let (stdout, _) = text(&third);
    assert!(stdout.contains("Copied 3 messages"), "{stdout}");

    for cut in [3_000u64, 50] {
        let damaged = s.work.join(format!("journal-cut-{cut}"));
        copy_dir(&journal, &damaged);
        let file = last_write_ahead_file(&damaged);
        let length = std::fs::metadata(&file).expect("metadata").len();
        assert!(length > cut, "{} is only {length} bytes", file.display());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .expect("open the write-ahead file")
            .set_len(length - cut)
            .expect("truncate");

        let verify = on_journal(&s.config, &["journal", "verify"], &damaged);
        let (stdout, stderr) = text(&verify);
        assert_eq!(
            verify.status.code(),
            Some(3),
            "verify, cut by {cut}:\n{stdout}\n{stderr}"
        );
        assert!(
            stderr.contains("records missing at the end"),
            "verify, cut by {cut}:\n{stderr}"
        );

        let target_before = snapshot(&target);
        let refused = migrate(&damaged).output().expect("migrate");
        let (stdout, stderr) = text(&refused);
        assert_eq!(
            refused.status.code(),
            Some(3),
            "migrate, cut by {cut}:\n{stdout}\n{stderr}"
        );
        assert!(
            stderr.contains("records missing at the end"),
            "migrate, cut by {cut}:\n{stderr}"
        );
        assert_eq!(
            changes(&target_before, &snapshot(&target)),
            Vec::<String>::new(),
            "a refused migrate changed the target"
        );
    }

    // The undetectable case: the whole directory restored from the copy taken before.
    std::fs::remove_dir_all(&journal).expect("remove the journal");
    std::fs::rename(&before_run, &journal).expect("restore the older copy");
    let restored = run_ok(&mut migrate(&journal));
    let (stdout, _) = text(&restored);
    assert!(stdout.contains("Copied 0 messages"), "{stdout}");
    assert_eq!(missing_and_duplicates(&source, &target), (0, 0));
}

#[test]
fn reading_commands_leave_the_journal_and_its_directory_as_they_were() {
    // Goal: `journal verify`, `status`, `report` and `audit` write nothing: not to the journal
    // (opening the store repairs and rewrites files), and nothing left beside it (they read a
    // private copy, which must be removed). Method: a 200-message migration; every file under
    // the journal is hashed (path and bytes) and the directory holding it is listed; the four
    // commands run 10 times each (a leftover copy was intermittent); after every command both
    // are unchanged.
    let s = scratch();
    let source = s.work.join("source");
    let target = s.work.join("target");
    let journal = s.work.join("journal");
    sample(&source, 200, 5);
    run_ok(&mut maildir_pair(
        &s.config, "migrate", &source, &target, &journal,
    ));
    let journal_before = snapshot(&journal);
    let beside_before = entries(&s.work);
    for round in 0..10 {
        for args in READERS {
            let output = on_journal(&s.config, args, &journal);
            let what = args.join(" ");
            assert_eq!(output.status.code(), Some(0), "{what}: {:?}", text(&output));
            assert_eq!(
                changes(&journal_before, &snapshot(&journal)),
                Vec::<String>::new(),
                "`{what}` (round {round}) changed the journal"
            );
            assert_eq!(
                entries(&s.work),
                beside_before,
                "`{what}` (round {round}) left something beside the journal"
            );
        }
    }
}
