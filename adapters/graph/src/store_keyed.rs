//! The store's folders that are not mail, between tenants (`classes.rs` says how): their
//! listing, their creation, and the keyed writes of their items through the import/export API.

use ferry_engine::event::NativeId;
use ferry_engine::item::{CollectionProps, FolderSpec};
use ferry_engine::store::{ItemInfo, Listing, NewItem, StoreError, StoreResult, Stored};
use reqwest::Method;

use crate::classes::Other;
use crate::client::Payload;
use crate::store::{GraphStore, lock};

/// What a keyed folder's change token starts with.
const TOKEN_VERSION: &str = "k1 ";

impl GraphStore {
    /// The folders that are not mail, listed again.
    pub(crate) async fn refresh_others(&self) -> StoreResult<Vec<Other>> {
        let listed = self.exchange.other_folders(&self.client).await?;
        let mut map = lock(&self.others);
        map.clear();
        for other in &listed {
            map.insert(other.path.clone(), other.clone());
        }
        Ok(listed)
    }

    /// The folder at `path` when it is not mail (never outside `full_fidelity`).
    pub(crate) async fn other(&self, path: &str) -> StoreResult<Option<Other>> {
        if !self.full_fidelity {
            return Ok(None);
        }
        if lock(&self.others).is_empty() {
            self.refresh_others().await?;
        }
        Ok(lock(&self.others).get(path).cloned())
    }

