//! The delta: what the next run must do so that the target holds every source item once, with
//! its flags. Items are identified by content and occurrence: for each content hash in a folder,
//! the source's copies are paired with the target's copies (first those ferry copied from
//! exactly that source item, then the rest in id order); unpaired source copies are copied,
//! unpaired target copies that ferry made are deleted under `--delete-removed`. A folder whose
//! content reappeared under a new name is renamed on the target, not copied again.
//!
//! Beside the plan, the other decisions a run carries out, as pure functions: which copies go
//! ahead while the source is read ([`ahead`]), what is left once moves were made
//! ([`after_moves`]), what the target's folder listing changes and which folders to list
//! ([`folders`]), and what one target folder's listing tells ([`listing`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::event::{Action, ContentHash, Millis, NativeId, RunOptions, SpecialUse};
use crate::flags::Flags;
use crate::item::CollectionProps;
use crate::projection::source::{SourceItem, SourceState};
use crate::projection::target::{Origin, TargetFolder, TargetItem, TargetState};

pub mod after_moves;
pub mod ahead;
pub mod collections;
pub mod folders;
pub mod keyed;
pub mod listing;

/// Copy one source item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Source folder.
    pub source_folder: String,
    /// Source id.
    pub source_id: NativeId,
    /// Target folder.
    pub folder: String,
    /// Keyed hash of the bytes.
    pub content: ContentHash,
    /// Size in bytes.
    pub size: u64,
    /// Flags to set.
    pub flags: Flags,
    /// Internal date.
    pub date: Option<Millis>,
}

/// Set a target item's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagUpdate {
    /// Target folder.
    pub folder: String,
    /// Target id.
    pub id: NativeId,
    /// Flags before (as ferry knows them).
    pub from: Flags,
    /// The source's flags.
    pub to: Flags,
}

/// Delete a target item ferry made whose source is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// Target folder.
    pub folder: String,
    /// Target id.
    pub id: NativeId,
    /// Its content hash.
    pub content: ContentHash,
}

/// Move a target item ferry made into another target folder, on the target itself: its
/// source item moved there (a copy and a deletion of the same content, paired by
/// [`Delta::pair_moves`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The copy it replaces (source item, target folder, content, size).
    pub copy: Copy,
    /// The deletion it replaces (the target item and its folder).
    pub from: Deletion,
}

pub use keyed::{Conflict, KeyedDeletion, Put};

/// An item the next run will not copy, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// Source folder.
    pub folder: String,
    /// Source id.
    pub id: NativeId,
    /// Why.
    pub reason: String,
}

/// What the next run must do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Target folders to rename (from, to), because their source folder was renamed.
    pub renames: Vec<(String, String)>,
    /// Target folders to create.
    pub create_folders: Vec<String>,
    /// Items to copy.
    pub copies: Vec<Copy>,
    /// Flags to update.
    pub flag_updates: Vec<FlagUpdate>,
    /// Items to delete (only with `--delete-removed`).
    pub deletions: Vec<Deletion>,
    /// Items to move between target folders (only with `--delete-removed`, and only once
    /// [`Delta::pair_moves`] made them, for a target that can move).
    pub moves: Vec<Move>,
    /// Items left alone, with the reason.
    pub skipped: Vec<Skip>,
    /// Source items already on the target.
    pub in_place: u64,
    /// Target folders to create that hold more than mail (calendars, address books), with
    /// their source folder's kind and properties.
    pub collections: Vec<(String, crate::item::FolderSpec)>,
    /// Target collections whose properties to change: (folder, from, to), see
    /// [`collections`].
    pub collection_props: Vec<(String, CollectionProps, CollectionProps)>,
    /// Keyed items (events, contacts) to create, or to update in place.
    pub puts: Vec<Put>,
    /// Keyed target items to delete, if unchanged (only with `--delete-removed`).
    pub keyed_deletions: Vec<KeyedDeletion>,
    /// Source items left alone because their target item changed behind ferry's back.
    pub conflicts: Vec<Conflict>,
    /// Keyed target items that changed behind ferry's back and now hold the source's
    /// content: in agreement again, so a later edit of the source updates them.
    pub agreed: Vec<(String, NativeId)>,
}

