//! Checkpoints of the planner's state, so a run over a long journal does not replay every
//! record: the state folded up to record N is stored (sealed by the journal, bound to record N)
//! and the next run replays only what follows.
//!
//! A checkpoint is a cache of a fold, never a record: it is versioned separately from the event
//! vocabulary, and any checkpoint this version cannot read is ignored — the journal is then
//! replayed from the start, which gives the same state (the simulation checks that equality).

use serde::{Deserialize, Serialize};

use crate::executor::State;
use crate::projection::{source::SourceState, target::TargetState};

/// The layout of [`State`] in checkpoints. Bump it whenever a projection's fields change.
/// Version 3 stores the source and target halves as separate byte strings, decoded in parallel.
pub const CHECKPOINT_VERSION: u32 = 4;

#[derive(Deserialize)]
struct Stored<'a> {
    /// Checked before decoding the rest.
    _version: u32,
    pair: Option<(String, String)>,
    #[serde(borrow)]
    source: &'a [u8],
    #[serde(borrow)]
    target: &'a [u8],
}

/// What a checkpoint holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The migration's source and target URIs, from its first run.
    pub pair: Option<(String, String)>,
    /// The folded state.
    pub state: State,
}

/// Encodes a checkpoint.
pub fn encode(pair: Option<(String, String)>, state: &State) -> Result<Vec<u8>, String> {
    #[derive(Serialize)]
    struct Borrowed<'a> {
        version: u32,
        pair: Option<(String, String)>,
        source: &'a [u8],
        target: &'a [u8],
    }
    let source = postcard::to_stdvec(&state.source).map_err(|e| e.to_string())?;
    let target = postcard::to_stdvec(&state.target).map_err(|e| e.to_string())?;
    postcard::to_stdvec(&Borrowed {
        version: CHECKPOINT_VERSION,
        pair,
        source: &source,
        target: &target,
    })
    .map_err(|e| e.to_string())
}

/// Decodes a checkpoint; `None` when it is of another version or does not decode. The two
/// halves of the state decode on two threads: a no-op run at 20,000 messages spends more time
/// here than anywhere else.
pub fn decode(bytes: &[u8]) -> Option<Checkpoint> {
    // The version leads, so a checkpoint of another layout is recognised before decoding it.
    let (version, _) = postcard::take_from_bytes::<u32>(bytes).ok()?;
    if version != CHECKPOINT_VERSION {
        return None;
    }
    let stored: Stored<'_> = postcard::from_bytes(bytes).ok()?;
    let (source, target) = std::thread::scope(|scope| {
        let source = scope.spawn(|| postcard::from_bytes::<SourceState>(stored.source).ok());
        let target = postcard::from_bytes::<TargetState>(stored.target).ok();
        (source.join().ok().flatten(), target)
    });
    Some(Checkpoint {
        pair: stored.pair,
        state: State {
            source: source?,
            target: target?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, NativeId, Side};
    use crate::flags::Flags;
    use crate::projection::Projection;
    use ferry_journal::ContentHash;

    #[test]
    fn round_trip_and_other_versions_ignored() {
        let mut state = State::default();
        state.apply(&Event::ItemSeen {
            side: Side::Source,
            folder: "INBOX".into(),
            id: NativeId("1:1".into()),
            content: ContentHash([3; 32]),
            size: 10,
            flags: Flags::new(),
            date: None,
        });
        let pair = Some(("maildir:/a".to_owned(), "maildir:/b".to_owned()));
        let bytes = encode(pair.clone(), &state).expect("encode");
        assert_eq!(decode(&bytes), Some(Checkpoint { pair, state }));
        let mut other = bytes.clone();
        other[0] = 1;
        assert_eq!(decode(&other), None);
        assert_eq!(decode(&bytes[..bytes.len() / 2]), None);
    }
}
