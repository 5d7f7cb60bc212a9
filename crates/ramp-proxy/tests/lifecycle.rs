//! Lifecycle and protocol behaviour: persistence across restarts, graceful shutdown, admin
//! authentication, health checks, header handling, streaming, upgrades and HTTP/2.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time real servers and deadlines with tokio's clock"
)]

mod common;

use bytes::Bytes;
use common::*;
use ramp_proxy::config::{Config, HealthFile};
use ramp_proxy::DrainOutcome;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ramp-proxy-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_survive_a_restart() {
    let dir = temp_dir("restart");
    let state = dir.join("weights.json");
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let c = client();

    let mut file = file_config(&[stable], &[canary]);
    file.state_file = Some(state.clone());
    file.initial_canary_weight = Some(0.0);
    let h = start_proxy(file.clone()).await;
    set_weight(&c, &h, 25.0).await;
    assert_eq!(h.stop().await, DrainOutcome::Drained);

    // A new process with the same configuration starts at the persisted 25%, not at 0%.
    let h = start_proxy(file).await;
    let w: serde_json::Value =
        serde_json::from_slice(&get(&c, &h.admin_url("/weights"), &[]).await.body).expect("json");
    assert_eq!(w["canary_bp"], 2500);
    assert_eq!(w["canary"], 25.0);
    let saved = std::fs::read_to_string(&state).expect("state file");
    assert!(saved.contains("\"canary_bp\": 2500"), "{saved}");
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_drains_in_flight_requests_and_stops_accepting() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut h = start_proxy(file_config(&[stable], &[canary])).await;
    let c = client();
    let url = h.url("/slow");
    let in_flight = tokio::spawn({
        let c = c.clone();
        async move { get(&c, &url, &[("x-delay-ms", "600")]).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = ramp_proxy::clock::now();
    let task = h.signal_stop();
    // Stop accepting: new connections are refused once the listener is closed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        tokio::net::TcpStream::connect(h.addr).await.is_err(),
        "listener still accepting after shutdown"
    );
    let answer = in_flight.await.expect("in-flight task");
    assert_eq!(
        answer.status, 200,
        "the in-flight request completes during the drain"
    );
    let outcome = tokio::time::timeout(WAIT, task)
        .await
        .expect("stops")
        .expect("task");
    assert_eq!(outcome, DrainOutcome::Drained);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_deadline_bounds_shutdown() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.timeouts.drain_ms = Some(300);
    let mut h = start_proxy(file).await;
    let c = client();
    let url = h.url("/very-slow");
    let _in_flight = tokio::spawn(async move {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            get(&c, &url, &[("x-delay-ms", "4000")]),
        )
        .await;
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = ramp_proxy::clock::now();
    let outcome = tokio::time::timeout(WAIT, h.signal_stop())
        .await
        .expect("stops")
        .expect("task");
    assert!(
        matches!(outcome, DrainOutcome::DeadlineExceeded { remaining: 1 }),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_requires_the_bearer_token_when_configured() {
    let dir = temp_dir("token");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "s3cret-token-of-some-length\n").expect("token");
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.admin_token_file = Some(token_file);
    let h = start_proxy(file).await;
    let c = client();
    assert_eq!(get(&c, &h.admin_url("/weights"), &[]).await.status, 401);
    assert_eq!(
        get(
            &c,
            &h.admin_url("/weights"),
            &[("authorization", "Bearer wrong")]
        )
        .await
        .status,
        401
    );
    let put = send(
        &c,
        "PUT",
        &h.admin_url("/weights"),
        &[],
        Bytes::from_static(b"{\"canary\": 50}"),
    )
    .await;
    assert_eq!(put.status, 401, "an unauthenticated PUT changes nothing");
    let ok = get(
        &c,
        &h.admin_url("/weights"),
        &[("authorization", "Bearer s3cret-token-of-some-length")],
    )
    .await;
    assert_eq!(ok.status, 200);
    assert!(String::from_utf8_lossy(&ok.body).contains("\"canary_bp\": 0"));
    assert_eq!(
        get(&c, &h.admin_url("/healthz"), &[]).await.status,
        200,
        "liveness needs no token"
    );
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_rejects_bad_documents() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let h = start_proxy(file_config(&[stable], &[canary])).await;
    let c = client();
    for (method, path, body, status) in [
        ("PUT", "/weights", "{\"canary\": 101}", 422),
        ("PUT", "/weights", "{\"canary\": 5, \"extra\": 1}", 400),
        ("PUT", "/weights", "not json", 400),
        (
            "POST",
            "/faults",
            "{\"cohort\": \"canary\", \"fraction\": 2, \"abort_status\": 503, \"duration_s\": 1}",
            422,
        ),
        (
            "POST",
            "/faults",
            "{\"cohort\": \"blue\", \"fraction\": 1, \"abort_status\": 503, \"duration_s\": 1}",
            422,
        ),
        (
            "POST",
            "/faults",
            "{\"cohort\": \"canary\", \"fraction\": 1, \"duration_s\": 1}",
            422,
        ),
        ("DELETE", "/faults/99", "", 404),
        ("GET", "/nope", "", 404),
        ("POST", "/weights", "", 405),
    ] {
        let a = send(&c, method, &h.admin_url(path), &[], Bytes::from(body)).await;
        assert_eq!(
            a.status,
            status,
            "{method} {path} {body}: {}",
            String::from_utf8_lossy(&a.body)
        );
    }
    let big = vec![b' '; 100 * 1024];
    assert_eq!(
        send(&c, "PUT", &h.admin_url("/weights"), &[], Bytes::from(big))
            .await
            .status,
        413
    );
    let w: serde_json::Value =
        serde_json::from_slice(&get(&c, &h.admin_url("/weights"), &[]).await.body).expect("json");
    assert_eq!(w["canary_bp"], 0, "no bad document changed the weight");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_canary_falls_back_to_stable_or_fails_by_policy() {
    for policy in ["fallback", "fail"] {
        let stable = start_upstream("stable").await;
        let dead = closed_port().await;
        let mut file = file_config(&[stable], &[dead]);
        file.initial_canary_weight = Some(100.0);
        file.health = Some(HealthFile {
            path: Some("/healthz".into()),
            interval_ms: Some(50),
            timeout_ms: Some(200),
            fall: Some(1),
            rise: Some(1),
            unhealthy_pool: Some(policy.into()),
        });
        let h = start_proxy(file).await;
        let c = client();
        let deadline = ramp_proxy::clock::now() + Duration::from_secs(5);
        loop {
            let s = snapshot(&c, &h).await;
            if s["upstreams"][1]["healthy"] == 0 {
                break;
            }
            assert!(
                ramp_proxy::clock::now() < deadline,
                "canary never marked unhealthy: {}",
                s["upstreams"]
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let metrics = String::from_utf8(get(&c, &h.admin_url("/metrics"), &[]).await.body.to_vec())
            .expect("utf8");
        assert!(
            metrics.contains(&format!(
                "ramp_proxy_upstream_healthy{{cohort=\"canary\",addr=\"{dead}\"}} 0"
            )),
            "{metrics}"
        );
        assert!(metrics.contains(&format!(
            "ramp_proxy_upstream_healthy{{cohort=\"stable\",addr=\"{stable}\"}} 1"
        )));
        for _ in 0..5 {
            let a = get(&c, &h.url("/"), &[]).await;
            match policy {
                "fallback" => {
                    assert_eq!((a.status, a.header("x-upstream").as_str()), (200, "stable"))
                }
                _ => assert_eq!(
                    (a.status, a.header("x-ramp-error").as_str()),
                    (503, "internal/no_healthy_upstream")
                ),
            }
        }
        let s = settled_snapshot(&c, &h).await;
        match policy {
            "fallback" => {
                assert_eq!(s["metrics"]["rerouted_unhealthy"], 5);
                assert_eq!(s["metrics"]["stable"]["requests"], 5);
            }
            _ => {
                assert_eq!(s["metrics"]["internal_errors"]["no_healthy_upstream"], 5);
                assert_eq!(s["metrics"]["canary"]["requests"], 5);
            }
        }
        // No request was sent to the dead canary, so no connect error was charged to it.
        assert_eq!(s["metrics"]["canary"]["upstream_errors"]["connect"], 0);
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_cohort_header_and_hop_by_hop_handling() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.initial_canary_weight = Some(100.0);
    let h = start_proxy(file).await;
    let c = client();
    let a = get(
        &c,
        &h.url("/headers"),
        &[
            ("x-ramp-cohort", "stable"),
            ("x-forwarded-for", "203.0.113.9"),
            ("connection", "x-hop"),
            ("x-hop", "must-not-pass"),
            ("te", "trailers"),
            ("x-keep", "end-to-end"),
        ],
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("x-seen-x-ramp-cohort"),
        "canary",
        "a client cannot choose its cohort label"
    );
    assert_eq!(a.header("x-seen-x-forwarded-for"), "203.0.113.9, 127.0.0.1");
    assert_eq!(a.header("x-seen-x-forwarded-proto"), "http");
    assert_eq!(a.header("x-seen-x-hop"), "<none>");
    assert_eq!(a.header("x-seen-te"), "<none>");
    assert_eq!(a.header("x-seen-x-keep"), "end-to-end");
    assert_eq!(
        a.header("x-seen-host"),
        h.addr.to_string(),
        "the client's Host is kept"
    );
    // The upstream's own hop-by-hop header (named in its Connection) does not reach the client.
    assert_eq!(a.header("x-private-hop"), "");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_stream_both_ways_without_buffering() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let h = start_proxy(file_config(&[stable], &[canary])).await;
    let c = client();

    // Upload: 3 MiB goes up and comes back intact.
    let payload: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let a = send(
        &c,
        "POST",
        &h.url("/echo"),
        &[],
        Bytes::from(payload.clone()),
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(a.body.as_ref() == payload.as_slice(), "echoed body differs");

    // Download: the first chunk reaches the client before the upstream has sent the second.
    let request = hyper::Request::get(h.url("/stream"))
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("req");
    let started = ramp_proxy::clock::now();
    let response = c.request(request).await.expect("response");
    let mut body = response.into_body();
    use http_body_util::BodyExt;
    let first = tokio::time::timeout(WAIT, body.frame())
        .await
        .expect("first frame")
        .expect("frame")
        .expect("ok");
    let first_at = started.elapsed();
    assert_eq!(first.into_data().expect("data").as_ref(), b"first;");
    assert!(
        first_at < Duration::from_millis(600),
        "first chunk after {first_at:?}: the proxy buffered"
    );
    let rest = tokio::time::timeout(WAIT, body.collect())
        .await
        .expect("rest")
        .expect("ok")
        .to_bytes();
    assert_eq!(rest.as_ref(), b"second");
    assert!(started.elapsed() >= Duration::from_millis(800));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_passes_through_as_a_tunnel() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let h = start_proxy(file_config(&[stable], &[canary])).await;
    let mut s = open_tunnel(&h).await;
    for msg in [&b"ping"[..], b"a longer message through the tunnel"] {
        echo_through(&mut s, msg).await;
    }
    let snap = snapshot(&client(), &h).await;
    assert_eq!(snap["metrics"]["stable"]["responses"]["1xx"], 1);
    // Closed by the client, the tunnel no longer holds the drain.
    drop(s);
    assert_eq!(h.stop().await, DrainOutcome::Drained);
}

/// Opens an `Upgrade: echo` tunnel through the proxy and returns the client's end, after
/// the 101 head.
async fn open_tunnel(h: &Harness) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(h.addr)
        .await
        .expect("connect");
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, s.read(&mut byte))
            .await
            .expect("head in time")
            .expect("read");
        assert_eq!(n, 1, "closed during the 101 head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// Sends `msg` through a tunnel and expects it echoed.
async fn echo_through(s: &mut tokio::net::TcpStream, msg: &[u8]) {
    s.write_all(msg).await.expect("write through tunnel");
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(WAIT, s.read_exact(&mut got))
        .await
        .expect("echo in time")
        .expect("read");
    assert_eq!(got, msg);
}

/// A proxy with the given drain deadline and one working tunnel through it.
async fn proxy_with_a_tunnel(drain_ms: u64) -> (Harness, tokio::net::TcpStream) {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.timeouts.drain_ms = Some(drain_ms);
    let h = start_proxy(file).await;
    let mut s = open_tunnel(&h).await;
    echo_through(&mut s, b"before").await;
    (h, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_tunnel_is_drained_and_closed_at_the_deadline() {
    let (mut h, mut s) = proxy_with_a_tunnel(500).await;
    let started = ramp_proxy::clock::now();
    let task = h.signal_stop();
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The tunnel is in flight: it keeps working while the drain waits for it.
    echo_through(&mut s, b"during the drain").await;
    let outcome = tokio::time::timeout(WAIT, task)
        .await
        .expect("stops")
        .expect("task");
    assert!(
        matches!(outcome, DrainOutcome::DeadlineExceeded { remaining: 1 }),
        "{outcome:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
    // At the deadline the tunnel is closed, not left running behind a stopped proxy.
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("the tunnel is closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_that_closes_during_the_drain_lets_it_finish() {
    let (mut h, s) = proxy_with_a_tunnel(10_000).await;
    let started = ramp_proxy::clock::now();
    let task = h.signal_stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "the drain did not wait for the tunnel");
    drop(s);
    let outcome = tokio::time::timeout(WAIT, task)
        .await
        .expect("stops")
        .expect("task");
    assert_eq!(outcome, DrainOutcome::Drained);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_cleartext_clients_are_served() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let h = start_proxy(file_config(&[stable], &[canary])).await;
    let h2: hyper_util::client::legacy::Client<_, http_body_util::Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build_http();
    for _ in 0..20 {
        let a = get(&h2, &h.url("/h2"), &[]).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.body.as_ref(), b"hello");
        assert_eq!(
            a.header("x-seen-host"),
            h.addr.to_string(),
            "the :authority becomes Host for HTTP/1.1 upstreams"
        );
    }
    let s = settled_snapshot(&client(), &h).await;
    assert_eq!(s["metrics"]["stable"]["requests"], 20);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_upstreams_are_spoken_to_in_http2() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.upstream_protocol = Some("h2c".into());
    file.initial_canary_weight = Some(50.0);
    let h = start_proxy(file).await;
    let c = client();
    for _ in 0..20 {
        let a = get(&c, &h.url("/h2-upstream"), &[("x-keep", "yes")]).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-seen-version"), "HTTP/2.0");
        assert_eq!(a.header("x-seen-x-keep"), "yes");
        assert!(a.header("x-seen-x-ramp-cohort") == a.header("x-upstream"));
    }
    // Bodies stream through HTTP/2 upstreams too.
    let payload = Bytes::from(vec![7u8; 256 * 1024]);
    let a = send(&c, "POST", &h.url("/echo"), &[], payload.clone()).await;
    assert_eq!((a.status, a.body.len()), (200, payload.len()));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_a_port_in_use_as_a_typed_error() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut file = file_config(
        &["127.0.0.1:1".parse().expect("addr")],
        &["127.0.0.1:2".parse().expect("addr")],
    );
    file.listen = Some(taken.local_addr().expect("addr").to_string());
    let config = Config::from_file(file, "test").expect("config");
    match ramp_proxy::run(config, std::future::pending()).await {
        Err(ramp_proxy::RunError::Bind { what: "proxy", .. }) => {}
        other => panic!("expected a bind error, got {other:?}"),
    }
}

#[test]
fn the_binary_refuses_an_open_admin_port_without_a_token_with_exit_code_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ramp-proxy"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
            "--stable",
            "127.0.0.1:1",
            "--canary",
            "127.0.0.1:2",
        ])
        .output()
        .expect("run ramp-proxy");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("admin_listen") && stderr.contains("admin_token_file"),
        "{stderr}"
    );

    let dir = temp_dir("badcfg");
    let cfg = dir.join("proxy.toml");
    std::fs::write(
        &cfg,
        "stable = [\"127.0.0.1:1\"]\ncanary = [\"127.0.0.1:2\"]\nweight = 5\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ramp-proxy"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("proxy.toml:3:1") && stderr.contains("weight"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    // Config::load gives the same error to library users.
    assert!(Config::load(std::path::Path::new("/nonexistent/ramp.toml")).is_err());
}

/// An upstream that counts the connections it accepted and those still open.
async fn counting_upstream() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (accepted, open) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, o) = (accepted.clone(), open.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            o.fetch_add(1, Ordering::SeqCst);
            let o = o.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(Bytes::from_static(b"ok")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, accepted, open)
}

// One thread, like `--workers 1`: the idle stacks are per worker thread, and on several
// threads a connection can still be on its way back when the next request looks for one.
#[tokio::test(flavor = "current_thread")]
async fn upstream_connections_are_reused_and_closed_when_idle() {
    use std::sync::atomic::Ordering;
    let (up, accepted, open) = counting_upstream().await;
    let mut file = file_config(&[up], &[up]);
    file.timeouts.upstream_idle_ms = Some(300);
    let h = start_proxy(file).await;
    let c = client();
    for _ in 0..50 {
        let a = get(&c, &h.url("/"), &[]).await;
        assert_eq!(a.status, 200);
        assert_eq!(&a.body[..], b"ok");
    }
    // Sequential requests reuse one pooled connection.
    let n = accepted.load(Ordering::SeqCst);
    assert_eq!(
        n, 1,
        "50 sequential requests opened {n} upstream connections"
    );
    // The watchdog closes them once idle for upstream_idle_ms.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while open.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        open.load(Ordering::SeqCst),
        0,
        "idle connections were closed"
    );
    // And the next request opens a new one and still succeeds.
    assert_eq!(get(&c, &h.url("/"), &[]).await.status, 200);
    assert_eq!(accepted.load(Ordering::SeqCst), n + 1);
    h.stop().await;
}
