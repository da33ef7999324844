//! Misuse and accidents an operator meets, each a regression test of a point of issue 12: runs
//! killed while the journal is created, damaged and truncated journals, checks that must not
//! write, a target inside the source or the same store spelled twice, a password in a URI,
//! refused starts that must leave nothing behind, an empty journal directory, a closed pipe,
//! `status` during a run and what `migrate --help` has to say.
//!
//! Every test runs the real binary against real directories; trees are compared by an
//! independent walk (plain blake3 of every file's bytes), never through ferry's journal.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ferry_adapters::sample::{SampleSpec, generate};
use ferry_tests::{differences, ferry, maildir_pair, maildir_tree};

/// A scratch area: `config` is the config directory (key file), `work` is where the stores and
/// the journal live, so that what a command leaves beside them can be seen.
struct Scratch {
    _home: tempfile::TempDir,
    config: PathBuf,
    work: PathBuf,
}

fn scratch() -> Scratch {
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("config");
    let work = home.path().join("work");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::create_dir_all(&work).expect("work dir");
    Scratch {
        _home: home,
        config,
        work,
    }
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn sample(dir: &Path, messages: usize, seed: u64) {
    let summary = generate(dir, &SampleSpec { messages, seed }).expect("generate the sample");
    assert_eq!(summary.messages, messages);
}

/// Writes a new message into the source's INBOX `new/`.
fn deliver(source: &Path, n: u32) {
    std::fs::write(
        source.join("new").join(format!("19000000{n:02}.misuse{n}.host")),
        format!(
            "From: a@example.org\r\nSubject: delivered {n}\r\nMessage-ID: <delivered{n}@x>\r\n\r\nbody {n}\r\n"
        ),
    )
    .expect("deliver a message");
}

/// Every entry under `root`, by relative path: a file's blake3, "directory", or a link's target.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let entry = entry.expect("directory entry");
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type().expect("file type");
            if kind.is_symlink() {
                let to = std::fs::read_link(&path).expect("read link");
                out.insert(relative, format!("link to {}", to.display()));
            } else if kind.is_dir() {
                out.insert(relative, "directory".into());
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                out.insert(relative, blake3::hash(&bytes).to_hex().to_string());
            }
        }
    }
    out
}

/// What differs between two snapshots, one line per path.
fn changes(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => out.push(format!("{path}: removed")),
            Some(now) if now != was => out.push(format!("{path}: changed")),
            Some(_) => {}
        }
    }
    for path in after.keys() {
        if !before.contains_key(path) {
            out.push(format!("{path}: added"));
        }
    }
    out
}

/// The names in a directory, sorted (none when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = read
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("make the copy's directory");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("directory entry");
        let destination = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &destination);
        } else {
            std::fs::copy(entry.path(), &destination).expect("copy a file");
        }
    }
}

/// Messages delivered into the target tree so far (files in every folder's cur/).
fn landed(target: &Path) -> usize {
    let Ok(read) = std::fs::read_dir(target) else {
        return 0;
    };
    let mut dirs = vec![target.join("cur")];
    dirs.extend(read.filter_map(Result::ok).map(|e| e.path().join("cur")));
    dirs.iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .map(Iterator::count)
        .sum()
}

/// (missing, duplicates) of the target against the source, by an independent walk.
fn missing_and_duplicates(source: &Path, target: &Path) -> (usize, usize) {
    let (missing, duplicates, _) = differences(&maildir_tree(source), &maildir_tree(target));
    (missing, duplicates)
}

fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("run ferry");
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    output
}

/// `ferry ARGS... --journal JOURNAL`.
fn on_journal(config: &Path, args: &[&str], journal: &Path) -> Output {
    ferry(config)
        .args(args)
        .arg("--journal")
        .arg(journal)
        .output()
        .expect("run ferry on the journal")
}

/// The four commands that only read a journal.
const READERS: [&[&str]; 4] = [&["journal", "verify"], &["status"], &["report"], &["audit"]];

/// Staging directories (`NAME.creating-…`) in `dir`.
fn staging_dirs(dir: &Path) -> Vec<String> {
    entries(dir)
        .into_iter()
        .filter(|name| name.contains(".creating-"))
        .collect()
}

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

