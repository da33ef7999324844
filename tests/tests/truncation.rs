//! A journal that lost its end never makes ferry copy anything twice.
//!
//! Goal (issue 12, point 2): a journal whose files were cut short (a torn write-ahead file, a
//! lost disk cache, a restored backup) is either reported as missing records, or the next
//! migrate completes with 0 duplicates and 0 missing on the target: never silence plus
//! duplicates. Method: a Maildir migration of four runs (new messages, flag changes and
//! deletions between them, with `--delete-removed`), all of whose records stay in the store's
//! write-ahead file `0.jnl`. Its record boundaries are found by opening truncated copies (the
//! last record each length keeps, by bisection). Then, for every boundary and for 30 random
//! byte offsets, a copy of the journal and of the target is made with `0.jnl` cut there and
//! `ferry migrate` runs on it: exit 3 naming the missing records, or exit 0 with the target
//! equal to the source. The same again with the tail witness removed too (nothing left to
//! detect the loss with, as after restoring the whole directory from an older copy): the
//! target is observed, not trusted from the journal, so every case must then complete with 0
//! duplicates and 0 missing. Other files of the journal are cut at random offsets as well:
//! reported (exit 3) or complete and exact.

use std::path::{Path, PathBuf};
use std::process::Output;

use ferry_engine::Event;
use ferry_journal::{Journal, KeyFileSecret, KeySource};
use ferry_tests::scratch::sample;
use ferry_tests::{differences, maildir_pair, maildir_tree};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for truncation")
        .set_len(len)
        .expect("truncate");
}

/// The last record a copy of the journal keeps with `0.jnl` cut to `len` bytes and no witness
/// (`None` when it does not open).
fn last_seq_at(journal: &Path, key: &KeySource, len: u64) -> Option<u64> {
    let scratch = tempfile::tempdir().expect("temp dir");
    let copy = scratch.path().join("j");
    copy_tree(journal, &copy);
    truncate(&copy.join("0.jnl"), len);
    let _ = std::fs::remove_file(copy.join("tail"));
    Journal::<Event>::open(&copy, key)
        .ok()
        .map(|opened| opened.last_seq())
}

