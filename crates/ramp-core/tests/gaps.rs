//! Time the engine did not observe (issue 12): `Input::Gap`, fed by a live driver when the
//! proxy restarted (its counters began again) or could not be read.
//!
//! No data is never a pass, in time as well as in samples: a stage's decision needs its
//! planned duration of observed time, so a gap moves the stage's end out by its length;
//! windows, stage ends and checkpoint rows compute rates over observed time only; and a
//! stage unobserved for longer than `max_unobserved` halts the rollout. Every test here fails
//! on 63809fb, which had no `Input::Gap`: a driver could only fold an outage into one slot.

use ramp_core::engine::{Action, Engine, Input, State};
use ramp_core::summary::{Decision, GateStatus, Outcome};
use ramp_core::{parse_plan, Metric, Plan, PlanTime, Span, Weight};
use ramp_stats::{CohortStats, Slot};
use std::sync::Arc;

/// The reason the live driver gives when the proxy's counters began again.
const RESTART: &str = "proxy restarted: its counters began again";

/// A validated plan from the gates and stages sections.
fn plan(body: &str) -> Arc<Plan> {
    let text = format!(
        "[deployment]\nid = \"gaps\"\nservice = \"checkout\"\nenvironment = \"test\"\n{body}"
    );
    match parse_plan(&text, "test.toml") {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("test plan is invalid:\n{e}\n{text}"),
    }
}

/// `requests` requests at 120 ms, none failed.
fn cohort(requests: u64) -> CohortStats {
    let mut c = CohortStats::new();
    c.requests = requests;
    for _ in 0..requests {
        c.latency.record(120.0);
    }
    c
}

/// An engine driven as the live driver drives it, with every input journaled as JSON (as
/// `ramp-store` keeps them) and every step's actions.
struct Run {
    engine: Engine,
    /// Where the next slot starts: the end of the last slot or gap.
    from_ms: u64,
    /// Every input as journaled, with its plan time.
    journal: Vec<(PlanTime, String)>,
    /// Every step's time and actions.
    log: Vec<(PlanTime, Vec<Action>)>,
}

impl Run {
    fn start(plan: &Arc<Plan>) -> Run {
        let mut run = Run {
            engine: Engine::new(Arc::clone(plan)),
            from_ms: 0,
            journal: Vec::new(),
            log: Vec::new(),
        };
        run.feed(PlanTime::ZERO, Input::Start);
        run
    }

    /// Journals an input, then feeds it.
    fn feed(&mut self, at: PlanTime, input: Input) -> Vec<Action> {
        let body = serde_json::to_string(&input).expect("an input serializes");
        self.journal.push((at, body));
        let actions = self.engine.step(at, input);
        self.log.push((at, actions.clone()));
        actions
    }

    /// One slot up to `next_tick()` with `rps` requests a second split by the weight.
    fn tick(&mut self, rps: u64) -> Vec<Action> {
        let end = self.engine.next_tick().0;
        let total = rps * (end - self.from_ms) / 1000;
        let canary = total * u64::from(self.engine.weight().basis_points()) / 10_000;
        self.slot(end, cohort(canary), cohort(total - canary))
    }

    /// One slot from where the last ended to `end_ms`.
    fn slot(&mut self, end_ms: u64, canary: CohortStats, stable: CohortStats) -> Vec<Action> {
        let slot = Slot {
            start_ms: self.from_ms,
            end_ms,
            canary,
            stable,
        };
        self.from_ms = end_ms;
        self.feed(PlanTime(end_ms), Input::Tick(slot))
    }

    /// Ticks at `rps` while the next tick is no later than `until_s` and the rollout runs.
    fn tick_until(&mut self, until_s: u64, rps: u64) {
        while self.engine.next_tick() <= PlanTime::from_secs(until_s) && !self.finished() {
            self.tick(rps);
        }
    }

