//! The plain-text monitoring display of `ramp simulate`, `ramp run` and `ramp demo`: the
//! staging report's "SLO MONITORING" panel, plus a line per stage start, decision and
//! rollback.
//!
//! A panel is printed at each stage's last checkpoint and at any checkpoint whose gate
//! states differ from the one before (a warning appears, a gate runs out of data…); the
//! checkpoints in between get one line each, so a 24-hour stage checked hourly is 24 lines
//! and a panel, not 24 panels. `--all-panels` prints every checkpoint's panel.

use ramp_core::engine::{Action, CheckpointReport};
use ramp_core::summary::{GateStatus, Metrics, RehearsalSummary, Summary};
use ramp_core::{Metric, Plan, PlanTime, Scope};
use ramp_sim::Progress;
use std::io::Write;
use std::sync::Arc;

/// Prints progress to standard output as the simulation runs.
pub struct Printer {
    /// The plan, for wall-clock labels.
    plan: Arc<Plan>,
    /// Only the outcome is printed when set.
    quiet: bool,
    /// Every checkpoint gets its panel when set; otherwise only stage ends and changes do.
    all_panels: bool,
    /// The stage and gate states of the last checkpoint shown, to tell a change.
    last_states: Option<(usize, Vec<GateStatus>)>,
    /// Whether the first checkpoint line has said why it is not a panel.
    told_about_lines: bool,
}

const RULE: &str = "═══════════════════════════════════════════════════════════════════════";

impl Printer {
    /// A printer for `plan`.
    pub fn new(plan: Arc<Plan>, quiet: bool) -> Printer {
        Printer {
            plan,
            quiet,
            all_panels: false,
            last_states: None,
            told_about_lines: false,
        }
    }

    /// Prints every checkpoint's panel (`--all-panels`), not only stage ends and changes.
    pub fn with_all_panels(mut self, all: bool) -> Printer {
        self.all_panels = all;
        self
    }

    /// "T+1h30m (19:30:00)".
    fn when(&self, t: PlanTime) -> String {
        let s = t.0 / 1000;
        let rel = format!("T+{}h{:02}m{:02}s", s / 3600, (s % 3600) / 60, s % 60);
        match &self.plan.deployment.start {
            Some(_) => {
                let w = (self.plan.deployment.start_second_of_day as u64 + s) % 86_400;
                format!("{rel} {:02}:{:02}:{:02}", w / 3600, (w % 3600) / 60, w % 60)
            }
            None => rel,
        }
    }

    /// Shows one event of a live run (`ramp run`, `ramp rehearse`, `ramp demo`).
    pub fn show_live(&mut self, ev: ramp_live::Progress<'_>) {
        let out = match ev {
            ramp_live::Progress::Began(plan) => {
                // Live runs label times with the real clock.
                self.plan = plan;
                return;
            }
            ramp_live::Progress::Action(t, a) => self.action(t, a),
            ramp_live::Progress::Line(t, line) => format!("[{}] {line}\n", self.when(t)),
        };
        if self.quiet || out.is_empty() {
            return;
        }
        let mut so = std::io::stdout().lock();
        let _ = so.write_all(out.as_bytes());
        let _ = so.flush();
    }

    /// Shows one progress event.
    pub fn show(&mut self, ev: Progress<'_>) {
        if self.quiet {
            return;
        }
        let out = match ev {
            Progress::Action(t, a) => self.action(t, a),
            Progress::Rehearsal(r) => self.rehearsal(r),
        };
        if !out.is_empty() {
            let mut so = std::io::stdout().lock();
            // A closed pipe must not abort the simulation: the summary files still matter.
            let _ = so.write_all(out.as_bytes());
        }
    }

