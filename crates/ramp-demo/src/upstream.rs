//! The demo upstream: a tiny HTTP/1.1 server whose latency and error rate follow a model.
//!
//! A demo needs upstreams that behave like services with a known, tunable latency
//! distribution, so that what Ramp measures can be checked against what was configured.
//! Each request sleeps for a latency drawn from the simulator's spliced log-normal
//! ([`LatencyModel`]) and then answers 200, or 500 with the configured probability. The
//! error rate and an added latency can be raised while serving ([`Behaviour::set_regression`])
//! to make a canary regress mid-run.
//!
//! Like a real service it exports its own metrics at `GET /metrics` (Prometheus text format,
//! every series labelled `version="<name>"`), so a rollout can be judged from Prometheus
//! with Ramp's proxy only routing:
//!
//! - `http_request_duration_seconds` (histogram): the time it took to answer, the drawn
//!   latency it waited plus handling, with the proxy's bucket layout (158 bounds from 1 ms
//!   to 60 s, so `histogram_quantile` is within about 1 % of the exact quantile);
//! - `http_requests_total{code}`: answers by status code ("200", "400", "500");
//! - `demo_checkouts_total{outcome="success"|"failure"}`: a business metric. Every request
//!   answered 200 or 500 is a checkout attempt; an injected 500 is a failed checkout, and a
//!   served one fails with the checkout failure rate (0 unless set), which
//!   [`Behaviour::set_checkout_failure_rate`] changes while serving, as a bug that breaks
//!   checkouts without raising the HTTP error rate would.
//!
//! `/health` and `/metrics` requests count in none of them.

use crate::clock;
use crate::error::DemoError;
use crate::metrics::ServedMetrics;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use ramp_sim::model::LatencyModel;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// The response header naming the upstream that answered. Ramp's proxy tells the upstream
/// its cohort in a *request* header but sets none on the response, so the demo upstream
/// names itself here and the load generator counts cohorts by it.
pub const UPSTREAM_HEADER: &str = "x-ramp-upstream";

/// The longest latency an upstream will ever wait before answering, in ms. The model's tail
/// is unbounded (its last segment continues past p99), and a regression can add latency;
/// capping keeps every sleep, and therefore every connection's lifetime, bounded.
pub const MAX_LATENCY_MS: f64 = 60_000.0;

/// The largest request body the demo upstream reads; more is refused with 400.
const MAX_BODY_BYTES: usize = 1 << 20;

/// The longest the demo upstream waits for a request's body.
const MAX_BODY_WAIT: Duration = Duration::from_secs(60);

/// The longest accepted upstream name, in bytes. The name is echoed in a header and as the
/// body's first line, so it is kept short enough to be cheap to send and to print.
pub const MAX_NAME_BYTES: usize = 64;

/// How long shutdown waits for in-flight requests before abandoning them. A demo upstream
/// may be sleeping for seconds on a regressed request; a stopped demo should not wait that
/// long.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a client may take to send a request head. It bounds idle keep-alive
/// connections too, since hyper starts this timer whenever a connection waits for a head;
/// the load generator drops idle pooled connections sooner than this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest request head buffered, in bytes (hyper's minimum is 8 KiB).
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Connections served at once; further clients wait in the kernel's backlog instead of
/// exhausting file descriptors.
const MAX_CONNECTIONS: usize = 1024;

/// How a demo upstream behaves: its name, latency model, error rate and seed, plus a
/// regression that can be switched on and off while it serves.
///
/// The fixed part is plain data; the adjustable part is two atomics holding `f64` bits, so
/// every request reads the current regression without a lock.
#[derive(Debug)]
pub struct Behaviour {
    /// The upstream's name, echoed in [`UPSTREAM_HEADER`] and as the body's first line so
    /// that clients can tell which upstream answered.
    name: String,
    /// `name` as a header value, validated once so the hot path never fails on it.
    header_value: HeaderValue,
    /// Body of a successful answer: the name and a newline.
    ok_body: Bytes,
    /// Body of an injected error: the name on the first line, so that counting by the
    /// body's first line attributes errors to the right upstream too.
    error_body: Bytes,
    /// The latency model fitted through the configured quantiles.
    model: LatencyModel,
    /// The configured p50, p95 and p99 in ms, kept to describe the behaviour.
    quantiles_ms: [f64; 3],
    /// Base probability that a request answers 500.
    error_rate: f64,
    /// Seed from which each connection's RNG is derived, so a run is reproducible given the
    /// same sequence of connections and requests.
    seed: u64,
    /// Extra error probability of the current regression, as `f64` bits.
    extra_error_rate: AtomicU64,
    /// Latency added by the current regression in ms, as `f64` bits.
    added_latency_ms: AtomicU64,
    /// Requests answered other than `/health`, so tests and the demo can compare what the
    /// server did with what a client saw.
    requests: AtomicU64,
    /// How many of `requests` were answered with 500.
    errors: AtomicU64,
    /// `/health` requests answered.
    health: AtomicU64,
    /// Probability that a served (200) checkout attempt fails, as `f64` bits.
    checkout_failure_rate: AtomicU64,
    /// What `GET /metrics` exports: latency, answers by code, checkouts.
    metrics: ServedMetrics,
}

