//! Issue 14: what a rollout through a router did to real traffic, measured by the upstreams.
//!
//! A `ramp run` child drives the router; this module watches the router's weight from the
//! test process (a thread polling it), and at every change reads what the two upstreams have
//! served, so that each weight the rollout held gets the canary's share of the requests served
//! meanwhile. A change takes a moment to reach every request (nginx reloads its workers,
//! requests already in flight finish where they were sent), so each segment's counts start a
//! short settling time after the change was seen and end when the next one is.

use super::integrity::Upstreams;
use super::support::{Work, WAIT};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the router's weight is read.
const POLL: Duration = Duration::from_millis(25);

/// How long after a change was seen its segment's counts start.
const SETTLE: Duration = Duration::from_millis(300);

/// One weight the router held: its canary basis points, how long it was held, and what the
/// upstreams served meanwhile (after the settling time).
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// The canary's weight, basis points.
    pub weight_bp: u32,
    /// How long the router held it, as seen by the poller.
    pub held: Duration,
    /// Requests the stable upstream served in the segment.
    pub stable: u64,
    /// Requests the canary upstream served in the segment.
    pub canary: u64,
}

impl Segment {
    /// The canary's share of the segment's requests, percent.
    pub fn share(&self) -> f64 {
        100.0 * self.canary as f64 / (self.stable + self.canary).max(1) as f64
    }

    /// The segment's requests.
    pub fn requests(&self) -> u64 {
        self.stable + self.canary
    }
}

/// A thread reading the router's weight until stopped; [`Watch::stop`] returns the segments.
pub struct Watch {
    /// Tells the thread to stop.
    stop: Arc<AtomicBool>,
    /// The thread, which returns the segments.
    thread: Option<JoinHandle<Vec<Segment>>>,
}

impl Watch {
    /// Starts watching: `weight` reads the router's canary weight in basis points (`None`
    /// while it cannot be read), `served` what (stable, canary) served so far.
    pub fn start(
        weight: impl FnMut() -> Option<u32> + Send + 'static,
        served: impl Fn() -> (u64, u64) + Send + 'static,
    ) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || watch(weight, served, &stop2));
        Watch {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops watching; every weight held since the start, in order.
    pub fn stop(mut self) -> Vec<Segment> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("the weight watcher"))
            .unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The watcher's loop.
fn watch(
    mut weight: impl FnMut() -> Option<u32>,
    served: impl Fn() -> (u64, u64),
    stop: &AtomicBool,
) -> Vec<Segment> {
    let mut segments = Vec::new();
    // The weight in force, when it was seen, and the counts its segment starts from.
    let mut current: Option<(u32, Instant, (u64, u64))> = None;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let now = weight();
        let changed = match (now, &current) {
            (Some(bp), Some((held, ..))) => bp != *held,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if changed || stopping {
            let end = served();
            if let Some((bp, since, start)) = current.take() {
                segments.push(Segment {
                    weight_bp: bp,
                    held: since.elapsed(),
                    stable: end.0.saturating_sub(start.0),
                    canary: end.1.saturating_sub(start.1),
                });
            }
            if stopping {
                // A weight first seen as the watch stops (the rollback's 0 % read in the same
                // turn as the stop) still ends the record, with no time or requests of its own:
                // without it the record ended on the weight before.
                if let (true, Some(bp)) = (changed, now) {
                    segments.push(Segment {
                        weight_bp: bp,
                        held: Duration::ZERO,
                        stable: 0,
                        canary: 0,
                    });
                }
                return segments;
            }
            if let Some(bp) = now {
                let since = Instant::now();
                std::thread::sleep(SETTLE);
                current = Some((bp, since, served()));
            }
        }
        std::thread::sleep(POLL);
    }
}

