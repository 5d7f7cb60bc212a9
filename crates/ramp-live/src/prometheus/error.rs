//! Why a Prometheus query gave no usable answer.

use std::time::Duration;
use thiserror::Error;

/// Why one query gave no usable answer. Every variant names the query (as sent, rendered),
/// so an operator sees which template to fix; none holds the bearer token.
#[derive(Debug, Clone, Error)]
pub enum PromError {
    /// The server's URL or the token cannot be used at all.
    #[error("Prometheus at {url}: {message}")]
    Config {
        /// The URL given.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// No connection, or the exchange broke off.
    #[error("Prometheus query `{query}`: unreachable: {message}")]
    Unreachable {
        /// The query.
        query: String,
        /// The transport's description.
        message: String,
    },
    /// No complete answer within the plan's `timeout` (connection included).
    #[error("Prometheus query `{query}`: no answer within {timeout:?}")]
    Timeout {
        /// The query.
        query: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The server refused the query as malformed (`errorType` `bad_data`, HTTP 400): a
    /// syntax or semantic error of the query, which no retry fixes; a run refuses to start
    /// on it.
    #[error("Prometheus query `{query}` is not valid PromQL: {error}")]
    BadData {
        /// The query.
        query: String,
        /// The server's `error` text.
        error: String,
    },
    /// Any other error answer (execution error, the server's own timeout, an authorizing
    /// proxy in front of it refusing the token).
    #[error("Prometheus query `{query}`: HTTP {status} {error_type}: {error}")]
    Api {
        /// The query.
        query: String,
        /// The HTTP status.
        status: u16,
        /// The API's `errorType`, empty when the body was not the API's error document.
        error_type: String,
        /// The API's `error`, or the start of the body.
        error: String,
    },
    /// The answer was not the API's JSON document.
    #[error("Prometheus query `{query}`: unexpected answer: {message}")]
    Document {
        /// The query.
        query: String,
        /// The parser's description.
        message: String,
    },
    /// The result was a range vector or a string: the template does not select samples.
    #[error("Prometheus query `{query}` returned a {found}, not an instant vector or a scalar")]
    NotVector {
        /// The query.
        query: String,
        /// The result type received.
        found: String,
    },
    /// More series than Ramp reads from one query.
    #[error("Prometheus query `{query}` returned {count} series, more than the {max} read from one query")]
    TooManySeries {
        /// The query.
        query: String,
        /// The series received.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// No series where data is required: the metric is not exported (yet), or the selector
    /// matches nothing. No data is never a pass.
    #[error("Prometheus query `{query}` returned no series (no data)")]
    Empty {
        /// The query.
        query: String,
    },
    /// Several series where one number was expected (a query gate's expression).
    #[error("Prometheus query `{query}` returned {count} series where one number was expected: aggregate it (sum, max, …)")]
    Several {
        /// The query.
        query: String,
        /// The series received.
        count: usize,
    },
    /// A value that cannot be used: NaN or infinite anywhere, negative or beyond 2^53 for a
    /// counter.
    #[error("Prometheus query `{query}`: series {series} has the value {value}, {why}")]
    BadValue {
        /// The query.
        query: String,
        /// The series' labels.
        series: String,
        /// The value as received.
        value: String,
        /// Why it cannot be used.
        why: &'static str,
    },
    /// The latency buckets do not form a histogram (no `+Inf` bucket, an `le` that is not a
    /// number, counts that decrease with `le`).
    #[error("Prometheus query `{query}`: the buckets are not a histogram: {message}")]
    Histogram {
        /// The query.
        query: String,
        /// What is wrong.
        message: String,
    },
}

impl PromError {
    /// Whether the query itself is wrong (`bad_data`), as opposed to the server or the data:
    /// the driver stops before any weight moves instead of retrying.
    pub fn is_bad_query(&self) -> bool {
        matches!(self, PromError::BadData { .. })
    }
}
