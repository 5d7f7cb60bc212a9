//! The aggregated and per-request samplers agree in distribution (issue 18): over many seeds,
//! the same plan run by each gives stage metrics, gate decisions, detection delays and
//! rollback and rehearsal timings that stated two-sample tests at α = 0.001 cannot tell
//! apart, while the same tests reject a sampler that draws latencies 5 % too high or errors
//! 20 % too often (each test shows it on a deliberately biased run: the plan's latencies or
//! error rates scaled, which is what such a sampler would produce).
//!
//! The tests: two-sample Kolmogorov–Smirnov on per-run numbers (reject when
//! `D > c(α)·√((n+m)/(nm))`, `c(0.001) = √(−ln(α/2)/2) = 1.9495`; conservative for the
//! discrete values here, which only makes a rejection of the unbiased pair less likely), and
//! chi-square on outcome counts (a 2×k table, cells pooled to an expected 5, critical value at
//! 1 − α). Seeds are fixed, so every run of this file decides the same way; the plans are
//! small (minutes of plan time at 100 requests per second) so that 150 seeds per sampler stay
//! within seconds.

use ramp_core::summary::{Outcome, Summary};
use ramp_core::{Plan, SamplingMethod};
use ramp_sim::Options;
use std::sync::Arc;

/// Seeds per sampler and variant.
const SEEDS: u64 = 150;

/// `c(α)` of the two-sample Kolmogorov–Smirnov test at α = 0.001.
const KS_C: f64 = 1.949_5;

/// Runs `plan` under seeds `1..=SEEDS` with `method`.
fn runs(plan: &Arc<Plan>, method: SamplingMethod) -> Vec<Summary> {
    let options = Options {
        sampler: Some(method),
    };
    (1..=SEEDS)
        .map(|seed| ramp_sim::simulate_with(Arc::clone(plan), seed, options, &mut |_| {}).unwrap())
        .collect()
}

/// The two-sample Kolmogorov–Smirnov statistic and its critical value at α = 0.001.
fn ks(a: &[f64], b: &[f64]) -> (f64, f64) {
    assert!(!a.is_empty() && !b.is_empty(), "nothing to compare");
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let mut d: f64 = 0.0;
    for x in a.iter().chain(&b) {
        let fa = a.partition_point(|v| v <= x) as f64 / n;
        let fb = b.partition_point(|v| v <= x) as f64 / m;
        d = d.max((fa - fb).abs());
    }
    (d, KS_C * ((n + m) / (n * m)).sqrt())
}

/// Whether the chi-square test of a 2×k table of counts rejects at α = 0.001, with the
/// statistic and its critical value. Categories are pooled, in order, until each pooled
/// cell expects at least 5 in both rows.
fn chi_square(a: &[u64], b: &[u64]) -> (f64, f64) {
    let (na, nb) = (a.iter().sum::<u64>() as f64, b.iter().sum::<u64>() as f64);
    let mut cells: Vec<(f64, f64)> = Vec::new();
    let (mut x, mut y) = (0.0, 0.0);
    for (&p, &q) in a.iter().zip(b) {
        x += p as f64;
        y += q as f64;
        let col = x + y;
        if col * na.min(nb) / (na + nb) >= 5.0 {
            cells.push((x, y));
            x = 0.0;
            y = 0.0;
        }
    }
    if x + y > 0.0 {
        match cells.last_mut() {
            Some(last) => {
                last.0 += x;
                last.1 += y;
            }
            None => cells.push((x, y)),
        }
    }
    let mut stat = 0.0;
    for &(p, q) in &cells {
        let col = p + q;
        for (obs, row) in [(p, na), (q, nb)] {
            let exp = col * row / (na + nb);
            if exp > 0.0 {
                stat += (obs - exp) * (obs - exp) / exp;
            }
        }
    }
    let df = cells.len().saturating_sub(1);
    // The chi-square quantile at 0.999: tabulated for small df, Wilson–Hilferty beyond.
    let critical = match df {
        0 => f64::INFINITY,
        1 => 10.828,
        2 => 13.816,
        3 => 16.266,
        4 => 18.467,
        k => {
            let k = k as f64;
            k * (1.0 - 2.0 / (9.0 * k) + 3.090_232 * (2.0 / (9.0 * k)).sqrt()).powi(3)
        }
    };
    (stat, critical)
}

