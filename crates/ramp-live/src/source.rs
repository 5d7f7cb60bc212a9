//! The router and metric source of a live run: a `ramp proxy` reached through its admin API.
//!
//! Metrics come from `GET /snapshot`: cumulative counters and raw latency buckets per cohort.
//! The proxy's buckets use the same mapping as `ramp_stats::Histogram` (α = 0.5 %, bucket 0
//! at 1 µs), so the difference of two snapshots merges into the engine's slot index for
//! index, exactly: no re-bucketing, no sampling.

use crate::http::{ApiClient, HttpError};
use crate::seams::FenceToken;
use http::{Method, StatusCode};
use ramp_core::Weight;
use ramp_stats::{CohortStats, Histogram, Slot};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

/// Why the metrics source (the proxy, or Prometheus) could not be used.
#[derive(Debug, Error)]
pub enum SourceError {
    /// The call did not complete.
    #[error("proxy admin API: {0}")]
    Http(#[from] HttpError),
    /// The proxy answered with an error status.
    #[error("proxy admin API {what}: HTTP {status}: {body}")]
    Status {
        /// The call.
        what: &'static str,
        /// The status received.
        status: StatusCode,
        /// The start of the body, for the operator.
        body: String,
    },
    /// A Prometheus source could not be read (the message names the query).
    #[error(transparent)]
    Prometheus(#[from] crate::prometheus::PromError),
    /// A router other than Ramp's proxy failed or answered something unexpected (HAProxy's
    /// runtime API, a command router's programs): `router` names it, `message` says what
    /// happened in its own words where it gave any.
    #[error("{router}: {message}")]
    Router {
        /// The router, as its `location` names it.
        router: String,
        /// What went wrong.
        message: String,
    },
    /// One or more members of a fleet of proxies failed (the message names each member and
    /// why), so the fleet as a whole could not be read or set.
    #[error("{0}")]
    Fleet(String),
    /// nginx could not be driven (the message says which step and what nginx said).
    #[error(transparent)]
    Nginx(#[from] crate::routers::NginxError),
    /// The router cannot do this at all (nginx injects no faults).
    #[error("{0}")]
    Unsupported(String),
    /// The router refused a weight change because it has seen a newer leader's fencing token
    /// (the proxy's 409): this controller has lost its leadership and must stop acting. Never
    /// a transient failure: retrying cannot succeed, and must not.
    #[error("{router} refused the weight change, a newer leader has set it: {reason}")]
    Superseded {
        /// The router (or fleet member) that refused, as its location names it.
        router: String,
        /// The router's one-line reason (naming both tokens, for Ramp's proxy).
        reason: String,
    },
    /// The answer was not the expected document.
    #[error("proxy admin API {what}: unexpected document: {message}")]
    Document {
        /// The call.
        what: &'static str,
        /// The parser's description.
        message: String,
    },
}

impl SourceError {
    /// Whether this is a refusal by fencing ([`SourceError::Superseded`]): the controller is
    /// no longer the leader, and the driver stops rather than retries.
    pub fn is_superseded(&self) -> bool {
        matches!(self, SourceError::Superseded { .. })
    }
}

/// One cohort's cumulative counters, as far as the engine needs them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CohortCounters {
    /// Completed requests whose latency was recorded (the histogram's count).
    pub completed: u64,
    /// Requests that count as errors for the gates: the proxy's per-cohort `errors` (5xx
    /// responses, the upstream's or the proxy's 502/504 on upstream failure and injected
    /// aborts, plus bodies an upstream cut short after the head), or its 5xx count when it is
    /// older than that counter. Client faults (stalled or malformed request bodies,
    /// disconnects) and proxy-internal failures never reach a cohort. Journals written before
    /// the rename call it `errors_5xx`.
    #[serde(alias = "errors_5xx")]
    pub errors: u64,
    /// Raw latency buckets `(index, count)`, ascending, cumulative.
    pub buckets: Vec<(u32, u64)>,
    /// Requests in progress at the reading (a gauge, not cumulative): a rehearsal waits for
    /// the canary's to drain after the rollback.
    #[serde(default)]
    pub in_flight: i64,
    /// The bucket bounds (µs, ascending, `+Inf` left out) when `buckets` came from a coarse
    /// histogram (Prometheus' `le`): each bucket's count sits at the index of its lower bound,
    /// and the slot carries the bounds so gates judge quantiles between them. `None` for the
    /// proxy's exact buckets (and absent from journals that have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coarse_bounds_us: Option<Vec<u64>>,
}

/// Both cohorts' cumulative counters at one moment: the journaled cursor of a live run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// The source's boot epoch (the proxy's `instance.boot_id`), new at every start of the
    /// process that counts: two readings of different epochs are not one stream of counts,
    /// whatever their values. `None` for a source that does not say (and in journals written
    /// before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// The stable cohort.
    pub stable: CohortCounters,
    /// The canary cohort.
    pub canary: CohortCounters,
}

impl Counters {
    /// Whether any counter went down since `earlier`: the proxy restarted and its counters
    /// began again from zero.
    pub fn restarted_since(&self, earlier: &Counters) -> bool {
        self.gap_since(earlier).is_some()
    }

