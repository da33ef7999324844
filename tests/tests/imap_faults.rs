//! IMAP → IMAP under faults, against real Dovecot servers:
//! - a TCP proxy in front of both servers cuts connections at random byte offsets and delays
//!   replies; runs are repeated until one completes, and the result has 0 missing and 0
//!   duplicates;
//! - the real binary, with a journal passphrase (Argon2id at every start), is killed with
//!   SIGKILL at 56 random moments of a 3,000-message migration, 15 of them within a run's
//!   first second (5 from the very first start: journal creation, key derivation, first
//!   listing), and resumed each time;
//! - a proxy ends a session with `BYE [UNAVAILABLE]`: the run backs off, journals it as
//!   throttling and finishes;
//! - a source folder Dovecot cannot open (`chmod 000`), in both shapes it shows: the other
//!   folders migrate, the run exits 1 naming it, nothing of it is deleted on the target.
//!
//! Both are checked by an independent IMAP listing of both servers
//! (`ferry_tests::dovecot::Client`), not by ferry's journal.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ferry_tests::dovecot::{Dovecot, PASSWORD, count};
use ferry_tests::{Kills, Tree, differences, ferry, kill_from_the_start, report_text};

fn non_empty(tree: Tree) -> Tree {
    tree.into_iter()
        .filter(|(_, items)| !items.is_empty())
        .collect()
}

