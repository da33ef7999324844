//! The connection pool: which connection a caller gets (one with its folder selected and room
//! in its pipeline, an idle one, or a new one while fewer than `?connections=` are open, fewer
//! once the server refuses more), the gate its callers share (pipelined: a read lock) or one
//! holds alone (a write lock), what the first session told of the server, and running a
//! command on a connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ferry_engine::store::{StoreError, StoreResult};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use crate::conn::{Collect, Done, Piece};
use crate::refusal::lost;
use crate::select::Selected;
use crate::session::{self, Caps, Session};
use crate::wire::{self, Naming};
use crate::{Inner, lock};

/// How deep a connection's pipeline may get before another connection is opened.
const PIPELINE_DEPTH: usize = 48;

#[derive(Debug, Default)]
pub(crate) struct Pool {
    pub(crate) slots: Vec<Arc<Slot>>,
    opening: usize,
}

/// One connection and what it has selected.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) session: Session,
    pub(crate) gate: Arc<RwLock<()>>,
    pub(crate) selected: Mutex<Option<Selected>>,
    /// Callers that chose this slot and have not finished with it.
    users: AtomicUsize,
}

impl Slot {
    pub(crate) fn selected(&self, path: &str) -> Option<Selected> {
        let selected = self.selected.lock().unwrap_or_else(|e| e.into_inner());
        selected.as_ref().filter(|s| s.path == path).cloned()
    }

    fn load(&self) -> usize {
        self.users.load(Ordering::Relaxed)
    }
}

/// A slot chosen for work; counts as a user until dropped.
pub(crate) struct Use(pub(crate) Arc<Slot>);

impl Drop for Use {
    fn drop(&mut self) {
        self.0.users.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::ops::Deref for Use {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        &self.0
    }
}

/// A connection with a folder selected, shared with other pipelined commands.
pub(crate) struct Shared {
    pub(crate) slot: Use,
    pub(crate) selected: Selected,
    _gate: OwnedRwLockReadGuard<()>,
}

/// A connection held alone.
pub(crate) struct Alone {
    pub(crate) slot: Use,
    pub(crate) _gate: OwnedRwLockWriteGuard<()>,
}

/// Which connection [`Inner::slot_spread`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    /// The least busy of those with the folder selected.
    WithFolder,
    /// The least busy of all.
    Least,
    /// None: another is opened.
    Open,
    /// None: the caller waits for the pool to change.
    Wait,
}

/// The choice of [`Inner::slot_spread`], from how many callers use the least busy connection
/// with the folder selected (`with_folder`) and the least busy of all (`least`): `for_folder`
/// when the work is for one folder, `can_open` while fewer connections than the most allowed
/// are open or opening, `eager` while fewer than the work's spread are (a busy one is then
/// not shared).
fn pick(
    with_folder: Option<usize>,
    least: Option<usize>,
    for_folder: bool,
    can_open: bool,
    eager: bool,
) -> Pick {
    let pick = match (with_folder, least) {
        (Some(load), _) if load < PIPELINE_DEPTH => Some(Pick::WithFolder),
        (_, Some(0)) => Some(Pick::Least),
        (_, Some(load)) if !for_folder && load < PIPELINE_DEPTH && !eager => Some(Pick::Least),
        _ if eager => None,
        // Work for any folder opens another when every pipeline is full.
        _ if can_open && !for_folder => None,
        (Some(_), _) => Some(Pick::WithFolder),
        (None, Some(_)) => Some(Pick::Least),
        (None, None) => None,
    };
    pick.unwrap_or(if can_open { Pick::Open } else { Pick::Wait })
}

impl Inner {
    /// What the server can do, as the first session found (nothing before one opened).
    pub(crate) fn caps(&self) -> Caps {
        lock(&self.server)
            .as_ref()
            .map(|(caps, _)| caps.clone())
            .unwrap_or_default()
    }

    /// How the server names folders, as the first session found.
    pub(crate) fn naming(&self) -> Naming {
        lock(&self.server)
            .as_ref()
            .map(|(_, naming)| naming.clone())
            .unwrap_or(Naming {
                prefix: String::new(),
                delimiter: Some('/'),
                utf8: false,
            })
    }

    /// The server's name of the folder `path`.
    pub(crate) fn server_name(&self, path: &str) -> StoreResult<Vec<u8>> {
        self.naming().to_server(path).map_err(StoreError::Permanent)
    }

