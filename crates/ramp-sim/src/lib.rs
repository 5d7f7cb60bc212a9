//! Ramp's simulator: a seeded, deterministic traffic, service and fault model on a virtual
//! clock, driving the same engine that live runs use.
//!
//! **Architecture Invariant:** all randomness comes from one `Pcg64Mcg` seeded by the caller,
//! and all time from the virtual clock; there is no I/O, no thread and no wall clock here.
//! Same plan and seed → byte-identical summary.

mod driver;
pub mod model;
pub mod population;
mod study;

pub use driver::{describe, offset, simulate, Progress, SimError};
pub use population::{targeting_key, Users, DEFAULT_POPULATION};
pub use study::study;