    /// Nothing observed from where the last slot ended to `end_s`, fed at `end_s`.
    fn gap(&mut self, end_s: u64, reason: &str) -> Vec<Action> {
        let input = Input::Gap {
            start_ms: self.from_ms,
            end_ms: end_s * 1000,
            reason: reason.into(),
        };
        self.from_ms = end_s * 1000;
        self.feed(PlanTime::from_secs(end_s), input)
    }

    fn finished(&self) -> bool {
        matches!(self.engine.state(), State::Finished(_))
    }

    /// Every stage decision as `(time s, stage, decision, reasons)`.
    fn decisions(&self) -> Vec<(f64, usize, Decision, Vec<String>)> {
        self.log
            .iter()
            .flat_map(|(t, actions)| actions.iter().map(move |a| (*t, a)))
            .filter_map(|(t, a)| match a {
                Action::StageDecided {
                    index,
                    decision,
                    reasons,
                } => Some((t.as_secs_f64(), *index, *decision, reasons.clone())),
                _ => None,
            })
            .collect()
    }

    fn rolled_back(&self) -> bool {
        self.log
            .iter()
            .flat_map(|(_, a)| a)
            .any(|a| matches!(a, Action::RollbackInitiated { .. }))
    }

    /// The timeline's messages.
    fn events(&self) -> Vec<String> {
        self.engine
            .summary()
            .timeline
            .into_iter()
            .map(|e| e.message)
            .collect()
    }
}

/// A 60 s stage at 50 % and a 30 s one at 100 %, evaluated every second, with a 20 req/s
/// service throughput floor over 30 s windows.
const FLOOR_20: &str = r#"
[gates]
evaluate_every = "1s"
window = "30s"
min_samples = 20
throughput_rps = { min = 20, scope = "service" }

[[stages]]
weight = 50
duration = "60s"
checkpoint = "10s"

[[stages]]
weight = 100
duration = "30s"
"#;

/// Issue 12's false rollback, at the engine: a healthy 30 req/s service, the proxy restarts
/// at 20 s and is back 11 s later, and the first second after it has 50 requests.
///
/// Fails on 63809fb: it had no `Input::Gap`, so the old driver folded the outage into one
/// slot, `[20 s, 32 s)` with those 50 requests. Fed that slot, 63809fb rolled back at 32 s
/// with "service throughput_rps 19.7 req/s is under the 20.0 req/s floor over 30 s (590
/// requests)": the window counted 30 s of time of which only 19 s had been observed. With
/// the gap, the window covers the 19 s it saw (31.1 req/s), the stage lasts 60 s of observed
/// time (ending at 71 s) and the rollout is promoted.
#[test]
fn a_proxy_restart_is_a_gap_not_a_throughput_collapse() {
    let plan = plan(FLOOR_20);
    let mut run = Run::start(&plan);
    run.tick_until(20, 30);
    assert_eq!(run.from_ms, 20_000);
    assert_eq!(run.gap(31, RESTART), vec![]);
    let half = |n: u64| (cohort(n / 2), cohort(n - n / 2));
    let (canary, stable) = half(50);
    run.slot(32_000, canary, stable);
    assert!(!run.rolled_back());
    let view = run.engine.live_view().expect("stage 1 runs");
    let g = &view.gates[0];
    assert_eq!(g.metric, Metric::ThroughputRps);
    // 18 s before the gap (slots ending after 2 s) at 30 req/s and 50 requests in 1 s after
    // it: 590 requests over 19 observed seconds.
    assert_eq!((g.samples, g.span_s), (590, 19.0));
    assert_eq!(g.observed, Some(590.0 / 19.0));
    assert_eq!(g.status, GateStatus::Pass);
    assert_eq!(
        (view.unobserved_ms, view.ends_at),
        (11_000, PlanTime(71_000))
    );

    while !run.finished() {
        run.tick(30);
    }
    assert_eq!(run.engine.state(), State::Finished(Outcome::Promoted));
    assert!(!run.rolled_back());
    let decisions = run.decisions();
    assert_eq!((decisions[0].0, decisions[0].2), (71.0, Decision::Proceed));
    assert_eq!(
        decisions[0].3[0],
        format!("1 of 1 gates passed over 1 min of observed data (910 canary and 910 stable requests); 11 s unobserved ({RESTART}) extended the stage.")
    );
    // The second stage had no gap: its reason is worded as before issue 12.
    assert_eq!((decisions[1].0, decisions[1].2), (101.0, Decision::Proceed));
    assert!(
        decisions[1].3[0].starts_with("1 of 1 gates passed over 30 s of data ("),
        "{}",
        decisions[1].3[0]
    );
    assert!(run.events().contains(&format!(
        "11 s unobserved ({RESTART}); stage 1 extended to end at T+71 s"
    )));
    let s = run.engine.summary();
    assert_eq!(
        (s.stages[0].elapsed_s, s.stages[0].unobserved_s),
        (71.0, 11.0)
    );
    assert_eq!(s.stages[1].unobserved_s, 0.0);
    // The stage's throughput is over its observed 60 s: 1,820 requests.
    assert_eq!(
        s.stages[0].metrics_by_scope.service.throughput_rps,
        Some(1820.0 / 60.0)
    );

    // Replaying the journal into a fresh engine gives the same actions, step for step.
    let mut replay = Engine::new(Arc::clone(&plan));
    for ((at, body), (logged_at, actions)) in run.journal.iter().zip(&run.log) {
        let input: Input = serde_json::from_str(body).expect("a journaled input parses");
        assert_eq!((*at, &replay.step(*at, input)), (*logged_at, actions));
    }
}

