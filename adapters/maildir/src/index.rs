//! Where each message of a folder was last seen, by unique name: the store's index, kept
//! compact because it holds every message of every folder a run touches.
//!
//! A message's file name begins with its unique name (`unique:2,FS`), so an entry keeps only
//! the file name and its directory, and is found by the unique name it begins with: about 70
//! bytes a message, where a map from an owned unique name to an owned location took 170.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::info;
use crate::{Location, Sub};

/// Entries the indexes of the folders used last may hold together (the folder used last is
/// kept whatever its size). A copy reads and writes folder after folder: without a bound, the
/// source's indexes would hold an entry for every message of the mailbox until the run ends.
const ENTRIES_MAX: usize = 8_192;

/// The store's indexes: one per folder used lately, the least recently used let go first.
#[derive(Debug, Default)]
pub(crate) struct Indexes {
    folders: HashMap<String, Indexed>,
    /// Counts uses and scans.
    clock: u64,
}

#[derive(Debug)]
struct Indexed {
    index: FolderIndex,
    /// The clock at its last use.
    used: u64,
    /// The clock when its scan began: tells a thread that found it stale whether another
    /// thread's scan began since (and so saw the folder as it is now).
    scanned: u64,
}

impl Indexes {
    /// Where message `id` of the folder `key` was last seen, if that folder is indexed.
    pub(crate) fn get(&mut self, key: &str, id: &str) -> Option<Location> {
        self.clock += 1;
        let indexed = self.folders.get_mut(key)?;
        indexed.used = self.clock;
        indexed.index.get(id)
    }

    /// The clock now (it only moves forward).
    pub(crate) fn now(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// When the scan of the folder `key` began, if it is indexed.
    pub(crate) fn scanned(&self, key: &str) -> Option<u64> {
        self.folders.get(key).map(|indexed| indexed.scanned)
    }

    /// `index` is the folder `key` as scanned from `started` ([`Indexes::now`]) on; folders
    /// used least recently are let go while the indexes hold more than [`ENTRIES_MAX`] entries.
    pub(crate) fn put(&mut self, key: &str, index: FolderIndex, started: u64) {
        self.clock += 1;
        let indexed = Indexed {
            index,
            used: self.clock,
            scanned: started,
        };
        self.folders.insert(key.to_owned(), indexed);
        let mut total: usize = self.folders.values().map(|i| i.index.len()).sum();
        while total > ENTRIES_MAX {
            let Some(oldest) = self
                .folders
                .iter()
                .filter(|(other, _)| other.as_str() != key)
                .min_by_key(|(_, indexed)| indexed.used)
                .map(|(other, _)| other.clone())
            else {
                break;
            };
            if let Some(indexed) = self.folders.remove(&oldest) {
                total -= indexed.index.len();
            }
        }
    }

    /// Message `id` of the folder `key` is at `location` now (or gone), where that folder is
    /// indexed; an unindexed folder is scanned when it is next used.
    pub(crate) fn remember(&mut self, key: &str, id: &str, location: Option<Location>) {
        if let Some(indexed) = self.folders.get_mut(key) {
            match location {
                Some(location) => indexed.index.insert(id, location),
                None => indexed.index.remove(id),
            }
        }
    }

    /// The folder `key` is to be scanned again when next used.
    pub(crate) fn forget(&mut self, key: &str) {
        self.folders.remove(key);
    }
}

/// One folder's index.
#[derive(Debug, Default)]
pub(crate) struct FolderIndex {
    /// Entries found by the unique name their file name begins with.
    by_name: HashSet<Entry>,
    /// Entries under another id than their file name's unique name (none that `items` or
    /// `scan` make; kept so that any id given is remembered as given).
    others: HashMap<String, Location>,
}

#[derive(Debug)]
struct Entry {
    sub: Sub,
    file_name: Box<str>,
}

impl Entry {
    fn unique(&self) -> &str {
        info::split_name(&self.file_name).0
    }
}

impl Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        self.unique()
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.unique() == other.unique()
    }
}

impl Eq for Entry {}

impl Hash for Entry {
    // As the unique name hashes, so that a lookup by `&str` finds it (`Borrow`).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.unique().hash(state);
    }
}

impl FolderIndex {
    /// Messages indexed.
    pub(crate) fn len(&self) -> usize {
        self.by_name.len() + self.others.len()
    }

    /// Where message `id` was last seen.
    pub(crate) fn get(&self, id: &str) -> Option<Location> {
        match self.by_name.get(id) {
            Some(entry) => Some(Location {
                sub: entry.sub,
                file_name: entry.file_name.to_string(),
            }),
            None => self.others.get(id).cloned(),
        }
    }

    /// Message `id` is at `location` now.
    pub(crate) fn insert(&mut self, id: &str, location: Location) {
        self.remove(id);
        if info::split_name(&location.file_name).0 == id {
            self.by_name.insert(Entry {
                sub: location.sub,
                file_name: location.file_name.into_boxed_str(),
            });
        } else {
            self.others.insert(id.to_owned(), location);
        }
    }

