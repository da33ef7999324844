//! The core against what real servers send. The `*.client` / `*.server` pairs in
//! `conn/transcripts/` were recorded from Dovecot 2.3.19 and Courier-IMAP 5.0 (as started by
//! `scripts/dovecot-instance` and `scripts/courier-instance`), after login: the client bytes
//! are what ferry's own commands look like, the server bytes exactly what came back. A replay
//! submits the recorded commands, feeds the server's bytes response by response (whole, or a
//! few bytes at a time) and checks both what the core sent and what each command got. The
//! required cases beside them (a QRESYNC change listing, a literal in tiny reads, OVERQUOTA)
//! use answers worded as Dovecot words them.

use ferry_engine::Body;

use super::{Rig, bodies, body_response, failed, fetches, message, with_literal};
use crate::conn::machine::Completion;
use crate::conn::{Collect, DoneCode, FetchItem, Outcome, Piece, Untagged};
use crate::framer::Framer;

const DOVECOT_QRESYNC: (&[u8], &[u8]) = (
    include_bytes!("../transcripts/dovecot-qresync.client"),
    include_bytes!("../transcripts/dovecot-qresync.server"),
);
const DOVECOT_APPEND: (&[u8], &[u8]) = (
    include_bytes!("../transcripts/dovecot-append.client"),
    include_bytes!("../transcripts/dovecot-append.server"),
);
const COURIER_SESSION: (&[u8], &[u8]) = (
    include_bytes!("../transcripts/courier-session.client"),
    include_bytes!("../transcripts/courier-session.server"),
);

/// Dovecot's INTERNALDATE of the recorded messages, 04-Dec-2026 11:32:42 +0000, in ms.
const RECORDED_DATE: i64 = 1_796_383_962_000;

/// The length a line announces for the literal after it, and whether it is synchronising.
fn announcement(line: &[u8]) -> Option<(usize, bool)> {
    let inner = line.strip_suffix(b"}\r\n")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let (digits, sync) = match digits.strip_suffix(b"+") {
        Some(digits) => (digits, false),
        None => (digits, true),
    };
    Some((std::str::from_utf8(digits).ok()?.parse().ok()?, sync))
}

/// The commands of a recorded client stream as `wire` makes them: tag, then pieces.
fn commands(client: &[u8]) -> Vec<(String, Vec<Piece>)> {
    let mut commands = Vec::new();
    let mut pieces = Vec::new();
    let mut rest = client;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').expect("whole lines") + 1;
        let (line, after) = rest.split_at(end);
        pieces.push(Piece::Text(line.to_vec()));
        rest = after;
        match announcement(line) {
            Some((len, sync)) => {
                let (literal, after) = rest.split_at(len);
                pieces.push(Piece::Literal {
                    data: Body::from(literal),
                    sync,
                });
                rest = after;
            }
            None => commands.push(std::mem::take(&mut pieces)),
        }
    }
    commands
        .into_iter()
        .map(|mut pieces| {
            let Some(Piece::Text(first)) = pieces.first_mut() else {
                panic!("a command starts with text");
            };
            let space = first.iter().position(|&b| b == b' ').expect("a tag");
            let tag = String::from_utf8(first[..space].to_vec()).expect("an ASCII tag");
            let untagged = first[space + 1..].to_vec();
            *first = untagged;
            (tag, pieces)
        })
        .collect()
}

/// The server's bytes cut into whole responses.
fn responses(server: &[u8]) -> Vec<Vec<u8>> {
    let mut framer = Framer::new(1 << 20);
    framer.enqueue(server);
    let mut out = Vec::new();
    while let Some(frame) = framer.next() {
        out.push(frame.expect("within the limit").to_vec());
    }
    assert_eq!(out.concat(), server, "nothing left over");
    out
}

/// Submits the recorded commands with `collects`, then feeds the recorded responses one by
/// one (`trickle`: a few bytes at a time), letting the core send whatever it may after each;
/// returns what it sent and the completions.
fn replay(
    (client, server): (&[u8], &[u8]),
    collects: &[Collect],
    trickle: bool,
) -> (Vec<u8>, Vec<Completion>) {
    let commands = commands(client);
    assert_eq!(commands.len(), collects.len());
    let mut rig = Rig::new();
    for ((tag, pieces), collect) in commands.into_iter().zip(collects) {
        rig.submit(&tag, pieces, collect.clone());
    }
    let mut sent = rig.sent();
    for response in responses(server) {
        if trickle {
            rig.feed_trickle(&response);
        } else {
            rig.feed(&response);
        }
        sent.extend(rig.sent());
    }
    (sent, rig.completions())
}

/// Replays whole and trickled, which must not differ, and checks the client bytes.
fn replay_both(transcript: (&[u8], &[u8]), collects: &[Collect]) -> Vec<Completion> {
    let (sent, completions) = replay(transcript, collects, false);
    assert_eq!(
        String::from_utf8_lossy(&sent),
        String::from_utf8_lossy(transcript.0)
    );
    let (sent_trickled, trickled) = replay(transcript, collects, true);
    assert_eq!(sent_trickled, sent);
    assert_eq!(trickled, completions);
    completions
}

