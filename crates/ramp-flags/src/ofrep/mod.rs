//! An OFREP server (OpenFeature Remote Evaluation Protocol, open-feature/protocol
//! `service/openapi.yaml`) for the flags of a [`FlagState`].
//!
//! Endpoints:
//! - `POST /ofrep/v1/evaluate/flags/{key}`: one flag. 200 with `{key, value, reason, variant,
//!   metadata}`; 400 with `{key, errorCode, errorDetails}` for `TARGETING_KEY_MISSING` or
//!   `INVALID_CONTEXT`; 404 with `errorCode: FLAG_NOT_FOUND`.
//! - `POST /ofrep/v1/evaluate/flags` (a trailing slash is accepted, as flagd does): every
//!   flag, `{flags: [...], metadata: {version}}`, with an `ETag`; a request whose
//!   `If-None-Match` matches gets 304 without evaluating anything.
//! - `GET /healthz`: 200 `ok`, without authentication or rate limit, for load balancers.
//! - `GET /metrics`: the server's Prometheus metrics (`metrics`), behind the same token as
//!   the evaluations but not the rate limit, so that a scrape neither uses up clients' quota
//!   nor goes blind when they exceed it.
//! - `GET /stats`: distinct targeting keys per flag and outcome over the statistics window
//!   (`{window_s, rollout_weight, rollout_weight_bp, version, flags: [{key, weight,
//!   weight_bp, on_users, off_users, window_s, exact}]}`), behind the same token and rate
//!   limit as the evaluations; 404 when statistics are off ([`ServeOptions::stats`]).
//!
//! Every successful evaluation that carries a targeting key and serves a variant is counted
//! in [`Stats`] (a bulk one once per flag, a 304 included: a client polling with
//! `If-None-Match` is still a user in the window).
//!
//! Both evaluation endpoints accept a request without a body or without `context` (the
//! context is then empty, as in flagd); a flag that needs a targeting key then answers
//! `TARGETING_KEY_MISSING`. With a token configured, a request without it (as
//! `Authorization: Bearer` or `X-API-Key`) gets 401 without a body; 403 is never sent, since
//! a valid token may read every flag. With a rate limit, a request over it gets 429 with
//! `Retry-After` in seconds. Authentication comes before the rate limit, so that clients
//! without the token cannot use up the quota of those with it.
//!
//! Network input is hostile: request heads are bounded (size, count, read deadline), bodies
//! are bounded in size (an oversized one is refused from its `Content-Length` without being
//! read, with 400 `INVALID_CONTEXT`, the only client-error status the specification gives
//! these operations) and in time, connections are capped, a connection that sends nothing
//! is closed at the header deadline, and one without a request in flight is closed after
//! the idle timeout (HTTP/2 included), at the latest one drain deadline later.
//!
//! This module is the crate's only live part: it awaits, spawns tasks and reads the clock
//! (once, in `now`), behind the `server` feature; [`crate::flags`] stays pure.

mod auth;
mod metrics;
pub(crate) mod protocol;
mod rate;

pub use auth::{ApiToken, TokenError, MAX_TOKEN_BYTES};
pub use rate::{RateLimit, RateLimitError};

use crate::distinct::WindowConfig;
use crate::flags::{EvalError, FlagState, FlagStats, FlagUsage, Snapshot};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use metrics::{Endpoint, ServerMetrics};
use protocol::BadRequest;
use rate::RateLimiter;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The path prefix of single evaluations (the flag key follows).
const SINGLE_PREFIX: &str = "/ofrep/v1/evaluate/flags/";
/// The path of bulk evaluations.
const BULK_PATH: &str = "/ofrep/v1/evaluate/flags";
/// The smallest read buffer hyper accepts (it panics below 8 KiB).
const MIN_HEADER_BYTES: usize = 8 * 1024;

