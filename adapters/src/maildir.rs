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
//! Durability: writes are not synced one by one; [`Store::flush`] makes everything written
//! since the previous flush durable with one `syncfs` of the root's file system (`fsync`s of
//! each file and directory where that is unavailable).
//!
//! Disk access is plain blocking `std::fs` inside the async methods: each call is one or a few
//! local system calls (no network, no waiting on other tasks), cheaper than handing every call
//! to a blocking thread pool.

pub(crate) mod info;
use crate::mutf7;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ferry_engine::body::PIECE_BYTES;
use ferry_engine::event::Millis;
use ferry_engine::journal::{ContentHash, ContentKey};
use ferry_engine::{
    AppendProbe, Body, Capabilities, Flags, FolderInfo, ItemInfo, Listing, NativeId, SpecialUse,
    Store, StoreError, StoreResult,
};

use info::{INFO_SEP, Keywords};

/// The folder that is the root directory itself.
const INBOX: &str = "INBOX";

/// The empty file Maildir++ puts in every folder directory (not in the root).
const MAILDIRFOLDER: &str = "maildirfolder";

/// Deliveries by this process, for unique names (the `Q` part).
static DELIVERIES: AtomicU64 = AtomicU64::new(0);

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
    /// since its descriptor was opened, so one opened at flush time could miss some.
    root_dir: File,
    /// This host's name as unique names carry it (`/` and `:` escaped).
    hostname: String,
    /// Per folder (by normalized path): where each unique name was last seen. Refreshed by
    /// `list_items` and whenever an item is not where the index says.
    index: Mutex<HashMap<String, HashMap<String, Location>>>,
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
                index: Mutex::new(HashMap::new()),
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
                return Ok(dir);
            }
        }
        Err(not_found())
    }

    /// Creates one folder directory if it does not exist yet.
    fn create_one(&self, folder: &str, segments: &[&str]) -> StoreResult<()> {
        if self.resolve(folder).is_ok() {
            return Ok(());
        }
        let dir = self.root.join(encoded_dir_name(segments));
        for sub in ["cur", "new", "tmp"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path)
                .map_err(|e| io_error(format!("creating {}", path.display()), e))?;
        }
        let marker = dir.join(MAILDIRFOLDER);
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&marker)
            .map_err(|e| io_error(format!("creating {}", marker.display()), e))?;
        let mut pending = lock(&self.pending);
        pending.dirs.insert(self.root.clone());
        pending.dirs.insert(dir);
        Ok(())
    }

    /// The info letters for `flags` in the folder at `dir`, adding new keywords to its
    /// `dovecot-keywords` file first (so the file names a letter before any message uses it).
    fn letters_for(&self, dir: &Path, flags: &Flags) -> StoreResult<String> {
        let mut keywords = Keywords::default();
        let mut changed = false;
        if flags
            .keywords()
            .all(|k| k.eq_ignore_ascii_case(info::FORWARDED))
        {
            // No Dovecot keyword involved: spare the file read.
            return Ok(info::render_flags(flags, &mut keywords, &mut changed));
        }
        let _guard = lock(&self.keywords_lock);
        keywords = Keywords::load(dir).map_err(|e| {
            io_error(
                format!("reading {}", dir.join(info::KEYWORDS_FILE).display()),
                e,
            )
        })?;
        let letters = info::render_flags(flags, &mut keywords, &mut changed);
        if changed {
            let file = dir.join(info::KEYWORDS_FILE);
            let tmp = dir.join("tmp").join(format!(
                "{}.{}",
                info::KEYWORDS_FILE,
                unique_name(&self.hostname)
            ));
            // Written aside and renamed in place, so a reader never sees half a table.
            let written = fs::write(&tmp, keywords.render()).and_then(|()| fs::rename(&tmp, &file));
            if let Err(e) = written {
                let _ = fs::remove_file(&tmp);
                return Err(io_error(format!("writing {}", file.display()), e));
            }
            let mut pending = lock(&self.pending);
            pending.files.push(file);
            pending.dirs.insert(dir.to_path_buf());
        }
        Ok(letters)
    }

    /// Reads a folder's message file names (no `stat`): `new/` first, then `cur/`, so that a
    /// message moved from `new/` to `cur/` meanwhile is seen at least once (a later `cur/`
    /// entry replaces the `new/` one).
    fn scan(&self, dir: &Path) -> StoreResult<HashMap<String, Location>> {
        let mut found = HashMap::new();
        for sub in [Sub::New, Sub::Cur] {
            for file_name in read_names(&dir.join(sub.name()))? {
                let (unique, _) = info::split_name(&file_name);
                found.insert(unique.to_owned(), Location { sub, file_name });
            }
        }
        Ok(found)
    }

    fn lookup(&self, key: &str, id: &str) -> Option<Location> {
        lock(&self.index).get(key)?.get(id).cloned()
    }

    fn refresh(&self, key: &str, dir: &Path) -> StoreResult<()> {
        let found = self.scan(dir)?;
        lock(&self.index).insert(key.to_owned(), found);
        Ok(())
    }

    fn remember(&self, key: &str, id: &str, location: Option<Location>) {
        let mut index = lock(&self.index);
        let folder = index.entry(key.to_owned()).or_default();
        match location {
            Some(location) => folder.insert(id.to_owned(), location),
            None => folder.remove(id),
        };
    }

    /// Runs `op` on the file of item `id`, looking it up again once if the index is stale
    /// (the item was renamed by a flag change or moved from `new/` meanwhile).
    fn with_item<T>(
        &self,
        folder: &str,
        dir: &Path,
        id: &str,
        mut op: impl FnMut(&Location) -> io::Result<T>,
    ) -> StoreResult<T> {
        let key = folder_key(folder);
        let not_found = || StoreError::NotFound(format!("message {id} in folder {folder:?}"));
        let mut refreshed = false;
        loop {
            let Some(location) = self.lookup(&key, id) else {
                if refreshed {
                    return Err(not_found());
                }
                self.refresh(&key, dir)?;
                refreshed = true;
                continue;
            };
            match op(&location) {
                Ok(value) => return Ok(value),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if refreshed {
                        return Err(not_found());
                    }
                    self.refresh(&key, dir)?;
                    refreshed = true;
                }
                Err(e) => {
                    return Err(io_error(
                        format!("message file {}", location.path(dir).display()),
                        e,
                    ));
                }
            }
        }
    }

    /// Makes `pending` durable: one `syncfs` of the root's filesystem, plus `fsync`s for
    /// whatever lives on another filesystem (a folder that is a mount point or a symlink).
    fn sync(&self, pending: &Pending) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if rustix::fs::syncfs(&self.root_dir).is_ok() {
            use std::os::unix::fs::MetadataExt;
            let root_dev = self.root_dir.metadata()?.dev();
            let elsewhere: BTreeSet<&Path> = pending
                .dirs
                .iter()
                .filter(|dir| {
                    fs::metadata(dir)
                        .map(|m| m.dev() != root_dev)
                        .unwrap_or(true)
                })
                .map(PathBuf::as_path)
                .collect();
            return fsync_each(pending, |dir| elsewhere.contains(dir));
        }
        fsync_each(pending, |_| true)
    }
}

