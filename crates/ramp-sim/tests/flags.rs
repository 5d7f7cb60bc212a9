//! Flag rollouts in simulation: a plan with `[flags.*]` gets a population of users whose
//! bucketing decides each request's cohort, and every flag is counted in distinct users at
//! each stage's end. These tests hold the simulation to the OFREP server's evaluation and to
//! the properties a rollout by users has: shares near the weight, users that never flip back
//! as the weight grows, and reproducible output.

use ramp_core::summary::{FlagUsageSummary, Summary};
use ramp_core::{Plan, Weight};
use ramp_sim::{targeting_key, Users, DEFAULT_POPULATION};
use std::sync::Arc;

/// The staging report's three flags, each following the rollout with its own key as salt.
const SEED_FLAGS: &str = r#"
[flags.phase8_encryption_enabled]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
follow = "rollout"

[flags.phase8_analytics_persistence_enabled]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
follow = "rollout"

[flags.phase8_gamification_enhancements]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
follow = "rollout"
"#;

/// The weights of the test plan's stages, percent.
const WEIGHTS: [f64; 4] = [5.0, 25.0, 50.0, 100.0];

/// A short four-stage plan (5 → 25 → 50 → 100 %, ten minutes each at 125 requests per
/// second, so that every one of the 2,500 users sends requests in every stage) with `extra`
/// appended (flags, or nothing).
fn plan(extra: &str) -> Arc<Plan> {
    let src = format!(
        r#"
[deployment]
id = "phase8-canary-20251006"
service = "phase8"
environment = "staging"

[gates]
window = "5m"
min_samples = 200
p95_ms = {{ max = 500 }}
error_rate = {{ max = "1%" }}

[[stages]]
weight = 5
duration = "10m"

[[stages]]
weight = 25
duration = "10m"

[[stages]]
weight = 50
duration = "10m"

[[stages]]
weight = 100
duration = "10m"

[simulation]
rps = 125
stable = {{ p50_ms = 145, p95_ms = 385, p99_ms = 720, error_rate = "0.28%" }}
router_delay = "1s"
{extra}
"#
    );
    Arc::new(ramp_core::parse_plan(&src, "flags-test.toml").unwrap_or_else(|e| panic!("{e}")))
}

/// Runs a plan.
fn run(plan: &Arc<Plan>, seed: u64) -> Summary {
    ramp_sim::simulate(Arc::clone(plan), seed, &mut |_| {}).unwrap()
}

/// The users flagd's bucketing puts inside a rollout salted by `salt` at `percent`, counted
/// straight from `ramp_flags::in_rollout`, independently of the simulator's precomputation.
fn inside(salt: &str, percent: f64) -> u64 {
    let bp = (percent * 100.0).round() as u32;
    (0..DEFAULT_POPULATION)
        .filter(|&n| ramp_flags::in_rollout(salt.as_bytes(), targeting_key(n).as_bytes(), bp))
        .count() as u64
}

/// Four binomial standard deviations of a count of `p × n` users.
fn four_sd(p: f64, n: f64) -> f64 {
    4.0 * (n * p * (1.0 - p)).sqrt()
}

/// The counts of one flag, in stage order.
fn counts<'a>(s: &'a Summary, key: &str) -> Vec<&'a FlagUsageSummary> {
    s.flags.iter().filter(|f| f.key == key).collect()
}

#[test]
fn every_flag_is_counted_at_every_stage_end_near_its_weight_and_never_shrinks() {
    let p = plan(SEED_FLAGS);
    let s = run(&p, 1);
    assert_eq!(s.outcome.key(), "promoted");
    let population = f64::from(DEFAULT_POPULATION);
    let keys = [
        "phase8_analytics_persistence_enabled",
        "phase8_encryption_enabled",
        "phase8_gamification_enhancements",
    ];
    assert_eq!(s.flags.len(), keys.len() * WEIGHTS.len());
    for key in keys {
        let c = counts(&s, key);
        assert_eq!(c.len(), WEIGHTS.len(), "{key}");
        for (i, f) in c.iter().enumerate() {
            assert_eq!(f.stage, i + 1);
            assert_eq!(f.weight, WEIGHTS[i], "{key} reports the stage's weight");
            assert!(f.exact);
            assert_eq!(f.window_s, 600.0, "{key}: the window is the stage");
            // Every user sent requests, so the on users are exactly those the flag's
            // bucketing puts inside at the stage's weight…
            assert_eq!(f.on_users, inside(key, WEIGHTS[i]), "{key} stage {}", i + 1);
            // …which is the weight's share of the population within a binomial bound.
            let w = WEIGHTS[i] / 100.0;
            let gap = (f.on_users as f64 - w * population).abs();
            assert!(
                gap <= four_sd(w, population) + 1e-9,
                "{key} stage {}: {} users on at {}%",
                i + 1,
                f.on_users,
                WEIGHTS[i]
            );
            // Everybody else was off; the users who requested in the second before the
            // router applied the new weight saw the previous one, so a few count on both
            // sides, and no user goes uncounted.
            assert!(f.on_users + f.off_users >= u64::from(DEFAULT_POPULATION));
            assert!(
                f.on_users + f.off_users <= u64::from(DEFAULT_POPULATION) + 200,
                "{f:?}"
            );
        }
        let on: Vec<u64> = c.iter().map(|f| f.on_users).collect();
        assert!(on.windows(2).all(|w| w[0] <= w[1]), "{key}: {on:?}");
        assert_eq!(on[3], u64::from(DEFAULT_POPULATION), "{key} at 100%");
    }
}

