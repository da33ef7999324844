//! Pausing with SIGINT, resuming, and reading the journal back through `status`, `report`
//! (text, JSON, HTML) and `audit`, all through the real binary.
//!
//! Goal: a paused run exits with code 5 after journaling what was in flight, the same command
//! resumes and completes, and the read-only commands tell the story from the journal alone.
//! Method: a 3,000-message sample is migrated; SIGINT arrives while messages are being copied
//! (the run is slowed by one write in flight at a time); then the run is repeated and the
//! journal is read back.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_sample::{SampleSpec, generate};
use ferry_tests::{ferry, maildir_pair};

#[test]
fn sigint_pauses_the_run_resume_completes_and_the_journal_tells_the_story() {
    let home = tempfile::tempdir().expect("temp dir");
    let source = home.path().join("source");
    let target = home.path().join("target");
    let journal = home.path().join("journal");
    generate(
        &source,
        &SampleSpec {
            messages: 3_000,
            seed: 5,
        },
    )
    .expect("sample");
    let migrate = |jobs: &str| {
        let mut command = maildir_pair(home.path(), "migrate", &source, &target, &journal);
        command.args(["--jobs", jobs]);
        command
    };

    // Start, wait until the first messages have landed, then SIGINT.
    let mut child = migrate("1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferry migrate");
    let started = Instant::now();
    let cur = target.join("cur");
    while std::fs::read_dir(&cur).map(|d| d.count()).unwrap_or(0) < 50 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no message copied within 60 s"
        );
        assert!(
            child.try_wait().expect("poll").is_none(),
            "the run ended before it could be paused"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("send SIGINT");
    assert!(status.success());
    let output = child.wait_with_output().expect("wait for the paused run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");

    // The status says the run paused; resuming completes it.
    let status = ferry(home.path())
        .args(["status", "--journal"])
        .arg(&journal)
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{status:?}");
    assert!(text.contains("paused on request"), "{text}");
    assert!(text.contains("0 writes in doubt"), "{text}");

    let resumed = migrate("4").output().expect("resume");
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert_eq!(resumed.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(": completed."), "{stdout}");
    let again = migrate("4").output().expect("no-op run");
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("Copied 0 messages"), "{stdout}");
    assert!(
        stdout.contains("3000 source messages were already on the target before this run"),
        "{stdout}"
    );

    // The report in JSON: three runs, 3,000 messages copied in all, nothing failed.
    let report = ferry(home.path())
        .args(["report", "--format", "json", "--journal"])
        .arg(&journal)
        .output()
        .expect("report");
    assert!(report.status.success());
    let json: serde_json::Value = serde_json::from_slice(&report.stdout).expect("report is JSON");
    let runs = json["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3);
    assert_eq!(
        runs[0]["outcome"],
        "paused on request (run the same command to resume)"
    );
    let copied: u64 = runs.iter().map(|r| r["copied"].as_u64().unwrap_or(0)).sum();
    assert_eq!(copied, 3_000);
    assert_eq!(json["failed_items"], 0);
    let folders = json["folders"].as_array().expect("folders");
    assert!(folders.iter().any(|f| f["folder"] == "Projects/Ærø"));

    let html = ferry(home.path())
        .args(["report", "--format", "html", "--journal"])
        .arg(&journal)
        .output()
        .expect("html report");
    let html = String::from_utf8_lossy(&html.stdout);
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains("Projects/Ærø"));

    // The audit trail, filtered to one folder: one line per message copied into it.
    let audit = ferry(home.path())
        .args(["audit", "--folder", "Projects/Ærø", "--journal"])
        .arg(&journal)
        .output()
        .expect("audit");
    let lines = String::from_utf8_lossy(&audit.stdout);
    let copies = lines.lines().filter(|l| l.contains(": copy ")).count();
    let in_folder = folders
        .iter()
        .find(|f| f["folder"] == "Projects/Ærø")
        .and_then(|f| f["copied"].as_u64())
        .expect("folder count");
    assert_eq!(copies as u64, in_folder, "{lines}");
    assert!(lines.lines().all(|l| l.contains("Projects/Ærø")), "{lines}");
    let future = ferry(home.path())
        .args(["audit", "--since", "2999-01-01T00:00:00Z", "--journal"])
        .arg(&journal)
        .output()
        .expect("audit since");
    assert!(future.stdout.is_empty());
}
