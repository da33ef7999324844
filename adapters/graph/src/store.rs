//! `impl Store for GraphStore`: one mailbox of a Microsoft 365 tenant.
//! - Listings are per-folder message deltas
//!   (https://learn.microsoft.com/en-us/graph/delta-query-messages): the delta link is the
//!   change token; a link the service no longer knows (410, syncStateNotFound) is answered by
//!   a full listing, which the engine reconciles against the journal (an item is gone only if
//!   a complete listing lacks it).
//! - Ids are immutable ids: a message moved keeps its id, so the engine knows its content in
//!   its new folder without reading it (`Capabilities::global_ids`), and moves on the target
//!   are one `move` call.
//! - Every create carries ferry's marker (the keyed hash of the source content) in the same
//!   request; a create whose reply was lost is found by `$filter` on it.
//! - The limits Microsoft documents for a mailbox are declared to the engine's pacer.
//! - Between two tenants (`full_fidelity`), the bytes travel as Exchange's export stream
//!   through the mailbox import/export API (`exchange.rs`), known by their search key.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use ferry_engine::body::Body;
use ferry_engine::event::{ContentHash, Millis, NativeId};
use ferry_engine::flags::Flags;
use ferry_engine::item::{CollectionProps, FolderKind, FolderSpec, Kind};
use ferry_engine::pacer::{Limits, Window};
use ferry_engine::store::{
    AppendProbe, Capabilities, FolderInfo, ItemInfo, Listing, NewItem, Store, StoreError,
    StoreResult, Stored,
};
use ferry_journal::ContentKey;
use ferry_secret::Secret;
use reqwest::Method;
use serde_json::{Value, json};

use crate::classes::{self, Other};
use crate::client::{Client, Payload, check};
use crate::exchange::{self, Exchange};
use crate::folders::{self, Folder};
use crate::large;
use crate::mime;
use crate::uri::GraphUri;

/// Messages per delta page asked for.
const PAGE: usize = 200;
/// What a change token starts with: the version of the properties its delta link asks for (a
/// link keeps the `$select` and `$expand` it was made with). A token of another version is
/// not used: the folder is listed in full once.
const TOKEN_VERSION: &str = "g2 ";

