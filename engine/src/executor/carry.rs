//! Carrying out a plan, batch by batch: each batch's append probes are asked of the target, its
//! intents group-committed before any of its writes is sent, the writes sent with bounded
//! concurrency (grouped into units: one request for several where the target can), the target
//! made durable, and the outcomes group-committed. Folder writes go first, in a batch of their
//! own; a stop ends the loop between batches, a store that cannot go on at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::future::BoxFuture;

use crate::event::{Action, ContentHash, Event, FailureClass, OpId, Side};
use crate::projection::delta::Delta;
use crate::store::{AppendProbe, StoreError};

use super::{Progress, Run, RunError, UNIT_BYTES_MAX, UNIT_MESSAGES_MAX};

impl Run<'_> {
    /// Carries out the plan in batches: the writes that failed, whether it was paused, what
    /// was written.
    pub(super) async fn carry_out(&mut self, plan: &Delta) -> Result<Progress, RunError> {
        // Promise: nothing is deleted on the target (a deletion, or a move, which deletes the
        // old copy) unless the run was asked to delete what is gone from the source.
        assert!(
            self.options.delete_removed
                || (plan.deletions.is_empty()
                    && plan.moves.is_empty()
                    && plan.keyed_deletions.is_empty()),
            "a plan deletes on the target without --delete-removed"
        );
        let (mut queue, folder_actions) = queue_of(plan);
        let mut progress = Progress::default();
        let mut first = true;
        while !queue.is_empty() {
            if let Some((side, error)) = self.halt.fatal() {
                return Err(RunError::Store { side, error });
            }
            if self.stop.is_stopped() {
                progress.paused = true;
                return Ok(progress);
            }
            // Folder writes go first and alone: items need their folders.
            let limit = if first && folder_actions > 0 {
                folder_actions
            } else {
                self.config.batch_max.max(1)
            };
            first = false;
            let batch = take_batch(&mut queue, limit);
            assert!(!batch.is_empty() && batch.len() <= limit);
            let intents = self.with_probes(batch).await?;
            let first_op = self.state.target.next_op.max(1);
            let intent_events: Vec<Event> = intents
                .iter()
                .enumerate()
                .map(|(index, action)| Event::WriteIntent {
                    op: first_op + index as u64,
                    action: action.clone(),
                })
                .collect();
            self.record(intent_events)?;
            // Every intent of the batch is recorded, numbered from `first_op` on, before any
            // of its writes is sent.
            assert_eq!(self.state.target.next_op, first_op + intents.len() as u64);
            let outcomes = self.send(&intents, first_op).await?;
            tally(&intents, first_op, &outcomes, &mut progress);
            self.record(outcomes)?;
        }
        if let Some((side, error)) = self.halt.fatal() {
            return Err(RunError::Store { side, error });
        }
        Ok(progress)
    }

    /// The actions of a batch with their append probes, asked of the target once per target
    /// folder of the batch, not once per message; the throttling met is recorded.
    async fn with_probes(&mut self, batch: Vec<Action>) -> Result<Vec<Action>, RunError> {
        let mut intents = Vec::with_capacity(batch.len());
        {
            let worker = self.worker();
            let mut throttles = Vec::new();
            // The contents going into each folder, in the batch's order.
            let mut appends: BTreeMap<String, Vec<ContentHash>> = BTreeMap::new();
            for action in &batch {
                if let Action::Append {
                    folder, content, ..
                }
                | Action::Move {
                    folder, content, ..
                } = action
                {
                    appends.entry(folder.clone()).or_default().push(*content);
                }
            }
            let mut probes: BTreeMap<String, std::vec::IntoIter<AppendProbe>> = BTreeMap::new();
            for (folder, contents) in appends {
                let prepared = worker
                    .retry(Side::Target, &mut throttles, || {
                        worker.target.prepare_appends_for(&folder, &contents)
                    })
                    .await
                    .map_err(RunError::on(Side::Target))?;
                probes.insert(folder, prepared.into_iter());
            }
            for mut action in batch {
                if let Action::Append { folder, probe, .. } | Action::Move { folder, probe, .. } =
                    &mut action
                {
                    let prepared = probes.get_mut(folder.as_str()).and_then(Iterator::next);
                    let Some(prepared) = prepared else {
                        return Err(RunError::on(Side::Target)(StoreError::Transient(format!(
                            "the target gave too few append probes for {folder}"
                        ))));
                    };
                    *probe = prepared.0;
                }
                intents.push(action);
            }
            self.record(throttles)?;
        }
        Ok(intents)
    }

    /// Sends the writes of a batch whose intents are recorded (numbered from `first_op` on),
    /// `jobs` units at a time, then makes the target durable. Returns their outcome events,
    /// with the throttling met.
    async fn send(&self, intents: &[Action], first_op: OpId) -> Result<Vec<Event>, RunError> {
        let capabilities = self.target.capabilities();
        let units = units(intents, capabilities.append_many, capabilities.update_many);
        let worker = self.worker();
        let jobs = self.config.jobs.max(1);
        let run_unit = |unit: &[usize]| {
            let worker = &worker;
            let unit = unit.to_vec();
            async move {
                let mut events = Vec::new();
                if worker.halt.halted() {
                    // The run is ending: not attempted, so never applied; the next run plans
                    // these again.
                    let reason = worker.halt.why();
                    for &index in &unit {
                        events.push(Event::WriteFailed {
                            op: first_op + index as u64,
                            class: FailureClass::NotApplied,
                            reason: reason.clone(),
                        });
                    }
                    return events;
                }
                if let [index] = unit.as_slice() {
                    let outcome = worker
                        .write(first_op + *index as u64, &intents[*index], &mut events)
                        .await;
                    events.push(outcome);
                } else {
                    let items: Vec<(OpId, &Action)> = unit
                        .iter()
                        .map(|&index| (first_op + index as u64, &intents[index]))
                        .collect();
                    let outcomes = match items.first() {
                        Some((_, Action::Append { .. })) => {
                            worker.write_appends(&items, &mut events).await
                        }
                        Some((_, Action::Move { .. })) => {
                            worker.write_moves(&items, &mut events).await
                        }
                        _ => worker.write_updates(&items, &mut events).await,
                    };
                    events.extend(outcomes);
                }
                events
            }
        };
        // Flag changes and deletions go one folder after the other: a store that must select a
        // folder for them (IMAP) then selects each once, where units taking turns on a
        // connection would select them again and again.
        let (updates, others): (Vec<&Vec<usize>>, Vec<&Vec<usize>>) =
            units.iter().partition(|unit| {
                unit.first().is_some_and(|&index| {
                    matches!(
                        intents[index],
                        Action::SetFlags { .. } | Action::Delete { .. }
                    )
                })
            });
        let mut work: Vec<BoxFuture<'_, Vec<Event>>> = others
            .into_iter()
            .map(|unit| run_unit(unit).boxed())
            .collect();
        if !updates.is_empty() {
            let run_unit = &run_unit;
            work.push(
                async move {
                    let mut events = Vec::new();
                    for unit in updates {
                        events.extend(run_unit(unit).await);
                    }
                    events
                }
                .boxed(),
            );
        }
        let results: Vec<Vec<Event>> = futures::stream::iter(work)
            .buffer_unordered(jobs)
            .collect()
            .await;
        let mut flush_events = Vec::new();
        worker
            .retry(Side::Target, &mut flush_events, || worker.target.flush())
            .await
            .map_err(RunError::on(Side::Target))?;
        let mut outcomes: Vec<Event> = results.into_iter().flatten().collect();
        outcomes.extend(flush_events);
        Ok(outcomes)
    }
}

