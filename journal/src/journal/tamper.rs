//! Raw access to stored values, for tests that damage a journal on purpose (feature
//! `tamper`, never in the ferry binary).

use super::*;

impl<E> Journal<E> {
    /// Raw access to stored values, for tests that damage a journal on purpose.
    #[cfg(feature = "tamper")]
    pub fn tamper(&self) -> Tamper<'_> {
        Tamper { inner: &self.inner }
    }
}

/// Raw access to a journal's stored values. Only with the `tamper` feature, for tests.
#[cfg(feature = "tamper")]
#[derive(Debug)]
pub struct Tamper<'a> {
    inner: &'a Inner,
}

#[cfg(feature = "tamper")]
impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").finish_non_exhaustive()
    }
}

#[cfg(feature = "tamper")]
impl Tamper<'_> {
    /// The stored value of record `seq`.
    pub fn get(&self, seq: u64) -> Option<Vec<u8>> {
        self.inner
            .records
            .get(seq.to_be_bytes())
            .ok()
            .flatten()
            .map(|v| v.to_vec())
    }

    /// Overwrites (or inserts) the stored value of record `seq`.
    pub fn put(&self, seq: u64, value: &[u8]) {
        self.inner
            .records
            .insert(seq.to_be_bytes(), value)
            .expect("tamper put");
    }

    /// Removes record `seq`.
    pub fn remove(&self, seq: u64) {
        self.inner
            .records
            .remove(seq.to_be_bytes())
            .expect("tamper remove");
    }

    /// The stored header or head (`b"header"`, `b"head"`).
    pub fn get_meta(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.meta.get(key).ok().flatten().map(|v| v.to_vec())
    }

    /// Overwrites the stored header or head.
    pub fn put_meta(&self, key: &[u8], value: &[u8]) {
        self.inner.meta.insert(key, value).expect("tamper put_meta");
    }

    /// Moves everything in memory into the store's sorted tables on disk.
    pub fn flush_tables(&self) {
        self.inner.flush_to_tables().expect("tamper flush tables");
    }

    /// Flushes tampering to disk, so a reopen sees it.
    pub fn persist(&self) {
        self.inner
            .db
            .persist(PersistMode::SyncAll)
            .expect("tamper persist");
    }
}
