//! Listing: which directories of the root are folders, which entries of a folder are
//! messages, and the change token of a folder.
//!
//! Every entry that looks like mail is either listed as what it is or listed so that the
//! report names it with a reason (never left out without a word):
//! - a folder directory whose name maps to no folder path (`..evil`, `.foo..bar`: see
//!   [`unmappable_reason`]) is an item of INBOX whose id is the directory's name, which no
//!   message's unique name can be (it starts with `.`); `fetch` refuses it with the reason;
//! - a folder directory, or its `cur/` or `new/`, that is a symbolic link is listed, and
//!   listing its items fails for that folder alone with the reason (the engine reports the
//!   folder as not listed);
//! - a link, a directory or a special file in `cur/` or `new/` is an item like a message file,
//!   and `fetch` refuses it with the reason (the file is opened without following links);
//! - of two files with one unique name, one is the message and the other an item whose id is
//!   `cur/<file name>` (or `new/...`), which `fetch` refuses with the reason while the file is
//!   there (a file moved from `new/` to `cur/` during the listing is gone by then: nothing to
//!   report).
//!
//! Not messages, and left out: dot files in `cur/` and `new/` (editor and NFS leftovers),
//! `tmp/` (deliveries in progress), and entries of the root that are not directories with a
//! `cur/` or `new/` (Dovecot's files, tmp-only leftovers, links to files or to nothing).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_engine::{Flags, FolderInfo, ItemInfo, Listing, NativeId, StoreError, StoreResult};

use super::files::{LINK, read_error, read_names, to_millis};
use super::index::FolderIndex;
use super::info::{self, Keywords};
use super::names::{
    INBOX, decode_dir_name, folder_key, is_inbox, is_message_file_name, special_use,
    unmappable_reason,
};
use super::{Location, MaildirStore, Sub};

/// How old a directory's modification time must be before it is trusted as a change token:
/// file systems stamp with a coarse clock (a few ms on Linux), so a change in the same tick as
/// a listing could leave the stamp unchanged. Two seconds also covers 1-second stamps.
const STAMP_SETTLE: Duration = Duration::from_secs(2);

/// A directory of the root that holds a folder.
#[derive(Debug)]
struct FolderDir {
    /// Its name in the root, with the leading dot.
    name: String,
    /// Its folder path; `None` when its name maps to none.
    path: Option<String>,
}

/// Why the folder directory `dir` is not read: it is a symbolic link.
pub(super) fn linked_folder(dir: &Path) -> String {
    format!(
        "the folder directory {} is {LINK}: its messages are not copied; put the directory \
         itself in its place (or migrate the Maildir it leads to on its own), and run again",
        dir.display()
    )
}

/// Whether `dir` (a path in the root, perhaps a link) looks like a folder: a `cur/` (even a
/// damaged one, so that listing its items reports the damage) or a `new/` directory. Behind a
/// link this only looks at what exists; nothing there is read.
fn looks_like_folder(dir: &Path) -> bool {
    dir.join("cur").exists() || dir.join("new").is_dir()
}

/// Whether `path` is a symbolic link (not followed).
pub(super) fn is_link(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink())
}

