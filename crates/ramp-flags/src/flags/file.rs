//! The standalone flags file: a TOML document whose only top-level table is `[flags]`.
//!
//! ```toml
//! [flags.phase8_encryption_enabled]
//! variants = { on = true, off = false }
//! default_variant = "off"
//! on_variant = "on"
//! follow = "rollout"
//!
//! [flags.banner_color]
//! variants = { red = "#f00", blue = "#00f" }
//! default_variant = "red"
//! on_variant = "blue"
//! weight = 12.5
//!
//! [flags.new_search]
//! variants = { on = true, off = false }
//! default_variant = "off"
//! on_variant = "on"
//! schedule = [ { after = "0s", weight = 1 }, { after = "30m", weight = 5 }, { after = "2h", weight = 25 } ]
//! ```
//!
//! A `schedule` counts its `after` times from when a driver starts it: the rollout's
//! journaled start in `ramp run`, the server's start in `ramp flags serve`.
//!
//! Loading reports every problem at once, each located as `file:line:column`: a syntax error
//! (alone, since nothing after it can be trusted), every unknown key, every value of the
//! wrong type or shape, and every semantic error of [`super::raw::validate`].

use super::raw::{validate, RawFlags, SpannedError, RAW_FLAG_KEYS};
use super::FlagSet;
use crate::located::{number_beyond_64_bits, tidy_toml_message, LocatedError};
use serde::Deserialize;
use std::fmt;
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// One located problem in a flags file: the shared [`LocatedError`], so that a flags file
/// says `file:line:column: error: message` exactly as a plan does.
pub type FlagFileError = LocatedError;

/// Every problem found in a flags file, in file order; `Display` prints one
/// `file:line:col: error: message` line per problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagFileErrors(pub Vec<FlagFileError>);

impl fmt::Display for FlagFileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::located::write_lines(f, &self.0)
    }
}

impl std::error::Error for FlagFileErrors {}

/// The document: `[flags]` only (unknown top-level keys are reported before this is read).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlagsFile {
    /// The flags, by key.
    #[serde(default)]
    flags: RawFlags,
}

/// Describes a parsed TOML value's type for messages.
fn describe(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Parses and validates flags-file text; `file` only labels the errors.
pub fn parse_flags_file(source: &str, file: &str) -> Result<FlagSet, FlagFileErrors> {
    let mut root = match DeTable::parse(source) {
        Ok(root) => root,
        Err(e) => {
            let at = e.span().map_or(0, |s| s.start);
            let message = tidy_toml_message(e.message());
            return Err(FlagFileErrors(vec![LocatedError::at(
                source, file, at, message,
            )]));
        }
    };
    if let Some((at, message)) = number_beyond_64_bits(root.get_ref()) {
        return Err(FlagFileErrors(vec![LocatedError::at(
            source, file, at, message,
        )]));
    }
    let mut errors: Vec<SpannedError> = Vec::new();
    check_shape(root.get_mut(), &mut errors);
    let raw = match RawFlagsFile::deserialize(toml::de::Deserializer::from(root)) {
        Ok(raw) => Some(raw),
        Err(e) => {
            // Not expected once the shape has been checked, but reported rather than trusted.
            errors.push(SpannedError {
                span: e.span().unwrap_or(0..0),
                message: tidy_toml_message(e.message()),
            });
            None
        }
    };
    let mut set = None;
    if let Some(raw) = raw {
        if raw.flags.is_empty() && errors.is_empty() {
            errors.push(SpannedError {
                span: 0..0,
                message: "no flags are defined; add a [flags.NAME] table".to_string(),
            });
        }
        match validate(&raw.flags) {
            Ok(s) => set = Some(s),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        if let Some(set) = set {
            return Ok(set);
        }
        errors.push(SpannedError {
            span: 0..0,
            message: "internal error: the flags passed validation but could not be built"
                .to_string(),
        });
    }
    errors.sort_by_key(|e| (e.span.start, e.span.end));
    errors.dedup();
    Err(FlagFileErrors(
        errors
            .into_iter()
            .map(|e| LocatedError::at(source, file, e.span.start, e.message))
            .collect(),
    ))
}

/// Reports and removes what `RawFlagsFile` cannot hold: unknown top-level keys, a `flags`
/// that is not a table, flag entries that are not tables, and unknown keys in a flag table.
fn check_shape(root: &mut DeTable<'_>, errors: &mut Vec<SpannedError>) {
    let mut remove: Vec<String> = Vec::new();
    for (key, value) in root.iter_mut() {
        let name: &str = key.get_ref();
        if name != "flags" {
            errors.push(SpannedError {
                span: key.span(),
                message: format!(
                    "unknown key `{name}` at the top level; a flags file holds only [flags.NAME] tables"
                ),
            });
            remove.push(name.to_string());
            continue;
        }
        let span = value.span();
        match value.get_mut() {
            DeValue::Table(flags) => check_flags(flags, errors),
            other => {
                errors.push(SpannedError {
                    span,
                    message: format!(
                        "`flags` must be a table of flags ([flags.NAME]), found {}",
                        describe(other)
                    ),
                });
                remove.push(name.to_string());
            }
        }
    }
    for key in remove {
        root.remove(key.as_str());
    }
}

/// The part of [`check_shape`] for the `[flags]` table.
fn check_flags(flags: &mut DeTable<'_>, errors: &mut Vec<SpannedError>) {
    let mut remove: Vec<String> = Vec::new();
    for (flag_key, flag) in flags.iter_mut() {
        let flag_name: &str = flag_key.get_ref();
        let span = flag.span();
        let DeValue::Table(table) = flag.get_mut() else {
            errors.push(SpannedError {
                span,
                message: format!(
                    "flags.{flag_name}: expected a table ([flags.{flag_name}]), found {}",
                    describe(flag.get_ref())
                ),
            });
            remove.push(flag_name.to_string());
            continue;
        };
        let mut unknown: Vec<String> = Vec::new();
        for (k, _) in table.iter() {
            let field: &str = k.get_ref();
            if RAW_FLAG_KEYS.contains(&field) {
                continue;
            }
            let expected: Vec<String> = RAW_FLAG_KEYS.iter().map(|f| format!("`{f}`")).collect();
            errors.push(SpannedError {
                span: k.span(),
                message: format!(
                    "flags.{flag_name}: unknown key `{field}`; expected one of {}",
                    expected.join(", ")
                ),
            });
            unknown.push(field.to_string());
        }
        for key in unknown {
            table.remove(key.as_str());
        }
    }
    for key in remove {
        flags.remove(key.as_str());
    }
}

/// Reads, parses and validates a flags file.
///
/// An unreadable file is one error at 1:1 naming the operating system's reason; a file that
/// is not UTF-8 is one error at the first invalid byte.
pub fn load_flags_file(path: &Path) -> Result<FlagSet, FlagFileErrors> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        FlagFileErrors(vec![LocatedError::at_start(
            &file,
            format!("cannot read the flags file: {e}"),
        )])
    })?;
    match std::str::from_utf8(&bytes) {
        Ok(source) => parse_flags_file(source, &file),
        Err(e) => Err(FlagFileErrors(vec![LocatedError::at_invalid_utf8(
            &bytes,
            &e,
            &file,
            "the flags file is not valid UTF-8 from here on".to_string(),
        )])),
    }
}
