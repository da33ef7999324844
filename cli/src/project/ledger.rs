//! The project journal: what belongs to no single mailbox pair. Each run of the project (its
//! batch and the mailboxes it took, which is the mapping used), and each mailbox's start and
//! end with a summary of its run, so that `ferry status` over thousands of mailboxes reads
//! one journal, not thousands. The same journal crate as the pairs' (encrypted, append-only,
//! checked as it is replayed); opened with the project's key.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use ferry_engine::ProvisionStep;
use ferry_journal::{CreateOptions, Journal, KeySource};
use serde::{Deserialize, Serialize};

use super::mapping::Mailbox;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A mailbox pair as the project journal names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pair {
    pub source: String,
    pub target: String,
    pub batch: String,
}

impl Pair {
    /// Its name: `source → target`.
    pub fn name(&self) -> String {
        super::mapping::name(&self.source, &self.target)
    }
}

impl From<&Mailbox> for Pair {
    fn from(mailbox: &Mailbox) -> Pair {
        Pair {
            source: mailbox.source.clone(),
            target: mailbox.target.clone(),
            batch: mailbox.batch.clone(),
        }
    }
}

/// How a mailbox's run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Every source item is on the target.
    Done,
    /// It ran to its end, but items are not on the target (failed, refused, in conflict).
    DoneWithFailures,
    /// Stopped by a signal: the next run resumes it.
    Paused,
    /// Everything but its deletions, held back by the mass-deletion guard.
    DeletionsHeld,
    /// It could not run: the reason.
    Failed(String),
}

impl Outcome {
    pub fn word(&self) -> &str {
        match self {
            Outcome::Done => "done",
            Outcome::DoneWithFailures => "done with failures",
            Outcome::Paused => "paused",
            Outcome::DeletionsHeld => "deletions held",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// What one mailbox's run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub copied: u64,
    pub copied_bytes: u64,
    pub updated: u64,
    pub deleted: u64,
    pub failed: u64,
    pub conflicts: u64,
    /// Source items not on the target after the run (failed, refused, unreadable, conflicts).
    pub behind: u64,
}

/// One record of the project journal. New variants go at the end (a serialized promise, as
/// the pairs' events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProjectEvent {
    /// A run of the project began: its batch (all with `None`) and the mailboxes it runs.
    RunStarted {
        run: u32,
        at: Millis,
        batch: Option<String>,
        mailboxes: Vec<Pair>,
    },
    /// A mailbox's migration began.
    MailboxStarted { pair: Pair, at: Millis },
    /// A mailbox's migration ended.
    MailboxEnded {
        pair: Pair,
        at: Millis,
        outcome: Outcome,
        totals: Totals,
        seconds: u64,
    },
    /// The run ended (`paused`: by a signal).
    RunEnded { run: u32, at: Millis, paused: bool },
    /// A step of making a mailbox's target (a Microsoft 365 user, its licence): its intent
    /// (`done: false`) before the request, its outcome after, as the mailbox's own journal
    /// records it.
    Provisioning {
        pair: Pair,
        step: ProvisionStep,
        user: String,
        done: bool,
        at: Millis,
    },
    /// What a mailbox's own journal tells once its run ended, beside the totals: what is
    /// behind and why, how long the run waited on its servers, whether it read every item
    /// back. Recorded just before the mailbox's end.
    MailboxDetail { pair: Pair, detail: Detail },
}

/// Source items not on the target for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Behind {
    /// failed (tried again next run), refused (by the target, for good), unreadable (on the
    /// source), conflict (changed on the target behind ferry's back).
    pub kind: String,
    pub reason: String,
    pub items: u64,
}

/// A mailbox's last run as its own journal tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    pub behind: Vec<Behind>,
    /// Waiting because a server throttled, in ms.
    pub throttled_ms: u64,
    /// Waiting for limits a server declared, in ms.
    pub paced_ms: u64,
    /// The run read every item back on the target (`--verify-target`, `ferry cutover`).
    pub verified: bool,
}

