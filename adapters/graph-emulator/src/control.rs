//! The emulator's own control plane, under `/_emulator/` (not Graph): what tests and an
//! operator trying a client need to see and to provoke.
//! - `GET /_emulator/counters`: each mailbox's counters (`limits::Counters`), by UPN.
//! - `GET /_emulator/mailbox/{upn}`: its folders (with paths) and messages (properties, no
//!   bodies): the emulator's own state, to check a migration against.
//! - `POST /_emulator/faults` with `{"fresh_boundaries": bool, "lose_create_replies": n,
//!   "expire_delta_tokens": "upn", "throttle": "profile", "reset_counters": true}`.
//! - `POST /_emulator/deliver/{upn}?folder=NAME[&received=RFC3339]` with a MIME message:
//!   delivered as a mail server would (not a draft, received then or now), the way a source mailbox gets its mail.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Value, json};

use crate::Shared;
use crate::api::{Request, Response};
use crate::limits::Limits;
use crate::render;
use crate::world::Mailbox;

pub fn handle(shared: &Shared, request: &Request, rest: &[&str]) -> Response {
    match (request.method.as_str(), rest) {
        ("GET", ["counters"]) => {
            let world = shared.world();
            let mut out = serde_json::Map::new();
            for (index, user) in world.tenant.users.iter().enumerate() {
                let counters = shared.meter(index, |meter| meter.counters.clone());
                out.insert(user.upn.clone(), json!(counters));
            }
            Response::json(200, &Value::Object(out))
        }
        ("GET", ["mailbox", upn]) => {
            let world = shared.world();
            match world.tenant.user_index(upn) {
                Some(index) => Response::json(200, &dump(&world.tenant.users[index].mailbox)),
                None => Response::error(404, "NotFound", "No such user."),
            }
        }
        ("POST", ["faults"]) => {
            let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
                return Response::error(400, "BadRequest", "Faults are a JSON object.");
            };
            if let Some(name) = body["throttle"].as_str() {
                match Limits::profile(name) {
                    Some(limits) => shared.set_limits(limits),
                    None => return Response::error(400, "BadRequest", "Unknown throttle profile."),
                }
            }
            let mut world = shared.world();
            if let Some(fresh) = body["fresh_boundaries"].as_bool() {
                world.faults.fresh_boundaries = fresh;
            }
            if let Some(lose) = body["lose_create_replies"].as_u64() {
                world.faults.lose_create_replies = lose as u32;
            }
            if let Some(upn) = body["expire_delta_tokens"].as_str() {
                let Some(index) = world.tenant.user_index(upn) else {
                    return Response::error(404, "NotFound", "No such user.");
                };
                let mailbox = &mut world.tenant.users[index].mailbox;
                mailbox.tokens_valid_from = mailbox.bump() + 1;
            }
            drop(world);
            if body["reset_counters"].as_bool() == Some(true) {
                shared.reset_counters();
            }
            Response::empty(204)
        }
        ("POST", ["deliver", upn]) => {
            let param = |name: &str| {
                form_urlencoded::parse(request.query.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            };
            let folder = param("folder").unwrap_or_else(|| "inbox".into());
            let received = match param("received").map(|r| chrono::DateTime::parse_from_rfc3339(&r))
            {
                None => Utc::now(),
                Some(Ok(at)) => at.with_timezone(&Utc),
                Some(Err(_)) => {
                    return Response::error(400, "BadRequest", "received is an RFC 3339 date.");
                }
            };
            let mut world = shared.world();
            let Some(index) = world.tenant.user_index(upn) else {
                return Response::error(404, "NotFound", "No such user.");
            };
            let mailbox = &mut world.tenant.users[index].mailbox;
            match mailbox.deliver(&folder, request.body.to_vec(), received) {
                Ok(id) => {
                    shared.mark_dirty("POST");
                    Response::json(201, &json!({"id": id}))
                }
                Err(error) => error,
            }
        }
        _ => Response::error(404, "NotFound", "No such control endpoint."),
    }
}

/// A folder's path from the root, `/`-separated display names.
pub fn path_of(mailbox: &Mailbox, folder: &str) -> String {
    let mut names = Vec::new();
    let mut at = Some(folder.to_string());
    while let Some(id) = at {
        let Some(f) = mailbox.folders.get(&id) else {
            break;
        };
        if f.parent.is_none() {
            break;
        }
        names.push(f.display_name.clone());
        at = f.parent.clone();
    }
    names.reverse();
    names.join("/")
}

fn dump(mailbox: &Mailbox) -> Value {
    let folders: BTreeMap<String, Value> = mailbox
        .folders
        .values()
        .filter(|f| f.parent.is_some())
        .map(|f| {
            (
                path_of(mailbox, &f.id),
                json!({"id": f.id, "wellKnownName": f.well_known}),
            )
        })
        .collect();
    let mut messages: Vec<Value> = mailbox
        .messages
        .values()
        .map(|m| {
            json!({
                "id": m.id,
                "folder": path_of(mailbox, &m.folder),
                "subject": m.subject,
                "internetMessageId": m.internet_message_id,
                "isRead": m.is_read,
                "isDraft": m.is_draft,
                "flagStatus": m.flag_status,
                "categories": m.categories,
                "receivedDateTime": render::date(&m.received),
                "properties": m.properties.iter().map(|(k, v)| json!({"id": k, "value": v})).collect::<Vec<_>>(),
                "attachments": m.attachments.len(),
            })
        })
        .collect();
    messages.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    json!({"folders": folders, "messages": messages})
}