/// What an upstream has answered so far, read from its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServedCounts {
    /// Requests answered other than `/health` (successes and injected errors), the
    /// server-side counterpart of a load report's per-cohort count.
    pub requests: u64,
    /// Requests answered 500 by injection; the observed error rate is `errors / requests`.
    pub errors: u64,
    /// `GET /health` requests answered; kept apart so health checks do not dilute the
    /// error rate.
    pub health: u64,
}

impl Behaviour {
    /// A behaviour named `name` whose latency has the given quantiles (ms) and which fails a
    /// share `error_rate` of requests.
    ///
    /// The quantiles must be finite, positive and non-decreasing (equal quantiles give a
    /// fixed latency, handy for tests); the error rate must be in 0–1; the name must be 1 to
    /// [`MAX_NAME_BYTES`] visible ASCII characters, because it travels in a header and as a
    /// body line. The seed defaults to a hash of the name, so that a stable and a canary
    /// draw different sequences; see [`Behaviour::with_seed`].
    pub fn new(
        name: &str,
        p50_ms: f64,
        p95_ms: f64,
        p99_ms: f64,
        error_rate: f64,
    ) -> Result<Behaviour, DemoError> {
        let invalid =
            |field: &'static str, reason: String| DemoError::InvalidBehaviour { field, reason };
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            return Err(invalid(
                "name",
                format!("must be 1 to {MAX_NAME_BYTES} bytes long"),
            ));
        }
        if !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "name",
                "must consist of visible ASCII characters (no spaces or control characters)"
                    .to_string(),
            ));
        }
        let header_value = HeaderValue::from_str(name)
            .map_err(|e| invalid("name", format!("is not a valid header value: {e}")))?;
        for (field, v) in [("p50_ms", p50_ms), ("p95_ms", p95_ms), ("p99_ms", p99_ms)] {
            if !v.is_finite() || v <= 0.0 || v > MAX_LATENCY_MS {
                return Err(invalid(
                    field,
                    format!("must be a positive number of ms up to {MAX_LATENCY_MS}, got {v}"),
                ));
            }
        }
        if p95_ms < p50_ms || p99_ms < p95_ms {
            return Err(invalid(
                "p95_ms",
                format!(
                    "quantiles must not decrease: got p50 {p50_ms}, p95 {p95_ms}, p99 {p99_ms}"
                ),
            ));
        }
        if !(0.0..=1.0).contains(&error_rate) {
            return Err(invalid(
                "error_rate",
                format!("must be between 0 and 1, got {error_rate}"),
            ));
        }
        Ok(Behaviour {
            name: name.to_string(),
            header_value,
            ok_body: Bytes::from(format!("{name}\n")),
            error_body: Bytes::from(format!("{name}\ninjected error\n")),
            model: LatencyModel::new(p50_ms, p95_ms, p99_ms),
            quantiles_ms: [p50_ms, p95_ms, p99_ms],
            error_rate,
            seed: fnv1a(name.as_bytes()),
            extra_error_rate: AtomicU64::new(0f64.to_bits()),
            added_latency_ms: AtomicU64::new(0f64.to_bits()),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            health: AtomicU64::new(0),
            checkout_failure_rate: AtomicU64::new(0f64.to_bits()),
            metrics: ServedMetrics::default(),
        })
    }

    /// The same behaviour with an explicit seed, for runs that must be reproducible across
    /// renames or that want several upstreams of one name to differ.
    pub fn with_seed(mut self, seed: u64) -> Behaviour {
        self.seed = seed;
        self
    }

    /// Changes the behaviour while serving (used by `ramp demo --break` and tests to make
    /// the canary regress mid-run): an extra error rate and/or an added latency in ms.
    ///
    /// Bad input never panics: the error rate is clamped to 0–1 and the latency to
    /// 0–[`MAX_LATENCY_MS`], and NaN counts as 0. The two values are stored separately, so a
    /// request racing with this call may see one new value and one old one.
    pub fn set_regression(&self, extra_error_rate: f64, added_latency_ms: f64) {
        let rate = clamp_or_zero(extra_error_rate, 1.0);
        let ms = clamp_or_zero(added_latency_ms, MAX_LATENCY_MS);
        self.extra_error_rate
            .store(rate.to_bits(), Ordering::Relaxed);
        self.added_latency_ms.store(ms.to_bits(), Ordering::Relaxed);
    }

    /// Removes any regression, restoring the configured behaviour.
    pub fn clear_regression(&self) {
        self.set_regression(0.0, 0.0);
    }

    /// The current regression as (extra error rate, added latency in ms), so a demo can
    /// show what it injected.
    pub fn regression(&self) -> (f64, f64) {
        (
            f64::from_bits(self.extra_error_rate.load(Ordering::Relaxed)),
            f64::from_bits(self.added_latency_ms.load(Ordering::Relaxed)),
        )
    }

    /// Sets the probability that a served checkout attempt fails (see the module's
    /// documentation), before or while serving: `ramp demo` and tests break the canary's
    /// business metric with it while its HTTP answers stay 200.
    ///
    /// Bad input never panics: the rate is clamped to 0–1 and NaN counts as 0.
    pub fn set_checkout_failure_rate(&self, rate: f64) {
        let rate = clamp_or_zero(rate, 1.0);
        self.checkout_failure_rate
            .store(rate.to_bits(), Ordering::Relaxed);
    }

    /// The current checkout failure rate, so a demo can show what it injected.
    pub fn checkout_failure_rate(&self) -> f64 {
        f64::from_bits(self.checkout_failure_rate.load(Ordering::Relaxed))
    }

    /// Checkout attempts so far as (successes, failures), the counts `demo_checkouts_total`
    /// exports, so tests can compare Prometheus' answer with the server's own.
    pub fn checkouts(&self) -> (u64, u64) {
        self.metrics.checkouts()
    }

    /// The latency sketch behind `http_request_duration_seconds`: the exact distribution a
    /// caller compares Prometheus' `histogram_quantile` with.
    pub fn latency(&self) -> ramp_proxy::histogram::HistogramSnapshot {
        self.metrics.latency()
    }

    /// The `GET /metrics` document (Prometheus text format 0.0.4) as of now.
    pub fn metrics_text(&self) -> String {
        self.metrics.render(&self.name)
    }

    /// The upstream's name, as it appears in responses.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configured p50, p95 and p99 in ms, so a demo can print what it set up.
    pub fn quantiles_ms(&self) -> [f64; 3] {
        self.quantiles_ms
    }

    /// The configured base error rate, without any regression.
    pub fn error_rate(&self) -> f64 {
        self.error_rate
    }

    /// The seed each connection's RNG is derived from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// What this upstream has answered so far.
    pub fn served(&self) -> ServedCounts {
        ServedCounts {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            health: self.health.load(Ordering::Relaxed),
        }
    }

    /// Draws one request's latency, whether it answers 500, and whether its checkout fails
    /// if it is served. Every draw is always made, whatever the rates, so the RNG sequence
    /// (and hence a seeded run) does not depend on them.
    fn draw(&self, rng: &mut Pcg64Mcg) -> (Duration, bool, bool) {
        let (extra, added) = self.regression();
        let ms = self.model.sample(rng) + added;
        let u: f64 = rng.random();
        let p = (self.error_rate + extra).min(1.0);
        let v: f64 = rng.random();
        (ms_to_duration(ms), u < p, v < self.checkout_failure_rate())
    }

    /// The RNG of the `index`-th accepted connection: the seed and the index are mixed so
    /// that neighbouring connections get unrelated streams.
    fn connection_rng(&self, index: u64) -> Pcg64Mcg {
        let mixed = splitmix64(self.seed ^ splitmix64(index));
        Pcg64Mcg::seed_from_u64(mixed)
    }

    /// A response with the upstream's header and a plain-text body.
    fn response(&self, status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(UPSTREAM_HEADER, self.header_value.clone());
        response
    }
}

