//! Table-driven tests of the planner: each row is a journal (events folded into the source and
//! target projections, as a run replays them), how the run is asked to work, and the plan
//! expected, written action by action.

use super::fixtures::{hash, id};
use super::*;
use crate::event::{CheckState, Event, FailureClass, OpId, Side};
use crate::flags::SystemFlag;
use crate::projection::fold;

/// A journal and how the run is asked to work.
struct Input {
    events: Vec<Event>,
    options: RunOptions,
    /// The target can move items: copies paired with deletions become moves.
    moves: bool,
}

impl Input {
    /// With `--delete-removed`.
    fn deleting(mut self) -> Input {
        self.options.delete_removed = true;
        self
    }

    /// With `--delete-removed`, on a target that moves items.
    fn moving(self) -> Input {
        Input {
            moves: true,
            ..self.deleting()
        }
    }

    /// With `--full`.
    fn full(mut self) -> Input {
        self.options.full = true;
        self
    }
}

/// The journal `events`, in order.
fn given(events: &[Vec<Event>]) -> Input {
    Input {
        events: events.concat(),
        options: RunOptions::default(),
        moves: false,
    }
}

/// Plans `input` and compares the plan, described action by action, with `expected`.
fn check(row: &str, input: Input, expected: &[&str]) {
    let source: SourceState = fold(&input.events);
    let target: TargetState = fold(&input.events);
    let mut plan = delta(&source, &target, &input.options);
    if input.moves {
        plan.pair_moves(&BTreeSet::new());
    }
    assert_eq!(described(&plan), expected, "row: {row}");
}

/// A plan as lines: renames, folders created, copies, moves, flag updates, deletions, skips,
/// and the items in place.
fn described(plan: &Delta) -> Vec<String> {
    let mut lines = Vec::new();
    for (from, to) in &plan.renames {
        lines.push(format!("rename {from} -> {to}"));
    }
    for folder in &plan.create_folders {
        lines.push(format!("create {folder}"));
    }
    for c in &plan.copies {
        lines.push(format!(
            "copy {}/{} -> {}",
            c.source_folder, c.source_id, c.folder
        ));
    }
    for m in &plan.moves {
        lines.push(format!(
            "move {}/{} -> {} for {}/{}",
            m.from.folder, m.from.id, m.copy.folder, m.copy.source_folder, m.copy.source_id
        ));
    }
    for u in &plan.flag_updates {
        lines.push(format!("flags {}/{}", u.folder, u.id));
    }
    for d in &plan.deletions {
        lines.push(format!("delete {}/{}", d.folder, d.id));
    }
    for s in &plan.skipped {
        lines.push(format!("skip {}/{}", s.folder, s.id));
    }
    if plan.in_place > 0 {
        lines.push(format!("in place {}", plan.in_place));
    }
    lines
}

/// A source folder, listed in full.
fn source_folder(path: &str) -> Vec<Event> {
    vec![
        Event::FolderSeen {
            side: Side::Source,
            folder: path.into(),
            special_use: None,
            validity: Some(1),
        },
        Event::FolderListed {
            side: Side::Source,
            folder: path.into(),
            token: None,
        },
    ]
}

/// A target folder ferry listed.
fn target_folder(path: &str) -> Vec<Event> {
    vec![Event::FolderSeen {
        side: Side::Target,
        folder: path.into(),
        special_use: None,
        validity: Some(1),
    }]
}

/// A source item with content `n`, without flags.
fn item(folder: &str, at: &str, n: u8) -> Vec<Event> {
    vec![Event::ItemSeen {
        side: Side::Source,
        folder: folder.into(),
        id: id(at),
        content: hash(n),
        size: 100,
        flags: Flags::new(),
        date: None,
    }]
}

/// A source item flagged \Seen since.
fn seen(folder: &str, at: &str) -> Vec<Event> {
    vec![Event::FlagsSeen {
        side: Side::Source,
        folder: folder.into(),
        id: id(at),
        flags: Flags::new().with(SystemFlag::Seen),
    }]
}

