//! The staging report's staging canary, simulated end to end from `examples/phase8-staging.toml`: the
//! shape of the outcome, the load term, the feature attribution and the rehearsal timing.

use ramp_core::summary::{Decision, Outcome};
use std::path::Path;
use std::sync::Arc;

fn staging() -> Arc<ramp_core::Plan> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/phase8-staging.toml");
    Arc::new(ramp_core::load_plan(&path).expect("the example plan is valid"))
}

#[test]
fn the_staging_example_comes_out_in_the_seed_shape() {
    let s = ramp_sim::simulate(staging(), 1, &mut |_| {}).unwrap();
    let decisions: Vec<_> = s.stages.iter().map(|s| s.decision).collect();
    assert_eq!(
        decisions,
        vec![
            Some(Decision::Proceed),
            Some(Decision::Proceed),
            Some(Decision::Proceed),
            Some(Decision::Monitor)
        ]
    );
    assert_eq!(s.outcome, Outcome::PromotedWithCaveats);

    // The load term: the canary's median climbs with its share, as in the staging report's tables,
    // from about 2% over the stable 145 ms at 5% to the features' full 13.6% at 100%.
    let p50: Vec<f64> = s
        .stages
        .iter()
        .map(|st| st.metrics.p50_ms.unwrap())
        .collect();
    assert!(p50.windows(2).all(|w| w[0] <= w[1]), "{p50:?}");
    assert!((145.0..=152.0).contains(&p50[0]), "{p50:?}");
    assert!((161.0..=168.0).contains(&p50[3]), "{p50:?}");

    // The caveat is the P99 warn of stage 4, measured near 720 × 1.136 ms.
    let p99 = s.stages[3]
        .gates
        .iter()
        .find(|g| g.metric.key() == "p99_ms")
        .unwrap();
    assert!((805.0..=835.0).contains(&p99.observed.unwrap()), "{p99:?}");

    // Each feature's measured impact is its configured overhead scaled by the share it ran
    // at; the run is dominated by stage 4, so it lands a little under the configured value.
    for f in &s.features {
        let ratio = f.latency_impact / f.configured_latency;
        assert!((0.90..=1.0).contains(&ratio), "{}: {ratio}", f.name);
        assert!(f.requests > 10_000_000);
    }

    // The rehearsal: detected within seconds, rolled back, restored well under 120 s.
    let r = &s.rehearsals[0];
    assert_eq!(r.outcome.key(), "rolled_back");
    let detection = r.detection_s.unwrap() - r.fault_onset_s;
    assert!((1.0..=15.0).contains(&detection), "{detection}");
    assert!(r.rollback_s.unwrap() > r.initiated_s.unwrap());
    assert!(r.restoration_s.unwrap() >= r.rollback_s.unwrap());
    assert!(r.total_recovery_s.unwrap() < 60.0, "{r:?}");
    // The main timeline was untouched by the rehearsal's fork.
    assert!(s.rollback.is_none());
}

#[test]
fn the_same_seed_gives_the_same_summary_and_another_seed_the_same_decisions() {
    let a = ramp_sim::simulate(staging(), 11, &mut |_| {}).unwrap();
    let b = ramp_sim::simulate(staging(), 11, &mut |_| {}).unwrap();
    let c = ramp_sim::simulate(staging(), 12, &mut |_| {}).unwrap();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert_ne!(a.totals, c.totals);
    let decisions = |s: &ramp_core::summary::Summary| -> Vec<_> {
        s.stages.iter().map(|st| st.decision).collect()
    };
    assert_eq!(decisions(&a), decisions(&c));
    assert_eq!(a.outcome, c.outcome);
}

#[test]
fn report_queries_are_not_invented_in_simulation() {
    let mut plan = (*staging()).clone();
    plan.report_queries = vec![ramp_core::ReportQuery {
        name: "CPU".into(),
        query: "sum(rate(process_cpu_seconds_total[1m]))".into(),
        unit: Some("cores".into()),
        scale: 1.0,
    }];
    let s = ramp_sim::simulate(Arc::new(plan), 1, &mut |_| {}).unwrap();
    // No Prometheus, no numbers: the infrastructure impact is empty, and the timeline says
    // why instead of leaving the reader to wonder.
    assert!(s.infrastructure.is_empty(), "{:#?}", s.infrastructure);
    assert!(
        s.timeline.iter().any(|e| e
            .message
            .starts_with("Report queries not sampled (CPU): they read Prometheus")),
        "{:#?}",
        s.timeline
    );
}

/// A study's runs share their bucket tables; each run must still come out byte for byte as it
/// does alone, whichever run built the tables it draws from.
#[test]
fn runs_sharing_bucket_tables_come_out_as_runs_alone() {
    let plan = staging();
    let options = ramp_sim::Options::default();
    let alone = |seed| {
        serde_json::to_string(
            &ramp_sim::simulate_with(Arc::clone(&plan), seed, options, &mut |_| {}).unwrap(),
        )
        .unwrap()
    };
    let tables = Arc::new(ramp_sim::TableCache::default());
    let shared = |seed| {
        serde_json::to_string(
            &ramp_sim::simulate_sharing(
                Arc::clone(&plan),
                seed,
                options,
                Some(Arc::clone(&tables)),
                &mut |_| {},
            )
            .unwrap(),
        )
        .unwrap()
    };
    // Seed 21 builds the tables; seed 22 only reads them, and seed 21 again reads its own.
    let (a, b, a_again) = (shared(21), shared(22), shared(21));
    assert!(!tables.is_empty(), "the runs built no shared table");
    assert_eq!(a, alone(21));
    assert_eq!(b, alone(22));
    assert_eq!(a_again, a);
}
