//! Query gates (`[[gates.query]]`): one number per evaluation from any PromQL expression,
//! judged like Argo Rollouts' analysis metrics with Ramp's rule that no data is never a pass.
//!
//! The engine never queries anything: a driver evaluates each expression at its interval
//! and feeds the value (or why there was none) as `Input::Query`, journaled like every
//! input, so a resumed run replays the same verdicts. A gate fails, and the canary is rolled
//! back, when `consecutive` evaluations in a row are beyond its fail level; a stage does not
//! end while a gate is in such a streak (it fails or recovers first), and a stage whose gate
//! had no data at its end, or was never evaluated in it, halts rather than promotes.

use crate::plan::QueryGate;
use crate::summary::{Decision, GateStatus, QueryResult};
use crate::units::PlanTime;

/// Every query gate's state in the running stage.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Queries {
    /// One per gate of the plan, in plan order.
    states: Vec<QueryResult>,
}

impl Queries {
    /// Fresh states for `gates`, as at the start of a stage: nothing evaluated yet.
    pub(super) fn start_stage(&mut self, gates: &[QueryGate]) {
        self.states = gates.iter().map(fresh).collect();
    }

    /// Records one evaluation of the gate named `name`; returns its result when it has just
    /// failed (the driver's cue to roll back). An unknown name changes nothing.
    pub(super) fn record(
        &mut self,
        gates: &[QueryGate],
        name: &str,
        value: Option<f64>,
        no_data: Option<String>,
        now: PlanTime,
    ) -> Option<QueryResult> {
        let (gate, state) = gates
            .iter()
            .zip(self.states.iter_mut())
            .find(|(g, _)| g.name == name)?;
        state.evaluations += 1;
        state.t_s = Some(now.as_secs_f64());
        match value.filter(|v| v.is_finite()) {
            None => {
                // No data neither extends nor breaks a streak: it says nothing either way.
                state.value = None;
                state.status = GateStatus::NoData;
                state.no_data =
                    Some(no_data.unwrap_or_else(|| "the query returned no number".into()));
            }
            Some(v) => {
                state.value = Some(v);
                state.no_data = None;
                if beyond(gate.max, gate.min, v) {
                    state.failed_in_a_row += 1;
                } else {
                    state.failed_in_a_row = 0;
                }
                state.status = if state.failed_in_a_row >= gate.consecutive {
                    GateStatus::Fail
                } else if state.failed_in_a_row > 0
                    || gate.warn.is_some_and(|w| beyond_warn(gate, w, v))
                {
                    GateStatus::Warn
                } else {
                    GateStatus::Pass
                };
            }
        }
        (state.status == GateStatus::Fail).then(|| state.clone())
    }

    /// Whether a gate in a streak of failed evaluations holds the stage end, `overrun` past
    /// it: for as long as the rest of its `consecutive` evaluations take (then the stage ends
    /// and halts on it), so a streak followed by no data cannot hold a stage forever.
    pub(super) fn holds(&self, gates: &[QueryGate], overrun: crate::units::Span) -> bool {
        gates.iter().zip(&self.states).any(|(g, s)| {
            s.failed_in_a_row > 0
                && overrun.0 < g.interval.0.saturating_mul(u64::from(g.consecutive))
        })
    }

    /// Every gate's state, as of now.
    pub(super) fn results(&self) -> Vec<QueryResult> {
        self.states.clone()
    }
}

impl super::Engine {
    /// A stage end's decision once its query gates are heard: one with no data halts a
    /// stage the other gates would promote (Ramp never promotes without data), one past its
    /// warn level makes a proceed a monitor.
    pub(super) fn judge_queries(&self, decision: Decision, reasons: &mut Vec<String>) -> Decision {
        if !matches!(decision, Decision::Proceed | Decision::Monitor) {
            return decision;
        }
        let results = self.queries.results();
        // No data, or a streak of failures the stage end waited out (it held the end as long
        // as the gate's `consecutive` evaluations take): neither is evidence to promote on.
        let no_data: Vec<&QueryResult> = results
            .iter()
            .filter(|r| r.status == GateStatus::NoData || r.failed_in_a_row > 0)
            .collect();
        if !no_data.is_empty() {
            reasons.clear();
            for r in no_data {
                let why = if r.failed_in_a_row > 0 {
                    "Ramp never promotes on a value beyond its fail level"
                } else {
                    "Ramp never promotes without data"
                };
                reasons.push(format!(
                    "{} at the stage's end; {why}.",
                    capitalized(&explain_query(r))
                ));
            }
            return Decision::Halt;
        }
        let mut decision = decision;
        for r in &results {
            reasons.push(format!(
                "{} at the stage's end.",
                capitalized(&explain_query(r))
            ));
            if r.status == GateStatus::Warn {
                decision = Decision::Monitor;
            }
        }
        decision
    }
}