/// A 40 s stage then a 40 s one, evaluated every second, checkpoints every 20 s; gaps of up
/// to 20 s per stage are allowed.
const FORTY: &str = r#"
[gates]
evaluate_every = "1s"
window = "10s"
min_samples = 20
max_unobserved = "20s"
throughput_rps = { min = 5, scope = "service" }
error_rate = { max = "5%" }

[[stages]]
weight = 50
duration = "40s"
checkpoint = "20s"

[[stages]]
weight = 100
duration = "40s"
"#;

/// Fails on 63809fb: there the old driver's one slot `[34 s, 46 s)` ended the stage at 46 s,
/// decided "over 46 s of data" of which 12 s had never been observed (and without that
/// slot, at 40 s, in the middle of the outage). Now the stage needs 40 s of observed time:
/// it ends at 52 s, its checkpoint rows are rates over their observed time, and its record
/// says 12 s were unobserved.
#[test]
fn a_stage_that_ends_inside_a_gap_waits_for_its_observed_time() {
    let plan = plan(FORTY);
    let mut run = Run::start(&plan);
    run.tick_until(34, 30);
    assert!(run
        .gap(46, "proxy unreachable: connection refused")
        .is_empty());
    // The next tick respects the moved end, and nothing is decided at 40 s or 46 s.
    assert_eq!(run.engine.next_tick(), PlanTime(47_000));
    let view = run.engine.live_view().expect("stage 1 runs");
    assert_eq!(
        (view.unobserved_ms, view.ends_at),
        (12_000, PlanTime(52_000))
    );
    run.tick_until(51, 30);
    assert!(run.decisions().is_empty());
    assert_eq!(run.engine.next_tick(), PlanTime(52_000));
    run.tick(30);
    let decisions = run.decisions();
    assert_eq!((decisions[0].0, decisions[0].1), (52.0, 1));
    assert_eq!(decisions[0].2, Decision::Proceed);
    assert_eq!(
        decisions[0].3[0],
        "2 of 2 gates passed over 40 s of observed data (600 canary and 600 stable requests); 12 s unobserved (proxy unreachable: connection refused) extended the stage."
    );

    // Checkpoints at 20 s, at 47 s (the one due at 40 s, the first tick after the gap) and
    // at the end; the one across the gap is a rate over its 15 observed seconds.
    let rows: Vec<_> = run
        .log
        .iter()
        .flat_map(|(_, a)| a)
        .filter_map(|a| match a {
            Action::Checkpoint(r) if r.stage == 1 => Some(r.clone()),
            _ => None,
        })
        .collect();
    let times: Vec<f64> = rows.iter().map(|r| r.checkpoint.t_s).collect();
    assert_eq!(times, vec![20.0, 47.0, 52.0]);
    for r in &rows {
        assert_eq!(
            r.checkpoint.metrics_by_scope.service.throughput_rps,
            Some(30.0),
            "at {}",
            r.checkpoint.t_s
        );
    }
    assert_eq!(
        (rows[0].unobserved, rows[1].unobserved),
        (Span(0), Span(12_000))
    );
    assert_eq!(
        (rows[1].elapsed, rows[1].duration),
        (Span(47_000), Span(40_000))
    );

    let json = serde_json::to_value(run.engine.summary()).expect("a summary serializes");
    assert_eq!(json["stages"][0]["unobserved_s"], 12.0);
    assert_eq!(json["stages"][0]["elapsed_s"], 52.0);
    assert_eq!(json["stages"][1]["unobserved_s"], 0.0);
}

