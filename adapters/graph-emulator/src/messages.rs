//! Messages: list, get, `$value`, create (from MIME: a draft; from JSON: a draft unless
//! PidTagMessageFlags says otherwise), update, delete, move, copy, permanentDelete,
//! attachments and large-attachment upload sessions.
//! - list: https://learn.microsoft.com/en-us/graph/api/user-list-messages
//! - create: https://learn.microsoft.com/en-us/graph/api/user-post-messages ("create a draft
//!   in MIME format": text/plain body, base64 MIME)
//! - non-draft at creation: PidTagMessageFlags (`Integer 0x0E07`) given as an extended
//!   property in the create (https://learn.microsoft.com/en-us/graph/api/resources/extended-properties-overview)
//! - update: https://learn.microsoft.com/en-us/graph/api/message-update (body, subject and
//!   recipients "updatable only if isDraft = true")
//! - delete: to Deleted Items; permanentDelete: https://learn.microsoft.com/en-us/graph/api/message-permanentdelete
//! - move/copy: https://learn.microsoft.com/en-us/graph/api/message-move
//! - attachments: https://learn.microsoft.com/en-us/graph/api/message-post-attachments (< 3 MB),
//!   https://learn.microsoft.com/en-us/graph/api/attachment-createuploadsession (3–150 MB)

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::{Answer, Request, Response, UploadSession, World, bad_request, not_found};
use crate::query::Query;
use crate::render;
use crate::world::{Address, Attachment, MSGFLAG_READ, MSGFLAG_UNSENT, Message, new_id};

/// The largest request body the REST API takes (https://learn.microsoft.com/en-us/graph/api/message-post-attachments:
/// "the total size of the request … under 4 MB").
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// The largest attachment an upload session takes.
const MAX_ATTACHMENT_BYTES: usize = 150 * 1024 * 1024;
/// The smallest attachment an upload session takes.
const MIN_SESSION_BYTES: usize = 3 * 1024 * 1024;

impl World {
    pub(crate) fn messages_request(
        &mut self,
        user: usize,
        folder: Option<String>,
        method: &str,
        tail: &[&str],
        request: &Request,
        query: &Query,
    ) -> Answer {
        match (method, tail) {
            ("GET", []) => self.list_messages(user, folder.as_deref(), request, query),
            ("POST", []) => {
                let folder =
                    folder.unwrap_or_else(|| self.tenant.users[user].mailbox.well_known("drafts"));
                self.create_message(user, &folder, request)
            }
            (
                "GET",
                ["delta" | "delta()" | "microsoft.graph.delta" | "microsoft.graph.delta()"],
            ) => {
                let Some(folder) = folder else {
                    return Err(bad_request("messages/delta is per folder."));
                };
                self.delta(user, &folder, request, query, false)
            }
            (_, [id, rest @ ..]) => {
                let mailbox = &self.tenant.users[user].mailbox;
                let Some(id) = mailbox.message_id(id) else {
                    return Err(not_found(id));
                };
                if folder
                    .as_ref()
                    .is_some_and(|f| mailbox.messages[&id].folder != *f)
                {
                    return Err(not_found(&id));
                }
                self.message_request(user, &id, method, rest, request, query)
            }
            _ => Err(bad_request("Unsupported message request.")),
        }
    }

    fn list_messages(
        &self,
        user: usize,
        folder: Option<&str>,
        request: &Request,
        query: &Query,
    ) -> Answer {
        let mailbox = &self.tenant.users[user].mailbox;
        let mut messages: Vec<&Message> = mailbox
            .messages
            .values()
            .filter(|m| {
                m.class == "IPM.Note" && folder.is_none_or(|f| m.folder == f) && query.matches(m)
            })
            .collect();
        // Newest first, the default order of a message listing.
        messages.sort_by(|a, b| b.received.cmp(&a.received).then(a.id.cmp(&b.id)));
        let top = query.top.unwrap_or(self.page_size).clamp(1, 1000);
        let immutable = request.immutable_ids();
        let page: Vec<Value> = messages
            .iter()
            .skip(query.skip)
            .take(top)
            .map(|m| render::message(m, query, immutable))
            .collect();
        let mut out = json!({"value": page});
        if query.skip + top < messages.len() {
            out["@odata.nextLink"] = json!(crate::api::next_link(request, query.skip + top, top));
        }
        Ok(Response::json(200, &out))
    }

