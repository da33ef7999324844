//! Issue 16's acceptance set (`ferry_tests::pim_seed`: 2,000 events with series, exceptions,
//! cancellations, four zones, attendees, alarms and attachments; 1,000 contacts with photos,
//! addresses and numbers, non-ASCII names; 300 tasks; 50 journal entries) through the real
//! binary: Radicale → Radicale under 20 and more SIGKILLs at random moments, Radicale →
//! Xandikos; each then a no-op (nothing written), a delta (events moved, series occurrences
//! edited, contacts renumbered, tasks completed, items deleted with `--delete-removed`: each
//! an update in place) and `--verify-target`. What the target holds is read back with the
//! tests' own HTTP client and compared parsed (`ferry_dav::canonical`: PRODID, DTSTAMP and REV
//! are the normalised fields): every item, once, equal.

use std::collections::BTreeMap;

use ferry_dav::canonical::canonical;
use ferry_tests::dav::{Radicale, Xandikos, migrate, migrate_command, request};
use ferry_tests::imap::copied;
use ferry_tests::pim_seed::{self, ALL};

const USER: &str = "alice";
const COLLECTIONS: [&str; 4] = ["work", "people", "todo", "diary"];

/// A source Radicale holding the acceptance set.
fn seeded() -> Radicale {
    let source = Radicale::start();
    source.mkcalendar(USER, "work", "Arbeit", &["VEVENT"]);
    source.mkcalendar(USER, "todo", "Aufgaben", &["VTODO"]);
    source.mkcalendar(USER, "diary", "Tagebuch", &["VJOURNAL"]);
    source.mkaddressbook(USER, "people", "Leute");
    pim_seed::write_into(
        &source
            .dir
            .path()
            .join("collections/collection-root")
            .join(USER),
    );
    source
}

/// Every item of a Radicale account's collections, read from its storage (the files the
/// server serves): (collection, item name) → canonical form.
fn stored(server: &Radicale) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for collection in COLLECTIONS {
        let dir = server
            .dir
            .path()
            .join("collections/collection-root")
            .join(USER)
            .join(collection);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).expect("an item file");
            let form = canonical(&text).unwrap_or_else(|| panic!("{name}: {text}"));
            out.insert((collection.to_string(), name), form);
        }
    }
    out
}

/// Every item of Xandikos' collections, one REPORT each (calendar-query or addressbook-query
/// with the data): (collection, item name) → canonical form.
fn served(server: &Xandikos) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for (path, card) in [
        ("calendars/work", false),
        ("contacts/people", true),
        ("calendars/todo", false),
        ("calendars/diary", false),
    ] {
        let body = if card {
            r#"<?xml version="1.0"?><R:addressbook-query xmlns:D="DAV:" xmlns:R="urn:ietf:params:xml:ns:carddav"><D:prop><R:address-data/></D:prop></R:addressbook-query>"#
        } else {
            r#"<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>"#
        };
        let (status, _, answer) = request(
            server.port,
            "user",
            "REPORT",
            &format!("/user/{path}/"),
            &[("Depth", "1"), ("Content-Type", "application/xml")],
            body,
        );
        assert_eq!(status, 207, "{answer}");
        let document = roxmltree::Document::parse(&answer).expect("a multistatus");
        let collection = path.rsplit('/').next().unwrap_or("").to_string();
        for response in document
            .descendants()
            .filter(|n| n.has_tag_name(("DAV:", "response")))
        {
            let href = response
                .descendants()
                .find(|n| n.has_tag_name(("DAV:", "href")))
                .and_then(|n| n.text())
                .unwrap_or("");
            let data = response.descendants().find(|n| {
                n.has_tag_name(("urn:ietf:params:xml:ns:caldav", "calendar-data"))
                    || n.has_tag_name(("urn:ietf:params:xml:ns:carddav", "address-data"))
            });
            let Some(text) = data.and_then(|n| n.text()) else {
                continue;
            };
            let name = href.rsplit('/').next().unwrap_or("").to_string();
            let form = canonical(text).unwrap_or_else(|| panic!("{href}: {text}"));
            assert!(
                out.insert((collection.clone(), name), form).is_none(),
                "{href} twice"
            );
        }
    }
    out
}

