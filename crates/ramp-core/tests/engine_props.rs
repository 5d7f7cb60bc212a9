//! Properties of the rollout engine over random plans and random traffic.
//!
//! Random plans (2–4 stages with increasing weights ending at 100 %, short durations,
//! random gate levels, windows, minimum samples and checkpoint intervals) are fed random
//! slot streams (request counts including zero, error counts, latencies) at every
//! `next_tick()`, with an optional operator abort, and the whole run is checked:
//!
//! - the engine never panics and always finishes;
//! - `Finished` appears exactly once, as the very last action, and nothing (no tick, abort
//!   or second start) produces an action after it;
//! - after a rollback no weight other than 0 is asked for, and the outcome is `RolledBack`;
//!   a weight of 0 is asked for only by a rollback;
//! - the weights asked for strictly increase (they are the plan's stage weights in order)
//!   except for the final 0 of a rollback;
//! - `StageStarted` indexes run 1, 2, 3… with no skip or repeat, each with its plan weight;
//! - the outcome is never a promotion if any stage decided `Halt` or any stage-end gate had
//!   no data;
//! - the summary agrees with the actions (outcome, decisions, rollback record);
//! - stages that end on their own end at exactly their planned length with a checkpoint row
//!   at every interval, and a rollback is recorded at the time of the step that made it.
//!
//! A third property feeds slots of random lengths (1 ms to longer than a stage) instead of
//! ticking at `next_tick()`, as a careless driver might: every invariant but the timing one
//! must still hold. A fourth feeds random gaps (time nothing was observed) between ticks:
//! every invariant holds, a stage that ends on its own has observed exactly its planned
//! duration (its end moved out by its unobserved time), and only a stage unobserved for
//! longer than its `max_unobserved` limit halts for it.

use proptest::prelude::*;
use ramp_core::engine::{Action, Engine, Input, State};
use ramp_core::summary::{Decision, GateStatus, Outcome, Summary};
use ramp_core::{parse_plan, Plan, PlanTime, Span, Weight};
use ramp_stats::{CohortStats, Slot};
use std::sync::Arc;

/// A random plan, before it is written as TOML.
#[derive(Debug, Clone)]
struct PlanSpec {
    /// Stage weights in percent, strictly increasing, the last 100.
    weights: Vec<u32>,
    /// Stage durations, seconds.
    durations_s: Vec<u64>,
    /// Checkpoint intervals in seconds (clamped to the stage), `None` for the default.
    checkpoints_s: Vec<Option<u64>>,
    /// `[gates].evaluate_every`, seconds.
    every_s: u64,
    /// `[gates].window` before it is fitted to the stages, seconds.
    window_s: u64,
    /// `[gates].min_samples`.
    min_samples: u64,
    /// p95 fail level, ms, and warn level as a share of it.
    p95_max: u64,
    p95_warn: Option<f64>,
    /// Error-rate fail level in percent, warn level as a share of it, and scope.
    errors_max_pct: f64,
    errors_warn: Option<f64>,
    errors_service_scoped: bool,
    /// Service throughput floor, req/s.
    throughput_min: Option<u64>,
}

impl PlanSpec {
    /// The plan file.
    fn toml(&self) -> String {
        let shortest = *self.durations_s.iter().min().expect("at least one stage");
        let window = self.window_s.clamp(self.every_s, shortest);
        let mut t = String::from(
            "[deployment]\nid = \"prop\"\nservice = \"svc\"\nenvironment = \"test\"\n\n[gates]\n",
        );
        t += &format!(
            "evaluate_every = \"{}s\"\nwindow = \"{window}s\"\nmin_samples = {}\n",
            self.every_s, self.min_samples
        );
        let warn = |max: f64, share: Option<f64>| {
            share.map_or(String::new(), |s| format!(", warn = {}", max * s))
        };
        t += &format!(
            "p95_ms = {{ max = {}{} }}\n",
            self.p95_max,
            warn(self.p95_max as f64, self.p95_warn)
        );
        let err_max = self.errors_max_pct / 100.0;
        t += &format!(
            "error_rate = {{ max = {err_max}{}, scope = \"{}\" }}\n",
            warn(err_max, self.errors_warn),
            if self.errors_service_scoped {
                "service"
            } else {
                "canary"
            }
        );
        if let Some(min) = self.throughput_min {
            t += &format!("throughput_rps = {{ min = {min}, scope = \"service\" }}\n");
        }
        for ((w, d), cp) in self
            .weights
            .iter()
            .zip(&self.durations_s)
            .zip(&self.checkpoints_s)
        {
            t += &format!("\n[[stages]]\nweight = {w}\nduration = \"{d}s\"\n");
            if let Some(cp) = cp {
                t += &format!("checkpoint = \"{}s\"\n", (*cp).min(*d));
            }
        }
        t
    }

