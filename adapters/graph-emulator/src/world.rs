//! The emulated tenant: one app registration, users, their mailboxes, folders and messages,
//! and the change log every delta query is answered from. Plain data and synchronous
//! operations; the HTTP layer (`api.rs`) turns requests into calls on it, under one lock.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A licence the tenant has bought: `subscribedSkus`
/// (https://learn.microsoft.com/en-us/graph/api/subscribedsku-list).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sku {
    pub sku_id: String,
    pub sku_part_number: String,
    pub enabled: u32,
}

/// A user and their mailbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub upn: String,
    pub display_name: String,
    pub licenses: Vec<String>,
    pub mailbox: Mailbox,
}

/// One mailbox: folders by id, messages by immutable id, and the change sequence.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Mailbox {
    pub folders: BTreeMap<String, Folder>,
    pub messages: HashMap<String, Message>,
    /// A message that left a folder (deleted or moved away), for that folder's delta.
    pub tombstones: Vec<Tombstone>,
    /// Rises by one at every change of the mailbox; a delta token holds the value it was at.
    pub seq: u64,
    /// Delta tokens issued before this value are expired (the service's token cache let them
    /// go): answered 410 Gone.
    pub tokens_valid_from: u64,
    /// Extended properties of folders (calendars, contact folders), by folder id.
    #[serde(default)]
    pub folder_properties: BTreeMap<String, Vec<(String, String)>>,
}

/// A mail folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Folder {
    pub id: String,
    pub display_name: String,
    /// `None` for the root (`msgfolderroot`).
    pub parent: Option<String>,
    pub well_known: Option<String>,
    /// Its folder class (`IPF.Note` for mail, `IPF.Appointment` for a calendar…), the
    /// mailboxFolder `type`.
    #[serde(default = "mail_class")]
    pub class: String,
}

fn mail_class() -> String {
    "IPF.Note".into()
}

fn message_class() -> String {
    "IPM.Note".into()
}

/// A file attached to a message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub is_inline: bool,
    pub bytes: Vec<u8>,
}

/// A message. Its content (subject, addresses, body, attachments) is kept as Exchange keeps
/// it, in properties: its MIME form is made on request (`render::mime`), not stored, except
/// for a message created from MIME, whose bytes are kept and given back with fresh boundaries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// Immutable id (https://learn.microsoft.com/en-us/graph/outlook-immutable-id).
    pub id: String,
    /// How many times it moved: its default (REST) id changes with each move.
    pub moves: u32,
    pub folder: String,
    pub subject: String,
    pub from: Option<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub internet_message_id: String,
    pub body_type: String,
    pub body: String,
    pub attachments: Vec<Attachment>,
    /// The bytes it was created from, when created from MIME.
    pub mime: Option<Vec<u8>>,
    pub is_read: bool,
    pub is_draft: bool,
    pub flag_status: String,
    pub categories: Vec<String>,
    pub received: DateTime<Utc>,
    pub sent: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub change_key: u64,
    /// Extended properties set by clients, by id as given (compared without case).
    pub properties: Vec<(String, String)>,
    /// Its item class (`IPM.Note` for mail, `IPM.Appointment`, `IPM.Contact`…), the
    /// mailboxItem `type`. Items of other classes than mail are reached only through the
    /// import/export API here.
    #[serde(default = "message_class")]
    pub class: String,
    /// PidTagSearchKey (`Binary 0x300B`): given when the message is made, kept by its copies
    /// and by an import of its export stream.
    #[serde(default)]
    pub search_key: Vec<u8>,
    /// The mailbox's `seq` at its last change.
    pub seq: u64,
    /// An event, a contact or a To Do task: its properties as the events, contacts and To Do
    /// APIs show them (`pim.rs`), kept in the item so that its export stream carries them.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
}

/// An e-mail address with its display name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub address: String,
}

/// A message that left `folder` at `seq`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tombstone {
    pub folder: String,
    pub id: String,
    /// Its moves when it left: what its default id was there.
    pub moves: u32,
    pub seq: u64,
}

