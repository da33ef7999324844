//! ferry's sync engine. Today it only names the crate boundary: the event vocabulary,
//! projections, planner and executor arrive with the engine issue. It depends on the journal
//! and on nothing that opens sockets or parses mail servers' formats.

pub use ferry_journal as journal;
