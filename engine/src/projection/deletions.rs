//! Deletion propagation: every item ferry deleted on the target, when and in which run. Only
//! items ferry itself copied there are ever deleted (the planner's rule, see
//! [`crate::projection::delta`]); this projection is the record that proves it.

use std::collections::BTreeMap;

use crate::event::{Action, ContentHash, Event, Millis, NativeId, OpId, RunId};
use crate::projection::Projection;

/// One deletion carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionRecord {
    /// The run.
    pub run: RunId,
    /// When.
    pub at: Millis,
    /// Target folder.
    pub folder: String,
    /// Target id.
    pub id: NativeId,
    /// Content hash.
    pub content: ContentHash,
    /// The write that had put it there, when ferry did (always, by the planner's rule).
    pub copied_by: Option<OpId>,
}

/// The deletions projection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deletions {
    /// Deletions carried out, in journal order.
    pub done: Vec<DeletionRecord>,
    /// Target items ferry wrote: (folder, id) → the op that wrote them.
    written: BTreeMap<(String, NativeId), OpId>,
    pending: BTreeMap<OpId, Action>,
    run: RunId,
}

impl Deletions {
    /// Deletions of items ferry had not written itself: must always be empty.
    pub fn of_foreign_items(&self) -> impl Iterator<Item = &DeletionRecord> {
        self.done.iter().filter(|record| record.copied_by.is_none())
    }
}

impl Projection for Deletions {
    fn apply(&mut self, event: &Event) {
        match event {
            Event::Batch(events) => events.iter().for_each(|event| self.apply(event)),
            Event::RunStarted { run, .. } => self.run = *run,
            Event::WriteIntent { op, action } => {
                self.pending.insert(*op, action.clone());
            }
            Event::WriteFailed { op, .. } => {
                self.pending.remove(op);
            }
            Event::WriteDone { op, id, at } => match self.pending.remove(op) {
                Some(Action::Append { folder, .. }) => {
                    if let Some(id) = id {
                        self.written.insert((folder, id.clone()), *op);
                    }
                }
                Some(Action::Move {
                    from,
                    id: old,
                    folder,
                    ..
                }) => {
                    let copied_by = self.written.remove(&(from, old));
                    if let Some(id) = id {
                        self.written
                            .insert((folder, id.clone()), copied_by.unwrap_or(*op));
                    }
                }
                Some(Action::RenameFolder { from, to }) => {
                    let moved: Vec<_> = self
                        .written
                        .range((from.clone(), NativeId(String::new()))..)
                        .take_while(|((folder, _), _)| *folder == from)
                        .map(|(key, op)| (key.clone(), *op))
                        .collect();
                    for ((_, id), op) in moved {
                        self.written.remove(&(from.clone(), id.clone()));
                        self.written.insert((to.clone(), id), op);
                    }
                }
                Some(Action::Delete {
                    folder,
                    id: target_id,
                    content,
                }) => {
                    let copied_by = self.written.remove(&(folder.clone(), target_id.clone()));
                    self.done.push(DeletionRecord {
                        run: self.run,
                        at: *at,
                        folder,
                        id: target_id,
                        content,
                        copied_by,
                    });
                }
                _ => {}
            },
            _ => {}
        }
    }
}
