//! The acceptance set of calendars and address books: 2,000 events (every tenth a weekly series
//! with an overridden and a cancelled occurrence; four time zones; attendees, an organizer, an
//! alarm; every seventh with an attachment), 1,000 contacts (a photo, two addresses, three
//! numbers, two e-mail addresses, non-ASCII names), 300 tasks and 50 journal entries. Written
//! straight into a stopped or running Radicale's storage (its collections made first over
//! HTTP), which reads items as files: seeding takes seconds, not the minutes 3,350 PUTs would.

use std::path::Path;

pub const EVENTS: usize = 2000;
pub const CONTACTS: usize = 1000;
pub const TASKS: usize = 300;
pub const JOURNALS: usize = 50;
/// Every item of the set.
pub const ALL: usize = EVENTS + CONTACTS + TASKS + JOURNALS;

const BERLIN: &str = "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\n\
TZOFFSETTO:+0200\r\nTZNAME:CEST\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n\
END:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n\
DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n";

const NEW_YORK: &str = "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:-0500\r\n\
TZOFFSETTO:-0400\r\nTZNAME:EDT\r\nDTSTART:19700308T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\n\
END:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nTZNAME:EST\r\n\
DTSTART:19701101T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n";

const TOKYO: &str = "BEGIN:VTIMEZONE\r\nTZID:Asia/Tokyo\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0900\r\n\
TZOFFSETTO:+0900\r\nTZNAME:JST\r\nDTSTART:19700101T000000\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n";

/// A small JPEG (its header is all a photo needs to be one here), base64.
pub const PHOTO: &str = "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQEw8QEBD/yQALCAABAAEBAREA/8wABgAQEAX/2gAIAQEAAD8A0s8g/9k=";

/// Event `n`, starting at `hour` (local): its text.
pub fn event(n: usize, hour: u32) -> String {
    let (zone, tz) = match n % 4 {
        0 => (Some("Europe/Berlin"), BERLIN),
        1 => (Some("America/New_York"), NEW_YORK),
        2 => (Some("Asia/Tokyo"), TOKYO),
        _ => (None, ""),
    };
    let day = 1 + n % 28;
    let month = 1 + (n / 28) % 12;
    let at = |h: u32| match zone {
        Some(zone) => format!(";TZID={zone}:2027{month:02}{day:02}T{h:02}0000"),
        None => format!(":2027{month:02}{day:02}T{h:02}0000Z"),
    };
    let attachment = if n.is_multiple_of(7) {
        "ATTACH;ENCODING=BASE64;VALUE=BINARY;FMTTYPE=text/plain;X-FILENAME=agenda.txt:VGFnZXNvcmRudW5nCg==\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ferry tests//EN\r\n{tz}BEGIN:VEVENT\r\n\
         UID:event-{n}@ferry.test\r\nDTSTAMP:20261201T090000Z\r\nDTSTART{}\r\nDTEND{}\r\n\
         SUMMARY:Réunion {n} — Überblick\r\nLOCATION:Raum {n}\r\nDESCRIPTION:Punkt {n}\\, dann mehr\r\n\
         ATTENDEE;CN=Zoë Ångström;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:zoe{n}@ferry.test\r\n\
         ATTENDEE;CN=Łukasz;ROLE=OPT-PARTICIPANT:mailto:lukasz{n}@ferry.test\r\n\
         ORGANIZER;CN=Chef:mailto:chef@ferry.test\r\n{attachment}",
        at(hour),
        at(hour + 1)
    );
    let series = n.is_multiple_of(10);
    if series {
        out.push_str("RRULE:FREQ=WEEKLY;COUNT=8\r\n");
        out.push_str(&format!(
            "EXDATE{}\r\n",
            shifted(zone, month, day, 14, hour)
        ));
    }
    out.push_str(
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:bald\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\n",
    );
    if series {
        out.push_str(&occurrence(n, zone, month, day, hour, "verschoben"));
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}

/// The date `days` after 2027-`month`-`day` at `hour`, as a DTSTART-style value.
fn shifted(zone: Option<&str>, month: usize, day: usize, days: i64, hour: u32) -> String {
    let date = chrono::NaiveDate::from_ymd_opt(2027, month as u32, day as u32).expect("a date")
        + chrono::Duration::days(days);
    match zone {
        Some(zone) => format!(";TZID={zone}:{}T{hour:02}0000", date.format("%Y%m%d")),
        None => format!(":{}T{hour:02}0000Z", date.format("%Y%m%d")),
    }
}

/// The overridden second week of series `n`: an hour later, renamed.
fn occurrence(
    n: usize,
    zone: Option<&str>,
    month: usize,
    day: usize,
    hour: u32,
    what: &str,
) -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:event-{n}@ferry.test\r\nDTSTAMP:20261201T090000Z\r\n\
         RECURRENCE-ID{}\r\nDTSTART{}\r\nDTEND{}\r\nSUMMARY:Réunion {n} ({what})\r\nEND:VEVENT\r\n",
        shifted(zone, month, day, 7, hour),
        shifted(zone, month, day, 7, hour + 1),
        shifted(zone, month, day, 7, hour + 2),
    )
}

