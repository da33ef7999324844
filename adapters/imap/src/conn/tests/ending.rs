//! How a connection ends and when: deadlines (the idle timeout, stretched while literal bytes
//! travel), a BYE, a broken stream, a response too long or unreadable. Once dead, every waiting
//! command has failed with the first reason, later submissions fail with it too, and nothing
//! more is sent or read.

use std::time::Duration;

use super::{Rig, bodies, failed, text_piece, with_literal};
use crate::conn::{Collect, ConnError, MAX_RESPONSE_BYTES};

#[test]
fn an_unanswered_command_times_out_at_its_deadline() {
    let mut rig = Rig::new();
    rig.at(10);
    rig.command("f1", "NOOP\r\n", Collect::Nothing);
    assert_eq!(rig.sent(), b"f1 NOOP\r\n");
    let deadline = rig.start + Duration::from_secs(70);
    assert_eq!(rig.core.deadline(), Some(deadline));
    rig.core.handle_timeout(deadline - Duration::from_millis(1));
    assert!(rig.completions().is_empty());
    assert!(!rig.core.is_dead());
    rig.core.handle_timeout(deadline + Duration::from_secs(5));
    let reason = "the server did not answer for 60 s";
    assert_eq!(rig.completions(), vec![failed("f1", reason)]);
    assert!(rig.core.is_dead());
    assert_eq!(rig.core.deadline(), None);
}

#[test]
fn bytes_before_the_deadline_keep_the_connection_alive() {
    let mut rig = Rig::new();
    rig.command("f1", "UID FETCH 1:* (UID FLAGS)\r\n", Collect::All);
    rig.at(50);
    // Not even a whole response: any byte heard counts.
    rig.feed(b"* 3 FETCH (UID 7 FLAGS");
    assert_eq!(
        rig.core.deadline(),
        Some(rig.start + Duration::from_secs(110))
    );
    rig.core
        .handle_timeout(rig.start + Duration::from_secs(100));
    assert!(!rig.core.is_dead());
    rig.at(100);
    rig.feed(b" (\\Seen))\r\n");
    rig.core
        .handle_timeout(rig.start + Duration::from_secs(159));
    assert!(rig.completions().is_empty());
    rig.core
        .handle_timeout(rig.start + Duration::from_secs(160));
    let completions = rig.completions();
    assert_eq!(
        completions,
        vec![failed("f1", "the server did not answer for 60 s")]
    );
}

#[test]
fn an_idle_connection_has_no_deadline_and_silence_counts_from_the_next_command() {
    let mut rig = Rig::new();
    assert_eq!(rig.core.deadline(), None);
    rig.command("f1", "NOOP\r\n", Collect::Nothing);
    rig.at(5);
    rig.feed(b"f1 OK NOOP completed.\r\n");
    rig.done(&["f1"]);
    assert_eq!(rig.core.deadline(), None);
    rig.core
        .handle_timeout(rig.start + Duration::from_secs(3600));
    assert!(!rig.core.is_dead());
    rig.at(1000);
    rig.command("f2", "NOOP\r\n", Collect::Nothing);
    assert_eq!(
        rig.core.deadline(),
        Some(rig.start + Duration::from_secs(1060))
    );
}

#[test]
fn literal_bytes_sent_extend_the_deadline_until_the_server_speaks() {
    let mut rig = Rig::new();
    let pieces = with_literal("APPEND INBOX {1048576+}\r\n", vec![b'x'; 1 << 20], false);
    rig.submit("f1", pieces, Collect::Nothing);
    let announcement = b"f1 APPEND INBOX {1048576+}\r\n".len();
    assert_eq!(rig.sent().len(), announcement + (1 << 20) + 2);
    // 1 MiB at 64 KiB/s: 16 s more than the idle timeout.
    assert_eq!(
        rig.core.deadline(),
        Some(rig.start + Duration::from_secs(76))
    );
    rig.at(30);
    rig.feed(b"* 5 EXISTS\r\n");
    assert_eq!(
        rig.core.deadline(),
        Some(rig.start + Duration::from_secs(90))
    );
}

