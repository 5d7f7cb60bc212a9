//! What the driver publishes after each engine step: the rollout's state, stage, weights,
//! gates and last rollback, in the closed sets the metrics label by.

use ramp_core::engine::{Engine, LiveView, State};
use ramp_core::summary::{GateResult, GateStatus, Outcome};
use ramp_core::Metric;

/// Where the rollout stands: the value of `ramp_rollout_state`'s one-hot `state` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutState {
    /// Waiting for the pre-deployment checks or the first stage.
    Pending,
    /// A stage runs.
    Running,
    /// An operator paused the rollout.
    Paused,
    /// The next stage waits for approvals.
    AwaitingApproval,
    /// Finished at 100 %.
    Promoted,
    /// Finished at 100 % with a gate that warned.
    PromotedWithCaveats,
    /// Finished at 0 % after a failing gate or an abort.
    RolledBack,
    /// Finished without a decision: a human decides.
    Halted,
}

impl RolloutState {
    /// Every state, in the order they are rendered.
    pub const ALL: [RolloutState; 8] = [
        RolloutState::Pending,
        RolloutState::Running,
        RolloutState::Paused,
        RolloutState::AwaitingApproval,
        RolloutState::Promoted,
        RolloutState::PromotedWithCaveats,
        RolloutState::RolledBack,
        RolloutState::Halted,
    ];

    /// The label value.
    pub fn key(self) -> &'static str {
        match self {
            RolloutState::Pending => "pending",
            RolloutState::Running => "running",
            RolloutState::Paused => "paused",
            RolloutState::AwaitingApproval => "awaiting_approval",
            RolloutState::Promoted => "promoted",
            RolloutState::PromotedWithCaveats => "promoted_with_caveats",
            RolloutState::RolledBack => "rolled_back",
            RolloutState::Halted => "halted",
        }
    }

    /// The state of `engine` now.
    fn of(engine: &Engine) -> RolloutState {
        match engine.state() {
            State::Finished(o) => match o {
                Outcome::Promoted => RolloutState::Promoted,
                Outcome::PromotedWithCaveats => RolloutState::PromotedWithCaveats,
                Outcome::RolledBack => RolloutState::RolledBack,
                Outcome::Halted => RolloutState::Halted,
            },
            State::Pending | State::Running { .. } if engine.paused().is_some() => {
                RolloutState::Paused
            }
            State::Pending | State::Running { .. } if engine.awaiting().is_some() => {
                RolloutState::AwaitingApproval
            }
            State::Pending => RolloutState::Pending,
            State::Running { .. } => RolloutState::Running,
        }
    }
}

/// One gate of the running stage (or, once finished, of the last stage's verdict).
#[derive(Debug, Clone, PartialEq)]
pub struct GateSample {
    /// The metric judged (`p99_ms`), made unique within the stage by a `#2` suffix should the
    /// plan judge one metric of one scope twice.
    pub gate: String,
    /// Whose requests (`canary`, `stable`, `service`).
    pub scope: &'static str,
    /// 1-based stage.
    pub stage: usize,
    /// The verdict.
    pub status: GateStatus,
    /// The measured value in base units (seconds, a ratio, requests per second); `None`
    /// without requests.
    pub observed: Option<f64>,
}

/// The engine's state as the metrics show it, published after every engine step.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// Where the rollout stands.
    pub state: RolloutState,
    /// Number of stages in the plan.
    pub stages: usize,
    /// The running stage (1-based); once finished, the last stage that ran; 0 before any.
    pub stage: usize,
    /// The weight the controller holds the router at (basis points).
    pub target_bp: u16,
    /// The running stage's planned weight (basis points), while one runs.
    pub stage_bp: Option<u16>,
    /// The gates.
    pub gates: Vec<GateSample>,
    /// Seconds from a rehearsal's fault onset to the engine's first failing gate, for the
    /// last rollback, when the onset is known (only a rehearsal knows it).
    pub detection_delay_s: Option<f64>,
}

impl Published {
    /// The view of `engine` now; `onset_s` is a rehearsal's fault onset (plan seconds).
    pub fn of(engine: &Engine, onset_s: Option<f64>) -> Published {
        let plan = engine.plan();
        let mut view = Published {
            state: RolloutState::of(engine),
            stages: plan.stages.len(),
            stage: 0,
            target_bp: engine.weight().basis_points(),
            stage_bp: None,
            gates: Vec::new(),
            detection_delay_s: None,
        };
        if let Some(LiveView { index, gates, .. }) = engine.live_view() {
            view.stage = index + 1;
            view.stage_bp = Some(plan.stages[index].weight.basis_points());
            view.gates = samples(&gates, index + 1);
        } else if let State::Finished(_) = engine.state() {
            let summary = engine.summary();
            if let Some(last) = summary.stages.last() {
                view.stage = last.index;
                view.gates = samples(&last.gates, last.index);
            }
            view.detection_delay_s = summary.rollback.and_then(|rb| {
                let onset = rb.fault_onset_s.or(onset_s)?;
                (rb.detection_s >= onset).then_some(rb.detection_s - onset)
            });
        }
        view
    }
}

/// The gates of stage `stage` as samples, their values in base units.
fn samples(gates: &[GateResult], stage: usize) -> Vec<GateSample> {
    let mut out: Vec<GateSample> = Vec::with_capacity(gates.len());
    for g in gates {
        let base = g.metric.key();
        let scope = g.scope.key();
        let seen = out
            .iter()
            .filter(|s| s.scope == scope && s.gate.split('#').next() == Some(base))
            .count();
        let gate = if seen == 0 {
            base.to_string()
        } else {
            format!("{base}#{}", seen + 1)
        };
        let observed = g.observed.map(|v| match g.metric {
            Metric::P50Ms | Metric::P95Ms | Metric::P99Ms => v / 1000.0,
            Metric::ErrorRate | Metric::ThroughputRps => v,
        });
        out.push(GateSample {
            gate,
            scope,
            stage,
            status: g.status,
            observed,
        });
    }
    out
}
