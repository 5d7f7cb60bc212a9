//! Ramp's core: the plan model and its validation, gates, and the pure rollout engine.
//!
//! **Architecture Invariant:** nothing in this crate reads a clock, sleeps, spawns a thread,
//! does I/O (beyond `load::load_plan` reading the plan file) or draws a random number. The
//! engine is fed plan time and observations and returns actions; the same code decides in
//! simulation and in live runs.

pub mod argv;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod load;
pub mod plan;
pub mod promql;
pub mod recovery;
pub mod summary;
pub mod units;

pub use load::{load_plan, parse_plan, PlanError, PlanErrors};
pub use plan::*;
pub use units::{parse_rate, PlanTime, Span, Weight};
