//! PromQL query templates: placeholders, their values, and the default templates.
//!
//! A plan's Prometheus queries (`[metrics]` and `[[gates.query]]`) are templates with
//! `{{name}}` placeholders, so that one plan reads the canary and the stable cohort with the
//! same text. Rendering is a pure function: the plan loader renders every template offline to
//! report an unknown placeholder before a run starts, and the live driver renders the same
//! text at run time. Label values are escaped for PromQL double-quoted strings, so a value
//! holding `"` or `\` can neither break the query nor widen its selector.

use crate::plan::Deployment;
use crate::units::Span;
use std::fmt;

/// Completed requests of one cohort: the latency histogram's `_count`, a raw counter.
pub const DEFAULT_REQUESTS: &str = r#"http_request_duration_seconds_count{version="{{cohort}}"}"#;

/// Failed requests of one cohort: the conventional request counter restricted to 5xx codes.
pub const DEFAULT_ERRORS: &str = r#"http_requests_total{version="{{cohort}}",code=~"5.."}"#;

/// The latency histogram's cumulative buckets of one cohort, with their `le` label.
pub const DEFAULT_LATENCY_BUCKETS: &str =
    r#"http_request_duration_seconds_bucket{version="{{cohort}}"}"#;

/// The value of `{{cohort}}` for the canary when the plan does not set `canary_label`.
pub const DEFAULT_CANARY_LABEL: &str = "canary";

/// The value of `{{cohort}}` for the stable version when the plan does not set
/// `stable_label`.
pub const DEFAULT_STABLE_LABEL: &str = "stable";

/// The placeholders a template may use, in the order the documentation lists them.
pub const PLACEHOLDERS: [&str; 5] = ["cohort", "deployment", "service", "environment", "interval"];

/// What the placeholders stand for when one query is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Values<'a> {
    /// The cohort's label value (`canary_label` or `stable_label`); `None` where a query is
    /// about no cohort in particular, which makes `{{cohort}}` an error there.
    pub cohort: Option<&'a str>,
    /// The plan's deployment id.
    pub deployment: &'a str,
    /// The service being rolled out.
    pub service: &'a str,
    /// The environment it is rolled out to.
    pub environment: &'a str,
    /// The engine's evaluation interval, rendered as a PromQL duration.
    pub interval: Span,
}

impl<'a> Values<'a> {
    /// The values a plan's `deployment` gives its queries, for `cohort` (`None` for a query
    /// about no cohort in particular) at the engine's evaluation `interval`.
    pub fn of(deployment: &'a Deployment, cohort: Option<&'a str>, interval: Span) -> Values<'a> {
        Values {
            cohort,
            deployment: &deployment.id,
            service: &deployment.service,
            environment: &deployment.environment,
            interval,
        }
    }
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// A placeholder that does not exist (a typo, or a name from another tool).
    Unknown {
        /// The name between the braces.
        name: String,
        /// Its byte offset in the template.
        at: usize,
    },
    /// `{{` without a closing `}}`.
    Unclosed {
        /// The byte offset of the `{{`.
        at: usize,
    },
    /// `{{cohort}}` in a query that is about no cohort (a query gate).
    NoCohort {
        /// Its byte offset in the template.
        at: usize,
    },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Unknown { name, at } => write!(
                f,
                "unknown placeholder {{{{{name}}}}} at byte {at} (known: {})",
                PLACEHOLDERS.map(|p| format!("{{{{{p}}}}}")).join(", ")
            ),
            TemplateError::Unclosed { at } => {
                write!(
                    f,
                    "unclosed placeholder at byte {at}: `{{{{` without `}}}}`"
                )
            }
            TemplateError::NoCohort { at } => write!(
                f,
                "{{{{cohort}}}} at byte {at} has no value here: this query is not per cohort"
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

/// Renders `template` with `values`: each `{{name}}` (spaces inside the braces allowed) is
/// replaced by its value, label values escaped for a PromQL double-quoted string.
pub fn render(template: &str, values: &Values<'_>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    let mut offset = 0;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let at = offset + open;
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or(TemplateError::Unclosed { at })?;
        let name = after[..close].trim();
        match name {
            "cohort" => {
                let cohort = values.cohort.ok_or(TemplateError::NoCohort { at })?;
                out.push_str(&escape_label_value(cohort));
            }
            "deployment" => out.push_str(&escape_label_value(values.deployment)),
            "service" => out.push_str(&escape_label_value(values.service)),
            "environment" => out.push_str(&escape_label_value(values.environment)),
            "interval" => out.push_str(&duration(values.interval)),
            other => {
                return Err(TemplateError::Unknown {
                    name: other.to_string(),
                    at,
                })
            }
        }
        let consumed = open + 2 + close + 2;
        rest = &rest[consumed..];
        offset += consumed;
    }
    out.push_str(rest);
    Ok(out)
}

