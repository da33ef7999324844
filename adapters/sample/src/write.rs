//! The writing into Maildir: the folder directories with their `maildirfolder` and
//! `dovecot-keywords` files, the debris a reader must pass over, and files with fixed
//! modification times.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use ferry_maildir::info::{self, Keywords};

use crate::folders::{FOLDERS, RECENT, folder_dir};

/// Creates the directory of every sample folder (with `cur/`, `new/` and `tmp/`), its
/// `maildirfolder` marker and its keywords file; returns the directories and the parsed
/// keywords, in the order of [`FOLDERS`].
pub(crate) fn create_folders(root: &Path) -> io::Result<(Vec<PathBuf>, Vec<Keywords>)> {
    let mut dirs = Vec::with_capacity(FOLDERS.len());
    let mut keywords = Vec::with_capacity(FOLDERS.len());
    for plan in &FOLDERS {
        let dir = folder_dir(root, plan)?;
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        if plan.path != "INBOX" {
            write_file(&dir.join("maildirfolder"), b"", plan.dates.0)?;
        }
        if !plan.keywords.is_empty() {
            write_file(
                &dir.join(info::KEYWORDS_FILE),
                plan.keywords.as_bytes(),
                plan.dates.0,
            )?;
        }
        keywords.push(Keywords::parse(plan.keywords));
        dirs.push(dir);
    }
    Ok((dirs, keywords))
}

/// What real trees also contain and a reader must pass over: a delivery cut short in `tmp/`,
/// and a directory with only `tmp/`, which is not a folder.
pub(crate) fn write_debris(root: &Path, seed: u64) -> io::Result<()> {
    let partial = root
        .join("tmp")
        .join(format!("{}.S{seed}Ipartial.sample", RECENT.0));
    write_file(
        &partial,
        b"Received: from mx.example.net\r\nFrom: cut short",
        RECENT.0,
    )?;
    fs::create_dir_all(root.join(".Lost+Found").join("tmp"))
}

/// Writes a new file with a fixed modification time (Unix seconds): for a message, its
/// internal date, as Maildir readers take it.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mtime: u64) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
}
