//! Fencing at the admin API: a weight change carrying an older fencing token than the newest
//! the proxy has accepted is refused with 409 and changes nothing; the newest token is
//! persisted with the weights and survives a restart; a change without a token (a person)
//! is always accepted and keeps the newest token. Refusals are counted in
//! `ramp_proxy_weight_refused_total`.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time real servers and deadlines with tokio's clock"
)]

mod common;

use common::*;
use ramp_proxy::DrainOutcome;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ramp-proxy-fence-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `GET /weights` as JSON.
async fn weights(
    c: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
    h: &Harness,
) -> serde_json::Value {
    let a = get(c, &h.admin_url("/weights"), &[]).await;
    assert_eq!(a.status, 200);
    serde_json::from_slice(&a.body).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_fence_is_refused_and_the_newest_survives_a_restart() {
    let dir = temp_dir("restart");
    let state = dir.join("weights.json");
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let c = client();
    let mut file = file_config(&[stable], &[canary]);
    file.state_file = Some(state.clone());
    let h = start_proxy(file.clone()).await;
    assert_eq!(weights(&c, &h).await["fence"], serde_json::Value::Null);

    // Leader 7 sets 10 %, then an old leader (5) tries to set 50 %.
    let a = put_weights(&c, &h, r#"{"canary": 10, "run": "r1", "fence": 7}"#).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let a = put_weights(&c, &h, r#"{"canary": 50, "run": "r0", "fence": 5}"#).await;
    assert_eq!(a.status, 409);
    let reason = String::from_utf8_lossy(&a.body).to_string();
    assert!(
        reason.contains("fence 5") && reason.contains("fence 7"),
        "{reason}"
    );
    assert_eq!(reason.trim_end().lines().count(), 1, "{reason}");
    let metrics = get(&c, &h.admin_url("/metrics"), &[]).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("ramp_proxy_weight_refused_total 1"),
        "the refusal is counted: {text}"
    );
    let w = weights(&c, &h).await;
    assert_eq!(
        (
            w["canary_bp"].clone(),
            w["fence"].clone(),
            w["set_by"].clone()
        ),
        (1000.into(), 7.into(), "r1".into())
    );

    // The same leader may set again; a person (no fence) may too, and the fence stays.
    let a = put_weights(&c, &h, r#"{"canary": 20, "run": "r1", "fence": 7}"#).await;
    assert_eq!(a.status, 200);
    let a = put_weights(&c, &h, r#"{"canary": 0}"#).await;
    assert_eq!(a.status, 200, "a person can always intervene");
    let w = weights(&c, &h).await;
    assert_eq!(
        (w["canary_bp"].clone(), w["fence"].clone()),
        (0.into(), 7.into())
    );
    assert_eq!(h.stop().await, DrainOutcome::Drained);

    // After a restart the newest fence is still 7: leader 5 is still refused.
    let h = start_proxy(file).await;
    assert_eq!(weights(&c, &h).await["fence"], 7);
    let saved = std::fs::read_to_string(&state).expect("state file");
    assert!(saved.contains("\"fence\": 7"), "{saved}");
    let a = put_weights(&c, &h, r#"{"canary": 50, "fence": 5}"#).await;
    assert_eq!(a.status, 409);
    let a = put_weights(&c, &h, r#"{"canary": 30, "run": "r2", "fence": 12}"#).await;
    assert_eq!(a.status, 200);
    let w = weights(&c, &h).await;
    assert_eq!(
        (w["canary_bp"].clone(), w["fence"].clone()),
        (3000.into(), 12.into())
    );
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_written_before_fencing_still_loads() {
    let dir = temp_dir("old");
    let state = dir.join("weights.json");
    std::fs::write(
        &state,
        "{\"version\": 1, \"canary_bp\": 2500, \"set_by\": \"r1\"}\n",
    )
    .expect("write");
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let c = client();
    let mut file = file_config(&[stable], &[canary]);
    file.state_file = Some(state.clone());
    let h = start_proxy(file).await;
    let w = weights(&c, &h).await;
    assert_eq!(w["canary_bp"], 2500);
    assert_eq!(w["fence"], serde_json::Value::Null);
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_that_is_not_a_non_negative_integer_is_a_clear_400() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let h = start_proxy(file_config(&[stable], &[canary])).await;
    let c = client();
    for body in [
        r#"{"canary": 5, "fence": "7"}"#,
        r#"{"canary": 5, "fence": -1}"#,
        r#"{"canary": 5, "fence": 7.5}"#,
        r#"{"canary": 5, "fence": 18446744073709551616}"#,
        r#"{"canary": 5, "fence": [7]}"#,
    ] {
        let a = put_weights(&c, &h, body).await;
        assert_eq!(a.status, 400, "{body}");
        assert!(
            String::from_utf8_lossy(&a.body).contains("`fence`"),
            "{body}: {:?}",
            a.body
        );
    }
    let a = put_weights(&c, &h, r#"{"canary": 5, "fence": null}"#).await;
    assert_eq!(a.status, 200, "null is no fence");
    let w = weights(&c, &h).await;
    assert_eq!(
        (w["canary_bp"].clone(), w["fence"].clone()),
        (500.into(), serde_json::Value::Null)
    );
    h.stop().await;
}
