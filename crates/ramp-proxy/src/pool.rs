//! Keep-alive HTTP/1.1 connections to upstream members, driven inside the request's own task.
//!
//! A request does its whole upstream exchange itself: it writes its head (and streams its
//! body) to the socket and reads the response head from it in the future that hyper's
//! server polls for the client's connection, and the response body it returns reads the
//! rest from the same socket. There is no connection task and no channel between tasks, so
//! a small exchange costs the upstream socket's two system calls (one write, one read) and no
//! wake-up of another task; the messages are framed by the pure codec in [`crate::h1`]
//! (httparse underneath). hyper's client did the same work on a task of its own per
//! connection, reached through three channels per request, which was 42 % of the proxy's
//! user-space instructions (docs/benchmarks-proxy.md).
//!
//! Idle connections wait in a last-in-first-out stack per member **and per worker thread**
//! (a thread-local map), so checking one out or returning it takes no lock and touches no
//! state shared between threads except the connection's own state word; this is the layout
//! of nginx's per-worker `keepalive` cache and HAProxy's per-thread idle lists. A connection
//! goes back to the stack when its response has been read to the end and its request sent
//! completely, and only if both sides agreed to keep it alive. Bounds: at most `max_idle`
//! idle connections per member and thread (more are closed), and a connection idle for
//! longer than `idle_timeout` is shut down by its watchdog even if no request ever comes to
//! collect it (its descriptor is released when a connection is next returned to that stack,
//! or by the sweep every `SWEEP_EVERY` returns on the thread).
//!
//! A request body still being uploaded when the response head arrives (the upstream answered
//! early) is sent on by a task of its own ([`Upload`]): hyper polls the response body only
//! while the client reads its answer, and a client that reads nothing until its upload is
//! finished must not wait for an upload that waits for it. This is the one case in which an
//! exchange leaves its task, and it is rare.
//!
//! The response-head deadline is kept by the same watchdog instead of a timer per request:
//! the request path writes the deadline into the connection's state word (one atomic store)
//! and the watchdog's single timer is armed at most `min(response_timeout, idle_timeout)`
//! ahead, which is never later than any deadline a request can set after it was armed. When
//! the timer fires, the watchdog re-reads the state: a passed deadline marks the connection
//! timed out and shuts its socket down, so the waiting request wakes to the end of the
//! stream, finds the mark and fails with [`SendError::Timeout`].
//!
//! For a request with a body, the deadline follows the upload, so that it is never the
//! client's slowness that it measures: while the request waits for the client's next piece
//! of body the deadline is suspended (the client's own body idle deadline, in
//! [`crate::upload`], bounds that wait, and blames the client), and each piece that arrives
//! restarts it from that piece's arrival. So a slow but steady upload is never cut by the
//! response deadline, an upstream that stops reading the body (the proxy cannot write the
//! piece it holds) is still timed out one response deadline after the last piece, and once
//! the body is complete the deadline counts from its end, as the response deadline of a
//! bodiless request counts from its arrival. Each piece costs one store of the state word;
//! bodiless requests pay nothing.

use crate::clock;
use crate::h1::{self, ChunkedDecoder, Decoded, Framing, H1Error, ResponseHead};
use crate::upload::{ClientBody, ClientBodyError};
use crate::upstream::Member;
use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::net::{TcpSocket, TcpStream};

// A connection's state word holds one of:
// - the time it became idle, in milliseconds since `epoch()` (below `BUSY`);
// - `BUSY | deadline`: checked out, the response head due by `deadline` (ms since `epoch()`),
//   or `BUSY | NO_DEADLINE` once the head has arrived (the body has its own idle timer);
// - `CLOSED` (its watchdog closed it for idleness) or `TIMED_OUT` (its watchdog closed it
//   because the response head was late).

/// Tag of a checked-out connection's state word.
const BUSY: u64 = 1 << 62;
/// The deadline part of a busy state word when no deadline applies.
const NO_DEADLINE: u64 = BUSY - 1;
/// State of a connection closed by its watchdog for idleness.
const CLOSED: u64 = u64::MAX;
/// State of a connection closed by its watchdog because the response head was late.
const TIMED_OUT: u64 = u64::MAX - 1;

/// Returns every thread-local stack's expired and closed entries to the allocator once per
/// this many returns on a thread, so stacks of members that no longer receive traffic (or
/// of proxies that were dropped) do not keep their memory.
const SWEEP_EVERY: u32 = 4096;

/// The origin of the millisecond timestamps in connection state words.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(clock::now)
}

/// Milliseconds since [`epoch`]; always below [`NO_DEADLINE`]. The upload's progress is
/// kept in these milliseconds too, so that a deadline is derived from it without reading
/// the clock again.
pub(crate) fn now_ms() -> u64 {
    ms_since_epoch(clock::now())
}

/// `at` in milliseconds since [`epoch`], below [`NO_DEADLINE`].
pub(crate) fn ms_since_epoch(at: Instant) -> u64 {
    (at.saturating_duration_since(epoch()).as_millis() as u64).min(NO_DEADLINE - 1)
}

