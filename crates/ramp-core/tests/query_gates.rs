//! The engine with query gates and coarse buckets at stage ends (issue 13, and the review of
//! it): a query gate's streak of failures followed by no data cannot hold a stage forever; a
//! latency whose coarse bucket holds the fail level never promotes a stage; a relative gate
//! on coarse buckets does not reject a canary the bounds cannot tell from stable.

use ramp_core::engine::{Action, Engine, Input, State};
use ramp_core::summary::{Decision, Outcome};
use ramp_core::{parse_plan, Plan, PlanTime};
use ramp_stats::{CohortStats, Histogram, Slot};
use std::sync::Arc;

/// A plan of two stages of 10 s, a p99 ceiling of 720 ms, and `extra` sections.
fn plan(extra: &str) -> Arc<Plan> {
    let text = format!(
        r#"
[deployment]
id = "q"
service = "s"
environment = "test"

[gates]
evaluate_every = "1s"
window = "5s"
min_samples = 10
p99_ms = {{ max = 720 }}

[[stages]]
weight = 50
duration = "10s"

[[stages]]
weight = 100
duration = "10s"
{extra}"#
    );
    Arc::new(parse_plan(&text, "q.toml").unwrap_or_else(|e| panic!("{e}\n{text}")))
}

/// `n` requests in a cohort measured with the `le` bounds 500 and 750 ms: `fast` of them
/// under 500 ms, the rest between 500 and 750 ms (recorded at 500 ms, as the Prometheus
/// source records them).
fn coarse(n: u64, fast: u64) -> CohortStats {
    let mut c = CohortStats::new();
    c.requests = n;
    c.latency.record_n(Histogram::index_of(0.0), fast);
    c.latency.record_n(Histogram::index_of(500.0), n - fast);
    c.coarse_bounds_us = Some(vec![500_000, 750_000]);
    c
}

/// Exact data: `n` requests of 100 ms.
fn exact(n: u64) -> CohortStats {
    let mut c = CohortStats::new();
    c.requests = n;
    c.latency.record_n(Histogram::index_of(100.0), n);
    c
}

/// Feeds one second of `canary`/`stable` ending at `t` s; returns the decisions taken.
fn tick(e: &mut Engine, t: u64, canary: CohortStats, stable: CohortStats) -> Vec<Decision> {
    let slot = Slot {
        start_ms: (t - 1) * 1000,
        end_ms: t * 1000,
        canary,
        stable,
    };
    decisions(e.step(PlanTime(t * 1000), Input::Tick(slot)))
}

fn decisions(actions: Vec<Action>) -> Vec<Decision> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::StageDecided { decision, .. } => Some(decision),
            _ => None,
        })
        .collect()
}

/// A query gate failing once, then without data for good: before the fix the stage end was
/// held while the streak lasted, which no data never ended, so the canary stayed at 50 %
/// for ever (the stage never ended). Now the end is held only as long as the gate's
/// remaining evaluations take, then the stage halts.
#[test]
fn a_failing_streak_then_no_data_halts_the_stage_instead_of_holding_it_for_ever() {
    let gate = "\n[metrics]\nurl = \"http://127.0.0.1:9090\"\n\n[[gates.query]]\nname = \"checkout\"\nquery = \"up\"\nmin = 0.95\ninterval = \"1s\"\nconsecutive = 3\n";
    let mut e = Engine::new(plan(gate));
    e.step(PlanTime(0), Input::Start);
    let query = |e: &mut Engine, t: u64, value: Option<f64>| {
        decisions(e.step(
            PlanTime(t * 1000),
            Input::Query {
                name: "checkout".into(),
                value,
                no_data: value.is_none().then(|| "no series".to_string()),
            },
        ))
    };
    let mut decided = Vec::new();
    for t in 1..=60 {
        decided.extend(tick(&mut e, t, exact(50), exact(50)));
        let value = match t {
            0..=8 => Some(0.99),
            9 => Some(0.5),
            _ => None,
        };
        decided.extend(query(&mut e, t, value));
        if matches!(e.state(), State::Finished(_)) {
            break;
        }
    }
    assert_eq!(decided, vec![Decision::Halt], "{:?}", e.summary().stages);
    assert_eq!(e.state(), State::Finished(Outcome::Halted));
    let stage = &e.summary().stages[0];
    assert!(stage.elapsed_s <= 13.0, "held {} s", stage.elapsed_s);
    assert!(
        stage.reasons[0].contains("beyond its fail level"),
        "{:?}",
        stage.reasons
    );
}

/// A p99 whose coarse bucket (500–750 ms) holds the 720 ms fail level is not evidence that
/// the canary is within it: before the fix the stage ended `monitor` and promoted.
#[test]
fn a_stage_whose_p99_bucket_holds_the_fail_level_halts() {
    let mut e = Engine::new(plan(""));
    e.step(PlanTime(0), Input::Start);
    let mut decided = Vec::new();
    for t in 1..=10 {
        // 2 % of requests between 500 and 750 ms: the p99 is somewhere in that bucket.
        decided.extend(tick(&mut e, t, coarse(100, 98), coarse(100, 98)));
    }
    assert_eq!(decided, vec![Decision::Halt]);
    let reasons = &e.summary().stages[0].reasons;
    assert!(
        reasons[0].contains("between 500 ms and 750 ms (bucket bounds)")
            && reasons[0].contains("never promotes without evidence"),
        "{reasons:?}"
    );
}

/// Canary and stable in the same coarse bucket cannot be told apart: a relative p99 gate
/// read each value at its bucket's lower bound before the fix, and its stable "high end"
/// was a lower bound too, so a canary one bucket up rolled back at "99.9 % confidence".
#[test]
fn a_relative_gate_on_coarse_buckets_rejects_only_what_the_bounds_show() {
    let relative =
        "\n[gates.relative]\np99_ms = { max = \"+10%\", window = \"5s\", min_samples = 10 }\n";
    let mut e = Engine::new(plan(relative));
    e.step(PlanTime(0), Input::Start);
    for t in 1..=4 {
        // The canary's p99 in the 500–750 ms bucket, stable's in the one below.
        let decided = tick(&mut e, t, coarse(100, 97), coarse(100, 100));
        assert!(decided.is_empty(), "rolled back at T+{t}s: {decided:?}");
    }
    assert!(matches!(e.state(), State::Running { .. }));
}
