//! Many migrations in one process, as a batch runner will run them: a run's future is `Send`,
//! so several are spawned on one multi-thread runtime, and each spools its large messages into
//! the directory it was given (a value of the run, not of the process). Real Dovecot as the
//! source, real Maildirs and real journals on disk as the targets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_engine::body::PIECE_BYTES;
use ferry_engine::event::RunOutcome;
use ferry_engine::{
    Config, Event, Quiet, Run, RunContext, RunOptions, RunSummary, Side, State, StopSignal,
    SystemClock,
};
use ferry_imap::{ImapOptions, ImapStore, Secret};
use ferry_journal::{CreateOptions, Journal, KeyFileSecret, KeySource};
use ferry_maildir::MaildirStore;
use ferry_tests::dovecot::{Dovecot, PASSWORD};
use ferry_tests::{differences, maildir_tree};

/// What one migration left behind: how it ended and the reasons the journal gives for the
/// source messages it could not read.
struct Ended {
    summary: RunSummary,
    unreadable: Vec<String>,
}

/// One migration from the IMAP `source` to a new Maildir `target`, journaled in `journal`,
/// spooling large messages into `spool`. Owns everything it uses, so it can be spawned.
async fn migrate(source: String, spool: PathBuf, target: PathBuf, journal: PathBuf) -> Ended {
    let options = ImapOptions {
        secret: Some(Secret::Value(Arc::new(PASSWORD.to_owned().into()))),
        ca_file: None,
        insecure: false,
        read_only: true,
        spool_dir: Some(spool),
    };
    let source = ImapStore::new(&source, &options).expect("source store");
    let target = MaildirStore::open(&target, true).expect("target store");
    let key = KeySource::KeyFile(KeyFileSecret::from_bytes(&[7; 32]).expect("key"));
    let journal =
        Journal::<Event>::create(&journal, &key, CreateOptions::default()).expect("journal");
    let summary = {
        let mut run = Run::new(RunContext {
            source: &source,
            target: &target,
            log: &journal,
            state: State::default(),
            options: RunOptions::default(),
            config: Config {
                // A read that cannot spool fails quickly instead of backing off for seconds.
                retry_count_max: 2,
                backoff_base_ms: 1,
                backoff_max_ms: 5,
                ..Config::default()
            },
            clock: &SystemClock,
            watcher: &Quiet,
            stop: StopSignal::new(),
            pacers: None,
        });
        run.execute(None).await.expect("the run ends")
    };
    let mut unreadable = Vec::new();
    for entry in journal.replay(1) {
        for event in entry.expect("replay").event.flatten() {
            if let Event::ItemUnreadable {
                side: Side::Source,
                reason,
                ..
            } = event
            {
                unreadable.push(reason);
            }
        }
    }
    Ended {
        summary,
        unreadable,
    }
}

/// A message of `len` bytes with `subject`.
fn message(subject: &str, len: usize) -> Vec<u8> {
    let mut bytes = format!("From: a@example.com\r\nSubject: {subject}\r\n\r\n").into_bytes();
    let mut line = 0_u64;
    while bytes.len() + 2 < len {
        line += 1;
        bytes.extend_from_slice(format!("{subject} line {line:08} of its body\r\n").as_bytes());
    }
    bytes.truncate(len - 2);
    bytes.extend_from_slice(b"\r\n");
    bytes
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs two migrations at once on one runtime, each spawned as its own task.
fn both(
    runtime: &tokio::runtime::Runtime,
    source: &str,
    dir: &Path,
    names: [(&str, PathBuf); 2],
) -> [Ended; 2] {
    runtime.block_on(async {
        let [a, b] = names.map(|(name, spool)| {
            tokio::spawn(migrate(
                source.to_owned(),
                spool,
                dir.join(name).join("target"),
                dir.join(name).join("journal"),
            ))
        });
        let (a, b) = tokio::join!(a, b);
        [a.expect("first run's task"), b.expect("second run's task")]
    })
}

#[test]
fn two_migrations_run_at_once_in_one_process_each_spooling_into_its_own_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Dovecot::start(&dir.path().join("source"), &[]);
    let mut user = server.client();
    // Two messages larger than a piece (read in pieces into a spool) and four small ones.
    let sizes = [
        2 * PIECE_BYTES + 777,
        PIECE_BYTES + 1,
        2_000,
        3_000,
        4_000,
        5_000,
    ];
    for (n, &len) in sizes.iter().enumerate() {
        user.append("INBOX", "", &message(&format!("m{n}"), len));
    }
    user.ok("CREATE Projects");
    user.append("Projects", "\\Seen", &message("p", 1_500));
    let source_tree = user.tree();
    let spool = |name: &str| {
        let path = dir.path().join(format!("spool-{name}"));
        std::fs::create_dir(&path).expect("spool dir");
        path
    };
    let runtime = runtime();

    // Both runs complete and their targets hold exactly the source.
    let [a, b] = both(
        &runtime,
        &server.uri(),
        dir.path(),
        [("a", spool("a")), ("b", spool("b"))],
    );
    for (name, ended) in [("a", &a), ("b", &b)] {
        assert_eq!(ended.summary.outcome, RunOutcome::Completed, "run {name}");
        assert_eq!(ended.summary.counts.copied, 7, "run {name}");
        assert!(
            ended.unreadable.is_empty(),
            "run {name}: {:?}",
            ended.unreadable
        );
        let target = maildir_tree(&dir.path().join(name).join("target"));
        assert_eq!(
            differences(&source_tree, &target),
            (0, 0, 0),
            "run {name}: missing, duplicated, altered"
        );
        // Unnamed spool files: nothing is left behind in the run's directory.
        let left = std::fs::read_dir(dir.path().join(format!("spool-{name}")))
            .expect("spool dir")
            .count();
        assert_eq!(left, 0, "run {name} left files in its spool directory");
    }

    // Each run spools where it was told: a run whose spool directory is gone cannot read the
    // two large messages (and says where it tried), while the run beside it, in the same
    // process at the same time, copies everything.
    let missing = dir.path().join("spool-gone");
    let [c, d] = both(
        &runtime,
        &server.uri(),
        dir.path(),
        [("c", spool("c")), ("d", missing.clone())],
    );
    assert_eq!(c.summary.outcome, RunOutcome::Completed);
    assert_eq!(c.summary.counts.copied, 7);
    assert!(c.unreadable.is_empty(), "{:?}", c.unreadable);
    assert_eq!(
        differences(
            &source_tree,
            &maildir_tree(&dir.path().join("c").join("target"))
        ),
        (0, 0, 0)
    );
    assert_ne!(d.summary.outcome, RunOutcome::Completed);
    assert_eq!(d.summary.counts.copied, 5, "the small messages are copied");
    assert_eq!(d.unreadable.len(), 2, "{:?}", d.unreadable);
    for reason in &d.unreadable {
        assert!(
            reason.contains(&missing.display().to_string()),
            "the reason names the run's own spool directory: {reason}"
        );
    }
    assert_eq!(
        differences(
            &source_tree,
            &maildir_tree(&dir.path().join("d").join("target"))
        )
        .0,
        2,
        "the two large messages are missing from the target of the run that could not spool"
    );
}
