//! The configuration file as written: the raw serde structs that mirror the TOML, before
//! validation.
//!
//! Every struct denies unknown keys, and every value is optional (a default applies), so
//! deserializing can fail only on an unknown key or a value of the wrong type; stage one
//! (`parse`) reports each of those and sets it aside, and stage two (`validate`) checks the
//! values. The command-line options are laid over these structs (`overlay`), and tests and
//! embedders build them directly, which is why they are public and hold plain values.

use serde::Deserialize;
use std::path::PathBuf;

/// The configuration file as written, before validation.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address the proxy listens on for client traffic, e.g. "0.0.0.0:8080".
    pub listen: Option<String>,
    /// Address of the admin API; loopback unless a token is set.
    pub admin_listen: Option<String>,
    /// File holding the admin bearer token (kept out of the config and the command line).
    pub admin_token_file: Option<PathBuf>,
    /// Deployment id: the salt of sticky bucketing and a label for operators.
    pub deployment_id: Option<String>,
    /// Where the last weights are persisted; absent means weights do not survive a restart.
    pub state_file: Option<PathBuf>,
    /// Canary weight in percent used when no state file exists yet.
    pub initial_canary_weight: Option<f64>,
    /// Stable pool addresses ("host:port", IP literals).
    pub stable: Option<Vec<String>>,
    /// Canary pool addresses.
    pub canary: Option<Vec<String>>,
    /// Sticky routing; absent means per-request split.
    pub sticky: Option<StickyFile>,
    /// Time limits.
    #[serde(default)]
    pub timeouts: TimeoutsFile,
    /// Size limits.
    #[serde(default)]
    pub limits: LimitsFile,
    /// Active health checking.
    pub health: Option<HealthFile>,
    /// How to speak to upstreams: "http1" (default) or "h2c" (HTTP/2 prior knowledge).
    pub upstream_protocol: Option<String>,
    /// "versions" (default): two pools, `stable` and `canary`, one per version. "flag": the
    /// application is one version with a feature flag; one pool (`upstream`) serves every
    /// request, and each request is tagged with the cohort the flag puts its user in.
    pub mode: Option<String>,
    /// The one pool of flag mode ("host:port", IP literals).
    pub upstream: Option<Vec<String>>,
    /// `[flag]`: the flag whose rollout flag mode mirrors.
    pub flag: Option<FlagFile>,
    /// `[etcd]`: follow the deployment's weight key in etcd instead of waiting for
    /// `PUT /weights` alone.
    pub etcd: Option<EtcdFile>,
}

/// `[etcd]`: where the weight the proxy follows lives (see docs/proxy.md, "Following etcd").
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct EtcdFile {
    /// Client URLs of the cluster's members, `http://host:port` or `https://host:port`.
    pub endpoints: Option<Vec<String>>,
    /// The key prefix Ramp's keys live under (default `/ramp`), as the controllers use it.
    pub prefix: Option<String>,
}

/// `[flag]`: which flag's bucketing tags the cohorts in flag mode, and how distinct users
/// are counted.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FlagFile {
    /// The flag's key, as in the flags file: it is the bucketing salt unless `salt` is set.
    pub key: Option<String>,
    /// The flag's `salt`, when the flags file sets one (the same value, or users land in
    /// different cohorts than the flag puts them in).
    pub salt: Option<String>,
    /// Seconds over which distinct users per cohort are counted (default 300).
    pub stats_window_s: Option<u64>,
    /// Distinct live users counted exactly before a HyperLogLog estimates them (default
    /// 100 000).
    pub stats_exact_cap: Option<usize>,
}

/// `[sticky]`: exactly one of `header` or `cookie`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct StickyFile {
    /// Request header holding the user key, e.g. "x-user-id".
    pub header: Option<String>,
    /// Cookie holding the user key.
    pub cookie: Option<String>,
}

/// `[timeouts]`, all in milliseconds.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsFile {
    /// Time a client has to send complete request headers.
    pub header_read_ms: Option<u64>,
    /// Time to establish an upstream connection.
    pub upstream_connect_ms: Option<u64>,
    /// Time for an upstream to send response headers.
    pub upstream_response_ms: Option<u64>,
    /// Longest pause allowed inside an upstream response body.
    pub upstream_body_idle_ms: Option<u64>,
    /// Longest pause allowed inside a client's request body; a client that sends nothing of
    /// its body for longer is answered 408 and charged, never its cohort.
    pub client_body_idle_ms: Option<u64>,
    /// How long graceful shutdown waits for in-flight requests.
    pub drain_ms: Option<u64>,
    /// How long idle upstream connections stay pooled.
    pub upstream_idle_ms: Option<u64>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Largest request head (line + headers) in bytes; larger gets 431. At least 8192.
    pub max_header_bytes: Option<usize>,
    /// Largest number of request headers.
    pub max_headers: Option<usize>,
    /// Most idle pooled connections kept per upstream address.
    pub max_idle_per_upstream: Option<usize>,
    /// Most client connections served at once; further clients wait in the listen backlog.
    pub max_connections: Option<usize>,
}

/// `[health]`: active checks.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct HealthFile {
    /// Path requested on each upstream, e.g. "/healthz"; 2xx and 3xx are healthy.
    pub path: Option<String>,
    /// Time between checks of one address.
    pub interval_ms: Option<u64>,
    /// Time a check may take.
    pub timeout_ms: Option<u64>,
    /// Consecutive failures that mark an address down.
    pub fall: Option<u32>,
    /// Consecutive successes that mark it up again.
    pub rise: Option<u32>,
    /// "fallback" (send to the other pool) or "fail" (answer 503) when a whole pool is down.
    pub unhealthy_pool: Option<String>,
}
