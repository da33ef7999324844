//! Reading: the source items the listings found new, in chunks (hashed, and with copy-ahead
//! kept and copied while the next chunk is read); target items to match by content; and the
//! bytes of one source item to copy, then stored on the target.

use std::collections::BTreeSet;
use std::sync::Mutex;

use futures::FutureExt as _;
use futures::StreamExt as _;

use crate::body::{Body, read_back, resident_bytes};
use crate::event::{ContentHash, Event, FailureClass, Millis, NativeId, Side};
use crate::projection::delta;
use crate::projection::target::TargetState;
use crate::store::{AppendProbe, ItemInfo, Store, StoreError};

use super::source::FolderWork;
use super::{
    FETCH_GROUP_BYTES, FETCH_GROUP_ITEMS, FETCH_GROUPS_IN_FLIGHT_MAX, Kept, LOCAL_CHUNK_ITEMS,
    Prefetched, Run, RunError, Worker, WriteResult, class_of, halt,
};

impl Run<'_> {
    /// Reads the items the listings found new, in chunks; with `copy_ahead`, copies each chunk
    /// while the next one (of the same folder or the next) is read. A folder's listing is
    /// recorded once its last chunk is read: a run stopped before that lists the folder from
    /// its previous token next time and reads the rest.
    pub(super) async fn read_source_items(
        &mut self,
        mut work: Vec<FolderWork>,
        copy_ahead: bool,
    ) -> Result<(), RunError> {
        // With copy-ahead, the next chunk is read while the one just read is written (the
        // source and the target work at once; over a slow link that halves the waits), so
        // each chunk is half the in-flight byte budget.
        let chunk_bytes = if copy_ahead {
            (self.config.inflight_bytes_max / 2).max(1)
        } else {
            self.config.inflight_bytes_max
        };
        // Between two local stores there is no round trip to spread: chunks stay at
        // `LOCAL_CHUNK_ITEMS`, which bounds memory (Maildir's target: 64 MB at 20,000).
        let remote = self.source.capabilities().remote || self.target.capabilities().remote;
        let chunk_items = if remote {
            self.config.batch_max
        } else {
            self.config.batch_max.min(LOCAL_CHUNK_ITEMS)
        };
        // Each chunk owns its items and lets them go once read: a first run's listings hold
        // every message of the mailbox, released while the state grows by the same messages.
        let mut sequence: Vec<(usize, Option<Vec<ItemInfo>>)> = Vec::new();
        let mut chunks_left = vec![0_usize; work.len()];
        let mut listed: Vec<Option<Event>> = work.iter_mut().map(|w| w.listed.take()).collect();
        for (index, folder) in work.iter_mut().enumerate() {
            let to_read = std::mem::take(&mut folder.to_read);
            let lengths: Vec<usize> = chunks(&to_read, chunk_items, chunk_bytes)
                .iter()
                .map(|chunk| chunk.len())
                .collect();
            chunks_left[index] = lengths.len();
            if lengths.is_empty() {
                self.defer(listed[index].take().into_iter().collect());
            }
            let mut items = to_read.into_iter();
            for length in lengths {
                sequence.push((index, Some(items.by_ref().take(length).collect())));
            }
        }
        // A reader that borrows nothing of `self`, so it can run beside `copy_ahead`.
        let (reader_config, reader_rng) = (self.config.clone(), Mutex::new(self.rng_fork()));
        let (no_target, no_prefetched) = (TargetState::default(), Prefetched::default());
        let reader_halt = halt::Halt::new(self.stop.clone(), reader_config.jobs);
        // The same pacers: reads and writes share each side's limits.
        let reader_pacers = self.pacers.clone();
        let reader = Worker::new(
            (self.source, self.target),
            &reader_config,
            (self.clock, self.watcher),
            &reader_rng,
            self.log.content_key(),
            &no_target,
            &no_prefetched,
            &reader_halt,
            &reader_pacers,
        );
        let (reader, work) = (&reader, &work);
        let read_chunk = |(index, chunk): (usize, Vec<ItemInfo>)| {
            async move {
                reader
                    .hash_items(Side::Source, &work[index].path, &chunk, copy_ahead)
                    .await
            }
            .boxed()
        };
        let order: Vec<usize> = sequence.iter().map(|(index, _)| *index).collect();
        let mut take_chunk = |position: usize| {
            sequence
                .get_mut(position)
                .and_then(|(index, chunk)| Some((*index, chunk.take()?)))
        };
        let mut next = take_chunk(0).map(read_chunk);
        for (position, &index) in order.iter().enumerate() {
            if self.stop.is_stopped() {
                // Items are left unread, so the plan cannot show them: the run is paused.
                self.ahead.paused = true;
                return self.record(Vec::new());
            }
            if let Some((side, error)) = self.halt.fatal().or_else(|| reader_halt.fatal()) {
                // No room (the spool, the target), or a store that cannot be used: end now.
                self.record(Vec::new())?;
                return Err(RunError::Store { side, error });
            }
            let Some(reading) = next.take() else { break };
            let (read, kept) = reading.await;
            let following = take_chunk(position + 1).map(read_chunk);
            self.defer(read);
            chunks_left[index] -= 1;
            if chunks_left[index] == 0 {
                self.defer(listed[index].take().into_iter().collect());
            }
            let path = work[index].path.as_str();
            if copy_ahead {
                match following {
                    Some(following) => {
                        let (copied, read_next) =
                            futures::future::join(self.copy_ahead(path, kept), following).await;
                        copied?;
                        next = Some(futures::future::ready(read_next).boxed());
                    }
                    None => self.copy_ahead(path, kept).await?,
                }
            } else {
                next = following;
            }
        }
        self.record(Vec::new())
    }

    /// Copies the items of `folder` just read (`kept`) that the planner copies now
    /// ([`delta::ahead::copies_ahead`]), using their bytes.
    async fn copy_ahead(&mut self, folder: &str, kept: Vec<Kept>) -> Result<(), RunError> {
        if kept.is_empty() || self.ahead.paused {
            return Ok(());
        }
        let ahead = {
            let read: BTreeSet<&NativeId> = kept.iter().map(|(id, _)| id).collect();
            delta::ahead::copies_ahead(
                &self.state.source,
                &self.state.target,
                folder,
                &read,
                &self.movable,
            )
        };
        if ahead.copies.is_empty() {
            return Ok(());
        }
        {
            let mut prefetched = self.prefetched.lock().unwrap_or_else(|e| e.into_inner());
            for (id, bytes) in kept {
                prefetched.insert((folder.to_owned(), id), bytes);
            }
        }
        let result = self.carry_out(&ahead).await;
        self.prefetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.ahead += result?;
        Ok(())
    }
}

