//! The admin API, on its own listener (loopback by default):
//!
//! - `GET /metrics`: Prometheus text format.
//! - `GET /snapshot`: JSON with raw histogram buckets and counters, for exact merging; in
//!   flag mode also `flag`: the flag and the distinct users per cohort over the window.
//! - `GET /snapshot` also names the proxy's start (`instance`: `boot_id`,
//!   `started_unix_ms`), so that a controller tells a restart from continuous counters.
//! - `GET /weights`, `PUT /weights` `{"canary": 5, "run": "…", "fence": 7}`: read and set
//!   the split (persisted first, then swapped atomically; effective from the next request),
//!   with the run that set it (`set_by`; null when a person did) and the newest fencing token
//!   accepted (`fence`; a PUT with an older one is refused with 409, see `crate::weights`).
//! - `GET /faults`, `POST /faults`, `DELETE /faults`, `DELETE /faults/{id}`: rehearsal faults.
//! - `GET /upstreams`: health of every pool member.
//! - `GET /healthz`: liveness of the proxy itself (no token needed).
//!
//! When a token is configured every other route requires `Authorization: Bearer <token>` (the
//! scheme in any case).

use crate::clock;
use crate::config::{bp_to_percent, percent_to_bp};
use crate::metrics::MetricsSnapshot;
use crate::proxy::{Instance, Proxy};
use crate::routing::{Cohort, Fault, FaultAction, RouteState};
use crate::state;
use crate::upstream::PoolStatus;
use crate::users::FlagUsersSnapshot;
use crate::weights;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Largest admin request body; the documents are tiny.
const MAX_ADMIN_BODY: usize = 64 * 1024;

/// Time allowed to receive an admin request body.
const ADMIN_BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest fault duration accepted (a day), so a forgotten fault cannot live forever.
const MAX_FAULT_DURATION_S: f64 = 86_400.0;

/// Longest injected delay accepted (5 minutes).
const MAX_FAULT_DELAY_MS: u64 = 300_000;

/// `GET/PUT /weights` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WeightsView {
    /// Canary share in percent (0..=100, two decimals).
    pub canary: f64,
    /// Stable share in percent (100 − canary).
    pub stable: f64,
    /// Canary share in basis points, the exact stored value.
    pub canary_bp: u32,
    /// "per_request", "sticky" or "flag".
    pub mode: &'static str,
    /// The run that set the weights (`PUT /weights` with `run`), or null when a person did
    /// (a PUT without `run`) or nobody has since the configured initial weight.
    pub set_by: Option<String>,
    /// The newest fencing token the proxy has accepted (a leading controller's), or null
    /// when no change ever carried one; a change with an older token is refused.
    pub fence: Option<u64>,
    /// Where the weights come from: "admin" (only `PUT /weights`), or "etcd" when the proxy
    /// follows the deployment's weight key (`PUT /weights` still works, for operators).
    pub source: &'static str,
    /// The etcd follower's state, when the proxy follows etcd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<crate::follow::FollowView>,
}

/// `PUT /weights` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetWeights {
    /// The new canary share in percent.
    pub(crate) canary: f64,
    /// The run setting it (a controller); absent or null when a person sets it by hand.
    /// Read as any JSON value so that a wrong type gets the same message naming the field.
    #[serde(default)]
    run: Option<serde_json::Value>,
    /// The fencing token of the controller setting it; absent or null for an unfenced change.
    /// Read as any JSON value so that a wrong type gets a message naming the field.
    #[serde(default)]
    fence: Option<serde_json::Value>,
}

/// The message of a `PUT /weights` whose `fence` is not a token.
const BAD_FENCE: &str = "`fence` must be an integer between 0 and 18446744073709551615\n";

/// The token a `PUT /weights` carries: `Ok(None)` for none (absent or null), `Err` for a
/// value that is not a non-negative integer.
fn fence_of(fence: Option<serde_json::Value>) -> Result<Option<u64>, ()> {
    match fence {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_u64().map(Some).ok_or(()),
        Some(_) => Err(()),
    }
}

/// The message of a `PUT /weights` whose `run` is not a run name.
const BAD_RUN: &str =
    "`run` must be a string of 1 to 128 characters from A-Z, a-z, 0-9, '.', '_', ':' and '-'\n";

/// The run a `PUT /weights` names: `Ok(None)` for none (absent or null), `Err` for a value
/// that is not a run name (see [`state::is_valid_run`]).
fn run_of(run: Option<serde_json::Value>) -> Result<Option<Arc<str>>, ()> {
    match run {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(run)) if state::is_valid_run(&run) => {
            Ok(Some(Arc::from(run)))
        }
        Some(_) => Err(()),
    }
}

