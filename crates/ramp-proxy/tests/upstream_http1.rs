//! The HTTP/1.1 upstream side of the proxy, tested from outside: scripted upstreams read
//! the proxy's requests byte for byte and answer exact bytes, so that request and response
//! framing, connection reuse, header rewriting and the counting of broken answers are all
//! checked on the wire.

mod common;

use bytes::Bytes;
use common::scripted::*;
use common::*;
use http_body_util::BodyExt;
use ramp_proxy::proxy::COHORT_HEADER;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request body of unknown length (the client sends it chunked, in three chunks with
/// pauses) reaches the upstream as a valid chunked body, chunk by chunk as the client sends
/// it (the client sends the next chunk only once the upstream has decoded the previous one,
/// so a proxy that buffered the body would stall), with `transfer-encoding: chunked` and no
/// `content-length`; the upstream's echo comes back exactly. The client's trailers reach the
/// upstream in the last chunk's trailer section.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_streams_to_the_upstream_as_a_valid_chunked_body() {
    let up = scripted(|r| Reply::send(ok(&r.body))).await;
    let h = proxy_to(&up, 0.0).await;
    let mut client = raw_client(&h).await;

    write(
        &mut client,
        "POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await;
    up.wait_for_body_bytes(5).await;
    write(&mut client, "7\r\n, world\r\n").await;
    up.wait_for_body_bytes(12).await;
    write(&mut client, "1\r\n!\r\n0\r\n\r\n").await;

    let answer = read_response(&mut client, false).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        String::from_utf8_lossy(&answer.body),
        "hello, world!",
        "the echo of the concatenated chunks"
    );

    let got = up.last();
    assert_eq!(got.error, None, "the upstream could not read the request");
    assert_eq!(got.line, "POST /upload HTTP/1.1");
    assert_eq!(got.all("transfer-encoding"), ["chunked"]);
    assert_eq!(
        got.all("content-length"),
        Vec::<String>::new(),
        "a chunked request must not also carry a content-length"
    );
    assert_eq!(String::from_utf8_lossy(&got.body), "hello, world!");
    assert!(
        got.raw_body.ends_with(b"\r\n0\r\n\r\n"),
        "the body ends with the last chunk and an empty trailer section: {:?}",
        String::from_utf8_lossy(&got.raw_body)
    );

    // The client's trailers go up in the last chunk's trailer section.
    write(
        &mut client,
        "POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n\
         3\r\nabc\r\n0\r\nx-checksum: 42\r\n\r\n",
    )
    .await;
    let answer = read_response(&mut client, false).await;
    assert_eq!(
        (answer.status, &answer.body[..]),
        (200, &b"abc"[..]),
        "{answer:?}"
    );
    let got = up.last();
    assert_eq!(got.error, None, "the upstream could not read the request");
    assert_eq!(got.all("transfer-encoding"), ["chunked"]);
    assert_eq!(
        got.trailers,
        [("x-checksum".to_string(), "42".to_string())],
        "{:?}",
        String::from_utf8_lossy(&got.raw_body)
    );
    h.stop().await;
}

/// A chunked response with chunk extensions, upper-case hex sizes, size lines split across
/// TCP segments and a trailer section reaches the client with exactly its data, and the
/// connection is read to the end of the trailers, so that it carries the next request.
// One thread: the idle stacks are per worker thread (see lifecycle.rs).
#[tokio::test(flavor = "current_thread")]
async fn a_chunked_response_with_extensions_passes_through_and_keeps_its_connection() {
    let pause = Duration::from_millis(20);
    let up = scripted(move |r| match r.target() {
        "/chunked" => {
            Reply::send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;name=value\r\nWi")
                .and_later(pause, "ki\r\n5;a=b;c\r\npedia\r\nE")
                .and_later(pause, "\r\n in\r\n\r\nchunks.\r\n0\r\nx-trailer: t\r\n\r\n")
        }
        _ => Reply::send(ok("next")),
    })
    .await;
    let h = proxy_to(&up, 0.0).await;
    let c = client();

    let a = get(&c, &h.url("/chunked"), &[]).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&a.body),
        "Wikipedia in\r\n\r\nchunks.",
        "the chunk data, without sizes, extensions or trailers"
    );
    let a = get(&c, &h.url("/next"), &[]).await;
    assert_eq!((a.status, &a.body[..]), (200, &b"next"[..]));
    assert_eq!(
        up.accepted(),
        1,
        "the connection was not reused after the chunked response"
    );
    let s = settled_snapshot(&c, &h).await;
    assert_upstream_errors(&s, "stable", "bad_response", 0);
    h.stop().await;
}

