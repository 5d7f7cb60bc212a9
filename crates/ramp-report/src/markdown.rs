//! The Markdown report, section by section, in the order of the staging report.

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

/// Every stage's section.
fn stages(ctx: &Ctx, out: &mut String) {
    w!(out, "## Stages");
    w!(out);
    if ctx.s.stages.is_empty() {
        w!(out, "No stage started.");
        w!(out);
        return;
    }
    let n = ctx.s.stages.len();
    for (i, st) in ctx.s.stages.iter().enumerate() {
        stage(ctx, st, i + 1 == n, out);
    }
}

/// One stage: duration, metric table (or periodic aggregates), stage summary, decision.
fn stage(ctx: &Ctx, st: &StageSummary, is_last: bool, out: &mut String) {
    let baseline = &ctx.s.baseline.metrics;
    let end = st.started_s + st.elapsed_s;
    w!(
        out,
        "### Stage {}: {}% traffic",
        st.index,
        trimmed(st.weight, 2)
    );
    w!(out);
    w!(
        out,
        "**Duration:** {} planned, {} elapsed ({}){}",
        span(st.planned_duration_s),
        span(st.elapsed_s),
        ctx.clock.range(st.started_s, end),
        unobserved_note(st)
    );
    if st.checkpoint_s.is_finite() && st.checkpoint_s > 0.0 {
        w!(
            out,
            "**Checkpoints:** every {}, {} recorded",
            span(st.checkpoint_s),
            st.checkpoints.len()
        );
    }
    // A stage cut short after its last checkpoint has whole-stage numbers (the summary
    // lines, the decision) that include time no checkpoint column shows: say so, or the
    // two read as two different values of one thing.
    if let Some(last) = st.checkpoints.last() {
        if end - last.t_s >= 1.0 {
            w!(
                out,
                "**Note:** the checkpoints end at {}, but the stage ran to {}: the whole-stage numbers below include the last {}, which no checkpoint column shows.",
                offset_minutes(last.t_s),
                offset_minutes(end),
                span(end - last.t_s)
            );
        }
    }
    w!(out);
    w!(
        out,
        "#### Metrics — Stage {} ({} to {})",
        st.index,
        offset_minutes(st.started_s),
        offset_minutes(end)
    );
    w!(out);
    let rows = table_gates(st);
    if rows.is_empty() {
        w!(out, "No gates were evaluated in this stage.");
        w!(out);
    } else if st.checkpoints.is_empty() || st.checkpoints.len() > MAX_CHECKPOINT_COLUMNS {
        if !st.checkpoints.is_empty() {
            periodic_aggregates(ctx, st, out);
            w!(out, "**Whole stage:**");
            w!(out);
        }
        w!(out, "| Metric | Baseline | Stage | Threshold | Status |");
        w!(out, "|--------|----------|-------|-----------|--------|");
        for (g, from) in &rows {
            w!(
                out,
                "| {} | {} | {} | {} | {} |",
                row_label(g.metric, g.scope),
                cell(g.metric, baseline.get(g.metric)),
                cell(g.metric, stage_value(st, g.metric, g.scope)),
                threshold_cell(g),
                status_cell(g, *from)
            );
        }
        w!(out);
    } else {
        let mut head = String::from("| Metric | Baseline |");
        let mut rule = String::from("|--------|----------|");
        for cp in &st.checkpoints {
            let h = offset_minutes(cp.t_s);
            rule.push_str(&"-".repeat(h.chars().count() + 2));
            rule.push('|');
            head.push_str(&format!(" {h} |"));
        }
        head.push_str(" Threshold | Status |");
        rule.push_str("-----------|--------|");
        w!(out, "{head}");
        w!(out, "{rule}");
        for (g, from) in &rows {
            let mut row = format!(
                "| {} | {} |",
                row_label(g.metric, g.scope),
                cell(g.metric, baseline.get(g.metric))
            );
            for cp in &st.checkpoints {
                row.push_str(&format!(
                    " {} |",
                    cell(g.metric, checkpoint_value(cp, g.metric, g.scope))
                ));
            }
            row.push_str(&format!(
                " {} | {} |",
                threshold_cell(g),
                status_cell(g, *from)
            ));
            w!(out, "{row}");
        }
        w!(out);
    }
    stage_summary(ctx, st, out);
    fleet_members(st, out);
    decision_point(st, is_last, out);
}

