//! Test harness: real upstream servers and a real proxy on 127.0.0.1 ports picked by the OS,
//! and a small HTTP client. Every wait is bounded.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time real servers and deadlines with tokio's clock"
)]
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ramp_proxy::config::{Config, FileConfig};
use ramp_proxy::{serve, DrainOutcome, Proxy};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod etcd;
pub mod scripted;

/// Upper bound on any single wait in the tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// Starts a well-behaved upstream named `name`. It answers with `x-upstream: name`, echoes
/// some request headers back as `x-seen-*`, and obeys `x-delay-ms` and `x-status`. Path
/// `/echo` streams the request body back; `/collect` reads the whole request body before it
/// answers, with the body back; `/stream` sends two chunks 800 ms apart; an `Upgrade`
/// request gets a 101 and an echo tunnel.
pub async fn start_upstream(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = service_fn(move |req| upstream_answer(req, name));
                // HTTP/1.1 (with upgrades) or HTTP/2 prior knowledge, detected per connection.
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

type UpBody = http_body_util::combinators::BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

async fn upstream_answer(
    mut req: Request<Incoming>,
    name: &'static str,
) -> Result<Response<UpBody>, Infallible> {
    let header_u64 = |h: &str| {
        req.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let delay = header_u64("x-delay-ms");
    let status = header_u64("x-status")
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let mut seen = vec![("x-seen-version".to_string(), format!("{:?}", req.version()))];
    for h in [
        "x-ramp-cohort",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-hop",
        "connection",
        "te",
        "host",
        "x-keep",
    ] {
        let v = req
            .headers()
            .get_all(h)
            .iter()
            .map(|v| v.to_str().unwrap_or("?").to_string())
            .collect::<Vec<_>>()
            .join("|");
        seen.push((
            format!("x-seen-{h}"),
            if v.is_empty() {
                "<none>".to_string()
            } else {
                v
            },
        ));
    }
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let body: UpBody = if req.headers().contains_key(hyper::header::UPGRADE) {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut r = Response::new(Empty::new().map_err(|e| match e {}).boxed());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert("connection", "upgrade".parse().expect("hv"));
        r.headers_mut()
            .insert("upgrade", "echo".parse().expect("hv"));
        return Ok(r);
    } else if req.uri().path() == "/collect" {
        match req.into_body().collect().await {
            Ok(collected) => Full::new(collected.to_bytes())
                .map_err(|e| match e {})
                .boxed(),
            Err(_) => Empty::new().map_err(|e| match e {}).boxed(),
        }
    } else if req.uri().path() == "/echo" {
        req.into_body()
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
            .boxed()
    } else if req.uri().path() == "/stream" {
        let (tx, rx) = tokio::sync::mpsc::channel::<FrameResult>(2);
        tokio::spawn(async move {
            let _ = tx
                .send(Ok(hyper::body::Frame::data(Bytes::from_static(b"first;"))))
                .await;
            tokio::time::sleep(Duration::from_millis(800)).await;
            let _ = tx
                .send(Ok(hyper::body::Frame::data(Bytes::from_static(b"second"))))
                .await;
        });
        ChannelBody { rx }.boxed()
    } else {
        Full::new(Bytes::from_static(b"hello"))
            .map_err(|e| match e {})
            .boxed()
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("x-upstream", name.parse().expect("header value"));
    response
        .headers_mut()
        .insert("connection", "x-private-hop".parse().expect("hv"));
    response
        .headers_mut()
        .insert("x-private-hop", "secret".parse().expect("hv"));
    for (k, v) in seen {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            v.parse(),
        ) {
            response.headers_mut().insert(k, v);
        }
    }
    Ok(response)
}

type FrameResult = Result<hyper::body::Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>;

/// A response body fed frame by frame from a channel, to test streaming.
pub struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<FrameResult>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<FrameResult>> {
        self.rx.poll_recv(cx)
    }
}

/// How a misbehaving raw-TCP upstream treats each connection.
#[derive(Debug, Clone, Copy)]
pub enum BadUpstream {
    /// Reads the request, then resets the connection (RST).
    Reset,
    /// Reads the request, then answers bytes that are not HTTP.
    Garbage,
    /// Reads the request and never answers.
    Hang,
}

/// Starts a misbehaving upstream.
pub async fn start_bad_upstream(kind: BadUpstream) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind bad upstream");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
                match kind {
                    BadUpstream::Reset => {
                        // Linger 0 makes the close send RST; with a zero timeout it never
                        // blocks, which is what the deprecation warns about.
                        #[allow(deprecated)]
                        let _ = stream.set_linger(Some(Duration::ZERO));
                        drop(stream);
                    }
                    BadUpstream::Garbage => {
                        let _ = stream.write_all(b"THIS IS NOT HTTP AT ALL\r\n\r\n").await;
                        let _ = stream.shutdown().await;
                    }
                    BadUpstream::Hang => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                }
            });
        }
    });
    addr
}

/// An address on which nothing listens (bound, then closed).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

/// A running proxy.
pub struct Harness {
    /// Client listener.
    pub addr: SocketAddr,
    /// Admin listener.
    pub admin: SocketAddr,
    /// The proxy's shared state.
    pub proxy: Arc<Proxy>,
    /// Fires the shutdown signal.
    shutdown: Option<oneshot::Sender<()>>,
    /// The `serve` task.
    task: Option<JoinHandle<DrainOutcome>>,
}

impl Harness {
    /// Signals shutdown and waits (bounded) for the drain outcome.
    pub async fn stop(mut self) -> DrainOutcome {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("task");
        tokio::time::timeout(WAIT, task)
            .await
            .expect("proxy stops in time")
            .expect("serve task")
    }

