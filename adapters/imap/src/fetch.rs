//! Message bodies: one `UID FETCH` of each message's size and first piece, the rest of a large
//! message fetched piece by piece into an encrypted spool (never taken short), and the small
//! bodies a change listing carried inline, kept until the read that follows takes them.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use ferry_engine::body::{Body, PIECE_BYTES, PIECES_IN_FLIGHT, Spool};
use ferry_engine::store::{StoreError, StoreResult};

use crate::conn::{Collect, Done, Outcome, Piece, Untagged};
use crate::pool::{Slot, run};
use crate::refusal::refused;
use crate::wire;
use crate::{Inner, lock};

/// A change listing asks new messages for their first `INLINE_BYTES` too; a message no
/// larger comes whole with its listing line, and the read that follows needs no FETCH of its
/// own (`Inner::inline`).
pub(crate) const INLINE_BYTES: u32 = 16 << 10;

/// The most bytes the change listings of one exchange may carry that way: the folders whose
/// new messages (at most STATUS UIDNEXT minus the token's UIDNEXT) could exceed it are listed
/// without bodies.
pub(crate) const INLINE_BUDGET: u64 = 4 << 20;

/// The bodies of the messages with these UIDs in the folder selected on `slot`; UIDs that are
/// gone are missing from the map. One `UID FETCH` asks for each one's size and first
/// [`PIECE_BYTES`]: a message that fills its piece is larger, and the rest of it is fetched
/// piece by piece into a spool ([`fetch_rest`]), so no message is held in memory whole,
/// whatever its size. What arrives must add up to the size the server gave: a message is never
/// taken short.
pub(crate) async fn fetch_bodies(
    slot: &Slot,
    uids: BTreeSet<u32>,
    spool: Option<&Path>,
) -> StoreResult<HashMap<u32, Body>> {
    let mut bodies = HashMap::new();
    if uids.is_empty() {
        return Ok(bodies);
    }
    let set = wire::uid_set(&uids);
    let command = format!("UID FETCH {set} (UID RFC822.SIZE BODY.PEEK[]<0.{PIECE_BYTES}>)\r\n");
    let done = run(
        slot,
        vec![Piece::Text(command.into_bytes())],
        Collect::Bodies(uids),
    )
    .await?;
    if done.outcome != Outcome::Ok {
        return Err(refused(&done, &format!("UID FETCH {set}")));
    }
    let mut large = Vec::new();
    for item in done.data {
        if let Untagged::Fetch(fetch) = item
            && let (Some(uid), Some(body)) = (fetch.uid, fetch.body)
        {
            match first_piece(uid, body, fetch.origin, fetch.size)? {
                FirstPiece::Whole(body) => {
                    bodies.insert(uid, Body::from(body));
                }
                FirstPiece::Of(first, size) => large.push((uid, first, size)),
            }
        }
    }
    for (uid, first, size) in large {
        bodies.insert(uid, fetch_rest(slot, uid, first, size, spool).await?);
    }
    Ok(bodies)
}

/// What the first answer for a message holds.
#[derive(Debug, PartialEq, Eq)]
enum FirstPiece {
    /// All of it.
    Whole(Vec<u8>),
    /// The first piece of a larger message, and the message's size when the server said.
    Of(Vec<u8>, Option<u64>),
}

/// Reads the first answer (`body` from `origin`, the message `size` bytes long) for `uid`.
/// With the size known, the bytes must be the whole message or a full first piece; without
/// it, a body shorter than a piece is the whole message.
fn first_piece(
    uid: u32,
    body: Vec<u8>,
    origin: Option<u32>,
    size: Option<u32>,
) -> StoreResult<FirstPiece> {
    let (len, size) = (body.len() as u64, size.map(u64::from));
    let full_piece = body.len() == PIECE_BYTES && origin.is_none_or(|o| o == 0);
    match size {
        // Whole, whatever the server said of the range (some ignore it).
        Some(size) if len == size => Ok(FirstPiece::Whole(body)),
        Some(size) if len < size && full_piece => Ok(FirstPiece::Of(body, Some(size))),
        Some(size) => Err(StoreError::Transient(format!(
            "UID {uid}: the server sent {len} bytes of a {size}-byte message"
        ))),
        None if origin.is_some_and(|o| o != 0) => Err(StoreError::Transient(format!(
            "UID {uid}: the server sent bytes from offset {origin:?}, not from the start"
        ))),
        None if full_piece => Ok(FirstPiece::Of(body, None)),
        None => Ok(FirstPiece::Whole(body)),
    }
}

