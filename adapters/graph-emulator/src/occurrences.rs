//! Event times and the occurrences of a series, as the service shows them.
//! - Times: an event keeps the time zone it was given (`originalStartTimeZone`,
//!   `originalEndTimeZone`) and shows `start`/`end` in UTC unless the request asks
//!   `Prefer: outlook.timezone="…"`; an all-day event's dates are shown as given
//!   (https://learn.microsoft.com/en-us/graph/api/resources/event,
//!   https://learn.microsoft.com/en-us/graph/api/event-get#support-various-time-zones).
//!   A zone is an IANA or a Windows name
//!   (https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone).
//! - A series master holds its `recurrence` (patternedRecurrence); its occurrences are listed
//!   by `GET /events/{id}/instances?startDateTime=…&endDateTime=…`
//!   (https://learn.microsoft.com/en-us/graph/api/event-list-instances), each with
//!   `seriesMasterId`, `originalStart` and `type` `occurrence` or `exception`; a cancelled
//!   occurrence is not listed. An occurrence is updated or deleted by its id: the update
//!   makes it an exception, the deletion cancels it; either changes the master (its change
//!   key), which is how Exchange keeps them (as part of the master item).

use calcard::common::timezone::Tz;
use calcard::icalendar::ICalendar;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};

use crate::api::{Answer, Request, Response, World, bad_request, not_found};
use crate::world::Message;

/// What separates a master's id from an occurrence's original start in the occurrence's id.
const OCCURRENCE: &str = ".OCC.";

/// The most occurrences a series is expanded to.
const MOST: usize = 5000;

/// Graph's date-time text.
fn text(at: &NaiveDateTime) -> String {
    use chrono::Timelike;
    format!(
        "{}.{:07}",
        at.format("%Y-%m-%dT%H:%M:%S"),
        at.nanosecond() / 100
    )
}

fn parse_local(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim_end_matches('Z');
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()
}

fn zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// A dateTimeTimeZone as an instant.
fn instant(value: &Value) -> Option<DateTime<Utc>> {
    let local = parse_local(value["dateTime"].as_str()?)?;
    let tz = zone(value["timeZone"].as_str().unwrap_or("UTC"))?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
}

/// Refuses a body whose times cannot be read.
pub(crate) fn check_times(body: &Value) -> Result<(), Response> {
    for field in ["start", "end"] {
        let value = &body[field];
        if value.is_null() {
            continue;
        }
        if value["dateTime"].as_str().and_then(parse_local).is_none() {
            return Err(bad_request(&format!(
                "{field}.dateTime is not a date-time."
            )));
        }
        let name = value["timeZone"].as_str().unwrap_or("UTC");
        if zone(name).is_none() {
            return Err(Response::error(
                400,
                "TimeZoneNotSupportedException",
                &format!(
                    "A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'."
                ),
            ));
        }
    }
    Ok(())
}

/// The zone the request asks times in.
fn wanted(request: &Request) -> (String, Tz) {
    let asked = request
        .headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case("prefer"))
        .flat_map(|(_, value)| value.split(','))
        .find_map(|part| {
            part.trim()
                .strip_prefix("outlook.timezone=")
                .map(|v| v.trim_matches('"').to_string())
        });
    match asked.as_deref().and_then(|name| Some((name, zone(name)?))) {
        Some((name, tz)) => (name.to_string(), tz),
        None => ("UTC".to_string(), Tz::UTC),
    }
}

fn shown_time(value: &Value, all_day: bool, request: &Request) -> Value {
    if all_day {
        return value.clone();
    }
    let (name, tz) = wanted(request);
    match instant(value) {
        Some(at) => {
            json!({"dateTime": text(&at.with_timezone(&tz).naive_local()), "timeZone": name})
        }
        None => value.clone(),
    }
}

/// Adds what the service computes to an event about to be shown.
pub(crate) fn show_event(all: &mut Map<String, Value>, request: &Request) {
    let all_day = all
        .get("isAllDay")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let recurring = all.get("recurrence").is_some_and(|r| !r.is_null());
    if !all.contains_key("type") {
        all.insert(
            "type".into(),
            json!(if recurring {
                "seriesMaster"
            } else {
                "singleInstance"
            }),
        );
    }
    for (field, original) in [
        ("start", "originalStartTimeZone"),
        ("end", "originalEndTimeZone"),
    ] {
        if let Some(value) = all.get(field).cloned() {
            all.insert(
                original.into(),
                json!(value["timeZone"].as_str().unwrap_or("UTC")),
            );
            all.insert(field.into(), shown_time(&value, all_day, request));
        }
    }
}

/// An occurrence's id: its master's and its original start.
pub(crate) fn parse_id(id: &str) -> Option<(String, String)> {
    let (master, start) = id.split_once(OCCURRENCE)?;
    Some((master.to_string(), start.to_string()))
}

