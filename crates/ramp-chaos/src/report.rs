//! What one soak run found, computed from what the soak saw and what the controller
//! recorded, and how it is printed: a JSON document, a short Markdown block, and the table
//! over several runs.
//!
//! The controller's record is its `--json` summary (outcome, stages, totals, timeline) and
//! its journal (the readings it fed the engine, each with the plan-time interval it covers,
//! and the Unix time the run started). The soak's record is its own timeline (when it killed
//! and restarted what) and every request of its load generator with the times it was sent
//! and answered. Plan time is converted to the soak's clock through the run's start in the
//! journal, so the two records line up to a few milliseconds.

use crate::clients::{SlowlorisStats, UploadStats};
use crate::timeline::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write as _;

/// A request as the soak saw it, in seconds after T+0.
#[derive(Debug, Clone, Copy)]
pub struct Req {
    /// When it was sent.
    pub sent_s: f64,
    /// When it was answered or failed.
    pub done_s: f64,
    /// Whether the proxy answered it (any status).
    pub answered: bool,
}

/// One reading of the controller, from its journal: the plan-time interval it covers and
/// the requests it counted in it.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// Start of the interval, plan seconds.
    pub start_s: f64,
    /// End of the interval, plan seconds.
    pub end_s: f64,
    /// Requests counted (both cohorts).
    pub requests: u64,
}

/// A `kill -9` of the proxy, in seconds after T+0.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ProxyKill {
    /// When it was killed.
    pub killed_s: f64,
    /// When its replacement was started (`None`: never, the run ended first).
    pub restarted_s: Option<f64>,
}

/// Everything a run's findings are computed from.
pub struct Observed {
    /// `aa` or `regression`.
    pub mode: String,
    /// The `--duration-scale`.
    pub scale: f64,
    /// The load generator's seed.
    pub seed: u64,
    /// Seconds between gate evaluations, from the plan.
    pub evaluate_every_s: f64,
    /// The soak's timeline.
    pub events: Vec<Event>,
    /// Every proxy kill.
    pub proxy_kills: Vec<ProxyKill>,
    /// Controller kills performed.
    pub controller_kills: usize,
    /// How the last controller ended: its exit code (`None`: killed by the soak at the end,
    /// or never ended).
    pub controller_exit: Option<i32>,
    /// Whether the run hit the soak's overall deadline.
    pub timed_out: bool,
    /// The final controller's `--json` summary, when it wrote one.
    pub summary: Option<Value>,
    /// The run's start in Unix ms, from the journal.
    pub run_started_unix_ms: Option<i64>,
    /// T+0 in Unix ms.
    pub origin_unix_ms: i64,
    /// The controller's readings, from the journal, in order.
    pub readings: Vec<Reading>,
    /// Journal events whose body mentions an unobserved interval.
    pub journal_unobserved_events: usize,
    /// The load generator's requests.
    pub requests: Vec<Req>,
    /// The stalled uploads that were answered, as requests.
    pub upload_answers: Vec<Req>,
    /// The load generator's counters at the end.
    pub client: ClientOutcomes,
    /// What the slowloris clients saw, when they ran.
    pub slowloris: Option<SlowlorisStats>,
    /// What the stalled uploads saw, when they ran.
    pub uploads: Option<UploadStats>,
    /// When the regression was injected and when the proxy's canary weight was first seen
    /// at 0 after it, seconds after T+0.
    pub regression: Option<(f64, Option<f64>)>,
    /// Faults of the scenario that were not carried out, with why.
    pub skipped: Vec<String>,
    /// Remarks on the run (such as a plan key this `ramp` does not accept yet).
    pub notes: Vec<String>,
}

/// What the load generator's clients saw.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ClientOutcomes {
    /// Requests sent.
    pub sent: u64,
    /// Answers with a 2xx or 3xx status.
    pub status_2xx_3xx: u64,
    /// Answers with a 4xx status.
    pub status_4xx: u64,
    /// Answers with a 5xx status.
    pub status_5xx: u64,
    /// Requests without an answer: refused or reset connections, timeouts.
    pub connection_errors: u64,
    /// Arrivals not sent because too many requests were outstanding.
    pub dropped: u64,
}