    fn action(&mut self, t: PlanTime, a: &Action) -> String {
        match a {
            Action::StageStarted { index, weight } => {
                let stage = &self.plan.stages[index - 1];
                format!(
                    "[{}] Stage {}/{}: canary at {} for {}\n",
                    self.when(t),
                    index,
                    self.plan.stages.len(),
                    weight,
                    stage.duration
                )
            }
            Action::Checkpoint(r) => self.checkpoint(t, r),
            Action::StageDecided {
                index,
                decision,
                reasons,
            } => {
                let mut s = format!(
                    "[{}] Stage {} decision: {}\n",
                    self.when(t),
                    index,
                    decision.key().to_uppercase()
                );
                for r in reasons {
                    s.push_str(&format!("  - {r}\n"));
                }
                s.push('\n');
                s
            }
            Action::RollbackInitiated { stage, reason } => format!(
                "[{}] ✗ SLO BREACH in stage {}: {}\n[{}] Triggering automatic rollback: canary weight → 0%\n",
                self.when(t),
                stage,
                reason,
                self.when(t)
            ),
            Action::AwaitingApproval { stage, missing } => format!(
                "[{}] Stage {} waits for approval from {}\n",
                self.when(t),
                stage,
                missing.join(", ")
            ),
            Action::SetWeight(_) | Action::Finished(_) => String::new(),
        }
    }

    /// A checkpoint: its panel when it ends the stage, when its gate states changed, or
    /// with `--all-panels`; one line otherwise.
    fn checkpoint(&mut self, t: PlanTime, r: &CheckpointReport) -> String {
        let states: Vec<GateStatus> = r.checkpoint.gates.iter().map(|g| g.status).collect();
        let changed = match &self.last_states {
            Some((stage, last)) if *stage == r.stage => *last != states,
            // A stage's first checkpoint is news unless every gate passes.
            _ => states.iter().any(|s| *s != GateStatus::Pass),
        };
        let stage_end = observed(r).0 >= r.duration.0;
        self.last_states = Some((r.stage, states));
        if self.all_panels || changed || stage_end {
            self.panel(t, r)
        } else {
            let line = self.checkpoint_line(t, r);
            self.told_about_lines = true;
            line
        }
    }

    /// One line for a checkpoint whose gates are as they were: the headline numbers.
    fn checkpoint_line(&self, t: PlanTime, r: &CheckpointReport) -> String {
        let count = |status: GateStatus| {
            r.checkpoint
                .gates
                .iter()
                .filter(|g| g.status == status)
                .count()
        };
        let mut marks = Vec::new();
        for (status, mark) in [
            (GateStatus::Pass, "✓"),
            (GateStatus::Warn, "⚠"),
            (GateStatus::Fail, "✗"),
            (GateStatus::NoData, "?"),
        ] {
            let n = count(status);
            if n > 0 {
                marks.push(format!("{n} {mark}"));
            }
        }
        let by_scope = &r.checkpoint.metrics_by_scope;
        let mut numbers = Vec::new();
        for (scope, metric) in [
            (Scope::Canary, Metric::P95Ms),
            (Scope::Canary, Metric::P99Ms),
            (Scope::Canary, Metric::ErrorRate),
            (Scope::Service, Metric::ThroughputRps),
        ] {
            if let Some(v) = by_scope.scope(scope).get(metric) {
                numbers.push(format!("{} {}", short_label(metric), metric.format(v)));
            }
        }
        let progress = if r.unobserved.0 > 0 {
            observed_words(r)
        } else {
            format!("{:.0}% of {}", fraction_done(r) * 100.0, r.duration)
        };
        let mut line = format!(
            "[{}] stage {}/{} · canary {} · {progress} · gates {} · {}\n",
            self.when(t),
            r.stage,
            r.stages,
            r.weight,
            marks.join(" "),
            numbers.join(" · ")
        );
        if !self.told_about_lines {
            line.push_str(
                "  (a line per checkpoint whose gates did not change, a panel at changes and stage ends; --all-panels shows every panel)\n",
            );
        }
        line
    }

