//! What ferry says: every source entry is migrated or reported with its reason, nothing is read
//! from outside the source, and the run summary and the report cannot be misread.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Output;

use ferry_tests::scratch::sample;
use ferry_tests::{ferry, maildir_pair, maildir_tree, report_text};

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn tree_bytes(root: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(std::fs::read(entry.path()).expect("read"));
            }
        }
    }
    out
}

// Goal (issue 12, points 7 and 10): Maildir entries ferry cannot take are reported, not ignored,
// and a symbolic link is never followed out of the source (with ferry run as root over users'
// writable Maildirs, a link to /etc/shadow was copied into the target). Method: a sample
// mailbox plus a folder directory named `..evil` holding a message, a message file that is a
// link to a file outside the tree (holding a marker), a directory where a message file should
// be; the run must exit 1, the report must name each with its reason, and the marker must be
// nowhere on the target.
#[test]
fn entries_ferry_cannot_take_are_reported_and_links_are_not_followed() {
    let home = tempfile::tempdir().expect("temp dir");
    let source = home.path().join("source");
    let target = home.path().join("target");
    let journal = home.path().join("journal");
    sample(&source, 30, 3);
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(source.join("..evil").join(sub)).expect("mkdir");
    }
    std::fs::write(
        source.join("..evil/cur/1700000100.e.host:2,"),
        b"From: e@example.com\r\nSubject: evil\r\n\r\nin a folder with no name\r\n",
    )
    .expect("write");
    let secret = home.path().join("outside-secret");
    std::fs::write(&secret, b"From: root\r\n\r\nSECRET-MARKER-4711\r\n").expect("secret");
    symlink(&secret, source.join("cur/1700000101.l.host:2,S")).expect("link");
    std::fs::create_dir(source.join("cur/1700000102.d.host:2,")).expect("a directory");

    let output = maildir_pair(home.path(), "migrate", &source, &target, &journal)
        .output()
        .expect("migrate");
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        !tree_bytes(&target)
            .iter()
            .any(|bytes| bytes.windows(18).any(|w| w == b"SECRET-MARKER-4711")),
        "a file outside the source reached the target"
    );
    let report = report_text(home.path(), &journal);
    assert!(report.contains("..evil"), "{report}");
    assert!(report.contains("symbolic link"), "{report}");
    assert!(report.contains("directory"), "{report}");
    assert!(report.contains("3 unreadable on the source"), "{report}");
    // The sample's own messages all arrived.
    let landed: usize = maildir_tree(&target).values().map(Vec::len).sum();
    assert_eq!(landed, 30, "the sample's 30 messages landed, nothing else");
}

// Goal (issue 12, points 16 and 17): the first run's summary said "copied 400 messages, 400
// already in place", which reads as if 400 were skipped; a run that ended on an error showed as
// "interrupted (the next run resumes it)" with no reason, even after later runs completed.
// Method: the summaries of a first and a second run, and the status after them. (How a run
// that stopped on an error and one killed outright appear in the report is checked by
// promises.rs, a full disk, and by the projection snapshot, run 1 crashed and resumed by run 2.)
#[test]
fn summaries_and_the_report_say_what_happened() {
    let home = tempfile::tempdir().expect("temp dir");
    let source = home.path().join("source");
    let target = home.path().join("target");
    let journal = home.path().join("journal");
    sample(&source, 40, 4);
    let migrate = || maildir_pair(home.path(), "migrate", &source, &target, &journal);
    let first = text(&migrate().output().expect("first run"));
    assert!(first.contains("Copied 40 messages"), "{first}");
    assert!(
        first.contains(". 0 source messages were already on the target before this run"),
        "{first}"
    );
    let second = text(&migrate().output().expect("second run"));
    assert!(second.contains("Copied 0 messages"), "{second}");
    assert!(
        second.contains(". 40 source messages were already on the target before this run"),
        "{second}"
    );
    let status = ferry(home.path())
        .args(["status", "--journal"])
        .arg(&journal)
        .output()
        .expect("status");
    let status = text(&status);
    assert!(status.contains("completed"), "{status}");
    assert!(!status.contains("skipped"), "{status}");
}
