//! A whole demo world on loopback: a stable and a canary upstream with Ramp's proxy in front.
//!
//! `ramp demo` and the live integration tests need the same thing: two upstreams whose
//! behaviour they can change, the proxy routing between them, and one switch that stops it
//! all. [`Stack::start`] builds it on ports the kernel picks; load, when wanted, is started
//! by the caller against [`Stack::proxy_addr`] with [`Stack::stopped`] as its shutdown.

use crate::{serve_upstream, Behaviour, DemoError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Two upstreams and the proxy, running on the current tokio runtime until stopped (or
/// dropped).
pub struct Stack {
    /// The stable upstream's behaviour, so that callers can make it regress.
    pub stable: Arc<Behaviour>,
    /// The canary upstream's behaviour (`ramp demo --break` changes it while it serves).
    pub canary: Arc<Behaviour>,
    /// Where the stable upstream listens.
    pub stable_addr: SocketAddr,
    /// Where the canary upstream listens.
    pub canary_addr: SocketAddr,
    /// Where the proxy takes client traffic: the load generator's target.
    pub proxy_addr: SocketAddr,
    /// Where the proxy's admin API listens: what a controller drives.
    pub admin_addr: SocketAddr,
    /// Flipped to `true` once to stop the upstreams, the proxy and whatever else the
    /// caller started with [`Stack::stopped`].
    stop: watch::Sender<bool>,
}

impl Stack {
    /// Starts both upstreams and the proxy in front of them, on loopback ports the kernel
    /// picks, with the canary at the configuration's initial weight (0 unless `configure`
    /// sets `initial_canary_bp`). `configure` adjusts the proxy's configuration (deployment
    /// id, sticky routing, initial weight) before it starts.
    pub async fn start(
        stable: Behaviour,
        canary: Behaviour,
        configure: impl FnOnce(&mut ramp_proxy::Config),
    ) -> Result<Stack, DemoError> {
        let (stop, _) = watch::channel(false);
        let bind = |what: &'static str| async move {
            TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(|source| DemoError::Bind { what, source })
        };
        let addr = |l: &TcpListener, what: &'static str| {
            l.local_addr()
                .map_err(|source| DemoError::Bind { what, source })
        };
        let (stable, canary) = (Arc::new(stable), Arc::new(canary));
        let mut upstreams = Vec::with_capacity(2);
        for (b, what) in [(&stable, "stable upstream"), (&canary, "canary upstream")] {
            let listener = bind(what).await?;
            upstreams.push(addr(&listener, what)?);
            tokio::spawn(serve_upstream(listener, Arc::clone(b), stopped(&stop)));
        }
        let mut config = ramp_proxy::Config::for_pools(&upstreams[..1], &upstreams[1..])
            .map_err(|e| DemoError::Proxy(e.to_string()))?;
        configure(&mut config);
        let listener = bind("proxy").await?;
        let admin = bind("proxy admin API").await?;
        let proxy_addr = addr(&listener, "proxy")?;
        let admin_addr = addr(&admin, "proxy admin API")?;
        let initial_bp = config.initial_canary_bp;
        tokio::spawn(ramp_proxy::serve(
            ramp_proxy::Proxy::new(config, initial_bp),
            listener,
            admin,
            stopped(&stop),
        ));
        Ok(Stack {
            stable,
            canary,
            stable_addr: upstreams[0],
            canary_addr: upstreams[1],
            proxy_addr,
            admin_addr,
            stop,
        })
    }

    /// A future that completes when the stack stops: the shutdown signal for load or
    /// anything else that should end with it.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        stopped(&self.stop)
    }

    /// Stops the upstreams, the proxy and everything started with [`Stack::stopped`].
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A future that completes once `stop` has been set.
fn stopped(stop: &watch::Sender<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut rx = stop.subscribe();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}
