//! The Markdown report, section by section, in the order of the staging report.
//!
//! This file holds the header, the executive summary, the strategy, the timeline and the
//! comparison with the baseline, and the helpers every section shares; the stage sections,
//! the feature and flag sections, the rollback and rehearsal sections and the closing
//! sections are in their own files beside it.

use crate::facts::{
    self, checkpoint_average, checkpoint_value, checkpoints_noun, comparison_stage, decision_word,
    fail_level, gate_name, gate_window, headline_scope, is_final_weight, slo_status, stage_label,
    stage_scope, stage_value, status_emoji, table_gates, worst_status,
};
use crate::format::{
    capitalize, cell, change_pct, count, fixed, level, level_unit, long_span, offset,
    offset_minutes, opt_signed_pct, opt_value, precise, secs, signed_pct, span, table_text,
    trimmed, value, Clock, DASH,
};
use ramp_core::summary::{
    Confidence, Decision, GateResult, GateSpec, GateStatus, Metrics, Outcome, PlannedStage,
    RehearsalOutcome, RehearsalSummary, RollbackTiming, StageSummary, Summary,
};
use ramp_core::{Metric, Scope};

/// Stages with more checkpoints than this show them as a periodic-aggregates table (one row
/// per checkpoint) instead of one column per checkpoint.
pub(crate) const MAX_CHECKPOINT_COLUMNS: usize = 12;

/// Appends one line (or an empty line) to the output.
macro_rules! w {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        writeln!($out, $($arg)*).expect("writing to a String cannot fail");
    }};
}

/// What every section needs: the summary and its clock.
struct Ctx<'a> {
    /// The rollout's record.
    s: &'a Summary,
    /// Plan time to wall-clock time.
    clock: Clock,
}

mod closing_sections;
mod flag_sections;
mod rollback_sections;
mod stage_sections;

use closing_sections::*;
use flag_sections::*;
use rollback_sections::*;
use stage_sections::*;

/// Renders the whole report.
pub(crate) fn render(summary: &Summary) -> String {
    let ctx = Ctx {
        s: summary,
        clock: Clock::new(summary.start.as_deref()),
    };
    let mut out = String::new();
    header(&ctx, &mut out);
    executive_summary(&ctx, &mut out);
    strategy(&ctx, &mut out);
    crate::sign_off::checklist(ctx.s, &ctx.clock, &mut out);
    timeline(&ctx, &mut out);
    stages(&ctx, &mut out);
    against_baseline(&ctx, &mut out);
    crate::infra::infrastructure(ctx.s, &mut out);
    features(&ctx, &mut out);
    flags(&ctx, &mut out);
    automatic_rollback(&ctx, &mut out);
    rehearsals(&ctx, &mut out);
    decision_matrix(&ctx, &mut out);
    final_verdict(&ctx, &mut out);
    crate::sign_off::next_plan(ctx.s, &mut out);
    crate::sign_off::approvals(ctx.s, &ctx.clock, &mut out);
    footer(&ctx, &mut out);
    out
}

/// The status line's words for an outcome.
fn status_words(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Promoted => "✅ PROMOTED",
        Outcome::PromotedWithCaveats => "⚠️ PROMOTED WITH CAVEATS",
        Outcome::RolledBack => "❌ ROLLED BACK",
        Outcome::Halted => "⏸ HALTED",
    }
}

