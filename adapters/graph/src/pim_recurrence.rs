//! A recurrence between iCalendar's RRULE and Graph's patternedRecurrence
//! (https://learn.microsoft.com/en-us/graph/api/resources/patternedrecurrence): daily, weekly
//! on days, monthly or yearly on a day or a relative weekday; ending on a date, after a count,
//! or never. A rule Graph cannot say is refused with the reason.

use calcard::common::timezone::Tz;
use calcard::icalendar::{ICalendarEntry, ICalendarFrequency, ICalendarValue, ICalendarWeekday};
use chrono::{NaiveDateTime, TimeZone, Utc};
use serde_json::{Value, json};

pub(crate) fn weekday_name(day: ICalendarWeekday) -> &'static str {
    match day {
        ICalendarWeekday::Sunday => "sunday",
        ICalendarWeekday::Monday => "monday",
        ICalendarWeekday::Tuesday => "tuesday",
        ICalendarWeekday::Wednesday => "wednesday",
        ICalendarWeekday::Thursday => "thursday",
        ICalendarWeekday::Friday => "friday",
        ICalendarWeekday::Saturday => "saturday",
    }
}

/// An RRULE as a patternedRecurrence, or why Graph cannot say it.
pub(crate) fn recurrence(
    entry: &ICalendarEntry,
    start: &NaiveDateTime,
    zone: &str,
) -> Result<Value, String> {
    let Some(rule) = entry.values.iter().find_map(|v| match v {
        ICalendarValue::RecurrenceRule(r) => Some(r),
        _ => None,
    }) else {
        return Err("an RRULE that does not parse".into());
    };
    let unsupported = |what: &str| Err(format!("an RRULE Graph cannot hold ({what})"));
    if !rule.bysecond.is_empty()
        || !rule.byminute.is_empty()
        || !rule.byhour.is_empty()
        || !rule.byyearday.is_empty()
        || !rule.byweekno.is_empty()
        || rule.bymonthday.len() > 1
        || rule.bysetpos.len() > 1
        || rule.bymonth.len() > 1
    {
        return unsupported("BY parts beyond one day, month or position");
    }
    // What Graph's patterns cannot say, refused rather than written as another series.
    let ordinals: std::collections::BTreeSet<Option<i16>> =
        rule.byday.iter().map(|d| d.ordwk).collect();
    let positioned = !rule.bysetpos.is_empty() || ordinals.iter().any(Option::is_some);
    match rule.freq {
        ICalendarFrequency::Daily
            if !rule.bymonth.is_empty()
                || !rule.bymonthday.is_empty()
                || !rule.bysetpos.is_empty() =>
        {
            return unsupported("a daily rule narrowed by month, day or position");
        }
        ICalendarFrequency::Weekly
            if !rule.bymonth.is_empty() || !rule.bymonthday.is_empty() || positioned =>
        {
            return unsupported("a weekly rule narrowed by month, day of month or position");
        }
        ICalendarFrequency::Monthly if !rule.bymonth.is_empty() => {
            return unsupported("a monthly rule narrowed by month");
        }
        ICalendarFrequency::Monthly | ICalendarFrequency::Yearly
            if !rule.byday.is_empty() && !positioned =>
        {
            return unsupported("every such weekday of the month, not one of them");
        }
        ICalendarFrequency::Monthly | ICalendarFrequency::Yearly
            if ordinals.len() > 1 || (!rule.bymonthday.is_empty() && !rule.byday.is_empty()) =>
        {
            return unsupported("weekdays at different positions, or a day and a weekday");
        }
        _ => {}
    }
    let interval = rule.interval.unwrap_or(1);
    let days: Vec<&str> = rule.byday.iter().map(|d| weekday_name(d.weekday)).collect();
    let ordinal = rule
        .byday
        .iter()
        .find_map(|d| d.ordwk)
        .or(rule.bysetpos.first().map(|p| *p as i16));
    let index = match ordinal {
        None | Some(1) => "first",
        Some(2) => "second",
        Some(3) => "third",
        Some(4) => "fourth",
        Some(-1) => "last",
        Some(_) => return unsupported("a position beyond the fourth"),
    };
    let day_of_month = rule
        .bymonthday
        .first()
        .copied()
        .map(i64::from)
        .unwrap_or(start.format("%d").to_string().parse().unwrap_or(1));
    if day_of_month < 1 {
        return unsupported("a day counted from the end of the month");
    }
    let month = rule
        .bymonth
        .first()
        .map(|m| i64::from(m.month()))
        .unwrap_or(start.format("%m").to_string().parse().unwrap_or(1));
    let weekday = || {
        weekday_name(match start.format("%u").to_string().as_str() {
            "1" => ICalendarWeekday::Monday,
            "2" => ICalendarWeekday::Tuesday,
            "3" => ICalendarWeekday::Wednesday,
            "4" => ICalendarWeekday::Thursday,
            "5" => ICalendarWeekday::Friday,
            "6" => ICalendarWeekday::Saturday,
            _ => ICalendarWeekday::Sunday,
        })
    };
    let pattern = match rule.freq {
        ICalendarFrequency::Daily if days.is_empty() => {
            json!({"type": "daily", "interval": interval})
        }
        ICalendarFrequency::Weekly => {
            let days = if days.is_empty() {
                vec![weekday()]
            } else {
                days
            };
            json!({"type": "weekly", "interval": interval, "daysOfWeek": days, "firstDayOfWeek": rule.wkst.map(weekday_name).unwrap_or("monday")})
        }
        ICalendarFrequency::Monthly if days.is_empty() => {
            json!({"type": "absoluteMonthly", "interval": interval, "dayOfMonth": day_of_month})
        }
        ICalendarFrequency::Monthly => {
            json!({"type": "relativeMonthly", "interval": interval, "daysOfWeek": days, "index": index})
        }
        ICalendarFrequency::Yearly if days.is_empty() => {
            json!({"type": "absoluteYearly", "interval": interval, "month": month, "dayOfMonth": day_of_month})
        }
        ICalendarFrequency::Yearly => {
            json!({"type": "relativeYearly", "interval": interval, "month": month, "daysOfWeek": days, "index": index})
        }
        _ => return unsupported("its frequency"),
    };
    let start_date = start.format("%Y-%m-%d").to_string();
    let range = match (&rule.until, rule.count) {
        (Some(until), _) => {
            let result = until.to_date_time().ok_or("an UNTIL that is not a date")?;
            // UNTIL in UTC names the last moment; the range's end is that date in the zone.
            let local = match result.offset {
                Some(_) => {
                    let tz: Tz = zone.parse().unwrap_or(Tz::UTC);
                    Utc.from_utc_datetime(&result.date_time)
                        .with_timezone(&tz)
                        .naive_local()
                }
                None => result.date_time,
            };
            json!({"type": "endDate", "startDate": start_date, "endDate": local.format("%Y-%m-%d").to_string(), "recurrenceTimeZone": zone})
        }
        (None, Some(count)) => {
            json!({"type": "numbered", "startDate": start_date, "numberOfOccurrences": count, "recurrenceTimeZone": zone})
        }
        (None, None) => {
            json!({"type": "noEnd", "startDate": start_date, "recurrenceTimeZone": zone})
        }
    };
    Ok(json!({"pattern": pattern, "range": range}))
}

