//! Reading plan files: raw serde structs that mirror the TOML, then a validation pass.
//!
//! Stage one parses the text into a spanned TOML tree (`toml::de::DeTable`); a syntax error
//! stops here, reported located. The tree is then checked against the shape of the private
//! `Raw*` structs below: every unknown key is reported (naming the key, its table and the
//! keys that were expected) and removed, and so is every value that should be a table or an
//! array but is not. What is left is deserialized into the `Raw*` structs, which cannot fail
//! on a value of the wrong type: every leaf value (`Num`, `NumOrText`, `Dur`, `StartValue`,
//! `Text`, and `TextList` for a string or an array of strings) accepts any TOML value and
//! keeps a wrong one as `Wrong(what was found)`, and every value that a later check may
//! blame is wrapped in `toml::Spanned` so that the check can say where it is.
//!
//! Stage two walks the raw structs, collects every error at once, wrong-typed values and
//! semantic errors alike, together with the unknown keys of stage one (a plan author fixes
//! them all in one pass instead of one per run), and only when there are none builds the
//! validated `crate::plan::Plan`. Nothing in either stage panics, whatever the input.

use crate::plan::{
    Baseline, Bound, Check, Cohort, Control, Deployment, Fault, FaultEffect, Feature, Gate, Hook,
    HookAction, HookEvent, LoadModel, Metric, Plan, Probe, Rehearsal, RelativeGate, Router, Scope,
    SequentialGates, ServiceModel, Simulation, Stage, DEFAULT_SIMULATED_USERS, MAX_SIMULATED_USERS,
};
use crate::units::{parse_rate, PlanTime, Span, Weight};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::value::{Datetime, Offset};
use toml::Spanned;

/// One located problem in a plan file.
///
/// Located so that an editor or a CI log can jump to it: the contract in PRODUCT.md says
/// every error names file, line, column and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: error: {message}")]
pub struct PlanError {
    /// The file, as the caller named it, so that the message points where the user looks.
    pub file: String,
    /// 1-based line of the offending value (or of the table that lacks a key).
    pub line: usize,
    /// 1-based column, counted in characters, of the offending value.
    pub column: usize,
    /// What is wrong and what was expected, in one line.
    pub message: String,
}

/// Every problem found in a plan, in file order.
///
/// A plan is rejected with all of its errors at once so that its author can fix them in one
/// pass; `Display` prints one `file:line:col: error: message` line per error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors(pub Vec<PlanError>);

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanErrors {}

/// Parses and validates plan text; `file` only labels the errors.
///
/// Returns the validated plan, or every error found: the first syntax error when the text is
/// not TOML, else every unknown key, every value of the wrong type and every semantic error,
/// in file order.
pub fn parse_plan(source: &str, file: &str) -> Result<Plan, PlanErrors> {
    let mut root = match DeTable::parse(source) {
        Ok(root) => root,
        Err(e) => {
            let at = e.span().map_or(0, |s| s.start);
            let message = tidy_toml_message(e.message());
            return Err(PlanErrors(vec![locate(source, file, at, message)]));
        }
    };
    let mut v = Validator {
        source,
        file,
        errors: Vec::new(),
        removed: Vec::new(),
    };
    let root_span = root.span();
    v.check_keys(root.get_mut(), &root_span, PLAN, "");
    let raw = match RawPlan::deserialize(toml::de::Deserializer::from(root)) {
        Ok(raw) => Some(raw),
        Err(e) => {
            // Not expected once the tree has been checked, but reported rather than trusted.
            let at = e.span().unwrap_or(0..0);
            v.error(at, tidy_toml_message(e.message()));
            None
        }
    };
    let plan = raw.and_then(|raw| v.plan(&raw));
    if v.errors.is_empty() {
        // Every check passed, so every part was built; `None` here would be a bug in this
        // module, reported as an error rather than a panic.
        plan.ok_or_else(|| {
            PlanErrors(vec![locate(
                source,
                file,
                0,
                "internal error: the plan passed validation but could not be built".into(),
            )])
        })
    } else {
        let mut errors = v.errors;
        errors.sort_by_key(|e| (e.line, e.column));
        errors.dedup();
        Err(PlanErrors(errors))
    }
}

/// Reads, parses and validates a plan file.
///
/// An unreadable file is one error at 1:1 naming the OS error; a file that is not UTF-8 is
/// one error at the first invalid byte.
pub fn load_plan(path: &Path) -> Result<Plan, PlanErrors> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        PlanErrors(vec![PlanError {
            file: file.clone(),
            line: 1,
            column: 1,
            message: format!("cannot read the plan file: {e}"),
        }])
    })?;
    match std::str::from_utf8(&bytes) {
        Ok(source) => parse_plan(source, &file),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            // The prefix is valid UTF-8 by construction; fall back to 1:1 rather than panic.
            let prefix = std::str::from_utf8(valid).unwrap_or("");
            Err(PlanErrors(vec![locate(
                prefix,
                &file,
                prefix.len(),
                "the plan file is not valid UTF-8; expected UTF-8 text".into(),
            )]))
        }
    }
}

/// Builds a `PlanError` at a byte offset of `source`.
fn locate(source: &str, file: &str, offset: usize, message: String) -> PlanError {
    let (line, column) = line_col(source, offset);
    PlanError {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

/// Converts a byte offset into a 1-based line and a 1-based column counted in characters.
///
/// Offsets past the end (or inside a multi-byte character) are clamped, never a panic.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for (i, c) in source.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// Rewords the TOML parser's message for plan authors: one line, and "key" rather than serde's
/// "field" (unknown keys are reported by `Validator::check_keys`; this is only a fallback).
fn tidy_toml_message(message: &str) -> String {
    let one_line = message.trim().replace('\n', "; ");
    match one_line.strip_prefix("unknown field") {
        Some(rest) => format!("unknown key{rest}"),
        None => one_line,
    }
}

// ---------------------------------------------------------------------------------------
// Stage one: raw values and tables, as written.
// ---------------------------------------------------------------------------------------

/// Any TOML value, as a leaf value's deserializer sees it: scalars with their value, arrays
/// and tables only by kind (a leaf never wants them, and says so in stage two).
#[derive(Debug, Clone)]
enum Scalar {
    /// A TOML integer.
    Int(i64),
    /// A TOML float (or an integer too large for `i64`).
    Float(f64),
    /// A TOML string.
    Str(String),
    /// A TOML boolean.
    Bool(bool),
    /// A TOML date-time, date or time.
    Datetime(Datetime),
    /// A TOML array.
    Array,
    /// A TOML table.
    Table,
}

impl Scalar {
    /// The value as a message names it ("the string \"abc\"", "an array").
    fn describe(&self) -> String {
        match self {
            Scalar::Int(i) => format!("the integer {i}"),
            Scalar::Float(x) => format!("the number {}", fmt_num(*x)),
            Scalar::Str(t) => format!("the string {t:?}"),
            Scalar::Bool(b) => format!("the boolean {b}"),
            Scalar::Datetime(d) => format!("the date-time {d}"),
            Scalar::Array => "an array".into(),
            Scalar::Table => "a table".into(),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any TOML value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Scalar, A::Error> {
                Ok(Scalar::Array)
            }
            // The TOML deserializer hands a native date-time over as a one-entry map that
            // `Datetime`'s own `Deserialize` knows how to read; any other map is a table.
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
                Ok(
                    match Datetime::deserialize(de::value::MapAccessDeserializer::new(map)) {
                        Ok(dt) => Scalar::Datetime(dt),
                        Err(_) => Scalar::Table,
                    },
                )
            }
        }
        d.deserialize_any(V)
    }
}

/// Implements `Deserialize` for a leaf type through `Scalar`, so that a value of the wrong
/// type becomes the leaf's `Wrong` variant (reported in stage two) instead of an error.
macro_rules! leaf_from_scalar {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Scalar::deserialize(d).map(<$t>::from)
            }
        }
    };
}

/// A number written as a TOML integer or float, so that `145` and `145.0` mean the same.
#[derive(Debug, Clone)]
enum Num {
    /// A TOML integer or float.
    Num(f64),
    /// Any other value, described for the message.
    Wrong(String),
}

impl From<Scalar> for Num {
    fn from(v: Scalar) -> Num {
        match v {
            Scalar::Int(i) => Num::Num(i as f64),
            Scalar::Float(x) => Num::Num(x),
            other => Num::Wrong(other.describe()),
        }
    }
}

leaf_from_scalar!(Num);

/// A value that may be a number or a string: rates (`"0.28%"` or `0.0028`) and gate
/// thresholds (a rate for `error_rate`, a number for the others). Which one is right is
/// decided in stage two, where the error can be collected with the others.
#[derive(Debug, Clone)]
enum NumOrText {
    /// A TOML integer or float.
    Num(f64),
    /// A TOML string.
    Text(String),
    /// Any other value, described for the message.
    Wrong(String),
}

impl From<Scalar> for NumOrText {
    fn from(v: Scalar) -> NumOrText {
        match v {
            Scalar::Int(i) => NumOrText::Num(i as f64),
            Scalar::Float(x) => NumOrText::Num(x),
            Scalar::Str(t) => NumOrText::Text(t),
            other => NumOrText::Wrong(other.describe()),
        }
    }
}

leaf_from_scalar!(NumOrText);

/// A duration as written: normally a string such as `"15m"`; a bare number is kept apart
/// only so that stage two can say which unit is missing.
#[derive(Debug, Clone)]
enum Dur {
    /// A TOML string, parsed with `Span::parse`.
    Text(String),
    /// A TOML number, which is always an error (it has no unit).
    Num(f64),
    /// Any other value, described for the message.
    Wrong(String),
}

impl From<Scalar> for Dur {
    fn from(v: Scalar) -> Dur {
        match v {
            Scalar::Str(t) => Dur::Text(t),
            Scalar::Int(i) => Dur::Num(i as f64),
            Scalar::Float(x) => Dur::Num(x),
            other => Dur::Wrong(other.describe()),
        }
    }
}

leaf_from_scalar!(Dur);

/// The deployment start: an RFC 3339 string or a native TOML offset date-time.
#[derive(Debug, Clone)]
enum StartValue {
    /// A TOML string, parsed as a TOML date-time in stage two.
    Text(String),
    /// A native TOML date-time (`start = 2025-10-06T18:00:00Z`).
    Datetime(Datetime),
    /// Any other value, described for the message.
    Wrong(String),
}

impl From<Scalar> for StartValue {
    fn from(v: Scalar) -> StartValue {
        match v {
            Scalar::Str(t) => StartValue::Text(t),
            Scalar::Datetime(dt) => StartValue::Datetime(dt),
            other => StartValue::Wrong(other.describe()),
        }
    }
}

leaf_from_scalar!(StartValue);

/// A string value: names, ids, scopes and cohorts.
#[derive(Debug, Clone)]
enum Text {
    /// A TOML string.
    Text(String),
    /// Any other value, described for the message.
    Wrong(String),
}

impl From<Scalar> for Text {
    fn from(v: Scalar) -> Text {
        match v {
            Scalar::Str(t) => Text::Text(t),
            other => Text::Wrong(other.describe()),
        }
    }
}

leaf_from_scalar!(Text);

/// A string or an array of strings, as written: a command's argv, a stage's approvals and a
/// hook's events. The array keeps each entry's span, so that a bad entry is blamed where it
/// is; a single string is kept apart so that stage two can accept it (`on = "rollback"`) or
/// explain why it is wrong (a command is never a shell string).
#[derive(Debug, Clone)]
enum TextList {
    /// A TOML string.
    One(String),
    /// A TOML array; each entry is a lenient string, so a wrong entry is reported in stage two.
    Many(Vec<S<Text>>),
    /// Any other value, described for the message.
    Wrong(String),
}

impl<'de> Deserialize<'de> for TextList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TextList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<TextList, E> {
                Ok(TextList::Wrong(Scalar::Bool(v).describe()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TextList, E> {
                Ok(TextList::Wrong(Scalar::Int(v).describe()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TextList, E> {
                Ok(TextList::Wrong(
                    i64::try_from(v)
                        .map_or(Scalar::Float(v as f64), Scalar::Int)
                        .describe(),
                ))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<TextList, E> {
                Ok(TextList::Wrong(Scalar::Float(v).describe()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TextList, E> {
                Ok(TextList::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextList, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = seq.next_element::<S<Text>>()? {
                    out.push(entry);
                }
                Ok(TextList::Many(out))
            }
            // As in `Scalar`: a native date-time arrives as a one-entry map.
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TextList, A::Error> {
                let found = match Datetime::deserialize(de::value::MapAccessDeserializer::new(map))
                {
                    Ok(dt) => Scalar::Datetime(dt),
                    Err(_) => Scalar::Table,
                };
                Ok(TextList::Wrong(found.describe()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A spanned value, the form every blameable raw field takes.
type S<T> = Spanned<T>;

/// The whole plan file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    /// `[deployment]`, required.
    deployment: Option<S<RawDeployment>>,
    /// `[baseline]`, optional.
    baseline: Option<S<RawBaseline>>,
    /// `[gates]`, the defaults for every stage.
    gates: Option<S<RawGates>>,
    /// `[[stages]]`, at least one.
    stages: Option<S<Vec<S<RawStage>>>>,
    /// `[simulation]`, optional.
    simulation: Option<S<RawSimulation>>,
    /// `[[rehearsals]]`, optional; they need `[simulation]`.
    rehearsals: Option<S<Vec<S<RawRehearsal>>>>,
    /// `[router]`, optional; a live run needs it.
    router: Option<S<RawRouter>>,
    /// `[control]`, optional.
    control: Option<S<RawControl>>,
    /// `[[checks]]`, optional.
    checks: Option<S<Vec<S<RawCheck>>>>,
    /// `[[hooks]]`, optional.
    hooks: Option<S<Vec<S<RawHook>>>>,
    /// `[flags.NAME]`, optional: ramp-flags' own raw tables, validated by ramp-flags.
    flags: Option<S<ramp_flags::flags::raw::RawFlags>>,
    /// `[ofrep]`, optional.
    ofrep: Option<S<RawOfrep>>,
}

/// `[ofrep]`: where a live run serves its flags.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOfrep {
    /// Socket address to serve OFREP on.
    listen: Option<S<Text>>,
    /// File holding the token clients must send.
    token_file: Option<S<Text>>,
}

/// `[router]`: exactly one of `admin` and `proxy_config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouter {
    /// Base URL of a running `ramp proxy`'s admin API.
    admin: Option<S<Text>>,
    /// File holding the admin API's bearer token; only with `admin`.
    admin_token_file: Option<S<Text>>,
    /// A `ramp proxy` configuration file to start a proxy in-process from.
    proxy_config: Option<S<Text>>,
}

/// `[control]`: every key optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    /// Socket address of the control API.
    listen: Option<S<Text>>,
    /// File holding the control API's bearer token.
    token_file: Option<S<Text>>,
    /// Environment variable holding the control API's bearer token.
    token_env: Option<S<Text>>,
}

/// One `[[checks]]` entry: exactly one of `http` and `command`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    /// Name; required and unique.
    name: Option<S<Text>>,
    /// URL to GET.
    http: Option<S<Text>>,
    /// Status the GET must answer; default 200, only with `http`.
    expect_status: Option<S<Num>>,
    /// Program and arguments.
    command: Option<S<TextList>>,
    /// Time limit; default 10 s.
    timeout: Option<S<Dur>>,
}

/// One `[[hooks]]` entry: exactly one of `post` and `command`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    /// Name; required and unique.
    name: Option<S<Text>>,
    /// The events that run it: one name or an array; required.
    on: Option<S<TextList>>,
    /// URL to POST the event to.
    post: Option<S<Text>>,
    /// Program and arguments.
    command: Option<S<TextList>>,
    /// Time limit; default 10 s.
    timeout: Option<S<Dur>>,
}

/// `[deployment]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    /// The deployment id; required.
    id: Option<S<Text>>,
    /// The service; required.
    service: Option<S<Text>>,
    /// The environment; required.
    environment: Option<S<Text>>,
    /// The wall-clock start; optional.
    start: Option<S<StartValue>>,
}

/// `[baseline]`: every key optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    /// Median latency, ms.
    p50_ms: Option<S<Num>>,
    /// 95th-percentile latency, ms.
    p95_ms: Option<S<Num>>,
    /// 99th-percentile latency, ms.
    p99_ms: Option<S<Num>>,
    /// Error rate, a rate.
    error_rate: Option<S<NumOrText>>,
    /// Service throughput, requests per second.
    throughput_rps: Option<S<Num>>,
}

/// `[gates]`: evaluation settings and the default gate of each metric.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGates {
    /// How often gates are evaluated; default 5 s.
    evaluate_every: Option<S<Dur>>,
    /// Default window of every gate; default 5 min.
    window: Option<S<Dur>>,
    /// Default minimum sample count of every gate; default 100.
    min_samples: Option<S<Num>>,
    /// Default P50 gate.
    p50_ms: Option<S<RawGate>>,
    /// Default P95 gate.
    p95_ms: Option<S<RawGate>>,
    /// Default P99 gate.
    p99_ms: Option<S<RawGate>>,
    /// Default error-rate gate.
    error_rate: Option<S<RawGate>>,
    /// Default throughput gate.
    throughput_rps: Option<S<RawGate>>,
    /// Canary-versus-stable sequential tests.
    sequential: Option<S<RawSequential>>,
    /// Relative gates by metric.
    relative: Option<S<RawRelative>>,
    /// Multiwindow burn-rate gates.
    burn_rate: Option<S<RawBurnRate>>,
    /// The fixed-horizon Mann-Whitney test at stage ends.
    mann_whitney: Option<S<RawMannWhitney>>,
}

/// `[gates.burn_rate]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBurnRate {
    /// The SLO ("99.9%" or 0.999).
    slo: Option<S<NumOrText>>,
}

/// `[gates.mann_whitney]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMannWhitney {
    /// The test's level.
    alpha: Option<S<NumOrText>>,
}

/// `[gates.relative]`: canary against stable over the same window, by metric.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelative {
    /// P50 ratio gate.
    p50_ms: Option<S<RawRelativeGate>>,
    /// P95 ratio gate.
    p95_ms: Option<S<RawRelativeGate>>,
    /// P99 ratio gate.
    p99_ms: Option<S<RawRelativeGate>>,
    /// Error-rate ratio gate.
    error_rate: Option<S<RawRelativeGate>>,
}

/// One relative gate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelativeGate {
    /// The largest canary / stable ratio: "+10%", "1.5x" or a number (1.1).
    max: Option<S<NumOrText>>,
    /// Window overriding `[gates].window`.
    window: Option<S<Dur>>,
    /// Sample count (per cohort) overriding `[gates].min_samples`.
    min_samples: Option<S<Num>>,
}

/// `[gates.sequential]`: which sequential tests run, each with its settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSequential {
    /// The error-count test.
    errors: Option<S<RawSequentialTest>>,
    /// The latency-distribution test.
    latency: Option<S<RawSequentialTest>>,
}