impl Detail {
    /// From a mailbox's report (its journal folded).
    pub fn of(report: &ferry_engine::projection::report::Report) -> Detail {
        let mut behind: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for folder in report.folders.values() {
            for (kind, reasons) in [
                ("failed", &folder.failed),
                ("refused", &folder.refused),
                ("unreadable", &folder.unreadable),
                ("conflict", &folder.conflicts),
            ] {
                for (reason, items) in reasons {
                    *behind.entry((kind, reason.as_str())).or_default() += items;
                }
            }
        }
        let last = report.runs.last();
        Detail {
            behind: behind
                .into_iter()
                .map(|((kind, reason), items)| Behind {
                    kind: kind.to_string(),
                    reason: reason.to_string(),
                    items,
                })
                .collect(),
            throttled_ms: last.map_or(0, |run| run.throttled_ms),
            paced_ms: last.map_or(0, |run| run.paced_ms),
            verified: last.is_some_and(|run| run.options.verify_target),
        }
    }
}

/// Opens the project journal at `dir`, made when missing.
pub fn open(dir: &Path, key: &KeySource) -> anyhow::Result<Journal<ProjectEvent>> {
    let shown = || format!("the project journal at {}", dir.display());
    if Journal::<ProjectEvent>::exists(dir) {
        Journal::open(dir, key).with_context(shown)
    } else {
        Journal::create(dir, key, CreateOptions::default()).with_context(shown)
    }
}

/// Every event of the project journal.
pub fn events(journal: &Journal<ProjectEvent>) -> anyhow::Result<Vec<ProjectEvent>> {
    journal
        .replay(1)
        .map(|entry| entry.map(|entry| entry.event))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "replaying the project journal at {}",
                journal.path().display()
            )
        })
}

/// A mailbox as the project journal knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    /// Started and not ended.
    pub running: bool,
    /// Its last run's end.
    pub last: Option<(Millis, Outcome, Totals)>,
    /// When a run of it last completed (its last delta).
    pub last_complete: Option<Millis>,
    pub runs: u32,
    /// Copied, their bytes, updated and deleted over every run (failures, conflicts and what
    /// is behind as the last run left them are in `last`).
    pub sum: Totals,
    /// Seconds over every run.
    pub seconds: u64,
    /// Its target's provisioning steps, each with whether it was done (an intent without an
    /// outcome: a run stopped inside the step, which the next run settles by asking).
    pub provisioned: Vec<(ProvisionStep, bool)>,
    /// Its last run as its own journal told it.
    pub detail: Option<Detail>,
}

/// The project journal folded: each mailbox by pair, and the number of project runs.
pub fn fold(events: &[ProjectEvent]) -> (BTreeMap<Pair, Known>, u32) {
    let mut known: BTreeMap<Pair, Known> = BTreeMap::new();
    let mut runs = 0;
    for event in events {
        match event {
            ProjectEvent::RunStarted { run, .. } => {
                runs = runs.max(*run);
                // What an earlier run left started was cut off (the process was killed).
                for entry in known.values_mut() {
                    entry.running = false;
                }
            }
            ProjectEvent::MailboxStarted { pair, .. } => {
                let entry = known.entry(pair.clone()).or_default();
                entry.running = true;
                entry.runs += 1;
            }
            ProjectEvent::MailboxEnded {
                pair,
                at,
                outcome,
                totals,
                seconds,
            } => {
                let entry = known.entry(pair.clone()).or_default();
                entry.running = false;
                entry.sum.copied += totals.copied;
                entry.sum.copied_bytes += totals.copied_bytes;
                entry.sum.updated += totals.updated;
                entry.sum.deleted += totals.deleted;
                entry.seconds += seconds;
                if matches!(outcome, Outcome::Done | Outcome::DoneWithFailures) {
                    entry.last_complete = Some(*at);
                }
                if !matches!(outcome, Outcome::Failed(_) | Outcome::Paused) {
                    // The run went on past its target's making, which it asks of the tenant
                    // first: a step a killed run left without its outcome was done.
                    for (_, done) in &mut entry.provisioned {
                        *done = true;
                    }
                }
                entry.last = Some((*at, outcome.clone(), totals.clone()));
            }
            ProjectEvent::Provisioning {
                pair, step, done, ..
            } => {
                let entry = known.entry(pair.clone()).or_default();
                match entry.provisioned.iter_mut().find(|(s, _)| s == step) {
                    Some((_, was)) => *was |= *done,
                    None => entry.provisioned.push((step.clone(), *done)),
                }
            }
            ProjectEvent::MailboxDetail { pair, detail } => {
                known.entry(pair.clone()).or_default().detail = Some(detail.clone());
            }
            ProjectEvent::RunEnded { .. } => {
                // A mailbox started and never ended in a run that ended was cut off
                // (the process was killed): not running any more.
                for entry in known.values_mut() {
                    entry.running = false;
                }
            }
        }
    }
    (known, runs)
}
