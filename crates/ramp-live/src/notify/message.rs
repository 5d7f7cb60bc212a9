//! What a notification says: one sentence per event, with the deployment, the stage, its
//! weight and the numbers behind it, built from the engine's actions and summary.
//!
//! Pure: no clock, no I/O. The driver calls [`compose`] for each action it carries out (never
//! for replayed ones, which it does not carry out), so a resumed run does not tell again what
//! it told before the restart.

use ramp_core::engine::{explain, Action, CheckpointReport};
use ramp_core::plan::{Metric, NotifyEvent, Plan, Scope};
use ramp_core::summary::{Decision, GateResult, GateStatus, Metrics, Outcome, Summary};
use ramp_core::PlanTime;
use serde::Serialize;
use std::collections::BTreeMap;

/// One notification, before it is put in any target's format.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// What happened.
    pub event: NotifyEvent,
    /// The deployment's id.
    pub deployment: String,
    /// The journal's run id.
    pub run_id: i64,
    /// The 1-based stage it concerns, when it concerns one.
    pub stage: Option<usize>,
    /// The number of stages in the plan.
    pub stages: usize,
    /// The canary's weight, percent, at that stage.
    pub weight_percent: Option<f64>,
    /// The gate it concerns, as "canary error_rate", when one does.
    pub gate: Option<String>,
    /// The numbers behind the sentence, by name (`observed`, `fail_level`, `elapsed_s`,
    /// `requests`, …), so a receiver need not parse the sentence.
    pub numbers: BTreeMap<&'static str, f64>,
    /// The one sentence a person reads.
    pub sentence: String,
    /// Plan time, seconds since the run started.
    pub t_s: f64,
    /// Wall-clock time, Unix milliseconds.
    pub unix_ms: i64,
    /// Whether this is a rollback rehearsal (`ramp rehearse`) rather than a rollout.
    pub rehearsal: bool,
}

/// What [`compose`] needs besides the action.
pub struct Context<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// The engine's summary after the action.
    pub summary: &'a Summary,
    /// When the action was taken.
    pub t: PlanTime,
    /// Wall-clock time now.
    pub unix_ms: i64,
    /// The journal's run id.
    pub run_id: i64,
    /// Whether this is a rehearsal.
    pub rehearsal: bool,
}

/// The gates already reported as breached, by stage, so a gate that keeps warning is told
/// once per stage rather than at every checkpoint.
#[derive(Debug, Default)]
pub struct Breaches {
    /// (stage, metric, scope) already told.
    told: Vec<(usize, Metric, Scope)>,
}

