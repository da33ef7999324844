//! The connection's protocol state, sans I/O: [`Core`].
//!
//! It is driven by calls and does nothing by itself: [`Core::submit`] queues a command with its
//! tag, [`Core::poll_transmit`] says what to write next, [`Core::feed`] takes bytes read from
//! the server with the time they came, [`Core::poll_completion`] hands out finished commands,
//! and [`Core::deadline`] / [`Core::handle_timeout`] tell when a silent server is given up on.
//! Time is only what the caller passes in; there is no socket, task, channel or clock here.
//!
//! What it keeps:
//! - the commands waiting for their tagged status, in order, each with the untagged data
//!   routed to it so far (see `conn` for the routing rules);
//! - the commands (or the rest of them) still to send. A synchronising literal stops sending:
//!   what leads up to it goes out, then nothing until the server's `+`; a tagged answer to that
//!   command before the `+` (a refusal) drops the rest of it unsent;
//! - when the server last said anything, and how many literal bytes went up since: a server
//!   is silent while a long literal travels (an APPEND answers once it has it all), and the
//!   bytes may sit in socket buffers long after they were handed over. So a waiting command
//!   times out after the idle timeout plus the time [`SLOWEST_UPLOAD`] bytes per second take
//!   to carry what was sent, counted from the last bytes heard, or from when something was
//!   asked of a connection on which nothing was;
//! - why the connection died, once it did: the first reason fails every waiting command and
//!   every later submission.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ferry_engine::Body;
use imap_codec::ResponseCodec;
use imap_codec::decode::Decoder as _;
use imap_codec::imap_types::response::{Response, Status, StatusKind};

use super::convert::{convert_code, convert_data};
use super::{Collect, ConnError, Done, DoneCode, MAX_RESPONSE_BYTES, Outcome, Piece, Untagged};
use crate::framer::Framer;

/// A literal in memory up to this size goes out in the same write as its command; a larger
/// one (or a spooled one) is handed to the driver to stream ([`Transmit::Literal`]).
pub(crate) const INLINE_LITERAL_BYTES: usize = 64 << 10;

/// Commands queued together go out in one write until it holds this many bytes.
pub(crate) const BATCH_BYTES: usize = 256 << 10;

/// The slowest uplink the idle timeout allows for: silence may last the idle timeout plus
/// the time these many bytes per second take to carry the literal bytes sent.
pub(crate) const SLOWEST_UPLOAD: u64 = 64 << 10;

/// What to write next.
#[derive(Debug)]
pub(crate) enum Transmit {
    /// Bytes to write and flush.
    Bytes(Vec<u8>),
    /// A literal's bytes, to be written as they are read back (the body may be spooled);
    /// report each piece written with [`Core::sent`], or a body that cannot be read with
    /// [`Core::fail`]: only ending the connection keeps the server from storing a part.
    Literal(Body),
}

/// A finished command: its completion, or why the connection ended before it came.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Completion {
    pub tag: String,
    pub result: Result<Done, ConnError>,
}

/// See the module's documentation.
#[derive(Debug)]
pub(crate) struct Core {
    framer: Framer,
    codec: ResponseCodec,
    idle_timeout: Duration,
    pipe: Pipeline,
}

/// Everything of [`Core`] but the bytes being framed, so that a response borrowed from the
/// framer can be routed into it.
#[derive(Debug, Default)]
struct Pipeline {
    /// Commands submitted and not yet completed, oldest first.
    waiting: VecDeque<Waiting>,
    /// Commands not yet sent whole, in order.
    outgoing: VecDeque<Job>,
    /// The command whose synchronising literal waits for the server's `+`.
    literal_wait: Option<String>,
    /// The `+` came for `literal_wait`.
    go_ahead: bool,
    completions: VecDeque<Completion>,
    /// Set when the connection died.
    dead: Option<String>,
    /// When the server last said anything, or something was asked of an idle connection.
    heard: Option<Instant>,
    /// Literal bytes handed to the socket since `heard`.
    written: u64,
}

#[derive(Debug)]
struct Waiting {
    tag: String,
    collect: Collect,
    data: Vec<Untagged>,
}

#[derive(Debug)]
struct Job {
    tag: String,
    pieces: VecDeque<Piece>,
    /// Some of it went out (the tag goes before the first piece only).
    started: bool,
}

impl Core {
    /// A connection whose server may stay silent for `idle_timeout` while commands wait;
    /// `framer` may hold bytes read before (past the login phase's last response).
    pub fn new(framer: Framer, idle_timeout: Duration) -> Core {
        let mut core = Core {
            framer,
            codec: ResponseCodec::default(),
            idle_timeout,
            pipe: Pipeline::default(),
        };
        // Whole responses already there are read first (no command waits for them yet).
        core.route_framed();
        core
    }

