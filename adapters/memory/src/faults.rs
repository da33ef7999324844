//! What the memory store can be told to do wrong, and how it lists changed folders.

/// Probabilities (0.0–1.0) and limits of injected faults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// A call fails with a transient error before doing anything.
    pub error: f64,
    /// A call answers "throttled, retry after 1–5 s" before doing anything.
    pub throttle: f64,
    /// A call never answers (the caller's timeout fires); a write may or may not have landed.
    pub timeout: f64,
    /// A write fails part-way: nothing lands, the caller sees a transient error.
    pub partial_write: f64,
    /// A write lands but its reply is lost: the caller sees a transient error.
    pub lost_reply: f64,
    /// From this call on (counting from 1), every call fails as if the server died.
    pub crash_at_step: Option<u64>,
}

/// How a folder the store cannot read shows ([`MemoryStore::set_unreadable`]); each holds the
/// store's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// The folder listing says so (as Dovecot, whose LIST-STATUS or STATUS refuses the folder
    /// with `NO [SERVERBUG] Internal error occurred`), and its items cannot be listed or read.
    Listed(String),
    /// The folder listing shows it as usual, but its items cannot be listed or read (as a
    /// STATUS that succeeds and an EXAMINE that is refused).
    Items(String),
}

impl Unreadable {
    pub(super) fn words(&self) -> &str {
        match self {
            Unreadable::Listed(words) | Unreadable::Items(words) => words,
        }
    }
}

/// How a memory store lists a folder that changed since the token given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChangeListings {
    /// In full.
    #[default]
    Full,
    /// Items from the token's next UID on in full, the flags of those before, and every UID
    /// before that is gone (whether or not it ever existed), as QRESYNC's VANISHED (EARLIER).
    Changes,
    /// As `Changes`, except that a new item is told among the flags of items seen before:
    /// a listing the caller cannot use, for testing that it lists the folder in full.
    ChangesWithPhantom,
}
