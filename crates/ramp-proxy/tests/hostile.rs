//! Hostile input never takes the proxy down: each case gets the right status, is counted
//! against the right source, and the proxy keeps serving.

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Writes raw bytes to the proxy and reads until the server closes or `limit` passes.
async fn raw_exchange(addr: SocketAddr, bytes: &[u8], limit: Duration) -> (String, Duration) {
    let start = ramp_proxy::clock::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), stream.read(&mut buf))
            .await
        {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_slow_clients_are_answered_counted_and_survived() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.timeouts.header_read_ms = Some(300);
    let h = start_proxy(file).await;
    let c = client();

    // Malformed request line → 400.
    let (answer, _) =
        raw_exchange(h.addr, b"THIS IS NOT HTTP\r\n\r\n", Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // Headers over the 16 KiB default → 431.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let (answer, _) = raw_exchange(h.addr, big.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // A client that starts a request and stalls is cut off after the header deadline.
    let (answer, took) = raw_exchange(
        h.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        took < Duration::from_secs(3),
        "slow client held the connection for {took:?}"
    );
    assert!(!answer.contains("200 OK"), "{answer}");

    // A client that connects and sends nothing is cut off too.
    let (_, took) = raw_exchange(h.addr, b"", Duration::from_secs(5)).await;
    assert!(
        took < Duration::from_secs(3),
        "silent client held the connection for {took:?}"
    );

    // A client that sends one byte of something that could be the HTTP/2 preface.
    let (_, took) = raw_exchange(h.addr, b"P", Duration::from_secs(5)).await;
    assert!(
        took < Duration::from_secs(3),
        "one-byte client held the connection for {took:?}"
    );

    // The proxy still serves.
    assert_eq!(get(&c, &h.url("/"), &[]).await.status, 200);

    let s = snapshot(&c, &h).await;
    let e = &s["metrics"]["client_errors"];
    assert_eq!(e["bad_request"], 1, "{e}");
    assert_eq!(e["headers_too_large"], 1, "{e}");
    assert_eq!(e["header_timeout"], 3, "{e}");
    // None of it is charged to a cohort.
    for cohort in ["stable", "canary"] {
        for (reason, n) in s["metrics"][cohort]["upstream_errors"]
            .as_object()
            .expect("map")
        {
            assert_eq!(n, 0, "{cohort} {reason}");
        }
    }
    h.stop().await;
}

/// Starts a proxy whose canary (at 100%) is `canary`, with short upstream deadlines.
async fn proxy_with_bad_canary(canary: SocketAddr) -> (Harness, SocketAddr) {
    let stable = start_upstream("stable").await;
    let mut file = file_config(&[stable], &[canary]);
    file.initial_canary_weight = Some(100.0);
    file.timeouts.upstream_response_ms = Some(400);
    file.timeouts.upstream_connect_ms = Some(400);
    (start_proxy(file).await, stable)
}

async fn assert_canary_failure(canary: SocketAddr, status: u16, reason: &str) {
    let (h, _) = proxy_with_bad_canary(canary).await;
    let c = client();

    for _ in 0..3 {
        let a = get(&c, &h.url("/"), &[]).await;
        assert_eq!(a.status, status, "{reason}: {:?}", a.headers);
        assert_eq!(
            a.header("x-ramp-error"),
            format!("upstream_canary/{reason}")
        );
    }
    // Rolling back routes around the broken canary at once; the proxy keeps serving.
    set_weight(&c, &h, 0.0).await;
    let a = get(&c, &h.url("/"), &[]).await;
    assert_eq!((a.status, a.header("x-upstream").as_str()), (200, "stable"));

    let s = settled_snapshot(&c, &h).await;
    let canary_errors = &s["metrics"]["canary"]["upstream_errors"];
    for (name, n) in canary_errors.as_object().expect("map") {
        let want = if name == reason { 3 } else { 0 };
        assert_eq!(
            n, want,
            "canary {name} for a {reason} upstream: {canary_errors}"
        );
    }
    assert_eq!(s["metrics"]["canary"]["responses"]["5xx"], 3);
    for (name, n) in s["metrics"]["stable"]["upstream_errors"]
        .as_object()
        .expect("map")
    {
        assert_eq!(n, 0, "stable {name}");
    }
    for (name, n) in s["metrics"]["client_errors"].as_object().expect("map") {
        assert_eq!(n, 0, "client {name} for a {reason} upstream");
    }
    for (name, n) in s["metrics"]["internal_errors"].as_object().expect("map") {
        assert_eq!(n, 0, "internal {name} for a {reason} upstream");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_that_hangs_gets_504_counted_as_timeout() {
    let t = ramp_proxy::clock::now();
    assert_canary_failure(start_bad_upstream(BadUpstream::Hang).await, 504, "timeout").await;
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_that_resets_gets_502_counted_as_reset() {
    assert_canary_failure(start_bad_upstream(BadUpstream::Reset).await, 502, "reset").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_that_answers_garbage_gets_502_counted_as_bad_response() {
    assert_canary_failure(
        start_bad_upstream(BadUpstream::Garbage).await,
        502,
        "bad_response",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_that_refuses_connections_gets_502_counted_as_connect() {
    assert_canary_failure(closed_port().await, 502, "connect").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_5xx_is_passed_through_and_counted_as_the_cohorts_error() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.initial_canary_weight = Some(100.0);
    let h = start_proxy(file).await;
    let c = client();
    let a = get(&c, &h.url("/"), &[("x-status", "503")]).await;
    assert_eq!((a.status, a.header("x-upstream").as_str()), (503, "canary"));
    assert_eq!(
        a.header("x-ramp-error"),
        "",
        "an upstream's own answer is not marked as the proxy's"
    );
    let s = settled_snapshot(&c, &h).await;
    assert_eq!(s["metrics"]["canary"]["upstream_errors"]["status_5xx"], 1);
    assert_eq!(s["metrics"]["canary"]["responses"]["5xx"], 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_abandons_an_upload_is_the_clients_failure_not_the_cohorts() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.initial_canary_weight = Some(50.0);
    let h = start_proxy(file).await;
    for _ in 0..4 {
        let mut s = TcpStream::connect(h.addr).await.expect("connect");
        s.write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nonly a few bytes",
        )
        .await
        .expect("write");
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(s);
    }
    let c = client();
    assert_eq!(
        get(&c, &h.url("/"), &[]).await.status,
        200,
        "the proxy keeps serving"
    );
    let s = settled_snapshot(&c, &h).await;
    assert_eq!(
        s["metrics"]["client_errors"]["disconnected"], 4,
        "{}",
        s["metrics"]
    );
    for cohort in ["stable", "canary"] {
        for (reason, n) in s["metrics"][cohort]["upstream_errors"]
            .as_object()
            .expect("map")
        {
            assert_eq!(
                n, 0,
                "{cohort} {reason} charged for a client that went away"
            );
        }
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_wait_instead_of_exhausting_the_proxy() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.limits.max_connections = Some(2);
    file.timeouts.header_read_ms = Some(5_000);
    let h = start_proxy(file).await;
    // Two silent connections take both slots.
    let first = TcpStream::connect(h.addr).await.expect("connect");
    let _second = TcpStream::connect(h.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A third client is not served while the slots are taken...
    let mut third = TcpStream::connect(h.addr)
        .await
        .expect("connect (kernel backlog)");
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond the connection limit");
    // ...and is served as soon as one closes.
    drop(first);
    let n = tokio::time::timeout(WAIT, third.read(&mut buf))
        .await
        .expect("served after a slot freed")
        .expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    h.stop().await;
}
