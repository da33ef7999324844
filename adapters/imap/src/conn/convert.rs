//! imap-codec's parsed responses turned into the owned values of `conn` ([`Untagged`],
//! [`DoneCode`], [`StatusItems`], [`FetchItem`]): only what ferry uses is kept, so nothing
//! borrowed from the receive buffer outlives the response it came in.

use imap_codec::imap_types::core::{AString, IString, NString};
use imap_codec::imap_types::extensions::uidplus::UidElement;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{FlagFetch, FlagNameAttribute, FlagPerm};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
use imap_codec::imap_types::status::StatusDataItem;

use super::{DoneCode, FetchItem, StatusItems, Untagged};

fn astring(value: &AString<'_>) -> Vec<u8> {
    value.as_ref().to_vec()
}

fn mailbox_bytes(mailbox: &Mailbox<'_>) -> Vec<u8> {
    match mailbox {
        Mailbox::Inbox => b"INBOX".to_vec(),
        Mailbox::Other(other) => astring(other.inner()),
    }
}

fn nstring(value: NString<'_>) -> Option<Vec<u8>> {
    value.0.map(|s: IString<'_>| s.into_inner().into_owned())
}

pub(super) fn convert_code(code: Code<'_>) -> DoneCode {
    match code {
        Code::AppendUid { uid_validity, uid } => DoneCode::AppendUid {
            validity: uid_validity.get(),
            uid: uid.get(),
        },
        Code::CopyUid {
            uid_validity,
            source,
            destination,
        } => {
            let ranges = |set: &imap_codec::imap_types::extensions::uidplus::UidSet| {
                set.0
                    .as_ref()
                    .iter()
                    .map(|element| match element {
                        UidElement::Single(uid) => (uid.get(), uid.get()),
                        UidElement::Range(a, b) => (a.get(), b.get()),
                    })
                    .collect::<Vec<_>>()
            };
            match (
                expand_uids(ranges(&source)),
                expand_uids(ranges(&destination)),
            ) {
                (Some(source), Some(destination)) => DoneCode::CopyUid {
                    validity: uid_validity.get(),
                    source,
                    destination,
                },
                // Implausibly many: as if the server had named no UIDs.
                _ => DoneCode::Named("COPYUID".into()),
            }
        }
        Code::UidValidity(v) => DoneCode::UidValidity(v.get()),
        Code::UidNext(n) => DoneCode::UidNext(n.get()),
        Code::HighestModSeq(m) => DoneCode::HighestModSeq(m.get()),
        Code::NoModSeq => DoneCode::NoModSeq,
        Code::PermanentFlags(flags) => DoneCode::PermanentFlags(
            flags
                .iter()
                .map(|f| match f {
                    FlagPerm::Flag(flag) => flag.to_string(),
                    FlagPerm::Asterisk => "\\*".to_owned(),
                })
                .collect(),
        ),
        Code::TryCreate => DoneCode::TryCreate,
        Code::Capability(caps) => {
            DoneCode::Capability(caps.as_ref().iter().map(|c| c.to_string()).collect())
        }
        Code::TooBig => DoneCode::TooBig,
        Code::OverQuota => DoneCode::OverQuota,
        Code::Other(other) => {
            let raw = String::from_utf8_lossy(other.inner());
            let mut words = raw.split_whitespace();
            let name = words.next().unwrap_or_default().to_ascii_uppercase();
            if name == "APPENDUID"
                && let (Some(validity), Some(set)) = (words.next(), words.next())
                && let (Ok(validity), Some(uids)) = (validity.parse(), uid_set(set))
            {
                return DoneCode::AppendUids { validity, uids };
            }
            DoneCode::Named(name)
        }
        other => DoneCode::Named(
            format!("{other:?}")
                .split(|c: char| !c.is_ascii_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase(),
        ),
    }
}

/// Expands a UID set such as `3955:3957,3960` in its order; `None` if it is not one or is
/// implausibly large.
fn uid_set(text: &str) -> Option<Vec<u32>> {
    let ranges = text
        .split(',')
        .map(|part| match part.split_once(':') {
            Some((a, b)) => Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)),
            None => part.parse::<u32>().ok().map(|n| (n, n)),
        })
        .collect::<Option<Vec<_>>>()?;
    expand_uids(ranges)
}

