//! IMAP against real Dovecot servers on loopback, migrated through the binary between two
//! servers: initial copy, no-op and delta reruns, folder renames, UIDVALIDITY changes on either
//! side, special-use mapping, a message too large for the target, `--delete-removed`,
//! `--verify-target`, servers without the extensions ferry prefers, session limits,
//! COMPRESS=DEFLATE and password commands. Every check of the result reads both servers with an
//! independent IMAP client (`ferry_tests::dovecot::Client`), never ferry's journal. The IMAP
//! store driven directly (listings, the spool), slow links and TLS are in
//! `imap_dovecot_store.rs`.

use ferry_tests::dovecot::{Dovecot, PASSWORD, count};
use ferry_tests::imap::{copied, migrate, ok};
use ferry_tests::proxy::Proxy;
use ferry_tests::{Tree, ferry, report_text};

/// Folders with messages only (servers differ in which empty parents they list).
fn non_empty(tree: Tree) -> Tree {
    tree.into_iter()
        .filter(|(_, items)| !items.is_empty())
        .collect()
}

/// A source server filled with the seeded sample (through ferry from a Maildir), and an empty
/// target server.
struct Pair {
    // Fields drop in this order: the servers are stopped (by the pid in their directory)
    // before the directory is removed.
    source: Dovecot,
    target: Dovecot,
    dir: tempfile::TempDir,
}

impl Pair {
    fn new(messages: usize, source_options: &[&str], target_options: &[&str]) -> Pair {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = Dovecot::start(&dir.path().join("source-server"), source_options);
        let target = Dovecot::start(&dir.path().join("target-server"), target_options);
        let sample = dir.path().join("sample");
        let made = ferry(dir.path())
            .args([
                "generate-sample",
                "--messages",
                &messages.to_string(),
                "--out",
            ])
            .arg(&sample)
            .output()
            .expect("generate-sample");
        assert!(made.status.success());
        let seeded = migrate(
            dir.path(),
            &format!("maildir:{}", sample.display()),
            &source.uri(),
            &dir.path().join("seed-journal"),
            &[],
        );
        ok(&seeded);
        Pair {
            dir,
            source,
            target,
        }
    }

    fn journal(&self) -> std::path::PathBuf {
        self.dir.path().join("journal")
    }

    fn run(&self, extra: &[&str]) -> String {
        ok(&migrate(
            self.dir.path(),
            &self.source.uri(),
            &self.target.uri(),
            &self.journal(),
            extra,
        ))
    }

    /// `ferry report` of the pair's journal, as text.
    fn report(&self) -> String {
        report_text(self.dir.path(), &self.journal())
    }

    fn assert_same(&self) -> Tree {
        let source = non_empty(self.source.client().tree());
        let target = non_empty(self.target.client().tree());
        assert_eq!(source, target, "the target differs from the source");
        source
    }
}