    fn message_request(
        &mut self,
        user: usize,
        id: &str,
        method: &str,
        rest: &[&str],
        request: &Request,
        query: &Query,
    ) -> Answer {
        let immutable = request.immutable_ids();
        let now = Utc::now();
        let fresh = self.faults.fresh_boundaries;
        let mailbox = &mut self.tenant.users[user].mailbox;
        match (method, rest) {
            ("GET", []) => Ok(Response::json(
                200,
                &render::message(&mailbox.messages[id], query, immutable),
            )),
            ("GET", ["$value"]) => {
                let mut response = Response::empty(200);
                response.body = render::mime(&mailbox.messages[id], fresh);
                Ok(response.with_header("content-type", "text/plain"))
            }
            ("PATCH", []) => {
                let body = request.json()?;
                let seq = mailbox.bump();
                let Some(message) = mailbox.messages.get_mut(id) else {
                    return Err(not_found(id));
                };
                for draft_only in ["subject", "body", "toRecipients", "ccRecipients"] {
                    if body.get(draft_only).is_some() && !message.is_draft {
                        return Err(Response::error(
                            400,
                            "ErrorInvalidPropertyUpdateSentMessage",
                            "Update operation is not allowed on a sent message for this property.",
                        ));
                    }
                }
                apply_common(message, &body)?;
                if let Some(subject) = body["subject"].as_str() {
                    message.subject = subject.to_string();
                }
                message.touch(seq, now);
                Ok(Response::json(
                    200,
                    &render::message(message, query, immutable),
                ))
            }
            ("DELETE", []) => {
                let deleted = mailbox.well_known("deleteditems");
                if mailbox.messages[id].folder == deleted {
                    mailbox.purge(id);
                } else {
                    mailbox.relocate(id, &deleted, now);
                }
                Ok(Response::empty(204))
            }
            ("POST", ["permanentDelete"]) => {
                mailbox.purge(id);
                Ok(Response::empty(204))
            }
            ("POST", ["move" | "copy"]) => {
                let body = request.json()?;
                let Some(to) = crate::api::field(&body, "destinationId")
                    .and_then(Value::as_str)
                    .and_then(|to| mailbox.folder_id(to))
                else {
                    return Err(not_found("destinationId"));
                };
                let to: String = to;
                let moved = if rest[0] == "move" {
                    mailbox.relocate(id, &to, now);
                    id.to_string()
                } else {
                    let seq = mailbox.bump();
                    let mut copy = mailbox.messages[id].clone();
                    copy.id = new_id("AAkALg");
                    copy.moves = 0;
                    copy.folder = to;
                    copy.created = now;
                    copy.touch(seq, now);
                    let new = copy.id.clone();
                    mailbox.messages.insert(new.clone(), copy);
                    new
                };
                Ok(Response::json(
                    201,
                    &render::message(&mailbox.messages[&moved], query, immutable),
                ))
            }
            ("GET", ["attachments"]) => {
                let list: Vec<Value> = mailbox.messages[id]
                    .attachments
                    .iter()
                    .map(render::attachment)
                    .collect();
                Ok(Response::json(200, &json!({"value": list})))
            }
            ("POST", ["attachments"]) => {
                let body = request.json()?;
                let attachment = attachment_from_json(&body)?;
                let seq = mailbox.bump();
                let Some(message) = mailbox.messages.get_mut(id) else {
                    return Err(not_found(id));
                };
                let rendered = render::attachment(&attachment);
                message.attachments.push(attachment);
                message.touch(seq, now);
                Ok(Response::json(201, &rendered))
            }
            ("POST", ["attachments", "createUploadSession"]) => {
                let body = request.json()?;
                let item = &body["AttachmentItem"];
                let size = item["size"].as_u64().unwrap_or(0) as usize;
                // https://learn.microsoft.com/en-us/graph/outlook-large-attachments: from
                // 3 MB to 150 MB; smaller files go by one POST.
                if size < MIN_SESSION_BYTES {
                    return Err(Response::error(
                        400,
                        "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
                        "Attachment size must be greater than the minimum size.",
                    ));
                }
                if size > MAX_ATTACHMENT_BYTES {
                    return Err(bad_request("AttachmentItem.size must be at most 150 MB."));
                }
                let session = new_id("UpSess");
                self.uploads.insert(
                    session.clone(),
                    UploadSession {
                        user,
                        message: id.to_string(),
                        name: item["name"].as_str().unwrap_or("attachment").to_string(),
                        content_type: item["contentType"]
                            .as_str()
                            .unwrap_or("application/octet-stream")
                            .to_string(),
                        is_inline: item["isInline"].as_bool().unwrap_or(false),
                        content_id: item["contentId"].as_str().map(str::to_string),
                        size,
                        bytes: Vec::with_capacity(size),
                    },
                );
                let root = request.base.trim_end_matches("/v1.0");
                Ok(Response::json(
                    201,
                    &json!({
                        "uploadUrl": format!("{root}/v1.0/upload/{session}"),
                        "expirationDateTime": render::date(&(now + chrono::Duration::hours(6))),
                        "nextExpectedRanges": ["0-"],
                    }),
                ))
            }
            _ => Err(bad_request("Unsupported message request.")),
        }
    }

