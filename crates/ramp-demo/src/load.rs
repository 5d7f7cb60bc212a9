//! The open-loop load generator.
//!
//! Open loop means arrivals do not wait for responses: request times are drawn in advance
//! from a Poisson process and each request is sent at its target time whatever the service
//! is doing. A closed-loop generator (N users each waiting for their previous answer) slows
//! down exactly when the service does, which hides latency regressions; a canary analysis
//! must see them. When too many requests are outstanding the generator drops new arrivals
//! and counts them rather than queueing them, so the arrival process is never slowed.

use crate::clock;
use crate::error::DemoError;
use crate::upstream::UPSTREAM_HEADER;
use bytes::Bytes;
use http::header::HeaderValue;
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use ramp_stats::Histogram;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;

/// The response header a proxy may set to name the cohort that served a request; it takes
/// precedence over [`UPSTREAM_HEADER`] when present. Ramp's proxy currently sets this
/// header only on the request it forwards, so with it the upstream's header is what counts.
pub const COHORT_HEADER: &str = "x-ramp-cohort";

/// The request header carrying the simulated user, which a sticky proxy hashes to keep a
/// user on one cohort.
pub const USER_HEADER: &str = "x-user-id";

/// The highest accepted arrival rate. Beyond this a single generator task would spend its
/// time scheduling rather than measuring, and a demo has no need for more.
pub const MAX_RPS: f64 = 50_000.0;

/// The largest accepted `max_in_flight`; it also bounds the connection pool, hence file
/// descriptors.
pub const MAX_IN_FLIGHT: usize = 10_000;

/// The longest accepted per-request timeout; it also bounds the final drain.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// The longest accepted request path, in bytes.
pub const MAX_PATH_BYTES: usize = 2048;

/// How much of a response body is read, in bytes. The demo's bodies are a line; reading a
/// larger body stops here and the connection is dropped instead of reused.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The longest cohort label kept, in characters, so a hostile or verbose first line cannot
/// make the report large.
const MAX_LABEL_CHARS: usize = 64;

/// The label of responses that name no cohort at all (no header, empty body).
pub const UNKNOWN_COHORT: &str = "unknown";

/// How long an idle pooled connection is kept. It is shorter than the demo upstream's
/// header deadline, so the client, not the server, closes idle connections, and a request
/// rarely races a server-side close.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Slack added to the request timeout for the final drain, for tasks that have finished
/// their request but not yet been scheduled to report.
const DRAIN_SLACK: Duration = Duration::from_millis(200);

/// What load to generate, against which loopback address.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadConfig {
    /// Where to send requests. Must be a loopback address; anything else is refused before
    /// a single packet is sent, so a typo cannot aim the demo at a real service.
    pub target: SocketAddr,
    /// Mean arrival rate in requests per second (Poisson arrivals), in `(0, MAX_RPS]`.
    pub rps: f64,
    /// How long to generate arrivals; `None` runs until the shutdown future resolves.
    pub duration: Option<Duration>,
    /// Number of simulated users: 0 sends no user header; otherwise each request carries
    /// `x-user-id: u<N>` with N uniform in `0..users`, so a sticky proxy can be exercised.
    pub users: u32,
    /// Per-request deadline (connect, response head and body together), in `(0,
    /// MAX_TIMEOUT]`; a request past it counts as `failed`. It also bounds the final drain.
    pub timeout: Duration,
    /// Most requests outstanding at once, in `1..=MAX_IN_FLIGHT`. Arrivals beyond it are
    /// dropped and counted, never delayed: delaying them would close the loop.
    pub max_in_flight: usize,
    /// Seed of the arrival times and user draws, so a run's schedule is reproducible.
    pub seed: u64,
    /// Request path (and optional query), starting with `/`.
    pub path: String,
}

