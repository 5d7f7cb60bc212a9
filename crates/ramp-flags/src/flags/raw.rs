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
    json_string, metadata_json, percent_to_bp, Flag, FlagKind, FlagSet, MetadataValue, Rollout,
    Variant,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// The keys a `[flags.NAME]` table may hold, in the order the documentation lists them.
pub const RAW_FLAG_KEYS: &[&str] = &[
    "variants",
    "default_variant",
    "on_variant",
    "follow",
    "weight",
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
    let has_rollout = r.follow.is_some() || r.weight.is_some();
    if let (Some(on), false) = (&r.on_variant, has_rollout) {
        err(
            errors,
            on.span(),
            format!("{ctx}.on_variant: a flag with `on_variant` needs a rollout: `follow = \"rollout\"` or `weight = <percent>`"),
        );
    }
    if let (None, true) = (&r.on_variant, has_rollout) {
        let at = r
            .follow
            .as_ref()
            .or(r.weight.as_ref())
            .map_or(table.clone(), |v| v.span());
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
    let rollout = match (follow, weight) {
        (Some(()), _) => Rollout::FollowRollout,
        (None, Some(bp)) => Rollout::Fixed(bp),
        (None, None) => Rollout::Static,
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
