//! The crate's typed errors.

use std::net::SocketAddr;

/// Why a demo upstream or a load run could not start.
///
/// Every variant is about input the caller can fix; nothing here is raised after traffic
/// has started, because a running demo degrades (counts failures) rather than aborts.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The load target is not a loopback address. The demo refuses to send anything off
    /// this machine, so that a mistyped address cannot turn it into a load test against a
    /// real service.
    #[error(
        "refusing to send load to {target}: the demo only sends traffic to loopback addresses \
         (127.0.0.0/8 or ::1)"
    )]
    NonLoopbackTarget {
        /// The address that was refused, so the message can name it.
        target: SocketAddr,
    },
    /// A field of the load configuration is out of range.
    #[error("invalid load configuration: `{field}` {reason}")]
    InvalidLoadConfig {
        /// The offending field, named as in `LoadConfig` so the user can find it.
        field: &'static str,
        /// What is wrong with it, as a phrase completing "`field` ...".
        reason: String,
    },
    /// A parameter of an upstream behaviour is out of range.
    #[error("invalid upstream behaviour: `{field}` {reason}")]
    InvalidBehaviour {
        /// The offending parameter, named as in `Behaviour::new`.
        field: &'static str,
        /// What is wrong with it, as a phrase completing "`field` ...".
        reason: String,
    },
    /// The listener handed to `serve_upstream` cannot be used (it has no local address,
    /// which means the socket is broken).
    #[error("the upstream listener is unusable: {0}")]
    Listener(#[source] std::io::Error),
    /// A loopback listener of a [`crate::Stack`] could not be opened.
    #[error("cannot listen on loopback for the {what}: {source}")]
    Bind {
        /// Which listener ("proxy", "canary upstream"…).
        what: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The proxy of a [`crate::Stack`] could not be configured.
    #[error("demo proxy: {0}")]
    Proxy(String),
}
