//! Copies made while the source is still being read ("copy-ahead"): of the items of one
//! source folder just read, those the plan copies go at once, with their bytes still in
//! memory, so each message crosses the wire once. Those whose content the plan may instead
//! move from another target folder wait for the plan.

use std::collections::BTreeSet;

use super::{Delta, delta_of};
use crate::event::{ContentHash, NativeId};
use crate::projection::source::SourceState;
use crate::projection::target::TargetState;

/// The contents a copy made while reading must leave to the plan when the target can move
/// items: `plan` deletes them from some target folder, and may move that copy instead.
pub fn movable(plan: &Delta) -> BTreeSet<ContentHash> {
    plan.deletions.iter().map(|d| d.content).collect()
}

/// What to write now for the items `read` of source `folder` (just read, their bytes kept):
/// the copies the plan makes of them, but none of a content in `movable`, and the target
/// folders those copies need. Planned for the contents just read alone ([`delta_of`]):
/// planning the whole state for every chunk would grow with the mailbox, chunk after chunk.
/// Empty when nothing is to be copied.
pub fn copies_ahead(
    source: &SourceState,
    target: &TargetState,
    folder: &str,
    read: &BTreeSet<&NativeId>,
    movable: &BTreeSet<ContentHash>,
) -> Delta {
    let contents: BTreeSet<ContentHash> = source
        .folders
        .get(folder)
        .map(|known| {
            read.iter()
                .filter_map(|id| known.items.get(id).map(|item| item.content))
                .collect()
        })
        .unwrap_or_default();
    let plan = delta_of(source, target, folder, &contents);
    let copies: Vec<super::Copy> = plan
        .copies
        .into_iter()
        .filter(|c| c.source_folder == folder && read.contains(&c.source_id))
        .filter(|c| !movable.contains(&c.content))
        .collect();
    if copies.is_empty() {
        return Delta::default();
    }
    let targets: BTreeSet<&str> = copies.iter().map(|c| c.folder.as_str()).collect();
    Delta {
        create_folders: plan
            .create_folders
            .into_iter()
            .filter(|f| targets.contains(f.as_str()))
            .collect(),
        copies,
        ..Delta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::Flags;
    use crate::projection::delta::fixtures::{hash, id};
    use crate::projection::source::{ItemDate, SourceFolder, SourceItem};
    use crate::projection::target::{Origin, TargetFolder, TargetItem};

    /// A source folder INBOX with items (id, content), listed.
    fn source(items: &[(&str, u8)]) -> SourceState {
        let mut source = SourceState::default();
        source.folders.insert(
            "INBOX".into(),
            SourceFolder {
                items: items
                    .iter()
                    .map(|&(i, n)| {
                        let item = SourceItem {
                            content: hash(n),
                            size: 10,
                            flags: Flags::new(),
                            date: ItemDate::NONE,
                            keyed: None,
                        };
                        (id(i), item)
                    })
                    .collect(),
                listed: true,
                ..SourceFolder::default()
            },
        );
        source
    }

    #[test]
    fn only_the_items_just_read_are_copied_with_their_folder() {
        let source = source(&[("1", 1), ("2", 2), ("3", 3)]);
        let ids = [id("1"), id("3")];
        let read: BTreeSet<&NativeId> = ids.iter().collect();
        let ahead = copies_ahead(
            &source,
            &TargetState::default(),
            "INBOX",
            &read,
            &BTreeSet::new(),
        );
        let copied: Vec<&str> = ahead
            .copies
            .iter()
            .map(|c| c.source_id.0.as_str())
            .collect();
        assert_eq!(copied, ["1", "3"]);
        assert_eq!(ahead.create_folders, ["INBOX"]);
        assert!(ahead.deletions.is_empty() && ahead.flag_updates.is_empty());
    }

    #[test]
    fn content_on_the_target_or_movable_is_not_copied_ahead() {
        let source = source(&[("1", 1), ("2", 2)]);
        let mut target = TargetState::default();
        let mut inbox = TargetFolder {
            observed: true,
            ..TargetFolder::default()
        };
        inbox.items.insert(
            id("t1"),
            TargetItem {
                content: hash(1),
                flags: Flags::new(),
                origin: Origin::Found,
                source: None,
                altered: false,
                keyed: None,
            },
        );
        target.folders.insert("INBOX".into(), inbox);
        let ids = [id("1"), id("2")];
        let read: BTreeSet<&NativeId> = ids.iter().collect();
        // Content 1 is on the target already; content 2 may be moved by the plan.
        let movable: BTreeSet<ContentHash> = [hash(2)].into_iter().collect();
        let ahead = copies_ahead(&source, &target, "INBOX", &read, &movable);
        assert_eq!(ahead, Delta::default());
        // Without the move, content 2 goes ahead; the folder exists, so none is created.
        let ahead = copies_ahead(&source, &target, "INBOX", &read, &BTreeSet::new());
        assert_eq!(ahead.copies.len(), 1);
        assert_eq!(ahead.copies[0].content, hash(2));
        assert!(ahead.create_folders.is_empty());
    }

    #[test]
    fn movable_contents_are_those_the_plan_deletes() {
        let plan = Delta {
            deletions: vec![super::super::Deletion {
                folder: "Old".into(),
                id: id("9"),
                content: hash(9),
            }],
            ..Delta::default()
        };
        let expected: BTreeSet<ContentHash> = [hash(9)].into_iter().collect();
        assert_eq!(movable(&plan), expected);
    }
}
