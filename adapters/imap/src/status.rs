//! STATUS and the change tokens made of its figures: what a token records with and without
//! QRESYNC, how it is read back, whether a folder is as a token saw it, and which STATUS items
//! a token needs. The token functions are pure.

use ferry_engine::store::StoreResult;

use crate::conn::{Collect, Outcome, StatusItems, Untagged};
use crate::pool::run;
use crate::refusal::refused;
use crate::session::Caps;
use crate::{Inner, lock};

/// A folder's change token. With QRESYNC, every change (a new message, a flag, an expunge)
/// raises HIGHESTMODSEQ, so `UIDVALIDITY:HIGHESTMODSEQ` tells whether anything changed and
/// STATUS asks for nothing more; a listing adds `:UIDNEXT`, which lets the next listing ask
/// only messages from there on for their size and date (see [`same_state`]). Otherwise
/// `UIDVALIDITY:HIGHESTMODSEQ:UIDNEXT:MESSAGES` (HIGHESTMODSEQ 0 without CONDSTORE).
pub(crate) fn token(status: &StatusItems, qresync: bool) -> Option<String> {
    let validity = status.uid_validity?;
    Some(match status.highest_modseq {
        Some(modseq) if qresync && modseq > 0 => match status.uid_next {
            Some(uid_next) => format!("{validity}:{modseq}:{uid_next}"),
            None => format!("{validity}:{modseq}"),
        },
        modseq => format!(
            "{validity}:{}:{}:{}",
            modseq.unwrap_or(0),
            status.uid_next?,
            status.messages?
        ),
    })
}

/// UIDVALIDITY and HIGHESTMODSEQ of a token of either shape.
pub(crate) fn parse_token(token: &str) -> Option<(u32, u64)> {
    let mut parts = token.split(':');
    let validity = parts.next()?.parse().ok()?;
    let modseq = parts.next()?.parse().ok()?;
    Some((validity, modseq))
}

/// The UIDNEXT a token recorded, when it did.
pub(crate) fn token_uid_next(token: &str) -> Option<u32> {
    token.split(':').nth(2)?.parse().ok().filter(|&uid| uid > 0)
}

/// Whether the folder is as the token `since` saw it: with QRESYNC the same UIDVALIDITY and
/// HIGHESTMODSEQ (the UIDNEXT a listing adds is not compared: STATUS does not ask for it);
/// otherwise the same token.
pub(crate) fn same_state(since: &str, current: &str, qresync: bool) -> bool {
    if qresync {
        parse_token(since).is_some_and(|state| Some(state) == parse_token(current))
    } else {
        since == current
    }
}

/// The STATUS items a token needs. A source (`listed`) also asks UIDNEXT under QRESYNC: a
/// changed folder whose UIDNEXT is still the one its last listing recorded has no new message,
/// so its listing asks for none.
pub(crate) fn status_items(caps: &Caps, listed: bool) -> &'static str {
    if caps.qresync && listed {
        "UIDVALIDITY UIDNEXT HIGHESTMODSEQ"
    } else if caps.qresync {
        "UIDVALIDITY HIGHESTMODSEQ"
    } else if caps.condstore {
        "MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ"
    } else {
        "MESSAGES UIDNEXT UIDVALIDITY"
    }
}

impl Inner {
    /// STATUS of one folder.
    pub(crate) async fn status(&self, folder: &str) -> StoreResult<StatusItems> {
        let items = status_items(&self.caps(), self.read_only);
        self.status_of(folder, items).await
    }

    /// `STATUS folder (items)`.
    pub(crate) async fn status_of(&self, folder: &str, items: &str) -> StoreResult<StatusItems> {
        self.status_answer(folder, items).await?
    }