/// A duration in whole milliseconds, rounded up so that a deadline is never early.
pub(crate) fn ceil_ms(d: Duration) -> u64 {
    let ms = d.as_millis() as u64;
    if Duration::from_millis(ms) < d {
        ms + 1
    } else {
        ms
    }
}

/// What the request path and a connection's watchdog share about one connection.
struct ConnShared {
    /// The state word (see the constants above).
    state: AtomicU64,
}

/// What the watchdog does after looking at a connection's state.
#[derive(Debug, PartialEq, Eq)]
enum Watch {
    /// Look again after this long.
    Wait(Duration),
    /// The connection was idle too long; it is closed now and must be dropped.
    Expired,
    /// The response head was late; the connection is marked and must be dropped.
    TimedOut,
}

impl ConnShared {
    /// A connection checked out from the start, its response head due by `deadline_ms`.
    fn busy(deadline_ms: u64) -> Self {
        Self {
            state: AtomicU64::new(BUSY | deadline_ms),
        }
    }

    /// Claims an idle connection for a request whose response head is due by
    /// `deadline_ms`; false if its watchdog closed it.
    fn claim(&self, deadline_ms: u64) -> bool {
        self.state.swap(BUSY | deadline_ms, Ordering::AcqRel) != CLOSED
    }

    /// The response head arrived: no deadline until the connection is idle again. False if
    /// the watchdog timed the connection out first (its socket is being shut down): the
    /// request then fails as a timeout and the connection is never reused.
    fn head_received(&self) -> bool {
        self.leave_busy(BUSY | NO_DEADLINE)
    }

    /// The request waits for its client's body: no response deadline runs meanwhile (the
    /// client's body idle deadline bounds the wait). False if the watchdog timed the
    /// connection out first.
    fn suspend_deadline(&self) -> bool {
        self.leave_busy(BUSY | NO_DEADLINE)
    }

    /// A piece of the request's body arrived (or its end): the response head is now due by
    /// `deadline_ms`. False if the watchdog timed the connection out first.
    fn restart_deadline(&self, deadline_ms: u64) -> bool {
        self.leave_busy(BUSY | deadline_ms.min(NO_DEADLINE - 1))
    }

    /// Marks the connection idle from now; false if the watchdog timed it out meanwhile.
    fn set_idle(&self) -> bool {
        self.leave_busy(now_ms())
    }

    /// Replaces a busy state with `next`, unless the watchdog already marked it.
    fn leave_busy(&self, next: u64) -> bool {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                (state != TIMED_OUT && state != CLOSED).then_some(next)
            })
            .is_ok()
    }

    /// Whether the watchdog closed the connection because the response head was late.
    fn timed_out(&self) -> bool {
        self.state.load(Ordering::Acquire) == TIMED_OUT
    }

    /// The watchdog's look at the state, at `now_ms`. `period` is how far ahead the timer
    /// may be armed: `min(response_timeout, idle_timeout)`, so that no deadline a request
    /// sets later can fall before the next look.
    fn watch(&self, now_ms: u64, idle_timeout: Duration, period: Duration) -> Watch {
        let state = self.state.load(Ordering::Acquire);
        let (due_ms, on_due) = if state == CLOSED {
            return Watch::Expired;
        } else if state == TIMED_OUT {
            return Watch::TimedOut;
        } else if state & BUSY != 0 {
            let deadline = state & !BUSY;
            if deadline == NO_DEADLINE {
                return Watch::Wait(period);
            }
            (deadline, TIMED_OUT)
        } else {
            (state.saturating_add(ceil_ms(idle_timeout)), CLOSED)
        };
        if now_ms < due_ms {
            return Watch::Wait(Duration::from_millis(due_ms - now_ms).min(period));
        }
        match self
            .state
            .compare_exchange(state, on_due, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) if on_due == CLOSED => Watch::Expired,
            Ok(_) => Watch::TimedOut,
            // Claimed, answered or returned in between: look again soon.
            Err(_) => Watch::Wait(Duration::ZERO),
        }
    }
}

/// Spare room the read buffer is given before each read.
const READ_RESERVE: usize = 16 * 1024;
/// Below this much spare room, the read buffer grows (or reclaims its space) first.
const MIN_SPARE: usize = 2 * 1024;
/// Most buffers one vectored write hands to the kernel.
const MAX_IOVECS: usize = 16;

/// One upstream connection, boxed once for its whole life: the request path moves it from
/// the idle stack into the request's future and on into the response body, and moving a
/// pointer is cheaper than moving the state (docs/benchmarks-proxy.md).
pub(crate) struct Conn(Box<ConnState>);

