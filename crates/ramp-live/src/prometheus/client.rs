//! The HTTP client of Prometheus' instant-query API, and the evaluation of one number.
//!
//! Queries are sent as a form `POST /api/v1/query` with `query` and `time` (the API takes
//! both GET and POST; a form body keeps long queries out of URL length limits). Every call is
//! bounded: the plan's `timeout` covers the connection and the whole answer, and the answer
//! is read up to [`crate::http::MAX_RESPONSE_BYTES`].

use super::error::PromError;
use super::parse::{one_number, parse, QueryResult};
use crate::http::{ApiClient, HttpError};
use bytes::Bytes;
use http::Method;
use std::time::Duration;

/// A client of one Prometheus server's query API.
#[derive(Debug, Clone)]
pub struct PromClient {
    /// The bounded HTTP client, bearer token included (never printed).
    api: ApiClient,
    /// The deadline of each query, for error messages.
    timeout: Duration,
}

impl PromClient {
    /// A client for the server at `url` (`http://host:port`, a path prefix allowed), sending
    /// `token` as a bearer token when given (the caller reads it from the plan's
    /// `token_file`), each query bounded by `timeout`.
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Self, PromError> {
        if let Some(t) = &token {
            if http::HeaderValue::from_str(&format!("Bearer {t}")).is_err() {
                return Err(PromError::Config {
                    url: url.to_string(),
                    message: "the bearer token holds characters an HTTP header cannot carry".into(),
                });
            }
        }
        let api = ApiClient::new(url, token, timeout).map_err(|e| PromError::Config {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        Ok(PromClient { api, timeout })
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        self.api.base()
    }

    /// Evaluates `query` at `time_ms` (Unix milliseconds): the result as the server gave it.
    pub async fn query(&self, query: &str, time_ms: i64) -> Result<QueryResult, PromError> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", query)
            .append_pair("time", &unix_seconds(time_ms))
            .finish();
        let body = Some(("application/x-www-form-urlencoded", Bytes::from(form)));
        let (status, answer) = self
            .api
            .send(Method::POST, "/api/v1/query", body)
            .await
            .map_err(|e| match e {
                HttpError::Timeout { .. } => PromError::Timeout {
                    query: query.to_string(),
                    timeout: self.timeout,
                },
                HttpError::Url { message, .. } => PromError::Config {
                    url: self.url().to_string(),
                    message,
                },
                HttpError::Transport { message, .. } => PromError::Unreachable {
                    query: query.to_string(),
                    message,
                },
            })?;
        parse(query, status.as_u16(), &answer)
    }

    /// Evaluates `query` at `time_ms` to one number, for a query gate: a scalar, or an
    /// instant vector of exactly one series. No series is [`PromError::Empty`], several are
    /// [`PromError::Several`], and NaN or an infinity is [`PromError::BadValue`]: a gate never
    /// passes on a number that is not one.
    pub async fn scalar(&self, query: &str, time_ms: i64) -> Result<f64, PromError> {
        one_number(query, self.query(query, time_ms).await?)
    }
}

/// Unix milliseconds as the API's `time` parameter: seconds with three decimals.
fn unix_seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_seconds_with_milliseconds() {
        assert_eq!(unix_seconds(1_435_781_451_781), "1435781451.781");
        assert_eq!(unix_seconds(5), "0.005");
        assert_eq!(unix_seconds(-1500), "-1.500");
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_refused_up_front() {
        let e = PromClient::new(
            "http://127.0.0.1:9090",
            Some("abc\ndef".into()),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(e, PromError::Config { .. }), "{e}");
        assert!(
            !e.to_string().contains("abc"),
            "the token is never shown: {e}"
        );
        let e = PromClient::new("https://prom:9090", None, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("http://host:port"), "{e}");
    }
}
