//! The event vocabulary: everything ferry observes and everything it writes, as appended to the
//! journal. Every decision is a fold over these.
//!
//! This is a serialized promise: journals written today must replay in every later version.
//! postcard encodes an enum variant by its index, so **new variants go at the end of an enum and
//! existing variants and fields never change**; a change of meaning is a new variant.
//!
//! Events carry keyed content hashes, sizes, flags, dates, folder names and native ids. They never
//! carry message bodies, credentials, subjects or addresses.

use serde::{Deserialize, Serialize};

use crate::flags::Flags;
pub use crate::item::{CollectionProps, FolderKind, FolderSpec, Keyed, Kind};
pub use ferry_journal::ContentHash;

/// Which end of the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Side {
    /// Where mail comes from.
    Source,
    /// Where mail goes.
    Target,
}

/// A run's number: 1 for the first run of a journal, then counting up.
pub type RunId = u64;

/// A write operation's number, unique within a journal.
pub type OpId = u64;

/// Milliseconds since the Unix epoch, from the executor's clock.
pub type Millis = i64;

/// Where an item lives on one side, in that side's own terms: a Maildir unique name, an IMAP
/// `UIDVALIDITY:UID`, a Graph id. Meaningful only together with its folder and side.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NativeId(pub String);

impl std::fmt::Display for NativeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A folder's role, from IMAP SPECIAL-USE (RFC 6154) or its equivalent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SpecialUse {
    /// The inbox.
    Inbox,
    /// `\Sent`.
    Sent,
    /// `\Drafts`.
    Drafts,
    /// `\Trash`.
    Trash,
    /// `\Junk`.
    Junk,
    /// `\Archive`.
    Archive,
}

/// How a run was asked to work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunOptions {
    /// Check every migrated item on the target and re-copy what is missing or altered.
    pub verify_target: bool,
    /// Re-read every source item instead of trusting what the journal knows of the source.
    pub full: bool,
    /// Delete on the target what ferry put there and the source no longer has.
    pub delete_removed: bool,
    /// Plan only; write nothing to the target.
    pub dry_run: bool,
}

