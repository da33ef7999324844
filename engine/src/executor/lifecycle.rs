//! A run's life: made from its [`RunContext`], then [`Run::execute`]d: the run is started in
//! the journal, writes in doubt settled, source and target observed, the plan made (and
//! guarded), carried out, emptied folders deleted, written folders listed again, and the run
//! ended in the journal, or stopped there with the reason when a store failed.
//!
//! Every event goes through [`Run::record`] (journaled, then folded into the state) or
//! [`Run::defer`] (folded now, journaled with the next record).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::event::{Event, RunOutcome, Side};
use crate::projection::Projection;
use crate::projection::delta::{self, after_moves::after_moves};

use super::{
    Counts, NOTICES_PER_SIDE_MAX, Note, Pacers, Progress, Run, RunContext, RunError, RunSummary,
    State, Worker, halt, observe,
};

impl<'a> Run<'a> {
    /// Prepares a run over events already replayed into `context.state`.
    pub fn new(context: RunContext<'a>) -> Run<'a> {
        let RunContext {
            source,
            target,
            log,
            state,
            options,
            config,
            clock,
            watcher,
            stop,
            pacers,
        } = context;
        let pacers = pacers.unwrap_or_else(|| Pacers::for_stores(source, target));
        let rng = Mutex::new(fastrand::Rng::with_seed(config.seed));
        let halt = halt::Halt::new(stop.clone(), config.jobs);
        Run {
            source,
            target,
            log,
            state,
            options,
            config,
            clock,
            watcher,
            stop,
            rng,
            folder_problems: 0,
            prefetched: Mutex::new(BTreeMap::new()),
            ahead: Progress::default(),
            deferred: Vec::new(),
            movable: BTreeSet::new(),
            touched: BTreeSet::new(),
            halt,
            pacers,
        }
    }

    /// The state as of the last recorded event.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The state as of the last recorded event, the run and what it borrowed let go.
    pub fn into_state(self) -> State {
        self.state
    }

    /// Records events (unless this is a dry run) and folds them into the state.
    pub(super) fn record(&mut self, events: Vec<Event>) -> Result<(), RunError> {
        if events.is_empty() && self.deferred.is_empty() {
            return Ok(());
        }
        if !self.options.dry_run {
            if self.deferred.is_empty() {
                self.log.append(&events)?;
            } else {
                let mut all = std::mem::take(&mut self.deferred);
                all.extend(events.iter().cloned());
                self.log.append(&all)?;
            }
        }
        for event in &events {
            // Promise: a write's outcome is recorded after its intent, and once.
            if let Event::WriteDone { op, .. }
            | Event::WriteStored { op, .. }
            | Event::WriteFailed { op, .. } = event
            {
                assert!(
                    self.state.target.pending.contains_key(op),
                    "an outcome for write {op}, whose intent is not recorded or already settled"
                );
            }
            observe::touch(&mut self.touched, event);
            self.state.apply(event);
        }
        Ok(())
    }

    /// Folds observations into the state now and journals them with the next [`Run::record`],
    /// in the same durable append: observations need no flush of their own, and a write that
    /// depends on them is journaled after them.
    pub(super) fn defer(&mut self, events: Vec<Event>) {
        for event in &events {
            self.state.apply(event);
        }
        if !self.options.dry_run {
            self.deferred.extend(events);
        }
    }

    /// An independent random generator for another worker's retry jitter.
    pub(super) fn rng_fork(&self) -> fastrand::Rng {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).fork()
    }

