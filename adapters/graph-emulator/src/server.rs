//! The HTTP side: hyper over TCP (or TLS, for clients that insist on https for the token
//! authority), authentication, per-mailbox throttling around every request, `$batch`
//! (https://learn.microsoft.com/en-us/graph/json-batching: at most 20 requests, answered in
//! any order, each throttled on its own, `424 Failed Dependency` after a failed `dependsOn`),
//! and the emulator's own control plane under `/_emulator/` (counters, faults, a mailbox's
//! contents, delivering a message as a mail server would).

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::Shared;
use crate::api::{Request, Response, segments};
use crate::limits::Refusal;

/// The largest request body read: an import of Exchange's largest message (150 MB) in base64.
const MAX_BODY: usize = 210 * 1024 * 1024;
/// Requests in one `$batch`.
const MAX_BATCH: usize = 20;

/// Why a connection is dropped without an answer.
#[derive(Debug, thiserror::Error)]
#[error("reply lost on purpose")]
pub struct LostReply;

pub async fn serve(
    shared: Arc<Shared>,
    request: hyper::Request<Incoming>,
    scheme: &'static str,
) -> Result<hyper::Response<Full<Bytes>>, LostReply> {
    let host = request
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let root = format!("{scheme}://{host}");
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(to_hyper(Response::error(
                413,
                "RequestBodyTooLarge",
                "The request body is too large.",
            )));
        }
    };
    let request = Request {
        method,
        path,
        query,
        headers,
        body,
        base: format!("{root}/v1.0"),
        subject: None,
    };
    let started = Instant::now();
    let label = format!("{} {}", request.method, request.path);
    let response = route(&shared, request, &root).await;
    if std::env::var_os("GRAPH_EMULATOR_TRACE").is_some() {
        eprintln!(
            "TRACE {:?} {label} {} {:?}",
            std::time::SystemTime::now(),
            response.status,
            started.elapsed()
        );
    }
    if response.lose_reply {
        return Err(LostReply);
    }
    Ok(to_hyper(response))
}

fn to_hyper(response: Response) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

async fn route(shared: &Arc<Shared>, mut request: Request, root: &str) -> Response {
    let parts = segments(&request.path);
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match (request.method.as_str(), parts.as_slice()) {
        ("POST", [tenant, "oauth2", "v2.0", "token"]) => {
            let mut tokens = shared.tokens();
            let audience = format!("{root}/{tenant}/oauth2/v2.0/token");
            tokens.token(&shared.app, tenant, &audience, &request, Instant::now())
        }
        ("GET", [tenant, "v2.0", ".well-known", "openid-configuration"]) => {
            crate::auth::openid_configuration(root, tenant)
        }
        (_, ["_emulator", rest @ ..]) => crate::control::handle(shared, &request, rest),
        // An import session's URL: preauthenticated by the token in its query, no
        // Authorization header (https://learn.microsoft.com/en-us/graph/import-exchange-mailbox-item).
        ("POST", ["api", "gv1.0", mailbox, "importItem"]) => {
            match crate::exchange::import_mailbox(mailbox) {
                Some(mailbox) => {
                    request.path = format!("/import/{mailbox}");
                    one(shared, &request).await
                }
                None => Response::error(404, "NotFound", "No such endpoint."),
            }
        }
        (_, ["v1.0", rest @ ..]) => {
            request.path = format!("/{}", rest.join("/"));
            let is_upload = matches!(rest, ["upload", _]);
            match shared.tokens().check(&request, Instant::now()) {
                Ok(subject) => request.subject = subject,
                Err(refused) if !is_upload => return refused,
                Err(_) => {}
            }
            if rest == ["$batch"] && request.method == "POST" {
                return batch(shared, &request).await;
            }
            one(shared, &request).await
        }
        _ => Response::error(404, "NotFound", "No such endpoint."),
    }
}

/// One Graph request: let in by its mailbox's meter, answered, counted.
async fn one(shared: &Arc<Shared>, request: &Request) -> Response {
    let mailbox = {
        let world = shared.world();
        match segments(&request.path).as_slice() {
            [upload, session] if upload == "upload" => world.uploads.get(session).map(|u| u.user),
            _ => world.mailbox_of(&request.path),
        }
    };
    let limits = shared.limits();
    let upload = match request.method.as_str() {
        "POST" | "PUT" | "PATCH" => request.body.len() as u64,
        _ => 0,
    };
    // Leaves the mailbox's in-flight count when dropped: also when the client hangs up
    // during the latency and this future is dropped unanswered.
    let mut _in_flight = Vec::new();
    if let Some(mailbox) = mailbox {
        // The app's concurrency over every mailbox first, then the mailbox's own limits.
        if let Some(app) = limits.of_app() {
            let admitted = shared.meter(crate::APP_METER, |meter| {
                meter.admit(&app, Instant::now(), 0)
            });
            if let Err(refusal) = admitted {
                return refused(&refusal);
            }
            _in_flight.push(InFlight {
                shared,
                mailbox: crate::APP_METER,
            });
        }
        let admitted = shared.meter(mailbox, |meter| {
            meter.admit(&limits, Instant::now(), upload)
        });
        if let Err(refusal) = admitted {
            return refused(&refusal);
        }
        _in_flight.push(InFlight { shared, mailbox });
    }
    if !limits.latency.is_zero() {
        tokio::time::sleep(limits.latency).await;
    }
    let response = shared.world().handle(request);
    if let Some(mailbox) = mailbox {
        let download =
            request.method == "GET" && request.path.ends_with("/$value") && response.status == 200;
        let create = request.method == "POST" && response.status == 201 && {
            let last = request.path.rsplit('/').next().unwrap_or_default();
            last == "messages" || last == "copy"
        };
        let import = request.method == "POST"
            && response.status == 200
            && request.path.starts_with("/import/");
        let exports = if request.method == "POST"
            && response.status == 200
            && request.path.ends_with("/exportItems")
        {
            serde_json::from_slice::<Value>(&response.body)
                .ok()
                .and_then(|v| {
                    v["value"].as_array().map(|items| {
                        items
                            .iter()
                            .filter(|item| item.get("data").is_some())
                            .count() as u64
                    })
                })
                .unwrap_or(0)
        } else {
            0
        };
        shared.meter(mailbox, |meter| {
            meter.counters.downloads += u64::from(download);
            meter.counters.creates += u64::from(create);
            meter.counters.imports += u64::from(import);
            meter.counters.exports += exports;
        });
    }
    shared.mark_dirty(&request.method);
    response
}

