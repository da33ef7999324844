//! `messages/delta` per folder, as documented in
//! https://learn.microsoft.com/en-us/graph/delta-query-messages and
//! https://learn.microsoft.com/en-us/graph/delta-query-overview:
//! - the first round lists every message of the folder, page by page (`@odata.nextLink` with a
//!   `$skiptoken`), and its last page carries `@odata.deltaLink` with a `$deltatoken`;
//! - a later round lists what changed since: messages created, changed or moved in (in their
//!   current state), and those deleted or moved out as `{"id", "@removed": {"reason":
//!   "deleted"}}`;
//! - `$select`, `$top` and `$expand` are taken, page size from `Prefer: odata.maxpagesize`;
//! - a token the service no longer knows is answered `410 Gone` with `syncStateNotFound`
//!   (the "synchronization reset" section of the overview), with a `Location` for a fresh
//!   round: the client starts over with a full listing.
//!
//! The import/export API's `folders/{id}/items/delta`
//! (https://learn.microsoft.com/en-us/graph/api/mailboxitem-delta) is answered the same way,
//! with mailboxItem resources.
//!
//! Tokens here are the mailbox's change number, so a round reports what changed after the
//! round before it began; paging walks ids in order, so nothing moves between pages.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{Answer, Request, Response, World};
use crate::query::Query;
use crate::render;

/// Where a round is.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    /// The folder.
    f: String,
    /// The first round: every message of the folder.
    first: bool,
    /// Changes after this number.
    s: u64,
    /// Up to this number (the mailbox's at the round's first page).
    e: u64,
    /// The last id given, for the next page.
    after: Option<String>,
}

fn encode(cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

fn decode(token: &str) -> Option<Cursor> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token).ok()?).ok()
}

impl World {
    pub(crate) fn delta(
        &self,
        user: usize,
        folder: &str,
        request: &Request,
        query: &Query,
        items: bool,
    ) -> Answer {
        let mailbox = &self.tenant.users[user].mailbox;
        let path = if items {
            format!(
                "admin/exchange/mailboxes/{}/folders/{folder}/items/delta",
                crate::exchange::mailbox_id(self, user)
            )
        } else {
            format!(
                "users/{}/mailFolders/{folder}/messages/delta",
                self.tenant.users[user].id
            )
        };
        let link = |token_name: &str, token: &str| {
            format!(
                "{}/{path}?{token_name}={token}{}",
                request.base,
                select_suffix(query)
            )
        };
        let cursor = match (&query.skiptoken, &query.deltatoken) {
            (Some(token), _) => decode(token),
            (None, Some(token)) => decode(token).map(|mut cursor| {
                cursor.first = false;
                cursor.s = cursor.e;
                cursor.e = mailbox.seq;
                cursor.after = None;
                cursor
            }),
            (None, None) => Some(Cursor {
                f: folder.to_string(),
                first: true,
                s: 0,
                e: mailbox.seq,
                after: None,
            }),
        };
        let Some(cursor) = cursor.filter(|c| c.f == folder) else {
            return Err(Response::error(
                400,
                "BadRequest",
                "The delta token is malformed.",
            ));
        };
        if !cursor.first && cursor.s < mailbox.tokens_valid_from {
            return Err(Response::error(
                410,
                "syncStateNotFound",
                "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
            )
            .with_header("location", &link("$deltatoken", "")));
        }
        let immutable = request.immutable_ids();
        // (id, rendered) of everything this round reports, in id order.
        let mut entries: Vec<(String, Value)> = Vec::new();
        for message in mailbox.in_folder(folder) {
            let changed = cursor.first || (message.seq > cursor.s && message.seq <= cursor.e);
            if changed && query.matches(message) {
                let rendered = if items {
                    crate::exchange::mailbox_item(message, query)
                } else {
                    render::message(message, query, immutable)
                };
                entries.push((message.id.clone(), rendered));
            }
        }
        if !cursor.first {
            for tomb in mailbox
                .tombstones
                .iter()
                .filter(|t| t.folder == folder && t.seq > cursor.s && t.seq <= cursor.e)
            {
                let still_here = mailbox
                    .messages
                    .get(&tomb.id)
                    .is_some_and(|m| m.folder == folder);
                if still_here || entries.iter().any(|(id, _)| *id == tomb.id) {
                    continue;
                }
                let id = if immutable {
                    tomb.id.clone()
                } else {
                    format!("AAMkAD{:04x}.{}", tomb.moves, tomb.id)
                };
                entries.push((
                    tomb.id.clone(),
                    json!({"@odata.type": "#microsoft.graph.message", "id": id, "@removed": {"reason": "deleted"}}),
                ));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        let start = cursor
            .after
            .as_ref()
            .map_or(0, |after| entries.partition_point(|(id, _)| id <= after));
        let size = request
            .max_page_size()
            .or(query.top)
            .unwrap_or(self.page_size)
            .max(1);
        let page: Vec<(String, Value)> = entries[start..].iter().take(size).cloned().collect();
        let more = start + page.len() < entries.len();
        let mut out = json!({"value": page.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>()});
        if more {
            let next = Cursor {
                after: page.last().map(|(id, _)| id.clone()),
                ..cursor
            };
            out["@odata.nextLink"] = json!(link("$skiptoken", &encode(&next)));
        } else {
            let done = Cursor {
                after: None,
                ..cursor
            };
            out["@odata.deltaLink"] = json!(link("$deltatoken", &encode(&done)));
        }
        Ok(Response::json(200, &out))
    }
}

/// The query's options but its tokens (`$select`, `$expand`…), carried into the links.
fn select_suffix(query: &Query) -> String {
    let mut pairs = form_urlencoded::Serializer::new(String::new());
    for (name, value) in &query.raw {
        let bare = name.trim_start_matches('$').to_ascii_lowercase();
        if bare != "skiptoken" && bare != "deltatoken" {
            pairs.append_pair(name, value);
        }
    }
    let carried = pairs.finish();
    if carried.is_empty() {
        carried
    } else {
        format!("&{carried}")
    }
}
