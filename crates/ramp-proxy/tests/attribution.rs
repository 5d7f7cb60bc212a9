//! Who is charged for what (issue 12): a client's fault never reaches a cohort, and an
//! upstream that breaks its answer after the head is one error of its cohort, counted once.
//! The controller reads these counters to decide rollouts, so each case is checked on the
//! snapshot itself, with real upstreams and raw clients on loopback.

mod common;

use bytes::Bytes;
use common::scripted::*;
use common::*;
use http_body_util::BodyExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A proxy that sends everything to the canary, with the given upstream deadlines.
async fn canary_proxy(
    canary: std::net::SocketAddr,
    tune: impl FnOnce(&mut ramp_proxy::config::FileConfig),
) -> Harness {
    let stable = start_upstream("stable").await;
    let mut file = file_config(&[stable], &[canary]);
    file.initial_canary_weight = Some(100.0);
    tune(&mut file);
    start_proxy(file).await
}

/// A client that declares a 1000-byte body, sends ten bytes and stalls is answered
/// `408 client/body_timeout` by the request-body idle deadline (300 ms here), long before the
/// upstream's response deadline, and charged to the client alone: the canary it was routed
/// to records no request, no latency, no response and no error.
///
/// Fails on 63809fb: the stall waits for the upstream response deadline and is answered
/// `504 upstream_canary/timeout`, counted as a canary 5xx (any client could push the
/// canary's error rate up and trigger a rollback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_a_408_charged_to_the_client_and_to_no_cohort() {
    let up = scripted(|r| Reply::send(ok(&r.body))).await;
    let h = canary_proxy(up.addr, |file| {
        file.timeouts.upstream_response_ms = Some(1_500);
        set_client_body_idle(file, 300);
    })
    .await;
    let c = client();
    let mut wire = raw_client(&h).await;
    write(
        &mut wire,
        "POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1000\r\n\r\nten bytes!",
    )
    .await;
    let answer = read_response(&mut wire, false).await;
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.all("x-ramp-error"), ["client/body_timeout"]);

    let s = settled_snapshot(&c, &h).await;
    assert_client_errors(&s, &[("body_timeout", 1)]);
    assert_cohort_untouched(&s, "canary");
    assert_cohort_untouched(&s, "stable");
    let text =
        String::from_utf8_lossy(&get(&c, &h.admin_url("/metrics"), &[]).await.body).into_owned();
    assert!(
        text.contains("ramp_proxy_errors_total{source=\"client\",reason=\"body_timeout\"} 1\n"),
        "{text}"
    );
    h.stop().await;
}

/// An upload that takes longer than the upstream response deadline but keeps progressing
/// (twelve pieces 100 ms apart, against a 600 ms response deadline) reaches an upstream that
/// answers only once it has the whole body, and the answer comes back: the response
/// deadline counts from the end of the request body, not from the request's arrival.
///
/// Fails on 63809fb: the response deadline runs from the request's arrival, so the upload
/// still in progress is cut at 600 ms and answered `504 upstream_stable/timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_steady_upload_is_not_cut_by_the_response_deadline() {
    let up = scripted(|r| Reply::send(ok(&r.body))).await;
    let mut file = file_config(&[up.addr], &[up.addr]);
    file.initial_canary_weight = Some(0.0);
    file.timeouts.upstream_response_ms = Some(600);
    set_client_body_idle(&mut file, 2_000);
    let h = start_proxy(file).await;
    let c = client();
    let mut wire = raw_client(&h).await;
    write(
        &mut wire,
        "POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 120\r\n\r\n",
    )
    .await;
    for i in 0..12u8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A proxy that gave up on the upload has answered and closed: read its answer.
        if wire.stream.write_all(&[b'a' + i; 10]).await.is_err() {
            break;
        }
    }
    let answer = read_response(&mut wire, false).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body.len(), 120);
    let s = settled_snapshot(&c, &h).await;
    assert_eq!(s["metrics"]["stable"]["responses"]["2xx"], 1);
    assert_eq!(s["metrics"]["stable"]["errors"], 0);
    assert_client_errors(&s, &[]);
    h.stop().await;
}

