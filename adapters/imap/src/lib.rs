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

mod conn;
mod deflate;
mod framer;
mod session;
mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ferry_engine::body::{Body, PIECE_BYTES, PIECES_IN_FLIGHT, Spool, read_back};
use ferry_engine::event::{Millis, NativeId};
use ferry_engine::flags::Flags;
use ferry_engine::journal::{ContentHash, ContentKey};
use ferry_engine::store::{
    AppendProbe, Capabilities, FolderInfo, ItemInfo, Listing, NewMessage, Store, StoreError,
    StoreResult,
};
use tokio::sync::{Notify, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use conn::{Collect, Done, DoneCode, Outcome, Piece, StatusItems, Untagged};
pub use session::{AuthMethod, Endpoint, Secret, Security};
use session::{Caps, Session};
use wire::Naming;

/// How deep a connection's pipeline may get before another connection is opened.
const PIPELINE_DEPTH: usize = 48;
/// Connections that appends in flight at once are spread over...
const APPEND_CONNECTIONS: usize = 2;
/// ...when one APPEND carries at least this many bytes.
const APPEND_SPREAD_BYTES: usize = 256 << 10;
/// Connections that flag changes and deletions open: each is a few bytes per message, and a
/// session costs more than a kilobyte to open, so the folders' updates take turns on one.
const UPDATE_CONNECTIONS: usize = 1;

/// A change listing asks new messages for their first `INLINE_BYTES` too; a message no
/// larger comes whole with its listing line, and the read that follows needs no FETCH of its
/// own (`Inner::inline`).
const INLINE_BYTES: u32 = 16 << 10;

/// The most bytes the change listings of one exchange may carry that way: the folders whose
/// new messages (at most STATUS UIDNEXT minus the token's UIDNEXT) could exceed it are listed
/// without bodies.
const INLINE_BUDGET: u64 = 4 << 20;

/// Messages read per UID FETCH when hashing a folder's messages to find a write in doubt.
const HASH_BATCH: usize = 16;

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
    /// UID), until the read that follows takes them; at most [`INLINE_BUDGET`] bytes, dropped
    /// at the next listing.
    inline: Mutex<HashMap<(String, u32, u32), Vec<u8>>>,
}

#[derive(Debug, Default)]
struct Pool {
    slots: Vec<Arc<Slot>>,
    opening: usize,
}

/// One connection and what it has selected.
#[derive(Debug)]
struct Slot {
    session: Session,
    gate: Arc<RwLock<()>>,
    selected: Mutex<Option<Selected>>,
    /// Callers that chose this slot and have not finished with it.
    users: AtomicUsize,
}

/// The folder a connection has selected, as SELECT described it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Selected {
    path: String,
    validity: u32,
    uid_next: u32,
    exists: u32,
    highest_modseq: u64,
    permanent_flags: Option<Vec<String>>,
}

impl Slot {
    fn selected(&self, path: &str) -> Option<Selected> {
        let selected = self.selected.lock().unwrap_or_else(|e| e.into_inner());
        selected.as_ref().filter(|s| s.path == path).cloned()
    }

    fn load(&self) -> usize {
        self.users.load(Ordering::Relaxed)
    }
}

/// A slot chosen for work; counts as a user until dropped.
struct Use(Arc<Slot>);

impl Drop for Use {
    fn drop(&mut self) {
        self.0.users.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::ops::Deref for Use {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        &self.0
    }
}

/// A connection with a folder selected, shared with other pipelined commands.
struct Shared {
    slot: Use,
    selected: Selected,
    _gate: OwnedRwLockReadGuard<()>,
}

/// A connection held alone.
struct Alone {
    slot: Use,
    _gate: OwnedRwLockWriteGuard<()>,
}

fn parse_id(id: &NativeId) -> Option<(u32, u32)> {
    let (validity, uid) = id.0.split_once(':')?;
    Some((validity.parse().ok()?, uid.parse().ok()?))
}

/// The UID of `id` in `folder` as selected now (`validity`); not found when the id is not an
/// IMAP id or is from before a UIDVALIDITY change.
fn current_uid(folder: &str, id: &NativeId, validity: u32) -> StoreResult<u32> {
    match parse_id(id) {
        Some((v, uid)) if v == validity => Ok(uid),
        Some((v, _)) => Err(StoreError::NotFound(format!(
            "{folder}: UIDVALIDITY changed from {v} to {validity}; {id} is gone"
        ))),
        None => Err(StoreError::NotFound(format!(
            "{folder}: {id} is not an IMAP id"
        ))),
    }
}

/// The URI with any password in it replaced by `****`, for messages. A string that does not
/// parse as a URI loses whatever stands between `scheme://user:` and `@`.
pub fn redact(uri: &str) -> String {
    if let Ok(mut url) = url::Url::parse(uri) {
        if url.password().is_some() && url.set_password(Some("****")).is_ok() {
            return url.to_string();
        }
        if url.password().is_none() {
            return uri.to_owned();
        }
    }
    let Some(start) = uri.find("://").map(|at| at + 3) else {
        return uri.to_owned();
    };
    let authority_end = uri[start..]
        .find(['/', '?', '#'])
        .map_or(uri.len(), |at| start + at);
    let Some(at) = uri[start..authority_end].rfind('@').map(|at| start + at) else {
        return uri.to_owned();
    };
    match uri[start..at].find(':').map(|colon| start + colon) {
        Some(colon) => format!("{}:****{}", &uri[..colon], &uri[at..]),
        None => uri.to_owned(),
    }
}

fn make_id(validity: u32, uid: u32) -> NativeId {
    NativeId(format!("{validity}:{uid}"))
}

/// Parses `imap://user@host:port/?tls=none&auth=xoauth2&connections=4&timeout=60` or
/// `imaps://...` into an endpoint.
pub fn endpoint(uri: &str, options: &ImapOptions) -> Result<Endpoint, String> {
    let url = url::Url::parse(uri);
    // Every message below names the URI: never with a password someone put in it.
    let uri = &redact(uri);
    let url = url.map_err(|error| format!("{uri}: not a URI: {error}"))?;
    let mut security = match url.scheme() {
        "imaps" => Security::Implicit,
        "imap" => Security::StartTls,
        other => return Err(format!("{uri}: {other}: is not imap: or imaps:")),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{uri}: give a host, e.g. imaps://alice@mail.example.com"))?
        .to_owned();
    let user = percent_encoding::percent_decode_str(url.username())
        .decode_utf8()
        .map_err(|_| format!("{uri}: the user name is not UTF-8"))?
        .into_owned();
    if user.is_empty() {
        return Err(format!("{uri}: give a user, e.g. imaps://alice@{host}"));
    }
    if url.password().is_some() {
        return Err(format!(
            "{uri}: never put a password in the URI; use --from-password-file / \
             --to-password-file or FERRY_FROM_PASSWORD / FERRY_TO_PASSWORD"
        ));
    }
    let mut auth = AuthMethod::Password;
    let mut timeout = Duration::from_secs(60);
    let mut compress = None;
    let mut utf8 = true;
    for (key, value) in url.query_pairs() {
        match (key.as_ref(), value.as_ref()) {
            ("tls", "none") if security == Security::StartTls => security = Security::None,
            ("tls", "starttls") if security == Security::StartTls => {}
            ("tls", other) => {
                return Err(format!(
                    "{uri}: tls={other} is not understood; imap:// uses STARTTLS, \
                     ?tls=none allows plaintext, imaps:// is TLS from the start"
                ));
            }
            ("auth", method) => {
                auth = match method.to_ascii_lowercase().as_str() {
                    "login" => AuthMethod::Login,
                    "plain" => AuthMethod::Plain,
                    "xoauth2" => AuthMethod::XOAuth2,
                    "oauthbearer" => AuthMethod::OAuthBearer,
                    other => {
                        return Err(format!(
                            "{uri}: auth={other} is not one of login, plain, xoauth2, oauthbearer"
                        ));
                    }
                }
            }
            ("timeout", secs) => {
                let secs: u64 =
                    secs.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!("{uri}: timeout={secs} is not a number of seconds")
                    })?;
                timeout = Duration::from_secs(secs);
            }
            ("connections", _) => {}
            ("compress", "yes") => compress = Some(true),
            ("compress", "no") => compress = Some(false),
            ("compress", other) => {
                return Err(format!(
                    "{uri}: compress={other} is not understood; compress=yes asks for \
                     COMPRESS=DEFLATE whenever the server offers it, compress=no never (by \
                     default: unless the server is on this machine or a private network)"
                ));
            }
            ("utf8", "yes") => utf8 = true,
            ("utf8", "no") => utf8 = false,
            ("utf8", other) => {
                return Err(format!(
                    "{uri}: utf8={other} is not understood; by default (utf8=yes) UTF8=ACCEPT \
                     is enabled when the server offers it, utf8=no never"
                ));
            }
            (other, _) => return Err(format!("{uri}: unknown option {other}")),
        }
    }
    let port = url.port().unwrap_or(match security {
        Security::Implicit => 993,
        _ => 143,
    });
    let mut endpoint = Endpoint {
        host,
        port,
        security,
        user,
        secret: options.secret.clone(),
        auth,
        tls: tls_config(options)?,
        timeout,
        compress: false,
        utf8,
    };
    endpoint.compress = compress.unwrap_or_else(|| !endpoint.is_nearby());
    Ok(endpoint)
}

