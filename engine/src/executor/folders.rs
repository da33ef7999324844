//! Deleting target folders whose source folder is gone (under `--delete-removed`), once
//! ferry's own deletions emptied them: the planner decides which ([`delta::emptied_folders`]),
//! the target deletes each only if it holds nothing at that moment
//! ([`crate::store::Store::delete_folder`]), so mail that arrived meanwhile is never lost:
//! the folder is then kept, and the report says why.
//!
//! Each deletion is a write like any other: its intent is journaled before it is sent, its
//! outcome after the target made it durable. They go one at a time, children before parents.

use crate::event::{Action, Event, FailureClass, Side};
use crate::projection::delta::{self, Delta};

use super::{Run, RunError};

/// What [`Run::delete_emptied_folders`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct FolderDeletions {
    /// Folders deleted.
    pub(super) deleted: u64,
    /// Folder deletions that failed (the target refused: the folder held something after all;
    /// or it failed after its retries). The next run plans them again.
    pub(super) failed: usize,
    /// Folders whose source folder is gone that are kept, with the reason (they hold messages
    /// ferry did not write, or a folder that stays): for the run's notices.
    pub(super) kept: Vec<(String, String)>,
}

impl Run<'_> {
    /// Deletes the target folders whose source folder is gone and that ferry's deletions
    /// emptied. Called after the plan's deletions were carried out, with the state they left:
    /// an item whose deletion failed is still known, so its folder waits for a later run.
    ///
    /// The folders about to be deleted are listed again first (changes since their tokens):
    /// no source folder maps to them, so the start of the run did not look at them, and a
    /// message someone put there since is learnt and keeps its folder, with the reason.
    pub(super) async fn delete_emptied_folders(&mut self) -> Result<FolderDeletions, RunError> {
        let mut result = FolderDeletions::default();
        let none = Delta::default();
        let (mut to_delete, mut kept) =
            delta::emptied_folders(&self.state.source, &self.state.target, &none);
        if !to_delete.is_empty() {
            // Only these are listed here; the folders the run wrote to stay for its end.
            let others = std::mem::replace(&mut self.touched, to_delete.iter().cloned().collect());
            let relisted = self.relist_touched().await;
            let added = std::mem::replace(&mut self.touched, others);
            self.touched.extend(added);
            relisted?;
            (to_delete, kept) =
                delta::emptied_folders(&self.state.source, &self.state.target, &none);
        }
        result.kept = kept;

        // Folders not deleted here (failed, or not attempted): their parents stay too.
        let mut stays: Vec<String> = Vec::new();
        for folder in to_delete {
            if let Some((side, error)) = self.halt.fatal() {
                return Err(RunError::Store { side, error });
            }
            if self.halt.halted() {
                break;
            }
            if delta::folders::holds_staying_folder(&folder, &stays) {
                stays.push(folder);
                continue;
            }
            let op = self.state.target.next_op.max(1);
            let action = Action::DeleteFolder {
                folder: folder.clone(),
            };
            self.record(vec![Event::WriteIntent {
                op,
                action: action.clone(),
            }])?;
            let mut events = Vec::new();
            let outcome = {
                let worker = self.worker();
                let outcome = worker.write(op, &action, &mut events).await;
                // Durable before its outcome is journaled, as every write.
                worker
                    .retry(Side::Target, &mut events, || worker.target.flush())
                    .await
                    .map_err(RunError::on(Side::Target))?;
                outcome
            };
            match &outcome {
                Event::WriteDone { .. } => result.deleted += 1,
                Event::WriteFailed {
                    class: FailureClass::Transient | FailureClass::Permanent,
                    ..
                } => {
                    result.failed += 1;
                    stays.push(folder);
                }
                _ => stays.push(folder),
            }
            events.push(outcome);
            self.record(events)?;
        }
        if let Some((side, error)) = self.halt.fatal() {
            return Err(RunError::Store { side, error });
        }
        Ok(result)
    }
}
