//! The target as ferry knows it: the folders it created or looked at, every item it wrote
//! there (with where it came from) or found there, the writes still in doubt, and what the
//! target refused. Together with the source projection this is the source↔target mapping.

use std::collections::BTreeMap;

use crate::event::{
    Action, CheckState, ContentHash, Event, FailureClass, NativeId, OpId, RunId, Side, SpecialUse,
};
use crate::flags::Flags;
use crate::item::Keyed;
use crate::projection::Projection;
use crate::projection::items::ItemMap;

/// How an item came to be on the target.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Origin {
    /// ferry wrote it, in this run, with this operation.
    Copied {
        /// The run (runs of one journal number far below 2³²; a later one saturates).
        run: u32,
        /// The operation.
        op: OpId,
    },
    /// It was already there when ferry looked (another tool, the user, an earlier journal).
    Found,
    /// A keyed item (an event, a contact) that was there when ferry looked, under the key of a
    /// source item and with its content (ferry's own create whose outcome was lost, or the
    /// same item put there by another tool): kept up to date from the source from then on,
    /// but, as every item ferry did not write, never deleted.
    Adopted,
}

/// Which source item a target item was copied from: a 64-bit keyed digest of the source
/// folder and id, not the strings themselves (which would double what ferry keeps per item).
/// The planner uses it only to prefer, among target items with the same content (or key), the
/// one copied from exactly that source item; identical copies are interchangeable, so a
/// collision could at most pair two of them the other way round.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct SourceLink(pub std::num::NonZeroU64);

impl SourceLink {
    /// The link to source item `id` of `folder`.
    pub fn of(folder: &str, id: &NativeId) -> SourceLink {
        let mut hasher = blake3::Hasher::new_derive_key("ferry 2026-12 target item source link");
        hasher.update(&(folder.len() as u64).to_le_bytes());
        hasher.update(folder.as_bytes());
        hasher.update(id.0.as_bytes());
        let mut first = [0_u8; 8];
        first.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
        SourceLink(
            std::num::NonZeroU64::new(u64::from_le_bytes(first))
                .unwrap_or(std::num::NonZeroU64::MIN),
        )
    }
}

impl TargetItem {
    /// Whether ferry copied it from source item `id` of `folder`.
    pub fn came_from(&self, folder: &str, id: &NativeId) -> bool {
        self.source == Some(SourceLink::of(folder, id))
    }
}

/// One target item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetItem {
    /// Keyed hash of its bytes.
    pub content: ContentHash,
    /// Its flags as ferry last set or saw them.
    pub flags: Flags,
    /// How it came there.
    pub origin: Origin,
    /// The source item it was copied from, when ferry copied it (see [`SourceLink`]).
    pub source: Option<SourceLink>,
    /// `--verify-target` found other bytes there than ferry wrote; for a keyed item, a new
    /// version with other bytes, or a conditional write refused: it changed behind ferry's
    /// back, and ferry never overwrites or deletes it.
    pub altered: bool,
    /// Its stable key, kind and version as ferry last knew it, for an item that changes in
    /// place (boxed: a message pays one pointer for it).
    pub keyed: Option<Box<Keyed>>,
}

/// One target folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetFolder {
    /// ferry created it.
    pub created_by_ferry: bool,
    /// ferry listed it (so items someone else put there are known).
    pub observed: bool,
    /// Its UIDVALIDITY (or equivalent) when last seen; a new one voids every native id.
    pub validity: Option<u64>,
    /// Its change token as of ferry's last listing of it: the next listing asks only what
    /// changed since (see `executor::observe`).
    pub token: Option<String>,
    /// Items by target native id.
    pub items: ItemMap<TargetItem>,
    /// A collection's properties as ferry last set them (when it made the collection or
    /// changed them since): ferry changes them only from these.
    pub props: Option<crate::item::CollectionProps>,
}