/// A chunked upload whose second chunk-size line is not hex is answered
/// `400 client/bad_body` and counted as the client's `bad_body`; the canary it was routed to
/// records nothing.
///
/// Fails on 63809fb: the broken body is counted as `client/disconnected`, and the 400 is
/// recorded in the canary (a request, a latency sample and a 4xx).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_upload_is_a_400_charged_to_the_client_and_to_no_cohort() {
    // The upstream answers only once it has the whole body, so the answer is the proxy's.
    let up = scripted(|r| Reply::send(ok(&r.body))).await;
    let h = canary_proxy(up.addr, |_| {}).await;
    let c = client();
    let mut wire = raw_client(&h).await;
    write(
        &mut wire,
        "POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nnot a chunk\r\n",
    )
    .await;
    let answer = read_response(&mut wire, false).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.all("x-ramp-error"), ["client/bad_body"]);
    let s = settled_snapshot(&c, &h).await;
    assert_client_errors(&s, &[("bad_body", 1)]);
    assert_cohort_untouched(&s, "canary");
    assert_cohort_untouched(&s, "stable");
    h.stop().await;
}

/// A client that goes away in the middle of its upload is counted as `disconnected`, and
/// the canary it was routed to records nothing.
///
/// Fails on 63809fb: the abandoned request is recorded in the canary (a request, a latency
/// sample and a 4xx for the 400 nobody read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_upload_reaches_no_cohort() {
    let up = scripted(|r| Reply::send(ok(&r.body))).await;
    let h = canary_proxy(up.addr, |_| {}).await;
    let c = client();
    let mut wire = raw_client(&h).await;
    write(
        &mut wire,
        "POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100000\r\n\r\nonly a few bytes",
    )
    .await;
    // The request is in flight at the canary before the client leaves.
    snapshot_when(&c, &h, "the upload in flight", |s| {
        s["metrics"]["canary"]["in_flight"] == 1
    })
    .await;
    drop(wire);
    let s = snapshot_when(&c, &h, "the disconnect counted", |s| {
        s["metrics"]["client_errors"]["disconnected"] == 1
            && s["metrics"]["canary"]["in_flight"] == 0
    })
    .await;
    assert_client_errors(&s, &[("disconnected", 1)]);
    assert_cohort_untouched(&s, "canary");
    h.stop().await;
}

/// Sends a GET and returns the status and the outcome of reading the whole body (bounded).
async fn get_body_outcome(
    c: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<Bytes>,
    >,
    url: &str,
) -> (u16, Result<Bytes, String>) {
    let request = hyper::Request::get(url)
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("request");
    let response = tokio::time::timeout(BOUND, c.request(request))
        .await
        .expect("head in time")
        .expect("response head");
    let status = response.status().as_u16();
    let body = tokio::time::timeout(BOUND, response.into_body().collect())
        .await
        .expect("the body ended or failed in time")
        .map(|b| b.to_bytes())
        .map_err(|e| e.to_string());
    (status, body)
}

/// The canary's `errors` counts every answer the gates must see as failed, each request at
/// most once: an upstream 5xx, and a 200 whose body the upstream cut short after the head
/// (a reset, a stall past the body idle deadline, broken chunk framing), counted when the
/// cut is seen. A 503 whose body is then cut counts once, not twice. `responses` keeps the
/// status classes the clients saw (the cut 200s stay 2xx), and the Prometheus exposition
/// carries the same count.
///
/// Fails on 63809fb: there is no `errors` counter; the cut 200s are counted only as 2xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_after_the_head_is_one_error_of_the_cohort() {
    let up = scripted(|r| match r.target() {
        "/reset" => Reply::send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
            .then(Then::ResetAfter(Duration::from_millis(50))),
        "/stall" => Reply::send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"),
        "/garbage" => {
            Reply::send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
                .and_later(Duration::from_millis(50), "zz\r\nnot a chunk\r\n")
        }
        "/cut-503" => {
            Reply::send("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\nshort")
                .then(Then::CloseAfter(Duration::from_millis(50)))
        }
        "/plain-503" => {
            Reply::send("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown")
        }
        _ => Reply::send(ok("fine")),
    })
    .await;
    let h = canary_proxy(up.addr, |file| {
        file.timeouts.upstream_body_idle_ms = Some(1_000);
    })
    .await;
    let c = client();
    let errors = |s: &serde_json::Value| s["metrics"]["canary"]["errors"].clone();

    let (status, body) = get_body_outcome(&c, &h.url("/fine")).await;
    assert_eq!((status, body), (200, Ok(Bytes::from_static(b"fine"))));
    assert_eq!(errors(&settled_snapshot(&c, &h).await), 0);

    // The stalled body: nothing is counted while the head alone has arrived; the error is
    // counted when the stall is seen.
    let request = hyper::Request::get(h.url("/stall"))
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("request");
    let response = tokio::time::timeout(BOUND, c.request(request))
        .await
        .expect("head in time")
        .expect("head");
    assert_eq!(response.status(), 200);
    assert_eq!(errors(&snapshot(&c, &h).await), 0, "counted before the cut");
    let body = tokio::time::timeout(BOUND, response.into_body().collect())
        .await
        .expect("the stalled body failed in time");
    assert!(body.is_err(), "the client read a complete body");
    assert_eq!(errors(&settled_snapshot(&c, &h).await), 1);

    for path in ["/reset", "/garbage", "/cut-503"] {
        let (_, body) = get_body_outcome(&c, &h.url(path)).await;
        assert!(body.is_err(), "{path}: the client read a complete body");
    }
    let (status, _) = get_body_outcome(&c, &h.url("/plain-503")).await;
    assert_eq!(status, 503);

    let s = settled_snapshot(&c, &h).await;
    let m = &s["metrics"]["canary"];
    assert_eq!(m["errors"], 5, "{m}");
    assert_eq!(m["responses"]["2xx"], 4, "{m}");
    assert_eq!(m["responses"]["5xx"], 2, "{m}");
    assert_eq!(m["requests"], 6, "{m}");
    assert_eq!(m["latency"]["count"], 6, "{m}");
    let u = &m["upstream_errors"];
    assert_eq!(
        (
            &u["reset"],
            &u["timeout"],
            &u["bad_response"],
            &u["status_5xx"]
        ),
        (&2.into(), &1.into(), &1.into(), &2.into()),
        "{u}"
    );
    assert_eq!(s["metrics"]["stable"]["errors"], 0);
    assert_client_errors(&s, &[]);
    let text =
        String::from_utf8_lossy(&get(&c, &h.admin_url("/metrics"), &[]).await.body).into_owned();
    assert!(
        text.contains("ramp_proxy_cohort_errors_total{cohort=\"canary\"} 5\n")
            && text.contains("ramp_proxy_cohort_errors_total{cohort=\"stable\"} 0\n"),
        "{text}"
    );
    h.stop().await;
}

