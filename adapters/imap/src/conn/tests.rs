//! Unit tests of the sans-I/O [`Core`]: no socket, no server, no clock but the instants a test
//! passes in. Here the [`Rig`] that drives a core as the tokio driver does, and routing and
//! sending (batches, literals, continuations); `ending` has deadlines and the ways a connection
//! dies, `servers` replays what Dovecot 2.3 and Courier 5 really sent, `answers` checks single
//! answers worded as theirs.

mod answers;
mod ending;
mod servers;

use std::time::{Duration, Instant};

use ferry_engine::Body;

use super::machine::{BATCH_BYTES, Completion, Core, INLINE_LITERAL_BYTES, Transmit};
use super::{
    Collect, ConnError, Done, DoneCode, FetchItem, MAX_RESPONSE_BYTES, Outcome, Piece, Untagged,
};
use crate::framer::Framer;

/// The idle timeout of the tests' connections.
const IDLE: Duration = Duration::from_secs(60);

/// A core, the time it is at, and helpers to drive it as the tokio driver does.
struct Rig {
    core: Core,
    start: Instant,
    now: Instant,
}

impl Rig {
    fn new() -> Rig {
        Rig::with_limit(MAX_RESPONSE_BYTES as usize)
    }

    /// A rig whose responses may be at most `max` bytes long.
    fn with_limit(max: usize) -> Rig {
        Rig::with_framer(Framer::new(max))
    }

    /// A rig whose core starts with what `framer` holds (read past the login phase).
    fn with_framer(framer: Framer) -> Rig {
        let start = Instant::now();
        Rig {
            core: Core::new(framer, IDLE),
            start,
            now: start,
        }
    }

    /// Moves the clock to `secs` after the start.
    fn at(&mut self, secs: u64) {
        self.now = self.start + Duration::from_secs(secs);
    }

    fn submit(&mut self, tag: &str, pieces: Vec<Piece>, collect: Collect) {
        self.core
            .submit(tag.to_owned(), pieces, collect, self.now)
            .expect("the connection takes commands");
    }

    fn command(&mut self, tag: &str, text: &str, collect: Collect) {
        self.submit(tag, text_piece(text), collect);
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.core.feed(bytes, self.now);
    }

    /// Feeds `bytes` in reads of 1, 2, ... 7 bytes, round and round.
    fn feed_trickle(&mut self, bytes: &[u8]) {
        let mut at = 0;
        let mut step = 1;
        while at < bytes.len() {
            let end = (at + step).min(bytes.len());
            self.feed(&bytes[at..end]);
            at = end;
            step = step % 7 + 1;
        }
    }

    /// Everything the core lets go now, literals read out as the driver writes them.
    fn sent(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(transmit) = self.core.poll_transmit() {
            match transmit {
                Transmit::Bytes(bytes) => out.extend_from_slice(&bytes),
                Transmit::Literal(body) => {
                    let bytes = body.to_vec().expect("a body in memory");
                    self.core.sent(bytes.len());
                    out.extend_from_slice(&bytes);
                }
            }
        }
        out
    }

    fn completions(&mut self) -> Vec<Completion> {
        std::iter::from_fn(|| self.core.poll_completion()).collect()
    }

    /// The completions there are, which must be answers (not failures) to `tags`, in order.
    fn done(&mut self, tags: &[&str]) -> Vec<Done> {
        let completions = self.completions();
        let got: Vec<&str> = completions.iter().map(|c| c.tag.as_str()).collect();
        assert_eq!(got, tags, "{completions:?}");
        completions
            .into_iter()
            .map(|c| c.result.expect("an answer"))
            .collect()
    }
}

fn text_piece(text: &str) -> Vec<Piece> {
    vec![Piece::Text(text.as_bytes().to_vec())]
}

/// An APPEND-like command: `head` (which announces the literal), the literal, and CRLF.
fn with_literal(head: &str, data: impl Into<Body>, sync: bool) -> Vec<Piece> {
    vec![
        Piece::Text(head.as_bytes().to_vec()),
        Piece::Literal {
            data: data.into(),
            sync,
        },
        Piece::Text(b"\r\n".to_vec()),
    ]
}

fn bodies(uids: &[u32]) -> Collect {
    Collect::Bodies(uids.iter().copied().collect())
}

fn fetches(done: &Done) -> Vec<&FetchItem> {
    done.data
        .iter()
        .filter_map(|item| match item {
            Untagged::Fetch(fetch) => Some(&**fetch),
            _ => None,
        })
        .collect()
}

/// A message of exactly `len` bytes (at least 40) with lines that look like IMAP syntax.
fn message(len: usize) -> Vec<u8> {
    let mut out = b"From: a@example.org\r\nSubject: {3}\r\n\r\n".to_vec();
    while out.len() < len {
        out.extend_from_slice(b"a line ending like a literal {12}\r\n)\r\n");
    }
    out.truncate(len);
    out
}

