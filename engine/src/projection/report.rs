//! The report: per run, what happened; per folder, what was migrated, skipped and failed, with
//! the reasons. Items whose latest attempt failed count as failed until a later run succeeds.

use std::collections::BTreeMap;

use crate::event::{
    Action, Event, FailureClass, Millis, NativeId, OpId, RunId, RunOptions, RunOutcome, Side,
};
use crate::projection::Projection;

/// One run, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// Its number.
    pub run: RunId,
    /// When it started.
    pub started: Millis,
    /// When it ended, if it did (a crashed run never ends; the next one resumes it).
    pub ended: Option<Millis>,
    /// How it ended (`None`: it never recorded an end).
    pub outcome: Option<RunOutcome>,
    /// Why it stopped, when it ended on an error.
    pub reason: Option<String>,
    /// For a run that never recorded an end (killed, or the machine stopped): the run that
    /// came next and resumed it.
    pub resumed_by: Option<RunId>,
    /// Source URI.
    pub source: String,
    /// Target URI.
    pub target: String,
    /// Options.
    pub options: RunOptions,
    /// Messages copied.
    pub copied: u64,
    /// Bytes copied.
    pub copied_bytes: u64,
    /// Flag updates.
    pub flags_updated: u64,
    /// Messages deleted on the target.
    pub deleted: u64,
    /// Messages moved between target folders on the target itself.
    pub moved: u64,
    /// Folders created.
    pub folders_created: u64,
    /// Folders renamed.
    pub folders_renamed: u64,
    /// Folders deleted: ferry created them, their source folder was gone, and ferry's own
    /// deletions had emptied them.
    pub folders_deleted: u64,
    /// Writes that failed.
    pub failed: u64,
    /// Time spent waiting because a side throttled, in ms.
    pub throttled_ms: u64,
    /// Time calls spent waiting for limits a side declared, in ms (per side and limit, added).
    pub paced_ms: u64,
    /// Keyed items (events, contacts) updated in place on the target.
    pub updated: u64,
    /// Items left alone because their target item changed behind ferry's back.
    pub conflicts: u64,
}

/// One folder, over all runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderReport {
    /// Messages ferry copied into it.
    pub copied: u64,
    /// Flag updates.
    pub flags_updated: u64,
    /// Messages ferry deleted from it.
    pub deleted: u64,
    /// Messages ferry moved into it from another folder on the target.
    pub moved_in: u64,
    /// Source items whose latest copy attempt failed (the next run tries again), by reason.
    pub failed: BTreeMap<String, u64>,
    /// Source items the target refused for good (too large, …), by the target's reason:
    /// tried again with `--full` or `--verify-target`.
    pub refused: BTreeMap<String, u64>,
    /// Source items (or whole folders) that could not be read on the source, by reason:
    /// tried again on every run.
    pub unreadable: BTreeMap<String, u64>,
    /// Keyed items (events, contacts) ferry updated in place.
    pub updated: u64,
    /// Source items ferry left alone because their target item changed behind its back, by
    /// reason: reported on every run, never retried, until someone resolves them.
    pub conflicts: BTreeMap<String, u64>,
}

/// The report projection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every run, in order.
    pub runs: Vec<RunSummary>,
    /// Per target folder.
    pub folders: BTreeMap<String, FolderReport>,
    /// Folder renames carried to the target: (run, from, to).
    pub renames: Vec<(RunId, String, String)>,
    /// UIDVALIDITY changes seen on the source: (folder, old, new).
    pub validity_changes: Vec<(String, Option<u64>, Option<u64>)>,
    /// What the stores could not do as asked, each once.
    pub notices: std::collections::BTreeSet<String>,
    pending: BTreeMap<OpId, Action>,
    /// Latest copy outcome per (folder, source id): `Some(reason)` when it failed.
    attempts: BTreeMap<(String, NativeId), Option<(FailureClass, String)>>,
    unreadable: BTreeMap<(String, NativeId), String>,
    unreadable_folders: BTreeMap<String, String>,
    /// Conflicts as the last run that planned stated them, by (source folder, source id).
    conflicts: BTreeMap<(String, NativeId), String>,
    /// Conflicts the current run stated so far: they replace `conflicts` once it has planned
    /// and ended (a run that stopped before planning leaves the last ones standing).
    conflicts_stated: BTreeMap<(String, NativeId), String>,
    validity: BTreeMap<String, Option<u64>>,
}

