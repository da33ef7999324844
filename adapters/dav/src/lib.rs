//! ferry's CalDAV/CardDAV store (issue 16, being built): calendars and address books and their
//! items over WebDAV.
//!
//! - `uri.rs` — `dav://` and `davs://` URIs, no password in them.
//! - `client.rs` — WebDAV methods over reqwest, conditions, statuses as `StoreError` classes.
//! - `canonical.rs` — the canonical form an item is known by (what is serialisation noise).
//! - `multistatus.rs` — the requests ferry sends and the `207 Multi-Status` answers it reads,
//!   without a socket.
//!
//! - `store.rs` — `impl Store`: collections of the home sets, keyed items (resource name,
//!   ETag, canonical content), sync-collection listings, conditional writes.
//!
//! Deliberately absent (yet): Graph calendars, contacts and To Do (the other half of issue
//! 16), renaming collections.

pub mod canonical;
mod client;
mod collections;
pub mod multistatus;
mod store;
pub mod uri;

pub use store::DavStore;
