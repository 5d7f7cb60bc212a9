//! Keep-alive HTTP/1.1 connections to upstream members, built for the request path.
//!
//! Each upstream connection is a `hyper::client::conn::http1` pair: a [`SendRequest`] that
//! the request path uses, and the connection future, driven by its own task; a second,
//! mostly sleeping task per connection is its watchdog. Idle senders wait in a last-in-first-out stack per member **and per
//! worker thread** (a thread-local map), so checking one out or returning it takes no lock
//! and touches no state shared between threads except the connection's own idle flag; this
//! is the layout of nginx's per-worker `keepalive` cache and HAProxy's per-thread idle lists.
//!
//! A connection goes back to the stack when its response body has been read to the end (not
//! when the response head arrives), so no task has to be spawned per request to wait for the
//! connection to become reusable. Bounds: at most `max_idle` idle connections per member and
//! thread (more are closed), and a connection idle for longer than `idle_timeout` is closed
//! by its watchdog even if no request ever comes to collect it.
//!
//! The response-head deadline is kept by the same watchdog instead of a timer per request:
//! the request path writes the deadline into the connection's state word (one atomic store)
//! and the watchdog's single timer is armed at most `min(response_timeout, idle_timeout)`
//! ahead, which is never later than any deadline a request can set after it was armed. When
//! the timer fires, the watchdog re-reads the state: a passed deadline closes the connection
//! and marks it timed out, so the waiting request fails with [`SendError::Timeout`].

use crate::body::ClientBody;
use crate::clock;
use crate::upstream::Member;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::client::conn::TrySendError;
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
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

/// Milliseconds since [`epoch`]; always below [`NO_DEADLINE`].
fn now_ms() -> u64 {
    ms_since_epoch(clock::now())
}

/// `at` in milliseconds since [`epoch`], below [`NO_DEADLINE`].
fn ms_since_epoch(at: Instant) -> u64 {
    (at.saturating_duration_since(epoch()).as_millis() as u64).min(NO_DEADLINE - 1)
}

