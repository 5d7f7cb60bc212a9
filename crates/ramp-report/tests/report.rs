//! Report tests on summaries built by hand: a four-stage rollout promoted with caveats, one
//! rolled back in stage 2, and one halted because the canary received no traffic.

use ramp_core::summary::{
    ApprovalSummary, BaselineSummary, CheckSummary, CheckpointSummary, Confidence, Decision,
    FeatureSummary, FlagUsageSummary, GateResult, GateStatus, InfraSummary, MemberStageSummary,
    Metrics, Outcome, RehearsalOutcome, RehearsalSummary, RollbackTiming, Sampling, ScopedMetrics,
    StageSummary, Summary, TimelineEvent, Totals,
};
use ramp_core::{Metric, SamplingMethod, Scope};

/// Metrics with every value given.
fn m(p50: f64, p95: f64, p99: f64, err: f64, rps: f64, requests: u64) -> Metrics {
    Metrics {
        p50_ms: Some(p50),
        p95_ms: Some(p95),
        p99_ms: Some(p99),
        error_rate: Some(err),
        throughput_rps: Some(rps),
        requests,
    }
}

/// Metrics of a span without requests.
fn empty() -> Metrics {
    Metrics::default()
}

/// Scoped metrics, with the headline built the way `ScopedMetrics::headline` builds it.
fn scoped(canary: Metrics, stable: Metrics, service: Metrics) -> (Metrics, ScopedMetrics) {
    let s = ScopedMetrics {
        canary,
        stable,
        service,
    };
    (s.headline(), s)
}

/// A gate result; `max` for ceilings, `min` for floors.
#[allow(clippy::too_many_arguments)]
fn gate(
    metric: Metric,
    scope: Scope,
    max: Option<f64>,
    min: Option<f64>,
    warn: Option<f64>,
    observed: Option<f64>,
    status: GateStatus,
    span_s: f64,
) -> GateResult {
    GateResult {
        metric,
        scope,
        observed,
        max,
        min,
        warn,
        conservative: None,
        status,
        samples: if observed.is_some() { 5_000 } else { 0 },
        span_s,
        bucket: None,
    }
}

/// The five gates of a stage with the given levels, judged on `v` (canary) and `rps`
/// (service); statuses computed the way the engine does.
fn gates(
    levels: [(Option<f64>, Option<f64>); 4],
    v: &Metrics,
    rps: Option<f64>,
    span_s: f64,
) -> Vec<GateResult> {
    let metrics = [
        Metric::P50Ms,
        Metric::P95Ms,
        Metric::P99Ms,
        Metric::ErrorRate,
    ];
    let mut out: Vec<GateResult> = metrics
        .iter()
        .zip(levels)
        .map(|(&metric, (max, warn))| {
            let observed = v.get(metric);
            let status = match observed {
                None => GateStatus::NoData,
                Some(o) if max.is_some_and(|x| o > x) => GateStatus::Fail,
                Some(o) if warn.is_some_and(|x| o > x) => GateStatus::Warn,
                Some(_) => GateStatus::Pass,
            };
            gate(
                metric,
                Scope::Canary,
                max,
                None,
                warn,
                observed,
                status,
                span_s,
            )
        })
        .collect();
    out.push(gate(
        Metric::ThroughputRps,
        Scope::Service,
        None,
        Some(50.0),
        None,
        rps,
        if rps.is_some() {
            GateStatus::Pass
        } else {
            GateStatus::NoData
        },
        span_s,
    ));
    out
}

/// Checkpoints every `every` seconds over a stage, with canary values from `canary(i)` and
/// the stable and service numbers held at the baseline.
fn checkpoints(
    start: f64,
    every: f64,
    n: usize,
    levels: [(Option<f64>, Option<f64>); 4],
    canary: impl Fn(usize) -> Metrics,
) -> Vec<CheckpointSummary> {
    (0..n)
        .map(|i| {
            let c = canary(i);
            let (metrics, by_scope) = scoped(
                c,
                m(145.0, 385.0, 720.0, 0.0028, 120.0, 400_000),
                m(150.0, 390.0, 730.0, 0.0030, 125.0 + i as f64, 450_000),
            );
            CheckpointSummary {
                t_s: start + every * (i + 1) as f64,
                metrics,
                metrics_by_scope: by_scope,
                gates: gates(levels, &c, by_scope.service.throughput_rps, 300.0),
            }
        })
        .collect()
}

/// One stage.
#[allow(clippy::too_many_arguments)]
fn stage(
    index: usize,
    weight: f64,
    started_s: f64,
    planned: f64,
    elapsed: f64,
    every: f64,
    decision: Decision,
    confidence: Confidence,
    reasons: &[&str],
    canary: Metrics,
    levels: [(Option<f64>, Option<f64>); 4],
    cps: Vec<CheckpointSummary>,
) -> StageSummary {
    let (metrics, by_scope) = scoped(
        canary,
        m(
            145.0,
            385.0,
            720.0,
            0.0028,
            120.0 * (1.0 - weight / 100.0),
            1_000,
        ),
        m(150.0, 390.0, 730.0, 0.0030, 131.6, 2_000),
    );
    StageSummary {
        index,
        weight,
        planned_duration_s: planned,
        started_s,
        elapsed_s: elapsed,
        unobserved_s: 0.0,
        checkpoint_s: every,
        decision: Some(decision),
        confidence,
        reasons: reasons.iter().map(|r| r.to_string()).collect(),
        metrics,
        metrics_by_scope: by_scope,
        gates: gates(levels, &canary, by_scope.service.throughput_rps, elapsed),
        checkpoints: cps,
        tests: vec![],
        queries: vec![],
        members: vec![],
    }
}

/// The staging report's baseline: 145/385/720 ms, 0.28 %, 125 req/s.
fn baseline() -> BaselineSummary {
    BaselineSummary {
        source: "plan".into(),
        metrics: m(145.0, 385.0, 720.0, 0.0028, 125.0, 0),
    }
}

const LOOSE: [(Option<f64>, Option<f64>); 4] = [
    (Some(200.0), None),
    (Some(500.0), None),
    (Some(1000.0), None),
    (Some(0.01), None),
];
const TIGHT: [(Option<f64>, Option<f64>); 4] = [
    (Some(200.0), None),
    (Some(450.0), None),
    (Some(900.0), None),
    (Some(0.008), None),
];
const FINAL: [(Option<f64>, Option<f64>); 4] = [
    (Some(200.0), None),
    (Some(500.0), None),
    (Some(900.0), Some(800.0)),
    (Some(0.008), Some(0.005)),
];

