//! Stage two for `[router]`: which router a live run drives, and the keys of its kind.
//!
//! `kind` picks the router (`"ramp"`, `"haproxy"`, `"nginx"` or `"command"`); without it the
//! section is a Ramp proxy as it was before kinds existed (`admin` or `proxy_config`). Every
//! key belongs to one or more kinds, and a key of another kind is an error that names the
//! kind it belongs to, so that a half-edited section never drives the wrong thing. The keys
//! of HAProxy, nginx and commands are checked in `router_kinds`; the Ramp proxy's here, with
//! the rule that ties the router to the metrics source (`fits_metrics`).

use super::live::parse_http_url;
use super::raw::{RawPlan, RawRouter};
use super::scalar::{Text, TextList, S};
use super::validator::{written, Field, Validator};
use crate::plan::{MetricsSource, Plan, Router};
use std::ops::Range;

/// An admin URL, for messages.
const ADMIN_EXAMPLE: &str = "http://127.0.0.1:9901";

/// The router kinds by their plan names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// One or several `ramp proxy` processes, or one started in-process.
    Ramp,
    /// HAProxy's runtime API.
    Haproxy,
    /// nginx's upstream file and reload.
    Nginx,
    /// Commands.
    Command,
    /// The weight key in etcd that `ramp proxy --etcd` processes follow.
    Etcd,
}

impl Kind {
    /// Every kind, in the order messages list them.
    const ALL: [Kind; 5] = [
        Kind::Ramp,
        Kind::Haproxy,
        Kind::Nginx,
        Kind::Command,
        Kind::Etcd,
    ];

    /// The kind's plan name.
    fn name(self) -> &'static str {
        match self {
            Kind::Ramp => "ramp",
            Kind::Haproxy => "haproxy",
            Kind::Nginx => "nginx",
            Kind::Command => "command",
            Kind::Etcd => "etcd",
        }
    }

    /// The keys the kind takes besides `kind`.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Ramp => &["admin", "admin_token_file", "proxy_config"],
            Kind::Haproxy => &["socket", "backend", "stable", "canary", "timeout"],
            Kind::Nginx => &[
                "upstream_file",
                "upstream",
                "stable",
                "canary",
                "test",
                "reload",
                "pid_file",
                "timeout",
            ],
            Kind::Command => &["set_weight", "get_weight", "timeout"],
            Kind::Etcd => &["endpoints", "prefix", "admin", "admin_token_file"],
        }
    }
}

/// The keys written in `[router]` besides `kind`, with where each value is.
fn written_keys(r: &RawRouter) -> Vec<(&'static str, Range<usize>)> {
    /// The span of a key's value when it was written.
    fn at<T>(v: &Option<S<T>>) -> Option<Range<usize>> {
        v.as_ref().map(|v| v.span())
    }
    [
        ("admin", at(&r.admin)),
        ("admin_token_file", at(&r.admin_token_file)),
        ("proxy_config", at(&r.proxy_config)),
        ("socket", at(&r.socket)),
        ("backend", at(&r.backend)),
        ("stable", at(&r.stable)),
        ("canary", at(&r.canary)),
        ("timeout", at(&r.timeout)),
        ("upstream_file", at(&r.upstream_file)),
        ("upstream", at(&r.upstream)),
        ("test", at(&r.test)),
        ("reload", at(&r.reload)),
        ("pid_file", at(&r.pid_file)),
        ("set_weight", at(&r.set_weight)),
        ("get_weight", at(&r.get_weight)),
        ("endpoints", at(&r.endpoints)),
        ("prefix", at(&r.prefix)),
    ]
    .into_iter()
    .filter_map(|(k, s)| s.map(|s| (k, s)))
    .collect()
}

/// `kind = "…"` for every kind that takes `key`: `kind = "haproxy" or "nginx"`.
fn owners(key: &str) -> String {
    let names: Vec<String> = Kind::ALL
        .iter()
        .filter(|k| k.keys().contains(&key))
        .map(|k| format!("{:?}", k.name()))
        .collect();
    format!("kind = {}", names.join(" or "))
}