/// A duration in whole milliseconds, rounded up so that a deadline is never early.
fn ceil_ms(d: Duration) -> u64 {
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

    /// The response head arrived: no deadline until the connection is idle again.
    fn head_received(&self) {
        self.state.store(BUSY | NO_DEADLINE, Ordering::Release);
    }

    /// Marks the connection idle from now.
    fn set_idle(&self) {
        self.state.store(now_ms(), Ordering::Release);
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

/// An upstream connection checked out for one request. It goes back to the idle stack with
/// [`Pooled::release`] once its response has been read completely; dropped instead, the
/// connection closes (hyper cannot reuse a connection whose response was abandoned).
pub(crate) struct Pooled {
    /// The request side of the connection.
    sender: SendRequest<ClientBody>,
    /// Shared with the connection's watchdog.
    shared: Arc<ConnShared>,
    /// The member it is connected to, to find its stack again.
    member_id: u64,
    /// Most idle connections kept per member and thread.
    max_idle: usize,
    /// The pool's idle timeout, which also bounds the wait for a connection to become
    /// reusable after its response.
    idle_timeout: Duration,
    /// Whether it served an earlier request (only then is a failed send retried).
    reused: bool,
}

impl Pooled {
    /// Sends a request on the connection; the future resolves with the response head.
    pub(crate) fn send(
        &mut self,
        request: http::Request<ClientBody>,
    ) -> impl std::future::Future<
        Output = Result<http::Response<Incoming>, TrySendError<http::Request<ClientBody>>>,
    > + Send
           + 'static {
        self.sender.try_send_request(request)
    }

    /// Tells the watchdog the response head arrived (its deadline no longer applies).
    pub(crate) fn head_received(&self) {
        self.shared.head_received();
    }

    /// Returns the connection to this thread's idle stack of its member. A connection that
    /// is not reusable yet (hyper has not finished the exchange on its task, or the request
    /// body is still being sent) is handed to a small task that waits for it; one that is
    /// closed is dropped.
    pub(crate) fn release(self) {
        if self.sender.is_closed() {
            return;
        }
        if self.sender.is_ready() {
            self.shared.set_idle();
            push_idle(self);
            return;
        }
        // Outside a runtime (a body dropped after its runtime ended) there is nothing to
        // wait with: the connection is dropped.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut pooled = self;
        runtime.spawn(async move {
            // Bounded like an idle connection: one that does not become reusable within the
            // idle timeout is dropped (and so closed).
            let ready = std::future::poll_fn(|cx| pooled.sender.poll_ready(cx));
            if let Ok(Ok(())) = tokio::time::timeout(pooled.idle_timeout, ready).await {
                pooled.shared.set_idle();
                push_idle(pooled);
            }
        });
    }
}

/// An idle connection in a stack.
struct Idle {
    /// The request side of the connection.
    sender: SendRequest<ClientBody>,
    /// Shared with the connection's watchdog.
    shared: Arc<ConnShared>,
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
    by_member: HashMap<u64, Vec<Idle>, BuildHasherDefault<IdHasher>>,
    /// Returns since the last sweep.
    returns: u32,
}

thread_local! {
    /// Idle connections of every member this thread has returned connections for.
    static IDLE: RefCell<IdleStacks> = RefCell::new(IdleStacks::default());
}

fn push_idle(pooled: Pooled) {
    let Pooled {
        sender,
        shared,
        member_id,
        max_idle,
        ..
    } = pooled;
    IDLE.with_borrow_mut(|stacks| {
        stacks.returns += 1;
        if stacks.returns >= SWEEP_EVERY {
            stacks.returns = 0;
            stacks.by_member.retain(|_, stack| {
                stack.retain(|idle| {
                    !idle.sender.is_closed() && idle.shared.state.load(Ordering::Relaxed) != CLOSED
                });
                if stack.is_empty() {
                    stack.shrink_to_fit();
                }
                !stack.is_empty()
            });
        }
        let stack = stacks.by_member.entry(member_id).or_default();
        if stack.len() < max_idle {
            stack.push(Idle { sender, shared });
        }
    });
}

fn pop_idle(
    member_id: u64,
    max_idle: usize,
    idle_timeout: Duration,
    deadline_ms: u64,
) -> Option<Pooled> {
    IDLE.with_borrow_mut(|stacks| {
        let stack = stacks.by_member.get_mut(&member_id)?;
        while let Some(idle) = stack.pop() {
            // A connection that is not ready was closed by the upstream (or is in a state
            // hyper cannot reuse); one whose watchdog won the race is closed too.
            if idle.sender.is_ready() && idle.shared.claim(deadline_ms) {
                return Some(Pooled {
                    sender: idle.sender,
                    shared: idle.shared,
                    member_id,
                    max_idle,
                    idle_timeout,
                    reused: true,
                });
            }
        }
        None
    })
}

/// Why a request could not be exchanged with an upstream.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made within the connect deadline.
    Connect(std::io::Error),
    /// The connection failed while sending the request or reading the response head.
    Http(hyper::Error),
    /// The response head did not arrive within the response deadline.
    Timeout,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "connect: {e}"),
            SendError::Http(e) => write!(f, "{e}"),
            SendError::Timeout => write!(f, "no response head within the deadline"),
        }
    }
}

