//! What users do to a memory store between runs: deliver, re-flag, delete, move, rename and
//! recreate folders, and edit items that change in place. None of it is faulty.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_engine::{Flags, NativeId};

use super::{Folder, Item, MemoryStore, StoredItem, create, locate, parse_id};

impl MemoryStore {
    /// Delivers a message; returns its id.
    pub fn deliver(
        &self,
        folder: &str,
        bytes: Vec<u8>,
        flags: Flags,
        date: Option<i64>,
    ) -> NativeId {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let next_validity = &mut inner.next_validity;
        let entry = inner.folders.entry(folder.to_owned()).or_insert_with(|| {
            *next_validity += 1;
            Folder {
                validity: *next_validity - 1,
                next_uid: 1,
                items: BTreeMap::new(),
                spec: ferry_engine::FolderSpec::mail(),
                description: None,
            }
        });
        let uid = entry.next_uid;
        entry.next_uid += 1;
        entry.items.insert(
            uid,
            Item {
                bytes: Arc::new(bytes),
                flags,
                date,
                keyed: None,
            },
        );
        NativeId(format!("{}:{uid}", entry.validity))
    }

    /// Creates an empty folder.
    pub fn user_create_folder(&self, folder: &str) {
        let mut inner = self.lock();
        create(&mut inner, folder, &ferry_engine::FolderSpec::mail());
    }

    /// Replaces a message's flags; whether it exists.
    pub fn user_set_flags(&self, folder: &str, id: &NativeId, flags: Flags) -> bool {
        let mut inner = self.lock();
        match locate(&mut inner, folder, id) {
            Some(item) => {
                item.flags = flags;
                true
            }
            None => false,
        }
    }

    /// Deletes a message (expunge); whether it existed.
    pub fn user_delete(&self, folder: &str, id: &NativeId) -> bool {
        let mut inner = self.lock();
        let Some((validity, uid)) = parse_id(id) else {
            return false;
        };
        inner
            .folders
            .get_mut(folder)
            .filter(|f| f.validity == validity)
            .and_then(|f| f.items.remove(&uid))
            .is_some()
    }

    /// Moves a message to another folder (which is created if missing); its new id.
    pub fn user_move(&self, from: &str, id: &NativeId, to: &str) -> Option<NativeId> {
        let item = {
            let mut inner = self.lock();
            let (validity, uid) = parse_id(id)?;
            inner
                .folders
                .get_mut(from)
                .filter(|f| f.validity == validity)
                .and_then(|f| f.items.remove(&uid))?
        };
        Some(self.deliver(to, item.bytes.as_ref().clone(), item.flags, item.date))
    }

    /// Deletes a folder and everything in it (not INBOX); whether it existed.
    pub fn user_delete_folder(&self, folder: &str) -> bool {
        folder != "INBOX" && self.lock().folders.remove(folder).is_some()
    }

    /// Renames a folder, keeping its UIDVALIDITY and UIDs (as IMAP RENAME does); whether it
    /// happened.
    pub fn user_rename(&self, from: &str, to: &str) -> bool {
        let mut inner = self.lock();
        if from == "INBOX" || inner.folders.contains_key(to) {
            return false;
        }
        match inner.folders.remove(from) {
            Some(folder) => {
                inner.folders.insert(to.to_owned(), folder);
                true
            }
            None => false,
        }
    }

    /// Recreates a folder with the same messages under a new UIDVALIDITY (every id changes).
    pub fn user_recreate(&self, folder: &str) -> bool {
        let mut inner = self.lock();
        let validity = inner.next_validity;
        let Some(entry) = inner.folders.get_mut(folder) else {
            return false;
        };
        let items: Vec<Item> = entry.items.values().cloned().collect();
        entry.validity = validity;
        entry.items = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| (index as u64 + 1, item))
            .collect();
        entry.next_uid = entry.items.len() as u64 + 1;
        inner.next_validity += 1;
        true
    }

    /// Every message: folder → (id, bytes, flags), sorted.
    pub fn contents(&self) -> BTreeMap<String, Vec<StoredItem>> {
        let inner = self.lock();
        inner
            .folders
            .iter()
            .map(|(path, folder)| {
                (
                    path.clone(),
                    folder
                        .items
                        .iter()
                        .map(|(uid, item)| {
                            (
                                NativeId(format!("{}:{uid}", folder.validity)),
                                Arc::clone(&item.bytes),
                                item.flags.clone(),
                            )
                        })
                        .collect(),
                )
            })
            .collect()
    }
}