fn tls_config(options: &ImapOptions) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS set-up: {error}"))?;
    if options.insecure {
        return Ok(Arc::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = &options.ca_file {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|error| format!("--ca-file {}: {error}", path.display()))?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|error| format!("--ca-file {}: {error}", path.display()))?;
            roots
                .add(cert)
                .map_err(|error| format!("--ca-file {}: {error}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "--ca-file {}: no certificate in it",
                path.display()
            ));
        }
    }
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// `--insecure`: any certificate is accepted; signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl ImapStore {
    /// A store for `uri`; nothing is contacted until it is used.
    pub fn new(uri: &str, options: &ImapOptions) -> Result<ImapStore, String> {
        let endpoint = endpoint(uri, options)?;
        let max_connections = url::Url::parse(uri)
            .ok()
            .and_then(|url| {
                url.query_pairs()
                    .find(|(k, _)| k == "connections")
                    .and_then(|(_, v)| v.parse::<usize>().ok())
            })
            .unwrap_or(4)
            .clamp(1, 32);
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

impl Inner {
    /// Remembers keywords the target could not keep, for [`Store::notices`].
    fn note_dropped(&self, folder: &str, dropped: Vec<String>) {
        if !dropped.is_empty() {
            let mut seen = lock(&self.dropped_keywords);
            for keyword in dropped {
                seen.insert((folder.to_owned(), keyword));
            }
        }
    }

    /// The folder's PERMANENTFLAGS as last selected.
    fn permanent_flags(&self, folder: &str) -> Option<Vec<String>> {
        lock(&self.selections)
            .get(folder)
            .and_then(|selected| selected.permanent_flags.clone())
    }

    fn caps(&self) -> Caps {
        lock(&self.server)
            .as_ref()
            .map(|(caps, _)| caps.clone())
            .unwrap_or_default()
    }

    fn naming(&self) -> Naming {
        lock(&self.server)
            .as_ref()
            .map(|(_, naming)| naming.clone())
            .unwrap_or(Naming {
                prefix: String::new(),
                delimiter: Some('/'),
                utf8: false,
            })
    }

    fn server_name(&self, path: &str) -> StoreResult<Vec<u8>> {
        self.naming().to_server(path).map_err(StoreError::Permanent)
    }

    /// Picks a connection: for `folder`, one that has it selected and is not too busy, else an
    /// idle one, else a new one; for any folder, the least busy.
    async fn slot(&self, folder: Option<&str>) -> StoreResult<Use> {
        let spread = if folder.is_some() { usize::MAX } else { 1 };
        self.slot_spread(folder, spread).await
    }

    /// [`Inner::slot`], except that while fewer than `spread` connections are open, a busy one
    /// is not shared: another is opened. Past that, a new one is opened only when every
    /// pipeline is full.
    async fn slot_spread(&self, folder: Option<&str>, spread: usize) -> StoreResult<Use> {
        loop {
            let open = {
                let mut pool = lock(&self.pool);
                pool.slots.retain(|s| !s.session.conn.is_dead());
                let can_open =
                    pool.slots.len() + pool.opening < self.max_connections.load(Ordering::Relaxed);
                let least = pool.slots.iter().min_by_key(|s| s.load()).cloned();
                let with_folder = folder.and_then(|f| {
                    pool.slots
                        .iter()
                        .filter(|s| s.selected(f).is_some())
                        .min_by_key(|s| s.load())
                        .cloned()
                });
                // Below `spread` connections a busy one is not shared: another is opened.
                let eager = can_open && pool.slots.len() + pool.opening < spread;
                let pick = match (&with_folder, &least) {
                    (Some(s), _) if s.load() < PIPELINE_DEPTH => Some(s.clone()),
                    (_, Some(s)) if s.load() == 0 => Some(s.clone()),
                    (_, Some(s)) if folder.is_none() && s.load() < PIPELINE_DEPTH && !eager => {
                        Some(s.clone())
                    }
                    _ if eager => None,
                    // Work for any folder opens another when every pipeline is full.
                    _ if can_open && folder.is_none() => None,
                    (Some(s), _) => Some(s.clone()),
                    (None, Some(s)) => Some(s.clone()),
                    (None, None) => None,
                };
                match pick {
                    Some(slot) => {
                        slot.users.fetch_add(1, Ordering::Relaxed);
                        return Ok(Use(slot));
                    }
                    None if can_open => {
                        pool.opening += 1;
                        true
                    }
                    None => false,
                }
            };
            if !open {
                self.pool_changed.notified().await;
                continue;
            }
            let opened = session::open(&self.endpoint).await;
            let mut pool = lock(&self.pool);
            pool.opening -= 1;
            self.pool_changed.notify_waiters();
            let session = match opened {
                Ok(session) => session,
                Err(error @ StoreError::Throttled { .. }) if !pool.slots.is_empty() => {
                    // The server allows no more sessions: live with those open. The refusal
                    // still reaches the executor once, which backs off and journals it.
                    let live = pool.slots.len();
                    self.max_connections.fetch_min(live, Ordering::Relaxed);
                    return Err(error);
                }
                Err(error) => return Err(error),
            };
            {
                let mut server = lock(&self.server);
                if server.is_none() {
                    *server = Some((
                        session.caps.clone(),
                        Naming {
                            prefix: session.prefix.clone(),
                            delimiter: session.delimiter,
                            utf8: session.caps.utf8,
                        },
                    ));
                }
            }
            let slot = Arc::new(Slot {
                session,
                gate: Arc::new(RwLock::new(())),
                selected: Mutex::new(None),
                users: AtomicUsize::new(1),
            });
            pool.slots.push(slot.clone());
            return Ok(Use(slot));
        }
    }

    /// Raises the UIDNEXT the latest SELECT of `folder` said (what append probes read),
    /// after an append that the server numbered `uid`.
    fn appended(&self, folder: &str, validity: u32, uid: u32) {
        if let Some(selected) = lock(&self.selections).get_mut(folder)
            && selected.validity == validity
        {
            selected.uid_next = selected.uid_next.max(uid.saturating_add(1));
        }
    }

    /// A connection for commands that need no selected folder and may be pipelined.
    async fn any(&self) -> StoreResult<(Use, OwnedRwLockReadGuard<()>)> {
        self.any_spread(1).await
    }

    /// [`Inner::any`] over up to `spread` connections.
    async fn any_spread(&self, spread: usize) -> StoreResult<(Use, OwnedRwLockReadGuard<()>)> {
        let slot = self.slot_spread(None, spread).await?;
        let gate = slot.gate.clone().read_owned().await;
        Ok((slot, gate))
    }

    /// A connection held alone, with no particular folder.
    async fn alone(&self) -> StoreResult<Alone> {
        let slot = self.slot(None).await?;
        let gate = slot.gate.clone().write_owned().await;
        Ok(Alone { slot, _gate: gate })
    }

    /// A connection with `folder` selected, shared.
    async fn shared(&self, folder: &str) -> StoreResult<Shared> {
        self.shared_spread(folder, usize::MAX).await
    }

    /// [`Inner::shared`] on at most `spread` connections (see [`Inner::slot_spread`]).
    async fn shared_spread(&self, folder: &str, spread: usize) -> StoreResult<Shared> {
        let slot = self.slot_spread(Some(folder), spread).await?;
        let gate = slot.gate.clone().read_owned().await;
        if let Some(selected) = slot.selected(folder) {
            return Ok(Shared {
                slot,
                selected,
                _gate: gate,
            });
        }
        drop(gate);
        let gate = slot.gate.clone().write_owned().await;
        let selected = match slot.selected(folder) {
            Some(selected) => selected,
            None => self.select(&slot, folder).await?,
        };
        Ok(Shared {
            slot,
            selected,
            _gate: gate.downgrade(),
        })
    }

    /// A connection with `folder` selected, held alone.
    async fn exclusive(&self, folder: &str) -> StoreResult<(Alone, Selected)> {
        let slot = self.slot(Some(folder)).await?;
        let gate = slot.gate.clone().write_owned().await;
        // Listings and hash lookups run here: QRESYNC, if still to enable, goes out with the
        // SELECT (in the same round trip), which then reports HIGHESTMODSEQ.
        // Selected again even when it is, for fresh figures (UIDNEXT, HIGHESTMODSEQ).
        let (enabled, selected) =
            futures::future::join(enable_pending(&slot), self.select(&slot, folder)).await;
        enabled?;
        Ok((Alone { slot, _gate: gate }, selected?))
    }

    /// SELECT (target) or EXAMINE (source); the caller holds the connection alone.
    async fn select(&self, slot: &Slot, folder: &str) -> StoreResult<Selected> {
        let pieces = self.select_command(&slot.session.caps, folder, None)?;
        *lock(&slot.selected) = None;
        let done = run(slot, pieces, Collect::All).await?;
        let selected = self.selected_from(folder, &done)?;
        *lock(&slot.selected) = Some(selected.clone());
        Ok(selected)
    }

    fn select_verb(&self) -> &'static str {
        if self.read_only { "EXAMINE" } else { "SELECT" }
    }

    /// SELECT or EXAMINE of `folder`; with `since` (QRESYNC), also asking for the changes
    /// since that UIDVALIDITY and HIGHESTMODSEQ.
    fn select_command(
        &self,
        caps: &Caps,
        folder: &str,
        since: Option<Since>,
    ) -> StoreResult<Vec<Piece>> {
        let name = self.server_name(folder)?;
        let mut line = format!("{} ", self.select_verb()).into_bytes();
        let mut pieces = Vec::new();
        wire::quoted_or_literal(&mut pieces, &mut line, &name, caps);
        if let (Some(since), true) = (since, caps.qresync) {
            let known = match since.known_below {
                0 | 1 => String::new(),
                below => format!(" 1:{}", below - 1),
            };
            let (validity, modseq) = (since.validity, since.modseq);
            line.extend_from_slice(format!(" (QRESYNC ({validity} {modseq}{known}))").as_bytes());
        } else if caps.condstore && !caps.qresync {
            line.extend_from_slice(b" (CONDSTORE)");
        }
        line.extend_from_slice(b"\r\n");
        pieces.push(Piece::Text(line));
        Ok(pieces)
    }

    /// What a SELECT or EXAMINE of `folder` answered; remembers it (`selections`).
    fn selected_from(&self, folder: &str, done: &Done) -> StoreResult<Selected> {
        if done.outcome != Outcome::Ok {
            return Err(refused(done, &format!("{} {folder}", self.select_verb())));
        }
        let mut selected = Selected {
            path: folder.to_owned(),
            validity: 0,
            uid_next: 0,
            exists: 0,
            highest_modseq: 0,
            permanent_flags: None,
        };
        for item in &done.data {
            match item {
                Untagged::Code(DoneCode::UidValidity(v)) => selected.validity = *v,
                Untagged::Code(DoneCode::UidNext(n)) => selected.uid_next = *n,
                Untagged::Code(DoneCode::HighestModSeq(m)) => selected.highest_modseq = *m,
                Untagged::Code(DoneCode::PermanentFlags(flags)) => {
                    selected.permanent_flags = Some(flags.clone());
                }
                Untagged::Exists(n) => selected.exists = *n,
                _ => {}
            }
        }
        if selected.validity == 0 {
            return Err(StoreError::Permanent(format!(
                "{folder}: the server gave no UIDVALIDITY, so its messages cannot be tracked"
            )));
        }
        lock(&self.selections).insert(folder.to_owned(), selected.clone());
        Ok(selected)
    }

    /// Keeps the whole bodies a change listing carried (see [`INLINE_BYTES`]); a body cut at
    /// the limit is dropped, and its message is fetched when read.
    fn keep_inline(&self, folder: &str, validity: u32, fetched: &mut [Done]) {
        let mut inline = lock(&self.inline);
        for done in fetched {
            for item in &mut done.data {
                if let Untagged::Fetch(fetch) = item
                    && let (Some(uid), Some(size)) = (fetch.uid, fetch.size)
                    && let Some(body) = fetch.body.take()
                    && body.len() == size as usize
                {
                    inline.insert((folder.to_owned(), validity, uid), body);
                }
            }
        }
    }

    /// The bodies of `uids` in `folder` that a change listing carried, taken from the cache.
    fn take_inline(
        &self,
        folder: &str,
        validity: u32,
        uids: &mut BTreeSet<u32>,
    ) -> HashMap<u32, Vec<u8>> {
        let mut inline = lock(&self.inline);
        if inline.is_empty() {
            return HashMap::new();
        }
        let mut taken = HashMap::new();
        uids.retain(
            |&uid| match inline.remove(&(folder.to_owned(), validity, uid)) {
                Some(body) => {
                    taken.insert(uid, body);
                    false
                }
                None => true,
            },
        );
        taken
    }

    fn command(&self, caps: &Caps, verb: &str, mailbox: &[u8], rest: &str) -> Vec<Piece> {
        let mut line = format!("{verb} ").into_bytes();
        let mut pieces = Vec::new();
        wire::quoted_or_literal(&mut pieces, &mut line, mailbox, caps);
        line.extend_from_slice(rest.as_bytes());
        line.extend_from_slice(b"\r\n");
        pieces.push(Piece::Text(line));
        pieces
    }

    /// STATUS of one folder.
    async fn status(&self, folder: &str) -> StoreResult<StatusItems> {
        let items = status_items(&self.caps(), self.read_only);
        self.status_of(folder, items).await
    }

    /// `STATUS folder (items)`.
    async fn status_of(&self, folder: &str, items: &str) -> StoreResult<StatusItems> {
        self.status_answer(folder, items).await?
    }

    /// `STATUS folder (items)`, telling the session's failure (the outer error: a lost
    /// connection) from the server's refusal of the folder (the inner one).
    async fn status_answer(
        &self,
        folder: &str,
        items: &str,
    ) -> StoreResult<StoreResult<StatusItems>> {
        let alone = self.alone().await?;
        let caps = alone.slot.session.caps.clone();
        let name = match self.server_name(folder) {
            Ok(name) => name,
            Err(error) => return Ok(Err(error)),
        };
        let items = format!(" ({items})");
        let done = run(
            &alone.slot,
            self.command(&caps, "STATUS", &name, &items),
            Collect::All,
        )
        .await?;
        if done.outcome != Outcome::Ok {
            return Ok(Err(refused(&done, &format!("STATUS {folder}"))));
        }
        let status = done
            .data
            .iter()
            .find_map(|item| match item {
                Untagged::Status { items, .. } => Some(*items),
                _ => None,
            })
            .unwrap_or_default();
        lock(&self.statuses).insert(folder.to_owned(), status);
        Ok(Ok(status))
    }

    /// The keyed hashes of the messages of `folder` with UIDs from `from` on.
    async fn hashes_from(
        &self,
        folder: &str,
        from: Option<u32>,
        key: &ContentKey,
    ) -> StoreResult<(u32, Vec<(u32, ContentHash)>)> {
        let (alone, selected) = self.exclusive(folder).await?;
        let range = match from {
            Some(from) => format!("UID SEARCH UID {from}:*\r\n"),
            None => "UID SEARCH ALL\r\n".to_owned(),
        };
        let done = run(
            &alone.slot,
            vec![Piece::Text(range.into_bytes())],
            Collect::All,
        )
        .await?;
        let mut uids: Vec<u32> = done
            .data
            .iter()
            .filter_map(|item| match item {
                Untagged::Search(uids) => Some(uids.clone()),
                _ => None,
            })
            .flatten()
            .filter(|uid| from.is_none_or(|from| *uid >= from))
            .collect();
        uids.sort_unstable();
        // Read only the messages not hashed before in this run, a few per UID FETCH, each body
        // dropped once hashed: after a UIDVALIDITY change this is a whole folder, and its large
        // messages must not all be held (spooled) at once.
        let uncached: Vec<u32> = {
            let hashes = lock(&self.hashes);
            uids.iter()
                .copied()
                .filter(|uid| !hashes.contains_key(&(folder.to_owned(), selected.validity, *uid)))
                .collect()
        };
        for batch in uncached.chunks(HASH_BATCH) {
            let bodies = fetch_bodies(&alone.slot, batch.iter().copied().collect()).await?;
            for (uid, body) in bodies {
                let hash = body
                    .hash(key)
                    .map_err(|e| StoreError::Transient(read_back(&e)))?;
                lock(&self.hashes).insert((folder.to_owned(), selected.validity, uid), hash);
            }
        }
        let hashes = lock(&self.hashes);
        let out = uids
            .into_iter()
            .filter_map(|uid| {
                let hash = hashes.get(&(folder.to_owned(), selected.validity, uid))?;
                Some((uid, *hash))
            })
            .collect();
        Ok((selected.validity, out))
    }
}

