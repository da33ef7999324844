//! Folders: listing them (one `LIST ... RETURN (SPECIAL-USE STATUS (...))` where the server
//! can, else a STATUS per folder; a folder whose STATUS is refused is listed unreadable, a
//! `\Noselect` parent not at all), and creating, renaming and deleting one (only when it is
//! empty and has no subfolder).

use std::collections::HashMap;

use ferry_engine::store::{FolderInfo, StoreError, StoreResult};

use crate::conn::{Collect, Outcome, Piece, StatusItems, Untagged};
use crate::pool::{Alone, run};
use crate::refusal::{failed_to_open, own, refused, says_missing};
use crate::session::Caps;
use crate::status::status_items;
use crate::wire;
use crate::{ImapStore, lock};

/// The folders, with their special use and UIDVALIDITY, and the STATUS figures of each
/// remembered for the listings that follow.
pub(crate) async fn list_folders(store: &ImapStore) -> StoreResult<Vec<FolderInfo>> {
    let inner = &store.inner;
    let alone = inner.alone().await?;
    let caps = alone.slot.session.caps.clone();
    let status_items = status_items(&caps, inner.read_only);
    let command = list_command(&caps, status_items);
    let list = run(
        &alone.slot,
        vec![Piece::Text(command.into_bytes())],
        Collect::All,
    );
    // A server may leave the selected folder out of LIST-STATUS, and STATUS of it answers
    // from the session's own, older view: with nothing selected, every folder's figures
    // are current. UNSELECT goes out with the LIST, in the same round trip.
    let selected = lock(&alone.slot.selected).take().is_some();
    let done = if selected && caps.unselect {
        let unselect = run(
            &alone.slot,
            vec![Piece::Text(b"UNSELECT\r\n".to_vec())],
            Collect::Nothing,
        );
        let (unselected, listed) = futures::future::join(unselect, list).await;
        unselected?;
        listed?
    } else {
        list.await?
    };
    if done.outcome != Outcome::Ok {
        return Err(StoreError::Unusable(format!(
            "{}: cannot list folders: {}",
            inner.described, done.text
        )));
    }
    let naming = inner.naming();
    let mut folders = Vec::new();
    let mut statuses: HashMap<Vec<u8>, StatusItems> = HashMap::new();
    let mut listed = Vec::new();
    // Listed as holding no messages: a mere parent of other folders, or a folder the
    // server failed to open (Dovecot lists one so from then on, until its list index is
    // rebuilt, even once it can open it again). Its STATUS tells which.
    let mut noselect = Vec::new();
    for item in &done.data {
        match item {
            Untagged::List {
                attributes,
                delimiter,
                mailbox,
            } => {
                if naming.delimiter.is_none() && delimiter.is_some() {
                    let mut server = lock(&inner.server);
                    if let Some((_, naming)) = server.as_mut() {
                        naming.delimiter = *delimiter;
                    }
                }
                if wire::selectable(attributes) {
                    listed.push((mailbox.clone(), *delimiter, wire::special_use(attributes)));
                } else if !attributes
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case("\\NonExistent"))
                {
                    // Listed with no folder below it, it is no mere parent: a folder the
                    // server lists and cannot open (Dovecot, for a Maildir++ folder whose
                    // name on disk is raw UTF-8: `\Noselect \HasNoChildren`, then
                    // "Mailbox doesn't exist" to its STATUS).
                    let childless = attributes
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case("\\HasNoChildren"));
                    noselect.push((
                        mailbox.clone(),
                        *delimiter,
                        wire::special_use(attributes),
                        childless,
                    ));
                }
            }
            Untagged::Status { mailbox, items } => {
                statuses.insert(mailbox.clone(), *items);
            }
            _ => {}
        }
    }
    // Servers without LIST-STATUS: one STATUS per folder, pipelined. So too for a folder
    // LIST-STATUS gave no STATUS (Dovecot, for a folder it cannot open: an untagged
    // `NO [SERVERBUG]` instead) and for each `\Noselect` folder.
    let missing: Vec<(&Vec<u8>, Option<char>, bool)> = listed
        .iter()
        .map(|(m, d, _)| (m, *d, true))
        .chain(
            noselect
                .iter()
                .map(|(m, d, _, childless)| (m, *d, *childless)),
        )
        .filter(|(m, _, _)| !statuses.contains_key(*m))
        .collect();
    // The folders whose STATUS the server refused: `Some(its words)` for a folder it
    // cannot read, `None` for a `\Noselect` one that is a mere parent.
    let mut refusals: HashMap<Vec<u8>, Option<String>> = HashMap::new();
    if !missing.is_empty() {
        let runs = missing.iter().map(|(mailbox, _, _)| {
            let pieces = inner.command(&caps, "STATUS", mailbox, &format!(" ({status_items})"));
            run(&alone.slot, pieces, Collect::All)
        });
        let answers = futures::future::join_all(runs).await;
        for (&(mailbox, delimiter, selectable), done) in missing.iter().zip(answers) {
            // A lost session is the whole listing's failure.
            let done = done?;
            if done.outcome != Outcome::Ok {
                let path = naming.to_path(mailbox, delimiter);
                let refusal = refused(&done, &format!("STATUS {path}"));
                if matches!(refusal, StoreError::Throttled { .. }) {
                    return Err(refusal);
                }
                // A `\Noselect` folder is one the server failed to open only when it
                // says so; any other refusal is of a mere parent (see `failed_to_open`).
                let failed = failed_to_open(selectable, done.code_name());
                refusals.insert(mailbox.clone(), failed.then(|| own(refusal).to_string()));
                continue;
            }
            for item in done.data {
                if let Untagged::Status { mailbox, items } = item {
                    statuses.insert(mailbox, items);
                }
            }
        }
    }
    let mut cache = lock(&inner.statuses);
    cache.clear();
    let entries =
        listed
            .into_iter()
            .map(|entry| (entry, true))
            .chain(
                noselect
                    .into_iter()
                    .map(|(mailbox, delimiter, special_use, _)| {
                        ((mailbox, delimiter, special_use), false)
                    }),
            );
    for ((mailbox, delimiter, special_use), selectable) in entries {
        let path = naming.to_path(&mailbox, delimiter);
        let (validity, unreadable) = match refusals.remove(&mailbox) {
            // A mere parent of other folders: not a folder (as before).
            Some(None) => continue,
            // Its STATUS is asked again if its items are: no figures are kept.
            Some(Some(words)) => (None, Some(words)),
            None => {
                let status = statuses.get(&mailbox).copied().unwrap_or_default();
                if !selectable && status.uid_validity.is_none() {
                    // A `\Noselect` folder whose STATUS tells no UIDVALIDITY holds no
                    // messages: a mere parent too. With one, it is a folder the server
                    // can open again and still lists as `\Noselect` (Dovecot, until its
                    // list index is rebuilt).
                    continue;
                }
                cache.insert(path.clone(), status);
                (status.uid_validity.map(u64::from), None)
            }
        };
        folders.push(FolderInfo {
            special_use: if path == "INBOX" {
                Some(ferry_engine::event::SpecialUse::Inbox)
            } else {
                special_use
            },
            validity,
            unreadable,
            path,
            spec: Default::default(),
            description: None,
        });
    }
    Ok(folders)
}