/// Two 40 s stages, 1 s ticks, a 5 % error-rate ceiling, the default `max_unobserved` (for
/// 40 s stages, a quarter: 10 s).
const DEFAULT_LIMIT: &str = r#"
[gates]
evaluate_every = "1s"
window = "10s"
min_samples = 20
error_rate = { max = "5%" }

[[stages]]
weight = 50
duration = "40s"

[[stages]]
weight = 100
duration = "40s"
"#;

/// Fails on 63809fb (no gaps, no limit): a stage 12 s of whose 40 s went unobserved halts
/// the rollout at its weight as soon as the limit is passed, with the sentence that says so.
#[test]
fn more_unobserved_time_than_allowed_halts_the_rollout_at_its_weight() {
    let plan = plan(DEFAULT_LIMIT);
    assert_eq!(plan.max_unobserved, None);
    assert_eq!(plan.max_unobserved_of(1), Span::from_secs(10));
    let mut run = Run::start(&plan);
    run.tick_until(40, 30);
    assert_eq!(run.engine.state(), State::Running { index: 1 });
    run.tick_until(45, 30);
    // 6 s, then 4 s: 10 s is the limit, not yet past it.
    assert!(run.gap(51, RESTART).is_empty());
    run.tick_until(55, 30);
    let a = run.gap(59, RESTART);
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(run.engine.state(), State::Running { index: 1 });
    run.tick_until(60, 30);
    // 2 s more: 12 s of the stage's 40 s.
    let actions = run.gap(62, RESTART);
    let reason = format!("Stage 2 halted: 12 s of its 40 s were unobserved ({RESTART}), more than the 10 s allowed (max_unobserved: by default a quarter of the stage, at most 5 min); Ramp never decides on time it did not see.");
    assert_eq!(
        actions,
        vec![
            Action::StageDecided {
                index: 2,
                decision: Decision::Halt,
                reasons: vec![reason.clone()],
            },
            Action::Finished(Outcome::Halted),
        ]
    );
    // The weight stays where it was.
    assert_eq!(run.engine.weight(), Weight::FULL);
    let s = run.engine.summary();
    assert_eq!(s.outcome, Outcome::Halted);
    assert_eq!(
        (s.stages[1].unobserved_s, s.stages[1].decision),
        (12.0, Some(Decision::Halt))
    );
    assert!(run.events().contains(&reason));
    // Ticks and gaps after the end change nothing.
    assert!(run.tick(30).is_empty());
    assert!(run.gap(80, RESTART).is_empty());
    assert_eq!(run.engine.summary().timeline, s.timeline);
}

