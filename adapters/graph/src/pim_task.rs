//! An iCalendar task (VTODO) as a To Do task, and back: sans-I/O, parsed by calcard. The
//! fidelity table (`FIDELITY`, in the README too) says what goes through; every drop is named
//! per item. To Do keeps dates as dates in a zone; a due time is kept as its date only.

use calcard::icalendar::{
    ICalendar, ICalendarComponentType, ICalendarEntry, ICalendarProperty, ICalendarValue,
};
use serde_json::{Value, json};

use crate::pim::escape;

/// How each VTODO property fares in To Do (checked by a test).
pub const FIDELITY: &[(&str, &str, &str)] = &[
    ("SUMMARY", "lossless", "title"),
    ("DESCRIPTION", "lossless", "body (text)"),
    (
        "STATUS",
        "mapped",
        "status (NEEDS-ACTION notStarted, IN-PROCESS inProgress, COMPLETED completed, CANCELLED deferred)",
    ),
    ("COMPLETED", "mapped", "completedDateTime (UTC)"),
    (
        "DUE",
        "mapped",
        "dueDateTime (its date; To Do keeps no time of day)",
    ),
    ("DTSTART", "mapped", "startDateTime (its date)"),
    (
        "PRIORITY",
        "mapped",
        "importance (1–4 high, 5 normal, 6–9 low); read back as 1 or 9, normal not written back",
    ),
    ("CATEGORIES", "lossless", "categories"),
    ("UID", "kept", "a linked resource (ferry's key)"),
    (
        "PRODID, DTSTAMP, CREATED, LAST-MODIFIED, SEQUENCE",
        "normalised",
        "set by the service",
    ),
    (
        "anything else (RRULE, VALARM, PERCENT-COMPLETE, X-*…)",
        "dropped",
        "named per item in the report",
    ),
];

/// What creating one task takes.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskWrite {
    pub key: String,
    pub body: Value,
    pub dropped: Vec<String>,
}

fn text_of(entry: &ICalendarEntry) -> Option<String> {
    entry.values.iter().find_map(|v| match v {
        ICalendarValue::Text(t) => Some(t.clone()),
        _ => None,
    })
}

/// A date (and time) value as To Do's dateTimeTimeZone: the date at midnight, UTC.
fn day_of(entry: &ICalendarEntry) -> Option<Value> {
    let date = entry.values.iter().find_map(|v| match v {
        ICalendarValue::PartialDateTime(d) => Some(d),
        _ => None,
    })?;
    Some(
        json!({"dateTime": format!("{:04}-{:02}-{:02}T00:00:00.0000000", date.year?, date.month?, date.day?), "timeZone": "UTC"}),
    )
}

/// A VTODO as a To Do task.
pub fn to_graph(text: &str) -> Result<TaskWrite, String> {
    let calendar = ICalendar::parse(text).map_err(|_| "not an iCalendar object".to_string())?;
    let todo = calendar
        .components
        .iter()
        .find(|c| c.component_type == ICalendarComponentType::VTodo)
        .ok_or("no task in it")?;
    let mut body = serde_json::Map::new();
    let mut dropped = Vec::new();
    let mut key = None;
    for entry in &todo.entries {
        match &entry.name {
            ICalendarProperty::Uid => key = text_of(entry),
            ICalendarProperty::Summary => {
                body.insert("title".into(), json!(text_of(entry).unwrap_or_default()));
            }
            ICalendarProperty::Description => {
                body.insert(
                    "body".into(),
                    json!({"contentType": "text", "content": text_of(entry).unwrap_or_default()}),
                );
            }
            ICalendarProperty::Status => {
                let status = entry
                    .values
                    .iter()
                    .find_map(|v| match v {
                        ICalendarValue::Status(s) => Some(format!("{s:?}").to_ascii_lowercase()),
                        ICalendarValue::Text(t) => Some(t.to_ascii_lowercase().replace('-', "")),
                        _ => None,
                    })
                    .unwrap_or_default();
                let mapped = match status.as_str() {
                    "completed" => "completed",
                    "inprocess" => "inProgress",
                    "cancelled" => "deferred",
                    _ => "notStarted",
                };
                body.insert("status".into(), json!(mapped));
            }
            ICalendarProperty::Completed => {
                if let Some(when) = entry.values.iter().find_map(|v| match v {
                    ICalendarValue::PartialDateTime(d) => d.to_date_time(),
                    _ => None,
                }) {
                    body.insert("completedDateTime".into(), json!({"dateTime": when.date_time.format("%Y-%m-%dT%H:%M:%S.0000000").to_string(), "timeZone": "UTC"}));
                }
            }
            ICalendarProperty::Due => {
                body.extend(day_of(entry).map(|d| ("dueDateTime".to_string(), d)));
            }
            ICalendarProperty::Dtstart => {
                body.extend(day_of(entry).map(|d| ("startDateTime".to_string(), d)));
            }
            ICalendarProperty::Priority => {
                let priority = entry
                    .values
                    .iter()
                    .find_map(|v| match v {
                        ICalendarValue::Integer(i) => Some(*i),
                        _ => None,
                    })
                    .unwrap_or(0);
                let importance = match priority {
                    1..=4 => "high",
                    6..=9 => "low",
                    _ => "normal",
                };
                body.insert("importance".into(), json!(importance));
            }
            ICalendarProperty::Categories => {
                let mut have: Vec<Value> = body
                    .get("categories")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                have.extend(entry.values.iter().filter_map(|v| match v {
                    ICalendarValue::Text(t) => Some(json!(t)),
                    _ => None,
                }));
                body.insert("categories".into(), Value::Array(have));
            }
            ICalendarProperty::Dtstamp
            | ICalendarProperty::Created
            | ICalendarProperty::LastModified
            | ICalendarProperty::Sequence => {}
            other => dropped.push(other.as_str().to_string()),
        }
    }
    // Every field ferry maps, given: an update clears what the task no longer has.
    for (name, empty) in [
        ("title", json!("")),
        ("body", json!({"contentType": "text", "content": ""})),
        ("status", json!("notStarted")),
        ("importance", json!("normal")),
        ("categories", json!([])),
        ("completedDateTime", Value::Null),
        ("dueDateTime", Value::Null),
        ("startDateTime", Value::Null),
    ] {
        body.entry(name).or_insert(empty);
    }
    if !todo.component_ids.is_empty() {
        dropped.push("VALARM".into());
    }
    dropped.sort();
    dropped.dedup();
    Ok(TaskWrite {
        key: key.ok_or("a task without UID")?,
        body: Value::Object(body),
        dropped,
    })
}

