//! Messages whose JSON create passes Graph's 4 MB request limit
//! (https://learn.microsoft.com/en-us/graph/use-the-api: write requests over 4 MB fail with
//! 413): created without their attachments, then each attachment added — by one POST under
//! 3 MB, through an upload session in pieces from 3 MB to 150 MB
//! (https://learn.microsoft.com/en-us/graph/outlook-large-attachments: `createUploadSession`,
//! then PUTs of byte ranges to the session's URL, without an `Authorization` header, 200 with
//! the next ranges expected until the last, 201) — and only then marked as ferry's.
//!
//! Until every attachment is there the message carries a pending marker instead of ferry's
//! marker, so a message cut short by a crash or a failure is never taken for one that
//! landed: the search for a write in doubt finds it by the pending marker and deletes it
//! (it is ferry's own, incomplete), and the message is written again whole.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ferry_engine::event::NativeId;
use ferry_engine::store::{StoreError, StoreResult};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, Payload};
use crate::mime::{self, MARKER};

/// The named property marking a message ferry is still adding attachments to (its value is
/// the marker it gets once whole).
pub const PENDING: &str = "String {6f5a1c3e-8d2b-4e7a-9c41-f3b07d2e5a19} Name ferryPending";
/// Attachments under this size go by one POST (the page above).
const SMALL_ATTACHMENT: usize = 3 * 1024 * 1024;
/// Bytes per PUT of an upload session: under 4 MB, a multiple of 320 KiB.
const PIECE: usize = 10 * 320 * 1024;
/// The largest attachment an upload session takes.
const MAX_ATTACHMENT: usize = 150 * 1024 * 1024;

/// Creates the message `create` describes (a JSON create with its attachments inline and
/// ferry's marker) in folder `folder_id` piece by piece; its id once whole.
pub async fn create(client: &Client, folder_id: &str, mut create: Value) -> StoreResult<NativeId> {
    let attachments = create
        .as_object_mut()
        .and_then(|body| body.remove("attachments"))
        .and_then(|list| match list {
            Value::Array(list) => Some(list),
            _ => None,
        })
        .unwrap_or_default();
    let mut marker = String::new();
    for property in create["singleValueExtendedProperties"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if property["id"] == MARKER {
            marker = property["value"].as_str().unwrap_or_default().to_string();
            property["id"] = json!(PENDING);
        }
    }
    let encoded = create.to_string();
    if encoded.len() > mime::MAX_CREATE_BYTES {
        return Err(StoreError::Permanent(format!(
            "{} bytes without its attachments, over Graph's 4 MB request limit: not carried",
            encoded.len()
        )));
    }
    for attachment in &attachments {
        let size = attachment["contentBytes"]
            .as_str()
            .map_or(0, |b| b.len() / 4 * 3);
        if size > MAX_ATTACHMENT {
            return Err(StoreError::Permanent(format!(
                "an attachment of {size} bytes, over Exchange's 150 MB: not carried"
            )));
        }
    }
    let user = client.uri().user_path();
    let url = format!("{user}/mailFolders/{folder_id}/messages");
    let made = client
        .send(Method::POST, &url, Payload::Encoded(encoded), &[])
        .await?
        .json()?;
    let id = made["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| StoreError::Transient("a create answered without an id".into()))?;
    let finished = async {
        for attachment in attachments {
            attach(client, &user, &id, attachment).await?;
        }
        let url = format!("{user}/messages/{id}");
        let whole = json!({"singleValueExtendedProperties": [
            {"id": MARKER, "value": marker},
            {"id": PENDING, "value": ""},
        ]});
        client
            .send(Method::PATCH, &url, Payload::Json(whole), &[])
            .await
            .map(|_| ())
    }
    .await;
    match finished {
        Ok(()) => Ok(NativeId(id)),
        Err(error) => {
            // Not left half made where it can be helped (a crash leaves it to the search
            // for writes in doubt).
            let url = format!("{user}/messages/{id}/permanentDelete");
            let _ = client.send(Method::POST, &url, Payload::None, &[]).await;
            Err(error)
        }
    }
}

/// Adds one attachment (a fileAttachment with `contentBytes`) to message `id`.
async fn attach(client: &Client, user: &str, id: &str, mut attachment: Value) -> StoreResult<()> {
    let bytes = attachment["contentBytes"]
        .as_str()
        .and_then(|b| STANDARD.decode(b).ok())
        .unwrap_or_default();
    if bytes.len() < SMALL_ATTACHMENT {
        let url = format!("{user}/messages/{id}/attachments");
        return client
            .send(Method::POST, &url, Payload::Json(attachment), &[])
            .await
            .map(|_| ());
    }
    if let Some(body) = attachment.as_object_mut() {
        body.remove("contentBytes");
        body.remove("@odata.type");
    }
    let mut item = json!({
        "attachmentType": "file",
        "name": attachment["name"],
        "size": bytes.len(),
        "contentType": attachment["contentType"],
        "isInline": attachment["isInline"],
    });
    if let Some(content_id) = attachment["contentId"].as_str() {
        item["contentId"] = json!(content_id);
    }
    let url = format!("{user}/messages/{id}/attachments/createUploadSession");
    let session = client
        .send(
            Method::POST,
            &url,
            Payload::Json(json!({"AttachmentItem": item})),
            &[],
        )
        .await?
        .json()?;
    let upload = session["uploadUrl"]
        .as_str()
        .ok_or_else(|| StoreError::Transient("an upload session without its URL".into()))?;
    let total = bytes.len();
    for (index, piece) in bytes.chunks(PIECE).enumerate() {
        let start = index * PIECE;
        let end = start + piece.len() - 1;
        let answer = client
            .send_preauthenticated(
                Method::PUT,
                upload,
                piece.to_vec(),
                &[
                    ("content-type", "application/octet-stream".into()),
                    ("content-range", format!("bytes {start}-{end}/{total}")),
                ],
            )
            .await?;
        match answer.status {
            200..=202 => {}
            status => return Err(crate::client::classify(status, &answer.body)),
        }
    }
    Ok(())
}
