//! The client's request body on its way to the upstream, and who is to blame when it does
//! not arrive.
//!
//! A client that stalls or breaks its upload must never be counted against the cohort its
//! request was routed to: a client aimed at the canary could otherwise push the canary's
//! error rate up and trigger a rollback. So the body is watched here:
//!
//! - a request-body idle deadline (`client_body_idle`): when the client sends nothing of its
//!   body for that long, the body fails with [`ClientBodyError::Stalled`] and the request is
//!   answered 408 and charged to the client (an empty HTTP/2 DATA frame is nothing: it is
//!   neither progress nor sent on);
//! - a body whose framing is broken (a bad chunk) is the client's `bad_body`; one that ends
//!   early (the client went away) is the client's `disconnected`;
//! - the outcome and the time of the last progress, or that the proxy is waiting for the
//!   client (its last poll of the body found nothing), are shared ([`UploadWatch`]) with the
//!   request's measurement and with the upstream client, which keeps the upstream response
//!   deadline suspended while the proxy waits for the client and restarts it at each piece
//!   of the body, so that it counts from the end of the body (see `pool`). Only a wait for
//!   the client makes a request the client's: a body the proxy is holding back itself (an
//!   injected delay, a connect, an upstream that is not reading) is not the client's delay,
//!   and neither is a request the client gives up on meanwhile;
//! - framing, routing and hop-by-hop fields are removed from the body's trailers, which must
//!   not carry them (RFC 9110 §6.5.1).

use crate::clock;
use crate::metrics::ClientFailure;
use crate::pool::{ms_since_epoch, now_ms};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::time::Sleep;

/// [`UploadWatch::state`]: the body is still being received.
const RECEIVING: u8 = 0;
/// [`UploadWatch::state`]: the whole body was received.
const COMPLETE: u8 = 1;
/// [`UploadWatch::state`]: the client sent nothing for longer than the idle deadline.
const STALLED: u8 = 2;
/// [`UploadWatch::state`]: the body's framing is broken.
const MALFORMED: u8 = 3;
/// [`UploadWatch::state`]: the client went away before the end of the body.
const ABANDONED: u8 = 4;

/// How a client can fail its request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFault {
    /// Nothing arrived for longer than the idle deadline.
    Stalled,
    /// The framing is broken.
    Malformed,
    /// The body ended early: the client went away.
    Abandoned,
}

impl BodyFault {
    /// The client failure it is counted as.
    fn client_failure(self) -> ClientFailure {
        match self {
            BodyFault::Stalled => ClientFailure::BodyTimeout,
            BodyFault::Malformed => ClientFailure::BadBody,
            BodyFault::Abandoned => ClientFailure::Disconnected,
        }
    }

    /// Its value in [`UploadWatch::state`].
    fn state(self) -> u8 {
        match self {
            BodyFault::Stalled => STALLED,
            BodyFault::Malformed => MALFORMED,
            BodyFault::Abandoned => ABANDONED,
        }
    }
}

/// [`UploadWatch::progress_ms`] while the proxy waits for the client's next piece of body.
pub(crate) const WAITING: u64 = u64::MAX;

/// What the request path, the upstream client and the request's measurement share about one
/// request body: how its upload is going and when it last made progress. Only requests with
/// a body have one (one allocation per such request; bodiless requests pay nothing).
#[derive(Debug)]
pub struct UploadWatch {
    /// `RECEIVING`, `COMPLETE`, or how the client failed the body (`STALLED`,
    /// `MALFORMED`, `ABANDONED`); the first outcome stays.
    state: AtomicU8,
    /// When the last piece of body arrived (the pool's milliseconds, see
    /// `pool::now_ms`), or [`WAITING`] while the proxy waits for the client.
    progress_ms: AtomicU64,
    /// Longest pause allowed between two pieces of the client's body (kept here rather than
    /// in the body, which travels inside every request's future).
    idle_timeout: Duration,
}

