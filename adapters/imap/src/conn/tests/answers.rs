//! Single answers worded as Dovecot 2.3 and Courier 5 word them, and what the core makes of
//! them: response codes (COPYUID, APPENDUID, CAPABILITY), LIST-STATUS, partial and NIL bodies.

use super::{Rig, bodies, fetches};
use crate::conn::{Collect, DoneCode, StatusItems, Untagged};

#[test]
fn copyuid_of_a_move() {
    let mut rig = Rig::new();
    rig.command("a1", "UID MOVE 304,319:320 Archive\r\n", Collect::Nothing);
    rig.feed(b"a1 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n");
    assert_eq!(
        rig.done(&["a1"])[0].code,
        Some(DoneCode::CopyUid {
            validity: 38505,
            source: vec![304, 319, 320],
            destination: vec![3956, 3957, 3958],
        })
    );
}

#[test]
fn dovecot_move_reports_copyuid_before_its_expunges() {
    let mut rig = Rig::new();
    rig.command("f4", "UID MOVE 2,44 Archive\r\n", Collect::All);
    rig.feed(
        b"* OK [COPYUID 1796383962 2,44 48:49] Moved UIDs.\r\n* 2 EXPUNGE\r\n* 41 EXPUNGE\r\n\
          f4 OK Move completed (0.001 + 0.000 secs).\r\n",
    );
    let done = rig.done(&["f4"]).remove(0);
    assert_eq!(
        done.data[0],
        Untagged::Code(DoneCode::CopyUid {
            validity: 1_796_383_962,
            source: vec![2, 44],
            destination: vec![48, 49],
        })
    );
    assert_eq!(done.data.len(), 3);
}

#[test]
fn appenduid_with_one_uid_and_with_a_set() {
    let mut rig = Rig::new();
    rig.command("a1", "APPEND INBOX {1+}\r\nx\r\n", Collect::Nothing);
    rig.command(
        "a2",
        "APPEND INBOX {1+}\r\nx {1+}\r\ny\r\n",
        Collect::Nothing,
    );
    rig.feed(
        b"a1 OK [APPENDUID 38505 3955] APPEND completed\r\n\
          a2 OK [APPENDUID 38505 3955:3957,3960] APPEND completed\r\n",
    );
    let done = rig.done(&["a1", "a2"]);
    assert_eq!(
        done[0].code,
        Some(DoneCode::AppendUid {
            validity: 38505,
            uid: 3955
        })
    );
    assert_eq!(
        done[1].code,
        Some(DoneCode::AppendUids {
            validity: 38505,
            uids: vec![3955, 3956, 3957, 3960]
        })
    );
}

#[test]
fn dovecot_login_ok_carries_its_capabilities() {
    let mut rig = Rig::new();
    rig.command("f1", "LOGIN \"ferry\" \"secret\"\r\n", Collect::All);
    rig.feed(
        b"f1 OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY \
          THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE \
          UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH \
          ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY \
          PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY] Logged in\r\n",
    );
    let done = rig.done(&["f1"]).remove(0);
    let Some(DoneCode::Capability(names)) = &done.code else {
        panic!("capabilities: {done:?}");
    };
    for name in ["LITERAL+", "QRESYNC", "UIDPLUS", "MOVE", "LIST-STATUS"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    assert_eq!(done.text, "Logged in");
}

#[test]
fn dovecot_list_status_answers() {
    let mut rig = Rig::new();
    rig.command(
        "f2",
        "LIST \"\" \"*\" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))\r\n",
        Collect::All,
    );
    rig.feed(
        b"* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
          * STATUS INBOX (MESSAGES 44 UIDNEXT 48 UIDVALIDITY 1796383962 HIGHESTMODSEQ 53)\r\n\
          * LIST (\\HasNoChildren) \"/\" \"Sent Items\"\r\n\
          * STATUS \"Sent Items\" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 1796383963 HIGHESTMODSEQ 1)\r\n\
          f2 OK List completed (0.001 + 0.000 secs).\r\n",
    );
    let done = rig.done(&["f2"]).remove(0);
    let status = |mailbox: &[u8], figures: [u64; 4]| Untagged::Status {
        mailbox: mailbox.to_vec(),
        items: StatusItems {
            messages: Some(figures[0] as u32),
            uid_next: Some(figures[1] as u32),
            uid_validity: Some(figures[2] as u32),
            highest_modseq: Some(figures[3]),
        },
    };
    let list = |mailbox: &[u8]| Untagged::List {
        attributes: vec!["\\HasNoChildren".into()],
        delimiter: Some('/'),
        mailbox: mailbox.to_vec(),
    };
    assert_eq!(
        done.data,
        vec![
            list(b"INBOX"),
            status(b"INBOX", [44, 48, 1_796_383_962, 53]),
            list(b"Sent Items"),
            status(b"Sent Items", [0, 1, 1_796_383_963, 1]),
        ]
    );
}

#[test]
fn a_nil_body_is_no_body_and_a_partial_body_keeps_its_origin() {
    let mut rig = Rig::new();
    rig.command(
        "f1",
        "UID FETCH 9:10 (UID BODY.PEEK[]<1048576.5>)\r\n",
        bodies(&[9, 10]),
    );
    rig.command("f2", "NOOP\r\n", Collect::All);
    rig.feed(
        b"* 3 FETCH (UID 9 BODY[]<1048576> NIL)\r\n\
          * 4 FETCH (UID 10 BODY[]<1048576> {5}\r\nworld)\r\n\
          f1 OK Fetch completed.\r\nf2 OK NOOP completed.\r\n",
    );
    let done = rig.done(&["f1", "f2"]);
    let partial = fetches(&done[0]);
    assert_eq!(partial.len(), 1, "the NIL body is not f1's: {done:?}");
    assert_eq!(partial[0].body.as_deref(), Some(&b"world"[..]));
    assert_eq!(
        (partial[0].uid, partial[0].origin),
        (Some(10), Some(1_048_576))
    );
    let nil = fetches(&done[1]);
    assert_eq!((nil[0].uid, nil[0].body.as_ref()), (Some(9), None));
}
