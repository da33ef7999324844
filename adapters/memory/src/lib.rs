//! An in-process mail store with IMAP-like semantics (folders with a UIDVALIDITY, items by UID,
//! APPEND returning the new UID) and seeded, deterministic fault injection: transient errors,
//! timeouts, throttling, writes that fail before landing ("partial" writes, which an atomic
//! store never shows), replies lost after a write landed, and a crash at step N after which
//! the store refuses every call. With a seeded RNG and tokio's paused clock it is the
//! simulator's world. A folder can also be made unreadable, as a server that cannot open it
//! ([`MemoryStore::set_unreadable`]).
//!
//! Besides the [`Store`] trait it has the operations a user makes between runs (deliver,
//! re-flag, delete, move, rename, recreate a folder), which never fail.

mod faults;
mod keyed;
mod limits;
mod user;
pub use faults::{ChangeListings, Faults, Unreadable};
pub use keyed::KeyedItem;
pub use limits::{CallFigures, ServerLimits};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use ferry_engine::body::read_back;
use ferry_engine::journal::{ContentHash, ContentKey};
use ferry_engine::{
    AppendProbe, Body, Capabilities, Flags, FolderInfo, FolderSpec, ItemInfo, Listing, NativeId,
    NewItem, Store, StoreError, StoreResult, Stored,
};

#[derive(Debug, Clone)]
struct Item {
    bytes: Arc<Vec<u8>>,
    flags: Flags,
    date: Option<i64>,
    /// For an item that changes in place (an event, a contact): its key, kind and version.
    keyed: Option<keyed::ItemKey>,
}

#[derive(Debug, Clone)]
struct Folder {
    validity: u64,
    next_uid: u64,
    items: BTreeMap<u64, Item>,
    /// What it holds (mail unless made a collection).
    spec: ferry_engine::FolderSpec,
    /// A collection's description.
    description: Option<String>,
}

#[derive(Debug)]
struct Inner {
    folders: BTreeMap<String, Folder>,
    next_validity: u64,
    rng: fastrand::Rng,
    faults: Faults,
    steps: u64,
    max_message_bytes: Option<u64>,
    /// Whether `list_items` answers with changes since a token.
    change_tokens: bool,
    /// With `change_tokens`: whether a folder that changed lists only what may have changed,
    /// as IMAP QRESYNC does, instead of in full.
    change_listings: ChangeListings,
    append_many: bool,
    moves: bool,
    moves_refused: bool,
    /// Folders that cannot be read, and how they show.
    unreadable: BTreeMap<String, Unreadable>,
    /// The server's limits and what it saw of the calls ([`MemoryStore::set_limits`]).
    gate: limits::Gate,
    /// Flag changes and deletions asked for: (in batches, one by one).
    update_calls: (u64, u64),
    /// The kinds of item it holds besides messages ([`MemoryStore::set_kinds`]).
    kinds: Vec<ferry_engine::Kind>,
    /// The version the next write of a keyed item gets: versions are never reused.
    next_version: u64,
    /// Whether keyed items are told with their version (off: a store without ETags, whose
    /// conditional writes cannot name one).
    versions: bool,
}

/// The in-memory store.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    name: String,
    inner: Arc<Mutex<Inner>>,
}

/// Removes item `id` of `folder`, if it is there.
fn remove(inner: &mut Inner, folder: &str, id: &NativeId) {
    if let Some((validity, uid)) = parse_id(id)
        && let Some(entry) = inner.folders.get_mut(folder)
        && entry.validity == validity
    {
        entry.items.remove(&uid);
    }
}

/// An item of a batch answered "throttled" on its own ([`Faults::inner_throttle`]).
fn inner_throttled(inner: &mut Inner) -> StoreResult<()> {
    if inner.rng.f64() < inner.faults.inner_throttle {
        return Err(StoreError::Throttled {
            retry_after_ms: Some(inner.rng.u64(100..=2_000)),
            reason: "too many requests in the batch (simulated)".into(),
        });
    }
    Ok(())
}

/// One stored message as [`MemoryStore::contents`] shows it: id, bytes, flags.
pub type StoredItem = (NativeId, Arc<Vec<u8>>, Flags);

