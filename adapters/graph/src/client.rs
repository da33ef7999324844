//! One mailbox's HTTP client: app-only tokens by the client credentials flow
//! (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow),
//! refreshed before they expire and once more when Graph answers 401, and Graph's answers
//! turned into `StoreError` classes (https://learn.microsoft.com/en-us/graph/errors):
//! 429 throttled with its `Retry-After`, 5xx transient, 401/403 and a mailbox not enabled
//! unusable, 404 not found, other 4xx permanent in Graph's own words. Every request asks for
//! immutable ids (https://learn.microsoft.com/en-us/graph/outlook-immutable-id).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_engine::store::{StoreError, StoreResult};
use ferry_secret::Secret;
use reqwest::Method;
use serde_json::Value;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::credential::Credential;
use crate::uri::GraphUri;

/// How long before its expiry a token is replaced: a tenth of its life, at most 5 minutes.
fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

#[derive(Debug)]
struct Token {
    value: Zeroizing<String>,
    refresh_at: Instant,
}

/// An answer: its status, `Retry-After` and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn json(&self) -> StoreResult<Value> {
        serde_json::from_slice(&self.body).map_err(|error| {
            StoreError::Transient(format!(
                "Graph answered something that is not JSON: {error}"
            ))
        })
    }
}

/// What a request carries.
#[derive(Debug, Clone)]
pub enum Payload {
    None,
    Json(Value),
    /// JSON encoded already (a create whose size was checked as it will be sent).
    Encoded(String),
    /// Bytes of a type (a contact's photo).
    Raw(Vec<u8>, String),
}

#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    uri: GraphUri,
    secret: Option<Secret>,
    token: Mutex<Option<Token>>,
}

impl Client {
    pub fn new(uri: GraphUri, secret: Option<Secret>) -> StoreResult<Client> {
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
        Ok(Client {
            http,
            uri,
            secret,
            token: Mutex::new(None),
        })
    }

    pub fn uri(&self) -> &GraphUri {
        &self.uri
    }

