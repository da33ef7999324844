//! Bad input is reported and skipped, never silently dropped, never a panic, and never stops
//! the rest of the migration.
//!
//! Method: a Maildir source holds a message file whose name is not UTF-8 (no Maildir writer
//! makes one, but disks hold anything) and a folder directory that cannot be listed (its cur/
//! is a file). The run copies everything else, exits 1, and the report names both problems
//! with what to do. After the operator fixes them, the next run copies the rest and exits 0.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::process::Output;

use ferry_tests::{maildir_pair, maildir_tree, report_text};

fn migrate(home: &Path, source: &Path, target: &Path) -> Output {
    maildir_pair(home, "migrate", source, target, &home.join("journal"))
        .output()
        .expect("run ferry migrate")
}

fn message(n: u32) -> Vec<u8> {
    format!("From: a@example.org\r\nSubject: {n}\r\nMessage-ID: <{n}@x>\r\n\r\nbody {n}\r\n")
        .into_bytes()
}

#[test]
fn a_bad_file_name_and_an_unlistable_folder_are_reported_and_the_rest_moves() {
    let home = tempfile::tempdir().expect("temp dir");
    let (source, target) = (home.path().join("source"), home.path().join("target"));
    for sub in [
        "cur",
        "new",
        "tmp",
        ".Good/cur",
        ".Good/new",
        ".Good/tmp",
        ".Broken/new",
    ] {
        std::fs::create_dir_all(source.join(sub)).expect("mkdir");
    }
    std::fs::write(source.join(".Broken/cur"), b"not a directory").expect("broken folder");
    std::fs::write(source.join("cur/1700000000.a.host:2,S"), message(1)).expect("write");
    std::fs::write(source.join(".Good/cur/1700000001.b.host:2,"), message(2)).expect("write");
    let bad_name = OsStr::from_bytes(b"1700000002.c\xff.host:2,S");
    std::fs::write(source.join("cur").join(bad_name), message(3)).expect("write");

    let first = migrate(home.path(), &source, &target);
    let stdout = String::from_utf8_lossy(&first.stdout);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("Copied 2 messages"), "{stdout}");
    let text = report_text(home.path(), &home.path().join("journal"));
    assert!(text.contains("not UTF-8"), "{text}");
    assert!(text.contains("rename it"), "{text}");
    assert!(text.contains("folder not listed"), "{text}");
    assert!(text.contains("total: 2 source items not on the target: 0 failed, 0 refused by the target, 2 unreadable on the source"), "{text}");

    // The operator fixes both; the next run completes.
    std::fs::rename(
        source.join("cur").join(bad_name),
        source.join("cur/1700000002.c.host:2,S"),
    )
    .expect("rename the bad file");
    std::fs::remove_file(source.join(".Broken/cur")).expect("remove");
    std::fs::create_dir_all(source.join(".Broken/cur")).expect("mkdir");
    std::fs::create_dir_all(source.join(".Broken/tmp")).expect("mkdir");
    std::fs::write(source.join(".Broken/cur/1700000003.d.host:2,"), message(4)).expect("write");
    let second = migrate(home.path(), &source, &target);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("Copied 2 messages"), "{stdout}");
    assert_eq!(maildir_tree(&source), maildir_tree(&target));
    let text = report_text(home.path(), &home.path().join("journal"));
    assert!(
        text.contains("total: 0 source items not on the target"),
        "{text}"
    );
}