    pub(super) fn worker(&self) -> Worker<'_> {
        Worker::new(
            (self.source, self.target),
            &self.config,
            (self.clock, self.watcher),
            &self.rng,
            self.log.content_key(),
            &self.state.target,
            &self.prefetched,
            &self.halt,
            &self.pacers,
        )
    }

    /// How long each side's calls waited for the limits its store declared.
    fn paced(&self) -> Vec<Event> {
        let mut events = Vec::new();
        for side in [Side::Source, Side::Target] {
            for (limit, waited) in self.pacers.side(side).look(crate::pacer::Core::waited) {
                events.push(Event::Paced {
                    side,
                    limit: limit.name().to_owned(),
                    wait_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                });
            }
        }
        events
    }

    /// Whether deletions paired with copies of the same content become moves on the target.
    /// Journals the plan's conflicts (stated afresh by every run that still finds them) and
    /// the target items found in agreement with the source again.
    fn record_conflicts(&mut self, plan: &delta::Delta) -> Result<(), RunError> {
        let mut events: Vec<Event> = plan
            .conflicts
            .iter()
            .map(|conflict| Event::Conflict {
                source_folder: conflict.source_folder.clone(),
                source_id: conflict.source_id.clone(),
                folder: conflict.folder.clone(),
                id: conflict.id.clone(),
                reason: conflict.reason.clone(),
            })
            .collect();
        for conflict in &plan.conflicts {
            self.watcher.note(Note::ItemFailed(format!(
                "conflict: {}/{}: {}",
                conflict.folder, conflict.id, conflict.reason
            )));
        }
        events.extend(plan.agreed.iter().map(|(folder, id)| Event::TargetChecked {
            folder: folder.clone(),
            id: id.clone(),
            state: crate::event::CheckState::Intact,
        }));
        self.record(events)
    }

    pub(super) fn moves(&self) -> bool {
        self.options.delete_removed && self.target.capabilities().moves
    }

    /// Runs to the end, or until stopped. `history` is the journal's first run check: the
    /// source and target of its earlier runs, if any.
    pub async fn execute(&mut self, history: Option<(&str, &str)>) -> Result<RunSummary, RunError> {
        let started = self.state.target.run;
        let result = self.execute_run(history).await;
        if let Err(RunError::Store { side, error }) = &result
            && self.state.target.run > started
            && !self.options.dry_run
        {
            // The run ends here: say how and why (best effort; the error is what counts).
            let side = match side {
                Side::Source => "source",
                Side::Target => "target",
            };
            let _ = self.record(vec![Event::RunStopped {
                run: self.state.target.run,
                at: self.clock.now_ms(),
                outcome: RunOutcome::Aborted,
                reason: format!("the {side} failed: {error}"),
            }]);
        }
        result
    }

    async fn execute_run(&mut self, history: Option<(&str, &str)>) -> Result<RunSummary, RunError> {
        let source_uri = self.source.describe();
        let target_uri = self.target.describe();
        if let Some((source, target)) = history
            && (source != source_uri || target != target_uri)
        {
            return Err(RunError::OtherPair {
                source_uri: source.to_owned(),
                target_uri: target.to_owned(),
                given_source: source_uri,
                given_target: target_uri,
            });
        }
        let run = self.state.target.run + 1;
        if !self.options.dry_run {
            self.record(vec![Event::RunStarted {
                run,
                at: self.clock.now_ms(),
                source: source_uri,
                target: target_uri,
                options: self.options,
            }])?;
        }

        let (resolved_done, resolved_not_applied) = self.resolve_in_doubt().await?;
        let folders = self.observe_source_folders().await?;
        self.observe_target().await?;
        self.observe_source_items(&folders).await?;
        let mut plan = delta::delta(&self.state.source, &self.state.target, &self.options);
        let left_out = plan.held_by(&self.target.capabilities());
        if !self.options.dry_run {
            let notices = left_out
                .into_iter()
                .map(|((folder, kind), ids)| Event::StoreNotice {
                    side: Side::Target,
                    // Each item named: a drop is never silent.
                    text: format!(
                        "{folder}: {} {} not copied: the target cannot hold {}: {}",
                        ids.len(),
                        if ids.len() == 1 { "item" } else { "items" },
                        kind.plural(),
                        ids.iter()
                            .map(|id| id.0.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
                .collect();
            self.record(notices)?;
        }
        if self.moves() {
            plan.pair_moves(&BTreeSet::new());
        }
        if !self.options.dry_run {
            self.record_conflicts(&plan)?;
        }
        // Too many deletions at once (a source folder deleted, or listed empty by a faulty
        // server): everything else is done, the deletions wait for a confirmation.
        let held = if self.options.delete_removed && !self.config.confirm_deletions {
            crate::projection::guard::held_deletions(&plan, &self.state.target)
        } else {
            None
        };
        if held.is_some() && !self.options.dry_run {
            plan.deletions.clear();
            plan.keyed_deletions.clear();
        }
        // Copies made while observing count as planned (and done).
        self.watcher.note(Note::Planned {
            copies: plan.copies.len() + usize::try_from(self.ahead.counts.copied).unwrap_or(0),
            bytes: plan.copies.iter().map(|c| c.size).sum::<u64>() + self.ahead.counts.copied_bytes,
            other: plan.renames.len()
                + plan.create_folders.len()
                + plan.collections.len()
                + plan.collection_props.len()
                + plan.puts.len()
                + plan.flag_updates.len()
                + plan.deletions.len()
                + plan.keyed_deletions.len()
                + plan.moves.len(),
        });
        if self.options.dry_run {
            let in_place = plan.in_place;
            return Ok(RunSummary {
                run: None,
                outcome: RunOutcome::Completed,
                delta: plan,
                resolved_done,
                resolved_not_applied,
                failed: 0,
                counts: Counts::default(),
                already: in_place,
                held,
            });
        }

        let mut done = Progress::default();
        if !self.ahead.paused {
            done = self.carry_out(&plan).await?;
            if !plan.moves.is_empty() && !done.paused {
                let after = after_moves(
                    &self.state.source,
                    &self.state.target,
                    &self.options,
                    &plan.moves,
                );
                done += self.carry_out(&after).await?;
            }
        }
        // The plan counts what this run copied while reading as in place already.
        let already = plan.in_place.saturating_sub(self.ahead.counts.copied);
        done.counts.conflicts += plan.conflicts.len() as u64;
        done += self.ahead;
        let Progress {
            mut failed,
            paused,
            mut counts,
        } = done;
        // Target folders whose source folder is gone and that ferry emptied: deleted, unless
        // they hold mail ferry did not write (then kept and reported).
        if self.options.delete_removed && !paused && !self.stop.is_stopped() && held.is_none() {
            let folders = self.delete_emptied_folders().await?;
            failed += folders.failed;
            counts.folders += folders.deleted;
            let kept: Vec<Event> = folders
                .kept
                .into_iter()
                .map(|(folder, why)| Event::StoreNotice {
                    side: Side::Target,
                    text: format!("folder {folder} kept although its source folder is gone: {why}"),
                })
                .collect();
            self.record(kept)?;
        }
        if !paused {
            self.relist_touched().await?;
        }
        let notices: Vec<Event> = [(Side::Source, self.source), (Side::Target, self.target)]
            .into_iter()
            .flat_map(|(side, store)| {
                store
                    .notices()
                    .into_iter()
                    .take(NOTICES_PER_SIDE_MAX)
                    .map(move |text| Event::StoreNotice { side, text })
            })
            .collect();
        self.record(notices)?;
        let unreadable = self
            .state
            .source
            .folders
            .values()
            .any(|f| !f.unreadable.is_empty());
        // A stop asked for during the run cut its retries short: it is paused, not done.
        let outcome = if paused || self.stop.is_stopped() {
            RunOutcome::Paused
        } else if held.is_some() {
            RunOutcome::DeletionsHeld
        } else if failed > 0
            || unreadable
            || self.folder_problems > 0
            || !plan.skipped.is_empty()
            || !plan.conflicts.is_empty()
        {
            // A source item left off the target (refused for good, unreadable) is never a
            // clean run.
            RunOutcome::CompletedWithFailures
        } else {
            RunOutcome::Completed
        };
        let mut ended = self.paced();
        ended.push(Event::RunEnded {
            run,
            at: self.clock.now_ms(),
            outcome,
        });
        self.record(ended)?;
        Ok(RunSummary {
            run: Some(run),
            outcome,
            delta: plan,
            resolved_done,
            resolved_not_applied,
            failed,
            counts,
            already,
            held,
        })
    }
}

/// A run's future can move between threads (a multi-threaded runtime, `tokio::spawn`): this
/// does not compile otherwise.
fn _assert_send(run: &mut Run<'_>) {
    fn is_send<T: Send>(_: &T) {}
    is_send(&run.execute(None));
}