/// The staging report's shape: four stages, stage 4 over the P99 warn level, one rehearsal.
fn caveats() -> Summary {
    let s1 = stage(
        1,
        5.0,
        0.0,
        3600.0,
        3600.0,
        900.0,
        Decision::Proceed,
        Confidence::High,
        &["Every gate passed on the stage's data."],
        m(149.0, 395.0, 742.0, 0.0032, 6.2, 22_500),
        LOOSE,
        checkpoints(0.0, 900.0, 4, LOOSE, |i| {
            m(148.0 + i as f64, 392.0, 735.0, 0.0031, 6.2, 5_600)
        }),
    );
    let s2 = stage(
        2,
        25.0,
        3600.0,
        7200.0,
        7200.0,
        1800.0,
        Decision::Proceed,
        Confidence::High,
        &["Every gate passed on the stage's data."],
        m(152.0, 401.0, 755.0, 0.0035, 31.0, 225_000),
        LOOSE,
        checkpoints(3600.0, 1800.0, 4, LOOSE, |i| {
            m(151.0 + i as f64, 398.0, 748.0, 0.0033, 31.0, 56_000)
        }),
    );
    let s3 = stage(
        3,
        50.0,
        10_800.0,
        14_400.0,
        14_400.0,
        3600.0,
        Decision::Proceed,
        Confidence::High,
        &["Every gate passed on the stage's data."],
        m(157.0, 418.0, 790.0, 0.0039, 64.0, 900_000),
        TIGHT,
        checkpoints(10_800.0, 3600.0, 4, TIGHT, |i| {
            m(158.0, 415.0 + i as f64, 785.0, 0.0038, 64.0, 225_000)
        }),
    );
    let s4 = stage(
        4,
        100.0,
        25_200.0,
        86_400.0,
        86_400.0,
        3600.0,
        Decision::Monitor,
        Confidence::Medium,
        &["canary p99_ms 815 ms is over the 800 ms warn level (fail 900 ms)."],
        m(165.0, 433.0, 815.0, 0.0040, 131.6, 11_000_000),
        FINAL,
        checkpoints(25_200.0, 3600.0, 24, FINAL, |i| {
            let p99 = if i % 2 == 0 { 811.0 } else { 831.0 };
            m(164.0, 433.0, p99, 0.0041, 131.0, 470_000)
        }),
    );
    Summary {
        deployment_id: "phase8-canary-20251006".into(),
        service: "phase8".into(),
        environment: "staging".into(),
        start: Some("2025-10-06T18:00:00Z".into()),
        mode: "simulation".into(),
        seed: Some(42),
        sampling: Some(Sampling {
            method: SamplingMethod::Aggregated,
            step_s: Some(5.0),
            reason: "chosen automatically: no simulated users, so counts are drawn per tick".into(),
        }),
        outcome: Outcome::PromotedWithCaveats,
        evaluate_every_s: 5.0,
        baseline: baseline(),
        plan: vec![],
        stages: vec![s1, s2, s3, s4],
        rollback: None,
        rehearsals: vec![RehearsalSummary {
            name: "Simulated P95 breach".into(),
            outcome: RehearsalOutcome::RolledBack,
            stage: 4,
            reason: "canary p95_ms 850 ms > 500 ms over 5 min".into(),
            fault_onset_s: 43_200.0,
            detection_s: Some(43_202.0),
            initiated_s: Some(43_202.0),
            rollback_s: Some(43_208.0),
            restoration_s: Some(43_218.0),
            total_recovery_s: Some(18.0),
            target_s: 120.0,
            fault: "+800 ms on 50% of canary requests".into(),
            reference: m(150.0, 390.0, 730.0, 0.0030, 125.0, 37_500),
            degraded: Some(m(410.0, 850.0, 1450.0, 0.0031, 125.0, 3_000)),
        }],
        features: vec![
            feature("encryption", 0.035, 0.035, 5.4),
            feature("analytics persistence", 0.042, 0.042, 6.5),
            feature("gamification", 0.028, 0.028, 4.3),
            feature("authentication", 0.031, 0.031, 4.8),
        ],
        totals: Totals {
            requests: 13_950_000,
            canary_requests: 12_147_500,
            stable_requests: 1_802_500,
            errors: 55_000,
            duration_s: 111_600.0,
        },
        timeline: vec![
            event(0.0, "Stage 1 started at 5%."),
            event(3600.0, "Stage 1 ended: proceed."),
            event(3600.0, "Stage 2 started at 25%."),
            event(111_600.0, "Stage 4 ended: monitor. Promoted with caveats."),
        ],
        flags: Vec::new(),
        checks: Vec::new(),
        approvals: Vec::new(),
        next: None,
        infrastructure: Vec::new(),
    }
}

fn feature(name: &str, configured: f64, measured: f64, ms: f64) -> FeatureSummary {
    FeatureSummary {
        name: name.into(),
        configured_latency: configured,
        requests: 12_147_500,
        mean_added_ms: ms,
        latency_impact: measured,
        errors: 0,
    }
}

fn event(t_s: f64, message: &str) -> TimelineEvent {
    TimelineEvent {
        t_s,
        message: message.into(),
    }
}

/// A rollout whose canary error rate jumps to 3 % at T+90min: rolled back in stage 2.
fn rolled_back() -> Summary {
    let s1 = stage(
        1,
        5.0,
        0.0,
        3600.0,
        3600.0,
        900.0,
        Decision::Proceed,
        Confidence::High,
        &["Every gate passed on the stage's data."],
        m(149.0, 395.0, 742.0, 0.0032, 6.2, 22_500),
        LOOSE,
        checkpoints(0.0, 900.0, 4, LOOSE, |_| {
            m(148.0, 392.0, 735.0, 0.0031, 6.2, 5_600)
        }),
    );
    let mut s2 = stage(
        2,
        25.0,
        3600.0,
        7200.0,
        1804.0,
        1800.0,
        Decision::Rollback,
        Confidence::Low,
        &["canary error_rate 3.02% > 1.00% over 5 min."],
        m(152.0, 401.0, 755.0, 0.0095, 31.0, 56_000),
        LOOSE,
        checkpoints(3600.0, 1800.0, 1, LOOSE, |_| {
            m(151.0, 398.0, 748.0, 0.0033, 31.0, 56_000)
        }),
    );
    // After a rollback the stage's gates are the failing window evaluation.
    s2.gates = vec![
        gate(
            Metric::P95Ms,
            Scope::Canary,
            Some(500.0),
            None,
            None,
            Some(402.0),
            GateStatus::Pass,
            300.0,
        ),
        gate(
            Metric::ErrorRate,
            Scope::Canary,
            Some(0.01),
            None,
            None,
            Some(0.0302),
            GateStatus::Fail,
            300.0,
        ),
    ];
    s2.gates[1].conservative = Some(0.0281);
    Summary {
        deployment_id: "errors-at-90m".into(),
        service: "checkout".into(),
        environment: "staging".into(),
        start: None,
        mode: "simulation".into(),
        seed: Some(7),
        sampling: None,
        outcome: Outcome::RolledBack,
        evaluate_every_s: 5.0,
        baseline: baseline(),
        plan: vec![],
        stages: vec![s1, s2],
        rollback: Some(RollbackTiming {
            reason: "canary error_rate 3.02% > 1.00% over 5 min".into(),
            stage: 2,
            fault_onset_s: Some(5400.0),
            detection_s: 5404.0,
            initiated_s: 5404.0,
            rollback_s: 5405.5,
            restoration_s: Some(5460.0),
            total_recovery_s: Some(60.0),
        }),
        rehearsals: vec![],
        features: vec![],
        totals: Totals {
            requests: 680_000,
            canary_requests: 78_500,
            stable_requests: 601_500,
            errors: 2_400,
            duration_s: 5460.0,
        },
        timeline: vec![event(5404.0, "Rollback: canary error_rate 3.02% > 1.00%.")],
        flags: Vec::new(),
        checks: Vec::new(),
        approvals: Vec::new(),
        next: None,
        infrastructure: Vec::new(),
    }
}

