//! [`Conn`]: the tokio side of a connection, around the sans-I/O [`Core`].
//!
//! It only moves bytes and wakes things up. Callers submit a command to the core and wait for
//! its completion on a oneshot channel; a writer task writes what the core says to send (and
//! streams large or spooled literals piece by piece); a reader task feeds what it reads to the
//! core with the time, and sleeps until the core's deadline, waking now and then to notice a
//! dropped [`Conn`]. After every call into the core, its completions are handed to their
//! waiters. The stream is wrapped in [`Deflating`], so COMPRESS=DEFLATE ([`Conn::compress`])
//! happens below the core, which always sees and makes plain IMAP.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferry_engine::Body;
use ferry_engine::body::read_back;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::machine::{Completion, Core, Transmit};
use super::{Collect, ConnError, Done, Outcome, Piece, Wire};
use crate::deflate::{Deflating, Switch};
use crate::framer::Framer;

/// A literal read back from a spool goes out in pieces of this size.
const LITERAL_PIECE_BYTES: usize = 256 << 10;

/// The most bytes one read takes from the stream.
const READ_BYTES: usize = 256 << 10;

/// How often the reader looks whether the connection was dropped.
const DROP_CHECK: Duration = Duration::from_millis(500);

type Reply = oneshot::Sender<Result<Done, ConnError>>;

/// What the caller side and the two tasks share.
struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: something to send, or the connection ended.
    wake_writer: Notify,
    /// Set when the connection died or was dropped.
    closed: AtomicBool,
}

struct State {
    core: Core,
    /// Who waits for which tag.
    replies: HashMap<String, Reply>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the core's completions to their waiters; once the core is dead, marks the
    /// connection closed and wakes the writer to end.
    fn settle(&self, state: &mut State) {
        while let Some(Completion { tag, result }) = state.core.poll_completion() {
            if let Some(reply) = state.replies.remove(&tag) {
                let _ = reply.send(result);
            }
        }
        if state.core.is_dead() {
            self.closed.store(true, Ordering::Release);
            self.wake_writer.notify_one();
        }
    }

    /// The connection cannot go on, for `reason` (unless it ended before).
    fn fail(&self, reason: String) {
        let mut state = self.lock();
        state.core.fail(reason);
        self.settle(&mut state);
    }
}

/// A live, authenticated connection.
pub(crate) struct Conn {
    shared: Arc<Shared>,
    next_tag: AtomicUsize,
    /// Commands submitted and not yet answered.
    inflight: AtomicUsize,
    label: String,
    /// Switches the stream to COMPRESS=DEFLATE ([`Conn::compress`]).
    deflate: Arc<Switch>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("label", &self.label)
            .field("inflight", &self.inflight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Starts the reader and writer over an authenticated stream. `framer` holds bytes the
    /// login phase read past its last response.
    pub fn start(
        stream: Box<dyn Wire>,
        framer: Framer,
        idle_timeout: Duration,
        label: String,
    ) -> Conn {
        let (stream, deflate) = Deflating::new(stream);
        let stream: Box<dyn Wire> = Box::new(stream);
        let (read, write) = tokio::io::split(stream);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                core: Core::new(framer, idle_timeout),
                replies: HashMap::new(),
            }),
            wake_writer: Notify::new(),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(write_loop(write, shared.clone()));
        tokio::spawn(read_loop(read, shared.clone()));
        Conn {
            shared,
            next_tag: AtomicUsize::new(1),
            inflight: AtomicUsize::new(0),
            label,
            deflate,
        }
    }

    /// Asks for COMPRESS=DEFLATE (RFC 4978); returns whether the server agreed, after which
    /// both directions are deflated. Only while nothing else is in flight: no command may be
    /// sent until its answer is in.
    pub async fn compress(&self) -> Result<bool, ConnError> {
        let tag = format!("f{}", self.next_tag.fetch_add(1, Ordering::Relaxed));
        self.deflate.arm(&tag);
        let done = self
            .run_tagged(
                tag,
                vec![Piece::Text(b"COMPRESS DEFLATE\r\n".to_vec())],
                Collect::Nothing,
            )
            .await;
        match done {
            Ok(done) if done.outcome == Outcome::Ok => {
                self.deflate.start_writing();
                Ok(true)
            }
            Ok(_) => {
                self.deflate.disarm();
                Ok(false)
            }
            Err(error) => {
                self.deflate.disarm();
                Err(error)
            }
        }
    }

    /// Whether the connection broke.
    pub fn is_dead(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Sends a command (`pieces` without the tag) and waits for its completion.
    pub async fn run(&self, pieces: Vec<Piece>, collect: Collect) -> Result<Done, ConnError> {
        let tag = format!("f{}", self.next_tag.fetch_add(1, Ordering::Relaxed));
        self.run_tagged(tag, pieces, collect).await
    }

    async fn run_tagged(
        &self,
        tag: String,
        pieces: Vec<Piece>,
        collect: Collect,
    ) -> Result<Done, ConnError> {
        let (reply, answer) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            let now = Instant::now().into_std();
            state.core.submit(tag.clone(), pieces, collect, now)?;
            state.replies.insert(tag, reply);
        }
        self.shared.wake_writer.notify_one();
        self.inflight.fetch_add(1, Ordering::Relaxed);
        let _done = InflightGuard(&self.inflight);
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(ConnError(format!("{}: connection closed", self.label))),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Ends the writer, which shuts the stream down; the reader then ends too.
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake_writer.notify_one();
    }
}

