//! Calendars, contact folders and To Do lists of a mailbox whose other end is not a tenant
//! (CalDAV/CardDAV): their items are converted to and from iCalendar and vCard
//! (`pim_event.rs`, `pim_contact.rs`, `pim_task.rs`) and written through the events, contacts
//! and To Do APIs. Between two tenants the import/export API carries them instead
//! (`classes.rs`).
//!
//! - Folders: calendars (`/calendars`), the default Contacts folder and the folders in it
//!   (`/contactFolders`), To Do lists (`/todo/lists`, with a user's token only). A folder ferry
//!   made keeps its ferry path in an extended property, so a collection named `work-cal`
//!   whose display name is "Work" is the calendar "Work" and still `work-cal` to ferry; a
//!   To Do list cannot hold one and is named by its path.
//! - Items are keyed: the key (the UID) is kept in an extended property (events, contacts) or
//!   a linked resource (tasks) written in the request that creates the item; the version is
//!   the change key (the `@odata.etag` of a task). Each folder is listed in full at every run,
//!   ids and versions only: Graph's event delta exists only over a `calendarView` window
//!   (https://learn.microsoft.com/en-us/graph/delta-query-events), which would miss a series
//!   changed outside it, and a version tells what changed without reading it.
//! - Identity: beside the key ferry keeps `H D`: `H` the keyed hash of what it wrote, `D` a
//!   digest of how that item reads back converted. An item that reads back to `D` is as ferry
//!   left it and known as `H` (`Body::known_as`); anything else is known by its converted
//!   bytes, so a change made in Outlook is a conflict, never overwritten. A write that takes
//!   more than one request (a series with exceptions, a contact with a photo, a task's
//!   marker) writes `pending` first and `H D` last; an item left `pending` by a crash is
//!   ferry's own, unfinished: not found as written, and made again.
//! - Graph has no conditional update: an update or a deletion first reads the item's version
//!   and refuses (a conflict) if it is not the one ferry knew.

use std::collections::HashMap;

use ferry_engine::body::Body;
use ferry_engine::event::{ContentHash, NativeId};
use ferry_engine::item::{FolderSpec, Keyed, Kind};
use ferry_engine::store::{ItemInfo, Listing, NewItem, StoreError, StoreResult, Stored};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::Payload;
use crate::store::{GraphStore, lock, marker_of, property};

/// ferry's key of an item it wrote (the iCalendar or vCard UID).
pub const KEY: &str = "String {6f5a1c3e-8d2b-4e7a-9c41-f3b07d2e5a19} Name ferryKey";
/// `H D` (see the module), or `pending`.
pub const MARK: &str = "String {6f5a1c3e-8d2b-4e7a-9c41-f3b07d2e5a19} Name ferryItem";
/// The item's iCalendar or vCard UID (the key is the engine's: a CalDAV resource's name).
pub const UID: &str = "String {6f5a1c3e-8d2b-4e7a-9c41-f3b07d2e5a19} Name ferryUid";
/// What a task's linked resource that holds the UID is called.
pub const UID_APP: &str = "ferry-uid";
/// An event's attendee and organizer lines.
pub const PEOPLE: &str = "String {6f5a1c3e-8d2b-4e7a-9c41-f3b07d2e5a19} Name ferryPeople";
/// A folder's ferry path.
pub const PATH: &str = "String {6f5a1c3e-8d2b-4e7a-9c41-f3b07d2e5a19} Name ferryPath";
/// A calendar's colour as its source gave it (`hexColor` is read-only:
/// https://learn.microsoft.com/en-us/graph/api/resources/calendar).
pub const COLOR: &str = "String {6f5a1c3e-8d2b-4e7a-9c41-f3b07d2e5a19} Name ferryColor";
/// A calendar's or contact folder's description (Graph has no such property).
pub const DESCRIPTION: &str = "String {6f5a1c3e-8d2b-4e7a-9c41-f3b07d2e5a19} Name ferryDescription";
/// What a task's linked resource that holds ferry's key and mark is called.
pub const APP: &str = "ferry";
/// The mark of a write not finished.
pub const PENDING: &str = "pending";