impl Delta {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.renames.is_empty()
            && self.create_folders.is_empty()
            && self.copies.is_empty()
            && self.flag_updates.is_empty()
            && self.deletions.is_empty()
            && self.moves.is_empty()
            && self.collections.is_empty()
            && self.collection_props.is_empty()
            && self.puts.is_empty()
            && self.keyed_deletions.is_empty()
    }

    /// Leaves out what a target with these capabilities cannot hold: each such item is
    /// skipped with the reason (never dropped silently), and no folder is created for it.
    /// Returns the items left out, per source folder and kind.
    pub fn held_by(
        &mut self,
        capabilities: &crate::store::Capabilities,
    ) -> BTreeMap<(String, crate::item::Kind), Vec<NativeId>> {
        let skip = |folder: &str, id: &NativeId, kind: crate::item::Kind| Skip {
            folder: folder.to_owned(),
            id: id.clone(),
            reason: format!("the target cannot hold {}", kind.plural()),
        };
        let mut skipped = Vec::new();
        self.puts.retain(|put| {
            let held = capabilities.holds(put.kind);
            if !held {
                skipped.push((skip(&put.source_folder, &put.source_id, put.kind), put.kind));
            }
            held
        });
        if !capabilities.holds(crate::item::Kind::Message) {
            for copy in self.copies.drain(..) {
                let kind = crate::item::Kind::Message;
                skipped.push((skip(&copy.source_folder, &copy.source_id, kind), kind));
            }
            self.create_folders.clear();
        }
        let mut unheld = BTreeSet::new();
        self.collections.retain(|(folder, spec)| {
            let held = [
                crate::item::Kind::Event,
                crate::item::Kind::Task,
                crate::item::Kind::Contact,
                crate::item::Kind::Note,
                crate::item::Kind::Journal,
            ]
            .into_iter()
            .any(|kind| spec.accepts(kind) && capabilities.holds(kind));
            if !held {
                unheld.insert(folder.clone());
            }
            held
        });
        self.collection_props
            .retain(|(folder, _, _)| !unheld.contains(folder));
        let mut left_out: BTreeMap<(String, crate::item::Kind), Vec<NativeId>> = BTreeMap::new();
        for (skip, kind) in &skipped {
            left_out
                .entry((skip.folder.clone(), *kind))
                .or_default()
                .push(skip.id.clone());
        }
        self.skipped
            .extend(skipped.into_iter().map(|(skip, _)| skip));
        left_out
    }

    /// Turns each copy whose content is also to be deleted from another target folder into a
    /// move of that target item: the source item moved between folders, and the target can
    /// move its copy instead of receiving the bytes again and deleting the old one. Copies
    /// and deletions are paired in plan order, one deletion per copy; target items in `tried`
    /// (folder, id) are not moved (a move of them failed: they are copied and deleted).
    pub fn pair_moves(&mut self, tried: &BTreeSet<(String, NativeId)>) {
        let mut doomed: BTreeMap<ContentHash, Vec<usize>> = BTreeMap::new();
        for (index, deletion) in self.deletions.iter().enumerate().rev() {
            if !tried.contains(&(deletion.folder.clone(), deletion.id.clone())) {
                doomed.entry(deletion.content).or_default().push(index);
            }
        }
        let mut taken = vec![false; self.deletions.len()];
        let mut copies = Vec::with_capacity(self.copies.len());
        for copy in std::mem::take(&mut self.copies) {
            let from = doomed.get_mut(&copy.content).and_then(|indexes| {
                let at = indexes
                    .iter()
                    .rposition(|&index| self.deletions[index].folder != copy.folder)?;
                Some(indexes.remove(at))
            });
            match from {
                Some(index) => {
                    taken[index] = true;
                    self.moves.push(Move {
                        copy,
                        from: self.deletions[index].clone(),
                    });
                }
                None => copies.push(copy),
            }
        }
        self.copies = copies;
        let mut index = 0;
        self.deletions.retain(|_| {
            index += 1;
            !taken[index - 1]
        });
    }
}

/// Where source folders go on the target: the same path, except that a source folder with a
/// role (SPECIAL-USE `\Sent`, `\Drafts`, ...) and its subfolders go to the target folder with
/// the same role, so "Sent Items" lands in "Sent". A role is not followed when the target
/// path is already some other source folder's own, or when ferry already created the source
/// folder's own path on the target (a mapping never moves mail that is in place).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderMap {
    /// (source path, target path), by role.
    prefixes: Vec<(String, String)>,
}