    /// One piece of an upload session: `Content-Range: bytes A-B/TOTAL`, in order.
    pub(crate) fn upload_piece(&mut self, session: &str, request: &Request) -> Answer {
        let Some(upload) = self.uploads.get_mut(session) else {
            return Err(not_found(session));
        };
        let range = request.header("content-range").unwrap_or_default();
        let parsed = range
            .strip_prefix("bytes ")
            .and_then(|r| r.split_once('/'))
            .and_then(|(span, total)| {
                let (a, b) = span.split_once('-')?;
                Some((
                    a.parse::<usize>().ok()?,
                    b.parse::<usize>().ok()?,
                    total.parse::<usize>().ok()?,
                ))
            });
        let Some((start, end, total)) = parsed else {
            return Err(bad_request(
                "Content-Range is required: bytes START-END/TOTAL.",
            ));
        };
        // "Upload up to 4 MB each time" (the same page).
        if request.body.len() > MAX_REQUEST_BYTES {
            return Err(Response::error(
                413,
                "RequestBodyTooLarge",
                "Upload at most 4 MB per request.",
            ));
        }
        if start != upload.bytes.len()
            || total != upload.size
            || end + 1 - start != request.body.len()
        {
            return Err(Response::error(
                416,
                "InvalidRange",
                &format!("Expected the range starting at {}.", upload.bytes.len()),
            ));
        }
        upload.bytes.extend_from_slice(&request.body);
        if upload.bytes.len() < upload.size {
            return Ok(Response::json(
                200,
                &json!({"nextExpectedRanges": [format!("{}-", upload.bytes.len())]}),
            ));
        }
        let Some(upload) = self.uploads.remove(session) else {
            return Err(not_found(session));
        };
        let mailbox = &mut self.tenant.users[upload.user].mailbox;
        let seq = mailbox.bump();
        let Some(message) = mailbox.messages.get_mut(&upload.message) else {
            return Err(not_found(&upload.message));
        };
        let id = new_id("AAkALgAtt");
        message.attachments.push(Attachment {
            id: id.clone(),
            name: upload.name,
            content_type: upload.content_type,
            content_id: upload.content_id,
            is_inline: upload.is_inline,
            bytes: upload.bytes,
        });
        message.touch(seq, Utc::now());
        Ok(Response::empty(201).with_header("location", &format!("attachments('{id}')")))
    }