/// The LIST of every folder: with LIST-EXTENDED, also asking whether each has children (a
/// `\Noselect` folder with none is no mere parent), its special use (with SPECIAL-USE) and its
/// STATUS `items` (with LIST-STATUS), so one command tells which folders changed.
fn list_command(caps: &Caps, items: &str) -> String {
    let with_status = caps.list_extended && caps.list_status;
    let mut returns = Vec::new();
    if caps.list_extended {
        // RFC 5258 §4: CHILDREN is a return option every LIST-EXTENDED server takes.
        returns.push("CHILDREN".to_owned());
    }
    if caps.special_use && caps.list_extended {
        returns.push("SPECIAL-USE".to_owned());
    }
    if with_status {
        returns.push(format!("STATUS ({items})"));
    }
    if returns.is_empty() {
        "LIST \"\" \"*\"\r\n".to_owned()
    } else {
        format!("LIST \"\" \"*\" RETURN ({})\r\n", returns.join(" "))
    }
}

/// CREATE (and SUBSCRIBE) `folder`; a folder that exists already is no error.
pub(crate) async fn create_folder(store: &ImapStore, folder: &str) -> StoreResult<()> {
    let inner = &store.inner;
    if inner.naming().delimiter.is_none() {
        // Learn the delimiter first.
        list_folders(store).await?;
    }
    let name = inner.server_name(folder)?;
    // CREATE and SUBSCRIBE need no folder selected: they share a connection with other
    // commands, so the folders of a run are created together.
    let (slot, _gate) = inner.any().await?;
    let caps = slot.session.caps.clone();
    let done = run(
        &slot,
        inner.command(&caps, "CREATE", &name, ""),
        Collect::All,
    )
    .await?;
    let exists = done.code_name() == Some("ALREADYEXISTS")
        || done.text.to_ascii_lowercase().contains("exists");
    if done.outcome != Outcome::Ok && !exists {
        // A server may refuse an existing folder without saying so (Courier: "Cannot
        // create this folder."): a repeated CREATE succeeds if LIST shows the folder.
        let listed = run(
            &slot,
            inner.command(&caps, "LIST \"\"", &name, ""),
            Collect::All,
        )
        .await?;
        let found = listed
            .data
            .iter()
            .any(|item| matches!(item, Untagged::List { mailbox, .. } if *mailbox == name));
        if !found {
            return Err(refused(&done, &format!("creating {folder}")));
        }
    }
    // Subscribed, so mail clients show it.
    let _ = run(
        &slot,
        inner.command(&caps, "SUBSCRIBE", &name, ""),
        Collect::All,
    )
    .await?;
    Ok(())
}

