//! What the controller needs to trust a reading: which process start the counters belong to
//! (`instance`, a restart is a gap, not a drop of the counters) and which run set the
//! weights (`set_by`, kept in the state file with them).

#![allow(
    clippy::disallowed_methods,
    reason = "the test compares the proxy's start time with the wall clock"
)]

mod common;

use common::*;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ramp-proxy-id-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// Every snapshot names its process start: `instance.boot_id` (32 lowercase hex digits,
/// random, the same for every reading of one start and new at the next start) and
/// `instance.started_unix_ms` (the wall-clock time of the start).
///
/// Fails on 63809fb: the snapshot has no `instance` object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_snapshot_names_its_process_start() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let c = client();
    let mut boots = Vec::new();
    for _ in 0..2 {
        let before = unix_ms();
        let h = start_proxy(file_config(&[stable], &[canary])).await;
        let after = unix_ms();
        let first = snapshot(&c, &h).await;
        assert_eq!(get(&c, &h.url("/"), &[]).await.status, 200);
        let second = snapshot(&c, &h).await;
        let instance = &first["instance"];
        let boot_id = instance["boot_id"].as_str().unwrap_or_else(|| {
            panic!("no instance.boot_id in {first}");
        });
        assert!(
            boot_id.len() == 32
                && boot_id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{boot_id:?} is not 32 lowercase hex digits"
        );
        assert_eq!(second["instance"], *instance, "one start, one identity");
        let started = instance["started_unix_ms"]
            .as_u64()
            .expect("started_unix_ms");
        assert!(
            (before..=after).contains(&started),
            "started at {started}, between {before} and {after}"
        );
        boots.push(boot_id.to_string());
        h.stop().await;
    }
    assert_ne!(boots[0], boots[1], "a new start has a new boot_id");
}

/// Reads `GET /weights`.
async fn weights(c: &Client, h: &Harness) -> Value {
    let a = get(c, &h.admin_url("/weights"), &[]).await;
    assert_eq!(a.status, 200);
    serde_json::from_slice(&a.body).expect("weights JSON")
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

/// `PUT /weights` takes an optional `run`; the proxy reports it as `set_by` in `GET /weights`
/// and in the snapshot's `weights`, keeps it across fault changes, persists it with the
/// weights (a restart with the state file reports it again), and a PUT without `run` (a
/// person) sets it to null. A bad `run` is a 400 that names the field and changes nothing,
/// and a state file written before `set_by` existed loads with null.
///
/// Fails on 63809fb: `PUT /weights` refuses the `run` field (unknown field), so no run can
/// be recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_by_round_trips_and_survives_a_restart() {
    let dir = temp_dir("set-by");
    let state = dir.join("weights.json");
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let c = client();
    let mut file = file_config(&[stable], &[canary]);
    file.state_file = Some(state.clone());
    let h = start_proxy(file.clone()).await;
    assert_eq!(weights(&c, &h).await["set_by"], Value::Null);

    let run = "checkout-2025.10:r1_A-b";
    let put = put_weights(&c, &h, &format!("{{\"canary\": 10, \"run\": \"{run}\"}}")).await;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    let answered: Value = serde_json::from_slice(&put.body).expect("PUT answer JSON");
    assert_eq!(answered["set_by"], run);
    assert_eq!(weights(&c, &h).await["set_by"], run);
    assert_eq!(snapshot(&c, &h).await["weights"]["set_by"], run);

    // Faults change the route but not the weights: the run that set them stays.
    let fault = send(
        &c,
        "POST",
        &h.admin_url("/faults"),
        &[],
        bytes::Bytes::from_static(
            b"{\"cohort\": \"canary\", \"fraction\": 0, \"abort_status\": 503, \"duration_s\": 60}",
        ),
    )
    .await;
    assert_eq!(fault.status, 201);
    let cleared = send(
        &c,
        "DELETE",
        &h.admin_url("/faults"),
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(cleared.status, 200);
    assert_eq!(weights(&c, &h).await["set_by"], run);

    // Bad run tokens: a 400 naming the field, and nothing changes.
    let long = "r".repeat(129);
    for bad in [
        "\"\"".to_string(),
        format!("\"{long}\""),
        "\"has space\"".to_string(),
        "\"r\u{e9}sum\u{e9}\"".to_string(),
        "\"semi;colon\"".to_string(),
        "42".to_string(),
    ] {
        let a = put_weights(&c, &h, &format!("{{\"canary\": 30, \"run\": {bad}}}")).await;
        let message = String::from_utf8_lossy(&a.body).into_owned();
        assert_eq!(a.status, 400, "run {bad}: {message}");
        assert!(message.contains("run"), "run {bad}: {message:?}");
    }
    let w = weights(&c, &h).await;
    assert_eq!(
        (w["canary_bp"].clone(), w["set_by"].clone()),
        (1000.into(), run.into())
    );
    // 128 characters is the longest accepted.
    let longest = "r".repeat(128);
    let a = put_weights(
        &c,
        &h,
        &format!("{{\"canary\": 10, \"run\": \"{longest}\"}}"),
    )
    .await;
    assert_eq!(a.status, 200);
    let a = put_weights(&c, &h, &format!("{{\"canary\": 10, \"run\": \"{run}\"}}")).await;
    assert_eq!(a.status, 200);
    h.stop().await;

    // A restart with the state file reports the same weights and run.
    let h = start_proxy(file.clone()).await;
    let w = weights(&c, &h).await;
    assert_eq!(
        (w["canary_bp"].clone(), w["set_by"].clone()),
        (1000.into(), run.into())
    );
    assert_eq!(snapshot(&c, &h).await["weights"]["set_by"], run);
    // A person setting the weights by hand clears it, and that is persisted too.
    let a = put_weights(&c, &h, "{\"canary\": 20}").await;
    assert_eq!(a.status, 200);
    assert_eq!(weights(&c, &h).await["set_by"], Value::Null);
    h.stop().await;
    let h = start_proxy(file.clone()).await;
    let w = weights(&c, &h).await;
    assert_eq!(
        (w["canary_bp"].clone(), w["set_by"].clone()),
        (2000.into(), Value::Null)
    );
    h.stop().await;

    // A state file from before `set_by` existed loads, with null.
    std::fs::write(&state, "{\n  \"version\": 1,\n  \"canary_bp\": 700\n}\n").expect("write");
    let h = start_proxy(file).await;
    let w = weights(&c, &h).await;
    assert_eq!(
        (w["canary_bp"].clone(), w["set_by"].clone()),
        (700.into(), Value::Null)
    );
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
