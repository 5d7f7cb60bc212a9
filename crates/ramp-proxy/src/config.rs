//! Proxy configuration: a TOML file, validated into typed values.
//!
//! Unknown keys are errors, and every error names the file, the line and column when the
//! parser knows them, and what was expected, so that a typo never silently changes routing.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// A configuration that cannot be used; the binary prints it and exits with status 2.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file that was named.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file being parsed.
        path: PathBuf,
        /// 1-based line of the error (0 when the parser gave no position).
        line: usize,
        /// 1-based column of the error (0 when the parser gave no position).
        column: usize,
        /// The parser's description, which names the key and what was expected.
        message: String,
    },
    /// A value parsed but is not acceptable; `field` names the key.
    #[error("{origin}: `{field}`: {message}")]
    Invalid {
        /// The file, or "command line", the value came from.
        origin: String,
        /// The dotted key path of the offending value.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

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
}

impl Config {
    /// A configuration for tests and embedding: per-request split, given pools, loopback
    /// listeners on port 0, default limits.
    pub fn for_pools(stable: &[SocketAddr], canary: &[SocketAddr]) -> Result<Config, ConfigError> {
        let file = FileConfig {
            stable: Some(stable.iter().map(|a| a.to_string()).collect()),
            canary: Some(canary.iter().map(|a| a.to_string()).collect()),
            ..FileConfig::default()
        };
        Config::from_file(file, "built-in")
    }

    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file = parse_toml(path, &text)?;
        Config::from_file(file, &path.display().to_string())
    }

    /// Validates a parsed file; `origin` names it in errors.
    pub fn from_file(file: FileConfig, origin: &str) -> Result<Config, ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            origin: origin.to_string(),
            field: field.to_string(),
            message,
        };
        let addr = |field: &str, value: &str| -> Result<SocketAddr, ConfigError> {
            value.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    field,
                    format!("\"{value}\" is not an IP:port socket address"),
                )
            })
        };
        let listen = addr("listen", file.listen.as_deref().unwrap_or("127.0.0.1:0"))?;
        let admin_listen = addr(
            "admin_listen",
            file.admin_listen.as_deref().unwrap_or("127.0.0.1:0"),
        )?;
        let pool =
            |field: &str, values: &Option<Vec<String>>| -> Result<Vec<SocketAddr>, ConfigError> {
                let values = values.as_ref().filter(|v| !v.is_empty()).ok_or_else(|| {
                    invalid(field, "at least one upstream address is required".into())
                })?;
                if values.len() > 1024 {
                    return Err(invalid(field, "at most 1024 addresses".into()));
                }
                values.iter().map(|v| addr(field, v)).collect()
            };
        let flag_mode = match file.mode.as_deref().unwrap_or("versions") {
            "versions" => false,
            "flag" => true,
            other => {
                return Err(invalid(
                    "mode",
                    format!("\"{other}\" is not one of \"versions\", \"flag\""),
                ))
            }
        };
        let (stable, canary) = if flag_mode {
            for (field, given) in [("stable", &file.stable), ("canary", &file.canary)] {
                if given.is_some() {
                    return Err(invalid(
                        field,
                        "not used with mode = \"flag\": one pool serves every user; list it in `upstream`".into(),
                    ));
                }
            }
            (Vec::new(), Vec::new())
        } else {
            for (field, given) in [
                ("upstream", file.upstream.is_some()),
                ("flag", file.flag.is_some()),
            ] {
                if given {
                    return Err(invalid(
                        field,
                        "only used with mode = \"flag\" (one version with a feature flag); two versions use `stable` and `canary`".into(),
                    ));
                }
            }
            (pool("stable", &file.stable)?, pool("canary", &file.canary)?)
        };
        let initial_canary_bp = match file.initial_canary_weight {
            None => 0,
            Some(w) => percent_to_bp(w).ok_or_else(|| {
                invalid(
                    "initial_canary_weight",
                    format!("{w} is not a percentage between 0 and 100"),
                )
            })?,
        };
        let admin_token = match &file.admin_token_file {
            None => None,
            Some(path) => {
                let token = std::fs::read_to_string(path)
                    .map_err(|e| {
                        invalid(
                            "admin_token_file",
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })?
                    .trim()
                    .to_string();
                if token.len() < 16 {
                    return Err(invalid(
                        "admin_token_file",
                        "the token must be at least 16 characters".into(),
                    ));
                }
                Some(token)
            }
        };
        if !admin_listen.ip().is_loopback() && admin_token.is_none() {
            return Err(invalid(
                "admin_listen",
                format!(
                    "{admin_listen} is not a loopback address, so `admin_token_file` is required"
                ),
            ));
        }
        let sticky = match &file.sticky {
            None => None,
            Some(StickyFile {
                header: Some(h),
                cookie: None,
            }) => {
                http::HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                    invalid(
                        "sticky.header",
                        format!("\"{h}\" is not a valid header name"),
                    )
                })?;
                Some(StickySource::Header(h.to_ascii_lowercase()))
            }
            Some(StickyFile {
                header: None,
                cookie: Some(c),
            }) if !c.is_empty() && !c.contains([';', '=', ' ']) => {
                Some(StickySource::Cookie(c.clone()))
            }
            Some(StickyFile {
                header: None,
                cookie: Some(c),
            }) => {
                return Err(invalid(
                    "sticky.cookie",
                    format!("\"{c}\" is not a valid cookie name"),
                ))
            }
            Some(_) => {
                return Err(invalid(
                    "sticky",
                    "set exactly one of `header` or `cookie`".into(),
                ))
            }
        };
        let mode = if flag_mode {
            if sticky.is_none() {
                return Err(invalid(
                    "sticky",
                    "mode = \"flag\" needs `[sticky]` with the `header` or `cookie` that carries the user's key (the flag's targeting key)".into(),
                ));
            }
            let f = file.flag.clone().ok_or_else(|| {
                invalid(
                    "flag",
                    "mode = \"flag\" needs a `[flag]` table with the flag's `key`".into(),
                )
            })?;
            let key = f
                .key
                .ok_or_else(|| invalid("flag.key", "the flag's key is required".into()))?;
            if !ramp_flags::flags::raw::valid_flag_key(&key) {
                return Err(invalid(
                    "flag.key",
                    format!(
                        "\"{key}\" is not a flag key: use 1 to {} ASCII letters, digits, `_`, `-` or `.`",
                        ramp_flags::flags::raw::MAX_NAME_CHARS
                    ),
                ));
            }
            let salt = match f.salt {
                None => key.clone(),
                Some(salt)
                    if !salt.is_empty()
                        && salt.chars().count() <= ramp_flags::flags::raw::MAX_SALT_CHARS =>
                {
                    salt
                }
                Some(_) => {
                    return Err(invalid(
                        "flag.salt",
                        format!(
                        "expected a non-empty string of at most {} characters (the flag's `salt`)",
                        ramp_flags::flags::raw::MAX_SALT_CHARS
                    ),
                    ))
                }
            };
            let window_s = f.stats_window_s.unwrap_or(300);
            if !(3..=86_400).contains(&window_s) {
                return Err(invalid(
                    "flag.stats_window_s",
                    format!("{window_s} is out of range (3 to 86400 seconds)"),
                ));
            }
            let cap = f.stats_exact_cap.unwrap_or(100_000);
            let stats = ramp_flags::distinct::WindowConfig::new(
                Duration::from_secs(window_s),
                STATS_SLOTS,
                cap,
            )
            .map_err(|e| invalid("flag.stats_exact_cap", e.to_string()))?;
            Mode::Flag(FlagRollout {
                upstream: pool("upstream", &file.upstream)?,
                key,
                salt,
                stats,
            })
        } else {
            Mode::Versions
        };
        let ms = |field: &str, v: Option<u64>, default: u64| -> Result<Duration, ConfigError> {
            let v = v.unwrap_or(default);
            if v == 0 || v > 24 * 3600 * 1000 {
                return Err(invalid(
                    field,
                    format!("{v} ms is out of range (1 ms to 24 h)"),
                ));
            }
            Ok(Duration::from_millis(v))
        };
        let t = &file.timeouts;
        let max_header_bytes = file.limits.max_header_bytes.unwrap_or(16 * 1024);
        if !(8192..=1024 * 1024).contains(&max_header_bytes) {
            return Err(invalid(
                "limits.max_header_bytes",
                format!("{max_header_bytes} is out of range (8192 to 1048576)"),
            ));
        }
        let max_headers = file.limits.max_headers.unwrap_or(100);
        if !(1..=1000).contains(&max_headers) {
            return Err(invalid(
                "limits.max_headers",
                format!("{max_headers} is out of range (1 to 1000)"),
            ));
        }
        let max_connections = file.limits.max_connections.unwrap_or(10_000);
        if !(1..=1_000_000).contains(&max_connections) {
            return Err(invalid(
                "limits.max_connections",
                format!("{max_connections} is out of range (1 to 1000000)"),
            ));
        }
        let (health, unhealthy_policy) = match &file.health {
            None => (None, UnhealthyPolicy::Fallback),
            Some(h) => {
                let path = h.path.clone().unwrap_or_else(|| "/".into());
                if !path.starts_with('/') || path.parse::<http::uri::PathAndQuery>().is_err() {
                    return Err(invalid(
                        "health.path",
                        format!("\"{path}\" is not an absolute request path"),
                    ));
                }
                let policy = match h.unhealthy_pool.as_deref().unwrap_or("fallback") {
                    "fallback" => UnhealthyPolicy::Fallback,
                    "fail" => UnhealthyPolicy::Fail,
                    other => {
                        return Err(invalid(
                            "health.unhealthy_pool",
                            format!("\"{other}\" is not one of \"fallback\", \"fail\""),
                        ))
                    }
                };
                let count = |field: &str, v: Option<u32>| -> Result<u32, ConfigError> {
                    match v.unwrap_or(2) {
                        n @ 1..=100 => Ok(n),
                        n => Err(invalid(field, format!("{n} is out of range (1 to 100)"))),
                    }
                };
                let cfg = HealthConfig {
                    path,
                    interval: ms("health.interval_ms", h.interval_ms, 2_000)?,
                    timeout: ms("health.timeout_ms", h.timeout_ms, 1_000)?,
                    fall: count("health.fall", h.fall)?,
                    rise: count("health.rise", h.rise)?,
                };
                (Some(cfg), policy)
            }
        };
        let upstream_protocol = match file.upstream_protocol.as_deref().unwrap_or("http1") {
            "http1" => UpstreamProtocol::Http1,
            "h2c" => UpstreamProtocol::H2c,
            other => {
                return Err(invalid(
                    "upstream_protocol",
                    format!("\"{other}\" is not one of \"http1\", \"h2c\""),
                ))
            }
        };
        Ok(Config {
            upstream_protocol,
            listen,
            admin_listen,
            admin_token,
            deployment_id: file
                .deployment_id
                .clone()
                .unwrap_or_else(|| DEFAULT_DEPLOYMENT_ID.into()),
            state_file: file.state_file.clone(),
            initial_canary_bp,
            stable,
            canary,
            sticky,
            mode,
            header_read_timeout: ms("timeouts.header_read_ms", t.header_read_ms, 10_000)?,
            upstream_connect_timeout: ms(
                "timeouts.upstream_connect_ms",
                t.upstream_connect_ms,
                2_000,
            )?,
            upstream_response_timeout: ms(
                "timeouts.upstream_response_ms",
                t.upstream_response_ms,
                30_000,
            )?,
            upstream_body_idle_timeout: ms(
                "timeouts.upstream_body_idle_ms",
                t.upstream_body_idle_ms,
                30_000,
            )?,
            drain_timeout: ms("timeouts.drain_ms", t.drain_ms, 30_000)?,
            upstream_idle_timeout: ms("timeouts.upstream_idle_ms", t.upstream_idle_ms, 60_000)?,
            max_header_bytes,
            max_headers,
            max_idle_per_upstream: file.limits.max_idle_per_upstream.unwrap_or(256),
            max_connections,
            health,
            unhealthy_policy,
        })
    }
}