/// The HTTP/1.1 side of the proxy's upstream client.
pub(crate) struct Http1Pool {
    /// How connections are set up (hyper's defaults, as the pooled client had).
    builder: http1::Builder,
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
            builder: http1::Builder::new(),
            connect_timeout,
            idle_timeout,
            response_timeout,
            max_idle,
        }
    }

    /// Sends `request` (origin-form URI, `Host` set) to `member` on an idle connection or a
    /// new one, and waits for the response head until `started` plus the response timeout.
    /// A request that an idle connection could not even start (the upstream closed it in the
    /// meantime) is retried on the next one; a new connection's failure is final.
    pub(crate) async fn send(
        &self,
        member: &Member,
        mut request: http::Request<ClientBody>,
        started: Instant,
    ) -> Result<(http::Response<Incoming>, Pooled), SendError> {
        let deadline_ms = self.deadline_ms(started);
        loop {
            let mut pooled =
                match pop_idle(member.id(), self.max_idle, self.idle_timeout, deadline_ms) {
                    Some(pooled) => pooled,
                    None => self.connect(member, deadline_ms).await?,
                };
            match pooled.send(request).await {
                Ok(response) => {
                    pooled.head_received();
                    return Ok((response, pooled));
                }
                Err(failed) => request = Self::retryable(&pooled, failed)?,
            }
        }
    }

    /// The first step of [`Http1Pool::send`] on its own: an idle connection to `member`,
    /// claimed for a request that leaves at `started`, if there is one. The caller sends on
    /// it with [`Pooled::send`] and hands a failure to [`Http1Pool::after_failure`].
    pub(crate) fn checkout(&self, member: &Member, started: Instant) -> Option<Pooled> {
        pop_idle(
            member.id(),
            self.max_idle,
            self.idle_timeout,
            self.deadline_ms(started),
        )
    }

    /// Carries on [`Http1Pool::send`] after a checked-out connection failed a request.
    pub(crate) async fn after_failure(
        &self,
        member: &Member,
        started: Instant,
        pooled: Pooled,
        failed: TrySendError<http::Request<ClientBody>>,
    ) -> Result<(http::Response<Incoming>, Pooled), SendError> {
        let request = Self::retryable(&pooled, failed)?;
        drop(pooled);
        self.send(member, request, started).await
    }

    /// The request back if a failed send may be retried on another connection (the reused
    /// connection could not even start it: the upstream closed it meanwhile), or the error.
    fn retryable(
        pooled: &Pooled,
        mut failed: TrySendError<http::Request<ClientBody>>,
    ) -> Result<http::Request<ClientBody>, SendError> {
        if pooled.shared.timed_out() {
            return Err(SendError::Timeout);
        }
        match failed.take_message() {
            Some(unsent) if pooled.reused => Ok(unsent),
            _ => Err(SendError::Http(failed.into_error())),
        }
    }

    /// The response deadline of a request that leaves at `started`, in the watchdog's
    /// milliseconds.
    fn deadline_ms(&self, started: Instant) -> u64 {
        ms_since_epoch(started).saturating_add(ceil_ms(self.response_timeout))
    }

    async fn connect(&self, member: &Member, deadline_ms: u64) -> Result<Pooled, SendError> {
        let stream = tokio::time::timeout(self.connect_timeout, connect_tcp(member.addr))
            .await
            .map_err(|_| {
                SendError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                ))
            })?
            .map_err(SendError::Connect)?;
        let (sender, conn) = self
            .builder
            .handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Http)?;
        let shared = Arc::new(ConnShared::busy(deadline_ms));
        let period = self
            .response_timeout
            .min(self.idle_timeout)
            .max(Duration::from_millis(1));
        let task = tokio::spawn(drive(conn));
        tokio::spawn(watchdog(
            task.abort_handle(),
            shared.clone(),
            self.idle_timeout,
            period,
        ));
        Ok(Pooled {
            sender,
            shared,
            member_id: member.id(),
            max_idle: self.max_idle,
            idle_timeout: self.idle_timeout,
            reused: false,
        })
    }
}

/// Opens a TCP connection with `TCP_NODELAY` (a response must not wait for a delayed ACK)
/// and keep-alive probes (a vanished peer is noticed on idle connections).
async fn connect_tcp(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_keepalive(true)?;
    socket.set_nodelay(true)?;
    socket.connect(addr).await
}

/// Drives one upstream connection (with upgrades, for WebSocket pass-through) until it ends.
async fn drive(conn: http1::Connection<TokioIo<TcpStream>, ClientBody>) {
    if let Err(err) = conn.with_upgrades().await {
        tracing::debug!(error = %err, "upstream connection ended with an error");
    }
}

/// Watches one connection from its own task, so that the connection's task never polls a
/// timer: it closes (aborts) the connection when it has been idle for `idle_timeout` or its
/// response head is late, and ends when the connection ends. Its timer is armed at most
/// `period` ahead (see the module documentation), so it outlives its connection by at most
/// that long.
async fn watchdog(
    conn: tokio::task::AbortHandle,
    shared: Arc<ConnShared>,
    idle_timeout: Duration,
    period: Duration,
) {
    let mut wait = period;
    loop {
        tokio::time::sleep(wait).await;
        if conn.is_finished() {
            return;
        }
        match shared.watch(now_ms(), idle_timeout, period) {
            Watch::Wait(next) => wait = next,
            // Dropping the connection fails a waiting request, which then finds the
            // connection marked as timed out.
            Watch::Expired | Watch::TimedOut => {
                conn.abort();
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
    fn deadlines_round_up() {
        assert_eq!(ceil_ms(Duration::from_micros(1500)), 2);
        assert_eq!(ceil_ms(Duration::from_millis(7)), 7);
    }
}