#[test]
fn copies_everything_then_only_what_changed() {
    let pair = Pair::new(150, &[], &[]);
    let first = pair.run(&[]);
    let tree = pair.assert_same();
    assert_eq!(copied(&first), count(&tree));
    assert!(
        tree.keys().any(|f| !f.is_ascii()),
        "non-ASCII folders: {tree:?}"
    );
    assert!(
        tree.values()
            .flatten()
            .any(|(_, flags)| flags.iter().any(|f| f.len() > 1)),
        "keywords are carried"
    );

    // A rerun with nothing changed copies nothing and costs a few hundred bytes per server.
    let (source_before, target_before) = (pair.source.wire(), pair.target.wire());
    let rerun = pair.run(&[]);
    assert_eq!(copied(&rerun), 0, "{rerun}");
    let (source_after, target_after) = (pair.source.wire(), pair.target.wire());
    let source_bytes = source_after.0 + source_after.1 - source_before.0 - source_before.1;
    let target_bytes = target_after.0 + target_after.1 - target_before.0 - target_before.1;
    assert!(
        source_bytes < 8_000 && target_bytes < 8_000,
        "a no-op rerun moved {source_bytes} bytes with the source, {target_bytes} with the target"
    );

    // Users keep working on the source: new mail, flags, a deletion, a move, a renamed folder.
    let mut user = pair.source.client();
    user.append(
        "INBOX",
        "\\Seen $Important",
        b"From: a@example.com\r\nSubject: new one\r\n\r\nhello\r\n",
    );
    user.append(
        "INBOX",
        "",
        b"From: b@example.com\r\nSubject: new two\r\n\r\nhello again\r\n",
    );
    // Larger than what a change listing carries inline (16 KiB): fetched on its own.
    let mut large = b"From: c@example.com\r\nSubject: new three\r\n\r\n".to_vec();
    for line in 0..800 {
        large.extend_from_slice(format!("line {line:04} of a long message body\r\n").as_bytes());
    }
    user.append("INBOX", "\\Flagged", &large);
    user.ok("SELECT INBOX");
    user.ok("UID STORE 1 +FLAGS (\\Flagged $Later)");
    user.ok("UID STORE 2 -FLAGS (\\Seen)");
    user.ok("UID STORE 3 +FLAGS (\\Deleted)");
    user.ok("UID EXPUNGE 3");
    user.ok("UID STORE 4 +FLAGS (\\Answered $Moved)");
    user.ok("UID STORE 5 +FLAGS ($Other)");
    user.ok("UID MOVE 4:5 Archive");
    user.ok("RENAME Newsletters \"Newsletters Old\"");
    let delta = pair.run(&["--delete-removed"]);
    let tree = pair.assert_same();
    assert!(tree.contains_key("Newsletters Old") && !tree.contains_key("Newsletters"));
    // The moved messages are moved on the target too (one UID MOVE), not copied again and
    // deleted; their new flags follow, each to its own message. The renamed folder is
    // renamed, not copied.
    assert_eq!(copied(&delta), 3, "three new messages: {delta}");
    assert!(
        delta.contains(" 2 moves on the target"),
        "two messages moved on the target: {delta}"
    );
    assert!(
        pair.target
            .client()
            .folders()
            .iter()
            .all(|f| f != "Newsletters")
    );
    let again = pair.run(&["--delete-removed"]);
    assert_eq!(copied(&again), 0, "{again}");
}

#[test]
fn uidvalidity_changes_on_either_side_copy_nothing_twice() {
    let pair = Pair::new(60, &[], &[]);
    pair.run(&[]);
    let before = pair.assert_same();

    // The source folder is recreated with the same messages: new UIDVALIDITY.
    recreate(&pair.source, "Newsletters");
    let rerun = pair.run(&["--delete-removed"]);
    assert_eq!(copied(&rerun), 0, "{rerun}");
    assert_eq!(pair.assert_same(), before);

    // And the target folder too.
    recreate(&pair.target, "Newsletters");
    let rerun = pair.run(&["--delete-removed"]);
    assert_eq!(copied(&rerun), 0, "{rerun}");
    assert_eq!(pair.assert_same(), before);

    let text = pair.report();
    assert!(
        text.contains("UIDVALIDITY") || text.contains("validity"),
        "{text}"
    );
}

/// Deletes `folder` on `server` and creates it again with the same messages and flags.
fn recreate(server: &Dovecot, folder: &str) {
    let mut client = server.client();
    let old = client.uid_validity(folder);
    let messages = client.messages(folder);
    assert!(!messages.is_empty());
    client.ok("UNSELECT");
    client.ok(&format!("DELETE \"{folder}\""));
    client.ok(&format!("CREATE \"{folder}\""));
    for (_, flags, body) in &messages {
        client.append(folder, &flags.join(" "), body);
    }
    assert_ne!(client.uid_validity(folder), old, "a new UIDVALIDITY");
}

#[test]
fn special_use_folders_map_between_different_names() {
    let pair = Pair::new(
        0,
        &[
            "--special-use",
            "Sent Items=\\Sent",
            "--special-use",
            "Deleted Items=\\Trash",
        ],
        &[
            "--special-use",
            "Sent=\\Sent",
            "--special-use",
            "Trash=\\Trash",
        ],
    );
    let mut user = pair.source.client();
    user.append(
        "Sent Items",
        "\\Seen",
        b"From: me@example.com\r\nSubject: sent\r\n\r\nbody\r\n",
    );
    user.append(
        "Sent Items",
        "\\Seen",
        b"From: me@example.com\r\nSubject: sent 2\r\n\r\nbody\r\n",
    );
    user.append(
        "Deleted Items",
        "\\Seen",
        b"From: x@example.com\r\nSubject: old\r\n\r\nbody\r\n",
    );
    let mut target_user = pair.target.client();
    // One of them is already there: matched, not duplicated.
    target_user.append(
        "Sent",
        "\\Seen",
        b"From: me@example.com\r\nSubject: sent\r\n\r\nbody\r\n",
    );
    pair.run(&[]);
    let target = pair.target.client().tree();
    assert_eq!(target.get("Sent").map(Vec::len), Some(2), "{target:?}");
    assert_eq!(target.get("Trash").map(Vec::len), Some(1));
    assert!(!target.contains_key("Sent Items") && !target.contains_key("Deleted Items"));
    let rerun = pair.run(&[]);
    assert_eq!(copied(&rerun), 0);
}

