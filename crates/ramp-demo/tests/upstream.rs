//! The demo upstream against real sockets on 127.0.0.1.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time real servers and deadlines with tokio's clock"
)]

mod common;

use common::{bounded, fast, fire, get, start, within_binomial};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use ramp_demo::Behaviour;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_rate_over_two_thousand_requests_is_within_a_binomial_bound() {
    bounded(async {
        let up = start(fast("stable", 0.1)).await;
        let answers = fire(up.addr, "/", 2000, 32).await;
        let errors = answers.iter().filter(|a| a.status == 500).count() as u64;
        let oks = answers.iter().filter(|a| a.status == 200).count() as u64;
        assert_eq!(errors + oks, 2000, "only 200 and 500 are answered");
        assert!(
            within_binomial(errors, 2000, 0.1, 4.5),
            "{errors} errors of 2000 at p = 0.1"
        );
        for a in &answers {
            assert_eq!(a.upstream.as_deref(), Some("stable"));
            assert_eq!(a.body.lines().next(), Some("stable"));
        }
        let served = up.behaviour.served();
        assert_eq!(served.requests, 2000);
        assert_eq!(served.errors, errors);
        up.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_raises_errors_and_latency_and_clearing_it_restores_both() {
    bounded(async {
        let up = start(fast("canary", 0.0)).await;
        let client = common::client();

        let before = fire(up.addr, "/", 200, 16).await;
        assert!(before.iter().all(|a| a.status == 200));

        up.behaviour.set_regression(0.5, 60.0);
        assert_eq!(up.behaviour.regression(), (0.5, 60.0));
        let during = fire(up.addr, "/", 400, 64).await;
        let errors = during.iter().filter(|a| a.status == 500).count() as u64;
        assert!(
            within_binomial(errors, 400, 0.5, 4.5),
            "{errors} errors of 400 during a 50 % regression"
        );
        // A sleep never ends early, so every regressed answer takes the added 60 ms.
        assert!(during
            .iter()
            .all(|a| a.latency >= Duration::from_millis(60)));
        let error_answer = during.iter().find(|a| a.status == 500).expect("an error");
        assert_eq!(error_answer.body.lines().next(), Some("canary"));

        up.behaviour.clear_regression();
        let after = fire(up.addr, "/", 200, 16).await;
        assert!(after.iter().all(|a| a.status == 200));
        let mut ms: Vec<_> = after.iter().map(|a| a.latency).collect();
        ms.sort();
        assert!(
            ms[ms.len() / 2] < Duration::from_millis(30),
            "median after clearing: {:?}",
            ms[ms.len() / 2]
        );
        // A long-lived keep-alive client sees the restored behaviour too.
        assert_eq!(get(&client, up.addr, "/").await.status, 200);
        up.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_never_errors_and_never_waits() {
    bounded(async {
        // Every ordinary request fails after a second; health checks must do neither.
        let up = start(Behaviour::new("broken", 1000.0, 1000.0, 1000.0, 1.0).expect("valid")).await;
        up.behaviour.set_regression(1.0, 500.0);
        let started = tokio::time::Instant::now();
        let answers = fire(up.addr, "/health", 300, 8).await;
        assert!(answers.iter().all(|a| a.status == 200 && a.body == "ok\n"));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "health checks took {:?}",
            started.elapsed()
        );
        let served = up.behaviour.served();
        assert_eq!(served.health, 300);
        assert_eq!(served.requests, 0);
        let client = common::client();
        let answer = get(&client, up.addr, "/").await;
        assert_eq!(answer.status, 500);
        assert!(answer.latency >= Duration::from_millis(1500));
        up.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_serves_many_requests_and_a_seed_reproduces_its_outcomes() {
    bounded(async {
        // Two servers with the same seed answer the same sequence on their first connection.
        let mut sequences = Vec::new();
        for _ in 0..2 {
            let up = start(fast("seeded", 0.5).with_seed(42)).await;
            let stream = tokio::net::TcpStream::connect(up.addr)
                .await
                .expect("connect");
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            let driver = tokio::spawn(conn);
            let mut statuses = Vec::new();
            for _ in 0..60 {
                let request = hyper::Request::builder()
                    .uri("/")
                    .header("host", "demo")
                    .body(Empty::<bytes::Bytes>::new())
                    .expect("request");
                // The connection is reused only once it has finished the previous exchange.
                sender.ready().await.expect("the connection stays open");
                let response = sender.send_request(request).await.expect("keep-alive");
                statuses.push(response.status().as_u16());
                response.into_body().collect().await.expect("body");
            }
            drop(sender);
            let _ = driver.await;
            assert_eq!(up.behaviour.served().requests, 60);
            up.stop().await;
            sequences.push(statuses);
        }
        assert_eq!(sequences[0], sequences[1]);
        assert!(sequences[0].contains(&200) && sequences[0].contains(&500));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_server_promptly_even_with_a_slow_request_in_flight() {
    bounded(async {
        let up =
            start(Behaviour::new("slow", 30_000.0, 30_000.0, 30_000.0, 0.0).expect("valid")).await;
        let addr = up.addr;
        let pending = tokio::spawn(async move {
            let client = common::client();
            let uri: hyper::Uri = format!("http://{addr}/").parse().expect("uri");
            client.get(uri).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = tokio::time::Instant::now();
        up.stop().await;
        assert!(started.elapsed() < Duration::from_secs(4));
        // The abandoned request ends (with an error) instead of hanging.
        let ended = tokio::time::timeout(Duration::from_secs(2), pending).await;
        assert!(ended.is_ok());
        // Nothing listens any more.
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    })
    .await;
}

/// The demo upstream answers a request only once it has read its body, like a real POST
/// handler, so that an upload its client stalls stays open (issue 12: the proxy's
/// request-body timeout, not an early answer, must end it). Before this, it answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_answered_only_after_its_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    bounded(async {
        let up = start(fast("stable", 0.0)).await;
        let mut s = tokio::net::TcpStream::connect(up.addr).await.unwrap();
        s.write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let early = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
        assert!(early.is_err(), "answered before the body ended: {early:?}");
        s.write_all(b"67890").await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer once the body ended")
            .unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        up.stop().await;
    })
    .await;
}
