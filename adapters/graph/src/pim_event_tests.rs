use super::*;

const SERIES: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n\
BEGIN:VEVENT\r\nUID:series-1@example.com\r\nDTSTAMP:20261201T100000Z\r\n\
DTSTART;TZID=Europe/Berlin:20261207T100000\r\nDTEND;TZID=Europe/Berlin:20261207T110000\r\n\
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6\r\nEXDATE;TZID=Europe/Berlin:20261221T100000\r\n\
SUMMARY:Weekly sync\\, all hands\r\nDESCRIPTION:Agenda:\\nfirst line\r\nLOCATION:Room 1\r\n\
CATEGORIES:Work,Team\r\nCLASS:PRIVATE\r\nTRANSP:OPAQUE\r\n\
ATTENDEE;CN=Jörg;ROLE=REQ-PARTICIPANT:mailto:joerg@example.com\r\n\
ORGANIZER:mailto:boss@example.com\r\nX-SPECIAL:kept nowhere\r\n\
ATTACH;FMTTYPE=text/plain;ENCODING=BASE64;VALUE=BINARY;X-FILENAME=agenda.txt:SGFsbG8=\r\n\
BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:series-1@example.com\r\nRECURRENCE-ID;TZID=Europe/Berlin:20261214T100000\r\n\
DTSTART;TZID=Europe/Berlin:20261214T113000\r\nDTEND;TZID=Europe/Berlin:20261214T123000\r\n\
SUMMARY:Weekly sync (moved)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

#[test]
fn a_series_with_an_exception_a_cancellation_and_people_maps_and_names_its_drops() {
    let write = to_graph(SERIES).expect("converts");
    assert_eq!(write.key, "series-1@example.com");
    let body = &write.body;
    assert_eq!(body["subject"], "Weekly sync, all hands");
    assert_eq!(body["body"]["content"], "Agenda:\nfirst line");
    assert_eq!(
        body["start"],
        json!({"dateTime": "2026-12-07T10:00:00", "timeZone": "Europe/Berlin"})
    );
    assert_eq!(body["recurrence"]["pattern"]["type"], "weekly");
    assert_eq!(
        body["recurrence"]["pattern"]["daysOfWeek"],
        json!(["monday"])
    );
    assert_eq!(body["recurrence"]["range"]["numberOfOccurrences"], 6);
    assert_eq!(body["sensitivity"], "private");
    assert_eq!(body["reminderMinutesBeforeStart"], 15);
    assert_eq!(body["categories"], json!(["Work", "Team"]));
    assert!(
        body.get("attendees").is_none(),
        "no invitations: attendees are kept aside"
    );
    assert!(
        write
            .people
            .as_deref()
            .is_some_and(|p| p.contains("joerg@example.com") && p.contains("ORGANIZER"))
    );
    assert_eq!(write.cancelled.len(), 1);
    assert_eq!(
        write.cancelled[0].format("%Y%m%dT%H%M%SZ").to_string(),
        "20261221T090000Z"
    );
    assert_eq!(write.exceptions.len(), 1);
    assert_eq!(write.exceptions[0].1["subject"], "Weekly sync (moved)");
    assert_eq!(write.dropped, vec!["X-SPECIAL".to_string()]);
}

#[test]
fn back_from_graph_the_series_reads_as_it_was_written() {
    let write = to_graph(SERIES).expect("converts");
    let exception = {
        let mut e = write.exceptions[0].1.clone();
        e["originalStart"] = json!("2026-12-14T09:00:00Z");
        e
    };
    let text = from_graph(
        &write.body,
        &write.key,
        write.people.as_deref(),
        &[exception],
        &write.cancelled,
        &write.attachments,
    );
    let again = to_graph(&text).expect("converts again");
    assert_eq!(again.body, write.body);
    assert_eq!(again.people, write.people);
    assert_eq!(again.cancelled, write.cancelled);
    assert_eq!(again.exceptions, write.exceptions);
    assert_eq!(again.attachments, write.attachments);
    assert_eq!(write.attachments.len(), 1);
    assert_eq!(write.attachments[0]["name"], "agenda.txt");
    assert_eq!(write.attachments[0]["contentBytes"], "SGFsbG8=");
    assert!(
        text.contains("EXDATE;TZID=Europe/Berlin:20261221T100000"),
        "{text}"
    );
    assert!(
        text.contains("RECURRENCE-ID;TZID=Europe/Berlin:20261214T100000"),
        "{text}"
    );
}

