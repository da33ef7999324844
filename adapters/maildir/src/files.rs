//! File access that never follows a symbolic link, and how I/O errors become store errors.
//!
//! ferry may run as root over Maildirs their users can write: a message file that is a link
//! to `/etc/shadow`, or a folder directory that is a link to another user's Maildir, would
//! make it copy what the user cannot read. So nothing in a Maildir is opened through a link:
//! a message file is opened from the root's open directory one step at a time, each with
//! `O_NOFOLLOW` ([`open_beneath`]), which also holds when a link replaces a file after the
//! listing. A link, a directory or a special file where a file should be is refused with the
//! reason ([`Refused`]), which the report shows; a link that stays inside the tree is refused
//! too (it would show one message twice, and telling "inside" safely would mean following it).

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_engine::body::PIECE_BYTES;
use ferry_engine::event::Millis;
use ferry_engine::{Body, StoreError, StoreResult};
use rustix::fs::{Mode, OFlags};

/// What a symbolic link is told as.
pub(super) const LINK: &str = "a symbolic link; ferry does not follow links in a Maildir, where \
                               one could lead outside the mailbox";

/// An entry ferry does not take as it is, and why. Carried inside an `io::Error`, so that
/// [`io_error`] makes it a permanent failure with its reason.
#[derive(Debug)]
pub(super) struct Refused(pub(super) String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// An `io::Error` that refuses an entry for `reason`.
pub(super) fn refused(reason: impl Into<String>) -> io::Error {
    io::Error::other(Refused(reason.into()))
}

/// Why an entry of this type (as it is, not followed) is not a file ferry reads.
pub(super) fn not_a_file(file_type: fs::FileType) -> String {
    if file_type.is_symlink() {
        format!("{LINK}: put the file itself in its place")
    } else if file_type.is_dir() {
        "a directory, not a file: move it out of the way".to_owned()
    } else {
        "not a regular file (a FIFO, socket or device): move it out of the way".to_owned()
    }
}

/// The flags every read-only open here uses: no link followed, no controlling terminal.
fn read_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY
}

/// Opens `rel`, a path relative to the directory `root` (held open; its path is `root_path`),
/// for reading without following a symbolic link at any step: each directory on the way is
/// opened with `O_NOFOLLOW | O_DIRECTORY` relative to the one before it, the file with
/// `O_NOFOLLOW` and `O_NONBLOCK` (a FIFO cannot block the open). What is not a regular file is
/// refused with the reason.
pub(super) fn open_beneath(root: &File, root_path: &Path, rel: &Path) -> io::Result<File> {
    let mut names: Vec<&OsStr> = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(name) => names.push(name),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a plain path inside the Maildir", rel.display()),
                ));
            }
        }
    }
    let Some((file_name, dirs)) = names.split_last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an empty path names no file",
        ));
    };
    let mut path = root_path.to_path_buf();
    let mut dir: Option<OwnedFd> = None;
    for name in dirs {
        path.push(name);
        let at = match &dir {
            Some(fd) => fd.as_fd(),
            None => root.as_fd(),
        };
        let opened = rustix::fs::openat(at, *name, read_flags() | OFlags::DIRECTORY, Mode::empty());
        match opened {
            Ok(fd) => dir = Some(fd),
            Err(e) => return Err(explain(&path, e, false)),
        }
    }
    path.push(file_name);
    let at = match &dir {
        Some(fd) => fd.as_fd(),
        None => root.as_fd(),
    };
    let opened = rustix::fs::openat(
        at,
        *file_name,
        read_flags() | OFlags::NONBLOCK,
        Mode::empty(),
    );
    let file = File::from(opened.map_err(|e| explain(&path, e, true))?);
    checked(file)
}

/// Opens the file at `path` for reading without following a link in its place (the
/// directories on the way are the caller's to trust); refuses what is not a regular file.
pub(super) fn open_nofollow(path: &Path) -> io::Result<File> {
    let opened = rustix::fs::open(path, read_flags() | OFlags::NONBLOCK, Mode::empty());
    let file = File::from(opened.map_err(|e| explain(path, e, true))?);
    checked(file)
}

/// `file` if it is a regular file, else why it is refused.
fn checked(file: File) -> io::Result<File> {
    let meta = file.metadata()?;
    if meta.is_file() {
        Ok(file)
    } else {
        Err(refused(not_a_file(meta.file_type())))
    }
}