impl FolderMap {
    /// The map for these projections.
    pub fn new(source: &SourceState, target: &TargetState) -> FolderMap {
        let mut prefixes: Vec<(String, String)> = Vec::new();
        for (path, folder) in &source.folders {
            let Some(role) = folder.special_use.filter(|r| *r != SpecialUse::Inbox) else {
                continue;
            };
            let Some(to) = target.roles.get(&role) else {
                continue;
            };
            let taken = source.folders.contains_key(to)
                || prefixes.iter().any(|(_, t)| t == to)
                || target
                    .folders
                    .get(path)
                    .is_some_and(|f| f.created_by_ferry || !f.items.is_empty());
            if to != path && !taken {
                prefixes.push((path.clone(), to.clone()));
            }
        }
        FolderMap { prefixes }
    }

    /// The target path of a source folder.
    pub fn target_folder(&self, source_folder: &str) -> String {
        for (from, to) in &self.prefixes {
            if source_folder == from {
                return to.clone();
            }
            if let Some(rest) = source_folder
                .strip_prefix(from.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
            {
                return format!("{to}/{rest}");
            }
        }
        source_folder.to_owned()
    }
}

/// Computes the delta from the two projections.
pub fn delta(source: &SourceState, target: &TargetState, options: &RunOptions) -> Delta {
    let mut delta = Delta::default();
    let map = FolderMap::new(source, target);
    let view = renamed_view(source, target, &map, &mut delta);
    let mut mapped_targets = BTreeSet::new();
    for (source_path, folder) in &source.folders {
        let target_path = map.target_folder(source_path);
        mapped_targets.insert(target_path.clone());
        plan_folder(
            (source_path, folder),
            (&target_path, view.get(&target_path).copied()),
            target,
            options,
            None,
            &mut delta,
        );
    }

    // Target folders whose source folder is gone: only under --delete-removed, and only what
    // ferry put there.
    if options.delete_removed {
        for (target_path, folder) in &view {
            if mapped_targets.contains(target_path) {
                continue;
            }
            for (target_id, target_item) in &folder.items {
                if target_item.keyed.is_some() {
                    keyed::gone_from_source(target_path, None, target_id, target_item, &mut delta);
                } else if !target_item.altered {
                    delete_if_ours(target_path, target_id, target_item, &mut delta);
                }
            }
        }
    }
    // Promises: a deletion only under --delete-removed, and only of an item ferry wrote (and
    // can address).
    assert!(
        options.delete_removed || (delta.deletions.is_empty() && delta.keyed_deletions.is_empty()),
        "deletions planned without --delete-removed"
    );
    debug_assert!(
        delta.deletions.iter().all(|d| {
            view.get(&d.folder)
                .and_then(|folder| folder.items.get(&d.id))
                .is_some_and(|item| {
                    matches!(item.origin, Origin::Copied { .. }) && !d.id.0.starts_with("op-")
                })
        }),
        "a deletion planned of an item ferry did not write"
    );
    delta
}

/// The target folders to delete because their source folder is gone (under
/// `--delete-removed`), children before parents, and those kept, with the reason.
///
/// A target folder is deleted when all of these hold:
/// - no source folder maps to it any more ([`FolderMap`]; nor is it the old name of a folder
///   `plan` renames), and it is neither INBOX nor one of the target's role folders;
/// - ferry created it;
/// - no write to it is pending (in doubt);
/// - every item ferry knows in it is deleted (or moved away) by `plan`, or already gone: with
///   the state after the plan was carried out and an empty `plan`, it holds nothing ferry
///   knows of;
/// - it holds no item ferry did not write (found there, or altered since ferry wrote it):
///   then it is kept, and the reason says so;
/// - no other target folder below it (`folder/…`) stays.
///
/// Folders ferry wrote into whose deletions are still to come (a deletion failed, an item
/// ferry cannot address) are left for a later run, without a reason. The store deletes a
/// folder only if it is empty at that moment ([`crate::store::Store::delete_folder`]), so mail
/// that arrived since ferry last listed it is never lost.
pub fn emptied_folders(
    source: &SourceState,
    target: &TargetState,
    plan: &Delta,
) -> (Vec<String>, Vec<(String, String)>) {
    let map = FolderMap::new(source, target);
    let mapped: BTreeSet<String> = source
        .folders
        .keys()
        .map(|path| map.target_folder(path))
        .collect();
    let renamed: BTreeSet<&str> = plan.renames.iter().map(|(from, _)| from.as_str()).collect();
    let going: BTreeSet<(&str, &NativeId)> = plan
        .deletions
        .iter()
        .map(|d| (d.folder.as_str(), &d.id))
        .chain(
            plan.keyed_deletions
                .iter()
                .map(|d| (d.folder.as_str(), &d.id)),
        )
        .chain(
            plan.moves
                .iter()
                .map(|m| (m.from.folder.as_str(), &m.from.id)),
        )
        .collect();
    let role = |path: &str| target.roles.values().any(|r| r == path);
    let pending = |path: &str| {
        target
            .pending
            .values()
            .any(|action| action_names(action, path))
    };

    let mut delete: Vec<String> = Vec::new();
    let mut kept: Vec<(String, String)> = Vec::new();
    // Children sort after their parent ("A" < "A/B"): in reverse, each folder comes after
    // every folder below it, so whether those stay is known.
    for (path, folder) in target.folders.iter().rev() {
        let candidate = !mapped.contains(path)
            && !source.folders.contains_key(path)
            && !path.eq_ignore_ascii_case("INBOX")
            && !role(path)
            && folder.created_by_ferry
            && !renamed.contains(path.as_str());
        if !candidate || pending(path) {
            continue;
        }
        let mut foreign = 0_u64;
        let mut ours_left = 0_u64;
        for (id, item) in &folder.items {
            if going.contains(&(path.as_str(), id)) {
                continue;
            }
            match item.origin {
                Origin::Found | Origin::Adopted => foreign += 1,
                Origin::Copied { .. } if item.altered => foreign += 1,
                Origin::Copied { .. } => ours_left += 1,
            }
        }
        if foreign > 0 {
            let messages = if foreign == 1 { "message" } else { "messages" };
            kept.push((
                path.clone(),
                format!(
                    "its source folder is gone, but it holds {foreign} {messages} ferry did not \
                     write"
                ),
            ));
            continue;
        }
        if ours_left > 0 {
            // Its deletions are still to come: a later run deletes the folder.
            continue;
        }
        let prefix = format!("{path}/");
        // Every path below it sorts from `prefix` on, together ("A B" and "A.x" sort
        // between "A" and "A/B", but not after "A/").
        let child = target
            .folders
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .map(|(child, _)| child)
            .take_while(|child| child.starts_with(prefix.as_str()))
            .find(|child| !delete.contains(*child));
        if let Some(child) = child {
            kept.push((
                path.clone(),
                format!("its source folder is gone, but it holds the folder {child}, which stays"),
            ));
            continue;
        }
        delete.push(path.clone());
    }
    (delete, kept)
}

/// Whether a write names the target folder `path`.
fn action_names(action: &Action, path: &str) -> bool {
    match action {
        Action::CreateFolder { folder }
        | Action::CreateCollection { folder, .. }
        | Action::SetCollection { folder, .. }
        | Action::Append { folder, .. }
        | Action::Create { folder, .. }
        | Action::Update { folder, .. }
        | Action::DeleteIf { folder, .. }
        | Action::SetFlags { folder, .. }
        | Action::Delete { folder, .. }
        | Action::DeleteFolder { folder } => folder == path,
        Action::RenameFolder { from, to } => from == path || to == path,
        Action::Move { from, folder, .. } => from == path || folder == path,
    }
}

/// What [`delta`] plans for the items of one source folder whose content is one of
/// `contents`: its copies, flag updates and skips, and its target folder when that must be
/// created; never deletions. The same as `delta`'s plan for those items, found without
/// walking the other items and folders: for planning a chunk of items just read.
pub fn delta_of(
    source: &SourceState,
    target: &TargetState,
    folder: &str,
    contents: &BTreeSet<ContentHash>,
) -> Delta {
    let mut delta = Delta::default();
    let Some(source_folder) = source.folders.get(folder) else {
        return delta;
    };
    let map = FolderMap::new(source, target);
    let view = renamed_view(source, target, &map, &mut delta);
    delta.renames.clear();
    let target_path = map.target_folder(folder);
    plan_folder(
        (folder, source_folder),
        (&target_path, view.get(&target_path).copied()),
        target,
        &RunOptions::default(),
        Some(contents),
        &mut delta,
    );
    delta
}

/// The target folders as they will be after the renames `delta` gets.
fn renamed_view<'t>(
    source: &SourceState,
    target: &'t TargetState,
    map: &FolderMap,
    delta: &mut Delta,
) -> BTreeMap<String, &'t TargetFolder> {
    let mut view: BTreeMap<String, &TargetFolder> = target
        .folders
        .iter()
        .map(|(path, folder)| (path.clone(), folder))
        .collect();
    detect_renames(source, map, &mut view, delta);
    view
}

