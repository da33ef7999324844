//! ferry's Microsoft 365 store: one mailbox of a tenant through Microsoft Graph, as source and
//! as target, for mail. `graph://TENANT/USER?client_id=APP` ([`uri`]); the app's client
//! secret, or its certificate and key (PEM), from a file, a variable or a command
//! ([`ferry_secret::Secret`]).
//!
//! - `uri.rs` — the URI, the endpoints (an emulator's on loopback), secrets refused in it.
//! - `credential.rs` — a client secret, or a client assertion signed by a certificate's key.
//! - `client.rs` — tokens (client credentials, refreshed before expiry), requests with
//!   immutable ids, Graph's errors as `StoreError` classes.
//! - `folders.rs` — the folder tree as paths, roles from the well-known folders.
//! - `mime.rs` — MIME into a JSON create (not a draft, dates, flags, categories, the marker)
//!   and Graph's MIME with canonical boundaries.
//! - `store.rs` — `impl Store`: delta listings, fetch, create, flags, moves, deletions,
//!   writes in doubt found by their marker.
//! - `provision.rs` — the target user created and licensed (`--create-target-mailbox`).
//!
//! - `exchange.rs` — tenant to tenant at full fidelity: export streams known by their search
//!   key, imported through an import session; an import in doubt found by its search key.
//!
//! - `large.rs` — a message over Graph's 4 MB request: created bare, attachments added (upload
//!   sessions from 3 MB), marked as ferry's only once whole.
//!
//! - `classes.rs`, `store_keyed.rs` — between tenants, the folders that are not mail
//!   (calendars, contacts, tasks, notes, journals): keyed items by search key and change key,
//!   exported and imported whole.
//!
//! Deliberately absent (yet): calendars, contacts and tasks to and from other stores (issue
//! 16: Graph's events, contacts and To Do APIs, converted to and from iCalendar and vCard).

mod classes;
mod client;
pub mod credential;
pub mod exchange;
mod folders;
mod large;
pub mod mime;
pub mod pim;
pub mod pim_contact;
pub mod pim_event;
mod pim_events;
pub mod pim_fidelity;
mod pim_folders;
mod pim_items;
mod pim_recurrence;
pub mod pim_task;
pub mod provision;
mod store;
mod store_keyed;
pub mod uri;

pub use store::{GraphStore, marker_of};