fn flags(names: &[&str]) -> Option<Vec<String>> {
    Some(names.iter().map(|name| (*name).to_owned()).collect())
}

#[test]
fn qresync_change_listing_carries_vanished_uids_and_changed_items() {
    let mut rig = Rig::new();
    rig.command(
        "f7",
        "UID FETCH 1:45 (UID FLAGS) (CHANGEDSINCE 46 VANISHED)\r\n",
        Collect::All,
    );
    rig.feed(
        b"* VANISHED (EARLIER) 41:43\r\n\
          * 2 FETCH (UID 2 FLAGS (\\Answered $Forwarded) MODSEQ (49))\r\n\
          * 41 FETCH (UID 44 FLAGS (\\Seen) MODSEQ (47))\r\n\
          f7 OK Fetch completed (0.001 + 0.000 secs).\r\n",
    );
    let done = rig.done(&["f7"]).remove(0);
    assert_eq!(done.outcome, Outcome::Ok);
    let changed = |uid, names: &[&str], modseq| {
        Untagged::Fetch(Box::new(FetchItem {
            uid: Some(uid),
            flags: flags(names),
            modseq: Some(modseq),
            ..FetchItem::default()
        }))
    };
    assert_eq!(
        done.data,
        vec![
            Untagged::Vanished {
                ranges: vec![(41, 43)]
            },
            changed(2, &["\\Answered", "$Forwarded"], 49),
            changed(44, &["\\Seen"], 47),
        ]
    );
}

#[test]
fn a_literal_in_many_small_reads_is_read_as_in_one() {
    let body = message(300);
    let mut stream = body_response(12, 112, &body);
    stream.extend_from_slice(b"f1 OK Fetch completed (0.001 + 0.000 secs).\r\n");
    let answer = |trickle: bool| {
        let mut rig = Rig::new();
        rig.command(
            "f1",
            "UID FETCH 112 (UID RFC822.SIZE BODY.PEEK[])\r\n",
            bodies(&[112]),
        );
        if trickle {
            rig.feed_trickle(&stream);
        } else {
            rig.feed(&stream);
        }
        rig.done(&["f1"]).remove(0)
    };
    let whole = answer(false);
    assert_eq!(fetches(&whole)[0].body.as_deref(), Some(&body[..]));
    assert_eq!(fetches(&whole)[0].size, Some(300));
    assert_eq!(answer(true), whole);
}

#[test]
fn a_refusal_over_quota_completes_with_that_code() {
    let mut rig = Rig::new();
    let pieces = with_literal("APPEND INBOX {5+}\r\n", b"hello", false);
    rig.submit("f3", pieces, Collect::Nothing);
    rig.sent();
    rig.feed(
        b"f3 NO [OVERQUOTA] Quota exceeded (mailbox for user is full) (0.001 + 0.000 secs).\r\n",
    );
    let done = rig.done(&["f3"]).remove(0);
    assert_eq!(done.outcome, Outcome::No);
    assert_eq!(done.code, Some(DoneCode::OverQuota));
    // What the store turns into StoreError::Full.
    assert_eq!(done.code_name(), Some("OVERQUOTA"));
    assert!(!rig.core.is_dead());
}

#[test]
fn dovecot_recorded_change_listing_replays() {
    let collects = [
        Collect::All,
        Collect::All,
        Collect::All,
        Collect::All,
        bodies(&[47]),
    ];
    let completions = replay_both(DOVECOT_QRESYNC, &collects);
    let tags: Vec<&str> = completions.iter().map(|c| c.tag.as_str()).collect();
    assert_eq!(tags, ["f1", "f2", "f3", "f4", "f5"]);
    let done: Vec<_> = completions
        .into_iter()
        .map(|c| c.result.expect("answered"))
        .collect();
    assert!(done.iter().all(|d| d.outcome == Outcome::Ok));
    assert_eq!(
        done[0].data,
        vec![Untagged::Enabled(vec!["QRESYNC".into()])]
    );
    for code in [
        DoneCode::PermanentFlags(Vec::new()),
        DoneCode::UidValidity(1_796_383_962),
        DoneCode::UidNext(48),
        DoneCode::HighestModSeq(53),
    ] {
        assert!(
            done[1].data.contains(&Untagged::Code(code)),
            "{:?}",
            done[1]
        );
    }
    assert!(done[1].data.contains(&Untagged::Exists(44)));
    // Dovecot ran the three FETCHes side by side and completed them together: the oldest
    // command collecting everything got the listing's data, f4's included.
    let new = |uid| FetchItem {
        uid: Some(uid),
        flags: Some(Vec::new()),
        size: Some(147),
        date: Some(RECORDED_DATE),
        ..FetchItem::default()
    };
    let listed: Vec<FetchItem> = fetches(&done[2]).into_iter().cloned().collect();
    assert_eq!(
        done[2].data[0],
        Untagged::Vanished {
            ranges: vec![(41, 43)]
        }
    );
    assert_eq!(listed.len(), 4);
    assert_eq!((listed[0].uid, listed[0].modseq), (Some(2), Some(49)));
    assert_eq!(listed[0].flags, flags(&["\\Answered", "$Forwarded"]));
    assert_eq!((listed[1].uid, listed[1].modseq), (Some(44), Some(47)));
    assert_eq!(listed[1].flags, flags(&["\\Seen"]));
    assert_eq!(listed[2..], [new(46), new(47)]);
    assert!(done[3].data.is_empty());
    let body = fetches(&done[4])[0];
    assert_eq!((body.uid, body.size), (Some(47), Some(147)));
    let text = body.body.as_deref().expect("a body");
    assert!(text.starts_with(b"From: a47@example.org\r\n") && text.ends_with(b"body 47\r\n"));
    assert_eq!(text.len(), 147);
}