#[test]
fn the_canary_share_of_requests_is_the_share_of_users_the_first_followed_flag_puts_inside() {
    let p = plan(SEED_FLAGS);
    let users = Users::for_plan(&p).expect("the plan has flags");
    // The first flag by key that follows the rollout decides the cohort.
    assert_eq!(users.cohort_salt(), "phase8_analytics_persistence_enabled");
    let s = run(&p, 2);
    let population = f64::from(DEFAULT_POPULATION);
    for (st, weight) in s.stages.iter().zip(WEIGHTS) {
        let canary = st.metrics_by_scope.canary.requests as f64;
        let stable = st.metrics_by_scope.stable.requests as f64;
        let share = canary / (canary + stable);
        let users_in = inside(users.cohort_salt(), weight) as f64 / population;
        // Requests come from users drawn uniformly, so the request share is the users' share
        // up to the sampling of 75,000 requests (and the second at the previous weight).
        assert!(
            (share - users_in).abs() < 0.01,
            "stage {}: canary share {share:.4}, users inside {users_in:.4}",
            st.index
        );
        let w = weight / 100.0;
        assert!(
            (share - w).abs() < four_sd(w, population) / population + 0.01,
            "stage {}: canary share {share:.4} at {weight}%",
            st.index
        );
    }
}

#[test]
fn no_user_flips_back_and_the_simulation_places_users_as_the_ofrep_server_does() {
    let p = plan(SEED_FLAGS);
    let users = Users::for_plan(&p).expect("the plan has flags");
    assert_eq!(users.size(), DEFAULT_POPULATION);
    let flags = p.flags.flags();
    let keys: Vec<&str> = users.flag_keys().collect();
    assert_eq!(
        keys,
        flags.iter().map(|f| f.key()).collect::<Vec<_>>(),
        "the population indexes flags in the plan's key order"
    );
    // Every basis point from 0 to 100 % would be 2.5 × 10⁷ checks; every 25 bp and the
    // plan's weights cover each user's bucket boundary to within a quarter of a percent.
    let mut grid: Vec<u16> = (0..=400).map(|i| i * 25).collect();
    grid.extend([1, 499, 501, 2_499, 2_501, 4_999, 5_001, 9_999]);
    grid.sort_unstable();
    for n in 0..users.size() {
        let key = targeting_key(n);
        let mut was_canary = false;
        let mut was_on = vec![false; flags.len()];
        for &bp in &grid {
            let w = Weight::from_percent(f64::from(bp) / 100.0).unwrap();
            let canary = users.is_canary(n, w);
            assert!(!was_canary || canary, "{key} left the canary at {w}");
            was_canary = canary;
            for (i, flag) in flags.iter().enumerate() {
                let on = users.is_on(i, n, w).expect("every flag is enabled");
                assert!(!was_on[i] || on, "{key} lost {} at {w}", flag.key());
                was_on[i] = on;
                // The OFREP server's own evaluation of this user at this weight.
                let served = flag
                    .evaluate(Some(u32::from(bp)), Some(&key))
                    .unwrap()
                    .variant
                    .unwrap()
                    .name()
                    .to_string();
                assert_eq!(
                    on,
                    served == "on",
                    "{key}: {} at {w}: simulation {on}, server {served}",
                    flag.key()
                );
            }
        }
        assert!(was_canary, "{key} is in the canary at 100%");
    }
}

