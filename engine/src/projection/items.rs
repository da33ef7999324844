//! The items of one folder as a projection keeps them, by native id, in id order: a compact
//! map for hundreds of thousands of items.
//!
//! A `BTreeMap` spends about as much again as its entries on its nodes (they are half to two
//! thirds full), which made the state of a 100,000-message mailbox cost 500–650 bytes per
//! message. Here the entries live in one sorted `Vec`, exactly as large as they are; new ones
//! gather in a small `BTreeMap` and are merged in once it holds an eighth of the rest (so each
//! entry is moved a bounded number of times on average); a removed entry is marked in a bit set
//! until the next merge. Lookups are a binary search. Iteration, equality, `Debug` and the
//! serialized form are those of the map it stands for: a checkpoint or a snapshot cannot tell.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::NativeId;

/// New entries held apart before they are merged into the sorted ones, at least.
const RECENT_MIN: usize = 64;

/// The items of a folder by native id.
#[derive(Clone)]
pub struct ItemMap<V> {
    /// Sorted by id; an entry whose bit is set in `dead` is removed.
    main: Vec<(NativeId, V)>,
    dead: Vec<u64>,
    /// Entries of `main` not removed.
    live: usize,
    /// Entries not yet in `main` (never also live there).
    recent: BTreeMap<NativeId, V>,
}

impl<V> Default for ItemMap<V> {
    fn default() -> Self {
        ItemMap {
            main: Vec::new(),
            dead: Vec::new(),
            live: 0,
            recent: BTreeMap::new(),
        }
    }
}

impl<V: Clone> ItemMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn is_dead(&self, at: usize) -> bool {
        self.dead
            .get(at / 64)
            .is_some_and(|word| word & (1 << (at % 64)) != 0)
    }

    fn set_dead(&mut self, at: usize, dead: bool) {
        if self.dead.len() <= at / 64 {
            self.dead.resize(at / 64 + 1, 0);
        }
        if dead {
            self.dead[at / 64] |= 1 << (at % 64);
        } else {
            self.dead[at / 64] &= !(1 << (at % 64));
        }
    }

    /// Where `id` is in `main`, live or not.
    fn find(&self, id: &NativeId) -> Result<usize, usize> {
        self.main.binary_search_by(|(key, _)| key.cmp(id))
    }

    /// The live entry of `main` for `id`.
    fn live_at(&self, id: &NativeId) -> Option<usize> {
        self.find(id).ok().filter(|&at| !self.is_dead(at))
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.live + self.recent.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item with this id.
    pub fn get(&self, id: &NativeId) -> Option<&V> {
        match self.live_at(id) {
            Some(at) => Some(&self.main[at].1),
            None => self.recent.get(id),
        }
    }

    /// The item with this id, to change.
    pub fn get_mut(&mut self, id: &NativeId) -> Option<&mut V> {
        match self.live_at(id) {
            Some(at) => Some(&mut self.main[at].1),
            None => self.recent.get_mut(id),
        }
    }

    /// Whether an item has this id.
    pub fn contains_key(&self, id: &NativeId) -> bool {
        self.get(id).is_some()
    }

    /// Sets the item with this id; the one it replaces.
    pub fn insert(&mut self, id: NativeId, value: V) -> Option<V> {
        match self.find(&id) {
            Ok(at) if !self.is_dead(at) => Some(std::mem::replace(&mut self.main[at].1, value)),
            Ok(at) => {
                self.main[at].1 = value;
                self.set_dead(at, false);
                self.live += 1;
                None
            }
            Err(_) => {
                let old = self.recent.insert(id, value);
                if self.recent.len() > RECENT_MIN.max(self.main.len() / 8) {
                    self.merge();
                }
                old
            }
        }
    }

    /// Removes the item with this id; it, if there was one.
    pub fn remove(&mut self, id: &NativeId) -> Option<V> {
        if let Some(value) = self.recent.remove(id) {
            return Some(value);
        }
        let at = self.live_at(id)?;
        self.set_dead(at, true);
        self.live -= 1;
        let value = self.main[at].1.clone();
        if self.live < self.main.len() / 2 && self.main.len() > RECENT_MIN {
            self.merge();
        }
        Some(value)
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Merges the recent entries in and drops the removed ones: `main` exactly as large as it
    /// must be.
    fn merge(&mut self) {
        let mut merged = Vec::with_capacity(self.len());
        let main = std::mem::take(&mut self.main);
        let dead = std::mem::take(&mut self.dead);
        let is_dead = |at: usize| dead.get(at / 64).is_some_and(|w| w & (1 << (at % 64)) != 0);
        let mut old = main
            .into_iter()
            .enumerate()
            .filter(|(at, _)| !is_dead(*at))
            .map(|(_, entry)| entry)
            .peekable();
        let mut new = std::mem::take(&mut self.recent).into_iter().peekable();
        loop {
            let take_old = match (old.peek(), new.peek()) {
                (Some((a, _)), Some((b, _))) => a < b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_old { old.next() } else { new.next() };
            merged.extend(next);
        }
        self.live = merged.len();
        self.main = merged;
    }

    /// Every item, in id order.
    pub fn iter(&self) -> Iter<'_, V> {
        let mut iter = Iter {
            map: self,
            at: 0,
            below: 0,
            recent: self.recent.iter().peekable(),
        };
        iter.below = iter.run_end();
        iter
    }

    /// Every id, in order.
    pub fn keys(&self) -> impl Iterator<Item = &NativeId> + '_ {
        self.iter().map(|(id, _)| id)
    }

    /// Every item, in id order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, value)| value)
    }
}

