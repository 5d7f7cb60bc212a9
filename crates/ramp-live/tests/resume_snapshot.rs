//! Bounded replay (issue 15): a resumed run restores the engine's latest journaled snapshot
//! and replays only the inputs after it, ending as a full replay would; a snapshot that
//! cannot be used (garbage, another plan) is ignored, said so, and every input replayed.
//!
//! The live tests run real demo upstreams, Ramp's proxy and open-loop load on loopback, in
//! one process, as tests/live.rs does; the others check `replay_run` on journals written
//! the way the driver writes them.

#![allow(
    clippy::disallowed_methods,
    reason = "the tests time the live driver against the real clock"
)]

use ramp_core::engine::{Action, Engine, Input};
use ramp_core::summary::Outcome;
use ramp_core::{parse_plan, Plan, PlanTime};
use ramp_demo::{Behaviour, LoadConfig, Stack};
use ramp_live::driver::{encode_snapshot, replay_run, run_plan};
use ramp_live::{ProxyAdmin, RunConfig, RunEnd};
use ramp_stats::{CohortStats, Slot};
use ramp_store::Journal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Two upstreams, the proxy and load, all on loopback, stopped on drop.
struct Rig {
    /// The upstreams and the proxy; dropping it stops them and the load.
    _stack: Stack,
    /// The proxy's admin API.
    admin: SocketAddr,
}

impl Rig {
    async fn start(rps: f64) -> Rig {
        let stack = Stack::start(
            Behaviour::new("stable", 5.0, 10.0, 15.0, 0.0).unwrap(),
            Behaviour::new("canary", 5.0, 10.0, 15.0, 0.0).unwrap(),
            |_| {},
        )
        .await
        .unwrap();
        let mut load = LoadConfig::new(stack.proxy_addr, rps);
        load.seed = 7;
        tokio::spawn(ramp_demo::run_load(load, stack.stopped()));
        Rig {
            admin: stack.admin_addr,
            _stack: stack,
        }
    }

    async fn config(&self, plan: &str, journal: &std::path::Path) -> RunConfig {
        RunConfig {
            plan: Arc::new(parse(plan)),
            plan_path: "test.toml".into(),
            plan_text: plan.into(),
            base_dir: ".".into(),
            journal: journal.to_path_buf(),
            router: ProxyAdmin::new(&format!("http://{}", self.admin), None)
                .unwrap()
                .into(),
            control_listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            control_token: None,
            metrics_token: None,
            rehearsal: None,
            ofrep_listener: None,
            ofrep_token: None,
            halt_on_interrupt: None,
            new_run: false,
            fence: ramp_live::seams::FenceToken::none(),
        }
    }
}