/// The target projection.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetState {
    /// Known folders by path.
    pub folders: BTreeMap<String, TargetFolder>,
    /// Writes intended and not yet settled: in doubt after a crash.
    pub pending: BTreeMap<OpId, Action>,
    /// The next free operation number.
    pub next_op: OpId,
    /// The last run started.
    pub run: RunId,
    /// Content the target refused for good, per target folder, with the reason.
    pub refused: BTreeMap<(String, ContentHash), String>,
    /// The target's folders with a role, as last listed.
    pub roles: BTreeMap<SpecialUse, String>,
}

impl TargetState {
    /// A known target item.
    fn item_mut(&mut self, folder: &str, id: &NativeId) -> Option<&mut TargetItem> {
        self.folders.get_mut(folder)?.items.get_mut(id)
    }

    /// Whether the target folder is known to exist.
    pub fn has_folder(&self, folder: &str) -> bool {
        self.folders.contains_key(folder)
    }
}

impl Projection for TargetState {
    fn apply(&mut self, event: &Event) {
        match event {
            Event::Batch(events) => events.iter().for_each(|event| self.apply(event)),
            Event::RunStarted { run, .. } => self.run = *run,
            Event::FolderSeen {
                side: Side::Target,
                folder,
                validity,
                ..
            } => {
                let entry = self.folders.entry(folder.clone()).or_default();
                if entry.validity.is_some() && validity.is_some() && entry.validity != *validity {
                    // Recreated behind ferry's back: every native id lost its meaning. Forget
                    // the items; the observer lists the folder again and matches its messages
                    // by content, so nothing is copied twice and nothing is deleted.
                    entry.items.clear();
                    entry.observed = false;
                    entry.created_by_ferry = false;
                    entry.token = None;
                } else {
                    entry.observed = true;
                }
                if validity.is_some() {
                    entry.validity = *validity;
                }
            }
            Event::FolderGone {
                side: Side::Target,
                folder,
            } => {
                self.folders.remove(folder);
            }
            Event::FolderListed {
                side: Side::Target,
                folder,
                token,
            } => {
                let entry = self.folders.entry(folder.clone()).or_default();
                entry.observed = true;
                entry.token = token.clone();
            }
            Event::FolderRoles {
                side: Side::Target,
                roles,
            } => {
                self.roles = roles.iter().cloned().collect();
            }
            Event::ItemSeen {
                side: Side::Target,
                folder,
                id,
                content,
                flags,
                ..
            } => {
                let entry = self.folders.entry(folder.clone()).or_default();
                match entry.items.get_mut(id) {
                    Some(item) if item.keyed.is_some() => {
                        // A keyed item read again because its version changed: changed
                        // behind ferry's back if its content did (and it stays so until the
                        // plan finds it in agreement with the source); what it holds now is
                        // kept, so the plan can tell.
                        item.altered |= item.content != *content;
                        item.content = *content;
                        item.flags = flags.clone();
                    }
                    Some(item) => {
                        item.altered = item.content != *content;
                        item.flags = flags.clone();
                    }
                    None => {
                        entry.items.insert(
                            id.clone(),
                            TargetItem {
                                content: *content,
                                flags: flags.clone(),
                                origin: Origin::Found,
                                source: None,
                                altered: false,
                                keyed: None,
                            },
                        );
                    }
                }
            }
            Event::FlagsSeen {
                side: Side::Target,
                folder,
                id,
                flags,
            } => {
                if let Some(item) = self.item_mut(folder, id) {
                    item.flags = flags.clone();
                }
            }
            Event::ItemGone {
                side: Side::Target,
                folder,
                id,
            } => {
                if let Some(entry) = self.folders.get_mut(folder) {
                    entry.items.remove(id);
                }
            }
            Event::WriteIntent { op, action } => {
                self.next_op = self.next_op.max(op + 1);
                self.pending.insert(*op, action.clone());
            }
            Event::WriteDone { op, id, .. } => {
                if let Some(action) = self.pending.remove(op) {
                    self.done(*op, action, id.clone(), None);
                }
            }
            Event::WriteStored {
                op, id, version, ..
            } => {
                if let Some(action) = self.pending.remove(op) {
                    self.done(*op, action, Some(id.clone()), version.clone());
                }
            }
            Event::WriteFailed { op, class, reason } => match self.pending.remove(op) {
                Some(
                    Action::Append {
                        folder, content, ..
                    }
                    | Action::Create {
                        folder, content, ..
                    }
                    | Action::Update {
                        folder, content, ..
                    },
                ) if *class == FailureClass::Permanent => {
                    self.refused.insert((folder, content), reason.clone());
                }
                Some(Action::Update { folder, id, .. } | Action::DeleteIf { folder, id, .. })
                    if *class == FailureClass::Conflict =>
                {
                    // The target item is not as ferry left it: changed behind its back.
                    if let Some(item) = self.item_mut(&folder, &id) {
                        item.altered = true;
                    }
                }
                _ => {}
            },
            Event::ItemKeyed {
                side: Side::Target,
                folder,
                id,
                key,
                version,
                kind,
            } => {
                if let Some(item) = self.item_mut(folder, id) {
                    item.keyed = Some(Box::new(Keyed {
                        key: key.clone(),
                        version: version.clone(),
                        kind: *kind,
                    }));
                }
            }
            Event::TargetChecked { folder, id, state } => match state {
                CheckState::Intact => {
                    if let Some(item) = self.item_mut(folder, id) {
                        item.altered = false;
                        if item.keyed.is_some() && item.origin == Origin::Found {
                            item.origin = Origin::Adopted;
                        }
                    }
                }
                CheckState::Missing => {
                    if let Some(entry) = self.folders.get_mut(folder) {
                        entry.items.remove(id);
                    }
                }
                CheckState::Altered => {
                    if let Some(item) = self.item_mut(folder, id) {
                        item.altered = true;
                    }
                }
            },
            _ => {}
        }
    }
}

