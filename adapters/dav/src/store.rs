//! `impl Store for DavStore`: the calendars and address books of one CalDAV/CardDAV account.
//! - Folders are the collections of the account's home sets, by name (the last segment of
//!   their href), with their kind, display name, colour and components.
//! - Items are keyed: the key is the resource name (clients name a resource after its UID),
//!   the version its ETag, the content the keyed hash of its canonical form
//!   (`canonical.rs`), so a server's re-serialisation is not a change.
//! - Listings are sync-collection reports (RFC 6578) from the token kept in the journal; a
//!   token the server no longer knows (`valid-sync-token`) means one full listing, which the
//!   engine reconciles against the journal; a server without sync-collection is listed by
//!   ETags (PROPFIND depth 1).
//! - Writes are conditional: `If-None-Match: *` to create (a create sent twice never makes
//!   two), `If-Match` to update and delete (what changed on the target behind ferry's back is
//!   a conflict, never overwritten).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use ferry_engine::body::Body;
use ferry_engine::event::{ContentHash, Millis, NativeId};
use ferry_engine::flags::Flags;
use ferry_engine::item::{CollectionProps, FolderKind, FolderSpec, Keyed, Kind};
use ferry_engine::store::{
    AppendProbe, Capabilities, FolderInfo, ItemInfo, Listing, NewItem, Store, StoreError,
    StoreResult, Stored,
};
use ferry_journal::ContentKey;
use ferry_secret::Secret;

use crate::canonical::canonical;
use crate::client::{Client, Condition, classify};
use crate::multistatus::{self, Member};
use crate::uri::DavUri;

/// What a collection's change token starts with (its format's version).
const TOKEN_VERSION: &str = "s1 ";

/// A collection as listed.
#[derive(Debug, Clone)]
pub(crate) struct Collection {
    pub(crate) href: String,
    pub(crate) spec: FolderSpec,
    pub(crate) description: Option<String>,
    /// Its sync token as the home's listing gave it, until ferry writes to it: a listing from
    /// this very token has nothing to tell, and is not asked for.
    pub(crate) token: Option<String>,
}

/// Where an account's collections are.
#[derive(Debug, Clone)]
pub(crate) struct Homes {
    pub(crate) calendars: String,
    pub(crate) address_books: String,
}

impl Homes {
    /// Each home once.
    pub(crate) fn all(&self) -> Vec<String> {
        let mut all = vec![self.calendars.clone()];
        if self.address_books != self.calendars {
            all.push(self.address_books.clone());
        }
        all
    }
}

/// One CalDAV/CardDAV account.
#[derive(Debug)]
pub struct DavStore {
    pub(crate) client: Client,
    read_only: bool,
    /// The calendar and address book home sets, asked once.
    homes: tokio::sync::OnceCell<Homes>,
    pub(crate) collections: Mutex<HashMap<String, Collection>>,
    notices: Mutex<BTreeSet<String>>,
    /// Items a source read by a multiget, kept until read once more (the engine reads an
    /// item to know it, then again to write it): one request instead of two, and the bytes written
    /// are those ferry planned with. At most [`READ_CACHE_BYTES`], oldest out first.
    read_cache: Mutex<ReadCache>,
}

/// The most bytes of items kept read.
const READ_CACHE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Default)]
struct ReadCache {
    bodies: HashMap<String, Body>,
    order: std::collections::VecDeque<String>,
    bytes: u64,
}

impl ReadCache {
    fn keep(&mut self, href: String, body: Body) {
        self.bytes += body.len();
        if let Some(old) = self.bodies.insert(href.clone(), body) {
            self.bytes -= old.len();
        }
        self.order.push_back(href);
        while self.bytes > READ_CACHE_BYTES {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.bodies.remove(&oldest) {
                self.bytes -= gone.len();
            }
        }
    }

