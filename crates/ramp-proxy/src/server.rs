//! Accept loops and graceful shutdown.
//!
//! [`serve`] takes already-bound listeners and a shutdown future (mini-redis style), so that
//! tests pick free ports, pass them in, and stop the proxy when they want. On shutdown the
//! proxy stops accepting, lets in-flight requests finish up to the drain deadline, and
//! reports how the drain went.

use crate::admin;
use crate::metrics::{ClientFailure, InternalFailure};
use crate::proxy::{ClientAddr, DrainPhase, Proxy};
use crate::upstream;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How a shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Every connection finished its in-flight requests, and every upgraded tunnel
    /// (WebSocket) was closed by its ends, before the deadline.
    Drained,
    /// The deadline passed with connections or tunnels still open: tunnels are closed then;
    /// connections still busy are left to end with the process.
    DeadlineExceeded {
        /// Connections and tunnels still open when the deadline passed.
        remaining: usize,
    },
}

/// Why [`run`] could not start the proxy.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A listener could not be bound (address in use, no permission).
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// The address that was asked for.
        addr: std::net::SocketAddr,
        /// Which listener: "proxy" or "admin".
        what: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The state file exists but cannot be used.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

/// Starts a proxy from a validated configuration: restores the persisted weight, binds both
/// listeners, serves until `shutdown` completes, then drains. This is what the `ramp-proxy`
/// binary (and later `ramp proxy`) calls; tests that pick their own ports use [`serve`].
pub async fn run(
    config: crate::config::Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<DrainOutcome, RunError> {
    let weights = crate::state::initial_weights(&config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: config.listen,
            what: "proxy",
            source,
        })?;
    let admin = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: config.admin_listen,
            what: "admin",
            source,
        })?;
    tracing::info!(
        listen = %config.listen,
        admin = %config.admin_listen,
        canary_percent = crate::config::bp_to_percent(weights.canary_bp),
        set_by = weights.set_by.as_deref(),
        "ramp-proxy started"
    );
    let proxy = Proxy::with_weights(config, weights);
    Ok(serve(proxy, listener, admin, shutdown).await)
}

/// Runs the proxy and its admin API until `shutdown` completes, then drains: connections
/// finish what is in flight and upgraded tunnels stay open until their ends close them, up
/// to the drain deadline, when tunnels are closed. One `serve` at a time per [`Proxy`]: the
/// drain's state lives in it.
pub async fn serve(
    proxy: Arc<Proxy>,
    listener: TcpListener,
    admin_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> DrainOutcome {
    // A proxy is served by one `serve` at a time; a new one starts a new drain (a tunnel
    // opened now must not see the end of an earlier drain).
    proxy.drain.send_replace(DrainPhase::Serving);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    if let Some(health) = proxy.config.health.clone() {
        let pools = proxy.pools().to_vec();
        tokio::spawn(upstream::run_health_checks(pools, health, stop_rx.clone()));
    }
    if proxy.follow.is_some() {
        // The weight key is read before the first connection is accepted (connections that
        // arrive meanwhile wait in the listener's backlog), so a follower restarted
        // mid-rollout never serves at a weight the leader has since moved.
        crate::follow::confirm_at_start(&proxy).await;
    }
    // The follower is awaited before `serve` returns, so a stopped proxy writes no weight
    // afterwards (a restarted one may already be using the same state file).
    let follow_task = proxy
        .follow
        .is_some()
        .then(|| tokio::spawn(crate::follow::run(proxy.clone(), stop_rx.clone())));
    let admin_task = tokio::spawn(serve_admin(proxy.clone(), admin_listener, stop_rx.clone()));

    // The two protocols' builders are used directly: the proxy reads the first bytes
    // itself (below) to choose, so hyper-util's auto builder, which would read them again
    // through a rewinding wrapper on every read, is not needed.
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(proxy.config.header_read_timeout)
        .max_buf_size(proxy.config.max_header_bytes)
        .max_headers(proxy.config.max_headers)
        .keep_alive(true);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size(proxy.config.max_header_bytes as u32)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));

    let mut stop = stop_rx.clone();
    // One permit per served connection: at the limit the proxy stops accepting, so excess
    // clients wait in the kernel's backlog instead of exhausting file descriptors.
    let slots = Arc::new(tokio::sync::Semaphore::new(proxy.config.max_connections));
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors or similar: count it, back off briefly, go on.
                proxy.metrics.internal_error(InternalFailure::Connection);
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        proxy.metrics.connection_opened();
        let p = proxy.clone();
        let client = ClientAddr::new(peer);
        let service = service_fn(move |req| p.clone().handle_from(req, &client));
        let http1 = http1.clone();
        let http2 = http2.clone();
        // Subscribed here, in the accept loop, so that no connection can miss the drain's
        // signal (the loop has stopped accepting before the signal is sent).
        let mut drain = proxy.drain.subscribe();
        let metrics = proxy.metrics.clone();
        let header_timeout = proxy.config.header_read_timeout;
        tokio::spawn(async move {
            // A connection that has not sent a byte has no request in flight: on shutdown it
            // is closed at once instead of holding the drain until the header deadline.
            let sniffed = tokio::select! {
                sniff = sniff_first_bytes(&stream, header_timeout) => sniff,
                _ = drain.changed() => Sniff::Closed,
            };
            let served = match sniffed {
                Sniff::Http1 => {
                    let conn = http1
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    Some(until_drained(conn, &mut drain, |c| c.graceful_shutdown()).await)
                }
                Sniff::Http2 => {
                    let conn = http2.serve_connection(TokioIo::new(stream), service);
                    Some(until_drained(conn, &mut drain, |c| c.graceful_shutdown()).await)
                }
                Sniff::TimedOut => {
                    metrics.client_error(ClientFailure::HeaderTimeout);
                    None
                }
                Sniff::Closed => None,
            };
            if let Some(Err(err)) = served {
                count_connection_error(&metrics, &err);
            }
            metrics.connection_closed();
            drop(drain);
            drop(permit);
        });
    }
    drop(listener);
    let _ = admin_task.await;
    if let Some(task) = follow_task {
        let _ = task.await;
    }

    tracing::info!(
        connections_and_tunnels = proxy.drain.receiver_count(),
        "draining"
    );
    proxy.drain.send_replace(DrainPhase::Draining);
    match tokio::time::timeout(proxy.config.drain_timeout, proxy.drain.closed()).await {
        Ok(()) => DrainOutcome::Drained,
        Err(_) => {
            let remaining = proxy.drain.receiver_count();
            proxy.drain.send_replace(DrainPhase::Stopped);
            DrainOutcome::DeadlineExceeded { remaining }
        }
    }
}