/// RENAME `from` to `to`; a rename already done is no error.
pub(crate) async fn rename_folder(store: &ImapStore, from: &str, to: &str) -> StoreResult<()> {
    let inner = &store.inner;
    let (old, new) = (inner.server_name(from)?, inner.server_name(to)?);
    let alone = inner.alone().await?;
    let caps = alone.slot.session.caps.clone();
    // No connection may keep the old folder selected.
    lock(&inner.selections).remove(from);
    for slot in lock(&inner.pool).slots.iter() {
        if slot.selected(from).is_some() {
            *lock(&slot.selected) = None;
        }
    }
    let mut line = b"RENAME ".to_vec();
    let mut pieces = Vec::new();
    wire::quoted_or_literal(&mut pieces, &mut line, &old, &caps);
    line.push(b' ');
    wire::quoted_or_literal(&mut pieces, &mut line, &new, &caps);
    line.extend_from_slice(b"\r\n");
    pieces.push(Piece::Text(line));
    let done = run(&alone.slot, pieces, Collect::All).await?;
    drop(alone);
    if done.outcome == Outcome::Ok {
        let alone = inner.alone().await?;
        let _ = run(
            &alone.slot,
            inner.command(&caps, "SUBSCRIBE", &new, ""),
            Collect::All,
        )
        .await?;
        return Ok(());
    }
    // A repeated rename: the old one is gone and the new one is there.
    if inner.status(to).await.is_ok() && inner.status(from).await.is_err() {
        return Ok(());
    }
    Err(refused(&done, &format!("renaming {from} to {to}")))
}

