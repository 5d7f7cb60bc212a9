//! The one place where the harness reads the clocks.
//!
//! The workspace disallows clock reads outside designated live code (`clippy.toml`). The soak
//! is live code twice over: it schedules faults in real time (the monotonic clock) and it
//! lines its own records up with the controller's journal, whose times are milliseconds of
//! the Unix clock (the wall clock). Each is read in one function here.

use tokio::time::Instant;

/// The current monotonic time, for schedules, timeouts and request records.
#[allow(
    clippy::disallowed_methods,
    reason = "the soak schedules faults in real time; this is its single monotonic clock read"
)]
pub fn now() -> Instant {
    Instant::now()
}

/// Milliseconds since the Unix epoch, for lining the soak's records up with the journal's
/// (the controller counts plan time from the Unix clock). A clock before 1970 reads as 0.
#[allow(
    clippy::disallowed_methods,
    reason = "the journal's times are Unix milliseconds; this is the soak's single wall-clock read"
)]
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
