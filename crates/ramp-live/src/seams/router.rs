//! The router seam: what moves traffic between the stable and the canary version.
//!
//! The driver sets a weight, reads back the weight in force (the controller owns it: a router
//! that holds another one is set again), drains the canary with weight 0 on a rollback, and,
//! for a live rehearsal, injects a fault into one cohort and removes it at the end.

use crate::source::{FaultRequest, ProxyAdmin, SourceError};
use crate::status::MemberView;
use ramp_core::Weight;
use std::future::Future;

/// What routes a live run's traffic.
pub trait Router: Send + Sync {
    /// Where the router is (a URL), for messages and errors.
    fn location(&self) -> &str;

    /// What the router is called in the driver's sentences ("the proxy", "HAProxy"), so that
    /// a line about the weight in force names what holds it.
    fn noun(&self) -> &'static str;

    /// Whether the router salts sticky routing with the deployment it names (a Ramp proxy,
    /// a fleet of them), so that one naming no deployment is worth a warning; HAProxy, nginx
    /// and commands have no such salt, and their not naming a deployment says nothing.
    fn salts_by_deployment(&self) -> bool {
        false
    }

    /// Which deployment the router says it serves and which run last set its weights, so that
    /// a controller never moves another service's traffic, nor traffic that a run its journal
    /// does not hold has moved.
    fn identity(&self) -> impl Future<Output = Result<RouterIdentity, SourceError>> + Send;

    /// The canary weight in force, in basis points.
    fn weight(&self) -> impl Future<Output = Result<u32, SourceError>> + Send;

    /// Sets the canary weight on behalf of the run whose token is `run` (the router reports it
    /// back as the run that set its weights); effective from the next request once this
    /// returns. Weight 0 drains the canary.
    fn set_weight(
        &self,
        weight: Weight,
        run: &str,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Injects a rehearsal's fault; returns the router's answer.
    fn add_fault(
        &self,
        fault: &FaultRequest,
    ) -> impl Future<Output = Result<String, SourceError>> + Send;

    /// Removes every injected fault.
    fn clear_faults(&self) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// The members of a router made of several (a fleet of proxies) as last seen, for `ramp
    /// status`, so that a member that serves little or does not hold the weight is visible;
    /// empty for a router that is one thing.
    fn members(&self) -> Vec<MemberView> {
        Vec::new()
    }
}

/// What a router says of itself before a controller sends it anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterIdentity {
    /// The deployment it serves, when it names one.
    pub deployment: Option<String>,
    /// The token of the run that last set its weights; `None` when no run did (they were set
    /// by hand, by its configuration, or by a controller older than run tokens).
    pub set_by: Option<String>,
    /// Why the router's parts do not agree on whose weights they hold (members of a fleet set
    /// by different runs), when they do not: refused like a foreign run unless the operator
    /// starts over.
    pub conflict: Option<String>,
}

/// One Ramp proxy through its admin API (the weight and the deployment come from its
/// `/snapshot`, as the metrics do).
impl Router for ProxyAdmin {
    fn location(&self) -> &str {
        self.url()
    }

    fn noun(&self) -> &'static str {
        "the proxy"
    }

    fn salts_by_deployment(&self) -> bool {
        true
    }

    async fn identity(&self) -> Result<RouterIdentity, SourceError> {
        let reading = ProxyAdmin::read(self).await?;
        Ok(RouterIdentity {
            deployment: reading.deployment_id,
            set_by: reading.set_by,
            conflict: None,
        })
    }

    async fn weight(&self) -> Result<u32, SourceError> {
        Ok(ProxyAdmin::read(self).await?.canary_bp)
    }

    async fn set_weight(&self, weight: Weight, run: &str) -> Result<(), SourceError> {
        ProxyAdmin::set_weight(self, weight, Some(run)).await
    }

    async fn add_fault(&self, fault: &FaultRequest) -> Result<String, SourceError> {
        ProxyAdmin::add_fault(self, fault).await
    }

    async fn clear_faults(&self) -> Result<(), SourceError> {
        ProxyAdmin::clear_faults(self).await
    }
}