/// For a fleet of proxies, what each member served in the stage and its share of the
/// fleet's requests, so that a member the load balancer skews away from (or toward) shows;
/// nothing for any other router.
fn fleet_members(st: &StageSummary, out: &mut String) {
    if st.members.is_empty() {
        return;
    }
    let total: u64 = st.members.iter().map(|m| m.requests).sum();
    w!(
        out,
        "**Fleet members** (requests each proxy served in the stage):"
    );
    w!(out);
    w!(out, "| Member | Requests | Share | Errors |");
    w!(out, "|--------|----------|-------|--------|");
    for m in &st.members {
        let share = if total > 0 {
            format!("{} %", fixed(100.0 * m.requests as f64 / total as f64, 1))
        } else {
            DASH.to_string()
        };
        let since = if m.restarted {
            " (since it restarted)"
        } else {
            ""
        };
        w!(
            out,
            "| {} | {}{since} | {share} | {} |",
            table_text(&m.url),
            count(m.requests),
            count(m.errors)
        );
    }
    w!(out);
}

/// The staging report's "Hourly Aggregates": one row per checkpoint with every metric and the worst
/// status of the gates evaluated at that moment.
fn periodic_aggregates(ctx: &Ctx, st: &StageSummary, out: &mut String) {
    w!(
        out,
        "**Periodic aggregates** (one row per {} checkpoint):",
        span(st.checkpoint_s)
    );
    w!(out);
    w!(
        out,
        "| Time | P50 (ms) | P95 (ms) | P99 (ms) | Error Rate (%) | Throughput (req/s) | Status |"
    );
    w!(
        out,
        "|------|----------|----------|----------|----------------|--------------------|--------|"
    );
    for cp in &st.checkpoints {
        let time = ctx
            .clock
            .date_minute(cp.t_s)
            .unwrap_or_else(|| offset(cp.t_s));
        let mut row = format!("| {time} |");
        for metric in Metric::ALL {
            row.push_str(&format!(
                " {} |",
                cell(
                    metric,
                    checkpoint_value(cp, metric, stage_scope(st, metric))
                )
            ));
        }
        let status = worst_status(&cp.gates).map_or(DASH, status_emoji);
        row.push_str(&format!(" {status} |"));
        w!(out, "{row}");
    }
    w!(out);
}

/// Each gate's whole-stage value against the baseline and its threshold, with the average of
/// the checkpoint values.
fn stage_summary(ctx: &Ctx, st: &StageSummary, out: &mut String) {
    let rows = table_gates(st);
    if rows.is_empty() {
        return;
    }
    let baseline = &ctx.s.baseline.metrics;
    w!(out, "**Stage summary:**");
    for (g, from) in rows {
        let observed = stage_value(st, g.metric, g.scope);
        let base = baseline.get(g.metric).filter(|v| v.is_finite());
        let vs = match (base, change_pct(observed, base)) {
            (Some(b), Some(c)) => {
                format!(" ({} vs baseline {})", signed_pct(c), value(g.metric, b))
            }
            (Some(b), None) => format!(" (baseline {})", value(g.metric, b)),
            (None, _) => String::new(),
        };
        let avg = checkpoint_average(st, g.metric, g.scope)
            .map(|a| {
                format!(
                    "; average of {} {}",
                    checkpoints_noun(st.checkpoints.len()),
                    precise(g.metric, a)
                )
            })
            .unwrap_or_default();
        w!(
            out,
            "- **{}:** stage {}{vs}{avg}; threshold {} {}",
            gate_name(g),
            opt_value(g.metric, observed),
            threshold_words(g),
            status_cell(g, from)
        );
    }
    w!(out);
}

