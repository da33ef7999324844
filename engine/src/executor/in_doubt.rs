//! Settling writes an earlier run left in doubt (an intent recorded, no outcome: a crash, a
//! lost reply): an append is looked for on the target before anything is written again (found:
//! done; not found: never applied, and the plan copies it again); a keyed write (a create, an
//! update or a deletion of an event, a contact) by reading the target item's version and
//! content (`keyed`); every other write is idempotent and is simply made again.

use futures::StreamExt as _;

use crate::event::{Action, Event, FailureClass, OpId, Side};
use crate::store::StoreError;

use super::{Note, Run, RunError};

impl Run<'_> {
    /// Settles every write that has an intent and no outcome: looks on the target before
    /// anything is written again.
    pub(super) async fn resolve_in_doubt(&mut self) -> Result<(usize, usize), RunError> {
        let pending: Vec<(OpId, Action)> = self
            .state
            .target
            .pending
            .iter()
            .map(|(op, action)| (*op, action.clone()))
            .collect();
        if pending.is_empty() {
            return Ok((0, 0));
        }
        self.watcher.note(Note::Resolving(pending.len()));
        let (mut done, mut not_applied) = (0, 0);
        let mut events = Vec::new();
        {
            let worker = self.worker();
            // The appends are looked for first, several at once (each lookup is a request of
            // its own on some targets); what they found is claimed below in order.
            let (pending_ref, worker_ref) = (&pending, &worker);
            let lookups = (0..pending.len()).map(move |index| async move {
                let mut throttles = Vec::new();
                let Action::Append {
                    folder,
                    content,
                    probe,
                    ..
                } = &pending_ref[index].1
                else {
                    return None;
                };
                let probe = crate::store::AppendProbe(probe.clone());
                let worker = worker_ref;
                let found = worker
                    .retry(Side::Target, &mut throttles, || {
                        worker
                            .target
                            .find_appended(folder, &probe, content, worker.key)
                    })
                    .await;
                Some((found, throttles))
            });
            let mut lookups: Vec<_> = futures::stream::iter(lookups)
                .buffered(worker.config.jobs.max(1))
                .collect()
                .await;
            for (index, (op, action)) in pending.iter().enumerate() {
                let (op, action) = (*op, action.clone());
                let event = match &action {
                    Action::Append { folder, .. } => {
                        let Some((found, throttles)) = lookups[index].take() else {
                            continue;
                        };
                        events.extend(throttles);
                        let found = match found {
                            Ok(found) => found,
                            // The folder is gone from the target: the write cannot be there.
                            Err(StoreError::NotFound(_)) => Vec::new(),
                            Err(error) => {
                                return Err(RunError::on(Side::Target)(error));
                            }
                        };
                        match worker.claim_first(folder, found) {
                            Some(id) => {
                                done += 1;
                                Event::WriteDone {
                                    op,
                                    id: Some(id),
                                    at: self.clock.now_ms(),
                                }
                            }
                            None => {
                                not_applied += 1;
                                Event::WriteFailed {
                                    op,
                                    class: FailureClass::NotApplied,
                                    reason: "in doubt after an interruption and not on the target: copied again".into(),
                                }
                            }
                        }
                    }
                    // A keyed write is conditional, not idempotent: read the target item.
                    Action::Create { .. } | Action::Update { .. } | Action::DeleteIf { .. } => {
                        let event = worker
                            .settle_keyed(op, &action, &mut events)
                            .await
                            .map_err(RunError::on(Side::Target))?;
                        match &event {
                            Event::WriteFailed {
                                class: FailureClass::NotApplied,
                                ..
                            } => not_applied += 1,
                            Event::WriteDone { .. } | Event::WriteStored { .. } => done += 1,
                            _ => {}
                        }
                        event
                    }
                    // Every other write is idempotent: do it again.
                    other => {
                        let mut throttles = Vec::new();
                        let outcome = worker.write(op, other, &mut throttles).await;
                        events.extend(throttles);
                        done += usize::from(matches!(outcome, Event::WriteDone { .. }));
                        outcome
                    }
                };
                events.push(event);
            }
            worker
                .retry(Side::Target, &mut events, || worker.target.flush())
                .await
                .map_err(RunError::on(Side::Target))?;
        }
        self.record(events)?;
        Ok((done, not_applied))
    }
}