/// A rollout whose canary never receives a request: halted in stage 1 on no data.
fn halted() -> Summary {
    let cps = (0..4)
        .map(|i| {
            let (metrics, by_scope) = scoped(
                empty(),
                m(145.0, 385.0, 720.0, 0.0028, 125.0, 112_500),
                m(145.0, 385.0, 720.0, 0.0028, 125.0, 112_500),
            );
            CheckpointSummary {
                t_s: 900.0 * (i + 1) as f64,
                metrics,
                metrics_by_scope: by_scope,
                gates: gates(LOOSE, &empty(), Some(125.0), 300.0),
            }
        })
        .collect();
    let mut s1 = stage(
        1,
        5.0,
        0.0,
        3600.0,
        3600.0,
        900.0,
        Decision::Halt,
        Confidence::Low,
        &["No canary requests in the stage: 0 of the 200 each gate needs."],
        empty(),
        LOOSE,
        cps,
    );
    s1.metrics_by_scope.canary = empty();
    s1.metrics = s1.metrics_by_scope.headline();
    Summary {
        deployment_id: "no-canary-traffic".into(),
        service: "search".into(),
        environment: "production".into(),
        start: None,
        mode: "live".into(),
        seed: None,
        sampling: None,
        outcome: Outcome::Halted,
        evaluate_every_s: 5.0,
        baseline: BaselineSummary {
            source: "measured".into(),
            metrics: m(145.0, 385.0, 720.0, 0.0028, 125.0, 450_000),
        },
        plan: vec![],
        stages: vec![s1],
        rollback: None,
        rehearsals: vec![],
        features: vec![],
        totals: Totals {
            requests: 450_000,
            canary_requests: 0,
            stable_requests: 450_000,
            errors: 1_260,
            duration_s: 3600.0,
        },
        timeline: vec![],
        flags: Vec::new(),
        checks: Vec::new(),
        approvals: Vec::new(),
        next: None,
        infrastructure: Vec::new(),
    }
}

/// Asserts that `text` contains `needle`, printing the report when it does not.
#[track_caller]
fn has(text: &str, needle: &str) {
    assert!(
        text.contains(needle),
        "report lacks {needle:?}\n----- report -----\n{text}"
    );
}

/// Asserts that no number in the report is an artefact of floating point.
#[track_caller]
fn clean(text: &str) {
    for bad in ["NaN", "inf ", "inf%", "-0.0", "-0 "] {
        assert!(!text.contains(bad), "report contains {bad:?}:\n{text}");
    }
}

const SECTIONS: [&str; 8] = [
    "## Executive summary",
    "## Deployment strategy",
    "## Timeline",
    "## Stages",
    "## Summary against baseline",
    "## Rollback scenarios tested",
    "## Decision matrix",
    "## Final verdict",
];

#[test]
fn caveats_report_has_every_section_in_order() {
    let r = ramp_report::markdown(&caveats());
    let mut at = 0;
    for section in SECTIONS
        .iter()
        .copied()
        .chain(["## Feature-specific performance"])
    {
        has(&r, section);
    }
    for section in [
        "# phase8 staging canary rollout — phase8-canary-20251006",
        "## Executive summary",
        "## Deployment strategy",
        "## Timeline",
        "### Stage 1: 5% traffic",
        "### Stage 4: 100% traffic",
        "## Summary against baseline",
        "## Feature-specific performance",
        "## Rollback scenarios tested",
        "## Decision matrix",
        "## Final verdict",
    ] {
        let pos = r[at..]
            .find(section)
            .unwrap_or_else(|| panic!("{section:?} missing or out of order:\n{r}"));
        at += pos;
    }
    clean(&r);
}

#[test]
fn caveats_header_and_summary_come_from_the_data() {
    let r = ramp_report::markdown(&caveats());
    has(&r, "**Deployment ID:** phase8-canary-20251006");
    has(&r, "**Environment:** Staging");
    has(&r, "**Start:** 2025-10-06 18:00:00 UTC");
    has(&r, "**Mode:** Simulation (seed 42)");
    has(
        &r,
        "**Sampling:** aggregated per 5 s (chosen automatically: no simulated users, so counts are drawn per tick; a seed reproduces a run with the same sampler)",
    );
    has(&r, "**Status:** ⚠️ PROMOTED WITH CAVEATS");
    has(
        &r,
        "Service `phase8` was rolled out to staging as a canary in simulation (seed 42).",
    );
    has(&r, "All 4 stages ran (5% → 25% → 50% → 100%) over 31 h");
    has(
        &r,
        "**Run ended:** 2025-10-08 01:00:00 UTC (T+31h00m) — 31 h of plan time",
    );
    has(&r, "serving 13,950,000 requests (12,147,500 to the canary");
    has(&r, "55,000 errors, 0.39%");
    has(
        &r,
        "over the warn level: P99 latency 815 ms in stage 4 (level 800 ms)",
    );
    has(
        &r,
        "| 2025-10-06 19:00:00 UTC (T+1h00m) | Stage 1 ended: proceed. |",
    );
}

#[test]
fn caveats_strategy_shows_the_ladder_and_gates() {
    let r = ramp_report::markdown(&caveats());
    has(
        &r,
        "Stage 1: 5%   →   60 minutes →  SLO validation   →  Proceed/Rollback",
    );
    has(
        &r,
        "Stage 4: 100% → 1440 minutes →  Final validation →  Promote/Rollback",
    );
    has(&r, "Gates are evaluated every 5 s of plan time");
    has(
        &r,
        "| Stage 4 (100%) | P99 Latency (ms) | canary | < 900 ms | 800 ms | 5 min |",
    );
    has(
        &r,
        "| Stage 1 (5%) | Throughput (req/s) | service | > 50 req/s | — | 5 min |",
    );
}

