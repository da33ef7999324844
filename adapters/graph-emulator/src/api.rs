//! Requests to the emulated Graph, answered synchronously over the world under one lock: the
//! HTTP layer (`server.rs`) authenticates, throttles and then calls [`World::handle`], and
//! `$batch` calls it once per inner request. Routing, errors, users, licences and folders
//! here; messages in `messages.rs`, deltas in `delta.rs`.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::Utc;
use serde_json::{Value, json};

use crate::query::Query;
use crate::render;
use crate::world::{Folder, Tenant, new_id, uuid_like};

/// One request, as the HTTP layer or a `$batch` gives it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The path below the version (`/users/…`), percent-decoded per segment by the router.
    pub path: String,
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// `http://host:port/v1.0`, for the links in answers.
    pub base: String,
    /// The user a delegated token was issued to; `None` for an app-only token.
    pub subject: Option<String>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// `Prefer: IdType="ImmutableId"` (https://learn.microsoft.com/en-us/graph/outlook-immutable-id).
    pub fn immutable_ids(&self) -> bool {
        self.headers.iter().any(|(key, value)| {
            key.eq_ignore_ascii_case("prefer") && value.contains("IdType=\"ImmutableId\"")
        })
    }

    /// `Prefer: odata.maxpagesize=N` (https://learn.microsoft.com/en-us/graph/delta-query-messages).
    pub fn max_page_size(&self) -> Option<usize> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case("prefer"))
            .flat_map(|(_, value)| value.split(','))
            .find_map(|part| part.trim().strip_prefix("odata.maxpagesize=")?.parse().ok())
    }

    pub(crate) fn json(&self) -> Result<Value, Response> {
        serde_json::from_slice(&self.body).map_err(|error| {
            Response::error(
                400,
                "BadRequest",
                &format!("Unable to read JSON request payload: {error}"),
            )
        })
    }
}

/// One answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The write committed but its reply is to be lost (a fault on demand): the connection is
    /// dropped without an answer.
    pub lose_reply: bool,
}

impl Response {
    pub fn json(status: u16, value: &Value) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string().into_bytes(),
            lose_reply: false,
        }
    }

    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            lose_reply: false,
        }
    }

    /// Graph's error shape (https://learn.microsoft.com/en-us/graph/errors).
    pub fn error(status: u16, code: &str, message: &str) -> Response {
        Response::json(
            status,
            &json!({"error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": render::date(&Utc::now()),
                    "request-id": uuid_like(),
                    "client-request-id": uuid_like(),
                }
            }}),
        )
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// Faults the tests turn on.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// `$value` gives new multipart boundaries at every download.
    pub fresh_boundaries: bool,
    /// The next this many writes that create an item commit, and their reply is lost.
    pub lose_create_replies: u32,
}

/// An attachment upload in progress
/// (https://learn.microsoft.com/en-us/graph/outlook-large-attachments).
#[derive(Debug, Clone)]
pub struct UploadSession {
    pub user: usize,
    pub message: String,
    pub name: String,
    pub content_type: String,
    pub is_inline: bool,
    pub content_id: Option<String>,
    pub size: usize,
    pub bytes: Vec<u8>,
}

/// The emulated service's state.
#[derive(Debug)]
pub struct World {
    pub tenant: Tenant,
    pub faults: Faults,
    pub uploads: HashMap<String, UploadSession>,
    /// Import sessions by their token.
    pub imports: HashMap<String, crate::exchange::ImportSession>,
    /// Messages per page when the client does not say.
    pub page_size: usize,
}

pub(crate) type Answer = Result<Response, Response>;

pub(crate) fn not_found(what: &str) -> Response {
    Response::error(
        404,
        "ErrorItemNotFound",
        &format!("The specified object was not found in the store. ({what})"),
    )
}

pub(crate) fn bad_request(message: &str) -> Response {
    Response::error(400, "ErrorInvalidRequest", message)
}

