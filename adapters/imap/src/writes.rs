//! Writing messages: append probes (`prepare_folders`, `prepare_appends`), APPEND (MULTIAPPEND
//! and APPENDUID, flags the folder cannot keep dropped and reported), flags (`UID STORE`),
//! deletions (`UID EXPUNGE`, or without UIDPLUS an EXPUNGE only when nothing else is marked),
//! `UID MOVE` (COPYUID names the new messages), and finding a write whose reply was lost.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ferry_engine::body::read_back;
use ferry_engine::event::NativeId;
use ferry_engine::flags::Flags;
use ferry_engine::journal::{ContentHash, ContentKey};
use ferry_engine::store::{AppendProbe, NewMessage, StoreError, StoreResult};

use crate::conn::{Collect, DoneCode, Outcome, Piece, Untagged};
use crate::fetch::fetch_bodies;
use crate::ids::{current_uid, make_id, parse_id};
use crate::pool::run;
use crate::refusal::refused;
use crate::wire;
use crate::{ImapStore, Inner, lock};

/// Connections that appends in flight at once are spread over...
const APPEND_CONNECTIONS: usize = 2;
/// ...when one APPEND carries at least this many bytes.
const APPEND_SPREAD_BYTES: usize = 256 << 10;
/// Connections that flag changes and deletions open: each is a few bytes per message, and a
/// session costs more than a kilobyte to open, so the folders' updates take turns on one.
const UPDATE_CONNECTIONS: usize = 1;

/// Messages read per UID FETCH when hashing a folder's messages to find a write in doubt.
const HASH_BATCH: usize = 16;

/// The one result of a `*_many` call made for one item.
pub(crate) fn one(results: Vec<StoreResult<()>>) -> StoreResult<()> {
    results.into_iter().next().unwrap_or_else(|| {
        Err(StoreError::Transient(
            "the server answered no result for one change".into(),
        ))
    })
}

impl Inner {
    /// Remembers keywords the target could not keep, for
    /// [`Store::notices`](ferry_engine::store::Store::notices).
    fn note_dropped(&self, folder: &str, dropped: Vec<String>) {
        if !dropped.is_empty() {
            let mut seen = lock(&self.dropped_keywords);
            for keyword in dropped {
                seen.insert((folder.to_owned(), keyword));
            }
        }
    }

    /// The keyed hashes of the messages of `folder` with UIDs from `from` on.
    async fn hashes_from(
        &self,
        folder: &str,
        from: Option<u32>,
        key: &ContentKey,
    ) -> StoreResult<(u32, Vec<(u32, ContentHash)>)> {
        let (alone, selected) = self.exclusive(folder).await?;
        let range = match from {
            Some(from) => format!("UID SEARCH UID {from}:*\r\n"),
            None => "UID SEARCH ALL\r\n".to_owned(),
        };
        let done = run(
            &alone.slot,
            vec![Piece::Text(range.into_bytes())],
            Collect::All,
        )
        .await?;
        let mut uids: Vec<u32> = done
            .data
            .iter()
            .filter_map(|item| match item {
                Untagged::Search(uids) => Some(uids.clone()),
                _ => None,
            })
            .flatten()
            .filter(|uid| from.is_none_or(|from| *uid >= from))
            .collect();
        uids.sort_unstable();
        // Read only the messages not hashed before in this run, a few per UID FETCH, each body
        // dropped once hashed: after a UIDVALIDITY change this is a whole folder, and its large
        // messages must not all be held (spooled) at once.
        let uncached: Vec<u32> = {
            let hashes = lock(&self.hashes);
            uids.iter()
                .copied()
                .filter(|uid| !hashes.contains_key(&(folder.to_owned(), selected.validity, *uid)))
                .collect()
        };
        for batch in uncached.chunks(HASH_BATCH) {
            let bodies = fetch_bodies(
                &alone.slot,
                batch.iter().copied().collect(),
                self.spool_dir.as_deref(),
            )
            .await?;
            for (uid, body) in bodies {
                let hash = body
                    .hash(key)
                    .map_err(|e| StoreError::Transient(read_back(&e)))?;
                lock(&self.hashes).insert((folder.to_owned(), selected.validity, uid), hash);
            }
        }
        let hashes = lock(&self.hashes);
        let out = uids
            .into_iter()
            .filter_map(|uid| {
                let hash = hashes.get(&(folder.to_owned(), selected.validity, uid))?;
                Some((uid, *hash))
            })
            .collect();
        Ok((selected.validity, out))
    }
}

