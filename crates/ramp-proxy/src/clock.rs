//! The one place where the proxy reads the clock.
//!
//! The project forbids `Instant::now` in its pure crates (see the workspace `clippy.toml`):
//! the engine and the simulator are fed time. The proxy is the live data plane, so it must
//! read the clock to measure latency and expire faults; keeping that in one function makes
//! the exception visible and easy to audit.

use std::time::Instant;

/// Returns the current monotonic time, for latency measurement and fault expiry.
#[allow(
    clippy::disallowed_methods,
    reason = "the live data plane measures real latency; this is its single clock read"
)]
pub fn now() -> Instant {
    Instant::now()
}