/// How the server treats its clients. The defaults suit a server on a private network; every
/// limit exists because a client could otherwise hold a resource forever.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The token clients must present; `None` serves everyone (a loopback or a network
    /// where the flags are not secret).
    pub token: Option<ApiToken>,
    /// The rate limit over all clients; `None` for none.
    pub rate_limit: Option<RateLimit>,
    /// The largest request body read (a context is a few hundred bytes; 64 KiB by default).
    pub max_body_bytes: usize,
    /// How long a client may take to send a request head, and how long a kept-alive
    /// connection may stay idle (10 s by default).
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request body (10 s by default).
    pub body_read_timeout: Duration,
    /// How long a connection may stay open without a request in flight, HTTP/2 included
    /// (whose idle connections hyper's header deadline does not cover); 30 s by default.
    pub idle_timeout: Duration,
    /// The largest request head, in bytes (16 KiB by default; at least 8 KiB).
    pub max_header_bytes: usize,
    /// The most headers in a request (64 by default).
    pub max_headers: usize,
    /// The most connections served at once; more wait in the kernel's backlog (1024 by
    /// default).
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after shutdown, or after an idle
    /// connection was asked to close (5 s by default).
    pub drain_timeout: Duration,
    /// Where evaluations are counted (distinct targeting keys per flag and outcome) and what
    /// `GET /stats` reports; `None` counts nothing and answers `/stats` with 404. Cloning
    /// the options shares the counters, so keep a clone to read them from a driver. On by
    /// default: five minutes, exact up to 100,000 keys per flag.
    pub stats: Option<Stats>,
}

/// Distinct targeting keys per flag and outcome, counted by a running server: a
/// [`FlagStats`] and the instant its times count from. Cheap to clone (the counters are
/// shared).
#[derive(Debug, Clone)]
pub struct Stats {
    /// The counters.
    inner: Arc<FlagStats>,
    /// The origin of the milliseconds the counters are fed, so that every reader and writer
    /// agrees on what "now" is.
    origin: tokio::time::Instant,
}

impl Stats {
    /// Empty statistics over `config`'s window, hashing targeting keys with a randomly keyed
    /// hasher (clients cannot craft keys that collide in the maps).
    pub fn new(config: WindowConfig) -> Self {
        Self {
            inner: Arc::new(FlagStats::new(
                config,
                std::collections::hash_map::RandomState::new(),
            )),
            origin: now(),
        }
    }

    /// The counters themselves.
    pub fn flag_stats(&self) -> &FlagStats {
        &self.inner
    }

    /// Milliseconds since the origin.
    fn now_ms(&self) -> u64 {
        u64::try_from(now().saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    /// Every flag of `state`'s current snapshot with its distinct users per outcome over the
    /// window ending now: the staging report's "phase8_encryption_enabled: 625 users (25%)".
    pub fn report(&self, state: &FlagState) -> Vec<FlagUsage> {
        self.inner.report(&state.snapshot(), self.now_ms())
    }

    /// Counts one evaluation's outcome for the user whose key hashed to `hash`.
    fn record(&self, resolution: &crate::flags::Resolution<'_>, hash: u64, now_ms: u64) {
        self.inner.record(resolution, hash, now_ms);
    }

    /// Counts the outcome of every flag of `snapshot` for `targeting_key`, as a bulk
    /// evaluation would serve them (for a 304, which evaluates nothing else).
    fn record_all(&self, snapshot: &Snapshot, targeting_key: &str) {
        if targeting_key.is_empty() {
            return;
        }
        let hash = self.inner.hash_key(targeting_key);
        let now_ms = self.now_ms();
        for flag in snapshot.flags().flags() {
            if let Ok(r) = flag.evaluate(snapshot.live(), Some(targeting_key)) {
                self.record(&r, hash, now_ms);
            }
        }
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            token: None,
            rate_limit: None,
            max_body_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_connections: 1024,
            drain_timeout: Duration::from_secs(5),
            stats: Some(Stats::new(WindowConfig::default())),
        }
    }
}

/// The single place the server reads the clock: the rate limiter's "now". Tokio's clock, so
/// that tests with a paused runtime control it.
#[allow(
    clippy::disallowed_methods,
    reason = "the OFREP server's rate limiter needs the monotonic clock; this is its single read"
)]
fn now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// Runs the flags' own schedules on the time since `origin`, for a server with no driver to
/// publish it (`ramp flags serve`): publishes the elapsed time at once, then sleeps until the
/// next step that changes a share ([`crate::flags::FlagSet::next_schedule_change`]) and
/// publishes again, so the snapshot's version moves exactly at the steps. Returns when no
/// schedule changes any more (or at once when there is none); a caller that stops serving
/// aborts the task.
pub async fn run_schedules(state: Arc<FlagState>, origin: tokio::time::Instant) {
    if !state.snapshot().flags().has_schedules() {
        return;
    }
    loop {
        let elapsed = now().saturating_duration_since(origin);
        state.set_schedule_elapsed(elapsed);
        let Some(next) = state.snapshot().flags().next_schedule_change(elapsed) else {
            return;
        };
        tokio::time::sleep_until(origin + next).await;
    }
}

