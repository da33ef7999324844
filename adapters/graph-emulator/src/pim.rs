//! Calendars and events, contact folders and contacts, To Do lists and tasks: the JSON APIs
//! over the same folders and items the import/export API exports (a calendar is a folder of
//! class `IPF.Appointment`, an event an item of class `IPM.Appointment`), so an event made
//! here exports and imports like any other item. What each resource shows is kept in the
//! item's `json`; what the service computes (ids, change keys, `iCalUId`, times in UTC) is
//! added when it is shown.
//! - Calendars: https://learn.microsoft.com/en-us/graph/api/resources/calendar, events:
//!   https://learn.microsoft.com/en-us/graph/api/resources/event (a series master holds its
//!   recurrence; its occurrences, exceptions and cancellations are in `occurrences.rs`).
//! - Contacts: https://learn.microsoft.com/en-us/graph/api/resources/contact; `contactFolders`
//!   lists the folders in the default Contacts folder
//!   (https://learn.microsoft.com/en-us/graph/api/user-list-contactfolders); a contact's
//!   photo is `photo/$value` (https://learn.microsoft.com/en-us/graph/api/profilephoto-update).
//! - To Do: https://learn.microsoft.com/en-us/graph/api/resources/todo-overview. Its task
//!   endpoints take delegated permissions only ("Application: Not supported",
//!   https://learn.microsoft.com/en-us/graph/api/todotasklist-post-tasks): an app-only token
//!   is answered 403. A task has no change key: its version is its `@odata.etag`; its linked
//!   resources are given at creation (the same page's example) and shown with
//!   `$expand=linkedResources`.

use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::api::{Answer, Request, Response, World, bad_request, not_found};
use crate::query::Query;
use crate::render;
use crate::world::{Folder, Message, new_id};

/// What a PIM request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pim {
    Event,
    Contact,
    Task,
}

impl Pim {
    fn folder_class(self) -> &'static str {
        match self {
            Pim::Event => "IPF.Appointment",
            Pim::Contact => "IPF.Contact",
            Pim::Task => "IPF.Task",
        }
    }

    fn item_class(self) -> &'static str {
        match self {
            Pim::Event => "IPM.Appointment",
            Pim::Contact => "IPM.Contact",
            Pim::Task => "IPM.Task",
        }
    }

    fn default_folder(self) -> &'static str {
        match self {
            Pim::Event => "calendar",
            Pim::Contact => "contacts",
            Pim::Task => "tasks",
        }
    }
}

/// The properties the service sets, never taken from a client.
const READ_ONLY: &[&str] = &[
    "id",
    "changeKey",
    "@odata.etag",
    "iCalUId",
    "createdDateTime",
    "lastModifiedDateTime",
    "type",
    "seriesMasterId",
    "originalStart",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "singleValueExtendedProperties",
    "attachments",
];