/// A proxy to h2c upstreams that sends everything to the canary, with the given response
/// and body idle deadlines.
async fn h2c_canary_proxy(response_ms: u64, body_idle_ms: u64) -> Harness {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.upstream_protocol = Some("h2c".into());
    file.initial_canary_weight = Some(100.0);
    file.timeouts.upstream_response_ms = Some(response_ms);
    set_client_body_idle(&mut file, body_idle_ms);
    start_proxy(file).await
}

/// With an h2c upstream (hyper's client sends the body), a stalled upload is answered
/// `408 client/body_timeout` and reaches no cohort, and a slow but steady one is not cut by
/// the response deadline: the same rules as the HTTP/1.1 pool's.
///
/// Fails on 63809fb: the response deadline runs from the request's arrival, so both
/// uploads are answered `504 upstream_canary/timeout`, counted as canary 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_upstreams_follow_the_same_upload_rules() {
    let h = h2c_canary_proxy(600, 300).await;
    let c = client();
    let mut wire = raw_client(&h).await;
    write(
        &mut wire,
        "POST /collect HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1000\r\n\r\nten bytes!",
    )
    .await;
    let answer = read_response(&mut wire, false).await;
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.all("x-ramp-error"), ["client/body_timeout"]);
    let s = settled_snapshot(&c, &h).await;
    assert_client_errors(&s, &[("body_timeout", 1)]);
    assert_cohort_untouched(&s, "canary");
    h.stop().await;

    let h = h2c_canary_proxy(600, 2_000).await;
    let mut wire = raw_client(&h).await;
    write(
        &mut wire,
        "POST /collect HTTP/1.1\r\nHost: app.test\r\nContent-Length: 120\r\n\r\n",
    )
    .await;
    for i in 0..12u8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if wire.stream.write_all(&[b'a' + i; 10]).await.is_err() {
            break;
        }
    }
    let answer = read_response(&mut wire, false).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body.len(), 120);
    let s = settled_snapshot(&c, &h).await;
    assert_eq!(s["metrics"]["canary"]["errors"], 0);
    assert_client_errors(&s, &[]);
    h.stop().await;
}

/// Posts an injected fault through the admin API (whose answer must be 201).
async fn inject_fault(h: &Harness, body: &str) {
    let a = send(
        &client(),
        "POST",
        &h.admin_url("/faults"),
        &[],
        Bytes::from(body.to_string()),
    )
    .await;
    assert_eq!(a.status, 201, "POST /faults: {:?}", a.body);
}

