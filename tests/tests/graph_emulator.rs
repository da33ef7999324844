//! Microsoft 365 through Graph, against the emulator (no real tenant is reachable here): the
//! real binary migrates a Maildir into a tenant mailbox and back out, and what landed is
//! checked from the emulator's own state and counters, not from ferry's word. And Microsoft's
//! own Graph SDK for Python drives the emulator (tests/graph_sdk/sdk_check.py), so the
//! emulator is held to what a client that is not ferry's sends and expects.

use std::collections::BTreeMap;
use std::path::Path;

use ferry_sample::{SampleSpec, generate};
use ferry_tests::graph::{Tenant, UPN};
use serde_json::Value;

/// What the source says of each message: Message-ID → (internal date in s, flags letters,
/// keywords), from the Maildir's file names, mtimes and dovecot-keywords.
fn source_messages(root: &Path) -> BTreeMap<String, Vec<(i64, String)>> {
    let mut out: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for path in ferry_tests::maildir_files(root) {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let id = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("Message-ID: ")
                    .or(l.strip_prefix("Message-Id: "))
            })
            .unwrap_or("")
            .trim()
            .to_string();
        let mtime = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime")
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs() as i64;
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let flags = name
            .rsplit_once(":2,")
            .map(|(_, f)| f.to_string())
            .unwrap_or_default();
        out.entry(id).or_default().push((mtime, flags));
    }
    out
}

fn received_secs(message: &Value) -> i64 {
    let text = message["received"].as_str().expect("received");
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp()
}