/// The notification of an action, when it is one people are told about; `breaches` keeps
/// a warning from being told at every checkpoint.
pub fn compose(action: &Action, cx: &Context<'_>, breaches: &mut Breaches) -> Option<Note> {
    let name = &cx.plan.deployment.id;
    let who = if cx.rehearsal {
        format!("{name} (rehearsal)")
    } else {
        name.clone()
    };
    let stages = cx.plan.stages.len();
    let mut numbers = BTreeMap::new();
    let stage_at = |index: usize| cx.summary.stages.iter().find(|s| s.index == index);
    let in_stage =
        |index: usize| stage_at(index).map_or(0.0, |s| (cx.t.as_secs_f64() - s.started_s).max(0.0));
    let (event, stage, weight, gate, sentence) = match action {
        Action::StageStarted { index, weight } => {
            let w = weight.percent();
            let planned = cx
                .plan
                .stages
                .get(index.saturating_sub(1))
                .map_or(0.0, |s| s.duration.as_secs_f64());
            numbers.insert("planned_duration_s", planned);
            (
                NotifyEvent::StageStarted,
                Some(*index),
                Some(w),
                None,
                format!(
                    "{who}: stage {index} of {stages} started: the canary takes {} of traffic for {}.",
                    pct(w),
                    secs(planned)
                ),
            )
        }
        Action::StageDecided {
            index,
            decision,
            reasons,
        } => {
            let passed = match decision {
                Decision::Proceed => "passed",
                Decision::Monitor => "passed with a caveat",
                // A halt is told as `halted` and a rollback as `rollback`, from their own
                // actions.
                Decision::Halt | Decision::Rollback => return None,
            };
            let s = stage_at(*index)?;
            let elapsed = s.elapsed_s;
            numbers.insert("elapsed_s", elapsed);
            let canary = &s.metrics_by_scope.canary;
            add_metrics(&mut numbers, canary);
            let next = match cx.plan.stages.get(*index) {
                Some(n) => format!("next is stage {} at {}", index + 1, pct(n.weight.percent())),
                None => "that was the last stage".into(),
            };
            let caveat = match decision {
                Decision::Monitor => reasons
                    .first()
                    .map(|r| format!(" ({})", clause(r)))
                    .unwrap_or_default(),
                Decision::Proceed | Decision::Halt | Decision::Rollback => String::new(),
            };
            (
                NotifyEvent::StageEnded,
                Some(*index),
                Some(s.weight),
                None,
                format!(
                    "{who}: stage {index} of {stages} ({}) {passed} after {}: the canary served {}{caveat}; {next}.",
                    pct(s.weight),
                    secs(elapsed),
                    describe(canary)
                ),
            )
        }
        Action::Checkpoint(report) => {
            let (r, more) = new_breach(report, breaches)?;
            let elapsed = report.elapsed.as_secs_f64();
            numbers.insert("elapsed_s", elapsed);
            gate_numbers(&mut numbers, r);
            let w = report.weight.percent();
            let others = match more {
                0 => String::new(),
                1 => " (and 1 more gate)".into(),
                n => format!(" (and {n} more gates)"),
            };
            let next = match r.status {
                GateStatus::Fail => "the engine acts on it at once",
                GateStatus::Warn | GateStatus::Pass | GateStatus::NoData => {
                    "the rollout goes on and the gates keep watching"
                }
            };
            (
                NotifyEvent::Breach,
                Some(report.stage),
                Some(w),
                Some(format!("{} {}", r.scope.key(), r.metric)),
                format!(
                    "{who}: breach at stage {} of {stages} ({}) after {}: {}{others}; {next}.",
                    report.stage,
                    pct(w),
                    secs(elapsed),
                    clause(&explain(r))
                ),
            )
        }
        Action::RollbackInitiated { stage, reason } => {
            let s = stage_at(*stage);
            let w = s.map(|s| s.weight);
            let elapsed = in_stage(*stage);
            numbers.insert("elapsed_s", elapsed);
            let failing = s.and_then(|s| s.gates.iter().find(|g| g.status == GateStatus::Fail));
            if let Some(r) = failing {
                gate_numbers(&mut numbers, r);
            }
            (
                NotifyEvent::Rollback,
                Some(*stage),
                w,
                failing.map(|r| format!("{} {}", r.scope.key(), r.metric)),
                format!(
                    "{who}: rolled back at stage {stage} of {stages}{} after {}: {}; the canary is being drained (weight 0 %).",
                    w.map(|w| format!(" ({})", pct(w))).unwrap_or_default(),
                    secs(elapsed),
                    clause(reason)
                ),
            )
        }
        Action::AwaitingApproval { stage, missing } => {
            let next = cx.plan.stages.get(stage.saturating_sub(1));
            let w = next.map(|s| s.weight.percent());
            let now = cx.summary.stages.last().map_or(0.0, |s| s.weight);
            (
                NotifyEvent::ApprovalNeeded,
                Some(*stage),
                w,
                None,
                format!(
                    "{who}: stage {stage} of {stages}{} waits for approval from {}; the canary stays at {} until then (ramp approve).",
                    w.map(|w| format!(" ({})", pct(w))).unwrap_or_default(),
                    and_list(missing),
                    pct(now)
                ),
            )
        }
        Action::Finished(outcome) => {
            let last = cx.summary.stages.last();
            let index = last.map(|s| s.index);
            let w = last.map(|s| s.weight);
            let total = cx.t.as_secs_f64();
            numbers.insert("total_s", total);
            let at = match (index, w) {
                (Some(i), Some(w)) => format!(" at stage {i} of {stages} ({})", pct(w)),
                _ => String::new(),
            };
            let (event, sentence) = match outcome {
                Outcome::Promoted => (
                    NotifyEvent::Finished,
                    format!(
                        "{who}: promoted after {}: every stage passed and the canary serves 100 % of traffic.",
                        secs(total)
                    ),
                ),
                Outcome::PromotedWithCaveats => (
                    NotifyEvent::Finished,
                    format!(
                        "{who}: promoted with caveats after {}: the canary serves 100 % of traffic, but some gate warned ({}).",
                        secs(total),
                        last.and_then(|s| s.reasons.first())
                            .map_or("see the report".into(), |r| clause(r))
                    ),
                ),
                Outcome::RolledBack => (
                    NotifyEvent::Finished,
                    format!(
                        "{who}: finished rolled back{at} after {} in all; the canary is at 0 % and stable serves all traffic.",
                        secs(total)
                    ),
                ),
                Outcome::Halted => (
                    NotifyEvent::Halted,
                    format!(
                        "{who}: halted{at} after {}: {}; the weight stays where it is until an operator decides (ramp promote or ramp abort).",
                        secs(total),
                        last.and_then(|s| s.reasons.first())
                            .map_or("the engine could not decide".into(), |r| clause(r))
                    ),
                ),
            };
            (event, index, w, None, sentence)
        }
        Action::SetWeight(_) => return None,
    };
    if let Some(w) = weight {
        numbers.insert("weight_percent", w);
    }
    Some(Note {
        event,
        deployment: name.clone(),
        run_id: cx.run_id,
        stage,
        stages,
        weight_percent: weight,
        gate,
        numbers,
        sentence,
        t_s: cx.t.as_secs_f64(),
        unix_ms: cx.unix_ms,
        rehearsal: cx.rehearsal,
    })
}

