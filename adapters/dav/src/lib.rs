//! ferry's CalDAV/CardDAV store (issue 16, being built): calendars and address books and their
//! items over WebDAV.
//!
//! - `canonical.rs` — the canonical form an item is known by (what is serialisation noise).
//! - `multistatus.rs` — the requests ferry sends and the `207 Multi-Status` answers it reads,
//!   without a socket.
//!
//! Deliberately absent (yet): the store itself (discovery, sync-collection listings,
//! conditional writes), the canonical form items are known by, and the `dav:` URIs, which
//! `ferry-stores` still refuses with a clear message.

pub mod canonical;
pub mod multistatus;