/// The plan's writes in the order they go out: folder renames and creations (their number is
/// returned too), copies, moves, flag updates, deletions.
fn queue_of(plan: &Delta) -> (VecDeque<Action>, usize) {
    let mut queue: VecDeque<Action> = VecDeque::new();
    for (from, to) in &plan.renames {
        queue.push_back(Action::RenameFolder {
            from: from.clone(),
            to: to.clone(),
        });
    }
    for folder in &plan.create_folders {
        queue.push_back(Action::CreateFolder {
            folder: folder.clone(),
        });
    }
    for (folder, spec) in &plan.collections {
        queue.push_back(Action::CreateCollection {
            folder: folder.clone(),
            spec: spec.clone(),
        });
    }
    let folder_actions = queue.len();
    // In the batch after the folders' (whose writes run side by side): after the collections
    // they describe are made.
    for (folder, from, to) in &plan.collection_props {
        queue.push_back(Action::SetCollection {
            folder: folder.clone(),
            from: from.clone(),
            to: to.clone(),
        });
    }
    for copy in &plan.copies {
        queue.push_back(Action::Append {
            source_folder: copy.source_folder.clone(),
            source_id: copy.source_id.clone(),
            folder: copy.folder.clone(),
            content: copy.content,
            size: copy.size,
            flags: copy.flags.clone(),
            date: copy.date,
            probe: String::new(),
        });
    }
    for put in &plan.puts {
        queue.push_back(match &put.target {
            None => Action::Create {
                source_folder: put.source_folder.clone(),
                source_id: put.source_id.clone(),
                folder: put.folder.clone(),
                key: put.key.clone(),
                kind: put.kind,
                content: put.content,
                size: put.size,
            },
            Some((id, expect)) => Action::Update {
                source_folder: put.source_folder.clone(),
                source_id: put.source_id.clone(),
                folder: put.folder.clone(),
                id: id.clone(),
                key: put.key.clone(),
                content: put.content,
                size: put.size,
                expect: expect.clone(),
            },
        });
    }
    for planned in &plan.moves {
        queue.push_back(Action::Move {
            source_folder: planned.copy.source_folder.clone(),
            source_id: planned.copy.source_id.clone(),
            from: planned.from.folder.clone(),
            id: planned.from.id.clone(),
            folder: planned.copy.folder.clone(),
            content: planned.copy.content,
            size: planned.copy.size,
            probe: String::new(),
        });
    }
    for update in &plan.flag_updates {
        queue.push_back(Action::SetFlags {
            folder: update.folder.clone(),
            id: update.id.clone(),
            flags: update.to.clone(),
        });
    }
    for deletion in &plan.deletions {
        queue.push_back(Action::Delete {
            folder: deletion.folder.clone(),
            id: deletion.id.clone(),
            content: deletion.content,
        });
    }
    for deletion in &plan.keyed_deletions {
        queue.push_back(Action::DeleteIf {
            folder: deletion.folder.clone(),
            id: deletion.id.clone(),
            key: deletion.key.clone(),
            content: deletion.content,
            expect: deletion.expect.clone(),
        });
    }
    (queue, folder_actions)
}