#[test]
fn a_25_mb_message_and_a_refused_one() {
    let pair = Pair::new(5, &[], &["--max-message-size", "20000000"]);
    let mut big =
        b"From: big@example.com\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    while big.len() < 25 << 20 {
        big.extend_from_slice(
            b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n",
        );
    }
    pair.source.client().append("INBOX", "\\Flagged", &big);
    let mut small = b"From: small@example.com\r\nSubject: fits\r\n\r\n".to_vec();
    small.resize(19_000_000, b'x');
    small.extend_from_slice(b"\r\n");
    pair.source.client().append("INBOX", "", &small);
    let output = migrate(
        pair.dir.path(),
        &pair.source.uri(),
        &pair.target.uri(),
        &pair.journal(),
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "one item failed: {output:?}");
    let text = pair.report();
    assert!(
        text.to_lowercase().contains("size") || text.contains("larger"),
        "{text}"
    );
    let target = pair.target.client().tree();
    let source = pair.source.client().tree();
    assert_eq!(
        count(&target) + 1,
        count(&source),
        "all but the refused one"
    );
    // A refusal the target states as permanent is not retried by a plain run, but it is still
    // off the target: every run says so (exit 1, never 0), status and the report name it, and
    // `--full` and `--verify-target` try it again.
    for extra in [&[][..], &["--full"][..], &["--verify-target"][..]] {
        let again = migrate(
            pair.dir.path(),
            &pair.source.uri(),
            &pair.target.uri(),
            &pair.journal(),
            extra,
        );
        assert_eq!(again.status.code(), Some(1), "{extra:?}: {again:?}");
        let text = pair.report();
        assert!(text.contains("refused by the target 1"), "{text}");
    }
    let status = ferry(pair.dir.path())
        .args(["status", "--journal"])
        .arg(pair.journal())
        .output()
        .expect("status");
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("1 refused by the target"), "{status}");
    let audit = ferry(pair.dir.path())
        .args(["audit", "--journal"])
        .arg(pair.journal())
        .output()
        .expect("audit");
    let refusals = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .filter(|line| line.contains("failed:"))
        .count();
    assert!(
        refusals >= 3,
        "the first run, --full and --verify-target tried it ({refusals} refusals)"
    );

    // Without the limit it goes through, byte for byte.
    let roomy = Dovecot::start(&pair.dir.path().join("roomy"), &[]);
    ok(&migrate(
        pair.dir.path(),
        &pair.source.uri(),
        &roomy.uri(),
        &pair.dir.path().join("j2"),
        &[],
    ));
    assert_eq!(non_empty(roomy.client().tree()), non_empty(source));
}

#[test]
fn servers_without_qresync_condstore_uidplus_or_literal_plus() {
    let bare = [
        "--without",
        "QRESYNC",
        "--without",
        "CONDSTORE",
        "--without",
        "UIDPLUS",
        "--without",
        "LITERAL+",
        "--without",
        "LIST-STATUS",
        "--without",
        "MOVE",
    ];
    let pair = Pair::new(80, &bare, &bare);
    let first = pair.run(&[]);
    let tree = pair.assert_same();
    assert_eq!(copied(&first), count(&tree));
    let rerun = pair.run(&[]);
    assert_eq!(copied(&rerun), 0, "{rerun}");
    let mut user = pair.source.client();
    user.append(
        "INBOX",
        "\\Answered",
        b"From: c@example.com\r\nSubject: late\r\n\r\nx\r\n",
    );
    user.ok("SELECT INBOX");
    user.ok("UID STORE 1 +FLAGS (\\Flagged)");
    user.ok("UID STORE 2 +FLAGS (\\Deleted)");
    user.ok("EXPUNGE");
    pair.run(&["--delete-removed"]);
    pair.assert_same();
    // Flags changed on the target behind ferry's back are put right by --verify-target.
    let mut meddler = pair.target.client();
    meddler.ok("SELECT INBOX");
    meddler.ok("UID STORE 1:* -FLAGS (\\Seen \\Flagged \\Answered)");
    pair.run(&["--verify-target"]);
    pair.assert_same();
}