/// Folders every mailbox has, by well-known name, with their folder class
/// (https://learn.microsoft.com/en-us/graph/api/resources/mailfolder#well-known-folder-names;
/// the others are Exchange's distinguished folders, which the mailbox import/export API
/// lists with their `type`: https://learn.microsoft.com/en-us/graph/api/resources/mailboxfolder).
pub const WELL_KNOWN: &[(&str, &str, &str)] = &[
    ("inbox", "Inbox", "IPF.Note"),
    ("drafts", "Drafts", "IPF.Note"),
    ("sentitems", "Sent Items", "IPF.Note"),
    ("deleteditems", "Deleted Items", "IPF.Note"),
    ("junkemail", "Junk Email", "IPF.Note"),
    ("archive", "Archive", "IPF.Note"),
    ("outbox", "Outbox", "IPF.Note"),
    ("calendar", "Calendar", "IPF.Appointment"),
    ("contacts", "Contacts", "IPF.Contact"),
    ("tasks", "Tasks", "IPF.Task"),
    ("notes", "Notes", "IPF.StickyNote"),
    ("journal", "Journal", "IPF.Journal"),
];

/// MAPI message flags (PidTagMessageFlags, https://learn.microsoft.com/en-us/office/client-developer/outlook/mapi/pidtagmessageflags-canonical-property).
pub const MSGFLAG_READ: u64 = 0x1;
pub const MSGFLAG_UNSENT: u64 = 0x8;
pub const MSGFLAG_HASATTACH: u64 = 0x10;

/// A random id in the alphabet Graph ids use.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = String::from(prefix);
    for _ in 0..40 {
        id.push(ALPHABET[fastrand::usize(..ALPHABET.len())] as char);
    }
    id
}

impl Mailbox {
    /// A mailbox with the well-known folders under its root.
    pub fn new() -> Mailbox {
        let mut mailbox = Mailbox::default();
        let root = new_id("AQMkAGRoot");
        mailbox.folders.insert(
            root.clone(),
            Folder {
                id: root.clone(),
                display_name: "Top of Information Store".into(),
                parent: None,
                well_known: Some("msgfolderroot".into()),
                class: mail_class(),
            },
        );
        for (name, display, class) in WELL_KNOWN {
            let id = new_id("AQMkAGFld");
            mailbox.folders.insert(
                id.clone(),
                Folder {
                    id,
                    display_name: (*display).into(),
                    parent: Some(root.clone()),
                    well_known: Some((*name).into()),
                    class: (*class).into(),
                },
            );
        }
        mailbox
    }

    /// The id of the folder a path segment names: an id or a well-known name (any case).
    pub fn folder_id(&self, name: &str) -> Option<String> {
        if self.folders.contains_key(name) {
            return Some(name.to_string());
        }
        let lower = name.to_ascii_lowercase();
        self.folders
            .values()
            .find(|folder| folder.well_known.as_deref() == Some(lower.as_str()))
            .map(|folder| folder.id.clone())
    }

    pub fn well_known(&self, name: &str) -> String {
        self.folder_id(name).unwrap_or_default()
    }

    /// Children of a folder, by display name then id.
    pub fn children(&self, parent: &str) -> Vec<&Folder> {
        let mut children: Vec<&Folder> = self
            .folders
            .values()
            .filter(|folder| folder.parent.as_deref() == Some(parent))
            .collect();
        children.sort_by(|a, b| (&a.display_name, &a.id).cmp(&(&b.display_name, &b.id)));
        children
    }

    /// Mail folders among the children of a folder: what the mailFolders API shows.
    pub fn mail_children(&self, parent: &str) -> Vec<&Folder> {
        let mut children = self.children(parent);
        children.retain(|folder| folder.is_mail());
        children
    }

    /// Puts an item of another class than mail (an appointment, a contact…) into `folder`
    /// (an id or well-known name), as its user would make it; its id.
    pub fn put_item(
        &mut self,
        folder: &str,
        class: &str,
        subject: &str,
        body: &str,
    ) -> Option<String> {
        let folder = self.folder_id(folder)?;
        let now = Utc::now();
        let mut item = crate::messages::blank_item(&folder, now);
        item.class = class.to_string();
        item.subject = subject.to_string();
        item.body = body.to_string();
        item.is_draft = false;
        item.seq = self.bump();
        let id = item.id.clone();
        self.messages.insert(id.clone(), item);
        Some(id)
    }