/// Counts a batch's outcomes into `progress`: what was written, and the writes that failed.
fn tally(intents: &[Action], first_op: OpId, outcomes: &[Event], progress: &mut Progress) {
    let intent_of = |op: &OpId| {
        op.checked_sub(first_op)
            .and_then(|index| intents.get(usize::try_from(index).ok()?))
    };
    // A failed move is not a failure of the run: the item is copied instead.
    let moved =
        |op: &OpId| intent_of(op).is_some_and(|action| matches!(action, Action::Move { .. }));
    progress.failed += outcomes
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::WriteFailed {
                    op,
                    class: FailureClass::Transient
                        | FailureClass::Permanent
                        | FailureClass::Conflict,
                    ..
                } if !moved(op)
            )
        })
        .count();
    let counts = &mut progress.counts;
    for outcome in outcomes {
        if let Event::WriteFailed {
            class: FailureClass::Conflict,
            ..
        } = outcome
        {
            counts.conflicts += 1;
        }
        if let Event::WriteDone { op, .. } | Event::WriteStored { op, .. } = outcome
            && let Some(action) = intent_of(op)
        {
            match action {
                Action::Append { size, .. } | Action::Create { size, .. } => {
                    counts.copied += 1;
                    counts.copied_bytes += size;
                }
                Action::Update { .. } => counts.updated += 1,
                Action::SetFlags { .. } => counts.flags_updated += 1,
                Action::Delete { .. } | Action::DeleteIf { .. } => counts.deleted += 1,
                Action::Move { .. } => counts.moved += 1,
                Action::CreateFolder { .. }
                | Action::CreateCollection { .. }
                | Action::RenameFolder { .. } => {
                    counts.folders += 1;
                }
                // Never planned here: counted by `delete_emptied_folders`.
                Action::DeleteFolder { .. } => {}
                // A change of properties (the audit trail holds it).
                Action::SetCollection { .. } => {}
            }
        }
    }
}

