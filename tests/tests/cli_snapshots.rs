//! Snapshots of what the `ferry` binary prints, reviewed like code: the summary of `migrate`,
//! then `plan`, `status`, `report` (text and JSON) and `audit` over the journal it recorded.
//!
//! Goal: the operator's text cannot drift unnoticed (checks that a phrase is `contains`ed let a
//! line around it change freely). Method: a seeded 40-message sample Maildir is migrated to a
//! Maildir; then on the source one INBOX message is deleted, another re-flagged and a new one
//! delivered, so that `plan --delete-removed` has a copy, a flag update and a deletion to show.
//! What changes from run to run is redacted by insta filters: times, the scratch directory, the
//! unique names ferry gives the files it delivers (clock, process id, host name), content
//! hashes (keyed by each journal's own random key) and operation numbers (which follow the
//! plan's order, and so those hashes). For the same reason the audit lines are sorted by what
//! they say after `op N:` before the snapshot is taken.

use std::path::{Path, PathBuf};

use ferry_tests::scratch::{deliver, run_ok, sample, scratch};
use ferry_tests::{ferry, maildir_pair};

/// INBOX's message files (`cur/` and `new/`), sorted, without the sample's two byte-identical
/// copies (indices 1 and 2).
fn inbox_messages(source: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        for entry in std::fs::read_dir(source.join(sub)).expect("read INBOX") {
            let path = entry.expect("directory entry").path();
            let name = path
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            if !name.contains("I1.sample") && !name.contains("I2.sample") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Toggles `\Flagged` on the message file `file` of the Maildir folder `folder`: it moves to
/// `cur/` with the letter `F` added to its info, or taken out of it.
fn toggle_flagged(folder: &Path, file: &Path) {
    let name = file
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let (unique, letters) = name.split_once(":2,").unwrap_or((name.as_str(), ""));
    let mut letters: Vec<char> = if letters.contains('F') {
        letters.chars().filter(|&c| c != 'F').collect()
    } else {
        letters.chars().chain(['F']).collect()
    };
    letters.sort_unstable();
    let letters: String = letters.into_iter().collect();
    std::fs::rename(
        file,
        folder.join("cur").join(format!("{unique}:2,{letters}")),
    )
    .expect("re-flag a message");
}

/// `text` with the scratch directory `work`, however spelled, written `[work]`.
fn scrub(text: &str, work: &Path) -> String {
    let canonical = std::fs::canonicalize(work).unwrap_or_else(|_| work.to_path_buf());
    let mut text = text.to_owned();
    // The canonical spelling first: the other may be a part of it (/tmp in /private/tmp).
    for spelling in [canonical, work.to_path_buf()] {
        text = text.replace(&spelling.display().to_string(), "[work]");
    }
    text
}

/// The standard output of a command that must succeed, scrubbed of the scratch directory.
fn stdout_of(command: &mut std::process::Command, work: &Path) -> String {
    let output = run_ok(command);
    scrub(
        &String::from_utf8(output.stdout).expect("ferry prints UTF-8"),
        work,
    )
}

/// What an audit line says after `TIME run N op N: `.
fn what(line: &str) -> &str {
    line.split_once(": ").map_or(line, |(_, rest)| rest)
}

#[test]
fn what_ferry_prints_after_a_recorded_migration() {
    let s = scratch();
    let source = s.work.join("source");
    let target = s.work.join("target");
    let journal = s.work.join("journal");
    sample(&source, 40, 13);

    let migrated = stdout_of(
        &mut maildir_pair(&s.config, "migrate", &source, &target, &journal),
        &s.work,
    );

    // The user at work: one message deleted, one re-flagged, one delivered.
    let inbox = inbox_messages(&source);
    assert!(inbox.len() >= 2, "INBOX holds too few messages: {inbox:?}");
    std::fs::remove_file(&inbox[0]).expect("delete a message");
    toggle_flagged(&source, &inbox[1]);
    deliver(&source, 1);

    let plan = stdout_of(
        maildir_pair(&s.config, "plan", &source, &target, &journal).arg("--delete-removed"),
        &s.work,
    );
    let on_journal = |args: &[&str]| {
        stdout_of(
            ferry(&s.config).args(args).arg("--journal").arg(&journal),
            &s.work,
        )
    };
    let status = on_journal(&["status"]);
    let report = on_journal(&["report"]);
    let report_json = on_journal(&["report", "--format", "json"]);
    let audit = on_journal(&["audit"]);
    let mut lines: Vec<&str> = audit.lines().collect();
    lines.sort_by(|a, b| what(a).cmp(what(b)));
    let audit = lines.join("\n") + "\n";

    let filters = vec![
        // RFC 3339 times to the second, UTC.
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "[time]"),
        // The unique names of the files ferry delivers: seconds, microseconds, process id,
        // counter, host name (`:` is escaped in it).
        (r"\d+\.M\d+P\d+Q\d+\.[^\s:]+", "[delivered]"),
        // Content hashes, keyed by the journal's own random key.
        (r"content [0-9a-f]{16}", "content [hash]"),
        // Operation numbers, in plan order (which follows those hashes).
        (r"\bop \d+:", "op [op]:"),
        // The scratch directory, should `scrub` have missed a spelling of it.
        (r"(?:/[^\s/]+)+/(source|target|journal)\b", "[work]/$1"),
    ];
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
        prepend_module_to_snapshot => false,
        filters => filters,
    }, {
        insta::assert_snapshot!("cli_migrate", migrated);
        insta::assert_snapshot!("cli_plan", plan);
        insta::assert_snapshot!("cli_status", status);
        insta::assert_snapshot!("cli_report", report);
        insta::assert_snapshot!("cli_report_json", report_json);
        insta::assert_snapshot!("cli_audit", audit);
    });
}
