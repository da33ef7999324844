//! Messages over Graph's 4 MB request into the emulated tenant: created without their
//! attachments, each attachment added (a POST under 3 MB, an upload session in pieces from
//! 3 MB), marked as ferry's only once whole. Checked from the emulator's own state: every
//! attachment byte for byte, one message each; and a run killed in the middle of an upload
//! leaves nothing half made behind once the next run is done.

use std::path::Path;
use std::time::{Duration, Instant};

use ferry_tests::graph::{Tenant, UPN};

/// Deterministic bytes that do not compress.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

fn base64_lines(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    text.as_bytes()
        .chunks(76)
        .map(|line| format!("{}\r\n", String::from_utf8_lossy(line)))
        .collect()
}

/// A Maildir holding one message per entry of `sizes`, each with attachments of those sizes.
fn maildir(root: &Path, messages: &[&[usize]]) -> Vec<Vec<Vec<u8>>> {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).expect("maildir");
    }
    let mut all = Vec::new();
    for (n, sizes) in messages.iter().enumerate() {
        let mut text = format!(
            "From: Big Sender <big@example.com>\r\nTo: {UPN}\r\nSubject: large {n}\r\n\
             Message-ID: <large-{n}@example.com>\r\nDate: Thu, 03 Dec 2026 09:00:00 +0000\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n\
             --b{n}\r\nContent-Type: text/plain\r\n\r\nSee the files.\r\n"
        );
        let mut attachments = Vec::new();
        for (k, size) in sizes.iter().enumerate() {
            let bytes = noise((n * 10 + k) as u64, *size);
            text.push_str(&format!(
                "--b{n}\r\nContent-Type: application/octet-stream\r\n\
                 Content-Disposition: attachment; filename=\"file{k}.bin\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{}",
                base64_lines(&bytes)
            ));
            attachments.push(bytes);
        }
        text.push_str(&format!("--b{n}--\r\n"));
        std::fs::write(root.join(format!("cur/{n}.large:2,S")), text).expect("message");
        all.push(attachments);
    }
    all
}

/// A message as the emulator holds it: subject, draft, read, its attachments' bytes.
type Landed = (String, bool, bool, Vec<Vec<u8>>);

/// Each message as the emulator holds it, by subject; and how many messages carry ferry's
/// pending marker.
fn landed(tenant: &Tenant) -> (Vec<Landed>, usize) {
    tenant.emulator.with_world(|world| {
        let mailbox = &world.tenant.users[0].mailbox;
        let mut out: Vec<_> = mailbox
            .messages
            .values()
            .map(|m| {
                (
                    m.subject.clone(),
                    m.is_draft,
                    m.is_read,
                    m.attachments.iter().map(|a| a.bytes.clone()).collect(),
                )
            })
            .collect();
        out.sort();
        let pending = mailbox
            .messages
            .values()
            .filter(|m| {
                m.property("String {6f5a1c3e-8d2b-4e7a-9c41-f3b07d2e5a19} Name ferryPending")
                    .is_some_and(|v| !v.is_empty())
            })
            .count();
        (out, pending)
    })
}

#[test]
fn messages_over_four_megabytes_land_whole_through_upload_sessions() {
    let tenant = Tenant::start(None, |_| {});
    let source = tenant.home.path().join("source");
    let wanted = maildir(
        &source,
        &[&[9 * 1024 * 1024, 1024 * 1024], &[3_500_000, 3_500_000]],
    );
    let from = format!("maildir:{}", source.display());
    tenant.migrate(&from, &tenant.uri(), "journal", &[]);
    let (messages, pending) = landed(&tenant);
    assert_eq!(pending, 0);
    assert_eq!(messages.len(), 2, "one message each");
    for (n, (subject, draft, read, attachments)) in messages.iter().enumerate() {
        assert_eq!(subject, &format!("large {n}"));
        assert!(!draft && *read, "not a draft, read as on the source");
        assert!(attachments == &wanted[n], "every attachment byte for byte");
    }
    // A run more writes nothing.
    let creates = tenant.emulator.counters(UPN).creates;
    tenant.migrate(&from, &tenant.uri(), "journal", &[]);
    assert_eq!(tenant.emulator.counters(UPN).creates, creates);
}

#[test]
fn a_run_killed_in_the_middle_of_an_upload_leaves_one_whole_message() {
    let tenant = Tenant::start(None, |config| {
        // Slow enough that the kill falls between the pieces.
        config.limits.latency = Duration::from_millis(150);
    });
    let source = tenant.home.path().join("source");
    let wanted = maildir(&source, &[&[20 * 1024 * 1024]]);
    let from = format!("maildir:{}", source.display());
    let mut child = tenant
        .command(&from, &tenant.uri(), "journal", &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn ferry");
    // Killed once the message is made and some of its attachment is up, not all.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let uploading = tenant.emulator.with_world(|world| {
            world
                .uploads
                .values()
                .any(|u| !u.bytes.is_empty() && u.bytes.len() < u.size)
        });
        if uploading {
            break;
        }
        assert!(Instant::now() < deadline, "no upload seen in progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let (messages, pending) = landed(&tenant);
    assert_eq!(
        (messages.len(), pending),
        (1, 1),
        "a message half made, marked pending"
    );
    assert!(messages[0].3.is_empty(), "its attachment not there yet");

    tenant.migrate(&from, &tenant.uri(), "journal", &[]);
    let (messages, pending) = landed(&tenant);
    assert_eq!(pending, 0, "the half-made message is gone");
    assert_eq!(messages.len(), 1, "one message, whole");
    assert!(messages[0].3 == wanted[0], "its attachment byte for byte");
}
