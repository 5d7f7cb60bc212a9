//! Entry point for the coverage-guided fuzzer of the control API's request bodies (`fuzz/`,
//! target `control`), and the replay of its seed corpus in this crate's tests.
//!
//! Hidden from the documentation because it is a test harness, not an API; compiled into
//! every build so that the fuzzer (a separate workspace) and the replay test call the very
//! same code (see `docs/reliability.md`).

use crate::control::{parse_action, ActionBody, Verb};
use crate::status::StatusView;
use ramp_core::engine::{Engine, Input};
use ramp_core::{parse_plan, PlanTime, Weight};
use std::sync::{Arc, OnceLock};

/// A rollout whose later stages wait for approvers, so that `approve` (with or without a
/// stage) and `promote` have something to decide.
const PLAN: &str = r#"
[deployment]
id = "fuzz-control"
service = "fuzz"
environment = "test"

[gates]
window = "1m"
min_samples = 10
error_rate = { max = "1%" }

[[stages]]
weight = 5
duration = "10m"
checkpoint = "5m"

[[stages]]
weight = 50
duration = "10m"
checkpoint = "5m"
approvals = ["alice", "bob"]

[[stages]]
weight = 100
duration = "10m"
checkpoint = "5m"
approvals = ["alice"]
"#;

/// The engines an action is tried on: before the start, and with the first stage running.
fn engines() -> &'static [Engine; 2] {
    static ENGINES: OnceLock<[Engine; 2]> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let plan = Arc::new(parse_plan(PLAN, "fuzz.toml").expect("the fuzzing plan is valid"));
        let pending = Engine::new(plan);
        let mut running = pending.clone();
        running.step(PlanTime::ZERO, Input::Start);
        [pending, running]
    })
}

/// The engine input of an operator's verb, as the driver builds it.
fn input(verb: &Verb, body: ActionBody) -> Input {
    let ActionBody {
        who,
        reason,
        full,
        stage,
    } = body;
    match verb {
        Verb::Pause => Input::Pause { who, reason },
        Verb::Resume => Input::Resume { who, reason },
        Verb::Promote => Input::Promote { who, reason, full },
        Verb::Abort => Input::Abort { who, reason },
        Verb::Approve => Input::Approve { who, reason, stage },
    }
}

/// Whether a body keeps the documented limits: a `who` of 1 to 200 characters that is not
/// blank, a `reason` of at most 2000 characters.
fn within_limits(body: &ActionBody) -> bool {
    !body.who.trim().is_empty()
        && body.who.chars().count() <= 200
        && body.reason.chars().count() <= 2000
}

/// Fuzzes the body of a control API action (`POST /pause`, `/resume`, `/promote`, `/abort`,
/// `/approve`): `control::parse_action`, as the handler reads it.
///
/// A body is accepted exactly when it is an action document within the documented limits;
/// an accepted one reads back unchanged from what `ramp` itself would send for it, and, as
/// every verb, is taken by the engine (pending or running) without a panic, and the status
/// the driver answers with can be built afterwards.
pub fn control_body(data: &[u8]) {
    let body = match parse_action(data) {
        Ok(body) => body,
        Err(why) => {
            assert!(!why.is_empty() && !why.contains('\n'), "{why:?}");
            if let Ok(body) = serde_json::from_slice::<ActionBody>(data) {
                assert!(!within_limits(&body), "refused within the limits: {body:?}");
            }
            return;
        }
    };
    assert!(within_limits(&body), "accepted beyond the limits: {body:?}");
    let sent = serde_json::to_vec(&body).expect("an action serializes");
    assert_eq!(
        parse_action(&sent).as_ref(),
        Ok(&body),
        "what ramp sends reads back"
    );
    for verb in [
        Verb::Pause,
        Verb::Resume,
        Verb::Promote,
        Verb::Abort,
        Verb::Approve,
    ] {
        for engine in engines() {
            let mut engine = engine.clone();
            let now = PlanTime::from_secs(30);
            engine.step(now, input(&verb, body.clone()));
            assert!(engine.weight() <= Weight::FULL);
            let _ = StatusView::of(&engine, 1, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::control::parse_action;
    use std::path::Path;

    #[test]
    fn a_refusal_stays_on_one_line() {
        // Found by the `control` fuzzer (fuzz/corpus/control/regression-line-break-in-key.json):
        // serde names an unknown key as the client wrote it, so a key with an escaped line
        // break broke the 400 answer's one line.
        let why = parse_action(br#"{"\n""#).unwrap_err();
        assert!(!why.contains('\n'), "{why:?}");
        assert!(
            why.starts_with("invalid body: unknown field `\\n`"),
            "{why:?}"
        );
    }

    #[test]
    fn the_limits_count_characters_as_the_refusal_says() {
        // Found while writing `control_body`'s check (its seed is
        // fuzz/corpus/control/regression-limits-in-characters.json): the limits counted
        // bytes, so a name of 101 `é` (202 bytes) was refused as longer than 200 characters.
        let who = "é".repeat(200);
        let reason = "✓".repeat(2000);
        let body = format!(r#"{{"who": "{who}", "reason": "{reason}"}}"#);
        let action = parse_action(body.as_bytes()).expect("within the limits");
        assert_eq!((action.who, action.reason), (who.clone(), reason));
        let body = format!(r#"{{"who": "{who}é"}}"#);
        assert!(parse_action(body.as_bytes()).is_err(), "201 characters");
    }

    #[test]
    fn replays_the_control_corpus() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/control");
        let mut seeds = 0;
        for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            super::control_body(&std::fs::read(file.unwrap().path()).unwrap());
            seeds += 1;
        }
        assert!(seeds > 0, "{} has no seeds", dir.display());
    }
}
