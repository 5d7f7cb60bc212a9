//! Ramp's data plane: a weighted, sticky HTTP reverse proxy that measures each cohort.
//!
//! Each request goes to the stable or the canary pool by the current weight (per request, or
//! sticky by a header or cookie with flagd's `fractional` bucketing from `ramp-flags`), is
//! streamed through with hop-by-hop headers handled, and is measured per cohort: requests,
//! responses, errors by source and reason, in-flight, and a mergeable latency histogram.
//! An admin API reads and sets the weight atomically, injects faults for rehearsals and
//! exposes Prometheus metrics and an exact snapshot. In flag mode one pool serves everyone
//! and each request is tagged with the cohort a feature flag's rollout puts its user in
//! (the flags server's own placement function), with distinct users counted per cohort.
//! See `docs/proxy.md`.

pub mod admin;
pub mod body;
pub mod cli;
pub mod clock;
pub mod config;
pub mod exposition;
pub mod follow;
#[doc(hidden)]
pub mod fuzzing;
mod h1;
pub mod histogram;
pub mod metrics;
mod pool;
pub mod proxy;
mod rng;
pub mod routing;
pub mod server;
pub mod state;
pub mod upload;
pub mod upstream;
pub mod users;
pub mod weights;

pub use config::{Config, ConfigError, ConfigErrors};
pub use proxy::Proxy;
pub use server::{run, serve, DrainOutcome, RunError};