/// The title and the identity lines.
fn header(ctx: &Ctx, out: &mut String) {
    let s = ctx.s;
    // "demo demo canary rollout" when the service and the environment share a name: say it
    // once.
    if s.service.eq_ignore_ascii_case(&s.environment) {
        w!(out, "# {} canary rollout — {}", s.service, s.deployment_id);
    } else {
        w!(
            out,
            "# {} {} canary rollout — {}",
            s.service,
            s.environment,
            s.deployment_id
        );
    }
    w!(out);
    w!(out, "**Deployment ID:** {}", s.deployment_id);
    w!(out, "**Environment:** {}", capitalize(&s.environment));
    let start = match (&s.start, ctx.clock.datetime(0.0)) {
        (_, Some(dt)) => dt,
        (Some(raw), None) => format!("{raw} (not an RFC 3339 time; times below are offsets)"),
        (None, None) => "T+0 (no wall-clock start given; times are offsets from it)".to_string(),
    };
    w!(out, "**Start:** {start}");
    w!(out, "**Mode:** {}", mode_words(s));
    if let Some(sampling) = &s.sampling {
        w!(
            out,
            "**Sampling:** {} ({}; a seed reproduces a run with the same sampler)",
            sampling.describe(),
            sampling.reason
        );
    }
    w!(out, "**Status:** {}", status_words(s.outcome));
    w!(out);
}

/// "Simulation (seed 42)", "Live", or the mode as recorded.
fn mode_words(s: &Summary) -> String {
    match (s.mode.as_str(), s.seed) {
        ("simulation", Some(seed)) => format!("Simulation (seed {seed})"),
        ("simulation", None) => "Simulation".to_string(),
        ("live", _) => "Live".to_string(),
        (other, Some(seed)) => format!("{} (seed {seed})", capitalize(other)),
        (other, None) => capitalize(other),
    }
}