impl LoadConfig {
    /// A configuration with demo defaults: runs until shutdown, no user header, 5 s
    /// timeout, 256 in flight, seed 0, path `/`. Fields are public for anything else.
    pub fn new(target: SocketAddr, rps: f64) -> LoadConfig {
        LoadConfig {
            target,
            rps,
            duration: None,
            users: 0,
            timeout: Duration::from_secs(5),
            max_in_flight: 256,
            seed: 0,
            path: "/".to_string(),
        }
    }

    /// Checks every field and builds the request URI, so that nothing can fail (or be
    /// sent) once the run has started.
    fn validate(&self) -> Result<Uri, DemoError> {
        if !is_loopback(self.target.ip()) {
            return Err(DemoError::NonLoopbackTarget {
                target: self.target,
            });
        }
        let invalid =
            |field: &'static str, reason: String| DemoError::InvalidLoadConfig { field, reason };
        if self.target.port() == 0 {
            return Err(invalid("target", "must have a non-zero port".to_string()));
        }
        if !self.rps.is_finite() || self.rps <= 0.0 || self.rps > MAX_RPS {
            return Err(invalid(
                "rps",
                format!("must be above 0 and at most {MAX_RPS}, got {}", self.rps),
            ));
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(invalid(
                "timeout",
                format!(
                    "must be above 0 and at most {} s, got {:?}",
                    MAX_TIMEOUT.as_secs(),
                    self.timeout
                ),
            ));
        }
        if self.max_in_flight == 0 || self.max_in_flight > MAX_IN_FLIGHT {
            return Err(invalid(
                "max_in_flight",
                format!("must be 1 to {MAX_IN_FLIGHT}, got {}", self.max_in_flight),
            ));
        }
        if !self.path.starts_with('/') || self.path.len() > MAX_PATH_BYTES {
            return Err(invalid(
                "path",
                format!("must start with `/` and be at most {MAX_PATH_BYTES} bytes"),
            ));
        }
        let uri: Uri = format!("http://{}{}", self.target, self.path)
            .parse()
            .map_err(|e| invalid("path", format!("is not a valid request path: {e}")))?;
        if uri.path_and_query().map(|pq| pq.as_str()) != Some(self.path.as_str()) {
            return Err(invalid(
                "path",
                "must be a plain path and query (no fragment)".to_string(),
            ));
        }
        Ok(uri)
    }
}

/// Live counters of a run, readable while it goes (e.g. for progress output).
///
/// They are plain atomics updated as requests are sent and complete; read them with
/// [`LoadCounters::snapshot`]. At any moment `sent ≈ ok + status_4xx + status_5xx + failed
/// + in_flight` (each counter is exact; a snapshot may straddle one update).
#[derive(Debug, Default)]
pub struct LoadCounters {
    /// Requests dispatched.
    sent: AtomicU64,
    /// Responses with a 2xx or 3xx status.
    ok: AtomicU64,
    /// Responses with a 4xx status.
    status_4xx: AtomicU64,
    /// Responses with a 5xx status.
    status_5xx: AtomicU64,
    /// Requests that got no usable response.
    failed: AtomicU64,
    /// Arrivals not sent because `max_in_flight` requests were outstanding.
    dropped: AtomicU64,
    /// Requests outstanding now.
    in_flight: AtomicU64,
    /// The most requests ever outstanding at once.
    peak_in_flight: AtomicU64,
    /// One record per finished request, kept only when asked for
    /// ([`LoadCounters::with_log`]).
    log: Option<Mutex<Vec<Completion>>>,
}

/// One request's life as the generator saw it: when it was sent, when it ended and what came
/// back.
///
/// Counters say how many requests got each answer; a caller that must line requests up
/// against other events in time (the chaos soak counts the answers that fell inside an
/// interval its controller could not observe, and the requests in flight when a process was
/// killed) needs each request's times. Records are kept only when asked for, because a long
/// run at a high rate would otherwise grow without need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// When the request was handed to the client (its arrival time, give or take scheduling).
    pub sent: Instant,
    /// When its answer was read to the end, or when it failed.
    pub finished: Instant,
    /// The status of the answer, or `None` when no usable answer came (a connection error,
    /// a reset, a timeout, a cut-off body).
    pub status: Option<u16>,
}