async fn run(slot: &Slot, pieces: Vec<Piece>, collect: Collect) -> StoreResult<Done> {
    slot.session
        .conn
        .run(pieces, collect)
        .await
        .map_err(|error| lost(&error.0))
}

/// `ENABLE QRESYNC` if the session has not enabled it yet ([`Session::take_enable`]). Polled
/// first beside the commands that need it, it goes out before them, in the same round trip.
async fn enable_pending(slot: &Slot) -> StoreResult<()> {
    match slot.session.take_enable() {
        Some(enable) => run(slot, enable, Collect::All).await.map(drop),
        None => Ok(()),
    }
}

/// The one result of a `*_many` call made for one item.
fn one(results: Vec<StoreResult<()>>) -> StoreResult<()> {
    results.into_iter().next().unwrap_or_else(|| {
        Err(StoreError::Transient(
            "the server answered no result for one change".into(),
        ))
    })
}

/// What a lost connection means: throttling when the server's BYE said so (a response code
/// such as [UNAVAILABLE] or [LIMIT], or words like "throttled"), so the run backs off and
/// journals it; otherwise a transient error, retried on a new connection.
fn lost(reason: &str) -> StoreError {
    let lower = reason.to_ascii_lowercase();
    let throttled = [
        "[unavailable]",
        "[limit]",
        "[inuse]",
        "throttl",
        "too many",
        "rate limit",
    ]
    .iter()
    .any(|sign| lower.contains(sign));
    if throttled {
        StoreError::Throttled {
            retry_after_ms: None,
            reason: reason.to_owned(),
        }
    } else {
        StoreError::Transient(reason.to_owned())
    }
}

/// The bodies of the messages with these UIDs in the folder selected on `slot`; UIDs that are
/// gone are missing from the map. One `UID FETCH` asks for each one's size and first
/// [`PIECE_BYTES`]: a message that fills its piece is larger, and the rest of it is fetched
/// piece by piece into a spool ([`fetch_rest`]), so no message is held in memory whole,
/// whatever its size. What arrives must add up to the size the server gave: a message is never
/// taken short.
async fn fetch_bodies(slot: &Slot, uids: BTreeSet<u32>) -> StoreResult<HashMap<u32, Body>> {
    let mut bodies = HashMap::new();
    if uids.is_empty() {
        return Ok(bodies);
    }
    let set = wire::uid_set(&uids);
    let command = format!("UID FETCH {set} (UID RFC822.SIZE BODY.PEEK[]<0.{PIECE_BYTES}>)\r\n");
    let done = run(
        slot,
        vec![Piece::Text(command.into_bytes())],
        Collect::Bodies(uids),
    )
    .await?;
    if done.outcome != Outcome::Ok {
        return Err(refused(&done, &format!("UID FETCH {set}")));
    }
    let mut large = Vec::new();
    for item in done.data {
        if let Untagged::Fetch(fetch) = item
            && let (Some(uid), Some(body)) = (fetch.uid, fetch.body)
        {
            match first_piece(uid, body, fetch.origin, fetch.size)? {
                FirstPiece::Whole(body) => {
                    bodies.insert(uid, Body::from(body));
                }
                FirstPiece::Of(first, size) => large.push((uid, first, size)),
            }
        }
    }
    for (uid, first, size) in large {
        bodies.insert(uid, fetch_rest(slot, uid, first, size).await?);
    }
    Ok(bodies)
}

/// What the first answer for a message holds.
#[derive(Debug, PartialEq, Eq)]
enum FirstPiece {
    /// All of it.
    Whole(Vec<u8>),
    /// The first piece of a larger message, and the message's size when the server said.
    Of(Vec<u8>, Option<u64>),
}

/// Reads the first answer (`body` from `origin`, the message `size` bytes long) for `uid`.
/// With the size known, the bytes must be the whole message or a full first piece; without
/// it, a body shorter than a piece is the whole message.
fn first_piece(
    uid: u32,
    body: Vec<u8>,
    origin: Option<u32>,
    size: Option<u32>,
) -> StoreResult<FirstPiece> {
    let (len, size) = (body.len() as u64, size.map(u64::from));
    let full_piece = body.len() == PIECE_BYTES && origin.is_none_or(|o| o == 0);
    match size {
        // Whole, whatever the server said of the range (some ignore it).
        Some(size) if len == size => Ok(FirstPiece::Whole(body)),
        Some(size) if len < size && full_piece => Ok(FirstPiece::Of(body, Some(size))),
        Some(size) => Err(StoreError::Transient(format!(
            "UID {uid}: the server sent {len} bytes of a {size}-byte message"
        ))),
        None if origin.is_some_and(|o| o != 0) => Err(StoreError::Transient(format!(
            "UID {uid}: the server sent bytes from offset {origin:?}, not from the start"
        ))),
        None if full_piece => Ok(FirstPiece::Of(body, None)),
        None => Ok(FirstPiece::Whole(body)),
    }
}

/// The whole message `uid` whose first piece, `first`, filled [`PIECE_BYTES`]: the rest is
/// fetched [`PIECES_IN_FLIGHT`] pieces at a time (`BODY.PEEK[]<origin.size>`, pipelined) and
/// written into a [`Spool`] as it comes, until the message's `size` (when the server said it)
/// or a piece shorter than asked.
async fn fetch_rest(slot: &Slot, uid: u32, first: Vec<u8>, size: Option<u64>) -> StoreResult<Body> {
    let spooling = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            StoreError::Full(format!(
                "spooling UID {uid} beside the journal: {e}; free space there, then run the same command again"
            ))
        }
        _ => StoreError::Transient(format!("spooling UID {uid}: {e}")),
    };
    let mut spool = Spool::new().map_err(spooling)?;
    spool.write(&first).map_err(spooling)?;
    drop(first);
    loop {
        let start = spool.len();
        if size == Some(start) {
            return Ok(spool.finish());
        }
        let origins: Vec<u64> = (0..PIECES_IN_FLIGHT as u64)
            .map(|i| start + i * PIECE_BYTES as u64)
            .filter(|origin| size.is_none_or(|size| *origin < size))
            .collect();
        let asks = origins.iter().map(|origin| {
            let command = format!("UID FETCH {uid} (UID BODY.PEEK[]<{origin}.{PIECE_BYTES}>)\r\n");
            run(
                slot,
                vec![Piece::Text(command.into_bytes())],
                Collect::Bodies(BTreeSet::from([uid])),
            )
        });
        // Each piece's FETCH may be routed to any of the window's commands: gather them all
        // and place each by its origin.
        let mut pieces: HashMap<u32, Vec<u8>> = HashMap::new();
        for done in futures::future::join_all(asks).await {
            let done = done?;
            if done.outcome != Outcome::Ok {
                return Err(refused(
                    &done,
                    &format!("UID FETCH {uid} from byte {start}"),
                ));
            }
            for item in done.data {
                if let Untagged::Fetch(fetch) = item
                    && fetch.uid == Some(uid)
                    && let (Some(origin), Some(body)) = (fetch.origin, fetch.body)
                {
                    pieces.insert(origin, body);
                }
            }
        }
        for origin in origins {
            // Expunged meanwhile, or a server that skipped a piece: an error, never a message
            // cut short.
            let short = |got: u64| {
                StoreError::Transient(format!(
                    "UID {uid}: the server sent {got} bytes of the message from offset {origin}{}",
                    size.map(|size| format!(", of {size}")).unwrap_or_default()
                ))
            };
            let Some(piece) = u32::try_from(origin).ok().and_then(|o| pieces.remove(&o)) else {
                return Err(short(0));
            };
            let len = piece.len() as u64;
            if len > PIECE_BYTES as u64 || size.is_some_and(|size| origin + len > size) {
                return Err(StoreError::Transient(format!(
                    "UID {uid}: the server sent {len} bytes from offset {origin}, more than asked"
                )));
            }
            spool.write(&piece).map_err(spooling)?;
            match size {
                Some(size) if spool.len() == size => return Ok(spool.finish()),
                Some(_) if len < PIECE_BYTES as u64 => return Err(short(len)),
                None if len < PIECE_BYTES as u64 => return Ok(spool.finish()),
                _ => {}
            }
        }
    }
}