/// One sequential test's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSequentialTest {
    /// The false-rollback budget of the test per stage.
    alpha: Option<S<NumOrText>>,
    /// The practical-effect floor (latency only).
    floor: Option<S<NumOrText>>,
}

impl RawGates {
    /// The default gate table of one metric.
    fn gate(&self, metric: Metric) -> Option<&S<RawGate>> {
        match metric {
            Metric::P50Ms => self.p50_ms.as_ref(),
            Metric::P95Ms => self.p95_ms.as_ref(),
            Metric::P99Ms => self.p99_ms.as_ref(),
            Metric::ErrorRate => self.error_rate.as_ref(),
            Metric::ThroughputRps => self.throughput_rps.as_ref(),
        }
    }
}

/// A stage's `gates` table: overrides by metric name only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStageGates {
    /// P50 override.
    p50_ms: Option<S<RawGate>>,
    /// P95 override.
    p95_ms: Option<S<RawGate>>,
    /// P99 override.
    p99_ms: Option<S<RawGate>>,
    /// Error-rate override.
    error_rate: Option<S<RawGate>>,
    /// Throughput override.
    throughput_rps: Option<S<RawGate>>,
}

impl RawStageGates {
    /// The override table of one metric.
    fn gate(&self, metric: Metric) -> Option<&S<RawGate>> {
        match metric {
            Metric::P50Ms => self.p50_ms.as_ref(),
            Metric::P95Ms => self.p95_ms.as_ref(),
            Metric::P99Ms => self.p99_ms.as_ref(),
            Metric::ErrorRate => self.error_rate.as_ref(),
            Metric::ThroughputRps => self.throughput_rps.as_ref(),
        }
    }
}

/// One gate table, default or override.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    /// Ceiling fail level.
    max: Option<S<NumOrText>>,
    /// Floor fail level.
    min: Option<S<NumOrText>>,
    /// Softer level.
    warn: Option<S<NumOrText>>,
    /// "canary", "stable" or "service".
    scope: Option<S<Text>>,
    /// Window overriding `[gates].window`.
    window: Option<S<Dur>>,
    /// Sample count overriding `[gates].min_samples`.
    min_samples: Option<S<Num>>,
}

/// One `[[stages]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    /// Canary share in percent; required.
    weight: Option<S<Num>>,
    /// Stage length; required.
    duration: Option<S<Dur>>,
    /// Checkpoint interval; default a quarter of the duration.
    checkpoint: Option<S<Dur>>,
    /// Per-stage gate overrides.
    gates: Option<S<RawStageGates>>,
    /// People who must approve before the stage starts.
    approvals: Option<S<TextList>>,
}

/// `[simulation]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSimulation {
    /// Mean request rate; required.
    rps: Option<S<Num>>,
    /// 24 hourly multipliers; optional.
    daily_profile: Option<S<Vec<S<Num>>>>,
    /// The stable version's model; required.
    stable: Option<S<RawServiceModel>>,
    /// Named canary overheads.
    features: Option<S<Vec<S<RawFeature>>>>,
    /// One unnamed canary overhead (alternative to `features`).
    overhead: Option<S<RawOverhead>>,
    /// The load term.
    load: Option<S<RawLoad>>,
    /// Share of the canary's traffic that reaches it; default 1.
    canary_traffic: Option<S<NumOrText>>,
    /// Router delay; default 1 s.
    router_delay: Option<S<Dur>>,
    /// Faults in the main timeline.
    faults: Option<S<Vec<S<RawFault>>>>,
    /// Simulated users of a plan with flags; default 2,500.
    users: Option<S<Num>>,
}

/// `simulation.stable`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceModel {
    /// Median latency, ms; required.
    p50_ms: Option<S<Num>>,
    /// 95th-percentile latency, ms; required.
    p95_ms: Option<S<Num>>,
    /// 99th-percentile latency, ms; required.
    p99_ms: Option<S<Num>>,
    /// Error rate; required.
    error_rate: Option<S<NumOrText>>,
}

/// One entry of `simulation.features`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeature {
    /// The feature's name; required.
    name: Option<S<Text>>,
    /// Relative latency overhead; default 0.
    latency: Option<S<NumOrText>>,
    /// Added error rate; default 0.
    error_rate: Option<S<NumOrText>>,
}

/// `simulation.overhead`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverhead {
    /// Relative latency overhead; default 0.
    latency: Option<S<NumOrText>>,
    /// Added error rate; default 0.
    error_rate: Option<S<NumOrText>>,
}

/// `simulation.load`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    /// Contention share, 0–1; default 0.
    contention: Option<S<NumOrText>>,
    /// Stable slowdown at full canary share; default 0.
    stable_latency: Option<S<NumOrText>>,
}

/// One `[[simulation.faults]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    /// "canary" or "stable"; required.
    cohort: Option<S<Text>>,
    /// Start in plan time; required.
    at: Option<S<Dur>>,
    /// Length; absent means until the end.
    duration: Option<S<Dur>>,
    /// Added latency.
    add_latency: Option<S<Dur>>,
    /// Share of requests hit by added latency; default 1.
    fraction: Option<S<NumOrText>>,
    /// Forced error rate.
    error_rate: Option<S<NumOrText>>,
}

/// A rehearsal's `fault`: a simulation fault without `at` (the rehearsal's `at` places it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRehearsalFault {
    /// "canary" or "stable"; required.
    cohort: Option<S<Text>>,
    /// Length; absent means until the end.
    duration: Option<S<Dur>>,
    /// Added latency.
    add_latency: Option<S<Dur>>,
    /// Share of requests hit by added latency; default 1.
    fraction: Option<S<NumOrText>>,
    /// Forced error rate.
    error_rate: Option<S<NumOrText>>,
}

/// One `[[rehearsals]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRehearsal {
    /// Name; required and unique.
    name: Option<S<Text>>,
    /// Plan time of the fault; required.
    at: Option<S<Dur>>,
    /// The fault; required.
    fault: Option<S<RawRehearsalFault>>,
    /// Recovery target; default 120 s.
    target: Option<S<Dur>>,
    /// Restoration window; default 10 s.
    restore_window: Option<S<Dur>>,
    /// Restoration tolerance; default 10 %.
    restore_tolerance: Option<S<NumOrText>>,
}

/// The keys a raw struct accepts, as its derived `Deserialize` lists them.
///
/// Read by asking the derived code to deserialize from a probe that records the field list
/// `deserialize_struct` is called with, so the list can never drift from the struct.
fn fields_of<T: de::DeserializeOwned>() -> &'static [&'static str] {
    /// The probe: records the field list, then fails.
    struct Probe<'a>(&'a Cell<&'static [&'static str]>);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(fields);
            Err(de::Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let fields = Cell::new(&[][..]);
    // The probe always fails; only the recorded list matters.
    let _ = T::deserialize(Probe(&fields));
    fields.get()
}

/// What a key of a raw struct holds, for the stage-one key check.
#[derive(Clone, Copy)]
enum Shape {
    /// A leaf value (its type is checked in stage two).
    Leaf,
    /// An array of leaf values.
    Leaves,
    /// A table.
    Table(Schema),
    /// An array of tables; the label names one entry in messages ("stage" → "stage 2").
    Tables(Schema, &'static str),
    /// A table of named tables (`[flags.NAME]`); the label names one entry ("flag").
    Map(Schema, &'static str),
}

/// The keys of one raw struct and the shape of those that are not leaves.
#[derive(Clone, Copy)]
struct Schema {
    /// Every key the struct accepts.
    fields: fn() -> &'static [&'static str],
    /// The keys that hold tables or arrays.
    children: &'static [(&'static str, Shape)],
}

/// One gate table.
const GATE: Schema = Schema {
    fields: fields_of::<RawGate>,
    children: &[],
};
/// One sequential test's table.
const SEQUENTIAL_TEST: Schema = Schema {
    fields: fields_of::<RawSequentialTest>,
    children: &[],
};
/// `[gates.sequential]`.
const SEQUENTIAL: Schema = Schema {
    fields: fields_of::<RawSequential>,
    children: &[
        ("errors", Shape::Table(SEQUENTIAL_TEST)),
        ("latency", Shape::Table(SEQUENTIAL_TEST)),
    ],
};
/// One relative gate's table.
const RELATIVE_GATE: Schema = Schema {
    fields: fields_of::<RawRelativeGate>,
    children: &[],
};
/// `[gates.relative]`.
const RELATIVE: Schema = Schema {
    fields: fields_of::<RawRelative>,
    children: &[
        ("p50_ms", Shape::Table(RELATIVE_GATE)),
        ("p95_ms", Shape::Table(RELATIVE_GATE)),
        ("p99_ms", Shape::Table(RELATIVE_GATE)),
        ("error_rate", Shape::Table(RELATIVE_GATE)),
    ],
};
/// `[gates]`.
const GATES: Schema = Schema {
    fields: fields_of::<RawGates>,
    children: &[
        ("sequential", Shape::Table(SEQUENTIAL)),
        ("relative", Shape::Table(RELATIVE)),
        (
            "burn_rate",
            Shape::Table(Schema {
                fields: fields_of::<RawBurnRate>,
                children: &[],
            }),
        ),
        (
            "mann_whitney",
            Shape::Table(Schema {
                fields: fields_of::<RawMannWhitney>,
                children: &[],
            }),
        ),
        ("p50_ms", Shape::Table(GATE)),
        ("p95_ms", Shape::Table(GATE)),
        ("p99_ms", Shape::Table(GATE)),
        ("error_rate", Shape::Table(GATE)),
        ("throughput_rps", Shape::Table(GATE)),
    ],
};
/// A stage's `gates`.
const STAGE_GATES: Schema = Schema {
    fields: fields_of::<RawStageGates>,
    children: &[
        ("p50_ms", Shape::Table(GATE)),
        ("p95_ms", Shape::Table(GATE)),
        ("p99_ms", Shape::Table(GATE)),
        ("error_rate", Shape::Table(GATE)),
        ("throughput_rps", Shape::Table(GATE)),
    ],
};
/// `[simulation]`.
const SIMULATION: Schema = Schema {
    fields: fields_of::<RawSimulation>,
    children: &[
        ("daily_profile", Shape::Leaves),
        (
            "stable",
            Shape::Table(Schema {
                fields: fields_of::<RawServiceModel>,
                children: &[],
            }),
        ),
        (
            "features",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawFeature>,
                    children: &[],
                },
                "simulation feature",
            ),
        ),
        (
            "overhead",
            Shape::Table(Schema {
                fields: fields_of::<RawOverhead>,
                children: &[],
            }),
        ),
        (
            "load",
            Shape::Table(Schema {
                fields: fields_of::<RawLoad>,
                children: &[],
            }),
        ),
        (
            "faults",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawFault>,
                    children: &[],
                },
                "simulation fault",
            ),
        ),
    ],
};
/// The whole plan file.
const PLAN: Schema = Schema {
    fields: fields_of::<RawPlan>,
    children: &[
        (
            "deployment",
            Shape::Table(Schema {
                fields: fields_of::<RawDeployment>,
                children: &[],
            }),
        ),
        (
            "baseline",
            Shape::Table(Schema {
                fields: fields_of::<RawBaseline>,
                children: &[],
            }),
        ),
        ("gates", Shape::Table(GATES)),
        (
            "stages",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawStage>,
                    children: &[("gates", Shape::Table(STAGE_GATES))],
                },
                "stage",
            ),
        ),
        ("simulation", Shape::Table(SIMULATION)),
        (
            "rehearsals",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawRehearsal>,
                    children: &[(
                        "fault",
                        Shape::Table(Schema {
                            fields: fields_of::<RawRehearsalFault>,
                            children: &[],
                        }),
                    )],
                },
                "rehearsal",
            ),
        ),
        (
            "router",
            Shape::Table(Schema {
                fields: fields_of::<RawRouter>,
                children: &[],
            }),
        ),
        (
            "control",
            Shape::Table(Schema {
                fields: fields_of::<RawControl>,
                children: &[],
            }),
        ),
        (
            "checks",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawCheck>,
                    children: &[],
                },
                "check",
            ),
        ),
        (
            "hooks",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawHook>,
                    children: &[],
                },
                "hook",
            ),
        ),
        (
            "flags",
            Shape::Map(
                Schema {
                    fields: raw_flag_keys,
                    // `variants` and `metadata` hold free-form tables: ramp-flags checks them.
                    children: &[],
                },
                "flag",
            ),
        ),
        (
            "ofrep",
            Shape::Table(Schema {
                fields: fields_of::<RawOfrep>,
                children: &[],
            }),
        ),
    ],
};

/// The keys of a `[flags.NAME]` table, as ramp-flags defines them.
fn raw_flag_keys() -> &'static [&'static str] {
    ramp_flags::flags::raw::RAW_FLAG_KEYS
}

/// Names a key of the table `ctx` names, in the style of the validation messages:
/// `stages`, `gates.p95_ms`, `simulation.faults`, `stage 2's gates`, `stage 2's gates.p95_ms`.
fn dotted(ctx: &str, key: &str) -> String {
    if ctx.is_empty() {
        key.to_string()
    } else if let Some(section) = ctx.strip_prefix('[').and_then(|c| c.strip_suffix(']')) {
        format!("{section}.{key}")
    } else if ctx.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{ctx}'s {key}")
    } else {
        format!("{ctx}.{key}")
    }
}