/// An HTTP/2 client that sends its whole POST body and gives up after 500 ms, while a
/// rehearsal's injected 800 ms delay holds the canary's requests, resets its stream: the
/// proxy never read the body (it was waiting out the delay, not waiting for the client),
/// so the request stays the canary's, with the latency it had (the 500 or so milliseconds
/// the client waited), and the client's going away is counted as `disconnected`, never as
/// an error. The delayed GETs of the same clients are there too, so the latency gate sees
/// every delayed request.
///
/// Fails on c7d83a2: every delayed POST vanishes from the canary (requests 2 instead of 5:
/// no request and no latency for any of the three POSTs), because a body the proxy had not
/// read yet looked like an upload still in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_given_up_during_an_injected_delay_stays_in_the_cohort() {
    let canary = start_upstream("canary").await;
    let h = canary_proxy(canary, |_| {}).await;
    inject_fault(
        &h,
        r#"{"cohort": "canary", "fraction": 1.0, "add_latency_ms": 800, "duration_s": 60}"#,
    )
    .await;
    let h2: hyper_util::client::legacy::Client<_, http_body_util::Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build_http();
    for _ in 0..3 {
        let request = hyper::Request::post(h.url("/collect"))
            .body(http_body_util::Full::new(Bytes::from_static(
                b"a small form",
            )))
            .expect("request");
        let answered = tokio::time::timeout(Duration::from_millis(500), h2.request(request)).await;
        assert!(
            answered.is_err(),
            "answered before the injected delay ended"
        );
    }
    for _ in 0..2 {
        let a = get(&h2, &h.url("/"), &[]).await;
        assert_eq!(a.status, 200);
    }
    let c = client();
    let s = snapshot_when(&c, &h, "the three resets counted", |s| {
        s["metrics"]["client_errors"]["disconnected"] == 3
            && s["metrics"]["canary"]["in_flight"] == 0
    })
    .await;
    let m = &s["metrics"]["canary"];
    assert_eq!(m["requests"], 5, "{m}");
    assert_eq!(m["latency"]["count"], 5, "{m}");
    assert_eq!(m["faults_delayed"], 5, "{m}");
    assert_eq!(m["errors"], 0, "{m}");
    assert_eq!(m["responses"]["2xx"], 2, "{m}");
    let sum_us = m["latency"]["sum"].as_u64().expect("latency sum");
    assert!(
        sum_us >= 3 * 400_000 + 2 * 800_000,
        "the given-up POSTs were recorded without the time they waited: {m}"
    );
    assert_client_errors(&s, &[("disconnected", 3)]);
    assert_cohort_untouched(&s, "stable");
    h.stop().await;
}

/// A 503 whose head has arrived but whose body is still streaming is not yet in the
/// snapshot at all: its error and its 5xx are counted when the request ends, after its
/// request and latency, so a snapshot never shows an error (or a 5xx) whose request it
/// does not also show; the controller, which clamps each slot's errors to its requests,
/// would otherwise lose the error on a quiet cohort. Once the body has ended, all of it is
/// there: one request, one 5xx, one error.
///
/// Fails on c7d83a2: while the body streams, the snapshot shows the canary's error and its
/// 5xx with no request (`errors` 1, `latency.count` 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_is_never_in_a_snapshot_without_its_request() {
    let up = scripted(|_| {
        Reply::send("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 10\r\n\r\nhalf")
            .and_later(Duration::from_millis(1_000), "-rest")
            .and_later(Duration::from_millis(0), "!")
    })
    .await;
    let h = canary_proxy(up.addr, |_| {}).await;
    let c = client();
    let request = hyper::Request::get(h.url("/slow-503"))
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("request");
    let response = tokio::time::timeout(BOUND, c.request(request))
        .await
        .expect("head in time")
        .expect("head");
    assert_eq!(response.status(), 503);
    let s = snapshot(&c, &h).await;
    let m = &s["metrics"]["canary"];
    assert_eq!(m["in_flight"], 1, "the body ended before the snapshot: {m}");
    assert_eq!(
        (
            &m["errors"],
            &m["responses"]["5xx"],
            &m["latency"]["count"],
            &m["requests"]
        ),
        (&0.into(), &0.into(), &0.into(), &0.into()),
        "an error or a 5xx without its request: {m}"
    );
    let body = tokio::time::timeout(BOUND, response.into_body().collect())
        .await
        .expect("the body ended in time")
        .expect("a complete body");
    assert_eq!(body.to_bytes().as_ref(), b"half-rest!");
    let s = settled_snapshot(&c, &h).await;
    let m = &s["metrics"]["canary"];
    assert_eq!(
        (
            &m["errors"],
            &m["responses"]["5xx"],
            &m["latency"]["count"],
            &m["requests"]
        ),
        (&1.into(), &1.into(), &1.into(), &1.into()),
        "{m}"
    );
    h.stop().await;
}

