//! The OFREP server over raw HTTP (a hyper client, and bare sockets where the test needs to
//! misbehave): exact status codes, headers and bodies.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time real servers and deadlines with tokio's clock"
)]

mod common;

use bytes::Bytes;
use common::TestServer;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use ramp_flags::ofrep::{ApiToken, RateLimit, ServeOptions};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response, read whole.
struct Reply {
    /// The status, which the spec fixes for every outcome.
    status: StatusCode,
    /// The headers (ETag, Retry-After, WWW-Authenticate, Allow…).
    headers: HeaderMap,
    /// The body as text (every body here is JSON or empty).
    body: String,
}

/// Sends one HTTP/1.1 request on a fresh connection.
async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .expect("a reply in time")
        .expect("a reply");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).expect("UTF-8 body"),
    }
}

/// POSTs a JSON body.
async fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    send(
        addr,
        Method::POST,
        path,
        &[("content-type", "application/json")],
        body,
    )
    .await
}

/// A response header as text.
fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn single_evaluations_of_every_kind() {
    let s = TestServer::start(ServeOptions::default()).await;
    let cases = [
        (
            "ratio",
            r#"{"key":"ratio","value":0.25,"reason":"STATIC","variant":"low","metadata":{"owner":"growth","ticket":42}}"#,
        ),
        (
            "max_items",
            r#"{"key":"max_items","value":100,"reason":"STATIC","variant":"large","metadata":{}}"#,
        ),
        (
            "limits",
            r#"{"key":"limits","value":{"rps":10,"tier":"basic"},"reason":"STATIC","variant":"basic","metadata":{}}"#,
        ),
        (
            "phase8_encryption_enabled",
            r#"{"key":"phase8_encryption_enabled","value":false,"reason":"DEFAULT","variant":"off","metadata":{}}"#,
        ),
        (
            "old_checkout",
            r#"{"key":"old_checkout","reason":"DISABLED","metadata":{}}"#,
        ),
    ];
    for (key, want) in cases {
        let r = post(
            s.addr,
            &format!("/ofrep/v1/evaluate/flags/{key}"),
            r#"{"context":{}}"#,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{key}: {}", r.body);
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        assert_eq!(r.body, want);
    }
    // A fractional flag with a targeting key: TARGETING_MATCH, and the variant in_rollout
    // picks.
    let mut blue = 0;
    for u in 0..400 {
        let user = format!("user-{u}");
        let r = post(
            s.addr,
            "/ofrep/v1/evaluate/flags/banner_color",
            &format!(
                r#"{{"context":{{"targetingKey":"{user}","plan":"pro","n":[1,{{"a":null}}]}}}}"#
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let inside = ramp_flags::in_rollout(b"banner_color", user.as_bytes(), 1250);
        let want = if inside {
            r##"{"key":"banner_color","value":"#00f","reason":"TARGETING_MATCH","variant":"blue","metadata":{}}"##
        } else {
            r##"{"key":"banner_color","value":"#f00","reason":"TARGETING_MATCH","variant":"red","metadata":{}}"##
        };
        assert_eq!(r.body, want, "{user}");
        blue += usize::from(inside);
    }
    assert!((20..=85).contains(&blue), "{blue} of 400 at 12.5%");
    s.stop().await;
}

#[tokio::test]
async fn errors_have_the_spec_statuses_and_bodies() {
    let s = TestServer::start(ServeOptions::default()).await;
    let r = post(
        s.addr,
        "/ofrep/v1/evaluate/flags/nope",
        r#"{"context":{"targetingKey":"u"}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body,
        r#"{"key":"nope","errorCode":"FLAG_NOT_FOUND","errorDetails":"flag `nope` does not exist"}"#
    );
    let r = post(
        s.addr,
        "/ofrep/v1/evaluate/flags/banner_color",
        r#"{"context":{"plan":"pro"}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        r#"{"key":"banner_color","errorCode":"TARGETING_KEY_MISSING","errorDetails":"the flag is rolled out to 12.5% of users; the evaluation context needs a non-empty string `targetingKey` to place this user"}"#
    );
    for bad in [
        r#"{"context":"#,
        r#"{"context":{"targetingKey":7}}"#,
        "[1]",
        r#"{"context":[]}"#,
    ] {
        let r = post(s.addr, "/ofrep/v1/evaluate/flags/ratio", bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("a JSON error body");
        assert_eq!(v["key"], "ratio", "{bad}");
        assert_eq!(v["errorCode"], "INVALID_CONTEXT", "{bad}");
        assert!(v["errorDetails"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let r = post(s.addr, "/ofrep/v1/evaluate/flags", "{").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["errorCode"], "INVALID_CONTEXT");
    assert!(v.get("key").is_none(), "a bulk failure has no key");
    // Wrong methods and paths.
    let r = send(
        s.addr,
        Method::GET,
        "/ofrep/v1/evaluate/flags/ratio",
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&r, "allow"), Some("POST"));
    let r = post(s.addr, "/ofrep/v2/evaluate/flags/ratio", "{}").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.body.starts_with(r#"{"errorDetails":"no such endpoint"#),
        "{}",
        r.body
    );
    let r = post(s.addr, "/ofrep/v1/evaluate/flags/ratio/extra", "{}").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A percent-encoded key is decoded; a malformed escape names no flag.
    let r = post(s.addr, "/ofrep/v1/evaluate/flags/rat%69o", "{}").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with(r#"{"key":"ratio""#));
    let r = post(s.addr, "/ofrep/v1/evaluate/flags/%zz", "{}").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r
        .body
        .starts_with(r#"{"key":"%zz","errorCode":"FLAG_NOT_FOUND""#));
    let r = send(s.addr, Method::GET, "/healthz", &[], "").await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ok\n"));
    s.stop().await;
}

#[tokio::test]
async fn a_missing_context_or_body_is_accepted() {
    let s = TestServer::start(ServeOptions::default()).await;
    for body in ["", "{}", "null", r#"{"context":null}"#, r#"{"other":1}"#] {
        let r = post(s.addr, "/ofrep/v1/evaluate/flags/max_items", body).await;
        assert_eq!(r.status, StatusCode::OK, "{body:?}: {}", r.body);
        assert!(r.body.contains(r#""value":100"#));
        let r = post(s.addr, "/ofrep/v1/evaluate/flags", body).await;
        assert_eq!(r.status, StatusCode::OK, "{body:?}: {}", r.body);
        // Without a targeting key the fractional flag is a per-flag failure inside the 200.
        assert!(
            r.body
                .contains(r#"{"key":"banner_color","errorCode":"TARGETING_KEY_MISSING""#),
            "{}",
            r.body
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn bulk_evaluation_has_an_etag_and_answers_304() {
    let s = TestServer::start(ServeOptions::default()).await;
    let ctx = r#"{"context":{"targetingKey":"user-7","plan":"pro"}}"#;
    let r = post(s.addr, "/ofrep/v1/evaluate/flags", ctx).await;
    assert_eq!(r.status, StatusCode::OK);
    let etag = header(&r, "etag").expect("an ETag").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
        "{etag}"
    );
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let keys: Vec<&str> = v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "banner_color",
            "limits",
            "max_items",
            "old_checkout",
            "phase8_encryption_enabled",
            "ratio"
        ]
    );
    assert_eq!(
        v["flags"][3],
        serde_json::json!({"key":"old_checkout","reason":"DISABLED","metadata":{}})
    );
    assert_eq!(v["metadata"]["version"], 1);

    // The same context, the same configuration: 304, the tag again, no body.
    let same_ctx_reordered = r#"{"context":{"plan":"pro","targetingKey":"user-7"}}"#;
    for inm in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"zzz\", {etag}"),
        "*".to_string(),
    ] {
        let r = send(
            s.addr,
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            &[("if-none-match", inm.as_str())],
            same_ctx_reordered,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "If-None-Match: {inm}");
        assert_eq!(header(&r, "etag"), Some(etag.as_str()));
        assert!(r.body.is_empty());
    }
    // Another context: 200.
    let r = send(
        s.addr,
        Method::POST,
        "/ofrep/v1/evaluate/flags",
        &[("if-none-match", etag.as_str())],
        r#"{"context":{"targetingKey":"user-8","plan":"pro"}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_ne!(header(&r, "etag"), Some(etag.as_str()));
    // A weight change: 200 with a new tag, and the version in the metadata.
    s.state.set_rollout_weight_percent(5.0).unwrap();
    let r = send(
        s.addr,
        Method::POST,
        "/ofrep/v1/evaluate/flags",
        &[("if-none-match", etag.as_str())],
        ctx,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let etag2 = header(&r, "etag").unwrap().to_string();
    assert_ne!(etag2, etag);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["metadata"]["version"], 2);
    let r = send(
        s.addr,
        Method::POST,
        "/ofrep/v1/evaluate/flags",
        &[("if-none-match", etag2.as_str())],
        ctx,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    // The trailing-slash form flagd accepts.
    let r = post(s.addr, "/ofrep/v1/evaluate/flags/", ctx).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(header(&r, "etag"), Some(etag2.as_str()));
    s.stop().await;
}

#[tokio::test]
async fn a_token_is_required_when_configured() {
    let options = ServeOptions {
        token: Some(ApiToken::new("s3cr3t").unwrap()),
        ..ServeOptions::default()
    };
    let s = TestServer::start(options).await;
    let path = "/ofrep/v1/evaluate/flags/ratio";
    for headers in [
        &[][..],
        &[("authorization", "Bearer wrong")][..],
        &[("authorization", "Basic s3cr3t")][..],
        &[("x-api-key", "s3cr3")][..],
    ] {
        let r = send(s.addr, Method::POST, path, headers, "{}").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert!(r.body.is_empty(), "401 has no body");
        assert_eq!(
            header(&r, "www-authenticate"),
            Some("Bearer realm=\"ofrep\"")
        );
    }
    for headers in [
        &[("authorization", "Bearer s3cr3t")][..],
        &[("x-api-key", "s3cr3t")][..],
    ] {
        let r = send(s.addr, Method::POST, path, headers, "{}").await;
        assert_eq!(r.status, StatusCode::OK, "{headers:?}");
        let r = send(
            s.addr,
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            headers,
            "{}",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{headers:?}");
    }
    let r = send(s.addr, Method::POST, "/ofrep/v1/evaluate/flags", &[], "{}").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(s.addr, Method::GET, "/healthz", &[], "").await;
    assert_eq!(r.status, StatusCode::OK, "health checks need no token");
    s.stop().await;
}

#[tokio::test]
async fn over_the_rate_limit_is_429_with_retry_after() {
    let options = ServeOptions {
        token: Some(ApiToken::new("t").unwrap()),
        rate_limit: Some(RateLimit::new(0.5, 2).unwrap()),
        ..ServeOptions::default()
    };
    let s = TestServer::start(options).await;
    let auth = [("x-api-key", "t")];
    let path = "/ofrep/v1/evaluate/flags/ratio";
    // Requests without the token are refused before the limit and do not use it up.
    for _ in 0..5 {
        let r = send(s.addr, Method::POST, path, &[], "{}").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..2 {
        let r = send(s.addr, Method::POST, path, &auth, "{}").await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = send(s.addr, Method::POST, path, &auth, "{}").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = header(&r, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("delay-seconds");
    assert!((1..=2).contains(&retry), "{retry}");
    assert!(r.body.is_empty());
    let r = send(
        s.addr,
        Method::POST,
        "/ofrep/v1/evaluate/flags",
        &auth,
        "{}",
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "bulk shares the limit"
    );
    let r = send(s.addr, Method::GET, "/healthz", &[], "").await;
    assert_eq!(r.status, StatusCode::OK, "health checks are not limited");
    s.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let options = ServeOptions {
        max_body_bytes: 1024,
        ..ServeOptions::default()
    };
    let s = TestServer::start(options).await;
    let big = format!(
        r#"{{"context":{{"targetingKey":"u","pad":"{}"}}}}"#,
        "x".repeat(2000)
    );
    let r = post(s.addr, "/ofrep/v1/evaluate/flags/ratio", &big).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        r#"{"key":"ratio","errorCode":"INVALID_CONTEXT","errorDetails":"the request body is larger than 1024 bytes"}"#
    );
    assert_eq!(header(&r, "connection"), Some("close"));
    let r = post(s.addr, "/ofrep/v1/evaluate/flags", &big).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        r#"{"errorCode":"INVALID_CONTEXT","errorDetails":"the request body is larger than 1024 bytes"}"#
    );

    // Chunked, so that no Content-Length gives it away: refused while reading.
    let mut raw = TcpStream::connect(s.addr).await.unwrap();
    let mut req = String::from(
        "POST /ofrep/v1/evaluate/flags/ratio HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    for _ in 0..4 {
        req.push_str(&format!("200\r\n{}\r\n", "y".repeat(512)));
    }
    req.push_str("0\r\n\r\n");
    raw.write_all(req.as_bytes()).await.unwrap();
    let text = read_until_closed(&mut raw).await;
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(text.contains("larger than 1024 bytes"), "{text}");
    s.stop().await;
}

/// Reads what the server sends until it closes the connection (bounded at 10 s).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn slow_and_silent_clients_are_cut_off() {
    let options = ServeOptions {
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    };
    let s = TestServer::start(options).await;
    let started = tokio::time::Instant::now();
    // A client that connects and says nothing.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    let text = read_until_closed(&mut silent).await;
    assert!(text.is_empty(), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A client that sends half a request head.
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let text = read_until_closed(&mut slow).await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );

    // A client that promises a body and never sends it.
    let mut stalled = TcpStream::connect(s.addr).await.unwrap();
    stalled
        .write_all(
            b"POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n{",
        )
        .await
        .unwrap();
    let text = read_until_closed(&mut stalled).await;
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(text.contains("did not arrive within 0.3 s"), "{text}");

    // A kept-alive connection left idle after a request.
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    idle.write_all(
        b"POST /ofrep/v1/evaluate/flags/ratio HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}",
    )
    .await
    .unwrap();
    let text = read_until_closed(&mut idle).await;
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the idle connection was closed"
    );
    s.stop().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served_and_idle_connections_closed() {
    let options = ServeOptions {
        idle_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    };
    let s = TestServer::start(options).await;
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    let conn = tokio::spawn(conn);
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!(
            "http://{}/ofrep/v1/evaluate/flags/max_items",
            s.addr
        ))
        .body(Full::new(Bytes::from_static(b"{\"context\":{}}")))
        .unwrap();
    let resp = sender.send_request(req).await.expect("h2 reply");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(body.starts_with(br#"{"key":"max_items","value":100"#));
    // HTTP/2 has no header deadline between requests; the idle timeout closes it.
    let started = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the idle h2 connection is closed by the server")
        .unwrap()
        .expect("a clean close (GOAWAY)");
    assert!(started.elapsed() >= Duration::from_millis(150));
    s.stop().await;
}

#[tokio::test]
async fn the_weight_handle_moves_served_values_and_rollback_turns_everyone_off() {
    let s = TestServer::start(ServeOptions::default()).await;
    let handle = s.state.weight_handle();
    let users: Vec<String> = (0..200).map(|u| format!("member-{u}")).collect();
    let mut was_on = vec![false; users.len()];
    for percent in [5.0, 25.0, 50.0, 100.0] {
        handle.set_percent(percent).unwrap();
        for (i, user) in users.iter().enumerate() {
            let r = post(
                s.addr,
                "/ofrep/v1/evaluate/flags/phase8_encryption_enabled",
                &format!(r#"{{"context":{{"targetingKey":"{user}"}}}}"#),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK);
            let on = r.body.contains(r#""value":true"#);
            assert!(!was_on[i] || on, "{user} turned off at {percent}%");
            let reason = if percent == 100.0 {
                "STATIC"
            } else {
                "TARGETING_MATCH"
            };
            assert!(r.body.contains(reason), "{}", r.body);
            was_on[i] = on;
        }
    }
    assert!(was_on.iter().all(|b| *b));
    handle.rollback();
    for user in &users {
        let r = post(
            s.addr,
            "/ofrep/v1/evaluate/flags/phase8_encryption_enabled",
            &format!(r#"{{"context":{{"targetingKey":"{user}"}}}}"#),
        )
        .await;
        assert_eq!(
            r.body,
            r#"{"key":"phase8_encryption_enabled","value":false,"reason":"STATIC","variant":"off","metadata":{}}"#
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let s = TestServer::start(ServeOptions::default()).await;
    let addr = s.addr;
    // An idle connection must not hold the shutdown.
    let _idle = TcpStream::connect(addr).await.unwrap();
    let started = tokio::time::Instant::now();
    s.stop().await;
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

/// A flag with its own schedule and a user-visible share at each step.
const SCHEDULED: &str = r#"
[flags.checkout]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
schedule = [ { after = "0s", weight = 1 }, { after = "30m", weight = 5 }, { after = "2h", weight = 25 } ]
"#;

/// Bulk-evaluates with `If-None-Match: etag` and returns (status, ETag, body).
async fn bulk(addr: SocketAddr, ctx: &str, etag: Option<&str>) -> (StatusCode, String, String) {
    let headers: Vec<(&str, &str)> = etag.map(|e| ("if-none-match", e)).into_iter().collect();
    let r = send(
        addr,
        Method::POST,
        "/ofrep/v1/evaluate/flags",
        &headers,
        ctx,
    )
    .await;
    let tag = header(&r, "etag").unwrap_or_default().to_string();
    (r.status, tag, r.body)
}

#[tokio::test]
async fn the_bulk_etag_changes_exactly_when_a_schedule_step_is_crossed() {
    let flags = ramp_flags::flags::parse_flags_file(SCHEDULED, "s.toml").unwrap();
    let state = std::sync::Arc::new(ramp_flags::flags::FlagState::new(flags));
    let s = TestServer::start_with(state.clone(), ServeOptions::default()).await;
    let handle = state.weight_handle();
    let mins = |m: u64| Duration::from_secs(m * 60);
    // A user who is on from 5 % but not at 1 %.
    let user = (0..10_000)
        .map(|u| format!("u{u}"))
        .find(|u| {
            !ramp_flags::in_rollout(b"checkout", u.as_bytes(), 100)
                && ramp_flags::in_rollout(b"checkout", u.as_bytes(), 500)
        })
        .unwrap();
    let ctx = format!(r#"{{"context":{{"targetingKey":"{user}"}}}}"#);

    // Not started: the default variant.
    let (status, tag0, body) = bulk(s.addr, &ctx, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#""reason":"DEFAULT""#), "{body}");

    handle.set_schedule_elapsed(mins(0));
    let (status, tag1, body) = bulk(s.addr, &ctx, Some(&tag0)).await;
    assert_eq!(status, StatusCode::OK, "the schedule started");
    assert_ne!(tag1, tag0);
    assert!(
        body.contains(r#""value":false,"reason":"TARGETING_MATCH""#),
        "{body}"
    );

    // Inside the first step: nothing a client sees can change, so 304 with the same tag.
    for m in [1, 15, 29] {
        handle.set_schedule_elapsed(mins(m));
        let (status, tag, _) = bulk(s.addr, &ctx, Some(&tag1)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "at {m} min");
        assert_eq!(tag, tag1);
    }
    // Crossing the 30-minute step: a new tag, and the user is on.
    handle.set_schedule_elapsed(mins(30));
    let (status, tag2, body) = bulk(s.addr, &ctx, Some(&tag1)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(tag2, tag1);
    assert!(
        body.contains(r#""value":true,"reason":"TARGETING_MATCH""#),
        "{body}"
    );
    handle.set_schedule_elapsed(mins(119));
    assert_eq!(
        bulk(s.addr, &ctx, Some(&tag2)).await.0,
        StatusCode::NOT_MODIFIED
    );
    handle.set_schedule_elapsed(mins(120));
    let (status, tag3, body) = bulk(s.addr, &ctx, Some(&tag2)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(tag3, tag2);
    assert!(body.contains(r#""value":true"#), "{body}");

    // A rollback: everyone off at once, another tag.
    handle.rollback();
    let (status, tag4, body) = bulk(s.addr, &ctx, Some(&tag3)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(tag4, tag3);
    assert!(
        body.contains(r#""value":false,"reason":"STATIC""#),
        "{body}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_standalone_server_runs_schedules_on_its_own_clock() {
    let source = SCHEDULED.replace(
        r#"schedule = [ { after = "0s", weight = 1 }, { after = "30m", weight = 5 }, { after = "2h", weight = 25 } ]"#,
        r#"schedule = [ { after = "0s", weight = 1 }, { after = "300ms", weight = 5 }, { after = "600ms", weight = 100 } ]"#,
    );
    let flags = ramp_flags::flags::parse_flags_file(&source, "s.toml").unwrap();
    let state = std::sync::Arc::new(ramp_flags::flags::FlagState::new(flags));
    let s = TestServer::start_with(state.clone(), ServeOptions::default()).await;
    let schedules = tokio::spawn(ramp_flags::ofrep::run_schedules(
        state.clone(),
        ramp_flags::ofrep::schedule_origin(),
    ));
    let ctx = r#"{"context":{"targetingKey":"anyone"}}"#;
    // At the last step everybody is on (100 %, STATIC), within a few seconds at most.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, body) = bulk(s.addr, ctx, None).await;
        if body.contains(r#""value":true,"reason":"STATIC""#) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Three change points (0, 300 ms, 600 ms): three versions after the initial one, and the
    // task ends since nothing changes any more.
    tokio::time::timeout(Duration::from_secs(5), schedules)
        .await
        .expect("the schedule task ends after its last step")
        .unwrap();
    assert_eq!(state.version(), 4);
    s.stop().await;
}
