//! The etcd router against a real three-member etcd cluster, without proxies: a weight is a
//! plain put without an election and reads back with its run; with the leader's fence it is a
//! fenced transaction, and once the leader's election key is gone etcd refuses the write,
//! which is the typed refusal the driver stops on.

#![allow(
    clippy::disallowed_methods,
    reason = "the tests wait for a real cluster on the real clock"
)]

use ramp_core::Weight;
use ramp_etcd::cluster::LocalCluster;
use ramp_etcd::{connect, EtcdConfig, Fence, Keys, WeightDoc};
use ramp_live::routers::EtcdRouter;
use ramp_live::seams::{FenceToken, Router};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leaders_write_is_refused_by_etcd() {
    let cluster = LocalCluster::start(3).expect("a local etcd cluster");
    let config = EtcdConfig::new(cluster.endpoints());
    let token = FenceToken::none();
    let router = EtcdRouter::new(config.clone(), "router-test", Vec::new(), token.clone());

    // No election: a plain put with fence 0, read back with its run.
    router
        .set_weight(Weight::from_percent(5.0).unwrap(), "r1:1")
        .await
        .expect("a plain put");
    assert_eq!(router.weight().await.unwrap(), 500);
    assert_eq!(
        router.identity().await.unwrap().set_by.as_deref(),
        Some("r1:1")
    );

    // A leader: the write carries its fence and is a transaction on its election key.
    let mut client = connect(&config).await.unwrap();
    let keys = Keys::new(&config.prefix, "router-test");
    let lease = client.lease_grant(30, None).await.unwrap().id();
    let won = client.campaign(keys.election(), "c", lease).await.unwrap();
    let leader = won.leader().expect("leader key");
    let fence = Fence {
        leader_key: leader.key().to_vec(),
        revision: leader.rev(),
    };
    token.set_fence(fence.clone());
    router
        .set_weight(Weight::from_percent(20.0).unwrap(), "r1:2")
        .await
        .expect("the leader writes");
    let got = client.get(keys.weight(), None).await.unwrap();
    let doc: WeightDoc = serde_json::from_slice(got.kvs()[0].value()).unwrap();
    assert_eq!((doc.canary_bp, doc.fence), (2000, fence.token()));

    // The lease is gone (the leader was deposed): etcd refuses, and the router says so.
    client.lease_revoke(lease).await.unwrap();
    let refused = router
        .set_weight(Weight::from_percent(50.0).unwrap(), "r1:3")
        .await
        .unwrap_err();
    assert!(refused.is_superseded(), "{refused}");
    assert_eq!(router.weight().await.unwrap(), 2000, "unchanged");
}