/// A member of a JSON object by name without regard to case: action parameters are matched
/// so by the service (the SDKs send `DestinationId` as the metadata spells it).
pub(crate) fn field<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body.as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// Percent-decoded path segments.
pub fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

impl World {
    pub fn new(tenant: Tenant) -> World {
        World {
            tenant,
            faults: Faults::default(),
            uploads: HashMap::new(),
            imports: HashMap::new(),
            page_size: 10,
        }
    }

    /// The user a request is for, by index, when its path names one.
    pub fn mailbox_of(&self, path: &str) -> Option<usize> {
        let segments = segments(path);
        match segments.as_slice() {
            [users, user, ..] if users == "users" => self.tenant.user_index(user),
            [admin, _, _, mailbox, ..] if admin == "admin" => {
                crate::exchange::user_of_mailbox(self, mailbox)
            }
            [import, mailbox] if import == "import" => {
                crate::exchange::user_of_mailbox(self, mailbox)
            }
            _ => None,
        }
    }

    /// Answers one request.
    pub fn handle(&mut self, request: &Request) -> Response {
        // An import URL's query is its session token, not OData.
        let odata = if request.path.starts_with("/import/") {
            ""
        } else {
            &request.query
        };
        let query = match Query::parse(odata) {
            Ok(query) => query,
            Err(invalid) => return Response::error(400, "BadRequest", &invalid.0),
        };
        let segments = segments(&request.path);
        let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
        let method = request.method.as_str();
        let answer = match (method, parts.as_slice()) {
            ("GET", ["users"]) => Ok(self.list_users(request, &query)),
            ("POST", ["users"]) => self.create_user(request),
            ("GET", ["subscribedSkus"]) => Ok(self.subscribed_skus()),
            (_, ["users", user, rest @ ..]) => match self.tenant.user_index(user) {
                None => Err(Response::error(
                    404,
                    "Request_ResourceNotFound",
                    &format!(
                        "Resource '{user}' does not exist or one of its queried reference-property objects are not present."
                    ),
                )),
                Some(index) => self.user_request(index, method, rest, request, &query),
            },
            ("PUT", ["upload", session]) => self.upload_piece(session, request),
            (_, ["admin", "exchange", "mailboxes", mailbox, tail @ ..]) => {
                self.exchange_request(mailbox, method, tail, request, &query)
            }
            ("POST", ["import", mailbox]) => self.import_item(mailbox, request),
            _ => Err(Response::error(
                400,
                "BadRequest",
                &format!("Resource not found for the segment '{}'.", request.path),
            )),
        };
        answer.unwrap_or_else(|error| error)
    }

    fn user_request(
        &mut self,
        user: usize,
        method: &str,
        rest: &[&str],
        request: &Request,
        query: &Query,
    ) -> Answer {
        match (method, rest) {
            ("GET", []) => Ok(Response::json(200, &self.user_json(user))),
            ("POST", ["assignLicense"]) => self.assign_license(user, request),
            _ if self.tenant.users[user].licenses.is_empty() => {
                // A user without an Exchange licence has no mailbox yet
                // (https://learn.microsoft.com/en-us/graph/api/resources/mail-api-overview).
                Err(Response::error(
                    404,
                    "MailboxNotEnabledForRESTAPI",
                    "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
                ))
            }
            ("GET", ["settings", "exchange"]) => Ok(self.exchange_settings(user)),
            ("GET", ["mailFolders"]) => {
                let root = self.tenant.users[user].mailbox.well_known("msgfolderroot");
                self.list_folders(user, &root, request, query)
            }
            ("POST", ["mailFolders"]) => {
                let root = self.tenant.users[user].mailbox.well_known("msgfolderroot");
                self.create_folder(user, &root, request)
            }
            (_, ["mailFolders", folder, tail @ ..]) => {
                // A calendar or an address book is not a mail folder.
                let mailbox = &self.tenant.users[user].mailbox;
                let Some(folder) = mailbox
                    .folder_id(folder)
                    .filter(|id| mailbox.folders[id].is_mail())
                else {
                    return Err(not_found(folder));
                };
                self.folder_request(user, &folder, method, tail, request, query)
            }
            (_, ["messages", tail @ ..]) => {
                self.messages_request(user, None, method, tail, request, query)
            }
            (
                _,
                [
                    "calendars" | "calendar" | "events" | "contactFolders" | "contacts" | "todo",
                    ..,
                ],
            ) => self.pim_request(user, method, rest, request, query),
            _ => Err(bad_request(&format!(
                "Unsupported request {method} {}",
                request.path
            ))),
        }
    }

