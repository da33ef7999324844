//! One IMAP connection with pipelining: any number of tagged commands in flight, each answered
//! with its own [`Done`]. This module owns the values the rest of the crate sees (commands as
//! [`Piece`]s, what to collect, completions, untagged data); the work is split in three:
//!
//! - `machine` — the connection's protocol state as a plain value, sans I/O: commands are
//!   submitted to it, received bytes are fed to it with the time they came, and it is asked
//!   what to send, which commands completed and when it must be looked at again. It uses no
//!   tokio, no socket, no channel and no clock, so every behaviour below is unit-tested there
//!   (`tests`, with transcripts recorded from Dovecot 2.3 and Courier 5 in `conn/transcripts/`).
//! - `driver` — [`Conn`], the thin tokio side: a writer task and a reader task that move bytes
//!   between the socket and the machine and sleep until its deadline.
//! - `convert` — imap-codec's parsed responses turned into the owned [`Untagged`] and
//!   [`DoneCode`] values below.
//!
//! Routing, as the machine does it:
//! - a tagged status completes the command with that tag (one no one waits for is ignored);
//! - an untagged FETCH that carries a message body goes to the command that asked for that UID
//!   (pipelined `UID FETCH`es are answered in any order, and servers may run them in parallel);
//! - any other untagged response goes to the oldest command that collects everything; callers
//!   only submit such commands while they hold the connection alone (see `gate` in the pool),
//!   so nothing else can claim it.
//!
//! Commands go out in the order they are submitted, several per write when they queue up; a
//! synchronising literal (no LITERAL+) waits for the server's `+`. When the connection breaks,
//! the server says BYE, or it stays silent too long while commands wait, every waiting command
//! fails with [`ConnError`] and the connection is dead; the pool opens another.

mod convert;
mod driver;
mod machine;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use ferry_engine::Body;
use tokio::io::{AsyncRead, AsyncWrite};

pub(crate) use driver::Conn;

/// The largest single response ferry accepts (a message body plus its FETCH line).
pub(crate) const MAX_RESPONSE_BYTES: u32 = 1 << 30;

/// A byte stream ferry talks IMAP over: TCP, TLS, or TLS inside STARTTLS.
pub(crate) trait Wire: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Wire for T {}

/// Why a command got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ConnError(pub String);

/// A server response that is not a command's completion, reduced to what ferry uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Untagged {
    Capability(Vec<String>),
    List {
        attributes: Vec<String>,
        delimiter: Option<char>,
        mailbox: Vec<u8>,
    },
    Status {
        mailbox: Vec<u8>,
        items: StatusItems,
    },
    Fetch(Box<FetchItem>),
    Vanished {
        ranges: Vec<(u32, u32)>,
    },
    Exists(u32),
    Search(Vec<u32>),
    /// A response code in an untagged OK/NO (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, ...).
    Code(DoneCode),
    Bye(String),
    Namespace {
        prefix: Vec<u8>,
        delimiter: Option<char>,
    },
    /// What an ENABLE enabled, in capitals.
    Enabled(Vec<String>),
    Other,
}

/// `STATUS` (or `SELECT`) figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StatusItems {
    pub messages: Option<u32>,
    pub uid_next: Option<u32>,
    pub uid_validity: Option<u32>,
    pub highest_modseq: Option<u64>,
}

/// One FETCH response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FetchItem {
    pub uid: Option<u32>,
    pub flags: Option<Vec<String>>,
    pub size: Option<u32>,
    /// INTERNALDATE in milliseconds since the epoch.
    pub date: Option<i64>,
    pub modseq: Option<u64>,
    pub body: Option<Vec<u8>>,
    /// Where `body` starts in the message, for a partial fetch (`BODY[]<origin>`).
    pub origin: Option<u32>,
}

/// The response codes ferry acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DoneCode {
    AppendUid {
        validity: u32,
        uid: u32,
    },
    /// CAPABILITY sent with a status (after login, Dovecot does).
    Capability(Vec<String>),
    /// APPENDUID of a MULTIAPPEND: the new UIDs in the order of the messages.
    AppendUids {
        validity: u32,
        uids: Vec<u32>,
    },
    /// COPYUID of a COPY or MOVE: the destination's UIDVALIDITY, the UIDs moved and their new
    /// UIDs, in corresponding order.
    CopyUid {
        validity: u32,
        source: Vec<u32>,
        destination: Vec<u32>,
    },
    UidValidity(u32),
    UidNext(u32),
    HighestModSeq(u64),
    NoModSeq,
    PermanentFlags(Vec<String>),
    TryCreate,
    TooBig,
    OverQuota,
    /// Any other code, as its name in capitals (`LIMIT`, `UNAVAILABLE`, `ALREADYEXISTS`, ...).
    Named(String),
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    No,
    Bad,
}

/// A command's completion and the untagged responses routed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Done {
    pub outcome: Outcome,
    pub code: Option<DoneCode>,
    pub text: String,
    pub data: Vec<Untagged>,
}

impl Done {
    /// The response code's name, for classifying failures.
    pub fn code_name(&self) -> Option<&str> {
        match &self.code {
            Some(DoneCode::Named(name)) => Some(name),
            Some(DoneCode::TryCreate) => Some("TRYCREATE"),
            Some(DoneCode::TooBig) => Some("TOOBIG"),
            Some(DoneCode::OverQuota) => Some("OVERQUOTA"),
            _ => None,
        }
    }
}

/// Which untagged responses a command wants.
#[derive(Debug, Clone)]
pub(crate) enum Collect {
    /// Everything not claimed by a body fetch (the caller holds the connection alone).
    All,
    /// FETCH responses carrying a body for these UIDs.
    Bodies(BTreeSet<u32>),
    /// Nothing.
    Nothing,
}

/// A piece of an encoded command.
#[derive(Debug)]
pub(crate) enum Piece {
    /// Bytes to send as they are (the tag is prepended to the first).
    Text(Vec<u8>),
    /// A literal's bytes after its `{n}` announcement; `sync` when the server must say `+` first.
    /// A spooled message is written as it is read back, piece by piece.
    Literal { data: Body, sync: bool },
}