impl MaildirStore {
    fn fetch_blocking(&self, folder: &str, id: &NativeId) -> StoreResult<Body> {
        if id.0.contains(char::REPLACEMENT_CHARACTER) {
            return Err(StoreError::Permanent(format!(
                "the message file {id} in {folder} has a name that is not UTF-8, which no \
                 Maildir writer produces; rename it (keep any ':2,' suffix) and run again"
            )));
        }
        check_id(&id.0)
            .map_err(|reason| StoreError::NotFound(format!("message {id}: {reason}")))?;
        let dir = self.resolve(folder)?;
        // A large message is read from its file in pieces as it is copied, not held: the open
        // file stays readable whatever a mail client renames or deletes meanwhile.
        self.with_item(folder, &dir, &id.0, |location| {
            let mut file = File::open(location.path(&dir))?;
            let len = file.metadata()?.len();
            if len > PIECE_BYTES as u64 {
                return Body::open_file(file);
            }
            let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            file.read_to_end(&mut bytes)?;
            Ok(Body::from(bytes))
        })
    }

    fn append_blocking(
        &self,
        folder: &str,
        message: &Body,
        flags: &Flags,
        date: Option<Millis>,
        probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>> {
        let unique = &probe.0;
        check_id(unique).map_err(|reason| {
            StoreError::Permanent(format!(
                "append probe {unique:?} is not a Maildir unique name: {reason}"
            ))
        })?;
        let mtime = date.map(from_millis).transpose()?;
        let dir = self.resolve(folder)?;
        let tmp_dir = dir.join("tmp");
        let tmp = tmp_dir.join(unique);
        // The Maildir delivery protocol: write into tmp/, then rename into place, so readers
        // see the whole message or nothing.
        let written = write_file(&tmp, message, mtime).or_else(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                // A tree copied without its empty tmp/ directories.
                fs::create_dir_all(&tmp_dir)?;
                write_file(&tmp, message, mtime)
            } else {
                Err(e)
            }
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(format!("writing {}", tmp.display()), e));
        }
        let letters = match self.letters_for(&dir, flags) {
            Ok(letters) => letters,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let file_name = format!("{unique}{INFO_SEP}{letters}");
        let cur = dir.join("cur");
        let target = cur.join(&file_name);
        if let Err(e) = fs::rename(&tmp, &target) {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(
                format!("moving {} to {}", tmp.display(), target.display()),
                e,
            ));
        }
        self.remember(
            &folder_key(folder),
            unique,
            Some(Location {
                sub: Sub::Cur,
                file_name,
            }),
        );
        let mut pending = lock(&self.pending);
        pending.files.push(target);
        pending.dirs.insert(cur);
        Ok(Some(NativeId(unique.clone())))
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
            update_many: false,
            moves: false,
            remote: false,
        }
    }

    async fn list_folders(&self) -> StoreResult<Vec<FolderInfo>> {
        // Every decoded path and the directory it came from, to refuse ambiguity instead of
        // silently leaving one of two directories (and its mail) out.
        let mut dirs: BTreeMap<String, String> = BTreeMap::new();
        dirs.insert(INBOX.to_owned(), ".".to_owned());
        let entries = fs::read_dir(&self.root)
            .map_err(|e| io_error(format!("listing {}", self.root.display()), e))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| io_error(format!("listing {}", self.root.display()), e))?;
            let os_name = entry.file_name();
            if !os_name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            // Only directories with a cur/ (or a new/) are folders: this skips Dovecot's and
            // others' dot files, tmp-only leftovers and other debris. A folder whose cur/ is
            // damaged is still listed, so that listing its items reports the damage.
            let (cur, new) = (entry.path().join("cur"), entry.path().join("new"));
            if !(cur.exists() || new.is_dir()) {
                continue;
            }
            let Some(name) = os_name.to_str() else {
                return Err(StoreError::Unusable(format!(
                    "the folder directory {} has a name that is not UTF-8; rename it",
                    entry.path().display()
                )));
            };
            let Some(path) = decode_dir_name(name) else {
                continue; // `.`-only or empty segments: not a folder name Maildir++ writes
            };
            let key = if is_inbox(&path) {
                INBOX.to_owned()
            } else {
                path
            };
            if let Some(other) = dirs.insert(key.clone(), name.to_owned()) {
                return Err(StoreError::Unusable(format!(
                    "two directories in {} are the folder {key:?}: {other:?} and {name:?}; \
                     merge or rename one of them",
                    self.root.display()
                )));
            }
        }
        Ok(dirs
            .into_keys()
            .map(|path| FolderInfo {
                special_use: special_use(&path),
                path,
                validity: None,
            })
            .collect())
    }

    async fn list_items(&self, folder: &str, since: Option<&str>) -> StoreResult<Listing> {
        let dir = self.resolve(folder)?;
        // The change token is the modification times of new/, cur/ and the keywords file:
        // every delivery, expunge and flag change (a rename in cur/) changes them. A stamp is
        // only trusted once it is older than the clock's coarseness allows a same-tick change
        // to hide behind (Dovecot's maildir code uses the same rule).
        let stamp = folder_stamp(&dir);
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
        let keywords = Keywords::load(&dir).map_err(|e| {
            io_error(
                format!("reading {}", dir.join(info::KEYWORDS_FILE).display()),
                e,
            )
        })?;
        let mut items: BTreeMap<String, (Location, ItemInfo)> = BTreeMap::new();
        // new/ before cur/: see `scan`.
        for sub in [Sub::New, Sub::Cur] {
            let sub_dir = dir.join(sub.name());
            if sub_dir.exists() && !sub_dir.is_dir() {
                return Err(StoreError::Permanent(format!(
                    "the folder {folder} is damaged: {} is not a directory; move it aside and \
                     create the directory (Maildir needs cur/, new/ and tmp/)",
                    sub_dir.display()
                )));
            }
            for file_name in read_names(&sub_dir)? {
                if file_name.contains(char::REPLACEMENT_CHARACTER) {
                    // A name that is not UTF-8 (see `read_names`): listed so that `fetch`
                    // reports it, with nothing read from it.
                    let (unique, _) = info::split_name(&file_name);
                    if !items.contains_key(unique) {
                        items.insert(
                            unique.to_owned(),
                            (
                                Location {
                                    sub,
                                    file_name: file_name.clone(),
                                },
                                ItemInfo {
                                    id: NativeId(unique.to_owned()),
                                    size: 0,
                                    flags: Flags::new(),
                                    date: None,
                                },
                            ),
                        );
                    }
                    continue;
                }
                let path = sub_dir.join(&file_name);
                let meta = match fs::metadata(&path) {
                    Ok(meta) => meta,
                    // Expunged or moved by another program since the directory was read.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_error(format!("reading {}", path.display()), e)),
                };
                if !meta.is_file() {
                    continue;
                }
                let (unique, letters) = info::split_name(&file_name);
                let item = ItemInfo {
                    id: NativeId(unique.to_owned()),
                    size: meta.len(),
                    flags: letters
                        .map(|l| info::parse_flags(l, &keywords))
                        .unwrap_or_default(),
                    date: meta.modified().ok().map(to_millis),
                };
                let location = Location {
                    sub,
                    file_name: file_name.clone(),
                };
                match items.get(unique) {
                    // Two files with one unique name in cur/: keep one, the same one each time.
                    Some((held, _)) if held.sub == sub && held.file_name < file_name => {}
                    _ => {
                        items.insert(unique.to_owned(), (location, item));
                    }
                }
            }
        }
        let mut index = HashMap::with_capacity(items.len());
        let mut listed = Vec::with_capacity(items.len());
        for (unique, (location, item)) in items {
            index.insert(unique, location);
            listed.push(item);
        }
        lock(&self.index).insert(folder_key(folder), index);
        Ok(Listing::Full {
            items: listed,
            token: stamp,
        })
    }

    async fn fetch(&self, folder: &str, id: &NativeId) -> StoreResult<Body> {
        let this = self.clone();
        let (folder, id) = (folder.to_owned(), id.clone());
        blocking(move || this.fetch_blocking(&folder, &id)).await
    }

    async fn create_folder(&self, folder: &str) -> StoreResult<()> {
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
        if self.resolve(to).is_ok() {
            return Err(StoreError::Permanent(format!(
                "cannot rename folder {from:?} to {to:?}: {to:?} already exists"
            )));
        }
        // Only this folder's directory: its children are directories of their own, which the
        // engine renames when their source folders are renamed.
        let to_dir = self.root.join(encoded_dir_name(&segments));
        fs::rename(&from_dir, &to_dir).map_err(|e| {
            io_error(
                format!("renaming {} to {}", from_dir.display(), to_dir.display()),
                e,
            )
        })?;
        {
            let mut index = lock(&self.index);
            index.remove(&folder_key(from));
            index.remove(&folder_key(to));
        }
        lock(&self.pending).dirs.insert(self.root.clone());
        Ok(())
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
        let moved_from = self.with_item(folder, &dir, &id.0, |location| {
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
        let outcome = self.with_item(folder, &dir, &id.0, |location| {
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
        match self.with_item(folder, &dir, unique, |location| {
            Body::open_file(File::open(location.path(&dir))?)?.hash(key)
        }) {
            Ok(hash) if hash == *content => Ok(vec![NativeId(unique.clone())]),
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(Vec::new()),
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

/// `fsync`s the pending files and then the directories (so renames into them are durable)
/// for which `include` says so, by directory. Files and directories that are gone meanwhile
/// (deleted or renamed again) are skipped.
fn fsync_each(pending: &Pending, include: impl Fn(&Path) -> bool) -> io::Result<()> {
    let sync = |path: &Path| match File::open(path).and_then(|f| f.sync_all()) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    for file in &pending.files {
        if file.parent().is_some_and(&include) {
            sync(file)?;
        }
    }
    for dir in &pending.dirs {
        if include(dir) {
            sync(dir)?;
        }
    }
    Ok(())
}

/// Writes a new file with `body` and, when given, its modification time.
fn write_file(path: &Path, body: &Body, mtime: Option<SystemTime>) -> io::Result<()> {
    let mut file = File::create(path)?;
    for piece in body.pieces(PIECE_BYTES) {
        file.write_all(&piece?)?;
    }
    if let Some(mtime) = mtime {
        file.set_modified(mtime)?;
    }
    Ok(())
}

/// The names of the message files in a `new/` or `cur/` directory; none if it is missing.
/// Dot files (editor and NFS leftovers) are not messages.
fn read_names(dir: &Path) -> StoreResult<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(format!("listing {}", dir.display()), e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(format!("listing {}", dir.display()), e))?;
        let os_name = entry.file_name();
        if os_name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        match os_name.into_string() {
            Ok(name) => names.push(name),
            // Listed under its lossy name, so the item is reported (and skipped) by name
            // instead of the whole folder failing: `fetch` refuses such an id with the reason.
            Err(os_name) => names.push(os_name.to_string_lossy().into_owned()),
        }
    }
    Ok(names)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent across a panic elsewhere (plain inserts and swaps).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn is_inbox(folder: &str) -> bool {
    folder.eq_ignore_ascii_case(INBOX)
}

/// The index key of a folder: its path, with INBOX in one spelling.
fn folder_key(folder: &str) -> String {
    if is_inbox(folder) {
        INBOX.to_owned()
    } else {
        folder.to_owned()
    }
}

/// A folder path's segments, or why Maildir++ cannot hold it.
fn split_folder(folder: &str) -> Result<Vec<&str>, String> {
    let segments: Vec<&str> = folder.split('/').collect();
    for segment in &segments {
        if segment.is_empty() {
            return Err("a folder name cannot be empty (the path has an empty segment)".to_owned());
        }
        if segment.contains('.') {
            return Err(format!(
                "{segment:?} contains '.', which Maildir++ uses as its hierarchy separator"
            ));
        }
        if segment.contains('\0') {
            return Err(format!("{segment:?} contains a NUL character"));
        }
    }
    Ok(segments)
}

/// The directory name Maildir++ (and Dovecot) gives a folder: `.` + segments joined by `.`,
/// in modified UTF-7.
fn encoded_dir_name(segments: &[&str]) -> String {
    format!(".{}", mutf7::encode(&segments.join(".")))
}

/// The directory name with the folder name in raw UTF-8, as some tools write it.
fn raw_dir_name(segments: &[&str]) -> String {
    format!(".{}", segments.join("."))
}

/// The directory name for a folder path as this module writes it, or why it has none.
pub(crate) fn folder_dir_name(folder: &str) -> Result<String, String> {
    split_folder(folder).map(|segments| encoded_dir_name(&segments))
}

/// The folder path of a root entry named `.<name>`: modified UTF-7 when it is valid as such,
/// raw UTF-8 otherwise. `None` for names with empty segments.
fn decode_dir_name(dir_name: &str) -> Option<String> {
    let name = dir_name.strip_prefix('.')?;
    let decoded = mutf7::decode(name).unwrap_or_else(|| name.to_owned());
    let segments: Vec<&str> = decoded.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(segments.join("/"))
}

/// The role of a folder, from its name.
fn special_use(path: &str) -> Option<SpecialUse> {
    const NAMES: [(&str, SpecialUse); 7] = [
        (INBOX, SpecialUse::Inbox),
        ("Sent", SpecialUse::Sent),
        ("Drafts", SpecialUse::Drafts),
        ("Trash", SpecialUse::Trash),
        ("Junk", SpecialUse::Junk),
        ("Spam", SpecialUse::Junk),
        ("Archive", SpecialUse::Archive),
    ];
    NAMES
        .iter()
        .find(|(name, _)| path.eq_ignore_ascii_case(name))
        .map(|(_, role)| *role)
}

/// Whether `id` can be a unique name: one file name, without the info separator.
fn check_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        Err("empty")
    } else if id.contains(['/', '\0']) {
        Err("contains '/' or NUL")
    } else if id.contains(':') {
        Err("contains ':', which starts a Maildir info suffix")
    } else if id.starts_with('.') {
        Err("starts with '.'")
    } else {
        Ok(())
    }
}

/// A new unique name, `<secs>.M<micros>P<pid>Q<n>.<host>` as the Maildir spec recommends:
/// time, process and a per-process counter make it unique on this host, the host name across
/// hosts sharing the tree.
fn unique_name(hostname: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = DELIVERIES.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{}P{}Q{n}.{hostname}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id()
    )
}

/// This host's name with `/` and `:` escaped as the Maildir spec says (`\057`, `\072`).
fn unique_hostname() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy();
    let name = if name.is_empty() {
        "localhost".into()
    } else {
        name
    };
    escape_hostname(&name)
}

fn escape_hostname(name: &str) -> String {
    name.replace('/', "\\057").replace(':', "\\072")
}

/// A file time as milliseconds since the epoch (floored, also before 1970).
fn to_millis(time: SystemTime) -> Millis {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => Millis::try_from(after.as_millis()).unwrap_or(Millis::MAX),
        Err(before) => {
            let d = before.duration();
            let ms = Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX);
            -ms - Millis::from(d.subsec_nanos() % 1_000_000 != 0)
        }
    }
}