/// Plans one source folder against its target folder (`None`: still to be created), for
/// every content or, with `only`, for those contents alone.
fn plan_folder(
    (source_path, folder): (&str, &crate::projection::source::SourceFolder),
    (target_path, target_folder): (&str, Option<&TargetFolder>),
    target: &TargetState,
    options: &RunOptions,
    only: Option<&BTreeSet<ContentHash>>,
    delta: &mut Delta,
) {
    let wanted = |content: &ContentHash| only.is_none_or(|only| only.contains(content));
    if target_folder.is_none() {
        if folder.spec.kind == crate::item::FolderKind::Mail {
            delta.create_folders.push(target_path.to_owned());
        } else {
            delta
                .collections
                .push((target_path.to_owned(), folder.spec.clone()));
        }
    }
    // Items that change in place are paired by key, not content (never ahead of the plan).
    if only.is_none() {
        if let Some((from, to)) = collections::props_change(folder, target_folder) {
            delta
                .collection_props
                .push((target_path.to_owned(), from, to));
        }
        keyed::plan_keyed(
            (source_path, folder),
            (target_path, target_folder),
            target,
            options,
            delta,
        );
    }
    for (id, reason) in folder.unreadable.iter().filter(|_| only.is_none()) {
        delta.skipped.push(Skip {
            folder: source_path.to_owned(),
            id: id.clone(),
            reason: reason.clone(),
        });
    }

    // Both sides grouped by content, each group in id order (the maps are iterated in id
    // order and `by_content` keeps it), walked together in content order.
    let mut sources: Vec<(ContentHash, (&NativeId, &SourceItem))> = folder
        .items
        .iter()
        .filter(|(_, item)| item.keyed.is_none() && wanted(&item.content))
        .map(|(id, item)| (item.content, (id, item)))
        .collect();
    by_content(&mut sources);
    let mut all_targets: Vec<(ContentHash, (&NativeId, &TargetItem))> = target_folder
        .map(|folder| {
            folder
                .items
                .iter()
                .filter(|(_, item)| !item.altered && item.keyed.is_none() && wanted(&item.content))
                .map(|(id, item)| (item.content, (id, item)))
                .collect()
        })
        .unwrap_or_default();
    by_content(&mut all_targets);
    // Target groups whose content no source item has, in content order.
    let mut unmatched_targets: Vec<(&NativeId, &TargetItem)> = Vec::new();
    let mut rest = all_targets.as_slice();

    for group in sources.chunk_by(|a, b| a.0 == b.0) {
        let content = &group[0].0;
        let before = rest.partition_point(|(c, _)| c < content);
        unmatched_targets.extend(rest[..before].iter().map(|(_, target)| *target));
        rest = &rest[before..];
        let same = rest.partition_point(|(c, _)| c == content);
        let mut targets: Vec<(&NativeId, &TargetItem)> =
            rest[..same].iter().map(|(_, target)| *target).collect();
        rest = &rest[same..];
        let copies_before = delta.copies.len();
        let mut unpaired_sources = Vec::new();
        // First pair each source item with the target item copied from it.
        for (_, (source_id, source_item)) in group {
            let link = crate::projection::target::SourceLink::of(source_path, source_id);
            let linked = targets
                .iter()
                .position(|(_, target_item)| target_item.source == Some(link));
            match linked {
                Some(index) => {
                    let (target_id, target_item) = targets.remove(index);
                    pair(target_path, target_id, target_item, source_item, delta);
                }
                None => unpaired_sources.push((*source_id, *source_item)),
            }
        }
        // Then the rest in id order: identical copies are interchangeable.
        let mut targets = targets.into_iter();
        for (source_id, source_item) in unpaired_sources {
            match targets.next() {
                Some((target_id, target_item)) => {
                    pair(target_path, target_id, target_item, source_item, delta);
                }
                None => {
                    // A refusal the target stated as permanent is not tried again on every
                    // run (it is reported on every run instead), but `--full` and
                    // `--verify-target` try it again: the admin may have raised a limit.
                    let retry = options.full || options.verify_target;
                    if let Some(reason) = target
                        .refused
                        .get(&(target_path.to_owned(), *content))
                        .filter(|_| !retry)
                    {
                        delta.skipped.push(Skip {
                            folder: source_path.to_owned(),
                            id: source_id.clone(),
                            reason: reason.clone(),
                        });
                    } else {
                        delta.copies.push(Copy {
                            source_folder: source_path.to_owned(),
                            source_id: source_id.clone(),
                            folder: target_path.to_owned(),
                            content: *content,
                            size: source_item.size,
                            flags: source_item.flags.clone(),
                            date: source_item.date.get(),
                        });
                    }
                }
            }
        }
        // Promise: content the target folder holds is never copied there again: a copy is
        // planned only for a source copy left over once every target copy is paired.
        let copied = delta.copies.len() - copies_before;
        assert!(
            copied == 0 || copied + same <= group.len(),
            "a copy planned of content {target_path} holds"
        );
        if options.delete_removed && folder.listed {
            for (target_id, target_item) in targets {
                delete_if_ours(target_path, target_id, target_item, delta);
            }
        }
    }
    unmatched_targets.extend(rest.iter().map(|(_, target)| *target));
    if options.delete_removed && folder.listed {
        for (target_id, target_item) in unmatched_targets {
            delete_if_ours(target_path, target_id, target_item, delta);
        }
    }
}

