//! Incremental Maildir → Maildir runs through the real binary, checked by an independent walk.
//!
//! Goal: what users do between runs reaches the target, and nothing else does. Method: a
//! 300-message sample is migrated; then on the source a folder is renamed, messages are
//! delivered, deleted, re-flagged and duplicated; a message is put on the target by someone
//! else. A run with `--delete-removed` must leave the target equal to the source plus the
//! foreign message, having renamed the folder instead of copying it again. Then a message is
//! removed from the target behind ferry's back and one is altered: `--verify-target` puts both
//! back.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use ferry_sample::{SampleSpec, generate};
use ferry_tests::{Tree, maildir_pair, maildir_tree, report_text};

fn run(home: &Path, source: &Path, target: &Path, extra: &[&str]) -> Output {
    let output = maildir_pair(home, "migrate", source, target, &home.join("journal"))
        .args(extra)
        .output()
        .expect("run ferry migrate");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

/// The target without the foreign message must equal the source.
fn without(mut tree: Tree, folder: &str, hash: &str) -> Tree {
    if let Some(items) = tree.get_mut(folder) {
        let index = items
            .iter()
            .position(|(h, _)| h == hash)
            .expect("foreign message present");
        items.remove(index);
    }
    tree
}

#[test]
fn renames_deliveries_deletions_flags_and_verify_reach_the_target() {
    let home = tempfile::tempdir().expect("temp dir");
    let (source, target) = (home.path().join("source"), home.path().join("target"));
    generate(
        &source,
        &SampleSpec {
            messages: 300,
            seed: 11,
        },
    )
    .expect("sample");
    // A plan writes nothing: no target, no journal.
    let plan = maildir_pair(
        home.path(),
        "plan",
        &source,
        &target,
        &home.path().join("journal"),
    )
    .output()
    .expect("ferry plan");
    let text = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(0), "{text}");
    assert!(text.contains("300 messages to copy"), "{text}");
    assert!(!target.exists() && !home.path().join("journal").exists());
    run(home.path(), &source, &target, &[]);
    assert_eq!(maildir_tree(&source), maildir_tree(&target));
    let archived = files(&target.join(".Archive.2024").join("cur")).len();
    assert!(archived > 0);

    // Users at work.
    std::fs::rename(
        source.join(".Archive.2024"),
        source.join(".Archive.Old 2024"),
    )
    .expect("rename folder");
    let inbox = files(&source.join("cur"));
    std::fs::remove_file(&inbox[0]).expect("delete a message");
    let reflag = &inbox[1];
    let name = reflag
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let (base, _) = name.split_once(":2,").expect("info suffix");
    std::fs::rename(reflag, source.join("cur").join(format!("{base}:2,FRS"))).expect("re-flag");
    std::fs::copy(
        &inbox[2],
        source.join("cur").join("1900000000.copy.host:2,S"),
    )
    .expect("copy");
    std::fs::write(
        source.join("new").join("1900000001.new.host"),
        b"From: a@example.org\r\nSubject: new\r\nMessage-ID: <new@x>\r\n\r\nhello\r\n",
    )
    .expect("deliver");
    let foreign = b"From: b@example.org\r\nSubject: put there by someone else\r\n\r\nhi\r\n";
    std::fs::write(
        target.join("cur").join("1900000002.foreign.host:2,S"),
        foreign,
    )
    .expect("foreign message");
    let foreign_hash = blake3::hash(foreign).to_hex().to_string();
    // Directory stamps are change tokens only once they are 2 s old; a real rerun comes later.
    std::thread::sleep(Duration::from_millis(2_100));

    let output = run(home.path(), &source, &target, &["--delete-removed"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The renamed folder's messages were not copied again: 1 delivery + 1 duplicate copy.
    assert!(stdout.contains("Copied 2 messages"), "{stdout}");
    assert!(stdout.contains("1 deletions"), "{stdout}");
    assert!(!target.join(".Archive.2024").exists());
    assert_eq!(
        files(&target.join(".Archive.Old 2024").join("cur")).len(),
        archived
    );
    assert_eq!(
        maildir_tree(&source),
        without(maildir_tree(&target), "INBOX", &foreign_hash)
    );

    // Behind ferry's back: one message removed from the target, one altered.
    let target_inbox = files(&target.join("cur"));
    let victim = target_inbox
        .iter()
        .find(|p| !p.to_string_lossy().contains("foreign"))
        .expect("a message")
        .clone();
    std::fs::remove_file(&victim).expect("remove from target");
    let altered = target_inbox
        .iter()
        .rev()
        .find(|p| !p.to_string_lossy().contains("foreign") && **p != victim)
        .expect("another message")
        .clone();
    std::fs::write(&altered, b"Subject: mangled\r\n\r\n").expect("alter");
    std::thread::sleep(Duration::from_millis(2_100));
    let output = run(home.path(), &source, &target, &["--verify-target"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Copied 2 messages"), "{stdout}");
    // The altered file stays (ferry deletes only what it knows it wrote unchanged); every
    // source message is back with its flags.
    let mut repaired = without(maildir_tree(&target), "INBOX", &foreign_hash);
    let mangled = blake3::hash(b"Subject: mangled\r\n\r\n")
        .to_hex()
        .to_string();
    repaired = without(repaired, "INBOX", &mangled);
    assert_eq!(maildir_tree(&source), repaired);

    let text = report_text(home.path(), &home.path().join("journal"));
    assert!(
        text.contains("renamed in run 2: Archive/2024 → Archive/Old 2024"),
        "{text}"
    );
}
