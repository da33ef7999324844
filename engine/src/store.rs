//! The `Store` trait: what the engine asks of every mail store, source or target.
//!
//! Its shape comes from the protocols it must fit:
//! - IMAP: folders with a UIDVALIDITY, items by UID, a change token (HIGHESTMODSEQ) that lets a
//!   listing return only changes (CONDSTORE/QRESYNC), APPEND with flags and INTERNALDATE that
//!   may return the new UID (UIDPLUS), and no way to ask whether an APPEND whose reply was lost
//!   landed other than looking at UIDs from the pre-write UIDNEXT on.
//! - Microsoft Graph: folders and messages by opaque id, delta links as change tokens, MIME
//!   upload that returns the new id, a marker property to find a lost write.
//! - Maildir: folders are directories, items are files whose unique name is chosen by the
//!   writer before the write, flags live in the file name.
//!
//! Folder paths are `/`-separated Unicode strings (`INBOX`, `Archive/2025`, `Entwürfe`); each
//! adapter translates its own delimiter and encoding (modified UTF-7, Maildir++ dots).

use async_trait::async_trait;
use ferry_journal::ContentKey;

use crate::body::Body;
use crate::event::{ContentHash, Millis, NativeId, SpecialUse};
use crate::flags::Flags;
use crate::item::{CollectionProps, FolderSpec, Keyed, Kind};

/// What a store can do, so the planner and executor can choose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `list_items` can return changes since a token instead of a full listing.
    pub change_tokens: bool,
    /// Keywords (beyond system flags) are kept.
    pub keywords: bool,
    /// Folders can be renamed in place.
    pub rename: bool,
    /// The largest message the store accepts, when it says.
    pub max_message_bytes: Option<u64>,
    /// [`Store::append_many`] stores several messages in one operation (IMAP MULTIAPPEND),
    /// cheaper than one by one.
    pub append_many: bool,
    /// [`Store::fetch_many`] reads several messages in one request (one IMAP UID FETCH).
    pub fetch_many: bool,
    /// [`Store::list_items_many`] lists several folders in one exchange (IMAP pipelines every
    /// EXAMINE and FETCH of a group on one connection). Without it, folders are listed one
    /// by one, each retried on its own: a store that throttles each request by itself (Graph)
    /// would otherwise see a whole group listed again for one folder's 429.
    pub list_many: bool,
    /// [`Store::set_flags_many`] and [`Store::delete_many`] change several items of a folder
    /// in one round trip (IMAP UID sets).
    pub update_many: bool,
    /// [`Store::move_item`] moves an item between folders on the store itself (IMAP MOVE
    /// with UIDPLUS), so a message moved on the source is not copied again.
    pub moves: bool,
    /// The store is across a network (IMAP): each batch of writes costs round trips, so
    /// larger chunks pay; a local store (Maildir) keeps chunks, and memory, smaller.
    pub remote: bool,
    /// The limits the server states for one mailbox (calls in flight, requests and bytes per
    /// window), which the run's pacer keeps every call within; none for IMAP and Maildir.
    pub limits: crate::pacer::Limits,
    /// The kinds of item it holds; empty: messages only (every mail store). A kind a
    /// target cannot hold is reported per item as skipped, never dropped silently.
    pub kinds: Vec<Kind>,
    /// Ids are the store's own across folders: an item moved to another folder keeps its id
    /// (Graph immutable ids), so an id met in a new folder whose content ferry knew in
    /// another is that content, not read again.
    pub global_ids: bool,
}

impl Capabilities {
    /// Whether it holds items of `kind`.
    pub fn holds(&self, kind: Kind) -> bool {
        if self.kinds.is_empty() {
            kind == Kind::Message
        } else {
            self.kinds.contains(&kind)
        }
    }
}

/// One keyed item for [`Store::create_item`] and [`Store::update`].
#[derive(Debug, Clone, Copy)]
pub struct NewItem<'a> {
    /// Its stable key (UID).
    pub key: &'a str,
    /// What it is.
    pub kind: Kind,
    /// Its exact bytes.
    pub bytes: &'a Body,
    /// ferry's keyed identity of it (what a store that converts the item keeps beside it, so
    /// that the item reads back as that identity while it is as ferry left it).
    pub content: &'a ContentHash,
}

