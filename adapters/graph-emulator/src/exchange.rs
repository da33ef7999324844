//! The mailbox import/export API
//! (https://learn.microsoft.com/en-us/graph/api/resources/mailbox-import-export-api-overview):
//! - `GET /users/{id}/settings/exchange` gives the mailbox id, `MBX:…`
//!   (https://learn.microsoft.com/en-us/graph/api/usersettings-list-exchange);
//! - under `/admin/exchange/mailboxes/{mailboxId}`: `folders` (those under the root, paged by
//!   `$top`/`$skip`), `folders/{id}`, `folders/{id}/childFolders`
//!   (https://learn.microsoft.com/en-us/graph/api/mailbox-list-folders), `folders/{id}/items`
//!   (https://learn.microsoft.com/en-us/graph/api/mailboxfolder-list-items) and
//!   `folders/{id}/items/delta` (https://learn.microsoft.com/en-us/graph/api/mailboxitem-delta),
//!   items with `id, type, size, changeKey, createdDateTime, lastModifiedDateTime, categories`
//!   and the extended properties `$expand` names (mailboxItem supports reading them, not
//!   setting them: https://learn.microsoft.com/en-us/graph/api/resources/singlevaluelegacyextendedproperty);
//! - `POST exportItems` with at most 20 ids, answered 200 with each item's `itemId`,
//!   `changeKey` and `data` (an opaque stream, base64) or its own `error`
//!   (https://learn.microsoft.com/en-us/graph/api/mailbox-exportitems);
//! - `POST createImportSession` gives a preauthenticated `importUrl` and its
//!   `expirationDateTime` (https://learn.microsoft.com/en-us/graph/api/mailbox-createimportsession);
//!   a POST to it without an `Authorization` header, `{FolderId, Mode, Data}` (`create`) or
//!   with `ItemId` and `ChangeKey` (`update`), makes the item again with no loss and answers
//!   its `itemId` and `changeKey` (https://learn.microsoft.com/en-us/graph/import-exchange-mailbox-item).
//!
//! The stream here is this emulator's own (JSON of the whole item behind a magic number): a
//! client must treat it as opaque, as it must the service's FastTransfer stream. What the
//! documentation does not say is chosen as the service is reported to behave: an import
//! keeps the item's PidTagSearchKey (`Binary 0x300B`) and gets a new id and creation time; a
//! create sent twice makes two items (no idempotency is documented).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::{Answer, Request, Response, World, bad_request, field, next_link, not_found};
use crate::query::Query;
use crate::render;
use crate::world::{Message, new_id};

/// What an export stream starts with.
const MAGIC: &[u8] = b"\x00FXS/1\x00";
/// Item ids one `exportItems` takes.
const MAX_EXPORT: usize = 20;
/// How long an import session lives.
const SESSION_HOURS: i64 = 1;

/// An import session: whose mailbox, until when.
#[derive(Debug, Clone)]
pub struct ImportSession {
    pub user: usize,
    pub expires: DateTime<Utc>,
}

/// The mailbox id of user `index`.
pub fn mailbox_id(world: &World, user: usize) -> String {
    format!(
        "MBX:{}@{}",
        world.tenant.users[user].id, world.tenant.tenant
    )
}

/// The user whose mailbox id is `given`.
pub fn user_of_mailbox(world: &World, given: &str) -> Option<usize> {
    let id = given.strip_prefix("MBX:")?.split('@').next()?;
    world.tenant.users.iter().position(|user| user.id == id)
}

/// The mailbox id in an import URL's segment `Mailboxes('MBX:…')`.
pub fn import_mailbox(segment: &str) -> Option<&str> {
    segment
        .strip_prefix("Mailboxes('")
        .and_then(|rest| rest.strip_suffix("')"))
}

impl World {
    /// `GET /users/{id}/settings/exchange`.
    pub(crate) fn exchange_settings(&self, user: usize) -> Response {
        Response::json(
            200,
            &json!({
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/settings/exchange/$entity",
                "primaryMailboxId": mailbox_id(self, user),
            }),
        )
    }