impl Report {
    fn current(&mut self) -> Option<&mut RunSummary> {
        self.runs.last_mut()
    }

    /// A source item is on the target now: a failure of an earlier attempt no longer counts.
    fn landed(&mut self, source_folder: String, source_id: NativeId) {
        let key = (source_folder, source_id);
        self.conflicts_stated.remove(&key);
        let conflicted = self.conflicts.remove(&key).is_some();
        if self.attempts.insert(key, None).flatten().is_some() || conflicted {
            self.settle();
        }
    }

    /// A conflict stated now, for source item `key`.
    fn conflict(&mut self, key: (String, NativeId), reason: String) {
        if let Some(run) = self.current() {
            run.conflicts += 1;
        }
        self.conflicts_stated.insert(key.clone(), reason.clone());
        self.conflicts.insert(key, reason);
        self.settle();
    }

    /// Recomputes the per-folder failed and skipped counts from the latest attempts.
    fn settle(&mut self) {
        for folder in self.folders.values_mut() {
            folder.failed.clear();
            folder.refused.clear();
            folder.unreadable.clear();
            folder.conflicts.clear();
        }
        for ((folder, _), reason) in &self.conflicts {
            *self
                .folders
                .entry(folder.clone())
                .or_default()
                .conflicts
                .entry(reason.clone())
                .or_default() += 1;
        }
        for ((folder, _), outcome) in &self.attempts {
            if let Some((class, reason)) = outcome {
                let entry = self.folders.entry(folder.clone()).or_default();
                let map = match class {
                    FailureClass::Permanent => &mut entry.refused,
                    _ => &mut entry.failed,
                };
                *map.entry(reason.clone()).or_default() += 1;
            }
        }
        for (folder, reason) in &self.unreadable_folders {
            *self
                .folders
                .entry(folder.clone())
                .or_default()
                .unreadable
                .entry(format!("folder not listed: {reason}"))
                .or_default() += 1;
        }
        for ((folder, _), reason) in &self.unreadable {
            *self
                .folders
                .entry(folder.clone())
                .or_default()
                .unreadable
                .entry(reason.clone())
                .or_default() += 1;
        }
    }

    /// Source items whose latest copy attempt failed (not refused for good).
    pub fn failed_items(&self) -> u64 {
        self.folders
            .values()
            .map(|f| f.failed.values().sum::<u64>())
            .sum()
    }

    /// Source items the target refused for good.
    pub fn refused_items(&self) -> u64 {
        self.folders
            .values()
            .map(|f| f.refused.values().sum::<u64>())
            .sum()
    }

    /// Source items and folders that could not be read.
    pub fn unreadable_items(&self) -> u64 {
        self.folders
            .values()
            .map(|f| f.unreadable.values().sum::<u64>())
            .sum()
    }

    /// Source items left alone because their target item changed behind ferry's back.
    pub fn conflict_items(&self) -> u64 {
        self.folders
            .values()
            .map(|f| f.conflicts.values().sum::<u64>())
            .sum()
    }

    /// Source items that are not on the target as they are on the source: failed, refused,
    /// unreadable or in conflict.
    pub fn items_off_target(&self) -> u64 {
        self.failed_items() + self.refused_items() + self.unreadable_items() + self.conflict_items()
    }

