//! Where events go: the journal in production, an in-memory log in simulations. Appending is
//! the durability point: when `append` returns, the events survive a crash.

use std::sync::Mutex;

use ferry_journal::{ContentKey, Journal};

use crate::event::Event;

/// Why an append failed. The run stops: ferry never acts on what it could not record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The journal failed (I/O, full disk, poisoned after a failed fsync).
    #[error(transparent)]
    Journal(#[from] ferry_journal::Error),
    /// The log stopped accepting events (a simulated crash).
    #[error("the event log stopped: {0}")]
    Stopped(String),
}

/// An append-only, durable sequence of events.
pub trait EventLog: Send + Sync {
    /// Appends `events` atomically and durably (one group commit).
    fn append(&self, events: &[Event]) -> Result<(), LogError>;

    /// The key for content hashes recorded in this log.
    fn content_key(&self) -> &ContentKey;
}

impl EventLog for Journal<Event> {
    fn append(&self, events: &[Event]) -> Result<(), LogError> {
        match events {
            [] => {}
            [event] => {
                self.append(event)?;
            }
            many => {
                self.append(&Event::Batch(many.to_vec()))?;
            }
        }
        Ok(())
    }

    fn content_key(&self) -> &ContentKey {
        Journal::content_key(self)
    }
}

/// An in-memory log for deterministic simulation. It can be told to "crash": from the given
/// event count on, appends fail and keep nothing (batches are atomic, as in the journal).
#[derive(Debug)]
pub struct MemoryLog {
    events: Mutex<Vec<Event>>,
    key: ContentKey,
    crash_at: Mutex<Option<usize>>,
}

impl MemoryLog {
    /// An empty log hashing with `key`, holding `events` already.
    pub fn new(key: ContentKey, events: Vec<Event>) -> MemoryLog {
        MemoryLog {
            events: Mutex::new(events),
            key,
            crash_at: Mutex::new(None),
        }
    }

    /// Appends that would take the log past `events` events fail from now on.
    pub fn crash_at(&self, events: usize) {
        *self.crash_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(events);
    }

    /// A copy of every event appended.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl EventLog for MemoryLog {
    fn append(&self, batch: &[Event]) -> Result<(), LogError> {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let crash_at = *self.crash_at.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(limit) = crash_at
            && events.len() + batch.len() > limit
        {
            return Err(LogError::Stopped(format!(
                "simulated crash at event {limit}"
            )));
        }
        events.extend_from_slice(batch);
        Ok(())
    }

    fn content_key(&self) -> &ContentKey {
        &self.key
    }
}
