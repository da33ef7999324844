//! Misuse an operator meets at the command line, each a regression test of a point of issue
//! 12: a target inside the source or the same store spelled twice, a password in a URI,
//! refused starts that must leave nothing behind, an empty journal directory, a closed pipe,
//! `status` during a run and what `migrate --help` has to say. (Journals killed, damaged,
//! truncated or read: journal_misuse.rs.)
//!
//! Every test runs the real binary against real directories; trees are compared by an
//! independent walk (plain blake3 of every file's bytes), never through ferry's journal.

use std::io::BufRead as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ferry_tests::scratch::*;
use ferry_tests::{ferry, maildir_pair, maildir_tree};

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
