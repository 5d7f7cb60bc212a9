//! The controller's `/metrics` page: the published view as gauges, then the counters.

use super::published::{Published, RolloutState};
use super::{ControllerMetrics, SourceKind, DECISIONS};
use ramp_core::summary::GateStatus;
use ramp_flags::exposition::{Exposition, Kind};
use std::sync::atomic::Ordering;

/// Every gate status, in the order they are rendered.
const GATE_STATUSES: [GateStatus; 4] = [
    GateStatus::Pass,
    GateStatus::Warn,
    GateStatus::Fail,
    GateStatus::NoData,
];

/// A gate status as the `status` label names it.
fn status_key(s: GateStatus) -> &'static str {
    match s {
        GateStatus::Pass => "pass",
        GateStatus::Warn => "warn",
        GateStatus::Fail => "fail",
        GateStatus::NoData => "no_data",
    }
}

/// The whole page.
pub(super) fn page(m: &ControllerMetrics, view: Option<&Published>) -> String {
    let mut e = Exposition::new();
    if let Some(v) = view {
        rollout(&mut e, v);
    }
    let bp = m.router_bp.load(Ordering::Relaxed);
    if bp != u32::MAX {
        e.single(
            "ramp_canary_weight_ratio",
            Kind::Gauge,
            "The canary weight the router reported applying at the last reading, 0 to 1.",
            f64::from(bp) / 10_000.0,
        );
    }
    counters(&mut e, m);
    e.finish()
}

/// The published view: state, stage, weights, gates, the last rollback's detection delay.
fn rollout(e: &mut Exposition, v: &Published) {
    e.family(
        "ramp_rollout_state",
        Kind::Gauge,
        "1 for the state the rollout is in, 0 for the others.",
    );
    for s in RolloutState::ALL {
        let on = if s == v.state { 1.0 } else { 0.0 };
        e.sample("ramp_rollout_state", &[("state", s.key())], on);
    }
    e.single(
        "ramp_stage",
        Kind::Gauge,
        "The running stage, 1-based; once finished the last stage that ran; 0 before any.",
        v.stage as f64,
    );
    e.single(
        "ramp_stages",
        Kind::Gauge,
        "Number of stages in the plan.",
        v.stages as f64,
    );
    e.single(
        "ramp_target_weight_ratio",
        Kind::Gauge,
        "The canary weight the controller holds the router at, 0 to 1 (0 after a rollback).",
        f64::from(v.target_bp) / 10_000.0,
    );
    if let Some(bp) = v.stage_bp {
        e.single(
            "ramp_stage_weight_ratio",
            Kind::Gauge,
            "The running stage's planned canary weight, 0 to 1.",
            f64::from(bp) / 10_000.0,
        );
    }
    e.family(
        "ramp_gate_status",
        Kind::Gauge,
        "1 for each gate's verdict on its window (pass, warn, fail, no_data), 0 for the others.",
    );
    for g in &v.gates {
        let stage = g.stage.to_string();
        for s in GATE_STATUSES {
            let labels = [
                ("gate", g.gate.as_str()),
                ("scope", g.scope),
                ("stage", stage.as_str()),
                ("status", status_key(s)),
            ];
            let on = if s == g.status { 1.0 } else { 0.0 };
            e.sample("ramp_gate_status", &labels, on);
        }
    }
    e.family(
        "ramp_gate_observed",
        Kind::Gauge,
        "Each gate's measured value in base units: seconds for latencies, a ratio for error_rate, requests per second for throughput.",
    );
    for g in &v.gates {
        if let Some(value) = g.observed {
            let stage = g.stage.to_string();
            let labels = [
                ("gate", g.gate.as_str()),
                ("scope", g.scope),
                ("stage", stage.as_str()),
            ];
            e.sample("ramp_gate_observed", &labels, value);
        }
    }
    if let Some(d) = v.detection_delay_s {
        e.single(
            "ramp_last_rollback_detection_seconds",
            Kind::Gauge,
            "Seconds from the injected fault's onset to the first failing gate, for the last rollback of a rehearsal (only a rehearsal knows the onset).",
            d,
        );
    }
}

/// The counters the driver increments.
fn counters(e: &mut Exposition, m: &ControllerMetrics) {
    e.family(
        "ramp_decisions_total",
        Kind::Counter,
        "Stage decisions taken by this process, by decision.",
    );
    for (d, c) in DECISIONS.iter().zip(&m.decisions) {
        e.sample(
            "ramp_decisions_total",
            &[("decision", d.key())],
            c.get() as f64,
        );
    }
    let simple = [
        (
            "ramp_rollbacks_total",
            "Rollbacks initiated by this process.",
            m.rollbacks.get() as f64,
        ),
        (
            "ramp_gaps_total",
            "Gaps fed to the engine: spans the metrics source restarted or could not be read over.",
            m.gaps.get() as f64,
        ),
        (
            "ramp_unobserved_seconds_total",
            "Seconds declared unobserved by those gaps.",
            m.unobserved_ms.get() as f64 / 1000.0,
        ),
        (
            "ramp_journal_writes_total",
            "Inputs and events written to the journal.",
            m.journal_writes.get() as f64,
        ),
        (
            "ramp_journal_write_errors_total",
            "Journal writes that failed (each stops the controller).",
            m.journal_errors.get() as f64,
        ),
    ];
    for (name, help, value) in simple {
        e.single(name, Kind::Counter, help, value);
    }
    e.family(
        "ramp_source_reads_total",
        Kind::Counter,
        "Reads of the metrics source, by kind of source and result.",
    );
    for kind in SourceKind::ALL {
        for (r, result) in ["ok", "error"].iter().enumerate() {
            let labels = [("source", kind.key()), ("result", *result)];
            let v = m.source_reads[kind.index()][r].get() as f64;
            e.sample("ramp_source_reads_total", &labels, v);
        }
    }
    e.family(
        "ramp_source_read_duration_seconds",
        Kind::Histogram,
        "Time one read of the metrics source took, by kind of source.",
    );
    for kind in SourceKind::ALL {
        let h = m.source_durations[kind.index()].snapshot();
        e.histogram(
            "ramp_source_read_duration_seconds",
            &[("source", kind.key())],
            &h,
        );
    }
}
