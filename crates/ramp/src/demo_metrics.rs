//! `ramp demo --metrics prometheus`: the same demo judged from a real Prometheus.
//!
//! The demo upstreams export their own metrics (a latency histogram, requests by code and a
//! checkout counter, labelled `version="stable"` or `"canary"`), as a real service does. This
//! starts a Prometheus server that scrapes them every second and points the demo's plan at
//! it: canary and stable are read with the default templates, Ramp's proxy only routes, and a
//! query gate judges the checkout success rate, a business metric the proxy cannot see.

use ramp_core::plan::{MetricsSource, Plan, PrometheusSource, QueryGate};
use ramp_core::Span;
use ramp_demo::{Prometheus, ScrapeJob};
use std::net::SocketAddr;

/// The query gate the demo adds: the canary's checkout success rate over 10 s, at least 95 %
/// (the demo's upstream fails a checkout only with its 0.2 % of 500s), three evaluations in a
/// row before it fails.
const CHECKOUT_SUCCESS: &str = r#"sum(rate(demo_checkouts_total{version="canary",outcome="success"}[10s])) / sum(rate(demo_checkouts_total{version="canary"}[10s]))"#;

/// Starts Prometheus scraping `upstreams` and makes `plan` read it.
pub async fn judge_from_prometheus(
    plan: &mut Plan,
    upstreams: &[SocketAddr],
) -> anyhow::Result<Prometheus> {
    let prometheus = Prometheus::start(&[ScrapeJob::new("demo-upstreams", upstreams)]).await?;
    plan.metrics = MetricsSource::Prometheus;
    plan.prometheus = Some(PrometheusSource::with_defaults(prometheus.url()));
    plan.queries.push(QueryGate {
        name: "checkout_success".into(),
        query: CHECKOUT_SUCCESS.into(),
        max: None,
        min: Some(0.95),
        warn: Some(0.98),
        interval: Span(1_000),
        consecutive: 3,
    });
    Ok(prometheus)
}