/// A body delimited by the close of the connection (HTTP/1.1 200 with neither
/// content-length nor transfer-encoding) reaches the client whole, larger than one read,
/// and the next request succeeds on a new upstream connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_delimited_body_arrives_whole_and_the_next_request_gets_a_new_connection() {
    let big: Vec<u8> = (0..200 * 1024u32).map(|i| b'a' + (i % 26) as u8).collect();
    let tail = big.clone();
    let up = scripted(move |r| match r.target() {
        "/until-close" => {
            Reply::send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part;")
                .and_later(Duration::from_millis(20), &tail)
                .then(Then::Close)
        }
        _ => Reply::send(ok("after")),
    })
    .await;
    let h = proxy_to(&up, 0.0).await;
    let c = client();

    let a = get(&c, &h.url("/until-close"), &[]).await;
    assert_eq!(a.status, 200);
    let mut want = b"first part;".to_vec();
    want.extend_from_slice(&big);
    assert_eq!(
        a.body.len(),
        want.len(),
        "the close-delimited body's length"
    );
    assert!(a.body[..] == want[..], "the close-delimited body differs");
    assert_eq!(up.accepted(), 1);

    let a = get(&c, &h.url("/after"), &[]).await;
    assert_eq!((a.status, &a.body[..]), (200, &b"after"[..]));
    assert_eq!(
        up.accepted(),
        2,
        "the request after a close-delimited body needs a new connection"
    );
    let s = settled_snapshot(&c, &h).await;
    assert_upstream_errors(&s, "stable", "reset", 0);
    h.stop().await;
}

/// The answer to HEAD carries the upstream's content-length but no body, and the proxy does
/// not wait for one: the next request on the same client connection is answered at once,
/// on the same upstream connection.
#[tokio::test(flavor = "current_thread")]
async fn a_head_answer_has_the_content_length_but_no_body_and_the_connection_goes_on() {
    let up = scripted(|r| match r.method() {
        "HEAD" => {
            Reply::send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\n")
        }
        _ => Reply::send(ok("0123456789")),
    })
    .await;
    let h = proxy_to(&up, 0.0).await;
    let mut client = raw_client(&h).await;

    write(&mut client, "HEAD /doc HTTP/1.1\r\nHost: app.test\r\n\r\n").await;
    let head = read_response(&mut client, true).await;
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(head.all("content-length"), ["10"], "{head:?}");

    write(&mut client, "GET /doc HTTP/1.1\r\nHost: app.test\r\n\r\n").await;
    let get = read_response(&mut client, false).await;
    assert_eq!(get.status, 200, "{get:?}");
    assert_eq!(String::from_utf8_lossy(&get.body), "0123456789");
    assert_eq!(
        up.accepted(),
        1,
        "the upstream connection was not reused after the HEAD answer"
    );
    let methods: Vec<String> = up
        .received()
        .iter()
        .map(|r| r.method().to_string())
        .collect();
    assert_eq!(methods, ["HEAD", "GET"]);
    h.stop().await;
}

