//! Routing behaviour against real upstreams on loopback: the weighted split, sticky users,
//! rollback, faults and exact measurement.

mod common;

use bytes::Bytes;
use common::*;
use ramp_proxy::config::StickyFile;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Sends `n` GETs with `concurrency` workers; returns how many each upstream served.
async fn fan_out(h: &Harness, n: usize, concurrency: usize) -> HashMap<String, usize> {
    let c = client();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (c, next, url) = (c.clone(), next.clone(), h.url("/split"));
        tasks.push(tokio::spawn(async move {
            let mut seen: HashMap<String, usize> = HashMap::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                let a = get(&c, &url, &[]).await;
                assert_eq!(a.status, 200);
                *seen.entry(a.header("x-upstream")).or_default() += 1;
            }
            seen
        }));
    }
    let mut total: HashMap<String, usize> = HashMap::new();
    for t in tasks {
        for (k, v) in t.await.expect("worker") {
            *total.entry(k).or_default() += v;
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_5_percent_sends_about_5_percent_of_20000_requests() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.initial_canary_weight = Some(5.0);
    let h = start_proxy(file).await;

    let n = 20_000usize;
    let seen = fan_out(&h, n, 32).await;
    let canary_n = *seen.get("canary").unwrap_or(&0) as f64;
    let stable_n = *seen.get("stable").unwrap_or(&0) as f64;
    assert_eq!(canary_n + stable_n, n as f64);
    // Binomial(20000, 0.05): mean 1000, sd 30.8; 5 sd bounds make a false failure ~1e-6.
    let sd = (n as f64 * 0.05 * 0.95).sqrt();
    assert!(
        (canary_n - 1000.0).abs() <= 5.0 * sd,
        "canary served {canary_n} of {n}"
    );

    // The proxy's own counts equal what the client saw, exactly.
    let s = settled_snapshot(&client(), &h).await;
    assert_eq!(s["metrics"]["canary"]["requests"], canary_n as u64);
    assert_eq!(s["metrics"]["stable"]["requests"], stable_n as u64);
    assert_eq!(s["metrics"]["canary"]["responses"]["2xx"], canary_n as u64);
    assert_eq!(s["metrics"]["canary"]["latency"]["count"], canary_n as u64);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_users_never_flip_as_weight_grows_and_weight_zero_moves_everyone_back() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.sticky = Some(StickyFile {
        header: Some("x-user-id".into()),
        cookie: None,
    });
    file.deployment_id = Some("checkout-42".into());
    let h = start_proxy(file).await;
    let c = client();
    let users: Vec<String> = (0..1500).map(|i| format!("user-{i}")).collect();

    let mut in_canary = vec![false; users.len()];
    for weight in [5.0, 25.0, 50.0, 100.0] {
        set_weight(&c, &h, weight).await;
        let mut count = 0;
        for (i, user) in users.iter().enumerate() {
            let a = get(&c, &h.url("/"), &[("x-user-id", user)]).await;
            let now_canary = a.header("x-upstream") == "canary";
            assert!(
                !in_canary[i] || now_canary,
                "{user} flipped back to stable at {weight}%"
            );
            // The proxy buckets exactly as ramp-flags (flagd's fractional) does.
            let bp = (weight * 100.0) as u32;
            assert_eq!(
                now_canary,
                ramp_flags::in_rollout(b"checkout-42", user.as_bytes(), bp),
                "{user} at {weight}%"
            );
            // Asking again gives the same answer: the assignment is sticky, not drawn.
            let again = get(&c, &h.url("/"), &[("x-user-id", user)]).await;
            assert_eq!(again.header("x-upstream"), a.header("x-upstream"));
            in_canary[i] = now_canary;
            count += usize::from(now_canary);
        }
        let share = count as f64 / users.len() as f64;
        assert!(
            (share - weight / 100.0).abs() < 0.06,
            "{share} in canary at {weight}%"
        );
    }
    assert!(
        in_canary.iter().all(|x| *x),
        "everyone is in the canary at 100%"
    );

    // Rollback: weight 0 moves every user to stable on their very next request.
    set_weight(&c, &h, 0.0).await;
    for user in &users {
        let a = get(&c, &h.url("/"), &[("x-user-id", user)]).await;
        assert_eq!(
            a.header("x-upstream"),
            "stable",
            "{user} still on canary after rollback"
        );
    }
    let s = snapshot(&c, &h).await;
    assert_eq!(s["metrics"]["sticky_key_missing"], 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_cookie_keys_route_like_the_header() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.sticky = Some(StickyFile {
        header: None,
        cookie: Some("uid".into()),
    });
    file.deployment_id = Some("dep".into());
    file.initial_canary_weight = Some(30.0);
    let h = start_proxy(file).await;
    let c = client();
    for i in 0..300 {
        let user = format!("u{i}");
        let cookie = format!("theme=dark; uid={user}; lang=en");
        let a = get(&c, &h.url("/"), &[("cookie", &cookie)]).await;
        let want = if ramp_flags::in_rollout(b"dep", user.as_bytes(), 3000) {
            "canary"
        } else {
            "stable"
        };
        assert_eq!(a.header("x-upstream"), want);
    }
    // Without the cookie the request is split at random and counted.
    get(&c, &h.url("/"), &[]).await;
    let s = snapshot(&c, &h).await;
    assert_eq!(s["metrics"]["sticky_key_missing"], 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_hit_only_the_chosen_cohort_and_fraction_and_expire() {
    let stable = start_upstream("stable").await;
    let canary = start_upstream("canary").await;
    let mut file = file_config(&[stable], &[canary]);
    file.initial_canary_weight = Some(50.0);
    let h = start_proxy(file).await;
    let c = client();

    let body = r#"{"cohort": "canary", "fraction": 0.3, "abort_status": 503, "duration_s": 60}"#;
    let a = send(&c, "POST", &h.admin_url("/faults"), &[], Bytes::from(body)).await;
    assert_eq!(a.status, 201, "{:?}", a.body);

    let n = 4000;
    let (mut canary_total, mut canary_aborted) = (0u64, 0u64);
    for _ in 0..n {
        let a = get(&c, &h.url("/"), &[]).await;
        if a.status == 503 {
            assert_eq!(a.header("x-ramp-error"), "fault/abort");
            canary_total += 1;
            canary_aborted += 1;
        } else {
            assert_eq!(a.status, 200, "stable and unhit canary requests succeed");
            canary_total += u64::from(a.header("x-upstream") == "canary");
        }
    }
    let p = canary_aborted as f64 / canary_total as f64;
    let sd = (0.3 * 0.7 / canary_total as f64).sqrt();
    assert!(
        (p - 0.3).abs() <= 5.0 * sd,
        "aborted {canary_aborted} of {canary_total} canary requests"
    );
    let s = settled_snapshot(&c, &h).await;
    assert_eq!(s["metrics"]["canary"]["faults_aborted"], canary_aborted);
    assert_eq!(s["metrics"]["stable"]["faults_aborted"], 0);
    assert_eq!(s["metrics"]["stable"]["responses"]["5xx"], 0);
    assert_eq!(s["metrics"]["canary"]["responses"]["5xx"], canary_aborted);
    // An injected abort is not an upstream failure: the upstream never saw the request.
    assert_eq!(s["metrics"]["canary"]["upstream_errors"]["status_5xx"], 0);

    // Replace it with a delay on all of stable: only stable gets slow.
    let a = send(&c, "DELETE", &h.admin_url("/faults"), &[], Bytes::new()).await;
    assert_eq!(a.status, 200);
    let body = r#"{"cohort": "stable", "fraction": 1.0, "add_latency_ms": 150, "duration_s": 60}"#;
    let created = send(&c, "POST", &h.admin_url("/faults"), &[], Bytes::from(body)).await;
    assert_eq!(created.status, 201);
    let id = serde_json::from_slice::<serde_json::Value>(&created.body).expect("json")["id"]
        .as_u64()
        .expect("id");
    let (mut slow_stable, mut fast_canary) = (0, 0);
    for _ in 0..20 {
        let t = ramp_proxy::clock::now();
        let a = get(&c, &h.url("/"), &[]).await;
        let took = t.elapsed();
        match a.header("x-upstream").as_str() {
            "stable" => {
                assert!(
                    took >= Duration::from_millis(150),
                    "stable request took {took:?}"
                );
                slow_stable += 1;
            }
            "canary" => {
                assert!(
                    took < Duration::from_millis(150),
                    "canary request took {took:?}"
                );
                fast_canary += 1;
            }
            other => panic!("unexpected upstream {other}"),
        }
    }
    assert!(slow_stable > 0 && fast_canary > 0);
    let deleted = send(
        &c,
        "DELETE",
        &h.admin_url(&format!("/faults/{id}")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(deleted.status, 200);

    // A fault expires on its own: an abort of all stable requests for 0.3 s.
    let body = r#"{"cohort": "stable", "fraction": 1.0, "abort_status": 500, "duration_s": 0.3}"#;
    assert_eq!(
        send(&c, "POST", &h.admin_url("/faults"), &[], Bytes::from(body))
            .await
            .status,
        201
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..20 {
        let a = get(&c, &h.url("/"), &[]).await;
        assert_eq!(a.status, 200, "expired fault still applied");
    }
    let faults = get(&c, &h.admin_url("/faults"), &[]).await;
    assert_eq!(faults.body.as_ref(), b"[]\n");
    h.stop().await;
}