/// A copy of [`LoadCounters`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadProgress {
    /// Requests dispatched so far.
    pub sent: u64,
    /// Responses with a 2xx or 3xx status so far.
    pub ok: u64,
    /// Responses with a 4xx status so far.
    pub status_4xx: u64,
    /// Responses with a 5xx status so far.
    pub status_5xx: u64,
    /// Requests that got no usable response so far (connect errors, timeouts, resets).
    pub failed: u64,
    /// Arrivals dropped because `max_in_flight` was reached.
    pub dropped: u64,
    /// Requests outstanding at the moment of the snapshot.
    pub in_flight: u64,
    /// The most requests outstanding at once so far; never above `max_in_flight`.
    pub peak_in_flight: u64,
}

impl LoadCounters {
    /// Fresh counters, shared with the run through an `Arc` so the caller can watch them.
    pub fn new() -> Arc<LoadCounters> {
        Arc::new(LoadCounters::default())
    }

    /// Fresh counters that also keep a [`Completion`] for every request that finishes
    /// (about 40 bytes each), for callers that need requests' times and not only their
    /// counts. Requests abandoned at the final drain are counted as failed but have no
    /// record, since they never finished.
    pub fn with_log() -> Arc<LoadCounters> {
        Arc::new(LoadCounters {
            log: Some(Mutex::new(Vec::new())),
            ..LoadCounters::default()
        })
    }

    /// Takes the records kept so far, leaving the log empty (always empty for counters made
    /// with [`LoadCounters::new`]). Records are in the order the requests finished.
    pub fn take_log(&self) -> Vec<Completion> {
        match &self.log {
            Some(log) => std::mem::take(&mut *log.lock().unwrap_or_else(|p| p.into_inner())),
            None => Vec::new(),
        }
    }

    /// The counters' current values.
    pub fn snapshot(&self) -> LoadProgress {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LoadProgress {
            sent: get(&self.sent),
            ok: get(&self.ok),
            status_4xx: get(&self.status_4xx),
            status_5xx: get(&self.status_5xx),
            failed: get(&self.failed),
            dropped: get(&self.dropped),
            in_flight: get(&self.in_flight),
            peak_in_flight: get(&self.peak_in_flight),
        }
    }

    /// Counts a dispatched request.
    fn started(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
    }

    /// Counts a request's end, by what came back.
    fn finished(&self, result: Result<u16, ()>) {
        let counter = match result {
            Ok(200..=399) => &self.ok,
            Ok(400..=499) => &self.status_4xx,
            Ok(500..=599) => &self.status_5xx,
            // An informational or out-of-range final status is a protocol failure.
            Ok(_) | Err(()) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Keeps the record of one finished request, when records are kept.
    fn record(&self, completion: Completion) {
        if let Some(log) = &self.log {
            // A poisoned lock still holds a usable vector: a panic elsewhere must not stop
            // the records.
            log.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(completion);
        }
    }
}

/// What a load run did.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// Requests dispatched; equals `ok + status_4xx + status_5xx + failed` once the run has
    /// returned.
    pub sent: u64,
    /// Responses with a 2xx or 3xx status.
    pub ok: u64,
    /// Responses with a 4xx status.
    pub status_4xx: u64,
    /// Responses with a 5xx status.
    pub status_5xx: u64,
    /// Requests without a usable response: connect errors, timeouts, resets, and requests
    /// still outstanding when the final drain ran out.
    pub failed: u64,
    /// Arrivals not sent because `max_in_flight` requests were outstanding: an open-loop
    /// generator never waits for capacity, so an overloaded target shows up here.
    pub dropped: u64,
    /// Responses (any status) by cohort: the `x-ramp-cohort` response header if present,
    /// else the upstream's `x-ramp-upstream` header, else the body's first line, else
    /// `unknown`. Ordered, so reports print deterministically.
    pub by_cohort: BTreeMap<String, u64>,
    /// Client-observed latency in ms (request sent to body read) of every response, any
    /// status; failed requests have no latency.
    pub latency: Histogram,
    /// How long arrivals were generated (not counting the final drain), so `sent /
    /// elapsed` is the achieved rate.
    pub elapsed: Duration,
}

impl LoadReport {
    /// Requests dispatched per second of the arrival phase, or 0 for an empty run.
    pub fn achieved_rps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.sent as f64 / secs
        } else {
            0.0
        }
    }
}

