//! Parsing an answer of Prometheus' instant-query API (`/api/v1/query`).
//!
//! The envelope is `{"status": "success" | "error", "data": {"resultType", "result"},
//! "errorType", "error", "warnings"}`; a sample's value is `[<unix time>, "<number>"]`, the
//! number a string because it may be `NaN`, `+Inf` or `-Inf`. The answer is hostile input:
//! its size is bounded by the HTTP client, nesting by serde_json's recursion limit, and the
//! number of series here.

use super::error::PromError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The most series Ramp reads from one query: far more than any cohort's pods times
/// histogram buckets, few enough that a selector matching a whole server fails fast.
pub const MAX_SERIES: usize = 10_000;

/// One series of an instant vector: its full label set and its value at the query time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Every label of the series, `__name__` included when the result keeps it.
    pub labels: BTreeMap<String, String>,
    /// The value, possibly NaN or infinite (checked by whoever uses it).
    pub value: f64,
    /// The value as the server wrote it, for error messages.
    pub text: String,
}

/// What an instant query returned.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// An instant vector: one sample per series (maybe none).
    Vector(Vec<Sample>),
    /// A scalar (`scalar(…)`, a number literal).
    Scalar {
        /// The value.
        value: f64,
        /// As written by the server.
        text: String,
    },
}

/// The API's envelope.
#[derive(Debug, Deserialize)]
struct Envelope {
    /// `success` or `error`.
    status: String,
    /// The result, on success.
    #[serde(default)]
    data: Option<Data>,
    /// The error's class (`bad_data`, `execution`, `timeout`, …).
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    /// The error's text.
    #[serde(default)]
    error: Option<String>,
}

/// `data` of a query answer.
#[derive(Debug, Deserialize)]
struct Data {
    /// `vector`, `scalar`, `matrix` or `string`.
    #[serde(rename = "resultType")]
    result_type: String,
    /// Shaped by the type.
    result: serde_json::Value,
}

/// One element of a vector result.
#[derive(Debug, Deserialize)]
struct VectorElement {
    /// The labels.
    metric: BTreeMap<String, String>,
    /// `[time, "value"]`.
    value: (f64, String),
}