impl TargetState {
    fn done(&mut self, op: OpId, action: Action, id: Option<NativeId>, version: Option<String>) {
        match action {
            Action::CreateCollection { folder, spec } => {
                let entry = self.folders.entry(folder).or_default();
                entry.created_by_ferry = true;
                entry.props = Some(crate::item::CollectionProps::of(&spec, None));
            }
            Action::SetCollection { folder, to, .. } => {
                self.folders.entry(folder).or_default().props = Some(to);
            }
            Action::Create {
                source_folder,
                source_id,
                folder,
                key,
                kind,
                content,
                ..
            } => {
                let id = id.unwrap_or_else(|| NativeId(format!("op-{op}")));
                self.refused.remove(&(folder.clone(), content));
                self.folders.entry(folder).or_default().items.insert(
                    id,
                    copied(
                        self.run,
                        op,
                        content,
                        Flags::default(),
                        SourceLink::of(&source_folder, &source_id),
                        Some(Box::new(Keyed { key, version, kind })),
                    ),
                );
            }
            Action::Update {
                source_folder,
                source_id,
                folder,
                id: old,
                key,
                content,
                ..
            } => {
                self.refused.remove(&(folder.clone(), content));
                let entry = self.folders.entry(folder).or_default();
                let kind = entry
                    .items
                    .remove(&old)
                    .and_then(|item| item.keyed.map(|keyed| keyed.kind))
                    .unwrap_or_default();
                entry.items.insert(
                    id.unwrap_or(old),
                    copied(
                        self.run,
                        op,
                        content,
                        Flags::default(),
                        SourceLink::of(&source_folder, &source_id),
                        Some(Box::new(Keyed { key, version, kind })),
                    ),
                );
            }
            Action::DeleteIf { folder, id, .. } => {
                if let Some(entry) = self.folders.get_mut(&folder) {
                    entry.items.remove(&id);
                }
            }
            Action::CreateFolder { folder } => {
                self.folders.entry(folder).or_default().created_by_ferry = true;
            }
            Action::RenameFolder { from, to } => {
                let moved = self.folders.remove(&from).unwrap_or_default();
                let entry = self.folders.entry(to).or_default();
                entry.created_by_ferry |= moved.created_by_ferry;
                entry.observed |= moved.observed;
                entry.items.extend(moved.items);
            }
            Action::Append {
                source_folder,
                source_id,
                folder,
                content,
                flags,
                ..
            } => {
                // A store that does not return ids (IMAP without UIDPLUS) still gets an entry,
                // so the item counts as present; it cannot be addressed for flags or deletion.
                let id = id.unwrap_or_else(|| NativeId(format!("op-{op}")));
                // Landed after all (retried with --full or --verify-target): no longer refused.
                self.refused.remove(&(folder.clone(), content));
                self.folders.entry(folder).or_default().items.insert(
                    id,
                    copied(
                        self.run,
                        op,
                        content,
                        flags,
                        SourceLink::of(&source_folder, &source_id),
                        None,
                    ),
                );
            }
            Action::SetFlags { folder, id, flags } => {
                if let Some(item) = self.item_mut(&folder, &id) {
                    item.flags = flags;
                }
            }
            Action::Delete { folder, id, .. } => {
                if let Some(entry) = self.folders.get_mut(&folder) {
                    entry.items.remove(&id);
                }
            }
            Action::Move {
                source_folder,
                source_id,
                from,
                id: old,
                folder,
                content,
                ..
            } => {
                let moved = self
                    .folders
                    .get_mut(&from)
                    .and_then(|entry| entry.items.remove(&old));
                let id = id.unwrap_or_else(|| NativeId(format!("op-{op}")));
                // Landed after all (retried with --full or --verify-target): no longer refused.
                self.refused.remove(&(folder.clone(), content));
                self.folders.entry(folder).or_default().items.insert(
                    id,
                    copied(
                        self.run,
                        op,
                        content,
                        moved.map(|item| item.flags).unwrap_or_default(),
                        SourceLink::of(&source_folder, &source_id),
                        None,
                    ),
                );
            }
            Action::DeleteFolder { folder } => {
                // Gone from the target, with what ferry knew of it (nothing: the target
                // deletes only an empty folder). Its subfolders are folders of their own.
                self.folders.remove(&folder);
                self.refused.retain(|(path, _), _| *path != folder);
            }
        }
    }
}

