//! Entry points for the coverage-guided fuzzers of `fuzz/` (and the replay of their seed
//! corpora in this crate's tests).
//!
//! Each function takes the bytes a fuzzer generated, feeds them to the parser that reads them
//! in production, and checks what the parser promises besides not panicking: errors located
//! inside the text and one line each, every flag of an accepted file evaluable for any user,
//! every response body valid JSON. A broken promise is a panic, which the fuzzer records as
//! a crash. The module is hidden from the documentation because it is a test harness, not
//! an API; it is compiled into every build so that the fuzzers (a separate workspace) and the
//! unit tests that replay the corpora call the very same code (see `docs/reliability.md`).

use crate::flags::{parse_flags_file, FlagKind, FlagSet, FlagState, Live, ScheduleClock};
use crate::located::LocatedError;
use crate::BASIS_POINTS;
use std::time::Duration;

/// The file name the fuzzed texts are reported under.
const FILE: &str = "fuzz.toml";

/// Checks the located errors of one text read as `file`: at least one, each naming `file`, at
/// a real line and column of `source` (the column at most one past the line's last
/// character), with a message of one non-empty line, all in file order.
///
/// Shared with the plan loader's fuzzer in `ramp-core`, since every TOML file Ramp reads
/// reports its problems as [`LocatedError`]s.
pub fn check_located(source: &str, file: &str, errors: &[LocatedError]) {
    assert!(!errors.is_empty(), "a rejected file has at least one error");
    let lines: Vec<&str> = source.split('\n').collect();
    for e in errors {
        assert!(e.line >= 1 && e.column >= 1, "{e}");
        assert!(
            e.line <= lines.len(),
            "{e} is past the last line {}",
            lines.len()
        );
        let width = lines[e.line - 1].chars().count();
        assert!(
            e.column <= width + 1,
            "{e} is past the end of its line ({width} characters)"
        );
        assert!(!e.message.trim().is_empty(), "{e} has no message");
        assert!(
            !e.message.contains('\n') && !e.message.contains('\r'),
            "the message of {e:?} is not one line"
        );
        assert_eq!(e.file, file, "{e}");
    }
    assert!(
        errors
            .windows(2)
            .all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column)),
        "errors are not in file order: {errors:?}"
    );
}

/// Checks that no error of a rejected file `source` is serde's own: the loaders report every
/// unknown key and every value of the wrong type or range themselves, all at once, so a
/// message in serde's words means one slipped through and stopped the whole file. A text
/// that is not TOML is the exception: its first syntax error is reported alone, in the toml
/// parser's words (which may be serde's, as in "invalid value").
///
/// Shared with the plan loader's fuzzer in `ramp-core`, which makes the same promise.
pub fn check_no_serde_error(source: &str, errors: &[LocatedError]) {
    if toml::de::DeTable::parse(source).is_err() {
        assert_eq!(
            errors.len(),
            1,
            "a syntax error is reported alone: {errors:?}"
        );
        return;
    }
    for e in errors {
        for words in [
            "invalid type",
            "invalid value",
            "unknown field",
            "overflowed",
        ] {
            assert!(
                !e.message.contains(words),
                "a serde error stopped the whole file: {e}"
            );
        }
    }
}

/// Fuzzes the flags file (`[flags.NAME]` tables): `parse_flags_file`, as `ramp flags serve`
/// and `ramp run` read it.
///
/// A rejected text must pass [`check_located`] and [`check_no_serde_error`]; bytes that are
/// not UTF-8 are located as `load_flags_file` locates them. An accepted one must give a
/// [`FlagSet`] whose every flag evaluates, for every published weight and schedule clock and
/// with or without a targeting key, to one of its own variants, and whose pre-rendered JSON
/// fragments (which the OFREP server splices into its responses unchecked) are valid JSON of
/// the flag's kind.
pub fn flags_file(data: &[u8]) {
    let source = match std::str::from_utf8(data) {
        Ok(source) => source,
        Err(e) => {
            let error = LocatedError::at_invalid_utf8(data, &e, FILE, "not UTF-8".into());
            let prefix = std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default();
            check_located(prefix, FILE, &[error]);
            return;
        }
    };
    match parse_flags_file(source, FILE) {
        Err(errors) => {
            check_located(source, FILE, &errors.0);
            check_no_serde_error(source, &errors.0);
        }
        Ok(set) => check_flag_set(&set),
    }
}