    /// A request under `/admin/exchange/mailboxes/{mailboxId}`.
    pub(crate) fn exchange_request(
        &mut self,
        mailbox: &str,
        method: &str,
        tail: &[&str],
        request: &Request,
        query: &Query,
    ) -> Answer {
        let Some(user) = user_of_mailbox(self, mailbox) else {
            return Err(Response::error(
                404,
                "ErrorMailboxNotFound",
                &format!("The mailbox '{mailbox}' was not found."),
            ));
        };
        let folder_of = |world: &World, name: &str| {
            world.tenant.users[user]
                .mailbox
                .folder_id(name)
                .ok_or_else(|| not_found(name))
        };
        match (method, tail) {
            ("GET", ["folders"]) => {
                let root = self.tenant.users[user].mailbox.well_known("msgfolderroot");
                Ok(self.mailbox_folders(user, &root, request, query))
            }
            ("GET", ["folders", folder]) => {
                let folder = folder_of(self, folder)?;
                let mailbox = &self.tenant.users[user].mailbox;
                Ok(Response::json(
                    200,
                    &mailbox_folder(self, user, &mailbox.folders[&folder]),
                ))
            }
            ("GET", ["folders", folder, "childFolders"]) => {
                let folder = folder_of(self, folder)?;
                Ok(self.mailbox_folders(user, &folder, request, query))
            }
            ("GET", ["folders", folder, "items"]) => {
                let folder = folder_of(self, folder)?;
                Ok(self.mailbox_items(user, &folder, request, query))
            }
            (
                "GET",
                [
                    "folders",
                    folder,
                    "items",
                    "delta" | "delta()" | "microsoft.graph.delta" | "microsoft.graph.delta()",
                ],
            ) => {
                let folder = folder_of(self, folder)?;
                self.delta(user, &folder, request, query, true)
            }
            ("GET", ["folders", folder, "items", item]) => {
                let folder = folder_of(self, folder)?;
                let mailbox = &self.tenant.users[user].mailbox;
                let message = mailbox
                    .messages
                    .get(*item)
                    .filter(|m| m.folder == folder)
                    .ok_or_else(|| not_found(item))?;
                Ok(Response::json(200, &mailbox_item(message, query)))
            }
            ("POST", ["folders"]) => {
                let root = self.tenant.users[user].mailbox.well_known("msgfolderroot");
                self.create_mailbox_folder(user, &root, request)
            }
            ("POST", ["folders", folder, "childFolders"]) => {
                let folder = folder_of(self, folder)?;
                self.create_mailbox_folder(user, &folder, request)
            }
            ("DELETE", ["folders", folder, "items", item]) => {
                // https://learn.microsoft.com/en-us/graph/api/mailboxfolder-delete-items:
                // `disposalType` is required; either way the item leaves the folder.
                let folder = folder_of(self, folder)?;
                let disposal = query_value(request, "disposalType");
                if !matches!(disposal.as_deref(), Some("softDelete" | "hardDelete")) {
                    return Err(bad_request("disposalType is softDelete or hardDelete."));
                }
                let mailbox = &mut self.tenant.users[user].mailbox;
                if mailbox
                    .messages
                    .get(*item)
                    .is_none_or(|m| m.folder != folder)
                {
                    return Err(not_found(item));
                }
                mailbox.purge(item);
                Ok(Response::empty(204))
            }
            ("POST", ["exportItems"]) => self.export_items(user, request),
            ("POST", ["createImportSession"]) => {
                let token = new_id("eyJhbGciOiJSUzI1NiJ9.");
                let expires = Utc::now() + chrono::Duration::hours(SESSION_HOURS);
                self.imports
                    .insert(token.clone(), ImportSession { user, expires });
                let root = request.base.trim_end_matches("/v1.0");
                Ok(Response::json(
                    200,
                    &json!({
                        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.mailboxItemImportSession",
                        "importUrl": format!(
                            "{root}/api/gv1.0/Mailboxes('{}')/importItem?authtoken={token}",
                            mailbox_id(self, user)
                        ),
                        "expirationDateTime": render::date(&expires),
                    }),
                ))
            }
            _ => Err(bad_request(&format!(
                "Unsupported request {method} {}",
                request.path
            ))),
        }
    }

    /// `POST folders` or `childFolders`: `{displayName, type}`, both required
    /// (https://learn.microsoft.com/en-us/graph/api/mailbox-post-folders).
    fn create_mailbox_folder(&mut self, user: usize, parent: &str, request: &Request) -> Answer {
        let body = request.json()?;
        let (Some(name), Some(class)) = (
            body["displayName"].as_str().filter(|n| !n.is_empty()),
            body["type"].as_str().filter(|t| t.starts_with("IPF.")),
        ) else {
            return Err(bad_request("displayName and type (IPF.…) are required."));
        };
        let mailbox = &mut self.tenant.users[user].mailbox;
        if mailbox
            .children(parent)
            .iter()
            .any(|sibling| sibling.display_name.eq_ignore_ascii_case(name))
        {
            return Err(Response::error(
                409,
                "ErrorFolderExists",
                "A folder with the specified name already exists.",
            ));
        }
        let id = new_id("AQMkAGFld");
        mailbox.folders.insert(
            id.clone(),
            crate::world::Folder {
                id: id.clone(),
                display_name: name.to_string(),
                parent: Some(parent.to_string()),
                well_known: None,
                class: class.to_string(),
            },
        );
        mailbox.bump();
        let folder = &self.tenant.users[user].mailbox.folders[&id];
        Ok(Response::json(201, &mailbox_folder(self, user, folder)))
    }