#[test]
fn caveats_stage_tables_follow_the_seed() {
    let r = ramp_report::markdown(&caveats());
    has(
        &r,
        "| Metric | Baseline | T+15min | T+30min | T+45min | T+60min | Threshold | Status |",
    );
    has(
        &r,
        "| P50 Latency (ms) | 145 | 148 | 149 | 150 | 151 | <200 | ✅ |",
    );
    has(
        &r,
        "| Error Rate (%) | 0.28 | 0.31 | 0.31 | 0.31 | 0.31 | <1.00 | ✅ |",
    );
    // Throughput is judged on the whole service, so its cells are the service's numbers.
    has(
        &r,
        "| Throughput (req/s) | 125 | 125 | 126 | 127 | 128 | >50 | ✅ |",
    );
    // Stage 3's tightened gates.
    has(
        &r,
        "| P95 Latency (ms) | 385 | 415 | 416 | 417 | 418 | <450 | ✅ |",
    );
    // Stage 4 has 24 checkpoints: periodic aggregates instead of 24 columns.
    has(
        &r,
        "**Periodic aggregates** (one row per 60 min checkpoint):",
    );
    has(
        &r,
        "| 2025-10-07 02:00 | 164 | 433 | 811 | 0.41 | 125 | ⚠️ |",
    );
    has(
        &r,
        "| P99 Latency (ms) | 720 | 815 | <900 (warn 800) | ⚠️ |",
    );
    has(
        &r,
        "| Error Rate (%) | 0.28 | 0.40 | <0.80 (warn 0.50) | ✅ |",
    );
    assert!(
        !r.contains("| T+1860min |"),
        "stage 4 must not get 24 columns"
    );
}

#[test]
fn caveats_stage_summary_and_decisions() {
    let r = ramp_report::markdown(&caveats());
    has(
        &r,
        "- **P99 latency:** stage 815 ms (+13.2% vs baseline 720 ms); average of 24 checkpoints 821.0 ms; threshold < 900 ms, warn 800 ms ⚠️",
    );
    has(&r, "**Decision point (T+60min):**");
    has(&r, "- ✅ **DECISION: PROCEED TO STAGE 2**");
    has(&r, "- ✅ **DECISION: PROCEED TO STAGE 4**");
    has(&r, "- ⚠️ **DECISION: MONITOR — PROMOTED WITH CAVEATS**");
    has(
        &r,
        "- canary p99_ms 815 ms is over the 800 ms warn level (fail 900 ms).",
    );
    has(
        &r,
        "| Stage 1 (5%) | 60 min | ✅ All met | PROCEED | High |",
    );
    has(
        &r,
        "| Stage 4 (100%) | 1440 min | ⚠️ P99 over warn level | MONITOR | Medium |",
    );
}

#[test]
fn caveats_baseline_and_features_are_computed() {
    let r = ramp_report::markdown(&caveats());
    has(&r, "| P50 Latency (ms) | 145 ms | 165 ms | +13.8% |");
    has(&r, "| Error Rate (%) | 0.28% | 0.40% | +42.9% |");
    has(&r, "| Throughput (req/s) | 125 req/s | 132 req/s | +5.3% |");
    has(
        &r,
        "| analytics persistence | 12,147,500 | 6.5 ms | +4.2% | +4.2% | 0 (0.00%) |",
    );
    has(
        &r,
        "**Total cumulative impact: +13.6% average latency** (configured: +13.6%); observed canary P50 change over the baseline in Stage 4 (100%): +13.8% (difference 0.2 points).",
    );
}

#[test]
fn caveats_rehearsal_log_and_breakdown() {
    let r = ramp_report::markdown(&caveats());
    has(
        &r,
        "### Scenario 1: Simulated P95 breach (T+12h00m, stage 4)",
    );
    has(
        &r,
        "[06:00:00] Recording baseline metrics... P50=150ms, P95=390ms, P99=730ms, errors=0.30%",
    );
    has(
        &r,
        "[06:00:00] Injecting fault: +800 ms on 50% of canary requests",
    );
    has(
        &r,
        "[06:00:02] ⚠ Degraded metrics detected: P95=850ms, P99=1450ms",
    );
    has(
        &r,
        "[06:00:02] ✗ SLO BREACH DETECTED: canary p95_ms 850 ms > 500 ms over 5 min",
    );
    has(&r, "[06:00:02] Triggering automatic rollback...");
    has(&r, "[06:00:08] ✓ Rollback completed in 6 s");
    has(&r, "[06:00:18] ✓ System restored to baseline (total: 18 s)");
    has(&r, "- Detection after onset: 2 s");
    has(&r, "- Detection to initiation: 0 s");
    has(&r, "- Rollback execution: 6 s");
    has(&r, "- Baseline restoration: 10 s");
    has(&r, "- **Total recovery time: 18 s** (target: < 120 s) ✅");
    assert!(
        !r.contains("## Automatic rollback"),
        "no main rollback happened"
    );
}

#[test]
fn caveats_verdict_names_the_warned_metric_with_its_number() {
    let r = ramp_report::markdown(&caveats());
    has(&r, "### ✅ READY FOR PRODUCTION WITH CAVEATS");
    has(
        &r,
        "1. Stages 1, 2, 3 of the 4 stages run passed all their SLO gates",
    );
    has(
        &r,
        "Automatic rollback rehearsed (“Simulated P95 breach”): recovered in 18 s (target < 120 s), detected 2 s after onset",
    );
    has(
        &r,
        "Error rate 0.40% stayed under the 0.50% warn level over stage 4",
    );
    has(
        &r,
        "P99 latency was 815 ms over stage 4 (average of 24 checkpoints 821.0 ms), over the 800 ms warn level (fail level 900 ms)",
    );
    has(
        &r,
        "Error rate rose 42.9% against the baseline in stage 4 (0.40% vs 0.28%)",
    );
    has(&r, "P50 latency rose 13.8% against the baseline in stage 4");
    has(
        &r,
        "1. Proceed with the next rollout, watching the concerns above",
    );
    has(
        &r,
        "Monitor P99 latency closely in production: it ended stage 4 beyond its 800 ms warn level",
    );
    has(
        &r,
        "Investigate the changes against the baseline before the next rollout: P50 latency +13.8%, P95 latency +12.5% and error rate +42.9%",
    );
    // Throughput rose only 5.3 %: not a concern, and higher throughput is never a regression.
    assert!(!r.contains("Throughput rose"), "{r}");
}

