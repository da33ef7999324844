//! What one listing of a target folder tells ferry, and what reading the items it showed
//! tells: items gone (missing), flags changed, items to read (unknown to ferry, or all of them
//! when verifying), and, once read, items intact, altered, found, or ferry's own written
//! without an id the target told. Decided here, recorded by the executor (`observe`).

use std::collections::BTreeSet;

use crate::event::{CheckState, ContentHash, Event, NativeId, Side};
use crate::projection::target::TargetFolder;
use crate::store::{ItemInfo, Listing};

/// What one listing of a target folder tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetListing {
    /// What changed: the folder seen (the first time it is listed), items missing, flags.
    pub events: Vec<Event>,
    /// The items to read: those ferry does not know, or every one listed when verifying.
    pub to_read: Vec<ItemInfo>,
    /// The listing's change token.
    pub token: Option<String>,
}

/// What `listing` of target folder `path` (UIDVALIDITY `validity`) tells, given what ferry
/// knows of it (`known`). Known items keep their content under the same id, so they are read
/// back only when verifying; their flags are taken as the target has them. An item written
/// without an id the target told (`op-…`) is never listed under that name: it is not missing,
/// it is matched by content once read ([`checked`]).
pub fn target_listing(
    path: &str,
    known: &TargetFolder,
    validity: Option<u64>,
    listing: Listing,
    verify: bool,
) -> TargetListing {
    let mut events = Vec::new();
    if !known.observed {
        events.push(Event::FolderSeen {
            side: Side::Target,
            folder: path.to_owned(),
            special_use: None,
            validity,
        });
    }
    let missing = |id: &NativeId| Event::TargetChecked {
        folder: path.to_owned(),
        id: id.clone(),
        state: CheckState::Missing,
    };
    let (listed, token): (Vec<ItemInfo>, Option<String>) = match listing {
        Listing::Full { items, token } => {
            let present: BTreeSet<&NativeId> = items.iter().map(|i| &i.id).collect();
            events.extend(
                known
                    .items
                    .keys()
                    .filter(|id| !present.contains(id) && !id.0.starts_with("op-"))
                    .map(missing),
            );
            (items, token)
        }
        Listing::Changes {
            changed,
            flags,
            gone,
            token,
        } => {
            events.extend(
                gone.iter()
                    .filter(|id| known.items.contains_key(id))
                    .map(missing),
            );
            for (id, flags) in flags {
                if let Some(item) = known.items.get(&id)
                    && item.flags != flags
                {
                    events.push(Event::FlagsSeen {
                        side: Side::Target,
                        folder: path.to_owned(),
                        id,
                        flags,
                    });
                }
            }
            (changed, token)
        }
    };
    let mut to_read = Vec::new();
    for item in listed {
        match known.items.get(&item.id) {
            // A keyed item at another version than ferry knows: read again, to tell what
            // changed behind ferry's back.
            Some(mine) if !verify && !same_version(mine, &item) => to_read.push(item),
            Some(mine) if !verify => {
                if mine.flags != item.flags {
                    events.push(Event::FlagsSeen {
                        side: Side::Target,
                        folder: path.to_owned(),
                        id: item.id.clone(),
                        flags: item.flags.clone(),
                    });
                }
            }
            _ => to_read.push(item),
        }
    }
    TargetListing {
        events,
        to_read,
        token,
    }
}

/// Whether a known target item listed again is at the version ferry knows (a message: always).
fn same_version(known: &crate::projection::target::TargetItem, listed: &ItemInfo) -> bool {
    match (&known.keyed, &listed.keyed) {
        // Without a version to tell by, it is read again every time: an edit behind ferry's
        // back must be seen before anything is written over it.
        (Some(known), Some(listed)) => {
            known.key == listed.key && known.version.is_some() && known.version == listed.version
        }
        (None, None) => true,
        _ => false,
    }
}

/// What reading target items showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The events to record.
    pub events: Vec<Event>,
    /// Items that could not be read now, in words: nothing is known of them, the next run
    /// asks again (so the folder's change token must stay where it was).
    pub unread: Vec<String>,
}

