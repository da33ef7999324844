//! Projections: pure folds over the journal's events. Each is `apply(&mut self, &Event)` with no
//! I/O, no clock, no randomness, and output ordered by `BTreeMap`s, so replaying the same
//! journal always gives the same projection (invariant 3).

pub mod audit;
pub mod deletions;
pub mod delta;
pub mod guard;
pub mod items;
pub mod report;
pub mod source;
pub mod target;
pub mod verify;

use crate::event::Event;

/// A pure fold over events.
pub trait Projection {
    /// Folds one event in.
    fn apply(&mut self, event: &Event);
}

/// Folds `events` into a fresh projection.
pub fn fold<'a, P: Projection + Default>(events: impl IntoIterator<Item = &'a Event>) -> P {
    let mut projection = P::default();
    for event in events {
        projection.apply(event);
    }
    projection
}