fn start_key(at: &DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A patternedRecurrence as an RRULE, for the expansion.
fn rrule(recurrence: &Value) -> Option<String> {
    let pattern = &recurrence["pattern"];
    let range = &recurrence["range"];
    let interval = pattern["interval"].as_u64().unwrap_or(1).max(1);
    let days = || -> String {
        pattern["daysOfWeek"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str()?.get(..2).map(str::to_ascii_uppercase))
            .collect::<Vec<_>>()
            .join(",")
    };
    let position = || match pattern["index"].as_str().unwrap_or("first") {
        "second" => 2,
        "third" => 3,
        "fourth" => 4,
        "last" => -1,
        _ => 1,
    };
    let mut rule = match pattern["type"].as_str()? {
        "daily" => format!("FREQ=DAILY;INTERVAL={interval}"),
        "weekly" => format!("FREQ=WEEKLY;INTERVAL={interval};BYDAY={}", days()),
        "absoluteMonthly" => format!(
            "FREQ=MONTHLY;INTERVAL={interval};BYMONTHDAY={}",
            pattern["dayOfMonth"].as_u64()?
        ),
        "relativeMonthly" => format!(
            "FREQ=MONTHLY;INTERVAL={interval};BYDAY={};BYSETPOS={}",
            days(),
            position()
        ),
        "absoluteYearly" => format!(
            "FREQ=YEARLY;INTERVAL={interval};BYMONTH={};BYMONTHDAY={}",
            pattern["month"].as_u64()?,
            pattern["dayOfMonth"].as_u64()?
        ),
        "relativeYearly" => format!(
            "FREQ=YEARLY;INTERVAL={interval};BYMONTH={};BYDAY={};BYSETPOS={}",
            pattern["month"].as_u64()?,
            days(),
            position()
        ),
        _ => return None,
    };
    match range["type"].as_str().unwrap_or("noEnd") {
        "endDate" => {
            let end = range["endDate"].as_str()?.replace('-', "");
            rule.push_str(&format!(";UNTIL={end}T235959Z"));
        }
        "numbered" => rule.push_str(&format!(
            ";COUNT={}",
            range["numberOfOccurrences"].as_u64()?
        )),
        _ => {}
    }
    Some(rule)
}

/// The original starts of a master's occurrences, cancelled ones included, in order.
fn expand(master: &Value) -> Vec<DateTime<Utc>> {
    let start = &master["start"];
    let (Some(recurrence), Some(local)) = (
        master.get("recurrence").filter(|r| !r.is_null()),
        start["dateTime"].as_str().and_then(parse_local),
    ) else {
        return Vec::new();
    };
    let Some(rule) = rrule(recurrence) else {
        return Vec::new();
    };
    let tz = start["timeZone"].as_str().unwrap_or("UTC");
    let text = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID={tz}:{}\r\nDURATION:PT1H\r\nRRULE:{rule}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        local.format("%Y%m%dT%H%M%S")
    );
    let Ok(calendar) = ICalendar::parse(&text) else {
        return Vec::new();
    };
    let mut starts: Vec<DateTime<Utc>> = calendar
        .expand_dates(Tz::UTC, MOST)
        .events
        .iter()
        .map(|event| event.start.with_timezone(&Utc))
        .collect();
    starts.sort();
    starts.dedup();
    starts
}

fn duration(master: &Value) -> chrono::TimeDelta {
    match (instant(&master["start"]), instant(&master["end"])) {
        (Some(start), Some(end)) if end > start => end - start,
        _ => chrono::TimeDelta::zero(),
    }
}

/// One occurrence as shown: the master's fields, its exception's over them.
fn occurrence(item: &Message, at: &DateTime<Utc>, request: &Request) -> Option<Value> {
    let master = item.json.as_ref()?;
    let key = start_key(at);
    if master["_cancelled"]
        .as_array()
        .is_some_and(|c| c.iter().any(|k| k.as_str() == Some(&key)))
    {
        return None;
    }
    let mut all = master.as_object()?.clone();
    all.remove("recurrence");
    let length = duration(master);
    let tz = master["start"]["timeZone"]
        .as_str()
        .unwrap_or("UTC")
        .to_string();
    let local = |at: DateTime<Utc>| match zone(&tz) {
        Some(zone) => text(&at.with_timezone(&zone).naive_local()),
        None => text(&at.naive_utc()),
    };
    all.insert(
        "start".into(),
        json!({"dateTime": local(*at), "timeZone": tz}),
    );
    all.insert(
        "end".into(),
        json!({"dateTime": local(*at + length), "timeZone": master["end"]["timeZone"].as_str().unwrap_or("UTC")}),
    );
    let exception = &master["_exceptions"][&key];
    all.insert(
        "type".into(),
        json!(if exception.is_object() {
            "exception"
        } else {
            "occurrence"
        }),
    );
    if let Some(changes) = exception.as_object() {
        for (name, value) in changes {
            all.insert(name.clone(), value.clone());
        }
    }
    all.retain(|name, _| !name.starts_with('_'));
    show_event(&mut all, request);
    all.insert("id".into(), json!(format!("{}{OCCURRENCE}{key}", item.id)));
    all.insert("seriesMasterId".into(), json!(item.id));
    all.insert(
        "originalStart".into(),
        json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    );
    Some(Value::Object(all))
}