/// A parsed TOML value as a message names it ("the integer 5", "a table").
fn describe_value(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(t) => format!("the string {t:?}"),
        DeValue::Integer(i) => format!("the integer {i}"),
        DeValue::Float(x) => format!("the number {x}"),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the date-time {d}"),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

// ---------------------------------------------------------------------------------------
// Stage two: validation.
// ---------------------------------------------------------------------------------------

/// The default evaluation interval.
const DEFAULT_EVALUATE_EVERY: Span = Span(5_000);
/// The default gate window.
const DEFAULT_WINDOW: Span = Span(300_000);
/// The default minimum sample count.
const DEFAULT_MIN_SAMPLES: u64 = 100;
/// The default rehearsal recovery target (the seed's 120 s).
const DEFAULT_TARGET: Span = Span(120_000);
/// The default rehearsal restoration window.
const DEFAULT_RESTORE_WINDOW: Span = Span(10_000);
/// The default rehearsal restoration tolerance.
const DEFAULT_RESTORE_TOLERANCE: f64 = 0.10;
/// The default router delay.
const DEFAULT_ROUTER_DELAY: Span = Span(1_000);

/// The default time limit of a check or hook.
const DEFAULT_PROBE_TIMEOUT: Span = Span(10_000);
/// The longest time limit of a check or hook: a probe that needs longer is not a check.
const MAX_PROBE_TIMEOUT: Span = Span(3_600_000);
/// The status an HTTP check expects when the plan does not say.
const DEFAULT_EXPECT_STATUS: u16 = 200;
/// An admin URL, for messages.
const ADMIN_EXAMPLE: &str = "http://127.0.0.1:9901";
/// A check URL, for messages.
const CHECK_URL_EXAMPLE: &str = "http://127.0.0.1:9001/health";
/// A hook URL, for messages.
const HOOK_URL_EXAMPLE: &str = "http://127.0.0.1:9000/events";
/// A command, for messages.
const COMMAND_EXAMPLE: &str = "[\"/usr/bin/pg_dump\", \"-f\", \"backup.sql\"]";
/// The hook events by their plan names.
const HOOK_EVENTS: [(&str, HookEvent); 4] = [
    ("stage_start", HookEvent::StageStart),
    ("stage_end", HookEvent::StageEnd),
    ("promotion", HookEvent::Promotion),
    ("rollback", HookEvent::Rollback),
];

/// A checked optional value: absent, present but wrong (already reported), or good.
///
/// The difference between absent and wrong keeps one mistake from causing a second, bogus
/// error downstream ("no fail level" after an unparsable `max`).
#[derive(Debug, Clone, PartialEq)]
enum Field<T> {
    /// The key was not written.
    Absent,
    /// The key was written with a bad value, which has been reported.
    Invalid,
    /// The key was written with a good value.
    Valid(T),
}

impl<T> Field<T> {
    /// Wraps the result of checking a key that may be absent.
    fn of<R>(raw: Option<R>, check: impl FnOnce(R) -> Option<T>) -> Field<T> {
        match raw {
            None => Field::Absent,
            Some(r) => check(r).map_or(Field::Invalid, Field::Valid),
        }
    }

    /// Whether the key was written at all.
    fn present(&self) -> bool {
        !matches!(self, Field::Absent)
    }

    /// This field if it was written, else `fallback` (inheritance of defaults).
    fn or(self, fallback: Field<T>) -> Field<T> {
        if self.present() {
            self
        } else {
            fallback
        }
    }
}

/// Where an effective gate's window came from, to locate a window that does not fit.
#[derive(Debug, Clone, PartialEq)]
enum WindowSource {
    /// Written in the stage's own gate table, at this span.
    Stage(Range<usize>),
    /// Inherited from `[gates]` (the metric's default gate or `[gates].window`), at this span.
    Defaults(Range<usize>),
    /// The built-in default.
    BuiltIn,
}

/// One validated gate table, default or override, before merging.
#[derive(Debug, Clone)]
struct GateSpec {
    /// The table's span, for errors about the table as a whole.
    span: Range<usize>,
    /// The fail level: bound, threshold and the threshold's span.
    fail: Field<(Bound, f64, Range<usize>)>,
    /// The warn level and its span.
    warn: Field<(f64, Range<usize>)>,
    /// The scope.
    scope: Field<Scope>,
    /// The window and its span.
    window: Field<(Span, Range<usize>)>,
    /// The minimum sample count.
    min_samples: Field<u64>,
}

/// The validated `[gates]` table.
struct Defaults {
    /// The evaluation interval and, when written, its span.
    evaluate_every: Field<(Span, Range<usize>)>,
    /// `[gates].window` and its span.
    window: Field<(Span, Range<usize>)>,
    /// `[gates].min_samples`.
    min_samples: Field<u64>,
    /// The default gate of each metric, in `Metric::ALL` order.
    gates: [Option<GateSpec>; 5],
}

/// An effective gate window in some stage, for the `evaluate_every` check.
struct WindowUse {
    /// The window.
    window: Span,
    /// Where it was written.
    source: WindowSource,
    /// Which stage and gate uses it, for messages ("stage 1's p95_ms gate").
    user: String,
}

/// Fault keys shared by simulation faults and rehearsal faults.
struct FaultKeys<'a> {
    /// The fault table's span.
    span: Range<usize>,
    /// `cohort`.
    cohort: Option<&'a S<Text>>,
    /// `duration`.
    duration: Option<&'a S<Dur>>,
    /// `add_latency`.
    add_latency: Option<&'a S<Dur>>,
    /// `fraction`.
    fraction: Option<&'a S<NumOrText>>,
    /// `error_rate`.
    error_rate: Option<&'a S<NumOrText>>,
}

/// The validation pass: the source (to turn spans into lines and columns) and the errors
/// found so far.
struct Validator<'a> {
    /// The plan text.
    source: &'a str,
    /// The file name that labels errors.
    file: &'a str,
    /// Every error found so far.
    errors: Vec<PlanError>,
    /// Keys removed from the tree by `check_keys` because their value had the wrong shape
    /// (already reported): the start of the table that held them (`usize::MAX` for the top
    /// level) and the key. A removed required key is not reported again as missing.
    removed: Vec<(usize, String)>,
}

