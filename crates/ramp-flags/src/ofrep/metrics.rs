//! The OFREP server's `GET /metrics`: requests by endpoint and status, their durations,
//! evaluations by flag, variant and reason, errors by OFREP error code, and what `/stats`
//! reports (distinct users per flag and side, the rollout weight, the configuration
//! version), in the Prometheus text format.
//!
//! Every label is bounded: endpoints, status codes, reasons and error codes are closed sets;
//! flags and variants are those of the served configuration (an evaluation is counted only
//! once it resolved a configured flag), capped at [`MAX_SERIES`] series in any case. A
//! targeting key is never a label.

use super::Stats;
use crate::exposition::{Counter, Exposition, Histogram, Kind, DURATION_BOUNDS};
use crate::flags::{FlagState, Resolution};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The most (flag, variant, reason) series kept: a configuration has a few dozen; the cap
/// only bounds memory should one ever have many.
pub const MAX_SERIES: usize = 10_000;

/// One evaluation series: flag, variant (empty when disabled) and reason.
type Series = (Box<str>, Box<str>, &'static str);

/// The endpoints, as the `endpoint` label names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// `POST /ofrep/v1/evaluate/flags/{key}`.
    Single,
    /// `POST /ofrep/v1/evaluate/flags`.
    Bulk,
    /// `GET /stats`.
    Stats,
    /// `GET /metrics`.
    Metrics,
    /// `GET /healthz`.
    Health,
    /// Any other path.
    Unknown,
}

impl Endpoint {
    /// Every endpoint, in the order they are rendered.
    const ALL: [Endpoint; 6] = [
        Endpoint::Single,
        Endpoint::Bulk,
        Endpoint::Stats,
        Endpoint::Metrics,
        Endpoint::Health,
        Endpoint::Unknown,
    ];

    /// The label value.
    fn key(self) -> &'static str {
        match self {
            Endpoint::Single => "single",
            Endpoint::Bulk => "bulk",
            Endpoint::Stats => "stats",
            Endpoint::Metrics => "metrics",
            Endpoint::Health => "healthz",
            Endpoint::Unknown => "unknown",
        }
    }
}

/// The status codes the server answers with, as the `code` label names them; anything else
/// (none today) is `other`.
const CODES: [u16; 9] = [200, 304, 400, 401, 404, 405, 429, 500, 503];

/// The OFREP error codes counted, one series each.
const ERROR_CODES: [&str; 3] = ["FLAG_NOT_FOUND", "TARGETING_KEY_MISSING", "INVALID_CONTEXT"];

/// What the server counts; shared by every connection.
#[derive(Debug)]
pub(super) struct ServerMetrics {
    /// Requests per endpoint and status code (the last column: other codes).
    requests: [[Counter; CODES.len() + 1]; Endpoint::ALL.len()],
    /// Request durations per endpoint.
    durations: [Histogram; Endpoint::ALL.len()],
    /// Evaluations served per (flag, variant, reason).
    evaluations: Mutex<BTreeMap<Series, u64>>,
    /// Evaluations not labelled because [`MAX_SERIES`] series exist.
    overflow: Counter,
    /// Error answers per OFREP error code.
    errors: [Counter; ERROR_CODES.len()],
}

impl ServerMetrics {
    /// Nothing counted yet.
    pub(super) fn new() -> Self {
        Self {
            requests: Default::default(),
            durations: std::array::from_fn(|_| Histogram::new(DURATION_BOUNDS)),
            evaluations: Mutex::new(BTreeMap::new()),
            overflow: Counter::default(),
            errors: Default::default(),
        }
    }

    /// Counts one answered request.
    pub(super) fn request(&self, endpoint: Endpoint, status: u16, took: Duration) {
        let e = Endpoint::ALL
            .iter()
            .position(|&x| x == endpoint)
            .unwrap_or(0);
        let c = CODES
            .iter()
            .position(|&x| x == status)
            .unwrap_or(CODES.len());
        self.requests[e][c].inc();
        self.durations[e].observe(took);
    }

    /// Counts an error answer by its OFREP code.
    pub(super) fn error(&self, code: &str) {
        if let Some(i) = ERROR_CODES.iter().position(|&x| x == code) {
            self.errors[i].inc();
        }
    }