    /// The validated plan; every generated plan must be valid.
    fn plan(&self) -> Arc<Plan> {
        let text = self.toml();
        match parse_plan(&text, "prop.toml") {
            Ok(p) => Arc::new(p),
            Err(e) => panic!("generated plan is invalid:\n{e}\n{text}"),
        }
    }
}

/// 2–4 stages, weights increasing to 100, 10–60 s each, random gates.
fn plan_spec() -> impl Strategy<Value = PlanSpec> {
    (2usize..=4)
        .prop_flat_map(|n| {
            (
                proptest::sample::subsequence((1u32..100).collect::<Vec<_>>(), n - 1),
                proptest::collection::vec(10u64..=60, n),
                proptest::collection::vec(proptest::option::of(1u64..=30), n),
            )
        })
        .prop_flat_map(|(mut weights, durations_s, checkpoints_s)| {
            weights.push(100);
            (
                Just(weights),
                Just(durations_s),
                Just(checkpoints_s),
                1u64..=5,
                5u64..=30,
                prop_oneof![Just(1u64), 1u64..=20, 20u64..=200],
                (300u64..=1500, proptest::option::of(0.1f64..0.95)),
                (
                    0.5f64..20.0,
                    proptest::option::of(0.1f64..0.95),
                    any::<bool>(),
                ),
                proptest::option::of(1u64..=20),
            )
        })
        .prop_map(
            |(
                weights,
                durations_s,
                checkpoints_s,
                every_s,
                window_s,
                min_samples,
                (p95_max, p95_warn),
                (errors_max_pct, errors_warn, errors_service_scoped),
                throughput_min,
            )| PlanSpec {
                weights,
                durations_s,
                checkpoints_s,
                every_s,
                window_s,
                min_samples,
                p95_max,
                p95_warn,
                errors_max_pct,
                errors_warn,
                errors_service_scoped,
                throughput_min,
            },
        )
}

/// One cohort's traffic in one slot.
#[derive(Debug, Clone, Copy)]
struct CohortSpec {
    requests: u64,
    /// Failed share in percent (of `requests`, rounded down).
    error_pct: u64,
    /// Latency of the fastest request; the others spread up to 3× it.
    latency_ms: f64,
}

impl CohortSpec {
    fn stats(&self) -> CohortStats {
        let mut c = CohortStats::new();
        c.requests = self.requests;
        c.errors = self.requests * self.error_pct / 100;
        for i in 0..self.requests {
            c.latency
                .record(self.latency_ms * (1.0 + (i % 5) as f64 * 0.5));
        }
        c
    }
}

/// Request counts that are often zero or small, sometimes large. A `noisy` cohort often
/// fails requests and is sometimes slow; a calm one is fast and rarely fails, so that random
/// runs reach every outcome, promotions included.
fn cohort_spec(noisy: bool) -> impl Strategy<Value = CohortSpec> {
    let bad = u32::from(noisy);
    (
        prop_oneof![1 + bad => Just(0u64), 4 => 1u64..20, 4 => 20u64..150],
        prop_oneof![6 => Just(0u64), 1 + bad => 1u64..3, 2 * bad => 3u64..=100],
        prop_oneof![6 => 10.0f64..90.0, bad => 90.0f64..3000.0],
    )
        .prop_map(|(requests, error_pct, latency_ms)| CohortSpec {
            requests,
            error_pct,
            latency_ms,
        })
}

/// A random run: the slots' traffic (cycled until the rollout ends) and an optional abort
/// before the tick of that number.
#[derive(Debug, Clone)]
struct Feed {
    slots: Vec<(CohortSpec, CohortSpec)>,
    abort_before_tick: Option<usize>,
    /// Slot lengths in ms (cycled) for a driver that ignores `next_tick()`; `None` ticks at
    /// `next_tick()`.
    irregular_ms: Option<Vec<u64>>,
    /// Gaps (cycled, one entry per tick): the length in ms of the time nothing was observed
    /// before that tick's slot, if any.
    gaps_ms: Vec<Option<u64>>,
}

fn feed() -> impl Strategy<Value = Feed> {
    any::<bool>()
        .prop_flat_map(|noisy| {
            (
                proptest::collection::vec((cohort_spec(noisy), cohort_spec(noisy)), 1..40),
                proptest::option::weighted(0.3, 0usize..120),
            )
        })
        .prop_map(|(slots, abort_before_tick)| Feed {
            slots,
            abort_before_tick,
            irregular_ms: None,
            gaps_ms: vec![None],
        })
}