impl Validator<'_> {
    /// Records an error at the start of `span`.
    fn error(&mut self, span: Range<usize>, message: String) {
        let e = locate(self.source, self.file, span.start, message);
        self.errors.push(e);
    }

    /// Whether `key` of the table starting at `table` (`usize::MAX`: the top level) was
    /// removed for having the wrong shape, an error already reported.
    fn was_removed(&self, table: usize, key: &str) -> bool {
        self.removed.iter().any(|(t, k)| *t == table && k == key)
    }

    /// Records a missing required key, located at the table that lacks it.
    fn missing(&mut self, table: Range<usize>, ctx: &str, key: &str, what: &str) {
        if self.was_removed(table.start, key) {
            return;
        }
        self.error(
            table,
            format!("{ctx}: missing required key `{key}` ({what})"),
        );
    }

    // ----- keys and shapes (stage one) -----

    /// Checks the keys of one table of the parsed tree against `schema`, recursively:
    /// reports every unknown key and every value that should be a table or an array of
    /// tables but is not, and removes them so that deserializing the rest cannot fail on
    /// them. `span` is the table's span and `ctx` names it in messages ("" for the top level).
    fn check_keys(
        &mut self,
        table: &mut DeTable<'_>,
        span: &Range<usize>,
        schema: Schema,
        ctx: &str,
    ) {
        let fields = (schema.fields)();
        // The table's start as `removed` records it; the top level has none that a
        // `Spanned` raw struct would carry, so it is `usize::MAX`.
        let at = if ctx.is_empty() {
            usize::MAX
        } else {
            span.start
        };
        let mut remove: Vec<String> = Vec::new();
        for (key, value) in table.iter_mut() {
            let name: &str = key.get_ref();
            if !fields.contains(&name) {
                let place = if ctx.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in {ctx}")
                };
                let expected: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
                self.error(
                    key.span(),
                    format!(
                        "unknown key `{name}` {place}; expected one of {}",
                        expected.join(", ")
                    ),
                );
                remove.push(name.to_string());
                continue;
            }
            let shape = schema
                .children
                .iter()
                .find(|(k, _)| *k == name)
                .map_or(Shape::Leaf, |(_, shape)| *shape);
            let value_span = value.span();
            let ok = match (shape, value.get_mut()) {
                (Shape::Leaf, _) | (Shape::Leaves, DeValue::Array(_)) => true,
                (Shape::Table(child), DeValue::Table(t)) => {
                    let child_ctx = if ctx.is_empty() {
                        format!("[{name}]")
                    } else {
                        dotted(ctx, name)
                    };
                    self.check_keys(t, &value_span, child, &child_ctx);
                    true
                }
                (Shape::Tables(child, label), DeValue::Array(list)) => {
                    match list.iter().position(|e| !e.get_ref().is_table()) {
                        Some(i) => {
                            let e = &list[i];
                            self.error(
                                e.span(),
                                format!(
                                    "{label} {}: expected a table, found {}; every entry of {} must be a table",
                                    i + 1,
                                    describe_value(e.get_ref()),
                                    dotted(ctx, name)
                                ),
                            );
                            false
                        }
                        None => {
                            for (i, e) in list.iter_mut().enumerate() {
                                let e_span = e.span();
                                if let DeValue::Table(t) = e.get_mut() {
                                    self.check_keys(
                                        t,
                                        &e_span,
                                        child,
                                        &format!("{label} {}", i + 1),
                                    );
                                }
                            }
                            true
                        }
                    }
                }
                (Shape::Map(child, label), DeValue::Table(t)) => {
                    let mut bad = Vec::new();
                    for (k, e) in t.iter_mut() {
                        let e_span = e.span();
                        let entry = format!("{label} {}", k.get_ref());
                        match e.get_mut() {
                            DeValue::Table(inner) => self.check_keys(inner, &e_span, child, &entry),
                            other => {
                                self.error(
                                    e_span,
                                    format!(
                                        "{entry}: expected a table, found {}",
                                        describe_value(other)
                                    ),
                                );
                                bad.push(k.get_ref().to_string());
                            }
                        }
                    }
                    for k in bad {
                        t.remove(k.as_str());
                    }
                    true
                }
                (Shape::Map(..), v) => {
                    self.error(
                        value_span,
                        format!(
                            "{}: expected a table of named tables, found {}",
                            dotted(ctx, name),
                            describe_value(v)
                        ),
                    );
                    false
                }
                (Shape::Leaves, v) => {
                    self.error(
                        value_span,
                        format!(
                            "{}: expected an array, found {}",
                            dotted(ctx, name),
                            describe_value(v)
                        ),
                    );
                    false
                }
                (Shape::Table(_), v) => {
                    self.error(
                        value_span,
                        format!(
                            "{}: expected a table, found {}",
                            dotted(ctx, name),
                            describe_value(v)
                        ),
                    );
                    false
                }
                (Shape::Tables(..), v) => {
                    let path = dotted(ctx, name);
                    self.error(
                        value_span,
                        format!(
                            "{path}: expected an array of tables such as [[{path}]], found {}",
                            describe_value(v)
                        ),
                    );
                    false
                }
            };
            if !ok {
                self.removed.push((at, name.to_string()));
                remove.push(name.to_string());
            }
        }
        for key in remove {
            table.remove(key.as_str());
        }
    }

    // ----- scalar checks -----

    /// A finite number.
    fn number(&mut self, v: &S<Num>, what: &str) -> Option<f64> {
        let x = match v.get_ref() {
            Num::Num(x) => *x,
            Num::Wrong(found) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a number, found {found}"),
                );
                return None;
            }
        };
        if x.is_finite() {
            Some(x)
        } else {
            self.error(
                v.span(),
                format!("{what}: expected a finite number, found {x}"),
            );
            None
        }
    }

    /// A finite number of at least 0.
    fn non_negative(&mut self, v: &S<Num>, what: &str) -> Option<f64> {
        let x = self.number(v, what)?;
        if x < 0.0 {
            self.error(
                v.span(),
                format!(
                    "{what}: {} is negative; expected a number of at least 0",
                    fmt_num(x)
                ),
            );
            return None;
        }
        Some(x)
    }

    /// A finite number above 0.
    fn positive(&mut self, v: &S<Num>, what: &str) -> Option<f64> {
        let x = self.number(v, what)?;
        if x <= 0.0 {
            self.error(
                v.span(),
                format!(
                    "{what}: {} is not above 0; expected a number above 0",
                    fmt_num(x)
                ),
            );
            return None;
        }
        Some(x)
    }

    /// A whole number of at least 1 (a sample count).
    fn count(&mut self, v: &S<Num>, what: &str) -> Option<u64> {
        let x = self.number(v, what)?;
        if x < 1.0 || x.fract() != 0.0 || x > 9.0e15 {
            self.error(
                v.span(),
                format!(
                    "{what}: expected a whole number of at least 1, found {}",
                    fmt_num(x)
                ),
            );
            return None;
        }
        Some(x as u64)
    }

    /// A string.
    fn string<'t>(&mut self, v: &'t S<Text>, what: &str) -> Option<&'t str> {
        match v.get_ref() {
            Text::Text(t) => Some(t),
            Text::Wrong(found) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a string, found {found}"),
                );
                None
            }
        }
    }

    /// A non-empty string.
    fn text(&mut self, v: &S<Text>, what: &str) -> Option<String> {
        let t = self.string(v, what)?;
        if t.trim().is_empty() {
            self.error(v.span(), format!("{what}: must not be empty"));
            return None;
        }
        Some(t.to_string())
    }

    /// A rate, as a fraction: a string such as `"0.28%"` or a bare fraction.
    fn rate(&mut self, v: &S<NumOrText>, what: &str) -> Option<f64> {
        let x = match v.get_ref() {
            NumOrText::Num(x) => *x,
            NumOrText::Text(t) => match parse_rate(t) {
                Ok(x) => x,
                Err(e) => {
                    self.error(v.span(), format!("{what}: {e}"));
                    return None;
                }
            },
            NumOrText::Wrong(found) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a rate such as \"0.5%\" or 0.005, found {found}"),
                );
                return None;
            }
        };
        if !x.is_finite() {
            self.error(
                v.span(),
                format!("{what}: expected a finite rate, found {x}"),
            );
            return None;
        }
        Some(x)
    }

    /// A rate accepted by `ok`; `expected` describes the accepted range for the message.
    fn rate_in(
        &mut self,
        v: &S<NumOrText>,
        what: &str,
        ok: impl Fn(f64) -> bool,
        expected: &str,
    ) -> Option<f64> {
        let x = self.rate(v, what)?;
        if !ok(x) {
            self.error(
                v.span(),
                format!(
                    "{what}: {} is out of range; expected {expected}",
                    describe_rate(v.get_ref(), x)
                ),
            );
            return None;
        }
        Some(x)
    }

    /// A duration string.
    fn duration(&mut self, v: &S<Dur>, what: &str) -> Option<Span> {
        match v.get_ref() {
            Dur::Text(t) => match Span::parse(t) {
                Ok(s) => Some(s),
                Err(e) => {
                    // `Span::parse` names the duration itself ("duration \"60x\" has …"):
                    // after a key that is called `duration` too, say it once.
                    let message =
                        match (what.strip_suffix(": duration"), e.strip_prefix("duration ")) {
                            (Some(ctx), Some(rest)) => format!("{ctx}: duration {rest}"),
                            _ => format!("{what}: {e}"),
                        };
                    self.error(v.span(), message);
                    None
                }
            },
            Dur::Wrong(found) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a duration string such as \"90s\", \"15m\" or \"1h30m\", found {found}"),
                );
                None
            }
            Dur::Num(n) => {
                let n = fmt_num(*n);
                self.error(
                    v.span(),
                    format!(
                        "{what}: expected a duration string with a unit such as \"{n}s\" or \"{n}m\", found the bare number {n}"
                    ),
                );
                None
            }
        }
    }

    /// A duration longer than zero.
    fn positive_duration(&mut self, v: &S<Dur>, what: &str) -> Option<Span> {
        let s = self.duration(v, what)?;
        if s.0 == 0 {
            self.error(v.span(), format!("{what}: must be longer than 0"));
            return None;
        }
        Some(s)
    }

    // ----- sections -----

    /// Validates everything and builds the plan when every part is good.
    fn plan(&mut self, raw: &RawPlan) -> Option<Plan> {
        let deployment = self.deployment(raw.deployment.as_ref());
        let baseline = raw.baseline.as_ref().map(|b| self.baseline(b));
        let defaults = self.defaults(raw.gates.as_ref());
        let mut windows = Vec::new();
        let (stages, total) = self.stages(raw.stages.as_ref(), &defaults, &mut windows);
        let evaluate_every = self.evaluate_every(&defaults, &windows);
        let sequential = self.sequential(
            raw.gates
                .as_ref()
                .and_then(|g| g.get_ref().sequential.as_ref()),
        );
        let relative = self.relative(
            raw.gates
                .as_ref()
                .and_then(|g| g.get_ref().relative.as_ref()),
            &defaults,
        );
        let gates_raw = raw.gates.as_ref().map(|g| g.get_ref());
        let burn_rate_slo = match gates_raw.and_then(|g| g.burn_rate.as_ref()) {
            None => Some(None),
            Some(b) => match &b.get_ref().slo {
                None => {
                    self.error(
                        b.span(),
                        "gates.burn_rate: missing slo; expected the canary's availability objective, e.g. slo = \"99.9%\"".into(),
                    );
                    None
                }
                Some(v) => self
                    .rate_in(
                        v,
                        "gates.burn_rate.slo",
                        |x| x > 0.0 && x < 1.0,
                        "an objective above 0% and below 100%, e.g. \"99.9%\"",
                    )
                    .map(Some),
            },
        };
        let mann_whitney = match gates_raw.and_then(|g| g.mann_whitney.as_ref()) {
            None => Some(None),
            Some(m) => match &m.get_ref().alpha {
                None => Some(Some(0.02)),
                Some(v) => self
                    .rate_in(
                        v,
                        "gates.mann_whitney.alpha",
                        |x| x > 0.0 && x <= 0.5,
                        "a level above 0 and at most 0.5, e.g. 0.02 (Kayenta's 98% confidence)",
                    )
                    .map(Some),
            },
        };
        let simulation = raw.simulation.as_ref().map(|s| self.simulation(s, total));
        // A rehearsal runs on a fork of the simulation (`ramp simulate`) or on live traffic
        // (`ramp rehearse`, through the router): either is enough.
        let rehearsals = self.rehearsals(
            raw.rehearsals.as_ref(),
            raw.simulation.is_some() || raw.router.is_some(),
            total,
        );
        let router = self.router(raw.router.as_ref());
        let control = self.control(raw.control.as_ref());
        let checks = self.checks(raw.checks.as_ref());
        let hooks = self.hooks(raw.hooks.as_ref());
        let flags = self.flags(raw.flags.as_ref());
        let ofrep = self.ofrep(raw.ofrep.as_ref());

        let baseline = match baseline {
            None => None,
            Some(b) => Some(b?),
        };
        let simulation = match simulation {
            None => None,
            Some(s) => Some(s?),
        };
        Some(Plan {
            deployment: deployment?,
            baseline,
            evaluate_every: evaluate_every?,
            stages: stages?,
            sequential: sequential?,
            relative: relative?,
            burn_rate_slo: burn_rate_slo?,
            mann_whitney: mann_whitney?,
            simulation,
            rehearsals: rehearsals?,
            router: router?,
            control: control?,
            checks: checks?,
            hooks: hooks?,
            flags: flags?,
            ofrep: ofrep?,
        })
    }

    /// `[gates.relative]`: each ratio at least 1, windows and sample counts like gates'.
    fn relative(
        &mut self,
        raw: Option<&S<RawRelative>>,
        defaults: &Defaults,
    ) -> Option<Vec<RelativeGate>> {
        let Some(raw) = raw else {
            return Some(Vec::new());
        };
        let r = raw.get_ref();
        let mut ok = true;
        let mut out = Vec::new();
        let default_window = match &defaults.window {
            Field::Valid((w, _)) => Some(*w),
            Field::Absent => Some(DEFAULT_WINDOW),
            Field::Invalid => None,
        };
        let default_samples = match &defaults.min_samples {
            Field::Valid(n) => Some(*n),
            Field::Absent => Some(DEFAULT_MIN_SAMPLES),
            Field::Invalid => None,
        };
        for (metric, g) in [
            (Metric::P50Ms, &r.p50_ms),
            (Metric::P95Ms, &r.p95_ms),
            (Metric::P99Ms, &r.p99_ms),
            (Metric::ErrorRate, &r.error_rate),
        ] {
            let Some(g) = g else { continue };
            let ctx = format!("gates.relative.{}", metric.key());
            let gr = g.get_ref();
            let ratio = match &gr.max {
                None => {
                    self.error(
                        g.span(),
                        format!("{ctx}: missing max; expected the largest canary/stable ratio, e.g. max = \"+10%\" or max = \"1.5x\""),
                    );
                    None
                }
                Some(v) => self.ratio(v, &format!("{ctx}.max")),
            };
            let window = match &gr.window {
                None => default_window,
                Some(w) => self.positive_duration(w, &format!("{ctx}.window")),
            };
            let min_samples = match &gr.min_samples {
                None => default_samples,
                Some(n) => self.count(n, &format!("{ctx}.min_samples")),
            };
            match (ratio, window, min_samples) {
                (Some(max_ratio), Some(window), Some(min_samples)) => out.push(RelativeGate {
                    metric,
                    max_ratio,
                    window,
                    min_samples,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A ratio written as "+10%" (1.10), "1.5x" (1.5) or a bare number (the ratio itself);
    /// at least 1, since a canary may always be as good as stable.
    fn ratio(&mut self, v: &S<NumOrText>, what: &str) -> Option<f64> {
        let parsed = match v.get_ref() {
            NumOrText::Num(x) => Ok(*x),
            NumOrText::Text(t) => {
                let t = t.trim();
                if let Some(x) = t.strip_suffix(['x', '×']) {
                    x.trim().parse::<f64>().map_err(|_| ())
                } else if t.ends_with('%') {
                    parse_rate(t).map(|r| 1.0 + r).map_err(|_| ())
                } else {
                    Err(())
                }
            }
            NumOrText::Wrong(_) => Err(()),
        };
        match parsed {
            Ok(x) if x.is_finite() && x >= 1.0 => Some(x),
            Ok(x) => {
                self.error(
                    v.span(),
                    format!("{what}: ratio {} is below 1; expected the canary's largest value relative to stable, such as \"+10%\" or \"1.5x\"", fmt_num(x)),
                );
                None
            }
            Err(()) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a ratio such as \"+10%\", \"1.5x\" or 1.1"),
                );
                None
            }
        }
    }

    /// `[gates.sequential]`: each test's α in (0, 0.5], the latency floor in [0, 1).
    fn sequential(&mut self, raw: Option<&S<RawSequential>>) -> Option<SequentialGates> {
        let Some(raw) = raw else {
            return Some(SequentialGates::default());
        };
        let r = raw.get_ref();
        let mut ok = true;
        let alpha = |this: &mut Self, t: &S<RawSequentialTest>, ctx: &str| -> Option<f64> {
            match &t.get_ref().alpha {
                None => Some(0.01),
                Some(a) => this.rate_in(
                    a,
                    &format!("{ctx}.alpha"),
                    |x| x > 0.0 && x <= 0.5,
                    "a false-rollback budget above 0 and at most 0.5, e.g. 0.01",
                ),
            }
        };
        let errors = match &r.errors {
            None => None,
            Some(t) => {
                if let Some(f) = &t.get_ref().floor {
                    self.error(
                        f.span(),
                        "gates.sequential.errors.floor: a floor applies only to the latency test; remove it".into(),
                    );
                    ok = false;
                }
                let a = alpha(self, t, "gates.sequential.errors");
                ok &= a.is_some();
                a
            }
        };
        let latency = match &r.latency {
            None => None,
            Some(t) => {
                let a = alpha(self, t, "gates.sequential.latency");
                let floor = match &t.get_ref().floor {
                    None => Some(0.0),
                    Some(f) => self.rate_in(
                        f,
                        "gates.sequential.latency.floor",
                        |x| (0.0..1.0).contains(&x),
                        "a relative shift from 0% to under 100%, e.g. \"2%\"",
                    ),
                };
                ok &= a.is_some() && floor.is_some();
                a.zip(floor)
            }
        };
        if r.errors.is_none() && r.latency.is_none() {
            self.error(
                raw.span(),
                "gates.sequential: expected at least one test: errors = { alpha = 0.01 } or latency = { alpha = 0.01 }".into(),
            );
            ok = false;
        }
        ok.then_some(SequentialGates { errors, latency })
    }

    /// `[deployment]`.
    fn deployment(&mut self, raw: Option<&S<RawDeployment>>) -> Option<Deployment> {
        let Some(raw) = raw else {
            if !self.was_removed(usize::MAX, "deployment") {
                self.error(
                    0..0,
                    "missing required table [deployment] (with id, service and environment)".into(),
                );
            }
            return None;
        };
        let table = raw.span();
        let r = raw.get_ref();
        let ctx = "[deployment]";
        let id = match &r.id {
            None => {
                self.missing(table.clone(), ctx, "id", "a unique deployment id such as \"phase8-canary-20251006\"");
                None
            }
            Some(v) => self.text(v, "deployment.id").and_then(|id| {
                if let Some(bad) = id
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
                {
                    self.error(
                        v.span(),
                        format!(
                            "deployment.id: {id:?} contains {bad:?}; expected only letters, digits, '.', '_' and '-'"
                        ),
                    );
                    None
                } else {
                    Some(id)
                }
            }),
        };
        let service = match &r.service {
            None => {
                self.missing(
                    table.clone(),
                    ctx,
                    "service",
                    "the service being rolled out",
                );
                None
            }
            Some(v) => self.text(v, "deployment.service"),
        };
        let environment = match &r.environment {
            None => {
                self.missing(
                    table,
                    ctx,
                    "environment",
                    "where it is rolled out, such as \"staging\"",
                );
                None
            }
            Some(v) => self.text(v, "deployment.environment"),
        };
        let start = Field::of(r.start.as_ref(), |v| self.start(v));
        let (start, start_second_of_day) = match start {
            Field::Absent => (None, 0),
            Field::Invalid => return None,
            Field::Valid((s, sod)) => (Some(s), sod),
        };
        Some(Deployment {
            id: id?,
            service: service?,
            environment: environment?,
            start,
            start_second_of_day,
        })
    }

    /// `deployment.start`: the canonical string and the second of the day.
    fn start(&mut self, v: &S<StartValue>) -> Option<(String, u32)> {
        const EXPECTED: &str =
            "expected an RFC 3339 UTC date-time such as \"2025-10-06T18:00:00Z\"";
        let dt = match v.get_ref() {
            StartValue::Datetime(dt) => *dt,
            StartValue::Text(t) => {
                match t.trim().parse::<Datetime>() {
                    Ok(dt) => dt,
                    Err(e) => {
                        self.error(v.span(), format!("deployment.start: {t:?} is not a valid date-time ({e}); {EXPECTED}"));
                        return None;
                    }
                }
            }
            StartValue::Wrong(found) => {
                self.error(
                    v.span(),
                    format!("deployment.start: {EXPECTED}, found {found}"),
                );
                return None;
            }
        };
        match (dt.date, dt.time, dt.offset) {
            (Some(date), Some(time), Some(Offset::Z)) => {
                let second = time.second.unwrap_or(0);
                if second > 59 {
                    self.error(
                        v.span(),
                        format!("deployment.start: {dt} has a leap second; {EXPECTED}"),
                    );
                    return None;
                }
                let canonical = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    date.year, date.month, date.day, time.hour, time.minute, second
                );
                let sod =
                    u32::from(time.hour) * 3600 + u32::from(time.minute) * 60 + u32::from(second);
                Some((canonical, sod))
            }
            _ => {
                self.error(
                    v.span(),
                    format!("deployment.start: {dt} is not a full date-time in UTC (ending in Z); {EXPECTED}"),
                );
                None
            }
        }
    }

    /// `[baseline]`.
    fn baseline(&mut self, raw: &S<RawBaseline>) -> Option<Baseline> {
        let r = raw.get_ref();
        let mut bad = false;
        let mut num = |this: &mut Self, v: &Option<S<Num>>, key: &str| -> Option<f64> {
            match Field::of(v.as_ref(), |v| {
                this.non_negative(v, &format!("baseline.{key}"))
            }) {
                Field::Absent => None,
                Field::Invalid => {
                    bad = true;
                    None
                }
                Field::Valid(x) => Some(x),
            }
        };
        let p50_ms = num(self, &r.p50_ms, "p50_ms");
        let p95_ms = num(self, &r.p95_ms, "p95_ms");
        let p99_ms = num(self, &r.p99_ms, "p99_ms");
        let throughput_rps = num(self, &r.throughput_rps, "throughput_rps");
        let error_rate = match Field::of(r.error_rate.as_ref(), |v| {
            self.rate_in(
                v,
                "baseline.error_rate",
                |x| (0.0..=1.0).contains(&x),
                "a rate between 0% and 100%",
            )
        }) {
            Field::Absent => None,
            Field::Invalid => {
                bad = true;
                None
            }
            Field::Valid(x) => Some(x),
        };
        if bad {
            return None;
        }
        Some(Baseline {
            p50_ms,
            p95_ms,
            p99_ms,
            error_rate,
            throughput_rps,
        })
    }

    /// `[gates]`.
    fn defaults(&mut self, raw: Option<&S<RawGates>>) -> Defaults {
        let Some(raw) = raw else {
            return Defaults {
                evaluate_every: Field::Absent,
                window: Field::Absent,
                min_samples: Field::Absent,
                gates: Default::default(),
            };
        };
        let r = raw.get_ref();
        let evaluate_every = Field::of(r.evaluate_every.as_ref(), |v| {
            self.positive_duration(v, "gates.evaluate_every")
                .map(|s| (s, v.span()))
        });
        let window = Field::of(r.window.as_ref(), |v| {
            self.positive_duration(v, "gates.window")
                .map(|s| (s, v.span()))
        });
        let min_samples = Field::of(r.min_samples.as_ref(), |v| {
            self.count(v, "gates.min_samples")
        });
        let mut gates: [Option<GateSpec>; 5] = Default::default();
        for (slot, metric) in gates.iter_mut().zip(Metric::ALL) {
            let Some(g) = r.gate(metric) else { continue };
            let ctx = format!("gates.{}", metric.key());
            let spec = self.gate_spec(metric, g, &ctx);
            if !spec.fail.present() {
                self.error(
                    spec.span.clone(),
                    format!("{ctx}: missing a fail level; expected max = … (a ceiling) or min = … (a floor)"),
                );
            }
            if let (Field::Valid((bound, t, _)), Field::Valid((w, ws))) = (&spec.fail, &spec.warn) {
                self.check_warn(&ctx, metric, (*bound, *t), (*w, ws.clone()), false);
            }
            *slot = Some(spec);
        }
        Defaults {
            evaluate_every,
            window,
            min_samples,
            gates,
        }
    }

    /// Checks the keys of one gate table on their own (merging comes later).
    fn gate_spec(&mut self, metric: Metric, raw: &S<RawGate>, ctx: &str) -> GateSpec {
        let r = raw.get_ref();
        let max = Field::of(r.max.as_ref(), |v| {
            self.threshold(metric, v, &format!("{ctx}: max"))
        });
        let min = Field::of(r.min.as_ref(), |v| {
            self.threshold(metric, v, &format!("{ctx}: min"))
        });
        let fail = match (max, min) {
            (Field::Absent, Field::Absent) => Field::Absent,
            (Field::Valid(t), Field::Absent) => Field::Valid((Bound::Max, t, span_of(&r.max))),
            (Field::Absent, Field::Valid(t)) => Field::Valid((Bound::Min, t, span_of(&r.min))),
            (max, min) => {
                if max.present() && min.present() {
                    self.error(
                        span_of(&r.min),
                        format!("{ctx}: has both max and min; expected exactly one fail level: max (a ceiling) or min (a floor)"),
                    );
                }
                Field::Invalid
            }
        };
        let warn = Field::of(r.warn.as_ref(), |v| {
            self.threshold(metric, v, &format!("{ctx}: warn"))
                .map(|w| (w, v.span()))
        });
        let scope = Field::of(r.scope.as_ref(), |v| {
            match self.string(v, &format!("{ctx}: scope"))? {
                "canary" => Some(Scope::Canary),
                "stable" => Some(Scope::Stable),
                "service" => Some(Scope::Service),
                other => {
                    self.error(
                    v.span(),
                    format!("{ctx}: scope {other:?} is not one of \"canary\", \"stable\" or \"service\""),
                );
                    None
                }
            }
        });
        let window = Field::of(r.window.as_ref(), |v| {
            self.positive_duration(v, &format!("{ctx}: window"))
                .map(|s| (s, v.span()))
        });
        let min_samples = Field::of(r.min_samples.as_ref(), |v| {
            self.count(v, &format!("{ctx}: min_samples"))
        });
        GateSpec {
            span: raw.span(),
            fail,
            warn,
            scope,
            window,
            min_samples,
        }
    }

    /// A gate level (`max`, `min` or `warn`): a rate of at most 100 % for `error_rate`, a
    /// plain number for the others; never negative.
    fn threshold(&mut self, metric: Metric, v: &S<NumOrText>, what: &str) -> Option<f64> {
        let unit = if metric == Metric::ThroughputRps {
            "requests per second"
        } else {
            "milliseconds"
        };
        let x = match (metric, v.get_ref()) {
            (Metric::ErrorRate, _) => self.rate(v, what)?,
            (_, NumOrText::Num(x)) => {
                if !x.is_finite() {
                    self.error(
                        v.span(),
                        format!("{what}: expected a finite number, found {x}"),
                    );
                    return None;
                }
                *x
            }
            (_, NumOrText::Text(t)) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a number ({unit}), found the string {t:?}"),
                );
                return None;
            }
            (_, NumOrText::Wrong(found)) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a number ({unit}), found {found}"),
                );
                return None;
            }
        };
        if x < 0.0 {
            let shown = if metric == Metric::ErrorRate {
                describe_rate(v.get_ref(), x)
            } else {
                fmt_num(x)
            };
            self.error(
                v.span(),
                format!("{what}: {shown} is negative; a gate level must be 0 or more"),
            );
            return None;
        }
        if metric == Metric::ErrorRate && x > 1.0 {
            self.error(
                v.span(),
                format!(
                    "{what}: {} is above 100%; expected an error rate such as \"1%\" (a bare number is a fraction: 0.01)",
                    describe_rate(v.get_ref(), x)
                ),
            );
            return None;
        }
        Some(x)
    }

    /// Checks that a warn level sits on the safe side of its fail level; `inherited` says
    /// the fail level came from `[gates]`, which the message then mentions.
    fn check_warn(
        &mut self,
        ctx: &str,
        metric: Metric,
        (bound, threshold): (Bound, f64),
        (warn, warn_span): (f64, Range<usize>),
        inherited: bool,
    ) {
        let (ok, side, name) = match bound {
            Bound::Max => (warn < threshold, "below", "max"),
            Bound::Min => (warn > threshold, "above", "min"),
        };
        if !ok {
            let from = if inherited { " (from [gates])" } else { "" };
            self.error(
                warn_span,
                format!(
                    "{ctx}: warn {} is not {side} {name} {}{from}; a warn level must be on the safe side of the fail level",
                    fmt_metric(metric, warn),
                    fmt_metric(metric, threshold)
                ),
            );
        }
    }

    /// `[[stages]]`: returns the stages (when all are good) and their total duration (when
    /// every duration is good), and records each effective gate window in `windows`.
    fn stages(
        &mut self,
        raw: Option<&S<Vec<S<RawStage>>>>,
        defaults: &Defaults,
        windows: &mut Vec<WindowUse>,
    ) -> (Option<Vec<Stage>>, Option<Span>) {
        let list = match raw {
            Some(list) if !list.get_ref().is_empty() => list.get_ref(),
            Some(list) => {
                self.error(
                    list.span(),
                    "stages: expected at least one [[stages]] entry".into(),
                );
                return (None, None);
            }
            None => {
                if !self.was_removed(usize::MAX, "stages") {
                    self.error(
                        0..0,
                        "missing required [[stages]]; expected at least one stage with weight and duration".into(),
                    );
                }
                return (None, None);
            }
        };
        let mut stages = Some(Vec::with_capacity(list.len()));
        let mut total = Some(Span(0));
        // The previous stage's weight: (basis points, as written).
        let mut previous: Option<(Weight, f64)> = None;
        let mut last_weight = None;
        for (i, raw_stage) in list.iter().enumerate() {
            let n = i + 1;
            let ctx = format!("stage {n}");
            let r = raw_stage.get_ref();
            let weight = match &r.weight {
                None => {
                    self.missing(
                        raw_stage.span(),
                        &ctx,
                        "weight",
                        "the canary's share of traffic in percent, e.g. weight = 25",
                    );
                    None
                }
                Some(v) => self.weight(v, &ctx).map(|(w, p)| (w, p, v.span())),
            };
            if let Some((w, written, span)) = &weight {
                if let Some((pw, pwritten)) = previous {
                    if *w <= pw {
                        self.error(
                            span.clone(),
                            format!(
                                "{ctx}: weight {} is not greater than the previous stage's {}; weights must strictly increase",
                                fmt_num(*written),
                                fmt_num(pwritten)
                            ),
                        );
                    }
                }
            }
            previous = weight.as_ref().map(|(w, written, _)| (*w, *written));
            last_weight = Some(weight.clone());
            // Errors about the stage as a whole point at its weight, which names the stage.
            let weight_span = r.weight.as_ref().map_or(raw_stage.span(), |w| w.span());

            let duration = match &r.duration {
                None => {
                    self.missing(
                        raw_stage.span(),
                        &ctx,
                        "duration",
                        "how long the stage lasts, e.g. duration = \"60m\"",
                    );
                    None
                }
                Some(v) => self.positive_duration(v, &format!("{ctx}: duration")),
            };
            total = match (total, duration) {
                (Some(t), Some(d)) => Some(Span(t.0.saturating_add(d.0))),
                _ => None,
            };
            let checkpoint = match (&r.checkpoint, duration) {
                (Some(v), d) => {
                    let cp = self.positive_duration(v, &format!("{ctx}: checkpoint"));
                    match (cp, d) {
                        (Some(cp), Some(d)) if cp > d => {
                            self.error(
                                v.span(),
                                format!(
                                    "{ctx}: checkpoint {} is longer than the stage's duration {}; expected at most the duration",
                                    fmt_span(cp),
                                    fmt_span(d)
                                ),
                            );
                            None
                        }
                        (cp, _) => cp,
                    }
                }
                (None, Some(d)) => Some(default_checkpoint(d)),
                (None, None) => None,
            };

            let approvals = Field::of(r.approvals.as_ref(), |v| self.approvals(v, &ctx));
            let overrides = r.gates.as_ref().map(|g| g.get_ref());
            let mut gates = Some(Vec::new());
            // Inherited windows that do not fit, grouped by window so that one error names
            // every gate it affects.
            let mut too_long: BTreeMap<Span, Vec<&'static str>> = BTreeMap::new();
            for (metric, default) in Metric::ALL.into_iter().zip(&defaults.gates) {
                let gctx = format!("{ctx}: gates.{}", metric.key());
                let over = overrides
                    .and_then(|o| o.gate(metric))
                    .map(|g| self.gate_spec(metric, g, &gctx));
                if over.is_none() && default.is_none() {
                    continue;
                }
                let window = effective_window(over.as_ref(), default.as_ref(), defaults);
                if let Some((window, source)) = &window {
                    match (duration, source) {
                        (Some(d), WindowSource::Stage(span)) if *window > d => self.error(
                            span.clone(),
                            format!(
                                "{gctx}: window {} is longer than the stage's duration {}; a gate's window must fit in its stage",
                                fmt_span(*window),
                                fmt_span(d)
                            ),
                        ),
                        (Some(d), _) if *window > d => {
                            too_long.entry(*window).or_default().push(metric.key())
                        }
                        _ => {}
                    }
                    windows.push(WindowUse {
                        window: *window,
                        source: source.clone(),
                        user: format!("stage {n}'s {} gate", metric.key()),
                    });
                }
                let gate = self.effective_gate(
                    metric,
                    over.as_ref(),
                    default.as_ref(),
                    defaults,
                    window.map(|(w, _)| w),
                    &gctx,
                );
                match (gate, gates.as_mut()) {
                    (Some(gate), Some(list)) => list.push(gate),
                    (Some(_), None) => {}
                    (None, _) => gates = None,
                }
            }
            if let (Some(list), Some((w, _, _))) = (gates.as_ref(), weight.as_ref()) {
                if *w == Weight::FULL {
                    for g in list.iter().filter(|g| g.scope == Scope::Stable) {
                        self.error(
                            weight_span.clone(),
                            format!(
                                "{ctx}: the {} gate judges the stable scope, which gets no traffic at weight 100, so it could never pass; scope it to canary or service in this stage",
                                g.metric.key()
                            ),
                        );
                    }
                }
            }
            if let Some(d) = duration {
                for (window, metrics) in too_long {
                    let plural = if metrics.len() == 1 { "gate" } else { "gates" };
                    self.error(
                        weight_span.clone(),
                        format!(
                            "{ctx}: the {} window of the {} {plural} (inherited from [gates]) is longer than the stage's duration {}; a gate's window must fit in its stage (shorten the window or override it in this stage)",
                            fmt_span(window),
                            metrics.join(", "),
                            fmt_span(d)
                        ),
                    );
                }
            }

            stages = match (
                stages,
                weight,
                duration,
                checkpoint,
                gates,
                valid_or_none(approvals, Vec::new()),
            ) {
                (
                    Some(mut list),
                    Some((weight, _, _)),
                    Some(duration),
                    Some(checkpoint),
                    Some(gates),
                    Some(approvals),
                ) => {
                    list.push(Stage {
                        weight,
                        duration,
                        checkpoint,
                        gates,
                        approvals,
                    });
                    Some(list)
                }
                _ => None,
            };
        }
        if let Some(Some((w, written, span))) = last_weight {
            if w != Weight::FULL {
                self.error(
                    span,
                    format!(
                        "stage {}: the last stage's weight is {}; the last stage must be 100 so that the rollout ends fully promoted",
                        list.len(),
                        fmt_num(written)
                    ),
                );
            }
        }
        (stages, total)
    }

    /// A stage weight: a percentage in (0, 100] that is a whole number of basis points.
    /// Returns the weight and the percentage as written.
    fn weight(&mut self, v: &S<Num>, ctx: &str) -> Option<(Weight, f64)> {
        let p = self.number(v, &format!("{ctx}: weight"))?;
        if p <= 0.0 || p > 100.0 {
            self.error(
                v.span(),
                format!(
                    "{ctx}: weight {} is outside (0, 100]; expected a percentage of traffic above 0 and at most 100",
                    fmt_num(p)
                ),
            );
            return None;
        }
        match Weight::from_percent(p) {
            Some(w) => Some((w, p)),
            None => {
                self.error(
                    v.span(),
                    format!("{ctx}: weight {} is finer than 0.01%; expected a percentage with at most two decimals", fmt_num(p)),
                );
                None
            }
        }
    }

    /// Merges a stage's override of one metric over its default (the window is merged by
    /// `effective_window`) and checks the result; `None` when the stage has no gate for the
    /// metric or part of it is wrong (already reported).
    fn effective_gate(
        &mut self,
        metric: Metric,
        over: Option<&GateSpec>,
        default: Option<&GateSpec>,
        defaults: &Defaults,
        window: Option<Span>,
        ctx: &str,
    ) -> Option<Gate> {
        if over.is_none() && default.is_none() {
            return None;
        }
        // The fail level: the override's when it gives one, else the default's.
        let over_fail = over.map_or(Field::Absent, |o| o.fail.clone());
        let fail_inherited = !over_fail.present();
        let fail = match over_fail.or(default.map_or(Field::Absent, |d| d.fail.clone())) {
            Field::Valid(f) => Some(f),
            Field::Invalid => None,
            Field::Absent => {
                // Only reachable when there is an override and no default gate.
                if let Some(o) = over {
                    self.error(
                        o.span.clone(),
                        format!(
                            "{ctx}: [gates] has no {} gate to inherit a fail level from; expected max or min here",
                            metric.key()
                        ),
                    );
                }
                None
            }
        };
        // The warn level: replaced together with the fail level, or set on its own.
        let over_warn = over.map_or(Field::Absent, |o| o.warn.clone());
        let (warn, warn_from_override) = if !fail_inherited || over_warn.present() {
            (over_warn, true)
        } else {
            (default.map_or(Field::Absent, |d| d.warn.clone()), false)
        };
        if let (Some((bound, t, _)), Field::Valid((w, ws)), true) =
            (&fail, &warn, warn_from_override)
        {
            self.check_warn(ctx, metric, (*bound, *t), (*w, ws.clone()), fail_inherited);
        }
        let scope = inherited(over, default, |g| &g.scope);
        let min_samples =
            inherited(over, default, |g| &g.min_samples).or(defaults.min_samples.clone());
        let (bound, threshold, _) = fail?;
        let warn = match warn {
            Field::Absent => None,
            Field::Invalid => return None,
            Field::Valid((w, _)) => Some(w),
        };
        let scope = match scope {
            Field::Absent => default_scope(metric),
            Field::Invalid => return None,
            Field::Valid(s) => s,
        };
        let min_samples = match min_samples {
            Field::Absent => DEFAULT_MIN_SAMPLES,
            Field::Invalid => return None,
            Field::Valid(m) => m,
        };
        Some(Gate {
            metric,
            scope,
            bound,
            threshold,
            warn,
            window: window?,
            min_samples,
        })
    }

    /// `[gates].evaluate_every`, checked against every effective window: a gate must be
    /// evaluated at least once per window.
    fn evaluate_every(&mut self, defaults: &Defaults, windows: &[WindowUse]) -> Option<Span> {
        let (every, span) = match &defaults.evaluate_every {
            Field::Absent => (DEFAULT_EVALUATE_EVERY, None),
            Field::Invalid => return None,
            Field::Valid((s, span)) => (*s, Some(span.clone())),
        };
        let too_short: Vec<&WindowUse> = windows.iter().filter(|w| w.window < every).collect();
        if too_short.is_empty() {
            return Some(every);
        }
        if let Some(span) = span {
            // The interval was written: blame it once, naming the shortest window.
            if let Some(short) = too_short.iter().min_by_key(|w| w.window) {
                self.error(
                    span,
                    format!(
                        "gates.evaluate_every {} is longer than the {} window of {}; a gate must be evaluated at least once per window",
                        fmt_span(every),
                        fmt_span(short.window),
                        short.user
                    ),
                );
            }
        } else {
            // The default interval: blame each window that is too short, once.
            let mut seen: Vec<&Range<usize>> = Vec::new();
            for w in too_short {
                if let WindowSource::Stage(s) | WindowSource::Defaults(s) = &w.source {
                    if !seen.contains(&s) {
                        seen.push(s);
                        self.error(
                            s.clone(),
                            format!(
                                "window {} (used by {}) is shorter than evaluate_every ({} by default); a gate must be evaluated at least once per window",
                                fmt_span(w.window),
                                w.user,
                                fmt_span(every)
                            ),
                        );
                    }
                }
            }
        }
        None
    }

    /// `[simulation]`.
    fn simulation(&mut self, raw: &S<RawSimulation>, total: Option<Span>) -> Option<Simulation> {
        let r = raw.get_ref();
        let table = raw.span();
        let ctx = "[simulation]";
        let rps = match &r.rps {
            None => {
                self.missing(
                    table.clone(),
                    ctx,
                    "rps",
                    "the mean request rate of the whole service, e.g. rps = 125",
                );
                None
            }
            Some(v) => self.positive(v, "simulation.rps"),
        };
        let daily_profile = Field::of(r.daily_profile.as_ref(), |v| self.daily_profile(v));
        let stable = match &r.stable {
            None => {
                self.missing(
                    table.clone(),
                    ctx,
                    "stable",
                    "the stable version's model, e.g. stable = { p50_ms = 145, p95_ms = 385, p99_ms = 720, error_rate = \"0.28%\" }",
                );
                None
            }
            Some(v) => self.service_model(v),
        };
        let features = match (&r.features, &r.overhead) {
            (Some(_), Some(o)) => {
                self.error(
                    o.span(),
                    "simulation: overhead and features are both given; expected one of them: overhead (one unnamed total) or features (named)".into(),
                );
                None
            }
            (Some(list), None) => self.features(list),
            (None, Some(o)) => {
                let o = o.get_ref();
                let (latency, error_rate) = self.overhead_pair(
                    o.latency.as_ref(),
                    o.error_rate.as_ref(),
                    "simulation.overhead",
                );
                Some(vec![Feature {
                    name: "canary overhead".into(),
                    latency: latency?,
                    error_rate: error_rate?,
                }])
            }
            (None, None) => Some(Vec::new()),
        };
        let load = match &r.load {
            None => Some(LoadModel::default()),
            Some(l) => {
                let l = l.get_ref();
                let contention = Field::of(l.contention.as_ref(), |v| {
                    self.rate_in(
                        v,
                        "simulation.load.contention",
                        |x| (0.0..=1.0).contains(&x),
                        "a share between 0 and 1",
                    )
                });
                let stable_latency = Field::of(l.stable_latency.as_ref(), |v| {
                    self.rate_in(
                        v,
                        "simulation.load.stable_latency",
                        |x| x >= 0.0,
                        "a rate of at least 0%, such as \"+2%\"",
                    )
                });
                match (
                    valid_or_none(contention, 0.0),
                    valid_or_none(stable_latency, 0.0),
                ) {
                    (Some(contention), Some(stable_latency)) => Some(LoadModel {
                        contention,
                        stable_latency,
                    }),
                    _ => None,
                }
            }
        };
        let canary_traffic = Field::of(r.canary_traffic.as_ref(), |v| {
            self.rate_in(
                v,
                "simulation.canary_traffic",
                |x| (0.0..=1.0).contains(&x),
                "a rate between 0% and 100%",
            )
        });
        let router_delay = Field::of(r.router_delay.as_ref(), |v| {
            self.duration(v, "simulation.router_delay")
        });
        let mut faults = Some(Vec::new());
        for (i, f) in r.faults.iter().flat_map(|l| l.get_ref().iter()).enumerate() {
            let ctx = format!("simulation fault {}", i + 1);
            let fr = f.get_ref();
            let at = self.at(fr.at.as_ref(), f.span(), &ctx, total);
            let keys = FaultKeys {
                span: f.span(),
                cohort: fr.cohort.as_ref(),
                duration: fr.duration.as_ref(),
                add_latency: fr.add_latency.as_ref(),
                fraction: fr.fraction.as_ref(),
                error_rate: fr.error_rate.as_ref(),
            };
            let fault = self.fault(&keys, at, &ctx);
            faults = match (faults, fault) {
                (Some(mut list), Some(fault)) => {
                    list.push(fault);
                    Some(list)
                }
                _ => None,
            };
        }
        let users = Field::of(r.users.as_ref(), |v| self.simulated_users(v));
        let daily_profile = match daily_profile {
            Field::Absent => None,
            Field::Invalid => return None,
            Field::Valid(p) => Some(p),
        };
        Some(Simulation {
            rps: rps?,
            daily_profile,
            stable: stable?,
            features: features?,
            load: load?,
            faults: faults?,
            canary_traffic: valid_or_none(canary_traffic, 1.0)?,
            router_delay: valid_or_none(router_delay, DEFAULT_ROUTER_DELAY)?,
            users: valid_or_none(users, DEFAULT_SIMULATED_USERS)?,
        })
    }

    /// `simulation.users`: a whole number from 1 to [`MAX_SIMULATED_USERS`].
    fn simulated_users(&mut self, v: &S<Num>) -> Option<u32> {
        let what = "simulation.users";
        let x = self.number(v, what)?;
        if x < 1.0 || x.fract() != 0.0 || x > f64::from(MAX_SIMULATED_USERS) {
            self.error(
                v.span(),
                format!(
                    "{what}: expected a whole number of simulated users from 1 to {} (the population flags are counted over), found {}",
                    // 10,000,000 as people write it.
                    MAX_SIMULATED_USERS
                        .to_string()
                        .as_bytes()
                        .rchunks(3)
                        .rev()
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .collect::<Vec<_>>()
                        .join(","),
                    fmt_num(x)
                ),
            );
            return None;
        }
        Some(x as u32)
    }

    /// `simulation.daily_profile`: exactly 24 numbers of at least 0.
    fn daily_profile(&mut self, v: &S<Vec<S<Num>>>) -> Option<[f64; 24]> {
        let list = v.get_ref();
        if list.len() != 24 {
            self.error(
                v.span(),
                format!(
                    "simulation.daily_profile: has {} values; expected exactly 24 (one multiplier of rps per hour, hour 0 = midnight UTC)",
                    list.len()
                ),
            );
            return None;
        }
        let mut out = [0.0; 24];
        let mut ok = true;
        for (slot, (hour, x)) in out.iter_mut().zip(list.iter().enumerate()) {
            match self.non_negative(x, &format!("simulation.daily_profile hour {hour}")) {
                Some(x) => *slot = x,
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// `simulation.stable`.
    fn service_model(&mut self, raw: &S<RawServiceModel>) -> Option<ServiceModel> {
        let r = raw.get_ref();
        let ctx = "simulation.stable";
        let latency =
            |this: &mut Self, v: &Option<S<Num>>, key: &str| -> Option<(f64, Range<usize>)> {
                match v {
                    None => {
                        this.missing(raw.span(), ctx, key, "a latency quantile in milliseconds");
                        None
                    }
                    Some(v) => this
                        .positive(v, &format!("{ctx}.{key}"))
                        .map(|x| (x, v.span())),
                }
            };
        let p50 = latency(self, &r.p50_ms, "p50_ms");
        let p95 = latency(self, &r.p95_ms, "p95_ms");
        let p99 = latency(self, &r.p99_ms, "p99_ms");
        let mut ordered = true;
        for ((lo, lo_key), (hi, hi_key)) in [
            ((&p50, "p50_ms"), (&p95, "p95_ms")),
            ((&p95, "p95_ms"), (&p99, "p99_ms")),
        ] {
            if let (Some((lo, _)), Some((hi, span))) = (lo, hi) {
                if hi <= lo {
                    ordered = false;
                    self.error(
                        span.clone(),
                        format!(
                            "{ctx}: {hi_key} {} is not above {lo_key} {}; expected 0 < p50_ms < p95_ms < p99_ms",
                            fmt_num(*hi),
                            fmt_num(*lo)
                        ),
                    );
                }
            }
        }
        let error_rate = match &r.error_rate {
            None => {
                self.missing(
                    raw.span(),
                    ctx,
                    "error_rate",
                    "the stable error rate, e.g. error_rate = \"0.28%\"",
                );
                None
            }
            Some(v) => self.rate_in(
                v,
                &format!("{ctx}.error_rate"),
                |x| (0.0..1.0).contains(&x),
                "a rate of at least 0% and below 100%",
            ),
        };
        if !ordered {
            return None;
        }
        Some(ServiceModel {
            p50_ms: p50?.0,
            p95_ms: p95?.0,
            p99_ms: p99?.0,
            error_rate: error_rate?,
        })
    }

    /// A feature's or the overhead's `latency` and `error_rate`, with their defaults of 0.
    fn overhead_pair(
        &mut self,
        latency: Option<&S<NumOrText>>,
        error_rate: Option<&S<NumOrText>>,
        ctx: &str,
    ) -> (Option<f64>, Option<f64>) {
        let latency = Field::of(latency, |v| {
            self.rate_in(
                v,
                &format!("{ctx}.latency"),
                |x| x > -0.9,
                "a relative change above -90%, such as \"+3.5%\"",
            )
        });
        let error_rate = Field::of(error_rate, |v| {
            self.rate_in(
                v,
                &format!("{ctx}.error_rate"),
                |x| (0.0..1.0).contains(&x),
                "an added error rate of at least 0% and below 100%, such as \"+0.05%\"",
            )
        });
        (valid_or_none(latency, 0.0), valid_or_none(error_rate, 0.0))
    }

    /// `simulation.features`.
    fn features(&mut self, list: &S<Vec<S<RawFeature>>>) -> Option<Vec<Feature>> {
        let mut out = Some(Vec::new());
        let mut names: Vec<(String, usize)> = Vec::new();
        for (i, f) in list.get_ref().iter().enumerate() {
            let n = i + 1;
            let ctx = format!("simulation feature {n}");
            let r = f.get_ref();
            let name = match &r.name {
                None => {
                    self.missing(f.span(), &ctx, "name", "the feature's name as reports show it");
                    None
                }
                Some(v) => self.text(v, &format!("{ctx}: name")).and_then(|name| {
                    if let Some((_, first)) = names.iter().find(|(seen, _)| *seen == name) {
                        self.error(
                            v.span(),
                            format!("{ctx}: name {name:?} is already used by feature {first}; feature names must be unique"),
                        );
                        None
                    } else {
                        names.push((name.clone(), n));
                        Some(name)
                    }
                }),
            };
            let (latency, error_rate) =
                self.overhead_pair(r.latency.as_ref(), r.error_rate.as_ref(), &ctx);
            out = match (out, name, latency, error_rate) {
                (Some(mut v), Some(name), Some(latency), Some(error_rate)) => {
                    v.push(Feature {
                        name,
                        latency,
                        error_rate,
                    });
                    Some(v)
                }
                _ => None,
            };
        }
        out
    }

    /// A fault's or rehearsal's `at`: required, and before the end of the plan.
    fn at(
        &mut self,
        v: Option<&S<Dur>>,
        table: Range<usize>,
        ctx: &str,
        total: Option<Span>,
    ) -> Option<PlanTime> {
        let Some(v) = v else {
            self.missing(
                table,
                ctx,
                "at",
                "when it starts, in plan time, e.g. at = \"12h\"",
            );
            return None;
        };
        let at = self.duration(v, &format!("{ctx}: at"))?;
        if let Some(total) = total {
            if at >= total {
                self.error(
                    v.span(),
                    format!(
                        "{ctx}: at {} is not before the end of the plan ({} of stages); expected a time while the rollout runs",
                        fmt_span(at),
                        fmt_span(total)
                    ),
                );
                return None;
            }
        }
        Some(PlanTime(at.0))
    }

    /// The keys of a fault other than `at`.
    fn fault(&mut self, k: &FaultKeys<'_>, at: Option<PlanTime>, ctx: &str) -> Option<Fault> {
        let cohort = match k.cohort {
            None => {
                self.missing(k.span.clone(), ctx, "cohort", "\"canary\" or \"stable\"");
                None
            }
            Some(v) => match self.string(v, &format!("{ctx}: cohort")) {
                None => None,
                Some("canary") => Some(Cohort::Canary),
                Some("stable") => Some(Cohort::Stable),
                Some(other) => {
                    self.error(
                        v.span(),
                        format!("{ctx}: cohort {other:?} is not one of \"canary\" or \"stable\""),
                    );
                    None
                }
            },
        };
        let duration = Field::of(k.duration, |v| {
            self.positive_duration(v, &format!("{ctx}: duration"))
        });
        let effect = match (k.add_latency, k.error_rate) {
            (Some(_), Some(err)) => {
                self.error(
                    err.span(),
                    format!("{ctx}: has both add_latency and error_rate; expected exactly one effect per fault"),
                );
                None
            }
            (None, None) => {
                self.error(
                    k.span.clone(),
                    format!("{ctx}: has no effect; expected add_latency = \"800ms\" (with an optional fraction) or error_rate = \"3%\""),
                );
                None
            }
            (Some(lat), None) => {
                let ms = self.positive_duration(lat, &format!("{ctx}: add_latency"));
                let fraction = Field::of(k.fraction, |v| {
                    self.rate_in(
                        v,
                        &format!("{ctx}: fraction"),
                        |x| x > 0.0 && x <= 1.0,
                        "a share above 0 and at most 1 (or up to \"100%\")",
                    )
                });
                match (ms, valid_or_none(fraction, 1.0)) {
                    (Some(ms), Some(fraction)) => Some(FaultEffect::AddLatency {
                        ms: ms.0 as f64,
                        fraction,
                    }),
                    _ => None,
                }
            }
            (None, Some(err)) => {
                if let Some(f) = k.fraction {
                    self.error(
                        f.span(),
                        format!("{ctx}: fraction applies only to add_latency; an error_rate fault already says what share of requests fails"),
                    );
                }
                let rate = self.rate_in(
                    err,
                    &format!("{ctx}: error_rate"),
                    |x| x > 0.0 && x <= 1.0,
                    "a rate above 0% and at most 100%",
                );
                if k.fraction.is_some() {
                    None
                } else {
                    rate.map(|rate| FaultEffect::ErrorRate { rate })
                }
            }
        };
        let duration = match duration {
            Field::Absent => None,
            Field::Invalid => return None,
            Field::Valid(d) => Some(d),
        };
        Some(Fault {
            cohort: cohort?,
            at: at?,
            duration,
            effect: effect?,
        })
    }

    /// `[[rehearsals]]`.
    fn rehearsals(
        &mut self,
        raw: Option<&S<Vec<S<RawRehearsal>>>>,
        has_simulation: bool,
        total: Option<Span>,
    ) -> Option<Vec<Rehearsal>> {
        let Some(list) = raw else {
            return Some(Vec::new());
        };
        let mut out = Some(Vec::new());
        if !has_simulation {
            if let Some(first) = list.get_ref().first() {
                self.error(
                    first.span(),
                    "rehearsals: a rehearsal runs in the simulator or on live traffic; expected a [simulation] section (for `ramp simulate`) or a [router] (for `ramp rehearse`)".into(),
                );
                out = None;
            }
        }
        let mut names: Vec<(String, usize)> = Vec::new();
        for (i, reh) in list.get_ref().iter().enumerate() {
            let n = i + 1;
            let ctx = format!("rehearsal {n}");
            let r = reh.get_ref();
            let name = match &r.name {
                None => {
                    self.missing(reh.span(), &ctx, "name", "the name reports show, e.g. name = \"Simulated P95 breach\"");
                    None
                }
                Some(v) => self.text(v, &format!("{ctx}: name")).and_then(|name| {
                    if let Some((_, first)) = names.iter().find(|(seen, _)| *seen == name) {
                        self.error(
                            v.span(),
                            format!("{ctx}: name {name:?} is already used by rehearsal {first}; rehearsal names must be unique"),
                        );
                        None
                    } else {
                        names.push((name.clone(), n));
                        Some(name)
                    }
                }),
            };
            let at = self.at(r.at.as_ref(), reh.span(), &ctx, total);
            let fault = match &r.fault {
                None => {
                    self.missing(
                        reh.span(),
                        &ctx,
                        "fault",
                        "the fault to inject, e.g. fault = { cohort = \"canary\", add_latency = \"800ms\" }",
                    );
                    None
                }
                Some(f) => {
                    let fr = f.get_ref();
                    let keys = FaultKeys {
                        span: f.span(),
                        cohort: fr.cohort.as_ref(),
                        duration: fr.duration.as_ref(),
                        add_latency: fr.add_latency.as_ref(),
                        fraction: fr.fraction.as_ref(),
                        error_rate: fr.error_rate.as_ref(),
                    };
                    self.fault(&keys, at, &format!("{ctx}: fault"))
                }
            };
            let target = Field::of(r.target.as_ref(), |v| {
                self.positive_duration(v, &format!("{ctx}: target"))
            });
            let restore_window = Field::of(r.restore_window.as_ref(), |v| {
                self.positive_duration(v, &format!("{ctx}: restore_window"))
            });
            let restore_tolerance = Field::of(r.restore_tolerance.as_ref(), |v| {
                self.rate_in(
                    v,
                    &format!("{ctx}: restore_tolerance"),
                    |x| x > 0.0,
                    "a rate above 0%, such as \"10%\"",
                )
            });
            out = match (
                out,
                name,
                fault,
                valid_or_none(target, DEFAULT_TARGET),
                valid_or_none(restore_window, DEFAULT_RESTORE_WINDOW),
                valid_or_none(restore_tolerance, DEFAULT_RESTORE_TOLERANCE),
            ) {
                (
                    Some(mut v),
                    Some(name),
                    Some(fault),
                    Some(target),
                    Some(restore_window),
                    Some(restore_tolerance),
                ) => {
                    v.push(Rehearsal {
                        name,
                        fault,
                        target,
                        restore_window,
                        restore_tolerance,
                    });
                    Some(v)
                }
                _ => None,
            };
        }
        out
    }

    // ----- live-run sections -----

    /// `[router]`: `None` when the plan has none (it can still be simulated); otherwise
    /// exactly one of `admin` and `proxy_config`, and `admin_token_file` only with `admin`.
    /// `[flags.NAME]`: validated by ramp-flags (the same rules as a standalone flags file),
    /// its errors located in the plan.
    fn flags(
        &mut self,
        raw: Option<&S<ramp_flags::flags::raw::RawFlags>>,
    ) -> Option<ramp_flags::flags::FlagSet> {
        let Some(raw) = raw else {
            return Some(ramp_flags::flags::FlagSet::empty());
        };
        match ramp_flags::flags::raw::validate(raw.get_ref()) {
            Ok(set) => Some(set),
            Err(errors) => {
                for e in errors {
                    self.error(e.span, format!("flags: {}", e.message));
                }
                None
            }
        }
    }

    /// `[ofrep]`: a socket address, and a token off loopback.
    fn ofrep(&mut self, raw: Option<&S<RawOfrep>>) -> Option<crate::plan::Ofrep> {
        let Some(raw) = raw else {
            return Some(crate::plan::Ofrep::default());
        };
        let r = raw.get_ref();
        let listen = Field::of(r.listen.as_ref(), |v| {
            let t = self.string(v, "ofrep.listen")?;
            match t.parse::<SocketAddr>() {
                Ok(addr) => Some((addr, v.span())),
                Err(_) => {
                    self.error(
                        v.span(),
                        format!("ofrep.listen: {t:?} is not a socket address; expected an IP address and a port such as \"127.0.0.1:8016\""),
                    );
                    None
                }
            }
        });
        let token_file = Field::of(r.token_file.as_ref(), |v| self.path(v, "ofrep.token_file"));
        if let Field::Valid((addr, span)) = &listen {
            if !addr.ip().to_canonical().is_loopback() && !token_file.present() {
                self.error(
                    span.clone(),
                    format!("ofrep.listen: {addr} is not a loopback address; set ofrep.token_file so that only your applications can read the flags, or listen on 127.0.0.1"),
                );
                return None;
            }
        }
        let listen = match listen {
            Field::Absent => crate::plan::Ofrep::default().listen,
            Field::Valid((addr, _)) => addr,
            Field::Invalid => return None,
        };
        let token_file = match token_file {
            Field::Absent => None,
            Field::Valid(p) => Some(p),
            Field::Invalid => return None,
        };
        Some(crate::plan::Ofrep { listen, token_file })
    }

    fn router(&mut self, raw: Option<&S<RawRouter>>) -> Option<Option<Router>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        let r = raw.get_ref();
        let admin = Field::of(r.admin.as_ref(), |v| self.admin_url(v));
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
        match (admin, config) {
            (Field::Valid(url), Field::Absent) => Some(Some(Router::Admin {
                url,
                token_file: token_file?,
            })),
            (Field::Absent, Field::Valid(config)) => Some(Some(Router::Embedded { config })),
            _ => None,
        }
    }

    /// `router.admin`: an `http://host:port` base URL without a path, returned without a
    /// trailing slash so that the live driver can append `/weights` and the like.
    fn admin_url(&mut self, v: &S<Text>) -> Option<String> {
        let t = self.text(v, "router.admin")?;
        match parse_http_url(&t, ADMIN_EXAMPLE) {
            Err(e) => {
                self.error(v.span(), format!("router.admin: {e}"));
                None
            }
            Ok(u) if !u.rest.is_empty() && u.rest != "/" => {
                self.error(
                    v.span(),
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

    /// A URL a check fetches or a hook posts to, kept as written.
    fn http_url(&mut self, v: &S<Text>, what: &str, example: &str) -> Option<String> {
        let t = self.text(v, what)?;
        match parse_http_url(&t, example) {
            Ok(_) => Some(t),
            Err(e) => {
                self.error(v.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    /// A file path, kept as written (the binary resolves it against the plan's directory).
    fn path(&mut self, v: &S<Text>, what: &str) -> Option<PathBuf> {
        self.text(v, what).map(PathBuf::from)
    }

    /// `[control]`: a socket address, and a token whenever that address is not loopback.
    fn control(&mut self, raw: Option<&S<RawControl>>) -> Option<Control> {
        let Some(raw) = raw else {
            return Some(Control::default());
        };
        let r = raw.get_ref();
        let listen = Field::of(r.listen.as_ref(), |v| {
            let t = self.string(v, "control.listen")?;
            match t.parse::<SocketAddr>() {
                Ok(addr) => Some((addr, v.span())),
                Err(_) => {
                    self.error(
                        v.span(),
                        format!("control.listen: {t:?} is not a socket address; expected an IP address and a port such as \"127.0.0.1:9911\" or \"[::1]:9911\" (not a host name)"),
                    );
                    None
                }
            }
        });
        let token_file = Field::of(r.token_file.as_ref(), |v| {
            self.path(v, "control.token_file")
        });
        let token_env = Field::of(r.token_env.as_ref(), |v| {
            let t = self.string(v, "control.token_env")?;
            let mut chars = t.chars();
            let valid = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid {
                Some(t.to_string())
            } else {
                self.error(
                    v.span(),
                    format!("control.token_env: {t:?} is not an environment variable name; expected ASCII letters, digits and '_', not starting with a digit, such as \"RAMP_TOKEN\""),
                );
                None
            }
        });
        if let Field::Valid((addr, span)) = &listen {
            let loopback = addr.ip().to_canonical().is_loopback();
            if !loopback && !token_file.present() && !token_env.present() {
                self.error(
                    span.clone(),
                    format!("control.listen: {addr} is not a loopback address, so anyone who can reach it could pause, approve or abort the rollout; set token_file or token_env, or listen on 127.0.0.1"),
                );
                return None;
            }
        }
        Some(Control {
            listen: written(listen)?.map(|(addr, _)| addr),
            token_file: written(token_file)?,
            token_env: written(token_env)?,
        })
    }

    /// `[[checks]]`: each with a unique name and exactly one probe.
    fn checks(&mut self, raw: Option<&S<Vec<S<RawCheck>>>>) -> Option<Vec<Check>> {
        let Some(list) = raw else {
            return Some(Vec::new());
        };
        let mut out = Some(Vec::new());
        let mut names: Vec<(String, usize)> = Vec::new();
        for (i, c) in list.get_ref().iter().enumerate() {
            let n = i + 1;
            let ctx = format!("check {n}");
            let r = c.get_ref();
            let name = self.unique_name(
                r.name.as_ref(),
                c.span(),
                &ctx,
                ("check", "API health"),
                (&mut names, n),
            );
            let url = Field::of(r.http.as_ref(), |v| {
                self.http_url(v, &format!("{ctx}: http"), CHECK_URL_EXAMPLE)
            });
            let argv = Field::of(r.command.as_ref(), |v| {
                self.argv(v, &format!("{ctx}: command"))
            });
            let status = Field::of(r.expect_status.as_ref(), |v| {
                self.status(v, &format!("{ctx}: expect_status"))
            });
            let timeout = self.probe_timeout(r.timeout.as_ref(), &ctx);
            match (&r.http, &r.command) {
                (None, None) => self.error(
                    c.span(),
                    format!("{ctx}: has no probe; expected http = {CHECK_URL_EXAMPLE:?} (a GET that must answer expect_status) or command = {COMMAND_EXAMPLE} (a program that must exit 0)"),
                ),
                (Some(_), Some(cmd)) => self.error(
                    cmd.span(),
                    format!("{ctx}: has both http and command; expected exactly one probe: http (a GET that must answer expect_status) or command (a program that must exit 0)"),
                ),
                (None, Some(_)) => {
                    if let Some(s) = &r.expect_status {
                        self.error(
                            s.span(),
                            format!("{ctx}: expect_status applies only to an http check; a command check passes when its program exits 0"),
                        );
                    }
                }
                (Some(_), None) => {}
            }
            let probe = match (url, argv, status) {
                (Field::Valid(url), Field::Absent, status) => {
                    valid_or_none(status, DEFAULT_EXPECT_STATUS)
                        .map(|expect_status| Probe::Http { url, expect_status })
                }
                (Field::Absent, Field::Valid(argv), Field::Absent) => Some(Probe::Command { argv }),
                _ => None,
            };
            out = match (out, name, probe, timeout) {
                (Some(mut v), Some(name), Some(probe), Some(timeout)) => {
                    v.push(Check {
                        name,
                        probe,
                        timeout,
                    });
                    Some(v)
                }
                _ => None,
            };
        }
        out
    }

    /// `[[hooks]]`: each with a unique name, at least one event and exactly one action.
    fn hooks(&mut self, raw: Option<&S<Vec<S<RawHook>>>>) -> Option<Vec<Hook>> {
        let Some(list) = raw else {
            return Some(Vec::new());
        };
        let mut out = Some(Vec::new());
        let mut names: Vec<(String, usize)> = Vec::new();
        for (i, h) in list.get_ref().iter().enumerate() {
            let n = i + 1;
            let ctx = format!("hook {n}");
            let r = h.get_ref();
            let name = self.unique_name(
                r.name.as_ref(),
                h.span(),
                &ctx,
                ("hook", "notify"),
                (&mut names, n),
            );
            let on = match &r.on {
                None => {
                    self.missing(
                        h.span(),
                        &ctx,
                        "on",
                        "the events that run it, e.g. on = [\"stage_start\", \"rollback\"]",
                    );
                    None
                }
                Some(v) => self.events(v, &ctx),
            };
            let url = Field::of(r.post.as_ref(), |v| {
                self.http_url(v, &format!("{ctx}: post"), HOOK_URL_EXAMPLE)
            });
            let argv = Field::of(r.command.as_ref(), |v| {
                self.argv(v, &format!("{ctx}: command"))
            });
            let timeout = self.probe_timeout(r.timeout.as_ref(), &ctx);
            match (&r.post, &r.command) {
                (None, None) => self.error(
                    h.span(),
                    format!("{ctx}: has no action; expected post = {HOOK_URL_EXAMPLE:?} (the event as a JSON body) or command = {COMMAND_EXAMPLE} (the event in RAMP_EVENT)"),
                ),
                (Some(_), Some(cmd)) => self.error(
                    cmd.span(),
                    format!("{ctx}: has both post and command; expected exactly one action: post (the event as a JSON body) or command (the event in RAMP_EVENT)"),
                ),
                _ => {}
            }
            let action = match (url, argv) {
                (Field::Valid(url), Field::Absent) => Some(HookAction::Post { url }),
                (Field::Absent, Field::Valid(argv)) => Some(HookAction::Command { argv }),
                _ => None,
            };
            out = match (out, name, on, action, timeout) {
                (Some(mut v), Some(name), Some(on), Some(action), Some(timeout)) => {
                    v.push(Hook {
                        name,
                        on,
                        action,
                        timeout,
                    });
                    Some(v)
                }
                _ => None,
            };
        }
        out
    }

    /// A check's or hook's name: required, not empty, and unique among its kind. `kind` is
    /// the kind and an example name; `seen` the names so far (with the entry that used each)
    /// and this entry's number.
    fn unique_name(
        &mut self,
        v: Option<&S<Text>>,
        table: Range<usize>,
        ctx: &str,
        (kind, example): (&str, &str),
        (seen, n): (&mut Vec<(String, usize)>, usize),
    ) -> Option<String> {
        let Some(v) = v else {
            self.missing(
                table,
                ctx,
                "name",
                &format!("what the log calls it, e.g. name = {example:?}"),
            );
            return None;
        };
        let name = self.text(v, &format!("{ctx}: name"))?;
        if let Some((_, first)) = seen.iter().find(|(s, _)| *s == name) {
            self.error(
                v.span(),
                format!("{ctx}: name {name:?} is already used by {kind} {first}; {kind} names must be unique"),
            );
            return None;
        }
        seen.push((name.clone(), n));
        Some(name)
    }

    /// A check's or hook's `timeout`: default 10 s, longer than 0 and at most an hour.
    fn probe_timeout(&mut self, v: Option<&S<Dur>>, ctx: &str) -> Option<Span> {
        let Some(v) = v else {
            return Some(DEFAULT_PROBE_TIMEOUT);
        };
        let t = self.positive_duration(v, &format!("{ctx}: timeout"))?;
        if t > MAX_PROBE_TIMEOUT {
            self.error(
                v.span(),
                format!(
                    "{ctx}: timeout {} is longer than {}; expected at most {}",
                    fmt_span(t),
                    fmt_span(MAX_PROBE_TIMEOUT),
                    fmt_span(MAX_PROBE_TIMEOUT)
                ),
            );
            return None;
        }
        Some(t)
    }

    /// A check's `expect_status`: a whole number from 100 to 599.
    fn status(&mut self, v: &S<Num>, what: &str) -> Option<u16> {
        let x = self.number(v, what)?;
        if x.fract() != 0.0 || !(100.0..=599.0).contains(&x) {
            self.error(
                v.span(),
                format!(
                    "{what}: {} is not an HTTP status; expected a whole number from 100 to 599",
                    fmt_num(x)
                ),
            );
            return None;
        }
        Some(x as u16)
    }

    /// The strings of a string-or-array value, each with its 1-based position and its span;
    /// a single string is entry 1 and spans the value. Every entry that is not a string is
    /// reported and left out, so that the caller still checks the others; the flag says
    /// whether every entry was a string. `expected` describes the value for a message about
    /// a value that is neither a string nor an array.
    fn entries<'t>(
        &mut self,
        v: &'t S<TextList>,
        what: &str,
        expected: &str,
    ) -> (Vec<Entry<'t>>, bool) {
        match v.get_ref() {
            TextList::One(t) => (vec![(1, t.as_str(), v.span())], true),
            TextList::Wrong(found) => {
                self.error(
                    v.span(),
                    format!("{what}: expected {expected}, found {found}"),
                );
                (Vec::new(), false)
            }
            TextList::Many(list) => {
                let mut out = Vec::with_capacity(list.len());
                let mut ok = true;
                for (i, e) in list.iter().enumerate() {
                    match self.string(e, &format!("{what} entry {}", i + 1)) {
                        Some(t) => out.push((i + 1, t, e.span())),
                        None => ok = false,
                    }
                }
                (out, ok)
            }
        }
    }

    /// A command: an array of the program and its arguments, run directly, never through a
    /// shell; so a single string is an error rather than a command line to split.
    fn argv(&mut self, v: &S<TextList>, what: &str) -> Option<Vec<String>> {
        let expected =
            format!("an array of the program and its arguments such as {COMMAND_EXAMPLE}");
        match v.get_ref() {
            TextList::One(t) => {
                self.error(
                    v.span(),
                    format!("{what}: expected {expected}, found the string {t:?}; commands are run directly, never through a shell"),
                );
                return None;
            }
            TextList::Many(list) if list.is_empty() => {
                self.error(v.span(), format!("{what}: is empty; expected {expected}"));
                return None;
            }
            TextList::Many(_) | TextList::Wrong(_) => {}
        }
        let (entries, mut ok) = self.entries(v, what, &expected);
        for (n, arg, span) in &entries {
            if *n == 1 && arg.trim().is_empty() {
                self.error(
                    span.clone(),
                    format!("{what}: the program (the first entry) is empty; expected a program such as \"/usr/bin/pg_dump\""),
                );
                ok = false;
            }
            if arg.contains('\0') {
                self.error(
                    span.clone(),
                    format!("{what} entry {n}: contains a NUL character, which a program or argument cannot hold"),
                );
                ok = false;
            }
        }
        ok.then(|| entries.iter().map(|(_, t, _)| t.to_string()).collect())
    }

    /// A hook's `on`: one event name or an array of them, at least one, none twice.
    fn events(&mut self, v: &S<TextList>, ctx: &str) -> Option<Vec<HookEvent>> {
        let what = format!("{ctx}: on");
        let valid = HOOK_EVENTS
            .iter()
            .map(|(k, _)| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        if matches!(v.get_ref(), TextList::Many(list) if list.is_empty()) {
            self.error(
                v.span(),
                format!("{what}: is empty; expected at least one event from {valid}"),
            );
            return None;
        }
        let (entries, mut ok) = self.entries(
            v,
            &what,
            &format!("an event or an array of events from {valid}"),
        );
        let mut out = Vec::with_capacity(entries.len());
        for (_, name, span) in entries {
            match HOOK_EVENTS.iter().find(|(k, _)| *k == name) {
                None => {
                    self.error(
                        span,
                        format!("{what}: {name:?} is not an event; expected one of {valid}"),
                    );
                    ok = false;
                }
                Some((_, event)) if out.contains(event) => {
                    self.error(
                        span,
                        format!("{what}: {name:?} is listed twice; list each event once"),
                    );
                    ok = false;
                }
                Some((_, event)) => out.push(*event),
            }
        }
        ok.then_some(out)
    }

    /// A stage's `approvals`: approver names (one string or an array), none empty, none
    /// twice. An empty array means no approval is needed.
    fn approvals(&mut self, v: &S<TextList>, ctx: &str) -> Option<Vec<String>> {
        let what = format!("{ctx}: approvals");
        let (entries, mut ok) = self.entries(
            v,
            &what,
            "an array of the people who must approve, such as [\"SRE Lead\"]",
        );
        let mut out: Vec<String> = Vec::with_capacity(entries.len());
        for (_, name, span) in entries {
            if name.trim().is_empty() {
                self.error(
                    span,
                    format!("{what}: an approver's name is empty; expected who must approve, such as \"SRE Lead\""),
                );
                ok = false;
            } else if out.iter().any(|seen| seen == name) {
                self.error(
                    span,
                    format!("{what}: {name:?} is listed twice; name each approver once"),
                );
                ok = false;
            } else {
                out.push(name.to_string());
            }
        }
        ok.then_some(out)
    }
}

/// One string of a string-or-array value: its 1-based position, the string and its span.
type Entry<'t> = (usize, &'t str, Range<usize>);

/// The span of an optional spanned value, or an empty span at the start (only used where
/// the value is known to be present).
fn span_of<T>(v: &Option<S<T>>) -> Range<usize> {
    v.as_ref().map_or(0..0, |v| v.span())
}

/// A field's value, or `default` when absent; `None` when it was invalid.
fn valid_or_none<T>(f: Field<T>, default: T) -> Option<T> {
    match f {
        Field::Absent => Some(default),
        Field::Invalid => None,
        Field::Valid(x) => Some(x),
    }
}

/// An optional field's value: `Some(None)` when absent, `None` when it was invalid (already
/// reported).
fn written<T>(f: Field<T>) -> Option<Option<T>> {
    match f {
        Field::Absent => Some(None),
        Field::Invalid => None,
        Field::Valid(x) => Some(Some(x)),
    }
}

/// A plain-HTTP URL taken apart, enough to check it and to tell a base URL from one with a
/// path. The live driver parses the checked text again with `http::Uri`; this check exists so
/// that a bad URL is a located plan error instead of a failure in the middle of a rollout.
struct HttpUrl<'a> {
    /// `host:port` or `host`, as written.
    authority: &'a str,
    /// Everything after the authority: the path and query, possibly empty.
    rest: &'a str,
}

/// Checks a URL that a live run fetches or posts to: `http://` only (https is not supported
/// yet), a host and an optional port, no credentials or fragment, and a path and query made
/// of characters a request line can carry. `example` is shown after "expected"; the error
/// names the URL but not the key (the caller adds it).
fn parse_http_url<'a>(t: &'a str, example: &str) -> Result<HttpUrl<'a>, String> {
    let expected = format!("expected an http:// URL such as {example:?}");
    let Some((scheme, rest)) = t.split_once("://") else {
        return Err(format!("{t:?} is not a URL; {expected}"));
    };
    if scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "{t:?}: https is not supported yet; use http:// on a trusted network or loopback"
        ));
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!("{t:?} has the scheme {scheme:?}; {expected}"));
    }
    if let Some(bad) = t.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{t:?} contains {bad:?}, which a URL cannot hold; percent-encode it"
        ));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(format!(
            "{t:?} has credentials before the host, which are not supported; {expected}"
        ));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let Some((v6, after)) = bracketed.split_once(']') else {
                return Err(format!("{t:?} has an unclosed '[' in its host; {expected}"));
            };
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!(
                    "{t:?} has [{v6}], which is not an IPv6 address; {expected}"
                ));
            }
            match after {
                "" => (v6, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (v6, Some(port)),
                    None => {
                        return Err(format!(
                            "{t:?} has {after:?} after its IPv6 address; {expected}"
                        ))
                    }
                },
            }
        }
        None => {
            let (host, port) = match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if host.is_empty() {
                return Err(format!("{t:?} has no host; {expected}"));
            }
            if let Some(bad) = host
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
            {
                return Err(format!(
                    "{t:?} has the host {host:?}, which contains {bad:?}; expected a host name or an IP address (an IPv6 address in brackets)"
                ));
            }
            (host, port)
        }
    };
    if host.is_empty() {
        return Err(format!("{t:?} has no host; {expected}"));
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.chars().all(|c| c.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !valid {
            return Err(format!(
                "{t:?} has the port {port:?}; expected a port number from 1 to 65535"
            ));
        }
    }
    if tail.contains('#') {
        return Err(format!(
            "{t:?} has a fragment (#…), which is never sent to a server; remove it"
        ));
    }
    if let Some(bad) = tail
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%".contains(*c)))
    {
        return Err(format!(
            "{t:?} contains {bad:?}, which a URL cannot hold unescaped; percent-encode it"
        ));
    }
    Ok(HttpUrl {
        authority,
        rest: tail,
    })
}