impl World {
    /// `/users/{id}/{calendars|calendar|events|contactFolders|contacts|todo}/…`.
    pub(crate) fn pim_request(
        &mut self,
        user: usize,
        method: &str,
        rest: &[&str],
        request: &Request,
        query: &Query,
    ) -> Answer {
        if rest.first() == Some(&"todo") {
            let upn = &self.tenant.users[user].upn;
            if request
                .subject
                .as_deref()
                .is_none_or(|s| !s.eq_ignore_ascii_case(upn))
            {
                return Err(Response::error(
                    403,
                    "Forbidden",
                    "To Do tasks take delegated permissions of their own user only; application permissions are not supported.",
                ));
            }
        }
        let default = |pim: Pim, world: &World| {
            world.tenant.users[user]
                .mailbox
                .well_known(pim.default_folder())
        };
        match (method, rest) {
            ("GET", ["calendars"]) => Ok(self.list_pim_folders(user, Pim::Event, None, query)),
            ("POST", ["calendars"]) => self.create_pim_folder(user, Pim::Event, None, request),
            ("GET", ["contactFolders"]) => {
                let parent = default(Pim::Contact, self);
                Ok(self.list_pim_folders(user, Pim::Contact, Some(&parent), query))
            }
            ("POST", ["contactFolders"]) => {
                let parent = default(Pim::Contact, self);
                self.create_pim_folder(user, Pim::Contact, Some(&parent), request)
            }
            ("GET", ["todo", "lists"]) => Ok(self.list_pim_folders(user, Pim::Task, None, query)),
            ("POST", ["todo", "lists"]) => self.create_pim_folder(user, Pim::Task, None, request),
            (_, ["calendars", folder, tail @ ..]) => {
                self.in_folder(user, Pim::Event, folder, method, tail, request, query)
            }
            (_, ["calendar", tail @ ..]) => {
                let folder = default(Pim::Event, self);
                self.in_folder(user, Pim::Event, &folder, method, tail, request, query)
            }
            (_, ["contactFolders", folder, tail @ ..]) => {
                self.in_folder(user, Pim::Contact, folder, method, tail, request, query)
            }
            (_, ["todo", "lists", folder, tail @ ..]) => {
                self.in_folder(user, Pim::Task, folder, method, tail, request, query)
            }
            ("GET", ["events", "delta"]) => {
                // Events have a delta only over a calendarView window
                // (https://learn.microsoft.com/en-us/graph/delta-query-events).
                Err(bad_request(
                    "Change tracking of events is supported on calendarView only.",
                ))
            }
            (_, ["events", tail @ ..]) => {
                let folder = default(Pim::Event, self);
                self.items(user, Pim::Event, &folder, method, tail, request, query)
            }
            (_, ["contacts", tail @ ..]) => {
                let folder = default(Pim::Contact, self);
                self.items(user, Pim::Contact, &folder, method, tail, request, query)
            }
            _ => Err(bad_request(&format!(
                "Unsupported request {method} {}",
                request.path
            ))),
        }
    }

    fn list_pim_folders(
        &self,
        user: usize,
        pim: Pim,
        parent: Option<&str>,
        query: &Query,
    ) -> Response {
        let mailbox = &self.tenant.users[user].mailbox;
        let mut folders: Vec<&Folder> = mailbox
            .folders
            .values()
            .filter(|f| f.class == pim.folder_class())
            .filter(|f| parent.is_none_or(|p| f.parent.as_deref() == Some(p)))
            .collect();
        folders.sort_by(|a, b| (&a.display_name, &a.id).cmp(&(&b.display_name, &b.id)));
        let value: Vec<Value> = folders
            .iter()
            .map(|f| pim_folder(mailbox, f, pim, query))
            .collect();
        Response::json(200, &json!({ "value": value }))
    }

