//! The report's record of what surrounds the rollout: the pre-deployment checklist with
//! each check's result and time (live runs), the plan to follow with a simulated preview,
//! and every approval with who gave it, for which stage, when and why. All come from the
//! summary; a section with nothing to show is left out rather than filled with placeholders.

use crate::format::{count, long_span, secs, table_text, Clock};
use ramp_core::summary::Summary;
use std::fmt::Write as _;

/// "## Pre-deployment checklist": each check in the order it ran, with its result, when it
/// finished, how long it took and what it found. Absent when no check ran (a simulation, or
/// a plan without checks).
pub(crate) fn checklist(s: &Summary, clock: &Clock, out: &mut String) {
    if s.checks.is_empty() {
        return;
    }
    let passed = s.checks.iter().filter(|c| c.ok).count();
    let _ = writeln!(out, "## Pre-deployment checklist\n");
    let verdict = if passed == s.checks.len() {
        "every check passed before any traffic was shifted".to_string()
    } else {
        "a check failed, so no traffic was shifted".to_string()
    };
    let _ = writeln!(
        out,
        "{passed} of {} check{} passed: {verdict}.\n",
        s.checks.len(),
        if s.checks.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(out, "| Check | Result | Finished | Took | Detail |");
    let _ = writeln!(out, "|-------|--------|----------|------|--------|");
    for c in &s.checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            table_text(&c.name),
            if c.ok { "✅ passed" } else { "❌ failed" },
            clock.when(c.t_s),
            took(c.elapsed_s),
            table_text(&c.detail)
        );
    }
    let _ = writeln!(out);
}

/// How long a check took: milliseconds under a second (a health probe takes a few), else
/// seconds.
fn took(s: f64) -> String {
    if s.is_finite() && (0.0..1.0).contains(&s) {
        format!("{} ms", (s * 1000.0).round())
    } else {
        secs(s)
    }
}

/// "## Approvals": who approved which stage, when and why, in the order given. Absent when
/// the plan asks for none.
pub(crate) fn approvals(s: &Summary, clock: &Clock, out: &mut String) {
    if s.approvals.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Approvals\n");
    let _ = writeln!(out, "| Stage | Approver | When | Reason |");
    let _ = writeln!(out, "|-------|----------|------|--------|");
    for a in &s.approvals {
        let weight = s
            .plan
            .get(a.stage.saturating_sub(1))
            .map(|p| format!(" ({}%)", p.weight))
            .unwrap_or_default();
        let reason = if a.reason.is_empty() {
            "–".to_string()
        } else {
            table_text(&a.reason)
        };
        let _ = writeln!(
            out,
            "| {}{weight} | {} | {} | {reason} |",
            a.stage,
            table_text(&a.who),
            clock.when(a.t_s)
        );
    }
    let _ = writeln!(out);
}

/// "## Plan to follow": the plan `[next]` names, its stages, and one simulated run of it
/// (when it has a simulation model; said plainly when it has none).
pub(crate) fn next_plan(s: &Summary, out: &mut String) {
    let Some(n) = &s.next else {
        return;
    };
    let total: f64 = n.stages.iter().map(|st| st.duration_s).sum();
    let _ = writeln!(
        out,
        "## Plan to follow
"
    );
    let _ = writeln!(
        out,
        "After this rollout: **{}** ({}), from `{}`: {} stage{} over {}.\n",
        table_text(&n.deployment_id),
        table_text(&n.environment),
        n.plan,
        n.stages.len(),
        if n.stages.len() == 1 { "" } else { "s" },
        long_span(total)
    );
    let _ = writeln!(out, "| Stage | Weight | Duration | Gates |");
    let _ = writeln!(out, "|-------|--------|----------|-------|");
    for st in &n.stages {
        let _ = writeln!(
            out,
            "| {} | {}% | {} | {} |",
            st.index,
            st.weight,
            long_span(st.duration_s),
            st.gates.len()
        );
    }
    let _ = writeln!(out);
    match &n.preview {
        Some(p) => {
            let reason = p
                .reason
                .as_ref()
                .map(|r| format!(": {}", table_text(r)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "Simulated once on its own traffic model (seed {}): {} after {} over {} stage{} ({} requests){reason}. One run is a preview, not a verdict: `ramp simulate {} --runs 200` measures its false-rollback rate and detection power.\n",
                p.seed,
                p.outcome.key().replace('_', " "),
                long_span(p.duration_s),
                p.stages_run,
                if p.stages_run == 1 { "" } else { "s" },
                count(p.requests),
                n.plan
            );
        }
        None => {
            let _ = writeln!(
                out,
                "It has no `[simulation]` model, so no preview was simulated.\n"
            );
        }
    }
}
