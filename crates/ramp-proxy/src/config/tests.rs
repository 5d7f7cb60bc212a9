//! Tests of the configuration loader: located problems, every problem at once, flag mode,
//! and the percentage conversions.

use super::*;

/// The first problem of a load, which each test of a single mistake looks at.
fn first(errors: ConfigErrors) -> ConfigError {
    errors.0.into_iter().next().expect("at least one problem")
}

#[test]
fn unknown_key_is_reported_with_line_and_column() {
    let text = "stable = [\"127.0.0.1:1\"]\ncanary = [\"127.0.0.1:2\"]\nlisten_port = 5\n";
    match parse_toml(Path::new("p.toml"), text).map_err(first) {
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
    match parse_toml(Path::new("f.toml"), "[flag]\nkey = \"k\"\nsalty = \"x\"\n").map_err(first) {
        Err(ConfigError::Parse { line, message, .. }) => {
            assert_eq!(line, 3);
            assert!(message.contains("salty"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

/// Parses and validates text as `Config::load` does a file named `p.toml`.
fn load_text(text: &str) -> Result<Config, ConfigErrors> {
    ConfigFile::parse(Path::new("p.toml"), text)?.validate()
}

#[test]
fn three_independent_mistakes_are_reported_at_once_and_located() {
    let text = "listen = \"0.0.0.0:80:1\"\nstable = [\"127.0.0.1:1\"]\ncanary = [\"127.0.0.1:2\"]\ncolour = \"blue\"\n\n[limits]\nmax_headers = 0\n";
    let e = load_text(text).unwrap_err();
    assert_eq!(
        e.to_string(),
        [
            "p.toml:1:10: `listen`: \"0.0.0.0:80:1\" is not an IP:port socket address",
            "p.toml:4:1: unknown field `colour`, expected one of `listen`, `admin_listen`, `admin_token_file`, `deployment_id`, `state_file`, `initial_canary_weight`, `stable`, `canary`, `sticky`, `timeouts`, `limits`, `health`, `upstream_protocol`, `mode`, `upstream`, `flag`, `etcd`",
            "p.toml:7:15: `limits.max_headers`: 0 is out of range (1 to 1000)",
        ]
        .join("\n")
    );
}

#[test]
fn a_value_of_the_wrong_type_is_reported_once_and_every_bad_address_at_its_entry() {
    // `fall` is set aside after its own error, so the default applies and nothing follows
    // from it; `stable`, set aside too, is not reported again as missing.
    let text = "stable = \"127.0.0.1:1\"\ncanary = [\"127.0.0.1:2\", \"localhost\", \"x\"]\n\n[health]\nfall = \"two\"\n";
    let e = load_text(text).unwrap_err();
    assert_eq!(
        e.to_string(),
        [
            "p.toml:1:10: invalid type: string \"127.0.0.1:1\", expected a sequence",
            "p.toml:2:26: `canary`: \"localhost\" is not an IP:port socket address",
            "p.toml:2:39: `canary`: \"x\" is not an IP:port socket address",
            "p.toml:5:8: invalid type: string \"two\", expected u32",
        ]
        .join("\n")
    );
}

#[test]
fn a_missing_value_has_no_place_and_comes_last() {
    let text = "canary = [\"127.0.0.1:2\"]\nmode = \"versions\"\nupstream_protocol = \"h3\"\n";
    let e = load_text(text).unwrap_err();
    assert_eq!(
        e.to_string(),
        [
            "p.toml:3:21: `upstream_protocol`: \"h3\" is not one of \"http1\", \"h2c\"",
            "p.toml: `stable`: at least one upstream address is required",
        ]
        .join("\n")
    );
    // A syntax error stops at stage one, alone.
    let e = load_text("stable = [\n").unwrap_err();
    assert_eq!(e.to_string(), "p.toml:1:11: unclosed array, expected `]`");
}

#[test]
fn percent_conversion() {
    assert_eq!(percent_to_bp(5.0), Some(500));
    assert_eq!(percent_to_bp(0.01), Some(1));
    assert_eq!(percent_to_bp(100.0), Some(10_000));
    assert_eq!(percent_to_bp(-1.0), None);
    assert_eq!(percent_to_bp(f64::NAN), None);
}

#[test]
fn flag_mode_mistakes_are_reported_together() {
    let text = "mode = \"flag\"\nupstream = [\"127.0.0.1:1\"]\n[flag]\nsalt = \"\"\nstats_window_s = 1\nstats_exact_cap = 0\n";
    let e = load_text(text).unwrap_err();
    assert_eq!(
        e.to_string(),
        [
            // A key missing from a table the file writes is located at the table.
            "p.toml:3:1: `flag.key`: the flag's key is required",
            "p.toml:4:8: `flag.salt`: expected a non-empty string of at most 256 characters (the flag's `salt`)",
            "p.toml:5:18: `flag.stats_window_s`: 1 is out of range (3 to 86400 seconds)",
            "p.toml:6:19: `flag.stats_exact_cap`: the exact-count cap must be between 1 and 10000000 keys, got 0",
            "p.toml: `sticky`: mode = \"flag\" needs `[sticky]` with the `header` or `cookie` that carries the user's key (the flag's targeting key)",
        ]
        .join("\n")
    );
}

#[test]
fn the_client_body_idle_deadline_defaults_to_ten_seconds_and_is_validated_like_the_others() {
    let ok = load_text("stable = [\"127.0.0.1:1\"]\ncanary = [\"127.0.0.1:2\"]\n").expect("valid");
    assert_eq!(ok.client_body_idle_timeout, Duration::from_secs(10));
    let set = load_text(
        "stable = [\"127.0.0.1:1\"]\ncanary = [\"127.0.0.1:2\"]\n[timeouts]\nclient_body_idle_ms = 300\n",
    )
    .expect("valid");
    assert_eq!(set.client_body_idle_timeout, Duration::from_millis(300));
    let e = load_text(
        "stable = [\"127.0.0.1:1\"]\ncanary = [\"127.0.0.1:2\"]\n[timeouts]\nclient_body_idle_ms = 0\n",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "p.toml:4:23: `timeouts.client_body_idle_ms`: 0 ms is out of range (1 ms to 24 h)"
    );
}

/// `[etcd]` needs endpoints that are URLs, a prefix that is a key path and a deployment id
/// that can name a key; each problem is located where the file holds it, all at once.
#[test]
fn the_etcd_section_is_checked_and_located() {
    let text = "stable = [\"127.0.0.1:1\"]\ncanary = [\"127.0.0.1:2\"]\n\n[etcd]\nendpoints = [\"http://127.0.0.1:2379\", \"127.0.0.1:2380\"]\nprefix = \"ramp\"\n";
    let e = load_text(text).unwrap_err();
    assert_eq!(
        e.to_string(),
        [
            "p.toml:4:1: `deployment_id`: following etcd needs `deployment_id` (`--deployment-id`): it names the weight key",
            "p.toml:5:39: `etcd.endpoints`: \"127.0.0.1:2380\" is not an http:// or https:// URL of a host and port",
            "p.toml:6:10: `etcd.prefix`: \"ramp\" must start with '/' and be at most 256 printable characters without spaces",
        ]
        .join("\n")
    );
    let good = "deployment_id = \"checkout\"\nstable = [\"127.0.0.1:1\"]\ncanary = [\"127.0.0.1:2\"]\n\n[etcd]\nendpoints = [\"http://127.0.0.1:2379\"]\n";
    let config = load_text(good).expect("valid");
    let etcd = config.etcd.expect("etcd");
    assert_eq!(etcd.endpoints, vec!["http://127.0.0.1:2379".to_string()]);
    assert_eq!(etcd.prefix, "/ramp");
    assert!(
        load_text("stable = [\"127.0.0.1:1\"]\ncanary = [\"127.0.0.1:2\"]\n")
            .expect("valid")
            .etcd
            .is_none()
    );
}
