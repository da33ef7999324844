//! A Maildir++ mailbox on local disk as a [`Store`].
//!
//! Layout (as Courier and Dovecot's default `LAYOUT=maildir++` write it): the root directory is
//! `INBOX` (`root/cur`, `root/new`, `root/tmp`); every other folder is a directory of the root
//! named by its path with `.` for `/` and a leading dot (`Archive/2025` is `.Archive.2025`).
//! Non-ASCII names are modified UTF-7 on disk, as Dovecot writes them (`.Entw&APw-rfe`);
//! reading also accepts raw UTF-8 names, as other tools write them.
//!
//! A message is a file whose unique name is chosen by the writer before the write; its flags
//! live in the file name's info suffix (`<unique>:2,FS`, see `info`). The unique name is the
//! [`NativeId`]: it never changes while the flags do, so an item is found by its name's prefix.
//!
//! Keywords are Dovecot's: lowercase info letters named by the folder's `dovecot-keywords`
//! file, which has 26 slots. A message with keywords beyond the 26 a folder can name is stored
//! without them, as are keywords that are not IMAP atoms; `$Forwarded` is the `P` letter.
//!
//! Symbolic links are never followed inside the tree (the root itself is the path given):
//! message files are opened one directory at a time with `O_NOFOLLOW` (`files`), and a link
//! where a folder directory, its `cur/` or `new/`, a message file or the keywords file should
//! be is reported with the reason, as is every other entry ferry cannot take as it is (a
//! folder directory whose name maps to no folder, a directory in `cur/`, two files with one
//! unique name): see `listing`.
//!
//! Durability: writes are not synced one by one; [`Store::flush`] makes everything written
//! since the previous flush durable with one `syncfs` of the root's file system (`fsync`s of
//! each file and directory where that is unavailable).
//!
//! Disk access is plain blocking `std::fs` inside the async methods: each call is one or a few
//! local system calls (no network, no waiting on other tasks), cheaper than handing every call
//! to a blocking thread pool.
//!
//! Modules: `names` (folder paths ↔ directory names, unique names), `listing` (folders,
//! items, change tokens, what is reported instead of listed), `files` (opening without
//! following links, I/O errors as store errors), `writing` (deliveries, keywords, durability).

mod files;
mod index;
pub mod info;
mod listing;
mod names;
mod writing;

pub use names::folder_dir_name;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use ferry_engine::body::PIECE_BYTES;
use ferry_engine::event::Millis;
use ferry_engine::journal::{ContentHash, ContentKey};
use ferry_engine::{
    AppendProbe, Body, Capabilities, Flags, FolderInfo, FolderKind, FolderSpec, Listing, NativeId,
    Store, StoreError, StoreResult,
};

use files::{io_error, open_beneath, read_error, relative};
use info::INFO_SEP;
use listing::{is_link, linked_folder};
use names::{
    check_id, decode_dir_name, encoded_dir_name, folder_key, is_inbox, raw_dir_name, split_folder,
    unique_hostname, unique_name,
};

/// The empty file Maildir++ puts in every folder directory (not in the root).
const MAILDIRFOLDER: &str = "maildirfolder";

/// A Maildir++ tree as a source or target store. Cheap to clone (shared state): reads and
/// writes of message files run on tokio's blocking threads, so several are in flight at once.
#[derive(Debug, Clone)]
pub struct MaildirStore {
    inner: std::sync::Arc<Inner>,
}

impl std::ops::Deref for MaildirStore {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.inner
    }
}

/// The shared state of a [`MaildirStore`].
#[derive(Debug)]
pub struct Inner {
    /// The root directory (INBOX), absolute.
    root: PathBuf,
    /// The root, held open from `open` on: `syncfs` reports write-back errors that happened
    /// since its descriptor was opened, so one opened at flush time could miss some. Message
    /// files are opened relative to it, never through a link.
    root_dir: File,
    /// This host's name as unique names carry it (`/` and `:` escaped).
    hostname: String,
    /// Per folder used lately (by normalized path): where each unique name was last seen.
    /// Made by scanning the folder when an item is not where the index says (or the folder
    /// is not indexed), kept up to date by this store's own renames.
    index: Mutex<index::Indexes>,
    /// Held while a folder is scanned: threads that find one folder unindexed at once (reads
    /// run in parallel) scan it once, not each.
    scanning: Mutex<()>,
    /// What was written since the last `flush`.
    pending: Mutex<Pending>,
    /// Serializes read-modify-write of `dovecot-keywords` files within this process.
    keywords_lock: Mutex<()>,
    /// Set when a flush failed: the kernel may have dropped written pages, and a later flush
    /// would report success without them, so every later flush fails too.
    flush_failed: Mutex<Option<String>>,
}