/// Asserts that `a` and `b` look alike (KS) and that `biased` is told apart from `a`.
fn alike_but_not_biased(what: &str, a: &[f64], b: &[f64], biased: &[f64]) {
    let (d, crit) = ks(a, b);
    let (d_biased, _) = ks(a, biased);
    eprintln!("{what}: KS D {d:.3} between the samplers, {d_biased:.3} against the bias (critical {crit:.3})");
    assert!(
        d <= crit,
        "{what}: the samplers differ (KS D {d:.3} > {crit:.3})"
    );
    let (d, crit) = ks(a, biased);
    assert!(
        d > crit,
        "{what}: the test cannot see the deliberate bias (KS D {d:.3} ≤ {crit:.3})"
    );
}

/// A two-stage plan (20 % then 100 %, ten minutes each) at 100 requests per second with one
/// feature and the load term, latencies scaled by `lat` and error rates by `err`. The error
/// gate warns at about the canary's final error rate, so that half of the runs end with
/// caveats: a decision that a biased sampler shifts. With `rehearsal`, a latency fault of
/// 3 s (scaled too) on half the canary's requests is rehearsed at T+5m.
fn stages_plan(lat: f64, err: f64, rehearsal: bool) -> Arc<Plan> {
    let mut text = format!(
        r#"
[deployment]
id = "equivalence"
service = "s"
environment = "test"

[gates]
window = "2m"
min_samples = 100
p95_ms = {{ max = 2000 }}
error_rate = {{ max = "20%", warn = "1.5%" }}

[[stages]]
weight = 20
duration = "10m"
checkpoint = "5m"

[[stages]]
weight = 100
duration = "10m"
checkpoint = "5m"

[simulation]
rps = 100
stable = {{ p50_ms = {p50}, p95_ms = {p95}, p99_ms = {p99}, error_rate = {e0} }}
features = [{{ name = "f", latency = "+4%", error_rate = {e1} }}]
load = {{ contention = 0.5 }}
"#,
        p50 = 100.0 * lat,
        p95 = 250.0 * lat,
        p99 = 500.0 * lat,
        e0 = 0.01 * err,
        e1 = 0.005 * err,
    );
    if rehearsal {
        text.push_str(&format!(
            r#"
[[rehearsals]]
name = "slow canary"
at = "5m"
fault = {{ cohort = "canary", fraction = 0.5, add_latency = "{}ms", duration = "3m" }}
target = "120s"
"#,
            (3000.0 * lat).round()
        ));
    }
    Arc::new(ramp_core::parse_plan(&text, "equivalence.toml").unwrap())
}

/// A plan whose canary starts failing 4 % of its requests (scaled by `err`) at T+5m and is
/// rolled back, with latencies scaled by `lat`: detection delay and recovery.
fn fault_plan(lat: f64, err: f64) -> Arc<Plan> {
    let text = format!(
        r#"
[deployment]
id = "equivalence-fault"
service = "s"
environment = "test"

[gates]
window = "1m"
min_samples = 100
error_rate = {{ max = "2%" }}

[[stages]]
weight = 50
duration = "15m"
checkpoint = "5m"

[[stages]]
weight = 100
duration = "5m"
checkpoint = "5m"

[simulation]
rps = 100
stable = {{ p50_ms = {p50}, p95_ms = {p95}, p99_ms = {p99}, error_rate = {e0} }}

[[simulation.faults]]
cohort = "canary"
at = "5m"
error_rate = {e1}
"#,
        p50 = 100.0 * lat,
        p95 = 250.0 * lat,
        p99 = 500.0 * lat,
        e0 = 0.005 * err,
        e1 = 0.04 * err,
    );
    Arc::new(ramp_core::parse_plan(&text, "equivalence-fault.toml").unwrap())
}

/// One metric of a stage.
type Pick = fn(&ramp_core::summary::Metrics) -> Option<f64>;

/// One number per run.
fn each(runs: &[Summary], f: impl Fn(&Summary) -> Option<f64>) -> Vec<f64> {
    runs.iter().filter_map(f).collect()
}