/// A FETCH response carrying a whole body, as Dovecot words it.
fn body_response(seq: u32, uid: u32, body: &[u8]) -> Vec<u8> {
    let len = body.len();
    let mut out =
        format!("* {seq} FETCH (UID {uid} RFC822.SIZE {len} BODY[] {{{len}}}\r\n").into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b")\r\n");
    out
}

fn failed(tag: &str, reason: &str) -> Completion {
    Completion {
        tag: tag.to_owned(),
        result: Err(ConnError(reason.to_owned())),
    }
}

#[test]
fn untagged_data_goes_to_the_oldest_command_collecting_everything() {
    let mut rig = Rig::new();
    rig.command("f1", "NOOP\r\n", Collect::Nothing);
    rig.command("f2", "UID SEARCH UNDELETED\r\n", Collect::All);
    rig.command("f3", "NOOP\r\n", Collect::All);
    rig.feed(
        b"* SEARCH 3 4 7\r\n* 5 EXISTS\r\nf1 OK NOOP completed (0.001 + 0.000 secs).\r\n\
          f2 OK Search completed (0.001 + 0.000 secs).\r\n* 6 EXISTS\r\nf3 OK NOOP completed.\r\n",
    );
    let done = rig.done(&["f1", "f2", "f3"]);
    assert!(done[0].data.is_empty());
    assert_eq!(
        done[1].data,
        vec![Untagged::Search(vec![3, 4, 7]), Untagged::Exists(5)]
    );
    assert_eq!(done[2].data, vec![Untagged::Exists(6)]);
    assert_eq!(done[1].text, "Search completed (0.001 + 0.000 secs).");
}

#[test]
fn pipelined_body_fetches_each_get_their_own_whatever_the_order() {
    let mut rig = Rig::new();
    for (tag, uid) in [("f1", 5), ("f2", 6), ("f3", 7)] {
        let command = format!("UID FETCH {uid} (UID RFC822.SIZE BODY.PEEK[])\r\n");
        rig.command(tag, &command, bodies(&[uid]));
    }
    let sent = rig.sent();
    assert!(
        sent.starts_with(b"f1 UID FETCH 5 ")
            && sent.ends_with(b"f3 UID FETCH 7 (UID RFC822.SIZE BODY.PEEK[])\r\n")
    );
    let (five, six, seven) = (message(200), message(300), message(400));
    // The server runs them side by side: data and completions in neither order.
    let mut stream = body_response(3, 7, &seven);
    stream.extend(body_response(1, 5, &five));
    stream.extend_from_slice(b"f3 OK Fetch completed (0.001 + 0.000 secs).\r\n");
    stream.extend(body_response(2, 6, &six));
    stream.extend_from_slice(b"f2 OK Fetch completed (0.002 + 0.000 secs).\r\n");
    stream.extend_from_slice(b"f1 OK Fetch completed (0.003 + 0.000 secs).\r\n");
    rig.feed(&stream);
    let done = rig.done(&["f3", "f2", "f1"]);
    assert!(
        done.iter()
            .all(|d| d.outcome == Outcome::Ok && d.data.len() == 1)
    );
    let body = |done: &Done| fetches(done)[0].body.clone();
    assert_eq!(body(&done[0]), Some(seven));
    assert_eq!(body(&done[1]), Some(six));
    assert_eq!(body(&done[2]), Some(five));
    assert_eq!(fetches(&done[2])[0].uid, Some(5));
}

#[test]
fn a_body_no_one_asked_for_goes_to_the_command_collecting_everything() {
    let mut rig = Rig::new();
    rig.command("f1", "UID FETCH 5 (BODY.PEEK[])\r\n", bodies(&[5]));
    rig.command("f2", "UID FETCH 1:* (UID BODY.PEEK[])\r\n", Collect::All);
    let mut stream = body_response(1, 9, b"nine");
    stream.extend(body_response(2, 5, b"five"));
    stream.extend_from_slice(b"f1 OK done\r\nf2 OK done\r\n");
    rig.feed(&stream);
    let done = rig.done(&["f1", "f2"]);
    assert_eq!(fetches(&done[0])[0].body.as_deref(), Some(&b"five"[..]));
    assert_eq!(fetches(&done[1])[0].body.as_deref(), Some(&b"nine"[..]));
}