#[test]
fn a_target_inside_the_source_or_a_source_inside_the_target_is_refused() {
    // Goal: ferry never writes into the mailbox it reads, nor copies a store into itself.
    // Method: `--to maildir:SOURCE/.Inner` (also through a symbolic link to the source) and
    // `--from maildir:TARGET/.Sub --to maildir:TARGET` each exit 2; no target directory and no
    // journal appear, and the existing trees are byte-identical.
    let s = scratch();
    let source = s.work.join("source");
    sample(&source, 20, 6);
    let link = s.work.join("link");
    std::os::unix::fs::symlink(&source, &link).expect("symlink");
    let journal = s.work.join("journal");
    let source_before = snapshot(&source);
    let beside_before = entries(&s.work);

    for target in [source.join(".Inner"), link.join(".Inner")] {
        let output = maildir_pair(&s.config, "migrate", &source, &target, &journal)
            .current_dir(&s.work)
            .output()
            .expect("run ferry migrate");
        let (stdout, stderr) = text(&output);
        assert_eq!(
            output.status.code(),
            Some(2),
            "target {}:\n{stdout}\n{stderr}",
            target.display()
        );
        assert!(!source.join(".Inner").exists(), "the target was created");
        assert!(!journal.exists(), "a journal was created");
        assert_eq!(entries(&s.work), beside_before);
        assert_eq!(
            changes(&source_before, &snapshot(&source)),
            Vec::<String>::new()
        );
    }

    // The reverse: the source is a folder of the target.
    let outer = s.work.join("outer");
    let inner = outer.join(".Sub");
    sample(&inner, 10, 7);
    let outer_before = snapshot(&outer);
    let beside_before = entries(&s.work);
    let output = maildir_pair(&s.config, "migrate", &inner, &outer, &journal)
        .current_dir(&s.work)
        .output()
        .expect("run ferry migrate");
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(!journal.exists(), "a journal was created");
    assert_eq!(entries(&s.work), beside_before);
    assert_eq!(
        changes(&outer_before, &snapshot(&outer)),
        Vec::<String>::new(),
        "the refused run wrote into the target"
    );
}

#[test]
fn the_same_store_spelled_differently_is_refused() {
    // Goal: the source given again as the target under another spelling is recognised as the
    // same store. Method: with the source `maildir:source` (relative to the working
    // directory), targets `source/`, `source/../source`, `./source`, its absolute path, a
    // symbolic link to it and `link/`; and the link as the source with the absolute path as
    // the target. Each exits 2; nothing appears beside the source and it is byte-identical.
    let s = scratch();
    let source = s.work.join("source");
    sample(&source, 20, 8);
    std::os::unix::fs::symlink(&source, s.work.join("link")).expect("symlink");
    let source_before = snapshot(&source);
    let beside_before = entries(&s.work);
    let absolute = source.display().to_string();
    let pairs = [
        ("source", "source/"),
        ("source", "source/../source"),
        ("source", "./source"),
        ("source", absolute.as_str()),
        ("source", "link"),
        ("source", "link/"),
        ("link", absolute.as_str()),
    ];
    for (from, to) in pairs {
        let output = ferry(&s.config)
            .current_dir(&s.work)
            .arg("migrate")
            .arg("--from")
            .arg(format!("maildir:{from}"))
            .arg("--to")
            .arg(format!("maildir:{to}"))
            .arg("--journal")
            .arg("journal")
            .output()
            .expect("run ferry migrate");
        let (stdout, stderr) = text(&output);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{from} → {to}:\n{stdout}\n{stderr}"
        );
        assert_eq!(entries(&s.work), beside_before, "{from} → {to}");
        assert_eq!(
            changes(&source_before, &snapshot(&source)),
            Vec::<String>::new(),
            "{from} → {to}"
        );
    }
}