impl MemoryStore {
    /// An empty store with an INBOX, named `memory:<name>`, faults seeded by `seed`.
    pub fn new(name: &str, seed: u64) -> MemoryStore {
        let mut folders = BTreeMap::new();
        folders.insert(
            "INBOX".to_owned(),
            Folder {
                validity: 1,
                next_uid: 1,
                items: BTreeMap::new(),
                spec: ferry_engine::FolderSpec::mail(),
                description: None,
            },
        );
        MemoryStore {
            name: name.to_owned(),
            inner: Arc::new(Mutex::new(Inner {
                folders,
                next_validity: 2,
                rng: fastrand::Rng::with_seed(seed),
                faults: Faults::default(),
                steps: 0,
                change_tokens: false,
                change_listings: ChangeListings::Full,
                append_many: false,
                moves: false,
                moves_refused: false,
                unreadable: BTreeMap::new(),
                max_message_bytes: None,
                gate: limits::Gate::default(),
                update_calls: (0, 0),
                kinds: Vec::new(),
                next_version: 1,
                versions: true,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the fault plan; the step counter restarts.
    pub fn set_faults(&self, faults: Faults) {
        let mut inner = self.lock();
        inner.faults = faults;
        inner.steps = 0;
    }

    /// Refuses messages larger than this.
    pub fn set_max_message_bytes(&self, max: Option<u64>) {
        self.lock().max_message_bytes = max;
    }

    /// Whether `list_items` answers with changes since a token (like CONDSTORE) or always in
    /// full.
    pub fn set_change_tokens(&self, on: bool) {
        self.lock().change_tokens = on;
    }

    /// How a folder that changed since the token given is listed (with change tokens).
    pub fn set_change_listings(&self, listings: ChangeListings) {
        self.lock().change_listings = listings;
    }

    /// Whether the executor may store several messages per call ([`Store::append_many`], one
    /// by one here, each with its own faults, as a MULTIAPPEND whose reply is lost would be).
    pub fn set_append_many(&self, on: bool) {
        self.lock().append_many = on;
    }

    /// Whether the store moves items between its folders itself ([`Store::move_item`], as
    /// IMAP MOVE does).
    pub fn set_moves(&self, on: bool) {
        self.lock().moves = on;
    }

    /// Whether every move is refused for good (as a server refusing MOVE into a folder).
    pub fn set_moves_refused(&self, on: bool) {
        self.lock().moves_refused = on;
    }

    /// Makes a folder unreadable (every listing or read of its items is refused, for good,
    /// in these words), or readable again with `None`. Not a fault of the plan: it lasts
    /// until changed, as a folder a server cannot open does.
    pub fn set_unreadable(&self, folder: &str, how: Option<Unreadable>) {
        let mut inner = self.lock();
        match how {
            Some(how) => {
                inner.unreadable.insert(folder.to_owned(), how);
            }
            None => {
                inner.unreadable.remove(folder);
            }
        }
    }

    /// Flag changes and deletions asked for since the store was made: (batches, one by one).
    pub fn update_calls(&self) -> (u64, u64) {
        self.lock().update_calls
    }

    /// Calls made since the fault plan was set.
    pub fn steps(&self) -> u64 {
        self.lock().steps
    }
}

/// A folder's change token: its UIDVALIDITY, UIDNEXT and a hash (FNV-1a) of every UID with its
/// flags and version. Message bytes never change under a UID, and a keyed item's change gets a
/// new version, so this changes exactly when the folder does.
fn folder_token(folder: &Folder) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (uid, item) in &folder.items {
        let flags = item.flags.to_string();
        let version = item.keyed.as_ref().map_or(0, |keyed| keyed.version);
        for byte in uid
            .to_le_bytes()
            .iter()
            .chain(flags.as_bytes())
            .chain(&version.to_le_bytes())
            .chain(b"|")
        {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{}:{}:{hash:016x}", folder.validity, folder.next_uid)
}

/// An item as a listing tells it.
fn info(id: NativeId, item: &Item, versions: bool) -> ItemInfo {
    ItemInfo {
        id,
        size: item.bytes.len() as u64,
        flags: item.flags.clone(),
        date: item.date,
        keyed: item
            .keyed
            .as_ref()
            .map(|keyed| Box::new(keyed.told(versions))),
        content: None,
    }
}

fn parse_id(id: &NativeId) -> Option<(u64, u64)> {
    let (validity, uid) = id.0.split_once(':')?;
    Some((validity.parse().ok()?, uid.parse().ok()?))
}

fn create(inner: &mut Inner, folder: &str, spec: &ferry_engine::FolderSpec) {
    if !inner.folders.contains_key(folder) {
        let validity = inner.next_validity;
        inner.next_validity += 1;
        inner.folders.insert(
            folder.to_owned(),
            Folder {
                validity,
                next_uid: 1,
                items: BTreeMap::new(),
                spec: spec.clone(),
                description: None,
            },
        );
    }
}

fn locate<'a>(inner: &'a mut Inner, folder: &str, id: &NativeId) -> Option<&'a mut Item> {
    let (validity, uid) = parse_id(id)?;
    inner
        .folders
        .get_mut(folder)
        .filter(|f| f.validity == validity)
        .and_then(|f| f.items.get_mut(&uid))
}

fn missing_folder(folder: &str) -> StoreError {
    StoreError::NotFound(format!("no folder {folder}"))
}

/// The refusal of a folder made unreadable, if it is.
fn refused_folder(inner: &Inner, folder: &str) -> StoreResult<()> {
    match inner.unreadable.get(folder) {
        Some(how) => Err(StoreError::Permanent(format!(
            "{folder}: {} (simulated)",
            how.words()
        ))),
        None => Ok(()),
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn describe(&self) -> String {
        format!("memory:{}", self.name)
    }

    fn capabilities(&self) -> Capabilities {
        let inner = self.lock();
        Capabilities {
            change_tokens: inner.change_tokens,
            keywords: true,
            rename: true,
            max_message_bytes: inner.max_message_bytes,
            append_many: inner.append_many,
            fetch_many: inner.append_many,
            // Listed in groups, as before the capability was told (the simulation's runs).
            list_many: true,
            update_many: inner.append_many,
            moves: inner.moves,
            remote: false,
            limits: inner.gate.limits.declared_limits(),
            // Messages always, and what it was told to hold besides.
            kinds: if inner.kinds.is_empty() {
                Vec::new()
            } else {
                std::iter::once(ferry_engine::Kind::Message)
                    .chain(inner.kinds.iter().copied())
                    .collect()
            },
            global_ids: false,
        }
    }

    async fn list_folders(&self) -> StoreResult<Vec<FolderInfo>> {
        self.read(|inner| {
            let unreadable = &inner.unreadable;
            Ok(inner
                .folders
                .iter()
                .map(|(path, folder)| {
                    let refused = match unreadable.get(path) {
                        Some(Unreadable::Listed(words)) => {
                            Some(format!("STATUS {path}: {words} (simulated)"))
                        }
                        _ => None,
                    };
                    FolderInfo {
                        path: path.clone(),
                        special_use: None,
                        validity: refused.is_none().then_some(folder.validity),
                        unreadable: refused,
                        spec: folder.spec.clone(),
                        description: folder.description.clone(),
                    }
                })
                .collect())
        })
        .await
    }

    async fn list_items(&self, folder: &str, since: Option<&str>) -> StoreResult<Listing> {
        self.read(|inner| {
            refused_folder(inner, folder)?;
            let entry = inner
                .folders
                .get(folder)
                .ok_or_else(|| missing_folder(folder))?;
            let token = folder_token(entry);
            if inner.change_tokens && since == Some(token.as_str()) {
                return Ok(Listing::Changes {
                    changed: Vec::new(),
                    flags: Vec::new(),
                    gone: Vec::new(),
                    token: Some(token),
                });
            }
            let since_next = since.and_then(|since| {
                let mut parts = since.split(':');
                let validity: u64 = parts.next()?.parse().ok()?;
                let next_uid: u64 = parts.next()?.parse().ok()?;
                (validity == entry.validity).then_some(next_uid)
            });
            if let (true, Some(since_next)) = (
                inner.change_tokens && inner.change_listings != ChangeListings::Full,
                since_next,
            ) {
                let id = |uid: u64| NativeId(format!("{}:{uid}", entry.validity));
                let mut changed = Vec::new();
                let mut flags = Vec::new();
                for (&uid, item) in &entry.items {
                    // An item that changes in place is told with its version, always.
                    if uid < since_next && item.keyed.is_none() {
                        flags.push((id(uid), item.flags.clone()));
                    } else {
                        changed.push(info(id(uid), item, inner.versions));
                    }
                }
                if inner.change_listings == ChangeListings::ChangesWithPhantom
                    && let Some(unseen) = changed.pop()
                {
                    // Told as if seen before: the caller cannot know it.
                    flags.push((unseen.id, unseen.flags));
                }
                let gone = (1..since_next)
                    .filter(|uid| !entry.items.contains_key(uid))
                    .map(id)
                    .collect();
                return Ok(Listing::Changes {
                    changed,
                    flags,
                    gone,
                    token: Some(token),
                });
            }
            Ok(Listing::Full {
                items: entry
                    .items
                    .iter()
                    .map(|(uid, item)| {
                        info(
                            NativeId(format!("{}:{uid}", entry.validity)),
                            item,
                            inner.versions,
                        )
                    })
                    .collect(),
                token: inner.change_tokens.then_some(token),
            })
        })
        .await
    }

    async fn fetch(&self, folder: &str, id: &NativeId) -> StoreResult<Body> {
        self.read(|inner| {
            refused_folder(inner, folder)?;
            locate(inner, folder, id)
                .map(|item| Body::from(item.bytes.as_slice()))
                .ok_or_else(|| StoreError::NotFound(format!("{folder}/{id}")))
        })
        .await
    }

    async fn create_folder(&self, folder: &str, spec: &FolderSpec) -> StoreResult<()> {
        self.write(|inner| {
            keyed::may_create(inner, folder, spec)?;
            create(inner, folder, spec);
            Ok(())
        })
        .await
    }

    async fn set_collection(
        &self,
        folder: &str,
        from: &ferry_engine::CollectionProps,
        to: &ferry_engine::CollectionProps,
    ) -> StoreResult<()> {
        self.write(|inner| keyed::set_props(inner, folder, from, to))
            .await
    }

    async fn create_item(&self, folder: &str, item: NewItem<'_>) -> StoreResult<Stored> {
        keyed::create_item(self, folder, item).await
    }

    async fn update(
        &self,
        folder: &str,
        id: &NativeId,
        item: NewItem<'_>,
        expect: Option<&str>,
    ) -> StoreResult<Stored> {
        keyed::update(self, folder, id, item, expect).await
    }

    async fn delete_if(
        &self,
        folder: &str,
        id: &NativeId,
        expect: Option<&str>,
    ) -> StoreResult<()> {
        keyed::delete_if(self, folder, id, expect).await
    }

    async fn find_key(&self, folder: &str, key: &str) -> StoreResult<Option<ItemInfo>> {
        keyed::find_key(self, folder, key).await
    }

    async fn rename_folder(&self, from: &str, to: &str) -> StoreResult<()> {
        self.write(|inner| {
            if !inner.folders.contains_key(from) && inner.folders.contains_key(to) {
                return Ok(());
            }
            if inner.folders.contains_key(to) {
                return Err(StoreError::Permanent(format!("{to} exists already")));
            }
            let folder = inner
                .folders
                .remove(from)
                .ok_or_else(|| missing_folder(from))?;
            inner.folders.insert(to.to_owned(), folder);
            Ok(())
        })
        .await
    }

    async fn delete_folder(&self, folder: &str) -> StoreResult<()> {
        self.write(|inner| {
            if folder == "INBOX" {
                return Err(StoreError::Permanent("INBOX is never deleted".into()));
            }
            match inner.folders.get(folder).map(|entry| entry.items.len()) {
                // Gone already: a repeated deletion.
                None => Ok(()),
                Some(0) => {
                    inner.folders.remove(folder);
                    Ok(())
                }
                Some(held) => Err(StoreError::Permanent(format!(
                    "{folder} is kept: it still holds {held} message{}",
                    if held == 1 { "" } else { "s" }
                ))),
            }
        })
        .await
    }

    async fn prepare_appends(&self, folder: &str, count: usize) -> StoreResult<Vec<AppendProbe>> {
        self.read(|inner| {
            let entry = inner
                .folders
                .get(folder)
                .ok_or_else(|| missing_folder(folder))?;
            // UIDNEXT before the batch: every append of the batch lands at or above it.
            let probe = AppendProbe(format!("{}:{}", entry.validity, entry.next_uid));
            Ok(vec![probe; count])
        })
        .await
    }

    async fn append(
        &self,
        folder: &str,
        message: &Body,
        flags: &Flags,
        date: Option<i64>,
        _probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>> {
        if let Some(max) = self.lock().max_message_bytes
            && message.len() > max
        {
            return Err(StoreError::Permanent(format!(
                "message of {} bytes exceeds the {max}-byte limit",
                message.len()
            )));
        }
        let size = message.len();
        let message = message
            .to_vec()
            .map_err(|e| StoreError::Transient(read_back(&e)))?;
        self.write_sized(size, |inner| {
            let entry = inner
                .folders
                .get_mut(folder)
                .ok_or_else(|| missing_folder(folder))?;
            let uid = entry.next_uid;
            entry.next_uid += 1;
            entry.items.insert(
                uid,
                Item {
                    bytes: Arc::new(message),
                    flags: flags.clone(),
                    date,
                    keyed: None,
                },
            );
            Ok(Some(NativeId(format!("{}:{uid}", entry.validity))))
        })
        .await
    }

    async fn set_flags(&self, folder: &str, id: &NativeId, flags: &Flags) -> StoreResult<()> {
        self.write(|inner| {
            inner.update_calls.1 += 1;
            let item = locate(inner, folder, id)
                .ok_or_else(|| StoreError::NotFound(format!("{folder}/{id}")))?;
            item.flags = flags.clone();
            Ok(())
        })
        .await
    }

    async fn set_flags_many(
        &self,
        folder: &str,
        items: &[(&NativeId, &Flags)],
    ) -> StoreResult<Vec<StoreResult<()>>> {
        self.write(|inner| {
            inner.update_calls.0 += 1;
            Ok(items
                .iter()
                .map(|(id, flags)| {
                    inner_throttled(inner)?;
                    let item = locate(inner, folder, id)
                        .ok_or_else(|| StoreError::NotFound(format!("{folder}/{id}")))?;
                    item.flags = (*flags).clone();
                    Ok(())
                })
                .collect())
        })
        .await
    }

    async fn delete_many(
        &self,
        folder: &str,
        ids: &[&NativeId],
    ) -> StoreResult<Vec<StoreResult<()>>> {
        self.write(|inner| {
            inner.update_calls.0 += 1;
            Ok(ids
                .iter()
                .map(|id| {
                    inner_throttled(inner)?;
                    remove(inner, folder, id);
                    Ok(())
                })
                .collect())
        })
        .await
    }

    async fn delete(&self, folder: &str, id: &NativeId) -> StoreResult<()> {
        self.write(|inner| {
            inner.update_calls.1 += 1;
            remove(inner, folder, id);
            Ok(())
        })
        .await
    }

    async fn move_item(
        &self,
        from: &str,
        id: &NativeId,
        to: &str,
        _probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>> {
        self.write(|inner| {
            if inner.moves_refused {
                return Err(StoreError::Permanent(format!(
                    "moving {from}/{id} to {to}: refused (simulated)"
                )));
            }
            let gone = || StoreError::NotFound(format!("{from}/{id}"));
            let (validity, uid) = parse_id(id).ok_or_else(gone)?;
            if !inner.folders.contains_key(to) {
                return Err(missing_folder(to));
            }
            let source = inner.folders.get_mut(from).ok_or_else(gone)?;
            if source.validity != validity {
                return Err(gone());
            }
            let item = source.items.remove(&uid).ok_or_else(gone)?;
            let target = inner
                .folders
                .get_mut(to)
                .ok_or_else(|| missing_folder(to))?;
            let uid = target.next_uid;
            target.next_uid += 1;
            target.items.insert(uid, item);
            Ok(Some(NativeId(format!("{}:{uid}", target.validity))))
        })
        .await
    }

    async fn find_appended(
        &self,
        folder: &str,
        probe: &AppendProbe,
        content: &ContentHash,
        key: &ContentKey,
    ) -> StoreResult<Vec<NativeId>> {
        let probe = NativeId(probe.0.clone());
        self.read(|inner| {
            let Some((validity, from_uid)) = parse_id(&probe) else {
                return Ok(Vec::new());
            };
            let entry = inner
                .folders
                .get(folder)
                .ok_or_else(|| missing_folder(folder))?;
            if entry.validity != validity {
                // The folder was recreated since: nothing from before can be told apart.
                return Ok(Vec::new());
            }
            Ok(entry
                .items
                .range(from_uid..)
                .filter(|(_, item)| key.hash(&item.bytes) == *content)
                .map(|(uid, _)| NativeId(format!("{validity}:{uid}")))
                .collect())
        })
        .await
    }

    async fn flush(&self) -> StoreResult<()> {
        self.read(|_| Ok(())).await
    }
}

#[cfg(test)]
mod tests;
