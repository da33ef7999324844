//! The journal's one error type. Every variant is something a caller can act on: retry, ask for
//! another key, refuse to run, or report a damaged record by its sequence number.

use std::path::PathBuf;

/// What is wrong with one stored record, found while checking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// No record is stored under this sequence number, but later ones are: a record was dropped.
    Missing,
    /// The record is too short to be a sealed record at all.
    Short {
        /// Its length in bytes.
        len: usize,
    },
    /// The record's envelope names a format this version of ferry does not know.
    UnknownEnvelope {
        /// The envelope version byte found.
        version: u8,
    },
    /// The record was sealed for another position and is a byte-for-byte copy of the record
    /// stored there: a duplicated record.
    Duplicate {
        /// The sequence number it was sealed for (and where its original still is).
        of: u64,
    },
    /// The record was sealed for another position: records were moved or swapped.
    Misplaced {
        /// The sequence number it was sealed for.
        sealed_for: u64,
    },
    /// The record does not authenticate at this position with this journal's key and chain:
    /// its bytes were altered, the record before it was replaced, or it was spliced in from
    /// another journal.
    Unauthentic,
    /// A record is stored after the last record the journal's head vouches for.
    BeyondHead {
        /// The sequence number the head vouches for.
        head: u64,
    },
    /// The last record is not the one the journal's head vouches for.
    HeadMismatch,
    /// A key in the record store is not an 8-byte sequence number.
    BadKey,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing => f.write_str("record missing (dropped from the middle)"),
            Problem::Short { len } => write!(f, "record too short to be sealed ({len} bytes)"),
            Problem::UnknownEnvelope { version } => {
                write!(f, "unknown record envelope version {version} (altered, or written by a newer ferry)")
            }
            Problem::Duplicate { of } => write!(f, "duplicate of record {of}"),
            Problem::Misplaced { sealed_for } => {
                write!(f, "record sealed for position {sealed_for} found here (moved, swapped or altered)")
            }
            Problem::Unauthentic => f.write_str(
                "record does not authenticate: altered, preceded by a replaced record, or spliced in from another journal",
            ),
            Problem::BeyondHead { head } => {
                write!(f, "record stored after the committed head (seq {head})")
            }
            Problem::HeadMismatch => f.write_str("last record is not the one the journal head vouches for"),
            Problem::BadKey => f.write_str("malformed record key"),
        }
    }
}