/// Poisson arrivals at `rps` (exponential inter-arrival times from a seeded RNG, scheduled
/// against absolute target times so that slow responses never slow the arrival process),
/// each request on a pooled keep-alive client, until the duration elapses or `shutdown`
/// resolves; then waits (bounded by the request timeout) for in-flight requests and returns
/// the report.
///
/// The configuration is checked before anything is sent: a non-loopback target or an out
/// of range field is an error and no connection is attempted. Use [`run_load_with`] to
/// watch live counters during the run.
pub async fn run_load(
    config: LoadConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<LoadReport, DemoError> {
    run_load_with(config, LoadCounters::new(), shutdown).await
}

/// [`run_load`] with caller-supplied counters, which the run updates as it goes so that the
/// caller can print progress. The counters should be fresh; the report's counts are read
/// from them at the end.
pub async fn run_load_with(
    config: LoadConfig,
    counters: Arc<LoadCounters>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<LoadReport, DemoError> {
    let uri = config.validate()?;
    tokio::pin!(shutdown);

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(config.timeout));
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(config.max_in_flight)
        .build(connector);

    let mut rng = Pcg64Mcg::seed_from_u64(config.seed);
    let permits = Arc::new(Semaphore::new(config.max_in_flight));
    let mut tasks: JoinSet<Outcome> = JoinSet::new();
    let mut tally = Tally::default();

    let start = clock::now();
    // A duration too long to represent is the same as none.
    let deadline = config.duration.and_then(|d| start.checked_add(d));
    let mut next = advance(start, &mut rng, config.rps);
    loop {
        // Past the deadline the loop only waits for it, so the arrival phase lasts the
        // whole duration even when the last arrival came early.
        // With no deadline and no representable next arrival, only shutdown remains.
        let (wake, last) = match (deadline, next) {
            (Some(d), Some(n)) if n < d => (Some(n), false),
            (None, n) => (n, false),
            (Some(d), _) => (Some(d), true),
        };
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                tally.absorb(joined, &counters);
                continue;
            }
            () = tokio::time::sleep_until(wake.unwrap_or(start)), if wake.is_some() => {}
        }
        if last {
            break;
        }
        // The user is drawn for every arrival, sent or dropped, so the RNG sequence (and the
        // schedule) does not depend on the target's speed.
        let user = (config.users > 0).then(|| rng.random_range(0..config.users));
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                counters.started();
                let request = build_request(&uri, user);
                tasks.spawn(send(
                    client.clone(),
                    request,
                    config.timeout,
                    counters.clone(),
                    permit,
                ));
            }
            Err(_) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        next = next.and_then(|n| advance(n, &mut rng, config.rps));
    }
    let elapsed = clock::now().saturating_duration_since(start);

    // Every request carries its own timeout, so the drain normally ends within it; the
    // deadline here is a backstop, after which stragglers are abandoned as failed.
    let drain_deadline = clock::now() + config.timeout + DRAIN_SLACK;
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(joined) => tally.absorb(joined, &counters),
                None => break,
            },
            () = tokio::time::sleep_until(drain_deadline) => break,
        }
    }
    tasks.abort_all();
    while let Some(joined) = tasks.join_next().await {
        tally.absorb(joined, &counters);
    }

    let done = counters.snapshot();
    Ok(LoadReport {
        sent: done.sent,
        ok: done.ok,
        status_4xx: done.status_4xx,
        status_5xx: done.status_5xx,
        failed: done.failed,
        dropped: done.dropped,
        by_cohort: tally.by_cohort,
        latency: tally.latency,
        elapsed,
    })
}

