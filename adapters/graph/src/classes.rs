//! Tenant to tenant, the folders that are not mail: calendars (`IPF.Appointment`), contacts
//! (`IPF.Contact`), tasks (`IPF.Task`), notes (`IPF.StickyNote`) and journals (`IPF.Journal`),
//! listed, exported and imported through the mailbox import/export API
//! (https://learn.microsoft.com/en-us/graph/api/resources/mailbox-import-export-api-overview),
//! whole, as Exchange's opaque stream: every item class goes as it is, without conversion.
//!
//! Their items change in place, so they are the engine's keyed items: the key is the item's
//! PidTagSearchKey (`Binary 0x300B`, kept by an import), the version its `changeKey`, and
//! the content the keyed hash of its export stream. An edit on the source is one import in
//! `update` mode naming the target item's id and the change key ferry last knew of it, which
//! Exchange refuses if the target item changed since (a conflict, nothing overwritten); a
//! deletion is done only while the target item is at that change key.
//!
//! Graph has no conditional create: a create first looks whether the folder holds the key
//! (one listing of the folder per run, kept, and forgotten whenever an import's outcome is
//! unknown), so a create sent again after its reply was lost is found, not doubled.
//!
//! Not documented, and chosen as this emulator does: that an item exported again after an
//! import gives the stream that was imported (how ferry recognises its own write when a
//! reply was lost). Were Exchange to re-export it differently, such a write would be reported
//! as a conflict and left as it is: never overwritten, never doubled.

use std::collections::HashMap;

use ferry_engine::event::NativeId;
use ferry_engine::item::{FolderKind, FolderSpec, Keyed, Kind};
use ferry_engine::store::{ItemInfo, StoreError, StoreResult};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, Payload};
use crate::exchange::{Exchange, SEARCH_KEY, search_key_of};
use crate::folders::{self, segment};

/// A folder that is not mail, as listed.
#[derive(Debug, Clone)]
pub struct Other {
    pub id: String,
    pub path: String,
    pub spec: FolderSpec,
}

/// The folder classes carried, with what each is to the engine.
const CLASSES: &[(&str, FolderKind, Option<Kind>)] = &[
    ("IPF.Appointment", FolderKind::Calendar, Some(Kind::Event)),
    ("IPF.Contact", FolderKind::AddressBook, None),
    ("IPF.Task", FolderKind::TaskList, None),
    ("IPF.StickyNote", FolderKind::Notes, Some(Kind::Note)),
    ("IPF.Journal", FolderKind::Notes, Some(Kind::Journal)),
];

/// What a folder of class `class` is to the engine; `None` for mail and for classes not
/// carried (Exchange's own configuration folders).
pub fn spec_of(class: &str, name: &str) -> Option<FolderSpec> {
    let (_, kind, only) = CLASSES.iter().find(|(c, _, _)| *c == class)?;
    Some(FolderSpec {
        kind: *kind,
        display_name: Some(name.to_string()),
        color: None,
        components: only.map(|k| vec![k]).unwrap_or_default(),
    })
}

/// The folder class a folder of `spec` is made with.
pub fn class_of(spec: &FolderSpec) -> &'static str {
    match spec.kind {
        FolderKind::Calendar => "IPF.Appointment",
        FolderKind::AddressBook => "IPF.Contact",
        FolderKind::TaskList => "IPF.Task",
        FolderKind::Notes if spec.components == [Kind::Journal] => "IPF.Journal",
        FolderKind::Notes => "IPF.StickyNote",
        FolderKind::Mail => "IPF.Note",
    }
}