/// The error of an open without following links that failed at `path` (the file itself when
/// `last`, else a directory on the way): a link there is refused with the reason (Linux says
/// ELOOP, the BSDs EMLINK or EFTYPE), and so is a file that is not a regular one (a socket
/// says ENXIO); anything else is the error as it is.
fn explain(path: &Path, e: rustix::io::Errno, last: bool) -> io::Error {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() && last => refused(not_a_file(meta.file_type())),
        Ok(meta) if meta.file_type().is_symlink() => {
            refused(format!("{} is {LINK}", path.display()))
        }
        Ok(meta) if last && !meta.is_file() && !meta.is_dir() => {
            refused(not_a_file(meta.file_type()))
        }
        _ => io::Error::from(e),
    }
}

/// Creates the file at `path`, which must be new (`O_EXCL`: a link put in its place is not
/// followed). A leftover of the same name (an interrupted write of the same unique name, or
/// such a link) is removed first.
pub(super) fn create_new(path: &Path) -> io::Result<File> {
    let create = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    };
    match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            create()
        }
        other => other,
    }
}

/// Writes a new file with `body` and, when given, its modification time.
pub(super) fn write_file(path: &Path, body: &Body, mtime: Option<SystemTime>) -> io::Result<()> {
    let mut file = create_new(path)?;
    for piece in body.pieces(PIECE_BYTES) {
        file.write_all(&piece?)?;
    }
    if let Some(mtime) = mtime {
        file.set_modified(mtime)?;
    }
    Ok(())
}

/// The names of the entries of a `new/` or `cur/` directory; none if it is missing. Dot files
/// (editor and NFS leftovers) are not messages. Names only: what each entry is, the caller
/// finds out without following it.
pub(super) fn read_names(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let os_name = entry?.file_name();
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

/// The path of `dir` relative to `root`, for [`open_beneath`].
pub(super) fn relative<'a>(root: &Path, dir: &'a Path) -> io::Result<&'a Path> {
    dir.strip_prefix(root).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not inside {}", dir.display(), root.display()),
        )
    })
}

/// An I/O error as a store error.
///
/// - An entry refused as it is ([`Refused`]: a link, a directory where a message file should
///   be), a name too long, a file too large, an occupied rename target are `Permanent`: the
///   same thing fails the same way.
/// - Missing is `NotFound`.
/// - Refused access is `Transient`, with what to fix: a permanent failure would skip the item
///   for good, while an administrator who fixes the permissions must see the next run do it.
/// - A read-only file system is `Unusable` and a full disk or quota `Full`: no write can
///   succeed, so the run ends at once with what to fix instead of failing item after item.
/// - The rest (I/O errors) may pass and are `Transient`.
///
/// Reads of the source use [`read_error`].
pub(super) fn io_error(context: String, e: io::Error) -> StoreError {
    use io::ErrorKind as K;
    if let Some(refused) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Refused>())
    {
        return StoreError::Permanent(format!("{context}: {refused}"));
    }
    match e.kind() {
        K::NotFound => StoreError::NotFound(format!("{context}: {e}")),
        K::PermissionDenied => StoreError::Transient(format!(
            "{context}: {e}; fix the permissions: the next run does it"
        )),
        // The whole store cannot take a write: the run ends at once with this, instead of
        // failing item after item.
        K::ReadOnlyFilesystem => StoreError::Unusable(format!(
            "{context}: {e}; make the file system writable, then run the same command again"
        )),
        K::StorageFull | K::QuotaExceeded => StoreError::Full(format!(
            "{context}: {e}; free space (or raise the quota), then run the same command again"
        )),
        K::InvalidFilename | K::FileTooLarge | K::DirectoryNotEmpty | K::AlreadyExists => {
            StoreError::Permanent(format!("{context}: {e}"))
        }
        _ => StoreError::Transient(format!("{context}: {e}")),
    }
}

/// An I/O error while reading (listing a folder, reading a message) as a store error: as
/// [`io_error`], except that refused access is `Permanent`, so that the folder or item is
/// reported at once as unreadable. For a read that skips nothing for good (the engine reads
/// unreadable items and lists unreadable folders again on every run), while a transient error
/// would be retried with backoff for each file and, for a listing, stop the whole run.
pub(super) fn read_error(context: String, e: io::Error) -> StoreError {
    if e.kind() == io::ErrorKind::PermissionDenied {
        return StoreError::Permanent(format!(
            "{context}: {e}; fix the permissions: the next run reads it again"
        ));
    }
    io_error(context, e)
}

/// A file time as milliseconds since the epoch (floored, also before 1970).
pub(super) fn to_millis(time: SystemTime) -> Millis {
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
pub(super) fn from_millis(ms: Millis) -> StoreResult<SystemTime> {
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