/// Serves until `shutdown` resolves: every request gets, after a latency drawn from the
/// model (a tokio sleep), either 200 with a tiny body naming the upstream (e.g. `stable\n`)
/// or 500 with probability error rate (+ regression). `GET /health` answers 200 at once and
/// is never an error. Connections are HTTP/1.1 with keep-alive; each gets its own RNG,
/// seeded from the behaviour's seed and the connection's accept order, so runs are
/// reproducible as far as the order of connections is.
///
/// On shutdown the server stops accepting, lets in-flight requests finish for up to
/// [`DRAIN_TIMEOUT`], then drops what remains. It returns an error only if the listener is
/// unusable from the start; accept failures while running (out of file descriptors) are
/// logged and retried after a short pause.
pub async fn serve_upstream(
    listener: TcpListener,
    behaviour: Arc<Behaviour>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    listener.local_addr().map_err(DemoError::Listener)?;
    tokio::pin!(shutdown);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut index: u64 = 0;
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        // Finished connections are reaped here so the set does not grow with churn.
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, upstream = %behaviour.name, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let rng = Arc::new(Mutex::new(behaviour.connection_rng(index)));
        index = index.wrapping_add(1);
        let b = behaviour.clone();
        let service = service_fn(move |req| answer(req, b.clone(), rng.clone()));
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Each connection bounds its own drain; this outer bound is a backstop.
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_millis(500), drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
    Ok(())
}

