//! The demo upstream's own Prometheus metrics: what it served, as a real service exports it.
//!
//! A live rollout can be judged from Prometheus with Ramp's proxy only routing, so the demo
//! upstream exports what a service would: `http_request_duration_seconds` (histogram of the
//! time it took to answer, drawn latency plus handling), `http_requests_total{code}` and a
//! business metric, `demo_checkouts_total{outcome}`, that a query gate can judge. Every
//! series carries `version="<the behaviour's name>"`. `/health` and `/metrics` are not
//! counted, so scraping and health checks never dilute what a gate sees.
//!
//! The histogram is the proxy's sketch exported with the proxy's bucket layout
//! (`ramp_proxy::exposition`), so `histogram_quantile` over it has the same accuracy as over
//! the proxy's (docs/prometheus.md, "Accuracy of the proxy's histogram").

use ramp_proxy::exposition::{self, Kind};
use ramp_proxy::histogram::Histogram;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The status codes the demo upstream answers, in the order of the counters: 200 (served),
/// 400 (unreadable request body) and 500 (injected error).
const CODES: [u16; 3] = [200, 400, 500];

/// What one upstream served, recorded by the request path and rendered by `GET /metrics`.
#[derive(Debug, Default)]
pub(crate) struct ServedMetrics {
    /// Time to answer each counted request, in microseconds.
    latency: Histogram,
    /// Answers by status code, indexed as [`CODES`].
    codes: [AtomicU64; 3],
    /// Checkout attempts that succeeded.
    checkouts_ok: AtomicU64,
    /// Checkout attempts that failed (an injected 500, or a failed checkout).
    checkouts_failed: AtomicU64,
}

impl ServedMetrics {
    /// Records one answered request: its status, the time it took, and, for a checkout
    /// attempt, whether it failed.
    pub(crate) fn record(&self, status: u16, latency_us: u64, checkout_failed: Option<bool>) {
        self.latency.record_us(latency_us);
        if let Some(slot) = CODES.iter().position(|&c| c == status) {
            self.codes[slot].fetch_add(1, Ordering::Relaxed);
        }
        match checkout_failed {
            Some(true) => self.checkouts_failed.fetch_add(1, Ordering::Relaxed),
            Some(false) => self.checkouts_ok.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
    }

    /// Checkout attempts so far as (successes, failures).
    pub(crate) fn checkouts(&self) -> (u64, u64) {
        (
            self.checkouts_ok.load(Ordering::Relaxed),
            self.checkouts_failed.load(Ordering::Relaxed),
        )
    }

    /// A copy of the latency sketch.
    pub(crate) fn latency(&self) -> ramp_proxy::histogram::HistogramSnapshot {
        self.latency.snapshot()
    }

    /// The Prometheus text exposition (format 0.0.4) of everything served by `version`.
    pub(crate) fn render(&self, version: &str) -> String {
        let version = format!("version=\"{}\"", exposition::escape_label(version));
        let mut out = String::with_capacity(16 * 1024);
        let name = "http_request_duration_seconds";
        exposition::write_header(&mut out, name, Kind::Histogram, "Time the demo upstream took to answer a request: its drawn latency plus handling (/health and /metrics are not counted).");
        exposition::write_histogram(&mut out, name, &version, &self.latency);
        exposition::write_header(&mut out, "http_requests_total", Kind::Counter, "Requests the demo upstream answered, by status code (/health and /metrics are not counted).");
        for (code, counter) in CODES.iter().zip(&self.codes) {
            let n = counter.load(Ordering::Relaxed);
            let _ = writeln!(out, "http_requests_total{{{version},code=\"{code}\"}} {n}");
        }
        exposition::write_header(&mut out, "demo_checkouts_total", Kind::Counter, "Checkout attempts (every request answered 200 or 500) by outcome: an injected 500 fails, and a served one fails with the checkout failure rate.");
        let (ok, failed) = self.checkouts();
        for (outcome, n) in [("success", ok), ("failure", failed)] {
            let _ = writeln!(
                out,
                "demo_checkouts_total{{{version},outcome=\"{outcome}\"}} {n}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_and_outcome_is_exported_from_zero() {
        let m = ServedMetrics::default();
        m.record(200, 150_000, Some(false));
        m.record(500, 2_000, Some(true));
        m.record(400, 10, None);
        let text = m.render("canary");
        for line in [
            "http_requests_total{version=\"canary\",code=\"200\"} 1\n",
            "http_requests_total{version=\"canary\",code=\"400\"} 1\n",
            "http_requests_total{version=\"canary\",code=\"500\"} 1\n",
            "demo_checkouts_total{version=\"canary\",outcome=\"success\"} 1\n",
            "demo_checkouts_total{version=\"canary\",outcome=\"failure\"} 1\n",
            "http_request_duration_seconds_count{version=\"canary\"} 3\n",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