/// Selects the `folders` a run is about to append to, all at once, so that their append
/// probes need no SELECT each (with UIDPLUS only).
pub(crate) async fn prepare_folders(store: &ImapStore, folders: &[&str]) -> StoreResult<()> {
    // Without UIDPLUS every batch selects its folder anew (`prepare_appends`).
    let inner = &store.inner;
    if folders.is_empty() || !inner.caps().uidplus {
        return Ok(());
    }
    let alone = inner.alone().await?;
    let caps = alone.slot.session.caps.clone();
    *lock(&alone.slot.selected) = None;
    // Every SELECT goes out at once; each answer is remembered (`selected_from`), and the
    // connection keeps the last folder selected when its SELECT succeeded.
    let mut selects = Vec::new();
    for folder in folders {
        selects.push(run(
            &alone.slot,
            inner.select_command(&caps, folder, None)?,
            Collect::All,
        ));
    }
    let mut last = None;
    for (folder, done) in folders.iter().zip(futures::future::join_all(selects).await) {
        last = inner.selected_from(folder, &done?).ok();
    }
    *lock(&alone.slot.selected) = last;
    Ok(())
}

/// `count` append probes for `folder`: its UIDVALIDITY and UIDNEXT before the appends.
pub(crate) async fn prepare_appends(
    store: &ImapStore,
    folder: &str,
    count: usize,
) -> StoreResult<Vec<AppendProbe>> {
    // SELECT rather than STATUS: it also tells which flags and keywords the folder keeps
    // (PERMANENTFLAGS), which the appends that follow respect. With UIDPLUS, what an
    // earlier SELECT of the folder said serves without a new one (one round trip less per
    // batch; `prepare_folders` selects a run's new folders together): its UIDNEXT is
    // raised by every APPENDUID ferry gets, and can only be lower than the server's, which
    // makes a probe look at more candidates, never fewer.
    let known = lock(&store.inner.selections).get(folder).cloned();
    let selected = if store.inner.caps().uidplus {
        match known {
            Some(selected) => selected,
            None => store.inner.shared(folder).await?.selected.clone(),
        }
    } else {
        let (alone, selected) = store.inner.exclusive(folder).await?;
        drop(alone);
        selected
    };
    let mut uid_next = selected.uid_next;
    if uid_next == 0 {
        // Some servers (Courier 5.0) leave UIDNEXT out of SELECT: STATUS tells it, and the
        // folder's remembered selection keeps it, raised by later APPENDUIDs.
        let status = store.inner.status_of(folder, "UIDVALIDITY UIDNEXT").await?;
        if status.uid_validity == Some(selected.validity) {
            uid_next = status.uid_next.unwrap_or(0);
        }
        if let Some(known) = lock(&store.inner.selections).get_mut(folder)
            && known.validity == selected.validity
        {
            known.uid_next = known.uid_next.max(uid_next);
        }
    }
    if uid_next == 0 {
        return Err(StoreError::Transient(format!(
            "{folder}: the server said neither in SELECT nor in STATUS what its UIDNEXT is"
        )));
    }
    Ok(vec![
        AppendProbe(format!("{}:{uid_next}", selected.validity));
        count
    ])
}

