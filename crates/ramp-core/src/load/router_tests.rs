//! Tests of `[router]`: each kind read with its defaults, every mistake located and
//! reported at once, and the router tied to a metrics source that can read it.

use crate::load::tests::{errs, ok, MINIMAL};
use crate::plan::{CommandRouter, EtcdRouter, HaproxyRouter, HaproxySocket, NginxRouter, Router};
use crate::units::Span;

/// The plan's router, which must be valid.
fn router(section: &str) -> Router {
    ok(&format!("{MINIMAL}\n{section}"))
        .router
        .expect("a router")
}

/// Every message of an invalid plan, one per line, with its line and column.
fn messages(section: &str) -> String {
    errs(&format!("{MINIMAL}\n{section}"))
        .iter()
        .map(|(l, c, m)| format!("{l}:{c}: {m}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prometheus as the metrics source, which routers without counters of their own need.
const PROMETHEUS: &str = "[metrics]\nsource = \"prometheus\"\nurl = \"http://127.0.0.1:9090\"\n";

#[test]
fn a_ramp_proxy_is_one_admin_url_a_list_of_them_or_a_configuration() {
    let one = Router::Admin {
        url: "http://127.0.0.1:9901".into(),
        token_file: None,
    };
    assert_eq!(
        router("[router]\nadmin = \"http://127.0.0.1:9901/\"\n"),
        one
    );
    assert_eq!(
        router("[router]\nkind = \"ramp\"\nadmin = [\"http://127.0.0.1:9901\"]\n"),
        one
    );
    assert_eq!(
        router("[router]\nkind = \"ramp\"\nadmin = [\"http://10.0.0.1:9901\", \"http://10.0.0.2:9901\"]\nadmin_token_file = \"admin.token\"\n"),
        Router::Fleet {
            members: vec!["http://10.0.0.1:9901".into(), "http://10.0.0.2:9901".into()],
            token_file: Some("admin.token".into()),
        }
    );
    assert_eq!(
        router("[router]\nkind = \"ramp\"\nproxy_config = \"proxy.toml\"\n"),
        Router::Embedded {
            config: "proxy.toml".into()
        }
    );
}

#[test]
fn haproxy_nginx_and_command_routers_get_their_defaults() {
    assert_eq!(
        router("[router]\nkind = \"haproxy\"\nsocket = \"./haproxy.sock\"\nbackend = \"app\"\nstable = [\"s1\", \"s2\"]\ncanary = \"c1\"\n"),
        Router::Haproxy(HaproxyRouter {
            socket: HaproxySocket::Unix("./haproxy.sock".into()),
            backend: "app".into(),
            stable: vec!["s1".into(), "s2".into()],
            canary: vec!["c1".into()],
            timeout: Span(2_000),
        })
    );
    let tcp = router("[router]\nkind = \"haproxy\"\nsocket = \"127.0.0.1:9999\"\nbackend = \"app\"\nstable = \"s\"\ncanary = \"c\"\ntimeout = \"5s\"\n");
    assert!(
        matches!(&tcp, Router::Haproxy(h) if h.socket == HaproxySocket::Tcp("127.0.0.1:9999".parse().unwrap()) && h.timeout == Span(5_000)),
        "{tcp:?}"
    );
    let nginx = format!("[router]\nkind = \"nginx\"\nupstream_file = \"up.conf\"\nupstream = \"app\"\nstable = \"127.0.0.1:8081\"\ncanary = [\"127.0.0.1:8082\", \"[::1]:8083\"]\n\n{PROMETHEUS}");
    assert_eq!(
        router(&nginx),
        Router::Nginx(NginxRouter {
            upstream_file: "up.conf".into(),
            upstream: "app".into(),
            stable: vec!["127.0.0.1:8081".into()],
            canary: vec!["127.0.0.1:8082".into(), "[::1]:8083".into()],
            test: vec!["nginx".into(), "-t".into()],
            reload: vec!["nginx".into(), "-s".into(), "reload".into()],
            pid_file: None,
            timeout: Span(10_000),
        })
    );
    let command = format!("[router]\nkind = \"command\"\nset_weight = [\"kubectl\", \"patch\", \"-p\", '{{\"spec\":{{\"weight\":{{weight}}}}}}', \"{{deployment}}\"]\n\n{PROMETHEUS}");
    assert_eq!(
        router(&command),
        Router::Command(CommandRouter {
            set_weight: vec![
                "kubectl".into(),
                "patch".into(),
                "-p".into(),
                "{\"spec\":{\"weight\":{weight}}}".into(),
                "{deployment}".into()
            ],
            get_weight: None,
            timeout: Span(10_000),
        })
    );
}

#[test]
fn every_mistake_of_a_router_section_is_located_and_reported_at_once() {
    let all = messages("[router]\nkind = \"haproxy\"\nsocket = \"10.0.0.9:9999\"\nbackend = \"app two\"\nstable = [\"s1\", \"s1\", \"c1\"]\ncanary = [\"c1\"]\nadmin = \"http://127.0.0.1:9901\"\nset_weight = [\"x\"]\ntimeout = \"2h\"\n");
    for needle in [
        "13:10: router.socket: 10.0.0.9:9999 is not a loopback address; HAProxy's runtime API has no authentication",
        "14:11: router.backend: \"app two\" is not a name",
        "15:17: router.stable: \"s1\" is listed twice",
        "16:11: router.canary: \"c1\" is also a stable server; a server belongs to one side",
        "17:9: router.admin: belongs to kind = \"ramp\" or \"etcd\"; kind = \"haproxy\" takes socket, backend, stable, canary, timeout",
        "18:14: router.set_weight: belongs to kind = \"command\"",
        "19:11: router.timeout: 120 min is longer than 10 min",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    let all = messages("[router]\nkind = \"command\"\nset_weight = [\"set\", \"{weight}\", \"{percent}\"]\nget_weight = [\"get\", \"{weight}\"]\nstable = \"s\"\n");
    for needle in [
        "router.set_weight entry 3: unknown placeholder {percent}; expected {weight}, {weight_bp}, {deployment}, {run}",
        "router.get_weight entry 2: unknown placeholder {weight}; expected {deployment}, {run}",
        "router.stable: belongs to kind = \"haproxy\" or \"nginx\"",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    let all = messages("[router]\nsocket = \"./h.sock\"\n");
    assert!(
        all.contains("12:10: router.socket: belongs to kind = \"haproxy\"; without kind, [router] is a Ramp proxy (admin or proxy_config); add kind = \"haproxy\""),
        "{all}"
    );
    let all = messages("[router]\nkind = \"traefik\"\n");
    assert!(
        all.contains("12:8: router.kind: \"traefik\" is not a router kind"),
        "{all}"
    );
    let all = messages("[router]\nkind = \"command\"\n");
    assert!(
        all.contains("router: missing required key `set_weight`"),
        "{all}"
    );
    let all = messages("[router]\n");
    assert!(all.contains("11:1: router: names no router"), "{all}");
    let all = messages("[router]\nkind = \"ramp\"\nadmin = [\"http://10.0.0.1:9901\", \"http://10.0.0.1:9901/\"]\n");
    for needle in [
        "router.admin: \"http://10.0.0.1:9901\" is not a loopback address, so anyone who can reach it could move the traffic; set admin_token_file",
        "router.admin: \"http://10.0.0.1:9901\" is listed twice",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    let all = messages("[router]\nkind = \"nginx\"\nupstream_file = \"u.conf\"\nupstream = \"app\"\nstable = \"localhost\"\ncanary = []\ntest = \"nginx -t\"\n");
    for needle in [
        "router.stable: \"localhost\" is not a server as host:port",
        "router.canary: is an empty list",
        "router.test: expected an array of the program and its arguments",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
}

#[test]
fn a_router_without_counters_of_its_own_needs_prometheus() {
    let command = "[router]\nkind = \"command\"\nset_weight = [\"set\", \"{weight}\"]\n";
    let all = messages(command);
    assert!(
        all.contains("12:8: metrics.source: reads the router's own counters (\"proxy\", the default); a command router has no counters of its own; set [metrics] source = \"prometheus\""),
        "{all}"
    );
    router(&format!("{command}\n{PROMETHEUS}"));
    let haproxy = "[router]\nkind = \"haproxy\"\nsocket = \"./h.sock\"\nbackend = \"app\"\nstable = \"s\"\ncanary = \"c\"\n";
    // HAProxy's own counters serve request and error gates ...
    router(haproxy);
    // ... but not latency gates, which would never have data.
    let src = format!("{MINIMAL}gates.p99_ms = {{ max = 800 }}\n\n{haproxy}");
    let all = errs(&src)
        .into_iter()
        .map(|(_, _, m)| m)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        all.contains("HAProxy's `show stat`) count requests and errors but no latency, so stage 1's p99_ms gate would never have data; set [metrics] source = \"prometheus\""),
        "{all}"
    );
    ok(&format!("{src}\n{PROMETHEUS}"));
}

#[test]
fn an_etcd_router_takes_endpoints_a_prefix_and_the_followers_admin_apis() {
    assert_eq!(
        router("[router]\nkind = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\", \"http://127.0.0.1:2381/\"]\nadmin = [\"http://127.0.0.1:9901\", \"http://127.0.0.1:9902\"]\n"),
        Router::Etcd(EtcdRouter {
            endpoints: vec!["http://127.0.0.1:2379".into(), "http://127.0.0.1:2381".into()],
            prefix: "/ramp".into(),
            members: vec!["http://127.0.0.1:9901".into(), "http://127.0.0.1:9902".into()],
            token_file: None,
        })
    );
    let prometheus = router(&format!(
        "[router]\nkind = \"etcd\"\nendpoints = \"http://10.0.0.5:2379\"\nprefix = \"/team-a\"\n\n{PROMETHEUS}"
    ));
    assert!(
        matches!(&prometheus, Router::Etcd(e) if e.prefix == "/team-a" && e.members.is_empty()),
        "{prometheus:?}"
    );
}

#[test]
fn an_etcd_routers_mistakes_are_located_at_once() {
    assert_eq!(
        messages("[router]\nkind = \"etcd\"\nendpoints = [\"127.0.0.1:2379\"]\nprefix = \"ramp\"\nadmin_token_file = \"t\"\nsocket = \"x\"\n"),
        [
            "13:14: router.endpoints: \"127.0.0.1:2379\" is not a URL; expected an http:// URL such as \"http://127.0.0.1:2379\"",
            "14:10: router.prefix: \"ramp\" must start with '/' and be at most 256 printable characters without spaces, such as \"/ramp\"",
            "15:20: router.admin_token_file: applies only with router.admin, the admin APIs it authenticates to; remove it or set admin",
            "16:10: router.socket: belongs to kind = \"haproxy\"; kind = \"etcd\" takes endpoints, prefix, admin, admin_token_file",
        ]
        .join("\n")
    );
    // Without endpoints and without a [store], the router names no cluster.
    let m = messages("[router]\nkind = \"etcd\"\nadmin = \"http://127.0.0.1:9901\"\n");
    assert!(m.contains("missing required key `endpoints`"), "{m}");
    // Without the followers' admin APIs there is nothing to read metrics from.
    let m = messages("[router]\nkind = \"etcd\"\nendpoints = \"http://127.0.0.1:2379\"\n");
    assert!(m.contains("router.admin lists none"), "{m}");
}

#[test]
fn an_etcd_router_uses_the_stores_cluster_unless_it_names_one() {
    let store = "[store]\netcd = [\"http://10.0.0.1:2379\", \"http://10.0.0.2:2379\"]\nprefix = \"/team-a\"\n";
    let plan = format!("[router]\nkind = \"etcd\"\nadmin = \"http://127.0.0.1:9901\"\n\n{store}");
    let Router::Etcd(e) = router(&plan) else {
        panic!("an etcd router")
    };
    assert_eq!(
        e.endpoints,
        ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
    );
    assert_eq!(e.prefix, "/team-a");
    let own = format!("[router]\nkind = \"etcd\"\nendpoints = \"http://10.0.0.9:2379\"\nprefix = \"/weights\"\nadmin = \"http://127.0.0.1:9901\"\n\n{store}");
    let Router::Etcd(e) = router(&own) else {
        panic!("an etcd router")
    };
    assert_eq!(e.endpoints, ["http://10.0.0.9:2379"]);
    assert_eq!(e.prefix, "/weights");
}
