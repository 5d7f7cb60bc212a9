//! Test harness: demo upstreams on 127.0.0.1 ports picked by the OS, a small HTTP client,
//! and a bound on every wait.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time real servers and deadlines with tokio's clock"
)]
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use ramp_demo::{serve_upstream, Behaviour};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Upper bound on any one test's run time.
pub const TEST_BOUND: Duration = Duration::from_secs(15);

/// Runs `test` and fails it if it takes longer than [`TEST_BOUND`].
pub async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("the test exceeded its time bound");
}

/// A running demo upstream and the means to stop it.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its behaviour, shared with the server so tests can regress it and read counters.
    pub behaviour: Arc<Behaviour>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ramp_demo::DemoError>>,
}

impl Upstream {
    /// Stops the server and checks that it returned cleanly and promptly.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("the upstream stops within its drain bound")
            .expect("the upstream task does not panic");
        assert!(result.is_ok(), "{result:?}");
    }
}

/// Starts `behaviour` on a fresh loopback port.
pub async fn start(behaviour: Behaviour) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let behaviour = Arc::new(behaviour);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_upstream(listener, behaviour.clone(), async move {
        let _ = rx.await;
    }));
    Upstream {
        addr,
        behaviour,
        stop: Some(tx),
        task,
    }
}

/// A fast upstream with the given name and error rate.
pub fn fast(name: &str, error_rate: f64) -> Behaviour {
    Behaviour::new(name, 1.0, 2.0, 3.0, error_rate).expect("valid behaviour")
}

/// A pooled keep-alive client like the load generator's.
pub fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// One answer as a test sees it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// The `x-ramp-upstream` header, if any.
    pub upstream: Option<String>,
    /// The whole body.
    pub body: String,
    /// Client-observed latency.
    pub latency: Duration,
}

/// GETs `path` from `addr` with a 5 s bound.
pub async fn get(
    client: &Client<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
    path: &str,
) -> Answer {
    let uri: hyper::Uri = format!("http://{addr}{path}").parse().expect("uri");
    let started = tokio::time::Instant::now();
    let exchange = async {
        let response = client.get(uri).await.expect("response");
        let status = response.status().as_u16();
        let upstream = response
            .headers()
            .get("x-ramp-upstream")
            .map(|v| v.to_str().expect("ascii").to_string());
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            upstream,
            String::from_utf8_lossy(&body).into_owned(),
        )
    };
    let (status, upstream, body) = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .expect("an answer within 5 s");
    Answer {
        status,
        upstream,
        body,
        latency: started.elapsed(),
    }
}

/// Sends `n` GETs of `path` to `addr`, at most `concurrency` at once, and returns the
/// answers in completion order.
pub async fn fire(addr: SocketAddr, path: &str, n: usize, concurrency: usize) -> Vec<Answer> {
    let client = client();
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        let client = client.clone();
        let path = path.to_string();
        tasks.spawn(async move {
            let answer = get(&client, addr, &path).await;
            drop(permit);
            answer
        });
    }
    let mut answers = Vec::with_capacity(n);
    while let Some(a) = tasks.join_next().await {
        answers.push(a.expect("request task"));
    }
    answers
}

/// Whether `k` successes of `n` trials are within `z` standard deviations of `n·p`.
pub fn within_binomial(k: u64, n: u64, p: f64, z: f64) -> bool {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (k as f64 - mean).abs() <= z * sd.max(0.5)
}

/// A future that resolves after `d`, as a shutdown signal.
pub fn after(d: Duration) -> impl Future<Output = ()> + Send + 'static {
    tokio::time::sleep(d)
}

/// A future that never resolves, for runs bounded by their duration.
pub fn never() -> impl Future<Output = ()> + Send + 'static {
    std::future::pending()
}

/// Whether a Poisson count `k` is within `z` standard deviations of its `mean`.
pub fn within_poisson(k: u64, mean: f64, z: f64) -> bool {
    (k as f64 - mean).abs() <= z * mean.sqrt()
}
