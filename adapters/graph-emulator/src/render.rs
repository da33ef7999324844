//! Messages and folders as Graph shows them: JSON resources
//! (https://learn.microsoft.com/en-us/graph/api/resources/message,
//! https://learn.microsoft.com/en-us/graph/api/resources/mailfolder), and MIME made on request
//! (https://learn.microsoft.com/en-us/graph/outlook-get-mime-message: Exchange converts the
//! stored item to MIME when asked, so the bytes are not promised to be the same twice).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use mail_parser::MimeHeaders as _;
use serde_json::{Map, Value, json};

use crate::query::Query;
use crate::world::{Address, Attachment, Folder, Mailbox, Message};

pub fn date(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn address(address: &Address) -> Value {
    json!({"emailAddress": {"name": address.name, "address": address.address}})
}

/// The computed extended properties Exchange has for every message, by id (lower case).
fn computed_property(message: &Message, id: &str) -> Option<String> {
    match id.to_ascii_lowercase().as_str() {
        "integer 0x0e07" => Some(message.message_flags().to_string()),
        "integer 0x0e08" => Some(mime(message, false).len().to_string()),
        "systemtime 0x0e06" => Some(date(&message.received)),
        "binary 0x300b" if !message.search_key.is_empty() => {
            Some(STANDARD.encode(&message.search_key))
        }
        _ => None,
    }
}

/// A message resource, with the properties `$select` names (all when none) and the extended
/// properties `$expand` names.
pub fn message(message: &Message, query: &Query, immutable: bool) -> Value {
    let mut all = Map::new();
    all.insert("id".into(), json!(message.id_for(immutable)));
    all.insert("createdDateTime".into(), json!(date(&message.created)));
    all.insert(
        "lastModifiedDateTime".into(),
        json!(date(&message.modified)),
    );
    all.insert("changeKey".into(), json!(change_key(message)));
    all.insert("categories".into(), json!(message.categories));
    all.insert("receivedDateTime".into(), json!(date(&message.received)));
    all.insert(
        "sentDateTime".into(),
        json!(message.sent.as_ref().map(date)),
    );
    all.insert(
        "hasAttachments".into(),
        json!(message.attachments.iter().any(|a| !a.is_inline)),
    );
    all.insert(
        "internetMessageId".into(),
        json!(message.internet_message_id),
    );
    all.insert("subject".into(), json!(message.subject));
    all.insert(
        "bodyPreview".into(),
        json!(message.body.chars().take(255).collect::<String>()),
    );
    all.insert("importance".into(), json!("normal"));
    all.insert("parentFolderId".into(), json!(message.folder));
    all.insert("isRead".into(), json!(message.is_read));
    all.insert("isDraft".into(), json!(message.is_draft));
    all.insert(
        "body".into(),
        json!({"contentType": message.body_type, "content": message.body}),
    );
    let from = message.from.as_ref().map(address);
    all.insert("sender".into(), json!(from));
    all.insert("from".into(), json!(from));
    for (name, list) in [
        ("toRecipients", &message.to),
        ("ccRecipients", &message.cc),
        ("bccRecipients", &message.bcc),
    ] {
        all.insert(
            name.into(),
            Value::Array(list.iter().map(address).collect()),
        );
    }
    all.insert("replyTo".into(), json!([]));
    all.insert("flag".into(), json!({"flagStatus": message.flag_status}));

    let mut out = Map::new();
    out.insert(
        "@odata.etag".into(),
        json!(format!("W/\"{}\"", change_key(message))),
    );
    match &query.select {
        None => out.extend(all),
        Some(select) => {
            out.insert("id".into(), all["id"].clone());
            for name in select {
                if let Some((key, value)) =
                    all.iter().find(|(key, _)| key.eq_ignore_ascii_case(name))
                {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
    }
    if let Some(ids) = &query.expand {
        let properties: Vec<Value> = ids
            .iter()
            .filter_map(|id| {
                let value = message
                    .property(id)
                    .map(str::to_string)
                    .or_else(|| computed_property(message, id))?;
                Some(json!({"id": id, "value": value}))
            })
            .collect();
        if !properties.is_empty() {
            out.insert(
                "singleValueExtendedProperties".into(),
                Value::Array(properties),
            );
        }
    }
    Value::Object(out)
}

pub fn change_key(message: &Message) -> String {
    STANDARD.encode(format!("CQAAAB{}:{}", message.id.len(), message.change_key))
}

/// A folder resource.
pub fn folder(mailbox: &Mailbox, folder: &Folder) -> Value {
    let children = mailbox.mail_children(&folder.id).len();
    let (mut total, mut unread) = (0, 0);
    for message in mailbox.messages.values() {
        if message.folder == folder.id {
            total += 1;
            unread += usize::from(!message.is_read);
        }
    }
    json!({
        "id": folder.id,
        "displayName": folder.display_name,
        "parentFolderId": folder.parent,
        "childFolderCount": children,
        "unreadItemCount": unread,
        "totalItemCount": total,
        "isHidden": false,
    })
}

/// An attachment resource.
pub fn attachment(attachment: &Attachment) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.fileAttachment",
        "id": attachment.id,
        "name": attachment.name,
        "contentType": attachment.content_type,
        "size": attachment.bytes.len(),
        "isInline": attachment.is_inline,
        "contentId": attachment.content_id,
        "contentBytes": STANDARD.encode(&attachment.bytes),
    })
}

fn header_address(address: &Address) -> String {
    if address.name.is_empty() {
        format!("<{}>", address.address)
    } else {
        format!(
            "\"{}\" <{}>",
            address.name.replace('"', ""),
            address.address
        )
    }
}

/// A random token of `len` letters and digits.
fn random_token(len: usize) -> String {
    (0..len).map(|_| fastrand::alphanumeric()).collect()
}

/// The message as MIME. With `fresh_boundaries`, the multipart boundaries are new at every
/// call, as Exchange's conversion may make them (same length, so the size is stable).
pub fn mime(message: &Message, fresh_boundaries: bool) -> Vec<u8> {
    if let Some(bytes) = &message.mime {
        if !fresh_boundaries {
            return bytes.clone();
        }
        return rewrite_boundaries(bytes);
    }
    let boundary = if fresh_boundaries {
        format!("_000_{}_", random_token(32))
    } else {
        let tail: String = message.id.chars().rev().take(32).collect();
        format!("_000_{tail:0<32}_")
    };
    let mut out = String::new();
    let sent = message.sent.unwrap_or(message.received);
    if let Some(from) = &message.from {
        out.push_str(&format!("From: {}\r\n", header_address(from)));
    }
    for (name, list) in [("To", &message.to), ("Cc", &message.cc)] {
        if !list.is_empty() {
            let joined: Vec<String> = list.iter().map(header_address).collect();
            out.push_str(&format!("{name}: {}\r\n", joined.join(", ")));
        }
    }
    out.push_str(&format!("Subject: {}\r\n", encode_header(&message.subject)));
    out.push_str(&format!("Date: {}\r\n", sent.to_rfc2822()));
    if !message.internet_message_id.is_empty() {
        out.push_str(&format!("Message-ID: {}\r\n", message.internet_message_id));
    }
    out.push_str("MIME-Version: 1.0\r\n");
    let body_type = if message.body_type == "html" {
        "text/html"
    } else {
        "text/plain"
    };
    let body = STANDARD.encode(message.body.as_bytes());
    if message.attachments.is_empty() {
        out.push_str(&format!(
            "Content-Type: {body_type}; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ));
        out.push_str(&wrap(&body));
        return out.into_bytes();
    }
    out.push_str(&format!(
        "Content-Type: multipart/mixed;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: {body_type}; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
        wrap(&body)
    ));
    for attachment in &message.attachments {
        let disposition = if attachment.is_inline {
            "inline"
        } else {
            "attachment"
        };
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: {}; name=\"{}\"\r\nContent-Disposition: {disposition}; filename=\"{}\"\r\n",
            attachment.content_type, attachment.name, attachment.name
        ));
        if let Some(id) = &attachment.content_id {
            out.push_str(&format!("Content-ID: <{id}>\r\n"));
        }
        out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        out.push_str(&wrap(&STANDARD.encode(&attachment.bytes)));
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out.into_bytes()
}

/// A header value, RFC 2047-encoded when it is not ASCII.
fn encode_header(text: &str) -> String {
    if text.is_ascii() {
        text.to_string()
    } else {
        format!("=?utf-8?B?{}?=", STANDARD.encode(text.as_bytes()))
    }
}

/// Base64 in lines of 76, each ended by CRLF.
fn wrap(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push_str("\r\n");
    }
    out
}

/// The boundaries a MIME message declares.
pub fn boundaries(bytes: &[u8]) -> Vec<String> {
    let Some(message) = mail_parser::MessageParser::default().parse(bytes) else {
        return Vec::new();
    };
    let mut found: Vec<String> = message
        .parts
        .iter()
        .filter_map(|part| {
            let content_type = part.content_type()?;
            content_type.attribute("boundary").map(str::to_string)
        })
        .filter(|boundary| !boundary.is_empty())
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The bytes with each declared boundary replaced by a new random one of the same length.
fn rewrite_boundaries(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for boundary in boundaries(bytes) {
        let fresh = random_token(boundary.len());
        out = replace_all(&out, boundary.as_bytes(), fresh.as_bytes());
    }
    out
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_boundaries_change_the_bytes_and_keep_the_length() {
        let original = b"Content-Type: multipart/mixed; boundary=\"abc123XYZ\"\r\n\r\n--abc123XYZ\r\nContent-Type: text/plain\r\n\r\nhi\r\n--abc123XYZ--\r\n".to_vec();
        let rewritten = rewrite_boundaries(&original);
        assert_eq!(rewritten.len(), original.len());
        assert_ne!(rewritten, original);
        assert_eq!(boundaries(&rewritten).len(), 1);
        assert!(!String::from_utf8_lossy(&rewritten).contains("abc123XYZ"));
    }
}