pub(crate) fn rrule_of(recurrence: &Value, zone: &str, all_day: bool) -> Option<String> {
    let pattern = &recurrence["pattern"];
    let range = &recurrence["range"];
    let interval = pattern["interval"].as_u64().unwrap_or(1);
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
        // The range ends with its end date, in the series' zone: a timed series' UNTIL is
        // that day's last second in UTC (RFC 5545: UTC when DTSTART has a zone), an all-day
        // series' the date.
        "endDate" if !all_day => rule.push_str(&format!(";UNTIL={}", {
            let date =
                chrono::NaiveDate::parse_from_str(range["endDate"].as_str()?, "%Y-%m-%d").ok()?;
            let last = date.and_hms_opt(23, 59, 59)?;
            let tz: Tz = zone.parse().unwrap_or(Tz::UTC);
            let at = tz
                .from_local_datetime(&last)
                .earliest()?
                .with_timezone(&Utc);
            at.format("%Y%m%dT%H%M%SZ").to_string()
        })),
        "endDate" => rule.push_str(&format!(
            ";UNTIL={}",
            range["endDate"].as_str()?.replace('-', "")
        )),
        "numbered" => rule.push_str(&format!(
            ";COUNT={}",
            range["numberOfOccurrences"].as_u64()?
        )),
        _ => {}
    }
    Some(rule)
}