/// A feed with gaps before some ticks, from 1 ms to longer than a stage.
fn gappy_feed() -> impl Strategy<Value = Feed> {
    (
        feed(),
        proptest::collection::vec(
            proptest::option::weighted(
                0.15,
                prop_oneof![1u64..1000, 1000u64..10_000, 10_000u64..90_000],
            ),
            1..30,
        ),
    )
        .prop_map(|(feed, gaps_ms)| Feed { gaps_ms, ..feed })
}

/// A feed whose slots have random lengths, from 1 ms to longer than a stage.
fn irregular_feed() -> impl Strategy<Value = Feed> {
    (
        feed(),
        proptest::collection::vec(
            prop_oneof![1u64..1000, 1000u64..10_000, 10_000u64..120_000],
            1..20,
        ),
    )
        .prop_map(|(feed, lengths)| Feed {
            irregular_ms: Some(lengths),
            ..feed
        })
}

/// Runs `feed` against `plan` until the rollout finishes, then pokes the finished engine;
/// returns every step's time and actions in order (the pokes included) and the engine.
fn drive(plan: &Arc<Plan>, feed: &Feed) -> (Log, Engine) {
    let mut engine = Engine::new(Arc::clone(plan));
    let mut log = vec![(PlanTime::ZERO, engine.step(PlanTime::ZERO, Input::Start))];
    let mut now = PlanTime::ZERO;
    let mut tick = 0usize;
    let mut aborted = false;
    while !matches!(engine.state(), State::Finished(_)) {
        assert!(tick < 100_000, "the rollout never finished");
        if feed.abort_before_tick == Some(tick) && !aborted {
            aborted = true;
            let actions = engine.step(
                now,
                Input::Abort {
                    who: "prop".into(),
                    reason: "random abort".into(),
                },
            );
            log.push((now, actions));
            continue;
        }
        let next = engine.next_tick();
        assert!(
            next > now,
            "next_tick {next:?} does not advance past {now:?}"
        );
        let next = match &feed.irregular_ms {
            Some(lengths) => now.plus(Span(lengths[tick % lengths.len()])),
            None => next,
        };
        if let Some(len) = feed.gaps_ms[tick % feed.gaps_ms.len()] {
            let end = now.plus(Span(len));
            let gap = Input::Gap {
                start_ms: now.0,
                end_ms: end.0,
                reason: "random gap".into(),
            };
            log.push((end, engine.step(end, gap)));
            now = end;
            if matches!(engine.state(), State::Finished(_)) {
                break;
            }
        }
        let next = match feed.gaps_ms[tick % feed.gaps_ms.len()] {
            Some(_) => engine.next_tick(),
            None => next,
        };
        let (canary, stable) = &feed.slots[tick % feed.slots.len()];
        let slot = Slot {
            start_ms: now.0,
            end_ms: next.0,
            canary: canary.stats(),
            stable: stable.stats(),
        };
        log.push((next, engine.step(next, Input::Tick(slot))));
        now = next;
        tick += 1;
    }
    // After the end, nothing may happen any more.
    for _ in 0..2 {
        let next = engine.next_tick();
        let (canary, stable) = &feed.slots[0];
        let slot = Slot {
            start_ms: now.0,
            end_ms: next.0,
            canary: canary.stats(),
            stable: stable.stats(),
        };
        log.push((next, engine.step(next, Input::Tick(slot))));
        now = next;
    }
    let late = Input::Abort {
        who: "late".into(),
        reason: "after the end".into(),
    };
    log.push((now, engine.step(now, late)));
    log.push((now, engine.step(now, Input::Start)));
    (log, engine)
}

/// Every step's plan time and actions, in order.
type Log = Vec<(PlanTime, Vec<Action>)>;

