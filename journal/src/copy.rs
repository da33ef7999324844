//! A private copy of a journal directory, for reading a journal without writing to it.
//!
//! Opening a store lets fjall repair it: it cuts a torn end off its write-ahead file and trims
//! the file's preallocated room, so even a check would change the journal. A reader that must
//! not write (`verify`, `status`, `report`, `audit`) opens a copy instead, which also works
//! while a migration holds the journal. The tail witness is copied first: it is written only
//! after the records it names are on disk, so a copy taken while a run appends never has a
//! witness ahead of its records.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};
use crate::witness::WITNESS_FILE;

/// Files of a journal directory that a copy leaves out: the lock (held by a running migration)
/// and spool files (unnamed; nothing to copy).
const LEFT_OUT: &[&str] = &["lock"];

/// Copies the journal at `from` into the empty directory `to`.
pub(crate) fn copy_journal(from: &Path, to: &Path) -> Result<()> {
    let witness = from.join(WITNESS_FILE);
    if witness.exists() {
        copy_file(&witness, &to.join(WITNESS_FILE))?;
    }
    copy_tree(from, to, true)?;
    // The store takes its lock file in the copy; the original's stays with its owner.
    fs::File::create(to.join("lock"))
        .map(drop)
        .map_err(|source| Error::Io {
            context: format!("copying the journal into {}", to.display()),
            source,
        })
}

fn copy_tree(from: &Path, to: &Path, top: bool) -> Result<()> {
    let entries = fs::read_dir(from).map_err(|source| Error::Io {
        context: format!("reading the journal directory {}", from.display()),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io {
            context: format!("reading the journal directory {}", from.display()),
            source,
        })?;
        let name = entry.file_name();
        if top && (LEFT_OUT.iter().any(|left| name == *left) || name == WITNESS_FILE) {
            continue;
        }
        let source = entry.path();
        let target = to.join(&name);
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            // Removed meanwhile (a running migration compacts its store): the caller retries.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source_error) => {
                return Err(Error::Io {
                    context: format!("reading {}", source.display()),
                    source: source_error,
                });
            }
        };
        if kind.is_dir() {
            fs::create_dir(&target).map_err(|source_error| Error::Io {
                context: format!("copying the journal into {}", target.display()),
                source: source_error,
            })?;
            copy_tree(&source, &target, false)?;
        } else if kind.is_file() {
            copy_file(&source, &target)?;
        }
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to).map(drop).map_err(|source| Error::Io {
        context: format!("copying {} for reading", from.display()),
        source,
    })
}

/// Whether another process (a running migration) holds the journal at `path` open.
pub(crate) fn in_use(path: &Path) -> bool {
    let Ok(file) = fs::File::open(path.join("lock")) else {
        return false;
    };
    matches!(file.try_lock_shared(), Err(fs::TryLockError::WouldBlock))
}

/// An error about the copy at `copy`, told about the journal at `origin` instead.
pub(crate) fn relocate(error: Error, copy: &Path, origin: &Path) -> Error {
    let swap = |path: std::path::PathBuf| match path.strip_prefix(copy) {
        Ok(rest) => origin.join(rest),
        Err(_) => path,
    };
    let text = |text: String| {
        text.replace(
            copy.to_string_lossy().as_ref(),
            origin.to_string_lossy().as_ref(),
        )
    };
    match error {
        Error::Damaged { path, what } => Error::Damaged {
            path: swap(path),
            what: text(what),
        },
        Error::Storage { path, message } => Error::Storage {
            path: swap(path),
            message: text(message),
        },
        Error::NotAJournal { path } => Error::NotAJournal { path: swap(path) },
        Error::NotFound { path } => Error::NotFound { path: swap(path) },
        Error::Io { context, source } => Error::Io {
            context: text(context),
            source,
        },
        Error::HeadCorrupt { reason } => Error::HeadCorrupt {
            reason: text(reason),
        },
        other => other,
    }
}