    /// Whether `folder` is `ancestor` or below it.
    pub fn is_within(&self, folder: &str, ancestor: &str) -> bool {
        let mut at = Some(folder.to_string());
        while let Some(id) = at {
            if id == ancestor {
                return true;
            }
            at = self.folders.get(&id).and_then(|f| f.parent.clone());
        }
        false
    }

    /// Delivers a MIME message into the folder of that well-known name or display name, as
    /// a mail server would (not a draft, received at `received`); returns its id.
    pub fn deliver(
        &mut self,
        folder: &str,
        bytes: Vec<u8>,
        received: DateTime<Utc>,
    ) -> Result<String, crate::api::Response> {
        let Some(folder) = self.folder_id(folder) else {
            return Err(crate::api::Response::error(
                404,
                "NotFound",
                "No such folder.",
            ));
        };
        let mut message = crate::messages::delivered(bytes, &folder, received)?;
        message.seq = self.bump();
        let id = message.id.clone();
        self.messages.insert(id.clone(), message);
        Ok(id)
    }

    /// Changes a message as its user would (read state, flag, categories): `change` edits it,
    /// then it is recorded as changed, for delta to report.
    pub fn edit(&mut self, id: &str, now: DateTime<Utc>, change: impl FnOnce(&mut Message)) {
        let seq = self.bump();
        if let Some(message) = self.messages.get_mut(id) {
            change(message);
            message.touch(seq, now);
        }
    }

    /// The next change number.
    pub fn bump(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The message a path segment names: its immutable id, or its current default id.
    pub fn message_id(&self, given: &str) -> Option<String> {
        if self.messages.contains_key(given) {
            return Some(given.to_string());
        }
        let (moves, id) = rest_id_parts(given)?;
        let message = self.messages.get(id)?;
        (message.moves == moves).then(|| id.to_string())
    }

    /// Moves a message into `to`: a tombstone in the folder it left, a new default id.
    pub fn relocate(&mut self, id: &str, to: &str, now: DateTime<Utc>) {
        let seq = self.bump();
        if let Some(message) = self.messages.get_mut(id) {
            if message.folder != to {
                self.tombstones.push(Tombstone {
                    folder: message.folder.clone(),
                    id: id.to_string(),
                    moves: message.moves,
                    seq,
                });
                message.folder = to.to_string();
                message.moves += 1;
            }
            message.touch(seq, now);
        }
    }

    /// Removes a message for good.
    pub fn purge(&mut self, id: &str) {
        let seq = self.bump();
        if let Some(message) = self.messages.remove(id) {
            self.tombstones.push(Tombstone {
                folder: message.folder,
                id: id.to_string(),
                moves: message.moves,
                seq,
            });
        }
    }

    /// Messages of a folder sorted by id: a stable order for paging.
    pub fn in_folder(&self, folder: &str) -> Vec<&Message> {
        let mut messages: Vec<&Message> = self
            .messages
            .values()
            .filter(|message| message.folder == folder)
            .collect();
        messages.sort_by(|a, b| a.id.cmp(&b.id));
        messages
    }
}

impl Folder {
    /// Whether it holds mail.
    pub fn is_mail(&self) -> bool {
        self.class == "IPF.Note" || self.class.starts_with("IPF.Note.")
    }
}

impl Message {
    /// Its id as the caller asked for it: immutable when `Prefer: IdType="ImmutableId"`,
    /// otherwise the default id, which changes when it moves.
    pub fn id_for(&self, immutable: bool) -> String {
        if immutable {
            self.id.clone()
        } else {
            format!("AAMkAD{:04x}.{}", self.moves, self.id)
        }
    }

    /// Records a change.
    pub fn touch(&mut self, seq: u64, now: DateTime<Utc>) {
        self.seq = seq;
        self.change_key += 1;
        self.modified = now;
    }

    /// PidTagMessageFlags as Exchange computes it.
    pub fn message_flags(&self) -> u64 {
        let mut flags = 0;
        if self.is_read {
            flags |= MSGFLAG_READ;
        }
        if self.is_draft {
            flags |= MSGFLAG_UNSENT;
        }
        if !self.attachments.is_empty() {
            flags |= MSGFLAG_HASATTACH;
        }
        flags
    }

