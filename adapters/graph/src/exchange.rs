//! Tenant to tenant at full fidelity: the mailbox import/export API
//! (https://learn.microsoft.com/en-us/graph/api/resources/mailbox-import-export-api-overview).
//! Used when both ends of a migration are Microsoft 365 mailboxes: the source exports each
//! item as Exchange's opaque stream (`exportItems`, 20 ids per request) and the target imports
//! that stream as it is (`createImportSession`, then a POST to its preauthenticated URL), so
//! every property Exchange keeps travels, where the messages API carries only what its JSON
//! names.
//!
//! Listings, flags, moves and deletions still go through the messages API (immutable ids,
//! delta links): only the bytes travel this way.
//!
//! **Identity.** The stream is opaque and made anew at each export, so ferry knows an exported
//! item by its PidTagSearchKey (`Binary 0x300B`), which the item's copies and an import of its
//! stream keep (reported by those who tried it: no page of Microsoft's says which properties
//! an import keeps), not by its bytes: the body's identity ([`Body::with_identity`]) is the
//! search key. An import carries no ferry marker (a mailboxItem takes no extended property
//! from a client, and the stream may not be changed), and Graph documents no idempotency for
//! imports: an import whose reply was lost is found by listing the target folder with each
//! message's search key and comparing its keyed hash with the write's content.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ferry_engine::body::Body;
use ferry_engine::event::{ContentHash, NativeId};
use ferry_engine::store::{StoreError, StoreResult};
use ferry_journal::ContentKey;
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::client::{Client, Payload};
use crate::folders;

/// PidTagSearchKey.
pub const SEARCH_KEY: &str = "Binary 0x300B";
/// What a body's identity starts with when it is an export stream known by its search key.
const IDENTITY: &[u8] = b"exchange search key ";
/// Item ids one `exportItems` takes.
const EXPORT_IDS: usize = 20;
/// An import session is replaced this long before it expires.
const SESSION_MARGIN: Duration = Duration::from_secs(300);

/// The identity of an export stream whose item has `search_key`.
pub fn identity(search_key: &[u8]) -> Vec<u8> {
    let mut out = IDENTITY.to_vec();
    out.extend_from_slice(search_key);
    out
}

/// Whether `body` is an export stream (made by [`Exchange::export`]).
pub fn is_export(body: &Body) -> bool {
    body.identity().is_some_and(|i| i.starts_with(IDENTITY))
}

/// A message's search key as a listing with it expanded shows it.
pub fn search_key_of(message: &Value) -> Option<Vec<u8>> {
    let value = message["singleValueExtendedProperties"]
        .as_array()?
        .iter()
        .find(|p| {
            p["id"]
                .as_str()
                .is_some_and(|i| i.eq_ignore_ascii_case(SEARCH_KEY))
        })?["value"]
        .as_str()?;
    STANDARD.decode(value).ok()
}

#[derive(Debug)]
struct Session {
    url: Zeroizing<String>,
    renew_at: Instant,
}