/// The window of a stage's effective gate and where it was written: the override's, else the
/// default gate's, else `[gates].window`, else 5 min; `None` when one of them was invalid.
fn effective_window(
    over: Option<&GateSpec>,
    default: Option<&GateSpec>,
    defaults: &Defaults,
) -> Option<(Span, WindowSource)> {
    let written = over
        .map(|o| (&o.window, true))
        .filter(|(w, _)| w.present())
        .or_else(|| {
            default
                .map(|d| (&d.window, false))
                .filter(|(w, _)| w.present())
        })
        .unwrap_or((&defaults.window, false));
    match written {
        (Field::Valid((w, s)), true) => Some((*w, WindowSource::Stage(s.clone()))),
        (Field::Valid((w, s)), false) => Some((*w, WindowSource::Defaults(s.clone()))),
        (Field::Invalid, _) => None,
        (Field::Absent, _) => Some((DEFAULT_WINDOW, WindowSource::BuiltIn)),
    }
}

/// A key of a stage's effective gate: the override's when it was written, else the default
/// gate's.
fn inherited<T: Clone>(
    over: Option<&GateSpec>,
    default: Option<&GateSpec>,
    key: impl Fn(&GateSpec) -> &Field<T>,
) -> Field<T> {
    let from_over = over.map_or(Field::Absent, |g| key(g).clone());
    from_over.or(default.map_or(Field::Absent, |g| key(g).clone()))
}

