//! One IMAP connection with pipelining: any number of tagged commands in flight, each answered
//! through its own channel.
//!
//! A writer task sends commands in the order they are submitted, several per write when they
//! queue up, and waits for the server's `+` only where a literal must be synchronising (no
//! LITERAL+). A reader task cuts the byte stream into responses (`framer`), decodes them with
//! imap-codec's `ResponseCodec`, turns them into the owned
//! [`Untagged`] values below and routes them:
//! - a tagged status completes the command with that tag;
//! - an untagged FETCH that carries a message body goes to the command that asked for that UID
//!   (pipelined `UID FETCH`es are answered in any order, and servers may run them in parallel);
//! - any other untagged response goes to the oldest command that collects everything; callers
//!   only submit such commands while they hold the connection alone (see `gate` in the pool),
//!   so nothing else can claim it.
//!
//! When the connection breaks or stays silent too long while commands wait, every waiting
//! command fails with [`ConnError`] and the connection is marked dead; the pool opens another.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_engine::Body;
use ferry_engine::body::read_back;
use imap_codec::ResponseCodec;
use imap_codec::decode::Decoder as _;
use imap_codec::imap_types::core::{AString, IString, NString};
use imap_codec::imap_types::extensions::uidplus::UidElement;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{FlagFetch, FlagNameAttribute, FlagPerm};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data, Response, Status, StatusKind};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
use imap_codec::imap_types::status::StatusDataItem;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::deflate::{Deflating, Switch};
use super::framer::Framer;

/// The largest single response ferry accepts (a message body plus its FETCH line).
pub(crate) const MAX_RESPONSE_BYTES: u32 = 1 << 30;

/// A literal read back from a spool goes out in pieces of this size.
const LITERAL_PIECE_BYTES: usize = 256 << 10;

/// A byte stream ferry talks IMAP over: TCP, TLS, or TLS inside STARTTLS.
pub(crate) trait Wire: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Wire for T {}

/// Why a command got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ConnError(pub String);

/// A server response that is not a command's completion, reduced to what ferry uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Untagged {
    Capability(Vec<String>),
    List {
        attributes: Vec<String>,
        delimiter: Option<char>,
        mailbox: Vec<u8>,
    },
    Status {
        mailbox: Vec<u8>,
        items: StatusItems,
    },
    Fetch(Box<FetchItem>),
    Vanished {
        ranges: Vec<(u32, u32)>,
    },
    Exists(u32),
    Search(Vec<u32>),
    /// A response code in an untagged OK/NO (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, ...).
    Code(DoneCode),
    Bye(String),
    Namespace {
        prefix: Vec<u8>,
        delimiter: Option<char>,
    },
    /// What an ENABLE enabled, in capitals.
    Enabled(Vec<String>),
    Other,
}

/// `STATUS` (or `SELECT`) figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StatusItems {
    pub messages: Option<u32>,
    pub uid_next: Option<u32>,
    pub uid_validity: Option<u32>,
    pub highest_modseq: Option<u64>,
}

/// One FETCH response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FetchItem {
    pub uid: Option<u32>,
    pub flags: Option<Vec<String>>,
    pub size: Option<u32>,
    /// INTERNALDATE in milliseconds since the epoch.
    pub date: Option<i64>,
    pub modseq: Option<u64>,
    pub body: Option<Vec<u8>>,
    /// Where `body` starts in the message, for a partial fetch (`BODY[]<origin>`).
    pub origin: Option<u32>,
}

/// The response codes ferry acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DoneCode {
    AppendUid {
        validity: u32,
        uid: u32,
    },
    /// CAPABILITY sent with a status (after login, Dovecot does).
    Capability(Vec<String>),
    /// APPENDUID of a MULTIAPPEND: the new UIDs in the order of the messages.
    AppendUids {
        validity: u32,
        uids: Vec<u32>,
    },
    /// COPYUID of a COPY or MOVE: the destination's UIDVALIDITY, the UIDs moved and their new
    /// UIDs, in corresponding order.
    CopyUid {
        validity: u32,
        source: Vec<u32>,
        destination: Vec<u32>,
    },
    UidValidity(u32),
    UidNext(u32),
    HighestModSeq(u64),
    NoModSeq,
    PermanentFlags(Vec<String>),
    TryCreate,
    TooBig,
    OverQuota,
    /// Any other code, as its name in capitals (`LIMIT`, `UNAVAILABLE`, `ALREADYEXISTS`, ...).
    Named(String),
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    No,
    Bad,
}