    /// Queues a command (`pieces` without the tag) whose completion and the untagged data
    /// `collect` names will come out of [`Core::poll_completion`] under `tag`. Fails at once,
    /// with the reason it died, on a dead connection.
    pub fn submit(
        &mut self,
        tag: String,
        pieces: Vec<Piece>,
        collect: Collect,
        now: Instant,
    ) -> Result<(), ConnError> {
        let pipe = &mut self.pipe;
        if let Some(reason) = &pipe.dead {
            return Err(ConnError(reason.clone()));
        }
        if pipe.waiting.is_empty() {
            // Nothing was asked until now: silence counts from here.
            pipe.heard = Some(now);
        }
        pipe.waiting.push_back(Waiting {
            tag: tag.clone(),
            collect,
            data: Vec::new(),
        });
        pipe.outgoing.push_back(Job {
            tag,
            pieces: pieces.into(),
            started: false,
        });
        Ok(())
    }

    /// What to write next, if anything may go now: queued commands in order, several in one
    /// write, up to a synchronising literal not yet let through by the server's `+`.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let pipe = &mut self.pipe;
        if pipe.dead.is_some() {
            return None;
        }
        let mut out = Vec::new();
        while let Some(job) = pipe.outgoing.front_mut() {
            while let Some(piece) = job.pieces.pop_front() {
                let first = !job.started;
                job.started = true;
                let (data, sync) = match piece {
                    Piece::Text(text) => {
                        if first {
                            out.extend_from_slice(job.tag.as_bytes());
                            out.push(b' ');
                        }
                        out.extend_from_slice(&text);
                        continue;
                    }
                    Piece::Literal { data, sync } => (data, sync),
                };
                if sync && !pipe.go_ahead {
                    // What leads up to it goes now; the literal once the server says `+`.
                    pipe.literal_wait = Some(job.tag.clone());
                    job.pieces.push_front(Piece::Literal { data, sync });
                    return (!out.is_empty()).then_some(Transmit::Bytes(out));
                }
                if sync {
                    pipe.go_ahead = false;
                    pipe.literal_wait = None;
                }
                if let Some(bytes) = data.in_memory()
                    && bytes.len() <= INLINE_LITERAL_BYTES
                {
                    out.extend_from_slice(bytes);
                    continue;
                }
                if !out.is_empty() {
                    // What comes before it goes first; its go-ahead, if it needed one, is had.
                    job.pieces.push_front(Piece::Literal { data, sync: false });
                    return Some(Transmit::Bytes(out));
                }
                return Some(Transmit::Literal(data));
            }
            pipe.outgoing.pop_front();
            if out.len() >= BATCH_BYTES {
                break;
            }
        }
        (!out.is_empty()).then_some(Transmit::Bytes(out))
    }

    /// `bytes` of a [`Transmit::Literal`] were written.
    pub fn sent(&mut self, bytes: usize) {
        self.pipe.written = self.pipe.written.saturating_add(bytes as u64);
    }

    /// Bytes read from the server at `now`: every whole response in them is routed. A response
    /// too long or unreadable, or a BYE, ends the connection (what follows it is not read).
    pub fn feed(&mut self, bytes: &[u8], now: Instant) {
        if self.pipe.dead.is_some() || bytes.is_empty() {
            return;
        }
        self.pipe.heard = Some(now);
        self.pipe.written = 0;
        self.framer.enqueue(bytes);
        self.route_framed();
    }

    /// Routes every whole response framed so far, until one ends the connection.
    fn route_framed(&mut self) {
        while self.pipe.dead.is_none() {
            let Some(frame) = self.framer.next() else {
                break;
            };
            let Ok(frame) = frame else {
                self.pipe.kill(format!(
                    "the server sent a response larger than {MAX_RESPONSE_BYTES} bytes"
                ));
                break;
            };
            match self.codec.decode(frame) {
                Ok(([], response)) => self.pipe.dispatch(response),
                _ => {
                    // A status line whose text is not ASCII (Dovecot echoes a raw UTF-8 folder
                    // name in `NO Mailbox doesn't exist: .Работа`) is read with that text
                    // made ASCII: it is words for people, and the command's outcome stands.
                    let repaired = ascii_status_line(frame);
                    match repaired.as_deref().map(|line| self.codec.decode(line)) {
                        Some(Ok(([], response))) => self.pipe.dispatch(response),
                        _ => {
                            let shown = String::from_utf8_lossy(&frame[..frame.len().min(120)])
                                .into_owned();
                            self.pipe
                                .kill(format!("unreadable response from the server: {shown:?}"));
                        }
                    }
                }
            }
        }
    }

    /// The connection broke (or the driver cannot go on): every waiting command fails with
    /// `reason`, unless it died of something else before.
    pub fn fail(&mut self, reason: String) {
        self.pipe.kill(reason);
    }

    /// The next finished command.
    pub fn poll_completion(&mut self) -> Option<Completion> {
        self.pipe.completions.pop_front()
    }

    /// When the server's silence ends the connection, if commands wait; call
    /// [`Core::handle_timeout`] then (or later).
    pub fn deadline(&self) -> Option<Instant> {
        let pipe = &self.pipe;
        if pipe.dead.is_some() || pipe.waiting.is_empty() {
            return None;
        }
        let allowance = self
            .idle_timeout
            .saturating_add(Duration::from_secs(pipe.written / SLOWEST_UPLOAD));
        pipe.heard?.checked_add(allowance)
    }

    /// Ends the connection if its deadline is past at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline().is_some_and(|deadline| now >= deadline) {
            let reason = format!(
                "the server did not answer for {} s",
                self.idle_timeout.as_secs()
            );
            self.pipe.kill(reason);
        }
    }

    /// Whether the connection ended.
    pub fn is_dead(&self) -> bool {
        self.pipe.dead.is_some()
    }
}