impl UploadWatch {
    /// A body whose upload begins at `start_ms` (the pool's milliseconds) and may pause
    /// for at most `idle_timeout` at a time.
    fn new(start_ms: u64, idle_timeout: Duration) -> Self {
        Self {
            state: AtomicU8::new(RECEIVING),
            progress_ms: AtomicU64::new(start_ms),
            idle_timeout,
        }
    }

    /// Whether the body is still being received (not complete, not failed).
    pub fn in_progress(&self) -> bool {
        self.state.load(Ordering::Acquire) == RECEIVING
    }

    /// The client's fault, if the client broke or stalled its body.
    pub fn fault(&self) -> Option<ClientFailure> {
        let fault = match self.state.load(Ordering::Acquire) {
            STALLED => BodyFault::Stalled,
            MALFORMED => BodyFault::Malformed,
            ABANDONED => BodyFault::Abandoned,
            _ => return None,
        };
        Some(fault.client_failure())
    }

    /// Whether the proxy is waiting for the client: the body is still being received and
    /// the last poll of it found nothing to read. A body the proxy has not asked for since
    /// its last piece is not waited for, even if not all of it has arrived: the proxy itself
    /// is holding it up (an injected delay, a connect, an upstream that is not reading), and
    /// a request that ends then (the client gives up) is not the client's doing alone.
    pub fn awaiting_client(&self) -> bool {
        self.in_progress() && self.progress_ms() == WAITING
    }

    /// When the body last made progress (the pool's milliseconds), or [`WAITING`] while the
    /// proxy waits for the client.
    pub(crate) fn progress_ms(&self) -> u64 {
        self.progress_ms.load(Ordering::Acquire)
    }

    /// Takes in a frame of the client's body (`end_of_body`: the body says it ended with
    /// it) and returns whether it is to be sent on. Data, trailers and the end of the body
    /// are progress; trailers lose the fields they must not carry. An empty DATA frame
    /// that is not the last (HTTP/2 allows them) is neither: it carries nothing of the
    /// body, and a client that sends only such frames must still meet the body idle
    /// deadline, or it could hold its stream, and the upstream connection behind it, for
    /// as long as it liked without sending a byte.
    fn take_frame(&self, frame: &mut Frame<Bytes>, end_of_body: bool) -> bool {
        if !end_of_body && frame.data_ref().is_some_and(Bytes::is_empty) {
            return false;
        }
        let last = match frame.trailers_mut() {
            Some(trailers) => {
                remove_forbidden_trailers(trailers);
                true
            }
            None => end_of_body,
        };
        self.progress_ms.store(now_ms(), Ordering::Release);
        if last {
            self.settle(COMPLETE);
        }
        true
    }

    /// Records the body's outcome, unless it already has one (a body that completed cannot
    /// fail afterwards, and the first fault is the one counted).
    fn settle(&self, outcome: u8) {
        let _ =
            self.state
                .compare_exchange(RECEIVING, outcome, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Why the client's request body could not be sent on.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    /// The client sent nothing of its body for longer than the body idle deadline.
    #[error("the client sent nothing of its request body for {0:?}")]
    Stalled(Duration),
    /// The body failed as hyper read it: broken framing, or the client went away.
    #[error("client request body: {source}")]
    Broken {
        /// Which of the client's faults it is (`bad_body` or `disconnected`).
        fault: ClientFailure,
        /// hyper's error.
        #[source]
        source: hyper::Error,
    },
}

impl ClientBodyError {
    /// The client's fault this error is counted as.
    pub fn fault(&self) -> ClientFailure {
        match self {
            ClientBodyError::Stalled(_) => ClientFailure::BodyTimeout,
            ClientBodyError::Broken { fault, .. } => *fault,
        }
    }
}

/// Tells a broken body (framing the decoder refused) from a client that went away: hyper
/// reports both as a body error, with the decoder's I/O error underneath.
fn classify_body_error(err: &hyper::Error) -> BodyFault {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                    BodyFault::Malformed
                }
                _ => BodyFault::Abandoned,
            };
        }
        source = cause.source();
    }
    BodyFault::Abandoned
}

