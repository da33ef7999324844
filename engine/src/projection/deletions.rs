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

/// One target folder deletion carried out: a folder ferry created, whose source folder was
/// gone, deleted once it held nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderDeletionRecord {
    /// The run.
    pub run: RunId,
    /// When.
    pub at: Millis,
    /// Target folder.
    pub folder: String,
    /// The write that had created it, when ferry did (always, by the planner's rule).
    pub created_by: Option<OpId>,
}

/// The deletions projection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deletions {
    /// Deletions carried out, in journal order.
    pub done: Vec<DeletionRecord>,
    /// Folder deletions carried out, in journal order.
    pub folders: Vec<FolderDeletionRecord>,
    /// Target folders ferry created: path → the op that created them.
    created: BTreeMap<String, OpId>,
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

    /// Deletions of folders ferry had not created itself: must always be empty.
    pub fn of_foreign_folders(&self) -> impl Iterator<Item = &FolderDeletionRecord> {
        self.folders
            .iter()
            .filter(|record| record.created_by.is_none())
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
            Event::WriteStored { op, id, .. } => {
                if let Some(Action::Create { folder, .. } | Action::Update { folder, .. }) =
                    self.pending.remove(op)
                {
                    self.written.insert((folder, id.clone()), *op);
                }
            }
            Event::WriteDone { op, id, at } => match self.pending.remove(op) {
                Some(Action::Append { folder, .. } | Action::Create { folder, .. }) => {
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
                Some(Action::CreateFolder { folder } | Action::CreateCollection { folder, .. }) => {
                    self.created.entry(folder).or_insert(*op);
                }
                Some(Action::DeleteFolder { folder }) => {
                    let created_by = self.created.remove(&folder);
                    self.folders.push(FolderDeletionRecord {
                        run: self.run,
                        at: *at,
                        folder,
                        created_by,
                    });
                }
                Some(Action::RenameFolder { from, to }) => {
                    if let Some(created) = self.created.remove(&from) {
                        self.created.insert(to.clone(), created);
                    }
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
                Some(
                    Action::Delete {
                        folder,
                        id: target_id,
                        content,
                    }
                    | Action::DeleteIf {
                        folder,
                        id: target_id,
                        content,
                        ..
                    },
                ) => {
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
