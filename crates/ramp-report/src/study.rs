//! The Markdown table of a Monte Carlo study (`ramp simulate --runs N`).
//!
//! Every rate is printed with its 95 % Wilson interval: "2.5 % (1.1–5.7 %)", and a rate of 0
//! or 1 as the bound it supports ("< 1.9 %", "> 98.1 %"), so that a reader of 200 runs is not
//! told a rate of 0 % that 200 runs cannot show.

use crate::format::count as count_of;
use ramp_core::summary::{MonteCarlo, Proportion};
use std::fmt::Write;

/// A percentage with one decimal.
fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// An upper bound in percent, rounded up at the first decimal (a bound must not shrink by
/// rounding).
fn pct_up(v: f64) -> String {
    format!("{:.1}%", (v * 1000.0 - 1e-9).ceil() / 10.0)
}

/// A lower bound in percent, rounded down at the first decimal.
fn pct_down(v: f64) -> String {
    format!("{:.1}%", (v * 1000.0 + 1e-9).floor() / 10.0)
}

/// A rate with its 95 % interval: "< 1.9% at 95%" for none, "> 98.1% at 95%" for all,
/// "2.5% (1.1–5.7% at 95%)" otherwise.
pub(crate) fn rate(p: &Proportion) -> String {
    if p.runs == 0 {
        return "—".into();
    }
    if p.count == 0 {
        format!("< {} at 95%", pct_up(p.high))
    } else if p.count >= p.runs {
        format!("> {} at 95%", pct_down(p.low))
    } else {
        format!(
            "{} ({}–{} at 95%)",
            pct(p.rate),
            pct_down(p.low).trim_end_matches('%'),
            pct_up(p.high)
        )
    }
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.1} s")).unwrap_or_else(|| "—".into())
}

/// Renders a study as Markdown: outcomes, false rollbacks, detection power and delays, each
/// rate with its 95 % Wilson interval.
pub fn monte_carlo_markdown(m: &MonteCarlo) -> String {
    let mut o = String::new();
    let last = m.first_seed + m.runs.saturating_sub(1) as u64;
    let _ = writeln!(o, "# Monte Carlo study — {}\n", m.deployment_id);
    let sampling = m
        .sampling
        .as_ref()
        .map(|s| format!(" Sampling: {} ({}).", s.describe(), s.reason))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "{} simulated runs, seeds {}–{}. Every figure below is counted over those runs; rates carry their 95% Wilson interval.{sampling}\n",
        count_of(m.runs as u64),
        m.first_seed,
        last
    );
    if let Some(s) = &m.stopping {
        let _ = writeln!(
            o,
            "Stopping rule: stop once the 95% upper bound of the rollbacks with no fault active is below {} (looked at every 10 runs, at most {} runs): {}.\n",
            pct(s.target),
            count_of(s.limit as u64),
            if s.met && m.runs < s.limit {
                format!("met after {} runs", count_of(m.runs as u64))
            } else if s.met {
                "met at the last run".to_string()
            } else {
                "not met within the limit".to_string()
            }
        );
    }
    let _ = writeln!(
        o,
        "## Outcomes\n\n| Outcome | Runs | Share (95% interval) |\n|---------|------|----------------------|"
    );
    for (i, (outcome, count)) in m.outcomes.iter().enumerate() {
        let share = match m.outcome_shares.get(i) {
            Some((o2, p)) if o2 == outcome => rate(p),
            _ => pct(if m.runs > 0 {
                *count as f64 / m.runs as f64
            } else {
                0.0
            }),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} |",
            outcome.key(),
            count_of(*count as u64),
            share
        );
    }
    match (&m.false_rollbacks, m.false_rollback_rate) {
        (Some(p), _) => {
            let _ = writeln!(
                o,
                "\n- **False rollbacks** (the simulated canary equals stable, yet it was rolled back): {} of {}: {}",
                count_of(p.count as u64),
                count_of(p.runs as u64),
                rate(p)
            );
        }
        (None, Some(r)) => {
            let _ = writeln!(
                o,
                "\n- **False rollbacks** (the simulated canary equals stable, yet it was rolled back): {}",
                pct(r)
            );
        }
        (None, None) => {
            let _ = writeln!(
                o,
                "\n- **Rollbacks with no simulated fault active** (the canary's own overhead was judged): {} of {}: {}",
                count_of(m.unfaulted_rollbacks.count as u64),
                count_of(m.unfaulted_rollbacks.runs as u64),
                rate(&m.unfaulted_rollbacks)
            );
        }
    }
    if let Some(p) = &m.fault_detections {
        let _ = writeln!(
            o,
            "- **Fault detection** (rolled back after a simulated fault began): {}, median {} after onset",
            rate(p),
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
                rate(&r.detections),
                secs(r.median_detection_s),
                secs(r.p95_detection_s),
                secs(r.median_recovery_s),
                rate(&r.within_target),
                r.target_s
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(count: usize, runs: usize, low: f64, high: f64) -> Proportion {
        Proportion {
            count,
            runs,
            rate: count as f64 / runs as f64,
            low,
            high,
        }
    }

    #[test]
    fn rates_read_as_intervals_and_bounds() {
        assert_eq!(rate(&p(0, 200, 0.0, 0.018_845)), "< 1.9% at 95%");
        assert_eq!(rate(&p(50, 50, 0.928_65, 1.0)), "> 92.8% at 95%");
        assert_eq!(
            rate(&p(10, 100, 0.055_23, 0.174_37)),
            "10.0% (5.5–17.5% at 95%)"
        );
        assert_eq!(rate(&Proportion::default()), "—");
    }
}