    /// Picks a connection: for `folder`, one that has it selected and is not too busy, else an
    /// idle one, else a new one; for any folder, the least busy.
    pub(crate) async fn slot(&self, folder: Option<&str>) -> StoreResult<Use> {
        let spread = if folder.is_some() { usize::MAX } else { 1 };
        self.slot_spread(folder, spread).await
    }

    /// [`Inner::slot`], except that while fewer than `spread` connections are open, a busy one
    /// is not shared: another is opened. Past that, a new one is opened only when every
    /// pipeline is full.
    pub(crate) async fn slot_spread(
        &self,
        folder: Option<&str>,
        spread: usize,
    ) -> StoreResult<Use> {
        loop {
            let open = {
                let mut pool = lock(&self.pool);
                pool.slots.retain(|s| !s.session.conn.is_dead());
                let can_open =
                    pool.slots.len() + pool.opening < self.max_connections.load(Ordering::Relaxed);
                let least = pool.slots.iter().min_by_key(|s| s.load()).cloned();
                let with_folder = folder.and_then(|f| {
                    pool.slots
                        .iter()
                        .filter(|s| s.selected(f).is_some())
                        .min_by_key(|s| s.load())
                        .cloned()
                });
                // Below `spread` connections a busy one is not shared: another is opened.
                let eager = can_open && pool.slots.len() + pool.opening < spread;
                let choice = pick(
                    with_folder.as_ref().map(|s| s.load()),
                    least.as_ref().map(|s| s.load()),
                    folder.is_some(),
                    can_open,
                    eager,
                );
                match (choice, with_folder, least) {
                    (Pick::WithFolder, Some(slot), _) | (Pick::Least, _, Some(slot)) => {
                        slot.users.fetch_add(1, Ordering::Relaxed);
                        return Ok(Use(slot));
                    }
                    (Pick::Open, _, _) => {
                        pool.opening += 1;
                        true
                    }
                    _ => false,
                }
            };
            if !open {
                self.pool_changed.notified().await;
                continue;
            }
            let opened = session::open(&self.endpoint).await;
            let mut pool = lock(&self.pool);
            pool.opening -= 1;
            self.pool_changed.notify_waiters();
            let session = match opened {
                Ok(session) => session,
                Err(error @ StoreError::Throttled { .. }) if !pool.slots.is_empty() => {
                    // The server allows no more sessions: live with those open. The refusal
                    // still reaches the executor once, which backs off and journals it.
                    let live = pool.slots.len();
                    self.max_connections.fetch_min(live, Ordering::Relaxed);
                    return Err(error);
                }
                Err(error) => return Err(error),
            };
            {
                let mut server = lock(&self.server);
                if server.is_none() {
                    *server = Some((
                        session.caps.clone(),
                        Naming {
                            prefix: session.prefix.clone(),
                            delimiter: session.delimiter,
                            utf8: session.caps.utf8,
                        },
                    ));
                }
            }
            let slot = Arc::new(Slot {
                session,
                gate: Arc::new(RwLock::new(())),
                selected: Mutex::new(None),
                users: AtomicUsize::new(1),
            });
            pool.slots.push(slot.clone());
            return Ok(Use(slot));
        }
    }

    /// A connection for commands that need no selected folder and may be pipelined.
    pub(crate) async fn any(&self) -> StoreResult<(Use, OwnedRwLockReadGuard<()>)> {
        self.any_spread(1).await
    }

    /// [`Inner::any`] over up to `spread` connections.
    pub(crate) async fn any_spread(
        &self,
        spread: usize,
    ) -> StoreResult<(Use, OwnedRwLockReadGuard<()>)> {
        let slot = self.slot_spread(None, spread).await?;
        let gate = slot.gate.clone().read_owned().await;
        Ok((slot, gate))
    }

    /// A connection held alone, with no particular folder.
    pub(crate) async fn alone(&self) -> StoreResult<Alone> {
        let slot = self.slot(None).await?;
        let gate = slot.gate.clone().write_owned().await;
        Ok(Alone { slot, _gate: gate })
    }

    /// A connection with `folder` selected, shared.
    pub(crate) async fn shared(&self, folder: &str) -> StoreResult<Shared> {
        self.shared_spread(folder, usize::MAX).await
    }