/// The next arrival after `from`: an exponential gap of mean `1 / rps`, or `None` if the
/// time is not representable (which ends arrivals).
fn advance(from: Instant, rng: &mut Pcg64Mcg, rps: f64) -> Option<Instant> {
    let u: f64 = rng.random();
    // u is in [0, 1), so 1 − u is in (0, 1] and the logarithm is finite.
    let gap = -(1.0 - u).ln() / rps;
    let gap = Duration::try_from_secs_f64(gap).ok()?;
    from.checked_add(gap)
}

/// A GET of `uri`, with the user header when there is a user.
fn build_request(uri: &Uri, user: Option<u32>) -> Request<Empty<Bytes>> {
    let mut request = Request::new(Empty::new());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri.clone();
    if let Some(n) = user {
        // "u" and digits are always a valid header value; the fallback is never taken.
        if let Ok(v) = HeaderValue::try_from(format!("u{n}")) {
            request.headers_mut().insert(USER_HEADER, v);
        }
    }
    request
}

/// What one request task hands back to the run, besides updating the counters.
enum Outcome {
    /// A response arrived: its cohort label and latency.
    Response {
        /// The cohort it is counted under.
        label: String,
        /// Client-observed latency, ms.
        latency_ms: f64,
    },
    /// No usable response (already counted as failed).
    Failed,
}

/// Aggregates of completed requests kept by the run itself (the counters are shared).
#[derive(Default)]
struct Tally {
    /// Responses per cohort label.
    by_cohort: BTreeMap<String, u64>,
    /// Latency of every response, ms.
    latency: Histogram,
}

impl Tally {
    /// Takes in one finished (or cancelled) request task.
    fn absorb(&mut self, joined: Result<Outcome, JoinError>, counters: &LoadCounters) {
        match joined {
            Ok(Outcome::Response { label, latency_ms }) => {
                *self.by_cohort.entry(label).or_insert(0) += 1;
                self.latency.record(latency_ms);
            }
            Ok(Outcome::Failed) => {}
            // The task was abandoned at the drain deadline (or, impossibly, panicked) before
            // it could count itself, so it is counted here.
            Err(_) => counters.finished(Err(())),
        }
    }
}

/// Sends one request and reads its answer within `timeout`, counting the result. Holding
/// `permit` for the task's whole life is what bounds requests in flight.
async fn send(
    client: Client<HttpConnector, Empty<Bytes>>,
    request: Request<Empty<Bytes>>,
    timeout: Duration,
    counters: Arc<LoadCounters>,
    permit: OwnedSemaphorePermit,
) -> Outcome {
    let started = clock::now();
    let exchange = async {
        let response = client.request(request).await.map_err(|_| ())?;
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let first_line = read_first_line(body).await?;
        Ok::<_, ()>((status, label_of(&parts.headers, first_line)))
    };
    let result = tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(()));
    let finished = clock::now();
    let latency_ms = finished.saturating_duration_since(started).as_secs_f64() * 1000.0;
    drop(permit);
    counters.record(Completion {
        sent: started,
        finished,
        status: result.as_ref().ok().map(|(status, _)| *status),
    });
    match result {
        Ok((status, label)) => {
            counters.finished(Ok(status));
            if (200..=599).contains(&status) {
                Outcome::Response { label, latency_ms }
            } else {
                Outcome::Failed
            }
        }
        Err(()) => {
            counters.finished(Err(()));
            Outcome::Failed
        }
    }
}

/// Reads the body up to `MAX_BODY_BYTES` and returns its first line (trimmed, possibly
/// empty). A body cut off by an error is a failed request; a body over the limit is not
/// read further (the connection is then closed rather than reused).
async fn read_first_line(mut body: Incoming) -> Result<String, ()> {
    let mut head: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ())?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if head.len() < MAX_LABEL_CHARS * 4 && !head.contains(&b'\n') {
                let room = MAX_LABEL_CHARS * 4 - head.len();
                head.extend_from_slice(&data[..data.len().min(room)]);
            }
            if total > MAX_BODY_BYTES {
                break;
            }
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    Ok(String::from_utf8_lossy(line).trim().to_string())
}

