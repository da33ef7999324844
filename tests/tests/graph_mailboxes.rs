//! Microsoft 365 through Graph with IMAP and with another tenant, against the emulator (no
//! real tenant is reachable here): a real Dovecot into a tenant mailbox, that mailbox out to
//! another Dovecot, and tenant to tenant, each through an initial run, a no-op, a delta (new
//! mail, re-flagged, moved, deleted with `--delete-removed`) and `--verify-target`. What
//! landed is read from the servers themselves (an independent IMAP client, the emulator's
//! state and counters), never from ferry's journal.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ferry_graph_emulator::world::Mailbox;
use ferry_tests::dovecot::{Dovecot, PASSWORD};
use ferry_tests::graph::{Tenant, UPN};
use ferry_tests::imap::copied;
use serde_json::Value;

/// One message as both sides can tell it: Message-ID (empty when the service made one up),
/// read, flagged, draft, keywords (categories) sorted.
type Seen = (String, bool, bool, bool, Vec<String>);

/// A mailbox compared across protocols: every message, and the sizes of its folders (sorted:
/// folder names differ between services, Sent against Sent Items).
#[derive(Debug, PartialEq, Eq)]
struct View {
    messages: Vec<Seen>,
    folder_sizes: Vec<usize>,
}

fn view(folders: BTreeMap<String, Vec<Seen>>) -> View {
    let mut messages: Vec<Seen> = folders.values().flatten().cloned().collect();
    messages.sort();
    let mut folder_sizes: Vec<usize> = folders.values().map(Vec::len).filter(|n| *n > 0).collect();
    folder_sizes.sort_unstable();
    View {
        messages,
        folder_sizes,
    }
}

/// A Message-ID the emulator made up for a message without one counts as none.
fn own_id(id: &str) -> String {
    if id.ends_with("@emulator.invalid>") {
        String::new()
    } else {
        id.trim().to_string()
    }
}

fn header_id(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let id = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("message-id")
                .then(|| value.trim())
        })
        .unwrap_or("");
    own_id(id)
}

/// A Dovecot account as a [`View`], and each message's INTERNALDATE by Message-ID.
fn imap_view(server: &Dovecot) -> (View, BTreeMap<String, Vec<i64>>) {
    let mut client = server.client();
    let mut folders = BTreeMap::new();
    let mut dates: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for folder in client.folders() {
        let mut seen = Vec::new();
        for (_, flags, body) in client.messages(&folder) {
            let mut keywords: Vec<String> = flags
                .iter()
                .filter(|f| !f.starts_with('\\'))
                .cloned()
                .collect();
            keywords.sort();
            seen.push((
                header_id(&body),
                flags.iter().any(|f| f == "\\Seen"),
                flags.iter().any(|f| f == "\\Flagged"),
                flags.iter().any(|f| f == "\\Draft"),
                keywords,
            ));
        }
        if seen.is_empty() {
            folders.insert(folder, seen);
            continue;
        }
        for response in
            client.ok("UID FETCH 1:* (INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        {
            let Some(date) = response.text.split("INTERNALDATE \"").nth(1) else {
                continue;
            };
            let date = date.split('"').next().unwrap_or("");
            let at = DateTime::parse_from_str(date, "%d-%b-%Y %H:%M:%S %z")
                .unwrap_or_else(|e| panic!("INTERNALDATE {date}: {e}"));
            let id = response
                .literals
                .first()
                .map(|header| header_id(&[header.as_slice(), b"\r\n\r\n"].concat()))
                .unwrap_or_default();
            dates.entry(id).or_default().push(at.timestamp());
        }
        folders.insert(folder, seen);
    }
    (view(folders), dates)
}

