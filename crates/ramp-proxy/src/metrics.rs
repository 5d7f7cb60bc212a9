//! Per-cohort measurement: requests, responses, errors by reason and source, in-flight
//! requests and latency.
//!
//! Every error records its source, pingora-style: the upstream of one cohort, the client, or
//! the proxy itself. A canary that answers 500 and a client that sends garbage must never be
//! confused, or a rollout would be judged on the wrong evidence: a request charged to the
//! client (a stalled or malformed upload, a malformed request) records nothing in either
//! cohort, and each cohort's `errors` counts the requests the gates must see as failed, each
//! at most once.

use crate::exposition;
use crate::histogram::{Histogram, HistogramSnapshot};
use crate::routing::Cohort;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Why a request to an upstream failed. Closed, matched exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamFailure {
    /// The upstream answered with a 5xx status (the response is passed through).
    Status5xx,
    /// No connection could be made (refused, unreachable, connect timeout).
    Connect,
    /// The upstream did not answer (headers) or stalled (body) within the deadline: 504.
    Timeout,
    /// The upstream closed or reset the connection before the response was complete.
    Reset,
    /// The upstream answered with something that is not valid HTTP: 502.
    BadResponse,
}

impl UpstreamFailure {
    /// Every variant, in the order of the counter array.
    pub const ALL: [UpstreamFailure; 5] = [
        UpstreamFailure::Status5xx,
        UpstreamFailure::Connect,
        UpstreamFailure::Timeout,
        UpstreamFailure::Reset,
        UpstreamFailure::BadResponse,
    ];

    /// The label value in metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamFailure::Status5xx => "status_5xx",
            UpstreamFailure::Connect => "connect",
            UpstreamFailure::Timeout => "timeout",
            UpstreamFailure::Reset => "reset",
            UpstreamFailure::BadResponse => "bad_response",
        }
    }

    fn slot(self) -> usize {
        match self {
            UpstreamFailure::Status5xx => 0,
            UpstreamFailure::Connect => 1,
            UpstreamFailure::Timeout => 2,
            UpstreamFailure::Reset => 3,
            UpstreamFailure::BadResponse => 4,
        }
    }
}

/// Failures caused by the client, never charged to a cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientFailure {
    /// A request that does not parse as HTTP (hyper answers 400).
    BadRequest,
    /// Request headers over the configured limit (hyper answers 431).
    HeadersTooLarge,
    /// The client did not send complete headers in time (the connection is closed).
    HeaderTimeout,
    /// The client went away before the response was complete (in the middle of its upload,
    /// the request reaches no cohort).
    Disconnected,
    /// The client stopped sending its request body for longer than the body idle deadline:
    /// 408, and the request reaches no cohort.
    BodyTimeout,
    /// The client's request body is not valid HTTP framing (a broken chunk, say): 400, and
    /// the request reaches no cohort.
    BadBody,
    /// An HTTP/1.1 request without `Host`, or a request with more than one (RFC 9112
    /// §3.2): 400, never forwarded.
    BadHost,
    /// A `CONNECT` request, which a reverse proxy does not tunnel: 400, never forwarded.
    ConnectMethod,
    /// An HTTP/2 client broke the protocol (garbage after the preface, a bad frame): the
    /// connection is closed with a GOAWAY.
    H2Protocol,
}

impl ClientFailure {
    /// Every variant, in the order of the counter array.
    pub const ALL: [ClientFailure; 9] = [
        ClientFailure::BadRequest,
        ClientFailure::HeadersTooLarge,
        ClientFailure::HeaderTimeout,
        ClientFailure::Disconnected,
        ClientFailure::BodyTimeout,
        ClientFailure::BadBody,
        ClientFailure::BadHost,
        ClientFailure::ConnectMethod,
        ClientFailure::H2Protocol,
    ];

    /// The label value in metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientFailure::BadRequest => "bad_request",
            ClientFailure::HeadersTooLarge => "headers_too_large",
            ClientFailure::HeaderTimeout => "header_timeout",
            ClientFailure::Disconnected => "disconnected",
            ClientFailure::BodyTimeout => "body_timeout",
            ClientFailure::BadBody => "bad_body",
            ClientFailure::BadHost => "bad_host",
            ClientFailure::ConnectMethod => "connect_method",
            ClientFailure::H2Protocol => "h2_protocol",
        }
    }

    fn slot(self) -> usize {
        match self {
            ClientFailure::BadRequest => 0,
            ClientFailure::HeadersTooLarge => 1,
            ClientFailure::HeaderTimeout => 2,
            ClientFailure::Disconnected => 3,
            ClientFailure::BodyTimeout => 4,
            ClientFailure::BadBody => 5,
            ClientFailure::BadHost => 6,
            ClientFailure::ConnectMethod => 7,
            ClientFailure::H2Protocol => 8,
        }
    }
}

