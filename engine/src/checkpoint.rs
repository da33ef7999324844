//! Checkpoints of the planner's state, so a run over a long journal does not replay every
//! record: the state folded up to record N is stored (sealed by the journal, bound to record N)
//! and the next run replays only what follows.
//!
//! A checkpoint is a cache of a fold, never a record: it is versioned separately from the event
//! vocabulary, and any checkpoint this version cannot read is ignored — the journal is then
//! replayed from the start, which gives the same state (the simulation checks that equality).

use serde::Deserialize;

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

/// Encodes a checkpoint, into one buffer of exactly its size (see [`encode_to`] for the
/// layout).
pub fn encode(pair: Option<(String, String)>, state: &State) -> Result<Vec<u8>, String> {
    let error = |e: postcard::Error| e.to_string();
    let head = postcard::to_stdvec(&(CHECKPOINT_VERSION, &pair)).map_err(error)?;
    let (source, target) = (size_of(&state.source)?, size_of(&state.target)?);
    let varint = |len: usize| size_of(&(len as u64));
    let mut out =
        Vec::with_capacity(head.len() + varint(source)? + source + varint(target)? + target);
    encode_to(pair, state, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Encodes a checkpoint as it goes, into `out` (a journal sealing it a chunk at a time): at
/// 100,000 messages a checkpoint is 17 MB, which a run would otherwise hold at its memory peak,
/// beside the state it encodes. The layout `Stored` reads: the version, the pair, then each
/// half as a byte string (its length as a varint, which is how postcard writes a u64 too, then
/// its bytes).
pub fn encode_to(
    pair: Option<(String, String)>,
    state: &State,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let error = |e: postcard::Error| std::io::Error::other(e.to_string());
    let sizes = (|| Ok::<_, String>((size_of(&state.source)?, size_of(&state.target)?)))()
        .map_err(std::io::Error::other)?;
    // postcard writes a byte at a time: gather them before they reach `out`.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    postcard::to_io(&(CHECKPOINT_VERSION, &pair), &mut out).map_err(error)?;
    postcard::to_io(&(sizes.0 as u64), &mut out).map_err(error)?;
    postcard::to_io(&state.source, &mut out).map_err(error)?;
    postcard::to_io(&(sizes.1 as u64), &mut out).map_err(error)?;
    postcard::to_io(&state.target, &mut out).map_err(error)?;
    std::io::Write::flush(&mut out)
}

/// The size of `value` encoded.
fn size_of(value: &impl serde::Serialize) -> Result<usize, String> {
    postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
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
        // One buffer of exactly its size, laid out as the halves encoded apart and then
        // together would be.
        assert_eq!(bytes.capacity(), bytes.len());
        #[derive(serde::Serialize)]
        struct Apart<'a> {
            version: u32,
            pair: &'a Option<(String, String)>,
            source: &'a [u8],
            target: &'a [u8],
        }
        let apart = postcard::to_stdvec(&Apart {
            version: CHECKPOINT_VERSION,
            pair: &pair,
            source: &postcard::to_stdvec(&state.source).expect("encodes"),
            target: &postcard::to_stdvec(&state.target).expect("encodes"),
        })
        .expect("encodes");
        assert_eq!(bytes, apart);
        assert_eq!(decode(&bytes), Some(Checkpoint { pair, state }));
        let mut other = bytes.clone();
        other[0] = 1;
        assert_eq!(decode(&other), None);
        assert_eq!(decode(&bytes[..bytes.len() / 2]), None);
    }
}