    /// Why `earlier` and `self` are not one stream of counts, if they are not: the source's
    /// epoch changed (it restarted) or a counter went down (it restarted without saying).
    /// The time between the two readings is then unobserved: whatever was counted before the
    /// restart and not read is lost, so their difference is never a slot. (Prometheus'
    /// `rate()` instead counts a reset counter's new value as the interval's increase; Ramp
    /// knows it missed part of the interval, and says so.)
    pub fn gap_since(&self, earlier: &Counters) -> Option<&'static str> {
        match (&earlier.epoch, &self.epoch) {
            (Some(then), Some(now)) if then != now && now.starts_with(PROMETHEUS_EPOCH) => {
                return Some("a Prometheus series was reset or the set of series changed (a pod restarted, came or went, or the bucket layout changed)");
            }
            (Some(then), Some(now)) if then != now => {
                return Some("the proxy restarted: its counters began again");
            }
            // A proxy that did not name its epoch and now does (or the reverse) is another
            // build of it: it was restarted to be replaced.
            (Some(_), None) | (None, Some(_)) => {
                return Some("the proxy was replaced by another version: its counters began again");
            }
            (Some(_), Some(_)) | (None, None) => {}
        }
        let lower = |now: &CohortCounters, then: &CohortCounters| {
            now.completed < then.completed
                || now.errors < then.errors
                || now.buckets.iter().map(|b| b.1).sum::<u64>()
                    < then.buckets.iter().map(|b| b.1).sum::<u64>()
        };
        (lower(&self.stable, &earlier.stable) || lower(&self.canary, &earlier.canary))
            .then_some("the proxy's counters went down: it restarted")
    }

    /// The slot `[start_ms, end_ms)` of what happened between `earlier` and `self`. After a
    /// proxy restart everything counted since the restart is the delta (what a rehearsal's
    /// timing wants; the rollout's feed asks [`Counters::gap_since`] first and never makes a
    /// slot across a restart).
    pub fn slot_since(&self, earlier: &Counters, start_ms: u64, end_ms: u64) -> Slot {
        let base = if self.restarted_since(earlier) {
            Counters::default()
        } else {
            earlier.clone()
        };
        Slot {
            start_ms,
            end_ms,
            canary: delta(&self.canary, &base.canary),
            stable: delta(&self.stable, &base.stable),
        }
    }
}

/// The prefix of the epochs of a Prometheus source (`crate::prometheus::series`).
const PROMETHEUS_EPOCH: &str = "prometheus:";

