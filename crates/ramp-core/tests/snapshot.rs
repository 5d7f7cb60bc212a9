//! Engine snapshots: an engine restored from a snapshot (encoded to bytes and read back)
//! must go on exactly as the engine that was snapshotted, byte for byte, and a snapshot that
//! does not fit (another version, another plan, garbage, a state the plan cannot hold) must
//! be refused rather than restored.
//!
//! Each run drives two engines in lockstep with the same inputs: one uninterrupted, and one
//! replaced by its own restored snapshot at every stage start and checkpoint (where a live
//! driver journals one). Their actions at every step, their next tick and their final
//! summaries must be identical.

use ramp_core::engine::{
    plan_fingerprint, Action, Engine, Input, Snapshot, SnapshotError, State, SNAPSHOT_VERSION,
};
use ramp_core::{parse_plan, Plan, PlanTime};
use ramp_stats::{CohortStats, Slot};
use std::sync::Arc;

/// A small deterministic generator (xorshift64*), so that the test needs no random crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// How the service behaves: requests per second, the canary's latency factor and error rate
/// from a plan time on (a regression), and the stable version's levels.
struct Service {
    rps: f64,
    regress_at_ms: u64,
    canary_latency: f64,
    canary_errors: f64,
}

/// One cohort's observations over `ms` at `rps`, latencies log-normal around 150 ms.
fn cohort(rng: &mut Rng, rps: f64, ms: u64, latency: f64, error_rate: f64) -> CohortStats {
    let mut c = CohortStats::new();
    let n = (rps * ms as f64 / 1000.0).round() as u64;
    for _ in 0..n {
        // A sum of uniforms is near normal; enough for a spread of latencies.
        let z = (0..4).map(|_| rng.unit()).sum::<f64>() - 2.0;
        c.latency.record(150.0 * latency * (0.9 * z).exp());
        c.requests += 1;
        if rng.unit() < error_rate {
            c.errors += 1;
        }
    }
    c
}

/// Feeds `input` at `t` to both engines and checks that they answer alike.
fn step_both(a: &mut Engine, b: &mut Engine, t: PlanTime, input: Input) -> Vec<Action> {
    let out_a = a.step(t, input.clone());
    let out_b = b.step(t, input);
    assert_eq!(
        format!("{out_a:?}"),
        format!("{out_b:?}"),
        "actions at {t:?}"
    );
    assert_eq!(a.next_tick(), b.next_tick());
    out_a
}

/// Drives a run of `plan` to its end (or `limit_ms`), restoring the second engine from its
/// own snapshot at every stage start and checkpoint; returns the outcome's summary JSON and
/// how many snapshots were restored.
fn lockstep(plan_text: &str, service: &Service, seed: u64, limit_ms: u64) -> (String, usize) {
    let plan: Arc<Plan> = match parse_plan(plan_text, "plan.toml") {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("the test plan is invalid: {e}"),
    };
    let mut rng = Rng(seed);
    let mut a = Engine::new(Arc::clone(&plan));
    let mut b = Engine::new(Arc::clone(&plan));
    let mut restored = 0;
    let mut last = PlanTime::ZERO;
    let mut actions = step_both(&mut a, &mut b, last, Input::Start);
    loop {
        if actions
            .iter()
            .any(|x| matches!(x, Action::StageStarted { .. } | Action::Checkpoint(_)))
        {
            let bytes = b
                .snapshot(plan_text)
                .encode()
                .expect("the snapshot encodes exactly");
            let back = Snapshot::decode(&bytes).expect("the snapshot decodes");
            b = Engine::restore(Arc::clone(&plan), plan_text, back).expect("it restores");
            restored += 1;
        }
        if matches!(a.state(), State::Finished(_)) || last.0 >= limit_ms {
            break;
        }
        let t = a.next_tick();
        let ms = t.0 - last.0;
        let share = a.weight().share();
        let regressed = t.0 >= service.regress_at_ms;
        let (lat, err) = if regressed {
            (service.canary_latency, service.canary_errors)
        } else {
            (1.0, 0.003)
        };
        let slot = Slot {
            start_ms: last.0,
            end_ms: t.0,
            canary: cohort(&mut rng, service.rps * share, ms, lat, err),
            stable: cohort(&mut rng, service.rps * (1.0 - share), ms, 1.0, 0.003),
        };
        actions = step_both(&mut a, &mut b, t, Input::Tick(slot));
        last = t;
    }
    let json_a = serde_json::to_string(&a.summary()).expect("the summary serializes");
    let json_b = serde_json::to_string(&b.summary()).expect("the summary serializes");
    assert_eq!(json_a, json_b, "the summaries differ");
    (json_a, restored)
}

