//! The plan for items that change in place (events, contacts, tasks, notes): paired with their
//! target item by stable key within the mapped collection, never by content, so an edit on
//! the source is one update of the same target item, and the same key in another collection
//! is another item.
//!
//! For each source item with a key, the target item with that key in its target folder:
//! - none: create it (unless the target refused that content for good);
//! - holding the source's content: in place (and, if it had changed behind ferry's back to
//!   exactly that, in agreement again);
//! - changed behind ferry's back (another version with other content than ferry wrote), or
//!   put there by someone else with other content: a conflict, nothing written;
//! - otherwise: an update that expects the version ferry last knew (If-Match).
//!
//! A target item ferry wrote whose key no source item has any more is deleted, if unchanged,
//! under `--delete-removed` (and the source folder listed); a changed one is a conflict.

use std::collections::BTreeMap;

use crate::event::{ContentHash, NativeId, RunOptions};
use crate::item::Kind;
use crate::projection::source::SourceFolder;
use crate::projection::target::{Origin, TargetFolder, TargetItem, TargetState};

use super::{Delta, Skip};

/// Create a keyed item on the target, or update the one there in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    /// Source folder.
    pub source_folder: String,
    /// Source id.
    pub source_id: NativeId,
    /// Target folder.
    pub folder: String,
    /// Its stable key.
    pub key: String,
    /// What it is.
    pub kind: Kind,
    /// Keyed hash of the source's bytes.
    pub content: ContentHash,
    /// Size in bytes.
    pub size: u64,
    /// For an update: the target item and the version it must still have.
    pub target: Option<(NativeId, Option<String>)>,
}

/// Delete a keyed target item ferry wrote whose source item is gone, if it is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedDeletion {
    /// Target folder.
    pub folder: String,
    /// Target id.
    pub id: NativeId,
    /// Its stable key.
    pub key: String,
    /// Its content hash.
    pub content: ContentHash,
    /// The version it must still have.
    pub expect: Option<String>,
}

/// A source item left alone because its target item changed behind ferry's back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Source folder.
    pub source_folder: String,
    /// Source id; none when the source item was deleted.
    pub source_id: Option<NativeId>,
    /// Target folder.
    pub folder: String,
    /// Target id.
    pub id: NativeId,
    /// What happened, in words.
    pub reason: String,
}

