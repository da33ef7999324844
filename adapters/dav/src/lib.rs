//! ferry's CalDAV/CardDAV store: calendars and address books and their items over WebDAV.
//!
//! - `uri.rs` — `dav://` and `davs://` URIs, no password in them.
//! - `client.rs` — WebDAV methods over reqwest, conditions, statuses as `StoreError` classes.
//! - `canonical.rs` — the canonical form an item is known by (what is serialisation noise).
//! - `multistatus.rs` — the requests ferry sends and the `207 Multi-Status` answers it reads,
//!   without a socket.
//! - `store.rs` — `impl Store`: keyed items (resource name, ETag, canonical content),
//!   sync-collection listings, conditional writes.
//! - `collections.rs` — the collections of the home sets: listed, made, their properties
//!   changed (only from what ferry set there).
//!
//! Deliberately absent: renaming collections (a collection renamed on the source is a new
//! one on the target).

pub mod canonical;
mod client;
mod collections;
pub mod multistatus;
mod store;
pub mod uri;

pub use store::DavStore;