/// Failures of the proxy itself, kept apart from both upstreams and clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InternalFailure {
    /// The chosen pool (and, by policy, its fallback) had no healthy member: 503.
    NoHealthyUpstream,
    /// The proxy could not build the upstream request (a bug or an impossible URI): 500.
    RequestBuild,
    /// A connection failed for a reason that is neither the client's nor an upstream's.
    Connection,
}

impl InternalFailure {
    /// Every variant, in the order of the counter array.
    pub const ALL: [InternalFailure; 3] = [
        InternalFailure::NoHealthyUpstream,
        InternalFailure::RequestBuild,
        InternalFailure::Connection,
    ];

    /// The label value in metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            InternalFailure::NoHealthyUpstream => "no_healthy_upstream",
            InternalFailure::RequestBuild => "request_build",
            InternalFailure::Connection => "connection",
        }
    }

    fn slot(self) -> usize {
        match self {
            InternalFailure::NoHealthyUpstream => 0,
            InternalFailure::RequestBuild => 1,
            InternalFailure::Connection => 2,
        }
    }
}

/// Counters of one cohort.
pub struct CohortMetrics {
    /// Requests of this cohort (after fallback) that ended, counted when they end, with
    /// their latency: a request charged to the client (a stalled, malformed or abandoned
    /// upload) never is.
    requests: AtomicU64,
    /// Responses sent for this cohort by status class 1xx..5xx (index 0..4), including the
    /// proxy's own 502/504 and injected aborts: what the client saw, counted when the
    /// request ends, after it (see [`Metrics::request_finished`]).
    responses: [AtomicU64; 5],
    /// Requests the gates must count as failed: a 5xx response, or a response whose body
    /// the upstream cut short after its head; each request at most once, when it ends,
    /// after it.
    errors: AtomicU64,
    /// Upstream failures by reason, indexed by `UpstreamFailure::slot`.
    upstream_errors: [AtomicU64; 5],
    /// Requests delayed by an injected fault.
    faults_delayed: AtomicU64,
    /// Requests aborted by an injected fault.
    faults_aborted: AtomicU64,
    /// Requests of this cohort not yet finished (response body not fully sent).
    in_flight: AtomicI64,
    /// Time from the request's arrival to the end of its response, in microseconds.
    latency: Histogram,
}

impl CohortMetrics {
    /// The cohort's `errors` and responses by class, read with `Acquire` before anything
    /// else of the cohort is read (see [`Metrics::request_finished`]).
    fn ended_first(&self) -> (u64, ResponseClasses) {
        let errors = self.errors.load(Ordering::Acquire);
        let responses = ResponseClasses {
            c1xx: self.responses[0].load(Ordering::Acquire),
            c2xx: self.responses[1].load(Ordering::Acquire),
            c3xx: self.responses[2].load(Ordering::Acquire),
            c4xx: self.responses[3].load(Ordering::Acquire),
            c5xx: self.responses[4].load(Ordering::Acquire),
        };
        (errors, responses)
    }

    fn new() -> Self {
        Self {
            requests: AtomicU64::new(0),
            responses: Default::default(),
            errors: AtomicU64::new(0),
            upstream_errors: Default::default(),
            faults_delayed: AtomicU64::new(0),
            faults_aborted: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            latency: Histogram::new(),
        }
    }
}

/// All counters of one proxy process.
pub struct Metrics {
    /// Counters of the stable cohort.
    stable: CohortMetrics,
    /// Counters of the canary cohort.
    canary: CohortMetrics,
    /// Client-caused failures by reason.
    client_errors: [AtomicU64; 9],
    /// Proxy-caused failures by reason.
    internal_errors: [AtomicU64; 3],
    /// Sticky-mode requests that had no key and were split at random; in flag mode,
    /// requests without the user's key (in the cohort the flag serves keyless users).
    sticky_key_missing: AtomicU64,
    /// Requests sent to the other cohort because their pool was unhealthy.
    rerouted_unhealthy: AtomicU64,
    /// Client connections accepted since start.
    connections_accepted: AtomicU64,
    /// Client connections open now.
    connections_open: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates zeroed counters.
    pub fn new() -> Self {
        Self {
            stable: CohortMetrics::new(),
            canary: CohortMetrics::new(),
            client_errors: Default::default(),
            internal_errors: Default::default(),
            sticky_key_missing: AtomicU64::new(0),
            rerouted_unhealthy: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_open: AtomicI64::new(0),
        }
    }