    fn create_pim_folder(
        &mut self,
        user: usize,
        pim: Pim,
        parent: Option<&str>,
        request: &Request,
    ) -> Answer {
        let body = request.json()?;
        let name_field = if pim == Pim::Event {
            "name"
        } else {
            "displayName"
        };
        let Some(name) = body[name_field].as_str().filter(|n| !n.trim().is_empty()) else {
            return Err(bad_request(&format!("{name_field} is required.")));
        };
        let mailbox = &mut self.tenant.users[user].mailbox;
        let parent = match parent {
            Some(parent) => parent.to_string(),
            None => mailbox.well_known("msgfolderroot"),
        };
        // Folder names are unique among siblings, without regard to case.
        if mailbox.folders.values().any(|f| {
            f.parent.as_deref() == Some(parent.as_str())
                && f.display_name.eq_ignore_ascii_case(name)
        }) {
            return Err(Response::error(
                409,
                "ErrorFolderExists",
                "A folder with the specified name already exists.",
            ));
        }
        let id = new_id("AQMkAGFld");
        mailbox.folders.insert(
            id.clone(),
            Folder {
                id: id.clone(),
                display_name: name.to_string(),
                parent: Some(parent),
                well_known: None,
                class: pim.folder_class().into(),
            },
        );
        let mut properties = extended(&body);
        // `hexColor` is read-only, `color` a theme
        // (https://learn.microsoft.com/en-us/graph/api/resources/calendar): only the latter
        // is taken.
        if let Some(value) = body["color"].as_str() {
            properties.push(("~color".into(), value.to_string()));
        }
        mailbox.folder_properties.insert(id.clone(), properties);
        mailbox.bump();
        let folder = &mailbox.folders[&id];
        Ok(Response::json(
            201,
            &pim_folder(mailbox, folder, pim, &Query::default()),
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn in_folder(
        &mut self,
        user: usize,
        pim: Pim,
        folder: &str,
        method: &str,
        tail: &[&str],
        request: &Request,
        query: &Query,
    ) -> Answer {
        let mailbox = &mut self.tenant.users[user].mailbox;
        let Some(folder) = mailbox
            .folder_id(folder)
            .filter(|id| mailbox.folders[id].class == pim.folder_class())
        else {
            return Err(not_found(folder));
        };
        match (method, tail) {
            ("GET", []) => Ok(Response::json(
                200,
                &pim_folder(mailbox, &mailbox.folders[&folder], pim, query),
            )),
            ("PATCH", []) => {
                // Update calendar / contactFolder / todoTaskList: the name, a calendar's theme
                // colour and extended properties; `hexColor` is read-only
                // (https://learn.microsoft.com/en-us/graph/api/calendar-update).
                let body = request.json()?;
                let name_field = if pim == Pim::Event {
                    "name"
                } else {
                    "displayName"
                };
                if let Some(name) = body[name_field].as_str() {
                    if name.trim().is_empty() {
                        return Err(bad_request(&format!("{name_field} cannot be empty.")));
                    }
                    if let Some(entry) = mailbox.folders.get_mut(&folder) {
                        entry.display_name = name.to_string();
                    }
                }
                let mut changed = extended(&body);
                if let Some(value) = body["color"].as_str() {
                    changed.push(("~color".into(), value.to_string()));
                }
                let properties = mailbox.folder_properties.entry(folder.clone()).or_default();
                for (id, value) in changed {
                    properties.retain(|(name, _)| !name.eq_ignore_ascii_case(&id));
                    properties.push((id, value));
                }
                mailbox.bump();
                Ok(Response::json(
                    200,
                    &pim_folder(mailbox, &mailbox.folders[&folder], pim, query),
                ))
            }
            ("DELETE", []) => {
                if mailbox.folders[&folder].well_known.is_some() {
                    return Err(Response::error(
                        403,
                        "ErrorDeleteDistinguishedFolder",
                        "Distinguished folders cannot be deleted.",
                    ));
                }
                let ids: Vec<String> = mailbox
                    .in_folder(&folder)
                    .iter()
                    .map(|m| m.id.clone())
                    .collect();
                for id in ids {
                    mailbox.purge(&id);
                }
                mailbox.folders.remove(&folder);
                mailbox.folder_properties.remove(&folder);
                mailbox.bump();
                Ok(Response::empty(204))
            }
            (_, ["events" | "contacts" | "tasks", rest @ ..]) => {
                self.items(user, pim, &folder, method, rest, request, query)
            }
            _ => Err(bad_request("Unsupported folder request.")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn items(
        &mut self,
        user: usize,
        pim: Pim,
        folder: &str,
        method: &str,
        rest: &[&str],
        request: &Request,
        query: &Query,
    ) -> Answer {
        match (method, rest) {
            ("GET", []) => Ok(self.list_pim_items(user, pim, folder, request, query)),
            ("POST", []) => self.create_pim_item(user, pim, folder, request, query),
            (_, [id, tail @ ..]) => {
                if pim == Pim::Event
                    && let Some((master, start)) = crate::occurrences::parse_id(id)
                {
                    return self.occurrence_request(user, &master, &start, method, tail, request);
                }
                let mailbox = &self.tenant.users[user].mailbox;
                let Some(item) = mailbox
                    .messages
                    .get(*id)
                    .filter(|m| m.class == pim.item_class() && m.json.is_some())
                else {
                    return Err(not_found(id));
                };
                // `/events/{id}` and `/contacts/{id}` reach an item of any folder of the
                // mailbox; a task is reached through its list only.
                if pim == Pim::Task && item.folder != folder {
                    return Err(not_found(id));
                }
                let id = item.id.clone();
                self.pim_item_request(user, pim, &id, method, tail, request, query)
            }
            _ => Err(bad_request("Unsupported item request.")),
        }
    }

    fn list_pim_items(
        &self,
        user: usize,
        pim: Pim,
        folder: &str,
        request: &Request,
        query: &Query,
    ) -> Response {
        let mailbox = &self.tenant.users[user].mailbox;
        let mut items: Vec<&Message> = mailbox
            .in_folder(folder)
            .into_iter()
            .filter(|m| m.class == pim.item_class() && m.json.is_some() && query.matches(m))
            .collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        let top = query.top.unwrap_or(self.page_size).clamp(1, 1000);
        let page: Vec<Value> = items
            .iter()
            .skip(query.skip)
            .take(top)
            .map(|m| show(m, pim, query, request))
            .collect();
        let mut out = json!({ "value": page });
        if query.skip + top < items.len() {
            out["@odata.nextLink"] = json!(crate::api::next_link(request, query.skip + top, top));
        }
        Response::json(200, &out)
    }

    fn create_pim_item(
        &mut self,
        user: usize,
        pim: Pim,
        folder: &str,
        request: &Request,
        query: &Query,
    ) -> Answer {
        let body = request.json()?;
        let Some(object) = body.as_object() else {
            return Err(bad_request("The request body must be a JSON object."));
        };
        if pim == Pim::Event {
            crate::occurrences::check_times(&body)?;
        }
        let now = Utc::now();
        let lose = self.faults.lose_create_replies > 0;
        let mailbox = &mut self.tenant.users[user].mailbox;
        let mut item = crate::messages::blank_item(folder, now);
        item.class = pim.item_class().into();
        item.is_draft = false;
        item.id = new_id(match pim {
            Pim::Event => "AAMkAGEvt",
            Pim::Contact => "AAMkAGCnt",
            Pim::Task => "AAMkAGTsk",
        });
        item.properties = extended(&body);
        let mut kept = writable(object);
        if pim == Pim::Event {
            kept.insert(
                "iCalUId".into(),
                json!(format!("040000008200E00074C5B7101A82E008{}", new_id(""))),
            );
        }
        if pim == Pim::Task
            && let Some(resources) = kept
                .get_mut("linkedResources")
                .and_then(Value::as_array_mut)
        {
            for resource in resources {
                resource["id"] = json!(crate::world::uuid_like());
            }
        }
        item.json = Some(Value::Object(kept));
        item.seq = mailbox.bump();
        let id = item.id.clone();
        mailbox.messages.insert(id.clone(), item);
        let shown = show(&mailbox.messages[&id], pim, query, request);
        if lose {
            self.faults.lose_create_replies -= 1;
            let mut response = Response::json(201, &shown);
            response.lose_reply = true;
            return Ok(response);
        }
        Ok(Response::json(201, &shown))
    }

    #[allow(clippy::too_many_arguments)]
    fn pim_item_request(
        &mut self,
        user: usize,
        pim: Pim,
        id: &str,
        method: &str,
        tail: &[&str],
        request: &Request,
        query: &Query,
    ) -> Answer {
        let now = Utc::now();
        let mailbox = &mut self.tenant.users[user].mailbox;
        match (method, tail) {
            ("GET", []) => Ok(Response::json(
                200,
                &show(&mailbox.messages[id], pim, query, request),
            )),
            ("PATCH", []) => {
                let body = request.json()?;
                let Some(object) = body.as_object() else {
                    return Err(bad_request("The request body must be a JSON object."));
                };
                if pim == Pim::Event {
                    crate::occurrences::check_times(&body)?;
                }
                let seq = mailbox.bump();
                let Some(item) = mailbox.messages.get_mut(id) else {
                    return Err(not_found(id));
                };
                let mut changes = writable(object);
                // Linked resources change through their own requests.
                changes.remove("linkedResources");
                if let Some(Value::Object(kept)) = item.json.as_mut() {
                    for (key, value) in changes {
                        kept.insert(key, value);
                    }
                }
                for (property, value) in extended(&body) {
                    item.set_property(&property, &value);
                }
                item.touch(seq, now);
                Ok(Response::json(200, &show(item, pim, query, request)))
            }
            ("DELETE", []) => {
                mailbox.purge(id);
                mailbox.bump();
                Ok(Response::empty(204))
            }
            ("GET", ["instances"]) if pim == Pim::Event => {
                crate::occurrences::instances(&mailbox.messages[id], request)
            }
            ("GET", ["attachments"]) => {
                let value: Vec<Value> = mailbox.messages[id]
                    .attachments
                    .iter()
                    .map(render::attachment)
                    .collect();
                Ok(Response::json(200, &json!({ "value": value })))
            }
            ("DELETE", ["attachments", attachment]) => {
                // https://learn.microsoft.com/en-us/graph/api/attachment-delete
                let seq = mailbox.bump();
                let Some(item) = mailbox.messages.get_mut(id) else {
                    return Err(not_found(id));
                };
                let before = item.attachments.len();
                item.attachments.retain(|a| a.id != *attachment);
                if item.attachments.len() == before {
                    return Err(not_found(attachment));
                }
                item.touch(seq, now);
                Ok(Response::empty(204))
            }
            ("POST", ["attachments"]) => {
                let body = request.json()?;
                let attachment = crate::messages::attachment_from_json(&body)?;
                let seq = mailbox.bump();
                let Some(item) = mailbox.messages.get_mut(id) else {
                    return Err(not_found(id));
                };
                item.attachments.push(attachment);
                item.touch(seq, now);
                let made = item.attachments.last().map(render::attachment);
                Ok(Response::json(201, &made.unwrap_or_default()))
            }
            ("PATCH", ["linkedResources", resource]) if pim == Pim::Task => {
                // https://learn.microsoft.com/en-us/graph/api/linkedresource-update
                let body = request.json()?;
                let seq = mailbox.bump();
                let Some(item) = mailbox.messages.get_mut(id) else {
                    return Err(not_found(id));
                };
                let found = item
                    .json
                    .as_mut()
                    .and_then(|j| j.get_mut("linkedResources"))
                    .and_then(Value::as_array_mut)
                    .and_then(|list| {
                        list.iter_mut()
                            .find(|r| r["id"].as_str() == Some(*resource))
                    });
                let Some(found) = found else {
                    return Err(not_found(resource));
                };
                if let (Some(slot), Some(changes)) = (found.as_object_mut(), body.as_object()) {
                    for (name, value) in changes {
                        if name != "id" {
                            slot.insert(name.clone(), value.clone());
                        }
                    }
                }
                let shown = found.clone();
                item.touch(seq, now);
                Ok(Response::json(200, &shown))
            }
            ("GET", ["photo", "$value"]) if pim == Pim::Contact => {
                let photo = mailbox.messages[id]
                    .attachments
                    .iter()
                    .find(|a| a.name == "ContactPicture.jpg");
                match photo {
                    None => Err(Response::error(
                        404,
                        "ErrorItemNotFound",
                        "The photo wasn't found.",
                    )),
                    Some(photo) => {
                        let mut response = Response::empty(200);
                        response.body = photo.bytes.clone();
                        Ok(response.with_header("content-type", &photo.content_type))
                    }
                }
            }
            ("DELETE", ["photo", "$value"]) if pim == Pim::Contact => {
                // As a user's photo is deleted
                // (https://learn.microsoft.com/en-us/graph/api/profilephoto-delete); not
                // documented for contacts, assumed alike.
                let seq = mailbox.bump();
                let Some(item) = mailbox.messages.get_mut(id) else {
                    return Err(not_found(id));
                };
                let before = item.attachments.len();
                item.attachments.retain(|a| a.name != "ContactPicture.jpg");
                if item.attachments.len() == before {
                    return Err(not_found("photo"));
                }
                item.touch(seq, now);
                Ok(Response::empty(204))
            }
            ("PUT", ["photo", "$value"]) if pim == Pim::Contact => {
                let content_type = request
                    .header("content-type")
                    .unwrap_or("image/jpeg")
                    .to_string();
                let seq = mailbox.bump();
                let Some(item) = mailbox.messages.get_mut(id) else {
                    return Err(not_found(id));
                };
                item.attachments.retain(|a| a.name != "ContactPicture.jpg");
                item.attachments.push(crate::world::Attachment {
                    id: new_id("AAMkAGAtt"),
                    name: "ContactPicture.jpg".into(),
                    content_type,
                    content_id: None,
                    is_inline: false,
                    bytes: request.body.to_vec(),
                });
                item.touch(seq, now);
                Ok(Response::empty(200))
            }
            _ => Err(bad_request("Unsupported item request.")),
        }
    }
}

/// The fields a client may set, as given.
fn writable(object: &Map<String, Value>) -> Map<String, Value> {
    object
        .iter()
        .filter(|(key, _)| !READ_ONLY.iter().any(|r| r.eq_ignore_ascii_case(key)))
        .filter(|(key, _)| !key.starts_with('@') && !key.starts_with('_'))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// `singleValueExtendedProperties` of a request body: (id, value).
pub(crate) fn extended(body: &Value) -> Vec<(String, String)> {
    body["singleValueExtendedProperties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p["id"].as_str()?.to_string(),
                p["value"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn expanded(properties: &[(String, String)], query: &Query) -> Option<Value> {
    let ids = query.expand.as_ref()?;
    let found: Vec<Value> = ids
        .iter()
        .filter_map(|id| {
            let (_, value) = properties
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(id))?;
            Some(json!({"id": id, "value": value}))
        })
        .collect();
    (!found.is_empty()).then_some(Value::Array(found))
}

fn pim_folder(mailbox: &crate::world::Mailbox, folder: &Folder, pim: Pim, query: &Query) -> Value {
    let properties = mailbox
        .folder_properties
        .get(&folder.id)
        .cloned()
        .unwrap_or_default();
    let own = |name: &str| {
        properties
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let mut out = match pim {
        Pim::Event => json!({
            "id": folder.id,
            "name": folder.display_name,
            "color": own("~color").unwrap_or_else(|| "auto".into()),
            "hexColor": own("~hexColor").unwrap_or_default(),
            "isDefaultCalendar": folder.well_known.as_deref() == Some("calendar"),
            "changeKey": format!("{}", folder.id.len()),
            "canEdit": true,
        }),
        Pim::Contact => json!({
            "id": folder.id,
            "displayName": folder.display_name,
            "parentFolderId": folder.parent,
        }),
        Pim::Task => json!({
            "id": folder.id,
            "displayName": folder.display_name,
            "isOwner": true,
            "isShared": false,
            "wellknownListName": if folder.well_known.as_deref() == Some("tasks") { "defaultList" } else { "none" },
        }),
    };
    if let Some(found) = expanded(&properties, query) {
        out["singleValueExtendedProperties"] = found;
    }
    out
}

/// An item as its API shows it.
pub(crate) fn show(item: &Message, pim: Pim, query: &Query, request: &Request) -> Value {
    let mut all = match &item.json {
        Some(Value::Object(kept)) => kept.clone(),
        _ => Map::new(),
    };
    all.retain(|key, _| !key.starts_with('_'));
    let etag = format!("W/\"{}\"", render::change_key(item));
    all.insert("id".into(), json!(item.id));
    all.insert("createdDateTime".into(), json!(render::date(&item.created)));
    all.insert(
        "lastModifiedDateTime".into(),
        json!(render::date(&item.modified)),
    );
    if pim != Pim::Task {
        all.insert("changeKey".into(), json!(render::change_key(item)));
    }
    if pim == Pim::Event {
        crate::occurrences::show_event(&mut all, request);
        all.insert("hasAttachments".into(), json!(!item.attachments.is_empty()));
    }
    let linked = all.remove("linkedResources");
    let mut out = Map::new();
    out.insert("@odata.etag".into(), json!(etag));
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
    if query.expand_linked {
        out.insert(
            "linkedResources".into(),
            linked.unwrap_or_else(|| json!([])),
        );
    }
    if let Some(found) = expanded(&item.properties, query) {
        out.insert("singleValueExtendedProperties".into(), found);
    }
    Value::Object(out)
}