/// The items of an [`ItemMap`], in id order.
pub struct Iter<'a, V> {
    map: &'a ItemMap<V>,
    at: usize,
    /// The entries of the vector from `at` up to here come before the overlay's next one: they
    /// are yielded without comparing keys (a folder is planned over and over while it is
    /// copied, and its new entries usually sort after the old ones).
    below: usize,
    recent: std::iter::Peekable<std::collections::btree_map::Iter<'a, NativeId, V>>,
}

impl<V> std::fmt::Debug for Iter<'_, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl<V> Iter<'_, V> {
    /// Where the run of vector entries before the overlay's next entry ends: found by galloping
    /// from `at` (a few comparisons for a short run, a binary search's for a long one).
    fn run_end(&mut self) -> usize {
        let rest = &self.map.main[self.at..];
        let Some((next, _)) = self.recent.peek() else {
            return self.map.main.len();
        };
        let mut step = 1;
        while step < rest.len() && rest[step - 1].0 < **next {
            step *= 2;
        }
        let (low, high) = (step / 2, step.min(rest.len()));
        self.at + low + rest[low..high].partition_point(|(id, _)| id < *next)
    }
}

impl<'a, V: Clone> Iterator for Iter<'a, V> {
    type Item = (&'a NativeId, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.at < self.below {
                let at = self.at;
                self.at += 1;
                if self.map.is_dead(at) {
                    continue;
                }
                let (id, value) = &self.map.main[at];
                return Some((id, value));
            }
            // The vector's next entry, if any, comes after the overlay's (keys are unique).
            match self.recent.next() {
                Some(entry) => {
                    self.below = self.run_end();
                    return Some(entry);
                }
                None if self.at < self.map.main.len() => self.below = self.map.main.len(),
                None => return None,
            }
        }
    }
}

impl<'a, V: Clone> IntoIterator for &'a ItemMap<V> {
    type Item = (&'a NativeId, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Iter<'a, V> {
        self.iter()
    }
}

impl<V: Clone> IntoIterator for ItemMap<V> {
    type Item = (NativeId, V);
    type IntoIter = std::vec::IntoIter<(NativeId, V)>;

    fn into_iter(mut self) -> Self::IntoIter {
        self.merge();
        self.main.into_iter()
    }
}

impl<V: Clone> Extend<(NativeId, V)> for ItemMap<V> {
    fn extend<I: IntoIterator<Item = (NativeId, V)>>(&mut self, items: I) {
        for (id, value) in items {
            self.insert(id, value);
        }
    }
}

impl<V: Clone> FromIterator<(NativeId, V)> for ItemMap<V> {
    fn from_iter<I: IntoIterator<Item = (NativeId, V)>>(items: I) -> Self {
        let mut map = ItemMap::new();
        map.extend(items);
        map
    }
}

impl<V: Clone + PartialEq> PartialEq for ItemMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<V: Clone + Eq> Eq for ItemMap<V> {}

impl<V: Clone + std::fmt::Debug> std::fmt::Debug for ItemMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Clone + Serialize> Serialize for ItemMap<V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (id, value) in self {
            map.serialize_entry(id, value)?;
        }
        map.end()
    }
}