/// The delta on the source: 20 events an hour later, 5 series with their overridden
/// occurrence renamed, 10 contacts with a new number, 10 tasks completed; 5 events and 3
/// contacts deleted. Returns how many items were edited.
fn edit(source: &Radicale) -> usize {
    for n in (1..200).step_by(10).take(20) {
        source.put(
            USER,
            &format!("/{USER}/work/event-{n}.ics"),
            &pim_seed::event(n, 11),
        );
    }
    for n in (0..500).step_by(100) {
        source.put(
            USER,
            &format!("/{USER}/work/event-{n}.ics"),
            &pim_seed::series_edited(n, "nochmal"),
        );
    }
    for n in 0..10 {
        source.put(
            USER,
            &format!("/{USER}/people/contact-{n}.vcf"),
            &pim_seed::contact(n, "+49 30 2000"),
        );
    }
    for n in 0..10 {
        source.put(
            USER,
            &format!("/{USER}/todo/task-{n}.ics"),
            &pim_seed::task(n, "COMPLETED"),
        );
    }
    for href in [
        "work/event-1999.ics",
        "work/event-1998.ics",
        "work/event-1997.ics",
        "work/event-1996.ics",
        "work/event-1995.ics",
        "people/contact-999.vcf",
        "people/contact-998.vcf",
        "people/contact-997.vcf",
    ] {
        let (status, _, _) = source.request(USER, "DELETE", &format!("/{USER}/{href}"), &[], "");
        assert!(status == 200 || status == 204, "DELETE {href}: {status}");
    }
    45
}

/// A run of ferry with extra options: its exit code and output.
type Run<'a> = dyn Fn(&[&str]) -> (Option<i32>, String) + 'a;

/// A no-op, the delta, and `--verify-target`, from `source` to the target `read` reads.
fn noop_delta_verify(
    source: &Radicale,
    run: &Run<'_>,
    read: &dyn Fn() -> BTreeMap<(String, String), String>,
) {
    let (code, out) = run(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(copied(&out), 0, "a no-op writes nothing: {out}");
    assert!(!out.contains("updated in place"), "{out}");
    let before = read();
    let edited = edit(source);
    let (code, out) = run(&["--delete-removed"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("{edited} items updated in place")),
        "{out}"
    );
    assert_eq!(copied(&out), 0, "in place, no copy: {out}");
    let after = read();
    assert_eq!(
        after.len(),
        before.len() - 8,
        "the 8 deleted, nothing else gone or added"
    );
    assert_eq!(after, stored(source), "equal parsed");
    let (code, out) = run(&["--verify-target"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(copied(&out), 0, "{out}");
    assert!(!out.contains("updated in place"), "{out}");
}

#[test]
fn the_acceptance_set_radicale_to_radicale_under_kills() {
    let source = seeded();
    let target = Radicale::start();
    let home = tempfile::tempdir().expect("home");
    let start = || {
        migrate_command(home.path(), &source.uri(USER), &target.uri(USER))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn ferry")
    };
    let landed = || {
        COLLECTIONS
            .iter()
            .map(|c| {
                let dir = target
                    .dir
                    .path()
                    .join("collections/collection-root")
                    .join(USER)
                    .join(c);
                std::fs::read_dir(dir)
                    .map(|entries| {
                        entries
                            .filter_map(Result::ok)
                            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                            .count()
                    })
                    .unwrap_or(0)
            })
            .sum::<usize>()
    };
    let mut rng = ferry_tests::kill_rng();
    let kills =
        ferry_tests::kill_from_the_start(&mut rng, (3, 400), 20, 17, 200, ALL, landed, start);
    assert!(
        kills.mid_copy >= 12,
        "too few kills inside the copy: {kills:?}"
    );
    let (code, out) = migrate(home.path(), &source.uri(USER), &target.uri(USER), &[]);
    assert_eq!(code, Some(0), "{out}");
    let wanted = stored(&source);
    assert_eq!(wanted.len(), ALL);
    assert_eq!(
        stored(&target),
        wanted,
        "after {kills:?}: every item once, equal parsed"
    );
    let run = |extra: &[&str]| migrate(home.path(), &source.uri(USER), &target.uri(USER), extra);
    let read = || stored(&target);
    noop_delta_verify(&source, &run, &read);
}

#[test]
fn the_acceptance_set_radicale_to_xandikos() {
    let source = seeded();
    let target = Xandikos::start();
    let home = tempfile::tempdir().expect("home");
    let run = |extra: &[&str]| migrate(home.path(), &source.uri(USER), &target.uri(), extra);
    let (code, out) = run(&[]);
    assert_eq!(code, Some(0), "{out}");
    let read = || served(&target);
    let landed = read();
    assert_eq!(landed.len(), ALL);
    assert_eq!(landed, stored(&source), "every item, equal parsed");
    noop_delta_verify(&source, &run, &read);
}