/// The instant a server's schedules count from: now, as this module's one clock read.
pub fn schedule_origin() -> tokio::time::Instant {
    now()
}

/// What every request handler shares.
struct Server {
    /// The flags and the live weight.
    state: Arc<FlagState>,
    /// The options (token, limits).
    options: ServeOptions,
    /// The rate limiter, if any.
    limiter: Option<RateLimiter>,
    /// What `GET /metrics` reports.
    metrics: ServerMetrics,
}

/// Serves OFREP on `listener` until `shutdown` completes, then stops accepting and lets
/// in-flight requests finish for up to [`ServeOptions::drain_timeout`]; connections still
/// open after that are closed.
///
/// HTTP/1.1 and HTTP/2 over cleartext (h2c, prior knowledge) are both served. The listener
/// is bound by the caller (tests bind port 0 and read the address back).
pub async fn serve(
    listener: TcpListener,
    state: Arc<FlagState>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut options = options;
    options.max_header_bytes = options.max_header_bytes.max(MIN_HEADER_BYTES);
    options.max_connections = options.max_connections.max(1);
    let limiter = options.rate_limit.map(|l| RateLimiter::new(l, now()));
    let server = Arc::new(Server {
        state,
        options,
        limiter,
        metrics: ServerMetrics::new(),
    });
    let opts = &server.options;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .max_buf_size(opts.max_header_bytes)
        .max_headers(opts.max_headers)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .max_header_list_size(u32::try_from(opts.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));

    let mut connections = tokio::task::JoinSet::new();
    let mut stop = stop_rx.clone();
    // One permit per served connection: at the limit the server stops accepting, so excess
    // clients wait in the kernel's backlog instead of exhausting file descriptors.
    let slots = Arc::new(tokio::sync::Semaphore::new(opts.max_connections));
    loop {
        // Reap finished connections so that the set does not grow with the server's age.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = stop.changed() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Out of file descriptors or similar: back off briefly and go on.
                tracing::warn!(error = %e, "ofrep: accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(serve_connection(
            server.clone(),
            builder.clone(),
            stream,
            stop_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    // Every connection task ends by itself within the drain deadline (it shuts down
    // gracefully, then drops the connection at the deadline); the extra second covers
    // scheduling, and whatever is left after it is aborted.
    let drain = server.options.drain_timeout + Duration::from_secs(1);
    let all_done = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(drain, all_done).await.is_err() {
        tracing::warn!("ofrep: drain deadline passed with connections still open");
        connections.abort_all();
    }
}

/// What a connection's watchdog needs to know: when the connection last did something, and
/// whether a request is being handled.
struct Activity {
    /// The instant `last_ns` counts from.
    origin: tokio::time::Instant,
    /// Nanoseconds from `origin` to the last request start or end.
    last_ns: AtomicU64,
    /// Requests being handled.
    in_flight: AtomicUsize,
}

impl Activity {
    /// A connection that is active now.
    fn new() -> Self {
        Self {
            origin: now(),
            last_ns: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Records activity now.
    fn touch(&self) {
        let ns = u64::try_from(now().saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX);
        self.last_ns.store(ns, Ordering::Relaxed);
    }

    /// When the connection was last active.
    fn last(&self) -> tokio::time::Instant {
        self.origin + Duration::from_nanos(self.last_ns.load(Ordering::Relaxed))
    }

    /// Resolves once the connection has had no request in flight for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            if self.in_flight.load(Ordering::Relaxed) > 0 {
                // Handling is bounded (body deadline), so poll again a little later.
                tokio::time::sleep(timeout.min(Duration::from_secs(1))).await;
                continue;
            }
            let deadline = self.last() + timeout;
            if now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// Marks a request in flight for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    /// Starts a request.
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one connection until the client closes it, it stays idle for
/// [`ServeOptions::idle_timeout`], or the server shuts down. In the last two cases the
/// connection is shut down gracefully (in-flight requests finish) and dropped at the drain
/// deadline, so a client that stops reading its response cannot hold it forever.
async fn serve_connection(
    server: Arc<Server>,
    builder: auto::Builder<TokioExecutor>,
    stream: TcpStream,
    mut stop: watch::Receiver<bool>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let opts = &server.options;
    // A connection that has sent nothing has nothing in flight: on shutdown it is closed at
    // once instead of holding the drain until the header deadline.
    let sniffed = tokio::select! {
        sniff = sniff_first_bytes(&stream, opts.header_read_timeout) => sniff,
        _ = stop.changed() => false,
    };
    if !sniffed {
        drop(permit);
        return;
    }
    let activity = Arc::new(Activity::new());
    let service = {
        let server = server.clone();
        let activity = activity.clone();
        service_fn(move |req| {
            let guard = InFlight::start(&activity);
            let server = server.clone();
            async move {
                let response = handle(server, req).await;
                drop(guard);
                response
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    // Far away until a shutdown starts; then the drain deadline.
    let hard_stop = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(hard_stop);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "ofrep: connection ended with an error");
                }
                break;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
                hard_stop.as_mut().reset(now() + opts.drain_timeout);
            }
            _ = activity.idle_for(opts.idle_timeout), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
                hard_stop.as_mut().reset(now() + opts.drain_timeout);
            }
            _ = &mut hard_stop, if stopping => {
                tracing::debug!("ofrep: connection dropped at the drain deadline");
                break;
            }
        }
    }
    drop(permit);
}

/// The HTTP/2 connection preface, which the auto builder reads to pick a protocol.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits, within the header deadline, until the connection has sent enough to tell HTTP/1
/// from HTTP/2; `false` when it closed or sent too little in time. The auto builder's own
/// detection has no deadline, and hyper's header timer starts only after it.
async fn sniff_first_bytes(stream: &TcpStream, deadline: Duration) -> bool {
    let wait = async {
        let mut buf = [0u8; 24];
        loop {
            match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) if n >= H2_PREFACE.len() || buf[..n] != H2_PREFACE[..n] => return true,
                // A prefix of the preface: peek returns at once while data is buffered, so
                // wait a little before looking again.
                Ok(_) => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    };
    tokio::time::timeout(deadline, wait).await.unwrap_or(false)
}

/// The response body type.
type Body = Full<Bytes>;

/// Which endpoint a path names.
enum Route<'a> {
    /// `/healthz`.
    Health,
    /// `/stats`.
    Stats,
    /// `/metrics`.
    Metrics,
    /// Bulk evaluation.
    Bulk,
    /// Single evaluation of the (still percent-encoded) key.
    Single(&'a str),
    /// Anything else.
    Unknown,
}

/// Maps a path to its endpoint.
fn route(path: &str) -> Route<'_> {
    if path == "/healthz" {
        return Route::Health;
    }
    if path == "/stats" {
        return Route::Stats;
    }
    if path == "/metrics" {
        return Route::Metrics;
    }
    if path == BULK_PATH || path == SINGLE_PREFIX {
        return Route::Bulk;
    }
    match path.strip_prefix(SINGLE_PREFIX) {
        Some(key) if !key.contains('/') => Route::Single(key),
        _ => Route::Unknown,
    }
}

/// Handles one request; never fails (every problem is a response). Counts it, by endpoint
/// and status, with its duration.
async fn handle(server: Arc<Server>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let started = now();
    let endpoint = match route(req.uri().path()) {
        Route::Health => Endpoint::Health,
        Route::Stats => Endpoint::Stats,
        Route::Metrics => Endpoint::Metrics,
        Route::Bulk => Endpoint::Bulk,
        Route::Single(_) => Endpoint::Single,
        Route::Unknown => Endpoint::Unknown,
    };
    let response = answer(&server, req).await;
    let took = now().saturating_duration_since(started);
    server
        .metrics
        .request(endpoint, response.status().as_u16(), took);
    Ok(response)
}

/// The answer to one request.
async fn answer(server: &Arc<Server>, req: Request<Incoming>) -> Response<Body> {
    let server = Arc::clone(server);
    let (req, body) = req.into_parts();
    match route(req.uri.path()) {
        Route::Health => match req.method {
            Method::GET | Method::HEAD => plain(StatusCode::OK, "ok\n"),
            _ => not_allowed("GET, HEAD"),
        },
        Route::Unknown => json(
            StatusCode::NOT_FOUND,
            protocol::general_failure_body(
                "no such endpoint; OFREP evaluations are POST /ofrep/v1/evaluate/flags/{key} and POST /ofrep/v1/evaluate/flags",
            ),
        ),
        Route::Stats => match gate(&server, &req, Method::GET) {
            Some(refused) => refused,
            None => stats(&server),
        },
        Route::Metrics => match refusal(&server, &req, Method::GET) {
            Some(refused) => refused,
            None => prometheus(&server),
        },
        Route::Bulk => match gate(&server, &req, Method::POST) {
            Some(refused) => refused,
            None => bulk(&server, &req, body).await,
        },
        Route::Single(raw_key) => {
            // A malformed escape cannot name a flag; the key is echoed as sent.
            let key = protocol::percent_decode(raw_key)
                .unwrap_or(std::borrow::Cow::Borrowed(raw_key));
            match gate(&server, &req, Method::POST) {
                Some(refused) => refused,
                None => single(&server, &key, &req, body).await,
            }
        }
    }
}

/// The checks every evaluation (and `/stats`) passes first: the method, the token, the rate
/// limit.
fn gate(server: &Server, req: &http::request::Parts, method: Method) -> Option<Response<Body>> {
    if let Some(refused) = refusal(server, req, method) {
        return Some(refused);
    }
    if let Some(limiter) = &server.limiter {
        if let Err(wait) = limiter.check(now()) {
            let mut r = empty(StatusCode::TOO_MANY_REQUESTS);
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(rate::retry_after_secs(wait)),
            );
            return Some(r);
        }
    }
    None
}

