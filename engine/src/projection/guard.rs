//! The guard against mass deletion. With `--delete-removed`, a source folder deleted (or one a
//! faulty server lists empty) makes the plan delete everything ferry copied from it: a share of
//! the mailbox gone in one run without a word. A plan that would delete more than a threshold
//! holds its deletions back; the run does everything else, shows what it would delete, and the
//! deletions go ahead only when confirmed (`--confirm-deletions`).
//!
//! The thresholds: at least [`HOLD_AT_LEAST`] deletions, and either more than
//! [`MAILBOX_SHARE_PERCENT`]% of the items ferry knows on the target, or more than
//! [`FOLDER_SHARE_PERCENT`]% of one folder's (a folder with a Trash or Junk role is exempt from
//! the per-folder rule: emptying them is routine). Ordinary deletions between two passes (a
//! user cleaning up) stay far below both; a deleted folder of any size trips the folder rule.

use std::collections::BTreeMap;

use crate::event::SpecialUse;
use crate::projection::delta::Delta;
use crate::projection::target::TargetState;

/// Fewer deletions than this are never held.
pub const HOLD_AT_LEAST: usize = 20;
/// More than this share of the mailbox (items ferry knows on the target) is held.
pub const MAILBOX_SHARE_PERCENT: usize = 10;
/// More than this share of one folder is held.
pub const FOLDER_SHARE_PERCENT: usize = 50;

/// Deletions a plan holds back until confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Per target folder: (deletions planned, items ferry knows there).
    pub folders: BTreeMap<String, (usize, usize)>,
    /// Deletions planned in all.
    pub total: usize,
    /// Items ferry knows on the whole target.
    pub mailbox: usize,
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} deletions held back ({}% of the {} messages on the target):",
            self.total,
            percent(self.total, self.mailbox),
            self.mailbox
        )?;
        for (folder, (planned, known)) in &self.folders {
            write!(
                f,
                " {folder}: {planned} of {known} ({}%);",
                percent(*planned, *known)
            )?;
        }
        Ok(())
    }
}

fn percent(part: usize, whole: usize) -> usize {
    (part * 100).checked_div(whole).unwrap_or(100)
}

/// The deletions of `plan` to hold back, if they are more than the thresholds allow.
pub fn held_deletions(plan: &Delta, target: &TargetState) -> Option<Held> {
    let total = plan.deletions.len() + plan.keyed_deletions.len();
    if total < HOLD_AT_LEAST {
        return None;
    }
    let mut folders: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let deleted = plan
        .deletions
        .iter()
        .map(|d| &d.folder)
        .chain(plan.keyed_deletions.iter().map(|d| &d.folder));
    for folder in deleted {
        let known = target
            .folders
            .get(folder)
            .map_or(0, |folder| folder.items.len());
        folders.entry(folder.clone()).or_insert((0, known)).0 += 1;
    }
    let mailbox: usize = target.folders.values().map(|f| f.items.len()).sum();
    let routine = |folder: &str| {
        target.roles.iter().any(|(role, path)| {
            path == folder && matches!(role, SpecialUse::Trash | SpecialUse::Junk)
        })
    };
    let mailbox_rule = total * 100 > mailbox * MAILBOX_SHARE_PERCENT;
    let folder_rule = folders.iter().any(|(folder, (planned, known))| {
        *planned >= HOLD_AT_LEAST
            && *planned * 100 > *known * FOLDER_SHARE_PERCENT
            && !routine(folder)
    });
    (mailbox_rule || folder_rule).then_some(Held {
        folders,
        total,
        mailbox,
    })
}
