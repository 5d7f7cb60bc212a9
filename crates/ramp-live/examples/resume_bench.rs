//! Resume time for the staging plan's 31 h of slots: the full replay against the replay
//! from the latest engine snapshot (issue 15). Run by `scripts/bench-resume.sh`; the
//! figures are in docs/benchmarks.md, "Resume from a snapshot".
//!
//! It journals a whole run of examples/phase8-staging.toml into a SQLite journal the way a
//! live driver does: `Start`, then one slot per evaluation interval (5 s) of simulated
//! traffic at the plan's baseline (125 req/s, log-normal latencies around its p50, 0.3 %
//! errors) split by the stage's weight, every input appended before the engine sees it, and
//! an engine snapshot journaled at every stage start and checkpoint with the driver's own
//! encoding. It stops one interval before the last stage ends (the run still running, an
//! hour after the last checkpoint: the longest replay after a snapshot this plan has), then
//! times `ramp_live::driver::replay_run` both ways, checking that both rebuild the same
//! engine (same summary, same last input, same end of the last slot).
//!
//! Usage: `resume_bench [--runs N] [--dir DIR]` (DIR holds the journal; a temporary
//! directory by default).

#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark times the replays with the wall clock"
)]

use ramp_core::engine::{Action, Engine, Input, State};
use ramp_live::driver::{encode_snapshot, replay_run, run_plan};
use ramp_live::seams::JournalStore;
use ramp_stats::{CohortStats, Slot};
use ramp_store::Journal;
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64*): the same journal on every machine.
struct Rng(u64);

impl Rng {
    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// One cohort's traffic over `ms` at `rps`: log-normal latencies with the staging
/// baseline's median (145 ms) and a p95 near 385 ms, 0.3 % errors.
fn cohort(rng: &mut Rng, rps: f64, ms: u64) -> CohortStats {
    let mut c = CohortStats::new();
    let n = (rps * ms as f64 / 1000.0).round() as u64;
    for _ in 0..n {
        // A sum of four uniforms, scaled to unit variance: near enough to normal.
        let z = ((0..4).map(|_| rng.unit()).sum::<f64>() - 2.0) * 3f64.sqrt();
        c.latency.record(145.0 * (0.59 * z).exp());
        c.requests += 1;
        if rng.unit() < 0.003 {
            c.errors += 1;
        }
    }
    c
}

/// The median of some durations.
fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut runs, mut dir) = (5usize, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().ok_or("--runs needs a number")?.parse()?,
            "--dir" => dir = Some(std::path::PathBuf::from(args.next().ok_or("--dir")?)),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let tmp = tempfile::tempdir_in(dir.unwrap_or_else(std::env::temp_dir))?;
    let path = tmp.path().join("journal.db");
    let plan_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/phase8-staging.toml"
    );
    let plan_text = std::fs::read_to_string(plan_path)?;
    let mut journal = Journal::open(&path)?;
    let run_id = journal.begin_run("bench", plan_path, &plan_text, 1_765_000_000_000)?;
    let run = journal.run(run_id)?.ok_or("the run is missing")?;
    let plan = run_plan(&run)?;
    let end_ms: u64 = plan.stages.iter().map(|s| s.duration.0).sum();

    // Journal the run as a live driver would.
    let built = Instant::now();
    let mut engine = Engine::new(plan.clone());
    let mut rng = Rng(15);
    let (mut snapshots, mut snapshot_bytes) = (0usize, 0usize);
    let (mut last_end_ms, mut input, mut t) = (0u64, Input::Start, 0u64);
    loop {
        let body = serde_json::to_string(&input)?;
        let kind = if matches!(input, Input::Start) {
            "start"
        } else {
            "tick"
        };
        let seq = journal.append_input(run_id, t, kind, &body, None)?;
        let actions = engine.step(ramp_core::PlanTime(t), input);
        if actions
            .iter()
            .any(|a| matches!(a, Action::StageStarted { .. } | Action::Checkpoint(_)))
        {
            let bytes = encode_snapshot(&engine, &plan_text, last_end_ms)?;
            journal.append_snapshot(run_id, seq, t, &bytes)?;
            snapshots += 1;
            snapshot_bytes = bytes.len();
        }
        let next = engine.next_tick().0;
        if next >= end_ms || !matches!(engine.state(), State::Running { .. }) {
            break;
        }
        let share = engine.weight().share();
        let slot = Slot {
            start_ms: last_end_ms,
            end_ms: next,
            canary: cohort(&mut rng, 125.0 * share, next - last_end_ms),
            stable: cohort(&mut rng, 125.0 * (1.0 - share), next - last_end_ms),
        };
        (last_end_ms, t, input) = (next, next, Input::Tick(slot));
    }
    let inputs = journal.inputs(run_id)?.len();
    let latest = journal.latest_snapshot(run_id)?.ok_or("no snapshot")?;
    println!(
        "journal: {inputs} inputs over {:.2} h of plan time, {snapshots} snapshots written (the last {snapshot_bytes} bytes, after input {}), {:.1} MB, built in {:.1} s",
        t as f64 / 3.6e6,
        latest.after_seq,
        std::fs::metadata(&path)?.len() as f64 / 1e6,
        built.elapsed().as_secs_f64()
    );

    // Time both replays, alternating, on a journal opened afresh as a resuming controller
    // opens it.
    let store = Journal::open(&path)?;
    let store: &dyn JournalStore = &store;
    let (mut full, mut bounded) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let start = Instant::now();
        let a = replay_run(store, &run, false)?;
        full.push(start.elapsed());
        let start = Instant::now();
        let b = replay_run(store, &run, true)?;
        bounded.push(start.elapsed());
        let same = serde_json::to_string(&a.engine.summary())?
            == serde_json::to_string(&b.engine.summary())?
            && (a.last_seq, a.last_end_ms, a.rollout_start_ms)
                == (b.last_seq, b.last_end_ms, b.rollout_start_ms)
            && b.snapshot.is_some();
        if !same {
            return Err("the replay from the snapshot differs from the full replay".into());
        }
        println!(
            "full replay: {} inputs in {:.1} ms; from the snapshot at {}: {} inputs in {:.1} ms",
            a.inputs,
            full.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
            b.snapshot.unwrap_or_default(),
            b.inputs,
            bounded.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        );
    }
    let (f, b) = (median(full), median(bounded));
    println!(
        "median of {runs}: full replay {:.1} ms, from the snapshot {:.1} ms ({:.0}x faster)",
        f.as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3,
        f.as_secs_f64() / b.as_secs_f64().max(1e-9)
    );
    Ok(())
}