#[test]
fn a_fetch_without_a_body_is_not_claimed_by_a_body_fetch() {
    let mut rig = Rig::new();
    rig.command("f1", "UID FETCH 5 (BODY.PEEK[])\r\n", bodies(&[5]));
    rig.command("f2", "NOOP\r\n", Collect::All);
    rig.feed(b"* 2 FETCH (UID 5 FLAGS (\\Seen $Forwarded))\r\nf1 OK done\r\nf2 OK done\r\n");
    let done = rig.done(&["f1", "f2"]);
    assert!(done[0].data.is_empty());
    let flags = fetches(&done[1])[0].flags.clone();
    assert_eq!(
        flags,
        Some(vec!["\\Seen".to_owned(), "$Forwarded".to_owned()])
    );
}

#[test]
fn a_command_collecting_nothing_gets_no_data() {
    let mut rig = Rig::new();
    rig.command(
        "f1",
        "UID STORE 5 +FLAGS.SILENT (\\Seen)\r\n",
        Collect::Nothing,
    );
    rig.feed(b"* 2 FETCH (UID 5 MODSEQ (12))\r\n* 3 EXPUNGE\r\nf1 OK Store completed.\r\n");
    let done = rig.done(&["f1"]);
    assert!(done[0].data.is_empty());
}

#[test]
fn a_completion_for_a_tag_no_one_waits_for_is_ignored() {
    let mut rig = Rig::new();
    rig.command("f1", "NOOP\r\n", Collect::All);
    rig.feed(b"f9 OK [APPENDUID 38505 3955] APPEND completed\r\n* 4 EXISTS\r\n");
    assert!(rig.completions().is_empty(), "routed to no one");
    assert!(!rig.core.is_dead() && rig.core.deadline().is_some());
    rig.feed(b"f1 OK NOOP completed.\r\n");
    let done = rig.done(&["f1"]);
    assert_eq!(done[0].code, None, "not the stray's code");
    assert_eq!(done[0].data, vec![Untagged::Exists(4)]);
}

#[test]
fn queued_commands_go_out_together_in_order() {
    let mut rig = Rig::new();
    rig.command("f1", "ENABLE QRESYNC\r\n", Collect::All);
    rig.command("f2", "EXAMINE INBOX\r\n", Collect::All);
    rig.command("f3", "UID FETCH 1:* (UID FLAGS)\r\n", Collect::All);
    let Some(Transmit::Bytes(bytes)) = rig.core.poll_transmit() else {
        panic!("one write");
    };
    assert_eq!(
        bytes,
        b"f1 ENABLE QRESYNC\r\nf2 EXAMINE INBOX\r\nf3 UID FETCH 1:* (UID FLAGS)\r\n"
    );
    assert!(rig.core.poll_transmit().is_none());
    rig.command("f4", "NOOP\r\n", Collect::Nothing);
    assert_eq!(rig.sent(), b"f4 NOOP\r\n");
}

#[test]
fn a_write_stops_growing_once_it_holds_a_batch() {
    let mut rig = Rig::new();
    let long = format!("SEARCH {}\r\n", "X".repeat(100 << 10));
    for tag in ["f1", "f2", "f3", "f4"] {
        rig.command(tag, &long, Collect::Nothing);
    }
    let command = long.len() + 3;
    assert!(2 * command < BATCH_BYTES && 3 * command >= BATCH_BYTES);
    let lengths: Vec<usize> = std::iter::from_fn(|| rig.core.poll_transmit())
        .map(|transmit| match transmit {
            Transmit::Bytes(bytes) => bytes.len(),
            Transmit::Literal(_) => panic!("no literal here"),
        })
        .collect();
    assert_eq!(lengths, vec![3 * command, command]);
}

#[test]
fn a_synchronising_literal_waits_for_the_continuation() {
    let mut rig = Rig::new();
    let append = with_literal("APPEND INBOX (\\Seen) {5}\r\n", b"hello", true);
    rig.submit("f1", append, Collect::Nothing);
    rig.command("f2", "NOOP\r\n", Collect::Nothing);
    assert_eq!(rig.sent(), b"f1 APPEND INBOX (\\Seen) {5}\r\n");
    assert_eq!(rig.sent(), b"", "nothing more before the `+`");
    rig.feed(b"* 3 EXISTS\r\n");
    assert_eq!(rig.sent(), b"", "untagged data is no go-ahead");
    rig.feed(b"+ OK\r\n");
    assert_eq!(rig.sent(), b"hello\r\nf2 NOOP\r\n");
    rig.feed(
        b"f1 OK [APPENDUID 1796383962 48] Append completed (0.001 + 0.001 secs).\r\n\
          f2 OK NOOP completed (0.001 + 0.000 secs).\r\n",
    );
    let done = rig.done(&["f1", "f2"]);
    assert_eq!(
        done[0].code,
        Some(DoneCode::AppendUid {
            validity: 1_796_383_962,
            uid: 48
        })
    );
}