/// `value` escaped for the inside of a PromQL double-quoted string: backslash, double quote
/// and the control characters PromQL's lexer would otherwise end or misread the string on.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// A span as a PromQL duration: whole seconds as `Ns`, anything else as `Nms`, the two
/// units every Prometheus version parses.
pub fn duration(span: Span) -> String {
    if span.0.is_multiple_of(1000) && span.0 > 0 {
        format!("{}s", span.0 / 1000)
    } else {
        format!("{}ms", span.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(cohort: Option<&str>) -> Values<'_> {
        Values {
            cohort,
            deployment: "checkout-42",
            service: "checkout",
            environment: "prod",
            interval: Span(5000),
        }
    }

    #[test]
    fn every_placeholder_is_replaced() {
        let text = render(
            r#"rate(x{version="{{cohort}}",d="{{ deployment }}",s="{{service}}",e="{{environment}}"}[{{interval}}])"#,
            &values(Some("canary")),
        )
        .unwrap();
        assert_eq!(
            text,
            r#"rate(x{version="canary",d="checkout-42",s="checkout",e="prod"}[5s])"#
        );
    }

    #[test]
    fn the_defaults_render_per_cohort() {
        let v = values(Some("stable"));
        assert_eq!(
            render(DEFAULT_REQUESTS, &v).unwrap(),
            r#"http_request_duration_seconds_count{version="stable"}"#
        );
        assert_eq!(
            render(DEFAULT_ERRORS, &v).unwrap(),
            r#"http_requests_total{version="stable",code=~"5.."}"#
        );
        assert_eq!(
            render(DEFAULT_LATENCY_BUCKETS, &v).unwrap(),
            r#"http_request_duration_seconds_bucket{version="stable"}"#
        );
    }

    #[test]
    fn label_values_cannot_break_out_of_their_string() {
        let text = render(
            r#"x{version="{{cohort}}"}"#,
            &values(Some("a\"} or up{b=\"\\\n\u{1}")),
        )
        .unwrap();
        assert_eq!(text, r#"x{version="a\"} or up{b=\"\\\n\u0001"}"#);
    }

    #[test]
    fn unknown_unclosed_and_cohortless_placeholders_are_errors() {
        let v = values(Some("canary"));
        assert_eq!(
            render("x{a=\"{{version}}\"}", &v),
            Err(TemplateError::Unknown {
                name: "version".into(),
                at: 5
            })
        );
        let message = render("{{pod}}", &v).unwrap_err().to_string();
        assert!(message.contains("{{pod}}"), "{message}");
        assert_eq!(
            render("x{{cohort", &v),
            Err(TemplateError::Unclosed { at: 1 })
        );
        assert_eq!(
            render("sum(x{v=\"{{cohort}}\"})", &values(None)),
            Err(TemplateError::NoCohort { at: 9 })
        );
        assert_eq!(render("no placeholders", &v).unwrap(), "no placeholders");
    }

    #[test]
    fn intervals_are_promql_durations() {
        assert_eq!(duration(Span(1000)), "1s");
        assert_eq!(duration(Span(500)), "500ms");
        assert_eq!(duration(Span(90_000)), "90s");
        assert_eq!(duration(Span(1500)), "1500ms");
        assert_eq!(duration(Span(0)), "0ms");
    }
}