/// The default checkpoint interval: a quarter of the stage, rounded to whole seconds (and
/// never zero).
fn default_checkpoint(duration: Span) -> Span {
    let secs = duration.0.saturating_add(2_000) / 4_000;
    if secs == 0 {
        Span(duration.0.min(1_000))
    } else {
        Span(secs * 1_000)
    }
}

/// The scope a gate judges when the plan does not say: the whole service for throughput
/// (the seed's floor is service-wide), the canary for everything else.
fn default_scope(metric: Metric) -> Scope {
    match metric {
        Metric::ThroughputRps => Scope::Service,
        _ => Scope::Canary,
    }
}

/// A number for messages: integers without a decimal point, others in shortest form.
fn fmt_num(x: f64) -> String {
    let r = if x.abs() < 1e9 {
        (x * 1e9).round() / 1e9
    } else {
        x
    };
    if r == 0.0 {
        "0".into()
    } else {
        format!("{r}")
    }
}

/// A fraction as a percentage for messages ("0.8%").
fn fmt_pct(x: f64) -> String {
    format!("{}%", fmt_num(x * 100.0))
}

/// A metric value for messages: error rates as percentages, others as plain numbers.
fn fmt_metric(metric: Metric, x: f64) -> String {
    match metric {
        Metric::ErrorRate => fmt_pct(x),
        _ => fmt_num(x),
    }
}

