//! Stage two for the keys of `[router] kind = "haproxy"`, `"nginx"`, `"command"` and
//! `"etcd"`.
//!
//! Everything these routers are handed ends up in a runtime-API command, a file nginx parses
//! or a program's argv, so names are held to the characters those accept, servers are named
//! once and on one side only, and a command's placeholders are known ones: a mistake is a
//! located error at `ramp validate`, never a surprise in the middle of a rollout.

use super::live::parse_http_url;
use super::raw::RawRouter;
use super::scalar::{Dur, Text, TextList, S};
use super::validator::{valid_or_none, written, Field, Validator};
use crate::argv::{placeholders, GET_PLACEHOLDERS, SET_PLACEHOLDERS};
use crate::plan::{CommandRouter, EtcdRouter, HaproxyRouter, HaproxySocket, NginxRouter};
use crate::units::Span;
use std::net::SocketAddr;

/// The default time one HAProxy runtime-API exchange may take.
const HAPROXY_TIMEOUT: Span = Span(2_000);
/// The default time nginx's test, reload and confirmation, or one command, may take.
const COMMAND_TIMEOUT: Span = Span(10_000);
/// The longest time one call to a router may take: the driver calls it at every stage.
const MAX_TIMEOUT: Span = Span(600_000);
/// nginx's default configuration test and reload.
const NGINX_TEST: [&str; 2] = ["nginx", "-t"];
/// See `NGINX_TEST`.
const NGINX_RELOAD: [&str; 3] = ["nginx", "-s", "reload"];

/// An etcd client URL, for messages.
const ETCD_EXAMPLE: &str = "http://127.0.0.1:2379";