/// A command's completion and the untagged responses routed to it.
#[derive(Debug, Clone)]
pub(crate) struct Done {
    pub outcome: Outcome,
    pub code: Option<DoneCode>,
    pub text: String,
    pub data: Vec<Untagged>,
}

impl Done {
    /// The response code's name, for classifying failures.
    pub fn code_name(&self) -> Option<&str> {
        match &self.code {
            Some(DoneCode::Named(name)) => Some(name),
            Some(DoneCode::TryCreate) => Some("TRYCREATE"),
            Some(DoneCode::TooBig) => Some("TOOBIG"),
            Some(DoneCode::OverQuota) => Some("OVERQUOTA"),
            _ => None,
        }
    }
}

/// Which untagged responses a command wants.
#[derive(Debug, Clone)]
pub(crate) enum Collect {
    /// Everything not claimed by a body fetch (the caller holds the connection alone).
    All,
    /// FETCH responses carrying a body for these UIDs.
    Bodies(BTreeSet<u32>),
    /// Nothing.
    Nothing,
}

/// A piece of an encoded command.
#[derive(Debug)]
pub(crate) enum Piece {
    /// Bytes to send as they are (the tag is prepended to the first).
    Text(Vec<u8>),
    /// A literal's bytes after its `{n}` announcement; `sync` when the server must say `+` first.
    /// A spooled message is written as it is read back, piece by piece.
    Literal { data: Body, sync: bool },
}

struct Job {
    tag: String,
    pieces: Vec<Piece>,
}

struct Waiting {
    tag: String,
    collect: Collect,
    data: Vec<Untagged>,
    reply: oneshot::Sender<Result<Done, ConnError>>,
}

#[derive(Default)]
struct Table {
    waiting: VecDeque<Waiting>,
    /// Set when the connection died; later submissions fail at once.
    dead: Option<String>,
    /// The command whose synchronising literal waits for the server's `+`.
    literal_wait: Option<String>,
}

enum Go {
    Continue,
    /// The command was answered (refused) before its literal was sent.
    Abort,
}

/// A live, authenticated connection.
pub(crate) struct Conn {
    jobs: mpsc::UnboundedSender<Job>,
    table: Arc<Mutex<Table>>,
    next_tag: AtomicUsize,
    /// Commands submitted and not yet answered.
    inflight: AtomicUsize,
    closed: Arc<AtomicBool>,
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
    /// Starts the reader and writer over an authenticated stream. `pending` holds bytes the
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
        let table = Arc::new(Mutex::new(Table::default()));
        let closed = Arc::new(AtomicBool::new(false));
        let (jobs, job_rx) = mpsc::unbounded_channel();
        let (go_tx, go_rx) = mpsc::unbounded_channel();
        let written = Arc::new(Written::new());
        tokio::spawn(write_loop(
            write,
            job_rx,
            go_rx,
            table.clone(),
            closed.clone(),
            written.clone(),
        ));
        tokio::spawn(read_loop(
            read,
            framer,
            go_tx,
            table.clone(),
            closed.clone(),
            (idle_timeout, written),
        ));
        Conn {
            jobs,
            table,
            next_tag: AtomicUsize::new(1),
            inflight: AtomicUsize::new(0),
            closed,
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
        self.closed.load(Ordering::Acquire)
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
            let mut table = lock(&self.table);
            if let Some(reason) = &table.dead {
                return Err(ConnError(reason.clone()));
            }
            table.waiting.push_back(Waiting {
                tag: tag.clone(),
                collect,
                data: Vec::new(),
                reply,
            });
        }
        self.inflight.fetch_add(1, Ordering::Relaxed);
        let _done = InflightGuard(&self.inflight);
        if self.jobs.send(Job { tag, pieces }).is_err() {
            return Err(ConnError(format!("{}: connection closed", self.label)));
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(ConnError(format!("{}: connection closed", self.label))),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Ends the writer, which shuts the stream down; the reader then ends too.
        self.closed.store(true, Ordering::Release);
    }
}

struct InflightGuard<'a>(&'a AtomicUsize);

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock(table: &Mutex<Table>) -> std::sync::MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fails every waiting command and refuses new ones.
fn kill(table: &Mutex<Table>, closed: &AtomicBool, reason: String) {
    closed.store(true, Ordering::Release);
    let waiting = {
        let mut table = lock(table);
        if table.dead.is_none() {
            table.dead = Some(reason.clone());
        }
        std::mem::take(&mut table.waiting)
    };
    for w in waiting {
        let _ = w.reply.send(Err(ConnError(reason.clone())));
    }
}

