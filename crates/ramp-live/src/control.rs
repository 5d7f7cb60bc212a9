//! The control API of a running rollout: HTTP on loopback (or elsewhere with a token).
//!
//! - `GET /status`: the [`StatusView`].
//! - `POST /pause`, `/resume`, `/abort`, `/promote`, `/approve` with a JSON body
//!   `{"who": "alice", "reason": "…", "full": false}` (`full` only for promote).
//! - `GET /healthz`: liveness, no token needed.
//! - `GET /`: the live dashboard ([`crate::dashboard`]), a page that needs no token; it polls
//!   `GET /dashboard.json` (the status with the rollout's history), which is as open as
//!   `/metrics` (the metrics token when one is configured; the control token is accepted
//!   too), and its buttons call the actions above with the control token the user types.
//! - `GET /metrics`: the controller's metrics for Prometheus ([`crate::exposition`]), behind
//!   its own token when one is configured (`--metrics-token-file`), else open; never behind
//!   the control token, since a scraper must not be able to act on the rollout. A scrape only
//!   renders what the driver published: it never waits for or delays a tick.
//!
//! Requests are handed to the driver over a channel and answered with the status after the
//! action, or 409 with a sentence when the action does not apply now (promote while an
//! approval is missing, resume when not paused…). A wrong or missing token gets 401 and
//! changes nothing.

use crate::exposition::ControllerMetrics;
use crate::status::StatusView;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

/// Largest request body accepted; the documents are a few hundred bytes.
const MAX_BODY: usize = 16 * 1024;

/// Time allowed for a request body to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// Time allowed for the driver to answer (it answers between two ticks).
const DRIVER_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed for a request head to arrive, so an idle client cannot hold a connection.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The header a client names the run it means with (`DEPLOYMENT/RUN`): an address recorded
/// in a journal may since belong to another rollout's controller, and acting on the wrong
/// rollout is worse than not acting.
pub const RUN_HEADER: &str = "x-ramp-run";

/// Concurrent connections served; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 64;

/// An operator's action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    /// Hold at the current weight.
    Pause,
    /// Lift a pause.
    Resume,
    /// End the stage now and move on (`full`: to 100 %).
    Promote,
    /// Roll back now.
    Abort,
    /// Approve the next stage as `who`.
    Approve,
}

impl Verb {
    /// The verb's name as the API path and journal spell it.
    pub fn key(&self) -> &'static str {
        match self {
            Verb::Pause => "pause",
            Verb::Resume => "resume",
            Verb::Promote => "promote",
            Verb::Abort => "abort",
            Verb::Approve => "approve",
        }
    }
}

/// The body of an action request.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// Who acts (an approver's name for approve).
    pub who: String,
    /// Why, for the journal.
    #[serde(default)]
    pub reason: String,
    /// Promote straight to 100 %.
    #[serde(default)]
    pub full: bool,
    /// For approve: the stage approved (1-based), so that an approver can approve a later
    /// stage ahead of time; the next stage that lacks them when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<usize>,
}

/// What the API asks of the driver.
#[derive(Debug)]
pub enum DriverRequest {
    /// Current status.
    Status,
    /// Current status with the rollout's history, for the dashboard; whether the actions
    /// need the control token, so that its buttons ask for it.
    Dashboard {
        /// A control token is configured.
        actions_need_token: bool,
    },
    /// An operator action.
    Act(Verb, ActionBody),
}

/// A refusal: HTTP status and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 409 when the action does not apply now, 503 when the driver is gone.
    pub status: u16,
    /// Why, as a sentence.
    pub message: String,
}

/// One request to the driver with its reply channel.
pub type Command = (DriverRequest, oneshot::Sender<Result<StatusView, Refusal>>);

/// `GET /metrics`: the registry it renders and the token it requires, if any.
#[derive(Debug, Clone, Default)]
pub struct MetricsEndpoint {
    /// What the driver publishes.
    pub registry: Arc<ControllerMetrics>,
    /// The bearer token a scrape must carry; `None` serves every scrape.
    pub token: Option<String>,
}

