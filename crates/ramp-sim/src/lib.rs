//! Ramp's simulator: a seeded, deterministic traffic, service and fault model on a virtual
//! clock, driving the same engine that live runs use.
//!
//! **Architecture Invariant:** all randomness comes from one xoshiro256++ seeded by the caller,
//! and all time from the virtual clock; there is no I/O, no thread and no wall clock here.
//! Same plan, seed and sampler → byte-identical summary, whether or not the run shares its
//! bucket tables with other runs of a study ([`TableCache`], the one thing here behind a
//! lock, for the caller's threads).

mod buckets;
#[cfg(test)]
mod chi_square;
mod driver;
pub mod model;
mod normal;
mod poisson;
pub mod population;
mod ring;
mod sampler;
mod study;

pub use driver::{
    describe, offset, simulate, simulate_sharing, simulate_with, Progress, SimError, TableCache,
};
pub use population::{targeting_key, Users, DEFAULT_POPULATION};
pub use sampler::{sampling, Options, MAX_OVERLAPPING_LATENCY_FAULTS};
pub use study::{study, watched, wilson, LOOK_EVERY};