/// `now − then` of one cohort as engine statistics. Requests are the latency histogram's
/// count when there is one (the proxy's, and a Prometheus source's buckets), else the
/// difference of `completed` (a Prometheus source without a latency histogram).
fn delta(now: &CohortCounters, then: &CohortCounters) -> CohortStats {
    let mut latency = Histogram::new();
    let mut j = 0;
    for &(index, count) in &now.buckets {
        while j < then.buckets.len() && then.buckets[j].0 < index {
            j += 1;
        }
        let before = match then.buckets.get(j) {
            Some(&(i, c)) if i == index => c,
            _ => 0,
        };
        let d = count.saturating_sub(before);
        if d > 0 {
            latency.record_n(index as usize, d);
        }
    }
    let requests = if now.buckets.is_empty() {
        // The proxy's buckets are empty only when it has completed nothing, so this is its
        // histogram's count too.
        now.completed.saturating_sub(then.completed)
    } else {
        latency.count()
    };
    let errors = now.errors.saturating_sub(then.errors).min(requests);
    let mut stats = CohortStats::new();
    stats.requests = requests;
    stats.errors = errors;
    stats.latency = latency;
    stats.coarse_bounds_us = now.coarse_bounds_us.clone();
    stats
}

/// The parts of the proxy's `/snapshot` document used here (others are ignored).
#[derive(Debug, Deserialize)]
struct SnapshotDoc {
    /// The deployment the proxy serves, so that a controller never drives another's proxy.
    #[serde(default)]
    deployment_id: Option<String>,
    /// Which process counted: its boot epoch changes at every start.
    #[serde(default)]
    instance: Option<InstanceDoc>,
    /// The split in force.
    weights: WeightsDoc,
    /// Counters and sketches.
    metrics: MetricsDoc,
}

/// `instance` of `/snapshot`.
#[derive(Debug, Deserialize)]
struct InstanceDoc {
    /// Random, new at every start of the proxy process.
    boot_id: String,
}

/// `weights` of `/snapshot` and `GET /weights`.
#[derive(Debug, Deserialize)]
struct WeightsDoc {
    /// Canary share in basis points.
    canary_bp: u32,
    /// The token of the run that set them, if a run did.
    #[serde(default)]
    set_by: Option<String>,
}

/// `metrics` of `/snapshot`.
#[derive(Debug, Deserialize)]
struct MetricsDoc {
    /// The stable cohort.
    stable: CohortDoc,
    /// The canary cohort.
    canary: CohortDoc,
}

/// One cohort of `/snapshot`.
#[derive(Debug, Deserialize)]
struct CohortDoc {
    /// Responses by status class.
    responses: ClassesDoc,
    /// Requests that count as errors for the gates (absent from older proxies).
    #[serde(default)]
    errors: Option<u64>,
    /// Requests in progress.
    in_flight: i64,
    /// The raw sketch.
    latency: LatencyDoc,
}

/// Status classes of `/snapshot`.
#[derive(Debug, Deserialize)]
struct ClassesDoc {
    /// 5xx responses.
    #[serde(rename = "5xx")]
    c5xx: u64,
}

/// A raw sketch of `/snapshot`.
#[derive(Debug, Deserialize)]
struct LatencyDoc {
    /// The relative accuracy the buckets were built for: must be the engine's.
    alpha: f64,
    /// Unit of the values; must be microseconds for the index mapping to line up.
    unit: String,
    /// Non-empty buckets.
    buckets: Vec<(u32, u64)>,
}

/// What a snapshot says.
#[derive(Debug, Clone)]
pub struct ProxyReading {
    /// The deployment the proxy says it serves (its configured `deployment_id`).
    pub deployment_id: Option<String>,
    /// The token of the run that last set the proxy's weights, if a run did.
    pub set_by: Option<String>,
    /// The canary weight the proxy applies now.
    pub canary_bp: u32,
    /// Its cumulative counters.
    pub counters: Counters,
}

/// A fault to inject through the proxy (`POST /faults`), for rehearsals.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRequest {
    /// "canary" or "stable".
    pub cohort: String,
    /// Share of that cohort's requests hit.
    pub fraction: f64,
    /// Added latency in milliseconds, for a delay fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_latency_ms: Option<u64>,
    /// Status answered instead of forwarding, for an abort fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_status: Option<u16>,
    /// How long it lasts, seconds.
    pub duration_s: f64,
}

