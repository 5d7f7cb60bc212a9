//! The placeholders of a command router's argv templates (`[router] kind = "command"`):
//! `{weight}`, `{weight_bp}`, `{deployment}` and `{run}`.
//!
//! One rule for the plan loader, which refuses an unknown placeholder at `ramp validate`, and
//! for the live router, which fills the known ones in. A placeholder is `{` followed by
//! letters, digits or `_` and `}`; any other brace is literal, so that a JSON argument such as
//! `{"spec":{"weight":{weight}}}` (for `kubectl patch`) keeps its braces.

use crate::units::Weight;

/// What a command template's placeholders are replaced with.
#[derive(Debug, Clone, Copy)]
pub struct ArgValues<'a> {
    /// The canary weight being set (`{weight}` in percent, `{weight_bp}` in basis points).
    pub weight: Option<Weight>,
    /// The deployment's id (`{deployment}`).
    pub deployment: &'a str,
    /// The run's token (`{run}`).
    pub run: &'a str,
}

/// The placeholders a command that sets the weight may use.
pub const SET_PLACEHOLDERS: [&str; 4] = ["weight", "weight_bp", "deployment", "run"];

/// The placeholders a command that reads the weight may use: it has no weight to pass.
pub const GET_PLACEHOLDERS: [&str; 2] = ["deployment", "run"];

/// The placeholders of `arg`, as the names between the braces, in order.
pub fn placeholders(arg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if len > 0 && after[len..].starts_with('}') {
            out.push(&after[..len]);
            rest = &after[len + 1..];
        } else {
            rest = after;
        }
    }
    out
}

/// `arg` with every known placeholder replaced; an unknown one (which the loader refuses) is
/// left as written.
pub fn render(arg: &str, values: &ArgValues<'_>) -> String {
    let mut out = arg.to_string();
    for name in placeholders(arg) {
        let value = match (name, values.weight) {
            ("weight", Some(w)) => percent(w),
            ("weight_bp", Some(w)) => w.basis_points().to_string(),
            ("deployment", _) => values.deployment.to_string(),
            ("run", _) => values.run.to_string(),
            _ => continue,
        };
        out = out.replacen(&format!("{{{name}}}"), &value, 1);
    }
    out
}

/// A weight in percent as a command reads it: `5`, `2.5`, `0.01`.
pub fn percent(w: Weight) -> String {
    w.to_string().trim_end_matches('%').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_identifiers_in_braces_and_other_braces_are_literal() {
        assert_eq!(
            placeholders(r#"{"spec":{"weight":{weight}}} {run}{x-y} {}"#),
            ["weight", "run"]
        );
        let values = ArgValues {
            weight: Weight::from_percent(2.5),
            deployment: "d1",
            run: "r9",
        };
        assert_eq!(
            render(
                r#"{"w":{weight},"bp":{weight_bp}} {deployment}/{run} {nope}"#,
                &values
            ),
            r#"{"w":2.5,"bp":250} d1/r9 {nope}"#
        );
        assert_eq!(percent(Weight::from_percent(5.0).unwrap()), "5");
        assert_eq!(percent(Weight::from_percent(0.01).unwrap()), "0.01");
        assert_eq!(percent(Weight::FULL), "100");
    }
}