/// Items per listing page.
const PAGE: usize = 200;

/// What a folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pim {
    Event,
    Contact,
    Task,
}

impl Pim {
    pub fn kind(self) -> Kind {
        match self {
            Pim::Event => Kind::Event,
            Pim::Contact => Kind::Contact,
            Pim::Task => Kind::Task,
        }
    }
}

/// A folder's keys as known in this process: key → (id, unfinished) of each holder.
pub(crate) type FolderKeys = HashMap<String, Vec<(String, bool)>>;

/// A calendar, contact folder or To Do list.
#[derive(Debug, Clone)]
pub struct PimFolder {
    pub pim: Pim,
    /// `None`: the default Contacts folder, reached as `/contacts`.
    pub id: Option<String>,
    pub path: String,
    pub spec: FolderSpec,
    pub description: Option<String>,
}

/// A digest of converted text: what `D` is.
pub fn digest(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..32].to_string()
}

/// ferry's linked resource on a task.
fn linked(task: &Value) -> Option<&Value> {
    task["linkedResources"]
        .as_array()?
        .iter()
        .find(|r| r["applicationName"].as_str() == Some(APP))
}

/// An item's UID: the one ferry kept, else the service's (`iCalUId` of an event), else its id.
pub fn uid_of(item: &Value, pim: Pim) -> String {
    let kept = match pim {
        Pim::Task => item["linkedResources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["applicationName"].as_str() == Some(UID_APP))
            .and_then(|r| r["externalId"].as_str()),
        _ => property(item, UID),
    };
    kept.or(item["iCalUId"].as_str())
        .or(item["id"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// An item's key, version and mark, as listed.
pub fn keyed_of(item: &Value, pim: Pim) -> Option<(String, Option<String>, Option<String>)> {
    let id = item["id"].as_str()?;
    let (key, mark) = match pim {
        Pim::Task => match linked(item) {
            Some(resource) => (
                resource["externalId"].as_str().unwrap_or(id).to_string(),
                resource["displayName"].as_str().map(str::to_string),
            ),
            None => (id.to_string(), None),
        },
        Pim::Event | Pim::Contact => (
            property(item, KEY)
                .or(item["iCalUId"].as_str())
                .unwrap_or(id)
                .to_string(),
            property(item, MARK).map(str::to_string),
        ),
    };
    let version = match pim {
        Pim::Task => item["@odata.etag"].as_str(),
        _ => item["changeKey"].as_str(),
    };
    Some((key, version.map(str::to_string), mark))
}

/// Whether a mark says the item is as ferry left it, read back as `text`: its `H`.
pub fn known(mark: Option<&str>, text: &str) -> Option<ContentHash> {
    let (hash, written) = mark?.split_once(' ')?;
    (written == digest(text)).then(|| crate::store::content_of(hash))?
}

/// The mark of an item whose keyed hash is `content` and that reads back as `text`.
pub fn mark(content: &ContentHash, text: &str) -> String {
    format!("{} {}", marker_of(content), digest(text))
}

impl GraphStore {
    /// Where a folder's items are listed and created.
    pub(crate) fn items_url(&self, folder: &PimFolder) -> String {
        let user = self.user();
        match (folder.pim, &folder.id) {
            (Pim::Event, Some(id)) => format!("{user}/calendars/{id}/events"),
            (Pim::Contact, Some(id)) => format!("{user}/contactFolders/{id}/contacts"),
            (Pim::Contact, None) => format!("{user}/contacts"),
            (Pim::Task, Some(id)) => format!("{user}/todo/lists/{id}/tasks"),
            (_, None) => format!("{user}/events"),
        }
    }

    /// Where one item is.
    pub(crate) fn item_url(&self, folder: &PimFolder, id: &str) -> String {
        let user = self.user();
        match folder.pim {
            Pim::Event => format!("{user}/events/{id}"),
            Pim::Contact => format!("{user}/contacts/{id}"),
            Pim::Task => format!("{}/{id}", self.items_url(folder)),
        }
    }

    /// The query that lists a folder's items: ids, versions, key and mark.
    fn listing_query(pim: Pim) -> String {
        match pim {
            Pim::Task => format!("$top={PAGE}&$expand=linkedResources"),
            Pim::Event => format!(
                "$top={PAGE}&$select=id,changeKey,iCalUId&$expand=singleValueExtendedProperties($filter=id eq '{KEY}' or id eq '{MARK}')"
            ),
            Pim::Contact => format!(
                "$top={PAGE}&$select=id,changeKey&$expand=singleValueExtendedProperties($filter=id eq '{KEY}' or id eq '{MARK}')"
            ),
        }
    }

    /// Every item of a folder, as listed; its keys are kept for the creates that follow.
    pub(crate) async fn pim_items(&self, folder: &PimFolder) -> StoreResult<Vec<Value>> {
        let url = format!(
            "{}?{}",
            self.items_url(folder),
            Self::listing_query(folder.pim)
        );
        let items = crate::folders::all_pages(&self.client, &url).await?;
        let mut keys = FolderKeys::new();
        for item in &items {
            if let (Some((key, _, mark)), Some(id)) =
                (keyed_of(item, folder.pim), item["id"].as_str())
            {
                keys.entry(key)
                    .or_default()
                    .push((id.to_string(), mark.as_deref() == Some(PENDING)));
            }
        }
        lock(&self.pim_keys).insert(folder.path.clone(), keys);
        Ok(items)
    }

    fn info_of(item: &Value, pim: Pim) -> Option<ItemInfo> {
        let (key, version, _) = keyed_of(item, pim)?;
        Some(ItemInfo {
            id: NativeId(item["id"].as_str()?.to_string()),
            size: 0,
            flags: ferry_engine::flags::Flags::new(),
            date: None,
            keyed: Some(Box::new(Keyed {
                key,
                version,
                kind: pim.kind(),
            })),
            content: None,
        })
    }

    /// A folder's listing: in full, every time.
    pub(crate) async fn list_pim(&self, folder: &PimFolder) -> StoreResult<Listing> {
        // An unfinished write of ferry's (marked pending) is not listed: the plan makes the
        // item again, and the create clears what the crash left.
        let items = self
            .pim_items(folder)
            .await?
            .iter()
            .filter(|item| {
                keyed_of(item, folder.pim)
                    .is_some_and(|(_, _, mark)| mark.as_deref() != Some(PENDING))
            })
            .filter_map(|item| Self::info_of(item, folder.pim))
            .collect();
        Ok(Listing::Full { items, token: None })
    }

    /// The item of `folder` with key `key` that is not an unfinished write, as listed.
    pub(crate) async fn find_pim(
        &self,
        folder: &PimFolder,
        key: &str,
    ) -> StoreResult<Option<(Value, ItemInfo)>> {
        for item in self.pim_items(folder).await? {
            if let Some((found, _, mark)) = keyed_of(&item, folder.pim)
                && found == key
                && mark.as_deref() != Some(PENDING)
                && let Some(info) = Self::info_of(&item, folder.pim)
            {
                return Ok(Some((item, info)));
            }
        }
        Ok(None)
    }

    /// An unfinished write of `key` (marked pending), deleted so that it is made again whole.
    /// Graph has no conditional create, so the folder's keys are looked at first: from the
    /// listing of this run (the folder is listed only when its keys are not known, or were
    /// forgotten after a write whose outcome is unknown), not once per create.
    pub(crate) async fn clear_pending(&self, folder: &PimFolder, key: &str) -> StoreResult<bool> {
        let known = lock(&self.pim_keys)
            .get(&folder.path)
            .map(|keys| keys.get(key).cloned());
        let holders = match known {
            Some(holders) => holders.unwrap_or_default(),
            None => {
                self.pim_items(folder).await?;
                lock(&self.pim_keys)
                    .get(&folder.path)
                    .and_then(|keys| keys.get(key).cloned())
                    .unwrap_or_default()
            }
        };
        let mut taken = false;
        for (id, pending) in holders {
            if !pending {
                taken = true;
                continue;
            }
            self.client
                .send_unless_gone(Method::DELETE, &self.item_url(folder, &id))
                .await?;
            if let Some(keys) = lock(&self.pim_keys).get_mut(&folder.path)
                && let Some(holders) = keys.get_mut(key)
            {
                holders.retain(|(held, _)| *held != id);
            }
        }
        Ok(taken)
    }

    /// Records a create's outcome in the folder's keys: the item made, or, when the outcome
    /// is unknown, the keys forgotten (listed again before the next create).
    fn created(&self, folder: &PimFolder, key: &str, made: Option<&Stored>) {
        let mut keys = lock(&self.pim_keys);
        match made {
            Some(stored) => {
                if let Some(keys) = keys.get_mut(&folder.path) {
                    keys.entry(key.to_string())
                        .or_default()
                        .push((stored.id.0.clone(), false));
                }
            }
            None => {
                keys.remove(&folder.path);
            }
        }
    }

    /// The item's version now, and its mark; `None` when it is gone.
    pub(crate) async fn pim_version(
        &self,
        folder: &PimFolder,
        id: &NativeId,
    ) -> StoreResult<Option<(Option<String>, Option<String>)>> {
        let query = match folder.pim {
            Pim::Task => "$expand=linkedResources".to_string(),
            _ => format!(
                "$select=id,changeKey&$expand=singleValueExtendedProperties($filter=id eq '{KEY}' or id eq '{MARK}')"
            ),
        };
        let url = format!("{}?{query}", self.item_url(folder, &id.0));
        match self
            .client
            .send(Method::GET, &url, Payload::None, &[])
            .await
        {
            Ok(answer) => {
                let item = answer.json()?;
                Ok(keyed_of(&item, folder.pim).map(|(_, version, mark)| (version, mark)))
            }
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Refuses a write to an item that is not at the version ferry knew (unless it is ferry's
    /// own unfinished write).
    pub(crate) async fn check_version(
        &self,
        folder: &PimFolder,
        id: &NativeId,
        expect: Option<&str>,
    ) -> StoreResult<bool> {
        let Some((version, mark)) = self.pim_version(folder, id).await? else {
            return Ok(false);
        };
        if let Some(expect) = expect
            && version.as_deref() != Some(expect)
            && mark.as_deref() != Some(PENDING)
        {
            return Err(StoreError::Conflict(format!(
                "{}: changed on the target since ferry wrote it",
                id.0
            )));
        }
        Ok(true)
    }

    /// Deletes an item, only while it is at `expect`.
    pub(crate) async fn delete_pim(
        &self,
        folder: &PimFolder,
        id: &NativeId,
        expect: Option<&str>,
    ) -> StoreResult<()> {
        if !self.check_version(folder, id, expect).await? {
            return Ok(());
        }
        self.client
            .send_unless_gone(Method::DELETE, &self.item_url(folder, &id.0))
            .await
    }

    /// Sets ferry's mark on item `id` (an event or a contact): the last request of a write.
    pub(crate) async fn set_mark(
        &self,
        folder: &PimFolder,
        id: &str,
        mark: &str,
    ) -> StoreResult<()> {
        let done = json!({"singleValueExtendedProperties": [{"id": MARK, "value": mark}]});
        self.client
            .send(
                Method::PATCH,
                &self.item_url(folder, id),
                Payload::Json(done),
                &[],
            )
            .await?;
        Ok(())
    }

    /// Creates an item of `folder` from `body` (`existing` none: its new id) or changes item
    /// `existing` by it.
    pub(crate) async fn put_pim(
        &self,
        folder: &PimFolder,
        existing: Option<&str>,
        body: Value,
        key: &str,
    ) -> StoreResult<String> {
        match existing {
            None => {
                let made = self
                    .client
                    .send(
                        Method::POST,
                        &self.items_url(folder),
                        Payload::Json(body),
                        &[],
                    )
                    .await?
                    .json()?;
                made["id"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| StoreError::Transient(format!("{key}: the service gave no id")))
            }
            Some(id) => {
                self.client
                    .send(
                        Method::PATCH,
                        &self.item_url(folder, id),
                        Payload::Json(body),
                        &[],
                    )
                    .await?;
                Ok(id.to_string())
            }
        }
    }

    /// An item read and converted: known as what ferry wrote while it reads back so.
    pub(crate) async fn fetch_pim(&self, folder: &PimFolder, id: &NativeId) -> StoreResult<Body> {
        let (text, mark) = match folder.pim {
            Pim::Event => self.read_event(&id.0).await?,
            Pim::Contact => self.read_contact(&id.0).await?,
            Pim::Task => self.read_task(folder, &id.0).await?,
        };
        let known = known(mark.as_deref(), &text);
        let body = Body::from(text.into_bytes());
        Ok(match known {
            Some(hash) => body.known_as(hash),
            None => body,
        })
    }

    /// Creates an item; refused when its key is taken.
    pub(crate) async fn create_pim(
        &self,
        folder: &PimFolder,
        item: NewItem<'_>,
    ) -> StoreResult<Stored> {
        if self.clear_pending(folder, item.key).await? {
            return Err(StoreError::Conflict(format!(
                "{}: the key is taken",
                item.key
            )));
        }
        let text = text_of(item.bytes)?;
        let made = match folder.pim {
            Pim::Event => {
                self.write_event(folder, None, item.key, &text, item.content)
                    .await
            }
            Pim::Contact => {
                self.write_contact(folder, None, item.key, &text, item.content)
                    .await
            }
            Pim::Task => {
                self.write_task(folder, None, item.key, &text, item.content)
                    .await
            }
        };
        match &made {
            Ok(stored) => self.created(folder, item.key, Some(stored)),
            // Refused before anything was sent: the folder's keys stand.
            Err(StoreError::Conflict(_)) => {}
            Err(_) => self.created(folder, item.key, None),
        }
        made
    }

    /// Replaces an item, only while it is at `expect`.
    pub(crate) async fn update_pim(
        &self,
        folder: &PimFolder,
        id: &NativeId,
        item: NewItem<'_>,
        expect: Option<&str>,
    ) -> StoreResult<Stored> {
        if !self.check_version(folder, id, expect).await? {
            return Err(StoreError::NotFound(format!("{}: gone", id.0)));
        }
        let text = text_of(item.bytes)?;
        match folder.pim {
            Pim::Event => {
                self.write_event(folder, Some(&id.0), item.key, &text, item.content)
                    .await
            }
            Pim::Contact => {
                self.write_contact(folder, Some(&id.0), item.key, &text, item.content)
                    .await
            }
            Pim::Task => {
                self.write_task(folder, Some(&id.0), item.key, &text, item.content)
                    .await
            }
        }
    }

    /// The version of an item after ferry's writes to it.
    pub(crate) async fn stored(&self, folder: &PimFolder, id: &str) -> StoreResult<Stored> {
        let version = self
            .pim_version(folder, &NativeId(id.to_string()))
            .await?
            .and_then(|(version, _)| version);
        Ok(Stored {
            id: NativeId(id.to_string()),
            version,
        })
    }

    /// Names, once per item, what could not be carried.
    pub(crate) fn report_dropped(&self, folder: &PimFolder, key: &str, dropped: &[String]) {
        if !dropped.is_empty() {
            self.notice(format!(
                "{}: {key}: not carried into Microsoft 365 (Graph cannot hold it): {}",
                folder.path,
                dropped.join(", ")
            ));
        }
    }
}

/// A TEXT value escaped as RFC 5545 §3.3.11 and RFC 6350 §3.4 write it.
pub fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace('\n', "\\n")
        .replace('\r', "")
}

/// An item's bytes as text.
pub fn text_of(body: &Body) -> StoreResult<String> {
    let bytes = body
        .to_vec()
        .map_err(|error| StoreError::Transient(ferry_engine::body::read_back(&error)))?;
    String::from_utf8(bytes).map_err(|_| StoreError::Permanent("not UTF-8 text".into()))
}