    fn take(&mut self, href: &str) -> Option<Body> {
        let body = self.bodies.remove(href)?;
        self.bytes -= body.len();
        Some(body)
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The last segment of an href, decoded.
pub(crate) fn name_of(href: &str) -> String {
    let segment = href.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// An href path with its percent-escapes decoded: how two spellings of one href compare.
pub(crate) fn decoded(href: &str) -> String {
    percent_encoding::percent_decode_str(href)
        .decode_utf8_lossy()
        .into_owned()
}

/// A resource name as an href segment.
pub(crate) fn segment_of(name: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'@');
    percent_encoding::utf8_percent_encode(name, KEEP).to_string()
}

/// The href path of an href that may be absolute.
pub(crate) fn path_of(href: &str) -> String {
    match href.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/".into(), |i| rest[i..].to_string()),
        None => href.to_string(),
    }
}

pub(crate) fn kind_of(component: &str) -> Option<Kind> {
    match component {
        "VEVENT" => Some(Kind::Event),
        "VTODO" => Some(Kind::Task),
        "VJOURNAL" => Some(Kind::Journal),
        _ => None,
    }
}

pub(crate) fn component_of(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Event => Some("VEVENT"),
        Kind::Task => Some("VTODO"),
        Kind::Journal => Some("VJOURNAL"),
        _ => None,
    }
}

impl DavStore {
    /// Forgets the listed sync token of the collection holding `href`: ferry wrote there.
    pub(crate) fn wrote(&self, href: &str) {
        for collection in lock(&self.collections).values_mut() {
            if href.starts_with(collection.href.as_str()) {
                collection.token = None;
            }
        }
    }

    /// Says `text` once in the report.
    pub(crate) fn notice(&self, text: String) {
        lock(&self.notices).insert(text);
    }

    /// Opens a `dav:` or `davs:` URI; nothing is sent until the first call.
    pub fn open(uri: &str, secret: Option<Secret>, read_only: bool) -> StoreResult<DavStore> {
        let uri = DavUri::parse(uri)?;
        Ok(DavStore {
            client: Client::new(uri, secret)?,
            read_only,
            homes: tokio::sync::OnceCell::new(),
            collections: Mutex::new(HashMap::new()),
            notices: Mutex::new(BTreeSet::new()),
            read_cache: Mutex::new(ReadCache::default()),
        })
    }

    /// Plain http to another machine: the password and every item cross unencrypted.
    pub fn plaintext_off_host(&self) -> bool {
        self.client.uri().plaintext_off_host
    }

    fn writable(&self) -> StoreResult<()> {
        if self.read_only {
            return Err(StoreError::Unusable(format!(
                "{}: opened read-only (the source is never written)",
                self.describe()
            )));
        }
        Ok(())
    }

    pub(crate) async fn propfind(
        &self,
        path: &str,
        depth: &str,
        body: &str,
    ) -> StoreResult<Vec<Member>> {
        let answer = self
            .client
            .send_ok(
                "PROPFIND",
                path,
                &[("depth", depth)],
                Some(("application/xml; charset=utf-8", body.as_bytes().to_vec())),
                Condition::None,
            )
            .await?;
        multistatus::parse(&answer.text())
            .map(|parsed| parsed.members)
            .map_err(|e| StoreError::Transient(format!("PROPFIND {path}: {e}")))
    }

    /// The home sets: the URI's path, or those the principal names (RFC 6764 discovery).
    pub(crate) async fn homes(&self) -> StoreResult<&Homes> {
        self.homes
            .get_or_try_init(|| async {
                if let Some(home) = &self.client.uri().home {
                    return Ok(Homes {
                        calendars: home.clone(),
                        address_books: home.clone(),
                    });
                }
                let mut principal = None;
                for start in ["/.well-known/caldav", "/.well-known/carddav", "/"] {
                    let found = match self
                        .propfind(start, "0", multistatus::PROPFIND_PRINCIPAL)
                        .await
                    {
                        Ok(members) => members
                            .into_iter()
                            .find_map(|m| m.props.current_user_principal),
                        Err(StoreError::NotFound(_)) | Err(StoreError::Permanent(_)) => None,
                        Err(error) => return Err(error),
                    };
                    if found.is_some() {
                        principal = found;
                        break;
                    }
                }
                let principal = principal.ok_or_else(|| {
                    StoreError::Unusable(format!(
                        "{}: the server names no principal: give the path of the collections",
                        self.describe()
                    ))
                })?;
                let principal = path_of(&principal);
                let members = self
                    .propfind(&principal, "0", multistatus::PROPFIND_PRINCIPAL)
                    .await?;
                let (mut calendars, mut address_books) = (None, None);
                for member in members {
                    calendars = calendars.or(member.props.calendar_home_set.map(|h| path_of(&h)));
                    address_books =
                        address_books.or(member.props.addressbook_home_set.map(|h| path_of(&h)));
                }
                let calendars = calendars.unwrap_or_else(|| principal.clone());
                Ok(Homes {
                    address_books: address_books.unwrap_or_else(|| calendars.clone()),
                    calendars,
                })
            })
            .await
    }

