//! The run with a router other than a Ramp proxy: each kind with the metrics sources it can
//! be judged on, handed to the same `run_with` as the proxy's.
//!
//! HAProxy's own counters (`[metrics] source = "proxy"` or `"router"`) or Prometheus; a
//! command router only Prometheus, since it has no counters of its own.

use super::queries::QueryGates;
use super::start::{prometheus_source, run_with};
use super::{LiveError, ProgressSink, RunConfig, RunEnd};
use crate::exposition::{ControllerMetrics, Instrumented, SourceKind};
use crate::routers::LiveRouter;
use crate::seams::Router;
use ramp_core::plan::MetricsSource as PlanSource;
use ramp_store::Journal;
use std::future::Future;
use std::sync::Arc;

/// Runs the plan through `router`, which is not a Ramp proxy (`start::run` drives those).
pub(super) async fn run_routed(
    router: LiveRouter,
    config: RunConfig,
    journal: Journal,
    exposition: Arc<ControllerMetrics>,
    queries: Option<QueryGates>,
    on: ProgressSink<'_>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<RunEnd, LiveError> {
    let metrics = Arc::clone(&exposition);
    macro_rules! from_prometheus {
        ($router:expr) => {{
            let source = prometheus_source(&config).await?;
            let source = Instrumented::new(source, SourceKind::Prometheus, metrics);
            run_with(
                config, source, $router, journal, exposition, queries, on, shutdown,
            )
            .await
        }};
    }
    match (router, config.plan.metrics) {
        (LiveRouter::Proxy(proxy), _) => Err(LiveError::NoCounters {
            // `start::run` drives a Ramp proxy itself; this arm is never taken.
            router: proxy.location().to_string(),
        }),
        (LiveRouter::Haproxy(haproxy), PlanSource::Proxy) => {
            // HAProxy's own counters, shown as the router's ("proxy") source.
            let source = Instrumented::new(haproxy.stats(), SourceKind::Proxy, metrics);
            run_with(
                config, source, haproxy, journal, exposition, queries, on, shutdown,
            )
            .await
        }
        (LiveRouter::Haproxy(haproxy), PlanSource::Prometheus) => from_prometheus!(haproxy),
        (LiveRouter::Command(command), PlanSource::Prometheus) => from_prometheus!(command),
        (LiveRouter::Command(command), PlanSource::Proxy) => Err(LiveError::NoCounters {
            router: command.location().to_string(),
        }),
    }
}