/// Which of a folder's directories holds a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    New,
    Cur,
}

impl Sub {
    fn name(self) -> &'static str {
        match self {
            Sub::New => "new",
            Sub::Cur => "cur",
        }
    }
}

/// Where a message file is within its folder directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    sub: Sub,
    file_name: String,
}

impl Location {
    fn path(&self, dir: &Path) -> PathBuf {
        dir.join(self.sub.name()).join(&self.file_name)
    }
}

/// Files and directories to make durable at the next flush.
#[derive(Debug, Default)]
struct Pending {
    files: Vec<PathBuf>,
    dirs: BTreeSet<PathBuf>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty()
    }
}

impl MaildirStore {
    /// Opens the Maildir++ tree at `root`.
    ///
    /// With `create`, a missing root (or one missing `cur/`, `new/`, `tmp/`) is created; an
    /// existing directory that is not a Maildir is turned into one only when it is empty, so a
    /// mistyped path cannot scatter mail directories into, say, a home directory. Without
    /// `create`, a missing root or one without `cur/` or `new/` is [`StoreError::Unusable`].
    pub fn open(root: &Path, create: bool) -> StoreResult<MaildirStore> {
        let root = std::path::absolute(root).map_err(|e| {
            StoreError::Unusable(format!(
                "cannot resolve the Maildir path {}: {e}",
                root.display()
            ))
        })?;
        let shown = root.display();
        match fs::metadata(&root) {
            Ok(meta) if !meta.is_dir() => {
                return Err(StoreError::Unusable(format!(
                    "{shown} is not a directory, so it is not a Maildir"
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::Unusable(format!(
                    "no Maildir at {shown}: the directory does not exist"
                )));
            }
            Err(e) => {
                return Err(StoreError::Unusable(format!(
                    "cannot read the Maildir at {shown}: {e}"
                )));
            }
        }
        let is_maildir = root.join("cur").is_dir() || root.join("new").is_dir();
        if !is_maildir && root.is_dir() {
            if !create {
                return Err(StoreError::Unusable(format!(
                    "{shown} is not a Maildir: it has no cur/ or new/ directory"
                )));
            }
            let mut entries = fs::read_dir(&root).map_err(|e| {
                StoreError::Unusable(format!("cannot read the directory {shown}: {e}"))
            })?;
            if entries.next().is_some() {
                return Err(StoreError::Unusable(format!(
                    "{shown} is not a Maildir and is not empty; refusing to turn it into one \
                     (give a new or empty directory)"
                )));
            }
        }
        if create {
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(root.join(sub)).map_err(|e| {
                    StoreError::Unusable(format!("cannot create the Maildir {shown}/{sub}: {e}"))
                })?;
            }
        }
        let root_dir = File::open(&root)
            .map_err(|e| StoreError::Unusable(format!("cannot open the Maildir {shown}: {e}")))?;
        Ok(MaildirStore {
            inner: std::sync::Arc::new(Inner {
                hostname: unique_hostname(),
                root_dir,
                root,
                index: Mutex::new(index::Indexes::default()),
                scanning: Mutex::new(()),
                pending: Mutex::new(Pending::default()),
                keywords_lock: Mutex::new(()),
                flush_failed: Mutex::new(None),
            }),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of an existing folder (one with a `cur/`, or a damaged one with `new/`).
    /// A folder directory that is a symbolic link is refused (permanently, with the reason):
    /// it is neither read nor written through.
    fn resolve(&self, folder: &str) -> StoreResult<PathBuf> {
        if is_inbox(folder) {
            return Ok(self.root.clone());
        }
        let not_found =
            || StoreError::NotFound(format!("folder {folder:?} in {}", self.root.display()));
        let segments = split_folder(folder).map_err(|_| not_found())?;
        // A folder is on disk under its modified UTF-7 name (as written here and by Dovecot) or
        // its raw UTF-8 name; the raw one counts only if it does not decode to another folder.
        for name in [encoded_dir_name(&segments), raw_dir_name(&segments)] {
            let dir = self.root.join(&name);
            // As in `list_folders`: a damaged folder (cur/ not a directory) still resolves, so
            // its listing can say what is wrong.
            let present = dir.join("cur").exists() || dir.join("new").is_dir();
            if decode_dir_name(&name).as_deref() == Some(folder) && present {
                if is_link(&dir) {
                    return Err(StoreError::Permanent(linked_folder(&dir)));
                }
                return Ok(dir);
            }
        }
        Err(not_found())
    }

    fn lookup(&self, key: &str, id: &str) -> Option<Location> {
        lock(&self.index).get(key, id)
    }

    /// Where message `id` of the folder `key` is now: from a scan of the folder, this thread's
    /// or another's that began after this one found its index stale (`since`). The answer is
    /// taken with the scan, not looked up after it: another folder's scan may let this one's
    /// index go meanwhile.
    fn refresh(
        &self,
        key: &str,
        dir: &Path,
        classify: fn(String, io::Error) -> StoreError,
        id: &str,
    ) -> StoreResult<Option<Location>> {
        let since = lock(&self.index).now();
        let _scanning = lock(&self.scanning);
        {
            let mut index = lock(&self.index);
            if index.scanned(key).is_some_and(|scan| scan > since) {
                return Ok(index.get(key, id));
            }
        }
        let started = lock(&self.index).now();
        let found = self.scan(dir, classify)?;
        let location = found.get(id);
        lock(&self.index).put(key, found, started);
        Ok(location)
    }

    fn remember(&self, key: &str, id: &str, location: Option<Location>) {
        lock(&self.index).remember(key, id, location);
    }

    /// Runs `op` on the file of item `id`, looking it up again once if the index is stale
    /// (the item was renamed by a flag change or moved from `new/` meanwhile). Errors other
    /// than a missing file are made store errors by `classify` ([`io_error`], or
    /// [`read_error`] for reads).
    fn with_item<T>(
        &self,
        folder: &str,
        dir: &Path,
        id: &str,
        classify: fn(String, io::Error) -> StoreError,
        mut op: impl FnMut(&Location) -> io::Result<T>,
    ) -> StoreResult<T> {
        let key = folder_key(folder);
        let not_found = || StoreError::NotFound(format!("message {id} in folder {folder:?}"));
        let mut location = self.lookup(&key, id);
        let mut refreshed = false;
        loop {
            let Some(at) = location.take() else {
                if refreshed {
                    return Err(not_found());
                }
                location = self.refresh(&key, dir, classify, id)?;
                refreshed = true;
                continue;
            };
            match op(&at) {
                Ok(value) => return Ok(value),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if refreshed {
                        return Err(not_found());
                    }
                    location = self.refresh(&key, dir, classify, id)?;
                    refreshed = true;
                }
                Err(e) => {
                    return Err(classify(
                        format!("message file {}", at.path(dir).display()),
                        e,
                    ));
                }
            }
        }
    }

    /// Opens the message file at `location` in the folder directory `dir` for reading, from
    /// the root's open directory without following a link at any step (`files::open_beneath`):
    /// a link, a directory or a special file there is refused with the reason.
    fn open_message(&self, dir: &Path, location: &Location) -> io::Result<File> {
        let rel = relative(&self.root, dir)?
            .join(location.sub.name())
            .join(&location.file_name);
        open_beneath(&self.root_dir, &self.root, &rel)
    }

    fn fetch_blocking(&self, folder: &str, id: &NativeId) -> StoreResult<Body> {
        if id.0.contains(char::REPLACEMENT_CHARACTER) {
            return Err(StoreError::Permanent(format!(
                "the message file {id} in {folder} has a name that is not UTF-8, which no \
                 Maildir writer produces; rename it (keep any ':2,' suffix) and run again"
            )));
        }
        // The entries `list_items` lists only to have them reported (see `listing`).
        if is_inbox(folder) && id.0.starts_with('.') {
            return Err(self.refused_folder(&id.0));
        }
        if id.0.contains('/') {
            return Err(self.refused_double(folder, &id.0));
        }
        check_id(&id.0)
            .map_err(|reason| StoreError::NotFound(format!("message {id}: {reason}")))?;
        let dir = self.resolve(folder)?;
        // A large message is read from its file in pieces as it is copied, not held: the open
        // file stays readable whatever a mail client renames or deletes meanwhile. Either way
        // the file was opened without following a link (`open_message`).
        self.with_item(folder, &dir, &id.0, read_error, |location| {
            let mut file = self.open_message(&dir, location)?;
            let len = file.metadata()?.len();
            if len > PIECE_BYTES as u64 {
                return Body::open_file(file);
            }
            let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            file.read_to_end(&mut bytes)?;
            Ok(Body::from(bytes))
        })
    }
}

#[async_trait]
impl Store for MaildirStore {
    fn describe(&self) -> String {
        format!("maildir:{}", self.root.display())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            change_tokens: true,
            keywords: true,
            rename: true,
            max_message_bytes: None,
            append_many: false,
            fetch_many: false,
            list_many: true,
            update_many: false,
            moves: false,
            remote: false,
            limits: ferry_engine::pacer::Limits::default(),
            kinds: Vec::new(),
            global_ids: false,
        }
    }

    async fn list_folders(&self) -> StoreResult<Vec<FolderInfo>> {
        self.folders()
    }

    async fn list_items(&self, folder: &str, since: Option<&str>) -> StoreResult<Listing> {
        self.items(folder, since)
    }

    async fn fetch(&self, folder: &str, id: &NativeId) -> StoreResult<Body> {
        let this = self.clone();
        let (folder, id) = (folder.to_owned(), id.clone());
        blocking(move || this.fetch_blocking(&folder, &id)).await
    }

    async fn create_folder(&self, folder: &str, spec: &FolderSpec) -> StoreResult<()> {
        if spec.kind != FolderKind::Mail {
            return Err(StoreError::Permanent(format!(
                "{folder}: a Maildir holds mail folders, not a {}",
                spec.kind.name()
            )));
        }
        if is_inbox(folder) {
            return Ok(());
        }
        let segments = split_folder(folder).map_err(|reason| {
            StoreError::Permanent(format!(
                "cannot create folder {folder:?} in a Maildir++ tree: {reason}"
            ))
        })?;
        // Maildir++ needs no parent directories, and ferry mirrors the source's folder list
        // exactly: a parent the source does not have as a folder is not created.
        self.create_one(folder, &segments)?;
        Ok(())
    }

    async fn rename_folder(&self, from: &str, to: &str) -> StoreResult<()> {
        if is_inbox(from) || is_inbox(to) {
            return Err(StoreError::Permanent(format!(
                "cannot rename {from:?} to {to:?}: INBOX is the Maildir's root directory"
            )));
        }
        let segments = split_folder(to).map_err(|reason| {
            StoreError::Permanent(format!("cannot rename folder {from:?} to {to:?}: {reason}"))
        })?;
        let from_dir = match self.resolve(from) {
            Ok(dir) => dir,
            Err(StoreError::NotFound(_)) if self.resolve(to).is_ok() => return Ok(()),
            Err(e) => return Err(e),
        };
        if from == to {
            return Ok(());
        }
        match self.resolve(to) {
            Ok(_) => {
                return Err(StoreError::Permanent(format!(
                    "cannot rename folder {from:?} to {to:?}: {to:?} already exists"
                )));
            }
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        // Only this folder's directory: its children are directories of their own, which the
        // engine renames when their source folders are renamed.
        let to_dir = self.root.join(encoded_dir_name(&segments));
        if is_link(&to_dir) {
            return Err(StoreError::Permanent(linked_folder(&to_dir)));
        }
        fs::rename(&from_dir, &to_dir).map_err(|e| {
            io_error(
                format!("renaming {} to {}", from_dir.display(), to_dir.display()),
                e,
            )
        })?;
        {
            let mut index = lock(&self.index);
            index.forget(&folder_key(from));
            index.forget(&folder_key(to));
        }
        lock(&self.pending).dirs.insert(self.root.clone());
        Ok(())
    }

    async fn delete_folder(&self, folder: &str) -> StoreResult<()> {
        self.delete_one(folder)
    }

    async fn prepare_appends(&self, _folder: &str, count: usize) -> StoreResult<Vec<AppendProbe>> {
        Ok((0..count)
            .map(|_| AppendProbe(unique_name(&self.hostname)))
            .collect())
    }

    async fn append(
        &self,
        folder: &str,
        message: &Body,
        flags: &Flags,
        date: Option<Millis>,
        probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>> {
        let this = self.clone();
        let (folder, message, flags, probe) = (
            folder.to_owned(),
            message.clone(),
            flags.clone(),
            probe.clone(),
        );
        blocking(move || this.append_blocking(&folder, &message, &flags, date, &probe)).await
    }

    async fn set_flags(&self, folder: &str, id: &NativeId, flags: &Flags) -> StoreResult<()> {
        check_id(&id.0)
            .map_err(|reason| StoreError::NotFound(format!("message {id}: {reason}")))?;
        let dir = self.resolve(folder)?;
        let letters = self.letters_for(&dir, flags)?;
        let file_name = format!("{}{INFO_SEP}{letters}", id.0);
        let cur = dir.join("cur");
        let target = cur.join(&file_name);
        let moved_from = self.with_item(folder, &dir, &id.0, io_error, |location| {
            let from = location.path(&dir);
            if from != target {
                fs::rename(&from, &target)?;
            }
            Ok(location.sub)
        })?;
        self.remember(
            &folder_key(folder),
            &id.0,
            Some(Location {
                sub: Sub::Cur,
                file_name,
            }),
        );
        let mut pending = lock(&self.pending);
        pending.dirs.insert(cur);
        if moved_from == Sub::New {
            pending.dirs.insert(dir.join("new"));
        }
        Ok(())
    }

    async fn delete(&self, folder: &str, id: &NativeId) -> StoreResult<()> {
        if check_id(&id.0).is_err() {
            return Ok(()); // no such file can exist
        }
        let dir = match self.resolve(folder) {
            Ok(dir) => dir,
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut removed_from = None;
        let outcome = self.with_item(folder, &dir, &id.0, io_error, |location| {
            fs::remove_file(location.path(&dir))?;
            removed_from = Some(location.sub);
            Ok(())
        });
        match outcome {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        self.remember(&folder_key(folder), &id.0, None);
        if let Some(sub) = removed_from {
            lock(&self.pending).dirs.insert(dir.join(sub.name()));
        }
        Ok(())
    }

    async fn find_appended(
        &self,
        folder: &str,
        probe: &AppendProbe,
        content: &ContentHash,
        key: &ContentKey,
    ) -> StoreResult<Vec<NativeId>> {
        let unique = &probe.0;
        if check_id(unique).is_err() {
            return Ok(Vec::new());
        }
        let dir = match self.resolve(folder) {
            Ok(dir) => dir,
            Err(StoreError::NotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        // A write interrupted before its rename left (part of) the message in tmp/; it never
        // became visible, so it is removed and the write counts as not applied.
        let leftover = dir.join("tmp").join(unique);
        match fs::remove_file(&leftover) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(format!("removing {}", leftover.display()), e)),
        }
        match self.with_item(folder, &dir, unique, io_error, |location| {
            Body::open_file(self.open_message(&dir, location)?)?.hash(key)
        }) {
            Ok(hash) if hash == *content => Ok(vec![NativeId(unique.clone())]),
            // A link (or anything but a file) under that name is not what ferry wrote: its
            // deliveries are regular files. Nothing is read through it.
            Ok(_) | Err(StoreError::NotFound(_) | StoreError::Permanent(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn flush(&self) -> StoreResult<()> {
        let mut failed = lock(&self.flush_failed);
        if let Some(reason) = failed.as_ref() {
            return Err(StoreError::Unusable(reason.clone()));
        }
        let pending = std::mem::take(&mut *lock(&self.pending));
        if pending.is_empty() {
            return Ok(());
        }
        self.sync(&pending).map_err(|e| {
            let reason = format!(
                "making writes to {} durable failed ({e}); writes since the previous flush may \
                 be lost: check the disk, then run again to have them verified",
                self.root.display()
            );
            *failed = Some(reason.clone());
            StoreError::Unusable(reason)
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent across a panic elsewhere (plain inserts and swaps).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs file work on tokio's blocking threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Transient(format!("file worker stopped: {e}")))?
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod refused_tests;
