//! The IMAP store, source or target, over a pool of pipelined connections.
//!
//! - Native ids are `UIDVALIDITY:UID`, so an id from before a UIDVALIDITY change is never
//!   mistaken for a message after it.
//! - Change tokens are `UIDVALIDITY:HIGHESTMODSEQ:UIDNEXT` with QRESYNC (every change raises
//!   HIGHESTMODSEQ, so the first two tell whether anything changed), else
//!   `UIDVALIDITY:HIGHESTMODSEQ:UIDNEXT:MESSAGES`. One `LIST ... RETURN
//!   (STATUS ...)` (LIST-STATUS) or one STATUS per folder tells whether a folder changed at all;
//!   with QRESYNC a changed folder costs one `EXAMINE "F" (QRESYNC (...))`, plus a FETCH of the
//!   new messages when its UIDNEXT moved; without QRESYNC the folder is listed in full.
//! - With the server's MOVE and UIDPLUS, a message moved between folders is moved on the
//!   target with `UID MOVE`; COMPRESS=DEFLATE is used off this machine and private networks.
//! - Messages are fetched with `UID FETCH uid (BODY.PEEK[])` and stored with APPEND, many in
//!   flight per connection (non-synchronising literals with LITERAL+); UIDPLUS's APPENDUID
//!   names the new message. A write whose reply was lost is looked for from the UIDNEXT the
//!   target had before the write (its append probe).
//! - A connection serves one selected folder at a time. Pipelined commands share it (a read
//!   lock on its `gate`); SELECT and commands whose untagged answers must not mix with others
//!   (LIST, STATUS, full listings) hold it alone (the write lock).
//!
//! Its modules, one seam each:
//! - `uri` (the URI: endpoint, pool size, [`redact`]) and `tls` (the rustls configuration);
//! - `pool` (connections: which one a caller gets, its gate, running commands), `select`
//!   (SELECT/EXAMINE, UIDVALIDITY, what each folder's latest selection said), `status`
//!   (STATUS and change tokens), `ids` (`UIDVALIDITY:UID`);
//! - `listing` (how a folder's messages are listed, planned from STATUS, and what the answers
//!   make), `fetch` (bodies, large ones in pieces into a spool; bodies carried inline by a
//!   listing), `refusal` (a server's NO, BAD or BYE as a `StoreError` kind);
//! - `store` (`impl Store for ImapStore`), handing the work to `folders` (LIST, CREATE,
//!   RENAME, DELETE), `reads` (item listings, fetches) and `writes` (appends, flags,
//!   deletions, moves, finding a write in doubt);
//! - beneath them `conn` (writer and reader tasks), `framer`, `wire`, `session`, `deflate`.

mod conn;
mod deflate;
mod fetch;
mod folders;
mod framer;
mod ids;
mod listing;
mod pool;
mod reads;
mod refusal;
mod select;
mod session;
mod status;
mod store;
mod tls;
mod uri;
mod wire;
mod writes;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use ferry_engine::journal::ContentHash;
use tokio::sync::Notify;

use conn::StatusItems;
use pool::Pool;
use select::Selected;
use session::Caps;
pub use session::{AuthMethod, Endpoint, Secret, Security};
pub use uri::{connections, endpoint, redact};
use wire::Naming;

/// Options of an IMAP store beyond its URI.
#[derive(Debug, Clone)]
pub struct ImapOptions {
    /// The password or token.
    pub secret: Option<Secret>,
    /// Extra trusted CA certificates (PEM), for servers with a private CA.
    pub ca_file: Option<std::path::PathBuf>,
    /// Accept any certificate (tests and emergencies only).
    pub insecure: bool,
    /// Whether ferry only reads (source): folders are opened with EXAMINE.
    pub read_only: bool,
    /// Where large messages are spooled while read in pieces (encrypted, unnamed files): the
    /// run's choice, the system's temporary directory when `None`.
    pub spool_dir: Option<std::path::PathBuf>,
}

/// An IMAP server account.
#[derive(Debug, Clone)]
pub struct ImapStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoint: Endpoint,
    described: String,
    read_only: bool,
    /// Sessions to open at most; lowered when the server refuses more.
    max_connections: AtomicUsize,
    pool: Mutex<Pool>,
    pool_changed: Notify,
    /// From the first session: what the server can do, how it names folders.
    server: Mutex<Option<(Caps, Naming)>>,
    /// Folder figures from the latest folder listing, by path.
    statuses: Mutex<HashMap<String, StatusItems>>,
    /// Keyed hashes of target messages read while settling writes in doubt, by
    /// (folder, UIDVALIDITY, UID), so each is read once per run.
    hashes: Mutex<HashMap<(String, u32, u32), ContentHash>>,
    /// Keywords the target could not keep, reported once per folder.
    dropped_keywords: Mutex<BTreeSet<(String, String)>>,
    /// What the latest SELECT of each folder said, by path, its UIDNEXT raised by every
    /// APPENDUID since: what an append probe needs, on whichever connection, and the
    /// folder's PERMANENTFLAGS.
    selections: Mutex<HashMap<String, Selected>>,
    /// Bodies of small new messages that a change listing carried, by (folder, UIDVALIDITY,
    /// UID), until the read that follows takes them; at most
    /// [`INLINE_BUDGET`](fetch::INLINE_BUDGET) bytes, dropped at the next listing.
    inline: Mutex<HashMap<(String, u32, u32), Vec<u8>>>,
    /// Where large messages are spooled ([`ImapOptions::spool_dir`]).
    spool_dir: Option<std::path::PathBuf>,
}

impl ImapStore {
    /// A store for `uri`; nothing is contacted until it is used.
    pub fn new(uri: &str, options: &ImapOptions) -> Result<ImapStore, String> {
        let endpoint = endpoint(uri, options)?;
        let max_connections = connections(uri);
        let scheme = match endpoint.security {
            Security::Implicit => "imaps",
            _ => "imap",
        };
        let described = format!(
            "{scheme}://{}@{}:{}",
            endpoint.user, endpoint.host, endpoint.port
        );
        Ok(ImapStore {
            inner: Arc::new(Inner {
                endpoint,
                described,
                read_only: options.read_only,
                max_connections: AtomicUsize::new(max_connections),
                pool: Mutex::new(Pool::default()),
                pool_changed: Notify::new(),
                server: Mutex::new(None),
                statuses: Mutex::new(HashMap::new()),
                hashes: Mutex::new(HashMap::new()),
                dropped_keywords: Mutex::new(BTreeSet::new()),
                selections: Mutex::new(HashMap::new()),
                inline: Mutex::new(HashMap::new()),
                spool_dir: options.spool_dir.clone(),
            }),
        })
    }

    /// Whether the connection is plaintext to another machine (worth a warning).
    pub fn plaintext_off_host(&self) -> bool {
        self.inner.endpoint.security == Security::None && !self.inner.endpoint.is_loopback()
    }

    /// Keywords the target could not keep, as (folder, keyword).
    pub fn dropped_keywords(&self) -> Vec<(String, String)> {
        lock(&self.inner.dropped_keywords).iter().cloned().collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
