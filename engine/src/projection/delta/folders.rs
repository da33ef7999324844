//! What the target's folder listing changes in what ferry knows of it, and which target
//! folders a run lists: decided here, recorded and carried out by the executor.

use std::collections::{BTreeMap, BTreeSet};

use super::FolderMap;
use crate::event::{Event, Side, SpecialUse};
use crate::projection::source::SourceState;
use crate::projection::target::TargetState;
use crate::store::FolderInfo;

/// What a listing of the target's folders tells, as events, in the order they are recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderChanges {
    /// Known folders with a new UIDVALIDITY (recreated: their ids are void), or with their
    /// first one.
    pub recreated: Vec<Event>,
    /// The target's role folders, when they changed (INBOX is no role here).
    pub roles: Option<Event>,
    /// Known folders someone removed: forgotten, with what was in them, so the plan creates
    /// them again and copies their messages again.
    pub removed: Vec<Event>,
}

/// What `listed`, the target's folders as listed now, changes in `target`.
pub fn folder_changes(target: &TargetState, listed: &[FolderInfo]) -> FolderChanges {
    let recreated = listed
        .iter()
        .filter_map(|folder| {
            let known = target.folders.get(&folder.path)?;
            let changed = known.validity.is_some()
                && folder.validity.is_some()
                && known.validity != folder.validity;
            let first = known.validity.is_none() && folder.validity.is_some();
            (changed || first).then(|| Event::FolderSeen {
                side: Side::Target,
                folder: folder.path.clone(),
                special_use: folder.special_use,
                validity: folder.validity,
            })
        })
        .collect();
    let roles: BTreeMap<SpecialUse, String> = listed
        .iter()
        .filter_map(|f| Some((f.special_use?, f.path.clone())))
        .filter(|(role, _)| *role != SpecialUse::Inbox)
        .collect();
    let roles = if roles == target.roles {
        None
    } else {
        Some(Event::FolderRoles {
            side: Side::Target,
            roles: roles.into_iter().collect(),
        })
    };
    let present: BTreeSet<&str> = listed.iter().map(|f| f.path.as_str()).collect();
    let removed = target
        .folders
        .keys()
        .filter(|path| !present.contains(path.as_str()))
        .map(|path| Event::FolderGone {
            side: Side::Target,
            folder: path.clone(),
        })
        .collect();
    FolderChanges {
        recreated,
        roles,
        removed,
    }
}

/// The target folders a run lists at its start, of those that exist (`existing`, by path):
/// every one a source folder maps to and, with `verify`, every one ferry knows.
pub fn folders_to_list(
    source: &SourceState,
    target: &TargetState,
    existing: &BTreeMap<String, Option<u64>>,
    verify: bool,
) -> BTreeSet<String> {
    let map = FolderMap::new(source, target);
    let mut to_list: BTreeSet<String> = source
        .folders
        .keys()
        .map(|path| map.target_folder(path))
        .filter(|path| existing.contains_key(path))
        .collect();
    if verify {
        to_list.extend(target.folders.keys().cloned());
    }
    to_list
}

/// Whether target folder `folder` must stay because a folder below it stays (`stays`: the
/// folders not deleted).
pub fn holds_staying_folder(folder: &str, stays: &[String]) -> bool {
    let below = format!("{folder}/");
    stays.iter().any(|child| child.starts_with(&below))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::source::SourceFolder;
    use crate::projection::target::TargetFolder;

    fn listed(path: &str, special_use: Option<SpecialUse>, validity: Option<u64>) -> FolderInfo {
        FolderInfo {
            path: path.into(),
            special_use,
            validity,
            unreadable: None,
            spec: Default::default(),
            description: None,
        }
    }

    fn known(paths: &[(&str, Option<u64>)]) -> TargetState {
        let mut target = TargetState::default();
        for &(path, validity) in paths {
            target.folders.insert(
                path.into(),
                TargetFolder {
                    validity,
                    observed: true,
                    ..TargetFolder::default()
                },
            );
        }
        target
    }

    #[test]
    fn recreated_removed_and_role_folders_are_told() {
        let target = known(&[("INBOX", Some(1)), ("Old", Some(2)), ("New", None)]);
        let changes = folder_changes(
            &target,
            &[
                // Same UIDVALIDITY: nothing to tell.
                listed("INBOX", Some(SpecialUse::Inbox), Some(1)),
                // Its first UIDVALIDITY.
                listed("New", Some(SpecialUse::Sent), Some(7)),
                // Unknown: listed when a source folder maps to it, not told here.
                listed("Other", None, Some(9)),
            ],
        );
        assert_eq!(
            changes.recreated,
            [Event::FolderSeen {
                side: Side::Target,
                folder: "New".into(),
                special_use: Some(SpecialUse::Sent),
                validity: Some(7),
            }]
        );
        assert_eq!(
            changes.roles,
            Some(Event::FolderRoles {
                side: Side::Target,
                roles: vec![(SpecialUse::Sent, "New".into())],
            })
        );
        assert_eq!(
            changes.removed,
            [Event::FolderGone {
                side: Side::Target,
                folder: "Old".into(),
            }]
        );
    }

    #[test]
    fn a_new_uidvalidity_is_a_recreated_folder_and_known_roles_are_not_told_again() {
        let mut target = known(&[("INBOX", Some(1))]);
        target.roles.insert(SpecialUse::Trash, "Bin".into());
        let changes = folder_changes(
            &target,
            &[
                listed("INBOX", None, Some(5)),
                listed("Bin", Some(SpecialUse::Trash), None),
            ],
        );
        assert_eq!(
            changes.recreated,
            [Event::FolderSeen {
                side: Side::Target,
                folder: "INBOX".into(),
                special_use: None,
                validity: Some(5),
            }]
        );
        assert_eq!(changes.roles, None);
        assert!(changes.removed.is_empty());
    }

    #[test]
    fn the_folders_listed_are_those_source_folders_map_to_or_with_verify_all_known() {
        let mut source = SourceState::default();
        for path in ["INBOX", "Gone on the target"] {
            source.folders.insert(path.into(), SourceFolder::default());
        }
        let target = known(&[("INBOX", Some(1)), ("Mine", Some(2))]);
        let existing: BTreeMap<String, Option<u64>> =
            [("INBOX".to_owned(), Some(1)), ("Mine".to_owned(), Some(2))]
                .into_iter()
                .collect();
        let plain = folders_to_list(&source, &target, &existing, false);
        assert_eq!(plain.into_iter().collect::<Vec<_>>(), ["INBOX"]);
        let verify = folders_to_list(&source, &target, &existing, true);
        assert_eq!(verify.into_iter().collect::<Vec<_>>(), ["INBOX", "Mine"]);
    }

    #[test]
    fn a_folder_stays_when_a_folder_below_it_stays() {
        let stays = vec!["A/B".to_owned(), "C D".to_owned()];
        assert!(holds_staying_folder("A", &stays));
        assert!(!holds_staying_folder("A/B", &stays));
        // "C D" is beside "C", not below it.
        assert!(!holds_staying_folder("C", &stays));
    }
}