/// Bytes of literals the writer sent since the server last said anything. A server is silent
/// while a long literal goes up (an APPEND answers once it has it all), and the bytes may sit
/// in socket buffers long after the writer is done with them: that silence is not a dead
/// connection. Killing it then would also leave the APPEND in doubt while its bytes still
/// travel, and could land after ferry looked for it.
struct Written(std::sync::atomic::AtomicU64);

/// The slowest uplink the idle timeout allows for: silence may last the idle timeout plus
/// the time these many bytes per second take to carry what was sent.
const SLOWEST_UPLOAD: u64 = 64 << 10;

impl Written {
    fn new() -> Written {
        Written(std::sync::atomic::AtomicU64::new(0))
    }

    fn add(&self, bytes: usize) {
        self.0.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn heard(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// How long the server may stay silent.
    fn allowance(&self, idle_timeout: Duration) -> Duration {
        idle_timeout + Duration::from_secs(self.0.load(Ordering::Relaxed) / SLOWEST_UPLOAD)
    }
}

async fn write_loop(
    mut write: WriteHalf<Box<dyn Wire>>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    mut go: mpsc::UnboundedReceiver<Go>,
    table: Arc<Mutex<Table>>,
    closed: Arc<AtomicBool>,
    written: Arc<Written>,
) {
    let mut buffer: Vec<u8> = Vec::with_capacity(64 << 10);
    'jobs: while let Some(first) = jobs.recv().await {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            let mut first_piece = true;
            for piece in job.pieces {
                match piece {
                    Piece::Text(text) => {
                        if first_piece {
                            buffer.extend_from_slice(job.tag.as_bytes());
                            buffer.push(b' ');
                        }
                        buffer.extend_from_slice(&text);
                    }
                    Piece::Literal { data, sync } => {
                        if sync {
                            lock(&table).literal_wait = Some(job.tag.clone());
                            if write_all(&mut write, &mut buffer).await.is_err() {
                                break 'jobs;
                            }
                            // Wait for the server's go-ahead for this literal.
                            let go_ahead = go.recv().await;
                            lock(&table).literal_wait = None;
                            match go_ahead {
                                Some(Go::Continue) => {}
                                Some(Go::Abort) => continue 'jobs,
                                None => break 'jobs,
                            }
                        }
                        match data.in_memory() {
                            Some(bytes) if bytes.len() <= 64 << 10 => {
                                buffer.extend_from_slice(bytes);
                            }
                            _ => {
                                if write_all(&mut write, &mut buffer).await.is_err() {
                                    break 'jobs;
                                }
                                for piece in data.pieces(LITERAL_PIECE_BYTES) {
                                    let piece = match piece {
                                        Ok(piece) => piece,
                                        Err(error) => {
                                            // The literal cannot be finished: only ending the
                                            // connection keeps the server from storing a part.
                                            kill(&table, &closed, read_back(&error));
                                            break 'jobs;
                                        }
                                    };
                                    if write.write_all(&piece).await.is_err() {
                                        break 'jobs;
                                    }
                                    written.add(piece.len());
                                }
                            }
                        }
                    }
                }
                first_piece = false;
            }
            // Send several queued commands in one write, up to a limit.
            if buffer.len() < 256 << 10 {
                next = jobs.try_recv().ok();
            }
        }
        if write_all(&mut write, &mut buffer).await.is_err() {
            break;
        }
    }
    let _ = write.shutdown().await;
    kill(&table, &closed, "connection closed".into());
}

async fn write_all(
    write: &mut WriteHalf<Box<dyn Wire>>,
    buffer: &mut Vec<u8>,
) -> std::io::Result<()> {
    if !buffer.is_empty() {
        write.write_all(buffer).await?;
        buffer.clear();
    }
    write.flush().await
}