    fn mailbox_folders(
        &self,
        user: usize,
        parent: &str,
        request: &Request,
        query: &Query,
    ) -> Response {
        let mailbox = &self.tenant.users[user].mailbox;
        let children = mailbox.children(parent);
        let top = query.top.unwrap_or(10).clamp(1, 1000);
        let page: Vec<Value> = children
            .iter()
            .skip(query.skip)
            .take(top)
            .map(|folder| mailbox_folder(self, user, folder))
            .collect();
        let mut out = json!({"value": page});
        if query.skip + top < children.len() {
            out["@odata.nextLink"] = json!(next_link(request, query.skip + top, top));
        }
        Response::json(200, &out)
    }

    fn mailbox_items(
        &self,
        user: usize,
        folder: &str,
        request: &Request,
        query: &Query,
    ) -> Response {
        let mailbox = &self.tenant.users[user].mailbox;
        let items = mailbox.in_folder(folder);
        let top = query.top.unwrap_or(10).clamp(1, 1000);
        let page: Vec<Value> = items
            .iter()
            .skip(query.skip)
            .take(top)
            .map(|message| mailbox_item(message, query))
            .collect();
        let mut out = json!({"value": page});
        if query.skip + top < items.len() {
            out["@odata.nextLink"] = json!(next_link(request, query.skip + top, top));
        }
        Response::json(200, &out)
    }

    fn export_items(&mut self, user: usize, request: &Request) -> Answer {
        let body = request.json()?;
        // Matched without regard to case, as action parameters are: the documentation's
        // example sends `itemIds`, Microsoft's SDK `ItemIds`.
        let Some(ids) = field(&body, "itemIds").and_then(Value::as_array) else {
            return Err(bad_request("itemIds is required."));
        };
        if ids.is_empty() || ids.len() > MAX_EXPORT {
            return Err(bad_request(&format!(
                "itemIds must hold from 1 to {MAX_EXPORT} ids."
            )));
        }
        let mailbox = &self.tenant.users[user].mailbox;
        let value: Vec<Value> = ids
            .iter()
            .map(|id| {
                let id = id.as_str().unwrap_or_default();
                match mailbox.message_id(id).and_then(|id| mailbox.messages.get(&id)) {
                    Some(message) => json!({
                        "itemId": id,
                        "changeKey": render::change_key(message),
                        "data": STANDARD.encode(stream(message)),
                    }),
                    None => json!({
                        "itemId": id,
                        "error": {"code": "ErrorItemNotFound", "message": "The specified object was not found in the store."},
                    }),
                }
            })
            .collect();
        Ok(Response::json(
            200,
            &json!({
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.exportItemResponse)",
                "value": value,
            }),
        ))
    }

    /// The POST to an import URL (the path `/import/{mailboxId}` here, the token in the query).
    pub(crate) fn import_item(&mut self, mailbox: &str, request: &Request) -> Answer {
        let token = query_value(request, "authtoken").unwrap_or_default();
        let now = Utc::now();
        let session = self.imports.get(&token).cloned();
        let user = match session {
            Some(session) if session.expires > now => session.user,
            _ => {
                return Err(Response::error(
                    401,
                    "InvalidAuthenticationToken",
                    "The import session is unknown or expired: create another.",
                ));
            }
        };
        if user_of_mailbox(self, mailbox) != Some(user) {
            return Err(Response::json(
                409,
                &json!({"Message": format!("Invalid import session. The target session is expected in mailbox {}.", mailbox_id(self, user))}),
            ));
        }
        let body = request.json()?;
        let text = |name: &str| {
            field(&body, name)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let (Some(folder), Some(mode), Some(data)) = (text("FolderId"), text("Mode"), text("Data"))
        else {
            return Err(bad_request("FolderId, Mode and Data are required."));
        };
        let imported = STANDARD
            .decode(data.as_bytes())
            .ok()
            .and_then(|bytes| from_stream(&bytes))
            .ok_or_else(|| bad_request("Data is not an export stream."))?;
        let mailbox = &mut self.tenant.users[user].mailbox;
        let Some(folder) = mailbox.folder_id(&folder) else {
            return Err(not_found(&folder));
        };
        let (item, change) = (text("ItemId"), text("ChangeKey"));
        let id = match mode.as_str() {
            "create" if item.is_none() && change.is_none() => {
                let mut message = imported;
                message.id = new_id("AAkALg");
                message.moves = 0;
                message.folder = folder;
                message.created = now;
                message.change_key = 0;
                let seq = mailbox.bump();
                message.touch(seq, now);
                let id = message.id.clone();
                mailbox.messages.insert(id.clone(), message);
                id
            }
            "update" => {
                let (Some(item), Some(change)) = (item, change) else {
                    return Err(bad_request("Mode update needs ItemId and ChangeKey."));
                };
                let known = mailbox
                    .message_id(&item)
                    .filter(|id| mailbox.messages[id].folder == folder)
                    .filter(|id| render::change_key(&mailbox.messages[id]) == change);
                let Some(id) = known else {
                    return Err(Response::error(
                        409,
                        "ErrorIrresolvableConflict",
                        "The ItemId and ChangeKey match no item of the folder.",
                    ));
                };
                let seq = mailbox.bump();
                let kept = &mailbox.messages[&id];
                let mut message = imported;
                (message.id, message.moves, message.folder, message.created) = (
                    kept.id.clone(),
                    kept.moves,
                    kept.folder.clone(),
                    kept.created,
                );
                message.change_key = kept.change_key;
                message.touch(seq, now);
                mailbox.messages.insert(id.clone(), message);
                id
            }
            _ => {
                return Err(bad_request(
                    "Mode is create (without ItemId and ChangeKey) or update.",
                ));
            }
        };
        let message = &self.tenant.users[user].mailbox.messages[&id];
        let mut response = Response::json(
            200,
            &json!({
                "@odata.context": "https://outlook.office365.com/api/gv1.0/$metadata#microsoft.graph.importMailboxItemResponse",
                "itemId": id,
                "changeKey": render::change_key(message),
            }),
        );
        response.lose_reply = self.take_lost_reply();
        Ok(response)
    }
}

