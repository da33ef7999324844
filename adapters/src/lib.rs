//! ferry's protocol adapters: each translates one protocol into the engine's plain types and
//! implements its `Store` trait.

pub mod imap;
pub mod maildir;
pub mod memory;
pub mod mutf7;
pub mod sample;

pub use ferry_engine as engine;