/// The client's request body on its way to the upstream, watched (see the module
/// documentation).
pub struct ClientBody {
    /// The client's body.
    inner: Incoming,
    /// Shared with the measurement and the upstream client; `None` for bodies that are
    /// empty from the start, so that bodiless requests allocate nothing.
    watch: Option<Arc<UploadWatch>>,
    /// The idle timer, created only the first time the client makes us wait, and re-armed
    /// when the client makes us wait again after some progress.
    idle: Option<Pin<Box<Sleep>>>,
}

impl ClientBody {
    /// Wraps the body of a request that arrived at `start`; returns the watch of its
    /// upload, `None` for a body that is empty from the start.
    pub fn new(
        inner: Incoming,
        start: Instant,
        idle_timeout: Duration,
    ) -> (Self, Option<Arc<UploadWatch>>) {
        let watch = (!inner.is_end_stream())
            .then(|| Arc::new(UploadWatch::new(ms_since_epoch(start), idle_timeout)));
        (
            Self {
                inner,
                watch: watch.clone(),
                idle: None,
            },
            watch,
        )
    }

    /// When the body last made progress, or [`WAITING`]; `None` for bodiless requests.
    pub(crate) fn progress_ms(&self) -> Option<u64> {
        self.watch.as_ref().map(|w| w.progress_ms())
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let this = self.get_mut();
        let Some(watch) = &this.watch else {
            // Empty from the start: nothing to wait for, nothing to watch.
            return Pin::new(&mut this.inner).poll_frame(cx).map_err(|source| {
                ClientBodyError::Broken {
                    fault: classify_body_error(&source).client_failure(),
                    source,
                }
            });
        };
        loop {
            return match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(mut frame))) => {
                    // A client (or hyper's HTTP/2 client, upstream) may stop at a frame after
                    // which the body says it has ended, without polling its end.
                    if !watch.take_frame(&mut frame, this.inner.is_end_stream()) {
                        continue;
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(None) => {
                    watch.progress_ms.store(now_ms(), Ordering::Release);
                    watch.settle(COMPLETE);
                    Poll::Ready(None)
                }
                Poll::Ready(Some(Err(source))) => {
                    let fault = classify_body_error(&source);
                    watch.settle(fault.state());
                    Poll::Ready(Some(Err(ClientBodyError::Broken {
                        fault: fault.client_failure(),
                        source,
                    })))
                }
                Poll::Pending => {
                    // Progress since the last wait (or the start) means a new wait begins
                    // now.
                    let progressed = watch.progress_ms.swap(WAITING, Ordering::AcqRel) != WAITING;
                    let idle = watch.idle_timeout;
                    let timer = match &mut this.idle {
                        Some(timer) => {
                            if progressed {
                                let deadline = tokio::time::Instant::from_std(clock::now()) + idle;
                                timer.as_mut().reset(deadline);
                            }
                            timer
                        }
                        None => this.idle.insert(Box::pin(tokio::time::sleep_until(
                            tokio::time::Instant::from_std(clock::now()) + idle,
                        ))),
                    };
                    match timer.as_mut().poll(cx) {
                        Poll::Ready(()) => {
                            watch.settle(BodyFault::Stalled.state());
                            Poll::Ready(Some(Err(ClientBodyError::Stalled(idle))))
                        }
                        Poll::Pending => Poll::Pending,
                    }
                }
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Fields a request's trailers must not carry (RFC 9110 §6.5.1): message framing, routing,
/// hop-by-hop connection control, request modifiers, authentication, how to process the
/// content, and the fields only the proxy sets. A trailer section is merged into the
/// headers by some recipients, so any of these would act as if the client had sent it in
/// the head, after the proxy checked the head.
static FORBIDDEN_TRAILERS: [HeaderName; 26] = [
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::HOST,
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
    header::AUTHORIZATION,
    header::COOKIE,
    header::CONTENT_ENCODING,
    header::CONTENT_TYPE,
    header::CONTENT_RANGE,
    header::RANGE,
    header::EXPECT,
    header::MAX_FORWARDS,
    header::CACHE_CONTROL,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    HeaderName::from_static(crate::proxy::COHORT_HEADER),
];

/// Fields only the proxy sets, which a client must not add after the head either.
static PROXY_SET_TRAILERS: [HeaderName; 2] = [
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
];

/// Removes the fields a trailer section must not carry (see [`FORBIDDEN_TRAILERS`]).
fn remove_forbidden_trailers(trailers: &mut HeaderMap) {
    for name in FORBIDDEN_TRAILERS.iter().chain(&PROXY_SET_TRAILERS) {
        trailers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_trailer_fields_are_removed_and_the_rest_kept() {
        let mut t = HeaderMap::new();
        for (name, value) in [
            ("x-checksum", "abc"),
            ("content-length", "5"),
            ("transfer-encoding", "chunked"),
            ("host", "evil.test"),
            ("x-ramp-cohort", "canary"),
            ("x-forwarded-for", "10.0.0.1"),
            ("authorization", "Bearer x"),
            ("server-timing", "db;dur=53"),
        ] {
            t.append(name, value.parse().expect("value"));
        }
        remove_forbidden_trailers(&mut t);
        let mut kept: Vec<_> = t.keys().map(|k| k.as_str().to_string()).collect();
        kept.sort();
        assert_eq!(kept, ["server-timing", "x-checksum"]);
    }

    #[test]
    fn an_upload_keeps_its_first_outcome() {
        for fault in [
            BodyFault::Stalled,
            BodyFault::Malformed,
            BodyFault::Abandoned,
        ] {
            let w = UploadWatch::new(0, Duration::from_secs(1));
            assert!(w.in_progress() && w.fault().is_none());
            w.settle(fault.state());
            w.settle(COMPLETE);
            w.settle(BodyFault::Abandoned.state());
            assert_eq!(w.fault(), Some(fault.client_failure()));
            assert!(!w.in_progress());
        }
        let w = UploadWatch::new(0, Duration::from_secs(1));
        w.settle(COMPLETE);
        w.settle(BodyFault::Stalled.state());
        assert_eq!((w.in_progress(), w.fault()), (false, None));
    }

    /// An empty DATA frame that is not the body's last (HTTP/2 allows them) carries nothing
    /// of the body: it is not progress, so the proxy goes on waiting for the client (its
    /// idle deadline keeps running, the upstream's response deadline stays suspended), and
    /// it is not sent on. A piece with data, trailers and the end of the body (even in an
    /// empty frame) are progress. (h2 0.4.20 already drops such frames as it receives
    /// them; the proxy does not rely on it.)
    ///
    /// Fails on c7d83a2 (its frame handling, moved unchanged into `take_frame`): the empty
    /// frame is recorded as progress and sent on, which ends the wait for the client and
    /// restarts the idle deadline at every empty frame.
    #[test]
    fn an_empty_data_frame_is_not_progress() {
        let w = UploadWatch::new(0, Duration::from_secs(1));
        w.progress_ms.store(WAITING, Ordering::Release);
        assert!(w.awaiting_client());
        let mut empty = Frame::data(Bytes::new());
        assert!(
            !w.take_frame(&mut empty, false),
            "an empty frame is sent on"
        );
        assert!(w.awaiting_client(), "an empty frame ended the wait");
        let mut piece = Frame::data(Bytes::from_static(b"x"));
        assert!(w.take_frame(&mut piece, false));
        assert!(w.in_progress() && !w.awaiting_client());
        w.progress_ms.store(WAITING, Ordering::Release);
        let mut last = Frame::data(Bytes::new());
        assert!(
            w.take_frame(&mut last, true),
            "the end of the body is dropped"
        );
        assert_eq!((w.in_progress(), w.awaiting_client()), (false, false));
        let w = UploadWatch::new(0, Duration::from_secs(1));
        w.progress_ms.store(WAITING, Ordering::Release);
        let mut trailers = Frame::trailers(HeaderMap::new());
        assert!(w.take_frame(&mut trailers, false));
        assert_eq!((w.in_progress(), w.fault()), (false, None));
    }
}
