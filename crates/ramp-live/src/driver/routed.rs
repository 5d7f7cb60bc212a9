//! The run with a router other than a Ramp proxy: each kind with the metrics sources it can
//! be judged on, handed to the same `run_with` as the proxy's.
//!
//! HAProxy's own counters (`[metrics] source = "proxy"` or `"router"`) or Prometheus; a
//! command router only Prometheus, since it has no counters of its own.

use super::start::{run_with, Observation, Opened};
use super::{LiveError, ProgressSink, RunConfig, RunEnd};
use crate::exposition::{Instrumented, SourceKind};
use crate::prometheus::PrometheusSource;
use crate::routers::LiveRouter;
use crate::seams::{JournalStore, Router};
use std::future::Future;
use std::sync::Arc;

/// Runs the plan through `router`, read from `prometheus` when the plan's source is
/// Prometheus, otherwise from the router's own counters when it has any.
pub(super) async fn run_routed<J: JournalStore>(
    router: LiveRouter,
    prometheus: Option<PrometheusSource>,
    config: RunConfig,
    opened: Opened<J>,
    on: ProgressSink<'_>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<RunEnd, LiveError> {
    let Opened {
        journal,
        exposition,
        queries,
    } = opened;
    let metrics = Arc::clone(&exposition);
    macro_rules! go {
        ($source:expr, $kind:expr, $router:expr) => {{
            let observed = Observation {
                source: Instrumented::new($source, $kind, metrics),
                queries,
            };
            run_with(config, observed, $router, journal, exposition, on, shutdown).await
        }};
    }
    match (router, prometheus) {
        (LiveRouter::Proxy(proxy), None) => go!((*proxy).clone(), SourceKind::Proxy, *proxy),
        (LiveRouter::Proxy(proxy), Some(source)) => go!(source, SourceKind::Prometheus, *proxy),
        (LiveRouter::Fleet(fleet), None) => go!(fleet.clone(), SourceKind::Proxy, fleet),
        (LiveRouter::Fleet(fleet), Some(source)) => go!(source, SourceKind::Prometheus, fleet),
        (LiveRouter::Nginx(nginx), Some(source)) => go!(source, SourceKind::Prometheus, nginx),
        (LiveRouter::Nginx(nginx), None) => Err(LiveError::NoCounters {
            router: nginx.location().to_string(),
        }),
        // HAProxy's own counters.
        (LiveRouter::Haproxy(haproxy), None) => {
            go!(haproxy.stats(), SourceKind::Haproxy, haproxy)
        }
        (LiveRouter::Haproxy(haproxy), Some(source)) => {
            go!(source, SourceKind::Prometheus, haproxy)
        }
        (LiveRouter::Command(command), Some(source)) => {
            go!(source, SourceKind::Prometheus, command)
        }
        (LiveRouter::Command(command), None) => Err(LiveError::NoCounters {
            router: command.location().to_string(),
        }),
        // The following proxies' snapshots, summed as a fleet's.
        (LiveRouter::Etcd(etcd), None) => match etcd.fleet().cloned() {
            Some(fleet) => go!(fleet, SourceKind::Proxy, etcd),
            None => Err(LiveError::NoCounters {
                router: etcd.location().to_string(),
            }),
        },
        (LiveRouter::Etcd(etcd), Some(source)) => go!(source, SourceKind::Prometheus, etcd),
    }
}
