//! Events through the events API (`pim.rs` says how items are known): a series is its master
//! and, for its overridden and cancelled occurrences, one request each on the occurrence
//! found by `instances` (https://learn.microsoft.com/en-us/graph/api/event-list-instances).
//! Read back, a series' occurrences are listed over its span (at most [`HORIZON_DAYS`] past
//! today for a series without end): an `exception` is an overridden occurrence, and an
//! occurrence the recurrence gives that the service does not list was cancelled.

use std::collections::{BTreeSet, HashMap};

use calcard::common::timezone::Tz;
use calcard::icalendar::ICalendar;
use chrono::{DateTime, TimeDelta, Utc};
use ferry_engine::event::ContentHash;
use ferry_engine::store::{StoreError, StoreResult, Stored};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::Payload;
use crate::pim::{self, KEY, MARK, PENDING, PEOPLE, PimFolder, UID};
use crate::pim_event::{self, EventWrite};
use crate::store::GraphStore;

/// How far past today the occurrences of a series without end are looked at.
pub const HORIZON_DAYS: i64 = 3 * 366;

/// The most occurrences of one series looked at.
const MOST: usize = 5000;

fn instant(value: &Value) -> Option<DateTime<Utc>> {
    let text = value["dateTime"].as_str()?;
    let local =
        chrono::NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
            .ok()?;
    let tz: Tz = value["timeZone"].as_str().unwrap_or("UTC").parse().ok()?;
    use chrono::TimeZone;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
}

/// The original starts of a master's occurrences (cancelled ones too), up to `until`.
fn expected(master: &Value, key: &str, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let text = pim_event::from_graph(master, key, None, &[], &[], &[]);
    let Ok(calendar) = ICalendar::parse(&text) else {
        return Vec::new();
    };
    // Floating dates (an all-day series) are days in the series' zone, as the service
    // counts its original starts.
    let zone: Tz = master["originalStartTimeZone"]
        .as_str()
        .or(master["start"]["timeZone"].as_str())
        .and_then(|z| z.parse().ok())
        .unwrap_or(Tz::UTC);
    let mut starts: Vec<DateTime<Utc>> = calendar
        .expand_dates(zone, MOST)
        .events
        .iter()
        .map(|e| e.start.with_timezone(&Utc))
        .filter(|at| *at < until)
        .collect();
    starts.sort();
    starts.dedup();
    starts
}

/// The span of a series: from its start to its end, or to the horizon.
fn span(master: &Value, key: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let start = instant(&master["start"])?;
    let horizon = Utc::now().max(start) + TimeDelta::days(HORIZON_DAYS);
    let all = expected(master, key, horizon);
    let last = all.last().copied().unwrap_or(start);
    let length = instant(&master["end"])
        .map(|end| end - start)
        .unwrap_or_default();
    Some((
        start - TimeDelta::days(1),
        (last + length + TimeDelta::days(1)).min(horizon),
    ))
}