/// One upstream connection's state: the socket, the bytes read from it that were not used
/// yet, the bytes waiting to be written to it, and the request it carries (one at a time).
struct ConnState {
    /// The socket. The watchdog holds only a weak reference, so dropping the connection
    /// closes it at once.
    stream: Arc<TcpStream>,
    /// Bytes read but not consumed yet: the rest of the current response. A connection is
    /// returned to its stack only when this is empty, so it never holds another response's
    /// bytes. Response bodies are split off it without a copy.
    buf: BytesMut,
    /// The request on its way up.
    out: Outgoing,
    /// Shared with the connection's watchdog.
    shared: Arc<ConnShared>,
    /// The member it is connected to, to find its stack again.
    member_id: u64,
    /// Most idle connections kept per member and thread.
    max_idle: usize,
    /// Whether it served an earlier request: a kept-alive connection can be closed by the
    /// upstream just as a request is written to it, and only then is the request retried.
    reused: bool,
    /// Whether the request had a body at all (a request with one is never retried).
    had_body: bool,
    /// Whether the whole request was written.
    sent: bool,
    /// The request's method: the answer to HEAD has no body, and only idempotent requests
    /// are retried after they were written.
    method: Method,
    /// The response deadline in milliseconds, for restarting it as the body arrives.
    response_ms: u64,
    /// The encoded head, kept so that a retry on a new connection sends the same bytes.
    head: Bytes,
    /// Whether any byte of the answer arrived (nothing is retried after that).
    answered: bool,
    /// Whether writing the request failed (the answer may still be read, but the connection
    /// is not reused).
    write_failed: bool,
}

impl ConnState {
    /// Reads what has arrived into the read buffer; `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < MIN_SPARE {
            self.buf.reserve(READ_RESERVE);
        }
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            let spare = self.buf.capacity() - self.buf.len();
            let (stream, buf) = (&self.stream, &mut self.buf);
            let mut read = None;
            // The read runs inside `try_io` so that a read which did not fill the buffer,
            // and so drained the socket (the assumption tokio's own `poll_read` makes on
            // epoll), can have the readiness forgotten without a system call: the closure
            // then reports `WouldBlock`, and tokio clears only the readiness it saw before
            // the read, never an event that arrived during it. Waiting for the next
            // response then costs no read that finds nothing.
            let outcome = stream.try_io(Interest::READABLE, || {
                let n = stream.try_read_buf(buf)?;
                read = Some(n);
                if n > 0 && n < spare {
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(())
                }
            });
            match (read, outcome) {
                (Some(n), _) => return Poll::Ready(Ok(n)),
                (None, Err(e)) if e.kind() == io::ErrorKind::WouldBlock => continue,
                (None, Err(e)) => return Poll::Ready(Err(e)),
                (None, Ok(())) => continue,
            }
        }
    }

    /// Whether an idle connection can take a request: nothing arrived on it while it was
    /// idle. An upstream that closed it (or sent bytes nobody asked for) makes it unusable.
    /// Costs no system call unless the socket reports an event.
    fn is_quiet(&mut self) -> bool {
        if self.buf.capacity() == self.buf.len() {
            self.buf.reserve(64);
        }
        let (stream, buf) = (&self.stream, &mut self.buf);
        // `try_io` does not call the closure when no event was seen since the readiness was
        // last cleared (the common case: no system call), and unlike `poll_read_ready` it
        // never answers "not ready" because the task used up its cooperative budget. When
        // an event was seen (or is left over from the last response's read), look.
        let looked = stream.try_io(Interest::READABLE, || stream.try_read_buf(buf));
        matches!(looked, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Gives up sending the rest of the request (the upstream stopped reading it); the
    /// connection is not reused after this exchange.
    fn stop_sending(&mut self) {
        self.out.body = None;
        self.out.pending.clear();
        self.sent = true;
        self.write_failed = true;
    }
}

/// A request on its way up: what is still to be written and the rest of its body. It is
/// written from the request's task until the response head arrives; a body still being
/// uploaded then moves, with it, to a task of its own ([`Upload`]), so that the upload
/// does not wait for the client to read its answer.
#[derive(Default)]
struct Outgoing {
    /// Where request heads and chunk-size lines are encoded; frozen pieces are split off it,
    /// so its allocation is reused once they have been written.
    wbuf: BytesMut,
    /// What is still to be written, in order: the head, then body pieces.
    pending: VecDeque<Bytes>,
    /// What is left of the request's body; `None` once it has been read to its end (or if
    /// there was none).
    body: Option<ClientBody>,
    /// Whether the body is sent in chunks (it had no length).
    chunked: bool,
}

/// The response deadline of a request whose head has not arrived yet, which its upload
/// suspends and restarts (see the module documentation).
struct Deadline<'a> {
    /// The connection's state word.
    shared: &'a ConnShared,
    /// The response deadline in milliseconds.
    response_ms: u64,
}

impl Deadline<'_> {
    /// Follows the upload after a poll of the client's body: suspended while the client is
    /// waited for, restarted from the last piece's arrival otherwise. A connection the
    /// watchdog already timed out is left marked: its socket is shut down, so the exchange
    /// fails as a timeout.
    fn follow(&self, body: &ClientBody, waiting_for_client: bool) {
        if waiting_for_client {
            self.shared.suspend_deadline();
        } else {
            let progress = body.progress_ms().unwrap_or_else(now_ms);
            self.shared
                .restart_deadline(progress.saturating_add(self.response_ms));
        }
    }
}