#[test]
fn a_server_refusing_more_sessions_is_lived_with_and_the_wait_journaled() {
    // Without MULTIAPPEND every message is its own APPEND, so a batch overflows a session.
    let pair = Pair::new(
        0,
        &[],
        &["--max-connections", "2", "--without", "MULTIAPPEND"],
    );
    // One big folder, so a batch of appends overflows one session's pipeline.
    let mut user = pair.source.client();
    for n in 0..300 {
        let message = format!("From: n{n}@example.com\r\nSubject: message {n}\r\n\r\nbody {n}\r\n");
        user.append("INBOX", "", message.as_bytes());
    }
    let output = migrate(
        pair.dir.path(),
        &pair.source.uri(),
        &format!("{}&connections=6", pair.target.uri()),
        &pair.journal(),
        // Deep enough that one session's pipeline overflows and more are asked for.
        &["--jobs", "160"],
    );
    let stdout = ok(&output);
    assert!(copied(&stdout) > 0);
    pair.assert_same();
    let text = pair.report();
    assert!(
        text.contains("throttled"),
        "the refusal is journaled: {text}"
    );
}

// Goal: with COMPRESS=DEFLATE (asked with ?compress=yes; by default only for servers off this
// machine and off private networks), both directions are deflated: far fewer bytes cross the
// wire, and the target ends up the same; with ?compress=no the stream is plain.
// Method: two Dovecots offering COMPRESS=DEFLATE, each behind a proxy that counts what passes;
// an initial copy with compression on both sides moves well under half the bytes the servers
// logged (they count what they read and wrote before deflating); a delta without it moves at
// least what they logged. Both servers are compared by an independent IMAP client.
#[test]
fn compress_deflate_shrinks_what_crosses_the_wire_and_changes_nothing_else() {
    let pair = Pair::new(200, &["--compress"], &["--compress"]);
    let (source_proxy, target_proxy) = (
        Proxy::start(pair.source.port()),
        Proxy::start(pair.target.port()),
    );
    let (source_port, target_port) = (source_proxy.port, target_proxy.port);
    let uri = |port: u16, compress: &str| {
        format!(
            "imap://{}@127.0.0.1:{port}/?tls=none&compress={compress}",
            "ferry"
        )
    };
    let logged = |pair: &Pair| {
        let (source, target) = (pair.source.wire(), pair.target.wire());
        source.0 + source.1 + target.0 + target.1
    };
    let counted = || {
        source_proxy
            .bytes
            .load(std::sync::atomic::Ordering::Relaxed)
            + target_proxy
                .bytes
                .load(std::sync::atomic::Ordering::Relaxed)
    };

    let before = logged(&pair);
    let first = ok(&migrate(
        pair.dir.path(),
        &uri(source_port, "yes"),
        &uri(target_port, "yes"),
        &pair.journal(),
        &[],
    ));
    // Read before the check below, whose own sessions the servers log too.
    let (plain, wire) = (logged(&pair) - before, counted());
    let tree = pair.assert_same();
    assert_eq!(copied(&first), count(&tree));
    assert!(
        wire * 2 < plain,
        "compressed, {wire} bytes crossed the wire for {plain} bytes of IMAP"
    );

    let mut user = pair.source.client();
    user.append(
        "INBOX",
        "\\Seen",
        b"From: a@example.com\r\nSubject: after\r\n\r\nwritten after the first run\r\n",
    );
    let (before, wire_before) = (logged(&pair), counted());
    let delta = ok(&migrate(
        pair.dir.path(),
        &uri(source_port, "no"),
        &uri(target_port, "no"),
        &pair.journal(),
        &[],
    ));
    let (plain, wire) = (logged(&pair) - before, counted() - wire_before);
    assert_eq!(copied(&delta), 1, "{delta}");
    pair.assert_same();
    assert!(
        wire >= plain,
        "plain, {wire} bytes crossed the wire for {plain} bytes of IMAP"
    );
}

