//! Listing a folder's messages: the plan of a listing, decided from the folder's STATUS and
//! the token of its last listing before anything is sent (nothing when the folder is as the
//! token saw it; the changes since its HIGHESTMODSEQ, asked with the EXAMINE, under QRESYNC;
//! else the folder in full), and the [`Listing`] the answers make.

use ferry_engine::store::{ItemInfo, Listing, StoreError, StoreResult};

use crate::conn::{Done, FetchItem, Outcome, Piece, StatusItems, Untagged};
use crate::fetch::INLINE_BYTES;
use crate::ids::make_id;
use crate::refusal::refused;
use crate::select::{Selected, Since};
use crate::status::{parse_token, same_state, token, token_uid_next};
use crate::wire;

/// The listing of a folder whose STATUS shows it as the token `since` saw it: no change, and
/// the token stays as it was. `None` when it may have changed, or when the server keeps no
/// HIGHESTMODSEQ (nothing then tells that a flag changed).
pub(crate) fn unchanged(
    status: &StatusItems,
    since: Option<&str>,
    qresync: bool,
) -> Option<Listing> {
    let since = since?;
    let current = token(status, qresync)?;
    if !same_state(since, &current, qresync) || status.highest_modseq.unwrap_or(0) == 0 {
        return None;
    }
    Some(Listing::Changes {
        changed: Vec::new(),
        flags: Vec::new(),
        gone: Vec::new(),
        token: Some(since.to_owned()),
    })
}

fn item_info(validity: u32, fetch: &FetchItem) -> Option<ItemInfo> {
    Some(ItemInfo {
        id: make_id(validity, fetch.uid?),
        size: u64::from(fetch.size?),
        flags: wire::parse_flags(fetch.flags.as_deref().unwrap_or_default()),
        date: fetch.date,
        keyed: None,
        content: None,
    })
}

/// A listing whose commands were planned from the folder's STATUS before they were sent.
pub(crate) struct PlannedListing<'a> {
    pub(crate) index: usize,
    pub(crate) folder: &'a str,
    /// The UIDVALIDITY the STATUS gave, which the EXAMINE must confirm.
    validity: u32,
    /// `CHANGEDSINCE` this HIGHESTMODSEQ (QRESYNC), or a full listing.
    modseq: Option<u64>,
    /// With `modseq`, the UIDNEXT of the token's listing, when it recorded one: messages
    /// below it were seen then, so only their flags are asked; only those from there on are
    /// asked their size and date.
    uid_next: Option<u32>,
    /// With `uid_next`, in a listing planned from STATUS: the EXAMINE itself asks for the
    /// changes (`QRESYNC (UIDVALIDITY HIGHESTMODSEQ)`), so its answer carries the flags of
    /// the changed messages and the VANISHED UIDs, and no FETCH asks for them.
    pub(crate) in_select: bool,
    /// Whether the new messages (from `uid_next` on) are asked for: not when STATUS gave the
    /// UIDNEXT the token recorded; the EXAMINE must then confirm that none arrived.
    new_messages: bool,
    /// Whether the new messages are also asked for their first [`INLINE_BYTES`].
    pub(crate) inline: bool,
}

impl<'a> PlannedListing<'a> {
    /// The listing of `folder` whose UIDVALIDITY and HIGHESTMODSEQ are these, asked since the
    /// token `since`: changes since its HIGHESTMODSEQ when QRESYNC allows and the UIDVALIDITY
    /// is the token's, else in full.
    pub(crate) fn new(
        (index, folder): (usize, &'a str),
        (validity, highest_modseq): (u32, u64),
        since: Option<&str>,
        qresync: bool,
    ) -> PlannedListing<'a> {
        let modseq = since
            .and_then(parse_token)
            .filter(|&(was, modseq)| qresync && was == validity && modseq > 0 && highest_modseq > 0)
            .map(|(_, modseq)| modseq);
        PlannedListing {
            index,
            folder,
            validity,
            modseq,
            uid_next: modseq.and(since.and_then(token_uid_next)),
            in_select: false,
            new_messages: true,
            inline: false,
        }
    }

