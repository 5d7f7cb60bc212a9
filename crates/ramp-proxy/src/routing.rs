//! The split rule: which cohort serves a request, and which faults apply to it.
//!
//! The rule is a plain value ([`RouteState`]) held in an `ArcSwap`: the hot path loads it
//! without a lock, and the admin API replaces it whole, so a new weight is effective from the
//! next request and no request ever sees half of an update.

use http::header::{HeaderMap, HeaderName, COOKIE};
use http::StatusCode;
use serde::Serialize;
use std::sync::Arc;
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
    /// Flag mode: one version serves everyone, and a request's cohort is the side of the
    /// flag's rollout its user is on, decided by [`ramp_flags::rollout_membership`] — the
    /// function the flags server's evaluation calls — with the flag's salt, the weight and
    /// the key. A request without a key is in the cohort the flag serves keyless users
    /// (stable below 100 %, canary at 100 %) and is counted as missing its key.
    Flag {
        /// Where to read the user's key (the flag's targeting key).
        key: StickyKey,
        /// The flag's bucketing salt: its `salt`, or its key.
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
    /// The run that set the weight (`PUT /weights` with `run`), or `None` when a person
    /// did (or nobody yet): kept with the weight so that both are read and swapped as one,
    /// and so that a controller can refuse to drive weights some other run set. The request
    /// path never reads it.
    pub set_by: Option<Arc<str>>,
    /// The newest fencing token accepted (`crate::weights`), swapped with the weight so that
    /// `GET /weights` shows the pair a restart would restore. The request path never reads
    /// it.
    pub fence: Option<u64>,
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
        SplitMode::Flag { key, salt } => {
            let user = sticky_value(key, headers);
            let decision = match user {
                Some(_) => Decision::Sticky,
                None => Decision::StickyKeyMissing,
            };
            // A user the flag cannot place (no key in a fractional rollout) gets the default
            // variant from the application's OpenFeature client: stable.
            let inside = ramp_flags::rollout_membership(salt, canary_bp, user)
                .is_inside()
                .unwrap_or(false);
            (pick(inside), decision)
        }
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

    /// The proxy's flag mode and the flags server place every user identically: for 5,000
    /// keys at weights from 0 to 100 %, a flag following the rollout (salted by its key) and
    /// one with a configured salt, the cohort is canary exactly when `Snapshot::evaluate`
    /// serves the flag's `on_variant`.
    #[test]
    fn flag_mode_tags_exactly_the_users_the_flag_turns_on() {
        use ramp_flags::flags::{parse_flags_file, FlagState};
        let flags = parse_flags_file(
            r#"
[flags.phase8_encryption_enabled]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
follow = "rollout"

[flags.checkout_v2]
variants = { new = "v2", old = "v1" }
default_variant = "old"
on_variant = "new"
follow = "rollout"
salt = "checkout-2025-10"
"#,
            "flags.toml",
        )
        .expect("valid flags");
        let state = FlagState::new(flags);
        let header = HeaderName::from_static("x-user-id");
        for (flag_key, salt) in [
            ("phase8_encryption_enabled", "phase8_encryption_enabled"),
            ("checkout_v2", "checkout-2025-10"),
        ] {
            let mode = SplitMode::Flag {
                key: StickyKey::Header(header.clone()),
                salt: salt.as_bytes().into(),
            };
            for bp in [0u32, 1, 500, 1_234, 2_500, 5_000, 9_999, 10_000] {
                state.set_rollout_weight_bp(bp).expect("weight in range");
                let snapshot = state.snapshot();
                let on = snapshot
                    .flags()
                    .get(flag_key)
                    .and_then(|f| f.on_variant())
                    .map(|v| v.name().to_string());
                let mut canary = 0;
                for user in 0..5_000 {
                    let key = format!("user-{user}");
                    let served = snapshot
                        .evaluate(flag_key, Some(&key))
                        .expect("a fractional flag with a key evaluates");
                    let flag_on = served.variant.map(|v| v.name().to_string()) == on;
                    let mut headers = HeaderMap::new();
                    headers.insert(&header, HeaderValue::from_str(&key).expect("ASCII key"));
                    let (cohort, decision) = choose(&mode, bp, &headers);
                    assert_eq!(decision, Decision::Sticky);
                    assert_eq!(
                        cohort == Cohort::Canary,
                        flag_on,
                        "{key} of {flag_key} at {bp} bp"
                    );
                    canary += usize::from(flag_on);
                }
                // Not vacuous: the split is near the weight.
                let expected = 5_000.0 * f64::from(bp) / 10_000.0;
                assert!((canary as f64 - expected).abs() <= 5.0 * (expected.max(1.0)).sqrt() + 1.0);
            }
        }
    }

    #[test]
    fn flag_mode_without_a_key_is_what_the_flag_serves_keyless_users() {
        let mode = SplitMode::Flag {
            key: StickyKey::Cookie("uid".into()),
            salt: b"f".to_vec().into(),
        };
        let headers = HeaderMap::new();
        for bp in [0, 1, 5_000, 9_999] {
            assert_eq!(
                choose(&mode, bp, &headers),
                (Cohort::Stable, Decision::StickyKeyMissing)
            );
        }
        // At 100 % the flag is on for everyone, keyless users included (reason STATIC).
        assert_eq!(
            choose(&mode, 10_000, &headers),
            (Cohort::Canary, Decision::StickyKeyMissing)
        );
        // An empty cookie value is no key, as an empty targetingKey is none for the flag.
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("uid="));
        assert_eq!(choose(&mode, 5_000, &headers).1, Decision::StickyKeyMissing);
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