#[test]
fn dovecot_recorded_appends_replay() {
    let collects = [Collect::Nothing, Collect::Nothing, Collect::All];
    // Only the synchronising APPEND's first line goes before the server's `+`.
    let mut rig = Rig::new();
    for ((tag, pieces), collect) in commands(DOVECOT_APPEND.0).into_iter().zip(&collects) {
        rig.submit(&tag, pieces, collect.clone());
    }
    assert_eq!(rig.sent(), b"f6 APPEND INBOX (\\Seen) {147}\r\n");
    let completions = replay_both(DOVECOT_APPEND, &collects);
    let tags: Vec<&str> = completions.iter().map(|c| c.tag.as_str()).collect();
    assert_eq!(tags, ["f6", "f7", "f8"]);
    let appended = completions[0].result.as_ref().expect("answered");
    assert_eq!(
        appended.code,
        Some(DoneCode::AppendUid {
            validity: 1_796_383_962,
            uid: 48
        })
    );
    let refused = completions[1].result.as_ref().expect("answered");
    assert_eq!(
        (refused.outcome, refused.code_name()),
        (Outcome::No, Some("LIMIT"))
    );
    assert!(
        refused
            .text
            .starts_with("Mail size is larger than the maximum size")
    );
    // Even LOGOUT's own BYE ends the session before its OK.
    assert_eq!(
        completions[2],
        failed("f8", "the server ended the session: Logging out")
    );
}

#[test]
fn courier_recorded_session_replays() {
    let collects = [
        Collect::All,
        Collect::All,
        Collect::All,
        Collect::Nothing,
        Collect::All,
        bodies(&[1]),
        bodies(&[99]),
        Collect::All,
    ];
    let completions = replay_both(COURIER_SESSION, &collects);
    let tags: Vec<&str> = completions.iter().map(|c| c.tag.as_str()).collect();
    assert_eq!(tags, ["f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8"]);
    let done: Vec<_> = completions[..7]
        .iter()
        .map(|c| c.result.clone().expect("answered"))
        .collect();
    assert_eq!(
        done[0].data,
        vec![Untagged::Namespace {
            prefix: b"INBOX.".to_vec(),
            delimiter: Some('.')
        }]
    );
    let list = |attributes: &[&str], mailbox: &[u8]| Untagged::List {
        attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
        delimiter: Some('.'),
        mailbox: mailbox.to_vec(),
    };
    assert_eq!(
        done[1].data,
        vec![
            list(&["\\HasNoChildren"], b"INBOX.Sent"),
            list(&["\\Unmarked", "\\HasChildren"], b"INBOX"),
        ]
    );
    assert!(
        done[2]
            .data
            .contains(&Untagged::Code(DoneCode::UidValidity(796_383_981)))
    );
    assert!(done[2].data.contains(&Untagged::Exists(0)));
    assert_eq!(
        done[3].code,
        Some(DoneCode::AppendUid {
            validity: 796_383_981,
            uid: 1
        })
    );
    assert!(done[4].data.contains(&Untagged::Exists(1)));
    // The message read back is the one appended (Courier has no LITERAL+: a `+` let it go).
    let appended = commands(COURIER_SESSION.0).remove(3).1.remove(1);
    let Piece::Literal { data, sync: true } = appended else {
        panic!("a synchronising literal");
    };
    let fetched = fetches(&done[5])[0];
    assert_eq!(fetched.flags, flags(&["\\Seen", "$Forwarded"]));
    assert_eq!(
        fetched.body.as_deref(),
        Some(&data.to_vec().expect("in memory")[..])
    );
    assert!(done[6].data.is_empty(), "UID 99 does not exist");
    let bye = "the server ended the session: Courier-IMAP server shutting down";
    assert_eq!(completions[7], failed("f8", bye));
}
