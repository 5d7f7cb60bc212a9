//! The response body the proxy sends: the upstream's body streamed through (never buffered),
//! or a small local body for the proxy's own answers, wrapped so that the request is
//! measured when its last byte leaves and so that a stalled upstream body is cut off.

use crate::clock;
use crate::metrics::{ClientFailure, Metrics, UpstreamFailure};
use crate::pool::UpstreamBody;
use crate::routing::Cohort;
use crate::upload::UploadWatch;
use bytes::Bytes;
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::time::Sleep;

/// The error type of response bodies: whatever went wrong, boxed for hyper.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Measures one request from its arrival to its end and keeps the in-flight gauge right:
/// it ends exactly once, explicitly or, if the request is abandoned, on drop.
///
/// It is also where a request's attribution is decided, so that each request counts once:
/// its response's status class, whether it is one of the cohort's `errors` (a 5xx, or a
/// body the upstream cut short after the head, never both), and whether it is the cohort's
/// at all (a request the client stalled, broke or abandoned while the proxy waited for its
/// upload, before any answer, records nothing in the cohort).
///
/// The status class and the error are counted when the request ends, after its request and
/// latency (see [`Metrics::request_finished`]), so that a snapshot never shows an error
/// whose request it does not also show.
pub struct RequestGuard {
    /// Where the result is recorded.
    metrics: Arc<Metrics>,
    /// The cohort the request was routed to.
    cohort: Cohort,
    /// When the request arrived at the proxy.
    start: Instant,
    /// Whether the request ended (recorded or dropped).
    done: bool,
    /// The status of the response sent for the cohort, or `None` before an answer.
    status: Option<StatusCode>,
    /// Whether the request is one of the cohort's errors (counted once, when it ends).
    errored: bool,
    /// The request body's upload, for requests with a body.
    upload: Option<Arc<UploadWatch>>,
}

impl RequestGuard {
    /// Starts measuring a request routed to `cohort` (marks it in flight; it is counted
    /// when it ends).
    pub fn start(metrics: Arc<Metrics>, cohort: Cohort, start: Instant) -> Self {
        metrics.request_started(cohort);
        Self {
            metrics,
            cohort,
            start,
            done: false,
            status: None,
            errored: false,
            upload: None,
        }
    }

    /// The cohort being measured.
    pub fn cohort(&self) -> Cohort {
        self.cohort
    }

    /// When the request arrived at the proxy.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// Watches the request's upload: a request abandoned while the proxy waits for its
    /// body is the client's, not the cohort's.
    pub(crate) fn watch_upload(&mut self, upload: Option<Arc<UploadWatch>>) {
        self.upload = upload;
    }

    /// The request's upload, for requests with a body.
    pub(crate) fn upload(&self) -> Option<&UploadWatch> {
        self.upload.as_deref()
    }

    /// Notes the status of the response sent for the cohort (its class is counted when the
    /// request ends); a 5xx makes the request one of the cohort's errors.
    pub fn respond(&mut self, status: StatusCode) {
        self.status = Some(status);
        self.errored |= status.is_server_error();
    }

    /// The upstream cut the response short after its head (a reset, a stall, broken
    /// framing): counted under `reason` now, and the request is one of the cohort's errors
    /// (once, even if its status was a 5xx).
    pub fn cut_by_upstream(&mut self, reason: UpstreamFailure) {
        self.metrics.upstream_error(self.cohort, reason);
        self.errored = true;
    }

    /// Records the request in its cohort with its latency, then its status class and
    /// whether it is an error, and takes it out of flight (idempotent).
    pub fn finish(&mut self) {
        if !self.done {
            self.done = true;
            let elapsed = clock::now().saturating_duration_since(self.start);
            self.metrics.request_finished(
                self.cohort,
                elapsed.as_micros() as u64,
                self.status.map(|s| s.as_u16()),
                self.errored,
            );
        }
    }

    /// Ends a request the client is to blame for, before any answer of the cohort: counted
    /// under `reason`, and nothing is recorded in the cohort.
    pub fn client_fault(mut self, reason: ClientFailure) {
        self.done = true;
        self.metrics.client_error(reason);
        self.metrics.request_dropped(self.cohort);
    }

    /// Counts a client failure after the cohort answered (the response head was sent):
    /// the request stays the cohort's, recorded with the latency it had.
    pub(crate) fn client_fault_after_answer(&mut self, reason: ClientFailure) {
        self.metrics.client_error(reason);
        self.finish();
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if !self.done {
            // Dropped unfinished: the client went away (hyper drops the service future or the
            // body when the connection closes or an HTTP/2 stream is reset), which is the
            // client's doing, not a cohort's error. A request whose body the proxy was
            // waiting for (or that the client had already broken), with no answer yet,
            // never reached the cohort's judgement and records nothing there. Any other is
            // recorded with the latency it had, so that a slow cohort cannot hide its
            // slowness behind clients that give up: one that gave up waiting for a slow
            // upstream or an injected delay (its body, unread meanwhile, is not the
            // client's delay), or that left during the answer.
            self.metrics.client_error(ClientFailure::Disconnected);
            let clients = self.status.is_none()
                && self
                    .upload
                    .as_ref()
                    .is_some_and(|u| u.fault().is_some() || u.awaiting_client());
            if clients {
                self.done = true;
                self.metrics.request_dropped(self.cohort);
            } else {
                self.finish();
            }
        }
    }
}