/// The method and token checks of [`gate`], without the rate limit (what `/metrics` passes).
fn refusal(server: &Server, req: &http::request::Parts, method: Method) -> Option<Response<Body>> {
    if req.method != method {
        return Some(not_allowed(if method == Method::GET {
            "GET"
        } else {
            "POST"
        }));
    }
    if let Some(token) = &server.options.token {
        if !token.authorizes(&req.headers) {
            let mut r = empty(StatusCode::UNAUTHORIZED);
            // RFC 9110 §15.5.2: a 401 names the scheme that would be accepted.
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ofrep\""),
            );
            return Some(r);
        }
    }
    None
}

/// Why a body could not be read.
enum BodyError {
    /// Larger than the limit (from `Content-Length` or while reading).
    TooLarge,
    /// Not complete before the body deadline.
    TimedOut,
    /// The client broke the body off.
    Broken,
}

impl BodyError {
    /// The `errorDetails` for a 400.
    fn details(&self, limit: usize, timeout: Duration) -> String {
        match self {
            BodyError::TooLarge => format!("the request body is larger than {limit} bytes"),
            BodyError::TimedOut => format!(
                "the request body did not arrive within {} s",
                timeout.as_secs_f64()
            ),
            BodyError::Broken => "the request body was cut off".to_string(),
        }
    }
}