#[test]
fn flags_salted_with_one_salt_are_on_for_exactly_the_canary_users() {
    let salted = SEED_FLAGS.replace(
        "follow = \"rollout\"",
        "follow = \"rollout\"\nsalt = \"phase8-canary-20251006\"",
    );
    let p = plan(&salted);
    let users = Users::for_plan(&p).unwrap();
    assert_eq!(users.cohort_salt(), "phase8-canary-20251006");
    let s = run(&p, 3);
    for stage in 1..=WEIGHTS.len() {
        let on: Vec<u64> = s
            .flags
            .iter()
            .filter(|f| f.stage == stage)
            .map(|f| f.on_users)
            .collect();
        assert_eq!(on.len(), 3);
        assert!(on.iter().all(|&u| u == on[0]), "stage {stage}: {on:?}");
        assert_eq!(on[0], inside("phase8-canary-20251006", WEIGHTS[stage - 1]));
    }
}

#[test]
fn fixed_static_and_disabled_flags_are_counted_by_their_own_rules() {
    let flags = r##"
[flags.banner]
variants = { blue = "#00f", red = "#f00" }
default_variant = "red"
on_variant = "blue"
weight = 10

[flags.kill_switch]
variants = { on = true, off = false }
default_variant = "off"

[flags.paused]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
follow = "rollout"
enabled = false
"##;
    let p = plan(flags);
    let users = Users::for_plan(&p).unwrap();
    // `paused` is the only flag that follows the rollout: it decides the cohort even though
    // it is disabled, since its bucketing is defined all the same.
    assert_eq!(users.cohort_salt(), "paused");
    let s = run(&p, 4);
    let population = u64::from(DEFAULT_POPULATION);
    for f in counts(&s, "banner") {
        assert_eq!(f.weight, 10.0, "a fixed weight is the flag's own");
        assert_eq!(f.on_users, inside("banner", 10.0));
        assert_eq!(f.on_users + f.off_users, population);
    }
    for f in counts(&s, "kill_switch") {
        assert_eq!(f.weight, 0.0);
        assert_eq!((f.on_users, f.off_users), (0, population));
    }
    for (i, f) in counts(&s, "paused").iter().enumerate() {
        assert_eq!(f.weight, WEIGHTS[i]);
        assert_eq!(
            (f.on_users, f.off_users),
            (0, 0),
            "a disabled flag serves nobody"
        );
    }
}

#[test]
fn without_a_followed_flag_users_are_routed_by_the_deployment_id() {
    let flags = r##"
[flags.banner]
variants = { blue = "#00f", red = "#f00" }
default_variant = "red"
on_variant = "blue"
weight = 10
"##;
    let p = plan(flags);
    let users = Users::for_plan(&p).unwrap();
    assert_eq!(users.cohort_salt(), "phase8-canary-20251006");
    assert!(
        Users::for_plan(&plan("")).is_none(),
        "no flags, no population"
    );
    let small = Users::with_size(&p, 10).unwrap();
    assert_eq!(small.size(), 10);
    assert_eq!(small.cohort_salt(), users.cohort_salt());
}

#[test]
fn the_same_seed_gives_byte_identical_summaries_and_users_do_not_depend_on_the_seed() {
    let p = plan(SEED_FLAGS);
    let a = run(&p, 7);
    let b = run(&p, 7);
    let c = run(&p, 8);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert_ne!(a.totals, c.totals, "another seed draws other requests");
    // Who is inside depends on the targeting keys, not on the seed; with every user seen,
    // the on counts are the same whatever the seed.
    let on = |s: &Summary| s.flags.iter().map(|f| f.on_users).collect::<Vec<_>>();
    assert_eq!(on(&a), on(&c));
}

#[test]
fn a_plan_without_flags_reports_no_flags() {
    let s = run(&plan(""), 1);
    assert!(s.flags.is_empty());
    assert!(serde_json::to_string(&s).unwrap().contains("\"flags\":[]"));
}

#[test]
fn a_rollback_counts_the_users_reached_until_it() {
    let fault = r#"
[[simulation.faults]]
cohort = "canary"
at = "15m"
error_rate = "5%"
"#;
    let p = plan(&format!("{fault}\n{SEED_FLAGS}"));
    let s = run(&p, 5);
    assert_eq!(s.outcome.key(), "rolled_back");
    let rb = s.rollback.as_ref().unwrap();
    assert_eq!(rb.stage, 2);
    assert_eq!(s.flags.len(), 2 * 3, "stages 1 and 2, three flags each");
    for f in s.flags.iter().filter(|f| f.stage == 2) {
        assert_eq!(f.weight, 25.0);
        let window = rb.initiated_s - 600.0;
        assert!((f.window_s - window).abs() < 1e-9, "{f:?} vs {rb:?}");
        assert!(f.window_s < 600.0);
    }
}
