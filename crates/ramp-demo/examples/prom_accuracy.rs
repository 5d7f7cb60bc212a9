//! How close a real Prometheus' `histogram_quantile` comes to the exact p99, over the proxy's
//! histogram and over the demo upstream's own: `scripts/prom-accuracy.sh` runs this in the
//! release build.
//!
//! It starts a stable and a canary demo upstream drawing the seed's latency distribution
//! (p50 145, p95 385, p99 720 ms), Ramp's proxy in front at 50 % canary, and a real
//! Prometheus scraping the proxy's admin `/metrics` and both upstreams' `/metrics` every
//! second; sends bounded open-loop load for a warm-up, the measured window and a little
//! more; then compares, at the window's end, `histogram_quantile(0.99, sum by (le)
//! (rate(…_bucket{canary}[window])))` with the exact p99 of the same window (the difference
//! of two readings of the exact sketches: the proxy's `/snapshot` and the upstream's own).
//!
//! Usage: `prom_accuracy [--window-s S] [--rps R]` (defaults 60 and 300; at most 300 s and
//! 1,000 requests per second). All traffic stays on 127.0.0.1.

#![allow(
    clippy::disallowed_methods,
    reason = "a measurement binary waits for real time to pass between its two readings"
)]

use ramp_demo::loopback;
use ramp_demo::{run_load, Behaviour, LoadConfig, Prometheus, ScrapeJob, Stack};
use ramp_proxy::histogram::HistogramSnapshot;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// Time given to the load before the window starts, so the window sees a steady state.
const WARM_UP: Duration = Duration::from_secs(5);

/// Time after the window's end before Prometheus is asked: a scrape after the end exists.
const SETTLE: Duration = Duration::from_secs(3);

/// The measurement's parameters, from the command line.
struct Args {
    /// The window's length in seconds, also the range of `rate`.
    window_s: u64,
    /// Requests per second sent to the proxy.
    rps: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        window_s: 60,
        rps: 300.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--window-s" => {
                args.window_s = value
                    .parse()
                    .ok()
                    .filter(|s| (10..=300).contains(s))
                    .ok_or(format!("--window-s must be 10 to 300 seconds, got {value}"))?
            }
            "--rps" => {
                args.rps = value
                    .parse()
                    .ok()
                    .filter(|r: &f64| *r > 0.0 && *r <= 1000.0)
                    .ok_or(format!(
                        "--rps must be above 0 and at most 1000, got {value}"
                    ))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// The canary's latency sketch in the proxy's `/snapshot`.
async fn proxy_canary_latency(admin: SocketAddr) -> Result<HistogramSnapshot, String> {
    let (status, body) = loopback::get(admin, "/snapshot").await?;
    if status != 200 {
        return Err(format!("/snapshot answered {status}"));
    }
    let doc: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("/snapshot is not JSON: {e}"))?;
    serde_json::from_value(doc["metrics"]["canary"]["latency"].clone())
        .map_err(|e| format!("/snapshot has no canary latency sketch: {e}"))
}

/// The one value of a query that must answer exactly one sample.
async fn one_value(prometheus: &Prometheus, promql: &str, at: Option<f64>) -> Result<f64, String> {
    let samples = prometheus
        .query(promql, at)
        .await
        .map_err(|e| e.to_string())?;
    match samples.as_slice() {
        [one] => Ok(one.value),
        other => Err(format!(
            "`{promql}` answered {} samples, not one",
            other.len()
        )),
    }
}

async fn measure(args: Args) -> Result<(), String> {
    let behaviour =
        |name: &str| Behaviour::new(name, 145.0, 385.0, 720.0, 0.0).map_err(|e| e.to_string());
    let stack = Stack::start(behaviour("stable")?, behaviour("canary")?, |config| {
        config.initial_canary_bp = 5_000;
    })
    .await
    .map_err(|e| e.to_string())?;
    let prometheus = Prometheus::start(&[
        ScrapeJob::new("ramp-proxy", &[stack.admin_addr]),
        ScrapeJob::new("demo-upstream", &[stack.stable_addr, stack.canary_addr]),
    ])
    .await
    .map_err(|e| e.to_string())?;
    let window = Duration::from_secs(args.window_s);
    let mut load = LoadConfig::new(stack.proxy_addr, args.rps);
    load.duration = Some(WARM_UP + window + SETTLE);
    load.timeout = Duration::from_secs(10);
    load.max_in_flight = 1024;
    load.seed = 13;
    let load = tokio::spawn(run_load(load, stack.stopped()));

    tokio::time::sleep(WARM_UP).await;
    let (proxy_0, upstream_0) = (
        proxy_canary_latency(stack.admin_addr).await?,
        stack.canary.latency(),
    );
    tokio::time::sleep(window).await;
    let (proxy_1, upstream_1) = (
        proxy_canary_latency(stack.admin_addr).await?,
        stack.canary.latency(),
    );
    let end = one_value(&prometheus, "time()", None).await?;
    tokio::time::sleep(SETTLE).await;

    let range = format!("{}s", args.window_s);
    let rows = [
        (
            "proxy (ramp_proxy_request_duration_seconds)",
            format!("histogram_quantile(0.99, sum by (le) (rate(ramp_proxy_request_duration_seconds_bucket{{cohort=\"canary\"}}[{range}])))"),
            proxy_1.since(&proxy_0),
            "count({__name__=~\"ramp_proxy_request_duration_seconds_.*\",cohort=\"canary\"})",
        ),
        (
            "demo upstream (http_request_duration_seconds)",
            format!("histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{version=\"canary\"}}[{range}])))"),
            upstream_1.since(&upstream_0),
            "count({__name__=~\"http_request_duration_seconds_.*\",version=\"canary\"})",
        ),
    ];
    println!(
        "window {} s ending at {end:.3} (Unix), {} requests per second, 50 % canary",
        args.window_s, args.rps
    );
    let mut worst: f64 = 0.0;
    for (what, promql, exact, series) in rows {
        let estimate = one_value(&prometheus, &promql, Some(end)).await?;
        let exact_s = exact
            .quantile_us(0.99)
            .ok_or(format!("{what}: no canary request in the window"))?
            / 1e6;
        let series = one_value(&prometheus, series, Some(end)).await?;
        let error = estimate / exact_s - 1.0;
        worst = worst.max(error.abs());
        println!("{what}: canary requests in the window {}", exact.count);
        println!("  query: {promql}");
        println!(
            "  p99 histogram_quantile {:.1} ms, exact {:.1} ms, relative error {:+.2} %, {series} series per cohort",
            estimate * 1e3,
            exact_s * 1e3,
            error * 100.0
        );
    }
    stack.stop();
    let report = load
        .await
        .map_err(|e| format!("the load task failed: {e}"))?
        .map_err(|e| e.to_string())?;
    println!(
        "load: {} sent, {} ok, {} failed, {} dropped",
        report.sent, report.ok, report.failed, report.dropped
    );
    println!(
        "worst relative error {:.2} % (target: under 2 %)",
        worst * 100.0
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("prom_accuracy: {e}");
            return ExitCode::from(2);
        }
    };
    match measure(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prom_accuracy: {e}");
            ExitCode::FAILURE
        }
    }
}