/// One stage as the soak judges it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageCheck {
    /// 1-based.
    pub index: usize,
    /// Canary weight, percent.
    pub weight: f64,
    /// The controller's decision (`proceed`, `monitor`, `halt`, `rollback`) or `null`.
    pub decision: Option<String>,
    /// Planned duration, seconds.
    pub planned_s: f64,
    /// How long the stage ran, seconds (the summary's `elapsed_s`).
    pub elapsed_s: f64,
    /// The time the controller says it could not observe (`unobserved_s`; 0 when the key is
    /// absent).
    pub unobserved_s: f64,
    /// Whether the summary had an `unobserved_s` key at all.
    pub unobserved_reported: bool,
    /// Seconds of the stage in which, by the soak's clock, the proxy's counts were lost:
    /// from the controller's last reading before a proxy kill to the restart.
    pub lost_by_soak_clock_s: f64,
    /// Decided proceed/monitor with `elapsed_s − unobserved_s` below the plan.
    pub blind_by_controller_record: bool,
    /// Decided proceed/monitor with `elapsed_s − lost_by_soak_clock_s` below the plan.
    pub blind_by_soak_clock: bool,
}

/// Whether every proxy kill left a trace in the controller's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gaps {
    /// Proxy kills performed.
    pub proxy_kills: usize,
    /// Timeline events of the summary that mention an unobserved interval.
    pub recorded_gaps: usize,
    /// Kills matched by such an event (at or after the kill, within a minute of the
    /// restart).
    pub kills_with_a_recorded_gap: usize,
    /// The messages of those events.
    pub messages: Vec<String>,
    /// Journal events mentioning an unobserved interval.
    pub journal_events: usize,
}

/// Requests the load generator saw answered against the requests the controller counted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Accounting {
    /// The controller's observation window, plan seconds: from its first reading's start to
    /// the end of the last reading counted in `totals`.
    pub window_plan_s: (f64, f64),
    /// Load-generator requests answered (any status) inside the window.
    pub generator_answered: u64,
    /// Stalled uploads answered inside the window (they are requests the proxy counts too).
    pub uploads_answered: u64,
    /// `generator_answered + uploads_answered`.
    pub clients_answered: u64,
    /// The summary's `totals.requests`.
    pub controller_counted: u64,
    /// The sum of the journal's readings over the window (equals `controller_counted`
    /// unless the two records disagree).
    pub journal_counted: u64,
    /// `clients_answered − controller_counted`.
    pub difference: i64,
    /// Requests in flight (sent, not yet ended) at each proxy kill, summed.
    pub in_flight_at_kills: u64,
    /// Requests answered inside the intervals the controller could not fully observe.
    pub answered_in_gaps: u64,
    /// Where those intervals come from.
    pub gaps_from: String,
    /// Requests straddling the window's two ends, or answered within 100 ms of them (the
    /// proxy counts an answer a moment before the client has read it).
    pub at_window_edges: u64,
    /// `in_flight_at_kills + answered_in_gaps + at_window_edges`.
    pub bound: u64,
    /// `|difference| ≤ bound`.
    pub within_bound: bool,
}

/// How fast a regression was caught, seconds after its injection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegressionTiming {
    /// When it was injected, seconds after T+0.
    pub injected_s: f64,
    /// Until the proxy's canary weight read 0 (`GET /weights` every 100 ms).
    pub to_weight_zero_s: Option<f64>,
    /// Until the controller's first failing evaluation (`rollback.detection_s`).
    pub to_detection_s: Option<f64>,
    /// Until the controller initiated the rollback (`rollback.initiated_s`).
    pub to_initiation_s: Option<f64>,
    /// From the controller's first failing evaluation to the weight read at 0.
    pub detection_to_weight_zero_s: Option<f64>,
}