/// The admin API of one `ramp proxy`.
#[derive(Debug, Clone)]
pub struct ProxyAdmin {
    /// The HTTP client bound to the admin base URL.
    api: ApiClient,
    /// The run's fencing token, sent with every weight change once the controller leads, so
    /// that the proxy refuses this controller once a newer leader has set a weight.
    fence: FenceToken,
}

impl ProxyAdmin {
    /// A client for the admin API at `url` (`http://host:port`).
    pub fn new(url: &str, token: Option<String>) -> Result<ProxyAdmin, SourceError> {
        Ok(ProxyAdmin {
            api: ApiClient::new(url, token, Duration::from_secs(3))?,
            fence: FenceToken::none(),
        })
    }

    /// The same client sending `fence` with its weight changes whenever the token is set
    /// (the driver sets it when its controller leads; unset, nothing is sent, as before
    /// fencing). Clones share the token.
    pub fn with_fence(mut self, fence: FenceToken) -> ProxyAdmin {
        self.fence = fence;
        self
    }

    /// The admin base URL.
    pub fn url(&self) -> &str {
        self.api.base()
    }

    /// Reads the proxy's cumulative counters and current weight.
    pub async fn read(&self) -> Result<ProxyReading, SourceError> {
        let (status, body) = self.api.call(Method::GET, "/snapshot", None).await?;
        check("GET /snapshot", status, &body)?;
        let doc: SnapshotDoc =
            serde_json::from_slice(&body).map_err(|e| SourceError::Document {
                what: "GET /snapshot",
                message: e.to_string(),
            })?;
        for c in [&doc.metrics.stable, &doc.metrics.canary] {
            if (c.latency.alpha - ramp_stats::RELATIVE_ERROR).abs() > 1e-12
                || c.latency.unit != "microseconds"
            {
                return Err(SourceError::Document {
                    what: "GET /snapshot",
                    message: format!(
                        "latency sketch with alpha {} in {} cannot be merged exactly (expected alpha {} in microseconds)",
                        c.latency.alpha,
                        c.latency.unit,
                        ramp_stats::RELATIVE_ERROR
                    ),
                });
            }
        }
        let cohort = |c: CohortDoc| CohortCounters {
            completed: c.latency.buckets.iter().map(|b| b.1).sum(),
            errors: c.errors.unwrap_or(c.responses.c5xx),
            buckets: c.latency.buckets,
            in_flight: c.in_flight,
            coarse_bounds_us: None,
        };
        Ok(ProxyReading {
            deployment_id: doc.deployment_id,
            set_by: doc.weights.set_by,
            canary_bp: doc.weights.canary_bp,
            counters: Counters {
                epoch: doc.instance.map(|i| i.boot_id),
                stable: cohort(doc.metrics.stable),
                canary: cohort(doc.metrics.canary),
            },
        })
    }

    /// Sets the canary weight, naming the run that sets it when there is one (the proxy
    /// reports it back as `set_by`) and carrying the run's fencing token when it has one;
    /// effective from the proxy's next request once this returns. A proxy that has seen a
    /// newer token refuses: [`SourceError::Superseded`].
    pub async fn set_weight(&self, weight: Weight, run: Option<&str>) -> Result<(), SourceError> {
        self.put_weights(weight, run, self.fence.get()).await
    }

