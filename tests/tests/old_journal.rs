//! Journals written before the vocabulary grew replay unchanged.
//!
//! Goal: the event vocabulary is a serialized promise (new variants go at the end, old ones
//! never change), so a journal written by an older ferry must decode to the same events and
//! fold to the same projections in every later version. Method: `tests/fixtures/journal-v1`
//! is a real journal on disk, written once (by this test, with `FERRY_WRITE_FIXTURE=1`, before
//! issue 14 appended keyed items, collections and conflicts) holding every variant of every
//! enum an event carries: each `Event`, each `Action` in a write intent, each failure class,
//! check state and run outcome. The test opens a copy read-only, compares the decoded events
//! with the list built here, and compares the state and report folded from them with the
//! snapshot taken when the fixture was written.

use std::path::{Path, PathBuf};

use ferry_engine::event::{
    Action, CheckState, FailureClass, NativeId, RunOptions, RunOutcome, Side, SpecialUse,
};
use ferry_engine::journal::{ContentHash, Journal, KeyFileSecret, KeySource};
use ferry_engine::projection::report::Report;
use ferry_engine::{Event, Flags, State, SystemFlag};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/journal-v1")
}

fn key() -> KeySource {
    KeySource::KeyFile(KeyFileSecret::from_bytes(&[0x5a; 32]).expect("a 32-byte secret"))
}

fn id(text: &str) -> NativeId {
    NativeId(text.to_owned())
}

