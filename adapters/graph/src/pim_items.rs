//! Contacts and To Do tasks through their APIs (`pim.rs` says how items are known): a
//! contact's photo is one more request (`photo/$value`,
//! https://learn.microsoft.com/en-us/graph/api/profilephoto-update); a task's key and mark are
//! in a linked resource made with it
//! (https://learn.microsoft.com/en-us/graph/api/todotasklist-post-tasks) and updated on its own
//! (https://learn.microsoft.com/en-us/graph/api/linkedresource-update).

use ferry_engine::event::ContentHash;
use ferry_engine::store::{StoreError, StoreResult, Stored};
use reqwest::Method;
use serde_json::json;

use crate::client::Payload;
use crate::pim::{self, APP, KEY, MARK, PENDING, Pim, PimFolder, UID, UID_APP};
use crate::store::GraphStore;
use crate::{pim_contact, pim_task};

/// A picture's type, by its first bytes (Graph's photo answer is the bytes alone here).
fn picture_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
        "image/png"
    } else if bytes.starts_with(b"GIF8") {
        "image/gif"
    } else {
        "image/jpeg"
    }
}

impl GraphStore {
    /// A contact read: its vCard and ferry's mark on it.
    pub(crate) async fn read_contact(&self, id: &str) -> StoreResult<(String, Option<String>)> {
        let url = format!(
            "{}/contacts/{id}?$expand=singleValueExtendedProperties($filter=id eq '{KEY}' or id eq '{MARK}' or id eq '{UID}')",
            self.user()
        );
        let contact = self
            .client
            .send(Method::GET, &url, Payload::None, &[])
            .await?
            .json()?;
        let (_, _, mark) = pim::keyed_of(&contact, Pim::Contact)
            .ok_or_else(|| StoreError::Transient(format!("{id}: a contact without id")))?;
        let key = pim::uid_of(&contact, Pim::Contact);
        let photo_url = format!("{}/contacts/{id}/photo/$value", self.user());
        let photo = match self
            .client
            .send(Method::GET, &photo_url, Payload::None, &[])
            .await
        {
            Ok(answer) if !answer.body.is_empty() => {
                let bytes = answer.body.to_vec();
                let kind = picture_type(&bytes).to_string();
                Some((bytes, kind))
            }
            Ok(_) | Err(StoreError::NotFound(_)) => None,
            Err(error) => return Err(error),
        };
        Ok((
            pim_contact::from_graph(&contact, &key, photo.as_ref()),
            mark,
        ))
    }

    /// Creates (`existing` none) or replaces a contact from its vCard.
    pub(crate) async fn write_contact(
        &self,
        folder: &PimFolder,
        existing: Option<&str>,
        key: &str,
        text: &str,
        content: &ContentHash,
    ) -> StoreResult<Stored> {
        let write = pim_contact::to_graph(text)
            .map_err(|why| StoreError::Permanent(format!("{key}: {why}")))?;
        self.report_dropped(folder, key, &write.dropped);
        // Read back, a photo's type is told by its bytes.
        let photo = write
            .photo
            .as_ref()
            .map(|(bytes, _)| (bytes.clone(), picture_type(bytes).to_string()));
        let final_mark = pim::mark(
            content,
            &pim_contact::from_graph(&write.body, &write.key, photo.as_ref()),
        );
        let several = photo.is_some() || existing.is_some();
        let mut body = write.body.clone();
        body["singleValueExtendedProperties"] = json!([
            {"id": KEY, "value": key},
            {"id": MARK, "value": if several { PENDING } else { final_mark.as_str() }},
            {"id": UID, "value": write.key},
        ]);
        let id = self.put_pim(folder, existing, body, key).await?;
        if several {
            let url = format!("{}/contacts/{id}/photo/$value", self.user());
            if let Some((bytes, kind)) = &photo {
                self.client
                    .send(
                        Method::PUT,
                        &url,
                        Payload::Raw(bytes.clone(), kind.clone()),
                        &[],
                    )
                    .await?;
            } else if existing.is_some() {
                // The card has no photo now: the contact's goes (none there is as good).
                self.client.send_unless_gone(Method::DELETE, &url).await?;
            }
            self.set_mark(folder, &id, &final_mark).await?;
        }
        self.stored(folder, &id).await
    }

    /// A task read: its iCalendar text and ferry's mark on it.
    pub(crate) async fn read_task(
        &self,
        folder: &PimFolder,
        id: &str,
    ) -> StoreResult<(String, Option<String>)> {
        let url = format!("{}?$expand=linkedResources", self.item_url(folder, id));
        let task = self
            .client
            .send(Method::GET, &url, Payload::None, &[])
            .await?
            .json()?;
        let (_, _, mark) = pim::keyed_of(&task, Pim::Task)
            .ok_or_else(|| StoreError::Transient(format!("{id}: a task without id")))?;
        let key = pim::uid_of(&task, Pim::Task);
        Ok((pim_task::from_graph(&task, &key), mark))
    }

    /// Sets the mark in a task's linked resource.
    async fn mark_task(&self, folder: &PimFolder, id: &str, mark: &str) -> StoreResult<()> {
        let url = format!("{}?$expand=linkedResources", self.item_url(folder, id));
        let task = self
            .client
            .send(Method::GET, &url, Payload::None, &[])
            .await?
            .json()?;
        let resource = task["linkedResources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["applicationName"].as_str() == Some(APP))
            .and_then(|r| r["id"].as_str().map(str::to_string))
            .ok_or_else(|| {
                StoreError::Conflict(format!("{id}: ferry's linked resource is gone"))
            })?;
        let url = format!("{}/linkedResources/{resource}", self.item_url(folder, id));
        self.client
            .send(
                Method::PATCH,
                &url,
                Payload::Json(json!({"displayName": mark})),
                &[],
            )
            .await?;
        Ok(())
    }

    /// Creates (`existing` none) or replaces a task from its iCalendar text.
    pub(crate) async fn write_task(
        &self,
        folder: &PimFolder,
        existing: Option<&str>,
        key: &str,
        text: &str,
        content: &ContentHash,
    ) -> StoreResult<Stored> {
        let write = pim_task::to_graph(text)
            .map_err(|why| StoreError::Permanent(format!("{key}: {why}")))?;
        self.report_dropped(folder, key, &write.dropped);
        let final_mark = pim::mark(content, &pim_task::from_graph(&write.body, &write.key));
        let id = match existing {
            None => {
                let mut body = write.body.clone();
                body["linkedResources"] = json!([{
                    "applicationName": APP,
                    "externalId": key,
                    "displayName": final_mark,
                    "webUrl": "https://ferry.invalid/item",
                }, {
                    "applicationName": UID_APP,
                    "externalId": write.key,
                    "displayName": "UID",
                    "webUrl": "https://ferry.invalid/uid",
                }]);
                self.put_pim(folder, None, body, key).await?
            }
            Some(id) => {
                self.mark_task(folder, id, PENDING).await?;
                self.put_pim(folder, Some(id), write.body.clone(), key)
                    .await?;
                self.mark_task(folder, id, &final_mark).await?;
                id.to_string()
            }
        };
        self.stored(folder, &id).await
    }
}