/// Answers one request according to `behaviour`, drawing from the connection's RNG.
async fn answer(
    req: Request<Incoming>,
    behaviour: Arc<Behaviour>,
    rng: Arc<Mutex<Pcg64Mcg>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == Method::GET && req.uri().path() == "/health" {
        behaviour.health.fetch_add(1, Ordering::Relaxed);
        return Ok(behaviour.response(StatusCode::OK, Bytes::from_static(b"ok\n")));
    }
    if req.method() == Method::GET && req.uri().path() == "/metrics" {
        let mut r = behaviour.response(StatusCode::OK, Bytes::from(behaviour.metrics_text()));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return Ok(r);
    }
    let started = clock::now();
    let elapsed_us = || clock::now().duration_since(started).as_micros() as u64;
    // A handler reads the request's body before it answers, as a real POST endpoint does, so
    // that an upload the client stalls keeps the request open (and reaches the proxy's
    // request-body timeout) rather than being answered early. The body is bounded in size
    // and time; one that cannot be read is the client's fault.
    let body = tokio::time::timeout(
        MAX_BODY_WAIT,
        http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES).collect(),
    )
    .await;
    if !matches!(body, Ok(Ok(_))) {
        behaviour.metrics.record(400, elapsed_us(), None);
        return Ok(behaviour.response(
            StatusCode::BAD_REQUEST,
            Bytes::from_static(b"unreadable request body\n"),
        ));
    }
    let (latency, error, checkout_failed) = {
        // The lock is per connection and held only for two draws; a poisoned lock still
        // holds a usable RNG, so it is recovered rather than propagated as a panic.
        let mut rng = rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        behaviour.draw(&mut rng)
    };
    tokio::time::sleep(latency).await;
    behaviour.requests.fetch_add(1, Ordering::Relaxed);
    if error {
        behaviour.errors.fetch_add(1, Ordering::Relaxed);
        behaviour.metrics.record(500, elapsed_us(), Some(true));
        Ok(behaviour.response(
            StatusCode::INTERNAL_SERVER_ERROR,
            behaviour.error_body.clone(),
        ))
    } else {
        behaviour
            .metrics
            .record(200, elapsed_us(), Some(checkout_failed));
        Ok(behaviour.response(StatusCode::OK, behaviour.ok_body.clone()))
    }
}

/// `x` limited to `0..=max`, with NaN as 0, so runtime adjustments can never poison a
/// draw.
fn clamp_or_zero(x: f64, max: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, max)
    }
}

/// A latency in ms as a sleep duration, capped at [`MAX_LATENCY_MS`]; negative or NaN
/// values become zero (`Duration::from_secs_f64` would panic on them).
fn ms_to_duration(ms: f64) -> Duration {
    Duration::from_secs_f64(clamp_or_zero(ms, MAX_LATENCY_MS) / 1000.0)
}

