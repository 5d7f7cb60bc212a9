//! Stage two: the raw values checked into a [`Config`], every problem collected.
//!
//! Each check records its problems in the [`Checker`] and returns `Err(Reported)` when its
//! value is unusable, so that a later check that depends on it (the admin token on a
//! non-loopback admin address, the upstream pool of flag mode) neither panics nor reports a
//! second, bogus problem. The checks run in the order the proxy has always reported its
//! first problem in, and the configuration is built only when none found anything.
//!
//! The checks of flag mode's `[flag]` are in `flag_mode`; everything else is here.

use super::error::{ConfigError, ConfigErrors, Origin};
use super::parse::{ConfigFile, Places};
use super::raw::{FileConfig, HealthFile, LimitsFile, StickyFile, TimeoutsFile};
use super::{
    percent_to_bp, Config, HealthConfig, Mode, StickySource, UnhealthyPolicy, UpstreamProtocol,
    DEFAULT_DEPLOYMENT_ID,
};
use std::net::SocketAddr;
use std::time::Duration;

/// A check found its value unusable and has recorded why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reported;

/// What a check returns: the checked value, or [`Reported`].
pub(super) type Checked<T> = Result<T, Reported>;

/// The validation pass: where the values came from, and every problem found so far.
pub(super) struct Checker<'a> {
    /// The file, or "command line", that labels the problems.
    origin: &'a str,
    /// Where each value was written, to locate its problems.
    places: &'a Places,
    /// Every problem found so far, in the order found.
    pub(super) errors: Vec<ConfigError>,
}

impl ConfigFile {
    /// Validates the values (stage two) and reports stage one's problems and stage two's
    /// together, in file order; builds the configuration only when there are none.
    pub(crate) fn validate(self) -> Result<Config, ConfigErrors> {
        let mut checker = Checker {
            origin: &self.origin,
            places: &self.places,
            errors: Vec::new(),
        };
        let config = checker.config(&self.raw);
        let mut errors = self.problems;
        errors.append(&mut checker.errors);
        match config {
            Ok(config) if errors.is_empty() => Ok(config),
            // Every check passed yet none built: a bug here, reported rather than a panic.
            Err(Reported) if errors.is_empty() => Err(ConfigErrors(vec![ConfigError::Invalid {
                origin: Origin {
                    name: self.origin.clone(),
                    at: None,
                },
                field: String::new(),
                message:
                    "internal error: the configuration passed validation but could not be built"
                        .into(),
            }])),
            _ => Err(ConfigErrors::in_file_order(errors)),
        }
    }
}

