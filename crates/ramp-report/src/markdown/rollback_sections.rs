//! The report's automatic-rollback section and its rehearsals, each with its timeline.

use super::*;

/// The rollback of the main timeline, if there was one.
pub(super) fn automatic_rollback(ctx: &Ctx, out: &mut String) {
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
pub(super) fn rollback_log(ctx: &Ctx, rb: &RollbackTiming, out: &mut String) {
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
pub(super) fn rehearsals(ctx: &Ctx, out: &mut String) {
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
pub(super) fn rehearsal(ctx: &Ctx, n: usize, r: &RehearsalSummary, out: &mut String) {
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