/// `ramp run plan.toml --journal j.db --json {json}` in `w` to its end while a [`Watch`]
/// records the router's weights: the exit code, the JSON summary, the segments and the
/// controller's output (for failure messages).
pub fn run(
    w: &Work,
    json: &str,
    weight: impl FnMut() -> Option<u32> + Send + 'static,
    served: impl Fn() -> (u64, u64) + Send + 'static,
) -> (i32, Value, Vec<Segment>, String) {
    let mut ctl = w.spawn(
        "run",
        &["run", "plan.toml", "--journal", "j.db", "--json", json],
    );
    let watch = Watch::start(weight, served);
    let code = ctl.wait(WAIT);
    let segments = watch.stop();
    (code, w.json(json), segments, ctl.describe())
}

/// A reader of what the upstreams served: (stable, canary).
pub fn served_by(up: &Upstreams) -> impl Fn() -> (u64, u64) + Send + Clone + 'static {
    let (s, c) = (Arc::clone(&up.stable_served), Arc::clone(&up.canary_served));
    move || (s.served().requests, c.served().requests)
}

/// Holds each stage's share to its weight. `stages` are the plan's weights (percent) in
/// order; each must appear, in order, as a segment served at least `min_rps` requests a
/// second (so that the load really flowed through the router), and its measured share must
/// be within the bound. Returns (weight, share, requests) per stage.
pub fn assert_stage_shares(
    segments: &[Segment],
    stages: &[f64],
    min_rps: f64,
) -> Vec<(f64, f64, u64)> {
    let mut found = Vec::new();
    let mut rest = segments.iter();
    for &weight in stages {
        let bp = (weight * 100.0).round() as u32;
        let seg = rest
            .find(|s| s.weight_bp.abs_diff(bp) <= 50)
            .unwrap_or_else(|| panic!("no segment at {weight} % in {segments:#?}"));
        let (share, n) = (seg.share(), seg.requests());
        // Routing is per request (weighted round robin, or random for Ramp's proxy without a
        // user header), so the share over n requests spreads at most binomially: about 0.7
        // points at 20 % over 3,000. The bound is ±2 points or four standard deviations,
        // whichever is wider, the same as the in-process fleet test's.
        let p = weight / 100.0;
        let spread = 100.0 * 4.0 * (p * (1.0 - p) / n.max(1) as f64).sqrt();
        let bound = spread.max(2.0);
        assert!(
            (share - weight).abs() <= bound,
            "stage at {weight} % (held {:?}): the upstreams saw {share:.2} % canary of {n} requests (bound ±{bound:.2} points); segments {segments:#?}",
            seg.held
        );
        let counted = seg.held.saturating_sub(SETTLE).as_secs_f64();
        assert!(
            n as f64 >= min_rps * counted,
            "stage at {weight} %: only {n} requests in {counted:.1} s; segments {segments:#?}"
        );
        found.push((weight, share, n));
    }
    found
}

/// The last segment: where the rollout left the router.
pub fn last(segments: &[Segment]) -> Segment {
    *segments.last().expect("the watcher saw a weight")
}

/// A plan for a router of another kind: `[deployment]`, `router` (the `[router]` table's
/// body), `metrics` (the `[metrics]` table, or empty), error-rate gates judged every second on
/// 3 s windows (no latency gate: HAProxy's counters have no latency), then `stages`.
pub fn plan(id: &str, router: &str, metrics: &str, stages: &str) -> String {
    format!(
        r#"[deployment]
id = "{id}"
service = "svc"
environment = "test"

[router]
{router}
{metrics}
[gates]
evaluate_every = "1s"
window = "3s"
min_samples = 10
error_rate = {{ max = "5%" }}
{stages}"#
    )
}

/// Three stages (20 % and 50 % for 8 s, 100 % for 3 s), a checkpoint every 4 s.
pub const STAGES: &str = r#"
[[stages]]
weight = 20
duration = "8s"
checkpoint = "4s"

[[stages]]
weight = 50
duration = "8s"
checkpoint = "4s"

[[stages]]
weight = 100
duration = "3s"
checkpoint = "3s"
"#;

/// The weights of [`STAGES`], percent.
pub const STAGE_WEIGHTS: [f64; 3] = [20.0, 50.0, 100.0];