/// One APPEND of `messages` to `folder`; their new ids when the server said (APPENDUID).
pub(crate) async fn append_many(
    store: &ImapStore,
    folder: &str,
    messages: &[NewMessage<'_>],
) -> StoreResult<Vec<Option<NativeId>>> {
    let inner = &store.inner;
    let name = inner.server_name(folder)?;
    // The server stores one APPEND after the other on a connection: large appends in
    // flight at once are spread over two, so two server processes store them. Small ones
    // are not worth the kilobyte a session costs to open.
    let bytes: u64 = messages.iter().map(|m| m.bytes.len()).sum();
    let spread = if bytes >= APPEND_SPREAD_BYTES as u64 {
        APPEND_CONNECTIONS
    } else {
        1
    };
    let (slot, _gate) = inner.any_spread(spread).await?;
    let caps = slot.session.caps.clone();
    let permanent = inner.permanent_flags(folder);
    // APPEND mailbox (flags) date {n+}<bytes> (flags) date {n+}<bytes> ... CRLF
    let mut line = b"APPEND ".to_vec();
    let mut pieces = Vec::new();
    wire::quoted_or_literal(&mut pieces, &mut line, &name, &caps);
    for message in messages {
        let (flag_list, dropped) = wire::flag_list(message.flags, permanent.as_deref());
        inner.note_dropped(folder, dropped);
        line.push(b' ');
        line.extend_from_slice(flag_list.as_bytes());
        if let Some(date) = message.date.and_then(wire::date_time) {
            line.push(b' ');
            line.extend_from_slice(date.as_bytes());
        }
        if caps.utf8 {
            // RFC 6855: with UTF8=ACCEPT enabled, a message (which may have UTF-8 in its
            // header) goes as `UTF8 (literal8)`. Always after a flag list, even `()`:
            // Courier 5.0 takes an atom right after the mailbox name for a flag.
            line.extend_from_slice(b" UTF8 (");
            wire::literal8(&mut pieces, &mut line, message.bytes.clone(), &caps);
            line.push(b')');
        } else {
            line.push(b' ');
            wire::literal(&mut pieces, &mut line, message.bytes.clone(), &caps);
        }
    }
    line.extend_from_slice(b"\r\n");
    pieces.push(Piece::Text(line));
    let done = run(&slot, pieces, Collect::Nothing).await?;
    if done.outcome != Outcome::Ok {
        let what = match messages.len() {
            1 => format!("APPEND to {folder}"),
            n => format!("APPEND of {n} messages to {folder}"),
        };
        return Err(refused(&done, &what));
    }
    Ok(match done.code {
        Some(DoneCode::AppendUids { validity, uids }) if uids.len() == messages.len() => {
            if let Some(&last) = uids.iter().max() {
                inner.appended(folder, validity, last);
            }
            uids.into_iter()
                .map(|uid| Some(make_id(validity, uid)))
                .collect()
        }
        Some(DoneCode::AppendUid { validity, uid }) if messages.len() == 1 => {
            inner.appended(folder, validity, uid);
            vec![Some(make_id(validity, uid))]
        }
        _ => vec![None; messages.len()],
    })
}

/// Deletes message `id` of `folder`.
pub(crate) async fn delete(store: &ImapStore, folder: &str, id: &NativeId) -> StoreResult<()> {
    if store.inner.caps().uidplus {
        // UID EXPUNGE of a one-UID set: the same commands as for many.
        return one(delete_many(store, folder, &[id]).await?);
    }
    // Without UID EXPUNGE, the check that nothing else is marked needs the connection
    // alone, and marking and expunging happen on it in order.
    let (alone, selected) = store.inner.exclusive(folder).await?;
    let slot = alone.slot.0.clone();
    let uid = current_uid(folder, id, selected.validity)?;
    let command = format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)\r\n");
    let done = run(
        &slot,
        vec![Piece::Text(command.into_bytes())],
        Collect::Nothing,
    )
    .await?;
    if done.outcome != Outcome::Ok {
        return Err(refused(&done, &format!("deleting in {folder}")));
    }
    // Without UID EXPUNGE, EXPUNGE removes every message marked \Deleted: only when this
    // one is the only such message, so nothing its owner marked goes with it. Otherwise it
    // stays marked \Deleted (hidden by most clients) until the owner expunges.
    let search = b"UID SEARCH DELETED\r\n".to_vec();
    let done = run(&slot, vec![Piece::Text(search)], Collect::All).await?;
    let marked: Vec<u32> = done
        .data
        .iter()
        .filter_map(|item| match item {
            Untagged::Search(uids) => Some(uids.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    if marked == [uid] {
        let expunge = b"EXPUNGE\r\n".to_vec();
        let done = run(&slot, vec![Piece::Text(expunge)], Collect::All).await?;
        if done.outcome != Outcome::Ok {
            return Err(refused(&done, &format!("expunging in {folder}")));
        }
    }
    Ok(())
}

/// Sets the flags of messages of `folder`: one UID STORE per distinct flag set.
pub(crate) async fn set_flags_many(
    store: &ImapStore,
    folder: &str,
    items: &[(&NativeId, &Flags)],
) -> StoreResult<Vec<StoreResult<()>>> {
    let shared = store
        .inner
        .shared_spread(folder, UPDATE_CONNECTIONS)
        .await?;
    let validity = shared.selected.validity;
    // One UID STORE per distinct flag set, all sent at once.
    let mut groups: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let mut results: Vec<StoreResult<()>> = Vec::with_capacity(items.len());
    let mut list_of = Vec::with_capacity(items.len());
    for (id, flags) in items {
        match current_uid(folder, id, validity) {
            Ok(uid) => {
                let (list, dropped) =
                    wire::flag_list(flags, shared.selected.permanent_flags.as_deref());
                store.inner.note_dropped(folder, dropped);
                groups.entry(list.clone()).or_default().insert(uid);
                list_of.push(Some(list));
                results.push(Ok(()));
            }
            Err(error) => {
                list_of.push(None);
                results.push(Err(error));
            }
        }
    }
    let runs = groups.iter().map(|(list, uids)| {
        let command = format!("UID STORE {} FLAGS.SILENT {list}\r\n", wire::uid_set(uids));
        run(
            &shared.slot,
            vec![Piece::Text(command.into_bytes())],
            Collect::Nothing,
        )
    });
    let mut refusals: HashMap<&String, StoreError> = HashMap::new();
    for (list, done) in groups.keys().zip(futures::future::join_all(runs).await) {
        let done = done?;
        if done.outcome != Outcome::Ok {
            refusals.insert(list, refused(&done, &format!("setting flags in {folder}")));
        }
    }
    for (result, list) in results.iter_mut().zip(&list_of) {
        if let Some(list) = list
            && let Some(error) = refusals.get(list)
        {
            *result = Err(error.clone());
        }
    }
    Ok(results)
}

/// Deletes messages of `folder`: marked `\Deleted`, then UID EXPUNGE of just those.
pub(crate) async fn delete_many(
    store: &ImapStore,
    folder: &str,
    ids: &[&NativeId],
) -> StoreResult<Vec<StoreResult<()>>> {
    if !store.inner.caps().uidplus {
        // Without UID EXPUNGE each deletion checks what else is marked: one by one.
        return Ok(ferry_engine::store::delete_each(store, folder, ids).await);
    }
    let shared = store
        .inner
        .shared_spread(folder, UPDATE_CONNECTIONS)
        .await?;
    let validity = shared.selected.validity;
    let mut uids = BTreeSet::new();
    let results: Vec<StoreResult<()>> = ids
        .iter()
        .map(|id| {
            current_uid(folder, id, validity).map(|uid| {
                uids.insert(uid);
            })
        })
        .collect();
    if uids.is_empty() {
        return Ok(results);
    }
    // Marked, then expunged once the mark is done, on one connection (Dovecot may run
    // pipelined commands side by side, and an EXPUNGE sent with the STORE can miss its
    // flag); UID EXPUNGE removes only these messages, never others marked by their owner.
    let set = wire::uid_set(&uids);
    let marked = run(
        &shared.slot,
        vec![Piece::Text(
            format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)\r\n").into_bytes(),
        )],
        Collect::Nothing,
    )
    .await?;
    if marked.outcome != Outcome::Ok {
        return Err(refused(&marked, &format!("deleting in {folder}")));
    }
    let expunged = run(
        &shared.slot,
        vec![Piece::Text(format!("UID EXPUNGE {set}\r\n").into_bytes())],
        Collect::Nothing,
    )
    .await?;
    if expunged.outcome != Outcome::Ok {
        return Err(refused(&expunged, &format!("expunging in {folder}")));
    }
    Ok(results)
}

/// One `UID MOVE set "to"` on the update connection; each message's new UID from the
/// COPYUID the server sends with it (RFC 6851), whose source UIDs name the messages.
pub(crate) async fn move_many(
    store: &ImapStore,
    from: &str,
    ids: &[&NativeId],
    to: &str,
) -> StoreResult<Vec<StoreResult<Option<NativeId>>>> {
    let inner = &store.inner;
    let destination = inner.server_name(to)?;
    let shared = inner.shared_spread(from, UPDATE_CONNECTIONS).await?;
    let validity = shared.selected.validity;
    let uids: Vec<StoreResult<u32>> = ids
        .iter()
        .map(|id| current_uid(from, id, validity))
        .collect();
    let set: BTreeSet<u32> = uids
        .iter()
        .filter_map(|uid| uid.as_ref().ok())
        .copied()
        .collect();
    if set.is_empty() {
        return Ok(uids.into_iter().map(|uid| uid.map(|_| None)).collect());
    }
    let caps = &shared.slot.session.caps;
    let verb = format!("UID MOVE {}", wire::uid_set(&set));
    let done = run(
        &shared.slot,
        inner.command(caps, &verb, &destination, ""),
        Collect::All,
    )
    .await?;
    if done.outcome != Outcome::Ok {
        return Err(refused(&done, &format!("moving from {from} to {to}")));
    }
    let mut new_uids: HashMap<u32, (u32, u32)> = HashMap::new();
    let codes = done
        .data
        .iter()
        .filter_map(|item| match item {
            Untagged::Code(code) => Some(code),
            _ => None,
        })
        .chain(done.code.as_ref());
    for code in codes {
        if let DoneCode::CopyUid {
            validity,
            source,
            destination,
        } = code
            && source.len() == destination.len()
        {
            for (old, new) in source.iter().zip(destination) {
                if set.contains(old) {
                    new_uids.insert(*old, (*validity, *new));
                }
            }
        }
    }
    Ok(uids
        .into_iter()
        .map(|uid| {
            let uid = uid?;
            Ok(new_uids.get(&uid).map(|&(validity, new)| {
                inner.appended(to, validity, new);
                make_id(validity, new)
            }))
        })
        .collect())
}

/// The messages of `folder` whose content is `content`, from the UIDNEXT of `probe` on (all
/// of them after a UIDVALIDITY change): where a write whose reply was lost went.
pub(crate) async fn find_appended(
    store: &ImapStore,
    folder: &str,
    probe: &AppendProbe,
    content: &ContentHash,
    key: &ContentKey,
) -> StoreResult<Vec<NativeId>> {
    // The probe is UIDVALIDITY:UIDNEXT, an id's shape.
    let (validity, from) = parse_id(&NativeId(probe.0.clone())).unwrap_or((0, 1));
    let current = store.inner.status(folder).await?;
    // Recreated since the probe: any message may be the one.
    let from = (current.uid_validity == Some(validity)).then_some(from);
    let (current_validity, hashes) = store.inner.hashes_from(folder, from, key).await?;
    Ok(hashes
        .into_iter()
        .filter(|(_, hash)| hash == content)
        .map(|(uid, _)| make_id(current_validity, uid))
        .collect())
}
