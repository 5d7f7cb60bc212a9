//! Proxies that follow a real etcd cluster: one cluster shared by the tests of a binary
//! (started by the first, stopped when the last drops it), the configuration of a follower,
//! weight documents written as a controller writes them, and bounded waits on what the
//! proxies show.

use super::{client, get, Harness, WAIT};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::{connect::HttpConnector, Client as HttpClient};
use ramp_etcd::cluster::LocalCluster;
use ramp_etcd::etcd_client::Client;
use ramp_etcd::{connect, EtcdConfig, Keys, WeightDoc};
use ramp_proxy::config::{EtcdFile, FileConfig};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// The cluster the tests of this binary share, while any holds it.
static CLUSTER: Mutex<Weak<LocalCluster>> = Mutex::new(Weak::new());

/// The binary's shared three-member cluster, started when no test holds it.
pub fn shared_cluster() -> Arc<LocalCluster> {
    let mut slot = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cluster) = slot.upgrade() {
        return cluster;
    }
    let cluster = Arc::new(LocalCluster::start(3).expect("a local etcd cluster"));
    *slot = Arc::downgrade(&cluster);
    cluster
}

/// A proxy configuration for the two pools that follows `deployment`'s weight in etcd.
pub fn follower(
    stable: &[SocketAddr],
    canary: &[SocketAddr],
    endpoints: Vec<String>,
    deployment: &str,
) -> FileConfig {
    let mut file = super::file_config(stable, canary);
    file.deployment_id = Some(deployment.to_string());
    file.etcd = Some(EtcdFile {
        endpoints: Some(endpoints),
        prefix: None,
    });
    file
}

/// A client of the cluster, as a controller connects.
pub async fn etcd(endpoints: Vec<String>) -> Client {
    connect(&EtcdConfig::new(endpoints))
        .await
        .expect("etcd reachable")
}

/// The weight key of `deployment` under the default prefix.
pub fn weight_key(deployment: &str) -> String {
    Keys::new("/ramp", deployment).weight()
}

/// Writes a weight document without a fenced transaction (what the proxy reads is the same).
pub async fn put_doc(client: &mut Client, deployment: &str, canary_bp: u32, fence: u64) {
    let doc = WeightDoc {
        canary_bp,
        fence,
        run: Some(format!("run-{fence}:1")),
    };
    client
        .put(
            weight_key(deployment),
            serde_json::to_vec(&doc).expect("json"),
            None,
        )
        .await
        .expect("put");
}

/// `GET /weights` as JSON.
pub async fn weights(c: &HttpClient<HttpConnector, Full<Bytes>>, h: &Harness) -> serde_json::Value {
    let a = get(c, &h.admin_url("/weights"), &[]).await;
    assert_eq!(a.status, 200);
    serde_json::from_slice(&a.body).expect("weights JSON")
}

/// Reads `GET /weights` until `done` holds (bounded by twice [`WAIT`]); panics naming `what`
/// with the last document otherwise.
pub async fn weights_when(
    h: &Harness,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let c = client();
    let deadline = tokio::time::Instant::now() + 2 * WAIT;
    loop {
        let w = weights(&c, h).await;
        if done(&w) {
            return w;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {:?}; last /weights: {w}",
            2 * WAIT
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `n` requests through the proxy and returns the share the canary answered.
pub async fn canary_share(h: &Harness, n: usize) -> f64 {
    let c = client();
    let mut canary = 0usize;
    for _ in 0..n {
        let a = get(&c, &h.url("/"), &[]).await;
        assert_eq!(a.status, 200);
        if a.header("x-upstream") == "canary" {
            canary += 1;
        }
    }
    canary as f64 / n as f64
}