/// What a write does. Target paths and ids only; where the content came from is kept for the
/// audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Create a folder on the target.
    CreateFolder {
        /// Target folder path.
        folder: String,
    },
    /// Rename a folder on the target, because its source folder was renamed.
    RenameFolder {
        /// Current target path.
        from: String,
        /// New target path.
        to: String,
    },
    /// Copy one message.
    Append {
        /// Source folder path.
        source_folder: String,
        /// Source native id.
        source_id: NativeId,
        /// Target folder path.
        folder: String,
        /// Keyed hash of the exact bytes.
        content: ContentHash,
        /// Size in bytes.
        size: u64,
        /// Flags to set with the message.
        flags: Flags,
        /// Internal date (received time), when the source has one.
        date: Option<Millis>,
        /// Where to look on the target if the outcome of this write is lost
        /// (see [`crate::store::AppendProbe`]).
        probe: String,
    },
    /// Replace a target item's flags.
    SetFlags {
        /// Target folder path.
        folder: String,
        /// Target native id.
        id: NativeId,
        /// The complete new flag set.
        flags: Flags,
    },
    /// Delete a target item that ferry put there and the source no longer has.
    Delete {
        /// Target folder path.
        folder: String,
        /// Target native id.
        id: NativeId,
        /// Its content hash, for the audit trail.
        content: ContentHash,
    },
    /// Move a target item that ferry put there into another target folder on the target
    /// itself, because its source item moved (under `--delete-removed`): no bytes are copied
    /// again. The moved item keeps its flags; a flag change follows if the source's differ.
    Move {
        /// The source item now in `folder`'s source folder.
        source_folder: String,
        /// Its source native id.
        source_id: NativeId,
        /// Target folder the item is in.
        from: String,
        /// Its target native id there.
        id: NativeId,
        /// Target folder it goes to.
        folder: String,
        /// Keyed hash of its bytes.
        content: ContentHash,
        /// Size in bytes.
        size: u64,
        /// Where to look in `folder` if the outcome of this write is lost (as for an append).
        probe: String,
    },
    /// Delete a target folder that ferry created and whose source folder is gone, once ferry's
    /// own deletions emptied it (under `--delete-removed`). The target deletes it only if it
    /// holds no message at all at that moment (see [`crate::store::Store::delete_folder`]);
    /// otherwise the write fails for good and the folder stays.
    DeleteFolder {
        /// Target folder path.
        folder: String,
    },
    /// Create a target folder that holds more than mail (a calendar, an address book), with
    /// its source folder's kind and properties.
    CreateCollection {
        /// Target folder path.
        folder: String,
        /// Its kind and properties.
        spec: FolderSpec,
    },
    /// Create a keyed item (an event, a contact) that the target collection does not hold
    /// under its key. The target refuses it if an item with that key is there already, so a
    /// create sent twice never makes two.
    Create {
        /// Source folder path.
        source_folder: String,
        /// Source native id.
        source_id: NativeId,
        /// Target folder path.
        folder: String,
        /// Its stable key.
        key: String,
        /// What it is.
        kind: Kind,
        /// Keyed hash of the exact bytes.
        content: ContentHash,
        /// Size in bytes.
        size: u64,
    },
    /// Replace a keyed target item ferry wrote with its source item's new version, only if
    /// the target item is still at the version ferry last knew (If-Match): an item changed
    /// behind ferry's back is never overwritten.
    Update {
        /// Source folder path.
        source_folder: String,
        /// Source native id.
        source_id: NativeId,
        /// Target folder path.
        folder: String,
        /// Target native id.
        id: NativeId,
        /// Its stable key.
        key: String,
        /// Keyed hash of the new bytes.
        content: ContentHash,
        /// Size in bytes.
        size: u64,
        /// The target version the update expects to replace.
        expect: Option<String>,
    },
    /// Delete a keyed target item ferry wrote whose source item is gone (under
    /// `--delete-removed`), only if it is still at the version ferry last knew.
    DeleteIf {
        /// Target folder path.
        folder: String,
        /// Target native id.
        id: NativeId,
        /// Its stable key.
        key: String,
        /// Its content hash, for the audit trail.
        content: ContentHash,
        /// The target version the deletion expects.
        expect: Option<String>,
    },
    /// Change a target collection's properties (display name, colour, description) from
    /// `from`, what ferry last set there, to `to`, its source collection's: only those that
    /// differ, and only if the target still holds `from` for each (a property changed on the
    /// target behind ferry's back is a conflict, never overwritten).
    SetCollection {
        /// Target folder path.
        folder: String,
        /// What ferry last set there.
        from: CollectionProps,
        /// What the source collection holds.
        to: CollectionProps,
    },
}

/// Why a write or read failed, as the executor classed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FailureClass {
    /// Failed after every retry; the next run tries again.
    Transient,
    /// The item cannot be written as it is (too large, refused); the next run tries again only
    /// if the item changes.
    Permanent,
    /// An in-doubt write was looked for on the target and not found: it never landed.
    NotApplied,
    /// The target item changed behind ferry's back: ferry did not overwrite or delete it. The
    /// item is reported on every run, not retried, until someone resolves it (deletes or
    /// restores the target item).
    Conflict,
}