/// 204 and 304 answers have no body, even a 304 that announces a content-length: the
/// client gets each head alone, and the next answers on the same client connection and the
/// same upstream connection are not shifted by bytes that never come.
#[tokio::test(flavor = "current_thread")]
async fn no_content_and_not_modified_answers_have_no_body() {
    let up = scripted(|r| match r.target() {
        "/204" => Reply::send("HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"),
        "/304" => {
            Reply::send("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\n")
        }
        _ => Reply::send(ok("after")),
    })
    .await;
    let h = proxy_to(&up, 0.0).await;
    let mut client = raw_client(&h).await;

    write(&mut client, "GET /204 HTTP/1.1\r\nHost: app.test\r\n\r\n").await;
    let a = read_response(&mut client, false).await;
    assert_eq!(a.status, 204, "{a:?}");
    assert_eq!(a.all("x-a"), ["1"], "{a:?}");
    assert_eq!(a.all("transfer-encoding"), Vec::<String>::new(), "{a:?}");

    write(&mut client, "GET /304 HTTP/1.1\r\nHost: app.test\r\n\r\n").await;
    let a = read_response(&mut client, false).await;
    assert_eq!(a.status, 304, "{a:?}");
    assert_eq!(a.all("etag"), ["\"v1\""], "{a:?}");
    assert_eq!(a.all("transfer-encoding"), Vec::<String>::new(), "{a:?}");

    write(&mut client, "GET /after HTTP/1.1\r\nHost: app.test\r\n\r\n").await;
    let a = read_response(&mut client, false).await;
    assert_eq!(
        (a.status, String::from_utf8_lossy(&a.body).as_ref()),
        (200, "after"),
        "{a:?}"
    );
    assert_eq!(up.accepted(), 1, "the upstream connection was not reused");
    h.stop().await;
}

/// Interim answers (100 Continue, and 103 Early Hints with fields) before the final answer
/// are skipped: the client's first bytes are the final 200's status line, its body is
/// intact, and the connection carries the next request.
#[tokio::test(flavor = "current_thread")]
async fn interim_answers_are_skipped_and_the_final_answer_is_passed_on() {
    let pause = Duration::from_millis(20);
    let up = scripted(move |r| match r.target() {
        "/interim" => Reply::send("HTTP/1.1 100 Continue\r\n\r\n")
            .and_later(
                pause,
                "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
            )
            .and_later(pause, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"),
        _ => Reply::send(ok("next")),
    })
    .await;
    let h = proxy_to(&up, 0.0).await;
    let mut client = raw_client(&h).await;

    write(
        &mut client,
        "GET /interim HTTP/1.1\r\nHost: app.test\r\n\r\n",
    )
    .await;
    let a = read_response(&mut client, false).await;
    assert_eq!(a.line, "HTTP/1.1 200 OK", "{a:?}");
    assert_eq!(String::from_utf8_lossy(&a.body), "final");
    assert_eq!(
        a.all("link"),
        Vec::<String>::new(),
        "the 103's fields are not merged in"
    );

    write(&mut client, "GET /next HTTP/1.1\r\nHost: app.test\r\n\r\n").await;
    let a = read_response(&mut client, false).await;
    assert_eq!(
        (a.status, String::from_utf8_lossy(&a.body).as_ref()),
        (200, "next")
    );
    assert_eq!(up.accepted(), 1, "the upstream connection was not reused");
    h.stop().await;
}

/// Sequential requests reuse one upstream connection when the upstream keeps it alive: 5
/// requests arrive on one connection, one after the other.
#[tokio::test(flavor = "current_thread")]
async fn keep_alive_answers_let_sequential_requests_share_one_connection() {
    let up = scripted(|r| Reply::send(ok(format!("answer {}", r.nth)))).await;
    let h = proxy_to(&up, 0.0).await;
    let c = client();
    for i in 0..5 {
        let a = get(&c, &h.url(&format!("/seq/{i}")), &[]).await;
        assert_eq!(a.status, 200);
        assert_eq!(String::from_utf8_lossy(&a.body), format!("answer {i}"));
    }
    assert_eq!(
        up.accepted(),
        1,
        "5 sequential requests opened several connections"
    );
    let order: Vec<(usize, usize, String)> = up
        .received()
        .iter()
        .map(|r| (r.conn, r.nth, r.target().to_string()))
        .collect();
    let want: Vec<(usize, usize, String)> = (0..5).map(|i| (0, i, format!("/seq/{i}"))).collect();
    assert_eq!(order, want);
    h.stop().await;
}

/// An answer with `Connection: close` is never followed by another request on its
/// connection: with an upstream that then closes, every request succeeds on a new
/// connection; with one that leaves the connection open, the proxy still does not reuse it.
#[tokio::test(flavor = "current_thread")]
async fn connection_close_answers_get_a_new_connection_per_request() {
    let close = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye";
    for then in [Then::Close, Then::KeepOpen] {
        let up = scripted(move |_| Reply::send(close).then(then)).await;
        let h = proxy_to(&up, 0.0).await;
        let c = client();
        for i in 0..5 {
            let a = get(&c, &h.url("/"), &[]).await;
            assert_eq!(
                (a.status, &a.body[..]),
                (200, &b"bye"[..]),
                "request {i}, {then:?}"
            );
        }
        assert_eq!(
            up.accepted(),
            5,
            "upstream that does {then:?} after Connection: close"
        );
        assert!(
            up.received().iter().all(|r| r.nth == 0),
            "a request followed Connection: close on its connection ({then:?})"
        );
        let s = settled_snapshot(&c, &h).await;
        assert_upstream_errors(&s, "stable", "reset", 0);
        h.stop().await;
    }
}

/// An HTTP/1.0 answer is reused only if it says `Connection: keep-alive`: without it, 5
/// requests take 5 connections even though the upstream leaves each open; with it, they
/// share one.
#[tokio::test(flavor = "current_thread")]
async fn http10_answers_are_reused_only_with_keep_alive() {
    for (answer, want) in [
        ("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 5),
        (
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
            1,
        ),
    ] {
        let up = scripted(move |_| Reply::send(answer)).await;
        let h = proxy_to(&up, 0.0).await;
        let c = client();
        for _ in 0..5 {
            let a = get(&c, &h.url("/"), &[]).await;
            assert_eq!((a.status, &a.body[..]), (200, &b"ok"[..]), "{answer:?}");
        }
        assert_eq!(
            up.accepted(),
            want,
            "connections for 5 requests answered {answer:?}"
        );
        h.stop().await;
    }
}

/// An idle connection that the upstream closed after its keep-alive answer is never used
/// for a request (or the request is retried on a new connection): each request after the
/// close gets its 200, never a 502, five times in a row, and nothing is counted against the
/// upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_the_upstream_closed_does_not_fail_the_next_request() {
    let up = scripted(|_| {
        Reply::send("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\n\r\nfresh")
            .then(Then::CloseAfter(Duration::from_millis(50)))
    })
    .await;
    let h = proxy_to(&up, 0.0).await;
    let c = client();
    let a = get(&c, &h.url("/"), &[]).await;
    assert_eq!((a.status, &a.body[..]), (200, &b"fresh"[..]));
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let a = get(&c, &h.url("/"), &[]).await;
        assert_eq!(
            (a.status, a.header("x-ramp-error")),
            (200, String::new()),
            "request {i} after the upstream closed its idle connection"
        );
        assert_eq!(&a.body[..], b"fresh");
    }
    assert_eq!(up.accepted(), 6, "one connection per request");
    let s = settled_snapshot(&c, &h).await;
    assert_upstream_errors(&s, "stable", "reset", 0);
    assert_eq!(s["metrics"]["stable"]["responses"]["2xx"], 6);
    assert_eq!(s["metrics"]["stable"]["responses"]["5xx"], 0);
    h.stop().await;
}