#[test]
fn stage_metrics_and_decisions_agree_and_a_biased_sampler_is_caught() {
    let request = runs(&stages_plan(1.0, 1.0, false), SamplingMethod::PerRequest);
    let aggregated = runs(&stages_plan(1.0, 1.0, false), SamplingMethod::Aggregated);
    let slower = runs(&stages_plan(1.05, 1.0, false), SamplingMethod::Aggregated);
    let failing = runs(&stages_plan(1.0, 1.2, false), SamplingMethod::Aggregated);

    let metric = |stage: usize, pick: Pick| {
        move |s: &Summary| s.stages.get(stage).and_then(|st| pick(&st.metrics))
    };
    let quantiles: [(usize, &str, Pick); 4] = [
        (0, "stage 1 canary p50", |m| m.p50_ms),
        (0, "stage 1 canary p95", |m| m.p95_ms),
        (1, "stage 2 canary p95", |m| m.p95_ms),
        (1, "stage 2 canary p99", |m| m.p99_ms),
    ];
    for (stage, name, pick) in quantiles {
        alike_but_not_biased(
            name,
            &each(&request, metric(stage, pick)),
            &each(&aggregated, metric(stage, pick)),
            &each(&slower, metric(stage, pick)),
        );
    }
    for (stage, name) in [
        (0, "stage 1 canary error rate"),
        (1, "stage 2 canary error rate"),
    ] {
        let pick = metric(stage, |m| m.error_rate);
        alike_but_not_biased(
            name,
            &each(&request, pick),
            &each(&aggregated, pick),
            &each(&failing, pick),
        );
    }
    // Requests and the feature's attributed milliseconds (the aggregated sampler sums each
    // bucket's requests at the bucket's mean): per run, over both stages.
    let requests = |s: &Summary| Some(s.totals.canary_requests as f64);
    let (d, crit) = ks(&each(&request, requests), &each(&aggregated, requests));
    assert!(d <= crit, "canary requests: KS D {d:.3} > {crit:.3}");
    let added = |s: &Summary| s.features.first().map(|f| f.mean_added_ms);
    alike_but_not_biased(
        "feature mean added ms",
        &each(&request, added),
        &each(&aggregated, added),
        &each(&slower, added),
    );

    // The decision at the end: about half the runs warn on the error rate.
    let outcomes = |runs: &[Summary]| -> Vec<u64> {
        [
            Outcome::Promoted,
            Outcome::PromotedWithCaveats,
            Outcome::RolledBack,
            Outcome::Halted,
        ]
        .iter()
        .map(|o| runs.iter().filter(|s| s.outcome == *o).count() as u64)
        .collect()
    };
    let (a, b, c) = (
        outcomes(&request),
        outcomes(&aggregated),
        outcomes(&failing),
    );
    assert!(
        a[0] > 20 && a[1] > 20,
        "the plan should split its outcomes: {a:?}"
    );
    let (stat, crit) = chi_square(&a, &b);
    assert!(
        stat <= crit,
        "outcomes differ: {a:?} vs {b:?} (χ² {stat:.1} > {crit:.1})"
    );
    let (stat, crit) = chi_square(&a, &c);
    assert!(
        stat > crit,
        "the biased outcomes pass: {a:?} vs {c:?} (χ² {stat:.1})"
    );
}

