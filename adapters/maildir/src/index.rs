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
    /// An empty index with room for `items` messages.
    pub(crate) fn with_capacity(items: usize) -> FolderIndex {
        FolderIndex {
            by_name: HashSet::with_capacity(items),
            others: HashMap::new(),
        }
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
        let mut index = FolderIndex::with_capacity(4);
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
}
