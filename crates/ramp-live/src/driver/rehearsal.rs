//! A rollback rehearsed on live traffic (`ramp rehearse`): a fault injected through the
//! router at the rehearsal's `at`, the engine's detection and rollback timed, then the drain
//! and the restoration, judged by the same rule as in simulation
//! ([`ramp_core::recovery::restored`]).

use super::records::fmt_ms;
use super::Driver;
use super::LiveError;
use crate::seams::{JournalStore, MetricsSource, Router};
use crate::source::{Counters, FaultRequest};
use ramp_core::engine::State;
use ramp_core::plan::{Cohort, FaultEffect, Rehearsal};
use ramp_core::summary::{GateResult, Metrics, RehearsalOutcome, RehearsalSummary};
use ramp_core::{Metric, PlanTime};
use std::collections::VecDeque;
use std::time::Duration;

/// The least span of data before a rehearsal's onset that its reference metrics cover.
const REFERENCE_SPAN: Duration = Duration::from_secs(10);

/// A live rehearsal in progress.
pub(super) struct LiveRehearsal {
    /// The plan's rehearsal.
    pub(super) spec: Rehearsal,
    /// The fault as the router takes it.
    request: FaultRequest,
    /// When the fault was injected (plan time, ms).
    pub(super) onset_ms: Option<u64>,
    /// Stage (1-based) at injection.
    stage: usize,
    /// Service-wide counters at the start of the reference window and at onset.
    reference_from: Option<(u64, Counters)>,
    /// The reference metrics (service-wide, before onset).
    reference: Metrics,
    /// When the engine issued the rollback.
    pub(super) initiated_ms: Option<u64>,
    /// Why.
    pub(super) reason: String,
    /// When the router confirmed weight 0 and the canary had nothing in flight.
    rollback_ms: Option<u64>,
    /// When service-wide latency and errors were back at the reference.
    restored_ms: Option<u64>,
    /// Readings since the drain, oldest first, for the trailing restoration window.
    trail: VecDeque<(u64, Counters)>,
    /// The failing window's metrics at detection.
    pub(super) degraded: Option<Metrics>,
}

impl LiveRehearsal {
    /// The rehearsal `spec`, not injected yet.
    pub(super) fn new(spec: Rehearsal) -> LiveRehearsal {
        LiveRehearsal {
            request: fault_request(&spec),
            spec,
            onset_ms: None,
            stage: 0,
            reference_from: None,
            reference: Metrics::default(),
            initiated_ms: None,
            reason: String::new(),
            rollback_ms: None,
            restored_ms: None,
            trail: VecDeque::new(),
            degraded: None,
        }
    }

    /// The rehearsal's record in the summary.
    pub(super) fn summary(&self) -> RehearsalSummary {
        let s = |ms: Option<u64>| ms.map(|v| PlanTime(v).as_secs_f64());
        let onset = self.onset_ms.unwrap_or(0);
        let outcome = match (self.onset_ms, self.initiated_ms, self.restored_ms) {
            (None, _, _) => RehearsalOutcome::NotInjected,
            (Some(_), None, _) => RehearsalOutcome::NotDetected,
            (Some(_), Some(_), None) => RehearsalOutcome::NotRestored,
            (Some(_), Some(_), Some(_)) => RehearsalOutcome::RolledBack,
        };
        RehearsalSummary {
            name: self.spec.name.clone(),
            outcome,
            stage: self.stage,
            reason: self.reason.clone(),
            fault_onset_s: PlanTime(onset).as_secs_f64(),
            detection_s: s(self.initiated_ms),
            initiated_s: s(self.initiated_ms),
            rollback_s: s(self.rollback_ms),
            restoration_s: s(self.restored_ms),
            total_recovery_s: self
                .restored_ms
                .map(|t| PlanTime(t.saturating_sub(onset)).as_secs_f64()),
            target_s: self.spec.target.as_secs_f64(),
            fault: describe_fault(&self.request),
            reference: self.reference,
            degraded: self.degraded,
        }
    }
}

