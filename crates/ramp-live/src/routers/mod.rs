//! The routers a live run drives besides one Ramp proxy ([`crate::ProxyAdmin`]), each an
//! implementation of [`crate::seams::Router`] beside the proxy's: a fleet of Ramp proxies
//! ([`Fleet`], also a [`crate::seams::MetricsSource`], as one proxy is), nginx through an
//! upstream file it includes ([`Nginx`]), [`command`] (programs that set and read the weight),
//! [`EtcdRouter`] (a weight key in etcd that `ramp proxy --etcd` processes follow) and
//! [`haproxy`] (HAProxy's runtime API, which is also a metrics source: its own counters);
//! and the choice among them that a run is configured with ([`LiveRouter`]).
//!
//! HAProxy and commands can neither hold the run token a Ramp proxy reports back
//! (`RouterIdentity::set_by`) nor name a deployment, so their identity is
//! [`crate::seams::RouterIdentity::default`]: the controller's refusal of a router whose
//! weights another run set relies on the journal alone (its deployment lock and its run), and
//! two controllers pointed at one HAProxy backend with different journals would not see each
//! other. nginx's upstream file, which Ramp owns, carries its deployment and run.

pub mod command;
mod etcd;
mod fleet;
pub mod haproxy;
mod nginx;

pub use etcd::EtcdRouter;
pub use fleet::Fleet;
pub use nginx::{Nginx, NginxError};

/// The router a live run drives, as the binary built it from the plan's `[router]`:
/// `driver::run` picks the seams from it.
#[derive(Debug, Clone)]
pub enum LiveRouter {
    /// One Ramp proxy's admin API (`admin`, or a proxy started in-process): also the
    /// metrics source of `[metrics] source = "proxy"`.
    Proxy(Box<crate::ProxyAdmin>),
    /// Several `ramp proxy` processes behind a load balancer: every weight goes to each, and
    /// their counters are summed.
    Fleet(Fleet),
    /// nginx through the upstream file Ramp owns; its metrics come from Prometheus.
    Nginx(Nginx),
    /// HAProxy's runtime API: also a metrics source (its own counters, without latency).
    Haproxy(haproxy::HaproxyRouter),
    /// Commands; the metrics come from Prometheus.
    Command(command::CommandRouter),
    /// The deployment's weight key in etcd, which `ramp proxy --etcd` processes follow; the
    /// metrics are their snapshots summed (or Prometheus).
    Etcd(EtcdRouter),
}

impl From<crate::ProxyAdmin> for LiveRouter {
    fn from(proxy: crate::ProxyAdmin) -> LiveRouter {
        LiveRouter::Proxy(Box::new(proxy))
    }
}