/// Serves the control API on `listener` until `shutdown` resolves, passing requests to the
/// driver through `to_driver`, and `GET /metrics` from `metrics`.
pub async fn serve(
    listener: TcpListener,
    run: String,
    token: Option<String>,
    metrics: MetricsEndpoint,
    to_driver: mpsc::Sender<Command>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let token = Arc::new(token);
    let metrics = Arc::new(metrics);
    let run = Arc::new(run);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop_rx.changed() => return,
        };
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "control API accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop_rx.changed() => return,
        };
        let token = Arc::clone(&token);
        let run = Arc::clone(&run);
        let metrics = Arc::clone(&metrics);
        let to_driver = to_driver.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req| {
                let token = Arc::clone(&token);
                let run = Arc::clone(&run);
                let metrics = Arc::clone(&metrics);
                let to_driver = to_driver.clone();
                async move {
                    match req.uri().path() {
                        "/metrics" => return Ok::<_, Infallible>(scrape(&req, &metrics)),
                        "/" => return Ok(page(&req)),
                        "/dashboard.json" => {
                            return Ok(dashboard(&req, token.as_deref(), &metrics, &to_driver).await)
                        }
                        _ => {}
                    }
                    Ok(handle(req, &run, token.as_deref(), &to_driver).await)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
                }
            }
        });
    }
}

/// Serves one request.
async fn handle(
    req: Request<Incoming>,
    run: &str,
    token: Option<&str>,
    to_driver: &mpsc::Sender<Command>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if req.method() == Method::GET && path == "/healthz" {
        return text(StatusCode::OK, "ok\n");
    }
    if let Some(t) = token {
        if !authorized(&req, t) {
            return text(StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n");
        }
    }
    if let Some(meant) = req.headers().get(RUN_HEADER) {
        if meant.as_bytes() != run.as_bytes() {
            return text(
                StatusCode::MISDIRECTED_REQUEST,
                &format!(
                    "this controller runs {run}, not {}; the rollout you mean has no controller at this address\n",
                    String::from_utf8_lossy(meant.as_bytes())
                ),
            );
        }
    }
    let verb = match (req.method().clone(), path.as_str()) {
        (Method::GET, "/status") => None,
        (Method::POST, "/pause") => Some(Verb::Pause),
        (Method::POST, "/resume") => Some(Verb::Resume),
        (Method::POST, "/promote") => Some(Verb::Promote),
        (Method::POST, "/abort") => Some(Verb::Abort),
        (Method::POST, "/approve") => Some(Verb::Approve),
        (_, "/status" | "/pause" | "/resume" | "/promote" | "/abort" | "/approve") => {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => return text(StatusCode::NOT_FOUND, "no such route\n"),
    };
    let request = match verb {
        None => DriverRequest::Status,
        Some(verb) => {
            let body = match tokio::time::timeout(
                BODY_TIMEOUT,
                Limited::new(req.into_body(), MAX_BODY).collect(),
            )
            .await
            {
                Ok(Ok(b)) => b.to_bytes(),
                Ok(Err(_)) => {
                    return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
                }
                Err(_) => return text(StatusCode::REQUEST_TIMEOUT, "request body too slow\n"),
            };
            match parse_action(&body) {
                Ok(action) => DriverRequest::Act(verb, action),
                Err(why) => return text(StatusCode::BAD_REQUEST, &format!("{why}\n")),
            }
        }
    };
    ask_driver(request, to_driver).await
}

/// Hands `request` to the driver and answers with its reply: the status after it, or the
/// refusal's sentence.
async fn ask_driver(
    request: DriverRequest,
    to_driver: &mpsc::Sender<Command>,
) -> Response<Full<Bytes>> {
    let (tx, rx) = oneshot::channel();
    if to_driver.send((request, tx)).await.is_err() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the rollout is no longer running\n",
        );
    }
    match tokio::time::timeout(DRIVER_TIMEOUT, rx).await {
        Ok(Ok(Ok(view))) => json(StatusCode::OK, &view),
        Ok(Ok(Err(refusal))) => text(
            StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::CONFLICT),
            &format!("{}\n", refusal.message),
        ),
        Ok(Err(_)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the rollout is no longer running\n",
        ),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the controller did not answer in time\n",
        ),
    }
}