    /// The folder at `path`, which must be one that is not mail.
    pub(crate) async fn other_needed(&self, path: &str) -> StoreResult<Other> {
        if !self.full_fidelity {
            return Err(StoreError::Permanent(format!(
                "{path}: calendars, contacts and tasks are carried between tenants only"
            )));
        }
        if let Some(other) = self.other(path).await? {
            return Ok(other);
        }
        self.refresh_others().await?;
        lock(&self.others)
            .get(path)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(format!("folder {path}")))
    }

    /// A keyed folder's listing: a delta round from the token, or in full.
    pub(crate) async fn list_keyed(
        &self,
        other: &Other,
        since: Option<&str>,
    ) -> StoreResult<Listing> {
        let link = since.and_then(|token| token.strip_prefix(TOKEN_VERSION));
        if let Some(link) = link
            && let Some((changed, gone, token)) = self.delta_round(link, Some(&other.spec)).await?
        {
            return Ok(Listing::Changes {
                changed,
                flags: Vec::new(),
                gone,
                token: Some(format!("{TOKEN_VERSION}{token}")),
            });
        }
        let start = self.exchange.items_delta(&self.client, &other.id).await?;
        match self.delta_round(&start, Some(&other.spec)).await? {
            Some((items, _, token)) => Ok(Listing::Full {
                items,
                token: Some(format!("{TOKEN_VERSION}{token}")),
            }),
            None => Err(StoreError::Transient(format!(
                "{}: a fresh delta round was refused as expired",
                other.path
            ))),
        }
    }

    /// Makes a folder that is not mail (and the folders above it that are missing).
    pub(crate) async fn create_other_folder(
        &self,
        path: &str,
        spec: &FolderSpec,
    ) -> StoreResult<()> {
        if !self.full_fidelity {
            return Err(StoreError::Permanent(format!(
                "{path}: this store holds mail only here: calendars, contacts and tasks are \
                 carried between tenants"
            )));
        }
        if self.other(path).await?.is_some() {
            return Ok(());
        }
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (Some(parent), name),
            None => (None, path),
        };
        let parent_id = match parent {
            None => None,
            Some(parent) => {
                Box::pin(self.create_other_folder(parent, spec)).await?;
                Some(self.other_needed(parent).await?.id)
            }
        };
        let made = self
            .exchange
            .create_other(&self.client, parent_id.as_deref(), name, spec)
            .await?;
        match made {
            Some(id) => {
                lock(&self.others).insert(
                    path.to_string(),
                    Other {
                        id,
                        path: path.to_string(),
                        spec: spec.clone(),
                    },
                );
            }
            // Made by an earlier try whose answer was lost.
            None => {
                self.other_needed(path).await?;
            }
        }
        Ok(())
    }

    /// Creates a keyed item, refused as a conflict when the folder holds its key already
    /// (Graph has no conditional create: the folder's keys are looked at first).
    pub(crate) async fn create_keyed(
        &self,
        folder: &str,
        item: NewItem<'_>,
    ) -> StoreResult<Stored> {
        if !self.full_fidelity {
            if !self.calendars {
                return Err(StoreError::Permanent(format!(
                    "{folder}: this store carries mail only here (calendars, contacts and tasks \
                     go between tenants, or with a CalDAV/CardDAV peer)"
                )));
            }
            let pim = self.pim_needed(folder).await?;
            return self.create_pim(&pim, item).await;
        }
        let other = self.other_needed(folder).await?;
        if let Some(there) = self
            .exchange
            .holds_key(&self.client, &other.id, &other.spec, item.key)
            .await?
        {
            return Err(StoreError::Conflict(format!(
                "{folder} holds {} under key {} already",
                there.0, item.key
            )));
        }
        let made = self
            .exchange
            .import_as(&self.client, &other.id, item.bytes, None)
            .await;
        self.exchange
            .imported(&other.id, item.key, made.as_ref().ok().map(|(id, _)| id));
        let (id, version) = made?;
        Ok(Stored { id, version })
    }

    /// Imports a keyed item over target item `id`, only while it is at `expect` (its change
    /// key now when `None`).
    pub(crate) async fn update_keyed(
        &self,
        folder: &str,
        id: &NativeId,
        item: NewItem<'_>,
        expect: Option<&str>,
    ) -> StoreResult<Stored> {
        if !self.full_fidelity {
            let pim = self.pim_needed(folder).await?;
            return self.update_pim(&pim, id, item, expect).await;
        }
        let other = self.other_needed(folder).await?;
        let expect = match expect {
            Some(expect) => expect.to_string(),
            None => {
                let mailbox = self.exchange.mailbox_id(&self.client).await?.to_string();
                let url = format!(
                    "/admin/exchange/mailboxes/{mailbox}/folders/{}/items/{}?$select=changeKey",
                    other.id, id.0
                );
                let now = self
                    .client
                    .send(Method::GET, &url, Payload::None, &[])
                    .await?
                    .json()?;
                now["changeKey"].as_str().unwrap_or_default().to_string()
            }
        };
        let made = self
            .exchange
            .import_as(&self.client, &other.id, item.bytes, Some((id, &expect)))
            .await;
        if made.is_err() {
            self.exchange.imported(&other.id, item.key, None);
        }
        let (id, version) = made?;
        Ok(Stored { id, version })
    }

    /// Deletes keyed item `id` of `folder`, only while it is at `expect`.
    pub(crate) async fn delete_keyed(
        &self,
        folder: &str,
        id: &NativeId,
        expect: Option<&str>,
    ) -> StoreResult<()> {
        if !self.full_fidelity {
            let pim = self.pim_needed(folder).await?;
            return self.delete_pim(&pim, id, expect).await;
        }
        let other = self.other_needed(folder).await?;
        self.exchange
            .delete_keyed(&self.client, &other.id, id, expect)
            .await
    }

    /// The keyed item of `folder` with key `key`, asked of the service now.
    pub(crate) async fn find_keyed(
        &self,
        folder: &str,
        key: &str,
    ) -> StoreResult<Option<ItemInfo>> {
        if !self.full_fidelity {
            let pim = self.pim_needed(folder).await?;
            return Ok(self.find_pim(&pim, key).await?.map(|(_, info)| info));
        }
        let other = self.other_needed(folder).await?;
        self.exchange
            .find_key(&self.client, &other.id, &other.spec, key)
            .await
    }

    /// Makes a folder that is not mail.
    pub(crate) async fn create_keyed_folder(
        &self,
        path: &str,
        spec: &FolderSpec,
    ) -> StoreResult<()> {
        if self.full_fidelity || !self.calendars {
            self.create_other_folder(path, spec).await
        } else {
            self.create_pim_folder(path, spec).await
        }
    }

    /// Changes a collection's properties: a calendar's, contact folder's or To Do list's;
    /// between tenants a folder's name is its path, and its other properties travel with it.
    pub(crate) async fn set_keyed_folder(
        &self,
        path: &str,
        from: &CollectionProps,
        to: &CollectionProps,
    ) -> StoreResult<()> {
        if self.full_fidelity || !self.calendars {
            self.notice(format!(
                "{path}: changed properties ({}) are not carried between tenants",
                from.differences(to).join(", ")
            ));
            Ok(())
        } else {
            self.set_pim_folder(path, from, to).await
        }
    }
}
