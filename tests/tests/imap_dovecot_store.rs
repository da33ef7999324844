//! The IMAP store against real Dovecot servers on loopback, driven directly and through the
//! binary: large messages read in pieces into a spool and written from it, listings planned
//! from a STATUS that went stale, a long upload over a slow link, and TLS. Every check of the
//! result reads the servers with an independent IMAP client (`ferry_tests::dovecot::Client`),
//! never ferry's journal. Migrations between two servers are in `imap_dovecot.rs`.

use ferry_tests::dovecot::{Dovecot, PASSWORD, count};
use ferry_tests::imap::{copied, migrate, ok};
use ferry_tests::proxy::Proxy;

/// An IMAP store reading `server` as the test user, as a source does, and a runtime to drive
/// it from a test.
fn reading_store(server: &Dovecot) -> (ferry_imap::ImapStore, tokio::runtime::Runtime) {
    imap_store(server, true, None)
}

/// An IMAP store on `server` as the test user (a source's when `read_only`, else a
/// target's), and a runtime to drive it from a test.
fn imap_store(
    server: &Dovecot,
    read_only: bool,
    spool_dir: Option<std::path::PathBuf>,
) -> (ferry_imap::ImapStore, tokio::runtime::Runtime) {
    use ferry_imap::{ImapOptions, ImapStore, Secret};
    let store = ImapStore::new(
        &server.uri(),
        &ImapOptions {
            secret: Some(Secret::Value(std::sync::Arc::new(
                PASSWORD.to_owned().into(),
            ))),
            ca_file: None,
            insecure: false,
            read_only,
            spool_dir,
        },
    )
    .expect("store");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    (store, runtime)
}

#[test]
fn large_messages_are_read_in_pieces_into_a_spool_and_written_from_it() {
    use ferry_engine::Flags;
    use ferry_engine::body::PIECE_BYTES;
    use ferry_engine::store::{Listing, NewMessage, Store};

    let dir = tempfile::tempdir().expect("temp dir");
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).expect("spool dir");
    let source = Dovecot::start(&dir.path().join("source"), &[]);
    let target = Dovecot::start(&dir.path().join("target"), &[]);
    // A message that ends inside a piece, one that ends exactly at a piece's end (its last
    // piece is empty), one a byte short of a piece, and a small one.
    let message = |subject: &str, len: usize| {
        let mut bytes = format!("From: a@example.com\r\nSubject: {subject}\r\n\r\n").into_bytes();
        let mut line = 0_u64;
        while bytes.len() < len {
            line += 1;
            bytes.extend_from_slice(format!("{subject} line {line:08} of its body\r\n").as_bytes());
        }
        bytes.truncate(len - 2);
        bytes.extend_from_slice(b"\r\n");
        bytes
    };
    let sizes = [
        5 * PIECE_BYTES + 12_345,
        2 * PIECE_BYTES,
        PIECE_BYTES - 1,
        3_000,
    ];
    let sent: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(n, &len)| message(&format!("m{n}"), len))
        .collect();
    let mut user = source.client();
    for bytes in &sent {
        user.append("INBOX", "", bytes);
    }
    let (reader, runtime) = imap_store(&source, true, Some(spool.clone()));
    let (writer, _) = imap_store(&target, false, Some(spool.clone()));
    runtime.block_on(async {
        reader.list_folders().await.expect("folders");
        let Listing::Full { items, .. } = reader.list_items("INBOX", None).await.expect("list")
        else {
            panic!("a first listing is full");
        };
        let ids: Vec<_> = items.iter().map(|item| item.id.clone()).collect();
        assert_eq!(ids.len(), sent.len());
        let many = reader.fetch_many("INBOX", &ids).await.expect("fetch many");
        let mut bodies = Vec::new();
        for ((id, bytes), read) in ids.iter().zip(&sent).zip(many) {
            let body = read.expect("a body");
            // Only a message larger than a piece is spooled; every one reads back exactly.
            assert_eq!(
                body.in_memory().is_none(),
                bytes.len() >= PIECE_BYTES,
                "{body:?}"
            );
            assert!(body == *bytes, "{body:?} differs from what was appended");
            let alone = reader.fetch("INBOX", id).await.expect("fetch");
            assert!(alone == *bytes);
            bodies.push(body);
        }
        // The spool files have no names: nothing is left behind, even after kill -9.
        assert_eq!(std::fs::read_dir(&spool).expect("spool").count(), 0);

        // Written back from the spool, in one MULTIAPPEND and alone.
        writer.list_folders().await.expect("target folders");
        let flags = Flags::new();
        let messages: Vec<NewMessage<'_>> = bodies
            .iter()
            .map(|body| NewMessage {
                bytes: body,
                flags: &flags,
                date: None,
            })
            .collect();
        let probe = writer.prepare_append("INBOX").await.expect("probe");
        let ids = writer
            .append_many("INBOX", &messages, &probe)
            .await
            .expect("append");
        assert!(ids.iter().all(Option::is_some), "{ids:?}");
        let probe = writer.prepare_append("INBOX").await.expect("probe");
        writer
            .append("INBOX", &bodies[0], &flags, None, &probe)
            .await
            .expect("append one");
    });
    let stored: Vec<Vec<u8>> = target
        .client()
        .messages("INBOX")
        .into_iter()
        .map(|(_, _, bytes)| bytes)
        .collect();
    let mut expected = sent.clone();
    expected.push(sent[0].clone());
    assert!(stored == expected, "the target's bytes differ");
}

