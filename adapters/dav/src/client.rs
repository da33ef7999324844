//! The HTTP side: WebDAV methods over reqwest (rustls with ring and the system's roots), Basic
//! or bearer authentication with the side's password read at each request, and the answers'
//! statuses as `StoreError` classes: 401/403 unusable, 404 not found, 412 (a precondition:
//! If-Match, If-None-Match) a conflict, 429 and 503 throttled, other 5xx transient, 507 no
//! room, other 4xx permanent in the server's words.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ferry_engine::store::{StoreError, StoreResult};
use ferry_secret::Secret;
use reqwest::Method;

use crate::uri::{Auth, DavUri};

/// An answer: status, ETag header, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub etag: Option<String>,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A condition on a write.
#[derive(Debug, Clone, Copy)]
pub enum Condition<'a> {
    None,
    /// `If-None-Match: *`: only if nothing is there.
    Absent,
    /// `If-Match: ETAG`: only if it is at that version.
    Matches(&'a str),
}

#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    uri: DavUri,
    secret: Option<Secret>,
}

impl Client {
    pub fn new(uri: DavUri, secret: Option<Secret>) -> StoreResult<Client> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Unusable(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(300))
            .pool_max_idle_per_host(8)
            .build()
            .map_err(|e| StoreError::Unusable(format!("HTTP client: {e}")))?;
        Ok(Client { http, uri, secret })
    }

    pub fn uri(&self) -> &DavUri {
        &self.uri
    }

    /// The absolute URL of a path on the server.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.uri.root)
        }
    }

    /// Sends a request; its answer whatever its status, but throttling and transport errors.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
        condition: Condition<'_>,
    ) -> StoreResult<Answer> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|e| StoreError::Permanent(format!("{method}: {e}")))?;
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(secret) = &self.secret {
            let secret = secret.read()?;
            let value = match self.uri.auth {
                Auth::Basic => {
                    let pair = zeroize::Zeroizing::new(format!("{}:{}", self.uri.user, *secret));
                    format!("Basic {}", STANDARD.encode(pair.as_bytes()))
                }
                Auth::Bearer => format!("Bearer {}", *secret),
            };
            request = request.header("authorization", value);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        match condition {
            Condition::None => {}
            Condition::Absent => request = request.header("if-none-match", "*"),
            Condition::Matches(etag) => request = request.header("if-match", etag),
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let what = format!("{method} {path}");
        let response = request
            .send()
            .await
            .map_err(|e| StoreError::Transient(format!("{what}: {}", without_url(&e))))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header("etag");
        let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        let body = response
            .bytes()
            .await
            .map_err(|e| StoreError::Transient(format!("{what}: {}", without_url(&e))))?;
        if status == 429 || status == 503 {
            return Err(StoreError::Throttled {
                retry_after_ms: retry_after.map(|s| s * 1000),
                reason: format!("{what}: HTTP {status}"),
            });
        }
        Ok(Answer { status, etag, body })
    }

    /// The same, its answer only when 2xx (207 included), else the error its status says.
    pub async fn send_ok(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
        condition: Condition<'_>,
    ) -> StoreResult<Answer> {
        let answer = self.send(method, path, headers, body, condition).await?;
        if (200..300).contains(&answer.status) {
            return Ok(answer);
        }
        Err(classify(method, path, &answer))
    }
}

/// The error a non-2xx answer stands for.
pub fn classify(method: &str, path: &str, answer: &Answer) -> StoreError {
    let said = answer.text();
    let said = said.lines().next().unwrap_or_default();
    let said = format!("{method} {path}: HTTP {} {said}", answer.status);
    match answer.status {
        401 | 403 => StoreError::Unusable(format!("the server refused: {said}")),
        404 | 410 => StoreError::NotFound(said),
        412 => StoreError::Conflict(said),
        507 => StoreError::Full(said),
        500..=599 => StoreError::Transient(said),
        _ => StoreError::Permanent(said),
    }
}

/// A transport error in words, without the URL.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
