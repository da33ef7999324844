//! CalDAV/CardDAV, Radicale to Radicale (two real servers on loopback, Debian's package): the
//! real binary copies calendars (events with time zones, attendees, alarms, a recurring series
//! with an overridden occurrence), an address book (non-ASCII names, several numbers and
//! addresses), tasks and journals; a no-op rerun writes nothing; a delta (an event moved to
//! another hour, a contact with a new number, a task completed, one occurrence edited, a
//! contact deleted) is updated in place — same href, new ETag, the collection's count
//! unchanged; a target-side edit is a conflict, never overwritten. What the target holds is
//! read back with the tests' own HTTP client and compared parsed (`ferry_dav::canonical`:
//! PRODID, DTSTAMP and REV are the normalised fields).

use std::collections::BTreeMap;

use ferry_dav::canonical::canonical;
use ferry_tests::dav::Radicale;
use ferry_tests::imap::copied;

const USER: &str = "alice";

fn event(n: usize, hour: u32) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ferry tests//EN\r\n\
         BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n\
         TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n\
         END:STANDARD\r\nEND:VTIMEZONE\r\n\
         BEGIN:VEVENT\r\nUID:event-{n}@ferry.test\r\nDTSTAMP:20261201T090000Z\r\n\
         DTSTART;TZID=Europe/Berlin:202612{:02}T{hour:02}0000\r\nDURATION:PT1H\r\n\
         SUMMARY:Réunion {n}\r\nLOCATION:Raum {n}\r\n\
         ATTENDEE;CN=Zoë;PARTSTAT=ACCEPTED:mailto:zoe@ferry.test\r\n\
         BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:soon\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n",
        1 + n % 28
    )
}

fn series(overridden: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ferry tests//EN\r\n\
         BEGIN:VEVENT\r\nUID:series@ferry.test\r\nDTSTAMP:20261201T090000Z\r\n\
         DTSTART:20261201T080000Z\r\nDURATION:PT30M\r\nRRULE:FREQ=WEEKLY;COUNT=10\r\n\
         SUMMARY:Weekly\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:series@ferry.test\r\nDTSTAMP:20261201T090000Z\r\n\
         RECURRENCE-ID:20261215T080000Z\r\nDTSTART:20261215T090000Z\r\nDURATION:PT30M\r\n\
         SUMMARY:{overridden}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn contact(n: usize, number: &str) -> String {
    format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:contact-{n}@ferry.test\r\nFN:Jörg Ünal {n}\r\n\
         N:Ünal;Jörg;;;\r\nTEL;TYPE=WORK:{number}\r\nTEL;TYPE=CELL:+49 170 {n:04}\r\n\
         ADR;TYPE=HOME:;;Straße {n};Berlin;;10115;Germany\r\nADR;TYPE=WORK:;;Hof {n};Köln;;50667;Germany\r\n\
         REV:20261201T090000Z\r\nEND:VCARD\r\n"
    )
}

fn task(n: usize, status: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ferry tests//EN\r\nBEGIN:VTODO\r\n\
         UID:task-{n}@ferry.test\r\nDTSTAMP:20261201T090000Z\r\nSUMMARY:Aufgabe {n}\r\n\
         STATUS:{status}\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
}

fn journal(n: usize) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ferry tests//EN\r\nBEGIN:VJOURNAL\r\n\
         UID:journal-{n}@ferry.test\r\nDTSTAMP:20261201T090000Z\r\nDTSTART;VALUE=DATE:20261201\r\n\
         SUMMARY:Tagebuch {n}\r\nDESCRIPTION:Heute {n}\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n"
    )
}

fn mkcalendar(server: &Radicale, name: &str, display: &str, components: &[&str]) {
    let comps: String = components
        .iter()
        .map(|c| format!("<C:comp name=\"{c}\"/>"))
        .collect();
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="http://apple.com/ns/ical/"><D:set><D:prop><D:displayname>{display}</D:displayname><A:calendar-color>#3366FF</A:calendar-color><C:supported-calendar-component-set>{comps}</C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>"#
    );
    let (status, _, said) =
        server.request(USER, "MKCALENDAR", &format!("/{USER}/{name}/"), &[], &body);
    assert_eq!(status, 201, "{said}");
}

fn put(server: &Radicale, path: &str, text: &str) -> String {
    let content_type = if text.starts_with("BEGIN:VCARD") {
        "text/vcard"
    } else {
        "text/calendar"
    };
    let (status, etag, said) =
        server.request(USER, "PUT", path, &[("Content-Type", content_type)], text);
    assert!(
        status == 201 || status == 204,
        "PUT {path}: {status} {said}"
    );
    etag.unwrap_or_default()
}

