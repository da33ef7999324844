//! Snapshot tests of the plan for items that change in place: each scenario is a journal (a
//! calendar on each side, events seen, writes done, edits seen afterwards), and its plan is
//! rendered line by line and compared with a snapshot under `snapshots/`.

use super::fixtures::{hash, id};
use super::*;
use crate::event::{Event, FolderKind, FolderSpec, Kind, OpId, Side};
use crate::projection::fold;

const CALENDAR: &str = "Calendars/Work";

fn calendar(side: Side, path: &str) -> Vec<Event> {
    let mut events = vec![Event::FolderSeen {
        side,
        folder: path.into(),
        special_use: None,
        validity: None,
    }];
    if side == Side::Source {
        events.push(Event::CollectionSeen {
            side,
            folder: path.into(),
            spec: FolderSpec {
                display_name: Some("Work".into()),
                color: Some("#3366ff".into()),
                ..FolderSpec::of(FolderKind::Calendar)
            },
        });
        events.push(Event::FolderListed {
            side,
            folder: path.into(),
            token: None,
        });
    }
    events
}

/// Event `key` seen on `side` under `at` with content `n` at `version`.
fn event(side: Side, folder: &str, at: &str, key: &str, n: u8, version: &str) -> Vec<Event> {
    vec![
        Event::ItemSeen {
            side,
            folder: folder.into(),
            id: id(at),
            content: hash(n),
            size: 300,
            flags: Flags::new(),
            date: None,
        },
        Event::ItemKeyed {
            side,
            folder: folder.into(),
            id: id(at),
            key: key.into(),
            version: Some(version.into()),
            kind: Kind::Event,
        },
    ]
}

/// ferry created source item `source` of `folder` on the target as `at`, at `version`.
fn created(op: OpId, folder: &str, source: &str, key: &str, n: u8, at: &str) -> Vec<Event> {
    vec![
        Event::WriteIntent {
            op,
            action: Action::Create {
                source_folder: folder.into(),
                source_id: id(source),
                folder: folder.into(),
                key: key.into(),
                kind: Kind::Event,
                content: hash(n),
                size: 300,
            },
        },
        Event::WriteStored {
            op,
            id: id(at),
            version: Some(format!("t{op}")),
            at: 0,
        },
    ]
}

/// What the planner makes of `events`, line by line.
fn plan_of(events: &[Vec<Event>], delete_removed: bool) -> String {
    let events = events.concat();
    let source: SourceState = fold(&events);
    let target: TargetState = fold(&events);
    let options = RunOptions {
        delete_removed,
        ..RunOptions::default()
    };
    let plan = delta(&source, &target, &options);
    let mut lines = Vec::new();
    for folder in &plan.create_folders {
        lines.push(format!("create mail folder {folder}"));
    }
    for (folder, spec) in &plan.collections {
        lines.push(format!(
            "create {} {folder} ({:?}, {:?})",
            spec.kind.name(),
            spec.display_name,
            spec.color
        ));
    }
    for c in &plan.copies {
        lines.push(format!("copy {}/{}", c.source_folder, c.source_id));
    }
    for put in &plan.puts {
        lines.push(match &put.target {
            None => format!(
                "create {:?} {} in {} from {}/{}",
                put.kind, put.key, put.folder, put.source_folder, put.source_id
            ),
            Some((target_id, expect)) => format!(
                "update {}/{target_id} ({}) if at version {expect:?}, from {}/{}",
                put.folder, put.key, put.source_folder, put.source_id
            ),
        });
    }
    for d in &plan.deletions {
        lines.push(format!("delete {}/{}", d.folder, d.id));
    }
    for d in &plan.keyed_deletions {
        lines.push(format!(
            "delete {}/{} ({}) if at version {:?}",
            d.folder, d.id, d.key, d.expect
        ));
    }
    for c in &plan.conflicts {
        lines.push(format!(
            "conflict {}/{} (source {}/{:?}): {}",
            c.folder, c.id, c.source_folder, c.source_id, c.reason
        ));
    }
    for (folder, at) in &plan.agreed {
        lines.push(format!("agreed {folder}/{at}"));
    }
    for s in &plan.skipped {
        lines.push(format!("skip {}/{}: {}", s.folder, s.id, s.reason));
    }
    lines.push(format!("in place {}", plan.in_place));
    lines.join("\n")
}

fn snapshot(name: &str, plan: String) {
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(name, plan);
    });
}

