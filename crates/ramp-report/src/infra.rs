//! The report's infrastructure impact: what each `[[report.queries]]` query read from
//! Prometheus before and during each stage of a live run (CPU, memory, connections, cache
//! hit rate), next to the rollout's own record. It comes from the summary only; a run
//! without report queries, and every simulation, has none and the section is left out.

use crate::format::{change_pct, fixed, signed_pct, table_text, trimmed};
use ramp_core::summary::{InfraSummary, Summary};
use std::fmt::Write as _;

/// What a sample that could not be read shows: never a number.
const MISSING: &str = "–";

/// "## Infrastructure impact": one row per query and stage, with the value before the
/// stage's weight took effect, the mean and largest sample during it, the change of the
/// mean over the value before, and how many samples could not be read; then where the
/// numbers come from. Absent when the summary has none.
pub(crate) fn infrastructure(s: &Summary, out: &mut String) {
    if s.infrastructure.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Infrastructure impact\n");
    let _ = writeln!(
        out,
        "| Query | Stage | Before | During (mean) | During (max) | Change | Missing |"
    );
    let _ = writeln!(
        out,
        "|-------|-------|--------|---------------|--------------|--------|---------|"
    );
    for r in &s.infrastructure {
        let weight = s
            .plan
            .get(r.stage.saturating_sub(1))
            .map(|p| format!(" ({}%)", p.weight))
            .unwrap_or_default();
        let change = change(r);
        let _ = writeln!(
            out,
            "| {} | {}{weight} | {} | {} | {} | {change} | {} of {} |",
            table_text(&r.name),
            r.stage,
            number(r, r.before),
            number(r, r.during_mean),
            number(r, r.during_max),
            r.missing,
            r.samples + r.missing,
        );
    }
    let _ = writeln!(out);
    let missing: u64 = s.infrastructure.iter().map(|r| r.missing).sum();
    let total: u64 = s.infrastructure.iter().map(|r| r.samples + r.missing).sum();
    let mut sources: Vec<&str> = s.infrastructure.iter().map(|r| r.source.as_str()).collect();
    sources.dedup();
    let from = if sources.iter().all(|h| h.is_empty()) {
        "the plan's Prometheus server".to_string()
    } else {
        format!(
            "the Prometheus server at {}",
            table_text(&sources.join(", "))
        )
    };
    let _ = writeln!(
        out,
        "Read from {from} with the plan's `[[report.queries]]`: before each stage at the instant it started (before its weight took effect) and during it at its checkpoints. A sample that could not be read (no data, an error, a timeout) is shown as {MISSING} and counted under Missing, never as a number: {missing} of {total} samples were missing. Change is the mean during the stage against the value before it (in percentage points for a query in %).\n"
    );
}

/// The mean during the stage against the value before it: in percentage points for a query
/// in "%" (a share that goes from 5 % to 25 % went up 20 points, not 400 %), else relative;
/// [`MISSING`] when either is missing (or the value before is 0).
fn change(r: &InfraSummary) -> String {
    if r.unit.as_deref() == Some("%") {
        return match (r.during_mean, r.before) {
            (Some(d), Some(b)) if (d - b).is_finite() => {
                let p = fixed(d - b, 1);
                let sign = if p.starts_with('-') { "" } else { "+" };
                format!("{sign}{p} pts")
            }
            _ => MISSING.to_string(),
        };
    }
    change_pct(r.during_mean, r.before).map_or_else(|| MISSING.to_string(), signed_pct)
}

/// A sample in its query's unit ("12.5 cores", "97.3%"), or [`MISSING`].
fn number(r: &InfraSummary, v: Option<f64>) -> String {
    let Some(v) = v.filter(|v| v.is_finite()) else {
        return MISSING.to_string();
    };
    let decimals = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 1.0 {
        2
    } else {
        4
    };
    let n = trimmed(v, decimals);
    match r.unit.as_deref() {
        None => n,
        Some("%") => format!("{n}%"),
        Some(u) => format!("{n} {}", table_text(u)),
    }
}