/// Checks every invariant of one run.
fn check(plan: &Plan, log: &Log, engine: &Engine) -> Result<(), TestCaseError> {
    let actions: Vec<&Action> = log.iter().flat_map(|(_, a)| a).collect();

    // Finished exactly once, as the last action.
    let finished: Vec<usize> = actions
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a, Action::Finished(_)))
        .map(|(i, _)| i)
        .collect();
    prop_assert_eq!(finished.len(), 1, "Finished must appear exactly once");
    prop_assert_eq!(
        finished[0],
        actions.len() - 1,
        "nothing may follow Finished"
    );
    let Action::Finished(outcome) = actions[finished[0]] else {
        unreachable!()
    };
    let outcome = *outcome;
    prop_assert_eq!(engine.state(), State::Finished(outcome));

    // Weights: the plan's stage weights in strictly increasing order, then maybe a 0.
    let weights: Vec<Weight> = actions
        .iter()
        .filter_map(|a| match a {
            Action::SetWeight(w) => Some(*w),
            _ => None,
        })
        .collect();
    let rollback_at = actions
        .iter()
        .position(|a| matches!(a, Action::RollbackInitiated { .. }));
    let mut last = Weight::ZERO;
    for (i, w) in weights.iter().enumerate() {
        if *w == Weight::ZERO {
            prop_assert!(rollback_at.is_some(), "weight 0 without a rollback");
            prop_assert_eq!(i, weights.len() - 1, "a weight after the rollback's 0");
        } else {
            prop_assert!(*w > last, "weight {} after {}", w, last);
            last = *w;
        }
    }
    if let Some(r) = rollback_at {
        prop_assert_eq!(outcome, Outcome::RolledBack);
        let after: Vec<&&Action> = actions[r..]
            .iter()
            .filter(|a| matches!(a, Action::SetWeight(_)))
            .collect();
        prop_assert_eq!(after.len(), 1);
        prop_assert_eq!(after[0], &&Action::SetWeight(Weight::ZERO));
        prop_assert_eq!(engine.weight(), Weight::ZERO);
    } else {
        prop_assert!(
            outcome != Outcome::RolledBack,
            "rolled back without a rollback"
        );
    }
    prop_assert_eq!(
        actions
            .iter()
            .filter(|a| matches!(a, Action::RollbackInitiated { .. }))
            .count(),
        usize::from(rollback_at.is_some())
    );

    // Stages start 1, 2, 3… at their plan weights.
    let started: Vec<(usize, Weight)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::StageStarted { index, weight } => Some((*index, *weight)),
            _ => None,
        })
        .collect();
    for (k, (index, weight)) in started.iter().enumerate() {
        prop_assert_eq!(*index, k + 1);
        prop_assert_eq!(*weight, plan.stages[k].weight);
    }
    let positive: Vec<Weight> = weights
        .iter()
        .copied()
        .filter(|w| *w != Weight::ZERO)
        .collect();
    prop_assert_eq!(
        positive,
        started.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
        "every weight set is a stage start's"
    );

    // Decisions: one per started stage, in order, and promotions only on data.
    let decided: Vec<(usize, Decision)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::StageDecided {
                index, decision, ..
            } => Some((*index, *decision)),
            _ => None,
        })
        .collect();
    prop_assert_eq!(
        decided.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (1..=started.len()).collect::<Vec<_>>()
    );
    let summary = engine.summary();
    prop_assert_eq!(summary.outcome, outcome);
    prop_assert_eq!(
        summary
            .stages
            .iter()
            .map(|s| (s.index, s.decision))
            .collect::<Vec<_>>(),
        decided
            .iter()
            .map(|(i, d)| (*i, Some(*d)))
            .collect::<Vec<_>>()
    );
    let promoted = matches!(outcome, Outcome::Promoted | Outcome::PromotedWithCaveats);
    let halted = decided.iter().any(|(_, d)| *d == Decision::Halt);
    let no_data = summary
        .stages
        .iter()
        .filter(|s| s.decision != Some(Decision::Rollback))
        .flat_map(|s| &s.gates)
        .any(|g| g.status == GateStatus::NoData);
    prop_assert!(
        !(promoted && (halted || no_data)),
        "promoted although a stage halted or had no data"
    );
    if promoted {
        prop_assert_eq!(started.len(), plan.stages.len());
        prop_assert_eq!(engine.weight(), Weight::FULL);
        prop_assert_eq!(
            outcome == Outcome::PromotedWithCaveats,
            decided.iter().any(|(_, d)| *d == Decision::Monitor)
        );
    }
    if outcome == Outcome::Halted {
        prop_assert_eq!(decided.last().map(|(_, d)| *d), Some(Decision::Halt));
    }
    prop_assert_eq!(
        summary.rollback.as_ref().map(|r| r.stage),
        rollback_at.map(|_| started.len())
    );
    Ok(())
}

