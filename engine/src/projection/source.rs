//! The source as ferry last saw it: folders and, per folder, every item's content hash, size,
//! flags and date, keyed by native id. Because it remembers content hashes, a later run reads
//! only the bytes of items it has not seen.

use std::collections::BTreeMap;

use crate::event::{ContentHash, Event, Millis, NativeId, Side, SpecialUse};
use crate::flags::Flags;
use crate::item::{FolderSpec, Keyed};
use crate::projection::Projection;
use crate::projection::items::ItemMap;

/// One source item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceItem {
    /// Keyed hash of its bytes.
    pub content: ContentHash,
    /// Size in bytes.
    pub size: u64,
    /// Its flags.
    pub flags: Flags,
    /// Internal date.
    pub date: ItemDate,
    /// Its stable key, version and kind, for an item that changes in place (boxed: a message
    /// pays one pointer for it).
    pub keyed: Option<Box<Keyed>>,
}

/// An internal date or none, in the 8 bytes of the date alone (an `Option<Millis>` takes 16):
/// `i64::MIN`, a date 292 million years before 1970, stands for none. Shown and serialized as
/// the `Option<Millis>` it stands for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ItemDate(Millis);

impl ItemDate {
    /// No date.
    pub const NONE: ItemDate = ItemDate(Millis::MIN);

    /// The date, if there is one.
    pub fn get(self) -> Option<Millis> {
        (self != ItemDate::NONE).then_some(self.0)
    }
}

impl From<Option<Millis>> for ItemDate {
    /// `None` for none; a date at the very minimum, which no store gives, moves up by 1 ms.
    fn from(date: Option<Millis>) -> ItemDate {
        date.map_or(ItemDate::NONE, |at| ItemDate(at.max(Millis::MIN + 1)))
    }
}

impl std::fmt::Debug for ItemDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl serde::Serialize for ItemDate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for ItemDate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ItemDate, D::Error> {
        Option::<Millis>::deserialize(deserializer).map(ItemDate::from)
    }
}

/// One source folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceFolder {
    /// Its role.
    pub special_use: Option<crate::event::SpecialUse>,
    /// UIDVALIDITY or the equivalent.
    pub validity: Option<u64>,
    /// Items by native id.
    pub items: ItemMap<SourceItem>,
    /// Items that could not be read at the last try, with the reason.
    pub unreadable: BTreeMap<NativeId, String>,
    /// The change token of the last complete listing.
    pub token: Option<String>,
    /// Whether a listing has completed since the folder was (re)seen.
    pub listed: bool,
    /// What it holds and its properties (a mail folder unless a `CollectionSeen` said).
    pub spec: FolderSpec,
    /// A collection's description (a `CollectionDescribed`).
    pub description: Option<String>,
}

impl SourceFolder {
    /// A collection's properties that ferry carries to its target collection.
    pub fn props(&self) -> crate::item::CollectionProps {
        crate::item::CollectionProps::of(&self.spec, self.description.as_deref())
    }
}

/// The source projection.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceState {
    /// Folders present on the source, by path.
    pub folders: BTreeMap<String, SourceFolder>,
    /// Folders that disappeared and whose content might have reappeared under another name
    /// (a rename), with their last contents. Forgotten when a run completes.
    pub vanished: BTreeMap<String, Vec<ContentHash>>,
    /// UIDVALIDITY changes seen: (folder, old, new).
    pub validity_changes: Vec<(String, Option<u64>, Option<u64>)>,
}

impl SourceState {
    /// The folder's special use, when known.
    pub fn special_use(&self, folder: &str) -> Option<SpecialUse> {
        self.folders.get(folder).and_then(|f| f.special_use)
    }
}

impl Projection for SourceState {
    fn apply(&mut self, event: &Event) {
        match event {
            Event::Batch(events) => events.iter().for_each(|event| self.apply(event)),
            Event::FolderSeen {
                side: Side::Source,
                folder,
                special_use,
                validity,
            } => {
                let entry = self.folders.entry(folder.clone()).or_default();
                if entry.validity != *validity && entry.validity.is_some() {
                    // Every native id lost its meaning: forget the items; the observer lists
                    // them again and the planner re-matches them by content.
                    self.validity_changes
                        .push((folder.clone(), entry.validity, *validity));
                    entry.items.clear();
                    entry.unreadable.clear();
                    entry.token = None;
                    entry.listed = false;
                }
                entry.validity = *validity;
                entry.special_use = *special_use;
                self.vanished.remove(folder);
            }
            Event::FolderGone {
                side: Side::Source,
                folder,
            } => {
                if let Some(gone) = self.folders.remove(folder) {
                    let contents = gone.items.values().map(|item| item.content).collect();
                    self.vanished.insert(folder.clone(), contents);
                }
            }
            Event::ItemSeen {
                side: Side::Source,
                folder,
                id,
                content,
                size,
                flags,
                date,
            } => {
                let entry = self.folders.entry(folder.clone()).or_default();
                entry.unreadable.remove(id);
                entry.items.insert(
                    id.clone(),
                    SourceItem {
                        content: *content,
                        size: *size,
                        flags: flags.clone(),
                        date: ItemDate::from(*date),
                        keyed: None,
                    },
                );
            }
            Event::ItemKeyed {
                side: Side::Source,
                folder,
                id,
                key,
                version,
                kind,
            } => {
                if let Some(item) = self
                    .folders
                    .get_mut(folder)
                    .and_then(|f| f.items.get_mut(id))
                {
                    item.keyed = Some(Box::new(Keyed {
                        key: key.clone(),
                        version: version.clone(),
                        kind: *kind,
                    }));
                }
            }
            Event::CollectionSeen {
                side: Side::Source,
                folder,
                spec,
            } => {
                self.folders.entry(folder.clone()).or_default().spec = spec.clone();
            }
            Event::CollectionDescribed {
                side: Side::Source,
                folder,
                description,
            } => {
                self.folders.entry(folder.clone()).or_default().description = description.clone();
            }
            Event::FlagsSeen {
                side: Side::Source,
                folder,
                id,
                flags,
            } => {
                if let Some(item) = self
                    .folders
                    .get_mut(folder)
                    .and_then(|f| f.items.get_mut(id))
                {
                    item.flags = flags.clone();
                }
            }
            Event::ItemGone {
                side: Side::Source,
                folder,
                id,
            } => {
                if let Some(entry) = self.folders.get_mut(folder) {
                    entry.items.remove(id);
                    entry.unreadable.remove(id);
                }
            }
            Event::ItemUnreadable {
                side: Side::Source,
                folder,
                id,
                reason,
            } => {
                // An item read before keeps its known content: a read that fails now must not
                // make its copy on the target look orphaned.
                let entry = self.folders.entry(folder.clone()).or_default();
                entry.unreadable.insert(id.clone(), reason.clone());
            }
            Event::FolderListed {
                side: Side::Source,
                folder,
                token,
            } => {
                let entry = self.folders.entry(folder.clone()).or_default();
                entry.token = token.clone();
                entry.listed = true;
            }
            Event::FolderUnreadable {
                side: Side::Source,
                folder,
                ..
            } => {
                // Not listed this time: no deletions are inferred from it until it is.
                if let Some(entry) = self.folders.get_mut(folder) {
                    entry.listed = false;
                }
            }
            Event::RunEnded { outcome, .. } => {
                if matches!(
                    outcome,
                    crate::event::RunOutcome::Completed
                        | crate::event::RunOutcome::CompletedWithFailures
                ) {
                    self.vanished.clear();
                }
            }
            _ => {}
        }
    }
}