/// A target item ferry wrote with operation `op` in run `run`.
fn copied(
    run: RunId,
    op: OpId,
    content: ContentHash,
    flags: Flags,
    source: SourceLink,
    keyed: Option<Box<Keyed>>,
) -> TargetItem {
    TargetItem {
        content,
        flags,
        origin: Origin::Copied {
            run: u32::try_from(run).unwrap_or(u32::MAX),
            op,
        },
        source: Some(source),
        altered: false,
        keyed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_deletion_done_forgets_the_folder_and_a_refused_one_keeps_it() {
        let mut target = TargetState::default();
        for folder in ["Old", "Full"] {
            target.apply(&Event::WriteIntent {
                op: 1,
                action: Action::CreateFolder {
                    folder: folder.into(),
                },
            });
            target.apply(&Event::WriteDone {
                op: 1,
                id: None,
                at: 0,
            });
        }
        for (op, folder) in [(2, "Old"), (3, "Full")] {
            target.apply(&Event::WriteIntent {
                op,
                action: Action::DeleteFolder {
                    folder: folder.into(),
                },
            });
        }
        target.apply(&Event::WriteDone {
            op: 2,
            id: None,
            at: 0,
        });
        target.apply(&Event::WriteFailed {
            op: 3,
            class: FailureClass::Permanent,
            reason: "Full is kept: it still holds 1 message".into(),
        });
        assert!(!target.has_folder("Old"));
        assert!(target.folders["Full"].created_by_ferry);
        assert!(target.pending.is_empty());
        assert_eq!(target.next_op, 4);
    }
}
