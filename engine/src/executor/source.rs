//! Observing the source: its folders (new, changed, vanished, unreadable), then every folder's
//! items, as changes since the folder's change token where the store has them. What a listing
//! changes is recorded (items gone, flags changed); items not seen before are read next (see
//! `read`), with the target folders their copies need created first.

use std::collections::{BTreeSet, HashMap};

use futures::StreamExt as _;

use crate::event::{ContentHash, Event, NativeId, Side};
use crate::item::FolderSpec;
use crate::projection::delta::{self, Delta};
use crate::store::{FolderInfo, ItemInfo, Listing, StoreError};

use super::{LISTINGS_PER_REQUEST, Note, Run, RunError};

/// One source folder's listing, turned into work: the items to read, and the event that
/// records the listing once they are read (`None` when the listing changed nothing).
pub(super) struct FolderWork {
    pub(super) path: String,
    pub(super) to_read: Vec<ItemInfo>,
    pub(super) listed: Option<Event>,
}

impl Run<'_> {
    /// Lists the source's folders; records new, changed and vanished ones.
    ///
    /// A folder the source lists but cannot read now ([`FolderInfo::unreadable`]: Dovecot's
    /// `NO [SERVERBUG]` to its STATUS, or `\Noselect` from then on) is neither changed nor
    /// gone: its UIDVALIDITY is unknown, not new, so what is known of it stays, and
    /// [`Run::list_source_folders`] reports it. While one cannot be read, no folder that
    /// vanished is taken as deleted either (its messages may be in the one that cannot be
    /// read, renamed or moved there): nothing ferry copied from it is deleted on the target
    /// until every folder can be read.
    pub(super) async fn observe_source_folders(&mut self) -> Result<Vec<FolderInfo>, RunError> {
        let mut throttles = Vec::new();
        let folders = {
            let worker = self.worker();
            worker
                .retry(Side::Source, &mut throttles, || {
                    worker.source.list_folders()
                })
                .await
                .map_err(RunError::on(Side::Source))?
        };
        let mut events = throttles;
        let listed: BTreeSet<&str> = folders.iter().map(|f| f.path.as_str()).collect();
        for folder in &folders {
            if folder.unreadable.is_some() {
                continue;
            }
            let known = self.state.source.folders.get(&folder.path);
            if known.is_none_or(|k| {
                k.validity != folder.validity || k.special_use != folder.special_use
            }) {
                events.push(Event::FolderSeen {
                    side: Side::Source,
                    folder: folder.path.clone(),
                    special_use: folder.special_use,
                    validity: folder.validity,
                });
            }
            let mail = FolderSpec::mail();
            if *known.map_or(&mail, |k| &k.spec) != folder.spec {
                events.push(Event::CollectionSeen {
                    side: Side::Source,
                    folder: folder.path.clone(),
                    spec: folder.spec.clone(),
                });
            }
            if known.and_then(|k| k.description.as_ref()) != folder.description.as_ref() {
                events.push(Event::CollectionDescribed {
                    side: Side::Source,
                    folder: folder.path.clone(),
                    description: folder.description.clone(),
                });
            }
        }
        let blocked = folders.iter().find(|f| f.unreadable.is_some());
        for path in self.state.source.folders.keys() {
            if listed.contains(path.as_str()) {
                continue;
            }
            match blocked {
                None => events.push(Event::FolderGone {
                    side: Side::Source,
                    folder: path.clone(),
                }),
                Some(unreadable) => self.watcher.note(Note::ItemFailed(format!(
                    "source folder {path} is gone: not taken as deleted while {} cannot be read",
                    unreadable.path
                ))),
            }
        }
        self.record(events)?;
        Ok(folders)
    }

    /// Lists the items of every source folder (or the changes since its token) and reads the
    /// items not seen before. When no vanished folder can make a rename, what must be copied
    /// is copied chunk by chunk as it is read, so each message crosses the wire once.
    ///
    /// Over a slow link the round trips of each folder (select, list, create on the target,
    /// select there) would add up folder after folder, so the work is laid out to overlap
    /// them: the listings go out several at a time, the target folders the copies need are
    /// created together before the first copy, and the chunks of all folders form one
    /// sequence in which the next chunk is read while the one before is written, across
    /// folder boundaries.
    pub(super) async fn observe_source_items(
        &mut self,
        folders: &[FolderInfo],
    ) -> Result<(), RunError> {
        // A target that holds no messages gets none ahead: the plan reports them as skipped.
        let copy_ahead = !self.options.dry_run
            && self.state.source.vanished.is_empty()
            && self.target.capabilities().holds(crate::item::Kind::Message);
        let work = self.list_source_folders(folders).await?;
        // Only copies made while reading need their folders now (a run with nothing new to
        // read skips the plan this takes).
        let reading = work.iter().any(|folder| !folder.to_read.is_empty());
        if copy_ahead && reading {
            // Once every folder is listed, the plan knows the folders to create and what it
            // would delete: new items with one of those contents are copied with the plan,
            // which moves the old copy instead.
            let plan = delta::delta(&self.state.source, &self.state.target, &self.options);
            if self.moves() {
                self.movable = delta::ahead::movable(&plan);
            }
            if !self.stop.is_stopped() {
                self.create_folders_ahead(plan.create_folders).await?;
            }
        }
        self.read_source_items(work, copy_ahead).await
    }

    /// Lists every source folder, [`LISTINGS_PER_REQUEST`] at a time, and notes what each
    /// listing changes (items gone, flags changed). Returns, per folder listed, the items to
    /// read and the event that records the listing once they are read.
    async fn list_source_folders(
        &mut self,
        folders: &[FolderInfo],
    ) -> Result<Vec<FolderWork>, RunError> {
        /// What says that a source folder is not listed this run, and why: the run goes on
        /// with the other folders, ends with failures (exit 1), and infers nothing from it
        /// (no item gone, nothing deleted on the target) until it is listed again.
        fn not_listed(path: &str, reason: &str) -> (Note, Event) {
            (
                Note::ItemFailed(format!("source folder {path} skipped: {reason}")),
                Event::FolderUnreadable {
                    side: Side::Source,
                    folder: path.to_owned(),
                    reason: reason.to_owned(),
                },
            )
        }
        let tokens = self.source.capabilities().change_tokens && !self.options.full;
        let no_folder = crate::projection::source::SourceFolder::default();
        // A folder the source lists but says it cannot read is not asked again this run.
        let mut events = Vec::new();
        for folder in folders {
            if let Some(reason) = &folder.unreadable {
                let (note, event) = not_listed(&folder.path, reason);
                self.watcher.note(note);
                self.folder_problems += 1;
                events.push(event);
            }
        }
        self.record(events)?;
        // What to ask of each folder, decided before the first listing goes out. Items that
        // could not be read last time are read again: list in full.
        let asks: Vec<(&str, Option<String>)> = folders
            .iter()
            .filter(|folder| folder.unreadable.is_none())
            .map(|folder| {
                let known = self
                    .state
                    .source
                    .folders
                    .get(&folder.path)
                    .unwrap_or(&no_folder);
                let since = (tokens && known.listed && known.unreadable.is_empty())
                    .then(|| known.token.clone())
                    .flatten();
                (folder.path.as_str(), since)
            })
            .collect();
        // Folders are listed in groups, each in one exchange where the store can (IMAP sends
        // every EXAMINE and FETCH of a group at once on one connection); a store that lists
        // one folder per request gets several requests in flight instead.
        let mut listings = Vec::with_capacity(asks.len());
        let (group_size, in_flight) = if self.source.capabilities().list_many {
            (LISTINGS_PER_REQUEST, 1)
        } else {
            (1, self.config.jobs.max(1))
        };
        for batch in asks.chunks(group_size * in_flight) {
            if self.stop.is_stopped() {
                break;
            }
            let results: Vec<_> = {
                let worker = self.worker();
                let worker = &worker;
                // Indexes, not references, go through the stream (see `read`).
                let groups: Vec<_> = batch.chunks(group_size).collect();
                let calls = (0..groups.len()).map(move |index| {
                    let group = groups[index];
                    async move {
                        let asked: Vec<(&str, Option<&str>)> = group
                            .iter()
                            .map(|(path, since)| (*path, since.as_deref()))
                            .collect();
                        let mut events = Vec::new();
                        let listed = worker
                            .retry(Side::Source, &mut events, || {
                                worker.source.list_items_many(&asked)
                            })
                            .await;
                        (group.len(), listed, events)
                    }
                });
                futures::stream::iter(calls)
                    .buffered(in_flight)
                    .collect()
                    .await
            };
            for (asked, listed, events) in results {
                self.defer(events);
                match listed {
                    Ok(group_listings) if group_listings.len() == asked => {
                        listings.extend(group_listings);
                    }
                    Ok(_) => {
                        return Err(RunError::on(Side::Source)(StoreError::Transient(
                            "the source gave a listing count other than the folders asked".into(),
                        )));
                    }
                    Err(error) => return Err(RunError::on(Side::Source)(error)),
                }
            }
        }
        // Items that left a folder in this pass, by id, for a store whose ids hold across
        // folders: met again in another folder, they moved, and their content is known.
        let global_ids = self.source.capabilities().global_ids;
        let mut departed: HashMap<NativeId, (ContentHash, u64)> = HashMap::new();
        let mut work = Vec::new();
        for ((path, since), listing) in asks.iter().zip(listings) {
            if self.stop.is_stopped() {
                // Folders are left unlisted: the run is paused, whatever the plan says.
                self.ahead.paused = true;
                break;
            }
            let mut events = Vec::new();
            let path = *path;
            self.watcher
                .note(Note::Listing(Side::Source, path.to_owned()));
            let listing = match listing {
                Ok(listing) => listing,
                // This folder cannot be listed as it is (the server refused it, whatever it
                // said): report it in the server's words and go on with the others.
                Err(
                    error @ (StoreError::Permanent(_)
                    | StoreError::NotFound(_)
                    | StoreError::Transient(_)),
                ) => {
                    let (note, event) = not_listed(path, &error.to_string());
                    self.watcher.note(note);
                    self.folder_problems += 1;
                    events.push(event);
                    self.record(events)?;
                    continue;
                }
                Err(error) => return Err(RunError::on(Side::Source)(error)),
            };
            // A change listing that tells flags of an item this journal does not know cannot
            // be used (its size and date are missing): the folder is listed in full.
            let known_items = &self
                .state
                .source
                .folders
                .get(path)
                .unwrap_or(&no_folder)
                .items;
            let unknown_flags = matches!(&listing, Listing::Changes { flags, .. }
                if flags.iter().any(|(id, _)| !known_items.contains_key(id)));
            let listing = if unknown_flags {
                let relisted = {
                    let worker = self.worker();
                    worker
                        .retry(Side::Source, &mut events, || {
                            worker.source.list_items(path, None)
                        })
                        .await
                };
                match relisted {
                    Ok(listing) => listing,
                    // Refused now: as above.
                    Err(error @ (StoreError::Permanent(_) | StoreError::NotFound(_))) => {
                        let (note, event) = not_listed(path, &error.to_string());
                        self.watcher.note(note);
                        self.folder_problems += 1;
                        events.push(event);
                        self.record(events)?;
                        continue;
                    }
                    Err(error) => return Err(RunError::on(Side::Source)(error)),
                }
            } else {
                listing
            };
            // What is known of the folder is borrowed, never copied: a no-op run would
            // otherwise copy every folder's items.
            let known = self.state.source.folders.get(path).unwrap_or(&no_folder);
            let (changed, flag_changes, gone, token) = match listing {
                Listing::Full { items, token } => {
                    let present: BTreeSet<&NativeId> = items.iter().map(|i| &i.id).collect();
                    let gone: Vec<NativeId> = known
                        .items
                        .keys()
                        .chain(known.unreadable.keys())
                        .filter(|id| !present.contains(id))
                        .cloned()
                        .collect();
                    (items, Vec::new(), gone, token)
                }
                Listing::Changes {
                    changed,
                    flags,
                    gone,
                    token,
                } => (changed, flags, gone, token),
            };
            for (id, flags) in flag_changes {
                if known.items.get(&id).is_some_and(|k| k.flags != flags) {
                    events.push(Event::FlagsSeen {
                        side: Side::Source,
                        folder: path.to_owned(),
                        id,
                        flags,
                    });
                }
            }
            for id in gone {
                // A change listing may name items this journal never saw.
                if !known.items.contains_key(&id) && !known.unreadable.contains_key(&id) {
                    continue;
                }
                if let Some(item) = known.items.get(&id).filter(|_| global_ids) {
                    departed.insert(id.clone(), (item.content, item.size));
                }
                events.push(Event::ItemGone {
                    side: Side::Source,
                    folder: path.to_owned(),
                    id,
                });
            }
            // The listing's own vector becomes the items to read (at 100,000 messages a
            // second one, grown push by push, held twice the listing's memory at its peak).
            let mut to_read = changed;
            to_read.retain(|item| match known.items.get(&item.id) {
                Some(k)
                    if !self.options.full
                        && unchanged(k, item)
                        && !known.unreadable.contains_key(&item.id) =>
                {
                    if k.flags != item.flags {
                        events.push(Event::FlagsSeen {
                            side: Side::Source,
                            folder: path.to_owned(),
                            id: item.id.clone(),
                            flags: item.flags.clone(),
                        });
                    }
                    false
                }
                _ => true,
            });
            if global_ids {
                // Moved here from another folder: its content is the one known there.
                to_read.retain(|item| {
                    if known.items.contains_key(&item.id) {
                        return true;
                    }
                    let elsewhere = departed.get(&item.id).copied().or_else(|| {
                        self.state
                            .source
                            .folders
                            .iter()
                            .filter(|(other, _)| other.as_str() != path)
                            .find_map(|(_, folder)| folder.items.get(&item.id))
                            .map(|known| (known.content, known.size))
                    });
                    match elsewhere {
                        Some((content, size)) if size == item.size => {
                            events.push(Event::ItemSeen {
                                side: Side::Source,
                                folder: path.to_owned(),
                                id: item.id.clone(),
                                content,
                                size,
                                flags: item.flags.clone(),
                                date: item.date,
                            });
                            false
                        }
                        _ => true,
                    }
                });
            }
            if to_read.len() < to_read.capacity() / 2 {
                to_read.shrink_to_fit();
            }
            let listed = (since.is_none() || token != known.token || !known.listed).then(|| {
                Event::FolderListed {
                    side: Side::Source,
                    folder: path.to_owned(),
                    token,
                }
            });
            self.defer(events);
            work.push(FolderWork {
                path: path.to_owned(),
                to_read,
                listed,
            });
        }
        Ok(work)
    }

    /// Creates, all at once, the target folders the plan lacks, before the first copy: copies
    /// made while reading would otherwise create each in turn, between one folder's reads and
    /// the next.
    async fn create_folders_ahead(&mut self, create_folders: Vec<String>) -> Result<(), RunError> {
        if create_folders.is_empty() {
            return Ok(());
        }
        let ahead = Delta {
            create_folders,
            ..Delta::default()
        };
        let done = self.carry_out(&ahead).await?;
        self.ahead += done;
        // The new folders receive the copies that follow. A hint only: when it fails, each
        // folder is prepared with its first batch instead, where a failure is retried and
        // reported.
        let created: Vec<&str> = ahead.create_folders.iter().map(String::as_str).collect();
        let _ = self.target.prepare_folders(&created).await;
        Ok(())
    }
}

/// Whether a known source item listed again still has the content ferry read: for an item
/// with a version (an ETag, a changeKey), the same key and version; for a message, whose
/// content never changes under its id, the same size (a check against a store that reuses
/// ids). An edit that keeps the size (10:00 → 11:00) changes the version, so it is seen; an
/// item without a version is read again on every run.
fn unchanged(
    known: &crate::projection::source::SourceItem,
    listed: &crate::store::ItemInfo,
) -> bool {
    match (&known.keyed, &listed.keyed) {
        (None, None) => known.size == listed.size,
        (Some(known), Some(listed)) if listed.version.is_some() => {
            known.key == listed.key && known.version == listed.version
        }
        // No version to tell by: read again (an edit may keep the size).
        _ => false,
    }
}