#[test]
fn maildir_into_the_tenant_and_back_initial_noop_delta_moves_and_faults() {
    let tenant = Tenant::start(None, |_| {});
    let source = tenant.home.path().join("source");
    let summary = generate(
        &source,
        &SampleSpec {
            messages: 160,
            seed: 15,
        },
    )
    .expect("sample");
    let from = format!("maildir:{}", source.display());

    // A lost reply to every third of the first creates: found by the marker, never doubled.
    tenant
        .emulator
        .with_world(|world| world.faults.lose_create_replies = 3);
    tenant.migrate(&from, &tenant.uri(), "in", &[]);
    let landed = tenant.mailbox();
    assert_eq!(
        landed.len(),
        summary.messages,
        "every message once, no duplicate"
    );

    // Every message read back from the emulator: not a draft unless the source said so, the
    // received date the source's (±1 s), read state, flag and keywords as on the source.
    let wanted = source_messages(&source);
    for message in &landed {
        let id = message["internet_message_id"].as_str().expect("id");
        // A message without a Message-ID gets one from Exchange.
        let id = if id.ends_with("@emulator.invalid>") {
            ""
        } else {
            id
        };
        let candidates = wanted
            .get(id)
            .unwrap_or_else(|| panic!("{id} not on the source"));
        let got = received_secs(message);
        let matching = candidates.iter().any(|(mtime, flags)| {
            (got - mtime).abs() <= 1
                && message["is_draft"] == flags.contains('D')
                && message["is_read"] == flags.contains('S')
                && (message["flag_status"] == "flagged") == flags.contains('F')
        });
        assert!(matching, "{id}: {message} is not like {candidates:?}");
    }
    let with_work = landed
        .iter()
        .filter(|m| {
            m["categories"]
                .as_array()
                .is_some_and(|c| c.iter().any(|k| k == "Work"))
        })
        .count();
    assert!(with_work > 0, "keywords become categories");
    let creates = tenant.emulator.counters(UPN).creates;

    // A no-op run writes nothing and downloads nothing.
    tenant.migrate(&from, &tenant.uri(), "in", &[]);
    let counters = tenant.emulator.counters(UPN);
    assert_eq!((counters.creates, counters.downloads), (creates, 0));

    // Re-flagging on the source: flags change in place, nothing is created or downloaded.
    let inbox = source.join("cur");
    let mut reflagged = 0;
    for entry in std::fs::read_dir(&inbox).expect("inbox") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        if let Some((base, flags)) = name.rsplit_once(":2,")
            && !flags.contains('F')
            && reflagged < 10
        {
            let mut letters: Vec<char> = flags.chars().chain(['F']).collect();
            letters.sort_unstable();
            let renamed = format!("{base}:2,{}", letters.into_iter().collect::<String>());
            std::fs::rename(&path, inbox.join(renamed)).expect("re-flag");
            reflagged += 1;
        }
    }
    let flagged_before = landed
        .iter()
        .filter(|m| m["flag_status"] == "flagged")
        .count();
    tenant.migrate(&from, &tenant.uri(), "in", &[]);
    let after = tenant.mailbox();
    let flagged_after = after
        .iter()
        .filter(|m| m["flag_status"] == "flagged")
        .count();
    assert_eq!(flagged_after, flagged_before + reflagged);
    let counters = tenant.emulator.counters(UPN);
    assert_eq!((counters.creates, counters.downloads), (creates, 0));

    // Ten messages moved between folders on the source: moved in the tenant (one `move`
    // each), nothing created, nothing downloaded.
    let archive = source.join(".Archive").join("cur");
    std::fs::create_dir_all(&archive).expect("archive");
    let mut moved = 0;
    for entry in std::fs::read_dir(&inbox).expect("inbox") {
        let path = entry.expect("entry").path();
        if moved < 10 {
            std::fs::rename(&path, archive.join(path.file_name().expect("name"))).expect("move");
            moved += 1;
        }
    }
    let out = tenant.migrate(&from, &tenant.uri(), "in", &["--delete-removed"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("10 moves on the target"), "{stdout}");
    let counters = tenant.emulator.counters(UPN);
    assert_eq!(
        (counters.creates, counters.downloads),
        (creates, 0),
        "{stdout}"
    );
    assert_eq!(tenant.mailbox().len(), summary.messages);

    // Out of the tenant into a Maildir, with MIME boundaries new at every download.
    tenant
        .emulator
        .with_world(|world| world.faults.fresh_boundaries = true);
    let back = tenant.home.path().join("back");
    let to_back = format!("maildir:{}", back.display());
    tenant.migrate(&tenant.uri(), &to_back, "out", &["--delete-removed"]);
    let downloads = tenant.emulator.counters(UPN).downloads;
    assert_eq!(downloads, summary.messages as u64, "each message read once");
    let out = tenant.migrate(&tenant.uri(), &to_back, "out", &["--delete-removed"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Copied 0 messages"),
        "a no-op: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Delta tokens expired by the service: a full listing, nothing deleted, nothing copied.
    tenant.emulator.with_world(|world| {
        let index = world.tenant.user_index(UPN).expect("user");
        let mailbox = &mut world.tenant.users[index].mailbox;
        mailbox.tokens_valid_from = mailbox.bump() + 1;
    });
    let out = tenant.migrate(&tenant.uri(), &to_back, "out", &["--delete-removed"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Copied 0 messages") && stdout.contains("0 deletions"),
        "{stdout}"
    );
    assert_eq!(tenant.emulator.counters(UPN).downloads, downloads);
}

/// Microsoft's Graph SDK for Python (msgraph-sdk with azure-identity, pinned in
/// tests/graph_sdk/requirements.txt, installed by scripts/test) against the emulator over
/// TLS: tokens, folders and messages with paging, a delta round and its link after changes,
/// a `$batch`. The script must need no workaround.
#[test]
fn microsofts_graph_sdk_for_python_drives_the_emulator() {
    let python = ferry_tests::graph::sdk_python();
    let certs = tempfile::tempdir().expect("temp dir");
    let (cert, key) = ferry_tests::graph::self_signed(
        certs.path(),
        "127.0.0.1",
        "ec -pkeyopt ec_paramgen_curve:prime256v1",
        Some("subjectAltName=IP:127.0.0.1"),
    );
    let tenant = Tenant::start(Some((cert.clone(), key)), |_| {});
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("graph_sdk/sdk_check.py");
    let output = std::process::Command::new(&python)
        .arg(&script)
        .arg(tenant.emulator.url())
        .args(["contoso", "app-1"])
        .arg(tenant.home.path().join("secret"))
        .arg(&cert)
        .arg(UPN)
        .output()
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(seen["users"], 1);
    assert_eq!(seen["workarounds"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["child_folders"], serde_json::json!(["SDK Child"]));
    assert_eq!(seen["listed_messages"], 7);
    assert_eq!(
        seen["listed_drafts"], 0,
        "created with PidTagMessageFlags: not drafts"
    );
    assert!(seen["pages_followed"].as_u64() >= Some(2), "{seen}");
    assert!(seen["folder_pages"].as_u64() >= Some(2), "{seen}");
    assert_eq!(seen["delta_first_round"], 7);
    assert_eq!(
        seen["delta_changed"],
        serde_json::json!([seen["actions"]["patched"]])
    );
    let removed = seen["delta_removed"].as_array().expect("removed");
    assert_eq!(removed.len(), 2, "{seen}");
    assert_eq!(
        seen["batch"],
        serde_json::json!({"folder": 200, "message": 200, "missing": 404})
    );
}

#[test]
fn microsofts_graph_sdk_drives_the_mailbox_import_export_api() {
    let python = ferry_tests::graph::sdk_python();
    let certs = tempfile::tempdir().expect("temp dir");
    let (cert, key) = ferry_tests::graph::self_signed(
        certs.path(),
        "127.0.0.1",
        "ec -pkeyopt ec_paramgen_curve:prime256v1",
        Some("subjectAltName=IP:127.0.0.1"),
    );
    let tenant = Tenant::start(Some((cert.clone(), key)), |_| {});
    let source_keys: Vec<Vec<u8>> = tenant.emulator.with_world(|world| {
        let mailbox = &mut world.tenant.users[0].mailbox;
        for n in 0..5 {
            let mime = format!("From: a@example.com\r\nSubject: s{n}\r\n\r\nhello {n}\r\n");
            mailbox
                .deliver("inbox", mime.into_bytes(), chrono::Utc::now())
                .expect("deliver");
        }
        mailbox.put_item("calendar", "IPM.Appointment", "Review", "Room 4");
        mailbox
            .messages
            .values()
            .map(|m| m.search_key.clone())
            .collect()
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("graph_sdk/export_check.py");
    let output = std::process::Command::new(&python)
        .arg(&script)
        .arg(tenant.emulator.url())
        .args(["contoso", "app-1"])
        .arg(tenant.home.path().join("secret"))
        .arg(&cert)
        .arg(UPN)
        .output()
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(seen["mailbox_id"], true);
    assert!(seen["folder_pages"].as_u64() >= Some(2), "{seen}");
    let types = seen["folder_types"].as_array().expect("types");
    assert!(
        types.contains(&Value::from("IPF.Appointment")) && types.contains(&Value::from("IPF.Note"))
    );
    assert_eq!(seen["inbox_items"], 5);
    assert_eq!(seen["item_types"], serde_json::json!(["IPM.Note"]));
    assert_eq!(
        (seen["delta_items"].as_u64(), seen["delta_link"].as_bool()),
        (Some(5), Some(true))
    );
    assert!(seen["delta_pages"].as_u64() >= Some(3), "{seen}");
    assert_eq!(seen["exported"], 5);
    assert_eq!(seen["imported"], true);
    // What the SDK imported is the item exported, whole: its search key is one of the Inbox's.
    let archived = tenant.emulator.with_world(|world| {
        let mailbox = &world.tenant.users[0].mailbox;
        let archive = mailbox.well_known("archive");
        mailbox
            .in_folder(&archive)
            .iter()
            .map(|m| m.search_key.clone())
            .collect::<Vec<_>>()
    });
    assert_eq!(archived.len(), 1);
    assert!(source_keys.contains(&archived[0]));
}