/// Sorts `(content, (id, item))` entries by content, and by id among equal contents (the
/// order they come in), in place: a folder of 30,000 messages is planned beside the state of
/// the whole mailbox, and a sorted copy of its entries would be one more of them. Content
/// hashes are uniform, so their first eight bytes as an integer order almost every pair in
/// one comparison.
fn by_content<T>(entries: &mut [(ContentHash, (&NativeId, &T))]) {
    fn prefix(content: &ContentHash) -> u64 {
        let mut prefix = [0_u8; 8];
        prefix.copy_from_slice(&content.0[..8]);
        u64::from_be_bytes(prefix)
    }
    entries.sort_unstable_by(|(a, (a_id, _)), (b, (b_id, _))| {
        prefix(a)
            .cmp(&prefix(b))
            .then_with(|| a.cmp(b))
            .then_with(|| a_id.cmp(b_id))
    });
}

fn pair(
    folder: &str,
    target_id: &NativeId,
    target_item: &TargetItem,
    source_item: &SourceItem,
    delta: &mut Delta,
) {
    delta.in_place += 1;
    if target_item.flags != source_item.flags && !target_id.0.starts_with("op-") {
        delta.flag_updates.push(FlagUpdate {
            folder: folder.to_owned(),
            id: target_id.clone(),
            from: target_item.flags.clone(),
            to: source_item.flags.clone(),
        });
    }
}