/// The cohort label of a response: the cohort header, else the upstream header, else the
/// body's first line, else [`UNKNOWN_COHORT`]; truncated to `MAX_LABEL_CHARS`.
fn label_of(headers: &HeaderMap, first_line: String) -> String {
    let from_header = [COHORT_HEADER, UPSTREAM_HEADER].iter().find_map(|name| {
        headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    });
    let label = from_header.unwrap_or(first_line);
    if label.is_empty() {
        UNKNOWN_COHORT.to_string()
    } else {
        label.chars().take(MAX_LABEL_CHARS).collect()
    }
}

/// Whether `ip` is on this machine's loopback interface, including IPv4-mapped IPv6
/// loopback (`::ffff:127.0.0.1`), which connects to the same place.
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(target: &str) -> LoadConfig {
        LoadConfig::new(target.parse().expect("socket address"), 10.0)
    }

    #[test]
    fn only_loopback_targets_are_accepted() {
        for ok in [
            "127.0.0.1:80",
            "127.1.2.3:8080",
            "[::1]:80",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(config(ok).validate().is_ok(), "{ok}");
        }
        for bad in [
            "0.0.0.0:80",
            "192.0.2.1:80",
            "10.0.0.1:80",
            "[::]:80",
            "[2001:db8::1]:80",
        ] {
            assert!(
                matches!(
                    config(bad).validate(),
                    Err(DemoError::NonLoopbackTarget { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn out_of_range_fields_are_named() {
        /// A change that makes a valid configuration invalid.
        type Change = fn(&mut LoadConfig);
        let cases: [(Change, &str); 9] = [
            (|c| c.rps = 0.0, "rps"),
            (|c| c.rps = f64::NAN, "rps"),
            (|c| c.rps = 1e9, "rps"),
            (|c| c.timeout = Duration::ZERO, "timeout"),
            (|c| c.max_in_flight = 0, "max_in_flight"),
            (|c| c.path = "nope".into(), "path"),
            (|c| c.path = "/a#frag".into(), "path"),
            (|c| c.path = "/a b".into(), "path"),
            (|c| c.target.set_port(0), "target"),
        ];
        for (change, want) in cases {
            let mut c = config("127.0.0.1:80");
            change(&mut c);
            match c.validate() {
                Err(DemoError::InvalidLoadConfig { field, .. }) => assert_eq!(field, want),
                other => panic!("{want}: {other:?}"),
            }
        }
        let mut c = config("127.0.0.1:80");
        c.path = "/x?y=1".into();
        assert!(c.validate().is_ok());
    }

    #[test]
    fn labels_prefer_the_cohort_header_then_the_upstream_then_the_body() {
        let mut h = HeaderMap::new();
        assert_eq!(label_of(&h, String::new()), UNKNOWN_COHORT);
        assert_eq!(label_of(&h, "body".into()), "body");
        h.insert(UPSTREAM_HEADER, HeaderValue::from_static("stable"));
        assert_eq!(label_of(&h, "body".into()), "stable");
        h.insert(COHORT_HEADER, HeaderValue::from_static("canary"));
        assert_eq!(label_of(&h, "body".into()), "canary");
        let long = "x".repeat(500);
        assert_eq!(label_of(&HeaderMap::new(), long).len(), MAX_LABEL_CHARS);
    }

    #[test]
    fn arrival_gaps_have_the_configured_mean() {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let start = clock::now();
        let mut t = start;
        let n = 100_000;
        for _ in 0..n {
            t = advance(t, &mut rng, 250.0).expect("representable");
        }
        let mean = t.duration_since(start).as_secs_f64() / n as f64;
        assert!((mean - 0.004).abs() < 0.004 * 0.02, "mean gap {mean}");
    }
}