fn utc_text(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl GraphStore {
    /// The occurrences of series `id` over `window`, by original start.
    async fn occurrences(
        &self,
        id: &str,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> StoreResult<Vec<Value>> {
        let url = format!(
            "{}/events/{id}/instances?startDateTime={}&endDateTime={}&$top=500",
            self.user(),
            utc_text(&window.0),
            utc_text(&window.1)
        );
        crate::folders::all_pages(&self.client, &url).await
    }

    /// An event read: its iCalendar text and ferry's mark on it.
    pub(crate) async fn read_event(&self, id: &str) -> StoreResult<(String, Option<String>)> {
        let url = format!(
            "{}/events/{id}?$expand=singleValueExtendedProperties($filter=id eq '{KEY}' or id eq '{MARK}' or id eq '{PEOPLE}' or id eq '{UID}')",
            self.user()
        );
        let master = self
            .client
            .send(Method::GET, &url, Payload::None, &[])
            .await?
            .json()?;
        let (_, _, mark) = pim::keyed_of(&master, pim::Pim::Event)
            .ok_or_else(|| StoreError::Transient(format!("{id}: an event without id")))?;
        let key = pim::uid_of(&master, pim::Pim::Event);
        let people = crate::store::property(&master, PEOPLE)
            .filter(|p| !p.is_empty())
            .map(str::to_string);
        let mut exceptions = Vec::new();
        let mut cancelled = Vec::new();
        if master["type"].as_str() == Some("seriesMaster")
            && let Some(window) = span(&master, &key)
        {
            let listed = self.occurrences(id, window).await?;
            let mut seen = BTreeSet::new();
            for occurrence in listed {
                if let Some(original) = occurrence["originalStart"]
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                {
                    seen.insert(original.with_timezone(&Utc));
                }
                if occurrence["type"].as_str() == Some("exception") {
                    exceptions.push(occurrence);
                }
            }
            cancelled = expected(&master, &key, window.1)
                .into_iter()
                .filter(|at| !seen.contains(at))
                .collect();
        }
        let attachments = if master["hasAttachments"].as_bool() == Some(true) {
            self.attachments(id).await?
        } else {
            Vec::new()
        };
        let text = pim_event::from_graph(
            &master,
            &key,
            people.as_deref(),
            &exceptions,
            &cancelled,
            &attachments,
        );
        Ok((text, mark))
    }

    /// An event's file attachments, with their bytes.
    async fn attachments(&self, id: &str) -> StoreResult<Vec<Value>> {
        let url = format!("{}/events/{id}/attachments", self.user());
        let listed = crate::folders::all_pages(&self.client, &url).await?;
        Ok(listed
            .into_iter()
            .filter(|a| a["@odata.type"].as_str() == Some("#microsoft.graph.fileAttachment"))
            .collect())
    }

    /// Gives event `id` exactly the attachments `wanted` (name, type, bytes): those it holds
    /// otherwise are deleted, those it lacks added
    /// (https://learn.microsoft.com/en-us/graph/api/event-post-attachments).
    async fn set_attachments(&self, id: &str, wanted: &[Value], fresh: bool) -> StoreResult<()> {
        let same = |a: &Value, b: &Value| {
            ["name", "contentType", "contentBytes"]
                .iter()
                .all(|field| a[field] == b[field])
        };
        let held = if wanted.is_empty() && fresh {
            Vec::new()
        } else {
            self.attachments(id).await?
        };
        let url = format!("{}/events/{id}/attachments", self.user());
        for old in held.iter().filter(|h| !wanted.iter().any(|w| same(h, w))) {
            if let Some(attachment) = old["id"].as_str() {
                self.client
                    .send_unless_gone(Method::DELETE, &format!("{url}/{attachment}"))
                    .await?;
            }
        }
        for new in wanted.iter().filter(|w| !held.iter().any(|h| same(h, w))) {
            self.client
                .send(Method::POST, &url, Payload::Json(new.clone()), &[])
                .await?;
        }
        Ok(())
    }

    /// Creates (`existing` none) or replaces an event from its iCalendar text.
    pub(crate) async fn write_event(
        &self,
        folder: &PimFolder,
        existing: Option<&str>,
        key: &str,
        text: &str,
        content: &ContentHash,
    ) -> StoreResult<Stored> {
        let mut write = pim_event::to_graph(text)
            .map_err(|why| StoreError::Permanent(format!("{key}: {why}")))?;
        // A cancellation of no occurrence the series has (or one past the horizon) cancels
        // nothing: left out, so that the item reads back as written.
        if !write.cancelled.is_empty()
            && let Some((_, until)) = span(&write.body, &write.key)
        {
            let occurring: BTreeSet<DateTime<Utc>> = expected(&write.body, &write.key, until)
                .into_iter()
                .collect();
            write.cancelled.retain(|at| occurring.contains(at));
            write.cancelled.sort();
            write.cancelled.dedup();
        }
        self.report_dropped(folder, key, &write.dropped);
        let shown: Vec<Value> = write
            .exceptions
            .iter()
            .map(|(at, changes)| {
                let mut shown = changes.clone();
                shown["originalStart"] = json!(utc_text(at));
                shown
            })
            .collect();
        let readback = pim_event::from_graph(
            &write.body,
            &write.key,
            write.people.as_deref(),
            &shown,
            &write.cancelled,
            &write.attachments,
        );
        let several = !write.exceptions.is_empty()
            || !write.cancelled.is_empty()
            || !write.attachments.is_empty()
            || existing.is_some();
        let final_mark = pim::mark(content, &readback);
        let mut body = write.body.clone();
        body["singleValueExtendedProperties"] = json!([
            {"id": KEY, "value": key},
            {"id": MARK, "value": if several { PENDING } else { final_mark.as_str() }},
            {"id": PEOPLE, "value": write.people.clone().unwrap_or_default()},
            {"id": UID, "value": write.key},
        ]);
        let id = self.put_pim(folder, existing, body, key).await?;
        if several {
            self.write_occurrences(&id, &write.key, &write).await?;
            self.set_attachments(&id, &write.attachments, existing.is_none())
                .await?;
            self.set_mark(folder, &id, &final_mark).await?;
        }
        self.stored(folder, &id).await
    }

    /// Overrides and cancels a series' occurrences as `write` says, and returns those it no
    /// longer overrides to the series' values.
    async fn write_occurrences(&self, id: &str, key: &str, write: &EventWrite) -> StoreResult<()> {
        if write.body.get("recurrence").is_none_or(Value::is_null) {
            return Ok(());
        }
        let Some(window) = span(&write.body, key) else {
            return Ok(());
        };
        let listed = self.occurrences(id, window).await?;
        let mut by_start: HashMap<DateTime<Utc>, (String, bool)> = HashMap::new();
        for occurrence in &listed {
            if let (Some(original), Some(occurrence_id)) = (
                occurrence["originalStart"]
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok()),
                occurrence["id"].as_str(),
            ) {
                let exception = occurrence["type"].as_str() == Some("exception");
                by_start.insert(
                    original.with_timezone(&Utc),
                    (occurrence_id.to_string(), exception),
                );
            }
        }
        let url = |occurrence: &str| format!("{}/events/{occurrence}", self.user());
        for (at, changes) in &write.exceptions {
            let Some((occurrence, _)) = by_start.get(at) else {
                return Err(StoreError::Permanent(format!(
                    "{key}: the series has no occurrence at {} to override",
                    utc_text(at)
                )));
            };
            self.client
                .send(
                    Method::PATCH,
                    &url(occurrence),
                    Payload::Json(changes.clone()),
                    &[],
                )
                .await?;
        }
        for at in &write.cancelled {
            if let Some((occurrence, _)) = by_start.get(at) {
                self.client
                    .send_unless_gone(Method::DELETE, &url(occurrence))
                    .await?;
            }
        }
        // Occurrences overridden before and not now: the series' values again.
        let overridden: BTreeSet<&DateTime<Utc>> =
            write.exceptions.iter().map(|(at, _)| at).collect();
        let length = match (instant(&write.body["start"]), instant(&write.body["end"])) {
            (Some(start), Some(end)) => end - start,
            _ => TimeDelta::zero(),
        };
        let zone = write.body["start"]["timeZone"]
            .as_str()
            .unwrap_or("UTC")
            .to_string();
        for (at, (occurrence, exception)) in &by_start {
            if !*exception || overridden.contains(at) {
                continue;
            }
            let tz: Tz = zone.parse().unwrap_or(Tz::UTC);
            let local = |at: DateTime<Utc>| {
                at.with_timezone(&tz)
                    .naive_local()
                    .format("%Y-%m-%dT%H:%M:%S")
                    .to_string()
            };
            let back = json!({
                "subject": write.body["subject"],
                "body": write.body["body"],
                "location": write.body["location"],
                "start": {"dateTime": local(*at), "timeZone": zone},
                "end": {"dateTime": local(*at + length), "timeZone": zone},
            });
            self.client
                .send(Method::PATCH, &url(occurrence), Payload::Json(back), &[])
                .await?;
        }
        Ok(())
    }
}
