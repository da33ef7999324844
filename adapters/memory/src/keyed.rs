//! Items that change in place (events, contacts, tasks, notes), as a CalDAV/CardDAV server or
//! Microsoft Graph keeps them: each has a stable key, unique within its collection, and a
//! version that every write changes (an ETag). A create is refused where the key is taken
//! (`If-None-Match: *`), an update or a deletion where the version is not the one named
//! (`If-Match`, HTTP 412). Every call meets the fault plan like any other write: a reply lost
//! after the update committed included.
//!
//! Besides the store calls, what users do: create collections, put items, edit them (at the
//! same size too), delete them.

use std::sync::Arc;

use ferry_engine::body::read_back;
use ferry_engine::item::{CollectionProp, CollectionProps};
use ferry_engine::{
    Flags, FolderSpec, ItemInfo, Keyed, Kind, NativeId, NewItem, StoreError, StoreResult, Stored,
};

use super::{Folder, Inner, Item, MemoryStore, create, info, missing_folder, parse_id};

/// An item's key, kind and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ItemKey {
    pub(super) key: String,
    pub(super) kind: Kind,
    pub(super) version: u64,
}

impl ItemKey {
    /// As a listing tells it (without its version, for a store without them).
    pub(super) fn told(&self, versions: bool) -> Keyed {
        Keyed {
            key: self.key.clone(),
            version: versions.then(|| version_text(self.version)),
            kind: self.kind,
        }
    }
}

fn version_text(version: u64) -> String {
    format!("\"v{version}\"")
}

/// Whether the store may create a folder of this kind.
pub(super) fn may_create(inner: &Inner, folder: &str, spec: &FolderSpec) -> StoreResult<()> {
    let holds = |kind| inner.kinds.contains(&kind);
    let accepted = spec.kind == ferry_engine::FolderKind::Mail
        || [
            Kind::Event,
            Kind::Task,
            Kind::Contact,
            Kind::Note,
            Kind::Journal,
        ]
        .into_iter()
        .any(|kind| spec.accepts(kind) && holds(kind));
    if accepted {
        Ok(())
    } else {
        Err(StoreError::Permanent(format!(
            "{folder}: this store holds no {} (simulated)",
            spec.kind.name()
        )))
    }
}

/// The uid and item with key `key` in `folder`.
fn by_key<'a>(folder: &'a Folder, key: &str) -> Option<(u64, &'a Item)> {
    folder
        .items
        .iter()
        .find(|(_, item)| item.keyed.as_ref().is_some_and(|k| k.key == key))
        .map(|(uid, item)| (*uid, item))
}

fn id_of(folder: &Folder, uid: u64) -> NativeId {
    NativeId(format!("{}:{uid}", folder.validity))
}

/// Inserts a keyed item as a new uid, with a fresh version; its id and version.
fn insert(inner: &mut Inner, folder: &str, key: &str, kind: Kind, bytes: Vec<u8>) -> Stored {
    let version = inner.next_version;
    inner.next_version += 1;
    let entry = inner
        .folders
        .get_mut(folder)
        .unwrap_or_else(|| unreachable!("the caller made sure {folder} exists"));
    let uid = entry.next_uid;
    entry.next_uid += 1;
    entry.items.insert(
        uid,
        Item {
            bytes: Arc::new(bytes),
            flags: Flags::new(),
            date: None,
            keyed: Some(ItemKey {
                key: key.to_owned(),
                kind,
                version,
            }),
        },
    );
    Stored {
        id: id_of(entry, uid),
        version: Some(version_text(version)),
    }
}

/// Replaces the bytes of item `uid` of `folder` in place, with a fresh version.
fn replace(inner: &mut Inner, folder: &str, uid: u64, bytes: Vec<u8>) -> Option<Stored> {
    let version = inner.next_version;
    inner.next_version += 1;
    let entry = inner.folders.get_mut(folder)?;
    let id = id_of(entry, uid);
    let item = entry.items.get_mut(&uid)?;
    item.bytes = Arc::new(bytes);
    if let Some(keyed) = &mut item.keyed {
        keyed.version = version;
    }
    Some(Stored {
        id,
        version: Some(version_text(version)),
    })
}