/// A rate for messages, as written: `"150%"`, or `5 (= 500%)` for a bare fraction.
fn describe_rate(raw: &NumOrText, x: f64) -> String {
    match raw {
        NumOrText::Text(t) => format!("{t:?}"),
        NumOrText::Num(n) => format!("{} (= {})", fmt_num(*n), fmt_pct(x)),
        NumOrText::Wrong(found) => found.clone(),
    }
}

/// A span for messages in the largest unit that divides it ("1h", "90m", "30s", "800ms").
fn fmt_span(s: Span) -> String {
    let ms = s.0;
    if ms == 0 {
        return "0s".into();
    }
    for (unit, suffix) in [(3_600_000, "h"), (60_000, "m"), (1_000, "s")] {
        // A pattern rather than `ms % unit == 0`: `is_multiple_of` is newer than the MSRV.
        if let (whole, 0) = (ms / unit, ms % unit) {
            return format!("{whole}{suffix}");
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small valid plan; tests append sections or replace lines.
    const MINIMAL: &str = r#"[deployment]
id = "d1"
service = "svc"
environment = "staging"

[[stages]]
weight = 100
duration = "1h"
gates.throughput_rps = { min = 1 }
"#;

    /// Parses text that must be valid.
    fn ok(src: &str) -> Plan {
        match parse_plan(src, "t.toml") {
            Ok(p) => p,
            Err(e) => panic!("expected a valid plan, got:\n{e}\n--- plan ---\n{src}"),
        }
    }

    /// Parses text that must be invalid; returns (line, column, message) triples.
    fn errs(src: &str) -> Vec<(usize, usize, String)> {
        match parse_plan(src, "t.toml") {
            Ok(_) => panic!("expected errors for:\n{src}"),
            Err(e) => {
                e.0.into_iter()
                    .map(|e| (e.line, e.column, e.message))
                    .collect()
            }
        }
    }

    #[test]
    fn line_col_counts_characters_and_clamps() {
        let s = "ab\ncdé\nf";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 2), (1, 3));
        assert_eq!(line_col(s, 3), (2, 1));
        // 'é' is two bytes; the column after it counts it once.
        assert_eq!(line_col(s, 7), (2, 4));
        // Inside the multi-byte character (moves past it) and past the end: no panic.
        assert_eq!(line_col(s, 6), (2, 4));
        assert_eq!(line_col(s, 1000), (3, 2));
        assert_eq!(line_col("", 5), (1, 1));
    }

    #[test]
    fn a_minimal_plan_gets_every_default() {
        let p = ok(MINIMAL);
        assert_eq!(p.evaluate_every, Span::from_secs(5));
        assert_eq!(p.baseline, None);
        assert_eq!(p.simulation, None);
        assert!(p.rehearsals.is_empty());
        assert_eq!(p.stages.len(), 1);
        let s = &p.stages[0];
        assert_eq!(s.weight, Weight::FULL);
        assert_eq!(s.duration, Span::from_mins(60));
        assert_eq!(s.checkpoint, Span::from_mins(15), "a quarter of the stage");
        // Only the stage's own gate, with every default filled in.
        assert_eq!(s.gates.len(), 1);
        let g = &s.gates[0];
        assert_eq!(
            (g.metric, g.scope, g.bound, g.threshold, g.warn),
            (Metric::ThroughputRps, Scope::Service, Bound::Min, 1.0, None)
        );
        assert_eq!((g.window, g.min_samples), (Span::from_mins(5), 100));
        assert_eq!(p.deployment.start, None);
        assert_eq!(p.deployment.start_second_of_day, 0);
    }

    #[test]
    fn default_checkpoint_is_a_quarter_rounded_to_seconds() {
        assert_eq!(default_checkpoint(Span::from_mins(60)), Span::from_mins(15));
        assert_eq!(default_checkpoint(Span::from_secs(90)), Span::from_secs(23));
        assert_eq!(default_checkpoint(Span::from_secs(10)), Span::from_secs(3));
        assert_eq!(default_checkpoint(Span::from_secs(1)), Span::from_secs(1));
        assert_eq!(default_checkpoint(Span(400)), Span(400));
    }

    #[test]
    fn numbers_may_be_integers_or_floats() {
        let src = MINIMAL.replace("weight = 100", "weight = 100.0")
            + "[gates]\nmin_samples = 50.0\np95_ms = { max = 450.5 }\np50_ms = { max = 200 }\n";
        let p = ok(&src);
        let g = &p.stages[0].gates;
        assert_eq!(g[0].threshold, 200.0);
        assert_eq!(g[1].threshold, 450.5);
        assert_eq!(g[1].min_samples, 50);
        assert_eq!(p.stages[0].weight.basis_points(), 10_000);
    }

    #[test]
    fn rates_are_percent_strings_or_bare_fractions() {
        let a =
            ok(&(MINIMAL.to_string() + "[gates]\nerror_rate = { max = \"1%\", warn = 0.005 }\n"));
        let g = &a.stages[0].gates[0];
        assert_eq!(g.metric, Metric::ErrorRate);
        assert!((g.threshold - 0.01).abs() < 1e-12);
        assert_eq!(g.warn, Some(0.005));
        let b = ok(&(MINIMAL.to_string() + "[baseline]\nerror_rate = 0.0028\n"));
        assert_eq!(b.baseline.unwrap().error_rate, Some(0.0028));
    }

    #[test]
    fn overrides_merge_over_defaults() {
        let src = r#"[deployment]
id = "d1"
service = "svc"
environment = "staging"

[gates]
window = "5m"
min_samples = 200
p95_ms = { max = 500, warn = 400, window = "10m", min_samples = 300 }
p99_ms = { max = 1000, warn = 900 }
error_rate = { max = "1%", scope = "service" }

[[stages]]
weight = 50
duration = "1h"
# Only warn: keeps the default max.
gates.p99_ms = { warn = 700 }
# A new fail level drops the default's warn.
gates.p95_ms = { max = 450 }
# A gate with no default needs a fail level of its own.
gates.p50_ms = { max = 180, scope = "stable" }

[[stages]]
weight = 100
duration = "2h"
gates.error_rate = { max = "0.8%", warn = "0.5%", window = "15m" }
gates.throughput_rps = { min = 50 }
"#;
        let p = ok(src);
        let s1 = &p.stages[0].gates;
        let metrics: Vec<Metric> = s1.iter().map(|g| g.metric).collect();
        assert_eq!(
            metrics,
            [
                Metric::P50Ms,
                Metric::P95Ms,
                Metric::P99Ms,
                Metric::ErrorRate
            ],
            "ordered by Metric::ALL"
        );
        assert_eq!(
            (
                s1[0].scope,
                s1[0].threshold,
                s1[0].window,
                s1[0].min_samples
            ),
            (Scope::Stable, 180.0, Span::from_mins(5), 200)
        );
        // p95: max replaced, warn dropped, window and min_samples inherited from the default gate.
        assert_eq!(
            (s1[1].threshold, s1[1].warn, s1[1].window, s1[1].min_samples),
            (450.0, None, Span::from_mins(10), 300)
        );
        // p99: warn set, max kept.
        assert_eq!((s1[2].threshold, s1[2].warn), (1000.0, Some(700.0)));
        assert_eq!(s1[3].scope, Scope::Service, "scope inherited");
        // Stage 2 has no p50 gate: there is no default and no override.
        let s2 = &p.stages[1].gates;
        let metrics: Vec<Metric> = s2.iter().map(|g| g.metric).collect();
        assert_eq!(
            metrics,
            [
                Metric::P95Ms,
                Metric::P99Ms,
                Metric::ErrorRate,
                Metric::ThroughputRps
            ]
        );
        assert_eq!(
            (s2[0].threshold, s2[0].warn),
            (500.0, Some(400.0)),
            "defaults kept"
        );
        assert_eq!(
            s2[2].scope,
            Scope::Service,
            "scope inherited through a new max"
        );
        assert_eq!(s2[2].window, Span::from_mins(15));
        assert!((s2[2].threshold - 0.008).abs() < 1e-12);
        assert_eq!(s2[2].warn, Some(0.005));
        assert_eq!(
            (s2[3].bound, s2[3].scope, s2[3].threshold, s2[3].min_samples),
            (Bound::Min, Scope::Service, 50.0, 200),
            "throughput defaults to the service scope"
        );
        assert!(p.stages[0].gates.iter().all(|g| g.bound == Bound::Max));
    }

    #[test]
    fn a_warn_only_override_is_checked_against_the_inherited_level() {
        let src = MINIMAL.to_string()
            + "gates.p99_ms = { warn = 1200 }\n\n[gates]\np99_ms = { max = 1000 }\n";
        let e = errs(&src);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].0, e[0].1), (10, 25), "at the warn value");
        assert!(
            e[0].2
                .contains("warn 1200 is not below max 1000 (from [gates])"),
            "{}",
            e[0].2
        );
    }

    #[test]
    fn start_accepts_strings_and_native_datetimes() {
        let s = MINIMAL.replace(
            "environment = \"staging\"",
            "environment = \"staging\"\nstart = \"2025-10-06T18:30:15.250Z\"",
        );
        let p = ok(&s);
        assert_eq!(p.deployment.start.as_deref(), Some("2025-10-06T18:30:15Z"));
        assert_eq!(p.deployment.start_second_of_day, 18 * 3600 + 30 * 60 + 15);
        let n = MINIMAL.replace(
            "environment = \"staging\"",
            "environment = \"staging\"\nstart = 2025-10-06T00:00:05Z",
        );
        let p = ok(&n);
        assert_eq!(p.deployment.start.as_deref(), Some("2025-10-06T00:00:05Z"));
        assert_eq!(p.deployment.start_second_of_day, 5);
    }

    #[test]
    fn start_must_be_a_real_utc_datetime() {
        for (value, expect) in [
            ("\"2025-02-30T18:00:00Z\"", "day between 01 and 28"),
            ("\"2025-13-01T18:00:00Z\"", "month between 01 and 12"),
            ("\"2025-10-06T18:00:00+02:00\"", "UTC"),
            ("\"2025-10-06\"", "UTC"),
            ("\"tomorrow\"", "RFC 3339"),
            ("2025-10-06T18:00:00", "UTC"),
            ("2025-10-06T25:00:00Z", "hour"),
        ] {
            let s = MINIMAL.replace(
                "environment = \"staging\"",
                &format!("environment = \"staging\"\nstart = {value}"),
            );
            let e = match parse_plan(&s, "t.toml") {
                Ok(_) => panic!("{value} should be rejected"),
                Err(e) => e.0,
            };
            assert_eq!(e.len(), 1, "{value}: {e:?}");
            assert_eq!((e[0].line, e[0].column), (5, 9), "{value}");
            assert!(e[0].message.contains(expect), "{value}: {}", e[0].message);
        }
    }

    #[test]
    fn overhead_becomes_one_feature_and_faults_get_defaults() {
        let src = MINIMAL.to_string()
            + r#"
[simulation]
rps = 10
stable = { p50_ms = 100, p95_ms = 200, p99_ms = 300, error_rate = 0 }
overhead = { latency = "+13.6%", error_rate = "+0.1%" }
load = { contention = 0.85, stable_latency = "+2%" }
canary_traffic = "0%"
router_delay = "250ms"
daily_profile = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.5]

