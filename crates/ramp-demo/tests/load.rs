//! The open-loop load generator against real servers on 127.0.0.1.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time real servers and deadlines with tokio's clock"
)]

mod common;

use bytes::Bytes;
use common::{after, bounded, fast, never, start, within_binomial, within_poisson};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ramp_demo::{run_load, run_load_with, Behaviour, DemoError, LoadConfig, LoadCounters};
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// A load configuration for tests: `rps` for `duration` against `target`.
fn config(target: SocketAddr, rps: f64, duration: Duration) -> LoadConfig {
    LoadConfig {
        duration: Some(duration),
        timeout: Duration::from_secs(2),
        seed: 7,
        ..LoadConfig::new(target, rps)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_rate_is_achieved_within_a_poisson_bound() {
    bounded(async {
        let up = start(fast("stable", 0.0)).await;
        let counters = LoadCounters::new();
        let run = tokio::spawn(run_load_with(
            config(up.addr, 200.0, Duration::from_secs(2)),
            counters.clone(),
            never(),
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let midway = counters.snapshot();
        assert!(
            (100..=300).contains(&midway.sent),
            "live counters midway: {midway:?}"
        );
        let report = run.await.expect("task").expect("run");
        // 400 expected arrivals; a Poisson count has standard deviation 20.
        assert!(
            within_poisson(report.sent, 400.0, 4.5),
            "sent {} in 2 s at 200 rps",
            report.sent
        );
        assert_eq!(report.ok, report.sent);
        assert_eq!((report.failed, report.dropped), (0, 0));
        assert_eq!(report.by_cohort.get("stable"), Some(&report.sent));
        assert_eq!(report.latency.count(), report.sent);
        assert!(
            report.elapsed >= Duration::from_secs(2)
                && report.elapsed < Duration::from_millis(2300),
            "elapsed {:?}",
            report.elapsed
        );
        assert_eq!(up.behaviour.served().requests, report.sent);
        up.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_quantiles_match_the_upstream_model() {
    bounded(async {
        let up = start(Behaviour::new("modelled", 20.0, 40.0, 60.0, 0.0).expect("valid")).await;
        let report = run_load(config(up.addr, 150.0, Duration::from_secs(2)), never())
            .await
            .expect("run");
        assert!(report.latency.count() > 200, "{report:?}");
        let q = |p| report.latency.quantile(p).expect("samples");
        let (p50, p95) = (q(0.5), q(0.95));
        // The client adds a millisecond or so of timer granularity and HTTP overhead.
        assert!((19.0..=28.0).contains(&p50), "p50 {p50}");
        assert!((32.0..=65.0).contains(&p95), "p95 {p95}");
        assert!(q(0.01) > 5.0, "p1 {}", q(0.01));
        up.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_counted_by_cohort_through_ramps_proxy() {
    bounded(async {
        let stable = start(fast("stable", 0.0)).await;
        let canary = start(fast("canary", 0.05)).await;
        let proxy_config = ramp_proxy::Config::for_pools(&[stable.addr], &[canary.addr])
            .expect("proxy configuration");
        let proxy = ramp_proxy::Proxy::new(proxy_config, 5_000);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let proxy_addr = listener.local_addr().expect("addr");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let proxy_task = tokio::spawn(ramp_proxy::serve(proxy, listener, admin, async move {
            let _ = stop_rx.await;
        }));

        let mut load = config(proxy_addr, 300.0, Duration::from_millis(1500));
        load.users = 50;
        let report = run_load(load, never()).await.expect("run");

        assert_eq!(report.failed, 0, "{report:?}");
        let keys: Vec<_> = report.by_cohort.keys().map(String::as_str).collect();
        assert_eq!(keys, ["canary", "stable"]);
        let (s, c) = (stable.behaviour.served(), canary.behaviour.served());
        assert_eq!(report.by_cohort["stable"], s.requests);
        assert_eq!(report.by_cohort["canary"], c.requests);
        assert_eq!(s.requests + c.requests, report.sent);
        assert_eq!(report.status_5xx, c.errors);
        assert_eq!(report.ok, report.sent - c.errors);
        assert!(
            within_binomial(c.requests, report.sent, 0.5, 4.5),
            "canary {} of {} at 50 %",
            c.requests,
            report.sent
        );

        let _ = stop_tx.send(());
        tokio::time::timeout(Duration::from_secs(5), proxy_task)
            .await
            .expect("proxy stops")
            .expect("proxy task");
        stable.stop().await;
        canary.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_counts_every_request_as_failed() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let report = run_load(config(addr, 100.0, Duration::from_millis(500)), never())
            .await
            .expect("run");
        assert!(report.sent > 10, "{report:?}");
        assert_eq!(report.failed, report.sent);
        assert_eq!(report.ok + report.status_4xx + report.status_5xx, 0);
        assert!(report.by_cohort.is_empty());
        assert!(report.latency.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_keeps_every_finished_request_with_its_times_and_status() {
    bounded(async {
        let up = start(fast("stable", 0.5)).await;
        let counters = LoadCounters::with_log();
        let report = run_load_with(
            config(up.addr, 100.0, Duration::from_millis(500)),
            counters.clone(),
            never(),
        )
        .await
        .expect("run");
        let log = counters.take_log();
        assert_eq!(log.len() as u64, report.sent, "{report:?}");
        let status = |want: u16| log.iter().filter(|c| c.status == Some(want)).count() as u64;
        assert_eq!(status(200), report.ok);
        assert_eq!(status(500), report.status_5xx);
        assert!(log.iter().all(|c| c.finished >= c.sent));
        assert!(counters.take_log().is_empty(), "taking the log empties it");
        // Counters made without a log keep none.
        let plain = LoadCounters::new();
        run_load_with(
            config(up.addr, 100.0, Duration::from_millis(200)),
            plain.clone(),
            never(),
        )
        .await
        .expect("run");
        assert!(plain.take_log().is_empty());
        up.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_never_exceed_the_limit_and_the_excess_is_dropped() {
    bounded(async {
        let up = start(Behaviour::new("slow", 800.0, 800.0, 800.0, 0.0).expect("valid")).await;
        let counters = LoadCounters::new();
        let mut load = config(up.addr, 200.0, Duration::from_millis(600));
        load.max_in_flight = 10;
        let run = tokio::spawn(run_load_with(load, counters.clone(), never()));
        // Watch the live gauge while the run goes.
        let mut highest = 0;
        while !run.is_finished() {
            highest = highest.max(counters.snapshot().in_flight);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let report = run.await.expect("task").expect("run");
        assert!(highest <= 10, "saw {highest} in flight");
        assert_eq!(counters.snapshot().peak_in_flight, 10);
        // Every response takes 800 ms, longer than the run: exactly the first ten arrivals
        // are sent, and all the others are dropped rather than queued.
        assert_eq!(report.sent, 10, "{report:?}");
        assert_eq!(report.ok, 10);
        assert!(report.dropped > 50, "{report:?}");
        assert_eq!(up.behaviour.served().requests, 10);
        up.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_timeout_is_failed_and_the_drain_is_bounded() {
    bounded(async {
        let up =
            start(Behaviour::new("stuck", 5_000.0, 5_000.0, 5_000.0, 0.0).expect("valid")).await;
        let mut load = config(up.addr, 50.0, Duration::from_millis(300));
        load.timeout = Duration::from_millis(200);
        let started = tokio::time::Instant::now();
        let report = run_load(load, never()).await.expect("run");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(report.sent > 0);
        assert_eq!(report.failed, report.sent);
        up.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_duration_the_run_ends_at_shutdown() {
    bounded(async {
        let up = start(fast("stable", 0.0)).await;
        let mut load = config(up.addr, 100.0, Duration::ZERO);
        load.duration = None;
        let report = run_load(load, after(Duration::from_millis(500)))
            .await
            .expect("run");
        assert!(
            report.elapsed >= Duration::from_millis(500)
                && report.elapsed < Duration::from_millis(800),
            "{:?}",
            report.elapsed
        );
        assert!(report.sent > 10);
        assert_eq!(report.ok, report.sent);
        up.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_sends_the_same_number_of_requests() {
    bounded(async {
        let up = start(fast("stable", 0.0)).await;
        let a = run_load(config(up.addr, 300.0, Duration::from_millis(500)), never());
        let b = run_load(config(up.addr, 300.0, Duration::from_millis(500)), never());
        let (a, b) = tokio::join!(a, b);
        let (a, b) = (a.expect("run a"), b.expect("run b"));
        assert_eq!(a.sent, b.sent);
        assert!(a.sent > 50);
        up.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_target_is_refused_before_anything_is_sent() {
    bounded(async {
        for target in [
            "192.0.2.1:80",
            "0.0.0.0:80",
            "[2001:db8::1]:443",
            "10.1.2.3:8080",
        ] {
            let target: SocketAddr = target.parse().expect("addr");
            let counters = LoadCounters::new();
            let started = tokio::time::Instant::now();
            let result = run_load_with(
                config(target, 100.0, Duration::from_secs(5)),
                counters.clone(),
                never(),
            )
            .await;
            match result {
                Err(DemoError::NonLoopbackTarget { target: refused }) => {
                    assert_eq!(refused, target)
                }
                other => panic!("{target}: {other:?}"),
            }
            assert_eq!(counters.snapshot(), Default::default());
            assert!(started.elapsed() < Duration::from_millis(100));
        }
        let mut bad = config("127.0.0.1:9".parse().expect("addr"), 100.0, Duration::ZERO);
        bad.max_in_flight = 0;
        assert!(matches!(
            run_load(bad, never()).await,
            Err(DemoError::InvalidLoadConfig {
                field: "max_in_flight",
                ..
            })
        ));
    })
    .await;
}

/// A server that records the `x-user-id` of every request and labels its answers by path:
/// `/cohort` sets both cohort headers, anything else only has a body.
async fn start_recorder() -> (SocketAddr, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let user = req
                        .headers()
                        .get("x-user-id")
                        .map(|v| v.to_str().unwrap_or("?").to_string());
                    record.lock().expect("lock").push(user);
                    let mut response = hyper::Response::new(Full::new(Bytes::from_static(
                        b"from-body\nsecond line\n",
                    )));
                    if req.uri().path() == "/cohort" {
                        let h = response.headers_mut();
                        h.insert("x-ramp-cohort", "canary".parse().expect("hv"));
                        h.insert("x-ramp-upstream", "other".parse().expect("hv"));
                    }
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_sent_as_a_header_and_labels_fall_back_from_headers_to_the_body() {
    bounded(async {
        let (addr, seen) = start_recorder().await;

        let mut load = config(addr, 300.0, Duration::from_millis(700));
        load.users = 5;
        load.path = "/cohort".to_string();
        let report = run_load(load, never()).await.expect("run");
        assert_eq!(report.by_cohort.len(), 1);
        assert_eq!(report.by_cohort.get("canary"), Some(&report.ok));
        let users: BTreeSet<_> = seen
            .lock()
            .expect("lock")
            .drain(..)
            .map(|u| u.expect("a user header on every request"))
            .collect();
        let want: BTreeSet<_> = (0..5).map(|n| format!("u{n}")).collect();
        assert_eq!(users, want);

        let mut load = config(addr, 300.0, Duration::from_millis(300));
        load.path = "/body".to_string();
        let report = run_load(load, never()).await.expect("run");
        assert_eq!(report.by_cohort.get("from-body"), Some(&report.ok));
        assert!(report.ok > 0);
        assert!(seen.lock().expect("lock").iter().all(Option::is_none));
    })
    .await;
}