/// DELETE `folder`, only when it holds no message and no subfolder; one already gone is no
/// error.
pub(crate) async fn delete_folder(store: &ImapStore, folder: &str) -> StoreResult<()> {
    let inner = &store.inner;
    if folder.eq_ignore_ascii_case("INBOX") {
        return Err(StoreError::Permanent(format!(
            "{folder}: INBOX is never deleted"
        )));
    }
    if inner.read_only {
        return Err(StoreError::Permanent(format!(
            "{folder}: the store is opened read-only"
        )));
    }
    if inner.naming().delimiter.is_none() {
        // Learn the delimiter first.
        list_folders(store).await?;
    }
    let naming = inner.naming();
    let name = inner.server_name(folder)?;
    // Held alone (preferably the connection that has it selected), so no other command
    // of ferry's uses the folder meanwhile.
    let slot = inner.slot(Some(folder)).await?;
    let gate = slot.gate.clone().write_owned().await;
    let alone = Alone { slot, _gate: gate };
    let caps = alone.slot.session.caps.clone();
    // Its subfolders: a server deletes them with it, or refuses, or leaves a `\Noselect`
    // parent behind. They are folders of their own: while there is one, it is kept.
    if let Some(delimiter) = naming.delimiter {
        let mut pattern = name.clone();
        pattern.extend_from_slice(delimiter.to_string().as_bytes());
        pattern.push(b'%');
        let listed = run(
            &alone.slot,
            inner.command(&caps, "LIST \"\"", &pattern, ""),
            Collect::All,
        )
        .await?;
        if listed.outcome != Outcome::Ok {
            return Err(refused(
                &listed,
                &format!("listing the subfolders of {folder}"),
            ));
        }
        let child = listed.data.iter().find_map(|item| match item {
            Untagged::List {
                attributes,
                delimiter,
                mailbox,
            } if *mailbox != name
                && !attributes
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case("\\NonExistent")) =>
            {
                Some(naming.to_path(mailbox, *delimiter))
            }
            _ => None,
        });
        if let Some(child) = child {
            return Err(StoreError::Permanent(format!(
                "{folder} is kept: it holds the folder {child}"
            )));
        }
    }
    // Selected afresh: what is in it now, not as last listed.
    let selected = match inner.select(&alone.slot, folder).await {
        Ok(selected) => Some(selected),
        // Gone already: a repeated deletion.
        Err(StoreError::NotFound(_)) => None,
        Err(StoreError::Permanent(message)) if says_missing(&message) => None,
        Err(error) => return Err(error),
    };
    if let Some(selected) = selected {
        if selected.exists > 0 {
            return Err(StoreError::Permanent(format!(
                "{folder} is kept: it still holds {} message{}",
                selected.exists,
                if selected.exists == 1 { "" } else { "s" }
            )));
        }
        // No connection may keep it selected: a server may end a session whose selected
        // folder is deleted (Dovecot does).
        lock(&inner.selections).remove(folder);
        lock(&inner.statuses).remove(folder);
        for slot in lock(&inner.pool).slots.iter() {
            if slot.selected(folder).is_some() {
                *lock(&slot.selected) = None;
            }
        }
        // Left and deleted in one round trip. A message delivered in the round trip since
        // the SELECT would go with the folder: a folder ferry created, whose source folder
        // is gone, and that no one but ferry wrote to.
        let leave: &[u8] = if caps.unselect {
            b"UNSELECT\r\n"
        } else {
            // Expunges nothing: it holds no message.
            b"CLOSE\r\n"
        };
        let leave = run(
            &alone.slot,
            vec![Piece::Text(leave.to_vec())],
            Collect::Nothing,
        );
        let delete = run(
            &alone.slot,
            inner.command(&caps, "DELETE", &name, ""),
            Collect::All,
        );
        let (left, done) = futures::future::join(leave, delete).await;
        left?;
        let done = done?;
        if done.outcome != Outcome::Ok {
            match refused(&done, &format!("deleting {folder}")) {
                StoreError::NotFound(_) => {}
                StoreError::Permanent(message) if says_missing(&message) => {}
                error => return Err(error),
            }
        }
    }
    // Not offered to mail clients any more (CREATE subscribed it).
    let _ = run(
        &alone.slot,
        inner.command(&caps, "UNSUBSCRIBE", &name, ""),
        Collect::All,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_list_asks_for_special_uses_and_statuses_where_the_server_can() {
        let items = "UIDVALIDITY HIGHESTMODSEQ";
        let rich = Caps {
            list_extended: true,
            list_status: true,
            special_use: true,
            ..Caps::default()
        };
        assert_eq!(
            list_command(&rich, items),
            "LIST \"\" \"*\" RETURN (CHILDREN SPECIAL-USE STATUS (UIDVALIDITY HIGHESTMODSEQ))\r\n"
        );
        let no_status = Caps {
            list_status: false,
            ..rich.clone()
        };
        assert_eq!(
            list_command(&no_status, items),
            "LIST \"\" \"*\" RETURN (CHILDREN SPECIAL-USE)\r\n"
        );
        let no_special_use = Caps {
            special_use: false,
            ..rich.clone()
        };
        assert_eq!(
            list_command(&no_special_use, items),
            "LIST \"\" \"*\" RETURN (CHILDREN STATUS (UIDVALIDITY HIGHESTMODSEQ))\r\n"
        );
        // Without LIST-EXTENDED there is no RETURN: a STATUS per folder follows.
        let no_extended = Caps {
            list_extended: false,
            ..rich
        };
        assert_eq!(list_command(&no_extended, items), "LIST \"\" \"*\"\r\n");
        assert_eq!(list_command(&Caps::default(), items), "LIST \"\" \"*\"\r\n");
    }
}
