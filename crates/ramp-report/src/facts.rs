//! Facts derived from a summary that several sections share: which value a gate judged,
//! which stage the report compares with the baseline, and the strengths, concerns and
//! recommendations of the verdict. Nothing here is typed in: every sentence is built from
//! the summary's numbers, and a list that has no data stays empty.

use crate::format::{
    change_pct, level_unit, offset, opt_value, precise, secs, signed_pct, span, value, DASH,
};
use ramp_core::summary::{
    CheckpointSummary, Decision, GateResult, GateStatus, Metrics, Outcome, RehearsalOutcome,
    ScopedMetrics, StageSummary, Summary,
};
use ramp_core::{Metric, Scope};

/// A relative change against the baseline beyond which the verdict raises a concern.
pub(crate) const REGRESSION_PCT: f64 = 10.0;

/// The emoji of a gate status.
pub(crate) fn status_emoji(status: GateStatus) -> &'static str {
    match status {
        GateStatus::Pass => "✅",
        GateStatus::Warn => "⚠️",
        GateStatus::Fail => "❌",
        GateStatus::NoData => "❔",
    }
}

/// How bad a status is, for picking the worst of several.
fn severity(status: GateStatus) -> u8 {
    match status {
        GateStatus::Pass => 0,
        GateStatus::Warn => 1,
        GateStatus::NoData => 2,
        GateStatus::Fail => 3,
    }
}

/// The worst status among gates; `None` when there are none.
pub(crate) fn worst_status(gates: &[GateResult]) -> Option<GateStatus> {
    gates.iter().map(|g| g.status).max_by_key(|s| severity(*s))
}

/// A metric's short name, as the decision matrix uses it ("P99", "Error rate").
pub(crate) fn short_name(metric: Metric) -> &'static str {
    match metric {
        Metric::P50Ms => "P50",
        Metric::P95Ms => "P95",
        Metric::P99Ms => "P99",
        Metric::ErrorRate => "Error rate",
        Metric::ThroughputRps => "Throughput",
    }
}

/// A metric's name for sentences ("P99 latency").
pub(crate) fn long_name(metric: Metric) -> &'static str {
    match metric {
        Metric::P50Ms => "P50 latency",
        Metric::P95Ms => "P95 latency",
        Metric::P99Ms => "P99 latency",
        Metric::ErrorRate => "Error rate",
        Metric::ThroughputRps => "Throughput",
    }
}

/// The scope whose numbers are a metric's headline: the canary's latency and errors, the
/// whole service's throughput.
pub(crate) fn headline_scope(metric: Metric) -> Scope {
    match metric {
        Metric::ThroughputRps => Scope::Service,
        _ => Scope::Canary,
    }
}

/// A gate's name for sentences, naming the scope when it is not the metric's headline scope
/// ("P99 latency", "Error rate (service)").
pub(crate) fn gate_name(gate: &GateResult) -> String {
    if gate.scope == headline_scope(gate.metric) {
        long_name(gate.metric).to_string()
    } else {
        format!("{} ({})", long_name(gate.metric), gate.scope.key())
    }
}

/// Lower-cases the first letter of a name for use inside a sentence ("error rate").
pub(crate) fn in_sentence(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        // Names that start with a quantile ("P99 latency") keep their capital.
        Some(first) if !name.starts_with('P') => first.to_lowercase().chain(chars).collect(),
        Some(_) => name.to_string(),
        None => String::new(),
    }
}

/// The fail level of a gate as a comparison sign and value: `('<', max)` for ceilings,
/// `('>', min)` for floors.
pub(crate) fn fail_level(gate: &GateResult) -> Option<(char, f64)> {
    match (gate.max, gate.min) {
        (Some(max), _) => Some(('<', max)),
        (None, Some(min)) => Some(('>', min)),
        (None, None) => None,
    }
}

/// Whether larger values of the gate's metric are worse.
fn higher_is_worse(metric: Metric) -> bool {
    metric != Metric::ThroughputRps
}

/// The value of `metric` for `scope` in a span's metrics, falling back to the headline
/// numbers when the scoped ones are missing and the scope is the headline's.
fn scoped_value(
    by_scope: &ScopedMetrics,
    headline: &Metrics,
    metric: Metric,
    scope: Scope,
) -> Option<f64> {
    by_scope
        .scope(scope)
        .get(metric)
        .or_else(|| {
            (scope == headline_scope(metric))
                .then(|| headline.get(metric))
                .flatten()
        })
        .filter(|v| v.is_finite())
}