    /// `PUT /weights` with the fields given, falling back to fewer for a proxy that predates
    /// them.
    async fn put_weights(
        &self,
        weight: Weight,
        run: Option<&str>,
        fence: Option<u64>,
    ) -> Result<(), SourceError> {
        let mut body = serde_json::json!({ "canary": weight.percent() });
        if let Some(run) = run {
            body["run"] = run.into();
        }
        if let Some(fence) = fence {
            body["fence"] = fence.into();
        }
        let (status, resp) = self
            .api
            .call(Method::PUT, "/weights", Some(body.to_string()))
            .await?;
        if status == StatusCode::CONFLICT {
            return Err(SourceError::Superseded {
                router: self.url().to_string(),
                reason: first_line(&resp),
            });
        }
        if fence.is_some() && refuses_field(status, &resp, "fence") {
            // A proxy older than fencing refuses the unknown field; it cannot fence anyway,
            // and the weight, above all a rollback's 0, must still get through.
            return Box::pin(self.put_weights(weight, run, None)).await;
        }
        if run.is_some() && refuses_field(status, &resp, "run") {
            // A proxy older than run tokens refuses the unknown field: the weight, above all a
            // rollback's 0, must still get through. Such a proxy reports no `set_by`, so the
            // journal check has nothing to hold it to either.
            return Box::pin(self.put_weights(weight, None, None)).await;
        }
        check("PUT /weights", status, &resp)
    }

    /// Injects a fault; returns the proxy's answer.
    pub async fn add_fault(&self, fault: &FaultRequest) -> Result<String, SourceError> {
        let body = serde_json::to_string(fault).map_err(|e| SourceError::Document {
            what: "POST /faults",
            message: e.to_string(),
        })?;
        let (status, resp) = self.api.call(Method::POST, "/faults", Some(body)).await?;
        check("POST /faults", status, &resp)?;
        Ok(String::from_utf8_lossy(&resp).into_owned())
    }

    /// Removes every fault.
    pub async fn clear_faults(&self) -> Result<(), SourceError> {
        let (status, resp) = self.api.call(Method::DELETE, "/faults", None).await?;
        check("DELETE /faults", status, &resp)
    }
}

/// Whether a `PUT /weights` was refused only because the proxy does not know `field` (it
/// predates run tokens or fencing and rejects unknown fields).
fn refuses_field(status: StatusCode, body: &[u8], field: &str) -> bool {
    status == StatusCode::BAD_REQUEST
        && String::from_utf8_lossy(body).contains(&format!("unknown field `{field}`"))
}

