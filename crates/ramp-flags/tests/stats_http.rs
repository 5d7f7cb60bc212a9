//! `GET /stats` over HTTP: distinct targeting keys per flag and outcome, counted from real
//! single and bulk evaluations (304s included), exact for small populations, behind the
//! token like the evaluations.

mod common;

use bytes::Bytes;
use common::TestServer;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use ramp_flags::distinct::WindowConfig;
use ramp_flags::ofrep::{ApiToken, ServeOptions, Stats};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// One response: status, ETag and body.
struct Reply {
    /// The status.
    status: StatusCode,
    /// The `ETag`, if any.
    etag: Option<String>,
    /// The body as text.
    body: String,
}

/// Sends one HTTP/1.1 request on a fresh connection (bounded).
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
        .header("host", addr.to_string())
        .header("content-type", "application/json");
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
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        etag,
        body: String::from_utf8(body.to_vec()).expect("UTF-8 body"),
    }
}

/// A context with this targeting key.
fn ctx(user: &str) -> String {
    format!(r#"{{"context":{{"targetingKey":"{user}","plan":"pro"}}}}"#)
}

/// Reads `/stats` and returns the line of flag `key`.
async fn line(addr: SocketAddr, key: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let r = send(addr, Method::GET, "/stats", headers, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let doc: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
    doc["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .find(|f| f["key"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("no line for {key} in {doc}"))
}

#[tokio::test]
async fn single_and_bulk_evaluations_are_counted_per_flag_and_outcome() {
    let stats = Stats::new(WindowConfig::default());
    let s = TestServer::start(ServeOptions {
        stats: Some(stats.clone()),
        ..ServeOptions::default()
    })
    .await;
    s.state.set_rollout_weight_percent(25.0).unwrap();
    let users: Vec<String> = (0..120).map(|u| format!("user-{u}")).collect();
    // Each user evaluates the followed flag twice (distinct users, not evaluations, count),
    // anonymous evaluations are not users, and a missing key is an error, not a user.
    for u in &users {
        for _ in 0..2 {
            let r = send(
                s.addr,
                Method::POST,
                "/ofrep/v1/evaluate/flags/phase8_encryption_enabled",
                &[],
                &ctx(u),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        }
    }
    let r = send(
        s.addr,
        Method::POST,
        "/ofrep/v1/evaluate/flags/phase8_encryption_enabled",
        &[],
        r#"{"context":{}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let inside = |salt: &str, bp: u32| {
        users
            .iter()
            .filter(|u| ramp_flags::in_rollout(salt.as_bytes(), u.as_bytes(), bp))
            .count() as u64
    };
    let phase8 = line(s.addr, "phase8_encryption_enabled", &[]).await;
    assert_eq!(
        phase8["on_users"],
        inside("phase8_encryption_enabled", 2_500)
    );
    assert_eq!(
        phase8["off_users"],
        120 - inside("phase8_encryption_enabled", 2_500)
    );
    assert_eq!(phase8["weight"], 25.0);
    assert_eq!(phase8["weight_bp"], 2_500);
    assert_eq!(phase8["window_s"], 300.0);
    assert_eq!(phase8["exact"], true);
    // Nothing evaluated banner_color yet.
    let banner = line(s.addr, "banner_color", &[]).await;
    assert_eq!(
        (&banner["on_users"], &banner["off_users"]),
        (&0.into(), &0.into())
    );

    // Bulk: 40 of the users (and 10 new ones) evaluate every flag; then each asks again with
    // its ETag and gets 304, which counts them again without changing the distinct counts.
    let bulk_users: Vec<String> = (80..130).map(|u| format!("user-{u}")).collect();
    for u in &bulk_users {
        let r = send(
            s.addr,
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            &[],
            &ctx(u),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let etag = r.etag.expect("an ETag");
        let again = send(
            s.addr,
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            &[("if-none-match", &etag)],
            &ctx(u),
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    }
    let bulk_inside = |salt: &str, bp: u32| {
        bulk_users
            .iter()
            .filter(|u| ramp_flags::in_rollout(salt.as_bytes(), u.as_bytes(), bp))
            .count() as u64
    };
    let banner = line(s.addr, "banner_color", &[]).await;
    assert_eq!(banner["on_users"], bulk_inside("banner_color", 1_250));
    assert_eq!(banner["off_users"], 50 - bulk_inside("banner_color", 1_250));
    assert_eq!(banner["weight"], 12.5);
    // 130 distinct users evaluated the followed flag: 120 singly, 10 more in bulk.
    let all: Vec<String> = (0..130).map(|u| format!("user-{u}")).collect();
    let all_inside = all
        .iter()
        .filter(|u| ramp_flags::in_rollout(b"phase8_encryption_enabled", u.as_bytes(), 2_500))
        .count() as u64;
    let phase8 = line(s.addr, "phase8_encryption_enabled", &[]).await;
    assert_eq!(phase8["on_users"], all_inside);
    assert_eq!(phase8["off_users"], 130 - all_inside);
    // 100 % and static flags count everyone on their one side; a disabled flag nobody.
    let max_items = line(s.addr, "max_items", &[]).await;
    assert_eq!(
        (&max_items["on_users"], &max_items["off_users"]),
        (&50.into(), &0.into())
    );
    let ratio = line(s.addr, "ratio", &[]).await;
    assert_eq!(
        (&ratio["on_users"], &ratio["off_users"]),
        (&0.into(), &50.into())
    );
    assert_eq!(ratio["weight"], serde_json::Value::Null);
    let old = line(s.addr, "old_checkout", &[]).await;
    assert_eq!(
        (&old["on_users"], &old["off_users"]),
        (&0.into(), &0.into())
    );

    // The Rust API reports the same numbers.
    let report = stats.report(&s.state);
    let phase8 = report
        .iter()
        .find(|u| u.key == "phase8_encryption_enabled")
        .expect("a line for the followed flag");
    assert_eq!(
        (phase8.on_users, phase8.off_users, phase8.exact),
        (all_inside, 130 - all_inside, true)
    );
    assert_eq!(phase8.weight_bp, Some(2_500));
    s.stop().await;
}

#[tokio::test]
async fn stats_are_behind_the_token_and_can_be_off() {
    let options = ServeOptions {
        token: Some(ApiToken::new("s3cr3t").unwrap()),
        ..ServeOptions::default()
    };
    let s = TestServer::start(options).await;
    let r = send(s.addr, Method::GET, "/stats", &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, "");
    let r = send(
        s.addr,
        Method::POST,
        "/stats",
        &[("authorization", "Bearer s3cr3t")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = send(
        s.addr,
        Method::GET,
        "/stats",
        &[("x-api-key", "s3cr3t")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(doc["window_s"], 300.0);
    assert_eq!(doc["rollout_weight"], serde_json::Value::Null);
    assert_eq!(doc["flags"].as_array().map(Vec::len), Some(6));
    s.stop().await;

    let s = TestServer::start(ServeOptions {
        stats: None,
        ..ServeOptions::default()
    })
    .await;
    let r = send(s.addr, Method::GET, "/stats", &[], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Evaluations are served as ever.
    let r = send(
        s.addr,
        Method::POST,
        "/ofrep/v1/evaluate/flags/ratio",
        &[],
        &ctx("u"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn a_short_window_forgets_users_who_left() {
    // 3 s in 30 slots of 100 ms.
    let stats = Stats::new(WindowConfig::new(Duration::from_secs(3), 30, 1_000).unwrap());
    let s = TestServer::start(ServeOptions {
        stats: Some(stats.clone()),
        ..ServeOptions::default()
    })
    .await;
    for u in 0..5 {
        let r = send(
            s.addr,
            Method::POST,
            "/ofrep/v1/evaluate/flags/ratio",
            &[],
            &ctx(&format!("u{u}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(line(s.addr, "ratio", &[]).await["off_users"], 5);
    // Bounded wait: the window is 3 s; allow one more slot and scheduling slack.
    tokio::time::sleep(Duration::from_millis(3_300)).await;
    assert_eq!(line(s.addr, "ratio", &[]).await["off_users"], 0);
    assert!(stats
        .report(&s.state)
        .iter()
        .all(|u| u.on_users == 0 && u.off_users == 0));
    s.stop().await;
}
