//! A message's MIME as Graph takes it, and Graph's MIME as ferry keeps it.
//!
//! Into Microsoft 365 a message is created from JSON, not from MIME: a MIME upload always
//! lands as a draft (https://learn.microsoft.com/en-us/graph/api/user-post-messages), while a
//! JSON create may carry extended properties, and PidTagMessageFlags (`Integer 0x0E07`) given
//! there makes it a received, non-draft message
//! (https://learn.microsoft.com/en-us/graph/api/resources/extended-properties-overview).
//! The MIME is parsed (mail-parser) into subject, addresses, Message-ID, body (HTML when it
//! has one, else text) and attachments; the received date goes in PidTagMessageDeliveryTime
//! (`SystemTime 0x0E06`), the Date header in PidTagClientSubmitTime (`SystemTime 0x0039`),
//! \Answered in PidTagLastVerbExecuted (`Integer 0x1081`), keywords become categories, and
//! ferry's marker goes in the same request.
//!
//! Out of Microsoft 365, `$value` is Exchange's conversion of the item to MIME, whose
//! multipart boundaries may differ at every download: they are replaced by canonical ones,
//! so the same message hashes the same every time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use ferry_engine::event::Millis;
use ferry_engine::flags::{Flags, SystemFlag};
use mail_parser::{MessageParser, MimeHeaders as _};
use serde_json::{Value, json};

/// The named property holding ferry's identity of the content it wrote: a keyed hash, which
/// says nothing of the content without the journal's key.
pub const MARKER: &str = "String {6f5a1c3e-8d2b-4e7a-9c41-f3b07d2e5a19} Name ferryContent";
/// PR_MESSAGE_SIZE, the size Graph tells of a message.
pub const SIZE: &str = "Integer 0x0E08";
/// IMAP's \Deleted, which Exchange has no flag for, kept so that it comes back as it went.
pub const DELETED: &str = "String {6f5a1c3e-8d2b-4e7a-9c41-f3b07d2e5a19} Name ferryDeleted";
/// PidTagLastVerbExecuted: 102 is "replied to sender", 103 "replied to all".
pub const LAST_VERB: &str = "Integer 0x1081";
/// The largest JSON create Graph takes (4 MB per request).
pub const MAX_CREATE_BYTES: usize = 4 * 1024 * 1024 - 64 * 1024;

