//! The live dashboard: a page served at `/` on the control API, and the document it polls
//! (`GET /dashboard.json`: the status plus the rollout's history so far).
//!
//! The page is one self-contained file (inline CSS and JavaScript, no CDN), so it works on a
//! machine with no internet. It redraws every second from the document: the stage's
//! progress, each gate's sentence, the charts so far (the canary's weight over time, and the
//! canary's p99 and error rate at each checkpoint against the stable version's and the fail
//! level), pending approvals and the timeline. Reading needs no token unless the
//! controller's metrics are protected (the document tells what `/metrics` tells, and more
//! only in words); the buttons (pause, resume, approve as, abort) call the existing actions,
//! which need the control token when one is configured.

use ramp_core::engine::Engine;
use ramp_core::plan::{Metric, Scope};
use ramp_core::summary::{Metrics, Summary};
use serde::{Deserialize, Serialize};

/// The page, served as is.
pub const PAGE: &str = include_str!("page.html");

/// The rollout so far, for the dashboard's charts and progress bar: compact (a point per
/// checkpoint with the numbers the charts draw), because the page asks for it every second.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct History {
    /// The planned stages, in order.
    pub plan: Vec<PlannedView>,
    /// Every stage begun so far, in order.
    pub stages: Vec<StageRecord>,
    /// Every checkpoint so far, oldest first.
    pub checkpoints: Vec<Point>,
    /// Whether the actions need the control token (the buttons ask for it).
    pub actions_need_token: bool,
}

/// One planned stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlannedView {
    /// Its weight, percent.
    pub weight: f64,
    /// Its planned duration, seconds.
    pub duration_s: f64,
}

/// One stage begun.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageRecord {
    /// 1-based stage number.
    pub index: usize,
    /// Its weight, percent.
    pub weight: f64,
    /// When it started, seconds since the rollout began.
    pub started_s: f64,
    /// Seconds spent in it so far (all of it once decided).
    pub elapsed_s: f64,
    /// Its decision, once made ("proceed", "monitor", "halt", "rollback").
    pub decision: Option<String>,
}

/// One checkpoint: the canary's and the stable version's numbers, and the canary's fail
/// levels in force then.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Point {
    /// Seconds since the rollout began.
    pub t_s: f64,
    /// 1-based stage number.
    pub stage: usize,
    /// The canary's p99 latency over the checkpoint's interval, ms.
    pub canary_p99_ms: Option<f64>,
    /// The stable version's p99 latency, ms.
    pub stable_p99_ms: Option<f64>,
    /// The canary's error rate (0–1).
    pub canary_error_rate: Option<f64>,
    /// The stable version's error rate (0–1).
    pub stable_error_rate: Option<f64>,
    /// The canary's p99 fail level (a maximum), when a gate sets one.
    pub p99_fail_ms: Option<f64>,
    /// The canary's error-rate fail level, when a gate sets one.
    pub error_rate_fail: Option<f64>,
}

impl History {
    /// The history of `engine`'s rollout so far.
    pub fn of(engine: &Engine, actions_need_token: bool) -> History {
        let mut history = History::from_summary(&engine.summary(), actions_need_token);
        // The summary records a stage's time when it is decided; the running one's is now.
        if let (Some(view), Some(last)) = (engine.live_view(), history.stages.last_mut()) {
            if last.decision.is_none() {
                last.elapsed_s = engine.now().since(view.started).as_secs_f64();
            }
        }
        history
    }

    /// The history in `summary` (a running rollout's, or a finished one's).
    pub fn from_summary(summary: &Summary, actions_need_token: bool) -> History {
        let plan = summary
            .plan
            .iter()
            .map(|p| PlannedView {
                weight: p.weight,
                duration_s: p.duration_s,
            })
            .collect();
        let stages = summary
            .stages
            .iter()
            .map(|s| StageRecord {
                index: s.index,
                weight: s.weight,
                started_s: s.started_s,
                elapsed_s: s.elapsed_s,
                decision: s.decision.map(|d| d.key().to_string()),
            })
            .collect();
        let mut checkpoints = Vec::new();
        for s in &summary.stages {
            let level = |metric: Metric| {
                summary
                    .plan
                    .get(s.index.saturating_sub(1))
                    .and_then(|p| {
                        p.gates
                            .iter()
                            .find(|g| g.metric == metric && g.scope == Scope::Canary)
                    })
                    .and_then(|g| g.max)
            };
            let (p99_fail_ms, error_rate_fail) = (level(Metric::P99Ms), level(Metric::ErrorRate));
            for c in &s.checkpoints {
                let (canary, stable): (&Metrics, &Metrics) =
                    (&c.metrics_by_scope.canary, &c.metrics_by_scope.stable);
                checkpoints.push(Point {
                    t_s: c.t_s,
                    stage: s.index,
                    canary_p99_ms: canary.p99_ms,
                    stable_p99_ms: stable.p99_ms,
                    canary_error_rate: canary.error_rate,
                    stable_error_rate: stable.error_rate,
                    p99_fail_ms,
                    error_rate_fail,
                });
            }
        }
        History {
            plan,
            stages,
            checkpoints,
            actions_need_token,
        }
    }
}