// Goal: a password (or OAuth token) can come from a command, run again at every login, so a
// helper that refreshes tokens keeps a long run logged in; a failing command is a clear error
// that names the command and never prints the secret.
// Method: the source's password comes from a script that counts its runs in a file; the run
// copies everything, the script ran once per source session at least; then a script that
// fails stops the run with its message.
#[test]
fn a_password_command_runs_at_every_login_and_its_failure_is_named() {
    let pair = Pair::new(40, &[], &[]);
    let counter = pair.dir.path().join("runs");
    let helper = pair.dir.path().join("token-helper");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\necho run >> '{}'\nprintf '%s\\n' '{PASSWORD}'\n",
            counter.display()
        ),
    )
    .expect("helper");
    let run = |command: &str, journal: &str| {
        ferry(pair.dir.path())
            .arg("migrate")
            .args(["--from", &pair.source.uri(), "--to", &pair.target.uri()])
            .arg("--journal")
            .arg(pair.dir.path().join(journal))
            .args(["--from-password-command", command])
            .env("FERRY_TO_PASSWORD", PASSWORD)
            .output()
            .expect("running ferry")
    };
    let logins = || {
        std::fs::read_to_string(pair.source.dir().join("dovecot.log"))
            .expect("source log")
            .lines()
            .filter(|line| line.contains("imap-login: Info: Login:"))
            .count()
    };
    let before = logins();
    let out = run(&format!("sh '{}'", helper.display()), "j1");
    let stdout = ok(&out);
    assert_eq!(copied(&stdout), 40, "{stdout}");
    // Every source session of the run logged in with what the command printed, which it
    // printed anew for each.
    let runs = std::fs::read_to_string(&counter)
        .expect("counter")
        .lines()
        .count();
    assert!(runs >= 1, "the command ran {runs} times");
    assert_eq!(runs, logins() - before, "one command run per login");
    pair.assert_same();

    let failing = run("echo 'vault is sealed' >&2; exit 3", "j2");
    assert!(!failing.status.success());
    let stderr = String::from_utf8_lossy(&failing.stderr);
    assert!(
        stderr.contains("password command") && stderr.contains("vault is sealed"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(PASSWORD) && !String::from_utf8_lossy(&failing.stdout).contains(PASSWORD)
    );
}

// Goal (issue 12, point 9, over IMAP): a folder deleted on the source does not take its
// messages off the target in one unannounced run: the run holds the deletions and exits 6;
// confirmed, the messages are deleted and the emptied folder with them (IMAP DELETE), and
// target equals source. Method: two real Dovecot servers, a 300-message sample, one leaf
// folder with an ASCII name and at least 20 messages deleted on the source.
#[test]
fn a_folder_deleted_on_the_source_waits_for_a_confirmation_then_goes() {
    let pair = Pair::new(300, &[], &[]);
    pair.run(&["--delete-removed"]);
    let tree = pair.assert_same();
    let folder = tree
        .iter()
        .filter(|(name, items)| {
            name.as_str() != "INBOX"
                && name.is_ascii()
                && items.len() >= 20
                && !tree
                    .keys()
                    .any(|other| other.starts_with(&format!("{name}/")))
        })
        .map(|(name, _)| name.clone())
        .next()
        .unwrap_or_else(|| panic!("a leaf folder of 20 messages or more: {tree:?}"));
    pair.source.client().ok(&format!("DELETE \"{folder}\""));
    let held = migrate(
        pair.dir.path(),
        &pair.source.uri(),
        &pair.target.uri(),
        &pair.journal(),
        &["--delete-removed"],
    );
    assert_eq!(held.status.code(), Some(6), "{held:?}");
    let target = pair.target.client().tree();
    assert_eq!(
        target.get(&folder).map(Vec::len),
        tree.get(&folder).map(Vec::len),
        "nothing deleted while held"
    );
    let confirmed = pair.run(&["--delete-removed", "--confirm-deletions"]);
    assert!(confirmed.contains(": completed."), "{confirmed}");
    pair.assert_same();
    assert!(
        !pair.target.client().folders().contains(&folder),
        "the emptied folder is deleted on the target"
    );
}