/// A sentence with its first letter in upper case.
fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A gate's state before its first evaluation in a stage: no data.
fn fresh(gate: &QueryGate) -> QueryResult {
    QueryResult {
        name: gate.name.clone(),
        value: None,
        max: gate.max,
        min: gate.min,
        warn: gate.warn,
        status: GateStatus::NoData,
        failed_in_a_row: 0,
        consecutive: gate.consecutive,
        evaluations: 0,
        no_data: Some("not evaluated yet in this stage".into()),
        t_s: None,
    }
}

/// Whether `v` is beyond a fail level.
fn beyond(max: Option<f64>, min: Option<f64>, v: f64) -> bool {
    max.is_some_and(|m| v > m) || min.is_some_and(|m| v < m)
}

/// Whether `v` is beyond the warn level, on the side of the gate's fail level.
fn beyond_warn(gate: &QueryGate, warn: f64, v: f64) -> bool {
    match (gate.max, gate.min) {
        (Some(_), _) => v > warn,
        (None, Some(_)) => v < warn,
        (None, None) => false,
    }
}

/// One plain sentence explaining a query gate's state.
pub fn explain_query(r: &QueryResult) -> String {
    let levels = match (r.max, r.min) {
        (Some(max), Some(min)) => format!("between {} and {}", num(min), num(max)),
        (Some(max), None) => format!("at most {}", num(max)),
        (None, Some(min)) => format!("at least {}", num(min)),
        (None, None) => "any value".into(),
    };
    let value = r.value.map(num).unwrap_or_else(|| "no value".into());
    match r.status {
        GateStatus::Fail => format!(
            "query {} is {value}, outside {levels}, for {} evaluations in a row",
            r.name, r.failed_in_a_row
        ),
        GateStatus::Warn if r.failed_in_a_row > 0 => format!(
            "query {} is {value}, outside {levels} ({} of {} evaluations in a row before it fails)",
            r.name, r.failed_in_a_row, r.consecutive
        ),
        GateStatus::Warn => format!(
            "query {} is {value}, past its warn level {} (must be {levels})",
            r.name,
            r.warn.map(num).unwrap_or_default()
        ),
        GateStatus::Pass => format!("query {} is {value}, {levels} as required", r.name),
        GateStatus::NoData => format!(
            "query {} has no data: {}",
            r.name,
            r.no_data.as_deref().unwrap_or("no evaluation")
        ),
    }
}

/// A value as people read it: up to four significant decimals, no trailing zeros.
fn num(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Span;

    fn gate(min: Option<f64>, max: Option<f64>, consecutive: u32) -> QueryGate {
        QueryGate {
            name: "checkout".into(),
            query: "x".into(),
            max,
            min,
            warn: None,
            interval: Span(5_000),
            consecutive,
        }
    }

    #[test]
    fn a_gate_fails_only_after_its_consecutive_failures_and_no_data_does_not_break_a_streak() {
        let gates = [gate(Some(0.95), None, 3)];
        let mut q = Queries::default();
        q.start_stage(&gates);
        let t = PlanTime(1_000);
        assert!(q.record(&gates, "checkout", Some(0.90), None, t).is_none());
        assert!(q.holds(&gates, Span(0)));
        assert!(
            !q.holds(&gates, Span(15_000)),
            "a streak holds a stage end only as long as its evaluations take"
        );
        assert!(q
            .record(&gates, "checkout", None, Some("timeout".into()), t)
            .is_none());
        assert!(q.record(&gates, "checkout", Some(0.90), None, t).is_none());
        let failed = q
            .record(&gates, "checkout", Some(0.80), None, t)
            .expect("third failure in a row");
        assert_eq!(failed.status, GateStatus::Fail);
        assert_eq!(
            explain_query(&failed),
            "query checkout is 0.8, outside at least 0.95, for 3 evaluations in a row"
        );
    }

    #[test]
    fn a_passing_value_ends_a_streak_and_nan_is_no_data() {
        let gates = [gate(None, Some(10.0), 2)];
        let mut q = Queries::default();
        q.start_stage(&gates);
        let t = PlanTime(0);
        q.record(&gates, "checkout", Some(11.0), None, t);
        q.record(&gates, "checkout", Some(9.0), None, t);
        assert!(!q.holds(&gates, Span(0)));
        q.record(&gates, "checkout", Some(f64::NAN), None, t);
        let r = &q.results()[0];
        assert_eq!(r.status, GateStatus::NoData);
        assert_eq!(
            explain_query(r),
            "query checkout has no data: the query returned no number"
        );
    }

    #[test]
    fn a_stage_starts_with_no_data() {
        let gates = [gate(Some(1.0), None, 1)];
        let mut q = Queries::default();
        q.start_stage(&gates);
        assert_eq!(q.results()[0].status, GateStatus::NoData);
        assert!(q
            .record(&gates, "other", Some(0.0), None, PlanTime(0))
            .is_none());
        assert_eq!(q.results()[0].evaluations, 0);
    }
}
