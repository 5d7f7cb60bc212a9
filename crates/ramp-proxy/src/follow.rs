//! Following the deployment's weight in etcd (`[etcd]`, `--etcd`): several proxies behind a
//! load balancer hold the weight a leading controller published once, without the
//! controller reaching each of them.
//!
//! The proxy reads the weight key (`ramp_etcd::Keys::weight`, a `ramp_etcd::WeightDoc`) when
//! it starts, before it accepts its first connection ([`confirm_at_start`]: a proxy restarted
//! mid-rollout must not route at the weight it persisted before the leader moved it), and
//! then watches it from the revision it read, applying each new document
//! through the same path as `PUT /weights` (`crate::weights::apply`): the fence is checked and
//! persisted with the weight, so a document older than the newest fence seen is ignored and
//! said so. A document with fence 0 was written without an election (the SQLite store) and
//! is applied unfenced, as a `PUT /weights` without `fence` is.
//!
//! **Architecture Invariant:** etcd going away never changes the weight. When the cluster
//! cannot be reached, at the start or later, the proxy keeps routing at its last persisted
//! weight and retries with a bounded backoff, logging the outage once and the recovery once.
//! A watch that breaks (compaction, a member lost, no leader) is replaced by a new read of the
//! key and a new watch from the revision read. Nothing here is on the request path.

use crate::proxy::Proxy;
use crate::state;
use crate::weights::{self, ApplyError, Change};
use ramp_etcd::etcd_client::{Client, EventType, GetOptions, WatchOptions};
use ramp_etcd::{EtcdConfig, WeightDoc};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The first pause after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// The longest pause between two attempts to reach etcd.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long a watch may be quiet before the cluster is asked (a quorum read) whether it is
/// still there: a watch on a dead connection can otherwise wait forever.
const PROBE_EVERY: Duration = Duration::from_secs(3);

/// The dial and request timeout of the proxy's etcd client: short, since a proxy only waits
/// for etcd in the background and an outage should show within seconds.
const ETCD_TIMEOUT: Duration = Duration::from_secs(2);

/// What the follower has done, for `GET /weights` and `/metrics`; shared with the admin API.
#[derive(Debug)]
pub struct FollowState {
    /// The key followed.
    pub key: String,
    /// Whether the last attempt to reach etcd succeeded (and the watch is running).
    connected: AtomicBool,
    /// The etcd revision of the last document applied (its `mod_revision`), 0 for none.
    revision: AtomicI64,
    /// Documents ignored because their fence was older than the newest seen.
    ignored: AtomicU64,
    /// Whether the start-up read of the key succeeded before the first connection was
    /// accepted; false when etcd could not be reached then and the persisted weight was
    /// served unconfirmed.
    confirmed_at_start: AtomicBool,
}

/// The follower's state as `GET /weights` shows it, under `etcd`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct FollowView {
    /// The weight key followed.
    pub key: String,
    /// Whether etcd is reachable and watched now.
    pub connected: bool,
    /// The revision of the last weight document applied, 0 when none has been.
    pub revision: i64,
    /// How many documents were ignored for an older fence.
    pub ignored_stale: u64,
    /// Whether the weight served from the start was read from etcd before the first
    /// connection was accepted (false: etcd was unreachable then, and the persisted weight was
    /// served unconfirmed until the follower reached etcd). Absent from older proxies.
    #[serde(default)]
    pub confirmed_at_start: bool,
}

impl FollowState {
    /// The state of a follower of `key` that has not reached etcd yet.
    pub fn new(key: String) -> FollowState {
        FollowState {
            key,
            connected: AtomicBool::new(false),
            revision: AtomicI64::new(0),
            ignored: AtomicU64::new(0),
            confirmed_at_start: AtomicBool::new(false),
        }
    }

    /// A copy for `GET /weights`.
    pub fn view(&self) -> FollowView {
        FollowView {
            key: self.key.clone(),
            connected: self.connected.load(Ordering::Relaxed),
            revision: self.revision.load(Ordering::Relaxed),
            ignored_stale: self.ignored.load(Ordering::Relaxed),
            confirmed_at_start: self.confirmed_at_start.load(Ordering::Relaxed),
        }
    }
}

