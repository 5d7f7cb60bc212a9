//! The split rule: which cohort serves a request, and which faults apply to it.
//!
//! The rule is a plain value ([`RouteState`]) held in an `ArcSwap`: the hot path loads it
//! without a lock, and the admin API replaces it whole, so a new weight is effective from the
//! next request and no request ever sees half of an update.

use http::header::{HeaderMap, HeaderName, COOKIE};
use http::StatusCode;
use serde::Serialize;
use std::time::{Duration, Instant};

/// The two versions a rollout compares. Closed: every match over it is exhaustive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cohort {
    /// The version in production before the rollout.
    Stable,
    /// The new version being rolled out.
    Canary,
}

impl Cohort {
    /// The label used in metrics, JSON and the `x-ramp-cohort` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Cohort::Stable => "stable",
            Cohort::Canary => "canary",
        }
    }

    /// The other cohort, used when an unhealthy pool falls back.
    pub fn other(self) -> Cohort {
        match self {
            Cohort::Stable => Cohort::Canary,
            Cohort::Canary => Cohort::Stable,
        }
    }

    /// Parses the admin API's cohort names.
    pub fn parse(s: &str) -> Option<Cohort> {
        match s {
            "stable" => Some(Cohort::Stable),
            "canary" => Some(Cohort::Canary),
            _ => None,
        }
    }
}

/// Where the sticky bucketing key comes from.
#[derive(Debug, Clone)]
pub enum StickyKey {
    /// A request header such as `x-user-id`; the first value is used.
    Header(HeaderName),
    /// A cookie name; the first cookie of that name in any `Cookie` header is used.
    Cookie(String),
}

/// How requests are split between the cohorts.
#[derive(Debug, Clone)]
pub enum SplitMode {
    /// Each request is drawn independently with probability `weight`.
    PerRequest,
    /// Requests carrying the key are bucketed with flagd's `fractional` (ramp-flags) on
    /// `salt + key`, so a user stays in the canary as the weight grows; requests without the
    /// key fall back to a per-request draw and are counted.
    Sticky {
        /// Where to read the user's key.
        key: StickyKey,
        /// The flag key of the bucketing (the deployment id), so that two rollouts bucket
        /// the same user independently.
        salt: Box<[u8]>,
    },
}

/// What an injected fault does to the requests it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Waits this long before forwarding the request (a latency regression).
    Delay(Duration),
    /// Answers with this status without contacting the upstream (an error regression).
    Abort(StatusCode),
}

/// A fault injected for a rehearsal: an action on a fraction of one cohort until a deadline.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Identifies the fault in the admin API so that it can be removed alone.
    pub id: u64,
    /// The only cohort whose requests the fault can hit.
    pub cohort: Cohort,
    /// Probability in `[0, 1]` that a request of that cohort is hit.
    pub fraction: f64,
    /// What happens to a hit request.
    pub action: FaultAction,
    /// When the fault stops applying; expired faults are ignored and pruned on the next change.
    pub expires_at: Instant,
}

/// The whole routing rule, swapped atomically.
#[derive(Debug, Clone, Default)]
pub struct RouteState {
    /// Share of traffic for the canary in basis points (0..=10 000); 500 is 5%.
    pub canary_bp: u32,
    /// Active faults; usually empty, so the hot path pays one length check.
    pub faults: Vec<Fault>,
}

/// Reads the sticky key from the request headers without allocating.
pub fn sticky_value<'a>(key: &StickyKey, headers: &'a HeaderMap) -> Option<&'a [u8]> {
    match key {
        StickyKey::Header(name) => headers
            .get(name)
            .map(|v| v.as_bytes())
            .filter(|v| !v.is_empty()),
        StickyKey::Cookie(name) => {
            for value in headers.get_all(COOKIE) {
                for pair in value.as_bytes().split(|b| *b == b';') {
                    let pair = trim(pair);
                    if let Some(eq) = pair.iter().position(|b| *b == b'=') {
                        if &pair[..eq] == name.as_bytes() && eq + 1 < pair.len() {
                            return Some(&pair[eq + 1..]);
                        }
                    }
                }
            }
            None
        }
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// How a request's cohort was decided, counted so that operators see sticky coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Drawn at random (per-request mode).
    Random,
    /// Bucketed by the sticky key.
    Sticky,
    /// Sticky mode, but the request had no key, so it was drawn at random.
    StickyKeyMissing,
}

