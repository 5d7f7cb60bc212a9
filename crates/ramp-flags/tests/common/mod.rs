//! Shared by the OFREP integration tests: a flags file with every kind of flag, and a server
//! started on 127.0.0.1 port 0 that stops when the test drops its handle.

#![allow(dead_code)]

use ramp_flags::flags::{parse_flags_file, FlagState};
use ramp_flags::ofrep::{serve, ServeOptions};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Every kind of flag, and every way of rolling one out.
pub const FLAGS: &str = r##"
[flags.phase8_encryption_enabled]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
follow = "rollout"

[flags.banner_color]
variants = { red = "#f00", blue = "#00f" }
default_variant = "red"
on_variant = "blue"
weight = 12.5

[flags.max_items]
variants = { small = 10, large = 100 }
default_variant = "small"
on_variant = "large"
weight = 100

[flags.ratio]
variants = { low = 0.25, high = 0.75 }
default_variant = "low"
metadata = { owner = "growth", ticket = 42 }

[flags.limits]
variants = { basic = { rps = 10, tier = "basic" }, pro = { rps = 100, tier = "pro" } }
default_variant = "basic"
on_variant = "pro"
weight = 0

[flags.old_checkout]
variants = { on = true, off = false }
default_variant = "on"
enabled = false
"##;

/// A running server.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its flags and weight (tests move the weight through it).
    pub state: Arc<FlagState>,
    /// Dropping it (or sending) stops the server.
    stop: Option<oneshot::Sender<()>>,
    /// The server task.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with the test flags and these options.
    pub async fn start(options: ServeOptions) -> Self {
        let flags = parse_flags_file(FLAGS, "test-flags.toml").expect("the test flags are valid");
        Self::start_with(Arc::new(FlagState::new(flags)), options).await
    }

    /// Starts a server on a given state.
    pub async fn start_with(state: Arc<FlagState>, options: ServeOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), options, async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            state,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// The base URL OpenFeature providers take.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits until `serve` has returned.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(10), task)
                .await
                .expect("serve returns after shutdown")
                .expect("the server task does not panic");
        }
    }
}