/// The value a checkpoint recorded for a gate's metric and scope.
pub(crate) fn checkpoint_value(
    cp: &CheckpointSummary,
    metric: Metric,
    scope: Scope,
) -> Option<f64> {
    scoped_value(&cp.metrics_by_scope, &cp.metrics, metric, scope)
}

/// The value a whole stage recorded for a metric and scope.
pub(crate) fn stage_value(stage: &StageSummary, metric: Metric, scope: Scope) -> Option<f64> {
    scoped_value(&stage.metrics_by_scope, &stage.metrics, metric, scope)
}

/// The scope a stage judged a metric on: its gate's scope, else the headline scope.
pub(crate) fn stage_scope(stage: &StageSummary, metric: Metric) -> Scope {
    stage
        .gates
        .iter()
        .find(|g| g.metric == metric)
        .map_or(headline_scope(metric), |g| g.scope)
}

/// The mean of the checkpoints' values of a metric and scope; `None` without values.
pub(crate) fn checkpoint_average(
    stage: &StageSummary,
    metric: Metric,
    scope: Scope,
) -> Option<f64> {
    let values: Vec<f64> = stage
        .checkpoints
        .iter()
        .filter_map(|cp| checkpoint_value(cp, metric, scope))
        .collect();
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    mean.is_finite().then_some(mean)
}

/// "1 checkpoint", "24 checkpoints".
pub(crate) fn checkpoints_noun(n: usize) -> String {
    if n == 1 {
        "1 checkpoint".to_string()
    } else {
        format!("{n} checkpoints")
    }
}

/// The gates a stage's tables list, each with the time of the checkpoint it comes from when
/// it is not one of the stage's own end-of-stage results. After a rollback a stage's own
/// results may hold only the failing window evaluation; the other gates then come from the
/// last checkpoint, so that the tables still show every metric the stage was judged on.
pub(crate) fn table_gates(stage: &StageSummary) -> Vec<(&GateResult, Option<f64>)> {
    let mut out: Vec<(&GateResult, Option<f64>)> = stage.gates.iter().map(|g| (g, None)).collect();
    if let Some(cp) = stage.checkpoints.last() {
        for g in &cp.gates {
            let listed = stage
                .gates
                .iter()
                .any(|own| own.metric == g.metric && own.scope == g.scope);
            if !listed {
                out.push((g, Some(cp.t_s)));
            }
        }
    }
    // Keep the report's metric order whatever order the gates came in; the sort is stable,
    // so gates of one metric keep their recorded order.
    out.sort_by_key(|(g, _)| Metric::ALL.iter().position(|m| *m == g.metric));
    out
}

/// The window a gate was evaluated over during a stage: the span of its sliding-window
/// evaluations at the checkpoints (the longest, since early windows may be cut short by the
/// stage start). `None` when no checkpoint evaluated it.
pub(crate) fn gate_window(stage: &StageSummary, gate: &GateResult) -> Option<f64> {
    stage
        .checkpoints
        .iter()
        .flat_map(|cp| cp.gates.iter())
        .filter(|g| g.metric == gate.metric && g.scope == gate.scope)
        .map(|g| g.span_s)
        .filter(|s| s.is_finite() && *s > 0.0)
        .reduce(f64::max)
}

/// The stage the report compares with the baseline: the stage of the rollback when there
/// was one, else the last stage that ran.
pub(crate) fn comparison_stage(summary: &Summary) -> Option<&StageSummary> {
    summary
        .rollback
        .as_ref()
        .and_then(|rb| summary.stages.iter().find(|s| s.index == rb.stage))
        .or_else(|| summary.stages.last())
}

/// Whether a stage is the rollout's final one (it runs at 100 %).
pub(crate) fn is_final_weight(stage: &StageSummary) -> bool {
    stage.weight >= 100.0
}

/// A stage's name with its weight ("Stage 2 (25%)").
pub(crate) fn stage_label(stage: &StageSummary) -> String {
    format!(
        "Stage {} ({}%)",
        stage.index,
        crate::format::trimmed(stage.weight, 2)
    )
}

