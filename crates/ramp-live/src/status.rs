//! What `ramp status` shows: the running rollout, each gate explained in a sentence.

use ramp_core::engine::{explain, explain_query, Engine, LiveView, State};
use ramp_core::summary::{GateStatus, Summary, TestResult, TimelineEvent};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The status document of the control API (`GET /status`) and of `ramp status --json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusView {
    /// The deployment.
    pub deployment_id: String,
    /// The journal's run id.
    pub run_id: i64,
    /// "pending", "running" or "finished".
    pub state: String,
    /// The outcome once finished.
    pub outcome: Option<String>,
    /// Seconds since the rollout began.
    pub t_s: f64,
    /// Canary weight the controller last set, percent.
    pub weight: f64,
    /// The running stage, when one is.
    pub stage: Option<StageView>,
    /// Who paused the rollout and why, while paused.
    pub paused: Option<String>,
    /// The stage waiting for approvals and who is missing.
    pub awaiting: Option<AwaitingView>,
    /// Each gate of the running stage on its window, with its sentence.
    pub gates: Vec<GateLine>,
    /// The statistical tests of the running stage.
    pub tests: Vec<TestResult>,
    /// The last events, oldest first.
    pub recent: Vec<TimelineEvent>,
    /// Why the last metrics read failed, while the proxy cannot be read (the rollout holds).
    pub metrics_problem: Option<String>,
    /// What the metrics source's readings lack, while they lack it (a Prometheus query that
    /// returns no series: counted as no requests, so its gates have no data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_incomplete: Option<String>,
    /// Distinct users each served flag was on and off for over its window, when the run
    /// serves flags.
    #[serde(default)]
    pub flags: Vec<ramp_core::summary::FlagUsageSummary>,
    /// Each member of a fleet of proxies as last read, so that a skewed fleet (a member
    /// serving little, or not holding the weight) is visible; absent for a single router.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberView>,
    /// The rollout so far, for the live dashboard's charts (`GET /dashboard.json` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<crate::dashboard::History>,
}

/// One member of a fleet of proxies, as `ramp status` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemberView {
    /// Its admin API.
    pub url: String,
    /// Requests it completed since it started (both cohorts), when it could be read.
    pub requests: Option<u64>,
    /// How many of them were errors (both cohorts), when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<u64>,
    /// Its process start (`instance.boot_id`) at the last reading, so that counts read across
    /// a restart are not subtracted; not shown.
    #[serde(skip)]
    pub boot_id: Option<String>,
    /// The canary weight it holds (basis points), when it could be read.
    pub canary_bp: Option<u32>,
    /// Whether it holds the weight the controller last set.
    pub holds_weight: bool,
    /// Why it could not be read or set, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The running stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageView {
    /// 1-based stage number.
    pub index: usize,
    /// Number of stages.
    pub of: usize,
    /// Its weight, percent.
    pub weight: f64,
    /// Seconds spent in it.
    pub elapsed_s: f64,
    /// Its planned duration, seconds.
    pub duration_s: f64,
    /// Seconds of it that were unobserved (the proxy restarted or could not be read): they
    /// do not count toward its duration, which is extended by them.
    #[serde(default)]
    pub unobserved_s: f64,
}

/// A stage held for approvals.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AwaitingView {
    /// 1-based stage number.
    pub stage: usize,
    /// Approvers still missing.
    pub missing: Vec<String>,
}

/// A gate status as status documents spell it.
fn status_key(status: GateStatus) -> &'static str {
    match status {
        GateStatus::Pass => "pass",
        GateStatus::Warn => "warn",
        GateStatus::Fail => "fail",
        GateStatus::NoData => "no_data",
    }
}

/// One gate as status shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GateLine {
    /// "pass", "warn", "fail" or "no_data".
    pub status: String,
    /// The gate's sentence ("canary p99 is 512 ms, under the 1000 ms ceiling, …").
    pub explanation: String,
}

impl StatusView {
    /// The view of `engine` now.
    pub fn of(engine: &Engine, run_id: i64, metrics_problem: Option<String>) -> StatusView {
        let plan = engine.plan();
        let summary = engine.summary();
        let (state, outcome) = match engine.state() {
            State::Pending => ("pending", None),
            State::Running { .. } => ("running", None),
            State::Finished(o) => ("finished", Some(o.key().to_string())),
        };
        let mut stage = None;
        let mut gates = Vec::new();
        let mut tests = Vec::new();
        if let Some(LiveView {
            index,
            started,
            gates: g,
            tests: t,
            queries: q,
            unobserved_ms,
            ends_at: _,
        }) = engine.live_view()
        {
            let st = &plan.stages[index];
            stage = Some(StageView {
                index: index + 1,
                of: plan.stages.len(),
                weight: st.weight.percent(),
                elapsed_s: engine.now().since(started).as_secs_f64(),
                duration_s: st.duration.as_secs_f64(),
                unobserved_s: ramp_core::Span(unobserved_ms).as_secs_f64(),
            });
            gates = g
                .iter()
                .map(|r| GateLine {
                    status: status_key(r.status).to_string(),
                    explanation: explain(r),
                })
                .chain(q.iter().map(|r| GateLine {
                    status: status_key(r.status).to_string(),
                    explanation: explain_query(r),
                }))
                .collect();
            tests = t;
        }
        let recent = recent_events(&summary);
        StatusView {
            deployment_id: plan.deployment.id.clone(),
            run_id,
            state: state.to_string(),
            outcome,
            t_s: engine.now().as_secs_f64(),
            weight: engine.weight().percent(),
            stage,
            paused: engine.paused().map(str::to_string),
            awaiting: engine.awaiting().map(|(i, missing)| AwaitingView {
                stage: i + 1,
                missing,
            }),
            gates,
            tests,
            recent,
            metrics_problem,
            metrics_incomplete: None,
            flags: Vec::new(),
            members: Vec::new(),
            history: None,
        }
    }

    /// The view as text for a terminal.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Deployment {} (run {}): {}{} at T+{:.0}s, canary weight {}%",
            self.deployment_id,
            self.run_id,
            self.state,
            self.outcome
                .as_ref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default(),
            self.t_s,
            self.weight
        );
        if let Some(st) = &self.stage {
            if st.unobserved_s > 0.0 {
                let _ = writeln!(
                    s,
                    "Stage {}/{} at {}%: observed {:.0}s of {:.0}s; {:.0}s unobserved (the stage is extended by it)",
                    st.index,
                    st.of,
                    st.weight,
                    (st.elapsed_s - st.unobserved_s).max(0.0),
                    st.duration_s,
                    st.unobserved_s
                );
            } else {
                let _ = writeln!(
                    s,
                    "Stage {}/{} at {}%: {:.0}s of {:.0}s",
                    st.index, st.of, st.weight, st.elapsed_s, st.duration_s
                );
            }
        }
        if let Some(p) = &self.paused {
            let _ = writeln!(s, "PAUSED: {p}");
        }
        if let Some(a) = &self.awaiting {
            let _ = writeln!(
                s,
                "Stage {} waits for approval from: {}  (ramp approve --as NAME)",
                a.stage,
                a.missing.join(", ")
            );
        }
        if let Some(m) = &self.metrics_incomplete {
            let _ = writeln!(s, "Metrics incomplete: {m}");
        }
        if let Some(m) = &self.metrics_problem {
            let _ = writeln!(s, "Metrics unavailable, rollout holding: {m}");
        }
        if !self.members.is_empty() {
            let _ = writeln!(s, "Fleet members:");
            for m in &self.members {
                let requests = m
                    .requests
                    .map_or("unread".to_string(), ramp_stats::thousands);
                let errors = m
                    .errors
                    .map(|e| format!(" ({} errors)", ramp_stats::thousands(e)))
                    .unwrap_or_default();
                let holds = if m.holds_weight {
                    "holds the weight".to_string()
                } else {
                    match m.canary_bp {
                        Some(bp) => format!("holds {} %, NOT the weight", f64::from(bp) / 100.0),
                        None => "weight unknown".to_string(),
                    }
                };
                let problem = m
                    .problem
                    .as_ref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "  {}: {requests} requests{errors}, {holds}{problem}",
                    m.url
                );
            }
        }
        if !self.gates.is_empty() {
            let _ = writeln!(s, "Gates:");
            for g in &self.gates {
                let _ = writeln!(s, "  [{}] {}", g.status.to_uppercase(), g.explanation);
            }
        }
        if !self.tests.is_empty() {
            let _ = writeln!(s, "Tests:");
            for t in &self.tests {
                let verdict = if t.reject { "REJECT" } else { "ok" };
                let _ = writeln!(
                    s,
                    "  [{}] {} (α {}): {}",
                    verdict,
                    t.test.replace('_', " "),
                    t.alpha,
                    t.explanation
                );
            }
        }
        if !self.flags.is_empty() {
            let _ = writeln!(
                s,
                "Flags (distinct users over the last {:.0} s):",
                self.flags[0].window_s
            );
            for f in &self.flags {
                let _ = writeln!(
                    s,
                    "  {}: {} users ({}%{}), {} off{}",
                    f.key,
                    ramp_stats::thousands(f.on_users),
                    f.weight,
                    if f.scheduled { " by its schedule" } else { "" },
                    ramp_stats::thousands(f.off_users),
                    if f.exact { "" } else { " (estimated)" }
                );
            }
        }
        if !self.recent.is_empty() {
            let _ = writeln!(s, "Recent events:");
            for e in &self.recent {
                let _ = writeln!(s, "  T+{:.0}s {}", e.t_s, e.message);
            }
        }
        s
    }
}

/// The last eight timeline events of `summary`, oldest first: what a status view shows as
/// "recent", for a live controller and for a run rebuilt from the journal alike.
pub fn recent_events(summary: &Summary) -> Vec<TimelineEvent> {
    summary
        .timeline
        .iter()
        .rev()
        .take(8)
        .rev()
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12: `ramp status` says how much of a stage was observed when some was not.
    #[test]
    fn a_stage_with_unobserved_time_says_what_was_observed() {
        let mut view = StatusView {
            deployment_id: "d".into(),
            run_id: 1,
            state: "running".into(),
            outcome: None,
            t_s: 60.0,
            weight: 25.0,
            stage: Some(StageView {
                index: 2,
                of: 4,
                weight: 25.0,
                elapsed_s: 40.0,
                duration_s: 40.0,
                unobserved_s: 12.0,
            }),
            paused: None,
            awaiting: None,
            gates: Vec::new(),
            tests: Vec::new(),
            recent: Vec::new(),
            metrics_problem: None,
            metrics_incomplete: None,
            flags: Vec::new(),
            members: Vec::new(),
            history: None,
        };
        let text = view.render();
        assert!(
            text.contains("Stage 2/4 at 25%: observed 28s of 40s; 12s unobserved"),
            "{text}"
        );
        if let Some(st) = &mut view.stage {
            st.unobserved_s = 0.0;
        }
        assert!(view.render().contains("Stage 2/4 at 25%: 40s of 40s"));
    }

    /// A fleet's members show in status, a skewed or unset member visibly; a single router's
    /// JSON has no `members` key at all.
    #[test]
    fn fleet_members_show_and_a_single_router_has_none() {
        let engine = Engine::new(std::sync::Arc::new(
            ramp_core::parse_plan(
                "[deployment]\nid = \"d\"\nservice = \"s\"\nenvironment = \"e\"\n\n[router]\nadmin = \"http://127.0.0.1:1\"\n\n[gates]\nerror_rate = { max = \"1%\" }\n\n[[stages]]\nweight = 100\nduration = \"10m\"\n",
                "p.toml",
            )
            .unwrap(),
        ));
        let mut view = StatusView::of(&engine, 1, None);
        let json = serde_json::to_value(&view).unwrap();
        assert!(json.get("members").is_none(), "{json}");
        view.members = vec![
            MemberView {
                url: "http://127.0.0.1:9901".into(),
                requests: Some(1200),
                errors: Some(3),
                boot_id: None,
                canary_bp: Some(1000),
                holds_weight: true,
                problem: None,
            },
            MemberView {
                url: "http://127.0.0.1:9902".into(),
                requests: Some(30),
                errors: None,
                boot_id: None,
                canary_bp: Some(0),
                holds_weight: false,
                problem: None,
            },
        ];
        let text = view.render();
        assert!(
            text.contains("http://127.0.0.1:9901: 1,200 requests (3 errors), holds the weight"),
            "{text}"
        );
        assert!(
            text.contains("http://127.0.0.1:9902: 30 requests, holds 0 %, NOT the weight"),
            "{text}"
        );
    }
}
