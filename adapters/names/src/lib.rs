//! Folder names as ferry writes them: paths of `/`-separated segments, INBOX in one spelling,
//! and modified UTF-7, the encoding IMAP servers and Dovecot's Maildir++ layout share for
//! non-ASCII names. Shared by the IMAP and Maildir crates (and the tests that compare them).

pub mod mutf7;

/// The one folder every mailbox has, in the spelling ferry uses for it.
pub const INBOX: &str = "INBOX";

/// Whether a folder path is INBOX (any case, as IMAP says).
pub fn is_inbox(folder: &str) -> bool {
    folder.eq_ignore_ascii_case(INBOX)
}
