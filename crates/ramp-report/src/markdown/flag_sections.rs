//! The report's sections on the features a canary carries and the flags a plan rolls out.

use super::*;

/// Measured per-feature overhead, when the plan named features.
pub(super) fn features(ctx: &Ctx, out: &mut String) {
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
pub(super) fn flags(ctx: &Ctx, out: &mut String) {
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
