//! Verification against the target: per folder, how many migrated items the latest check found
//! intact, missing or altered.

use std::collections::BTreeMap;

use crate::event::{CheckState, Event, NativeId, RunId};
use crate::projection::Projection;

/// One folder's latest check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderCheck {
    /// The run that checked it last.
    pub run: RunId,
    /// Found with the expected bytes.
    pub intact: u64,
    /// Not found.
    pub missing: Vec<NativeId>,
    /// Found with other bytes.
    pub altered: Vec<NativeId>,
}

/// The verify projection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Per target folder.
    pub folders: BTreeMap<String, FolderCheck>,
    run: RunId,
}

impl Projection for Verification {
    fn apply(&mut self, event: &Event) {
        match event {
            Event::Batch(events) => events.iter().for_each(|event| self.apply(event)),
            Event::RunStarted { run, .. } => self.run = *run,
            Event::TargetChecked { folder, id, state } => {
                let entry = self.folders.entry(folder.clone()).or_default();
                if entry.run != self.run {
                    *entry = FolderCheck {
                        run: self.run,
                        ..FolderCheck::default()
                    };
                }
                match state {
                    CheckState::Intact => entry.intact += 1,
                    CheckState::Missing => entry.missing.push(id.clone()),
                    CheckState::Altered => entry.altered.push(id.clone()),
                }
            }
            _ => {}
        }
    }
}