    fn item_of(&self, collection: &Collection, member: &Member) -> Option<ItemInfo> {
        let href = path_of(&member.href);
        if href.ends_with('/')
            || href.trim_end_matches('/') == collection.href.trim_end_matches('/')
        {
            return None;
        }
        let kind = match collection.spec.kind {
            FolderKind::AddressBook => Kind::Contact,
            _ => collection
                .spec
                .components
                .first()
                .copied()
                .unwrap_or(Kind::Event),
        };
        Some(ItemInfo {
            id: NativeId(href.clone()),
            size: 0,
            flags: Flags::new(),
            date: None,
            keyed: Some(Box::new(Keyed {
                key: name_of(&href),
                version: member.props.etag.clone(),
                kind,
            })),
            content: None,
        })
    }

    /// Every member of a collection with its ETag (a server without sync-collection).
    async fn etag_listing(&self, collection: &Collection) -> StoreResult<Vec<ItemInfo>> {
        let members = self
            .propfind(&collection.href, "1", multistatus::PROPFIND_ETAGS)
            .await?;
        Ok(members
            .iter()
            .filter(|m| !m.props.resource_type.collection)
            .filter_map(|m| self.item_of(collection, m))
            .collect())
    }

    /// A sync-collection report from `token`; `None` when the server no longer knows it.
    async fn sync(
        &self,
        collection: &Collection,
        token: &str,
    ) -> StoreResult<Option<(Vec<ItemInfo>, Vec<NativeId>, Option<String>)>> {
        let body = multistatus::sync_collection(token);
        let answer = self
            .client
            .send(
                "REPORT",
                &collection.href,
                &[],
                Some(("application/xml; charset=utf-8", body.into_bytes())),
                Condition::None,
            )
            .await?;
        if answer.status != 207 {
            // RFC 6578's answer to a token the server let go is `valid-sync-token`; Xandikos
            // answers 500 instead: either way, one full listing.
            if multistatus::invalid_sync_token(&answer.text())
                || (!token.is_empty() && answer.status >= 500)
            {
                return Ok(None);
            }
            return Err(classify("REPORT", &collection.href, &answer));
        }
        let parsed = multistatus::parse(&answer.text())
            .map_err(|e| StoreError::Transient(format!("REPORT {}: {e}", collection.href)))?;
        let (mut changed, mut gone) = (Vec::new(), Vec::new());
        for member in &parsed.members {
            if member.status == Some(404) {
                gone.push(NativeId(path_of(&member.href)));
            } else if let Some(item) = self.item_of(collection, member) {
                changed.push(item);
            }
        }
        Ok(Some((changed, gone, parsed.sync_token)))
    }

    /// Where an item of key `key` lives in `collection`.
    fn href_of(collection: &Collection, key: &str) -> String {
        format!("{}{}", collection.href, segment_of(key))
    }

    async fn put(
        &self,
        href: &str,
        kind: Kind,
        bytes: &Body,
        condition: Condition<'_>,
    ) -> StoreResult<Stored> {
        let content_type = if kind == Kind::Contact {
            "text/vcard; charset=utf-8"
        } else {
            "text/calendar; charset=utf-8"
        };
        let bytes = bytes
            .to_vec()
            .map_err(|e| StoreError::Transient(format!("reading the item: {e}")))?;
        // Written or not, the collection's listed token no longer says it is unchanged.
        self.wrote(href);
        let answer = self
            .client
            .send("PUT", href, &[], Some((content_type, bytes)), condition)
            .await?;
        let said = answer.text();
        if said.contains("no-uid-conflict") {
            return Err(StoreError::Permanent(format!(
                "PUT {href}: the target holds this UID under another name (no-uid-conflict): \
                 not written over"
            )));
        }
        // A 207 to a PUT is a refusal told inside (Xandikos: `valid-calendar-data`).
        if answer.status == 207 || !(200..300).contains(&answer.status) {
            let status = if answer.status == 207 {
                multistatus::parse(&said)
                    .ok()
                    .and_then(|m| m.members.into_iter().find_map(|m| m.status))
                    .unwrap_or(400)
            } else {
                answer.status
            };
            let inner = crate::client::Answer {
                status,
                etag: None,
                body: answer.body.clone(),
            };
            return Err(classify("PUT", href, &inner));
        }
        let version = match answer.etag {
            Some(etag) => Some(etag),
            // No ETag in the answer (the server changed what it stored): asked.
            None => self
                .propfind(href, "0", multistatus::PROPFIND_ETAGS)
                .await?
                .into_iter()
                .find_map(|m| m.props.etag),
        };
        Ok(Stored {
            id: NativeId(href.to_string()),
            version,
        })
    }
}