/// Where a write of a keyed item left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its id on the store.
    pub id: NativeId,
    /// Its version after the write, when the store tells.
    pub version: Option<String>,
}

/// One message for [`Store::append_many`].
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    /// Its exact bytes.
    pub bytes: &'a Body,
    /// Its flags.
    pub flags: &'a Flags,
    /// Its internal date.
    pub date: Option<Millis>,
}

/// A folder as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderInfo {
    /// `/`-separated path, decoded.
    pub path: String,
    /// Its role, when the store says.
    pub special_use: Option<SpecialUse>,
    /// IMAP UIDVALIDITY or the equivalent; `None` when native ids never lose their meaning,
    /// or when the folder cannot be read (`unreadable`): then it is unknown, not changed.
    pub validity: Option<u64>,
    /// The store lists the folder but cannot read it now, in the store's own words (Dovecot
    /// answers `NO [SERVERBUG] Internal error occurred` to the STATUS of a folder it cannot
    /// open, then lists it as `\Noselect`). The folder exists: it is not taken as deleted,
    /// and what ferry copied from it stays; the next run asks again.
    pub unreadable: Option<String>,
    /// What it holds (mail, a calendar, an address book) and its properties.
    pub spec: FolderSpec,
    /// A collection's description, when it has one.
    pub description: Option<String>,
}

/// An item as listed: everything but its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemInfo {
    /// Where it lives.
    pub id: NativeId,
    /// Size in bytes.
    pub size: u64,
    /// Its flags.
    pub flags: Flags,
    /// Internal date (received time).
    pub date: Option<Millis>,
    /// Its stable key, version and kind, for an item that changes in place (an event, a
    /// contact); `None` for a message, which is known by its content. Boxed: a listing of
    /// 100,000 messages pays one pointer each for it.
    pub keyed: Option<Box<Keyed>>,
    /// ferry's keyed identity of the content, as the store keeps it beside the item when
    /// ferry wrote it (a Graph marker property, [`Store::prepare_appends_for`]): the engine
    /// takes it instead of reading and hashing the item, for a store that renders an item
    /// anew whenever it is read (Exchange converts to MIME on request), whose bytes would
    /// never hash as what ferry wrote. `None` for every other item and store.
    pub content: Option<Box<ContentHash>>,
}

/// What `list_items` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Every item in the folder.
    Full {
        /// The items.
        items: Vec<ItemInfo>,
        /// A token for the next `list_items`, when the store has them.
        token: Option<String>,
    },
    /// Only what changed since the token given.
    Changes {
        /// New items, and items whose flags or content changed.
        changed: Vec<ItemInfo>,
        /// Items seen before whose flags may have changed and whose content did not (IMAP:
        /// a UID's message never changes), told without their size and date. An id here
        /// that the caller does not know means the listing cannot be used: list in full.
        flags: Vec<(NativeId, Flags)>,
        /// Items that are gone.
        gone: Vec<NativeId>,
        /// The token for the next call.
        token: Option<String>,
    },
}

/// Where to look on the target for a write whose outcome was lost, decided before the write:
/// a Maildir unique name, an IMAP `UIDVALIDITY:UIDNEXT`, a Graph marker. Recorded in the
/// write intent, so it survives a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendProbe(pub String);