/// A run's findings: the document `summary.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Findings {
    /// `aa` or `regression`.
    pub mode: String,
    /// The `--duration-scale`.
    pub duration_scale: f64,
    /// The load generator's seed.
    pub seed: u64,
    /// The final controller's outcome (`promoted`, `promoted_with_caveats`, `rolled_back`,
    /// `halted`), or `null` without a summary.
    pub outcome: Option<String>,
    /// The final controller's exit code.
    pub controller_exit: Option<i32>,
    /// Whether the soak's overall deadline ended the run.
    pub timed_out: bool,
    /// Rollbacks in the controller's record (a run rolls back at most once).
    pub rollbacks: usize,
    /// The rollback's reason, if any.
    pub rollback_reason: Option<String>,
    /// Stages decided proceed/monitor on less observed time than planned, by the
    /// controller's own record.
    pub blind_promotions_by_controller_record: usize,
    /// The same by the soak's clock (kills and restarts it timed itself).
    pub blind_promotions_by_soak_clock: usize,
    /// Every stage.
    pub stages: Vec<StageCheck>,
    /// Proxy kills against recorded gaps.
    pub gaps: Gaps,
    /// Request accounting, when the controller left a summary and a journal.
    pub accounting: Option<Accounting>,
    /// The load generator's clients.
    pub client: ClientOutcomes,
    /// The slowloris clients.
    pub slowloris: Option<SlowlorisStats>,
    /// The stalled uploads.
    pub uploads: Option<UploadStats>,
    /// Controller kills performed.
    pub controller_kills: usize,
    /// Proxy kills performed.
    pub proxy_kills: Vec<ProxyKill>,
    /// The regression's timing, in `--regression-after` runs.
    pub regression: Option<RegressionTiming>,
    /// Faults not carried out.
    pub skipped_faults: Vec<String>,
    /// Remarks on the run.
    pub notes: Vec<String>,
    /// Whether the run passed: see `problems`.
    pub passed: bool,
    /// Why it did not pass, in sentences.
    pub problems: Vec<String>,
    /// The soak's timeline.
    pub events: Vec<Event>,
}

/// `v[key]` as a number, if it is one.
fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

impl Observed {
    /// Seconds to add to a T+ time to get plan time.
    fn plan_offset(&self) -> f64 {
        match self.run_started_unix_ms {
            Some(start) => (self.origin_unix_ms - start) as f64 / 1000.0,
            // Without the journal the controller started at about T+0.
            None => 0.0,
        }
    }

    /// A T+ time as plan time.
    fn plan(&self, t_s: f64) -> f64 {
        t_s + self.plan_offset()
    }

    /// A plan time as a T+ time.
    fn soak(&self, plan_s: f64) -> f64 {
        plan_s - self.plan_offset()
    }

    /// The plan-time interval in which each proxy kill lost the proxy's counts: from the
    /// controller's last reading before the kill to the restart.
    fn lost_intervals(&self) -> Vec<(f64, f64)> {
        self.proxy_kills
            .iter()
            .map(|k| {
                let killed = self.plan(k.killed_s);
                let from = self
                    .readings
                    .iter()
                    .map(|r| r.end_s)
                    .filter(|&e| e <= killed)
                    .fold(f64::NEG_INFINITY, f64::max);
                let from = if from.is_finite() { from } else { killed };
                let to = k.restarted_s.map(|r| self.plan(r)).unwrap_or(f64::INFINITY);
                (from, to.max(killed))
            })
            .collect()
    }

    /// The controller's reading intervals that contain a proxy kill: from its last reading
    /// at or before the kill to the end of its first reading after it (plan seconds).
    fn reading_gaps(&self) -> Vec<(f64, f64)> {
        self.proxy_kills
            .iter()
            .map(|k| {
                let killed = self.plan(k.killed_s);
                let before = self
                    .readings
                    .iter()
                    .map(|r| r.end_s)
                    .filter(|&e| e <= killed)
                    .fold(f64::NEG_INFINITY, f64::max);
                let after = self
                    .readings
                    .iter()
                    .map(|r| r.end_s)
                    .find(|&e| e > killed)
                    .unwrap_or(f64::INFINITY);
                (if before.is_finite() { before } else { killed }, after)
            })
            .collect()
    }

