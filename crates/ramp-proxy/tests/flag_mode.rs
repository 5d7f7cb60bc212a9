//! Flag mode against the real flags server on loopback: one pool serves everyone, and every
//! request is tagged (`x-ramp-cohort`) and counted in the cohort whose side of the flag's
//! rollout the OFREP server puts its user on, at every weight; the distinct users per cohort
//! in `/snapshot` equal the OFREP server's own `/stats`.

mod common;

use bytes::Bytes;
use common::*;
use ramp_flags::flags::{parse_flags_file, FlagState};
use ramp_flags::ofrep::{serve, ServeOptions};
use ramp_proxy::config::{FileConfig, FlagFile, StickyFile};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The flags file the application's flags server serves: a flag salted like a deployment.
const FLAGS: &str = r#"
[flags.checkout_v2]
variants = { new = "v2", old = "v1" }
default_variant = "old"
on_variant = "new"
follow = "rollout"
salt = "checkout-2025-10"
"#;

/// Starts an OFREP server on 127.0.0.1 port 0; it stops when the sender is dropped.
async fn start_flags_server(
    state: Arc<FlagState>,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind flags");
    let addr = listener.local_addr().expect("flags addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(
        listener,
        state,
        ServeOptions::default(),
        async move {
            let _ = rx.await;
        },
    ));
    (addr, tx)
}

