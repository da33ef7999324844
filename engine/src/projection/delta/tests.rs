//! Tests of the planner's folder decisions.
use super::fixtures::hash;
use super::*;
use crate::projection::source::SourceFolder;

fn ours(n: u8) -> TargetItem {
    TargetItem {
        content: hash(n),
        flags: Flags::new(),
        origin: Origin::Copied { run: 1, op: 1 },
        source: Some(crate::projection::target::SourceLink::of(
            "Old",
            &NativeId(format!("s{n}")),
        )),
        altered: false,
        keyed: None,
    }
}

fn found(n: u8) -> TargetItem {
    TargetItem {
        origin: Origin::Found,
        source: None,
        ..ours(n)
    }
}

/// A source with `folders` (empty) and a target with `created` folders ferry created
/// (with their items).
fn states(
    folders: &[&str],
    created: Vec<(&str, Vec<(&str, TargetItem)>)>,
) -> (SourceState, TargetState) {
    let mut source = SourceState::default();
    for path in folders {
        source
            .folders
            .insert((*path).into(), SourceFolder::default());
    }
    let mut target = TargetState::default();
    for (path, items) in created {
        target.folders.insert(
            path.into(),
            TargetFolder {
                created_by_ferry: true,
                observed: true,
                items: items
                    .into_iter()
                    .map(|(id, item)| (NativeId(id.into()), item))
                    .collect(),
                ..TargetFolder::default()
            },
        );
    }
    (source, target)
}

fn deleting(folder: &str, id: &str, n: u8) -> Deletion {
    Deletion {
        folder: folder.into(),
        id: NativeId(id.into()),
        content: hash(n),
    }
}

#[test]
fn a_folder_whose_items_the_plan_deletes_is_deleted() {
    let (source, target) = states(
        &["INBOX"],
        vec![
            ("INBOX", vec![]),
            ("Old", vec![("1", ours(1)), ("2", ours(2))]),
        ],
    );
    // Before the plan: every item of Old is to be deleted.
    let plan = Delta {
        deletions: vec![deleting("Old", "1", 1), deleting("Old", "2", 2)],
        ..Delta::default()
    };
    assert_eq!(
        emptied_folders(&source, &target, &plan),
        (vec!["Old".to_owned()], vec![])
    );
    // One deletion missing from the plan (it failed): not yet, and without a reason.
    let partial = Delta {
        deletions: vec![deleting("Old", "1", 1)],
        ..Delta::default()
    };
    assert_eq!(
        emptied_folders(&source, &target, &partial),
        (vec![], vec![])
    );
    // After the plan: the state has no item left, the plan is empty.
    let (source, target) = states(&["INBOX"], vec![("INBOX", vec![]), ("Old", vec![])]);
    assert_eq!(
        emptied_folders(&source, &target, &Delta::default()),
        (vec!["Old".to_owned()], vec![])
    );
}

#[test]
fn a_folder_with_a_message_ferry_did_not_write_is_kept_with_the_reason() {
    let (source, mut target) = states(
        &["INBOX"],
        vec![("Old", vec![("1", ours(1)), ("2", found(2))])],
    );
    let plan = Delta {
        deletions: vec![deleting("Old", "1", 1)],
        ..Delta::default()
    };
    let (delete, kept) = emptied_folders(&source, &target, &plan);
    assert!(delete.is_empty());
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0, "Old");
    assert!(
        kept[0].1.contains("1 message ferry did not write"),
        "{kept:?}"
    );
    // Altered since ferry wrote it: not ferry's any more either.
    let old = target.folders.get_mut("Old").unwrap();
    old.items.remove(&NativeId("2".into()));
    old.items.get_mut(&NativeId("1".into())).unwrap().altered = true;
    let (delete, kept) = emptied_folders(&source, &target, &Delta::default());
    assert!(delete.is_empty());
    assert_eq!(kept[0].0, "Old");
}

#[test]
fn inbox_role_folders_mapped_pending_and_foreign_folders_are_never_deleted() {
    let (source, mut target) = states(
        &["Projects"],
        vec![
            ("INBOX", vec![]),
            ("Sent", vec![]),
            ("Projects", vec![]),
            ("Pending", vec![]),
            ("Old", vec![]),
        ],
    );
    target.roles.insert(SpecialUse::Sent, "Sent".into());
    target.pending.insert(
        7,
        Action::SetFlags {
            folder: "Pending".into(),
            id: NativeId("1".into()),
            flags: Flags::new(),
        },
    );
    // A folder ferry did not create (the user's own, or one it only looked at).
    target.folders.get_mut("Old").unwrap().created_by_ferry = false;
    assert_eq!(
        emptied_folders(&source, &target, &Delta::default()),
        (vec![], vec![])
    );
    // Nor the old name of a folder the plan renames.
    target.pending.clear();
    let plan = Delta {
        renames: vec![("Pending".into(), "Projects 2".into())],
        ..Delta::default()
    };
    assert_eq!(emptied_folders(&source, &target, &plan), (vec![], vec![]));
}

#[test]
fn children_go_before_parents_and_a_child_that_stays_keeps_its_parent() {
    let (source, target) = states(
        &["INBOX"],
        vec![
            ("A", vec![]),
            ("A/B", vec![]),
            ("A/B/C", vec![]),
            ("A B", vec![]),
            ("A.x", vec![]),
            ("K", vec![]),
            ("K/Mine", vec![("1", found(1))]),
        ],
    );
    let (delete, kept) = emptied_folders(&source, &target, &Delta::default());
    assert_eq!(delete, ["A/B/C", "A/B", "A.x", "A B", "A"]);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0].0, "K/Mine");
    assert_eq!(kept[1].0, "K");
    assert!(kept[1].1.contains("the folder K/Mine"), "{kept:?}");
}

#[test]
fn a_folder_a_source_folder_maps_to_by_role_stays() {
    // "Sent Items" (\Sent) on the source goes to the target's \Sent folder: while that
    // is "Other", ferry's "Sent" is an orphan; once "Sent" is the role folder, it stays.
    let (mut source, mut target) = states(&[], vec![("Sent", vec![])]);
    source.folders.insert(
        "Sent Items".into(),
        SourceFolder {
            special_use: Some(SpecialUse::Sent),
            ..SourceFolder::default()
        },
    );
    target.roles.insert(SpecialUse::Sent, "Other".into());
    target.folders.get_mut("Sent").unwrap().created_by_ferry = true;
    let (delete, _) = emptied_folders(&source, &target, &Delta::default());
    assert_eq!(delete, ["Sent"]);
    target.roles.insert(SpecialUse::Sent, "Sent".into());
    let (delete, _) = emptied_folders(&source, &target, &Delta::default());
    assert!(delete.is_empty());
}
