//! The mailbox's folder tree as ferry paths. Graph names folders by display name under a
//! parent (https://learn.microsoft.com/en-us/graph/api/resources/mailfolder); a path is the
//! display names from the top joined by `/`, and a `/` inside a display name is written `∕`
//! (U+2215, DIVISION SLASH) so that it stays one segment. The well-known folders
//! (https://learn.microsoft.com/en-us/graph/api/resources/mailfolder#well-known-folder-names)
//! are found by name, all in one `$batch`, and give the roles; the inbox is `INBOX`.

use std::collections::HashMap;

use ferry_engine::event::SpecialUse;
use ferry_engine::store::{StoreError, StoreResult};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, Payload, classify};

/// One folder as listed.
#[derive(Debug, Clone)]
pub struct Folder {
    pub id: String,
    pub path: String,
    pub role: Option<SpecialUse>,
}

const ROLES: &[(&str, Option<SpecialUse>)] = &[
    ("inbox", Some(SpecialUse::Inbox)),
    ("sentitems", Some(SpecialUse::Sent)),
    ("drafts", Some(SpecialUse::Drafts)),
    ("deleteditems", Some(SpecialUse::Trash)),
    ("junkemail", Some(SpecialUse::Junk)),
    ("archive", Some(SpecialUse::Archive)),
    ("msgfolderroot", None),
];

/// A display name as one path segment.
pub fn segment(display_name: &str) -> String {
    display_name.replace('/', "\u{2215}")
}

/// A path segment as a display name.
pub fn display_name(segment: &str) -> String {
    segment.replace('\u{2215}', "/")
}

/// Every page of a collection, following `@odata.nextLink`.
pub async fn all_pages(client: &Client, first: &str) -> StoreResult<Vec<Value>> {
    let mut items = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(url) = next.take() {
        let page = client
            .send(Method::GET, &url, Payload::None, &[])
            .await?
            .json()?;
        if let Some(value) = page["value"].as_array() {
            items.extend(value.iter().cloned());
        }
        next = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    Ok(items)
}

/// Rounds of a `$batch` whose requests were throttled on their own before the throttling is
/// the caller's.
const BATCH_ROUNDS: usize = 8;

/// The ids of the well-known folders, by role, and the root's id: one `$batch`, and again
/// for those of its requests that were throttled on their own (each request of a batch is
/// throttled by itself, https://learn.microsoft.com/en-us/graph/json-batching), after the
/// longest wait they asked.
async fn well_known(client: &Client) -> StoreResult<(HashMap<String, SpecialUse>, String)> {
    let user = client.uri().user_path();
    let mut roles = HashMap::new();
    let mut root = String::new();
    let mut pending: Vec<usize> = (0..ROLES.len()).collect();
    for round in 0.. {
        let requests: Vec<Value> = pending
            .iter()
            .map(|&index| {
                let name = ROLES[index].0;
                json!({"id": index.to_string(), "method": "GET", "url": format!("{user}/mailFolders/{name}?$select=id")})
            })
            .collect();
        let answer = client
            .send(
                Method::POST,
                "/$batch",
                Payload::Json(json!({"requests": requests})),
                &[],
            )
            .await?
            .json()?;
        let (throttled, wait) = well_known_answers(&answer, &mut roles, &mut root)?;
        if throttled.is_empty() {
            break;
        }
        if round + 1 >= BATCH_ROUNDS {
            return Err(StoreError::Throttled {
                retry_after_ms: Some(wait.max(1) * 1000),
                reason: "listing the well-known folders".into(),
            });
        }
        pending = throttled;
        tokio::time::sleep(std::time::Duration::from_secs(wait.max(1))).await;
    }
    Ok((roles, root))
}

/// Takes one `$batch` answer of [`well_known`]: the requests throttled, and the longest wait
/// they asked (seconds).
fn well_known_answers(
    answer: &Value,
    roles: &mut HashMap<String, SpecialUse>,
    root: &mut String,
) -> StoreResult<(Vec<usize>, u64)> {
    let (mut throttled, mut wait) = (Vec::new(), 0);
    for response in answer["responses"].as_array().into_iter().flatten() {
        let index: usize = response["id"]
            .as_str()
            .and_then(|i| i.parse().ok())
            .unwrap_or(usize::MAX);
        let Some((name, role)) = ROLES.get(index) else {
            continue;
        };
        let status = response["status"].as_u64().unwrap_or(0) as u16;
        if matches!(status, 429 | 503 | 504) {
            throttled.push(index);
            let asked = response["headers"]
                .as_object()
                .and_then(|h| {
                    h.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                })
                .and_then(|(_, v)| v.as_str()?.parse::<u64>().ok())
                .unwrap_or(1);
            wait = wait.max(asked);
            continue;
        }
        if status == 404 {
            continue; // An archive folder is not in every mailbox.
        }
        if !(200..300).contains(&status) {
            return Err(classify(status, response["body"].to_string().as_bytes()));
        }
        let Some(id) = response["body"]["id"].as_str() else {
            continue;
        };
        match role {
            Some(role) => {
                roles.insert(id.to_string(), *role);
            }
            None if *name == "msgfolderroot" => *root = id.to_string(),
            None => {}
        }
    }
    Ok((throttled, wait))
}

/// The roles of the well-known folders by id: they never change, so asked once per store.
pub async fn roles(client: &Client) -> StoreResult<HashMap<String, SpecialUse>> {
    Ok(well_known(client).await?.0)
}

/// Every folder of the mailbox, parents before children, with their roles.
pub async fn list(
    client: &Client,
    roles: &HashMap<String, SpecialUse>,
) -> StoreResult<Vec<Folder>> {
    let user = client.uri().user_path();
    let select = "$select=id,displayName,childFolderCount&$top=250";
    let mut out = Vec::new();
    let mut pending: Vec<(String, String)> =
        vec![(String::new(), format!("{user}/mailFolders?{select}"))];
    while let Some((parent_path, url)) = pending.pop() {
        for folder in all_pages(client, &url).await? {
            let (Some(id), Some(name)) = (folder["id"].as_str(), folder["displayName"].as_str())
            else {
                continue;
            };
            let role = roles.get(id).copied();
            let name = if role == Some(SpecialUse::Inbox) && parent_path.is_empty() {
                "INBOX".to_string()
            } else {
                segment(name)
            };
            let path = if parent_path.is_empty() {
                name
            } else {
                format!("{parent_path}/{name}")
            };
            let children = folder["childFolderCount"].as_u64().unwrap_or(0);
            if children > 0 {
                pending.push((
                    path.clone(),
                    format!("{user}/mailFolders/{id}/childFolders?{select}"),
                ));
            }
            out.push(Folder {
                id: id.to_string(),
                path,
                role,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
