//! Fenced writes against a real three-member etcd cluster: a leader's writes succeed while it
//! holds its election key and fail once its lease is gone, and a new leader's token is larger.

// Tests time what they wait for with the wall clock.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use ramp_etcd::cluster::LocalCluster;
use ramp_etcd::{connect, fenced_put, EtcdConfig, Fence, Keys};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_lease_expired_cannot_write() {
    let cluster = LocalCluster::start(3).expect("etcd cluster");
    let config = EtcdConfig::new(cluster.endpoints());
    let keys = Keys::new(&config.prefix, "checkout");
    let mut old = connect(&config).await.expect("connect");
    let mut new = connect(&config).await.expect("connect");

    // The first candidate wins the election on a 2 s lease that nobody keeps alive.
    let lease = old.lease_grant(2, None).await.unwrap().id();
    let won = old.campaign(keys.election(), "old", lease).await.unwrap();
    let leader = won.leader().expect("leader key");
    let fence = Fence {
        leader_key: leader.key().to_vec(),
        revision: leader.rev(),
    };
    assert!(fenced_put(&mut old, &fence, &keys.weight(), b"5".to_vec())
        .await
        .unwrap());

    // A second candidate waits until the first lease expires, then leads.
    let lease2 = new.lease_grant(10, None).await.unwrap().id();
    let second = tokio::time::timeout(
        Duration::from_secs(15),
        new.campaign(keys.election(), "new", lease2),
    )
    .await
    .expect("the second candidate leads once the first lease expires")
    .unwrap();
    let leader2 = second.leader().expect("leader key");
    let fence2 = Fence {
        leader_key: leader2.key().to_vec(),
        revision: leader2.rev(),
    };
    assert!(fence2.token() > fence.token(), "tokens grow with leaders");

    // The old leader's write now fails in etcd, and the new one's succeeds.
    assert!(
        !fenced_put(&mut old, &fence, &keys.weight(), b"50".to_vec())
            .await
            .unwrap()
    );
    assert!(
        fenced_put(&mut new, &fence2, &keys.weight(), b"25".to_vec())
            .await
            .unwrap()
    );
    let got = new.get(keys.weight(), None).await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"25");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_fails_within_the_dial_timeout() {
    let mut config = EtcdConfig::new(vec!["http://127.0.0.1:9".to_string()]);
    config.dial_timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let err = connect(&config).await.map(|_| ()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{err}");
    assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
}
