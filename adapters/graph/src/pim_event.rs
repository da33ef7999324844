//! An iCalendar event (VEVENT, with its overridden occurrences) as a Graph event, and back:
//! sans-I/O, parsed by calcard. The fidelity table (`FIDELITY`, in the README too) says what
//! goes through as it is, what is mapped, and what is dropped; every drop is named per item.
//! - Times: `DTSTART`/`DTEND` (or `DURATION`) with their `TZID` (IANA or Windows names) go as
//!   `start`/`end` in that zone; the service shows them in UTC with `originalStartTimeZone`,
//!   from which the way back restores the zone. A `DATE` value is an all-day event. A
//!   floating time is taken as UTC (mapped).
//! - `RRULE` goes as a patternedRecurrence when Graph can say it (daily, weekly on days,
//!   monthly or yearly on a day or a relative weekday; ending on a date, after a count, or
//!   never); a rule it cannot say refuses the item (reported), since a wrong series is worse
//!   than none. `EXDATE`s are cancelled occurrences; each overridden occurrence
//!   (`RECURRENCE-ID`) is an update of that occurrence (subject, times, location, description).
//! - Attendees and organizer are kept in an extended property, not in `attendees`: a Graph
//!   event created with attendees sends them invitations, and a migration must not mail
//!   everyone its calendars mention. Reported per item.

use base64::Engine as _;
use calcard::common::PartialDateTime;
use calcard::common::timezone::Tz;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameterName,
    ICalendarParameterValue, ICalendarProperty, ICalendarValue,
};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{Value, json};

use crate::pim::escape;

/// How each iCalendar property of an event fares in Microsoft 365 (checked by a test).
pub const FIDELITY: &[(&str, &str, &str)] = &[
    ("SUMMARY", "lossless", "subject"),
    ("DESCRIPTION", "lossless", "body (text)"),
    ("LOCATION", "lossless", "location.displayName"),
    (
        "DTSTART, DTEND",
        "lossless",
        "start, end with their zone (IANA or Windows name)",
    ),
    ("DURATION", "mapped", "end = start + duration"),
    ("DTSTART;VALUE=DATE", "lossless", "isAllDay"),
    (
        "RRULE",
        "mapped",
        "recurrence (patterns Graph can say; others refuse the item)",
    ),
    ("EXDATE", "mapped", "cancelled occurrences"),
    (
        "RECURRENCE-ID",
        "mapped",
        "exceptions: subject, times, location, description",
    ),
    ("CATEGORIES", "lossless", "categories"),
    (
        "CLASS",
        "mapped",
        "sensitivity (PUBLIC normal, PRIVATE private, CONFIDENTIAL confidential; PUBLIC, the default, is not written back)",
    ),
    (
        "TRANSP",
        "mapped",
        "showAs (OPAQUE busy, TRANSPARENT free; OPAQUE, the default, is not written back)",
    ),
    (
        "VALARM",
        "mapped",
        "the first display alarm before the start: reminderMinutesBeforeStart (its text is not kept; other alarms are dropped)",
    ),
    (
        "ATTENDEE, ORGANIZER",
        "kept",
        "an extended property (no invitations sent)",
    ),
    (
        "ATTACH;VALUE=BINARY",
        "lossless",
        "file attachments (name from X-FILENAME, type from FMTTYPE)",
    ),
    ("UID", "kept", "an extended property (ferry's key)"),
    (
        "PRODID, DTSTAMP, CREATED, LAST-MODIFIED, SEQUENCE",
        "normalised",
        "set by the service",
    ),
    (
        "anything else (X-*, URL, GEO, ATTACH by link, zones Graph cannot name, more alarms…)",
        "dropped",
        "named per item in the report",
    ),
];

/// What an occurrence of a series can change on its own.
const EXCEPTION_FIELDS: &[&str] = &["subject", "body", "location", "start", "end", "isAllDay"];