#[test]
fn a_rule_graph_cannot_say_refuses_the_item() {
    let hourly = SERIES.replace(
        "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6",
        "RRULE:FREQ=HOURLY;COUNT=6",
    );
    let refused = to_graph(&hourly).expect_err("refused");
    assert!(refused.contains("RRULE"), "{refused}");
}

#[test]
fn every_row_of_the_fidelity_table_has_a_known_fate() {
    for (_, fate, _) in FIDELITY {
        assert!(["lossless", "mapped", "kept", "normalised", "dropped"].contains(fate));
    }
}

#[test]
fn rules_graph_would_say_otherwise_are_refused_not_rewritten() {
    for rule in [
        "FREQ=MONTHLY;BYDAY=MO",
        "FREQ=MONTHLY;BYDAY=1MO,3WE",
        "FREQ=WEEKLY;BYMONTH=3",
        "FREQ=DAILY;BYMONTHDAY=2",
        "FREQ=WEEKLY;BYDAY=MO;BYSETPOS=1",
    ] {
        let text = SERIES.replace(
            "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6",
            &format!("RRULE:{rule}"),
        );
        let refused = to_graph(&text).expect_err(rule);
        assert!(
            refused.contains("RRULE Graph cannot hold"),
            "{rule}: {refused}"
        );
    }
    let monthly = SERIES.replace(
        "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6",
        "RRULE:FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-1;UNTIL=20270331T090000Z",
    );
    let write = to_graph(&monthly).expect("the last Monday of the month");
    assert_eq!(write.body["recurrence"]["pattern"]["index"], "last");
    assert_eq!(write.body["recurrence"]["range"]["endDate"], "2027-03-31");
    let back = from_graph(&write.body, &write.key, None, &[], &[], &[]);
    // The range's last day, to its last second in the series' zone, in UTC.
    assert!(back.contains("UNTIL=20270331T215959Z"), "{back}");
}

#[test]
fn a_zone_without_a_known_name_is_placed_by_its_definition_or_refused() {
    // Named by the definition's X-LIC-LOCATION (as Mozilla's clients write it): placed.
    let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:My Office Time\r\n\
        X-LIC-LOCATION:Europe/Moscow\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n\
        TZOFFSETFROM:+0300\r\nTZOFFSETTO:+0300\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
        BEGIN:VEVENT\r\nUID:z@example.com\r\nDTSTART;TZID=My Office Time:20261210T100000\r\n\
        DURATION:PT1H\r\nSUMMARY:Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let write = to_graph(text).expect("converts");
    assert_eq!(
        write.body["start"],
        json!({"dateTime": "2026-12-10T07:00:00", "timeZone": "UTC"})
    );
    assert!(
        write.dropped.iter().any(|d| d.contains("My Office Time")),
        "{:?}",
        write.dropped
    );
    // A definition calcard cannot name: refused with the reason, never shifted silently.
    let unnamed = text.replace("X-LIC-LOCATION:Europe/Moscow\r\n", "");
    let refused = to_graph(&unnamed).expect_err("refused");
    assert!(refused.contains("cannot be placed in time"), "{refused}");
    let huge = text.replace("DURATION:PT1H", "DURATION:P14000000W");
    assert!(
        to_graph(&huge).is_err(),
        "a duration out of range is refused, not a panic"
    );
}

#[test]
fn a_task_in_a_calendar_of_events_is_refused_with_the_way_out() {
    let task = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nBEGIN:VTODO\r\n\
UID:task-1@example.com\r\nSUMMARY:File the report\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
    let refused = to_graph(task).expect_err("refused");
    assert!(
        refused.starts_with("a task in a calendar of events"),
        "{refused}"
    );
    assert!(refused.contains("a calendar of their own"), "{refused}");
    let empty = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nEND:VCALENDAR\r\n";
    assert_eq!(to_graph(empty).err().as_deref(), Some("no event in it"));
}
