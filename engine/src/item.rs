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

/// The properties of a collection that may change after it is made, as ferry carries them
/// from a source collection to its target collection. Journaled apart from [`FolderSpec`]
/// (whose encoding old journals fix, without a description).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CollectionProps {
    /// Its display name.
    pub display_name: Option<String>,
    /// Its colour (`#RRGGBB`).
    pub color: Option<String>,
    /// Its description.
    pub description: Option<String>,
}

impl CollectionProps {
    /// The properties of a collection made with `spec` and described by `description`.
    pub fn of(spec: &FolderSpec, description: Option<&str>) -> CollectionProps {
        CollectionProps {
            display_name: spec.display_name.clone(),
            color: spec.color.clone(),
            description: description.map(str::to_owned),
        }
    }

    /// One property's value.
    pub fn get(&self, prop: CollectionProp) -> Option<&str> {
        match prop {
            CollectionProp::DisplayName => self.display_name.as_deref(),
            CollectionProp::Color => self.color.as_deref(),
            CollectionProp::Description => self.description.as_deref(),
        }
    }

    /// The names of the properties that differ between `self` and `other`.
    pub fn differences(&self, other: &CollectionProps) -> Vec<&'static str> {
        CollectionProp::ALL
            .into_iter()
            .filter(|p| self.get(*p) != other.get(*p))
            .map(CollectionProp::name)
            .collect()
    }

    /// What to change on collection `folder`, which holds `now`, to take it from `self` (what
    /// ferry last set there) to `to`: each property that differs, holds its `self` value now
    /// (or none: like an item missing on the target, a property missing there is set again)
    /// and not its `to` value already (a change redone after a crash). A property holding
    /// anything else was changed on the target behind ferry's back: the words for a conflict,
    /// and nothing is to be changed. A display name ferry left unset shows as the folder's
    /// name; colours compare without case and without an opaque alpha.
    pub fn changes(
        &self,
        to: &CollectionProps,
        now: &CollectionProps,
        folder: &str,
    ) -> Result<Vec<CollectionProp>, String> {
        let (mut changes, mut clashes) = (Vec::new(), Vec::new());
        for prop in CollectionProp::ALL {
            let (was, want, is) = (self.get(prop), to.get(prop), now.get(prop));
            if was == want || same_value(is, want) {
                continue;
            }
            let unnamed =
                prop == CollectionProp::DisplayName && was.is_none() && is == Some(folder);
            if same_value(is, was) || is.is_none() || unnamed {
                changes.push(prop);
            } else {
                let shown =
                    |v: Option<&str>| v.map_or_else(|| "unset".into(), |v| format!("{v:?}"));
                clashes.push(format!(
                    "its {} is {} on the target, not {} as ferry set it",
                    prop.name(),
                    shown(is),
                    shown(was)
                ));
            }
        }
        if clashes.is_empty() {
            Ok(changes)
        } else {
            Err(format!(
                "collection {folder} changed behind ferry's back ({}): its properties are left \
                 as they are",
                clashes.join("; ")
            ))
        }
    }
}

/// A property of a collection that ferry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionProp {
    /// Its display name.
    DisplayName,
    /// Its colour.
    Color,
    /// Its description.
    Description,
}

impl CollectionProp {
    /// Each of them.
    pub const ALL: [CollectionProp; 3] = [
        CollectionProp::DisplayName,
        CollectionProp::Color,
        CollectionProp::Description,
    ];

    /// Its name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            CollectionProp::DisplayName => "display name",
            CollectionProp::Color => "colour",
            CollectionProp::Description => "description",
        }
    }
}

/// Whether two property values are the same (colours compared without case and without an
/// opaque alpha: `#1144aa` is `#1144AAFF`).
pub fn same_value(a: Option<&str>, b: Option<&str>) -> bool {
    let colour = |v: &str| {
        let upper = v.trim().to_ascii_uppercase();
        match upper.strip_suffix("FF") {
            Some(rgb) if upper.len() == 9 => rgb.to_string(),
            _ => upper,
        }
    };
    match (a, b) {
        (Some(a), Some(b)) if a.starts_with('#') && b.starts_with('#') => colour(a) == colour(b),
        _ => a == b,
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
    fn colours_match_without_case_or_opaque_alpha_and_text_exactly() {
        assert!(same_value(Some("#1144aa"), Some("#1144AAFF")));
        assert!(!same_value(Some("#1144aa"), Some("#1144AA80")));
        assert!(!same_value(Some("Work"), Some("work")));
        assert!(same_value(None, None));
        assert!(!same_value(Some("#112233"), None));
    }

    fn props(
        display: Option<&str>,
        color: Option<&str>,
        description: Option<&str>,
    ) -> CollectionProps {
        CollectionProps {
            display_name: display.map(str::to_owned),
            color: color.map(str::to_owned),
            description: description.map(str::to_owned),
        }
    }

    #[test]
    fn changes_are_made_only_from_what_ferry_set_and_a_redone_change_is_nothing() {
        let set = props(Some("Work"), Some("#112233"), None);
        let wanted = props(Some("Arbeit"), Some("#112233"), Some("Team"));
        let changes = set.changes(&wanted, &set, "work").expect("no clash");
        assert_eq!(
            changes,
            vec![CollectionProp::DisplayName, CollectionProp::Description]
        );
        // Done already (a crash after the write): nothing left.
        assert_eq!(set.changes(&wanted, &wanted, "work"), Ok(vec![]));
        // Renamed on the target by someone: nothing changed, the words say what.
        let theirs = props(Some("Mine"), Some("#112233"), None);
        let clash = set.changes(&wanted, &theirs, "work").expect_err("a clash");
        assert!(clash.contains("display name is \"Mine\""), "{clash}");
        // A display name ferry left unset shows as the folder's name.
        let unnamed = props(None, None, None);
        let named = props(Some("Work"), None, None);
        let shown = props(Some("work"), None, None);
        assert_eq!(
            unnamed.changes(&named, &shown, "work"),
            Ok(vec![CollectionProp::DisplayName])
        );
        // Removed on the target (or never kept there): set again, as a missing item is.
        let described = props(Some("Work"), None, Some("Team"));
        let anew = props(Some("Work"), None, Some("Team dates"));
        assert_eq!(
            described.changes(&anew, &named, "work"),
            Ok(vec![CollectionProp::Description])
        );
    }

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
