//! The audit trail: every write ferry made, when, in which run, from where to where, and how
//! it ended. Read from the journal alone.

use std::collections::BTreeMap;

use crate::event::{Action, Event, FailureClass, Millis, NativeId, OpId, ProvisionStep, RunId};
use crate::projection::Projection;

/// How a write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutcome {
    /// Done; the target id when there is one.
    Done(Option<NativeId>),
    /// Failed.
    Failed(FailureClass, String),
}

/// One audited write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When it ended (for failures: the last time the journal knew of).
    pub at: Millis,
    /// The run.
    pub run: RunId,
    /// The operation number.
    pub op: OpId,
    /// What it did.
    pub action: Action,
    /// How it ended.
    pub outcome: AuditOutcome,
}

impl AuditEntry {
    /// The target folder the write touched (the new name for a rename).
    pub fn folder(&self) -> &str {
        match &self.action {
            Action::CreateFolder { folder }
            | Action::CreateCollection { folder, .. }
            | Action::SetCollection { folder, .. }
            | Action::Append { folder, .. }
            | Action::Create { folder, .. }
            | Action::Update { folder, .. }
            | Action::DeleteIf { folder, .. }
            | Action::SetFlags { folder, .. }
            | Action::Delete { folder, .. }
            | Action::Move { folder, .. }
            | Action::DeleteFolder { folder } => folder,
            Action::RenameFolder { to, .. } => to,
        }
    }
}

/// A step of creating the target mailbox (`--create-target-mailbox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionEntry {
    /// When it was about to be taken.
    pub at: Millis,
    /// The step.
    pub step: ProvisionStep,
    /// The user.
    pub user: String,
    /// Whether its outcome was recorded (without one, the run stopped inside the step; the
    /// next run with the option asked the tenant before doing anything).
    pub done: bool,
}

/// The audit projection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// Every settled write, in journal order.
    pub entries: Vec<AuditEntry>,
    /// The steps of creating the target mailbox, in journal order.
    pub provisioning: Vec<ProvisionEntry>,
    pending: BTreeMap<OpId, (RunId, Action)>,
    run: RunId,
    now: Millis,
}

impl Audit {
    /// Entries at or after `since` and, when given, touching `folder`.
    pub fn filtered<'a>(
        &'a self,
        since: Option<Millis>,
        folder: Option<&'a str>,
    ) -> impl Iterator<Item = &'a AuditEntry> + 'a {
        self.entries.iter().filter(move |entry| {
            since.is_none_or(|since| entry.at >= since)
                && folder.is_none_or(|folder| entry.folder() == folder)
        })
    }
}

impl Audit {
    fn done(&mut self, op: OpId, at: Millis, id: Option<NativeId>) {
        self.now = at;
        if let Some((run, action)) = self.pending.remove(&op) {
            self.entries.push(AuditEntry {
                at,
                run,
                op,
                action,
                outcome: AuditOutcome::Done(id),
            });
        }
    }
}

impl Projection for Audit {
    fn apply(&mut self, event: &Event) {
        match event {
            Event::Batch(events) => events.iter().for_each(|event| self.apply(event)),
            Event::RunStarted { run, at, .. } => {
                self.run = *run;
                self.now = *at;
            }
            Event::RunEnded { at, .. } => self.now = *at,
            Event::WriteIntent { op, action } => {
                self.pending.insert(*op, (self.run, action.clone()));
            }
            Event::WriteDone { op, id, at } => self.done(*op, *at, id.clone()),
            Event::WriteStored { op, id, at, .. } => self.done(*op, *at, Some(id.clone())),
            Event::Provisioning {
                step,
                user,
                done,
                at,
            } => {
                let open = self
                    .provisioning
                    .iter()
                    .rposition(|e| !e.done && &e.step == step && &e.user == user);
                match (open, *done) {
                    (Some(index), true) => self.provisioning[index].done = true,
                    // An intent; or an outcome without its intent, kept as it is.
                    _ => self.provisioning.push(ProvisionEntry {
                        at: *at,
                        step: step.clone(),
                        user: user.clone(),
                        done: *done,
                    }),
                }
            }
            Event::WriteFailed { op, class, reason } => {
                if let Some((run, action)) = self.pending.remove(op) {
                    self.entries.push(AuditEntry {
                        at: self.now,
                        run,
                        op: *op,
                        action,
                        outcome: AuditOutcome::Failed(*class, reason.clone()),
                    });
                }
            }
            _ => {}
        }
    }
}