/// `POST /faults` body: one of `add_latency_ms` or `abort_status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewFault {
    /// "canary" or "stable".
    cohort: String,
    /// Fraction of that cohort's requests hit, 0..=1.
    fraction: f64,
    /// Added latency in milliseconds.
    add_latency_ms: Option<u64>,
    /// Status to answer instead of forwarding (400..=599).
    abort_status: Option<u16>,
    /// How long the fault applies, in seconds.
    duration_s: f64,
}

/// A `POST /faults` body that passed every check: what `add_fault` installs.
#[derive(Debug)]
pub(crate) struct FaultSpec {
    /// The cohort it hits.
    pub(crate) cohort: Cohort,
    /// Fraction of that cohort's requests hit, within 0..=1.
    pub(crate) fraction: f64,
    /// A delay of at most MAX_FAULT_DELAY_MS, or an abort with a 4xx or 5xx status.
    pub(crate) action: FaultAction,
    /// How long it applies: above zero, at most MAX_FAULT_DURATION_S.
    pub(crate) duration: Duration,
}

impl NewFault {
    /// Checks the body's values (serde checked only their types); the error is the sentence
    /// of the 422 answer. A function of its own so that the fuzzer (`crate::fuzzing`) checks
    /// exactly what the handler does.
    pub(crate) fn check(&self) -> Result<FaultSpec, &'static str> {
        let Some(cohort) = Cohort::parse(&self.cohort) else {
            return Err("`cohort` must be \"canary\" or \"stable\"");
        };
        if !self.fraction.is_finite() || !(0.0..=1.0).contains(&self.fraction) {
            return Err("`fraction` must be between 0 and 1");
        }
        if !self.duration_s.is_finite()
            || self.duration_s <= 0.0
            || self.duration_s > MAX_FAULT_DURATION_S
        {
            return Err("`duration_s` must be above 0 and at most 86400");
        }
        let action = match (self.add_latency_ms, self.abort_status) {
            (Some(ms), None) if ms <= MAX_FAULT_DELAY_MS => {
                FaultAction::Delay(Duration::from_millis(ms))
            }
            (Some(_), None) => return Err("`add_latency_ms` must be at most 300000"),
            (None, Some(code)) => match StatusCode::from_u16(code) {
                Ok(status) if (400..=599).contains(&code) => FaultAction::Abort(status),
                _ => return Err("`abort_status` must be between 400 and 599"),
            },
            (Some(_), Some(_)) | (None, None) => {
                return Err("set exactly one of `add_latency_ms` or `abort_status`")
            }
        };
        Ok(FaultSpec {
            cohort,
            fraction: self.fraction,
            action,
            duration: Duration::from_secs_f64(self.duration_s),
        })
    }
}

/// A fault as listed by `GET /faults`.
#[derive(Debug, Serialize)]
struct FaultView {
    /// The fault's id, for `DELETE /faults/{id}`.
    id: u64,
    /// The cohort it hits.
    cohort: Cohort,
    /// Fraction of requests hit.
    fraction: f64,
    /// Added latency, when it is a delay.
    add_latency_ms: Option<u64>,
    /// Answered status, when it is an abort.
    abort_status: Option<u16>,
    /// Seconds until it expires.
    remaining_s: f64,
}

/// `GET /snapshot` document.
#[derive(Debug, Serialize)]
struct Snapshot {
    /// Which start of the proxy the counters belong to.
    instance: Instance,
    /// The deployment this proxy serves.
    deployment_id: String,
    /// The current split.
    weights: WeightsView,
    /// All counters and raw histograms.
    metrics: MetricsSnapshot,
    /// Pool health.
    upstreams: Vec<PoolStatus>,
    /// What happens when a pool is down.
    unhealthy_pool_policy: &'static str,
    /// Flag mode only: the flag and the distinct users of each cohort over the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    flag: Option<FlagUsersSnapshot>,
}

