//! Microsoft 365 through Graph under faults, against the emulator: the real binary killed
//! with SIGKILL at random moments while replies to committed creates are lost, and a storm
//! of 429s. What landed is counted from the emulator's own state.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ferry_graph_emulator::Limits;
use ferry_sample::{SampleSpec, generate};
use ferry_tests::graph::{Tenant, UPN};
use ferry_tests::{kill_from_the_start, maildir_files};

/// Message-ID → how many messages carry it, on a Maildir (a message without one counts
/// under "").
fn source_ids(root: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for path in maildir_files(root) {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let id = text
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .unwrap_or("")
            .trim()
            .to_string();
        *out.entry(id).or_default() += 1;
    }
    out
}

/// The same of the tenant's mailbox.
fn tenant_ids(tenant: &Tenant) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for message in tenant.mailbox() {
        let id = message["internet_message_id"].as_str().unwrap_or("");
        let id = if id.ends_with("@emulator.invalid>") {
            ""
        } else {
            id
        };
        *out.entry(id.to_string()).or_default() += 1;
    }
    out
}

#[test]
fn killed_at_random_moments_with_lost_replies_nothing_is_missing_or_doubled() {
    let tenant = Tenant::start(None, |config| {
        // Slow enough that kills fall inside the copy.
        config.limits.latency = Duration::from_millis(20);
    });
    let source = tenant.home.path().join("source");
    let summary = generate(
        &source,
        &SampleSpec {
            messages: 300,
            seed: 1515,
        },
    )
    .expect("sample");
    let from = format!("maildir:{}", source.display());
    let mut rng = ferry_tests::kill_rng();
    let landed = || {
        tenant
            .emulator
            .with_world(|world| world.tenant.users[0].mailbox.messages.len())
    };
    let mut losses = 0;
    let kills = kill_from_the_start(
        &mut rng,
        (6, 250),
        30,
        22,
        12,
        summary.messages,
        landed,
        || {
            // Every few runs, the replies to the next creates are lost after they commit.
            losses += 1;
            if losses % 3 == 0 {
                tenant
                    .emulator
                    .with_world(|world| world.faults.lose_create_replies = 2);
            }
            tenant
                .command(&from, &tenant.uri(), "journal", &[])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn ferry")
        },
    );
    assert!(
        kills.mid_copy >= 10,
        "too few kills inside the copy: {kills:?}"
    );
    tenant
        .emulator
        .with_world(|world| world.faults.lose_create_replies = 0);
    tenant.migrate(&from, &tenant.uri(), "journal", &[]);
    assert_eq!(
        tenant_ids(&tenant),
        source_ids(&source),
        "0 missing, 0 duplicates"
    );
    // And a run more changes nothing.
    let creates = tenant.emulator.counters(UPN).creates;
    tenant.migrate(&from, &tenant.uri(), "journal", &[]);
    assert_eq!(tenant.emulator.counters(UPN).creates, creates);
}

#[test]
fn a_storm_of_429s_is_ridden_out_within_the_documented_limits() {
    let budget = 150_000;
    let tenant = Tenant::start(None, |config| {
        config.limits = Limits {
            // Well over 30%, so that a short run answers over 30% 429 whatever the draw.
            throttle_rate: 0.45,
            upload: Some((budget, Duration::from_secs(2))),
            latency: Duration::from_millis(2),
            ..Limits::documented()
        };
    });
    let source = tenant.home.path().join("source");
    generate(
        &source,
        &SampleSpec {
            messages: 16,
            seed: 429,
        },
    )
    .expect("sample");
    let from = format!("maildir:{}", source.display());
    tenant.migrate(&from, &tenant.uri(), "journal", &[]);
    assert_eq!(tenant_ids(&tenant), source_ids(&source));
    let counters = tenant.emulator.counters(UPN);
    assert!(
        counters.throttled * 10 > counters.requests * 3,
        "over 30% answered 429: {counters:?}"
    );
    assert!(counters.max_in_flight_after_throttle <= 4, "{counters:?}");
    assert!(counters.max_window_upload_bytes <= budget, "{counters:?}");
}

/// Search key → how many messages of the mailbox of `tenant` carry it.
fn search_keys(tenant: &Tenant) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for message in tenant.mailbox() {
        *out.entry(message["search_key"].to_string()).or_default() += 1;
    }
    out
}

#[test]
fn tenant_to_tenant_killed_at_random_moments_with_lost_import_replies() {
    let from = Tenant::start(None, |_| {});
    let to = Tenant::start(None, |config| {
        // Slow enough that kills fall inside the copy.
        config.limits.latency = Duration::from_millis(20);
    });
    let sample = from.home.path().join("sample");
    generate(
        &sample,
        &SampleSpec {
            messages: 240,
            seed: 1516,
        },
    )
    .expect("sample");
    // The source mailbox as a mail server filled it: every sample message delivered, half
    // into the Inbox, half into the Archive.
    let files = maildir_files(&sample);
    from.emulator.with_world(|world| {
        let mailbox = &mut world.tenant.users[0].mailbox;
        for (n, path) in files.iter().enumerate() {
            let bytes = std::fs::read(path).expect("sample message");
            let folder = if n % 2 == 0 { "inbox" } else { "archive" };
            let at = chrono::Utc::now() - chrono::Duration::minutes(n as i64);
            mailbox
                .deliver(folder, bytes, at)
                .unwrap_or_else(|e| panic!("deliver: {e:?}"));
        }
    });
    let wanted = search_keys(&from);
    assert_eq!(wanted.values().sum::<usize>(), files.len());
    let mut rng = ferry_tests::kill_rng();
    let landed = || {
        to.emulator
            .with_world(|world| world.tenant.users[0].mailbox.messages.len())
    };
    let mut runs = 0;
    let kills = kill_from_the_start(&mut rng, (4, 250), 16, 12, 12, files.len(), landed, || {
        // Every few runs, the replies to the next imports are lost after they commit.
        runs += 1;
        if runs % 3 == 0 {
            to.emulator
                .with_world(|world| world.faults.lose_create_replies = 2);
        }
        from.command(&from.uri(), &to.uri(), "t2t", &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn ferry")
    });
    assert!(
        kills.mid_copy >= 8,
        "too few kills inside the copy: {kills:?}"
    );
    to.emulator
        .with_world(|world| world.faults.lose_create_replies = 0);
    from.migrate(&from.uri(), &to.uri(), "t2t", &[]);
    assert_eq!(search_keys(&to), wanted, "0 missing, 0 duplicates");
    // And a run more changes nothing.
    let (exports, imports) = (
        from.emulator.counters(UPN).exports,
        to.emulator.counters(UPN).imports,
    );
    from.migrate(&from.uri(), &to.uri(), "t2t", &[]);
    assert_eq!(from.emulator.counters(UPN).exports, exports);
    assert_eq!(to.emulator.counters(UPN).imports, imports);
}