/// The weights and clocks an accepted flag set is evaluated under.
fn lives() -> [Live; 9] {
    let live = |rollout_bp, schedule| Live {
        rollout_bp,
        schedule,
    };
    [
        live(None, ScheduleClock::NotStarted),
        live(Some(0), ScheduleClock::At(0)),
        live(Some(1), ScheduleClock::At(1)),
        live(Some(2_500), ScheduleClock::At(60_000)),
        live(Some(9_999), ScheduleClock::At(3_600_000)),
        live(Some(BASIS_POINTS), ScheduleClock::At(u64::MAX)),
        live(Some(u32::MAX), ScheduleClock::At(u64::MAX - 1)),
        live(Some(0), ScheduleClock::RolledBack),
        live(None, ScheduleClock::RolledBack),
    ]
}

/// Checks every promise an accepted flag set makes (see [`flags_file`]).
fn check_flag_set(set: &FlagSet) {
    assert!(!set.flags().is_empty(), "an accepted file has flags");
    assert!(
        set.flags().windows(2).all(|w| w[0].key() < w[1].key()),
        "flags are sorted by key, without duplicates"
    );
    for flag in set.flags() {
        assert!(std::ptr::eq(set.get(flag.key()).unwrap(), flag));
        assert_json(flag.key_json());
        assert_json(flag.metadata_json());
        assert!(!flag.variants().is_empty());
        for variant in flag.variants() {
            assert_json(variant.name_json());
            let value = assert_json(variant.value_json());
            let matches_kind = match flag.kind() {
                FlagKind::Boolean => value.is_boolean(),
                FlagKind::String => value.is_string(),
                FlagKind::Integer => value.is_i64() || value.is_u64(),
                FlagKind::Float => value.is_f64(),
                FlagKind::Object => value.is_object(),
            };
            assert!(
                matches_kind,
                "{} is not a {}",
                variant.value_json(),
                flag.kind().name()
            );
        }
        for live in lives() {
            if let Some(bp) = flag.weight_bp(live) {
                assert!(bp <= BASIS_POINTS, "{} at {bp} bp", flag.key());
            }
            for key in [None, Some(""), Some("user-1"), Some("\u{0}é")] {
                let Ok(resolution) = flag.evaluate(live, key) else {
                    assert!(key.is_none_or(str::is_empty), "a key was given but missing");
                    continue;
                };
                match resolution.variant {
                    Some(v) => assert!(flag.variants().iter().any(|w| std::ptr::eq(v, w))),
                    None => assert!(!flag.enabled(), "only a disabled flag serves no value"),
                }
            }
        }
    }
    // The schedule clock: quantized times never move forward, the next change is later.
    for elapsed in [0, 1, 59_999, 3_600_000, u64::MAX].map(Duration::from_millis) {
        assert!(set.schedule_epoch(elapsed) <= elapsed);
        if let Some(next) = set.next_schedule_change(elapsed) {
            assert!(next > elapsed);
        }
    }
    let state = FlagState::new(set.clone());
    state.set_schedule_elapsed(Duration::MAX);
    state.roll_back();
    state.set_schedule_elapsed(Duration::ZERO);
}

/// Parses one pre-rendered JSON fragment, which must be valid on its own.
fn assert_json(fragment: &str) -> serde_json::Value {
    match serde_json::from_str(fragment) {
        Ok(value) => value,
        Err(e) => panic!("{fragment:?} is not JSON: {e}"),
    }
}

#[cfg(feature = "server")]
pub use ofrep::ofrep_request;

/// The OFREP server's request parsing (behind the `server` feature, as the server is).
#[cfg(feature = "server")]
mod ofrep {
    use super::assert_json;
    use crate::flags::{parse_flags_file, FlagState, Snapshot};
    use crate::ofrep::protocol::{self, BadRequest, BulkContext};
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    /// The flags the fuzzed requests are evaluated against: one of each kind of rollout, so
    /// that a targeting key or its absence matters to some of them.
    const FLAGS: &str = r##"
[flags.checkout_v2]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
follow = "rollout"

[flags.banner_color]
variants = { red = "#f00", blue = "#00f" }
default_variant = "red"
on_variant = "blue"
weight = 12.5
metadata = { owner = "web", ticket = 42 }

[flags.new_search]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
schedule = [ { after = "0s", weight = 1 }, { after = "30m", weight = 50 } ]

[flags.limits]
variants = { small = { rps = 10 }, large = { rps = 1000 } }
default_variant = "small"

[flags.retired]
variants = { on = 1.5, off = 0.5 }
default_variant = "off"
on_variant = "on"
weight = 100
enabled = false
"##;

    /// The snapshot every fuzzed request is evaluated against: the flags above at a live
    /// weight of 25 % and 40 minutes into their schedules.
    fn snapshot() -> Arc<Snapshot> {
        static SNAPSHOT: OnceLock<Arc<Snapshot>> = OnceLock::new();
        SNAPSHOT
            .get_or_init(|| {
                let set =
                    parse_flags_file(FLAGS, "fuzz.toml").expect("the fuzzing flags are valid");
                let state = FlagState::new(set);
                state.set_rollout_weight_bp(2_500).expect("a valid weight");
                state.set_schedule_elapsed(Duration::from_secs(40 * 60));
                state.snapshot()
            })
            .clone()
    }