    fn create_message(&mut self, user: usize, folder: &str, request: &Request) -> Answer {
        if request.body.len() > MAX_REQUEST_BYTES {
            return Err(Response::error(
                413,
                "RequestBodyTooLarge",
                "The request body is larger than 4 MB; use an upload session for attachments.",
            ));
        }
        let now = Utc::now();
        let content_type = request.header("content-type").unwrap_or_default();
        let mut message = if content_type.starts_with("text/plain") {
            let mime = STANDARD
                .decode(
                    request
                        .body
                        .iter()
                        .filter(|b| !b.is_ascii_whitespace())
                        .copied()
                        .collect::<Vec<u8>>(),
                )
                .map_err(|_| {
                    Response::error(
                        400,
                        "ErrorMimeContentInvalidBase64String",
                        "Invalid base64 string for MIME content.",
                    )
                })?;
            from_mime(mime, folder, now)?
        } else {
            let body = request.json()?;
            from_json(&body, folder, now)?
        };
        let mailbox = &mut self.tenant.users[user].mailbox;
        message.seq = mailbox.bump();
        let immutable = request.immutable_ids();
        let rendered = render::message(&message, &Query::default(), immutable);
        mailbox.messages.insert(message.id.clone(), message);
        let mut response = Response::json(201, &rendered);
        response.lose_reply = self.take_lost_reply();
        Ok(response)
    }
}

/// A new, empty item of `folder`.
pub(crate) fn blank_item(folder: &str, now: DateTime<Utc>) -> Message {
    blank(folder, now)
}

fn blank(folder: &str, now: DateTime<Utc>) -> Message {
    Message {
        id: new_id("AAkALg"),
        moves: 0,
        folder: folder.to_string(),
        subject: String::new(),
        from: None,
        to: vec![],
        cc: vec![],
        bcc: vec![],
        internet_message_id: format!("<{}@emulator.invalid>", new_id("")),
        body_type: "text".into(),
        body: String::new(),
        attachments: vec![],
        mime: None,
        is_read: false,
        is_draft: true,
        flag_status: "notFlagged".into(),
        categories: vec![],
        received: now,
        sent: None,
        created: now,
        modified: now,
        change_key: 1,
        properties: vec![],
        class: "IPM.Note".into(),
        search_key: crate::world::new_search_key(),
        seq: 0,
        json: None,
    }
}