/// When a reused connection is closed by the upstream after it read the request but before
/// any answer, an idempotent GET is sent once more on a new connection and succeeds, while
/// a POST with a body is not sent twice: it fails with 502 counted as a reset.
#[tokio::test(flavor = "current_thread")]
async fn only_idempotent_requests_are_retried_after_a_reused_connection_closes_unanswered() {
    // Each connection answers its first request and hangs up on its second.
    let up = scripted(|r| {
        if r.nth == 0 {
            Reply::send(ok("first"))
        } else {
            Reply::hang_up()
        }
    })
    .await;
    let h = proxy_to(&up, 0.0).await;
    let c = client();

    assert_eq!(get(&c, &h.url("/a"), &[]).await.status, 200);
    let a = get(&c, &h.url("/b"), &[]).await;
    assert_eq!(
        (a.status, a.header("x-ramp-error"), &a.body[..]),
        (200, String::new(), &b"first"[..]),
        "the GET on the reused connection that closed is retried on a new one"
    );
    let seen: Vec<(usize, usize, String)> = up
        .received()
        .iter()
        .map(|r| (r.conn, r.nth, r.line.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (0, 0, "GET /a HTTP/1.1".to_string()),
            (0, 1, "GET /b HTTP/1.1".to_string()),
            (1, 0, "GET /b HTTP/1.1".to_string()),
        ]
    );

    let a = send(
        &c,
        "POST",
        &h.url("/submit"),
        &[],
        Bytes::from_static(b"x=1"),
    )
    .await;
    assert_eq!(
        (a.status, a.header("x-ramp-error")),
        (502, "upstream_stable/reset".to_string())
    );
    let posts: Vec<(usize, usize)> = up
        .received()
        .iter()
        .filter(|r| r.method() == "POST")
        .map(|r| (r.conn, r.nth))
        .collect();
    assert_eq!(posts, [(1, 1)], "a POST was sent more than once");
    assert_eq!(up.accepted(), 2);
    let s = settled_snapshot(&c, &h).await;
    assert_upstream_errors(&s, "stable", "reset", 1);
    h.stop().await;
}