impl Validator<'_> {
    /// `[router]`: `None` when the plan has none (it can still be simulated); otherwise the
    /// router of its kind, every key of another kind reported with the kind it belongs to.
    /// With `kind = "etcd"`, `store` (the plan's `[store]`, when it has one) stands in for
    /// endpoints and prefix the router does not set.
    pub(super) fn router(
        &mut self,
        raw: Option<&S<RawRouter>>,
        store: Option<&(Vec<String>, String)>,
    ) -> Option<Option<Router>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        let r = raw.get_ref();
        let keys = written_keys(r);
        let kind = match &r.kind {
            None => Some(None),
            Some(v) => self.kind(v).map(Some),
        };
        let mut ok = true;
        if let Some(kind) = kind {
            let taken = kind.unwrap_or(Kind::Ramp);
            for (key, span) in &keys {
                if taken.keys().contains(key) {
                    continue;
                }
                let why = match kind {
                    Some(k) => format!("kind = {:?} takes {}", k.name(), k.keys().join(", ")),
                    None => format!(
                        "without kind, [router] is a Ramp proxy (admin or proxy_config); add {}",
                        owners(key)
                    ),
                };
                self.error(
                    span.clone(),
                    format!("router.{key}: belongs to {}; {why}", owners(key)),
                );
                ok = false;
            }
        }
        let router = match kind? {
            None if keys.is_empty() => {
                self.error(
                    raw.span(),
                    format!("router: names no router; expected admin = {ADMIN_EXAMPLE:?} (a running `ramp proxy`'s admin API), proxy_config = \"proxy.toml\" (a proxy started in-process), or kind = \"haproxy\", \"nginx\" or \"command\" with that kind's keys"),
                );
                None
            }
            // Keys of other kinds only, without a kind: the errors above say which to add.
            None if !ok && !keys.iter().any(|(k, _)| Kind::Ramp.keys().contains(k)) => None,
            None | Some(Kind::Ramp) => self.ramp_router(raw),
            Some(Kind::Haproxy) => self.haproxy_router(raw).map(Router::Haproxy),
            Some(Kind::Nginx) => self.nginx_router(raw).map(Router::Nginx),
            Some(Kind::Command) => self.command_router(raw).map(Router::Command),
            Some(Kind::Etcd) => self.etcd_router(raw, store).map(Router::Etcd),
        };
        ok.then_some(Some(router?))
    }

    /// `router.kind`.
    fn kind(&mut self, v: &S<Text>) -> Option<Kind> {
        let t = self.string(v, "router.kind")?;
        match Kind::ALL.into_iter().find(|k| k.name() == t) {
            Some(k) => Some(k),
            None => {
                self.error(
                    v.span(),
                    format!("router.kind: {t:?} is not a router kind; expected \"ramp\" (Ramp's proxy), \"haproxy\" (its runtime API), \"nginx\" (an upstream file and a reload), \"command\" (commands that set and read the weight) or \"etcd\" (a weight key that `ramp proxy --etcd` processes follow)"),
                );
                None
            }
        }
    }

    /// A Ramp proxy: exactly one of `admin` (one URL, or a list: a fleet) and
    /// `proxy_config`, and `admin_token_file` only with `admin`; an admin API off loopback
    /// needs the token, since whoever reaches it moves the traffic.
    fn ramp_router(&mut self, raw: &S<RawRouter>) -> Option<Router> {
        let r = raw.get_ref();
        let members = Field::of(r.admin.as_ref(), |v| {
            self.admin_urls(v, r.admin_token_file.is_some())
        });
        let token_file = Field::of(r.admin_token_file.as_ref(), |v| {
            self.path(v, "router.admin_token_file")
        });
        let config = Field::of(r.proxy_config.as_ref(), |v| {
            self.path(v, "router.proxy_config")
        });
        let mut ok = true;
        if let (Some(t), None) = (&r.admin_token_file, &r.admin) {
            self.error(
                t.span(),
                "router.admin_token_file: applies only with router.admin, the admin API it authenticates to; remove it or set admin".into(),
            );
            ok = false;
        }
        match (&r.admin, &r.proxy_config) {
            (None, None) => {
                self.error(
                    raw.span(),
                    format!("router: has neither admin nor proxy_config; expected admin = {ADMIN_EXAMPLE:?} (a running `ramp proxy`'s admin API) or proxy_config = \"proxy.toml\" (a proxy started in-process)"),
                );
                ok = false;
            }
            (Some(_), Some(c)) => {
                self.error(
                    c.span(),
                    "router: admin and proxy_config are both given; expected exactly one: admin (a running `ramp proxy`'s admin API) or proxy_config (a proxy started in-process)".into(),
                );
                ok = false;
            }
            _ => {}
        }
        let token_file = written(token_file);
        if !ok {
            return None;
        }
        match (members, config) {
            (Field::Valid(mut members), Field::Absent) if members.len() == 1 => {
                Some(Router::Admin {
                    url: members.remove(0).0,
                    token_file: token_file?,
                })
            }
            (Field::Valid(members), Field::Absent) => Some(Router::Fleet {
                members: members.into_iter().map(|(u, _)| u).collect(),
                token_file: token_file?,
            }),
            (Field::Absent, Field::Valid(config)) => Some(Router::Embedded { config }),
            _ => None,
        }
    }

    /// `router.admin`: one URL or a list of at least one, none twice, each with its span;
    /// off loopback only with a token (`token`), since whoever reaches it moves the traffic.
    pub(super) fn admin_urls(
        &mut self,
        v: &S<TextList>,
        token: bool,
    ) -> Option<Vec<(String, Range<usize>)>> {
        if matches!(v.get_ref(), TextList::Many(list) if list.is_empty()) {
            self.error(
                v.span(),
                format!("router.admin: is an empty list; expected one admin URL such as {ADMIN_EXAMPLE:?}, or a list of a fleet's"),
            );
            return None;
        }
        let expected = format!("an admin URL such as {ADMIN_EXAMPLE:?} or a list of them");
        let (entries, mut ok) = self.entries(v, "router.admin", &expected);
        let mut out: Vec<(String, Range<usize>)> = Vec::new();
        for (_, text, span) in entries {
            let Some(url) = self.admin_url(text, span.clone()) else {
                ok = false;
                continue;
            };
            if !token && !loopback_host(&url) {
                self.error(
                    span.clone(),
                    format!("router.admin: {url:?} is not a loopback address, so anyone who can reach it could move the traffic; set admin_token_file (the token the proxy's admin API requires), or reach it on 127.0.0.1"),
                );
                ok = false;
            }
            if out.iter().any(|(u, _)| *u == url) {
                self.error(
                    span,
                    format!("router.admin: {url:?} is listed twice; each proxy of a fleet once"),
                );
                ok = false;
                continue;
            }
            out.push((url, span));
        }
        ok.then_some(out)
    }

    /// One admin URL: an `http://host:port` base URL without a path, returned without a
    /// trailing slash so that the live driver can append `/weights` and the like.
    fn admin_url(&mut self, t: &str, span: Range<usize>) -> Option<String> {
        if t.trim().is_empty() {
            self.error(span, "router.admin: must not be empty".into());
            return None;
        }
        match parse_http_url(t, ADMIN_EXAMPLE) {
            Err(e) => {
                self.error(span, format!("router.admin: {e}"));
                None
            }
            Ok(u) if !u.rest.is_empty() && u.rest != "/" => {
                self.error(
                    span,
                    format!(
                        "router.admin: {t:?} has a path ({:?}); expected the admin API's base URL without a path, such as {ADMIN_EXAMPLE:?}",
                        u.rest
                    ),
                );
                None
            }
            Ok(u) => Some(format!("http://{}", u.authority)),
        }
    }

    /// Whether the plan's metrics source can read the plan's router: HAProxy's, nginx's and a
    /// command's traffic is counted elsewhere, and HAProxy's own counters have no latency,
    /// so a latency gate on them would never have data (and halt the rollout at a stage end).
    pub(super) fn fits_metrics(&mut self, raw: &RawPlan, plan: &Plan) -> bool {
        let (Some(router), MetricsSource::Proxy) = (&plan.router, plan.metrics) else {
            return true;
        };
        let at = raw
            .metrics
            .as_ref()
            .and_then(|m| m.get_ref().source.as_ref().map(|s| s.span()))
            .or_else(|| {
                let r = raw.router.as_ref()?;
                Some(r.get_ref().kind.as_ref().map_or(r.span(), |k| k.span()))
            })
            .unwrap_or(0..0);
        let what = match router {
            Router::Admin { .. } | Router::Embedded { .. } | Router::Fleet { .. } => return true,
            Router::Etcd(etcd) if !etcd.members.is_empty() => return true,
            Router::Etcd(_) => "kind = \"etcd\" reads the proxies' counters through their admin APIs, and router.admin lists none; list the following proxies' admin URLs in router.admin, or set [metrics] source = \"prometheus\"".to_string(),
            Router::Haproxy(_) => match latency_gate(plan) {
                None => return true,
                Some(gate) => format!("the router's own counters (HAProxy's `show stat`) count requests and errors but no latency, so {gate} would never have data; set [metrics] source = \"prometheus\" to judge latency, or remove the latency gates"),
            },
            Router::Nginx(_) => "nginx keeps no per-server counters Ramp can read; set [metrics] source = \"prometheus\" (and [metrics] url) so that the rollout is judged on canary and stable from Prometheus".to_string(),
            Router::Command(_) => "a command router has no counters of its own; set [metrics] source = \"prometheus\" (and [metrics] url) so that the rollout is judged on canary and stable from Prometheus".to_string(),
        };
        self.error(
            at,
            format!(
                "metrics.source: reads the router's own counters (\"proxy\", the default); {what}"
            ),
        );
        false
    }
}

/// The first gate of the plan that needs latency, named for a message.
fn latency_gate(plan: &Plan) -> Option<String> {
    use crate::plan::Metric;
    let latency = |m: Metric| matches!(m, Metric::P50Ms | Metric::P95Ms | Metric::P99Ms);
    for (i, stage) in plan.stages.iter().enumerate() {
        if let Some(g) = stage.gates.iter().find(|g| latency(g.metric)) {
            return Some(format!("stage {}'s {} gate", i + 1, g.metric.key()));
        }
    }
    if let Some(g) = plan.relative.iter().find(|g| latency(g.metric)) {
        return Some(format!("the relative {} gate", g.metric.key()));
    }
    if plan.sequential.latency.is_some() {
        return Some("the sequential latency test".into());
    }
    plan.mann_whitney
        .map(|_| "the Mann-Whitney latency test".into())
}

/// Whether an admin URL (`http://host:port`, checked) names this machine.
fn loopback_host(url: &str) -> bool {
    let authority = url.trim_start_matches("http://");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