#[test]
fn detection_and_recovery_after_a_fault_agree_and_a_biased_sampler_is_caught() {
    let request = runs(&fault_plan(1.0, 1.0), SamplingMethod::PerRequest);
    let aggregated = runs(&fault_plan(1.0, 1.0), SamplingMethod::Aggregated);
    let failing = runs(&fault_plan(1.0, 1.2), SamplingMethod::Aggregated);
    for set in [&request, &aggregated] {
        let rolled = set
            .iter()
            .filter(|s| s.outcome == Outcome::RolledBack)
            .count();
        assert!(
            rolled as u64 > SEEDS * 9 / 10,
            "the fault is caught: {rolled}"
        );
    }
    let delay = |s: &Summary| {
        let r = s.rollback.as_ref()?;
        Some(r.detection_s - r.fault_onset_s?)
    };
    alike_but_not_biased(
        "detection delay",
        &each(&request, delay),
        &each(&aggregated, delay),
        &each(&failing, delay),
    );
    // Restoration is judged on the last ten seconds of both cohorts against the five minutes
    // before the fault (the aggregated ring thins its oldest tick to the seconds asked for).
    let restore = |s: &Summary| {
        let r = s.rollback.as_ref()?;
        Some(r.restoration_s? - r.rollback_s)
    };
    let (d, crit) = ks(&each(&request, restore), &each(&aggregated, restore));
    assert!(
        d <= crit,
        "restoration after the drain: KS D {d:.3} > {crit:.3}"
    );
    // The drain: the router's delay, then the canary's last request (the bias check is the
    // rehearsal's, whose slowed requests make the drain long enough to measure).
    let drain = |s: &Summary| {
        let r = s.rollback.as_ref()?;
        Some(r.rollback_s - r.initiated_s)
    };
    let (d, crit) = ks(&each(&request, drain), &each(&aggregated, drain));
    assert!(
        d <= crit,
        "drain after the rollback: KS D {d:.3} > {crit:.3}"
    );
}

#[test]
fn rehearsal_timings_agree_and_a_biased_sampler_is_caught() {
    let request = runs(&stages_plan(1.0, 1.0, true), SamplingMethod::PerRequest);
    let aggregated = runs(&stages_plan(1.0, 1.0, true), SamplingMethod::Aggregated);
    let slower = runs(&stages_plan(1.05, 1.0, true), SamplingMethod::Aggregated);
    let timing = |pick: fn(&ramp_core::summary::RehearsalSummary) -> Option<f64>| {
        move |s: &Summary| s.rehearsals.first().and_then(pick)
    };
    for set in [&request, &aggregated] {
        assert!(
            set.iter()
                .all(|s| s.rehearsals[0].outcome.key() == "rolled_back"),
            "every rehearsal is caught and restored"
        );
    }
    let detection = timing(|r| Some(r.detection_s? - r.fault_onset_s));
    let (d, crit) = ks(&each(&request, detection), &each(&aggregated, detection));
    assert!(d <= crit, "rehearsal detection: KS D {d:.3} > {crit:.3}");
    // The drain waits for the canary's requests already slowed by 3 s: the latest completion
    // among them, which the aggregated sampler draws from the buckets it drew.
    let drain = timing(|r| Some(r.rollback_s? - r.initiated_s?));
    alike_but_not_biased(
        "rehearsal drain",
        &each(&request, drain),
        &each(&aggregated, drain),
        &each(&slower, drain),
    );
    let recovery = timing(|r| r.total_recovery_s);
    let (d, crit) = ks(&each(&request, recovery), &each(&aggregated, recovery));
    assert!(
        d <= crit,
        "rehearsal total recovery: KS D {d:.3} > {crit:.3}"
    );
}

#[test]
fn each_sampler_gives_the_same_bytes_for_the_same_seed() {
    for method in [SamplingMethod::PerRequest, SamplingMethod::Aggregated] {
        let plan = stages_plan(1.0, 1.0, true);
        let options = Options {
            sampler: Some(method),
        };
        let once = |seed| {
            serde_json::to_string(
                &ramp_sim::simulate_with(Arc::clone(&plan), seed, options, &mut |_| {}).unwrap(),
            )
            .unwrap()
        };
        assert_eq!(once(5), once(5), "{method:?}");
        assert_ne!(once(5), once(6), "{method:?}");
    }
}

#[test]
fn the_tests_themselves_accept_equal_samples_and_reject_different_ones() {
    let a: Vec<f64> = (0..200).map(|i| f64::from(i) / 200.0).collect();
    let shifted: Vec<f64> = a.iter().map(|x| x + 0.3).collect();
    assert!(ks(&a, &a).0 == 0.0);
    let (d, crit) = ks(&a, &shifted);
    assert!(d > crit, "{d} {crit}");
    let (stat, crit) = chi_square(&[50, 50, 0, 0], &[52, 48, 0, 0]);
    assert!(stat < crit, "{stat}");
    let (stat, crit) = chi_square(&[90, 10, 0, 0], &[40, 60, 0, 0]);
    assert!(stat > crit, "{stat}");
}
