//! Writing keyed items (events, contacts, tasks): creates, updates in place and deletions, each
//! conditional on what ferry last knew of the target item, and how one left in doubt is
//! settled.
//!
//! Promises: an item that changed on the target behind ferry's back is never overwritten or
//! deleted (every update and deletion names the version it expects, and the target refuses
//! it otherwise); a create is refused where its key is already taken, so it never makes two.
//! A refusal is looked at before it is called a conflict: a write that landed with its reply
//! lost and was sent again meets itself, and finding ferry's own content there means done.

use crate::body::resident_bytes;
use crate::event::{Action, ContentHash, Event, FailureClass, OpId, Side};
use crate::store::{ItemInfo, NewItem, StoreError, Stored};

use super::{Worker, class_of};

/// How a keyed write ended.
type PutResult = Result<Stored, (FailureClass, String)>;

impl Worker<'_> {
    /// Creates or updates one keyed item (a `Create` or an `Update`); its outcome event.
    pub(super) async fn put(&self, op: OpId, action: &Action, events: &mut Vec<Event>) -> Event {
        let result = self.put_item(action, events).await;
        match result {
            Ok(stored) => {
                let done = self.finish(op, action, Ok(Some(stored.id.clone())));
                match done {
                    Event::WriteDone { op, at, .. } => Event::WriteStored {
                        op,
                        id: stored.id,
                        version: stored.version,
                        at,
                    },
                    other => other,
                }
            }
            Err(failure) => self.finish(op, action, Err(failure)),
        }
    }

    async fn put_item(&self, action: &Action, events: &mut Vec<Event>) -> PutResult {
        let (source_folder, source_id, folder, key, content, size) = match action {
            Action::Create {
                source_folder,
                source_id,
                folder,
                key,
                content,
                size,
                ..
            }
            | Action::Update {
                source_folder,
                source_id,
                folder,
                key,
                content,
                size,
                ..
            } => (source_folder, source_id, folder, key, content, *size),
            _ => unreachable!("put is called for creates and updates"),
        };
        let kind = match action {
            Action::Create { kind, .. } => *kind,
            Action::Update { id, .. } => self
                .known
                .folders
                .get(folder)
                .and_then(|f| f.items.get(id))
                .and_then(|item| item.keyed.as_ref())
                .map(|keyed| keyed.kind)
                .unwrap_or_default(),
            _ => crate::item::Kind::default(),
        };
        if let Action::Update {
            id, expect: None, ..
        } = action
        {
            self.unchanged_since_known(folder, id, key, events).await?;
        }
        let _permit = self.bytes_permit(resident_bytes(size)).await;
        let bytes = self
            .read_source(source_folder, source_id, content, size, events)
            .await?;
        let item = NewItem {
            key,
            kind,
            bytes: &bytes,
            content,
        };
        // A create or an update sent again after its reply was lost is refused by the target
        // (the key is taken, the version moved on): retrying transient failures is safe, and
        // the refusal is looked at below.
        let attempts = self.config.retry_count_max;
        let result = self
            .retry_sized(Side::Target, events, attempts, bytes.len(), || async move {
                match action {
                    Action::Update { id, expect, .. } => {
                        self.target
                            .update(folder, id, item, expect.as_deref())
                            .await
                    }
                    _ => self.target.create_item(folder, item).await,
                }
            })
            .await;
        match result {
            Ok(stored) => Ok(stored),
            Err(StoreError::Conflict(why)) => match self.look(folder, key, content, events).await {
                Ok(Some((info, true))) => Ok(stored_of(info)),
                Ok(_) => Err((
                    FailureClass::Conflict,
                    format!("the target item changed behind ferry's back ({why}): left as it is"),
                )),
                Err(error) => Err((
                    FailureClass::Transient,
                    format!("refused ({why}), and the target item could not be looked at: {error}"),
                )),
            },
            Err(StoreError::NotFound(_)) if matches!(action, Action::Update { .. }) => Err((
                FailureClass::Transient,
                "the target item is gone: the next run creates it again".into(),
            )),
            Err(error @ StoreError::Full(_)) => {
                Err((FailureClass::NotApplied, format!("writing: {error}")))
            }
            Err(StoreError::Transient(reason)) => {
                // It may have landed: an update that did is ferry's own from now on.
                match self.look(folder, key, content, events).await {
                    Ok(Some((info, true))) => Ok(stored_of(info)),
                    _ => Err((FailureClass::Transient, format!("writing: {reason}"))),
                }
            }
            Err(error) => Err((class_of(&error), format!("writing: {error}"))),
        }
    }

    /// Deletes one keyed target item (a `DeleteIf`), if it is still at the version ferry
    /// knew; its outcome.
    pub(super) async fn delete_keyed(
        &self,
        action: &Action,
        events: &mut Vec<Event>,
    ) -> super::WriteResult {
        let Action::DeleteIf {
            folder,
            id,
            key,
            content,
            expect,
        } = action
        else {
            unreachable!("delete_keyed is called for conditional deletions");
        };
        if expect.is_none() {
            self.unchanged_since_known(folder, id, key, events).await?;
        }
        let result = self
            .retry(Side::Target, events, || {
                self.target.delete_if(folder, id, expect.as_deref())
            })
            .await;
        match result {
            Ok(()) | Err(StoreError::NotFound(_)) => Ok(None),
            Err(StoreError::Conflict(why)) => match self.look(folder, key, content, events).await {
                // Deleted after all (a retry of a deletion that landed).
                Ok(None) => Ok(None),
                _ => Err((
                    FailureClass::Conflict,
                    format!(
                        "deleted on the source, changed on the target behind ferry's back \
                         ({why}): kept"
                    ),
                )),
            },
            Err(error) => Err((class_of(&error), format!("deleting: {error}"))),
        }
    }

    /// For a target that gives no versions (so a write cannot be conditional): whether target
    /// item `id` still holds the content ferry last knew there; a conflict otherwise. What
    /// changed between this look and the write is not seen: such a store offers no better.
    async fn unchanged_since_known(
        &self,
        folder: &str,
        id: &crate::event::NativeId,
        key: &str,
        events: &mut Vec<Event>,
    ) -> Result<(), (FailureClass, String)> {
        let known = self
            .known
            .folders
            .get(folder)
            .and_then(|f| f.items.get(id))
            .map(|item| item.content);
        let Some(known) = known else {
            return Ok(());
        };
        match self.look(folder, key, &known, events).await {
            Ok(Some((_, true))) | Ok(None) => Ok(()),
            Ok(Some((_, false))) => Err((
                FailureClass::Conflict,
                "the target item changed behind ferry's back (the target gives no versions): \
                 left as it is"
                    .into(),
            )),
            Err(error) => Err((
                FailureClass::Transient,
                format!("looking at the target item before writing it: {error}"),
            )),
        }
    }

    /// The target item of `folder` with key `key`, and whether its bytes are `content`.
    pub(super) async fn look(
        &self,
        folder: &str,
        key: &str,
        content: &ContentHash,
        events: &mut Vec<Event>,
    ) -> Result<Option<(ItemInfo, bool)>, StoreError> {
        let found = self
            .retry(Side::Target, events, || self.target.find_key(folder, key))
            .await?;
        let Some(info) = found else {
            return Ok(None);
        };
        let bytes = self
            .retry(Side::Target, events, || self.target.fetch(folder, &info.id))
            .await?;
        let hash = bytes
            .hash(self.key)
            .map_err(|error| StoreError::Transient(crate::body::read_back(&error)))?;
        Ok(Some((info, hash == *content)))
    }

    /// Settles a keyed write left in doubt by reading the target item: a create is done if
    /// ferry's content is there under its key, not applied if nothing is, a conflict if
    /// something else is; an update or a deletion is not applied while the item is still at
    /// the version it expected (the plan sends it again), done once the item holds ferry's
    /// content (or is gone, for a deletion), and a conflict otherwise.
    pub(super) async fn settle_keyed(
        &self,
        op: OpId,
        action: &Action,
        events: &mut Vec<Event>,
    ) -> Result<Event, StoreError> {
        let (folder, key, content, expect) = match action {
            Action::Create {
                folder,
                key,
                content,
                ..
            } => (folder, key, content, None),
            Action::Update {
                folder,
                key,
                content,
                expect,
                ..
            }
            | Action::DeleteIf {
                folder,
                key,
                content,
                expect,
                ..
            } => (folder, key, content, Some(expect)),
            _ => unreachable!("settle_keyed is called for keyed writes"),
        };
        let deletion = matches!(action, Action::DeleteIf { .. });
        let not_applied = |reason: &str| Event::WriteFailed {
            op,
            class: FailureClass::NotApplied,
            reason: reason.to_owned(),
        };
        let found = match self
            .retry(Side::Target, events, || self.target.find_key(folder, key))
            .await
        {
            Ok(found) => found,
            Err(StoreError::NotFound(_)) => None,
            Err(error) => return Err(error),
        };
        let Some(info) = found else {
            return Ok(if deletion {
                self.finish(op, action, Ok(None))
            } else {
                not_applied("in doubt after an interruption and not on the target: written again")
            });
        };
        let version = info.keyed.as_ref().and_then(|keyed| keyed.version.clone());
        if let Some(expect) = expect
            && expect.is_some()
            && *expect == version
        {
            return Ok(not_applied(
                "in doubt after an interruption and the target item unchanged: written again",
            ));
        }
        let bytes = self
            .retry(Side::Target, events, || self.target.fetch(folder, &info.id))
            .await?;
        let hash = bytes
            .hash(self.key)
            .map_err(|error| StoreError::Transient(crate::body::read_back(&error)))?;
        // What ferry last knew there: the item before an update, the item a deletion deletes.
        let before = match action {
            Action::Update { id, .. } => self
                .known
                .folders
                .get(folder)
                .and_then(|f| f.items.get(id))
                .map(|item| item.content),
            Action::DeleteIf { content, .. } => Some(*content),
            _ => None,
        };
        if before == Some(hash) {
            return Ok(not_applied(
                "in doubt after an interruption and the target item as ferry knew it: written again",
            ));
        }
        let ours = !deletion && hash == *content;
        if ours {
            let done = self.finish(op, action, Ok(Some(info.id.clone())));
            return Ok(match done {
                Event::WriteDone { op, at, .. } => Event::WriteStored {
                    op,
                    id: info.id,
                    version,
                    at,
                },
                other => other,
            });
        }
        let reason = if deletion {
            "deleted on the source, changed on the target behind ferry's back: kept"
        } else {
            "the target item changed behind ferry's back: left as it is"
        };
        Ok(self.finish(op, action, Err((FailureClass::Conflict, reason.to_owned()))))
    }
}

fn stored_of(info: ItemInfo) -> Stored {
    Stored {
        id: info.id,
        version: info.keyed.and_then(|keyed| keyed.version),
    }
}