/// A message created from MIME: always a draft, as documented.
fn from_mime(bytes: Vec<u8>, folder: &str, now: DateTime<Utc>) -> Result<Message, Response> {
    let parsed = mail_parser::MessageParser::default()
        .parse(&bytes)
        .ok_or_else(|| {
            Response::error(
                400,
                "ErrorMimeContentInvalid",
                "The MIME content is not valid.",
            )
        })?;
    let mut message = blank(folder, now);
    message.subject = parsed.subject().unwrap_or_default().to_string();
    let list = |addresses: Option<&mail_parser::Address>| -> Vec<Address> {
        addresses
            .map(|a| {
                a.iter()
                    .map(|addr| Address {
                        name: addr.name().unwrap_or_default().to_string(),
                        address: addr.address().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    message.from = list(parsed.from()).into_iter().next();
    message.to = list(parsed.to());
    message.cc = list(parsed.cc());
    message.bcc = list(parsed.bcc());
    if let Some(id) = parsed.message_id() {
        message.internet_message_id = format!("<{id}>");
    }
    if let Some(sent) = parsed
        .date()
        .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0))
    {
        message.sent = Some(sent);
    }
    message.body = parsed
        .body_text(0)
        .map(|b| b.into_owned())
        .unwrap_or_default();
    message.mime = Some(bytes);
    Ok(message)
}

/// A message created from JSON.
fn from_json(body: &Value, folder: &str, now: DateTime<Utc>) -> Result<Message, Response> {
    let mut message = blank(folder, now);
    message.subject = body["subject"].as_str().unwrap_or_default().to_string();
    if let Some(content) = body["body"]["content"].as_str() {
        message.body = content.to_string();
        message.body_type = body["body"]["contentType"]
            .as_str()
            .unwrap_or("text")
            .to_ascii_lowercase();
    }
    let address = |value: &Value| -> Option<Address> {
        Some(Address {
            name: value["emailAddress"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            address: value["emailAddress"]["address"].as_str()?.to_string(),
        })
    };
    let list = |value: &Value| -> Vec<Address> {
        value
            .as_array()
            .map(|a| a.iter().filter_map(address).collect())
            .unwrap_or_default()
    };
    message.from = address(&body["from"]);
    message.to = list(&body["toRecipients"]);
    message.cc = list(&body["ccRecipients"]);
    message.bcc = list(&body["bccRecipients"]);
    if let Some(id) = body["internetMessageId"].as_str() {
        message.internet_message_id = id.to_string();
    }
    if let Some(attachments) = body["attachments"].as_array() {
        for attachment in attachments {
            message.attachments.push(attachment_from_json(attachment)?);
        }
    }
    apply_common(&mut message, body)?;
    // PidTagMessageFlags, PidTagMessageDeliveryTime and PidTagClientSubmitTime take effect only
    // when given at creation.
    if let Some(flags) = message.property("Integer 0x0E07") {
        let flags: u64 = flags
            .parse()
            .map_err(|_| bad_request("Integer 0x0E07 must be an integer."))?;
        message.is_draft = flags & MSGFLAG_UNSENT != 0;
        message.is_read = flags & MSGFLAG_READ != 0 || message.is_read;
    }
    for (property, slot) in [("SystemTime 0x0E06", 0), ("SystemTime 0x0039", 1)] {
        if let Some(value) = message.property(property) {
            let at = DateTime::parse_from_rfc3339(value)
                .map_err(|_| bad_request(&format!("{property} must be a date and time.")))?
                .with_timezone(&Utc);
            if slot == 0 {
                message.received = at;
            } else {
                message.sent = Some(at);
            }
        }
    }
    message
        .properties
        .retain(|(id, _)| !id.eq_ignore_ascii_case("Integer 0x0E07"));
    Ok(message)
}

/// What may change on any message: read state, flag, categories, extended properties.
fn apply_common(message: &mut Message, body: &Value) -> Result<(), Response> {
    if let Some(read) = body.get("isRead") {
        message.is_read = read
            .as_bool()
            .ok_or_else(|| bad_request("isRead must be true or false."))?;
    }
    if let Some(status) = body["flag"]["flagStatus"].as_str() {
        if !matches!(status, "notFlagged" | "flagged" | "complete") {
            return Err(bad_request(&format!("Unknown flagStatus '{status}'.")));
        }
        message.flag_status = status.to_string();
    }
    if let Some(categories) = body.get("categories") {
        message.categories = categories
            .as_array()
            .ok_or_else(|| bad_request("categories must be an array."))?
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
    }
    if let Some(properties) = body["singleValueExtendedProperties"].as_array() {
        for property in properties {
            let (Some(id), Some(value)) = (property["id"].as_str(), property["value"].as_str())
            else {
                return Err(bad_request(
                    "An extended property needs an id and a string value.",
                ));
            };
            message.set_property(id, value);
        }
    }
    Ok(())
}

pub(crate) fn attachment_from_json(body: &Value) -> Result<Attachment, Response> {
    let bytes = body["contentBytes"]
        .as_str()
        .and_then(|b| STANDARD.decode(b).ok())
        .ok_or_else(|| bad_request("A fileAttachment needs contentBytes in base64."))?;
    Ok(Attachment {
        id: new_id("AAkALgAtt"),
        name: body["name"].as_str().unwrap_or("attachment").to_string(),
        content_type: body["contentType"]
            .as_str()
            .unwrap_or("application/octet-stream")
            .to_string(),
        content_id: body["contentId"].as_str().map(str::to_string),
        is_inline: body["isInline"].as_bool().unwrap_or(false),
        bytes,
    })
}

/// A message delivered by a mail server: its MIME kept, not a draft, received at `received`.
pub(crate) fn delivered(
    bytes: Vec<u8>,
    folder: &str,
    received: DateTime<Utc>,
) -> Result<Message, Response> {
    let mut message = from_mime(bytes, folder, received)?;
    message.is_draft = false;
    Ok(message)
}