/// The stage's SLO status in a few words for the decision matrix ("✅ All met",
/// "⚠️ P99 over warn level", "❌ Error rate over threshold", "❔ No data for P50, P95").
pub(crate) fn slo_status(stage: &StageSummary) -> String {
    if stage.gates.is_empty() {
        return format!("{DASH} No gates evaluated");
    }
    let names = |status: GateStatus| -> Vec<&GateResult> {
        stage.gates.iter().filter(|g| g.status == status).collect()
    };
    let join = |gates: &[&GateResult]| -> String {
        gates
            .iter()
            .map(|g| short_name(g.metric))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let side = |gates: &[&GateResult], over: &str, under: &str| -> String {
        if gates.iter().all(|g| g.max.is_some()) {
            over.to_string()
        } else if gates.iter().all(|g| g.max.is_none()) {
            under.to_string()
        } else {
            "beyond".to_string()
        }
    };
    let mut parts = Vec::new();
    let fails = names(GateStatus::Fail);
    if !fails.is_empty() {
        parts.push(format!(
            "❌ {} {} threshold",
            join(&fails),
            side(&fails, "over", "under")
        ));
    }
    let no_data = names(GateStatus::NoData);
    if !no_data.is_empty() {
        parts.push(format!("❔ No data for {}", join(&no_data)));
    }
    let warns = names(GateStatus::Warn);
    if !warns.is_empty() {
        parts.push(format!(
            "⚠️ {} {} warn level",
            join(&warns),
            side(&warns, "over", "under")
        ));
    }
    if parts.is_empty() {
        "✅ All met".to_string()
    } else {
        parts.join("; ")
    }
}

/// The decision in capitals, as the decision matrix shows it.
pub(crate) fn decision_word(decision: Option<Decision>) -> &'static str {
    match decision {
        Some(Decision::Proceed) => "PROCEED",
        Some(Decision::Monitor) => "MONITOR",
        Some(Decision::Halt) => "HALT",
        Some(Decision::Rollback) => "ROLL BACK",
        None => "NONE (run cut short)",
    }
}

/// A sentence describing a gate's result with its numbers ("P99 latency was 815 ms over
/// stage 4 (checkpoint average 821.0 ms), over the 800 ms warn level (fail level 900 ms)").
fn gate_sentence(stage: &StageSummary, gate: &GateResult) -> String {
    let name = gate_name(gate);
    let observed = opt_value(gate.metric, gate.observed);
    let avg = checkpoint_average(stage, gate.metric, gate.scope)
        .map(|a| {
            format!(
                " (average of {} {})",
                checkpoints_noun(stage.checkpoints.len()),
                precise(gate.metric, a)
            )
        })
        .unwrap_or_default();
    let fail = fail_level(gate);
    let over = |sign: char| if sign == '<' { "over" } else { "under" };
    // A stage-end verdict covers the whole stage; a rollback's covers the failing window.
    let whole_stage = (gate.span_s - stage.elapsed_s).abs() < 1.0;
    // A window longer than the stage ran reaches back into the stage before: it is not "in
    // stage 2" (an 11 s window of an 8 s stage), so it is named by when it ended.
    let when = if whole_stage {
        format!("over stage {}", stage.index)
    } else if gate.span_s > stage.elapsed_s + 0.5 {
        format!(
            "over the {} window that ended in stage {} (it began before the stage)",
            span(gate.span_s),
            stage.index
        )
    } else {
        format!("over {} in stage {}", span(gate.span_s), stage.index)
    };
    let avg = if whole_stage { avg } else { String::new() };
    match gate.status {
        GateStatus::Warn => {
            let warn = gate
                .warn
                .map_or_else(|| DASH.to_string(), |w| level_unit(gate.metric, w));
            let (sign, fail_text) = fail.map_or(('<', DASH.to_string()), |(s, v)| {
                (s, level_unit(gate.metric, v))
            });
            format!(
                "{name} was {observed} {when}{avg}, {} the {warn} warn level (fail level {fail_text})",
                over(sign)
            )
        }
        GateStatus::Fail => {
            let (sign, fail_text) = fail.map_or(('<', DASH.to_string()), |(s, v)| {
                (s, level_unit(gate.metric, v))
            });
            // The engine fails a gate on the confidence bound nearest to passing, so the
            // sentence gives that bound too when it was recorded.
            let bound = gate
                .conservative
                .filter(|c| c.is_finite())
                .map(|c| format!(" (99.9% confidence bound {})", value(gate.metric, c)))
                .unwrap_or_default();
            format!(
                "{name} was {observed} {when}{bound}, {} the {fail_text} threshold",
                over(sign)
            )
        }
        GateStatus::NoData => format!(
            "No data for {} in stage {}: {} requests over {}, fewer than the gate needs",
            in_sentence(&name),
            stage.index,
            crate::format::count(gate.samples),
            span(gate.span_s)
        ),
        GateStatus::Pass => {
            let (sign, fail_text) = fail.map_or(('<', DASH.to_string()), |(s, v)| {
                (s, level_unit(gate.metric, v))
            });
            let bound = gate
                .warn
                .map(|w| format!("the {} warn level", level_unit(gate.metric, w)))
                .unwrap_or_else(|| format!("the {fail_text} threshold"));
            format!(
                "{name} {observed} stayed {} {bound} {when}",
                if sign == '<' { "under" } else { "over" }
            )
        }
    }
}