/// Repeated response fields (two `set-cookie`) reach the client as two fields in their
/// order, and the hop-by-hop ones (`keep-alive`, `connection` and the `x-hop` field it
/// names) are removed while end-to-end fields stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_response_fields_keep_their_order_and_hop_by_hop_ones_are_removed() {
    let up = scripted(|_| {
        Reply::send(
            "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nKeep-Alive: timeout=5, max=100\r\n\
             Connection: x-hop\r\nX-Hop: secret\r\nSet-Cookie: b=2\r\nX-End: kept\r\n\
             Content-Length: 2\r\n\r\nok",
        )
    })
    .await;
    let h = proxy_to(&up, 0.0).await;
    let c = client();
    let a = get(&c, &h.url("/cookies"), &[]).await;
    assert_eq!((a.status, &a.body[..]), (200, &b"ok"[..]));
    let cookies: Vec<&str> = a
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
    assert_eq!(a.header("x-end"), "kept");
    assert!(!a.headers.contains_key("keep-alive"), "{:?}", a.headers);
    assert!(!a.headers.contains_key("x-hop"), "{:?}", a.headers);
    let connection: Vec<&str> = a
        .headers
        .get_all("connection")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert!(
        connection
            .iter()
            .all(|v| !v.to_ascii_lowercase().contains("x-hop")),
        "the upstream's Connection field was passed on: {connection:?}"
    );
    h.stop().await;
}

/// The upstream gets an origin-form request line and the Host, and exactly one each of
/// `x-forwarded-for`, `x-forwarded-proto` and the cohort header, with the proxy's values:
/// client-sent `x-forwarded-proto` and cohort fields are replaced, a client-sent
/// `x-forwarded-for` is extended with the client's address in one field, and an
/// absolute-form target becomes origin-form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_gets_one_of_each_forwarded_field_and_an_origin_form_target() {
    let up = scripted(|_| Reply::send(ok("seen"))).await;
    let h = proxy_to(&up, 0.0).await;
    let c = client();
    let one = |v: &str| vec![v.to_string()];

    assert_eq!(get(&c, &h.url("/path?q=1"), &[]).await.status, 200);
    let r = up.last();
    assert_eq!(r.line, "GET /path?q=1 HTTP/1.1");
    assert_eq!(r.all("host"), one(&h.addr.to_string()));
    assert_eq!(r.all("x-forwarded-for"), one("127.0.0.1"));
    assert_eq!(r.all("x-forwarded-proto"), one("http"));
    assert_eq!(r.all(COHORT_HEADER), one("stable"));

    let spoofed = [("x-forwarded-proto", "https"), (COHORT_HEADER, "canary")];
    assert_eq!(get(&c, &h.url("/spoof"), &spoofed).await.status, 200);
    let r = up.last();
    assert_eq!(r.all("x-forwarded-proto"), one("http"), "{:?}", r.fields);
    assert_eq!(r.all(COHORT_HEADER), one("stable"), "{:?}", r.fields);
    assert_eq!(r.all("x-forwarded-for"), one("127.0.0.1"), "{:?}", r.fields);

    let chained = [("x-forwarded-for", "10.0.0.1")];
    assert_eq!(get(&c, &h.url("/chain"), &chained).await.status, 200);
    let r = up.last();
    assert_eq!(
        r.all("x-forwarded-for"),
        one("10.0.0.1, 127.0.0.1"),
        "{:?}",
        r.fields
    );
    assert_eq!(r.all("x-forwarded-proto"), one("http"));

    set_weight(&c, &h, 100.0).await;
    assert_eq!(get(&c, &h.url("/to-canary"), &[]).await.status, 200);
    let r = up.last();
    assert_eq!(r.line, "GET /to-canary HTTP/1.1");
    assert_eq!(r.all(COHORT_HEADER), one("canary"));

    let mut client = raw_client(&h).await;
    write(
        &mut client,
        "GET http://app.example/abs?x=1 HTTP/1.1\r\nHost: app.example\r\n\r\n",
    )
    .await;
    assert_eq!(read_response(&mut client, false).await.status, 200);
    let r = up.last();
    assert_eq!(
        r.line, "GET /abs?x=1 HTTP/1.1",
        "absolute-form becomes origin-form"
    );
    assert_eq!(r.all("host"), one("app.example"));
    assert_eq!(r.all("x-forwarded-for"), one("127.0.0.1"));
    h.stop().await;
}

