//! ferry's protocol adapters. Empty until the engine issue defines the `Store` trait they
//! implement; each adapter will translate one protocol into the engine's plain types.

pub mod maildir;
pub mod memory;
pub mod sample;

pub use ferry_engine as engine;
