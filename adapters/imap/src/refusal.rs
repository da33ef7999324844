//! Refusals: what a server's NO or BAD means as a [`StoreError`] kind (by its response code,
//! RFC 5530, and its words: `[OVERQUOTA]` a full store, `[UNAVAILABLE]`, `[LIMIT]`, `[INUSE]`
//! throttling, `[TRYCREATE]` not found...), what a lost connection (its BYE) means, and when a
//! refusal is one folder's own error rather than the whole call's. Pure functions.

use ferry_engine::store::StoreError;

use crate::conn::{Done, Outcome};

/// The error for a refused command, classified by its response code (RFC 5530) and text.
pub(crate) fn refused(done: &Done, what: &str) -> StoreError {
    classify(
        what,
        done.outcome == Outcome::Bad,
        done.code_name(),
        &done.text,
    )
}

/// [`refused`] of the command described as `what`, given whether it was called BAD and, for
/// a NO, its response code's name (in capitals) and its text.
fn classify(what: &str, bad: bool, code: Option<&str>, text: &str) -> StoreError {
    let lower = text.to_ascii_lowercase();
    let message = format!("{what}: {text}");
    if bad {
        return StoreError::Permanent(format!("{message} (the server called the command bad)"));
    }
    match code {
        Some("TRYCREATE" | "NONEXISTENT") => StoreError::NotFound(message),
        Some("TOOBIG") => StoreError::Permanent(message),
        // The mailbox is full: no message will go in until the quota is raised.
        Some("OVERQUOTA") => StoreError::Full(message),
        Some("LIMIT") if lower.contains("size") || lower.contains("large") => {
            StoreError::Permanent(message)
        }
        Some("LIMIT" | "UNAVAILABLE" | "INUSE") => StoreError::Throttled {
            retry_after_ms: None,
            reason: message,
        },
        Some("SERVERBUG") => StoreError::Transient(message),
        _ if lower.contains("throttl") || lower.contains("try again") => StoreError::Throttled {
            retry_after_ms: None,
            reason: message,
        },
        _ if lower.contains("too large") || lower.contains("too big") => {
            StoreError::Permanent(message)
        }
        _ => StoreError::Permanent(message),
    }
}

/// What a lost connection means: throttling when the server's BYE said so (a response code
/// such as [UNAVAILABLE] or [LIMIT], or words like "throttled"), so the run backs off and
/// journals it; otherwise a transient error, retried on a new connection.
pub(crate) fn lost(reason: &str) -> StoreError {
    let lower = reason.to_ascii_lowercase();
    let throttled = [
        "[unavailable]",
        "[limit]",
        "[inuse]",
        "throttl",
        "too many",
        "rate limit",
    ]
    .iter()
    .any(|sign| lower.contains(sign));
    if throttled {
        StoreError::Throttled {
            retry_after_ms: None,
            reason: reason.to_owned(),
        }
    } else {
        StoreError::Transient(reason.to_owned())
    }
}

/// A server's refusal of one folder's STATUS, EXAMINE or listing FETCH, as that folder's own
/// error: the other folders are listed all the same, and the next run asks again. Dovecot
/// answers `NO [SERVERBUG] Internal error occurred` for a folder it cannot open, every time,
/// so a refusal the class calls transient is not retried as if the connection had failed.
/// "Mailbox doesn't exist" (Dovecot says it without `[NONEXISTENT]`) is [`StoreError::NotFound`],
/// unless the server blamed itself (`[SERVERBUG]`: its words may mention any file). Throttling
/// stays what it is: the caller makes it the whole call's.
pub(crate) fn own(refusal: StoreError) -> StoreError {
    match refusal {
        StoreError::Permanent(message) if says_missing(&message) => StoreError::NotFound(message),
        StoreError::Transient(message) => StoreError::Permanent(message),
        other => other,
    }
}

/// Whether a server's words say that the folder does not exist.
pub(crate) fn says_missing(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "doesn't exist",
        "does not exist",
        "no such mailbox",
        "no such folder",
        "unknown mailbox",
        "mailbox not found",
        "folder not found",
    ]
    .iter()
    .any(|words| lower.contains(words))
}