/// What an item of class `class` in a folder of `spec` is.
fn kind_of(class: &str, spec: &FolderSpec) -> Kind {
    let class = class.to_ascii_lowercase();
    if class.starts_with("ipm.appointment") || class.starts_with("ipm.schedule") {
        Kind::Event
    } else if class.starts_with("ipm.contact") || class.starts_with("ipm.distlist") {
        Kind::Contact
    } else if class.starts_with("ipm.task") {
        Kind::Task
    } else if class.starts_with("ipm.stickynote") {
        Kind::Note
    } else if class.starts_with("ipm.activity") {
        Kind::Journal
    } else {
        match spec.kind {
            FolderKind::Calendar => Kind::Event,
            FolderKind::AddressBook => Kind::Contact,
            FolderKind::TaskList => Kind::Task,
            FolderKind::Notes => spec.components.first().copied().unwrap_or(Kind::Note),
            FolderKind::Mail => Kind::Message,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A keyed item as a listing of the import/export API shows it.
pub fn item_of(item: &Value, spec: &FolderSpec) -> Option<ItemInfo> {
    let id = item["id"].as_str()?;
    let key = search_key_of(item)?;
    Some(ItemInfo {
        id: NativeId(id.to_string()),
        size: item["size"].as_u64().unwrap_or(0),
        flags: ferry_engine::flags::Flags::new(),
        date: None,
        keyed: Some(Box::new(Keyed {
            key: hex(&key),
            version: item["changeKey"].as_str().map(str::to_string),
            kind: kind_of(item["type"].as_str().unwrap_or_default(), spec),
        })),
        content: None,
    })
}

/// The listing options: the search key of each item.
pub fn item_query() -> String {
    format!(
        "$select=id,type,size,changeKey&$expand=singleValueExtendedProperties($filter=id eq '{SEARCH_KEY}')"
    )
}

impl Exchange {
    /// The mailbox's folders that are not mail and are carried, with their paths.
    pub async fn other_folders(&self, client: &Client) -> StoreResult<Vec<Other>> {
        let root = format!(
            "/admin/exchange/mailboxes/{}",
            self.mailbox_id(client).await?
        );
        let mut out = Vec::new();
        // (url of a folder list, path of its parent)
        let mut pending = vec![(format!("{root}/folders?$top=100"), String::new())];
        while let Some((url, parent)) = pending.pop() {
            for folder in folders::all_pages(client, &url).await? {
                let (Some(id), Some(name)) =
                    (folder["id"].as_str(), folder["displayName"].as_str())
                else {
                    continue;
                };
                let class = folder["type"].as_str().unwrap_or("IPF.Note");
                let Some(spec) = spec_of(class, name) else {
                    // Mail (listed through the mailFolders API) or Exchange's own.
                    continue;
                };
                let path = if parent.is_empty() {
                    segment(name)
                } else {
                    format!("{parent}/{}", segment(name))
                };
                if folder["childFolderCount"].as_u64().unwrap_or(0) > 0 {
                    pending.push((
                        format!("{root}/folders/{id}/childFolders?$top=100"),
                        path.clone(),
                    ));
                }
                out.push(Other {
                    id: id.to_string(),
                    path,
                    spec,
                });
            }
        }
        Ok(out)
    }

    /// Makes a folder of `spec` named `name` under `parent` (an id; the root when `None`).
    pub async fn create_other(
        &self,
        client: &Client,
        parent: Option<&str>,
        name: &str,
        spec: &FolderSpec,
    ) -> StoreResult<Option<String>> {
        let root = format!(
            "/admin/exchange/mailboxes/{}",
            self.mailbox_id(client).await?
        );
        let url = match parent {
            None => format!("{root}/folders"),
            Some(id) => format!("{root}/folders/{id}/childFolders"),
        };
        let body = json!({"displayName": folders::display_name(name), "type": class_of(spec)});
        match client
            .send(Method::POST, &url, Payload::Json(body), &[])
            .await
        {
            Ok(answer) => Ok(answer.json()?["id"].as_str().map(str::to_string)),
            Err(StoreError::Permanent(said)) if said.contains("HTTP 409") => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The first page URL of a delta round of folder `id`.
    pub async fn items_delta(&self, client: &Client, id: &str) -> StoreResult<String> {
        Ok(format!(
            "/admin/exchange/mailboxes/{}/folders/{id}/items/delta?{}",
            self.mailbox_id(client).await?,
            item_query()
        ))
    }

    /// Every item of folder `id`: key → item.
    async fn keys(
        &self,
        client: &Client,
        id: &str,
        spec: &FolderSpec,
    ) -> StoreResult<HashMap<String, ItemInfo>> {
        let url = format!(
            "/admin/exchange/mailboxes/{}/folders/{id}/items?$top=500&{}",
            self.mailbox_id(client).await?,
            item_query()
        );
        let mut out = HashMap::new();
        for item in folders::all_pages(client, &url).await? {
            if let Some(info) = item_of(&item, spec)
                && let Some(keyed) = &info.keyed
            {
                out.insert(keyed.key.clone(), info);
            }
        }
        Ok(out)
    }

    /// The item of folder `id` with key `key`, asked of the service now.
    pub async fn find_key(
        &self,
        client: &Client,
        id: &str,
        spec: &FolderSpec,
        key: &str,
    ) -> StoreResult<Option<ItemInfo>> {
        let keys = self.keys(client, id, spec).await?;
        lock(&self.keyed_folders).insert(
            id.to_string(),
            keys.iter()
                .map(|(k, v)| (k.clone(), v.id.clone()))
                .collect(),
        );
        Ok(keys.get(key).cloned())
    }

    /// Whether folder `id` holds key `key`, by the listing kept for this run.
    pub async fn holds_key(
        &self,
        client: &Client,
        id: &str,
        spec: &FolderSpec,
        key: &str,
    ) -> StoreResult<Option<NativeId>> {
        let known = lock(&self.keyed_folders)
            .get(id)
            .map(|keys| keys.get(key).cloned());
        match known {
            Some(found) => Ok(found),
            None => Ok(self
                .find_key(client, id, spec, key)
                .await?
                .map(|info| info.id)),
        }
    }

    /// Records the outcome of an import into folder `id`: the key's item when it is known,
    /// or the folder's listing forgotten when the outcome is not.
    pub fn imported(&self, id: &str, key: &str, made: Option<&NativeId>) {
        let mut folders = lock(&self.keyed_folders);
        match made {
            Some(made) => {
                if let Some(keys) = folders.get_mut(id) {
                    keys.insert(key.to_string(), made.clone());
                }
            }
            None => {
                folders.remove(id);
            }
        }
    }

    /// Deletes item `item` of folder `folder` for good, only while it is at `expect`.
    pub async fn delete_keyed(
        &self,
        client: &Client,
        folder: &str,
        item: &NativeId,
        expect: Option<&str>,
    ) -> StoreResult<()> {
        let root = format!(
            "/admin/exchange/mailboxes/{}",
            self.mailbox_id(client).await?
        );
        let url = format!("{root}/folders/{folder}/items/{}", item.0);
        let now = match client
            .send(
                Method::GET,
                &format!("{url}?$select=changeKey"),
                Payload::None,
                &[],
            )
            .await
        {
            Ok(answer) => answer.json()?,
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(error) => return Err(error),
        };
        let have = now["changeKey"].as_str().unwrap_or_default();
        if let Some(expect) = expect
            && expect != have
        {
            return Err(StoreError::Conflict(format!(
                "{} is at change key {have}, not {expect}",
                item.0
            )));
        }
        match client
            .send(
                Method::DELETE,
                &format!("{url}?disposalType=hardDelete"),
                Payload::None,
                &[],
            )
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
