//! The demo upstreams, in the soak's process: two stable pool members and one canary.
//!
//! The stable pool has two members so that one of them can flap (go down and come back)
//! while the pool keeps serving, the way a real pool loses and regains an instance. A member
//! that is down does not listen at all (connections are refused), and comes back on the same
//! port.

use crate::timeline::Timeline;
use anyhow::{Context, Result};
use ramp_demo::{serve_upstream, Behaviour};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// How long a member that was just stopped may take to be bindable again.
const REBIND_LIMIT: Duration = Duration::from_secs(5);

/// The three upstreams and their addresses.
pub struct Upstreams {
    /// Both stable members' behaviour (one `Behaviour`, so their counts add up).
    pub stable: Arc<Behaviour>,
    /// The canary's behaviour, which `--regression-after` changes while it serves.
    pub canary: Arc<Behaviour>,
    /// The stable member that never goes down.
    pub stable_a: SocketAddr,
    /// The stable member that flaps.
    pub stable_b: SocketAddr,
    /// The canary's one member.
    pub canary_addr: SocketAddr,
    /// The flapping member's switch while it is up; `None` while it is down.
    flapper: Option<oneshot::Sender<()>>,
    /// Stops every upstream.
    stop: watch::Receiver<bool>,
}

/// A future that completes when `stop` turns true (or its sender is gone).
pub fn stopped(stop: &watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send {
    let mut rx = stop.clone();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// Binds a loopback listener on `port` (0: any), retrying for a few seconds when the port is
/// still held by the member that was just stopped.
async fn bind(port: u16) -> Result<TcpListener> {
    let deadline = crate::clock::now() + REBIND_LIMIT;
    loop {
        match TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await {
            Ok(l) => return Ok(l),
            Err(_) if crate::clock::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot listen on 127.0.0.1:{port}")),
        }
    }
}

impl Upstreams {
    /// Starts the three upstreams on loopback ports the kernel picks; they stop when `stop`
    /// turns true.
    pub async fn start(
        stable: Behaviour,
        canary: Behaviour,
        stop: watch::Receiver<bool>,
    ) -> Result<Upstreams> {
        let (stable, canary) = (Arc::new(stable), Arc::new(canary));
        let stable_a = bind(0).await?;
        let canary_l = bind(0).await?;
        let stable_b = bind(0).await?;
        let addr = |l: &TcpListener| l.local_addr().context("a listener without an address");
        let mut up = Upstreams {
            stable_a: addr(&stable_a)?,
            stable_b: addr(&stable_b)?,
            canary_addr: addr(&canary_l)?,
            stable: Arc::clone(&stable),
            canary: Arc::clone(&canary),
            flapper: None,
            stop: stop.clone(),
        };
        tokio::spawn(serve_upstream(stable_a, stable, stopped(&stop)));
        tokio::spawn(serve_upstream(canary_l, canary, stopped(&stop)));
        up.serve_flapper(stable_b);
        Ok(up)
    }

    /// Serves the flapping member on `listener`, under a switch that can take it down.
    fn serve_flapper(&mut self, listener: TcpListener) {
        let (tx, rx) = oneshot::channel::<()>();
        let stop = stopped(&self.stop);
        let shutdown = async move {
            tokio::select! {
                _ = rx => {}
                () = stop => {}
            }
        };
        tokio::spawn(serve_upstream(listener, Arc::clone(&self.stable), shutdown));
        self.flapper = Some(tx);
    }

    /// Takes the flapping member down: it stops accepting at once and finishes the requests
    /// it has (its drain is bounded by the demo upstream's own deadline).
    pub fn flapper_down(&mut self, timeline: &Timeline) {
        if let Some(tx) = self.flapper.take() {
            let _ = tx.send(());
            timeline.log(
                "upstream_down",
                format!("stable member {} stops listening", self.stable_b),
            );
        }
    }

    /// Brings the flapping member back on its port.
    pub async fn flapper_up(&mut self, timeline: &Timeline) -> Result<()> {
        if self.flapper.is_none() {
            let listener = bind(self.stable_b.port()).await?;
            self.serve_flapper(listener);
            timeline.log(
                "upstream_up",
                format!("stable member {} listens again", self.stable_b),
            );
        }
        Ok(())
    }
}