#[test]
fn a_password_in_a_uri_is_refused_and_never_printed() {
    // Goal: a password written into an IMAP URI is refused and never echoed. Method: the
    // password in the source URI (imap://, imaps://, with a port and path), in the target URI,
    // for migrate and plan; each exits 2, creates nothing, and neither stdout nor stderr
    // holds the password.
    let s = scratch();
    let source = s.work.join("source");
    sample(&source, 5, 9);
    let beside_before = entries(&s.work);
    let password = "secret-Tr0ub4dor";
    let maildir_source = format!("maildir:{}", source.display());
    let maildir_target = format!("maildir:{}", s.work.join("target").display());
    let cases = [
        (
            "migrate",
            format!("imap://u:{password}@127.0.0.1"),
            maildir_target.clone(),
        ),
        (
            "migrate",
            format!("imaps://u:{password}@127.0.0.1:1/INBOX"),
            maildir_target.clone(),
        ),
        (
            "migrate",
            maildir_source.clone(),
            format!("imap://u:{password}@127.0.0.1/?tls=none"),
        ),
        (
            "plan",
            format!("imap://u:{password}@127.0.0.1"),
            maildir_target.clone(),
        ),
    ];
    for (command, from, to) in cases {
        let output = ferry(&s.config)
            .current_dir(&s.work)
            .arg(command)
            .args([
                "--from",
                from.as_str(),
                "--to",
                to.as_str(),
                "--journal",
                "journal",
            ])
            .output()
            .expect("run ferry");
        let (stdout, stderr) = text(&output);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{command} {from} → {to}:\n{stdout}\n{stderr}"
        );
        assert!(
            !stdout.contains(password) && !stderr.contains(password),
            "the password was printed:\n{stdout}\n{stderr}"
        );
        assert!(
            !stdout.contains("secret") && !stderr.contains("secret"),
            "part of the password was printed:\n{stdout}\n{stderr}"
        );
        assert_eq!(entries(&s.work), beside_before, "{command} {from} → {to}");
    }
}

#[test]
fn a_refused_start_leaves_nothing_behind() {
    // Goal: a start that cannot work creates neither a target nor a journal. Method: (a) a
    // source Maildir that does not exist: exit 4 and the working directory stays empty (no
    // target, no journal, no default ferry-state); (b) a journal of the pair A → B given for
    // A → C: refused with exit 2, C is not created, the journal and B are byte-identical.
    let s = scratch();
    let missing = s.work.join("no-such-source");
    let target = s.work.join("target");
    let journal = s.work.join("journal");
    let output = maildir_pair(&s.config, "migrate", &missing, &target, &journal)
        .current_dir(&s.work)
        .output()
        .expect("run ferry migrate");
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(!target.exists(), "the target was created");
    assert!(!journal.exists(), "the journal was created");
    assert_eq!(entries(&s.work), Vec::<String>::new());

    let a = s.work.join("a");
    let b = s.work.join("b");
    let c = s.work.join("c");
    let shared = s.work.join("shared-journal");
    sample(&a, 20, 10);
    run_ok(&mut maildir_pair(&s.config, "migrate", &a, &b, &shared));
    let journal_before = snapshot(&shared);
    let b_before = snapshot(&b);
    let output = maildir_pair(&s.config, "migrate", &a, &c, &shared)
        .output()
        .expect("run ferry migrate");
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(!c.exists(), "the other pair's target was created");
    assert_eq!(
        changes(&journal_before, &snapshot(&shared)),
        Vec::<String>::new(),
        "the refused run changed the journal"
    );
    assert_eq!(changes(&b_before, &snapshot(&b)), Vec::<String>::new());
}

#[test]
fn an_empty_directory_given_as_the_journal_becomes_the_journal() {
    // Goal: `--journal DIR` naming an empty directory the operator made is used for the new
    // journal. Method: the directory is created empty, a migrate exits 0 with the target equal
    // to the source, and `journal verify` and `status` on the directory succeed.
    let s = scratch();
    let source = s.work.join("source");
    let target = s.work.join("target");
    let journal = s.work.join("journal");
    sample(&source, 30, 11);
    std::fs::create_dir(&journal).expect("empty journal directory");
    run_ok(&mut maildir_pair(
        &s.config, "migrate", &source, &target, &journal,
    ));
    assert_eq!(maildir_tree(&source), maildir_tree(&target));
    let verify = on_journal(&s.config, &["journal", "verify"], &journal);
    assert_eq!(verify.status.code(), Some(0), "{:?}", text(&verify));
    let status = on_journal(&s.config, &["status"], &journal);
    let (stdout, stderr) = text(&status);
    assert_eq!(status.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(", completed"), "{stdout}");
}