    /// Computes the findings.
    pub fn findings(self) -> Findings {
        let summary = self.summary.clone().unwrap_or(Value::Null);
        let outcome = summary
            .get("outcome")
            .and_then(Value::as_str)
            .map(str::to_string);
        let rollback = summary.get("rollback").filter(|r| !r.is_null());
        let rollbacks = usize::from(rollback.is_some());
        let rollback_reason = rollback
            .and_then(|r| r.get("reason"))
            .and_then(Value::as_str)
            .map(str::to_string);

        let lost = self.lost_intervals();
        let stages: Vec<StageCheck> = summary
            .get("stages")
            .and_then(Value::as_array)
            .map(|stages| {
                stages
                    .iter()
                    .map(|st| self.stage_check(st, &lost))
                    .collect()
            })
            .unwrap_or_default();
        let blind_ctl = stages
            .iter()
            .filter(|s| s.blind_by_controller_record)
            .count();
        let blind_soak = stages.iter().filter(|s| s.blind_by_soak_clock).count();

        let gaps = self.gaps(&summary);
        let accounting = self.accounting(&summary, gaps.recorded_gaps);
        let regression = self.regression.map(|(injected_s, zero)| {
            let after = |plan_s: Option<f64>| plan_s.map(|p| self.soak(p) - injected_s);
            let to_weight_zero_s = zero.map(|z| z - injected_s);
            let to_detection_s = after(rollback.and_then(|r| num(r, "detection_s")));
            RegressionTiming {
                injected_s,
                to_weight_zero_s,
                to_detection_s,
                to_initiation_s: after(rollback.and_then(|r| num(r, "initiated_s"))),
                detection_to_weight_zero_s: to_weight_zero_s
                    .zip(to_detection_s)
                    .map(|(z, d)| z - d),
            }
        });

        let mut problems = Vec::new();
        if self.timed_out {
            problems.push("the run did not finish within the soak's deadline".to_string());
        }
        if self.summary.is_none() {
            problems.push(
                "the final controller wrote no summary, so nothing it decided can be checked"
                    .to_string(),
            );
        }
        if self.mode == "aa" {
            if rollbacks > 0 {
                problems.push(format!(
                    "an A/A run rolled back ({})",
                    rollback_reason.as_deref().unwrap_or("no reason recorded")
                ));
            } else if let Some(o) = outcome.as_deref() {
                if o != "promoted" && o != "promoted_with_caveats" {
                    problems.push(format!("an A/A run ended {o}"));
                }
            }
            if blind_ctl + blind_soak > 0 {
                let which: Vec<String> = stages
                    .iter()
                    .filter(|s| s.blind_by_controller_record || s.blind_by_soak_clock)
                    .map(|s| {
                        format!(
                            "stage {} ({} %) decided {} after {:.1} s of {:.1} s planned, {:.1} s of them unobserved by its record and {:.1} s lost by the soak's clock",
                            s.index,
                            s.weight,
                            s.decision.as_deref().unwrap_or("?"),
                            s.elapsed_s,
                            s.planned_s,
                            s.unobserved_s,
                            s.lost_by_soak_clock_s
                        )
                    })
                    .collect();
                problems.push(format!("blind promotion: {}", which.join("; ")));
            }
        } else {
            if rollbacks == 0 {
                problems.push("the regression was not rolled back".to_string());
            }
            if regression
                .as_ref()
                .is_some_and(|r| r.to_weight_zero_s.is_none())
            {
                problems.push(
                    "the proxy's canary weight was never seen at 0 after the regression"
                        .to_string(),
                );
            }
        }
        if let Some(code) = self.controller_exit {
            if !matches!(code, 0 | 3 | 4) {
                problems.push(format!("the controller exited with code {code}"));
            }
        }

        Findings {
            mode: self.mode.clone(),
            duration_scale: self.scale,
            seed: self.seed,
            outcome,
            controller_exit: self.controller_exit,
            timed_out: self.timed_out,
            rollbacks,
            rollback_reason,
            blind_promotions_by_controller_record: blind_ctl,
            blind_promotions_by_soak_clock: blind_soak,
            stages,
            gaps,
            accounting,
            client: self.client,
            slowloris: self.slowloris.clone(),
            uploads: self.uploads.clone(),
            controller_kills: self.controller_kills,
            proxy_kills: self.proxy_kills.clone(),
            regression,
            skipped_faults: self.skipped.clone(),
            notes: self.notes.clone(),
            passed: problems.is_empty(),
            problems,
            events: self.events.clone(),
        }
    }