    /// Counts evaluations served, under one lock for a whole bulk answer.
    pub(super) fn evaluated<'a>(&self, served: impl IntoIterator<Item = Resolution<'a>>) {
        let Ok(mut map) = self.evaluations.lock() else {
            return;
        };
        for r in served {
            let variant = r.variant.map_or("", |v| v.name());
            let key = (r.flag.key().into(), variant.into(), r.reason.as_str());
            if let Some(n) = map.get_mut(&key) {
                *n += 1;
            } else if map.len() < MAX_SERIES {
                map.insert(key, 1);
            } else {
                self.overflow.inc();
            }
        }
    }

    /// The page `GET /metrics` answers with.
    pub(super) fn render(&self, state: &FlagState, stats: Option<&Stats>) -> String {
        let mut e = Exposition::new();
        e.family(
            "ramp_flags_requests_total",
            Kind::Counter,
            "HTTP requests answered, by endpoint and status code.",
        );
        for (i, ep) in Endpoint::ALL.iter().enumerate() {
            for (j, c) in self.requests[i].iter().enumerate() {
                let code = CODES.get(j).map_or("other".to_string(), u16::to_string);
                let labels = [("endpoint", ep.key()), ("code", code.as_str())];
                e.sample("ramp_flags_requests_total", &labels, c.get() as f64);
            }
        }
        e.family(
            "ramp_flags_request_duration_seconds",
            Kind::Histogram,
            "Time from a request's head to its answer, by endpoint.",
        );
        for (i, ep) in Endpoint::ALL.iter().enumerate() {
            let labels = [("endpoint", ep.key())];
            e.histogram(
                "ramp_flags_request_duration_seconds",
                &labels,
                &self.durations[i].snapshot(),
            );
        }
        e.family(
            "ramp_flags_rate_limited_total",
            Kind::Counter,
            "Requests refused with 429 by the rate limit.",
        );
        let i429 = CODES.iter().position(|&c| c == 429).unwrap_or(CODES.len());
        let limited: u64 = self.requests.iter().map(|r| r[i429].get()).sum();
        e.sample("ramp_flags_rate_limited_total", &[], limited as f64);
        e.family(
            "ramp_flags_evaluation_errors_total",
            Kind::Counter,
            "Evaluation requests answered with an OFREP error, by error code.",
        );
        for (i, code) in ERROR_CODES.iter().enumerate() {
            let v = self.errors[i].get() as f64;
            e.sample("ramp_flags_evaluation_errors_total", &[("code", code)], v);
        }
        self.render_evaluations(&mut e);
        render_state(&mut e, state, stats);
        e.finish()
    }

    /// The evaluation counters.
    fn render_evaluations(&self, e: &mut Exposition) {
        e.family(
            "ramp_flags_evaluations_total",
            Kind::Counter,
            "Flag values served, by flag, variant (empty when disabled) and OpenFeature reason.",
        );
        if let Ok(map) = self.evaluations.lock() {
            for ((flag, variant, reason), n) in map.iter() {
                let labels = [
                    ("flag", &**flag),
                    ("variant", &**variant),
                    ("reason", reason),
                ];
                e.sample("ramp_flags_evaluations_total", &labels, *n as f64);
            }
        }
        e.single(
            "ramp_flags_evaluations_unlabelled_total",
            Kind::Counter,
            "Flag values served but not labelled, because the series cap was reached.",
            self.overflow.get() as f64,
        );
    }
}

/// What `/stats` says, as gauges: the configuration, the rollout weight and distinct users.
fn render_state(e: &mut Exposition, state: &FlagState, stats: Option<&Stats>) {
    let snapshot = state.snapshot();
    e.single(
        "ramp_flags_config_version",
        Kind::Gauge,
        "The served configuration's version, as bulk evaluations' metadata carries it.",
        snapshot.version() as f64,
    );
    e.single(
        "ramp_flags_flags",
        Kind::Gauge,
        "Flags served.",
        snapshot.flags().flags().len() as f64,
    );
    if let Some(bp) = snapshot.rollout_weight_bp() {
        e.single(
            "ramp_flags_rollout_weight_ratio",
            Kind::Gauge,
            "The live rollout's weight the flags follow, 0 to 1.",
            f64::from(bp) / 10_000.0,
        );
    }
    let Some(stats) = stats else { return };
    let report = stats.report(state);
    e.single(
        "ramp_flags_stats_window_seconds",
        Kind::Gauge,
        "The window distinct users are counted over.",
        stats.flag_stats().config().window().as_secs_f64(),
    );
    e.family(
        "ramp_flags_flag_weight_ratio",
        Kind::Gauge,
        "Share of users inside each flag's rollout now, 0 to 1 (flags with a rollout).",
    );
    for u in &report {
        if let Some(bp) = u.weight_bp {
            let v = f64::from(bp) / 10_000.0;
            e.sample("ramp_flags_flag_weight_ratio", &[("flag", &u.key)], v);
        }
    }
    e.family(
        "ramp_flags_users",
        Kind::Gauge,
        "Distinct targeting keys served each flag's rollout variant (on) or another (off) over the window; estimates beyond the exact cap.",
    );
    for u in &report {
        let (on, off) = (u.on_users as f64, u.off_users as f64);
        e.sample("ramp_flags_users", &[("flag", &u.key), ("side", "on")], on);
        e.sample(
            "ramp_flags_users",
            &[("flag", &u.key), ("side", "off")],
            off,
        );
    }
}