/// What the body streams.
#[allow(
    clippy::large_enum_variant,
    reason = "the HTTP/1.1 body is the common case; boxing it would allocate per request"
)]
enum Inner {
    /// An HTTP/1.1 upstream's body, read from its connection in this task.
    Http1(UpstreamBody),
    /// An h2c upstream's body, from hyper's client.
    H2c(Incoming),
    /// A body generated by the proxy (error pages, admin answers).
    Local(Full<Bytes>),
}

/// The body type of every response the proxy's listener sends.
pub struct ProxyBody {
    /// The streamed content.
    inner: Inner,
    /// The measurement of the request, finished when the body ends.
    guard: Option<RequestGuard>,
    /// Longest pause allowed between two upstream frames.
    idle_timeout: Duration,
    /// The idle timer, created only the first time the upstream makes us wait.
    idle: Option<Pin<Box<Sleep>>>,
    /// Whether a frame arrived since the timer was last armed, so it must be re-armed.
    rearm: bool,
}

/// An upstream's response body, from either kind of upstream.
#[allow(
    clippy::large_enum_variant,
    reason = "the HTTP/1.1 body is the common case; boxing it would allocate per request"
)]
pub(crate) enum UpstreamResponseBody {
    /// From an HTTP/1.1 upstream (it owns its connection until it ends).
    Http1(UpstreamBody),
    /// From an h2c upstream.
    H2c(Incoming),
}

/// The error a body reports when the upstream stalls mid-body.
#[derive(Debug, thiserror::Error)]
#[error("upstream response body stalled for more than {0:?}")]
pub struct BodyStalled(pub Duration);

impl ProxyBody {
    /// Streams an upstream body, measured by `guard` (which also knows whether the client
    /// broke its upload, see [`crate::upload`]).
    pub(crate) fn upstream(
        body: UpstreamResponseBody,
        guard: RequestGuard,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            inner: match body {
                UpstreamResponseBody::Http1(body) => Inner::Http1(body),
                UpstreamResponseBody::H2c(body) => Inner::H2c(body),
            },
            guard: Some(guard),
            idle_timeout,
            idle: None,
            rearm: false,
        }
    }

    /// A local body; with a guard, the request is measured when it has been sent.
    pub fn local(bytes: impl Into<Bytes>, guard: Option<RequestGuard>) -> Self {
        Self {
            inner: Inner::Local(Full::new(bytes.into())),
            guard,
            idle_timeout: Duration::ZERO,
            idle: None,
            rearm: false,
        }
    }

    fn finish(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            guard.finish();
        }
    }

    fn fail_upstream(&mut self, reason: UpstreamFailure) {
        // A connection whose body failed or stalled cannot carry another request.
        if let Inner::Http1(body) = &mut self.inner {
            body.abandon();
        }
        if let Some(mut guard) = self.guard.take() {
            // The answer's head was counted for the cohort; if the client broke its upload
            // meanwhile (an upload still going on beside an early answer), the cut is its
            // doing, and the request stays the cohort's without being one of its errors.
            match guard.upload().and_then(UploadWatch::fault) {
                Some(fault) => guard.client_fault_after_answer(fault),
                None => {
                    guard.cut_by_upstream(reason);
                    guard.finish();
                }
            }
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Local(full) => match Pin::new(full).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => return Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            },
            Inner::Http1(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|err| (err.is_parse(), BoxError::from(err))),
            Inner::H2c(incoming) => Pin::new(incoming)
                .poll_frame(cx)
                .map_err(|err| (err.is_parse(), BoxError::from(err))),
        };
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                this.rearm = true;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err((parse, err)))) => {
                // The upstream broke the body after the head: a reset or garbage framing.
                let reason = if parse {
                    UpstreamFailure::BadResponse
                } else {
                    UpstreamFailure::Reset
                };
                this.fail_upstream(reason);
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::from_std(clock::now()) + this.idle_timeout;
                let timer = this
                    .idle
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if this.rearm {
                    timer.as_mut().reset(deadline);
                    this.rearm = false;
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.fail_upstream(UpstreamFailure::Timeout);
                        Poll::Ready(Some(Err(Box::new(BodyStalled(this.idle_timeout)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Http1(b) => b.is_end_stream(),
            Inner::H2c(b) => b.is_end_stream(),
            Inner::Local(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Http1(b) => b.size_hint(),
            Inner::H2c(b) => b.size_hint(),
            Inner::Local(b) => b.size_hint(),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // hyper may never poll a body that reports its end up front (empty bodies, HEAD);
        // that is a complete response, not a disconnect.
        if self.guard.is_some() && self.is_end_stream() {
            self.finish();
        }
    }
}