    fn folder_request(
        &mut self,
        user: usize,
        folder: &str,
        method: &str,
        tail: &[&str],
        request: &Request,
        query: &Query,
    ) -> Answer {
        let mailbox = &mut self.tenant.users[user].mailbox;
        match (method, tail) {
            ("GET", []) => Ok(Response::json(
                200,
                &render::folder(mailbox, &mailbox.folders[folder]),
            )),
            ("PATCH", []) => {
                let body = request.json()?;
                if let Some(name) = body["displayName"].as_str() {
                    if mailbox.folders[folder].well_known.is_some() {
                        return Err(Response::error(
                            403,
                            "ErrorAccessDenied",
                            "A well-known folder cannot be renamed.",
                        ));
                    }
                    self.check_sibling_name(
                        user,
                        folder,
                        mailbox_parent(self, user, folder),
                        name,
                    )?;
                    let mailbox = &mut self.tenant.users[user].mailbox;
                    if let Some(f) = mailbox.folders.get_mut(folder) {
                        f.display_name = name.to_string();
                    }
                }
                let mailbox = &self.tenant.users[user].mailbox;
                Ok(Response::json(
                    200,
                    &render::folder(mailbox, &mailbox.folders[folder]),
                ))
            }
            ("DELETE", []) => {
                if mailbox.folders[folder].well_known.is_some() {
                    return Err(Response::error(
                        403,
                        "ErrorDeleteDistinguishedFolder",
                        "Distinguished folders cannot be deleted.",
                    ));
                }
                // A deleted folder goes to Deleted Items with what it holds
                // (https://learn.microsoft.com/en-us/graph/api/mailfolder-delete).
                let deleted = mailbox.well_known("deleteditems");
                if let Some(f) = mailbox.folders.get_mut(folder) {
                    f.parent = Some(deleted);
                }
                mailbox.bump();
                Ok(Response::empty(204))
            }
            ("POST", ["permanentDelete"]) => {
                // The folder, its subfolders and every item in them, for good
                // (https://learn.microsoft.com/en-us/graph/api/mailfolder-permanentdelete).
                if mailbox.folders[folder].well_known.is_some() {
                    return Err(Response::error(
                        403,
                        "ErrorDeleteDistinguishedFolder",
                        "Distinguished folders cannot be deleted.",
                    ));
                }
                let doomed: Vec<String> = mailbox
                    .folders
                    .keys()
                    .filter(|id| mailbox.is_within(id, folder))
                    .cloned()
                    .collect();
                let messages: Vec<String> = mailbox
                    .messages
                    .values()
                    .filter(|m| doomed.contains(&m.folder))
                    .map(|m| m.id.clone())
                    .collect();
                for id in &messages {
                    mailbox.purge(id);
                }
                for id in &doomed {
                    mailbox.folders.remove(id);
                }
                mailbox.bump();
                Ok(Response::empty(204))
            }
            ("GET", ["childFolders"]) => self.list_folders(user, folder, request, query),
            ("POST", ["childFolders"]) => self.create_folder(user, folder, request),
            ("POST", ["move"]) => {
                let body = request.json()?;
                let Some(to) = field(&body, "destinationId")
                    .and_then(Value::as_str)
                    .and_then(|to| mailbox.folder_id(to))
                else {
                    return Err(not_found("destinationId"));
                };
                if mailbox.is_within(&to, folder) {
                    return Err(bad_request("A folder cannot be moved into itself."));
                }
                if let Some(f) = mailbox.folders.get_mut(folder) {
                    f.parent = Some(to);
                }
                mailbox.bump();
                Ok(Response::json(
                    201,
                    &render::folder(mailbox, &mailbox.folders[folder]),
                ))
            }
            (_, ["messages", tail @ ..]) => {
                self.messages_request(user, Some(folder.to_string()), method, tail, request, query)
            }
            _ => Err(bad_request(&format!(
                "Unsupported request {method} {}",
                request.path
            ))),
        }
    }