/// Serves one admin request.
pub async fn handle(
    proxy: Arc<Proxy>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    if req.method() == Method::GET && path == "/healthz" {
        return Ok(text(StatusCode::OK, "ok\n"));
    }
    if let Some(token) = &proxy.config.admin_token {
        if !authorized(&req, token) {
            let mut r = text(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return Ok(r);
        }
    }
    let method = req.method().clone();
    let response = match (method, path.as_str()) {
        (Method::GET, "/metrics") => {
            let mut extra = String::new();
            extra.push_str("# HELP ramp_proxy_canary_weight_ratio Current canary share of traffic, 0 to 1.\n# TYPE ramp_proxy_canary_weight_ratio gauge\n");
            let _ = writeln!(
                extra,
                "ramp_proxy_canary_weight_ratio {}",
                f64::from(proxy.route.load().canary_bp) / f64::from(ramp_flags::BASIS_POINTS)
            );
            extra.push_str("# HELP ramp_proxy_weight_fence The newest fencing token the proxy has accepted with a weight change, 0 for none.\n# TYPE ramp_proxy_weight_fence gauge\n");
            let _ = writeln!(
                extra,
                "ramp_proxy_weight_fence {}",
                proxy.route.load().fence.unwrap_or(0)
            );
            extra.push_str("# HELP ramp_proxy_weight_refused_total Weight changes refused because their fencing token was older than the newest accepted (409 at PUT /weights, or an etcd document ignored).\n# TYPE ramp_proxy_weight_refused_total counter\n");
            let _ = writeln!(
                extra,
                "ramp_proxy_weight_refused_total {}",
                proxy.weights_refused.load(Ordering::Relaxed)
            );
            if let Some(follow) = &proxy.follow {
                let view = follow.view();
                extra.push_str("# HELP ramp_proxy_etcd_start_confirmed Whether the weight served from the start was read from etcd before the proxy accepted its first connection (1) or etcd could not be reached then and the persisted weight was served unconfirmed (0).\n# TYPE ramp_proxy_etcd_start_confirmed gauge\n");
                let _ = writeln!(
                    extra,
                    "ramp_proxy_etcd_start_confirmed {}",
                    u8::from(view.confirmed_at_start)
                );
                extra.push_str("# HELP ramp_proxy_etcd_connected Whether the proxy reaches etcd and watches its weight key (1) or not (0).\n# TYPE ramp_proxy_etcd_connected gauge\n");
                let _ = writeln!(
                    extra,
                    "ramp_proxy_etcd_connected {}",
                    u8::from(view.connected)
                );
                extra.push_str("# HELP ramp_proxy_etcd_weight_revision The etcd revision of the last weight document applied, 0 for none.\n# TYPE ramp_proxy_etcd_weight_revision gauge\n");
                let _ = writeln!(extra, "ramp_proxy_etcd_weight_revision {}", view.revision);
            }
            extra.push_str("# HELP ramp_proxy_upstream_healthy Whether an upstream address receives traffic (1) or is marked down (0).\n# TYPE ramp_proxy_upstream_healthy gauge\n");
            for pool in proxy.pools() {
                for m in pool.members.iter() {
                    let _ = writeln!(
                        extra,
                        "ramp_proxy_upstream_healthy{{{},addr=\"{}\"}} {}",
                        pool_label(pool),
                        m.addr,
                        u8::from(m.is_healthy())
                    );
                }
            }
            extra.push_str("# HELP ramp_proxy_pool_healthy_members Healthy members per pool.\n# TYPE ramp_proxy_pool_healthy_members gauge\n");
            for pool in proxy.pools() {
                let _ = writeln!(
                    extra,
                    "ramp_proxy_pool_healthy_members{{{},policy=\"{}\"}} {}",
                    pool_label(pool),
                    proxy.config.unhealthy_policy.as_str(),
                    pool.healthy_count()
                );
            }
            if let Some(users) = &proxy.users {
                let u = users.snapshot();
                extra.push_str("# HELP ramp_proxy_flag_users Distinct user keys per cohort over the statistics window (flag mode).\n# TYPE ramp_proxy_flag_users gauge\n");
                for (cohort, n) in [("stable", u.stable_users), ("canary", u.canary_users)] {
                    let _ = writeln!(
                        extra,
                        "ramp_proxy_flag_users{{cohort=\"{cohort}\",flag=\"{}\"}} {n}",
                        crate::exposition::escape_label(&u.key)
                    );
                }
                extra.push_str("# HELP ramp_proxy_flag_users_exact Whether the distinct-user counts are exact (1) or HyperLogLog estimates (0).\n# TYPE ramp_proxy_flag_users_exact gauge\n");
                let _ = writeln!(extra, "ramp_proxy_flag_users_exact {}", u8::from(u.exact));
            }
            let body = proxy.metrics.render_prometheus(&extra);
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        (Method::GET, "/snapshot") => json(
            StatusCode::OK,
            &Snapshot {
                instance: proxy.instance.clone(),
                deployment_id: proxy.config.deployment_id.clone(),
                weights: weights_view(&proxy),
                metrics: proxy.metrics.snapshot(),
                upstreams: proxy.pools().iter().map(|p| p.status()).collect(),
                unhealthy_pool_policy: proxy.config.unhealthy_policy.as_str(),
                flag: proxy.users.as_ref().map(|u| u.snapshot()),
            },
        ),
        (Method::GET, "/weights") => json(StatusCode::OK, &weights_view(&proxy)),
        (Method::PUT, "/weights") => match read_json::<SetWeights>(req).await {
            Err(r) => r,
            Ok(set) => match (
                percent_to_bp(set.canary),
                run_of(set.run),
                fence_of(set.fence),
            ) {
                (None, _, _) => text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "`canary` must be a percentage between 0 and 100\n",
                ),
                (Some(_), Err(()), _) => text(StatusCode::BAD_REQUEST, BAD_RUN),
                (Some(_), _, Err(())) => text(StatusCode::BAD_REQUEST, BAD_FENCE),
                (Some(canary_bp), Ok(run), Ok(fence)) => {
                    set_weight(
                        &proxy,
                        weights::Change {
                            canary_bp,
                            run,
                            fence,
                        },
                    )
                    .await
                }
            },
        },
        (Method::GET, "/faults") => json(StatusCode::OK, &fault_views(&proxy)),
        (Method::POST, "/faults") => match read_json::<NewFault>(req).await {
            Err(r) => r,
            Ok(new) => add_fault(&proxy, new).await,
        },
        (Method::DELETE, "/faults") => {
            let _lock = proxy.admin_lock.lock().await;
            let current = proxy.route.load_full();
            proxy.route.store(Arc::new(RouteState {
                canary_bp: current.canary_bp,
                faults: Vec::new(),
                set_by: current.set_by.clone(),
                fence: current.fence,
            }));
            json(StatusCode::OK, &fault_views(&proxy))
        }
        (Method::DELETE, p) if p.starts_with("/faults/") => {
            match p["/faults/".len()..].parse::<u64>() {
                Err(_) => text(StatusCode::NOT_FOUND, "no such fault\n"),
                Ok(id) => {
                    let _lock = proxy.admin_lock.lock().await;
                    let current = proxy.route.load_full();
                    if !current.faults.iter().any(|f| f.id == id) {
                        text(StatusCode::NOT_FOUND, "no such fault\n")
                    } else {
                        let faults = current
                            .faults
                            .iter()
                            .filter(|f| f.id != id)
                            .cloned()
                            .collect();
                        proxy.route.store(Arc::new(RouteState {
                            canary_bp: current.canary_bp,
                            faults,
                            set_by: current.set_by.clone(),
                            fence: current.fence,
                        }));
                        json(StatusCode::OK, &fault_views(&proxy))
                    }
                }
            }
        }
        (Method::GET, "/upstreams") => json(
            StatusCode::OK,
            &proxy.pools().iter().map(|p| p.status()).collect::<Vec<_>>(),
        ),
        (_, "/metrics" | "/snapshot" | "/weights" | "/faults" | "/upstreams") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(response)
}

/// The Prometheus labels naming a pool: its cohort, or `pool="upstream"` for flag mode's
/// one pool (which serves both cohorts).
fn pool_label(pool: &crate::upstream::Pool) -> String {
    match pool.cohort {
        Some(c) => format!("cohort=\"{}\"", c.as_str()),
        None => format!("pool=\"{}\"", pool.name()),
    }
}

/// Whether the request carries the admin token: `Authorization: Bearer <token>`, the scheme
/// in any case and one or more spaces before the token (RFC 9110 §11.1, §11.4); ASCII
/// whitespace around the token is not part of it, at either end, as for the control API.
fn authorized(req: &Request<Incoming>, token: &str) -> bool {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return false;
    };
    bearer_token(value.as_bytes()).is_some_and(|given| constant_time_eq(given, token.as_bytes()))
}

/// The token of a `Bearer` credential, if `value` is one.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer";
    let (scheme, rest) = value.split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Compares without an early exit, so response time does not reveal the matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn weights_view(proxy: &Proxy) -> WeightsView {
    let route = proxy.route.load();
    let bp = route.canary_bp;
    WeightsView {
        set_by: route.set_by.as_deref().map(str::to_string),
        canary: bp_to_percent(bp),
        stable: bp_to_percent(ramp_flags::BASIS_POINTS - bp),
        canary_bp: bp,
        fence: route.fence,
        source: if proxy.follow.is_some() {
            "etcd"
        } else {
            "admin"
        },
        etcd: proxy.follow.as_ref().map(|f| f.view()),
        mode: match proxy.mode {
            crate::routing::SplitMode::PerRequest => "per_request",
            crate::routing::SplitMode::Sticky { .. } => "sticky",
            crate::routing::SplitMode::Flag { .. } => "flag",
        },
    }
}

/// Applies a `PUT /weights` through the one path every weight change takes
/// ([`weights::apply`]): 409 for an older fence, 500 when the state file cannot be written,
/// the new weights otherwise.
async fn set_weight(proxy: &Arc<Proxy>, change: weights::Change) -> Response<Full<Bytes>> {
    match weights::apply(proxy, change).await {
        Ok(_) => json(StatusCode::OK, &weights_view(proxy)),
        Err(e @ weights::ApplyError::Stale { .. }) => {
            tracing::warn!(reason = %e, "weight change refused");
            text(StatusCode::CONFLICT, &format!("{e}\n"))
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
    }
}

async fn add_fault(proxy: &Arc<Proxy>, new: NewFault) -> Response<Full<Bytes>> {
    let spec = match new.check() {
        Ok(spec) => spec,
        Err(why) => return text(StatusCode::UNPROCESSABLE_ENTITY, &format!("{why}\n")),
    };
    let _lock = proxy.admin_lock.lock().await;
    let now = clock::now();
    let id = proxy.next_fault_id.fetch_add(1, Ordering::Relaxed);
    let current = proxy.route.load_full();
    let mut faults: Vec<Fault> = current
        .faults
        .iter()
        .filter(|f| f.expires_at > now)
        .cloned()
        .collect();
    if faults.len() >= 16 {
        return text(StatusCode::CONFLICT, "at most 16 faults may be active\n");
    }
    faults.push(Fault {
        id,
        cohort: spec.cohort,
        fraction: spec.fraction,
        action: spec.action,
        expires_at: now + spec.duration,
    });
    proxy.route.store(Arc::new(RouteState {
        canary_bp: current.canary_bp,
        faults,
        set_by: current.set_by.clone(),
        fence: current.fence,
    }));
    tracing::warn!(
        id,
        cohort = spec.cohort.as_str(),
        fraction = spec.fraction,
        action = ?spec.action,
        duration_s = new.duration_s,
        "fault injected"
    );
    let views = fault_views(proxy);
    match views.into_iter().find(|v| v.id == id) {
        Some(view) => json(StatusCode::CREATED, &view),
        None => text(StatusCode::INTERNAL_SERVER_ERROR, "fault vanished\n"),
    }
}

fn fault_views(proxy: &Proxy) -> Vec<FaultView> {
    let now = clock::now();
    proxy
        .route
        .load()
        .faults
        .iter()
        .filter(|f| f.expires_at > now)
        .map(|f| FaultView {
            id: f.id,
            cohort: f.cohort,
            fraction: f.fraction,
            add_latency_ms: match f.action {
                FaultAction::Delay(d) => Some(d.as_millis() as u64),
                FaultAction::Abort(_) => None,
            },
            abort_status: match f.action {
                FaultAction::Delay(_) => None,
                FaultAction::Abort(s) => Some(s.as_u16()),
            },
            remaining_s: f.expires_at.saturating_duration_since(now).as_secs_f64(),
        })
        .collect()
}

async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<T, Response<Full<Bytes>>> {
    let limited = Limited::new(req.into_body(), MAX_ADMIN_BODY);
    let collected = match tokio::time::timeout(ADMIN_BODY_TIMEOUT, limited.collect()).await {
        Err(_) => {
            return Err(text(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time\n",
            ))
        }
        Ok(Err(_)) => {
            return Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or broken\n",
            ))
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    serde_json::from_slice(&collected)
        .map_err(|e| text(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}\n")))
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
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
            &format!("cannot serialise: {e}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for (value, token) in [
            (&b"Bearer abc"[..], Some(&b"abc"[..])),
            (b"bearer abc", Some(b"abc")),
            (b"BEARER  abc", Some(b"abc")),
            (b"Bearerabc", None),
            (b"Bearer ", None),
            (b"Basic abc", None),
            (b"Bear", None),
        ] {
            assert_eq!(
                bearer_token(value),
                token,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    /// Whitespace around the token is not part of it, at either end, as for the control
    /// API's token (and the token file's content, which is trimmed when it is read).
    ///
    /// Fails on c7d83a2: only the start is trimmed, so `Bearer <token> ` (a trailing space
    /// or tab, as some clients and scripts send) is refused with 401.
    #[test]
    fn the_bearer_token_is_trimmed_at_both_ends() {
        for (value, token) in [
            (&b"Bearer abc "[..], Some(&b"abc"[..])),
            (b"Bearer abc\t", Some(b"abc")),
            (b"bearer \t abc \t ", Some(b"abc")),
            (b"Bearer a b", Some(b"a b")),
            (b"Bearer  \t ", None),
        ] {
            assert_eq!(
                bearer_token(value),
                token,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