async fn read_loop(
    mut read: ReadHalf<Box<dyn Wire>>,
    mut framer: Framer,
    go: mpsc::UnboundedSender<Go>,
    table: Arc<Mutex<Table>>,
    closed: Arc<AtomicBool>,
    (idle_timeout, written): (Duration, Arc<Written>),
) {
    let codec = ResponseCodec::default();
    let mut buffer = vec![0u8; 256 << 10];
    let mut heard = tokio::time::Instant::now();
    let reason = 'read: loop {
        // Everything already buffered first.
        while let Some(frame) = framer.next() {
            let Ok(bytes) = frame else {
                break 'read format!(
                    "the server sent a response larger than {MAX_RESPONSE_BYTES} bytes"
                );
            };
            let response = match codec.decode(bytes) {
                Ok(([], response)) => response,
                _ => {
                    let shown =
                        String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
                    break 'read format!("unreadable response from the server: {shown:?}");
                }
            };
            if let Some(reason) = dispatch(response, &go, &table) {
                break 'read reason;
            }
        }
        let busy = !lock(&table).waiting.is_empty();
        let read_result = if busy {
            match tokio::time::timeout(idle_timeout, read.read(&mut buffer)).await {
                Ok(result) => result,
                // A long literal still on its way: the server answers when it has it all.
                Err(_) if heard.elapsed() < written.allowance(idle_timeout) => continue,
                Err(_) => {
                    break 'read format!(
                        "the server did not answer for {} s",
                        idle_timeout.as_secs()
                    );
                }
            }
        } else {
            // Nothing asked: silence from now on is what counts once something is.
            heard = tokio::time::Instant::now();
            tokio::select! {
                result = read.read(&mut buffer) => result,
                // Wake up now and then to notice that the connection was dropped.
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    if closed.load(Ordering::Acquire) {
                        break 'read "connection closed".into();
                    }
                    continue;
                }
            }
        };
        match read_result {
            Ok(0) => break 'read "the server closed the connection".into(),
            Ok(n) => {
                heard = tokio::time::Instant::now();
                written.heard();
                framer.enqueue(&buffer[..n]);
            }
            Err(error) => break 'read format!("connection lost: {error}"),
        }
    };
    kill(&table, &closed, reason);
}

/// Routes one response; returns a reason to stop reading when the connection must end.
fn dispatch(
    response: Response<'_>,
    go: &mpsc::UnboundedSender<Go>,
    table: &Mutex<Table>,
) -> Option<String> {
    match response {
        Response::CommandContinuationRequest(_) => {
            if lock(table).literal_wait.is_some() {
                let _ = go.send(Go::Continue);
            }
            None
        }
        Response::Status(Status::Tagged(tagged)) => {
            let tag = tagged.tag.as_ref().to_owned();
            let waiting = {
                let mut table = lock(table);
                if table.literal_wait.as_deref() == Some(tag.as_str()) {
                    // Refused before its literal went out: the writer must skip the rest.
                    table.literal_wait = None;
                    let _ = go.send(Go::Abort);
                }
                let index = table.waiting.iter().position(|w| w.tag == tag);
                index.and_then(|i| table.waiting.remove(i))
            };
            if let Some(w) = waiting {
                let outcome = match tagged.body.kind {
                    StatusKind::Ok => Outcome::Ok,
                    StatusKind::No => Outcome::No,
                    StatusKind::Bad => Outcome::Bad,
                };
                let _ = w.reply.send(Ok(Done {
                    outcome,
                    code: tagged.body.code.map(convert_code),
                    text: tagged.body.text.as_ref().to_owned(),
                    data: w.data,
                }));
            }
            None
        }
        Response::Status(Status::Bye(bye)) => {
            let text = bye.text.as_ref().to_owned();
            route(table, Untagged::Bye(text.clone()));
            // The response code ([UNAVAILABLE], [LIMIT], ...) says whether it is throttling.
            let code = match bye.code.map(convert_code) {
                Some(DoneCode::Named(name)) => format!("[{name}] "),
                _ => String::new(),
            };
            Some(format!("the server ended the session: {code}{text}"))
        }
        Response::Status(Status::Untagged(body)) => {
            if let Some(code) = body.code {
                route(table, Untagged::Code(convert_code(code)));
            }
            None
        }
        Response::Data(data) => {
            route(table, convert_data(data));
            None
        }
    }
}

fn route(table: &Mutex<Table>, item: Untagged) {
    let mut table = lock(table);
    if let Untagged::Fetch(fetch) = &item
        && fetch.body.is_some()
        && let Some(uid) = fetch.uid
        && let Some(w) = table
            .waiting
            .iter_mut()
            .find(|w| matches!(&w.collect, Collect::Bodies(uids) if uids.contains(&uid)))
    {
        w.data.push(item);
        return;
    }
    if let Some(w) = table
        .waiting
        .iter_mut()
        .find(|w| matches!(w.collect, Collect::All))
    {
        w.data.push(item);
    }
}