    fn panel(&self, t: PlanTime, r: &CheckpointReport) -> String {
        let mut s = String::new();
        let frac = fraction_done(r);
        let filled = (frac * 50.0).round() as usize;
        s.push_str(&format!(
            "── SLO MONITORING · stage {}/{} · canary {} · {} ──\n",
            r.stage,
            r.stages,
            r.weight,
            self.when(t)
        ));
        let of = if r.unobserved.0 > 0 {
            format!(" · {}", observed_words(r))
        } else {
            format!(" ({} / {})", r.elapsed, r.duration)
        };
        s.push_str(&format!(
            "Progress: [{}{}] {:.0}%{of}\n",
            "█".repeat(filled),
            "░".repeat(50 - filled),
            frac * 100.0,
        ));
        s.push_str(RULE);
        s.push_str("\nCurrent metrics (interval since the last checkpoint):\n");
        let mut breaches = Vec::new();
        for g in &r.checkpoint.gates {
            let v = r.checkpoint.metrics_by_scope.scope(g.scope).get(g.metric);
            let mark = match g.status {
                GateStatus::Pass => "✓",
                GateStatus::Warn => "⚠",
                GateStatus::Fail => "✗",
                GateStatus::NoData => "?",
            };
            let level = match (g.max, g.min) {
                (Some(m), _) => format!("threshold: {}", g.metric.format(m)),
                (_, Some(m)) => format!("min: {}", g.metric.format(m)),
                _ => String::new(),
            };
            let warn = g
                .warn
                .map(|w| format!(", warn: {}", g.metric.format(w)))
                .unwrap_or_default();
            let base = r
                .baseline
                .get(g.metric)
                .map(|b| format!("baseline: {}, ", g.metric.format(b)))
                .unwrap_or_default();
            s.push_str(&format!(
                "  {:<14} {:>12} {} ({}{}{}) [{}]\n",
                label(g.metric),
                v.map(|v| g.metric.format(v))
                    .unwrap_or_else(|| "no data".into()),
                mark,
                base,
                level,
                warn,
                g.scope.key()
            ));
            match g.status {
                GateStatus::Pass => {}
                GateStatus::Warn => breaches.push(format!(
                    "⚠ {} {} over the warn level on its {} window",
                    g.scope.key(),
                    g.metric,
                    ramp_core::Span((g.span_s * 1000.0) as u64)
                )),
                GateStatus::Fail => breaches.push(format!(
                    "✗ {} {} over its fail level",
                    g.scope.key(),
                    g.metric
                )),
                GateStatus::NoData => breaches.push(format!(
                    "? {} {}: {} samples in its window, too few to judge",
                    g.scope.key(),
                    g.metric,
                    ramp_core::engine::group(g.samples)
                )),
            }
        }
        s.push_str("Breach status (sliding windows):\n");
        if breaches.is_empty() {
            s.push_str("  ✓ All SLOs within acceptable range\n");
        } else {
            for b in breaches {
                s.push_str(&format!("  {b}\n"));
            }
        }
        s.push_str("Running averages (this stage's checkpoints):\n");
        s.push_str(&format!("  {}\n\n", averages(&r.running_average)));
        s
    }

    fn rehearsal(&self, r: &RehearsalSummary) -> String {
        let at = PlanTime((r.fault_onset_s * 1000.0) as u64);
        let mut s = format!(
            "[{}] Rehearsal \"{}\" (on a fork of the rollout): injecting {}\n",
            self.when(at),
            r.name,
            r.fault
        );
        let t = |v: f64| self.when(PlanTime((v * 1000.0).round() as u64));
        if let Some(d) = r.detection_s {
            s.push_str(&format!("[{}] ✗ Detected: {}\n", t(d), r.reason));
        }
        if let Some(d) = r.rollback_s {
            s.push_str(&format!("[{}] ✓ Rollback completed\n", t(d)));
        }
        if let Some(d) = r.restoration_s {
            s.push_str(&format!("[{}] ✓ System restored to baseline\n", t(d)));
        }
        s.push_str(&format!(
            "  outcome {}: detection {}, total recovery {} (target < {:.0} s)\n\n",
            r.outcome.key(),
            r.detection_s
                .map(|d| format!("{:.1} s after onset", d - r.fault_onset_s))
                .unwrap_or_else(|| "none".into()),
            r.total_recovery_s
                .map(|d| format!("{d:.1} s"))
                .unwrap_or_else(|| "none".into()),
            r.target_s
        ));
        s
    }