/// The whole message `uid` whose first piece, `first`, filled [`PIECE_BYTES`]: the rest is
/// fetched [`PIECES_IN_FLIGHT`] pieces at a time (`BODY.PEEK[]<origin.size>`, pipelined) and
/// written into a [`Spool`] as it comes, until the message's `size` (when the server said it)
/// or a piece shorter than asked.
async fn fetch_rest(
    slot: &Slot,
    uid: u32,
    first: Vec<u8>,
    size: Option<u64>,
    spool: Option<&Path>,
) -> StoreResult<Body> {
    let spooling = |e: std::io::Error| spool_error(uid, e);
    let mut spool = Spool::new(spool).map_err(spooling)?;
    spool.write(&first).map_err(spooling)?;
    drop(first);
    loop {
        let start = spool.len();
        if size == Some(start) {
            return Ok(spool.finish());
        }
        let origins: Vec<u64> = (0..PIECES_IN_FLIGHT as u64)
            .map(|i| start + i * PIECE_BYTES as u64)
            .filter(|origin| size.is_none_or(|size| *origin < size))
            .collect();
        let asks = origins.iter().map(|origin| {
            let command = format!("UID FETCH {uid} (UID BODY.PEEK[]<{origin}.{PIECE_BYTES}>)\r\n");
            run(
                slot,
                vec![Piece::Text(command.into_bytes())],
                Collect::Bodies(BTreeSet::from([uid])),
            )
        });
        // Each piece's FETCH may be routed to any of the window's commands: gather them all
        // and place each by its origin.
        let mut pieces: HashMap<u32, Vec<u8>> = HashMap::new();
        for done in futures::future::join_all(asks).await {
            let done = done?;
            if done.outcome != Outcome::Ok {
                return Err(refused(
                    &done,
                    &format!("UID FETCH {uid} from byte {start}"),
                ));
            }
            for item in done.data {
                if let Untagged::Fetch(fetch) = item
                    && fetch.uid == Some(uid)
                    && let (Some(origin), Some(body)) = (fetch.origin, fetch.body)
                {
                    pieces.insert(origin, body);
                }
            }
        }
        for origin in origins {
            // Expunged meanwhile, or a server that skipped a piece: an error, never a message
            // cut short.
            let short = |got: u64| {
                StoreError::Transient(format!(
                    "UID {uid}: the server sent {got} bytes of the message from offset {origin}{}",
                    size.map(|size| format!(", of {size}")).unwrap_or_default()
                ))
            };
            let Some(piece) = u32::try_from(origin).ok().and_then(|o| pieces.remove(&o)) else {
                return Err(short(0));
            };
            let len = piece.len() as u64;
            if len > PIECE_BYTES as u64 || size.is_some_and(|size| origin + len > size) {
                return Err(StoreError::Transient(format!(
                    "UID {uid}: the server sent {len} bytes from offset {origin}, more than asked"
                )));
            }
            spool.write(&piece).map_err(spooling)?;
            match size {
                Some(size) if spool.len() == size => return Ok(spool.finish()),
                Some(_) if len < PIECE_BYTES as u64 => return Err(short(len)),
                None if len < PIECE_BYTES as u64 => return Ok(spool.finish()),
                _ => {}
            }
        }
    }
}

/// What a failure to spool message `uid` means: a full disk (or quota) is the store's
/// [`StoreError::Full`], which ends the run until space is freed; anything else is transient.
fn spool_error(uid: u32, e: std::io::Error) -> StoreError {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            StoreError::Full(format!(
                "spooling UID {uid} beside the journal: {e}; free space there, then run the same command again"
            ))
        }
        _ => StoreError::Transient(format!("spooling UID {uid}: {e}")),
    }
}

