//! Folder rules through the binary, between two real Dovecot servers: a folder left out (with
//! the folders below it), a folder renamed, two folders merged into a third. The result is
//! read from both servers with an independent IMAP client; the merged folder's deltas (a new
//! message, a deletion under `--delete-removed`) go through Dovecot's own change tokens.

use ferry_tests::dovecot::{Dovecot, count};
use ferry_tests::imap::{copied, migrate, ok};
use ferry_tests::{Tree, ferry};

const RULES: [&str; 8] = [
    "--exclude-folder",
    "Trash",
    "--rename-folder",
    "Newsletters=Reading/Newsletters",
    "--rename-folder",
    "Archive/2024=Archive",
    "--rename-folder",
    "Archive/2025=Archive",
];

/// The source's tree as the rules above carry it.
fn ruled(source: &Tree) -> Tree {
    let mut out = Tree::new();
    for (folder, items) in source {
        let to = match folder.as_str() {
            "Trash" => continue,
            "Newsletters" => "Reading/Newsletters",
            "Archive/2024" | "Archive/2025" => "Archive",
            other => other,
        };
        out.entry(to.to_owned()).or_default().extend(items.clone());
    }
    for items in out.values_mut() {
        items.sort();
    }
    out.retain(|_, items| !items.is_empty());
    out
}

fn non_empty(mut tree: Tree) -> Tree {
    tree.retain(|_, items| !items.is_empty());
    tree
}

#[test]
fn folders_are_left_out_renamed_and_merged_and_their_deltas_follow() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = Dovecot::start(&dir.path().join("source-server"), &[]);
    let target = Dovecot::start(&dir.path().join("target-server"), &[]);
    let sample = dir.path().join("sample");
    let made = ferry(dir.path())
        .args(["generate-sample", "--messages", "60", "--out"])
        .arg(&sample)
        .output()
        .expect("generate-sample");
    assert!(made.status.success(), "{made:?}");
    ok(&migrate(
        dir.path(),
        &format!("maildir:{}", sample.display()),
        &source.uri(),
        &dir.path().join("seed-journal"),
        &[],
    ));
    let journal = dir.path().join("journal");
    let run = |extra: &[&str]| {
        let mut args = RULES.to_vec();
        args.extend_from_slice(extra);
        ok(&migrate(
            dir.path(),
            &source.uri(),
            &target.uri(),
            &journal,
            &args,
        ))
    };

    let before = source.client().tree();
    for folder in ["Trash", "Newsletters", "Archive/2024", "Archive/2025"] {
        assert!(
            before.get(folder).is_some_and(|items| !items.is_empty()),
            "the sample has messages in {folder}: {:?}",
            before.keys()
        );
    }
    let first = run(&[]);
    let after = non_empty(target.client().tree());
    assert_eq!(after, ruled(&before), "the target is the source as ruled");
    assert!(!after.contains_key("Trash") && !after.contains_key("Newsletters"));
    assert_eq!(copied(&first), count(&ruled(&before)));
    assert_eq!(copied(&run(&[])), 0, "a rerun copies nothing");

    // New mail in a merged folder and in a folder left out: only the first is carried.
    let mut client = source.client();
    client.append(
        "Archive/2024",
        "\\Seen",
        b"Subject: late archive\r\nMessage-ID: <late@x>\r\n\r\nlate\r\n",
    );
    client.append("Trash", "", b"Subject: junk\r\n\r\njunk\r\n");
    assert_eq!(copied(&run(&[])), 1);
    assert_eq!(non_empty(target.client().tree()), ruled(&client.tree()));

    // A message deleted from a merged folder is deleted from its target folder under
    // --delete-removed, and nothing else is.
    client.ok("SELECT \"Archive/2025\"");
    client.ok("STORE 1 +FLAGS (\\Deleted)");
    client.ok("EXPUNGE");
    let deleted = run(&["--delete-removed"]);
    assert!(deleted.contains(" 1 deletions"), "{deleted}");
    let source_now = client.tree();
    assert_eq!(non_empty(target.client().tree()), ruled(&source_now));
    assert_eq!(copied(&run(&["--delete-removed"])), 0);
}

#[test]
fn a_wrong_folder_rule_is_a_usage_error_before_anything_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = ferry(dir.path())
        .args(["migrate", "--from", "maildir:/nonexistent/a", "--to"])
        .arg(format!("maildir:{}", dir.path().join("b").display()))
        .args(["--rename-folder", "A=B", "--rename-folder", "A=C"])
        .output()
        .expect("ferry");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("renamed twice"), "{stderr}");
    let output = ferry(dir.path())
        .args(["migrate", "--from", "maildir:/x", "--to", "maildir:/y"])
        .args(["--rename-folder", "no-equals-sign"])
        .output()
        .expect("ferry");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("FROM=TO"));
}

/// A Maildir++ folder whose name on disk is raw UTF-8 (written by another tool): Dovecot lists
/// it (`\Noselect \HasNoChildren`, in modified UTF-7) and answers its STATUS with "Mailbox
/// doesn't exist" echoing the raw name. The mailbox still moves, that folder is reported as
/// unreadable (exit 1, asked again next run), and once left out by a rule the run is whole.
#[test]
fn a_folder_dovecot_lists_but_cannot_open_is_reported_and_can_be_left_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = Dovecot::start(&dir.path().join("source-server"), &[]);
    let target = dir.path().join("target");
    let mut client = source.client();
    client.append(
        "INBOX",
        "",
        b"Subject: one\r\nMessage-ID: <one@x>\r\n\r\none\r\n",
    );
    let raw = source.dir().join("mail/ferry/.Работа");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(raw.join(sub)).expect("a raw folder");
    }
    std::fs::write(
        raw.join("cur/1700000000.M1P1.host:2,S"),
        b"Subject: raw\r\n\r\nraw\r\n",
    )
    .expect("a message in it");
    let _ = std::process::Command::new("chown")
        .args(["-R", "dovecot:dovecot"])
        .arg(&raw)
        .status();
    let journal = dir.path().join("journal");
    let to = format!("maildir:{}", target.display());
    let first = migrate(dir.path(), &source.uri(), &to, &journal, &[]);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(1), "{stdout}");
    assert_eq!(copied(&stdout), 1, "INBOX moved all the same");
    let report = ferry_tests::report_text(dir.path(), &journal);
    assert!(
        report.contains("unreadable on the source 1") && report.contains("Mailbox doesn't exist"),
        "{report}"
    );
    let left_out = migrate(
        dir.path(),
        &source.uri(),
        &to,
        &journal,
        &["--exclude-folder", ".Работа"],
    );
    let stdout = String::from_utf8_lossy(&left_out.stdout);
    assert_eq!(left_out.status.code(), Some(0), "{stdout}");
}