fn parse(text: &str) -> Plan {
    parse_plan(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// Three short stages with checkpoints, gates only a broken canary fails (a CPU-starved
/// machine's latency must not end the run early).
const PLAN: &str = r#"
[deployment]
id = "snapshot-test"
service = "svc"
environment = "test"

[gates]
evaluate_every = "1s"
window = "3s"
min_samples = 10
p99_ms = { max = 30000 }
error_rate = { max = "50%" }

[[stages]]
weight = 10
duration = "4s"
checkpoint = "2s"

[[stages]]
weight = 50
duration = "4s"
checkpoint = "2s"

[[stages]]
weight = 100
duration = "3s"
checkpoint = "3s"
"#;

/// Runs the plan for `secs` seconds and interrupts it; returns the journal's run.
async fn interrupted(rig: &Rig, journal: &std::path::Path, secs: u64) -> ramp_store::RunRecord {
    let config = rig.config(PLAN, journal).await;
    let end = ramp_live::run(
        config,
        &mut |_| {},
        tokio::time::sleep(Duration::from_secs(secs)),
    )
    .await
    .unwrap();
    assert!(matches!(end, RunEnd::Interrupted { .. }));
    let j = Journal::open(journal).unwrap();
    j.run(1).unwrap().expect("run 1 is journaled")
}

/// Resumes the run to its end; returns its progress lines and summary.
async fn resume(
    rig: &Rig,
    journal: &std::path::Path,
) -> (Vec<String>, ramp_core::summary::Summary) {
    let config = rig.config(PLAN, journal).await;
    let mut lines = Vec::new();
    let mut on = |p: ramp_live::Progress<'_>| {
        if let ramp_live::Progress::Line(_, l) = p {
            lines.push(l)
        }
    };
    let end = tokio::time::timeout(
        Duration::from_secs(60),
        ramp_live::run(config, &mut on, std::future::pending()),
    )
    .await
    .expect("the resumed run ends within a minute")
    .unwrap();
    let RunEnd::Finished { summary, run_id } = end else {
        panic!("not finished")
    };
    assert_eq!(run_id, 1, "the same run continued");
    (lines, *summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_replays_only_the_inputs_after_the_latest_snapshot() {
    let rig = Rig::start(100.0).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.db");
    // Interrupted 6 s in: in stage 2, after its start's snapshot at least.
    let run = interrupted(&rig, &journal, 6).await;
    let (inputs, snapshot) = {
        let j = Journal::open(&journal).unwrap();
        let snapshot = j
            .latest_snapshot(1)
            .unwrap()
            .expect("a snapshot was journaled");
        (j.inputs(1).unwrap().len() as u64, snapshot)
    };
    assert!(snapshot.after_seq > 1 && snapshot.after_seq <= inputs);
    // The replay from the snapshot rebuilds what the full replay does.
    let store = Journal::open(&journal).unwrap();
    let full = replay_run(&store, &run, false).unwrap();
    let bounded = replay_run(&store, &run, true).unwrap();
    assert_eq!(full.inputs as u64, inputs);
    assert_eq!(bounded.inputs as u64, inputs - snapshot.after_seq);
    assert_eq!(
        (full.last_seq, full.last_end_ms, full.rollout_start_ms),
        (
            bounded.last_seq,
            bounded.last_end_ms,
            bounded.rollout_start_ms
        )
    );
    assert_eq!(
        serde_json::to_string(&full.engine.summary()).unwrap(),
        serde_json::to_string(&bounded.engine.summary()).unwrap()
    );

    let (lines, summary) = resume(&rig, &journal).await;
    let expected = format!(
        "{} journaled inputs replayed after it",
        inputs - snapshot.after_seq
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Resumed run 1")
            && l.contains("from the snapshot at")
            && l.contains(&expected)),
        "{lines:#?}"
    );
    assert_eq!(summary.outcome, Outcome::Promoted, "{:#?}", summary.stages);
    // The finished run, replayed in full and from its latest snapshot, ends as it ended.
    let run = store.run(1).unwrap().expect("run 1");
    let full = replay_run(&store, &run, false).unwrap().engine.summary();
    let bounded = replay_run(&store, &run, true).unwrap();
    assert!(bounded.snapshot.is_some());
    let bounded = bounded.engine.summary();
    assert_eq!(
        serde_json::to_string(&full).unwrap(),
        serde_json::to_string(&bounded).unwrap()
    );
    assert_eq!(
        serde_json::to_string(&summary.stages).unwrap(),
        serde_json::to_string(&full.stages).unwrap()
    );
    assert_eq!(summary.outcome, full.outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_snapshot_is_ignored_and_every_input_replayed() {
    let rig = Rig::start(100.0).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.db");
    interrupted(&rig, &journal, 6).await;
    let inputs = {
        let mut j = Journal::open(&journal).unwrap();
        let snapshot = j
            .latest_snapshot(1)
            .unwrap()
            .expect("a snapshot was journaled");
        j.append_snapshot(1, snapshot.after_seq, snapshot.plan_ms, b"\x00garbage{")
            .unwrap();
        j.inputs(1).unwrap().len()
    };
    let (lines, summary) = resume(&rig, &journal).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("snapshot of run 1 is not used") && l.contains("cannot be read")),
        "{lines:#?}"
    );
    let expected = format!(
        "Resumed run 1 of snapshot-test from {}: {inputs} journaled inputs replayed,",
        journal.display()
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&expected)),
        "{expected}\n{lines:#?}"
    );
    assert_eq!(summary.outcome, Outcome::Promoted, "{:#?}", summary.stages);
}

