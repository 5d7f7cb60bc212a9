//! The bridge between the synchronous journal seam and the asynchronous etcd client.
//!
//! `JournalStore` is synchronous (the SQLite journal is local), and the driver calls it from
//! its async tasks; the etcd client is async. Blocking on the driver's own runtime would
//! deadlock a current-thread runtime and starve a multi-thread one, so the client lives on a
//! runtime of its own: one dedicated thread running a current-thread runtime for as long as
//! the bridge exists. A synchronous call spawns its request there and waits on a channel,
//! bounded by the request timeout; async callers (the election) await a oneshot instead. The
//! lease's keep-alive task runs on the same thread, so a driver that blocks its own runtime
//! (a slow hook, a journal write) never delays a keep-alive.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use ramp_etcd::etcd_client::{Client, Error as ClientError};
use ramp_etcd::{EtcdConfig, EtcdError};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Extra time a synchronous caller waits beyond the request timeout before it gives up on
/// the bridge thread itself (which enforces the request timeout first).
const GRACE: Duration = Duration::from_secs(1);

/// The shortest time one attempt of a request is given.
const ATTEMPT_MIN: Duration = Duration::from_millis(300);

/// The pause before a request is made again on another member.
const RETRY: Duration = Duration::from_millis(50);

/// The etcd client on its own thread and runtime; the thread ends when the bridge is dropped.
pub struct Bridge {
    /// The bridge runtime's handle, to spawn requests on it.
    handle: Handle,
    /// The connected client (cheap to clone: clones share the connection).
    client: Client,
    /// A client without a per-request deadline, for the election's campaign (which waits as
    /// long as another controller leads; see [`ramp_etcd::connect_waiting`]).
    waiting: Client,
    /// The most one request may take.
    timeout: Duration,
    /// Dropped with the bridge, which ends the runtime's thread.
    _stop: oneshot::Sender<()>,
}

/// Why a bridged request did not complete.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// etcd answered with an error.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// No answer within the request timeout.
    #[error("no answer within {0} ms")]
    Timeout(u64),
    /// The bridge's thread is gone (it panicked, or the process is shutting down).
    #[error("the etcd client's thread has stopped")]
    Stopped,
}

impl Bridge {
    /// Starts the thread and connects (bounded by the dial timeout, with a quorum read).
    pub fn connect(config: &EtcdConfig) -> Result<Bridge, BridgeError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|_| BridgeError::Stopped)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("ramp-etcd".into())
            .spawn(move || {
                // Runs the spawned requests until the bridge is dropped.
                let _ = runtime.block_on(stopped);
            })
            .map_err(|_| BridgeError::Stopped)?;
        let (tx, rx) = mpsc::sync_channel(1);
        // Each attempt gets a third of the request timeout, so that one sent to a member that
        // died (the balancer may wait on it) leaves time for another attempt on a live one.
        let mut owned = config.clone();
        owned.request_timeout = (config.request_timeout / 3).max(ATTEMPT_MIN);
        let waiting_config = config.clone();
        handle.spawn(async move {
            let connected = match ramp_etcd::connect(&owned).await {
                Ok(client) => ramp_etcd::connect_waiting(&waiting_config)
                    .await
                    .map(|waiting| (client, waiting)),
                Err(e) => Err(e),
            };
            let _ = tx.send(connected);
        });
        let (client, waiting) = match rx.recv_timeout(config.dial_timeout * 2 + GRACE) {
            Ok(Ok(clients)) => clients,
            Ok(Err(e)) => return Err(e.into()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(BridgeError::Timeout(millis(config.dial_timeout)))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(BridgeError::Stopped),
        };
        Ok(Bridge {
            handle,
            client,
            waiting,
            timeout: config.request_timeout,
            _stop: stop,
        })
    }

    /// A clone of the client, for requests made on the bridge's runtime.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A clone of the client without a per-request deadline, for the election's campaign.
    pub fn waiting_client(&self) -> Client {
        self.waiting.clone()
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `request` on the bridge's runtime and waits for it, synchronously, for at most
    /// the request timeout. A request that found its member down or did not get an answer
    /// within its attempt's time (the client balances over every endpoint and does not drop
    /// a dead one; a cluster electing a new raft leader answers late) is made again, on
    /// whichever member the balancer picks next, until the timeout: one dead member of three
    /// must not stop a rollout. Every write is idempotent when made again (the journal store
    /// recognises its own record), so a lost answer never writes a record twice.
    pub fn call<T, F>(
        &self,
        request: impl Fn(Client) -> F + Send + Sync + 'static,
    ) -> Result<T, BridgeError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, ClientError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let timeout = self.timeout;
        let client = self.client.clone();
        self.handle.spawn(async move {
            let attempts = async move {
                loop {
                    match request(client.clone()).await {
                        Err(e) if unavailable(&e) => {
                            tokio::time::sleep(RETRY).await;
                        }
                        other => return other,
                    }
                }
            };
            let _ = tx.send(tokio::time::timeout(timeout, attempts).await);
        });
        match rx.recv_timeout(timeout + GRACE) {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(source))) => Err(BridgeError::Etcd(EtcdError::Request {
                what: "a journal request".into(),
                source,
            })),
            Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(BridgeError::Timeout(millis(timeout)))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(BridgeError::Stopped),
        }
    }

    /// Runs `task` on the bridge's runtime and awaits its result from any runtime (the
    /// election's campaign, which waits as long as another controller leads).
    pub async fn run<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, BridgeError> {
        let (tx, rx) = oneshot::channel();
        self.handle.spawn(async move {
            let _ = tx.send(task.await);
        });
        rx.await.map_err(|_| BridgeError::Stopped)
    }

    /// Spawns a background task on the bridge's runtime (the lease's keep-alive).
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.handle.spawn(task);
    }
}

/// Whether a request failed because its member could not be reached or did not answer in
/// time (gRPC `unavailable`, `cancelled` by the attempt's timeout, `deadline exceeded`,
/// `aborted`, `unknown` as tonic reports a connection that broke mid-request, or the
/// transport), so that another attempt may succeed; a refusal (a bad request, permissions,
/// authentication, a request too large) is not made again.
pub(super) fn unavailable(e: &ClientError) -> bool {
    match e {
        // gRPC's codes 1 `cancelled`, 2 `unknown`, 4 `deadline exceeded`, 10 `aborted` and
        // 14 `unavailable`.
        ClientError::GRpcStatus(s) => matches!(i32::from(s.code()), 1 | 2 | 4 | 10 | 14),
        ClientError::TransportError(_) | ClientError::IoError(_) => true,
        _ => false,
    }
}

/// A duration in whole milliseconds, for messages.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