#[test]
fn a_non_synchronising_literal_goes_out_at_once() {
    let mut rig = Rig::new();
    let append = with_literal("APPEND INBOX {5+}\r\n", b"hello", false);
    rig.submit("f1", append, Collect::Nothing);
    rig.command("f2", "NOOP\r\n", Collect::Nothing);
    let Some(Transmit::Bytes(bytes)) = rig.core.poll_transmit() else {
        panic!("one write");
    };
    assert_eq!(bytes, b"f1 APPEND INBOX {5+}\r\nhello\r\nf2 NOOP\r\n");
    assert!(rig.core.poll_transmit().is_none());
}

#[test]
fn a_refusal_before_the_continuation_drops_the_literal() {
    let mut rig = Rig::new();
    let append = with_literal("APPEND Archive {5}\r\n", b"hello", true);
    rig.submit("f1", append, Collect::Nothing);
    rig.command("f2", "NOOP\r\n", Collect::Nothing);
    assert_eq!(rig.sent(), b"f1 APPEND Archive {5}\r\n");
    rig.feed(b"f1 NO [TRYCREATE] Mailbox doesn't exist: Archive (0.001 + 0.000 secs).\r\n");
    let done = rig.done(&["f1"]);
    assert_eq!(
        (done[0].outcome, done[0].code_name()),
        (Outcome::No, Some("TRYCREATE"))
    );
    assert_eq!(rig.sent(), b"f2 NOOP\r\n", "the literal never goes");
    rig.feed(b"+ OK\r\n");
    assert_eq!(rig.sent(), b"");
}

#[test]
fn a_continuation_no_literal_waits_for_is_ignored() {
    let mut rig = Rig::new();
    rig.command("f1", "NOOP\r\n", Collect::All);
    assert_eq!(rig.sent(), b"f1 NOOP\r\n");
    rig.feed(b"+ OK\r\n");
    assert_eq!(rig.sent(), b"");
    assert!(!rig.core.is_dead());
    rig.feed(b"f1 OK NOOP completed.\r\n");
    assert!(rig.done(&["f1"])[0].data.is_empty());
}

#[test]
fn a_large_literal_is_handed_to_the_driver_after_what_precedes_it() {
    let mut rig = Rig::new();
    let large = Body::from(vec![b'x'; INLINE_LITERAL_BYTES + 1]);
    let small = Body::from(vec![b'y'; INLINE_LITERAL_BYTES]);
    let pieces = vec![
        Piece::Text(format!("APPEND INBOX {{{}}}\r\n", large.len()).into_bytes()),
        Piece::Literal {
            data: large.clone(),
            sync: true,
        },
        Piece::Text(format!(" {{{}+}}\r\n", small.len()).into_bytes()),
        Piece::Literal {
            data: small,
            sync: false,
        },
        Piece::Text(b"\r\n".to_vec()),
    ];
    rig.submit("f1", pieces, Collect::Nothing);
    let Some(Transmit::Bytes(announced)) = rig.core.poll_transmit() else {
        panic!("the announcement");
    };
    assert_eq!(announced, b"f1 APPEND INBOX {65537}\r\n");
    assert!(rig.core.poll_transmit().is_none());
    rig.feed(b"+ OK\r\n");
    let Some(Transmit::Literal(body)) = rig.core.poll_transmit() else {
        panic!("the large literal, to stream");
    };
    assert_eq!(body, large);
    let Some(Transmit::Bytes(rest)) = rig.core.poll_transmit() else {
        panic!("the rest, small literal inline");
    };
    assert_eq!(rest.len(), " {65536+}\r\n".len() + INLINE_LITERAL_BYTES + 2);
    assert!(rest.starts_with(b" {65536+}\r\nyyy") && rest.ends_with(b"y\r\n"));
    assert!(rig.core.poll_transmit().is_none());
}

#[test]
fn responses_read_before_the_start_come_first() {
    let mut framer = Framer::new(MAX_RESPONSE_BYTES as usize);
    framer.enqueue(b"* OK [ALERT] Maintenance at noon\r\n* 3 EXI");
    let mut rig = Rig::with_framer(framer);
    rig.command("f1", "NOOP\r\n", Collect::All);
    rig.feed(b"STS\r\nf1 OK NOOP completed.\r\n");
    let done = rig.done(&["f1"]);
    assert_eq!(
        done[0].data,
        vec![Untagged::Exists(3)],
        "the ALERT went to no one"
    );
    let mut framer = Framer::new(MAX_RESPONSE_BYTES as usize);
    framer.enqueue(b"* BYE [UNAVAILABLE] Server shutting down\r\n");
    let mut rig = Rig::with_framer(framer);
    let refused = rig
        .core
        .submit("f1".into(), text_piece("NOOP\r\n"), Collect::All, rig.now);
    let reason = "the server ended the session: [UNAVAILABLE] Server shutting down";
    assert_eq!(refused, Err(ConnError(reason.to_owned())));
}
