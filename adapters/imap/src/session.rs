//! Opening a session: TCP, TLS (implicit or STARTTLS), the greeting, capabilities, login,
//! ENABLE and NAMESPACE. What follows runs over the pipelined [`Conn`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use imap_codec::GreetingCodec;
use imap_codec::decode::Decoder as _;
use imap_codec::imap_types::response::{Code, GreetingKind};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use super::conn::{Collect, Conn, DoneCode, MAX_RESPONSE_BYTES, Outcome, Piece, Untagged, Wire};
use super::framer::Framer;
use super::wire::quoted_or_literal;
use ferry_engine::store::StoreError;
pub use ferry_secret::Secret;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`imaps://`, port 993).
    Implicit,
    /// STARTTLS, required (`imap://`).
    StartTls,
    /// Plaintext (`imap://...?tls=none`).
    None,
}

/// How to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// AUTHENTICATE PLAIN when offered, else LOGIN.
    Password,
    /// LOGIN.
    Login,
    /// AUTHENTICATE PLAIN.
    Plain,
    /// AUTHENTICATE XOAUTH2 with an OAuth 2 access token (Microsoft 365, Gmail).
    XOAuth2,
    /// AUTHENTICATE OAUTHBEARER (RFC 7628).
    OAuthBearer,
}

/// Everything needed to open a session with one server.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub user: String,
    pub secret: Option<Secret>,
    pub auth: AuthMethod,
    pub tls: Arc<rustls::ClientConfig>,
    /// How long a command may wait for any byte from the server.
    pub timeout: Duration,
    /// Whether to ask for COMPRESS=DEFLATE when the server offers it.
    pub compress: bool,
    /// Whether to enable UTF8=ACCEPT when the server offers it.
    pub utf8: bool,
}

impl Endpoint {
    /// Whether the host is this machine.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether the host is this machine or an address of a private or link-local network,
    /// where the link is fast and compressing would cost more time than it saves.
    pub fn is_nearby(&self) -> bool {
        let ip = self.host.trim_matches(['[', ']']).parse::<IpAddr>();
        self.is_loopback()
            || ip.is_ok_and(|ip| match ip {
                IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
                IpAddr::V6(v6) => v6.is_unique_local() || v6.is_unicast_link_local(),
            })
    }
}

/// What the server can do, from its CAPABILITY after login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps {
    pub names: Vec<String>,
    pub literal_plus: bool,
    pub literal_minus: bool,
    pub uidplus: bool,
    pub condstore: bool,
    pub qresync: bool,
    pub multiappend: bool,
    pub special_use: bool,
    pub list_extended: bool,
    pub list_status: bool,
    pub namespace: bool,
    pub enable: bool,
    pub unselect: bool,
    /// MOVE (RFC 6851).
    pub moves: bool,
    /// UTF8=ACCEPT (RFC 6855/9755) is offered (UTF8=ONLY implies it).
    pub utf8_accept: bool,
    /// UTF8=ACCEPT is enabled on the session: mailbox names travel as UTF-8 (quoted strings
    /// may hold it), and messages are appended as `UTF8 (~{n})`.
    pub utf8: bool,
    pub append_limit: Option<u64>,
}