struct InflightGuard<'a>(&'a AtomicUsize);

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Writes what the core says to send until the connection ends, then shuts the stream down.
async fn write_loop(mut write: WriteHalf<Box<dyn Wire>>, shared: Arc<Shared>) {
    let mut unflushed = false;
    while !shared.closed.load(Ordering::Acquire) {
        let transmit = shared.lock().core.poll_transmit();
        match transmit {
            Some(Transmit::Bytes(bytes)) => {
                if write.write_all(&bytes).await.is_err() || write.flush().await.is_err() {
                    break;
                }
                unflushed = false;
            }
            Some(Transmit::Literal(body)) => {
                if !write_literal(&mut write, &shared, &body).await {
                    break;
                }
                unflushed = true;
            }
            None => {
                if unflushed {
                    if write.flush().await.is_err() {
                        break;
                    }
                    unflushed = false;
                }
                shared.wake_writer.notified().await;
            }
        }
    }
    let _ = write.shutdown().await;
    shared.fail("connection closed".into());
}

/// Writes a literal as it is read back; false when the connection cannot go on.
async fn write_literal(write: &mut WriteHalf<Box<dyn Wire>>, shared: &Shared, body: &Body) -> bool {
    for piece in body.pieces(LITERAL_PIECE_BYTES) {
        let piece = match piece {
            Ok(piece) => piece,
            Err(error) => {
                // The literal cannot be finished: only ending the connection keeps the server
                // from storing a part.
                shared.fail(read_back(&error));
                return false;
            }
        };
        if write.write_all(&piece).await.is_err() {
            return false;
        }
        let dead = {
            let mut state = shared.lock();
            state.core.sent(piece.len());
            state.core.is_dead()
        };
        if dead {
            return false;
        }
    }
    true
}

/// Feeds what the server sends to the core, and gives up on it at the core's deadline.
async fn read_loop(mut read: ReadHalf<Box<dyn Wire>>, shared: Arc<Shared>) {
    let mut buffer = vec![0u8; READ_BYTES];
    while !shared.closed.load(Ordering::Acquire) {
        let deadline = shared.lock().core.deadline();
        let check = Instant::now() + DROP_CHECK;
        let wake = match deadline {
            Some(deadline) => Instant::from_std(deadline).min(check),
            None => check,
        };
        tokio::select! {
            result = read.read(&mut buffer) => match result {
                Ok(0) => shared.fail("the server closed the connection".into()),
                Ok(n) => {
                    let mut state = shared.lock();
                    state.core.feed(&buffer[..n], Instant::now().into_std());
                    shared.settle(&mut state);
                }
                Err(error) => shared.fail(format!("connection lost: {error}")),
            },
            () = tokio::time::sleep_until(wake) => {
                let mut state = shared.lock();
                state.core.handle_timeout(Instant::now().into_std());
                shared.settle(&mut state);
            }
        }
        // A `+` may let a literal go, a refusal drop one.
        shared.wake_writer.notify_one();
    }
    shared.fail("connection closed".into());
}