/// The UIDs of `ranges` (each from one end to the other, in either order), in order; `None`
/// if they are implausibly many.
fn expand_uids(ranges: impl IntoIterator<Item = (u32, u32)>) -> Option<Vec<u32>> {
    let mut uids = Vec::new();
    for (start, end) in ranges {
        let (low, high) = (start.min(end), start.max(end));
        if uids.len() + (high - low) as usize > 100_000 {
            return None;
        }
        uids.extend(low..=high);
    }
    Some(uids)
}

pub(super) fn convert_data(data: Data<'_>) -> Untagged {
    match data {
        Data::Capability(caps) => {
            Untagged::Capability(caps.as_ref().iter().map(|c| c.to_string()).collect())
        }
        Data::List {
            items,
            delimiter,
            mailbox,
        } => Untagged::List {
            attributes: items.iter().map(attribute_name).collect(),
            delimiter: delimiter.map(|d| d.inner()),
            mailbox: mailbox_bytes(&mailbox),
        },
        Data::Status { mailbox, items } => Untagged::Status {
            mailbox: mailbox_bytes(&mailbox),
            items: status_items(&items),
        },
        Data::Fetch { items, .. } => {
            let mut fetch = FetchItem::default();
            for item in items.into_iter() {
                match item {
                    MessageDataItem::Uid(uid) => fetch.uid = Some(uid.get()),
                    MessageDataItem::Flags(flags) => {
                        fetch.flags = Some(
                            flags
                                .iter()
                                .filter_map(|f| match f {
                                    FlagFetch::Flag(flag) => Some(flag.to_string()),
                                    FlagFetch::Recent => None,
                                })
                                .collect(),
                        );
                    }
                    MessageDataItem::Rfc822Size(size) => fetch.size = Some(size),
                    MessageDataItem::InternalDate(date) => {
                        fetch.date = Some(date.as_ref().timestamp_millis());
                    }
                    MessageDataItem::ModSeq(modseq) => fetch.modseq = Some(modseq.get()),
                    // A NIL body (a message expunged meanwhile, on some servers) is no body:
                    // never an empty message or an empty piece.
                    MessageDataItem::BodyExt { data, origin, .. } => {
                        fetch.body = nstring(data);
                        fetch.origin = origin;
                    }
                    MessageDataItem::Rfc822(data) => fetch.body = nstring(data),
                    _ => {}
                }
            }
            Untagged::Fetch(Box::new(fetch))
        }
        Data::Vanished { known_uids, .. } => Untagged::Vanished {
            ranges: known_uids
                .0
                .as_ref()
                .iter()
                .filter_map(|sequence| match sequence {
                    Sequence::Single(SeqOrUid::Value(v)) => Some((v.get(), v.get())),
                    Sequence::Range(SeqOrUid::Value(a), SeqOrUid::Value(b)) => {
                        Some((a.get().min(b.get()), a.get().max(b.get())))
                    }
                    _ => None,
                })
                .collect(),
        },
        Data::Exists(n) => Untagged::Exists(n),
        Data::Enabled { capabilities } => Untagged::Enabled(
            capabilities
                .iter()
                .map(|c| c.to_string().to_ascii_uppercase())
                .collect(),
        ),
        Data::Search(uids, ..) => Untagged::Search(uids.iter().map(|u| u.get()).collect()),
        Data::Namespace { personal, .. } => match personal.first() {
            Some(ns) => Untagged::Namespace {
                prefix: ns.prefix.as_ref().to_vec(),
                delimiter: ns.delimiter.as_ref().map(|d| d.inner()),
            },
            None => Untagged::Other,
        },
        _ => Untagged::Other,
    }
}

fn attribute_name(attribute: &FlagNameAttribute<'_>) -> String {
    attribute.to_string()
}

fn status_items(items: &[StatusDataItem]) -> StatusItems {
    let mut out = StatusItems::default();
    for item in items {
        match item {
            StatusDataItem::Messages(n) => out.messages = Some(*n),
            StatusDataItem::UidNext(n) => out.uid_next = Some(n.get()),
            StatusDataItem::UidValidity(v) => out.uid_validity = Some(v.get()),
            StatusDataItem::HighestModSeq(m) => out.highest_modseq = Some(*m),
            _ => {}
        }
    }
    out
}