/// Serves a connection until it ends; when the drain begins, asks it to finish its
/// in-flight requests and close (hyper's graceful shutdown), and goes on serving it until
/// it has.
async fn until_drained<C: Future>(
    conn: C,
    drain: &mut watch::Receiver<DrainPhase>,
    graceful_shutdown: impl FnOnce(Pin<&mut C>),
) -> C::Output {
    tokio::pin!(conn);
    tokio::select! {
        out = conn.as_mut() => return out,
        // Err: the proxy's state is gone, which is a shutdown too.
        _ = drain.changed() => graceful_shutdown(conn.as_mut()),
    }
    conn.await
}

/// What the first bytes of a connection showed.
enum Sniff {
    /// Anything but the HTTP/2 preface: HTTP/1 (hyper answers garbage with a 400).
    Http1,
    /// The HTTP/2 connection preface (prior knowledge, h2c).
    Http2,
    /// The client sent too little before the header deadline.
    TimedOut,
    /// The client closed the connection (or it failed) before sending a request.
    Closed,
}

/// The HTTP/2 connection preface, which tells an h2c client from an HTTP/1 one.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits, within the header deadline, until the connection has sent enough to choose
/// between HTTP/1 and HTTP/2. The deadline matters: a client that connects and sends
/// nothing (or a prefix of the preface) must not hold a connection forever.
async fn sniff_first_bytes(stream: &TcpStream, deadline: Duration) -> Sniff {
    let wait = async {
        let mut buf = [0u8; 24];
        loop {
            match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return Sniff::Closed,
                Ok(n) if buf[..n] != H2_PREFACE[..n.min(H2_PREFACE.len())] => return Sniff::Http1,
                Ok(n) if n >= H2_PREFACE.len() => return Sniff::Http2,
                // A prefix of the HTTP/2 preface: more bytes are needed; peek returns at once
                // while data is buffered, so wait a little before looking again.
                Ok(_) => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    };
    tokio::time::timeout(deadline, wait)
        .await
        .unwrap_or(Sniff::TimedOut)
}

/// Counts why a client connection ended badly; hyper already answered 400 or 431 where the
/// protocol allows it, and HTTP/2's GOAWAY told the client what it broke.
fn count_connection_error(metrics: &crate::metrics::Metrics, err: &hyper::Error) {
    if let Some(reason) = connection_fault(err) {
        metrics.client_error(reason);
    } else {
        tracing::debug!(error = %err, "client connection ended with an error");
    }
}

/// The client's fault that ended a connection, if it was one: a request hyper could not
/// parse or whose head was too large or too slow (HTTP/1), or an HTTP/2 protocol error the
/// proxy's HTTP/2 side detected (garbage after the preface, a bad frame: it answered with a
/// GOAWAY). A client that simply went away, or that sent a GOAWAY of its own, is not.
fn connection_fault(err: &hyper::Error) -> Option<ClientFailure> {
    if err.is_parse_too_large() {
        return Some(ClientFailure::HeadersTooLarge);
    }
    if err.is_parse() {
        return Some(ClientFailure::BadRequest);
    }
    if err.is_timeout() {
        return Some(ClientFailure::HeaderTimeout);
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            return h2.is_library().then_some(ClientFailure::H2Protocol);
        }
        source = cause.source();
    }
    None
}

async fn serve_admin(proxy: Arc<Proxy>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5))
        .max_buf_size(16 * 1024);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let p = proxy.clone();
        let conn = builder.serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| admin::handle(p.clone(), req)),
        );
        let mut conn_stop = stop.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = conn_stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
}