    /// A write confirmed: what it counts for.
    fn written(&mut self, action: Action) {
        match action {
            Action::Append {
                source_folder,
                source_id,
                folder,
                size,
                ..
            }
            | Action::Create {
                source_folder,
                source_id,
                folder,
                size,
                ..
            } => {
                self.folders.entry(folder).or_default().copied += 1;
                if let Some(run) = self.current() {
                    run.copied += 1;
                    run.copied_bytes += size;
                }
                self.landed(source_folder, source_id);
            }
            Action::Update {
                source_folder,
                source_id,
                folder,
                ..
            } => {
                self.folders.entry(folder).or_default().updated += 1;
                if let Some(run) = self.current() {
                    run.updated += 1;
                }
                self.landed(source_folder, source_id);
            }
            Action::SetFlags { folder, .. } => {
                self.folders.entry(folder).or_default().flags_updated += 1;
                if let Some(run) = self.current() {
                    run.flags_updated += 1;
                }
            }
            Action::Delete { folder, .. } | Action::DeleteIf { folder, .. } => {
                self.folders.entry(folder).or_default().deleted += 1;
                if let Some(run) = self.current() {
                    run.deleted += 1;
                }
            }
            Action::Move {
                source_folder,
                source_id,
                folder,
                ..
            } => {
                self.folders.entry(folder).or_default().moved_in += 1;
                if let Some(run) = self.current() {
                    run.moved += 1;
                }
                self.landed(source_folder, source_id);
            }
            Action::CreateFolder { folder } | Action::CreateCollection { folder, .. } => {
                self.folders.entry(folder).or_default();
                if let Some(run) = self.current() {
                    run.folders_created += 1;
                }
            }
            Action::SetCollection { folder, .. } => {
                self.folders.entry(folder).or_default();
            }
            Action::RenameFolder { from, to } => {
                let run_id = self.current().map(|run| {
                    run.folders_renamed += 1;
                    run.run
                });
                if let Some(moved) = self.folders.remove(&from) {
                    self.folders.insert(to.clone(), moved);
                }
                self.renames.push((run_id.unwrap_or(0), from, to));
            }
            Action::DeleteFolder { folder } => {
                // What ferry did in it stays in the report under its name.
                self.folders.entry(folder).or_default();
                if let Some(run) = self.current() {
                    run.folders_deleted += 1;
                }
            }
        }
    }
}