/// `frame` with every byte outside ASCII made `?`, when it is one status line (`TAG OK|NO|BAD
/// text` or `* OK|NO|BAD|BYE text`); `None` for any other response, whose bytes are data.
fn ascii_status_line(frame: &[u8]) -> Option<Vec<u8>> {
    let line = frame.strip_suffix(b"\r\n")?;
    if line.contains(&b'\n') || line.is_ascii() {
        return None;
    }
    let mut words = line.splitn(3, |b| *b == b' ');
    let tag = words.next()?;
    let status = words.next()?;
    let known = matches!(status, b"OK" | b"NO" | b"BAD") || (tag == b"*" && status == b"BYE");
    if !known || !tag.is_ascii() {
        return None;
    }
    Some(
        frame
            .iter()
            .map(|&b| if b.is_ascii() { b } else { b'?' })
            .collect(),
    )
}

impl Pipeline {
    /// Routes one response.
    fn dispatch(&mut self, response: Response<'_>) {
        match response {
            Response::CommandContinuationRequest(_) => {
                if self.literal_wait.is_some() {
                    self.go_ahead = true;
                }
            }
            Response::Status(Status::Tagged(tagged)) => {
                let tag = tagged.tag.as_ref().to_owned();
                if self.literal_wait.as_deref() == Some(tag.as_str()) {
                    // Answered (refused) before its literal went out: the rest stays unsent.
                    self.literal_wait = None;
                    self.go_ahead = false;
                    self.outgoing.retain(|job| job.tag != tag);
                }
                // A tag no one waits for is ignored, as it always was.
                let index = self.waiting.iter().position(|w| w.tag == tag);
                let Some(waiting) = index.and_then(|i| self.waiting.remove(i)) else {
                    return;
                };
                let outcome = match tagged.body.kind {
                    StatusKind::Ok => Outcome::Ok,
                    StatusKind::No => Outcome::No,
                    StatusKind::Bad => Outcome::Bad,
                };
                self.completions.push_back(Completion {
                    tag,
                    result: Ok(Done {
                        outcome,
                        code: tagged.body.code.map(convert_code),
                        text: tagged.body.text.as_ref().to_owned(),
                        data: waiting.data,
                    }),
                });
            }
            Response::Status(Status::Bye(bye)) => {
                let text = bye.text.as_ref().to_owned();
                self.route(Untagged::Bye(text.clone()));
                // The response code ([UNAVAILABLE], [LIMIT], ...) says whether it is throttling.
                let code = match bye.code.map(convert_code) {
                    Some(DoneCode::Named(name)) => format!("[{name}] "),
                    _ => String::new(),
                };
                self.kill(format!("the server ended the session: {code}{text}"));
            }
            Response::Status(Status::Untagged(body)) => {
                if let Some(code) = body.code {
                    self.route(Untagged::Code(convert_code(code)));
                }
            }
            Response::Data(data) => self.route(convert_data(data)),
        }
    }

    fn route(&mut self, item: Untagged) {
        if let Untagged::Fetch(fetch) = &item
            && fetch.body.is_some()
            && let Some(uid) = fetch.uid
            && let Some(w) = self
                .waiting
                .iter_mut()
                .find(|w| matches!(&w.collect, Collect::Bodies(uids) if uids.contains(&uid)))
        {
            w.data.push(item);
            return;
        }
        if let Some(w) = self
            .waiting
            .iter_mut()
            .find(|w| matches!(w.collect, Collect::All))
        {
            w.data.push(item);
        }
    }

    /// Fails every waiting command and refuses new ones; the first reason stays.
    fn kill(&mut self, reason: String) {
        if self.dead.is_some() {
            return;
        }
        for waiting in std::mem::take(&mut self.waiting) {
            self.completions.push_back(Completion {
                tag: waiting.tag,
                result: Err(ConnError(reason.clone())),
            });
        }
        self.outgoing.clear();
        self.literal_wait = None;
        self.go_ahead = false;
        self.dead = Some(reason);
    }
}
