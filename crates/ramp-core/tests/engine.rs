//! The rollout engine, driven the way a driver drives it: `Start`, then a `Tick` at every
//! `next_tick()` with the slot of observations since the previous one, plus operator
//! `Abort`s. Covers starting, healthy promotion (decisions at exactly the planned stage ends,
//! checkpoint rows at every interval, the summary's stages), warnings becoming caveats,
//! rollbacks on a window breach (on the very tick the 99.9 % bound crosses the fail level)
//! and on a whole-stage breach, halting without data, operator aborts, gate scopes,
//! `evaluate` on hand-made cohorts, and determinism.
//!
//! The engine is deterministic, so every assertion is exact.

use ramp_core::engine::{evaluate, explain, Action, CheckpointReport, Engine, Input, State};
use ramp_core::summary::{Confidence, Decision, GateStatus, Outcome, StageSummary};
use ramp_core::{parse_plan, Bound, Gate, Metric, Plan, PlanTime, Scope, Span, Weight};
use ramp_stats::{CohortStats, Slot};
use std::sync::Arc;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The `[deployment]` section every test plan shares.
const DEPLOYMENT: &str = r#"
[deployment]
id = "engine-test"
service = "checkout"
environment = "test"
"#;

/// One-sided z of the 99.9 % bound, written out independently of the engine.
const Z_999: f64 = 3.090_232_306_167_813_5;

/// A validated plan from the gates and stages sections (the deployment is added).
fn plan(body: &str) -> Arc<Plan> {
    let text = format!("{DEPLOYMENT}{body}");
    match parse_plan(&text, "test.toml") {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("test plan is invalid:\n{e}\n{text}"),
    }
}

/// A weight from a percentage.
fn pct(p: f64) -> Weight {
    Weight::from_percent(p).expect("a valid test weight")
}

/// `requests` requests of which `errors` failed, every one taking `latency_ms`.
fn cohort(requests: u64, errors: u64, latency_ms: f64) -> CohortStats {
    let mut c = CohortStats::new();
    c.requests = requests;
    c.errors = errors;
    for _ in 0..requests {
        c.latency.record(latency_ms);
    }
    c
}

/// `fast` requests at `fast_ms` and `slow` at `slow_ms`, none failed.
fn mixed(fast: u64, fast_ms: f64, slow: u64, slow_ms: f64) -> CohortStats {
    let mut c = cohort(fast, 0, fast_ms);
    c.merge(&cohort(slow, 0, slow_ms));
    c
}

/// Nothing at all.
fn empty() -> CohortStats {
    CohortStats::new()
}

/// A ceiling gate on the canary over 30 s, at least 50 samples.
fn ceiling(metric: Metric, threshold: f64, warn: Option<f64>) -> Gate {
    Gate {
        metric,
        scope: Scope::Canary,
        bound: Bound::Max,
        threshold,
        warn,
        window: Span::from_secs(30),
        min_samples: 50,
    }
}

/// A throughput floor of `scope` over 30 s, at least 50 samples.
fn floor(scope: Scope, rps: f64) -> Gate {
    Gate {
        metric: Metric::ThroughputRps,
        scope,
        bound: Bound::Min,
        threshold: rps,
        warn: None,
        window: Span::from_secs(30),
        min_samples: 50,
    }
}

/// The lower end of the two-sided-z Wilson score interval of `errors` in `n`: an oracle for
/// the error-rate gate written from the textbook formula, not from the engine.
fn wilson_lower(errors: u64, n: u64) -> f64 {
    let (e, n) = (errors as f64, n as f64);
    let p = e / n;
    let z2 = Z_999 * Z_999;
    let centre = p + z2 / (2.0 * n);
    let half = Z_999 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    (centre - half) / (1.0 + z2 / n)
}

/// What a traffic model is asked for: one slot `[start_ms, end_ms)` at the canary's weight.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    start_ms: u64,
    end_ms: u64,
    weight: Weight,
}

impl Ctx {
    /// `rps` requests per second over the slot, split by the canary's weight:
    /// `(canary, stable)` request counts.
    fn split(&self, rps: u64) -> (u64, u64) {
        let total = rps * (self.end_ms - self.start_ms) / 1000;
        let canary = total * u64::from(self.weight.basis_points()) / 10_000;
        (canary, total - canary)
    }

    /// Whether the slot ends in `(from_s, to_s]`.
    fn ends_within(&self, from_s: u64, to_s: u64) -> bool {
        self.end_ms > from_s * 1000 && self.end_ms <= to_s * 1000
    }
}

/// Healthy traffic: `rps` split by weight, 120 ms everywhere, no canary errors and a few
/// stable ones.
fn healthy(rps: u64) -> impl FnMut(Ctx) -> (CohortStats, CohortStats) {
    move |ctx: Ctx| {
        let (c, s) = ctx.split(rps);
        (cohort(c, 0, 120.0), cohort(s, s / 100, 120.0))
    }
}

/// An engine being driven, with everything it returned.
struct Run {
    engine: Engine,
    /// Plan time the next slot starts at (the last time fed).
    now: PlanTime,
    /// Every step's time and actions, in order.
    log: Vec<(PlanTime, Vec<Action>)>,
}

impl Run {
    /// A fresh engine for `plan`, started at time 0.
    fn start(plan: &Arc<Plan>) -> Run {
        let mut run = Run {
            engine: Engine::new(Arc::clone(plan)),
            now: PlanTime::ZERO,
            log: Vec::new(),
        };
        let actions = run.engine.step(PlanTime::ZERO, Input::Start);
        run.log.push((PlanTime::ZERO, actions));
        run
    }

    /// Feeds one slot up to `engine.next_tick()` and returns what the engine did.
    fn tick(&mut self, canary: CohortStats, stable: CohortStats) -> Vec<Action> {
        let end = self.engine.next_tick();
        let slot = Slot {
            start_ms: self.now.0,
            end_ms: end.0,
            canary,
            stable,
        };
        self.now = end;
        let actions = self.engine.step(end, Input::Tick(slot));
        self.log.push((end, actions.clone()));
        actions
    }

    /// One tick of traffic from `model`.
    fn tick_with(&mut self, model: &mut impl FnMut(Ctx) -> (CohortStats, CohortStats)) {
        let ctx = Ctx {
            start_ms: self.now.0,
            end_ms: self.engine.next_tick().0,
            weight: self.engine.weight(),
        };
        let (canary, stable) = model(ctx);
        self.tick(canary, stable);
    }

    /// Ticks with `model` while the next tick is no later than `until_s`.
    fn tick_until(
        &mut self,
        until_s: u64,
        mut model: impl FnMut(Ctx) -> (CohortStats, CohortStats),
    ) {
        while self.engine.next_tick() <= PlanTime::from_secs(until_s) && !self.finished() {
            self.tick_with(&mut model);
        }
    }

    /// Ticks with `model` until the rollout finishes (a few thousand ticks at most).
    fn finish(&mut self, mut model: impl FnMut(Ctx) -> (CohortStats, CohortStats)) -> Outcome {
        for _ in 0..10_000 {
            if let State::Finished(outcome) = self.engine.state() {
                return outcome;
            }
            self.tick_with(&mut model);
        }
        panic!("the rollout did not finish: {:?}", self.engine.state());
    }

    /// An operator abort at `at_s`.
    fn abort(&mut self, at_s: u64, who: &str, reason: &str) -> Vec<Action> {
        let at = PlanTime::from_secs(at_s);
        let actions = self.engine.step(
            at,
            Input::Abort {
                who: who.into(),
                reason: reason.into(),
            },
        );
        self.log.push((at, actions.clone()));
        actions
    }

