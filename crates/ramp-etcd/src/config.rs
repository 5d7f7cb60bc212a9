//! Where etcd is and how long to wait for it.

use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions};

use crate::EtcdError;

/// The shortest interval between the client's keep-alive pings: etcd's server closes a
/// connection that pings more often than its `--grpc-keepalive-min-time` (5 s by default),
/// which would cut every request on it, an election campaign included.
const KEEP_ALIVE_MIN: Duration = Duration::from_secs(5);

/// How to reach an etcd cluster. Every wait is bounded: a dial that takes longer than
/// `dial_timeout` and a request that takes longer than `request_timeout` fail, so a controller
/// or proxy never hangs on a cluster that lost quorum or a network that drops packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs of the cluster's members (`http://127.0.0.1:2379`); the client balances
    /// over them and moves on from one that is down.
    pub endpoints: Vec<String>,
    /// The key prefix everything of Ramp's lives under (`/ramp` by default), so one cluster
    /// can serve other users and several Ramp installations.
    pub prefix: String,
    /// How long to wait for a connection.
    pub dial_timeout: Duration,
    /// How long to wait for any one request.
    pub request_timeout: Duration,
    /// A user name and password, when the cluster has authentication enabled.
    pub user: Option<(String, String)>,
}

impl EtcdConfig {
    /// A configuration with Ramp's defaults (prefix `/ramp`, 5 s dial, 5 s per request, no
    /// authentication) for these endpoints.
    pub fn new(endpoints: Vec<String>) -> EtcdConfig {
        EtcdConfig {
            endpoints,
            prefix: "/ramp".to_string(),
            dial_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            user: None,
        }
    }

    /// The client's options: both timeouts, keep-alives that notice a dead connection within
    /// the request timeout, and the user when there is one.
    fn options(&self) -> ConnectOptions {
        self.options_waiting().with_timeout(self.request_timeout)
    }

    /// The same options without a per-request deadline, for a request that waits by design
    /// (an election campaign answers only once its candidate leads); the connection is still
    /// bounded by the dial timeout and its keep-alive pings.
    fn options_waiting(&self) -> ConnectOptions {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.dial_timeout)
            .with_keep_alive(
                self.request_timeout.max(KEEP_ALIVE_MIN),
                self.request_timeout,
            )
            // A member cut off from the others must not answer reads with stale data.
            .with_require_leader(true);
        if let Some((name, password)) = &self.user {
            options = options.with_user(name.clone(), password.clone());
        }
        options
    }
}

/// A client for requests that wait by design (an election campaign): no per-request
/// deadline, since a campaign cut off by one is withdrawn by etcd (its key deleted) and made
/// again at the back of the line. The caller bounds the wait itself (by the lease's loss).
/// Connecting (with a quorum read, so that the first campaign goes out at once) is bounded by
/// the dial timeout, as [`connect`]'s is.
pub async fn connect_waiting(config: &EtcdConfig) -> Result<Client, EtcdError> {
    dial(config, config.options_waiting()).await
}

/// Connects to the cluster and reads once (a count of the prefix's keys, which needs a
/// quorum), all within the dial timeout: the client connects lazily, so without the read an
/// unreachable or leaderless cluster would only show at the first write.
pub async fn connect(config: &EtcdConfig) -> Result<Client, EtcdError> {
    dial(config, config.options()).await
}

/// Connects with `options` and reads once, within the dial timeout.
async fn dial(config: &EtcdConfig, options: ConnectOptions) -> Result<Client, EtcdError> {
    let endpoints = config.endpoints.join(",");
    let dial = async {
        let mut client = Client::connect(&config.endpoints, Some(options)).await?;
        client
            .get(
                config.prefix.as_str(),
                Some(GetOptions::new().with_prefix().with_count_only()),
            )
            .await?;
        Ok::<Client, etcd_client::Error>(client)
    };
    match tokio::time::timeout(config.dial_timeout, dial).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(source)) => Err(EtcdError::Connect { endpoints, source }),
        Err(_) => Err(EtcdError::Timeout {
            what: format!("a connection to {endpoints}"),
            timeout_ms: u64::try_from(config.dial_timeout.as_millis()).unwrap_or(u64::MAX),
        }),
    }
}