/// Whether a folder whose STATUS the server refused is one it cannot read, or a `\Noselect`
/// mere parent of other folders. A `\Noselect` folder is one the server failed to open only
/// when it says so (`[SERVERBUG]`, `[CORRUPTION]`, `[NOPERM]`); any other refusal ("Mailbox
/// doesn't exist", `[NONEXISTENT]`) is of a mere parent. A selectable one is unreadable
/// whatever the refusal says.
pub(crate) fn failed_to_open(selectable: bool, code: Option<&str>) -> bool {
    selectable || matches!(code, Some("SERVERBUG" | "CORRUPTION" | "NOPERM"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no(code: Option<&str>, text: &str) -> StoreError {
        classify("APPEND to INBOX", false, code, text)
    }

    #[test]
    fn a_refusal_is_classified_by_its_response_code() {
        assert_eq!(
            no(Some("OVERQUOTA"), "Quota exceeded"),
            StoreError::Full("APPEND to INBOX: Quota exceeded".to_owned())
        );
        for code in ["UNAVAILABLE", "LIMIT", "INUSE"] {
            assert!(
                matches!(no(Some(code), "Try later"), StoreError::Throttled { .. }),
                "{code}"
            );
        }
        assert!(matches!(
            no(Some("LIMIT"), "Message size exceeds the limit"),
            StoreError::Permanent(_)
        ));
        assert!(matches!(
            no(Some("TOOBIG"), "Too big"),
            StoreError::Permanent(_)
        ));
        for code in ["TRYCREATE", "NONEXISTENT"] {
            assert!(
                matches!(no(Some(code), "No such mailbox"), StoreError::NotFound(_)),
                "{code}"
            );
        }
        assert!(matches!(
            no(Some("SERVERBUG"), "Internal error occurred"),
            StoreError::Transient(_)
        ));
        assert!(matches!(
            no(Some("ALREADYEXISTS"), "Mailbox already exists"),
            StoreError::Permanent(_)
        ));
    }

    #[test]
    fn a_refusal_without_a_code_is_classified_by_its_words() {
        assert!(matches!(
            no(None, "Throttled, slow down"),
            StoreError::Throttled { .. }
        ));
        assert!(matches!(
            no(None, "Please try again later"),
            StoreError::Throttled { .. }
        ));
        assert!(matches!(
            no(None, "Message too large"),
            StoreError::Permanent(_)
        ));
        assert!(matches!(
            no(None, "Permission denied"),
            StoreError::Permanent(_)
        ));
    }

    #[test]
    fn a_bad_command_is_permanent_whatever_its_code() {
        let bad = classify("APPEND to INBOX", true, Some("UNAVAILABLE"), "Parse error");
        assert!(matches!(
            bad,
            StoreError::Permanent(message) if message.ends_with("called the command bad)")
        ));
    }

    #[test]
    fn a_lost_connection_is_throttling_only_when_the_server_said_so() {
        for reason in [
            "BYE [UNAVAILABLE] Server shutting down",
            "BYE [LIMIT] Too many sessions",
            "BYE Too many connections from your IP",
            "Rate limit exceeded",
        ] {
            assert!(
                matches!(lost(reason), StoreError::Throttled { .. }),
                "{reason}"
            );
        }
        assert!(matches!(
            lost("connection reset by peer"),
            StoreError::Transient(_)
        ));
    }

    #[test]
    fn a_folders_refusal_is_its_own_and_not_retried_as_if_the_connection_failed() {
        assert!(matches!(
            own(StoreError::Transient(
                "STATUS Junk: Internal error occurred".to_owned()
            )),
            StoreError::Permanent(_)
        ));
        assert!(matches!(
            own(StoreError::Permanent(
                "STATUS Old: Mailbox doesn't exist: Old".to_owned()
            )),
            StoreError::NotFound(_)
        ));
        assert!(matches!(
            own(StoreError::Permanent(
                "STATUS Old: Permission denied".to_owned()
            )),
            StoreError::Permanent(_)
        ));
        assert!(matches!(
            own(StoreError::Throttled {
                retry_after_ms: None,
                reason: "slow down".to_owned(),
            }),
            StoreError::Throttled { .. }
        ));
        assert!(says_missing("NO Mailbox does not exist"));
        assert!(!says_missing("NO Permission denied"));
    }

    #[test]
    fn a_noselect_folder_is_unreadable_only_when_the_server_says_it_failed() {
        assert!(failed_to_open(true, Some("NONEXISTENT")));
        assert!(failed_to_open(true, None));
        for code in ["SERVERBUG", "CORRUPTION", "NOPERM"] {
            assert!(failed_to_open(false, Some(code)), "{code}");
        }
        assert!(!failed_to_open(false, Some("NONEXISTENT")));
        assert!(!failed_to_open(false, None));
    }
}