/// One metric's change against the baseline in the comparison stage.
pub(crate) struct BaselineChange {
    /// The metric.
    pub(crate) metric: Metric,
    /// Its baseline value.
    pub(crate) baseline: Option<f64>,
    /// Its observed value in the comparison stage.
    pub(crate) observed: Option<f64>,
    /// The relative change in percent.
    pub(crate) change: Option<f64>,
}

/// Every metric's change against the baseline in the comparison stage, in report order.
pub(crate) fn baseline_changes(summary: &Summary) -> Vec<BaselineChange> {
    let Some(stage) = comparison_stage(summary) else {
        return Vec::new();
    };
    Metric::ALL
        .into_iter()
        .map(|metric| {
            let baseline = summary
                .baseline
                .metrics
                .get(metric)
                .filter(|v| v.is_finite());
            let observed = stage_value(stage, metric, stage_scope(stage, metric));
            BaselineChange {
                metric,
                baseline,
                observed,
                change: change_pct(observed, baseline),
            }
        })
        .collect()
}

/// The verdict's three lists.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// What the data show went well.
    pub(crate) strengths: Vec<String>,
    /// What the data show needs attention.
    pub(crate) concerns: Vec<String>,
    /// What to do about the concerns, and whether to go on.
    pub(crate) recommendations: Vec<String>,
}

impl Verdict {
    /// Adds a recommendation unless the same one is already there.
    fn recommend(&mut self, text: String) {
        if !self.recommendations.contains(&text) {
            self.recommendations.push(text);
        }
    }
}

/// Builds the strengths, concerns and recommendations from the data.
pub(crate) fn verdict(summary: &Summary) -> Verdict {
    let mut v = Verdict::default();
    strengths(summary, &mut v);
    concerns(summary, &mut v);
    v
}

