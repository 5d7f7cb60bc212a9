//! The report's closing sections: the decision matrix, the final verdict and the footer.

use super::*;

/// One row per stage: duration, SLO status, decision, confidence; and, when any stage had
/// time it did not observe, how much.
pub(super) fn decision_matrix(ctx: &Ctx, out: &mut String) {
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
pub(super) fn numbered(out: &mut String, title: &str, items: &[String], empty: &str) {
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
pub(super) fn final_verdict(ctx: &Ctx, out: &mut String) {
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
pub(super) fn footer(ctx: &Ctx, out: &mut String) {
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
