//! The raw form of `[flags.*]` tables and their validation.
//!
//! [`RawFlag`] mirrors one `[flags.NAME]` table. Every field is an optional spanned TOML
//! value of any type, so that deserializing never fails on a value of the wrong type (only
//! on an unknown key, through `deny_unknown_fields`); [`validate`] then checks every value,
//! collects every error with the span it blames, and builds a [`FlagSet`] only when there is
//! none. The same raw struct is meant to be embedded in a rollout plan as
//! `flags: Option<RawFlags>`: the plan loader reports the spans in its own file, and
//! [`RAW_FLAG_KEYS`] tells its unknown-key check what a flag table may hold.

use super::{
    json_string, metadata_json, percent, percent_to_bp, Flag, FlagKind, FlagSet, MetadataValue,
    Rollout, Schedule, ScheduleStep, Variant, MAX_SCHEDULE_STEPS,
};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// The keys a `[flags.NAME]` table may hold, in the order the documentation lists them.
pub const RAW_FLAG_KEYS: &[&str] = &[
    "variants",
    "default_variant",
    "on_variant",
    "follow",
    "weight",
    "schedule",
    "salt",
    "enabled",
    "description",
    "metadata",
];

/// The longest flag key, variant name or metadata key accepted: keys travel in URLs and
/// names in every response, so a runaway one is a mistake worth reporting.
pub const MAX_NAME_CHARS: usize = 128;

/// The longest salt accepted (a deployment id or a flag key); public so that the proxy's
/// flag mode accepts exactly the salts a flag may have.
pub const MAX_SALT_CHARS: usize = 256;

/// One `[flags.NAME]` table as written, before validation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlag {
    /// `variants = { name = value, … }`: booleans, strings, integers, floats or tables, one
    /// kind per flag.
    pub variants: Option<Spanned<toml::Value>>,
    /// The variant served outside the rollout (and to everybody when the flag has none).
    pub default_variant: Option<Spanned<toml::Value>>,
    /// The variant served inside the rollout; required with `follow` or `weight`.
    pub on_variant: Option<Spanned<toml::Value>>,
    /// `"rollout"`: the share of users inside is the live rollout's weight.
    pub follow: Option<Spanned<toml::Value>>,
    /// A fixed share of users inside, in percent (0–100, steps of 0.01).
    pub weight: Option<Spanned<toml::Value>>,
    /// The flag's own schedule: `[{ after = "0s", weight = 1 }, { after = "30m", weight = 5 }]`
    /// (time since the rollout started → percent of users), exclusive with `follow` and
    /// `weight`.
    pub schedule: Option<Spanned<RawSchedule>>,
    /// The bucketing salt, the flag key by default; the deployment id makes the flag agree
    /// with the proxy's sticky routing.
    pub salt: Option<Spanned<toml::Value>>,
    /// `false` disables the flag (clients use their code default); `true` by default.
    pub enabled: Option<Spanned<toml::Value>>,
    /// Free text for people reading the file; not served.
    pub description: Option<Spanned<toml::Value>>,
    /// Booleans, strings and numbers returned as `metadata` with every evaluation.
    pub metadata: Option<Spanned<toml::Value>>,
}

/// `schedule = [...]` as written: an array whose steps keep their own spans, or anything else
/// (described for the message). Deserializing never fails on a value of the wrong type, so
/// that a wrong schedule is one located error among all the others.
#[derive(Debug, Clone)]
pub enum RawSchedule {
    /// An array: its entries, each spanned.
    Steps(Vec<Spanned<RawScheduleStep>>),
    /// Not an array; what was found ("a string (\"30m\")").
    Wrong(String),
}

/// One entry of a `schedule` array as written.
#[derive(Debug, Clone)]
pub enum RawScheduleStep {
    /// A table (`{ after = "30m", weight = 5 }`).
    Table {
        /// `after`: a duration string, the time since the rollout started.
        after: Option<Spanned<toml::Value>>,
        /// `weight`: a percentage, 0–100 in steps of 0.01.
        weight: Option<Spanned<toml::Value>>,
        /// Keys other than `after` and `weight`, reported by validation at the step's span
        /// (keys are read unspanned: toml's datetime representation has a key that cannot
        /// carry a span, and a datetime step must get a clear error, not a parser one).
        unknown: Vec<String>,
    },
    /// Not a table; what was found.
    Wrong(String),
}