/// Takes up to `limit` actions, never two appends of the same content to the same folder in
/// one batch: their in-doubt lookups could not tell them apart while both are in flight.
fn take_batch(queue: &mut VecDeque<Action>, limit: usize) -> Vec<Action> {
    let mut batch = Vec::new();
    let mut keys: BTreeSet<(String, ContentHash)> = BTreeSet::new();
    let mut deferred = Vec::new();
    while batch.len() < limit {
        let Some(action) = queue.pop_front() else {
            break;
        };
        if let Action::Append {
            folder, content, ..
        }
        | Action::Move {
            folder, content, ..
        } = &action
            && !keys.insert((folder.clone(), *content))
        {
            deferred.push(action);
            continue;
        }
        batch.push(action);
    }
    for action in deferred.into_iter().rev() {
        queue.push_front(action);
    }
    batch
}

/// The writes of a batch as units of work: each write alone, except that with `append_many`
/// appends into one folder go together, up to [`UNIT_MESSAGES_MAX`] messages or
/// [`UNIT_BYTES_MAX`] bytes a unit, and with `update_many` the flag updates and deletions of
/// one folder, and the moves from one folder to another (up to [`UNIT_MESSAGES_MAX`]).
fn units(intents: &[Action], append_many: bool, update_many: bool) -> Vec<Vec<usize>> {
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut open: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    // Flag updates and deletions of one folder: one unit (a batch holds ≤ 256 actions), so
    // the folder is selected once for both.
    let mut updates: BTreeMap<&str, usize> = BTreeMap::new();
    // Moves from one folder to another: one unit, one request.
    let mut moves: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (index, action) in intents.iter().enumerate() {
        match action {
            Action::Move { from, folder, .. } if update_many => {
                match moves.get(&(from.as_str(), folder.as_str())) {
                    Some(&unit) if units[unit].len() < UNIT_MESSAGES_MAX => {
                        units[unit].push(index);
                    }
                    _ => {
                        moves.insert((from, folder), units.len());
                        units.push(vec![index]);
                    }
                }
            }
            Action::SetFlags { folder, .. } | Action::Delete { folder, .. } if update_many => {
                match updates.get(folder.as_str()) {
                    Some(&unit) => units[unit].push(index),
                    None => {
                        updates.insert(folder, units.len());
                        units.push(vec![index]);
                    }
                }
            }
            Action::Append { folder, size, .. } if append_many => {
                let slot = open.get(folder.as_str()).copied();
                match slot {
                    Some((unit, bytes))
                        if units[unit].len() < UNIT_MESSAGES_MAX
                            && bytes + size <= UNIT_BYTES_MAX =>
                    {
                        units[unit].push(index);
                        open.insert(folder, (unit, bytes + size));
                    }
                    _ => {
                        open.insert(folder, (units.len(), *size));
                        units.push(vec![index]);
                    }
                }
            }
            _ => units.push(vec![index]),
        }
    }
    // Every write of the batch is in exactly one unit.
    debug_assert_eq!(units.iter().map(Vec::len).sum::<usize>(), intents.len());
    units
}