fn date_line(name: &str, value: &Value) -> Option<String> {
    let date = value["dateTime"].as_str()?.get(..10)?.replace('-', "");
    Some(format!("{name};VALUE=DATE:{date}\r\n"))
}

/// A To Do task as an iCalendar object.
pub fn from_graph(task: &Value, key: &str) -> String {
    let mut out = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ferry//Microsoft 365//EN\r\nBEGIN:VTODO\r\n",
    );
    out.push_str(&format!("UID:{}\r\n", escape(key)));
    if let Some(title) = task["title"].as_str().filter(|t| !t.is_empty()) {
        out.push_str(&format!("SUMMARY:{}\r\n", escape(title)));
    }
    if let Some(body) = task["body"]["content"].as_str().filter(|b| !b.is_empty()) {
        out.push_str(&format!("DESCRIPTION:{}\r\n", escape(body)));
    }
    let status = match task["status"].as_str() {
        Some("completed") => "COMPLETED",
        Some("inProgress") => "IN-PROCESS",
        Some("deferred") => "CANCELLED",
        _ => "NEEDS-ACTION",
    };
    out.push_str(&format!("STATUS:{status}\r\n"));
    if let Some(completed) = task["completedDateTime"]["dateTime"].as_str() {
        let compact: String = completed
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == 'T')
            .take(15)
            .collect();
        out.push_str(&format!("COMPLETED:{compact}Z\r\n"));
    }
    out.extend(date_line("DUE", &task["dueDateTime"]));
    out.extend(date_line("DTSTART", &task["startDateTime"]));
    match task["importance"].as_str() {
        Some("high") => out.push_str("PRIORITY:1\r\n"),
        Some("low") => out.push_str("PRIORITY:9\r\n"),
        // 5, normal, the default, is not written back (To Do always says "normal").
        _ => {}
    }
    if let Some(categories) = task["categories"].as_array().filter(|c| !c.is_empty()) {
        let list: Vec<String> = categories
            .iter()
            .filter_map(|c| c.as_str().map(escape))
            .collect();
        out.push_str(&format!("CATEGORIES:{}\r\n", list.join(",")));
    }
    out.push_str("END:VTODO\r\nEND:VCALENDAR\r\n");
    ICalendar::parse(&out).map(|c| c.to_string()).unwrap_or(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completed_task_maps_and_comes_back() {
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nUID:t-1@example.com\r\n\
            SUMMARY:File the report\r\nDESCRIPTION:Q3\\, all of it\r\nSTATUS:COMPLETED\r\n\
            COMPLETED:20261130T170000Z\r\nDUE;VALUE=DATE:20261201\r\nPRIORITY:1\r\n\
            CATEGORIES:Work\r\nX-ODD:1\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
        let write = to_graph(text).expect("converts");
        assert_eq!(write.body["title"], "File the report");
        assert_eq!(write.body["status"], "completed");
        assert_eq!(write.body["importance"], "high");
        assert_eq!(
            write.body["dueDateTime"]["dateTime"],
            "2026-12-01T00:00:00.0000000"
        );
        assert_eq!(
            write.body["completedDateTime"]["dateTime"],
            "2026-11-30T17:00:00.0000000"
        );
        assert_eq!(write.dropped, vec!["X-ODD".to_string()]);
        let again = to_graph(&from_graph(&write.body, &write.key)).expect("converts again");
        assert_eq!(again.body, write.body);
        assert!(again.dropped.is_empty(), "{:?}", again.dropped);
    }
}