    /// At most how many bytes inline bodies could bring, when STATUS bounds the number of
    /// new messages.
    pub(crate) fn inline_bound(&self, status_uid_next: Option<u32>) -> Option<u64> {
        let (uid_next, status) = (self.uid_next?, status_uid_next?);
        (self.in_select && self.new_messages)
            .then(|| u64::from(status.saturating_sub(uid_next)) * u64::from(INLINE_BYTES))
    }

    /// The plan for a listing whose EXAMINE goes out with its FETCH (see `in_select`), given
    /// the UIDNEXT the folder's STATUS gave, if it did.
    pub(crate) fn in_select(mut self, status_uid_next: Option<u32>) -> PlannedListing<'a> {
        if let Some(uid_next) = self.uid_next {
            self.in_select = true;
            self.new_messages = status_uid_next.is_none_or(|status| status > uid_next);
        }
        self
    }

    /// The QRESYNC parameter of the EXAMINE, when it asks for the changes: UIDVALIDITY,
    /// HIGHESTMODSEQ and the UIDs known (those below the token's UIDNEXT), so that new
    /// messages, which their own FETCH lists, are not also reported as changed.
    pub(crate) fn select_since(&self) -> Option<Since> {
        let (modseq, uid_next) = (self.modseq?, self.uid_next?);
        self.in_select.then_some(Since {
            validity: self.validity,
            modseq,
            known_below: uid_next,
        })
    }

    /// Whether the EXAMINE's answer `selected` confirms what the FETCHes assumed: the same
    /// UIDVALIDITY, a HIGHESTMODSEQ for changes since one, and no new message when none
    /// was asked for.
    pub(crate) fn confirmed_by(&self, selected: &Selected) -> bool {
        selected.validity == self.validity
            && (self.modseq.is_none() || selected.highest_modseq > 0)
            && (self.new_messages || self.uid_next.is_some_and(|u| selected.uid_next <= u))
    }

    /// What [`listing_from`] needs to know of the FETCHes: `None` for a full listing, else
    /// the UIDNEXT below which only flags were asked.
    pub(crate) fn incremental(&self) -> Option<Option<u32>> {
        self.modseq.map(|_| self.uid_next)
    }

    /// The UID FETCH commands of the listing: one, or with a known UIDNEXT two (flags of the
    /// messages seen before, everything of the new ones). `u:4294967295` rather than `u:*`,
    /// which would name the last message when no new one exists.
    pub(crate) fn fetch_commands(&self) -> Vec<Vec<Piece>> {
        let text = |command: String| vec![Piece::Text(command.into_bytes())];
        match (self.modseq, self.uid_next) {
            (Some(_), Some(uid_next)) if self.in_select => {
                if !self.new_messages {
                    Vec::new()
                } else if self.inline {
                    vec![text(format!(
                        "UID FETCH {uid_next}:{} (UID FLAGS RFC822.SIZE INTERNALDATE \
                         BODY.PEEK[]<0.{INLINE_BYTES}>)\r\n",
                        u32::MAX
                    ))]
                } else {
                    vec![text(format!(
                        "UID FETCH {uid_next}:{} {LISTING_ITEMS}\r\n",
                        u32::MAX
                    ))]
                }
            }
            (Some(modseq), Some(uid_next)) => {
                let mut commands = Vec::new();
                if uid_next > 1 {
                    commands.push(text(format!(
                        "UID FETCH 1:{} (UID FLAGS) (CHANGEDSINCE {modseq} VANISHED)\r\n",
                        uid_next - 1
                    )));
                }
                commands.push(text(format!(
                    "UID FETCH {uid_next}:{} {LISTING_ITEMS}\r\n",
                    u32::MAX
                )));
                commands
            }
            (Some(modseq), None) => vec![text(format!(
                "UID FETCH 1:* {LISTING_ITEMS} (CHANGEDSINCE {modseq} VANISHED)\r\n"
            ))],
            (None, _) => vec![text(format!("UID FETCH 1:* {LISTING_ITEMS}\r\n"))],
        }
    }

    pub(crate) fn fetch_count(&self) -> usize {
        self.fetch_commands().len()
    }
}

/// What a listing asks of each message.
const LISTING_ITEMS: &str = "(UID FLAGS RFC822.SIZE INTERNALDATE)";

