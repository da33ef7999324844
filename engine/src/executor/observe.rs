//! Observing the target. The journal says what ferry wrote; the target says what is there.
//! A journal restored from an older copy, or one that lost its tail, does not know the last
//! writes, so the target is never trusted from the journal alone: every target folder a source
//! folder maps to is listed at the start of each run, as changes since the change token ferry
//! recorded for it (free when nothing changed: IMAP answers from the folder listing's STATUS,
//! Maildir from its directory stamps), and anything there that ferry does not know is read,
//! hashed and matched by content, so it is never written again. At the end of a run, the
//! folders it wrote to are listed again, so their tokens include ferry's own writes and the
//! next run finds nothing new there.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt as _;

use crate::event::{Action, CheckState, Event, NativeId, Side};
use crate::projection::delta::{self, listing::TargetListing};
use crate::projection::target::TargetFolder;
use crate::store::{ItemInfo, Listing, StoreError};

use super::{Note, Run, RunError};

/// Folders listed in one exchange.
const LISTING_GROUP: usize = 64;
/// Items the folders of one exchange may hold together, as far as the state knows them: the
/// listings of a group are held at once, and a group of large folders (the end of a first run
/// relists every folder it filled) would hold the whole mailbox twice. A larger folder is
/// listed alone.
const LISTING_GROUP_ITEMS: usize = 16_384;

/// Splits folders, in order, into groups of at most [`LISTING_GROUP`] folders whose known
/// items add up to at most [`LISTING_GROUP_ITEMS`] (a folder above that on its own).
pub(super) fn listing_groups(
    folders: Vec<String>,
    known_items: impl Fn(&str) -> usize,
) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut items = 0;
    for folder in folders {
        let count = known_items(&folder);
        match groups.last_mut() {
            Some(group) if group.len() < LISTING_GROUP && items + count <= LISTING_GROUP_ITEMS => {
                items += count;
                group.push(folder);
            }
            _ => {
                items = count;
                groups.push(vec![folder]);
            }
        }
    }
    groups
}

/// Records which target folders an event writes to.
pub(super) fn touch(touched: &mut BTreeSet<String>, event: &Event) {
    match event {
        Event::Batch(events) => events.iter().for_each(|event| touch(touched, event)),
        Event::WriteIntent { action, .. } => match action {
            Action::CreateFolder { folder }
            | Action::CreateCollection { folder, .. }
            | Action::SetCollection { folder, .. }
            | Action::Append { folder, .. }
            | Action::Create { folder, .. }
            | Action::Update { folder, .. }
            | Action::DeleteIf { folder, .. }
            | Action::SetFlags { folder, .. }
            | Action::Delete { folder, .. }
            | Action::DeleteFolder { folder } => {
                touched.insert(folder.clone());
            }
            Action::RenameFolder { to, .. } => {
                touched.insert(to.clone());
            }
            Action::Move { from, folder, .. } => {
                touched.insert(from.clone());
                touched.insert(folder.clone());
            }
        },
        _ => {}
    }
}