/// The first gate of a checkpoint that warns or fails and was not told yet in its stage,
/// and how many other new ones there are; every new one is marked told.
fn new_breach<'r>(
    report: &'r CheckpointReport,
    breaches: &mut Breaches,
) -> Option<(&'r GateResult, usize)> {
    let mut first = None;
    let mut more = 0;
    for g in &report.checkpoint.gates {
        let breached = match g.status {
            GateStatus::Warn | GateStatus::Fail => true,
            GateStatus::Pass | GateStatus::NoData => false,
        };
        let key = (report.stage, g.metric, g.scope);
        if !breached || breaches.told.contains(&key) {
            continue;
        }
        breaches.told.push(key);
        if first.is_none() {
            first = Some(g);
        } else {
            more += 1;
        }
    }
    first.map(|g| (g, more))
}

/// A gate's value and levels as numbers.
fn gate_numbers(numbers: &mut BTreeMap<&'static str, f64>, r: &GateResult) {
    let entries = [
        ("observed", r.observed),
        ("conservative", r.conservative),
        ("fail_level", r.max.or(r.min)),
        ("warn_level", r.warn),
    ];
    for (k, v) in entries {
        if let Some(v) = v {
            numbers.insert(k, v);
        }
    }
    numbers.insert("samples", r.samples as f64);
    numbers.insert("window_s", r.span_s);
}

/// A scope's headline numbers.
fn add_metrics(numbers: &mut BTreeMap<&'static str, f64>, m: &Metrics) {
    numbers.insert("requests", m.requests as f64);
    for (k, v) in [("error_rate", m.error_rate), ("p99_ms", m.p99_ms)] {
        if let Some(v) = v {
            numbers.insert(k, v);
        }
    }
}

/// "1,234 requests at 0.31 % errors and a p99 of 180 ms", or "no requests".
fn describe(m: &Metrics) -> String {
    if m.requests == 0 {
        return "no requests".into();
    }
    let mut out = format!("{} requests", ramp_core::engine::group(m.requests));
    if let Some(e) = m.error_rate {
        out.push_str(&format!(" at {} errors", Metric::ErrorRate.format(e)));
    }
    if let Some(p) = m.p99_ms {
        out.push_str(&format!(" and a p99 of {}", Metric::P99Ms.format(p)));
    }
    out
}

/// A sentence as a clause inside another: no final full stop, no line breaks.
fn clause(s: &str) -> String {
    s.trim().trim_end_matches('.').replace(['\n', '\r'], " ")
}

/// A percentage: "25 %", "2.5 %".
fn pct(p: f64) -> String {
    let s = format!("{p:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s} %")
}

/// Seconds for people: "4.1 s", "2 min 5 s", "1 h 3 min".
fn secs(s: f64) -> String {
    if s < 60.0 {
        return format!("{s:.1} s");
    }
    let whole = s.round() as u64;
    if whole < 3600 {
        match whole % 60 {
            0 => format!("{} min", whole / 60),
            r => format!("{} min {r} s", whole / 60),
        }
    } else {
        match (whole % 3600) / 60 {
            0 => format!("{} h", whole / 3600),
            m => format!("{} h {m} min", whole / 3600),
        }
    }
}

/// "alice", "alice and bob", "alice, bob and carol".
fn and_list(names: &[String]) -> String {
    match names {
        [] => "nobody".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(pct(25.0), "25 %");
        assert_eq!(pct(2.5), "2.5 %");
        assert_eq!(secs(4.12), "4.1 s");
        assert_eq!(secs(125.0), "2 min 5 s");
        assert_eq!(secs(3780.0), "1 h 3 min");
        assert_eq!(
            and_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
        assert_eq!(clause("It failed.\n"), "It failed");
    }
}