/// What creating one event takes.
#[derive(Debug, Clone, PartialEq)]
pub struct EventWrite {
    pub key: String,
    /// The master's (or single event's) JSON.
    pub body: Value,
    /// Attendee and organizer lines, kept in an extended property.
    pub people: Option<String>,
    /// Overridden occurrences: original start (UTC) and the fields that differ.
    pub exceptions: Vec<(DateTime<Utc>, Value)>,
    /// Cancelled occurrences' original starts (UTC).
    pub cancelled: Vec<DateTime<Utc>>,
    /// Attachments carried in the event: Graph fileAttachments (name, contentType,
    /// contentBytes), added after it is made.
    pub attachments: Vec<Value>,
    /// What could not be carried, named.
    pub dropped: Vec<String>,
}

fn text_of(entry: &ICalendarEntry) -> Option<String> {
    entry.values.iter().find_map(|v| match v {
        ICalendarValue::Text(t) => Some(t.clone()),
        _ => None,
    })
}

fn param(entry: &ICalendarEntry, name: ICalendarParameterName) -> Option<&str> {
    entry
        .params
        .iter()
        .find_map(|p| match (&p.value, p.name == name) {
            (ICalendarParameterValue::Text(t), true) => Some(t.as_str()),
            _ => None,
        })
}

fn date_of(entry: &ICalendarEntry) -> Option<&PartialDateTime> {
    entry.values.iter().find_map(|v| match v {
        ICalendarValue::PartialDateTime(d) => Some(d.as_ref()),
        _ => None,
    })
}

/// A moment of an entry: (local time, zone name, all day).
/// A zone that is neither an IANA nor a Windows name is placed in time by the object's own
/// VTIMEZONE (calcard's resolver) and written in UTC; one it cannot place refuses the item.
fn moment(entry: &ICalendarEntry, calendar: &ICalendar) -> Option<(NaiveDateTime, String, bool)> {
    let date = date_of(entry)?;
    let all_day = date.hour.is_none();
    let result = date.to_date_time()?;
    match (result.offset, param(entry, ICalendarParameterName::Tzid)) {
        (Some(offset), _) => {
            let utc = result
                .date_time
                .checked_sub_signed(chrono::TimeDelta::seconds(offset.local_minus_utc() as i64))?;
            Some((utc, "UTC".into(), all_day))
        }
        (None, Some(tz)) if tz.parse::<Tz>().is_ok() => {
            Some((result.date_time, tz.to_string(), all_day))
        }
        (None, Some(tz)) => {
            let zone = calendar.build_tz_resolver().resolve(tz)?;
            let at = zone.from_local_datetime(&result.date_time).earliest()?;
            Some((at.with_timezone(&Utc).naive_utc(), "UTC".into(), all_day))
        }
        (None, None) => Some((result.date_time, "UTC".into(), all_day)),
    }
}

/// The zone an entry names when Graph cannot take it by name (written in UTC instead).
fn odd_zone(entry: &ICalendarEntry) -> Option<String> {
    param(entry, ICalendarParameterName::Tzid)
        .filter(|tz| tz.parse::<Tz>().is_err())
        .map(|tz| format!("TZID {tz} (not a zone Graph knows by name: the times go in UTC)"))
}

fn utc_of(local: &NaiveDateTime, zone: &str) -> Option<DateTime<Utc>> {
    let tz: Tz = zone.parse().ok()?;
    tz.from_local_datetime(local)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
}

