//! Creating a journal atomically (a staging directory renamed into place) and opening one
//! read-only from a private copy.

use super::*;

impl<E> Journal<E> {
    /// Creates a new, empty journal in `path`, which must not exist or be an empty directory.
    ///
    /// Creation is atomic: the journal is made in a staging directory beside `path` and renamed
    /// into place once its header and head are durable, so a process killed at any moment
    /// (during key derivation above all) leaves either no journal or a whole one. Staging
    /// directories left by such a process are removed by the next creation.
    pub fn create(path: &Path, key: &KeySource, options: CreateOptions) -> Result<Journal<E>> {
        let io = |context: String| move |source| Error::Io { context, source };
        if exists(path) {
            return Err(Error::AlreadyExists {
                path: path.to_path_buf(),
            });
        }
        if path.exists() && !is_empty_dir(path) {
            return Err(Error::NotAJournal {
                path: path.to_path_buf(),
            });
        }
        let (parent, name) = split(path)?;
        std::fs::create_dir_all(&parent).map_err(io(format!(
            "creating the directory {} for the journal",
            parent.display()
        )))?;
        remove_stale_staging(&parent, &name);
        let mut suffix = [0_u8; 8];
        key::random_fill(&mut suffix)?;
        let staging = parent.join(format!(
            "{}{}{}",
            name,
            STAGING_MARK,
            suffix
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ));
        std::fs::create_dir(&staging).map_err(io(format!(
            "creating the journal's staging directory {}",
            staging.display()
        )))?;
        let made = Self::create_in(&staging, key, options);
        let (header, data_key, codec) = match made {
            Ok(made) => made,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(error);
            }
        };
        // An empty directory the operator made for the journal is replaced by the new journal.
        if let Err(source) = std::fs::rename(&staging, path) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(Error::Io {
                context: format!("moving the new journal into place at {}", path.display()),
                source,
            });
        }
        File::open(&parent)
            .and_then(|dir| dir.sync_all())
            .map_err(io(format!("flushing the directory {}", parent.display())))?;
        let (db, records, meta) = open_store(path, Background::On)?;
        Ok(Journal::assemble(
            path,
            db,
            records,
            meta,
            header,
            data_key,
            codec,
            Head::EMPTY,
        ))
    }

    /// Writes a new journal's store into `dir` (empty) and closes it.
    fn create_in(
        dir: &Path,
        key: &KeySource,
        options: CreateOptions,
    ) -> Result<(Header, DataKey, RecordCodec)> {
        let (db, _records, meta) = open_store(dir, Background::On)?;
        let mut journal_id = [0_u8; 16];
        key::random_fill(&mut journal_id)?;
        let data_key = DataKey::generate()?;
        let protection = key::new_protection(key, options.kdf)?;
        let wrap_key = key::wrap_key(key, &protection)?;
        let wrapped_key = data_key.wrap(&wrap_key, &Header::wrap_aad(&journal_id))?;
        let header = Header {
            journal_id,
            protection,
            wrapped_key,
        };
        let codec = RecordCodec::new(&data_key.record_key(), journal_id);
        let mut batch = db.batch();
        batch.insert(&meta, HEADER_KEY, header.encode()?);
        batch.insert(&meta, HEAD_KEY, codec.seal_head(&Head::EMPTY)?);
        batch.commit().map_err(|e| Error::storage(dir, e))?;
        db.persist(PersistMode::SyncAll)
            .map_err(|e| Error::storage(dir, e))?;
        Ok((header, data_key, codec))
    }

    /// Opens a journal for reading only: nothing in `path` is written, not even the repairs the
    /// store makes when it opens, and a journal a running migration holds can be read. Reads a
    /// private copy of the directory, taken in a temporary directory beside it (or the system's
    /// when that cannot be written) and removed when the journal is dropped. Appending to it
    /// appends to the copy.
    pub fn open_read_only(path: &Path, key: &KeySource) -> Result<Journal<E>> {
        if !exists(path) {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
            });
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let parent = split(path)?.0;
            let copy = tempfile::Builder::new()
                .prefix(".ferry-read-")
                .tempdir_in(&parent)
                .or_else(|_| tempfile::Builder::new().prefix("ferry-read-").tempdir())
                .map_err(|source| Error::Io {
                    context: "making a directory to read the journal from".into(),
                    source,
                })?;
            let opened = crate::copy::copy_journal(path, copy.path())
                .and_then(|()| Journal::open(copy.path(), key));
            match opened {
                Ok(mut journal) => {
                    if let Some(inner) = Arc::get_mut(&mut journal.inner) {
                        inner.copy = Some(copy);
                        inner.origin = Some(path.to_path_buf());
                    }
                    return Ok(journal);
                }
                // A running migration changed the store while it was copied: copy again.
                Err(Error::Io { .. } | Error::Storage { .. })
                    if attempt < 3 && crate::copy::in_use(path) => {}
                Err(error) => return Err(crate::copy::relocate(error, copy.path(), path)),
            }
        }
    }

    /// Whether another process (a running migration) has the journal at `path` open.
    pub fn in_use(path: &Path) -> bool {
        crate::copy::in_use(path)
    }

    /// Whether `path` holds a journal (or the beginnings of one): `open` tells which.
    pub fn exists(path: &Path) -> bool {
        exists(path)
    }
}

/// Whether `path` holds a journal's store (a whole one or not: `open` tells).
pub(crate) fn exists(path: &Path) -> bool {
    path.join("version").exists() || path.join("lock").exists()
}

pub(super) fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

/// A journal path's parent directory and file name.
pub(super) fn split(path: &Path) -> Result<(PathBuf, String)> {
    let absolute = std::path::absolute(path).map_err(|source| Error::Io {
        context: format!("resolving the journal path {}", path.display()),
        source,
    })?;
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => Ok((parent.to_path_buf(), name.to_string_lossy().into())),
        _ => Err(Error::Io {
            context: format!("{} cannot hold a journal", path.display()),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        }),
    }
}

/// Removes what a creation killed before its rename left in `parent`.
pub(super) fn remove_stale_staging(parent: &Path, name: &str) {
    let prefix = format!("{name}{STAGING_MARK}");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