    fn cohort(&self, cohort: Cohort) -> &CohortMetrics {
        match cohort {
            Cohort::Stable => &self.stable,
            Cohort::Canary => &self.canary,
        }
    }

    /// Marks a request routed to `cohort` in flight; it is counted when it ends.
    pub fn request_started(&self, cohort: Cohort) {
        self.cohort(cohort)
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Records the end of a request of `cohort`: it counts, with its latency, then the
    /// status class of its response (`None`: the client left before any answer) and, if
    /// `error`, as one of the cohort's errors (the caller counts each request at most once,
    /// see `RequestGuard`); and it left flight.
    ///
    /// The class and the error are counted after the request and its latency, with
    /// `Release`, and [`Metrics::snapshot`] reads them first, with `Acquire`: a snapshot
    /// that sees an error (or a response) also sees the request and the latency recorded
    /// before it, so that `errors` never exceeds the latency count it is compared with (a
    /// controller clamps a slot's errors to its requests, and would lose the excess).
    pub fn request_finished(
        &self,
        cohort: Cohort,
        latency_us: u64,
        status: Option<u16>,
        error: bool,
    ) {
        let c = self.cohort(cohort);
        c.requests.fetch_add(1, Ordering::Relaxed);
        c.latency.record_us(latency_us);
        if let Some(status) = status {
            let class = (status / 100).clamp(1, 5) as usize - 1;
            c.responses[class].fetch_add(1, Ordering::Release);
        }
        if error {
            c.errors.fetch_add(1, Ordering::Release);
        }
        c.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Takes a request of `cohort` out of flight without recording it: the client is to
    /// blame for how it ended, so it is not the cohort's evidence.
    pub fn request_dropped(&self, cohort: Cohort) {
        self.cohort(cohort)
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts an upstream failure of `cohort`.
    pub fn upstream_error(&self, cohort: Cohort, reason: UpstreamFailure) {
        self.cohort(cohort).upstream_errors[reason.slot()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a client-caused failure.
    pub fn client_error(&self, reason: ClientFailure) {
        self.client_errors[reason.slot()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a proxy-caused failure.
    pub fn internal_error(&self, reason: InternalFailure) {
        self.internal_errors[reason.slot()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request hit by an injected delay.
    pub fn fault_delayed(&self, cohort: Cohort) {
        self.cohort(cohort)
            .faults_delayed
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request hit by an injected abort.
    pub fn fault_aborted(&self, cohort: Cohort) {
        self.cohort(cohort)
            .faults_aborted
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a sticky request without a key.
    pub fn sticky_key_missing(&self) {
        self.sticky_key_missing.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request rerouted away from an unhealthy pool.
    pub fn rerouted_unhealthy(&self) {
        self.rerouted_unhealthy.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an accepted connection (and one more open).
    pub fn connection_opened(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a closed connection.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Copies every counter into a serialisable snapshot. Each cohort's `errors` and
    /// `responses` are read first, with `Acquire` (see [`Metrics::request_finished`]), so
    /// that the snapshot's `requests` and latency count include every request behind them.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let cohort = |c: &CohortMetrics| {
            let (errors, responses) = c.ended_first();
            CohortSnapshot {
                errors,
                responses,
                requests: c.requests.load(Ordering::Relaxed),
                upstream_errors: UpstreamFailure::ALL
                    .iter()
                    .map(|r| {
                        (
                            r.as_str().to_string(),
                            c.upstream_errors[r.slot()].load(Ordering::Relaxed),
                        )
                    })
                    .collect(),
                faults_delayed: c.faults_delayed.load(Ordering::Relaxed),
                faults_aborted: c.faults_aborted.load(Ordering::Relaxed),
                in_flight: c.in_flight.load(Ordering::Relaxed),
                latency: c.latency.snapshot(),
            }
        };
        MetricsSnapshot {
            stable: cohort(&self.stable),
            canary: cohort(&self.canary),
            client_errors: ClientFailure::ALL
                .iter()
                .map(|r| {
                    (
                        r.as_str().to_string(),
                        self.client_errors[r.slot()].load(Ordering::Relaxed),
                    )
                })
                .collect(),
            internal_errors: InternalFailure::ALL
                .iter()
                .map(|r| {
                    (
                        r.as_str().to_string(),
                        self.internal_errors[r.slot()].load(Ordering::Relaxed),
                    )
                })
                .collect(),
            sticky_key_missing: self.sticky_key_missing.load(Ordering::Relaxed),
            rerouted_unhealthy: self.rerouted_unhealthy.load(Ordering::Relaxed),
            connections_accepted: self.connections_accepted.load(Ordering::Relaxed),
            connections_open: self.connections_open.load(Ordering::Relaxed),
        }
    }

    /// Renders the Prometheus text exposition format (version 0.0.4).
    pub fn render_prometheus(&self, extra: &str) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let cohorts = [
            (Cohort::Stable, &self.stable),
            (Cohort::Canary, &self.canary),
        ];
        // Read before the requests and the latency, as in `snapshot`.
        let ended = [self.stable.ended_first(), self.canary.ended_first()];

        out.push_str("# HELP ramp_proxy_requests_total Requests of each cohort that ended (requests charged to the client are not counted).\n# TYPE ramp_proxy_requests_total counter\n");
        for (name, c) in &cohorts {
            let _ = writeln!(
                out,
                "ramp_proxy_requests_total{{cohort=\"{}\"}} {}",
                name.as_str(),
                c.requests.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP ramp_proxy_responses_total Responses sent to clients by cohort and status class.\n# TYPE ramp_proxy_responses_total counter\n");
        for ((name, _), (_, r)) in cohorts.iter().zip(&ended) {
            for (class, n) in [
                ("1xx", r.c1xx),
                ("2xx", r.c2xx),
                ("3xx", r.c3xx),
                ("4xx", r.c4xx),
                ("5xx", r.c5xx),
            ] {
                let _ = writeln!(
                    out,
                    "ramp_proxy_responses_total{{cohort=\"{}\",code_class=\"{}\"}} {}",
                    name.as_str(),
                    class,
                    n
                );
            }
        }
        out.push_str("# HELP ramp_proxy_cohort_errors_total Requests of each cohort counted as failed by the gates: a 5xx response, or a body cut short by the upstream after its head (each request at most once).\n# TYPE ramp_proxy_cohort_errors_total counter\n");
        for ((name, _), (errors, _)) in cohorts.iter().zip(&ended) {
            let _ = writeln!(
                out,
                "ramp_proxy_cohort_errors_total{{cohort=\"{}\"}} {}",
                name.as_str(),
                errors
            );
        }
        out.push_str("# HELP ramp_proxy_errors_total Errors by source (upstream, client, internal), cohort and reason.\n# TYPE ramp_proxy_errors_total counter\n");
        for (name, c) in &cohorts {
            for r in UpstreamFailure::ALL {
                let _ = writeln!(
                    out,
                    "ramp_proxy_errors_total{{source=\"upstream\",cohort=\"{}\",reason=\"{}\"}} {}",
                    name.as_str(),
                    r.as_str(),
                    c.upstream_errors[r.slot()].load(Ordering::Relaxed)
                );
            }
        }
        for r in ClientFailure::ALL {
            let _ = writeln!(
                out,
                "ramp_proxy_errors_total{{source=\"client\",reason=\"{}\"}} {}",
                r.as_str(),
                self.client_errors[r.slot()].load(Ordering::Relaxed)
            );
        }
        for r in InternalFailure::ALL {
            let _ = writeln!(
                out,
                "ramp_proxy_errors_total{{source=\"internal\",reason=\"{}\"}} {}",
                r.as_str(),
                self.internal_errors[r.slot()].load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP ramp_proxy_faults_injected_total Requests hit by an injected fault.\n# TYPE ramp_proxy_faults_injected_total counter\n");
        for (name, c) in &cohorts {
            let _ = writeln!(
                out,
                "ramp_proxy_faults_injected_total{{cohort=\"{}\",kind=\"delay\"}} {}",
                name.as_str(),
                c.faults_delayed.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                out,
                "ramp_proxy_faults_injected_total{{cohort=\"{}\",kind=\"abort\"}} {}",
                name.as_str(),
                c.faults_aborted.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP ramp_proxy_in_flight Requests in progress.\n# TYPE ramp_proxy_in_flight gauge\n");
        for (name, c) in &cohorts {
            let _ = writeln!(
                out,
                "ramp_proxy_in_flight{{cohort=\"{}\"}} {}",
                name.as_str(),
                c.in_flight.load(Ordering::Relaxed)
            );
        }
        exposition::write_header(
            &mut out,
            "ramp_proxy_request_duration_seconds",
            exposition::Kind::Histogram,
            "Time from request arrival to the end of the response. Bucket bounds are every seventh edge of the 0.5 % sketch from 1 ms to 60 s, so counts are exact and histogram_quantile is within about 1 % (docs/prometheus.md).",
        );
        for (name, c) in &cohorts {
            exposition::write_histogram(
                &mut out,
                "ramp_proxy_request_duration_seconds",
                &format!("cohort=\"{}\"", name.as_str()),
                &c.latency,
            );
        }
        out.push_str("# HELP ramp_proxy_sticky_key_missing_total Sticky-mode requests without a key, split at random (flag mode: stable below 100%).\n# TYPE ramp_proxy_sticky_key_missing_total counter\n");
        let _ = writeln!(
            out,
            "ramp_proxy_sticky_key_missing_total {}",
            self.sticky_key_missing.load(Ordering::Relaxed)
        );
        out.push_str("# HELP ramp_proxy_rerouted_unhealthy_total Requests sent to the other cohort because their pool was unhealthy.\n# TYPE ramp_proxy_rerouted_unhealthy_total counter\n");
        let _ = writeln!(
            out,
            "ramp_proxy_rerouted_unhealthy_total {}",
            self.rerouted_unhealthy.load(Ordering::Relaxed)
        );
        out.push_str("# HELP ramp_proxy_connections_accepted_total Client connections accepted.\n# TYPE ramp_proxy_connections_accepted_total counter\n");
        let _ = writeln!(
            out,
            "ramp_proxy_connections_accepted_total {}",
            self.connections_accepted.load(Ordering::Relaxed)
        );
        out.push_str("# HELP ramp_proxy_connections_open Client connections open.\n# TYPE ramp_proxy_connections_open gauge\n");
        let _ = writeln!(
            out,
            "ramp_proxy_connections_open {}",
            self.connections_open.load(Ordering::Relaxed)
        );
        out.push_str(extra);
        out
    }
}

/// Responses by status class, as served in `/snapshot`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ResponseClasses {
    /// Informational responses (including 101 for upgrades).
    #[serde(rename = "1xx")]
    pub c1xx: u64,
    /// Successful responses.
    #[serde(rename = "2xx")]
    pub c2xx: u64,
    /// Redirections.
    #[serde(rename = "3xx")]
    pub c3xx: u64,
    /// Client errors answered by the upstream.
    #[serde(rename = "4xx")]
    pub c4xx: u64,
    /// Server errors: the upstream's, the proxy's 502/503/504, and injected aborts.
    #[serde(rename = "5xx")]
    pub c5xx: u64,
}

/// One cohort in `/snapshot`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct CohortSnapshot {
    /// Requests of the cohort that ended, each with its latency in `latency`; requests
    /// charged to the client are not counted.
    pub requests: u64,
    /// Responses by status class.
    pub responses: ResponseClasses,
    /// Requests counted as failed for the gates: 5xx responses plus responses cut short by
    /// the upstream after their head, each request at most once; cumulative.
    pub errors: u64,
    /// Upstream failures by reason name.
    pub upstream_errors: std::collections::BTreeMap<String, u64>,
    /// Requests delayed by a fault.
    pub faults_delayed: u64,
    /// Requests aborted by a fault.
    pub faults_aborted: u64,
    /// Requests in progress at the time of the snapshot.
    pub in_flight: i64,
    /// The raw latency sketch, mergeable bucket by bucket.
    pub latency: HistogramSnapshot,
}

/// The whole `/snapshot` document.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct MetricsSnapshot {
    /// The stable cohort.
    pub stable: CohortSnapshot,
    /// The canary cohort.
    pub canary: CohortSnapshot,
    /// Client-caused failures by reason name.
    pub client_errors: std::collections::BTreeMap<String, u64>,
    /// Proxy-caused failures by reason name.
    pub internal_errors: std::collections::BTreeMap<String, u64>,
    /// Sticky (or flag-mode) requests without a key.
    pub sticky_key_missing: u64,
    /// Requests rerouted from an unhealthy pool.
    pub rerouted_unhealthy: u64,
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_open: i64,
}