    /// A valid access token, fetched anew when the one held is near its end (or `force`).
    async fn token(&self, force: bool) -> StoreResult<Zeroizing<String>> {
        let mut held = self.token.lock().await;
        if let Some(token) = held
            .as_ref()
            .filter(|t| !force && Instant::now() < t.refresh_at)
        {
            return Ok(token.value.clone());
        }
        let secret = self
            .secret
            .as_ref()
            .ok_or_else(|| {
                StoreError::Unusable(format!(
                    "{}: the app's client secret or certificate is needed (a file, a variable \
                     or a command)",
                    self.uri.describe()
                ))
            })?
            .read()?;
        if self.uri.user_token {
            // A user's token as given: used until refused, then read again.
            let token = Token {
                value: Zeroizing::new(secret.trim().to_string()),
                refresh_at: Instant::now() + Duration::from_secs(24 * 3600),
            };
            let value = token.value.clone();
            *held = Some(token);
            return Ok(value);
        }
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.uri.authority, self.uri.tenant
        );
        let credential = Credential::parse(secret)?;
        let now = chrono::Utc::now().timestamp();
        let proof = credential.fields(&self.uri.client_id, &url, now)?;
        let body: String = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("client_id", &self.uri.client_id);
            for (name, value) in &proof {
                form.append_pair(name, value);
            }
            form.append_pair("grant_type", "client_credentials")
                .append_pair("scope", &format!("{}/.default", self.uri.resource()))
                .finish()
        };
        let body = Zeroizing::new(body);
        let started = Instant::now();
        let response = self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.as_bytes().to_vec())
            .send()
            .await
            .map_err(|e| {
                StoreError::Transient(format!("token request to {url}: {}", no_url(&e)))
            })?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| StoreError::Transient(format!("token answer: {}", no_url(&e))))?;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status != 200 {
            // The identity platform's own words (never the secret, which it does not echo).
            let said = json["error_description"]
                .as_str()
                .or(json["error"].as_str())
                .unwrap_or("no reason given");
            let said = said.lines().next().unwrap_or(said);
            let error = format!(
                "the tenant {} refused the app {}'s credentials (HTTP {status}): {said}",
                self.uri.tenant, self.uri.client_id
            );
            return Err(if status >= 500 || status == 429 {
                StoreError::Transient(error)
            } else {
                StoreError::Unusable(error)
            });
        }
        let (Some(value), Some(lifetime)) =
            (json["access_token"].as_str(), json["expires_in"].as_u64())
        else {
            return Err(StoreError::Unusable(
                "the token answer has no access_token or expires_in".into(),
            ));
        };
        let lifetime = Duration::from_secs(lifetime);
        let token = Token {
            value: Zeroizing::new(value.to_string()),
            refresh_at: started + lifetime - refresh_margin(lifetime),
        };
        let value = token.value.clone();
        *held = Some(token);
        Ok(value)
    }

    /// The absolute URL of a Graph path (`/users/…`), or a link Graph gave, as it is.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}/v1.0{path}", self.uri.endpoint)
        }
    }

    /// Sends a request; its answer when 2xx, else the error its status says.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        payload: Payload,
        prefer: &[&str],
    ) -> StoreResult<Answer> {
        let answer = self.send_raw(method, path, payload, prefer).await?;
        check(answer)
    }

    /// Sends a request that deletes something which may be gone already (a retry after a
    /// lost reply): done either way.
    pub async fn send_unless_gone(&self, method: Method, path: &str) -> StoreResult<()> {
        match self.send(method, path, Payload::None, &[]).await {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Sends a request; its answer whatever its status, but 401 (retried once with a new
    /// token) and throttling (an error carrying the wait asked).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        payload: Payload,
        prefer: &[&str],
    ) -> StoreResult<Answer> {
        let url = self.url(path);
        let mut retried = false;
        loop {
            let token = self.token(retried).await?;
            let mut preferences = vec!["IdType=\"ImmutableId\""];
            preferences.extend_from_slice(prefer);
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header("authorization", format!("Bearer {}", token.as_str()))
                .header("prefer", preferences.join(", "));
            let encoded = match &payload {
                Payload::None => None,
                Payload::Json(value) => Some(value.to_string()),
                Payload::Encoded(text) => Some(text.clone()),
                Payload::Raw(bytes, kind) => {
                    request = request.header("content-type", kind).body(bytes.clone());
                    None
                }
            };
            if let Some(encoded) = encoded {
                request = request
                    .header("content-type", "application/json")
                    .body(encoded);
            }
            let answer = answered(request, &format!("{method} {}", short(path))).await?;
            if answer.status == 401 && !retried {
                // The token ended early (revoked, clock skew): once more with a new one.
                retried = true;
                continue;
            }
            return Ok(answer);
        }
    }
}

impl Client {
    /// Sends to a preauthenticated URL Graph gave (an import session's, an attachment upload
    /// session's): no `Authorization` header, as documented
    /// (https://learn.microsoft.com/en-us/graph/import-exchange-mailbox-item,
    /// https://learn.microsoft.com/en-us/graph/outlook-large-attachments). Its answer whatever
    /// its status, but throttling (an error carrying the wait asked). The URL holds a token:
    /// it never appears in an error.
    pub async fn send_preauthenticated(
        &self,
        method: Method,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> StoreResult<Answer> {
        let mut request = self.http.request(method.clone(), url).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        answered(request, &format!("{method} to a session URL")).await
    }
}

/// The answer to `request` (`what`, for errors: never the URL), or the throttling it tells
/// (429, or 503 with a `Retry-After`), or a transport error as transient.
async fn answered(request: reqwest::RequestBuilder, what: &str) -> StoreResult<Answer> {
    let response = request
        .send()
        .await
        .map_err(|e| StoreError::Transient(format!("{what}: {}", no_url(&e))))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = response
        .bytes()
        .await
        .map_err(|e| StoreError::Transient(format!("{what}: {}", no_url(&e))))?;
    if status == 429 || (status == 503 && retry_after.is_some()) {
        return Err(StoreError::Throttled {
            retry_after_ms: retry_after.map(|s| s * 1000),
            reason: format!("{what}: HTTP {status}"),
        });
    }
    Ok(Answer { status, body })
}

/// The error a non-2xx answer stands for.
pub fn check(answer: Answer) -> StoreResult<Answer> {
    if (200..300).contains(&answer.status) {
        return Ok(answer);
    }
    Err(classify(answer.status, &answer.body))
}

/// A Graph error as a `StoreError`, in Graph's words.
pub fn classify(status: u16, body: &[u8]) -> StoreError {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = json["error"]["code"].as_str().unwrap_or("");
    let message = json["error"]["message"].as_str().unwrap_or("");
    let said = format!("HTTP {status} {code}: {message}");
    match (status, code) {
        (401, _) => StoreError::Unusable(format!("Graph refused the token: {said}")),
        (403, _) => StoreError::Unusable(format!("the app may not do this: {said}")),
        (404, "MailboxNotEnabledForRESTAPI") => {
            StoreError::Unusable(format!("the user has no mailbox Graph can reach: {said}"))
        }
        (404, _) => StoreError::NotFound(said),
        (413, _) => StoreError::Permanent(format!("too large for Graph: {said}")),
        (429, _) => StoreError::Throttled {
            retry_after_ms: None,
            reason: said,
        },
        (500..=599, _) => StoreError::Transient(said),
        _ => StoreError::Permanent(said),
    }
}

/// A path without its query, for messages.
fn short(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// A transport error in words, without the URL (which can be long; it holds no secret).
fn no_url(error: &reqwest::Error) -> String {
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