/// The first line of an answer's body, at most 200 characters, for an error message.
fn first_line(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

/// An error for a non-success status.
fn check(what: &'static str, status: StatusCode, body: &[u8]) -> Result<(), SourceError> {
    if status.is_success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(body);
    Err(SourceError::Status {
        what,
        status,
        body: text.chars().take(200).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cohort(completed_buckets: &[(u32, u64)], errors: u64) -> CohortCounters {
        CohortCounters {
            completed: completed_buckets.iter().map(|b| b.1).sum(),
            errors,
            buckets: completed_buckets.to_vec(),
            in_flight: 0,
            coarse_bounds_us: None,
        }
    }

    #[test]
    fn a_slot_is_the_exact_bucket_difference() {
        let then = Counters {
            stable: cohort(&[(10, 5), (20, 3)], 1),
            canary: cohort(&[(15, 2)], 0),
            ..Counters::default()
        };
        let now = Counters {
            stable: cohort(&[(10, 7), (20, 3), (30, 4)], 2),
            canary: cohort(&[(15, 2), (16, 1)], 1),
            ..Counters::default()
        };
        let slot = now.slot_since(&then, 1000, 6000);
        assert_eq!((slot.start_ms, slot.end_ms), (1000, 6000));
        assert_eq!(slot.stable.requests, 6);
        assert_eq!(slot.stable.errors, 1);
        assert_eq!(slot.stable.latency.buckets(), vec![(10, 2), (30, 4)]);
        assert_eq!(slot.canary.requests, 1);
        assert_eq!(slot.canary.errors, 1);
        assert_eq!(slot.canary.latency.buckets(), vec![(16, 1)]);
    }

    #[test]
    fn a_restarted_proxy_counts_from_zero() {
        let then = Counters {
            stable: cohort(&[(10, 50)], 5),
            canary: cohort(&[(10, 5)], 0),
            ..Counters::default()
        };
        let now = Counters {
            stable: cohort(&[(10, 3)], 0),
            canary: cohort(&[(11, 1)], 1),
            ..Counters::default()
        };
        assert!(now.restarted_since(&then));
        let slot = now.slot_since(&then, 0, 5000);
        assert_eq!(slot.stable.requests, 3);
        assert_eq!(slot.canary.requests, 1);
        assert_eq!(slot.canary.errors, 1);
    }

    #[test]
    fn errors_never_exceed_requests() {
        let then = Counters::default();
        let now = Counters {
            stable: cohort(&[], 3),
            canary: cohort(&[(4, 1)], 9),
            ..Counters::default()
        };
        let slot = now.slot_since(&then, 0, 1);
        assert_eq!(slot.stable.errors, 0);
        assert_eq!(slot.canary.errors, 1);
    }

    /// Issue 12, point 1: a proxy that restarted between two readings is a gap, even when
    /// its new counters happen to be higher than the old ones (the new process already served
    /// more than the old one had when last read). Fails on 63809fb, where only a counter
    /// going down was noticed and the difference became a slot.
    #[test]
    fn a_new_epoch_is_a_gap_whatever_the_counts() {
        let then = Counters {
            epoch: Some("aaaa".into()),
            stable: cohort(&[(10, 5)], 0),
            canary: cohort(&[(10, 1)], 0),
        };
        let mut now = Counters {
            epoch: Some("bbbb".into()),
            stable: cohort(&[(10, 50)], 0),
            canary: cohort(&[(10, 9)], 0),
        };
        assert!(now
            .gap_since(&then)
            .is_some_and(|r| r.contains("restarted")));
        now.epoch = Some("aaaa".into());
        assert_eq!(
            now.gap_since(&then),
            None,
            "same epoch, counters up: one stream"
        );
        // A source that names no epoch falls back on counters going down.
        let (mut a, mut b) = (then.clone(), now.clone());
        a.epoch = None;
        b.epoch = None;
        assert_eq!(b.gap_since(&a), None);
        assert!(a.gap_since(&b).is_some());
        // One that begins (or stops) naming it was replaced by another build: a restart.
        assert!(now.gap_since(&a).is_some_and(|r| r.contains("replaced")));
        assert!(b.gap_since(&then).is_some_and(|r| r.contains("replaced")));
    }

    /// A proxy older than run tokens answers `PUT /weights` with a `run` field with 400 and
    /// "unknown field `run`" (its body type denies unknown fields): the weight is sent again
    /// without it. Any other refusal stays an error.
    #[test]
    fn only_an_unknown_run_field_is_retried_without_it() {
        let old = b"invalid JSON: unknown field `run`, expected `canary` at line 1 column 20";
        assert!(refuses_field(StatusCode::BAD_REQUEST, old, "run"));
        assert!(!refuses_field(StatusCode::UNPROCESSABLE_ENTITY, old, "run"));
        assert!(!refuses_field(
            StatusCode::BAD_REQUEST,
            b"`run` must be a string of 1 to 128 characters",
            "run"
        ));
        // A proxy older than fencing names `fence` the same way; its own 400 for a bad
        // token does not.
        let old = b"invalid JSON: unknown field `fence`, expected `canary` or `run`";
        assert!(refuses_field(StatusCode::BAD_REQUEST, old, "fence"));
        assert!(!refuses_field(
            StatusCode::BAD_REQUEST,
            b"`fence` must be an integer between 0 and 18446744073709551615",
            "fence"
        ));
    }

    /// A cursor journaled before the counter was renamed still reads back.
    #[test]
    fn an_old_cursor_reads_back() {
        let old = r#"{"stable":{"completed":3,"errors_5xx":1,"buckets":[[10,3]]},"canary":{"completed":0,"errors_5xx":0,"buckets":[]}}"#;
        let c: Counters = serde_json::from_str(old).unwrap();
        assert_eq!(c.stable.errors, 1);
        assert_eq!(c.epoch, None);
    }
}
