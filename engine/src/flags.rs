//! Message flags as ferry carries them between stores: the IMAP system flags (RFC 9051 §2.3.2)
//! and keywords. `\Recent` is never carried: it is session state, not a property of a message.

use serde::{Deserialize, Serialize};

/// One IMAP system flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SystemFlag {
    /// `\Seen`.
    Seen,
    /// `\Answered`.
    Answered,
    /// `\Flagged`.
    Flagged,
    /// `\Deleted`.
    Deleted,
    /// `\Draft`.
    Draft,
}

impl SystemFlag {
    /// Every system flag, in bit order.
    pub const ALL: [SystemFlag; 5] = [
        SystemFlag::Seen,
        SystemFlag::Answered,
        SystemFlag::Flagged,
        SystemFlag::Deleted,
        SystemFlag::Draft,
    ];

    const fn bit(self) -> u8 {
        match self {
            SystemFlag::Seen => 1,
            SystemFlag::Answered => 2,
            SystemFlag::Flagged => 4,
            SystemFlag::Deleted => 8,
            SystemFlag::Draft => 16,
        }
    }

    /// The IMAP spelling, e.g. `\Seen`.
    pub const fn imap_name(self) -> &'static str {
        match self {
            SystemFlag::Seen => "\\Seen",
            SystemFlag::Answered => "\\Answered",
            SystemFlag::Flagged => "\\Flagged",
            SystemFlag::Deleted => "\\Deleted",
            SystemFlag::Draft => "\\Draft",
        }
    }
}

/// A complete flag set: system flags and keywords (`$Forwarded`, `$Junk`, user labels).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Flags {
    system: u8,
    keywords: Keywords,
}

/// A flag set's keywords, sorted and without repeats: none (the common case) costs one pointer,
/// and one keyword a few dozen bytes, where a `BTreeSet` would cost 24 bytes empty and a
/// 280-byte node for the first. Serialized, compared and shown as the set itself, so the
/// journal's encoding is that of a `BTreeSet<String>`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(clippy::box_collection)] // the point: 8 bytes inline, not a Vec's 24
struct Keywords(Option<Box<Vec<Box<str>>>>);

impl Keywords {
    fn list(&self) -> &[Box<str>] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    fn insert(&mut self, keyword: String) {
        let list = self.0.get_or_insert_with(Box::default);
        if let Err(at) = list.binary_search_by(|k| k.as_ref().cmp(keyword.as_str())) {
            list.insert(at, keyword.into_boxed_str());
            list.shrink_to_fit();
        }
    }

    fn remove(&mut self, keyword: &str) -> bool {
        let Some(list) = &mut self.0 else {
            return false;
        };
        let Ok(at) = list.binary_search_by(|k| k.as_ref().cmp(keyword)) else {
            return false;
        };
        list.remove(at);
        if list.is_empty() {
            self.0 = None;
        }
        true
    }
}

impl std::fmt::Debug for Keywords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.list()).finish()
    }
}

impl Serialize for Keywords {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.list())
    }
}

impl<'de> Deserialize<'de> for Keywords {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Keywords, D::Error> {
        let mut list: Vec<Box<str>> = Vec::deserialize(deserializer)?;
        list.sort_unstable();
        list.dedup();
        list.shrink_to_fit();
        Ok(Keywords((!list.is_empty()).then(|| Box::new(list))))
    }
}

impl Flags {
    /// No flags.
    pub fn new() -> Flags {
        Flags::default()
    }

    /// Whether `flag` is set.
    pub fn has(&self, flag: SystemFlag) -> bool {
        self.system & flag.bit() != 0
    }

    /// Sets or clears `flag`.
    pub fn set(&mut self, flag: SystemFlag, on: bool) {
        if on {
            self.system |= flag.bit();
        } else {
            self.system &= !flag.bit();
        }
    }

    /// With `flag` set.
    #[must_use]
    pub fn with(mut self, flag: SystemFlag) -> Flags {
        self.set(flag, true);
        self
    }

    /// Adds a keyword.
    pub fn add_keyword(&mut self, keyword: impl Into<String>) {
        self.keywords.insert(keyword.into());
    }