/// Strengths: stages whose gates all passed, rehearsals and rollbacks that recovered in
/// time, and the last stage's passing gates with their numbers.
fn strengths(summary: &Summary, v: &mut Verdict) {
    let all_pass = |s: &StageSummary| {
        !s.gates.is_empty() && s.gates.iter().all(|g| g.status == GateStatus::Pass)
    };
    let passed: Vec<&StageSummary> = summary.stages.iter().filter(|s| all_pass(s)).collect();
    if !passed.is_empty() && passed.len() == summary.stages.len() {
        v.strengths.push(match summary.stages.len() {
            1 => "The one stage run passed all its SLO gates".to_string(),
            n => format!("All {n} stages passed all their SLO gates"),
        });
    } else if !passed.is_empty() {
        let list = passed
            .iter()
            .map(|s| s.index.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let (noun, their) = if passed.len() == 1 {
            ("Stage", "its")
        } else {
            ("Stages", "their")
        };
        // "of the 4 stages run": how many ran, said once, not as a count of the passing
        // stages that read like the stages run ("3 of 4 stages run" when all 4 ran). Some
        // stage did not pass, so at least two ran.
        v.strengths.push(format!(
            "{noun} {list} of the {} stages run passed all {their} SLO gates",
            summary.stages.len()
        ));
    }
    for r in summary.rehearsals.iter().filter(|r| r.met_target()) {
        let total = r.total_recovery_s.unwrap_or(f64::NAN);
        let detect = r
            .detection_s
            .map(|d| format!(", detected {} after onset", secs(d - r.fault_onset_s)))
            .unwrap_or_default();
        v.strengths.push(format!(
            "Automatic rollback rehearsed (“{}”): recovered in {} (target < {}){detect}",
            r.name,
            secs(total),
            secs(r.target_s)
        ));
    }
    if let Some(rb) = &summary.rollback {
        if let Some(restored) = rb.restoration_s {
            let from = rb.fault_onset_s.unwrap_or(rb.detection_s);
            let total = rb.total_recovery_s.unwrap_or(restored - from);
            v.strengths.push(format!(
                "Automatic rollback worked: the canary was drained {} after detection and service metrics were back at baseline {} after {}",
                secs(rb.rollback_s - rb.detection_s),
                secs(total),
                if rb.fault_onset_s.is_some() { "the fault began" } else { "detection" }
            ));
        }
    }
    if let Some(last) = summary.stages.last() {
        for g in last.gates.iter().filter(|g| g.status == GateStatus::Pass) {
            v.strengths.push(gate_sentence(last, g));
        }
    }
}

/// "a", "a and b", "a, b and c".
pub(crate) fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A reason recorded as a sentence, made fit to end a clause: without its final period.
pub(crate) fn clause(reason: &str) -> &str {
    reason.trim().trim_end_matches('.')
}

/// One concern and one recommendation for every gate of a stage that had no data.
fn no_data_concern(stage: &StageSummary, gates: &[&GateResult], v: &mut Verdict) {
    let same = gates
        .iter()
        .all(|g| g.samples == gates[0].samples && g.span_s == gates[0].span_s);
    let names: Vec<String> = gates
        .iter()
        .map(|g| {
            let name = in_sentence(&gate_name(g));
            if same {
                name
            } else {
                format!(
                    "{name} ({} requests over {})",
                    crate::format::count(g.samples),
                    span(g.span_s)
                )
            }
        })
        .collect();
    let noun = if gates.len() == 1 {
        "gate needs"
    } else {
        "gates need"
    };
    let detail = if same {
        format!(
            ": {} requests over {}, fewer than the {noun}",
            crate::format::count(gates[0].samples),
            span(gates[0].span_s)
        )
    } else {
        format!(", fewer requests than the {noun}")
    };
    v.concerns.push(format!(
        "No data for {} in stage {}{detail}",
        join_and(&names),
        stage.index
    ));
    let plain: Vec<String> = gates.iter().map(|g| in_sentence(&gate_name(g))).collect();
    v.recommend(format!(
        "Check that the canary receives traffic and that {} {} reported: Ramp never promotes without data",
        join_and(&plain),
        if gates.len() == 1 { "is" } else { "are" }
    ));
}

/// Concerns and their recommendations: every warn, fail and no-data gate, every metric more
/// than [`REGRESSION_PCT`] worse than the baseline, every rehearsal that missed its target,
/// a rollback or a halt; then the recommendation that follows from the outcome.
fn concerns(summary: &Summary, v: &mut Verdict) {
    let mut warned_metrics = Vec::new();
    for stage in &summary.stages {
        let mut no_data = Vec::new();
        for g in &stage.gates {
            match g.status {
                GateStatus::Pass => {}
                GateStatus::Warn => {
                    v.concerns.push(gate_sentence(stage, g));
                    warned_metrics.push(g.metric);
                    let w = g.warn.map(|w| level_unit(g.metric, w)).unwrap_or_default();
                    // "In production" only when the version is going there: beside "Do not
                    // promote this version" it would contradict the verdict.
                    let promoted = matches!(
                        summary.outcome,
                        Outcome::Promoted | Outcome::PromotedWithCaveats
                    );
                    v.recommend(if promoted {
                        format!(
                            "Monitor {} closely in production: it ended stage {} beyond its {w} warn level",
                            in_sentence(&gate_name(g)),
                            stage.index
                        )
                    } else {
                        format!(
                            "Look into {} as well: it ended stage {} beyond its {w} warn level",
                            in_sentence(&gate_name(g)),
                            stage.index
                        )
                    });
                }
                GateStatus::Fail => {
                    v.concerns.push(gate_sentence(stage, g));
                    warned_metrics.push(g.metric);
                    v.recommend(format!(
                        "Find and fix the cause of the {} breach in stage {} before another rollout",
                        in_sentence(&gate_name(g)),
                        stage.index
                    ));
                }
                GateStatus::NoData => no_data.push(g),
            }
        }
        if !no_data.is_empty() {
            no_data_concern(stage, &no_data, v);
        }
    }
    if let Some(stage) = comparison_stage(summary) {
        let mut regressions = Vec::new();
        for c in baseline_changes(summary) {
            let Some(pct) = c.change else { continue };
            let worse = if higher_is_worse(c.metric) { pct } else { -pct };
            if worse <= REGRESSION_PCT {
                continue;
            }
            let (o, b) = (
                c.observed.unwrap_or(f64::NAN),
                c.baseline.unwrap_or(f64::NAN),
            );
            let verb = if pct > 0.0 { "rose" } else { "fell" };
            v.concerns.push(format!(
                "{} {verb} {}% against the baseline in stage {} ({} vs {})",
                long_name(c.metric),
                crate::format::fixed(pct.abs(), 1),
                stage.index,
                value(c.metric, o),
                value(c.metric, b)
            ));
            if !warned_metrics.contains(&c.metric) {
                regressions.push(format!(
                    "{} {}",
                    in_sentence(long_name(c.metric)),
                    signed_pct(pct)
                ));
            }
        }
        if !regressions.is_empty() {
            v.recommend(format!(
                "Investigate the changes against the baseline before the next rollout: {}",
                join_and(&regressions)
            ));
        }
    }
    for r in &summary.rehearsals {
        if r.met_target() {
            continue;
        }
        match (r.outcome, r.detection_s, r.total_recovery_s) {
            (RehearsalOutcome::NotDetected, _, _) | (_, None, _) => {
                v.concerns.push(format!(
                    "Rehearsal “{}” ({}) was not detected: no gate failed",
                    r.name, r.fault
                ));
                v.recommend(format!(
                    "Add or tighten a gate that catches “{}” (rehearsal “{}”)",
                    r.fault, r.name
                ));
            }
            (_, Some(_), None) => {
                v.concerns.push(format!(
                    "Rehearsal “{}” rolled back but service metrics were not back at baseline by its end",
                    r.name
                ));
                v.recommend(format!(
                    "Investigate why service metrics stayed off baseline after rehearsal “{}”",
                    r.name
                ));
            }
            (_, Some(_), Some(total)) => {
                v.concerns.push(format!(
                    "Rehearsal “{}” recovered in {}, over its {} target",
                    r.name,
                    secs(total),
                    secs(r.target_s)
                ));
                v.recommend(format!(
                    "Shorten gate windows or the evaluation interval so that rehearsal “{}” recovers within {}",
                    r.name,
                    secs(r.target_s)
                ));
            }
        }
    }
    let last = summary.stages.last();
    match summary.outcome {
        Outcome::RolledBack => {
            if let Some(rb) = &summary.rollback {
                let stage_failed = summary
                    .stages
                    .iter()
                    .find(|s| s.index == rb.stage)
                    .is_some_and(|s| s.gates.iter().any(|g| g.status == GateStatus::Fail));
                if !stage_failed {
                    v.concerns.push(format!(
                        "Rolled back in stage {} at {}: {}",
                        rb.stage,
                        offset(rb.initiated_s),
                        clause(&rb.reason)
                    ));
                }
                if rb.restoration_s.is_none() {
                    v.concerns.push(
                        "Service metrics were not back at baseline by the end of the run after the rollback"
                            .to_string(),
                    );
                }
            }
            v.recommend(
                "Do not promote this version: fix the cause of the rollback and run a new rollout"
                    .to_string(),
            );
        }
        Outcome::Halted => {
            if let Some(stage) = last {
                // No-data gates already have their concern; the halt adds one only when its
                // reason is something else.
                if !stage.gates.iter().any(|g| g.status == GateStatus::NoData) {
                    let why = stage
                        .reasons
                        .first()
                        .map(|r| format!(": {}", clause(r)))
                        .unwrap_or_default();
                    v.concerns.push(format!(
                        "Halted in stage {} ({}%){why}",
                        stage.index,
                        crate::format::trimmed(stage.weight, 2)
                    ));
                }
                v.recommend(format!(
                    "Decide by hand whether to resume, extend or roll back stage {}: Ramp holds the canary at {}% until then",
                    stage.index,
                    crate::format::trimmed(stage.weight, 2)
                ));
            }
        }
        Outcome::PromotedWithCaveats => {
            v.recommendations.insert(
                0,
                "Proceed with the next rollout, watching the concerns above".to_string(),
            );
        }
        Outcome::Promoted => {
            v.recommendations
                .insert(0, "Proceed with the next rollout".to_string());
        }
    }
}