    /// A property set by a client, by id without regard to case.
    pub fn property(&self, id: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(id))
            .map(|(_, value)| value.as_str())
    }

    /// Sets a client property (replacing one of the same id).
    pub fn set_property(&mut self, id: &str, value: &str) {
        match self
            .properties
            .iter_mut()
            .find(|(name, _)| name.eq_ignore_ascii_case(id))
        {
            Some(slot) => slot.1 = value.to_string(),
            None => self.properties.push((id.to_string(), value.to_string())),
        }
    }
}

/// The parts of a default id: how many moves it was made after, and the immutable id.
fn rest_id_parts(given: &str) -> Option<(u32, &str)> {
    let rest = given.strip_prefix("AAMkAD")?;
    let (moves, id) = rest.split_once('.')?;
    Some((u32::from_str_radix(moves, 16).ok()?, id))
}

/// The tenant: its app registration, users and licences.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub tenant: String,
    pub client_id: String,
    pub users: Vec<User>,
    pub skus: Vec<Sku>,
}

impl Tenant {
    /// A tenant with users whose mailboxes are empty.
    pub fn new(tenant: &str, client_id: &str, upns: &[String]) -> Tenant {
        let mut world = Tenant {
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            users: Vec::new(),
            skus: vec![Sku {
                sku_id: "6fd2c87f-b296-42f0-b197-1e91e994b900".into(),
                sku_part_number: "ENTERPRISEPACK".into(),
                enabled: 25,
            }],
        };
        for upn in upns {
            world.add_user(upn, upn.split('@').next().unwrap_or(upn));
        }
        world
    }

    /// Adds a user with an empty mailbox; its id.
    pub fn add_user(&mut self, upn: &str, display_name: &str) -> String {
        let id = uuid_like();
        self.users.push(User {
            id: id.clone(),
            upn: upn.to_string(),
            display_name: display_name.to_string(),
            licenses: Vec::new(),
            mailbox: Mailbox::new(),
        });
        id
    }

    /// The index of the user a path segment names: id or user principal name (any case).
    pub fn user_index(&self, given: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|user| user.id == given || user.upn.eq_ignore_ascii_case(given))
    }
}

/// A new search key: 16 random bytes.
pub fn new_search_key() -> Vec<u8> {
    (0..16).map(|_| fastrand::u8(..)).collect()
}

/// A random id shaped like a GUID.
pub fn uuid_like() -> String {
    let hex = |n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit(fastrand::u32(..16), 16).unwrap_or('0'))
            .collect()
    };
    format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_message_keeps_its_immutable_id_and_its_default_id_changes() {
        let mut mailbox = Mailbox::new();
        let inbox = mailbox.well_known("inbox");
        let archive = mailbox.well_known("archive");
        let now = Utc::now();
        let message = Message {
            id: new_id("AAkALg"),
            moves: 0,
            folder: inbox.clone(),
            subject: String::new(),
            from: None,
            to: vec![],
            cc: vec![],
            bcc: vec![],
            internet_message_id: String::new(),
            body_type: "text".into(),
            body: String::new(),
            attachments: vec![],
            mime: None,
            is_read: false,
            is_draft: false,
            flag_status: "notFlagged".into(),
            categories: vec![],
            received: now,
            sent: None,
            created: now,
            modified: now,
            change_key: 1,
            properties: vec![],
            class: "IPM.Note".into(),
            search_key: vec![],
            seq: 0,
            json: None,
        };
        let id = message.id.clone();
        let before = message.id_for(false);
        mailbox.messages.insert(id.clone(), message);
        mailbox.relocate(&id, &archive, now);
        let after = mailbox.messages[&id].id_for(false);
        assert_ne!(before, after);
        assert_eq!(mailbox.message_id(&after).as_deref(), Some(id.as_str()));
        assert_eq!(
            mailbox.message_id(&before),
            None,
            "a stale default id is not found"
        );
        assert_eq!(mailbox.message_id(&id).as_deref(), Some(id.as_str()));
        assert_eq!(mailbox.tombstones.len(), 1);
        assert_eq!(mailbox.tombstones[0].folder, inbox);
    }
}