    fn finished(&self) -> bool {
        matches!(self.engine.state(), State::Finished(_))
    }

    /// Every action with the time it was returned at.
    fn actions(&self) -> impl Iterator<Item = (PlanTime, &Action)> {
        self.log
            .iter()
            .flat_map(|(t, actions)| actions.iter().map(move |a| (*t, a)))
    }

    /// The actions returned at plan time `t_s`.
    fn actions_at(&self, t_s: u64) -> Vec<Action> {
        let t = PlanTime::from_secs(t_s);
        self.actions()
            .filter(|(at, _)| *at == t)
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// Every weight asked of the router, in order.
    fn weights(&self) -> Vec<Weight> {
        self.actions()
            .filter_map(|(_, a)| match a {
                Action::SetWeight(w) => Some(*w),
                _ => None,
            })
            .collect()
    }

    /// Every stage decision as `(time s, stage, decision)`.
    fn decisions(&self) -> Vec<(f64, usize, Decision)> {
        self.actions()
            .filter_map(|(t, a)| match a {
                Action::StageDecided {
                    index, decision, ..
                } => Some((t.as_secs_f64(), *index, *decision)),
                _ => None,
            })
            .collect()
    }

    /// Every checkpoint report, in order.
    fn checkpoints(&self) -> Vec<&CheckpointReport> {
        self.actions()
            .filter_map(|(_, a)| match a {
                Action::Checkpoint(r) => Some(&**r),
                _ => None,
            })
            .collect()
    }

    /// The reasons of stage `index`'s decision.
    fn reasons(&self, index: usize) -> Vec<String> {
        self.actions()
            .find_map(|(_, a)| match a {
                Action::StageDecided {
                    index: i, reasons, ..
                } if *i == index => Some(reasons.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("stage {index} was never decided"))
    }

    /// Feeds healthy ticks, an abort and a second start after the end: all must be ignored.
    fn assert_inert_after_finish(&mut self) {
        let state = self.engine.state();
        for _ in 0..3 {
            let actions = self.tick(cohort(100, 100, 5000.0), cohort(100, 0, 100.0));
            assert_eq!(actions, vec![], "a tick after the end did something");
        }
        let late = self.now.0 / 1000 + 1;
        assert_eq!(self.abort(late, "bob", "too late"), vec![]);
        assert_eq!(self.engine.step(self.now, Input::Start), vec![]);
        assert_eq!(self.engine.state(), state);
    }
}

/// The status of `metric`'s gate in a list of results.
fn status_of(gates: &[ramp_core::summary::GateResult], metric: Metric) -> GateStatus {
    gates
        .iter()
        .find(|g| g.metric == metric)
        .unwrap_or_else(|| panic!("no {metric} gate"))
        .status
}

/// `t_s` of every checkpoint row of a stage.
fn checkpoint_times(stage: &StageSummary) -> Vec<f64> {
    stage.checkpoints.iter().map(|c| c.t_s).collect()
}

// ---------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------

/// Three stages; the second's checkpoint interval does not divide the evaluation grid and
/// the third's is left to its default (a quarter of the stage).
const THREE_STAGES: &str = r#"
[gates]
evaluate_every = "5s"
window = "30s"
min_samples = 50
p95_ms = { max = 500 }
p99_ms = { max = 1000, warn = 800 }
error_rate = { max = "1%" }
throughput_rps = { min = 10, scope = "service" }

[[stages]]
weight = 10
duration = "60s"
checkpoint = "20s"

[[stages]]
weight = 50
duration = "90s"
checkpoint = "42s"

[[stages]]
weight = 100
duration = "60s"
"#;

/// Two stages with error-rate and p95 gates, for breaches.
const BREACH: &str = r#"
[gates]
evaluate_every = "5s"
window = "30s"
min_samples = 50
p95_ms = { max = 500 }
error_rate = { max = "1%" }

[[stages]]
weight = 50
duration = "120s"
checkpoint = "30s"

[[stages]]
weight = 100
duration = "60s"
checkpoint = "30s"
"#;

/// Two stages, a p95 warn level at 300 ms under the 500 ms fail level.
const WARNED: &str = r#"
[gates]
evaluate_every = "5s"
window = "30s"
min_samples = 50
p95_ms = { max = 500, warn = 300 }
error_rate = { max = "1%" }

[[stages]]
weight = 20
duration = "60s"
checkpoint = "30s"

[[stages]]
weight = 100
duration = "60s"
checkpoint = "30s"
"#;

// ---------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------

#[test]
fn start_sets_the_first_stage_weight_and_announces_stage_one() {
    let plan = plan(THREE_STAGES);
    let mut engine = Engine::new(Arc::clone(&plan));
    assert_eq!(engine.state(), State::Pending);
    assert_eq!(engine.weight(), Weight::ZERO);

    let actions = engine.step(PlanTime::ZERO, Input::Start);
    assert_eq!(
        actions,
        vec![
            Action::SetWeight(pct(10.0)),
            Action::StageStarted {
                index: 1,
                weight: pct(10.0)
            },
        ]
    );
    assert_eq!(engine.state(), State::Running { index: 0 });
    assert_eq!(engine.weight(), pct(10.0));
    assert_eq!(engine.next_tick(), PlanTime::from_secs(5));

    assert_eq!(
        engine.step(PlanTime::from_secs(1), Input::Start),
        vec![],
        "a second start is ignored"
    );
    assert_eq!(engine.state(), State::Running { index: 0 });
}

#[test]
fn an_abort_before_the_start_halts_without_touching_the_weight() {
    let mut engine = Engine::new(plan(THREE_STAGES));
    let actions = engine.step(
        PlanTime::ZERO,
        Input::Abort {
            who: "alice".into(),
            reason: "nerves".into(),
        },
    );
    assert_eq!(actions, vec![Action::Finished(Outcome::Halted)]);
    assert_eq!(engine.state(), State::Finished(Outcome::Halted));
    assert_eq!(engine.weight(), Weight::ZERO);
    assert!(engine.summary().stages.is_empty());
}

/// An operator input with who and why.
fn op(kind: &str, who: &str, full: bool) -> Input {
    let (who, reason) = (who.to_string(), format!("{kind} for the test"));
    match kind {
        "pause" => Input::Pause { who, reason },
        "resume" => Input::Resume { who, reason },
        "promote" => Input::Promote { who, reason, full },
        "approve" => Input::Approve {
            who,
            reason,
            stage: None,
        },
        "halt" => Input::Halt { who, reason },
        _ => Input::Abort { who, reason },
    }
}

impl Run {
    /// Feeds an operator input at the current time.
    fn operator(&mut self, input: Input) -> Vec<Action> {
        let actions = self.engine.step(self.now, input);
        self.log.push((self.now, actions.clone()));
        actions
    }
}

/// The three-stage plan with approvals required before the stages at `needs` (0-based).
fn with_approvals(needs: &[(usize, &[&str])]) -> Arc<Plan> {
    let mut p = (*plan(THREE_STAGES)).clone();
    for (i, names) in needs {
        p.stages[*i].approvals = names.iter().map(|n| n.to_string()).collect();
    }
    Arc::new(p)
}

#[test]
fn a_paused_stage_does_not_end_until_resumed_but_still_rolls_back() {
    let mut run = Run::start(&plan(THREE_STAGES));
    run.tick_until(30, healthy(200));
    assert_eq!(run.operator(op("pause", "alice", false)), vec![]);
    assert!(run.engine.paused().unwrap().contains("alice"));
    // Well past the 60 s stage end: still stage 1.
    run.tick_until(120, healthy(200));
    assert_eq!(run.engine.state(), State::Running { index: 0 });
    assert_eq!(run.engine.weight(), pct(10.0));
    // Held, it ticks at the evaluation interval and records one row per checkpoint interval
    // (20, 40, 60, 80, 100, 120 s), not one per tick.
    assert_eq!(
        run.engine.next_tick(),
        run.engine.now().plus(Span::from_secs(5))
    );
    assert_eq!(run.engine.summary().stages[0].checkpoints.len(), 6);
    run.operator(op("resume", "bob", false));
    assert_eq!(run.engine.paused(), None);
    run.tick_with(&mut healthy(200));
    assert_eq!(run.engine.state(), State::Running { index: 1 });
    let s = run.engine.summary();
    assert_eq!(s.stages[0].decision, Some(Decision::Proceed));
    assert!(
        s.stages[0].elapsed_s >= 120.0,
        "the held time counts in the stage"
    );
    assert!(s
        .timeline
        .iter()
        .any(|e| e.message.contains("paused by alice")));
    assert!(s
        .timeline
        .iter()
        .any(|e| e.message.contains("resumed by bob")));

    // Paused again in stage 2, a failing canary is still rolled back.
    run.operator(op("pause", "alice", false));
    run.tick_until(200, |ctx: Ctx| {
        let (c, s) = ctx.split(200);
        (cohort(c, c / 5, 120.0), cohort(s, 0, 120.0))
    });
    assert_eq!(run.engine.state(), State::Finished(Outcome::RolledBack));
    assert_eq!(run.engine.weight(), Weight::ZERO);
}

#[test]
fn promote_moves_to_the_next_stage_now_and_full_goes_to_100() {
    let mut run = Run::start(&plan(THREE_STAGES));
    run.tick_until(10, healthy(200));
    let actions = run.operator(op("promote", "carol", false));
    assert_eq!(
        actions[0],
        Action::StageDecided {
            index: 1,
            decision: Decision::Proceed,
            reasons: vec!["operator carol promoted to the next stage: promote for the test".into()],
        }
    );
    assert!(actions.contains(&Action::SetWeight(pct(50.0))));
    assert_eq!(run.engine.state(), State::Running { index: 1 });
    run.tick_until(20, healthy(200));
    let actions = run.operator(op("promote", "carol", true));
    assert!(actions.contains(&Action::SetWeight(Weight::FULL)));
    assert_eq!(actions.last(), Some(&Action::Finished(Outcome::Promoted)));
    let s = run.engine.summary();
    assert_eq!(s.stages.len(), 2, "the skipped stage never ran");
    assert_eq!(s.stages[1].decision, Some(Decision::Proceed));
}

#[test]
fn a_stage_needing_approvals_holds_the_previous_weight_until_everyone_approved() {
    let plan = with_approvals(&[(1, &["SRE Lead", "Product Owner"])]);
    let mut run = Run::start(&plan);
    run.tick_until(60, healthy(200));
    let waiting = Action::AwaitingApproval {
        stage: 2,
        missing: vec!["SRE Lead".into(), "Product Owner".into()],
    };
    assert!(run.actions().any(|(_, a)| *a == waiting));
    assert_eq!(run.engine.state(), State::Running { index: 0 });
    assert_eq!(
        run.engine.awaiting(),
        Some((1, vec!["SRE Lead".into(), "Product Owner".into()]))
    );
    // Held: time passes, no new stage, announced once.
    run.tick_until(90, healthy(200));
    assert_eq!(run.engine.weight(), pct(10.0));
    assert_eq!(run.actions().filter(|(_, a)| **a == waiting).count(), 1);
    // Promotion is refused while approvals are missing.
    assert_eq!(run.operator(op("promote", "carol", false)), vec![]);
    // A name that is not required changes nothing.
    assert!(!run.engine.needs_approval_from("Intern"));
    run.operator(op("approve", "Intern", false));
    run.operator(op("approve", "SRE Lead", false));
    assert_eq!(
        run.engine.missing_approvals(1),
        vec!["Product Owner".to_string()]
    );
    run.tick_with(&mut healthy(200));
    assert_eq!(run.engine.state(), State::Running { index: 0 });
    run.operator(op("approve", "Product Owner", false));
    run.tick_with(&mut healthy(200));
    assert_eq!(run.engine.state(), State::Running { index: 1 });
    assert_eq!(run.engine.weight(), pct(50.0));
    let s = run.engine.summary();
    assert!(s
        .timeline
        .iter()
        .any(|e| e.message == "Stage 2 approved by SRE Lead: approve for the test"));
    assert!(!s.timeline.iter().any(|e| e.message.contains("Intern")));
}

#[test]
fn approving_later_stages_ahead_lets_promote_full_pass_them() {
    // Stages 2 and 3 both need the SRE Lead; the third also needs the Product Owner.
    let plan = with_approvals(&[(1, &["SRE Lead"]), (2, &["SRE Lead", "Product Owner"])]);
    let mut run = Run::start(&plan);
    run.tick_until(10, healthy(200));
    let approve = |who: &str, stage: Option<usize>| Input::Approve {
        who: who.into(),
        reason: String::new(),
        stage,
    };
    // Journals written before `stage` existed replay unchanged, and new ones without it
    // are written the same way.
    let old = r#"{"kind":"approve","who":"SRE Lead","reason":""}"#;
    assert_eq!(
        serde_json::to_string(&approve("SRE Lead", None)).unwrap(),
        old
    );
    assert_eq!(
        serde_json::from_str::<Input>(old).unwrap(),
        approve("SRE Lead", None)
    );
    // Blocked by the third stage's approvals, not only the next stage's.
    run.operator(approve("SRE Lead", None));
    assert_eq!(run.engine.missing_approvals(1), Vec::<String>::new());
    assert_eq!(run.operator(op("promote", "carol", true)), vec![]);
    assert_eq!(run.engine.state(), State::Running { index: 0 });
    // Without a stage, a second approval by the same person goes to the next stage that
    // still lacks them: the third.
    assert_eq!(run.engine.approval_target("SRE Lead", None), Some(2));
    // A stage that is not still to come, or that does not need the person, is no target.
    assert_eq!(run.engine.approval_target("SRE Lead", Some(1)), None);
    assert_eq!(run.engine.approval_target("Intern", Some(3)), None);
    assert_eq!(run.engine.approval_target("Product Owner", Some(9)), None);
    run.operator(approve("Product Owner", Some(3)));
    run.operator(approve("SRE Lead", Some(3)));
    assert_eq!(run.engine.missing_approvals(2), Vec::<String>::new());
    let actions = run.operator(op("promote", "carol", true));
    assert!(actions.contains(&Action::SetWeight(Weight::FULL)));
    assert_eq!(actions.last(), Some(&Action::Finished(Outcome::Promoted)));
    let s = run.engine.summary();
    assert!(s
        .timeline
        .iter()
        .any(|e| e.message == "Stage 3 approved by Product Owner"));
}

#[test]
fn a_first_stage_needing_approval_keeps_the_canary_at_zero_until_approved() {
    let plan = with_approvals(&[(0, &["Engineering Manager"])]);
    let mut engine = Engine::new(Arc::clone(&plan));
    let actions = engine.step(PlanTime::ZERO, Input::Start);
    assert_eq!(
        actions,
        vec![Action::AwaitingApproval {
            stage: 1,
            missing: vec!["Engineering Manager".into()]
        }]
    );
    assert_eq!(engine.state(), State::Pending);
    assert_eq!(engine.weight(), Weight::ZERO);
    let actions = engine.step(
        PlanTime::from_secs(7),
        Input::Approve {
            who: "Engineering Manager".into(),
            reason: String::new(),
            stage: None,
        },
    );
    assert!(actions.contains(&Action::SetWeight(pct(10.0))));
    assert_eq!(engine.state(), State::Running { index: 0 });
    assert_eq!(engine.summary().stages[0].started_s, 7.0);
}

#[test]
fn halt_stops_the_rollout_where_it_is() {
    let mut engine = Engine::new(plan(THREE_STAGES));
    let actions = engine.step(PlanTime::ZERO, op("halt", "pre-deployment check", false));
    assert_eq!(actions, vec![Action::Finished(Outcome::Halted)]);
    assert_eq!(engine.weight(), Weight::ZERO);
    assert!(engine.summary().timeline[0]
        .message
        .contains("pre-deployment check"));

    let mut run = Run::start(&plan(THREE_STAGES));
    run.tick_until(10, healthy(200));
    let actions = run.operator(op("halt", "driver", false));
    assert_eq!(actions.last(), Some(&Action::Finished(Outcome::Halted)));
    assert_eq!(
        run.engine.summary().stages[0].decision,
        Some(Decision::Halt)
    );
    assert_eq!(
        run.engine.weight(),
        pct(10.0),
        "a halt holds the weight; it is not a rollback"
    );
}

#[test]
fn next_tick_lands_exactly_on_checkpoints_and_stage_ends() {
    let plan = plan(THREE_STAGES);
    let mut run = Run::start(&plan);
    run.finish(healthy(40));
    let times: Vec<u64> = run.log.iter().skip(1).map(|(t, _)| t.0 / 1000).collect();
    // Stage 2 (60–150 s, checkpoints every 42 s) is the one off the 5 s grid.
    let stage_two: Vec<u64> = times
        .iter()
        .copied()
        .filter(|t| *t > 60 && *t <= 150)
        .collect();
    let mut want: Vec<u64> = (65..=100).step_by(5).collect();
    want.extend([102, 107, 112, 117, 122, 127, 132, 137, 142, 144, 149, 150]);
    assert_eq!(stage_two, want);
    assert_eq!(times.last(), Some(&210));
}

// ---------------------------------------------------------------------------------------
// Healthy promotion
// ---------------------------------------------------------------------------------------

#[test]
fn healthy_traffic_proceeds_at_every_planned_stage_end_and_promotes() {
    let plan = plan(THREE_STAGES);
    let mut run = Run::start(&plan);
    assert_eq!(run.finish(healthy(40)), Outcome::Promoted);

    assert_eq!(run.weights(), vec![pct(10.0), pct(50.0), pct(100.0)]);
    assert_eq!(
        run.decisions(),
        vec![
            (60.0, 1, Decision::Proceed),
            (150.0, 2, Decision::Proceed),
            (210.0, 3, Decision::Proceed),
        ]
    );
    assert_eq!(
        run.actions().last().map(|(t, a)| (t, a.clone())),
        Some((
            PlanTime::from_secs(210),
            Action::Finished(Outcome::Promoted)
        ))
    );
    assert_eq!(
        run.actions()
            .filter(|(_, a)| matches!(a, Action::Finished(_)))
            .count(),
        1
    );
    assert_eq!(run.engine.state(), State::Finished(Outcome::Promoted));
    assert_eq!(run.engine.weight(), Weight::FULL);
    run.assert_inert_after_finish();
}

#[test]
fn a_stage_end_records_its_last_checkpoint_decides_and_starts_the_next_stage_in_one_tick() {
    let plan = plan(THREE_STAGES);
    let mut run = Run::start(&plan);
    run.finish(healthy(40));
    let at_60 = run.actions_at(60);
    assert_eq!(at_60.len(), 4, "{at_60:#?}");
    assert!(matches!(&at_60[0], Action::Checkpoint(r) if r.stage == 1 && r.checkpoint.t_s == 60.0));
    assert!(matches!(
        &at_60[1],
        Action::StageDecided {
            index: 1,
            decision: Decision::Proceed,
            ..
        }
    ));
    assert_eq!(at_60[2], Action::SetWeight(pct(50.0)));
    assert_eq!(
        at_60[3],
        Action::StageStarted {
            index: 2,
            weight: pct(50.0)
        }
    );
}

#[test]
fn checkpoints_are_recorded_at_every_interval_of_every_stage() {
    let plan = plan(THREE_STAGES);
    let mut run = Run::start(&plan);
    run.finish(healthy(40));

    let got: Vec<(usize, f64, u64)> = run
        .checkpoints()
        .iter()
        .map(|r| (r.stage, r.checkpoint.t_s, r.elapsed.0 / 1000))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, 20.0, 20),
            (1, 40.0, 40),
            (1, 60.0, 60),
            (2, 102.0, 42),
            (2, 144.0, 84),
            (2, 150.0, 90),
            (3, 165.0, 15),
            (3, 180.0, 30),
            (3, 195.0, 45),
            (3, 210.0, 60),
        ]
    );
    for r in run.checkpoints() {
        assert_eq!(r.stages, 3);
        assert_eq!(r.weight, plan.stages[r.stage - 1].weight);
        assert_eq!(r.duration, plan.stages[r.stage - 1].duration);
    }
    // The 6 s row between 144 s and 150 s counts only its own requests: 240 at 40 req/s.
    let short = run.checkpoints()[5];
    assert_eq!(short.checkpoint.metrics_by_scope.service.requests, 240);
    assert_eq!(short.checkpoint.metrics.throughput_rps, Some(40.0));
}