    fn list_folders(&self, user: usize, parent: &str, request: &Request, query: &Query) -> Answer {
        let mailbox = &self.tenant.users[user].mailbox;
        let children = mailbox.mail_children(parent);
        let top = query.top.unwrap_or(10).clamp(1, 1000);
        let page: Vec<Value> = children
            .iter()
            .skip(query.skip)
            .take(top)
            .map(|folder| render::folder(mailbox, folder))
            .collect();
        let mut out = json!({"value": page});
        if query.skip + top < children.len() {
            out["@odata.nextLink"] = json!(next_link(request, query.skip + top, top));
        }
        Ok(Response::json(200, &out))
    }

    /// A sibling with the same display name is refused, as Exchange does.
    fn check_sibling_name(
        &self,
        user: usize,
        folder: &str,
        parent: Option<String>,
        name: &str,
    ) -> Result<(), Response> {
        let mailbox = &self.tenant.users[user].mailbox;
        let Some(parent) = parent else { return Ok(()) };
        if mailbox
            .children(&parent)
            .iter()
            .any(|sibling| sibling.id != folder && sibling.display_name.eq_ignore_ascii_case(name))
        {
            return Err(Response::error(
                409,
                "ErrorFolderExists",
                "A folder with the specified name already exists.",
            ));
        }
        Ok(())
    }

    fn create_folder(&mut self, user: usize, parent: &str, request: &Request) -> Answer {
        let body = request.json()?;
        let Some(name) = body["displayName"].as_str().filter(|n| !n.is_empty()) else {
            return Err(bad_request("displayName is required."));
        };
        self.check_sibling_name(user, "", Some(parent.to_string()), name)?;
        let mailbox = &mut self.tenant.users[user].mailbox;
        let id = new_id("AQMkAGFld");
        mailbox.folders.insert(
            id.clone(),
            Folder {
                id: id.clone(),
                display_name: name.to_string(),
                parent: Some(parent.to_string()),
                well_known: None,
                class: "IPF.Note".into(),
            },
        );
        mailbox.bump();
        Ok(Response::json(
            201,
            &render::folder(mailbox, &mailbox.folders[&id]),
        ))
    }

    fn user_json(&self, user: usize) -> Value {
        let user = &self.tenant.users[user];
        json!({
            "id": user.id,
            "userPrincipalName": user.upn,
            "displayName": user.display_name,
            "mail": user.upn,
            "assignedLicenses": user.licenses.iter().map(|sku| json!({"skuId": sku, "disabledPlans": []})).collect::<Vec<_>>(),
        })
    }

    /// https://learn.microsoft.com/en-us/graph/api/user-list: 100 users a page unless `$top`
    /// says (at most 999), the rest behind `@odata.nextLink`
    /// (https://learn.microsoft.com/en-us/graph/paging).
    fn list_users(&self, request: &Request, query: &Query) -> Response {
        let top = query.top.unwrap_or(100).clamp(1, 999);
        let count = self.tenant.users.len();
        let users: Vec<Value> = (query.skip..count)
            .take(top)
            .map(|i| self.user_json(i))
            .collect();
        let mut out = json!({ "value": users });
        if query.skip + top < count {
            out["@odata.nextLink"] = json!(next_link(request, query.skip + top, top));
        }
        Response::json(200, &out)
    }

