//! Ramp's measurement primitives: a mergeable latency sketch with bounded relative error,
//! per-cohort counters, sliding windows over them (covering observed time only), and the
//! statistics the engine's gates judge with (exact Poisson bounds on a count, and the
//! anytime-valid tests of `verdict`).
//!
//! **Architecture Invariant:** this crate is pure. No clock, no I/O, no randomness, no
//! threads: values go in, numbers come out, so the engine can use it in simulation and live
//! runs alike and the proxy can ship its buckets to the controller for an exact merge.

mod histogram;
pub mod poisson;
pub mod verdict;
mod window;

pub use histogram::{Histogram, QUANTILE_ERROR, RELATIVE_ERROR};
pub use verdict::thousands;
pub use window::{bracket, shared_bounds, CohortStats, SlidingWindow, Slot, WindowView};
