//! The router seam: what moves traffic between the stable and the canary version.
//!
//! The driver sets a weight, reads back the weight in force (the controller owns it: a router
//! that holds another one is set again), drains the canary with weight 0 on a rollback, and,
//! for a live rehearsal, injects a fault into one cohort and removes it at the end.

use crate::source::{FaultRequest, ProxyAdmin, SourceError};
use ramp_core::Weight;
use std::future::Future;

/// What routes a live run's traffic.
pub trait Router: Send + Sync {
    /// Where the router is (a URL), for messages and errors.
    fn location(&self) -> &str;

    /// The deployment the router says it serves (`None` when it names none), so that a
    /// controller never moves another service's traffic.
    fn deployment(&self) -> impl Future<Output = Result<Option<String>, SourceError>> + Send;

    /// The canary weight in force, in basis points.
    fn weight(&self) -> impl Future<Output = Result<u32, SourceError>> + Send;

    /// Sets the canary weight; effective from the next request once this returns. Weight 0
    /// drains the canary.
    fn set_weight(&self, weight: Weight) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Injects a rehearsal's fault; returns the router's answer.
    fn add_fault(
        &self,
        fault: &FaultRequest,
    ) -> impl Future<Output = Result<String, SourceError>> + Send;

    /// Removes every injected fault.
    fn clear_faults(&self) -> impl Future<Output = Result<(), SourceError>> + Send;
}

/// One Ramp proxy through its admin API (the weight and the deployment come from its
/// `/snapshot`, as the metrics do).
impl Router for ProxyAdmin {
    fn location(&self) -> &str {
        self.url()
    }

    async fn deployment(&self) -> Result<Option<String>, SourceError> {
        Ok(ProxyAdmin::read(self).await?.deployment_id)
    }

    async fn weight(&self) -> Result<u32, SourceError> {
        Ok(ProxyAdmin::read(self).await?.canary_bp)
    }

    async fn set_weight(&self, weight: Weight) -> Result<(), SourceError> {
        ProxyAdmin::set_weight(self, weight).await
    }

    async fn add_fault(&self, fault: &FaultRequest) -> Result<String, SourceError> {
        ProxyAdmin::add_fault(self, fault).await
    }

    async fn clear_faults(&self) -> Result<(), SourceError> {
        ProxyAdmin::clear_faults(self).await
    }
}