/// A server's refusal of one folder's STATUS, EXAMINE or listing FETCH, as that folder's own
/// error: the other folders are listed all the same, and the next run asks again. Dovecot
/// answers `NO [SERVERBUG] Internal error occurred` for a folder it cannot open, every time,
/// so a refusal the class calls transient is not retried as if the connection had failed.
/// "Mailbox doesn't exist" (Dovecot says it without `[NONEXISTENT]`) is [`StoreError::NotFound`],
/// unless the server blamed itself (`[SERVERBUG]`: its words may mention any file). Throttling
/// stays what it is: the caller makes it the whole call's.
fn own(refusal: StoreError) -> StoreError {
    match refusal {
        StoreError::Permanent(message) if says_missing(&message) => StoreError::NotFound(message),
        StoreError::Transient(message) => StoreError::Permanent(message),
        other => other,
    }
}

/// Whether a server's words say that the folder does not exist.
fn says_missing(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "doesn't exist",
        "does not exist",
        "no such mailbox",
        "no such folder",
        "unknown mailbox",
        "mailbox not found",
        "folder not found",
    ]
    .iter()
    .any(|words| lower.contains(words))
}

/// The error for a refused command, classified by its response code (RFC 5530) and text.
fn refused(done: &Done, what: &str) -> StoreError {
    let text = &done.text;
    let lower = text.to_ascii_lowercase();
    let message = format!("{what}: {text}");
    if done.outcome == Outcome::Bad {
        return StoreError::Permanent(format!("{message} (the server called the command bad)"));
    }
    match done.code_name() {
        Some("TRYCREATE" | "NONEXISTENT") => StoreError::NotFound(message),
        Some("TOOBIG") => StoreError::Permanent(message),
        // The mailbox is full: no message will go in until the quota is raised.
        Some("OVERQUOTA") => StoreError::Full(message),
        Some("LIMIT") if lower.contains("size") || lower.contains("large") => {
            StoreError::Permanent(message)
        }
        Some("LIMIT" | "UNAVAILABLE" | "INUSE") => StoreError::Throttled {
            retry_after_ms: None,
            reason: message,
        },
        Some("SERVERBUG") => StoreError::Transient(message),
        _ if lower.contains("throttl") || lower.contains("try again") => StoreError::Throttled {
            retry_after_ms: None,
            reason: message,
        },
        _ if lower.contains("too large") || lower.contains("too big") => {
            StoreError::Permanent(message)
        }
        _ => StoreError::Permanent(message),
    }
}

/// A folder's change token. With QRESYNC, every change (a new message, a flag, an expunge)
/// raises HIGHESTMODSEQ, so `UIDVALIDITY:HIGHESTMODSEQ` tells whether anything changed and
/// STATUS asks for nothing more; a listing adds `:UIDNEXT`, which lets the next listing ask
/// only messages from there on for their size and date (see [`same_state`]). Otherwise
/// `UIDVALIDITY:HIGHESTMODSEQ:UIDNEXT:MESSAGES` (HIGHESTMODSEQ 0 without CONDSTORE).
fn token(status: &StatusItems, qresync: bool) -> Option<String> {
    let validity = status.uid_validity?;
    Some(match status.highest_modseq {
        Some(modseq) if qresync && modseq > 0 => match status.uid_next {
            Some(uid_next) => format!("{validity}:{modseq}:{uid_next}"),
            None => format!("{validity}:{modseq}"),
        },
        modseq => format!(
            "{validity}:{}:{}:{}",
            modseq.unwrap_or(0),
            status.uid_next?,
            status.messages?
        ),
    })
}

/// UIDVALIDITY and HIGHESTMODSEQ of a token of either shape.
fn parse_token(token: &str) -> Option<(u32, u64)> {
    let mut parts = token.split(':');
    let validity = parts.next()?.parse().ok()?;
    let modseq = parts.next()?.parse().ok()?;
    Some((validity, modseq))
}

/// The UIDNEXT a token recorded, when it did.
fn token_uid_next(token: &str) -> Option<u32> {
    token.split(':').nth(2)?.parse().ok().filter(|&uid| uid > 0)
}

/// Whether the folder is as the token `since` saw it: with QRESYNC the same UIDVALIDITY and
/// HIGHESTMODSEQ (the UIDNEXT a listing adds is not compared: STATUS does not ask for it);
/// otherwise the same token.
fn same_state(since: &str, current: &str, qresync: bool) -> bool {
    if qresync {
        parse_token(since).is_some_and(|state| Some(state) == parse_token(current))
    } else {
        since == current
    }
}

/// The STATUS items a token needs. A source (`listed`) also asks UIDNEXT under QRESYNC: a
/// changed folder whose UIDNEXT is still the one its last listing recorded has no new message,
/// so its listing asks for none.
fn status_items(caps: &Caps, listed: bool) -> &'static str {
    if caps.qresync && listed {
        "UIDVALIDITY UIDNEXT HIGHESTMODSEQ"
    } else if caps.qresync {
        "UIDVALIDITY HIGHESTMODSEQ"
    } else if caps.condstore {
        "MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ"
    } else {
        "MESSAGES UIDNEXT UIDVALIDITY"
    }
}

fn item_info(validity: u32, fetch: &conn::FetchItem) -> Option<ItemInfo> {
    Some(ItemInfo {
        id: make_id(validity, fetch.uid?),
        size: u64::from(fetch.size?),
        flags: wire::parse_flags(fetch.flags.as_deref().unwrap_or_default()),
        date: fetch.date,
    })
}

/// What a QRESYNC EXAMINE asks for changes since: the folder's UIDVALIDITY and
/// HIGHESTMODSEQ then, and the UID below which messages were known.
#[derive(Debug, Clone, Copy)]
struct Since {
    validity: u32,
    modseq: u64,
    known_below: u32,
}

/// A listing whose commands were planned from the folder's STATUS before they were sent.
struct PlannedListing<'a> {
    index: usize,
    folder: &'a str,
    /// The UIDVALIDITY the STATUS gave, which the EXAMINE must confirm.
    validity: u32,
    /// `CHANGEDSINCE` this HIGHESTMODSEQ (QRESYNC), or a full listing.
    modseq: Option<u64>,
    /// With `modseq`, the UIDNEXT of the token's listing, when it recorded one: messages
    /// below it were seen then, so only their flags are asked; only those from there on are
    /// asked their size and date.
    uid_next: Option<u32>,
    /// With `uid_next`, in a listing planned from STATUS: the EXAMINE itself asks for the
    /// changes (`QRESYNC (UIDVALIDITY HIGHESTMODSEQ)`), so its answer carries the flags of
    /// the changed messages and the VANISHED UIDs, and no FETCH asks for them.
    in_select: bool,
    /// Whether the new messages (from `uid_next` on) are asked for: not when STATUS gave the
    /// UIDNEXT the token recorded; the EXAMINE must then confirm that none arrived.
    new_messages: bool,
    /// Whether the new messages are also asked for their first [`INLINE_BYTES`].
    inline: bool,
}

impl<'a> PlannedListing<'a> {
    /// The listing of `folder` whose UIDVALIDITY and HIGHESTMODSEQ are these, asked since the
    /// token `since`: changes since its HIGHESTMODSEQ when QRESYNC allows and the UIDVALIDITY
    /// is the token's, else in full.
    fn new(
        (index, folder): (usize, &'a str),
        (validity, highest_modseq): (u32, u64),
        since: Option<&str>,
        qresync: bool,
    ) -> PlannedListing<'a> {
        let modseq = since
            .and_then(parse_token)
            .filter(|&(was, modseq)| qresync && was == validity && modseq > 0 && highest_modseq > 0)
            .map(|(_, modseq)| modseq);
        PlannedListing {
            index,
            folder,
            validity,
            modseq,
            uid_next: modseq.and(since.and_then(token_uid_next)),
            in_select: false,
            new_messages: true,
            inline: false,
        }
    }

    /// At most how many bytes inline bodies could bring, when STATUS bounds the number of
    /// new messages.
    fn inline_bound(&self, status_uid_next: Option<u32>) -> Option<u64> {
        let (uid_next, status) = (self.uid_next?, status_uid_next?);
        (self.in_select && self.new_messages)
            .then(|| u64::from(status.saturating_sub(uid_next)) * u64::from(INLINE_BYTES))
    }

    /// The plan for a listing whose EXAMINE goes out with its FETCH (see `in_select`), given
    /// the UIDNEXT the folder's STATUS gave, if it did.
    fn in_select(mut self, status_uid_next: Option<u32>) -> PlannedListing<'a> {
        if let Some(uid_next) = self.uid_next {
            self.in_select = true;
            self.new_messages = status_uid_next.is_none_or(|status| status > uid_next);
        }
        self
    }

    /// The QRESYNC parameter of the EXAMINE, when it asks for the changes: UIDVALIDITY,
    /// HIGHESTMODSEQ and the UIDs known (those below the token's UIDNEXT), so that new
    /// messages, which their own FETCH lists, are not also reported as changed.
    fn select_since(&self) -> Option<Since> {
        let (modseq, uid_next) = (self.modseq?, self.uid_next?);
        self.in_select.then_some(Since {
            validity: self.validity,
            modseq,
            known_below: uid_next,
        })
    }

    /// Whether the EXAMINE's answer `selected` confirms what the FETCHes assumed: the same
    /// UIDVALIDITY, a HIGHESTMODSEQ for changes since one, and no new message when none
    /// was asked for.
    fn confirmed_by(&self, selected: &Selected) -> bool {
        selected.validity == self.validity
            && (self.modseq.is_none() || selected.highest_modseq > 0)
            && (self.new_messages || self.uid_next.is_some_and(|u| selected.uid_next <= u))
    }

    /// What [`listing_from`] needs to know of the FETCHes: `None` for a full listing, else
    /// the UIDNEXT below which only flags were asked.
    fn incremental(&self) -> Option<Option<u32>> {
        self.modseq.map(|_| self.uid_next)
    }

    /// The UID FETCH commands of the listing: one, or with a known UIDNEXT two (flags of the
    /// messages seen before, everything of the new ones). `u:4294967295` rather than `u:*`,
    /// which would name the last message when no new one exists.
    fn fetch_commands(&self) -> Vec<Vec<Piece>> {
        let text = |command: String| vec![Piece::Text(command.into_bytes())];
        match (self.modseq, self.uid_next) {
            (Some(_), Some(uid_next)) if self.in_select => {
                if !self.new_messages {
                    Vec::new()
                } else if self.inline {
                    vec![text(format!(
                        "UID FETCH {uid_next}:{} (UID FLAGS RFC822.SIZE INTERNALDATE \
                         BODY.PEEK[]<0.{INLINE_BYTES}>)\r\n",
                        u32::MAX
                    ))]
                } else {
                    vec![text(format!(
                        "UID FETCH {uid_next}:{} {LISTING_ITEMS}\r\n",
                        u32::MAX
                    ))]
                }
            }
            (Some(modseq), Some(uid_next)) => {
                let mut commands = Vec::new();
                if uid_next > 1 {
                    commands.push(text(format!(
                        "UID FETCH 1:{} (UID FLAGS) (CHANGEDSINCE {modseq} VANISHED)\r\n",
                        uid_next - 1
                    )));
                }
                commands.push(text(format!(
                    "UID FETCH {uid_next}:{} {LISTING_ITEMS}\r\n",
                    u32::MAX
                )));
                commands
            }
            (Some(modseq), None) => vec![text(format!(
                "UID FETCH 1:* {LISTING_ITEMS} (CHANGEDSINCE {modseq} VANISHED)\r\n"
            ))],
            (None, _) => vec![text(format!("UID FETCH 1:* {LISTING_ITEMS}\r\n"))],
        }
    }

    fn fetch_count(&self) -> usize {
        self.fetch_commands().len()
    }
}