/// A tenant mailbox as a [`View`] (folders by path), and every message as the emulator holds it.
fn tenant_view(tenant: &Tenant, upn: &str) -> (View, Vec<Value>) {
    let messages = tenant.mailbox_of(upn);
    let mut folders: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    for message in &messages {
        let mut categories: Vec<String> = message["categories"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        categories.sort();
        folders
            .entry(message["path"].as_str().unwrap_or("").to_string())
            .or_default()
            .push((
                own_id(message["internet_message_id"].as_str().unwrap_or("")),
                message["is_read"] == true,
                message["flag_status"] == "flagged",
                message["is_draft"] == true,
                categories,
            ));
    }
    (view(folders), messages)
}

fn received(message: &Value) -> i64 {
    DateTime::parse_from_rfc3339(message["received"].as_str().expect("received"))
        .expect("RFC 3339")
        .timestamp()
}

/// Every message in the tenant was received when the source says (±1 s). (Whether it is a
/// draft is in the [`View`]: a draft only where the source has one.)
fn assert_dates(messages: &[Value], dates: &BTreeMap<String, Vec<i64>>) {
    for message in messages {
        let id = own_id(message["internet_message_id"].as_str().unwrap_or(""));
        let at = received(message);
        let wanted = dates
            .get(&id)
            .unwrap_or_else(|| panic!("{id} not on the source"));
        assert!(
            wanted.iter().any(|w| (w - at).abs() <= 1),
            "{id}: received {at}, the source says {wanted:?}"
        );
    }
}

/// What a user does in a tenant mailbox between two runs: `count` messages flagged, `count`
/// others moved into Archive, three delivered, five deleted for good.
fn user_changes_in_tenant(tenant: &Tenant, upn: &str, count: usize) {
    tenant.emulator.with_world(|world| {
        let index = world.tenant.user_index(upn).expect("user");
        let mailbox: &mut Mailbox = &mut world.tenant.users[index].mailbox;
        let archive = mailbox.folder_id("archive").expect("Archive");
        let mut ids: Vec<(String, String, bool)> = mailbox
            .messages
            .values()
            .map(|m| (m.id.clone(), m.folder.clone(), m.flag_status == "flagged"))
            .collect();
        ids.sort();
        let now = Utc::now();
        let unflagged: Vec<String> = ids
            .iter()
            .filter(|(_, _, flagged)| !flagged)
            .map(|(id, _, _)| id.clone())
            .take(count)
            .collect();
        assert_eq!(unflagged.len(), count, "enough messages to flag");
        for id in &unflagged {
            mailbox.edit(id, now, |m| m.flag_status = "flagged".into());
        }
        let movable: Vec<String> = ids
            .iter()
            .filter(|(id, folder, _)| *folder != archive && !unflagged.contains(id))
            .map(|(id, _, _)| id.clone())
            .take(count)
            .collect();
        assert_eq!(movable.len(), count, "enough messages to move");
        for id in &movable {
            mailbox.relocate(id, &archive, now);
        }
        let doomed: Vec<String> = ids
            .iter()
            .map(|(id, _, _)| id.clone())
            .filter(|id| !unflagged.contains(id) && !movable.contains(id))
            .take(5)
            .collect();
        for id in &doomed {
            mailbox.purge(id);
        }
        for n in 0..3 {
            let mime = format!(
                "From: news{n}@example.com\r\nTo: {upn}\r\nSubject: new {n}\r\n\
                 Message-ID: <new-{n}-{upn}>\r\nDate: Fri, 04 Dec 2026 10:00:0{n} +0000\r\n\
                 MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhello {n}\r\n"
            );
            let at = DateTime::parse_from_rfc3339(&format!("2026-12-04T10:00:0{n}Z"))
                .expect("date")
                .with_timezone(&Utc);
            mailbox
                .deliver("inbox", mime.into_bytes(), at)
                .unwrap_or_else(|e| panic!("deliver: {e:?}"));
        }
    });
}

#[test]
fn dovecot_into_a_tenant_and_out_to_dovecot_initial_noop_delta_verify() {
    let tenant = Tenant::start(None, |_| {});
    let home = tenant.home.path();
    let source = Dovecot::start(&home.join("source-server"), &[]);
    let sample = home.join("sample");
    ferry_sample::generate(
        &sample,
        &ferry_sample::SampleSpec {
            messages: 260,
            seed: 1501,
        },
    )
    .expect("sample");
    let seeded = ferry_tests::imap::migrate(
        home,
        &format!("maildir:{}", sample.display()),
        &source.uri(),
        &home.join("seed"),
        &[],
    );
    ferry_tests::imap::ok(&seeded);
    let imap_to_tenant = |extra: &[&str]| {
        let mut command = tenant.command(&source.uri(), &tenant.uri(), "in", extra);
        let output = command
            .env("FERRY_FROM_PASSWORD", PASSWORD)
            .output()
            .expect("ferry");
        ferry_tests::imap::ok(&output)
    };

    // Initial: every message once, dates, read state, flag and keywords as on Dovecot.
    imap_to_tenant(&[]);
    let (wanted, dates) = imap_view(&source);
    let (landed, messages) = tenant_view(&tenant, UPN);
    assert_eq!(landed, wanted);
    assert_dates(&messages, &dates);
    let creates = tenant.emulator.counters(UPN).creates;
    assert_eq!(creates as usize, messages.len());

    // No-op: nothing created, nothing downloaded.
    let out = imap_to_tenant(&[]);
    assert_eq!(copied(&out), 0, "{out}");
    let counters = tenant.emulator.counters(UPN);
    assert_eq!((counters.creates, counters.downloads), (creates, 0));

    // Users keep working on Dovecot: new mail, flags, moves, deletions.
    let mut user = source.client();
    user.append(
        "INBOX",
        "\\Seen $Important",
        b"From: a@example.com\r\nMessage-ID: <fresh-1@example.com>\r\nSubject: new\r\n\r\nhello\r\n",
    );
    user.ok("SELECT INBOX");
    let inbox = user.messages("INBOX");
    assert!(inbox.len() > 30, "a full inbox: {}", inbox.len());
    user.ok("SELECT INBOX");
    let uids: Vec<u32> = inbox.iter().map(|(uid, _, _)| *uid).collect();
    for uid in &uids[..10] {
        user.ok(&format!("UID STORE {uid} +FLAGS (\\Flagged $Later)"));
    }
    for uid in &uids[10..20] {
        user.ok(&format!("UID MOVE {uid} Archive"));
    }
    for uid in &uids[20..25] {
        user.ok(&format!("UID STORE {uid} +FLAGS (\\Deleted)"));
        user.ok(&format!("UID EXPUNGE {uid}"));
    }
    let out = imap_to_tenant(&["--delete-removed"]);
    assert_eq!(copied(&out), 1, "{out}");
    assert!(out.contains("10 moves on the target"), "{out}");
    let (wanted, dates) = imap_view(&source);
    let (landed, messages) = tenant_view(&tenant, UPN);
    assert_eq!(landed, wanted);
    assert_dates(&messages, &dates);
    assert_eq!(tenant.emulator.counters(UPN).creates, creates + 1);

    // --verify-target reads the tenant back in full: all there, nothing copied.
    let out = imap_to_tenant(&["--verify-target"]);
    assert_eq!(copied(&out), 0, "{out}");

    // Out of the tenant into another Dovecot.
    let target = Dovecot::start(&home.join("target-server"), &[]);
    let tenant_to_imap = |extra: &[&str]| {
        let mut command = tenant.command(&tenant.uri(), &target.uri(), "out", extra);
        let output = command
            .env("FERRY_TO_PASSWORD", PASSWORD)
            .output()
            .expect("ferry");
        ferry_tests::imap::ok(&output)
    };
    tenant.emulator.reset_counters();
    tenant_to_imap(&[]);
    let (out_view, out_dates) = imap_view(&target);
    let (tenant_now, messages) = tenant_view(&tenant, UPN);
    assert_eq!(out_view, tenant_now);
    for message in &messages {
        let id = own_id(message["internet_message_id"].as_str().unwrap_or(""));
        let at = received(message);
        assert!(
            out_dates[&id].iter().any(|d| (d - at).abs() <= 1),
            "{id}: INTERNALDATE {:?}, received {at}",
            out_dates[&id]
        );
    }
    let downloads = tenant.emulator.counters(UPN).downloads;
    assert_eq!(downloads as usize, messages.len(), "each message read once");

    // No-op out: nothing read again.
    let out = tenant_to_imap(&[]);
    assert_eq!(copied(&out), 0, "{out}");
    assert_eq!(tenant.emulator.counters(UPN).downloads, downloads);

    // The user works in the tenant: 100 flagged and 100 moved cost no download; only the 3
    // new messages are read.
    user_changes_in_tenant(&tenant, UPN, 100);
    let out = tenant_to_imap(&["--delete-removed"]);
    assert_eq!(copied(&out), 3, "{out}");
    assert!(out.contains("100 moves on the target"), "{out}");
    assert_eq!(tenant.emulator.counters(UPN).downloads, downloads + 3);
    let (out_view, _) = imap_view(&target);
    assert_eq!(out_view, tenant_view(&tenant, UPN).0);
    let out = tenant_to_imap(&["--verify-target"]);
    assert_eq!(copied(&out), 0, "{out}");
}

#[test]
fn tenant_to_tenant_initial_noop_delta_verify() {
    let from = Tenant::start(None, |_| {});
    let to = Tenant::start(None, |_| {});
    let sample = from.home.path().join("sample");
    ferry_sample::generate(
        &sample,
        &ferry_sample::SampleSpec {
            messages: 300,
            seed: 1502,
        },
    )
    .expect("sample");
    // The source tenant filled through ferry from a Maildir.
    from.migrate(
        &format!("maildir:{}", sample.display()),
        &from.uri(),
        "seed",
        &[],
    );
    from.emulator.reset_counters();
    let run = |extra: &[&str]| {
        let output = from.migrate(&from.uri(), &to.uri(), "t2t", extra);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    // Full fidelity through the import/export API, with replies to committed imports lost:
    // each found by its search key, never imported twice.
    to.emulator
        .with_world(|world| world.faults.lose_create_replies = 7);
    run(&[]);
    let (wanted, source_messages) = tenant_view(&from, UPN);
    let (landed, messages) = tenant_view(&to, UPN);
    assert_eq!(landed, wanted);
    let mut dates: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for message in &source_messages {
        dates
            .entry(own_id(
                message["internet_message_id"].as_str().unwrap_or(""),
            ))
            .or_default()
            .push(received(message));
    }
    assert_dates(&messages, &dates);
    // Every property Exchange keeps came across (headers, body, attachments, addresses, flags,
    // categories, extended properties, the search key), not only what the messages API's
    // JSON names: each message whole, but for its place in its mailbox.
    let whole = |message: &Value| {
        let mut message = message.clone();
        for place in [
            "id",
            "folder",
            "moves",
            "seq",
            "created",
            "modified",
            "change_key",
            "path",
        ] {
            message[place] = Value::Null;
        }
        message.to_string()
    };
    let mut source_items: Vec<String> = source_messages.iter().map(whole).collect();
    let mut target_items: Vec<String> = messages.iter().map(whole).collect();
    source_items.sort();
    target_items.sort();
    assert!(source_items == target_items, "the same items, whole");
    let (source, target) = (from.emulator.counters(UPN), to.emulator.counters(UPN));
    assert_eq!(
        (source.downloads, target.creates),
        (0, 0),
        "no MIME read, no JSON create"
    );
    let (exports, imports) = (source.exports, target.imports);
    assert_eq!(exports as usize, messages.len());
    assert_eq!(
        imports as usize,
        messages.len(),
        "one import each, none doubled"
    );

    // No-op: nothing read, nothing written.
    let out = run(&[]);
    assert_eq!(copied(&out), 0, "{out}");
    assert_eq!(from.emulator.counters(UPN).exports, exports);
    assert_eq!(to.emulator.counters(UPN).imports, imports);

    // 100 re-flagged, 100 moved, 3 new, 5 deleted: 3 exports, 3 imports, 100 moves.
    user_changes_in_tenant(&from, UPN, 100);
    let uploaded = to.emulator.counters(UPN).uploaded_bytes;
    let out = run(&["--delete-removed"]);
    assert_eq!(copied(&out), 3, "{out}");
    assert!(out.contains("100 moves on the target"), "{out}");
    assert_eq!(from.emulator.counters(UPN).exports, exports + 3);
    assert_eq!(from.emulator.counters(UPN).downloads, 0);
    let counters = to.emulator.counters(UPN);
    assert_eq!(counters.imports, imports + 3);
    assert!(
        counters.uploaded_bytes - uploaded < 100_000,
        "only the new messages and small patches uploaded: {counters:?}"
    );
    assert_eq!(tenant_view(&to, UPN).0, tenant_view(&from, UPN).0);

    let out = run(&["--verify-target"]);
    assert_eq!(copied(&out), 0, "{out}");
}
