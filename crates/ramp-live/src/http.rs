//! A small bounded HTTP/1.1 client for loopback admin APIs (the proxy's and the controller's).
//!
//! Every call has a deadline and reads at most a bounded body, because the other side may be
//! a hung or hostile process.

use bytes::Bytes;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;
use thiserror::Error;

/// Largest response body read from an admin API (a proxy snapshot is tens of KiB).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Why a call failed.
#[derive(Debug, Error)]
pub enum HttpError {
    /// The URL could not be used.
    #[error("invalid URL {url}: {message}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// No answer within the deadline.
    #[error("{url}: no answer within {timeout:?}")]
    Timeout {
        /// The URL called.
        url: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The connection or the exchange failed.
    #[error("{url}: {message}")]
    Transport {
        /// The URL called.
        url: String,
        /// The transport's description.
        message: String,
    },
}

/// A reusable client (keep-alive) for one base URL such as `http://127.0.0.1:9901`.
#[derive(Clone)]
pub struct ApiClient {
    /// The base URL without a trailing slash.
    base: String,
    /// Bearer token sent with every call, when the API requires one.
    token: Option<String>,
    /// The pooled hyper client.
    client: Client<HttpConnector, Full<Bytes>>,
    /// Deadline of each call, connection included.
    timeout: Duration,
    /// A header sent with every call (the run a verb is meant for), when set.
    header: Option<(http::HeaderName, http::HeaderValue)>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never printed.
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish()
    }
}

impl ApiClient {
    /// A client for `base` (`http://host:port`); only plain HTTP is spoken.
    pub fn new(
        base: &str,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<ApiClient, HttpError> {
        let base = base.trim_end_matches('/').to_string();
        let uri: Uri = base
            .parse()
            .map_err(|e: http::uri::InvalidUri| HttpError::Url {
                url: base.clone(),
                message: e.to_string(),
            })?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(HttpError::Url {
                url: base,
                message: "expected http://host:port".into(),
            });
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(ApiClient {
            base,
            token,
            client,
            timeout,
            header: None,
        })
    }

    /// The same client, sending `name: value` with every call.
    pub fn with_header(mut self, name: http::HeaderName, value: http::HeaderValue) -> ApiClient {
        self.header = Some((name, value));
        self
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `method path` with an optional JSON body; returns the status and the body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        json: Option<String>,
    ) -> Result<(StatusCode, Bytes), HttpError> {
        let body = json.map(|j| ("application/json", Bytes::from(j)));
        self.send(method, path, body).await
    }

    /// Sends `method path` with an optional body of the given content type (a form for
    /// Prometheus' query API, whose queries may be too long for a URL); returns the status
    /// and the body, under the same deadline and size limit as [`ApiClient::call`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<(StatusCode, Bytes), HttpError> {
        let url = format!("{}{}", self.base, path);
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(t) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some((name, value)) = &self.header {
            req = req.header(name, value);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                req = req.header(header::CONTENT_TYPE, content_type);
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body).map_err(|e| HttpError::Url {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| HttpError::Transport {
                    url: url.clone(),
                    message: describe(&e),
                })?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| HttpError::Transport {
                    url: url.clone(),
                    message: format!("reading the response: {e}"),
                })?
                .to_bytes();
            Ok((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout {
                url,
                timeout: self.timeout,
            }),
        }
    }
}

/// The innermost cause of a client error, which is the one a person can act on
/// ("Connection refused").
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        msg = s.to_string();
        cur = s.source();
    }
    msg
}
