//! The OFREP server read by real OpenFeature clients written by others: the Rust SDK
//! (`open-feature`) with its OFREP provider (`open-feature-ofrep`), through the SDK's client
//! API as an application would use it.
//!
//! What this provider version does with a response (read from its source, 0.1.2): it reads
//! `value` and `variant` and always reports the reason `STATIC`; every 400 becomes
//! `INVALID_CONTEXT` and every 401/403 a `General` error; a 429 pauses the provider
//! process-wide until `Retry-After`, so no test here provokes one (the raw-HTTP tests do).
//! Reasons are therefore checked over raw HTTP, and here only where the client reports them.

mod common;

use common::TestServer;
use open_feature::{EvaluationContext, EvaluationErrorCode, OpenFeature, StructValue, Value};
use open_feature_ofrep::{OfrepOptions, OfrepProvider};
use ramp_flags::ofrep::{ApiToken, ServeOptions};
use reqwest::header::{HeaderMap, HeaderValue};
use std::time::Duration;

/// A client bound to its own named provider (tests run in parallel over one global API).
async fn client(name: &str, base_url: String, headers: HeaderMap) -> open_feature::Client {
    let provider = OfrepProvider::new(OfrepOptions {
        base_url,
        headers,
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .await
    .expect("a provider");
    let mut api = OpenFeature::singleton_mut().await;
    api.set_named_provider(name, provider).await;
    api.create_named_client(name)
}

/// A user's evaluation context, with an attribute besides the key (ignored by the flags).
fn user(key: &str) -> EvaluationContext {
    EvaluationContext::default()
        .with_targeting_key(key)
        .with_custom_field("plan", "pro")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_values_and_variants() {
    let s = TestServer::start(ServeOptions::default()).await;
    let c = client("typed", s.base_url(), HeaderMap::new()).await;
    let ctx = user("alice");

    let d = c
        .get_float_details("ratio", Some(&ctx), None)
        .await
        .expect("float");
    assert_eq!(d.value, 0.25);
    assert_eq!(d.variant.as_deref(), Some("low"));

    let d = c
        .get_int_details("max_items", Some(&ctx), None)
        .await
        .expect("int");
    assert_eq!(d.value, 100);
    assert_eq!(d.variant.as_deref(), Some("large"));

    let d = c
        .get_struct_details::<StructValue>("limits", Some(&ctx), None)
        .await
        .expect("object");
    assert_eq!(d.value.fields.get("rps").and_then(Value::as_i64), Some(10));
    assert_eq!(
        d.value.fields.get("tier").and_then(Value::as_str),
        Some("basic")
    );
    assert_eq!(d.variant.as_deref(), Some("basic"));

    let d = c
        .get_bool_details("phase8_encryption_enabled", Some(&ctx), None)
        .await
        .expect("bool");
    assert!(!d.value);
    assert_eq!(d.variant.as_deref(), Some("off"));

    let d = c
        .get_string_details("banner_color", Some(&ctx), None)
        .await
        .expect("string");
    let inside = ramp_flags::in_rollout(b"banner_color", b"alice", 1250);
    assert_eq!(d.value, if inside { "#00f" } else { "#f00" });
    assert_eq!(
        d.variant.as_deref(),
        Some(if inside { "blue" } else { "red" })
    );

    // A type mismatch is the client's to detect: a string flag read as a bool.
    let e = c
        .get_bool_details("banner_color", Some(&ctx), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::ParseError);
    // The value helpers fall back to the caller's default on any error.
    assert!(!c
        .get_bool_value("banner_color", Some(&ctx), None)
        .await
        .unwrap_or(false));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_reach_the_client() {
    let s = TestServer::start(ServeOptions::default()).await;
    let c = client("errors", s.base_url(), HeaderMap::new()).await;
    let e = c
        .get_bool_details("nope", Some(&user("bob")), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);
    // No targeting key for a fractional flag: HTTP 400, which this provider reports as
    // INVALID_CONTEXT whatever the errorCode (the raw-HTTP test checks TARGETING_KEY_MISSING).
    let e = c
        .get_string_details("banner_color", Some(&EvaluationContext::default()), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::InvalidContext);
    // A flag that needs no key evaluates without one.
    let d = c
        .get_int_details("max_items", Some(&EvaluationContext::default()), None)
        .await
        .expect("no key needed at 100%");
    assert_eq!(d.value, 100);
    // A disabled flag has no value: this provider version cannot read the codeDefaultFlag
    // form and reports a parse error, so the application gets its code default.
    let e = c
        .get_bool_details("old_checkout", Some(&user("bob")), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::ParseError);
    assert!(c
        .get_bool_value("old_checkout", Some(&user("bob")), None)
        .await
        .unwrap_or(true));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_and_the_right_one_accepted() {
    let options = ServeOptions {
        token: Some(ApiToken::new("s3cr3t").unwrap()),
        ..ServeOptions::default()
    };
    let s = TestServer::start(options).await;
    let mut wrong = HeaderMap::new();
    wrong.insert("authorization", HeaderValue::from_static("Bearer nope"));
    let c = client("wrong-token", s.base_url(), wrong).await;
    let e = c
        .get_float_details("ratio", Some(&user("carol")), None)
        .await
        .unwrap_err();
    assert_eq!(
        e.code,
        EvaluationErrorCode::General("authentication/authorization error".into())
    );
    let c = client("no-token", s.base_url(), HeaderMap::new()).await;
    assert!(c
        .get_float_details("ratio", Some(&user("carol")), None)
        .await
        .is_err());

    let mut right = HeaderMap::new();
    right.insert("authorization", HeaderValue::from_static("Bearer s3cr3t"));
    let c = client("bearer-token", s.base_url(), right).await;
    let d = c
        .get_float_details("ratio", Some(&user("carol")), None)
        .await
        .expect("bearer");
    assert_eq!(d.value, 0.25);
    let mut key = HeaderMap::new();
    key.insert("x-api-key", HeaderValue::from_static("s3cr3t"));
    let c = client("api-key", s.base_url(), key).await;
    let d = c
        .get_float_details("ratio", Some(&user("carol")), None)
        .await
        .expect("x-api-key");
    assert_eq!(d.value, 0.25);
    s.stop().await;
}

/// Reads the rollout flag for every user, through the client.
async fn read_all(c: &open_feature::Client, users: &[String]) -> Vec<bool> {
    let mut on = Vec::with_capacity(users.len());
    for u in users {
        let d = c
            .get_bool_details("phase8_encryption_enabled", Some(&user(u)), None)
            .await
            .expect("an evaluation");
        on.push(d.value);
    }
    on
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cohort_stays_on_as_the_rollout_grows_and_is_off_after_rollback() {
    let s = TestServer::start(ServeOptions::default()).await;
    let c = client("cohort", s.base_url(), HeaderMap::new()).await;
    let handle = s.state.weight_handle();
    let users: Vec<String> = (0..300).map(|u| format!("customer-{u}")).collect();

    handle.set_percent(5.0).unwrap();
    let at5 = read_all(&c, &users).await;
    let cohort: Vec<usize> = (0..users.len()).filter(|i| at5[*i]).collect();
    assert!(
        !cohort.is_empty() && cohort.len() < 40,
        "{} of 300 on at 5%",
        cohort.len()
    );
    let mut previous = at5;
    for percent in [25.0, 50.0, 100.0] {
        handle.set_percent(percent).unwrap();
        let now = read_all(&c, &users).await;
        for i in &cohort {
            assert!(
                now[*i],
                "{} was on at 5% but is off at {percent}%",
                users[*i]
            );
        }
        for (i, (was, is)) in previous.iter().zip(&now).enumerate() {
            assert!(
                !was || *is,
                "{} turned off when the weight grew to {percent}%",
                users[i]
            );
        }
        let share = now.iter().filter(|b| **b).count() as f64 / users.len() as f64;
        assert!(
            (share - percent / 100.0).abs() < 0.1,
            "{share} on at {percent}%"
        );
        previous = now;
    }
    assert!(previous.iter().all(|b| *b), "everyone is on at 100%");
    handle.rollback();
    let after = read_all(&c, &users).await;
    assert!(
        after.iter().all(|b| !b),
        "everyone is off after the rollback"
    );
    s.stop().await;
}