/// The journal's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error outside the store (creating the directory, reading a key file).
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The storage engine's files are damaged: a checksum failed, a file is cut short or is
    /// not what the store wrote. Nothing may be appended to such a journal.
    #[error(
        "the journal at {path} is damaged: {what}; ferry wrote nothing to it (see `ferry journal set-aside`)"
    )]
    Damaged {
        /// The journal directory.
        path: PathBuf,
        /// What is damaged, in words.
        what: String,
    },
    /// The storage engine failed (an I/O error: a full disk, refused access).
    #[error("journal storage at {path}: {message}")]
    Storage {
        /// The journal directory.
        path: PathBuf,
        /// The storage engine's description.
        message: String,
    },
    /// Another process has this journal open.
    #[error("journal at {path} is locked by another process (is another ferry running on it?)")]
    Locked {
        /// The journal directory.
        path: PathBuf,
    },
    /// There is no journal at this path.
    #[error("no journal at {path}")]
    NotFound {
        /// The path looked at.
        path: PathBuf,
    },
    /// A journal already exists at this path.
    #[error("a journal already exists at {path}")]
    AlreadyExists {
        /// The path looked at.
        path: PathBuf,
    },
    /// The directory holds a store, but not a ferry journal (or one whose files were cut short
    /// before its header: a journal is created whole, header first).
    #[error(
        "{path} is not a ferry journal: it holds a store without a journal header (another program's data, or a journal whose files were cut short)"
    )]
    NotAJournal {
        /// The path looked at.
        path: PathBuf,
    },
    /// The journal was written in a format this version cannot read.
    #[error(
        "journal format {found} is not supported (this ferry reads format {supported}); use a newer ferry"
    )]
    UnsupportedFormat {
        /// The format found in the header.
        found: u16,
        /// The format this version writes and reads.
        supported: u16,
    },
    /// The header (key parameters, wrapped key) is damaged.
    #[error("journal header is corrupt: {reason}")]
    HeaderCorrupt {
        /// What is wrong.
        reason: String,
    },
    /// The passphrase or key file does not open this journal. The journal itself is intact.
    #[error(
        "wrong passphrase or key file: it does not unlock this journal (the journal itself is intact)"
    )]
    WrongKey,
    /// The journal is protected by the other kind of key.
    #[error("this journal is protected by {expected}; give that instead")]
    KeyKindMismatch {
        /// What the journal expects, in words.
        expected: &'static str,
    },
    /// The head record (which vouches for the last record) is damaged.
    #[error("journal head is corrupt: {reason}")]
    HeadCorrupt {
        /// What is wrong.
        reason: String,
    },
    /// A record in the journal is damaged; nothing after it can be trusted.
    #[error("journal record {seq}: {problem}")]
    Corrupt {
        /// The sequence number of the first bad record.
        seq: u64,
        /// What is wrong with it.
        problem: Problem,
    },
    /// Records are missing at the end: the head vouches for more records than are stored.
    #[error(
        "{missing} records missing at the end (the journal vouches for {head} records, the last one stored is {last_present})"
    )]
    Truncated {
        /// How many records are missing.
        missing: u64,
        /// The sequence number of the last record still stored (0 if none).
        last_present: u64,
        /// The sequence number the head vouches for.
        head: u64,
    },
    /// An authenticated record does not decode as the expected event type.
    #[error(
        "journal record {seq} is authentic but does not decode ({reason}); was it written by a newer ferry?"
    )]
    Decode {
        /// The record's sequence number.
        seq: u64,
        /// The decoder's message.
        reason: String,
    },
    /// An event could not be encoded. This is a bug in the event type.
    #[error("event could not be encoded: {reason}")]
    Encode {
        /// The encoder's message.
        reason: String,
    },
    /// A key or cost parameter is unusable.
    #[error("invalid key parameters: {reason}")]
    InvalidKey {
        /// What is wrong.
        reason: String,
    },
    /// A flush to disk failed earlier. The kernel may have dropped the unflushed pages, so
    /// nothing written since can be trusted to be on disk: the journal refuses further appends.
    /// Reopen it (a new process) to continue from what is provably durable.
    #[error(
        "journal is poisoned by an earlier failed flush to disk; restart to recover from what is durable"
    )]
    Poisoned,
    /// The journal was opened to be checked ([`crate::Journal::open_to_check`]) and is not
    /// written to until it is opened for appending ([`crate::Journal::writable`]).
    #[error("the journal at {path} is open for checking only and is not written to")]
    CheckOnly {
        /// The journal's directory.
        path: std::path::PathBuf,
    },
}

/// The journal's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn storage(path: &std::path::Path, error: fjall::Error) -> Error {
        use fjall::Error as F;
        use fjall::LsmError as L;
        let damaged = |what: String| Error::Damaged {
            path: path.to_path_buf(),
            what,
        };
        match error {
            F::Locked => Error::Locked {
                path: path.to_path_buf(),
            },
            F::Poisoned => Error::Poisoned,
            F::Io(error) | F::Storage(L::Io(error))
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::InvalidData
                        | std::io::ErrorKind::InvalidInput
                ) =>
            {
                damaged(format!(
                    "one of its files is cut short or garbled ({error})"
                ))
            }
            F::Io(error) | F::Storage(L::Io(error)) => Error::Storage {
                path: path.to_path_buf(),
                message: format!("I/O error: {error}"),
            },
            F::Storage(L::ChecksumMismatch { .. }) => {
                damaged("a block of its record tables (under keyspaces/) fails its checksum".into())
            }
            F::JournalRecovery(problem) => damaged(format!(
                "its write-ahead file (journals/) is damaged before its end ({problem:?})"
            )),
            F::Storage(L::Decompress(_)) | F::Decompress(_) => {
                damaged("a block of its tables does not decompress".into())
            }
            F::Storage(other) => damaged(format!(
                "its table files are not what the store wrote ({})",
                describe(&other)
            )),
            other => damaged(format!(
                "its files are not what the store wrote ({})",
                describe(&other)
            )),
        }
    }

    /// Whether this is damage to what is stored (exit 3), as opposed to an I/O problem or a
    /// wrong key.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            Error::Damaged { .. }
                | Error::Corrupt { .. }
                | Error::Truncated { .. }
                | Error::HeaderCorrupt { .. }
                | Error::HeadCorrupt { .. }
                | Error::NotAJournal { .. }
        )
    }
}

/// A storage error's words without the `Debug` dump fjall's `Display` gives.
fn describe(error: &dyn std::fmt::Debug) -> String {
    let text = format!("{error:?}");
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .take(6)
        .collect::<Vec<_>>()
        .join(" ")
}