/// `GET /events/{id}/instances?startDateTime=…&endDateTime=…`: both are required.
pub(crate) fn instances(item: &Message, request: &Request) -> Answer {
    let asked = |name: &str| {
        form_urlencoded::parse(request.query.as_bytes())
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| {
                DateTime::parse_from_rfc3339(&value)
                    .map(|d| d.with_timezone(&Utc))
                    .ok()
                    .or_else(|| parse_local(&value).map(|l| Utc.from_utc_datetime(&l)))
            })
    };
    let (Some(from), Some(to)) = (asked("startDateTime"), asked("endDateTime")) else {
        return Err(bad_request(
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        ));
    };
    let Some(master) = &item.json else {
        return Err(not_found(&item.id));
    };
    let length = duration(master);
    let value: Vec<Value> = expand(master)
        .iter()
        .filter(|at| **at < to && **at + length > from)
        .filter_map(|at| occurrence(item, at, request))
        .collect();
    Ok(Response::json(200, &json!({ "value": value })))
}

impl World {
    /// An occurrence read, updated (it becomes an exception) or deleted (cancelled).
    pub(crate) fn occurrence_request(
        &mut self,
        user: usize,
        master: &str,
        key: &str,
        method: &str,
        tail: &[&str],
        request: &Request,
    ) -> Answer {
        let now = Utc::now();
        let mailbox = &mut self.tenant.users[user].mailbox;
        let Some(item) = mailbox.messages.get(master).filter(|m| m.json.is_some()) else {
            return Err(not_found(master));
        };
        let Some(at) = expand(item.json.as_ref().unwrap_or(&Value::Null))
            .into_iter()
            .find(|at| start_key(at) == key)
        else {
            return Err(not_found(key));
        };
        let Some(shown) = occurrence(item, &at, request) else {
            return Err(not_found(key));
        };
        match (method, tail) {
            ("GET", []) => Ok(Response::json(200, &shown)),
            ("PATCH", []) | ("DELETE", []) => {
                let changes = if method == "PATCH" {
                    let body = request.json()?;
                    check_times(&body)?;
                    Some(body)
                } else {
                    None
                };
                let seq = mailbox.bump();
                let Some(item) = mailbox.messages.get_mut(master) else {
                    return Err(not_found(master));
                };
                let Some(Value::Object(kept)) = item.json.as_mut() else {
                    return Err(not_found(master));
                };
                let exceptions = kept.entry("_exceptions").or_insert_with(|| json!({}));
                match &changes {
                    Some(Value::Object(body)) => {
                        let slot = exceptions
                            .as_object_mut()
                            .map(|e| e.entry(key.to_string()).or_insert_with(|| json!({})));
                        if let Some(Value::Object(slot)) = slot {
                            for (name, value) in body {
                                if !name.starts_with('@') && name != "id" {
                                    slot.insert(name.clone(), value.clone());
                                }
                            }
                        }
                    }
                    _ => {
                        if let Some(e) = exceptions.as_object_mut() {
                            e.remove(key);
                        }
                        let cancelled = kept.entry("_cancelled").or_insert_with(|| json!([]));
                        if let Some(list) = cancelled.as_array_mut() {
                            list.push(json!(key));
                        }
                    }
                }
                item.touch(seq, now);
                match changes {
                    Some(_) => {
                        let item = &mailbox.messages[master];
                        let shown = occurrence(item, &at, request).unwrap_or_default();
                        Ok(Response::json(200, &shown))
                    }
                    None => Ok(Response::empty(204)),
                }
            }
            _ => Err(bad_request("Unsupported occurrence request.")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weekly_series_expands_in_its_zone_and_a_count_ends_it() {
        let master = json!({
            "start": {"dateTime": "2026-03-23T10:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-03-23T11:00:00", "timeZone": "Europe/Berlin"},
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                "range": {"type": "numbered", "startDate": "2026-03-23", "numberOfOccurrences": 3}
            }
        });
        let starts = expand(&master);
        assert_eq!(starts.len(), 3);
        // 10:00 in Berlin is 09:00 UTC before the change to summer time, 08:00 after it.
        assert_eq!(start_key(&starts[0]), "20260323T090000Z");
        assert_eq!(start_key(&starts[1]), "20260330T080000Z");
    }

    #[test]
    fn times_are_shown_with_seven_digits_of_fraction() {
        let at = parse_local("2026-07-01T10:00:00").expect("a time");
        assert_eq!(text(&at), "2026-07-01T10:00:00.0000000");
    }

    #[test]
    fn a_windows_zone_name_is_a_zone() {
        let at = instant(
            &json!({"dateTime": "2026-07-01T10:00:00.0000000", "timeZone": "Pacific Standard Time"}),
        );
        assert_eq!(at.map(|a| start_key(&a)), Some("20260701T170000Z".into()));
    }
}