#[test]
fn a_journal_cut_anywhere_is_reported_or_copies_nothing_twice() {
    let home = tempfile::tempdir().expect("temp dir");
    let source = home.path().join("source");
    let target = home.path().join("target");
    let journal = home.path().join("journal");
    sample(&source, 60, 12);
    let migrate = |source: &Path, target: &Path, journal: &Path| -> Output {
        maildir_pair(home.path(), "migrate", source, target, journal)
            .arg("--delete-removed")
            .output()
            .expect("ferry migrate")
    };
    let run = |step: usize| {
        let output = migrate(&source, &target, &journal);
        assert_eq!(output.status.code(), Some(0), "run {step}: {output:?}");
    };
    run(1);
    // Three more runs, each with new messages, a flag change and a deletion on the source.
    for step in 2..=4 {
        for n in 0..4 {
            std::fs::write(
                source.join(format!("new/17700000{step}{n}.M1P1.host")),
                format!(
                    "From: a@example.com\r\nSubject: step {step} {n}\r\n\r\nbody {step} {n}\r\n"
                ),
            )
            .expect("deliver");
        }
        let cur = source.join("cur");
        let mut names: Vec<_> = std::fs::read_dir(&cur)
            .expect("cur")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        if let Some(first) = names.first() {
            std::fs::remove_file(cur.join(first)).expect("delete one");
        }
        if let Some(second) = names.get(1)
            && let Some((unique, _)) = second.split_once(":2,")
        {
            std::fs::rename(cur.join(second), cur.join(format!("{unique}:2,FS")))
                .expect("flag one");
        }
        // Directory stamps settle after two seconds (the Maildir change token).
        std::thread::sleep(std::time::Duration::from_millis(2_100));
        run(step);
    }
    assert_eq!(
        differences(&maildir_tree(&source), &maildir_tree(&target)),
        (0, 0, 0)
    );
    let wal = journal.join("0.jnl");
    let wal_len = std::fs::metadata(&wal).expect("0.jnl").len();
    let key_bytes = std::fs::read(home.path().join("ferry/journal.key")).expect("key file");
    let key = KeySource::KeyFile(KeyFileSecret::from_bytes(&key_bytes).expect("key"));
    let last = Journal::<Event>::open(&journal, &key)
        .expect("the whole journal opens")
        .last_seq();
    assert!(last >= 8, "a journal of several records ({last})");
    assert_eq!(last_seq_at(&journal, &key, wal_len), Some(last));

    // Record boundaries: for each record, the shortest 0.jnl that keeps it.
    let mut boundaries = Vec::new();
    let mut low = 0_u64;
    for seq in 1..=last {
        let mut high = wal_len;
        while low < high {
            let middle = low + (high - low) / 2;
            if last_seq_at(&journal, &key, middle).is_some_and(|kept| kept >= seq) {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        boundaries.push(low);
    }
    boundaries.dedup();
    let mut rng = fastrand::Rng::with_seed(20261204);
    let mut cuts: Vec<u64> = boundaries.clone();
    cuts.extend(boundaries.iter().map(|b| b.saturating_sub(1)));
    cuts.extend((0..30).map(|_| rng.u64(0..wal_len)));
    cuts.sort_unstable();
    cuts.dedup();

    // Each case starts from the journal and target as the four runs left them, at the same
    // paths (a journal belongs to its pair).
    let pristine = home.path().join("pristine");
    copy_tree(&journal, &pristine.join("journal"));
    copy_tree(&target, &pristine.join("target"));
    let try_cut = |file: &Path, len: u64, keep_witness: bool| -> (Option<i32>, String) {
        for (dir, name) in [(&journal, "journal"), (&target, "target")] {
            std::fs::remove_dir_all(dir).expect("remove the last case");
            copy_tree(&pristine.join(name), dir);
        }
        let relative = file.strip_prefix(&journal).expect("inside the journal");
        truncate(&journal.join(relative), len);
        if !keep_witness {
            let _ = std::fs::remove_file(journal.join("tail"));
        }
        let output = migrate(&source, &target, &journal);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        match output.status.code() {
            Some(3) => {}
            Some(0) => {
                let (missing, duplicates, flags) =
                    differences(&maildir_tree(&source), &maildir_tree(&target));
                assert_eq!(
                    (missing, duplicates, flags),
                    (0, 0, 0),
                    "{} cut to {len} (witness kept: {keep_witness}): missing, duplicates, flag differences",
                    relative.display()
                );
            }
            other => panic!(
                "{} cut to {len}: exit {other:?}, neither reported nor complete:\n{stderr}",
                relative.display()
            ),
        }
        (output.status.code(), stderr)
    };

    let mut reported = 0;
    let mut completed = 0;
    for &len in &cuts {
        let (code, stderr) = try_cut(&wal, len, true);
        if code == Some(3) {
            reported += 1;
            if len < boundaries[boundaries.len() - 1] {
                assert!(
                    stderr.contains("records missing at the end")
                        || stderr.contains("damaged")
                        || stderr.contains("not a ferry journal"),
                    "0.jnl cut to {len}: {stderr}"
                );
            }
        } else {
            completed += 1;
        }
        // Nothing left to tell the loss by: the target must be observed. (A cut before the
        // journal's header leaves no journal to open: that is reported, exit 3.)
        let (code, stderr) = try_cut(&wal, len, false);
        if last_seq_at(&pristine.join("journal"), &key, len).is_some() {
            assert_eq!(
                code,
                Some(0),
                "0.jnl cut to {len} without its witness: {stderr}"
            );
        }
    }
    eprintln!(
        "{} cuts of 0.jnl ({} record boundaries): {reported} reported, {completed} completed",
        cuts.len(),
        boundaries.len()
    );
    assert!(reported > 0, "cuts that lose records are reported");
    // A cut of the other files anywhere: reported, or complete and exact.
    let original = pristine.join("journal");
    for file in files(&original) {
        let file = journal.join(file.strip_prefix(&original).expect("inside"));
        if file == wal || file.ends_with("lock") {
            continue;
        }
        let len = std::fs::metadata(original.join(file.strip_prefix(&journal).expect("inside")))
            .expect("metadata")
            .len();
        if len == 0 {
            continue;
        }
        for cut in [0, len / 2, len - 1] {
            try_cut(&file, cut, true);
        }
    }
}