/// "5% → 25% → 50% → 100%".
fn weight_ladder(s: &Summary) -> String {
    s.stages
        .iter()
        .map(|st| format!("{}%", trimmed(st.weight, 2)))
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The executive summary: one paragraph, every number from the summary.
fn executive_summary(ctx: &Ctx, out: &mut String) {
    let s = ctx.s;
    w!(out, "## Executive summary");
    w!(out);
    let mode = match (s.mode.as_str(), s.seed) {
        ("simulation", Some(seed)) => format!("a canary in simulation (seed {seed})"),
        ("simulation", None) => "a canary in simulation".to_string(),
        ("live", _) => "a live canary".to_string(),
        (other, _) => format!("a canary ({other})"),
    };
    let n = s.stages.len();
    let stage_noun = if n == 1 { "stage" } else { "stages" };
    let reached_full = s.stages.last().is_some_and(is_final_weight);
    let ran = match s.outcome {
        Outcome::Promoted | Outcome::PromotedWithCaveats if reached_full => {
            format!("All {n} {stage_noun} ran")
        }
        Outcome::RolledBack => format!("{n} {stage_noun} ran before the rollback"),
        Outcome::Halted => format!("{n} {stage_noun} ran before the halt"),
        _ => format!("{n} {stage_noun} ran"),
    };
    let ladder = if n == 0 {
        String::new()
    } else {
        format!(" ({})", weight_ladder(s))
    };
    let t = &s.totals;
    let error_share = if t.requests > 0 {
        format!(
            ", {}%",
            fixed(t.errors as f64 / t.requests as f64 * 100.0, 2)
        )
    } else {
        String::new()
    };
    let outcome = match s.outcome {
        Outcome::Promoted => "promoted to 100%",
        Outcome::PromotedWithCaveats => "promoted to 100% with caveats",
        Outcome::RolledBack => "rolled back to 0%",
        Outcome::Halted => "halted, waiting for a human decision",
    };
    w!(
        out,
        "Service `{}` was rolled out to {} as {mode}. {ran}{ladder} over {}, serving {} requests ({} to the canary, {} to the stable version; {} errors{error_share}). Outcome: **{outcome}**: {}.",
        s.service,
        s.environment,
        long_span(t.duration_s),
        count(t.requests),
        count(t.canary_requests),
        count(t.stable_requests),
        count(t.errors),
        main_reason(s)
    );
    w!(out);
}

/// The main reason for the outcome, as a clause.
fn main_reason(s: &Summary) -> String {
    let non_pass = |status: GateStatus| -> Vec<String> {
        s.stages
            .iter()
            .flat_map(|st| st.gates.iter().map(move |g| (st, g)))
            .filter(|(_, g)| g.status == status)
            .map(|(st, g)| {
                let level = match status {
                    GateStatus::Warn => g.warn,
                    _ => fail_level(g).map(|(_, v)| v),
                };
                format!(
                    "{} {} in stage {} (level {})",
                    gate_name(g),
                    opt_value(g.metric, g.observed),
                    st.index,
                    level.map_or_else(|| DASH.to_string(), |v| level_unit(g.metric, v))
                )
            })
            .collect()
    };
    match s.outcome {
        Outcome::Promoted => {
            if s.stages.iter().all(|st| {
                !st.gates.is_empty() && st.gates.iter().all(|g| g.status == GateStatus::Pass)
            }) {
                "every stage passed all its gates".to_string()
            } else {
                last_reason(s)
            }
        }
        Outcome::PromotedWithCaveats => {
            let warns = non_pass(GateStatus::Warn);
            if warns.is_empty() {
                last_reason(s)
            } else {
                format!("over the warn level: {}", warns.join("; "))
            }
        }
        Outcome::RolledBack => match &s.rollback {
            Some(rb) => format!(
                "in stage {} at {}, {}",
                rb.stage,
                offset(rb.detection_s),
                facts::clause(&rb.reason)
            ),
            None => last_reason(s),
        },
        Outcome::Halted => {
            let no_data = non_pass(GateStatus::NoData);
            match s.stages.last().and_then(|st| st.reasons.first()) {
                Some(r) => facts::clause(r).to_string(),
                None if !no_data.is_empty() => format!("no data for {}", no_data.join("; ")),
                None => "no reason was recorded".to_string(),
            }
        }
    }
}

/// The last stage's first reason, or a plain statement that none was recorded.
fn last_reason(s: &Summary) -> String {
    s.stages
        .last()
        .and_then(|st| st.reasons.first())
        .map(|r| facts::clause(r).to_string())
        .unwrap_or_else(|| "no reason was recorded".to_string())
}

/// A status cell: the gate's emoji, with the checkpoint time when the result is not the
/// stage's own ("✅ (at T+90min)").
fn status_cell(g: &GateResult, from: Option<f64>) -> String {
    match from {
        Some(t) => format!("{} (at {})", status_emoji(g.status), offset_minutes(t)),
        None => status_emoji(g.status).to_string(),
    }
}

/// A threshold cell: "<200", ">50", "<900 (warn 800)".
fn threshold_cell(g: &GateResult) -> String {
    let fail = fail_level(g).map_or_else(
        || DASH.to_string(),
        |(sign, v)| format!("{sign}{}", level(g.metric, v)),
    );
    match g.warn {
        Some(w) => format!("{fail} (warn {})", level(g.metric, w)),
        None => fail,
    }
}

/// A gate's threshold in words with units: "< 900 ms, warn 800 ms".
fn threshold_words(g: &GateResult) -> String {
    let fail = fail_level(g).map_or_else(
        || DASH.to_string(),
        |(sign, v)| format!("{sign} {}", level_unit(g.metric, v)),
    );
    match g.warn {
        Some(w) => format!("{fail}, warn {}", level_unit(g.metric, w)),
        None => fail,
    }
}

/// A metric's row label, naming the scope when it is not the headline one.
fn row_label(metric: Metric, scope: Scope) -> String {
    if scope == headline_scope(metric) {
        metric.label().to_string()
    } else {
        format!("{}, {}", metric.label(), scope.key())
    }
}

/// The stage ladder and the gates of every stage.
fn strategy(ctx: &Ctx, out: &mut String) {
    if ctx.s.plan.is_empty() {
        // A summary written before the plan was recorded: rebuild what it can from the
        // stages that ran.
        let plan: Vec<PlannedStage> = ctx.s.stages.iter().map(planned_from_run).collect();
        planned_strategy(ctx.s, &plan, out);
    } else {
        planned_strategy(ctx.s, &ctx.s.plan, out);
    }
}

/// A planned stage reconstructed from a stage that ran (older summaries): its gates from
/// the gate results, windows from the checkpoints, minimum samples unknown (0).
fn planned_from_run(st: &StageSummary) -> PlannedStage {
    PlannedStage {
        index: st.index,
        weight: st.weight,
        duration_s: st.planned_duration_s,
        checkpoint_s: st.checkpoint_s,
        gates: table_gates(st)
            .into_iter()
            .map(|(g, _)| GateSpec {
                metric: g.metric,
                scope: g.scope,
                max: g.max,
                min: g.min,
                warn: g.warn,
                window_s: gate_window(st, g).unwrap_or(f64::NAN),
                min_samples: 0,
            })
            .collect(),
    }
}

/// The strategy from the plan itself: every planned stage, reached or not, and every gate
/// with its window and minimum samples.
fn planned_strategy(s: &Summary, plan: &[PlannedStage], out: &mut String) {
    w!(out, "## Deployment strategy");
    w!(out);
    w!(out, "### Progressive rollout stages");
    w!(out);
    let weights: Vec<String> = plan
        .iter()
        .map(|st| format!("{}%", trimmed(st.weight, 2)))
        .collect();
    let durations: Vec<String> = plan
        .iter()
        .map(|st| {
            let d = st.duration_s;
            if d.is_finite() && d > 0.0 && (d / 60.0 - (d / 60.0).round()).abs() < 1e-9 {
                format!("{} minutes", fixed(d / 60.0, 0))
            } else {
                long_span(d)
            }
        })
        .collect();
    let ww = weights.iter().map(|x| x.chars().count()).max().unwrap_or(0);
    let dw = durations
        .iter()
        .map(|x| x.chars().count())
        .max()
        .unwrap_or(0);
    w!(out, "```text");
    for (i, st) in plan.iter().enumerate() {
        let (check, next) = if st.weight >= 100.0 {
            ("Final validation", "Promote/Rollback")
        } else {
            ("SLO validation  ", "Proceed/Rollback")
        };
        w!(
            out,
            "Stage {}: {:<ww$} → {:>dw$} →  {check} →  {next}",
            st.index,
            weights[i],
            durations[i]
        );
    }
    w!(out, "```");
    w!(out);
    let reached = s.stages.len();
    if reached == 0 {
        w!(out, "No stage started.");
        w!(out);
    } else if reached < plan.len() {
        w!(
            out,
            "The rollout stopped in stage {reached} of {}; later stages never started.",
            plan.len()
        );
        w!(out);
    } else if plan.last().is_some_and(|p| p.weight < 100.0) {
        w!(
            out,
            "The rollout stopped in stage {reached}; the summary records only the stages that started."
        );
        w!(out);
    }
    if s.evaluate_every_s.is_finite() && s.evaluate_every_s > 0.0 {
        w!(
            out,
            "Gates are evaluated every {} of plan time on their sliding windows; a gate fails only when the breach is beyond its fail level at 99.9% confidence. Each stage ends with a verdict on its whole data.",
            secs(s.evaluate_every_s)
        );
        w!(out);
    }
    w!(out, "### SLO gates");
    w!(out);
    w!(
        out,
        "| Stage | Metric | Scope | Fail level | Warn level | Window | Min samples |"
    );
    w!(
        out,
        "|-------|--------|-------|------------|------------|--------|-------------|"
    );
    for st in plan {
        for g in &st.gates {
            let fail = match (g.max, g.min) {
                (Some(max), _) => format!("< {}", level_unit(g.metric, max)),
                (None, Some(min)) => format!("> {}", level_unit(g.metric, min)),
                (None, None) => DASH.to_string(),
            };
            let warn = g
                .warn
                .map_or_else(|| DASH.to_string(), |v| level_unit(g.metric, v));
            w!(
                out,
                "| Stage {} ({}%) | {} | {} | {fail} | {warn} | {} | {} |",
                st.index,
                trimmed(st.weight, 2),
                g.metric.label(),
                g.scope.key(),
                span(g.window_s),
                if g.min_samples > 0 {
                    g.min_samples.to_string()
                } else {
                    DASH.to_string()
                }
            );
        }
    }
    w!(out);
}

/// The events of the timeline.
fn timeline(ctx: &Ctx, out: &mut String) {
    w!(out, "## Timeline");
    w!(out);
    if ctx.s.timeline.is_empty() {
        w!(out, "No events were recorded.");
        w!(out);
        return;
    }
    w!(out, "| Time | Event |");
    w!(out, "|------|-------|");
    for e in &ctx.s.timeline {
        w!(
            out,
            "| {} | {} |",
            ctx.clock.when(e.t_s),
            table_text(&e.message)
        );
    }
    w!(out);
}

/// The comparison stage's numbers against the baseline.
fn against_baseline(ctx: &Ctx, out: &mut String) {
    w!(out, "## Summary against baseline");
    w!(out);
    let Some(stage) = comparison_stage(ctx.s) else {
        w!(out, "No stage ran, so there is nothing to compare.");
        w!(out);
        return;
    };
    let source = match ctx.s.baseline.source.as_str() {
        "plan" => "fixed in the plan".to_string(),
        "measured" => "measured from the stable version".to_string(),
        other => format!("from {other}"),
    };
    let which = if ctx
        .s
        .rollback
        .as_ref()
        .is_some_and(|rb| rb.stage == stage.index)
    {
        "the stage of the rollback"
    } else {
        "the last stage"
    };
    w!(
        out,
        "Baseline {source}. Observed: {} over the whole stage ({which}).",
        stage_label(stage)
    );
    w!(out);
    w!(
        out,
        "| Metric | Baseline | Observed (stage {}) | Change |",
        stage.index
    );
    w!(out, "|--------|----------|--------------------|--------|");
    for c in facts::baseline_changes(ctx.s) {
        w!(
            out,
            "| {} | {} | {} | {} |",
            row_label(c.metric, stage_scope(stage, c.metric)),
            opt_value(c.metric, c.baseline),
            opt_value(c.metric, c.observed),
            opt_signed_pct(c.change)
        );
    }
    w!(out);
}

/// A value on one line: control characters (a newline in a stored summary) become spaces,
/// so that a log line in the report stays one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// "P50=150ms, P95=400ms, P99=760ms, errors=0.30%" for the metrics that have values.
fn metric_line(m: &Metrics, with_p50: bool) -> String {
    let mut parts = Vec::new();
    let latencies: &[(Metric, &str)] = if with_p50 {
        &[
            (Metric::P50Ms, "P50"),
            (Metric::P95Ms, "P95"),
            (Metric::P99Ms, "P99"),
        ]
    } else {
        &[(Metric::P95Ms, "P95"), (Metric::P99Ms, "P99")]
    };
    for (metric, name) in latencies {
        if let Some(v) = m.get(*metric).filter(|v| v.is_finite()) {
            parts.push(format!("{name}={}ms", cell(*metric, Some(v))));
        }
    }
    if let Some(e) = m.error_rate.filter(|v| v.is_finite()) {
        parts.push(format!("errors={}", value(Metric::ErrorRate, e)));
    }
    if parts.is_empty() {
        "no requests".to_string()
    } else {
        parts.join(", ")
    }
}

/// A span between two optional moments, or a dash.
fn between(from: Option<f64>, to: Option<f64>) -> String {
    match (from, to) {
        (Some(a), Some(b)) => secs(b - a),
        _ => DASH.to_string(),
    }
}

/// A confidence in words.
fn confidence_word(c: Confidence) -> &'static str {
    match c {
        Confidence::High => "High",
        Confidence::Medium => "Medium",
        Confidence::Low => "Low",
    }
}