[[simulation.faults]]
cohort = "stable"
at = "30m"
add_latency = "1.5s"

[[simulation.faults]]
cohort = "canary"
at = "0s"
duration = "5m"
error_rate = "3%"
"#;
        let sim = ok(&src).simulation.unwrap();
        assert_eq!(sim.features.len(), 1);
        assert_eq!(sim.features[0].name, "canary overhead");
        assert!((sim.features[0].latency - 0.136).abs() < 1e-12);
        assert!((sim.features[0].error_rate - 0.001).abs() < 1e-12);
        assert_eq!(sim.load.contention, 0.85);
        assert!((sim.load.stable_latency - 0.02).abs() < 1e-12);
        assert_eq!(sim.canary_traffic, 0.0);
        assert_eq!(sim.router_delay, Span(250));
        assert_eq!(sim.daily_profile.unwrap()[23], 0.5);
        assert_eq!(
            sim.faults[0],
            Fault {
                cohort: Cohort::Stable,
                at: PlanTime(1_800_000),
                duration: None,
                effect: FaultEffect::AddLatency {
                    ms: 1500.0,
                    fraction: 1.0
                },
            }
        );
        assert_eq!(sim.faults[1].duration, Some(Span::from_mins(5)));
        assert!(
            matches!(sim.faults[1].effect, FaultEffect::ErrorRate { rate } if (rate - 0.03).abs() < 1e-12)
        );
    }

    #[test]
    fn unknown_keys_are_named_with_the_expected_ones() {
        let e = errs(&MINIMAL.replace("duration = \"1h\"", "duration = \"1h\"\nwieght = 5"));
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].0, e[0].1), (9, 1));
        assert!(e[0].2.starts_with("unknown key `wieght`"), "{}", e[0].2);
        assert!(
            e[0].2.contains("`weight`") && e[0].2.contains("`checkpoint`"),
            "{}",
            e[0].2
        );
    }

    #[test]
    fn the_key_check_reads_the_keys_from_the_raw_structs() {
        assert_eq!(
            fields_of::<RawStage>(),
            ["weight", "duration", "checkpoint", "gates", "approvals"]
        );
        assert_eq!(
            fields_of::<RawCheck>(),
            ["name", "http", "expect_status", "command", "timeout"]
        );
        assert_eq!(
            fields_of::<RawDeployment>(),
            ["id", "service", "environment", "start"]
        );
        // Every key the schema gives a shape is a key of its struct, and every struct has
        // keys (a probe that failed would leave none and make every key unknown).
        fn walk(schema: Schema, ctx: &str, children: &mut usize) {
            let fields = (schema.fields)();
            assert!(!fields.is_empty(), "{ctx}: no keys");
            for (key, shape) in schema.children {
                assert!(fields.contains(key), "{ctx}: `{key}` is not a key");
                *children += 1;
                if let Shape::Table(s) | Shape::Tables(s, _) | Shape::Map(s, _) = shape {
                    walk(*s, key, children);
                }
            }
        }
        let mut children = 0;
        walk(PLAN, "plan", &mut children);
        assert_eq!(children, 40, "every table and array of the raw structs");
    }

    #[test]
    fn a_wrong_type_and_an_unknown_key_are_reported_together() {
        let src = MINIMAL.replace("weight = 100", "weight = \"all\"\ncolour = \"blue\"")
            + "[gates]\np95_ms = { max = 500, warn = 600 }\n";
        let e = errs(&src);
        assert_eq!(
            e,
            [
                (7, 10, "stage 1: weight: expected a number, found the string \"all\"".to_string()),
                (8, 1, "unknown key `colour` in stage 1; expected one of `weight`, `duration`, `checkpoint`, `gates`, `approvals`".to_string()),
                (12, 30, "gates.p95_ms: warn 600 is not below max 500; a warn level must be on the safe side of the fail level".to_string()),
            ]
        );
    }

    #[test]
    fn http_urls_are_taken_apart_or_rejected_with_a_reason() {
        let ex = "http://h:1";
        let u = parse_http_url("http://127.0.0.1:9001/health?x=1", ex).unwrap();
        assert_eq!((u.authority, u.rest), ("127.0.0.1:9001", "/health?x=1"));
        let u = parse_http_url("HTTP://[::1]:80", ex).unwrap();
        assert_eq!((u.authority, u.rest), ("[::1]:80", ""));
        let u = parse_http_url("http://svc.internal", ex).unwrap();
        assert_eq!((u.authority, u.rest), ("svc.internal", ""));
        for (url, expect) in [
            ("https://example.com", "https is not supported yet"),
            ("ftp://example.com", "has the scheme \"ftp\""),
            ("127.0.0.1:9901", "is not a URL"),
            ("http://", "has no host"),
            ("http://:80/x", "has no host"),
            ("http://user:pw@host/", "credentials"),
            ("http://host:0/", "has the port \"0\""),
            ("http://host:70000/", "has the port \"70000\""),
            ("http://host:/", "has the port \"\""),
            ("http://host:+80/", "has the port \"+80\""),
            ("http://[::1/", "unclosed '['"),
            ("http://[::g]:1/", "not an IPv6 address"),
            ("http://[::1]x/", "after its IPv6 address"),
            ("http://::1:80/", "has the host \"::1\""),
            ("http://ho st/", "contains ' '"),
            ("http://host/a b", "contains ' '"),
            ("http://host/a#b", "fragment"),
            ("http://host/{x}", "contains '{'"),
            ("http://hé/", "contains 'é'"),
        ] {
            match parse_http_url(url, ex) {
                Ok(_) => panic!("{url} should be rejected"),
                Err(e) => assert!(e.contains(expect), "{url}: {e}"),
            }
        }
    }

    #[test]
    fn messages_format_numbers_and_spans_for_people() {
        assert_eq!(fmt_num(1000.0), "1000");
        assert_eq!(fmt_num(0.1 + 0.2), "0.3");
        assert_eq!(fmt_num(-0.0), "0");
        assert_eq!(fmt_pct(0.008), "0.8%");
        assert_eq!(fmt_span(Span::from_mins(60)), "1h");
        assert_eq!(fmt_span(Span::from_mins(90)), "90m");
        assert_eq!(fmt_span(Span(800)), "800ms");
        assert_eq!(fmt_span(Span::from_secs(30)), "30s");
    }
}
