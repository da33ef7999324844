//! Items that are more than messages: what kind an item is, what kind of collection a folder
//! is, and the stable key and version of an item that changes in place.
//!
//! A message is immutable: its content hash is its identity, and an edit is a new message.
//! Calendars, contacts, tasks and notes are documents that change under a stable key (an iCal
//! or vCard UID, a Graph immutable id) and carry a version (an ETag, a changeKey): where a
//! version is given it decides whether the item changed, and an edit on the source is one
//! update in place on the target, never a copy plus a deletion.

use serde::{Deserialize, Serialize};

/// What an item is.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Kind {
    /// A mail message (RFC 5322).
    #[default]
    Message,
    /// A calendar event (iCalendar VEVENT).
    Event,
    /// A task (VTODO, a To Do task).
    Task,
    /// A contact (vCard).
    Contact,
    /// A note.
    Note,
    /// A journal entry (VJOURNAL).
    Journal,
}

impl Kind {
    /// Its name in the plural, for reports ("the target cannot hold tasks").
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Message => "messages",
            Kind::Event => "events",
            Kind::Task => "tasks",
            Kind::Contact => "contacts",
            Kind::Note => "notes",
            Kind::Journal => "journal entries",
        }
    }
}

/// What a folder holds.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum FolderKind {
    /// Mail.
    #[default]
    Mail,
    /// A calendar (events, and the tasks and journal entries its components allow).
    Calendar,
    /// An address book.
    AddressBook,
    /// A task list.
    TaskList,
    /// Notes.
    Notes,
}

impl FolderKind {
    /// Its name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            FolderKind::Mail => "mail folder",
            FolderKind::Calendar => "calendar",
            FolderKind::AddressBook => "address book",
            FolderKind::TaskList => "task list",
            FolderKind::Notes => "notes folder",
        }
    }
}

/// A folder's kind and properties: what `create_folder` makes on the target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FolderSpec {
    /// What it holds.
    pub kind: FolderKind,
    /// Its display name, when it has one besides its path.
    pub display_name: Option<String>,
    /// Its colour (`#RRGGBB`), when it has one.
    pub color: Option<String>,
    /// The kinds of item it accepts (CalDAV supported-calendar-component-set); empty: those of
    /// its kind.
    pub components: Vec<Kind>,
}

impl FolderSpec {
    /// A mail folder.
    pub fn mail() -> FolderSpec {
        FolderSpec::default()
    }

    /// A collection of `kind` without properties.
    pub fn of(kind: FolderKind) -> FolderSpec {
        FolderSpec {
            kind,
            ..FolderSpec::default()
        }
    }

    /// Whether an item of `kind` belongs in it.
    pub fn accepts(&self, kind: Kind) -> bool {
        if !self.components.is_empty() {
            return self.components.contains(&kind);
        }
        match self.kind {
            FolderKind::Mail => kind == Kind::Message,
            FolderKind::Calendar => matches!(kind, Kind::Event | Kind::Task | Kind::Journal),
            FolderKind::AddressBook => kind == Kind::Contact,
            FolderKind::TaskList => kind == Kind::Task,
            FolderKind::Notes => matches!(kind, Kind::Note | Kind::Journal),
        }
    }
}

/// The stable identity of an item that changes in place, as a listing tells it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Keyed {
    /// Its stable key: an iCalendar or vCard UID, a Graph immutable id. Unique within its
    /// collection; the same key in another collection is another item.
    pub key: String,
    /// Its version (an ETag, a changeKey), when the store gives one: a new version means
    /// new content.
    pub version: Option<String>,
    /// What it is.
    pub kind: Kind,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collection_accepts_its_kinds_or_the_components_it_names() {
        assert!(FolderSpec::mail().accepts(Kind::Message));
        assert!(!FolderSpec::mail().accepts(Kind::Event));
        let calendar = FolderSpec::of(FolderKind::Calendar);
        assert!(calendar.accepts(Kind::Event) && calendar.accepts(Kind::Task));
        assert!(!calendar.accepts(Kind::Contact));
        let events_only = FolderSpec {
            components: vec![Kind::Event],
            ..calendar
        };
        assert!(!events_only.accepts(Kind::Task));
        assert!(FolderSpec::of(FolderKind::AddressBook).accepts(Kind::Contact));
    }
}