fn migrate_command(home: &Path, from: &str, to: &str, journal: &Path) -> Command {
    let mut command = ferry(home);
    command
        .arg("migrate")
        .args(["--from", from, "--to", to])
        .arg("--journal")
        .arg(journal)
        .env("FERRY_FROM_PASSWORD", PASSWORD)
        .env("FERRY_TO_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Fills a fresh source server with `messages` sample messages (through ferry, from a Maildir).
fn seeded_source(home: &Path, messages: usize, seed: u64) -> Dovecot {
    let source = Dovecot::start(&home.join("source-server"), &[]);
    let sample = home.join("sample");
    ferry_sample::generate(&sample, &ferry_sample::SampleSpec { messages, seed })
        .expect("generate the sample");
    let status = migrate_command(
        home,
        &format!("maildir:{}", sample.display()),
        &source.uri(),
        &home.join("seed-journal"),
    )
    .status()
    .expect("seed the source");
    assert_eq!(status.code(), Some(0));
    source
}

/// A loopback TCP proxy to `upstream` that, with probability `cut_chance` per connection, cuts
/// it after a random number of bytes (either direction), and delays chunks by 0–`delay_ms`.
struct FaultProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    cuts: Arc<AtomicU64>,
}

impl FaultProxy {
    fn start(upstream: u16, seed: u64, cut_chance: f64, delay_ms: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (stop_flag, cut_count) = (stop.clone(), cuts.clone());
        std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(seed);
            while !stop_flag.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                // Cut somewhere in the first 400 KB of this connection, or never.
                let budget = if rng.f64() < cut_chance {
                    rng.u64(1..400_000)
                } else {
                    u64::MAX
                };
                let budget = Arc::new(AtomicU64::new(budget));
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let budget = budget.clone();
                    let cuts = cut_count.clone();
                    let delay = if delay_ms > 0 {
                        rng.u64(0..=delay_ms)
                    } else {
                        0
                    };
                    std::thread::spawn(move || pump(from, to, &budget, &cuts, delay));
                }
            }
        });
        FaultProxy { port, stop, cuts }
    }

    fn uri(&self) -> String {
        format!("imap://ferry@127.0.0.1:{}/?tls=none&timeout=5", self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` until either ends or the shared byte budget runs out (a cut).
fn pump(mut from: TcpStream, mut to: TcpStream, budget: &AtomicU64, cuts: &AtomicU64, delay: u64) {
    let mut buffer = [0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let left = budget.load(Ordering::Relaxed);
        if (n as u64) >= left {
            let _ = to.write_all(&buffer[..usize::try_from(left).unwrap_or(n)]);
            budget.store(0, Ordering::Relaxed);
            cuts.fetch_add(1, Ordering::Relaxed);
            break;
        }
        budget.fetch_sub(n as u64, Ordering::Relaxed);
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[test]
fn connections_cut_at_random_offsets_lose_and_duplicate_nothing() {
    let home = tempfile::tempdir().expect("temp dir");
    let source = seeded_source(home.path(), 600, 11);
    let target = Dovecot::start(&home.path().join("target-server"), &[]);
    let source_proxy = FaultProxy::start(source.port(), 1, 0.9, 3);
    let target_proxy = FaultProxy::start(target.port(), 2, 0.9, 3);
    let journal = home.path().join("journal");
    let mut runs = 0;
    loop {
        runs += 1;
        let status = migrate_command(
            home.path(),
            &source_proxy.uri(),
            &target_proxy.uri(),
            &journal,
        )
        .status()
        .expect("run ferry");
        if status.code() == Some(0) {
            break;
        }
        assert!(
            matches!(status.code(), Some(1 | 4)),
            "a broken connection ends a run with failed items or as unreachable: {status:?}"
        );
        assert!(runs < 60, "no run completed in 60 attempts");
    }
    let cuts =
        source_proxy.cuts.load(Ordering::Relaxed) + target_proxy.cuts.load(Ordering::Relaxed);
    eprintln!("{runs} runs, {cuts} connections cut");
    assert!(
        cuts >= 5,
        "the proxies must really cut connections ({cuts})"
    );
    let source_tree = non_empty(source.client().tree());
    let target_tree = non_empty(target.client().tree());
    assert_eq!(count(&source_tree), 600);
    assert_eq!(differences(&source_tree, &target_tree), (0, 0, 0));
}

/// Message files Dovecot has stored for the target user (a cheap progress probe only).
fn landed(dir: &Path) -> usize {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|p| p == "cur" || p == "new")
            {
                total += 1;
            }
        }
    }
    total
}

#[test]
fn killed_fifty_six_times_from_the_first_second_then_resumed_nothing_missing_nothing_twice() {
    let home = tempfile::tempdir().expect("temp dir");
    let source = seeded_source(home.path(), 3_000, 77);
    let target = Dovecot::start(&home.path().join("target-server"), &[]);
    let stored = target.dir().join("mail");
    let journal = home.path().join("journal");
    let passphrase = home.path().join("passphrase");
    std::fs::write(&passphrase, "correct horse battery staple").expect("passphrase file");
    let run = || {
        let mut command = migrate_command(home.path(), &source.uri(), &target.uri(), &journal);
        command.arg("--passphrase-file").arg(&passphrase);
        command
    };
    let mut rng = fastrand::Rng::with_seed(20261125);
    // Five kills within the very first start's first 700 ms (journal creation, Argon2id, first
    // listing), then kills inside the copy, then ten more in the first second of a resumed run
    // (key derivation, settling writes in doubt, listings): a first second that copies a few
    // hundred messages each time would leave too little copy to interrupt.
    let first = kill_from_the_start(
        &mut rng,
        (5, 700),
        36,
        27,
        100,
        3_000,
        || landed(&stored),
        || run().spawn().expect("start ferry"),
    );
    let later = kill_from_the_start(
        &mut rng,
        (10, 1_000),
        5,
        0,
        100,
        3_000,
        || landed(&stored),
        || run().spawn().expect("start ferry"),
    );
    let Kills {
        mid_copy,
        finished_first,
    } = Kills {
        mid_copy: first.mid_copy,
        finished_first: first.finished_first + later.finished_first,
    };
    let status = run().status().expect("final run");
    assert_eq!(status.code(), Some(0), "the final run completes");
    eprintln!("{mid_copy} kills interrupted the copy, {finished_first} runs finished first");
    assert!(
        mid_copy >= 10,
        "at least 10 kills inside the copy ({mid_copy})"
    );
    assert!(
        finished_first < 35,
        "{finished_first} runs finished before their kill"
    );
    let source_tree = non_empty(source.client().tree());
    let target_tree = non_empty(target.client().tree());
    assert_eq!(count(&source_tree), 3_000);
    assert_eq!(
        differences(&source_tree, &target_tree),
        (0, 0, 0),
        "missing, duplicates, flag differences"
    );
    let verify = ferry(home.path())
        .args(["journal", "verify", "--journal"])
        .arg(&journal)
        .arg("--passphrase-file")
        .arg(&passphrase)
        .output()
        .expect("journal verify");
    assert_eq!(verify.status.code(), Some(0), "{verify:?}");
}

/// A loopback proxy to `upstream`: for each client, connects to the server and hands both
/// streams to `handle`, which starts the pumps. Returns the proxy's port.
fn loopback_proxy(upstream: u16, handle: impl Fn(TcpStream, TcpStream) + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            handle(client, server);
        }
    });
    port
}

/// Copies `from` into `to` on a thread of its own until either ends, then closes `to`.
fn pass_through(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// A loopback proxy to `upstream` that rewrites what the server says: every `from` in a chunk
/// the server sends becomes `to` (the responses rewritten here are short single lines).
fn rewriting_proxy(upstream: u16, from: &'static [u8], to: &'static [u8]) -> u16 {
    loopback_proxy(upstream, move |client, server| {
        pass_through(&client, &server);
        let (mut server_in, mut client_out) = (server, client);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 64 << 10];
            loop {
                let n = match server_in.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut chunk = buffer[..n].to_vec();
                while let Some(at) = chunk.windows(from.len()).position(|w| w == from) {
                    chunk.splice(at..at + from.len(), to.iter().copied());
                }
                if client_out.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = client_out.shutdown(Shutdown::Both);
        });
    })
}

#[test]
fn keywords_outside_permanentflags_are_left_off_and_reported() {
    let home = tempfile::tempdir().expect("temp dir");
    let source = Dovecot::start(&home.path().join("source-server"), &[]);
    let mut user = source.client();
    user.append(
        "INBOX",
        "\\Seen $Label1",
        b"From: k@example.com\r\nSubject: one\r\n\r\nx\r\n",
    );
    user.append(
        "INBOX",
        "\\Flagged",
        b"From: k@example.com\r\nSubject: two\r\n\r\ny\r\n",
    );
    let target = Dovecot::start(&home.path().join("target-server"), &[]);
    // The target, as some servers do, keeps the system flags only: no \* in PERMANENTFLAGS.
    let port = rewriting_proxy(target.port(), b" \\*)]", b")]");
    let journal = home.path().join("journal");
    let status = migrate_command(
        home.path(),
        &source.uri(),
        &format!("imap://ferry@127.0.0.1:{port}/?tls=none"),
        &journal,
    )
    .status()
    .expect("run ferry");
    assert_eq!(status.code(), Some(0));
    let tree = non_empty(target.client().tree());
    let flags: Vec<Vec<String>> = tree["INBOX"].iter().map(|(_, f)| f.clone()).collect();
    assert!(
        flags.contains(&vec!["S".to_owned()]) && flags.contains(&vec!["F".to_owned()]),
        "system flags carried, the keyword left off: {flags:?}"
    );
    let text = report_text(home.path(), &journal);
    assert!(
        text.contains("keyword \"$Label1\" cannot be kept in INBOX"),
        "{text}"
    );
}

/// A loopback proxy to `upstream` that, the first time the client sends a command containing
/// `trigger`, answers it with `* BYE [UNAVAILABLE] ...` instead of forwarding it, and closes
/// the connection, as a server that sheds load does. Later connections pass through.
fn bye_once_proxy(upstream: u16, trigger: &'static [u8], fired: Arc<AtomicBool>) -> u16 {
    loopback_proxy(upstream, move |client, server| {
        pass_through(&server, &client);
        let (mut client_in, mut server_out) = (client, server);
        let fired = fired.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 64 << 10];
            loop {
                let n = match client_in.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let chunk = &buffer[..n];
                let hit = chunk.windows(trigger.len()).any(|w| w == trigger);
                if hit && !fired.swap(true, Ordering::SeqCst) {
                    let _ = client_in
                        .write_all(b"* BYE [UNAVAILABLE] Server is busy, try again later\r\n");
                    let _ = client_in.shutdown(Shutdown::Both);
                    break;
                }
                if server_out.write_all(chunk).is_err() {
                    break;
                }
            }
            let _ = server_out.shutdown(Shutdown::Both);
        });
    })
}

// Goal: a server that drops the session with `BYE [UNAVAILABLE]` is throttling: the run backs
// off, journals the wait (the report shows it) and finishes on a new session with nothing
// missing and nothing twice.
#[test]
fn a_bye_with_unavailable_is_throttling_backed_off_and_reported() {
    let home = tempfile::tempdir().expect("temp dir");
    let source = seeded_source(home.path(), 60, 5);
    let target = Dovecot::start(&home.path().join("target-server"), &[]);
    let fired = Arc::new(AtomicBool::new(false));
    let port = bye_once_proxy(source.port(), b"BODY.PEEK[]", fired.clone());
    let journal = home.path().join("journal");
    let status = migrate_command(
        home.path(),
        &format!("imap://ferry@127.0.0.1:{port}/?tls=none"),
        &target.uri(),
        &journal,
    )
    .status()
    .expect("run ferry");
    assert!(fired.load(Ordering::SeqCst), "the proxy never said BYE");
    assert_eq!(status.code(), Some(0));
    let source_tree = non_empty(source.client().tree());
    let target_tree = non_empty(target.client().tree());
    assert_eq!(count(&source_tree), 60);
    assert_eq!(differences(&source_tree, &target_tree), (0, 0, 0));
    let text = report_text(home.path(), &journal);
    assert!(text.contains("throttled"), "{text}");
}

/// `(body, sorted flags)` of every message of `folder`, sorted: an independent view.
fn messages_of(server: &Dovecot, folder: &str) -> Vec<(Vec<u8>, Vec<String>)> {
    let mut items: Vec<(Vec<u8>, Vec<String>)> = server
        .client()
        .messages(folder)
        .into_iter()
        .map(|(_, mut flags, body)| {
            flags.sort();
            (body, flags)
        })
        .collect();
    items.sort();
    items
}

// Goal (issue 12, point 8): one source folder the server cannot open stops nothing else. The
// other folders migrate, the run exits 1 naming the folder in the server's words, and nothing
// ferry copied from that folder is deleted on the target, even with --delete-removed; once the
// server can open it again, one run makes the target the source, with no duplicates.
// Method: real Dovecot; `chmod 000` on the folder's directory (Dovecot's mail processes run as
// the `dovecot` user) makes it fail in its two shapes: on the first run after the break, LIST
// shows the folder with an untagged `NO [SERVERBUG] Internal error occurred` instead of its
// STATUS (or, without LIST-STATUS, STATUS answers that NO); from then on LIST says
// `\Noselect` and STATUS still answers NO [SERVERBUG]. Each shape is one run; both with and
// without LIST-STATUS. Checked by an independent IMAP client (UIDs of the target's copies
// unchanged), stderr and `ferry report`.
#[test]
fn a_source_folder_the_server_cannot_open_stops_nothing_else_and_loses_nothing() {
    for options in [&[][..], &["--without", "LIST-STATUS"][..]] {
        let case = format!("source options {options:?}");
        let home = tempfile::tempdir().expect("temp dir");
        let source = Dovecot::start(&home.path().join("source-server"), options);
        let target = Dovecot::start(&home.path().join("target-server"), &[]);
        let journal = home.path().join("journal");
        let message = |folder: &str, n: usize| {
            format!(
                "From: u@example.com\r\nMessage-ID: <{folder}-{n}@unreadable>\r\nSubject: \
                 {folder} {n}\r\n\r\nbody {n}\r\n"
            )
            .into_bytes()
        };
        let mut user = source.client();
        user.ok("CREATE Sent");
        user.ok("CREATE Work");
        for (folder, messages) in [("INBOX", 30), ("Sent", 40), ("Work", 30)] {
            for n in 0..messages {
                let flags = if n % 3 == 0 { "\\Seen" } else { "" };
                user.append(folder, flags, &message(folder, n));
            }
        }
        drop(user);
        let run = || {
            let output = migrate_command(home.path(), &source.uri(), &target.uri(), &journal)
                .arg("--delete-removed")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()
                .expect("run ferry");
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        };
        let (code, stderr) = run();
        assert_eq!(code, Some(0), "{case}: first run: {stderr}");
        assert_eq!(
            non_empty(target.client().tree()),
            non_empty(source.client().tree()),
            "{case}"
        );

        // Users go on: new mail in Work and Sent, a message expunged in INBOX and one in Sent.
        // Then the server cannot open Sent. No LIST after the break: the first one would
        // turn Dovecot to its second shape.
        let mut user = source.client();
        user.append("Work", "", &message("Work", 100));
        user.append("Sent", "", &message("Sent", 100));
        for folder in ["INBOX", "Sent"] {
            user.ok(&format!("SELECT {folder}"));
            user.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)");
            user.ok("EXPUNGE");
        }
        drop(user);
        let sent_before = target.client().messages("Sent");
        assert_eq!(sent_before.len(), 40, "{case}");
        let sent_dir = source.dir().join("mail").join("ferry").join("Sent");
        let chmod = |mode: &str| {
            let status = Command::new("chmod")
                .arg(mode)
                .arg(&sent_dir)
                .status()
                .expect("chmod");
            assert!(status.success(), "chmod {mode} {}", sent_dir.display());
        };
        chmod("000");

        for shape in ["LIST without STATUS, then NO [SERVERBUG]", "\\Noselect"] {
            if shape == "\\Noselect" {
                // An independent look: the server now lists Sent as holding no messages.
                let (listed, _) = source.client().run("LIST \"\" \"*\"", None);
                assert!(
                    listed
                        .iter()
                        .any(|u| u.text.contains("\\Noselect") && u.text.ends_with(" Sent")),
                    "{case}: Dovecot lists Sent as \\Noselect: {listed:?}"
                );
            }
            let (code, stderr) = run();
            assert_eq!(code, Some(1), "{case}, {shape}: {stderr}");
            assert!(
                stderr.contains("Sent") && stderr.contains("Internal error occurred"),
                "{case}, {shape}: the folder in the server's words: {stderr}"
            );
            assert_eq!(
                target.client().messages("Sent"),
                sent_before,
                "{case}, {shape}: the target's Sent is untouched (nothing deleted, same UIDs)"
            );
            for folder in ["INBOX", "Work"] {
                assert_eq!(
                    messages_of(&target, folder),
                    messages_of(&source, folder),
                    "{case}, {shape}: {folder} migrated"
                );
            }
            let report = report_text(home.path(), &journal);
            assert!(
                report.contains("folder not listed: STATUS Sent: Internal error occurred"),
                "{case}, {shape}: {report}"
            );
        }

        // The server can open Sent again: one run makes the target the source.
        chmod("755");
        let (code, stderr) = run();
        assert_eq!(code, Some(0), "{case}: healed: {stderr}");
        // Dovecot may go on listing Sent as \Noselect until its list index is rebuilt, which
        // creating and deleting a folder does; the comparison below needs it listed.
        let mut user = source.client();
        user.ok("CREATE ferry-scratch");
        user.ok("DELETE ferry-scratch");
        drop(user);
        let source_tree = non_empty(source.client().tree());
        assert_eq!(count(&source_tree), 29 + 40 + 31, "{case}");
        assert_eq!(non_empty(target.client().tree()), source_tree, "{case}");
        let (code, stderr) = run();
        assert_eq!(code, Some(0), "{case}: a run after: {stderr}");
        assert_eq!(non_empty(target.client().tree()), source_tree, "{case}");
    }
}
