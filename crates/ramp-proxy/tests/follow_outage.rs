//! Proxies following etcd through a whole-cluster outage: with every member killed they keep
//! routing at the last weight (real requests through them to loopback upstreams), say they
//! are disconnected, and once the members are back they apply a new weight; a follower that
//! starts while etcd is unreachable serves its persisted weight and says it could not
//! confirm it.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time real servers and deadlines with tokio's clock"
)]

mod common;

use common::etcd::*;
use common::*;
use ramp_etcd::cluster::LocalCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_keep_the_last_weight_while_etcd_is_gone_and_follow_again_after() {
    let mut cluster = LocalCluster::start(3).expect("a local etcd cluster");
    let deployment = "outage";
    let (stable, canary) = (
        start_upstream("stable").await,
        start_upstream("canary").await,
    );
    let file = follower(&[stable], &[canary], cluster.endpoints(), deployment);
    let a = start_proxy(file.clone()).await;
    let b = start_proxy(file).await;
    let mut client = etcd(cluster.endpoints()).await;
    put_doc(&mut client, deployment, 3000, 7).await;
    for h in [&a, &b] {
        weights_when(h, "30 % applied", |w| w["canary_bp"] == 3000).await;
    }

    for i in 0..3 {
        cluster.kill(i);
    }
    for h in [&a, &b] {
        let w = weights_when(h, "the outage is noticed", |w| {
            w["etcd"]["connected"] == false
        })
        .await;
        assert_eq!(w["canary_bp"], 3000, "the weight stays: {w}");
        let share = canary_share(h, 400).await;
        assert!(
            (0.2..=0.4).contains(&share),
            "canary share {share} at 30 % during the outage"
        );
    }

    cluster.restart_all().expect("members restart");
    let mut client = etcd(cluster.endpoints()).await;
    put_doc(&mut client, deployment, 6000, 8).await;
    for h in [&a, &b] {
        let w = weights_when(h, "60 % applied after the outage", |w| {
            w["canary_bp"] == 6000
        })
        .await;
        assert_eq!(
            (w["fence"].clone(), w["etcd"]["connected"].clone()),
            (8.into(), true.into())
        );
        let share = canary_share(h, 400).await;
        assert!((0.5..=0.7).contains(&share), "canary share {share} at 60 %");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_started_while_etcd_is_unreachable_routes_at_its_persisted_weight() {
    let dir = std::env::temp_dir().join(format!("ramp-proxy-follow-down-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let state = dir.join("weights.json");
    std::fs::write(
        &state,
        "{\"version\": 1, \"canary_bp\": 4000, \"set_by\": \"r:1\", \"fence\": 9}\n",
    )
    .expect("state file");
    let (stable, canary) = (
        start_upstream("stable").await,
        start_upstream("canary").await,
    );
    let nobody = closed_port().await;
    let mut file = follower(
        &[stable],
        &[canary],
        vec![format!("http://{nobody}")],
        "down",
    );
    file.state_file = Some(state);
    let h = start_proxy(file).await;
    // Give the follower time for a few failed attempts; the weight must not move.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let w = weights(&client(), &h).await;
    assert_eq!(
        (
            w["canary_bp"].clone(),
            w["fence"].clone(),
            w["etcd"]["connected"].clone(),
            w["etcd"]["confirmed_at_start"].clone()
        ),
        (4000.into(), 9.into(), false.into(), false.into()),
        "{w}"
    );
    let share = canary_share(&h, 400).await;
    assert!((0.3..=0.5).contains(&share), "canary share {share} at 40 %");
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