/// Reads the answer to `query`: `status` and `body` as received.
pub fn parse(query: &str, status: u16, body: &[u8]) -> Result<QueryResult, PromError> {
    let envelope: Result<Envelope, _> = serde_json::from_slice(body);
    let success = (200..300).contains(&status);
    let envelope = match envelope {
        Ok(e) => e,
        Err(e) if success => {
            return Err(PromError::Document {
                query: query.to_string(),
                message: e.to_string(),
            })
        }
        // An error status whose body is not the API's document: something in front of the
        // server (a gateway, an authorizing proxy) answered.
        Err(_) => {
            return Err(PromError::Api {
                query: query.to_string(),
                status,
                error_type: String::new(),
                error: String::from_utf8_lossy(body).chars().take(200).collect(),
            })
        }
    };
    if !success || envelope.status != "success" {
        let error_type = envelope.error_type.unwrap_or_default();
        let error = envelope.error.unwrap_or_default();
        if error_type == "bad_data" {
            return Err(PromError::BadData {
                query: query.to_string(),
                error,
            });
        }
        return Err(PromError::Api {
            query: query.to_string(),
            status,
            error_type,
            error,
        });
    }
    let data = envelope.data.ok_or_else(|| PromError::Document {
        query: query.to_string(),
        message: "a success without `data`".into(),
    })?;
    let document = |message: String| PromError::Document {
        query: query.to_string(),
        message,
    };
    match data.result_type.as_str() {
        "vector" => {
            let count = data.result.as_array().map_or(0, Vec::len);
            if count > MAX_SERIES {
                return Err(PromError::TooManySeries {
                    query: query.to_string(),
                    count,
                    max: MAX_SERIES,
                });
            }
            let elements: Vec<VectorElement> =
                serde_json::from_value(data.result).map_err(|e| document(e.to_string()))?;
            elements
                .into_iter()
                .map(|e| {
                    Ok(Sample {
                        value: number(&e.value.1).map_err(&document)?,
                        labels: e.metric,
                        text: e.value.1,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(QueryResult::Vector)
        }
        "scalar" => {
            let (_, text): (f64, String) =
                serde_json::from_value(data.result).map_err(|e| document(e.to_string()))?;
            Ok(QueryResult::Scalar {
                value: number(&text).map_err(document)?,
                text,
            })
        }
        other => Err(PromError::NotVector {
            query: query.to_string(),
            found: other.to_string(),
        }),
    }
}

/// The one number of a query gate's answer: a scalar, or an instant vector of exactly one
/// series. No series is [`PromError::Empty`], several are [`PromError::Several`], and NaN or
/// an infinity is [`PromError::BadValue`]: a gate never passes on a number that is not one.
pub fn one_number(query: &str, result: QueryResult) -> Result<f64, PromError> {
    let (value, text, series) = match result {
        QueryResult::Scalar { value, text } => (value, text, "scalar".to_string()),
        QueryResult::Vector(samples) => match <[Sample; 1]>::try_from(samples) {
            Ok([one]) => (one.value, one.text, series_name(&one.labels)),
            Err(samples) if samples.is_empty() => {
                return Err(PromError::Empty {
                    query: query.to_string(),
                })
            }
            Err(samples) => {
                return Err(PromError::Several {
                    query: query.to_string(),
                    count: samples.len(),
                })
            }
        },
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(PromError::BadValue {
            query: query.to_string(),
            series,
            value: text,
            why: "not a number a gate can judge",
        })
    }
}

/// A sample value as Prometheus writes it (Go's float formatting: `1.5`, `1e+06`, `NaN`,
/// `+Inf`, `-Inf`).
fn number(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("sample value {text:?} is not a number")),
    }
}

/// The labels of a series as PromQL writes a selector (`{a="1",b="2"}`), for messages and
/// as the series' identity.
pub fn series_name(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", ramp_core::promql::escape_label_value(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector answer of the API documentation's example, two series.
    const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"up","job":"prometheus","instance":"localhost:9090"},"value":[1435781451.781,"1"]},
        {"metric":{"__name__":"up","job":"node","instance":"localhost:9100"},"value":[1435781451.781,"0"]}]}}"#;

    #[test]
    fn a_vector_is_read_series_by_series() {
        let QueryResult::Vector(samples) = parse("up", 200, VECTOR.as_bytes()).unwrap() else {
            panic!("a vector");
        };
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].labels["job"], "prometheus");
        assert_eq!(samples[0].value, 1.0);
        assert_eq!(
            series_name(&samples[1].labels),
            r#"{__name__="up",instance="localhost:9100",job="node"}"#
        );
    }

    #[test]
    fn special_values_are_read_as_floats() {
        for (text, check) in [
            ("NaN", f64::is_nan as fn(f64) -> bool),
            ("+Inf", |v: f64| v == f64::INFINITY),
            ("-Inf", |v: f64| v == f64::NEG_INFINITY),
            ("1e+06", |v: f64| v == 1e6),
        ] {
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"scalar","result":[1.5,"{text}"]}}}}"#
            );
            let QueryResult::Scalar { value, .. } = parse("q", 200, body.as_bytes()).unwrap()
            else {
                panic!("a scalar");
            };
            assert!(check(value), "{text} read as {value}");
        }
        let body = r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"many"]}}"#;
        assert!(matches!(
            parse("q", 200, body.as_bytes()),
            Err(PromError::Document { .. })
        ));
    }

    #[test]
    fn a_syntax_error_is_bad_data_and_other_errors_are_api_errors() {
        let bad = r#"{"status":"error","errorType":"bad_data","error":"1:14: parse error: unexpected \"}\""}"#;
        let e = parse("sum(x{a=\"b\"}}", 400, bad.as_bytes()).unwrap_err();
        assert!(e.is_bad_query(), "{e}");
        assert!(
            e.to_string().contains("parse error") && e.to_string().contains("sum(x"),
            "{e}"
        );
        let exec = r#"{"status":"error","errorType":"execution","error":"found duplicate series for the match group"}"#;
        let e = parse("a / b", 422, exec.as_bytes()).unwrap_err();
        assert!(
            matches!(&e, PromError::Api { status: 422, error_type, .. } if error_type == "execution"),
            "{e}"
        );
        let timeout = r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#;
        let e = parse("q", 503, timeout.as_bytes()).unwrap_err();
        assert!(
            matches!(&e, PromError::Api { status: 503, .. }) && !e.is_bad_query(),
            "{e}"
        );
        let gateway = b"<html><body>502 Bad Gateway</body></html>";
        let e = parse("q", 502, gateway).unwrap_err();
        assert!(e.to_string().contains("502 Bad Gateway"), "{e}");
        let e = parse("q", 200, br#"{"status":"success"}"#).unwrap_err();
        assert!(matches!(e, PromError::Document { .. }), "{e}");
    }

    #[test]
    fn ranges_and_strings_are_not_instant_samples() {
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]}]}}"#;
        let e = parse("x[1m]", 200, matrix.as_bytes()).unwrap_err();
        assert!(
            matches!(&e, PromError::NotVector { found, .. } if found == "matrix"),
            "{e}"
        );
        let string = r#"{"status":"success","data":{"resultType":"string","result":[1,"hello"]}}"#;
        assert!(matches!(
            parse("\"hello\"", 200, string.as_bytes()),
            Err(PromError::NotVector { .. })
        ));
    }

    #[test]
    fn hostile_answers_are_errors_not_panics() {
        let many: Vec<String> = (0..=MAX_SERIES)
            .map(|i| format!(r#"{{"metric":{{"i":"{i}"}},"value":[1,"1"]}}"#))
            .collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            many.join(",")
        );
        let e = parse("q", 200, body.as_bytes()).unwrap_err();
        assert!(
            matches!(e, PromError::TooManySeries { count, .. } if count == MAX_SERIES + 1),
            "{e}"
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            parse("q", 200, deep.as_bytes()),
            Err(PromError::Document { .. })
        ));
        for body in [
            &b"\xff\xfe"[..],
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":1},"value":[1,"1"]}]}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1]}]}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":{}}}"#,
            b"",
        ] {
            assert!(parse("q", 200, body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn one_number_is_a_scalar_or_a_single_series() {
        let vector = |values: &[&str]| {
            let series: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| format!(r#"{{"metric":{{"pod":"p{i}"}},"value":[1,"{v}"]}}"#))
                .collect();
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
                series.join(",")
            );
            parse("q", 200, body.as_bytes()).unwrap()
        };
        assert_eq!(one_number("q", vector(&["0.25"])).unwrap(), 0.25);
        assert!(matches!(
            one_number("q", vector(&[])),
            Err(PromError::Empty { .. })
        ));
        assert!(matches!(
            one_number("q", vector(&["1", "2", "3"])),
            Err(PromError::Several { count: 3, .. })
        ));
        let e = one_number("q", vector(&["NaN"])).unwrap_err();
        assert!(
            matches!(e, PromError::BadValue { .. }) && e.to_string().contains("pod=\"p0\""),
            "{e}"
        );
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"-2.5"]}}"#;
        assert_eq!(
            one_number("q", parse("q", 200, scalar.as_bytes()).unwrap()).unwrap(),
            -2.5
        );
        let inf = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#;
        assert!(one_number("q", parse("q", 200, inf.as_bytes()).unwrap()).is_err());
    }
}