impl Validator<'_> {
    /// `kind = "etcd"`: etcd's endpoints and prefix (by default the plan's `[store]`'s, the
    /// cluster the controllers already use: `store` is its endpoints and prefix), and
    /// optionally the following proxies' admin APIs (`admin`, with `admin_token_file`), read
    /// for metrics and confirmation.
    pub(super) fn etcd_router(
        &mut self,
        raw: &S<RawRouter>,
        store: Option<&(Vec<String>, String)>,
    ) -> Option<EtcdRouter> {
        let r = raw.get_ref();
        let endpoints = match (&r.endpoints, store) {
            (None, Some((endpoints, _))) => Some(endpoints.clone()),
            (given, _) => self.required(
                raw,
                given.as_ref(),
                "endpoints",
                "etcd's client URLs, such as [\"http://127.0.0.1:2379\"], or a [store] section whose cluster it then uses",
                |me, v| me.etcd_endpoints(v),
            ),
        };
        let prefix = match (&r.prefix, store) {
            (None, Some((_, prefix))) => Some(prefix.clone()),
            (None, None) => Some("/ramp".to_string()),
            (Some(v), _) => {
                let t = self.string(v, "router.prefix")?.to_string();
                if t.starts_with('/') && t.len() <= 256 && t.bytes().all(|b| b.is_ascii_graphic()) {
                    Some(t)
                } else {
                    self.error(
                        v.span(),
                        format!("router.prefix: {t:?} must start with '/' and be at most 256 printable characters without spaces, such as \"/ramp\""),
                    );
                    None
                }
            }
        };
        let members = match &r.admin {
            None => Some(Vec::new()),
            Some(v) => self
                .admin_urls(v, r.admin_token_file.is_some())
                .map(|m| m.into_iter().map(|(u, _)| u).collect()),
        };
        let token_file = match (&r.admin_token_file, &r.admin) {
            (None, _) => Some(None),
            (Some(t), None) => {
                self.error(
                    t.span(),
                    "router.admin_token_file: applies only with router.admin, the admin APIs it authenticates to; remove it or set admin".into(),
                );
                None
            }
            (Some(t), Some(_)) => self.path(t, "router.admin_token_file").map(Some),
        };
        Some(EtcdRouter {
            endpoints: endpoints?,
            prefix: prefix?,
            members: members?,
            token_file: token_file?,
        })
    }

    /// `router.endpoints`: one http URL or a list of at least one, each without a path.
    fn etcd_endpoints(&mut self, v: &S<TextList>) -> Option<Vec<String>> {
        let expected = format!("an etcd client URL such as {ETCD_EXAMPLE:?} or a list of them");
        let (entries, mut ok) = self.entries(v, "router.endpoints", &expected);
        if entries.is_empty() && ok {
            self.error(
                v.span(),
                format!("router.endpoints: is an empty list; expected {expected}"),
            );
            return None;
        }
        let mut out = Vec::new();
        for (_, text, span) in entries {
            match parse_http_url(text, ETCD_EXAMPLE) {
                Ok(u) if u.rest.is_empty() || u.rest == "/" => {
                    out.push(format!("http://{}", u.authority))
                }
                Ok(u) => {
                    self.error(
                        span,
                        format!("router.endpoints: {text:?} has a path ({:?}); expected a client URL without one, such as {ETCD_EXAMPLE:?}", u.rest),
                    );
                    ok = false;
                }
                Err(e) => {
                    self.error(span, format!("router.endpoints: {e}"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// `kind = "haproxy"`: the runtime API's socket, the backend and its servers.
    pub(super) fn haproxy_router(&mut self, raw: &S<RawRouter>) -> Option<HaproxyRouter> {
        let r = raw.get_ref();
        let socket = self.required(raw, r.socket.as_ref(), "socket", "HAProxy's runtime API: a unix socket path such as \"/run/haproxy/admin.sock\" or \"127.0.0.1:9999\"", |me, v| me.haproxy_socket(v));
        let backend = self.required(
            raw,
            r.backend.as_ref(),
            "backend",
            "the HAProxy backend holding both versions' servers",
            |me, v| me.name(v, "router.backend"),
        );
        let (stable, canary) = self.sides(
            raw,
            (
                "HAProxy server names of the backend",
                "a server name (letters, digits, '-', '_', '.' and ':')",
            ),
            |t| name_of(t).then(|| t.to_string()),
        );
        let timeout = self.router_timeout(r.timeout.as_ref());
        Some(HaproxyRouter {
            socket: socket?,
            backend: backend?,
            stable: stable?,
            canary: canary?,
            timeout: valid_or_none(timeout, HAPROXY_TIMEOUT)?,
        })
    }

    /// `kind = "nginx"`: the upstream file and block, its servers, and the commands that test
    /// and reload nginx.
    pub(super) fn nginx_router(&mut self, raw: &S<RawRouter>) -> Option<NginxRouter> {
        let r = raw.get_ref();
        let file = self.required(
            raw,
            r.upstream_file.as_ref(),
            "upstream_file",
            "the file holding the upstream block, which nginx's configuration includes",
            |me, v| me.path(v, "router.upstream_file"),
        );
        let upstream = self.required(
            raw,
            r.upstream.as_ref(),
            "upstream",
            "the upstream block's name",
            |me, v| me.name(v, "router.upstream"),
        );
        let (stable, canary) = self.sides(
            raw,
            (
                "servers as host:port",
                "a server as host:port such as \"127.0.0.1:8081\"",
            ),
            host_port,
        );
        let argv = |me: &mut Self, v: Option<&S<TextList>>, key: &str, default: &[&str]| {
            valid_or_none(
                Field::of(v, |v| me.argv(v, &format!("router.{key}"))),
                default.iter().map(|s| s.to_string()).collect(),
            )
        };
        let test = argv(self, r.test.as_ref(), "test", &NGINX_TEST);
        let reload = argv(self, r.reload.as_ref(), "reload", &NGINX_RELOAD);
        let pid_file = Field::of(r.pid_file.as_ref(), |v| self.path(v, "router.pid_file"));
        let timeout = self.router_timeout(r.timeout.as_ref());
        Some(NginxRouter {
            upstream_file: file?,
            upstream: upstream?,
            stable: stable?,
            canary: canary?,
            test: test?,
            reload: reload?,
            pid_file: written(pid_file)?,
            timeout: valid_or_none(timeout, COMMAND_TIMEOUT)?,
        })
    }

    /// `kind = "command"`: the command that sets the weight, the one that reads it, and
    /// their placeholders.
    pub(super) fn command_router(&mut self, raw: &S<RawRouter>) -> Option<CommandRouter> {
        let r = raw.get_ref();
        let set = self.required(raw, r.set_weight.as_ref(), "set_weight", "the program and arguments that set the canary's weight, such as [\"/usr/local/bin/set-weight\", \"{weight}\"]", |me, v| me.template(v, "router.set_weight", &SET_PLACEHOLDERS));
        let get = Field::of(r.get_weight.as_ref(), |v| {
            self.template(v, "router.get_weight", &GET_PLACEHOLDERS)
        });
        let timeout = self.router_timeout(r.timeout.as_ref());
        Some(CommandRouter {
            set_weight: set?,
            get_weight: written(get)?,
            timeout: valid_or_none(timeout, COMMAND_TIMEOUT)?,
        })
    }

    /// A required key of `[router]`, reported missing at the section.
    fn required<T, V>(
        &mut self,
        raw: &S<RawRouter>,
        v: Option<&S<V>>,
        key: &str,
        what: &str,
        check: impl FnOnce(&mut Self, &S<V>) -> Option<T>,
    ) -> Option<T> {
        match v {
            None => {
                self.missing(raw.span(), "router", key, what);
                None
            }
            Some(v) => check(self, v),
        }
    }

    /// `router.timeout`.
    fn router_timeout(&mut self, v: Option<&S<Dur>>) -> Field<Span> {
        Field::of(v, |v| {
            let t = self.positive_duration(v, "router.timeout")?;
            if t > MAX_TIMEOUT {
                self.error(
                    v.span(),
                    format!("router.timeout: {t} is longer than {MAX_TIMEOUT}; it bounds one call to the router, which a rollback waits for"),
                );
                return None;
            }
            Some(t)
        })
    }

    /// `router.stable` and `router.canary`: one server or a list, each side at least one,
    /// no server twice nor on both sides.
    /// `what` names the servers for a missing key and `expected` one server for a bad entry;
    /// `server` checks one.
    fn sides(
        &mut self,
        raw: &S<RawRouter>,
        (what, expected): (&str, &str),
        server: impl Fn(&str) -> Option<String>,
    ) -> (Option<Vec<String>>, Option<Vec<String>>) {
        let r = raw.get_ref();
        let mut seen: Vec<(String, &str)> = Vec::new();
        let mut side = |me: &mut Self, v: Option<&S<TextList>>, key: &'static str| {
            let Some(v) = v else {
                me.missing(raw.span(), "router", key, what);
                return None;
            };
            let ctx = format!("router.{key}");
            if matches!(v.get_ref(), TextList::Many(l) if l.is_empty()) {
                me.error(
                    v.span(),
                    format!("{ctx}: is an empty list; expected at least one of the {what}"),
                );
                return None;
            }
            let (entries, mut ok) =
                me.entries(v, &ctx, &format!("one of the {what} or a list of them"));
            let mut out = Vec::new();
            for (_, text, span) in entries {
                let Some(s) = server(text) else {
                    me.error(span, format!("{ctx}: {text:?} is not {expected}"));
                    ok = false;
                    continue;
                };
                if let Some((_, first)) = seen.iter().find(|(n, _)| *n == s) {
                    let msg = if *first == key {
                        format!("{ctx}: {s:?} is listed twice")
                    } else {
                        format!(
                            "{ctx}: {s:?} is also a {first} server; a server belongs to one side"
                        )
                    };
                    me.error(span, msg);
                    ok = false;
                    continue;
                }
                seen.push((s.clone(), key));
                out.push(s);
            }
            ok.then_some(out)
        };
        let stable = side(self, r.stable.as_ref(), "stable");
        let canary = side(self, r.canary.as_ref(), "canary");
        (stable, canary)
    }

    /// `router.socket`: an IP address and port (loopback only: the runtime API has no
    /// authentication) or a unix socket path.
    fn haproxy_socket(&mut self, v: &S<Text>) -> Option<HaproxySocket> {
        let t = self.text(v, "router.socket")?;
        if let Ok(addr) = t.parse::<SocketAddr>() {
            if !addr.ip().to_canonical().is_loopback() {
                self.error(
                    v.span(),
                    format!("router.socket: {addr} is not a loopback address; HAProxy's runtime API has no authentication, so anyone who can reach it could move the traffic; use a unix socket (stats socket /run/haproxy/admin.sock mode 600 level admin) or bind it to 127.0.0.1"),
                );
                return None;
            }
            return Some(HaproxySocket::Tcp(addr));
        }
        if !t.contains('/') && t.contains(':') {
            self.error(
                v.span(),
                format!("router.socket: {t:?} is neither an IP address and port such as \"127.0.0.1:9999\" (not a host name) nor a unix socket path (which holds a '/', such as \"./haproxy.sock\")"),
            );
            return None;
        }
        Some(HaproxySocket::Unix(t.into()))
    }

    /// A backend or upstream name.
    fn name(&mut self, v: &S<Text>, what: &str) -> Option<String> {
        let t = self.text(v, what)?;
        if !name_of(&t) {
            self.error(
                v.span(),
                format!("{what}: {t:?} is not a name; expected letters, digits, '-', '_', '.' and ':' only"),
            );
            return None;
        }
        Some(t)
    }

    /// A command template: an argv whose placeholders are among `known`.
    fn template(&mut self, v: &S<TextList>, what: &str, known: &[&str]) -> Option<Vec<String>> {
        let argv = self.argv(v, what)?;
        let (entries, _) = self.entries(v, what, "");
        let mut ok = true;
        for (n, arg, span) in entries {
            for name in placeholders(arg) {
                if !known.contains(&name) {
                    let list: Vec<String> = known.iter().map(|k| format!("{{{k}}}")).collect();
                    self.error(
                        span.clone(),
                        format!(
                            "{what} entry {n}: unknown placeholder {{{name}}}; expected {}",
                            list.join(", ")
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(argv)
    }
}

/// Whether `t` is a name HAProxy and nginx accept, and one that cannot end a runtime-API
/// command or a configuration directive early (no space, ';', '/' or newline).
fn name_of(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// `t` when it is a `host:port` server of an nginx upstream (an IPv6 address in brackets).
fn host_port(t: &str) -> Option<String> {
    let (host, port) = match t.strip_prefix('[') {
        Some(v6) => {
            let (ip, port) = v6.split_once("]:")?;
            ip.parse::<std::net::Ipv6Addr>().ok()?;
            (ip, port)
        }
        None => t.rsplit_once(':')?,
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'));
    let port_ok =
        port.chars().all(|c| c.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p != 0);
    (host_ok && port_ok).then(|| t.to_string())
}