/// Fails on 63809fb (no `max_unobserved`): the default is a quarter of the stage up to
/// 5 minutes, and a written limit replaces it for every stage.
#[test]
fn the_default_limit_is_a_quarter_of_the_stage_up_to_five_minutes() {
    let plan = plan(
        r#"
[gates]
window = "30s"
error_rate = { max = "5%" }

[[stages]]
weight = 10
duration = "40s"

[[stages]]
weight = 50
duration = "1h"

[[stages]]
weight = 100
duration = "20m"
"#,
    );
    let limits: Vec<Span> = (0..3).map(|i| plan.max_unobserved_of(i)).collect();
    assert_eq!(
        limits,
        vec![Span::from_secs(10), Span::from_mins(5), Span::from_mins(5)]
    );
    let written = self::plan(
        r#"
[gates]
max_unobserved = "30s"
error_rate = { max = "5%" }

[[stages]]
weight = 100
duration = "1h"
"#,
    );
    assert_eq!(written.max_unobserved_of(0), Span::from_secs(30));

    // In a 20-minute stage, 5 minutes unobserved is allowed and one more second is not.
    let short = self::plan(
        r#"
[gates]
evaluate_every = "5s"
window = "1m"
error_rate = { max = "5%" }

[[stages]]
weight = 100
duration = "20m"
"#,
    );
    let mut run = Run::start(&short);
    run.tick_until(60, 30);
    assert!(run.gap(360, RESTART).is_empty());
    let view = run.engine.live_view().expect("the stage runs");
    assert_eq!(view.ends_at, PlanTime::from_secs(1500));
    run.tick_until(365, 30);
    let actions = run.gap(366, RESTART);
    assert_eq!(actions.last(), Some(&Action::Finished(Outcome::Halted)));
}

/// Fails on 63809fb (no `Input::Gap`): a gap is journaled as `{"kind":"gap",…}` and read back
/// as the same input.
#[test]
fn a_gap_round_trips_through_the_journal_format() {
    let gap = Input::Gap {
        start_ms: 20_000,
        end_ms: 31_000,
        reason: RESTART.into(),
    };
    let json = serde_json::to_value(&gap).expect("serializes");
    assert_eq!(
        json,
        serde_json::json!({
            "kind": "gap",
            "start_ms": 20_000,
            "end_ms": 31_000,
            "reason": RESTART,
        })
    );
    let text = r#"{"kind":"gap","start_ms":20000,"end_ms":31000,"reason":"proxy restarted: its counters began again"}"#;
    assert_eq!(serde_json::from_str::<Input>(text).expect("parses"), gap);
}

/// Fails on 63809fb (no `Input::Gap`): a gap before the first stage and one that overlaps
/// time already observed change no stage's time; the part of a gap that was observed is not
/// counted twice.
#[test]
fn only_the_unobserved_part_of_a_gap_inside_a_stage_counts() {
    let plan = plan(FORTY);
    let mut engine = Engine::new(Arc::clone(&plan));
    // Before the start: an event, no stage.
    engine.step(
        PlanTime(5_000),
        Input::Gap {
            start_ms: 0,
            end_ms: 5_000,
            reason: RESTART.into(),
        },
    );
    engine.step(PlanTime(5_000), Input::Start);
    let view = engine.live_view().expect("stage 1 runs");
    assert_eq!((view.unobserved_ms, view.ends_at), (0, PlanTime(45_000)));
    engine.step(
        PlanTime(10_000),
        Input::Tick(Slot {
            start_ms: 5_000,
            end_ms: 10_000,
            canary: cohort(50),
            stable: cohort(50),
        }),
    );
    // A gap claiming [8 s, 12 s): 8–10 s was observed, so 2 s count.
    engine.step(
        PlanTime(12_000),
        Input::Gap {
            start_ms: 8_000,
            end_ms: 12_000,
            reason: RESTART.into(),
        },
    );
    let view = engine.live_view().expect("stage 1 runs");
    assert_eq!(
        (view.unobserved_ms, view.ends_at),
        (2_000, PlanTime(47_000))
    );
    let events: Vec<String> = engine
        .summary()
        .timeline
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(
        events[0],
        format!("5 s unobserved ({RESTART}) before the first stage")
    );
    assert!(events.contains(&format!(
        "2 s unobserved ({RESTART}); stage 1 extended to end at T+47 s"
    )));
}