impl Caps {
    pub fn from_names(names: Vec<String>) -> Caps {
        let has = |name: &str| names.iter().any(|n| n.eq_ignore_ascii_case(name));
        let append_limit = names.iter().find_map(|n| {
            let upper = n.to_ascii_uppercase();
            upper.strip_prefix("APPENDLIMIT=")?.parse().ok()
        });
        Caps {
            literal_plus: has("LITERAL+"),
            literal_minus: has("LITERAL-"),
            uidplus: has("UIDPLUS"),
            condstore: has("CONDSTORE") || has("QRESYNC"),
            qresync: has("QRESYNC"),
            multiappend: has("MULTIAPPEND"),
            special_use: has("SPECIAL-USE"),
            list_extended: has("LIST-EXTENDED"),
            list_status: has("LIST-STATUS"),
            namespace: has("NAMESPACE"),
            enable: has("ENABLE"),
            unselect: has("UNSELECT"),
            moves: has("MOVE"),
            utf8_accept: has("UTF8=ACCEPT") || has("UTF8=ONLY"),
            utf8: false,
            append_limit,
            names,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// Whether a literal of `len` bytes may be sent without waiting for `+`.
    pub fn non_sync_literal(&self, len: usize) -> bool {
        self.literal_plus || (self.literal_minus && len <= 4096)
    }
}

/// A logged-in session.
#[derive(Debug)]
pub struct Session {
    pub conn: Conn,
    pub caps: Caps,
    /// The personal namespace's prefix (e.g. `INBOX.` on Courier and Cyrus) and delimiter.
    pub prefix: String,
    pub delimiter: Option<char>,
    /// QRESYNC is offered and not yet enabled on this session: it is enabled with the first
    /// command that needs it ([`Session::take_enable`]). A session that only copies or
    /// updates never needs it, and without it the server adds no `[CLOSED]` per SELECT.
    qresync_pending: std::sync::atomic::AtomicBool,
}

impl Session {
    /// `ENABLE QRESYNC`, the first time a caller asks on this session; to be sent before
    /// (pipelined with) the command that needs QRESYNC.
    pub fn take_enable(&self) -> Option<Vec<Piece>> {
        self.qresync_pending
            .swap(false, std::sync::atomic::Ordering::Relaxed)
            .then(|| text("ENABLE QRESYNC\r\n"))
    }
}

fn transient(endpoint: &Endpoint, what: impl std::fmt::Display) -> StoreError {
    StoreError::Transient(format!("{}:{}: {what}", endpoint.host, endpoint.port))
}

fn unusable(endpoint: &Endpoint, what: impl std::fmt::Display) -> StoreError {
    StoreError::Unusable(format!("{}:{}: {what}", endpoint.host, endpoint.port))
}

/// Opens and logs in a new session.
pub async fn open(endpoint: &Endpoint) -> Result<Session, StoreError> {
    let label = format!("{}:{}", endpoint.host, endpoint.port);
    let connect = TcpStream::connect((endpoint.host.trim_matches(['[', ']']), endpoint.port));
    let mut tcp = match tokio::time::timeout(endpoint.timeout, connect).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(error)) => return Err(transient(endpoint, format!("cannot connect: {error}"))),
        Err(_) => return Err(transient(endpoint, "connection timed out")),
    };
    let _ = tcp.set_nodelay(true);
    let mut framer = Framer::new(MAX_RESPONSE_BYTES as usize);
    let mut greeting_caps = None;
    let stream: Box<dyn Wire> = match endpoint.security {
        Security::Implicit => {
            let mut tls = handshake(endpoint, tcp).await?;
            greeting_caps = greet(endpoint, &mut tls, &mut framer).await?;
            Box::new(tls)
        }
        Security::None => {
            greeting_caps = greet(endpoint, &mut tcp, &mut framer).await?;
            Box::new(tcp)
        }
        Security::StartTls => {
            let caps = match greet(endpoint, &mut tcp, &mut framer).await? {
                Some(caps) => caps,
                None => within(
                    endpoint,
                    sequential(&mut tcp, &mut framer, "c0 CAPABILITY\r\n"),
                )
                .await?
                .1
                .unwrap_or_default(),
            };
            if !caps.iter().any(|c| c.eq_ignore_ascii_case("STARTTLS")) {
                return Err(unusable(
                    endpoint,
                    "the server does not offer STARTTLS; use imaps:// or, on a trusted network, \
                     add ?tls=none to the URI",
                ));
            }
            let (ok, _) = within(
                endpoint,
                sequential(&mut tcp, &mut framer, "s0 STARTTLS\r\n"),
            )
            .await?;
            if !ok {
                return Err(unusable(endpoint, "the server refused STARTTLS"));
            }
            // Nothing sent before the handshake may be used after it (RFC 3501 6.2.1).
            framer = Framer::new(MAX_RESPONSE_BYTES as usize);
            Box::new(handshake(endpoint, tcp).await?)
        }
    };
    finish(endpoint, stream, framer, label, greeting_caps).await
}