#[test]
fn rolled_back_report_explains_the_rollback() {
    let r = ramp_report::markdown(&rolled_back());
    for section in SECTIONS {
        has(&r, section);
    }
    clean(&r);
    has(&r, "**Start:** T+0 (no wall-clock start given");
    has(&r, "**Status:** ❌ ROLLED BACK");
    has(&r, "2 stages ran before the rollback (5% → 25%)");
    has(
        &r,
        "Outcome: **rolled back to 0%**: in stage 2 at T+1h30m04s, canary error_rate 3.02% > 1.00% over 5 min.",
    );
    has(&r, "The rollout stopped in stage 2;");
    has(&r, "- ✅ **DECISION: PROCEED TO STAGE 2**");
    has(&r, "- ❌ **DECISION: ROLL BACK**");
    has(&r, "| Error Rate (%) | 0.28 | 0.33 | <1.00 | ❌ |");
    // Gates that did not fail come from the last checkpoint, labelled with its time.
    has(
        &r,
        "| P99 Latency (ms) | 720 | 748 | <1000 | ✅ (at T+90min) |",
    );
    has(
        &r,
        "1. Stage 1 of the 2 stages run passed all its SLO gates",
    );
    has(&r, "## Automatic rollback");
    has(&r, "**Stage:** Stage 2 (25%)");
    has(
        &r,
        "[T+1h30m04s] ✗ SLO BREACH DETECTED: canary error_rate 3.02%",
    );
    has(&r, "[T+1h30m00s] Fault began");
    has(&r, "[T+1h30m05s] ✓ Rollback completed in 1.5 s");
    has(
        &r,
        "[T+1h31m00s] ✓ System restored to baseline (total: 60 s)",
    );
    has(&r, "- Detection after onset: 4 s");
    has(&r, "- Rollback execution: 1.5 s");
    has(&r, "- Baseline restoration: 54.5 s");
    has(&r, "- **Total recovery time: 60 s** (from fault onset)");
    has(&r, "No rollback rehearsals were run.");
    has(
        &r,
        "| Stage 2 (25%) | 30 min 4 s of 120 min | ❌ Error rate over threshold | ROLL BACK | Low |",
    );
    has(&r, "### ❌ ROLLED BACK — NOT READY");
    has(
        &r,
        "Error rate was 3.02% over 5 min in stage 2 (99.9% confidence bound 2.81%), over the 1.00% threshold",
    );
    // The rollback's verdicts cover the failing window, and the report says so.
    has(
        &r,
        "P95 latency 402 ms stayed under the 500 ms threshold over 5 min in stage 2",
    );
    has(
        &r,
        "Observed: Stage 2 (25%) over the whole stage (the stage of the rollback).",
    );
    has(
        &r,
        "Do not promote this version: fix the cause of the rollback and run a new rollout",
    );
    has(
        &r,
        "Find and fix the cause of the error rate breach in stage 2",
    );
    assert!(
        !r.contains("## Feature-specific performance"),
        "no features"
    );
}

#[test]
fn halted_report_shows_no_data_honestly() {
    let r = ramp_report::markdown(&halted());
    for section in SECTIONS {
        has(&r, section);
    }
    clean(&r);
    has(&r, "**Mode:** Live");
    has(&r, "**Status:** ⏸ HALTED");
    has(&r, "**Environment:** Production");
    has(
        &r,
        "Outcome: **halted, waiting for a human decision**: No canary requests in the stage",
    );
    has(&r, "| P50 Latency (ms) | 145 | — | — | — | — | <200 | ❔ |");
    has(
        &r,
        "| Throughput (req/s) | 125 | 125 | 125 | 125 | 125 | >50 | ✅ |",
    );
    has(&r, "- ⏸ **DECISION: HALT — A HUMAN DECIDES**");
    has(
        &r,
        "| Stage 1 (5%) | 60 min | ❔ No data for P50, P95, P99, Error rate | HALT | Low |",
    );
    has(&r, "### ⏸ HALTED — DECISION NEEDED");
    has(
        &r,
        "1. No data for P50 latency, P95 latency, P99 latency and error rate in stage 1: 0 requests over 60 min, fewer than the gates need",
    );
    has(
        &r,
        "Check that the canary receives traffic and that P50 latency, P95 latency, P99 latency and error rate are reported",
    );
    // The halt's reason is the missing data, already a concern: not repeated.
    assert!(!r.contains("Halted in stage 1"), "{r}");
    has(
        &r,
        "Service `search` was rolled out to production as a live canary.",
    );
    assert!(!r.contains(".."), "{r}");
    has(
        &r,
        "Decide by hand whether to resume, extend or roll back stage 1: Ramp holds the canary at 5% until then",
    );
    has(&r, "| P50 Latency (ms) | 145 ms | — | — |");
    has(&r, "No events were recorded.");
    // The only passing gate is the service's throughput: a strength that says so, nothing
    // about the canary.
    has(
        &r,
        "Throughput 132 req/s stayed over the 50 req/s threshold over stage 1",
    );
    assert!(!r.contains("All 1 stages"), "{r}");
}

/// Fails on 63809fb (no `unobserved_s`): a stage with time the controller did not observe
/// (issue 12) says how much in its duration line and in a column of the decision matrix,
/// which reports without gaps do not have.
/// Issue 14: a fleet's per-member requests per stage are in the JSON summary, the Markdown
/// report and the HTML report, a skewed member visibly so; absent (not zero) for any other
/// router.
#[test]
fn a_fleets_members_are_reported_per_stage_and_absent_otherwise() {
    let plain = caveats();
    let v: serde_json::Value = serde_json::from_str(&ramp_report::json(&plain)).unwrap();
    assert!(
        v["stages"][0].get("members").is_none(),
        "{:#}",
        v["stages"][0]
    );
    assert!(!ramp_report::markdown(&plain).contains("Fleet members"));
    assert!(!ramp_report::html(&plain).contains("Fleet members"));

    let mut s = caveats();
    let member = |port: u16, requests: u64, errors: u64, restarted: bool| MemberStageSummary {
        url: format!("http://127.0.0.1:{port}"),
        requests,
        errors,
        restarted,
    };
    s.stages[0].members = vec![
        member(9901, 4_500, 3, false),
        member(9902, 4_500, 2, false),
        member(9903, 1_000, 0, true),
    ];
    let v: serde_json::Value = serde_json::from_str(&ramp_report::json(&s)).unwrap();
    let members = &v["stages"][0]["members"];
    assert_eq!(members[0]["requests"], 4_500, "{members:#}");
    assert_eq!(members[2]["restarted"], true, "{members:#}");
    assert!(members[0].get("restarted").is_none(), "{members:#}");
    assert!(v["stages"][1].get("members").is_none());
    let back: Summary = serde_json::from_value(v).unwrap();
    assert_eq!(back.stages[0].members, s.stages[0].members);

    let r = ramp_report::markdown(&s);
    has(
        &r,
        "**Fleet members** (requests each proxy served in the stage):",
    );
    has(&r, "| Member | Requests | Share | Errors |");
    has(&r, "| http://127.0.0.1:9901 | 4,500 | 45.0 % | 3 |");
    has(
        &r,
        "| http://127.0.0.1:9903 | 1,000 (since it restarted) | 10.0 % | 0 |",
    );
    assert_eq!(r.matches("Fleet members").count(), 1, "stage 1 only");
    let html = ramp_report::html(&s);
    assert!(
        html.contains("<td>http://127.0.0.1:9902</td><td>4,500</td><td>45.0 %</td><td>2</td>"),
        "{html}"
    );
}

