//! Native ids, `UIDVALIDITY:UID`: made, read, and checked against the folder's UIDVALIDITY
//! now, so an id from before a UIDVALIDITY change never names a message after it.

use ferry_engine::event::NativeId;
use ferry_engine::store::{StoreError, StoreResult};

/// The UIDVALIDITY and UID of an IMAP id.
pub(crate) fn parse_id(id: &NativeId) -> Option<(u32, u32)> {
    let (validity, uid) = id.0.split_once(':')?;
    Some((validity.parse().ok()?, uid.parse().ok()?))
}

/// The UID of `id` in `folder` as selected now (`validity`); not found when the id is not an
/// IMAP id or is from before a UIDVALIDITY change.
pub(crate) fn current_uid(folder: &str, id: &NativeId, validity: u32) -> StoreResult<u32> {
    match parse_id(id) {
        Some((v, uid)) if v == validity => Ok(uid),
        Some((v, _)) => Err(StoreError::NotFound(format!(
            "{folder}: UIDVALIDITY changed from {v} to {validity}; {id} is gone"
        ))),
        None => Err(StoreError::NotFound(format!(
            "{folder}: {id} is not an IMAP id"
        ))),
    }
}

/// The id of message `uid` of a folder whose UIDVALIDITY is `validity`.
pub(crate) fn make_id(validity: u32, uid: u32) -> NativeId {
    NativeId(format!("{validity}:{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_names_a_uid_of_one_uidvalidity_only() {
        let id = make_id(7, 42);
        assert_eq!(id, NativeId("7:42".to_owned()));
        assert_eq!(parse_id(&id), Some((7, 42)));
        assert_eq!(parse_id(&NativeId("42".to_owned())), None);
        assert_eq!(parse_id(&NativeId("7:x".to_owned())), None);
        assert_eq!(current_uid("INBOX", &id, 7), Ok(42));
        // After a UIDVALIDITY change, or not an IMAP id: gone.
        assert!(matches!(
            current_uid("INBOX", &id, 8),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            current_uid("INBOX", &NativeId("1234.M5P6.host".to_owned()), 7),
            Err(StoreError::NotFound(_))
        ));
    }
}