/// Reads a request body within the size limit and the deadline.
async fn read_body(
    server: &Server,
    req: &http::request::Parts,
    body: Incoming,
) -> Result<Bytes, BodyError> {
    let limit = server.options.max_body_bytes;
    let declared = req
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let body = Limited::new(body, limit);
    match tokio::time::timeout(server.options.body_read_timeout, body.collect()).await {
        Err(_) => Err(BodyError::TimedOut),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(_)) => Err(BodyError::Broken),
    }
}

/// A 400 `INVALID_CONTEXT` for a body that could not be read; the connection is closed,
/// since the rest of the body may still be on its way.
fn body_refused(server: &Server, key: Option<&str>, e: &BodyError) -> Response<Body> {
    server.metrics.error("INVALID_CONTEXT");
    let details = e.details(
        server.options.max_body_bytes,
        server.options.body_read_timeout,
    );
    let mut r = json(
        StatusCode::BAD_REQUEST,
        protocol::request_failure_body(key, "INVALID_CONTEXT", &details),
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
async fn single(
    server: &Server,
    key: &str,
    req: &http::request::Parts,
    body: Incoming,
) -> Response<Body> {
    let body = match read_body(server, req, body).await {
        Ok(b) => b,
        Err(e) => return body_refused(server, Some(key), &e),
    };
    let targeting_key = match protocol::parse_single(&body) {
        Ok(k) => k,
        Err(BadRequest(details)) => {
            server.metrics.error("INVALID_CONTEXT");
            return json(
                StatusCode::BAD_REQUEST,
                protocol::request_failure_body(Some(key), "INVALID_CONTEXT", &details),
            );
        }
    };
    let snapshot = server.state.snapshot();
    match snapshot.evaluate(key, targeting_key.as_deref()) {
        Ok(r) => {
            if let (Some(stats), Some(k)) = (&server.options.stats, targeting_key.as_deref()) {
                if !k.is_empty() {
                    stats.record(&r, stats.inner.hash_key(k), stats.now_ms());
                }
            }
            let body = protocol::success_body(&r);
            server.metrics.evaluated([r]);
            json(StatusCode::OK, body)
        }
        Err(e) => {
            server.metrics.error(e.code());
            let status = match e {
                EvalError::FlagNotFound(_) => StatusCode::NOT_FOUND,
                EvalError::TargetingKeyMissing { .. } => StatusCode::BAD_REQUEST,
            };
            json(status, protocol::failure_body(key, &e))
        }
    }
}

/// `POST /ofrep/v1/evaluate/flags`.
async fn bulk(server: &Server, req: &http::request::Parts, body: Incoming) -> Response<Body> {
    let body = match read_body(server, req, body).await {
        Ok(b) => b,
        Err(e) => return body_refused(server, None, &e),
    };
    let ctx = match protocol::parse_bulk(&body) {
        Ok(c) => c,
        Err(BadRequest(details)) => {
            server.metrics.error("INVALID_CONTEXT");
            return json(
                StatusCode::BAD_REQUEST,
                protocol::request_failure_body(None, "INVALID_CONTEXT", &details),
            );
        }
    };
    let snapshot = server.state.snapshot();
    // parse_bulk already refused a non-string targeting key.
    let targeting_key = ctx.targeting_key().ok().flatten();
    // The statistics count this user against every flag: below, as the body is written, or
    // here for a 304 (nothing else evaluates then).
    let counted = server
        .options
        .stats
        .as_ref()
        .zip(targeting_key.filter(|k| !k.is_empty()));
    let etag = protocol::bulk_etag(&snapshot, &ctx);
    let etag_value = HeaderValue::from_str(&etag).ok();
    if req
        .headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|field| protocol::if_none_match(field, &etag))
    {
        if let Some((stats, k)) = counted {
            stats.record_all(&snapshot, k);
        }
        let mut r = empty(StatusCode::NOT_MODIFIED);
        if let Some(v) = etag_value {
            r.headers_mut().insert(header::ETAG, v);
        }
        return r;
    }
    let mut served = Vec::new();
    let body = match counted {
        Some((stats, k)) => {
            let (hash, now_ms) = (stats.inner.hash_key(k), stats.now_ms());
            protocol::bulk_body(&snapshot, targeting_key, |r| {
                stats.record(r, hash, now_ms);
                served.push(*r);
            })
        }
        None => protocol::bulk_body(&snapshot, targeting_key, |r| served.push(*r)),
    };
    server.metrics.evaluated(served);
    let mut r = json(StatusCode::OK, body);
    if let Some(v) = etag_value {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// `GET /stats`: the statistics report of the current snapshot.
fn stats(server: &Server) -> Response<Body> {
    let Some(stats) = &server.options.stats else {
        return json(
            StatusCode::NOT_FOUND,
            protocol::general_failure_body("statistics are off on this server"),
        );
    };
    let snapshot = server.state.snapshot();
    let report = StatsReport {
        window_s: stats.flag_stats().config().window().as_secs_f64(),
        rollout_weight: snapshot.rollout_weight_bp().map(|bp| f64::from(bp) / 100.0),
        rollout_weight_bp: snapshot.rollout_weight_bp(),
        version: snapshot.version(),
        flags: stats.inner.report(&snapshot, stats.now_ms()),
    };
    match serde_json::to_vec(&report) {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            protocol::general_failure_body(&format!("cannot render the statistics: {e}")),
        ),
    }
}

/// `GET /metrics`: the server's counters in the Prometheus text format.
fn prometheus(server: &Server) -> Response<Body> {
    let page = server
        .metrics
        .render(&server.state, server.options.stats.as_ref());
    let mut r = Response::new(Full::new(Bytes::from(page)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::exposition::CONTENT_TYPE),
    );
    r
}

/// The `GET /stats` document.
#[derive(serde::Serialize)]
struct StatsReport {
    /// The window every count covers, in seconds.
    window_s: f64,
    /// The live rollout's weight in percent, `null` until a driver publishes one.
    rollout_weight: Option<f64>,
    /// The same in basis points.
    rollout_weight_bp: Option<u32>,
    /// The configuration version (as in bulk evaluations' metadata).
    version: u64,
    /// One line per flag, sorted by key.
    flags: Vec<FlagUsage>,
}

/// A JSON response.
fn json(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A plain-text response.
fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A response without a body.
fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// A 405 naming the allowed methods.
fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = empty(StatusCode::METHOD_NOT_ALLOWED);
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}