/// Milliseconds since the epoch as a file time.
fn from_millis(ms: Millis) -> StoreResult<SystemTime> {
    let offset = Duration::from_millis(ms.unsigned_abs());
    let time = if ms >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    time.ok_or_else(|| {
        StoreError::Permanent(format!("date {ms} ms is out of range for a file time"))
    })
}

/// An I/O error as a store error: missing is `NotFound`; refused access, a read-only file
/// system, a too-long name, a too-large file, an occupied rename target are `Permanent`; the
/// rest (a full disk, I/O errors) may pass and are `Transient`.
fn io_error(context: String, e: io::Error) -> StoreError {
    use io::ErrorKind as K;
    match e.kind() {
        K::NotFound => StoreError::NotFound(format!("{context}: {e}")),
        K::PermissionDenied
        | K::ReadOnlyFilesystem
        | K::InvalidFilename
        | K::FileTooLarge
        | K::DirectoryNotEmpty
        | K::AlreadyExists => StoreError::Permanent(format!("{context}: {e}")),
        _ => StoreError::Transient(format!("{context}: {e}")),
    }
}

#[cfg(test)]
mod tests;

/// How old a directory's modification time must be before it is trusted as a change token:
/// file systems stamp with a coarse clock (a few ms on Linux), so a change in the same tick as
/// a listing could leave the stamp unchanged. Two seconds also covers 1-second stamps.
const STAMP_SETTLE: Duration = Duration::from_secs(2);

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

/// Runs file work on tokio's blocking threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Transient(format!("file worker stopped: {e}")))?
}
