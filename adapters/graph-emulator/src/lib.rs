//! A Microsoft Graph emulator for mail, built from Microsoft's documentation (each behaviour
//! names its page where it lives): a tenant with one app registration (client credentials)
//! and users whose mailboxes hold folders and messages, answered over HTTP as Graph answers:
//! OData paging and queries, `$value` MIME, deltas, immutable ids, `$batch`, throttling with
//! `Retry-After`, and faults on demand. It is what ferry's Graph store is tested against,
//! since no real tenant is reachable here; any Graph client can be pointed at it (the
//! `graph-emulator` binary).
//!
//! Layout: `world.rs` (the tenant's data), `api.rs` (routing, users, folders), `messages.rs`,
//! `delta.rs`, `query.rs` (OData options), `render.rs` (JSON and MIME), `auth.rs` (tokens),
//! `limits.rs` (throttling and counters), `server.rs` (HTTP, `$batch`), `control.rs`
//! (`/_emulator/`: counters, faults, state).
//!
//! Deliberately absent: calendars, contacts and tasks (a later issue), the mailbox
//! import/export API, certificate credentials, anything the adapter does not use.

pub mod api;
pub mod auth;
mod control;
mod delta;
mod exchange;
pub mod limits;
mod messages;
mod occurrences;
mod pim;
pub mod query;
pub mod render;
mod server;
pub mod world;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use api::World;
pub use limits::{Counters, Limits};
pub use world::Tenant;

/// How to set up the emulated tenant.
#[derive(Debug, Clone)]
pub struct Config {
    pub tenant: String,
    pub client_id: String,
    /// The app's client secret; empty: the app has none.
    pub client_secret: String,
    /// A certificate (PEM) uploaded to the app registration, whose key signs client assertions.
    pub client_certificate: Option<String>,
    /// User principal names, each with an empty, licensed mailbox.
    pub users: Vec<String>,
    /// How long an access token lives.
    pub token_lifetime: Duration,
    pub limits: Limits,
    /// Where the state is kept between runs of the emulator (JSON), if anywhere.
    pub state_file: Option<PathBuf>,
    /// Certificate chain and key (PEM) to serve https instead of http.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Config {
    /// A tenant for tests: tokens of an hour, no limits.
    pub fn new(tenant: &str, client_id: &str, client_secret: &str, users: &[&str]) -> Config {
        Config {
            tenant: tenant.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            client_certificate: None,
            users: users.iter().map(|u| u.to_string()).collect(),
            token_lifetime: Duration::from_secs(3599),
            limits: Limits::none(),
            state_file: None,
            tls: None,
        }
    }
}

/// What the server's tasks share.
/// The meter of the app's requests over every mailbox (no mailbox has this index).
const APP_METER: usize = usize::MAX;

#[derive(Debug)]
pub struct Shared {
    app: auth::App,
    world: Mutex<World>,
    tokens: Mutex<auth::Tokens>,
    meters: Mutex<HashMap<usize, limits::Meter>>,
    limits: Mutex<Limits>,
    dirty: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    fn tokens(&self) -> MutexGuard<'_, auth::Tokens> {
        lock(&self.tokens)
    }

    fn limits(&self) -> Limits {
        lock(&self.limits).clone()
    }

    fn set_limits(&self, limits: Limits) {
        *lock(&self.limits) = limits;
    }

    fn meter<T>(&self, mailbox: usize, f: impl FnOnce(&mut limits::Meter) -> T) -> T {
        f(lock(&self.meters).entry(mailbox).or_default())
    }

    fn reset_counters(&self) {
        lock(&self.meters).clear();
    }

    fn mark_dirty(&self, method: &str) {
        if method != "GET" {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }
}

/// A running emulator.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    https: bool,
    server: tokio::task::JoinHandle<()>,
    saver: Option<tokio::task::JoinHandle<()>>,
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("cannot read the state file {0}: {1}")]
    State(PathBuf, String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the app's certificate: {0}")]
    Certificate(String),
}

impl Emulator {
    /// Starts serving on `listen` (port 0: any free port).
    pub async fn start(config: Config, listen: SocketAddr) -> Result<Emulator, StartError> {
        let tenant = match &config.state_file {
            Some(path) if path.exists() => {
                let bytes = std::fs::read(path)
                    .map_err(|e| StartError::State(path.clone(), e.to_string()))?;
                serde_json::from_slice::<Tenant>(&bytes)
                    .map_err(|e| StartError::State(path.clone(), e.to_string()))?
            }
            _ => {
                let mut tenant = Tenant::new(&config.tenant, &config.client_id, &config.users);
                let sku = tenant.skus[0].sku_id.clone();
                for user in &mut tenant.users {
                    user.licenses.push(sku.clone());
                }
                tenant
            }
        };
        let tls = match &config.tls {
            Some((cert, key)) => Some(acceptor(cert, key)?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| StartError::Listen(listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Listen(listen, e))?;
        let shared = Arc::new(Shared {
            app: auth::App {
                tenant: config.tenant.clone(),
                client_id: config.client_id.clone(),
                client_secret: Some(config.client_secret.clone()).filter(|s| !s.is_empty()),
                certificate: match &config.client_certificate {
                    Some(pem) => {
                        Some(auth::Registered::from_pem(pem).map_err(StartError::Certificate)?)
                    }
                    None => None,
                },
                lifetime: config.token_lifetime,
            },
            world: Mutex::new(World::new(tenant)),
            tokens: Mutex::default(),
            meters: Mutex::default(),
            limits: Mutex::new(config.limits.clone()),
            dirty: AtomicBool::new(false),
        });
        let https = tls.is_some();
        let server = tokio::spawn(server::accept_loop(shared.clone(), listener, tls));
        let saver = config.state_file.clone().map(|path| {
            let shared = shared.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if shared.dirty.swap(false, Ordering::Relaxed) {
                        let _ = save(&shared, &path);
                    }
                }
            })
        });
        Ok(Emulator {
            shared,
            addr,
            https,
            server,
            saver,
        })
    }

    /// `http://127.0.0.1:PORT` (or https): the root of both the token authority and Graph.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets a user's password, so the delegated grant issues tokens for them.
    pub fn set_password(&self, upn: &str, password: &str) {
        self.shared.tokens().set_password(upn, password);
    }

    /// A mailbox's counters.
    pub fn counters(&self, upn: &str) -> Counters {
        let index = self.shared.world().tenant.user_index(upn);
        index.map_or_else(Counters::default, |index| {
            self.shared.meter(index, |meter| meter.counters.clone())
        })
    }

    /// What the emulator saw of the app over every mailbox (its concurrency, when
    /// [`Limits::app_concurrency`] is set).
    pub fn app_counters(&self) -> Counters {
        self.shared.meter(APP_METER, |meter| meter.counters.clone())
    }

    /// Runs `f` on the state, under the lock.
    pub fn with_world<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.shared.world())
    }

    pub fn set_limits(&self, limits: Limits) {
        self.shared.set_limits(limits);
    }

    pub fn reset_counters(&self) {
        self.shared.reset_counters();
    }

    /// Writes the state file now.
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        save(&self.shared, path)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(saver) = &self.saver {
            saver.abort();
        }
    }
}

fn save(shared: &Shared, path: &std::path::Path) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(&shared.world().tenant)?;
    let temporary = path.with_extension("saving");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

fn acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, StartError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| StartError::Tls(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| StartError::Tls(format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| StartError::Tls(format!("{}: {e}", key.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StartError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| StartError::Tls(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
