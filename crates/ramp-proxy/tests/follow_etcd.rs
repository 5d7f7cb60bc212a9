//! Proxies following a deployment's weight in a real three-member etcd cluster (one cluster
//! shared by this binary's tests, a deployment of its own per test): followers converge on a
//! weight a leader writes with a fenced transaction, a proxy started later picks up the
//! current weight, a document from an older leader is ignored, and a follower restarted
//! while the weight moved serves its very first request at the new weight, not at the one it
//! persisted.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time real servers and deadlines with tokio's clock"
)]

mod common;

use common::etcd::*;
use common::*;
use ramp_etcd::{fenced_put, Fence, WeightDoc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_converge_on_a_fenced_weight_and_a_late_one_picks_it_up() {
    let cluster = shared_cluster();
    let deployment = "converge";
    let (stable, canary) = (
        start_upstream("stable").await,
        start_upstream("canary").await,
    );
    let file = follower(&[stable], &[canary], cluster.endpoints(), deployment);
    let a = start_proxy(file.clone()).await;
    let b = start_proxy(file.clone()).await;
    for h in [&a, &b] {
        let w = weights_when(h, "the follower reaches etcd", |w| {
            w["etcd"]["connected"] == true
        })
        .await;
        assert_eq!(w["source"], "etcd");
        assert_eq!(w["etcd"]["key"], weight_key(deployment));
        assert_eq!(w["canary_bp"], 0, "no document yet: the configured weight");
    }

    // A leader, elected as the controllers are, writes 25 % with its fence.
    let mut leader = etcd(cluster.endpoints()).await;
    let lease = leader.lease_grant(30, None).await.unwrap().id();
    let won = leader
        .campaign(
            format!("/ramp/deployments/{deployment}/election"),
            "c1",
            lease,
        )
        .await
        .unwrap();
    let key = won.leader().expect("leader key");
    let fence = Fence {
        leader_key: key.key().to_vec(),
        revision: key.rev(),
    };
    let doc = WeightDoc {
        canary_bp: 2500,
        fence: fence.token(),
        run: Some("c1-run:3".into()),
    };
    assert!(fenced_put(
        &mut leader,
        &fence,
        &weight_key(deployment),
        serde_json::to_vec(&doc).unwrap()
    )
    .await
    .unwrap());
    for h in [&a, &b] {
        let w = weights_when(h, "the follower applies the weight", |w| {
            w["canary_bp"] == 2500
        })
        .await;
        assert_eq!(w["fence"], fence.token());
        assert_eq!(w["set_by"], "c1-run:3");
        assert!(w["etcd"]["revision"].as_i64().unwrap() > 0, "{w}");
    }

    // A proxy started now reads the current weight at its start.
    let late = start_proxy(file).await;
    let w = weights_when(&late, "the late follower reads the weight", |w| {
        w["canary_bp"] == 2500
    })
    .await;
    assert_eq!(w["fence"], fence.token());
    let share = canary_share(&late, 400).await;
    assert!(
        (0.17..=0.33).contains(&share),
        "canary share {share} at 25 %"
    );
    for h in [a, b, late] {
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_from_an_older_leader_is_ignored_and_said_so() {
    let cluster = shared_cluster();
    let deployment = "stale";
    let (stable, canary) = (
        start_upstream("stable").await,
        start_upstream("canary").await,
    );
    let dir = tempfile_dir("stale");
    let mut file = follower(&[stable], &[canary], cluster.endpoints(), deployment);
    file.state_file = Some(dir.join("weights.json"));
    let h = start_proxy(file.clone()).await;
    let mut client = etcd(cluster.endpoints()).await;

    put_doc(&mut client, deployment, 1000, 100).await;
    weights_when(&h, "fence 100's weight", |w| w["canary_bp"] == 1000).await;
    put_doc(&mut client, deployment, 9000, 50).await;
    let w = weights_when(&h, "the older document is counted as ignored", |w| {
        w["etcd"]["ignored_stale"] == 1
    })
    .await;
    assert_eq!(
        (w["canary_bp"].clone(), w["fence"].clone()),
        (1000.into(), 100.into())
    );
    // An admin PUT with an older fence is refused the same way; a person's is not.
    let c = client_for_admin();
    assert_eq!(
        put_weights(&c, &h, r#"{"canary": 90, "fence": 99}"#)
            .await
            .status,
        409
    );
    // Both refusals, the ignored document and the 409, are counted.
    let metrics = get(&c, &h.admin_url("/metrics"), &[]).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("ramp_proxy_weight_refused_total 2"), "{text}");

    // The fence is persisted: after a restart the older leader is still ignored, and a newer
    // one is applied.
    h.stop().await;
    let h = start_proxy(file).await;
    let w = weights_when(&h, "the follower reconnects", |w| {
        w["etcd"]["connected"] == true
    })
    .await;
    assert_eq!(
        (w["canary_bp"].clone(), w["fence"].clone()),
        (1000.into(), 100.into())
    );
    put_doc(&mut client, deployment, 4000, 120).await;
    let w = weights_when(&h, "fence 120's weight", |w| w["canary_bp"] == 4000).await;
    assert_eq!(w["fence"], 120);
    let metrics = get(&c, &h.admin_url("/metrics"), &[]).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("ramp_proxy_weight_fence 120"), "{text}");
    assert!(text.contains("ramp_proxy_etcd_connected 1"), "{text}");
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_serves_its_first_request_at_the_current_weight() {
    let cluster = shared_cluster();
    let deployment = "restart";
    let (stable, canary) = (
        start_upstream("stable").await,
        start_upstream("canary").await,
    );
    let dir = tempfile_dir("restart");
    let mut file = follower(&[stable], &[canary], cluster.endpoints(), deployment);
    file.state_file = Some(dir.join("weights.json"));
    let mut client = etcd(cluster.endpoints()).await;

    // Weight A: all stable, applied and persisted with its fence.
    put_doc(&mut client, deployment, 0, 5).await;
    let h = start_proxy(file.clone()).await;
    let w = weights_when(&h, "weight A applied", |w| {
        w["fence"] == 5 && w["etcd"]["revision"].as_i64().unwrap_or(0) > 0
    })
    .await;
    assert_eq!(w["canary_bp"], 0);
    h.stop().await;

    // While the proxy is down the leader moves the weight to B: all canary.
    put_doc(&mut client, deployment, 10_000, 6).await;

    // The restarted proxy persisted A; the first requests it serves must already be at B.
    let h = start_proxy(file).await;
    let c = client_for_admin();
    for i in 0..20 {
        let a = get(&c, &h.url("/"), &[]).await;
        assert_eq!(a.status, 200);
        assert_eq!(
            a.header("x-upstream"),
            "canary",
            "request {i} after the restart was served at the persisted weight, not at etcd's"
        );
    }
    let w = weights(&c, &h).await;
    assert_eq!(
        (
            w["canary_bp"].clone(),
            w["fence"].clone(),
            w["etcd"]["confirmed_at_start"].clone()
        ),
        (10_000.into(), 6.into(), true.into()),
        "{w}"
    );
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client for the admin API.
fn client_for_admin() -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
> {
    client()
}

/// A fresh temporary directory for this process.
fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ramp-proxy-follow-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
