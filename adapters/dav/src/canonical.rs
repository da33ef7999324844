//! What a calendar object or a vCard is known by: a canonical form of its parsed content
//! (calcard), so that the same item hashes the same whatever the server did to its bytes —
//! servers re-serialise what they store (property order, line folding, line endings) and
//! restamp some properties. Left out of the identity, as serialisation noise:
//!
//! - iCalendar: `PRODID` (the writing software) and `DTSTAMP` (when the object was written
//!   out, RFC 5545 §3.8.7.2: a server or client may set it anew at every write);
//! - vCard: `PRODID` and `REV` (when it was last written, RFC 6350 §6.7.4).
//!
//! Everything else counts, and counts as parsed: property and parameter order, folding and
//! line endings do not; values, parameters, components and sub-components (alarms,
//! overridden occurrences, time zones) do. A text that does not parse as one iCalendar object
//! or one vCard has no canonical form: it is known by its bytes.

use calcard::icalendar::{ICalendar, ICalendarComponent, ICalendarEntry, ICalendarProperty};
use calcard::vcard::{VCard, VCardEntry, VCardProperty};
use calcard::{Entry, Parser};

/// The canonical form of `text`, or `None` when it is not one iCalendar object or vCard.
pub fn canonical(text: &str) -> Option<String> {
    match Parser::new(text).entry() {
        Entry::ICalendar(calendar) => Some(calendar_form(&calendar)),
        Entry::VCard(card) => Some(card_form(&card)),
        _ => None,
    }
}

fn entry_line(entry: &ICalendarEntry) -> String {
    let mut entry = entry.clone();
    entry.params.sort_by_key(|p| format!("{p:?}"));
    let mut out = String::new();
    let _ = entry.write_to(&mut out);
    out
}

fn component_form(calendar: &ICalendar, component: &ICalendarComponent) -> String {
    let mut lines: Vec<String> = component
        .entries
        .iter()
        .filter(|e| {
            !matches!(
                e.name,
                ICalendarProperty::Prodid | ICalendarProperty::Dtstamp
            )
        })
        .map(entry_line)
        .collect();
    lines.sort();
    let mut children: Vec<String> = component
        .component_ids
        .iter()
        .filter_map(|id| calendar.components.get(*id as usize))
        .map(|child| component_form(calendar, child))
        .collect();
    children.sort();
    let name = component.component_type.as_str();
    format!(
        "BEGIN:{name}\r\n{}{}END:{name}\r\n",
        lines.concat(),
        children.concat()
    )
}

fn calendar_form(calendar: &ICalendar) -> String {
    match calendar.components.first() {
        Some(root) => component_form(calendar, root),
        None => String::new(),
    }
}

fn card_line(entry: &VCardEntry) -> String {
    let mut entry = entry.clone();
    entry.params.sort_by_key(|p| format!("{p:?}"));
    let mut out = String::new();
    let _ = entry.write_to(&mut out, true);
    out
}

fn card_form(card: &VCard) -> String {
    let mut lines: Vec<String> = card
        .entries
        .iter()
        .filter(|e| !matches!(e.name, VCardProperty::Prodid | VCardProperty::Rev))
        .map(card_line)
        .collect();
    lines.sort();
    lines.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//A//EN\r\nBEGIN:VEVENT\r\n\
        UID:e1@example.com\r\nDTSTAMP:20261201T100000Z\r\nDTSTART;TZID=Europe/Berlin:20261210T100000\r\n\
        SUMMARY:Team meeting with a rather long summary that a server may fold differently\r\n\
        ATTENDEE;CN=Jörg;ROLE=REQ-PARTICIPANT:mailto:joerg@example.com\r\n\
        BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn serialisation_noise_is_not_content_and_a_moved_event_is() {
        let rewritten = "BEGIN:VCALENDAR\nPRODID:-//Radicale//NONSGML Radicale Server//EN\nVERSION:2.0\n\
            BEGIN:VEVENT\nSUMMARY:Team meeting with a rather long summary that a server may fol\n d differently\n\
            UID:e1@example.com\nATTENDEE;ROLE=REQ-PARTICIPANT;CN=Jörg:mailto:joerg@example.com\n\
            DTSTART;TZID=Europe/Berlin:20261210T100000\nDTSTAMP:20261205T080000Z\n\
            BEGIN:VALARM\nTRIGGER:-PT15M\nACTION:DISPLAY\nEND:VALARM\nEND:VEVENT\nEND:VCALENDAR\n";
        let a = canonical(EVENT).expect("an event");
        assert_eq!(canonical(rewritten).as_deref(), Some(a.as_str()));
        let moved = EVENT.replace("20261210T100000", "20261210T110000");
        assert_ne!(canonical(&moved).expect("an event"), a);
        let alarm = EVENT.replace("-PT15M", "-PT30M");
        assert_ne!(canonical(&alarm).expect("an event"), a);
    }

    #[test]
    fn a_vcards_rev_and_prodid_are_noise_its_numbers_are_not() {
        let card = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:c1\r\nFN:Zoë Ünal\r\nTEL;TYPE=work:+49 30 1\r\nREV:20261201T000000Z\r\nEND:VCARD\r\n";
        let again = "BEGIN:VCARD\r\nVERSION:4.0\r\nPRODID:-//X//EN\r\nREV:20261205T000000Z\r\nFN:Zoë Ünal\r\nUID:c1\r\nTEL;TYPE=work:+49 30 1\r\nEND:VCARD\r\n";
        let a = canonical(card).expect("a card");
        assert_eq!(canonical(again).as_deref(), Some(a.as_str()));
        let number = card.replace("+49 30 1", "+49 30 2");
        assert_ne!(canonical(&number).expect("a card"), a);
        assert!(canonical("not a calendar").is_none());
    }
}