fn date(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The JSON create of a message, or why it cannot be carried.
pub fn create_body(
    bytes: &[u8],
    flags: &Flags,
    received: Option<Millis>,
    marker: &str,
) -> Result<Value, String> {
    let parsed = MessageParser::default()
        .parse(bytes)
        .ok_or_else(|| "not a message ferry can parse as MIME".to_string())?;
    let addresses = |list: Option<&mail_parser::Address>| -> Vec<Value> {
        list.map(|a| {
            a.iter()
                .filter_map(|addr| {
                    Some(json!({"emailAddress": {
                        "name": addr.name().unwrap_or_default(),
                        "address": addr.address()?,
                    }}))
                })
                .collect()
        })
        .unwrap_or_default()
    };
    let mut body = json!({
        "subject": parsed.subject().unwrap_or_default(),
        "toRecipients": addresses(parsed.to()),
        "ccRecipients": addresses(parsed.cc()),
        "bccRecipients": addresses(parsed.bcc()),
        "replyTo": addresses(parsed.reply_to()),
        "isRead": flags.has(SystemFlag::Seen),
    });
    if let Some(from) = addresses(parsed.from()).into_iter().next() {
        body["from"] = from.clone();
        body["sender"] = from;
    }
    if let Some(id) = parsed.message_id() {
        body["internetMessageId"] = json!(format!("<{id}>"));
    }
    // HTML when the message has an HTML part, else its text.
    let has_html = parsed.parts.iter().any(|part| {
        part.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("text")
                && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("html"))
        })
    });
    body["body"] = match parsed.body_html(0) {
        Some(html) if has_html => json!({"contentType": "html", "content": html}),
        _ => json!({"contentType": "text", "content": parsed.body_text(0).unwrap_or_default()}),
    };
    let mut attachments = Vec::new();
    for part in parsed.attachments() {
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{sub}", ct.ctype()),
                None => ct.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let name = part
            .attachment_name()
            .map(str::to_string)
            .unwrap_or_else(|| {
                if content_type == "message/rfc822" {
                    "message.eml".into()
                } else {
                    "attachment".into()
                }
            });
        let inline = part
            .content_disposition()
            .is_some_and(|d| d.ctype() == "inline");
        let mut attachment = json!({
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": name,
            "contentType": content_type,
            "isInline": inline,
            "contentBytes": STANDARD.encode(part.contents()),
        });
        if let Some(id) = part.content_id() {
            attachment["contentId"] = json!(id.trim_matches(['<', '>']));
        }
        attachments.push(attachment);
    }
    if !attachments.is_empty() {
        body["attachments"] = Value::Array(attachments);
    }
    // Every keyword is a category, `$Forwarded` and `$Junk` too: Outlook shows them, and
    // they come back as they went.
    let categories: Vec<&str> = flags.keywords().collect();
    body["categories"] = json!(categories);
    if flags.has(SystemFlag::Flagged) {
        body["flag"] = json!({"flagStatus": "flagged"});
    }
    let mut message_flags = 0u32;
    if flags.has(SystemFlag::Seen) {
        message_flags |= 0x1;
    }
    if flags.has(SystemFlag::Draft) {
        message_flags |= 0x8;
    }
    let mut properties = vec![
        json!({"id": "Integer 0x0E07", "value": message_flags.to_string()}),
        json!({"id": MARKER, "value": marker}),
    ];
    if let Some(at) = received.and_then(DateTime::from_timestamp_millis) {
        properties.push(json!({"id": "SystemTime 0x0E06", "value": date(at)}));
    }
    if let Some(sent) = parsed
        .date()
        .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0))
    {
        properties.push(json!({"id": "SystemTime 0x0039", "value": date(sent)}));
    }
    if flags.has(SystemFlag::Answered) {
        properties.push(json!({"id": LAST_VERB, "value": "102"}));
    }
    if flags.has(SystemFlag::Deleted) {
        properties.push(json!({"id": DELETED, "value": "1"}));
    }
    body["singleValueExtendedProperties"] = Value::Array(properties);
    Ok(body)
}

/// The bytes with every declared multipart boundary replaced by a canonical one (in order of
/// declaration: `=_ferry_0_`, `=_ferry_1_`…), in the declaring `boundary=` parameter and in
/// the delimiter lines; everything else unchanged.
pub fn canonical_boundaries(bytes: &[u8]) -> Vec<u8> {
    let Some(parsed) = MessageParser::default().parse(bytes) else {
        return bytes.to_vec();
    };
    let mut declared: Vec<String> = Vec::new();
    for part in &parsed.parts {
        if let Some(boundary) = part.content_type().and_then(|ct| ct.attribute("boundary"))
            && !boundary.is_empty()
            && !declared.iter().any(|b| b == boundary)
        {
            declared.push(boundary.to_string());
        }
    }
    if declared.is_empty() {
        return bytes.to_vec();
    }
    let mut out = bytes.to_vec();
    for (index, boundary) in declared.iter().enumerate() {
        let canonical = format!("=_ferry_{index}_");
        let quoted = |b: &str| format!("boundary=\"{b}\"");
        out = replace(
            &out,
            quoted(boundary).as_bytes(),
            quoted(&canonical).as_bytes(),
            false,
        );
        out = replace(
            &out,
            format!("boundary={boundary}").as_bytes(),
            quoted(&canonical).as_bytes(),
            false,
        );
        // Delimiter lines: `--boundary` at the start of a line.
        out = replace(
            &out,
            format!("--{boundary}").as_bytes(),
            format!("--{canonical}").as_bytes(),
            true,
        );
    }
    out
}