/// Plans the keyed items of one source folder against its target folder (`None`: still to
/// be created).
pub(super) fn plan_keyed(
    (source_path, folder): (&str, &SourceFolder),
    (target_path, target_folder): (&str, Option<&TargetFolder>),
    target: &TargetState,
    options: &RunOptions,
    delta: &mut Delta,
) {
    // The target's keyed items by key, in id order.
    let mut by_key: BTreeMap<&str, Vec<(&NativeId, &TargetItem)>> = BTreeMap::new();
    for (id, item) in target_folder.iter().flat_map(|f| f.items.iter()) {
        if let Some(keyed) = &item.keyed {
            by_key
                .entry(keyed.key.as_str())
                .or_default()
                .push((id, item));
        }
    }
    let retry = options.full || options.verify_target;
    let mut keys_seen: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for (source_id, item) in &folder.items {
        let Some(keyed) = &item.keyed else {
            continue;
        };
        if !keys_seen.insert(keyed.key.as_str()) {
            // Two source items with one key in one folder: the target holds one per key.
            delta.skipped.push(Skip {
                folder: source_path.to_owned(),
                id: source_id.clone(),
                reason: format!(
                    "another item of this folder has the same key ({}): only the first is copied",
                    keyed.key
                ),
            });
            continue;
        }
        let holders = by_key.get_mut(keyed.key.as_str());
        // The target item copied from this source item first, else the first by id.
        let paired = holders.and_then(|holders| {
            let at = holders
                .iter()
                .position(|(_, t)| t.came_from(source_path, source_id))
                .unwrap_or(0);
            (!holders.is_empty()).then(|| holders.remove(at))
        });
        // Unreadable now: its known copy on the target is kept as it is (not orphaned).
        if folder.unreadable.contains_key(source_id) {
            continue;
        }
        let refused = target
            .refused
            .get(&(target_path.to_owned(), item.content))
            .filter(|_| !retry);
        let put = |target| Put {
            source_folder: source_path.to_owned(),
            source_id: source_id.clone(),
            folder: target_path.to_owned(),
            key: keyed.key.clone(),
            kind: keyed.kind,
            content: item.content,
            size: item.size,
            target,
        };
        match paired {
            None => match refused {
                Some(reason) => delta.skipped.push(Skip {
                    folder: source_path.to_owned(),
                    id: source_id.clone(),
                    reason: reason.clone(),
                }),
                None => delta.puts.push(put(None)),
            },
            Some((target_id, target_item)) => {
                if target_item.content == item.content {
                    delta.in_place += 1;
                    if target_item.altered || target_item.origin == Origin::Found {
                        delta
                            .agreed
                            .push((target_path.to_owned(), target_id.clone()));
                    }
                    continue;
                }
                let foreign = target_item.origin == Origin::Found;
                if target_item.altered || foreign {
                    delta.conflicts.push(Conflict {
                        source_folder: source_path.to_owned(),
                        source_id: Some(source_id.clone()),
                        folder: target_path.to_owned(),
                        id: target_id.clone(),
                        reason: if foreign {
                            "the target holds another version of this item, which ferry did not \
                             write: left as it is"
                                .into()
                        } else {
                            "changed on the target behind ferry's back: left as it is".into()
                        },
                    });
                    continue;
                }
                if let Some(reason) = refused {
                    delta.skipped.push(Skip {
                        folder: source_path.to_owned(),
                        id: source_id.clone(),
                        reason: reason.clone(),
                    });
                    continue;
                }
                let version = target_item
                    .keyed
                    .as_ref()
                    .and_then(|keyed| keyed.version.clone());
                delta.puts.push(put(Some((target_id.clone(), version))));
            }
        }
    }
    if options.delete_removed && folder.listed {
        for (target_id, target_item) in by_key.into_values().flatten() {
            gone_from_source(
                target_path,
                Some(source_path),
                target_id,
                target_item,
                delta,
            );
        }
    }
    // Promise: never two items with one key in a target folder, and never a write to an item
    // that changed behind ferry's back.
    debug_assert!(
        delta
            .puts
            .iter()
            .filter(|put| put.folder == target_path)
            .all(|put| put.target.is_some()
                || target_folder.is_none_or(|f| f
                    .items
                    .values()
                    .all(|t| t.keyed.as_ref().is_none_or(|k| k.key != put.key)))),
        "a create planned of a key the target folder holds"
    );
}

/// A keyed target item whose source item is gone (`source_folder`: the folder it came from,
/// when that is still there): deleted if ferry wrote it and it is unchanged, a conflict if it
/// changed, left alone if ferry did not write it.
pub(super) fn gone_from_source(
    folder: &str,
    source_folder: Option<&str>,
    id: &NativeId,
    item: &TargetItem,
    delta: &mut Delta,
) {
    if !matches!(item.origin, Origin::Copied { .. }) || id.0.starts_with("op-") {
        return;
    }
    let Some(keyed) = &item.keyed else {
        return;
    };
    if item.altered {
        let source_folder = source_folder.unwrap_or(folder).to_owned();
        delta.conflicts.push(Conflict {
            source_folder,
            source_id: None,
            folder: folder.to_owned(),
            id: id.clone(),
            reason: "deleted on the source, changed on the target behind ferry's back: kept".into(),
        });
        return;
    }
    delta.keyed_deletions.push(KeyedDeletion {
        folder: folder.to_owned(),
        id: id.clone(),
        key: keyed.key.clone(),
        content: item.content,
        expect: keyed.version.clone(),
    });
}