#[test]
fn audit_into_a_pipe_closed_early_ends_quietly() {
    // Goal: `ferry audit | head -1` is not an error. Method: a 1,500-message migration gives an
    // audit far larger than a pipe's buffer; audit runs with its stdout piped, one line is
    // read and the pipe closed; it exits 0 with nothing on stderr.
    let s = scratch();
    let source = s.work.join("source");
    let target = s.work.join("target");
    let journal = s.work.join("journal");
    sample(&source, 1_500, 12);
    run_ok(&mut maildir_pair(
        &s.config, "migrate", &source, &target, &journal,
    ));
    let whole = on_journal(&s.config, &["audit"], &journal);
    assert_eq!(whole.status.code(), Some(0), "{:?}", text(&whole));
    assert!(
        whole.stdout.len() > 128 * 1024,
        "the audit ({} bytes) must be larger than a pipe's buffer",
        whole.stdout.len()
    );

    let mut child = ferry(&s.config)
        .args(["audit", "--journal"])
        .arg(&journal)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferry audit");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reader = std::io::BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first).expect("read one line");
    assert!(first.contains("run 1"), "{first}");
    drop(reader);
    let output = child.wait_with_output().expect("wait for ferry audit");
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "", "nothing on stderr when the reader leaves");
}

#[test]
fn status_during_a_run_says_a_run_is_in_progress() {
    // Goal: `ferry status` works while a migrate holds the journal, and says a run is in
    // progress. Method: a 3,000-message migrate is started; once 100 messages have landed,
    // status is called repeatedly; each call made and returned while the run was still going
    // exits 0 and says "a migration run is in progress" (at least one must be). After the run,
    // status says the run completed and no longer that one is in progress.
    let s = scratch();
    let source = s.work.join("source");
    let target = s.work.join("target");
    let journal = s.work.join("journal");
    sample(&source, 3_000, 13);
    let mut child = maildir_pair(&s.config, "migrate", &source, &target, &journal)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ferry migrate");
    let started = Instant::now();
    let mut observed = 0;
    while child.try_wait().expect("poll child").is_none()
        && started.elapsed() < Duration::from_secs(60)
        && observed < 3
    {
        if landed(&target) < 100 {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let status = on_journal(&s.config, &["status"], &journal);
        if child.try_wait().expect("poll child").is_some() {
            break;
        }
        let (stdout, stderr) = text(&status);
        assert_eq!(
            status.status.code(),
            Some(0),
            "status during a run:\n{stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("in progress since")
                || stdout.contains("a migration run is in progress"),
            "status during a run:\n{stdout}"
        );
        observed += 1;
    }
    let outcome = child.wait().expect("wait for the migrate");
    assert_eq!(outcome.code(), Some(0), "the migrate itself must complete");
    assert!(
        observed >= 1,
        "the run ended before status could be called during it"
    );

    let after = on_journal(&s.config, &["status"], &journal);
    let (stdout, stderr) = text(&after);
    assert_eq!(after.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains("in progress"), "{stdout}");
    assert!(stdout.contains(", completed"), "{stdout}");
}

#[test]
fn migrate_help_names_the_store_uris_query_options_passphrase_and_exit_codes() {
    // Goal: `ferry migrate --help` is enough to start: it shows the store URI forms, the IMAP
    // query options, the passphrase variable and the exit codes. Method: the help text must
    // contain `maildir:`, `imap://`, `imaps://`, each query option (`tls=none`, `auth=`,
    // `connections=`, `timeout=`, `compress=`, `utf8=`), `FERRY_PASSPHRASE`, and the words
    // "exit code" followed by each of the codes 0 to 5.
    let s = scratch();
    let output = run_ok(ferry(&s.config).args(["migrate", "--help"]));
    let (help, _) = text(&output);
    let mut absent: Vec<String> = [
        "maildir:",
        "imap://",
        "imaps://",
        "tls=none",
        "auth=",
        "connections=",
        "timeout=",
        "compress=",
        "utf8=",
        "FERRY_PASSPHRASE",
    ]
    .into_iter()
    .filter(|needle| !help.contains(needle))
    .map(str::to_owned)
    .collect();
    let lower = help.to_lowercase();
    match lower.find("exit code") {
        None => absent.push("exit code".into()),
        Some(at) => {
            let after = &lower[at..];
            let tokens: Vec<&str> = after.split(|c: char| !c.is_ascii_alphanumeric()).collect();
            for code in ["0", "1", "2", "3", "4", "5"] {
                if !tokens.contains(&code) {
                    absent.push(format!("exit code {code}"));
                }
            }
        }
    }
    assert!(
        absent.is_empty(),
        "`ferry migrate --help` lacks {absent:?}:\n{help}"
    );
}