/// Every item of the account: href → canonical form, read with the tests' own client.
fn holdings(server: &Radicale) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for collection in ["work", "people", "todo", "diary"] {
        let body = r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>"#;
        let (status, _, listing) = server.request(
            USER,
            "PROPFIND",
            &format!("/{USER}/{collection}/"),
            &[("Depth", "1")],
            body,
        );
        if status == 404 {
            continue;
        }
        assert_eq!(status, 207, "{listing}");
        let hrefs: Vec<String> = listing
            .split("<D:href>")
            .chain(listing.split("<href>"))
            .skip(1)
            .filter_map(|s| s.split('<').next())
            .filter(|h| h.ends_with(".ics") || h.ends_with(".vcf"))
            .map(str::to_string)
            .collect();
        for href in hrefs {
            let (status, _, text) = server.request(USER, "GET", &href, &[], "");
            assert_eq!(status, 200, "GET {href}");
            out.insert(
                href.clone(),
                canonical(&text).unwrap_or_else(|| panic!("{href}: {text}")),
            );
        }
    }
    out
}

fn etag_of(server: &Radicale, href: &str) -> String {
    let (status, etag, _) = server.request(USER, "GET", href, &[], "");
    assert_eq!(status, 200, "GET {href}");
    etag.expect("an ETag")
}

#[test]
fn radicale_to_radicale_initial_noop_delta_in_place_and_conflicts() {
    let source = Radicale::start();
    let target = Radicale::start();
    mkcalendar(&source, "work", "Arbeit", &["VEVENT"]);
    mkcalendar(&source, "todo", "Aufgaben", &["VTODO"]);
    mkcalendar(&source, "diary", "Tagebuch", &["VJOURNAL"]);
    let book = r#"<?xml version="1.0"?><D:mkcol xmlns:D="DAV:" xmlns:R="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype><D:collection/><R:addressbook/></D:resourcetype><D:displayname>Leute</D:displayname></D:prop></D:set></D:mkcol>"#;
    let (status, _, said) = source.request(USER, "MKCOL", &format!("/{USER}/people/"), &[], book);
    assert_eq!(status, 201, "{said}");
    for n in 0..60 {
        put(
            &source,
            &format!("/{USER}/work/event-{n}.ics"),
            &event(n, 10),
        );
    }
    put(
        &source,
        &format!("/{USER}/work/series.ics"),
        &series("Moved once"),
    );
    for n in 0..20 {
        put(
            &source,
            &format!("/{USER}/people/contact-{n}.vcf"),
            &contact(n, "+49 30 1000"),
        );
    }
    for n in 0..10 {
        put(
            &source,
            &format!("/{USER}/todo/task-{n}.ics"),
            &task(n, "NEEDS-ACTION"),
        );
    }
    for n in 0..5 {
        put(
            &source,
            &format!("/{USER}/diary/journal-{n}.ics"),
            &journal(n),
        );
    }
    let home = tempfile::tempdir().expect("home");
    let secret = home.path().join("secret");
    std::fs::write(&secret, "x\n").expect("secret");
    let run = |extra: &[&str]| {
        let output = ferry_tests::ferry(home.path())
            .args([
                "migrate",
                "--from",
                &source.uri(USER),
                "--to",
                &target.uri(USER),
            ])
            .arg("--journal")
            .arg(home.path().join("journal"))
            .arg("--from-password-file")
            .arg(&secret)
            .arg("--to-password-file")
            .arg(&secret)
            .args(extra)
            .output()
            .expect("run ferry");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };

    let (code, out) = run(&[]);
    assert_eq!(code, Some(0), "{out}");
    let wanted = holdings(&source);
    assert_eq!(wanted.len(), 96);
    assert_eq!(
        holdings(&target),
        wanted,
        "every item, equal parsed, same href"
    );

    let (code, out) = run(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(copied(&out), 0, "{out}");
    assert!(!out.contains("updated in place"), "{out}");

    // The delta.
    let moved = format!("/{USER}/work/event-7.ics");
    let renumbered = format!("/{USER}/people/contact-3.vcf");
    let done = format!("/{USER}/todo/task-2.ics");
    let occurrence = format!("/{USER}/work/series.ics");
    let etags: Vec<String> = [&moved, &renumbered, &done, &occurrence]
        .iter()
        .map(|href| etag_of(&target, href))
        .collect();
    put(&source, &moved, &event(7, 11));
    put(&source, &renumbered, &contact(3, "+49 30 2000"));
    put(&source, &done, &task(2, "COMPLETED"));
    put(&source, &occurrence, &series("Moved twice"));
    let (status, _, _) = source.request(
        USER,
        "DELETE",
        &format!("/{USER}/people/contact-9.vcf"),
        &[],
        "",
    );
    assert!(status == 200 || status == 204);
    let (code, out) = run(&["--delete-removed"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("4 items updated in place"), "{out}");
    assert_eq!(copied(&out), 0, "{out}");
    assert_eq!(holdings(&target), holdings(&source));
    for (href, before) in [&moved, &renumbered, &done, &occurrence].iter().zip(&etags) {
        assert_ne!(
            &etag_of(&target, href),
            before,
            "{href}: a new version, same href"
        );
    }

    // A target-side edit meets a source edit: a conflict, the target's kept.
    let edited = format!("/{USER}/work/event-8.ics");
    put(&target, &edited, &event(8, 16));
    put(&source, &edited, &event(8, 17));
    let (_, out) = run(&[]);
    assert!(out.contains("in conflict"), "{out}");
    let (_, _, kept) = target.request(USER, "GET", &edited, &[], "");
    assert_eq!(
        canonical(&kept),
        canonical(&event(8, 16)),
        "never overwritten"
    );
}