    /// Message `id` is gone.
    pub(crate) fn remove(&mut self, id: &str) {
        self.by_name.remove(id);
        self.others.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(sub: Sub, file_name: &str) -> Location {
        Location {
            sub,
            file_name: file_name.to_owned(),
        }
    }

    #[test]
    fn finds_by_unique_name_whatever_the_flags_and_remembers_other_ids_as_given() {
        // Goal: the index answers as a map from id to location would.
        let mut index = FolderIndex::default();
        index.insert("1.a.host", at(Sub::New, "1.a.host"));
        index.insert("2.b.host", at(Sub::Cur, "2.b.host:2,S"));
        assert_eq!(index.get("1.a.host"), Some(at(Sub::New, "1.a.host")));
        assert_eq!(index.get("2.b.host"), Some(at(Sub::Cur, "2.b.host:2,S")));
        // Renamed by a flag change, moved from new/.
        index.insert("2.b.host", at(Sub::Cur, "2.b.host:2,FS"));
        index.insert("1.a.host", at(Sub::Cur, "1.a.host:2,"));
        assert_eq!(index.get("2.b.host"), Some(at(Sub::Cur, "2.b.host:2,FS")));
        assert_eq!(index.get("1.a.host"), Some(at(Sub::Cur, "1.a.host:2,")));
        // An id that is not its file's unique name.
        index.insert("cur/3.c.host:2,S", at(Sub::Cur, "3.c.host:2,S"));
        assert_eq!(index.get("3.c.host"), None);
        assert_eq!(
            index.get("cur/3.c.host:2,S"),
            Some(at(Sub::Cur, "3.c.host:2,S"))
        );
        index.remove("2.b.host");
        index.remove("cur/3.c.host:2,S");
        assert_eq!(index.get("2.b.host"), None);
        assert_eq!(index.get("cur/3.c.host:2,S"), None);
        assert_eq!(index.get("1.a.host"), Some(at(Sub::Cur, "1.a.host:2,")));
        assert_eq!(index.get("1"), None);
    }

    fn folder_of(names: std::ops::Range<usize>) -> FolderIndex {
        let mut index = FolderIndex::default();
        for n in names {
            let name = format!("{n}.x.host");
            index.insert(&name, at(Sub::Cur, &format!("{name}:2,S")));
        }
        index
    }

    #[test]
    fn indexes_let_the_least_recently_used_folders_go_beyond_their_bound() {
        // Goal: the indexes of a store hold about ENTRIES_MAX entries whatever the mailbox
        // holds, the folder used last whatever its size, and a folder let go answers nothing
        // (so the store scans it again) rather than something stale.
        let half = ENTRIES_MAX / 2;
        let mut indexes = Indexes::default();
        let started = indexes.now();
        indexes.put("a", folder_of(0..half), started);
        let started = indexes.now();
        indexes.put("b", folder_of(half..2 * half), started);
        let found = indexes.get("a", "1.x.host");
        assert_eq!(found, Some(at(Sub::Cur, "1.x.host:2,S")));
        // "b" is used less recently than "a" now: it goes when "c" comes.
        let a_scanned = indexes.scanned("a");
        let started = indexes.now();
        indexes.put("c", folder_of(0..10), started);
        assert_eq!(indexes.scanned("b"), None);
        assert_eq!(indexes.scanned("a"), a_scanned);
        assert!(indexes.get("c", "3.x.host").is_some());
        // A folder above the bound on its own is kept, alone.
        let started = indexes.now();
        indexes.put("big", folder_of(0..ENTRIES_MAX + 1), started);
        assert_eq!((indexes.scanned("a"), indexes.scanned("c")), (None, None));
        assert!(indexes.get("big", "7.x.host").is_some());
        // A scan that began after a thread found the index stale is told apart from one that
        // began before (see `MaildirStore::refresh`).
        let stale_at = indexes.now();
        assert!(indexes.scanned("big").is_some_and(|scan| scan < stale_at));
        let started = indexes.now();
        indexes.put("big", folder_of(0..5), started);
        assert!(indexes.scanned("big").is_some_and(|scan| scan > stale_at));
        // What a store's own writes tell is kept in an indexed folder, and not made into a
        // partial index of one that is not.
        indexes.remember("big", "9.y.host", Some(at(Sub::New, "9.y.host")));
        assert_eq!(
            indexes.get("big", "9.y.host"),
            Some(at(Sub::New, "9.y.host"))
        );
        indexes.remember("gone", "9.y.host", Some(at(Sub::New, "9.y.host")));
        assert_eq!(indexes.scanned("gone"), None);
        indexes.forget("big");
        assert_eq!(indexes.get("big", "1.x.host"), None);
    }
}