/// A journal written as the driver writes one, without a controller: a run of `PLAN` fed
/// steady slots for `secs` seconds, snapshots at stage starts and checkpoints encoded with
/// the fingerprint of `snapshot_plan` (the run's own plan text, or another).
fn journal_of(path: &std::path::Path, secs: u64, snapshot_plan: &str) -> ramp_store::RunRecord {
    let mut j = Journal::open(path).unwrap();
    let run_id = j
        .begin_run("snapshot-test", "test.toml", PLAN, 1_765_000_000_000)
        .unwrap();
    let run = j.run(run_id).unwrap().unwrap();
    let plan = run_plan(&run).unwrap();
    let mut engine = Engine::new(plan);
    let (mut input, mut t, mut last_end) = (Input::Start, 0u64, 0u64);
    while t < secs * 1000 {
        let body = serde_json::to_string(&input).unwrap();
        let seq = j.append_input(run_id, t, "input", &body, None).unwrap();
        let actions = engine.step(PlanTime(t), input);
        if actions
            .iter()
            .any(|a| matches!(a, Action::StageStarted { .. } | Action::Checkpoint(_)))
        {
            let bytes = encode_snapshot(&engine, snapshot_plan, last_end).unwrap();
            j.append_snapshot(run_id, seq, t, &bytes).unwrap();
        }
        let next = engine.next_tick().0;
        let cohort = |n: u64| {
            let mut c = CohortStats::new();
            for i in 0..n {
                c.latency.record(5.0 + i as f64);
            }
            c.requests = n;
            c
        };
        input = Input::Tick(Slot {
            start_ms: last_end,
            end_ms: next,
            canary: cohort(20),
            stable: cohort(80),
        });
        (t, last_end) = (next, next);
    }
    // An operator's pause after the last snapshot: replayed, and it moves no slot's end.
    let pause = Input::Pause {
        who: "ops".into(),
        reason: "a look".into(),
    };
    let body = serde_json::to_string(&pause).unwrap();
    j.append_input(run_id, t, "pause", &body, None).unwrap();
    run
}

#[test]
fn a_snapshot_of_another_plan_is_ignored_and_every_input_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let run = journal_of(&path, 7, &format!("{PLAN}\n# edited\n"));
    let store = Journal::open(&path).unwrap();
    let all = store.inputs(run.run_id).unwrap().len();
    let r = replay_run(&store, &run, true).unwrap();
    assert!(r.snapshot.is_none());
    let why = r.ignored.expect("the snapshot is said to be ignored");
    assert!(why.contains("another plan"), "{why}");
    assert_eq!(r.inputs, all);
}

#[test]
fn a_journal_written_like_the_driver_replays_alike_from_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let run = journal_of(&path, 7, PLAN);
    let store = Journal::open(&path).unwrap();
    let snapshot = store.latest_snapshot(run.run_id).unwrap().unwrap();
    let full = replay_run(&store, &run, false).unwrap();
    let bounded = replay_run(&store, &run, true).unwrap();
    assert_eq!(bounded.ignored, None);
    assert_eq!(bounded.inputs as u64, full.last_seq - snapshot.after_seq);
    assert_eq!(
        (full.last_seq, full.last_end_ms, full.rollout_start_ms),
        (
            bounded.last_seq,
            bounded.last_end_ms,
            bounded.rollout_start_ms
        )
    );
    assert!(full.engine.paused().is_some());
    assert_eq!(full.engine.paused(), bounded.engine.paused());
    assert_eq!(
        serde_json::to_string(&full.engine.summary()).unwrap(),
        serde_json::to_string(&bounded.engine.summary()).unwrap()
    );
}
