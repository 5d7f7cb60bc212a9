//! Routers other than Ramp's own proxy, each an implementation of [`crate::seams::Router`]
//! beside the proxy's: [`command`] (programs that set and read the weight) and [`haproxy`]
//! (HAProxy's runtime API, which is also a metrics source: its own counters).
//!
//! Neither can hold the run token a Ramp proxy reports back (`RouterIdentity::set_by`), nor
//! name a deployment, so their identity is [`crate::seams::RouterIdentity::default`]: the
//! controller's refusal of a router whose weights another run set relies on the journal
//! alone (its deployment lock and its run), and two controllers pointed at one HAProxy
//! backend with different journals would not see each other.

pub mod command;
pub mod haproxy;

/// The router a live run drives, as the binary built it from the plan's `[router]`.
#[derive(Debug, Clone)]
pub enum LiveRouter {
    /// One Ramp proxy's admin API (`admin`, or a proxy started in-process): also the
    /// metrics source of `[metrics] source = "proxy"`.
    Proxy(Box<crate::ProxyAdmin>),
    /// HAProxy's runtime API: also a metrics source (its own counters, without latency).
    Haproxy(haproxy::HaproxyRouter),
    /// Commands; the metrics come from Prometheus.
    Command(command::CommandRouter),
}

impl From<crate::ProxyAdmin> for LiveRouter {
    fn from(proxy: crate::ProxyAdmin) -> LiveRouter {
        LiveRouter::Proxy(Box::new(proxy))
    }
}