/// What the events of reading items of a target folder (`read`: `ItemSeen`, `ItemUnreadable`
/// and throttling) tell, given what ferry knows of the folder (`known`): a known item intact
/// or altered (and its flags), an unknown one found, or one ferry wrote without an id the
/// target told (`op-…`), recognised by its content and known under its id from then on.
pub fn checked(known: &TargetFolder, read: Vec<Event>) -> Checked {
    let mut unnamed: Vec<(NativeId, ContentHash)> = known
        .items
        .iter()
        .filter(|(id, _)| id.0.starts_with("op-"))
        .map(|(id, item)| (id.clone(), item.content))
        .collect();
    let mut events = Vec::with_capacity(read.len());
    let mut unread = Vec::new();
    for event in read {
        match event {
            Event::ItemSeen {
                side: Side::Target,
                folder,
                id,
                content,
                size,
                flags,
                date,
            } => match known.items.get(&id) {
                // A keyed item read again: its content as it is now, which the target
                // projection compares with what ferry wrote.
                Some(item) if item.keyed.is_some() => events.push(Event::ItemSeen {
                    side: Side::Target,
                    folder,
                    id,
                    content,
                    size,
                    flags,
                    date,
                }),
                Some(item) => {
                    let state = if item.content == content {
                        CheckState::Intact
                    } else {
                        CheckState::Altered
                    };
                    if item.flags != flags {
                        events.push(Event::FlagsSeen {
                            side: Side::Target,
                            folder: folder.clone(),
                            id: id.clone(),
                            flags,
                        });
                    }
                    events.push(Event::TargetChecked { folder, id, state });
                }
                None => {
                    if let Some(at) = unnamed.iter().position(|(_, c)| *c == content) {
                        // ferry's own write, now under the id the target gave it.
                        let (old, _) = unnamed.swap_remove(at);
                        events.push(Event::ItemGone {
                            side: Side::Target,
                            folder: folder.clone(),
                            id: old,
                        });
                    }
                    events.push(Event::ItemSeen {
                        side: Side::Target,
                        folder,
                        id,
                        content,
                        size,
                        flags,
                        date,
                    });
                }
            },
            Event::ItemUnreadable {
                folder, id, reason, ..
            } => {
                // Could not be read now: nothing is known of it; the next run asks again.
                unread.push(format!("could not read target {folder}/{id}: {reason}"));
            }
            other => events.push(other),
        }
    }
    Checked { events, unread }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::{Flags, SystemFlag};
    use crate::projection::delta::fixtures::{hash, id};
    use crate::projection::target::{Origin, TargetItem};

    fn seen() -> Flags {
        Flags::new().with(SystemFlag::Seen)
    }

    /// A target folder ferry listed, holding (id, content) written by ferry, without flags.
    fn known(items: &[(&str, u8)]) -> TargetFolder {
        TargetFolder {
            observed: true,
            items: items
                .iter()
                .map(|&(i, n)| {
                    let item = TargetItem {
                        content: hash(n),
                        flags: Flags::new(),
                        origin: Origin::Copied { run: 1, op: 1 },
                        source: None,
                        altered: false,
                        keyed: None,
                    };
                    (id(i), item)
                })
                .collect(),
            ..TargetFolder::default()
        }
    }

    fn info(i: &str, flags: Flags) -> ItemInfo {
        ItemInfo {
            id: id(i),
            size: 10,
            flags,
            date: None,
            keyed: None,
            content: None,
        }
    }

    fn missing(i: &str) -> Event {
        Event::TargetChecked {
            folder: "F".into(),
            id: id(i),
            state: CheckState::Missing,
        }
    }

    fn flags_seen(i: &str, flags: Flags) -> Event {
        Event::FlagsSeen {
            side: Side::Target,
            folder: "F".into(),
            id: id(i),
            flags,
        }
    }

    #[test]
    fn a_full_listing_tells_missing_items_flags_and_what_to_read() {
        let known = known(&[("1", 1), ("2", 2), ("op-7", 7)]);
        let listing = Listing::Full {
            items: vec![info("1", seen()), info("3", Flags::new())],
            token: Some("t".into()),
        };
        let told = target_listing("F", &known, Some(1), listing.clone(), false);
        // "op-7" is not listed under that name: not missing, matched by content when read.
        assert_eq!(told.events, [missing("2"), flags_seen("1", seen())]);
        assert_eq!(told.to_read, [info("3", Flags::new())]);
        assert_eq!(told.token.as_deref(), Some("t"));
        // Verifying: every listed item is read back, known ones too.
        let verified = target_listing("F", &known, Some(1), listing, true);
        assert_eq!(verified.events, [missing("2")]);
        assert_eq!(verified.to_read.len(), 2);
    }

    #[test]
    fn a_change_listing_of_a_folder_not_yet_listed_tells_only_what_ferry_knows() {
        let mut known = known(&[("1", 1), ("2", 2)]);
        known.observed = false;
        let listing = Listing::Changes {
            changed: vec![info("5", Flags::new())],
            flags: vec![(id("1"), seen()), (id("8"), seen())],
            gone: vec![id("2"), id("9")],
            token: None,
        };
        let told = target_listing("F", &known, Some(4), listing, false);
        let first = Event::FolderSeen {
            side: Side::Target,
            folder: "F".into(),
            special_use: None,
            validity: Some(4),
        };
        assert_eq!(told.events, [first, missing("2"), flags_seen("1", seen())]);
        assert_eq!(told.to_read, [info("5", Flags::new())]);
    }

    #[test]
    fn items_read_are_intact_altered_found_or_ferrys_own_and_unreadable_ones_are_told() {
        let known = known(&[("1", 1), ("2", 2), ("op-7", 7)]);
        let seen_item = |i: &str, n: u8, flags: Flags| Event::ItemSeen {
            side: Side::Target,
            folder: "F".into(),
            id: id(i),
            content: hash(n),
            size: 10,
            flags,
            date: None,
        };
        let read = vec![
            seen_item("1", 1, seen()),
            seen_item("2", 9, Flags::new()),
            seen_item("30", 7, Flags::new()),
            seen_item("31", 8, Flags::new()),
            Event::ItemUnreadable {
                side: Side::Target,
                folder: "F".into(),
                id: id("32"),
                reason: "refused".into(),
            },
        ];
        let checked = checked(&known, read);
        let state = |i: &str, state| Event::TargetChecked {
            folder: "F".into(),
            id: id(i),
            state,
        };
        assert_eq!(
            checked.events,
            [
                flags_seen("1", seen()),
                state("1", CheckState::Intact),
                state("2", CheckState::Altered),
                // ferry wrote content 7 without an id: it is "30".
                Event::ItemGone {
                    side: Side::Target,
                    folder: "F".into(),
                    id: id("op-7"),
                },
                seen_item("30", 7, Flags::new()),
                // Someone else's.
                seen_item("31", 8, Flags::new()),
            ]
        );
        assert_eq!(checked.unread, ["could not read target F/32: refused"]);
    }
}
