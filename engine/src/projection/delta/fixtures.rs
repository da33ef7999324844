//! What the planner's unit tests share: content hashes and ids made from small numbers and names.

use crate::event::{ContentHash, NativeId};

/// The content hash standing for content number `n`.
pub(crate) fn hash(n: u8) -> ContentHash {
    ContentHash([n; 32])
}

/// The native id `n`.
pub(crate) fn id(n: &str) -> NativeId {
    NativeId(n.into())
}