/// Every variant of every enum the vocabulary of version 1 holds, in an order that makes a
/// history: two runs, writes done, failed and in doubt, checks, throttling.
fn every_old_variant() -> Vec<Event> {
    let hash = |byte: u8| ContentHash([byte; 32]);
    let flags = Flags::new()
        .with(SystemFlag::Seen)
        .with_keyword("$Forwarded");
    let append = |source: &str, content: u8, probe: &str| Action::Append {
        source_folder: "INBOX".into(),
        source_id: id(source),
        folder: "INBOX".into(),
        content: hash(content),
        size: 120,
        flags: flags.clone(),
        date: Some(1_767_225_600_000),
        probe: probe.into(),
    };
    let options = RunOptions {
        verify_target: true,
        full: false,
        delete_removed: true,
        dry_run: false,
    };
    vec![
        Event::RunStarted {
            run: 1,
            at: 1_767_225_600_000,
            source: "memory:source".into(),
            target: "memory:target".into(),
            options,
        },
        Event::FolderSeen {
            side: Side::Source,
            folder: "INBOX".into(),
            special_use: Some(SpecialUse::Inbox),
            validity: Some(7),
        },
        Event::FolderSeen {
            side: Side::Source,
            folder: "Gesendet".into(),
            special_use: Some(SpecialUse::Sent),
            validity: Some(8),
        },
        Event::FolderRoles {
            side: Side::Source,
            roles: vec![
                (SpecialUse::Sent, "Gesendet".into()),
                (SpecialUse::Drafts, "Entwürfe".into()),
                (SpecialUse::Trash, "Papierkorb".into()),
                (SpecialUse::Junk, "Spam".into()),
                (SpecialUse::Archive, "Archiv".into()),
            ],
        },
        Event::Batch(vec![
            Event::ItemSeen {
                side: Side::Source,
                folder: "INBOX".into(),
                id: id("7:1"),
                content: hash(1),
                size: 120,
                flags: flags.clone(),
                date: Some(1_767_225_600_000),
            },
            Event::ItemSeen {
                side: Side::Source,
                folder: "INBOX".into(),
                id: id("7:2"),
                content: hash(2),
                size: 130,
                flags: Flags::new(),
                date: None,
            },
            Event::ItemSeen {
                side: Side::Source,
                folder: "INBOX".into(),
                id: id("7:3"),
                content: hash(3),
                size: 140,
                flags: Flags::new(),
                date: None,
            },
        ]),
        Event::ItemUnreadable {
            side: Side::Source,
            folder: "Gesendet".into(),
            id: id("8:1"),
            reason: "BAD message (simulated)".into(),
        },
        Event::FolderListed {
            side: Side::Source,
            folder: "INBOX".into(),
            token: Some("7:4:abc".into()),
        },
        Event::FolderUnreadable {
            side: Side::Source,
            folder: "Spam".into(),
            reason: "NO [SERVERBUG] (simulated)".into(),
        },
        Event::FolderSeen {
            side: Side::Target,
            folder: "INBOX".into(),
            special_use: None,
            validity: Some(3),
        },
        Event::ItemSeen {
            side: Side::Target,
            folder: "INBOX".into(),
            id: id("3:9"),
            content: hash(9),
            size: 99,
            flags: Flags::new(),
            date: None,
        },
        Event::WriteIntent {
            op: 1,
            action: Action::CreateFolder {
                folder: "Gesendet".into(),
            },
        },
        Event::WriteDone {
            op: 1,
            id: None,
            at: 1_767_225_601_000,
        },
        Event::WriteIntent {
            op: 2,
            action: append("7:1", 1, "3:10"),
        },
        Event::WriteIntent {
            op: 3,
            action: append("7:2", 2, "3:10"),
        },
        Event::WriteIntent {
            op: 4,
            action: append("7:3", 3, "3:10"),
        },
        Event::Throttled {
            side: Side::Target,
            wait_ms: 1_500,
        },
        Event::WriteDone {
            op: 2,
            id: Some(id("3:10")),
            at: 1_767_225_602_000,
        },
        Event::WriteFailed {
            op: 3,
            class: FailureClass::Permanent,
            reason: "too large (simulated)".into(),
        },
        Event::WriteFailed {
            op: 4,
            class: FailureClass::Transient,
            reason: "connection reset (simulated)".into(),
        },
        Event::StoreNotice {
            side: Side::Target,
            text: "keyword Projekt-α not kept".into(),
        },
        Event::Paced {
            side: Side::Target,
            limit: "requests per window".into(),
            wait_ms: 250,
        },
        Event::RunEnded {
            run: 1,
            at: 1_767_225_603_000,
            outcome: RunOutcome::CompletedWithFailures,
        },
        Event::RunStarted {
            run: 2,
            at: 1_767_225_700_000,
            source: "memory:source".into(),
            target: "memory:target".into(),
            options: RunOptions::default(),
        },
        Event::FlagsSeen {
            side: Side::Source,
            folder: "INBOX".into(),
            id: id("7:1"),
            flags: Flags::new(),
        },
        Event::ItemGone {
            side: Side::Source,
            folder: "INBOX".into(),
            id: id("7:2"),
        },
        Event::FolderGone {
            side: Side::Source,
            folder: "Gesendet".into(),
        },
        Event::TargetChecked {
            folder: "INBOX".into(),
            id: id("3:10"),
            state: CheckState::Intact,
        },
        Event::TargetChecked {
            folder: "INBOX".into(),
            id: id("3:9"),
            state: CheckState::Altered,
        },
        Event::TargetChecked {
            folder: "INBOX".into(),
            id: id("3:8"),
            state: CheckState::Missing,
        },
        Event::WriteIntent {
            op: 5,
            action: Action::SetFlags {
                folder: "INBOX".into(),
                id: id("3:10"),
                flags: Flags::new(),
            },
        },
        Event::WriteIntent {
            op: 6,
            action: Action::RenameFolder {
                from: "Gesendet".into(),
                to: "Sent".into(),
            },
        },
        Event::WriteIntent {
            op: 7,
            action: Action::Move {
                source_folder: "Sent".into(),
                source_id: id("8:2"),
                from: "INBOX".into(),
                id: id("3:10"),
                folder: "Sent".into(),
                content: hash(1),
                size: 120,
                probe: "5:1".into(),
            },
        },
        Event::WriteIntent {
            op: 8,
            action: Action::Delete {
                folder: "INBOX".into(),
                id: id("3:11"),
                content: hash(4),
            },
        },
        Event::WriteIntent {
            op: 9,
            action: Action::DeleteFolder {
                folder: "Old".into(),
            },
        },
        Event::WriteDone {
            op: 5,
            id: None,
            at: 1_767_225_701_000,
        },
        Event::WriteFailed {
            op: 6,
            class: FailureClass::NotApplied,
            reason: "in doubt and not on the target".into(),
        },
        Event::RunStopped {
            run: 2,
            at: 1_767_225_702_000,
            outcome: RunOutcome::Aborted,
            reason: "the target is unreachable (simulated)".into(),
        },
        Event::RunEnded {
            run: 2,
            at: 1_767_225_702_500,
            outcome: RunOutcome::Paused,
        },
        Event::RunEnded {
            run: 2,
            at: 1_767_225_703_000,
            outcome: RunOutcome::Completed,
        },
        Event::RunEnded {
            run: 2,
            at: 1_767_225_704_000,
            outcome: RunOutcome::DeletionsHeld,
        },
    ]
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy's directory");
    for entry in std::fs::read_dir(from).expect("read the fixture") {
        let entry = entry.expect("a fixture entry");
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).expect("copy a fixture file");
        }
    }
}