impl Checker<'_> {
    /// Records a problem with the value at `field`, located at that value when the file
    /// holds it. A key that stage one set aside has been reported already, so a problem
    /// that follows from its absence is not recorded.
    pub(super) fn invalid(&mut self, field: &str, message: String) {
        self.invalid_at(field, field, message);
    }

    /// Records a problem with `field`, located at the value at `place` (an entry of its
    /// array, say) or else at the field's own value.
    pub(super) fn invalid_at(&mut self, field: &str, place: &str, message: String) {
        if self.places.is_set_aside(field) {
            return;
        }
        let at = self.places.of(place).or_else(|| self.places.of(field));
        self.errors.push(ConfigError::Invalid {
            origin: Origin {
                name: self.origin.to_string(),
                at,
            },
            field: field.to_string(),
            message,
        });
    }

    /// Checks every value, in the order the proxy has always reported its first problem in,
    /// and builds the configuration from the good ones.
    fn config(&mut self, file: &FileConfig) -> Checked<Config> {
        let listen = self.addr("listen", "listen", file.listen.as_deref(), "127.0.0.1:0");
        let admin_listen = self.addr(
            "admin_listen",
            "admin_listen",
            file.admin_listen.as_deref(),
            "127.0.0.1:0",
        );
        let flag_mode = self.flag_mode(file);
        let pools = self.version_pools(file, flag_mode);
        let initial_canary_bp = self.initial_weight(file.initial_canary_weight);
        let admin_token = self.admin_token(file);
        if let (Ok(admin), Ok(None)) = (&admin_listen, &admin_token) {
            if !admin.ip().is_loopback() {
                self.invalid(
                    "admin_listen",
                    format!("{admin} is not a loopback address, so `admin_token_file` is required"),
                );
            }
        }
        let sticky = self.sticky(file.sticky.as_ref());
        let mode = match flag_mode {
            Ok(true) => self.flag_rollout(file, &sticky).map(Mode::Flag),
            Ok(false) => Ok(Mode::Versions),
            Err(Reported) => Err(Reported),
        };
        let limits = self.limits(&file.limits);
        let health = self.health(file.health.as_ref());
        let upstream_protocol = self.upstream_protocol(file.upstream_protocol.as_deref());
        let timeouts = self.timeouts(&file.timeouts);
        let etcd = self.etcd(file);
        let (stable, canary) = pools?;
        let (max_header_bytes, max_headers, max_connections) = limits?;
        let (health, unhealthy_policy) = health?;
        let [header_read, connect, response, body_idle, client_body_idle, drain, idle] = timeouts?;
        Ok(Config {
            upstream_protocol: upstream_protocol?,
            listen: listen?,
            admin_listen: admin_listen?,
            admin_token: admin_token?,
            deployment_id: file
                .deployment_id
                .clone()
                .unwrap_or_else(|| DEFAULT_DEPLOYMENT_ID.into()),
            state_file: file.state_file.clone(),
            initial_canary_bp: initial_canary_bp?,
            stable,
            canary,
            sticky: sticky?,
            mode: mode?,
            header_read_timeout: header_read,
            upstream_connect_timeout: connect,
            upstream_response_timeout: response,
            upstream_body_idle_timeout: body_idle,
            client_body_idle_timeout: client_body_idle,
            drain_timeout: drain,
            upstream_idle_timeout: idle,
            max_header_bytes,
            max_headers,
            max_idle_per_upstream: file.limits.max_idle_per_upstream.unwrap_or(256),
            max_connections,
            health,
            unhealthy_policy,
            etcd: etcd?,
        })
    }

    /// A socket address (`default` when absent), located at `place`.
    fn addr(
        &mut self,
        field: &str,
        place: &str,
        value: Option<&str>,
        default: &str,
    ) -> Checked<SocketAddr> {
        let value = value.unwrap_or(default);
        value.parse::<SocketAddr>().map_err(|_| {
            self.invalid_at(
                field,
                place,
                format!("\"{value}\" is not an IP:port socket address"),
            );
            Reported
        })
    }

    /// A pool of upstream addresses: at least one, at most 1024, each one reported when bad.
    pub(super) fn pool(
        &mut self,
        field: &str,
        values: Option<&Vec<String>>,
    ) -> Checked<Vec<SocketAddr>> {
        let Some(values) = values.filter(|v| !v.is_empty()) else {
            self.invalid(field, "at least one upstream address is required".into());
            return Err(Reported);
        };
        if values.len() > 1024 {
            self.invalid(field, "at most 1024 addresses".into());
            return Err(Reported);
        }
        let mut pool = Vec::with_capacity(values.len());
        let mut all_good = true;
        for (i, value) in values.iter().enumerate() {
            match self.addr(field, &format!("{field}[{i}]"), Some(value), "") {
                Ok(addr) => pool.push(addr),
                Err(Reported) => all_good = false,
            }
        }
        if all_good {
            Ok(pool)
        } else {
            Err(Reported)
        }
    }

    /// `mode`: whether it is flag mode.
    fn flag_mode(&mut self, file: &FileConfig) -> Checked<bool> {
        match file.mode.as_deref().unwrap_or("versions") {
            "versions" => Ok(false),
            "flag" => Ok(true),
            other => {
                self.invalid(
                    "mode",
                    format!("\"{other}\" is not one of \"versions\", \"flag\""),
                );
                Err(Reported)
            }
        }
    }

    /// The `stable` and `canary` pools: required with two versions, refused in flag mode
    /// (whose one pool is `upstream`), and unknown when the mode is.
    fn version_pools(
        &mut self,
        file: &FileConfig,
        flag_mode: Checked<bool>,
    ) -> Checked<(Vec<SocketAddr>, Vec<SocketAddr>)> {
        match flag_mode? {
            true => {
                let mut refused = false;
                for (field, given) in [("stable", &file.stable), ("canary", &file.canary)] {
                    if given.is_some() {
                        self.invalid(field, "not used with mode = \"flag\": one pool serves every user; list it in `upstream`".into());
                        refused = true;
                    }
                }
                if refused {
                    Err(Reported)
                } else {
                    Ok((Vec::new(), Vec::new()))
                }
            }
            false => {
                for (field, given) in [
                    ("upstream", file.upstream.is_some()),
                    ("flag", file.flag.is_some()),
                ] {
                    if given {
                        self.invalid(field, "only used with mode = \"flag\" (one version with a feature flag); two versions use `stable` and `canary`".into());
                    }
                }
                let stable = self.pool("stable", file.stable.as_ref());
                let canary = self.pool("canary", file.canary.as_ref());
                Ok((stable?, canary?))
            }
        }
    }

    /// `initial_canary_weight`, a percentage, in basis points (0 when absent).
    fn initial_weight(&mut self, weight: Option<f64>) -> Checked<u32> {
        match weight {
            None => Ok(0),
            Some(w) => percent_to_bp(w).ok_or_else(|| {
                self.invalid(
                    "initial_canary_weight",
                    format!("{w} is not a percentage between 0 and 100"),
                );
                Reported
            }),
        }
    }

    /// The admin token, read from `admin_token_file` (none when absent).
    fn admin_token(&mut self, file: &FileConfig) -> Checked<Option<String>> {
        let Some(path) = &file.admin_token_file else {
            return Ok(None);
        };
        let token = match std::fs::read_to_string(path) {
            Ok(text) => text.trim().to_string(),
            Err(e) => {
                self.invalid(
                    "admin_token_file",
                    format!("cannot read {}: {e}", path.display()),
                );
                return Err(Reported);
            }
        };
        if token.len() < 16 {
            self.invalid(
                "admin_token_file",
                "the token must be at least 16 characters".into(),
            );
            return Err(Reported);
        }
        Ok(Some(token))
    }

    /// `[sticky]`: exactly one of a valid header name or a valid cookie name.
    fn sticky(&mut self, sticky: Option<&StickyFile>) -> Checked<Option<StickySource>> {
        match sticky {
            None => Ok(None),
            Some(StickyFile {
                header: Some(h),
                cookie: None,
            }) => match http::HeaderName::from_bytes(h.as_bytes()) {
                Ok(_) => Ok(Some(StickySource::Header(h.to_ascii_lowercase()))),
                Err(_) => {
                    self.invalid(
                        "sticky.header",
                        format!("\"{h}\" is not a valid header name"),
                    );
                    Err(Reported)
                }
            },
            Some(StickyFile {
                header: None,
                cookie: Some(c),
            }) if !c.is_empty() && !c.contains([';', '=', ' ']) => {
                Ok(Some(StickySource::Cookie(c.clone())))
            }
            Some(StickyFile {
                header: None,
                cookie: Some(c),
            }) => {
                self.invalid(
                    "sticky.cookie",
                    format!("\"{c}\" is not a valid cookie name"),
                );
                Err(Reported)
            }
            Some(StickyFile {
                header: Some(_),
                cookie: Some(_),
            })
            | Some(StickyFile {
                header: None,
                cookie: None,
            }) => {
                self.invalid("sticky", "set exactly one of `header` or `cookie`".into());
                Err(Reported)
            }
        }
    }

    /// A time limit in milliseconds (`default` when absent): 1 ms to 24 h.
    fn ms(&mut self, field: &str, value: Option<u64>, default: u64) -> Checked<Duration> {
        let v = value.unwrap_or(default);
        if v == 0 || v > 24 * 3600 * 1000 {
            self.invalid(field, format!("{v} ms is out of range (1 ms to 24 h)"));
            return Err(Reported);
        }
        Ok(Duration::from_millis(v))
    }

    /// A whole number within `range` (`default` when absent).
    fn count<T>(
        &mut self,
        field: &str,
        value: Option<T>,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Checked<T>
    where
        T: PartialOrd + std::fmt::Display + Copy,
    {
        let v = value.unwrap_or(default);
        if range.contains(&v) {
            Ok(v)
        } else {
            self.invalid(
                field,
                format!("{v} is out of range ({} to {})", range.start(), range.end()),
            );
            Err(Reported)
        }
    }

    /// `[limits]`: the request head's size and header count, and the connections served at
    /// once.
    fn limits(&mut self, limits: &LimitsFile) -> Checked<(usize, usize, usize)> {
        let bytes = self.count(
            "limits.max_header_bytes",
            limits.max_header_bytes,
            16 * 1024,
            8192..=1024 * 1024,
        );
        let headers = self.count("limits.max_headers", limits.max_headers, 100, 1..=1000);
        let connections = self.count(
            "limits.max_connections",
            limits.max_connections,
            10_000,
            1..=1_000_000,
        );
        Ok((bytes?, headers?, connections?))
    }

    /// `[health]`: the checks (none when absent) and the policy for a pool that is down.
    fn health(
        &mut self,
        health: Option<&HealthFile>,
    ) -> Checked<(Option<HealthConfig>, UnhealthyPolicy)> {
        let Some(h) = health else {
            return Ok((None, UnhealthyPolicy::Fallback));
        };
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        let path_ok = path.starts_with('/') && path.parse::<http::uri::PathAndQuery>().is_ok();
        if !path_ok {
            self.invalid(
                "health.path",
                format!("\"{path}\" is not an absolute request path"),
            );
        }
        let policy = match h.unhealthy_pool.as_deref().unwrap_or("fallback") {
            "fallback" => Ok(UnhealthyPolicy::Fallback),
            "fail" => Ok(UnhealthyPolicy::Fail),
            other => {
                self.invalid(
                    "health.unhealthy_pool",
                    format!("\"{other}\" is not one of \"fallback\", \"fail\""),
                );
                Err(Reported)
            }
        };
        let interval = self.ms("health.interval_ms", h.interval_ms, 2_000);
        let timeout = self.ms("health.timeout_ms", h.timeout_ms, 1_000);
        let fall = self.count("health.fall", h.fall, 2, 1..=100);
        let rise = self.count("health.rise", h.rise, 2, 1..=100);
        let config = HealthConfig {
            path,
            interval: interval?,
            timeout: timeout?,
            fall: fall?,
            rise: rise?,
        };
        if !path_ok {
            return Err(Reported);
        }
        Ok((Some(config), policy?))
    }

    /// `upstream_protocol`: "http1" (the default) or "h2c".
    fn upstream_protocol(&mut self, protocol: Option<&str>) -> Checked<UpstreamProtocol> {
        match protocol.unwrap_or("http1") {
            "http1" => Ok(UpstreamProtocol::Http1),
            "h2c" => Ok(UpstreamProtocol::H2c),
            other => {
                self.invalid(
                    "upstream_protocol",
                    format!("\"{other}\" is not one of \"http1\", \"h2c\""),
                );
                Err(Reported)
            }
        }
    }

    /// `[timeouts]`: header read, upstream connect, upstream response, upstream body idle,
    /// client body idle, drain and pooled idle, in that order.
    fn timeouts(&mut self, t: &TimeoutsFile) -> Checked<[Duration; 7]> {
        let checked = [
            self.ms("timeouts.header_read_ms", t.header_read_ms, 10_000),
            self.ms("timeouts.upstream_connect_ms", t.upstream_connect_ms, 2_000),
            self.ms(
                "timeouts.upstream_response_ms",
                t.upstream_response_ms,
                30_000,
            ),
            self.ms(
                "timeouts.upstream_body_idle_ms",
                t.upstream_body_idle_ms,
                30_000,
            ),
            self.ms(
                "timeouts.client_body_idle_ms",
                t.client_body_idle_ms,
                10_000,
            ),
            self.ms("timeouts.drain_ms", t.drain_ms, 30_000),
            self.ms("timeouts.upstream_idle_ms", t.upstream_idle_ms, 60_000),
        ];
        let mut out = [Duration::ZERO; 7];
        for (slot, value) in out.iter_mut().zip(checked) {
            *slot = value?;
        }
        Ok(out)
    }
}