fn no_mail(what: &str) -> StoreError {
    StoreError::Permanent(format!(
        "{what}: a CalDAV/CardDAV account holds calendars and address books, not mail"
    ))
}

#[async_trait]
impl Store for DavStore {
    fn describe(&self) -> String {
        self.client.uri().describe()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            change_tokens: true,
            // calendar-multiget and addressbook-multiget.
            fetch_many: true,
            rename: false,
            remote: true,
            kinds: vec![Kind::Event, Kind::Task, Kind::Journal, Kind::Contact],
            limits: ferry_engine::pacer::Limits {
                in_flight: Some(self.client.uri().connections),
                ..ferry_engine::pacer::Limits::default()
            },
            ..Capabilities::default()
        }
    }

    async fn list_folders(&self) -> StoreResult<Vec<FolderInfo>> {
        Ok(self
            .refresh()
            .await?
            .into_iter()
            .map(|(name, collection)| FolderInfo {
                path: name,
                special_use: None,
                validity: None,
                unreadable: None,
                spec: collection.spec,
                description: collection.description,
            })
            .collect())
    }

    async fn list_items(&self, folder: &str, since: Option<&str>) -> StoreResult<Listing> {
        let collection = self.collection(folder).await?;
        let since = since.and_then(|t| t.strip_prefix(TOKEN_VERSION));
        if let Some(token) = since
            && collection.token.as_deref() == Some(token)
        {
            // The home's listing shows the collection at the very token of the last
            // listing, and ferry has not written to it since: nothing changed (RFC 6578
            // §3.2: the token changes with every change of a member).
            return Ok(Listing::Changes {
                changed: Vec::new(),
                flags: Vec::new(),
                gone: Vec::new(),
                token: Some(format!("{TOKEN_VERSION}{token}")),
            });
        }
        if let Some(token) = since
            && let Some((changed, gone, token)) = self.sync(&collection, token).await?
        {
            return Ok(Listing::Changes {
                changed,
                flags: Vec::new(),
                gone,
                token: token.map(|t| format!("{TOKEN_VERSION}{t}")),
            });
        }
        match self.sync(&collection, "").await {
            Ok(Some((items, _, token))) => Ok(Listing::Full {
                items,
                token: token.map(|t| format!("{TOKEN_VERSION}{t}")),
            }),
            // No sync-collection here: every member by its ETag.
            Ok(None) | Err(StoreError::Permanent(_)) => Ok(Listing::Full {
                items: self.etag_listing(&collection).await?,
                token: None,
            }),
            Err(error) => Err(error),
        }
    }

    async fn fetch(&self, _folder: &str, id: &NativeId) -> StoreResult<Body> {
        if let Some(body) = lock(&self.read_cache).take(&decoded(&id.0)) {
            return Ok(body);
        }
        let answer = self
            .client
            .send_ok("GET", &id.0, &[], None, Condition::None)
            .await?;
        let body = Body::from(answer.body.clone());
        Ok(match canonical(&answer.text()) {
            Some(form) => body.with_identity(form.into_bytes()),
            None => body,
        })
    }

    async fn fetch_many(
        &self,
        folder: &str,
        ids: &[NativeId],
    ) -> StoreResult<Vec<StoreResult<Body>>> {
        let collection = self.collection(folder).await?;
        let hrefs: Vec<&str> = ids.iter().map(|id| id.0.as_str()).collect();
        let body = multistatus::multiget(collection.spec.kind != FolderKind::AddressBook, &hrefs);
        let answer = self
            .client
            .send_ok(
                "REPORT",
                &collection.href,
                &[("depth", "1")],
                Some(("application/xml; charset=utf-8", body.into_bytes())),
                Condition::None,
            )
            .await?;
        let parsed = multistatus::parse(&answer.text())
            .map_err(|e| StoreError::Transient(format!("REPORT {}: {e}", collection.href)))?;
        // Answered in any order (Radicale's is not the request's).
        let mut data: HashMap<String, String> = HashMap::new();
        for member in parsed.members {
            if let Some(text) = member.props.data {
                data.insert(decoded(&path_of(&member.href)), text);
            }
        }
        Ok(ids
            .iter()
            .map(|id| match data.remove(&decoded(&id.0)) {
                Some(text) => {
                    let form = canonical(&text);
                    let body = Body::from(text.into_bytes());
                    let body = match form {
                        Some(form) => body.with_identity(form.into_bytes()),
                        None => body,
                    };
                    // Only a source's: a target item is looked at anew each time.
                    if self.read_only {
                        lock(&self.read_cache).keep(decoded(&id.0), body.clone());
                    }
                    Ok(body)
                }
                None => Err(StoreError::NotFound(format!(
                    "{}: not in the multiget answer",
                    id.0
                ))),
            })
            .collect())
    }

    async fn create_folder(&self, folder: &str, spec: &FolderSpec) -> StoreResult<()> {
        self.writable()?;
        self.make_collection(folder, spec).await
    }

    async fn rename_folder(&self, from: &str, to: &str) -> StoreResult<()> {
        Err(StoreError::Permanent(format!(
            "{from} -> {to}: collections are not renamed here"
        )))
    }

    async fn prepare_appends(&self, folder: &str, _count: usize) -> StoreResult<Vec<AppendProbe>> {
        Err(no_mail(folder))
    }

    async fn append(
        &self,
        folder: &str,
        _message: &Body,
        _flags: &Flags,
        _date: Option<Millis>,
        _probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>> {
        Err(no_mail(folder))
    }

    async fn set_flags(&self, folder: &str, _id: &NativeId, _flags: &Flags) -> StoreResult<()> {
        Err(no_mail(folder))
    }

    async fn delete(&self, folder: &str, id: &NativeId) -> StoreResult<()> {
        self.delete_if(folder, id, None).await
    }

    async fn find_appended(
        &self,
        _folder: &str,
        _probe: &AppendProbe,
        _content: &ContentHash,
        _key: &ContentKey,
    ) -> StoreResult<Vec<NativeId>> {
        Ok(Vec::new())
    }

    async fn create_item(&self, folder: &str, item: NewItem<'_>) -> StoreResult<Stored> {
        self.writable()?;
        let collection = self.collection(folder).await?;
        let href = Self::href_of(&collection, item.key);
        self.put(&href, item.kind, item.bytes, Condition::Absent)
            .await
    }

    async fn update(
        &self,
        folder: &str,
        id: &NativeId,
        item: NewItem<'_>,
        expect: Option<&str>,
    ) -> StoreResult<Stored> {
        self.writable()?;
        let _ = folder;
        let condition = match expect {
            Some(etag) => Condition::Matches(etag),
            None => Condition::None,
        };
        self.put(&id.0, item.kind, item.bytes, condition).await
    }

    async fn delete_if(
        &self,
        _folder: &str,
        id: &NativeId,
        expect: Option<&str>,
    ) -> StoreResult<()> {
        self.writable()?;
        let condition = match expect {
            Some(etag) => Condition::Matches(etag),
            None => Condition::None,
        };
        self.wrote(&id.0);
        match self
            .client
            .send_ok("DELETE", &id.0, &[], None, condition)
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn set_collection(
        &self,
        folder: &str,
        from: &CollectionProps,
        to: &CollectionProps,
    ) -> StoreResult<()> {
        self.writable()?;
        self.set_properties(folder, from, to).await
    }

    async fn find_key(&self, folder: &str, key: &str) -> StoreResult<Option<ItemInfo>> {
        let collection = self.collection(folder).await?;
        let href = Self::href_of(&collection, key);
        match self.propfind(&href, "0", multistatus::PROPFIND_ETAGS).await {
            Ok(members) => Ok(members.iter().find_map(|m| self.item_of(&collection, m))),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn notices(&self) -> Vec<String> {
        lock(&self.notices).iter().cloned().collect()
    }

    async fn flush(&self) -> StoreResult<()> {
        Ok(())
    }
}
