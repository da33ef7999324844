//! A source seen through folder rules ([`crate::folders`]): folders left out are not listed,
//! renamed folders are listed under their new path, and folders merged into one path are
//! listed as one folder whose items are those of all of them. The engine, its journal and its
//! projections see only the ruled folders: a rule changed between runs is, to them, a folder
//! renamed, gone or new on the source, and the target follows as it follows the source.
//!
//! A folder with one source folder behind it passes ids and change tokens through as they are.
//! A merged folder's ids name their source folder (`folder` U+001F `id`), its change token is
//! the list of its folders' tokens, and its validity changes when any of theirs does or when
//! a folder joins or leaves it. The source is only read: every write is refused.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use ferry_engine::event::{ContentHash, Millis, NativeId};
use ferry_engine::journal::ContentKey;
use ferry_engine::store::{AppendProbe, Capabilities, FolderInfo, ItemInfo, Listing};
use ferry_engine::{Body, Flags, FolderSpec, Store, StoreError, StoreResult};

use crate::folders::FolderRules;

/// Separates a merged folder's id into its source folder and that folder's id.
const SEPARATOR: char = '\u{1f}';

/// A source store seen through folder rules.
#[derive(Debug)]
pub struct Ruled {
    inner: Box<dyn Store>,
    rules: FolderRules,
    /// Each ruled path and the source folders behind it, as last listed.
    members: Mutex<BTreeMap<String, Vec<String>>>,
}

impl Ruled {
    /// `inner` through `rules`.
    pub fn new(inner: Box<dyn Store>, rules: FolderRules) -> Ruled {
        Ruled {
            inner,
            rules,
            members: Mutex::new(BTreeMap::new()),
        }
    }

    /// The source folders behind a ruled path.
    async fn members(&self, folder: &str) -> StoreResult<Vec<String>> {
        if let Some(members) = self.lookup(folder) {
            return Ok(members);
        }
        self.list_folders().await?;
        match self.lookup(folder) {
            Some(members) => Ok(members),
            None => Err(StoreError::NotFound(format!(
                "{folder}: no source folder goes there under the folder rules"
            ))),
        }
    }

    fn lookup(&self, folder: &str) -> Option<Vec<String>> {
        self.members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(folder)
            .cloned()
    }
}

fn refused(what: &str) -> StoreError {
    StoreError::Permanent(format!("{what}: the source is only read"))
}

fn merged_id(member: &str, id: &NativeId) -> NativeId {
    NativeId(format!("{member}{SEPARATOR}{}", id.0))
}

/// A merged folder's id split into its source folder and that folder's own id.
fn split_id(folder: &str, id: &NativeId) -> StoreResult<(String, NativeId)> {
    match id.0.split_once(SEPARATOR) {
        Some((member, own)) => Ok((member.to_owned(), NativeId(own.to_owned()))),
        None => Err(StoreError::NotFound(format!(
            "{folder}: {id} is not an item of a merged folder"
        ))),
    }
}