fn graph_time(local: &NaiveDateTime, zone: &str) -> Value {
    json!({"dateTime": local.format("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": zone})
}

use crate::pim_recurrence::{recurrence, rrule_of};

/// The event fields of one VEVENT; what it drops is added to `dropped`.
fn fields(
    component: &ICalendarComponent,
    calendar: &ICalendar,
    dropped: &mut Vec<String>,
    master: bool,
) -> Result<Value, String> {
    let mut out = serde_json::Map::new();
    let mut start = None;
    let mut end = None;
    let mut duration = None;
    for entry in &component.entries {
        let name = entry.name.as_str().to_string();
        match &entry.name {
            ICalendarProperty::Summary => {
                out.insert("subject".into(), json!(text_of(entry).unwrap_or_default()));
            }
            ICalendarProperty::Description => {
                out.insert(
                    "body".into(),
                    json!({"contentType": "text", "content": text_of(entry).unwrap_or_default()}),
                );
            }
            ICalendarProperty::Location => {
                out.insert(
                    "location".into(),
                    json!({"displayName": text_of(entry).unwrap_or_default()}),
                );
            }
            ICalendarProperty::Dtstart => {
                start = Some(
                    moment(entry, calendar)
                        .ok_or("a DTSTART in a zone that cannot be placed in time")?,
                );
                dropped.extend(odd_zone(entry));
            }
            ICalendarProperty::Dtend => {
                end = Some(
                    moment(entry, calendar)
                        .ok_or("a DTEND in a zone that cannot be placed in time")?,
                );
                dropped.extend(odd_zone(entry));
            }
            ICalendarProperty::Duration => {
                duration = entry.values.iter().find_map(|v| match v {
                    ICalendarValue::Duration(d) => Some(chrono::TimeDelta::seconds(
                        (i64::from(d.weeks) * 7 * 86400
                            + i64::from(d.days) * 86400
                            + i64::from(d.hours) * 3600
                            + i64::from(d.minutes) * 60
                            + i64::from(d.seconds))
                            * if d.neg { -1 } else { 1 },
                    )),
                    _ => None,
                })
            }
            ICalendarProperty::Categories => {
                let list: Vec<String> = entry
                    .values
                    .iter()
                    .filter_map(|v| match v {
                        ICalendarValue::Text(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect();
                let mut have: Vec<Value> = out
                    .get("categories")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                have.extend(list.into_iter().map(Value::from));
                out.insert("categories".into(), Value::Array(have));
            }
            ICalendarProperty::Class => {
                let value = entry
                    .values
                    .iter()
                    .find_map(|v| match v {
                        ICalendarValue::Classification(c) => {
                            Some(format!("{c:?}").to_ascii_uppercase())
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                out.insert(
                    "sensitivity".into(),
                    json!(match value.as_str() {
                        "PRIVATE" => "private",
                        "CONFIDENTIAL" => "confidential",
                        _ => "normal",
                    }),
                );
            }
            ICalendarProperty::Transp => {
                let value = entry
                    .values
                    .iter()
                    .find_map(|v| match v {
                        ICalendarValue::Transparency(t) => {
                            Some(format!("{t:?}").to_ascii_uppercase())
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                out.insert(
                    "showAs".into(),
                    json!(if value == "TRANSPARENT" {
                        "free"
                    } else {
                        "busy"
                    }),
                );
            }
            // The series' attachments are carried apart (`to_graph`).
            ICalendarProperty::Attach if master => {}
            ICalendarProperty::Uid
            | ICalendarProperty::RecurrenceId
            | ICalendarProperty::Exdate
            | ICalendarProperty::Attendee
            | ICalendarProperty::Organizer
            | ICalendarProperty::Rrule
            | ICalendarProperty::Dtstamp
            | ICalendarProperty::Created
            | ICalendarProperty::LastModified
            | ICalendarProperty::Sequence => {}
            _ => dropped.push(name),
        }
    }
    // Alarms: the first display alarm relative to the start.
    let mut reminded = false;
    for child in component
        .component_ids
        .iter()
        .filter_map(|id| calendar.components.get(*id as usize))
    {
        if child.component_type != ICalendarComponentType::VAlarm {
            continue;
        }
        let trigger = child
            .entries
            .iter()
            .find(|e| e.name == ICalendarProperty::Trigger)
            .and_then(|e| {
                e.values.iter().find_map(|v| match v {
                    ICalendarValue::Duration(d)
                        if d.neg || (d.weeks | d.days | d.hours | d.minutes | d.seconds) == 0 =>
                    {
                        Some(
                            i64::from(d.weeks) * 10080
                                + i64::from(d.days) * 1440
                                + i64::from(d.hours) * 60
                                + i64::from(d.minutes),
                        )
                    }
                    _ => None,
                })
            });
        match trigger {
            Some(minutes) if !reminded => {
                out.insert("isReminderOn".into(), json!(true));
                out.insert("reminderMinutesBeforeStart".into(), json!(minutes));
                reminded = true;
            }
            _ => dropped.push("VALARM".into()),
        }
    }
    if master {
        // Every field ferry maps, given: an update clears what the source no longer has, and
        // Graph's defaults (normal, busy) are written, not assumed.
        for (name, empty) in [
            ("subject", json!("")),
            ("body", json!({"contentType": "text", "content": ""})),
            ("location", json!({"displayName": ""})),
            ("categories", json!([])),
            ("sensitivity", json!("normal")),
            ("showAs", json!("busy")),
            ("isReminderOn", json!(false)),
            ("recurrence", Value::Null),
        ] {
            out.entry(name).or_insert(empty);
        }
    }
    if let Some((local, zone, all_day)) = start {
        let finish = match (end, duration) {
            (Some((local, zone, _)), _) => (local, zone),
            (None, Some(d)) => (
                local
                    .checked_add_signed(d)
                    .ok_or("a DURATION out of range")?,
                zone.clone(),
            ),
            (None, None) if all_day => (local + chrono::TimeDelta::days(1), zone.clone()),
            (None, None) => (local, zone.clone()),
        };
        out.insert("isAllDay".into(), json!(all_day));
        out.insert("start".into(), graph_time(&local, &zone));
        out.insert("end".into(), graph_time(&finish.0, &finish.1));
        if master
            && let Some(rule) = component
                .entries
                .iter()
                .find(|e| e.name == ICalendarProperty::Rrule)
        {
            out.insert("recurrence".into(), recurrence(rule, &local, &zone)?);
        }
    } else if master {
        return Err("an event without DTSTART".into());
    }
    Ok(Value::Object(out))
}

/// An iCalendar object holding one event (and its overridden occurrences) as a Graph event.
pub fn to_graph(text: &str) -> Result<EventWrite, String> {
    let calendar = ICalendar::parse(text).map_err(|_| "not an iCalendar object".to_string())?;
    let events: Vec<&ICalendarComponent> = calendar
        .components
        .iter()
        .filter(|c| c.component_type == ICalendarComponentType::VEvent)
        .collect();
    let master = events
        .iter()
        .find(|c| {
            !c.entries
                .iter()
                .any(|e| e.name == ICalendarProperty::RecurrenceId)
        })
        .ok_or_else(|| {
            let other = calendar
                .components
                .iter()
                .find_map(|c| match c.component_type {
                    ICalendarComponentType::VTodo => Some("a task"),
                    ICalendarComponentType::VJournal => Some("a journal"),
                    _ => None,
                });
            match other {
                Some(what) => format!(
                    "{what} in a calendar of events: Microsoft 365's calendars hold events only \
                     (give tasks a calendar of their own: it becomes a To Do list)"
                ),
                None => "no event in it".to_string(),
            }
        })?;
    let key = master
        .entries
        .iter()
        .find(|e| e.name == ICalendarProperty::Uid)
        .and_then(text_of)
        .ok_or("an event without UID")?;
    let mut dropped = Vec::new();
    let body = fields(master, &calendar, &mut dropped, true)?;
    let mut attachments = Vec::new();
    for (index, entry) in master
        .entries
        .iter()
        .filter(|e| e.name == ICalendarProperty::Attach)
        .enumerate()
    {
        // calcard decodes a base64 value, and keeps one that is UTF-8 as text; a link is a
        // URI value.
        let bytes = entry.values.iter().find_map(|v| match v {
            ICalendarValue::Binary(bytes) => Some(bytes.clone()),
            ICalendarValue::Text(text) => Some(text.clone().into_bytes()),
            _ => None,
        });
        let Some(bytes) = bytes else {
            dropped.push("ATTACH (a link)".into());
            continue;
        };
        let named = |wanted: &str| {
            entry.params.iter().find_map(|p| match (&p.name, &p.value) {
                (ICalendarParameterName::Other(name), ICalendarParameterValue::Text(value))
                    if name.eq_ignore_ascii_case(wanted) =>
                {
                    Some(value.clone())
                }
                _ => None,
            })
        };
        let name = named("X-FILENAME").unwrap_or_else(|| format!("attachment-{}", index + 1));
        let kind = param(entry, ICalendarParameterName::Fmttype)
            .map(str::to_string)
            .unwrap_or_else(|| "application/octet-stream".into());
        attachments.push(json!({
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": name,
            "contentType": kind,
            "contentBytes": base64::engine::general_purpose::STANDARD.encode(&bytes),
        }));
    }
    let people: Vec<String> = master
        .entries
        .iter()
        .filter(|e| {
            matches!(
                e.name,
                ICalendarProperty::Attendee | ICalendarProperty::Organizer
            )
        })
        .map(|e| {
            let mut line = String::new();
            let _ = e.write_to(&mut line);
            line
        })
        .collect();
    let start_zone = body["start"]["timeZone"]
        .as_str()
        .unwrap_or("UTC")
        .to_string();
    let mut cancelled = Vec::new();
    for entry in master
        .entries
        .iter()
        .filter(|e| e.name == ICalendarProperty::Exdate)
    {
        for value in &entry.values {
            if let ICalendarValue::PartialDateTime(d) = value
                && let Some(r) = d.to_date_time()
            {
                let zone = param(entry, ICalendarParameterName::Tzid).unwrap_or(&start_zone);
                let at = match r.offset {
                    Some(_) => Some(Utc.from_utc_datetime(&r.date_time)),
                    None => utc_of(&r.date_time, zone).or_else(|| {
                        let tz = calendar.build_tz_resolver().resolve(zone)?;
                        let at = tz.from_local_datetime(&r.date_time).earliest()?;
                        Some(at.with_timezone(&Utc))
                    }),
                };
                match at {
                    Some(at) => cancelled.push(at),
                    None => {
                        dropped.push(format!("EXDATE in zone {zone} (cannot be placed in time)"))
                    }
                }
            }
        }
    }
    let mut exceptions = Vec::new();
    for component in events.iter().filter(|c| {
        c.entries
            .iter()
            .any(|e| e.name == ICalendarProperty::RecurrenceId)
    }) {
        let rid = component
            .entries
            .iter()
            .find(|e| e.name == ICalendarProperty::RecurrenceId)
            .and_then(|e| moment(e, &calendar))
            .ok_or("a RECURRENCE-ID that is not a time")?;
        let at = utc_of(&rid.0, &rid.1).ok_or("a RECURRENCE-ID in an unknown zone")?;
        let mut changes = fields(component, &calendar, &mut dropped, false)?;
        if let Some(map) = changes.as_object_mut() {
            // Only what an occurrence can change on its own, all of it (an occurrence in
            // iCalendar replaces the series' properties; in Graph it inherits them).
            for (name, _) in map
                .iter()
                .filter(|(k, _)| !EXCEPTION_FIELDS.contains(&k.as_str()))
            {
                dropped.push(format!("{name} of an occurrence"));
            }
            map.retain(|k, _| EXCEPTION_FIELDS.contains(&k.as_str()));
            map.entry("subject").or_insert_with(|| json!(""));
            map.entry("body")
                .or_insert_with(|| json!({"contentType": "text", "content": ""}));
            map.entry("location")
                .or_insert_with(|| json!({"displayName": ""}));
        }
        exceptions.push((at, changes));
    }
    dropped.sort();
    dropped.dedup();
    Ok(EventWrite {
        key,
        body,
        people: (!people.is_empty()).then(|| people.join("\r\n")),
        exceptions,
        cancelled,
        attachments,
        dropped,
    })
}

/// A shown dateTimeTimeZone back as a local time in `zone`.
fn local_in(value: &Value, zone: &str) -> Option<NaiveDateTime> {
    let text = value["dateTime"].as_str()?;
    let local =
        NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let at = utc_of(&local, value["timeZone"].as_str().unwrap_or("UTC"))?;
    let tz: Tz = zone.parse().ok()?;
    Some(at.with_timezone(&tz).naive_local())
}

fn time_line(name: &str, value: &Value, zone: &str, all_day: bool) -> Option<String> {
    if all_day {
        let date = value["dateTime"].as_str()?.get(..10)?.replace('-', "");
        return Some(format!("{name};VALUE=DATE:{date}\r\n"));
    }
    let local = local_in(value, zone)?;
    Some(if zone.eq_ignore_ascii_case("UTC") {
        format!("{name}:{}Z\r\n", local.format("%Y%m%dT%H%M%S"))
    } else {
        format!("{name};TZID={zone}:{}\r\n", local.format("%Y%m%dT%H%M%S"))
    })
}

fn vevent(
    event: &Value,
    uid: &str,
    zone: &str,
    recurrence_id: Option<&str>,
    extra: &str,
) -> String {
    let all_day = event["isAllDay"].as_bool().unwrap_or(false);
    let mut out = format!("BEGIN:VEVENT\r\nUID:{}\r\n", escape(uid));
    if let Some(rid) = recurrence_id {
        out.push_str(rid);
    }
    if let Some(subject) = event["subject"].as_str().filter(|s| !s.is_empty()) {
        out.push_str(&format!("SUMMARY:{}\r\n", escape(subject)));
    }
    if let Some(body) = event["body"]["content"].as_str().filter(|b| !b.is_empty()) {
        out.push_str(&format!("DESCRIPTION:{}\r\n", escape(body)));
    }
    if let Some(location) = event["location"]["displayName"]
        .as_str()
        .filter(|l| !l.is_empty())
    {
        out.push_str(&format!("LOCATION:{}\r\n", escape(location)));
    }
    let end_zone = event["originalEndTimeZone"]
        .as_str()
        .or(event["end"]["timeZone"].as_str())
        .unwrap_or(zone)
        .to_string();
    out.extend(time_line("DTSTART", &event["start"], zone, all_day));
    out.extend(time_line("DTEND", &event["end"], &end_zone, all_day));
    if recurrence_id.is_some() {
        // An occurrence: what it can change on its own (the series' other properties are
        // the series').
        out.push_str("END:VEVENT\r\n");
        return out;
    }
    if let Some(categories) = event["categories"].as_array().filter(|c| !c.is_empty()) {
        let list: Vec<String> = categories
            .iter()
            .filter_map(|c| c.as_str().map(escape))
            .collect();
        out.push_str(&format!("CATEGORIES:{}\r\n", list.join(",")));
    }
    match event["sensitivity"].as_str() {
        Some("private") => out.push_str("CLASS:PRIVATE\r\n"),
        Some("confidential") => out.push_str("CLASS:CONFIDENTIAL\r\n"),
        // PUBLIC, the default, is not written back (Graph always says "normal").
        _ => {}
    }
    // OPAQUE, the default, is not written back (Graph always says "busy").
    if event["showAs"].as_str() == Some("free") {
        out.push_str("TRANSP:TRANSPARENT\r\n");
    }
    out.push_str(extra);
    if event["isReminderOn"].as_bool() == Some(true) && recurrence_id.is_none() {
        let minutes = event["reminderMinutesBeforeStart"].as_i64().unwrap_or(15);
        out.push_str(&format!("BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT{minutes}M\r\nEND:VALARM\r\n"));
    }
    out.push_str("END:VEVENT\r\n");
    out
}

/// A Graph event (as shown: times in UTC, original zones named), its exceptions and
/// cancelled occurrences' original starts, as an iCalendar object. `key` is the UID (ferry's
/// kept key, else the event's `iCalUId`); `people` the attendee and organizer lines kept.
pub fn from_graph(
    master: &Value,
    key: &str,
    people: Option<&str>,
    exceptions: &[Value],
    cancelled: &[DateTime<Utc>],
    attachments: &[Value],
) -> String {
    let zone = master["originalStartTimeZone"]
        .as_str()
        .or(master["start"]["timeZone"].as_str())
        .unwrap_or("UTC")
        .to_string();
    let zone = if zone.parse::<Tz>().is_ok() {
        zone
    } else {
        "UTC".to_string()
    };
    let all_day = master["isAllDay"].as_bool().unwrap_or(false);
    let mut extra = String::new();
    if let Some(rule) = master
        .get("recurrence")
        .filter(|r| !r.is_null())
        .and_then(|r| rrule_of(r, &zone, all_day))
    {
        extra.push_str(&format!("RRULE:{rule}\r\n"));
    }
    // An occurrence is named in the series' zone, as clients write it.
    let tz: Tz = zone.parse().unwrap_or(Tz::UTC);
    let named = |at: &DateTime<Utc>| {
        if all_day {
            // An all-day series' occurrences are dates (the service's original start is the
            // date's midnight in the series' zone).
            format!(";VALUE=DATE:{}", at.with_timezone(&tz).format("%Y%m%d"))
        } else if zone.eq_ignore_ascii_case("UTC") {
            format!(":{}", at.format("%Y%m%dT%H%M%SZ"))
        } else {
            format!(
                ";TZID={zone}:{}",
                at.with_timezone(&tz).naive_local().format("%Y%m%dT%H%M%S")
            )
        }
    };
    let mut sorted_cancelled: Vec<&DateTime<Utc>> = cancelled.iter().collect();
    sorted_cancelled.sort();
    for at in sorted_cancelled {
        extra.push_str(&format!("EXDATE{}\r\n", named(at)));
    }
    let mut files: Vec<(&str, &str, &str)> = attachments
        .iter()
        .filter_map(|a| {
            Some((
                a["name"].as_str()?,
                a["contentType"]
                    .as_str()
                    .unwrap_or("application/octet-stream"),
                a["contentBytes"].as_str()?,
            ))
        })
        .collect();
    files.sort();
    for (name, kind, bytes) in files {
        let quoted = |v: &str| {
            if v.contains([';', ':', ',']) {
                format!("\"{}\"", v.replace('"', ""))
            } else {
                v.to_string()
            }
        };
        extra.push_str(&format!(
            "ATTACH;FMTTYPE={};ENCODING=BASE64;VALUE=BINARY;X-FILENAME={}:{bytes}\r\n",
            quoted(kind),
            quoted(name)
        ));
    }
    if let Some(people) = people {
        for line in people.split("\r\n").filter(|l| !l.is_empty()) {
            extra.push_str(line);
            extra.push_str("\r\n");
        }
    }
    let mut out =
        String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ferry//Microsoft 365//EN\r\n");
    out.push_str(&vevent(master, key, &zone, None, &extra));
    let mut sorted: Vec<&Value> = exceptions.iter().collect();
    sorted.sort_by_key(|e| e["originalStart"].as_str().unwrap_or_default().to_string());
    for exception in sorted {
        let Some(original) = exception["originalStart"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        else {
            continue;
        };
        let rid = format!("RECURRENCE-ID{}\r\n", named(&original.with_timezone(&Utc)));
        out.push_str(&vevent(exception, key, &zone, Some(&rid), ""));
    }
    out.push_str("END:VCALENDAR\r\n");
    // Written again by the parser: one folding and escaping for every line.
    ICalendar::parse(&out).map(|c| c.to_string()).unwrap_or(out)
}

#[cfg(test)]
#[path = "pim_event_tests.rs"]
mod tests;