#[test]
fn unobserved_time_is_reported_only_when_a_stage_had_some() {
    let plain = ramp_report::markdown(&caveats());
    assert!(
        !plain.contains("Unobserved") && !plain.contains("unobserved"),
        "{plain}"
    );
    let mut s = caveats();
    s.stages[1].unobserved_s = 12.0;
    let r = ramp_report::markdown(&s);
    has(
        &r,
        "| Stage | Duration | Unobserved | SLO Status | Decision | Confidence |",
    );
    has(
        &r,
        "|-------|----------|------------|------------|----------|------------|",
    );
    has(&r, "| Stage 1 (5%) | 60 min | 0 s | ");
    has(&r, "| Stage 2 (25%) | 120 min | 12 s | ");
    has(
        &r,
        "; 12 s of it unobserved, which counted toward no decision and extended the stage",
    );
    let v: serde_json::Value = serde_json::from_str(&ramp_report::json(&s)).unwrap();
    assert_eq!(v["stages"][1]["unobserved_s"], 12.0);
    assert_eq!(v["stages"][0]["unobserved_s"], 0.0);
}

#[test]
fn reports_are_deterministic() {
    for s in [caveats(), rolled_back(), halted()] {
        assert_eq!(ramp_report::markdown(&s), ramp_report::markdown(&s.clone()));
        assert_eq!(ramp_report::json(&s), ramp_report::json(&s.clone()));
    }
}

#[test]
fn json_round_trips_to_an_equal_summary() {
    for s in [caveats(), rolled_back(), halted()] {
        let text = ramp_report::json(&s);
        assert!(text.ends_with("}\n"), "trailing newline expected");
        let back: Summary = serde_json::from_str(&text).expect("the JSON reads back");
        assert_eq!(back, s);
    }
}

#[test]
fn json_keeps_the_contract_keys() {
    let text = ramp_report::json(&rolled_back());
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["outcome"], "rolled_back");
    assert_eq!(v["rollback"]["stage"], 2);
    assert_eq!(v["stages"][1]["decision"], "rollback");
    assert_eq!(v["stages"][0]["gates"][0]["metric"], "p50_ms");
    assert_eq!(v["stages"][0]["metrics"]["error_rate"], 0.0032);
    let halted: serde_json::Value = serde_json::from_str(&ramp_report::json(&halted())).unwrap();
    assert!(halted["rollback"].is_null());
    assert_eq!(halted["stages"][0]["gates"][0]["status"], "no_data");
}

#[test]
fn non_finite_numbers_never_reach_the_report() {
    let mut s = caveats();
    s.stages[3].metrics_by_scope.canary.p99_ms = Some(f64::NAN);
    s.stages[3].gates[2].observed = Some(f64::INFINITY);
    s.baseline.metrics.p50_ms = Some(0.0);
    s.features[0].latency_impact = f64::NAN;
    s.rehearsals[0].total_recovery_s = None;
    s.rehearsals[0].restoration_s = None;
    s.rehearsals[0].outcome = RehearsalOutcome::NotRestored;
    let r = ramp_report::markdown(&s);
    clean(&r);
    has(&r, "- **Total recovery time: —** (target: < 120 s) ❌");
    has(&r, "✗ System not restored to baseline");
    has(
        &r,
        "Rehearsal “Simulated P95 breach” rolled back but service metrics were not back at baseline by its end",
    );
}

/// Writes the three reports and their JSON to the directory named by `RAMP_REPORT_DUMP`, for
/// reading them by eye; does nothing when the variable is not set.
#[test]
fn dump_reports_when_asked() {
    let Some(dir) = std::env::var_os("RAMP_REPORT_DUMP") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, s) in [
        ("caveats", caveats()),
        ("rolled-back", rolled_back()),
        ("halted", halted()),
    ] {
        std::fs::write(dir.join(format!("{name}.md")), ramp_report::markdown(&s)).unwrap();
        std::fs::write(dir.join(format!("{name}.json")), ramp_report::json(&s)).unwrap();
    }
}

/// With the planned stages recorded, the strategy lists every stage of the plan, reached or
/// not, and every gate's window and minimum samples.
#[test]
fn strategy_lists_planned_stages_even_when_not_reached() {
    use ramp_core::summary::{GateSpec, PlannedStage};
    let mut s = halted();
    s.plan = vec![
        PlannedStage {
            index: 1,
            weight: 10.0,
            duration_s: 1800.0,
            checkpoint_s: 450.0,
            gates: vec![GateSpec {
                metric: Metric::P95Ms,
                scope: Scope::Canary,
                max: Some(500.0),
                min: None,
                warn: Some(450.0),
                window_s: 300.0,
                min_samples: 200,
            }],
        },
        PlannedStage {
            index: 2,
            weight: 100.0,
            duration_s: 3600.0,
            checkpoint_s: 900.0,
            gates: vec![],
        },
    ];
    let md = ramp_report::markdown(&s);
    assert!(md.contains("Stage 2: 100%"), "{md}");
    assert!(md.contains("The rollout stopped in stage 1 of 2"), "{md}");
    assert!(
        md.contains(
            "| Stage 1 (10%) | P95 Latency (ms) | canary | < 500 ms | 450 ms | 5 min | 200 |"
        ),
        "{md}"
    );
}

/// A stage's sequential tests appear at its decision point with their α and sentence.
#[test]
fn sequential_tests_are_reported_at_the_decision_point() {
    let mut s = rolled_back();
    s.stages[0].tests = vec![ramp_core::summary::TestResult {
        test: "sequential_latency".into(),
        alpha: 0.005,
        reject: true,
        explanation: "canary p99 is 9–14% above stable at 99.5% confidence after 3,200 requests"
            .into(),
    }];
    let md = ramp_report::markdown(&s);
    assert!(
        md.contains("- ❌ Sequential latency test (canary versus stable), α = 0.005: canary p99 is 9–14% above stable"),
        "{md}"
    );
}

/// One flag count.
fn flag(
    stage: usize,
    key: &str,
    weight: f64,
    on: u64,
    off: u64,
    window_s: f64,
) -> FlagUsageSummary {
    FlagUsageSummary {
        stage,
        key: key.into(),
        weight,
        on_users: on,
        off_users: off,
        window_s,
        exact: true,
        scheduled: false,
    }
}

/// The staging report's three flags counted at the ends of stages 1 and 2 of the promoted rollout.
fn with_flags() -> Summary {
    let mut s = caveats();
    for (stage, weight, window) in [(1, 5.0, 3600.0), (2, 25.0, 7200.0)] {
        for key in [
            "phase8_encryption_enabled",
            "phase8_analytics_persistence_enabled",
            "phase8_gamification_enhancements",
        ] {
            let on = (2_500.0 * weight / 100.0) as u64;
            s.flags
                .push(flag(stage, key, weight, on, 2_500 - on + 3, window));
        }
    }
    s
}