/// One folder made of several: its members' properties, checked to agree.
fn merge_infos(path: &str, infos: Vec<FolderInfo>) -> FolderInfo {
    let own = infos.iter().position(|info| info.path == path);
    let first = &infos[own.unwrap_or(0)];
    let special_use = match own {
        Some(own) => infos[own].special_use,
        None if infos.iter().all(|i| i.special_use == first.special_use) => first.special_use,
        None => None,
    };
    let mut unreadable = infos.iter().find_map(|i| {
        i.unreadable
            .as_ref()
            .map(|why| format!("{}: {why}", i.path))
    });
    if infos.iter().any(|i| i.spec.kind != first.spec.kind) {
        unreadable = Some(format!(
            "the folder rules merge folders that hold different things into {path} ({})",
            infos
                .iter()
                .map(|i| format!("{}: {}", i.path, i.spec.kind.name()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let validity = unreadable.is_none().then(|| {
        let mut hasher = blake3::Hasher::new();
        for info in &infos {
            hasher.update(info.path.as_bytes());
            hasher.update(&[0]);
            hasher.update(&info.validity.unwrap_or(u64::MAX).to_le_bytes());
        }
        let hash = hasher.finalize();
        let mut bytes = [0_u8; 8];
        bytes.copy_from_slice(&hash.as_bytes()[..8]);
        u64::from_le_bytes(bytes)
    });
    FolderInfo {
        path: path.to_owned(),
        special_use,
        validity,
        unreadable,
        spec: FolderSpec {
            display_name: None,
            ..first.spec.clone()
        },
        description: infos.iter().find_map(|i| i.description.clone()),
    }
}

/// A merged folder's change token: its members' tokens, in member order.
fn encode_token(tokens: &[Option<String>]) -> Option<String> {
    if tokens.iter().all(Option::is_none) {
        return None;
    }
    serde_json::to_string(tokens).ok()
}

fn decode_token(since: Option<&str>, members: usize) -> Option<Vec<Option<String>>> {
    let tokens: Vec<Option<String>> = serde_json::from_str(since?).ok()?;
    (tokens.len() == members).then_some(tokens)
}

fn item_in(member: &str, mut item: ItemInfo) -> ItemInfo {
    item.id = merged_id(member, &item.id);
    item
}

/// The members' listings as one: full when any is full (then all are), else the changes.
fn merge_listings(members: &[String], listings: Vec<Listing>) -> Listing {
    let mut tokens = Vec::with_capacity(members.len());
    let full = listings.iter().any(|l| matches!(l, Listing::Full { .. }));
    if full {
        let mut all = Vec::new();
        for (member, listing) in members.iter().zip(listings) {
            if let Listing::Full { items, token } = listing {
                all.extend(items.into_iter().map(|item| item_in(member, item)));
                tokens.push(token);
            }
        }
        return Listing::Full {
            items: all,
            token: encode_token(&tokens),
        };
    }
    let (mut changed, mut flags, mut gone) = (Vec::new(), Vec::new(), Vec::new());
    for (member, listing) in members.iter().zip(listings) {
        if let Listing::Changes {
            changed: c,
            flags: f,
            gone: g,
            token,
        } = listing
        {
            changed.extend(c.into_iter().map(|item| item_in(member, item)));
            flags.extend(f.into_iter().map(|(id, fl)| (merged_id(member, &id), fl)));
            gone.extend(g.iter().map(|id| merged_id(member, id)));
            tokens.push(token);
        }
    }
    Listing::Changes {
        changed,
        flags,
        gone,
        token: encode_token(&tokens),
    }
}

#[async_trait]
impl Store for Ruled {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn upload_size(&self, body: &Body, flags: &Flags) -> u64 {
        self.inner.upload_size(body, flags)
    }

    async fn list_folders(&self) -> StoreResult<Vec<FolderInfo>> {
        let (groups, _) = self
            .rules
            .group(self.inner.list_folders().await?, |info| info.path.as_str());
        let mut members = BTreeMap::new();
        let mut out = Vec::with_capacity(groups.len());
        for (path, mut infos) in groups {
            infos.sort_by(|a, b| a.path.cmp(&b.path));
            members.insert(path.clone(), infos.iter().map(|i| i.path.clone()).collect());
            if infos.len() == 1 {
                let mut info = infos.remove(0);
                info.path = path;
                out.push(info);
            } else {
                out.push(merge_infos(&path, infos));
            }
        }
        *self
            .members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = members;
        Ok(out)
    }

    async fn list_items(&self, folder: &str, since: Option<&str>) -> StoreResult<Listing> {
        let mut results = self.list_items_many(&[(folder, since)]).await?;
        results
            .pop()
            .unwrap_or_else(|| Err(StoreError::Transient(format!("{folder}: no listing"))))
    }

    async fn list_items_many(
        &self,
        asks: &[(&str, Option<&str>)],
    ) -> StoreResult<Vec<StoreResult<Listing>>> {
        // Each ruled folder's source folders, asked together in one exchange.
        let mut plans: Vec<StoreResult<Vec<String>>> = Vec::with_capacity(asks.len());
        let mut inner: Vec<(String, Option<String>)> = Vec::new();
        for &(folder, since) in asks {
            let members = self.members(folder).await;
            if let Ok(members) = &members {
                if members.len() == 1 {
                    inner.push((members[0].clone(), since.map(str::to_owned)));
                } else {
                    let tokens = decode_token(since, members.len())
                        .unwrap_or_else(|| vec![None; members.len()]);
                    inner.extend(members.iter().cloned().zip(tokens));
                }
            }
            plans.push(members);
        }
        let borrowed: Vec<(&str, Option<&str>)> = inner
            .iter()
            .map(|(f, s)| (f.as_str(), s.as_deref()))
            .collect();
        let mut answers = self.inner.list_items_many(&borrowed).await?.into_iter();
        let mut out = Vec::with_capacity(asks.len());
        for members in plans {
            let members = match members {
                Ok(members) => members,
                Err(error) => {
                    out.push(Err(error));
                    continue;
                }
            };
            let mut listings = Vec::with_capacity(members.len());
            let mut failed = None;
            for _ in &members {
                match answers.next() {
                    Some(Ok(listing)) => listings.push(listing),
                    Some(Err(error)) => failed = failed.or(Some(error)),
                    None => failed = Some(StoreError::Transient("a listing is missing".into())),
                }
            }
            if let Some(error) = failed {
                out.push(Err(error));
                continue;
            }
            if members.len() == 1 {
                out.push(Ok(listings.remove(0)));
                continue;
            }
            // One member listed in full makes the merged listing full: list the others so,
            // together.
            if listings.iter().any(|l| matches!(l, Listing::Full { .. })) {
                let again: Vec<(&str, Option<&str>)> = members
                    .iter()
                    .zip(&listings)
                    .filter(|(_, l)| matches!(l, Listing::Changes { .. }))
                    .map(|(member, _)| (member.as_str(), None))
                    .collect();
                let mut relisted = self.inner.list_items_many(&again).await?.into_iter();
                for listing in &mut listings {
                    if matches!(listing, Listing::Changes { .. }) {
                        match relisted.next() {
                            Some(full) => *listing = full?,
                            None => {
                                return Err(StoreError::Transient("a listing is missing".into()));
                            }
                        }
                    }
                }
            }
            out.push(Ok(merge_listings(&members, listings)));
        }
        Ok(out)
    }

    async fn fetch(&self, folder: &str, id: &NativeId) -> StoreResult<Body> {
        let members = self.members(folder).await?;
        if members.len() == 1 {
            return self.inner.fetch(&members[0], id).await;
        }
        let (member, own) = split_id(folder, id)?;
        self.inner.fetch(&member, &own).await
    }

    async fn fetch_many(
        &self,
        folder: &str,
        ids: &[NativeId],
    ) -> StoreResult<Vec<StoreResult<Body>>> {
        let members = self.members(folder).await?;
        if members.len() == 1 {
            return self.inner.fetch_many(&members[0], ids).await;
        }
        // Each source folder's ids in one request, the answers put back in the asked order.
        let mut out: Vec<Option<StoreResult<Body>>> = (0..ids.len()).map(|_| None).collect();
        let mut by_member: BTreeMap<String, Vec<(usize, NativeId)>> = BTreeMap::new();
        for (index, id) in ids.iter().enumerate() {
            match split_id(folder, id) {
                Ok((member, own)) => by_member.entry(member).or_default().push((index, own)),
                Err(error) => out[index] = Some(Err(error)),
            }
        }
        for (member, asked) in by_member {
            let own: Vec<NativeId> = asked.iter().map(|(_, id)| id.clone()).collect();
            // One request where the store can; the trait's default reads one by one.
            let bodies = self.inner.fetch_many(&member, &own).await?;
            for ((index, _), body) in asked.into_iter().zip(bodies) {
                out[index] = Some(body);
            }
        }
        Ok(out
            .into_iter()
            .map(|body| body.unwrap_or_else(|| Err(StoreError::Transient("not read".into()))))
            .collect())
    }

    async fn create_folder(&self, folder: &str, _spec: &FolderSpec) -> StoreResult<()> {
        Err(refused(folder))
    }

    async fn rename_folder(&self, from: &str, _to: &str) -> StoreResult<()> {
        Err(refused(from))
    }

    async fn prepare_appends(&self, folder: &str, _count: usize) -> StoreResult<Vec<AppendProbe>> {
        Err(refused(folder))
    }

    async fn append(
        &self,
        folder: &str,
        _message: &Body,
        _flags: &Flags,
        _date: Option<Millis>,
        _probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>> {
        Err(refused(folder))
    }

    async fn set_flags(&self, folder: &str, _id: &NativeId, _flags: &Flags) -> StoreResult<()> {
        Err(refused(folder))
    }

    async fn delete(&self, folder: &str, _id: &NativeId) -> StoreResult<()> {
        Err(refused(folder))
    }

    async fn find_appended(
        &self,
        folder: &str,
        _probe: &AppendProbe,
        _content: &ContentHash,
        _key: &ContentKey,
    ) -> StoreResult<Vec<NativeId>> {
        Err(refused(folder))
    }

    fn notices(&self) -> Vec<String> {
        self.inner.notices()
    }

    async fn flush(&self) -> StoreResult<()> {
        self.inner.flush().await
    }
}

#[cfg(test)]
mod tests;