// Goal: a server is silent while a long APPEND literal goes up (it answers once it has it
// all); over a slow uplink that silence outlasts the idle timeout and must not be taken for a
// dead connection, or a large message never gets through.
// Method: a 3 MiB message, a proxy passing 1 MiB/s towards the target, an idle timeout of
// 1 s; the run must succeed with the message byte for byte on the target.
#[test]
fn a_long_upload_over_a_slow_link_is_not_taken_for_a_silent_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = Dovecot::start(&dir.path().join("source"), &[]);
    let target = Dovecot::start(&dir.path().join("target"), &[]);
    let mut big = b"From: big@example.com\r\nSubject: slow upload\r\n\r\n".to_vec();
    while big.len() < 3 << 20 {
        big.extend_from_slice(b"a line of a message that takes a while to upload\r\n");
    }
    source.client().append("INBOX", "\\Seen", &big);
    let proxy = Proxy::limited(target.port(), Some(1 << 20));
    let to = format!("imap://ferry@127.0.0.1:{}/?tls=none&timeout=1", proxy.port);
    let output = ok(&migrate(
        dir.path(),
        &source.uri(),
        &to,
        &dir.path().join("journal"),
        &[],
    ));
    assert_eq!(copied(&output), 1, "{output}");
    let stored = target.client().messages("INBOX");
    assert_eq!(stored.len(), 1);
    assert!(stored[0].2 == big, "the target's message differs");
}

#[test]
fn tls_is_verified_against_the_ca_given() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Dovecot::start(&dir.path().join("tls-server"), &["--tls"]);
    let ca = server.dir().join("tls/ca.pem");
    let sample = dir.path().join("sample");
    std::fs::create_dir_all(sample.join("cur")).expect("mkdir");
    for sub in ["new", "tmp"] {
        std::fs::create_dir_all(sample.join(sub)).expect("mkdir");
    }
    std::fs::write(
        sample.join("cur/1.msg:2,S"),
        b"From: t@example.com\r\nSubject: tls\r\n\r\nx\r\n",
    )
    .expect("write");
    let from = format!("maildir:{}", sample.display());
    let ca_arg = ca.display().to_string();
    for (i, uri) in [
        format!("imap://ferry@127.0.0.1:{}", server.port()),
        format!("imaps://ferry@127.0.0.1:{}", server.port() + 1),
    ]
    .iter()
    .enumerate()
    {
        // Not trusted without the CA: refused, exit code 4, nothing written.
        let refused = migrate(
            dir.path(),
            &from,
            uri,
            &dir.path().join(format!("j{i}")),
            &[],
        );
        assert_eq!(refused.status.code(), Some(4), "{refused:?}");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("--ca-file"));
        let done = migrate(
            dir.path(),
            &from,
            uri,
            &dir.path().join(format!("j{i}")),
            &["--ca-file", &ca_arg],
        );
        ok(&done);
    }
    // Both runs delivered into the same account: the second matched the first copy.
    let tree = server.client().tree();
    assert_eq!(count(&tree), 1, "{tree:?}");
    // The password never shows up in what ferry printed.
    let out = migrate(
        dir.path(),
        &from,
        &format!("imap://ferry@127.0.0.1:{}", server.port()),
        &dir.path().join("j0"),
        &["--ca-file", &ca_arg],
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(PASSWORD));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(PASSWORD));
}

// Goal: a listing whose commands were planned from a STATUS that went stale (the folder was
// recreated in between, new UIDVALIDITY) lists the folder in full under its new UIDVALIDITY,
// never as "changes since" the old one. ferry sends each folder's EXAMINE and UID FETCH
// together, planned from the STATUS the folder listing gave, and must notice when the
// EXAMINE contradicts it.
// Method: one ImapStore lists a folder; a message arrives and the store lists folders
// (caching their STATUS: changed, same UIDVALIDITY); an independent client then recreates the
// folder with two messages; the same store lists it again with the first token, beside
// another folder.
#[test]
fn a_folder_recreated_after_its_status_was_read_is_listed_in_full() {
    use ferry_engine::store::{Listing, Store};

    let dir = tempfile::tempdir().expect("temp dir");
    let server = Dovecot::start(&dir.path().join("server"), &[]);
    let mut user = server.client();
    // Creates Box and appends `count` messages to it.
    let fill = |user: &mut ferry_tests::dovecot::Client, subject: &str, count: usize| {
        user.ok("CREATE \"Box\"");
        for n in 0..count {
            let message = format!("Subject: {subject} {n}\r\n\r\n{subject} {n}\r\n");
            user.append("Box", "", message.as_bytes());
        }
    };
    fill(&mut user, "first", 3);
    let (store, runtime) = reading_store(&server);
    runtime.block_on(async {
        let Listing::Full { items, token } = store.list_items("Box", None).await.expect("list")
        else {
            panic!("a first listing is full");
        };
        assert_eq!(items.len(), 3);
        let token = token.expect("a token");
        // A change, then the folder listing: its STATUS (kept for the listing) says "changed
        // since the token" under the same UIDVALIDITY.
        user.append("Box", "", b"Subject: later\r\n\r\nlater\r\n");
        store.list_folders().await.expect("folders");

        let old = user.uid_validity("Box");
        user.ok("DELETE \"Box\"");
        fill(&mut user, "new", 2);
        let new = user.uid_validity("Box");
        assert_ne!(new, old);

        let listings = store
            .list_items_many(&[("INBOX", None), ("Box", Some(token.as_str()))])
            .await
            .expect("listings");
        assert_eq!(listings.len(), 2);
        assert!(
            matches!(listings[0], Ok(Listing::Full { .. })),
            "{:?}",
            listings[0]
        );
        match &listings[1] {
            Ok(Listing::Full { items, token }) => {
                assert_eq!(items.len(), 2, "{items:?}");
                for item in items {
                    assert!(item.id.0.starts_with(&format!("{new}:")), "{item:?}");
                }
                let token = token.as_deref().expect("a token");
                assert!(token.starts_with(&format!("{new}:")), "{token}");
            }
            other => panic!("the recreated folder must be listed in full: {other:?}"),
        }
    });
}