/// The uid of keyed item `id` of `folder` and its version text, if it is there.
fn locate_keyed(inner: &Inner, folder: &str, id: &NativeId) -> StoreResult<Option<(u64, String)>> {
    let entry = inner
        .folders
        .get(folder)
        .ok_or_else(|| missing_folder(folder))?;
    let Some((validity, uid)) = parse_id(id) else {
        return Ok(None);
    };
    if entry.validity != validity {
        return Ok(None);
    }
    Ok(entry.items.get(&uid).map(|item| {
        let version = item.keyed.as_ref().map_or(0, |k| k.version);
        (uid, version_text(version))
    }))
}

/// Refuses a write whose expected version is not the item's.
fn expecting(folder: &str, id: &NativeId, have: &str, expect: Option<&str>) -> StoreResult<()> {
    match expect {
        Some(expect) if expect != have => Err(StoreError::Conflict(format!(
            "{folder}/{id} is at version {have}, not {expect} (simulated 412)"
        ))),
        _ => Ok(()),
    }
}

pub(super) async fn create_item(
    store: &MemoryStore,
    folder: &str,
    item: NewItem<'_>,
) -> StoreResult<Stored> {
    let size = item.bytes.len();
    let bytes = item
        .bytes
        .to_vec()
        .map_err(|e| StoreError::Transient(read_back(&e)))?;
    store
        .write_sized(size, |inner| {
            let entry = inner
                .folders
                .get(folder)
                .ok_or_else(|| missing_folder(folder))?;
            if !entry.spec.accepts(item.kind) || !inner.kinds.contains(&item.kind) {
                return Err(StoreError::Permanent(format!(
                    "{folder} holds no {} (simulated)",
                    item.kind.plural()
                )));
            }
            if let Some((uid, _)) = by_key(entry, item.key) {
                return Err(StoreError::Conflict(format!(
                    "{folder} holds {} under key {} already (simulated 412)",
                    id_of(entry, uid),
                    item.key
                )));
            }
            let mut stored = insert(inner, folder, item.key, item.kind, bytes);
            if !inner.versions {
                stored.version = None;
            }
            Ok(stored)
        })
        .await
}

pub(super) async fn update(
    store: &MemoryStore,
    folder: &str,
    id: &NativeId,
    item: NewItem<'_>,
    expect: Option<&str>,
) -> StoreResult<Stored> {
    let size = item.bytes.len();
    let bytes = item
        .bytes
        .to_vec()
        .map_err(|e| StoreError::Transient(read_back(&e)))?;
    store
        .write_sized(size, |inner| {
            let (uid, have) = locate_keyed(inner, folder, id)?
                .ok_or_else(|| StoreError::NotFound(format!("{folder}/{id}")))?;
            expecting(folder, id, &have, expect)?;
            let mut stored = replace(inner, folder, uid, bytes)
                .ok_or_else(|| StoreError::NotFound(format!("{folder}/{id}")))?;
            if !inner.versions {
                stored.version = None;
            }
            Ok(stored)
        })
        .await
}

pub(super) async fn delete_if(
    store: &MemoryStore,
    folder: &str,
    id: &NativeId,
    expect: Option<&str>,
) -> StoreResult<()> {
    store
        .write(|inner| {
            inner.update_calls.1 += 1;
            let Some((uid, have)) = locate_keyed(inner, folder, id)? else {
                return Ok(());
            };
            expecting(folder, id, &have, expect)?;
            if let Some(entry) = inner.folders.get_mut(folder) {
                entry.items.remove(&uid);
            }
            Ok(())
        })
        .await
}

pub(super) async fn find_key(
    store: &MemoryStore,
    folder: &str,
    key: &str,
) -> StoreResult<Option<ItemInfo>> {
    store
        .read(|inner| {
            let entry = inner
                .folders
                .get(folder)
                .ok_or_else(|| missing_folder(folder))?;
            Ok(by_key(entry, key).map(|(uid, item)| info(id_of(entry, uid), item, inner.versions)))
        })
        .await
}

/// One keyed item as [`MemoryStore::keyed_contents`] shows it: key, bytes, version.
pub type KeyedItem = (String, Arc<Vec<u8>>, String);