/// FNV-1a, 64-bit: a stable hash of the name for the default seed (std's hasher is not
/// guaranteed stable across releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// SplitMix64's finaliser: spreads nearby inputs (connection indexes) over the seed space.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_are_refused_with_the_field_named() {
        let cases: [(&str, f64, f64, f64, f64, &str); 8] = [
            ("", 1.0, 2.0, 3.0, 0.0, "name"),
            ("has space", 1.0, 2.0, 3.0, 0.0, "name"),
            ("new\nline", 1.0, 2.0, 3.0, 0.0, "name"),
            ("ok", f64::NAN, 2.0, 3.0, 0.0, "p50_ms"),
            ("ok", 0.0, 2.0, 3.0, 0.0, "p50_ms"),
            ("ok", 1.0, 2.0, f64::INFINITY, 0.0, "p99_ms"),
            ("ok", 5.0, 2.0, 3.0, 0.0, "p95_ms"),
            ("ok", 1.0, 2.0, 3.0, 1.5, "error_rate"),
        ];
        for (name, p50, p95, p99, e, want) in cases {
            match Behaviour::new(name, p50, p95, p99, e) {
                Err(DemoError::InvalidBehaviour { field, .. }) => assert_eq!(field, want),
                other => panic!("{name:?} {p50} {p95} {p99} {e}: {other:?}"),
            }
        }
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        assert!(Behaviour::new(&long, 1.0, 2.0, 3.0, 0.0).is_err());
        assert!(Behaviour::new("fixed", 7.0, 7.0, 7.0, 0.0).is_ok());
    }

    #[test]
    fn regressions_are_clamped_and_never_panic() {
        let b = Behaviour::new("c", 1.0, 2.0, 3.0, 0.0).expect("valid");
        b.set_regression(f64::NAN, f64::NEG_INFINITY);
        assert_eq!(b.regression(), (0.0, 0.0));
        b.set_regression(7.0, f64::INFINITY);
        assert_eq!(b.regression(), (1.0, MAX_LATENCY_MS));
        let mut rng = b.connection_rng(0);
        for _ in 0..100 {
            let (latency, error, _) = b.draw(&mut rng);
            assert!(error);
            assert!(latency <= Duration::from_secs_f64(MAX_LATENCY_MS / 1000.0));
        }
        b.clear_regression();
        assert_eq!(b.regression(), (0.0, 0.0));
    }

    #[test]
    fn the_checkout_failure_rate_is_clamped_and_never_panics() {
        let b = Behaviour::new("c", 1.0, 2.0, 3.0, 0.0).expect("valid");
        assert_eq!(b.checkout_failure_rate(), 0.0);
        for (given, kept) in [(f64::NAN, 0.0), (-1.0, 0.0), (7.0, 1.0), (0.25, 0.25)] {
            b.set_checkout_failure_rate(given);
            assert_eq!(b.checkout_failure_rate(), kept, "{given}");
        }
        b.set_checkout_failure_rate(f64::INFINITY);
        let mut rng = b.connection_rng(0);
        assert!((0..100).all(|_| b.draw(&mut rng).2));
    }

    #[test]
    fn durations_are_safe_for_any_input() {
        assert_eq!(ms_to_duration(f64::NAN), Duration::ZERO);
        assert_eq!(ms_to_duration(-3.0), Duration::ZERO);
        assert_eq!(ms_to_duration(f64::INFINITY), Duration::from_secs(60));
        assert_eq!(ms_to_duration(1500.0), Duration::from_millis(1500));
    }

    #[test]
    fn the_same_seed_and_connection_draw_the_same_sequence() {
        let a = Behaviour::new("s", 10.0, 20.0, 40.0, 0.3).expect("valid");
        let b = Behaviour::new("s", 10.0, 20.0, 40.0, 0.3).expect("valid");
        let (mut ra, mut rb) = (a.connection_rng(3), b.connection_rng(3));
        let xs: Vec<_> = (0..50).map(|_| a.draw(&mut ra)).collect();
        let ys: Vec<_> = (0..50).map(|_| b.draw(&mut rb)).collect();
        assert_eq!(xs, ys);
        let mut other = a.connection_rng(4);
        let zs: Vec<_> = (0..50).map(|_| a.draw(&mut other)).collect();
        assert_ne!(xs, zs);
    }
}