    /// https://learn.microsoft.com/en-us/graph/api/user-post-users
    fn create_user(&mut self, request: &Request) -> Answer {
        let body = request.json()?;
        let (Some(upn), Some(name)) = (
            body["userPrincipalName"].as_str(),
            body["displayName"].as_str(),
        ) else {
            return Err(Response::error(
                400,
                "Request_BadRequest",
                "A value is required for property 'userPrincipalName' and 'displayName' of resource 'User'.",
            ));
        };
        if self.tenant.user_index(upn).is_some() {
            return Err(Response::error(
                400,
                "Request_BadRequest",
                "Another object with the same value for property userPrincipalName already exists.",
            ));
        }
        let id = self.tenant.add_user(upn, name);
        let index = self.tenant.user_index(&id).unwrap_or_default();
        // A user made through the API has no licence, hence no mailbox, until one is assigned.
        self.tenant.users[index].licenses.clear();
        let mut response = Response::json(201, &self.user_json(index));
        response.lose_reply = self.take_lost_reply();
        Ok(response)
    }

    /// https://learn.microsoft.com/en-us/graph/api/user-assignlicense
    fn assign_license(&mut self, user: usize, request: &Request) -> Answer {
        let body = request.json()?;
        let adds: Vec<String> = body["addLicenses"]
            .as_array()
            .map(|adds| {
                adds.iter()
                    .filter_map(|add| add["skuId"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for sku in &adds {
            let Some(known) = self.tenant.skus.iter().find(|s| &s.sku_id == sku) else {
                return Err(Response::error(
                    400,
                    "Request_BadRequest",
                    &format!("License {sku} does not correspond to a valid company License."),
                ));
            };
            let consumed = self
                .tenant
                .users
                .iter()
                .filter(|u| u.licenses.contains(sku))
                .count() as u32;
            if !self.tenant.users[user].licenses.contains(sku) && consumed >= known.enabled {
                return Err(Response::error(
                    400,
                    "Request_BadRequest",
                    &format!(
                        "Subscription for {} has no available units.",
                        known.sku_part_number
                    ),
                ));
            }
        }
        for sku in adds {
            if !self.tenant.users[user].licenses.contains(&sku) {
                self.tenant.users[user].licenses.push(sku);
            }
        }
        Ok(Response::json(200, &self.user_json(user)))
    }

    /// https://learn.microsoft.com/en-us/graph/api/subscribedsku-list
    fn subscribed_skus(&self) -> Response {
        let skus: Vec<Value> = self
            .tenant
            .skus
            .iter()
            .map(|sku| {
                let consumed = self
                    .tenant
                    .users
                    .iter()
                    .filter(|u| u.licenses.contains(&sku.sku_id))
                    .count();
                json!({
                    "skuId": sku.sku_id,
                    "skuPartNumber": sku.sku_part_number,
                    "capabilityStatus": "Enabled",
                    "consumedUnits": consumed,
                    "prepaidUnits": {"enabled": sku.enabled, "suspended": 0, "warning": 0},
                })
            })
            .collect();
        Response::json(200, &json!({"value": skus}))
    }

    /// Whether the reply of the write just committed is to be lost.
    pub(crate) fn take_lost_reply(&mut self) -> bool {
        if self.faults.lose_create_replies > 0 {
            self.faults.lose_create_replies -= 1;
            true
        } else {
            false
        }
    }
}

fn mailbox_parent(world: &World, user: usize, folder: &str) -> Option<String> {
    world.tenant.users[user].mailbox.folders[folder]
        .parent
        .clone()
}

/// The same request's URL with `$skip` and `$top` set: the next page.
pub(crate) fn next_link(request: &Request, skip: usize, top: usize) -> String {
    let mut pairs = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(request.query.as_bytes()) {
        if !matches!(name.as_ref(), "$skip" | "$top") {
            pairs.append_pair(&name, &value);
        }
    }
    pairs.append_pair("$top", &top.to_string());
    pairs.append_pair("$skip", &skip.to_string());
    format!("{}{}?{}", request.base, request.path, pairs.finish())
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
