//! The routers a live run drives besides one Ramp proxy ([`crate::ProxyAdmin`]): a fleet of
//! Ramp proxies ([`Fleet`]), nginx through an upstream file it includes ([`Nginx`]), and the
//! choice among them that a run is configured with
//! ([`LiveRouter`]).
//!
//! Each implements [`crate::seams::Router`]; a fleet is also a
//! [`crate::seams::MetricsSource`], as one proxy is.

mod fleet;
mod nginx;

pub use fleet::Fleet;
pub use nginx::{Nginx, NginxError};

use crate::ProxyAdmin;

/// The router of a live run, as configured: `driver::run` picks the seams from it.
#[derive(Debug, Clone)]
pub enum LiveRouter {
    /// One `ramp proxy`: router and metrics source.
    Proxy(ProxyAdmin),
    /// Several `ramp proxy` processes behind a load balancer: every weight goes to each, and
    /// their counters are summed.
    Fleet(Fleet),
    /// nginx through the upstream file Ramp owns; its metrics come from Prometheus.
    Nginx(Nginx),
}

impl From<ProxyAdmin> for LiveRouter {
    fn from(proxy: ProxyAdmin) -> LiveRouter {
        LiveRouter::Proxy(proxy)
    }
}