impl Worker<'_> {
    /// Reads and hashes items; returns `ItemSeen` or `ItemUnreadable` events (and throttling).
    pub(super) async fn hash_items(
        &self,
        side: Side,
        folder: &str,
        items: &[ItemInfo],
        keep: bool,
    ) -> (Vec<Event>, Vec<Kept>) {
        let store = match side {
            Side::Source => self.source,
            Side::Target => self.target,
        };
        // Indexes go through the streams below, not references: a stream made by a closure
        // that takes a reference keeps the future holding it from being `Send`
        // (rust-lang/rust#102211), and a run's future is `Send`.
        let results: Vec<Vec<(Vec<Event>, Option<Kept>)>> = if store.capabilities().fetch_many {
            // Several items per request (one IMAP UID FETCH), a few requests in flight.
            let groups = chunks(items, FETCH_GROUP_ITEMS, FETCH_GROUP_BYTES);
            let reads = (0..groups.len()).map(move |index| {
                let group = groups[index];
                self.read_group(side, store, folder, group, keep)
            });
            futures::stream::iter(reads)
                .buffered(self.config.jobs.clamp(1, FETCH_GROUPS_IN_FLIGHT_MAX))
                .collect()
                .await
        } else {
            let reads = (0..items.len()).map(move |index| {
                let item = &items[index];
                async move {
                    let mut events = Vec::new();
                    let _permit = self.bytes_permit(resident_bytes(item.size)).await;
                    let read = self
                        .retry(side, &mut events, || store.fetch(folder, &item.id))
                        .await;
                    let (seen, kept) = self.seen(side, folder, item, read, keep);
                    events.extend(seen);
                    vec![(events, kept)]
                }
            });
            futures::stream::iter(reads)
                .buffered(self.config.jobs.max(1))
                .collect()
                .await
        };
        let mut events = Vec::new();
        let mut kept = Vec::new();
        for (item_events, item_bytes) in results.into_iter().flatten() {
            events.extend(item_events);
            kept.extend(item_bytes);
        }
        (events, kept)
    }

    /// Reads one group of items with one request ([`crate::store::Store::fetch_many`]), or
    /// one at a time when it fails as a whole; the events of each item (the group's
    /// throttling with the first), and its bytes when they are to be kept.
    async fn read_group(
        &self,
        side: Side,
        store: &dyn Store,
        folder: &str,
        group: &[ItemInfo],
        keep: bool,
    ) -> Vec<(Vec<Event>, Option<Kept>)> {
        let total: u64 = group.iter().map(|item| resident_bytes(item.size)).sum();
        let _permit = self.bytes_permit(total).await;
        let mut events = Vec::new();
        let ids: Vec<NativeId> = group.iter().map(|item| item.id.clone()).collect();
        let read = self
            .retry(side, &mut events, || store.fetch_many(folder, &ids))
            .await;
        let mut out = Vec::with_capacity(group.len());
        match read {
            Ok(reads) if reads.len() == group.len() => {
                for (item, read) in group.iter().zip(reads) {
                    out.push(self.seen(side, folder, item, read, keep));
                }
            }
            Ok(_) | Err(_) => {
                // The request as a whole failed: one item at a time.
                for item in group {
                    let mut item_events = Vec::new();
                    let read = self
                        .retry(side, &mut item_events, || store.fetch(folder, &item.id))
                        .await;
                    let (seen, kept) = self.seen(side, folder, item, read, keep);
                    item_events.extend(seen);
                    out.push((item_events, kept));
                }
            }
        }
        if let Some(first) = out.first_mut() {
            first.0.splice(0..0, events);
        }
        out
    }

    /// The event for one item read (or not), and its bytes when they are to be kept.
    fn seen(
        &self,
        side: Side,
        folder: &str,
        item: &ItemInfo,
        read: Result<Body, StoreError>,
        keep: bool,
    ) -> (Vec<Event>, Option<Kept>) {
        // A spooled body is read back to be hashed: a failure there is a local one (the
        // spool's disk), told as the item's.
        let read = read.and_then(|body| match body.hash(self.key) {
            Ok(content) => Ok((body, content)),
            Err(error) => Err(StoreError::Transient(read_back(&error))),
        });
        // A store whose ids hold across folders measures an item its own way (Graph's
        // PR_MESSAGE_SIZE, not the length of a MIME rendering): its listed size is kept, so
        // the next listing finds the item unchanged.
        let store = match side {
            Side::Source => self.source,
            Side::Target => self.target,
        };
        let listed_size = store.capabilities().global_ids;
        match read {
            Ok((bytes, content)) => {
                let mut events = vec![Event::ItemSeen {
                    side,
                    folder: folder.to_owned(),
                    id: item.id.clone(),
                    content,
                    size: if listed_size { item.size } else { bytes.len() },
                    flags: item.flags.clone(),
                    date: item.date,
                }];
                if let Some(keyed) = &item.keyed {
                    events.push(Event::ItemKeyed {
                        side,
                        folder: folder.to_owned(),
                        id: item.id.clone(),
                        key: keyed.key.clone(),
                        version: keyed.version.clone(),
                        kind: keyed.kind,
                    });
                }
                (events, keep.then(|| (item.id.clone(), bytes)))
            }
            // Gone between listing and reading: the next listing says so.
            Err(StoreError::NotFound(_)) => (Vec::new(), None),
            Err(error) => (
                vec![Event::ItemUnreadable {
                    side,
                    folder: folder.to_owned(),
                    id: item.id.clone(),
                    reason: error.to_string(),
                }],
                None,
            ),
        }
    }

    pub(super) async fn bytes_permit(&self, size: u64) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let wanted = u32::try_from((size >> 10).max(1))
            .unwrap_or(u32::MAX)
            .min(u32::try_from(self.bytes.available_permits().max(1)).unwrap_or(u32::MAX))
            .min(u32::try_from((self.config.inflight_bytes_max >> 10).max(1)).unwrap_or(u32::MAX));
        self.bytes.acquire_many(wanted).await.ok()
    }

    /// Copies one source item: its bytes (kept from observing, or read again), appended.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn copy(
        &self,
        source_folder: &str,
        source_id: &NativeId,
        folder: &str,
        content: &ContentHash,
        size: u64,
        flags: &crate::flags::Flags,
        date: Option<Millis>,
        probe: &str,
        events: &mut Vec<Event>,
    ) -> WriteResult {
        let _permit = self.bytes_permit(resident_bytes(size)).await;
        let bytes = self
            .read_source(source_folder, source_id, content, size, events)
            .await?;
        let probe = AppendProbe(probe.to_owned());
        self.store_bytes(folder, &bytes, flags, date, &probe, content, events)
            .await
    }

    /// The bytes of a source item to copy: kept from observing, or read again; checked
    /// against the content hash the plan was made with and the target's size limit.
    pub(super) async fn read_source(
        &self,
        source_folder: &str,
        source_id: &NativeId,
        content: &ContentHash,
        size: u64,
        events: &mut Vec<Event>,
    ) -> Result<Body, (FailureClass, String)> {
        if let Some(max) = self.target.capabilities().max_message_bytes
            && size > max
        {
            return Err((
                FailureClass::Permanent,
                format!("{size} bytes is more than the target accepts ({max} bytes)"),
            ));
        }
        let prefetched = self
            .prefetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(source_folder.to_owned(), source_id.clone()));
        let read = match prefetched {
            Some(bytes) => Ok(bytes),
            None => {
                self.retry(Side::Source, events, || {
                    self.source.fetch(source_folder, source_id)
                })
                .await
            }
        };
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(StoreError::NotFound(_)) => {
                return Err((
                    FailureClass::Transient,
                    "the source item vanished before it was copied".into(),
                ));
            }
            Err(error) => return Err((class_of(&error), format!("reading the source: {error}"))),
        };
        let hash = bytes
            .hash(self.key)
            .map_err(|error| (FailureClass::Transient, read_back(&error)))?;
        if hash != *content {
            return Err((
                FailureClass::Transient,
                "the source item changed after it was listed; the next run copies it".into(),
            ));
        }
        Ok(bytes)
    }

    /// Appends one message, retrying; a failed append is looked for before it is retried.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn store_bytes(
        &self,
        folder: &str,
        bytes: &Body,
        flags: &crate::flags::Flags,
        date: Option<Millis>,
        probe: &AppendProbe,
        content: &ContentHash,
        events: &mut Vec<Event>,
    ) -> WriteResult {
        let mut attempt = 0;
        loop {
            // Throttling is retried inside (nothing was written); a transient failure is not,
            // because the message may have landed: look first.
            let result = self
                .retry_sized(
                    Side::Target,
                    events,
                    1,
                    self.target.upload_size(bytes, flags),
                    || self.target.append(folder, bytes, flags, date, probe),
                )
                .await;
            match result {
                Ok(Some(id)) => {
                    self.claim_first(folder, vec![id.clone()]);
                    return Ok(Some(id));
                }
                Ok(None) => {
                    // Stored, but the store did not say under which id (IMAP without UIDPLUS):
                    // find it the way a write in doubt is found.
                    return Ok(self
                        .look_for(folder, probe, content, events)
                        .await
                        .unwrap_or(None));
                }
                Err(StoreError::Transient(reason)) => {
                    // The append may have landed with its reply lost, or its bytes may still be
                    // on their way (a connection's buffers, a proxy): wait, then look, before
                    // writing again.
                    attempt += 1;
                    self.halt.pause(self.backoff_ms(attempt)).await;
                    match self.look_for(folder, probe, content, events).await {
                        Ok(Some(id)) => return Ok(Some(id)),
                        Ok(None) => {}
                        // Unknown whether it landed: never written again blind. The next run
                        // observes the target and finds it by content if it is there.
                        Err((class, looked)) => {
                            return Err((class, format!("writing: {reason}; {looked}")));
                        }
                    }
                    if attempt >= self.config.retry_count_max || self.halt.halted() {
                        return Err((FailureClass::Transient, format!("writing: {reason}")));
                    }
                }
                Err(error @ StoreError::Full(_)) => {
                    // Nothing was stored: the next run writes it again.
                    return Err((FailureClass::NotApplied, format!("writing: {error}")));
                }
                Err(error) => {
                    return Err((class_of(&error), format!("writing: {error}")));
                }
            }
        }
    }
}

/// `items` in runs of at most `count` items and, unless one item alone is larger, `bytes` bytes
/// held in memory ([`resident_bytes`]: a large message is spooled, not held).
fn chunks(items: &[ItemInfo], count: usize, bytes: u64) -> Vec<&[ItemInfo]> {
    let mut out = Vec::new();
    let (mut start, mut total) = (0, 0u64);
    for (index, item) in items.iter().enumerate() {
        let size = resident_bytes(item.size);
        let full = index - start >= count.max(1) || (index > start && total + size > bytes);
        if full {
            out.push(&items[start..index]);
            start = index;
            total = 0;
        }
        total += size;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    debug_assert_eq!(
        out.iter().map(|chunk| chunk.len()).sum::<usize>(),
        items.len()
    );
    out
}