/// Answers `GET /`: the dashboard's page, the same for everyone (it holds no data).
fn page(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let mut r = Response::new(Full::new(Bytes::from_static(
        crate::dashboard::PAGE.as_bytes(),
    )));
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page loads nothing from elsewhere and may not be framed by another site.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

/// Answers `GET /dashboard.json`: open like `/metrics` (its token when one is configured;
/// the control token also reads), the status with the rollout's history.
async fn dashboard(
    req: &Request<Incoming>,
    control_token: Option<&str>,
    metrics: &MetricsEndpoint,
    to_driver: &mpsc::Sender<Command>,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    if let Some(t) = &metrics.token {
        if !authorized(req, t) && !control_token.is_some_and(|c| authorized(req, c)) {
            return text(StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n");
        }
    }
    let request = DriverRequest::Dashboard {
        actions_need_token: control_token.is_some(),
    };
    ask_driver(request, to_driver).await
}

/// Answers `GET /metrics`: the token first (when one is configured), then the page.
fn scrape(req: &Request<Incoming>, metrics: &MetricsEndpoint) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    if let Some(t) = &metrics.token {
        if !authorized(req, t) {
            return text(StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n");
        }
    }
    let mut r = Response::new(Full::new(Bytes::from(metrics.registry.render())));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(ramp_flags::exposition::CONTENT_TYPE),
    );
    r
}

/// Reads the body of an action request: the JSON document, then its limits (`who` of 1 to
/// 200 characters, `reason` of at most 2000); the error is the sentence of the 400 answer.
///
/// A function of its own so that the fuzzer (`crate::fuzzing`) checks exactly what the
/// handler accepts.
pub(crate) fn parse_action(body: &[u8]) -> Result<ActionBody, String> {
    let action: ActionBody = serde_json::from_slice(body).map_err(|e| {
        // serde names an unknown key as the client wrote it: its control characters are
        // escaped, so that the refusal stays one line.
        let e: String = e
            .to_string()
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_debug().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        format!("invalid body: {e}; expected {{\"who\": \"…\", \"reason\": \"…\"}}")
    })?;
    let too_long = |text: &str, max: usize| text.chars().nth(max).is_some();
    if action.who.trim().is_empty() || too_long(&action.who, 200) || too_long(&action.reason, 2000)
    {
        return Err("`who` must be 1–200 characters and `reason` at most 2000".to_string());
    }
    Ok(action)
}

/// Whether the request carries the token, compared in constant time.
fn authorized(req: &Request<Incoming>, token: &str) -> bool {
    bearer_matches(req.headers().get(header::AUTHORIZATION), token)
}

/// Whether an `Authorization` value is `Bearer <token>`. The scheme's name is
/// case-insensitive (RFC 9110 §11.1: `bearer` and `BEARER` are the same scheme); the token is
/// compared in constant time for its length.
fn bearer_matches(value: Option<&header::HeaderValue>, token: &str) -> bool {
    let Some(v) = value.map(header::HeaderValue::as_bytes) else {
        return false;
    };
    if v.len() < 7 || !v[..7].eq_ignore_ascii_case(b"bearer ") {
        return false;
    }
    let (a, b) = (v[7..].trim_ascii(), token.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            *r.status_mut() = status;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot encode the status: {e}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12, point 7: the scheme is case-insensitive. Fails on 63809fb, where only
    /// `Bearer ` with a capital B was accepted.
    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let token = "s3cret-right-token";
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let v = header::HeaderValue::from_str(&format!("{scheme} {token}")).unwrap();
            assert!(bearer_matches(Some(&v), token), "{scheme}");
        }
        for wrong in [
            "Basic s3cret-right-token",
            "Bearer s3cret-wrong-token",
            "Bearer",
            "",
        ] {
            let v = header::HeaderValue::from_str(wrong).unwrap();
            assert!(!bearer_matches(Some(&v), token), "{wrong:?}");
        }
        assert!(!bearer_matches(None, token));
    }
}