/// The listing the UID FETCHes of the folder `selected` answered: a full one, or with
/// `incremental` the changes (and VANISHED UIDs) since the token's HIGHESTMODSEQ; then
/// `Some(uid_next)` says that messages below that UID were asked their flags only. An empty
/// folder lists empty whatever its FETCH said, or without one.
pub(crate) fn listing_from(
    folder: &str,
    selected: &Selected,
    fetched: &[Done],
    incremental: Option<Option<u32>>,
    qresync: bool,
) -> StoreResult<Listing> {
    let token = token(
        &StatusItems {
            messages: Some(selected.exists),
            uid_next: Some(selected.uid_next),
            uid_validity: Some(selected.validity),
            highest_modseq: Some(selected.highest_modseq),
        },
        qresync,
    );
    if selected.exists == 0 && incremental.is_none() {
        return Ok(Listing::Full {
            items: Vec::new(),
            token,
        });
    }
    if fetched.is_empty() {
        return Err(StoreError::Transient(format!("{folder}: not listed")));
    }
    let flags_below = incremental.flatten().unwrap_or(0);
    let mut items = Vec::new();
    let mut flags = Vec::new();
    let mut gone = Vec::new();
    for done in fetched {
        if done.outcome != Outcome::Ok {
            return Err(refused(done, &format!("listing {folder}")));
        }
        for item in &done.data {
            match item {
                Untagged::Fetch(fetch) => match fetch.uid {
                    Some(uid) if uid < flags_below => flags.push((
                        make_id(selected.validity, uid),
                        wire::parse_flags(fetch.flags.as_deref().unwrap_or_default()),
                    )),
                    _ => items.extend(item_info(selected.validity, fetch)),
                },
                Untagged::Vanished { ranges } => {
                    // Nothing at or above UIDNEXT was ever known here.
                    let limit = selected.uid_next;
                    for (start, end) in ranges {
                        for uid in *start..=(*end).min(limit) {
                            gone.push(make_id(selected.validity, uid));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(match incremental {
        Some(_) => Listing::Changes {
            changed: items,
            flags,
            gone,
            token,
        },
        None => Listing::Full { items, token },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of each command.
    fn texts(commands: &[Vec<Piece>]) -> Vec<String> {
        commands
            .iter()
            .map(|pieces| {
                pieces
                    .iter()
                    .map(|piece| match piece {
                        Piece::Text(text) => String::from_utf8_lossy(text).into_owned(),
                        _ => "{literal}".to_owned(),
                    })
                    .collect::<String>()
            })
            .collect()
    }

    fn selected(validity: u32, uid_next: u32, exists: u32, highest_modseq: u64) -> Selected {
        Selected {
            path: "INBOX".to_owned(),
            validity,
            uid_next,
            exists,
            highest_modseq,
            permanent_flags: None,
        }
    }

    #[test]
    fn a_folder_whose_status_matches_its_token_lists_nothing() {
        let status = StatusItems {
            messages: None,
            uid_next: Some(20),
            uid_validity: Some(7),
            highest_modseq: Some(120),
        };
        assert_eq!(
            unchanged(&status, Some("7:120:20"), true),
            Some(Listing::Changes {
                changed: Vec::new(),
                flags: Vec::new(),
                gone: Vec::new(),
                token: Some("7:120:20".to_owned()),
            })
        );
        // Changed, or never listed: listed.
        let changed = StatusItems {
            highest_modseq: Some(121),
            ..status
        };
        assert_eq!(unchanged(&changed, Some("7:120:20"), true), None);
        assert_eq!(unchanged(&status, None, true), None);
        // Without CONDSTORE nothing tells a flag change: always listed.
        let plain = StatusItems {
            messages: Some(3),
            highest_modseq: None,
            ..status
        };
        assert_eq!(unchanged(&plain, Some("7:0:20:3"), false), None);
        // CONDSTORE without QRESYNC: the whole token is compared.
        let condstore = StatusItems {
            highest_modseq: Some(120),
            ..plain
        };
        assert!(unchanged(&condstore, Some("7:120:20:3"), false).is_some());
        assert_eq!(unchanged(&condstore, Some("7:120:19:3"), false), None);
    }

    #[test]
    fn a_changed_folder_is_listed_with_its_examine_since_the_tokens_highestmodseq() {
        let plan =
            PlannedListing::new((0, "INBOX"), (7, 130), Some("7:120:20"), true).in_select(Some(20));
        assert_eq!(plan.incremental(), Some(Some(20)));
        let since = plan
            .select_since()
            .expect("the EXAMINE asks for the changes");
        assert_eq!(
            (since.validity, since.modseq, since.known_below),
            (7, 120, 20)
        );
        // STATUS gave the UIDNEXT the token recorded: no new message, so no FETCH, and the
        // EXAMINE must confirm that none arrived.
        assert!(plan.fetch_commands().is_empty());
        assert_eq!(plan.inline_bound(Some(20)), None);
        assert!(plan.confirmed_by(&selected(7, 20, 5, 130)));
        assert!(!plan.confirmed_by(&selected(7, 21, 6, 131)));
        assert!(!plan.confirmed_by(&selected(8, 20, 5, 130)));
        assert!(!plan.confirmed_by(&selected(7, 20, 5, 0)));

        // New messages: one FETCH of those from the token's UIDNEXT on.
        let plan =
            PlannedListing::new((0, "INBOX"), (7, 130), Some("7:120:20"), true).in_select(Some(23));
        assert_eq!(
            texts(&plan.fetch_commands()),
            [format!(
                "UID FETCH 20:{} (UID FLAGS RFC822.SIZE INTERNALDATE)\r\n",
                u32::MAX
            )]
        );
        assert_eq!(
            plan.inline_bound(Some(23)),
            Some(3 * u64::from(INLINE_BYTES))
        );
        assert!(plan.confirmed_by(&selected(7, 25, 5, 130)));
    }

    #[test]
    fn a_folder_listed_select_first_asks_the_flags_of_known_messages_and_all_of_new_ones() {
        let plan = PlannedListing::new((0, "INBOX"), (7, 130), Some("7:120:20"), true);
        assert!(plan.select_since().is_none());
        assert_eq!(
            texts(&plan.fetch_commands()),
            [
                "UID FETCH 1:19 (UID FLAGS) (CHANGEDSINCE 120 VANISHED)\r\n".to_owned(),
                format!(
                    "UID FETCH 20:{} (UID FLAGS RFC822.SIZE INTERNALDATE)\r\n",
                    u32::MAX
                ),
            ]
        );
        // A token without UIDNEXT: the changes of every message.
        let plan = PlannedListing::new((0, "INBOX"), (7, 130), Some("7:120"), true);
        assert_eq!(plan.incremental(), Some(None));
        assert_eq!(
            texts(&plan.fetch_commands()),
            ["UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE) (CHANGEDSINCE 120 VANISHED)\r\n"]
        );
    }

    #[test]
    fn a_folder_is_listed_in_full_after_a_uidvalidity_change_without_qresync_or_a_token() {
        for plan in [
            PlannedListing::new((0, "INBOX"), (8, 130), Some("7:120:20"), true),
            PlannedListing::new((0, "INBOX"), (7, 130), Some("7:120:20:3"), false),
            PlannedListing::new((0, "INBOX"), (7, 0), Some("7:0:20:3"), true),
            PlannedListing::new((0, "INBOX"), (7, 130), None, true),
        ] {
            let plan = plan.in_select(Some(23));
            assert_eq!(plan.incremental(), None);
            assert!(plan.select_since().is_none());
            assert_eq!(
                texts(&plan.fetch_commands()),
                ["UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)\r\n"]
            );
        }
    }

    #[test]
    fn an_empty_folder_lists_empty_without_a_fetch() {
        let listing = listing_from("INBOX", &selected(7, 1, 0, 5), &[], None, true);
        assert_eq!(
            listing,
            Ok(Listing::Full {
                items: Vec::new(),
                token: Some("7:5:1".to_owned()),
            })
        );
        // A folder with messages and no answer is not listed.
        assert!(matches!(
            listing_from("INBOX", &selected(7, 4, 3, 5), &[], None, true),
            Err(StoreError::Transient(_))
        ));
    }
}