/// A response head over 64 KiB (one field with a 70,000-byte value) is refused with a 502
/// marked `upstream_canary/bad_response` and counted once as the canary's bad response,
/// while a 60,000-byte field passes through intact and the proxy keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_head_over_64_kib_is_a_bad_response() {
    let big_field = |n: usize| {
        format!(
            "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\nok",
            "v".repeat(n)
        )
    };
    let (large, oversized) = (big_field(60_000), big_field(70_000));
    let up = scripted(move |r| match r.target() {
        "/oversized" => Reply::send(&oversized),
        _ => Reply::send(&large),
    })
    .await;
    let h = proxy_to(&up, 100.0).await;
    let c = client();

    let a = get(&c, &h.url("/large"), &[]).await;
    assert_eq!((a.status, &a.body[..]), (200, &b"ok"[..]));
    assert_eq!(
        a.header("x-big").len(),
        60_000,
        "a large field under the limit passes"
    );

    let a = get(&c, &h.url("/oversized"), &[]).await;
    assert_eq!(
        (a.status, a.header("x-ramp-error")),
        (502, "upstream_canary/bad_response".to_string())
    );
    assert_eq!(a.header("x-big"), "");

    assert_eq!(
        get(&c, &h.url("/large"), &[]).await.status,
        200,
        "the proxy keeps serving"
    );
    let s = settled_snapshot(&c, &h).await;
    assert_upstream_errors(&s, "canary", "bad_response", 1);
    h.stop().await;
}

/// Sends a GET through `c` and returns the status and the outcome of reading the whole body
/// (bounded), for answers whose body is expected to fail.
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

/// A chunked body whose size line is not hex, sent after the head and a good chunk, fails
/// the client's body (its 200 was already sent, so the client sees an error or only the
/// good chunk) and is counted once as the canary's bad response; the broken connection is
/// not reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_chunk_size_line_fails_the_body_and_is_a_bad_response() {
    let up = scripted(|r| match r.target() {
        "/broken" => {
            Reply::send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
                .and_later(Duration::from_millis(50), "zz\r\nnot a chunk\r\n")
        }
        _ => Reply::send(ok("fine")),
    })
    .await;
    let h = proxy_to(&up, 100.0).await;
    let c = client();

    let (status, body) = get_body_outcome(&c, &h.url("/broken")).await;
    assert_eq!(status, 200);
    if let Ok(body) = &body {
        assert_eq!(
            &body[..],
            b"hello",
            "the client got a complete-looking body after broken framing"
        );
    }
    let a = get(&c, &h.url("/after"), &[]).await;
    assert_eq!((a.status, &a.body[..]), (200, &b"fine"[..]));
    assert_eq!(
        up.accepted(),
        2,
        "the connection with the broken body was reused"
    );
    let s = settled_snapshot(&c, &h).await;
    assert_upstream_errors(&s, "canary", "bad_response", 1);
    h.stop().await;
}

/// A content-length body cut short by the upstream's close fails the client's body (the
/// client gets an error or a short body, never a complete-looking one) and is counted once
/// as the canary's reset, not as a bad response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_short_by_the_upstream_fails_and_is_a_reset() {
    let up = scripted(|r| match r.target() {
        "/short" => Reply::send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
            .then(Then::CloseAfter(Duration::from_millis(50))),
        _ => Reply::send(ok("fine")),
    })
    .await;
    let h = proxy_to(&up, 100.0).await;
    let c = client();

    let (status, body) = get_body_outcome(&c, &h.url("/short")).await;
    assert_eq!(status, 200);
    assert!(body.is_err(), "the client read a complete body: {body:?}");
    assert_eq!(get(&c, &h.url("/after"), &[]).await.status, 200);
    let s = settled_snapshot(&c, &h).await;
    assert_upstream_errors(&s, "canary", "reset", 1);
    h.stop().await;
}

