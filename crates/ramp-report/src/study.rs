//! The Markdown table of a Monte Carlo study (`ramp simulate --runs N`).

use crate::format::count as count_of;
use ramp_core::summary::MonteCarlo;
use std::fmt::Write;

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.1} s")).unwrap_or_else(|| "—".into())
}

/// Renders a study as Markdown: outcomes, false rollbacks, detection power and delays.
pub fn monte_carlo_markdown(m: &MonteCarlo) -> String {
    let mut o = String::new();
    let last = m.first_seed + m.runs.saturating_sub(1) as u64;
    let _ = writeln!(o, "# Monte Carlo study — {}\n", m.deployment_id);
    let _ = writeln!(
        o,
        "{} simulated runs, seeds {}–{}. Every figure below is counted over those runs.\n",
        count_of(m.runs as u64),
        m.first_seed,
        last
    );
    let _ = writeln!(
        o,
        "## Outcomes\n\n| Outcome | Runs | Share |\n|---------|------|-------|"
    );
    for (outcome, count) in &m.outcomes {
        let share = if m.runs > 0 {
            *count as f64 / m.runs as f64
        } else {
            0.0
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} |",
            outcome.key(),
            count_of(*count as u64),
            pct(share)
        );
    }
    match m.false_rollback_rate {
        Some(rate) => {
            let _ = writeln!(
                o,
                "\n- **False rollbacks** (the simulated canary equals stable, yet it was rolled back): {}",
                pct(rate)
            );
        }
        None => {
            let _ = writeln!(
                o,
                "\n- **Rollbacks with no simulated fault active** (the canary's own overhead was judged): {}",
                pct(m.unfaulted_rollback_rate)
            );
        }
    }
    if let Some(rate) = m.fault_detection_rate {
        let _ = writeln!(
            o,
            "- **Fault detection** (rolled back after a simulated fault began): {}, median {} after onset",
            pct(rate),
            secs(m.median_fault_detection_s)
        );
    }
    let _ = writeln!(
        o,
        "- **Decision stability:** {} of {} runs decided differently from the most common sequence",
        count_of(m.decision_disagreements as u64),
        count_of(m.runs as u64)
    );
    if !m.rehearsals.is_empty() {
        let _ = writeln!(
            o,
            "\n## Rehearsals\n\n| Rehearsal | Detected | Median detection | p95 detection | Median recovery | Within target |\n|-----------|----------|------------------|---------------|-----------------|---------------|"
        );
        for r in &m.rehearsals {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} (< {:.0} s) |",
                r.name,
                pct(r.detection_rate),
                secs(r.median_detection_s),
                secs(r.p95_detection_s),
                secs(r.median_recovery_s),
                pct(r.within_target_rate),
                r.target_s
            );
        }
    }
    o
}