/// Driven at `next_tick()`, stages that end on their own end at exactly their planned
/// length, with a checkpoint row at every interval and the last at the end; the next stage
/// starts when the previous ends; a rollback is recorded at the time of the step that
/// initiated it.
fn check_timing(plan: &Plan, log: &Log, summary: &Summary) -> Result<(), TestCaseError> {
    for (k, st) in summary.stages.iter().enumerate() {
        let stage = &plan.stages[k];
        let planned = stage.duration.as_secs_f64();
        prop_assert_eq!(st.planned_duration_s, planned);
        if k + 1 < summary.stages.len() {
            prop_assert_eq!(summary.stages[k + 1].started_s, st.started_s + planned);
        }
        if st.decision == Some(Decision::Rollback) {
            continue;
        }
        prop_assert_eq!(
            st.elapsed_s,
            planned,
            "stage {} ended off its plan",
            st.index
        );
        let every = stage.checkpoint.0;
        let rows = stage.duration.0.div_ceil(every) as usize;
        prop_assert_eq!(st.checkpoints.len(), rows, "stage {} checkpoints", st.index);
        for (i, cp) in st.checkpoints.iter().enumerate() {
            let due =
                (st.started_s * 1000.0) as u64 + (every * (i as u64 + 1)).min(stage.duration.0);
            prop_assert_eq!(cp.t_s, PlanTime(due).as_secs_f64());
        }
    }
    if let Some(rb) = &summary.rollback {
        let at = log
            .iter()
            .find(|(_, a)| {
                a.iter()
                    .any(|a| matches!(a, Action::RollbackInitiated { .. }))
            })
            .map(|(t, _)| t.as_secs_f64());
        prop_assert_eq!(Some(rb.detection_s), at);
        prop_assert_eq!(rb.initiated_s, rb.detection_s);
        let st = summary.stages.last().expect("a rolled-back stage");
        prop_assert_eq!(st.elapsed_s, rb.detection_s - st.started_s);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        // Integration tests have no lib.rs next to them to anchor a regressions file.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_rollouts_keep_every_engine_invariant(spec in plan_spec(), feed in feed()) {
        let plan = spec.plan();
        let (log, engine) = drive(&plan, &feed);
        check(&plan, &log, &engine)?;
        check_timing(&plan, &log, &engine.summary())?;
    }

    #[test]
    fn random_rollouts_are_deterministic(spec in plan_spec(), feed in feed()) {
        let plan = spec.plan();
        let (log_a, a) = drive(&plan, &feed);
        let (log_b, b) = drive(&plan, &feed);
        prop_assert_eq!(log_a, log_b);
        let json = |e: &Engine| serde_json::to_string(&e.summary()).expect("serialisable");
        prop_assert_eq!(json(&a), json(&b));
    }
}

/// With gaps, driven at `next_tick()`: a stage that ends on its own (not rolled back, not
/// halted for its unobserved time) has observed exactly its planned duration; a stage halted
/// for its unobserved time had more than its limit and every other had at most its limit;
/// each stage starts when the previous one ended.
fn check_gaps(plan: &Plan, summary: &Summary) -> Result<(), TestCaseError> {
    for (k, st) in summary.stages.iter().enumerate() {
        let planned = plan.stages[k].duration.as_secs_f64();
        let limit = plan.max_unobserved_of(k).as_secs_f64();
        // Plan time is whole milliseconds: compare there, not in floating seconds.
        let ms = |s: f64| (s * 1000.0).round() as u64;
        if k + 1 < summary.stages.len() {
            prop_assert_eq!(
                ms(summary.stages[k + 1].started_s),
                ms(st.started_s) + ms(st.elapsed_s)
            );
        }
        let for_gaps = st
            .reasons
            .first()
            .is_some_and(|r| r.starts_with(&format!("Stage {} halted: ", st.index)));
        if for_gaps {
            prop_assert_eq!(st.decision, Some(Decision::Halt));
            prop_assert!(
                st.unobserved_s > limit,
                "stage {} halted within its limit",
                st.index
            );
            continue;
        }
        prop_assert!(
            st.unobserved_s <= limit,
            "stage {} went past its limit",
            st.index
        );
        if st.decision == Some(Decision::Rollback) {
            continue;
        }
        prop_assert_eq!(
            ms(st.elapsed_s) - ms(st.unobserved_s),
            ms(planned),
            "stage {} observed off its plan",
            st.index
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn gaps_keep_every_invariant_and_stages_observe_their_planned_time(
        spec in plan_spec(),
        feed in gappy_feed(),
    ) {
        let plan = spec.plan();
        let (log, engine) = drive(&plan, &feed);
        check(&plan, &log, &engine)?;
        check_gaps(&plan, &engine.summary())?;
    }

    #[test]
    fn irregular_ticks_keep_every_action_invariant(spec in plan_spec(), feed in irregular_feed()) {
        let plan = spec.plan();
        let (log, engine) = drive(&plan, &feed);
        check(&plan, &log, &engine)?;
    }
}