    /// Signals shutdown without waiting; returns the task to await later.
    pub fn signal_stop(&mut self) -> JoinHandle<DrainOutcome> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().expect("task")
    }

    /// URL on the proxy.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// URL on the admin API.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A file config for the two pools with test-friendly defaults.
pub fn file_config(stable: &[SocketAddr], canary: &[SocketAddr]) -> FileConfig {
    FileConfig {
        stable: Some(stable.iter().map(|a| a.to_string()).collect()),
        canary: Some(canary.iter().map(|a| a.to_string()).collect()),
        ..FileConfig::default()
    }
}

/// Starts a proxy for `file` on fresh loopback ports.
pub async fn start_proxy(file: FileConfig) -> Harness {
    let config = Config::from_file(file, "test").expect("valid test config");
    start_proxy_with(config).await
}

/// Starts a proxy for a validated config on fresh loopback ports.
pub async fn start_proxy_with(config: Config) -> Harness {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let admin_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
    let addr = listener.local_addr().expect("addr");
    let admin = admin_listener.local_addr().expect("admin addr");
    let weights = ramp_proxy::state::initial_weights(&config).expect("state");
    let proxy = Proxy::with_weights(config, weights);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(proxy.clone(), listener, admin_listener, async move {
        let _ = rx.await;
    }));
    Harness {
        addr,
        admin,
        proxy,
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// A keep-alive HTTP/1.1 client with `TCP_NODELAY`, as curl and browsers use: without it a
/// fresh connection's first request can wait ~40 ms for a delayed ACK (Nagle), which would
/// be charged to the proxy by the latency comparisons.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector)
}

/// The parts of a response the tests look at.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: hyper::HeaderMap,
    /// Whole body.
    pub body: Bytes,
}

impl Answer {
    /// A header as a string, or "".
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

/// Sends one request and reads the whole answer (bounded).
pub async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Answer {
    let mut builder = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder.body(Full::new(body)).expect("request");
    let fut = async {
        let response = client.request(request).await.expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .expect("request finished in time")
}

/// GET shorthand.
pub async fn get(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    headers: &[(&str, &str)],
) -> Answer {
    send(client, "GET", url, headers, Bytes::new()).await
}

/// Sets the canary weight through the admin API.
pub async fn set_weight(client: &Client<HttpConnector, Full<Bytes>>, h: &Harness, percent: f64) {
    let a = send(
        client,
        "PUT",
        &h.admin_url("/weights"),
        &[],
        Bytes::from(format!("{{\"canary\": {percent}}}")),
    )
    .await;
    assert_eq!(a.status, 200, "PUT /weights: {:?}", a.body);
}

/// Reads `/snapshot` as JSON.
pub async fn snapshot(
    client: &Client<HttpConnector, Full<Bytes>>,
    h: &Harness,
) -> serde_json::Value {
    let a = get(client, &h.admin_url("/snapshot"), &[]).await;
    assert_eq!(a.status, 200);
    serde_json::from_slice(&a.body).expect("snapshot JSON")
}

/// Waits until both cohorts have nothing in flight, so counters are final.
pub async fn settled_snapshot(
    client: &Client<HttpConnector, Full<Bytes>>,
    h: &Harness,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = snapshot(client, h).await;
        let idle =
            s["metrics"]["stable"]["in_flight"] == 0 && s["metrics"]["canary"]["in_flight"] == 0;
        if idle || tokio::time::Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sets the request-body idle deadline of a test configuration.
pub fn set_client_body_idle(file: &mut FileConfig, ms: u64) {
    file.timeouts.client_body_idle_ms = Some(ms);
}

/// Sends `PUT /weights` with `body` and returns the answer (whatever its status).
pub async fn put_weights(
    client: &Client<HttpConnector, Full<Bytes>>,
    h: &Harness,
    body: &str,
) -> Answer {
    send(
        client,
        "PUT",
        &h.admin_url("/weights"),
        &[],
        Bytes::from(body.to_string()),
    )
    .await
}

/// Reads `/snapshot` until `done` holds for it (bounded by [`WAIT`]); panics naming `what`
/// with the last snapshot if it never does.
pub async fn snapshot_when(
    client: &Client<HttpConnector, Full<Bytes>>,
    h: &Harness,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = snapshot(client, h).await;
        if done(&s) {
            return s;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{what} never happened: {}", s["metrics"]);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that `cohort` recorded nothing at all: no request, no latency, no response of
/// any class, no error of either kind.
pub fn assert_cohort_untouched(s: &serde_json::Value, cohort: &str) {
    let m = &s["metrics"][cohort];
    assert_eq!(m["requests"], 0, "{cohort} requests: {m}");
    assert_eq!(m["latency"]["count"], 0, "{cohort} latency count: {m}");
    assert_eq!(m["errors"], 0, "{cohort} errors: {m}");
    for (class, n) in m["responses"].as_object().expect("responses map") {
        assert_eq!(n, 0, "{cohort} responses.{class}: {m}");
    }
    for (reason, n) in m["upstream_errors"]
        .as_object()
        .expect("upstream_errors map")
    {
        assert_eq!(n, 0, "{cohort} upstream_errors.{reason}: {m}");
    }
}

/// Asserts that the client failures counted are exactly `expected` (every other reason 0).
pub fn assert_client_errors(s: &serde_json::Value, expected: &[(&str, u64)]) {
    let errors = &s["metrics"]["client_errors"];
    for (reason, want) in expected {
        assert_eq!(errors[*reason], *want, "client_errors.{reason}: {errors}");
    }
    for (reason, n) in errors.as_object().expect("client_errors map") {
        if !expected.iter().any(|(r, _)| r == reason) {
            assert_eq!(n, 0, "client_errors.{reason}: {errors}");
        }
    }
}