/// An upstream whose own request-body timeout (200 ms here) is shorter than the proxy's
/// `client_body_idle_ms` (5 s) resets the connection when a client stalls its upload: the
/// proxy was waiting for the client's body, so the client is to blame (408
/// `client/body_timeout`), and the canary records nothing, over HTTP/1.1 and h2c upstreams.
///
/// Fails on c7d83a2: the reset is answered `502 upstream_canary/reset` and counted as one of
/// the canary's errors, so a slow-upload client aimed at the canary counts against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_gives_up_on_a_stalled_upload_first_is_not_charged() {
    // HTTP/1.1: reads what arrives, and resets the connection after 200 ms without more.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let impatient = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await
                {
                    if n == 0 {
                        return;
                    }
                }
                // Linger 0 makes the close send RST; with a zero timeout it never blocks.
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
            });
        }
    });
    // h2c: reads the body, and fails the stream (a reset) after 200 ms without a piece.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let impatient_h2 = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(
                |req: hyper::Request<hyper::body::Incoming>| async move {
                    let mut body = req.into_body();
                    loop {
                        match tokio::time::timeout(Duration::from_millis(200), body.frame()).await {
                            Ok(Some(Ok(_))) => {}
                            Ok(None) => {
                                return Ok(hyper::Response::new(http_body_util::Full::new(
                                    Bytes::from_static(b"all of it"),
                                )))
                            }
                            Ok(Some(Err(e))) => return Err(e.to_string()),
                            Err(_) => return Err("request body timeout".to_string()),
                        }
                    }
                },
            );
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    for (upstream, protocol) in [(impatient, "http1"), (impatient_h2, "h2c")] {
        let h = canary_proxy(upstream, |file| {
            file.upstream_protocol = Some(protocol.into());
            set_client_body_idle(file, 5_000);
        })
        .await;
        let c = client();
        let mut wire = raw_client(&h).await;
        write(
            &mut wire,
            "POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1000\r\n\r\nten bytes!",
        )
        .await;
        let answer = read_response(&mut wire, false).await;
        assert_eq!(answer.status, 408, "{protocol}: {answer:?}");
        assert_eq!(
            answer.all("x-ramp-error"),
            ["client/body_timeout"],
            "{protocol}"
        );
        let s = settled_snapshot(&c, &h).await;
        assert_client_errors(&s, &[("body_timeout", 1)]);
        assert_cohort_untouched(&s, "canary");
        assert_cohort_untouched(&s, "stable");
        h.stop().await;
    }
}

/// An HTTP/2 client that opens a POST and then sends only empty DATA frames (every 100 ms)
/// sends nothing of its body: it is answered `408 client/body_timeout` one body idle
/// deadline (400 ms) after its last byte, while it is still sending empty frames, and
/// charged to the client alone.
///
/// Passes on c7d83a2 too: h2 0.4.20 drops an empty DATA frame without END_STREAM as it
/// receives it, so the frames never reach the proxy's body. This is the end-to-end guard;
/// the proxy's own rule (such a frame is not progress, whatever the HTTP/2 layer passes up)
/// is `upload::tests::an_empty_data_frame_is_not_progress`, which fails on c7d83a2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_http2_data_frames_are_not_upload_progress() {
    let canary = start_upstream("canary").await;
    let h = canary_proxy(canary, |file| set_client_body_idle(file, 400)).await;
    let tcp = tokio::net::TcpStream::connect(h.addr)
        .await
        .expect("connect");
    let (mut send_request, connection) = h2::client::handshake(tcp).await.expect("handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = hyper::Request::post(format!("http://{}/collect", h.addr))
        .body(())
        .expect("request");
    let (response, mut stream) = send_request
        .send_request(request, false)
        .expect("send the head");
    stream
        .send_data(Bytes::from_static(b"first"), false)
        .expect("send a piece");
    let keep_alive = tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream.send_data(Bytes::new(), false).is_err() {
                return;
            }
        }
    });
    let response = tokio::time::timeout(Duration::from_secs(2), response)
        .await
        .expect("no answer within 2 s: the empty frames kept the upload alive")
        .expect("a response");
    assert_eq!(response.status(), 408);
    assert_eq!(
        response.headers().get("x-ramp-error").map(|v| v.as_bytes()),
        Some(&b"client/body_timeout"[..])
    );
    keep_alive.abort();
    let c = client();
    let s = snapshot_when(&c, &h, "the stall counted", |s| {
        s["metrics"]["canary"]["in_flight"] == 0
    })
    .await;
    assert_client_errors(&s, &[("body_timeout", 1)]);
    assert_cohort_untouched(&s, "canary");
    h.stop().await;
}
