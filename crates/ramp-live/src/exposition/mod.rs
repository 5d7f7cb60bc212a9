//! The controller's own metrics, served as `GET /metrics` on the control API.
//!
//! The driver publishes here and the control API's handler only renders: a scrape never goes
//! through the driver's action channel, so it can neither wait for a tick nor delay one.
//! After every engine step the driver publishes a [`Published`] view of the engine (state,
//! stage, weights, gates, the last rollback), and it counts events as they happen
//! (decisions, rollbacks, gaps, journal writes, metric-source reads). Counters start at zero
//! with the process, as Prometheus expects of counters; a resumed run's replayed inputs are
//! not counted again.

mod published;
mod render;
mod source;

pub use published::{Published, RolloutState};
pub use source::{Instrumented, SourceKind};

use ramp_core::engine::{Action, Engine, Input};
use ramp_core::summary::Decision;
use ramp_flags::exposition::{Counter, Histogram, DURATION_BOUNDS};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// The registry the driver publishes to and `GET /metrics` renders; shared as an `Arc`.
#[derive(Debug)]
pub struct ControllerMetrics {
    /// The engine's latest view, `None` until the run is open.
    view: Mutex<Option<Published>>,
    /// The canary weight the router reported at the last reading (basis points), or
    /// `u32::MAX` before any.
    router_bp: AtomicU32,
    /// Stage decisions by kind, in [`DECISIONS`] order.
    decisions: [Counter; 4],
    /// Rollbacks initiated.
    rollbacks: Counter,
    /// Gap inputs fed (time declared unobserved).
    gaps: Counter,
    /// Milliseconds of time declared unobserved.
    unobserved_ms: Counter,
    /// Journal writes that succeeded and that failed.
    journal_writes: Counter,
    /// Journal writes that failed.
    journal_errors: Counter,
    /// Metric-source reads by kind of source and result, in [`SourceKind::ALL`] order.
    source_reads: [[Counter; 2]; SourceKind::ALL.len()],
    /// Metric-source read durations by kind of source.
    source_durations: [Histogram; SourceKind::ALL.len()],
}

/// Every decision, in the order the counters hold them.
const DECISIONS: [Decision; 4] = [
    Decision::Proceed,
    Decision::Monitor,
    Decision::Halt,
    Decision::Rollback,
];

impl Default for ControllerMetrics {
    fn default() -> Self {
        Self {
            view: Mutex::new(None),
            router_bp: AtomicU32::new(u32::MAX),
            decisions: Default::default(),
            rollbacks: Counter::default(),
            gaps: Counter::default(),
            unobserved_ms: Counter::default(),
            journal_writes: Counter::default(),
            journal_errors: Counter::default(),
            source_reads: Default::default(),
            source_durations: std::array::from_fn(|_| Histogram::new(DURATION_BOUNDS)),
        }
    }
}

impl ControllerMetrics {
    /// Publishes the engine's state now; `onset_s` is a rehearsal's fault onset (plan
    /// seconds), when one was injected, from which the last rollback's detection delay is
    /// measured.
    pub fn publish(&self, engine: &Engine, onset_s: Option<f64>) {
        let view = Published::of(engine, onset_s);
        if let Ok(mut slot) = self.view.lock() {
            *slot = Some(view);
        }
    }

    /// Records the weight the router reported applying at a reading.
    pub fn router_weight(&self, canary_bp: u32) {
        self.router_bp.store(canary_bp, Ordering::Relaxed);
    }

    /// Counts an input about to be fed: a gap and its unobserved time.
    pub fn fed(&self, input: &Input) {
        if let Input::Gap {
            start_ms, end_ms, ..
        } = input
        {
            self.gaps.inc();
            self.unobserved_ms.add(end_ms.saturating_sub(*start_ms));
        }
    }

    /// Counts what the engine decided: decisions and rollbacks.
    pub fn acted(&self, actions: &[Action]) {
        for a in actions {
            match a {
                Action::StageDecided { decision, .. } => {
                    let i = DECISIONS.iter().position(|d| d == decision).unwrap_or(0);
                    self.decisions[i].inc();
                }
                Action::RollbackInitiated { .. } => self.rollbacks.inc(),
                Action::SetWeight(_)
                | Action::StageStarted { .. }
                | Action::Checkpoint(_)
                | Action::AwaitingApproval { .. }
                | Action::Finished(_) => {}
            }
        }
    }

    /// Counts one journal write by its result, and hands the result back.
    pub fn journaled<T, E>(&self, result: Result<T, E>) -> Result<T, E> {
        match &result {
            Ok(_) => self.journal_writes.inc(),
            Err(_) => self.journal_errors.inc(),
        }
        result
    }

    /// Counts one metric-source read.
    pub(crate) fn source_read(&self, kind: SourceKind, ok: bool, took: std::time::Duration) {
        let k = kind.index();
        self.source_reads[k][usize::from(!ok)].inc();
        self.source_durations[k].observe(took);
    }

    /// The page `GET /metrics` answers with.
    pub fn render(&self) -> String {
        let view = self.view.lock().ok().and_then(|v| v.clone());
        render::page(self, view.as_ref())
    }
}