/// A Microsoft 365 mailbox through Graph.
#[derive(Debug)]
pub struct GraphStore {
    pub(crate) client: Client,
    pub(crate) folders: Mutex<HashMap<String, Folder>>,
    /// The well-known folders' roles by id, asked once.
    roles: tokio::sync::OnceCell<HashMap<String, ferry_engine::event::SpecialUse>>,
    notices: Mutex<BTreeSet<String>>,
    /// Opened as a source (or for a dry run): every write is refused before it is sent.
    read_only: bool,
    /// The import/export API: the bytes of a message as Exchange's export stream.
    pub(crate) exchange: Exchange,
    /// Reads messages as export streams (the other end is a tenant too), and carries the
    /// folders that are not mail.
    pub(crate) full_fidelity: bool,
    /// Carries calendars, contacts and To Do tasks through their APIs (the other end is
    /// CalDAV/CardDAV); otherwise mail only, and those folders are not even listed.
    pub(crate) calendars: bool,
    /// The folders that are not mail, by path (`full_fidelity` only).
    pub(crate) others: Mutex<HashMap<String, Other>>,
    /// Calendars, contact folders and To Do lists, by path (not `full_fidelity`).
    pub(crate) pim: Mutex<HashMap<String, crate::pim::PimFolder>>,
    /// The keys of each calendar, contact folder or list as last listed in this process,
    /// with ferry's creates since (`pim.rs`): key → (id, unfinished). Forgotten when a write's
    /// outcome is unknown.
    pub(crate) pim_keys: Mutex<HashMap<String, crate::pim::FolderKeys>>,
    /// The kinds of folder the app was refused (403), said once.
    pub(crate) pim_refusals: Mutex<BTreeSet<String>>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A content hash as the marker holds it: 64 hex digits.
pub fn marker_of(content: &ContentHash) -> String {
    content.0.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn content_of(marker: &str) -> Option<ContentHash> {
    if marker.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(marker.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(ContentHash(out))
}

/// A single-value extended property of an item as listed, by id without regard to case.
pub(crate) fn property<'a>(message: &'a Value, id: &str) -> Option<&'a str> {
    message["singleValueExtendedProperties"]
        .as_array()?
        .iter()
        .find(|p| p["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))?["value"]
        .as_str()
}

/// An item as a listing shows it; its marker taken as ferry's identity of its content when
/// `marked` (not for export streams, whose marker, if any, came from another journal).
fn item_of(message: &Value, marked: bool) -> Option<ItemInfo> {
    let id = message["id"].as_str()?;
    let date = message["receivedDateTime"]
        .as_str()
        .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
        .map(|d| d.timestamp_millis() as Millis);
    Some(ItemInfo {
        id: NativeId(id.to_string()),
        size: property(message, mime::SIZE)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        flags: mime::flags_of(message),
        date,
        keyed: None,
        content: property(message, mime::MARKER)
            .filter(|_| marked)
            .and_then(content_of)
            .map(Box::new),
    })
}

fn message_query() -> String {
    format!(
        "$select=receivedDateTime,isRead,isDraft,flag,categories&$expand=singleValueExtendedProperties($filter=id eq '{}' or id eq '{}' or id eq '{}' or id eq '{}' or id eq '{}')",
        mime::SIZE,
        mime::MARKER,
        mime::LAST_VERB,
        mime::DELETED,
        exchange::SEARCH_KEY,
    )
}

impl GraphStore {
    /// Opens a `graph:` URI; nothing is sent until the first call.
    pub fn open(uri: &str, secret: Option<Secret>, read_only: bool) -> StoreResult<GraphStore> {
        let uri = GraphUri::parse(uri)?;
        Ok(GraphStore {
            client: Client::new(uri, secret)?,
            folders: Mutex::new(HashMap::new()),
            roles: tokio::sync::OnceCell::new(),
            notices: Mutex::new(BTreeSet::new()),
            read_only,
            exchange: Exchange::default(),
            full_fidelity: false,
            calendars: false,
            others: Mutex::new(HashMap::new()),
            pim: Mutex::new(HashMap::new()),
            pim_keys: Mutex::new(HashMap::new()),
            pim_refusals: Mutex::new(BTreeSet::new()),
        })
    }

    /// Carries messages at full fidelity, as Exchange's export stream (for a migration whose
    /// other end is a tenant too): reads export them, and what this store writes from an
    /// export stream is imported.
    pub fn full_fidelity(mut self) -> GraphStore {
        self.full_fidelity = true;
        self
    }

    /// Carries calendars, contact folders and To Do lists converted (for a migration whose
    /// other end is CalDAV/CardDAV).
    pub fn with_calendars(mut self) -> GraphStore {
        self.calendars = true;
        self
    }

    /// Refuses a write to a store opened for reading.
    fn writable(&self) -> StoreResult<()> {
        if self.read_only {
            return Err(StoreError::Unusable(format!(
                "{}: opened read-only (the source is never written)",
                self.describe()
            )));
        }
        Ok(())
    }

    pub(crate) fn user(&self) -> String {
        self.client.uri().user_path()
    }

    async fn refresh(&self) -> StoreResult<Vec<Folder>> {
        let roles = self
            .roles
            .get_or_try_init(|| folders::roles(&self.client))
            .await?;
        let listed = folders::list(&self.client, roles).await?;
        let mut map = lock(&self.folders);
        map.clear();
        for folder in &listed {
            map.insert(folder.path.clone(), folder.clone());
        }
        Ok(listed)
    }

    /// The id of the folder at `path`, listing the folders again if it is not known.
    async fn folder_id(&self, path: &str) -> StoreResult<String> {
        if let Some(folder) = lock(&self.folders).get(path) {
            return Ok(folder.id.clone());
        }
        self.refresh().await?;
        lock(&self.folders)
            .get(path)
            .map(|f| f.id.clone())
            .ok_or_else(|| StoreError::NotFound(format!("folder {path}")))
    }

    pub(crate) fn notice(&self, text: String) {
        lock(&self.notices).insert(text);
    }

    /// One delta round from `start` to its delta link: items changed, ids removed, the link;
    /// `None` when the service no longer knows the token.
    pub(crate) async fn delta_round(
        &self,
        start: &str,
        keyed: Option<&FolderSpec>,
    ) -> StoreResult<Option<(Vec<ItemInfo>, Vec<NativeId>, String)>> {
        let prefer = format!("odata.maxpagesize={PAGE}");
        let (mut changed, mut gone) = (Vec::new(), Vec::new());
        let mut next = start.to_string();
        loop {
            let answer = self
                .client
                .send_raw(Method::GET, &next, Payload::None, &[&prefer])
                .await?;
            if answer.status == 410 {
                return Ok(None);
            }
            let page = check(answer)?.json()?;
            for message in page["value"].as_array().into_iter().flatten() {
                if message.get("@removed").is_some() {
                    if let Some(id) = message["id"].as_str() {
                        gone.push(NativeId(id.to_string()));
                    }
                } else if let Some(spec) = keyed {
                    changed.extend(classes::item_of(message, spec));
                } else if let Some(item) = item_of(message, !self.full_fidelity) {
                    if self.full_fidelity {
                        self.exchange.remember(message);
                    }
                    changed.push(item);
                }
            }
            if let Some(link) = page["@odata.nextLink"].as_str() {
                next = link.to_string();
            } else if let Some(link) = page["@odata.deltaLink"].as_str() {
                return Ok(Some((changed, gone, link.to_string())));
            } else {
                return Err(StoreError::Transient(
                    "a delta page with neither a next nor a delta link".into(),
                ));
            }
        }
    }

    /// Creates one folder; its id, or `None` when it was there already (made by an earlier
    /// try whose answer was lost).
    async fn create_one(&self, parent: Option<&str>, name: &str) -> StoreResult<Option<String>> {
        let url = match parent {
            None => format!("{}/mailFolders", self.user()),
            Some(id) => format!("{}/mailFolders/{id}/childFolders", self.user()),
        };
        let body = json!({"displayName": folders::display_name(name)});
        match self
            .client
            .send(Method::POST, &url, Payload::Json(body), &[])
            .await
        {
            Ok(answer) => Ok(answer.json()?["id"].as_str().map(str::to_string)),
            // Made meanwhile (by an earlier try whose answer was lost): it is there.
            Err(StoreError::Permanent(said)) if said.contains("ErrorFolderExists") => Ok(None),
            Err(StoreError::Permanent(said)) if said.contains("HTTP 409") => Ok(None),
            Err(error) => Err(error),
        }
    }
}

#[async_trait]
impl Store for GraphStore {
    fn describe(&self) -> String {
        self.client.uri().describe()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            change_tokens: true,
            keywords: true,
            rename: true,
            // Exchange's largest message, 150 MB
            // (https://learn.microsoft.com/en-us/office365/servicedescriptions/exchange-online-service-description/exchange-online-limits#message-limits):
            // a create over Graph's 4 MB request goes in pieces (`large.rs`).
            max_message_bytes: Some(150 * 1024 * 1024),
            // Exports go 20 items per request.
            fetch_many: self.full_fidelity,
            // Between tenants, calendars, contacts, tasks, notes and journals too.
            kinds: if self.full_fidelity {
                vec![
                    Kind::Message,
                    Kind::Event,
                    Kind::Contact,
                    Kind::Task,
                    Kind::Note,
                    Kind::Journal,
                ]
            } else if self.calendars {
                vec![Kind::Message, Kind::Event, Kind::Contact, Kind::Task]
            } else {
                Vec::new()
            },
            moves: true,
            remote: true,
            global_ids: true,
            // https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits
            limits: Limits {
                in_flight: Some(4),
                requests: Some(Window {
                    max: 10_000,
                    per: Duration::from_secs(600),
                }),
                // 1% is left for the small writes not paced by size (folder creates, flag
                // and category patches), which the service counts too.
                bytes: Some(match self.client.uri().upload_budget {
                    Some((max, seconds)) => Window {
                        max: max / 100 * 99,
                        per: Duration::from_secs(seconds),
                    },
                    None => Window {
                        max: 150 * 1024 * 1024 / 100 * 99,
                        per: Duration::from_secs(300),
                    },
                }),
            },
            ..Capabilities::default()
        }
    }

    /// The JSON create's length (what Graph's upload budget counts), made as `append` makes
    /// it, with a marker and dates of their real length; a spooled (large) message, mostly
    /// attachments carried in base64, by estimate.
    fn upload_size(&self, body: &Body, flags: &Flags) -> u64 {
        if exchange::is_export(body) {
            return body.len().div_ceil(3) * 4 + 256;
        }
        match body.in_memory() {
            Some(bytes) => mime::create_body(bytes, flags, Some(0), &"0".repeat(64))
                .map_or(body.len(), |json| json.to_string().len() as u64),
            None => body.len() / 3 * 4 + 4096,
        }
    }

    async fn list_folders(&self) -> StoreResult<Vec<FolderInfo>> {
        let mut listed: Vec<FolderInfo> = self
            .refresh()
            .await?
            .into_iter()
            .map(|folder| FolderInfo {
                path: folder.path,
                special_use: folder.role,
                validity: None,
                unreadable: None,
                spec: FolderSpec::mail(),
                description: None,
            })
            .collect();
        if self.full_fidelity {
            listed.extend(
                self.refresh_others()
                    .await?
                    .into_iter()
                    .map(|other| FolderInfo {
                        path: other.path,
                        special_use: None,
                        validity: None,
                        unreadable: None,
                        spec: other.spec,
                        description: None,
                    }),
            );
        } else if self.calendars {
            listed.extend(self.pim_infos().await?);
        }
        Ok(listed)
    }

    async fn list_items(&self, folder: &str, since: Option<&str>) -> StoreResult<Listing> {
        if let Some(other) = self.other(folder).await? {
            return self.list_keyed(&other, since).await;
        }
        if let Some(pim) = self.pim_folder(folder).await? {
            return self.list_pim(&pim).await;
        }
        let link = since.and_then(|token| token.strip_prefix(TOKEN_VERSION));
        if let Some(link) = link
            && let Some((changed, gone, token)) = self.delta_round(link, None).await?
        {
            return Ok(Listing::Changes {
                changed,
                flags: Vec::new(),
                gone,
                token: Some(format!("{TOKEN_VERSION}{token}")),
            });
        }
        // No token, one of another version, or one the service let go: a full listing,
        // reconciled by the engine.
        let id = self.folder_id(folder).await?;
        let start = format!(
            "{}/mailFolders/{id}/messages/delta?{}",
            self.user(),
            message_query()
        );
        match self.delta_round(&start, None).await? {
            Some((items, _, token)) => Ok(Listing::Full {
                items,
                token: Some(format!("{TOKEN_VERSION}{token}")),
            }),
            None => Err(StoreError::Transient(format!(
                "{folder}: a fresh delta round was refused as expired"
            ))),
        }
    }

    async fn fetch(&self, folder: &str, id: &NativeId) -> StoreResult<Body> {
        if let Some(pim) = self.pim_folder(folder).await? {
            return self.fetch_pim(&pim, id).await;
        }
        if self.full_fidelity || self.other(folder).await?.is_some() {
            let mut one = self.fetch_many(folder, std::slice::from_ref(id)).await?;
            return one
                .pop()
                .unwrap_or_else(|| Err(StoreError::Transient(format!("{id}: exported nothing"))));
        }
        let url = format!("{}/messages/{}/$value", self.user(), id.0);
        let answer = self
            .client
            .send(Method::GET, &url, Payload::None, &[])
            .await?;
        Ok(Body::from(mime::canonical_boundaries(&answer.body)))
    }

    async fn fetch_many(
        &self,
        folder: &str,
        ids: &[NativeId],
    ) -> StoreResult<Vec<StoreResult<Body>>> {
        if !self.full_fidelity {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.push(self.fetch(folder, id).await);
            }
            return Ok(out);
        }
        let messages = self.other(folder).await?.is_none();
        self.exchange.export(&self.client, ids, messages).await
    }

    async fn create_folder(&self, folder: &str, spec: &FolderSpec) -> StoreResult<()> {
        self.writable()?;
        if spec.kind != FolderKind::Mail {
            return self.create_keyed_folder(folder, spec).await;
        }
        if self.folder_id(folder).await.is_ok() {
            return Ok(());
        }
        let mut parent: Option<String> = None;
        let mut path = String::new();
        for name in folder.split('/') {
            path = if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}/{name}")
            };
            let known = lock(&self.folders).get(&path).map(|f| f.id.clone());
            let id = match known {
                Some(id) => id,
                None => match self.create_one(parent.as_deref(), name).await? {
                    Some(id) => {
                        lock(&self.folders).insert(
                            path.clone(),
                            Folder {
                                id: id.clone(),
                                path: path.clone(),
                                role: None,
                            },
                        );
                        id
                    }
                    None => {
                        self.refresh().await?;
                        lock(&self.folders)
                            .get(&path)
                            .map(|f| f.id.clone())
                            .ok_or_else(|| {
                                StoreError::Transient(format!("{path}: there, then not listed"))
                            })?
                    }
                },
            };
            parent = Some(id);
        }
        Ok(())
    }

    async fn rename_folder(&self, from: &str, to: &str) -> StoreResult<()> {
        self.writable()?;
        let Ok(id) = self.folder_id(from).await else {
            // Gone: a repeated rename succeeds if the new name is there.
            return self.folder_id(to).await.map(|_| ());
        };
        let (from_parent, _) = from.rsplit_once('/').unwrap_or(("", from));
        let (to_parent, to_name) = to.rsplit_once('/').unwrap_or(("", to));
        if from_parent != to_parent {
            let destination = if to_parent.is_empty() {
                "msgfolderroot".to_string()
            } else {
                self.create_folder(to_parent, &FolderSpec::mail()).await?;
                self.folder_id(to_parent).await?
            };
            let url = format!("{}/mailFolders/{id}/move", self.user());
            self.client
                .send(
                    Method::POST,
                    &url,
                    Payload::Json(json!({"destinationId": destination})),
                    &[],
                )
                .await?;
        }
        let url = format!("{}/mailFolders/{id}", self.user());
        self.client
            .send(
                Method::PATCH,
                &url,
                Payload::Json(json!({"displayName": folders::display_name(to_name)})),
                &[],
            )
            .await?;
        self.refresh().await?;
        Ok(())
    }

    async fn delete_folder(&self, folder: &str) -> StoreResult<()> {
        self.writable()?;
        let Ok(id) = self.folder_id(folder).await else {
            return Ok(());
        };
        let url = format!(
            "{}/mailFolders/{id}?$select=totalItemCount,childFolderCount",
            self.user()
        );
        let now = self
            .client
            .send(Method::GET, &url, Payload::None, &[])
            .await?
            .json()?;
        let (total, children) = (
            now["totalItemCount"].as_u64().unwrap_or(1),
            now["childFolderCount"].as_u64().unwrap_or(1),
        );
        if total > 0 || children > 0 {
            return Err(StoreError::Permanent(format!(
                "{folder}: not deleted, it still holds {total} messages and {children} folders"
            )));
        }
        let url = format!("{}/mailFolders/{id}/permanentDelete", self.user());
        self.client.send_unless_gone(Method::POST, &url).await?;
        lock(&self.folders).remove(folder);
        Ok(())
    }

    async fn prepare_appends(&self, _folder: &str, count: usize) -> StoreResult<Vec<AppendProbe>> {
        // Without contents (not how the engine asks): random markers, found only by this run.
        Ok((0..count)
            .map(|_| {
                let mut random = [0u8; 32];
                for byte in &mut random {
                    *byte = fastrand::u8(..);
                }
                AppendProbe(marker_of(&ContentHash(random)))
            })
            .collect())
    }

    async fn prepare_appends_for(
        &self,
        _folder: &str,
        contents: &[ContentHash],
    ) -> StoreResult<Vec<AppendProbe>> {
        Ok(contents.iter().map(|c| AppendProbe(marker_of(c))).collect())
    }

    async fn append(
        &self,
        folder: &str,
        message: &Body,
        flags: &Flags,
        date: Option<Millis>,
        probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>> {
        self.writable()?;
        if exchange::is_export(message) {
            let id = self.folder_id(folder).await?;
            return self
                .exchange
                .import(&self.client, &id, message)
                .await
                .map(Some);
        }
        let bytes = message
            .to_vec()
            .map_err(|e| StoreError::Transient(format!("reading the spooled message: {e}")))?;
        let body =
            mime::create_body(&bytes, flags, date, &probe.0).map_err(StoreError::Permanent)?;
        self.notice(
            "Microsoft 365 keeps a message as properties, not as its MIME: its subject, \
             addresses, Message-ID, dates, body, attachments, flags and keywords (as categories) \
             are carried; other headers and the MIME structure are not (README, fidelity table)"
                .into(),
        );
        let encoded = body.to_string();
        let id = self.folder_id(folder).await?;
        if encoded.len() > mime::MAX_CREATE_BYTES {
            return large::create(&self.client, &id, body).await.map(Some);
        }
        let url = format!("{}/mailFolders/{id}/messages", self.user());
        let created = self
            .client
            .send(Method::POST, &url, Payload::Encoded(encoded), &[])
            .await?
            .json()?;
        Ok(created["id"].as_str().map(|id| NativeId(id.to_string())))
    }

    async fn set_flags(&self, _folder: &str, id: &NativeId, flags: &Flags) -> StoreResult<()> {
        self.writable()?;
        let url = format!("{}/messages/{}", self.user(), id.0);
        self.client
            .send(
                Method::PATCH,
                &url,
                Payload::Json(mime::flags_patch(flags)),
                &[],
            )
            .await
            .map(|_| ())
    }

    async fn delete(&self, _folder: &str, id: &NativeId) -> StoreResult<()> {
        self.writable()?;
        let url = format!("{}/messages/{}/permanentDelete", self.user(), id.0);
        match self
            .client
            .send(Method::POST, &url, Payload::None, &[])
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn move_item(
        &self,
        _from: &str,
        id: &NativeId,
        to: &str,
        _probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>> {
        self.writable()?;
        let destination = self.folder_id(to).await?;
        let url = format!("{}/messages/{}/move", self.user(), id.0);
        let moved = self
            .client
            .send(
                Method::POST,
                &url,
                Payload::Json(json!({"destinationId": destination})),
                &[],
            )
            .await?
            .json()?;
        Ok(moved["id"].as_str().map(|id| NativeId(id.to_string())))
    }

    async fn find_appended(
        &self,
        folder: &str,
        probe: &AppendProbe,
        content: &ContentHash,
        key: &ContentKey,
    ) -> StoreResult<Vec<NativeId>> {
        let id = self.folder_id(folder).await?;
        if self.full_fidelity {
            // An import carries no marker: found by its search key.
            return self.exchange.find(&self.client, &id, content, key).await;
        }
        let marked = |property: &str| {
            let filter = format!(
                "singleValueExtendedProperties/Any(ep: ep/id eq '{property}' and ep/value eq '{}')",
                probe.0
            );
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("$filter", &filter)
                .append_pair("$select", "id")
                .finish();
            format!("{}/mailFolders/{id}/messages?{query}", self.user())
        };
        let ids = |found: Vec<Value>| -> Vec<NativeId> {
            found
                .iter()
                .filter_map(|m| m["id"].as_str().map(|id| NativeId(id.to_string())))
                .collect()
        };
        let found = ids(folders::all_pages(&self.client, &marked(mime::MARKER)).await?);
        if found.is_empty() {
            // A large message cut short before all its attachments were there: ferry's own,
            // incomplete, deleted so that it is written again whole.
            let pending = ids(folders::all_pages(&self.client, &marked(large::PENDING)).await?);
            for half in &pending {
                let url = format!("{}/messages/{}/permanentDelete", self.user(), half.0);
                self.client.send_unless_gone(Method::POST, &url).await?;
            }
        }
        Ok(found)
    }

    async fn create_item(&self, folder: &str, item: NewItem<'_>) -> StoreResult<Stored> {
        self.writable()?;
        self.create_keyed(folder, item).await
    }

    async fn update(
        &self,
        folder: &str,
        id: &NativeId,
        item: NewItem<'_>,
        expect: Option<&str>,
    ) -> StoreResult<Stored> {
        self.writable()?;
        self.update_keyed(folder, id, item, expect).await
    }

    async fn delete_if(
        &self,
        folder: &str,
        id: &NativeId,
        expect: Option<&str>,
    ) -> StoreResult<()> {
        self.writable()?;
        self.delete_keyed(folder, id, expect).await
    }

    async fn set_collection(
        &self,
        folder: &str,
        from: &CollectionProps,
        to: &CollectionProps,
    ) -> StoreResult<()> {
        self.writable()?;
        self.set_keyed_folder(folder, from, to).await
    }

    async fn find_key(&self, folder: &str, key: &str) -> StoreResult<Option<ItemInfo>> {
        self.find_keyed(folder, key).await
    }

    fn notices(&self) -> Vec<String> {
        lock(&self.notices).iter().cloned().collect()
    }

    async fn flush(&self) -> StoreResult<()> {
        Ok(())
    }
}