/// A request let in by its mailbox's meter, until answered or abandoned.
struct InFlight<'a> {
    shared: &'a Shared,
    mailbox: usize,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.shared.meter(self.mailbox, crate::limits::Meter::done);
    }
}

/// 429 or 503/504 as documented (https://learn.microsoft.com/en-us/graph/throttling).
fn refused(refusal: &Refusal) -> Response {
    let seconds = refusal.retry_after.as_secs().max(1).to_string();
    let response = if refusal.status == 429 {
        Response::json(
            429,
            &json!({"error": {
                "code": "TooManyRequests",
                "message": "Please retry again later.",
                "innerError": {"code": "429", "message": "Please retry after", "reason": refusal.reason,
                    "date": crate::render::date(&chrono::Utc::now()), "request-id": crate::world::uuid_like(), "status": "429"},
            }}),
        )
    } else {
        Response::error(
            refusal.status,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        )
    };
    response.with_header("retry-after", &seconds)
}

/// `POST /$batch`.
async fn batch(shared: &Arc<Shared>, outer: &Request) -> Response {
    let Ok(payload) = serde_json::from_slice::<Value>(&outer.body) else {
        return Response::error(400, "BadRequest", "Invalid batch payload format.");
    };
    let Some(requests) = payload["requests"].as_array() else {
        return Response::error(400, "BadRequest", "Invalid batch payload format.");
    };
    if requests.len() > MAX_BATCH {
        return Response::error(
            400,
            "BadRequest",
            "Number of requests in the batch exceeds the limit of 20.",
        );
    }
    let mut statuses: Vec<(String, u16)> = Vec::new();
    let mut answers: Vec<Value> = Vec::new();
    let mut lose = false;
    for inner in requests {
        let id = inner["id"].as_str().unwrap_or_default().to_string();
        let depends: Vec<&str> = inner["dependsOn"]
            .as_array()
            .map(|d| d.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let failed_dependency = depends.iter().any(|dep| {
            statuses
                .iter()
                .find(|(id, _)| id == dep)
                .is_none_or(|(_, status)| !(200..300).contains(status))
        });
        let response = if failed_dependency {
            Response::error(
                424,
                "FailedDependency",
                "A request this one depends on failed.",
            )
        } else {
            match inner_request(outer, inner) {
                Ok(request) => one(shared, &request).await,
                Err(error) => error,
            }
        };
        lose |= response.lose_reply;
        statuses.push((id.clone(), response.status));
        answers.push(inner_answer(&id, &response));
    }
    // Responses may come in any order: clients must match them by id.
    fastrand::shuffle(&mut answers);
    let mut response = Response::json(200, &json!({"responses": answers}));
    response.lose_reply = lose;
    response
}

fn inner_request(outer: &Request, inner: &Value) -> Result<Request, Response> {
    let url = inner["url"].as_str().unwrap_or_default();
    let url = url.strip_prefix("/v1.0").unwrap_or(url);
    if !url.starts_with('/') {
        return Err(Response::error(
            400,
            "BadRequest",
            "A batch request's url must be relative, starting with '/'.",
        ));
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut headers: Vec<(String, String)> = inner["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    for (name, value) in &outer.headers {
        if name == "prefer" && !headers.iter().any(|(k, _)| k == "prefer") {
            headers.push((name.clone(), value.clone()));
        }
    }
    let is_json = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .is_none_or(|(_, v)| v.starts_with("application/json"));
    let body = match &inner["body"] {
        Value::Null => Bytes::new(),
        Value::String(text) if !is_json => Bytes::from(STANDARD.decode(text).map_err(|_| {
            Response::error(
                400,
                "BadRequest",
                "A batch request's non-JSON body must be base64.",
            )
        })?),
        value => Bytes::from(value.to_string()),
    };
    Ok(Request {
        method: inner["method"]
            .as_str()
            .unwrap_or("GET")
            .to_ascii_uppercase(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body,
        base: outer.base.clone(),
        subject: outer.subject.clone(),
    })
}

fn inner_answer(id: &str, response: &Response) -> Value {
    let headers: serde_json::Map<String, Value> = response
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let is_json = response
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("application/json"));
    let body = if response.body.is_empty() {
        Value::Null
    } else if is_json {
        serde_json::from_slice(&response.body).unwrap_or(Value::Null)
    } else {
        json!(STANDARD.encode(&response.body))
    };
    let mut answer = json!({"id": id, "status": response.status, "headers": headers});
    if !body.is_null() {
        answer["body"] = body;
    }
    answer
}

/// Serves connections until the task is dropped.
pub async fn accept_loop(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let scheme = if tls.is_some() { "https" } else { "http" };
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { serve(shared, request, scheme).await }
            });
            let builder = hyper::server::conn::http1::Builder::new();
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = builder.serve_connection(io, service).await;
                    }
                }
                None => {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = builder.serve_connection(io, service).await;
                }
            }
        });
    }
}