    /// The staging report's recovery breakdown of a rehearsal, with the Markdown report's
    /// labels for the same intervals ("Detection after onset" from the fault's onset,
    /// "Detection to initiation" from the first failing gate to the rollback's start),
    /// each figure measured; printed even when quiet, since it is what `ramp rehearse` is for.
    pub fn rehearsal_breakdown(&self, r: &RehearsalSummary) -> String {
        let gap = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.1} s", b - a),
            _ => "not reached".to_string(),
        };
        let total = r.total_recovery_s;
        let verdict = match total {
            Some(t) if t <= r.target_s => "✅",
            _ => "❌",
        };
        format!(
            "Rehearsal \"{}\" ({}): {}\n- Detection after onset: {}\n- Detection to initiation: {}\n- Rollback execution: {}\n- Baseline restoration: {}\n- Total recovery time: {} (target: <{:.0} s) {}\n",
            r.name,
            r.fault,
            r.outcome.key(),
            gap(Some(r.fault_onset_s), r.detection_s),
            gap(r.detection_s, r.initiated_s),
            gap(r.initiated_s, r.rollback_s),
            gap(r.rollback_s, r.restoration_s),
            total.map_or("not reached".to_string(), |t| format!("{t:.1} s")),
            r.target_s,
            verdict
        )
    }

    /// Prints the outcome, even when quiet.
    pub fn outcome(&self, summary: &Summary) {
        let sampling = summary
            .sampling
            .as_ref()
            .map(|s| format!(" (sampling: {})", s.describe()))
            .unwrap_or_default();
        let mut s = format!(
            "Outcome: {} — {} run, {} requests {}{sampling}\n",
            summary.outcome.key(),
            count_of(summary.stages.len(), "stage"),
            ramp_core::engine::group(summary.totals.requests),
            if summary.mode.starts_with("sim") || summary.mode.is_empty() {
                "simulated"
            } else {
                "measured"
            }
        );
        if let Some(r) = &summary.rollback {
            s.push_str(&format!("Rollback in stage {}: {}\n", r.stage, r.reason));
            if let Some(total) = r.total_recovery_s {
                s.push_str(&format!("  total recovery {total:.1} s\n"));
            }
        }
        print!("{s}");
    }
}

/// "1 stage", "4 stages", "1,200 rehearsals": a count and its noun, grouped by thousands.
pub fn count_of(n: usize, noun: &str) -> String {
    let n_text = ramp_core::engine::group(n as u64);
    if n == 1 {
        format!("{n_text} {noun}")
    } else {
        format!("{n_text} {noun}s")
    }
}

/// The stage's observed time so far: its elapsed time less what was not observed (gaps,
/// which moved its end out by as much).
fn observed(r: &CheckpointReport) -> ramp_core::Span {
    ramp_core::Span(r.elapsed.0.saturating_sub(r.unobserved.0))
}

/// How much of the stage's planned duration has been observed, from 0 to 1.
fn fraction_done(r: &CheckpointReport) -> f64 {
    if r.duration.0 > 0 {
        (observed(r).0 as f64 / r.duration.0 as f64).min(1.0)
    } else {
        1.0
    }
}

/// "observed 28 s of 40 s (12 s unobserved)": a stage's progress when part of it was not
/// observed, so that the time it still needs is plain.
fn observed_words(r: &CheckpointReport) -> String {
    format!(
        "observed {} of {} ({} unobserved)",
        observed(r),
        r.duration,
        r.unobserved
    )
}

/// The short names of a checkpoint line.
fn short_label(m: Metric) -> &'static str {
    match m {
        Metric::P50Ms => "P50",
        Metric::P95Ms => "P95",
        Metric::P99Ms => "P99",
        Metric::ErrorRate => "errors",
        Metric::ThroughputRps => "throughput",
    }
}

fn label(m: Metric) -> &'static str {
    match m {
        Metric::P50Ms => "P50 Latency:",
        Metric::P95Ms => "P95 Latency:",
        Metric::P99Ms => "P99 Latency:",
        Metric::ErrorRate => "Error Rate:",
        Metric::ThroughputRps => "Throughput:",
    }
}