    /// One stage of the summary, judged.
    fn stage_check(&self, st: &Value, lost: &[(f64, f64)]) -> StageCheck {
        let elapsed_s = num(st, "elapsed_s").unwrap_or(0.0);
        let planned_s = num(st, "planned_duration_s").unwrap_or(0.0);
        let started_s = num(st, "started_s").unwrap_or(0.0);
        let unobserved = num(st, "unobserved_s");
        let decision = st
            .get("decision")
            .and_then(Value::as_str)
            .map(str::to_string);
        let (from, to) = (started_s, started_s + elapsed_s);
        let lost_s: f64 = lost
            .iter()
            .map(|&(a, b)| (b.min(to) - a.max(from)).max(0.0))
            // A fold from +0.0: the sum of no floats is −0.0, which would print as "-0.0".
            .fold(0.0, |sum, overlap| sum + overlap);
        let promoted = matches!(decision.as_deref(), Some("proceed" | "monitor"));
        // A millisecond of slack: the summary's times are rounded to milliseconds.
        let short = |observed: f64| promoted && observed + 0.001 < planned_s;
        StageCheck {
            index: st.get("index").and_then(Value::as_u64).unwrap_or(0) as usize,
            weight: num(st, "weight").unwrap_or(0.0),
            decision,
            planned_s,
            elapsed_s,
            unobserved_s: unobserved.unwrap_or(0.0),
            unobserved_reported: unobserved.is_some(),
            lost_by_soak_clock_s: lost_s,
            blind_by_controller_record: short(elapsed_s - unobserved.unwrap_or(0.0)),
            blind_by_soak_clock: short(elapsed_s - lost_s),
        }
    }