fn astring(value: &AString<'_>) -> Vec<u8> {
    value.as_ref().to_vec()
}

fn mailbox_bytes(mailbox: &Mailbox<'_>) -> Vec<u8> {
    match mailbox {
        Mailbox::Inbox => b"INBOX".to_vec(),
        Mailbox::Other(other) => astring(other.inner()),
    }
}

fn nstring(value: NString<'_>) -> Option<Vec<u8>> {
    value.0.map(|s: IString<'_>| s.into_inner().into_owned())
}

fn convert_code(code: Code<'_>) -> DoneCode {
    match code {
        Code::AppendUid { uid_validity, uid } => DoneCode::AppendUid {
            validity: uid_validity.get(),
            uid: uid.get(),
        },
        Code::CopyUid {
            uid_validity,
            source,
            destination,
        } => {
            let ranges = |set: &imap_codec::imap_types::extensions::uidplus::UidSet| {
                set.0
                    .as_ref()
                    .iter()
                    .map(|element| match element {
                        UidElement::Single(uid) => (uid.get(), uid.get()),
                        UidElement::Range(a, b) => (a.get(), b.get()),
                    })
                    .collect::<Vec<_>>()
            };
            match (
                expand_uids(ranges(&source)),
                expand_uids(ranges(&destination)),
            ) {
                (Some(source), Some(destination)) => DoneCode::CopyUid {
                    validity: uid_validity.get(),
                    source,
                    destination,
                },
                // Implausibly many: as if the server had named no UIDs.
                _ => DoneCode::Named("COPYUID".into()),
            }
        }
        Code::UidValidity(v) => DoneCode::UidValidity(v.get()),
        Code::UidNext(n) => DoneCode::UidNext(n.get()),
        Code::HighestModSeq(m) => DoneCode::HighestModSeq(m.get()),
        Code::NoModSeq => DoneCode::NoModSeq,
        Code::PermanentFlags(flags) => DoneCode::PermanentFlags(
            flags
                .iter()
                .map(|f| match f {
                    FlagPerm::Flag(flag) => flag.to_string(),
                    FlagPerm::Asterisk => "\\*".to_owned(),
                })
                .collect(),
        ),
        Code::TryCreate => DoneCode::TryCreate,
        Code::Capability(caps) => {
            DoneCode::Capability(caps.as_ref().iter().map(|c| c.to_string()).collect())
        }
        Code::TooBig => DoneCode::TooBig,
        Code::OverQuota => DoneCode::OverQuota,
        Code::Other(other) => {
            let raw = String::from_utf8_lossy(other.inner());
            let mut words = raw.split_whitespace();
            let name = words.next().unwrap_or_default().to_ascii_uppercase();
            if name == "APPENDUID"
                && let (Some(validity), Some(set)) = (words.next(), words.next())
                && let (Ok(validity), Some(uids)) = (validity.parse(), uid_set(set))
            {
                return DoneCode::AppendUids { validity, uids };
            }
            DoneCode::Named(name)
        }
        other => DoneCode::Named(
            format!("{other:?}")
                .split(|c: char| !c.is_ascii_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase(),
        ),
    }
}

/// Expands a UID set such as `3955:3957,3960` in its order; `None` if it is not one or is
/// implausibly large.
fn uid_set(text: &str) -> Option<Vec<u32>> {
    let ranges = text
        .split(',')
        .map(|part| match part.split_once(':') {
            Some((a, b)) => Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)),
            None => part.parse::<u32>().ok().map(|n| (n, n)),
        })
        .collect::<Option<Vec<_>>>()?;
    expand_uids(ranges)
}

/// The UIDs of `ranges` (each from one end to the other, in either order), in order; `None`
/// if they are implausibly many.
fn expand_uids(ranges: impl IntoIterator<Item = (u32, u32)>) -> Option<Vec<u32>> {
    let mut uids = Vec::new();
    for (start, end) in ranges {
        let (low, high) = (start.min(end), start.max(end));
        if uids.len() + (high - low) as usize > 100_000 {
            return None;
        }
        uids.extend(low..=high);
    }
    Some(uids)
}

