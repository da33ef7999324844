//! `impl Store for ImapStore`, what the engine calls: each method hands the work to the module
//! that does it (`folders`, `reads`, `writes`); a one-item call is its `*_many` call for one.

use async_trait::async_trait;
use ferry_engine::body::Body;
use ferry_engine::event::{Millis, NativeId};
use ferry_engine::flags::Flags;
use ferry_engine::item::{FolderKind, FolderSpec};
use ferry_engine::journal::{ContentHash, ContentKey};
use ferry_engine::store::{
    AppendProbe, Capabilities, FolderInfo, Listing, NewMessage, Store, StoreError, StoreResult,
};

use crate::writes::one;
use crate::{ImapStore, folders, reads, writes};

#[async_trait]
impl Store for ImapStore {
    fn describe(&self) -> String {
        self.inner.described.clone()
    }

    fn capabilities(&self) -> Capabilities {
        let caps = self.inner.caps();
        Capabilities {
            change_tokens: true,
            keywords: true,
            rename: true,
            max_message_bytes: caps.append_limit,
            append_many: caps.multiappend,
            fetch_many: true,
            list_many: true,
            update_many: true,
            moves: caps.moves && caps.uidplus,
            remote: true,
            limits: ferry_engine::pacer::Limits::default(),
            kinds: Vec::new(),
            global_ids: false,
        }
    }

    async fn list_folders(&self) -> StoreResult<Vec<FolderInfo>> {
        folders::list_folders(self).await
    }

    async fn list_items(&self, folder: &str, since: Option<&str>) -> StoreResult<Listing> {
        self.list_items_many(&[(folder, since)])
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Transient(format!("{folder}: no listing"))))
    }

    /// See `reads::list_items_many`: the changed folders listed together, in one round trip.
    async fn list_items_many(
        &self,
        asks: &[(&str, Option<&str>)],
    ) -> StoreResult<Vec<StoreResult<Listing>>> {
        reads::list_items_many(self, asks).await
    }

    async fn fetch(&self, folder: &str, id: &NativeId) -> StoreResult<Body> {
        reads::fetch(self, folder, id).await
    }

    async fn fetch_many(
        &self,
        folder: &str,
        ids: &[NativeId],
    ) -> StoreResult<Vec<StoreResult<Body>>> {
        reads::fetch_many(self, folder, ids).await
    }

    async fn create_folder(&self, folder: &str, spec: &FolderSpec) -> StoreResult<()> {
        if spec.kind != FolderKind::Mail {
            return Err(StoreError::Permanent(format!(
                "{folder}: an IMAP server holds mail folders, not a {}",
                spec.kind.name()
            )));
        }
        folders::create_folder(self, folder).await
    }

    async fn rename_folder(&self, from: &str, to: &str) -> StoreResult<()> {
        folders::rename_folder(self, from, to).await
    }

    async fn delete_folder(&self, folder: &str) -> StoreResult<()> {
        folders::delete_folder(self, folder).await
    }

    async fn prepare_folders(&self, names: &[&str]) -> StoreResult<()> {
        writes::prepare_folders(self, names).await
    }

    async fn prepare_appends(&self, folder: &str, count: usize) -> StoreResult<Vec<AppendProbe>> {
        writes::prepare_appends(self, folder, count).await
    }

    async fn append(
        &self,
        folder: &str,
        message: &Body,
        flags: &Flags,
        date: Option<Millis>,
        probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>> {
        // One message is an APPEND with one literal: the same command.
        let message = NewMessage {
            bytes: message,
            flags,
            date,
        };
        let ids = self.append_many(folder, &[message], probe).await?;
        Ok(ids.into_iter().next().flatten())
    }

    async fn append_many(
        &self,
        folder: &str,
        messages: &[NewMessage<'_>],
        _probe: &AppendProbe,
    ) -> StoreResult<Vec<Option<NativeId>>> {
        writes::append_many(self, folder, messages).await
    }

    async fn set_flags(&self, folder: &str, id: &NativeId, flags: &Flags) -> StoreResult<()> {
        // One item is a UID STORE of a one-UID set: the same command.
        one(self.set_flags_many(folder, &[(id, flags)]).await?)
    }

    async fn delete(&self, folder: &str, id: &NativeId) -> StoreResult<()> {
        writes::delete(self, folder, id).await
    }

    async fn set_flags_many(
        &self,
        folder: &str,
        items: &[(&NativeId, &Flags)],
    ) -> StoreResult<Vec<StoreResult<()>>> {
        writes::set_flags_many(self, folder, items).await
    }

    async fn delete_many(
        &self,
        folder: &str,
        ids: &[&NativeId],
    ) -> StoreResult<Vec<StoreResult<()>>> {
        writes::delete_many(self, folder, ids).await
    }

    async fn move_item(
        &self,
        from: &str,
        id: &NativeId,
        to: &str,
        probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>> {
        let mut moved = self.move_many(from, &[id], to, probe).await?;
        moved.pop().unwrap_or(Ok(None))
    }

    async fn move_many(
        &self,
        from: &str,
        ids: &[&NativeId],
        to: &str,
        _probe: &AppendProbe,
    ) -> StoreResult<Vec<StoreResult<Option<NativeId>>>> {
        writes::move_many(self, from, ids, to).await
    }

    async fn find_appended(
        &self,
        folder: &str,
        probe: &AppendProbe,
        content: &ContentHash,
        key: &ContentKey,
    ) -> StoreResult<Vec<NativeId>> {
        writes::find_appended(self, folder, probe, content, key).await
    }

    async fn flush(&self) -> StoreResult<()> {
        // A server acknowledges only what it stored.
        Ok(())
    }

    fn notices(&self) -> Vec<String> {
        self.dropped_keywords()
            .into_iter()
            .map(|(folder, keyword)| {
                format!(
                    "{}: keyword {keyword:?} cannot be kept in {folder} (not a valid IMAP \
                     keyword, or not in the folder's PERMANENTFLAGS); messages were copied \
                     without it",
                    self.inner.described
                )
            })
            .collect()
    }
}