    /// Fuzzes what an OFREP client controls: the body of a single evaluation
    /// (`parse_single`) and of a bulk one (`parse_bulk`), and, read as text, an
    /// `If-None-Match` field and a flag key's path segment.
    ///
    /// Both parsers must agree (a body the stricter bulk parser accepts is accepted by the
    /// single one, with the same targeting key), every response written from the result must
    /// be valid JSON, and the bulk ETag must be a stable quoted hex tag that matches itself.
    pub fn ofrep_request(data: &[u8]) {
        let snapshot = snapshot();
        let single = protocol::parse_single(data);
        match &single {
            Ok(key) => {
                for flag in snapshot.flags().flags() {
                    let body = match snapshot.evaluate(flag.key(), key.as_deref()) {
                        Ok(r) => protocol::success_body(&r),
                        Err(e) => protocol::failure_body(flag.key(), &e),
                    };
                    assert_body(&body);
                }
            }
            Err(BadRequest(details)) => {
                let body =
                    protocol::request_failure_body(Some("checkout_v2"), "INVALID_CONTEXT", details);
                assert_body(&body);
            }
        }
        let bulk = protocol::parse_bulk(data);
        match &bulk {
            Ok(ctx) => {
                let key = ctx.targeting_key().expect("parse_bulk checked the key");
                if let Ok(single) = &single {
                    assert_eq!(single.as_deref(), key, "the endpoints read different keys");
                } else {
                    panic!("the bulk endpoint accepts a body the single one refuses");
                }
                check_bulk(&snapshot, ctx, key, data);
            }
            Err(BadRequest(details)) => {
                assert_body(&protocol::request_failure_body(
                    None,
                    "INVALID_CONTEXT",
                    details,
                ));
            }
        }
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = protocol::if_none_match(text, "\"0123456789abcdef0123456789abcdef\"");
            if let Some(decoded) = protocol::percent_decode(text) {
                assert!(decoded.len() <= text.len());
            }
        }
    }

    /// Checks a bulk evaluation of an accepted body: the ETag and the response.
    fn check_bulk(snapshot: &Snapshot, ctx: &BulkContext, key: Option<&str>, data: &[u8]) {
        let etag = protocol::bulk_etag(snapshot, ctx);
        assert_eq!(etag.len(), 34, "{etag}");
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        assert!(etag[1..33].bytes().all(|b| b.is_ascii_hexdigit()), "{etag}");
        assert!(protocol::if_none_match(&etag, &etag));
        assert!(protocol::if_none_match(&format!("W/{etag}, \"x\""), &etag));
        let again = protocol::parse_bulk(data).expect("the same body parses again");
        assert_eq!(
            protocol::bulk_etag(snapshot, &again),
            etag,
            "the ETag is not stable"
        );
        let mut served = 0;
        let body = protocol::bulk_body(snapshot, key, |_| served += 1);
        let value = assert_body(&body);
        let flags = value["flags"].as_array().expect("a `flags` array");
        assert_eq!(flags.len(), snapshot.flags().flags().len());
        assert!(served <= flags.len());
    }

    /// Parses a response body, which must be one JSON object.
    fn assert_body(body: &[u8]) -> serde_json::Value {
        let text = std::str::from_utf8(body).expect("a response body is UTF-8");
        let value = assert_json(text);
        assert!(value.is_object(), "{text}");
        value
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// The seed corpora of `fuzz/`, from this crate's directory.
    fn corpus(target: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target)
    }

    /// Runs every seed of one target's corpus through its entry point.
    fn replay(target: &str, entry: fn(&[u8])) {
        let dir = corpus(target);
        let mut seeds = 0;
        for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = file.unwrap().path();
            entry(&std::fs::read(&path).unwrap());
            seeds += 1;
        }
        assert!(seeds > 0, "{} has no seeds", dir.display());
    }

    #[test]
    fn replays_the_flags_file_corpus() {
        replay("flags_file", super::flags_file);
    }

    #[cfg(feature = "server")]
    #[test]
    fn replays_the_ofrep_corpus() {
        replay("ofrep", super::ofrep_request);
    }

    #[test]
    fn every_fuzz_target_has_a_seed_corpus() {
        let bins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/src/bin");
        let mut targets = 0;
        for file in std::fs::read_dir(&bins).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let seeds = std::fs::read_dir(corpus(&name)).map_or(0, |d| d.count());
            assert!(seeds > 0, "the fuzz target {name} has no seed corpus");
            targets += 1;
        }
        assert!(
            targets >= 5,
            "only {targets} fuzz targets in {}",
            bins.display()
        );
    }
}
