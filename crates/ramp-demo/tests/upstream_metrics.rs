//! The demo upstream's own `/metrics`, held to the real `promtool` and read back through a
//! real Prometheus (one server for this test binary, scraping both upstreams every second).

#![allow(
    clippy::disallowed_methods,
    reason = "tests time real servers and deadlines with tokio's clock"
)]

mod common;

use common::{bounded, fire, start};
use ramp_demo::loopback;
use ramp_demo::promtool::check_metrics;
use ramp_demo::{Behaviour, Prometheus, ScrapeJob};
use std::time::Duration;

/// The one value of a query that must answer one sample.
async fn value(prometheus: &Prometheus, promql: &str) -> f64 {
    let samples = prometheus
        .query(promql, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(samples.len(), 1, "`{promql}`: {samples:?}");
    samples[0].value
}

/// Both upstreams export request counts by code, checkouts by outcome and a latency
/// histogram labelled with their version; `/metrics` and `/health` count in none of them;
/// promtool finds nothing to say; and what Prometheus scraped equals what the servers
/// counted, with `histogram_quantile` over the exported buckets within 2 % of the exact p99
/// of the canary's own sketch (the seed's latency distribution, 3,000 requests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_reads_what_the_demo_upstreams_served() {
    bounded(async {
        let seed = |name: &str, errors: f64| {
            Behaviour::new(name, 145.0, 385.0, 720.0, errors).expect("valid behaviour")
        };
        let stable = start(seed("stable", 0.0)).await;
        let canary = start(seed("canary", 0.05)).await;
        canary.behaviour.set_checkout_failure_rate(0.2);
        let prometheus = Prometheus::start(&[ScrapeJob::new(
            "demo-upstream",
            &[stable.addr, canary.addr],
        )])
        .await
        .unwrap_or_else(|e| panic!("{e}"));

        fire(stable.addr, "/", 500, 100).await;
        fire(canary.addr, "/", 3_000, 300).await;
        fire(canary.addr, "/health", 20, 4).await;
        let (status, text) = loopback::get(canary.addr, "/metrics")
            .await
            .expect("the canary's /metrics");
        assert_eq!(status, 200);
        let served = canary.behaviour.served();
        assert_eq!(served.requests, 3_000, "/health and /metrics are not requests");
        assert!(
            text.contains("http_request_duration_seconds_count{version=\"canary\"} 3000\n"),
            "{text}"
        );
        if let Err(e) = check_metrics(&text) {
            panic!("{e}
on:
{text}");
        }

        // Wait (bounded) for a scrape after the traffic.
        let total = "sum(http_requests_total{version=\"canary\"})";
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while value(&prometheus, total).await < 3_000.0 {
            assert!(tokio::time::Instant::now() < deadline, "no scrape of the traffic");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let code = |c: &str| {
            format!("http_requests_total{{version=\"canary\",code=\"{c}\"}}")
        };
        assert_eq!(value(&prometheus, &code("500")).await, served.errors as f64);
        assert_eq!(
            value(&prometheus, &code("200")).await,
            (served.requests - served.errors) as f64
        );
        let (ok, failed) = canary.behaviour.checkouts();
        assert_eq!(ok + failed, 3_000);
        let outcome = |o: &str| {
            format!("demo_checkouts_total{{version=\"canary\",outcome=\"{o}\"}}")
        };
        assert_eq!(value(&prometheus, &outcome("failure")).await, failed as f64);
        assert_eq!(value(&prometheus, &outcome("success")).await, ok as f64);
        let share = failed as f64 / 3_000.0;
        assert!(
            (0.2..0.32).contains(&share),
            "about 5 % injected 500s and 20 % of the rest fail: {share}"
        );
        assert_eq!(
            value(&prometheus, "sum(http_requests_total{version=\"stable\"})").await,
            500.0
        );

        let estimate = value(
            &prometheus,
            "histogram_quantile(0.99, sum by (le) (http_request_duration_seconds_bucket{version=\"canary\"}))",
        )
        .await;
        let exact = canary.behaviour.latency().quantile_us(0.99).expect("samples") / 1e6;
        let error = estimate / exact - 1.0;
        eprintln!("demo upstream p99: histogram_quantile {estimate:.4} s, exact {exact:.4} s, {:+.2} %", error * 100.0);
        assert!(error.abs() < 0.02, "{estimate} s against {exact} s");
        drop(prometheus);
        stable.stop().await;
        canary.stop().await;
    })
    .await;
}