/// Why one session with etcd ended (the follower then waits and starts another).
#[derive(Debug, thiserror::Error)]
enum Broken {
    /// The cluster could not be reached or answered with an error.
    #[error(transparent)]
    Etcd(#[from] ramp_etcd::EtcdError),
    /// A request or the watch failed.
    #[error("etcd: {0}")]
    Client(#[from] ramp_etcd::etcd_client::Error),
    /// The watch ended or was cancelled by the server (compaction, no leader).
    #[error("the watch ended: {0}")]
    Watch(String),
}

/// Follows the weight key until `stop` turns true: reads it, watches it, and starts again
/// after a bounded backoff whenever etcd is unreachable or the watch breaks.
pub async fn run(proxy: Arc<Proxy>, mut stop: watch::Receiver<bool>) {
    let (Some(follow), Some(etcd)) = (proxy.follow.clone(), proxy.config.etcd.clone()) else {
        return;
    };
    let config = client_config(&etcd);
    let mut backoff = FIRST_BACKOFF;
    let mut outage = false;
    tracing::info!(key = %follow.key, endpoints = %etcd.endpoints.join(","), "following the weight in etcd");
    loop {
        if *stop.borrow() {
            return;
        }
        // A stop ends a session wherever it is, connecting or reading included: a stopped
        // proxy must not apply (and persist) a weight after `serve` returned.
        let result = tokio::select! {
            r = session(&proxy, &follow, &config, &mut outage) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        // A session that reached the watch starts the backoff again from its first pause.
        if follow.connected.swap(false, Ordering::Relaxed) {
            backoff = FIRST_BACKOFF;
        }
        if let Err(e) = result {
            if !outage {
                tracing::warn!(error = %e, key = %follow.key, "etcd is unreachable; the proxy keeps routing at its last weight and retries");
                outage = true;
            } else {
                tracing::debug!(error = %e, "etcd still unreachable");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The proxy's etcd client settings: the configured endpoints and prefix, with the short
/// dial and request timeouts of [`ETCD_TIMEOUT`].
fn client_config(etcd: &crate::config::EtcdFollow) -> EtcdConfig {
    let mut config = EtcdConfig::new(etcd.endpoints.clone());
    config.prefix = etcd.prefix.clone();
    config.dial_timeout = ETCD_TIMEOUT;
    config.request_timeout = ETCD_TIMEOUT;
    config
}

/// Reads the weight key once and applies it, before the proxy accepts its first connection,
/// so that a follower restarted while the leader moved the weight serves its very first
/// request at the current weight rather than at the one it persisted. Bounded by the client's
/// dial and request timeouts (at most twice [`ETCD_TIMEOUT`]): when etcd cannot be reached
/// then, the proxy serves its persisted weight, says that it could not confirm it
/// (`confirmed_at_start: false` in `GET /weights`), and [`run`] keeps trying in the
/// background. Does nothing without `[etcd]`.
pub async fn confirm_at_start(proxy: &Proxy) {
    let (Some(follow), Some(etcd)) = (proxy.follow.as_deref(), proxy.config.etcd.as_ref()) else {
        return;
    };
    let config = client_config(etcd);
    let read = async {
        let mut client = ramp_etcd::connect(&config).await?;
        let read = client.get(follow.key.as_str(), None).await?;
        Ok::<_, Broken>(
            read.kvs()
                .first()
                .map(|kv| (kv.value().to_vec(), kv.mod_revision())),
        )
    };
    let persisted = crate::config::bp_to_percent(proxy.route.load().canary_bp);
    match tokio::time::timeout(2 * ETCD_TIMEOUT, read).await {
        Ok(Ok(found)) => {
            let settled = match &found {
                Some((value, revision)) => apply(proxy, follow, value, *revision).await,
                None => true,
            };
            if !settled {
                tracing::warn!(
                    key = %follow.key, canary_percent = persisted,
                    "the weight read from etcd before serving was not applied; serving the persisted weight, unconfirmed"
                );
                return;
            }
            follow.confirmed_at_start.store(true, Ordering::Relaxed);
            tracing::info!(
                key = %follow.key,
                canary_percent = crate::config::bp_to_percent(proxy.route.load().canary_bp),
                document = found.is_some(),
                "weight read from etcd before serving"
            );
        }
        Ok(Err(e)) => tracing::warn!(
            key = %follow.key, error = %e, canary_percent = persisted,
            "could not read the weight from etcd before serving; serving the persisted weight, unconfirmed"
        ),
        Err(_) => tracing::warn!(
            key = %follow.key, canary_percent = persisted, timeout_s = (2 * ETCD_TIMEOUT).as_secs(),
            "etcd did not answer in time before serving; serving the persisted weight, unconfirmed"
        ),
    }
}

/// One session: connect, read the key and apply it, then watch from the revision read until
/// the watch breaks. Returns only with an error; [`run`] ends it when the proxy stops.
async fn session(
    proxy: &Proxy,
    follow: &FollowState,
    config: &EtcdConfig,
    outage: &mut bool,
) -> Result<(), Broken> {
    let mut client = ramp_etcd::connect(config).await?;
    let read = client.get(follow.key.as_str(), None).await?;
    let revision = read.header().map_or(0, |h| h.revision());
    if let Some(kv) = read.kvs().first() {
        apply(proxy, follow, kv.value(), kv.mod_revision()).await;
    }
    let mut stream = client
        .watch(
            follow.key.as_str(),
            Some(WatchOptions::new().with_start_revision(revision + 1)),
        )
        .await?;
    follow.connected.store(true, Ordering::Relaxed);
    if *outage {
        tracing::info!(key = %follow.key, revision, "etcd is reachable again; following the weight");
        *outage = false;
    }
    loop {
        let message = tokio::select! {
            m = stream.message() => m?,
            _ = tokio::time::sleep(PROBE_EVERY) => {
                probe(&mut client, &follow.key).await?;
                continue;
            }
        };
        let Some(response) = message else {
            return Err(Broken::Watch("the server closed it".into()));
        };
        if response.canceled() || response.compact_revision() > 0 {
            return Err(Broken::Watch(format!(
                "cancelled ({}; compacted at {})",
                response.cancel_reason(),
                response.compact_revision()
            )));
        }
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            match event.event_type() {
                EventType::Put => {
                    apply(proxy, follow, kv.value(), kv.mod_revision()).await;
                }
                EventType::Delete => tracing::warn!(
                    key = %follow.key,
                    "the weight key was deleted; the proxy keeps routing at its last weight"
                ),
            }
        }
    }
}

/// A quorum read of the key's count, bounded by the client's request timeout: fails when the
/// cluster lost its leader or the connection is dead.
async fn probe(client: &mut Client, key: &str) -> Result<(), Broken> {
    client
        .get(key, Some(GetOptions::new().with_count_only()))
        .await?;
    Ok(())
}

/// Applies one weight document written at `revision`, unless it was applied already or is not
/// a weight document; an older fence is ignored with a log line. Returns whether the proxy's
/// weight now answers for the document: true when it was applied (now or before) or ignored
/// for an older fence (the proxy holds a newer leader's weight); false when it is not a
/// weight document or the state file could not be written (the weight is unchanged).
async fn apply(proxy: &Proxy, follow: &FollowState, value: &[u8], revision: i64) -> bool {
    if revision <= follow.revision.load(Ordering::Relaxed) {
        return true;
    }
    let doc = match serde_json::from_slice::<WeightDoc>(value) {
        Ok(doc) if doc.canary_bp <= ramp_flags::BASIS_POINTS => doc,
        Ok(doc) => {
            tracing::warn!(key = %follow.key, revision, canary_bp = doc.canary_bp, "weight document out of range; ignored");
            return false;
        }
        Err(e) => {
            tracing::warn!(key = %follow.key, revision, error = %e, "not a weight document; ignored");
            return false;
        }
    };
    let run = match doc.run {
        Some(run) if !state::is_valid_run(&run) => {
            tracing::warn!(key = %follow.key, revision, "weight document names no valid run; ignored");
            return false;
        }
        run => run.map(Arc::from),
    };
    let change = Change {
        canary_bp: doc.canary_bp,
        run,
        fence: (doc.fence != 0).then_some(doc.fence),
    };
    let current = proxy.route.load_full();
    let same = current.canary_bp == change.canary_bp
        && current.set_by == change.run
        && change.fence.is_none_or(|f| current.fence == Some(f));
    let outcome = if same {
        Ok(())
    } else {
        weights::apply(proxy, change).await.map(|_| ())
    };
    match outcome {
        Ok(()) => {
            follow.revision.store(revision, Ordering::Relaxed);
            true
        }
        Err(e @ ApplyError::Stale { .. }) => {
            follow.ignored.fetch_add(1, Ordering::Relaxed);
            follow.revision.store(revision, Ordering::Relaxed);
            tracing::warn!(key = %follow.key, revision, reason = %e, "weight document from an older leader ignored");
            true
        }
        // The state file could not be written: the weight is unchanged, and the document is
        // applied again at the next session (its revision is not recorded as applied).
        Err(e) => {
            tracing::error!(key = %follow.key, revision, error = %e, "weight document not applied");
            false
        }
    }
}
