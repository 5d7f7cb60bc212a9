//! Entry point for the coverage-guided fuzzer of the plan loader (`fuzz/`, target `plan`),
//! and the replay of its seed corpus in this crate's tests.
//!
//! Hidden from the documentation because it is a test harness, not an API; compiled into
//! every build so that the fuzzer (a separate workspace) and the replay test call the very
//! same code (see `docs/reliability.md`).

use crate::engine::{Engine, Input, State};
use crate::plan::Plan;
use crate::{parse_plan, PlanTime, Weight};
use ramp_flags::located::LocatedError;
use ramp_stats::{CohortStats, Slot};
use std::sync::Arc;

/// The file name the fuzzed plans are reported under.
const FILE: &str = "fuzz.toml";

/// How many evaluation ticks an accepted plan is run for.
const TICKS: usize = 32;

/// Fuzzes `parse_plan`, as `ramp validate`, `ramp simulate` and `ramp run` read a plan.
///
/// A rejected text must have every error located inside it, one line each, in file order
/// (`ramp_flags::fuzzing::check_located`), and none in serde's words (the loader reports
/// unknown keys and wrong values itself, all at once, rather than stopping at the first:
/// `ramp_flags::fuzzing::check_no_serde_error`).
/// Bytes that are not UTF-8 are located as `load_plan` locates them. An accepted plan must be
/// runnable: the engine starts it, ticks it through quiet traffic, and takes every operator
/// action without a panic, never asking for more than 100 % of the traffic.
pub fn plan(data: &[u8]) {
    let source = match std::str::from_utf8(data) {
        Ok(source) => source,
        Err(e) => {
            let error = LocatedError::at_invalid_utf8(data, &e, FILE, "not UTF-8".into());
            let prefix = std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default();
            ramp_flags::fuzzing::check_located(prefix, FILE, &[error]);
            return;
        }
    };
    let plan = match parse_plan(source, FILE) {
        Ok(plan) => Arc::new(plan),
        Err(errors) => {
            ramp_flags::fuzzing::check_located(source, FILE, &errors.0);
            ramp_flags::fuzzing::check_no_serde_error(source, &errors.0);
            return;
        }
    };
    assert!(!plan.stages.is_empty(), "an accepted plan has stages");
    assert!(plan.stages.iter().all(|s| s.weight <= Weight::FULL));
    run(&plan);
}

/// Runs an accepted plan in the engine: start, [`TICKS`] quiet ticks, then each operator
/// action on a copy, approving every stage first.
fn run(plan: &Arc<Plan>) {
    let mut engine = Engine::new(plan.clone());
    engine.step(PlanTime::ZERO, Input::Start);
    for (index, stage) in plan.stages.iter().enumerate() {
        for who in &stage.approvals {
            let approve = Input::Approve {
                who: who.clone(),
                reason: String::new(),
                stage: Some(index + 1),
            };
            engine.step(PlanTime::ZERO, approve);
        }
    }
    for _ in 0..TICKS {
        if matches!(engine.state(), State::Finished(_)) {
            break;
        }
        let start = engine.now();
        let end = engine.next_tick();
        assert!(end > start, "the engine's clock does not move");
        let slot = Slot {
            start_ms: start.0,
            end_ms: end.0,
            canary: CohortStats::new(),
            stable: CohortStats::new(),
        };
        engine.step(end, Input::Tick(slot));
        assert!(engine.weight() <= Weight::FULL);
    }
    let who = || "fuzz".to_string();
    let reason = String::new;
    let actions = [
        Input::Pause {
            who: who(),
            reason: reason(),
        },
        Input::Resume {
            who: who(),
            reason: reason(),
        },
        Input::Promote {
            who: who(),
            reason: reason(),
            full: true,
        },
        Input::Abort {
            who: who(),
            reason: reason(),
        },
    ];
    for action in actions {
        let mut copy = engine.clone();
        let now = copy.now();
        copy.step(now, action);
        assert!(copy.weight() <= Weight::FULL);
        let _ = copy.summary();
    }
    let _ = engine.summary();
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn replays_the_plan_corpus() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/plan");
        let mut seeds = 0;
        for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            super::plan(&std::fs::read(file.unwrap().path()).unwrap());
            seeds += 1;
        }
        assert!(seeds > 0, "{} has no seeds", dir.display());
    }
}