impl MaildirStore {
    /// The root's directories that hold folders: names starting with `.` that look like
    /// folders ([`looks_like_folder`]).
    fn folder_dirs(&self) -> StoreResult<Vec<FolderDir>> {
        let shown = self.root.display();
        let entries =
            fs::read_dir(&self.root).map_err(|e| read_error(format!("listing {shown}"), e))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| read_error(format!("listing {shown}"), e))?;
            let os_name = entry.file_name();
            if !os_name.as_encoded_bytes().starts_with(b".") || !looks_like_folder(&entry.path()) {
                continue;
            }
            let Some(name) = os_name.to_str() else {
                return Err(StoreError::Unusable(format!(
                    "the folder directory {} has a name that is not UTF-8; rename it",
                    entry.path().display()
                )));
            };
            found.push(FolderDir {
                path: decode_dir_name(name),
                name: name.to_owned(),
            });
        }
        Ok(found)
    }

    /// Every folder (see [`ferry_engine::Store::list_folders`]). A folder directory that is a
    /// link is listed: listing its items says why it is not read.
    pub(super) fn folders(&self) -> StoreResult<Vec<FolderInfo>> {
        // Every decoded path and the directory it came from, to refuse ambiguity instead of
        // silently leaving one of two directories (and its mail) out.
        let mut dirs: BTreeMap<String, String> = BTreeMap::new();
        dirs.insert(INBOX.to_owned(), ".".to_owned());
        for dir in self.folder_dirs()? {
            // A name that maps to no folder is an item of INBOX (`unmappable_items`).
            let Some(path) = dir.path else {
                continue;
            };
            let key = folder_key(&path);
            if let Some(other) = dirs.insert(key.clone(), dir.name.clone()) {
                return Err(StoreError::Unusable(format!(
                    "two directories in {} are the folder {key:?}: {other:?} and {:?}; merge \
                     or rename one of them",
                    self.root.display(),
                    dir.name
                )));
            }
        }
        Ok(dirs
            .into_keys()
            .map(|path| FolderInfo {
                special_use: special_use(&path),
                path,
                validity: None,
                unreadable: None,
                spec: Default::default(),
                description: None,
            })
            .collect())
    }

    /// The folder directories whose names map to no folder, as INBOX items for the report:
    /// the id is the directory's name, and [`MaildirStore::refused_folder`] says why.
    /// In name order.
    fn unmappable_items(&self) -> StoreResult<Vec<ItemInfo>> {
        let mut items: Vec<ItemInfo> = self
            .folder_dirs()?
            .into_iter()
            .filter(|dir| dir.path.is_none())
            .map(|dir| ItemInfo {
                id: NativeId(dir.name),
                size: 0,
                flags: Flags::new(),
                date: None,
                keyed: None,
                content: None,
            })
            .collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(items)
    }

    /// Why the INBOX item `name` (from [`MaildirStore::unmappable_items`]) is not read; not
    /// found when no such folder directory is there any more.
    pub(super) fn refused_folder(&self, name: &str) -> StoreError {
        let dir = self.root.join(name);
        let gone =
            || StoreError::NotFound(format!("no folder directory {} any more", dir.display()));
        if name.contains(['/', '\0']) || matches!(name, "." | "..") {
            return gone();
        }
        if decode_dir_name(name).is_some() || !looks_like_folder(&dir) {
            return gone();
        }
        let mut reason = unmappable_reason(&dir.display().to_string());
        if is_link(&dir) {
            reason.push_str(&format!(" (it is also {LINK})"));
        }
        StoreError::Permanent(reason)
    }

    /// Why the item `id` of `folder`, `<cur or new>/<file name>` (from `items`: a second file
    /// with one unique name), is not read; not found when that file is gone.
    pub(super) fn refused_double(&self, folder: &str, id: &str) -> StoreError {
        let gone = || StoreError::NotFound(format!("message {id} in folder {folder:?}"));
        let Some((sub, file_name)) = id.split_once('/') else {
            return gone();
        };
        if !matches!(sub, "cur" | "new") || !is_message_file_name(file_name) {
            return gone();
        }
        let dir = match self.resolve(folder) {
            Ok(dir) => dir,
            Err(e) => return e,
        };
        let path = dir.join(sub).join(file_name);
        if fs::symlink_metadata(&path).is_err() {
            return gone();
        }
        let (unique, _) = info::split_name(file_name);
        StoreError::Permanent(format!(
            "the message file {} has the unique name {unique:?} (its name up to ':2,') of \
             another message file in the folder, so ferry cannot tell them apart and copies \
             only the other one: give this file a new unique name, and run again",
            path.display()
        ))
    }

    /// The items of a folder (see [`ferry_engine::Store::list_items`]).
    pub(super) fn items(&self, folder: &str, since: Option<&str>) -> StoreResult<Listing> {
        let dir = self.resolve(folder)?;
        // The change token is the modification times of new/, cur/ and the keywords file:
        // every delivery, expunge and flag change (a rename in cur/) changes them. A stamp is
        // only trusted once it is older than the clock's coarseness allows a same-tick change
        // to hide behind (Dovecot's maildir code uses the same rule).
        //
        // INBOX also reports the folder directories whose names map to no folder
        // (`unmappable_items`): their names are part of its token, so one that appears changes
        // it. (Not the root's modification time: Dovecot keeps INBOX's index files in the
        // root, so that would change at nearly every read and make every listing a full one.)
        let unmappable = if is_inbox(folder) {
            self.unmappable_items()?
        } else {
            Vec::new()
        };
        let stamp = folder_stamp(&dir).map(|stamp| with_names(stamp, &unmappable));
        if let (Some(since), Some(stamp)) = (since, stamp.as_deref())
            && since == stamp
        {
            return Ok(Listing::Changes {
                changed: Vec::new(),
                flags: Vec::new(),
                gone: Vec::new(),
                token: Some(stamp.to_owned()),
            });
        }
        let keywords_file = dir.join(info::KEYWORDS_FILE);
        let keywords = Keywords::load(&dir)
            .map_err(|e| read_error(format!("reading {}", keywords_file.display()), e))?;
        // Every entry with the file name it was found under; of two with one unique name, one
        // is the message and the other is listed on its own (below). Not a map by unique name:
        // a folder of 30,000 messages is listed at the end of a run that filled it, beside
        // everything the run holds, and a map's nodes cost more than its entries.
        let mut entries: Vec<(Location, ItemInfo)> = Vec::new();
        // new/ before cur/: see `scan`.
        for sub in [Sub::New, Sub::Cur] {
            let sub_dir = dir.join(sub.name());
            match fs::symlink_metadata(&sub_dir) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(StoreError::Permanent(format!(
                        "the folder {folder} is not read: {} is {LINK}; put the directory \
                         itself in its place, and run again",
                        sub_dir.display()
                    )));
                }
                Ok(meta) if !meta.is_dir() => {
                    return Err(StoreError::Permanent(format!(
                        "the folder {folder} is damaged: {} is not a directory; move it \
                         aside and create the directory (Maildir needs cur/, new/ and tmp/)",
                        sub_dir.display()
                    )));
                }
                _ => {}
            }
            let names = read_names(&sub_dir)
                .map_err(|e| read_error(format!("listing {}", sub_dir.display()), e))?;
            entries.reserve_exact(names.len());
            for file_name in names {
                let letters = info::split_name(&file_name).1;
                // Set below, from the file name, which ends as the id's allocation.
                let id = NativeId(String::new());
                let item = if file_name.contains(char::REPLACEMENT_CHARACTER) {
                    // A name that is not UTF-8 (see `read_names`): listed so that `fetch`
                    // reports it, with nothing read from it.
                    ItemInfo {
                        id,
                        size: 0,
                        flags: Flags::new(),
                        date: None,
                        keyed: None,
                        content: None,
                    }
                } else {
                    let path = sub_dir.join(&file_name);
                    // Not followed: a link, a directory, anything that is not a file is listed
                    // all the same (without size and date), and `fetch` says what it is.
                    let meta = match fs::symlink_metadata(&path) {
                        Ok(meta) => meta,
                        // Expunged or moved by another program since the directory was read.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => {
                            return Err(read_error(format!("reading {}", path.display()), e));
                        }
                    };
                    let flags = letters
                        .map(|l| info::parse_flags(l, &keywords))
                        .unwrap_or_default();
                    if meta.is_file() {
                        ItemInfo {
                            id,
                            size: meta.len(),
                            flags,
                            date: meta.modified().ok().map(to_millis),
                            keyed: None,
                            content: None,
                        }
                    } else {
                        ItemInfo {
                            id,
                            size: 0,
                            flags,
                            date: None,
                            keyed: None,
                            content: None,
                        }
                    }
                };
                entries.push((Location { sub, file_name }, item));
            }
        }
        // By unique name, the message first: the entry `scan` keeps ([`prefer`]).
        entries.sort_unstable_by(|(a, _), (b, _)| {
            info::split_name(&a.file_name)
                .0
                .cmp(info::split_name(&b.file_name).0)
                .then_with(|| (a.sub != Sub::Cur).cmp(&(b.sub != Sub::Cur)))
                .then_with(|| a.file_name.cmp(&b.file_name))
        });
        // Files whose unique name another file has (an entry after one with its unique name):
        // listed under `<sub>/<file name>`, their id set now (every other id is still empty).
        for at in 1..entries.len() {
            let unique = |at: usize| info::split_name(&entries[at].0.file_name).0;
            if unique(at - 1) == unique(at) {
                let location = &entries[at].0;
                entries[at].1.id =
                    NativeId(format!("{}/{}", location.sub.name(), location.file_name));
            }
        }
        let mut doubles: Vec<ItemInfo> = Vec::new();
        let mut listed: Vec<ItemInfo> = entries
            .into_iter()
            .filter_map(|(location, mut item)| {
                if !item.id.0.is_empty() {
                    doubles.push(item);
                    return None;
                }
                let unique = info::split_name(&location.file_name).0.len();
                let mut id = location.file_name;
                id.truncate(unique);
                item.id = NativeId(id);
                Some(item)
            })
            .collect();
        listed.extend(doubles);
        listed.extend(unmappable);
        listed.sort_by(|a, b| a.id.cmp(&b.id));
        // Not indexed: the first read or write by id in this folder scans it (`with_item`).
        // The end of a run lists again every folder it filled, and an index kept from each
        // would hold an entry per message copied.
        Ok(Listing::Full {
            items: listed,
            token: stamp,
        })
    }

    /// Reads a folder's message file names (no `stat`): `new/` first, then `cur/`, so that a
    /// message moved from `new/` to `cur/` meanwhile is seen at least once (a later `cur/`
    /// entry replaces the `new/` one). Of two files with one unique name, the one `items`
    /// lists under it.
    pub(super) fn scan(
        &self,
        dir: &Path,
        classify: fn(String, io::Error) -> StoreError,
    ) -> StoreResult<FolderIndex> {
        let mut found = FolderIndex::default();
        for sub in [Sub::New, Sub::Cur] {
            let sub_dir = dir.join(sub.name());
            let names = read_names(&sub_dir)
                .map_err(|e| classify(format!("listing {}", sub_dir.display()), e))?;
            for file_name in names {
                let unique = info::split_name(&file_name).0.to_owned();
                let location = Location { sub, file_name };
                let replace = found
                    .get(&unique)
                    .is_none_or(|held| prefer(&held, &location));
                if replace {
                    found.insert(&unique, location);
                }
            }
        }
        Ok(found)
    }
}