/// Series `n` with its overridden occurrence renamed `what`.
pub fn series_edited(n: usize, what: &str) -> String {
    let text = event(n, 10);
    text.replace("(verschoben)", &format!("({what})"))
}

/// Contact `n` with work number `number`.
pub fn contact(n: usize, number: &str) -> String {
    format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:contact-{n}@ferry.test\r\nFN:Jörg Ünal-Øster {n}\r\n\
         N:Ünal-Øster;Jörg;Ağa;Dr.;\r\nEMAIL;TYPE=INTERNET,WORK:joerg{n}@ferry.test\r\n\
         EMAIL;TYPE=INTERNET,HOME:j{n}@home.ferry.test\r\nTEL;TYPE=WORK:{number}\r\n\
         TEL;TYPE=CELL:+49 170 {n:04}\r\nTEL;TYPE=HOME:+49 30 9{n:03}\r\n\
         ADR;TYPE=HOME:;;Straße {n};Berlin;;10115;Deutschland\r\n\
         ADR;TYPE=WORK:;;Hofgasse {n};Köln;;50667;Deutschland\r\nORG:Beispiel AG;Forschung\r\n\
         NOTE:Mag grünen Tee\r\nPHOTO;ENCODING=b;TYPE=JPEG:{PHOTO}\r\nREV:20261201T090000Z\r\nEND:VCARD\r\n"
    )
}

/// Task `n` with `status`.
pub fn task(n: usize, status: &str) -> String {
    let completed = if status == "COMPLETED" {
        "COMPLETED:20261130T170000Z\r\n"
    } else {
        ""
    };
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ferry tests//EN\r\nBEGIN:VTODO\r\n\
         UID:task-{n}@ferry.test\r\nDTSTAMP:20261201T090000Z\r\nSUMMARY:Aufgabe {n}\r\n\
         STATUS:{status}\r\n{completed}DUE;VALUE=DATE:2027{:02}{:02}\r\nPRIORITY:{}\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
        1 + n % 12,
        1 + n % 28,
        1 + n % 9
    )
}

/// Journal entry `n`.
pub fn journal(n: usize) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ferry tests//EN\r\nBEGIN:VJOURNAL\r\n\
         UID:journal-{n}@ferry.test\r\nDTSTAMP:20261201T090000Z\r\nDTSTART;VALUE=DATE:20261201\r\n\
         SUMMARY:Tagebuch {n}\r\nDESCRIPTION:Heute {n}: schön\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n"
    )
}

/// Writes the set's items into the storage of an account's collections `work`, `people`,
/// `todo` and `diary` (made already), under `root` (Radicale's `collection-root/USER`).
pub fn write_into(root: &Path) {
    let write = |collection: &str, name: String, text: String| {
        std::fs::write(root.join(collection).join(name), text).expect("seed an item");
    };
    for n in 0..EVENTS {
        write("work", format!("event-{n}.ics"), event(n, 10));
    }
    for n in 0..CONTACTS {
        write(
            "people",
            format!("contact-{n}.vcf"),
            contact(n, "+49 30 1000"),
        );
    }
    for n in 0..TASKS {
        write("todo", format!("task-{n}.ics"), task(n, "NEEDS-ACTION"));
    }
    for n in 0..JOURNALS {
        write("diary", format!("journal-{n}.ics"), journal(n));
    }
}
