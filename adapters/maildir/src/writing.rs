//! Writing: folder directories, message deliveries (`tmp/` then `cur/`), the keywords file,
//! and making writes durable.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_engine::event::Millis;
use ferry_engine::{AppendProbe, Body, Flags, NativeId, StoreError, StoreResult};

use super::files::{create_new, from_millis, io_error, write_file};
use super::info::{self, INFO_SEP, Keywords};
use super::listing::{is_link, linked_folder};
use super::names::{check_id, encoded_dir_name, folder_key, is_inbox, unique_name};
use super::{MAILDIRFOLDER, MaildirStore, Pending, lock};

impl MaildirStore {
    /// Creates one folder directory if it does not exist yet. A link in its place is not
    /// created through.
    pub(super) fn create_one(&self, folder: &str, segments: &[&str]) -> StoreResult<()> {
        match self.resolve(folder) {
            Ok(_) => return Ok(()),
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let dir = self.root.join(encoded_dir_name(segments));
        if is_link(&dir) {
            return Err(StoreError::Permanent(linked_folder(&dir)));
        }
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

    /// Deletes one folder directory if it holds no message (see [`Store::delete_folder`]):
    /// everything in it is looked at first, and anything but empty `cur/` and `new/`, the
    /// files Maildir++ and Dovecot keep beside them (`maildirfolder`, `dovecot*`) and stale
    /// files in `tmp/` refuses the deletion and leaves the folder as it was. Links are never
    /// followed: a link where a directory or file should be refuses it too. Its subfolders
    /// are directories of their own (`.A.B` beside `.A`), untouched.
    ///
    /// [`Store::delete_folder`]: ferry_engine::Store::delete_folder
    pub(super) fn delete_one(&self, folder: &str) -> StoreResult<()> {
        if is_inbox(folder) {
            return Err(StoreError::Permanent(format!(
                "{folder}: INBOX is the Maildir's root directory; it is never deleted"
            )));
        }
        let dir = match self.resolve(folder) {
            Ok(dir) => dir,
            // Gone already: a repeated deletion.
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let kept = |why: String| StoreError::Permanent(format!("{folder} is kept: {why}"));
        let mut metadata = Vec::new();
        for (path, name, kind) in entries(&dir)? {
            match name.as_str() {
                "cur" | "new" | "tmp" if kind.is_dir() => {}
                "cur" | "new" | "tmp" => {
                    return Err(kept(format!("{} is not a directory", path.display())));
                }
                _ if kind.is_file() && (name == MAILDIRFOLDER || name.starts_with("dovecot")) => {
                    metadata.push(path);
                }
                _ => {
                    return Err(kept(format!(
                        "it holds {}, which is not part of a Maildir folder",
                        path.display()
                    )));
                }
            }
        }
        let messages = entries(&dir.join("cur"))?.len() + entries(&dir.join("new"))?.len();
        if messages > 0 {
            let noun = if messages == 1 { "message" } else { "messages" };
            return Err(kept(format!("it still holds {messages} {noun}")));
        }
        // A file in tmp/ is a delivery in progress until it is 36 hours old (the Maildir rule
        // for cleaning tmp/); an older one is a leftover.
        let mut leftovers = Vec::new();
        for (path, _, kind) in entries(&dir.join("tmp"))? {
            if kind.is_dir() {
                return Err(kept(format!("it holds the directory {}", path.display())));
            }
            let recent = match fs::symlink_metadata(&path).and_then(|meta| meta.modified()) {
                // A time in the future counts as recent.
                Ok(modified) => !matches!(modified.elapsed(), Ok(age) if age >= TMP_DELIVERY),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(format!("looking at {}", path.display()), e)),
            };
            if recent && kind.is_file() {
                return Err(kept(format!(
                    "a message is being delivered into it ({})",
                    path.display()
                )));
            }
            leftovers.push(path);
        }
        // new/ first (deliveries go there), then cur/: rmdir removes only an empty directory,
        // so a message that arrived meanwhile stops the deletion and stays where it is.
        remove_dir(&dir.join("new"))?;
        if let Err(e) = remove_dir(&dir.join("cur")) {
            // The folder stays whole.
            let _ = fs::create_dir(dir.join("new"));
            return Err(e);
        }
        for path in leftovers.iter().chain(&metadata) {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(format!("removing {}", path.display()), e)),
            }
        }
        remove_dir(&dir.join("tmp"))?;
        remove_dir(&dir)?;
        lock(&self.index).forget(&folder_key(folder));
        lock(&self.pending).dirs.insert(self.root.clone());
        Ok(())
    }

    /// The info letters for `flags` in the folder at `dir`, adding new keywords to its
    /// `dovecot-keywords` file first (so the file names a letter before any message uses it).
    pub(super) fn letters_for(&self, dir: &Path, flags: &Flags) -> StoreResult<String> {
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
            let written = create_new(&tmp)
                .and_then(|mut out| out.write_all(keywords.render().as_bytes()))
                .and_then(|()| fs::rename(&tmp, &file));
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

    pub(super) fn append_blocking(
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
        // Not remembered in the index: a copy of 100,000 messages would hold an entry for each
        // for nothing, since nothing looks up what it just wrote. One that is looked up later
        // is found by the rescan a miss makes (`with_item`), which the first lookup in a
        // folder not listed in this run makes anyway.
        let mut pending = lock(&self.pending);
        pending.files.push(target);
        pending.dirs.insert(cur);
        Ok(Some(NativeId(unique.clone())))
    }

    /// Makes `pending` durable: one `syncfs` of the root's filesystem, plus `fsync`s for
    /// whatever lives on another filesystem (a folder that is a mount point).
    pub(super) fn sync(&self, pending: &Pending) -> io::Result<()> {
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

/// How long a file in `tmp/` may be a delivery in progress.
const TMP_DELIVERY: Duration = Duration::from_secs(36 * 3600);

/// The entries of `dir` (none if it does not exist), each with its path, its name and its
/// type as it is (a link is a link, not what it leads to).
fn entries(dir: &Path) -> StoreResult<Vec<(PathBuf, String, fs::FileType)>> {
    let listing = |e: io::Error| io_error(format!("listing {}", dir.display()), e);
    let listed = match fs::read_dir(dir) {
        Ok(listed) => listed,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(listing(e)),
    };
    let mut out = Vec::new();
    for entry in listed {
        let entry = entry.map_err(listing)?;
        let kind = entry.file_type().map_err(listing)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((entry.path(), name, kind));
    }
    Ok(out)
}

/// Removes the empty directory `dir`; one already gone is fine. A directory that is not
/// empty is refused ([`io_error`]: permanent), with what it is.
fn remove_dir(dir: &Path) -> StoreResult<()> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(format!("removing {}", dir.display()), e)),
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