impl Inner {
    /// Keeps the whole bodies a change listing carried (see [`INLINE_BYTES`]); a body cut at
    /// the limit is dropped, and its message is fetched when read.
    pub(crate) fn keep_inline(&self, folder: &str, validity: u32, fetched: &mut [Done]) {
        let mut inline = lock(&self.inline);
        for done in fetched {
            for item in &mut done.data {
                if let Untagged::Fetch(fetch) = item
                    && let (Some(uid), Some(size)) = (fetch.uid, fetch.size)
                    && let Some(body) = fetch.body.take()
                    && body.len() == size as usize
                {
                    inline.insert((folder.to_owned(), validity, uid), body);
                }
            }
        }
    }

    /// The bodies of `uids` in `folder` that a change listing carried, taken from the cache.
    pub(crate) fn take_inline(
        &self,
        folder: &str,
        validity: u32,
        uids: &mut BTreeSet<u32>,
    ) -> HashMap<u32, Vec<u8>> {
        let mut inline = lock(&self.inline);
        if inline.is_empty() {
            return HashMap::new();
        }
        let mut taken = HashMap::new();
        uids.retain(
            |&uid| match inline.remove(&(folder.to_owned(), validity, uid)) {
                Some(body) => {
                    taken.insert(uid, body);
                    false
                }
                None => true,
            },
        );
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: usize = PIECE_BYTES;

    #[test]
    fn a_first_answer_is_taken_whole_only_when_it_can_be_the_whole_message() {
        let bytes = |n: usize| vec![b'x'; n];
        // The size said: whole when the bytes add up, whatever the server did with the range.
        assert_eq!(
            first_piece(1, bytes(10), Some(0), Some(10)),
            Ok(FirstPiece::Whole(bytes(10)))
        );
        assert_eq!(
            first_piece(1, bytes(3 * PIECE), None, Some(3 * PIECE as u32)),
            Ok(FirstPiece::Whole(bytes(3 * PIECE)))
        );
        assert_eq!(
            first_piece(1, bytes(PIECE), Some(0), Some(2 * PIECE as u32)),
            Ok(FirstPiece::Of(bytes(PIECE), Some(2 * PIECE as u64)))
        );
        // A range echoed without its origin is still a first piece.
        assert_eq!(
            first_piece(1, bytes(PIECE), None, Some(2 * PIECE as u32)),
            Ok(FirstPiece::Of(bytes(PIECE), Some(2 * PIECE as u64)))
        );
        // Short of the size (a NIL or cut answer), or longer: an error, never a short message.
        assert!(first_piece(1, bytes(0), Some(0), Some(10)).is_err());
        assert!(first_piece(1, bytes(PIECE - 1), Some(0), Some(PIECE as u32 + 5)).is_err());
        assert!(first_piece(1, bytes(11), None, Some(10)).is_err());
        // No size said: a body shorter than a piece is all of it; a full piece is continued.
        assert_eq!(
            first_piece(1, bytes(10), Some(0), None),
            Ok(FirstPiece::Whole(bytes(10)))
        );
        assert_eq!(
            first_piece(1, bytes(PIECE), Some(0), None),
            Ok(FirstPiece::Of(bytes(PIECE), None))
        );
        assert!(first_piece(1, bytes(10), Some(5), None).is_err());
    }

    #[test]
    fn a_full_disk_while_spooling_ends_the_run_and_other_failures_are_retried() {
        use std::io::{Error, ErrorKind};
        for kind in [ErrorKind::StorageFull, ErrorKind::QuotaExceeded] {
            assert!(matches!(
                spool_error(9, Error::from(kind)),
                StoreError::Full(message) if message.contains("UID 9")
            ));
        }
        assert!(matches!(
            spool_error(9, Error::from(ErrorKind::PermissionDenied)),
            StoreError::Transient(_)
        ));
    }
}