fn delete_if_ours(folder: &str, id: &NativeId, item: &TargetItem, delta: &mut Delta) {
    if matches!(item.origin, Origin::Copied { .. }) && !id.0.starts_with("op-") {
        delta.deletions.push(Deletion {
            folder: folder.to_owned(),
            id: id.clone(),
            content: item.content,
        });
    }
}

/// A vanished source folder whose content reappeared in a new source folder (one with no
/// target folder yet) is a rename: more than half of the vanished folder's distinct contents
/// must be in the new one. Each new folder takes at most one rename.
fn detect_renames(
    source: &SourceState,
    map: &FolderMap,
    view: &mut BTreeMap<String, &TargetFolder>,
    delta: &mut Delta,
) {
    let target_folder = |path: &str| map.target_folder(path);
    let mut taken = BTreeSet::new();
    for (vanished_path, contents) in &source.vanished {
        let from = target_folder(vanished_path);
        if contents.is_empty() || !view.contains_key(&from) {
            continue;
        }
        if source.folders.contains_key(vanished_path) {
            continue;
        }
        let vanished: BTreeSet<&ContentHash> = contents.iter().collect();
        let mut best: Option<(usize, &String)> = None;
        for (path, folder) in &source.folders {
            let to = target_folder(path);
            if view.contains_key(&to) || taken.contains(path) {
                continue;
            }
            let overlap = folder
                .items
                .values()
                .map(|item| &item.content)
                .collect::<BTreeSet<_>>()
                .intersection(&vanished)
                .count();
            if overlap == 0 || overlap * 2 <= vanished.len() {
                continue;
            }
            if best.is_none_or(|(best_overlap, _)| overlap > best_overlap) {
                best = Some((overlap, path));
            }
        }
        if let Some((_, path)) = best {
            let to = target_folder(path);
            taken.insert(path.clone());
            if let Some(folder) = view.remove(&from) {
                view.insert(to.clone(), folder);
            }
            delta.renames.push((from, to));
        }
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod keyed_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod tests;
