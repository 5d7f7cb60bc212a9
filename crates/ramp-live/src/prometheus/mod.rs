//! Prometheus as a live run's metrics source (`[metrics] source = "prometheus"`), and the
//! evaluation of query gates.
//!
//! - [`client`]: the bounded HTTP client of the instant-query API, and [`PromClient::scalar`]
//!   for a query gate's one number;
//! - [`parse`]: the API's answers, hostile input bounded in size and series;
//! - [`templates`]: the plan's query templates rendered per cohort (`ramp_core::promql`);
//! - [`histogram`]: `_bucket` series as the engine's coarse latency buckets;
//! - [`series`]: each series' last value, and the epoch that turns resets and churn into
//!   gaps;
//! - [`source`]: [`PrometheusSource`], the [`crate::seams::MetricsSource`].
//!
//! What is detected: a series that goes down between two readings of one controller process
//! (a pod restarted: its counters began again), a failure series that disappears, and any
//! change of the set of request or bucket series (a pod came or went, a scrape failed and its
//! series went stale, the bucket layout changed). Each gives the reading a new epoch, so the
//! driver makes that interval a gap. What is not: a controller restart begins with no
//! memory, so a series that reset while the controller was down is seen only if the sum went
//! down or the set changed (or resets were seen before the restart, which changes the
//! epoch); and a pod that restarts and serves more than it had counted between two scrapes
//! looks to Prometheus itself like a counter that went up.

pub mod client;
pub mod error;
pub mod histogram;
pub mod parse;
pub mod series;
pub mod source;
pub mod templates;

pub use client::PromClient;
pub use error::PromError;
pub use source::PrometheusSource;
