//! The pieces of `ramp demo` and of Ramp's live integration tests.
//!
//! `ramp demo` puts two small upstreams (a stable one and a slightly slower canary) behind
//! Ramp's proxy and drives them with a built-in load generator, so that a whole rollout can
//! be watched on one machine with one command. The same pieces let tests exercise the live
//! path with real sockets:
//!
//! - [`upstream`]: a demo HTTP server whose latency follows the simulator's spliced
//!   log-normal model ([`ramp_sim::model::LatencyModel`]) and whose error rate and added
//!   latency can be changed while it serves (`ramp demo --break`).
//! - [`load`]: an open-loop load generator (Poisson arrivals against absolute target times,
//!   so a slow service never slows the arrival process) that reports counts per status
//!   class, per cohort and a latency sketch.
//!
//! - [`stack`]: both upstreams with Ramp's proxy in front, on loopback, stopped as one.
//! - [`prometheus`]: a real Prometheus server scraping loopback targets every second, for
//!   `ramp demo`, scripts and the tests of Ramp's Prometheus integration; [`promtool`]: its
//!   linter run on a page of metrics.
//!
//! Both take their listener or target and a shutdown future as arguments, so callers and
//! tests decide ports and lifetimes. The load generator only ever sends to loopback
//! addresses: a demo must never become a traffic source against someone else's service.

mod clock;
mod error;
pub mod load;
pub mod loopback;
mod metrics;
pub mod prometheus;
pub mod promtool;
pub mod stack;
pub mod upstream;

pub use error::DemoError;
pub use load::{
    run_load, run_load_with, Completion, LoadConfig, LoadCounters, LoadProgress, LoadReport,
};
pub use prometheus::{Prometheus, QuerySample, ScrapeJob};
pub use stack::Stack;
pub use upstream::{serve_upstream, Behaviour, ServedCounts};
