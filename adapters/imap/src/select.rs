//! Selecting a folder: SELECT (target) or EXAMINE (source), with QRESYNC's changes since a
//! UIDVALIDITY and HIGHESTMODSEQ or CONDSTORE's; what the answer says (UIDVALIDITY, UIDNEXT,
//! HIGHESTMODSEQ, PERMANENTFLAGS); and each folder's latest selection (`Inner::selections`),
//! its UIDNEXT raised by every APPENDUID since, which append probes read.

use ferry_engine::store::{StoreError, StoreResult};

use crate::conn::{Collect, Done, DoneCode, Outcome, Piece, Untagged};
use crate::pool::{Slot, run};
use crate::refusal::refused;
use crate::session::Caps;
use crate::wire;
use crate::{Inner, lock};

/// The folder a connection has selected, as SELECT described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selected {
    pub(crate) path: String,
    pub(crate) validity: u32,
    pub(crate) uid_next: u32,
    pub(crate) exists: u32,
    pub(crate) highest_modseq: u64,
    pub(crate) permanent_flags: Option<Vec<String>>,
}

/// What a QRESYNC EXAMINE asks for changes since: the folder's UIDVALIDITY and
/// HIGHESTMODSEQ then, and the UID below which messages were known.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Since {
    pub(crate) validity: u32,
    pub(crate) modseq: u64,
    pub(crate) known_below: u32,
}

impl Inner {
    /// The folder's PERMANENTFLAGS as last selected.
    pub(crate) fn permanent_flags(&self, folder: &str) -> Option<Vec<String>> {
        lock(&self.selections)
            .get(folder)
            .and_then(|selected| selected.permanent_flags.clone())
    }

    /// Raises the UIDNEXT the latest SELECT of `folder` said (what append probes read),
    /// after an append that the server numbered `uid`.
    pub(crate) fn appended(&self, folder: &str, validity: u32, uid: u32) {
        if let Some(selected) = lock(&self.selections).get_mut(folder)
            && selected.validity == validity
        {
            selected.uid_next = selected.uid_next.max(uid.saturating_add(1));
        }
    }

    /// SELECT (target) or EXAMINE (source); the caller holds the connection alone.
    pub(crate) async fn select(&self, slot: &Slot, folder: &str) -> StoreResult<Selected> {
        let pieces = self.select_command(&slot.session.caps, folder, None)?;
        *lock(&slot.selected) = None;
        let done = run(slot, pieces, Collect::All).await?;
        let selected = self.selected_from(folder, &done)?;
        *lock(&slot.selected) = Some(selected.clone());
        Ok(selected)
    }

    fn select_verb(&self) -> &'static str {
        if self.read_only { "EXAMINE" } else { "SELECT" }
    }

    /// SELECT or EXAMINE of `folder`; with `since` (QRESYNC), also asking for the changes
    /// since that UIDVALIDITY and HIGHESTMODSEQ.
    pub(crate) fn select_command(
        &self,
        caps: &Caps,
        folder: &str,
        since: Option<Since>,
    ) -> StoreResult<Vec<Piece>> {
        let name = self.server_name(folder)?;
        let mut line = format!("{} ", self.select_verb()).into_bytes();
        let mut pieces = Vec::new();
        wire::quoted_or_literal(&mut pieces, &mut line, &name, caps);
        line.extend_from_slice(select_params(caps, since).as_bytes());
        line.extend_from_slice(b"\r\n");
        pieces.push(Piece::Text(line));
        Ok(pieces)
    }

    /// What a SELECT or EXAMINE of `folder` answered; remembers it (`selections`).
    pub(crate) fn selected_from(&self, folder: &str, done: &Done) -> StoreResult<Selected> {
        if done.outcome != Outcome::Ok {
            return Err(refused(done, &format!("{} {folder}", self.select_verb())));
        }
        let mut selected = Selected {
            path: folder.to_owned(),
            validity: 0,
            uid_next: 0,
            exists: 0,
            highest_modseq: 0,
            permanent_flags: None,
        };
        for item in &done.data {
            match item {
                Untagged::Code(DoneCode::UidValidity(v)) => selected.validity = *v,
                Untagged::Code(DoneCode::UidNext(n)) => selected.uid_next = *n,
                Untagged::Code(DoneCode::HighestModSeq(m)) => selected.highest_modseq = *m,
                Untagged::Code(DoneCode::PermanentFlags(flags)) => {
                    selected.permanent_flags = Some(flags.clone());
                }
                Untagged::Exists(n) => selected.exists = *n,
                _ => {}
            }
        }
        if selected.validity == 0 {
            return Err(StoreError::Permanent(format!(
                "{folder}: the server gave no UIDVALIDITY, so its messages cannot be tracked"
            )));
        }
        lock(&self.selections).insert(folder.to_owned(), selected.clone());
        Ok(selected)
    }
}

/// What a SELECT or EXAMINE asks beyond the folder: with `since` and QRESYNC, the changes
/// since then (of the messages below `known_below` only); with CONDSTORE alone, `CONDSTORE`,
/// so that the answer tells HIGHESTMODSEQ.
fn select_params(caps: &Caps, since: Option<Since>) -> String {
    if let (Some(since), true) = (since, caps.qresync) {
        let known = match since.known_below {
            0 | 1 => String::new(),
            below => format!(" 1:{}", below - 1),
        };
        let (validity, modseq) = (since.validity, since.modseq);
        format!(" (QRESYNC ({validity} {modseq}{known}))")
    } else if caps.condstore && !caps.qresync {
        " (CONDSTORE)".to_owned()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_select_asks_for_changes_with_qresync_and_for_modseqs_with_condstore() {
        let since = Since {
            validity: 7,
            modseq: 120,
            known_below: 20,
        };
        let qresync = Caps {
            qresync: true,
            condstore: true,
            ..Caps::default()
        };
        assert_eq!(
            select_params(&qresync, Some(since)),
            " (QRESYNC (7 120 1:19))"
        );
        let none_known = Since {
            known_below: 1,
            ..since
        };
        assert_eq!(
            select_params(&qresync, Some(none_known)),
            " (QRESYNC (7 120))"
        );
        // QRESYNC, once enabled, reports HIGHESTMODSEQ without asking.
        assert_eq!(select_params(&qresync, None), "");
        let condstore = Caps {
            condstore: true,
            ..Caps::default()
        };
        assert_eq!(select_params(&condstore, Some(since)), " (CONDSTORE)");
        assert_eq!(select_params(&condstore, None), " (CONDSTORE)");
        assert_eq!(select_params(&Caps::default(), Some(since)), "");
    }
}
