//! The report's stage sections: each stage's gates, checkpoints (as columns or a
//! periodic-aggregates table), fleet members, summary and decision point.

use super::*;

/// Every stage's section.
pub(super) fn stages(ctx: &Ctx, out: &mut String) {
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
pub(super) fn stage(ctx: &Ctx, st: &StageSummary, is_last: bool, out: &mut String) {
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
pub(super) fn fleet_members(st: &StageSummary, out: &mut String) {
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
pub(super) fn periodic_aggregates(ctx: &Ctx, st: &StageSummary, out: &mut String) {
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
pub(super) fn stage_summary(ctx: &Ctx, st: &StageSummary, out: &mut String) {
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
pub(super) fn decision_point(st: &StageSummary, is_last: bool, out: &mut String) {
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

/// After a stage's duration line, when part of it was not observed (the metrics source
/// restarted or could not be read): how much, and what that did. Empty otherwise, so reports
/// of runs without gaps read as before.
pub(super) fn unobserved_note(st: &StageSummary) -> String {
    if st.unobserved_s > 0.0 {
        format!(
            "; {} of it unobserved, which counted toward no decision and extended the stage",
            span(st.unobserved_s)
        )
    } else {
        String::new()
    }
}
