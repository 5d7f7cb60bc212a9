//! `ramp demo --metrics prometheus`: the same demo judged from a real Prometheus.
//!
//! The demo upstreams export their own metrics (a latency histogram, requests by code and a
//! checkout counter, labelled `version="stable"` or `"canary"`), as a real service does. This
//! starts a Prometheus server that scrapes them every second and points the demo's plan at
//! it: canary and stable are read with the default templates, Ramp's proxy only routes, and a
//! query gate judges the checkout success rate, a business metric the proxy cannot see. The
//! report's infrastructure impact samples three report queries before and during each stage.

use ramp_core::plan::{MetricsSource, Plan, PrometheusSource, QueryGate, ReportQuery};
use ramp_core::Span;
use ramp_demo::{Prometheus, ScrapeJob};
use std::net::SocketAddr;

/// The query gate the demo adds: the canary's checkout success rate over 10 s, at least 95 %
/// (the demo's upstream fails a checkout only with its 0.2 % of 500s), three evaluations in a
/// row before it fails.
const CHECKOUT_SUCCESS: &str = r#"sum(rate(demo_checkouts_total{version="canary",outcome="success"}[10s])) / sum(rate(demo_checkouts_total{version="canary"}[10s]))"#;

/// The report queries the demo adds: the requests both upstreams serve, the canary's share of
/// them (a ratio shown as a percentage with `scale = 100`, which follows each stage's weight),
/// and the database connections of a service that has no database: the demo upstreams export
/// no such series, so its row shows how a query without data appears in the report (every
/// sample missing and counted, no number invented).
fn report_queries() -> Vec<ReportQuery> {
    let query = |name: &str, query: &str, unit: &str, scale: f64| ReportQuery {
        name: name.into(),
        query: query.into(),
        unit: Some(unit.into()),
        scale,
    };
    vec![
        query(
            "Requests",
            "sum(rate(http_request_duration_seconds_count[5s]))",
            "req/s",
            1.0,
        ),
        query(
            "Canary share",
            r#"sum(rate(http_request_duration_seconds_count{version="canary"}[5s])) / sum(rate(http_request_duration_seconds_count[5s]))"#,
            "%",
            100.0,
        ),
        query(
            "DB connections",
            "sum(demo_db_connections)",
            "connections",
            1.0,
        ),
    ]
}

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
    plan.report_queries = report_queries();
    Ok(prometheus)
}