#[test]
fn flags_are_listed_per_stage_in_the_seed_style() {
    let r = ramp_report::markdown(&with_flags());
    clean(&r);
    // After the features, before the rollback scenarios.
    let features = r.find("## Feature-specific performance").unwrap();
    let flags = r.find("## Feature flags").expect("a flags section");
    let scenarios = r.find("## Rollback scenarios tested").unwrap();
    assert!(features < flags && flags < scenarios, "{r}");
    let section = &r[flags..scenarios];
    has(section, "counted exactly over the simulated users");
    has(section, "### Stage 1: 5% traffic");
    has(section, "### Stage 2: 25% traffic");
    // The stage ends at 21:00 (T+3h), counted over the stage's 120 minutes.
    has(
        section,
        "[21:00:00] Feature flag stats (distinct users over 120 min):",
    );
    has(
        section,
        "  - phase8_encryption_enabled: 625 users (25%), off for 1,878",
    );
    has(
        section,
        "  - phase8_gamification_enhancements: 125 users (5%), off for 2,378",
    );
    assert!(
        !section.contains('≈'),
        "exact counts carry no estimate mark"
    );
    // Stage 1's lines come before stage 2's.
    assert!(section.find("125 users (5%)").unwrap() < section.find("625 users (25%)").unwrap());
}

#[test]
fn a_scheduled_flag_row_says_its_share_comes_from_its_schedule() {
    let mut s = with_flags();
    let mut slow = flag(2, "slow_release", 5.0, 125, 2_375, 7200.0);
    slow.scheduled = true;
    s.flags.push(slow);
    let r = ramp_report::markdown(&s);
    clean(&r);
    has(
        &r,
        "A flag marked \"by its schedule\" follows its own schedule (time since the rollout started → share of users), not the stage's traffic",
    );
    has(
        &r,
        "  - slow_release: 125 users (5% by its schedule), off for 2,375",
    );
    // The other rows read as before, and a report without scheduled flags has no such note.
    has(
        &r,
        "  - phase8_encryption_enabled: 625 users (25%), off for 1,878",
    );
    assert!(!ramp_report::markdown(&with_flags()).contains("by its schedule"));
    // The JSON carries `scheduled` only when it is true.
    let json = serde_json::to_string(&s.flags).unwrap();
    assert_eq!(json.matches("\"scheduled\":true").count(), 1, "{json}");
    assert!(!json.contains("\"scheduled\":false"), "{json}");
}

#[test]
fn estimated_live_counts_and_mixed_windows_are_marked() {
    let mut s = rolled_back();
    s.mode = "live".into();
    s.flags = vec![
        flag(2, "checkout_v2", 25.0, 31_250, 93_750, 1804.0),
        flag(2, "banner", 12.5, 100, 700, 300.0),
    ];
    s.flags[0].exact = false;
    s.flags[1].key = "banner\ncolour".into();
    let r = ramp_report::markdown(&s);
    clean(&r);
    has(
        &r,
        "counted by the OFREP server from the targeting keys it evaluated",
    );
    has(&r, "Counts marked ≈ are estimates");
    has(&r, "Feature flag stats (distinct users):");
    has(
        &r,
        "  - checkout_v2: ≈31,250 users (25%), off for ≈93,750 over 30 min 4 s",
    );
    has(
        &r,
        "  - banner colour: 100 users (12.5%), off for 700 over 5 min",
    );
}

#[test]
fn runs_without_flags_have_no_flags_section_and_the_json_carries_the_counts() {
    for s in [caveats(), rolled_back(), halted()] {
        assert!(!ramp_report::markdown(&s).contains("## Feature flags"));
    }
    let s = with_flags();
    let text = ramp_report::json(&s);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["flags"][3]["stage"], 2);
    assert_eq!(v["flags"][3]["key"], "phase8_encryption_enabled");
    assert_eq!(v["flags"][3]["weight"], 25.0);
    assert_eq!(v["flags"][3]["on_users"], 625);
    assert_eq!(v["flags"][3]["off_users"], 1_878);
    assert_eq!(v["flags"][3]["window_s"], 7200.0);
    assert_eq!(v["flags"][3]["exact"], true);
    let back: Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s);
    assert_eq!(ramp_report::markdown(&s), ramp_report::markdown(&back));
}

/// The `<figure>` of the chart titled `title`, failing the test when there is none.
#[track_caller]
fn figure<'a>(html: &'a str, title: &str) -> &'a str {
    let at = html
        .find(&format!("\">{title}</title>"))
        .unwrap_or_else(|| panic!("no chart titled {title:?}"));
    let start = html[..at].rfind("<figure").expect("a chart is in a figure");
    let end = at + html[at..].find("</figure>").expect("a figure ends");
    &html[start..end]
}

#[test]
fn html_report_has_the_markdown_text_and_a_point_per_checkpoint() {
    let s = caveats();
    let html = ramp_report::html(&s);
    // The text is the Markdown report's, so the two cannot disagree.
    has(&html, "<h3>Stage 1: 5% traffic</h3>");
    has(&html, "<h2>Final verdict</h2>");
    // Stage 1 has four checkpoints: P50, P95 and P99 at each.
    let latency = figure(&html, "Stage 1: canary latency at each checkpoint");
    assert_eq!(latency.matches("<circle").count(), 3 * 4, "{latency}");
    for label in [
        "canary latency (ms)",
        "time since the rollout started (min)",
    ] {
        has(latency, &format!(">{label}</text>"));
    }
    // The baseline and the fail level are drawn as levels with their numbers.
    has(latency, "baseline P95 385 ms");
    let errors = figure(&html, "Stage 1: canary error rate at each checkpoint");
    assert_eq!(errors.matches("<circle").count(), 4);
    has(errors, ">canary error rate (%)</text>");
    let weight = figure(&html, "Canary weight over the rollout");
    // A point at each stage's start and end.
    assert_eq!(weight.matches("<circle").count(), 2 * s.stages.len());
    has(weight, "S1 PROCEED");
    clean(&html);
}

#[test]
fn html_report_of_a_rollback_marks_it_and_draws_its_timeline() {
    let html = ramp_report::html(&rolled_back());
    let weight = figure(&html, "Canary weight over the rollout");
    has(weight, ">S2 rollback</text>");
    let timeline = figure(&html, "Stage 2 rollback timeline");
    has(timeline, ">canary weight (%)</text>");
    has(timeline, "detection");
    has(timeline, "<figcaption>");
}

#[test]
fn html_report_is_self_contained_and_deterministic() {
    for s in [caveats(), rolled_back(), halted()] {
        let html = ramp_report::html(&s);
        assert_eq!(html, ramp_report::html(&s.clone()));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains("<script"), "no script is needed to read it");
        // The only URL is the SVG namespace: no CDN, no font, no image to fetch.
        let urls = html.matches("http").count();
        assert_eq!(urls, html.matches("http://www.w3.org/2000/svg").count());
        // Every chart has a title, a text alternative and axis labels.
        let charts = html.matches("<svg ").count();
        assert_eq!(html.matches("<desc ").count(), charts);
        assert_eq!(html.matches("<figcaption>").count(), charts);
        assert_eq!(html.matches("class=\"label\"").count(), 2 * charts);
    }
}