/// One mailbox's side of the import/export API.
#[derive(Debug, Default)]
pub struct Exchange {
    mailbox: tokio::sync::OnceCell<String>,
    session: tokio::sync::Mutex<Option<Session>>,
    /// Search keys of the messages listed, by id.
    search_keys: Mutex<HashMap<String, Vec<u8>>>,
    /// The keys of the items of the folders that are not mail, by folder id, as listed this
    /// run and updated by each import (`classes.rs`).
    pub(crate) keyed_folders: Mutex<HashMap<String, HashMap<String, NativeId>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Exchange {
    /// Keeps the search key of a message a listing showed.
    pub fn remember(&self, message: &Value) {
        if let (Some(id), Some(key)) = (message["id"].as_str(), search_key_of(message)) {
            lock(&self.search_keys).insert(id.to_string(), key);
        }
    }

    /// The mailbox's id for the import/export API
    /// (https://learn.microsoft.com/en-us/graph/api/usersettings-list-exchange).
    pub(crate) async fn mailbox_id(&self, client: &Client) -> StoreResult<&str> {
        let id = self
            .mailbox
            .get_or_try_init(|| async {
                let url = format!("{}/settings/exchange", client.uri().user_path());
                let answer = client.send(Method::GET, &url, Payload::None, &[]).await?;
                answer.json()?["primaryMailboxId"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| {
                        StoreError::Unusable(
                            "the user's exchange settings name no primaryMailboxId".into(),
                        )
                    })
            })
            .await?;
        Ok(id.as_str())
    }

    /// The search key of message `id`, from a listing or asked for.
    async fn search_key(&self, client: &Client, id: &str) -> StoreResult<Option<Vec<u8>>> {
        if let Some(key) = lock(&self.search_keys).get(id) {
            return Ok(Some(key.clone()));
        }
        let url = format!(
            "{}/messages/{id}?$select=id&$expand=singleValueExtendedProperties($filter=id eq '{SEARCH_KEY}')",
            client.uri().user_path()
        );
        let message = client
            .send(Method::GET, &url, Payload::None, &[])
            .await?
            .json()?;
        self.remember(&message);
        Ok(search_key_of(&message))
    }

    /// Exports items `ids` (20 per request): each one's stream, or its own error. A message's
    /// (`by_search_key`) is known by its search key; an item that changes in place by its
    /// bytes.
    pub async fn export(
        &self,
        client: &Client,
        ids: &[NativeId],
        by_search_key: bool,
    ) -> StoreResult<Vec<StoreResult<Body>>> {
        let mailbox = self.mailbox_id(client).await?.to_string();
        let url = format!("/admin/exchange/mailboxes/{mailbox}/exportItems");
        let mut out = Vec::with_capacity(ids.len());
        for group in ids.chunks(EXPORT_IDS) {
            let body = json!({"itemIds": group.iter().map(|id| id.0.as_str()).collect::<Vec<_>>()});
            let answer = client
                .send(Method::POST, &url, Payload::Json(body), &[])
                .await?
                .json()?;
            let mut given: HashMap<String, Value> = HashMap::new();
            for item in answer["value"].as_array().into_iter().flatten() {
                if let Some(id) = item["itemId"].as_str() {
                    given.insert(id.to_string(), item.clone());
                }
            }
            for id in group {
                out.push(
                    self.one_export(client, id, given.remove(&id.0), by_search_key)
                        .await,
                );
            }
        }
        Ok(out)
    }

    async fn one_export(
        &self,
        client: &Client,
        id: &NativeId,
        item: Option<Value>,
        by_search_key: bool,
    ) -> StoreResult<Body> {
        let Some(item) = item else {
            return Err(StoreError::Transient(format!(
                "exportItems gave nothing for {id}"
            )));
        };
        // The documentation's example spells it `Error` once.
        if let Some(error) = item.get("error").or_else(|| item.get("Error")) {
            let code = error["code"].as_str().unwrap_or_default();
            let message = error["message"].as_str().unwrap_or_default();
            return Err(match code {
                "ErrorItemNotFound" => StoreError::NotFound(format!("{id}: {message}")),
                _ => StoreError::Permanent(format!("exporting {id}: {code}: {message}")),
            });
        }
        let data = item["data"]
            .as_str()
            .and_then(|data| STANDARD.decode(data).ok())
            .ok_or_else(|| {
                StoreError::Transient(format!("exportItems gave {id} without its data"))
            })?;
        let body = Body::from(data);
        if !by_search_key {
            return Ok(body);
        }
        Ok(match self.search_key(client, &id.0).await? {
            Some(key) => body.with_identity(identity(&key)),
            // Without a search key (none was ever seen on Exchange): known by its bytes.
            None => body,
        })
    }

    /// The import URL to use, made anew when the one held is near its end (or `renew`).
    async fn import_url(&self, client: &Client, renew: bool) -> StoreResult<Zeroizing<String>> {
        let mut held = self.session.lock().await;
        if let Some(session) = held
            .as_ref()
            .filter(|s| !renew && Instant::now() < s.renew_at)
        {
            return Ok(session.url.clone());
        }
        let mailbox = self.mailbox_id(client).await?.to_string();
        let url = format!("/admin/exchange/mailboxes/{mailbox}/createImportSession");
        let started = Instant::now();
        let answer = client
            .send(Method::POST, &url, Payload::None, &[])
            .await?
            .json()?;
        let import = answer["importUrl"]
            .as_str()
            .ok_or_else(|| StoreError::Transient("createImportSession gave no importUrl".into()))?;
        let lifetime = answer["expirationDateTime"]
            .as_str()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .and_then(|at| {
                (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                    .to_std()
                    .ok()
            })
            .unwrap_or(Duration::ZERO);
        let session = Session {
            url: Zeroizing::new(import.to_string()),
            renew_at: started + lifetime.saturating_sub(SESSION_MARGIN),
        };
        let url = session.url.clone();
        *held = Some(session);
        Ok(url)
    }

    /// Imports an export stream into folder `folder_id`: the new item's id.
    pub async fn import(
        &self,
        client: &Client,
        folder_id: &str,
        body: &Body,
    ) -> StoreResult<NativeId> {
        self.import_as(client, folder_id, body, None)
            .await
            .map(|(id, _)| id)
    }

    /// Imports an export stream into folder `folder_id`, as a new item or (`update`: its id
    /// and the change key it must be at) over one: the item's id and change key. An update
    /// of an item at another change key is a conflict. An import session refused (expired,
    /// revoked) is replaced once.
    pub async fn import_as(
        &self,
        client: &Client,
        folder_id: &str,
        body: &Body,
        update: Option<(&NativeId, &str)>,
    ) -> StoreResult<(NativeId, Option<String>)> {
        let data = body
            .to_vec()
            .map_err(|e| StoreError::Transient(format!("reading the spooled item: {e}")))?;
        let mut request =
            json!({"FolderId": folder_id, "Mode": "create", "Data": STANDARD.encode(data)});
        if let Some((id, change_key)) = update {
            request["Mode"] = json!("update");
            request["ItemId"] = json!(id.0);
            request["ChangeKey"] = json!(change_key);
        }
        let mut renew = false;
        loop {
            let url = self.import_url(client, renew).await?;
            let answer = client
                .send_preauthenticated(
                    Method::POST,
                    &url,
                    request.to_string().into_bytes(),
                    &[("content-type", "application/json".into())],
                )
                .await?;
            match answer.status {
                200 | 201 => {
                    let made = answer.json()?;
                    let id = made["itemId"]
                        .as_str()
                        .map(|id| NativeId(id.to_string()))
                        .ok_or_else(|| StoreError::Transient("an import without itemId".into()))?;
                    return Ok((id, made["changeKey"].as_str().map(str::to_string)));
                }
                401 | 403 if !renew => renew = true,
                409 if update.is_some() => {
                    return Err(StoreError::Conflict(
                        "the target item is not at the change key ferry knew".into(),
                    ));
                }
                status => return Err(crate::client::classify(status, &answer.body)),
            }
        }
    }

    /// The messages of folder `folder_id` whose search key hashes, under `key`, to `content`:
    /// where an import whose reply was lost landed.
    pub async fn find(
        &self,
        client: &Client,
        folder_id: &str,
        content: &ContentHash,
        key: &ContentKey,
    ) -> StoreResult<Vec<NativeId>> {
        let url = format!(
            "{}/mailFolders/{folder_id}/messages?$select=id&$top=500&$expand=singleValueExtendedProperties($filter=id eq '{SEARCH_KEY}')",
            client.uri().user_path()
        );
        let listed = folders::all_pages(client, &url).await?;
        Ok(listed
            .iter()
            .filter(|message| {
                search_key_of(message).is_some_and(|sk| key.hash(&identity(&sk)) == *content)
            })
            .filter_map(|message| message["id"].as_str().map(|id| NativeId(id.to_string())))
            .collect())
    }
}