/// How a store operation failed. The class decides what the executor does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Worth retrying after a pause: a dropped connection, a timeout, a 5xx.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The store asked to slow down.
    #[error("throttled by the server{}: {reason}", retry_after_ms.map(|ms| format!(" (retry after {ms} ms)")).unwrap_or_default())]
    Throttled {
        /// How long the server asked to wait, when it said.
        retry_after_ms: Option<u64>,
        /// What it said.
        reason: String,
    },
    /// This item cannot be handled as it is (too large, refused, malformed); retrying the
    /// same thing will fail the same way.
    #[error("{0}")]
    Permanent(String),
    /// The folder or item is not there.
    #[error("not found: {0}")]
    NotFound(String),
    /// The store has no room (a full disk, a quota reached): nothing was stored, and nothing
    /// more will be until space is freed. Ends the run at once instead of failing item after
    /// item.
    #[error("no room: {0}")]
    Full(String),
    /// The store cannot be used at all (unreachable, authentication refused, not a mailbox).
    #[error("unusable: {0}")]
    Unusable(String),
    /// A conditional write found the item not as expected: it is at another version than the
    /// one named (HTTP 412), or an item with the key to create is there already. Nothing was
    /// written.
    #[error("conflict: {0}")]
    Conflict(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// One mail store, as a source or as a target.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The store as a URI without credentials, for the journal and reports.
    fn describe(&self) -> String;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// The bytes appending `body` with `flags` sends, as the store's upload budget
    /// ([`Capabilities::limits`]) counts them: the pacer admits the append by this. The
    /// default is the message's size (a protocol that sends the bytes as they are).
    fn upload_size(&self, body: &Body, _flags: &Flags) -> u64 {
        body.len()
    }

    /// Every folder.
    async fn list_folders(&self) -> StoreResult<Vec<FolderInfo>>;

    /// The items of a folder: all of them, or the changes since `since` when the store can.
    async fn list_items(&self, folder: &str, since: Option<&str>) -> StoreResult<Listing>;

    /// Several folders' [`Store::list_items`], in one exchange where the store can: one result
    /// per `(folder, since)`, in order. A folder that cannot be listed as it is
    /// ([`StoreError::Permanent`], [`StoreError::NotFound`]: a server's refusal of that one
    /// folder, whatever it said, unless it asked to slow down) has its own error; any other
    /// error (a lost connection, throttling) is the whole call's, and nothing of it counts.
    /// The default lists one by one.
    async fn list_items_many(
        &self,
        asks: &[(&str, Option<&str>)],
    ) -> StoreResult<Vec<StoreResult<Listing>>> {
        let mut out = Vec::with_capacity(asks.len());
        for &(folder, since) in asks {
            match self.list_items(folder, since).await {
                Err(error @ (StoreError::Permanent(_) | StoreError::NotFound(_))) => {
                    out.push(Err(error));
                }
                Err(error) => return Err(error),
                Ok(listing) => out.push(Ok(listing)),
            }
        }
        Ok(out)
    }

    /// The exact bytes of one message. A large one may come spooled ([`Body`]), read in
    /// pieces of [`crate::body::PIECE_BYTES`]: what it holds in memory is then a few pieces.
    async fn fetch(&self, folder: &str, id: &NativeId) -> StoreResult<Body>;

    /// The exact bytes of several messages of one folder, in one request where the store can;
    /// one result per id, in order. An error of the whole request means none was read. Called
    /// only when [`Capabilities::fetch_many`]; the default reads one by one.
    async fn fetch_many(
        &self,
        folder: &str,
        ids: &[NativeId],
    ) -> StoreResult<Vec<StoreResult<Body>>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.fetch(folder, id).await);
        }
        Ok(out)
    }

    /// Creates a folder (and its parents) of the kind and with the properties `spec` gives.
    /// Succeeds if it exists. A store that cannot hold that kind refuses with
    /// [`StoreError::Permanent`].
    async fn create_folder(&self, folder: &str, spec: &FolderSpec) -> StoreResult<()>;

    /// Renames a folder. Succeeds if `from` is gone and `to` exists (a repeated rename).
    async fn rename_folder(&self, from: &str, to: &str) -> StoreResult<()>;

    /// Deletes a folder, only if it holds no message at all at that moment (looked at afresh,
    /// not as last listed): otherwise it refuses with [`StoreError::Permanent`], saying how many
    /// messages (or what else) are still in it, and the folder stays as it is. INBOX is never
    /// deleted. Succeeds if the folder does not exist (a repeated deletion). Its subfolders
    /// are folders of their own: a store where deleting a parent would take them along
    /// refuses while it has any. The default refuses: the store cannot delete folders.
    async fn delete_folder(&self, folder: &str) -> StoreResult<()> {
        Err(StoreError::Permanent(format!(
            "{folder}: this store cannot delete folders"
        )))
    }

    /// Says that items are about to be appended to these folders, so the store can learn at
    /// once, for all of them, what [`Store::prepare_appends`] needs (IMAP selects them all in
    /// one exchange instead of one folder after another). Only an optimisation: the default
    /// does nothing, and an error means nothing was learned.
    async fn prepare_folders(&self, _folders: &[&str]) -> StoreResult<()> {
        Ok(())
    }

    /// Decides, before `count` appends into `folder`, where each result could be found if its
    /// reply is lost: one call per folder and batch (for IMAP one `STATUS UIDNEXT`, shared by
    /// the batch; for Maildir one fresh unique name per message).
    async fn prepare_appends(&self, folder: &str, count: usize) -> StoreResult<Vec<AppendProbe>>;

    /// [`Store::prepare_appends`] for appends of these contents (ferry's keyed hashes of
    /// them), one probe each, in order: a store that keeps a marker with each item it is
    /// given (Graph) makes the probe of it, so a write in doubt is found by its content, and
    /// its listings can tell the content ([`ItemInfo::content`]). The default ignores them.
    async fn prepare_appends_for(
        &self,
        folder: &str,
        contents: &[ContentHash],
    ) -> StoreResult<Vec<AppendProbe>> {
        self.prepare_appends(folder, contents.len()).await
    }

    /// [`Store::prepare_appends`] for a single append.
    async fn prepare_append(&self, folder: &str) -> StoreResult<AppendProbe> {
        self.prepare_appends(folder, 1)
            .await?
            .pop()
            .ok_or_else(|| StoreError::Transient(format!("no append probe for {folder}")))
    }

    /// Stores a message with its flags and internal date; returns its id when the store tells.
    /// Atomic: after an error the message is either wholly there or not there at all. A
    /// spooled message is written as it is read, piece by piece.
    async fn append(
        &self,
        folder: &str,
        message: &Body,
        flags: &Flags,
        date: Option<Millis>,
        probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>>;

    /// Stores several messages in one folder in one operation where the store can (IMAP
    /// MULTIAPPEND: one command, one transaction on the server); returns their ids in order
    /// when the store tells. After an error any of them may be there: the caller looks with
    /// [`Store::find_appended`] before writing one again. The executor calls it only when
    /// [`Capabilities::append_many`] is set; the default appends one by one.
    async fn append_many(
        &self,
        folder: &str,
        messages: &[NewMessage<'_>],
        probe: &AppendProbe,
    ) -> StoreResult<Vec<Option<NativeId>>> {
        let mut ids = Vec::with_capacity(messages.len());
        for message in messages {
            ids.push(
                self.append(folder, message.bytes, message.flags, message.date, probe)
                    .await?,
            );
        }
        Ok(ids)
    }

    /// Replaces an item's flags.
    async fn set_flags(&self, folder: &str, id: &NativeId, flags: &Flags) -> StoreResult<()>;

    /// Deletes an item. Succeeds if it is already gone.
    async fn delete(&self, folder: &str, id: &NativeId) -> StoreResult<()>;

    /// Replaces the flags of several items of one folder; one result per item, in order. After
    /// an error of the whole call, any of them may have changed: setting flags is idempotent,
    /// so the caller sets them all again. The executor calls it only when
    /// [`Capabilities::update_many`] is set; the default sets them one by one.
    async fn set_flags_many(
        &self,
        folder: &str,
        items: &[(&NativeId, &Flags)],
    ) -> StoreResult<Vec<StoreResult<()>>> {
        let mut results = Vec::with_capacity(items.len());
        for (id, flags) in items {
            results.push(self.set_flags(folder, id, flags).await);
        }
        Ok(results)
    }

    /// Deletes several items of one folder; one result per item, in order (an item already
    /// gone is deleted). After an error of the whole call, any of them may be gone: deleting
    /// is idempotent, so the caller deletes them all again. Called only when
    /// [`Capabilities::update_many`] is set; the default deletes them one by one.
    async fn delete_many(
        &self,
        folder: &str,
        ids: &[&NativeId],
    ) -> StoreResult<Vec<StoreResult<()>>> {
        Ok(delete_each(self, folder, ids).await)
    }

    /// Moves the item `id` of `from` into `to` on the store itself; returns its id there when
    /// the store tells. Atomic: afterwards the item is in one folder or the other. `probe`
    /// (from [`Store::prepare_appends`] for `to`) is where [`Store::find_appended`] looks if
    /// the outcome is lost. Called only when [`Capabilities::moves`] is set.
    async fn move_item(
        &self,
        from: &str,
        id: &NativeId,
        to: &str,
        _probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>> {
        Err(StoreError::Permanent(format!(
            "{from} {id} -> {to}: this store cannot move items"
        )))
    }

    /// Moves several items of `from` into `to` ([`Store::move_item`] for each, in one request
    /// where the store can: one IMAP `UID MOVE` for a UID set); one result per item, in
    /// order. After an error of the whole call, any of them may have moved: the caller looks
    /// for each. The default moves them one by one.
    async fn move_many(
        &self,
        from: &str,
        ids: &[&NativeId],
        to: &str,
        probe: &AppendProbe,
    ) -> StoreResult<Vec<StoreResult<Option<NativeId>>>> {
        let mut results = Vec::with_capacity(ids.len());
        for id in ids {
            results.push(self.move_item(from, id, to, probe).await);
        }
        Ok(results)
    }

    /// The items that an append prepared with `probe` could have created and whose bytes hash
    /// to `content` under `key`, best candidate first. Used to settle writes in doubt.
    async fn find_appended(
        &self,
        folder: &str,
        probe: &AppendProbe,
        content: &ContentHash,
        key: &ContentKey,
    ) -> StoreResult<Vec<NativeId>>;

    /// Creates a keyed item (an event, a contact) in `folder`; where it is and its version.
    /// Refuses with [`StoreError::Conflict`] when the folder holds an item with that key
    /// already (CalDAV `If-None-Match: *`), so a create sent twice never makes two. Atomic.
    /// The default refuses: the store holds messages only.
    async fn create_item(&self, folder: &str, item: NewItem<'_>) -> StoreResult<Stored> {
        Err(StoreError::Permanent(format!(
            "{folder}: this store cannot hold {} ({})",
            item.kind.plural(),
            item.key
        )))
    }

    /// Replaces keyed item `id` of `folder` with `item`, only if it is at version `expect`
    /// (If-Match; any version when `None`): otherwise [`StoreError::Conflict`], and nothing
    /// changes. [`StoreError::NotFound`] when it is gone. Atomic. The default refuses.
    async fn update(
        &self,
        folder: &str,
        id: &NativeId,
        item: NewItem<'_>,
        _expect: Option<&str>,
    ) -> StoreResult<Stored> {
        Err(StoreError::Permanent(format!(
            "{folder}/{id}: this store cannot update {} in place",
            item.kind.plural()
        )))
    }

    /// Deletes keyed item `id` of `folder`, only if it is at version `expect` (any when
    /// `None`): otherwise [`StoreError::Conflict`], and it stays. Succeeds if it is gone.
    /// The default refuses.
    async fn delete_if(
        &self,
        folder: &str,
        id: &NativeId,
        _expect: Option<&str>,
    ) -> StoreResult<()> {
        Err(StoreError::Permanent(format!(
            "{folder}/{id}: this store cannot delete items conditionally"
        )))
    }

    /// Changes the properties of collection `folder` that differ between `from` and `to`,
    /// each only if the collection still holds its value in `from`: otherwise nothing is
    /// changed and the answer is [`StoreError::Conflict`] (someone changed it on the target).
    /// A property the store cannot hold is left out and said once in [`Store::notices`]. The
    /// default refuses (a store without collections).
    async fn set_collection(
        &self,
        folder: &str,
        _from: &CollectionProps,
        _to: &CollectionProps,
    ) -> StoreResult<()> {
        Err(StoreError::Permanent(format!(
            "{folder}: this store cannot change a collection's properties"
        )))
    }

    /// The keyed item of `folder` with stable key `key`, as a listing would show it, or `None`
    /// when the folder holds none: how a keyed write in doubt is settled. The default finds
    /// none (a store without keyed items).
    async fn find_key(&self, _folder: &str, _key: &str) -> StoreResult<Option<ItemInfo>> {
        Ok(None)
    }

    /// What the store could not do as asked in this process and the report should say (e.g.
    /// keywords the target cannot keep); each once.
    fn notices(&self) -> Vec<String> {
        Vec::new()
    }

    /// Makes every write that returned so far durable (fsync for local stores; a no-op for
    /// servers, which acknowledge only what they stored).
    async fn flush(&self) -> StoreResult<()>;
}

/// Deletes `ids` of `folder` one by one, one result each: [`Store::delete_many`] for a store
/// (or a server) that can do no better.
pub async fn delete_each<S: Store + ?Sized>(
    store: &S,
    folder: &str,
    ids: &[&NativeId],
) -> Vec<StoreResult<()>> {
    let mut results = Vec::with_capacity(ids.len());
    for id in ids {
        results.push(store.delete(folder, id).await);
    }
    results
}