    /// [`Inner::shared`] on at most `spread` connections (see [`Inner::slot_spread`]).
    pub(crate) async fn shared_spread(&self, folder: &str, spread: usize) -> StoreResult<Shared> {
        let slot = self.slot_spread(Some(folder), spread).await?;
        let gate = slot.gate.clone().read_owned().await;
        if let Some(selected) = slot.selected(folder) {
            return Ok(Shared {
                slot,
                selected,
                _gate: gate,
            });
        }
        drop(gate);
        let gate = slot.gate.clone().write_owned().await;
        let selected = match slot.selected(folder) {
            Some(selected) => selected,
            None => self.select(&slot, folder).await?,
        };
        Ok(Shared {
            slot,
            selected,
            _gate: gate.downgrade(),
        })
    }

    /// A connection with `folder` selected, held alone.
    pub(crate) async fn exclusive(&self, folder: &str) -> StoreResult<(Alone, Selected)> {
        let slot = self.slot(Some(folder)).await?;
        let gate = slot.gate.clone().write_owned().await;
        // Listings and hash lookups run here: QRESYNC, if still to enable, goes out with the
        // SELECT (in the same round trip), which then reports HIGHESTMODSEQ.
        // Selected again even when it is, for fresh figures (UIDNEXT, HIGHESTMODSEQ).
        let (enabled, selected) =
            futures::future::join(enable_pending(&slot), self.select(&slot, folder)).await;
        enabled?;
        Ok((Alone { slot, _gate: gate }, selected?))
    }

    /// `verb mailbox rest`, the mailbox quoted or as a literal.
    pub(crate) fn command(
        &self,
        caps: &Caps,
        verb: &str,
        mailbox: &[u8],
        rest: &str,
    ) -> Vec<Piece> {
        let mut line = format!("{verb} ").into_bytes();
        let mut pieces = Vec::new();
        wire::quoted_or_literal(&mut pieces, &mut line, mailbox, caps);
        line.extend_from_slice(rest.as_bytes());
        line.extend_from_slice(b"\r\n");
        pieces.push(Piece::Text(line));
        pieces
    }
}

/// Runs a command on `slot`; a lost connection is a [`lost`] error.
pub(crate) async fn run(slot: &Slot, pieces: Vec<Piece>, collect: Collect) -> StoreResult<Done> {
    slot.session
        .conn
        .run(pieces, collect)
        .await
        .map_err(|error| lost(&error.0))
}

/// `ENABLE QRESYNC` if the session has not enabled it yet ([`Session::take_enable`]). Polled
/// first beside the commands that need it, it goes out before them, in the same round trip.
pub(crate) async fn enable_pending(slot: &Slot) -> StoreResult<()> {
    match slot.session.take_enable() {
        Some(enable) => run(slot, enable, Collect::All).await.map(drop),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_for_a_folder_goes_where_it_is_selected_while_its_pipeline_has_room() {
        assert_eq!(pick(Some(3), Some(0), true, true, true), Pick::WithFolder);
        // Full: an idle connection, else a new one, else the full one all the same.
        let full = PIPELINE_DEPTH;
        assert_eq!(pick(Some(full), Some(0), true, true, true), Pick::Least);
        assert_eq!(pick(Some(full), Some(5), true, true, true), Pick::Open);
        assert_eq!(
            pick(Some(full), Some(5), true, false, false),
            Pick::WithFolder
        );
        // Selected nowhere: an idle connection, else a new one, else the least busy.
        assert_eq!(pick(None, Some(0), true, true, true), Pick::Least);
        assert_eq!(pick(None, Some(5), true, true, true), Pick::Open);
        assert_eq!(pick(None, Some(5), true, false, false), Pick::Least);
    }

    #[test]
    fn work_for_any_folder_shares_a_pipeline_unless_below_its_spread() {
        // Past its spread: the least busy pipeline with room, a new one when all are full.
        assert_eq!(pick(None, Some(5), false, true, false), Pick::Least);
        assert_eq!(
            pick(None, Some(PIPELINE_DEPTH), false, true, false),
            Pick::Open
        );
        assert_eq!(
            pick(None, Some(PIPELINE_DEPTH), false, false, false),
            Pick::Least
        );
        // Below it: a busy connection is not shared, an idle one is.
        assert_eq!(pick(None, Some(5), false, true, true), Pick::Open);
        assert_eq!(pick(None, Some(0), false, true, true), Pick::Least);
    }

    #[test]
    fn with_no_connection_one_is_opened_or_waited_for() {
        assert_eq!(pick(None, None, false, true, true), Pick::Open);
        assert_eq!(pick(None, None, true, true, true), Pick::Open);
        assert_eq!(pick(None, None, false, false, false), Pick::Wait);
        assert_eq!(pick(None, None, true, false, false), Pick::Wait);
    }
}