    /// With a keyword added.
    #[must_use]
    pub fn with_keyword(mut self, keyword: impl Into<String>) -> Flags {
        self.add_keyword(keyword);
        self
    }

    /// Removes a keyword; whether it was there.
    pub fn remove_keyword(&mut self, keyword: &str) -> bool {
        self.keywords.remove(keyword)
    }

    /// The keywords, sorted.
    pub fn keywords(&self) -> impl Iterator<Item = &str> + '_ {
        self.keywords.list().iter().map(|k| &**k)
    }

    /// The system flags that are set, in bit order.
    pub fn system(&self) -> impl Iterator<Item = SystemFlag> + '_ {
        SystemFlag::ALL.into_iter().filter(|flag| self.has(*flag))
    }
}

impl std::fmt::Display for Flags {
    /// IMAP style: `\Seen \Flagged $Forwarded`; `-` for none.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for name in self
            .system()
            .map(|flag| -> &str { flag.imap_name() })
            .chain(self.keywords())
        {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(name)?;
            first = false;
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn set_clear_and_display() {
        let mut flags = Flags::new()
            .with(SystemFlag::Seen)
            .with_keyword("$Forwarded");
        flags.set(SystemFlag::Flagged, true);
        assert_eq!(flags.to_string(), "\\Seen \\Flagged $Forwarded");
        flags.set(SystemFlag::Seen, false);
        assert!(!flags.has(SystemFlag::Seen));
        assert!(flags.remove_keyword("$Forwarded"));
        assert_eq!(flags.to_string(), "\\Flagged");
        assert_eq!(Flags::new().to_string(), "-");
    }

    #[test]
    fn keywords_encode_as_a_set_and_no_keywords_equal_an_emptied_set() {
        let mut emptied = Flags::new().with_keyword("$Junk");
        assert!(emptied.remove_keyword("$Junk"));
        assert_eq!(emptied, Flags::new());
        let flags = Flags::new()
            .with(SystemFlag::Seen)
            .with_keyword("Projekt-α");
        // The journal's encoding of version 1: the system bits, then a set of strings.
        #[derive(Serialize)]
        struct Version1 {
            system: u8,
            keywords: BTreeSet<String>,
        }
        let old = Version1 {
            system: 1,
            keywords: ["Projekt-α".to_owned()].into(),
        };
        let bytes = postcard::to_stdvec(&flags).expect("encodes");
        assert_eq!(bytes, postcard::to_stdvec(&old).expect("encodes"));
        assert_eq!(
            postcard::from_bytes::<Flags>(&bytes).expect("decodes"),
            flags
        );
        assert_eq!(std::mem::size_of::<Flags>(), 16);
    }

    #[test]
    fn keywords_behave_as_a_set() {
        // Goal: whatever the order of insertions and removals, the keywords, their order, their
        // encoding and the comparison of two flag sets are those of a BTreeSet.
        let mut rng = fastrand::Rng::with_seed(3);
        let names = ["$Junk", "$Forwarded", "Projekt-α", "a", "b", "$MDNSent"];
        let mut sets: Vec<(Flags, BTreeSet<String>)> = Vec::new();
        for _ in 0..200 {
            let mut flags = Flags::new();
            let mut model = BTreeSet::new();
            for _ in 0..rng.usize(0..8) {
                let name = names[rng.usize(0..names.len())];
                if rng.bool() {
                    flags.add_keyword(name);
                    model.insert(name.to_owned());
                } else {
                    assert_eq!(flags.remove_keyword(name), model.remove(name));
                }
            }
            assert!(flags.keywords().eq(model.iter().map(String::as_str)));
            assert_eq!(
                postcard::to_stdvec(&flags).expect("encodes"),
                postcard::to_stdvec(&(0_u8, &model)).expect("encodes")
            );
            assert_eq!(format!("{:?}", flags.keywords), format!("{model:?}"));
            sets.push((flags, model));
        }
        for (a, model_a) in &sets {
            for (b, model_b) in sets.iter().take(40) {
                assert_eq!(a.cmp(b), model_a.cmp(model_b));
                assert_eq!(a == b, model_a == model_b);
            }
        }
    }
}