fn write_fixture() {
    let dir = fixture();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove the old fixture");
    }
    let journal: Journal<Event> =
        Journal::create(&dir, &key(), Default::default()).expect("create the fixture journal");
    for event in every_old_variant() {
        journal.append(&event).expect("append to the fixture");
    }
    journal.flush_to_tables().expect("flush the fixture");
}

#[test]
fn a_journal_of_every_old_variant_replays_unchanged() {
    if std::env::var_os("FERRY_WRITE_FIXTURE").is_some() {
        write_fixture();
    }
    let copy = tempfile::tempdir().expect("a temporary directory");
    let at = copy.path().join("journal");
    copy_dir(&fixture(), &at);
    let journal: Journal<Event> =
        Journal::open_read_only(&at, &key()).expect("the fixture journal opens");
    let events: Vec<Event> = journal
        .replay(1)
        .map(|entry| entry.expect("every fixture record decodes").event)
        .collect();
    assert_eq!(events, every_old_variant());
    let state = State::replay(&events);
    let report: Report = ferry_engine::projection::fold(&events);
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!("old_journal_state", render_state(&state));
        insta::assert_snapshot!("old_journal_report", render_report(&report));
    });
}

/// What version 1's projections knew, field by field: fields added later are not shown, so
/// the snapshot holds as long as the meaning of the old events does.
fn render_state(state: &State) -> String {
    let mut out = String::new();
    for (path, folder) in &state.source.folders {
        out += &format!(
            "source {path}: use {:?} validity {:?} token {:?} listed {}\n",
            folder.special_use, folder.validity, folder.token, folder.listed
        );
        for (id, item) in &folder.items {
            out += &format!(
                "  {id}: {} {} bytes, {}, date {:?}\n",
                item.content, item.size, item.flags, item.date
            );
        }
        for (id, reason) in &folder.unreadable {
            out += &format!("  {id}: unreadable: {reason}\n");
        }
    }
    out += &format!(
        "source vanished {:?}\n",
        state.source.vanished.keys().collect::<Vec<_>>()
    );
    out += &format!(
        "source validity changes {:?}\n",
        state.source.validity_changes
    );
    let target = &state.target;
    for (path, folder) in &target.folders {
        out += &format!(
            "target {path}: created {} observed {} validity {:?} token {:?}\n",
            folder.created_by_ferry, folder.observed, folder.validity, folder.token
        );
        for (id, item) in &folder.items {
            out += &format!(
                "  {id}: {} {}, {:?}, from {}, altered {}\n",
                item.content,
                item.flags,
                item.origin,
                if item.came_from("INBOX", &id_of(&item.origin)) {
                    "INBOX/7:1"
                } else if item.source.is_some() {
                    "another source item"
                } else {
                    "no source item"
                },
                item.altered
            );
        }
    }
    for (op, action) in &target.pending {
        out += &format!("pending {op}: {action:?}\n");
    }
    out += &format!("next op {} run {}\n", target.next_op, target.run);
    for ((folder, content), reason) in &target.refused {
        out += &format!("refused {folder} {content}: {reason}\n");
    }
    out += &format!("roles {:?}\n", target.roles);
    out
}

/// The source item the fixture's copy with `origin` came from.
fn id_of(origin: &ferry_engine::projection::target::Origin) -> NativeId {
    match origin {
        ferry_engine::projection::target::Origin::Copied { op: 2, .. } => id("7:1"),
        _ => id("none"),
    }
}

fn render_report(report: &Report) -> String {
    let mut out = String::new();
    for run in &report.runs {
        out += &format!(
            "run {}: {}..{:?} {:?} ({:?}) resumed by {:?}; {} -> {}; {:?}\n  copied {} ({} bytes) flags {} deleted {} moved {} folders +{} ~{} -{} failed {} throttled {} ms paced {} ms\n",
            run.run,
            run.started,
            run.ended,
            run.outcome,
            run.reason,
            run.resumed_by,
            run.source,
            run.target,
            run.options,
            run.copied,
            run.copied_bytes,
            run.flags_updated,
            run.deleted,
            run.moved,
            run.folders_created,
            run.folders_renamed,
            run.folders_deleted,
            run.failed,
            run.throttled_ms,
            run.paced_ms
        );
    }
    for (path, folder) in &report.folders {
        out += &format!(
            "folder {path}: copied {} flags {} deleted {} moved in {} failed {:?} refused {:?} unreadable {:?}\n",
            folder.copied,
            folder.flags_updated,
            folder.deleted,
            folder.moved_in,
            folder.failed,
            folder.refused,
            folder.unreadable
        );
    }
    out += &format!("renames {:?}\n", report.renames);
    out += &format!("validity changes {:?}\n", report.validity_changes);
    out += &format!("notices {:?}\n", report.notices);
    out
}
