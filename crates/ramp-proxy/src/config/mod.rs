//! Proxy configuration: a TOML file (and the command-line options laid over it), validated
//! into typed values.
//!
//! Unknown keys are errors, and every problem names the file, the line and column of the
//! value when the file holds it, and what was expected, so that a typo never silently
//! changes routing. Like plans and flags files, a configuration is read in two stages and
//! every problem is reported at once, so that they are fixed in one pass:
//!
//! - `parse` (stage one): the text parsed into the raw structs of `raw`, every unknown key
//!   and value of the wrong type reported (and set aside), and an index of where each value
//!   was written; a syntax error stops here, alone;
//! - `overlay`: the command-line options laid over the file's values (`ramp proxy`);
//! - `validate` and `flag_mode` (stage two): every value checked, every problem collected,
//!   and the [`Config`] built only when there are none;
//! - `error`: the problems ([`ConfigError`]) and the report of one load ([`ConfigErrors`]).
//!
//! Lines and columns come from the rule every TOML file of Ramp shares,
//! `ramp_flags::located`.

mod error;
mod etcd;
mod flag_mode;
mod overlay;
mod parse;
mod raw;
#[cfg(test)]
mod tests;
mod validate;

pub use error::{ConfigError, ConfigErrors, Origin};
pub use parse::parse_toml;
pub(crate) use parse::ConfigFile;
pub use raw::{EtcdFile, FileConfig, FlagFile, HealthFile, LimitsFile, StickyFile, TimeoutsFile};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The protocol spoken to upstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 with keep-alive pools; upgrades (WebSocket) pass through.
    Http1,
    /// Cleartext HTTP/2 with prior knowledge; requests are multiplexed on few connections,
    /// and upgrades are not forwarded (HTTP/2 has no `Upgrade`).
    H2c,
}

/// What to do when every member of the chosen pool is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnhealthyPolicy {
    /// Route the request to the other cohort's pool (counted as rerouted).
    Fallback,
    /// Answer 503 (counted as an internal `no_healthy_upstream` error).
    Fail,
}

impl UnhealthyPolicy {
    /// The configuration and metrics name.
    pub fn as_str(self) -> &'static str {
        match self {
            UnhealthyPolicy::Fallback => "fallback",
            UnhealthyPolicy::Fail => "fail",
        }
    }
}

/// Validated health-check settings.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// Path requested on each upstream.
    pub path: String,
    /// Time between checks.
    pub interval: Duration,
    /// Deadline of one check.
    pub timeout: Duration,
    /// Failures to mark down.
    pub fall: u32,
    /// Successes to mark up.
    pub rise: u32,
}

/// Where the sticky key comes from, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickySource {
    /// A request header (lower-cased).
    Header(String),
    /// A cookie name.
    Cookie(String),
}

/// How the proxy splits traffic.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Two versions: `stable` and `canary` pools, split by the weight.
    Versions,
    /// One version with a feature flag: one pool serves everyone, and the cohort of each
    /// request is the side of the flag's rollout its user is on.
    Flag(FlagRollout),
}

/// Flag mode's settings, validated.
#[derive(Debug, Clone)]
pub struct FlagRollout {
    /// The one pool, serving both cohorts.
    pub upstream: Vec<SocketAddr>,
    /// The flag's key (for operators and the snapshot).
    pub key: String,
    /// The bucketing salt: the flag's `salt`, or its key. It must equal the flag's, or the
    /// proxy's cohorts and the flag's variants disagree.
    pub salt: String,
    /// The window and exact cap of the distinct-user counts.
    pub stats: ramp_flags::distinct::WindowConfig,
}

/// The slots the distinct-user window moves by (10 s steps for the default 5 minutes), as
/// the flags server's `/stats` does.
pub const STATS_SLOTS: u32 = 30;

/// The deployment id of a proxy whose configuration names none: the sticky salt it uses, and
/// what a controller recognises as "not bound to a deployment" (it may drive such a proxy,
/// with a warning, but refuses one that names another deployment).
pub const DEFAULT_DEPLOYMENT_ID: &str = "ramp";