impl MemoryStore {
    /// Whether keyed items are told with a version (on by default; off: a store without
    /// ETags, whose writes cannot be conditional).
    pub fn set_versions(&self, on: bool) {
        self.lock().versions = on;
    }

    /// Which kinds of item besides messages the store holds (none by default: a mail store).
    pub fn set_kinds(&self, kinds: Vec<Kind>) {
        self.lock().kinds = kinds;
    }

    /// Creates an empty collection (a calendar, an address book) with these properties.
    pub fn user_create_collection(&self, folder: &str, spec: FolderSpec) {
        let mut inner = self.lock();
        create(&mut inner, folder, &spec);
    }

    /// Puts a keyed item: a new one if the collection has none with `key`, else the one there
    /// edited in place (same id, new version). Its id. The collection is created (as a mail
    /// folder) if missing.
    pub fn user_put(&self, folder: &str, key: &str, kind: Kind, bytes: Vec<u8>) -> NativeId {
        let mut inner = self.lock();
        create(&mut inner, folder, &FolderSpec::mail());
        let existing = inner
            .folders
            .get(folder)
            .and_then(|entry| by_key(entry, key))
            .map(|(uid, _)| uid);
        match existing.and_then(|uid| replace(&mut inner, folder, uid, bytes.clone())) {
            Some(stored) => stored.id,
            None => insert(&mut inner, folder, key, kind, bytes).id,
        }
    }

    /// Deletes the keyed item with `key`; whether it existed.
    pub fn user_delete_key(&self, folder: &str, key: &str) -> bool {
        let mut inner = self.lock();
        let Some(entry) = inner.folders.get_mut(folder) else {
            return false;
        };
        let uid = by_key(entry, key).map(|(uid, _)| uid);
        uid.and_then(|uid| entry.items.remove(&uid)).is_some()
    }

    /// The keyed items of `folder`, in id order: (key, bytes, version).
    pub fn keyed_contents(&self, folder: &str) -> Vec<KeyedItem> {
        let inner = self.lock();
        inner
            .folders
            .get(folder)
            .map(|entry| {
                entry
                    .items
                    .values()
                    .filter_map(|item| {
                        let keyed = item.keyed.as_ref()?;
                        Some((
                            keyed.key.clone(),
                            Arc::clone(&item.bytes),
                            version_text(keyed.version),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `Store::set_collection`: the properties that differ, each only from `from`.
pub(crate) fn set_props(
    inner: &mut Inner,
    folder: &str,
    from: &CollectionProps,
    to: &CollectionProps,
) -> StoreResult<()> {
    let entry = inner
        .folders
        .get_mut(folder)
        .ok_or_else(|| StoreError::NotFound(format!("collection {folder}")))?;
    let now = CollectionProps::of(&entry.spec, entry.description.as_deref());
    for prop in from
        .changes(to, &now, folder)
        .map_err(StoreError::Conflict)?
    {
        let value = to.get(prop).map(str::to_owned);
        match prop {
            CollectionProp::DisplayName => entry.spec.display_name = value,
            CollectionProp::Color => entry.spec.color = value,
            CollectionProp::Description => entry.description = value,
        }
    }
    Ok(())
}

impl MemoryStore {
    /// Sets a collection's properties as a user would (nothing if it does not exist).
    pub fn user_set_props(&self, folder: &str, props: &CollectionProps) {
        if let Some(entry) = self.lock().folders.get_mut(folder) {
            entry.spec.display_name = props.display_name.clone();
            entry.spec.color = props.color.clone();
            entry.description = props.description.clone();
        }
    }

    /// A collection's properties, if it exists.
    pub fn props(&self, folder: &str) -> Option<CollectionProps> {
        self.lock()
            .folders
            .get(folder)
            .map(|entry| CollectionProps::of(&entry.spec, entry.description.as_deref()))
    }

    /// A folder's kind and properties, if it exists.
    pub fn spec(&self, folder: &str) -> Option<FolderSpec> {
        self.lock()
            .folders
            .get(folder)
            .map(|entry| entry.spec.clone())
    }
}
