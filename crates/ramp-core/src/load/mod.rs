//! Reading plan files: raw serde structs that mirror the TOML, then a validation pass.
//!
//! Stage one parses the text into a spanned TOML tree (`toml::de::DeTable`); a syntax error
//! stops here, reported located. The tree is then checked against the shape of the private
//! `Raw*` structs (in `raw`): every unknown key is reported (naming the key, its table and the
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
//!
//! This file holds the public entry points and the located errors they return. The rest is
//! split by concern, so that each part of the plan's rules can be read on its own:
//!
//! - `scalar`: the lenient leaf values (`Num`, `NumOrText`, `Dur`, `StartValue`, `Text`,
//!   `TextList`) that keep a wrong value for stage two to report;
//! - `raw`: the `Raw*` structs that mirror the TOML;
//! - `schema`: the key schema and the stage-one check of keys and shapes;
//! - `validator`: the `Validator` of stage two, its checks of single values, the walk over
//!   the whole plan and the formatting of values for messages;
//! - `deployment`, `gates`, `stages`, `simulation`, `rehearsals`, `live` (router, control,
//!   ofrep and flags), `probes` (checks and hooks), `notify` (notifiers) and
//!   `report_queries` (`[[report.queries]]`) and `store` (`[store]`, the etcd cluster of
//!   highly available controllers): the stage-two checks of each section, as
//!   `impl Validator` blocks of their own.

mod deployment;
mod gates;
mod live;
mod metrics;
mod notify;
mod probes;
mod raw;
mod rehearsals;
mod report_queries;
mod router;
mod router_kinds;
mod scalar;
mod schema;
mod simulation;
mod stages;
mod store;
#[cfg(test)]
mod tests;
mod validator;

pub use notify::{check_notify_url, redact_url};

use crate::plan::Plan;
use ramp_flags::located::{number_beyond_64_bits, tidy_toml_message, LocatedError};
use raw::RawPlan;
use schema::PLAN;
use serde::Deserialize;
use std::fmt;
use std::path::Path;
use toml::de::DeTable;
use validator::Validator;

/// One located problem in a plan file.
///
/// Located so that an editor or a CI log can jump to it: the project's contract says every
/// error names file, line, column and what was expected. It is the `LocatedError` that every
/// TOML file of Ramp shares (`ramp_flags::located`), so that plans and flags files say
/// `file:line:column: error: message` by one rule.
pub type PlanError = LocatedError;

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
            return Err(PlanErrors(vec![LocatedError::at(
                source, file, at, message,
            )]));
        }
    };
    if let Some((at, message)) = number_beyond_64_bits(root.get_ref()) {
        return Err(PlanErrors(vec![LocatedError::at(
            source, file, at, message,
        )]));
    }
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
            PlanErrors(vec![LocatedError::at(
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
        PlanErrors(vec![LocatedError::at_start(
            &file,
            format!("cannot read the plan file: {e}"),
        )])
    })?;
    match std::str::from_utf8(&bytes) {
        Ok(source) => parse_plan(source, &file),
        Err(e) => Err(PlanErrors(vec![LocatedError::at_invalid_utf8(
            &bytes,
            &e,
            &file,
            "the plan file is not valid UTF-8; expected UTF-8 text".into(),
        )])),
    }
}