impl<'de, V: Clone + Deserialize<'de>> Deserialize<'de> for ItemMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<V>(std::marker::PhantomData<V>);

        impl<'de, V: Clone + Deserialize<'de>> serde::de::Visitor<'de> for Entries<V> {
            type Value = ItemMap<V>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of items by native id")
            }

            // Straight into the sorted vector (a map serialized by `ItemMap` or a `BTreeMap`
            // comes in id order): a checkpoint's largest folder is never held twice, once in
            // B-tree nodes. Entries out of order, which no encoder here writes, are sorted;
            // of two with one id the later wins, as a map's insert would have it.
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<ItemMap<V>, A::Error> {
                let mut main: Vec<(NativeId, V)> =
                    Vec::with_capacity(access.size_hint().unwrap_or(0).min(1 << 16));
                let mut sorted = true;
                while let Some((id, value)) = access.next_entry::<NativeId, V>()? {
                    sorted &= main.last().is_none_or(|(last, _)| *last < id);
                    main.push((id, value));
                }
                if !sorted {
                    main.reverse();
                    main.sort_by(|a, b| a.0.cmp(&b.0));
                    main.dedup_by(|later, kept| later.0 == kept.0);
                }
                main.shrink_to_fit();
                Ok(ItemMap {
                    live: main.len(),
                    main,
                    dead: Vec::new(),
                    recent: BTreeMap::new(),
                })
            }
        }

        deserializer.deserialize_map(Entries(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs encoded as a map, in the order given.
    struct Pairs<'a>(&'a [(NativeId, u32)]);

    impl Serialize for Pairs<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }

    fn id(n: u32) -> NativeId {
        NativeId(format!("{n:06}"))
    }

    #[test]
    fn it_behaves_as_the_map_it_stands_for() {
        // Goal: every operation gives what a BTreeMap gives, whatever the mix. Method: 20,000
        // random operations on both, compared after each.
        let mut rng = fastrand::Rng::with_seed(14);
        let mut map: ItemMap<u32> = ItemMap::new();
        let mut model: BTreeMap<NativeId, u32> = BTreeMap::new();
        for step in 0..20_000u32 {
            let key = id(rng.u32(0..3_000));
            match rng.u8(0..10) {
                0..=4 => assert_eq!(map.insert(key.clone(), step), model.insert(key, step)),
                5..=6 => assert_eq!(map.remove(&key), model.remove(&key)),
                7 => {
                    if let (Some(a), Some(b)) = (map.get_mut(&key), model.get_mut(&key)) {
                        *a += 1;
                        *b += 1;
                    }
                }
                8 => assert_eq!(map.get(&key), model.get(&key)),
                _ => assert_eq!(map.contains_key(&key), model.contains_key(&key)),
            }
            assert_eq!(map.len(), model.len());
            if step % 50 == 0 {
                assert!(map.iter().eq(model.iter()), "step {step}");
            }
        }
        // Then entries after all others, as a folder being copied gets them, some removed.
        for n in 3_000..9_000u32 {
            map.insert(id(n), n);
            model.insert(id(n), n);
            if n % 7 == 0 {
                assert_eq!(map.remove(&id(n / 3)), model.remove(&id(n / 3)));
            }
            if n % 97 == 0 {
                assert!(map.iter().eq(model.iter()), "entry {n}");
            }
        }
        assert!(map.iter().eq(model.iter()));
        let bytes = postcard::to_stdvec(&map).expect("encodes");
        assert_eq!(bytes, postcard::to_stdvec(&model).expect("encodes"));
        let back: ItemMap<u32> = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(back, map);
        // Entries out of order, an id twice: as a map built by inserting them in turn.
        let shuffled: Vec<(NativeId, u32)> = vec![(id(5), 1), (id(2), 2), (id(5), 3), (id(1), 4)];
        let bytes = postcard::to_stdvec(&Pairs(&shuffled)).expect("encodes");
        let back: ItemMap<u32> = postcard::from_bytes(&bytes).expect("decodes");
        let expected: BTreeMap<NativeId, u32> = shuffled.iter().cloned().collect();
        assert!(back.iter().eq(expected.iter()));
        assert_eq!(format!("{map:?}"), format!("{model:?}"));
        let owned: Vec<(NativeId, u32)> = map.clone().into_iter().collect();
        assert_eq!(owned, model.into_iter().collect::<Vec<_>>());
        map.clear();
        assert!(map.is_empty() && map.iter().next().is_none());
    }
}