fn averages(m: &Metrics) -> String {
    let f = |v: Option<f64>, unit: &str, scale: f64, prec: usize| {
        v.map(|v| format!("{:.*}{unit}", prec, v * scale))
            .unwrap_or_else(|| "—".into())
    };
    format!(
        "Avg P50: {}  |  Avg P95: {}  |  Avg P99: {}  |  Avg Error Rate: {}  |  Avg Throughput: {}",
        f(m.p50_ms, " ms", 1.0, 1),
        f(m.p95_ms, " ms", 1.0, 1),
        f(m.p99_ms, " ms", 1.0, 1),
        f(m.error_rate, "%", 100.0, 2),
        f(m.throughput_rps, " req/s", 1.0, 1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramp_core::summary::{CheckpointSummary, ScopedMetrics};
    use ramp_core::{Span, Weight};

    /// A report of stage 1 of 2 at 5 %, 40 s planned, `elapsed_s` in with `unobserved_s`
    /// of it unobserved.
    fn report(elapsed_s: u64, unobserved_s: u64) -> CheckpointReport {
        CheckpointReport {
            stage: 1,
            stages: 2,
            weight: Weight::from_percent(5.0).expect("a weight"),
            elapsed: Span::from_secs(elapsed_s),
            unobserved: Span::from_secs(unobserved_s),
            duration: Span::from_secs(40),
            checkpoint: CheckpointSummary {
                t_s: elapsed_s as f64,
                metrics: Metrics::default(),
                metrics_by_scope: ScopedMetrics::default(),
                gates: Vec::new(),
            },
            running_average: Metrics::default(),
            baseline: Metrics::default(),
        }
    }

    fn printer() -> Printer {
        let plan = ramp_core::parse_plan(
            "[deployment]\nid = \"p\"\nservice = \"s\"\nenvironment = \"e\"\n\n[[stages]]\nweight = 5\nduration = \"40s\"\n\n[[stages]]\nweight = 100\nduration = \"40s\"\n",
            "plan.toml",
        )
        .expect("a valid plan");
        Printer::new(Arc::new(plan), false)
    }

    /// Failed on 84779eb, which labelled onset → initiation "Detection to initiation": the
    /// breakdown now has the Markdown report's labels for the same intervals.
    #[test]
    fn the_rehearsal_breakdown_labels_each_interval_as_the_report_does() {
        let r = RehearsalSummary {
            name: "breach".into(),
            outcome: ramp_core::summary::RehearsalOutcome::RolledBack,
            stage: 2,
            reason: "canary p95_ms over".into(),
            fault_onset_s: 100.0,
            detection_s: Some(105.0),
            initiated_s: Some(105.5),
            rollback_s: Some(109.0),
            restoration_s: Some(116.0),
            total_recovery_s: Some(16.0),
            target_s: 120.0,
            fault: "+800 ms".into(),
            reference: Metrics::default(),
            degraded: None,
        };
        let text = printer().rehearsal_breakdown(&r);
        assert!(text.contains("- Detection after onset: 5.0 s\n"), "{text}");
        assert!(
            text.contains("- Detection to initiation: 0.5 s\n"),
            "{text}"
        );
        assert!(text.contains("- Rollback execution: 3.5 s\n"), "{text}");
    }

    /// Fails on 63809fb (no `CheckpointReport::unobserved`): a stage with a gap shows its
    /// progress as observed time, and one without reads as before.
    #[test]
    fn a_stage_with_unobserved_time_shows_its_observed_progress() {
        let p = printer();
        let gap = report(40, 12);
        let panel = p.panel(PlanTime::from_secs(40), &gap);
        assert!(
            panel.contains("] 70% · observed 28 s of 40 s (12 s unobserved)\n"),
            "{panel}"
        );
        let line = p.checkpoint_line(PlanTime::from_secs(40), &gap);
        assert!(
            line.contains(" · observed 28 s of 40 s (12 s unobserved) · gates "),
            "{line}"
        );
        let plain = report(20, 0);
        assert!(p
            .panel(PlanTime::from_secs(20), &plain)
            .contains("] 50% (20 s / 40 s)\n"));
        assert!(p
            .checkpoint_line(PlanTime::from_secs(20), &plain)
            .contains(" · 50% of 40 s · gates "));
    }
}
