//! Message flags as ferry carries them between stores: the IMAP system flags (RFC 9051 §2.3.2)
//! and keywords. `\Recent` is never carried: it is session state, not a property of a message.

use std::collections::BTreeSet;

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

/// A flag set's keywords: none (the common case) costs one pointer, not an empty set's 24
/// bytes, in every item ferry knows. Serialized, compared and shown as the set itself, so the
/// journal's encoding is that of a `BTreeSet<String>`.
#[derive(Clone, Default)]
#[allow(clippy::box_collection)] // the point: 8 bytes inline instead of an empty set's 24
struct Keywords(Option<Box<BTreeSet<String>>>);

/// The empty set every flag set without keywords shows.
static NO_KEYWORDS: BTreeSet<String> = BTreeSet::new();

impl Keywords {
    fn set(&self) -> &BTreeSet<String> {
        self.0.as_deref().unwrap_or(&NO_KEYWORDS)
    }

    fn insert(&mut self, keyword: String) {
        self.0.get_or_insert_with(Box::default).insert(keyword);
    }

    fn remove(&mut self, keyword: &str) -> bool {
        let Some(set) = &mut self.0 else {
            return false;
        };
        let removed = set.remove(keyword);
        if set.is_empty() {
            self.0 = None;
        }
        removed
    }
}

impl std::fmt::Debug for Keywords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.set().fmt(f)
    }
}

impl PartialEq for Keywords {
    fn eq(&self, other: &Keywords) -> bool {
        self.set() == other.set()
    }
}

impl Eq for Keywords {}

impl PartialOrd for Keywords {
    fn partial_cmp(&self, other: &Keywords) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Keywords {
    fn cmp(&self, other: &Keywords) -> std::cmp::Ordering {
        self.set().cmp(other.set())
    }
}

impl std::hash::Hash for Keywords {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.set().hash(state);
    }
}

impl Serialize for Keywords {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.set().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Keywords {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Keywords, D::Error> {
        let set = BTreeSet::<String>::deserialize(deserializer)?;
        Ok(Keywords((!set.is_empty()).then(|| Box::new(set))))
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
        self.keywords.set().iter().map(String::as_str)
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
}