impl Run<'_> {
    /// Lists the target's folders and records what changed there: folders recreated (a new
    /// UIDVALIDITY voids their ids), removed, their roles; then lists every target folder a
    /// source folder maps to (changes since its token) and, with `--verify-target`, every known
    /// folder in full, reading back what ferry wrote.
    pub(super) async fn observe_target(&mut self) -> Result<(), RunError> {
        let existing = self.target_folders().await?;
        let changes = delta::folders::folder_changes(&self.state.target, &existing);
        // A known folder with a new UIDVALIDITY was recreated: its ids are void (the target
        // projection forgets them and the folder is listed again below).
        self.record(changes.recreated)?;
        if let Some(roles) = changes.roles {
            self.record(vec![roles])?;
        }
        let validities: BTreeMap<String, Option<u64>> = existing
            .iter()
            .map(|f| (f.path.clone(), f.validity))
            .collect();
        // Target folders ferry knows that someone removed: forget them (and what was in them),
        // so the plan creates them again and copies their messages again.
        self.record(changes.removed)?;
        let verify = self.options.verify_target;
        let to_look = delta::folders::folders_to_list(
            &self.state.source,
            &self.state.target,
            &validities,
            verify,
        );
        self.list_target(to_look, &validities, verify).await
    }

    /// At the end of a run: lists again the target folders it wrote to, so that their tokens
    /// cover ferry's own writes (and anything someone else put there meanwhile is learnt).
    pub(super) async fn relist_touched(&mut self) -> Result<(), RunError> {
        let touched = std::mem::take(&mut self.touched);
        let folders: BTreeSet<String> = touched
            .into_iter()
            .filter(|path| self.state.target.folders.contains_key(path))
            .collect();
        if folders.is_empty() || self.stop.is_stopped() {
            return Ok(());
        }
        // The folder listing again: what a store knows of its folders' state (IMAP: the
        // STATUS that came with LIST) dates from before this run's writes.
        let existing = self.target_folders().await?;
        let validities: BTreeMap<String, Option<u64>> = existing
            .into_iter()
            .filter(|f| folders.contains(&f.path))
            .map(|f| (f.path, f.validity))
            .collect();
        let folders: BTreeSet<String> = validities.keys().cloned().collect();
        self.list_target(folders, &validities, false).await
    }

    /// The target's folders, with retries.
    async fn target_folders(&mut self) -> Result<Vec<crate::store::FolderInfo>, RunError> {
        let mut throttles = Vec::new();
        let existing = {
            let worker = self.worker();
            worker
                .retry(Side::Target, &mut throttles, || {
                    worker.target.list_folders()
                })
                .await
                .map_err(RunError::on(Side::Target))?
        };
        self.record(throttles)?;
        Ok(existing)
    }

    /// Lists target folders (changes since their tokens, or in full with `verify`) and records
    /// what is there: items ferry does not know are read and hashed (found, never deleted),
    /// known ones gone are missing, flags seen; with `verify`, every known item is read back.
    async fn list_target(
        &mut self,
        folders: BTreeSet<String>,
        validities: &BTreeMap<String, Option<u64>>,
        verify: bool,
    ) -> Result<(), RunError> {
        let known_items = |path: &str| {
            self.state
                .target
                .folders
                .get(path)
                .map_or(0, |known| known.items.len())
        };
        let groups = if self.target.capabilities().list_many {
            listing_groups(folders.into_iter().collect(), known_items)
        } else {
            // One folder per request, several requests in flight (see `list_many`).
            let folders: Vec<String> = folders.into_iter().collect();
            folders
                .chunks(LISTING_GROUP)
                .map(<[String]>::to_vec)
                .collect()
        };
        for group in groups {
            if self.stop.is_stopped() {
                break;
            }
            let asks: Vec<(String, Option<String>)> = group
                .iter()
                .map(|path| {
                    let since = match self.state.target.folders.get(path) {
                        Some(known) if !verify && (known.observed || known.created_by_ferry) => {
                            known.token.clone()
                        }
                        _ => None,
                    };
                    (path.clone(), since)
                })
                .collect();
            let listings = self.list_many(&asks).await?;
            for ((path, since), listing) in asks.into_iter().zip(listings) {
                let listing = match listing {
                    Ok(Listing::Changes { flags, .. })
                        if flags.iter().any(|(id, _)| !self.knows(&path, id)) =>
                    {
                        // An item told by its flags alone that ferry does not know: list in full.
                        self.list_many(&[(path.clone(), None)])
                            .await?
                            .pop()
                            .unwrap_or_else(|| Err(StoreError::NotFound(path.clone())))
                    }
                    other => other,
                };
                match listing {
                    Ok(listing) => {
                        let validity = validities.get(&path).copied().flatten();
                        self.take_listing(&path, since, validity, listing, verify)
                            .await?;
                    }
                    Err(StoreError::NotFound(_)) => {
                        // The whole folder is gone from the target.
                        let known = self.folder(&path);
                        let events = known
                            .items
                            .keys()
                            .map(|id| Event::TargetChecked {
                                folder: path.clone(),
                                id: id.clone(),
                                state: CheckState::Missing,
                            })
                            .collect();
                        self.record(events)?;
                    }
                    Err(error) => {
                        return Err(RunError::Store {
                            side: Side::Target,
                            error,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// `list_items_many` with retries.
    async fn list_many(
        &mut self,
        asks: &[(String, Option<String>)],
    ) -> Result<Vec<Result<Listing, StoreError>>, RunError> {
        let borrowed: Vec<(&str, Option<&str>)> = asks
            .iter()
            .map(|(path, since)| (path.as_str(), since.as_deref()))
            .collect();
        let mut events = Vec::new();
        if self.target.capabilities().list_many {
            let listings = {
                let worker = self.worker();
                worker
                    .retry(Side::Target, &mut events, || {
                        worker.target.list_items_many(&borrowed)
                    })
                    .await
                    .map_err(RunError::on(Side::Target))?
            };
            self.record(events)?;
            return Ok(listings);
        }
        // A store that lists one folder per request: several in flight.
        let results: Vec<_> = {
            let worker = self.worker();
            let worker = &worker;
            // Indexes, not references, go through the stream (see `read`).
            let borrowed = &borrowed;
            let calls = (0..borrowed.len()).map(move |index| async move {
                let mut throttles = Vec::new();
                let asked = [borrowed[index]];
                let listed = worker
                    .retry(Side::Target, &mut throttles, || {
                        worker.target.list_items_many(&asked)
                    })
                    .await;
                (listed, throttles)
            });
            futures::stream::iter(calls)
                .buffered(self.config.jobs.max(1))
                .collect()
                .await
        };
        let mut listings = Vec::with_capacity(asks.len());
        let mut failed = None;
        for ((listed, throttles), (path, _)) in results.into_iter().zip(asks) {
            events.extend(throttles);
            match listed {
                Ok(mut one) => listings.push(
                    one.pop()
                        .unwrap_or_else(|| Err(StoreError::NotFound(path.clone()))),
                ),
                Err(error) => failed = failed.or(Some(error)),
            }
        }
        self.record(events)?;
        match failed {
            Some(error) => Err(RunError::on(Side::Target)(error)),
            None => Ok(listings),
        }
    }

    fn folder(&self, path: &str) -> TargetFolder {
        self.state
            .target
            .folders
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    fn knows(&self, path: &str, id: &NativeId) -> bool {
        self.state
            .target
            .folders
            .get(path)
            .is_some_and(|folder| folder.items.contains_key(id))
    }

    /// Records one target folder's listing: what it changes (see
    /// [`delta::listing::target_listing`]), then what reading the items it does not know shows
    /// ([`delta::listing::checked`]).
    async fn take_listing(
        &mut self,
        path: &str,
        since: Option<String>,
        validity: Option<u64>,
        listing: Listing,
        verify: bool,
    ) -> Result<(), RunError> {
        self.watcher
            .note(Note::Listing(Side::Target, path.to_owned()));
        // Borrowed, not cloned: a folder of many thousand items is compared id by id.
        let empty = TargetFolder::default();
        let TargetListing {
            events,
            to_read,
            token,
        } = {
            let known = self.state.target.folders.get(path).unwrap_or(&empty);
            delta::listing::target_listing(path, known, validity, listing, verify)
        };
        self.record(events)?;
        // An item whose store keeps ferry's identity of its content beside it is taken at
        // that word, not read (its bytes are rendered anew at every read).
        let (marked, to_read): (Vec<ItemInfo>, Vec<ItemInfo>) =
            to_read.into_iter().partition(|item| item.content.is_some());
        let marked: Vec<Event> = marked
            .into_iter()
            .filter_map(|item| {
                Some(Event::ItemSeen {
                    side: Side::Target,
                    folder: path.to_owned(),
                    content: *item.content?,
                    id: item.id,
                    size: item.size,
                    flags: item.flags,
                    date: item.date,
                })
            })
            .collect();
        if !marked.is_empty() {
            let checked = {
                let known = self.state.target.folders.get(path).unwrap_or(&empty);
                delta::listing::checked(known, marked)
            };
            self.record(checked.events)?;
        }
        let mut unread = false;
        for chunk in to_read.chunks(self.config.batch_max.max(1)) {
            let read = {
                let worker = self.worker();
                worker.hash_items(Side::Target, path, chunk, false).await.0
            };
            let checked = {
                let known = self.state.target.folders.get(path).unwrap_or(&empty);
                delta::listing::checked(known, read)
            };
            for failed in &checked.unread {
                self.watcher.note(Note::ItemFailed(failed.clone()));
            }
            unread |= !checked.unread.is_empty();
            self.record(checked.events)?;
        }
        // An item that could not be read is not known: the token stays where it was, so the
        // next run's listing shows it again.
        let token = if unread { since } else { token };
        self.record(vec![Event::FolderListed {
            side: Side::Target,
            folder: path.to_owned(),
            token,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_groups_bound_folders_and_known_items() {
        let sizes = [
            ("a", 10_000),
            ("b", 6_000),
            ("c", 1),
            ("d", 40_000),
            ("e", 0),
        ];
        let names = sizes.iter().map(|(name, _)| name.to_string()).collect();
        let known = |path: &str| {
            sizes
                .iter()
                .find(|(name, _)| *name == path)
                .map_or(0, |s| s.1)
        };
        let groups = listing_groups(names, known);
        assert_eq!(
            groups,
            vec![vec!["a", "b", "c"], vec!["d"], vec!["e"]]
                .into_iter()
                .map(|group| group.into_iter().map(String::from).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        );
        let many: Vec<String> = (0..130).map(|i| format!("f{i}")).collect();
        let lens: Vec<usize> = listing_groups(many, |_| 0).iter().map(Vec::len).collect();
        assert_eq!(lens, vec![64, 64, 2]);
    }
}