#[test]
fn the_report_format_follows_the_extension() {
    use ramp_report::ReportFormat;
    use std::path::Path;
    assert_eq!(
        ReportFormat::for_path(Path::new("out/r.html")),
        ReportFormat::Html
    );
    assert_eq!(
        ReportFormat::for_path(Path::new("R.HTM")),
        ReportFormat::Html
    );
    assert_eq!(
        ReportFormat::for_path(Path::new("r.md")),
        ReportFormat::Markdown
    );
    assert_eq!(
        ReportFormat::for_path(Path::new("report")),
        ReportFormat::Markdown
    );
}

/// Failed on 84779eb ("demo demo canary rollout"): a service named like its environment is
/// named once in the title.
#[test]
fn a_service_named_like_its_environment_is_named_once() {
    let mut s = caveats();
    s.service = "demo".into();
    s.environment = "demo".into();
    let md = ramp_report::markdown(&s);
    assert!(md.starts_with("# demo canary rollout — "), "{md}");
}

/// Failed on 84779eb, which recommended "Monitor … closely in production" beside "Do not
/// promote this version".
#[test]
fn a_rolled_back_rollout_is_never_told_to_watch_production() {
    let mut s = rolled_back();
    s.stages[1].gates[0].status = GateStatus::Warn;
    s.stages[1].gates[0].warn = Some(400.0);
    let md = ramp_report::markdown(&s);
    has(&md, "Do not promote this version");
    has(
        &md,
        "Look into P95 latency as well: it ended stage 2 beyond its 400 ms warn level",
    );
    assert!(!md.contains("in production"), "{md}");
}

/// Failed on 84779eb: a failing window longer than the stage had run ("over 11 s in stage
/// 2" of an 8 s stage) is named by when it ended, and a stage that ran past its last
/// checkpoint says that its whole-stage numbers include time the table does not show.
#[test]
fn a_window_longer_than_its_stage_is_not_said_to_be_in_it() {
    let mut s = rolled_back();
    // Stage 2 ran 200 s; its failing window is 5 min; its one checkpoint came at 150 s.
    s.stages[1].elapsed_s = 200.0;
    s.stages[1].checkpoints[0].t_s = 3750.0;
    let md = ramp_report::markdown(&s);
    assert!(!md.contains("over 5 min in stage 2"), "{md}");
    has(
        &md,
        "over the 5 min window that ended in stage 2 (it began before the stage)",
    );
    has(&md, "**Note:** the checkpoints end at T+62min30s, but the stage ran to T+63min20s: the whole-stage numbers below include the last 50 s, which no checkpoint column shows.");
}

/// A live run's checklist and approvals: each check with its result, time and detail after
/// the strategy; each approval with its stage, approver, time and reason before the footer;
/// neither section when there is nothing to show (the fixture without them has none).
#[test]
fn checks_and_approvals_appear_only_when_there_are_some() {
    let plain = ramp_report::markdown(&caveats());
    assert!(!plain.contains("## Pre-deployment checklist"), "{plain}");
    assert!(!plain.contains("## Approvals"), "{plain}");

    let mut s = caveats();
    s.checks = vec![
        CheckSummary {
            name: "Stable health".into(),
            ok: true,
            detail: "HTTP 200 in 3 ms".into(),
            t_s: 0.0,
            elapsed_s: 0.004,
        },
        CheckSummary {
            name: "Error budget | left".into(),
            ok: true,
            detail: "exit 0".into(),
            t_s: 0.0,
            elapsed_s: 1.5,
        },
    ];
    s.approvals = vec![ApprovalSummary {
        stage: 2,
        who: "SRE Lead".into(),
        t_s: 3_600.0,
        reason: "stage 1 clean".into(),
    }];
    let r = ramp_report::markdown(&s);
    has(&r, "## Pre-deployment checklist");
    has(
        &r,
        "2 of 2 checks passed: every check passed before any traffic was shifted.",
    );
    has(
        &r,
        "| Stable health | ✅ passed | 2025-10-06 18:00:00 UTC (T+0) | 4 ms | HTTP 200 in 3 ms |",
    );
    has(
        &r,
        "| Error budget \\| left | ✅ passed | 2025-10-06 18:00:00 UTC (T+0) | 1.5 s |",
    );
    has(&r, "## Approvals");
    has(
        &r,
        "| 2 | SRE Lead | 2025-10-06 19:00:00 UTC (T+1h00m) | stage 1 clean |",
    );
    let checklist = r.find("## Pre-deployment checklist").unwrap();
    assert!(r.find("## Deployment strategy").unwrap() < checklist);
    assert!(checklist < r.find("## Timeline").unwrap());
    assert!(r.find("## Final verdict").unwrap() < r.find("## Approvals").unwrap());

    s.checks[1].ok = false;
    let r = ramp_report::markdown(&s);
    has(
        &r,
        "1 of 2 checks passed: a check failed, so no traffic was shifted.",
    );
    has(&r, "| Error budget \\| left | ❌ failed |");
}

#[test]
fn infrastructure_impact_appears_only_with_samples_and_shows_missing_ones_as_dashes() {
    let plain = ramp_report::markdown(&caveats());
    assert!(!plain.contains("## Infrastructure impact"), "{plain}");

    let mut s = caveats();
    let row =
        |name: &str, unit: Option<&str>, stage, before, mean, max, samples, missing| InfraSummary {
            name: name.into(),
            unit: unit.map(Into::into),
            stage,
            before,
            during_mean: mean,
            during_max: max,
            samples,
            missing,
            source: "prometheus.internal:9090".into(),
        };
    s.infrastructure = vec![
        row(
            "CPU",
            Some("cores"),
            1,
            Some(4.0),
            Some(5.0),
            Some(5.5),
            4,
            0,
        ),
        row(
            "Cache | hit",
            Some("%"),
            1,
            Some(97.2),
            Some(96.5),
            Some(97.0),
            3,
            1,
        ),
        row(
            "DB connections",
            Some("connections"),
            1,
            None,
            None,
            None,
            0,
            4,
        ),
    ];
    let r = ramp_report::markdown(&s);
    has(&r, "## Infrastructure impact");
    has(
        &r,
        "| Query | Stage | Before | During (mean) | During (max) | Change | Missing |",
    );
    has(
        &r,
        "| CPU | 1 | 4 cores | 5 cores | 5.5 cores | +25.0% | 0 of 4 |",
    );
    has(
        &r,
        "| Cache \\| hit | 1 | 97.2% | 96.5% | 97% | -0.7 pts | 1 of 4 |",
    );
    // No data is a dash and a count, never a zero.
    has(&r, "| DB connections | 1 | – | – | – | – | 4 of 4 |");
    has(&r, "the Prometheus server at prometheus.internal:9090");
    has(&r, "5 of 12 samples were missing");
    let section = r.find("## Infrastructure impact").unwrap();
    assert!(r.find("## Summary against baseline").unwrap() < section);
    assert!(section < r.find("## Final verdict").unwrap());
    // The HTML report is rendered from the Markdown: the section is there too.
    let html = ramp_report::html(&s);
    assert!(html.contains("Infrastructure impact"), "{html}");
    assert!(html.contains("DB connections"), "{html}");
}
