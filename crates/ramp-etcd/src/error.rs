//! Errors talking to etcd, each with the endpoint or key it concerns and its source.

/// An etcd operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered within the dial timeout.
    #[error("cannot reach etcd at {endpoints}: {source}")]
    Connect {
        /// The endpoints tried, comma-separated.
        endpoints: String,
        /// What the client said.
        #[source]
        source: etcd_client::Error,
    },
    /// A request did not complete within the request timeout.
    #[error("etcd did not answer {what} within {timeout_ms} ms")]
    Timeout {
        /// What was asked (a sentence fragment naming the key).
        what: String,
        /// The request timeout.
        timeout_ms: u64,
    },
    /// A request failed.
    #[error("etcd refused {what}: {source}")]
    Request {
        /// What was asked (a sentence fragment naming the key).
        what: String,
        /// What the client said.
        #[source]
        source: etcd_client::Error,
    },
    /// A value under Ramp's prefix is not what Ramp writes there.
    #[error("etcd key {key} holds a value Ramp cannot read: {source}")]
    Corrupt {
        /// The key.
        key: String,
        /// Why it cannot be read.
        #[source]
        source: serde_json::Error,
    },
}