/// The variant the OFREP server serves `user` for `checkout_v2`.
async fn variant(
    c: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<Bytes>,
    >,
    flags: SocketAddr,
    user: &str,
) -> String {
    let a = send(
        c,
        "POST",
        &format!("http://{flags}/ofrep/v1/evaluate/flags/checkout_v2"),
        &[("content-type", "application/json")],
        Bytes::from(format!(r#"{{"context":{{"targetingKey":"{user}"}}}}"#)),
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let doc: serde_json::Value = serde_json::from_slice(&a.body).expect("OFREP JSON");
    doc["variant"].as_str().expect("a variant").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_user_is_counted_in_the_cohort_the_flag_puts_them_in() {
    let app = start_upstream("app").await;
    let state = Arc::new(FlagState::new(
        parse_flags_file(FLAGS, "flags.toml").expect("valid flags"),
    ));
    let (flags, _stop_flags) = start_flags_server(state.clone()).await;
    let file = FileConfig {
        mode: Some("flag".into()),
        upstream: Some(vec![app.to_string()]),
        flag: Some(FlagFile {
            key: Some("checkout_v2".into()),
            salt: Some("checkout-2025-10".into()),
            ..FlagFile::default()
        }),
        sticky: Some(StickyFile {
            header: Some("x-user-id".into()),
            cookie: None,
        }),
        ..FileConfig::default()
    };
    let h = start_proxy(file).await;
    let c = client();
    let users: Vec<String> = (0..300).map(|i| format!("user-{i}")).collect();
    // Per user: seen in stable, seen in canary (within the 5-minute window).
    let mut seen: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
    let (mut stable_requests, mut canary_requests) = (0u64, 0u64);
    for weight in [5.0, 25.0, 50.0, 100.0, 0.0] {
        set_weight(&c, &h, weight).await;
        state
            .set_rollout_weight_percent(weight)
            .expect("weight in range");
        let mut on = 0;
        for user in &users {
            let flag_on = variant(&c, flags, user).await == "new";
            let a = get(&c, &h.url("/"), &[("x-user-id", user)]).await;
            assert_eq!(a.status, 200);
            assert_eq!(a.header("x-upstream"), "app", "one pool serves everyone");
            let cohort = a.header("x-seen-x-ramp-cohort");
            assert_eq!(
                cohort,
                if flag_on { "canary" } else { "stable" },
                "{user} at {weight}%"
            );
            let entry = seen.entry(user).or_default();
            if flag_on {
                entry.1 = true;
                canary_requests += 1;
            } else {
                entry.0 = true;
                stable_requests += 1;
            }
            on += usize::from(flag_on);
        }
        let share = on as f64 / users.len() as f64;
        assert!(
            (share - weight / 100.0).abs() < 0.08,
            "{share} on at {weight}%"
        );
    }
    // Requests without the key: stable below 100 %, canary at 100 % (as the flag serves
    // keyless users), all counted as missing their key, none counted as users.
    set_weight(&c, &h, 25.0).await;
    for _ in 0..10 {
        let a = get(&c, &h.url("/"), &[]).await;
        assert_eq!(a.header("x-seen-x-ramp-cohort"), "stable");
    }
    set_weight(&c, &h, 100.0).await;
    for _ in 0..3 {
        let a = get(&c, &h.url("/"), &[]).await;
        assert_eq!(a.header("x-seen-x-ramp-cohort"), "canary");
    }
    stable_requests += 10;
    canary_requests += 3;

    let s = settled_snapshot(&c, &h).await;
    let stable_users = seen.values().filter(|(s, _)| *s).count() as u64;
    let canary_users = seen.values().filter(|(_, c)| *c).count() as u64;
    assert_eq!(s["flag"]["key"], "checkout_v2");
    assert_eq!(s["flag"]["salt"], "checkout-2025-10");
    assert_eq!(s["flag"]["window_s"], 300.0);
    assert_eq!(s["flag"]["stable_users"], stable_users);
    assert_eq!(s["flag"]["canary_users"], canary_users);
    assert_eq!(s["flag"]["exact"], true);
    assert_eq!(s["metrics"]["sticky_key_missing"], 13);
    assert_eq!(s["metrics"]["stable"]["requests"], stable_requests);
    assert_eq!(s["metrics"]["canary"]["requests"], canary_requests);
    assert_eq!(s["weights"]["mode"], "flag");
    let pools = s["upstreams"].as_array().expect("upstreams");
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0]["pool"], "upstream");
    assert!(pools[0].get("cohort").is_none());

    // The flags server counted the same users on each side over the same window.
    let a = get(&c, &format!("http://{flags}/stats"), &[]).await;
    assert_eq!(a.status, 200);
    let stats: serde_json::Value = serde_json::from_slice(&a.body).expect("stats JSON");
    let line = &stats["flags"][0];
    assert_eq!(line["key"], "checkout_v2");
    assert_eq!(line["on_users"], canary_users);
    assert_eq!(line["off_users"], stable_users);

    // Prometheus shows the counts too.
    let m = get(&c, &h.admin_url("/metrics"), &[]).await;
    let text = String::from_utf8_lossy(&m.body);
    assert!(
        text.contains(&format!(
            "ramp_proxy_flag_users{{cohort=\"canary\",flag=\"checkout_v2\"}} {canary_users}"
        )),
        "{text}"
    );
    assert!(text.contains("ramp_proxy_upstream_healthy{pool=\"upstream\""));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_key_works_and_a_down_pool_is_not_rerouted() {
    let app = start_upstream("app").await;
    let file = FileConfig {
        mode: Some("flag".into()),
        upstream: Some(vec![app.to_string()]),
        flag: Some(FlagFile {
            key: Some("phase8_encryption_enabled".into()),
            ..FlagFile::default()
        }),
        sticky: Some(StickyFile {
            header: None,
            cookie: Some("uid".into()),
        }),
        initial_canary_weight: Some(50.0),
        ..FileConfig::default()
    };
    let h = start_proxy(file).await;
    let c = client();
    for i in 0..100 {
        let user = format!("u{i}");
        let a = get(
            &c,
            &h.url("/"),
            &[("cookie", &format!("theme=dark; uid={user}"))],
        )
        .await;
        let inside = ramp_flags::in_rollout(b"phase8_encryption_enabled", user.as_bytes(), 5_000);
        assert_eq!(
            a.header("x-seen-x-ramp-cohort"),
            if inside { "canary" } else { "stable" }
        );
    }
    let s = settled_snapshot(&c, &h).await;
    assert_eq!(
        s["flag"]["stable_users"].as_u64().unwrap() + s["flag"]["canary_users"].as_u64().unwrap(),
        100
    );
    h.stop().await;

    // With every member down there is no other pool: 503, never "rerouted".
    let down = closed_port().await;
    let file = FileConfig {
        mode: Some("flag".into()),
        upstream: Some(vec![down.to_string()]),
        flag: Some(FlagFile {
            key: Some("f".into()),
            ..FlagFile::default()
        }),
        sticky: Some(StickyFile {
            header: Some("x-user-id".into()),
            cookie: None,
        }),
        ..FileConfig::default()
    };
    let h = start_proxy(file).await;
    for m in h.proxy.pools()[0].members.iter() {
        m.record_check(false, 1, 1);
    }
    let a = get(&c, &h.url("/"), &[("x-user-id", "u1")]).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.header("x-ramp-error"), "internal/no_healthy_upstream");
    let s = settled_snapshot(&c, &h).await;
    assert_eq!(s["metrics"]["rerouted_unhealthy"], 0);
    h.stop().await;
}