/// A source item deleted (or moved away).
fn gone(folder: &str, at: &str) -> Vec<Event> {
    vec![Event::ItemGone {
        side: Side::Source,
        folder: folder.into(),
        id: id(at),
    }]
}

/// A target item ferry did not write, with content `n`.
fn found(folder: &str, at: &str, n: u8) -> Vec<Event> {
    vec![Event::ItemSeen {
        side: Side::Target,
        folder: folder.into(),
        id: id(at),
        content: hash(n),
        size: 100,
        flags: Flags::new(),
        date: None,
    }]
}

/// The intent of write `op`: source item `from` (content `n`) appended to target `folder`.
fn append(op: OpId, from: (&str, &str), folder: &str, n: u8) -> Event {
    Event::WriteIntent {
        op,
        action: Action::Append {
            source_folder: from.0.into(),
            source_id: id(from.1),
            folder: folder.into(),
            content: hash(n),
            size: 100,
            flags: Flags::new(),
            date: None,
            probe: String::new(),
        },
    }
}

/// ferry copied source item `from` (content `n`) to target `folder`, where the target named
/// it `to` (`None`: a store that names no ids).
fn wrote(op: OpId, from: (&str, &str), (folder, to): (&str, Option<&str>), n: u8) -> Vec<Event> {
    vec![
        append(op, from, folder, n),
        Event::WriteDone {
            op,
            id: to.map(id),
            at: 0,
        },
    ]
}

/// ferry's copy of source item `from` to target `folder` failed.
fn failed(op: OpId, from: (&str, &str), folder: &str, n: u8, class: FailureClass) -> Vec<Event> {
    vec![
        append(op, from, folder, n),
        Event::WriteFailed {
            op,
            class,
            reason: "refused".into(),
        },
    ]
}

/// `--verify-target` found other bytes in a target item than ferry wrote.
fn altered(folder: &str, at: &str) -> Vec<Event> {
    vec![Event::TargetChecked {
        folder: folder.into(),
        id: id(at),
        state: CheckState::Altered,
    }]
}

#[test]
fn new_source_items_are_copied_once_per_target_folder() {
    check(
        "a new source item is copied, its target folder created first",
        given(&[source_folder("INBOX"), item("INBOX", "1", 1)]),
        &["create INBOX", "copy INBOX/1 -> INBOX"],
    );
    check(
        "into a target folder that exists, it is copied alone",
        given(&[
            source_folder("INBOX"),
            target_folder("INBOX"),
            item("INBOX", "1", 1),
        ]),
        &["copy INBOX/1 -> INBOX"],
    );
    check(
        "content already on the target in that folder, put there by someone else, is in place",
        given(&[
            source_folder("INBOX"),
            target_folder("INBOX"),
            item("INBOX", "1", 1),
            found("INBOX", "t9", 1),
        ]),
        &["in place 1"],
    );
    check(
        "content ferry copied earlier is in place",
        given(&[
            source_folder("INBOX"),
            target_folder("INBOX"),
            item("INBOX", "1", 1),
            wrote(1, ("INBOX", "1"), ("INBOX", Some("t1")), 1),
        ]),
        &["in place 1"],
    );
    check(
        "the same content in another target folder does not count",
        given(&[
            source_folder("INBOX"),
            target_folder("INBOX"),
            target_folder("Archive"),
            item("INBOX", "1", 1),
            found("Archive", "t9", 1),
        ]),
        &["copy INBOX/1 -> INBOX"],
    );
    check(
        "two source copies of one content against one target copy: one more is copied",
        given(&[
            source_folder("INBOX"),
            target_folder("INBOX"),
            item("INBOX", "1", 1),
            item("INBOX", "2", 1),
            found("INBOX", "t9", 1),
        ]),
        &["copy INBOX/2 -> INBOX", "in place 1"],
    );
    check(
        "a target copy altered since ferry wrote it is not the content: copied again",
        given(&[
            source_folder("INBOX"),
            target_folder("INBOX"),
            item("INBOX", "1", 1),
            wrote(1, ("INBOX", "1"), ("INBOX", Some("t1")), 1),
            altered("INBOX", "t1"),
        ]),
        &["copy INBOX/1 -> INBOX"],
    );
}

