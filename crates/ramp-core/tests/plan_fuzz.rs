//! Whatever the input, reading a plan never panics, and every error it reports points
//! inside the text.

use proptest::prelude::*;
use ramp_core::parse_plan;

/// The full fixture, the richest valid input to cut and mutate.
const FULL: &str = include_str!("plans/valid_full.toml");

/// Characters that matter to TOML and to the plan's value syntax, to make mutations bite.
const SPECIAL: &[char] = &[
    '[', ']', '{', '}', '=', '"', '\'', ',', '.', '#', '\n', '%', '-', '+', '0', '9', 'e', 'h',
    'm', 's', ' ', 'é', '\t', '\\',
];

/// Parses `src` and checks that every error is located inside it.
fn check(src: &str) {
    if let Err(errors) = parse_plan(src, "fuzz.toml") {
        assert!(!errors.0.is_empty(), "an Err has at least one error");
        let lines = src.split('\n').count();
        for e in &errors.0 {
            assert!(e.line >= 1 && e.column >= 1, "{e}");
            assert!(e.line <= lines, "{e} is past the last line {lines}");
            assert!(!e.message.is_empty(), "{e}");
            // Wrong types and unknown keys are collected by the loader's own checks; serde's
            // "invalid type" or "unknown field" would mean one slipped through and stopped
            // the whole file.
            assert!(
                !e.message.contains("invalid type") && !e.message.contains("unknown field"),
                "{e}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_text_never_panics(src in "\\PC{0,400}") {
        check(&src);
    }

    #[test]
    fn truncated_plans_never_panic(cut in 0..FULL.len()) {
        let mut cut = cut;
        while !FULL.is_char_boundary(cut) {
            cut -= 1;
        }
        check(&FULL[..cut]);
    }

    #[test]
    fn mutated_plans_never_panic(
        edits in proptest::collection::vec((0..FULL.len(), 0..SPECIAL.len(), any::<bool>()), 1..6)
    ) {
        let mut chars: Vec<char> = FULL.chars().collect();
        for (at, c, replace) in edits {
            let at = at % chars.len();
            if replace {
                chars[at] = SPECIAL[c];
            } else {
                chars.insert(at, SPECIAL[c]);
            }
        }
        let src: String = chars.into_iter().collect();
        check(&src);
    }

    #[test]
    fn odd_values_never_panic(
        key in prop::sample::select(vec![
            "weight", "duration", "checkpoint", "id", "start", "p95_ms", "error_rate",
            "throughput_rps", "window", "min_samples", "gates.p99_ms", "rps", "stable",
            "features", "name", "at", "fault", "deployment", "[[stages]]\nweight",
            "approvals", "admin", "admin_token_file", "listen", "token_env", "http",
            "expect_status", "command", "on", "post", "timeout", "router", "control",
        ]),
        value in prop::sample::select(vec![
            "1e308", "-1e308", "inf", "-inf", "nan", "0", "-0.0", "100.0000001",
            "18446744073709551615", "\"99999999999999999999h\"", "\"1e400s\"", "\"..5m\"",
            "\"\"", "[]", "{}", "true", "2025-10-06T18:00:00Z", "\"1.5.5h\"", "\"0.0000001ms\"",
            "{ max = 1, bogus = 2 }", "[1, \"x\", {}]", "[{}, 5]", "{ a = { b = [] } }", "07:30:00",
            "1979-05-27", "[[\"a\"], {}]", "[\"\"]", "\"\\u0000\"", "[\"a\", \"a\"]", "65536",
            "\"https://x\"", "\"http://[::1\"", "\"0.0.0.0:1\"",
        ]),
    ) {
        let src = FULL.replacen(&format!("{key} = "), &format!("{key} = {value}\n#"), 1);
        check(&src);
    }
}

#[test]
fn extreme_numbers_are_errors_not_panics() {
    for line in [
        "min_samples = 1e300",
        "min_samples = -9223372036854775808",
        "window = \"99999999999999999999999h\"",
        "evaluate_every = \"0.0001ms\"",
        "p95_ms = { max = inf }",
        "p95_ms = { max = nan, warn = nan }",
        "error_rate = { max = \"nan%\" }",
        "error_rate = { max = 1e400 }",
    ] {
        let src = FULL.replacen("window = \"5m\"", line, 1);
        assert!(
            parse_plan(&src, "x.toml").is_err(),
            "{line} should be rejected"
        );
    }
}