/// The result of checking one migrated item on the target (`--verify-target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CheckState {
    /// Present with the expected bytes.
    Intact,
    /// Not on the target any more.
    Missing,
    /// Present with other bytes.
    Altered,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunOutcome {
    /// Everything planned was done.
    Completed,
    /// Done, but some items failed; they are in the report.
    CompletedWithFailures,
    /// Stopped on request (SIGINT/SIGTERM) with in-flight writes journaled; run again to resume.
    Paused,
    /// Stopped by an error that ends the run (an end unreachable, the journal failing).
    Aborted,
    /// Everything was done but the deletions, which were more than the mass-deletion guard
    /// allows (`projection::guard`): they wait for `--confirm-deletions`.
    DeletionsHeld,
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A run began.
    RunStarted {
        /// Its number.
        run: RunId,
        /// When.
        at: Millis,
        /// The source, as a URI without credentials.
        source: String,
        /// The target, as a URI without credentials.
        target: String,
        /// How it was asked to work.
        options: RunOptions,
    },
    /// A folder exists on one side.
    FolderSeen {
        /// Which side.
        side: Side,
        /// Its path, `/`-separated, decoded to Unicode.
        folder: String,
        /// Its role, when the side says.
        special_use: Option<SpecialUse>,
        /// IMAP UIDVALIDITY or the equivalent: when it changes, every native id is new.
        validity: Option<u64>,
    },
    /// A folder known from earlier is no longer on one side.
    FolderGone {
        /// Which side.
        side: Side,
        /// Its path.
        folder: String,
    },
    /// An item not known before (or known under other content), with its keyed hash.
    ItemSeen {
        /// Which side.
        side: Side,
        /// Its folder.
        folder: String,
        /// Where it lives.
        id: NativeId,
        /// Keyed hash of its exact bytes.
        content: ContentHash,
        /// Size in bytes.
        size: u64,
        /// Its flags.
        flags: Flags,
        /// Its internal date.
        date: Option<Millis>,
    },
    /// A known item's flags are now these.
    FlagsSeen {
        /// Which side.
        side: Side,
        /// Its folder.
        folder: String,
        /// Where it lives.
        id: NativeId,
        /// The complete flag set.
        flags: Flags,
    },
    /// A known item is no longer there.
    ItemGone {
        /// Which side.
        side: Side,
        /// Its folder.
        folder: String,
        /// Where it lived.
        id: NativeId,
    },
    /// An item could not be read; it is reported and skipped, and tried again next run.
    ItemUnreadable {
        /// Which side.
        side: Side,
        /// Its folder.
        folder: String,
        /// Where it lives.
        id: NativeId,
        /// Why.
        reason: String,
    },
    /// A folder's listing is complete: every item in it has been seen.
    FolderListed {
        /// Which side.
        side: Side,
        /// Its path.
        folder: String,
        /// The side's change token after the listing, when it has one (IMAP HIGHESTMODSEQ,
        /// Graph delta link, Maildir directory stamps).
        token: Option<String>,
    },
    /// A write is about to be sent. Durable before the write starts.
    WriteIntent {
        /// Its number.
        op: OpId,
        /// What it does.
        action: Action,
    },
    /// The target confirmed a write.
    WriteDone {
        /// The intent.
        op: OpId,
        /// The target's id for what was written, when there is one.
        id: Option<NativeId>,
        /// When.
        at: Millis,
    },
    /// A write failed, or an in-doubt write was found never to have landed.
    WriteFailed {
        /// The intent.
        op: OpId,
        /// How it failed.
        class: FailureClass,
        /// Why, for the report.
        reason: String,
    },
    /// A migrated item was checked on the target.
    TargetChecked {
        /// Target folder.
        folder: String,
        /// Target native id.
        id: NativeId,
        /// What was found.
        state: CheckState,
    },
    /// A side asked ferry to slow down.
    Throttled {
        /// Which side.
        side: Side,
        /// How long ferry waited.
        wait_ms: u64,
    },
    /// A run ended.
    RunEnded {
        /// Its number.
        run: RunId,
        /// When.
        at: Millis,
        /// How.
        outcome: RunOutcome,
    },
    /// A folder could not be listed this run (the store refused it for good); the run went on
    /// with the other folders and the report says why.
    FolderUnreadable {
        /// Which side.
        side: Side,
        /// Its path.
        folder: String,
        /// Why.
        reason: String,
    },
    /// The folders of one side that have a role (SPECIAL-USE), when they changed: the planner
    /// maps a source folder with a role to the target folder with the same role ("Sent Items"
    /// to "Sent").
    FolderRoles {
        /// Which side.
        side: Side,
        /// Role and folder path, sorted by role.
        roles: Vec<(SpecialUse, String)>,
    },
    /// Something a store could not do as asked and the report must say (e.g. a keyword the
    /// target cannot keep); the run went on.
    StoreNotice {
        /// Which side.
        side: Side,
        /// What, in words; no message content.
        text: String,
    },
    /// Events appended together, stored as one journal record. A run journals observations
    /// and writes in groups of up to hundreds; one record per group instead of one per event
    /// keeps the journal's store small, and quick to reopen (it reads back every record of
    /// its write-ahead file, one lookup each). Never nested; every projection folds the events
    /// in order, as if they had been appended one by one.
    Batch(Vec<Event>),
    /// A run ended on an error before it could finish (a side unreachable or unusable): the
    /// report says how it ended and why. (A run killed outright records nothing; the next run
    /// resumes it and the report says so.)
    RunStopped {
        /// Its number.
        run: RunId,
        /// When.
        at: Millis,
        /// How (`Aborted`).
        outcome: RunOutcome,
        /// Why, in words (the store's error; never a secret).
        reason: String,
    },
    /// Calls to one side waited for a limit the store declared (requests or bytes per
    /// window): the wall time of the run they spent waiting for it (the union of the waits,
    /// not their sum). Recorded at the end of a run, once per side and limit.
    Paced {
        /// Which side.
        side: Side,
        /// Which limit, in words (`requests per window`, `bytes per window`).
        limit: String,
        /// How long, in ms.
        wait_ms: u64,
    },
    /// An item that changes in place (an event, a contact) has this stable key and version.
    /// Recorded right after the `ItemSeen` of the same item (or on its own, after a
    /// `TargetChecked`, when a target item's version changed).
    ItemKeyed {
        /// Which side.
        side: Side,
        /// Its folder.
        folder: String,
        /// Where it lives.
        id: NativeId,
        /// Its stable key.
        key: String,
        /// Its version, when the side gives one.
        version: Option<String>,
        /// What it is.
        kind: Kind,
    },
    /// A folder holds more than mail: its kind and properties. Recorded after its
    /// `FolderSeen`, when they are not those of a mail folder or changed.
    CollectionSeen {
        /// Which side.
        side: Side,
        /// Its path.
        folder: String,
        /// Its kind and properties.
        spec: FolderSpec,
    },
    /// The target confirmed a write of a keyed item (a create or an update): the id it has
    /// there and the version the write produced, when the target told.
    WriteStored {
        /// The intent.
        op: OpId,
        /// The target's id for it.
        id: NativeId,
        /// Its version after the write.
        version: Option<String>,
        /// When.
        at: Millis,
    },
    /// A source item ferry does not bring to the target, because the target item it would
    /// replace or delete changed behind ferry's back. Nothing was written; recorded on every
    /// run until it is resolved.
    Conflict {
        /// Source folder path.
        source_folder: String,
        /// Source native id (none when the source item was deleted).
        source_id: Option<NativeId>,
        /// Target folder path.
        folder: String,
        /// Target native id.
        id: NativeId,
        /// What happened on each side, in words.
        reason: String,
    },
    /// A side asked ferry to slow down (answered "throttled"): which limit, in the server's
    /// words, and the wall time this added to the side's pause (calls answered by the same
    /// throttling add nothing more). Replaces `Throttled`, which old journals keep.
    ServerThrottled {
        /// Which side.
        side: Side,
        /// Which limit, as the server named it (its reason).
        limit: String,
        /// How long ferry waited, in ms.
        wait_ms: u64,
    },
    /// A step of creating the target mailbox (`--create-target-mailbox`), about to be taken
    /// (the intent) or taken (the outcome). Each step is taken only after asking the target
    /// whether it is done already, so an intent without its outcome is settled by asking.
    Provisioning {
        /// Which step.
        step: ProvisionStep,
        /// The user it is for (its user principal name).
        user: String,
        /// The outcome (`true`) or the intent.
        done: bool,
        /// When.
        at: Millis,
    },
    /// A collection's description, recorded after its `CollectionSeen` when it has one or it
    /// changed (`None`: it has none any more).
    CollectionDescribed {
        /// Which side.
        side: Side,
        /// Its path.
        folder: String,
        /// Its description.
        description: Option<String>,
    },
}

/// A step of creating a target mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProvisionStep {
    /// The user is created.
    CreateUser,
    /// A licence of this SKU (its id) is assigned to the user.
    AssignLicense {
        /// The SKU's id.
        sku: String,
    },
}

impl Event {
    /// The events this record stands for, in order: a batch's events, or itself.
    pub fn flatten(self) -> impl Iterator<Item = Event> {
        match self {
            Event::Batch(events) => events.into_iter(),
            single => vec![single].into_iter(),
        }
    }
}
