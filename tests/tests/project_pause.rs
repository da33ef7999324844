//! A project paused by SIGTERM in the middle and resumed by running it again: every mailbox
//! ends whole, nothing doubled, and the messages copied over both runs are exactly those of
//! the sources (Maildir to Maildir: what is compared is read from the files). Also the shell
//! completions and the manual page made from the command definitions.

use std::path::Path;
use std::time::{Duration, Instant};

use ferry_tests::project::{maildir_project, sample_mailboxes};
use ferry_tests::{differences, ferry, maildir_tree};

const USERS: [&str; 4] = ["ann", "bob", "cid", "dan"];

fn copied_per_mailbox(out: &str) -> Vec<(String, usize)> {
    out.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(": ")?;
            let counted = rest.split(" — ").nth(1)?;
            let copied = counted.split(' ').next()?.parse().ok()?;
            Some((name.to_string(), copied))
        })
        .collect()
}

/// The four mailboxes of `messages` each, and their project (two at once, mapped by rule).
fn project(dir: &Path, home: &Path, messages: usize) -> std::path::PathBuf {
    sample_mailboxes(home, dir, &USERS, messages);
    let project = maildir_project(
        dir,
        "jobs = 2",
        "sources = \"users.txt\"\nrules = [\"same\"]",
    );
    std::fs::write(project.join("users.txt"), USERS.join("\n")).expect("users");
    project
}

#[test]
fn sigterm_pauses_every_mailbox_and_the_next_run_ends_them_whole_with_nothing_doubled() {
    let dir = tempfile::tempdir().expect("dir");
    let home = dir.path().join("home");
    let project = project(dir.path(), &home, 1500);

    let mut child = ferry(&home)
        .current_dir(&project)
        .arg("run")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ferry run");
    // Signalled once the first messages have landed.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let landed = USERS.iter().any(|u| {
            let target = dir.path().join("dst").join(u);
            target.join("cur").is_dir() && ferry_tests::maildir_files(&target).len() > 50
        });
        if landed || child.try_wait().expect("poll").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(signalled.success());
    let first = child.wait_with_output().expect("ferry ends");
    let first_out = String::from_utf8_lossy(&first.stdout).into_owned();
    assert_eq!(
        first.status.code(),
        Some(5),
        "paused: {first_out}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(first_out.contains("paused"), "{first_out}");

    let second = ferry(&home)
        .current_dir(&project)
        .arg("run")
        .output()
        .expect("ferry run");
    let second_out = String::from_utf8_lossy(&second.stdout).into_owned();
    assert_eq!(second.status.code(), Some(0), "{second_out}");

    let mut total = 0;
    for user in USERS {
        let source = maildir_tree(&dir.path().join("src").join(user));
        let target = maildir_tree(&dir.path().join("dst").join(user));
        assert_eq!(differences(&source, &target), (0, 0, 0), "{user}");
        total += source.values().map(Vec::len).sum::<usize>();
    }
    let before: usize = copied_per_mailbox(&first_out).iter().map(|(_, n)| n).sum();
    assert!(before < total, "the signal came mid-copy: {first_out}");
    let copied: usize = before
        + copied_per_mailbox(&second_out)
            .iter()
            .map(|(_, n)| n)
            .sum::<usize>();
    assert_eq!(
        copied, total,
        "copied once over both runs:\n{first_out}\n{second_out}"
    );

    let status = ferry(&home)
        .current_dir(&project)
        .arg("status")
        .output()
        .expect("status");
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.contains("4 mailboxes; project runs: 2"), "{status}");
    assert!(status.trim_end().ends_with("4 done"), "{status}");
}

#[test]
fn completions_and_the_manual_page_come_from_the_command_definitions() {
    let home = tempfile::tempdir().expect("home");
    let bash = ferry(home.path())
        .args(["completions", "bash"])
        .output()
        .expect("completions");
    assert!(bash.status.success());
    let script = String::from_utf8_lossy(&bash.stdout);
    for word in ["migrate", "run", "map", "status", "--batch"] {
        assert!(script.contains(word), "{word}");
    }
    let path = home.path().join("ferry.bash");
    std::fs::write(&path, script.as_bytes()).expect("write");
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .status()
        .expect("bash");
    assert!(checked.success(), "bash accepts the script");
    let man = ferry(home.path()).arg("man").output().expect("man");
    assert!(man.status.success());
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH ferry 1"),
        "{page}"
    );
    assert!(
        page.contains("ferry\\-run") || page.contains("run"),
        "{page}"
    );
}

fn small_project(dir: &Path, home: &Path) -> std::path::PathBuf {
    project(dir, home, 30)
}

#[test]
fn cutover_is_go_once_every_mailbox_reads_back_whole_and_no_go_names_the_one_that_is_not() {
    let dir = tempfile::tempdir().expect("dir");
    let home = dir.path().join("home");
    let project = small_project(dir.path(), &home);
    let run = |args: &[&str]| {
        let output = ferry(&home)
            .current_dir(&project)
            .args(args)
            .output()
            .expect("ferry");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, out) = run(&["run"]);
    assert_eq!(code, Some(0), "{out}");
    // A message lost on a target is found by the read-back and copied again: still GO.
    let lost = ferry_tests::maildir_files(&dir.path().join("dst/bob"))
        .into_iter()
        .next()
        .expect("a message");
    std::fs::remove_file(&lost).expect("remove");
    let (code, out) = run(&["cutover"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("GO: every mailbox of the project (4)"),
        "{out}"
    );
    assert!(out.contains("bob → bob: done — 1 copied"), "{out}");
    // A source that cannot be read: NO-GO, naming it and why.
    std::fs::rename(dir.path().join("src/dan"), dir.path().join("dan-away")).expect("rename");
    let (code, out) = run(&["cutover"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("NO-GO: 1 of 4 mailboxes"), "{out}");
    let named = out
        .lines()
        .find(|l| l.starts_with("  dan → dan: failed ("))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(named.contains("dan"), "{named}");
}

#[test]
fn run_every_keeps_the_project_in_delta_sync_until_a_signal() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().expect("dir");
    let home = dir.path().join("home");
    let project = small_project(dir.path(), &home);
    let mut child = ferry(&home)
        .current_dir(&project)
        .args(["run", "--every", "300ms"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ferry run --every");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    // A message arriving between runs is carried by the next.
    let mut arrived = false;
    while Instant::now() < deadline {
        let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        if line.starts_with("run 1:") && !arrived {
            let new = dir.path().join("src/ann/new/1700000000.late.test");
            std::fs::write(&new, "Subject: late\r\n\r\nbody\r\n").expect("deliver");
            arrived = true;
        }
        let third = line.starts_with("run 3:");
        seen.push(line);
        if third {
            break;
        }
    }
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(signalled.success());
    let status = child.wait().expect("ends");
    assert_eq!(status.code(), Some(5), "{seen:#?}");
    assert!(seen.iter().any(|l| l.starts_with("run 3:")), "{seen:#?}");
    assert!(
        seen.iter()
            .any(|l| l.starts_with("ann → ann: done — 1 copied")),
        "the late message in a later run: {seen:#?}"
    );
    let source = maildir_tree(&dir.path().join("src/ann"));
    let target = maildir_tree(&dir.path().join("dst/ann"));
    assert_eq!(differences(&source, &target), (0, 0, 0));
}