#[test]
fn flag_changes_become_updates_of_items_ferry_can_address() {
    check(
        "a flag change on the source becomes an update",
        given(&[
            source_folder("INBOX"),
            target_folder("INBOX"),
            item("INBOX", "1", 1),
            wrote(1, ("INBOX", "1"), ("INBOX", Some("t1")), 1),
            seen("INBOX", "1"),
        ]),
        &["flags INBOX/t1", "in place 1"],
    );
    check(
        "an item written without an id the target told cannot be updated",
        given(&[
            source_folder("INBOX"),
            target_folder("INBOX"),
            item("INBOX", "1", 1),
            wrote(1, ("INBOX", "1"), ("INBOX", None), 1),
            seen("INBOX", "1"),
        ]),
        &["in place 1"],
    );
}

#[test]
fn only_items_ferry_wrote_are_deleted_and_only_with_delete_removed() {
    let deleted_on_the_source = || {
        given(&[
            source_folder("INBOX"),
            target_folder("INBOX"),
            item("INBOX", "1", 1),
            wrote(1, ("INBOX", "1"), ("INBOX", Some("t1")), 1),
            found("INBOX", "t9", 2),
            gone("INBOX", "1"),
        ])
    };
    check(
        "without --delete-removed, nothing is deleted",
        deleted_on_the_source(),
        &[],
    );
    check(
        "with it, ferry's copy is deleted, the item ferry found stays",
        deleted_on_the_source().deleting(),
        &["delete INBOX/t1"],
    );
    check(
        "an item written without an id the target told cannot be deleted",
        given(&[
            source_folder("INBOX"),
            target_folder("INBOX"),
            item("INBOX", "1", 1),
            wrote(1, ("INBOX", "1"), ("INBOX", None), 1),
            gone("INBOX", "1"),
        ])
        .deleting(),
        &[],
    );
}

#[test]
fn a_message_moved_between_folders_is_moved_on_the_target() {
    let moved_on_the_source = || {
        given(&[
            source_folder("A"),
            source_folder("B"),
            target_folder("A"),
            target_folder("B"),
            item("A", "1", 1),
            wrote(1, ("A", "1"), ("A", Some("t1")), 1),
            gone("A", "1"),
            item("B", "2", 1),
        ])
    };
    check(
        "a target that moves: one move",
        moved_on_the_source().moving(),
        &["move A/t1 -> B for B/2"],
    );
    check(
        "a target that cannot move: a copy and a deletion",
        moved_on_the_source().deleting(),
        &["copy B/2 -> B", "delete A/t1"],
    );
    check(
        "without --delete-removed: a copy, the old one stays",
        moved_on_the_source(),
        &["copy B/2 -> B"],
    );
}

#[test]
fn a_write_that_failed_is_planned_again_unless_refused_for_good() {
    for class in [FailureClass::Transient, FailureClass::NotApplied] {
        check(
            "a copy that failed (or never landed) is copied again",
            given(&[
                source_folder("INBOX"),
                target_folder("INBOX"),
                item("INBOX", "1", 1),
                failed(1, ("INBOX", "1"), "INBOX", 1, class),
            ]),
            &["copy INBOX/1 -> INBOX"],
        );
    }
    let refused = || {
        given(&[
            source_folder("INBOX"),
            target_folder("INBOX"),
            item("INBOX", "1", 1),
            failed(1, ("INBOX", "1"), "INBOX", 1, FailureClass::Permanent),
        ])
    };
    check(
        "a copy the target refused for good is reported, not tried on every run",
        refused(),
        &["skip INBOX/1"],
    );
    check(
        "--full tries it again",
        refused().full(),
        &["copy INBOX/1 -> INBOX"],
    );
}