impl Projection for Report {
    fn apply(&mut self, event: &Event) {
        match event {
            Event::Batch(events) => events.iter().for_each(|event| self.apply(event)),
            Event::RunStarted {
                run,
                at,
                source,
                target,
                options,
            } => {
                if let Some(previous) = self.runs.last_mut()
                    && previous.outcome.is_none()
                {
                    previous.resumed_by = Some(*run);
                }
                self.runs.push(RunSummary {
                    run: *run,
                    started: *at,
                    ended: None,
                    outcome: None,
                    reason: None,
                    resumed_by: None,
                    source: source.clone(),
                    target: target.clone(),
                    options: *options,
                    copied: 0,
                    copied_bytes: 0,
                    flags_updated: 0,
                    deleted: 0,
                    moved: 0,
                    folders_created: 0,
                    folders_renamed: 0,
                    folders_deleted: 0,
                    failed: 0,
                    throttled_ms: 0,
                    paced_ms: 0,
                    updated: 0,
                    conflicts: 0,
                });
                // Conflicts are stated afresh by every run that still finds them.
                self.conflicts_stated.clear();
            }
            Event::FolderSeen {
                side: Side::Source,
                folder,
                validity,
                ..
            } => {
                if let Some(Some(old)) = self.validity.get(folder)
                    && Some(*old) != *validity
                {
                    self.validity_changes
                        .push((folder.clone(), Some(*old), *validity));
                }
                self.validity.insert(folder.clone(), *validity);
            }
            Event::ItemSeen {
                side: Side::Source,
                folder,
                id,
                ..
            }
            | Event::ItemGone {
                side: Side::Source,
                folder,
                id,
            } => {
                let was_unreadable = self.unreadable.remove(&(folder.clone(), id.clone()));
                if was_unreadable.is_some() {
                    self.settle();
                }
            }
            Event::ItemUnreadable {
                side: Side::Source,
                folder,
                id,
                reason,
            } => {
                self.unreadable
                    .insert((folder.clone(), id.clone()), reason.clone());
                self.settle();
            }
            Event::StoreNotice { side, text } => {
                let side = match side {
                    Side::Source => "source",
                    Side::Target => "target",
                };
                self.notices.insert(format!("{side}: {text}"));
            }
            Event::FolderUnreadable {
                side: Side::Source,
                folder,
                reason,
            } => {
                self.unreadable_folders
                    .insert(folder.clone(), reason.clone());
                self.settle();
            }
            Event::FolderListed {
                side: Side::Source,
                folder,
                ..
            } => {
                let was_unreadable = self.unreadable_folders.remove(folder);
                if was_unreadable.is_some() {
                    self.settle();
                }
            }
            Event::WriteIntent { op, action } => {
                self.pending.insert(*op, action.clone());
            }
            Event::WriteDone { op, .. } | Event::WriteStored { op, .. } => {
                if let Some(action) = self.pending.remove(op) {
                    self.written(action);
                }
            }
            Event::Conflict {
                source_folder,
                source_id,
                id,
                reason,
                ..
            } => {
                let source_id = source_id.clone().unwrap_or_else(|| id.clone());
                self.conflict((source_folder.clone(), source_id), reason.clone());
            }
            Event::WriteFailed { op, class, reason } => {
                let Some(action) = self.pending.remove(op) else {
                    return;
                };
                if *class == FailureClass::NotApplied || matches!(action, Action::Move { .. }) {
                    // An in-doubt write that never landed is not a failure: it is copied again;
                    // nor is a move that failed: its item is copied instead.
                    return;
                }
                if let Some(run) = self.current() {
                    run.failed += 1;
                }
                if let Action::Append {
                    source_folder,
                    source_id,
                    ..
                }
                | Action::Create {
                    source_folder,
                    source_id,
                    ..
                }
                | Action::Update {
                    source_folder,
                    source_id,
                    ..
                } = action
                {
                    if *class == FailureClass::Conflict {
                        self.conflict((source_folder, source_id), reason.clone());
                        return;
                    }
                    self.attempts
                        .insert((source_folder, source_id), Some((*class, reason.clone())));
                    self.settle();
                }
            }
            Event::Throttled { wait_ms, .. } | Event::ServerThrottled { wait_ms, .. } => {
                if let Some(run) = self.current() {
                    run.throttled_ms += wait_ms;
                }
            }
            Event::Paced { wait_ms, .. } => {
                if let Some(run) = self.current() {
                    run.paced_ms += wait_ms;
                }
            }
            Event::RunEnded { at, outcome, .. } => {
                if let Some(run) = self.current() {
                    run.ended = Some(*at);
                    run.outcome = Some(*outcome);
                }
                // A run that planned stated every conflict it found: those it did not are
                // resolved.
                if matches!(
                    outcome,
                    RunOutcome::Completed
                        | RunOutcome::CompletedWithFailures
                        | RunOutcome::DeletionsHeld
                ) {
                    self.conflicts = std::mem::take(&mut self.conflicts_stated);
                    self.settle();
                }
            }
            Event::RunStopped {
                at,
                outcome,
                reason,
                ..
            } => {
                if let Some(run) = self.current() {
                    run.ended = Some(*at);
                    run.outcome = Some(*outcome);
                    run.reason = Some(reason.clone());
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_deletions_are_counted_per_run_and_a_refused_one_as_failed() {
        let mut report = Report::default();
        report.apply(&Event::RunStarted {
            run: 1,
            at: 0,
            source: "memory:source".into(),
            target: "memory:target".into(),
            options: RunOptions::default(),
        });
        for (op, folder) in [(1, "Old"), (2, "Full")] {
            report.apply(&Event::WriteIntent {
                op,
                action: Action::DeleteFolder {
                    folder: folder.into(),
                },
            });
        }
        report.apply(&Event::WriteDone {
            op: 1,
            id: None,
            at: 1,
        });
        report.apply(&Event::WriteFailed {
            op: 2,
            class: FailureClass::Permanent,
            reason: "Full is kept: it still holds 1 message".into(),
        });
        assert_eq!(report.runs[0].folders_deleted, 1);
        assert_eq!(report.runs[0].failed, 1);
    }
}