impl Outgoing {
    /// Writes everything pending, with one system call when the socket takes it all.
    fn poll_flush(&mut self, stream: &TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            ready!(stream.poll_write_ready(cx))?;
            let written = if self.pending.len() == 1 {
                stream.try_write(&self.pending[0])
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let n = self
                    .pending
                    .iter()
                    .zip(slices.iter_mut())
                    .map(|(piece, slice)| *slice = IoSlice::new(piece))
                    .count();
                stream.try_write_vectored(&slices[..n])
            };
            match written {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(mut n) => {
                    while n > 0 {
                        let Some(front) = self.pending.front_mut() else {
                            break;
                        };
                        if front.len() <= n {
                            n -= front.len();
                            self.pending.pop_front();
                        } else {
                            front.advance(n);
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Encodes a piece into the write buffer and queues it.
    fn queue_encoded(&mut self, encode: impl FnOnce(&mut BytesMut)) {
        encode(&mut self.wbuf);
        let piece = self.wbuf.split().freeze();
        self.pending.push_back(piece);
    }

    /// Writes the request, and its body as it comes from the client; ready when all of it
    /// has been written. Before the response head, `deadline` follows the upload.
    fn poll_send(
        &mut self,
        stream: &TcpStream,
        deadline: Option<Deadline<'_>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError>> {
        loop {
            if let Err(e) = ready!(self.poll_flush(stream, cx)) {
                return Poll::Ready(Err(SendError::Io(e)));
            }
            let Some(body) = self.body.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let polled = Pin::new(&mut *body).poll_frame(cx);
            if let Some(deadline) = &deadline {
                deadline.follow(body, polled.is_pending());
            }
            match ready!(polled) {
                None => {
                    if self.chunked {
                        self.queue_encoded(|out| h1::encode_last_chunk(None, out));
                    }
                    self.body = None;
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if data.is_empty() => {}
                    Ok(data) => {
                        if self.chunked {
                            let len = data.len();
                            self.queue_encoded(|out| h1::encode_chunk_size(len, out));
                            self.pending.push_back(data);
                            self.pending.push_back(Bytes::from_static(h1::CHUNK_END));
                        } else {
                            self.pending.push_back(data);
                        }
                    }
                    Err(frame) => {
                        if let (Ok(trailers), true) = (frame.into_trailers(), self.chunked) {
                            self.queue_encoded(|out| h1::encode_last_chunk(Some(&trailers), out));
                        } else if self.chunked {
                            self.queue_encoded(|out| h1::encode_last_chunk(None, out));
                        }
                        self.body = None;
                    }
                },
                Some(Err(e)) => return Poll::Ready(Err(SendError::ClientBody(e))),
            }
        }
    }
}

/// One request on one connection: its head and body on the way up and its response head on
/// the way back. Its response body is then read by an [`UpstreamBody`] that owns it. The
/// request's state lives in the connection's box (a connection carries one at a time).
pub(crate) struct Flight(Box<ConnState>);

impl Flight {
    /// Queues `request` (origin-form target, `Host` set) on `conn`, with the `added` header
    /// fields after its own; nothing is written until the flight is polled.
    pub(crate) fn new(
        mut conn: Conn,
        request: Request<ClientBody>,
        added: &[(&http::HeaderName, &http::HeaderValue)],
    ) -> Self {
        let (parts, body) = request.into_parts();
        // The framing comes from the body itself (hyper has already checked the client's
        // Content-Length against it), never from the client's header text.
        let had_body = !body.is_end_stream();
        let framing = match body.size_hint().exact() {
            Some(0) if !had_body && !parts.headers.contains_key(http::header::CONTENT_LENGTH) => {
                Framing::Empty
            }
            Some(n) => Framing::Length(n),
            None => Framing::Chunked,
        };
        let state = &mut *conn.0;
        state
            .out
            .queue_encoded(|out| h1::encode_request_head(&parts, added, framing, out));
        state.head = state.out.pending.back().cloned().unwrap_or_default();
        state.had_body = had_body;
        state.out.body = had_body.then_some(body);
        state.out.chunked = framing == Framing::Chunked;
        state.sent = false;
        state.method = parts.method;
        state.answered = false;
        state.write_failed = false;
        Flight(conn.0)
    }

    /// Writes the request and its body from this task; ready when all of it has been
    /// written.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        let state = &mut *self.0;
        let deadline = Deadline {
            shared: &state.shared,
            response_ms: state.response_ms,
        };
        match ready!(state.out.poll_send(&state.stream, Some(deadline), cx)) {
            Ok(()) => {
                state.sent = true;
                Poll::Ready(Ok(()))
            }
            Err(SendError::Io(e)) => Poll::Ready(Err(self.failed(SendError::Io(e)))),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Sends the request (as far as the client's body allows) and waits for the response
    /// head; interim 1xx answers other than 101 are skipped.
    pub(crate) fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<ResponseHead, SendError>> {
        if !self.0.sent {
            // The upstream may answer before the whole body was sent (an early 413, say):
            // a pending body does not keep the head from being read, and a write that
            // fails because the upstream stopped reading does not hide its answer.
            match self.poll_send(cx) {
                Poll::Ready(Err(SendError::Io(_))) => self.0.stop_sending(),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) | Poll::Pending => {}
            }
        }
        loop {
            if !self.0.buf.is_empty() {
                match h1::parse_response(&mut self.0.buf, &self.0.method) {
                    Ok(Some(head))
                        if head.parts.status.is_informational()
                            && head.parts.status != StatusCode::SWITCHING_PROTOCOLS =>
                    {
                        continue
                    }
                    Ok(Some(head)) => {
                        if !self.0.shared.head_received() {
                            return Poll::Ready(Err(SendError::Timeout));
                        }
                        return Poll::Ready(Ok(head));
                    }
                    Ok(None) => {}
                    Err(e) => return Poll::Ready(Err(SendError::Parse(e))),
                }
            }
            match ready!(self.0.poll_fill(cx)) {
                Ok(0) => return Poll::Ready(Err(self.failed(SendError::Closed))),
                Ok(_) => self.0.answered = true,
                Err(e) => return Poll::Ready(Err(self.failed(SendError::Io(e)))),
            }
        }
    }

    /// A failure of the connection, or the timeout its watchdog caused by shutting it down.
    fn failed(&self, err: SendError) -> SendError {
        if self.0.shared.timed_out() {
            SendError::Timeout
        } else {
            err
        }
    }

    /// Whether a failed request may be sent again on a new connection: it went out on a
    /// kept-alive connection that the upstream closed (nothing came back), it had no body,
    /// and it is idempotent (RFC 9110 §9.2.2), as HTTP clients retry such requests.
    pub(crate) fn retryable(&self, err: &SendError) -> bool {
        self.0.reused
            && !self.0.answered
            && !self.0.had_body
            && self.0.method.is_idempotent()
            && matches!(err, SendError::Closed | SendError::Io(_))
    }

    /// The response body that follows `head` on this connection.
    /// A request body still being uploaded when the head arrives (the upstream answered
    /// early) goes on being sent by a task of its own: hyper polls the response body only
    /// while the client reads its answer, and a client that reads nothing until its upload
    /// is finished would otherwise wait for an upload that waits for it.
    pub(crate) fn into_body(mut self, head: &ResponseHead) -> UpstreamBody {
        let reading = match head.framing {
            Framing::Empty => Reading::Length(0),
            Framing::Length(n) => Reading::Length(n),
            Framing::Chunked => Reading::Chunked(ChunkedDecoder::new()),
            Framing::UntilClose => Reading::UntilClose,
        };
        let upload = (!self.0.sent).then(|| Upload::start(&mut self.0));
        UpstreamBody {
            flight: Some(self),
            reading,
            keep_alive: head.keep_alive,
            upload,
        }
    }

    /// The connection's socket and the bytes that arrived after the 101 head, for a tunnel;
    /// `None` if the socket is still shared (an upgrade request whose body was still being
    /// uploaded by an [`Upload`] task).
    pub(crate) fn into_upgraded(mut self) -> Option<(TcpStream, Bytes)> {
        let rest = self.0.buf.split().freeze();
        let state = *self.0;
        let stream = Arc::try_unwrap(state.stream).ok()?;
        Some((stream, rest))
    }
}

/// How far an upstream response body has been read.
enum Reading {
    /// This many bytes are still to come (0: the body is complete).
    Length(u64),
    /// The body is chunked.
    Chunked(ChunkedDecoder),
    /// The body ends when the upstream closes the connection.
    UntilClose,
    /// The trailers were returned; the body is complete.
    Done,
}

/// Why an upstream response body failed after its head.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamBodyError {
    /// Reading the connection failed.
    #[error("upstream connection failed mid-body: {0}")]
    Io(#[source] io::Error),
    /// The upstream closed the connection before the end of the body.
    #[error("upstream closed the connection before the end of the body")]
    Incomplete,
    /// The body's framing was broken.
    #[error("upstream body: {0}")]
    Parse(#[source] H1Error),
}

impl UpstreamBodyError {
    /// Whether the upstream sent something that is not HTTP (rather than failing).
    pub fn is_parse(&self) -> bool {
        matches!(self, UpstreamBodyError::Parse(_))
    }
}

/// An upstream response body, streamed from the connection it arrived on: data is split off
/// the read buffer without a copy, and the connection goes back to its idle stack when the
/// body is complete (and closes if the body is abandoned or fails).
pub struct UpstreamBody {
    /// The exchange it belongs to; `None` once the body is finished.
    flight: Option<Flight>,
    /// How much is left.
    reading: Reading,
    /// Whether the connection may carry another request after this body.
    keep_alive: bool,
    /// The rest of the request body, if it was still being uploaded when the head arrived.
    upload: Option<Upload>,
}

/// The rest of a request body, sent by a task of its own after the response head arrived.
struct Upload {
    /// Cancels the task if the answer is finished first (the connection is then closed).
    task: tokio::task::AbortHandle,
    /// Set by the task once the whole request has been written.
    done: Arc<AtomicBool>,
}

impl Upload {
    /// Moves the unsent part of `state`'s request to a new task.
    fn start(state: &mut ConnState) -> Self {
        let mut out = std::mem::take(&mut state.out);
        let stream = state.stream.clone();
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let task = tokio::spawn(async move {
            // The head has arrived: no response deadline is left to follow.
            match std::future::poll_fn(|cx| out.poll_send(&stream, None, cx)).await {
                Ok(()) => flag.store(true, Ordering::Release),
                // The client broke or stalled its upload: the upstream will never get the
                // rest, so the exchange ends here; the response body then fails, blamed on
                // the client (its upload's watch says how it failed).
                Err(SendError::ClientBody(_)) => {
                    let _ = socket2::SockRef::from(&*stream).shutdown(std::net::Shutdown::Both);
                }
                // The upstream stopped reading: its answer may still be complete, but the
                // connection is not reused.
                Err(_) => {}
            }
        })
        .abort_handle();
        Self { task, done }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // An upload outlives neither its answer nor its connection.
        self.task.abort();
    }
}

impl UpstreamBody {
    /// Whether the whole body has been read.
    fn complete(&self) -> bool {
        matches!(self.reading, Reading::Length(0) | Reading::Done)
    }

    /// Ends the body: a complete one whose request was sent completely returns its
    /// connection to the idle stack; any other closes it.
    fn finish(&mut self) {
        let Some(flight) = self.flight.take() else {
            return;
        };
        let sent = match self.upload.take() {
            None => flight.0.sent,
            Some(upload) => upload.done.load(Ordering::Acquire),
        };
        if self.keep_alive
            && self.complete()
            && sent
            && !flight.0.write_failed
            && flight.0.buf.is_empty()
            && flight.0.out.pending.is_empty()
        {
            push_idle(Conn(flight.0));
        }
    }

    /// The socket and the bytes after the head, for the tunnel of a 101 answer.
    pub(crate) fn into_upgraded(mut self) -> Option<(TcpStream, Bytes)> {
        self.flight.take()?.into_upgraded()
    }

    /// Gives the body up (it stalled, say): its connection is closed, never reused.
    pub(crate) fn abandon(&mut self) {
        self.flight = None;
        self.reading = Reading::Done;
    }

    fn fail(
        &mut self,
        err: UpstreamBodyError,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamBodyError>>> {
        self.flight = None;
        self.reading = Reading::Done;
        Poll::Ready(Some(Err(err)))
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = UpstreamBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamBodyError>>> {
        let this = self.get_mut();
        let Some(flight) = this.flight.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            let buf = &mut flight.0.buf;
            match &mut this.reading {
                Reading::Length(0) | Reading::Done => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Reading::Length(left) => {
                    if !buf.is_empty() {
                        let n = (*left).min(buf.len() as u64);
                        *left -= n;
                        let data = buf.split_to(n as usize).freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                Reading::Chunked(decoder) => match decoder.decode(buf) {
                    Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Decoded::NeedMore) => {}
                    Ok(Decoded::Done(trailers)) => {
                        this.reading = Reading::Done;
                        match trailers {
                            Some(trailers) => {
                                return Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                            }
                            None => continue,
                        }
                    }
                    Err(e) => return this.fail(UpstreamBodyError::Parse(e)),
                },
                Reading::UntilClose => {
                    if !buf.is_empty() {
                        let data = buf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
            }
            match ready!(flight.0.poll_fill(cx)) {
                Ok(0) if matches!(this.reading, Reading::UntilClose) => {
                    this.keep_alive = false;
                    this.reading = Reading::Done;
                }
                Ok(0) => return this.fail(UpstreamBodyError::Incomplete),
                Ok(_) => {}
                Err(e) => return this.fail(UpstreamBodyError::Io(e)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.complete() || self.flight.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.reading {
            Reading::Length(n) => SizeHint::with_exact(n),
            Reading::Done => SizeHint::with_exact(0),
            Reading::Chunked(_) | Reading::UntilClose => SizeHint::default(),
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // hyper stops polling a body that says it has ended; a complete body's connection
        // is reused from here. An abandoned one is closed with its flight.
        if self.complete() {
            self.finish();
        }
    }
}

/// A `u64` key hasher for the thread-local map (member ids are already unique numbers).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// This thread's idle stacks, by member id.
#[derive(Default)]
struct IdleStacks {
    /// Idle connections of each member, most recently used last.
    by_member: HashMap<u64, Vec<Conn>, BuildHasherDefault<IdHasher>>,
    /// Returns since the last sweep.
    returns: u32,
}

thread_local! {
    /// Idle connections of every member this thread has returned connections for.
    static IDLE: RefCell<IdleStacks> = RefCell::new(IdleStacks::default());
}

fn push_idle(mut conn: Conn) {
    if !conn.0.shared.set_idle() {
        return;
    }
    // The finished request's pieces are let go, so that the write buffer's space can be
    // reclaimed for the next head.
    conn.0.head = Bytes::new();
    conn.0.out.body = None;
    // Outside the runtime's threads (a body dropped while its runtime shuts down) the
    // thread-local may be gone: the connection is simply closed then.
    let _ = IDLE.try_with(|idle| {
        let mut stacks = idle.borrow_mut();
        stacks.returns += 1;
        if stacks.returns >= SWEEP_EVERY {
            stacks.returns = 0;
            stacks.by_member.retain(|_, stack| {
                stack.retain(|idle| idle.0.shared.state.load(Ordering::Relaxed) != CLOSED);
                if stack.is_empty() {
                    stack.shrink_to_fit();
                }
                !stack.is_empty()
            });
        }
        let stack = stacks.by_member.entry(conn.0.member_id).or_default();
        // The oldest connections are at the bottom, where the watchdog closes them first:
        // their descriptors are released here rather than at the next sweep.
        while stack
            .first()
            .is_some_and(|idle| idle.0.shared.state.load(Ordering::Relaxed) == CLOSED)
        {
            stack.remove(0);
        }
        if stack.len() < conn.0.max_idle {
            stack.push(conn);
        }
    });
}

fn pop_idle(member_id: u64, deadline_ms: u64) -> Option<Conn> {
    IDLE.with_borrow_mut(|stacks| {
        let stack = stacks.by_member.get_mut(&member_id)?;
        while let Some(mut conn) = stack.pop() {
            // One whose watchdog won the race is closed; one the upstream closed (or wrote
            // to) while it was idle cannot take a request.
            if conn.0.shared.claim(deadline_ms) && conn.0.is_quiet() {
                conn.0.reused = true;
                return Some(conn);
            }
        }
        None
    })
}

/// Why a request could not be exchanged with an upstream.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made within the connect deadline.
    Connect(io::Error),
    /// Writing the request or reading the response head failed.
    Io(io::Error),
    /// The upstream closed the connection before a complete response head.
    Closed,
    /// The response head is not HTTP/1.x.
    Parse(H1Error),
    /// The client's request body failed (or stalled) while it was being sent.
    ClientBody(ClientBodyError),
    /// The response head did not arrive within the response deadline.
    Timeout,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "connect: {e}"),
            SendError::Io(e) => write!(f, "connection failed: {e}"),
            SendError::Closed => write!(f, "connection closed before the response head"),
            SendError::Parse(e) => write!(f, "{e}"),
            SendError::ClientBody(e) => write!(f, "client request body: {e}"),
            SendError::Timeout => write!(f, "no response head within the deadline"),
        }
    }
}

/// The HTTP/1.1 side of the proxy's upstream client.
pub(crate) struct Http1Pool {
    /// Connect deadline.
    connect_timeout: Duration,
    /// How long a connection may stay idle before its watchdog closes it.
    idle_timeout: Duration,
    /// How long after the request's start (its arrival at the proxy, or the end of an
    /// injected delay) its response head must arrive.
    response_timeout: Duration,
    /// Most idle connections kept per member and thread.
    max_idle: usize,
}

impl Http1Pool {
    /// A pool with the given deadlines and idle bound.
    pub(crate) fn new(
        connect_timeout: Duration,
        response_timeout: Duration,
        idle_timeout: Duration,
        max_idle: usize,
    ) -> Self {
        Self {
            connect_timeout,
            idle_timeout,
            response_timeout,
            max_idle,
        }
    }

    /// An idle connection to `member`, claimed for a request that leaves at `started`, if
    /// this thread has one.
    pub(crate) fn checkout(&self, member: &Member, started: Instant) -> Option<Conn> {
        pop_idle(member.id(), self.deadline_ms(started))
    }

    /// Sends a request again on a new connection, after [`Flight::retryable`] said so, and
    /// waits for its response head.
    pub(crate) async fn retry(
        &self,
        member: &Member,
        started: Instant,
        failed: Flight,
    ) -> Result<(ResponseHead, Flight), SendError> {
        let mut conn = self.connect(member, started).await?;
        let state = &mut *conn.0;
        state.out.pending.push_back(failed.0.head.clone());
        state.head = failed.0.head.clone();
        state.method = failed.0.method.clone();
        state.sent = false;
        state.answered = false;
        state.write_failed = false;
        drop(failed);
        let mut flight = Flight(conn.0);
        let head = std::future::poll_fn(|cx| flight.poll_head(cx)).await?;
        Ok((head, flight))
    }

    /// The response deadline of a request that leaves at `started`, in the watchdog's
    /// milliseconds.
    fn deadline_ms(&self, started: Instant) -> u64 {
        ms_since_epoch(started).saturating_add(ceil_ms(self.response_timeout))
    }

    /// A new connection to `member`, checked out for a request that leaves at `started`.
    pub(crate) async fn connect(
        &self,
        member: &Member,
        started: Instant,
    ) -> Result<Conn, SendError> {
        let stream = tokio::time::timeout(self.connect_timeout, connect_tcp(member.addr))
            .await
            .map_err(|_| {
                SendError::Connect(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            })?
            .map_err(SendError::Connect)?;
        let stream = Arc::new(stream);
        let shared = Arc::new(ConnShared::busy(self.deadline_ms(started)));
        let period = self
            .response_timeout
            .min(self.idle_timeout)
            .max(Duration::from_millis(1));
        tokio::spawn(watchdog(
            Arc::downgrade(&stream),
            shared.clone(),
            self.idle_timeout,
            period,
        ));
        Ok(Conn(Box::new(ConnState {
            stream,
            buf: BytesMut::new(),
            out: Outgoing::default(),
            shared,
            member_id: member.id(),
            max_idle: self.max_idle,
            reused: false,
            had_body: false,
            sent: false,
            method: Method::GET,
            response_ms: ceil_ms(self.response_timeout),
            head: Bytes::new(),
            answered: false,
            write_failed: false,
        })))
    }
}

/// Opens a TCP connection with `TCP_NODELAY` (a response must not wait for a delayed ACK)
/// and keep-alive probes (a vanished peer is noticed on idle connections).
async fn connect_tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_keepalive(true)?;
    socket.set_nodelay(true)?;
    socket.connect(addr).await
}

/// Watches one connection from its own, mostly sleeping task: it shuts the connection's
/// socket down when the connection has been idle for `idle_timeout` or its response head is
/// late, and ends when the connection is gone. Its timer is armed at most `period` ahead
/// (see the module documentation), so it outlives its connection by at most that long; it
/// holds only a weak reference to the socket, so it never keeps one open.
async fn watchdog(
    stream: Weak<TcpStream>,
    shared: Arc<ConnShared>,
    idle_timeout: Duration,
    period: Duration,
) {
    loop {
        // The first look happens at once, so that a deadline set before the watchdog
        // started (a retried request's, counted from its first attempt) is not checked a
        // whole period late.
        match shared.watch(now_ms(), idle_timeout, period) {
            Watch::Wait(wait) => {
                tokio::time::sleep(wait).await;
                if stream.strong_count() == 0 {
                    return;
                }
            }
            // A waiting request wakes to the end of the stream and finds the connection
            // marked timed out; an idle one is dropped when a connection is next returned
            // to its stack (or at the sweep), and the upstream sees the close now.
            Watch::Expired | Watch::TimedOut => {
                if let Some(stream) = stream.upgrade() {
                    let _ = socket2::SockRef::from(&*stream).shutdown(std::net::Shutdown::Both);
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_expires_idle_connections_and_times_out_late_heads() {
        let (idle, period) = (Duration::from_millis(1000), Duration::from_millis(300));
        let shared = ConnShared::busy(5_000);
        assert_eq!(
            shared.watch(4_900, idle, period),
            Watch::Wait(Duration::from_millis(100))
        );
        assert_eq!(shared.watch(1_000, idle, period), Watch::Wait(period));
        shared.head_received();
        assert_eq!(
            shared.watch(9_000, idle, period),
            Watch::Wait(period),
            "no deadline once the head arrived"
        );
        shared.state.store(10_000, Ordering::Release); // idle since 10 s
        assert_eq!(
            shared.watch(10_900, idle, period),
            Watch::Wait(Duration::from_millis(100))
        );
        assert!(shared.claim(20_000), "an idle connection can be claimed");
        assert_eq!(
            shared.watch(19_999, idle, period),
            Watch::Wait(Duration::from_millis(1))
        );
        assert_eq!(shared.watch(20_000, idle, period), Watch::TimedOut);
        assert!(shared.timed_out());
        shared.state.store(10_000, Ordering::Release);
        assert_eq!(shared.watch(11_000, idle, period), Watch::Expired);
        assert!(
            !shared.claim(30_000),
            "a closed connection cannot be claimed"
        );
    }

    #[test]
    fn a_head_or_an_idle_return_never_overwrites_the_watchdogs_mark() {
        let (idle, period) = (Duration::from_millis(1000), Duration::from_millis(300));
        let shared = ConnShared::busy(5_000);
        assert_eq!(shared.watch(5_000, idle, period), Watch::TimedOut);
        assert!(
            !shared.head_received(),
            "a head that arrives after the timeout does not revive the connection"
        );
        assert!(!shared.set_idle(), "nor does returning it to its stack");
        assert!(shared.timed_out());
        let shared = ConnShared::busy(5_000);
        assert!(shared.head_received());
        assert!(shared.set_idle());
    }

    /// The watchdog looks at once when it starts: a deadline that began before it (a retried
    /// request's, counted from the first attempt) is kept, not checked a whole period late.
    #[tokio::test]
    async fn the_watchdog_keeps_a_deadline_that_began_before_it() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (mut server, _) = listener.accept().await.expect("accept");
        let stream = Arc::new(client);
        // Due 100 ms from now, with a period of 30 s: only the first look can catch it.
        let shared = Arc::new(ConnShared::busy(now_ms() + 100));
        tokio::spawn(watchdog(
            Arc::downgrade(&stream),
            shared.clone(),
            Duration::from_secs(60),
            Duration::from_secs(30),
        ));
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), server.read(&mut byte))
            .await
            .expect("the watchdog shut the late connection down within the deadline");
        assert_eq!(read.expect("read"), 0, "the upstream sees the close");
        assert!(shared.timed_out());
    }

    #[test]
    fn deadlines_round_up() {
        assert_eq!(ceil_ms(Duration::from_micros(1500)), 2);
        assert_eq!(ceil_ms(Duration::from_millis(7)), 7);
    }
}