/// A client's repeated Content-Length (two equal fields, which hyper accepts as one length)
/// reaches the upstream as exactly one `content-length: 5` and never next to a transfer
/// coding: two framings of one body are how requests are smuggled past a proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_content_length_goes_upstream_as_one_field_and_no_chunking() {
    let up = scripted(|r| Reply::send(ok(&r.body))).await;
    let h = proxy_to(&up, 0.0).await;
    let mut client = raw_client(&h).await;
    write(
        &mut client,
        "POST /form HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    let answer = read_response(&mut client, false).await;
    assert_eq!(
        (answer.status, &answer.body[..]),
        (200, &b"hello"[..]),
        "{answer:?}"
    );
    let got = up.last();
    assert_eq!(got.error, None, "the upstream could not read the request");
    assert_eq!(got.all("content-length"), ["5"]);
    assert_eq!(got.all("transfer-encoding"), Vec::<String>::new());
    assert_eq!(&got.raw_body[..], b"hello");
    h.stop().await;
}

/// An upstream that answers before it has read the request: it starts streaming a large
/// answer at once, reads the whole request body meanwhile, and ends the answer with "end"
/// once the body is in. Returns its address and the number of body bytes it read.
async fn early_answering_upstream(early: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let read_total = Arc::new(AtomicUsize::new(0));
    let counter = read_total.clone();
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (mut reader, mut writer) = stream.into_split();
        let mut wire = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let head_end = loop {
            let Ok(n) = reader.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                return;
            }
            wire.extend_from_slice(&chunk[..n]);
            if let Some(i) = wire.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&wire[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let answer = tokio::spawn(async move {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", early + 3);
            writer.write_all(head.as_bytes()).await?;
            writer.write_all(&vec![b'x'; early]).await?;
            Ok::<_, std::io::Error>(writer)
        });
        let mut got = wire.len() - head_end;
        while got < length {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got += n,
            }
        }
        counter.store(got, Ordering::SeqCst);
        if let Ok(Ok(mut writer)) = answer.await {
            let _ = writer.write_all(b"end").await;
            // Keep the connection open until the proxy is done with it.
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    (addr, read_total)
}

/// A client that uploads its whole body before it reads anything, to an upstream that
/// answers early with more than the sockets between them hold: the upload must go on while
/// nobody reads the answer (the proxy sends the rest of the body from a task of its own), or
/// the two wait for each other until the body idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_goes_on_while_the_client_reads_nothing_of_an_early_answer() {
    const EARLY: usize = 32 * 1024 * 1024;
    const UPLOAD: usize = 32 * 1024 * 1024;
    let (up, read_total) = early_answering_upstream(EARLY).await;
    let mut file = file_config(&[up], &[up]);
    file.initial_canary_weight = Some(0.0);
    file.timeouts.upstream_body_idle_ms = Some(3_000);
    let h = start_proxy(file).await;
    let mut client = TcpStream::connect(h.addr).await.expect("connect");
    let head = format!("POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: {UPLOAD}\r\n\r\n");
    let upload = async {
        client.write_all(head.as_bytes()).await?;
        client.write_all(&vec![b'u'; UPLOAD]).await?;
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(10), upload)
        .await
        .expect("the upload finished while the client read nothing")
        .expect("upload");
    let mut answer = Vec::new();
    let want = EARLY + 3;
    let read = async {
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            let n = client.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
            if let Some(i) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                if answer.len() >= i + 4 + want {
                    break;
                }
            }
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the answer arrived")
        .expect("read");
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"), "status line");
    assert!(
        answer.ends_with(b"end"),
        "the whole answer, ended after the upload"
    );
    assert_eq!(
        read_total.load(Ordering::SeqCst),
        UPLOAD,
        "the upstream got the body"
    );
    h.stop().await;
}