/// Parses TOML text, turning the parser's byte span into a line and column.
pub fn parse_toml(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str::<FileConfig>(text).map_err(|e| {
        let (line, column) = match e.span() {
            Some(span) => line_col(text, span.start),
            None => (0, 0),
        };
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().to_string(),
        }
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_reported_with_line_and_column() {
        let text = "stable = [\"127.0.0.1:1\"]\ncanary = [\"127.0.0.1:2\"]\nlisten_port = 5\n";
        match parse_toml(Path::new("p.toml"), text) {
            Err(ConfigError::Parse {
                line,
                column,
                message,
                ..
            }) => {
                assert_eq!((line, column), (3, 1));
                assert!(message.contains("listen_port"), "{message}");
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn non_loopback_admin_needs_a_token() {
        let file = FileConfig {
            stable: Some(vec!["127.0.0.1:1".into()]),
            canary: Some(vec!["127.0.0.1:2".into()]),
            admin_listen: Some("0.0.0.0:9901".into()),
            ..FileConfig::default()
        };
        let err = Config::from_file(file, "x.toml").unwrap_err().to_string();
        assert!(
            err.contains("admin_listen") && err.contains("admin_token_file"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let base = || FileConfig {
            stable: Some(vec!["127.0.0.1:1".into()]),
            canary: Some(vec!["127.0.0.1:2".into()]),
            ..FileConfig::default()
        };
        let mut f = base();
        f.canary = Some(vec!["localhost".into()]);
        assert!(Config::from_file(f, "x")
            .unwrap_err()
            .to_string()
            .contains("`canary`"));
        let mut f = base();
        f.initial_canary_weight = Some(101.0);
        assert!(Config::from_file(f, "x")
            .unwrap_err()
            .to_string()
            .contains("initial_canary_weight"));
        let mut f = base();
        f.sticky = Some(StickyFile {
            header: Some("x-user".into()),
            cookie: Some("u".into()),
        });
        assert!(Config::from_file(f, "x")
            .unwrap_err()
            .to_string()
            .contains("exactly one"));
        let mut f = base();
        f.stable = None;
        assert!(Config::from_file(f, "x")
            .unwrap_err()
            .to_string()
            .contains("`stable`"));
    }

    /// A valid flag-mode file.
    const FLAG_MODE: &str = r#"
mode = "flag"
upstream = ["127.0.0.1:8001", "127.0.0.1:8002"]

[flag]
key = "phase8_encryption_enabled"

[sticky]
header = "x-user-id"
"#;

    fn flag_mode_file() -> FileConfig {
        parse_toml(Path::new("flag.toml"), FLAG_MODE).expect("valid TOML")
    }

    #[test]
    fn flag_mode_has_one_pool_and_the_flags_salt() {
        let c = Config::from_file(flag_mode_file(), "flag.toml").expect("valid");
        let Mode::Flag(f) = &c.mode else {
            panic!("flag mode expected, got {:?}", c.mode)
        };
        assert_eq!(f.upstream.len(), 2);
        assert_eq!(f.key, "phase8_encryption_enabled");
        assert_eq!(
            f.salt, "phase8_encryption_enabled",
            "the key salts by default"
        );
        assert_eq!(f.stats.window(), Duration::from_secs(300));
        assert_eq!(f.stats.exact_cap(), 100_000);
        assert!(c.stable.is_empty() && c.canary.is_empty());

        let mut file = flag_mode_file();
        file.flag = Some(FlagFile {
            key: Some("checkout_v2".into()),
            salt: Some("checkout-2025-10".into()),
            stats_window_s: Some(60),
            stats_exact_cap: Some(5_000),
        });
        let c = Config::from_file(file, "x").expect("valid");
        let Mode::Flag(f) = &c.mode else {
            panic!("flag mode expected")
        };
        assert_eq!(f.salt, "checkout-2025-10");
        assert_eq!(f.stats.window(), Duration::from_secs(60));
        assert!(matches!(
            Config::for_pools(
                &["127.0.0.1:1".parse().unwrap()],
                &["127.0.0.1:2".parse().unwrap()]
            )
            .unwrap()
            .mode,
            Mode::Versions
        ));
    }

    #[test]
    fn flag_mode_mistakes_name_their_field() {
        let err = |f: FileConfig| Config::from_file(f, "x").unwrap_err().to_string();
        let mut f = flag_mode_file();
        f.stable = Some(vec!["127.0.0.1:1".into()]);
        assert!(err(f).contains("`stable`: not used with mode = \"flag\""));
        let mut f = flag_mode_file();
        f.upstream = None;
        assert!(err(f).contains("`upstream`: at least one"));
        let mut f = flag_mode_file();
        f.sticky = None;
        assert!(err(f).contains("`sticky`"));
        let mut f = flag_mode_file();
        f.flag = None;
        assert!(err(f).contains("`flag`"));
        let mut f = flag_mode_file();
        f.flag = Some(FlagFile::default());
        assert!(err(f).contains("`flag.key`"));
        for bad in ["", "has space", "a/b", &"k".repeat(129)] {
            let mut f = flag_mode_file();
            f.flag = Some(FlagFile {
                key: Some(bad.into()),
                ..FlagFile::default()
            });
            assert!(err(f).contains("`flag.key`"), "{bad:?}");
        }
        let mut f = flag_mode_file();
        f.flag = Some(FlagFile {
            key: Some("k".into()),
            salt: Some(String::new()),
            ..FlagFile::default()
        });
        assert!(err(f).contains("`flag.salt`"));
        for (window, cap, field) in [
            (Some(2), None, "flag.stats_window_s"),
            (Some(86_401), None, "flag.stats_window_s"),
            (None, Some(0), "flag.stats_exact_cap"),
        ] {
            let mut f = flag_mode_file();
            f.flag = Some(FlagFile {
                key: Some("k".into()),
                stats_window_s: window,
                stats_exact_cap: cap,
                ..FlagFile::default()
            });
            assert!(err(f).contains(field), "{field}");
        }
        let mut f = flag_mode_file();
        f.mode = Some("flags".into());
        assert!(err(f).contains("`mode`: \"flags\" is not one of"));
        // Two-version files may not carry flag-mode keys.
        let mut f = flag_mode_file();
        f.mode = None;
        f.stable = Some(vec!["127.0.0.1:1".into()]);
        f.canary = Some(vec!["127.0.0.1:2".into()]);
        assert!(err(f).contains("`upstream`: only used with mode = \"flag\""));
        // Unknown keys in [flag] are located like every other.
        match parse_toml(Path::new("f.toml"), "[flag]\nkey = \"k\"\nsalty = \"x\"\n") {
            Err(ConfigError::Parse { line, message, .. }) => {
                assert_eq!(line, 3);
                assert!(message.contains("salty"), "{message}");
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn percent_conversion() {
        assert_eq!(percent_to_bp(5.0), Some(500));
        assert_eq!(percent_to_bp(0.01), Some(1));
        assert_eq!(percent_to_bp(100.0), Some(10_000));
        assert_eq!(percent_to_bp(-1.0), None);
        assert_eq!(percent_to_bp(f64::NAN), None);
    }
}