    /// Proxy kills against the controller's recorded gaps.
    fn gaps(&self, summary: &Value) -> Gaps {
        let recorded: Vec<(f64, String)> = summary
            .get("timeline")
            .and_then(Value::as_array)
            .map(|events| {
                events
                    .iter()
                    .filter_map(|e| {
                        let message = e.get("message")?.as_str()?;
                        message
                            .to_lowercase()
                            .contains("unobserved")
                            .then(|| (num(e, "t_s").unwrap_or(0.0), message.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut used = vec![false; recorded.len()];
        let mut matched = 0;
        for k in &self.proxy_kills {
            let from = self.plan(k.killed_s);
            let to = self.plan(k.restarted_s.unwrap_or(k.killed_s)) + 60.0;
            if let Some(i) = (0..recorded.len()).find(|&i| {
                !used[i] && recorded[i].0 >= from - self.evaluate_every_s && recorded[i].0 <= to
            }) {
                used[i] = true;
                matched += 1;
            }
        }
        Gaps {
            proxy_kills: self.proxy_kills.len(),
            recorded_gaps: recorded.len(),
            kills_with_a_recorded_gap: matched,
            messages: recorded.into_iter().map(|(_, m)| m).collect(),
            journal_events: self.journal_unobserved_events,
        }
    }

    /// The request accounting, when there is a summary with totals and readings.
    fn accounting(&self, summary: &Value, recorded_gaps: usize) -> Option<Accounting> {
        let totals = summary.get("totals")?;
        let counted = totals.get("requests")?.as_u64()?;
        let covered = num(totals, "duration_s")?;
        let readings: Vec<&Reading> = self
            .readings
            .iter()
            .filter(|r| r.end_s <= covered + 0.0005)
            .collect();
        let (first, last) = (readings.first()?, readings.last()?);
        let window = (first.start_s, last.end_s);
        let (w0, w1) = (self.soak(window.0), self.soak(window.1));
        let inside = |r: &&Req| r.answered && r.done_s >= w0 && r.done_s <= w1;
        let generator_answered = self.requests.iter().filter(inside).count() as u64;
        let uploads_answered = self.upload_answers.iter().filter(inside).count() as u64;
        let clients_answered = generator_answered + uploads_answered;
        let all = || self.requests.iter().chain(self.upload_answers.iter());
        let in_flight_at = |t: f64| all().filter(|r| r.sent_s < t && r.done_s >= t).count() as u64;
        let in_flight_at_kills = self
            .proxy_kills
            .iter()
            .map(|k| in_flight_at(k.killed_s))
            .sum();
        let answered_in_gaps = self
            .reading_gaps()
            .iter()
            .map(|&(a, b)| {
                let (a, b) = (self.soak(a), self.soak(b));
                all()
                    .filter(|r| r.answered && r.done_s > a && r.done_s <= b)
                    .count() as u64
            })
            .sum();
        let near = |t: f64| {
            all()
                .filter(|r| {
                    (r.sent_s < t && r.done_s > t) || (r.answered && (r.done_s - t).abs() <= 0.1)
                })
                .count() as u64
        };
        let at_window_edges = near(w0) + near(w1);
        let bound = in_flight_at_kills + answered_in_gaps + at_window_edges;
        let difference = clients_answered as i64 - counted as i64;
        let gaps_from = if recorded_gaps > 0 {
            "the controller's reading intervals that contain a proxy kill (journal); the controller also recorded unobserved intervals".to_string()
        } else {
            "the controller's reading intervals that contain a proxy kill (journal); the controller recorded no unobserved interval".to_string()
        };
        Some(Accounting {
            window_plan_s: window,
            generator_answered,
            uploads_answered,
            clients_answered,
            controller_counted: counted,
            journal_counted: readings.iter().map(|r| r.requests).sum(),
            difference,
            in_flight_at_kills,
            answered_in_gaps,
            gaps_from,
            at_window_edges,
            bound,
            within_bound: difference.unsigned_abs() <= bound,
        })
    }
}

/// `n` with commas between thousands, as Ramp's reports print counts.
fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds with one decimal, or "n/a".
fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |s| format!("{s:.1} s"))
}

impl Findings {
    /// The run's short Markdown block.
    pub fn markdown(&self, title: &str) -> String {
        let mut m = String::new();
        let verdict = if self.passed { "PASS" } else { "FAIL" };
        let mode = if self.mode == "aa" {
            "A/A"
        } else {
            "regression"
        };
        let _ = writeln!(
            m,
            "### {title} ({mode}, duration scale {}, seed {}): {verdict}\n",
            self.duration_scale, self.seed
        );
        let _ = writeln!(
            m,
            "- Outcome: {} (controller exit {}){}; rollbacks: {}{}",
            self.outcome.as_deref().unwrap_or("no summary"),
            self.controller_exit
                .map_or_else(|| "none".to_string(), |c| c.to_string()),
            if self.timed_out { ", timed out" } else { "" },
            self.rollbacks,
            self.rollback_reason
                .as_deref()
                .map_or_else(String::new, |r| format!(" — {r}"))
        );
        let reported = self.stages.iter().any(|s| s.unobserved_reported);
        let _ = writeln!(
            m,
            "- Blind promotions: {} by the controller's record{}, {} by the soak's clock",
            self.blind_promotions_by_controller_record,
            if reported || self.stages.is_empty() {
                ""
            } else {
                " (its summary has no `unobserved_s` yet)"
            },
            self.blind_promotions_by_soak_clock
        );
        for s in &self.stages {
            let _ = writeln!(
                m,
                "  - stage {} ({} %): {}, {:.1} s of {:.1} s planned, {:.1} s unobserved by its record, {:.1} s lost by the soak's clock{}",
                s.index,
                s.weight,
                s.decision.as_deref().unwrap_or("undecided"),
                s.elapsed_s,
                s.planned_s,
                s.unobserved_s,
                s.lost_by_soak_clock_s,
                if s.blind_by_controller_record || s.blind_by_soak_clock {
                    " — BLIND"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(
            m,
            "- Gaps accounted for: {} of {} proxy kills have an unobserved interval in the controller's record ({} such timeline events, {} journal events)",
            self.gaps.kills_with_a_recorded_gap,
            self.gaps.proxy_kills,
            self.gaps.recorded_gaps,
            self.gaps.journal_events
        );
        match &self.accounting {
            Some(a) => {
                let _ = writeln!(
                    m,
                    "- Requests: clients saw {} answered inside the controller's window (plan time {:.1}–{:.1} s; {} from the load generator, {} stalled uploads), the controller counted {} (journal {}); difference {:+}, bound {} ({} in flight at kills, {} answered in the reading intervals containing a kill, {} at the window's edges): {}",
                    count(a.clients_answered),
                    a.window_plan_s.0,
                    a.window_plan_s.1,
                    count(a.generator_answered),
                    count(a.uploads_answered),
                    count(a.controller_counted),
                    count(a.journal_counted),
                    a.difference,
                    count(a.bound),
                    a.in_flight_at_kills,
                    a.answered_in_gaps,
                    a.at_window_edges,
                    if a.within_bound { "within the bound" } else { "OUTSIDE the bound" }
                );
                let _ = writeln!(m, "  - gaps from {}", a.gaps_from);
            }
            None => {
                let _ = writeln!(
                    m,
                    "- Requests: no accounting (no summary with totals, or no journal readings)"
                );
            }
        }
        let c = &self.client;
        let _ = writeln!(
            m,
            "- Load-generator clients: {} sent; 2xx/3xx {} · 4xx {} · 5xx {} · connection errors {} · dropped {}",
            count(c.sent),
            count(c.status_2xx_3xx),
            count(c.status_4xx),
            count(c.status_5xx),
            count(c.connection_errors),
            count(c.dropped)
        );
        if let Some(s) = &self.slowloris {
            let _ = writeln!(
                m,
                "- Slowloris: {} connections, {} closed by the proxy ({} with an answer), {} still open at the window's end, longest held {:.1} s, {} refused",
                s.connections, s.closed_by_proxy, s.answered, s.open_at_window_end, s.longest_held_s, s.connect_failures
            );
        }
        if let Some(u) = &self.uploads {
            let _ = writeln!(
                m,
                "- Stalled uploads ({} canary keys): {} started; answered 2xx/3xx {} · 4xx {} · 5xx {}; closed without an answer {}; no answer {}; refused {}",
                u.keys,
                u.started,
                u.answered_2xx_3xx,
                u.answered_4xx,
                u.answered_5xx,
                u.closed_without_answer,
                u.no_answer,
                u.connect_failures
            );
        }
        let _ = writeln!(
            m,
            "- Faults: {} controller kills, {} proxy kills{}",
            self.controller_kills,
            self.proxy_kills.len(),
            if self.skipped_faults.is_empty() {
                String::new()
            } else {
                format!("; not carried out: {}", self.skipped_faults.join("; "))
            }
        );
        if let Some(r) = &self.regression {
            let _ = writeln!(
                m,
                "- Regression injected at T+{:.1} s: first failing detection after {}, rollback initiated after {}, the proxy's canary weight read 0 after {} ({} after the detection)",
                r.injected_s,
                secs(r.to_detection_s),
                secs(r.to_initiation_s),
                secs(r.to_weight_zero_s),
                secs(r.detection_to_weight_zero_s)
            );
        }
        for n in &self.notes {
            let _ = writeln!(m, "- Note: {n}");
        }
        for p in &self.problems {
            let _ = writeln!(m, "- **Problem:** {p}");
        }
        m
    }

    /// One row of the table over several runs.
    pub fn table_row(&self, run: &str) -> String {
        let acc = self.accounting.as_ref().map_or_else(
            || "n/a".to_string(),
            |a| {
                format!(
                    "{:+} / {}{}",
                    a.difference,
                    a.bound,
                    if a.within_bound { "" } else { " ✗" }
                )
            },
        );
        let c = &self.client;
        let regression = self.regression.as_ref().map_or_else(
            || "—".to_string(),
            |r| format!("{} / {}", secs(r.to_detection_s), secs(r.to_weight_zero_s)),
        );
        format!(
            "| {run} | {} | {} | {} | {} / {} | {} / {} | {acc} | {} / {} / {} / {} | {regression} | {} |",
            if self.mode == "aa" { "A/A" } else { "regression" },
            self.outcome.as_deref().unwrap_or("none"),
            self.rollbacks,
            self.blind_promotions_by_controller_record,
            self.blind_promotions_by_soak_clock,
            self.gaps.kills_with_a_recorded_gap,
            self.gaps.proxy_kills,
            c.status_2xx_3xx,
            c.status_4xx,
            c.status_5xx,
            c.connection_errors,
            if self.passed { "pass" } else { "FAIL" }
        )
    }

    /// The header of the table of [`Findings::table_row`]s.
    pub fn table_header() -> &'static str {
        "| Run | Mode | Outcome | Rollbacks | Blind (record / clock) | Gaps recorded / proxy kills | Requests diff / bound | Clients 2xx / 4xx / 5xx / conn. errors | Detection / weight 0 | Verdict |\n|---|---|---|---|---|---|---|---|---|---|"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn observed(summary: Value, kills: Vec<ProxyKill>, readings: Vec<Reading>) -> Observed {
        Observed {
            mode: "aa".into(),
            scale: 1.0,
            seed: 1,
            evaluate_every_s: 2.0,
            events: Vec::new(),
            proxy_kills: kills,
            controller_kills: 0,
            controller_exit: Some(0),
            timed_out: false,
            summary: Some(summary),
            run_started_unix_ms: Some(1_000_000),
            origin_unix_ms: 1_000_000,
            readings,
            journal_unobserved_events: 0,
            requests: Vec::new(),
            upload_answers: Vec::new(),
            client: ClientOutcomes::default(),
            slowloris: None,
            uploads: None,
            regression: None,
            skipped: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn reading(start_s: f64, end_s: f64, requests: u64) -> Reading {
        Reading {
            start_s,
            end_s,
            requests,
        }
    }

    #[test]
    fn a_stage_end_inside_a_proxy_outage_is_a_blind_promotion_by_the_soaks_clock() {
        // Stage 1: 0–10 s planned, ended at 12 s after an outage from 7 s (last reading at
        // 6 s) to a restart at 11 s: 5 s lost, 7 s observed.
        let summary = json!({
            "outcome": "promoted",
            "rollback": null,
            "stages": [
                { "index": 1, "weight": 5.0, "planned_duration_s": 10.0, "started_s": 0.0,
                  "elapsed_s": 12.0, "decision": "proceed" },
                { "index": 2, "weight": 100.0, "planned_duration_s": 10.0, "started_s": 12.0,
                  "elapsed_s": 10.0, "decision": "proceed" }
            ],
            "totals": { "requests": 100, "duration_s": 22.0 },
            "timeline": []
        });
        let kills = vec![ProxyKill {
            killed_s: 7.0,
            restarted_s: Some(11.0),
        }];
        let readings = vec![
            reading(0.0, 6.0, 60),
            reading(6.0, 12.0, 10),
            reading(12.0, 22.0, 30),
        ];
        let f = observed(summary, kills, readings).findings();
        assert_eq!(f.blind_promotions_by_controller_record, 0);
        assert_eq!(f.blind_promotions_by_soak_clock, 1);
        assert!((f.stages[0].lost_by_soak_clock_s - 5.0).abs() < 1e-9);
        assert!(!f.passed);
        assert_eq!(f.gaps.kills_with_a_recorded_gap, 0);
    }

    #[test]
    fn a_recorded_gap_and_unobserved_time_are_read_from_the_summary() {
        let summary = json!({
            "outcome": "promoted",
            "rollback": null,
            "stages": [
                { "index": 1, "weight": 5.0, "planned_duration_s": 10.0, "started_s": 0.0,
                  "elapsed_s": 16.0, "unobserved_s": 5.0, "decision": "proceed" }
            ],
            "totals": { "requests": 3, "duration_s": 16.0 },
            "timeline": [ { "t_s": 12.0, "message": "5.0 s unobserved: the proxy restarted" } ]
        });
        let kills = vec![ProxyKill {
            killed_s: 7.0,
            restarted_s: Some(11.0),
        }];
        let readings = vec![reading(0.0, 6.0, 2), reading(6.0, 16.0, 1)];
        let mut o = observed(summary, kills, readings);
        o.requests = vec![
            Req {
                sent_s: 1.0,
                done_s: 1.1,
                answered: true,
            },
            Req {
                sent_s: 6.5,
                done_s: 6.6,
                answered: true,
            },
            Req {
                sent_s: 6.9,
                done_s: 7.0,
                answered: false,
            },
            Req {
                sent_s: 12.0,
                done_s: 12.1,
                answered: true,
            },
            Req {
                sent_s: 3.0,
                done_s: 3.1,
                answered: true,
            },
        ];
        let f = o.findings();
        assert_eq!(f.blind_promotions_by_controller_record, 0);
        assert_eq!(f.blind_promotions_by_soak_clock, 0);
        assert_eq!(f.gaps.kills_with_a_recorded_gap, 1);
        let a = f.accounting.expect("accounting");
        assert_eq!((a.clients_answered, a.controller_counted), (4, 3));
        assert_eq!(a.difference, 1);
        // Answered in the reading interval containing the kill (6–16 s): two.
        assert_eq!(a.answered_in_gaps, 2);
        assert!(a.within_bound);
        assert!(f.passed, "{:?}", f.problems);
    }
}
