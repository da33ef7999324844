//! ferry's sync engine: the event vocabulary, the projections folded over it, the planner that
//! turns projections into a plan, and the executor that carries a plan out against two
//! [`Store`]s with write-ahead intents.
//!
//! What is deliberately missing: the engine opens no sockets, reads no mail server's format,
//! reads no environment or home directory (large messages spool into the directory the caller
//! names, or the system's temporary one: see [`body`]) and prints nothing. Projections never read the clock.

pub mod body;
pub mod checkpoint;
pub mod event;
pub mod executor;
pub mod flags;
pub mod item;
pub mod log;
pub mod pacer;
pub mod projection;
pub mod store;

pub use body::Body;
pub use event::{
    Action, ContentHash, Event, NativeId, ProvisionStep, RunOptions, Side, SpecialUse,
};
pub use executor::{
    Clock, Config, Note, Pacers, Quiet, Run, RunContext, RunError, RunSummary, State, StopSignal,
    SystemClock, Watcher,
};
pub use ferry_journal as journal;
pub use flags::{Flags, SystemFlag};
pub use item::{CollectionProps, FolderKind, FolderSpec, Keyed, Kind};
pub use log::{EventLog, LogError, MemoryLog};
pub use store::{
    AppendProbe, Capabilities, FolderInfo, ItemInfo, Listing, NewItem, Store, StoreError,
    StoreResult, Stored,
};