/// Reads the greeting; returns the capabilities it carried.
async fn greet<S: AsyncRead + Unpin>(
    endpoint: &Endpoint,
    stream: &mut S,
    framer: &mut Framer,
) -> Result<Option<Vec<String>>, StoreError> {
    match within(endpoint, read_greeting(stream, framer)).await? {
        Greeted::Bye(text) => Err(transient(endpoint, format!("the server refused: {text}"))),
        Greeted::Ok(caps) | Greeted::PreAuth(caps) => Ok(caps),
    }
}

async fn within<T>(
    endpoint: &Endpoint,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(endpoint.timeout, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(transient(endpoint, error)),
        Err(_) => Err(transient(endpoint, "the server did not answer in time")),
    }
}

async fn handshake(
    endpoint: &Endpoint,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, StoreError> {
    let name = ServerName::try_from(endpoint.host.trim_matches(['[', ']']).to_owned())
        .map_err(|error| unusable(endpoint, format!("not a host name for TLS: {error}")))?;
    let connector = tokio_rustls::TlsConnector::from(endpoint.tls.clone());
    match tokio::time::timeout(endpoint.timeout, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::InvalidData => Err(unusable(
            endpoint,
            format!(
                "TLS failed: {error} (give the server's CA with --ca-file, or --insecure to \
                 skip verification)"
            ),
        )),
        Ok(Err(error)) => Err(transient(endpoint, format!("TLS failed: {error}"))),
        Err(_) => Err(transient(endpoint, "TLS handshake timed out")),
    }
}

enum Greeted {
    Ok(Option<Vec<String>>),
    PreAuth(Option<Vec<String>>),
    Bye(String),
}

async fn fill<S: AsyncRead + Unpin>(
    stream: &mut S,
    framer: &mut Framer,
) -> Result<Vec<u8>, String> {
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(frame) = framer.next() {
            return frame
                .map(<[u8]>::to_vec)
                .map_err(|_| "the server sent an overlong response".to_owned());
        }
        let n = stream
            .read(&mut buffer)
            .await
            .map_err(|error| format!("connection lost: {error}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        framer.enqueue(&buffer[..n]);
    }
}

async fn read_greeting<S: AsyncRead + Unpin>(
    stream: &mut S,
    framer: &mut Framer,
) -> Result<Greeted, String> {
    let bytes = fill(stream, framer).await?;
    let greeting = match GreetingCodec::default().decode(&bytes) {
        Ok(([], greeting)) => greeting,
        _ => return Err("the server's greeting is not IMAP".to_owned()),
    };
    let caps = match greeting.code {
        Some(Code::Capability(caps)) => Some(caps.as_ref().iter().map(|c| c.to_string()).collect()),
        _ => None,
    };
    Ok(match greeting.kind {
        GreetingKind::Ok => Greeted::Ok(caps),
        GreetingKind::PreAuth => Greeted::PreAuth(caps),
        GreetingKind::Bye => Greeted::Bye(greeting.text.as_ref().to_owned()),
    })
}

/// Sends one command before the pipelined connection starts and reads up to its completion;
/// returns whether it succeeded and any capabilities seen.
async fn sequential<S: AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    framer: &mut Framer,
    command: &str,
) -> Result<(bool, Option<Vec<String>>), String> {
    use imap_codec::ResponseCodec;
    use imap_codec::imap_types::response::{Data, Response, Status, StatusKind};
    stream
        .write_all(command.as_bytes())
        .await
        .map_err(|error| format!("connection lost: {error}"))?;
    stream
        .flush()
        .await
        .map_err(|error| format!("connection lost: {error}"))?;
    let tag = command.split(' ').next().unwrap_or_default();
    let mut caps = None;
    loop {
        let bytes = fill(stream, framer).await?;
        let response = match ResponseCodec::default().decode(&bytes) {
            Ok(([], response)) => response,
            _ => return Err("unreadable response from the server".to_owned()),
        };
        match response {
            Response::Data(Data::Capability(list)) => {
                caps = Some(list.as_ref().iter().map(|c| c.to_string()).collect());
            }
            Response::Status(Status::Tagged(tagged)) if tagged.tag.as_ref() == tag => {
                return Ok((tagged.body.kind == StatusKind::Ok, caps));
            }
            Response::Status(Status::Bye(bye)) => {
                return Err(format!(
                    "the server ended the session: {}",
                    bye.text.as_ref()
                ));
            }
            _ => {}
        }
    }
}

/// Logs in over the (protected) stream and learns what the server can do.
async fn finish(
    endpoint: &Endpoint,
    stream: Box<dyn Wire>,
    framer: Framer,
    label: String,
    greeting_caps: Option<Vec<String>>,
) -> Result<Session, StoreError> {
    let conn = Conn::start(stream, framer, endpoint.timeout, label);
    let run = |pieces: Vec<Piece>, collect: Collect| {
        let conn = &conn;
        async move {
            conn.run(pieces, collect)
                .await
                .map_err(|error| transient(endpoint, error))
        }
    };
    // Capabilities from the greeting (or asked), then from the login's OK (or asked again):
    // each saves a round trip when the server volunteers them.
    let before = match greeting_caps {
        Some(names) => Caps::from_names(names),
        None => Caps::from_names(capabilities(
            &run(text("CAPABILITY\r\n"), Collect::All).await?.data,
        )),
    };
    let caps = match login(endpoint, &conn, &before).await? {
        Some(names) => Caps::from_names(names),
        None => Caps::from_names(capabilities(
            &run(text("CAPABILITY\r\n"), Collect::All).await?.data,
        )),
    };
    // COMPRESS=DEFLATE first, alone (nothing may follow it before its answer): the rest of
    // the session is deflated both ways.
    if endpoint.compress && caps.has("COMPRESS=DEFLATE") {
        conn.compress()
            .await
            .map_err(|error| transient(endpoint, error))?;
    }
    // ENABLE (CONDSTORE, UTF8=ACCEPT; QRESYNC waits until a command needs it) and NAMESPACE
    // go out together: one round trip for both. NAMESPACE goes second, so that its prefix
    // comes in UTF-8 when UTF8=ACCEPT was enabled.
    let qresync_pending = caps.qresync && caps.enable;
    let mut wanted = Vec::new();
    if caps.enable && caps.condstore && !qresync_pending {
        wanted.push("CONDSTORE");
    }
    if caps.enable && caps.utf8_accept && endpoint.utf8 {
        wanted.push("UTF8=ACCEPT");
    }
    let enable = async {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        run(
            text(&format!("ENABLE {}\r\n", wanted.join(" "))),
            Collect::All,
        )
        .await
        .map(|done| done.data)
    };
    let namespace = async {
        if !caps.namespace {
            return Ok(Vec::new());
        }
        run(text("NAMESPACE\r\n"), Collect::All)
            .await
            .map(|done| done.data)
    };
    let (enabled, named) = futures::future::join(enable, namespace).await;
    let (mut prefix, mut delimiter) = (String::new(), None);
    let mut caps = caps;
    for item in enabled?.into_iter().chain(named?) {
        match item {
            Untagged::Namespace {
                prefix: p,
                delimiter: d,
            } => {
                prefix = String::from_utf8_lossy(&p).into_owned();
                delimiter = d;
            }
            Untagged::Enabled(names) => {
                caps.utf8 |= names.iter().any(|n| n == "UTF8=ACCEPT" || n == "UTF8=ONLY");
            }
            _ => {}
        }
    }
    Ok(Session {
        conn,
        caps,
        prefix,
        delimiter,
        qresync_pending: std::sync::atomic::AtomicBool::new(qresync_pending),
    })
}

fn text(command: &str) -> Vec<Piece> {
    vec![Piece::Text(command.as_bytes().to_vec())]
}

fn capabilities(data: &[Untagged]) -> Vec<String> {
    data.iter()
        .rev()
        .find_map(|item| match item {
            Untagged::Capability(names) => Some(names.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Logs in; returns the capabilities the server sent with its OK, if it did.
async fn login(
    endpoint: &Endpoint,
    conn: &Conn,
    caps: &Caps,
) -> Result<Option<Vec<String>>, StoreError> {
    let Some(secret) = &endpoint.secret else {
        return Err(unusable(
            endpoint,
            "no password: give it with --from-password-file / --to-password-file, \
             --from-password-command / --to-password-command, or FERRY_FROM_PASSWORD / \
             FERRY_TO_PASSWORD",
        ));
    };
    let secret = secret.read()?;
    let offers = |mechanism: &str| caps.has(&format!("AUTH={mechanism}"));
    let sasl = |mechanism: &str, response: Zeroizing<Vec<u8>>| {
        let encoded = Zeroizing::new(base64_encode(&response));
        if caps.has("SASL-IR") {
            vec![Piece::Text(
                format!("AUTHENTICATE {mechanism} {}\r\n", encoded.as_str()).into_bytes(),
            )]
        } else {
            vec![
                Piece::Text(format!("AUTHENTICATE {mechanism}\r\n").into_bytes()),
                Piece::Literal {
                    data: format!("{}\r\n", encoded.as_str()).into_bytes().into(),
                    sync: true,
                },
            ]
        }
    };
    let user = endpoint.user.as_str();
    let pieces = match endpoint.auth {
        AuthMethod::XOAuth2 => sasl(
            "XOAUTH2",
            Zeroizing::new(
                format!("user={user}\x01auth=Bearer {}\x01\x01", secret.as_str()).into_bytes(),
            ),
        ),
        AuthMethod::OAuthBearer => sasl(
            "OAUTHBEARER",
            Zeroizing::new(
                format!(
                    "n,a={user},\x01host={}\x01port={}\x01auth=Bearer {}\x01\x01",
                    endpoint.host,
                    endpoint.port,
                    secret.as_str()
                )
                .into_bytes(),
            ),
        ),
        AuthMethod::Plain => sasl(
            "PLAIN",
            Zeroizing::new(format!("\0{user}\0{}", secret.as_str()).into_bytes()),
        ),
        AuthMethod::Password if offers("PLAIN") => sasl(
            "PLAIN",
            Zeroizing::new(format!("\0{user}\0{}", secret.as_str()).into_bytes()),
        ),
        AuthMethod::Password | AuthMethod::Login => {
            if caps.has("LOGINDISABLED") {
                return Err(unusable(
                    endpoint,
                    "the server refuses LOGIN on this connection (LOGINDISABLED); use TLS",
                ));
            }
            let mut line = b"LOGIN ".to_vec();
            let mut pieces = Vec::new();
            quoted_or_literal(&mut pieces, &mut line, user.as_bytes(), caps);
            line.push(b' ');
            quoted_or_literal(&mut pieces, &mut line, secret.as_bytes(), caps);
            line.extend_from_slice(b"\r\n");
            pieces.push(Piece::Text(line));
            pieces
        }
    };
    let done = conn
        .run(pieces, Collect::All)
        .await
        .map_err(|error| transient(endpoint, error))?;
    match done.outcome {
        Outcome::Ok => Ok(match done.code {
            Some(DoneCode::Capability(names)) => Some(names),
            _ => None,
        }),
        _ => {
            if matches!(&done.code, Some(DoneCode::Named(name)) if name == "UNAVAILABLE" || name == "LIMIT")
            {
                Err(StoreError::Throttled {
                    retry_after_ms: None,
                    reason: format!("login: {}", done.text),
                })
            } else {
                Err(unusable(
                    endpoint,
                    format!("login refused for {user}: {}", done.text),
                ))
            }
        }
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_read_case_insensitively() {
        let caps = Caps::from_names(
            [
                "IMAP4rev1",
                "literal+",
                "UIDPLUS",
                "QRESYNC",
                "APPENDLIMIT=35651584",
            ]
            .map(String::from)
            .to_vec(),
        );
        assert!(caps.literal_plus && caps.uidplus && caps.qresync && caps.condstore);
        assert_eq!(caps.append_limit, Some(35_651_584));
        assert!(caps.non_sync_literal(1 << 20));
        let plain = Caps::from_names(vec!["IMAP4rev1".into(), "LITERAL-".into()]);
        assert!(plain.non_sync_literal(4096) && !plain.non_sync_literal(4097));
    }
}