/// The reasons for the stage's decision and the decision itself.
fn decision_point(st: &StageSummary, is_last: bool, out: &mut String) {
    w!(
        out,
        "**Decision point ({}):**",
        offset_minutes(st.started_s + st.elapsed_s)
    );
    if st.reasons.is_empty() {
        w!(out, "- No reasons were recorded.");
    }
    for r in &st.reasons {
        w!(out, "- {r}");
    }
    for t in &st.tests {
        let mark = if t.reject { "❌" } else { "✅" };
        let name = match t.test.as_str() {
            "sequential_errors" => "Sequential error test (canary versus stable)".to_string(),
            "sequential_latency" => "Sequential latency test (canary versus stable)".to_string(),
            "mann_whitney" => "Mann-Whitney test at the stage end (fixed horizon)".to_string(),
            "burn_rate_fast" => "Fast burn-rate rule".to_string(),
            "burn_rate_slow" => "Slow burn-rate rule".to_string(),
            other => match other.strip_prefix("relative_") {
                Some(metric) => format!("Relative {metric} gate (canary versus stable)"),
                None => other.to_string(),
            },
        };
        let level = if t.alpha > 0.0 {
            format!(", α = {}", trimmed(t.alpha, 4))
        } else {
            String::new()
        };
        w!(out, "- {mark} {name}{level}: {}", t.explanation);
    }
    for q in &st.queries {
        let mark = match q.status {
            GateStatus::Pass => "✅",
            GateStatus::Warn => "⚠️",
            GateStatus::Fail => "❌",
            GateStatus::NoData => "❔",
        };
        w!(
            out,
            "- {mark} Query gate ({} evaluations this stage): {}",
            q.evaluations,
            ramp_core::engine::explain_query(q)
        );
    }
    let final_stage = is_last && is_final_weight(st);
    let (emoji, words) = match st.decision {
        Some(Decision::Proceed) if final_stage => ("✅", "PROCEED — ROLLOUT COMPLETE".to_string()),
        Some(Decision::Proceed) => ("✅", format!("PROCEED TO STAGE {}", st.index + 1)),
        Some(Decision::Monitor) if final_stage => {
            ("⚠️", "MONITOR — PROMOTED WITH CAVEATS".to_string())
        }
        Some(Decision::Monitor) => (
            "⚠️",
            format!("MONITOR — PROCEED TO STAGE {} WITH CAVEATS", st.index + 1),
        ),
        Some(Decision::Halt) => ("⏸", "HALT — A HUMAN DECIDES".to_string()),
        Some(Decision::Rollback) => ("❌", "ROLL BACK".to_string()),
        None => ("❔", "NONE — THE RUN WAS CUT SHORT".to_string()),
    };
    w!(out, "- {emoji} **DECISION: {words}**");
    w!(out);
    w!(out, "---");
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

/// Measured per-feature overhead, when the plan named features.
fn features(ctx: &Ctx, out: &mut String) {
    let fs = &ctx.s.features;
    if fs.is_empty() {
        return;
    }
    w!(out, "## Feature-specific performance");
    w!(out);
    w!(
        out,
        "| Feature | Canary requests | Mean added | Measured impact | Configured impact | Errors |"
    );
    w!(
        out,
        "|---------|-----------------|------------|-----------------|-------------------|--------|"
    );
    for f in fs {
        let errors = if f.requests > 0 {
            format!(
                "{} ({}%)",
                count(f.errors),
                fixed(f.errors as f64 / f.requests as f64 * 100.0, 2)
            )
        } else {
            count(f.errors)
        };
        w!(
            out,
            "| {} | {} | {} ms | {} | {} | {errors} |",
            table_text(&f.name),
            count(f.requests),
            fixed(f.mean_added_ms, 1),
            signed_pct(f.latency_impact * 100.0),
            signed_pct(f.configured_latency * 100.0)
        );
    }
    w!(out);
    let measured: f64 = fs.iter().map(|f| f.latency_impact * 100.0).sum();
    let configured: f64 = fs.iter().map(|f| f.configured_latency * 100.0).sum();
    let observed = comparison_stage(ctx.s).and_then(|st| {
        let p50 = stage_value(st, Metric::P50Ms, Scope::Canary);
        change_pct(p50, ctx.s.baseline.metrics.p50_ms).map(|c| (st, c))
    });
    let tail = match observed {
        Some((st, c)) if measured.is_finite() => format!(
            "; observed canary P50 change over the baseline in {}: {} (difference {} points)",
            stage_label(st),
            signed_pct(c),
            fixed((measured - c).abs(), 1)
        ),
        _ => "; no observed canary P50 change over the baseline to compare with".to_string(),
    };
    w!(
        out,
        "**Total cumulative impact: {} average latency** (configured: {}){tail}.",
        signed_pct(measured),
        signed_pct(configured)
    );
    w!(out);
}

/// Distinct users per flag at each stage's end, as the staging report's log shows them
/// ("phase8_encryption_enabled: 625 users (25%)"), with the users each flag was off for.
fn flags(ctx: &Ctx, out: &mut String) {
    let fs = &ctx.s.flags;
    if fs.is_empty() {
        return;
    }
    w!(out, "## Feature flags");
    w!(out);
    let source = match ctx.s.mode.as_str() {
        "simulation" => "counted exactly over the simulated users, whose targeting keys the flags bucket as the OFREP server does",
        _ => "counted by the OFREP server from the targeting keys it evaluated",
    };
    w!(
        out,
        "Distinct users each flag was on and off for, at each stage's end ({source}). The percentage is the share of users the flag was rolled out to. A user who saw both sides during a stage (before and after the weight changed) counts on both."
    );
    if fs.iter().any(|f| f.scheduled) {
        w!(out);
        w!(
            out,
            "A flag marked \"by its schedule\" follows its own schedule (time since the rollout started → share of users), not the stage's traffic: its percentage is the schedule's at the stage's end, and a rollback turns it off for everyone."
        );
    }
    if fs.iter().any(|f| !f.exact) {
        w!(out);
        w!(
            out,
            "Counts marked ≈ are estimates (HyperLogLog, about 1.6% error): more users than the exact counter holds."
        );
    }
    w!(out);
    // Stages in order of their first count; a summary records them in stage order anyway.
    let mut order: Vec<usize> = Vec::new();
    for f in fs {
        if !order.contains(&f.stage) {
            order.push(f.stage);
        }
    }
    for index in order {
        let stage = ctx.s.stages.iter().find(|st| st.index == index);
        match stage {
            Some(st) => w!(
                out,
                "### Stage {}: {}% traffic",
                st.index,
                trimmed(st.weight, 2)
            ),
            None => w!(out, "### Stage {index}"),
        }
        w!(out);
        let counts: Vec<_> = fs.iter().filter(|f| f.stage == index).collect();
        let stamp = stage.map_or_else(
            || "stage end".to_string(),
            |st| ctx.clock.log_stamp(st.started_s + st.elapsed_s),
        );
        let window = counts.first().map_or(0.0, |f| f.window_s);
        // One window for every flag (always so in simulation) goes in the heading line;
        // otherwise each line says its own.
        let same = counts.iter().all(|f| f.window_s == window);
        w!(out, "```text");
        if same {
            w!(
                out,
                "[{stamp}] Feature flag stats (distinct users over {}):",
                span(window)
            );
        } else {
            w!(out, "[{stamp}] Feature flag stats (distinct users):");
        }
        for f in counts {
            let approx = if f.exact { "" } else { "≈" };
            let over = if same {
                String::new()
            } else {
                format!(" over {}", span(f.window_s))
            };
            let by = if f.scheduled { " by its schedule" } else { "" };
            w!(
                out,
                "  - {}: {approx}{} users ({}%{by}), off for {approx}{}{over}",
                one_line(&f.key),
                count(f.on_users),
                trimmed(f.weight, 2),
                count(f.off_users)
            );
        }
        w!(out, "```");
        w!(out);
    }
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

/// The rollback of the main timeline, if there was one.
fn automatic_rollback(ctx: &Ctx, out: &mut String) {
    let Some(rb) = &ctx.s.rollback else {
        return;
    };
    w!(out, "## Automatic rollback");
    w!(out);
    let stage = ctx.s.stages.iter().find(|s| s.index == rb.stage);
    w!(
        out,
        "**Stage:** {}",
        stage.map_or_else(|| rb.stage.to_string(), stage_label)
    );
    w!(out, "**Reason:** {}", rb.reason);
    w!(out);
    rollback_log(ctx, rb, out);
    w!(out, "**Rollback verification:**");
    w!(
        out,
        "- Detection after onset: {}",
        match rb.fault_onset_s {
            Some(onset) => secs(rb.detection_s - onset),
            None => format!("{DASH} (fault onset unknown)"),
        }
    );
    w!(
        out,
        "- Detection to initiation: {}",
        secs(rb.initiated_s - rb.detection_s)
    );
    w!(
        out,
        "- Rollback execution: {}",
        secs(rb.rollback_s - rb.initiated_s)
    );
    w!(
        out,
        "- Baseline restoration: {}",
        match rb.restoration_s {
            Some(r) => secs(r - rb.rollback_s),
            None => "not restored by the end of the run".to_string(),
        }
    );
    let from = if rb.fault_onset_s.is_some() {
        "from fault onset"
    } else {
        "from detection"
    };
    match rb.total_recovery_s {
        Some(t) => w!(out, "- **Total recovery time: {}** ({from})", secs(t)),
        None => w!(out, "- **Total recovery time: {DASH}** (not restored)"),
    }
    w!(out);
}

/// The timestamped log of the main rollback.
fn rollback_log(ctx: &Ctx, rb: &RollbackTiming, out: &mut String) {
    let c = &ctx.clock;
    w!(out, "```text");
    if let Some(onset) = rb.fault_onset_s {
        w!(out, "[{}] Fault began", c.log_stamp(onset));
    }
    w!(
        out,
        "[{}] ✗ SLO BREACH DETECTED: {}",
        c.log_stamp(rb.detection_s),
        rb.reason
    );
    w!(
        out,
        "[{}] Triggering automatic rollback...",
        c.log_stamp(rb.initiated_s)
    );
    w!(
        out,
        "[{}] ✓ Rollback completed in {}",
        c.log_stamp(rb.rollback_s),
        secs(rb.rollback_s - rb.initiated_s)
    );
    match rb.restoration_s {
        Some(r) => {
            let total = rb
                .total_recovery_s
                .unwrap_or(r - rb.fault_onset_s.unwrap_or(rb.detection_s));
            w!(
                out,
                "[{}] ✓ System restored to baseline (total: {})",
                c.log_stamp(r),
                secs(total)
            );
        }
        None => w!(out, "✗ System not back at baseline by the end of the run"),
    }
    w!(out, "```");
    w!(out);
}

/// Every rehearsal: its fault, log and timing breakdown against the target.
fn rehearsals(ctx: &Ctx, out: &mut String) {
    w!(out, "## Rollback scenarios tested");
    w!(out);
    if ctx.s.rehearsals.is_empty() {
        w!(out, "No rollback rehearsals were run.");
        w!(out);
        return;
    }
    for (i, r) in ctx.s.rehearsals.iter().enumerate() {
        rehearsal(ctx, i + 1, r, out);
    }
}

/// One rehearsal.
fn rehearsal(ctx: &Ctx, n: usize, r: &RehearsalSummary, out: &mut String) {
    let c = &ctx.clock;
    w!(
        out,
        "### Scenario {n}: {} ({}, stage {})",
        r.name,
        offset(r.fault_onset_s),
        r.stage
    );
    w!(out);
    w!(out, "**Fault:** {}", r.fault);
    let outcome = match r.outcome {
        RehearsalOutcome::RolledBack => "✅ detected, rolled back and restored",
        RehearsalOutcome::NotDetected => "❌ not detected",
        RehearsalOutcome::NotRestored => "❌ rolled back, not restored to baseline",
        // These two have no sentence of their own: the report shows their JSON key.
        RehearsalOutcome::NotRun | RehearsalOutcome::NotInjected => r.outcome.key(),
    };
    w!(out, "**Outcome:** {outcome}");
    w!(out);
    w!(out, "```text");
    w!(
        out,
        "[{}] Recording baseline metrics... {}",
        c.log_stamp(r.fault_onset_s),
        metric_line(&r.reference, true)
    );
    w!(
        out,
        "[{}] Injecting fault: {}",
        c.log_stamp(r.fault_onset_s),
        r.fault
    );
    match r.detection_s {
        Some(d) => {
            if let Some(m) = &r.degraded {
                w!(
                    out,
                    "[{}] ⚠ Degraded metrics detected: {}",
                    c.log_stamp(d),
                    metric_line(m, false)
                );
            }
            let reason = if r.reason.is_empty() {
                "no reason recorded"
            } else {
                &r.reason
            };
            w!(out, "[{}] ✗ SLO BREACH DETECTED: {reason}", c.log_stamp(d));
        }
        None => w!(out, "✗ Fault not detected: no gate failed"),
    }
    if let Some(i) = r.initiated_s {
        w!(out, "[{}] Triggering automatic rollback...", c.log_stamp(i));
    }
    if let Some(rb) = r.rollback_s {
        w!(
            out,
            "[{}] ✓ Rollback completed in {}",
            c.log_stamp(rb),
            between(r.initiated_s, Some(rb))
        );
    }
    match (r.restoration_s, r.detection_s) {
        (Some(rs), _) => {
            let total = r.total_recovery_s.unwrap_or(rs - r.fault_onset_s);
            w!(
                out,
                "[{}] ✓ System restored to baseline (total: {})",
                c.log_stamp(rs),
                secs(total)
            );
        }
        (None, Some(_)) => w!(out, "✗ System not restored to baseline"),
        (None, None) => {}
    }
    w!(out, "```");
    w!(out);
    w!(out, "**Rollback verification:**");
    w!(
        out,
        "- Detection after onset: {}",
        match r.detection_s {
            Some(d) => secs(d - r.fault_onset_s),
            None => "not detected".to_string(),
        }
    );
    w!(
        out,
        "- Detection to initiation: {}",
        between(r.detection_s, r.initiated_s)
    );
    w!(
        out,
        "- Rollback execution: {}",
        between(r.initiated_s, r.rollback_s)
    );
    w!(
        out,
        "- Baseline restoration: {}",
        match (r.rollback_s, r.restoration_s) {
            (Some(a), Some(b)) => secs(b - a),
            (Some(_), None) => "not restored".to_string(),
            _ => DASH.to_string(),
        }
    );
    let ok = if r.met_target() { "✅" } else { "❌" };
    let total = r.total_recovery_s.map_or_else(|| DASH.to_string(), secs);
    w!(
        out,
        "- **Total recovery time: {total}** (target: < {}) {ok}",
        secs(r.target_s)
    );
    w!(out);
}

/// A confidence in words.
fn confidence_word(c: Confidence) -> &'static str {
    match c {
        Confidence::High => "High",
        Confidence::Medium => "Medium",
        Confidence::Low => "Low",
    }
}

/// After a stage's duration line, when part of it was not observed (the metrics source
/// restarted or could not be read): how much, and what that did. Empty otherwise, so reports
/// of runs without gaps read as before.
fn unobserved_note(st: &StageSummary) -> String {
    if st.unobserved_s > 0.0 {
        format!(
            "; {} of it unobserved, which counted toward no decision and extended the stage",
            span(st.unobserved_s)
        )
    } else {
        String::new()
    }
}

/// One row per stage: duration, SLO status, decision, confidence; and, when any stage had
/// time it did not observe, how much.
fn decision_matrix(ctx: &Ctx, out: &mut String) {
    w!(out, "## Decision matrix");
    w!(out);
    if ctx.s.stages.is_empty() {
        w!(out, "No stage ran.");
        w!(out);
        return;
    }
    let gaps = ctx.s.stages.iter().any(|st| st.unobserved_s > 0.0);
    let (head, rule) = if gaps {
        ("| Unobserved ", "|------------")
    } else {
        ("", "")
    };
    w!(
        out,
        "| Stage | Duration {head}| SLO Status | Decision | Confidence |"
    );
    w!(
        out,
        "|-------|----------{rule}|------------|----------|------------|"
    );
    for st in &ctx.s.stages {
        let duration = if (st.elapsed_s - st.planned_duration_s).abs() < 0.5 {
            span(st.elapsed_s)
        } else {
            format!("{} of {}", span(st.elapsed_s), span(st.planned_duration_s))
        };
        let unobserved = if gaps {
            format!("| {} ", span(st.unobserved_s))
        } else {
            String::new()
        };
        w!(
            out,
            "| {} | {duration} {unobserved}| {} | {} | {} |",
            stage_label(st),
            slo_status(st),
            decision_word(st.decision),
            confidence_word(st.confidence)
        );
    }
    w!(out);
}

/// Writes a numbered list, or a sentence when it is empty.
fn numbered(out: &mut String, title: &str, items: &[String], empty: &str) {
    w!(out, "**{title}:**");
    if items.is_empty() {
        w!(out);
        w!(out, "{empty}");
    }
    for (i, item) in items.iter().enumerate() {
        w!(out, "{}. {item}", i + 1);
    }
    w!(out);
}

/// The verdict heading and the strengths, concerns and recommendations.
fn final_verdict(ctx: &Ctx, out: &mut String) {
    w!(out, "## Final verdict");
    w!(out);
    let heading = match ctx.s.outcome {
        Outcome::Promoted => "✅ READY FOR PRODUCTION",
        Outcome::PromotedWithCaveats => "✅ READY FOR PRODUCTION WITH CAVEATS",
        Outcome::RolledBack => "❌ ROLLED BACK — NOT READY",
        Outcome::Halted => "⏸ HALTED — DECISION NEEDED",
    };
    w!(out, "### {heading}");
    w!(out);
    let v = facts::verdict(ctx.s);
    numbered(
        out,
        "Strengths",
        &v.strengths,
        "The data show no strengths to list.",
    );
    numbered(out, "Concerns", &v.concerns, "The data raise no concerns.");
    numbered(
        out,
        "Recommendations",
        &v.recommendations,
        "No recommendations follow from the data.",
    );
}

/// When the run ended and how long it covered.
fn footer(ctx: &Ctx, out: &mut String) {
    let t = &ctx.s.totals;
    w!(out, "---");
    w!(out);
    w!(
        out,
        "**Run ended:** {} — {} of plan time",
        ctx.clock.when(t.duration_s),
        long_span(t.duration_s)
    );
    w!(
        out,
        "**Outcome key:** `{}`{}",
        ctx.s.outcome.key(),
        match ctx.s.seed {
            Some(seed) => format!(" (reproduce with seed {seed})"),
            None => String::new(),
        }
    );
}