/// `haystack` with `from` replaced by `to` (only at the start of a line if `line_start`).
fn replace(haystack: &[u8], from: &[u8], to: &[u8], line_start: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        let at_line_start = i == 0 || haystack[i - 1] == b'\n';
        if haystack[i..].starts_with(from) && (at_line_start || !line_start) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// Flags from a Graph message resource.
pub fn flags_of(message: &Value) -> Flags {
    let mut flags = Flags::new();
    flags.set(
        SystemFlag::Seen,
        message["isRead"].as_bool().unwrap_or(false),
    );
    flags.set(
        SystemFlag::Draft,
        message["isDraft"].as_bool().unwrap_or(false),
    );
    flags.set(
        SystemFlag::Flagged,
        message["flag"]["flagStatus"].as_str() == Some("flagged"),
    );
    if let Some(properties) = message["singleValueExtendedProperties"].as_array() {
        let answered = properties.iter().any(|p| {
            p["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(LAST_VERB))
                && matches!(p["value"].as_str(), Some("102" | "103"))
        });
        flags.set(SystemFlag::Answered, answered);
        let deleted = properties.iter().any(|p| {
            p["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(DELETED))
                && p["value"].as_str() == Some("1")
        });
        flags.set(SystemFlag::Deleted, deleted);
    }
    if let Some(categories) = message["categories"].as_array() {
        for category in categories.iter().filter_map(Value::as_str) {
            flags.add_keyword(category);
        }
    }
    flags
}

/// The PATCH that gives a message these flags.
pub fn flags_patch(flags: &Flags) -> Value {
    let categories: Vec<&str> = flags.keywords().collect();
    json!({
        "isRead": flags.has(SystemFlag::Seen),
        "flag": {"flagStatus": if flags.has(SystemFlag::Flagged) { "flagged" } else { "notFlagged" }},
        "categories": categories,
        "singleValueExtendedProperties": [
            {"id": LAST_VERB, "value": if flags.has(SystemFlag::Answered) { "102" } else { "0" }},
            {"id": DELETED, "value": if flags.has(SystemFlag::Deleted) { "1" } else { "0" }},
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_become_canonical_whatever_they_were() {
        let make = |b: &str| {
            format!("Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\nContent-Type: text/plain\r\n\r\nhello --AAAA1111 inline\r\n--{b}--\r\n").into_bytes()
        };
        let one = canonical_boundaries(&make("AAAA1111"));
        let two = canonical_boundaries(&make("ZZ99yy"));
        assert_eq!(one, two);
        let text = String::from_utf8(one).expect("utf-8");
        assert!(text.contains("--=_ferry_0_\r\n"));
        assert!(
            text.contains("hello --AAAA1111 inline"),
            "only delimiter lines change: {text}"
        );
    }

    #[test]
    fn a_create_is_not_a_draft_and_carries_the_marker_and_dates() {
        let mime = b"From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: Hi\r\nDate: Mon, 1 Dec 2025 10:00:00 +0000\r\nMessage-ID: <m1@example.com>\r\n\r\nHello\r\n";
        let flags = Flags::new().with(SystemFlag::Seen).with_keyword("Work");
        let body = create_body(mime, &flags, Some(1_700_000_000_000), "abc").expect("parses");
        assert_eq!(body["subject"], "Hi");
        assert_eq!(body["internetMessageId"], "<m1@example.com>");
        assert_eq!(body["categories"], json!(["Work"]));
        let properties = body["singleValueExtendedProperties"]
            .as_array()
            .expect("properties");
        assert!(properties.contains(&json!({"id": "Integer 0x0E07", "value": "1"})));
        assert!(properties.contains(&json!({"id": MARKER, "value": "abc"})));
        assert!(
            properties
                .contains(&json!({"id": "SystemTime 0x0E06", "value": "2023-11-14T22:13:20Z"}))
        );
    }
}