/// What a listing asks of each message.
const LISTING_ITEMS: &str = "(UID FLAGS RFC822.SIZE INTERNALDATE)";

/// The listing the UID FETCHes of the folder `selected` answered: a full one, or with
/// `incremental` the changes (and VANISHED UIDs) since the token's HIGHESTMODSEQ; then
/// `Some(uid_next)` says that messages below that UID were asked their flags only. An empty
/// folder lists empty whatever its FETCH said, or without one.
fn listing_from(
    folder: &str,
    selected: &Selected,
    fetched: &[Done],
    incremental: Option<Option<u32>>,
    qresync: bool,
) -> StoreResult<Listing> {
    let token = token(
        &StatusItems {
            messages: Some(selected.exists),
            uid_next: Some(selected.uid_next),
            uid_validity: Some(selected.validity),
            highest_modseq: Some(selected.highest_modseq),
        },
        qresync,
    );
    if selected.exists == 0 && incremental.is_none() {
        return Ok(Listing::Full {
            items: Vec::new(),
            token,
        });
    }
    if fetched.is_empty() {
        return Err(StoreError::Transient(format!("{folder}: not listed")));
    }
    let flags_below = incremental.flatten().unwrap_or(0);
    let mut items = Vec::new();
    let mut flags = Vec::new();
    let mut gone = Vec::new();
    for done in fetched {
        if done.outcome != Outcome::Ok {
            return Err(refused(done, &format!("listing {folder}")));
        }
        for item in &done.data {
            match item {
                Untagged::Fetch(fetch) => match fetch.uid {
                    Some(uid) if uid < flags_below => flags.push((
                        make_id(selected.validity, uid),
                        wire::parse_flags(fetch.flags.as_deref().unwrap_or_default()),
                    )),
                    _ => items.extend(item_info(selected.validity, fetch)),
                },
                Untagged::Vanished { ranges } => {
                    // Nothing at or above UIDNEXT was ever known here.
                    let limit = selected.uid_next;
                    for (start, end) in ranges {
                        for uid in *start..=(*end).min(limit) {
                            gone.push(make_id(selected.validity, uid));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(match incremental {
        Some(_) => Listing::Changes {
            changed: items,
            flags,
            gone,
            token,
        },
        None => Listing::Full { items, token },
    })
}

impl ImapStore {
    /// The bodies `uids_of(UIDVALIDITY)` names in `folder`, on a session with it selected, and
    /// the UIDVALIDITY they belong to. A session that must select it first sends the EXAMINE
    /// and the FETCH together (one round trip, not two): the FETCH names UIDs of the
    /// `assumed` UIDVALIDITY, which the EXAMINE must confirm, else what it fetched is dropped.
    async fn fetch_selected(
        &self,
        folder: &str,
        assumed: u32,
        uids_of: impl Fn(u32) -> BTreeSet<u32>,
    ) -> StoreResult<(u32, HashMap<u32, Body>)> {
        let inner = &self.inner;
        let slot = inner.slot(Some(folder)).await?;
        let gate = slot.gate.clone().read_owned().await;
        if let Some(selected) = slot.selected(folder) {
            let bodies = fetch_bodies(&slot, uids_of(selected.validity)).await?;
            drop(gate);
            return Ok((selected.validity, bodies));
        }
        drop(gate);
        let _gate = slot.gate.clone().write_owned().await;
        if let Some(selected) = slot.selected(folder) {
            let bodies = fetch_bodies(&slot, uids_of(selected.validity)).await?;
            return Ok((selected.validity, bodies));
        }
        let (selected, fetched) = futures::future::join(
            inner.select(&slot, folder),
            fetch_bodies(&slot, uids_of(assumed)),
        )
        .await;
        let selected = selected?;
        Ok(if selected.validity == assumed {
            (assumed, fetched?)
        } else {
            (selected.validity, HashMap::new())
        })
    }

    /// Lists one folder select first: what the folder's UIDVALIDITY and HIGHESTMODSEQ are
    /// decides the FETCH. For a folder whose STATUS was out of date.
    async fn list_selected(&self, folder: &str, since: Option<&str>) -> StoreResult<Listing> {
        let (alone, selected) = self.inner.exclusive(folder).await?;
        let qresync = alone.slot.session.caps.qresync;
        let plan = PlannedListing::new(
            (0, folder),
            (selected.validity, selected.highest_modseq),
            since,
            qresync,
        );
        let mut fetched = Vec::new();
        if selected.exists > 0 || plan.incremental().is_some() {
            for fetch in plan.fetch_commands() {
                fetched.push(run(&alone.slot, fetch, Collect::All).await?);
            }
        }
        listing_from(folder, &selected, &fetched, plan.incremental(), qresync)
    }
}

#[async_trait]
impl Store for ImapStore {
    fn describe(&self) -> String {
        self.inner.described.clone()
    }

    fn capabilities(&self) -> Capabilities {
        let caps = self.inner.caps();
        Capabilities {
            change_tokens: true,
            keywords: true,
            rename: true,
            max_message_bytes: caps.append_limit,
            append_many: caps.multiappend,
            fetch_many: true,
            update_many: true,
            moves: caps.moves && caps.uidplus,
            remote: true,
        }
    }

    async fn list_folders(&self) -> StoreResult<Vec<FolderInfo>> {
        let inner = &self.inner;
        let alone = inner.alone().await?;
        let caps = alone.slot.session.caps.clone();
        let status_items = status_items(&caps, inner.read_only);
        let with_status = caps.list_extended && caps.list_status;
        let mut returns = Vec::new();
        if caps.special_use && caps.list_extended {
            returns.push("SPECIAL-USE".to_owned());
        }
        if with_status {
            returns.push(format!("STATUS ({status_items})"));
        }
        let command = if returns.is_empty() {
            "LIST \"\" \"*\"\r\n".to_owned()
        } else {
            format!("LIST \"\" \"*\" RETURN ({})\r\n", returns.join(" "))
        };
        let list = run(
            &alone.slot,
            vec![Piece::Text(command.into_bytes())],
            Collect::All,
        );
        // A server may leave the selected folder out of LIST-STATUS, and STATUS of it answers
        // from the session's own, older view: with nothing selected, every folder's figures
        // are current. UNSELECT goes out with the LIST, in the same round trip.
        let selected = lock(&alone.slot.selected).take().is_some();
        let done = if selected && caps.unselect {
            let unselect = run(
                &alone.slot,
                vec![Piece::Text(b"UNSELECT\r\n".to_vec())],
                Collect::Nothing,
            );
            let (unselected, listed) = futures::future::join(unselect, list).await;
            unselected?;
            listed?
        } else {
            list.await?
        };
        if done.outcome != Outcome::Ok {
            return Err(StoreError::Unusable(format!(
                "{}: cannot list folders: {}",
                inner.described, done.text
            )));
        }
        let naming = inner.naming();
        let mut folders = Vec::new();
        let mut statuses: HashMap<Vec<u8>, StatusItems> = HashMap::new();
        let mut listed = Vec::new();
        // Listed as holding no messages: a mere parent of other folders, or a folder the
        // server failed to open (Dovecot lists one so from then on, until its list index is
        // rebuilt, even once it can open it again). Its STATUS tells which.
        let mut noselect = Vec::new();
        for item in &done.data {
            match item {
                Untagged::List {
                    attributes,
                    delimiter,
                    mailbox,
                } => {
                    if naming.delimiter.is_none() && delimiter.is_some() {
                        let mut server = lock(&inner.server);
                        if let Some((_, naming)) = server.as_mut() {
                            naming.delimiter = *delimiter;
                        }
                    }
                    if wire::selectable(attributes) {
                        listed.push((mailbox.clone(), *delimiter, wire::special_use(attributes)));
                    } else if !attributes
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case("\\NonExistent"))
                    {
                        noselect.push((mailbox.clone(), *delimiter, wire::special_use(attributes)));
                    }
                }
                Untagged::Status { mailbox, items } => {
                    statuses.insert(mailbox.clone(), *items);
                }
                _ => {}
            }
        }
        // Servers without LIST-STATUS: one STATUS per folder, pipelined. So too for a folder
        // LIST-STATUS gave no STATUS (Dovecot, for a folder it cannot open: an untagged
        // `NO [SERVERBUG]` instead) and for each `\Noselect` folder.
        let missing: Vec<(&Vec<u8>, Option<char>, bool)> = listed
            .iter()
            .map(|(m, d, _)| (m, *d, true))
            .chain(noselect.iter().map(|(m, d, _)| (m, *d, false)))
            .filter(|(m, _, _)| !statuses.contains_key(*m))
            .collect();
        // The folders whose STATUS the server refused: `Some(its words)` for a folder it
        // cannot read, `None` for a `\Noselect` one that is a mere parent.
        let mut refusals: HashMap<Vec<u8>, Option<String>> = HashMap::new();
        if !missing.is_empty() {
            let runs = missing.iter().map(|(mailbox, _, _)| {
                let pieces = inner.command(&caps, "STATUS", mailbox, &format!(" ({status_items})"));
                run(&alone.slot, pieces, Collect::All)
            });
            let answers = futures::future::join_all(runs).await;
            for (&(mailbox, delimiter, selectable), done) in missing.iter().zip(answers) {
                // A lost session is the whole listing's failure.
                let done = done?;
                if done.outcome != Outcome::Ok {
                    let path = naming.to_path(mailbox, delimiter);
                    let refusal = refused(&done, &format!("STATUS {path}"));
                    if matches!(refusal, StoreError::Throttled { .. }) {
                        return Err(refusal);
                    }
                    // A `\Noselect` folder is one the server failed to open only when it
                    // says so ([SERVERBUG], [CORRUPTION], [NOPERM]); any other refusal
                    // ("Mailbox doesn't exist", [NONEXISTENT]) is of a mere parent. A
                    // selectable one is unreadable whatever the refusal says.
                    let failed = selectable
                        || matches!(
                            done.code_name(),
                            Some("SERVERBUG" | "CORRUPTION" | "NOPERM")
                        );
                    refusals.insert(mailbox.clone(), failed.then(|| own(refusal).to_string()));
                    continue;
                }
                for item in done.data {
                    if let Untagged::Status { mailbox, items } = item {
                        statuses.insert(mailbox, items);
                    }
                }
            }
        }
        let mut cache = lock(&inner.statuses);
        cache.clear();
        let entries = listed
            .into_iter()
            .map(|entry| (entry, true))
            .chain(noselect.into_iter().map(|entry| (entry, false)));
        for ((mailbox, delimiter, special_use), selectable) in entries {
            let path = naming.to_path(&mailbox, delimiter);
            let (validity, unreadable) = match refusals.remove(&mailbox) {
                // A mere parent of other folders: not a folder (as before).
                Some(None) => continue,
                // Its STATUS is asked again if its items are: no figures are kept.
                Some(Some(words)) => (None, Some(words)),
                None => {
                    let status = statuses.get(&mailbox).copied().unwrap_or_default();
                    if !selectable && status.uid_validity.is_none() {
                        // A `\Noselect` folder whose STATUS tells no UIDVALIDITY holds no
                        // messages: a mere parent too. With one, it is a folder the server
                        // can open again and still lists as `\Noselect` (Dovecot, until its
                        // list index is rebuilt).
                        continue;
                    }
                    cache.insert(path.clone(), status);
                    (status.uid_validity.map(u64::from), None)
                }
            };
            folders.push(FolderInfo {
                special_use: if path == "INBOX" {
                    Some(ferry_engine::event::SpecialUse::Inbox)
                } else {
                    special_use
                },
                validity,
                unreadable,
                path,
            });
        }
        Ok(folders)
    }

    async fn list_items(&self, folder: &str, since: Option<&str>) -> StoreResult<Listing> {
        self.list_items_many(&[(folder, since)])
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Transient(format!("{folder}: no listing"))))
    }

    /// One connection lists every folder that changed: each EXAMINE and its UID FETCH are
    /// planned from the folder's STATUS (from the folder listing) and all go out at once, so
    /// the folders cost one round trip together instead of two each. The answer to each
    /// EXAMINE confirms what its FETCH assumed (same UIDVALIDITY, a HIGHESTMODSEQ for a
    /// CHANGEDSINCE); a folder where it does not is listed again on its own, select first.
    async fn list_items_many(
        &self,
        asks: &[(&str, Option<&str>)],
    ) -> StoreResult<Vec<StoreResult<Listing>>> {
        let inner = &self.inner;
        if lock(&inner.server).is_none() {
            // What the server can do decides the commands: learn it from a first session.
            drop(inner.any().await?);
        }
        let caps = inner.caps();
        let qresync = caps.qresync;
        let mut out: Vec<Option<StoreResult<Listing>>> = asks.iter().map(|_| None).collect();
        let mut planned = Vec::new();
        lock(&inner.inline).clear();
        let mut inline_left = INLINE_BUDGET;
        for (index, &(folder, since)) in asks.iter().enumerate() {
            let cached = lock(&inner.statuses).get(folder).copied();
            let status = match cached {
                Some(status) if status.uid_validity.is_some() => status,
                // A lost session is the whole call's failure (`?`); the server's refusal of
                // this folder is its own, unless it asked to slow down.
                _ => match inner
                    .status_answer(folder, status_items(&caps, inner.read_only))
                    .await?
                {
                    Ok(status) => status,
                    Err(error @ StoreError::Throttled { .. }) => return Err(error),
                    Err(error) => {
                        out[index] = Some(Err(own(error)));
                        continue;
                    }
                },
            };
            let current = token(&status, qresync);
            if let (Some(since), Some(current)) = (since, &current)
                && same_state(since, current, qresync)
                && status.highest_modseq.unwrap_or(0) > 0
            {
                // Nothing changed: no EXAMINE, no FETCH; the token stays as it was.
                out[index] = Some(Ok(Listing::Changes {
                    changed: Vec::new(),
                    flags: Vec::new(),
                    gone: Vec::new(),
                    token: Some(since.to_owned()),
                }));
                continue;
            }
            let Some(validity) = status.uid_validity else {
                out[index] = Some(Err(StoreError::Permanent(format!(
                    "STATUS {folder}: the server gave no UIDVALIDITY, so its messages cannot \
                     be tracked"
                ))));
                continue;
            };
            let mut plan = PlannedListing::new(
                (index, folder),
                (validity, status.highest_modseq.unwrap_or(0)),
                since,
                qresync,
            )
            .in_select(status.uid_next);
            if let Some(bound) = plan.inline_bound(status.uid_next)
                && bound <= inline_left
            {
                inline_left -= bound;
                plan.inline = true;
            }
            match inner.select_command(&caps, folder, plan.select_since()) {
                Ok(select) => planned.push((plan, select)),
                Err(error) => out[index] = Some(Err(error)),
            }
        }
        if !planned.is_empty() {
            let alone = inner.alone().await?;
            *lock(&alone.slot.selected) = None;
            // Every command is queued before the first answer is awaited, in this order, and
            // the server answers them in order.
            let mut commands = Vec::new();
            let mut plans = Vec::new();
            for (plan, select) in planned {
                commands.push(run(&alone.slot, select, Collect::All));
                for fetch in plan.fetch_commands() {
                    commands.push(run(&alone.slot, fetch, Collect::All));
                }
                plans.push(plan);
            }
            let (enabled, answers) = futures::future::join(
                enable_pending(&alone.slot),
                futures::future::join_all(commands),
            )
            .await;
            enabled?;
            let mut answers = answers.into_iter();
            let mut selected_last = None;
            let mut again = Vec::new();
            // A refusal that asks to slow down is the whole call's, once every answer is
            // taken.
            let mut throttled = None;
            for plan in &plans {
                let Some(examined) = answers.next() else {
                    break;
                };
                let fetched: Vec<StoreResult<Done>> =
                    answers.by_ref().take(plan.fetch_count()).collect();
                let examined = examined?;
                let selected = match inner.selected_from(plan.folder, &examined) {
                    Ok(selected) => selected,
                    Err(error) => {
                        selected_last = None;
                        match own(error) {
                            error @ StoreError::Throttled { .. } => throttled = Some(error),
                            error => out[plan.index] = Some(Err(error)),
                        }
                        continue;
                    }
                };
                selected_last = Some(selected.clone());
                let mut fetched = fetched.into_iter().collect::<StoreResult<Vec<Done>>>()?;
                if !plan.confirmed_by(&selected) {
                    again.push(plan.index);
                    continue;
                }
                if plan.in_select {
                    // The changes came with the EXAMINE.
                    fetched.insert(0, examined);
                }
                if plan.inline {
                    inner.keep_inline(plan.folder, selected.validity, &mut fetched);
                }
                match listing_from(
                    plan.folder,
                    &selected,
                    &fetched,
                    plan.incremental(),
                    qresync,
                )
                .map_err(own)
                {
                    Err(error @ StoreError::Throttled { .. }) => throttled = Some(error),
                    listing => out[plan.index] = Some(listing),
                }
            }
            *lock(&alone.slot.selected) = selected_last;
            drop(alone);
            if let Some(error) = throttled {
                return Err(error);
            }
            for index in again {
                let (folder, since) = asks[index];
                out[index] = Some(match self.list_selected(folder, since).await {
                    Err(error @ (StoreError::Permanent(_) | StoreError::NotFound(_))) => Err(error),
                    Err(error) => return Err(error),
                    Ok(listing) => Ok(listing),
                });
            }
        }
        Ok(out
            .into_iter()
            .zip(asks)
            .map(|(listing, (folder, _))| {
                listing.unwrap_or_else(|| {
                    Err(StoreError::Transient(format!(
                        "{folder}: the server gave no UIDVALIDITY in its status"
                    )))
                })
            })
            .collect())
    }

    async fn fetch(&self, folder: &str, id: &NativeId) -> StoreResult<Body> {
        let shared = self.inner.shared(folder).await?;
        let uid = current_uid(folder, id, shared.selected.validity)?;
        match fetch_bodies(&shared.slot, BTreeSet::from([uid]))
            .await?
            .remove(&uid)
        {
            Some(body) => Ok(body),
            None => Err(StoreError::NotFound(format!("{folder}: UID {uid} is gone"))),
        }
    }

    async fn fetch_many(
        &self,
        folder: &str,
        ids: &[NativeId],
    ) -> StoreResult<Vec<StoreResult<Body>>> {
        let inner = &self.inner;
        // The ids' UIDVALIDITY, as the listing that named them saw it.
        let assumed = ids.iter().find_map(parse_id).map_or(0, |(v, _)| v);
        let uids_of = |validity: u32| -> BTreeSet<u32> {
            ids.iter()
                .filter_map(parse_id)
                .filter(|(v, _)| *v == validity)
                .map(|(_, uid)| uid)
                .collect()
        };
        // Bodies the change listing carried need no request at all.
        let mut wanted = uids_of(assumed);
        let cached = inner.take_inline(folder, assumed, &mut wanted);
        let (validity, mut bodies) = if wanted.is_empty() && !cached.is_empty() {
            (assumed, HashMap::new())
        } else {
            let wanted_of = |validity: u32| {
                if validity == assumed {
                    wanted.clone()
                } else {
                    uids_of(validity)
                }
            };
            self.fetch_selected(folder, assumed, wanted_of).await?
        };
        if validity == assumed {
            bodies.extend(
                cached
                    .into_iter()
                    .map(|(uid, body)| (uid, Body::from(body))),
            );
        }
        Ok(ids
            .iter()
            .map(|id| {
                let uid = current_uid(folder, id, validity)?;
                bodies
                    .remove(&uid)
                    .ok_or_else(|| StoreError::NotFound(format!("{folder}: UID {uid} is gone")))
            })
            .collect())
    }

    async fn create_folder(&self, folder: &str) -> StoreResult<()> {
        let inner = &self.inner;
        if inner.naming().delimiter.is_none() {
            // Learn the delimiter first.
            self.list_folders().await?;
        }
        let name = inner.server_name(folder)?;
        // CREATE and SUBSCRIBE need no folder selected: they share a connection with other
        // commands, so the folders of a run are created together.
        let (slot, _gate) = inner.any().await?;
        let caps = slot.session.caps.clone();
        let done = run(
            &slot,
            inner.command(&caps, "CREATE", &name, ""),
            Collect::All,
        )
        .await?;
        let exists = done.code_name() == Some("ALREADYEXISTS")
            || done.text.to_ascii_lowercase().contains("exists");
        if done.outcome != Outcome::Ok && !exists {
            // A server may refuse an existing folder without saying so (Courier: "Cannot
            // create this folder."): a repeated CREATE succeeds if LIST shows the folder.
            let listed = run(
                &slot,
                inner.command(&caps, "LIST \"\"", &name, ""),
                Collect::All,
            )
            .await?;
            let found = listed
                .data
                .iter()
                .any(|item| matches!(item, Untagged::List { mailbox, .. } if *mailbox == name));
            if !found {
                return Err(refused(&done, &format!("creating {folder}")));
            }
        }
        // Subscribed, so mail clients show it.
        let _ = run(
            &slot,
            inner.command(&caps, "SUBSCRIBE", &name, ""),
            Collect::All,
        )
        .await?;
        Ok(())
    }

    async fn rename_folder(&self, from: &str, to: &str) -> StoreResult<()> {
        let inner = &self.inner;
        let (old, new) = (inner.server_name(from)?, inner.server_name(to)?);
        let alone = inner.alone().await?;
        let caps = alone.slot.session.caps.clone();
        // No connection may keep the old folder selected.
        lock(&inner.selections).remove(from);
        for slot in lock(&inner.pool).slots.iter() {
            if slot.selected(from).is_some() {
                *lock(&slot.selected) = None;
            }
        }
        let mut line = b"RENAME ".to_vec();
        let mut pieces = Vec::new();
        wire::quoted_or_literal(&mut pieces, &mut line, &old, &caps);
        line.push(b' ');
        wire::quoted_or_literal(&mut pieces, &mut line, &new, &caps);
        line.extend_from_slice(b"\r\n");
        pieces.push(Piece::Text(line));
        let done = run(&alone.slot, pieces, Collect::All).await?;
        drop(alone);
        if done.outcome == Outcome::Ok {
            let alone = inner.alone().await?;
            let _ = run(
                &alone.slot,
                inner.command(&caps, "SUBSCRIBE", &new, ""),
                Collect::All,
            )
            .await?;
            return Ok(());
        }
        // A repeated rename: the old one is gone and the new one is there.
        if inner.status(to).await.is_ok() && inner.status(from).await.is_err() {
            return Ok(());
        }
        Err(refused(&done, &format!("renaming {from} to {to}")))
    }

    async fn delete_folder(&self, folder: &str) -> StoreResult<()> {
        let inner = &self.inner;
        if folder.eq_ignore_ascii_case("INBOX") {
            return Err(StoreError::Permanent(format!(
                "{folder}: INBOX is never deleted"
            )));
        }
        if inner.read_only {
            return Err(StoreError::Permanent(format!(
                "{folder}: the store is opened read-only"
            )));
        }
        if inner.naming().delimiter.is_none() {
            // Learn the delimiter first.
            self.list_folders().await?;
        }
        let naming = inner.naming();
        let name = inner.server_name(folder)?;
        // Held alone (preferably the connection that has it selected), so no other command
        // of ferry's uses the folder meanwhile.
        let slot = inner.slot(Some(folder)).await?;
        let gate = slot.gate.clone().write_owned().await;
        let alone = Alone { slot, _gate: gate };
        let caps = alone.slot.session.caps.clone();
        // Its subfolders: a server deletes them with it, or refuses, or leaves a `\Noselect`
        // parent behind. They are folders of their own: while there is one, it is kept.
        if let Some(delimiter) = naming.delimiter {
            let mut pattern = name.clone();
            pattern.extend_from_slice(delimiter.to_string().as_bytes());
            pattern.push(b'%');
            let listed = run(
                &alone.slot,
                inner.command(&caps, "LIST \"\"", &pattern, ""),
                Collect::All,
            )
            .await?;
            if listed.outcome != Outcome::Ok {
                return Err(refused(
                    &listed,
                    &format!("listing the subfolders of {folder}"),
                ));
            }
            let child = listed.data.iter().find_map(|item| match item {
                Untagged::List {
                    attributes,
                    delimiter,
                    mailbox,
                } if *mailbox != name
                    && !attributes
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case("\\NonExistent")) =>
                {
                    Some(naming.to_path(mailbox, *delimiter))
                }
                _ => None,
            });
            if let Some(child) = child {
                return Err(StoreError::Permanent(format!(
                    "{folder} is kept: it holds the folder {child}"
                )));
            }
        }
        // Selected afresh: what is in it now, not as last listed.
        let selected = match inner.select(&alone.slot, folder).await {
            Ok(selected) => Some(selected),
            // Gone already: a repeated deletion.
            Err(StoreError::NotFound(_)) => None,
            Err(StoreError::Permanent(message)) if says_missing(&message) => None,
            Err(error) => return Err(error),
        };
        if let Some(selected) = selected {
            if selected.exists > 0 {
                return Err(StoreError::Permanent(format!(
                    "{folder} is kept: it still holds {} message{}",
                    selected.exists,
                    if selected.exists == 1 { "" } else { "s" }
                )));
            }
            // No connection may keep it selected: a server may end a session whose selected
            // folder is deleted (Dovecot does).
            lock(&inner.selections).remove(folder);
            lock(&inner.statuses).remove(folder);
            for slot in lock(&inner.pool).slots.iter() {
                if slot.selected(folder).is_some() {
                    *lock(&slot.selected) = None;
                }
            }
            // Left and deleted in one round trip. A message delivered in the round trip since
            // the SELECT would go with the folder: a folder ferry created, whose source folder
            // is gone, and that no one but ferry wrote to.
            let leave: &[u8] = if caps.unselect {
                b"UNSELECT\r\n"
            } else {
                // Expunges nothing: it holds no message.
                b"CLOSE\r\n"
            };
            let leave = run(
                &alone.slot,
                vec![Piece::Text(leave.to_vec())],
                Collect::Nothing,
            );
            let delete = run(
                &alone.slot,
                inner.command(&caps, "DELETE", &name, ""),
                Collect::All,
            );
            let (left, done) = futures::future::join(leave, delete).await;
            left?;
            let done = done?;
            if done.outcome != Outcome::Ok {
                match refused(&done, &format!("deleting {folder}")) {
                    StoreError::NotFound(_) => {}
                    StoreError::Permanent(message) if says_missing(&message) => {}
                    error => return Err(error),
                }
            }
        }
        // Not offered to mail clients any more (CREATE subscribed it).
        let _ = run(
            &alone.slot,
            inner.command(&caps, "UNSUBSCRIBE", &name, ""),
            Collect::All,
        )
        .await?;
        Ok(())
    }

    async fn prepare_folders(&self, folders: &[&str]) -> StoreResult<()> {
        // Without UIDPLUS every batch selects its folder anew (`prepare_appends`).
        let inner = &self.inner;
        if folders.is_empty() || !inner.caps().uidplus {
            return Ok(());
        }
        let alone = inner.alone().await?;
        let caps = alone.slot.session.caps.clone();
        *lock(&alone.slot.selected) = None;
        // Every SELECT goes out at once; each answer is remembered (`selected_from`), and the
        // connection keeps the last folder selected when its SELECT succeeded.
        let mut selects = Vec::new();
        for folder in folders {
            selects.push(run(
                &alone.slot,
                inner.select_command(&caps, folder, None)?,
                Collect::All,
            ));
        }
        let mut last = None;
        for (folder, done) in folders.iter().zip(futures::future::join_all(selects).await) {
            last = inner.selected_from(folder, &done?).ok();
        }
        *lock(&alone.slot.selected) = last;
        Ok(())
    }

    async fn prepare_appends(&self, folder: &str, count: usize) -> StoreResult<Vec<AppendProbe>> {
        // SELECT rather than STATUS: it also tells which flags and keywords the folder keeps
        // (PERMANENTFLAGS), which the appends that follow respect. With UIDPLUS, what an
        // earlier SELECT of the folder said serves without a new one (one round trip less per
        // batch; `prepare_folders` selects a run's new folders together): its UIDNEXT is
        // raised by every APPENDUID ferry gets, and can only be lower than the server's, which
        // makes a probe look at more candidates, never fewer.
        let known = lock(&self.inner.selections).get(folder).cloned();
        let selected = if self.inner.caps().uidplus {
            match known {
                Some(selected) => selected,
                None => self.inner.shared(folder).await?.selected.clone(),
            }
        } else {
            let (alone, selected) = self.inner.exclusive(folder).await?;
            drop(alone);
            selected
        };
        let mut uid_next = selected.uid_next;
        if uid_next == 0 {
            // Some servers (Courier 5.0) leave UIDNEXT out of SELECT: STATUS tells it, and the
            // folder's remembered selection keeps it, raised by later APPENDUIDs.
            let status = self.inner.status_of(folder, "UIDVALIDITY UIDNEXT").await?;
            if status.uid_validity == Some(selected.validity) {
                uid_next = status.uid_next.unwrap_or(0);
            }
            if let Some(known) = lock(&self.inner.selections).get_mut(folder)
                && known.validity == selected.validity
            {
                known.uid_next = known.uid_next.max(uid_next);
            }
        }
        if uid_next == 0 {
            return Err(StoreError::Transient(format!(
                "{folder}: the server said neither in SELECT nor in STATUS what its UIDNEXT is"
            )));
        }
        Ok(vec![
            AppendProbe(format!("{}:{uid_next}", selected.validity));
            count
        ])
    }

    async fn append(
        &self,
        folder: &str,
        message: &Body,
        flags: &Flags,
        date: Option<Millis>,
        probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>> {
        // One message is an APPEND with one literal: the same command.
        let message = NewMessage {
            bytes: message,
            flags,
            date,
        };
        let ids = self.append_many(folder, &[message], probe).await?;
        Ok(ids.into_iter().next().flatten())
    }

    async fn append_many(
        &self,
        folder: &str,
        messages: &[NewMessage<'_>],
        _probe: &AppendProbe,
    ) -> StoreResult<Vec<Option<NativeId>>> {
        let inner = &self.inner;
        let name = inner.server_name(folder)?;
        // The server stores one APPEND after the other on a connection: large appends in
        // flight at once are spread over two, so two server processes store them. Small ones
        // are not worth the kilobyte a session costs to open.
        let bytes: u64 = messages.iter().map(|m| m.bytes.len()).sum();
        let spread = if bytes >= APPEND_SPREAD_BYTES as u64 {
            APPEND_CONNECTIONS
        } else {
            1
        };
        let (slot, _gate) = inner.any_spread(spread).await?;
        let caps = slot.session.caps.clone();
        let permanent = inner.permanent_flags(folder);
        // APPEND mailbox (flags) date {n+}<bytes> (flags) date {n+}<bytes> ... CRLF
        let mut line = b"APPEND ".to_vec();
        let mut pieces = Vec::new();
        wire::quoted_or_literal(&mut pieces, &mut line, &name, &caps);
        for message in messages {
            let (flag_list, dropped) = wire::flag_list(message.flags, permanent.as_deref());
            inner.note_dropped(folder, dropped);
            line.push(b' ');
            line.extend_from_slice(flag_list.as_bytes());
            if let Some(date) = message.date.and_then(wire::date_time) {
                line.push(b' ');
                line.extend_from_slice(date.as_bytes());
            }
            if caps.utf8 {
                // RFC 6855: with UTF8=ACCEPT enabled, a message (which may have UTF-8 in its
                // header) goes as `UTF8 (literal8)`. Always after a flag list, even `()`:
                // Courier 5.0 takes an atom right after the mailbox name for a flag.
                line.extend_from_slice(b" UTF8 (");
                wire::literal8(&mut pieces, &mut line, message.bytes.clone(), &caps);
                line.push(b')');
            } else {
                line.push(b' ');
                wire::literal(&mut pieces, &mut line, message.bytes.clone(), &caps);
            }
        }
        line.extend_from_slice(b"\r\n");
        pieces.push(Piece::Text(line));
        let done = run(&slot, pieces, Collect::Nothing).await?;
        if done.outcome != Outcome::Ok {
            let what = match messages.len() {
                1 => format!("APPEND to {folder}"),
                n => format!("APPEND of {n} messages to {folder}"),
            };
            return Err(refused(&done, &what));
        }
        Ok(match done.code {
            Some(DoneCode::AppendUids { validity, uids }) if uids.len() == messages.len() => {
                if let Some(&last) = uids.iter().max() {
                    inner.appended(folder, validity, last);
                }
                uids.into_iter()
                    .map(|uid| Some(make_id(validity, uid)))
                    .collect()
            }
            Some(DoneCode::AppendUid { validity, uid }) if messages.len() == 1 => {
                inner.appended(folder, validity, uid);
                vec![Some(make_id(validity, uid))]
            }
            _ => vec![None; messages.len()],
        })
    }

    async fn set_flags(&self, folder: &str, id: &NativeId, flags: &Flags) -> StoreResult<()> {
        // One item is a UID STORE of a one-UID set: the same command.
        one(self.set_flags_many(folder, &[(id, flags)]).await?)
    }

    async fn delete(&self, folder: &str, id: &NativeId) -> StoreResult<()> {
        if self.inner.caps().uidplus {
            // UID EXPUNGE of a one-UID set: the same commands as for many.
            return one(self.delete_many(folder, &[id]).await?);
        }
        // Without UID EXPUNGE, the check that nothing else is marked needs the connection
        // alone, and marking and expunging happen on it in order.
        let (alone, selected) = self.inner.exclusive(folder).await?;
        let slot = alone.slot.0.clone();
        let uid = current_uid(folder, id, selected.validity)?;
        let command = format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)\r\n");
        let done = run(
            &slot,
            vec![Piece::Text(command.into_bytes())],
            Collect::Nothing,
        )
        .await?;
        if done.outcome != Outcome::Ok {
            return Err(refused(&done, &format!("deleting in {folder}")));
        }
        // Without UID EXPUNGE, EXPUNGE removes every message marked \Deleted: only when this
        // one is the only such message, so nothing its owner marked goes with it. Otherwise it
        // stays marked \Deleted (hidden by most clients) until the owner expunges.
        let search = b"UID SEARCH DELETED\r\n".to_vec();
        let done = run(&slot, vec![Piece::Text(search)], Collect::All).await?;
        let marked: Vec<u32> = done
            .data
            .iter()
            .filter_map(|item| match item {
                Untagged::Search(uids) => Some(uids.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        if marked == [uid] {
            let expunge = b"EXPUNGE\r\n".to_vec();
            let done = run(&slot, vec![Piece::Text(expunge)], Collect::All).await?;
            if done.outcome != Outcome::Ok {
                return Err(refused(&done, &format!("expunging in {folder}")));
            }
        }
        Ok(())
    }

    async fn set_flags_many(
        &self,
        folder: &str,
        items: &[(&NativeId, &Flags)],
    ) -> StoreResult<Vec<StoreResult<()>>> {
        let shared = self.inner.shared_spread(folder, UPDATE_CONNECTIONS).await?;
        let validity = shared.selected.validity;
        // One UID STORE per distinct flag set, all sent at once.
        let mut groups: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
        let mut results: Vec<StoreResult<()>> = Vec::with_capacity(items.len());
        let mut list_of = Vec::with_capacity(items.len());
        for (id, flags) in items {
            match current_uid(folder, id, validity) {
                Ok(uid) => {
                    let (list, dropped) =
                        wire::flag_list(flags, shared.selected.permanent_flags.as_deref());
                    self.inner.note_dropped(folder, dropped);
                    groups.entry(list.clone()).or_default().insert(uid);
                    list_of.push(Some(list));
                    results.push(Ok(()));
                }
                Err(error) => {
                    list_of.push(None);
                    results.push(Err(error));
                }
            }
        }
        let runs = groups.iter().map(|(list, uids)| {
            let command = format!("UID STORE {} FLAGS.SILENT {list}\r\n", wire::uid_set(uids));
            run(
                &shared.slot,
                vec![Piece::Text(command.into_bytes())],
                Collect::Nothing,
            )
        });
        let mut refusals: HashMap<&String, StoreError> = HashMap::new();
        for (list, done) in groups.keys().zip(futures::future::join_all(runs).await) {
            let done = done?;
            if done.outcome != Outcome::Ok {
                refusals.insert(list, refused(&done, &format!("setting flags in {folder}")));
            }
        }
        for (result, list) in results.iter_mut().zip(&list_of) {
            if let Some(list) = list
                && let Some(error) = refusals.get(list)
            {
                *result = Err(error.clone());
            }
        }
        Ok(results)
    }

    async fn delete_many(
        &self,
        folder: &str,
        ids: &[&NativeId],
    ) -> StoreResult<Vec<StoreResult<()>>> {
        if !self.inner.caps().uidplus {
            // Without UID EXPUNGE each deletion checks what else is marked: one by one.
            return Ok(ferry_engine::store::delete_each(self, folder, ids).await);
        }
        let shared = self.inner.shared_spread(folder, UPDATE_CONNECTIONS).await?;
        let validity = shared.selected.validity;
        let mut uids = BTreeSet::new();
        let results: Vec<StoreResult<()>> = ids
            .iter()
            .map(|id| {
                current_uid(folder, id, validity).map(|uid| {
                    uids.insert(uid);
                })
            })
            .collect();
        if uids.is_empty() {
            return Ok(results);
        }
        // Marked, then expunged once the mark is done, on one connection (Dovecot may run
        // pipelined commands side by side, and an EXPUNGE sent with the STORE can miss its
        // flag); UID EXPUNGE removes only these messages, never others marked by their owner.
        let set = wire::uid_set(&uids);
        let marked = run(
            &shared.slot,
            vec![Piece::Text(
                format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)\r\n").into_bytes(),
            )],
            Collect::Nothing,
        )
        .await?;
        if marked.outcome != Outcome::Ok {
            return Err(refused(&marked, &format!("deleting in {folder}")));
        }
        let expunged = run(
            &shared.slot,
            vec![Piece::Text(format!("UID EXPUNGE {set}\r\n").into_bytes())],
            Collect::Nothing,
        )
        .await?;
        if expunged.outcome != Outcome::Ok {
            return Err(refused(&expunged, &format!("expunging in {folder}")));
        }
        Ok(results)
    }

    async fn move_item(
        &self,
        from: &str,
        id: &NativeId,
        to: &str,
        probe: &AppendProbe,
    ) -> StoreResult<Option<NativeId>> {
        let mut moved = self.move_many(from, &[id], to, probe).await?;
        moved.pop().unwrap_or(Ok(None))
    }

    /// One `UID MOVE set "to"` on the update connection; each message's new UID from the
    /// COPYUID the server sends with it (RFC 6851), whose source UIDs name the messages.
    async fn move_many(
        &self,
        from: &str,
        ids: &[&NativeId],
        to: &str,
        _probe: &AppendProbe,
    ) -> StoreResult<Vec<StoreResult<Option<NativeId>>>> {
        let inner = &self.inner;
        let destination = inner.server_name(to)?;
        let shared = inner.shared_spread(from, UPDATE_CONNECTIONS).await?;
        let validity = shared.selected.validity;
        let uids: Vec<StoreResult<u32>> = ids
            .iter()
            .map(|id| current_uid(from, id, validity))
            .collect();
        let set: BTreeSet<u32> = uids
            .iter()
            .filter_map(|uid| uid.as_ref().ok())
            .copied()
            .collect();
        if set.is_empty() {
            return Ok(uids.into_iter().map(|uid| uid.map(|_| None)).collect());
        }
        let caps = &shared.slot.session.caps;
        let verb = format!("UID MOVE {}", wire::uid_set(&set));
        let done = run(
            &shared.slot,
            inner.command(caps, &verb, &destination, ""),
            Collect::All,
        )
        .await?;
        if done.outcome != Outcome::Ok {
            return Err(refused(&done, &format!("moving from {from} to {to}")));
        }
        let mut new_uids: HashMap<u32, (u32, u32)> = HashMap::new();
        let codes = done
            .data
            .iter()
            .filter_map(|item| match item {
                Untagged::Code(code) => Some(code),
                _ => None,
            })
            .chain(done.code.as_ref());
        for code in codes {
            if let DoneCode::CopyUid {
                validity,
                source,
                destination,
            } = code
                && source.len() == destination.len()
            {
                for (old, new) in source.iter().zip(destination) {
                    if set.contains(old) {
                        new_uids.insert(*old, (*validity, *new));
                    }
                }
            }
        }
        Ok(uids
            .into_iter()
            .map(|uid| {
                let uid = uid?;
                Ok(new_uids.get(&uid).map(|&(validity, new)| {
                    inner.appended(to, validity, new);
                    make_id(validity, new)
                }))
            })
            .collect())
    }

    async fn find_appended(
        &self,
        folder: &str,
        probe: &AppendProbe,
        content: &ContentHash,
        key: &ContentKey,
    ) -> StoreResult<Vec<NativeId>> {
        // The probe is UIDVALIDITY:UIDNEXT, an id's shape.
        let (validity, from) = parse_id(&NativeId(probe.0.clone())).unwrap_or((0, 1));
        let current = self.inner.status(folder).await?;
        // Recreated since the probe: any message may be the one.
        let from = (current.uid_validity == Some(validity)).then_some(from);
        let (current_validity, hashes) = self.inner.hashes_from(folder, from, key).await?;
        Ok(hashes
            .into_iter()
            .filter(|(_, hash)| hash == content)
            .map(|(uid, _)| make_id(current_validity, uid))
            .collect())
    }

    async fn flush(&self) -> StoreResult<()> {
        // A server acknowledges only what it stored.
        Ok(())
    }

    fn notices(&self) -> Vec<String> {
        self.dropped_keywords()
            .into_iter()
            .map(|(folder, keyword)| {
                format!(
                    "{}: keyword {keyword:?} cannot be kept in {folder} (not a valid IMAP \
                     keyword, or not in the folder's PERMANENTFLAGS); messages were copied \
                     without it",
                    self.inner.described
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: usize = PIECE_BYTES;

    #[test]
    fn a_password_in_the_uri_is_refused_without_being_shown() {
        for uri in [
            "imap://alice:s3cr3t-word@mail.example.com",
            "imaps://alice:s3cr3t-word@mail.example.com:993/?tls=none",
            "imap://alice:s3cr3t-word@",
        ] {
            let options = ImapOptions {
                secret: None,
                ca_file: None,
                insecure: false,
                read_only: true,
            };
            let error = endpoint(uri, &options).expect_err("a password in the URI is refused");
            assert!(!error.contains("s3cr3t-word"), "{error}");
        }
        assert_eq!(
            redact("imap://bob:pw@host/?x=1"),
            "imap://bob:****@host/?x=1"
        );
        assert_eq!(redact("imap://bob@host"), "imap://bob@host");
        assert_eq!(redact("imap://bob:p w@ho st"), "imap://bob:****@ho st");
    }

    #[test]
    fn a_first_answer_is_taken_whole_only_when_it_can_be_the_whole_message() {
        let bytes = |n: usize| vec![b'x'; n];
        // The size said: whole when the bytes add up, whatever the server did with the range.
        assert_eq!(
            first_piece(1, bytes(10), Some(0), Some(10)),
            Ok(FirstPiece::Whole(bytes(10)))
        );
        assert_eq!(
            first_piece(1, bytes(3 * PIECE), None, Some(3 * PIECE as u32)),
            Ok(FirstPiece::Whole(bytes(3 * PIECE)))
        );
        assert_eq!(
            first_piece(1, bytes(PIECE), Some(0), Some(2 * PIECE as u32)),
            Ok(FirstPiece::Of(bytes(PIECE), Some(2 * PIECE as u64)))
        );
        // A range echoed without its origin is still a first piece.
        assert_eq!(
            first_piece(1, bytes(PIECE), None, Some(2 * PIECE as u32)),
            Ok(FirstPiece::Of(bytes(PIECE), Some(2 * PIECE as u64)))
        );
        // Short of the size (a NIL or cut answer), or longer: an error, never a short message.
        assert!(first_piece(1, bytes(0), Some(0), Some(10)).is_err());
        assert!(first_piece(1, bytes(PIECE - 1), Some(0), Some(PIECE as u32 + 5)).is_err());
        assert!(first_piece(1, bytes(11), None, Some(10)).is_err());
        // No size said: a body shorter than a piece is all of it; a full piece is continued.
        assert_eq!(
            first_piece(1, bytes(10), Some(0), None),
            Ok(FirstPiece::Whole(bytes(10)))
        );
        assert_eq!(
            first_piece(1, bytes(PIECE), Some(0), None),
            Ok(FirstPiece::Of(bytes(PIECE), None))
        );
        assert!(first_piece(1, bytes(10), Some(5), None).is_err());
    }
}
