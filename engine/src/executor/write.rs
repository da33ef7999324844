//! Writing: one write ([`Worker::write`]), or several of one folder in one request (appends,
//! moves, flag changes and deletions), each ending in its outcome event ([`Worker::finish`]).
//! A write whose outcome is unknown (a lost reply) is looked for on the target before it is
//! made again, and every id found is claimed, so two writes never take the same one.
//!
//! Promise: a write is sent only once its intent is recorded, and gets one outcome, which is
//! recorded after it (see `Run::record`).

use std::time::Duration;

/// How many times the items of a batch answered "throttled" on their own are sent again
/// together before each is written alone.
const REQUEUES_MAX: u32 = 8;

use crate::body::resident_bytes;
use crate::event::{Action, ContentHash, Event, FailureClass, NativeId, OpId, Side};
use crate::item::FolderSpec;
use crate::store::{AppendProbe, NewMessage, StoreError, StoreResult};

use super::{Note, Worker, WriteResult, class_of, failure};

impl Worker<'_> {
    /// Checks that the intent of write `op` is recorded and still without an outcome: a write
    /// is never sent before.
    fn intended(&self, op: OpId, action: &Action) {
        let recorded = self.known.pending.get(&op);
        assert!(
            recorded.is_some(),
            "write {op} about to be sent without its intent recorded"
        );
        debug_assert_eq!(recorded, Some(action), "write {op} differs from its intent");
    }

    /// Picks the first candidate id not known to belong to another write, and claims it.
    pub(super) fn claim_first(&self, folder: &str, candidates: Vec<NativeId>) -> Option<NativeId> {
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        let known = self.known.folders.get(folder);
        candidates.into_iter().find(|id| {
            !known.is_some_and(|f| f.items.contains_key(id))
                && claimed.insert((folder.to_owned(), id.clone()))
        })
    }

    /// Carries out one write; returns its outcome event. Throttling goes to `events`.
    pub(super) async fn write(&self, op: OpId, action: &Action, events: &mut Vec<Event>) -> Event {
        self.intended(op, action);
        let mail = FolderSpec::mail();
        let result = match action {
            Action::CreateFolder { folder } => self
                .retry(Side::Target, events, || {
                    self.target.create_folder(folder, &mail)
                })
                .await
                .map(|()| None)
                .map_err(failure),
            Action::CreateCollection { folder, spec } => self
                .retry(Side::Target, events, || {
                    self.target.create_folder(folder, spec)
                })
                .await
                .map(|()| None)
                .map_err(failure),
            Action::SetCollection { folder, from, to } => self
                .retry(Side::Target, events, || {
                    self.target.set_collection(folder, from, to)
                })
                .await
                .map(|()| None)
                .map_err(failure),
            Action::Create { .. } | Action::Update { .. } => {
                return self.put(op, action, events).await;
            }
            Action::DeleteIf { .. } => self.delete_keyed(action, events).await,
            Action::RenameFolder { from, to } => self
                .retry(Side::Target, events, || self.target.rename_folder(from, to))
                .await
                .map(|()| None)
                .map_err(failure),
            // The target deletes it only if it holds nothing now, and a folder already gone
            // is deleted (a repeated write).
            Action::DeleteFolder { folder } => {
                match self
                    .retry(Side::Target, events, || self.target.delete_folder(folder))
                    .await
                {
                    Ok(()) | Err(StoreError::NotFound(_)) => Ok(None),
                    Err(e) => Err(failure(e)),
                }
            }
            Action::SetFlags { folder, id, flags } => self
                .retry(Side::Target, events, || {
                    self.target.set_flags(folder, id, flags)
                })
                .await
                .map(|()| None)
                .map_err(failure),
            Action::Delete { folder, id, .. } => {
                match self
                    .retry(Side::Target, events, || self.target.delete(folder, id))
                    .await
                {
                    Ok(()) | Err(StoreError::NotFound(_)) => Ok(None),
                    Err(e) => Err(failure(e)),
                }
            }
            Action::Move {
                from,
                id,
                folder,
                content,
                probe,
                ..
            } => {
                self.move_item(from, id, folder, content, probe, events)
                    .await
            }
            Action::Append {
                source_folder,
                source_id,
                folder,
                content,
                size,
                flags,
                date,
                probe,
            } => {
                self.copy(
                    source_folder,
                    source_id,
                    folder,
                    content,
                    *size,
                    flags,
                    *date,
                    probe,
                    events,
                )
                .await
            }
        };
        self.finish(op, action, result)
    }

    /// The outcome event of a write (and the note for the progress display).
    pub(super) fn finish(&self, op: OpId, action: &Action, result: WriteResult) -> Event {
        let first = self
            .finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(op);
        assert!(first, "write {op} given a second outcome");
        match result {
            Ok(id) => {
                self.halt.write_outcome(true, "");
                match action {
                    Action::Append { size, .. } | Action::Create { size, .. } => {
                        self.watcher.note(Note::Copied(*size));
                    }
                    _ => self.watcher.note(Note::Wrote),
                }
                Event::WriteDone {
                    op,
                    id,
                    at: self.clock.now_ms(),
                }
            }
            Err((class, reason)) => {
                if class == FailureClass::Transient {
                    self.halt.write_outcome(false, &reason);
                }
                if class != FailureClass::NotApplied {
                    self.watcher.note(Note::ItemFailed(reason.clone()));
                }
                Event::WriteFailed { op, class, reason }
            }
        }
    }

    /// Flag updates, or deletions, of one folder made with one
    /// [`crate::store::Store::set_flags_many`] or [`crate::store::Store::delete_many`]; their
    /// outcome events. Both are idempotent, so a failed call is simply made again (with the
    /// usual retries).
    pub(super) async fn write_updates(
        &self,
        items: &[(OpId, &Action)],
        events: &mut Vec<Event>,
    ) -> Vec<Event> {
        for &(op, action) in items {
            self.intended(op, action);
        }
        let mut folder = "";
        let mut flags = Vec::new();
        let mut deletions = Vec::new();
        for (_, action) in items {
            match action {
                Action::SetFlags {
                    folder: f,
                    id,
                    flags: set,
                } => {
                    folder = f;
                    flags.push((id, set));
                }
                Action::Delete { folder: f, id, .. } => {
                    folder = f;
                    deletions.push(id);
                }
                _ => {}
            }
        }
        // Flags and deletions at once: one selection of the folder serves both, and their
        // requests share round trips (they touch different items).
        let (mut flag_events, mut deletion_events) = (Vec::new(), Vec::new());
        let flagging =
            self.update_batch(&mut flag_events, &flags, folder, false, |some| async move {
                self.target.set_flags_many(folder, &some).await
            });
        let deleting = self.update_batch(
            &mut deletion_events,
            &deletions,
            folder,
            true,
            |some| async move { self.target.delete_many(folder, &some).await },
        );
        let (flagged, deleted) = futures::future::join(flagging, deleting).await;
        events.append(&mut flag_events);
        events.append(&mut deletion_events);
        let mut outcomes = Vec::with_capacity(items.len());
        let (mut flagged, mut deleted) = (flagged.map(Vec::into_iter), deleted.map(Vec::into_iter));
        for &(op, action) in items {
            let results = match action {
                Action::Delete { .. } => &mut deleted,
                _ => &mut flagged,
            };
            outcomes.push(match results {
                // The call as a whole failed, after its retries: so does each change.
                Err(failure) => self.finish(op, action, Err(failure.clone())),
                Ok(results) => match results.next() {
                    Some(Err((FailureClass::Transient, _))) | None => {
                        // Its reply may be what was lost: written again alone, with retries
                        // (a deletion that already happened then finds nothing, and is done).
                        self.write(op, action, events).await
                    }
                    Some(result) => self.finish(op, action, result),
                },
            });
        }
        outcomes
    }

    /// The results of one batch of changes to target items of `folder` (flags, or deletions):
    /// `call` sends the items given, one result each. The items the server answers
    /// "throttled" on their own are sent again together once the side's pause is over, not
    /// one by one; after [`REQUEUES_MAX`] rounds, what is still throttled is left to the
    /// caller (written alone, with retries).
    async fn update_batch<T, F, Fut>(
        &self,
        events: &mut Vec<Event>,
        items: &[T],
        folder: &str,
        deletions: bool,
        call: F,
    ) -> Result<Vec<WriteResult>, (FailureClass, String)>
    where
        T: Copy,
        F: FnMut(Vec<T>) -> Fut,
        Fut: Future<Output = StoreResult<Vec<StoreResult<()>>>>,
    {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let called = self.requeuing(events, items, call).await;
        update_results(called, items.len(), folder, deletions)
    }

    async fn requeuing<T, F, Fut>(
        &self,
        events: &mut Vec<Event>,
        items: &[T],
        mut call: F,
    ) -> StoreResult<Vec<StoreResult<()>>>
    where
        T: Copy,
        F: FnMut(Vec<T>) -> Fut,
        Fut: Future<Output = StoreResult<Vec<StoreResult<()>>>>,
    {
        let count = items.len();
        let mut results: Vec<Option<StoreResult<()>>> = (0..count).map(|_| None).collect();
        let mut todo: Vec<usize> = (0..count).collect();
        let mut requeues = 0;
        loop {
            let answered = self
                .retry(Side::Target, events, || {
                    call(todo.iter().map(|&at| items[at]).collect())
                })
                .await?;
            if answered.len() != todo.len() {
                if requeues == 0 {
                    return Ok(answered);
                }
                break;
            }
            let (mut again, mut wait_ms, mut limit) = (Vec::new(), 0, String::new());
            for (&at, result) in todo.iter().zip(answered) {
                match result {
                    Err(StoreError::Throttled {
                        retry_after_ms,
                        reason,
                    }) if requeues < REQUEUES_MAX => {
                        again.push(at);
                        if limit.is_empty() {
                            limit = reason;
                        }
                        let wait = retry_after_ms.unwrap_or_else(|| self.backoff_ms(requeues + 1));
                        wait_ms = wait_ms.max(wait);
                    }
                    other => results[at] = Some(other),
                }
            }
            if again.is_empty() {
                break;
            }
            requeues += 1;
            self.throttled(Side::Target, wait_ms, &limit, events);
            self.halt.pause(wait_ms).await;
            todo = again;
        }
        Ok(results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    Err(StoreError::Transient(
                        "the target gave no answer for it in the batch".into(),
                    ))
                })
            })
            .collect())
    }

    /// Appends of one folder stored with one [`crate::store::Store::append_many`]; their outcome
    /// events. If it fails, some may have landed: each is looked for, then written alone.
    pub(super) async fn write_appends(
        &self,
        items: &[(OpId, &Action)],
        events: &mut Vec<Event>,
    ) -> Vec<Event> {
        for &(op, action) in items {
            self.intended(op, action);
        }
        let mut outcomes = Vec::with_capacity(items.len());
        let total: u64 = items
            .iter()
            .map(|(_, action)| match action {
                Action::Append { size, .. } => resident_bytes(*size),
                _ => 0,
            })
            .sum();
        let _permit = self.bytes_permit(total).await;
        let mut ready = Vec::with_capacity(items.len());
        for &(op, action) in items {
            let Action::Append {
                source_folder,
                source_id,
                content,
                size,
                ..
            } = action
            else {
                outcomes.push(self.write(op, action, events).await);
                continue;
            };
            match self
                .read_source(source_folder, source_id, content, *size, events)
                .await
            {
                Ok(bytes) => ready.push((op, action, bytes)),
                Err(failure) => outcomes.push(self.finish(op, action, Err(failure))),
            }
        }
        let Some(&(_, Action::Append { folder, probe, .. }, _)) = ready.first() else {
            return outcomes;
        };
        let probe = AppendProbe(probe.clone());
        let messages: Vec<NewMessage<'_>> = ready
            .iter()
            .filter_map(|(_, action, bytes)| match action {
                Action::Append { flags, date, .. } => Some(NewMessage {
                    bytes,
                    flags,
                    date: *date,
                }),
                _ => None,
            })
            .collect();
        // Not retried, not even when throttled: part of it may be stored. A failure falls back
        // to one message at a time, each looked for first and retried on its own.
        let size = messages.iter().map(|m| m.bytes.len()).sum();
        let permit = self.pacers.target.admit(size).await;
        let stored = self.target.append_many(folder, &messages, &probe).await;
        // Released before anything else is sent (the fallback below goes through the pacer).
        if let Err(StoreError::Throttled {
            retry_after_ms,
            reason,
        }) = &stored
        {
            drop(permit);
            self.throttled(Side::Target, retry_after_ms.unwrap_or(0), reason, events);
        } else if stored.is_ok() {
            permit.done();
        } else {
            drop(permit);
        }
        match stored {
            Ok(ids) if ids.len() == ready.len() => {
                for ((op, action, _), id) in ready.iter().zip(ids) {
                    let Action::Append { content, .. } = action else {
                        continue;
                    };
                    let id = match id {
                        Some(id) => {
                            self.claim_first(folder, vec![id.clone()]);
                            Some(id)
                        }
                        // Stored; which id it got is only worth knowing.
                        None => self
                            .look_for(folder, &probe, content, events)
                            .await
                            .unwrap_or(None),
                    };
                    outcomes.push(self.finish(*op, action, Ok(id)));
                }
            }
            _ => {
                // Any of them may be there (a lost reply) or none (refused as a whole, e.g.
                // for one message too large): look for each, then write it alone. After a lost
                // connection, bytes may still be on their way: wait first.
                if matches!(stored, Err(StoreError::Transient(_))) {
                    tokio::time::sleep(Duration::from_millis(self.backoff_ms(1))).await;
                }
                for (op, action, bytes) in &ready {
                    let Action::Append {
                        content,
                        flags,
                        date,
                        ..
                    } = action
                    else {
                        continue;
                    };
                    let result = match self.look_for(folder, &probe, content, events).await {
                        Ok(Some(id)) => Ok(Some(id)),
                        Ok(None) => {
                            self.store_bytes(folder, bytes, flags, *date, &probe, content, events)
                                .await
                        }
                        Err(failure) => Err(failure),
                    };
                    outcomes.push(self.finish(*op, action, result));
                }
            }
        }
        outcomes
    }

    /// Moves of one folder into another made with one [`crate::store::Store::move_many`]; their
    /// outcome events. A move whose own result is unknown, or all of them when the call failed as a
    /// whole, are settled one by one as [`Worker::move_item`] settles one.
    pub(super) async fn write_moves(
        &self,
        items: &[(OpId, &Action)],
        events: &mut Vec<Event>,
    ) -> Vec<Event> {
        for &(op, action) in items {
            self.intended(op, action);
        }
        let mut moves = Vec::with_capacity(items.len());
        for &(op, action) in items {
            if let Action::Move {
                from,
                id,
                folder,
                content,
                probe,
                ..
            } = action
            {
                moves.push((op, action, from, id, folder, content, probe));
            }
        }
        let Some(&(_, _, from, _, folder, _, probe)) = moves.first() else {
            return Vec::new();
        };
        let ids: Vec<&NativeId> = moves.iter().map(|m| m.3).collect();
        let probe = AppendProbe(probe.clone());
        let called = self
            .retry_with(Side::Target, events, 1, || {
                self.target.move_many(from, &ids, folder, &probe)
            })
            .await;
        let mut results = match called {
            Ok(results) if results.len() == moves.len() => results.into_iter().map(Some).collect(),
            _ => vec![None; moves.len()],
        };
        let mut outcomes = Vec::with_capacity(moves.len());
        for ((op, action, from, id, folder, content, _), result) in
            moves.into_iter().zip(results.drain(..))
        {
            let result = match result {
                Some(Ok(Some(new))) => {
                    self.claim_first(folder, vec![new.clone()]);
                    Ok(Some(new))
                }
                Some(Err(error @ (StoreError::Permanent(_) | StoreError::Unusable(_)))) => {
                    Err((class_of(&error), format!("moving {from} {id}: {error}")))
                }
                _ => match self.look_for(folder, &probe, content, events).await {
                    Ok(Some(new)) => Ok(Some(new)),
                    // Not there: moved alone (a move of an item already gone fails).
                    Ok(None) => {
                        self.move_item(from, id, folder, content, &probe.0, events)
                            .await
                    }
                    Err(failure) => Err(failure),
                },
            };
            outcomes.push(self.finish(op, action, result));
        }
        outcomes
    }

    /// Moves a target item into another folder on the target. A move whose outcome is
    /// unknown (a lost reply, or the item already gone from `from`) is looked for in `folder`
    /// from the probe on; one not found there fails, and the next run copies the source item.
    async fn move_item(
        &self,
        from: &str,
        id: &NativeId,
        folder: &str,
        content: &ContentHash,
        probe: &str,
        events: &mut Vec<Event>,
    ) -> WriteResult {
        let probe = AppendProbe(probe.to_owned());
        let result = self
            .retry_with(Side::Target, events, 1, || {
                self.target.move_item(from, id, folder, &probe)
            })
            .await;
        match result {
            Ok(Some(new)) => {
                self.claim_first(folder, vec![new.clone()]);
                Ok(Some(new))
            }
            Ok(None) | Err(StoreError::Transient(_) | StoreError::NotFound(_)) => {
                match self.look_for(folder, &probe, content, events).await? {
                    Some(new) => Ok(Some(new)),
                    None => Err((
                        FailureClass::Transient,
                        format!("moving {from} {id} to {folder}: not found there afterwards"),
                    )),
                }
            }
            Err(error) => Err((class_of(&error), format!("moving {from} {id}: {error}"))),
        }
    }

    /// A message an append may have stored: looked for on the target and claimed.
    pub(super) async fn look_for(
        &self,
        folder: &str,
        probe: &AppendProbe,
        content: &ContentHash,
        events: &mut Vec<Event>,
    ) -> Result<Option<NativeId>, (FailureClass, String)> {
        // A look that failed is not "not there": writing again then could duplicate.
        let found = self
            .retry(Side::Target, events, || {
                self.target.find_appended(folder, probe, content, self.key)
            })
            .await
            .map_err(|error| {
                (
                    FailureClass::Transient,
                    format!("could not look on the target whether it landed: {error}"),
                )
            })?;
        Ok(self.claim_first(folder, found))
    }
}

/// Each change's result from a `*_many` update call of `count` changes in `folder` (a
/// deletion of something already gone counts as done), or the failure of the call as a whole.
fn update_results(
    called: Result<Vec<Result<(), StoreError>>, StoreError>,
    count: usize,
    folder: &str,
    deletions: bool,
) -> Result<Vec<WriteResult>, (FailureClass, String)> {
    match called {
        Ok(results) if results.len() == count => Ok(results
            .into_iter()
            .map(|result| match result {
                Ok(()) => Ok(None),
                Err(StoreError::NotFound(_)) if deletions => Ok(None),
                Err(error) => Err(failure(error)),
            })
            .collect()),
        Ok(results) => Err((
            FailureClass::Transient,
            format!(
                "the target answered {} results for {count} changes in {folder}",
                results.len()
            ),
        )),
        Err(error) => Err(failure(error)),
    }
}