/// The validated configuration the proxy runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Client listener address.
    pub listen: SocketAddr,
    /// Admin listener address.
    pub admin_listen: SocketAddr,
    /// Admin bearer token, if any.
    pub admin_token: Option<String>,
    /// Deployment id (sticky salt).
    pub deployment_id: String,
    /// Weight persistence file.
    pub state_file: Option<PathBuf>,
    /// Canary weight in basis points used without a state file.
    pub initial_canary_bp: u32,
    /// Stable pool (empty in flag mode, whose one pool is in [`FlagRollout::upstream`]).
    pub stable: Vec<SocketAddr>,
    /// Canary pool (empty in flag mode).
    pub canary: Vec<SocketAddr>,
    /// Sticky key source; `None` is per-request split. Flag mode always has one: it is where
    /// the flag's targeting key travels.
    pub sticky: Option<StickySource>,
    /// Two versions, or one version with a flag.
    pub mode: Mode,
    /// Client header deadline.
    pub header_read_timeout: Duration,
    /// Upstream connect deadline.
    pub upstream_connect_timeout: Duration,
    /// Upstream response-head deadline.
    pub upstream_response_timeout: Duration,
    /// Upstream body idle deadline.
    pub upstream_body_idle_timeout: Duration,
    /// Client request-body idle deadline: the longest the proxy waits for the next piece of
    /// a request body before it answers 408 (charged to the client, never to a cohort).
    pub client_body_idle_timeout: Duration,
    /// Graceful drain deadline.
    pub drain_timeout: Duration,
    /// Pooled connection idle lifetime.
    pub upstream_idle_timeout: Duration,
    /// Request head size limit in bytes.
    pub max_header_bytes: usize,
    /// Request header count limit.
    pub max_headers: usize,
    /// Idle pooled connections per upstream address.
    pub max_idle_per_upstream: usize,
    /// Client connections served at once.
    pub max_connections: usize,
    /// Active health checks; `None` means every address is assumed healthy.
    pub health: Option<HealthConfig>,
    /// Policy for a pool with no healthy member.
    pub unhealthy_policy: UnhealthyPolicy,
    /// Protocol to upstreams.
    pub upstream_protocol: UpstreamProtocol,
    /// The etcd cluster whose weight key the proxy follows (`crate::follow`), when it does.
    pub etcd: Option<EtcdFollow>,
}

/// `[etcd]`, validated: where the weight the proxy follows lives. The key is
/// `ramp_etcd::Keys::new(prefix, deployment_id).weight()`, the one the controllers write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdFollow {
    /// Client URLs of the cluster's members.
    pub endpoints: Vec<String>,
    /// The key prefix, starting with `/`.
    pub prefix: String,
}

impl Config {
    /// A configuration for tests and embedding: per-request split, given pools, loopback
    /// listeners on port 0, default limits.
    pub fn for_pools(stable: &[SocketAddr], canary: &[SocketAddr]) -> Result<Config, ConfigErrors> {
        let file = FileConfig {
            stable: Some(stable.iter().map(|a| a.to_string()).collect()),
            canary: Some(canary.iter().map(|a| a.to_string()).collect()),
            ..FileConfig::default()
        };
        Config::from_file(file, "built-in")
    }

    /// Reads and validates a TOML file, reporting every problem at once.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        ConfigFile::read(path)?.validate()
    }

    /// Validates values that no file holds (built in code); `origin` names them in errors,
    /// which therefore have no line and column.
    pub fn from_file(file: FileConfig, origin: &str) -> Result<Config, ConfigErrors> {
        ConfigFile::from_raw(file, origin).validate()
    }
}

/// Converts a percentage (0..=100, up to two decimals kept) to basis points.
pub fn percent_to_bp(percent: f64) -> Option<u32> {
    if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
        return None;
    }
    Some((percent * 100.0).round() as u32)
}

/// Converts basis points back to a percentage for display.
pub fn bp_to_percent(bp: u32) -> f64 {
    f64::from(bp) / 100.0
}