// Goal: a change listing asks for new messages only when the folder's STATUS shows some (its
// UIDNEXT moved since the last listing), and a message that arrives after that STATUS was read
// is still listed, not skipped by a listing that asked for changed flags only.
// Method: list a folder, re-flag one message, read the folder list (STATUS: changed, same
// UIDNEXT); list again: the flag change and nothing new. Re-flag again, read the folder list,
// then append a message before listing: the listing must carry the new message, and the
// listing after it must find nothing more.
#[test]
fn a_message_arriving_after_the_status_was_read_is_listed() {
    use ferry_engine::store::{Listing, Store};

    let dir = tempfile::tempdir().expect("temp dir");
    let server = Dovecot::start(&dir.path().join("server"), &[]);
    let mut user = server.client();
    user.ok("CREATE \"Box\"");
    for n in 0..3 {
        let message = format!("Subject: old {n}\r\n\r\nold {n}\r\n");
        user.append("Box", "", message.as_bytes());
    }
    let (store, runtime) = reading_store(&server);
    let flag = |user: &mut ferry_tests::dovecot::Client, uid: u32| {
        user.ok("SELECT \"Box\"");
        user.ok(&format!("UID STORE {uid} +FLAGS.SILENT (\\Flagged)"));
        user.ok("UNSELECT");
    };
    runtime.block_on(async {
        store.list_folders().await.expect("folders");
        let Listing::Full { items, token } = store.list_items("Box", None).await.expect("list")
        else {
            panic!("a first listing is full");
        };
        assert_eq!(items.len(), 3);
        let validity = user.uid_validity("Box");

        // Flags changed, nothing new.
        flag(&mut user, 2);
        store.list_folders().await.expect("folders");
        let listed = store
            .list_items("Box", token.as_deref())
            .await
            .expect("list");
        let Listing::Changes {
            changed,
            flags,
            gone,
            token,
        } = listed
        else {
            panic!("a change listing: {listed:?}");
        };
        assert!(
            changed.is_empty() && gone.is_empty(),
            "{changed:?} {gone:?}"
        );
        assert_eq!(flags.len(), 1, "{flags:?}");
        assert_eq!(flags[0].0.0, format!("{validity}:2"));
        assert!(
            flags[0].1.to_string().contains("\\Flagged"),
            "{:?}",
            flags[0].1
        );

        // Flags changed, the STATUS read, then a new message.
        flag(&mut user, 3);
        store.list_folders().await.expect("folders");
        user.append("Box", "", b"Subject: late\r\n\r\nlate\r\n");
        let listed = store
            .list_items("Box", token.as_deref())
            .await
            .expect("list");
        let (changed, flags, token) = match listed {
            Listing::Changes {
                changed,
                flags,
                token,
                ..
            } => (changed, flags, token),
            Listing::Full { items, token } => (items, Vec::new(), token),
        };
        let ids: Vec<&str> = changed.iter().map(|item| item.id.0.as_str()).collect();
        assert!(
            ids.contains(&format!("{validity}:4").as_str()),
            "the late message must be listed: {ids:?}"
        );
        assert!(
            flags.iter().any(|(id, _)| id.0 == format!("{validity}:3"))
                || ids.contains(&format!("{validity}:3").as_str()),
            "the flag change must be listed: {flags:?} {ids:?}"
        );

        // Nothing after that.
        store.list_folders().await.expect("folders");
        let listed = store
            .list_items("Box", token.as_deref())
            .await
            .expect("list");
        match listed {
            Listing::Changes {
                changed,
                flags,
                gone,
                ..
            } => assert!(
                changed.is_empty() && flags.is_empty() && gone.is_empty(),
                "{changed:?} {flags:?} {gone:?}"
            ),
            other => panic!("nothing changed: {other:?}"),
        }
    });
}