impl<S: MetricsSource, R: Router, J: JournalStore> Driver<'_, S, R, J> {
    /// When the rehearsal's fault is due, while it is still to come: the loop reads then.
    pub(super) fn rehearsal_onset_due(&self) -> Option<PlanTime> {
        let r = self.rehearsal.as_ref()?;
        (r.onset_ms.is_none() && r.spec.fault.at > self.engine.now()).then_some(r.spec.fault.at)
    }

    /// Injects the rehearsal's fault once its time has come.
    pub(super) async fn rehearsal_inject(
        &mut self,
        now: PlanTime,
        counters: &Counters,
    ) -> Result<(), LiveError> {
        let Some(r) = &mut self.rehearsal else {
            return Ok(());
        };
        if r.onset_ms.is_some() {
            return Ok(());
        }
        let at = r.spec.fault.at;
        // The reference covers the run's last REFERENCE_SPAN (or restore window, if longer)
        // before the onset: long enough that its quantiles are not noise.
        let span = r
            .spec
            .restore_window
            .0
            .max(REFERENCE_SPAN.as_millis() as u64);
        if r.reference_from.is_none() || now.0 + span < at.0 {
            r.reference_from = Some((now.0, counters.clone()));
        }
        if now < at {
            return Ok(());
        }
        let State::Running { index } = self.engine.state() else {
            return Ok(());
        };
        let (from_ms, from) = r
            .reference_from
            .clone()
            .unwrap_or((now.0, counters.clone()));
        let before = counters.slot_since(&from, from_ms, now.0);
        r.reference = Metrics::of(
            &[&before.canary, &before.stable],
            now.0.saturating_sub(from_ms),
        );
        let request = r.request.clone();
        let name = r.spec.name.clone();
        let onset = self.plan_now();
        match self.routing.router.add_fault(&request).await {
            Ok(_) => {
                let r = self.rehearsal.as_mut().expect("checked above");
                r.onset_ms = Some(onset.0);
                r.stage = index + 1;
                let reference = r.reference;
                self.event(
                    onset,
                    "rehearsal_fault",
                    &serde_json::json!({"name": name, "fault": describe_fault(&request)}),
                )?;
                self.line(
                    onset,
                    format!(
                        "Rehearsal \"{name}\": baseline P95={} P99={} errors={}; injecting {}",
                        fmt_ms(reference.p95_ms),
                        fmt_ms(reference.p99_ms),
                        reference
                            .error_rate
                            .map_or("n/a".into(), |e| format!("{:.2}%", e * 100.0)),
                        describe_fault(&request)
                    ),
                );
            }
            Err(e) => {
                self.line(
                    onset,
                    format!("Rehearsal \"{name}\": could not inject the fault: {e}"),
                );
            }
        }
        Ok(())
    }

    /// After the rollback: times the drain, then the restoration on a trailing window of
    /// readings taken after the drain.
    pub(super) fn rehearsal_poll(&mut self, now: PlanTime, counters: &Counters) {
        let applied = self.routing.rollback_applied_ms;
        let Some(r) = &mut self.rehearsal else {
            return;
        };
        let (Some(_), Some(applied)) = (r.onset_ms, applied) else {
            return;
        };
        if r.rollback_ms.is_none() {
            // A reading taken before weight 0 was applied says nothing about the drain.
            if now.0 >= applied && counters.canary.in_flight <= 0 {
                r.rollback_ms = Some(now.0.max(applied));
                r.trail.clear();
                r.trail.push_back((now.0, counters.clone()));
            }
            return;
        }
        if r.restored_ms.is_some() {
            return;
        }
        r.trail.push_back((now.0, counters.clone()));
        let window = r.spec.restore_window.0;
        // Keep the newest reading that is at least a window old as the window's start.
        while r.trail.len() > 2 && r.trail[1].0 + window <= now.0 {
            r.trail.pop_front();
        }
        let Some((from_ms, from)) = r.trail.front().cloned() else {
            return;
        };
        let span = now.0.saturating_sub(from_ms);
        if span < window {
            return;
        }
        let slot = counters.slot_since(&from, from_ms, now.0);
        let m = Metrics::of(&[&slot.canary, &slot.stable], span);
        if restored(&m, &r.reference, r.spec.restore_tolerance) {
            r.restored_ms = Some(now.0);
        }
    }

    /// Whether the run may end: always without a rehearsal; with one, once restoration is
    /// timed or its target has passed.
    pub(super) fn rehearsal_done(&self) -> bool {
        let Some(r) = &self.rehearsal else {
            return true;
        };
        let Some(onset) = r.onset_ms else {
            return true;
        };
        if r.restored_ms.is_some() || r.initiated_ms.is_none() {
            return true;
        }
        self.plan_now().0 > onset + r.spec.target.0
    }
}

/// Whether `m` (service-wide, over the trailing restore window) is back within `tolerance`
/// of `reference`: the simulator's rule, from the one module that states it.
fn restored(m: &Metrics, reference: &Metrics, tolerance: f64) -> bool {
    ramp_core::recovery::restored(m, reference, tolerance)
}