/// A calendar copied in an earlier run: events a (content 1) and b (content 2).
fn copied() -> Vec<Vec<Event>> {
    vec![
        calendar(Side::Source, CALENDAR),
        event(Side::Source, CALENDAR, "s1", "uid-a", 1, "1"),
        event(Side::Source, CALENDAR, "s2", "uid-b", 2, "1"),
        calendar(Side::Target, CALENDAR),
        created(1, CALENDAR, "s1", "uid-a", 1, "t-a"),
        created(2, CALENDAR, "s2", "uid-b", 2, "t-b"),
    ]
}

#[test]
fn a_new_calendar_is_created_with_its_properties_and_its_events() {
    snapshot(
        "plan_keyed_first_run",
        plan_of(
            &[
                calendar(Side::Source, CALENDAR),
                event(Side::Source, CALENDAR, "s1", "uid-a", 1, "1"),
                event(Side::Source, CALENDAR, "s2", "uid-b", 2, "1"),
            ],
            false,
        ),
    );
}

#[test]
fn an_edit_on_the_source_is_one_update_of_the_same_target_item() {
    let mut events = copied();
    events.push(event(Side::Source, CALENDAR, "s1", "uid-a", 3, "2"));
    snapshot("plan_keyed_edit", plan_of(&events, true));
}

#[test]
fn an_edit_at_equal_size_is_seen_by_its_version() {
    // 10:00 → 11:00: the same size, another version and content.
    let mut events = copied();
    let mut edit = event(Side::Source, CALENDAR, "s2", "uid-b", 4, "2");
    if let Event::ItemSeen { size, .. } = &mut edit[0] {
        *size = 300;
    }
    events.push(edit);
    snapshot("plan_keyed_edit_equal_size", plan_of(&events, false));
}

#[test]
fn an_edit_on_both_sides_is_a_conflict_and_nothing_is_written() {
    let mut events = copied();
    events.push(event(Side::Source, CALENDAR, "s1", "uid-a", 3, "2"));
    // The target item read again at a new version, with other content than ferry wrote.
    events.push(event(Side::Target, CALENDAR, "t-a", "uid-a", 5, "t9"));
    snapshot("plan_keyed_conflict", plan_of(&events, true));
}

#[test]
fn a_target_edit_that_matches_the_source_is_in_agreement_not_a_conflict() {
    let mut events = copied();
    events.push(event(Side::Source, CALENDAR, "s1", "uid-a", 3, "2"));
    events.push(event(Side::Target, CALENDAR, "t-a", "uid-a", 3, "t9"));
    snapshot("plan_keyed_agreement", plan_of(&events, false));
}

#[test]
fn a_source_deletion_is_a_deletion_only_with_delete_removed_and_never_of_a_changed_item() {
    let mut events = copied();
    events.push(vec![Event::ItemGone {
        side: Side::Source,
        folder: CALENDAR.into(),
        id: id("s1"),
    }]);
    events.push(vec![Event::ItemGone {
        side: Side::Source,
        folder: CALENDAR.into(),
        id: id("s2"),
    }]);
    // uid-b changed on the target behind ferry's back.
    events.push(event(Side::Target, CALENDAR, "t-b", "uid-b", 6, "t9"));
    let kept = plan_of(&events, false);
    let deleted = plan_of(&events, true);
    snapshot(
        "plan_keyed_source_deletion",
        format!("without --delete-removed:\n{kept}\n\nwith --delete-removed:\n{deleted}"),
    );
}

#[test]
fn a_uid_reused_in_another_collection_is_another_item() {
    let home = "Calendars/Home";
    let mut events = copied();
    events.push(calendar(Side::Source, home));
    // The same UID as Work's first event, in another calendar, with other content.
    events.push(event(Side::Source, home, "h1", "uid-a", 7, "1"));
    snapshot("plan_keyed_uid_in_two_collections", plan_of(&events, true));
}

#[test]
fn an_item_someone_else_put_on_the_target_under_the_same_key_is_not_overwritten() {
    let events = vec![
        calendar(Side::Source, CALENDAR),
        event(Side::Source, CALENDAR, "s1", "uid-a", 1, "1"),
        event(Side::Source, CALENDAR, "s2", "uid-b", 2, "1"),
        calendar(Side::Target, CALENDAR),
        // Found on the target: uid-a with the source's content, uid-b with other content.
        event(Side::Target, CALENDAR, "x1", "uid-a", 1, "x"),
        event(Side::Target, CALENDAR, "x2", "uid-b", 8, "x"),
    ];
    snapshot("plan_keyed_found_on_target", plan_of(&events, true));
}
