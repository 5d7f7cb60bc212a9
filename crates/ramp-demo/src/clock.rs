//! The one place where this crate reads the clock.
//!
//! The workspace forbids `std::time::Instant::now` outside designated live code (see the
//! workspace `clippy.toml`). The demo is live code: the load generator must schedule
//! arrivals against real time and measure real latency. Reading tokio's clock, in one
//! function, keeps that exception visible and lets tests pause or advance time if they wish.

use tokio::time::Instant;

/// Returns the current monotonic time, for arrival scheduling and latency measurement.
#[allow(
    clippy::disallowed_methods,
    reason = "the demo schedules arrivals and measures latency in real time; this is its single clock read"
)]
pub(crate) fn now() -> Instant {
    Instant::now()
}