/// Chooses the cohort for one request.
pub fn choose(mode: &SplitMode, canary_bp: u32, headers: &HeaderMap) -> (Cohort, Decision) {
    let pick = |inside: bool| {
        if inside {
            Cohort::Canary
        } else {
            Cohort::Stable
        }
    };
    match mode {
        SplitMode::PerRequest => (pick(random_inside(canary_bp)), Decision::Random),
        SplitMode::Sticky { key, salt } => match sticky_value(key, headers) {
            Some(user) => (
                pick(ramp_flags::in_rollout(salt, user, canary_bp)),
                Decision::Sticky,
            ),
            None => (pick(random_inside(canary_bp)), Decision::StickyKeyMissing),
        },
    }
}

fn random_inside(canary_bp: u32) -> bool {
    match canary_bp {
        0 => false,
        bp if bp >= ramp_flags::BASIS_POINTS => true,
        bp => crate::rng::below(ramp_flags::BASIS_POINTS) < bp,
    }
}

/// Returns the action of the first active fault that hits this request of `cohort`, if any.
pub fn fault_for(faults: &[Fault], cohort: Cohort, now: Instant) -> Option<FaultAction> {
    for fault in faults {
        if fault.cohort == cohort
            && now < fault.expires_at
            && crate::rng::unit_f64() < fault.fraction
        {
            return Some(fault.action);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn cookie_key_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; uid=alice ;b=2"));
        let key = StickyKey::Cookie("uid".into());
        assert_eq!(sticky_value(&key, &headers), Some(&b"alice"[..]));
        let missing = StickyKey::Cookie("nope".into());
        assert_eq!(sticky_value(&missing, &headers), None);
        let prefix = StickyKey::Cookie("ui".into());
        assert_eq!(sticky_value(&prefix, &headers), None);
    }

    #[test]
    fn weight_bounds_are_exact_in_per_request_mode() {
        let headers = HeaderMap::new();
        for _ in 0..10_000 {
            assert_eq!(
                choose(&SplitMode::PerRequest, 0, &headers).0,
                Cohort::Stable
            );
            assert_eq!(
                choose(&SplitMode::PerRequest, 10_000, &headers).0,
                Cohort::Canary
            );
        }
    }

    #[test]
    fn sticky_mode_matches_ramp_flags_bucketing() {
        let mode = SplitMode::Sticky {
            key: StickyKey::Header(HeaderName::from_static("x-user-id")),
            salt: b"dep".to_vec().into(),
        };
        for user in 0..500 {
            let mut headers = HeaderMap::new();
            headers.insert(
                "x-user-id",
                HeaderValue::from_str(&format!("u{user}")).unwrap(),
            );
            let (cohort, decision) = choose(&mode, 2_500, &headers);
            assert_eq!(decision, Decision::Sticky);
            let inside = ramp_flags::in_rollout(b"dep", format!("u{user}").as_bytes(), 2_500);
            assert_eq!(cohort == Cohort::Canary, inside);
        }
        assert_eq!(
            choose(&mode, 2_500, &HeaderMap::new()).1,
            Decision::StickyKeyMissing
        );
    }

    #[test]
    fn faults_only_hit_their_cohort_and_expire() {
        let now = crate::clock::now();
        let faults = vec![Fault {
            id: 1,
            cohort: Cohort::Canary,
            fraction: 1.0,
            action: FaultAction::Abort(StatusCode::SERVICE_UNAVAILABLE),
            expires_at: now + Duration::from_secs(10),
        }];
        assert_eq!(fault_for(&faults, Cohort::Stable, now), None);
        assert_eq!(
            fault_for(&faults, Cohort::Canary, now),
            Some(FaultAction::Abort(StatusCode::SERVICE_UNAVAILABLE))
        );
        assert_eq!(
            fault_for(&faults, Cohort::Canary, now + Duration::from_secs(11)),
            None
        );
    }
}