#[test]
fn the_summary_of_a_promotion_lists_every_stage_in_order_with_its_weight_and_timing() {
    let plan = plan(THREE_STAGES);
    let mut run = Run::start(&plan);
    run.finish(healthy(40));
    let s = run.engine.summary();

    assert_eq!(s.outcome, Outcome::Promoted);
    assert_eq!(s.rollback, None);
    assert_eq!(s.evaluate_every_s, 5.0);
    let rows: Vec<(usize, f64, f64, f64, f64)> = s
        .stages
        .iter()
        .map(|st| {
            (
                st.index,
                st.weight,
                st.started_s,
                st.elapsed_s,
                st.planned_duration_s,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (1, 10.0, 0.0, 60.0, 60.0),
            (2, 50.0, 60.0, 90.0, 90.0),
            (3, 100.0, 150.0, 60.0, 60.0),
        ]
    );
    assert_eq!(checkpoint_times(&s.stages[0]), vec![20.0, 40.0, 60.0]);
    assert_eq!(checkpoint_times(&s.stages[1]), vec![102.0, 144.0, 150.0]);
    assert_eq!(
        checkpoint_times(&s.stages[2]),
        vec![165.0, 180.0, 195.0, 210.0]
    );
    assert_eq!(s.stages[2].checkpoint_s, 15.0, "default: a quarter of 60 s");
    for st in &s.stages {
        assert_eq!(st.decision, Some(Decision::Proceed));
        assert_eq!(st.gates.len(), 4);
        assert!(
            st.gates.iter().all(|g| g.status == GateStatus::Pass),
            "stage {}: {:#?}",
            st.index,
            st.gates
        );
    }
    // Stage 1's canary saw 240 requests, under ten times the 50 required: medium.
    assert_eq!(s.stages[0].metrics_by_scope.canary.requests, 240);
    assert_eq!(s.stages[0].confidence, Confidence::Medium);
    assert_eq!(s.stages[1].confidence, Confidence::High);
    assert_eq!(s.stages[2].confidence, Confidence::High);
    assert_eq!(s.totals.requests, 40 * 210);
    assert_eq!(s.totals.duration_s, 210.0);
}

// ---------------------------------------------------------------------------------------
// Warnings
// ---------------------------------------------------------------------------------------

#[test]
fn a_warn_at_a_stage_end_is_a_monitor_decision_and_a_promotion_with_caveats() {
    let plan = plan(WARNED);
    let mut run = Run::start(&plan);
    // Stage 1's canary answers in 350 ms: over the 300 ms warn level, far under 500 ms.
    let outcome = run.finish(|ctx: Ctx| {
        let (c, s) = ctx.split(40);
        let canary_ms = if ctx.end_ms <= 60_000 { 350.0 } else { 120.0 };
        (cohort(c, 0, canary_ms), cohort(s, 0, 120.0))
    });
    assert_eq!(outcome, Outcome::PromotedWithCaveats);
    assert_eq!(
        run.decisions(),
        vec![(60.0, 1, Decision::Monitor), (120.0, 2, Decision::Proceed)]
    );
    assert_eq!(run.weights(), vec![pct(20.0), pct(100.0)]);
    let reasons = run.reasons(1);
    assert!(
        reasons.iter().any(|r| r.contains("warn level")),
        "{reasons:#?}"
    );

    let s = run.engine.summary();
    assert_eq!(s.outcome, Outcome::PromotedWithCaveats);
    assert_eq!(
        status_of(&s.stages[0].gates, Metric::P95Ms),
        GateStatus::Warn
    );
    assert_eq!(
        status_of(&s.stages[0].gates, Metric::ErrorRate),
        GateStatus::Pass
    );
    assert_eq!(s.stages[0].confidence, Confidence::Medium);
    assert_eq!(s.rollback, None);
}

#[test]
fn a_warn_only_in_the_final_stage_still_gives_caveats() {
    let plan = plan(WARNED);
    let mut run = Run::start(&plan);
    let outcome = run.finish(|ctx: Ctx| {
        let (c, s) = ctx.split(40);
        let canary_ms = if ctx.end_ms > 60_000 { 350.0 } else { 120.0 };
        (cohort(c, 0, canary_ms), cohort(s, 0, 120.0))
    });
    assert_eq!(outcome, Outcome::PromotedWithCaveats);
    assert_eq!(
        run.decisions(),
        vec![(60.0, 1, Decision::Proceed), (120.0, 2, Decision::Monitor)]
    );
}

// ---------------------------------------------------------------------------------------
// Rollbacks
// ---------------------------------------------------------------------------------------

/// Canary errors from 20 s on: 3 of the 40 canary requests of every 5 s slot (7.5 %).
fn error_burst_from_20s(ctx: Ctx) -> (CohortStats, CohortStats) {
    let (c, s) = ctx.split(16);
    let errors = if ctx.start_ms >= 20_000 { 3 } else { 0 };
    (cohort(c, errors, 120.0), cohort(s, 0, 120.0))
}

#[test]
fn the_independent_wilson_oracle_puts_the_breach_at_35s() {
    // The 30 s window holds six 40-request canary slots once full; at 25 s it holds five.
    assert!(wilson_lower(3, 200) < 0.01, "25 s: 1.5 % is not conclusive");
    assert!(wilson_lower(6, 240) < 0.01, "30 s: 2.5 % is not conclusive");
    assert!(wilson_lower(9, 240) > 0.01, "35 s: 3.75 % is conclusive");
}

#[test]
fn a_breach_rolls_back_on_the_very_tick_the_conservative_bound_passes_the_fail_level() {
    let plan = plan(BREACH);
    let mut run = Run::start(&plan);
    run.tick_until(30, error_burst_from_20s);
    assert_eq!(run.now, PlanTime::from_secs(30));
    assert_eq!(run.engine.state(), State::Running { index: 0 });

    // Before: the point estimate is already over 1 % but not conclusively: only warns.
    assert_eq!(run.actions_at(25), vec![]);
    let at_30 = run.actions_at(30);
    assert_eq!(at_30.len(), 1);
    let Action::Checkpoint(cp) = &at_30[0] else {
        panic!("expected the 30 s checkpoint, got {at_30:#?}")
    };
    assert_eq!(
        status_of(&cp.checkpoint.gates, Metric::ErrorRate),
        GateStatus::Warn
    );

    let at_35 = {
        let mut model = error_burst_from_20s;
        run.tick_with(&mut model);
        run.actions_at(35)
    };
    let reason = match at_35.first() {
        Some(Action::RollbackInitiated { stage: 1, reason }) => reason.clone(),
        other => panic!("expected a rollback at 35 s, got {other:#?} in {at_35:#?}"),
    };
    assert_eq!(
        at_35,
        vec![
            Action::RollbackInitiated {
                stage: 1,
                reason: reason.clone()
            },
            Action::SetWeight(Weight::ZERO),
            Action::StageDecided {
                index: 1,
                decision: Decision::Rollback,
                reasons: vec![reason.clone()],
            },
            Action::Finished(Outcome::RolledBack),
        ]
    );
    assert!(
        reason.starts_with("canary error_rate 3.75% is over the 1.00% fail level"),
        "{reason}"
    );
    assert!(reason.ends_with("over 30 s (240 requests)"), "{reason}");

    let s = run.engine.summary();
    assert_eq!(s.outcome, Outcome::RolledBack);
    let rb = s.rollback.clone().expect("a rollback record");
    assert_eq!(rb.stage, 1);
    assert_eq!(rb.detection_s, 35.0);
    assert_eq!(rb.initiated_s, 35.0);
    assert_eq!(rb.reason, reason);
    assert_eq!(s.stages.len(), 1);
    assert_eq!(s.stages[0].decision, Some(Decision::Rollback));
    assert_eq!(s.stages[0].elapsed_s, 35.0);
    assert_eq!(s.stages[0].confidence, Confidence::Low);
    assert_eq!(run.engine.weight(), Weight::ZERO);

    run.assert_inert_after_finish();
}

#[test]
fn a_latency_breach_in_the_second_stage_rolls_back_stage_two() {
    let plan = plan(BREACH);
    let mut run = Run::start(&plan);
    let outcome = run.finish(|ctx: Ctx| {
        let (c, s) = ctx.split(16);
        let canary_ms = if ctx.start_ms >= 130_000 {
            2000.0
        } else {
            120.0
        };
        (cohort(c, 0, canary_ms), cohort(s, 0, 120.0))
    });
    assert_eq!(outcome, Outcome::RolledBack);
    assert_eq!(
        run.decisions(),
        vec![
            (120.0, 1, Decision::Proceed),
            (135.0, 2, Decision::Rollback)
        ]
    );
    assert_eq!(run.weights(), vec![pct(50.0), pct(100.0), Weight::ZERO]);
    let s = run.engine.summary();
    let rb = s.rollback.expect("a rollback record");
    assert_eq!(rb.stage, 2);
    assert_eq!(rb.detection_s, 135.0);
    assert!(rb.reason.starts_with("canary p95_ms "), "{}", rb.reason);
    assert_eq!(s.stages[1].elapsed_s, 15.0);
}

#[test]
fn a_stage_whose_whole_data_is_conclusively_bad_rolls_back_at_its_end_though_no_window_did() {
    // One canary error in every third 5 s slot of 10 canary requests: 2 in every 30 s
    // window of 60 (3.3 %, never conclusive), 8 in the stage's 240 (conclusive).
    assert!(wilson_lower(2, 60) < 0.01 && wilson_lower(1, 50) < 0.01);
    assert!(wilson_lower(8, 240) > 0.01);

    let plan = plan(BREACH);
    let mut run = Run::start(&plan);
    let mut slot = 0u64;
    let outcome = run.finish(|ctx: Ctx| {
        slot += 1;
        let errors = u64::from(slot.is_multiple_of(3));
        let (c, s) = ctx.split(4);
        (cohort(c, errors, 120.0), cohort(s, 0, 120.0))
    });
    assert_eq!(outcome, Outcome::RolledBack);
    assert_eq!(run.decisions(), vec![(120.0, 1, Decision::Rollback)]);
    let at_end = run.actions_at(120);
    assert!(matches!(at_end[0], Action::Checkpoint(_)), "{at_end:#?}");
    assert!(
        matches!(&at_end[1], Action::RollbackInitiated { stage: 1, reason } if reason.starts_with("On the whole stage's data (") && !reason.contains("over the whole stage")),
        "{at_end:#?}"
    );
    assert_eq!(at_end[2], Action::SetWeight(Weight::ZERO));
    assert_eq!(at_end.last(), Some(&Action::Finished(Outcome::RolledBack)));
    let s = run.engine.summary();
    assert_eq!(
        s.rollback.map(|r| (r.stage, r.detection_s)),
        Some((1, 120.0))
    );
    assert_eq!(
        status_of(&s.stages[0].gates, Metric::ErrorRate),
        GateStatus::Fail
    );
}

// ---------------------------------------------------------------------------------------
// `evaluate` on hand-made cohorts
// ---------------------------------------------------------------------------------------

#[test]
fn a_big_error_breach_in_a_small_but_sufficient_window_fails() {
    let gate = ceiling(Metric::ErrorRate, 0.01, None);
    let r = evaluate(&gate, &cohort(50, 25, 100.0), &empty(), 30_000);
    assert_eq!(r.status, GateStatus::Fail);
    assert_eq!(r.samples, 50);
    assert_eq!(r.observed, Some(0.5));
    let bound = r.conservative.expect("an error rate has a bound");
    assert!((bound - wilson_lower(25, 50)).abs() < 1e-12, "{bound}");
    assert!(bound > 0.01 && bound < 0.5);
}

#[test]
fn a_big_latency_breach_in_a_small_but_sufficient_window_fails() {
    let gate = ceiling(Metric::P95Ms, 500.0, None);
    let r = evaluate(&gate, &cohort(50, 0, 2000.0), &empty(), 30_000);
    assert_eq!(r.status, GateStatus::Fail);
    assert!(r.conservative.is_some_and(|c| c > 500.0));
    assert_eq!(r.max, Some(500.0));
    assert_eq!(r.min, None);
}

#[test]
fn an_error_rate_barely_over_the_fail_level_on_few_samples_only_warns() {
    let gate = ceiling(Metric::ErrorRate, 0.01, None);
    let r = evaluate(&gate, &cohort(60, 1, 100.0), &empty(), 30_000);
    assert!(r.observed.is_some_and(|v| v > 0.01));
    assert!(r.conservative.is_some_and(|c| c < 0.01));
    assert_eq!(r.status, GateStatus::Warn);
}

#[test]
fn a_p95_barely_over_the_fail_level_on_few_samples_only_warns() {
    let gate = ceiling(Metric::P95Ms, 500.0, None);
    // The 95th of 100 requests is the first slow one.
    let r = evaluate(&gate, &mixed(94, 100.0, 6, 600.0), &empty(), 30_000);
    assert!(r.observed.is_some_and(|v| v > 500.0), "{r:?}");
    assert!(r.conservative.is_some_and(|c| c < 500.0), "{r:?}");
    assert_eq!(r.status, GateStatus::Warn);
}

#[test]
fn a_value_over_the_warn_level_but_within_the_fail_level_warns() {
    let gate = ceiling(Metric::P95Ms, 500.0, Some(300.0));
    let r = evaluate(&gate, &cohort(1000, 0, 350.0), &empty(), 30_000);
    assert_eq!(r.status, GateStatus::Warn);
    let r = evaluate(&gate, &cohort(1000, 0, 250.0), &empty(), 30_000);
    assert_eq!(r.status, GateStatus::Pass);
}

#[test]
fn fewer_samples_than_the_minimum_are_no_data_however_bad_they_look() {
    let gate = ceiling(Metric::ErrorRate, 0.01, None);
    let r = evaluate(&gate, &cohort(49, 49, 100.0), &empty(), 30_000);
    assert_eq!(r.status, GateStatus::NoData);
    assert_eq!(r.samples, 49);
    let r = evaluate(&gate, &cohort(50, 50, 100.0), &empty(), 30_000);
    assert_eq!(r.status, GateStatus::Fail, "the minimum itself is enough");
}

#[test]
fn a_cohort_without_requests_is_no_data_with_no_observed_value() {
    for metric in [Metric::P95Ms, Metric::ErrorRate] {
        let gate = ceiling(metric, 1.0, None);
        let r = evaluate(&gate, &empty(), &cohort(1000, 0, 100.0), 30_000);
        assert_eq!(r.status, GateStatus::NoData, "{metric}");
        assert_eq!(r.observed, None, "{metric}");
        assert_eq!(r.samples, 0, "{metric}");
    }
}

#[test]
fn a_throughput_floor_is_judged_at_the_poisson_bound_of_its_count() {
    // 60 requests over 30 s is 2 req/s, under a floor of 5; at 99.9 % the rate is at most
    // U(60) / 30 = 2.93357444848591 req/s (the Garwood bound, from mpmath 1.3.0: the mean
    // under which 60 or fewer arrivals have probability 0.001), still under the floor.
    let r = evaluate(
        &floor(Scope::Canary, 5.0),
        &cohort(60, 0, 100.0),
        &empty(),
        30_000,
    );
    assert_eq!(r.observed, Some(2.0));
    let bound = r.conservative.expect("a throughput has a Poisson bound");
    assert!((bound - 2.933_574_448_485_91).abs() < 1e-9, "{bound}");
    assert_eq!(r.status, GateStatus::Fail);
    assert_eq!(r.min, Some(5.0));
}

/// A throughput floor of `rps` on the service over 30 s that judges from 10 requests.
fn low_floor(rps: f64) -> Gate {
    Gate {
        min_samples: 10,
        ..floor(Scope::Service, rps)
    }
}

/// Issue 12: 19.9 req/s against a 20 req/s floor over about 2 s rolled a healthy service
/// back in stage 1; about 40 arrivals vary by ±6 from one 2 s to the next whatever the true
/// rate. Fails on 63809fb, which judged the point estimate (39 requests over 2 s, 19.5 req/s,
/// was a `fail`, with no bound). At 99.9 % the rate may be as high as U(39) / 2 =
/// 31.2098060039412 req/s (Garwood; mpmath 1.3.0, the mean under which 39 or fewer arrivals
/// have probability 0.001), so it is a `warn`; 10 requests over 10 s (at most U(10) / 10 =
/// 2.41339711454176 req/s) is conclusively under the floor.
#[test]
fn a_throughput_just_under_its_floor_on_few_requests_warns_and_a_clearly_low_one_fails() {
    let noisy = evaluate(
        &low_floor(20.0),
        &cohort(20, 0, 100.0),
        &cohort(19, 0, 100.0),
        2_000,
    );
    assert_eq!(noisy.observed, Some(19.5));
    assert_eq!(noisy.status, GateStatus::Warn);
    let bound = noisy.conservative.expect("a Poisson bound");
    assert!((bound - 31.209_806_003_941_2).abs() < 1e-9, "{bound}");
    assert_eq!(
        explain(&noisy),
        "service throughput_rps 19.5 req/s is under the 20.0 req/s floor but not yet conclusively (99.9% bound 31.2 req/s) over 2 s (39 requests)"
    );

    let low = evaluate(
        &low_floor(20.0),
        &cohort(5, 0, 100.0),
        &cohort(5, 0, 100.0),
        10_000,
    );
    assert_eq!(low.observed, Some(1.0));
    assert_eq!(low.status, GateStatus::Fail);
    let bound = low.conservative.expect("a Poisson bound");
    assert!((bound - 2.413_397_114_541_76).abs() < 1e-9, "{bound}");
    assert_eq!(
        explain(&low),
        "service throughput_rps 1.0 req/s is under the 20.0 req/s floor (at 99.9% confidence at most 2.4 req/s) over 10 s (10 requests)"
    );

    // Exactly at the floor is a pass, as before.
    let at = evaluate(
        &low_floor(20.0),
        &cohort(20, 0, 100.0),
        &cohort(20, 0, 100.0),
        2_000,
    );
    assert_eq!(at.status, GateStatus::Pass);
}

/// Fails on 63809fb (a throughput ceiling had no bound): a ceiling is judged at the lower
/// end of the rate's interval: L(130) = 97.6 req/s over 1 s, under a 100 req/s ceiling, but
/// L(200) = 159.1 (mpmath 1.3.0).
#[test]
fn a_throughput_ceiling_fails_only_when_even_its_lower_bound_is_over() {
    let ceiling = Gate {
        bound: Bound::Max,
        ..low_floor(100.0)
    };
    let near = evaluate(&ceiling, &cohort(130, 0, 100.0), &empty(), 1_000);
    assert_eq!(
        (near.observed, near.status),
        (Some(130.0), GateStatus::Warn)
    );
    let low = near.conservative.expect("a Poisson bound");
    assert!(low > 90.0 && low < 100.0, "{low}");
    let far = evaluate(&ceiling, &cohort(200, 0, 100.0), &empty(), 1_000);
    assert_eq!(far.status, GateStatus::Fail);
    assert!(far.conservative.expect("a Poisson bound") > 150.0);
}

#[test]
fn each_scope_reads_its_own_cohorts() {
    let canary = cohort(90, 0, 100.0);
    let stable = cohort(90, 45, 100.0);
    // 3 req/s each, 6 req/s together, against a floor of 5.
    let svc = evaluate(&floor(Scope::Service, 5.0), &canary, &stable, 30_000);
    assert_eq!((svc.samples, svc.observed), (180, Some(6.0)));
    assert_eq!(svc.status, GateStatus::Pass);
    let can = evaluate(&floor(Scope::Canary, 5.0), &canary, &stable, 30_000);
    assert_eq!((can.samples, can.status), (90, GateStatus::Fail));

    let errors = ceiling(Metric::ErrorRate, 0.01, None);
    assert_eq!(
        evaluate(&errors, &canary, &stable, 30_000).status,
        GateStatus::Pass
    );
    let stable_errors = Gate {
        scope: Scope::Stable,
        ..errors
    };
    assert_eq!(
        evaluate(&stable_errors, &canary, &stable, 30_000).status,
        GateStatus::Fail
    );
}

// ---------------------------------------------------------------------------------------
// No data
// ---------------------------------------------------------------------------------------

#[test]
fn a_canary_that_gets_no_requests_halts_at_the_stage_end_and_never_goes_further() {
    let plan = plan(THREE_STAGES);
    let mut run = Run::start(&plan);
    // The router never sends the canary anything.
    let outcome = run.finish(|ctx: Ctx| {
        let (c, s) = ctx.split(40);
        (empty(), cohort(c + s, 0, 120.0))
    });
    assert_eq!(outcome, Outcome::Halted);
    assert_eq!(run.decisions(), vec![(60.0, 1, Decision::Halt)]);
    assert_eq!(run.weights(), vec![pct(10.0)]);
    assert!(run.weights().iter().all(|w| *w <= plan.stages[0].weight));
    assert_eq!(
        run.actions().last().map(|(_, a)| a.clone()),
        Some(Action::Finished(Outcome::Halted))
    );
    let reasons = run.reasons(1);
    assert!(
        reasons.iter().any(|r| r.contains("had no data")),
        "{reasons:#?}"
    );

    let s = run.engine.summary();
    assert_eq!(s.outcome, Outcome::Halted);
    assert_eq!(s.rollback, None);
    assert_eq!(s.stages.len(), 1);
    let st = &s.stages[0];
    assert_eq!(st.decision, Some(Decision::Halt));
    assert_eq!(st.confidence, Confidence::Low);
    assert_eq!(st.elapsed_s, 60.0);
    for m in [Metric::P95Ms, Metric::P99Ms, Metric::ErrorRate] {
        assert_eq!(status_of(&st.gates, m), GateStatus::NoData, "{m}");
    }
    assert_eq!(
        status_of(&st.gates, Metric::ThroughputRps),
        GateStatus::Pass
    );
    assert_eq!(
        run.engine.weight(),
        pct(10.0),
        "a halt holds, it does not roll back"
    );
    run.assert_inert_after_finish();
}

#[test]
fn a_canary_with_fewer_requests_than_the_minimum_over_the_stage_halts() {
    let plan = plan(THREE_STAGES);
    let mut run = Run::start(&plan);
    // 3 canary requests per 5 s: 36 over the 60 s stage, under the 50 required.
    let outcome = run.finish(|ctx: Ctx| {
        let (c, s) = ctx.split(40);
        let canary = if ctx.end_ms - ctx.start_ms == 5000 {
            3
        } else {
            0
        };
        (cohort(canary, 0, 120.0), cohort(c + s - canary, 0, 120.0))
    });
    assert_eq!(outcome, Outcome::Halted);
    let s = run.engine.summary();
    let errors = s.stages[0]
        .gates
        .iter()
        .find(|g| g.metric == Metric::ErrorRate)
        .expect("an error gate");
    assert_eq!((errors.status, errors.samples), (GateStatus::NoData, 36));
}

// ---------------------------------------------------------------------------------------
// Operator abort
// ---------------------------------------------------------------------------------------

#[test]
fn an_operator_abort_rolls_back_at_once_naming_who_and_why() {
    let plan = plan(THREE_STAGES);
    let mut run = Run::start(&plan);
    run.tick_until(75, healthy(40));
    assert_eq!(run.engine.state(), State::Running { index: 1 });

    let reason = "operator alice aborted: error budget alarm".to_string();
    let actions = run.abort(77, "alice", "error budget alarm");
    assert_eq!(
        actions,
        vec![
            Action::RollbackInitiated {
                stage: 2,
                reason: reason.clone()
            },
            Action::SetWeight(Weight::ZERO),
            Action::StageDecided {
                index: 2,
                decision: Decision::Rollback,
                reasons: vec![reason.clone()],
            },
            Action::Finished(Outcome::RolledBack),
        ]
    );
    let s = run.engine.summary();
    assert_eq!(s.outcome, Outcome::RolledBack);
    let rb = s.rollback.expect("a rollback record");
    assert_eq!((rb.stage, rb.detection_s, rb.reason), (2, 77.0, reason));
    assert_eq!(s.stages[1].elapsed_s, 17.0);
    assert_eq!(s.stages[1].decision, Some(Decision::Rollback));
    run.assert_inert_after_finish();
}

// ---------------------------------------------------------------------------------------
// Scopes
// ---------------------------------------------------------------------------------------

/// One stage at 50 % then one at 100 %, a single error-rate gate of `scope`.
fn error_gate_plan(scope: &str) -> Arc<Plan> {
    plan(&format!(
        r#"
[gates]
evaluate_every = "5s"
window = "30s"
min_samples = 50
error_rate = {{ max = "1%", scope = "{scope}" }}

[[stages]]
weight = 50
duration = "60s"

# At 100 % the stable scope has no traffic, so validation requires another scope there.
[[stages]]
weight = 100
duration = "60s"
gates.error_rate = {{ max = "1%", scope = "canary" }}
"#
    ))
}

/// Stable fails half its requests from 10 s to 40 s; the canary is clean.
fn stable_burst(ctx: Ctx) -> (CohortStats, CohortStats) {
    let (c, s) = ctx.split(20);
    let stable_errors = if ctx.ends_within(10, 40) { s / 2 } else { 0 };
    (cohort(c, 0, 120.0), cohort(s, stable_errors, 120.0))
}

#[test]
fn a_stable_only_error_burst_does_not_fail_a_canary_scoped_gate() {
    let mut run = Run::start(&error_gate_plan("canary"));
    assert_eq!(run.finish(stable_burst), Outcome::Promoted);
}

#[test]
fn the_same_stable_burst_fails_a_stable_scoped_gate() {
    let mut run = Run::start(&error_gate_plan("stable"));
    assert_eq!(run.finish(stable_burst), Outcome::RolledBack);
    let rb = run.engine.summary().rollback.expect("a rollback record");
    assert_eq!(rb.stage, 1);
    assert_eq!(rb.detection_s, 15.0);
    assert!(rb.reason.starts_with("stable error_rate"), "{}", rb.reason);
}

/// One stage at 50 % then one at 100 %, a 10 req/s throughput floor of `scope`.
fn throughput_plan(scope: &str) -> Arc<Plan> {
    plan(&format!(
        r#"
[gates]
evaluate_every = "5s"
window = "30s"
min_samples = 50
throughput_rps = {{ min = 10, scope = "{scope}" }}

[[stages]]
weight = 50
duration = "60s"

[[stages]]
weight = 100
duration = "60s"
"#
    ))
}

#[test]
fn a_service_scoped_throughput_floor_counts_both_cohorts() {
    // 16 req/s in all; at 50 % each cohort gets 8, under the floor of 10 on its own.
    let mut run = Run::start(&throughput_plan("service"));
    assert_eq!(run.finish(healthy(16)), Outcome::Promoted);
    let s = run.engine.summary();
    let g = s.stages[0]
        .gates
        .iter()
        .find(|g| g.metric == Metric::ThroughputRps)
        .expect("a throughput gate");
    assert_eq!((g.observed, g.samples), (Some(16.0), 960));
}

#[test]
fn a_canary_scoped_throughput_floor_sees_only_the_canary() {
    let mut run = Run::start(&throughput_plan("canary"));
    assert_eq!(run.finish(healthy(16)), Outcome::RolledBack);
    let rb = run.engine.summary().rollback.expect("a rollback record");
    // 8 req/s against a floor of 10: the first window with 50 canary requests (80 at 10 s)
    // is only a warn, since so few requests could come from 10 req/s; the first window whose
    // 99.9 % Poisson bound is under the floor is 200 requests over 25 s (at most 9.91 req/s;
    // 160 over 20 s allowed up to 10.15).
    assert_eq!((rb.stage, rb.detection_s), (1, 25.0));
    assert!(
        rb.reason
            .starts_with("canary throughput_rps 8.0 req/s is under the 10.0 req/s floor"),
        "{}",
        rb.reason
    );
}

// ---------------------------------------------------------------------------------------
// Determinism
// ---------------------------------------------------------------------------------------

/// A run with checkpoints, a stage change and a latency breach in stage 2.
fn eventful_run() -> Run {
    let plan = plan(THREE_STAGES);
    let mut run = Run::start(&plan);
    let mut n = 0u64;
    run.finish(|ctx: Ctx| {
        n += 1;
        let (c, s) = ctx.split(40 + n % 7);
        let slow = if ctx.start_ms >= 110_000 {
            c / 2
        } else {
            c / 50
        };
        (
            mixed(c - slow, 90.0 + (n % 11) as f64, slow, 900.0),
            cohort(s, n % 3, 110.0),
        )
    });
    run
}

#[test]
fn the_same_inputs_give_the_same_actions_and_the_same_summary() {
    let a = eventful_run();
    let b = eventful_run();
    assert_eq!(a.engine.state(), State::Finished(Outcome::RolledBack));
    assert_eq!(a.log, b.log);
    let json = |r: &Run| serde_json::to_string(&r.engine.summary()).expect("serialisable");
    assert_eq!(json(&a), json(&b));
}

#[test]
fn a_cloned_engine_continues_exactly_like_the_original() {
    let plan = plan(THREE_STAGES);
    let mut run = Run::start(&plan);
    run.tick_until(100, healthy(40));
    let mut fork = Run {
        engine: run.engine.clone(),
        now: run.now,
        log: Vec::new(),
    };
    let mark = run.log.len();
    run.finish(healthy(40));
    fork.finish(healthy(40));
    assert_eq!(run.log[mark..], fork.log[..]);
    assert_eq!(
        serde_json::to_string(&run.engine.summary()).expect("serialisable"),
        serde_json::to_string(&fork.engine.summary()).expect("serialisable")
    );
}

// ---------------------------------------------------------------------------------------
// Regressions: bugs found by these tests and fixed
// ---------------------------------------------------------------------------------------

#[test]
fn a_window_throughput_is_the_true_rate_even_when_slots_do_not_align_with_the_window() {
    let plan = plan(THREE_STAGES);
    let mut run = Run::start(&plan);
    run.finish(healthy(40));
    let got: Vec<(f64, Option<f64>)> = run
        .checkpoints()
        .iter()
        .map(|r| {
            let g = r
                .checkpoint
                .gates
                .iter()
                .find(|g| g.metric == Metric::ThroughputRps)
                .expect("a throughput gate");
            (r.checkpoint.t_s, g.observed)
        })
        .collect();
    // Traffic is a steady 40 req/s throughout; at 102 s, 144 s, 150 s and 165 s the 30 s
    // window holds a 5 s slot that began up to 3 s before the window did.
    let want: Vec<(f64, Option<f64>)> = got.iter().map(|(t, _)| (*t, Some(40.0))).collect();
    assert_eq!(got, want);
}

#[test]
fn ticks_after_the_end_do_not_inflate_the_measured_baseline_throughput() {
    let plan = plan(BREACH);
    let mut run = Run::start(&plan);
    assert_eq!(run.finish(error_burst_from_20s), Outcome::RolledBack);
    let before = run.engine.baseline().metrics.throughput_rps;
    assert_eq!(before, Some(16.0));
    // Users keep arriving at 16 req/s, all on stable now.
    for _ in 0..20 {
        run.tick(empty(), cohort(80, 0, 120.0));
    }
    assert_eq!(run.engine.baseline().metrics.throughput_rps, before);
}

#[test]
fn a_stage_without_gates_halts_instead_of_promoting_on_no_evidence() {
    let plan = plan(
        r#"
[[stages]]
weight = 100
duration = "60s"
"#,
    );
    let mut run = Run::start(&plan);
    assert_eq!(run.finish(healthy(40)), Outcome::Halted);
    let s = run.engine.summary();
    assert_eq!(s.stages[0].decision, Some(Decision::Halt));
    assert!(s.stages[0].reasons[0].contains("No gate judged this stage"));
}

#[test]
fn an_abort_by_an_unnamed_operator_never_reads_operator_operator() {
    // The CLI's fallback name without $USER is "operator"; the reason must not double it.
    for who in ["operator", ""] {
        let mut engine = Engine::new(plan(THREE_STAGES));
        engine.step(PlanTime::ZERO, Input::Start);
        let actions = engine.step(
            PlanTime::ZERO,
            Input::Abort {
                who: who.into(),
                reason: "nerves".into(),
            },
        );
        let reason = actions
            .iter()
            .find_map(|a| match a {
                Action::RollbackInitiated { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .expect("an abort of a running rollout rolls back");
        assert_eq!(reason, "an operator aborted: nerves");
    }
}
