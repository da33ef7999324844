//! What is left to do once a plan's moves were carried out.

use std::collections::BTreeSet;

use super::{Delta, Move, delta};
use crate::event::{ContentHash, NativeId, RunOptions};
use crate::projection::source::SourceState;
use crate::projection::target::TargetState;

/// What is left of the plan's `moves` once they were carried out, planned from the state they
/// left: a moved item keeps the flags it had, so where the source's differ they are set; a
/// move that failed (refused, or its item gone) is copied and its old item deleted, as without
/// moves. Nothing else: other writes that failed wait for the next run, as always.
pub fn after_moves(
    source: &SourceState,
    target: &TargetState,
    options: &RunOptions,
    moves: &[Move],
) -> Delta {
    let tried: BTreeSet<(&str, &NativeId)> = moves
        .iter()
        .map(|m| (m.from.folder.as_str(), &m.from.id))
        .collect();
    let contents: BTreeSet<ContentHash> = moves.iter().map(|m| m.copy.content).collect();
    let after = delta(source, target, options);
    let content_of = |folder: &str, id: &NativeId| {
        let item = target.folders.get(folder)?.items.get(id)?;
        Some(item.content)
    };
    Delta {
        copies: after
            .copies
            .into_iter()
            .filter(|c| contents.contains(&c.content))
            .collect(),
        deletions: after
            .deletions
            .into_iter()
            .filter(|d| tried.contains(&(d.folder.as_str(), &d.id)))
            .collect(),
        flag_updates: after
            .flag_updates
            .into_iter()
            .filter(|u| content_of(&u.folder, &u.id).is_some_and(|c| contents.contains(&c)))
            .collect(),
        ..Delta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::{Flags, SystemFlag};
    use crate::projection::delta::fixtures::{hash, id};
    use crate::projection::source::{ItemDate, SourceFolder, SourceItem};
    use crate::projection::target::{Origin, TargetFolder, TargetItem};

    fn ours(n: u8, from: (&str, &str), flags: Flags) -> TargetItem {
        TargetItem {
            content: hash(n),
            flags,
            origin: Origin::Copied { run: 1, op: 1 },
            source: Some(crate::projection::target::SourceLink::of(
                from.0,
                &id(from.1),
            )),
            altered: false,
            keyed: None,
        }
    }

    /// The source: "s1" (content 1, seen) moved from A to B, where "s5" (content 5) is new.
    fn moved_on_the_source() -> SourceState {
        let mut source = SourceState::default();
        let item = |n: u8, flags: Flags| SourceItem {
            content: hash(n),
            size: 10,
            flags,
            date: ItemDate::NONE,
            keyed: None,
        };
        let listed = SourceFolder {
            listed: true,
            ..SourceFolder::default()
        };
        source.folders.insert("A".into(), listed.clone());
        let mut b = listed;
        b.items
            .insert(id("s1"), item(1, Flags::new().with(SystemFlag::Seen)));
        b.items.insert(id("s5"), item(5, Flags::new()));
        source.folders.insert("B".into(), b);
        source
    }

    /// The target: folders A and B, with `a` and `b` in them.
    fn target(a: Vec<(&str, TargetItem)>, b: Vec<(&str, TargetItem)>) -> TargetState {
        let mut target = TargetState::default();
        for (path, items) in [("A", a), ("B", b)] {
            let folder = TargetFolder {
                created_by_ferry: true,
                observed: true,
                items: items.into_iter().map(|(i, item)| (id(i), item)).collect(),
                ..TargetFolder::default()
            };
            target.folders.insert(path.into(), folder);
        }
        target
    }

    fn options() -> RunOptions {
        RunOptions {
            delete_removed: true,
            ..RunOptions::default()
        }
    }

    #[test]
    fn a_failed_move_is_copied_and_its_old_item_deleted_and_nothing_else() {
        let source = moved_on_the_source();
        // "t6" (content 6) was copied from an item gone from the source: its deletion is not
        // a move's, and waits for the next run.
        let target = target(
            vec![
                ("t1", ours(1, ("A", "s1"), Flags::new())),
                ("t6", ours(6, ("A", "s6"), Flags::new())),
            ],
            vec![],
        );
        let mut plan = delta(&source, &target, &options());
        plan.pair_moves(&BTreeSet::new());
        assert_eq!(plan.moves.len(), 1, "{plan:?}");
        assert_eq!(plan.moves[0].from.id, id("t1"));
        // The move failed: the state is as before.
        let after = after_moves(&source, &target, &options(), &plan.moves);
        assert_eq!(after.copies.len(), 1, "{after:?}");
        assert_eq!(after.copies[0].source_id, id("s1"));
        assert_eq!(after.copies[0].folder, "B");
        assert_eq!(after.deletions.len(), 1);
        assert_eq!(after.deletions[0].id, id("t1"));
        assert!(after.flag_updates.is_empty() && after.moves.is_empty());
    }

    #[test]
    fn a_moved_item_gets_the_source_flags_and_nothing_is_copied() {
        let source = moved_on_the_source();
        let before = target(
            vec![
                ("t1", ours(1, ("A", "s1"), Flags::new())),
                ("t6", ours(6, ("A", "s6"), Flags::new())),
            ],
            vec![],
        );
        let mut plan = delta(&source, &before, &options());
        plan.pair_moves(&BTreeSet::new());
        // The move landed: "t1" is "t2" in B now, with the flags it had.
        let moved = target(
            vec![("t6", ours(6, ("A", "s6"), Flags::new()))],
            vec![("t2", ours(1, ("B", "s1"), Flags::new()))],
        );
        let after = after_moves(&source, &moved, &options(), &plan.moves);
        assert!(
            after.copies.is_empty() && after.deletions.is_empty(),
            "{after:?}"
        );
        assert_eq!(after.flag_updates.len(), 1);
        assert_eq!(after.flag_updates[0].id, id("t2"));
        assert!(after.flag_updates[0].to.has(SystemFlag::Seen));
    }
}