/// Whether `new` (listed after `held`, with the same unique name) is the message rather than
/// `held`: a `cur/` file over a `new/` one (moved meanwhile, or a delivery a reader moved), and
/// within one directory the first name in order, the same one each time.
fn prefer(held: &Location, new: &Location) -> bool {
    held.sub != new.sub || new.file_name < held.file_name
}

/// The change token of a folder directory, or `None` when it cannot be trusted yet.
fn folder_stamp(dir: &Path) -> Option<String> {
    let settled = SystemTime::now().checked_sub(STAMP_SETTLE)?;
    let mut stamp = String::new();
    for part in ["new", "cur", info::KEYWORDS_FILE] {
        let modified = match fs::metadata(dir.join(part)) {
            Ok(meta) => meta.modified().ok()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound && part == info::KEYWORDS_FILE => {
                UNIX_EPOCH
            }
            Err(_) => return None,
        };
        if modified > settled {
            return None;
        }
        let nanos = modified.duration_since(UNIX_EPOCH).ok()?.as_nanos();
        if !stamp.is_empty() {
            stamp.push('.');
        }
        stamp.push_str(&nanos.to_string());
    }
    Some(stamp)
}

/// `stamp` with the ids of `reported` (items listed to be reported, not read) added: none
/// leaves it as it is; else a 64-bit FNV-1a hash of their ids, which is the same in every
/// process and version.
fn with_names(stamp: String, reported: &[ItemInfo]) -> String {
    if reported.is_empty() {
        return stamp;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for item in reported {
        for byte in item.id.0.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{stamp}.r{hash:016x}")
}
