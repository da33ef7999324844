//! Opens a ferry store from its URI: `maildir:PATH`, `imap[s]://USER@HOST[:PORT]`,
//! `graph://TENANT/USER` or `dav[s]://USER@HOST[:PORT]/PATH`. The one place that knows every protocol crate, so the CLI (and a
//! batch runner later) names a store by its URI and gets a `Store` back.
//!
//! Deliberately absent: any protocol logic. Each protocol lives in its own crate; this one only
//! dispatches on the scheme and turns opening failures into two kinds an operator can act on.

use std::path::{Path, PathBuf};

use ferry_engine::Store;
use ferry_imap::{ImapOptions, ImapStore};
use ferry_maildir::MaildirStore;

/// How a password or token is supplied to a server (never on the command line).
pub use ferry_imap::Secret;

/// How to reach one end.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The password or token of a server, if it needs one.
    pub secret: Option<Secret>,
    /// Extra CA certificates (PEM) to trust, for servers with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Accept any TLS certificate.
    pub insecure: bool,
    /// Open for reading only: the source, or the target of a dry run.
    pub read_only: bool,
    /// Where the run spools large messages (encrypted, unnamed files); the system's temporary
    /// directory when `None`. A value of each run, so runs in one process keep theirs apart.
    pub spool_dir: Option<PathBuf>,
    /// The URI of the migration's other end, when there is one: two Microsoft 365 mailboxes
    /// exchange Exchange's full-fidelity export streams instead of MIME.
    pub peer: Option<String>,
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URI names no store ferry can open: the operator's input is wrong.
    #[error("{0}")]
    Uri(String),
    /// The store is named correctly but cannot be used (missing, unreadable, not a Maildir).
    #[error("{0}")]
    Unusable(String),
}

/// A store opened from its URI, with the warnings its operator must see (plaintext to another
/// machine, certificates not verified).
#[derive(Debug)]
pub struct Opened {
    pub store: Box<dyn Store>,
    pub warnings: Vec<String>,
}

/// The path of a `maildir:` URI, `None` for any other scheme.
pub fn maildir_path(uri: &str) -> Option<&Path> {
    uri.strip_prefix("maildir:").map(Path::new)
}

/// How many connections a store of this URI opens to its server: an IMAP store's pool
/// (`connections=`, 4 unless it says), one for the others.
pub fn connections(uri: &str) -> usize {
    if uri.starts_with("imap") {
        ferry_imap::connections(uri)
    } else {
        1
    }
}

/// Whether the URI names a server (where reads and writes are pipelined).
pub fn is_server(uri: &str) -> bool {
    maildir_path(uri).is_none()
}

/// Opens the store a URI names.
pub fn open(uri: &str, access: &Access) -> Result<Opened, OpenError> {
    if let Some(path) = maildir_path(uri) {
        if path.as_os_str().is_empty() {
            return Err(OpenError::Uri(format!(
                "{uri}: give a path, e.g. maildir:/var/mail/alice"
            )));
        }
        let store = MaildirStore::open(path, !access.read_only)
            .map_err(|error| OpenError::Unusable(format!("{uri}: {error}")))?;
        return Ok(Opened {
            store: Box::new(store),
            warnings: Vec::new(),
        });
    }
    match uri.split_once(':') {
        Some(("imap" | "imaps", _)) => {
            let options = ImapOptions {
                secret: access.secret.clone(),
                ca_file: access.ca_file.clone(),
                insecure: access.insecure,
                read_only: access.read_only,
                spool_dir: access.spool_dir.clone(),
            };
            let store = ImapStore::new(uri, &options).map_err(OpenError::Uri)?;
            let mut warnings = Vec::new();
            if store.plaintext_off_host() {
                warnings.push(format!(
                    "{uri} is plaintext (tls=none) to another machine: the password and every \
                     message cross the network unencrypted"
                ));
            }
            if access.insecure {
                warnings.push(
                    "--insecure: TLS certificates are not verified; anyone on the path can read \
                     the mail and the password"
                        .to_owned(),
                );
            }
            Ok(Opened {
                store: Box::new(store),
                warnings,
            })
        }
        Some(("graph", _)) => {
            let mut store =
                ferry_graph::GraphStore::open(uri, access.secret.clone(), access.read_only)
                    .map_err(|error| OpenError::Uri(error.to_string()))?;
            if access
                .peer
                .as_deref()
                .is_some_and(|peer| peer.starts_with("graph:"))
            {
                store = store.full_fidelity();
            }
            if access
                .peer
                .as_deref()
                .is_some_and(|peer| peer.starts_with("dav:") || peer.starts_with("davs:"))
            {
                store = store.with_calendars();
            }
            Ok(Opened {
                store: Box::new(store),
                warnings: Vec::new(),
            })
        }
        Some(("dav" | "davs", _)) => {
            let store = ferry_dav::DavStore::open(uri, access.secret.clone(), access.read_only)
                .map_err(|error| OpenError::Uri(error.to_string()))?;
            let mut warnings = Vec::new();
            if store.plaintext_off_host() {
                warnings.push(format!(
                    "{} is plain http to another machine: the password and every item cross \
                     the network unencrypted (use davs://)",
                    store.describe()
                ));
            }
            Ok(Opened {
                store: Box::new(store),
                warnings,
            })
        }
        _ => Err(OpenError::Uri(format!(
            "{uri}: not a store URI; use maildir:PATH, imap://USER@HOST, imaps://USER@HOST, \
             graph://TENANT/USER?client_id=APP or dav[s]://USER@HOST/PATH"
        ))),
    }
}

pub mod folders;
pub mod ruled;

/// An empty store that holds nothing and accepts no writes that last: what a plan runs against
/// when the target does not exist yet (a plan must not create it).
pub fn empty(description: &str) -> Box<dyn Store> {
    Box::new(ferry_memory::MemoryStore::new(description, 0))
}

/// How the target describes itself in the journal, without creating or reaching it.
pub fn describe(uri: &str, access: &Access) -> Result<String, OpenError> {
    if let Some(path) = maildir_path(uri) {
        let absolute = std::path::absolute(path).map_err(|error| {
            OpenError::Uri(format!(
                "resolving the Maildir path {}: {error}",
                path.display()
            ))
        })?;
        return Ok(format!("maildir:{}", absolute.display()));
    }
    let read_only = Access {
        read_only: true,
        ..access.clone()
    };
    Ok(open(uri, &read_only)?.store.describe())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(uri: &str) -> String {
        match open(uri, &Access::default()) {
            Ok(_) => panic!("{uri} opened"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn unknown_and_future_schemes_are_named() {
        assert!(error("pop3://alice@host").contains("not a store URI"));
        assert!(error("graph://tenant/alice").contains("client_id"));
        assert!(error("maildir:").contains("give a path"));
    }

    #[test]
    fn a_missing_source_maildir_is_unusable_not_a_bad_uri() {
        let dir = std::env::temp_dir().join(format!("ferry-stores-{}", std::process::id()));
        let uri = format!("maildir:{}", dir.join("missing").display());
        let read_only = Access {
            read_only: true,
            ..Access::default()
        };
        let missing = open(&uri, &read_only);
        assert!(
            matches!(missing, Err(OpenError::Unusable(_))),
            "{missing:?}"
        );
    }

    #[test]
    fn servers_and_directories() {
        assert!(is_server("imaps://alice@mail.example"));
        assert!(!is_server("maildir:/var/mail/alice"));
        assert_eq!(maildir_path("maildir:/a/b"), Some(Path::new("/a/b")));
    }
}
