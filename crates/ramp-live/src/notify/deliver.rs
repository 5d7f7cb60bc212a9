//! Delivery to one target: its own task draining its own bounded queue, a rate limit, and
//! attempts with exponential backoff, each attempt bounded in time and in what it reads.
//!
//! Nothing here can hold the driver: the driver only ever `try_send`s into the queue, and
//! every job ends in exactly one [`Delivery`] (delivered, failed after its attempts, or
//! dropped by the rate limit) that goes back to the driver to be journaled.

use super::message::Note;
use super::payload;
use super::{Delivery, DeliveryOutcome};
use crate::checks::run_program_with;
use crate::clock;
use bytes::Bytes;
use http::{header, Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use ramp_core::plan::{Notifier, NotifyTarget};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The wait after the first failed attempt; it doubles after each.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The most of a receiver's answer that is read (only its status matters, and a line of
/// its body explains a refusal).
const MAX_ANSWER_BYTES: usize = 4096;
/// The most of a refusal's body quoted in the journal.
const QUOTED_BYTES: usize = 200;

/// How one target is reached.
pub(super) enum Transport {
    /// An HTTP POST of a JSON body.
    Http {
        /// The client (TLS for https, plain for loopback http); boxed, since it is large
        /// beside a command's argv.
        client: Box<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>,
        /// The URL, secret path included: never logged.
        url: Uri,
    },
    /// A program run directly.
    Command {
        /// Program and arguments.
        argv: Vec<String>,
        /// Where relative programs are found and it runs.
        base_dir: PathBuf,
    },
}

/// One target's settings and transport, owned by its task.
pub(super) struct Target {
    /// The validated notifier.
    pub(super) notifier: Notifier,
    /// How it is reached.
    pub(super) transport: Transport,
}

/// A token bucket: `per_minute` messages at once, refilled at `per_minute` a minute.
#[derive(Debug)]
pub(super) struct RateLimit {
    /// Tokens now (fractional while refilling).
    tokens: f64,
    /// The bucket's size and refill per minute.
    per_minute: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl RateLimit {
    /// A full bucket.
    pub(super) fn new(per_minute: u32, now: Instant) -> RateLimit {
        RateLimit {
            tokens: f64::from(per_minute),
            per_minute: f64::from(per_minute),
            at: now,
        }
    }

    /// Takes a token if one is there.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.per_minute / 60.0;
        self.tokens = (self.tokens + refill).min(self.per_minute);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The target's task: one job at a time, in order, until the queue is closed and empty or
/// the driver stops listening for results.
pub(super) async fn serve(
    target: Target,
    mut jobs: mpsc::Receiver<Arc<Note>>,
    results: mpsc::Sender<Delivery>,
) {
    let mut limit = RateLimit::new(target.notifier.per_minute, clock::now());
    while let Some(note) = jobs.recv().await {
        let outcome = if limit.take(clock::now()) {
            deliver(&target, &note).await
        } else {
            DeliveryOutcome::Dropped {
                reason: format!(
                    "rate limit: more than {} messages a minute to this target",
                    target.notifier.per_minute
                ),
            }
        };
        let done = Delivery::of(&target.notifier, &note, outcome);
        if results.send(done).await.is_err() {
            return;
        }
    }
}

/// Delivers one note with its attempts and backoff.
async fn deliver(target: &Target, note: &Note) -> DeliveryOutcome {
    let n = &target.notifier;
    let timeout = Duration::from_millis(n.timeout.0);
    let link = n.link.as_deref();
    let started = clock::now();
    let mut backoff = FIRST_BACKOFF;
    let mut reason = String::new();
    for attempt in 1..=n.attempts {
        let tried = match &target.transport {
            Transport::Http { client, url } => {
                let body = match &n.target {
                    NotifyTarget::Slack(_) => payload::slack(note, link),
                    NotifyTarget::Teams(_) => payload::teams(note, link),
                    NotifyTarget::Webhook(_) | NotifyTarget::Command { .. } => {
                        payload::webhook(note, link)
                    }
                };
                post(client, url, body.to_string(), timeout).await
            }
            Transport::Command { argv, base_dir } => {
                let env = payload::command_env(note, link);
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let stdin = payload::webhook(note, link).to_string().into_bytes();
                let ran = run_program_with(argv, base_dir, &env, Some(stdin), timeout, 1).await;
                if ran.ok {
                    Ok(())
                } else {
                    Err(ran.detail)
                }
            }
        };
        match tried {
            Ok(()) => {
                return DeliveryOutcome::Delivered {
                    attempts: attempt,
                    elapsed: started.elapsed(),
                }
            }
            Err(e) => reason = e,
        }
        if attempt < n.attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
    DeliveryOutcome::Failed {
        attempts: n.attempts,
        reason,
    }
}

/// One POST under `timeout`, connection and answer included; a 2xx answer is delivered.
/// The reason of a failure never holds the URL.
async fn post(
    client: &Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: &Uri,
    body: String,
    timeout: Duration,
) -> Result<(), String> {
    let req = Request::builder()
        .method(Method::POST)
        .uri(url.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            concat!("ramp/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| innermost(&e))?;
        let status = resp.status();
        // Only the status decides; a little of the body explains a refusal.
        let answer = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        let quoted = String::from_utf8_lossy(&answer[..answer.len().min(QUOTED_BYTES)])
            .replace(['\n', '\r'], " ");
        let quoted = quoted.trim();
        Err(if quoted.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {quoted}")
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// The innermost cause of a client error ("Connection refused"), which names no URL.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        msg = s.to_string();
        cur = s.source();
    }
    msg
}

/// The HTTP client of one target: TLS (rustls, the operating system's root certificates)
/// for an https URL; plain HTTP, which the plan allows only on loopback, otherwise.
pub(super) fn client(
    https: bool,
    timeout: Duration,
) -> Result<Client<HttpsConnector<HttpConnector>, Full<Bytes>>, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout));
    http.set_nodelay(true);
    let builder = if https {
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("no TLS root certificates could be loaded: {e}"))?
            .https_only()
    } else {
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
    };
    let connector = builder.enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_allows_a_burst_then_its_rate() {
        let t0 = clock::now();
        let mut r = RateLimit::new(3, t0);
        assert!((0..3).all(|_| r.take(t0)));
        assert!(!r.take(t0));
        // One token comes back every 20 s at 3 a minute.
        assert!(!r.take(t0 + Duration::from_secs(19)));
        assert!(r.take(t0 + Duration::from_secs(21)));
        assert!(!r.take(t0 + Duration::from_secs(22)));
    }
}