/// The proxy request for a rehearsal's fault.
fn fault_request(r: &Rehearsal) -> FaultRequest {
    let cohort = match r.fault.cohort {
        Cohort::Canary => "canary",
        Cohort::Stable => "stable",
    }
    .to_string();
    let duration_s = r
        .fault
        .duration
        .map_or(r.target.as_secs_f64().max(60.0), |d| d.as_secs_f64());
    match r.fault.effect {
        FaultEffect::AddLatency { ms, fraction } => FaultRequest {
            cohort,
            fraction,
            add_latency_ms: Some(ms.round() as u64),
            abort_status: None,
            duration_s,
        },
        FaultEffect::ErrorRate { rate } => FaultRequest {
            cohort,
            fraction: rate,
            add_latency_ms: None,
            abort_status: Some(503),
            duration_s,
        },
    }
}

/// "+800 ms on 50% of canary requests".
fn describe_fault(f: &FaultRequest) -> String {
    let share = format!("{}% of {} requests", f.fraction * 100.0, f.cohort);
    match (f.add_latency_ms, f.abort_status) {
        (Some(ms), _) => format!("+{ms} ms on {share}"),
        (None, Some(status)) => format!("HTTP {status} on {share}"),
        (None, None) => share,
    }
}

/// The metrics a stage's failing gates observed ("P95=850ms, P99=1450ms" at detection).
pub(super) fn metrics_of_gates(gates: &[GateResult]) -> Metrics {
    let mut m = Metrics::default();
    for g in gates {
        match g.metric {
            Metric::P50Ms => m.p50_ms = m.p50_ms.or(g.observed),
            Metric::P95Ms => m.p95_ms = m.p95_ms.or(g.observed),
            Metric::P99Ms => m.p99_ms = m.p99_ms.or(g.observed),
            Metric::ErrorRate => m.error_rate = m.error_rate.or(g.observed),
            Metric::ThroughputRps => m.throughput_rps = m.throughput_rps.or(g.observed),
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::CohortCounters;

    #[test]
    fn restoration_needs_every_metric_back_within_tolerance() {
        let reference = Metrics {
            p50_ms: Some(100.0),
            p95_ms: Some(300.0),
            p99_ms: Some(500.0),
            error_rate: Some(0.001),
            throughput_rps: Some(100.0),
            requests: 1000,
        };
        let mut m = reference;
        assert!(restored(&m, &reference, 0.1));
        m.p99_ms = Some(560.0);
        assert!(!restored(&m, &reference, 0.1));
        m.p99_ms = Some(540.0);
        m.error_rate = Some(0.05);
        assert!(!restored(&m, &reference, 0.1));
        // Three standard errors over 1,000 requests allow up to about 0.41 %.
        m.error_rate = Some(0.004);
        assert!(restored(&m, &reference, 0.1));
        assert!(!restored(&Metrics::default(), &reference, 0.1));
    }

    /// Cumulative counters of `requests` requests, `errors` of them failed, all at `ms`.
    fn counters(requests: u64, errors: u64, ms: f64) -> CohortCounters {
        let index = u32::try_from(ramp_stats::Histogram::index_of(ms)).expect("small index");
        CohortCounters {
            completed: requests,
            errors,
            buckets: if requests > 0 {
                vec![(index, requests)]
            } else {
                Vec::new()
            },
            in_flight: 0,
            coarse_bounds_us: None,
        }
    }

    #[test]
    fn the_live_restoration_check_is_the_shared_rule() {
        let reference = Metrics {
            p50_ms: Some(100.0),
            p95_ms: Some(100.0),
            p99_ms: Some(100.0),
            error_rate: Some(0.01),
            throughput_rps: Some(100.0),
            requests: 10_000,
        };
        // A trailing window of 500 requests: 2.2 % errors is beyond a fixed allowance of one
        // point (1.1 % + 1 %) but within three standard errors (1.1 % + 3 × √(0.01 × 0.99 /
        // 500) ≈ 2.44 %); 2.6 % is beyond both; slower latency or no data is never restored.
        let cases = [
            ((50, 1, 100.0), (450, 10, 100.0), true),
            ((50, 2, 100.0), (450, 11, 100.0), false),
            ((50, 0, 100.0), (450, 0, 130.0), false),
            ((0, 0, 100.0), (0, 0, 100.0), false),
        ];
        for ((cr, ce, cms), (sr, se, sms), expected) in cases {
            let window = Counters {
                canary: counters(cr, ce, cms),
                stable: counters(sr, se, sms),
                epoch: None,
            };
            let slot = window.slot_since(&Counters::default(), 0, 5000);
            let m = Metrics::of(&[&slot.canary, &slot.stable], 5000);
            assert_eq!(
                restored(&m, &reference, 0.1),
                ramp_core::recovery::restored(&m, &reference, 0.1)
            );
            assert_eq!(restored(&m, &reference, 0.1), expected, "{m:?}");
        }
    }
}
