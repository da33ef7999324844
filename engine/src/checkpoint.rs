//! Checkpoints of the planner's state, so a run over a long journal does not replay every
//! record: the state folded up to record N is stored (sealed by the journal, bound to record N)
//! and the next run replays only what follows.
//!
//! A checkpoint is a cache of a fold, never a record: it is versioned separately from the event
//! vocabulary, and any checkpoint this version cannot read is ignored — the journal is then
//! replayed from the start, which gives the same state (the simulation checks that equality).

use crate::executor::State;
use crate::projection::{source::SourceState, target::TargetState};

/// The layout of [`State`] in checkpoints. Bump it whenever a projection's fields change.
/// Version 3 stores the source and target halves as separate byte strings (see [`encode_to`]).
pub const CHECKPOINT_VERSION: u32 = 5;

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
/// beside the state it encodes. The layout [`decode_from`] reads: the version, the pair, then
/// each half as a byte string (its length as a varint, which is how postcard writes a u64 too, then
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

/// Bytes read from the reader at a time while decoding.
const READ_BYTES: usize = 64 * 1024;

/// Decodes a checkpoint as it is read from `reader` (the journal opening it a chunk at a
/// time): the state is the only copy of it in memory. `None` when it is of another version or
/// does not decode. Nothing of it may be used before the journal says the whole was authentic.
///
/// One reader, the halves one after the other: the bytes decoded are the bytes the journal
/// authenticates. (Decoding the second half on another thread from a second read of the file
/// was 0.05 s faster at 100,000 messages, but a file changed between the two reads would have
/// had its second half decoded unauthenticated.)
pub fn decode_from(reader: impl std::io::Read) -> Option<Checkpoint> {
    let mut reading = Reading::new(reader);
    let version: u32 = reading.decode()?;
    if version != CHECKPOINT_VERSION {
        return None;
    }
    let pair: Option<(String, String)> = reading.decode()?;
    // Each half as a byte string: its length, then its encoding, read to its last byte.
    let len: u64 = reading.decode()?;
    let source: SourceState = reading.decode_exactly(len)?;
    let len: u64 = reading.decode()?;
    let target: TargetState = reading.decode_exactly(len)?;
    Some(Checkpoint {
        pair,
        state: State { source, target },
    })
}

/// A postcard flavor over a reader, read [`READ_BYTES`] at a time; a string that spans two
/// reads is gathered in `scratch`. (postcard's own reader flavor asks the reader for every
/// byte and needs a buffer as large as all the strings it reads.)
struct Reading<R> {
    reader: R,
    buffer: Box<[u8]>,
    /// What of `buffer` is read and not yet taken.
    at: usize,
    end: usize,
    /// Bytes that may still be taken (the length of the half being decoded).
    limit: u64,
    scratch: Vec<u8>,
}

impl<R: std::io::Read> Reading<R> {
    fn new(reader: R) -> Reading<R> {
        Reading {
            reader,
            buffer: vec![0; READ_BYTES].into_boxed_slice(),
            at: 0,
            end: 0,
            limit: u64::MAX,
            scratch: Vec::new(),
        }
    }

    fn decode<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        let mut deserializer = postcard::Deserializer::from_flavor(&mut *self);
        let value = T::deserialize(&mut deserializer).ok();
        deserializer.finalize().ok()?;
        value
    }

    /// Decodes a value whose encoding is exactly `len` bytes long.
    fn decode_exactly<T: serde::de::DeserializeOwned>(&mut self, len: u64) -> Option<T> {
        self.limit = len;
        let value = self.decode();
        let whole = self.limit == 0;
        self.limit = u64::MAX;
        value.filter(|_| whole)
    }

    /// Reads more once everything read is taken; an error at the end.
    fn refill(&mut self) -> postcard::Result<()> {
        let end = postcard::Error::DeserializeUnexpectedEnd;
        let read = loop {
            match self.reader.read(&mut self.buffer) {
                Ok(read) => break read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(end),
            }
        };
        if read == 0 {
            return Err(end);
        }
        (self.at, self.end) = (0, read);
        Ok(())
    }

    fn take_limit(&mut self, count: usize) -> postcard::Result<()> {
        self.limit = self
            .limit
            .checked_sub(count as u64)
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        Ok(())
    }
}

impl<'de, R: std::io::Read + 'de> postcard::de_flavors::Flavor<'de> for &'de mut Reading<R> {
    type Remainder = ();
    type Source = ();

    #[inline]
    fn pop(&mut self) -> postcard::Result<u8> {
        self.take_limit(1)?;
        if self.at == self.end {
            self.refill()?;
        }
        let byte = self.buffer[self.at];
        self.at += 1;
        Ok(byte)
    }

    /// Nothing in a checkpoint is borrowed from it.
    fn try_take_n(&mut self, _count: usize) -> postcard::Result<&'de [u8]> {
        Err(postcard::Error::DeserializeUnexpectedEnd)
    }

    fn try_take_n_temp<'a>(&'a mut self, count: usize) -> postcard::Result<&'a [u8]>
    where
        'de: 'a,
    {
        self.take_limit(count)?;
        if self.end - self.at >= count {
            self.at += count;
            return Ok(&self.buffer[self.at - count..self.at]);
        }
        self.scratch.clear();
        while self.scratch.len() < count {
            if self.at == self.end {
                self.refill()?;
            }
            let take = (self.end - self.at).min(count - self.scratch.len());
            self.scratch
                .extend_from_slice(&self.buffer[self.at..self.at + take]);
            self.at += take;
        }
        Ok(&self.scratch)
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Decodes a checkpoint held in memory (see [`decode_from`]).
pub fn decode(bytes: &[u8]) -> Option<Checkpoint> {
    decode_from(bytes)
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
        let checkpoint = Some(Checkpoint {
            pair: pair.clone(),
            state: state.clone(),
        });
        assert_eq!(decode(&bytes), checkpoint);
        // Decoded as it is read, a byte at a time at worst: the same.
        assert_eq!(decode_from(&bytes[..]), checkpoint);
        let byte_by_byte = std::io::BufReader::with_capacity(1, &bytes[..]);
        assert_eq!(decode_from(byte_by_byte), checkpoint);
        let mut other = bytes.clone();
        other[0] = 1;
        assert_eq!(decode(&other), None);
        assert_eq!(decode_from(&other[..]), None);
        assert_eq!(decode(&bytes[..bytes.len() / 2]), None);
        assert_eq!(decode_from(&bytes[..bytes.len() / 2]), None);
        // A half whose length says one byte more than its encoding: refused, not decoded
        // into the next half.
        let head = postcard::to_stdvec(&(CHECKPOINT_VERSION, &pair)).expect("encodes");
        let source_len = postcard::to_stdvec(&state.source).expect("encodes").len();
        assert!(source_len < 127, "one byte of length");
        let mut longer = bytes.clone();
        longer[head.len()] += 1;
        assert_eq!(decode_from(&longer[..]), None);
    }
}