fn convert_data(data: Data<'_>) -> Untagged {
    match data {
        Data::Capability(caps) => {
            Untagged::Capability(caps.as_ref().iter().map(|c| c.to_string()).collect())
        }
        Data::List {
            items,
            delimiter,
            mailbox,
        } => Untagged::List {
            attributes: items.iter().map(attribute_name).collect(),
            delimiter: delimiter.map(|d| d.inner()),
            mailbox: mailbox_bytes(&mailbox),
        },
        Data::Status { mailbox, items } => Untagged::Status {
            mailbox: mailbox_bytes(&mailbox),
            items: status_items(&items),
        },
        Data::Fetch { items, .. } => {
            let mut fetch = FetchItem::default();
            for item in items.into_iter() {
                match item {
                    MessageDataItem::Uid(uid) => fetch.uid = Some(uid.get()),
                    MessageDataItem::Flags(flags) => {
                        fetch.flags = Some(
                            flags
                                .iter()
                                .filter_map(|f| match f {
                                    FlagFetch::Flag(flag) => Some(flag.to_string()),
                                    FlagFetch::Recent => None,
                                })
                                .collect(),
                        );
                    }
                    MessageDataItem::Rfc822Size(size) => fetch.size = Some(size),
                    MessageDataItem::InternalDate(date) => {
                        fetch.date = Some(date.as_ref().timestamp_millis());
                    }
                    MessageDataItem::ModSeq(modseq) => fetch.modseq = Some(modseq.get()),
                    // A NIL body (a message expunged meanwhile, on some servers) is no body:
                    // never an empty message or an empty piece.
                    MessageDataItem::BodyExt { data, origin, .. } => {
                        fetch.body = nstring(data);
                        fetch.origin = origin;
                    }
                    MessageDataItem::Rfc822(data) => fetch.body = nstring(data),
                    _ => {}
                }
            }
            Untagged::Fetch(Box::new(fetch))
        }
        Data::Vanished { known_uids, .. } => Untagged::Vanished {
            ranges: known_uids
                .0
                .as_ref()
                .iter()
                .filter_map(|sequence| match sequence {
                    Sequence::Single(SeqOrUid::Value(v)) => Some((v.get(), v.get())),
                    Sequence::Range(SeqOrUid::Value(a), SeqOrUid::Value(b)) => {
                        Some((a.get().min(b.get()), a.get().max(b.get())))
                    }
                    _ => None,
                })
                .collect(),
        },
        Data::Exists(n) => Untagged::Exists(n),
        Data::Enabled { capabilities } => Untagged::Enabled(
            capabilities
                .iter()
                .map(|c| c.to_string().to_ascii_uppercase())
                .collect(),
        ),
        Data::Search(uids, ..) => Untagged::Search(uids.iter().map(|u| u.get()).collect()),
        Data::Namespace { personal, .. } => match personal.first() {
            Some(ns) => Untagged::Namespace {
                prefix: ns.prefix.as_ref().to_vec(),
                delimiter: ns.delimiter.as_ref().map(|d| d.inner()),
            },
            None => Untagged::Other,
        },
        _ => Untagged::Other,
    }
}

fn attribute_name(attribute: &FlagNameAttribute<'_>) -> String {
    attribute.to_string()
}

fn status_items(items: &[StatusDataItem]) -> StatusItems {
    let mut out = StatusItems::default();
    for item in items {
        match item {
            StatusDataItem::Messages(n) => out.messages = Some(*n),
            StatusDataItem::UidNext(n) => out.uid_next = Some(n.get()),
            StatusDataItem::UidValidity(v) => out.uid_validity = Some(v.get()),
            StatusDataItem::HighestModSeq(m) => out.highest_modseq = Some(*m),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::decode::Decoder;

    fn code_of(line: &[u8]) -> Option<DoneCode> {
        let (_, response) = ResponseCodec::default().decode(line).expect("decodes");
        match response {
            Response::Status(Status::Tagged(tagged)) => tagged.body.code.map(convert_code),
            other => panic!("not a tagged status: {other:?}"),
        }
    }

    #[test]
    fn copyuid_of_a_move() {
        assert_eq!(
            code_of(b"a1 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"),
            Some(DoneCode::CopyUid {
                validity: 38505,
                source: vec![304, 319, 320],
                destination: vec![3956, 3957, 3958],
            })
        );
    }

    #[test]
    fn appenduid_with_one_uid_and_with_a_set() {
        assert_eq!(
            code_of(b"a1 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
            Some(DoneCode::AppendUid {
                validity: 38505,
                uid: 3955
            })
        );
        assert_eq!(
            code_of(b"a2 OK [APPENDUID 38505 3955:3957,3960] APPEND completed\r\n"),
            Some(DoneCode::AppendUids {
                validity: 38505,
                uids: vec![3955, 3956, 3957, 3960]
            })
        );
    }
}