#[test]
fn bye_unavailable_fails_every_pending_command_with_its_reason() {
    let mut rig = Rig::new();
    rig.command("f1", "UID FETCH 1:* (UID FLAGS)\r\n", Collect::All);
    rig.command("f2", "UID FETCH 7 (BODY.PEEK[])\r\n", bodies(&[7]));
    let append = with_literal("APPEND INBOX {5}\r\n", b"hello", true);
    rig.submit("f3", append, Collect::Nothing);
    rig.sent();
    rig.feed(
        b"* 1 FETCH (UID 4 FLAGS ())\r\n* BYE [UNAVAILABLE] Internal error occurred. Refer to \
          server log for more information. [2025-06-02 10:47:00]\r\nf1 OK Fetch completed.\r\n",
    );
    let reason = "the server ended the session: [UNAVAILABLE] Internal error occurred. Refer to \
                  server log for more information. [2025-06-02 10:47:00]";
    let expected = vec![
        failed("f1", reason),
        failed("f2", reason),
        failed("f3", reason),
    ];
    assert_eq!(rig.completions(), expected);
    // What the store reads as the server going away for a while (throttling), not for good.
    assert!(reason.to_ascii_lowercase().contains("[unavailable]"));
    assert!(rig.core.is_dead() && rig.core.deadline().is_none());
    let later = rig.core.submit(
        "f4".into(),
        text_piece("NOOP\r\n"),
        Collect::Nothing,
        rig.now,
    );
    assert_eq!(later, Err(ConnError(reason.to_owned())));
    rig.feed(b"+ OK\r\n");
    assert_eq!(rig.sent(), b"", "the literal never goes");
}

#[test]
fn a_broken_connection_fails_every_waiter_and_refuses_more() {
    let mut rig = Rig::new();
    rig.command("f1", "LIST \"\" \"*\"\r\n", Collect::All);
    rig.command("f2", "NOOP\r\n", Collect::Nothing);
    rig.feed(b"* LIST (\\HasNoChildren) \"/\" INBOX\r\n");
    rig.core.fail("the server closed the connection".into());
    rig.core.fail("connection closed".into());
    let reason = "the server closed the connection";
    assert_eq!(
        rig.completions(),
        vec![failed("f1", reason), failed("f2", reason)]
    );
    let later = rig.core.submit(
        "f3".into(),
        text_piece("NOOP\r\n"),
        Collect::Nothing,
        rig.now,
    );
    assert_eq!(
        later,
        Err(ConnError(reason.to_owned())),
        "the first reason stays"
    );
    assert_eq!(rig.sent(), b"", "nothing goes out on a dead connection");
    rig.feed(b"f1 OK List completed.\r\n");
    assert!(rig.completions().is_empty());
}

#[test]
fn an_overlong_response_ends_the_connection() {
    let mut rig = Rig::with_limit(100);
    rig.command("f1", "UID FETCH 7 (BODY.PEEK[])\r\n", bodies(&[7]));
    rig.feed(b"* 1 FETCH (UID 7 BODY[] {1000}\r\n");
    let reason = format!("the server sent a response larger than {MAX_RESPONSE_BYTES} bytes");
    assert_eq!(rig.completions(), vec![failed("f1", &reason)]);
    assert!(rig.core.is_dead());
}

#[test]
fn an_unreadable_response_ends_the_connection_and_what_follows_is_not_read() {
    let mut rig = Rig::new();
    rig.command("f1", "NOOP\r\n", Collect::All);
    rig.feed(b"* OK Still here\r\nhello world\r\nf1 OK NOOP completed.\r\n");
    let reason = "unreadable response from the server: \"hello world\\r\\n\"";
    assert_eq!(rig.completions(), vec![failed("f1", reason)]);
}

#[test]
fn a_status_line_with_raw_utf8_text_is_read_and_data_with_it_is_not() {
    // Dovecot 2.3 echoes a folder's raw UTF-8 Maildir++ name, which it lists but cannot open.
    let mut rig = Rig::new();
    rig.command("f4", "STATUS \".Работа\" (MESSAGES)\r\n", Collect::All);
    rig.feed("f4 NO Mailbox doesn't exist: .Работа (0.001 + 0.000 secs).\r\n".as_bytes());
    let completions = rig.completions();
    assert_eq!(completions.len(), 1, "{completions:?}");
    let done = completions[0]
        .result
        .clone()
        .expect("an answer, not a dead connection");
    assert_eq!(done.outcome, crate::conn::Outcome::No);
    assert!(
        done.text.starts_with("Mailbox doesn't exist: .??"),
        "{}",
        done.text
    );
    assert!(!rig.core.is_dead());

    // A data response that does not parse still ends the connection.
    rig.command("f5", "NOOP\r\n", Collect::All);
    rig.feed("* 1 FETCH (FLAGS (Ключ))\r\n".as_bytes());
    assert!(rig.core.is_dead());
}