/// The scalar `visit_*` methods of a visitor whose value has a `Wrong(String)` variant: each
/// says what was found instead, in the words of [`Describe`].
macro_rules! wrong_scalars {
    ($value:ident) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<$value, E> {
            Describe.visit_bool(v).map($value::Wrong)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<$value, E> {
            Describe.visit_i64(v).map($value::Wrong)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<$value, E> {
            Describe.visit_u64(v).map($value::Wrong)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<$value, E> {
            Describe.visit_f64(v).map($value::Wrong)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<$value, E> {
            Describe.visit_str(v).map($value::Wrong)
        }
    };
}

/// Says what a scalar visitor got, in the words of [`describe`].
struct Describe;

impl<'de> Visitor<'de> for Describe {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(format!("a boolean ({v})"))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(format!("an integer ({v})"))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(format!("an integer ({v})"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(format!("a float ({v})"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(format!("a string ({v:?})"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok("an array".to_string())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
        // toml hands a datetime over as a one-entry map with a private key.
        let mut datetime = false;
        while let Some(k) = map.next_key::<String>()? {
            datetime |= k.contains("datetime");
            map.next_value::<IgnoredAny>()?;
        }
        Ok(if datetime { "a datetime" } else { "a table" }.to_string())
    }
}

impl<'de> Deserialize<'de> for RawSchedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Collects an array's steps; describes anything else.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSchedule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of schedule steps")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawSchedule, A::Error> {
                let mut steps = Vec::new();
                while let Some(step) = seq.next_element::<Spanned<RawScheduleStep>>()? {
                    steps.push(step);
                }
                Ok(RawSchedule::Steps(steps))
            }
            wrong_scalars!(RawSchedule);
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawSchedule, A::Error> {
                Describe.visit_map(map).map(RawSchedule::Wrong)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawScheduleStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Reads a step table key by key, keeping unknown keys for validation.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawScheduleStep;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a schedule step table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawScheduleStep, A::Error> {
                let (mut after, mut weight, mut unknown) = (None, None, Vec::new());
                let mut datetime = false;
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        "after" => after = Some(map.next_value()?),
                        "weight" => weight = Some(map.next_value()?),
                        other => {
                            datetime |= other.contains("toml_private_datetime");
                            map.next_value::<IgnoredAny>()?;
                            unknown.push(k);
                        }
                    }
                }
                if datetime {
                    return Ok(RawScheduleStep::Wrong("a datetime".to_string()));
                }
                Ok(RawScheduleStep::Table {
                    after,
                    weight,
                    unknown,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawScheduleStep, A::Error> {
                Describe.visit_seq(seq).map(RawScheduleStep::Wrong)
            }
            wrong_scalars!(RawScheduleStep);
        }
        d.deserialize_any(V)
    }
}

/// Parses the duration forms accepted in plans: one or more `<number><unit>` parts with
/// units `ms`, `s`, `m` (or `min`), `h`, `d` (`"90s"`, `"1h30m"`, `"1.5h"`), to whole
/// milliseconds. Spaces may separate a number from its unit and the parts from each other,
/// and the units' English names are accepted too (`"120 minutes"`, `"1 hour 30 min"`), so
/// that a newcomer's first guess is not an error; abbreviations other than `min` (`hr`,
/// `mins`, `secs`) are refused with the list of units.
///
/// This is the one duration parser: `ramp_core::units::Span::parse` calls it (ramp-core
/// depends on this crate, not the reverse), so a schedule's `after` reads exactly like every
/// other duration in a plan.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let example = "expected a duration such as \"90s\", \"15m\" or \"1h30m\"";
    if t.is_empty() {
        return Err(format!("{example}, found an empty string"));
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("{example}, found \"{text}\""));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("{example}, found \"{text}\""))?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms_per = match unit {
            "ms" | "millisecond" | "milliseconds" => 1.0,
            "s" | "second" | "seconds" => 1000.0,
            "m" | "min" | "minute" | "minutes" => 60_000.0,
            "h" | "hour" | "hours" => 3_600_000.0,
            "d" | "day" | "days" => 86_400_000.0,
            "" => {
                return Err(format!(
                    "duration \"{text}\" has a number without a unit; write e.g. \"{value}s\" or \"{value}m\""
                ))
            }
            other => {
                return Err(format!(
                    "duration \"{text}\" has unknown unit \"{other}\"; expected ms, s, m, h or d"
                ))
            }
        };
        total += value * ms_per;
    }
    if !total.is_finite() || total > 3.0e12 {
        return Err(format!("duration \"{text}\" is too long"));
    }
    Ok(total.round() as u64)
}

/// Writes milliseconds as the shortest duration string that reads back to them ("30m",
/// "1h30m", "1500ms"), for messages.
fn fmt_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut s = ms / 1000;
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}

/// The `[flags]` table: flag key → flag, each spanned so that errors can point at them.
pub type RawFlags = BTreeMap<Spanned<String>, Spanned<RawFlag>>;

/// One validation error and the byte range of the source it blames.
///
/// The caller owns the source, so it turns the span into a file, line and column (the flags
/// file loader does; a plan loader embedding `[flags.*]` would with its own file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpannedError {
    /// The byte range blamed.
    pub span: Range<usize>,
    /// What is wrong and what was expected, in one line.
    pub message: String,
}

/// Validates every flag and builds the set, or returns every error found.
pub fn validate(flags: &RawFlags) -> Result<FlagSet, Vec<SpannedError>> {
    let mut errors = Vec::new();
    let mut built = Vec::with_capacity(flags.len());
    for (name, raw) in flags {
        if let Some(flag) = validate_flag(name, raw, &mut errors) {
            built.push(flag);
        }
    }
    if errors.is_empty() {
        Ok(FlagSet::new(built))
    } else {
        errors.sort_by_key(|e| (e.span.start, e.span.end));
        errors.dedup();
        Err(errors)
    }
}

/// Records an error.
fn err(errors: &mut Vec<SpannedError>, span: Range<usize>, message: String) {
    errors.push(SpannedError { span, message });
}

/// Describes a TOML value's type for messages ("a string", "an integer (5)").
fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("a string ({s:?})"),
        toml::Value::Integer(i) => format!("an integer ({i})"),
        toml::Value::Float(f) => format!("a float ({f})"),
        toml::Value::Boolean(b) => format!("a boolean ({b})"),
        toml::Value::Datetime(d) => format!("a datetime ({d})"),
        toml::Value::Array(_) => "an array".to_string(),
        toml::Value::Table(_) => "a table".to_string(),
    }
}