/// The staging plan of examples/, four stages over 31 h, healthy.
#[test]
fn the_staging_plan_goes_on_identically_after_every_restore() {
    let text = include_str!("../../../examples/phase8-staging.toml");
    let healthy = Service {
        rps: 125.0,
        regress_at_ms: u64::MAX,
        canary_latency: 1.0,
        canary_errors: 0.003,
    };
    let (json, restored) = lockstep(text, &healthy, 7, 40 * 3_600_000);
    assert!(json.contains("\"promoted"), "{json}");
    assert!(restored > 10, "only {restored} snapshots");
}

/// Sequential tests (error counts and latency) and a relative gate, with a canary that turns
/// slow and faulty in stage 2: it is rolled back, and the restored engine does so on the
/// same tick with the same reasons.
#[test]
fn sequential_tests_and_a_rollback_go_on_identically_after_every_restore() {
    let text = r#"
[deployment]
id = "snap"
service = "checkout"
environment = "test"

[gates]
evaluate_every = "5s"
window = "5m"
min_samples = 100
p95_ms = { max = 2000 }
error_rate = { max = "20%" }
sequential.errors = { alpha = 0.005 }
sequential.latency = { alpha = 0.005 }
relative.p95_ms = { max = "+50%" }
burn_rate = { slo = "99%" }

[[stages]]
weight = 10
duration = "20m"
checkpoint = "5m"

[[stages]]
weight = 50
duration = "40m"
checkpoint = "10m"

[[stages]]
weight = 100
duration = "20m"
"#;
    let regression = Service {
        rps: 50.0,
        regress_at_ms: 30 * 60_000,
        canary_latency: 1.3,
        canary_errors: 0.02,
    };
    let (json, restored) = lockstep(text, &regression, 11, 3 * 3_600_000);
    assert!(json.contains("\"rolled_back\""), "{json}");
    assert!(restored >= 4, "only {restored} snapshots");
    // The same plan, healthy, promotes through every stage.
    let healthy = Service {
        rps: 50.0,
        regress_at_ms: u64::MAX,
        canary_latency: 1.0,
        canary_errors: 0.003,
    };
    let (json, _) = lockstep(text, &healthy, 12, 3 * 3_600_000);
    assert!(json.contains("\"promoted"), "{json}");
}

/// A plan the snapshots below are taken of, and an engine one stage in.
fn small() -> (String, Arc<Plan>, Engine) {
    let text = "[deployment]\nid = \"s\"\nservice = \"s\"\nenvironment = \"t\"\n\n\
                [gates]\nevaluate_every = \"5s\"\np95_ms = { max = 500 }\n\n\
                [[stages]]\nweight = 10\nduration = \"10m\"\n\n\
                [[stages]]\nweight = 100\nduration = \"10m\"\n"
        .to_string();
    let plan = Arc::new(parse_plan(&text, "s.toml").expect("the plan is valid"));
    let mut e = Engine::new(Arc::clone(&plan));
    let _ = e.step(PlanTime::ZERO, Input::Start);
    (text, plan, e)
}

#[test]
fn a_snapshot_of_another_plan_version_or_shape_is_refused() {
    let (text, plan, e) = small();
    let snapshot = e.snapshot(&text);
    assert_eq!(snapshot.version, SNAPSHOT_VERSION);
    assert_eq!(snapshot.plan, plan_fingerprint(&text));
    // Another plan's text (one byte more).
    let other = format!("{text}\n");
    assert_eq!(
        Engine::restore(Arc::clone(&plan), &other, snapshot.clone()).err(),
        Some(SnapshotError::OtherPlan)
    );
    // Garbage and truncated bytes.
    assert!(matches!(
        Snapshot::decode(b"\x00\x01not json"),
        Err(SnapshotError::Unreadable(_))
    ));
    let bytes = snapshot.encode().expect("it encodes");
    assert!(matches!(
        Snapshot::decode(&bytes[..bytes.len() / 2]),
        Err(SnapshotError::Unreadable(_))
    ));
    // Another format version, whatever its state looks like.
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    value["version"] = serde_json::json!(SNAPSHOT_VERSION + 1);
    value["state"] = serde_json::json!({"something": "else"});
    let newer = serde_json::to_vec(&value).expect("JSON");
    assert_eq!(
        Snapshot::decode(&newer).err(),
        Some(SnapshotError::Version {
            found: SNAPSHOT_VERSION + 1
        })
    );
    // A running stage the plan does not have: refused, not a panic later.
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    value["state"]["state"] = serde_json::json!({"Running": {"index": 7}});
    let damaged = Snapshot::decode(&serde_json::to_vec(&value).expect("JSON")).expect("decodes");
    assert!(matches!(
        Engine::restore(Arc::clone(&plan), &text, damaged),
        Err(SnapshotError::Inconsistent(_))
    ));
    // And the intact snapshot restores.
    let back = Snapshot::decode(&bytes).expect("it decodes");
    assert!(Engine::restore(plan, &text, back).is_ok());
}