    /// `STATUS folder (items)`, telling the session's failure (the outer error: a lost
    /// connection) from the server's refusal of the folder (the inner one).
    pub(crate) async fn status_answer(
        &self,
        folder: &str,
        items: &str,
    ) -> StoreResult<StoreResult<StatusItems>> {
        let alone = self.alone().await?;
        let caps = alone.slot.session.caps.clone();
        let name = match self.server_name(folder) {
            Ok(name) => name,
            Err(error) => return Ok(Err(error)),
        };
        let items = format!(" ({items})");
        let done = run(
            &alone.slot,
            self.command(&caps, "STATUS", &name, &items),
            Collect::All,
        )
        .await?;
        if done.outcome != Outcome::Ok {
            return Ok(Err(refused(&done, &format!("STATUS {folder}"))));
        }
        let status = done
            .data
            .iter()
            .find_map(|item| match item {
                Untagged::Status { items, .. } => Some(*items),
                _ => None,
            })
            .unwrap_or_default();
        lock(&self.statuses).insert(folder.to_owned(), status);
        Ok(Ok(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QRESYNC: StatusItems = StatusItems {
        messages: None,
        uid_next: Some(20),
        uid_validity: Some(7),
        highest_modseq: Some(120),
    };

    const PLAIN: StatusItems = StatusItems {
        messages: Some(3),
        uid_next: Some(20),
        uid_validity: Some(7),
        highest_modseq: None,
    };

    #[test]
    fn a_token_records_uidvalidity_highestmodseq_and_uidnext() {
        assert_eq!(token(&QRESYNC, true).as_deref(), Some("7:120:20"));
        let no_uid_next = StatusItems {
            uid_next: None,
            ..QRESYNC
        };
        assert_eq!(token(&no_uid_next, true).as_deref(), Some("7:120"));
        // Without QRESYNC, or without a HIGHESTMODSEQ, the message count too.
        assert_eq!(token(&PLAIN, false).as_deref(), Some("7:0:20:3"));
        assert_eq!(token(&PLAIN, true).as_deref(), Some("7:0:20:3"));
        let condstore = StatusItems {
            highest_modseq: Some(120),
            ..PLAIN
        };
        assert_eq!(token(&condstore, false).as_deref(), Some("7:120:20:3"));
        // Figures missing: no token.
        assert_eq!(token(&QRESYNC, false), None);
        let no_validity = StatusItems {
            uid_validity: None,
            ..PLAIN
        };
        assert_eq!(token(&no_validity, false), None);
    }

    #[test]
    fn a_token_is_read_back() {
        assert_eq!(parse_token("7:120:20"), Some((7, 120)));
        assert_eq!(parse_token("7:0:20:3"), Some((7, 0)));
        assert_eq!(parse_token("7"), None);
        assert_eq!(parse_token("seven:120"), None);
        assert_eq!(token_uid_next("7:120:20"), Some(20));
        assert_eq!(token_uid_next("7:0:20:3"), Some(20));
        assert_eq!(token_uid_next("7:120"), None);
        assert_eq!(token_uid_next("7:120:0"), None);
    }

    #[test]
    fn a_folder_is_as_its_token_saw_it_when_the_figures_that_count_are_the_same() {
        // QRESYNC: UIDVALIDITY and HIGHESTMODSEQ; the UIDNEXT a listing added is not compared.
        assert!(same_state("7:120:20", "7:120", true));
        assert!(same_state("7:120:20", "7:120:25", true));
        assert!(!same_state("7:120:20", "7:121", true));
        assert!(!same_state("7:120:20", "8:120", true));
        assert!(!same_state("garbage", "7:120", true));
        // Otherwise the whole token.
        assert!(same_state("7:0:20:3", "7:0:20:3", false));
        assert!(!same_state("7:0:20:3", "7:0:20:4", false));
    }

    #[test]
    fn status_asks_what_a_token_needs() {
        let qresync = Caps {
            qresync: true,
            condstore: true,
            ..Caps::default()
        };
        let condstore = Caps {
            condstore: true,
            ..Caps::default()
        };
        assert_eq!(
            status_items(&qresync, true),
            "UIDVALIDITY UIDNEXT HIGHESTMODSEQ"
        );
        assert_eq!(status_items(&qresync, false), "UIDVALIDITY HIGHESTMODSEQ");
        assert_eq!(
            status_items(&condstore, true),
            "MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ"
        );
        assert_eq!(
            status_items(&Caps::default(), true),
            "MESSAGES UIDNEXT UIDVALIDITY"
        );
    }
}