/// Whether `name` is a valid flag key: what goes unescaped in a URL path segment. Public so
/// that the proxy's flag mode accepts exactly the keys a flags file does.
pub fn valid_flag_key(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Validates one flag; `None` when it has errors (all recorded).
fn validate_flag(
    name: &Spanned<String>,
    raw: &Spanned<RawFlag>,
    errors: &mut Vec<SpannedError>,
) -> Option<Flag> {
    let before = errors.len();
    let key = name.get_ref().as_str();
    let ctx = format!("flags.{key}");
    if !valid_flag_key(key) {
        err(
            errors,
            name.span(),
            format!(
                "{ctx}: invalid flag key {key:?}; use 1 to {MAX_NAME_CHARS} ASCII letters, digits, `_`, `-` or `.` (the key goes in the OFREP URL)"
            ),
        );
    }
    let table = raw.span();
    let r = raw.get_ref();

    let variants = match &r.variants {
        None => {
            err(
                errors,
                table.clone(),
                format!("{ctx}: missing required key `variants` (e.g. variants = {{ on = true, off = false }})"),
            );
            None
        }
        Some(v) => validate_variants(&ctx, v, errors),
    };

    let default_variant = match &r.default_variant {
        None => {
            err(
                errors,
                table.clone(),
                format!("{ctx}: missing required key `default_variant` (the variant served outside the rollout)"),
            );
            None
        }
        Some(v) => variant_ref(&ctx, "default_variant", v, variants.as_ref(), errors),
    };
    let on_variant = r
        .on_variant
        .as_ref()
        .and_then(|v| variant_ref(&ctx, "on_variant", v, variants.as_ref(), errors));
    if let (Some(on), Some(default), Some(v)) = (on_variant, default_variant, &r.on_variant) {
        if on == default {
            err(
                errors,
                v.span(),
                format!("{ctx}.on_variant: it is the same variant as `default_variant`, so the rollout would change nothing; name the variant users inside the rollout get"),
            );
        }
    }

    let follow = r.follow.as_ref().and_then(|v| match v.get_ref() {
        toml::Value::String(s) if s == "rollout" => Some(()),
        other => {
            err(
                errors,
                v.span(),
                format!(
                    "{ctx}.follow: expected \"rollout\" (the weight of the live rollout), found {}",
                    describe(other)
                ),
            );
            None
        }
    });
    let weight = r.weight.as_ref().and_then(|v| {
        let p = match v.get_ref() {
            toml::Value::Integer(i) => Some(*i as f64),
            toml::Value::Float(f) => Some(*f),
            _ => None,
        };
        match p.and_then(percent_to_bp) {
            Some(bp) => Some(bp),
            None => {
                err(
                    errors,
                    v.span(),
                    format!(
                        "{ctx}.weight: expected a percentage between 0 and 100 in steps of 0.01 (e.g. 12.5), found {}",
                        describe(v.get_ref())
                    ),
                );
                None
            }
        }
    });
    if let (Some(_), Some(w)) = (&r.follow, &r.weight) {
        err(
            errors,
            w.span(),
            format!("{ctx}.weight: `follow` and `weight` are exclusive; a flag either follows the live rollout or has its own weight"),
        );
    }
    let schedule = r
        .schedule
        .as_ref()
        .and_then(|v| validate_schedule(&ctx, v, errors));
    if let Some(sched) = &r.schedule {
        let others: Vec<&str> = [
            ("follow", r.follow.is_some()),
            ("weight", r.weight.is_some()),
        ]
        .iter()
        .filter(|(_, given)| *given)
        .map(|(k, _)| *k)
        .collect();
        if !others.is_empty() {
            let others: Vec<String> = others.iter().map(|k| format!("`{k}`")).collect();
            err(
                errors,
                sched.span(),
                format!(
                    "{ctx}.schedule: `schedule` and {} are exclusive; a flag follows the live rollout (`follow`), has a fixed weight (`weight`) or has its own schedule (`schedule`)",
                    others.join(" and ")
                ),
            );
        }
    }
    let has_rollout = r.follow.is_some() || r.weight.is_some() || r.schedule.is_some();
    if let (Some(on), false) = (&r.on_variant, has_rollout) {
        err(
            errors,
            on.span(),
            format!("{ctx}.on_variant: a flag with `on_variant` needs a rollout: `follow = \"rollout\"`, `weight = <percent>` or `schedule = [...]`"),
        );
    }
    if let (None, true) = (&r.on_variant, has_rollout) {
        let at = r
            .follow
            .as_ref()
            .or(r.weight.as_ref())
            .map(|v| v.span())
            .or_else(|| r.schedule.as_ref().map(|v| v.span()))
            .unwrap_or(table.clone());
        err(
            errors,
            at,
            format!("{ctx}: a rollout needs `on_variant`, the variant served to users inside it"),
        );
    }

    let salt = match &r.salt {
        None => Some(key.to_string()),
        Some(v) => match v.get_ref() {
            toml::Value::String(s) if !s.is_empty() && s.chars().count() <= MAX_SALT_CHARS => {
                Some(s.clone())
            }
            other => {
                err(
                    errors,
                    v.span(),
                    format!(
                        "{ctx}.salt: expected a non-empty string of at most {MAX_SALT_CHARS} characters, found {}",
                        describe(other)
                    ),
                );
                None
            }
        },
    };
    let enabled = match &r.enabled {
        None => Some(true),
        Some(v) => match v.get_ref() {
            toml::Value::Boolean(b) => Some(*b),
            other => {
                err(
                    errors,
                    v.span(),
                    format!(
                        "{ctx}.enabled: expected true or false, found {}",
                        describe(other)
                    ),
                );
                None
            }
        },
    };
    if let Some(v) = &r.description {
        if !matches!(v.get_ref(), toml::Value::String(_)) {
            err(
                errors,
                v.span(),
                format!(
                    "{ctx}.description: expected a string, found {}",
                    describe(v.get_ref())
                ),
            );
        }
    }
    let metadata = match &r.metadata {
        None => Some(BTreeMap::new()),
        Some(v) => validate_metadata(&ctx, v, errors),
    };

    if errors.len() > before {
        return None;
    }
    let (kind, variants) = variants?;
    let rollout = match (follow, weight, schedule) {
        (Some(()), _, _) => Rollout::FollowRollout,
        (None, Some(bp), _) => Rollout::Fixed(bp),
        (None, None, Some(s)) => Rollout::Schedule(s),
        (None, None, None) => Rollout::Static,
    };
    let metadata = metadata?;
    Some(Flag {
        key: key.to_string(),
        key_json: json_string(key),
        kind,
        default_variant: default_variant?,
        on_variant,
        rollout,
        salt: salt?,
        enabled: enabled?,
        metadata_json: metadata_json(&metadata),
        metadata,
        variants,
    })
}

/// Validates `schedule`: 1 to [`MAX_SCHEDULE_STEPS`] tables `{ after, weight }`, strictly
/// increasing in `after` and non-decreasing in `weight`. Every problem is recorded, each at
/// the step or value it blames.
fn validate_schedule(
    ctx: &str,
    v: &Spanned<RawSchedule>,
    errors: &mut Vec<SpannedError>,
) -> Option<Schedule> {
    let span = v.span();
    let example = "[{ after = \"0s\", weight = 1 }, { after = \"30m\", weight = 5 }]";
    let steps = match v.get_ref() {
        RawSchedule::Wrong(found) => {
            err(
                errors,
                span,
                format!("{ctx}.schedule: expected an array of steps such as {example} (time since the rollout started → percent of users), found {found}"),
            );
            return None;
        }
        RawSchedule::Steps(steps) => steps,
    };
    if steps.is_empty() {
        err(
            errors,
            span,
            format!("{ctx}.schedule: at least one step is needed, e.g. {example}"),
        );
        return None;
    }
    if steps.len() > MAX_SCHEDULE_STEPS {
        err(
            errors,
            span,
            format!(
                "{ctx}.schedule: has {} steps; at most {MAX_SCHEDULE_STEPS} are allowed",
                steps.len()
            ),
        );
        return None;
    }
    let before = errors.len();
    // Each step as far as it is valid, for the order checks.
    let mut parsed: Vec<(Option<u64>, Option<u32>)> = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let sctx = format!("{ctx}.schedule[{i}]");
        let (after, weight, unknown) = match step.get_ref() {
            RawScheduleStep::Wrong(found) => {
                err(
                    errors,
                    step.span(),
                    format!("{sctx}: expected a table such as {{ after = \"30m\", weight = 5 }}, found {found}"),
                );
                parsed.push((None, None));
                continue;
            }
            RawScheduleStep::Table {
                after,
                weight,
                unknown,
            } => (after, weight, unknown),
        };
        for k in unknown {
            err(
                errors,
                step.span(),
                format!(
                    "{sctx}: unknown key `{k}`; a step has `after` (time since the rollout started) and `weight` (percent of users)"
                ),
            );
        }
        let after = match after {
            None => {
                err(
                    errors,
                    step.span(),
                    format!("{sctx}: missing required key `after`, the time since the rollout started (e.g. after = \"30m\")"),
                );
                None
            }
            Some(a) => match a.get_ref() {
                toml::Value::String(t) => match parse_duration_ms(t) {
                    Ok(ms) => Some(ms),
                    Err(e) => {
                        err(errors, a.span(), format!("{sctx}.after: {e}"));
                        None
                    }
                },
                toml::Value::Integer(_) | toml::Value::Float(_) => {
                    let n = match a.get_ref() {
                        toml::Value::Integer(i) => i.to_string(),
                        other => other.to_string(),
                    };
                    err(
                        errors,
                        a.span(),
                        format!("{sctx}.after: expected a duration string with a unit such as \"{n}s\" or \"{n}m\", found the bare number {n}"),
                    );
                    None
                }
                other => {
                    err(
                        errors,
                        a.span(),
                        format!(
                            "{sctx}.after: expected a duration string such as \"90s\", \"30m\" or \"2h\", found {}",
                            describe(other)
                        ),
                    );
                    None
                }
            },
        };
        let weight = match weight {
            None => {
                err(
                    errors,
                    step.span(),
                    format!("{sctx}: missing required key `weight`, the percent of users on from `after` (e.g. weight = 5)"),
                );
                None
            }
            Some(w) => {
                let p = match w.get_ref() {
                    toml::Value::Integer(i) => Some(*i as f64),
                    toml::Value::Float(f) => Some(*f),
                    _ => None,
                };
                match p.and_then(percent_to_bp) {
                    Some(bp) => Some(bp),
                    None => {
                        err(
                            errors,
                            w.span(),
                            format!(
                                "{sctx}.weight: expected a percentage between 0 and 100 in steps of 0.01 (e.g. 12.5), found {}",
                                describe(w.get_ref())
                            ),
                        );
                        None
                    }
                }
            }
        };
        parsed.push((after, weight));
    }
    // Order: compare each step with the last earlier step whose value is known.
    let mut last_after: Option<(usize, u64)> = None;
    let mut last_weight: Option<(usize, u32)> = None;
    for (i, (after, weight)) in parsed.iter().enumerate() {
        let RawScheduleStep::Table {
            after: raw_after,
            weight: raw_weight,
            ..
        } = steps[i].get_ref()
        else {
            continue;
        };
        if let (Some(a), Some((j, prev))) = (after, last_after) {
            if *a <= prev {
                let at = raw_after.as_ref().map_or(steps[i].span(), |v| v.span());
                err(
                    errors,
                    at,
                    format!(
                        "{ctx}.schedule[{i}].after: {} is not later than schedule[{j}]'s {}; steps must be in strictly increasing order of `after`",
                        fmt_ms(*a),
                        fmt_ms(prev)
                    ),
                );
            }
        }
        if let (Some(w), Some((j, prev))) = (weight, last_weight) {
            if *w < prev {
                let at = raw_weight.as_ref().map_or(steps[i].span(), |v| v.span());
                err(
                    errors,
                    at,
                    format!(
                        "{ctx}.schedule[{i}].weight: {}% is less than schedule[{j}]'s {}%; a schedule never decreases, because a lower weight would flip users who already have the on variant back to the default (a rollback is the way down)",
                        percent(*w),
                        percent(prev)
                    ),
                );
            }
        }
        if let Some(a) = after {
            last_after = Some((i, *a));
        }
        if let Some(w) = weight {
            last_weight = Some((i, *w));
        }
    }
    if errors.len() > before {
        return None;
    }
    let steps = parsed
        .into_iter()
        .map(|(after, weight)| {
            Some(ScheduleStep {
                after_ms: after?,
                weight_bp: weight?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Schedule { steps })
}

/// Validates `variants`: a non-empty table of values of one kind. Returns the kind and the
/// variants sorted by name.
fn validate_variants(
    ctx: &str,
    v: &Spanned<toml::Value>,
    errors: &mut Vec<SpannedError>,
) -> Option<(FlagKind, Vec<Variant>)> {
    let span = v.span();
    let toml::Value::Table(table) = v.get_ref() else {
        err(
            errors,
            span,
            format!(
                "{ctx}.variants: expected a table of named values (e.g. {{ on = true, off = false }}), found {}",
                describe(v.get_ref())
            ),
        );
        return None;
    };
    if table.is_empty() {
        err(
            errors,
            span,
            format!("{ctx}.variants: at least one variant is needed"),
        );
        return None;
    }
    let before = errors.len();
    let mut kinds: Vec<(FlagKind, &str)> = Vec::new();
    let mut out = Vec::with_capacity(table.len());
    for (name, value) in table {
        let vctx = format!("{ctx}.variants.{name}");
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            err(
                errors,
                span.clone(),
                format!("{vctx}: a variant name must have 1 to {MAX_NAME_CHARS} characters"),
            );
            continue;
        }
        let kind = match value {
            toml::Value::Boolean(_) => FlagKind::Boolean,
            toml::Value::String(_) => FlagKind::String,
            toml::Value::Integer(_) => FlagKind::Integer,
            toml::Value::Float(_) => FlagKind::Float,
            toml::Value::Table(_) => FlagKind::Object,
            toml::Value::Array(_) => {
                err(
                    errors,
                    span.clone(),
                    format!("{vctx}: an array cannot be a flag value (OFREP serves booleans, strings, numbers and objects); put it in a table, e.g. {{ items = [...] }}"),
                );
                continue;
            }
            toml::Value::Datetime(d) => {
                err(
                    errors,
                    span.clone(),
                    format!("{vctx}: a datetime cannot be a flag value; write it as a string, e.g. \"{d}\""),
                );
                continue;
            }
        };
        match to_json(value) {
            Ok(json) => {
                if !kinds.iter().any(|(k, _)| *k == kind) {
                    kinds.push((kind, name));
                }
                out.push(Variant::new(name.clone(), json));
            }
            Err(why) => err(errors, span.clone(), format!("{vctx}: {why}")),
        }
    }
    if kinds.len() > 1 {
        let listed: Vec<String> = kinds
            .iter()
            .map(|(k, n)| format!("{} (`{n}`)", k.name()))
            .collect();
        let hint = if kinds
            .iter()
            .all(|(k, _)| matches!(k, FlagKind::Integer | FlagKind::Float))
        {
            "; write every number with a fraction (1.0) for a float flag"
        } else {
            ""
        };
        err(
            errors,
            span,
            format!(
                "{ctx}.variants: all variants of a flag must be of one kind, found {}{hint}",
                listed.join(" and ")
            ),
        );
    }
    if errors.len() > before {
        return None;
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    kinds.first().map(|(k, _)| (*k, out))
}

/// Converts a TOML value to JSON; datetimes and non-finite floats have no JSON form.
fn to_json(v: &toml::Value) -> Result<serde_json::Value, String> {
    Ok(match v {
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("{f} has no JSON form; use a finite number"))?,
        toml::Value::Datetime(d) => {
            return Err(format!(
                "the datetime {d} has no JSON form; write it as a string"
            ))
        }
        toml::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(t) => {
            let mut map = serde_json::Map::new();
            for (k, v) in t {
                map.insert(k.clone(), to_json(v)?);
            }
            serde_json::Value::Object(map)
        }
    })
}

/// Resolves `default_variant` or `on_variant` to the index of the variant it names.
fn variant_ref(
    ctx: &str,
    field: &str,
    v: &Spanned<toml::Value>,
    variants: Option<&(FlagKind, Vec<Variant>)>,
    errors: &mut Vec<SpannedError>,
) -> Option<usize> {
    let toml::Value::String(name) = v.get_ref() else {
        err(
            errors,
            v.span(),
            format!(
                "{ctx}.{field}: expected the name of a variant (a string), found {}",
                describe(v.get_ref())
            ),
        );
        return None;
    };
    // Without valid variants there is nothing to check the name against (already reported).
    let (_, variants) = variants?;
    match variants.iter().position(|x| x.name == *name) {
        Some(i) => Some(i),
        None => {
            let names: Vec<String> = variants.iter().map(|x| format!("`{}`", x.name)).collect();
            err(
                errors,
                v.span(),
                format!(
                    "{ctx}.{field}: no variant is named {name:?}; the variants are {}",
                    names.join(", ")
                ),
            );
            None
        }
    }
}

/// Validates `metadata`: a table of booleans, strings and numbers.
fn validate_metadata(
    ctx: &str,
    v: &Spanned<toml::Value>,
    errors: &mut Vec<SpannedError>,
) -> Option<BTreeMap<String, MetadataValue>> {
    let span = v.span();
    let toml::Value::Table(table) = v.get_ref() else {
        err(
            errors,
            span,
            format!(
                "{ctx}.metadata: expected a table of booleans, strings and numbers, found {}",
                describe(v.get_ref())
            ),
        );
        return None;
    };
    let before = errors.len();
    let mut out = BTreeMap::new();
    for (k, value) in table {
        let mctx = format!("{ctx}.metadata.{k}");
        if k.is_empty() || k.chars().count() > MAX_NAME_CHARS {
            err(
                errors,
                span.clone(),
                format!("{mctx}: a metadata key must have 1 to {MAX_NAME_CHARS} characters"),
            );
            continue;
        }
        let m = match value {
            toml::Value::Boolean(b) => MetadataValue::Bool(*b),
            toml::Value::String(s) => MetadataValue::String(s.clone()),
            toml::Value::Integer(i) => MetadataValue::Integer(*i),
            toml::Value::Float(f) if f.is_finite() => MetadataValue::Float(*f),
            other => {
                err(
                    errors,
                    span.clone(),
                    format!(
                        "{mctx}: OFREP metadata holds booleans, strings and finite numbers, found {}",
                        describe(other)
                    ),
                );
                continue;
            }
        };
        out.insert(k.clone(), m);
    }
    (errors.len() == before).then_some(out)
}