/// A query option's value.
fn query_value(request: &Request, name: &str) -> Option<String> {
    form_urlencoded::parse(request.query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A mailboxFolder resource (https://learn.microsoft.com/en-us/graph/api/resources/mailboxfolder).
fn mailbox_folder(world: &World, user: usize, folder: &crate::world::Folder) -> Value {
    let mailbox = &world.tenant.users[user].mailbox;
    json!({
        "@odata.type": "#microsoft.graph.mailboxFolder",
        "id": folder.id,
        "displayName": folder.display_name,
        "parentFolderId": folder.parent,
        "parentMailboxUrl": format!("https://graph.microsoft.com/v1.0/admin/exchange/mailboxes/{}", mailbox_id(world, user)),
        "childFolderCount": mailbox.children(&folder.id).len(),
        "totalItemCount": mailbox.in_folder(&folder.id).len(),
        "wellKnownName": folder.well_known,
        "type": folder.class,
    })
}

/// A mailboxItem resource (https://learn.microsoft.com/en-us/graph/api/resources/mailboxitem),
/// with the extended properties `$expand` names.
pub(crate) fn mailbox_item(message: &Message, query: &Query) -> Value {
    let rendered = render::message(message, query, true);
    let mut out = json!({
        "@odata.type": "#microsoft.graph.mailboxItem",
        "@odata.etag": format!("W/\"{}\"", render::change_key(message)),
        "id": message.id,
        "createdDateTime": render::date(&message.created),
        "lastModifiedDateTime": render::date(&message.modified),
        "changeKey": render::change_key(message),
        "categories": message.categories,
        "type": message.class,
        "size": stream(message).len(),
    });
    if let Some(properties) = rendered.get("singleValueExtendedProperties") {
        out["singleValueExtendedProperties"] = properties.clone();
    }
    out
}

/// The item's export stream: all of it, none of its place in this mailbox nor what the
/// mailbox stamps on it (its change key, its creation and modification times), so that an
/// item exported again after an import gives the stream imported.
fn stream(message: &Message) -> Vec<u8> {
    let mut item = message.clone();
    item.id.clear();
    item.folder.clear();
    item.moves = 0;
    item.seq = 0;
    item.change_key = 0;
    item.created = DateTime::UNIX_EPOCH;
    item.modified = DateTime::UNIX_EPOCH;
    let mut out = MAGIC.to_vec();
    out.extend(serde_json::to_vec(&item).unwrap_or_default());
    out
}

fn from_stream(bytes: &[u8]) -> Option<Message> {
    serde_json::from_slice(bytes.strip_prefix(MAGIC)?).ok()
}
